/* PostgreSQL values (binary or text DataRow fields) to the value writer,
 * with the contract's encodings (section 7). */
#include "encode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/types.h"
#include "pg_text.h"

#define UNIX_EPOCH_US INT64_C(946684800000000) /* 2000-01-01 - 1970-01-01 */

const char *mw_pg_type_name(uint32_t oid, char buf[16])
{
    const char *n = molt_db_type_name(oid);
    if (n)
        return n;
    snprintf(buf, 16, "%u", (unsigned)oid);
    return buf;
}

static int server_text(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n,
                       molt_db_error *err)
{
    molt_db_buf t;
    molt_db_buf_init(&t);
    int rc = molt_db_value_to_text(oid, p, n, &t, err);
    if (rc == MOLT_DB_OK)
        e->ops->str(e, (const char *)t.data, t.len);
    molt_db_buf_free(&t);
    return rc;
}

static void put_time(char *b, size_t cap, int *n, int64_t us)
{
    int64_t s = us / 1000000, frac = us % 1000000;
    *n += snprintf(b + *n, cap - (size_t)*n, "%02d:%02d:%02d", (int)(s / 3600),
                   (int)(s / 60 % 60), (int)(s % 60));
    if (frac) {
        *n += snprintf(b + *n, cap - (size_t)*n, ".%06d", (int)frac);
        while (b[*n - 1] == '0')
            (*n)--;
    }
}

