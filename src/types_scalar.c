/* Binary codecs of the fixed-size scalars (bool, "char", integers, oid,
 * floats, uuid) and of jsonb's version byte. */
#include "molt_db/types.h"
#include "types_internal.h"

#include <string.h>

int molt_db_decode_bool(const uint8_t *p, size_t len, int *out,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("bool", len, 1, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (p[0] > 1)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "bool value is byte %u, expected 0 or 1", p[0]);
    *out = p[0];
    return MOLT_DB_OK;
}

int molt_db_decode_char(const uint8_t *p, size_t len, uint8_t *out,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("\"char\"", len, 1, err);
    if (rc == MOLT_DB_OK)
        *out = p[0];
    return rc;
}

int molt_db_decode_int2(const uint8_t *p, size_t len, int16_t *out,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("int2", len, 2, err);
    if (rc == MOLT_DB_OK)
        *out = (int16_t)molt_db__rd16(p);
    return rc;
}

int molt_db_decode_int4(const uint8_t *p, size_t len, int32_t *out,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("int4", len, 4, err);
    if (rc == MOLT_DB_OK)
        *out = (int32_t)molt_db__rd32(p);
    return rc;
}

int molt_db_decode_int8(const uint8_t *p, size_t len, int64_t *out,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("int8", len, 8, err);
    if (rc == MOLT_DB_OK)
        *out = (int64_t)molt_db__rd64(p);
    return rc;
}

int molt_db_decode_oid(const uint8_t *p, size_t len, uint32_t *out,
                       molt_db_error *err)
{
    int rc = molt_db__want_len("oid", len, 4, err);
    if (rc == MOLT_DB_OK)
        *out = molt_db__rd32(p);
    return rc;
}

int molt_db_decode_float4(const uint8_t *p, size_t len, float *out,
                          molt_db_error *err)
{
    int rc = molt_db__want_len("float4", len, 4, err);
    if (rc == MOLT_DB_OK) {
        uint32_t bits = molt_db__rd32(p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int molt_db_decode_float8(const uint8_t *p, size_t len, double *out,
                          molt_db_error *err)
{
    int rc = molt_db__want_len("float8", len, 8, err);
    if (rc == MOLT_DB_OK) {
        uint64_t bits = molt_db__rd64(p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int molt_db_decode_uuid(const uint8_t *p, size_t len, uint8_t out[16],
                        molt_db_error *err)
{
    int rc = molt_db__want_len("uuid", len, 16, err);
    if (rc == MOLT_DB_OK)
        memcpy(out, p, 16);
    return rc;
}

int molt_db_decode_jsonb(const uint8_t *p, size_t len, const uint8_t **text,
                         size_t *text_len, molt_db_error *err)
{
    if (len < 1)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "jsonb value has no version byte");
    if (p[0] != 1)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "unsupported jsonb version %u", p[0]);
    *text = p + 1;
    *text_len = len - 1;
    return MOLT_DB_OK;
}

int molt_db_encode_bool(molt_db_buf *out, int v)
{
    molt_db_buf_put_u8(out, v ? 1 : 0);
    return molt_db_buf_ok(out);
}

int molt_db_encode_char(molt_db_buf *out, uint8_t v)
{
    molt_db_buf_put_u8(out, v);
    return molt_db_buf_ok(out);
}

int molt_db_encode_int2(molt_db_buf *out, int16_t v)
{
    molt_db_buf_put_u16(out, (uint16_t)v);
    return molt_db_buf_ok(out);
}

int molt_db_encode_int4(molt_db_buf *out, int32_t v)
{
    molt_db_buf_put_u32(out, (uint32_t)v);
    return molt_db_buf_ok(out);
}

int molt_db_encode_int8(molt_db_buf *out, int64_t v)
{
    molt_db_buf_put_u64(out, (uint64_t)v);
    return molt_db_buf_ok(out);
}

int molt_db_encode_oid(molt_db_buf *out, uint32_t v)
{
    molt_db_buf_put_u32(out, v);
    return molt_db_buf_ok(out);
}

int molt_db_encode_float4(molt_db_buf *out, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    molt_db_buf_put_u32(out, bits);
    return molt_db_buf_ok(out);
}

int molt_db_encode_float8(molt_db_buf *out, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    molt_db_buf_put_u64(out, bits);
    return molt_db_buf_ok(out);
}

int molt_db_encode_uuid(molt_db_buf *out, const uint8_t v[16])
{
    molt_db_buf_put(out, v, 16);
    return molt_db_buf_ok(out);
}

int molt_db_encode_bytes(molt_db_buf *out, const void *p, size_t len)
{
    molt_db_buf_put(out, p, len);
    return molt_db_buf_ok(out);
}

int molt_db_encode_jsonb(molt_db_buf *out, const char *json, size_t len)
{
    size_t start = out->len;
    molt_db_buf_put_u8(out, 1);
    molt_db_buf_put(out, json, len);
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}
