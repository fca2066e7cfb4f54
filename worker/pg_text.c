/* The server's text form of a few types back to their values, so that text
 * results (simple statement mode) encode as the binary ones do. Only what
 * the server itself prints: bytea in hex or escape output, timestamp and
 * timestamptz in DateStyle ISO, interval in IntervalStyle postgres.
 * Anything else is refused and the caller passes the text on. */
#include "pg_text.h"

#define USECS_PER_SEC INT64_C(1000000)

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mw_pg_text_bytea(const uint8_t *p, size_t n, uint8_t *out, size_t *len)
{
    size_t k = 0;
    if (n >= 2 && p[0] == '\\' && p[1] == 'x') { /* bytea_output = hex */
        if ((n - 2) % 2 != 0)
            return -1;
        for (size_t i = 2; i < n; i += 2) {
            int hi = hexval(p[i]), lo = hexval(p[i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[k++] = (uint8_t)(hi << 4 | lo);
        }
        *len = k;
        return 0;
    }
    for (size_t i = 0; i < n; i++) { /* bytea_output = escape */
        if (p[i] != '\\') {
            out[k++] = p[i];
        } else if (i + 1 < n && p[i + 1] == '\\') {
            out[k++] = '\\';
            i++;
        } else if (i + 3 < n && p[i + 1] >= '0' && p[i + 1] <= '3' &&
                   p[i + 2] >= '0' && p[i + 2] <= '7' && p[i + 3] >= '0' &&
                   p[i + 3] <= '7') {
            out[k++] = (uint8_t)((p[i + 1] - '0') << 6 | (p[i + 2] - '0') << 3 |
                                 (p[i + 3] - '0'));
            i += 3;
        } else {
            return -1;
        }
    }
    *len = k;
    return 0;
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
    return k >= min ? 0 : -1;
}

/* An optional ".f" of 1 to 6 digits at *i, as microseconds (0 if none). */
static int fraction(const uint8_t *p, size_t n, size_t *i, int64_t *us)
{
    *us = 0;
    if (*i >= n || p[*i] != '.')
        return 0;
    (*i)++;
    size_t start = *i;
    if (digits(p, n, i, 1, 6, us))
        return -1;
    for (size_t k = *i - start; k < 6; k++)
        *us *= 10;
    return 0;
}

static int expect(const uint8_t *p, size_t n, size_t *i, char c)
{
    if (*i >= n || p[*i] != (uint8_t)c)
        return -1;
    (*i)++;
    return 0;
}

static int match(const uint8_t *p, size_t n, const char *s)
{
    size_t k = 0;
    while (s[k] && k < n && p[k] == (uint8_t)s[k])
        k++;
    return s[k] == '\0' && k == n;
}

int mw_pg_text_timestamp(const uint8_t *p, size_t n, int with_zone, int64_t *us)
{
    if (match(p, n, "infinity")) {
        *us = MOLT_DB_TIMESTAMP_INFINITY;
        return 0;
    }
    if (match(p, n, "-infinity")) {
        *us = MOLT_DB_TIMESTAMP_NEG_INFINITY;
        return 0;
    }
    size_t i = 0;
    int64_t y, mo, d, h, mi, s, frac = 0;
    if (digits(p, n, &i, 4, 7, &y) || expect(p, n, &i, '-') ||
        digits(p, n, &i, 2, 2, &mo) || expect(p, n, &i, '-') ||
        digits(p, n, &i, 2, 2, &d) || expect(p, n, &i, ' ') ||
        digits(p, n, &i, 2, 2, &h) || expect(p, n, &i, ':') ||
        digits(p, n, &i, 2, 2, &mi) || expect(p, n, &i, ':') ||
        digits(p, n, &i, 2, 2, &s))
        return -1;
    if (fraction(p, n, &i, &frac))
        return -1;
    int64_t offset = 0;
    if (with_zone) {
        if (i >= n || (p[i] != '+' && p[i] != '-'))
            return -1;
        int neg = p[i++] == '-';
        int64_t oh, om = 0, os = 0;
        if (digits(p, n, &i, 2, 2, &oh))
            return -1;
        if (i < n && p[i] == ':' && (i++, digits(p, n, &i, 2, 2, &om)))
            return -1;
        if (i < n && p[i] == ':' && (i++, digits(p, n, &i, 2, 2, &os)))
            return -1;
        offset = (oh * 3600 + om * 60 + os) * (neg ? -1 : 1);
    }
    if (i < n) {
        if (!match(p + i, n - i, " BC"))
            return -1;
        y = 1 - y;
    }
    /* the server's range, 4713 BC to 294276 AD, keeps the sum in int64 */
    int32_t days;
    if (y < -4712 || y > 294276 || h > 23 || mi > 59 || s > 59 ||
        molt_db_date_from_ymd((int)y, (int)mo, (int)d, &days) != MOLT_DB_OK)
        return -1;
    *us = (((int64_t)days * 24 + h) * 60 + mi) * 60 * USECS_PER_SEC + s * USECS_PER_SEC +
          frac - offset * USECS_PER_SEC;
    return 0;
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

int mw_pg_text_interval(const uint8_t *p, size_t n, molt_db_interval *iv)
{
    size_t i = 0;
    int parts = 0;
    int64_t us = 0, days = 0, months = 0;
    while (i < n) {
        if (parts++ > 0 && expect(p, n, &i, ' '))
            return -1;
        int64_t sign = 1, v;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            sign = p[i++] == '-' ? -1 : 1;
        if (digits(p, n, &i, 1, 10, &v))
            return -1;
        if (i < n && p[i] == ':') { /* the time part, hours unbounded by 24 */
            int64_t mi, sec, frac = 0;
            i++;
            if (digits(p, n, &i, 2, 2, &mi) || expect(p, n, &i, ':') ||
                digits(p, n, &i, 2, 2, &sec) || mi > 59 || sec > 59)
                return -1;
            if (fraction(p, n, &i, &frac))
                return -1;
            int64_t secs = (v * 60 + mi) * 60 + sec; /* v < 10^10: no overflow */
            if (parts > 1 && us != 0)
                return -1; /* one time part */
            if (secs > (INT64_MAX - frac) / USECS_PER_SEC)
                return -1;
            us = sign * (secs * USECS_PER_SEC + frac);
            continue;
        }
        if (expect(p, n, &i, ' '))
            return -1;
        int64_t *field = NULL, scale = 1;
        if (word(p, n, &i, "year"))
            field = &months, scale = 12;
        else if (word(p, n, &i, "mon"))
            field = &months;
        else if (word(p, n, &i, "day"))
            field = &days;
        else
            return -1;
        if (i < n && p[i] == 's')
            i++;
        *field += sign * v * scale;
        if (*field > INT32_MAX || *field < INT32_MIN)
            return -1;
    }
    if (parts == 0)
        return -1;
    iv->micros = us;
    iv->days = (int32_t)days;
    iv->months = (int32_t)months;
    return 0;
}
