/* Arrow batch builder: column type choice and appending DataRow fields. */
#include "arrow_internal.h"
#include "molt_db/types.h"

#include <stdlib.h>
#include <string.h>

/* 2000-01-01 minus 1970-01-01, in days and in microseconds. */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_USECS INT64_C(946684800000000)

int molt_db__arrow_col_children(const molt_db__arrow_col *c)
{
    return c->kind == MOLT_DB__AK_INTERVAL ? 3 : 0;
}

/* Decimal128(p, s) from a numeric typmod when 0 <= s <= p <= 38 (PostgreSQL
 * 15 allows negative scales and s > p: those stay text). */
static int numeric_typmod(int32_t typmod, int32_t *p, int32_t *s)
{
    if (typmod < 4)
        return 0;
    int32_t t = typmod - 4;
    *p = (t >> 16) & 0xFFFF;
    *s = ((t & 0x7FF) ^ 1024) - 1024;
    return *p >= 1 && *p <= 38 && *s >= 0 && *s <= *p;
}

static void col_choose(molt_db__arrow_col *c, const molt_db_column *src)
{
    c->oid = src->type_oid;
    c->kind = MOLT_DB__AK_UTF8;
    c->src = MOLT_DB__SRC_RAW;
    c->width = 0;
    c->ext = NULL;
    if (src->type_oid == MOLT_DB_OID_JSON || src->type_oid == MOLT_DB_OID_JSONB)
        c->ext = "arrow.json";
    if (src->format != MOLT_DB_FORMAT_BINARY)
        return; /* text format: the server's text, as Utf8 */
    switch (src->type_oid) {
    case MOLT_DB_OID_BOOL: c->kind = MOLT_DB__AK_BOOL; break;
    case MOLT_DB_OID_INT2: c->kind = MOLT_DB__AK_I16; c->width = 2; break;
    case MOLT_DB_OID_INT4: c->kind = MOLT_DB__AK_I32; c->width = 4; break;
    case MOLT_DB_OID_INT8: c->kind = MOLT_DB__AK_I64; c->width = 8; break;
    case MOLT_DB_OID_OID: c->kind = MOLT_DB__AK_U32; c->width = 4; break;
    case MOLT_DB_OID_FLOAT4: c->kind = MOLT_DB__AK_F32; c->width = 4; break;
    case MOLT_DB_OID_FLOAT8: c->kind = MOLT_DB__AK_F64; c->width = 8; break;
    case MOLT_DB_OID_NUMERIC:
        if (numeric_typmod(src->type_modifier, &c->precision, &c->scale)) {
            c->kind = MOLT_DB__AK_DEC128;
            c->width = 16;
        } else {
            c->src = MOLT_DB__SRC_TEXT;
        }
        break;
    case MOLT_DB_OID_TEXT:
    case MOLT_DB_OID_VARCHAR:
    case MOLT_DB_OID_BPCHAR:
    case MOLT_DB_OID_NAME:
    case MOLT_DB_OID_JSON:
        break;
    case MOLT_DB_OID_JSONB: c->src = MOLT_DB__SRC_JSONB; break;
    case MOLT_DB_OID_BYTEA: c->kind = MOLT_DB__AK_BINARY; break;
    case MOLT_DB_OID_UUID:
        c->kind = MOLT_DB__AK_UUID; c->width = 16; c->ext = "arrow.uuid";
        break;
    case MOLT_DB_OID_DATE: c->kind = MOLT_DB__AK_DATE32; c->width = 4; break;
    case MOLT_DB_OID_TIME: c->kind = MOLT_DB__AK_TIME64; c->width = 8; break;
    case MOLT_DB_OID_TIMESTAMP: c->kind = MOLT_DB__AK_TS; c->width = 8; break;
    case MOLT_DB_OID_TIMESTAMPTZ: c->kind = MOLT_DB__AK_TSTZ; c->width = 8; break;
    case MOLT_DB_OID_INTERVAL: c->kind = MOLT_DB__AK_INTERVAL; c->width = 4; break;
    default:
        c->src = MOLT_DB__SRC_TEXT; /* timetz, char, arrays, ranges, ... */
        break;
    }
}

