/*
 * molt_bench: molt_db's contender in `make bench`. One mode per scenario;
 * each does its own warm-up, measures only the work, and prints one JSON
 * line (bench/contenders.md): ops, seconds, cpu_seconds, latencies_us,
 * errors, check.
 *
 *   molt_bench pingpong --dsn DSN --seconds S
 *       one connection, `SELECT $1::int8` prepared once, one query in
 *       flight; each reply is checked against the value sent.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "molt_db/conn.h"
#include "molt_db/loop_libuv.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const molt_db_error *err)
{
    fprintf(stderr, "molt_bench: %s: %s\n", what, err ? err->message : "");
    exit(1);
}

/* ---- latency samples --------------------------------------------------- */

typedef struct samples {
    uint64_t *v;
    size_t n, cap;
} samples;

static void samples_add(samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1 << 16;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (s->v == NULL)
            die("out of memory", NULL);
    }
    s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(samples *s, double q)
{
    if (s->n == 0)
        return 0;
    size_t k = (size_t)ceil(q * (double)s->n);
    k = k == 0 ? 0 : k - 1;
    if (k >= s->n)
        k = s->n - 1;
    return (double)s->v[k] / 1000.0;
}

/* ---- connection -------------------------------------------------------- */

typedef struct bench_conn {
    uv_loop_t *loop;
    molt_db_conn *conn;
    int done;
    int status;
} bench_conn;

static void on_connect(molt_db_conn *c, int status, const molt_db_error *err,
                       void *ud)
{
    (void)c;
    bench_conn *b = ud;
    b->status = status;
    b->done = 1;
    if (status != MOLT_DB_OK)
        die("connect failed", err);
}

static molt_db_conn *connect_or_die(uv_loop_t *loop, molt_db_loop *ml,
                                    const char *dsn)
{
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_conninfo *ci = NULL;
    if (molt_db_conninfo_parse(dsn, &ci, &err) != MOLT_DB_OK)
        die("bad DSN", &err);
    bench_conn b = {loop, NULL, 0, 0};
    if (molt_db_conn_connect(ml, ci, NULL, on_connect, &b, &b.conn, &err) != MOLT_DB_OK)
        die("connect", &err);
    molt_db_conninfo_free(ci);
    while (!b.done)
        uv_run(loop, UV_RUN_ONCE);
    return b.conn;
}

typedef struct prep {
    molt_db_stmt *stmt;
    int done;
} prep;

static void on_prepared(void *ud, int status, molt_db_stmt *stmt,
                        const molt_db_error *err)
{
    prep *p = ud;
    if (status != MOLT_DB_OK)
        die("prepare failed", err);
    p->stmt = stmt;
    p->done = 1;
}

static molt_db_stmt *prepare_or_die(uv_loop_t *loop, molt_db_conn *c,
                                    const char *name, const char *sql)
{
    prep p = {NULL, 0};
    if (molt_db_conn_prepare(c, name, sql, 0, NULL, on_prepared, &p) != MOLT_DB_OK)
        die("prepare", NULL);
    while (!p.done)
        uv_run(loop, UV_RUN_ONCE);
    return p.stmt;
}

/* ---- pingpong ---------------------------------------------------------- */

typedef struct pingpong {
    uv_loop_t *loop;
    molt_db_conn *conn;
    molt_db_stmt *stmt;
    uint64_t rng;
    int64_t sent;
    int64_t got;
    uint8_t param[8];
    uint64_t t0;
    double end;          /* stop issuing after this time */
    int measuring;
    int in_flight;
    uint64_t ops;
    uint64_t errors;
    samples lat;
} pingpong;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void pp_send(pingpong *p, int64_t v);

static int pp_row(void *ud, const molt_db_field *f, size_t n)
{
    pingpong *p = ud;
    if (n != 1 || f[0].len != 8)
        return MOLT_DB_ETYPE;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | f[0].data[i];
    p->got = (int64_t)x;
    return MOLT_DB_OK;
}

static void pp_done(void *ud, int status, const molt_db_error *err)
{
    pingpong *p = ud;
    p->in_flight = 0;
    if (status != MOLT_DB_OK)
        die("query failed", err);
    if (p->measuring) {
        samples_add(&p->lat, now_ns() - p->t0);
        p->ops++;
        p->errors += p->got != p->sent;
    }
    if (now_s() < p->end)
        pp_send(p, (int64_t)(next_rand(&p->rng) % 1000000) + 1);
}

