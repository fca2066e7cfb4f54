/*
 * The worker's placeholder lexer and SQL rewrite (worker/params.c):
 * literals, quoted identifiers, comments, dollar quotes and casts are never
 * placeholders; missing and unused values are named in the error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "test.h"

/* The placeholders of sql, space-separated ("$1 :a"). */
typedef struct found {
    const char *sql;
    char text[256];
    int n;
} found;

static int collect(void *ud, const mw_placeholder *ph)
{
    found *f = ud;
    size_t used = strlen(f->text);
    snprintf(f->text + used, sizeof f->text - used, "%s%.*s", f->n ? " " : "",
             (int)ph->len, f->sql + ph->start);
    f->n++;
    return 0;
}

static found scan(const char *sql, mw_dialect d)
{
    found f;
    memset(&f, 0, sizeof f);
    f.sql = sql;
    ASSERT_EQ_INT(mw_params_scan(sql, strlen(sql), d, collect, &f), 0);
    return f;
}

/* Rewrites with positional values; returns the SQL or the error. */
static char out_buf[1024];
static const char *rewrite(const char *sql, mw_dialect d, mw_param_mode mode,
                           size_t n, const char *const *names)
{
    mw_param_name nm[8];
    for (size_t i = 0; names && i < n; i++) {
        nm[i].name = names[i];
        nm[i].len = strlen(names[i]);
    }
    mw_rewrite rw;
    char err[MW_PARAMS_ERR_SIZE];
    int rc = mw_params_rewrite(sql, strlen(sql), d, mode, n, names ? nm : NULL, &rw, err);
    if (rc == 0) {
        snprintf(out_buf, sizeof out_buf, "%s", rw.sql);
        mw_rewrite_free(&rw);
    } else {
        snprintf(out_buf, sizeof out_buf, "ERR %s", err);
    }
    return out_buf;
}

