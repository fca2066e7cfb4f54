/* Django's SQLite text, hash and small numeric functions (LPAD, RPAD,
 * REPEAT, REVERSE, MD5, SHA1 ... SHA512, SIGN, BITXOR, COT, RAND) with the
 * results Django's Python implementations give: lengths count code points,
 * a type Python would reject is an error. See sqlite_django.h. */
#include "sqlite_django.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unsupported(sqlite3_context *ctx, const char *fn, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof msg, MW_DJANGO_UNSUPPORTED " %s: %s", fn, why);
    sqlite3_result_error(ctx, msg, -1);
}

static void type_error(sqlite3_context *ctx, const char *fn)
{
    char msg[96];
    snprintf(msg, sizeof msg, "%s: TypeError: unsupported argument type", fn);
    sqlite3_result_error(ctx, msg, -1);
}

static int any_null(int argc, sqlite3_value **a)
{
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(a[i]) == SQLITE_NULL)
            return 1;
    return 0;
}

/* ---- UTF-8 text as Python str ------------------------------------------- */

typedef struct {
    const unsigned char *s;
    int bytes;
    int64_t chars;
} utext;

/* Length in code points of valid UTF-8; -1 when it is not valid (Python's
 * sqlite3 module would fail to decode it). */
static int64_t utf8_chars(const unsigned char *s, int n)
{
    int64_t chars = 0;
    for (int i = 0; i < n; chars++) {
        unsigned c = s[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return -1;
        for (int k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
        i += len;
    }
    return chars;
}

/* byte offset of code point `k` (0 <= k <= chars) */
static int utf8_offset(const unsigned char *s, int n, int64_t k)
{
    int i = 0;
    while (k > 0 && i < n) {
        i++;
        while (i < n && (s[i] & 0xc0) == 0x80)
            i++;
        k--;
    }
    return i;
}

static int text_of(sqlite3_context *ctx, sqlite3_value *v, utext *t, const char *fn)
{
    if (sqlite3_value_type(v) != SQLITE_TEXT) {
        type_error(ctx, fn);
        return -1;
    }
    t->s = sqlite3_value_text(v);
    t->bytes = sqlite3_value_bytes(v);
    if (!t->s) {
        sqlite3_result_error_nomem(ctx);
        return -1;
    }
    t->chars = utf8_chars(t->s, t->bytes);
    if (t->chars < 0) {
        unsupported(ctx, fn, "text is not valid UTF-8");
        return -1;
    }
    return 0;
}

/* Python's text[:n] for any int n (negative counts from the end). */
static void slice_to(const utext *t, int64_t n, int *bytes)
{
    int64_t k = n >= 0 ? (n < t->chars ? n : t->chars) : (t->chars + n > 0 ? t->chars + n : 0);
    *bytes = utf8_offset(t->s, t->bytes, k);
}

static int too_big(sqlite3_context *ctx, int64_t bytes)
{
    if (bytes > sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1)) {
        sqlite3_result_error_toobig(ctx);
        return 1;
    }
    return 0;
}

/* Appends the first `k` code points of `fill` repeated without end. */
static void cycle(unsigned char *out, int64_t *pos, const utext *fill, int64_t k)
{
    int i = 0;
    while (k-- > 0) {
        int j = utf8_offset(fill->s + i, fill->bytes - i, 1);
        memcpy(out + *pos, fill->s + i, (size_t)j);
        *pos += j;
        i += j;
        if (i >= fill->bytes)
            i = 0;
    }
}

/* bytes needed for the first k code points of fill repeated */
static int64_t cycle_bytes(const utext *fill, int64_t k)
{
    if (!fill->chars || k <= 0)
        return 0;
    int64_t whole = k / fill->chars, rest = k % fill->chars;
    return whole * fill->bytes + utf8_offset(fill->s, fill->bytes, rest);
}

/* t with the first `k` code points of `fill` repeated before it (left) or
 * after it, as the function's result. */
static void result_padded(sqlite3_context *ctx, const utext *t, const utext *fill, int64_t k,
                          int left)
{
    if (too_big(ctx, k))
        return;
    int64_t pad = cycle_bytes(fill, k), total = pad + t->bytes;
    if (too_big(ctx, total))
        return;
    unsigned char *out = sqlite3_malloc64((sqlite3_uint64)total + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int64_t pos = left ? 0 : t->bytes;
    if (fill->chars)
        cycle(out, &pos, fill, k);
    memcpy(out + (left ? pad : 0), t->s, (size_t)t->bytes);
    sqlite3_result_text64(ctx, (const char *)out, (sqlite3_uint64)total, sqlite3_free,
                          SQLITE_UTF8);
}

/* What LPAD and RPAD check first: NULL in, NULL out; then text and an
 * integer length. Returns 0 with *t and *length, or 1 when the result (NULL
 * or an error) is already set. */
static int pad_args(sqlite3_context *ctx, int argc, sqlite3_value **a, const char *fn,
                    utext *t, int64_t *length)
{
    if (any_null(argc, a)) {
        sqlite3_result_null(ctx);
        return 1;
    }
    if (sqlite3_value_type(a[0]) == SQLITE_BLOB) {
        unsupported(ctx, fn, "bytes to pad"); /* Python slices bytes, or fails */
        return 1;
    }
    if (text_of(ctx, a[0], t, fn) < 0)
        return 1;
    if (sqlite3_value_type(a[1]) != SQLITE_INTEGER) {
        type_error(ctx, fn);
        return 1;
    }
    *length = sqlite3_value_int64(a[1]);
    return 0;
}

static void fn_lpad(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    utext t, f;
    int64_t length;
    if (pad_args(ctx, argc, a, "LPAD", &t, &length))
        return;
    int64_t delta = length - t.chars;
    if (delta <= 0) {
        int b;
        slice_to(&t, length, &b);
        sqlite3_result_text(ctx, (const char *)t.s, b, SQLITE_TRANSIENT);
        return;
    }
    if (text_of(ctx, a[2], &f, "LPAD") < 0)
        return;
    /* (fill * length)[:delta]: delta <= length, so only the fill's length matters */
    result_padded(ctx, &t, &f, delta, 1);
}

static void fn_rpad(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    utext t, f;
    int64_t length;
    if (pad_args(ctx, argc, a, "RPAD", &t, &length) || text_of(ctx, a[2], &f, "RPAD") < 0)
        return;
    /* (text + fill * length)[:length] */
    if (length <= t.chars) {
        int b;
        slice_to(&t, length, &b);
        sqlite3_result_text(ctx, (const char *)t.s, b, SQLITE_TRANSIENT);
        return;
    }
    /* fill * length is empty, or longer than the gap */
    result_padded(ctx, &t, &f, f.chars ? length - t.chars : 0, 0);
}

/* text * count, and count * text; numbers multiply */
static void fn_repeat(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    if (any_null(argc, a)) {
        sqlite3_result_null(ctx);
        return;
    }
    int t0 = sqlite3_value_type(a[0]), t1 = sqlite3_value_type(a[1]);
    int num0 = t0 == SQLITE_INTEGER || t0 == SQLITE_FLOAT, num1 = t1 == SQLITE_INTEGER || t1 == SQLITE_FLOAT;
    if (num0 && num1) {
        if (t0 == SQLITE_INTEGER && t1 == SQLITE_INTEGER) {
            long long r;
            if (__builtin_mul_overflow(sqlite3_value_int64(a[0]), sqlite3_value_int64(a[1]), &r)) {
                sqlite3_result_error(ctx, "REPEAT: OverflowError: Python int too large to "
                                          "convert to SQLite INTEGER", -1);
                return;
            }
            sqlite3_result_int64(ctx, r);
        } else {
            sqlite3_result_double(ctx, sqlite3_value_double(a[0]) * sqlite3_value_double(a[1]));
        }
        return;
    }
    int seq = t0 == SQLITE_INTEGER ? 1 : 0; /* which argument is the sequence */
    int st = sqlite3_value_type(a[seq]);
    if (sqlite3_value_type(a[1 - seq]) != SQLITE_INTEGER ||
        (st != SQLITE_TEXT && st != SQLITE_BLOB)) {
        type_error(ctx, "REPEAT");
        return;
    }
    int64_t count = sqlite3_value_int64(a[1 - seq]);
    const void *p = st == SQLITE_TEXT ? (const void *)sqlite3_value_text(a[seq])
                                      : sqlite3_value_blob(a[seq]);
    int64_t n = sqlite3_value_bytes(a[seq]);
    if (count < 0 || n == 0)
        count = 0;
    if (count && n > INT64_MAX / count) {
        sqlite3_result_error_toobig(ctx);
        return;
    }
    if (too_big(ctx, n * count))
        return;
    unsigned char *out = sqlite3_malloc64((sqlite3_uint64)(n * count) + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (int64_t i = 0; i < count; i++)
        memcpy(out + i * n, p, (size_t)n);
    if (st == SQLITE_TEXT)
        sqlite3_result_text64(ctx, (const char *)out, (sqlite3_uint64)(n * count), sqlite3_free,
                              SQLITE_UTF8);
    else
        sqlite3_result_blob64(ctx, out, (sqlite3_uint64)(n * count), sqlite3_free);
}

static void fn_reverse(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    int type = sqlite3_value_type(a[0]);
    if (type == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (type == SQLITE_BLOB) {
        int n = sqlite3_value_bytes(a[0]);
        const unsigned char *b = sqlite3_value_blob(a[0]);
        unsigned char *out = sqlite3_malloc64((sqlite3_uint64)n + 1);
        if (!out) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        for (int i = 0; i < n; i++)
            out[i] = b[n - 1 - i];
        sqlite3_result_blob64(ctx, out, (sqlite3_uint64)n, sqlite3_free);
        return;
    }
    utext t;
    if (text_of(ctx, a[0], &t, "REVERSE") < 0)
        return;
    unsigned char *out = sqlite3_malloc64((sqlite3_uint64)t.bytes + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int end = t.bytes;
    for (int i = 0; i < t.bytes;) {
        int j = utf8_offset(t.s + i, t.bytes - i, 1);
        end -= j;
        memcpy(out + end, t.s + i, (size_t)j);
        i += j;
    }
    sqlite3_result_text64(ctx, (const char *)out, (sqlite3_uint64)t.bytes, sqlite3_free,
                          SQLITE_UTF8);
}

/* MD5, SHA1 ... SHA512 of text.encode(), as lowercase hex */
static void digest(sqlite3_context *ctx, sqlite3_value **a, const char *fn, const EVP_MD *md)
{
    if (sqlite3_value_type(a[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    utext t;
    if (text_of(ctx, a[0], &t, fn) < 0)
        return;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!md || !EVP_Digest(t.s, (size_t)t.bytes, h, &n, md, NULL)) {
        unsupported(ctx, fn, "digest not available");
        return;
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    sqlite3_result_text(ctx, hex, (int)(2 * n), SQLITE_TRANSIENT);
}

#define DIGEST_FN(cname, sqlname, evp)                                         \
    static void cname(sqlite3_context *ctx, int argc, sqlite3_value **a)      \
    {                                                                          \
        (void)argc;                                                            \
        digest(ctx, a, sqlname, evp());                                        \
    }
DIGEST_FN(fn_md5, "MD5", EVP_md5)
DIGEST_FN(fn_sha1, "SHA1", EVP_sha1)
DIGEST_FN(fn_sha224, "SHA224", EVP_sha224)
DIGEST_FN(fn_sha256, "SHA256", EVP_sha256)
DIGEST_FN(fn_sha384, "SHA384", EVP_sha384)
DIGEST_FN(fn_sha512, "SHA512", EVP_sha512)

/* The one argument of SIGN and COT: NULL in, NULL out; a number, else
 * Python's TypeError. Returns 1 when the result is already set. */
static int number_arg(sqlite3_context *ctx, sqlite3_value *v, const char *fn)
{
    int t = sqlite3_value_type(v);
    if (t == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return 1;
    }
    if (t != SQLITE_INTEGER && t != SQLITE_FLOAT) {
        type_error(ctx, fn);
        return 1;
    }
    return 0;
}

static void fn_sign(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    if (number_arg(ctx, a[0], "SIGN"))
        return;
    if (sqlite3_value_type(a[0]) == SQLITE_INTEGER) {
        int64_t x = sqlite3_value_int64(a[0]);
        sqlite3_result_int(ctx, (x > 0) - (x < 0));
    } else {
        double x = sqlite3_value_double(a[0]);
        sqlite3_result_int(ctx, (x > 0) - (x < 0));
    }
}

static void fn_bitxor(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    if (any_null(argc, a)) {
        sqlite3_result_null(ctx);
        return;
    }
    if (sqlite3_value_type(a[0]) != SQLITE_INTEGER || sqlite3_value_type(a[1]) != SQLITE_INTEGER) {
        type_error(ctx, "BITXOR");
        return;
    }
    sqlite3_result_int64(ctx, sqlite3_value_int64(a[0]) ^ sqlite3_value_int64(a[1]));
}

static void fn_cot(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    if (number_arg(ctx, a[0], "COT"))
        return;
    double x = sqlite3_value_double(a[0]);
    if (isinf(x)) {
        sqlite3_result_error(ctx, "COT: ValueError: math domain error", -1);
        return;
    }
    double t = tan(x);
    if (t == 0) {
        sqlite3_result_error(ctx, "COT: ZeroDivisionError: float division by zero", -1);
        return;
    }
    sqlite3_result_double(ctx, 1 / t);
}

static void fn_rand(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    (void)a;
    uint64_t r;
    sqlite3_randomness(sizeof r, &r);
    sqlite3_result_double(ctx, (double)(r >> 11) * 0x1.0p-53); /* [0, 1) */
}

static const mw_django_fn text_fns[] = {
    {"LPAD", 3, fn_lpad},       {"RPAD", 3, fn_rpad},       {"REPEAT", 2, fn_repeat},
    {"REVERSE", 1, fn_reverse}, {"MD5", 1, fn_md5},         {"SHA1", 1, fn_sha1},
    {"SHA224", 1, fn_sha224},   {"SHA256", 1, fn_sha256},   {"SHA384", 1, fn_sha384},
    {"SHA512", 1, fn_sha512},   {"SIGN", 1, fn_sign},       {"BITXOR", 2, fn_bitxor},
    {"COT", 1, fn_cot},         {"RAND", 0, fn_rand},       {NULL, 0, NULL},
};

const mw_django_fn *mw_django_text_functions(void)
{
    return text_fns;
}
