/* Django's SQLite REGEXP (re.search(pattern, str(value)) in Python) on
 * PCRE2. Python's re and PCRE2 agree on a large common syntax but not on
 * all of it (\Z, {,n}, POSIX classes, \x{...}, \p, inline flags anywhere,
 * ...), so a pattern is first checked against the subset whose meaning is
 * the same in both; anything else raises MW_DJANGO_UNSUPPORTED and the
 * Django adapter runs the query through the ORM instead. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "sqlite_django.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

/* Work limit per match: a pattern that backtracks past it would also stall
 * a thread we cannot interrupt (sqlite3_interrupt does not reach PCRE2). */
#define REGEXP_MATCH_LIMIT 10000000

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* An escape at p (p[0] == '\\'); returns its length or 0 when unsupported. */
static size_t escape_len(const char *p, int in_class)
{
    char c = p[1];
    if (!c)
        return 0;
    if (strchr("dDwWsSntrfva", c))
        return 2;
    if (!in_class && strchr("bBA", c))
        return 2;
    if (c == 'b' && in_class) /* backspace in both */
        return 2;
    if (c == 'x')
        return is_hex(p[2]) && is_hex(p[3]) ? 4 : 0;
    if ((unsigned char)c < 0x80 && !is_alnum(c))
        return 2; /* an escaped ASCII punctuation character is itself */
    return 0;
}

/* {m}, {m,} or {m,n}; returns its length or 0 */
static size_t quantifier_len(const char *p)
{
    size_t i = 1, d = strspn(p + i, "0123456789");
    if (!d)
        return 0;
    i += d;
    if (p[i] == ',') {
        i++;
        i += strspn(p + i, "0123456789");
    }
    return p[i] == '}' ? i + 1 : 0;
}

/* The part after "(?"; returns its length or 0. */
static size_t group_len(const char *p, int at_start)
{
    static const char *const plain[] = {":", "=", "!", "<=", "<!", ">"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!strncmp(p, plain[i], strlen(plain[i])))
            return strlen(plain[i]);
    if (p[0] == 'P' && (p[1] == '<' || p[1] == '=')) {
        size_t n = 2;
        if (!(p[n] == '_' || (is_alnum(p[n]) && !(p[n] >= '0' && p[n] <= '9'))))
            return 0;
        while (p[n] == '_' || is_alnum(p[n]))
            n++;
        if (p[1] == '<')
            return p[n] == '>' ? n + 1 : 0;
        return p[n] == ')' ? n + 1 : 0;
    }
    size_t f = strspn(p, "ims");
    if (f && p[f] == ':')
        return f + 1; /* scoped flags */
    if (f && p[f] == ')' && at_start)
        return f + 1; /* global flags, which Python allows only at the start */
    return 0;
}

/* Whether Python's re and PCRE2 (UTF, UCP) read `pat` the same way. */
static int same_in_both(const char *pat)
{
    const char *p = pat;
    while (*p) {
        if (*p == '\\') {
            size_t n = escape_len(p, 0);
            if (!n)
                return 0;
            p += n;
        } else if (*p == '[') {
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (*p == '[')
                    return 0; /* [: POSIX class in PCRE2, a literal in Python */
                if (*p == '\\') {
                    size_t n = escape_len(p, 1);
                    if (!n)
                        return 0;
                    p += n;
                } else {
                    p++;
                }
            }
            if (!*p)
                return 0;
            p++;
        } else if (*p == '(' && p[1] == '?') {
            size_t n = group_len(p + 2, p == pat);
            if (!n)
                return 0;
            p += 2 + n;
        } else if (*p == '{') {
            size_t n = quantifier_len(p);
            if (!n)
                return 0;
            p += n;
        } else {
            p++;
        }
    }
    return 1;
}

typedef struct {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
} compiled;

