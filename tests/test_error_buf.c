/* Unit tests for molt_db_error and molt_db_buf. */
#include "test.h"

#include "molt_db/buf.h"
#include "molt_db/error.h"

TEST(error_set_and_clear)
{
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_CODE(molt_db_error_set(&err, MOLT_DB_EINVAL, "bad %s %d", "x", 3),
                MOLT_DB_EINVAL);
    ASSERT_EQ_STR(err.message, "bad x 3");
    err.detail = strdup("d");
    molt_db_error copy;
    molt_db_error_init(&copy);
    ASSERT_OK(molt_db_error_copy(&copy, &err), &copy);
    ASSERT_EQ_STR(copy.detail, "d");
    ASSERT(copy.detail != err.detail);
    molt_db_error_clear(&err);
    ASSERT_EQ_INT(err.code, MOLT_DB_OK);
    ASSERT(err.detail == NULL);
    molt_db_error_move(&err, &copy);
    ASSERT_EQ_STR(err.detail, "d");
    ASSERT(copy.detail == NULL);
    molt_db_error_clear(&err);
    ASSERT_CODE(molt_db_error_set(NULL, MOLT_DB_EIO, "x"), MOLT_DB_EIO);
}

TEST(error_message_truncates)
{
    molt_db_error err;
    molt_db_error_init(&err);
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    molt_db_error_set(&err, MOLT_DB_EPROTO, "%s", big);
    ASSERT_EQ_UINT(strlen(err.message), MOLT_DB_ERROR_MESSAGE_SIZE - 1);
}

TEST(buf_big_endian_and_patch)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    molt_db_buf_put_u8(&b, 0x01);
    molt_db_buf_put_u16(&b, 0x0203);
    molt_db_buf_put_u32(&b, 0x04050607);
    molt_db_buf_put_u64(&b, 0x08090a0b0c0d0e0fULL);
    molt_db_buf_put_cstr(&b, "hi");
    static const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                   14, 15, 'h', 'i', 0};
    ASSERT_OK(molt_db_buf_ok(&b), NULL);
    ASSERT_EQ_MEM(b.data, b.len, want, sizeof want);
    molt_db_buf_patch_u32(&b, 3, 0xa0b0c0d0);
    ASSERT_EQ_UINT(b.data[3], 0xa0);
    ASSERT_EQ_UINT(b.data[6], 0xd0);
    molt_db_buf_consume(&b, 15);
    ASSERT_EQ_MEM(b.data, b.len, "hi", 3);
    molt_db_buf_free(&b);
}

TEST(buf_overflow_is_sticky)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_CODE(molt_db_buf_reserve(&b, SIZE_MAX - 8), MOLT_DB_ENOMEM);
    molt_db_buf_put_u8(&b, 1);
    ASSERT_EQ_UINT(b.len, 0);
    ASSERT_CODE(molt_db_buf_ok(&b), MOLT_DB_ENOMEM);
    molt_db_buf_reset(&b);
    molt_db_buf_put_u8(&b, 1);
    ASSERT_EQ_UINT(b.len, 1);
    molt_db_buf_free(&b);
}

/* The small puts write in place while there is room: across the end of
 * the room they grow the buffer, and a failed buffer with room left takes
 * nothing. */
TEST(buf_small_puts_at_the_room_edge)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_buf_reserve(&b, 1), NULL);
    size_t cap = b.cap;
    uint8_t fill[4096] = {0};
    ASSERT(cap - 3 <= sizeof fill);
    molt_db_buf_put(&b, fill, cap - 3);
    molt_db_buf_put_u16(&b, 0x0102);
    molt_db_buf_put_u32(&b, 0x03040506); /* 1 byte of room left: grows */
    molt_db_buf_put_cstr(&b, "ab");
    molt_db_buf_put_u8(&b, 7);
    static const uint8_t want[] = {1, 2, 3, 4, 5, 6, 'a', 'b', 0, 7};
    ASSERT_OK(molt_db_buf_ok(&b), NULL);
    ASSERT(b.cap > cap);
    ASSERT_EQ_MEM(b.data + cap - 3, b.len - (cap - 3), want, sizeof want);
    size_t len = b.len;
    b.failed = 1;
    molt_db_buf_put_u8(&b, 1);
    molt_db_buf_put_u16(&b, 1);
    molt_db_buf_put_u32(&b, 1);
    molt_db_buf_put_cstr(&b, "x");
    ASSERT_EQ_UINT(b.len, len);
    ASSERT_CODE(molt_db_buf_ok(&b), MOLT_DB_ENOMEM);
    molt_db_buf_free(&b);
}

TEST_MAIN(TEST_ENTRY(error_set_and_clear), TEST_ENTRY(error_message_truncates),
          TEST_ENTRY(buf_big_endian_and_patch), TEST_ENTRY(buf_overflow_is_sticky),
          TEST_ENTRY(buf_small_puts_at_the_room_edge))
