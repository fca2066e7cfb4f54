/* PostgreSQL statement classifier (see sql_classify.h). */
#include "sql_classify.h"

#include <stdio.h>
#include <string.h>

/* ---- lexer -------------------------------------------------------------- */

typedef enum tok_kind {
    T_END = 0, T_WORD, T_STRING, T_SEMI, T_LPAREN, T_OTHER
} tok_kind;

typedef struct tok {
    tok_kind k;
    int quoted;          /* T_WORD from "..." (case kept, never a keyword) */
    int unicode;         /* from U&"...": escapes not decoded, name unknown */
    char word[64];       /* T_WORD: lower-cased unless quoted, cut at 63 */
    size_t len;          /* of word */
} tok;

typedef struct lexer {
    const unsigned char *s;
    size_t n, i;
    int scs;             /* standard_conforming_strings: '\' is plain in '' */
    int plain_backslash; /* a '' string held a backslash */
} lexer;

static int ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int ident_cont(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9');
}

/* Skips blanks and comments; 1 while there is more. */
static int skip_blank(lexer *l)
{
    while (l->i < l->n) {
        unsigned char c = l->s[l->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            l->i++;
        } else if (c == '-' && l->i + 1 < l->n && l->s[l->i + 1] == '-') {
            while (l->i < l->n && l->s[l->i] != '\n' && l->s[l->i] != '\r')
                l->i++;
        } else if (c == '/' && l->i + 1 < l->n && l->s[l->i + 1] == '*') {
            size_t depth = 1; /* PostgreSQL's block comments nest */
            l->i += 2;
            while (l->i < l->n && depth > 0) {
                if (l->s[l->i] == '*' && l->i + 1 < l->n && l->s[l->i + 1] == '/') {
                    depth--;
                    l->i += 2;
                } else if (l->s[l->i] == '/' && l->i + 1 < l->n && l->s[l->i + 1] == '*') {
                    depth++;
                    l->i += 2;
                } else {
                    l->i++;
                }
            }
        } else {
            return 1;
        }
    }
    return 0;
}

typedef enum str_kind { STR_PLAIN, STR_ESCAPE, STR_NO_BACKSLASH } str_kind;

/* l->i is on the opening quote: to after the closing one. */
static void skip_string(lexer *l, str_kind kind)
{
    int backslash = kind == STR_ESCAPE || (kind == STR_PLAIN && !l->scs);
    l->i++;
    while (l->i < l->n) {
        unsigned char c = l->s[l->i];
        if (c == '\\' && kind == STR_PLAIN)
            l->plain_backslash = 1;
        if (c == '\\' && backslash) {
            l->i += 2;
        } else if (c == '\'') {
            if (l->i + 1 < l->n && l->s[l->i + 1] == '\'') {
                l->i += 2; /* '' is a quote */
            } else {
                l->i++;
                return;
            }
        } else {
            l->i++;
        }
    }
    if (l->i > l->n)
        l->i = l->n;
}

/* "..." with "" for a quote: the content into t->word. */
static void quoted_word(lexer *l, tok *t)
{
    size_t k = 0;
    l->i++;
    while (l->i < l->n) {
        unsigned char c = l->s[l->i];
        if (c == '"') {
            if (l->i + 1 < l->n && l->s[l->i + 1] == '"') {
                l->i++;
            } else {
                l->i++;
                break;
            }
        }
        if (k < sizeof t->word - 1)
            t->word[k++] = (char)c;
        l->i++;
    }
    t->word[k] = 0;
    t->len = k;
    t->k = T_WORD;
    t->quoted = 1;
}

