/*
 * The sans-I/O protocol layer: every encoder against bytes written out by
 * hand from the PostgreSQL "Message Formats" page, every reader on valid and
 * malformed bodies, and the framer on streams split at every byte.
 */
#include "test.h"

#include "molt_db/protocol.h"

#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* A byte string literal and its length (without the literal's own NUL).
 * Literals are split ("\x00" "ab") wherever a hex escape would swallow the
 * next character. */
#define BYTES(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* Compares memory with a literal (the indirection expands BYTES first). */
#define EQ_MEM_(...) ASSERT_EQ_MEM(__VA_ARGS__)
#define ASSERT_MEM_IS(p, len, s) EQ_MEM_((p), (len), BYTES(s))
#define ASSERT_BUF(buf, s) ASSERT_MEM_IS((buf).data, (buf).len, s)

static molt_db_msg mk(uint8_t type, const uint8_t *body, size_t len)
{
    molt_db_msg m = {type, (uint32_t)len, body};
    return m;
}

/* ---------------------------------------------------------------------- */
/* Encoders                                                                */
/* ---------------------------------------------------------------------- */

TEST(write_startup)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    const char *names[] = {"user", "database"};
    const char *values[] = {"bob", "db"};
    ASSERT_OK(molt_db_proto_write_startup(&b, names, values, 2), NULL);
    /* length 30, protocol 3.0, pairs, terminating zero */
    ASSERT_BUF(b, "\x00\x00\x00\x1e\x00\x03\x00\x00"
                  "user\0bob\0database\0db\0\0");

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_startup(&b, NULL, NULL, 0), NULL);
    ASSERT_BUF(b, "\x00\x00\x00\x09\x00\x03\x00\x00\x00");

    /* NULLs and an empty name (which would end the list early) */
    molt_db_buf_reset(&b);
    const char *bad_names[] = {"user", ""};
    const char *null_values[] = {"bob", NULL};
    ASSERT_CODE(molt_db_proto_write_startup(&b, bad_names, values, 2),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_startup(&b, names, null_values, 2),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_startup(&b, NULL, values, 1),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 0);
    ASSERT_EQ_INT(b.failed, 0);
    molt_db_buf_free(&b);
}

TEST(write_ssl_and_cancel)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_ssl_request(&b), NULL);
    ASSERT_BUF(b, "\x00\x00\x00\x08\x04\xd2\x16\x2f");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_cancel_request(&b, 0x01020304, -1), NULL);
    ASSERT_BUF(b, "\x00\x00\x00\x10\x04\xd2\x16\x2e"
                  "\x01\x02\x03\x04\xff\xff\xff\xff");
    molt_db_buf_free(&b);
}

TEST(write_password_and_sasl)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_password(&b, "secret"), NULL);
    ASSERT_BUF(b, "p\x00\x00\x00\x0b" "secret\0");
    ASSERT_CODE(molt_db_proto_write_password(&b, NULL), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 12);

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_sasl_initial(&b, "SCRAM-SHA-256",
                                               BYTES("n,,n=,r=abc")),
              NULL);
    ASSERT_BUF(b, "p\x00\x00\x00\x21" "SCRAM-SHA-256\0"
                  "\x00\x00\x00\x0b" "n,,n=,r=abc");

    /* No initial response: length -1 and no bytes. */
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_sasl_initial(&b, "SCRAM-SHA-256", NULL, 0),
              NULL);
    ASSERT_BUF(b, "p\x00\x00\x00\x16" "SCRAM-SHA-256\0" "\xff\xff\xff\xff");

    /* An empty initial response is length 0, not -1. */
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_sasl_initial(&b, "X", (const uint8_t *)"",
                                               0),
              NULL);
    ASSERT_BUF(b, "p\x00\x00\x00\x0a" "X\0" "\x00\x00\x00\x00");

    molt_db_buf_reset(&b);
    ASSERT_CODE(molt_db_proto_write_sasl_initial(&b, NULL, NULL, 0),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_sasl_initial(&b, "X", NULL, 3),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 0);

    ASSERT_OK(molt_db_proto_write_sasl_response(&b, BYTES("c=biws")), NULL);
    ASSERT_BUF(b, "p\x00\x00\x00\x0a" "c=biws");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_sasl_response(&b, NULL, 0), NULL);
    ASSERT_BUF(b, "p\x00\x00\x00\x04");
    ASSERT_CODE(molt_db_proto_write_sasl_response(&b, NULL, 1),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 5);
    molt_db_buf_free(&b);
}

TEST(write_query)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_query(&b, "SELECT 1"), NULL);
    ASSERT_BUF(b, "Q\x00\x00\x00\x0d" "SELECT 1\0");
    ASSERT_CODE(molt_db_proto_write_query(&b, NULL), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 14);
    molt_db_buf_free(&b);
}

