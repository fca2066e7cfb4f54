/*
 * molt_bench pk --dsn DSN --conns N --inflight M --seconds S [--warmup S]
 *                [--pipeline D] [--no-batch] [--read-only-tx]
 *
 * `SELECT abalance FROM pgbench_accounts WHERE aid = $1` with aid random in
 * 1..1000000 through a molt_db pool of N connections (cached statements),
 * M requests in flight. The pipeline depth per connection defaults to
 * ceil(M / N) when M > 8 N (pk_inflight256: 4 connections, 256 in flight),
 * else 1 (pk_inflight64: 8 connections, 64 in flight, not pipelined).
 * The queries are marked read_only (they are), so a pipelined connection
 * lets those queued in one loop iteration share one Sync (docs/pool.md);
 * --no-batch gives every query its own Sync. --read-only-tx frames each
 * query in BEGIN READ ONLY ... ROLLBACK in its round trip, as molt_worker
 * and the host run db_query (the host_point scenarios). Prints the JSON line of
 * bench/contenders.md; check is the abalance of aids 1, 500000 and 1000000.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench_common.h"
#include "molt_db/loop_libuv.h"
#include "molt_db/pool.h"

int molt_bench_pk(int argc, char **argv);

typedef struct pk_bench pk_bench;

typedef struct pk_slot {
    pk_bench *b;
    uint64_t t0;
    int64_t value;
    int got;
    uint8_t param[4];
} pk_slot;

struct pk_bench {
    uv_loop_t loop;
    molt_db_pool *pool;
    uint64_t rng;
    uint64_t end_ns;      /* stop issuing after this */
    int measuring;
    int in_flight;
    uint64_t ops, errors;
    bench_lat lat;
    molt_db_pool_query_options opts;
};

static int pk_row(void *ud, const molt_db_field *f, size_t n)
{
    pk_slot *s = ud;
    if (n != 1 || f[0].len != 4)
        return MOLT_DB_ETYPE;
    uint32_t x = (uint32_t)f[0].data[0] << 24 | (uint32_t)f[0].data[1] << 16 |
                 (uint32_t)f[0].data[2] << 8 | f[0].data[3];
    s->value = (int32_t)x;
    s->got = 1;
    return MOLT_DB_OK;
}

static void pk_send(pk_slot *s, int32_t aid);

static void pk_done(void *ud, int status, const molt_db_error *err)
{
    pk_slot *s = ud;
    pk_bench *b = s->b;
    b->in_flight--;
    if (status != MOLT_DB_OK) {
        fprintf(stderr, "molt_bench pk: %s: %s\n", molt_db_code_name(status),
                err ? err->message : "");
        b->errors++;
    } else if (!s->got) {
        b->errors++;
    }
    if (b->measuring) {
        bench_lat_add(&b->lat, bench_now_ns() - s->t0);
        b->ops++;
    }
    if (b->end_ns != 0 && bench_now_ns() < b->end_ns)
        pk_send(s, (int32_t)(bench_rand(&b->rng) % 1000000) + 1);
}

static const char *PK_SQL = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

static void pk_send(pk_slot *s, int32_t aid)
{
    pk_bench *b = s->b;
    for (int i = 0; i < 4; i++)
        s->param[i] = (uint8_t)((uint32_t)aid >> (24 - 8 * i));
    molt_db_param prm = {23, MOLT_DB_FORMAT_BINARY, 4, s->param};
    molt_db_result_handler h = {NULL, pk_row, NULL, pk_done, s};
    s->got = 0;
    s->t0 = bench_now_ns();
    int rc = molt_db_pool_query(b->pool, PK_SQL, 1, &prm, &h, &b->opts, NULL);
    if (rc != MOLT_DB_OK) {
        fprintf(stderr, "molt_bench pk: query: %s\n", molt_db_code_name(rc));
        exit(1);
    }
    b->in_flight++;
}

static void pk_phase(pk_bench *b, pk_slot *slots, int inflight, double secs,
                     int measure)
{
    b->measuring = measure;
    b->end_ns = bench_now_ns() + (uint64_t)(secs * 1e9);
    for (int i = 0; i < inflight; i++)
        pk_send(&slots[i], (int32_t)(bench_rand(&b->rng) % 1000000) + 1);
    while (b->in_flight > 0)
        uv_run(&b->loop, UV_RUN_ONCE);
}

static int64_t pk_one(pk_bench *b, pk_slot *s, int32_t aid)
{
    b->end_ns = 0;
    b->measuring = 0;
    pk_send(s, aid);
    while (b->in_flight > 0)
        uv_run(&b->loop, UV_RUN_ONCE);
    return s->got ? s->value : INT64_MIN;
}

