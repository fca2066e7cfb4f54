/*
 * The host ABI (molt_db/host.h) in both modes, through its functions only:
 * creation from the worker's arguments, answers and bad input, cancelling
 * by token and by release (checked on the PostgreSQL server), a stream
 * that is not read, and freeing with requests in flight.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_test.h"

static const int modes[] = {MOLT_DB_HOST_DRIVEN, MOLT_DB_HOST_THREADED};

static molt_db_host *host_open(int mode, const char *dsn, const char *extra)
{
    char db[512];
    snprintf(db, sizeof db, "default=%s", dsn);
    const char *argv[8] = {"--db", db, "--allow-write", "default"};
    int argc = 4;
    if (strncmp(dsn, "sqlite:", 7)) {
        argv[argc++] = "--pool";
        argv[argc++] = "default:allow_privileged_role=true";
    }
    if (extra) {
        argv[argc++] = "--pool";
        argv[argc++] = extra;
    }
    molt_db_host *h = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    if (molt_db_host_new(argc, argv, mode, &h, &err) != 0)
        FAIL_AT("host_new: %s", err.message);
    return h;
}

static const char *pg_dsn(void)
{
    const char *dsn = getenv("MOLT_TEST_DSN");
    if (!dsn || !*dsn)
        SKIP("MOLT_TEST_DSN not set (run under scripts/with_pg.sh)");
    return dsn;
}

static void refused(int argc, const char *const *argv, int mode, const char *why)
{
    molt_db_host *h = (molt_db_host *)1;
    molt_db_error err;
    molt_db_error_init(&err);
    int rc = molt_db_host_new(argc, argv, mode, &h, &err);
    ASSERT(rc < 0);
    ASSERT(h == NULL);
    ASSERT_CONTAINS(err.message, why);
}

TEST(new_refuses_transports_and_bad_settings)
{
    const char *stdio[] = {"--db", "default=sqlite::memory:", "--stdio"};
    refused(3, stdio, MOLT_DB_HOST_DRIVEN, "transports of molt_worker");
    const char *sock[] = {"--db", "default=sqlite::memory:", "--socket", "/tmp/x.sock"};
    refused(4, sock, MOLT_DB_HOST_THREADED, "transports of molt_worker");
    const char *metrics[] = {"--db", "default=sqlite::memory:", "--metrics-listen",
                             "127.0.0.1:9999"};
    refused(4, metrics, MOLT_DB_HOST_THREADED, "transports of molt_worker");
    const char *unknown[] = {"--db", "default=sqlite::memory:", "--frobnicate", "1"};
    refused(4, unknown, MOLT_DB_HOST_DRIVEN, "unknown option");
    const char *bad_dsn[] = {"--db", "default=postgres://u@h:notaport/db"};
    refused(2, bad_dsn, MOLT_DB_HOST_DRIVEN, "alias default");
    const char *none[] = {"--max-rows", "5"};
    refused(2, none, MOLT_DB_HOST_DRIVEN, "no database configured");
    const char *ok[] = {"--db", "default=sqlite::memory:"};
    refused(2, ok, 3, "mode is");
    refused(2, (const char *const[]){"--help", "x"}, MOLT_DB_HOST_DRIVEN, "--help");
}

/* Ping, rows, a streamed result, a write refused without the capability,
 * and bad input answered as the worker answers it. */
static void answers(int mode)
{
    char dir[] = "/tmp/molt-host-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    char dsn[128];
    snprintf(dsn, sizeof dsn, "sqlite://%s/t.db", dir);
    molt_db_host *h = host_open(mode, dsn, NULL);
    env e;
    env_db(&e, 1, "ping", NULL, 0, 0, 0);
    frame_info fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");
    ASSERT_EQ_UINT(fi.request_id, 1);

    env_db(&e, 2, "db_exec", "create table t(x integer)", 0, 0, 0);
    fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");
    env_db(&e, 2, "db_exec", "insert into t values (1),(2),(3)", 0, 0, 0);
    fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");

    molt_db_host_stream *s;
    env_db(&e, 3, "db_query", "select x from t", 1, 1, 0);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    int parts = 0;
    fi = host_final(h, s, 5000, &parts);
    molt_db_host_release(s);
    ASSERT_EQ_STR(fi.status, "Ok");
    ASSERT(parts >= 3); /* at least one frame per row, then the end */

    /* bad bytes: still a stream, one InvalidInput frame */
    fi = host_call(h, &(env){{3, (char *)"abc", 3}}, 5000);
    ASSERT_EQ_STR(fi.status, "InvalidInput");
    ASSERT_EQ_STR(fi.error, "frame body is not a MsgPack map");
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)"", 0, 0, NULL, &s), 0);
    fi = host_final(h, s, 5000, NULL);
    molt_db_host_release(s);
    ASSERT_EQ_STR(fi.error, "frame length 0 is not allowed");
    uint8_t *big = calloc(1, molt_db_host_max_request_bytes(h) + 1);
    ASSERT(big);
    ASSERT_EQ_INT(molt_db_host_submit(h, big, molt_db_host_max_request_bytes(h) + 1, 0,
                                      NULL, &s), 0);
    free(big);
    fi = host_final(h, s, 5000, NULL);
    molt_db_host_release(s);
    ASSERT_EQ_STR(fi.status, "InvalidInput");
    ASSERT_CONTAINS(fi.error, "above the limit");

    /* db_query is read-only: the file keeps its rows */
    env_db(&e, 4, "db_query", "delete from t", 0, 0, 0);
    fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT(strcmp(fi.status, "Ok"));
    env_db(&e, 5, "db_query", "select 1/(count(*) = 3) from t", 0, 0, 0);
    fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");

    /* releasing without reading, and never reading at all, leak nothing */
    env_db(&e, 6, "db_query", "select x from t", 0, 0, 0);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    molt_db_host_release(s);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    molt_db_host_free(h);
    char path[160];
    snprintf(path, sizeof path, "%s/t.db", dir);
    unlink(path);
    rmdir(dir);
}

TEST(answers_in_both_modes)
{
    for (size_t i = 0; i < 2; i++)
        answers(modes[i]);
}

/* Ok while a query whose text starts with prefix runs on the server. */
static int server_runs(molt_db_host *h, const char *prefix)
{
    char sql[512];
    snprintf(sql, sizeof sql, "select 1/count(*) from pg_stat_activity where state = "
             "'active' and query like '%s%%'", prefix);
    env e;
    env_db(&e, 900, "db_query", sql, 0, 0, 0);
    frame_info fi = host_call(h, &e, 5000);
    env_free(&e);
    return !strcmp(fi.status, "Ok");
}

