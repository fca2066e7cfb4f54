/* The placeholder lexer and the SQL rewrite (see params.h). */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"
#include "zalloc.h"

static int ident_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c >= 0x80;
}

static int ident_char(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Skips a quoted run starting at s[i] == q; a doubled q is an escaped q;
 * backslash escapes when bs. Returns the index after the closing quote, or
 * len when unterminated. */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q, int bs)
{
    i++;
    while (i < len) {
        if (bs && s[i] == '\\') {
            i += 2;
            continue;
        }
        if (s[i] == q) {
            if (i + 1 < len && s[i + 1] == q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i++;
    }
    return len;
}

/* At s[i] == '$' (not inside an identifier): the length of a dollar-quote
 * tag "$tag$" or "$$", or 0 when this is not one. */
static size_t dollar_tag(const char *s, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && s[j] == '$')
        return 2;
    if (j >= len || !ident_start((unsigned char)s[j]))
        return 0;
    while (j < len && (ident_start((unsigned char)s[j]) || is_digit((unsigned char)s[j])))
        j++;
    if (j < len && s[j] == '$')
        return j - i + 1;
    return 0;
}

/* A string literal or quoted identifier at s[i]: the index after it, or i
 * when none starts there. */
static size_t skip_quoted_text(const char *s, size_t len, size_t i, mw_dialect d)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '\'') {
        /* E'...' (PostgreSQL) takes backslash escapes; xE'...' is not one */
        unsigned char prev = i > 0 ? (unsigned char)s[i - 1] : ' ';
        int bs = d == MW_DIALECT_PG && i > 0 && (prev == 'E' || prev == 'e') &&
                 (i < 2 || !ident_char((unsigned char)s[i - 2]));
        return skip_quoted(s, len, i, '\'', bs);
    }
    if (c == '"')
        return skip_quoted(s, len, i, '"', 0);
    if (d != MW_DIALECT_SQLITE)
        return i;
    if (c == '`')
        return skip_quoted(s, len, i, '`', 0);
    if (c == '[') {
        const char *e = memchr(s + i, ']', len - i);
        return e ? (size_t)(e - s) + 1 : len;
    }
    return i;
}

/* A comment at s[i]: the index after it, or i when none starts there.
 * PostgreSQL nests block comments; SQLite does not. */
static size_t skip_comment(const char *s, size_t len, size_t i, mw_dialect d)
{
    if (i + 1 >= len)
        return i;
    if (s[i] == '-' && s[i + 1] == '-') {
        const char *e = memchr(s + i, '\n', len - i);
        return e ? (size_t)(e - s) + 1 : len;
    }
    if (s[i] != '/' || s[i + 1] != '*')
        return i;
    int depth = 1;
    i += 2;
    while (i < len && depth > 0) {
        if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
            depth--;
            i += 2;
        } else if (d == MW_DIALECT_PG && s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
            depth++;
            i += 2;
        } else {
            i++;
        }
    }
    return i;
}

/* SQLite's own placeholders (?, ?N, @x, $x, :x not ASCII), refused later:
 * one byte, marked '?'. */
static size_t sqlite_placeholder(size_t i, mw_placeholder *ph)
{
    *ph = (mw_placeholder){i, 1, '?', 0, NULL, 0};
    return i + 1;
}

/* At s[i] == '$': a positional placeholder $n, a dollar-quoted string
 * (PostgreSQL), a $ inside an identifier (PostgreSQL allows it there) or
 * SQLite's $x. Returns the index after it. */
static size_t dollar_token(const char *s, size_t len, size_t i, mw_dialect d,
                           mw_placeholder *ph)
{
    size_t tl;
    if (i > 0 && ident_char((unsigned char)s[i - 1]))
        return i + 1;
    if (i + 1 < len && is_digit((unsigned char)s[i + 1])) {
        size_t j = i + 1;
        uint64_t n = 0;
        while (j < len && is_digit((unsigned char)s[j])) {
            if (n <= 100000000)
                n = n * 10 + (uint64_t)(s[j] - '0');
            j++;
        }
        *ph = (mw_placeholder){i, j - i, '$', n > 100000000 ? 0 : (uint32_t)n, NULL, 0};
        return j;
    }
    if (d == MW_DIALECT_PG && (tl = dollar_tag(s, len, i)) > 0) {
        /* up to the same tag again */
        for (size_t j = i + tl; j + tl <= len; j++)
            if (s[j] == '$' && memcmp(s + j, s + i, tl) == 0)
                return j + tl;
        return len;
    }
    if (d == MW_DIALECT_SQLITE && i + 1 < len && ident_start((unsigned char)s[i + 1]))
        return sqlite_placeholder(i, ph);
    return i + 1;
}

/* At s[i] == ':': a cast ::, a named placeholder :name (ASCII), or
 * SQLite's :x with a non-ASCII name. Returns the index after it. */