/* l->i is on '$': a dollar quote $tag$...$tag$ (skipped whole) gives 1. */
static int dollar_quote(lexer *l)
{
    size_t j = l->i + 1;
    if (j < l->n && ident_start(l->s[j]))
        while (j < l->n && ident_cont(l->s[j]))
            j++;
    if (j >= l->n || l->s[j] != '$')
        return 0;
    size_t tag = j + 1 - l->i; /* "$tag$" */
    const unsigned char *open = l->s + l->i;
    for (size_t k = j + 1; k + tag <= l->n; k++)
        if (l->s[k] == '$' && memcmp(l->s + k, open, tag) == 0) {
            l->i = k + tag;
            return 1;
        }
    l->i = l->n; /* unterminated: the rest is its body */
    return 1;
}

static void next_token(lexer *l, tok *t)
{
    t->k = T_END;
    t->quoted = t->unicode = 0;
    t->word[0] = 0;
    t->len = 0;
    if (!skip_blank(l))
        return;
    unsigned char c = l->s[l->i];
    if (c == ';' || c == '(') {
        t->k = c == ';' ? T_SEMI : T_LPAREN;
        l->i++;
    } else if (c == '\'') {
        skip_string(l, STR_PLAIN);
        t->k = T_STRING;
    } else if (c == '"') {
        quoted_word(l, t);
    } else if (c == '$' && dollar_quote(l)) {
        t->k = T_STRING;
    } else if ((c == 'u' || c == 'U') && l->i + 2 < l->n && l->s[l->i + 1] == '&' &&
               (l->s[l->i + 2] == '\'' || l->s[l->i + 2] == '"')) {
        l->i += 2; /* U&'...' and U&"...": backslash is not an escape there */
        if (l->s[l->i] == '"') {
            quoted_word(l, t);
            t->unicode = 1;
        } else {
            skip_string(l, STR_NO_BACKSLASH);
            t->k = T_STRING;
        }
    } else if (ident_start(c)) {
        size_t start = l->i, k = 0;
        while (l->i < l->n && (ident_cont(l->s[l->i]) || l->s[l->i] == '$')) {
            unsigned char d = l->s[l->i++];
            if (k < sizeof t->word - 1)
                t->word[k++] = (char)(d >= 'A' && d <= 'Z' ? d + 32 : d);
        }
        t->word[k] = 0;
        t->len = k;
        t->k = T_WORD;
        /* E'..', B'..', X'..', N'..': one letter right before the quote */
        if (l->i - start == 1 && l->i < l->n && l->s[l->i] == '\'' &&
            strchr("ebxn", t->word[0])) {
            skip_string(l, t->word[0] == 'e'   ? STR_ESCAPE
                           : t->word[0] == 'n' ? STR_PLAIN
                                               : STR_NO_BACKSLASH);
            t->k = T_STRING;
        }
    } else if (c >= '0' && c <= '9') {
        while (l->i < l->n && (ident_cont(l->s[l->i]) || l->s[l->i] == '.'))
            l->i++;
        t->k = T_OTHER;
    } else {
        l->i++; /* operators and punctuation, one byte at a time */
        t->k = T_OTHER;
    }
}

/* ---- statements --------------------------------------------------------- */

/* Word comparisons against literals (constant-size memcmp: the common
 * path of a point query is a few dozen of these). */
#define IS(t, lit) ((t)->len == sizeof(lit) - 1 && !memcmp((t)->word, lit, sizeof(lit) - 1))
#define STARTS(t, lit) ((t)->len >= sizeof(lit) - 1 && !memcmp((t)->word, lit, sizeof(lit) - 1))

static int read_start(const tok *t)
{
    return IS(t, "select") || IS(t, "with") || IS(t, "values") || IS(t, "table") ||
           IS(t, "show") || IS(t, "explain");
}

/* In a statement that reads, these write or lock. */
static int read_write(const tok *t)
{
    return IS(t, "insert") || IS(t, "update") || IS(t, "delete") || IS(t, "merge") ||
           IS(t, "into");
}

/* The other words a PostgreSQL statement starts with (a first word outside
 * these and read_start is a syntax error on the server too). */