static void wait_server(molt_db_host *h, const char *prefix, int running)
{
    long long deadline = now_ms() + 5000;
    while (server_runs(h, prefix) != running) {
        if (now_ms() > deadline)
            FAIL_AT("the server %s %s", running ? "never ran" : "still runs", prefix);
        host_wait(h, 20);
    }
}

static molt_db_host_stream *submit_sql(molt_db_host *h, uint64_t id, const char *sql,
                                       uint64_t token)
{
    env e;
    env_db(&e, id, "db_query", sql, 0, 0, 0);
    molt_db_host_stream *s = NULL;
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, token, NULL,
                                      &s), 0);
    env_free(&e);
    return s;
}

/* Cancel by token and by release: the query leaves the server, and the one
 * connection of the pool serves the next request. */
static void cancels(int mode)
{
    molt_db_host *h = host_open(mode, pg_dsn(), "default:max_conns=2");
    const char *q1 = "select pg_sleep(30) /* host token */";
    molt_db_host_stream *s = submit_sql(h, 1, q1, 77);
    wait_server(h, "select pg_sleep(30) /* host token", 1);
    ASSERT_EQ_INT(molt_db_host_cancel(h, 77), 0);
    frame_info fi = host_final(h, s, 5000, NULL);
    molt_db_host_release(s);
    ASSERT_EQ_STR(fi.status, "Cancelled");
    ASSERT_EQ_STR(fi.error, "cancelled by molt_db_host_cancel");
    wait_server(h, "select pg_sleep(30) /* host token", 0);

    const char *q2 = "select pg_sleep(30) /* host release */";
    s = submit_sql(h, 2, q2, 0);
    wait_server(h, "select pg_sleep(30) /* host release", 1);
    molt_db_host_release(s);
    wait_server(h, "select pg_sleep(30) /* host release", 0);

    /* a cancel request (the contract's) reaches another stream */
    const char *q3 = "select pg_sleep(30) /* host entry */";
    s = submit_sql(h, 3, q3, 0);
    wait_server(h, "select pg_sleep(30) /* host entry", 1);
    env e;
    env_cancel(&e, 4, 3);
    fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");
    fi = host_final(h, s, 5000, NULL);
    molt_db_host_release(s);
    ASSERT_EQ_STR(fi.status, "Cancelled");
    molt_db_host_free(h);
}

TEST(cancel_by_token_and_release_reach_the_server)
{
    for (size_t i = 0; i < 2; i++)
        cancels(modes[i]);
}

/* A streamed result nobody reads: the host holds a bounded amount and the
 * query stops reading from the server until the caller catches up. */
static void unread(int mode)
{
    molt_db_host *h = host_open(mode, pg_dsn(), NULL);
    env e;
    env_db(&e, 1, "db_query",
           "select g, repeat('x', 200) from generate_series(1, 2000000) g /* unread */",
           1, 1000, 0);
    molt_db_host_stream *s = NULL;
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    long long until = now_ms() + 1500;
    while (now_ms() < until)
        host_wait(h, 50);
    size_t bytes = 0, frames = 0;
    const uint8_t *f;
    size_t len;
    int rc;
    while ((rc = molt_db_host_next(s, &f, &len)) == 1) {
        bytes += len;
        frames++;
    }
    /* 2,000,000 rows are over 400 MB; the host held at most its pause
     * threshold (8 MiB) and a batch */
    ASSERT_EQ_INT(rc, 0);
    ASSERT(frames > 0);
    if (bytes > ((size_t)12 << 20))
        FAIL_AT("%zu bytes held for a stream nobody read", bytes);
    /* still paused on the server side, then resumed by reading */
    ASSERT(server_runs(h, "select g, repeat"));
    size_t more = 0;
    until = now_ms() + 3000;
    while (now_ms() < until && more < 20) {
        while ((rc = molt_db_host_next(s, &f, &len)) == 1)
            more++;
        host_wait(h, 20);
    }
    ASSERT(more >= 20);
    molt_db_host_release(s);
    wait_server(h, "select g, repeat", 0);
    molt_db_host_free(h);
}

TEST(unread_stream_stops_its_query)
{
    for (size_t i = 0; i < 2; i++)
        unread(modes[i]);
}

/* A threaded host over an in-memory SQLite database. */
static molt_db_host *memory_host_threaded(void)
{
    const char *argv[] = {"--db", "default=sqlite::memory:"};
    molt_db_host *h = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_EQ_INT(molt_db_host_new(2, argv, MOLT_DB_HOST_THREADED, &h, &err), 0);
    return h;
}

/* Threaded mode: a request the host answers inside submit (an empty one,
 * one above max_request_bytes) makes the notify fd readable, as any news
 * does, and so does the news after it. */
TEST(answers_inside_submit_write_the_notify_fd)
{
    molt_db_host *h = memory_host_threaded();
    struct pollfd p = {.fd = molt_db_host_fd(h), .events = POLLIN};
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0); /* cleared */
        molt_db_host_stream *s = NULL;
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)"", 0, 0, NULL, &s), 0);
        ASSERT_EQ_INT(poll(&p, 1, 2000), 1);
        ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0);
        void *ud[4];
        ASSERT_EQ_UINT(molt_db_host_ready(h, ud, 4), 1);
        ASSERT_EQ_STR(host_final(h, s, 1000, NULL).status, "InvalidInput");
        molt_db_host_release(s);
        /* the next news is announced too */
        env e;
        env_db(&e, 1, "ping", NULL, 0, 0, 0);
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                          &s), 0);
        env_free(&e);
        ASSERT_EQ_INT(poll(&p, 1, 2000), 1);
        ASSERT_EQ_STR(host_final(h, s, 1000, NULL).status, "Ok");
        molt_db_host_release(s);
    }
    molt_db_host_free(h);
}

/* A ping submitted, its final frame taken without waiting on the fd. */
static molt_db_host_stream *ping_answered(molt_db_host *h, uint64_t id)
{
    env e;
    env_db(&e, id, "ping", NULL, 0, 0, 0);
    molt_db_host_stream *s = NULL;
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s),
                  0);
    env_free(&e);
    ASSERT_EQ_STR(host_final(NULL, s, 2000, NULL).status, "Ok");
    return s;
}

/* Threaded mode, a host whose caller arms: news writes the fd only for an
 * armed wait; arm says when news is there already; news that comes after
 * the arm, before the wait, still makes the fd readable; and
 * molt_db_host_poll(h, ms) arms itself. */
