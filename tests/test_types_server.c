/* Type codecs against a real server: binary results rendered with
 * molt_db_value_to_text must equal the server's own text, and values
 * encoded by our encoders, sent as binary parameters, must read back as the
 * expected text. Every type molt_db_type_binary_supported accepts is
 * covered in both directions, and every scalar of the type table is read
 * in both result formats (binary and the server's text) to the same value. */
#include <math.h>

#include "molt_db/types.h"
#include "molt_db/value.h"
#include "pgtest.h"

static pgt_conn *conn;
/* oids seen as binary result columns / sent as binary parameters / read
 * in both formats and compared */
static uint32_t seen_out[256], seen_in[256], seen_both[256];
static size_t nseen_out, nseen_in, nseen_both;

static void mark(uint32_t *set, size_t *n, uint32_t oid)
{
    for (size_t i = 0; i < *n; i++)
        if (set[i] == oid)
            return;
    ASSERT(*n < 256);
    set[(*n)++] = oid;
}

static void setup(void)
{
    if (conn != NULL)
        return;
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    conn = pgt_connect(dsn);
    pgt_exec_ok(conn, "SET DateStyle=ISO, MDY; SET IntervalStyle=postgres; "
                      "SET TimeZone='UTC'; SET extra_float_digits=1; "
                      "SET bytea_output=hex");
}

static void value_text(const molt_db_value *v, molt_db_buf *b)
{
    molt_db_buf_reset(b);
    ASSERT_OK(molt_db_value_text(v, b), NULL);
    molt_db_buf_put_u8(b, 0);
    ASSERT_OK(molt_db_buf_ok(b), NULL);
}

/* The same value, field by field (numeric by its text: a value has more
 * than one binary form). */
static int same_value(const molt_db_value *a, const molt_db_value *b)
{
    if (a->cls != b->cls)
        return 0;
    switch (a->cls) {
    case MOLT_DB_VALUE_FLOAT4:
        return memcmp(&a->u.f4, &b->u.f4, sizeof a->u.f4) == 0 ||
               (isnan(a->u.f4) && isnan(b->u.f4));
    case MOLT_DB_VALUE_FLOAT8:
        return memcmp(&a->u.f8, &b->u.f8, sizeof a->u.f8) == 0 ||
               (isnan(a->u.f8) && isnan(b->u.f8));
    case MOLT_DB_VALUE_TEXT: case MOLT_DB_VALUE_BYTES: case MOLT_DB_VALUE_JSON:
        return a->u.bytes.len == b->u.bytes.len &&
               (a->u.bytes.len == 0 ||
                memcmp(a->u.bytes.p, b->u.bytes.p, a->u.bytes.len) == 0);
    case MOLT_DB_VALUE_CHAR: return a->u.ch == b->u.ch;
    case MOLT_DB_VALUE_UUID: return memcmp(a->u.uuid, b->u.uuid, 16) == 0;
    case MOLT_DB_VALUE_TIMETZ:
        return a->u.timetz.time_us == b->u.timetz.time_us &&
               a->u.timetz.zone == b->u.timetz.zone;
    case MOLT_DB_VALUE_INTERVAL:
        return a->u.interval.months == b->u.interval.months &&
               a->u.interval.days == b->u.interval.days &&
               a->u.interval.micros == b->u.interval.micros;
    case MOLT_DB_VALUE_NUMERIC: {
        molt_db_buf x = {0}, y = {0};
        value_text(a, &x);
        value_text(b, &y);
        int same = strcmp((const char *)x.data, (const char *)y.data) == 0;
        molt_db_buf_free(&x);
        molt_db_buf_free(&y);
        return same;
    }
    default: return a->u.i == b->u.i;
    }
}

/* Every row of `SELECT v FROM (<from>) t(v)` read twice, in binary
 * (extended protocol) and as the server's text (simple protocol, as the
 * worker's simple mode reads it): the type table's decoder and parser must
 * give the same value, and its encoder the server's bytes again. */
static void check_both_formats(const char *from)
{
    char *sql = malloc(strlen(from) + 64);
    ASSERT(sql != NULL);
    sprintf(sql, "SELECT v FROM (%s) t(v)", from);
    pgt_result *bin = pgt_query(conn, sql, 0, NULL);
    pgt_result *txt = pgt_simple(conn, sql);
    ASSERT_OK(bin->status, &bin->err);
    ASSERT_OK(txt->status, &txt->err);
    ASSERT_EQ_UINT(bin->nrows, txt->nrows);
    uint32_t oid = bin->oids[0];
    ASSERT(molt_db_value_class_of(oid) != 0);
    ASSERT_EQ_INT(bin->formats[0], MOLT_DB_FORMAT_BINARY);
    mark(seen_both, &nseen_both, oid);
    molt_db_buf scratch = {0}, a = {0}, b = {0};
    molt_db_error err = {0};
    for (size_t i = 0; i < bin->nrows; i++) {
        if (bin->lens[i] < 0) {
            ASSERT(txt->lens[i] < 0);
            continue;
        }
        molt_db_value vb, vt;
        ASSERT_OK(molt_db_value_decode(oid, bin->data[i], (size_t)bin->lens[i], &vb,
                                       &err), &err);
        /* the table's encoder gives back the server's bytes */
        molt_db_buf_reset(&b);
        ASSERT_OK(molt_db_value_encode(oid, &vb, &b), NULL);
        ASSERT_EQ_UINT(b.len, (size_t)bin->lens[i]);
        ASSERT(b.len == 0 || memcmp(b.data, bin->data[i], b.len) == 0);
        molt_db_buf_reset(&scratch);
        int rc = molt_db_value_parse(oid, txt->data[i], (size_t)txt->lens[i],
                                     &scratch, &vt);
        if (rc != MOLT_DB_OK || !same_value(&vb, &vt)) {
            value_text(&vb, &a);
            fprintf(stderr, "type %s row %zu: binary %s, text \"%.*s\"%s\n  of %.300s\n",
                    molt_db_type_name(oid), i, (const char *)a.data,
                    (int)txt->lens[i], (const char *)txt->data[i],
                    rc != MOLT_DB_OK ? " (not parsed)" : "", sql);
            FAIL_AT("the two formats give different values");
        }
    }
    molt_db_buf_free(&scratch);
    molt_db_buf_free(&a);
    molt_db_buf_free(&b);
    pgt_result_free(bin);
    pgt_result_free(txt);
    free(sql);
}

