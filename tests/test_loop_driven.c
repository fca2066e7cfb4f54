/*
 * The driven adapter against the real server, with a plain poll() loop of
 * the test's own and no libuv anywhere in this file: a connection (queries,
 * a pipeline, a cancel of a running query, a connect timeout) and a pool
 * (concurrent requests, a deadline, a cancel), then the loop's own
 * contract (what the fd and the timeout say, timers freed in callbacks).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h" /* the hooks, for the loop's own contract */
#include "molt_db/conn.h"
#include "molt_db/loop_driven.h"
#include "molt_db/pool.h"
#include "test.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One turn the way a caller with its own poller does it: wait on the
 * loop's fd for at most its timeout, then run what is ready without
 * blocking. */
static void turn(molt_db_loop *loop)
{
    struct pollfd p = {molt_db_loop_driven_fd(loop), POLLIN, 0};
    int t = molt_db_loop_driven_timeout(loop);
    if (t < 0 || t > 200)
        t = 200;
    ASSERT(poll(&p, 1, t) >= 0 || errno == EINTR);
    ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 0), 0);
}

static void run_until(molt_db_loop *loop, const int *flag, double seconds)
{
    double end = now_s() + seconds;
    while (!*flag) {
        if (now_s() > end)
            FAIL_AT("nothing happened within %.1f s", seconds);
        turn(loop);
    }
}

/* ---- a result ---------------------------------------------------------- */

typedef struct res {
    int done, status;
    int rows;
    long long first;          /* the first field of the last row, as text */
    char sqlstate[6];
    double t_done;
} res;

static int on_row(void *ud, const molt_db_field *f, size_t n)
{
    res *r = ud;
    r->rows++;
    if (n > 0 && f[0].len > 0 && f[0].len < 32) {
        char s[32];
        memcpy(s, f[0].data, (size_t)f[0].len);
        s[f[0].len] = 0;
        r->first = atoll(s);
    }
    return MOLT_DB_OK;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    res *r = ud;
    r->done = 1;
    r->status = status;
    r->t_done = now_s();
    if (err != NULL)
        memcpy(r->sqlstate, err->sqlstate, sizeof r->sqlstate);
}

static molt_db_result_handler handler(res *r)
{
    molt_db_result_handler h = {NULL, on_row, NULL, on_done, r};
    return h;
}

/* ---- a connection ------------------------------------------------------ */

typedef struct conn_wait {
    int done, status;
    molt_db_error err;
} conn_wait;

static void on_connect(molt_db_conn *c, int status, const molt_db_error *err,
                       void *ud)
{
    (void)c;
    conn_wait *w = ud;
    w->done = 1;
    w->status = status;
    if (err != NULL)
        molt_db_error_copy(&w->err, err);
}

static void on_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    *(int *)ud = 1;
}

static molt_db_conn *connect_dsn(molt_db_loop *loop, const char *dsn,
                                 conn_wait *w)
{
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, &err), &err);
    molt_db_conn *c = NULL;
    memset(w, 0, sizeof *w);
    molt_db_error_init(&w->err);
    ASSERT_OK(molt_db_conn_connect(loop, ci, NULL, on_connect, w, &c, &err), &err);
    molt_db_conninfo_free(ci);
    ASSERT(!w->done); /* never inside the call */
    run_until(loop, &w->done, 30);
    return c;
}

static void close_conn(molt_db_loop *loop, molt_db_conn *c)
{
    int closed = 0;
    molt_db_conn_close(c, on_closed, &closed);
    ASSERT(!closed);
    run_until(loop, &closed, 10);
}