TEST(an_armed_host_writes_its_fd_only_for_a_wait)
{
    molt_db_host *h = memory_host_threaded();
    struct pollfd p = {.fd = molt_db_host_fd(h), .events = POLLIN};
    void *ud[4];
    ASSERT_EQ_INT(molt_db_host_arm(h), 0); /* nothing yet: armed */
    /* answered after the arm, before any wait: the fd was written */
    molt_db_host_stream *s = ping_answered(h, 1);
    ASSERT_EQ_INT(poll(&p, 1, 2000), 1);
    ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0);
    ASSERT_EQ_INT(poll(&p, 1, 0), 0); /* cleared */
    ASSERT_EQ_UINT(molt_db_host_ready(h, ud, 4), 1);
    molt_db_host_release(s);
    /* not armed: the news waits, the fd is left alone, arm says so */
    s = ping_answered(h, 2);
    usleep(20000);
    ASSERT_EQ_INT(poll(&p, 1, 0), 0);
    ASSERT_EQ_INT(molt_db_host_arm(h), 1);
    ASSERT_EQ_UINT(molt_db_host_ready(h, ud, 4), 1);
    molt_db_host_release(s);
    /* molt_db_host_poll(h, ms) arms before it waits */
    env e;
    env_db(&e, 3, "ping", NULL, 0, 0, 0);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s),
                  0);
    env_free(&e);
    long long t0 = now_ms();
    ASSERT_EQ_INT(molt_db_host_poll(h, 3000), 0);
    ASSERT(now_ms() - t0 < 2000);
    ASSERT_EQ_UINT(molt_db_host_ready(h, ud, 4), 1);
    ASSERT_EQ_STR(host_final(NULL, s, 1000, NULL).status, "Ok");
    molt_db_host_release(s);
    molt_db_host_free(h);
}

/* Free with a query running and streams unreleased: it returns soon and
 * the server no longer runs the query. */
TEST(free_with_requests_in_flight)
{
    const char *dsn = pg_dsn();
    for (size_t i = 0; i < 2; i++) {
        molt_db_host *h = host_open(modes[i], dsn, NULL);
        (void)submit_sql(h, 1, "select pg_sleep(30) /* host free */", 0);
        molt_db_host_stream *s = submit_sql(h, 2, "select 1", 0);
        (void)s;
        wait_server(h, "select pg_sleep(30) /* host free", 1);
        long long t0 = now_ms();
        molt_db_host_free(h);
        ASSERT(now_ms() - t0 < 5000);
        molt_db_host *check = host_open(MOLT_DB_HOST_DRIVEN, dsn, NULL);
        wait_server(check, "select pg_sleep(30) /* host free", 0);
        molt_db_host_free(check);
    }
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ASSERT(d != NULL);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Freed right after a cancel of a running COPY, whose CancelRequest goes
 * over a connection of its own (not the pool's): that connection is
 * through and closed before molt_db_host_free returns, its socket (counted
 * here) and memory (ASan's leak check) included. */
TEST(free_right_after_a_copy_cancel)
{
    const char *dsn = pg_dsn();
    /* the fds libuv and the TLS library keep once used are open first */
    molt_db_host *warm = host_open(MOLT_DB_HOST_DRIVEN, dsn, NULL);
    env e;
    env_db(&e, 1, "db_query", "select 1", 0, 0, 0);
    ASSERT_EQ_STR(host_call(warm, &e, 5000).status, "Ok");
    env_free(&e);
    molt_db_host_free(warm);
    for (size_t i = 0; i < 2; i++) {
        int fds = open_fds();
        molt_db_host *h = host_open(modes[i], dsn, NULL);
        env_db(&e, 1, "copy_out", "select 1 from pg_sleep(30) /* host free copy */", 0, 0, 0);
        molt_db_host_stream *s;
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 9, NULL,
                                          &s), 0);
        env_free(&e);
        wait_server(h, "COPY (\nselect 1 from pg_sleep(30) /* host free copy", 1);
        ASSERT_EQ_INT(molt_db_host_cancel(h, 9), 0);
        /* the COPY ends, its backend terminated over a connection
         * already open, mostly before the CancelRequest is through */
        env_db(&e, 2, "db_exec", "select pg_terminate_backend(pid) from pg_stat_activity "
               "where query like 'COPY (%host free copy%'", 0, 0, 0);
        ASSERT_EQ_STR(host_call(h, &e, 5000).status, "Ok");
        env_free(&e);
        molt_db_host_free(h);
        ASSERT_EQ_INT(open_fds(), fds);
    }
}

/* ---- caller-chosen sessions ---- */

/* Sends one request of entry in session (tx_id 0: none) and returns its
 * final frame. */
static frame_info tx_call(molt_db_host *h, uint64_t session, uint64_t id, const char *entry,
                          const char *sql, uint64_t tx_id)
{
    env e;
    env_tx(&e, id, entry, sql, tx_id);
    frame_info fi = host_call_in(h, session, &e, 5000);
    env_free(&e);
    return fi;
}

/* Whether the table holds n rows where `where`, seen from outside any
 * transaction (the query fails otherwise: PostgreSQL divides by zero,
 * SQLite parses bad JSON). */
static int holds(molt_db_host *h, int pg, const char *table, const char *where, int n)
{
    char sql[256];
    if (pg)
        snprintf(sql, sizeof sql, "select 1/(count(*) = %d)::int from %s where %s", n,
                 table, where);
    else
        snprintf(sql, sizeof sql, "select case when count(*) = %d then 1 else json('no') "
                 "end from %s where %s", n, table, where);
    return !strcmp(tx_call(h, 0, 800, "db_query", sql, 0).status, "Ok");
}

static uint64_t tx_begin(molt_db_host *h, uint64_t session, uint64_t id)
{
    frame_info fi = tx_call(h, session, id, "tx_begin", NULL, 0);
    ASSERT_EQ_STR(fi.status, "Ok");
    ASSERT(fi.tx_id != 0);
    return fi.tx_id;
}

/* A transaction spans the requests of one session: its insert is seen
 * outside only once committed, a rolled back one never, and one left open
 * when the session closes is rolled back. */
static void session_tx(int mode, const char *dsn, const char *table)
{
    molt_db_host *h = host_open(mode, dsn, NULL);
    int pg = strncmp(dsn, "sqlite:", 7) != 0;
    char sql[256];
    snprintf(sql, sizeof sql, "drop table if exists %s", table);
    ASSERT_EQ_STR(tx_call(h, 0, 1, "db_exec", sql, 0).status, "Ok");
    snprintf(sql, sizeof sql, "create table %s (v text)", table);
    ASSERT_EQ_STR(tx_call(h, 0, 1, "db_exec", sql, 0).status, "Ok");

    uint64_t s;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &s), 0);
    ASSERT(s != 0);
    uint64_t tx = tx_begin(h, s, 1);
    snprintf(sql, sizeof sql, "insert into %s values ('committed')", table);
    ASSERT_EQ_STR(tx_call(h, s, 2, "db_exec", sql, tx).status, "Ok");
    /* on PostgreSQL the others do not see it yet (SQLite's write lock
     * keeps them waiting instead: not asked there) */
    if (pg)
        ASSERT(holds(h, pg, table, "v = 'committed'", 0));
    frame_info fi = tx_call(h, s, 3, "tx_commit", NULL, tx);
    ASSERT_EQ_STR(fi.status, "Ok");
    ASSERT(holds(h, pg, table, "v = 'committed'", 1));

    tx = tx_begin(h, s, 4);
    snprintf(sql, sizeof sql, "insert into %s values ('rolled back')", table);
    ASSERT_EQ_STR(tx_call(h, s, 5, "db_exec", sql, tx).status, "Ok");
    ASSERT_EQ_STR(tx_call(h, s, 6, "tx_rollback", NULL, tx).status, "Ok");
    ASSERT(holds(h, pg, table, "v = 'rolled back'", 0));

    /* open when its session closes: rolled back */
    tx = tx_begin(h, s, 7);
    snprintf(sql, sizeof sql, "insert into %s values ('left open')", table);
    ASSERT_EQ_STR(tx_call(h, s, 8, "db_exec", sql, tx).status, "Ok");
    ASSERT_EQ_INT(molt_db_host_session_close(h, s), 0);
    long long deadline = now_ms() + 5000;
    while (!holds(h, pg, table, "true", 1)) {
        if (now_ms() > deadline)
            FAIL_AT("the transaction of a closed session still holds its row");
        host_wait(h, 20);
    }
    ASSERT(holds(h, pg, table, "v = 'left open'", 0));
    /* the session is gone: its transaction too */
    fi = tx_call(h, s, 9, "db_exec", sql, tx);
    ASSERT_EQ_STR(fi.status, "InvalidInput");
    ASSERT_CONTAINS(fi.error, "is not open");
    ASSERT_EQ_INT(molt_db_host_session_close(h, s), MOLT_DB_EINVAL);
    molt_db_host_free(h);
}