/* Runs `SELECT v, v::text FROM (<from>) t(v)` and checks every row: column
 * 0 arrives in binary and renders as column 1. Returns the row count. */
static size_t check_select(const char *from)
{
    char *sql = malloc(strlen(from) + 64);
    ASSERT(sql != NULL);
    /* bpchar::text trims the padding that bpcharout keeps and bool::text
     * says "true" where boolout says "t": compare those two with their
     * output function's text (format %s) instead */
    sprintf(sql, "SELECT v, v::text, format('%%s', v) FROM (%s) t(v)", from);
    pgt_result *r = pgt_query(conn, sql, 0, NULL);
    if (r->status != MOLT_DB_OK)
        fprintf(stderr, "query: %.200s\n", sql);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_UINT(r->ncols, 3);
    size_t tcol = r->oids[0] == MOLT_DB_OID_BPCHAR ||
                          r->oids[0] == MOLT_DB_OID_BOOL ? 2 : 1;
    uint32_t oid = r->oids[0];
    ASSERT(molt_db_type_binary_supported(oid));
    ASSERT_EQ_INT(r->formats[0], MOLT_DB_FORMAT_BINARY);
    mark(seen_out, &nseen_out, oid);
    molt_db_buf b = {0};
    molt_db_error err = {0};
    for (size_t i = 0; i < r->nrows; i++) {
        int32_t len = r->lens[i * 3];
        if (len < 0) {
            ASSERT(r->lens[i * 3 + 1] < 0);
            continue;
        }
        molt_db_buf_reset(&b);
        int rc = molt_db_value_to_text(oid, r->data[i * 3], (size_t)len, &b,
                                       &err);
        ASSERT_OK(rc, &err);
        molt_db_buf_put_u8(&b, 0);
        ASSERT_OK(molt_db_buf_ok(&b), NULL);
        const char *want = pgt_text(r, i, tcol);
        if (strcmp((const char *)b.data, want) != 0)
            fprintf(stderr, "type %s row %zu of: %.300s\n",
                    molt_db_type_name(oid), i, sql);
        ASSERT_EQ_STR((const char *)b.data, want);
    }
    size_t n = r->nrows;
    molt_db_buf_free(&b);
    pgt_result_free(r);
    free(sql);
    if (molt_db_value_class_of(oid) != 0 && strstr(from, "random") == NULL)
        check_both_formats(from); /* (a volatile value differs per query) */
    return n;
}

/* The values, then the same values as one array (NULLs included), as a
 * 2x? array is not possible for odd counts, so also a [0:n-1] array. */
static void check_values(const char *values)
{
    char *from = malloc(strlen(values) * 2 + 256);
    ASSERT(from != NULL);
    sprintf(from, "VALUES %s", values);
    size_t n = check_select(from);
    ASSERT(n > 0);
    sprintf(from, "SELECT ARRAY(SELECT v FROM (VALUES %s) s(v))", values);
    check_select(from);
    sprintf(from,
            "SELECT array_fill(v, ARRAY[2, 2], ARRAY[0, -3]) FROM (VALUES %s) "
            "s(v) UNION ALL SELECT ARRAY(SELECT v FROM (VALUES %s) s(v) WHERE "
            "false)", values, values);
    check_select(from);
    free(from);
}

