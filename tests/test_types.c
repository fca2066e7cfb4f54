/* Type codecs without a server: byte vectors taken from PostgreSQL 15
 * (typsend output), malformed values, text output, round trips. */
#include <math.h>

#include "molt_db/types.h"
#include "test.h"

/* Decodes hex text (spaces ignored) into a static buffer. */
static const uint8_t *unhex(const char *hex, size_t *len)
{
    static uint8_t bufs[4][4096];
    static int next;
    uint8_t *b = bufs[next++ % 4];
    size_t n = 0;
    int hi = -1;
    for (const char *c = hex; *c; c++) {
        int v;
        if (*c >= '0' && *c <= '9')
            v = *c - '0';
        else if (*c >= 'a' && *c <= 'f')
            v = *c - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            ASSERT(n < sizeof bufs[0]);
            b[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    ASSERT(hi < 0);
    if (len)
        *len = n;
    return b;
}

/* The byte length of hex text (so a call can take both without relying on
 * argument evaluation order). */
static size_t hexlen(const char *hex)
{
    size_t n = 0;
    for (const char *c = hex; *c; c++)
        n += (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
    return n / 2;
}

/* molt_db_value_to_text of hex bytes, as a NUL-terminated static string. */
static const char *text_of(uint32_t oid, const char *hex)
{
    static char s[4096];
    size_t n;
    const uint8_t *p = unhex(hex, &n);
    molt_db_buf b = {0};
    molt_db_error err = {0};
    ASSERT_OK(molt_db_value_to_text(oid, p, n, &b, &err), &err);
    ASSERT(b.len < sizeof s);
    if (b.len)
        memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    molt_db_buf_free(&b);
    return s;
}

/* The code molt_db_value_to_text returns for hex bytes; checks that a
 * failure leaves the buffer as it was. */
static int text_code(uint32_t oid, const char *hex)
{
    size_t n;
    const uint8_t *p = unhex(hex, &n);
    molt_db_buf b = {0};
    molt_db_buf_put(&b, "xy", 2);
    molt_db_error err = {0};
    int rc = molt_db_value_to_text(oid, p, n, &b, &err);
    if (rc != MOLT_DB_OK) {
        ASSERT_EQ_UINT(b.len, 2);
        ASSERT(err.message[0] != '\0');
        ASSERT_EQ_INT(err.code, rc);
    }
    molt_db_buf_free(&b);
    return rc;
}

static const char *hex_of(const molt_db_buf *b)
{
    static char s[8192];
    ASSERT(b->len * 2 < sizeof s);
    for (size_t i = 0; i < b->len; i++)
        snprintf(s + 2 * i, 3, "%02x", b->data[i]);
    s[2 * b->len] = '\0';
    return s;
}

TEST(catalog)
{
    ASSERT_EQ_STR(molt_db_type_name(MOLT_DB_OID_INT8), "int8");
    ASSERT_EQ_STR(molt_db_type_name(MOLT_DB_OID_INT4_ARRAY), "_int4");
    ASSERT_EQ_STR(molt_db_type_name(MOLT_DB_OID_TSTZMULTIRANGE_ARRAY),
                  "_tstzmultirange");
    ASSERT(molt_db_type_name(12345) == NULL);
    const molt_db_type_info *t = molt_db_type_lookup(MOLT_DB_OID_NUMRANGE);
    ASSERT(t != NULL);
    ASSERT_EQ_INT(t->kind, MOLT_DB_KIND_RANGE);
    ASSERT_EQ_UINT(t->element, MOLT_DB_OID_NUMERIC);
    ASSERT_EQ_UINT(t->array, MOLT_DB_OID_NUMRANGE_ARRAY);
    t = molt_db_type_lookup(MOLT_DB_OID_DATEMULTIRANGE);
    ASSERT_EQ_UINT(t->element, MOLT_DB_OID_DATERANGE);
    t = molt_db_type_lookup(MOLT_DB_OID_UUID_ARRAY);
    ASSERT_EQ_INT(t->kind, MOLT_DB_KIND_ARRAY);
    ASSERT_EQ_UINT(t->element, MOLT_DB_OID_UUID);
    /* every base type's array points back at it */
    static const uint32_t base[] = {16, 17, 18, 19, 20, 21, 23, 25, 26, 114,
                                    142, 700, 701, 1042, 1043, 1082, 1083,
                                    1114, 1184, 1186, 1266, 1700, 2950, 3802,
                                    3904, 3906, 3908, 3910, 3912, 3926, 4451,
                                    4532, 4533, 4534, 4535, 4536};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        const molt_db_type_info *b = molt_db_type_lookup(base[i]);
        ASSERT(b != NULL);
        const molt_db_type_info *a = molt_db_type_lookup(b->array);
        ASSERT(a != NULL);
        ASSERT_EQ_UINT(a->element, base[i]);
        ASSERT_EQ_INT(a->name[0], '_');
        ASSERT_EQ_STR(a->name + 1, b->name);
        ASSERT_EQ_INT(molt_db_type_binary_supported(b->oid),
                      molt_db_type_binary_supported(a->oid));
    }
    ASSERT_EQ_INT(molt_db_type_binary_supported(MOLT_DB_OID_INT4), 1);
    ASSERT_EQ_INT(molt_db_type_binary_supported(MOLT_DB_OID_INT8MULTIRANGE), 1);
    ASSERT_EQ_INT(molt_db_type_binary_supported(MOLT_DB_OID_JSONB_ARRAY), 1);
    ASSERT_EQ_INT(molt_db_type_binary_supported(MOLT_DB_OID_XML), 0);
    ASSERT_EQ_INT(molt_db_type_binary_supported(MOLT_DB_OID_XML_ARRAY), 0);
    ASSERT_EQ_INT(molt_db_type_binary_supported(0), 0);
    ASSERT_EQ_INT(molt_db_type_binary_supported(16384), 0);
}

TEST(scalars_decode)
{
    molt_db_error err = {0};
    size_t n;
    const uint8_t *p = unhex("fffffffffffffffe", &n);
    int64_t i8;
    ASSERT_OK(molt_db_decode_int8(p, n, &i8, &err), &err);
    ASSERT_EQ_INT(i8, -2);
    ASSERT_CODE(molt_db_decode_int8(p, 7, &i8, &err), MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "int8");
    int32_t i4;
    ASSERT_OK(molt_db_decode_int4(unhex("80000000", NULL), hexlen("80000000"), &i4, &err), &err);
    ASSERT_EQ_INT(i4, INT32_MIN);
    ASSERT_CODE(molt_db_decode_int4(p, 8, &i4, &err), MOLT_DB_EPROTO);
    int16_t i2;
    ASSERT_OK(molt_db_decode_int2(unhex("7fff", NULL), hexlen("7fff"), &i2, &err), &err);
    ASSERT_EQ_INT(i2, 32767);
    ASSERT_CODE(molt_db_decode_int2(p, 3, &i2, &err), MOLT_DB_EPROTO);
    uint32_t o;
    ASSERT_OK(molt_db_decode_oid(unhex("ffffffff", NULL), hexlen("ffffffff"), &o, &err), &err);
    ASSERT_EQ_UINT(o, 4294967295u);
    int b;
    ASSERT_OK(molt_db_decode_bool(unhex("01", NULL), hexlen("01"), &b, &err), &err);
    ASSERT_EQ_INT(b, 1);
    ASSERT_CODE(molt_db_decode_bool(unhex("02", NULL), hexlen("02"), &b, &err),
                MOLT_DB_EPROTO);
    ASSERT_CODE(molt_db_decode_bool(p, 0, &b, &err), MOLT_DB_EPROTO);
    double d;
    ASSERT_OK(molt_db_decode_float8(unhex("3fb999999999999a", NULL), hexlen("3fb999999999999a"), &d, &err),
              &err);
    ASSERT_EQ_DBL(d, 0.1);
    float f;
    ASSERT_OK(molt_db_decode_float4(unhex("3f8ccccd", NULL), hexlen("3f8ccccd"), &f, &err), &err);
    ASSERT_EQ_DBL(f, 1.1f);
    ASSERT_CODE(molt_db_decode_float4(p, 8, &f, &err), MOLT_DB_EPROTO);
    uint8_t u[16];
    ASSERT_CODE(molt_db_decode_uuid(p, 8, u, &err), MOLT_DB_EPROTO);
    const uint8_t *t;
    size_t tl;
    ASSERT_OK(molt_db_decode_jsonb(unhex("017b7d", NULL), hexlen("017b7d"), &t, &tl, &err), &err);
    ASSERT_EQ_MEM(t, tl, "{}", 2);
    ASSERT_CODE(molt_db_decode_jsonb(unhex("027b7d", NULL), hexlen("027b7d"), &t, &tl, &err),
                MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "version 2");
    ASSERT_CODE(molt_db_decode_jsonb(p, 0, &t, &tl, &err), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_JSONB, "00"), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4, "0001"), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_XML, "3c612f3e"), MOLT_DB_ETYPE);
    ASSERT_CODE(text_code(16384, "00"), MOLT_DB_ETYPE);
}

