/*
 * Array parameters as PostgreSQL text array literals (worker/pg_array.c):
 * the exact literal for str elements that could end, split or turn into
 * NULL, the type the elements imply, and every refused shape.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "pg_array.h"
#include "test.h"

typedef struct built {
    char text[512]; /* the literal, or "ERR message" */
    const char *type;
} built;

/* The literal of the array packed in sb, read from its bytes in place. */
static built literal(msgpack_sbuffer *sb)
{
    built b = {{0}, NULL};
    char *lit = NULL, err[MW_PG_ARRAY_ERR_SIZE];
    size_t len = 0;
    int rc = mw_pg_array_literal((const uint8_t *)sb->data, sb->size, &lit, &len,
                                 &b.type, err);
    if (rc == 0) {
        ASSERT(len < sizeof b.text && strlen(lit) == len);
        memcpy(b.text, lit, len + 1);
        free(lit);
    } else {
        ASSERT_EQ_INT(rc, -1);
        ASSERT(lit == NULL);
        snprintf(b.text, sizeof b.text, "ERR %s", err);
    }
    msgpack_sbuffer_clear(sb);
    return b;
}

static void str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void test_str_elements_are_quoted_and_escaped(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 8);
    str(&pk, "a\"b");
    str(&pk, "c\\d");
    str(&pk, "NULL");
    msgpack_pack_nil(&pk);
    str(&pk, "");
    str(&pk, "e,f");
    str(&pk, "{g} ");
    str(&pk, "\\\"");
    built b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{\"a\\\"b\",\"c\\\\d\",\"NULL\",NULL,\"\",\"e,f\",\"{g} \",\"\\\\\\\"\"}");
    ASSERT(b.type == NULL); /* str goes untyped: the server infers */
    msgpack_sbuffer_destroy(&sb);
}

static void test_dimensions_and_element_types(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_uint64(&pk, INT64_MAX);
    built b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{{1,-9223372036854775808},{NULL,9223372036854775807}}");
    ASSERT_EQ_STR(b.type, "int8[]");

    msgpack_pack_array(&pk, 3);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_nil(&pk);
    b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{1,2.5,NULL}");
    ASSERT_EQ_STR(b.type, "float8[]");

    msgpack_pack_array(&pk, 2);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{t,f}");
    ASSERT_EQ_STR(b.type, "bool[]");

    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin_with_body(&pk, "\x00\xff", 2);
    msgpack_pack_bin_with_body(&pk, "", 0);
    b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{\"\\\\x00ff\",\"\\\\x\"}");
    ASSERT_EQ_STR(b.type, "bytea[]");

    msgpack_pack_array(&pk, 0);
    b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{}");
    ASSERT(b.type == NULL);

    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_array(&pk, 0);
    b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{}");

    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    b = literal(&sb);
    ASSERT_EQ_STR(b.text, "{NULL,NULL}");
    ASSERT(b.type == NULL);
    msgpack_sbuffer_destroy(&sb);
}

static void test_refused_shapes(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_array(&pk, 2); /* [[1], [2, 3]] */
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int64(&pk, 2);
    msgpack_pack_int64(&pk, 3);
    ASSERT_CONTAINS(literal(&sb).text, "ERR a nested array is ragged");

    msgpack_pack_array(&pk, 2); /* [[], [1]] */
    msgpack_pack_array(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, 1);
    ASSERT_CONTAINS(literal(&sb).text, "ERR a nested array is ragged");

    msgpack_pack_array(&pk, 2); /* [1, [2]] */
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, 2);
    ASSERT_CONTAINS(literal(&sb).text, "ERR a nested array mixes lists and values");

    msgpack_pack_array(&pk, 2); /* [1, "1"] */
    msgpack_pack_int64(&pk, 1);
    str(&pk, "1");
    ASSERT_CONTAINS(literal(&sb).text, "ERR array elements mix types");

    msgpack_pack_array(&pk, 2); /* [true, 1] */
    msgpack_pack_true(&pk);
    msgpack_pack_int64(&pk, 1);
    ASSERT_CONTAINS(literal(&sb).text, "ERR array elements mix types");

    msgpack_pack_array(&pk, 1); /* [{}] */
    msgpack_pack_map(&pk, 0);
    ASSERT_CONTAINS(literal(&sb).text, "ERR array elements are nil, bool");

    msgpack_pack_array(&pk, 1); /* [2^64 - 1] */
    msgpack_pack_uint64(&pk, UINT64_MAX);
    ASSERT_CONTAINS(literal(&sb).text, "signed 64-bit");

    for (int i = 0; i < 6; i++) /* 6 dimensions pass, 7 do not */
        msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, 1);
    ASSERT_EQ_STR(literal(&sb).text, "{{{{{{1}}}}}}");
    for (int i = 0; i < 7; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, 1);
    ASSERT_CONTAINS(literal(&sb).text, "ERR an array has more than 6 dimensions");
    msgpack_sbuffer_destroy(&sb);
}

TEST_MAIN(TEST_ENTRY(test_str_elements_are_quoted_and_escaped),
          TEST_ENTRY(test_dimensions_and_element_types), TEST_ENTRY(test_refused_shapes))
