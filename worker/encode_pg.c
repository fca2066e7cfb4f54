/* PostgreSQL values (binary or text DataRow fields) to the value writer,
 * with the contract's encodings (section 7). */
#include "encode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/types.h"
#include "molt_db/value.h"

#define UNIX_EPOCH_US INT64_C(946684800000000) /* 2000-01-01 - 1970-01-01 */
/* days from 2000-01-01 (PostgreSQL's day 0) to 0001-01-01 and to 10000-01-01 */
#define DAYS_TO_YEAR_1 (-730119)
#define DAYS_TO_YEAR_10000 2921940

const char *mw_pg_type_name(uint32_t oid, char buf[16])
{
    const char *n = molt_db_type_name(oid);
    if (n)
        return n;
    snprintf(buf, 16, "%u", (unsigned)oid);
    return buf;
}

/* Writes the text built in t (when rc is OK) as a string; frees t. */
static int put_built_text(mw_enc *e, molt_db_buf *t, int rc)
{
    if (rc == MOLT_DB_OK)
        e->ops->str(e, (const char *)t->data, t->len);
    molt_db_buf_free(t);
    return rc;
}

/* The server's text of a value (numeric, uuid, "char"), as a string:
 * built in the encoder's scratch buffer when it has one, so a result's
 * rows need no allocation a value. */
static int server_text(mw_enc *e, const molt_db_value *v)
{
    if (!e->scratch) {
        molt_db_buf t;
        molt_db_buf_init(&t);
        return put_built_text(e, &t, molt_db_value_text(v, &t));
    }
    molt_db_buf_reset(e->scratch);
    int rc = molt_db_value_text(v, e->scratch);
    if (rc == MOLT_DB_OK)
        e->ops->str(e, (const char *)e->scratch->data, e->scratch->len);
    return rc;
}

/* v (0 <= v < 10^width) as exactly width digits: the per-value formatting
 * runs for every date/time of a result, so no snprintf */
static void put_digits(char *b, int *n, int v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        b[*n + i] = (char)('0' + v % 10);
    *n += width;
}

/* HH:MM:SS[.f{1,6}] (trailing zeros of the fraction dropped) at b + *n,
 * which has room for 15 more bytes */
static void put_time(char *b, int *n, int64_t us)
{
    int64_t s = us / 1000000, frac = us % 1000000;
    put_digits(b, n, (int)(s / 3600), 2);
    b[(*n)++] = ':';
    put_digits(b, n, (int)(s / 60 % 60), 2);
    b[(*n)++] = ':';
    put_digits(b, n, (int)(s % 60), 2);
    if (frac) {
        b[(*n)++] = '.';
        put_digits(b, n, (int)frac, 6);
        while (b[*n - 1] == '0')
            (*n)--;
    }
}

/* YYYY-MM-DD for years 1..9999 at b + *n (room for 10 more bytes); 0 when
 * the server's text is needed. */