TEST(scalars_text)
{
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_BOOL, "00"), "f");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT8, "8000000000000000"),
                  "-9223372036854775808");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT2, "8000"), "-32768");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_OID, "ffffffff"), "4294967295");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_CHAR, "41"), "A");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_CHAR, "00"), "");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_CHAR, "e9"), "\\351");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_BYTEA, "01ff"), "\\x01ff");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_BYTEA, ""), "\\x");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TEXT, "c3a9"), "\xc3\xa9");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_UUID, "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
                  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_JSONB, "017b2261223a20317d"),
                  "{\"a\": 1}");
}

static const char *f8(double v)
{
    static char s[MOLT_DB_FLOAT_TEXT_SIZE];
    size_t n = molt_db_format_float8(v, s);
    ASSERT_EQ_UINT(n, strlen(s));
    return s;
}

static const char *f4(float v)
{
    static char s[MOLT_DB_FLOAT_TEXT_SIZE];
    size_t n = molt_db_format_float4(v, s);
    ASSERT_EQ_UINT(n, strlen(s));
    return s;
}

TEST(float_text)
{
    /* expected strings from PostgreSQL 15 with extra_float_digits=1 */
    ASSERT_EQ_STR(f8(0.1), "0.1");
    ASSERT_EQ_STR(f8(1e100), "1e+100");
    ASSERT_EQ_STR(f8(1.5e-7), "1.5e-07");
    ASSERT_EQ_STR(f8(100000), "100000");
    ASSERT_EQ_STR(f8(1e15), "1e+15");
    ASSERT_EQ_STR(f8(1e14), "100000000000000");
    ASSERT_EQ_STR(f8(1e16), "1e+16");
    ASSERT_EQ_STR(f8(123456789012345.6), "123456789012345.6");
    ASSERT_EQ_STR(f8(1234567890123456.0), "1.234567890123456e+15");
    ASSERT_EQ_STR(f8(0.0001), "0.0001");
    ASSERT_EQ_STR(f8(0.00001), "1e-05");
    ASSERT_EQ_STR(f8(5e-324), "5e-324");
    ASSERT_EQ_STR(f8(1.7976931348623157e308), "1.7976931348623157e+308");
    ASSERT_EQ_STR(f8(12345678901234567890.0), "1.2345678901234567e+19");
    ASSERT_EQ_STR(f8(-0.0), "-0");
    ASSERT_EQ_STR(f8(0.0), "0");
    ASSERT_EQ_STR(f8(-2.5), "-2.5");
    ASSERT_EQ_STR(f8(NAN), "NaN");
    ASSERT_EQ_STR(f8(INFINITY), "Infinity");
    ASSERT_EQ_STR(f8(-INFINITY), "-Infinity");
    ASSERT_EQ_STR(f8(1.100000023841858), "1.100000023841858");
    ASSERT_EQ_STR(f4(1e6f), "1e+06");
    ASSERT_EQ_STR(f4(100000.0f), "100000");
    ASSERT_EQ_STR(f4(1234567.0f), "1.234567e+06");
    ASSERT_EQ_STR(f4(1e-4f), "0.0001");
    ASSERT_EQ_STR(f4(1e-5f), "1e-05");
    ASSERT_EQ_STR(f4(3.4028235e38f), "3.4028235e+38");
    ASSERT_EQ_STR(f4(1.1f), "1.1");
    ASSERT_EQ_STR(f4(12345678.0f), "1.2345678e+07");
    ASSERT_EQ_STR(f4(-INFINITY), "-Infinity");
    /* every shortest text reads back as the same value */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (isnan(v))
            continue;
        ASSERT_EQ_DBL(strtod(f8(v), NULL), v);
        float fv;
        uint32_t x4 = (uint32_t)x;
        memcpy(&fv, &x4, sizeof fv);
        if (!isnan(fv))
            ASSERT_EQ_DBL(strtof(f4(fv), NULL), fv);
    }
}

