/*
 * The pool against the real server (scripts/with_pg.sh): many concurrent
 * requests, FIFO acquire with max_wait_ms, cancel and timeout of a running
 * query (server confirms idle, connection reused), cancel while waiting,
 * cancel racing with completion, statement cache eviction and transparent
 * re-prepare (ALTER TABLE, DEALLOCATE ALL), dirty release rolled back, a
 * terminated backend and a server restart healed without a reset.
 *
 * The cases that stop the shared server run alone (tests/CMakeLists.txt),
 * the others beside the other tests. ctest-serial: server_restart server_down_recovery
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "molt_db/loop_libuv.h"
#include "molt_db/pool.h"
#include "pgtest.h"

typedef struct res {
    int done;
    int status;
    char sqlstate[6];
    char msg[1100];
    char val[256];      /* first column of the last row, as text */
    size_t nrows, ncols;
    uint64_t t_done_ns;
    uint64_t done_seq;  /* 1 for the first request to end in this process */
} res;

static uint64_t done_count;

static int r_cols(void *ud, const molt_db_column *c, size_t n)
{
    (void)c;
    res *r = ud;
    r->ncols = n;
    r->nrows = 0;
    return MOLT_DB_OK;
}

static int r_row(void *ud, const molt_db_field *f, size_t n)
{
    res *r = ud;
    r->nrows++;
    if (n > 0 && f[0].len >= 0) {
        size_t k = (size_t)f[0].len < sizeof r->val - 1 ? (size_t)f[0].len
                                                          : sizeof r->val - 1;
        memcpy(r->val, f[0].data, k);
        r->val[k] = '\0';
    } else {
        strcpy(r->val, "NULL");
    }
    return MOLT_DB_OK;
}

static void r_done(void *ud, int status, const molt_db_error *err)
{
    res *r = ud;
    ASSERT(!r->done); /* exactly once */
    r->done = 1;
    r->status = status;
    r->t_done_ns = uv_hrtime();
    r->done_seq = ++done_count;
    if (status != MOLT_DB_OK) {
        ASSERT(err != NULL);
        snprintf(r->sqlstate, sizeof r->sqlstate, "%s", err->sqlstate);
        snprintf(r->msg, sizeof r->msg, "%s", err->message);
    }
}

static molt_db_result_handler handler(res *r)
{
    molt_db_result_handler h = {r_cols, r_row, NULL, r_done, r};
    return h;
}

typedef struct tp {
    uv_loop_t loop;
    molt_db_loop *ml;       /* loop, for the library */
    molt_db_pool *pool;
    int closed;
} tp;

static tp *tp_open_dsn(const char *dsn, molt_db_pool_settings *s)
{
    tp *t = calloc(1, sizeof *t);
    ASSERT(t != NULL);
    ASSERT_EQ_INT(uv_loop_init(&t->loop), 0);
    ASSERT_OK(molt_db_loop_libuv_new(&t->loop, &t->ml, NULL), NULL);
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, &err), &err);
    ASSERT_OK(molt_db_pool_open(t->ml, ci, s, &t->pool, &err), &err);
    molt_db_conninfo_free(ci);
    return t;
}

static tp *tp_open(molt_db_pool_settings *s)
{
    return tp_open_dsn(test_env_or_skip("MOLT_TEST_DSN"), s);
}

static void on_closed(molt_db_pool *p, void *ud)
{
    (void)p;
    ((tp *)ud)->closed = 1;
}

/* Closes the pool, checks its counters balance, and that nothing is left
 * on the loop. */
static void tp_close(tp *t)
{
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.requests, st.completed);
    ASSERT_EQ_UINT(st.waiters, 0);
    molt_db_pool_close(t->pool, on_closed, t);
    ASSERT(!t->closed);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    ASSERT(t->closed);
    molt_db_loop_free(t->ml);
    ASSERT_EQ_INT(uv_loop_close(&t->loop), 0);
    free(t);
}