static int statement_start(const tok *t)
{
    static const char *const kw[] = {
        "abort", "alter", "analyze", "analyse", "begin", "call", "checkpoint", "close",
        "cluster", "comment", "commit", "copy", "create", "deallocate", "declare",
        "delete", "discard", "do", "drop", "end", "execute", "fetch", "grant",
        "import", "insert", "listen", "load", "lock", "merge", "move", "notify",
        "prepare", "reassign", "refresh", "reindex", "release", "reset", "revoke",
        "rollback", "savepoint", "security", "set", "start", "truncate", "unlisten",
        "update", "vacuum", NULL};
    for (const char *const *k = kw; *k; k++)
        if (!strcmp(t->word, *k))
            return 1;
    return 0;
}

/* First keywords that control the transaction (PREPARE only when
 * TRANSACTION follows). */
static int tx_start(const tok *t)
{
    return IS(t, "begin") || IS(t, "start") || IS(t, "commit") || IS(t, "end") ||
           IS(t, "rollback") || IS(t, "abort") || IS(t, "savepoint") ||
           IS(t, "release");
}

/* First keywords whose effect outlives the transaction (db_exec). DO runs
 * the client's own code, whose dynamic SQL (EXECUTE) can do all the others. */
static int session_start(const tok *t)
{
    return IS(t, "reset") || IS(t, "prepare") || IS(t, "deallocate") ||
           IS(t, "listen") || IS(t, "load") || IS(t, "declare") || IS(t, "discard") ||
           IS(t, "do");
}

/* Functions whose effect can outlive the transaction, by the name whoever
 * calls them (quoted or not): session advisory locks, set_config, setseed
 * (the session's random() sequence), and functions that run SQL given as
 * text. */
static int session_function(const tok *t)
{
    if ((STARTS(t, "pg_advisory_") || STARTS(t, "pg_try_advisory_")) &&
        !strstr(t->word, "_xact_"))
        return 1;
    return IS(t, "set_config") || IS(t, "setseed") || STARTS(t, "query_to_xml") ||
           IS(t, "ts_stat") || IS(t, "ts_rewrite") || STARTS(t, "dblink");
}

/* Functions that run a query, or read a table or schema, named in a string:
 * what they read is out of the classifier's sight (pg_prepared_statements
 * among it). The family's name, or NULL. Any word that starts so counts
 * (a column named ts_stat too): the classifier does not look ahead for a
 * parenthesis. */
static const char *reads_by_string(const tok *t)
{
    static const char *const prefixes[] = {"query_to_xml", "table_to_xml", "cursor_to_xml",
                                           "schema_to_xml", "database_to_xml", NULL};
    for (const char *const *p = prefixes; *p; p++) {
        size_t n = strlen(*p);
        if (t->len >= n && !memcmp(t->word, *p, n))
            return *p;
    }
    return IS(t, "ts_stat") ? "ts_stat" : IS(t, "ts_rewrite") ? "ts_rewrite" : NULL;
}

/* Functions whose writes a read-only transaction does not stop, or that
 * outlive its ROLLBACK: large objects, notifications, WAL messages, server
 * files. The name, or NULL. */
static const char *writes_anyway(const tok *t)
{
    static const char *const names[] = {
        "lo_create", "lo_creat", "lo_from_bytea", "lo_put", "lowrite", "lo_unlink",
        "lo_truncate", "lo_truncate64", "lo_import", "lo_export", "pg_notify",
        "pg_logical_emit_message", NULL};
    if (!STARTS(t, "lo") && !STARTS(t, "pg_"))
        return NULL; /* most words: no name below starts otherwise */
    for (const char *const *n = names; *n; n++)
        if (t->len == strlen(*n) && !memcmp(t->word, *n, t->len))
            return *n;
    return NULL;
}

typedef struct stmt {
    int ntok;
    int started;          /* the first keyword was seen */
    int reads;            /* it starts with a keyword that reads */
    int explain;
    int pending_set;      /* SET: session-wide unless LOCAL follows */
    int pending_prepare;  /* PREPARE: transaction control if TRANSACTION follows */
    int prev_for;         /* the previous word was FOR */
    int syntax;           /* refused because no statement starts so */
    char refused[MW_SQL_REASON_SIZE]; /* why db_query would refuse it */
} stmt;