TEST(numeric_decode)
{
    molt_db_error err = {0};
    molt_db_numeric num;
    size_t n;
    const uint8_t *p = unhex("0002 0000 4000 0002 000c 0bb8", &n); /* -12.30 */
    ASSERT_OK(molt_db_numeric_decode(p, n, &num, &err), &err);
    ASSERT_EQ_UINT(num.ndigits, 2);
    ASSERT_EQ_INT(num.weight, 0);
    ASSERT_EQ_UINT(num.sign, MOLT_DB_NUMERIC_NEG);
    ASSERT_EQ_UINT(num.dscale, 2);
    ASSERT_EQ_UINT(molt_db_numeric_digit(&num, 1), 3000);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0002 0000 4000 0002 000c 0bb8"),
                  "-12.30");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0000 0000 0000 0002"), "0.00");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0000 0000 c000 0000"), "NaN");
    /* the server sends junk in dscale for the infinities */
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0000 0000 f000 0020"),
                  "-Infinity");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0000 0000 d000 0020"),
                  "Infinity");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0002 ffff 4000 0006 0001 08fc"), "-0.000123");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0003 0001 0000 0001 04d2 162e"
                                               " 2328"), "12345678.9");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, "0001 0005 0000 0000 0001"),
                  "100000000000000000000");
    /* malformed */
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0000 0000 0000"), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0002 0000 0000 0000 0001"),
                MOLT_DB_EPROTO); /* 2 digits announced, 1 present */
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0001 0000 0000 0000 2710"),
                MOLT_DB_EPROTO); /* digit 10000 */
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0001 0000 8000 0000 0001"),
                MOLT_DB_EPROTO); /* sign */
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0000 0000 0000 4000"),
                MOLT_DB_EPROTO); /* dscale */
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0001 fffe 0000 0002 0001"),
                MOLT_DB_EPROTO); /* 0.00000001 shown with 2 digits */
    ASSERT_CODE(text_code(MOLT_DB_OID_NUMERIC, "0001 0000 c000 0000 0001"),
                MOLT_DB_EPROTO); /* NaN with digits */
}

static const char *numeric_text_roundtrip(const char *in)
{
    static char s[256];
    molt_db_buf b = {0};
    molt_db_error err = {0};
    ASSERT_OK(molt_db_encode_numeric_text(&b, in, strlen(in), &err), &err);
    molt_db_numeric num;
    ASSERT_OK(molt_db_numeric_decode(b.data, b.len, &num, &err), &err);
    molt_db_buf t = {0};
    ASSERT_OK(molt_db_numeric_to_text(&num, &t), NULL);
    ASSERT(t.len < sizeof s);
    memcpy(s, t.data, t.len);
    s[t.len] = '\0';
    molt_db_buf_free(&b);
    molt_db_buf_free(&t);
    return s;
}