static void wait_done(tp *t, res *r)
{
    while (!r->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void run_for_ms(tp *t, uint64_t ms)
{
    uint64_t end = uv_hrtime() + ms * 1000000u;
    while (uv_hrtime() < end)
        uv_run(&t->loop, UV_RUN_NOWAIT);
}

static molt_db_pool_req_id submit_opts(tp *t, const char *sql, size_t n,
                                       const molt_db_param *p, res *r,
                                       const molt_db_pool_query_options *o)
{
    memset(r, 0, sizeof *r);
    molt_db_result_handler h = handler(r);
    molt_db_pool_req_id id = 0;
    ASSERT_OK(molt_db_pool_query(t->pool, sql, n, p, &h, o, &id), NULL);
    ASSERT(id != 0);
    ASSERT(!r->done); /* never during the call */
    return id;
}

static molt_db_pool_req_id submit(tp *t, const char *sql, size_t n,
                                  const molt_db_param *p, res *r,
                                  int timeout_ms)
{
    molt_db_pool_query_options o = {timeout_ms, NULL, 0};
    return submit_opts(t, sql, n, p, r, &o);
}

/* As submit, marked read-only: may share a Sync on a pipelined connection. */
static molt_db_pool_req_id submit_ro(tp *t, const char *sql, size_t n,
                                     const molt_db_param *p, res *r,
                                     int timeout_ms)
{
    molt_db_pool_query_options o = {timeout_ms, NULL, 1};
    return submit_opts(t, sql, n, p, r, &o);
}

/* Runs sql to completion and returns its result. */
static res q(tp *t, const char *sql)
{
    res r;
    submit(t, sql, 0, NULL, &r, 0);
    wait_done(t, &r);
    return r;
}

static void q_ok(tp *t, const char *sql, const char *want)
{
    res r = q(t, sql);
    if (r.status != MOLT_DB_OK)
        FAIL_AT("%s: %s %s [%s]", sql, molt_db_code_name(r.status), r.msg,
                r.sqlstate);
    if (want)
        ASSERT_EQ_STR(r.val, want);
}

static molt_db_pool_settings settings(int max_conns)
{
    molt_db_pool_settings s;
    molt_db_pool_settings_init(&s);
    s.max_conns = max_conns;
    return s;
}

static molt_db_param text_param(const char *s)
{
    molt_db_param p = {0, MOLT_DB_FORMAT_TEXT, (int32_t)strlen(s),
                       (const uint8_t *)s};
    return p;
}

/* ---- tests ------------------------------------------------------------- */

TEST(bad_settings)
{
    test_env_or_skip("MOLT_TEST_DSN");
    uv_loop_t loop;
    uv_loop_init(&loop);
    molt_db_loop *ml = NULL;
    ASSERT_OK(molt_db_loop_libuv_new(&loop, &ml, NULL), NULL);
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(getenv("MOLT_TEST_DSN"), &ci, &err), &err);
    molt_db_pool_settings s = settings(2);
    s.min_conns = 3;
    molt_db_pool *p = NULL;
    ASSERT_CODE(molt_db_pool_open(ml, ci, &s, &p, &err), MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(err.message, "min_conns");
    ASSERT(p == NULL);
    s = settings(0);
    ASSERT_CODE(molt_db_pool_open(ml, ci, &s, &p, &err), MOLT_DB_ECONFIG);
    molt_db_conninfo_free(ci);
    molt_db_error_clear(&err);
    molt_db_loop_free(ml);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

TEST(modes)
{
    molt_db_stmt_mode modes[] = {MOLT_DB_STMT_CACHED, MOLT_DB_STMT_UNNAMED,
                                 MOLT_DB_STMT_SIMPLE};
    for (size_t m = 0; m < 3; m++) {
        molt_db_pool_settings s = settings(2);
        s.statement_mode = modes[m];
        tp *t = tp_open(&s);
        q_ok(t, "SELECT 'hello'::text", "hello");
        res r = q(t, "SELECT 1/0");
        ASSERT_CODE(r.status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(r.sqlstate, "22012");
        q_ok(t, "SELECT 'after error'::text", "after error");
        molt_db_param p = text_param("41");
        molt_db_result_handler h = handler(&r);
        memset(&r, 0, sizeof r);
        int rc = molt_db_pool_query(t->pool, "SELECT ($1::int4 + 1)::text", 1,
                                    &p, &h, NULL, NULL);
        if (modes[m] == MOLT_DB_STMT_SIMPLE) {
            ASSERT_CODE(rc, MOLT_DB_EINVAL); /* never inlined */
        } else {
            ASSERT_OK(rc, NULL);
            wait_done(t, &r);
            ASSERT_OK(r.status, NULL);
            ASSERT_EQ_STR(r.val, "42");
        }
        tp_close(t);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 10,000 requests at once over 8 connections: every one completes with its
 * own correct answer, FIFO keeps the longest wait bounded. */
TEST(concurrent_10k)
{
    enum { N = 10000, HALF = N / 2, GAP = 100 };
    molt_db_pool_settings s = settings(8);
    s.max_wait_ms = 60000;
    tp *t = tp_open(&s);
    res *rs = calloc(N, sizeof *rs);
    char (*args)[16] = calloc(N, sizeof *args);
    uint64_t *first = calloc(HALF, sizeof *first);
    uint64_t *second = calloc(HALF - GAP, sizeof *second);
    ASSERT(rs && args && first && second);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        p.oid = 23;
        submit(t, i % 2 ? "SELECT ($1::int4 * 2)::text"
                        : "SELECT ($1::int4 * 3)::text",
               1, &p, &rs[i], 0);
    }
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT(st.waiters > N - 100);
    size_t done = 0;
    while (done < N) {
        uv_run(&t->loop, UV_RUN_ONCE);
        done = 0;
        for (int i = 0; i < N; i++)
            done += (size_t)rs[i].done;
    }
    uint64_t wall = uv_hrtime() - t0;
    for (int i = 0; i < N; i++) {
        ASSERT_OK(rs[i].status, NULL);
        char want[32];
        snprintf(want, sizeof want, "%d", i % 2 ? i * 2 : i * 3);
        ASSERT_EQ_STR(rs[i].val, want);
        if (i < HALF)
            first[i] = rs[i].done_seq;
        else if (i >= HALF + GAP)
            second[i - HALF - GAP] = rs[i].done_seq;
    }
    /* FIFO over 8 connections: the first half ends before the second. Not
     * every request: a backend the OS holds back keeps the one request it
     * has while the other seven go on (strict order is fifo_one_conn's), so
     * 99% of the first half must end before 99% of the second. A LIFO or
     * random hand-out fails this by thousands of places. */
    qsort(first, HALF, sizeof *first, cmp_u64);
    qsort(second, HALF - GAP, sizeof *second, cmp_u64);
    ASSERT(first[HALF * 99 / 100] < second[(HALF - GAP) / 100]);
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.completed, N);
    ASSERT_EQ_UINT(st.failed, 0);
    ASSERT(st.conns <= 8);
    fprintf(stderr, "  10000 requests over %zu conns in %.1f ms; max wait %.1f ms; "
            "last of the first half ended %llu places after the first of the second\n",
            st.conns, (double)wall / 1e6, (double)st.max_wait_us / 1e3,
            (unsigned long long)(first[HALF - 1] > second[0] ? first[HALF - 1] - second[0] : 0));
    free(first);
    free(second);
    free(rs);
    free(args);
    tp_close(t);
}

/* One connection: the pool hands it to waiters strictly in arrival order,
 * so requests end in the order they were made, with or without pipelining. */
TEST(fifo_one_conn)
{
    enum { N = 500 };
    for (int depth = 1; depth <= 16; depth += 15) {
        molt_db_pool_settings s = settings(1);
        s.pipeline_depth = depth;
        s.max_wait_ms = 60000;
        tp *t = tp_open(&s);
        res *rs = calloc(N, sizeof *rs);
        char (*args)[16] = calloc(N, sizeof *args);
        ASSERT(rs && args);
        for (int i = 0; i < N; i++) {
            snprintf(args[i], sizeof args[i], "%d", i);
            molt_db_param p = text_param(args[i]);
            p.oid = 23;
            submit(t, "SELECT $1::int4::text", 1, &p, &rs[i], 0);
        }
        for (int i = 0; i < N; i++)
            wait_done(t, &rs[i]);
        for (int i = 0; i < N; i++) {
            ASSERT_OK(rs[i].status, NULL);
            ASSERT_EQ_STR(rs[i].val, args[i]);
            if (i > 0)
                ASSERT_EQ_UINT(rs[i].done_seq, rs[i - 1].done_seq + 1);
        }
        free(rs);
        free(args);
        tp_close(t);
    }
}

static void expect_plus5(const res *r, int i)
{
    ASSERT_OK(r->status, NULL);
    char want[32];
    snprintf(want, sizeof want, "%d", i + 5);
    ASSERT_EQ_STR(r->val, want);
}

/* n requests at once, every k-th dividing by zero: each failure is its
 * own, every other request gets its own right answer. */
static void every_kth_fails(tp *t, int n, int k, int read_only)
{
    res *rs = calloc((size_t)n, sizeof *rs);
    char (*args)[16] = calloc((size_t)n, sizeof *args);
    ASSERT(rs && args);
    for (int i = 0; i < n; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        const char *sql = i % k ? "SELECT ($1::int4 + 5)::text"
                                : "SELECT ($1::int4 / 0)::text";
        molt_db_pool_query_options o = {0, NULL, read_only};
        submit_opts(t, sql, 1, &p, &rs[i], &o);
    }
    for (int i = 0; i < n; i++) {
        wait_done(t, &rs[i]);
        if (i % k == 0) {
            ASSERT_CODE(rs[i].status, MOLT_DB_ESERVER);
            ASSERT_EQ_STR(rs[i].sqlstate, "22012");
        } else {
            expect_plus5(&rs[i], i);
        }
    }
    free(rs);
    free(args);
}

TEST(pipelined)
{
    molt_db_pool_settings s = settings(2);
    s.min_conns = 2;
    s.pipeline_depth = 64;
    tp *t = tp_open(&s);
    every_kth_fails(t, 2000, 7, 0);
    tp_close(t);
}

TEST(exhausted)
{
    molt_db_pool_settings s = settings(1);
    s.max_wait_ms = 150;
    tp *t = tp_open(&s);
    res a, b;
    submit(t, "SELECT pg_sleep(1)::text", 0, NULL, &a, 0);
    uint64_t t0 = uv_hrtime();
    submit(t, "SELECT 1::text", 0, NULL, &b, 0);
    wait_done(t, &b);
    uint64_t waited_ms = (b.t_done_ns - t0) / 1000000;
    ASSERT_CODE(b.status, MOLT_DB_EBUSY);
    ASSERT_CONTAINS(b.msg, "pool exhausted");
    ASSERT(waited_ms >= 140 && waited_ms < 400);
    ASSERT(!a.done);
    wait_done(t, &a);
    ASSERT_OK(a.status, NULL);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.exhausted, 1);
    ASSERT_EQ_UINT(st.waiters, 0);
    tp_close(t);
}

/* The backend's state as pg_stat_activity shows it, from another pool. */
static void wait_backend_idle(tp *t, const char *pid)
{
    pgt_conn *c = pgt_connect(getenv("MOLT_TEST_DSN"));
    char sql[384];
    snprintf(sql, sizeof sql,
             "SELECT state FROM pg_stat_activity WHERE pid = %s", pid);
    for (int i = 0;; i++) {
        pgt_result *r = pgt_simple(c, sql);
        ASSERT_OK(r->status, &r->err);
        ASSERT_EQ_UINT(r->nrows, 1);
        int idle = strcmp(pgt_text(r, 0, 0), "idle") == 0;
        if (!idle && i == 50)
            FAIL_AT("backend %s still %s", pid, pgt_text(r, 0, 0));
        pgt_result_free(r);
        if (idle)
            break;
        run_for_ms(t, 20); /* the pool's CancelRequest runs on our loop */
    }
    pgt_close(c);
}

/* Waits until the backend sleeps in pg_sleep (so a CancelRequest cannot
 * land before its statement started), running the pool's loop meanwhile. */
static void wait_backend_sleeping(tp *t, const char *pid)
{
    pgt_conn *c = pgt_connect(getenv("MOLT_TEST_DSN"));
    char sql[384];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND "
             "wait_event = 'PgSleep'", pid);
    for (int i = 0;; i++) {
        pgt_result *r = pgt_simple(c, sql);
        ASSERT_OK(r->status, &r->err);
        int sleeping = strcmp(pgt_text(r, 0, 0), "1") == 0;
        pgt_result_free(r);
        if (sleeping)
            break;
        if (i == 100)
            FAIL_AT("backend %s never slept", pid);
        run_for_ms(t, 10);
    }
    pgt_close(c);
}

/* After a cancel that reached the server: the backend is idle again, the
 * same connection serves the next request, one CancelRequest was sent and
 * nothing abandoned. */
static molt_db_pool_stats expect_backend_back(tp *t, const char *pid)
{
    wait_backend_idle(t, pid);
    q_ok(t, "SELECT pg_backend_pid()::text", pid);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.cancel_requests, 1);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    return st;
}

static void cancel_or_timeout(int use_timeout)
{
    molt_db_pool_settings s = settings(1);
    s.cancel_timeout_ms = 1000;
    tp *t = tp_open(&s);
    res pid = q(t, "SELECT pg_backend_pid()::text");
    ASSERT_OK(pid.status, NULL);
    res r;
    molt_db_pool_req_id id = submit(t, "SELECT pg_sleep(30)::text", 0, NULL,
                                    &r, use_timeout ? 300 : 0);
    run_for_ms(t, 300 - (use_timeout ? 100 : 0));
    uint64_t t0 = uv_hrtime();
    if (!use_timeout)
        ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    wait_done(t, &r);
    uint64_t late_ms = (r.t_done_ns - t0) / 1000000;
    if (use_timeout) {
        ASSERT_CODE(r.status, MOLT_DB_ETIMEDOUT);
        ASSERT(late_ms < 100 + 100); /* deadline 100 ms after t0 */
    } else {
        ASSERT_CODE(r.status, MOLT_DB_ECANCELED);
        ASSERT(late_ms < 100);
        ASSERT_CODE(molt_db_pool_cancel(t->pool, id), MOLT_DB_ESTATE);
    }
    molt_db_pool_stats st = expect_backend_back(t, pid.val);
    ASSERT_EQ_UINT(st.conns_opened, 1);
    tp_close(t);
}

TEST(cancel_running) { cancel_or_timeout(0); }
TEST(timeout_running) { cancel_or_timeout(1); }

TEST(cancel_waiting)
{
    molt_db_pool_settings s = settings(1);
    tp *t = tp_open(&s);
    q_ok(t, "SELECT 1::text", "1"); /* the connection is open */
    res a, b, c;
    submit(t, "SELECT pg_sleep(0.3)::text", 0, NULL, &a, 0);
    molt_db_pool_req_id id = submit(t, "SELECT 'b'::text", 0, NULL, &b, 0);
    submit(t, "SELECT 'c'::text", 0, NULL, &c, 0);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.waiters, 2);
    ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.waiters, 1); /* left the queue at once */
    ASSERT(!b.done);
    uint64_t t0 = uv_hrtime();
    wait_done(t, &b);
    ASSERT_CODE(b.status, MOLT_DB_ECANCELED);
    ASSERT((b.t_done_ns - t0) / 1000000 < 50);
    ASSERT(!a.done);
    wait_done(t, &c);
    ASSERT_OK(a.status, NULL);
    ASSERT_OK(c.status, NULL);
    ASSERT_EQ_STR(c.val, "c");
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.cancel_requests, 0); /* nothing to cancel server-side */
    tp_close(t);
}