static void col_free(molt_db__arrow_col *c)
{
    free(c->name);
    molt_db_buf_free(&c->validity);
    molt_db_buf_free(&c->values);
    molt_db_buf_free(&c->data);
    molt_db_buf_free(&c->extra);
}

static int is_var(const molt_db__arrow_col *c)
{
    return c->kind == MOLT_DB__AK_UTF8 || c->kind == MOLT_DB__AK_BINARY;
}

int molt_db__arrow_builder_start(molt_db_arrow_builder *b)
{
    int32_t zero = 0;
    b->rows = 0;
    b->full = 0;
    b->ready = 0;
    for (size_t i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        molt_db_buf_reset(&c->validity);
        molt_db_buf_reset(&c->values);
        molt_db_buf_reset(&c->data);
        molt_db_buf_reset(&c->extra);
        c->null_count = 0;
        /* Reserve a little everywhere so that even an empty batch has
         * non-NULL buffers (some consumers want them). */
        if (molt_db_buf_reserve(&c->validity, 8) != MOLT_DB_OK ||
            molt_db_buf_reserve(&c->values, 8) != MOLT_DB_OK ||
            molt_db_buf_reserve(&c->data, 8) != MOLT_DB_OK ||
            (c->kind == MOLT_DB__AK_INTERVAL &&
             molt_db_buf_reserve(&c->extra, 8) != MOLT_DB_OK))
            return MOLT_DB_ENOMEM;
        if (is_var(c))
            molt_db_buf_put(&c->values, &zero, 4);
    }
    b->ready = 1;
    return MOLT_DB_OK;
}

int molt_db_arrow_builder_new(const molt_db_column *cols, size_t ncols,
                              size_t batch_rows, molt_db_arrow_builder **out,
                              molt_db_error *err)
{
    *out = NULL;
    if (ncols > 0 && cols == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "arrow: no columns given");
    if (batch_rows == 0)
        batch_rows = MOLT_DB_ARROW_DEFAULT_BATCH_ROWS;
    if (batch_rows > INT32_MAX)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow: batch_rows %zu is too large", batch_rows);
    molt_db_arrow_builder *b = calloc(1, sizeof *b);
    if (b == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    b->batch_rows = batch_rows;
    b->cols = calloc(ncols ? ncols : 1, sizeof *b->cols);
    b->view_children = calloc(ncols ? ncols : 1, sizeof *b->view_children);
    if (b->cols == NULL || b->view_children == NULL)
        goto nomem;
    b->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        b->cols[i].name = strdup(cols[i].name ? cols[i].name : "");
        if (b->cols[i].name == NULL)
            goto nomem;
        col_choose(&b->cols[i], &cols[i]);
    }
    if (molt_db__arrow_builder_start(b) != MOLT_DB_OK)
        goto nomem;
    *out = b;
    return MOLT_DB_OK;
nomem:
    molt_db_arrow_builder_free(b);
    return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
}

void molt_db_arrow_builder_free(molt_db_arrow_builder *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->ncols; i++)
        col_free(&b->cols[i]);
    free(b->cols);
    free(b->view_children);
    free(b);
}

int64_t molt_db_arrow_builder_rows(const molt_db_arrow_builder *b)
{
    return b->rows;
}

int molt_db_arrow_builder_full(const molt_db_arrow_builder *b)
{
    return b->full;
}

size_t molt_db_arrow_builder_ncols(const molt_db_arrow_builder *b)
{
    return b->ncols;
}

void molt_db_arrow_builder_reset(molt_db_arrow_builder *b)
{
    /* Memory is kept, so the reserve in start cannot fail. */
    (void)molt_db__arrow_builder_start(b);
}

/* ---- appending ---------------------------------------------------------- */

