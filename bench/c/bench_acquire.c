/*
 * molt_bench acquire --dsn DSN [--n N]
 *
 * Nanoseconds of the pool's own work for one request when nothing is
 * contended (one connection, one request at a time): acquire (slot, copies,
 * deadline, FIFO, pick, statement-cache lookup) and release (back from the
 * connection, release check, metrics, completion). The pool has no
 * query-less acquire, so the pool's part is measured as a difference
 * against the same query on a bare connection in the same process,
 * alternating in blocks of 1000:
 *
 *   acquire = median time of the molt_db_pool_query call
 *             - median time of the molt_db_conn_execute call
 *   release = median time from on_row to on_done through the pool
 *             - the same on the bare connection
 *
 * Both calls only encode into the send buffer (the write happens later in
 * the loop iteration) and both gaps lie within one received buffer, so no
 * system call is inside what is timed. Not counted: the slot's return to
 * its free list after on_done (a few stores). Every reply is checked
 * against the value sent. Prints the JSON line of bench/contenders.md with
 * cpu_seconds = ops x (acquire + release), so the report's CPU column reads
 * as acquire + release in microseconds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "molt_db/loop_libuv.h"
#include "molt_db/pool.h"

int molt_bench_acquire(int argc, char **argv);

static const char *ACQ_SQL = "SELECT $1::int4";

typedef struct acq {
    uv_loop_t loop;
    molt_db_conn *conn;
    molt_db_stmt *stmt;
    molt_db_pool *pool;
    int ready, done, closed;
    int32_t sent, got;
    uint64_t t_row, t_done;
    uint64_t errors;
} acq;

static uint64_t acq_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void acq_die(const char *what, const molt_db_error *err)
{
    fprintf(stderr, "molt_bench acquire: %s: %s\n", what, err ? err->message : "");
    exit(1);
}

static int acq_row(void *ud, const molt_db_field *f, size_t n)
{
    acq *a = ud;
    a->t_row = acq_now();
    if (n != 1 || f[0].len != 4)
        return MOLT_DB_ETYPE;
    a->got = (int32_t)((uint32_t)f[0].data[0] << 24 | (uint32_t)f[0].data[1] << 16 |
                       (uint32_t)f[0].data[2] << 8 | f[0].data[3]);
    return MOLT_DB_OK;
}

static void acq_done(void *ud, int status, const molt_db_error *err)
{
    acq *a = ud;
    a->t_done = acq_now();
    a->done = 1;
    if (status != MOLT_DB_OK || a->got != a->sent) {
        fprintf(stderr, "molt_bench acquire: %s %s\n", molt_db_code_name(status),
                err ? err->message : "wrong value");
        a->errors++;
    }
}

static void acq_connected(molt_db_conn *c, int status, const molt_db_error *err,
                          void *ud)
{
    (void)c;
    if (status != MOLT_DB_OK)
        acq_die("connect", err);
    ((acq *)ud)->ready = 1;
}

static void acq_prepared(void *ud, int status, molt_db_stmt *stmt,
                         const molt_db_error *err)
{
    if (status != MOLT_DB_OK)
        acq_die("prepare", err);
    acq *a = ud;
    a->stmt = stmt;
    a->ready = 2;
}

static void acq_wait(acq *a, int *flag, int want)
{
    while (*flag < want)
        uv_run(&a->loop, UV_RUN_ONCE);
}

/* One request; *call gets the time of the submitting call, *tail the gap
 * from on_row to on_done. */
static void acq_one(acq *a, int via_pool, int32_t v, uint64_t *call,
                    uint64_t *tail)
{
    uint8_t be[4] = {(uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16),
                     (uint8_t)((uint32_t)v >> 8), (uint8_t)v};
    molt_db_param p = {23, MOLT_DB_FORMAT_BINARY, 4, be};
    molt_db_result_handler h = {NULL, acq_row, NULL, acq_done, a};
    a->done = 0;
    a->sent = v;
    a->got = INT32_MIN;
    uint64_t t0 = acq_now();
    int rc = via_pool ? molt_db_pool_query(a->pool, ACQ_SQL, 1, &p, &h, NULL, NULL)
                      : molt_db_conn_execute(a->conn, a->stmt, 1, &p, &h);
    uint64_t t1 = acq_now();
    if (rc != MOLT_DB_OK)
        acq_die(molt_db_code_name(rc), NULL);
    acq_wait(a, &a->done, 1);
    *call = t1 - t0;
    *tail = a->t_done - a->t_row;
}

static int acq_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static double acq_q(uint64_t *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, acq_cmp);
    return (double)v[(size_t)(q * (double)(n - 1))];
}