TEST(cancel_race)
{
    molt_db_pool_settings s = settings(1);
    tp *t = tp_open(&s);
    q_ok(t, "SELECT 1::text", "1");
    /* cancel after completion: nothing happens */
    res r;
    molt_db_pool_req_id id = submit(t, "SELECT 2::text", 0, NULL, &r, 0);
    wait_done(t, &r);
    ASSERT_OK(r.status, NULL);
    ASSERT_CODE(molt_db_pool_cancel(t->pool, id), MOLT_DB_ESTATE);
    ASSERT_CODE(molt_db_pool_cancel(t->pool, 0), MOLT_DB_EINVAL);
    /* cancel at varying points while the reply is on its way: either the
     * cancel wins (ECANCELED) or completion does (ESTATE, result OK);
     * never both, never neither, and the connection stays usable */
    int won = 0, lost = 0;
    for (int i = 0; i < 100; i++) {
        id = submit(t, "SELECT 3::text", 0, NULL, &r, 0);
        uint64_t end = uv_hrtime() + (uint64_t)(i % 10) * 30000u;
        while (uv_hrtime() < end && !r.done)
            uv_run(&t->loop, UV_RUN_NOWAIT);
        int rc = molt_db_pool_cancel(t->pool, id);
        wait_done(t, &r);
        if (rc == MOLT_DB_OK) {
            ASSERT_CODE(r.status, MOLT_DB_ECANCELED);
            won++;
        } else {
            ASSERT_CODE(rc, MOLT_DB_ESTATE);
            ASSERT_OK(r.status, NULL);
            ASSERT_EQ_STR(r.val, "3");
            lost++;
        }
        q_ok(t, "SELECT 4::text", "4");
    }
    fprintf(stderr, "  cancel won %d, completion won %d\n", won, lost);
    ASSERT(won > 0);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.cancels, (uint64_t)won);
    tp_close(t);
}

/* A connection left inside a transaction is rolled back before reuse. */
TEST(dirty_release)
{
    molt_db_pool_settings s = settings(1);
    s.statement_mode = MOLT_DB_STMT_SIMPLE;
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_dirty; CREATE TABLE pool_dirty (a int)",
         NULL);
    res pid = q(t, "SELECT pg_backend_pid()");
    q_ok(t, "BEGIN; INSERT INTO pool_dirty VALUES (1)", NULL);
    q_ok(t, "SELECT count(*) FROM pool_dirty", "0");
    res r = q(t, "BEGIN; SELECT 1/0");  /* failed transaction: 'E' */
    ASSERT_CODE(r.status, MOLT_DB_ESERVER);
    q_ok(t, "INSERT INTO pool_dirty VALUES (2); SELECT count(*) FROM pool_dirty",
         "1");
    q_ok(t, "SELECT pg_backend_pid()", pid.val); /* same connection */
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.rollbacks, 2);
    ASSERT_EQ_UINT(st.conns_opened, 1);
    q_ok(t, "DROP TABLE pool_dirty", NULL);
    tp_close(t);
}

TEST(stmt_cache_eviction)
{
    molt_db_pool_settings s = settings(1);
    s.statement_cache_size = 3;
    tp *t = tp_open(&s);
    q_ok(t, "SELECT 'a'::text", "a");
    q_ok(t, "SELECT 'b'::text", "b");
    q_ok(t, "SELECT 'c'::text", "c");
    q_ok(t, "SELECT 'a'::text", "a"); /* a is now most recent */
    q_ok(t, "SELECT 'd'::text", "d"); /* evicts b */
    /* evicts c; itself cached: a, d and this one */
    q_ok(t, "SELECT string_agg(statement, '|' ORDER BY statement) "
            "FROM pg_prepared_statements",
         "SELECT 'a'::text|SELECT 'd'::text|SELECT string_agg(statement, "
         "'|' ORDER BY statement) FROM pg_prepared_statements");
    res r = q(t, "SELECT count(*)::text FROM pg_prepared_statements "
                 "WHERE name LIKE 'molt\\_%'");
    ASSERT_EQ_STR(r.val, "3");
    tp_close(t);
}

TEST(reprepare_alter_table)
{
    molt_db_pool_settings s = settings(1);
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_alter", NULL);
    q_ok(t, "CREATE TABLE pool_alter (a int)", NULL);
    q_ok(t, "INSERT INTO pool_alter VALUES (7)", NULL);
    res r = q(t, "SELECT * FROM pool_alter");
    ASSERT_OK(r.status, NULL);
    ASSERT_EQ_UINT(r.ncols, 1);
    q_ok(t, "ALTER TABLE pool_alter ADD COLUMN b text DEFAULT 'x'", NULL);
    r = q(t, "SELECT * FROM pool_alter");
    if (r.status != MOLT_DB_OK)
        FAIL_AT("%s [%s]", r.msg, r.sqlstate);
    ASSERT_EQ_UINT(r.ncols, 2);
    ASSERT_EQ_UINT(r.nrows, 1);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.reprepares, 1);
    q_ok(t, "DROP TABLE pool_alter", NULL);
    tp_close(t);
}

TEST(reprepare_deallocate_all)
{
    molt_db_pool_settings s = settings(1);
    tp *t = tp_open(&s);
    q_ok(t, "SELECT 'kept'::text", "kept");
    q_ok(t, "DEALLOCATE ALL", NULL);
    q_ok(t, "SELECT 'kept'::text", "kept");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT(st.reprepares >= 1);
    res r = q(t, "SELECT count(*)::text FROM pg_prepared_statements");
    ASSERT_OK(r.status, NULL);
    tp_close(t);
}

TEST(terminated_backend)
{
    molt_db_pool_settings s = settings(2);
    tp *t = tp_open(&s);
    res victim, pid;
    submit(t, "SELECT pg_backend_pid()::text", 0, NULL, &pid, 0);
    wait_done(t, &pid);
    submit(t, "SELECT pg_sleep(10)::text", 0, NULL, &victim, 0);
    run_for_ms(t, 200);
    pgt_conn *c = pgt_connect(getenv("MOLT_TEST_DSN"));
    pgt_exec_ok(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE query = 'SELECT pg_sleep(10)::text'");
    pgt_close(c);
    wait_done(t, &victim);
    ASSERT(victim.status != MOLT_DB_OK);
    fprintf(stderr, "  victim: %s %s [%s]\n", molt_db_code_name(victim.status),
            victim.msg, victim.sqlstate);
    for (int i = 0; i < 10; i++)
        q_ok(t, "SELECT 'fine'::text", "fine");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT(st.conns_abandoned >= 1);
    tp_close(t);
}

TEST(server_restart)
{
    const char *pgctl = test_env_or_skip("MOLT_TEST_PGCTL");
    molt_db_pool_settings s = settings(4);
    s.min_conns = 4;
    s.max_wait_ms = 20000;
    tp *t = tp_open(&s);
    enum { N = 40 };
    res rs[N];
    for (int i = 0; i < N; i++)
        q_ok(t, "SELECT 'warm'::text", "warm");
    for (int i = 0; i < N; i++)
        submit(t, "SELECT pg_sleep(0.5)::text", 0, NULL, &rs[i], 0);
    /* all four connections carry a sleep (on a loaded machine the last ones
     * may still be opening after a fixed pause), then the server goes */
    molt_db_pool_stats st;
    uint64_t deadline = uv_hrtime() + 5000u * 1000000u;
    do {
        run_for_ms(t, 10);
        molt_db_pool_get_stats(t->pool, &st);
    } while (st.conns_in_use < 4 && uv_hrtime() < deadline);
    ASSERT_EQ_UINT(st.conns_in_use, 4);
    run_for_ms(t, 50);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" restart -m fast >/dev/null 2>&1", pgctl);
    ASSERT_EQ_INT(system(cmd), 0);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        wait_done(t, &rs[i]);
        if (rs[i].status != MOLT_DB_OK) {
            failed++;
            ASSERT(rs[i].msg[0] != '\0');
        }
    }
    ASSERT(failed >= 4); /* the ones running when the server went away */
    fprintf(stderr, "  %d of %d failed; e.g. %s\n", failed, N, rs[0].msg);
    /* no manual reset: the next requests succeed */
    for (int i = 0; i < 20; i++)
        q_ok(t, "SELECT 'back'::text", "back");
    tp_close(t);
}

/* ---- transactions ------------------------------------------------------ */

typedef struct txw {
    int done, status;
    molt_db_tx *tx;
    char sqlstate[6];
    char msg[1100];
} txw;

static void txw_begin(void *ud, int status, molt_db_tx *tx,
                      const molt_db_error *err)
{
    txw *w = ud;
    ASSERT(!w->done);
    w->done = 1;
    w->status = status;
    w->tx = tx;
    ASSERT((status == MOLT_DB_OK) == (tx != NULL));
    if (err)
        snprintf(w->msg, sizeof w->msg, "%s", err->message);
}

static void txw_done(void *ud, int status, const molt_db_error *err)
{
    txw *w = ud;
    ASSERT(!w->done);
    w->done = 1;
    w->status = status;
    if (err) {
        snprintf(w->sqlstate, sizeof w->sqlstate, "%s", err->sqlstate);
        snprintf(w->msg, sizeof w->msg, "%s", err->message);
    }
}