static void test_no_placeholders_in_literals(void)
{
    ASSERT_EQ_INT(scan("select ':a', '$1', 'it''s :b'", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select \":a\", \"x\"\"$1\"", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select 1 -- :a $1\n", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select /* :a /* nested $1 */ :b */ 1", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select $$ :a $1 $$, $tag$ :b $$ $1 $tag$", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select x::int, y::text[]", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select E'\\' :a'", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select foo$1", MW_DIALECT_PG).n, 0);
    /* SQLite: backticks and brackets quote identifiers; no dollar quotes */
    ASSERT_EQ_INT(scan("select `:a`, [:b]", MW_DIALECT_SQLITE).n, 0);
}

static void test_finds_placeholders(void)
{
    ASSERT_EQ_STR(scan("select $1, $2::int, :a, :b::text", MW_DIALECT_PG).text,
                  "$1 $2 :a :b");
    ASSERT_EQ_STR(scan("select '$1' || $1 || ':x' || :x", MW_DIALECT_PG).text, "$1 :x");
    ASSERT_EQ_STR(scan("select $12+:a_b9", MW_DIALECT_PG).text, "$12 :a_b9");
    /* unterminated literal: the rest is the literal */
    ASSERT_EQ_INT(scan("select 'abc :a", MW_DIALECT_PG).n, 0);
    ASSERT_EQ_INT(scan("select $q$ :a", MW_DIALECT_PG).n, 0);
    /* E'' only after a word boundary: the quote after `here` is plain */
    ASSERT_EQ_STR(scan("select here'\\' , :a", MW_DIALECT_PG).text, ":a");
}

static void test_rewrite_named(void)
{
    const char *names[] = {"a", "b"};
    ASSERT_EQ_STR(rewrite("select :b, :a, :b, ':a'", MW_DIALECT_PG, MW_PARAMS_NAMED, 2, names),
                  "select $1, $2, $1, ':a'");
    ASSERT_EQ_STR(rewrite("select :b, :a::int, :b", MW_DIALECT_SQLITE, MW_PARAMS_NAMED, 2,
                          names),
                  "select ?, ?::int, ?1");
    ASSERT_CONTAINS(rewrite("select :a, :c", MW_DIALECT_PG, MW_PARAMS_NAMED, 2, names),
                    "ERR no value for placeholder :c");
    ASSERT_CONTAINS(rewrite("select :a", MW_DIALECT_PG, MW_PARAMS_NAMED, 2, names),
                    "ERR parameter :b is not used");
    const char *dup[] = {"a", "a"};
    ASSERT_CONTAINS(rewrite("select :a", MW_DIALECT_PG, MW_PARAMS_NAMED, 2, dup),
                    "given twice");
    ASSERT_CONTAINS(rewrite("select :a, $1", MW_DIALECT_PG, MW_PARAMS_NAMED, 2, names),
                    "ERR positional placeholder $1");
}

static void test_rewrite_positional(void)
{
    ASSERT_EQ_STR(rewrite("select $2, $1, $2", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 2, NULL),
                  "select $1, $2, $1");
    ASSERT_EQ_STR(rewrite("select $1 + $1", MW_DIALECT_SQLITE, MW_PARAMS_POSITIONAL, 1, NULL),
                  "select ? + ?1");
    ASSERT_EQ_STR(rewrite("select $2, $1, $2", MW_DIALECT_SQLITE, MW_PARAMS_POSITIONAL, 2, NULL),
                  "select ?, ?, ?1");
    ASSERT_CONTAINS(rewrite("select $1, $3", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 2, NULL),
                    "ERR no value for placeholder $3");
    ASSERT_CONTAINS(rewrite("select $1", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 2, NULL),
                    "ERR parameter $2 is not used");
    ASSERT_CONTAINS(rewrite("select $0", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 1, NULL),
                    "out of range");
    ASSERT_CONTAINS(rewrite("select $99999999999", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 1, NULL),
                    "out of range");
    ASSERT_CONTAINS(rewrite("select :a", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 0, NULL),
                    "ERR named placeholder :a");
    /* no params at all: any placeholder is missing */
    ASSERT_CONTAINS(rewrite("select $1", MW_DIALECT_PG, MW_PARAMS_NONE, 0, NULL),
                    "ERR no value for placeholder $1");
    ASSERT_CONTAINS(rewrite("select ?", MW_DIALECT_SQLITE, MW_PARAMS_NONE, 0, NULL),
                    "ERR unsupported placeholder");
    ASSERT_EQ_STR(rewrite("select 1", MW_DIALECT_PG, MW_PARAMS_NONE, 0, NULL), "select 1");
}

/* Many names, given in one order and placed in another: every placeholder
 * gets its own value (names of several lengths, sharing prefixes), and a
 * name given twice is found wherever the two are. */
static void test_rewrite_many_names(void)
{
    enum { N = 20000 };
    char(*text)[16] = malloc(N * sizeof *text);
    mw_param_name *nm = malloc(N * sizeof *nm);
    char *sql = malloc(N * 16 + 16), err[MW_PARAMS_ERR_SIZE];
    ASSERT(text && nm && sql);
    for (size_t i = 0; i < N; i++) { /* given in reverse: p19999 .. p0 */
        snprintf(text[i], sizeof text[i], "p%zu", (size_t)N - 1 - i);
        nm[i] = (mw_param_name){text[i], strlen(text[i])};
    }
    size_t o = (size_t)sprintf(sql, "select");
    for (size_t i = 0; i < N; i++) /* placed p0 .. p19999 */
        o += (size_t)sprintf(sql + o, "%s :p%zu", i ? "," : "", i);
    mw_rewrite rw;
    ASSERT_EQ_INT(mw_params_rewrite(sql, o, MW_DIALECT_PG, MW_PARAMS_NAMED, N, nm, &rw, err), 0);
    ASSERT_EQ_INT((int)rw.nslots, N);
    for (size_t k = 0; k < N; k++) /* slot k is :pk, given at N-1-k */
        ASSERT_EQ_INT((int)rw.slot_value[k], (int)(N - 1 - k));
    mw_rewrite_free(&rw);
    ASSERT_EQ_INT(mw_params_rewrite(sql, o, MW_DIALECT_PG, MW_PARAMS_NAMED, N - 1, nm, &rw,
                                    err), -1);
    ASSERT_CONTAINS(err, "no value for placeholder :p0");
    nm[N - 1] = nm[N - 2]; /* the last two given: p1 twice */
    ASSERT_EQ_INT(mw_params_rewrite(sql, o, MW_DIALECT_PG, MW_PARAMS_NAMED, N, nm, &rw, err), -1);
    ASSERT_CONTAINS(err, "parameter :p1 is given twice");
    free(text);
    free(nm);
    free(sql);
}

static void test_nul_byte(void)
{
    mw_rewrite rw;
    char err[MW_PARAMS_ERR_SIZE];
    ASSERT_EQ_INT(mw_params_rewrite("select 1\0", 9, MW_DIALECT_PG, MW_PARAMS_NONE, 0,
                                    NULL, &rw, err), -1);
    ASSERT_CONTAINS(err, "NUL");
}

TEST_MAIN(TEST_ENTRY(test_no_placeholders_in_literals),
          TEST_ENTRY(test_finds_placeholders), TEST_ENTRY(test_rewrite_named),
          TEST_ENTRY(test_rewrite_positional), TEST_ENTRY(test_rewrite_many_names),
          TEST_ENTRY(test_nul_byte))
