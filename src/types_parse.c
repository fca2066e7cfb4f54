/* The server's text form of scalars back to their values: what the type
 * table's parse entries (types_value.c) call. Only what the server itself
 * prints: bytea in hex or escape output, dates and times in DateStyle ISO
 * (timestamptz and timetz with any UTC offset), interval in IntervalStyle
 * postgres, uuid in its canonical form. Anything else is MOLT_DB_EINVAL. */
#include "hex.h"
#include "types_internal.h"

#define USECS_PER_SEC INT64_C(1000000)
#define BAD MOLT_DB_EINVAL

static int bytea_hex(const uint8_t *p, size_t n, uint8_t *out, size_t *len)
{
    size_t k = 0;
    if ((n - 2) % 2 != 0)
        return BAD;
    for (size_t i = 2; i < n; i += 2) {
        int hi = molt_db__hexval(p[i]), lo = molt_db__hexval(p[i + 1]);
        if (hi < 0 || lo < 0)
            return BAD;
        out[k++] = (uint8_t)(hi << 4 | lo);
    }
    *len = k;
    return MOLT_DB_OK;
}

static int is_octal(uint8_t c, uint8_t max)
{
    return c >= '0' && c <= max;
}

int molt_db__parse_bytea(const uint8_t *p, size_t n, uint8_t *out, size_t *len)
{
    if (n >= 2 && p[0] == '\\' && p[1] == 'x') /* bytea_output = hex */
        return bytea_hex(p, n, out, len);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) { /* bytea_output = escape */
        if (p[i] != '\\') {
            out[k++] = p[i];
        } else if (i + 1 < n && p[i + 1] == '\\') {
            out[k++] = '\\';
            i++;
        } else if (i + 3 < n && is_octal(p[i + 1], '3') && is_octal(p[i + 2], '7') &&
                   is_octal(p[i + 3], '7')) {
            out[k++] = (uint8_t)((p[i + 1] - '0') << 6 | (p[i + 2] - '0') << 3 |
                                 (p[i + 3] - '0'));
            i += 3;
        } else {
            return BAD;
        }
    }
    *len = k;
    return MOLT_DB_OK;
}

/* Reads between min and max digits at *i. */
static int digits(const uint8_t *p, size_t n, size_t *i, int min, int max, int64_t *v)
{
    int k = 0;
    *v = 0;
    while (*i < n && k < max && p[*i] >= '0' && p[*i] <= '9') {
        *v = *v * 10 + (p[*i] - '0');
        (*i)++;
        k++;
    }
    return k >= min ? MOLT_DB_OK : BAD;
}

/* An optional ".f" of 1 to 6 digits at *i, as microseconds (0 if none). */
static int fraction(const uint8_t *p, size_t n, size_t *i, int64_t *us)
{
    *us = 0;
    if (*i >= n || p[*i] != '.')
        return MOLT_DB_OK;
    (*i)++;
    size_t start = *i;
    if (digits(p, n, i, 1, 6, us))
        return BAD;
    for (size_t k = *i - start; k < 6; k++)
        *us *= 10;
    return MOLT_DB_OK;
}

static int expect(const uint8_t *p, size_t n, size_t *i, char c)
{
    if (*i >= n || p[*i] != (uint8_t)c)
        return BAD;
    (*i)++;
    return MOLT_DB_OK;
}

static int match(const uint8_t *p, size_t n, const char *s)
{
    size_t k = 0;
    while (s[k] && k < n && p[k] == (uint8_t)s[k])
        k++;
    return s[k] == '\0' && k == n;
}

/* YYYY-MM-DD at *i (the year has 4 to 7 digits). */
static int ymd(const uint8_t *p, size_t n, size_t *i, int64_t f[3])
{
    if (digits(p, n, i, 4, 7, &f[0]) || expect(p, n, i, '-') ||
        digits(p, n, i, 2, 2, &f[1]) || expect(p, n, i, '-') ||
        digits(p, n, i, 2, 2, &f[2]))
        return BAD;
    return MOLT_DB_OK;
}