static molt_db_tx *tx_begin(tp *t, molt_db_isolation iso)
{
    txw w = {0};
    molt_db_tx_options o = {iso, 0, 0, 0};
    ASSERT_OK(molt_db_pool_begin(t->pool, &o, txw_begin, &w, NULL), NULL);
    ASSERT(!w.done);
    while (!w.done)
        uv_run(&t->loop, UV_RUN_ONCE);
    if (w.status != MOLT_DB_OK)
        FAIL_AT("begin: %s %s", molt_db_code_name(w.status), w.msg);
    return w.tx;
}

static res txq(tp *t, molt_db_tx *tx, const char *sql)
{
    res r;
    memset(&r, 0, sizeof r);
    molt_db_result_handler h = handler(&r);
    ASSERT_OK(molt_db_tx_query(tx, sql, 0, NULL, &h, NULL, NULL), NULL);
    wait_done(t, &r);
    return r;
}

static void txq_ok(tp *t, molt_db_tx *tx, const char *sql)
{
    res r = txq(t, tx, sql);
    if (r.status != MOLT_DB_OK)
        FAIL_AT("%s: %s [%s]", sql, r.msg, r.sqlstate);
}

/* Ends the innermost scope; returns the status (sqlstate in *w). */
static int tx_end(tp *t, molt_db_tx *tx, int commit, txw *w)
{
    memset(w, 0, sizeof *w);
    ASSERT_OK(commit ? molt_db_tx_commit(tx, txw_done, w)
                     : molt_db_tx_rollback(tx, txw_done, w), NULL);
    ASSERT(!w->done);
    while (!w->done)
        uv_run(&t->loop, UV_RUN_ONCE);
    return w->status;
}

static void nested(tp *t, molt_db_tx *tx)
{
    txw w = {0};
    ASSERT_OK(molt_db_tx_begin_nested(tx, txw_done, &w), NULL);
    while (!w.done)
        uv_run(&t->loop, UV_RUN_ONCE);
    ASSERT_OK(w.status, NULL);
}

TEST(tx_commit_rollback)
{
    molt_db_pool_settings s = settings(2);
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_tx", NULL);
    q_ok(t, "CREATE TABLE pool_tx (a int)", NULL);
    molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
    txq_ok(t, tx, "INSERT INTO pool_tx VALUES (1)");
    /* not visible outside before commit */
    q_ok(t, "SELECT count(*)::text FROM pool_tx", "0");
    txw w;
    ASSERT_OK(tx_end(t, tx, 1, &w), NULL);
    q_ok(t, "SELECT count(*)::text FROM pool_tx", "1");
    tx = tx_begin(t, MOLT_DB_ISOLATION_REPEATABLE_READ);
    res r = txq(t, tx, "SELECT current_setting('transaction_isolation')");
    ASSERT_EQ_STR(r.val, "repeatable read");
    txq_ok(t, tx, "INSERT INTO pool_tx VALUES (2)");
    ASSERT_OK(tx_end(t, tx, 0, &w), NULL);
    q_ok(t, "SELECT count(*)::text FROM pool_tx", "1");
    /* read only */
    txw bw = {0};
    molt_db_tx_options ro = {MOLT_DB_ISOLATION_SERIALIZABLE, 1, 1, 0};
    ASSERT_OK(molt_db_pool_begin(t->pool, &ro, txw_begin, &bw, NULL), NULL);
    while (!bw.done)
        uv_run(&t->loop, UV_RUN_ONCE);
    ASSERT_OK(bw.status, NULL);
    r = txq(t, bw.tx, "INSERT INTO pool_tx VALUES (3)");
    ASSERT_EQ_STR(r.sqlstate, "25006");
    /* COMMIT of a failed transaction is a rollback, reported */
    ASSERT_CODE(tx_end(t, bw.tx, 1, &w), MOLT_DB_ESTATE);
    ASSERT_CONTAINS(w.msg, "rolled back");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.tx_commits, 1);
    ASSERT_EQ_UINT(st.tx_rollbacks, 2);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    q_ok(t, "DROP TABLE pool_tx", NULL);
    tp_close(t);
}

TEST(tx_savepoints)
{
    molt_db_pool_settings s = settings(1);
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_sp", NULL);
    q_ok(t, "CREATE TABLE pool_sp (a int)", NULL);
    molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
    txw w;
    txq_ok(t, tx, "INSERT INTO pool_sp VALUES (1)");
    nested(t, tx);
    ASSERT_EQ_INT(molt_db_tx_depth(tx), 1);
    txq_ok(t, tx, "INSERT INTO pool_sp VALUES (2)");
    ASSERT_OK(tx_end(t, tx, 0, &w), NULL);          /* drops 2 */
    ASSERT_EQ_INT(molt_db_tx_depth(tx), 0);
    nested(t, tx);
    txq_ok(t, tx, "INSERT INTO pool_sp VALUES (3)");
    nested(t, tx);                                   /* depth 2 */
    res r = txq(t, tx, "SELECT 1/0");
    ASSERT_EQ_STR(r.sqlstate, "22012");
    r = txq(t, tx, "SELECT 1");
    ASSERT_EQ_STR(r.sqlstate, "25P02");              /* failed until... */
    ASSERT_OK(tx_end(t, tx, 0, &w), NULL);          /* ...rolled back */
    txq_ok(t, tx, "INSERT INTO pool_sp VALUES (4)");
    ASSERT_OK(tx_end(t, tx, 1, &w), NULL);          /* release depth 1 */
    ASSERT_OK(tx_end(t, tx, 1, &w), NULL);          /* COMMIT */
    q_ok(t, "SELECT string_agg(a::text, ',' ORDER BY a) FROM pool_sp", "1,3,4");
    q_ok(t, "DROP TABLE pool_sp", NULL);
    tp_close(t);
}

