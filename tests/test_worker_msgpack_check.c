/*
 * The worker's MsgPack pre-check (worker/msgpack_check.c): the zone size it
 * computes is exactly what msgpack-c's unpack takes (one chunk, nothing
 * left over past the minimum), for nested, empty and mixed containers; and
 * its UTF-8 check, whose ASCII fast path must still find a bad byte
 * anywhere in a str of any length; and the keys mw_msgpack_check_keys
 * indexes in its walk, which must be mw_mpread_keys's.
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
    /* and in every shorter str, where the ASCII check's loads overlap */
    for (size_t n = 1; n < 16; n++)
        for (size_t at = 0; at < n; at++) {
            memset(s, 'a', n);
            s[n] = 0;
            ASSERT_EQ_INT(valid(s), 1);
            s[at] = (char)0xff;
            ASSERT_EQ_INT(valid(s), 0);
        }
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaa\xc3"), 0);           /* truncated at the end */
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaaa\xc0\xaf"), 0);      /* overlong */
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaaa\xed\xa0\x80"), 0);  /* a surrogate */
    ASSERT_EQ_INT(valid("aaaaaaaaaaaaaaaa\xf4\x90\x80\x80"), 0); /* past U+10FFFF */
}

/* mw_msgpack_check_keys on sb's bytes finds what mw_mpread_keys finds
 * (c: the check's result; MW_MP_OK and BAD_UTF8 index, others do not). */
static void check_keys_match(const msgpack_sbuffer *sb, mw_mp_check want, int want_found)
{
    static const mw_mpkey names[] = {
        {"a", 1}, {"b", 1}, {"c", 1}, {"missing", 7}, {"bin", 3},
        {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", 40}, {"", 0},
    };
    const int n = (int)(sizeof names / sizeof names[0]);
    const uint8_t *p = (const uint8_t *)sb->data;
    size_t end = 0, zone = 0, i = 0;
    mw_mpkeys got, ref;
    memset(&got, 0xa5, sizeof got);
    ASSERT_EQ_INT(mw_msgpack_check_keys(p, sb->size, names, n, &got, &end, &zone), want);
    mw_mpval top;
    int indexed = (want == MW_MP_OK || want == MW_MP_BAD_UTF8) &&
                  mw_mpread_head(p, sb->size, &i, &top) == 0 && top.type == MSGPACK_OBJECT_MAP;
    memset(&ref, 0, sizeof ref);
    if (indexed)
        ASSERT_EQ_INT(mw_mpread_keys(p, sb->size, i, top.size, names, n, &ref), 0);
    int found = 0;
    for (int k = 0; k < n; k++) {
        ASSERT_EQ_INT(got.v[k] != NULL, ref.v[k] != NULL);
        ASSERT_EQ_INT(got.dup[k], ref.dup[k]);
        if (!ref.v[k])
            continue;
        found++;
        ASSERT_EQ_INT(got.v[k]->v.type, ref.v[k]->v.type);
        ASSERT_EQ_UINT(got.v[k]->v.u64, ref.v[k]->v.u64);
        ASSERT_EQ_UINT(got.v[k]->v.size, ref.v[k]->v.size);
        ASSERT_EQ_INT(got.v[k]->v.ptr == ref.v[k]->v.ptr, 1);
        ASSERT_EQ_UINT(got.v[k]->start, ref.v[k]->start);
        ASSERT_EQ_UINT(got.v[k]->at, ref.v[k]->at);
    }
    ASSERT_EQ_INT(found, want_found);
}

static void test_keys(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char longkey[41];
    memset(longkey, 'k', 40);
    longkey[40] = 0;
    msgpack_pack_map(&pk, 8);
    pack_str(&pk, "b");
    msgpack_pack_int(&pk, -3);
    pack_str(&pk, "a"); /* a nested map whose keys are not the top's */
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "c");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    pack_str(&pk, "b");
    pack_str(&pk, "missing");
    msgpack_pack_nil(&pk);
    msgpack_pack_int(&pk, 7); /* a key that is no str */
    pack_str(&pk, "c");
    pack_str(&pk, "c");
    pack_str(&pk, "ccc");
    pack_str(&pk, "a"); /* again: the first value stays */
    msgpack_pack_uint64(&pk, 1u << 20);
    pack_str(&pk, longkey); /* a str 8 key */
    msgpack_pack_true(&pk);
    pack_str(&pk, "bin");
    msgpack_pack_bin_with_body(&pk, "\xff\x00", 2);
    pack_str(&pk, "");
    msgpack_pack_double(&pk, 1.5);
    check_keys_match(&sb, MW_MP_OK, 6);
    /* cut anywhere: no key */
    for (size_t n = 0; n < sb.size; n++) {
        msgpack_sbuffer cut = {n, sb.data, n};
        check_keys_match(&cut, MW_MP_TRUNCATED, 0);
    }
    /* a bad str: still indexed */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "a");
    msgpack_pack_str_with_body(&pk, "x\xff", 2);
    pack_str(&pk, "b");
    msgpack_pack_int(&pk, 1);
    check_keys_match(&sb, MW_MP_BAD_UTF8, 2);
    /* not a map: no key */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2);
    pack_str(&pk, "a");
    pack_str(&pk, "b");
    check_keys_match(&sb, MW_MP_OK, 0);
    msgpack_sbuffer_destroy(&sb);
}

TEST_MAIN(TEST_ENTRY(test_zone_is_exact), TEST_ENTRY(test_bad_utf8_still_sized),
          TEST_ENTRY(test_utf8), TEST_ENTRY(test_keys))
