/*
 * The pool behind PgBouncer in transaction mode (MOLT_TEST_BOUNCER_DSN from
 * scripts/with_pg.sh: 2 server connections for every client). PgBouncer
 * hands a client's next transaction to whichever server connection is
 * free, so a statement mode that keeps anything on the server between two
 * Syncs gets another client's unnamed statement, or none. The unnamed and
 * simple modes must give every request its own right answer or its own
 * error; requests are many, concurrent, over three pools, and every SQL
 * text differs from the one before it, so a statement taken from another
 * client shows. (Not pipelined: PgBouncer 1.18 gives the server connection
 * back at the first ReadyForQuery, and answers to what followed reach
 * nobody.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "molt_db/loop_libuv.h"
#include "molt_db/pool.h"
#include "pgtest.h"
#include "test.h"

enum { POOLS = 3, CONNS = 4, PER_POOL = 400, SHAPES = 7 };

typedef struct ans {
    int done, status;
    char val[64];
    char sqlstate[6];
    char msg[1100];
} ans;

static int a_row(void *ud, const molt_db_field *f, size_t n)
{
    ans *a = ud;
    if (n >= 1 && f[0].len >= 0 && (size_t)f[0].len < sizeof a->val) {
        memcpy(a->val, f[0].data, (size_t)f[0].len);
        a->val[f[0].len] = '\0';
    }
    return MOLT_DB_OK;
}

static void a_done(void *ud, int status, const molt_db_error *err)
{
    ans *a = ud;
    ASSERT(!a->done);
    a->done = 1;
    a->status = status;
    if (status != MOLT_DB_OK && err != NULL) {
        snprintf(a->sqlstate, sizeof a->sqlstate, "%s", err->sqlstate);
        snprintf(a->msg, sizeof a->msg, "%s", err->message);
    }
}

static void closed(molt_db_pool *p, void *ud)
{
    (void)p;
    (*(int *)ud)++;
}

/* Every 13th request has a syntax error (the first step fails), every 17th
 * divides by zero (the second step fails); the others answer i * 10 + shape. */
static const char *want_sqlstate(int i)
{
    return i % 13 == 0 ? "42601" : i % 17 == 0 ? "22012" : NULL;
}

/* What request i asks, in the form the mode allows: parameters in unnamed
 * mode, literals in simple mode. */
static void sql_of(molt_db_stmt_mode mode, int i, char *sql, size_t cap)
{
    int shape = i % SHAPES;
    const char *sel = i % 13 == 0 ? "SELEC" : "SELECT";
    const char *div = i % 17 == 0 ? " / 0" : "";
    if (mode == MOLT_DB_STMT_SIMPLE)
        snprintf(sql, cap, "%s (%d * 10 + %d%s)::text AS shape_%d", sel, i, shape, div, shape);
    else
        snprintf(sql, cap, "%s ($1::int4 * 10 + %d%s)::text AS shape_%d", sel, shape, div, shape);
}

static void many_clients(molt_db_stmt_mode mode)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_BOUNCER_DSN");
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    molt_db_loop *ml = NULL;
    ASSERT_OK(molt_db_loop_libuv_new(&loop, &ml, NULL), NULL);
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, &err), &err);
    molt_db_pool *pools[POOLS];
    for (int k = 0; k < POOLS; k++) {
        molt_db_pool_settings s;
        molt_db_pool_settings_init(&s);
        s.max_conns = CONNS;
        s.statement_mode = mode;
        s.max_wait_ms = 60000;
        ASSERT_OK(molt_db_pool_open(ml, ci, &s, &pools[k], &err), &err);
    }
    molt_db_conninfo_free(ci);
    ans *as = calloc(POOLS * PER_POOL, sizeof *as);
    char (*args)[16] = calloc(POOLS * PER_POOL, sizeof *args);
    ASSERT(as && args);
    for (int i = 0; i < POOLS * PER_POOL; i++) {
        char sql[128];
        sql_of(mode, i, sql, sizeof sql);
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = {23, MOLT_DB_FORMAT_TEXT, (int32_t)strlen(args[i]),
                           (const uint8_t *)args[i]};
        molt_db_result_handler h = {NULL, a_row, NULL, a_done, &as[i]};
        molt_db_pool_req_id id;
        ASSERT_OK(molt_db_pool_query(pools[i % POOLS], sql,
                                     mode == MOLT_DB_STMT_SIMPLE ? 0 : 1, &p,
                                     &h, NULL, &id), NULL);
    }
    for (int i = 0; i < POOLS * PER_POOL; i++)
        while (!as[i].done)
            uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < POOLS * PER_POOL; i++) {
        if (want_sqlstate(i) != NULL) {
            ASSERT_CODE(as[i].status, MOLT_DB_ESERVER);
            ASSERT_EQ_STR(as[i].sqlstate, want_sqlstate(i));
            continue;
        }
        if (as[i].status != MOLT_DB_OK)
            FAIL_AT("request %d: %s %s [%s]", i, molt_db_code_name(as[i].status),
                    as[i].msg, as[i].sqlstate);
        char want[32];
        snprintf(want, sizeof want, "%d", i * 10 + i % SHAPES);
        ASSERT_EQ_STR(as[i].val, want);
    }
    int nclosed = 0;
    for (int k = 0; k < POOLS; k++)
        molt_db_pool_close(pools[k], closed, &nclosed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(nclosed, POOLS);
    molt_db_loop_free(ml);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    free(as);
    free(args);
}

TEST(unnamed_mode_many_clients) { many_clients(MOLT_DB_STMT_UNNAMED); }
TEST(simple_mode_many_clients) { many_clients(MOLT_DB_STMT_SIMPLE); }

TEST_MAIN(TEST_ENTRY(unnamed_mode_many_clients),
          TEST_ENTRY(simple_mode_many_clients))