TEST(write_parse)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    uint32_t oids[] = {23};
    ASSERT_OK(molt_db_proto_write_parse(&b, "s1", "SELECT $1", 1, oids), NULL);
    ASSERT_BUF(b, "P\x00\x00\x00\x17" "s1\0" "SELECT $1\0"
                  "\x00\x01" "\x00\x00\x00\x17");

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_parse(&b, "", "SELECT 1", 0, NULL), NULL);
    ASSERT_BUF(b, "P\x00\x00\x00\x10" "\0" "SELECT 1\0" "\x00\x00");

    molt_db_buf_reset(&b);
    ASSERT_CODE(molt_db_proto_write_parse(&b, NULL, "x", 0, NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_parse(&b, "", NULL, 0, NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_parse(&b, "", "x", 1, NULL),
                MOLT_DB_EINVAL);
    /* 65536 parameters cannot be carried by the Int16 count; the check
     * comes before the oids are read. */
    ASSERT_CODE(molt_db_proto_write_parse(&b, "", "x", 65536, oids),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 0);

    /* 65535 is the largest count that fits. */
    static uint32_t many[65535];
    ASSERT_OK(molt_db_proto_write_parse(&b, "", "x", 65535, many), NULL);
    ASSERT_EQ_UINT(b.len, 1 + 4 + 1 + 2 + 2 + 65535 * 4);
    ASSERT_EQ_UINT(b.data[8], 0xff);
    ASSERT_EQ_UINT(b.data[9], 0xff);
    molt_db_buf_free(&b);
}

TEST(write_bind)
{
    molt_db_buf b;
    molt_db_buf_init(&b);

    /* all text (formats NULL), a NULL parameter, no result formats */
    const uint8_t *v1[] = {(const uint8_t *)"42", NULL};
    int32_t l1[] = {2, -1};
    ASSERT_OK(molt_db_proto_write_bind(&b, "", "s1", 2, NULL, v1, l1, 0, NULL),
              NULL);
    ASSERT_BUF(b, "B\x00\x00\x00\x18" "\0" "s1\0"
                  "\x00\x00"                     /* no param formats */
                  "\x00\x02"                     /* 2 params */
                  "\x00\x00\x00\x02" "42"
                  "\xff\xff\xff\xff"             /* NULL */
                  "\x00\x00");                   /* no result formats */

    /* mixed formats: one code per parameter; one result format for all */
    molt_db_buf_reset(&b);
    const uint8_t int4[] = {0, 0, 0, 7};
    const uint8_t *v2[] = {(const uint8_t *)"ab", int4};
    int32_t l2[] = {2, 4};
    int16_t f2[] = {0, 1};
    int16_t r1[] = {1};
    ASSERT_OK(molt_db_proto_write_bind(&b, "p", "", 2, f2, v2, l2, 1, r1),
              NULL);
    ASSERT_BUF(b, "B\x00\x00\x00\x21" "p\0" "\0"
                  "\x00\x02" "\x00\x00" "\x00\x01"
                  "\x00\x02"
                  "\x00\x00\x00\x02" "ab"
                  "\x00\x00\x00\x04" "\x00\x00\x00\x07"
                  "\x00\x01" "\x00\x01");

    /* all binary: a single code applies to all; N result formats */
    molt_db_buf_reset(&b);
    int16_t f3[] = {1, 1};
    int16_t r3[] = {0, 1, 1};
    ASSERT_OK(molt_db_proto_write_bind(&b, "", "", 2, f3, v2, l2, 3, r3),
              NULL);
    ASSERT_BUF(b, "B\x00\x00\x00\x22" "\0" "\0"
                  "\x00\x01" "\x00\x01"
                  "\x00\x02"
                  "\x00\x00\x00\x02" "ab"
                  "\x00\x00\x00\x04" "\x00\x00\x00\x07"
                  "\x00\x03" "\x00\x00" "\x00\x01" "\x00\x01");

    /* explicit all-text formats are the same as none; empty value */
    molt_db_buf_reset(&b);
    int16_t f4[] = {0};
    int32_t l4[] = {0};
    ASSERT_OK(molt_db_proto_write_bind(&b, "", "", 1, f4, NULL, l4, 0, NULL),
              NULL);
    ASSERT_BUF(b, "B\x00\x00\x00\x10" "\0" "\0" "\x00\x00" "\x00\x01"
                  "\x00\x00\x00\x00" "\x00\x00");

    /* invalid arguments leave the buffer alone */
    molt_db_buf_reset(&b);
    int32_t lbad[] = {-2};
    int32_t lneed[] = {3};
    int16_t fbad[] = {2};
    int32_t lhuge[] = {INT32_MAX, INT32_MAX};
    const uint8_t *vhuge[] = {int4, int4};
    ASSERT_CODE(molt_db_proto_write_bind(&b, NULL, "", 0, NULL, NULL, NULL, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", NULL, 0, NULL, NULL, NULL, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 1, NULL, v1, lbad, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 1, NULL, NULL, lneed, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 1, fbad, v1, l1, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 1, NULL, v1, NULL, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 0, NULL, NULL, NULL, 1,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 0, NULL, NULL, NULL, 1,
                                         fbad),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 65536, NULL, NULL, NULL,
                                         0, NULL),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 0, NULL, NULL, NULL,
                                         65536, r3),
                MOLT_DB_EINVAL);
    /* 4 GiB of values cannot fit the Int32 length: refused before any of
     * it is read (the pointers only cover 4 bytes). */
    ASSERT_CODE(molt_db_proto_write_bind(&b, "", "", 2, NULL, vhuge, lhuge, 0,
                                         NULL),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 0);
    ASSERT_EQ_INT(b.failed, 0);
    molt_db_buf_free(&b);
}

TEST(write_describe_execute_close)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_describe(&b, 'S', "s1"), NULL);
    ASSERT_BUF(b, "D\x00\x00\x00\x08" "Ss1\0");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_describe(&b, 'P', ""), NULL);
    ASSERT_BUF(b, "D\x00\x00\x00\x06" "P\0");
    ASSERT_CODE(molt_db_proto_write_describe(&b, 'X', ""), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_describe(&b, 'S', NULL), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 7);

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_execute(&b, "", 0), NULL);
    ASSERT_BUF(b, "E\x00\x00\x00\x09" "\0" "\x00\x00\x00\x00");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_execute(&b, "p", 100), NULL);
    ASSERT_BUF(b, "E\x00\x00\x00\x0a" "p\0" "\x00\x00\x00\x64");
    ASSERT_CODE(molt_db_proto_write_execute(&b, NULL, 0), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_execute(&b, "", 0x80000000u),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 11);

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_close(&b, 'P', "p1"), NULL);
    ASSERT_BUF(b, "C\x00\x00\x00\x08" "Pp1\0");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_close(&b, 'S', "s"), NULL);
    ASSERT_BUF(b, "C\x00\x00\x00\x07" "Ss\0");
    ASSERT_CODE(molt_db_proto_write_close(&b, 'Q', "s"), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_close(&b, 'S', NULL), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 8);
    molt_db_buf_free(&b);
}

TEST(write_fixed_and_copy)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_sync(&b), NULL);
    ASSERT_OK(molt_db_proto_write_flush(&b), NULL);
    ASSERT_OK(molt_db_proto_write_terminate(&b), NULL);
    ASSERT_OK(molt_db_proto_write_copy_done(&b), NULL);
    ASSERT_BUF(b, "S\x00\x00\x00\x04" "H\x00\x00\x00\x04"
                  "X\x00\x00\x00\x04" "c\x00\x00\x00\x04");

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_copy_data(&b, BYTES("a\tb\n")), NULL);
    ASSERT_BUF(b, "d\x00\x00\x00\x08" "a\tb\n");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_copy_data(&b, NULL, 0), NULL);
    ASSERT_BUF(b, "d\x00\x00\x00\x04");
    ASSERT_CODE(molt_db_proto_write_copy_data(&b, NULL, 1), MOLT_DB_EINVAL);
    /* Over INT32_MAX: refused before the (short) data is read. */
    ASSERT_CODE(molt_db_proto_write_copy_data(&b, (const uint8_t *)"x",
                                              (size_t)INT32_MAX + 1),
                MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_write_sasl_response(&b, (const uint8_t *)"x",
                                                  (size_t)INT32_MAX),
                MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 5);

    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_proto_write_copy_fail(&b, "oops"), NULL);
    ASSERT_BUF(b, "f\x00\x00\x00\x09" "oops\0");
    ASSERT_CODE(molt_db_proto_write_copy_fail(&b, NULL), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 10);
    molt_db_buf_free(&b);
}

/* Messages appended after others keep the earlier ones intact, and a
 * failure in the middle of a pipeline leaves the earlier messages. */
TEST(write_appends_and_restores_len)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_parse(&b, "", "SELECT 1", 0, NULL), NULL);
    ASSERT_OK(molt_db_proto_write_bind(&b, "", "", 0, NULL, NULL, NULL, 0,
                                       NULL),
              NULL);
    size_t before = b.len;
    ASSERT_CODE(molt_db_proto_write_execute(&b, NULL, 0), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, before);
    ASSERT_OK(molt_db_proto_write_sync(&b), NULL);
    ASSERT_MEM_IS(b.data + before, b.len - before, "S\x00\x00\x00\x04");

    /* A buffer that already failed stays failed: ENOMEM and len kept. */
    b.failed = 1;
    before = b.len;
    ASSERT_CODE(molt_db_proto_write_query(&b, "SELECT 1"), MOLT_DB_ENOMEM);
    ASSERT_CODE(molt_db_proto_write_sync(&b), MOLT_DB_ENOMEM);
    ASSERT_CODE(molt_db_proto_write_ssl_request(&b), MOLT_DB_ENOMEM);
    ASSERT_EQ_UINT(b.len, before);
    molt_db_buf_free(&b);
}

