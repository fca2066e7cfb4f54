/* Shortest round-trip text of float4/float8, laid out the way the server's
 * float4out/float8out do it with extra_float_digits >= 1 (PostgreSQL 12+):
 * plain notation for decimal exponents -4 .. 14 (float8) or -4 .. 5
 * (float4), else d.ddde+XX. */
#include "molt_db/types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when the decimal s lies exactly halfway between v and a neighbour. The
 * server's Ryu never picks such a tie even when round-half-even would read
 * it back as v, so neither do we. The midpoints are exact in the wider type
 * (25 bits in a double, 54 in an x87/quad long double); where long double
 * is no wider than double this check finds nothing. */
static int on_boundary(const char *s, double v, int is_float)
{
    if (is_float) {
        float f = (float)v;
        double c = strtod(s, NULL);
        double lo = ((double)f + (double)nextafterf(f, -INFINITY)) / 2;
        double hi = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
        return c == lo || c == hi;
    }
    long double c = strtold(s, NULL);
    long double lo = ((long double)v + (long double)nextafter(v, -INFINITY)) / 2;
    long double hi = ((long double)v + (long double)nextafter(v, INFINITY)) / 2;
    return c == lo || c == hi;
}

/* Reads a %e mantissa/exponent string back in the given width. */
static int round_trips(const char *s, double v, int is_float)
{
    int same = is_float ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v;
    return same && !on_boundary(s, v, is_float);
}

/* Adds delta (+1 or -1) to the last mantissa digit of "d.ddde+XX" text in
 * s, in place; returns 0 when a carry or borrow would change the digit
 * count (that neighbour is then not a candidate). */
static int bump_last_digit(char *s, int delta)
{
    char *e = strchr(s, 'e');
    if (e == NULL)
        return 0;
    for (char *c = e - 1; c >= s; c--) {
        if (*c == '.')
            continue;
        if (delta > 0 && *c < '9') {
            (*c)++;
            return 1;
        }
        if (delta < 0 && *c > '0') {
            (*c)--;
            return c != s || *c != '0';
        }
        if (c == s)
            return 0;
        *c = delta > 0 ? '0' : '9';
    }
    return 0;
}

/*
 * Finds the shortest decimal that reads back as v: digits (no point, no
 * trailing zeros) into dig and the decimal exponent of the first one.
 * At each precision the correctly rounded candidate is the closest, but
 * at a power of two the interval that reads back is lopsided, so its
 * neighbours get a chance too before going one digit longer.
 */
static void shortest(double v, int is_float, char *dig, int *exp10)
{
    char s[40];
    int maxp = is_float ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        snprintf(s, sizeof s, "%.*e", p - 1, v);
        int ok = round_trips(s, v, is_float);
        if (!ok) {
            char up[40], down[40];
            memcpy(up, s, sizeof s);
            memcpy(down, s, sizeof s);
            if (bump_last_digit(up, 1) && round_trips(up, v, is_float)) {
                memcpy(s, up, sizeof s);
                ok = 1;
            } else if (bump_last_digit(down, -1) &&
                       round_trips(down, v, is_float)) {
                memcpy(s, down, sizeof s);
                ok = 1;
            }
        }
        if (ok || p == maxp)
            break;
    }
    size_t n = 0;
    const char *c = s;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9')
            dig[n++] = *c;
    while (n > 1 && dig[n - 1] == '0')
        n--;
    dig[n] = '\0';
    *exp10 = *c == 'e' ? atoi(c + 1) : 0;
}

static size_t format(double v, int is_float, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, MOLT_DB_FLOAT_TEXT_SIZE, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, MOLT_DB_FLOAT_TEXT_SIZE, "%s",
                                v < 0 ? "-Infinity" : "Infinity");
    char *o = out;
    if (signbit(v))
        *o++ = '-';
    v = fabs(v);
    if (v == 0) {
        *o++ = '0';
        *o = '\0';
        return (size_t)(o - out);
    }
    char dig[24];
    int e;
    shortest(v, is_float, dig, &e);
    int nd = (int)strlen(dig);
    if (e >= -4 && e < (is_float ? 6 : 15)) {
        if (e < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = -1; i > e; i--)
                *o++ = '0';
            memcpy(o, dig, (size_t)nd);
            o += nd;
        } else {
            for (int i = 0; i <= e; i++)
                *o++ = i < nd ? dig[i] : '0';
            if (nd > e + 1) {
                *o++ = '.';
                memcpy(o, dig + e + 1, (size_t)(nd - e - 1));
                o += nd - e - 1;
            }
        }
        *o = '\0';
        return (size_t)(o - out);
    }
    *o++ = dig[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, dig + 1, (size_t)nd - 1);
        o += nd - 1;
    }
    o += snprintf(o, (size_t)(MOLT_DB_FLOAT_TEXT_SIZE - (o - out)), "e%c%02d",
                  e < 0 ? '-' : '+', e < 0 ? -e : e);
    return (size_t)(o - out);
}

size_t molt_db_format_float8(double v, char out[MOLT_DB_FLOAT_TEXT_SIZE])
{
    return format(v, 0, out);
}

size_t molt_db_format_float4(float v, char out[MOLT_DB_FLOAT_TEXT_SIZE])
{
    return format((double)v, 1, out);
}