TEST(conn_queries_pipeline_and_cancel)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    molt_db_loop *loop = NULL;
    ASSERT_OK(molt_db_loop_driven_new(&loop, NULL), NULL);
    ASSERT(molt_db_loop_driven_is(loop));
    conn_wait w;
    molt_db_conn *c = connect_dsn(loop, dsn, &w);
    ASSERT_OK(w.status, &w.err);

    /* one query with parameters: the value comes back computed */
    res one = {0};
    molt_db_param p = {0, MOLT_DB_FORMAT_TEXT, 2, (const uint8_t *)"41"};
    molt_db_result_handler h = handler(&one);
    ASSERT_OK(molt_db_conn_query(c, "SELECT ($1::int8 + 1)::text", 1, &p, &h), NULL);
    run_until(loop, &one.done, 10);
    ASSERT_OK(one.status, NULL);
    ASSERT_EQ_INT(one.rows, 1);
    ASSERT_EQ_INT(one.first, 42);

    /* a pipeline: 64 requests written before any answer is read, each
     * answered in order with its own value; one error in the middle fails
     * only itself */
    enum { N = 64 };
    res rs[N];
    memset(rs, 0, sizeof rs);
    char sql[N][64];
    for (int i = 0; i < N; i++) {
        if (i == 20)
            snprintf(sql[i], sizeof sql[i], "SELECT 1/0");
        else
            snprintf(sql[i], sizeof sql[i], "SELECT %d * 1000 + g FROM generate_series(1,3) g", i);
        molt_db_result_handler hi = handler(&rs[i]);
        ASSERT_OK(molt_db_conn_simple_query(c, sql[i], &hi), NULL);
    }
    run_until(loop, &rs[N - 1].done, 20);
    for (int i = 0; i < N; i++) {
        ASSERT(rs[i].done);
        if (i == 20) {
            ASSERT_CODE(rs[i].status, MOLT_DB_ESERVER);
            ASSERT_EQ_STR(rs[i].sqlstate, "22012");
            continue;
        }
        ASSERT_OK(rs[i].status, NULL);
        ASSERT_EQ_INT(rs[i].rows, 3);
        ASSERT_EQ_INT(rs[i].first, i * 1000 + 3);
    }

    /* a cancel of a running query: the server stops it (57014) long before
     * its 30 s, and the connection serves the next query */
    res slow = {0};
    molt_db_result_handler hs = handler(&slow);
    ASSERT_OK(molt_db_conn_simple_query(c, "SELECT pg_sleep(30)", &hs), NULL);
    double t0 = now_s();
    while (now_s() - t0 < 0.3)
        turn(loop); /* the query is running on the server */
    res cancel = {0};
    ASSERT_OK(molt_db_conn_cancel(c, 5000, on_done, &cancel), NULL);
    run_until(loop, &slow.done, 10);
    ASSERT_CODE(slow.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(slow.sqlstate, "57014");
    ASSERT(slow.t_done - t0 < 5.0);
    run_until(loop, &cancel.done, 10);
    ASSERT_OK(cancel.status, NULL);
    res after = {0};
    molt_db_result_handler ha = handler(&after);
    ASSERT_OK(molt_db_conn_simple_query(c, "SELECT 7", &ha), NULL);
    run_until(loop, &after.done, 10);
    ASSERT_OK(after.status, NULL);
    ASSERT_EQ_INT(after.first, 7);

    close_conn(loop, c);
    /* nothing left: no timer, no deferred call */
    ASSERT_EQ_INT(molt_db_loop_driven_timeout(loop), -1);
    molt_db_loop_free(loop);
}

/* A server that accepts the TCP connection and never answers: the connect
 * timer of the driven loop ends the attempt. */
TEST(conn_connect_timeout)
{
    test_env_or_skip("MOLT_TEST_DSN");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ_INT(listen(s, 4), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ_INT(getsockname(s, (struct sockaddr *)&a, &len), 0);
    char dsn[128];
    snprintf(dsn, sizeof dsn, "postgresql://u@127.0.0.1:%u/db?connect_timeout=1&sslmode=disable",
             (unsigned)ntohs(a.sin_port));
    molt_db_loop *loop = NULL;
    ASSERT_OK(molt_db_loop_driven_new(&loop, NULL), NULL);
    conn_wait w;
    double t0 = now_s();
    connect_dsn(loop, dsn, &w);
    double took = now_s() - t0;
    ASSERT_CODE(w.status, MOLT_DB_ETIMEDOUT);
    ASSERT_CONTAINS(w.err.message, "timeout expired");
    ASSERT(took >= 0.9 && took < 5.0);
    /* the failed connection frees itself from the loop */
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 0), 0);
    ASSERT_EQ_INT(molt_db_loop_driven_timeout(loop), -1);
    molt_db_loop_free(loop);
    close(s);
}

/* ---- a pool ------------------------------------------------------------ */

static void on_pool_closed(molt_db_pool *p, void *ud)
{
    (void)p;
    *(int *)ud = 1;
}

