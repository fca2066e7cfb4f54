/* numeric: the binary form (base-10000 digits, weight, sign, display
 * scale), its exact decimal text, 128-bit decimals, and encoding from
 * decimal text. */
#include "molt_db/types.h"
#include "types_internal.h"

#include <stdlib.h>
#include <string.h>

#define NUMERIC_HEADER 8

static int valid_sign(uint16_t s)
{
    return s == MOLT_DB_NUMERIC_POS || s == MOLT_DB_NUMERIC_NEG ||
           s == MOLT_DB_NUMERIC_NAN || s == MOLT_DB_NUMERIC_PINF ||
           s == MOLT_DB_NUMERIC_NINF;
}

static int is_special(uint16_t s)
{
    return s != MOLT_DB_NUMERIC_POS && s != MOLT_DB_NUMERIC_NEG;
}

uint16_t molt_db_numeric_digit(const molt_db_numeric *n, size_t i)
{
    return molt_db__rd16(n->digits + 2 * i);
}

/* The base-10000 digit at group g (0 = the highest, at weight), 0 outside. */
static unsigned group_at(const molt_db_numeric *n, long g)
{
    return g >= 0 && g < (long)n->ndigits ? molt_db_numeric_digit(n, (size_t)g)
                                          : 0;
}

static const unsigned pow10_4[4] = {1000, 100, 10, 1};

int molt_db_numeric_decode(const uint8_t *p, size_t len, molt_db_numeric *out,
                           molt_db_error *err)
{
    if (len < NUMERIC_HEADER)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "numeric value has %zu bytes, expected >= 8",
                                 len);
    molt_db_numeric n;
    n.ndigits = molt_db__rd16(p);
    n.weight = (int16_t)molt_db__rd16(p + 2);
    n.sign = molt_db__rd16(p + 4);
    n.dscale = molt_db__rd16(p + 6);
    n.digits = p + NUMERIC_HEADER;
    if (len != NUMERIC_HEADER + 2 * (size_t)n.ndigits)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "numeric value has %zu bytes for %u digits",
                                 len, n.ndigits);
    if (!valid_sign(n.sign))
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "invalid numeric sign 0x%04x", n.sign);
    if (n.dscale > MOLT_DB_NUMERIC_MAX_DSCALE)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "invalid numeric display scale %u", n.dscale);
    if (is_special(n.sign) && n.ndigits != 0)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "numeric NaN/Infinity with %u digits",
                                 n.ndigits);
    long last_nonzero = -1;
    for (size_t i = 0; i < n.ndigits; i++) {
        uint16_t d = molt_db_numeric_digit(&n, i);
        if (d > 9999)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "invalid numeric digit %u", d);
        if (d != 0)
            last_nonzero = (long)i;
    }
    if (last_nonzero >= 0) {
        /* The server rounds to the display scale before sending: a nonzero
         * decimal digit past dscale means a corrupt weight or scale. */
        long g = last_nonzero;
        unsigned d = molt_db_numeric_digit(&n, (size_t)g);
        int tz = 0;
        while (d % 10 == 0) {
            d /= 10;
            tz++;
        }
        /* decimal exponent of the lowest nonzero decimal digit */
        long exp10 = 4L * ((long)n.weight - g) + tz;
        if (exp10 < -(long)n.dscale)
            return molt_db_error_set(
                err, MOLT_DB_EPROTO,
                "numeric has digits past its display scale (weight %d, "
                "dscale %u)", n.weight, n.dscale);
    }
    *out = n;
    return MOLT_DB_OK;
}