TEST(numeric_encode)
{
    molt_db_buf b = {0};
    molt_db_error err = {0};
    ASSERT_OK(molt_db_encode_numeric_text(&b, "-12.30", 6, &err), &err);
    ASSERT_EQ_STR(hex_of(&b), "0002000040000002000c0bb8"); /* the server's */
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_numeric_text(&b, "1e20", 4, &err), &err);
    ASSERT_EQ_STR(hex_of(&b), "00010005000000000001");
    ASSERT_EQ_STR(numeric_text_roundtrip("0"), "0");
    ASSERT_EQ_STR(numeric_text_roundtrip("-0.00"), "0.00");
    ASSERT_EQ_STR(numeric_text_roundtrip("007.50"), "7.50");
    ASSERT_EQ_STR(numeric_text_roundtrip(".5"), "0.5");
    ASSERT_EQ_STR(numeric_text_roundtrip("5."), "5");
    ASSERT_EQ_STR(numeric_text_roundtrip("1.5e3"), "1500");
    ASSERT_EQ_STR(numeric_text_roundtrip("1.5E-3"), "0.0015");
    ASSERT_EQ_STR(numeric_text_roundtrip("+123456789.000000001"),
                  "123456789.000000001");
    ASSERT_EQ_STR(numeric_text_roundtrip("nan"), "NaN");
    ASSERT_EQ_STR(numeric_text_roundtrip("-Infinity"), "-Infinity");
    ASSERT_EQ_STR(numeric_text_roundtrip("inf"), "Infinity");
    const char *bad[] = {"", "-", "1.2.3", "1e", "abc", " 1", "1 ", "1e99999999",
                         ".", "e5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t before = b.len;
        ASSERT_CODE(molt_db_encode_numeric_text(&b, bad[i], strlen(bad[i]),
                                                &err), MOLT_DB_EINVAL);
        ASSERT_EQ_UINT(b.len, before);
    }
    molt_db_buf_free(&b);
}

#if MOLT_DB_HAVE_INT128
TEST(numeric_decimal128)
{
    molt_db_error err = {0};
    molt_db_buf b = {0};
    molt_db_numeric num;
    molt_db_decimal128 d;
    ASSERT_OK(molt_db_encode_numeric_text(&b, "-12.30", 6, &err), &err);
    ASSERT_OK(molt_db_numeric_decode(b.data, b.len, &num, &err), &err);
    ASSERT_OK(molt_db_numeric_to_decimal128(&num, &d, &err), &err);
    ASSERT(d.unscaled == -1230);
    ASSERT_EQ_INT(d.scale, 2);
    /* 2^127 - 1 fits, 2^127 does not; -2^127 fits */
    const char *max = "170141183460469231731687303715884105727";
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_numeric_text(&b, max, strlen(max), &err), &err);
    ASSERT_OK(molt_db_numeric_decode(b.data, b.len, &num, &err), &err);
    ASSERT_OK(molt_db_numeric_to_decimal128(&num, &d, &err), &err);
    ASSERT(d.unscaled == (molt_db_int128)(((unsigned __int128)1 << 127) - 1));
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_numeric_text(
                  &b, "17014118346046923173168730371588410572.8", 40, &err),
              &err);
    ASSERT_OK(molt_db_numeric_decode(b.data, b.len, &num, &err), &err);
    ASSERT_CODE(molt_db_numeric_to_decimal128(&num, &d, &err), MOLT_DB_ERANGE);
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_numeric_text(
                  &b, "-1.70141183460469231731687303715884105728", 41, &err),
              &err);
    ASSERT_OK(molt_db_numeric_decode(b.data, b.len, &num, &err), &err);
    ASSERT_OK(molt_db_numeric_to_decimal128(&num, &d, &err), &err);
    ASSERT(d.unscaled == -(molt_db_int128)(((unsigned __int128)1 << 127) - 1) - 1);
    ASSERT_EQ_INT(d.scale, 38);
    /* and back: the same bytes the text encoder made */
    molt_db_buf b2 = {0};
    ASSERT_OK(molt_db_encode_numeric_decimal128(&b2, d, &err), &err);
    ASSERT_EQ_MEM(b2.data, b2.len, b.data, b.len);
    molt_db_buf_reset(&b2);
    d.unscaled = 5;
    d.scale = 3;
    ASSERT_OK(molt_db_encode_numeric_decimal128(&b2, d, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMERIC, hex_of(&b2)), "0.005");
    d.scale = -1;
    ASSERT_CODE(molt_db_encode_numeric_decimal128(&b2, d, &err), MOLT_DB_EINVAL);
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_numeric_text(&b, "NaN", 3, &err), &err);
    ASSERT_OK(molt_db_numeric_decode(b.data, b.len, &num, &err), &err);
    ASSERT_CODE(molt_db_numeric_to_decimal128(&num, &d, &err), MOLT_DB_ETYPE);
    molt_db_buf_free(&b);
    molt_db_buf_free(&b2);
}
#endif

