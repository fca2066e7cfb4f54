/* Read flow control on a real server: molt_db_conn_pause_reading holds
 * results back (the server blocks in its send), resume delivers the rest in
 * order and never from inside the call, and cancel and close work while
 * paused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "molt_db/conn.h"
#include "pgtest.h"

#define NROWS 2000000ull

typedef struct stream_state {
    molt_db_conn *conn;
    uint64_t rows, sum, expect_next;
    uint64_t pause_every;   /* pause after every this many rows; 0 never */
    int in_order;
    int done, status;
    char sqlstate[6];
} stream_state;

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int stream_row(void *ud, const molt_db_field *f, size_t n)
{
    stream_state *s = ud;
    (void)n;
    uint64_t v = be64(f[0].data);
    if (v != s->expect_next)
        s->in_order = 0;
    s->expect_next = v + 1;
    s->rows++;
    s->sum += v;
    if (s->pause_every && s->rows % s->pause_every == 0)
        molt_db_conn_pause_reading(s->conn);
    return MOLT_DB_OK;
}

static void stream_done(void *ud, int status, const molt_db_error *err)
{
    stream_state *s = ud;
    s->status = status;
    if (status == MOLT_DB_ESERVER && err)
        memcpy(s->sqlstate, err->sqlstate, sizeof s->sqlstate);
    s->done = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the loop for about `seconds` without blocking past it. */
static void run_for(pgt_conn *p, double seconds)
{
    double until = now_s() + seconds;
    while (now_s() < until) {
        uv_run(&p->loop, UV_RUN_NOWAIT);
        struct timespec d = {0, 2000000};
        nanosleep(&d, NULL);
    }
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is set. What a resume held back is dispatched
 * from a prepare handle, after which UV_RUN_ONCE would block in its poll
 * with nothing left to come: a ticking timer bounds that wait. */
static void run_until(pgt_conn *p, const int *flag)
{
    uv_timer_t t;
    ASSERT_EQ_INT(uv_timer_init(&p->loop, &t), 0);
    uv_timer_start(&t, tick, 10, 10);
    while (!*flag)
        uv_run(&p->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&p->loop, UV_RUN_NOWAIT);
}

static void start_stream(pgt_conn *p, stream_state *s, const char *tag)
{
    memset(s, 0, sizeof *s);
    s->conn = p->conn;
    s->in_order = 1;
    s->expect_next = 1;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT g::int8, repeat('x', 100) FROM generate_series(1, %llu) g"
             " /* %s */", (unsigned long long)NROWS, tag);
    molt_db_result_handler h = {NULL, stream_row, NULL, stream_done, s};
    ASSERT_OK(molt_db_conn_query(p->conn, sql, 0, NULL, &h), NULL);
}

/* Starts the stream and runs until it paused itself after 1000 rows (it
 * pauses no more after that). */
static void start_paused(pgt_conn *p, stream_state *s, const char *tag)
{
    start_stream(p, s, tag);
    s->pause_every = 1000;
    while (!molt_db_conn_reading_paused(p->conn) && !s->done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT(!s->done);
    ASSERT_EQ_UINT(s->rows, 1000);
    s->pause_every = 0;
}

/* What the server's backend for `tag` waits on now ("" when gone). */
static void backend_wait(pgt_conn *obs, const char *tag, char *out, size_t n)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(wait_event, 'none') FROM pg_stat_activity "
             "WHERE query LIKE '%%/* %s */%%' AND pid <> pg_backend_pid()", tag);
    pgt_result *r = pgt_simple(obs, sql);
    ASSERT_OK(r->status, &r->err);
    snprintf(out, n, "%s", r->nrows ? pgt_text(r, 0, 0) : "");
    pgt_result_free(r);
}

TEST(pause_holds_rows_and_resume_delivers_the_rest)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    pgt_conn *p = pgt_connect(dsn);
    pgt_conn *obs = pgt_connect(dsn);
    stream_state s;
    /* the pause takes effect when the callback that asked returns: 1000 */
    start_paused(p, &s, "pause-hold");
    run_for(p, 0.4);
    ASSERT_EQ_UINT(s.rows, 1000);
    ASSERT(!s.done);
    /* the server is blocked sending to us, not racing ahead */
    char wait[64];
    backend_wait(obs, "pause-hold", wait, sizeof wait);
    ASSERT_EQ_STR(wait, "ClientWrite");
    molt_db_conn_resume_reading(p->conn);
    ASSERT(!molt_db_conn_reading_paused(p->conn));
    ASSERT_EQ_UINT(s.rows, 1000); /* nothing ran inside the call */
    run_until(p, &s.done);
    ASSERT_OK(s.status, NULL);
    ASSERT_EQ_UINT(s.rows, NROWS);
    ASSERT_EQ_UINT(s.sum, NROWS * (NROWS + 1) / 2);
    ASSERT(s.in_order);
    pgt_exec_ok(p, "SELECT 1");
    pgt_close(obs);
    pgt_close(p);
}

static void resume_soon(uv_timer_t *t)
{
    molt_db_conn_resume_reading(t->data);
}