static size_t colon_token(const char *s, size_t len, size_t i, mw_dialect d,
                          mw_placeholder *ph)
{
    if (i + 1 >= len)
        return i + 1;
    unsigned char next = (unsigned char)s[i + 1];
    if (next == ':')
        return i + 2;
    if (ident_start(next) && next < 0x80) {
        size_t j = i + 1;
        while (j < len && (unsigned char)s[j] < 0x80 &&
               (ident_start((unsigned char)s[j]) || is_digit((unsigned char)s[j])))
            j++;
        *ph = (mw_placeholder){i, j - i, ':', 0, s + i + 1, j - i - 1};
        return j;
    }
    if (d == MW_DIALECT_SQLITE && ident_start(next))
        return sqlite_placeholder(i, ph);
    return i + 1;
}

/* The token at s[i]: sets ph->kind when it is a placeholder (else 0) and
 * returns the index after it. */
static size_t next_token(const char *s, size_t len, size_t i, mw_dialect d,
                         mw_placeholder *ph)
{
    unsigned char c = (unsigned char)s[i];
    size_t end;
    ph->kind = 0;
    if ((end = skip_quoted_text(s, len, i, d)) > i)
        return end;
    if ((end = skip_comment(s, len, i, d)) > i)
        return end;
    if (c == '$')
        return dollar_token(s, len, i, d, ph);
    if (c == ':')
        return colon_token(s, len, i, d, ph);
    if (d == MW_DIALECT_SQLITE &&
        (c == '?' || (c == '@' && i + 1 < len && ident_start((unsigned char)s[i + 1]))))
        return sqlite_placeholder(i, ph);
    return i + 1;
}

/* The bytes at which next_token may find more than one plain byte: a
 * quote, a comment, a placeholder (or a dollar-quoted string). */
static const unsigned char token_start[256] = {
    ['\''] = 1, ['"'] = 1, ['`'] = 1, ['['] = 1, ['-'] = 1, ['/'] = 1,
    ['$'] = 1, [':'] = 1, ['?'] = 1, ['@'] = 1,
};

int mw_params_scan(const char *s, size_t len, mw_dialect d,
                   int (*cb)(void *ud, const mw_placeholder *ph), void *ud)
{
    size_t i = 0;
    while (i < len) {
        if (!token_start[(unsigned char)s[i]]) {
            i++;
            continue;
        }
        mw_placeholder ph;
        i = next_token(s, len, i, d, &ph);
        if (ph.kind) {
            int r = cb(ud, &ph);
            if (r)
                return r;
        }
    }
    return 0;
}

/* ---- rewrite ------------------------------------------------------------ */

/* A named value: its name and its index in the request's values. */
typedef struct named_value {
    const char *name;
    size_t len;
    size_t value;
} named_value;

/* The order of the sorted names: by length, then bytes. */
static int name_cmp(const void *a, const void *b)
{
    const named_value *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->name, y->name, x->len);
}

/* The n names sorted into *out, so that a name given twice has its twin
 * next to it and a placeholder's name is a binary search: n log n for any
 * names (comparing every pair took seconds of the loop thread for 65,535
 * of them, and a hash of names the client picks could be made to collide).
 * 0, -1 (err: a name given twice) or -2 (out of memory). */
static int sort_names(const mw_param_name *names, size_t n, named_value **out,
                      char err[MW_PARAMS_ERR_SIZE])
{
    named_value *v = malloc(n * sizeof *v);
    if (!v)
        return -2;
    for (size_t i = 0; i < n; i++)
        v[i] = (named_value){names[i].name, names[i].len, i};
    qsort(v, n, sizeof *v, name_cmp);
    for (size_t i = 1; i < n; i++)
        if (name_cmp(&v[i - 1], &v[i]) == 0) {
            snprintf(err, MW_PARAMS_ERR_SIZE, "parameter :%.*s is given twice",
                     (int)(v[i].len > 64 ? 64 : v[i].len), v[i].name);
            free(v);
            return -1;
        }
    *out = v;
    return 0;
}

typedef struct rw_state {
    const char *sql;
    size_t len;
    mw_dialect d;
    mw_param_mode mode;
    size_t nvalues;
    const named_value *sorted; /* NAMED: the names, sorted (sort_names) */
    molt_db_buf out;
    size_t copied;        /* SQL bytes up to here are in out */
    size_t nslots;
    size_t *slot_value;   /* nvalues entries */
    size_t *value_slot;   /* value i -> slot + 1, 0: unused so far */
    char *err;
} rw_state;

static int rw_fail(rw_state *st, const char *fmt, const char *a, size_t alen)
{
    snprintf(st->err, MW_PARAMS_ERR_SIZE, fmt, (int)(alen > 64 ? 64 : alen), a);
    return -1;
}