/* HH:MM:SS[.ffffff] at *i: f[0..2] hours, minutes, seconds; *frac us. */
static int hms(const uint8_t *p, size_t n, size_t *i, int64_t f[3], int64_t *frac)
{
    if (digits(p, n, i, 2, 2, &f[0]) || expect(p, n, i, ':') ||
        digits(p, n, i, 2, 2, &f[1]) || expect(p, n, i, ':') ||
        digits(p, n, i, 2, 2, &f[2]) || f[1] > 59 || f[2] > 59)
        return BAD;
    return fraction(p, n, i, frac);
}

/* +HH[:MM[:SS]] at *i, as seconds east of UTC. */
static int zone(const uint8_t *p, size_t n, size_t *i, int64_t *east)
{
    if (*i >= n || (p[*i] != '+' && p[*i] != '-'))
        return BAD;
    int neg = p[(*i)++] == '-';
    int64_t oh, om = 0, os = 0;
    if (digits(p, n, i, 2, 2, &oh))
        return BAD;
    if (*i < n && p[*i] == ':' && ((*i)++, digits(p, n, i, 2, 2, &om)))
        return BAD;
    if (*i < n && p[*i] == ':' && ((*i)++, digits(p, n, i, 2, 2, &os)))
        return BAD;
    *east = (oh * 3600 + om * 60 + os) * (neg ? -1 : 1);
    return MOLT_DB_OK;
}

/* The rest of a date at *i: nothing or " BC"; then the day number of
 * f (year, month, day) within the server's range (4713 BC on). */
static int date_days(const uint8_t *p, size_t n, size_t i, int64_t f[3],
                     int32_t *days)
{
    int64_t y = f[0];
    if (i < n) {
        if (!match(p + i, n - i, " BC"))
            return BAD;
        y = 1 - y;
    }
    if (y < -4712 || molt_db_date_from_ymd((int)y, (int)f[1], (int)f[2], days) != MOLT_DB_OK)
        return BAD;
    return MOLT_DB_OK;
}

int molt_db__parse_timestamp(const uint8_t *p, size_t n, int with_zone, int64_t *us)
{
    if (match(p, n, "infinity") || match(p, n, "-infinity")) {
        *us = p[0] == '-' ? MOLT_DB_TIMESTAMP_NEG_INFINITY : MOLT_DB_TIMESTAMP_INFINITY;
        return MOLT_DB_OK;
    }
    size_t i = 0;
    int64_t d[3], t[3], frac, east = 0;
    int32_t days;
    if (ymd(p, n, &i, d) || expect(p, n, &i, ' ') || hms(p, n, &i, t, &frac) ||
        t[0] > 23 || (with_zone && zone(p, n, &i, &east)) ||
        d[0] > 294276 || date_days(p, n, i, d, &days))
        return BAD;
    /* the server's range, 4713 BC to 294276 AD, keeps the sum in int64 */
    *us = (((int64_t)days * 24 + t[0]) * 60 + t[1]) * 60 * USECS_PER_SEC +
          t[2] * USECS_PER_SEC + frac - east * USECS_PER_SEC;
    return MOLT_DB_OK;
}

int molt_db__parse_date(const uint8_t *p, size_t n, int32_t *days)
{
    if (match(p, n, "infinity") || match(p, n, "-infinity")) {
        *days = p[0] == '-' ? MOLT_DB_DATE_NEG_INFINITY : MOLT_DB_DATE_INFINITY;
        return MOLT_DB_OK;
    }
    size_t i = 0;
    int64_t d[3];
    if (ymd(p, n, &i, d))
        return BAD;
    return date_days(p, n, i, d, days);
}

/* A time of day at *i, 00:00:00 to 24:00:00. */
static int time_of_day(const uint8_t *p, size_t n, size_t *i, int64_t *us)
{
    int64_t t[3], frac;
    if (hms(p, n, i, t, &frac) || t[0] > 24)
        return BAD;
    *us = ((t[0] * 60 + t[1]) * 60 + t[2]) * USECS_PER_SEC + frac;
    return *us > MOLT_DB_USECS_PER_DAY ? BAD : MOLT_DB_OK;
}