TEST(calendar)
{
    int y, m, d;
    molt_db_date_to_ymd(0, &y, &m, &d);
    ASSERT(y == 2000 && m == 1 && d == 1);
    molt_db_date_to_ymd(-1, &y, &m, &d);
    ASSERT(y == 1999 && m == 12 && d == 31);
    molt_db_date_to_ymd(59, &y, &m, &d);
    ASSERT(y == 2000 && m == 2 && d == 29);
    int32_t days;
    ASSERT_OK(molt_db_date_from_ymd(1970, 1, 1, &days), NULL);
    ASSERT_EQ_INT(days, -10957);
    ASSERT_CODE(molt_db_date_from_ymd(1900, 2, 29, &days), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_date_from_ymd(2000, 13, 1, &days), MOLT_DB_EINVAL);
    for (int32_t k = -3000000; k < 3000000; k += 997) {
        molt_db_date_to_ymd(k, &y, &m, &d);
        ASSERT_OK(molt_db_date_from_ymd(y, m, d, &days), NULL);
        ASSERT_EQ_INT(days, k);
    }
}

TEST(datetime_text)
{
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_DATE, "00000000"), "2000-01-01");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_DATE, "7fffffff"), "infinity");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_DATE, "80000000"), "-infinity");
    molt_db_buf b = {0};
    int32_t days;
    ASSERT_OK(molt_db_date_from_ymd(0, 1, 1, &days), NULL);
    ASSERT_OK(molt_db_encode_date(&b, days), NULL);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_DATE, hex_of(&b)), "0001-01-01 BC");
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_timestamp(&b, (int64_t)days * MOLT_DB_USECS_PER_DAY +
                                               1500000), NULL);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMPTZ, hex_of(&b)),
                  "0001-01-01 00:00:01.5+00 BC");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMP, hex_of(&b)),
                  "0001-01-01 00:00:01.5 BC");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMP, "0000000000000001"),
                  "2000-01-01 00:00:00.000001");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMP, "ffffffffffffffff"),
                  "1999-12-31 23:59:59.999999");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMP, "7fffffffffffffff"), "infinity");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMPTZ, "8000000000000000"),
                  "-infinity");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIME, "000000141dd76000"), "24:00:00");
    ASSERT_CODE(text_code(MOLT_DB_OID_TIME, "000000141dd76001"), MOLT_DB_EPROTO);
    /* the server's bytes of '12:00:00+05:30'::timetz */
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMETZ, "0000000a0eebb000ffffb2a8"),
                  "12:00:00+05:30");
    molt_db_buf_reset(&b);
    molt_db_timetz tz = {43200500000, 3 * 3600 + 7 * 60 + 9};
    ASSERT_OK(molt_db_encode_timetz(&b, tz), NULL);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMETZ, hex_of(&b)), "12:00:00.5-03:07:09");
    tz.zone = 16 * 3600;
    ASSERT_CODE(molt_db_encode_timetz(&b, tz), MOLT_DB_EINVAL);
    ASSERT_CODE(text_code(MOLT_DB_OID_TIMETZ, "0000000a0eebb00000ffb2a8"),
                MOLT_DB_EPROTO);
    molt_db_buf_free(&b);
}

static const char *interval_text(int32_t months, int32_t days, int64_t us)
{
    molt_db_buf b = {0};
    molt_db_interval iv = {us, days, months};
    ASSERT_OK(molt_db_encode_interval(&b, iv), NULL);
    const char *s = text_of(MOLT_DB_OID_INTERVAL, hex_of(&b));
    molt_db_buf_free(&b);
    return s;
}

TEST(interval_text_cases)
{
    /* the server's bytes of '-1 days +02:00:00' */
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INTERVAL, "00000001ad274800ffffffff00000000"),
                  "-1 days +02:00:00");
    ASSERT_EQ_STR(interval_text(14, 3, 14706500000), "1 year 2 mons 3 days 04:05:06.5");
    ASSERT_EQ_STR(interval_text(0, 0, 0), "00:00:00");
    ASSERT_EQ_STR(interval_text(0, 0, -500000), "-00:00:00.5");
    ASSERT_EQ_STR(interval_text(-1, -1, -1250000), "-1 mons -1 days -00:00:01.25");
    ASSERT_EQ_STR(interval_text(1, -2, 3 * 3600000000LL), "1 mon -2 days +03:00:00");
    ASSERT_EQ_STR(interval_text(-12, 0, 0), "-1 years");
    ASSERT_EQ_STR(interval_text(13, 0, 0), "1 year 1 mon");
    ASSERT_EQ_STR(interval_text(0, 1, -1000000), "1 day -00:00:01");
    ASSERT_EQ_STR(interval_text(0, 0, 1), "00:00:00.000001");
    ASSERT_EQ_STR(interval_text(0, 0, INT64_MIN),
                  "-2562047788:00:54.775808");
    ASSERT_CODE(text_code(MOLT_DB_OID_INTERVAL, "00"), MOLT_DB_EPROTO);
}

