/* The scalar type table: for each PostgreSQL scalar the library knows, one
 * line with everything done with its values, in every format: its value
 * class, the decoder of its binary form and the parser of the server's
 * text form (both into one molt_db_value, include/molt_db/value.h), the
 * encoder of a value back into the binary form, its Arrow column, the
 * Arrow columns COPY writes into it, and the struct members it fills
 * (the line's fields: types_internal.h).
 * Adding a scalar type is one line in `scalars` (plus its catalog line in
 * types_catalog.c and its tests); whatever reads values (text output,
 * Arrow, COPY from Arrow, struct mode, the worker's writers) then handles
 * it through its line and its class. test_types checks that every type of
 * the catalog has a whole line. */
#include "molt_db/rowstruct.h"
#include "molt_db/value.h"
#include "arrow_kind.h"
#include "types_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- binary decoders ------------------------------------------------------ */

static int dec_bool(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    int b;
    int rc = molt_db_decode_bool(p, len, &b, err);
    v->u.i = b;
    return rc;
}

static int dec_int2(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    int16_t x;
    int rc = molt_db_decode_int2(p, len, &x, err);
    v->u.i = x;
    return rc;
}

static int dec_int4(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    int32_t x;
    int rc = molt_db_decode_int4(p, len, &x, err);
    v->u.i = x;
    return rc;
}

static int dec_int8(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_int8(p, len, &v->u.i, err);
}

static int dec_oid(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    uint32_t x;
    int rc = molt_db_decode_oid(p, len, &x, err);
    v->u.i = x;
    return rc;
}

static int dec_float4(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_float4(p, len, &v->u.f4, err);
}

static int dec_float8(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_float8(p, len, &v->u.f8, err);
}

static int dec_numeric(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_numeric_decode(p, len, &v->u.numeric, err);
}

/* text-like types and bytea: the bytes as they are */
static int dec_bytes(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    (void)err;
    v->u.bytes.p = p;
    v->u.bytes.len = len;
    return MOLT_DB_OK;
}

static int dec_char(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_char(p, len, &v->u.ch, err);
}

static int dec_jsonb(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_jsonb(p, len, &v->u.bytes.p, &v->u.bytes.len, err);
}

static int dec_uuid(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_uuid(p, len, v->u.uuid, err);
}

static int dec_date(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    int32_t d;
    int rc = molt_db_decode_date(p, len, &d, err);
    v->u.i = d;
    return rc;
}

static int dec_time(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_time(p, len, &v->u.i, err);
}

static int dec_timetz(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_timetz(p, len, &v->u.timetz, err);
}

static int dec_timestamp(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_timestamp(p, len, &v->u.i, err);
}

static int dec_interval(const uint8_t *p, size_t len, molt_db_value *v, molt_db_error *err)
{
    return molt_db_decode_interval(p, len, &v->u.interval, err);
}

/* ---- text parsers --------------------------------------------------------- */

static int parse_bool(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    if (len != 1 || (p[0] != 't' && p[0] != 'f'))
        return MOLT_DB_EINVAL;
    v->u.i = p[0] == 't';
    return MOLT_DB_OK;
}

/* Copies short text to a NUL-terminated string for strtoll/strtod. */
static int cstr(const uint8_t *p, size_t len, char *s, size_t cap)
{
    if (len == 0 || len >= cap)
        return MOLT_DB_EINVAL;
    memcpy(s, p, len);
    s[len] = '\0';
    return MOLT_DB_OK;
}