TEST(many_pauses_keep_order)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    stream_state s;
    start_stream(p, &s, "pause-many");
    s.pause_every = 50000;
    uv_timer_t t, ticker;
    ASSERT_EQ_INT(uv_timer_init(&p->loop, &t), 0);
    ASSERT_EQ_INT(uv_timer_init(&p->loop, &ticker), 0);
    uv_timer_start(&ticker, tick, 10, 10); /* as in run_until */
    t.data = p->conn;
    int pauses = 0;
    while (!s.done) {
        uv_run(&p->loop, UV_RUN_ONCE);
        if (molt_db_conn_reading_paused(p->conn) && !uv_is_active((uv_handle_t *)&t)) {
            pauses++;
            uv_timer_start(&t, resume_soon, 5, 0);
        }
    }
    ASSERT_OK(s.status, NULL);
    ASSERT_EQ_UINT(s.rows, NROWS);
    ASSERT_EQ_UINT(s.sum, NROWS * (NROWS + 1) / 2);
    ASSERT(s.in_order);
    ASSERT(pauses >= (int)(NROWS / 50000) - 1);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    pgt_close(p);
}

static void on_cancel(void *ud, int status, const molt_db_error *err)
{
    int *done = ud;
    if (status != MOLT_DB_OK && err)
        fprintf(stderr, "cancel: %s\n", err->message);
    *done = status == MOLT_DB_OK ? 1 : -1;
}

TEST(cancel_while_paused_ends_the_query_after_resume)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    pgt_conn *p = pgt_connect(dsn);
    pgt_conn *obs = pgt_connect(dsn);
    stream_state s;
    start_paused(p, &s, "pause-cancel");
    int cancelled = 0;
    ASSERT_OK(molt_db_conn_cancel(p->conn, 2000, on_cancel, &cancelled), NULL);
    while (!cancelled)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(cancelled, 1);
    /* still paused: nothing is delivered, the server still waits on us */
    run_for(p, 0.2);
    ASSERT_EQ_UINT(s.rows, 1000);
    ASSERT(!s.done);
    molt_db_conn_resume_reading(p->conn);
    double t0 = now_s();
    run_until(p, &s.done);
    ASSERT_CODE(s.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(s.sqlstate, "57014");
    ASSERT(s.rows < NROWS);
    if (now_s() - t0 > 1.0)
        FAIL_AT("the cancelled query took %.3f s to end after the resume",
                now_s() - t0);
    ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
    /* the server says so too: its backend is idle, the query is over */
    int32_t pid, key;
    ASSERT_OK(molt_db_conn_backend_key(p->conn, &pid, &key), NULL);
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT state FROM pg_stat_activity WHERE pid = %d", (int)pid);
    pgt_result *st = pgt_simple(obs, sql);
    ASSERT_OK(st->status, &st->err);
    ASSERT_EQ_STR(pgt_text(st, 0, 0), "idle");
    pgt_result_free(st);
    pgt_exec_ok(p, "SELECT 1");
    pgt_close(obs);
    pgt_close(p);
}

static void on_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    *(int *)ud = 1;
}

TEST(close_while_paused_fails_the_request_and_frees_the_backend)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    pgt_conn *p = pgt_connect(dsn);
    pgt_conn *obs = pgt_connect(dsn);
    stream_state s;
    start_paused(p, &s, "pause-close");
    run_for(p, 0.1);
    int closed = 0;
    molt_db_conn_close(p->conn, on_closed, &closed);
    ASSERT(s.done); /* completed during the close call */
    ASSERT_CODE(s.status, MOLT_DB_ECLOSED);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    molt_db_loop_free(p->ml);
    ASSERT_EQ_INT(uv_loop_close(&p->loop), 0);
    free(p);
    /* the server's send fails once our socket is gone: its backend exits */
    char wait[64] = "x";
    double until = now_s() + 3.0;
    while (now_s() < until) {
        backend_wait(obs, "pause-close", wait, sizeof wait);
        if (wait[0] == '\0')
            break;
        struct timespec d = {0, 20000000};
        nanosleep(&d, NULL);
    }
    ASSERT_EQ_STR(wait, "");
    pgt_close(obs);
}

TEST(pause_without_requests_is_harmless)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    molt_db_conn_pause_reading(p->conn);
    molt_db_conn_pause_reading(p->conn); /* idempotent */
    ASSERT(molt_db_conn_reading_paused(p->conn));
    pgt_result *r = calloc(1, sizeof *r);
    ASSERT(r != NULL);
    molt_db_result_handler h = pgt_handler_(r);
    /* requests are still written while paused; their answers wait */
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT 41 + 1", 0, NULL, &h), NULL);
    run_for(p, 0.2);
    ASSERT(!r->done);
    molt_db_conn_resume_reading(p->conn);
    molt_db_conn_resume_reading(p->conn);
    run_until(p, &r->done);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_UINT(r->nrows, 1);
    pgt_result_free(r);
    pgt_close(p);
}

TEST_MAIN(TEST_ENTRY(pause_holds_rows_and_resume_delivers_the_rest),
          TEST_ENTRY(many_pauses_keep_order),
          TEST_ENTRY(cancel_while_paused_ends_the_query_after_resume),
          TEST_ENTRY(close_while_paused_fails_the_request_and_frees_the_backend),
          TEST_ENTRY(pause_without_requests_is_harmless))