TEST(array_decode)
{
    /* array_send('{{1,2},{3,NULL}}'::int4[]) */
    const char *hex = "00000002 00000001 00000017 00000002 00000001 00000002"
                      " 00000001 00000004 00000001 00000004 00000002"
                      " 00000004 00000003 ffffffff";
    size_t n;
    const uint8_t *p = unhex(hex, &n);
    molt_db_error err = {0};
    molt_db_array a;
    ASSERT_OK(molt_db_array_decode(p, n, &a, &err), &err);
    ASSERT_EQ_INT(a.ndim, 2);
    ASSERT_EQ_INT(a.has_nulls, 1);
    ASSERT_EQ_UINT(a.elem_oid, MOLT_DB_OID_INT4);
    ASSERT_EQ_UINT(a.nelems, 4);
    molt_db_array_iter it;
    molt_db_array_iter_init(&it, &a);
    const uint8_t *d;
    int32_t len;
    for (int i = 1; i <= 3; i++) {
        ASSERT_EQ_INT(molt_db_array_next(&it, &d, &len, &err), 1);
        int32_t v;
        ASSERT_OK(molt_db_decode_int4(d, (size_t)len, &v, &err), &err);
        ASSERT_EQ_INT(v, i);
    }
    ASSERT_EQ_INT(molt_db_array_next(&it, &d, &len, &err), 1);
    ASSERT_EQ_INT(len, -1);
    ASSERT(d == NULL);
    ASSERT_EQ_INT(molt_db_array_next(&it, &d, &len, &err), 0);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4_ARRAY, hex), "{{1,2},{3,NULL}}");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TEXT_ARRAY,
                          "000000010000000000000019000000020000000000000001610000000162"),
                  "[0:1]={a,b}");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4_ARRAY, "000000000000000000000017"), "{}");

    /* malformed */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY, "00000000 00000000"),
                MOLT_DB_EPROTO); /* short header */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000007 00000000 00000017"), MOLT_DB_EPROTO); /* ndim 7 */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "ffffffff 00000000 00000017"), MOLT_DB_EPROTO); /* ndim -1 */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000002 00000017 00000001 00000001 00000004 00000001"),
                MOLT_DB_EPROTO); /* flags 2 */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000001"),
                MOLT_DB_EPROTO); /* dims truncated */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 ffffffff 00000001"),
                MOLT_DB_EPROTO); /* negative dim */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000002 7fffffff"
                          " 00000004 00000001 00000004 00000002"),
                MOLT_DB_EPROTO); /* upper bound overflows */
    /* dims whose product overflows size_t: 6 x 2^31-1 */
    ASSERT_CODE(molt_db_array_decode(
                    unhex("00000006 00000000 00000017"
                          " 7fffffff 00000001 7fffffff 00000001 7fffffff 00000001"
                          " 7fffffff 00000001 7fffffff 00000001 7fffffff 00000001"
                          " 00000004 00000001", NULL), hexlen("00000006 00000000 00000017"
                          " 7fffffff 00000001 7fffffff 00000001 7fffffff 00000001"
                          " 7fffffff 00000001 7fffffff 00000001 7fffffff 00000001"
                          " 00000004 00000001"), &a, &err),
                MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "dimensions exceed");
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000001 00000001 00000005 00000001"),
                MOLT_DB_EPROTO); /* element length past the end */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000001 00000001 fffffffe 00000001"),
                MOLT_DB_EPROTO); /* element length -2 */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000001 00000001 ffffffff"),
                MOLT_DB_EPROTO); /* NULL but flags say none */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000001 00000001"
                          " 00000004 00000001 00"), MOLT_DB_EPROTO); /* trailing */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000014 00000001 00000001"
                          " 00000004 00000001"), MOLT_DB_EPROTO); /* int8 elems */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000001 00000000 00000017 00000001 00000001"
                          " 00000002 0001"), MOLT_DB_EPROTO); /* elem length 2 */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4_ARRAY,
                          "00000000 00000000 00000017 00000004"),
                MOLT_DB_EPROTO); /* empty with data */
}

TEST(array_text_quoting)
{
    molt_db_error err = {0};
    molt_db_buf b = {0};
    const char *elems = "aNULLnullx yq\"b\\{}a,b\xc3\xa9";
    /* "a" "NULL" "null" "" "x y" "q\"b\\" "{}" "a,b" "é" NULL */
    int32_t lens[] = {1, 4, 4, 0, 3, 4, 2, 3, 2, -1};
    int32_t dims[] = {10};
    int32_t lbs[] = {-2};
    ASSERT_OK(molt_db_encode_array(&b, MOLT_DB_OID_TEXT, 1, dims, lbs,
                                   (const uint8_t *)elems, lens, 10, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TEXT_ARRAY, hex_of(&b)),
                  "[-2:7]={a,\"NULL\",\"null\",\"\",\"x y\",\"q\\\"b\\\\\","
                  "\"{}\",\"a,b\",\xc3\xa9,NULL}");
    /* 2x3 int2 with bounds [1:2][0:2] */
    molt_db_buf_reset(&b);
    molt_db_buf e = {0};
    int32_t el[6];
    for (int i = 0; i < 6; i++) {
        ASSERT_OK(molt_db_encode_int2(&e, (int16_t)(i - 1)), NULL);
        el[i] = 2;
    }
    int32_t d2[] = {2, 3}, lb2[] = {1, 0};
    ASSERT_OK(molt_db_encode_array(&b, MOLT_DB_OID_INT2, 2, d2, lb2, e.data, el,
                                   6, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT2_ARRAY, hex_of(&b)),
                  "[1:2][0:2]={{-1,0,1},{2,3,4}}");
    /* encoder argument checks leave the buffer alone */
    size_t before = b.len;
    ASSERT_CODE(molt_db_encode_array(&b, MOLT_DB_OID_INT2, 2, d2, lb2, e.data,
                                     el, 5, &err), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_encode_array(&b, MOLT_DB_OID_INT2, 7, d2, lb2, e.data,
                                     el, 6, &err), MOLT_DB_EINVAL);
    int32_t lbbad[] = {INT32_MAX, 0};
    ASSERT_CODE(molt_db_encode_array(&b, MOLT_DB_OID_INT2, 2, d2, lbbad, e.data,
                                     el, 6, &err), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, before);
    /* an array of timestamps quotes the spaces */
    molt_db_buf_reset(&b);
    molt_db_buf_reset(&e);
    ASSERT_OK(molt_db_encode_timestamp(&e, 0), NULL);
    int32_t tl[] = {8};
    int32_t d1[] = {1};
    ASSERT_OK(molt_db_encode_array(&b, MOLT_DB_OID_TIMESTAMP, 1, d1, NULL,
                                   e.data, tl, 1, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TIMESTAMP_ARRAY, hex_of(&b)),
                  "{\"2000-01-01 00:00:00\"}");
    molt_db_buf_free(&b);
    molt_db_buf_free(&e);
}