TEST(server_scalars_out)
{
    setup();
    check_values("(true), (false), (NULL::bool)");
    check_values("('a'::\"char\"), (''::\"char\"), ('\xc3\xa9'::\"char\"), "
                 "('\"'::\"char\")");
    check_values("('abc'::name), (repeat('x', 63)::name), (''::name)");
    check_values("((-32768)::int2), (32767::int2), (0::int2), (NULL)");
    check_values("((-2147483648)::int4), (2147483647), (0), (NULL)");
    check_values("((-9223372036854775808)::int8), (9223372036854775807), (0)");
    check_values("(0::oid), (4294967295::oid), (1259::oid)");
    check_values("('NaN'::float4), ('Infinity'), ('-Infinity'), (1.1), "
                 "(1e-45), (3.4028235e38), ('-0'), (0.1), (100000), (1e6), "
                 "(1.2345678e-10), (16777216), (NULL)");
    check_values("('NaN'::float8), ('Infinity'), ('-Infinity'), (pi()), "
                 "(1/3.0), (5e-324), (1.7976931348623157e308), (1e15), (1e16), "
                 "(123456789012345.6), (0.0001), (0.00001), ('-0'), (1e22), "
                 "(2.2250738585072014e-308), (9007199254740993), (NULL)");
    /* shortest-float stress: many magnitudes, both widths */
    check_select("SELECT sin(g) * 10 ^ (g % 600 - 300) FROM "
                 "generate_series(1, 3000) g");
    check_select("SELECT (sin(g) * 10 ^ (g % 70 - 35))::float4 FROM "
                 "generate_series(1, 3000) g");
    check_select("SELECT (2 ^ (g - 1075))::float8 FROM generate_series(1, 2100) g"
                 " WHERE g BETWEEN 1 AND 2098");
    check_values("(0::numeric), (0.00), (-12.30), ('NaN'), ('Infinity'), "
                 "('-Infinity'), (repeat('9', 1000)::numeric), "
                 "(('0.' || repeat('0', 500) || '1')::numeric), (1e-20), "
                 "(123456789.123456789), (-0.000123), (1e20), (NULL)");
    check_select("SELECT (sin(g) * 10 ^ (g % 40 - 20))::numeric(60, 25) FROM "
                 "generate_series(1, 500) g");
    check_select("SELECT round((sin(g) * 1e12)::numeric, g % 13) FROM "
                 "generate_series(1, 500) g");
    check_values("(''::text), ('hello'), ('h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93'), "
                 "(repeat('x', 1048576)), (NULL), ('with \"quotes\" and \\ "
                 "backslash'), ('NULL'), ('a{b}c,d'), (' lead'), ('tab\tx')");
    check_values("('abc'::varchar(10)), (''::varchar), ('\xe2\x82\xac'::varchar)");
    check_values("('a'::char(5)), (''::char(3)), ('\xc3\xa9t\xc3\xa9'::char(4))");
    check_values("(''::bytea), ('\\x00ff'::bytea), "
                 "(decode(repeat('ab', 1048576), 'hex')), (NULL)");
    check_values("('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid), "
                 "('00000000-0000-0000-0000-000000000000'), "
                 "('FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'), (gen_random_uuid())");
    check_values("('{\"a\": [1, 2.50, \"x\"]}'::json), ('  [ ]  '), "
                 "('\"\xc3\xa9\\u00e9\"'), ('null')");
    check_values("('{\"b\": 1, \"a\": [1, 2.50, null]}'::jsonb), "
                 "('\"\\u00e9\"'), ('[]'), ('{}'), ('1e100')");
}

TEST(server_datetime_out)
{
    setup();
    check_values("('2000-01-01'::date), ('1969-12-31'), ('1900-02-28'), "
                 "('2100-03-01'), ('9999-12-31'), ('0001-01-01 BC'), "
                 "('4713-01-01 BC'), ('5874897-12-31'), ('infinity'), "
                 "('-infinity'), ('1582-10-10'), ('0044-03-15 BC'), (NULL)");
    check_select("SELECT '2000-01-01'::date + g * 7919 FROM "
                 "generate_series(-300, 300) g");
    check_values("('00:00'::time), ('23:59:59.999999'), ('24:00:00'), "
                 "('12:34:56.789'), ('00:00:00.000001')");
    check_values("('12:00:00+05:30'::timetz), ('00:00:00-15:59:59'), "
                 "('23:59:59.5+15:59'), ('12:00:00.000001+00'), "
                 "('01:02:03-03:07:09'), ('24:00:00-01')");
    check_values("('2000-01-01 00:00:00'::timestamp), "
                 "('1969-07-20 20:17:40.5'), ('2100-12-31 23:59:59.999999'), "
                 "('4713-01-01 00:00:00 BC'), ('294276-12-31 23:59:59.999999'), "
                 "('infinity'), ('-infinity'), ('0001-01-01 00:00:00 BC'), "
                 "('1900-01-01 12:00:00.00001'), (NULL)");
    check_values("('2000-01-01 00:00:00+00'::timestamptz), "
                 "('1969-07-20 20:17:40.5+00'), ('2020-06-01 12:00:00+05:30'), "
                 "('2100-12-31 23:59:59.999999+00'), ('4713-01-01 00:00:00+00 BC'), "
                 "('infinity'), ('-infinity'), ('0001-12-31 23:00:00-02 BC')");
    check_select("SELECT '1970-01-01'::timestamptz + g * interval '1234567.891 "
                 "sec' FROM generate_series(-2000, 2000) g");
    check_values("('1 year 2 mons 3 days 04:05:06.5'::interval), "
                 "('-1 days +02:00:00'), ('0'), ('-0.5 sec'), "
                 "('-178000000 years'), ('1 mon -2 days 3 hours'), "
                 "('-1 mon -1 day -00:00:01.25'), ('2562047788 hours'), "
                 "('1 day -1 sec'), ('-12 mon'), ('13 mon'), ('0.000001 sec'), "
                 "('-2562047788 hours -54.775807 sec'), ('2147483647 days'), (NULL)");
}

TEST(server_arrays_out)
{
    setup();
    check_select("VALUES ('{{1,2},{3,NULL}}'::int4[]), ('[0:2]={1,2,3}'), "
                 "('[-5:-4][1:2]={{1,2},{3,4}}'), ('{}'), "
                 "('{{{1,2},{3,4}},{{5,6},{7,8}}}'), ('{{{{{{1}}}}}}'), "
                 "('[2147483646:2147483646]={1}'), ('[-2147483648:-2147483647]={1,2}'), ('{NULL}'), (NULL)");
    check_select("VALUES ('{\"a b\",NULL,\"NULL\",\"\",x,\"\\\\\",\"\\\"\","
                 "\"{}\",\"a,b\",\"nuLL\",\" \",\"\xc3\xa9\"}'::text[]), "
                 "('{{a,b},{c,d}}'), ('[3:3]={\"\"}')");
    check_select("VALUES ('{\"2000-01-01 00:00:00\",infinity,NULL}'::timestamp[]), "
                 "('{-infinity}')");
    check_select("VALUES ('{{1.5,NaN},{-Infinity,0.1}}'::float8[]), "
                 "('{{1e100,NULL}}')");
}