TEST(transactions_span_the_requests_of_a_session)
{
    char dir[] = "/tmp/molt-host-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    char dsn[128], path[160];
    snprintf(dsn, sizeof dsn, "sqlite://%s/t.db", dir);
    for (size_t i = 0; i < 2; i++)
        session_tx(modes[i], dsn, "host_tx");
    snprintf(path, sizeof path, "%s/t.db", dir);
    unlink(path);
    rmdir(dir);
    const char *pg = pg_dsn();
    for (size_t i = 0; i < 2; i++)
        session_tx(modes[i], pg, "host_tx");
}

/* Releasing a stream of a session cancels its request on the server and
 * leaves the session working; closing a session cancels what runs in it,
 * on the server too: each stream ends with a Cancelled frame. */
static void session_close_cancels(int mode)
{
    molt_db_host *h = host_open(mode, pg_dsn(), NULL);
    uint64_t s;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &s), 0);
    env e;
    env_db(&e, 1, "db_query", "select pg_sleep(30) /* host session release */", 0, 0, 0);
    molt_db_host_stream *st = NULL;
    ASSERT_EQ_INT(molt_db_host_submit_in(h, s, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                         &st), 0);
    env_free(&e);
    wait_server(h, "select pg_sleep(30) /* host session release", 1);
    molt_db_host_release(st);
    wait_server(h, "select pg_sleep(30) /* host session release", 0);
    ASSERT_EQ_STR(tx_call(h, s, 1, "db_query", "select 1", 0).status, "Ok");

    env_db(&e, 1, "db_query", "select pg_sleep(30) /* host session close */", 0, 0, 0);
    ASSERT_EQ_INT(molt_db_host_submit_in(h, s, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                         &st), 0);
    env_free(&e);
    wait_server(h, "select pg_sleep(30) /* host session close", 1);
    ASSERT_EQ_INT(molt_db_host_session_close(h, s), 0);
    frame_info fi = host_final(h, st, 5000, NULL);
    molt_db_host_release(st);
    ASSERT_EQ_STR(fi.status, "Cancelled");
    ASSERT_CONTAINS(fi.error, "session was closed");
    wait_server(h, "select pg_sleep(30) /* host session close", 0);
    molt_db_host_free(h);
}

TEST(closing_a_session_cancels_its_requests)
{
    for (size_t i = 0; i < 2; i++)
        session_close_cancels(modes[i]);
}

/* Hostile: ids never opened, closed, or another host's are an
 * InvalidInput frame, never a crash; a transaction of one session is not
 * found from another, and writes nothing there; request_ids are each
 * session's own. */
