/*
 * The pool's read_only_tx requests (BEGIN READ ONLY / statement / ROLLBACK in
 * one round trip, in every statement mode) and read backpressure
 * (molt_db_pool_pause / resume, and cancel or timeout while paused) against
 * the real server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "molt_db/loop_libuv.h"
#include "molt_db/pool.h"
#include "pgtest.h"

typedef struct res {
    int done, status;
    char sqlstate[6];
    char val[128];          /* first column of the last row */
    uint64_t rows;
    /* backpressure */
    molt_db_pool *pool;
    molt_db_pool_req_id id;
    uint64_t pause_at;      /* pause once after this many rows; 0 never */
    int paused;
} res;

static int r_row(void *ud, const molt_db_field *f, size_t n)
{
    res *r = ud;
    r->rows++;
    if (n > 0 && f[0].len >= 0) {
        size_t k = (size_t)f[0].len < sizeof r->val - 1 ? (size_t)f[0].len : sizeof r->val - 1;
        memcpy(r->val, f[0].data, k);
        r->val[k] = '\0';
    }
    if (r->pause_at && r->rows == r->pause_at) {
        ASSERT_OK(molt_db_pool_pause(r->pool, r->id), NULL);
        r->paused = 1;
    }
    return MOLT_DB_OK;
}

static void r_done(void *ud, int status, const molt_db_error *err)
{
    res *r = ud;
    ASSERT(!r->done);
    r->done = 1;
    r->status = status;
    if (status != MOLT_DB_OK && err)
        snprintf(r->sqlstate, sizeof r->sqlstate, "%s", err->sqlstate);
}

typedef struct tp {
    uv_loop_t loop;
    molt_db_loop *ml;       /* loop, for the library */
    uv_timer_t tick;        /* bounds UV_RUN_ONCE waits (see run_until) */
    molt_db_pool *pool;
    int closed;
} tp;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static tp *tp_open_depth(int max_conns, molt_db_stmt_mode mode, int depth)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    tp *t = calloc(1, sizeof *t);
    ASSERT(t != NULL);
    ASSERT_EQ_INT(uv_loop_init(&t->loop), 0);
    ASSERT_OK(molt_db_loop_libuv_new(&t->loop, &t->ml, NULL), NULL);
    ASSERT_EQ_INT(uv_timer_init(&t->loop, &t->tick), 0);
    uv_timer_start(&t->tick, on_tick, 10, 10);
    molt_db_pool_settings s;
    molt_db_pool_settings_init(&s);
    s.max_conns = max_conns;
    s.statement_mode = mode;
    s.pipeline_depth = depth;
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, &err), &err);
    ASSERT_OK(molt_db_pool_open(t->ml, ci, &s, &t->pool, &err), &err);
    molt_db_conninfo_free(ci);
    return t;
}

static tp *tp_open(int max_conns, molt_db_stmt_mode mode)
{
    return tp_open_depth(max_conns, mode, 1);
}

static void on_closed(molt_db_pool *p, void *ud)
{
    (void)p;
    ((tp *)ud)->closed = 1;
}