int molt_db__parse_time(const uint8_t *p, size_t n, int64_t *us)
{
    size_t i = 0;
    if (time_of_day(p, n, &i, us) || i != n)
        return BAD;
    return MOLT_DB_OK;
}

int molt_db__parse_timetz(const uint8_t *p, size_t n, molt_db_timetz *tz)
{
    size_t i = 0;
    int64_t east;
    if (time_of_day(p, n, &i, &tz->time_us) || zone(p, n, &i, &east) || i != n ||
        east > 57599 || east < -57599)
        return BAD;
    tz->zone = (int32_t)-east;
    return MOLT_DB_OK;
}

int molt_db__parse_uuid(const uint8_t *p, size_t n, uint8_t out[16])
{
    if (n != 36)
        return BAD;
    size_t i = 0;
    for (int k = 0; k < 16; k++) {
        if ((k == 4 || k == 6 || k == 8 || k == 10) && expect(p, n, &i, '-'))
            return BAD;
        int hi = molt_db__hexval(p[i]), lo = molt_db__hexval(p[i + 1]);
        if (hi < 0 || lo < 0)
            return BAD;
        out[k] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return MOLT_DB_OK;
}

static int word(const uint8_t *p, size_t n, size_t *i, const char *w)
{
    size_t k = 0;
    while (w[k] && *i + k < n && p[*i + k] == (uint8_t)w[k])
        k++;
    if (w[k] != '\0')
        return 0;
    *i += k;
    return 1;
}

/* The time part of an interval after its hours v (unbounded by 24). */
static int interval_time(const uint8_t *p, size_t n, size_t *i, int64_t v,
                         int64_t sign, int64_t *us)
{
    int64_t t[3] = {v, 0, 0}, frac = 0;
    (*i)++;
    if (digits(p, n, i, 2, 2, &t[1]) || expect(p, n, i, ':') ||
        digits(p, n, i, 2, 2, &t[2]) || t[1] > 59 || t[2] > 59 ||
        fraction(p, n, i, &frac))
        return BAD;
    int64_t secs = (t[0] * 60 + t[1]) * 60 + t[2]; /* v < 10^10: no overflow */
    if (secs > (INT64_MAX - frac) / USECS_PER_SEC)
        return BAD;
    *us = sign * (secs * USECS_PER_SEC + frac);
    return MOLT_DB_OK;
}

/* "N year(s)", "N mon(s)", "N day(s)" after the number: adds to months or days. */
static int interval_unit(const uint8_t *p, size_t n, size_t *i, int64_t v,
                         int64_t *months, int64_t *days)
{
    int64_t *field = NULL, scale = 1;
    if (expect(p, n, i, ' '))
        return BAD;
    if (word(p, n, i, "year"))
        field = months, scale = 12;
    else if (word(p, n, i, "mon"))
        field = months;
    else if (word(p, n, i, "day"))
        field = days;
    else
        return BAD;
    if (*i < n && p[*i] == 's')
        (*i)++;
    *field += v * scale;
    return *field > INT32_MAX || *field < INT32_MIN ? BAD : MOLT_DB_OK;
}

int molt_db__parse_interval(const uint8_t *p, size_t n, molt_db_interval *iv)
{
    size_t i = 0;
    int parts = 0, times = 0;
    int64_t us = 0, days = 0, months = 0;
    while (i < n) {
        if (parts++ > 0 && expect(p, n, &i, ' '))
            return BAD;
        int64_t sign = 1, v;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            sign = p[i++] == '-' ? -1 : 1;
        if (digits(p, n, &i, 1, 10, &v))
            return BAD;
        int rc = i < n && p[i] == ':'
                     ? (times++ ? BAD : interval_time(p, n, &i, v, sign, &us))
                     : interval_unit(p, n, &i, sign * v, &months, &days);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    if (parts == 0)
        return BAD;
    iv->micros = us;
    iv->days = (int32_t)days;
    iv->months = (int32_t)months;
    return MOLT_DB_OK;
}