static void session_ids_hostile(int mode)
{
    const char *dsn = pg_dsn();
    molt_db_host *h = host_open(mode, dsn, NULL);
    molt_db_host *other = host_open(mode, dsn, NULL);
    ASSERT_EQ_STR(tx_call(h, 0, 1, "db_exec", "drop table if exists host_tx_ids", 0).status,
                  "Ok");
    ASSERT_EQ_STR(tx_call(h, 0, 1, "db_exec", "create table host_tx_ids (v text)", 0).status,
                  "Ok");
    uint64_t a, b, theirs;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &a), 0);
    ASSERT_EQ_INT(molt_db_host_session_open(h, &b), 0);
    ASSERT_EQ_INT(molt_db_host_session_open(other, &theirs), 0);
    ASSERT(a != b);

    uint64_t bad[] = {12345, ~(uint64_t)0, theirs};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        frame_info fi = tx_call(h, bad[i], 1, "db_query", "select 1", 0);
        ASSERT_EQ_STR(fi.status, "InvalidInput");
        ASSERT_CONTAINS(fi.error, "is not open on this host");
        ASSERT_EQ_INT(molt_db_host_session_close(h, bad[i]), MOLT_DB_EINVAL);
    }
    ASSERT_EQ_INT(molt_db_host_session_close(h, 0), MOLT_DB_EINVAL);

    /* a's transaction, named from b and from a stream of its own */
    uint64_t tx = tx_begin(h, a, 1);
    const char *ins = "insert into host_tx_ids values ('not yours')";
    frame_info fi = tx_call(h, b, 2, "db_exec", ins, tx);
    ASSERT_EQ_STR(fi.status, "InvalidInput");
    ASSERT_CONTAINS(fi.error, "transaction");
    fi = tx_call(h, 0, 2, "db_exec", ins, tx);
    ASSERT_EQ_STR(fi.status, "InvalidInput");
    ASSERT_EQ_STR(tx_call(h, a, 3, "tx_commit", NULL, tx).status, "Ok");
    ASSERT(holds(h, 1, "host_tx_ids", "true", 0));

    /* request_id 7 in flight in a does not clash with 7 in b */
    env e;
    env_db(&e, 7, "db_query", "select pg_sleep(0.3)", 0, 0, 0);
    molt_db_host_stream *sa = NULL, *sb = NULL;
    ASSERT_EQ_INT(molt_db_host_submit_in(h, a, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                         &sa), 0);
    ASSERT_EQ_INT(molt_db_host_submit_in(h, b, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                         &sb), 0);
    env_free(&e);
    ASSERT_EQ_STR(host_final(h, sa, 5000, NULL).status, "Ok");
    ASSERT_EQ_STR(host_final(h, sb, 5000, NULL).status, "Ok");
    molt_db_host_release(sa);
    molt_db_host_release(sb);

    /* a closed session refuses, twice closed is an error, the other stays */
    ASSERT_EQ_INT(molt_db_host_session_close(h, a), 0);
    ASSERT_EQ_INT(molt_db_host_session_close(h, a), MOLT_DB_EINVAL);
    fi = tx_call(h, a, 1, "ping", NULL, 0);
    ASSERT_EQ_STR(fi.status, "InvalidInput");
    ASSERT_EQ_STR(tx_call(h, b, 1, "db_query", "select 1", 0).status, "Ok");
    /* left open: freed with the host */
    molt_db_host_free(other);
    molt_db_host_free(h);
}

TEST(session_ids_that_are_not_open_are_refused)
{
    for (size_t i = 0; i < 2; i++)
        session_ids_hostile(modes[i]);
}

/* max_sessions caps the sessions open at once; a closed one frees its
 * place. */
TEST(sessions_beyond_max_sessions_are_refused)
{
    const char *argv[] = {"--db", "default=sqlite::memory:", "--max-sessions", "2"};
    molt_db_host *h = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_EQ_INT(molt_db_host_new(4, argv, MOLT_DB_HOST_DRIVEN, &h, &err), 0);
    uint64_t a, b, c = 1;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &a), 0);
    ASSERT_EQ_INT(molt_db_host_session_open(h, &b), 0);
    ASSERT_EQ_INT(molt_db_host_session_open(h, &c), MOLT_DB_EBUSY);
    ASSERT_EQ_UINT(c, 0);
    ASSERT_EQ_INT(molt_db_host_session_close(h, a), 0);
    ASSERT_EQ_INT(molt_db_host_session_open(h, &c), 0);
    ASSERT_EQ_STR(tx_call(h, c, 1, "ping", NULL, 0).status, "Ok");
    molt_db_host_free(h);
}

/* Frames taken with molt_db_host_next_owned stay the caller's: readable
 * after their stream's release and the host's free (ASan checks), mixed
 * with molt_db_host_next on the same stream, each freed once. */
static void owned_frames(int mode)
{
    molt_db_host *h = host_open(mode, "sqlite::memory:", NULL);
    env e;
    env_db(&e, 7, "db_query", "select 1 union all select 2 union all select 3", 1, 1, 0);
    molt_db_host_stream *s;
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    molt_db_host_frame *kept[16];
    const uint8_t *data[16];
    size_t lens[16];
    int n = 0, borrowed = 0;
    long long deadline = now_ms() + 5000;
    for (;;) {
        int owned = n % 2 == 0; /* every other frame borrowed, as by next */
        molt_db_host_frame *f = (molt_db_host_frame *)1;
        int rc = owned ? molt_db_host_next_owned(s, &f, &data[n], &lens[n])
                       : molt_db_host_next(s, &data[n], &lens[n]);
        if (rc == MOLT_DB_HOST_DONE)
            break;
        if (rc == 1) {
            kept[n] = owned ? f : NULL;
            ASSERT(!owned || f != NULL);
            borrowed += !owned;
            n++;
            ASSERT(n < 16);
            continue;
        }
        ASSERT_EQ_INT(rc, 0);
        ASSERT(!owned || f == NULL);
        ASSERT(now_ms() < deadline);
        host_wait(h, 50);
    }
    ASSERT(n >= 4 && borrowed >= 1);
    molt_db_host_release(s);
    molt_db_host_free(h);
    for (int i = 0; i < n; i += 2) {
        frame_info fi = frame_read(data[i], lens[i]);
        ASSERT_EQ_UINT(fi.request_id, 7);
        ASSERT_EQ_STR(fi.status, "Ok");
        molt_db_host_frame_free(kept[i]);
    }
    molt_db_host_frame_free(NULL);
}

TEST(owned_frames_outlive_their_stream_and_host)
{
    for (size_t i = 0; i < 2; i++)
        owned_frames(modes[i]);
}

/* Polls h until molt_db_host_busy (or, with pending, molt_db_host_pending)
 * says 0, at most 5 s. */
static void drive_until_quiet(molt_db_host *h, int pending)
{
    long long deadline = now_ms() + 5000;
    while ((pending ? molt_db_host_pending(h) : molt_db_host_busy(h)) > 0) {
        if (now_ms() > deadline)
            FAIL_AT("the host's %s work never ended", pending ? "pending" : "busy");
        host_wait(h, 20);
    }
}

/* molt_db_host_pending: a driven host counts the requests running and the
 * transactions open (the work that needs a poll while the caller waits
 * for nothing); 0 once they are over; a threaded host says -1. */