static int put_date(char *b, int *n, int32_t days)
{
    int y, m, d;
    molt_db_date_to_ymd(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return 0;
    put_digits(b, n, y, 4);
    b[(*n)++] = '-';
    put_digits(b, n, m, 2);
    b[(*n)++] = '-';
    put_digits(b, n, d, 2);
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

/* timestamp/timestamptz: an ISO string, the writer's timestamptz,
 * infinity, or the server's text outside years 1 to 9999. */
static int timestamp(mw_enc *e, const molt_db_value *v)
{
    int64_t us = v->u.i;
    if (us == MOLT_DB_TIMESTAMP_INFINITY || us == MOLT_DB_TIMESTAMP_NEG_INFINITY) {
        mw_enc_cstr(e, us > 0 ? "infinity" : "-infinity");
        return MOLT_DB_OK;
    }
    int64_t days = us / MOLT_DB_USECS_PER_DAY, tod = us % MOLT_DB_USECS_PER_DAY;
    if (tod < 0) {
        tod += MOLT_DB_USECS_PER_DAY;
        days--;
    }
    if (v->cls == MOLT_DB_VALUE_TIMESTAMPTZ) {
        /* years 1 to 9999 as a day range, without the calendar */
        if (days < DAYS_TO_YEAR_1 || days >= DAYS_TO_YEAR_10000)
            return server_text(e, v);
        e->ops->timestamptz(e, us + UNIX_EPOCH_US);
        return MOLT_DB_OK;
    }
    char b[64];
    int bn = 0;
    if (!put_date(b, &bn, (int32_t)days))
        return server_text(e, v);
    b[bn++] = 'T';
    put_time(b, &bn, tod);
    e->ops->str(e, b, (size_t)bn);
    return MOLT_DB_OK;
}

static int date(mw_enc *e, const molt_db_value *v)
{
    char b[32];
    int bn = 0;
    int32_t days = (int32_t)v->u.i;
    if (days == MOLT_DB_DATE_INFINITY || days == MOLT_DB_DATE_NEG_INFINITY) {
        mw_enc_cstr(e, days > 0 ? "infinity" : "-infinity");
        return MOLT_DB_OK;
    }
    if (!put_date(b, &bn, days))
        return server_text(e, v);
    e->ops->str(e, b, (size_t)bn);
    return MOLT_DB_OK;
}

/* HH:MM:SS[.ffffff], and for timetz +HH:MM[:SS] */
static void time_of_day(mw_enc *e, const molt_db_value *v)
{
    char b[64];
    int bn = 0;
    if (v->cls == MOLT_DB_VALUE_TIME) {
        put_time(b, &bn, v->u.i);
    } else {
        put_time(b, &bn, v->u.timetz.time_us);
        int32_t off = -v->u.timetz.zone;
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        bn += snprintf(b + bn, sizeof b - (size_t)bn, "%c%02d:%02d", sign,
                       (int)(off / 3600), (int)(off / 60 % 60));
        if (off % 60)
            bn += snprintf(b + bn, sizeof b - (size_t)bn, ":%02d", (int)(off % 60));
    }
    e->ops->str(e, b, (size_t)bn);
}

static void interval(mw_enc *e, const molt_db_interval *iv)
{
    e->ops->map_begin(e, 3);
    mw_enc_cstr(e, "months");
    e->ops->i64(e, iv->months);
    mw_enc_cstr(e, "days");
    e->ops->i64(e, iv->days);
    mw_enc_cstr(e, "micros");
    e->ops->i64(e, iv->micros);
    e->ops->map_end(e);
}

static void float4(mw_enc *e, float v)
{
    char t[MOLT_DB_FLOAT_TEXT_SIZE];
    /* widen as the shortest decimal text reads: 1.1 stays 1.1 */
    molt_db_format_float4(v, t);
    e->ops->f64(e, strtod(t, NULL), t);
}

/* One scalar by its class (section 7), whichever format it came in. */
static int scalar(mw_enc *e, const molt_db_value *v)
{
    switch (v->cls) {
    case MOLT_DB_VALUE_BOOL: e->ops->boolean(e, (int)v->u.i); break;
    case MOLT_DB_VALUE_INT: e->ops->i64(e, v->u.i); break;
    case MOLT_DB_VALUE_FLOAT4: float4(e, v->u.f4); break;
    case MOLT_DB_VALUE_FLOAT8: e->ops->f64(e, v->u.f8, NULL); break;
    case MOLT_DB_VALUE_NUMERIC:
    case MOLT_DB_VALUE_UUID:
    case MOLT_DB_VALUE_CHAR: return server_text(e, v); /* "char": \ooo past 127 */
    case MOLT_DB_VALUE_BYTES: e->ops->bin(e, v->u.bytes.p, v->u.bytes.len); break;
    case MOLT_DB_VALUE_JSON:
        e->ops->json_text(e, (const char *)v->u.bytes.p, v->u.bytes.len);
        break;
    case MOLT_DB_VALUE_DATE: return date(e, v);
    case MOLT_DB_VALUE_TIME:
    case MOLT_DB_VALUE_TIMETZ: time_of_day(e, v); break;
    case MOLT_DB_VALUE_TIMESTAMP:
    case MOLT_DB_VALUE_TIMESTAMPTZ: return timestamp(e, v);
    case MOLT_DB_VALUE_INTERVAL: interval(e, &v->u.interval); break;
    case MOLT_DB_VALUE_TEXT:
    default:
        e->ops->str(e, (const char *)v->u.bytes.p, v->u.bytes.len);
        break;
    }
    return MOLT_DB_OK;
}

static int multirange(mw_enc *e, const molt_db_type_info *ti, const uint8_t *p,
                      size_t n, molt_db_error *err)
{
    molt_db_multirange mr;
    int rc = molt_db_multirange_decode(p, n, &mr, err);
    if (rc != MOLT_DB_OK)
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

/* The server's text of a binary value the table has no scalar for. */
static int other_text(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n,
                      molt_db_error *err)
{
    molt_db_buf t;
    molt_db_buf_init(&t);
    return put_built_text(e, &t, molt_db_value_to_text(oid, p, n, &t, err));
}

/* A binary field: a scalar through the type table, or a container. */
static int value(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n,
                 molt_db_error *err)
{
    if (molt_db_value_class_of(oid) != 0) {
        molt_db_value v;
        int rc = molt_db_value_decode(oid, p, n, &v, err);
        return rc == MOLT_DB_OK ? scalar(e, &v) : rc;
    }
    const molt_db_type_info *ti = molt_db_type_lookup(oid);
    int kind = ti ? ti->kind : MOLT_DB_KIND_BASE;
    if (kind == MOLT_DB_KIND_ARRAY)
        return array(e, oid, p, n, err);
    if (kind == MOLT_DB_KIND_RANGE) {
        molt_db_range r;
        int rc = molt_db_range_decode(p, n, &r, err);
        return rc == MOLT_DB_OK ? range_value(e, ti->element, &r, err) : rc;
    }
    if (kind == MOLT_DB_KIND_MULTIRANGE)
        return multirange(e, ti, p, n, err);
    return other_text(e, oid, p, n, err);
}

/* A text field (simple statement mode gets every value as text): a scalar
 * the table parses goes out as its binary form would; anything else (a
 * container, a user type, text the parser does not know) as the text. */
static int text_value(mw_enc *e, uint32_t oid, const uint8_t *p, size_t n)
{
    molt_db_buf scratch;
    molt_db_buf_init(&scratch);
    molt_db_value v;
    int rc = molt_db_value_parse(oid, p, n, &scratch, &v);
    if (rc == MOLT_DB_OK)
        rc = scalar(e, &v);
    else
        e->ops->str(e, (const char *)p, n);
    molt_db_buf_free(&scratch);
    return rc == MOLT_DB_ENOMEM ? rc : MOLT_DB_OK;
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