int molt_db_numeric_to_text(const molt_db_numeric *n, molt_db_buf *out)
{
    size_t start = out->len;
    switch (n->sign) {
    case MOLT_DB_NUMERIC_NAN:
        molt_db_buf_put(out, "NaN", 3);
        return molt_db__buf_finish(out, start, MOLT_DB_OK);
    case MOLT_DB_NUMERIC_PINF:
        molt_db_buf_put(out, "Infinity", 8);
        return molt_db__buf_finish(out, start, MOLT_DB_OK);
    case MOLT_DB_NUMERIC_NINF:
        molt_db_buf_put(out, "-Infinity", 9);
        return molt_db__buf_finish(out, start, MOLT_DB_OK);
    default:
        break;
    }
    size_t intdigits = n->weight >= 0 ? 4 * ((size_t)n->weight + 1) : 1;
    if (molt_db_buf_reserve(out, 2 + intdigits + n->dscale) != MOLT_DB_OK)
        return molt_db__buf_finish(out, start, MOLT_DB_ENOMEM);
    char *cp = (char *)out->data + out->len;
    char *begin = cp;
    if (n->sign == MOLT_DB_NUMERIC_NEG)
        *cp++ = '-';
    if (n->weight < 0) {
        *cp++ = '0';
    } else {
        for (long g = 0; g <= n->weight; g++) {
            unsigned dig = group_at(n, g);
            for (int k = 0; k < 4; k++) {
                unsigned d = dig / pow10_4[k] % 10;
                /* the highest group drops its leading zeros, keeping one */
                if (g == 0 && k < 3 && d == 0 && cp == begin + (n->sign == MOLT_DB_NUMERIC_NEG))
                    continue;
                *cp++ = (char)('0' + d);
            }
        }
    }
    if (n->dscale > 0) {
        *cp++ = '.';
        for (unsigned j = 0; j < n->dscale; j++) {
            unsigned dig = group_at(n, (long)n->weight + 1 + (long)(j / 4));
            *cp++ = (char)('0' + dig / pow10_4[j % 4] % 10);
        }
    }
    out->len += (size_t)(cp - begin);
    return MOLT_DB_OK;
}

/* ---- encoding ---- */

static long floordiv4(long x)
{
    return x >= 0 ? x / 4 : -((-x + 3) / 4);
}

/*
 * Appends a finite numeric given its decimal digits (digits[k] is 0..9, the
 * digit of 10^(point - 1 - k)), sign and display scale.
 */
static int encode_digits(molt_db_buf *out, int neg, const uint8_t *digits,
                         size_t n, long point, long dscale, molt_db_error *err)
{
    size_t lo = 0, hi = n;
    while (lo < hi && digits[lo] == 0)
        lo++;
    while (hi > lo && digits[hi - 1] == 0)
        hi--;
    if (dscale < 0 || dscale > MOLT_DB_NUMERIC_MAX_DSCALE)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "numeric display scale %ld out of range",
                                 dscale);
    size_t start = out->len;
    if (lo == hi) { /* zero: no digits, always positive */
        molt_db_buf_put_u16(out, 0);
        molt_db_buf_put_u16(out, 0);
        molt_db_buf_put_u16(out, MOLT_DB_NUMERIC_POS);
        molt_db_buf_put_u16(out, (uint16_t)dscale);
        return molt_db__buf_finish(out, start, MOLT_DB_OK);
    }
    long xhi = point - 1 - (long)lo, xlo = point - 1 - (long)(hi - 1);
    long weight = floordiv4(xhi), lowgroup = floordiv4(xlo);
    long ndigits = weight - lowgroup + 1;
    if (weight > INT16_MAX || weight < INT16_MIN || ndigits > UINT16_MAX)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "numeric value out of range");
    molt_db_buf_put_u16(out, (uint16_t)ndigits);
    molt_db_buf_put_u16(out, (uint16_t)(int16_t)weight);
    molt_db_buf_put_u16(out, neg ? MOLT_DB_NUMERIC_NEG : MOLT_DB_NUMERIC_POS);
    molt_db_buf_put_u16(out, (uint16_t)dscale);
    size_t k = lo;
    for (long g = weight; g >= lowgroup; g--) {
        unsigned v = 0;
        for (int j = 3; j >= 0; j--) {
            long x = 4 * g + j; /* exponent of this decimal position */
            unsigned d = 0;
            if (k < hi && point - 1 - (long)k == x)
                d = digits[k++];
            v = v * 10 + d;
        }
        molt_db_buf_put_u16(out, (uint16_t)v);
    }
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}

static int put_special(molt_db_buf *out, uint16_t sign)
{
    size_t start = out->len;
    molt_db_buf_put_u16(out, 0);
    molt_db_buf_put_u16(out, 0);
    molt_db_buf_put_u16(out, sign);
    molt_db_buf_put_u16(out, 0);
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}