TEST(pending_counts_running_requests_and_open_transactions)
{
    char dir[] = "/tmp/molt-host-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    char dsn[128], path[160];
    snprintf(dsn, sizeof dsn, "sqlite://%s/p.db", dir);
    molt_db_host *t = host_open(MOLT_DB_HOST_THREADED, dsn, NULL);
    ASSERT_EQ_INT((int)molt_db_host_pending(t), -1);
    molt_db_host_free(t);

    molt_db_host *h = host_open(MOLT_DB_HOST_DRIVEN, dsn, NULL);
    ASSERT_EQ_INT((int)molt_db_host_pending(h), 0);
    ASSERT_EQ_STR(tx_call(h, 0, 1, "db_query", "select 1", 0).status, "Ok");
    ASSERT_EQ_INT((int)molt_db_host_pending(h), 0);
    uint64_t s;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &s), 0);
    uint64_t tx = tx_begin(h, s, 2);
    ASSERT_EQ_INT((int)molt_db_host_pending(h), 1);
    ASSERT_EQ_STR(tx_call(h, s, 3, "db_query", "select 1", tx).status, "Ok");
    ASSERT_EQ_INT((int)molt_db_host_pending(h), 1);
    ASSERT_EQ_STR(tx_call(h, s, 4, "tx_rollback", NULL, tx).status, "Ok");
    ASSERT_EQ_INT((int)molt_db_host_pending(h), 0);
    molt_db_host_free(h);
    snprintf(path, sizeof path, "%s/p.db", dir);
    unlink(path);
    rmdir(dir);

    h = host_open(MOLT_DB_HOST_DRIVEN, pg_dsn(), "default:max_conns=2");
    molt_db_host_stream *q = submit_sql(h, 5, "select pg_sleep(30) /* host pending */", 9);
    wait_server(h, "select pg_sleep(30) /* host pending", 1);
    /* the request, and the connection it holds */
    ASSERT_EQ_INT((int)molt_db_host_pending(h), 2);
    ASSERT_EQ_INT(molt_db_host_cancel(h, 9), 0);
    ASSERT_EQ_STR(host_final(h, q, 5000, NULL).status, "Cancelled");
    molt_db_host_release(q);
    /* answered Cancelled: its connection still drains (the CancelRequest
     * goes out, the server's error comes back) until pending says 0 */
    drive_until_quiet(h, 1);
    ASSERT(!server_runs(h, "select pg_sleep(30) /* host pending"));
    molt_db_host_free(h);
}

/* molt_db_host_busy: the part of pending that needs a poll now. An open
 * transaction with nothing running in it is not counted, nor its
 * connection; a statement of it running is, and once cancelled, until
 * the connection is through with the cancel; then the transaction is still
 * open (aborted) and busy 0. A threaded host says -1. */
TEST(busy_leaves_out_an_idle_transaction)
{
    molt_db_host *t = host_open(MOLT_DB_HOST_THREADED, "sqlite::memory:", NULL);
    ASSERT_EQ_INT((int)molt_db_host_busy(t), -1);
    molt_db_host_free(t);

    molt_db_host *h = host_open(MOLT_DB_HOST_DRIVEN, pg_dsn(), "default:max_conns=2");
    ASSERT_EQ_INT((int)molt_db_host_busy(h), 0);
    uint64_t s;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &s), 0);
    uint64_t tx = tx_begin(h, s, 1);
    ASSERT_EQ_STR(tx_call(h, s, 2, "db_query", "select 1", tx).status, "Ok");
    ASSERT_EQ_INT((int)molt_db_host_busy(h), 0);
    ASSERT(molt_db_host_pending(h) >= 1);

    env e;
    env_tx(&e, 3, "db_query", "select pg_sleep(30) /* host busy */", tx);
    molt_db_host_stream *q = NULL;
    ASSERT_EQ_INT(molt_db_host_submit_in(h, s, (const uint8_t *)e.b.data, e.b.size, 7, NULL,
                                         &q), 0);
    env_free(&e);
    wait_server(h, "select pg_sleep(30) /* host busy", 1);
    ASSERT(molt_db_host_busy(h) >= 1);
    ASSERT_EQ_INT(molt_db_host_cancel(h, 7), 0);
    ASSERT_EQ_STR(host_final(h, q, 5000, NULL).status, "Cancelled");
    molt_db_host_release(q);
    drive_until_quiet(h, 0);
    ASSERT(!server_runs(h, "select pg_sleep(30) /* host busy"));
    ASSERT(molt_db_host_pending(h) >= 1);
    frame_info fi = tx_call(h, s, 4, "db_query", "select 1", tx);
    ASSERT_EQ_STR(fi.status, "DbError");
    ASSERT_CONTAINS(fi.error, "aborted");
    ASSERT_EQ_INT((int)molt_db_host_busy(h), 0);
    ASSERT_EQ_STR(tx_call(h, s, 5, "tx_rollback", NULL, tx).status, "Ok");
    drive_until_quiet(h, 1);
    molt_db_host_free(h);
}

/* Driven mode, a caller without a poller: molt_db_host_poll(h, ms) waits
 * in the host's own poll of I/O. A request answered while the submit's
 * commands are taken (ping: no I/O), or news not yet asked for, ends the
 * wait at once; with nothing
 * to do, the wait lasts its bound; a query's answer takes a call per
 * round trip with the server. */
TEST(driven_poll_waits_for_io_but_not_past_news)
{
    molt_db_host *h = host_open(MOLT_DB_HOST_DRIVEN, pg_dsn(), "default:min_conns=1");
    env e;
    env_db(&e, 1, "db_query", "select 1", 0, 0, 0);
    ASSERT_EQ_STR(host_call(h, &e, 5000).status, "Ok"); /* the pool is open */
    env_free(&e);

    molt_db_host_stream *s;
    env_db(&e, 2, "ping", NULL, 0, 0, 0);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    ASSERT_EQ_INT(molt_db_host_timeout(h), 0); /* the submit is work now */
    long long t0 = now_ms();
    ASSERT_EQ_INT(molt_db_host_poll(h, 3000), 0);
    ASSERT(now_ms() - t0 < 300); /* (the worker's own timers come each second) */
    void *ud[4];
    ASSERT_EQ_INT((int)molt_db_host_ready(h, ud, 4), 1);
    ASSERT_EQ_STR(host_final(h, s, 0, NULL).status, "Ok");
    molt_db_host_release(s);

    ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0); /* the release */

    /* news the caller has not asked ready for: no wait either */
    env_db(&e, 4, "ping", NULL, 0, 0, 0);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0);
    t0 = now_ms();
    ASSERT_EQ_INT(molt_db_host_poll(h, 3000), 0);
    ASSERT(now_ms() - t0 < 300); /* (the worker's own timers come each second) */
    ASSERT_EQ_INT((int)molt_db_host_ready(h, ud, 4), 1);
    ASSERT_EQ_STR(host_final(h, s, 0, NULL).status, "Ok");
    molt_db_host_release(s);
    ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0);
    t0 = now_ms();
    ASSERT_EQ_INT(molt_db_host_poll(h, 300), 0);
    long long waited = now_ms() - t0;
    ASSERT(waited >= 250 && waited < 2000);
    ASSERT_EQ_INT((int)molt_db_host_ready(h, ud, 4), 0);

    env_db(&e, 3, "db_query", "select 42", 0, 0, 0);
    ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL, &s), 0);
    env_free(&e);
    int calls = 0;
    while (molt_db_host_ready(h, ud, 4) == 0 && calls < 100) {
        ASSERT_EQ_INT(molt_db_host_poll(h, 5000), 0);
        calls++;
    }
    /* each call waits for the server's next answer (a poll that did not
     * wait would make hundreds) */
    ASSERT(calls >= 1 && calls < 10);
    ASSERT_EQ_STR(host_final(h, s, 0, NULL).status, "Ok");
    molt_db_host_release(s);
    molt_db_host_free(h);
}

