/* molt_db_value_to_text: the server's text output of a binary value, for
 * scalars and date/time types (DateStyle=ISO, IntervalStyle=postgres,
 * TimeZone=UTC, bytea_output=hex). Arrays, ranges and multiranges are in
 * types_text_container.c. */
#include "molt_db/types.h"
#include "molt_db/value.h"
#include "types_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define USECS_PER_SEC INT64_C(1000000)
#define USECS_PER_MINUTE INT64_C(60000000)
#define USECS_PER_HOUR INT64_C(3600000000)

static void put_str(molt_db_buf *out, const char *s)
{
    molt_db_buf_put(out, s, strlen(s));
}

static void put_fmt(molt_db_buf *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put_fmt(molt_db_buf *out, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        molt_db_buf_put(out, tmp, (size_t)n < sizeof tmp ? (size_t)n
                                                         : sizeof tmp - 1);
}

/* ".ffffff" without trailing zeros; nothing when us is 0 (AppendSeconds). */
static void put_fraction(molt_db_buf *out, int64_t us)
{
    if (us == 0)
        return;
    char f[8];
    snprintf(f, sizeof f, ".%06d", (int)us);
    size_t n = 7;
    while (f[n - 1] == '0')
        n--;
    molt_db_buf_put(out, f, n);
}

/* HH:MM:SS[.ffffff] of a time of day (24:00:00 allowed). */
static void put_time(molt_db_buf *out, int64_t us)
{
    int64_t h = us / USECS_PER_HOUR;
    us -= h * USECS_PER_HOUR;
    int64_t m = us / USECS_PER_MINUTE;
    us -= m * USECS_PER_MINUTE;
    int64_t s = us / USECS_PER_SEC;
    us -= s * USECS_PER_SEC;
    put_fmt(out, "%02d:%02d:%02d", (int)h, (int)m, (int)s);
    put_fraction(out, us);
}

/* +HH[:MM[:SS]] of a zone given in seconds west of UTC (EncodeTimezone). */
static void put_zone(molt_db_buf *out, int32_t west)
{
    int sec = west < 0 ? -west : west;
    int min = sec / 60;
    sec -= min * 60;
    int hour = min / 60;
    min -= hour * 60;
    char sign = west <= 0 ? '+' : '-';
    if (sec != 0)
        put_fmt(out, "%c%02d:%02d:%02d", sign, hour, min, sec);
    else if (min != 0)
        put_fmt(out, "%c%02d:%02d", sign, hour, min);
    else
        put_fmt(out, "%c%02d", sign, hour);
}

/* YYYY-MM-DD; *bc set for years <= 0 (shown as 1 BC, 2 BC, ...). */
static void put_date(molt_db_buf *out, int32_t days, int *bc)
{
    int y, m, d;
    molt_db_date_to_ymd(days, &y, &m, &d);
    *bc = y <= 0;
    if (*bc)
        y = 1 - y;
    put_fmt(out, "%04d-%02d-%02d", y, m, d);
}

static void date_text(molt_db_buf *out, int32_t days)
{
    if (days == MOLT_DB_DATE_INFINITY) {
        put_str(out, "infinity");
        return;
    }
    if (days == MOLT_DB_DATE_NEG_INFINITY) {
        put_str(out, "-infinity");
        return;
    }
    int bc;
    put_date(out, days, &bc);
    if (bc)
        put_str(out, " BC");
}

static void timestamp_text(molt_db_buf *out, int64_t us, int with_tz)
{
    if (us == MOLT_DB_TIMESTAMP_INFINITY) {
        put_str(out, "infinity");
        return;
    }
    if (us == MOLT_DB_TIMESTAMP_NEG_INFINITY) {
        put_str(out, "-infinity");
        return;
    }
    int64_t days = us / MOLT_DB_USECS_PER_DAY;
    int64_t tod = us % MOLT_DB_USECS_PER_DAY;
    if (tod < 0) {
        tod += MOLT_DB_USECS_PER_DAY;
        days--;
    }
    int bc;
    put_date(out, (int32_t)days, &bc);
    molt_db_buf_put_u8(out, ' ');
    put_time(out, tod);
    if (with_tz)
        put_zone(out, 0); /* TimeZone=UTC */
    if (bc)
        put_str(out, " BC");
}

/* One "N unit(s)" part of IntervalStyle=postgres (AddPostgresIntPart):
 * each nonzero part sets whether the next one needs a '+'. */
static void interval_part(molt_db_buf *out, int64_t v, const char *unit,
                          int *is_zero, int *is_before)
{
    if (v == 0)
        return;
    put_fmt(out, "%s%s%" PRId64 " %s%s", *is_zero ? "" : " ",
            (*is_before && v > 0) ? "+" : "", v, unit, v != 1 ? "s" : "");
    *is_before = v < 0;
    *is_zero = 0;
}

static void interval_text(molt_db_buf *out, const molt_db_interval *iv)
{
    int is_zero = 1, is_before = 0;
    interval_part(out, iv->months / 12, "year", &is_zero, &is_before);
    interval_part(out, iv->months % 12, "mon", &is_zero, &is_before);
    interval_part(out, iv->days, "day", &is_zero, &is_before);
    int64_t t = iv->micros;
    int64_t h = t / USECS_PER_HOUR;
    t -= h * USECS_PER_HOUR;
    int64_t m = t / USECS_PER_MINUTE;
    t -= m * USECS_PER_MINUTE;
    int64_t s = t / USECS_PER_SEC;
    int64_t f = t - s * USECS_PER_SEC;
    if (is_zero || iv->micros != 0) {
        int minus = h < 0 || m < 0 || s < 0 || f < 0;
        put_fmt(out, "%s%s%02" PRIu64 ":%02d:%02d", is_zero ? "" : " ",
                minus ? "-" : (is_before ? "+" : ""),
                h < 0 ? (uint64_t)0 - (uint64_t)h : (uint64_t)h,
                (int)(m < 0 ? -m : m), (int)(s < 0 ? -s : s));
        put_fraction(out, f < 0 ? -f : f);
    }
}

static void hex_text(molt_db_buf *out, const uint8_t *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (len > (SIZE_MAX - 2) / 2 || molt_db_buf_reserve(out, 2 + 2 * len) != MOLT_DB_OK) {
        out->failed = 1;
        return;
    }
    uint8_t *o = out->data + out->len;
    *o++ = '\\';
    *o++ = 'x';
    for (size_t i = 0; i < len; i++) {
        *o++ = (uint8_t)hex[p[i] >> 4];
        *o++ = (uint8_t)hex[p[i] & 15];
    }
    out->len += 2 + 2 * len;
}

static void uuid_text(molt_db_buf *out, const uint8_t *u)
{
    static const char hex[] = "0123456789abcdef";
    char s[36];
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s[k++] = '-';
        s[k++] = hex[u[i] >> 4];
        s[k++] = hex[u[i] & 15];
    }
    molt_db_buf_put(out, s, sizeof s);
}