TEST(tx_serializable_conflict)
{
    molt_db_pool_settings s = settings(3);
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_ser", NULL);
    q_ok(t, "CREATE TABLE pool_ser (k int, v int)", NULL);
    q_ok(t, "INSERT INTO pool_ser VALUES (1, 10), (2, 20)", NULL);
    molt_db_tx *a = tx_begin(t, MOLT_DB_ISOLATION_SERIALIZABLE);
    molt_db_tx *b = tx_begin(t, MOLT_DB_ISOLATION_SERIALIZABLE);
    txq_ok(t, a, "SELECT sum(v) FROM pool_ser WHERE k = 2");
    txq_ok(t, b, "SELECT sum(v) FROM pool_ser WHERE k = 1");
    txq_ok(t, a, "UPDATE pool_ser SET v = v + 1 WHERE k = 1");
    res r = txq(t, b, "UPDATE pool_ser SET v = v + 1 WHERE k = 2");
    txw w;
    ASSERT_OK(tx_end(t, a, 1, &w), NULL);
    int st = r.status == MOLT_DB_OK ? tx_end(t, b, 1, &w)
                                    : (tx_end(t, b, 0, &w), r.status);
    ASSERT_CODE(st, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(r.status == MOLT_DB_OK ? w.sqlstate : r.sqlstate, "40001");
    q_ok(t, "DROP TABLE pool_ser", NULL);
    tp_close(t);
}

/* Starts a 30 s pg_sleep in tx (its end goes to r); its request id. */
static molt_db_pool_req_id tx_sleep(molt_db_tx *tx, res *r)
{
    memset(r, 0, sizeof *r);
    molt_db_result_handler h = handler(r);
    molt_db_pool_req_id id = 0;
    ASSERT_OK(molt_db_tx_query(tx, "SELECT pg_sleep(30)::text", 0, NULL, &h, NULL, &id),
              NULL);
    return id;
}

TEST(tx_cancel_inside)
{
    molt_db_pool_settings s = settings(1);
    s.cancel_timeout_ms = 1000;
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_txc", NULL);
    q_ok(t, "CREATE TABLE pool_txc (a int)", NULL);
    res pid = q(t, "SELECT pg_backend_pid()::text");
    molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
    txq_ok(t, tx, "INSERT INTO pool_txc VALUES (1)");
    res r;
    molt_db_pool_req_id id = tx_sleep(tx, &r);
    run_for_ms(t, 200);
    uint64_t t0 = uv_hrtime();
    ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    wait_done(t, &r);
    ASSERT_CODE(r.status, MOLT_DB_ECANCELED);
    ASSERT((r.t_done_ns - t0) / 1000000 < 100);
    txw w;
    ASSERT_OK(tx_end(t, tx, 0, &w), NULL);
    wait_backend_idle(t, pid.val);
    /* rolled back, and the same connection, clean, serves the next one */
    q_ok(t, "SELECT count(*)::text FROM pool_txc", "0");
    q_ok(t, "SELECT pg_backend_pid()::text", pid.val);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    ASSERT_EQ_UINT(st.cancel_requests, 1);
    q_ok(t, "DROP TABLE pool_txc", NULL);
    tp_close(t);
}

/* A statement cancelled inside a transaction: the transaction keeps its
 * connection, aborted, whichever comes first of the query's end and the
 * CancelRequest's outcome (both orders happen; hence the rounds), and
 * past the drain's deadline too: a later statement of it fails 25P02
 * rather than running outside any transaction, and its rollback leaves
 * nothing. */
static void cancel_in_tx(tp *t, molt_db_tx *tx, uint64_t settle_ms)
{
    res r;
    molt_db_pool_req_id id = tx_sleep(tx, &r);
    run_for_ms(t, 50);
    ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    wait_done(t, &r);
    ASSERT_CODE(r.status, MOLT_DB_ECANCELED);
    run_for_ms(t, settle_ms);
    res after = txq(t, tx, "INSERT INTO pool_txk VALUES (2)");
    ASSERT_EQ_STR(after.sqlstate, "25P02");
    txw w;
    ASSERT_OK(tx_end(t, tx, 0, &w), NULL);
}

TEST(tx_cancel_inside_keeps_the_transaction)
{
    molt_db_pool_settings s = settings(2);
    s.cancel_timeout_ms = 200; /* the drain's deadline: 400 ms */
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_txk", NULL);
    q_ok(t, "CREATE TABLE pool_txk (a int)", NULL);
    for (int round = 0; round < 9; round++) {
        molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
        txq_ok(t, tx, "INSERT INTO pool_txk VALUES (1)");
        cancel_in_tx(t, tx, round < 8 ? 100 : 600); /* the last past the deadline */
    }
    q_ok(t, "SELECT count(*)::text FROM pool_txk", "0");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    ASSERT_EQ_UINT(st.cancel_requests, 9);
    q_ok(t, "DROP TABLE pool_txk", NULL);
    tp_close(t);
}

/* A statement the transaction runs behind a cancelled one (after the
 * savepoint around the cancelled one was rolled back): tx_query of sql,
 * its end to r, its id. */
static molt_db_pool_req_id tx_submit(molt_db_tx *tx, const char *sql, res *r)
{
    memset(r, 0, sizeof *r);
    molt_db_result_handler h = handler(r);
    molt_db_pool_req_id id = 0;
    ASSERT_OK(molt_db_tx_query(tx, sql, 0, NULL, &h, NULL, &id), NULL);
    return id;
}

/* What cancel_then_queue does once the next statement is queued. */
enum { NEXT_RUNS, NEXT_RUNS_OUTCOME_FIRST };

/* Inside a savepoint, a pg_sleep is cancelled (its CancelRequest goes out at
 * once); ROLLBACK TO SAVEPOINT and then sql are queued behind it before its
 * end is read, then an INSERT of -1 into pool_txn, cancelled at once (it
 * is held until the first cancel is over, so it must never run).
 * NEXT_RUNS_OUTCOME_FIRST pauses reading the connection (through sql's
 * request) until the CancelRequest has long been answered. Returns sql's
 * id (its end goes to r; the savepoint's rollback to rb). */
static molt_db_pool_req_id cancel_then_queue(tp *t, molt_db_tx *tx,
                                             const char *pid, const char *sql,
                                             res *r, txw *rb, int next_how)
{
    nested(t, tx);
    res s1;
    molt_db_pool_req_id id = tx_sleep(tx, &s1);
    wait_backend_sleeping(t, pid);
    ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    memset(rb, 0, sizeof *rb);
    ASSERT_OK(molt_db_tx_rollback(tx, txw_done, rb), NULL);
    molt_db_pool_req_id next = tx_submit(tx, sql, r);
    res gone;
    molt_db_pool_req_id gone_id =
        tx_submit(tx, "INSERT INTO pool_txn VALUES (-1)", &gone);
    ASSERT_OK(molt_db_pool_cancel(t->pool, gone_id), NULL);
    if (next_how == NEXT_RUNS_OUTCOME_FIRST) {
        ASSERT_OK(molt_db_pool_pause(t->pool, next), NULL);
        run_for_ms(t, 150);
        ASSERT_OK(molt_db_pool_resume(t->pool, next), NULL);
    }
    wait_done(t, &s1);
    wait_done(t, &gone);
    ASSERT_CODE(s1.status, MOLT_DB_ECANCELED);
    ASSERT_CODE(gone.status, MOLT_DB_ECANCELED);
    return next;
}

/* The CancelRequest's outcome and the cancelled statement's end, in either
 * order, while the transaction's next statement runs past the drain's
 * deadline: that statement gets its own result on the same connection and
 * the transaction commits (without the statement cancelled before it was
 * sent). Even rounds force the outcome first. */
TEST(tx_cancel_over_while_the_next_statement_runs)
{
    molt_db_pool_settings s = settings(1);
    s.cancel_timeout_ms = 200; /* the drain's deadline: 400 ms */
    tp *t = tp_open(&s);
    q_ok(t, "DROP TABLE IF EXISTS pool_txn", NULL);
    q_ok(t, "CREATE TABLE pool_txn (a int)", NULL);
    res pid = q(t, "SELECT pg_backend_pid()::text");
    char want[sizeof pid.val + 3];
    snprintf(want, sizeof want, "s2:%s", pid.val);
    enum { ROUNDS = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO pool_txn VALUES (%d)", round);
        txq_ok(t, tx, sql);
        res s2;
        txw rb;
        cancel_then_queue(t, tx, pid.val,
                          "SELECT 's2:' || pg_backend_pid() FROM pg_sleep(0.5)",
                          &s2, &rb,
                          round % 2 ? NEXT_RUNS : NEXT_RUNS_OUTCOME_FIRST);
        wait_done(t, &s2);
        if (s2.status != MOLT_DB_OK)
            FAIL_AT("round %d: %s %s", round, molt_db_code_name(s2.status),
                    s2.msg);
        ASSERT_EQ_STR(s2.val, want);
        ASSERT_OK(rb.status, NULL);
        txw w;
        ASSERT_OK(tx_end(t, tx, 1, &w), NULL);
    }
    q_ok(t, "SELECT string_agg(a::text, ',' ORDER BY a) FROM pool_txn", "0,1,2");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    ASSERT_EQ_UINT(st.cancel_requests, ROUNDS);
    q_ok(t, "DROP TABLE pool_txn", NULL);
    tp_close(t);
}

/* Two statements of a transaction cancelled one after the other while
 * both are sent (a savepoint's rollback between them, so the second really
 * runs after the first stopped): the CancelRequest goes for the first, and
 * the second gets its own once the first one's cancel is over (its
 * pg_sleep(5) stops: the transaction's ROLLBACK does not wait for it and
 * finds its connection), whichever order the first one's outcome and end
 * come in (both happen; hence the rounds). With later_request, a
 * statement made after both cancels waits behind them (held) rather than
 * keep the second from its CancelRequest. */
static void cancel_two_in_a_tx(int later_request)
{
    molt_db_pool_settings s = settings(1);
    s.cancel_timeout_ms = 1000;
    tp *t = tp_open(&s);
    res pid = q(t, "SELECT pg_backend_pid()::text");
    enum { ROUNDS = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
        nested(t, tx);
        res s1, s2, s3;
        txw rb = {0};
        molt_db_pool_req_id id1 = tx_sleep(tx, &s1);
        ASSERT_OK(molt_db_tx_rollback(tx, txw_done, &rb), NULL);
        molt_db_pool_req_id id2 = tx_submit(tx, "SELECT pg_sleep(5)::text", &s2);
        wait_backend_sleeping(t, pid.val);
        uint64_t t0 = uv_hrtime();
        ASSERT_OK(molt_db_pool_cancel(t->pool, id1), NULL); /* held: s2 runs */
        ASSERT_OK(molt_db_pool_cancel(t->pool, id2), NULL); /* goes for s1 */
        if (later_request)
            (void)tx_submit(tx, "SELECT 1::text", &s3);
        wait_done(t, &s2);
        if (later_request)
            wait_done(t, &s3);
        ASSERT_CODE(s1.status, MOLT_DB_ECANCELED);
        ASSERT_CODE(s2.status, MOLT_DB_ECANCELED);
        txw w;
        ASSERT_OK(tx_end(t, tx, 0, &w), NULL);
        uint64_t ms = (uv_hrtime() - t0) / 1000000;
        if (ms > 2000)
            FAIL_AT("round %d: the ROLLBACK waited %llu ms for the cancelled "
                    "statement", round, (unsigned long long)ms);
        ASSERT(rb.done); /* (a late-landing cancel may have stopped it) */
        wait_backend_idle(t, pid.val);
    }
    q_ok(t, "SELECT pg_backend_pid()::text", pid.val);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    ASSERT(st.cancel_requests >= ROUNDS && st.cancel_requests <= 2 * ROUNDS);
    tp_close(t);
}

TEST(tx_cancel_wanted_while_another_is_out)
{
    cancel_two_in_a_tx(0);
}

TEST(tx_cancel_behind_a_rollback_with_a_later_request)
{
    cancel_two_in_a_tx(1);
}

/* A pinned connection is never pipelined with outside requests. */
TEST(tx_pins_connection)
{
    molt_db_pool_settings s = settings(2);
    s.min_conns = 2;
    s.pipeline_depth = 16;
    tp *t = tp_open(&s);
    molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
    res txpid = txq(t, tx, "SELECT pg_backend_pid()::text");
    enum { N = 64 };
    res rs[N];
    for (int i = 0; i < N; i++)
        submit(t, "SELECT pg_backend_pid()::text", 0, NULL, &rs[i], 0);
    for (int i = 0; i < N; i++) {
        wait_done(t, &rs[i]);
        ASSERT_OK(rs[i].status, NULL);
        ASSERT(strcmp(rs[i].val, txpid.val) != 0);
    }
    txw w;
    ASSERT_OK(tx_end(t, tx, 1, &w), NULL);
    tp_close(t);
}

TEST(lifetime_and_idle)
{
    molt_db_pool_settings s = settings(2);
    s.max_lifetime_ms = 300;
    s.lifetime_jitter_pct = 0;
    s.max_idle_ms = 0;
    tp *t = tp_open(&s);
    res a = q(t, "SELECT pg_backend_pid()::text");
    run_for_ms(t, 400); /* expired while idle: the maintenance tick closes it */
    res b = q(t, "SELECT pg_backend_pid()::text");
    ASSERT(strcmp(a.val, b.val) != 0);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns_opened, 2);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    tp_close(t);

    s = settings(2);
    s.max_idle_ms = 200;
    s.min_conns = 1;
    t = tp_open(&s);
    res rs[2];
    submit(t, "SELECT pg_sleep(0.1)::text", 0, NULL, &rs[0], 0);
    submit(t, "SELECT pg_sleep(0.1)::text", 0, NULL, &rs[1], 0);
    wait_done(t, &rs[0]);
    wait_done(t, &rs[1]);
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns, 2);
    run_for_ms(t, 600); /* idle: back down to min_conns */
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.conns, 1);
    ASSERT_EQ_UINT(st.conns_idle, 1);
    tp_close(t);
}