/* Another thread's command during a driven wait: it submits, cancels or
 * wakes the host (molt_db_host_wake) while this thread waits in
 * molt_db_host_poll(h, ms). */
typedef struct poke {
    molt_db_host *h;
    molt_db_host_stream *s; /* what it submitted */
    uint64_t cancel;        /* 0: submit select 42; else the token to cancel */
    int wake;               /* molt_db_host_wake instead */
    long long at;           /* when it did */
} poke;

static void *poke_later(void *arg)
{
    poke *p = arg;
    usleep(100 * 1000);
    p->at = now_ms();
    if (p->wake)
        ASSERT_EQ_INT(molt_db_host_wake(p->h), 0);
    else if (p->cancel)
        ASSERT_EQ_INT(molt_db_host_cancel(p->h, p->cancel), 0);
    else
        p->s = submit_sql(p->h, 42, "select 42", 0);
    return NULL;
}

/* The wait ends at once (without the command it would last until the
 * worker's next timer, up to a second: four rounds under 200 ms each
 * would then be luck of less than 1%), and the next poll takes it: the
 * submitted query answers, the cancelled one ends Cancelled; a wake
 * without a command ends the wait the same way. */
TEST(driven_poll_wait_ends_on_another_threads_command)
{
    molt_db_host *h = host_open(MOLT_DB_HOST_DRIVEN, pg_dsn(), "default:max_conns=2");
    molt_db_host_stream *q = submit_sql(h, 1, "select pg_sleep(30) /* host kick */", 9);
    wait_server(h, "select pg_sleep(30) /* host kick", 1);
    for (int round = 0; round < 5; round++) {
        poke p = {.h = h, .cancel = round == 4 ? 9 : 0, .wake = round == 2};
        pthread_t t;
        ASSERT_EQ_INT(pthread_create(&t, NULL, poke_later, &p), 0);
        ASSERT_EQ_INT(molt_db_host_poll(h, 5000), 0);
        long long done = now_ms();
        ASSERT_EQ_INT(pthread_join(t, NULL), 0);
        ASSERT(p.at > 0 && done - p.at < 200);
        if (p.s) {
            frame_info fi = host_final(h, p.s, 5000, NULL);
            ASSERT_EQ_STR(fi.status, "Ok");
            molt_db_host_release(p.s);
        }
    }
    ASSERT_EQ_STR(host_final(h, q, 5000, NULL).status, "Cancelled");
    molt_db_host_release(q);
    molt_db_host_free(h);
}

/* Driven mode, the caller's own poller: molt_db_host_poll(h, 0) writes
 * the statements of a submit at once, without a turn; a statement larger
 * than the socket takes (8 MB) is written on as the socket drains, by
 * the turns that follow. The server checks it received every byte. */
TEST(driven_write_larger_than_the_socket_completes)
{
    molt_db_host *h = host_open(MOLT_DB_HOST_DRIVEN, pg_dsn(), NULL);
    enum { BIG = 8 << 20 };
    const char *head = "select 1/(length('", *tail = "') = 8388608)::int";
    char *sql = malloc(strlen(head) + BIG + strlen(tail) + 1);
    ASSERT(sql != NULL);
    strcpy(sql, head);
    memset(sql + strlen(head), 'x', BIG);
    strcpy(sql + strlen(head) + BIG, tail);
    env e;
    env_db(&e, 1, "db_query", sql, 0, 0, 0);
    free(sql);
    frame_info fi = host_call(h, &e, 20000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");
    molt_db_host_free(h);
}

/* Driven mode: a host not polled for a while starts a request's deadline
 * when the request is taken, not at the loop's last turn. */
TEST(driven_deadline_counts_from_the_submit)
{
    molt_db_host *h = host_open(MOLT_DB_HOST_DRIVEN, pg_dsn(), NULL);
    env e;
    env_db(&e, 1, "db_query", "select 1", 0, 0, 0);
    ASSERT_EQ_STR(host_call(h, &e, 5000).status, "Ok");
    env_free(&e);
    usleep(1500 * 1000); /* no poll: the loop's clock stays where it was */
    env_db(&e, 2, "db_query", "select pg_sleep(0.2)", 0, 0, 1000);
    frame_info fi = host_call(h, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(fi.status, "Ok");
    molt_db_host_free(h);
}

/* ---- deadlines ---- */

#define NDL 8

/* Requests with different deadlines, submitted out of their order and
 * running together (quick ones among them, with later deadlines, take
 * their entries out of the heap early), each end Timeout at their own
 * deadline: never before it, in the order of the deadlines, and the
 * server stops their queries. Then in a
 * caller's session, after many requests, a short deadline still ends its
 * request on time; and the host is freed with long deadlines pending. */
static void deadlines(int mode)
{
    static const uint32_t ms[NDL] = {900, 300, 1500, 600, 1200, 450, 750, 1050};
    molt_db_host *h = host_open(mode, pg_dsn(), "default:max_conns=16");
    molt_db_host_stream *s[2 * NDL];
    long long t0[NDL], t_end[2 * NDL];
    frame_info fi[2 * NDL];
    memset(fi, 0, sizeof fi);
    env e;
    for (int i = 0; i < NDL; i++) {
        env_db(&e, 100 + (uint64_t)i, "db_query", "select pg_sleep(5) /* host deadlines */",
               0, 0, ms[i]);
        t0[i] = now_ms();
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                          &s[i]), 0);
        env_free(&e);
        env_db(&e, 200 + (uint64_t)i, "db_query", "select 1", 0, 0, 3000 + 100 * (uint32_t)i);
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                          &s[NDL + i]), 0);
        env_free(&e);
    }
    int left = 2 * NDL;
    long long give_up = now_ms() + 10000;
    while (left > 0) {
        ASSERT(now_ms() < give_up);
        host_wait(h, 10);
        int ended[2 * NDL], nended = 0;
        for (int i = 0; i < 2 * NDL; i++) {
            const uint8_t *f;
            size_t len;
            int rc;
            if (!s[i])
                continue;
            while ((rc = molt_db_host_next(s[i], &f, &len)) == 1)
                fi[i] = frame_read(f, len);
            if (rc == MOLT_DB_HOST_DONE) {
                ended[nended++] = i;
                molt_db_host_release(s[i]);
                s[i] = NULL;
                left--;
            }
        }
        /* one time, taken after, for all this pass found ended: never
         * before their end, and in the order they ended */
        long long now = now_ms();
        for (int k = 0; k < nended; k++)
            t_end[ended[k]] = now;
    }
    for (int i = 0; i < NDL; i++) {
        char want[64];
        snprintf(want, sizeof want, "deadline of %u ms passed", ms[i]);
        ASSERT_EQ_STR(fi[i].status, "Timeout");
        ASSERT_CONTAINS(fi[i].error, want);
        /* libuv's clock is a coarse one: a few ms of slack, no more */
        ASSERT(t_end[i] - t0[i] >= (long long)ms[i] - 10);
        ASSERT(t_end[i] - t0[i] < (long long)ms[i] + 2000);
        ASSERT_EQ_STR(fi[NDL + i].status, "Ok");
        for (int j = 0; j < NDL; j++)
            if (ms[j] < ms[i])
                ASSERT(t_end[j] <= t_end[i]);
    }
    wait_server(h, "select pg_sleep(5) /* host deadlines", 0);

    uint64_t session;
    ASSERT_EQ_INT(molt_db_host_session_open(h, &session), 0);
    for (uint64_t id = 1; id <= 300; id++)
        ASSERT_EQ_STR(tx_call(h, session, id, "db_query", "select 1", 0).status, "Ok");
    env_db(&e, 301, "db_query", "select pg_sleep(5) /* host session deadline */", 0, 0, 400);
    long long t = now_ms();
    frame_info late = host_call_in(h, session, &e, 5000);
    env_free(&e);
    ASSERT_EQ_STR(late.status, "Timeout");
    ASSERT(now_ms() - t >= 390 && now_ms() - t < 2400);

    for (int i = 0; i < 3; i++) {
        env_db(&e, 400 + (uint64_t)i, "db_query", "select pg_sleep(30) /* host free dl */",
               0, 0, 20000);
        molt_db_host_stream *ignored;
        ASSERT_EQ_INT(molt_db_host_submit_in(h, i == 0 ? session : 0,
                                             (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                             &ignored), 0);
        env_free(&e);
    }
    wait_server(h, "select pg_sleep(30) /* host free dl", 1);
    molt_db_host_free(h);
}