/* "char": empty for byte 0, \ooo for bytes with the high bit (charout). */
static void char_text(molt_db_buf *out, uint8_t c)
{
    if (c == 0)
        return;
    if (c & 0x80)
        put_fmt(out, "\\%o%o%o", c >> 6, (c >> 3) & 7, c & 7);
    else
        molt_db_buf_put_u8(out, c);
}

static void float_text(molt_db_buf *out, const molt_db_value *v)
{
    char tmp[MOLT_DB_FLOAT_TEXT_SIZE];
    size_t n = v->cls == MOLT_DB_VALUE_FLOAT4 ? molt_db_format_float4(v->u.f4, tmp)
                                              : molt_db_format_float8(v->u.f8, tmp);
    molt_db_buf_put(out, tmp, n);
}

static void timetz_text(molt_db_buf *out, const molt_db_timetz *t)
{
    put_time(out, t->time_us);
    put_zone(out, t->zone);
}

int molt_db_value_text(const molt_db_value *v, molt_db_buf *out)
{
    switch (v->cls) {
    case MOLT_DB_VALUE_BOOL: molt_db_buf_put_u8(out, v->u.i ? 't' : 'f'); break;
    case MOLT_DB_VALUE_INT: put_fmt(out, "%" PRId64, v->u.i); break;
    case MOLT_DB_VALUE_FLOAT4:
    case MOLT_DB_VALUE_FLOAT8: float_text(out, v); break;
    case MOLT_DB_VALUE_NUMERIC: return molt_db_numeric_to_text(&v->u.numeric, out);
    case MOLT_DB_VALUE_CHAR: char_text(out, v->u.ch); break;
    case MOLT_DB_VALUE_BYTES: hex_text(out, v->u.bytes.p, v->u.bytes.len); break;
    case MOLT_DB_VALUE_UUID: uuid_text(out, v->u.uuid); break;
    case MOLT_DB_VALUE_DATE: date_text(out, (int32_t)v->u.i); break;
    case MOLT_DB_VALUE_TIME: put_time(out, v->u.i); break;
    case MOLT_DB_VALUE_TIMETZ: timetz_text(out, &v->u.timetz); break;
    case MOLT_DB_VALUE_TIMESTAMP:
    case MOLT_DB_VALUE_TIMESTAMPTZ:
        timestamp_text(out, v->u.i, v->cls == MOLT_DB_VALUE_TIMESTAMPTZ);
        break;
    case MOLT_DB_VALUE_INTERVAL: interval_text(out, &v->u.interval); break;
    case MOLT_DB_VALUE_TEXT:
    case MOLT_DB_VALUE_JSON:
    default: molt_db_buf_put(out, v->u.bytes.p, v->u.bytes.len); break;
    }
    return molt_db_buf_ok(out);
}

static int scalar_text(uint32_t oid, const uint8_t *p, size_t len,
                       molt_db_buf *out, molt_db_error *err)
{
    molt_db_value v;
    int rc = molt_db_value_decode(oid, p, len, &v, err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_value_text(&v, out);
    return rc;
}

int molt_db_value_to_text(uint32_t oid, const uint8_t *data, size_t len,
                          molt_db_buf *out, molt_db_error *err)
{
    if (data == NULL && len != 0)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "value bytes are NULL");
    size_t start = out->len;
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    int rc;
    if (t == NULL || !molt_db_type_binary_supported(oid))
        rc = molt_db_error_set(err, MOLT_DB_ETYPE,
                               "no text output for binary values of type %s",
                               t ? t->name : "(unknown)");
    else if (t->kind == MOLT_DB_KIND_ARRAY)
        rc = molt_db__array_text(t, data, len, out, err);
    else if (t->kind == MOLT_DB_KIND_RANGE)
        rc = molt_db__range_text(t, data, len, out, err);
    else if (t->kind == MOLT_DB_KIND_MULTIRANGE)
        rc = molt_db__multirange_text(t, data, len, out, err);
    else
        rc = scalar_text(oid, data, len, out, err);
    if (rc == MOLT_DB_OK && out->failed)
        rc = molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    return molt_db__buf_finish(out, start, rc);
}