#define REFUSE(st, ...)                                                       \
    do {                                                                      \
        if (!(st)->refused[0])                                                \
            snprintf((st)->refused, sizeof (st)->refused, __VA_ARGS__);       \
    } while (0)

static void upper(char *dst, size_t cap, const char *w)
{
    size_t k = 0;
    for (; w[k] && k < cap - 1; k++)
        dst[k] = (char)(w[k] >= 'a' && w[k] <= 'z' ? w[k] - 32 : w[k]);
    dst[k] = 0;
}

static void first_word(stmt *st, const tok *t, mw_sql_class *out)
{
    char kw[24];
    st->started = 1;
    if (t->k != T_WORD || t->quoted) {
        st->syntax = 1;
        REFUSE(st, "the statement does not start with a keyword");
        return;
    }
    upper(kw, sizeof kw, t->word);
    if (read_start(t)) {
        st->reads = 1;
        st->explain = IS(t, "explain");
        return;
    }
    if (!statement_start(t)) {
        st->syntax = 1;
        REFUSE(st, "syntax error: %s starts no PostgreSQL statement", kw);
        return;
    }
    REFUSE(st, "%s is refused: db_query runs one statement that reads (SELECT, "
               "WITH, VALUES, TABLE, SHOW or EXPLAIN without ANALYZE); use "
               "db_exec to change anything", kw);
    if (IS(t, "set"))
        st->pending_set = 1;
    else if (session_start(t))
        out->session_state = 1;
    if (tx_start(t))
        out->tx_control = 1;
    st->pending_prepare = IS(t, "prepare");
}

static void word(stmt *st, const tok *t, mw_sql_class *out)
{
    if (t->unicode) {
        /* \XXXX escapes could spell any name below */
        out->session_state = 1;
        REFUSE(st, "U&\"...\" identifiers are refused in db_query: write the "
                   "name as plain or quoted text");
    }
    if (session_function(t))
        out->session_state = 1;
    if (STARTS(t, "dblink"))
        REFUSE(st, "dblink is refused: it runs SQL on a connection of its own, "
                   "outside the read-only transaction");
    if (IS(t, "pg_prepared_statements") || IS(t, "pg_prepared_statement"))
        REFUSE(st, "pg_prepared_statements is refused: it shows the statements "
                   "the worker prepared for other clients");
    const char *by_string = reads_by_string(t);
    if (by_string)
        REFUSE(st, "%s is refused in db_query: what it reads is named in a "
                   "string, out of the worker's sight (pg_prepared_statements, say)",
               by_string);
    if (IS(t, "pg_terminate_backend") || IS(t, "pg_cancel_backend"))
        REFUSE(st, "%s is refused in db_query: it ends other sessions' work, other "
                   "clients' on the worker's own connections among them",
               IS(t, "pg_cancel_backend") ? "pg_cancel_backend" : "pg_terminate_backend");
    const char *writer = writes_anyway(t);
    if (writer)
        REFUSE(st, "%s is refused in db_query: it writes what a read-only "
                   "transaction does not stop (large objects, notifications, WAL, "
                   "server files); use db_exec", writer);
    /* pg_temp names the session's temporary schema: what is made there
     * lives as long as the connection, as with TEMP */
    if (STARTS(t, "pg_temp"))
        out->session_state = 1;
    /* before the quoted words leave: EXPLAIN ("analyze") is ANALYZE */
    if (st->explain && (IS(t, "analyze") || IS(t, "analyse")))
        REFUSE(st, "EXPLAIN ANALYZE runs the statement: refused in db_query");
    if (st->explain && IS(t, "execute"))
        REFUSE(st, "EXPLAIN EXECUTE shows a prepared statement of the connection "
                   "(another client's): refused in db_query");
    if (t->quoted)
        return;
    if (IS(t, "temp") || IS(t, "temporary"))
        out->session_state = 1; /* a temporary table lives as long as the session */
    if (st->reads && read_write(t)) {
        char kw[24];
        upper(kw, sizeof kw, t->word);
        REFUSE(st, "%s is refused in db_query (a data-modifying WITH, SELECT "
                   "INTO or FOR UPDATE); use db_exec", kw);
    }
    if (st->reads && st->prev_for && (IS(t, "share") || IS(t, "no") || IS(t, "key")))
        REFUSE(st, "SELECT ... FOR SHARE/KEY SHARE/NO KEY UPDATE locks rows: "
                   "refused in db_query");
}

