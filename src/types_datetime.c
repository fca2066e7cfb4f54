/* date, time, timetz, timestamp(tz), interval: binary codecs and the
 * proleptic Gregorian calendar over PostgreSQL's day numbers (day 0 is
 * 2000-01-01). */
#include "molt_db/types.h"
#include "types_internal.h"

/* Days from 1970-01-01 to 2000-01-01. */
#define UNIX_TO_PG_DAYS 10957
/* +-15:59:59, the server's TZDISP_LIMIT */
#define MAX_ZONE_SECONDS (16 * 3600 - 1)

int molt_db_decode_date(const uint8_t *p, size_t len, int32_t *days,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("date", len, 4, err);
    if (rc == MOLT_DB_OK)
        *days = (int32_t)molt_db__rd32(p);
    return rc;
}

int molt_db_decode_time(const uint8_t *p, size_t len, int64_t *us,
                        molt_db_error *err)
{
    int rc = molt_db__want_len("time", len, 8, err);
    if (rc != MOLT_DB_OK)
        return rc;
    int64_t v = (int64_t)molt_db__rd64(p);
    if (v < 0 || v > MOLT_DB_USECS_PER_DAY)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "time value %lld out of range", (long long)v);
    *us = v;
    return MOLT_DB_OK;
}

int molt_db_decode_timetz(const uint8_t *p, size_t len, molt_db_timetz *out,
                          molt_db_error *err)
{
    int rc = molt_db__want_len("timetz", len, 12, err);
    if (rc != MOLT_DB_OK)
        return rc;
    int64_t t = (int64_t)molt_db__rd64(p);
    int32_t z = (int32_t)molt_db__rd32(p + 8);
    if (t < 0 || t > MOLT_DB_USECS_PER_DAY)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "timetz time %lld out of range", (long long)t);
    if (z < -MAX_ZONE_SECONDS || z > MAX_ZONE_SECONDS)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "timetz zone %ld out of range", (long)z);
    out->time_us = t;
    out->zone = z;
    return MOLT_DB_OK;
}

int molt_db_decode_timestamp(const uint8_t *p, size_t len, int64_t *us,
                             molt_db_error *err)
{
    int rc = molt_db__want_len("timestamp", len, 8, err);
    if (rc == MOLT_DB_OK)
        *us = (int64_t)molt_db__rd64(p);
    return rc;
}

int molt_db_decode_interval(const uint8_t *p, size_t len,
                            molt_db_interval *out, molt_db_error *err)
{
    int rc = molt_db__want_len("interval", len, 16, err);
    if (rc != MOLT_DB_OK)
        return rc;
    out->micros = (int64_t)molt_db__rd64(p);
    out->days = (int32_t)molt_db__rd32(p + 8);
    out->months = (int32_t)molt_db__rd32(p + 12);
    return MOLT_DB_OK;
}

int molt_db_encode_date(molt_db_buf *out, int32_t days)
{
    molt_db_buf_put_u32(out, (uint32_t)days);
    return molt_db_buf_ok(out);
}

int molt_db_encode_time(molt_db_buf *out, int64_t us)
{
    if (us < 0 || us > MOLT_DB_USECS_PER_DAY)
        return MOLT_DB_EINVAL;
    molt_db_buf_put_u64(out, (uint64_t)us);
    return molt_db_buf_ok(out);
}

int molt_db_encode_timetz(molt_db_buf *out, molt_db_timetz v)
{
    if (v.time_us < 0 || v.time_us > MOLT_DB_USECS_PER_DAY ||
        v.zone < -MAX_ZONE_SECONDS || v.zone > MAX_ZONE_SECONDS)
        return MOLT_DB_EINVAL;
    size_t start = out->len;
    molt_db_buf_put_u64(out, (uint64_t)v.time_us);
    molt_db_buf_put_u32(out, (uint32_t)v.zone);
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}

int molt_db_encode_timestamp(molt_db_buf *out, int64_t us)
{
    molt_db_buf_put_u64(out, (uint64_t)us);
    return molt_db_buf_ok(out);
}

int molt_db_encode_interval(molt_db_buf *out, molt_db_interval v)
{
    size_t start = out->len;
    molt_db_buf_put_u64(out, (uint64_t)v.micros);
    molt_db_buf_put_u32(out, (uint32_t)v.days);
    molt_db_buf_put_u32(out, (uint32_t)v.months);
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}

/* Calendar arithmetic in 400-year eras (146097 days each), with March as
 * the first month so the leap day falls at the end of the year. */

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void molt_db_date_to_ymd(int32_t days, int *year, int *month, int *day)
{
    int64_t z = (int64_t)days + UNIX_TO_PG_DAYS + 719468; /* from 0000-03-01 */
    int64_t era = floordiv(z, 146097);
    int64_t doe = z - era * 146097;                                /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);         /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                              /* 0..11 */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(y + (*month <= 2));
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dim[m - 1];
}

int molt_db_date_from_ymd(int year, int month, int day, int32_t *days)
{
    if (month < 1 || month > 12 || day < 1 ||
        day > days_in_month(year, month))
        return MOLT_DB_EINVAL;
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = month > 2 ? month - 3 : month + 9;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t z = era * 146097 + doe - 719468 - UNIX_TO_PG_DAYS;
    if (z < INT32_MIN || z > INT32_MAX)
        return MOLT_DB_EINVAL;
    *days = (int32_t)z;
    return MOLT_DB_OK;
}
