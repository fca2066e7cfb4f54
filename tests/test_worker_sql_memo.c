/*
 * The SQL memo (worker/sql_memo.h): what it hands out equals what the
 * rewrite and the classifier compute, for the same key only; named
 * parameters and long SQL are never kept; a slot taken by another SQL
 * never answers for the first; and through mw_query_parse, a statement
 * parsed again (a hit) is refused or rewritten exactly as the first time,
 * with db_query's and db_exec's own rules still applied per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "config.h"
#include "payload.h"
#include "sql_memo.h"
#include "test.h"

/* Computes what the memo keeps for sql, as payload.c does. */
static void compute(const char *sql, mw_dialect d, mw_param_mode mode, size_t nvalues,
                    mw_sql_derived *out)
{
    char err[MW_PARAMS_ERR_SIZE];
    memset(out, 0, sizeof *out);
    ASSERT_EQ_INT(mw_params_rewrite(sql, strlen(sql), d, mode, nvalues, NULL, &out->rw, err), 0);
    if (d == MW_DIALECT_PG) {
        mw_sql_classify(out->rw.sql, out->rw.sql_len, &out->cls);
        out->have_class = 1;
    }
}

static void assert_same(const mw_sql_derived *a, const mw_sql_derived *b, size_t nvalues)
{
    ASSERT_EQ_STR(a->rw.sql, b->rw.sql);
    ASSERT_EQ_UINT(a->rw.sql_len, b->rw.sql_len);
    ASSERT_EQ_UINT(a->rw.nslots, b->rw.nslots);
    for (size_t i = 0; i < nvalues; i++)
        ASSERT_EQ_UINT(a->rw.slot_value[i], b->rw.slot_value[i]);
    ASSERT_EQ_INT(a->have_class, b->have_class);
    ASSERT_EQ_INT(a->cls.verdict, b->cls.verdict);
    ASSERT_EQ_UINT(a->cls.nstatements, b->cls.nstatements);
    ASSERT_EQ_INT(a->cls.session_state, b->cls.session_state);
    ASSERT_EQ_INT(a->cls.tx_control, b->cls.tx_control);
    ASSERT_EQ_STR(a->cls.reason, b->cls.reason);
    ASSERT_EQ_STR(a->cls.sqlstate, b->cls.sqlstate);
}

static void test_hit_equals_computed(void)
{
    static const char *sqls[] = {"SELECT $1", "SELECT $2, $1, $2", "DELETE FROM t WHERE a = $1",
                                 "SELECT 1; SELECT 2", "SET search_path = x", "COMMIT",
                                 "SELECT '\\' ", "  -- only a comment"};
    mw_sql_memo *memo = NULL;
    for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
        const char *sql = sqls[i];
        size_t nv = strstr(sql, "$2") ? 2 : strstr(sql, "$1") ? 1 : 0;
        mw_param_mode mode = nv ? MW_PARAMS_POSITIONAL : MW_PARAMS_NONE;
        mw_sql_derived want, got;
        compute(sql, MW_DIALECT_PG, mode, nv, &want);
        ASSERT_EQ_INT(mw_sql_memo_get(memo, sql, strlen(sql), MW_DIALECT_PG, mode, nv, &got), 0);
        mw_sql_memo_put(&memo, sql, strlen(sql), MW_DIALECT_PG, mode, nv, &want);
        ASSERT(memo != NULL);
        ASSERT_EQ_INT(mw_sql_memo_get(memo, sql, strlen(sql), MW_DIALECT_PG, mode, nv, &got), 1);
        assert_same(&want, &got, nv);
        /* the memo's own copy, shared: released, and the memo keeps it */
        ASSERT(got.rw.sql != want.rw.sql && got.shared != NULL);
        mw_sql_memo_release(got.shared);
        /* another key misses: dialect, mode, number of values, bytes */
        ASSERT_EQ_INT(mw_sql_memo_get(memo, sql, strlen(sql), MW_DIALECT_SQLITE, mode, nv, &got), 0);
        if (mode == MW_PARAMS_POSITIONAL)
            ASSERT_EQ_INT(mw_sql_memo_get(memo, sql, strlen(sql), MW_DIALECT_PG, mode, nv + 1,
                                          &got), 0);
        ASSERT_EQ_INT(mw_sql_memo_get(memo, sql, strlen(sql) - 1, MW_DIALECT_PG, mode, nv, &got), 0);
        mw_rewrite_free(&want.rw);
    }
    mw_sql_memo_free(memo);
}