TEST(pool_requests_deadline_and_cancel)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    molt_db_loop *loop = NULL;
    ASSERT_OK(molt_db_loop_driven_new(&loop, NULL), NULL);
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, &err), &err);
    molt_db_pool_settings s;
    molt_db_pool_settings_init(&s);
    s.max_conns = 4;
    molt_db_pool *pool = NULL;
    ASSERT_OK(molt_db_pool_open(loop, ci, &s, &pool, &err), &err);
    molt_db_conninfo_free(ci);

    /* 200 concurrent requests over 4 connections, each its own answer */
    enum { N = 200 };
    res rs[N];
    memset(rs, 0, sizeof rs);
    char args[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i);
        molt_db_param p = {23, MOLT_DB_FORMAT_TEXT, (int32_t)strlen(args[i]),
                           (const uint8_t *)args[i]};
        molt_db_result_handler h = handler(&rs[i]);
        ASSERT_OK(molt_db_pool_query(pool, "SELECT ($1::int4 * 3)::text", 1, &p,
                                     &h, NULL, NULL), NULL);
    }
    for (int i = 0; i < N; i++) {
        run_until(loop, &rs[i].done, 30);
        ASSERT_OK(rs[i].status, NULL);
        ASSERT_EQ_INT(rs[i].first, i * 3);
    }
    molt_db_pool_stats st;
    molt_db_pool_get_stats(pool, &st);
    ASSERT(st.conns >= 1 && st.conns <= 4);

    /* a deadline: ETIMEDOUT at about 300 ms, not after the 30 s sleep */
    res late = {0};
    molt_db_pool_query_options o = {0};
    o.timeout_ms = 300;
    molt_db_result_handler hl = handler(&late);
    double t0 = now_s();
    ASSERT_OK(molt_db_pool_query(pool, "SELECT pg_sleep(30)", 0, NULL, &hl, &o,
                                 NULL), NULL);
    run_until(loop, &late.done, 10);
    ASSERT_CODE(late.status, MOLT_DB_ETIMEDOUT);
    ASSERT(late.t_done - t0 >= 0.25 && late.t_done - t0 < 3.0);

    /* a cancel by id while it runs on the server */
    res cancelled = {0};
    molt_db_pool_req_id id = 0;
    molt_db_result_handler hc = handler(&cancelled);
    ASSERT_OK(molt_db_pool_query(pool, "SELECT pg_sleep(30)", 0, NULL, &hc, NULL,
                                 &id), NULL);
    t0 = now_s();
    while (now_s() - t0 < 0.3)
        turn(loop);
    ASSERT_OK(molt_db_pool_cancel(pool, id), NULL);
    ASSERT(!cancelled.done);
    run_until(loop, &cancelled.done, 10);
    ASSERT_CODE(cancelled.status, MOLT_DB_ECANCELED);

    /* the server confirmed both cancels in the background: no pg_sleep of
     * ours is left running, and the pool still answers */
    int left = -1;
    for (int k = 0; k < 100 && left != 0; k++) {
        res q = {0};
        molt_db_result_handler hq = handler(&q);
        ASSERT_OK(molt_db_pool_query(pool, "SELECT count(*)::text FROM pg_stat_activity "
                                     "WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
                                     0, NULL, &hq, NULL, NULL), NULL);
        run_until(loop, &q.done, 10);
        ASSERT_OK(q.status, NULL);
        left = (int)q.first;
        double until = now_s() + 0.05;
        while (left != 0 && now_s() < until)
            turn(loop);
    }
    ASSERT_EQ_INT(left, 0);
    molt_db_pool_get_stats(pool, &st);
    ASSERT_EQ_UINT(st.requests, st.completed);

    int closed = 0;
    molt_db_pool_close(pool, on_pool_closed, &closed);
    ASSERT(!closed); /* from the loop, never inside the call */
    run_until(loop, &closed, 10);
    ASSERT_EQ_INT(molt_db_loop_driven_timeout(loop), -1);
    molt_db_loop_free(loop);
}

/* ---- the loop's own contract, through its hooks ----------------------- */

typedef struct probe {
    molt_db_loop *loop;
    void *self;               /* a timer that frees itself when it fires */
    int order[8], n;
    int id;
} probe;

static probe *g_probe;

static void on_timer_a(void *arg) { (void)arg; g_probe->order[g_probe->n++] = 1; }
static void on_timer_b(void *arg) { (void)arg; g_probe->order[g_probe->n++] = 2; }

static void on_timer_self(void *arg)
{
    probe *p = arg;
    p->order[p->n++] = 3;
    molt_db__timer_free(p->loop, &p->self); /* from its own callback */
}

static void on_defer(void *arg)
{
    probe *p = arg;
    p->order[p->n++] = 4;
}