static void pp_send(pingpong *p, int64_t v)
{
    p->sent = v;
    p->got = INT64_MIN;
    for (int i = 0; i < 8; i++)
        p->param[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    molt_db_param prm = {20, MOLT_DB_FORMAT_BINARY, 8, p->param};
    molt_db_result_handler h = {NULL, pp_row, NULL, pp_done, p};
    p->in_flight = 1;
    p->t0 = now_ns();
    if (molt_db_conn_execute(p->conn, p->stmt, 1, &prm, &h) != MOLT_DB_OK)
        die("execute", NULL);
}

static void pp_phase(pingpong *p, double seconds, int measure)
{
    p->measuring = measure;
    p->end = now_s() + seconds;
    pp_send(p, (int64_t)(next_rand(&p->rng) % 1000000) + 1);
    while (p->in_flight)
        uv_run(p->loop, UV_RUN_ONCE);
}

static int64_t pp_echo(pingpong *p, int64_t v)
{
    p->end = 0;
    p->measuring = 0;
    pp_send(p, v);
    while (p->in_flight)
        uv_run(p->loop, UV_RUN_ONCE);
    return p->got;
}

static int run_pingpong(const char *dsn, double seconds, double warmup)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    pingpong p;
    memset(&p, 0, sizeof p);
    p.loop = &loop;
    p.rng = 0x9e3779b97f4a7c15ULL;
    molt_db_loop *ml = NULL;
    if (molt_db_loop_libuv_new(&loop, &ml, NULL) != MOLT_DB_OK)
        die("loop", NULL);
    p.conn = connect_or_die(&loop, ml, dsn);
    p.stmt = prepare_or_die(&loop, p.conn, "pingpong", "SELECT $1::int8");
    pp_phase(&p, warmup, 0);
    double c0 = cpu_s(), w0 = now_s();
    pp_phase(&p, seconds, 1);
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    int64_t check[3] = {pp_echo(&p, 1), pp_echo(&p, (int64_t)1 << 40), pp_echo(&p, -7)};
    qsort(p.lat.v, p.lat.n, sizeof *p.lat.v, cmp_u64);
    printf("{\"ops\":%" PRIu64 ",\"seconds\":%.6f,\"cpu_seconds\":%.6f,"
           "\"latencies_us\":{\"p50\":%.3f,\"p99\":%.3f,\"n\":%zu},"
           "\"errors\":%" PRIu64 ",\"check\":[%" PRId64 ",%" PRId64 ",%" PRId64 "]}\n",
           p.ops, wall, cpu, pct_us(&p.lat, 0.50), pct_us(&p.lat, 0.99), p.lat.n,
           p.errors, check[0], check[1], check[2]);
    molt_db_stmt_free(p.stmt);
    molt_db_conn_close(p.conn, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    molt_db_loop_free(ml);
    uv_loop_close(&loop);
    free(p.lat.v);
    return 0;
}

/* ---- main -------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: molt_bench MODE --dsn DSN [--seconds S] [--warmup S]\n"
            "modes: pingpong, pk (bench_pk.c), acquire (bench_acquire.c),\n"
            "       bulk-arrow, bulk-structs (bench_bulk.c), host (bench_host.c)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "pk") == 0) { int molt_bench_pk(int, char **); return molt_bench_pk(argc, argv); }
    if (strcmp(mode, "host") == 0) { int molt_bench_host(int, char **); return molt_bench_host(argc, argv); }
    if (strcmp(mode, "acquire") == 0) { int molt_bench_acquire(int, char **); return molt_bench_acquire(argc, argv); }
    if (strncmp(mode, "bulk-", 5) == 0) { int molt_bench_bulk(int, char **); return molt_bench_bulk(argc, argv); }
    const char *dsn = NULL;
    double seconds = 5, warmup = 0.5;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc)
            dsn = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            warmup = atof(argv[++i]);
        else if (strcmp(argv[i], "--conns") == 0 || strcmp(argv[i], "--inflight") == 0)
            i++; /* accepted for the modes that use them */
        else {
            usage();
            return 2;
        }
    }
    if (dsn == NULL) {
        usage();
        return 2;
    }
    if (strcmp(mode, "pingpong") == 0)
        return run_pingpong(dsn, seconds, warmup);
    fprintf(stderr, "molt_bench: mode \"%s\" is not implemented yet\n", mode);
    return 3;
}
