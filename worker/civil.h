/* Proleptic Gregorian calendar arithmetic (days since 1970-01-01), shared by
 * the time-zone code and Django's SQLite date functions. Valid for years
 * 1 to 9999 and well beyond; Howard Hinnant's algorithms. */
#ifndef MOLT_WORKER_CIVIL_H
#define MOLT_WORKER_CIVIL_H

#include <stdint.h>

static inline int civil_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int civil_days_in_month(int64_t y, int m)
{
    static const int8_t n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && civil_is_leap(y) ? 29 : n[m - 1];
}

/* Days from 1970-01-01 to y-m-d (m 1..12, d 1..31). */
static inline int64_t civil_days_from(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date `z` days after 1970-01-01. */
static inline void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ISO weekday of the day `z` days after 1970-01-01: Monday 1 .. Sunday 7. */
static inline int civil_isoweekday(int64_t z)
{
    int64_t w = (z + 3) % 7; /* 1970-01-01 was a Thursday (3 from Monday) */
    if (w < 0)
        w += 7;
    return (int)w + 1;
}

/* Floor division, for seconds to days. */
static inline int64_t civil_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#endif