TEST(server_ranges_out)
{
    setup();
    check_values("('empty'::int4range), ('[1,5)'), ('(,3]'), ('(,)'), "
                 "('[-2147483648,2147483647)'), ('[7,)'), (NULL)");
    check_values("('empty'::int8range), ('[-9223372036854775808,0]'), ('(,)')");
    check_values("('[1.5,2.50]'::numrange), ('(,)'), ('empty'), "
                 "('(-Infinity,NaN)'::numrange), ('[0.000,1e20)')");
    check_values("('[2000-01-01,2000-01-02)'::tsrange), ('[-infinity,infinity]'), "
                 "('(,2000-01-01 00:00:00.5]'), ('empty'), "
                 "('[0001-01-01 BC,2000-01-01)')");
    check_values("('[2000-01-01 00:00+00,2000-01-02 05:00+05)'::tstzrange), "
                 "('(,)'), ('[infinity,infinity]')");
    check_values("('[2000-01-01,infinity)'::daterange), ('(,2000-01-01]'), "
                 "('empty'), ('[0001-01-01 BC,0001-01-01)')");
    check_values("('{}'::int4multirange), ('{[1,3),[5,7)}'), ('{(,5), [10,)}')");
    check_values("('{}'::int8multirange), ('{[1,3), (,-5]}')");
    check_values("('{}'::nummultirange), ('{[1.5,2), [3.25,NaN]}')");
    check_values("('{}'::tsmultirange), "
                 "('{[2000-01-01,2000-01-02), [2001-01-01,)}')");
    check_values("('{}'::tstzmultirange), ('{(,2000-01-01 00:00+00)}')");
    check_values("('{}'::datemultirange), "
                 "('{[2000-01-01,2000-01-05), [2000-02-01,infinity)}')");
}

/* ---- the reverse direction: our encoders as binary parameters ---- */

/* Types whose input the server rewrites (jsonb is reformatted, discrete
 * ranges become [), multiranges are merged): our text of the bytes we sent
 * is then not the server's text of the value it stored. */
static int server_normalizes(uint32_t oid)
{
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    return oid == MOLT_DB_OID_JSONB || t->kind == MOLT_DB_KIND_RANGE ||
           t->kind == MOLT_DB_KIND_MULTIRANGE;
}

/* Sends bytes as a binary parameter of type oid and checks that the
 * server's text of it is want, and that our own text of the same bytes
 * agrees. */
static void check_param(uint32_t oid, const molt_db_buf *v, const char *want)
{
    ASSERT_OK(molt_db_buf_ok(v), NULL);
    molt_db_param prm = {oid, MOLT_DB_FORMAT_BINARY, (int32_t)v->len, v->data};
    static const uint8_t empty[1];
    if (v->len == 0)
        prm.data = empty;
    pgt_result *r = pgt_query(conn, "SELECT $1::text, format('%s', $1)", 1,
                              &prm);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_UINT(r->nrows, 1);
    const char *got = pgt_text(r, 0, 0);
    if (want != NULL) {
        if (strcmp(got, want) != 0)
            fprintf(stderr, "parameter of type %s\n", molt_db_type_name(oid));
        ASSERT_EQ_STR(got, want);
    }
    molt_db_buf ours = {0};
    molt_db_error err = {0};
    ASSERT_OK(molt_db_value_to_text(oid, v->len ? v->data : empty, v->len,
                                    &ours, &err), &err);
    molt_db_buf_put_u8(&ours, 0);
    if (!server_normalizes(oid))
        ASSERT_EQ_STR((const char *)ours.data, pgt_text(r, 0, 1));
    molt_db_buf_free(&ours);
    pgt_result_free(r);
    mark(seen_in, &nseen_in, oid);
}

/* Also sends [0:1]={value,NULL} of the type's array type and checks the
 * element and the bounds come back. */
static void check_param_and_array(uint32_t oid, const molt_db_buf *v,
                                  const char *want)
{
    check_param(oid, v, want);
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    ASSERT(t != NULL && t->array != 0);
    molt_db_buf a = {0};
    molt_db_error err = {0};
    int32_t dim = 2, lb = 0, lens[2] = {(int32_t)v->len, -1};
    ASSERT_OK(molt_db_encode_array(&a, oid, 1, &dim, &lb, v->data, lens, 2,
                                   &err), &err);
    molt_db_param prm = {t->array, MOLT_DB_FORMAT_BINARY, (int32_t)a.len,
                         a.data};
    pgt_result *r = pgt_query(conn,
                              "SELECT ($1)[0]::text, (($1)[1] IS NULL)::text, "
                              "array_lower($1, 1)::text, $1::text", 1, &prm);
    ASSERT_OK(r->status, &r->err);
    if (want != NULL)
        ASSERT_EQ_STR(pgt_text(r, 0, 0), want);
    ASSERT_EQ_STR(pgt_text(r, 0, 1), "true");
    ASSERT_EQ_STR(pgt_text(r, 0, 2), "0");
    molt_db_buf ours = {0};
    ASSERT_OK(molt_db_value_to_text(t->array, a.data, a.len, &ours, &err), &err);
    molt_db_buf_put_u8(&ours, 0);
    if (!server_normalizes(oid))
        ASSERT_EQ_STR((const char *)ours.data, pgt_text(r, 0, 3));
    molt_db_buf_free(&ours);
    pgt_result_free(r);
    molt_db_buf_free(&a);
    mark(seen_in, &nseen_in, t->array);
}