static void pk_closed(molt_db_pool *p, void *ud)
{
    (void)p;
    *(int *)ud = 1;
}

int molt_bench_pk(int argc, char **argv)
{
    const char *dsn = NULL;
    double seconds = 5, warmup = 0.5;
    int conns = 8, inflight = 64, depth = 0, batch = 1, ro_tx = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-batch") == 0) {
            batch = 0;
            continue;
        }
        if (strcmp(argv[i], "--read-only-tx") == 0) {
            ro_tx = 1;
            continue;
        }
        if (i + 1 >= argc)
            goto usage;
        if (strcmp(argv[i], "--dsn") == 0)
            dsn = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = atof(argv[++i]);
        else if (strcmp(argv[i], "--conns") == 0)
            conns = atoi(argv[++i]);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pipeline") == 0)
            depth = atoi(argv[++i]);
        else
            goto usage;
    }
    if (dsn == NULL || conns < 1 || inflight < 1 || seconds <= 0)
        goto usage;
    if (depth < 1)
        depth = inflight > 8 * conns ? (inflight + conns - 1) / conns : 1;

    pk_bench b;
    memset(&b, 0, sizeof b);
    b.rng = 0x9e3779b97f4a7c15ULL;
    b.opts.read_only = batch;
    b.opts.read_only_tx = ro_tx;
    uv_loop_init(&b.loop);
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_loop *ml = NULL;
    if (molt_db_loop_libuv_new(&b.loop, &ml, &err) != MOLT_DB_OK)
        return 1;
    molt_db_conninfo *ci = NULL;
    if (molt_db_conninfo_parse(dsn, &ci, &err) != MOLT_DB_OK) {
        fprintf(stderr, "molt_bench pk: bad DSN: %s\n", err.message);
        return 1;
    }
    molt_db_pool_settings s;
    molt_db_pool_settings_init(&s);
    s.min_conns = s.max_conns = conns;
    s.pipeline_depth = depth;
    if (molt_db_pool_open(ml, ci, &s, &b.pool, &err) != MOLT_DB_OK) {
        fprintf(stderr, "molt_bench pk: pool: %s\n", err.message);
        return 1;
    }
    molt_db_conninfo_free(ci);
    pk_slot *slots = calloc((size_t)inflight, sizeof *slots);
    if (slots == NULL)
        return 1;
    for (int i = 0; i < inflight; i++)
        slots[i].b = &b;

    pk_phase(&b, slots, inflight, warmup, 0);
    b.errors = 0;
    double c0 = bench_cpu_s();
    uint64_t w0 = bench_now_ns();
    pk_phase(&b, slots, inflight, seconds, 1);
    double wall = (double)(bench_now_ns() - w0) / 1e9, cpu = bench_cpu_s() - c0;
    int64_t check[3] = {pk_one(&b, &slots[0], 1), pk_one(&b, &slots[0], 500000),
                        pk_one(&b, &slots[0], 1000000)};
    molt_db_pool_stats st;
    molt_db_pool_get_stats(b.pool, &st);
    fprintf(stderr, "molt_bench pk: conns %d, depth %d, %s, max acquire wait "
                    "%.3f ms, %" PRIu64 " resends\n",
            conns, depth, batch ? "read-only batches" : "one Sync per query",
            (double)st.max_wait_us / 1e3, st.resends);
    printf("{\"ops\":%" PRIu64 ",\"seconds\":%.6f,\"cpu_seconds\":%.6f,"
           "\"latencies_us\":{\"p50\":%.3f,\"p99\":%.3f,\"n\":%zu},"
           "\"errors\":%" PRIu64 ",\"check\":[%" PRId64 ",%" PRId64 ",%" PRId64 "]}\n",
           b.ops, wall, cpu, bench_lat_pct_us(&b.lat, 0.50), bench_lat_pct_us(&b.lat, 0.99), b.lat.n,
           b.errors, check[0], check[1], check[2]);
    int closed = 0;
    molt_db_pool_close(b.pool, pk_closed, &closed);
    while (!closed)
        uv_run(&b.loop, UV_RUN_ONCE);
    molt_db_loop_free(ml);
    uv_run(&b.loop, UV_RUN_DEFAULT); /* the handles' close callbacks */
    uv_loop_close(&b.loop);
    free(b.lat.v);
    free(slots);
    return 0;

usage:
    fprintf(stderr, "usage: molt_bench pk --dsn DSN [--conns N] [--inflight M] "
                    "[--seconds S] [--warmup S] [--pipeline D] [--no-batch] "
                    "[--read-only-tx]\n");
    return 2;
}
