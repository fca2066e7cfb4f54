/*
 * The worker's MsgPack pre-check (worker/msgpack_check.c): the zone size it
 * computes is exactly what msgpack-c's unpack takes (one chunk, nothing
 * left over past the minimum), for nested, empty and mixed containers; and
 * its UTF-8 check, whose ASCII fast path must still find a bad byte
 * anywhere in a str.
 */
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "msgpack_check.h"
#include "test.h"

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Checks and unpacks sb's bytes: the zone holds exactly the objects. */
static void check_exact_zone(const msgpack_sbuffer *sb, size_t want_zone)
{
    size_t end = 0, zone = 0;
    ASSERT_EQ_INT(mw_msgpack_check((const uint8_t *)sb->data, sb->size, &end, &zone),
                  MW_MP_OK);
    ASSERT_EQ_UINT(end, sb->size);
    ASSERT_EQ_UINT(zone, want_zone);
    msgpack_unpacked u;
    ASSERT_EQ_INT(mw_msgpack_unpack((const uint8_t *)sb->data, sb->size, zone, &u),
                  MSGPACK_UNPACK_SUCCESS);
    /* the one chunk made, used up to the byte (64 is the smallest made):
     * a count too small would have made a second chunk, one too large
     * would leave bytes free */
    size_t chunk = zone < 64 ? 64 : zone;
    ASSERT_EQ_UINT(u.zone->chunk_list.free, chunk - zone);
    msgpack_unpacked_destroy(&u);
}

static void test_zone_is_exact(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* a db_query payload: {sql, params: {mode, values: [1, "x", [2, 3]]},
     * result_format, empty: {}, none: []} */
    msgpack_pack_map(&pk, 5);
    pack_str(&pk, "sql");
    pack_str(&pk, "SELECT $1, $2, $3");
    pack_str(&pk, "params");
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "mode");
    pack_str(&pk, "positional");
    pack_str(&pk, "values");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_bin_with_body(&pk, "x", 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_int(&pk, 3);
    pack_str(&pk, "result_format");
    pack_str(&pk, "msgpack");
    pack_str(&pk, "empty");
    msgpack_pack_map(&pk, 0);
    pack_str(&pk, "none");
    msgpack_pack_array(&pk, 0);
    /* maps: 5 + 2 pairs (a msgpack_object_kv each), arrays: 3 + 2 elements */
    check_exact_zone(&sb, 7 * sizeof(msgpack_object_kv) + 5 * sizeof(msgpack_object));

    /* a scalar takes nothing; a big flat array takes one object each */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_int(&pk, 7);
    check_exact_zone(&sb, 0);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 1000);
    for (int i = 0; i < 1000; i++)
        msgpack_pack_nil(&pk);
    check_exact_zone(&sb, 1000 * sizeof(msgpack_object));
    msgpack_sbuffer_destroy(&sb);
}

static void test_bad_utf8_still_sized(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "request_id");
    msgpack_pack_int(&pk, 5);
    pack_str(&pk, "entry");
    msgpack_pack_str_with_body(&pk, "db_query\xff", 9);
    size_t end = 0, zone = 0;
    ASSERT_EQ_INT(mw_msgpack_check((const uint8_t *)sb.data, sb.size, &end, &zone),
                  MW_MP_BAD_UTF8);
    ASSERT_EQ_UINT(end, sb.size);
    ASSERT_EQ_UINT(zone, 2 * sizeof(msgpack_object_kv));
    msgpack_sbuffer_destroy(&sb);
}

static int valid(const char *s)
{
    return mw_utf8_valid((const uint8_t *)s, strlen(s));
}

static void test_utf8(void)
{
    ASSERT_EQ_INT(valid(""), 1);
    ASSERT_EQ_INT(valid("SELECT abalance FROM pgbench_accounts"), 1);
    ASSERT_EQ_INT(valid("SELECT 'h\xc3\xa9llo', '\xe2\x82\xac', '\xf0\x9f\x98\x80' x"), 1);
    /* a bad byte at every offset of a long ASCII run, past the 8-byte steps */
    char s[40];
    for (size_t at = 0; at < sizeof s - 1; at++) {
        memset(s, 'a', sizeof s - 1);
        s[sizeof s - 1] = 0;
        s[at] = (char)0xff;
        ASSERT_EQ_INT(valid(s), 0);
        s[at] = (char)0xc3; /* a lead byte without its continuation */
        ASSERT_EQ_INT(valid(s), 0);
    }
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaa\xc3"), 0);           /* truncated at the end */
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaaa\xc0\xaf"), 0);      /* overlong */
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaaa\xed\xa0\x80"), 0);  /* a surrogate */
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaaa\xf4\x90\x80\x80"), 0); /* past U+10FFFF */
}

TEST_MAIN(TEST_ENTRY(test_zone_is_exact), TEST_ENTRY(test_bad_utf8_still_sized),
          TEST_ENTRY(test_utf8))