static void test_not_kept(void)
{
    mw_sql_memo *memo = NULL;
    mw_sql_derived v, got;
    compute("SELECT 1", MW_DIALECT_PG, MW_PARAMS_NONE, 0, &v);
    /* named parameters: the names are part of the rewrite's input */
    mw_sql_memo_put(&memo, "SELECT 1", 8, MW_DIALECT_PG, MW_PARAMS_NAMED, 0, &v);
    ASSERT_EQ_INT(mw_sql_memo_get(memo, "SELECT 1", 8, MW_DIALECT_PG, MW_PARAMS_NAMED, 0, &got), 0);
    /* SQL above MW_SQL_MEMO_MAX_SQL bytes */
    size_t n = MW_SQL_MEMO_MAX_SQL + 1;
    char *big = malloc(n + 1);
    ASSERT(big != NULL);
    memset(big, ' ', n);
    memcpy(big, "SELECT 1", 8);
    big[n] = 0;
    mw_sql_derived bv;
    compute(big, MW_DIALECT_PG, MW_PARAMS_NONE, 0, &bv);
    mw_sql_memo_put(&memo, big, n, MW_DIALECT_PG, MW_PARAMS_NONE, 0, &bv);
    ASSERT_EQ_INT(mw_sql_memo_get(memo, big, n, MW_DIALECT_PG, MW_PARAMS_NONE, 0, &got), 0);
    mw_rewrite_free(&bv.rw);
    free(big);
    mw_rewrite_free(&v.rw);
    mw_sql_memo_free(memo);
}

/* Many more SQL texts than slots: each get either misses or answers for
 * exactly its own SQL. */
static void test_slots_replaced(void)
{
    mw_sql_memo *memo = NULL;
    char sql[64];
    for (int i = 0; i < 20 * MW_SQL_MEMO_SLOTS; i++) {
        snprintf(sql, sizeof sql, i % 2 ? "SELECT %d" : "DELETE FROM t%d", i);
        mw_sql_derived v;
        compute(sql, MW_DIALECT_PG, MW_PARAMS_NONE, 0, &v);
        mw_sql_memo_put(&memo, sql, strlen(sql), MW_DIALECT_PG, MW_PARAMS_NONE, 0, &v);
        mw_rewrite_free(&v.rw);
    }
    int hits = 0;
    for (int i = 0; i < 20 * MW_SQL_MEMO_SLOTS; i++) {
        snprintf(sql, sizeof sql, i % 2 ? "SELECT %d" : "DELETE FROM t%d", i);
        mw_sql_derived want, got;
        if (!mw_sql_memo_get(memo, sql, strlen(sql), MW_DIALECT_PG, MW_PARAMS_NONE, 0, &got))
            continue;
        hits++;
        compute(sql, MW_DIALECT_PG, MW_PARAMS_NONE, 0, &want);
        assert_same(&want, &got, 0);
        mw_rewrite_free(&want.rw);
        mw_sql_memo_release(got.shared);
    }
    ASSERT(hits > 0 && hits <= MW_SQL_MEMO_SLOTS);
    mw_sql_memo_free(memo);
}

/* A statement's reference keeps its rewrite after the memo let go of it
 * (its slot replaced, or the memo freed at a reload): read under ASan. */