static void tp_close(tp *t)
{
    uv_close((uv_handle_t *)&t->tick, NULL);
    molt_db_pool_close(t->pool, on_closed, t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    ASSERT(t->closed);
    molt_db_loop_free(t->ml);
    ASSERT_EQ_INT(uv_loop_close(&t->loop), 0);
    free(t);
}

/* Runs until r is done (a resume dispatches held rows from a prepare
 * handle, after which UV_RUN_ONCE could block: the ticker bounds it). */
static void run_until(tp *t, const res *r)
{
    while (!r->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void run_for(tp *t, uint64_t ms)
{
    uint64_t until = uv_hrtime() + ms * 1000000u;
    while (uv_hrtime() < until)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static res *query(tp *t, const char *sql, int read_only, int timeout_ms)
{
    res *r = calloc(1, sizeof *r);
    ASSERT(r != NULL);
    r->pool = t->pool;
    molt_db_result_handler h = {NULL, r_row, NULL, r_done, r};
    molt_db_pool_query_options o = {0};
    o.read_only_tx = read_only;
    o.timeout_ms = timeout_ms;
    ASSERT_OK(molt_db_pool_query(t->pool, sql, 0, NULL, &h, &o, &r->id), NULL);
    return r;
}

static res *run_query(tp *t, const char *sql, int read_only)
{
    res *r = query(t, sql, read_only, 0);
    run_until(t, r);
    return r;
}

/* sqlstate "" expects success (and val as the last row's first column when
 * not NULL), else that server error. */
static void check(const res *r, const char *sqlstate, const char *val)
{
    if (sqlstate[0]) {
        ASSERT_CODE(r->status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(r->sqlstate, sqlstate);
    } else {
        ASSERT_OK(r->status, NULL);
        if (val)
            ASSERT_EQ_STR(r->val, val);
    }
}

/* Runs sql and checks its outcome (check). */
static void expect(tp *t, const char *sql, int read_only, const char *sqlstate,
                   const char *val)
{
    res *r = run_query(t, sql, read_only);
    check(r, sqlstate, val);
    free(r);
}

/* No connection needed a rollback by the pool or was given up. */
static void expect_clean_conns(tp *t)
{
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.rollbacks, 0);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
}

static void began(void *ud, int status, molt_db_tx *tx, const molt_db_error *err)
{
    (void)err;
    ASSERT_OK(status, NULL);
    *(molt_db_tx **)ud = tx;
}

static void ended(void *ud, int status, const molt_db_error *err)
{
    (void)err;
    (void)status;
    *(int *)ud = 1;
}

TEST(read_only_in_one_frame_every_mode)
{
    static const molt_db_stmt_mode modes[] = {MOLT_DB_STMT_CACHED, MOLT_DB_STMT_UNNAMED,
                                              MOLT_DB_STMT_SIMPLE};
    for (size_t m = 0; m < 3; m++) {
        tp *t = tp_open(1, modes[m]); /* one connection: the same session */
        /* (a temporary table could be written: READ ONLY allows that, and
         * the ROLLBACK undoes it) */
        expect(t, "CREATE TABLE IF NOT EXISTS pr_t(i int)", 0, "", NULL);
        expect(t, "INSERT INTO pr_t VALUES (1)", 1, "25006", NULL);
        /* what a read-only request sets is rolled back with it */
        expect(t, "SELECT set_config('search_path', 'pg_catalog', false)", 1, "",
               "pg_catalog");
        expect(t, "SELECT current_setting('search_path')", 0, "", "\"$user\", public");
        /* the statement's error; the frame's ROLLBACK left it idle: the
         * pool had nothing to roll back */
        expect(t, "SELECT 1/0", 1, "22012", NULL);
        expect(t, "SELECT g::text FROM generate_series(1, 5) g", 1, "", "5");
        expect(t, "DROP TABLE pr_t", 0, "", NULL);
        expect_clean_conns(t);
        /* not inside a transaction */
        molt_db_tx *tx = NULL;
        ASSERT_OK(molt_db_pool_begin(t->pool, NULL, began, &tx, NULL), NULL);
        while (!tx)
            uv_run(&t->loop, UV_RUN_ONCE);
        res dummy = {0};
        molt_db_result_handler h = {NULL, r_row, NULL, r_done, &dummy};
        molt_db_pool_query_options o = {0};
        o.read_only_tx = 1;
        ASSERT_CODE(molt_db_tx_query(tx, "SELECT 1", 0, NULL, &h, &o, NULL), MOLT_DB_EINVAL);
        int done = 0;
        ASSERT_OK(molt_db_tx_rollback(tx, ended, &done), NULL);
        while (!done)
            uv_run(&t->loop, UV_RUN_ONCE);
        tp_close(t);
    }
}

/* Pipelined on one connection behind framed requests that fail: each
 * request behind runs outside their failed transactions and reads what it
 * should (the connection holds back what follows a framed request until
 * its ROLLBACK ran). */
TEST(pipelined_behind_failing_frames_every_mode)
{
    static const molt_db_stmt_mode modes[] = {MOLT_DB_STMT_CACHED, MOLT_DB_STMT_UNNAMED,
                                              MOLT_DB_STMT_SIMPLE};
    for (size_t m = 0; m < 3; m++) {
        tp *t = tp_open_depth(1, modes[m], 8);
        expect(t, "DROP TABLE IF EXISTS pr_p", 0, "", NULL);
        expect(t, "CREATE TABLE pr_p(i int)", 0, "", NULL);
        struct {
            const char *sql;
            int read_only;
            const char *sqlstate, *val;
        } steps[] = {
            {"SELECT 1/0", 1, "22012", NULL},
            {"INSERT INTO pr_p VALUES (1)", 1, "25006", NULL},
            {"SHOW transaction_read_only", 0, "", "off"},
            {"SELECT current_setting('transaction_read_only')", 1, "", "on"},
            {"SELECT 1/0", 1, "22012", NULL},
            {"INSERT INTO pr_p VALUES (2)", 0, "", NULL},
            {"SELECT count(*)::text FROM pr_p", 1, "", "1"},
            {"SELECT current_setting('transaction_read_only')", 0, "", "off"},
        };
        enum { N = sizeof steps / sizeof steps[0] };
        res *rs[N];
        for (size_t i = 0; i < N; i++)
            rs[i] = query(t, steps[i].sql, steps[i].read_only, 0);
        for (size_t i = 0; i < N; i++) {
            run_until(t, rs[i]);
            check(rs[i], steps[i].sqlstate, steps[i].val);
            free(rs[i]);
        }
        expect(t, "SELECT string_agg(i::text, ',') FROM pr_p", 0, "", "2");
        expect(t, "DROP TABLE pr_p", 0, "", NULL);
        expect_clean_conns(t);
        molt_db_pool_stats st;
        molt_db_pool_get_stats(t->pool, &st);
        ASSERT_EQ_UINT(st.conns_opened, 1);
        tp_close(t);
    }
}

#define BIG "SELECT g::text, repeat('x', 100) FROM generate_series(1, 2000000) g"

TEST(pause_and_resume_a_running_request)
{
    tp *t = tp_open(2, MOLT_DB_STMT_CACHED);
    res *r = query(t, BIG, 1, 60000);
    /* still waiting for a connection: nothing to pause */
    ASSERT_CODE(molt_db_pool_pause(t->pool, r->id), MOLT_DB_ESTATE);
    ASSERT_CODE(molt_db_pool_pause(t->pool, 12345), MOLT_DB_EINVAL);
    r->pause_at = 1000;
    while (!r->paused)
        uv_run(&t->loop, UV_RUN_ONCE);
    run_for(t, 300);
    ASSERT_EQ_UINT(r->rows, 1000);
    ASSERT(!r->done);
    /* other requests still run on the pool's other connection */
    res *o = run_query(t, "SELECT '42'::text", 1);
    ASSERT_OK(o->status, NULL);
    ASSERT_EQ_STR(o->val, "42");
    free(o);
    ASSERT_OK(molt_db_pool_resume(t->pool, r->id), NULL);
    ASSERT_OK(molt_db_pool_resume(t->pool, r->id), NULL); /* idempotent */
    ASSERT_EQ_UINT(r->rows, 1000);
    run_until(t, r);
    ASSERT_OK(r->status, NULL);
    ASSERT_EQ_UINT(r->rows, 2000000);
    ASSERT_EQ_STR(r->val, "2000000");
    ASSERT_CODE(molt_db_pool_resume(t->pool, r->id), MOLT_DB_ESTATE);
    free(r);
    tp_close(t);
}

/* cancel (timeout_ms 0) or deadline (timeout_ms > 0) while paused: the
 * request ends at once, the connection drains and is reused, not closed */
static void stop_while_paused(int timeout_ms)
{
    tp *t = tp_open(1, MOLT_DB_STMT_CACHED);
    /* connected first: the deadline is for the query, not the connect */
    expect(t, "SELECT 'warm'::text", 1, "", "warm");
    res *r = query(t, BIG, 1, timeout_ms ? timeout_ms : 60000);
    r->pause_at = 1000;
    while (!r->paused && !r->done)
        uv_run(&t->loop, UV_RUN_ONCE);
    if (!r->paused)
        FAIL_AT("the request ended (%s) before its 1000th row",
                molt_db_code_name(r->status));
    if (timeout_ms == 0)
        ASSERT_OK(molt_db_pool_cancel(t->pool, r->id), NULL);
    run_until(t, r);
    ASSERT_CODE(r->status, timeout_ms ? MOLT_DB_ETIMEDOUT : MOLT_DB_ECANCELED);
    ASSERT(r->rows < 2000000);
    uint64_t t0 = uv_hrtime();
    res *n = run_query(t, "SELECT '7'::text", 1);
    ASSERT_OK(n->status, NULL);
    ASSERT_EQ_STR(n->val, "7");
    if (uv_hrtime() - t0 > 3000000000u)
        FAIL_AT("the next request waited %.2f s for the drained connection",
                (double)(uv_hrtime() - t0) / 1e9);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    ASSERT_EQ_UINT(st.conns_opened, 1);
    free(n);
    free(r);
    tp_close(t);
}

TEST(cancel_while_paused_reuses_the_connection)
{
    stop_while_paused(0);
}

TEST(timeout_while_paused_reuses_the_connection)
{
    stop_while_paused(3000); /* (room for the first 1000 rows on a loaded machine under ASan) */
}

TEST_MAIN(TEST_ENTRY(read_only_in_one_frame_every_mode),
          TEST_ENTRY(pipelined_behind_failing_frames_every_mode),
          TEST_ENTRY(pause_and_resume_a_running_request),
          TEST_ENTRY(cancel_while_paused_reuses_the_connection),
          TEST_ENTRY(timeout_while_paused_reuses_the_connection))