static void compiled_free(void *v)
{
    compiled *c = v;
    pcre2_match_context_free(c->mctx);
    pcre2_match_data_free(c->md);
    pcre2_code_free(c->code);
    sqlite3_free(c);
}

static void fail(sqlite3_context *ctx, int unsupported, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%sregexp: %s", unsupported ? MW_DJANGO_UNSUPPORTED " " : "", why);
    sqlite3_result_error(ctx, msg, -1);
}

static compiled *compile(sqlite3_context *ctx, const char *pat, int n)
{
    if ((int)strlen(pat) != n) {
        fail(ctx, 1, "pattern holds a NUL character");
        return NULL;
    }
    if (!same_in_both(pat)) {
        fail(ctx, 1, "pattern uses syntax outside the subset Python and PCRE2 share");
        return NULL;
    }
    compiled *c = sqlite3_malloc(sizeof *c);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!c || !cc) {
        sqlite3_free(c);
        pcre2_compile_context_free(cc);
        sqlite3_result_error_nomem(ctx);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int err;
    PCRE2_SIZE off;
    c->code = pcre2_compile((PCRE2_SPTR)pat, (PCRE2_SIZE)n, PCRE2_UTF | PCRE2_UCP, &err, &off, cc);
    pcre2_compile_context_free(cc);
    if (!c->code) {
        PCRE2_UCHAR buf[160];
        char why[220];
        pcre2_get_error_message(err, buf, sizeof buf);
        snprintf(why, sizeof why, "re.error: %s at position %zu", (const char *)buf, (size_t)off);
        sqlite3_free(c);
        fail(ctx, 0, why);
        return NULL;
    }
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    c->md = pcre2_match_data_create_from_pattern(c->code, NULL);
    c->mctx = pcre2_match_context_create(NULL);
    if (!c->md || !c->mctx) {
        compiled_free(c);
        sqlite3_result_error_nomem(ctx);
        return NULL;
    }
    pcre2_set_match_limit(c->mctx, REGEXP_MATCH_LIMIT);
    return c;
}

static void fn_regexp(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    int pt = sqlite3_value_type(a[0]), st = sqlite3_value_type(a[1]);
    if (pt == SQLITE_NULL || st == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (pt != SQLITE_TEXT) {
        fail(ctx, 0, "TypeError: the pattern is not a string");
        return;
    }
    if (st == SQLITE_FLOAT || st == SQLITE_BLOB) {
        /* Python matches against str(value): repr of a float or of bytes */
        fail(ctx, 1, "the value is a float or bytes");
        return;
    }
    compiled *c = sqlite3_get_auxdata(ctx, 0);
    if (!c) {
        const char *pat = (const char *)sqlite3_value_text(a[0]);
        if (!pat) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        if (!(c = compile(ctx, pat, sqlite3_value_bytes(a[0]))))
            return;
        sqlite3_set_auxdata(ctx, 0, c, compiled_free);
        if (!(c = sqlite3_get_auxdata(ctx, 0))) { /* SQLite freed it: out of memory */
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
    const unsigned char *s = sqlite3_value_text(a[1]); /* an integer reads as its digits */
    int n = sqlite3_value_bytes(a[1]);
    if (!s) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int rc = pcre2_match(c->code, s, (PCRE2_SIZE)n, 0, 0, c->md, c->mctx);
    if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH) {
        sqlite3_result_int(ctx, rc >= 0);
        return;
    }
    if (rc == PCRE2_ERROR_MATCHLIMIT) {
        fail(ctx, 1, "the match needs more backtracking than the worker allows");
        return;
    }
    PCRE2_UCHAR buf[160];
    pcre2_get_error_message(rc, buf, sizeof buf);
    fail(ctx, rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21, (const char *)buf);
}

static const mw_django_fn regexp_fns[] = {
    {"regexp", 2, fn_regexp},
    {NULL, 0, NULL},
};

const mw_django_fn *mw_django_regexp_functions(void)
{
    return regexp_fns;
}
