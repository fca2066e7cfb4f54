/* Arrow batches to binary COPY tuples (see arrow_copy.h). */
#include "molt_db/arrow_copy.h"
#include "molt_db/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_USECS INT64_C(946684800000000)

enum {
    E_BOOL, E_I16, E_I32, E_I64, E_U32, E_F32, E_F64, E_DEC, E_UTF8, E_BIN,
    E_UUID, E_DATE, E_TIME, E_TS, E_INTERVAL
};

typedef struct enc_col {
    int kind;
    uint32_t oid;
    int32_t scale;   /* Decimal128 */
    char name[64];
} enc_col;

struct molt_db_copy_encoder {
    size_t n;
    enc_col *cols;
};

static int src_kind(const struct ArrowSchema *s, int32_t *scale)
{
    const char *f = s->format;
    if (f == NULL)
        return -1;
    if (strcmp(f, "b") == 0) return E_BOOL;
    if (strcmp(f, "s") == 0) return E_I16;
    if (strcmp(f, "i") == 0) return E_I32;
    if (strcmp(f, "l") == 0) return E_I64;
    if (strcmp(f, "I") == 0) return E_U32;
    if (strcmp(f, "f") == 0) return E_F32;
    if (strcmp(f, "g") == 0) return E_F64;
    if (strcmp(f, "u") == 0) return E_UTF8;
    if (strcmp(f, "z") == 0) return E_BIN;
    if (strcmp(f, "w:16") == 0) return E_UUID;
    if (strcmp(f, "tdD") == 0) return E_DATE;
    if (strcmp(f, "ttu") == 0) return E_TIME;
    if (strncmp(f, "tsu:", 4) == 0) return E_TS;
    if (strncmp(f, "d:", 2) == 0) {
        const char *comma = strchr(f, ',');
        if (comma == NULL)
            return -1;
        char *end;
        long sc = strtol(comma + 1, &end, 10);
        if ((*end != '\0' && strcmp(end, ",128") != 0) || sc < 0 || sc > 38)
            return -1;
        *scale = (int32_t)sc;
        return E_DEC;
    }
    if (strcmp(f, "+s") == 0 && s->n_children == 3 &&
        strcmp(s->children[0]->format, "i") == 0 &&
        strcmp(s->children[1]->format, "i") == 0 &&
        strcmp(s->children[2]->format, "l") == 0)
        return E_INTERVAL;
    return -1;
}

static int accepts(int kind, uint32_t oid)
{
    switch (kind) {
    case E_BOOL: return oid == MOLT_DB_OID_BOOL;
    case E_I16:
        return oid == MOLT_DB_OID_INT2 || oid == MOLT_DB_OID_INT4 ||
               oid == MOLT_DB_OID_INT8;
    case E_I32: return oid == MOLT_DB_OID_INT4 || oid == MOLT_DB_OID_INT8;
    case E_I64: return oid == MOLT_DB_OID_INT8;
    case E_U32: return oid == MOLT_DB_OID_OID || oid == MOLT_DB_OID_INT8;
    case E_F32: return oid == MOLT_DB_OID_FLOAT4 || oid == MOLT_DB_OID_FLOAT8;
    case E_F64: return oid == MOLT_DB_OID_FLOAT8;
    case E_DEC: return oid == MOLT_DB_OID_NUMERIC;
    case E_UTF8:
        return oid == MOLT_DB_OID_TEXT || oid == MOLT_DB_OID_VARCHAR ||
               oid == MOLT_DB_OID_BPCHAR || oid == MOLT_DB_OID_NAME ||
               oid == MOLT_DB_OID_JSON || oid == MOLT_DB_OID_JSONB;
    case E_BIN: return oid == MOLT_DB_OID_BYTEA;
    case E_UUID: return oid == MOLT_DB_OID_UUID;
    case E_DATE: return oid == MOLT_DB_OID_DATE;
    case E_TIME: return oid == MOLT_DB_OID_TIME;
    case E_TS:
        return oid == MOLT_DB_OID_TIMESTAMP || oid == MOLT_DB_OID_TIMESTAMPTZ;
    case E_INTERVAL: return oid == MOLT_DB_OID_INTERVAL;
    default: return 0;
    }
}