TEST(range_codec)
{
    molt_db_error err = {0};
    molt_db_range r;
    size_t n;
    const uint8_t *p = unhex("0200000004000000010000000400000005", &n);
    ASSERT_OK(molt_db_range_decode(p, n, &r, &err), &err);
    ASSERT_EQ_UINT(r.flags, MOLT_DB_RANGE_LB_INC);
    ASSERT_EQ_INT(r.lower_len, 4);
    ASSERT_EQ_INT(r.upper_len, 4);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4RANGE, "0200000004000000010000000400000005"),
                  "[1,5)");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4RANGE, "080000000400000004"), "(,4)");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4RANGE, "18"), "(,)");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4RANGE, "01"), "empty");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4MULTIRANGE,
                          "00000002000000110200000004000000010000000400000003"
                          "000000110200000004000000050000000400000007"),
                  "{[1,3),[5,7)}");
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_INT4MULTIRANGE, "00000000"), "{}");
    /* malformed */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4RANGE, ""), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4RANGE, "02000000040000000100000004"),
                MOLT_DB_EPROTO); /* upper truncated */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4RANGE, "080000000500000004"),
                MOLT_DB_EPROTO); /* bound length past the end */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4RANGE, "0100"), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4RANGE, "08ffffffff"), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4RANGE, "080000000200000004"),
                MOLT_DB_EPROTO); /* int4 bound of 2 bytes */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4MULTIRANGE, "000000"), MOLT_DB_EPROTO);
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4MULTIRANGE, "7fffffff 00000001 01"),
                MOLT_DB_EPROTO); /* count past the bytes */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4MULTIRANGE, "00000001 00000002 01"),
                MOLT_DB_EPROTO); /* range length past the end */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4MULTIRANGE, "00000001 00000000 01"),
                MOLT_DB_EPROTO); /* zero-length range */
    ASSERT_CODE(text_code(MOLT_DB_OID_INT4MULTIRANGE, "00000001 00000001 01 01"),
                MOLT_DB_EPROTO); /* trailing byte */

    /* encode: tsrange bounds need quoting; text bounds use doubling */
    molt_db_buf lo = {0}, hi = {0}, b = {0};
    ASSERT_OK(molt_db_encode_timestamp(&lo, 0), NULL);
    ASSERT_OK(molt_db_encode_timestamp(&hi, MOLT_DB_USECS_PER_DAY), NULL);
    molt_db_range tr = {MOLT_DB_RANGE_LB_INC | MOLT_DB_RANGE_UB_INC, lo.data,
                        (int32_t)lo.len, hi.data, (int32_t)hi.len};
    ASSERT_OK(molt_db_encode_range(&b, &tr, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TSRANGE, hex_of(&b)),
                  "[\"2000-01-01 00:00:00\",\"2000-01-02 00:00:00\"]");
    /* a multirange of two encoded ranges */
    molt_db_buf mr = {0};
    int32_t rl[2] = {(int32_t)b.len, 1};
    molt_db_buf_put_u8(&b, MOLT_DB_RANGE_EMPTY);
    ASSERT_OK(molt_db_encode_multirange(&mr, b.data, rl, 2, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_TSMULTIRANGE, hex_of(&mr)),
                  "{[\"2000-01-01 00:00:00\",\"2000-01-02 00:00:00\"],empty}");
    molt_db_multirange m;
    ASSERT_OK(molt_db_multirange_decode(mr.data, mr.len, &m, &err), &err);
    ASSERT_EQ_UINT(m.count, 2);
    molt_db_multirange_iter it;
    molt_db_multirange_iter_init(&it, &m);
    ASSERT_EQ_INT(molt_db_multirange_next(&it, &r, &err), 1);
    ASSERT_EQ_MEM(r.upper, (size_t)r.upper_len, hi.data, hi.len);
    ASSERT_EQ_INT(molt_db_multirange_next(&it, &r, &err), 1);
    ASSERT_EQ_UINT(r.flags, MOLT_DB_RANGE_EMPTY);
    ASSERT_EQ_INT(molt_db_multirange_next(&it, &r, &err), 0);
    /* bad encoder input */
    size_t before = b.len;
    tr.flags = MOLT_DB_RANGE_EMPTY | MOLT_DB_RANGE_LB_INC;
    ASSERT_CODE(molt_db_encode_range(&b, &tr, &err), MOLT_DB_EINVAL);
    tr.flags = 0x20;
    ASSERT_CODE(molt_db_encode_range(&b, &tr, &err), MOLT_DB_EINVAL);
    tr.flags = 0;
    tr.upper_len = -1;
    ASSERT_CODE(molt_db_encode_range(&b, &tr, &err), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, before);
    molt_db_buf_free(&lo);
    molt_db_buf_free(&hi);
    molt_db_buf_free(&b);
    molt_db_buf_free(&mr);
}