static int rw_cb(void *ud, const mw_placeholder *ph)
{
    rw_state *st = ud;
    size_t value;
    if (ph->kind == '?')
        return rw_fail(st, "unsupported placeholder \"%.*s\": use $1 or :name",
                       st->sql + ph->start, ph->len);
    if (ph->kind == '$') {
        if (st->mode == MW_PARAMS_NAMED)
            return rw_fail(st, "positional placeholder %.*s in a query with named "
                           "parameters", st->sql + ph->start, ph->len);
        if (ph->number == 0)
            return rw_fail(st, "placeholder %.*s is out of range",
                           st->sql + ph->start, ph->len);
        if (ph->number > st->nvalues)
            return rw_fail(st, "no value for placeholder %.*s",
                           st->sql + ph->start, ph->len);
        value = ph->number - 1;
    } else {
        if (st->mode == MW_PARAMS_POSITIONAL)
            return rw_fail(st, "named placeholder %.*s in a query with positional "
                           "parameters", st->sql + ph->start, ph->len);
        named_value key = {ph->name, ph->name_len, 0};
        const named_value *found = st->nvalues
            ? bsearch(&key, st->sorted, st->nvalues, sizeof key, name_cmp) : NULL;
        if (!found)
            return rw_fail(st, "no value for placeholder %.*s",
                           st->sql + ph->start, ph->len);
        value = found->value;
    }
    if (st->mode == MW_PARAMS_NONE) /* unreachable: nvalues is 0 */
        return -1;
    int first = st->value_slot[value] == 0;
    if (first) {
        st->slot_value[st->nslots] = value;
        st->value_slot[value] = ++st->nslots;
    }
    /* copy the SQL before the placeholder, then the slot reference: on
     * SQLite a slot's first one is a bare `?`, which takes the number after
     * the largest so far, the slot's own (SQLite's prepare takes time
     * quadratic in the `?k` of a statement: 1.2 s for 30,000) */
    molt_db_buf_put(&st->out, st->sql + st->copied, ph->start - st->copied);
    char ref[24];
    size_t n = sizeof ref, slot = st->value_slot[value];
    if (st->d == MW_DIALECT_PG || !first)
        do
            ref[--n] = (char)('0' + slot % 10);
        while ((slot /= 10) != 0);
    ref[--n] = st->d == MW_DIALECT_PG ? '$' : '?';
    molt_db_buf_put(&st->out, ref + n, sizeof ref - n);
    st->copied = ph->start + ph->len;
    return 0;
}

int mw_params_rewrite(const char *sql, size_t len, mw_dialect d,
                      mw_param_mode mode, size_t nvalues,
                      const mw_param_name *names, mw_rewrite *out,
                      char err[MW_PARAMS_ERR_SIZE])
{
    memset(out, 0, sizeof *out);
    if (memchr(sql, 0, len)) {
        snprintf(err, MW_PARAMS_ERR_SIZE, "sql contains a NUL byte");
        return -1;
    }
    if (mode == MW_PARAMS_NONE)
        nvalues = 0;
    named_value *sorted = NULL;
    if (mode == MW_PARAMS_NAMED && nvalues) {
        int rc = sort_names(names, nvalues, &sorted, err);
        if (rc)
            return rc;
    }
    rw_state st = {sql, len, d, mode, nvalues, sorted, {0}, 0, 0, NULL, NULL, err};
    molt_db_buf_init(&st.out);
    if (nvalues) {
        st.slot_value = mw_zalloc(nvalues, sizeof *st.slot_value);
        st.value_slot = mw_zalloc(nvalues, sizeof *st.value_slot);
        if (!st.slot_value || !st.value_slot) {
            free(sorted);
            free(st.slot_value);
            free(st.value_slot);
            return -2;
        }
    }
    int rc = mw_params_scan(sql, len, d, rw_cb, &st);
    if (rc == 0) {
        for (size_t i = 0; i < nvalues; i++)
            if (!st.value_slot[i]) {
                if (mode == MW_PARAMS_NAMED)
                    rc = rw_fail(&st, "parameter :%.*s is not used by the query",
                                 names[i].name, names[i].len);
                else {
                    snprintf(err, MW_PARAMS_ERR_SIZE,
                             "parameter $%zu is not used by the query", i + 1);
                    rc = -1;
                }
                break;
            }
    }
    if (rc == 0) {
        molt_db_buf_put(&st.out, sql + st.copied, len - st.copied);
        molt_db_buf_put_u8(&st.out, 0);
        if (molt_db_buf_ok(&st.out) != MOLT_DB_OK)
            rc = -2;
    }
    free(sorted);
    free(st.value_slot);
    if (rc != 0) {
        molt_db_buf_free(&st.out);
        free(st.slot_value);
        return rc < 0 ? rc : -1;
    }
    out->sql = (char *)st.out.data;
    out->sql_len = st.out.len - 1;
    out->nslots = st.nslots;
    out->slot_value = st.slot_value;
    return 0;
}

size_t mw_params_max(mw_dialect d)
{
    return d == MW_DIALECT_PG ? MW_PARAMS_MAX_PG : MW_PARAMS_MAX_SQLITE;
}

void mw_rewrite_free(mw_rewrite *r)
{
    if (!r)
        return;
    free(r->sql);
    free(r->slot_value);
    memset(r, 0, sizeof *r);
}