/* YYYY-MM-DD for years 1..9999; 0 when the server's text is needed. */
static int put_date(char *b, size_t cap, int *n, int32_t days)
{
    int y, m, d;
    molt_db_date_to_ymd(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return 0;
    *n += snprintf(b + *n, cap - (size_t)*n, "%04d-%02d-%02d", y, m, d);
    return 1;
}

static int value(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n,
                 molt_db_error *err);

static int array_dim(mw_enc *e, const molt_db_array *a, int dim,
                     molt_db_array_iter *it, uint32_t elem, molt_db_error *err)
{
    e->ops->array_begin(e, (size_t)a->dims[dim]);
    for (int32_t i = 0; i < a->dims[dim]; i++) {
        int rc;
        if (dim + 1 < a->ndim) {
            rc = array_dim(e, a, dim + 1, it, elem, err);
        } else {
            const uint8_t *d;
            int32_t l;
            rc = molt_db_array_next(it, &d, &l, err);
            if (rc == 1)
                rc = l < 0 ? (e->ops->nil(e), MOLT_DB_OK)
                           : value(e, elem, d, (size_t)l, err);
            else if (rc == 0)
                rc = molt_db_error_set(err, MOLT_DB_EPROTO, "array: too few elements");
        }
        if (rc != MOLT_DB_OK)
            return rc;
    }
    e->ops->array_end(e);
    return MOLT_DB_OK;
}

static int array(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n,
                 molt_db_error *err)
{
    molt_db_array a;
    int rc = molt_db_array_decode(p, n, &a, err);
    if (rc != MOLT_DB_OK)
        return rc;
    const molt_db_type_info *ti = molt_db_type_lookup(oid);
    uint32_t elem = ti && ti->element ? ti->element : a.elem_oid;
    int lb1 = 1;
    for (int i = 0; i < a.ndim; i++)
        lb1 &= a.lbounds[i] == 1;
    if (!lb1) {
        e->ops->map_begin(e, 2);
        mw_enc_cstr(e, "lower_bounds");
        e->ops->array_begin(e, (size_t)a.ndim);
        for (int i = 0; i < a.ndim; i++)
            e->ops->i64(e, a.lbounds[i]);
        e->ops->array_end(e);
        mw_enc_cstr(e, "values");
    }
    if (a.ndim == 0) {
        e->ops->array_begin(e, 0);
        e->ops->array_end(e);
    } else {
        molt_db_array_iter it;
        molt_db_array_iter_init(&it, &a);
        rc = array_dim(e, &a, 0, &it, elem, err);
        if (rc != MOLT_DB_OK)
            return rc;
        const uint8_t *d;
        int32_t l;
        rc = molt_db_array_next(&it, &d, &l, err);
        if (rc != 0)
            return rc < 0 ? rc
                          : molt_db_error_set(err, MOLT_DB_EPROTO, "array: extra elements");
    }
    if (!lb1)
        e->ops->map_end(e);
    return MOLT_DB_OK;
}

static int bound(mw_enc *e, uint32_t sub, const uint8_t *p, int32_t len,
                 int inclusive, int present, molt_db_error *err)
{
    if (!present) {
        e->ops->nil(e);
        return MOLT_DB_OK;
    }
    e->ops->map_begin(e, 2);
    mw_enc_cstr(e, "value");
    int rc = value(e, sub, p, (size_t)len, err);
    if (rc != MOLT_DB_OK)
        return rc;
    mw_enc_cstr(e, "inclusive");
    e->ops->boolean(e, inclusive);
    e->ops->map_end(e);
    return MOLT_DB_OK;
}

static int range_value(mw_enc *e, uint32_t sub, const molt_db_range *r,
                       molt_db_error *err)
{
    int empty = (r->flags & MOLT_DB_RANGE_EMPTY) != 0;
    e->ops->map_begin(e, 3);
    mw_enc_cstr(e, "empty");
    e->ops->boolean(e, empty);
    mw_enc_cstr(e, "lower");
    int rc = bound(e, sub, r->lower, r->lower_len, (r->flags & MOLT_DB_RANGE_LB_INC) != 0,
                   !empty && r->lower_len >= 0, err);
    if (rc != MOLT_DB_OK)
        return rc;
    mw_enc_cstr(e, "upper");
    rc = bound(e, sub, r->upper, r->upper_len, (r->flags & MOLT_DB_RANGE_UB_INC) != 0,
               !empty && r->upper_len >= 0, err);
    if (rc != MOLT_DB_OK)
        return rc;
    e->ops->map_end(e);
    return MOLT_DB_OK;
}

/* timestamp/timestamptz us (bin: its 8-byte wire form): an ISO string,
 * the writer's timestamptz, infinity, or the server's text outside years
 * 1 to 9999. */
static int timestamp(mw_enc *e, uint32_t oid, int64_t us, const uint8_t bin[8],
                     molt_db_error *err)
{
    if (us == MOLT_DB_TIMESTAMP_INFINITY || us == MOLT_DB_TIMESTAMP_NEG_INFINITY) {
        mw_enc_cstr(e, us > 0 ? "infinity" : "-infinity");
        return MOLT_DB_OK;
    }
    int64_t days = us / MOLT_DB_USECS_PER_DAY, tod = us % MOLT_DB_USECS_PER_DAY;
    if (tod < 0) {
        tod += MOLT_DB_USECS_PER_DAY;
        days--;
    }
    int y, m, d;
    molt_db_date_to_ymd((int32_t)days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return server_text(e, oid, bin, 8, err);
    if (oid == MOLT_DB_OID_TIMESTAMPTZ) {
        e->ops->timestamptz(e, us + UNIX_EPOCH_US);
        return MOLT_DB_OK;
    }
    char b[64];
    int bn = 0;
    put_date(b, sizeof b, &bn, (int32_t)days);
    b[bn++] = 'T';
    put_time(b, sizeof b, &bn, tod);
    e->ops->str(e, b, (size_t)bn);
    return MOLT_DB_OK;
}

static void interval(mw_enc *e, molt_db_interval iv)
{
    e->ops->map_begin(e, 3);
    mw_enc_cstr(e, "months");
    e->ops->i64(e, iv.months);
    mw_enc_cstr(e, "days");
    e->ops->i64(e, iv.days);
    mw_enc_cstr(e, "micros");
    e->ops->i64(e, iv.micros);
    e->ops->map_end(e);
}

static int value(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n,
                 molt_db_error *err)
{
    char b[96];
    int bn = 0, rc;
    switch (oid) {
    case MOLT_DB_OID_BOOL: {
        int v;
        if ((rc = molt_db_decode_bool(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        e->ops->boolean(e, v);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_INT2: {
        int16_t v;
        if ((rc = molt_db_decode_int2(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        e->ops->i64(e, v);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_INT4: {
        int32_t v;
        if ((rc = molt_db_decode_int4(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        e->ops->i64(e, v);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_INT8: {
        int64_t v;
        if ((rc = molt_db_decode_int8(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        e->ops->i64(e, v);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_OID: {
        uint32_t v;
        if ((rc = molt_db_decode_oid(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        e->ops->i64(e, v);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_FLOAT4: {
        float v;
        char t[MOLT_DB_FLOAT_TEXT_SIZE];
        if ((rc = molt_db_decode_float4(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        /* widen as the shortest decimal text reads: 1.1 stays 1.1 */
        molt_db_format_float4(v, t);
        e->ops->f64(e, strtod(t, NULL), t);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_FLOAT8: {
        double v;
        if ((rc = molt_db_decode_float8(p, n, &v, err)) != MOLT_DB_OK)
            return rc;
        e->ops->f64(e, v, NULL);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_NUMERIC: {
        molt_db_numeric num;
        if ((rc = molt_db_numeric_decode(p, n, &num, err)) != MOLT_DB_OK)
            return rc;
        molt_db_buf t;
        molt_db_buf_init(&t);
        rc = molt_db_numeric_to_text(&num, &t);
        if (rc == MOLT_DB_OK)
            e->ops->str(e, (const char *)t.data, t.len);
        molt_db_buf_free(&t);
        return rc;
    }
    case MOLT_DB_OID_TEXT:
    case MOLT_DB_OID_VARCHAR:
    case MOLT_DB_OID_BPCHAR:
    case MOLT_DB_OID_NAME:
    case MOLT_DB_OID_CHAR:
    case MOLT_DB_OID_XML:
        e->ops->str(e, (const char *)p, n);
        return MOLT_DB_OK;
    case MOLT_DB_OID_BYTEA:
        e->ops->bin(e, p, n);
        return MOLT_DB_OK;
    case MOLT_DB_OID_UUID: {
        uint8_t u[16];
        if ((rc = molt_db_decode_uuid(p, n, u, err)) != MOLT_DB_OK)
            return rc;
        static const char hx[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                b[bn++] = '-';
            b[bn++] = hx[u[i] >> 4];
            b[bn++] = hx[u[i] & 15];
        }
        e->ops->str(e, b, (size_t)bn);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_DATE: {
        int32_t d;
        if ((rc = molt_db_decode_date(p, n, &d, err)) != MOLT_DB_OK)
            return rc;
        if (d == MOLT_DB_DATE_INFINITY || d == MOLT_DB_DATE_NEG_INFINITY) {
            mw_enc_cstr(e, d > 0 ? "infinity" : "-infinity");
            return MOLT_DB_OK;
        }
        if (!put_date(b, sizeof b, &bn, d))
            return server_text(e, oid, p, n, err);
        e->ops->str(e, b, (size_t)bn);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_TIME: {
        int64_t us;
        if ((rc = molt_db_decode_time(p, n, &us, err)) != MOLT_DB_OK)
            return rc;
        put_time(b, sizeof b, &bn, us);
        e->ops->str(e, b, (size_t)bn);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_TIMETZ: {
        molt_db_timetz t;
        if ((rc = molt_db_decode_timetz(p, n, &t, err)) != MOLT_DB_OK)
            return rc;
        put_time(b, sizeof b, &bn, t.time_us);
        int32_t off = -t.zone;
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        bn += snprintf(b + bn, sizeof b - (size_t)bn, "%c%02d:%02d", sign,
                       (int)(off / 3600), (int)(off / 60 % 60));
        if (off % 60)
            bn += snprintf(b + bn, sizeof b - (size_t)bn, ":%02d", (int)(off % 60));
        e->ops->str(e, b, (size_t)bn);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_TIMESTAMP:
    case MOLT_DB_OID_TIMESTAMPTZ: {
        int64_t us;
        if ((rc = molt_db_decode_timestamp(p, n, &us, err)) != MOLT_DB_OK)
            return rc;
        return timestamp(e, oid, us, p, err);
    }
    case MOLT_DB_OID_INTERVAL: {
        molt_db_interval iv;
        if ((rc = molt_db_decode_interval(p, n, &iv, err)) != MOLT_DB_OK)
            return rc;
        interval(e, iv);
        return MOLT_DB_OK;
    }
    case MOLT_DB_OID_JSON:
        e->ops->json_text(e, (const char *)p, n);
        return MOLT_DB_OK;
    case MOLT_DB_OID_JSONB: {
        const uint8_t *t;
        size_t tl;
        if ((rc = molt_db_decode_jsonb(p, n, &t, &tl, err)) != MOLT_DB_OK)
            return rc;
        e->ops->json_text(e, (const char *)t, tl);
        return MOLT_DB_OK;
    }
    default:
        break;
    }
    const molt_db_type_info *ti = molt_db_type_lookup(oid);
    if (ti && ti->kind == MOLT_DB_KIND_ARRAY)
        return array(e, oid, p, n, err);
    if (ti && ti->kind == MOLT_DB_KIND_RANGE) {
        molt_db_range r;
        if ((rc = molt_db_range_decode(p, n, &r, err)) != MOLT_DB_OK)
            return rc;
        return range_value(e, ti->element, &r, err);
    }
    if (ti && ti->kind == MOLT_DB_KIND_MULTIRANGE) {
        molt_db_multirange mr;
        if ((rc = molt_db_multirange_decode(p, n, &mr, err)) != MOLT_DB_OK)
            return rc;
        const molt_db_type_info *rt = molt_db_type_lookup(ti->element);
        uint32_t sub = rt ? rt->element : 0;
        molt_db_multirange_iter it;
        molt_db_multirange_iter_init(&it, &mr);
        e->ops->array_begin(e, mr.count);
        molt_db_range r;
        while ((rc = molt_db_multirange_next(&it, &r, err)) == 1)
            if ((rc = range_value(e, sub, &r, err)) != MOLT_DB_OK)
                return rc;
        if (rc < 0)
            return rc;
        e->ops->array_end(e);
        return MOLT_DB_OK;
    }
    return server_text(e, oid, p, n, err);
}

/* Text-format fields: the server's text form, typed where the contract
 * wants a non-string (simple statement mode sends everything as text). */
static int text_value(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n)
{
    char b[64];
    switch (oid) {
    case MOLT_DB_OID_BOOL:
        e->ops->boolean(e, n > 0 && p[0] == 't');
        return MOLT_DB_OK;
    case MOLT_DB_OID_INT2:
    case MOLT_DB_OID_INT4:
    case MOLT_DB_OID_INT8:
    case MOLT_DB_OID_OID:
        if (n < sizeof b) {
            memcpy(b, p, n);
            b[n] = 0;
            errno = 0;
            char *end;
            long long v = strtoll(b, &end, 10);
            if (!errno && end != b && !*end) {
                e->ops->i64(e, v);
                return MOLT_DB_OK;
            }
        }
        break;
    case MOLT_DB_OID_FLOAT4:
    case MOLT_DB_OID_FLOAT8:
        if (n < sizeof b) {
            memcpy(b, p, n);
            b[n] = 0;
            char *end;
            double v = strtod(b, &end);
            if (end != b && !*end) {
                e->ops->f64(e, v, NULL);
                return MOLT_DB_OK;
            }
        }
        break;
    case MOLT_DB_OID_JSON:
    case MOLT_DB_OID_JSONB:
        e->ops->json_text(e, (const char *)p, n);
        return MOLT_DB_OK;
    case MOLT_DB_OID_BYTEA: {
        uint8_t stack[256];
        uint8_t *bytes = n <= sizeof stack ? stack : malloc(n);
        size_t bn;
        int ok = bytes != NULL && mw_pg_text_bytea(p, n, bytes, &bn) == 0;
        if (ok)
            e->ops->bin(e, bytes, bn);
        if (bytes != stack)
            free(bytes);
        if (ok)
            return MOLT_DB_OK;
        break; /* (out of memory: the text, as for a form it cannot read) */
    }
    case MOLT_DB_OID_TIMESTAMP:
    case MOLT_DB_OID_TIMESTAMPTZ: {
        int64_t us;
        if (mw_pg_text_timestamp(p, n, oid == MOLT_DB_OID_TIMESTAMPTZ, &us) != 0)
            break;
        uint8_t bin[8]; /* the wire form, for the server's text past 9999 */
        for (int i = 0; i < 8; i++)
            bin[i] = (uint8_t)((uint64_t)us >> (56 - 8 * i));
        molt_db_error err;
        molt_db_error_init(&err);
        int rc = timestamp(e, oid, us, bin, &err);
        molt_db_error_clear(&err);
        if (rc == MOLT_DB_OK)
            return MOLT_DB_OK;
        break;
    }
    case MOLT_DB_OID_INTERVAL: {
        molt_db_interval iv;
        if (mw_pg_text_interval(p, n, &iv) != 0)
            break;
        interval(e, iv);
        return MOLT_DB_OK;
    }
    default:
        break;
    }
    e->ops->str(e, (const char *)p, n);
    return MOLT_DB_OK;
}

int mw_enc_pg_value(mw_enc *e, uint32_t oid, int16_t format,
                    const uint8_t *data, int32_t len, molt_db_error *err)
{
    if (len < 0 || !data) {
        e->ops->nil(e);
        return MOLT_DB_OK;
    }
    if (format == 0)
        return text_value(e, oid, data, (size_t)len);
    return value(e, oid, data, (size_t)len, err);
}