static int ieq(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (len != wl)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

int molt_db_encode_numeric_text(molt_db_buf *out, const char *s, size_t len,
                                molt_db_error *err)
{
    if (s == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "numeric text is NULL");
    if (ieq(s, len, "nan"))
        return put_special(out, MOLT_DB_NUMERIC_NAN);
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (ieq(s + i, len - i, "infinity") || ieq(s + i, len - i, "inf"))
        return put_special(out, neg ? MOLT_DB_NUMERIC_NINF
                                    : MOLT_DB_NUMERIC_PINF);
    uint8_t *digits = malloc(len ? len : 1);
    if (digits == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    size_t n = 0, intdigits = 0, fracdigits = 0;
    int seen_point = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits[n++] = (uint8_t)(c - '0');
            if (seen_point)
                fracdigits++;
            else
                intdigits++;
        } else if (c == '.' && !seen_point) {
            seen_point = 1;
        } else {
            break;
        }
    }
    long exp10 = 0;
    int bad = n == 0;
    if (!bad && i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i == len)
            bad = 1;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            exp10 = exp10 * 10 + (s[i] - '0');
            if (exp10 > 1000000) { /* far past numeric's range */
                bad = 1;
                break;
            }
        }
        if (eneg)
            exp10 = -exp10;
    }
    if (bad || i != len) {
        free(digits);
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "invalid numeric text \"%.*s\"",
                                 len > 64 ? 64 : (int)len, s);
    }
    long dscale = (long)fracdigits - exp10;
    if (dscale < 0)
        dscale = 0;
    int rc = encode_digits(out, neg, digits, n, (long)intdigits + exp10,
                           dscale, err);
    free(digits);
    return rc;
}

#if MOLT_DB_HAVE_INT128
__extension__ typedef unsigned __int128 u128;

int molt_db_numeric_to_decimal128(const molt_db_numeric *n,
                                  molt_db_decimal128 *out, molt_db_error *err)
{
    if (is_special(n->sign))
        return molt_db_error_set(err, MOLT_DB_ETYPE,
                                 "numeric NaN/Infinity has no decimal value");
    const u128 max_pos = ~(u128)0 >> 1;              /* 2^127 - 1 */
    const u128 limit = n->sign == MOLT_DB_NUMERIC_NEG ? max_pos + 1 : max_pos;
    u128 acc = 0;
    /* one decimal digit at a time, from the highest integer digit down to
     * the last displayed one: exact, and stops at the first overflow */
    long first = n->weight >= 0 ? 0 : n->weight + 1;
    long total = 4L * (n->weight + 1 - first) + n->dscale;
    for (long j = 0; j < total; j++) {
        long g = first + j / 4;
        unsigned d = group_at(n, g) / pow10_4[j % 4] % 10;
        if (acc > (limit - d) / 10)
            return molt_db_error_set(err, MOLT_DB_ERANGE,
                                     "numeric does not fit a 128-bit decimal");
        acc = acc * 10 + d;
    }
    if (n->sign == MOLT_DB_NUMERIC_NEG)
        out->unscaled = acc == max_pos + 1 ? (molt_db_int128)(-(molt_db_int128)max_pos - 1)
                                           : -(molt_db_int128)acc;
    else
        out->unscaled = (molt_db_int128)acc;
    out->scale = n->dscale;
    return MOLT_DB_OK;
}

int molt_db_encode_numeric_decimal128(molt_db_buf *out, molt_db_decimal128 v,
                                      molt_db_error *err)
{
    if (v.scale < 0 || v.scale > MOLT_DB_NUMERIC_MAX_DSCALE)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "decimal scale %d out of range", (int)v.scale);
    int neg = v.unscaled < 0;
    u128 mag = neg ? (u128)0 - (u128)v.unscaled : (u128)v.unscaled;
    uint8_t digits[40];
    size_t n = 0;
    uint8_t rev[40];
    do {
        rev[n++] = (uint8_t)(mag % 10);
        mag /= 10;
    } while (mag != 0);
    for (size_t k = 0; k < n; k++)
        digits[k] = rev[n - 1 - k];
    return encode_digits(out, neg, digits, n, (long)n - v.scale, v.scale, err);
}
#endif