/* An idle connection whose backend died is noticed and replaced; no
 * request sees an error. */
TEST(idle_backend_killed)
{
    molt_db_pool_settings s = settings(1);
    s.health_check_interval_ms = 100;
    tp *t = tp_open(&s);
    res a = q(t, "SELECT pg_backend_pid()::text");
    pgt_conn *c = pgt_connect(getenv("MOLT_TEST_DSN"));
    char sql[320];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", a.val);
    pgt_exec_ok(c, sql);
    pgt_close(c);
    run_for_ms(t, 300);
    res b = q(t, "SELECT pg_backend_pid()::text");
    ASSERT_OK(b.status, NULL);
    ASSERT(strcmp(a.val, b.val) != 0);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.failed, 0);
    ASSERT_EQ_UINT(st.conns_abandoned, 1);
    tp_close(t);
}

/* Server down: a clear connect error after max_wait_ms, reconnects back off,
 * and the pool recovers by itself when the server is back. */
TEST(server_down_recovery)
{
    const char *pgctl = test_env_or_skip("MOLT_TEST_PGCTL");
    molt_db_pool_settings s = settings(2);
    s.max_wait_ms = 400;
    s.reconnect_min_ms = 20;
    s.reconnect_max_ms = 200;
    tp *t = tp_open(&s);
    q_ok(t, "SELECT 1::text", "1");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" stop -m fast >/dev/null 2>&1", pgctl);
    ASSERT_EQ_INT(system(cmd), 0);
    run_for_ms(t, 100); /* the idle connection sees the shutdown */
    res r = q(t, "SELECT 1::text");
    ASSERT_CODE(r.status, MOLT_DB_ECONNECT);
    ASSERT_CONTAINS(r.msg, "connection to server");
    ASSERT_EQ_STR(r.sqlstate, "08001");
    ASSERT(molt_db_pool_connect_error(t->pool) != NULL);
    ASSERT_CONTAINS(molt_db_pool_connect_error(t->pool)->message, "connection to server");
    /* requests keep failing fast; attempts are spaced by the backoff */
    for (int i = 0; i < 10; i++) {
        r = q(t, "SELECT 1::text");
        ASSERT_CODE(r.status, MOLT_DB_ECONNECT);
        run_for_ms(t, 30);
    }
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    uint64_t failures = st.connect_failures;
    ASSERT(failures >= 2);          /* retried... */
    ASSERT(failures < 11);          /* ...with backoff, not per request */
    snprintf(cmd, sizeof cmd, "\"%s\" start -w >/dev/null 2>&1", pgctl);
    ASSERT_EQ_INT(system(cmd), 0);
    for (int i = 0;; i++) {
        r = q(t, "SELECT 'back'::text");
        if (r.status == MOLT_DB_OK)
            break;
        ASSERT(i < 20);
    }
    ASSERT_EQ_STR(r.val, "back");
    ASSERT(molt_db_pool_connect_error(t->pool) == NULL);
    tp_close(t);
}

/* A pool that can never connect answers with the reason at the first
 * failed attempt, not after max_wait_ms; the server's SQLSTATE comes along;
 * waiting requests fail together; new ones during the backoff fail fast and
 * make no attempt (no hammering a server that refuses the password). */
static void check_connect_fails_fast(const char *dsn, const char *sqlstate,
                                     const char *msg_part)
{
    molt_db_pool_settings s = settings(4);
    s.max_wait_ms = 20000;
    s.reconnect_min_ms = 2000;
    s.reconnect_max_ms = 2000;
    tp *t = tp_open_dsn(dsn, &s);
    res r[3];
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < 3; i++)
        submit(t, "SELECT 1::text", 0, NULL, &r[i], 0);
    for (int i = 0; i < 3; i++) {
        wait_done(t, &r[i]);
        ASSERT_CODE(r[i].status, MOLT_DB_ECONNECT);
        ASSERT_EQ_STR(r[i].sqlstate, sqlstate);
        ASSERT_CONTAINS(r[i].msg, msg_part);
    }
    res again = q(t, "SELECT 1::text");
    ASSERT_CODE(again.status, MOLT_DB_ECONNECT);
    ASSERT_EQ_STR(again.sqlstate, sqlstate);
    ASSERT((uv_hrtime() - t0) / 1000000u < 1500); /* not max_wait_ms */
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT(st.connect_failures >= 1 && st.connect_failures <= 4);
    ASSERT_EQ_UINT(st.conns_opened, 0);
    tp_close(t);
}

TEST(connect_error_fails_fast)
{
    test_env_or_skip("MOLT_TEST_DSN");
    const char *port = test_env_or_skip("MOLT_TEST_PGPORT");
    char dsn[512];
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%s user=molt_md5 password=wrong "
             "dbname=molt_test", port);
    check_connect_fails_fast(dsn, "28P01", "password authentication failed");
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%s user=molt dbname=no_such_db", port);
    check_connect_fails_fast(dsn, "3D000", "no_such_db");
    /* a port nobody listens on: 1 is privileged, never bound in tests */
    check_connect_fails_fast("host=127.0.0.1 port=1 user=molt dbname=x",
                             "08001", "connection to server");
    check_connect_fails_fast("host=no-such-host.invalid user=molt dbname=x",
                             "08001", "no-such-host.invalid");
}

TEST(server_statement_timeout)
{
    molt_db_pool_settings s = settings(1);
    s.statement_timeout_ms = 150;
    tp *t = tp_open(&s);
    res pid = q(t, "SELECT pg_backend_pid()::text");
    q_ok(t, "SHOW statement_timeout", "150ms");
    res r = q(t, "SELECT pg_sleep(2)");
    ASSERT_CODE(r.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(r.sqlstate, "57014");
    ASSERT_CONTAINS(r.msg, "statement timeout");
    q_ok(t, "SELECT pg_backend_pid()::text", pid.val); /* still clean */
    tp_close(t);
}

TEST(metrics_prometheus)
{
    molt_db_pool_settings s = settings(2);
    tp *t = tp_open(&s);
    for (int i = 0; i < 3; i++) {
        res r;
        memset(&r, 0, sizeof r);
        molt_db_result_handler h = handler(&r);
        molt_db_pool_query_options o = {0, "pk \"lookup\"", 0};
        ASSERT_OK(molt_db_pool_query(t->pool, "SELECT generate_series(1, 4)",
                                     0, NULL, &h, &o, NULL), NULL);
        wait_done(t, &r);
        ASSERT_OK(r.status, NULL);
    }
    res r = q(t, "SELECT 1/0");
    ASSERT_EQ_STR(r.sqlstate, "22012");
    submit(t, "SELECT pg_sleep(5)", 0, NULL, &r, 50);
    wait_done(t, &r);
    ASSERT_CODE(r.status, MOLT_DB_ETIMEDOUT);
    molt_db_tx *tx = tx_begin(t, MOLT_DB_ISOLATION_DEFAULT);
    txw w;
    ASSERT_OK(tx_end(t, tx, 1, &w), NULL);
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_pool_metrics_prometheus(t->pool, &b), NULL);
    molt_db_buf_put_u8(&b, 0);
    const char *txt = (const char *)b.data;
    ASSERT_CONTAINS(txt, "# TYPE molt_db_pool_query_seconds histogram\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_query_seconds_count{tag=\"pk \\\"lookup\\\"\"} 3\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_query_seconds_bucket{tag=\"pk \\\"lookup\\\"\",le=\"+Inf\"} 3\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_rows_total 12\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_errors_total{sqlstate_class=\"22\"} 1\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_errors_total{code=\"MOLT_DB_ETIMEDOUT\"} 1\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_commits_total 1\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_transaction_seconds_count 1\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_connections_opened_total ");
    ASSERT_CONTAINS(txt, "molt_db_pool_acquire_seconds_bucket{le=\"2.5e-05\"} ");
    ASSERT_CONTAINS(txt, "# TYPE molt_db_pool_received_bytes_total counter\n");
    ASSERT_CONTAINS(txt, "molt_db_pool_resends_total 0\n");
    /* bytes: what the text says is what the stats say, and a known query
     * moves them by at least its own messages */
    molt_db_pool_stats st0;
    molt_db_pool_get_stats(t->pool, &st0);
    unsigned long long in = 0, out = 0;
    const char *pin = strstr(txt, "\nmolt_db_pool_received_bytes_total ");
    const char *pout = strstr(txt, "\nmolt_db_pool_sent_bytes_total ");
    ASSERT(pin && pout);
    ASSERT_EQ_INT(sscanf(pin, "\nmolt_db_pool_received_bytes_total %llu", &in), 1);
    ASSERT_EQ_INT(sscanf(pout, "\nmolt_db_pool_sent_bytes_total %llu", &out), 1);
    ASSERT_EQ_UINT(in, st0.bytes_in);
    ASSERT_EQ_UINT(out, st0.bytes_out);
    ASSERT(in > 0 && out > 0);
    static const char big[] = "SELECT repeat('x', 5000) -- padding the query text to a known size";
    q_ok(t, big, NULL);
    molt_db_pool_stats st1;
    molt_db_pool_get_stats(t->pool, &st1);
    ASSERT(st1.bytes_out - st0.bytes_out >= sizeof big);  /* the Parse */
    ASSERT(st1.bytes_in - st0.bytes_in >= 5000);          /* the row */
    molt_db_buf_free(&b);
    tp_close(t);
}

/* ---- read-only batches ------------------------------------------------- */