TEST(range_bound_quoting)
{
    molt_db_error err = {0};
    molt_db_buf b = {0};
    /* numrange with bounds -1.5 and 2: no quoting */
    molt_db_buf lo = {0}, hi = {0};
    ASSERT_OK(molt_db_encode_numeric_text(&lo, "-1.5", 4, &err), &err);
    ASSERT_OK(molt_db_encode_numeric_text(&hi, "2", 1, &err), &err);
    molt_db_range r = {MOLT_DB_RANGE_LB_INC, lo.data, (int32_t)lo.len, hi.data,
                       (int32_t)hi.len};
    ASSERT_OK(molt_db_encode_range(&b, &r, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMRANGE, hex_of(&b)), "[-1.5,2)");
    /* an array of int4range quotes the comma */
    molt_db_buf a = {0};
    int32_t len = (int32_t)b.len, dim = 1;
    ASSERT_OK(molt_db_encode_array(&a, MOLT_DB_OID_NUMRANGE, 1, &dim, NULL,
                                   b.data, &len, 1, &err), &err);
    ASSERT_EQ_STR(text_of(MOLT_DB_OID_NUMRANGE_ARRAY, hex_of(&a)),
                  "{\"[-1.5,2)\"}");
    molt_db_buf_free(&a);
    molt_db_buf_free(&b);
    molt_db_buf_free(&lo);
    molt_db_buf_free(&hi);
}

TEST(encode_roundtrip)
{
    molt_db_error err = {0};
    molt_db_buf b = {0};
    ASSERT_OK(molt_db_encode_int8(&b, INT64_MIN), NULL);
    int64_t i8;
    ASSERT_OK(molt_db_decode_int8(b.data, b.len, &i8, &err), &err);
    ASSERT(i8 == INT64_MIN);
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_float8(&b, -1.5e-300), NULL);
    double d;
    ASSERT_OK(molt_db_decode_float8(b.data, b.len, &d, &err), &err);
    ASSERT_EQ_DBL(d, -1.5e-300);
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_float4(&b, 1.1f), NULL);
    ASSERT_EQ_STR(hex_of(&b), "3f8ccccd");
    molt_db_buf_reset(&b);
    molt_db_interval iv = {-1, INT32_MIN, INT32_MAX}, iv2;
    ASSERT_OK(molt_db_encode_interval(&b, iv), NULL);
    ASSERT_OK(molt_db_decode_interval(b.data, b.len, &iv2, &err), &err);
    ASSERT(iv2.micros == -1 && iv2.days == INT32_MIN && iv2.months == INT32_MAX);
    molt_db_buf_reset(&b);
    molt_db_timetz tz = {1, -57599}, tz2;
    ASSERT_OK(molt_db_encode_timetz(&b, tz), NULL);
    ASSERT_OK(molt_db_decode_timetz(b.data, b.len, &tz2, &err), &err);
    ASSERT(tz2.time_us == 1 && tz2.zone == -57599);
    molt_db_buf_reset(&b);
    ASSERT_CODE(molt_db_encode_time(&b, -1), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, 0);
    ASSERT_OK(molt_db_encode_time(&b, 1), NULL);
    int64_t t;
    ASSERT_OK(molt_db_decode_time(b.data, b.len, &t, &err), &err);
    ASSERT_EQ_INT(t, 1);
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_jsonb(&b, "[1]", 3), NULL);
    ASSERT_EQ_STR(hex_of(&b), "015b315d");
    molt_db_buf_reset(&b);
    static const uint8_t u[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                  15, 16};
    uint8_t u2[16];
    ASSERT_OK(molt_db_encode_uuid(&b, u), NULL);
    ASSERT_OK(molt_db_decode_uuid(b.data, b.len, u2, &err), &err);
    ASSERT_EQ_MEM(u2, 16, u, 16);
    molt_db_buf_reset(&b);
    ASSERT_OK(molt_db_encode_bool(&b, 7), NULL);
    ASSERT_EQ_STR(hex_of(&b), "01");
    molt_db_buf_free(&b);
}

TEST_MAIN(TEST_ENTRY(catalog), TEST_ENTRY(scalars_decode),
          TEST_ENTRY(scalars_text), TEST_ENTRY(float_text),
          TEST_ENTRY(numeric_decode), TEST_ENTRY(numeric_encode),
#if MOLT_DB_HAVE_INT128
          TEST_ENTRY(numeric_decimal128),
#endif
          TEST_ENTRY(calendar), TEST_ENTRY(datetime_text),
          TEST_ENTRY(interval_text_cases), TEST_ENTRY(array_decode),
          TEST_ENTRY(array_text_quoting), TEST_ENTRY(range_codec),
          TEST_ENTRY(range_bound_quoting), TEST_ENTRY(encode_roundtrip))