static void acq_pool_closed(molt_db_pool *p, void *ud)
{
    (void)p;
    ((acq *)ud)->closed++;
}

static void acq_conn_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    ((acq *)ud)->closed++;
}

int molt_bench_acquire(int argc, char **argv)
{
    const char *dsn = NULL;
    long n = 20000;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dsn") == 0)
            dsn = argv[i + 1];
        else if (strcmp(argv[i], "--n") == 0)
            n = atol(argv[i + 1]);
        else
            dsn = NULL, i = argc;
    }
    if (dsn == NULL || n < 1000) {
        fprintf(stderr, "usage: molt_bench acquire --dsn DSN [--n N >= 1000]\n");
        return 2;
    }
    n -= n % 1000;
    acq a;
    memset(&a, 0, sizeof a);
    uv_loop_init(&a.loop);
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_loop *ml = NULL;
    if (molt_db_loop_libuv_new(&a.loop, &ml, &err) != MOLT_DB_OK)
        acq_die("loop", &err);
    molt_db_conninfo *ci = NULL;
    if (molt_db_conninfo_parse(dsn, &ci, &err) != MOLT_DB_OK)
        acq_die("bad DSN", &err);
    if (molt_db_conn_connect(ml, ci, NULL, acq_connected, &a, &a.conn,
                             &err) != MOLT_DB_OK)
        acq_die("connect", &err);
    acq_wait(&a, &a.ready, 1);
    uint32_t oid = 23;
    if (molt_db_conn_prepare(a.conn, "acq", ACQ_SQL, 1, &oid, acq_prepared,
                             &a) != MOLT_DB_OK)
        acq_die("prepare", NULL);
    acq_wait(&a, &a.ready, 2);
    molt_db_pool_settings s;
    molt_db_pool_settings_init(&s);
    s.min_conns = s.max_conns = 1;
    if (molt_db_pool_open(ml, ci, &s, &a.pool, &err) != MOLT_DB_OK)
        acq_die("pool", &err);
    molt_db_conninfo_free(ci);

    uint64_t *call[2], *tail[2];
    for (int m = 0; m < 2; m++) {
        call[m] = malloc((size_t)n * sizeof **call);
        tail[m] = malloc((size_t)n * sizeof **tail);
        if (call[m] == NULL || tail[m] == NULL)
            acq_die("out of memory", NULL);
    }
    uint64_t x, y;
    for (int i = 0; i < 2000; i++) /* warm-up: connect, prepare, caches */
        acq_one(&a, i % 2, i, &x, &y);
    a.errors = 0;
    for (long blk = 0; blk < n / 1000; blk++)
        for (int m = 0; m < 2; m++)
            for (long i = blk * 1000; i < (blk + 1) * 1000; i++)
                acq_one(&a, m, (int32_t)(i * 7 - 3), &call[m][i], &tail[m][i]);

    double acq_ns = acq_q(call[1], (size_t)n, 0.5) - acq_q(call[0], (size_t)n, 0.5);
    double rel_ns = acq_q(tail[1], (size_t)n, 0.5) - acq_q(tail[0], (size_t)n, 0.5);
    double total = acq_ns + rel_ns;
    fprintf(stderr,
            "molt_bench acquire: %ld each, medians: pool_query call %.0f ns, "
            "conn_execute call %.0f ns -> acquire %.0f ns; on_row->on_done "
            "pool %.0f ns, conn %.0f ns -> release %.0f ns; total %.0f ns\n",
            n, acq_q(call[1], (size_t)n, 0.5), acq_q(call[0], (size_t)n, 0.5),
            acq_ns, acq_q(tail[1], (size_t)n, 0.5), acq_q(tail[0], (size_t)n, 0.5),
            rel_ns, total);
    if (total <= 0)
        total = 1; /* noise larger than the effect: report 1 ns, not garbage */
    printf("{\"ops\":%ld,\"seconds\":%.9f,\"cpu_seconds\":%.9f,"
           "\"acquire_ns\":%.0f,\"release_ns\":%.0f,\"errors\":%" PRIu64 "}\n",
           n, (double)n * total / 1e9, (double)n * total / 1e9, acq_ns, rel_ns,
           a.errors);
    molt_db_stmt_free(a.stmt);
    molt_db_conn_close(a.conn, acq_conn_closed, &a);
    molt_db_pool_close(a.pool, acq_pool_closed, &a);
    acq_wait(&a, &a.closed, 2);
    molt_db_loop_free(ml);
    uv_run(&a.loop, UV_RUN_DEFAULT); /* the handles' close callbacks */
    uv_loop_close(&a.loop);
    for (int m = 0; m < 2; m++) {
        free(call[m]);
        free(tail[m]);
    }
    return a.errors ? 1 : 0;
}