static tp *batch_pool(void)
{
    molt_db_pool_settings s = settings(1);
    s.min_conns = 1;
    s.pipeline_depth = 64;
    s.cancel_timeout_ms = 1000;
    tp *t = tp_open(&s);
    q_ok(t, "SELECT 1::text", "1"); /* the connection is open */
    return t;
}

static void run_until_all_done(tp *t, res *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wait_done(t, &rs[i]);
}

/* Requests in one batch share a Sync; one failing makes the server skip
 * the rest of its batch. The failure stays its own, the skipped ones are
 * sent again and the caller never sees the skip. */
TEST(batch_error_isolation)
{
    enum { N = 600, K = 9 };
    tp *t = batch_pool();
    every_kth_fails(t, N, K, 1);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.failed, (N + K - 1) / K);
    ASSERT(st.resends > 0); /* Syncs were shared: skips happened */
    ASSERT_EQ_UINT(st.conns_opened, 1);
    fprintf(stderr, "  %d requests, %llu failed, %llu skipped and sent again\n",
            N, (unsigned long long)st.failed, (unsigned long long)st.resends);
    tp_close(t);
}

/* Prepares sql (a failing run is fine) so that later requests of it join
 * a batch at once instead of waiting for the Parse. */
static void prepare(tp *t, const char *sql, const char *arg)
{
    molt_db_param p = arg ? text_param(arg)
                          : (molt_db_param){0, MOLT_DB_FORMAT_TEXT, -1, NULL};
    res r;
    submit(t, sql, 1, &p, &r, 0);
    wait_done(t, &r);
}

static const char *const SEL5 = "SELECT ($1::int4 + 5)::text";

/* N read-only requests in one batch, all SEL5 but `odd` at index k. */
static void one_batch(tp *t, res *rs, int n, int k, const char *odd)
{
    char args[64][8];
    ASSERT(n <= 64);
    for (int i = 0; i < n; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        submit_ro(t, i == k ? odd : SEL5, 1, &p, &rs[i], 0);
    }
    run_until_all_done(t, rs, (size_t)n);
    for (int i = 0; i < n; i++)
        if (i != k)
            expect_plus5(&rs[i], i);
}

/* A write marked read-only in a shared batch is refused by the server (the
 * batch is a read-only transaction), so it cannot be rolled back unseen
 * when a neighbour fails; its neighbours are unharmed. PostgreSQL allows
 * writes to temporary tables in read-only transactions: one that a later
 * failure in its batch rolled back is reported as such, never as done. */
TEST(batch_write_refused)
{
    tp *t = batch_pool();
    q_ok(t, "DROP TABLE IF EXISTS batch_w", NULL);
    q_ok(t, "CREATE TABLE batch_w (x int4 NOT NULL)", NULL);
    q_ok(t, "CREATE TEMP TABLE batch_tmp (x int4 NOT NULL)", NULL);
    const char *ins = "INSERT INTO batch_w VALUES ($1::int4) RETURNING x::text";
    const char *tmp = "INSERT INTO batch_tmp VALUES ($1::int4) RETURNING x::text";
    const char *div = "SELECT (1 / ($1::int4 - 6))::text";
    prepare(t, ins, NULL); /* 23502: prepared, nothing inserted */
    prepare(t, tmp, NULL);
    prepare(t, div, "0");
    prepare(t, SEL5, "0");
    enum { N = 10 };
    res rs[N];
    one_batch(t, rs, N, 4, ins);
    ASSERT_CODE(rs[4].status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(rs[4].sqlstate, "25006");
    q_ok(t, "SELECT count(*)::text FROM batch_w", "0");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.resends, N - 4 - 1); /* those after the write */
    /* temp table write at 2, then SEL5 of 6 divides by zero... */
    char args[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        submit_ro(t, i == 2 ? tmp : i == 6 ? div : SEL5, 1, &p, &rs[i], 0);
    }
    run_until_all_done(t, rs, N);
    ASSERT_CODE(rs[2].status, MOLT_DB_ESTATE);
    ASSERT_CONTAINS(rs[2].msg, "rolled back");
    ASSERT_EQ_STR(rs[6].sqlstate, "22012");
    for (int i = 0; i < N; i++)
        if (i != 2 && i != 6)
            expect_plus5(&rs[i], i);
    q_ok(t, "SELECT count(*)::text FROM batch_tmp", "0");
    q_ok(t, "DROP TABLE batch_w", NULL);
    tp_close(t);
}

/* DEALLOCATE ALL behind our back removes the batch guard too: the next
 * batch is skipped whole (the guard fails with 26000), every member is sent
 * again and re-prepared, and the batch after it has its guard back. */
TEST(batch_deallocate_all)
{
    tp *t = batch_pool();
    prepare(t, SEL5, "0");
    enum { N = 10 };
    res rs[N];
    one_batch(t, rs, N, -1, NULL);
    q_ok(t, "SELECT count(*)::text FROM pg_prepared_statements "
            "WHERE name = 'molt_batch_ro'", "1");
    q_ok(t, "DEALLOCATE ALL", NULL);
    one_batch(t, rs, N, -1, NULL);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.resends, N);
    ASSERT(st.reprepares >= 1);
    one_batch(t, rs, N, -1, NULL);
    q_ok(t, "SELECT count(*)::text FROM pg_prepared_statements "
            "WHERE name = 'molt_batch_ro'", "1");
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.resends, N);
    ASSERT_EQ_UINT(st.failed, 0);
    tp_close(t);
}

/* Batches under mixed trouble: failures, cancels right away and later,
 * 1 ms deadlines, over two pipelined connections. Every request ends once
 * with what it deserves (its own answer, its own error, or its cancel or
 * timeout), a skip never reaches the caller, and the counters balance. */
TEST(batch_mixed_trouble)
{
    enum { N = 4000 };
    molt_db_pool_settings s = settings(2);
    s.min_conns = 2;
    s.pipeline_depth = 32;
    s.max_wait_ms = 60000;
    tp *t = tp_open(&s);
    prepare(t, SEL5, "0");
    res *rs = calloc(N, sizeof *rs);
    char (*args)[16] = calloc(N, sizeof *args);
    molt_db_pool_req_id *ids = calloc(N, sizeof *ids);
    ASSERT(rs && args && ids);
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        ids[i] = submit_ro(t, i % 13 == 0 ? "SELECT ($1::int4 / 0)::text" : SEL5,
                           1, &p, &rs[i], i % 19 == 7 ? 1 : 0);
        if (i % 17 == 5)
            ASSERT_OK(molt_db_pool_cancel(t->pool, ids[i]), NULL);
        if (i % 50 == 49) /* let batches form and answers come */
            uv_run(&t->loop, UV_RUN_NOWAIT);
        if (i % 23 == 3 && i >= 100) {
            int rc = molt_db_pool_cancel(t->pool, ids[i - 100]);
            ASSERT(rc == MOLT_DB_OK || rc == MOLT_DB_ESTATE);
        }
    }
    run_until_all_done(t, rs, N);
    int ok = 0, cancelled = 0, timed_out = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        int late_cancel = (i + 100) % 23 == 3 && i + 100 < N;
        int st = rs[i].status;
        if (st == MOLT_DB_ECANCELED) {
            ASSERT(i % 17 == 5 || late_cancel);
            cancelled++;
        } else if (st == MOLT_DB_ETIMEDOUT) {
            ASSERT(i % 19 == 7);
            timed_out++;
        } else if (i % 13 == 0) {
            ASSERT_CODE(st, MOLT_DB_ESERVER);
            ASSERT_EQ_STR(rs[i].sqlstate, "22012");
            failed++;
        } else {
            ASSERT(i % 17 != 5);
            expect_plus5(&rs[i], i);
            ok++;
        }
    }
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    fprintf(stderr, "  ok %d, failed %d, cancelled %d, timed out %d; resends %llu, "
            "cancel requests %llu, conns opened %llu\n", ok, failed, cancelled,
            timed_out, (unsigned long long)st.resends,
            (unsigned long long)st.cancel_requests,
            (unsigned long long)st.conns_opened);
    ASSERT(st.resends > 0);
    q_ok(t, "SELECT 'still fine'::text", "still fine");
    free(rs);
    free(args);
    free(ids);
    tp_close(t);
}

/* One request of a batch cancelled (or timed out) while it runs: it ends at
 * once and a CancelRequest stops its query on the server at once, because
 * every live neighbour behind it is read-only: those the server skipped
 * (or that a late-landing cancel hit) go again and complete with their own
 * results, long before the 30 s query would have ended. */
static void cancel_one_in_batch(int use_timeout)
{
    tp *t = batch_pool();
    res pid = q(t, "SELECT pg_backend_pid()::text");
    enum { N = 21 };
    res rs[N];
    char args[N][8];
    const char *sleep = "SELECT pg_sleep($1::float8)::text";
    prepare(t, sleep, "0"); /* prepared: the batch below forms at once */
    prepare(t, SEL5, "0");
    molt_db_param secs = text_param("30");
    molt_db_pool_req_id id = submit_ro(t, sleep, 1, &secs, &rs[0],
                                       use_timeout ? 100 : 0);
    for (int i = 1; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        submit_ro(t, SEL5, 1, &p, &rs[i], 0);
    }
    run_for_ms(t, 100 - (use_timeout ? 50 : 0));
    uint64_t t0 = uv_hrtime();
    if (!use_timeout)
        ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    wait_done(t, &rs[0]);
    ASSERT_CODE(rs[0].status, use_timeout ? MOLT_DB_ETIMEDOUT : MOLT_DB_ECANCELED);
    ASSERT((rs[0].t_done_ns - t0) / 1000000 < 100);
    run_until_all_done(t, rs, N);
    for (int i = 1; i < N; i++) {
        expect_plus5(&rs[i], i); /* none got 57014 */
        ASSERT((rs[i].t_done_ns - t0) / 1000000 < 2000);
    }
    molt_db_pool_stats st = expect_backend_back(t, pid.val);
    ASSERT(st.resends >= N - 1); /* skipped behind the cancelled one */
    tp_close(t);
}