TEST(deadlines_end_each_request_at_its_own)
{
    for (size_t i = 0; i < 2; i++)
        deadlines(modes[i]);
}

/* Threaded mode: an answer made by a timer of the loop (here the pool's
 * fail-fast while it backs off from a refused password) wakes the
 * caller's poller at once, not when the loop next has I/O or a timer of
 * its own (the backoff, seconds away). */
TEST(threaded_answers_made_by_timers_wake_the_poller)
{
    const char *scram = getenv("MOLT_TEST_DSN_SCRAM");
    if (!scram || !*scram)
        SKIP("MOLT_TEST_DSN_SCRAM not set (run under scripts/with_pg.sh)");
    const char *at = strchr(scram, '@'), *user = strstr(scram, "molt_scram:");
    ASSERT(at && user && user < at);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "%.*swrong%s", (int)(user + strlen("molt_scram:") - scram),
             scram, at);
    molt_db_host *h = host_open(MOLT_DB_HOST_THREADED, dsn, "default:reconnect_min_ms=3000");
    env e;
    env_db(&e, 1, "db_query", "select 1", 0, 0, 0);
    frame_info first = host_call(h, &e, 10000); /* the attempt; the backoff begins */
    env_free(&e);
    ASSERT(strcmp(first.status, "Ok") != 0);
    struct pollfd p = {.fd = molt_db_host_fd(h), .events = POLLIN};
    for (uint64_t id = 2; id < 7; id++) {
        ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0); /* cleared */
        env_db(&e, id, "db_query", "select 1", 0, 0, 0);
        molt_db_host_stream *s;
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0, NULL,
                                          &s), 0);
        env_free(&e);
        long long t0 = now_ms();
        ASSERT_EQ_INT(poll(&p, 1, 1000), 1);
        ASSERT(now_ms() - t0 < 700);
        frame_info fi = host_final(h, s, 0, NULL);
        molt_db_host_release(s);
        ASSERT_EQ_STR(fi.status, first.status);
        ASSERT_EQ_STR(fi.error, first.error);
    }
    molt_db_host_free(h);
}

TEST_MAIN(TEST_ENTRY(new_refuses_transports_and_bad_settings),
          TEST_ENTRY(answers_in_both_modes),
          TEST_ENTRY(cancel_by_token_and_release_reach_the_server),
          TEST_ENTRY(unread_stream_stops_its_query),
          TEST_ENTRY(answers_inside_submit_write_the_notify_fd),
          TEST_ENTRY(an_armed_host_writes_its_fd_only_for_a_wait),
          TEST_ENTRY(free_with_requests_in_flight),
          TEST_ENTRY(free_right_after_a_copy_cancel),
          TEST_ENTRY(transactions_span_the_requests_of_a_session),
          TEST_ENTRY(closing_a_session_cancels_its_requests),
          TEST_ENTRY(session_ids_that_are_not_open_are_refused),
          TEST_ENTRY(sessions_beyond_max_sessions_are_refused),
          TEST_ENTRY(owned_frames_outlive_their_stream_and_host),
          TEST_ENTRY(pending_counts_running_requests_and_open_transactions),
          TEST_ENTRY(busy_leaves_out_an_idle_transaction),
          TEST_ENTRY(driven_poll_waits_for_io_but_not_past_news),
          TEST_ENTRY(driven_poll_wait_ends_on_another_threads_command),
          TEST_ENTRY(driven_write_larger_than_the_socket_completes),
          TEST_ENTRY(driven_deadline_counts_from_the_submit),
          TEST_ENTRY(deadlines_end_each_request_at_its_own),
          TEST_ENTRY(threaded_answers_made_by_timers_wake_the_poller))