#define CHECK_ENC(oid, call, want)                                          \
    do {                                                                    \
        molt_db_buf b_ = {0};                                               \
        molt_db_buf *B = &b_;                                               \
        ASSERT_OK((call), NULL);                                            \
        check_param_and_array((oid), B, (want));                            \
        molt_db_buf_free(B);                                                \
    } while (0)

TEST(server_scalars_in)
{
    setup();
    molt_db_error err = {0};
    CHECK_ENC(MOLT_DB_OID_BOOL, molt_db_encode_bool(B, 1), "true");
    CHECK_ENC(MOLT_DB_OID_BOOL, molt_db_encode_bool(B, 0), "false");
    CHECK_ENC(MOLT_DB_OID_CHAR, molt_db_encode_char(B, 'z'), "z");
    CHECK_ENC(MOLT_DB_OID_CHAR, molt_db_encode_char(B, 0xe9), "\\351");
    CHECK_ENC(MOLT_DB_OID_INT2, molt_db_encode_int2(B, INT16_MIN), "-32768");
    CHECK_ENC(MOLT_DB_OID_INT4, molt_db_encode_int4(B, INT32_MAX), "2147483647");
    CHECK_ENC(MOLT_DB_OID_INT8, molt_db_encode_int8(B, INT64_MIN),
              "-9223372036854775808");
    CHECK_ENC(MOLT_DB_OID_OID, molt_db_encode_oid(B, 4294967295u), "4294967295");
    CHECK_ENC(MOLT_DB_OID_FLOAT4, molt_db_encode_float4(B, 1.1f), "1.1");
    CHECK_ENC(MOLT_DB_OID_FLOAT4, molt_db_encode_float4(B, -INFINITY),
              "-Infinity");
    CHECK_ENC(MOLT_DB_OID_FLOAT8, molt_db_encode_float8(B, 0.1), "0.1");
    CHECK_ENC(MOLT_DB_OID_FLOAT8, molt_db_encode_float8(B, NAN), "NaN");
    CHECK_ENC(MOLT_DB_OID_FLOAT8, molt_db_encode_float8(B, 1e16), "1e+16");
    CHECK_ENC(MOLT_DB_OID_FLOAT8, molt_db_encode_float8(B, 1.5e-7), "1.5e-07");
    const char *nums[][2] = {
        {"0", "0"}, {"-12.30", "-12.30"}, {"NaN", "NaN"},
        {"Infinity", "Infinity"}, {"-Infinity", "-Infinity"},
        {"1.5e3", "1500"}, {"1e-20", "0.00000000000000000001"},
        {"000123.4560", "123.4560"}, {"-0.0001", "-0.0001"},
        {"99999999999999999999999999999999999999.99",
         "99999999999999999999999999999999999999.99"}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        CHECK_ENC(MOLT_DB_OID_NUMERIC,
                  molt_db_encode_numeric_text(B, nums[i][0], strlen(nums[i][0]),
                                              &err), nums[i][1]);
    /* 1000 nines */
    char big[1002];
    memset(big, '9', 1000);
    big[1000] = '\0';
    CHECK_ENC(MOLT_DB_OID_NUMERIC, molt_db_encode_numeric_text(B, big, 1000, &err),
              big);
#if MOLT_DB_HAVE_INT128
    molt_db_decimal128 dec = {-(molt_db_int128)123456789 * 1000000000 * 1000000000 *
                                  100000000, 20};
    CHECK_ENC(MOLT_DB_OID_NUMERIC, molt_db_encode_numeric_decimal128(B, dec, &err),
              "-123456789000000.00000000000000000000");
    dec.unscaled = 5;
    dec.scale = 0;
    CHECK_ENC(MOLT_DB_OID_NUMERIC, molt_db_encode_numeric_decimal128(B, dec, &err),
              "5");
#endif
    static const char nonascii[] = "h\xc3\xa9llo \xe2\x9c\x93";
    CHECK_ENC(MOLT_DB_OID_TEXT, molt_db_encode_bytes(B, nonascii, strlen(nonascii)),
              nonascii);
    CHECK_ENC(MOLT_DB_OID_TEXT, molt_db_encode_bytes(B, "", 0), "");
    CHECK_ENC(MOLT_DB_OID_VARCHAR, molt_db_encode_bytes(B, "a b", 3), "a b");
    CHECK_ENC(MOLT_DB_OID_BPCHAR, molt_db_encode_bytes(B, "ab", 2), "ab");
    CHECK_ENC(MOLT_DB_OID_NAME, molt_db_encode_bytes(B, "pg_class", 8),
              "pg_class");
    CHECK_ENC(MOLT_DB_OID_JSON, molt_db_encode_bytes(B, " [1, 2] ", 8), " [1, 2] ");
    CHECK_ENC(MOLT_DB_OID_JSONB, molt_db_encode_jsonb(B, "{\"b\":1, \"a\":2}", 14),
              "{\"a\": 2, \"b\": 1}");
    CHECK_ENC(MOLT_DB_OID_BYTEA, molt_db_encode_bytes(B, "\x00\xff", 2), "\\x00ff");
    {
        /* 1 MiB text and bytea */
        size_t n = 1 << 20;
        char *s = malloc(n + 1);
        ASSERT(s != NULL);
        memset(s, 'q', n);
        s[n] = '\0';
        CHECK_ENC(MOLT_DB_OID_TEXT, molt_db_encode_bytes(B, s, n), s);
        CHECK_ENC(MOLT_DB_OID_BYTEA, molt_db_encode_bytes(B, s, n), NULL);
        free(s);
    }
    static const uint8_t u[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                                  0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
    CHECK_ENC(MOLT_DB_OID_UUID, molt_db_encode_uuid(B, u),
              "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
}

TEST(server_datetime_in)
{
    setup();
    int32_t d;
    ASSERT_OK(molt_db_date_from_ymd(1969, 7, 20, &d), NULL);
    CHECK_ENC(MOLT_DB_OID_DATE, molt_db_encode_date(B, d), "1969-07-20");
    ASSERT_OK(molt_db_date_from_ymd(2150, 2, 28, &d), NULL);
    CHECK_ENC(MOLT_DB_OID_DATE, molt_db_encode_date(B, d), "2150-02-28");
    ASSERT_OK(molt_db_date_from_ymd(-43, 3, 15, &d), NULL);
    CHECK_ENC(MOLT_DB_OID_DATE, molt_db_encode_date(B, d), "0044-03-15 BC");
    CHECK_ENC(MOLT_DB_OID_DATE, molt_db_encode_date(B, MOLT_DB_DATE_INFINITY),
              "infinity");
    CHECK_ENC(MOLT_DB_OID_DATE, molt_db_encode_date(B, MOLT_DB_DATE_NEG_INFINITY),
              "-infinity");
    CHECK_ENC(MOLT_DB_OID_TIME, molt_db_encode_time(B, 45296789000), "12:34:56.789");
    CHECK_ENC(MOLT_DB_OID_TIME, molt_db_encode_time(B, MOLT_DB_USECS_PER_DAY),
              "24:00:00");
    molt_db_timetz tz = {43200000000, -19800};
    CHECK_ENC(MOLT_DB_OID_TIMETZ, molt_db_encode_timetz(B, tz), "12:00:00+05:30");
    tz.time_us = 1;
    tz.zone = 3 * 3600 + 7 * 60 + 9;
    CHECK_ENC(MOLT_DB_OID_TIMETZ, molt_db_encode_timetz(B, tz),
              "00:00:00.000001-03:07:09");
    ASSERT_OK(molt_db_date_from_ymd(1969, 7, 20, &d), NULL);
    int64_t ts = (int64_t)d * MOLT_DB_USECS_PER_DAY + 73060500000;
    CHECK_ENC(MOLT_DB_OID_TIMESTAMP, molt_db_encode_timestamp(B, ts),
              "1969-07-20 20:17:40.5");
    CHECK_ENC(MOLT_DB_OID_TIMESTAMPTZ, molt_db_encode_timestamp(B, ts),
              "1969-07-20 20:17:40.5+00");
    ASSERT_OK(molt_db_date_from_ymd(0, 12, 31, &d), NULL);
    ts = (int64_t)d * MOLT_DB_USECS_PER_DAY;
    CHECK_ENC(MOLT_DB_OID_TIMESTAMP, molt_db_encode_timestamp(B, ts),
              "0001-12-31 00:00:00 BC");
    CHECK_ENC(MOLT_DB_OID_TIMESTAMPTZ,
              molt_db_encode_timestamp(B, MOLT_DB_TIMESTAMP_INFINITY), "infinity");
    CHECK_ENC(MOLT_DB_OID_TIMESTAMP,
              molt_db_encode_timestamp(B, MOLT_DB_TIMESTAMP_NEG_INFINITY),
              "-infinity");
    molt_db_interval iv = {14706500000, 3, 14};
    CHECK_ENC(MOLT_DB_OID_INTERVAL, molt_db_encode_interval(B, iv),
              "1 year 2 mons 3 days 04:05:06.5");
    iv = (molt_db_interval){7200000000, -1, 0};
    CHECK_ENC(MOLT_DB_OID_INTERVAL, molt_db_encode_interval(B, iv),
              "-1 days +02:00:00");
    iv = (molt_db_interval){0, 0, 0};
    CHECK_ENC(MOLT_DB_OID_INTERVAL, molt_db_encode_interval(B, iv), "00:00:00");
}

/* Encodes a range of int8 bounds (lo/hi ignored when infinite). */
static int enc_range8(molt_db_buf *out, uint8_t flags, int64_t lo, int64_t hi)
{
    molt_db_buf l = {0}, h = {0};
    molt_db_encode_int8(&l, lo);
    molt_db_encode_int8(&h, hi);
    molt_db_range r = {flags, l.data, (int32_t)l.len, h.data, (int32_t)h.len};
    int rc = molt_db_encode_range(out, &r, NULL);
    molt_db_buf_free(&l);
    molt_db_buf_free(&h);
    return rc;
}

/* A range whose bounds are given as already-encoded buffers. */
static int enc_range(molt_db_buf *out, uint8_t flags, const molt_db_buf *l,
                     const molt_db_buf *h)
{
    molt_db_range r = {flags, l ? l->data : NULL, l ? (int32_t)l->len : -1,
                       h ? h->data : NULL, h ? (int32_t)h->len : -1};
    return molt_db_encode_range(out, &r, NULL);
}

/* A multirange of the given encoded ranges. */
static int enc_multi(molt_db_buf *out, const molt_db_buf *r1,
                     const molt_db_buf *r2)
{
    molt_db_buf all = {0};
    int32_t lens[2];
    size_t n = 0;
    if (r1) {
        molt_db_buf_put(&all, r1->data, r1->len);
        lens[n++] = (int32_t)r1->len;
    }
    if (r2) {
        molt_db_buf_put(&all, r2->data, r2->len);
        lens[n++] = (int32_t)r2->len;
    }
    int rc = molt_db_encode_multirange(out, all.data, lens, n, NULL);
    molt_db_buf_free(&all);
    return rc;
}

TEST(server_ranges_in)
{
    setup();
    const uint8_t INC = MOLT_DB_RANGE_LB_INC;
    /* the server canonicalizes discrete ranges to [) */
    molt_db_buf i4lo = {0}, i4hi = {0};
    molt_db_encode_int4(&i4lo, 1);
    molt_db_encode_int4(&i4hi, 5);
    CHECK_ENC(MOLT_DB_OID_INT4RANGE, enc_range(B, INC, &i4lo, &i4hi), "[1,5)");
    CHECK_ENC(MOLT_DB_OID_INT4RANGE,
              enc_range(B, MOLT_DB_RANGE_LB_INF | MOLT_DB_RANGE_UB_INC, NULL, &i4hi),
              "(,6)");
    CHECK_ENC(MOLT_DB_OID_INT4RANGE, enc_range(B, MOLT_DB_RANGE_EMPTY, NULL, NULL),
              "empty");
    CHECK_ENC(MOLT_DB_OID_INT8RANGE, enc_range8(B, INC, INT64_MIN, 0),
              "[-9223372036854775808,0)");
    CHECK_ENC(MOLT_DB_OID_INT8RANGE,
              enc_range8(B, MOLT_DB_RANGE_LB_INF | MOLT_DB_RANGE_UB_INF, 0, 0),
              "(,)");
    molt_db_buf nlo = {0}, nhi = {0};
    ASSERT_OK(molt_db_encode_numeric_text(&nlo, "1.5", 3, NULL), NULL);
    ASSERT_OK(molt_db_encode_numeric_text(&nhi, "2.50", 4, NULL), NULL);
    CHECK_ENC(MOLT_DB_OID_NUMRANGE,
              enc_range(B, INC | MOLT_DB_RANGE_UB_INC, &nlo, &nhi), "[1.5,2.50]");
    molt_db_buf tlo = {0}, thi = {0};
    molt_db_encode_timestamp(&tlo, 0);
    molt_db_encode_timestamp(&thi, MOLT_DB_TIMESTAMP_INFINITY);
    CHECK_ENC(MOLT_DB_OID_TSRANGE, enc_range(B, INC, &tlo, &thi),
              "[\"2000-01-01 00:00:00\",infinity)");
    CHECK_ENC(MOLT_DB_OID_TSTZRANGE,
              enc_range(B, MOLT_DB_RANGE_UB_INF, &tlo, NULL),
              "(\"2000-01-01 00:00:00+00\",)");
    molt_db_buf dlo = {0}, dhi = {0};
    molt_db_encode_date(&dlo, 0);
    molt_db_encode_date(&dhi, 31);
    CHECK_ENC(MOLT_DB_OID_DATERANGE, enc_range(B, INC | MOLT_DB_RANGE_UB_INC,
                                               &dlo, &dhi),
              "[2000-01-01,2000-02-02)");

    /* multiranges: {} and two ranges each */
    molt_db_buf r1 = {0}, r2 = {0};
    enc_range(&r1, INC, &i4lo, &i4hi);
    molt_db_buf_reset(&i4lo);
    molt_db_buf_reset(&i4hi);
    molt_db_encode_int4(&i4lo, 10);
    molt_db_encode_int4(&i4hi, 20);
    enc_range(&r2, INC, &i4lo, &i4hi);
    CHECK_ENC(MOLT_DB_OID_INT4MULTIRANGE, enc_multi(B, NULL, NULL), "{}");
    CHECK_ENC(MOLT_DB_OID_INT4MULTIRANGE, enc_multi(B, &r1, &r2),
              "{[1,5),[10,20)}");
    molt_db_buf_reset(&r1);
    molt_db_buf_reset(&r2);
    enc_range8(&r1, MOLT_DB_RANGE_LB_INF, 0, -5);
    enc_range8(&r2, INC | MOLT_DB_RANGE_UB_INF, 7, 0);
    CHECK_ENC(MOLT_DB_OID_INT8MULTIRANGE, enc_multi(B, &r1, &r2), "{(,-5),[7,)}");
    molt_db_buf_reset(&r1);
    enc_range(&r1, INC, &nlo, &nhi);
    CHECK_ENC(MOLT_DB_OID_NUMMULTIRANGE, enc_multi(B, &r1, NULL), "{[1.5,2.50)}");
    molt_db_buf_reset(&r1);
    enc_range(&r1, INC, &tlo, &thi);
    CHECK_ENC(MOLT_DB_OID_TSMULTIRANGE, enc_multi(B, &r1, NULL),
              "{[\"2000-01-01 00:00:00\",infinity)}");
    CHECK_ENC(MOLT_DB_OID_TSTZMULTIRANGE, enc_multi(B, &r1, NULL),
              "{[\"2000-01-01 00:00:00+00\",infinity)}");
    molt_db_buf_reset(&r1);
    enc_range(&r1, INC, &dlo, &dhi);
    CHECK_ENC(MOLT_DB_OID_DATEMULTIRANGE, enc_multi(B, &r1, NULL),
              "{[2000-01-01,2000-02-01)}");
    molt_db_buf *bufs[] = {&i4lo, &i4hi, &nlo, &nhi, &tlo, &thi, &dlo, &dhi,
                           &r1, &r2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        molt_db_buf_free(bufs[i]);
}

TEST(server_arrays_in)
{
    setup();
    /* 2x3 int4 with bounds [-1:0][5:7] and a NULL */
    molt_db_buf e = {0}, a = {0};
    int32_t lens[6];
    for (int i = 0; i < 6; i++) {
        if (i == 4) {
            lens[i] = -1;
            continue;
        }
        molt_db_encode_int4(&e, i * 10);
        lens[i] = 4;
    }
    int32_t dims[] = {2, 3}, lbs[] = {-1, 5};
    ASSERT_OK(molt_db_encode_array(&a, MOLT_DB_OID_INT4, 2, dims, lbs, e.data,
                                   lens, 6, NULL), NULL);
    check_param(MOLT_DB_OID_INT4_ARRAY, &a,
                "[-1:0][5:7]={{0,10,20},{30,NULL,50}}");
    /* an empty array */
    molt_db_buf_reset(&a);
    ASSERT_OK(molt_db_encode_array(&a, MOLT_DB_OID_TEXT, 0, NULL, NULL, NULL,
                                   NULL, 0, NULL), NULL);
    check_param(MOLT_DB_OID_TEXT_ARRAY, &a, "{}");
    /* text needing quotes, 6 dimensions */
    molt_db_buf_reset(&a);
    const char *txt = "a b\"\\NULL";
    int32_t tl[] = {3, 2, 4};
    int32_t d6[] = {1, 1, 1, 1, 1, 3};
    ASSERT_OK(molt_db_encode_array(&a, MOLT_DB_OID_TEXT, 6, d6, NULL,
                                   (const uint8_t *)txt, tl, 3, NULL), NULL);
    check_param(MOLT_DB_OID_TEXT_ARRAY, &a,
                "{{{{{{\"a b\",\"\\\"\\\\\",\"NULL\"}}}}}}");
    molt_db_buf_free(&a);
    molt_db_buf_free(&e);
}

/* The server's text under other settings than the connection's own: bytea
 * in escape output, timestamptz and timetz in zones with odd offsets. */
TEST(server_both_formats_settings)
{
    setup();
    pgt_exec_ok(conn, "SET bytea_output=escape");
    check_both_formats("VALUES (''::bytea), ('\\x00ff5c27'::bytea), "
                       "(decode('5c006162', 'hex')), ('\\x'::bytea || 'ab\\\\')");
    pgt_exec_ok(conn, "SET bytea_output=hex");
    check_both_formats("VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid), "
                       "('FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'), (NULL)");
    static const char *const zones[] = {"Asia/Kolkata", "America/St_Johns",
                                        "Europe/Amsterdam", "Pacific/Chatham"};
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        char set[64];
        snprintf(set, sizeof set, "SET TimeZone='%s'", zones[i]);
        pgt_exec_ok(conn, set);
        check_both_formats("VALUES ('2000-01-01 00:00:00+00'::timestamptz), "
                           "('1900-01-01 00:00:00+00'), ('0044-03-15 12:00:00+00 BC'), "
                           "('2024-02-29 13:14:15.25+02'), ('infinity'), (NULL)");
        check_both_formats("VALUES ('00:00:00'::timetz), ('12:00:00'::timetz), "
                           "('23:59:59.999999+15:59:59'::timetz)");
    }
    pgt_exec_ok(conn, "SET TimeZone='UTC'");
}

/* Last: every type the library decodes was seen in both directions. */
TEST(server_coverage)
{
    setup();
    if (nseen_out == 0 || nseen_in == 0)
        SKIP("coverage needs the other cases to run first");
    for (uint32_t oid = 1; oid < 7000; oid++) {
        if (!molt_db_type_binary_supported(oid))
            continue;
        int out = 0, in = 0, both = molt_db_value_class_of(oid) == 0;
        for (size_t i = 0; i < nseen_out; i++)
            out |= seen_out[i] == oid;
        for (size_t i = 0; i < nseen_in; i++)
            in |= seen_in[i] == oid;
        for (size_t i = 0; i < nseen_both; i++)
            both |= seen_both[i] == oid;
        if (!out || !in || !both)
            FAIL_AT("type %s not covered (%s)", molt_db_type_name(oid),
                    !out  ? "binary results"
                    : !in ? "binary parameters"
                          : "binary and text results compared");
    }
    pgt_close(conn);
    conn = NULL;
}

TEST_MAIN(TEST_ENTRY(server_scalars_out), TEST_ENTRY(server_datetime_out),
          TEST_ENTRY(server_arrays_out), TEST_ENTRY(server_ranges_out),
          TEST_ENTRY(server_scalars_in), TEST_ENTRY(server_datetime_in),
          TEST_ENTRY(server_ranges_in), TEST_ENTRY(server_arrays_in),
          TEST_ENTRY(server_both_formats_settings), TEST_ENTRY(server_coverage))