int molt_db_copy_encoder_new(const struct ArrowSchema *schema,
                             const uint32_t *oids, size_t n,
                             molt_db_copy_encoder **out, molt_db_error *err)
{
    *out = NULL;
    if (schema == NULL || schema->format == NULL ||
        strcmp(schema->format, "+s") != 0 || (size_t)schema->n_children != n ||
        n > 1600)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow copy: the schema must be a struct of the "
                                 "%zu target columns", n);
    molt_db_copy_encoder *e = calloc(1, sizeof *e);
    if (e == NULL || (e->cols = calloc(n ? n : 1, sizeof *e->cols)) == NULL) {
        free(e);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow copy: out of memory");
    }
    e->n = n;
    for (size_t i = 0; i < n; i++) {
        const struct ArrowSchema *c = schema->children[i];
        enc_col *ec = &e->cols[i];
        snprintf(ec->name, sizeof ec->name, "%s", c->name ? c->name : "");
        ec->oid = oids[i];
        ec->kind = src_kind(c, &ec->scale);
        if (ec->kind < 0 || !accepts(ec->kind, oids[i])) {
            const char *tn = molt_db_type_name(oids[i]);
            molt_db_error_set(err, MOLT_DB_ETYPE,
                              "arrow copy: column \"%s\": Arrow \"%s\" cannot go "
                              "into %s", ec->name, c->format ? c->format : "?",
                              tn ? tn : "this column's type");
            molt_db_copy_encoder_free(e);
            return MOLT_DB_ETYPE;
        }
    }
    *out = e;
    return MOLT_DB_OK;
}

void molt_db_copy_encoder_free(molt_db_copy_encoder *e)
{
    if (e == NULL)
        return;
    free(e->cols);
    free(e);
}