/* Clears st without its reason buffer (the hot path of short queries). */
static void stmt_reset(stmt *st)
{
    st->ntok = st->started = st->reads = st->explain = 0;
    st->pending_set = st->pending_prepare = st->prev_for = st->syntax = 0;
    st->refused[0] = 0;
}

static void classify(const char *sql, size_t len, int scs, mw_sql_class *out,
                     int *plain_backslash)
{
    lexer l = {(const unsigned char *)sql, len, 0, scs, 0};
    stmt st;
    tok t;
    out->verdict = MW_SQL_READ;
    out->nstatements = 0;
    out->session_state = 0;
    out->tx_control = 0;
    out->reason[0] = 0;
    memcpy(out->sqlstate, "25006", 6);
    stmt_reset(&st);
    int reads = 1;
    for (;;) {
        next_token(&l, &t);
        if (t.k == T_END || t.k == T_SEMI) {
            if (st.ntok > 0) {
                out->nstatements++;
                if (st.pending_set)
                    out->session_state = 1;
                if (!st.reads || st.refused[0]) {
                    if (reads) {
                        memcpy(out->reason, st.refused, sizeof out->reason);
                        if (st.syntax)
                            memcpy(out->sqlstate, "42601", 6);
                    }
                    reads = 0;
                }
            }
            if (t.k == T_END)
                break;
            stmt_reset(&st);
            continue;
        }
        st.ntok++;
        if (!st.started) {
            if (t.k == T_LPAREN)
                continue; /* (SELECT ...) */
            first_word(&st, &t, out);
        } else if (st.pending_prepare) {
            if (t.k == T_WORD && !t.quoted && IS(&t, "transaction"))
                out->tx_control = 1;
            st.pending_prepare = 0;
        } else if (st.pending_set) {
            if (!(t.k == T_WORD && !t.quoted && IS(&t, "local")))
                out->session_state = 1;
            st.pending_set = 0;
        }
        if (t.k == T_WORD)
            word(&st, &t, out);
        st.prev_for = t.k == T_WORD && !t.quoted && IS(&t, "for");
    }
    out->verdict = out->nstatements == 0 ? MW_SQL_EMPTY
                   : reads               ? MW_SQL_READ
                                         : MW_SQL_OTHER;
    *plain_backslash = l.plain_backslash;
}

void mw_sql_classify(const char *sql, size_t len, mw_sql_class *out)
{
    int backslash = 0, ignored;
    classify(sql, len, 1, out, &backslash);
    if (!backslash)
        return;
    /* a backslash in a '' string: the server's standard_conforming_strings
     * decides where the string ends; both readings must agree */
    mw_sql_class off;
    classify(sql, len, 0, &off, &ignored);
    if (off.verdict != out->verdict || off.nstatements != out->nstatements) {
        out->verdict = MW_SQL_OTHER;
        memcpy(out->sqlstate, "25006", 6);
        snprintf(out->reason, sizeof out->reason,
                 "a backslash in a '' string makes the statement ambiguous "
                 "(standard_conforming_strings); write E'...' or a parameter");
    }
    out->session_state |= off.session_state;
    out->tx_control |= off.tx_control;
}