TEST(batch_cancel_one) { cancel_one_in_batch(0); }
TEST(batch_timeout_one) { cancel_one_in_batch(1); }

/* A cancelled request with a live neighbour that is not read-only behind
 * it: the CancelRequest waits (it could land once the neighbour runs, and a
 * write cannot simply be sent again), the cancelled one still ends at once
 * for its caller, and the neighbour completes with its own result. */
TEST(cancel_held_for_a_writer)
{
    tp *t = batch_pool();
    res pid = q(t, "SELECT pg_backend_pid()::text");
    res rs[2];
    const char *sleep = "SELECT pg_sleep($1::float8)::text";
    prepare(t, sleep, "0");
    molt_db_param secs = text_param("0.4"), one = text_param("1");
    molt_db_pool_req_id id = submit_ro(t, sleep, 1, &secs, &rs[0], 0);
    submit(t, SEL5, 1, &one, &rs[1], 0); /* not marked read-only */
    run_for_ms(t, 100);
    uint64_t t0 = uv_hrtime();
    ASSERT_OK(molt_db_pool_cancel(t->pool, id), NULL);
    wait_done(t, &rs[0]);
    ASSERT_CODE(rs[0].status, MOLT_DB_ECANCELED);
    ASSERT((rs[0].t_done_ns - t0) / 1000000 < 100);
    wait_done(t, &rs[1]);
    ASSERT_OK(rs[1].status, NULL);
    ASSERT_EQ_STR(rs[1].val, "6");
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    ASSERT_EQ_UINT(st.cancel_requests, 0);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    q_ok(t, "SELECT pg_backend_pid()::text", pid.val);
    tp_close(t);
}

/* As submit, inside BEGIN READ ONLY ... ROLLBACK: its own Sync, never
 * batched, and sent again if a neighbour's cancel stops it. */
static molt_db_pool_req_id submit_rotx(tp *t, const char *sql, size_t n,
                                       const molt_db_param *p, res *r)
{
    molt_db_pool_query_options o = {0, NULL, 0, 1};
    return submit_opts(t, sql, n, p, r, &o);
}

/* A CancelRequest that lands after the cancelled query ended stops the
 * read-only neighbour behind it instead: that one gets 57014 and is sent
 * again, so its caller sees its own result. Made certain by pausing the
 * connection's reading: the server answers the head (unread) and runs the
 * neighbour's sleep when the cancel for the head goes out. */
TEST(cancel_landing_late_resends_the_neighbour)
{
    tp *t = batch_pool();
    res pid = q(t, "SELECT pg_backend_pid()::text");
    const char *sleep = "SELECT pg_sleep($1::float8)::text";
    prepare(t, sleep, "0"); /* prepared: the neighbour is resendable */
    prepare(t, SEL5, "0");
    res rs[2];
    molt_db_param one = text_param("1"), secs = text_param("0.5");
    molt_db_pool_req_id head = submit_rotx(t, SEL5, 1, &one, &rs[0]);
    submit_rotx(t, sleep, 1, &secs, &rs[1]);
    ASSERT_OK(molt_db_pool_pause(t->pool, head), NULL);
    run_for_ms(t, 200); /* the head's answer waits unread; the sleep runs */
    uint64_t t0 = uv_hrtime();
    ASSERT_OK(molt_db_pool_cancel(t->pool, head), NULL);
    run_until_all_done(t, rs, 2);
    ASSERT_CODE(rs[0].status, MOLT_DB_ECANCELED);
    ASSERT_OK(rs[1].status, NULL);
    ASSERT_EQ_STR(rs[1].val, "");
    /* it ran again in full after the cancel stopped it */
    ASSERT((rs[1].t_done_ns - t0) / 1000000 >= 450);
    molt_db_pool_stats st = expect_backend_back(t, pid.val);
    /* once; twice when PostgreSQL's second signal (to the backend's process
     * group, after the one to its pid) lands in the resent sleep too, which
     * a loaded machine makes possible */
    ASSERT(st.resends >= 1 && st.resends <= 2);
    tp_close(t);
}

/* Three cancelled long queries in a row on a pipelined connection, each
 * with its own Sync, read-only neighbours between them: each gets a
 * CancelRequest of its own when its turn comes, the neighbours complete
 * (sent again if a cancel meant for a neighbour stopped them), nothing
 * waits 30 s. */
TEST(cancel_several_in_line)
{
    tp *t = batch_pool();
    res pid = q(t, "SELECT pg_backend_pid()::text");
    enum { N = 6 };
    res rs[N];
    molt_db_pool_req_id ids[N];
    char args[N][8];
    const char *sleep = "SELECT pg_sleep($1::float8)::text";
    prepare(t, sleep, "0");
    prepare(t, SEL5, "0");
    molt_db_param secs = text_param("30");
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = text_param(args[i]);
        ids[i] = i % 2 ? submit_rotx(t, SEL5, 1, &p, &rs[i])
                       : submit_rotx(t, sleep, 1, &secs, &rs[i]);
    }
    run_for_ms(t, 100);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < N; i += 2)
        ASSERT_OK(molt_db_pool_cancel(t->pool, ids[i]), NULL);
    run_until_all_done(t, rs, N);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0)
            ASSERT_CODE(rs[i].status, MOLT_DB_ECANCELED);
        else
            expect_plus5(&rs[i], i);
        ASSERT((rs[i].t_done_ns - t0) / 1000000 < 3000);
    }
    wait_backend_idle(t, pid.val);
    q_ok(t, "SELECT pg_backend_pid()::text", pid.val);
    molt_db_pool_stats st;
    molt_db_pool_get_stats(t->pool, &st);
    /* 3, or fewer: the postmaster signals the backend and then its process
     * group, and when the backend runs between the two (one core), one
     * CancelRequest stops two queries in a row. */
    ASSERT(st.cancel_requests >= 1 && st.cancel_requests <= 3);
    ASSERT_EQ_UINT(st.conns_abandoned, 0);
    tp_close(t);
}

/* Every request of a batch cancelled while the first runs: one
 * CancelRequest, everyone ends at once, the skipped ones are not sent
 * again, and the backend is idle and reused. */
TEST(batch_cancel_all)
{
    tp *t = batch_pool();
    res pid = q(t, "SELECT pg_backend_pid()::text");
    enum { N = 6 };
    res rs[N];
    molt_db_pool_req_id ids[N];
    const char *sleep = "SELECT pg_sleep($1::float8)::text";
    prepare(t, sleep, "0");
    prepare(t, SEL5, "0");
    molt_db_param secs = text_param("30"), one = text_param("1");
    ids[0] = submit_ro(t, sleep, 1, &secs, &rs[0], 0);
    for (int i = 1; i < N; i++)
        ids[i] = submit_ro(t, SEL5, 1, &one, &rs[i], 0);
    run_for_ms(t, 200);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < N; i++)
        ASSERT_OK(molt_db_pool_cancel(t->pool, ids[i]), NULL);
    run_until_all_done(t, rs, N);
    for (int i = 0; i < N; i++) {
        ASSERT_CODE(rs[i].status, MOLT_DB_ECANCELED);
        ASSERT((rs[i].t_done_ns - t0) / 1000000 < 100);
    }
    molt_db_pool_stats st = expect_backend_back(t, pid.val);
    ASSERT_EQ_UINT(st.resends, 0);
    tp_close(t);
}

TEST_MAIN(TEST_ENTRY(bad_settings), TEST_ENTRY(modes),
          TEST_ENTRY(concurrent_10k), TEST_ENTRY(fifo_one_conn), TEST_ENTRY(pipelined),
          TEST_ENTRY(exhausted), TEST_ENTRY(cancel_waiting),
          TEST_ENTRY(cancel_race), TEST_ENTRY(dirty_release),
          TEST_ENTRY(stmt_cache_eviction), TEST_ENTRY(reprepare_alter_table),
          TEST_ENTRY(reprepare_deallocate_all), TEST_ENTRY(cancel_running),
          TEST_ENTRY(timeout_running), TEST_ENTRY(tx_commit_rollback),
          TEST_ENTRY(tx_savepoints), TEST_ENTRY(tx_serializable_conflict),
          TEST_ENTRY(tx_cancel_inside), TEST_ENTRY(tx_cancel_inside_keeps_the_transaction),
          TEST_ENTRY(tx_cancel_over_while_the_next_statement_runs),
          TEST_ENTRY(tx_cancel_wanted_while_another_is_out),
          TEST_ENTRY(tx_cancel_behind_a_rollback_with_a_later_request),
          TEST_ENTRY(tx_pins_connection),
          TEST_ENTRY(connect_error_fails_fast),
          TEST_ENTRY(server_statement_timeout),
          TEST_ENTRY(lifetime_and_idle), TEST_ENTRY(idle_backend_killed),
          TEST_ENTRY(metrics_prometheus), TEST_ENTRY(terminated_backend),
          TEST_ENTRY(server_restart), TEST_ENTRY(server_down_recovery),
          TEST_ENTRY(batch_error_isolation), TEST_ENTRY(batch_write_refused),
          TEST_ENTRY(batch_cancel_one), TEST_ENTRY(batch_timeout_one),
          TEST_ENTRY(batch_cancel_all), TEST_ENTRY(cancel_held_for_a_writer),
          TEST_ENTRY(cancel_several_in_line),
          TEST_ENTRY(cancel_landing_late_resends_the_neighbour),
          TEST_ENTRY(batch_deallocate_all),
          TEST_ENTRY(batch_mixed_trouble))