static int put_fixed(molt_db_buf *buf, const void *v, size_t n)
{
    if (molt_db_buf_reserve(buf, n) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    memcpy(buf->data + buf->len, v, n);
    buf->len += n;
    return MOLT_DB_OK;
}

/* Sets bit `row` of a bitmap whose byte for that row already exists. */
static void bit_set(molt_db_buf *bits, int64_t row)
{
    bits->data[row >> 3] |= (uint8_t)(1u << (row & 7));
}

/* Closes a variable-length value: checks the 32-bit offset limit and
 * appends the end offset. */
static int var_close(molt_db__arrow_col *c, molt_db_error *err)
{
    if (c->data.len > (size_t)INT32_MAX)
        return molt_db_error_set(err, MOLT_DB_ERANGE,
                                 "arrow: column \"%s\": more than 2 GiB of data "
                                 "in one batch", c->name);
    int32_t end = (int32_t)c->data.len;
    return put_fixed(&c->values, &end, 4);
}

static int put_decimal(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                       molt_db_error *err)
{
#if MOLT_DB_HAVE_INT128
    molt_db_numeric n;
    molt_db_decimal128 d;
    int rc = molt_db_numeric_decode(p, len, &n, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (n.sign == MOLT_DB_NUMERIC_NAN || n.sign == MOLT_DB_NUMERIC_PINF ||
        n.sign == MOLT_DB_NUMERIC_NINF)
        return molt_db_error_set(err, MOLT_DB_ETYPE,
                                 "arrow: column \"%s\": NaN or infinity cannot "
                                 "be a Decimal128", c->name);
    rc = molt_db_numeric_to_decimal128(&n, &d, err);
    if (rc != MOLT_DB_OK)
        return rc;
    /* The column's scale is fixed; a value shown with fewer digits (never
     * from the server for numeric(p,s), but cheap to handle) is rescaled. */
    if (d.scale > c->scale)
        return molt_db_error_set(err, MOLT_DB_ERANGE,
                                 "arrow: column \"%s\": value has scale %d > %d",
                                 c->name, (int)d.scale, (int)c->scale);
    for (int32_t s = d.scale; s < c->scale; s++) {
        molt_db_int128 lim = (molt_db_int128)1 << 120;
        if (d.unscaled > lim || d.unscaled < -lim)
            return molt_db_error_set(err, MOLT_DB_ERANGE,
                                     "arrow: column \"%s\": value out of range",
                                     c->name);
        d.unscaled *= 10;
    }
    return put_fixed(&c->values, &d.unscaled, 16);
#else
    (void)p; (void)len;
    return molt_db_error_set(err, MOLT_DB_ETYPE,
                             "arrow: column \"%s\": no 128-bit integers", c->name);
#endif
}

static int put_value(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                     molt_db_error *err)
{
    int rc;
    union {
        int b;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        uint32_t u32;
        float f32;
        double f64;
        uint8_t uuid[16];
        molt_db_interval iv;
    } v;

    switch (c->kind) {
    case MOLT_DB__AK_BOOL: /* bits: appended by molt_db_arrow_builder_append */
        return molt_db_decode_bool(p, len, &v.b, err);
    case MOLT_DB__AK_I16:
        if ((rc = molt_db_decode_int2(p, len, &v.i16, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.i16, 2);
    case MOLT_DB__AK_I32:
        if ((rc = molt_db_decode_int4(p, len, &v.i32, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.i32, 4);
    case MOLT_DB__AK_I64:
        if ((rc = molt_db_decode_int8(p, len, &v.i64, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.i64, 8);
    case MOLT_DB__AK_U32:
        if ((rc = molt_db_decode_oid(p, len, &v.u32, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.u32, 4);
    case MOLT_DB__AK_F32:
        if ((rc = molt_db_decode_float4(p, len, &v.f32, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.f32, 4);
    case MOLT_DB__AK_F64:
        if ((rc = molt_db_decode_float8(p, len, &v.f64, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.f64, 8);
    case MOLT_DB__AK_DEC128:
        return put_decimal(c, p, len, err);
    case MOLT_DB__AK_UUID:
        if ((rc = molt_db_decode_uuid(p, len, v.uuid, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, v.uuid, 16);
    case MOLT_DB__AK_DATE32:
        if ((rc = molt_db_decode_date(p, len, &v.i32, err)) != MOLT_DB_OK)
            return rc;
        if (v.i32 != MOLT_DB_DATE_INFINITY && v.i32 != MOLT_DB_DATE_NEG_INFINITY) {
            if (v.i32 > INT32_MAX - PG_EPOCH_DAYS)
                return molt_db_error_set(err, MOLT_DB_ERANGE,
                                         "arrow: column \"%s\": date out of range",
                                         c->name);
            v.i32 += PG_EPOCH_DAYS;
        }
        return put_fixed(&c->values, &v.i32, 4);
    case MOLT_DB__AK_TIME64:
        if ((rc = molt_db_decode_time(p, len, &v.i64, err)) != MOLT_DB_OK)
            return rc;
        return put_fixed(&c->values, &v.i64, 8);
    case MOLT_DB__AK_TS:
    case MOLT_DB__AK_TSTZ:
        if ((rc = molt_db_decode_timestamp(p, len, &v.i64, err)) != MOLT_DB_OK)
            return rc;
        if (v.i64 != MOLT_DB_TIMESTAMP_INFINITY &&
            v.i64 != MOLT_DB_TIMESTAMP_NEG_INFINITY) {
            if (v.i64 > INT64_MAX - PG_EPOCH_USECS)
                return molt_db_error_set(err, MOLT_DB_ERANGE,
                                         "arrow: column \"%s\": timestamp out "
                                         "of range", c->name);
            v.i64 += PG_EPOCH_USECS;
        }
        return put_fixed(&c->values, &v.i64, 8);
    case MOLT_DB__AK_INTERVAL:
        if ((rc = molt_db_decode_interval(p, len, &v.iv, err)) != MOLT_DB_OK)
            return rc;
        if (put_fixed(&c->values, &v.iv.months, 4) != MOLT_DB_OK ||
            put_fixed(&c->data, &v.iv.days, 4) != MOLT_DB_OK ||
            put_fixed(&c->extra, &v.iv.micros, 8) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
        return MOLT_DB_OK;
    case MOLT_DB__AK_BINARY:
        if (put_fixed(&c->data, p, len) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
        return var_close(c, err);
    case MOLT_DB__AK_UTF8:
    default:
        if (c->src == MOLT_DB__SRC_JSONB) {
            const uint8_t *t;
            size_t tl;
            if ((rc = molt_db_decode_jsonb(p, len, &t, &tl, err)) != MOLT_DB_OK)
                return rc;
            rc = put_fixed(&c->data, t, tl);
        } else if (c->src == MOLT_DB__SRC_TEXT) {
            rc = molt_db_value_to_text(c->oid, p, len, &c->data, err);
        } else {
            rc = put_fixed(&c->data, p, len);
        }
        if (rc != MOLT_DB_OK)
            return rc;
        return var_close(c, err);
    }
}

/* A NULL: zero bytes in the value buffers (offsets repeat). */
static int put_null(molt_db__arrow_col *c, molt_db_error *err)
{
    static const uint8_t zeros[16];
    c->null_count++;
    switch (c->kind) {
    case MOLT_DB__AK_BOOL:
        return MOLT_DB_OK;
    case MOLT_DB__AK_UTF8:
    case MOLT_DB__AK_BINARY:
        return var_close(c, err);
    case MOLT_DB__AK_INTERVAL:
        if (put_fixed(&c->values, zeros, 4) != MOLT_DB_OK ||
            put_fixed(&c->data, zeros, 4) != MOLT_DB_OK ||
            put_fixed(&c->extra, zeros, 8) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
        return MOLT_DB_OK;
    default:
        return put_fixed(&c->values, zeros, (size_t)c->width);
    }
}

/* Takes back a partly appended row `row` of column c (after an error in a
 * later column, or in c itself). */
static void col_undo(molt_db__arrow_col *c, int64_t row)
{
    size_t r = (size_t)row;
    if (c->validity.len > r / 8) {
        uint8_t mask = (uint8_t)(1u << (r & 7));
        if (!(c->validity.data[r / 8] & mask) && c->null_count > 0)
            c->null_count--;
        c->validity.data[r / 8] &= (uint8_t)~mask;
    }
    c->validity.len = (r + 7) / 8;
    switch (c->kind) {
    case MOLT_DB__AK_BOOL:
        if (c->values.len > r / 8)
            c->values.data[r / 8] &= (uint8_t) ~(1u << (r & 7));
        c->values.len = (r + 7) / 8;
        break;
    case MOLT_DB__AK_UTF8:
    case MOLT_DB__AK_BINARY: {
        int32_t end;
        memcpy(&end, c->values.data + r * 4, 4);
        c->values.len = (r + 1) * 4;
        c->data.len = (size_t)end;
        break;
    }
    case MOLT_DB__AK_INTERVAL:
        c->values.len = r * 4;
        c->data.len = r * 4;
        c->extra.len = r * 8;
        break;
    default:
        c->values.len = r * (size_t)c->width;
        break;
    }
}

int molt_db_arrow_builder_append(molt_db_arrow_builder *b,
                                 const molt_db_field *fields, size_t nfields,
                                 molt_db_error *err)
{
    if (nfields != b->ncols)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "arrow: row has %zu fields, result has %zu "
                                 "columns", nfields, b->ncols);
    if (b->full)
        return molt_db_error_set(err, MOLT_DB_ESTATE,
                                 "arrow: batch is full; finish it first");
    if (!b->ready && molt_db__arrow_builder_start(b) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    int64_t row = b->rows;
    int rc = MOLT_DB_OK;
    size_t i;
    for (i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        if ((row & 7) == 0) {
            /* a new byte for this row's validity (and bool) bit */
            uint8_t z = 0;
            if (put_fixed(&c->validity, &z, 1) != MOLT_DB_OK ||
                (c->kind == MOLT_DB__AK_BOOL &&
                 put_fixed(&c->values, &z, 1) != MOLT_DB_OK)) {
                rc = MOLT_DB_ENOMEM;
                break;
            }
        }
        if (fields[i].len < 0) {
            rc = put_null(c, err);
        } else {
            bit_set(&c->validity, row);
            if (c->kind == MOLT_DB__AK_BOOL) {
                int v;
                rc = molt_db_decode_bool(fields[i].data, (size_t)fields[i].len,
                                         &v, err);
                if (rc == MOLT_DB_OK && v)
                    bit_set(&c->values, row);
            } else {
                rc = put_value(c, fields[i].data, (size_t)fields[i].len, err);
            }
        }
        if (rc != MOLT_DB_OK)
            break;
    }
    if (rc != MOLT_DB_OK) {
        if (rc == MOLT_DB_ENOMEM)
            molt_db_error_set(err, rc, "arrow: out of memory");
        else if (i < b->ncols && err != NULL &&
                 strstr(err->message, "arrow:") != err->message) {
            /* a decoder's message: say which column */
            char m[MOLT_DB_ERROR_MESSAGE_SIZE];
            memcpy(m, err->message, sizeof m);
            molt_db_error_set(err, rc, "arrow: column \"%s\": %s",
                              b->cols[i].name, m);
        }
        for (size_t j = 0; j <= i && j < b->ncols; j++)
            col_undo(&b->cols[j], row);
        return rc;
    }
    b->rows++;
    if ((size_t)b->rows >= b->batch_rows)
        b->full = 1;
    for (i = 0; i < b->ncols && !b->full; i++)
        if (b->cols[i].data.len >= MOLT_DB_ARROW_MAX_BATCH_BYTES)
            b->full = 1;
    return MOLT_DB_OK;
}