static void on_readable(void *arg, int events)
{
    probe *p = arg;
    if (events & MOLT_DB_LOOP_READ)
        p->order[p->n++] = 5;
}

TEST(driven_loop_contract)
{
    molt_db_loop *loop = NULL;
    ASSERT_OK(molt_db_loop_driven_new(&loop, NULL), NULL);
    probe p = {0};
    p.loop = loop;
    g_probe = &p;
    ASSERT_EQ_INT(molt_db_loop_driven_timeout(loop), -1); /* nothing at all */

    /* timers run in due order; a stopped one never; one freed in its own
     * callback is fine; the timeout says how long until the first */
    void *a = molt_db__timer_new(loop, 0, on_timer_a, &p);
    void *b = molt_db__timer_new(loop, MOLT_DB_LOOP_WEAK, on_timer_b, &p);
    void *c = molt_db__timer_new(loop, 0, on_timer_a, &p);
    p.self = molt_db__timer_new(loop, 0, on_timer_self, &p);
    ASSERT(a && b && c && p.self);
    molt_db__timer_start(loop, b, 60);
    molt_db__timer_start(loop, a, 30);
    molt_db__timer_start(loop, c, 10);
    molt_db__timer_start(loop, p.self, 45);
    molt_db__timer_stop(loop, c);
    int t = molt_db_loop_driven_timeout(loop);
    ASSERT(t > 0 && t <= 30);
    double end = now_s() + 2;
    while (p.n < 3 && now_s() < end)
        ASSERT_EQ_INT(molt_db_loop_driven_run(loop, -1), 0); /* waits itself */
    ASSERT_EQ_INT(p.n, 3);
    ASSERT_EQ_INT(p.order[0], 1);
    ASSERT_EQ_INT(p.order[1], 3);
    ASSERT_EQ_INT(p.order[2], 2);
    ASSERT(p.self == NULL);
    ASSERT_EQ_INT(molt_db_loop_driven_timeout(loop), -1);

    /* a deferred call makes the timeout 0 and runs before any wait */
    p.n = 0;
    void *d = loop->h.defer_new(loop->data, on_defer, &p);
    ASSERT(d != NULL);
    loop->h.defer_start(loop->data, d);
    loop->h.defer_start(loop->data, d); /* due already: once */
    ASSERT_EQ_INT(molt_db_loop_driven_timeout(loop), 0);
    double t0 = now_s();
    ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 500), 0);
    ASSERT(now_s() - t0 < 0.4); /* did not wait: the deferred call was due */
    ASSERT_EQ_INT(p.n, 1);
    ASSERT_EQ_INT(p.order[0], 4);
    /* freed while due: never runs */
    loop->h.defer_start(loop->data, d);
    loop->h.defer_free(loop->data, d);
    ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 0), 0);
    ASSERT_EQ_INT(p.n, 1);

    /* a watched pipe: the loop's fd becomes readable, the watcher runs */
    int fds[2];
    ASSERT_EQ_INT(pipe(fds), 0);
    void *io = loop->h.io_new(loop->data, fds[0], on_readable, &p);
    ASSERT(io != NULL);
    ASSERT_EQ_INT(loop->h.io_set(loop->data, io, MOLT_DB_LOOP_READ), 0);
    struct pollfd pf = {molt_db_loop_driven_fd(loop), POLLIN, 0};
    ASSERT_EQ_INT(poll(&pf, 1, 0), 0); /* nothing yet */
    ASSERT_EQ_INT(write(fds[1], "x", 1), 1);
    ASSERT_EQ_INT(poll(&pf, 1, 1000), 1);
    ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 0), 0);
    ASSERT_EQ_INT(p.n, 2);
    ASSERT_EQ_INT(p.order[1], 5);
    /* watching nothing: still readable data, no callback */
    ASSERT_EQ_INT(loop->h.io_set(loop->data, io, 0), 0);
    ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 0), 0);
    ASSERT_EQ_INT(p.n, 2);
    loop->h.io_free(loop->data, io);
    close(fds[0]);
    close(fds[1]);

    molt_db__timer_free(loop, &a);
    molt_db__timer_free(loop, &b);
    molt_db__timer_free(loop, &c);
    molt_db_loop_free(loop);
}

TEST_MAIN(TEST_ENTRY(driven_loop_contract),
          TEST_ENTRY(conn_queries_pipeline_and_cancel),
          TEST_ENTRY(conn_connect_timeout),
          TEST_ENTRY(pool_requests_deadline_and_cancel))