static void test_reference_outlives_the_memo(void)
{
    mw_sql_memo *memo = NULL;
    mw_sql_derived v, got, again;
    compute("SELECT $1", MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 1, &v);
    mw_sql_memo_put(&memo, "SELECT $1", 9, MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 1, &v);
    ASSERT_EQ_INT(mw_sql_memo_get(memo, "SELECT $1", 9, MW_DIALECT_PG,
                                  MW_PARAMS_POSITIONAL, 1, &got), 1);
    /* put again: the slot now holds another copy, got keeps the first */
    mw_sql_memo_put(&memo, "SELECT $1", 9, MW_DIALECT_PG, MW_PARAMS_POSITIONAL, 1, &v);
    ASSERT_EQ_INT(mw_sql_memo_get(memo, "SELECT $1", 9, MW_DIALECT_PG,
                                  MW_PARAMS_POSITIONAL, 1, &again), 1);
    ASSERT(again.shared != got.shared);
    mw_sql_memo_free(memo);
    ASSERT_EQ_STR(got.rw.sql, "SELECT $1");
    ASSERT_EQ_UINT(got.rw.slot_value[0], 0);
    ASSERT_EQ_STR(again.rw.sql, "SELECT $1");
    mw_sql_memo_release(got.shared);
    mw_sql_memo_release(again.shared);
    mw_rewrite_free(&v.rw);
}

/* A db_query or db_exec payload {"sql": sql} on alias "default". */
static int parse(mw_config *cfg, int write, const char *sql, mw_query *q, char msg[MW_MSG_SIZE])
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, write ? 2 : 1);
    msgpack_pack_str_with_body(&pk, "sql", 3);
    msgpack_pack_str_with_body(&pk, sql, strlen(sql));
    if (write) {
        msgpack_pack_str_with_body(&pk, "allow_write", 11);
        msgpack_pack_true(&pk);
    }
    int rc = mw_query_parse(q, write, cfg, (const uint8_t *)sb.data, sb.size, msg);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void test_parse_through_memo(void)
{
    static char *argv[] = {"--stdio", "--db", "default=postgresql://u@h/d",
                           "--allow-write", "default"};
    mw_config cfg;
    char err[MW_ERR_SIZE], msg[MW_MSG_SIZE];
    mw_config_init(&cfg);
    FILE *devnull = fopen("/dev/null", "w");
    ASSERT_EQ_INT(mw_config_parse_args(&cfg, 5, argv, devnull, err), 0);
    fclose(devnull);
    mw_alias *a = mw_config_alias(&cfg, "default", 7);
    ASSERT(a != NULL && a->sql_memo == NULL);
    for (int round = 0; round < 3; round++) {
        mw_query q;
        /* a read: rewritten alike each time */
        ASSERT_EQ_INT(parse(&cfg, 0, "SELECT 1", &q, msg), 0);
        ASSERT_EQ_STR(q.stmts[0].rw.sql, "SELECT 1");
        ASSERT_EQ_STR(q.refused, "");
        mw_query_free(&q);
        ASSERT(a->sql_memo != NULL);
        /* a write as db_query: refused each time */
        ASSERT_EQ_INT(parse(&cfg, 0, "DELETE FROM t", &q, msg), 0);
        ASSERT_EQ_STR(q.refused_sqlstate, "25006");
        mw_query_free(&q);
        /* the same SQL as db_exec: runs, the memo does not carry the refusal */
        ASSERT_EQ_INT(parse(&cfg, 1, "DELETE FROM t", &q, msg), 0);
        ASSERT_EQ_STR(q.refused, "");
        mw_query_free(&q);
        /* transaction control: refused by db_exec too */
        ASSERT_EQ_INT(parse(&cfg, 1, "COMMIT", &q, msg), 0);
        ASSERT_EQ_STR(q.refused_sqlstate, "42501");
        mw_query_free(&q);
        /* no statement at all stays InvalidInput */
        ASSERT_EQ_INT(parse(&cfg, 0, "-- nothing", &q, msg), -1);
        ASSERT_CONTAINS(msg, "sql has no statement");
        mw_query_free(&q);
    }
    mw_config_free(&cfg);
}

TEST_MAIN(TEST_ENTRY(test_hit_equals_computed), TEST_ENTRY(test_not_kept),
          TEST_ENTRY(test_slots_replaced), TEST_ENTRY(test_reference_outlives_the_memo),
          TEST_ENTRY(test_parse_through_memo))