#if defined(__SANITIZE_ADDRESS__)
#define TEST_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_HAS_ASAN 1
#endif
#endif

#if !defined(TEST_HAS_ASAN) && defined(__linux__)
/* Child process body: grows a real buffer until the allocator refuses
 * (address space limited with setrlimit), in the middle of a message. */
static int enomem_child(void)
{
    const size_t payload = (size_t)1 << 30; /* 1 GiB */
    /* Readable zero pages for the payload, mapped before the limit. */
    void *src = mmap(NULL, payload, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (src == MAP_FAILED)
        return 2;
    molt_db_buf b;
    molt_db_buf_init(&b);
    if (molt_db_proto_write_sync(&b) != MOLT_DB_OK)
        return 3;
    size_t before = b.len;
    /* The buffer's 256 initial bytes take the header; the payload needs
     * a 1 GiB realloc, which the limit refuses. */
    struct rlimit rl;
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld", &pages) != 1)
        return 4;
    fclose(f);
    rl.rlim_cur = rl.rlim_max =
        (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 5;
    int rc = molt_db_proto_write_copy_data(&b, src, payload);
    if (rc != MOLT_DB_ENOMEM)
        return 6;
    if (b.len != before || !b.failed)
        return 7;
    /* The Sync written before is untouched. */
    if (memcmp(b.data, "S\x00\x00\x00\x04", 5) != 0)
        return 8;
    molt_db_buf_free(&b);
    return 0;
}
#endif

TEST(write_enomem_restores_len)
{
#if defined(TEST_HAS_ASAN) || !defined(__linux__)
    fprintf(stderr, "  (skipped: needs Linux without ASan for RLIMIT_AS)\n");
#else
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        _exit(enomem_child());
    int status = 0;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ_INT(WEXITSTATUS(status), 0);
#endif
}

/* ---------------------------------------------------------------------- */
/* Framing                                                                 */
/* ---------------------------------------------------------------------- */

static const char BACKEND_TYPES[] = "RSKZTDCENI123nstAGHWdcVv";

TEST(next_known_types)
{
    for (const char *t = BACKEND_TYPES; *t; t++) {
        uint8_t m[5] = {(uint8_t)*t, 0, 0, 0, 4};
        molt_db_msg msg;
        size_t consumed = 99, need = 0;
        molt_db_error err;
        molt_db_error_init(&err);
        ASSERT_OK(molt_db_proto_next(m, 5, &msg, &consumed, &need, &err), &err);
        ASSERT_EQ_INT(msg.type, *t);
        ASSERT_EQ_UINT(msg.len, 0);
        ASSERT_EQ_UINT(consumed, 5);
        ASSERT_EQ_UINT(need, 5);
    }
    /* Every other byte is lost sync, even before the length arrives. */
    for (int t = 0; t < 256; t++) {
        if (t != 0 && strchr(BACKEND_TYPES, t) != NULL)
            continue;
        uint8_t m[5] = {(uint8_t)t, 0, 0, 0, 4};
        molt_db_msg msg;
        size_t consumed = 99;
        molt_db_error err;
        molt_db_error_init(&err);
        ASSERT_CODE(molt_db_proto_next(m, 1, &msg, &consumed, NULL, &err),
                    MOLT_DB_EPROTO);
        ASSERT_EQ_UINT(consumed, 0);
        ASSERT_CODE(molt_db_proto_next(m, 5, &msg, &consumed, NULL, &err),
                    MOLT_DB_EPROTO);
        ASSERT_EQ_INT(err.code, MOLT_DB_EPROTO);
        ASSERT_CONTAINS(err.message, "lost sync: unknown message type 0x");
    }
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_msg msg;
    size_t consumed;
    ASSERT_CODE(molt_db_proto_next(BYTES("x\x00\x00\x00\x04"), &msg, &consumed,
                                   NULL, &err),
                MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "unknown message type 0x78");
}

TEST(next_bad_lengths)
{
    molt_db_msg msg;
    size_t consumed, need;
    molt_db_error err;
    molt_db_error_init(&err);
    for (uint8_t l = 0; l < 4; l++) {
        uint8_t m[8] = {'Z', 0, 0, 0, l, 'I', 0, 0};
        ASSERT_CODE(molt_db_proto_next(m, sizeof m, &msg, &consumed, &need,
                                       &err),
                    MOLT_DB_EPROTO);
        ASSERT_CONTAINS(err.message, "< 4");
    }
    /* over the hard limit, for a type that may be long */
    ASSERT_CODE(molt_db_proto_next(BYTES("D\x40\x00\x04\x01"), &msg, &consumed,
                                   &need, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_next(BYTES("D\xff\xff\xff\xff"), &msg, &consumed,
                                   &need, &err),
                MOLT_DB_EPROTO);
    /* exactly the hard limit is only "need more" */
    ASSERT_CODE(molt_db_proto_next(BYTES("D\x40\x00\x04\x00"), &msg, &consumed,
                                   &need, &err),
                MOLT_DB_NEED_MORE);
    ASSERT_EQ_UINT(need, (size_t)MOLT_DB_MAX_MESSAGE_LEN + 1);
    ASSERT_EQ_UINT(consumed, 0);

    /* short types: 30000 is allowed, 30001 is lost sync */
    const char *short_types = "SKZCI123nscv";
    for (const char *t = short_types; *t; t++) {
        uint8_t ok[5] = {(uint8_t)*t, 0, 0, 0x75, 0x30};
        uint8_t bad[5] = {(uint8_t)*t, 0, 0, 0x75, 0x31};
        ASSERT_CODE(molt_db_proto_next(ok, 5, &msg, &consumed, &need, &err),
                    MOLT_DB_NEED_MORE);
        ASSERT_EQ_UINT(need, 30001);
        ASSERT_CODE(molt_db_proto_next(bad, 5, &msg, &consumed, &need, &err),
                    MOLT_DB_EPROTO);
        ASSERT_CONTAINS(err.message, "lost sync");
    }
    const char *long_types = "DdENTVARtGHW";
    for (const char *t = long_types; *t; t++) {
        uint8_t m[5] = {(uint8_t)*t, 0, 0x10, 0, 0};
        ASSERT_CODE(molt_db_proto_next(m, 5, &msg, &consumed, &need, &err),
                    MOLT_DB_NEED_MORE);
        ASSERT_EQ_UINT(need, 0x100001);
    }
}

TEST(next_need_more)
{
    molt_db_msg msg;
    size_t consumed = 7, need = 0;
    ASSERT_CODE(molt_db_proto_next(NULL, 0, &msg, &consumed, &need, NULL),
                MOLT_DB_NEED_MORE);
    ASSERT_EQ_UINT(consumed, 0);
    ASSERT_EQ_UINT(need, 5);
    ASSERT_CODE(molt_db_proto_next(BYTES("Z\x00\x00"), &msg, &consumed, &need,
                                   NULL),
                MOLT_DB_NEED_MORE);
    ASSERT_EQ_UINT(need, 5);
    ASSERT_CODE(molt_db_proto_next(BYTES("Z\x00\x00\x00\x05"), &msg, &consumed,
                                   &need, NULL),
                MOLT_DB_NEED_MORE);
    ASSERT_EQ_UINT(need, 6);
    ASSERT_EQ_UINT(consumed, 0);
    /* need may be NULL */
    ASSERT_CODE(molt_db_proto_next(BYTES("Z\x00\x00\x00\x05"), &msg, &consumed,
                                   NULL, NULL),
                MOLT_DB_NEED_MORE);
    /* whole: trailing bytes are the next message's, not consumed */
    ASSERT_OK(molt_db_proto_next(BYTES("Z\x00\x00\x00\x05" "IZ"), &msg,
                                 &consumed, &need, NULL),
              NULL);
    ASSERT_EQ_UINT(consumed, 6);
    ASSERT_EQ_INT(msg.type, 'Z');
    ASSERT_EQ_UINT(msg.len, 1);
    ASSERT_EQ_INT(msg.body[0], 'I');
}

/* A realistic server stream: startup, a query with rows, then an error. */
static const uint8_t STREAM[] =
    "R\x00\x00\x00\x08\x00\x00\x00\x00"
    "S\x00\x00\x00\x19" "client_encoding\0UTF8\0"
    "K\x00\x00\x00\x0c\x00\x00\x30\x39\x12\x34\x56\x78"
    "Z\x00\x00\x00\x05" "I"
    "T\x00\x00\x00\x1b\x00\x01" "id\0"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"
    "D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x01" "1"
    "D\x00\x00\x00\x0a\x00\x01\xff\xff\xff\xff"
    "C\x00\x00\x00\x0d" "SELECT 2\0"
    "Z\x00\x00\x00\x05" "I"
    "E\x00\x00\x00\x1b" "SERROR\0C42601\0Msyntax\0\0"
    "Z\x00\x00\x00\x05" "E";

typedef struct seen {
    uint8_t type;
    uint32_t len;
    uint8_t body[64];
} seen;

/* Frames data[0..len) into out, returns how many; ASSERTs OK/NEED_MORE. */
static size_t frame_all(const uint8_t *data, size_t len, seen *out,
                        size_t cap, size_t *used)
{
    size_t n = 0, off = 0;
    for (;;) {
        molt_db_msg msg;
        size_t consumed, need;
        molt_db_error err;
        molt_db_error_init(&err);
        int rc = molt_db_proto_next(data + off, len - off, &msg, &consumed,
                                    &need, &err);
        if (rc == MOLT_DB_NEED_MORE) {
            ASSERT_EQ_UINT(consumed, 0);
            ASSERT(need > len - off);
            break;
        }
        ASSERT_OK(rc, &err);
        ASSERT(n < cap);
        ASSERT(msg.len <= sizeof out[n].body);
        out[n].type = msg.type;
        out[n].len = msg.len;
        memcpy(out[n].body, msg.body, msg.len);
        n++;
        off += consumed;
    }
    *used = off;
    return n;
}

TEST(next_stream_every_split)
{
    const size_t total = sizeof STREAM - 1;
    seen whole[16], got[16];
    size_t used;
    size_t n = frame_all(STREAM, total, whole, 16, &used);
    ASSERT_EQ_UINT(n, 11);
    ASSERT_EQ_UINT(used, total);
    ASSERT_EQ_INT(whole[4].type, 'T');
    ASSERT_EQ_INT(whole[10].type, 'Z');

    /* One byte at a time, as a socket might deliver it. */
    uint8_t acc[sizeof STREAM];
    size_t have = 0, ngot = 0;
    for (size_t i = 0; i < total; i++) {
        acc[have++] = STREAM[i];
        size_t k = frame_all(acc, have, got + ngot, 16 - ngot, &used);
        ngot += k;
        memmove(acc, acc + used, have - used);
        have -= used;
    }
    ASSERT_EQ_UINT(have, 0);
    ASSERT_EQ_UINT(ngot, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_INT(got[i].type, whole[i].type);
        ASSERT_EQ_MEM(got[i].body, got[i].len, whole[i].body, whole[i].len);
    }

    /* Two chunks, split at every point. */
    for (size_t split = 0; split <= total; split++) {
        size_t k1 = frame_all(STREAM, split, got, 16, &used);
        memcpy(acc, STREAM + used, total - used);
        size_t k2 = frame_all(acc, total - used, got + k1, 16 - k1, &used);
        ASSERT_EQ_UINT(k1 + k2, n);
        for (size_t i = 0; i < n; i++) {
            ASSERT_EQ_INT(got[i].type, whole[i].type);
            ASSERT_EQ_MEM(got[i].body, got[i].len, whole[i].body,
                          whole[i].len);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Readers                                                                 */
/* ---------------------------------------------------------------------- */

/* Every reader refuses a message of the wrong type. */
TEST(read_wrong_type)
{
    molt_db_msg m = mk('Q', BYTES("\x00\x00\x00\x00\x00\x00\x00\x00\x00"));
    molt_db_error err, out;
    molt_db_error_init(&err);
    molt_db_error_init(&out);
    molt_db_auth_msg a;
    const char *s1, *s2;
    int32_t i1, i2;
    char st;
    size_t n;
    molt_db_column col[1];
    uint32_t oid[1];
    molt_db_field fld[1];
    int fmt;
    ASSERT_CODE(molt_db_proto_read_auth(&m, &a, &err), MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "expected message type 'R'");
    ASSERT_CODE(molt_db_proto_read_parameter_status(&m, &s1, &s2, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_backend_key(&m, &i1, &i2, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_ready(&m, &st, &err), MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_error(&m, &out, &err), MOLT_DB_EPROTO);
    ASSERT_EQ_INT(out.code, MOLT_DB_OK);
    ASSERT_CODE(molt_db_proto_read_count(&m, &n, &err), MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_row_description(&m, col, 1, &n, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_parameter_description(&m, oid, 1, &n, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_data_row(&m, fld, 1, &n, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_command_complete(&m, &s1, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_notification(&m, &i1, &s1, &s2, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_read_copy_response(&m, &fmt, &n, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_copy_column_format(&m, 0), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_proto_read_negotiate_version(&m, &i1, &i2, &err),
                MOLT_DB_EPROTO);
}

TEST(read_auth)
{
    molt_db_auth_msg a;
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_msg m = mk('R', BYTES("\x00\x00\x00\x00"));
    ASSERT_OK(molt_db_proto_read_auth(&m, &a, &err), &err);
    ASSERT_EQ_INT(a.code, MOLT_DB_AUTH_OK);
    ASSERT_EQ_UINT(a.len, 0);

    m = mk('R', BYTES("\x00\x00\x00\x05" "\x01\x02\x03\x04"));
    ASSERT_OK(molt_db_proto_read_auth(&m, &a, &err), &err);
    ASSERT_EQ_INT(a.code, MOLT_DB_AUTH_MD5);
    ASSERT_MEM_IS(a.data, a.len, "\x01\x02\x03\x04");

    m = mk('R', BYTES("\x00\x00\x00\x03"));
    ASSERT_OK(molt_db_proto_read_auth(&m, &a, &err), &err);
    ASSERT_EQ_INT(a.code, MOLT_DB_AUTH_CLEARTEXT);

    m = mk('R', BYTES("\x00\x00\x00\x0b" "r=abc,s=xyz,i=4096"));
    ASSERT_OK(molt_db_proto_read_auth(&m, &a, &err), &err);
    ASSERT_EQ_INT(a.code, MOLT_DB_AUTH_SASL_CONTINUE);
    ASSERT_MEM_IS(a.data, a.len, "r=abc,s=xyz,i=4096");

    m = mk('R', BYTES("\x00\x00\x00\x0c" "v=xyz"));
    ASSERT_OK(molt_db_proto_read_auth(&m, &a, &err), &err);
    ASSERT_EQ_INT(a.code, MOLT_DB_AUTH_SASL_FINAL);
    ASSERT_EQ_UINT(a.len, 5);

    m = mk('R', BYTES("\x00\x00\x00\x0a"
                      "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"));
    ASSERT_OK(molt_db_proto_read_auth(&m, &a, &err), &err);
    ASSERT_EQ_INT(a.code, MOLT_DB_AUTH_SASL);
    size_t pos = 0;
    const char *name = NULL;
    ASSERT_EQ_INT(molt_db_proto_next_sasl_mechanism(&a, &pos, &name), 1);
    ASSERT_EQ_STR(name, "SCRAM-SHA-256-PLUS");
    ASSERT_EQ_INT(molt_db_proto_next_sasl_mechanism(&a, &pos, &name), 1);
    ASSERT_EQ_STR(name, "SCRAM-SHA-256");
    ASSERT_EQ_INT(molt_db_proto_next_sasl_mechanism(&a, &pos, &name), 0);

    /* malformed */
    const struct {
        const char *b;
        size_t n;
    } bad[] = {
        {"", 0},
        {"\x00\x00\x00", 3},
        {"\x00\x00\x00\x00\x00", 5},             /* OK with a trailing byte */
        {"\x00\x00\x00\x05\x01\x02\x03", 7},     /* 3-byte salt */
        {"\x00\x00\x00\x05\x01\x02\x03\x04\x05", 9},
        {"\x00\x00\x00\x03\x00", 5},
        {"\x00\x00\x00\x0a", 4},                  /* SASL, no list at all */
        {"\x00\x00\x00\x0a" "SCRAM", 9},          /* name without NUL */
        {"\x00\x00\x00\x0a" "SCRAM\0", 10},       /* no closing empty name */
        {"\x00\x00\x00\x0a" "SCRAM\0\0x", 12},    /* trailing garbage */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = mk('R', (const uint8_t *)bad[i].b, bad[i].n);
        a.code = -99;
        ASSERT_CODE(molt_db_proto_read_auth(&m, &a, &err), MOLT_DB_EPROTO);
        ASSERT_EQ_INT(a.code, -99);
        ASSERT_EQ_INT(err.code, MOLT_DB_EPROTO);
    }

    /* the iterator checks on its own too */
    molt_db_auth_msg raw = {MOLT_DB_AUTH_SASL, (const uint8_t *)"AB", 2};
    pos = 0;
    ASSERT_CODE(molt_db_proto_next_sasl_mechanism(&raw, &pos, &name),
                MOLT_DB_EPROTO);
    raw.len = 0;
    ASSERT_CODE(molt_db_proto_next_sasl_mechanism(&raw, &pos, &name),
                MOLT_DB_EPROTO);
    molt_db_auth_msg md5 = {MOLT_DB_AUTH_MD5, (const uint8_t *)"\0", 1};
    ASSERT_CODE(molt_db_proto_next_sasl_mechanism(&md5, &pos, &name),
                MOLT_DB_EPROTO);
}

TEST(read_parameter_status_and_key)
{
    molt_db_error err;
    molt_db_error_init(&err);
    const char *name = NULL, *value = NULL;
    molt_db_msg m = mk('S', BYTES("TimeZone\0UTC\0"));
    ASSERT_OK(molt_db_proto_read_parameter_status(&m, &name, &value, &err),
              &err);
    ASSERT_EQ_STR(name, "TimeZone");
    ASSERT_EQ_STR(value, "UTC");
    m = mk('S', BYTES("\0\0"));
    ASSERT_OK(molt_db_proto_read_parameter_status(&m, &name, &value, &err),
              &err);
    ASSERT_EQ_STR(name, "");
    ASSERT_EQ_STR(value, "");
    m = mk('S', BYTES("TimeZone\0UTC"));
    ASSERT_CODE(molt_db_proto_read_parameter_status(&m, &name, &value, &err),
                MOLT_DB_EPROTO);
    m = mk('S', BYTES("TimeZone"));
    ASSERT_CODE(molt_db_proto_read_parameter_status(&m, &name, &value, &err),
                MOLT_DB_EPROTO);
    m = mk('S', BYTES("a\0b\0c"));
    ASSERT_CODE(molt_db_proto_read_parameter_status(&m, &name, &value, &err),
                MOLT_DB_EPROTO);
    m = mk('S', NULL, 0);
    ASSERT_CODE(molt_db_proto_read_parameter_status(&m, &name, &value, &err),
                MOLT_DB_EPROTO);

    int32_t pid = 0, key = 0;
    m = mk('K', BYTES("\x00\x00\x30\x39\xff\xff\xff\xfe"));
    ASSERT_OK(molt_db_proto_read_backend_key(&m, &pid, &key, &err), &err);
    ASSERT_EQ_INT(pid, 12345);
    ASSERT_EQ_INT(key, -2);
    m = mk('K', BYTES("\x00\x00\x30\x39\xff\xff\xff"));
    ASSERT_CODE(molt_db_proto_read_backend_key(&m, &pid, &key, &err),
                MOLT_DB_EPROTO);
    m = mk('K', BYTES("\x00\x00\x30\x39\xff\xff\xff\xfe\x00"));
    ASSERT_CODE(molt_db_proto_read_backend_key(&m, &pid, &key, &err),
                MOLT_DB_EPROTO);
}

TEST(read_ready)
{
    molt_db_error err;
    molt_db_error_init(&err);
    char st = 0;
    const char *ok = "ITE";
    for (const char *s = ok; *s; s++) {
        molt_db_msg m = mk('Z', (const uint8_t *)s, 1);
        ASSERT_OK(molt_db_proto_read_ready(&m, &st, &err), &err);
        ASSERT_EQ_INT(st, *s);
    }
    st = 0;
    molt_db_msg m = mk('Z', BYTES("X"));
    ASSERT_CODE(molt_db_proto_read_ready(&m, &st, &err), MOLT_DB_EPROTO);
    m = mk('Z', NULL, 0);
    ASSERT_CODE(molt_db_proto_read_ready(&m, &st, &err), MOLT_DB_EPROTO);
    m = mk('Z', BYTES("II"));
    ASSERT_CODE(molt_db_proto_read_ready(&m, &st, &err), MOLT_DB_EPROTO);
    ASSERT_EQ_INT(st, 0);
}

TEST(read_error_fields)
{
    molt_db_error err, out;
    molt_db_error_init(&err);
    molt_db_error_init(&out);
    molt_db_msg m = mk(
        'E', BYTES("SERREUR\0VERROR\0C23505\0Mduplicate key\0"
                   "DKey (id)=(1) exists.\0Htry another\0Wsome function\0"
                   "spublic\0tusers\0cid\0dint4\0nusers_pkey\0P17\0"
                   "Fnbtinsert.c\0L663\0Rcheck\0Zunknown field\0\0"));
    ASSERT_OK(molt_db_proto_read_error(&m, &out, &err), &err);
    ASSERT_EQ_INT(out.code, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(out.severity, "ERROR"); /* V wins over localized S */
    ASSERT_EQ_STR(out.sqlstate, "23505");
    ASSERT_EQ_STR(out.message, "duplicate key");
    ASSERT_EQ_STR(out.detail, "Key (id)=(1) exists.");
    ASSERT_EQ_STR(out.hint, "try another");
    ASSERT_EQ_STR(out.where, "some function");
    ASSERT_EQ_STR(out.schema, "public");
    ASSERT_EQ_STR(out.table, "users");
    ASSERT_EQ_STR(out.column, "id");
    ASSERT_EQ_STR(out.datatype, "int4");
    ASSERT_EQ_STR(out.constraint, "users_pkey");
    ASSERT_EQ_INT(out.position, 17);

    /* Reading again replaces (and frees) the old fields. A notice with
     * only S, a bad sqlstate and a bad position. */
    m = mk('N', BYTES("SWARNING\0C2200\0Mcareful\0P1x\0\0"));
    ASSERT_OK(molt_db_proto_read_error(&m, &out, &err), &err);
    ASSERT_EQ_STR(out.severity, "WARNING");
    ASSERT_EQ_STR(out.sqlstate, "");
    ASSERT_EQ_STR(out.message, "careful");
    ASSERT(out.detail == NULL);
    ASSERT(out.constraint == NULL);
    ASSERT_EQ_INT(out.position, 0);

    m = mk('E', BYTES("C22P02\0P99999999999\0\0"));
    ASSERT_OK(molt_db_proto_read_error(&m, &out, &err), &err);
    ASSERT_EQ_STR(out.sqlstate, "22P02");
    ASSERT_EQ_INT(out.position, 0);
    ASSERT(out.severity == NULL);
    ASSERT_EQ_STR(out.message, "");

    m = mk('E', BYTES("C2200a\0Cxx\0\0"));
    ASSERT_OK(molt_db_proto_read_error(&m, &out, &err), &err);
    ASSERT_EQ_STR(out.sqlstate, "");

    /* only the terminator */
    m = mk('E', BYTES("\0"));
    ASSERT_OK(molt_db_proto_read_error(&m, &out, &err), &err);
    ASSERT_EQ_INT(out.code, MOLT_DB_ESERVER);
    molt_db_error_clear(&out);
}

TEST(read_error_long_message_truncated)
{
    static uint8_t body[4000];
    size_t n = 0;
    body[n++] = 'M';
    for (int i = 0; i < 3000; i++)
        body[n++] = (uint8_t)('a' + i % 26);
    body[n++] = 0;
    body[n++] = 0;
    molt_db_msg m = mk('E', body, n);
    molt_db_error out, err;
    molt_db_error_init(&out);
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_proto_read_error(&m, &out, &err), &err);
    ASSERT_EQ_UINT(strlen(out.message), MOLT_DB_ERROR_MESSAGE_SIZE - 1);
    ASSERT_EQ_INT(out.message[25], 'z');
    molt_db_error_clear(&out);
}

TEST(read_error_malformed)
{
    const struct {
        const char *b;
        size_t n;
    } bad[] = {
        {"", 0},                        /* no terminator */
        {"SERROR\0", 7},                /* no terminator */
        {"SERROR", 6},                  /* value without NUL */
        {"M", 1},                       /* code, no value */
        {"SERROR\0\0x", 9},             /* trailing byte */
        {"\0\0", 2},                    /* trailing after terminator */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        molt_db_msg m = mk('E', (const uint8_t *)bad[i].b, bad[i].n);
        molt_db_error out, err;
        molt_db_error_init(&err);
        molt_db_error_init(&out);
        /* out keeps what it had on EPROTO */
        molt_db_error_set(&out, MOLT_DB_EIO, "before");
        ASSERT_CODE(molt_db_proto_read_error(&m, &out, &err), MOLT_DB_EPROTO);
        ASSERT_EQ_INT(err.code, MOLT_DB_EPROTO);
        ASSERT_EQ_INT(out.code, MOLT_DB_EIO);
        ASSERT_EQ_STR(out.message, "before");
    }
}

static const uint8_t ROWDESC[] =
    "\x00\x02"
    "id\0" "\x00\x00\x40\x00" "\x00\x01" "\x00\x00\x00\x17" "\x00\x04"
    "\xff\xff\xff\xff" "\x00\x01"
    "name\0" "\x00\x00\x00\x00" "\x00\x00" "\x00\x00\x00\x19" "\xff\xff"
    "\x00\x00\x00\x44" "\x00\x00";

TEST(read_row_description)
{
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_msg m = mk('T', ROWDESC, sizeof ROWDESC - 1);
    size_t n = 99;
    ASSERT_OK(molt_db_proto_read_count(&m, &n, &err), &err);
    ASSERT_EQ_UINT(n, 2);
    molt_db_column cols[2];
    ASSERT_OK(molt_db_proto_read_row_description(&m, cols, 2, &n, &err), &err);
    ASSERT_EQ_UINT(n, 2);
    ASSERT_EQ_STR(cols[0].name, "id");
    ASSERT_EQ_UINT(cols[0].table_oid, 0x4000);
    ASSERT_EQ_INT(cols[0].column_number, 1);
    ASSERT_EQ_UINT(cols[0].type_oid, 23);
    ASSERT_EQ_INT(cols[0].type_size, 4);
    ASSERT_EQ_INT(cols[0].type_modifier, -1);
    ASSERT_EQ_INT(cols[0].format, MOLT_DB_FORMAT_BINARY);
    ASSERT_EQ_STR(cols[1].name, "name");
    ASSERT_EQ_UINT(cols[1].type_oid, 25);
    ASSERT_EQ_INT(cols[1].type_size, -1);
    ASSERT_EQ_INT(cols[1].type_modifier, 0x44);
    ASSERT_EQ_INT(cols[1].format, MOLT_DB_FORMAT_TEXT);

    /* too little room: ERANGE and the needed count */
    n = 0;
    ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 1, &n, &err),
                MOLT_DB_ERANGE);
    ASSERT_EQ_UINT(n, 2);

    /* zero columns */
    m = mk('T', BYTES("\x00\x00"));
    ASSERT_OK(molt_db_proto_read_row_description(&m, NULL, 0, &n, &err), &err);
    ASSERT_EQ_UINT(n, 0);

    /* every truncation of the valid body is malformed */
    for (size_t len = 0; len < sizeof ROWDESC - 1; len++) {
        m = mk('T', ROWDESC, len);
        ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 2, &n, &err),
                    MOLT_DB_EPROTO);
    }
    uint8_t body[sizeof ROWDESC + 1];
    memcpy(body, ROWDESC, sizeof ROWDESC - 1);
    /* trailing garbage */
    body[sizeof ROWDESC - 1] = 'x';
    m = mk('T', body, sizeof ROWDESC);
    ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 2, &n, &err),
                MOLT_DB_EPROTO);
    /* a count larger than the body could hold: EPROTO before ERANGE */
    memcpy(body, "\x7f\xff", 2);
    m = mk('T', body, sizeof ROWDESC - 1);
    ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 2, &n, &err),
                MOLT_DB_EPROTO);
    /* one column more than the body holds */
    memcpy(body, "\x00\x03", 2);
    ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 3, &n, &err),
                MOLT_DB_EPROTO);
    /* unknown format code */
    memcpy(body, ROWDESC, sizeof ROWDESC - 1);
    body[sizeof ROWDESC - 2] = 2;
    ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 2, &n, &err),
                MOLT_DB_EPROTO);
    /* a name that runs to the end without NUL */
    m = mk('T', BYTES("\x00\x01" "abcdefghijklmnopqrstuvwxyz"));
    ASSERT_CODE(molt_db_proto_read_row_description(&m, cols, 2, &n, &err),
                MOLT_DB_EPROTO);
    m = mk('T', BYTES("\x00"));
    ASSERT_CODE(molt_db_proto_read_count(&m, &n, &err), MOLT_DB_EPROTO);
}

TEST(read_parameter_description)
{
    molt_db_error err;
    molt_db_error_init(&err);
    uint32_t oids[3];
    size_t n = 0;
    molt_db_msg m = mk('t', BYTES("\x00\x02\x00\x00\x00\x17\x00\x00\x04\x13"));
    ASSERT_OK(molt_db_proto_read_count(&m, &n, &err), &err);
    ASSERT_EQ_UINT(n, 2);
    ASSERT_OK(molt_db_proto_read_parameter_description(&m, oids, 3, &n, &err),
              &err);
    ASSERT_EQ_UINT(n, 2);
    ASSERT_EQ_UINT(oids[0], 23);
    ASSERT_EQ_UINT(oids[1], 1043);
    ASSERT_CODE(molt_db_proto_read_parameter_description(&m, oids, 1, &n, &err),
                MOLT_DB_ERANGE);
    ASSERT_EQ_UINT(n, 2);
    m = mk('t', BYTES("\x00\x02\x00\x00\x00\x17\x00\x00\x04"));
    ASSERT_CODE(molt_db_proto_read_parameter_description(&m, oids, 3, &n, &err),
                MOLT_DB_EPROTO);
    m = mk('t', BYTES("\x00\x01\x00\x00\x00\x17\x00\x00\x04\x13"));
    ASSERT_CODE(molt_db_proto_read_parameter_description(&m, oids, 3, &n, &err),
                MOLT_DB_EPROTO);
    m = mk('t', BYTES("\x00\x00"));
    ASSERT_OK(molt_db_proto_read_parameter_description(&m, NULL, 0, &n, &err),
              &err);
    ASSERT_EQ_UINT(n, 0);
}

TEST(read_data_row)
{
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_field f[4];
    size_t n = 0;
    molt_db_msg m = mk('D', BYTES("\x00\x03"
                                  "\x00\x00\x00\x02" "42"
                                  "\xff\xff\xff\xff"
                                  "\x00\x00\x00\x00"));
    ASSERT_OK(molt_db_proto_read_count(&m, &n, &err), &err);
    ASSERT_EQ_UINT(n, 3);
    ASSERT_OK(molt_db_proto_read_data_row(&m, f, 4, &n, &err), &err);
    ASSERT_EQ_UINT(n, 3);
    ASSERT_MEM_IS(f[0].data, f[0].len, "42");
    ASSERT_EQ_INT(f[1].len, -1);
    ASSERT(f[1].data == NULL);
    ASSERT_EQ_INT(f[2].len, 0);
    ASSERT(f[2].data != NULL);
    ASSERT_CODE(molt_db_proto_read_data_row(&m, f, 2, &n, &err),
                MOLT_DB_ERANGE);
    ASSERT_EQ_UINT(n, 3);

    const struct {
        const char *b;
        size_t n;
    } bad[] = {
        {"", 0},
        {"\x00", 1},
        {"\x00\x01", 2},                                  /* count > body */
        {"\x00\x01\x00\x00\x00", 5},                      /* short length */
        {"\x00\x01\xff\xff\xff\xfe", 6},                  /* length -2 */
        {"\x00\x01\x80\x00\x00\x00", 6},                  /* INT32_MIN */
        {"\x00\x01\x00\x00\x00\x03" "ab", 8},             /* past the end */
        {"\x00\x01\x7f\xff\xff\xff" "ab", 8},             /* huge */
        {"\x00\x01\x00\x00\x00\x01" "ab", 8},             /* trailing */
        {"\x00\x02\x00\x00\x00\x00\xff\xff\xff\xff\x00", 11},
        {"\xff\xff\x00\x00\x00\x00", 6},                  /* 65535 fields */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = mk('D', (const uint8_t *)bad[i].b, bad[i].n);
        n = 77;
        ASSERT_CODE(molt_db_proto_read_data_row(&m, f, 4, &n, &err),
                    MOLT_DB_EPROTO);
        ASSERT_EQ_UINT(n, 0);
    }
}

TEST(read_command_complete_and_tags)
{
    molt_db_error err;
    molt_db_error_init(&err);
    const char *tag = NULL;
    molt_db_msg m = mk('C', BYTES("INSERT 0 5\0"));
    ASSERT_OK(molt_db_proto_read_command_complete(&m, &tag, &err), &err);
    ASSERT_EQ_STR(tag, "INSERT 0 5");
    m = mk('C', BYTES("INSERT 0 5"));
    ASSERT_CODE(molt_db_proto_read_command_complete(&m, &tag, &err),
                MOLT_DB_EPROTO);
    m = mk('C', BYTES("BEGIN\0x"));
    ASSERT_CODE(molt_db_proto_read_command_complete(&m, &tag, &err),
                MOLT_DB_EPROTO);
    m = mk('C', NULL, 0);
    ASSERT_CODE(molt_db_proto_read_command_complete(&m, &tag, &err),
                MOLT_DB_EPROTO);

    const struct {
        const char *tag;
        int has;
        uint64_t rows;
    } cases[] = {
        {"SELECT 3", 1, 3},
        {"SELECT 0", 1, 0},
        {"INSERT 0 1", 1, 1},
        {"INSERT 0 18446744073709551615", 1, UINT64_MAX},
        {"UPDATE 42", 1, 42},
        {"DELETE 7", 1, 7},
        {"MERGE 2", 1, 2},
        {"MOVE 5", 1, 5},
        {"FETCH 10", 1, 10},
        {"COPY 1000000", 1, 1000000},
        {"CREATE TABLE", 0, 0},
        {"BEGIN", 0, 0},
        {"SELECT", 0, 0},
        {"SELECT ", 0, 0},
        {"SELECT 3x", 0, 0},
        {"SELECT -3", 0, 0},
        {"SELECT 18446744073709551616", 0, 0},
        {"INSERT 1", 0, 0},
        {"INSERT  1", 0, 0},
        {"INSERT x 1", 0, 0},
        {"SELECTED 3", 0, 0},
        {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t rows = 12345;
        int has = molt_db_proto_tag_rows(cases[i].tag, &rows);
        if (has != cases[i].has)
            FAIL_AT("tag \"%s\": has %d, want %d", cases[i].tag, has,
                    cases[i].has);
        ASSERT_EQ_UINT(rows, has ? cases[i].rows : 12345);
    }
    uint64_t rows;
    ASSERT_EQ_INT(molt_db_proto_tag_rows(NULL, &rows), 0);
}

TEST(read_notification)
{
    molt_db_error err;
    molt_db_error_init(&err);
    int32_t pid = 0;
    const char *ch = NULL, *pl = NULL;
    molt_db_msg m = mk('A', BYTES("\x00\x00\x01\x00" "jobs\0" "{\"id\":1}\0"));
    ASSERT_OK(molt_db_proto_read_notification(&m, &pid, &ch, &pl, &err), &err);
    ASSERT_EQ_INT(pid, 256);
    ASSERT_EQ_STR(ch, "jobs");
    ASSERT_EQ_STR(pl, "{\"id\":1}");
    m = mk('A', BYTES("\x00\x00\x01\x00" "jobs\0"));
    ASSERT_CODE(molt_db_proto_read_notification(&m, &pid, &ch, &pl, &err),
                MOLT_DB_EPROTO);
    m = mk('A', BYTES("\x00\x00\x01"));
    ASSERT_CODE(molt_db_proto_read_notification(&m, &pid, &ch, &pl, &err),
                MOLT_DB_EPROTO);
    m = mk('A', BYTES("\x00\x00\x01\x00" "a\0b\0c"));
    ASSERT_CODE(molt_db_proto_read_notification(&m, &pid, &ch, &pl, &err),
                MOLT_DB_EPROTO);
}

TEST(read_copy_response)
{
    molt_db_error err;
    molt_db_error_init(&err);
    int fmt = -1;
    size_t ncols = 99;
    molt_db_msg m = mk('H', BYTES("\x00\x00\x02\x00\x00\x00\x00"));
    ASSERT_OK(molt_db_proto_read_copy_response(&m, &fmt, &ncols, &err), &err);
    ASSERT_EQ_INT(fmt, 0);
    ASSERT_EQ_UINT(ncols, 2);
    ASSERT_EQ_INT(molt_db_proto_copy_column_format(&m, 1), 0);

    m = mk('G', BYTES("\x01\x00\x03\x00\x01\x00\x01\x00\x00"));
    ASSERT_OK(molt_db_proto_read_copy_response(&m, &fmt, &ncols, &err), &err);
    ASSERT_EQ_INT(fmt, 1);
    ASSERT_EQ_UINT(ncols, 3);
    ASSERT_EQ_INT(molt_db_proto_copy_column_format(&m, 0), 1);
    ASSERT_EQ_INT(molt_db_proto_copy_column_format(&m, 2), 0);
    ASSERT_CODE(molt_db_proto_copy_column_format(&m, 3), MOLT_DB_EINVAL);

    m = mk('W', BYTES("\x00\x00\x00"));
    ASSERT_OK(molt_db_proto_read_copy_response(&m, &fmt, &ncols, &err), &err);
    ASSERT_EQ_UINT(ncols, 0);

    const char *bad[] = {"\x00\x00\x02\x00\x00\x00",       /* short */
                         "\x00\x00\x01\x00\x00\x00\x00",   /* trailing */
                         "\x02\x00\x01\x00\x00\xff\xff",   /* overall 2 */
                         "\x00\x00\x01\x00\x01\xff\xff",   /* text, col bin */
                         "\x01\x00\x01\x00\x02\xff\xff",   /* col format 2 */
                         "\x01\x00\x01\xff\xff\xff\xff"};  /* col -1 */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* the first two are 6 and 7 bytes; the rest are 5 (one column) */
        size_t len = i == 0 ? 6 : i == 1 ? 7 : 5;
        m = mk('H', (const uint8_t *)bad[i], len);
        ASSERT_CODE(molt_db_proto_read_copy_response(&m, &fmt, &ncols, &err),
                    MOLT_DB_EPROTO);
    }
    m = mk('H', BYTES("\x00\x00"));
    ASSERT_CODE(molt_db_proto_read_copy_response(&m, &fmt, &ncols, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_proto_copy_column_format(&m, 0), MOLT_DB_EINVAL);
}

TEST(read_negotiate_version)
{
    molt_db_error err;
    molt_db_error_init(&err);
    int32_t minor = -1, nunrec = -1;
    molt_db_msg m = mk('v', BYTES("\x00\x00\x00\x00\x00\x00\x00\x01"
                                  "_pq_.foo\0"));
    ASSERT_OK(molt_db_proto_read_negotiate_version(&m, &minor, &nunrec, &err),
              &err);
    ASSERT_EQ_INT(minor, 0);
    ASSERT_EQ_INT(nunrec, 1);
    m = mk('v', BYTES("\x00\x00\x00\x02\x00\x00\x00\x00"));
    ASSERT_OK(molt_db_proto_read_negotiate_version(&m, &minor, &nunrec, &err),
              &err);
    ASSERT_EQ_INT(minor, 2);
    ASSERT_EQ_INT(nunrec, 0);
    const struct {
        const char *b;
        size_t n;
    } bad[] = {
        {"\x00\x00\x00\x00\x00\x00\x00\x02" "_pq_.foo\0", 17},
        {"\x00\x00\x00\x00\x00\x00\x00\x01" "_pq_.foo", 16},
        {"\x00\x00\x00\x00\x00\x00\x00\x00" "x", 9},
        {"\x00\x00\x00\x00\xff\xff\xff\xff", 8},
        {"\x00\x00\x00\x00\x00\x00", 6},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = mk('v', (const uint8_t *)bad[i].b, bad[i].n);
        ASSERT_CODE(molt_db_proto_read_negotiate_version(&m, &minor, &nunrec,
                                                         &err),
                    MOLT_DB_EPROTO);
    }
}

/* Encoded frontend messages frame like backend ones (same header); a
 * round trip through the framer checks the backpatched lengths. */
TEST(write_lengths_frame)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_proto_write_copy_data(&b, BYTES("hello")), NULL);
    ASSERT_OK(molt_db_proto_write_copy_done(&b), NULL);
    molt_db_msg msg;
    size_t consumed;
    ASSERT_OK(molt_db_proto_next(b.data, b.len, &msg, &consumed, NULL, NULL),
              NULL);
    ASSERT_EQ_INT(msg.type, 'd');
    ASSERT_MEM_IS(msg.body, msg.len, "hello");
    ASSERT_OK(molt_db_proto_next(b.data + consumed, b.len - consumed, &msg,
                                 &consumed, NULL, NULL),
              NULL);
    ASSERT_EQ_INT(msg.type, 'c');
    ASSERT_EQ_UINT(msg.len, 0);
    molt_db_buf_free(&b);
}

TEST_MAIN(TEST_ENTRY(write_startup), TEST_ENTRY(write_ssl_and_cancel),
          TEST_ENTRY(write_password_and_sasl), TEST_ENTRY(write_query),
          TEST_ENTRY(write_parse), TEST_ENTRY(write_bind),
          TEST_ENTRY(write_describe_execute_close),
          TEST_ENTRY(write_fixed_and_copy),
          TEST_ENTRY(write_appends_and_restores_len),
          TEST_ENTRY(write_enomem_restores_len),
          TEST_ENTRY(write_lengths_frame), TEST_ENTRY(next_known_types),
          TEST_ENTRY(next_bad_lengths), TEST_ENTRY(next_need_more),
          TEST_ENTRY(next_stream_every_split), TEST_ENTRY(read_wrong_type),
          TEST_ENTRY(read_auth), TEST_ENTRY(read_parameter_status_and_key),
          TEST_ENTRY(read_ready), TEST_ENTRY(read_error_fields),
          TEST_ENTRY(read_error_long_message_truncated),
          TEST_ENTRY(read_error_malformed), TEST_ENTRY(read_row_description),
          TEST_ENTRY(read_parameter_description), TEST_ENTRY(read_data_row),
          TEST_ENTRY(read_command_complete_and_tags),
          TEST_ENTRY(read_notification), TEST_ENTRY(read_copy_response),
          TEST_ENTRY(read_negotiate_version))