void molt_db_copy_encode_header(molt_db_buf *out)
{
    static const uint8_t hdr[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF,
                                    '\r', '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0};
    molt_db_buf_put(out, hdr, sizeof hdr);
}

void molt_db_copy_encode_trailer(molt_db_buf *out)
{
    molt_db_buf_put_u16(out, 0xFFFF);
}

static int is_valid(const struct ArrowArray *a, int64_t i)
{
    const uint8_t *v = a->null_count == 0 ? NULL : a->buffers[0];
    return v == NULL || ((v[i >> 3] >> (i & 7)) & 1);
}

/* Reads element i (already offset) of a fixed-width buffer. */
#define AT(a, type, i) (((const type *)(a)->buffers[1])[(i)])

static int put_len_value(molt_db_buf *out, const void *p, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return MOLT_DB_ERANGE;
    molt_db_buf_put_u32(out, (uint32_t)n);
    molt_db_buf_put(out, p, n);
    return MOLT_DB_OK;
}

static int put_int(molt_db_buf *out, uint32_t oid, int64_t v)
{
    switch (oid) {
    case MOLT_DB_OID_INT2:
        molt_db_buf_put_u32(out, 2);
        molt_db_buf_put_u16(out, (uint16_t)(int16_t)v);
        return MOLT_DB_OK;
    case MOLT_DB_OID_INT4:
    case MOLT_DB_OID_OID:
        molt_db_buf_put_u32(out, 4);
        molt_db_buf_put_u32(out, (uint32_t)v);
        return MOLT_DB_OK;
    default:
        molt_db_buf_put_u32(out, 8);
        molt_db_buf_put_u64(out, (uint64_t)v);
        return MOLT_DB_OK;
    }
}

static int put_field(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                     molt_db_buf *out)
{
    switch (ec->kind) {
    case E_BOOL: {
        const uint8_t *bits = a->buffers[1];
        uint8_t v = (bits[i >> 3] >> (i & 7)) & 1;
        return put_len_value(out, &v, 1);
    }
    case E_I16: return put_int(out, ec->oid, AT(a, int16_t, i));
    case E_I32: return put_int(out, ec->oid, AT(a, int32_t, i));
    case E_I64: return put_int(out, ec->oid, AT(a, int64_t, i));
    case E_U32: return put_int(out, ec->oid, (int64_t)AT(a, uint32_t, i));
    case E_F32:
    case E_F64: {
        double d = ec->kind == E_F32 ? (double)AT(a, float, i) : AT(a, double, i);
        molt_db_buf_put_u32(out, ec->oid == MOLT_DB_OID_FLOAT4 ? 4 : 8);
        return ec->oid == MOLT_DB_OID_FLOAT4 ? molt_db_encode_float4(out, (float)d)
                                             : molt_db_encode_float8(out, d);
    }
    case E_DEC: {
#if MOLT_DB_HAVE_INT128
        molt_db_decimal128 d;
        memcpy(&d.unscaled, (const uint8_t *)a->buffers[1] + 16 * i, 16);
        d.scale = ec->scale;
        size_t at = out->len;
        molt_db_buf_put_u32(out, 0);
        int rc = molt_db_encode_numeric_decimal128(out, d, NULL);
        if (rc != MOLT_DB_OK)
            return rc;
        molt_db_buf_patch_u32(out, at, (uint32_t)(out->len - at - 4));
        return MOLT_DB_OK;
#else
        return MOLT_DB_ETYPE;
#endif
    }
    case E_UTF8:
    case E_BIN: {
        const int32_t *offs = a->buffers[1];
        const uint8_t *data = a->buffers[2];
        int32_t s = offs[i], e = offs[i + 1];
        if (s < 0 || e < s)
            return MOLT_DB_EINVAL;
        if (ec->oid == MOLT_DB_OID_JSONB) {
            if ((size_t)(e - s) >= (size_t)INT32_MAX)
                return MOLT_DB_ERANGE;
            molt_db_buf_put_u32(out, (uint32_t)(e - s) + 1);
            molt_db_buf_put_u8(out, 1);
            molt_db_buf_put(out, data + s, (size_t)(e - s));
            return MOLT_DB_OK;
        }
        return put_len_value(out, data + s, (size_t)(e - s));
    }
    case E_UUID:
        return put_len_value(out, (const uint8_t *)a->buffers[1] + 16 * i, 16);
    case E_DATE: {
        int32_t d = AT(a, int32_t, i);
        if (d != INT32_MAX && d != INT32_MIN) {
            if (d < INT32_MIN + PG_EPOCH_DAYS + 1)
                return MOLT_DB_ERANGE;
            d -= PG_EPOCH_DAYS;
        }
        molt_db_buf_put_u32(out, 4);
        molt_db_buf_put_u32(out, (uint32_t)d);
        return MOLT_DB_OK;
    }
    case E_TIME: {
        int64_t us = AT(a, int64_t, i);
        if (us < 0 || us > MOLT_DB_USECS_PER_DAY)
            return MOLT_DB_ERANGE;
        molt_db_buf_put_u32(out, 8);
        molt_db_buf_put_u64(out, (uint64_t)us);
        return MOLT_DB_OK;
    }
    case E_TS: {
        int64_t us = AT(a, int64_t, i);
        if (us != INT64_MAX && us != INT64_MIN) {
            if (us < INT64_MIN + PG_EPOCH_USECS + 1)
                return MOLT_DB_ERANGE;
            us -= PG_EPOCH_USECS;
        }
        molt_db_buf_put_u32(out, 8);
        molt_db_buf_put_u64(out, (uint64_t)us);
        return MOLT_DB_OK;
    }
    case E_INTERVAL: {
        const struct ArrowArray *m = a->children[0], *d = a->children[1],
                                *u = a->children[2];
        /* element i of a struct is element i of each child, past the
         * child's own offset */
        molt_db_buf_put_u32(out, 16);
        molt_db_buf_put_u64(out, (uint64_t)AT(u, int64_t, u->offset + i));
        molt_db_buf_put_u32(out, (uint32_t)AT(d, int32_t, d->offset + i));
        molt_db_buf_put_u32(out, (uint32_t)AT(m, int32_t, m->offset + i));
        return MOLT_DB_OK;
    }
    default:
        return MOLT_DB_ETYPE;
    }
}

int molt_db_copy_encode_batch(molt_db_copy_encoder *e,
                              const struct ArrowArray *batch, molt_db_buf *out,
                              molt_db_error *err)
{
    if (batch == NULL || batch->release == NULL || (size_t)batch->n_children != e->n)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow copy: the batch does not match the schema");
    for (size_t c = 0; c < e->n; c++)
        if (batch->children[c]->length < batch->offset + batch->length)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "arrow copy: column \"%s\" is shorter than "
                                     "the batch", e->cols[c].name);
    size_t before = out->len;
    for (int64_t r = 0; r < batch->length; r++) {
        molt_db_buf_put_u16(out, (uint16_t)e->n);
        for (size_t c = 0; c < e->n; c++) {
            const struct ArrowArray *a = batch->children[c];
            int64_t i = a->offset + batch->offset + r;
            if (!is_valid(a, i)) {
                molt_db_buf_put_u32(out, 0xFFFFFFFFu);
                continue;
            }
            int rc = put_field(&e->cols[c], a, i, out);
            if (rc != MOLT_DB_OK) {
                out->len = before;
                return molt_db_error_set(err, rc == MOLT_DB_ENOMEM ? rc : MOLT_DB_ERANGE,
                                         "arrow copy: column \"%s\", row %lld: "
                                         "value out of the target's range",
                                         e->cols[c].name, (long long)r);
            }
        }
    }
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        out->len = before;
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow copy: out of memory");
    }
    return MOLT_DB_OK;
}