static int parse_int(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    char s[32], *end;
    if (cstr(p, len, s, sizeof s) != MOLT_DB_OK || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return MOLT_DB_EINVAL;
    errno = 0;
    v->u.i = strtoll(s, &end, 10);
    return *end == '\0' && errno == 0 ? MOLT_DB_OK : MOLT_DB_EINVAL;
}

static int parse_float4(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    char s[MOLT_DB_FLOAT_TEXT_SIZE], *end;
    if (cstr(p, len, s, sizeof s) != MOLT_DB_OK)
        return MOLT_DB_EINVAL;
    v->u.f4 = strtof(s, &end);
    return *end == '\0' ? MOLT_DB_OK : MOLT_DB_EINVAL;
}

static int parse_float8(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    char s[MOLT_DB_FLOAT_TEXT_SIZE], *end;
    if (cstr(p, len, s, sizeof s) != MOLT_DB_OK)
        return MOLT_DB_EINVAL;
    v->u.f8 = strtod(s, &end);
    return *end == '\0' ? MOLT_DB_OK : MOLT_DB_EINVAL;
}

/* numeric: through its binary form in scratch */
static int parse_numeric(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    size_t start = scratch->len;
    int rc = molt_db_encode_numeric_text(scratch, (const char *)p, len, NULL);
    if (rc != MOLT_DB_OK)
        return rc;
    return molt_db_numeric_decode(scratch->data + start, scratch->len - start,
                                  &v->u.numeric, NULL);
}

static int parse_text(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    v->u.bytes.p = p;
    v->u.bytes.len = len;
    return MOLT_DB_OK;
}

/* "char": empty for byte 0, \ooo for bytes with the high bit (charout) */
static int parse_char(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    if (len <= 1) {
        v->u.ch = len ? p[0] : 0;
        return MOLT_DB_OK;
    }
    if (len != 4 || p[0] != '\\' || p[1] < '2' || p[1] > '3' || p[2] < '0' ||
        p[2] > '7' || p[3] < '0' || p[3] > '7')
        return MOLT_DB_EINVAL;
    v->u.ch = (uint8_t)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
    return MOLT_DB_OK;
}

static int parse_bytea(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    /* the decoded value is never longer than its text */
    if (molt_db_buf_reserve(scratch, len ? len : 1) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    uint8_t *out = scratch->data + scratch->len;
    int rc = molt_db__parse_bytea(p, len, out, &v->u.bytes.len);
    if (rc == MOLT_DB_OK) {
        scratch->len += v->u.bytes.len;
        v->u.bytes.p = out;
    }
    return rc;
}

static int parse_uuid(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    return molt_db__parse_uuid(p, len, v->u.uuid);
}

static int parse_date(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    int32_t d;
    int rc = molt_db__parse_date(p, len, &d);
    v->u.i = d;
    return rc;
}

static int parse_time(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    return molt_db__parse_time(p, len, &v->u.i);
}

static int parse_timetz(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    return molt_db__parse_timetz(p, len, &v->u.timetz);
}

static int parse_timestamp(const uint8_t *p, size_t len, molt_db_buf *scratch, molt_db_value *v)
{
    (void)scratch;
    return molt_db__parse_timestamp(p, len, 0, &v->u.i);
}

static int parse_timestamptz(const uint8_t *p, size_t len, molt_db_buf *scratch,
                             molt_db_value *v)
{
    (void)scratch;
    return molt_db__parse_timestamp(p, len, 1, &v->u.i);
}

static int parse_interval(const uint8_t *p, size_t len, molt_db_buf *scratch,
                          molt_db_value *v)
{
    (void)scratch;
    return molt_db__parse_interval(p, len, &v->u.interval);
}

/* ---- binary encoders ------------------------------------------------------ */

static int enc_bool(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_bool(out, v->u.i != 0);
}

static int enc_int2(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_int2(out, (int16_t)v->u.i);
}

static int enc_int4(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_int4(out, (int32_t)v->u.i);
}

static int enc_int8(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_int8(out, v->u.i);
}

static int enc_oid(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_oid(out, (uint32_t)v->u.i);
}

static int enc_float4(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_float4(out, v->u.f4);
}

static int enc_float8(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_float8(out, v->u.f8);
}

static int enc_bytes(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_bytes(out, v->u.bytes.p, v->u.bytes.len);
}

static int enc_char(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_char(out, v->u.ch);
}

static int enc_jsonb(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_jsonb(out, (const char *)v->u.bytes.p, v->u.bytes.len);
}

static int enc_uuid(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_uuid(out, v->u.uuid);
}

static int enc_date(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_date(out, (int32_t)v->u.i);
}

static int enc_time(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_time(out, v->u.i);
}

static int enc_timetz(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_timetz(out, v->u.timetz);
}

static int enc_timestamp(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_timestamp(out, v->u.i);
}

static int enc_interval(molt_db_buf *out, const molt_db_value *v)
{
    return molt_db_encode_interval(out, v->u.interval);
}

/* numeric: the header and digits of the binary form it was read from */
static int enc_numeric(molt_db_buf *out, const molt_db_value *v)
{
    const molt_db_numeric *n = &v->u.numeric;
    size_t start = out->len;
    molt_db_buf_put_u16(out, n->ndigits);
    molt_db_buf_put_u16(out, (uint16_t)n->weight);
    molt_db_buf_put_u16(out, n->sign);
    molt_db_buf_put_u16(out, n->dscale);
    molt_db_buf_put(out, n->digits, 2 * (size_t)n->ndigits);
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}

/* ---- the table ------------------------------------------------------------ */

#define AK(k) MOLT_DB__AK_##k
#define FROM(k) MOLT_DB__AK_BIT(k)
#define M(t) (1u << MOLT_DB_MEMBER_##t)

/* the Struct<months: Int32, days: Int32, micros: Int64> of an interval */
static const molt_db__value_part interval_parts[] = {
    {"months", MOLT_DB__AK_I32, offsetof(molt_db_interval, months)},
    {"days", MOLT_DB__AK_I32, offsetof(molt_db_interval, days)},
    {"micros", MOLT_DB__AK_I64, offsetof(molt_db_interval, micros)},
};

/* text, varchar, bpchar, name, json: the bytes are the text */
#define TEXTLIKE(oid, cls)                                                    \
    {oid, cls, dec_bytes, parse_text, enc_bytes, .raw_text = 1,              \
     .arrow = AK(UTF8), .copy_from = FROM(UTF8)}

/* Sorted by oid for the binary search below. (The library asks for xml's
 * text, molt_db_type_binary_supported; its binary form is the same bytes
 * when the client encoding is UTF8. COPY from Arrow does not write xml.) */
static const molt_db__scalar scalars[] = {
    {MOLT_DB_OID_BOOL, MOLT_DB_VALUE_BOOL, dec_bool, parse_bool, enc_bool,
     .arrow = AK(BOOL), .copy_from = FROM(BOOL), .members = M(BOOL)},
    {MOLT_DB_OID_BYTEA, MOLT_DB_VALUE_BYTES, dec_bytes, parse_bytea, enc_bytes,
     .arrow = AK(BINARY), .copy_from = FROM(BINARY),
     .members = M(BYTES_VIEW) | M(BYTES_COPY)},
    {MOLT_DB_OID_CHAR, MOLT_DB_VALUE_CHAR, dec_char, parse_char, enc_char,
     .arrow = AK(UTF8), .copy_from = FROM(UTF8)},
    TEXTLIKE(MOLT_DB_OID_NAME, MOLT_DB_VALUE_TEXT),
    {MOLT_DB_OID_INT8, MOLT_DB_VALUE_INT, dec_int8, parse_int, enc_int8, .arrow = AK(I64),
     .copy_from = FROM(I16) | FROM(I32) | FROM(I64) | FROM(U32), .members = M(INT64)},
    {MOLT_DB_OID_INT2, MOLT_DB_VALUE_INT, dec_int2, parse_int, enc_int2, .arrow = AK(I16),
     .copy_from = FROM(I16), .members = M(INT16) | M(INT32) | M(INT64)},
    {MOLT_DB_OID_INT4, MOLT_DB_VALUE_INT, dec_int4, parse_int, enc_int4, .arrow = AK(I32),
     .copy_from = FROM(I16) | FROM(I32), .members = M(INT32) | M(INT64)},
    TEXTLIKE(MOLT_DB_OID_TEXT, MOLT_DB_VALUE_TEXT),
    {MOLT_DB_OID_OID, MOLT_DB_VALUE_INT, dec_oid, parse_int, enc_oid, .arrow = AK(U32),
     .copy_from = FROM(U32), .members = M(INT64)},
    TEXTLIKE(MOLT_DB_OID_JSON, MOLT_DB_VALUE_JSON),
    {MOLT_DB_OID_XML, MOLT_DB_VALUE_TEXT, dec_bytes, parse_text, enc_bytes, .raw_text = 1,
     .arrow = AK(UTF8)},
    {MOLT_DB_OID_FLOAT4, MOLT_DB_VALUE_FLOAT4, dec_float4, parse_float4, enc_float4,
     .arrow = AK(F32), .copy_from = FROM(F32), .members = M(FLOAT) | M(DOUBLE)},
    {MOLT_DB_OID_FLOAT8, MOLT_DB_VALUE_FLOAT8, dec_float8, parse_float8, enc_float8,
     .arrow = AK(F64), .copy_from = FROM(F32) | FROM(F64), .members = M(DOUBLE)},
    TEXTLIKE(MOLT_DB_OID_BPCHAR, MOLT_DB_VALUE_TEXT),
    TEXTLIKE(MOLT_DB_OID_VARCHAR, MOLT_DB_VALUE_TEXT),
    {MOLT_DB_OID_DATE, MOLT_DB_VALUE_DATE, dec_date, parse_date, enc_date,
     .arrow = AK(DATE32), .copy_from = FROM(DATE32), .members = M(DATE_DAYS)},
    {MOLT_DB_OID_TIME, MOLT_DB_VALUE_TIME, dec_time, parse_time, enc_time,
     .arrow = AK(TIME64), .copy_from = FROM(TIME64)},
    {MOLT_DB_OID_TIMESTAMP, MOLT_DB_VALUE_TIMESTAMP, dec_timestamp, parse_timestamp,
     enc_timestamp, .arrow = AK(TS), .copy_from = FROM(TS) | FROM(TSTZ),
     .members = M(TIMESTAMP_US)},
    {MOLT_DB_OID_TIMESTAMPTZ, MOLT_DB_VALUE_TIMESTAMPTZ, dec_timestamp, parse_timestamptz,
     enc_timestamp, .arrow = AK(TSTZ), .copy_from = FROM(TS) | FROM(TSTZ),
     .members = M(TIMESTAMP_US)},
    {MOLT_DB_OID_INTERVAL, MOLT_DB_VALUE_INTERVAL, dec_interval, parse_interval, enc_interval,
     .arrow = AK(STRUCT), .parts = interval_parts, .nparts = 3, .copy_from = FROM(STRUCT)},
    {MOLT_DB_OID_TIMETZ, MOLT_DB_VALUE_TIMETZ, dec_timetz, parse_timetz, enc_timetz,
     .arrow = AK(UTF8), .copy_from = FROM(UTF8)},
    /* Arrow: Decimal128 when the column's typmod fits one, else Utf8 */
    {MOLT_DB_OID_NUMERIC, MOLT_DB_VALUE_NUMERIC, dec_numeric, parse_numeric, enc_numeric,
     .arrow = AK(DEC128), .copy_from = FROM(DEC128) | FROM(UTF8), .members = M(DECIMAL128)},
    {MOLT_DB_OID_UUID, MOLT_DB_VALUE_UUID, dec_uuid, parse_uuid, enc_uuid,
     .arrow = AK(UUID), .copy_from = FROM(UUID), .members = M(UUID)},
    {MOLT_DB_OID_JSONB, MOLT_DB_VALUE_JSON, dec_jsonb, parse_text, enc_jsonb,
     .arrow = AK(UTF8), .copy_from = FROM(UTF8)},
};

#define NSCALARS (sizeof scalars / sizeof scalars[0])

const molt_db__scalar *molt_db__scalar_at(size_t i)
{
    return i < NSCALARS ? &scalars[i] : NULL;
}

const molt_db__scalar *molt_db__scalar_of(uint32_t oid)
{
    size_t lo = 0, hi = NSCALARS;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (scalars[mid].oid == oid)
            return &scalars[mid];
        if (scalars[mid].oid < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int molt_db_value_class_of(uint32_t oid)
{
    const molt_db__scalar *t = molt_db__scalar_of(oid);
    return t ? (int)t->cls : 0;
}

int molt_db_value_decode(uint32_t oid, const uint8_t *p, size_t len,
                         molt_db_value *v, molt_db_error *err)
{
    const molt_db__scalar *t = molt_db__scalar_of(oid);
    if (t == NULL)
        return molt_db_error_set(err, MOLT_DB_ETYPE,
                                 "no binary decoder for type %lu", (unsigned long)oid);
    v->cls = t->cls;
    return t->decode(p, len, v, err);
}

int molt_db_value_encode(uint32_t oid, const molt_db_value *v, molt_db_buf *out)
{
    const molt_db__scalar *t = molt_db__scalar_of(oid);
    if (t == NULL || v->cls != t->cls)
        return MOLT_DB_ETYPE;
    return t->encode(out, v);
}

int molt_db_value_parse(uint32_t oid, const uint8_t *p, size_t len,
                        molt_db_buf *scratch, molt_db_value *v)
{
    const molt_db__scalar *t = molt_db__scalar_of(oid);
    if (t == NULL)
        return MOLT_DB_EINVAL;
    v->cls = t->cls;
    return t->parse(p, len, scratch, v);
}
