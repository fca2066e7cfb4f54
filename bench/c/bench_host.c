/*
 * molt_bench host --dsn DSN --conns N --inflight M --seconds S [--warmup S]
 *                  [--driven [--host-waits]]
 *
 * The pk query of bench_pk.c (`SELECT abalance FROM pgbench_accounts WHERE
 * aid = $1`, aid random in 1..1000000), but through the host ABI
 * (molt_db/host.h) in threaded mode: each query is a db_query envelope
 * (positional parameter, msgpack result) submitted by this thread; the
 * host's own thread runs the worker's request core over a pool of N
 * connections; this thread arms the host (molt_db_host_arm), waits on
 * molt_db_host_fd with poll(), takes the frames and decodes abalance from
 * each. M requests in flight. --driven:
 * driven mode instead, everything on this thread (poll() on the fd for
 * molt_db_host_timeout, then molt_db_host_poll); --host-waits: the host
 * waits itself, in molt_db_host_poll(h, ms), as a caller without a poller
 * of its own would let it. Prints the JSON line of
 * bench/contenders.md; cpu_seconds is the whole process (both threads), so
 * it compares with molt_bench pk's.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "bench_common.h"
#include "molt_db/host.h"

int molt_bench_host(int argc, char **argv);

typedef struct hslot {
    molt_db_host_stream *s;
    uint64_t t0;
    int64_t value;
    int got;
} hslot;

typedef struct hbench {
    molt_db_host *h;
    uint64_t rng, next_id;
    uint64_t end_ns;
    int measuring, in_flight;
    int host_waits;         /* molt_db_host_poll waits, not this file's poll() */
    int threaded;           /* threaded mode: arms before it waits (molt_db_host_arm) */
    uint64_t ops, errors;
    bench_lat lat;
    msgpack_sbuffer env, payload;
    msgpack_zone zone;      /* the frames' objects, cleared after each */
} hbench;

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void hb_send(hbench *b, hslot *sl, int32_t aid)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&b->payload);
    msgpack_packer_init(&pk, &b->payload, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "sql");
    pack_str(&pk, "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    pack_str(&pk, "params");
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "mode");
    pack_str(&pk, "positional");
    pack_str(&pk, "values");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int32(&pk, aid);
    pack_str(&pk, "result_format");
    pack_str(&pk, "msgpack");
    msgpack_sbuffer_clear(&b->env);
    msgpack_packer_init(&pk, &b->env, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "request_id");
    msgpack_pack_uint64(&pk, ++b->next_id);
    pack_str(&pk, "entry");
    pack_str(&pk, "db_query");
    pack_str(&pk, "payload");
    msgpack_pack_bin(&pk, b->payload.size);
    msgpack_pack_bin_body(&pk, b->payload.data, b->payload.size);
    sl->got = 0;
    sl->t0 = bench_now_ns();
    if (molt_db_host_submit(b->h, (const uint8_t *)b->env.data, b->env.size, 0, sl,
                            &sl->s) < 0) {
        fprintf(stderr, "molt_bench host: submit failed\n");
        exit(1);
    }
    b->in_flight++;
}

/* The map's value under key, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

/* abalance from an Ok frame: payload {rows: [[abalance]], ...}. The
 * objects go into one zone kept for all frames (as a client that decodes
 * many frames would), not a new 8 KB zone per unpack. */
static int hb_read(hbench *b, hslot *sl, const uint8_t *f, size_t len)
{
    msgpack_object u, p;
    size_t off = 0, poff = 0;
    int ok = 0;
    if (msgpack_unpack((const char *)f, len, &off, &b->zone, &u) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *pl = map_get(&u, "payload");
        if (pl && pl->type == MSGPACK_OBJECT_BIN &&
            msgpack_unpack(pl->via.bin.ptr, pl->via.bin.size, &poff, &b->zone, &p) ==
                MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *rows = map_get(&p, "rows");
            if (rows && rows->type == MSGPACK_OBJECT_ARRAY && rows->via.array.size == 1 &&
                rows->via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY &&
                rows->via.array.ptr[0].via.array.size == 1) {
                const msgpack_object *v = &rows->via.array.ptr[0].via.array.ptr[0];
                if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                    sl->value = (int64_t)v->via.u64;
                    ok = 1;
                } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                    sl->value = v->via.i64;
                    ok = 1;
                }
            }
        }
    }
    msgpack_zone_clear(&b->zone);
    return ok;
}

static void hb_done(hbench *b, hslot *sl)
{
    b->in_flight--;
    molt_db_host_release(sl->s);
    sl->s = NULL;
    if (!sl->got)
        b->errors++;
    if (b->measuring) {
        bench_lat_add(&b->lat, bench_now_ns() - sl->t0);
        b->ops++;
    }
    if (b->end_ns != 0 && bench_now_ns() < b->end_ns)
        hb_send(b, sl, (int32_t)(bench_rand(&b->rng) % 1000000) + 1);
}

/* Waits on the host's fd, then takes every frame of the streams with news. */
static void hb_turn(hbench *b)
{
    struct pollfd p = {.fd = molt_db_host_fd(b->h), .events = POLLIN};
    int t = molt_db_host_timeout(b->h); /* threaded mode: -1 */
    if (b->host_waits) {
        molt_db_host_poll(b->h, 1000);
    } else if (b->threaded) {
        /* armed: the host writes its fd only for a wait */
        if (!molt_db_host_arm(b->h))
            (void)poll(&p, 1, 1000);
        molt_db_host_poll(b->h, 0);
    } else {
        if (t != 0) /* 0: work now, nothing to wait for */
            (void)poll(&p, 1, t < 0 || t > 1000 ? 1000 : t);
        molt_db_host_poll(b->h, 0);
    }
    void *ready[256];
    size_t n;
    while ((n = molt_db_host_ready(b->h, ready, 256)) > 0) {
        for (size_t i = 0; i < n; i++) {
            hslot *sl = ready[i];
            const uint8_t *f;
            size_t len;
            int rc;
            while ((rc = molt_db_host_next(sl->s, &f, &len)) == 1)
                sl->got = hb_read(b, sl, f, len);
            if (rc == MOLT_DB_HOST_DONE)
                hb_done(b, sl);
        }
    }
}

static void hb_phase(hbench *b, hslot *slots, int inflight, double secs, int measure)
{
    b->measuring = measure;
    b->end_ns = bench_now_ns() + (uint64_t)(secs * 1e9);
    for (int i = 0; i < inflight; i++)
        hb_send(b, &slots[i], (int32_t)(bench_rand(&b->rng) % 1000000) + 1);
    while (b->in_flight > 0)
        hb_turn(b);
}

static int64_t hb_one(hbench *b, hslot *sl, int32_t aid)
{
    b->end_ns = 0;
    b->measuring = 0;
    hb_send(b, sl, aid);
    while (b->in_flight > 0)
        hb_turn(b);
    return sl->got ? sl->value : INT64_MIN;
}

int molt_bench_host(int argc, char **argv)
{
    const char *dsn = NULL;
    double seconds = 5, warmup = 0.5;
    int conns = 8, inflight = 64, mode = MOLT_DB_HOST_THREADED, host_waits = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--driven") == 0) {
            mode = MOLT_DB_HOST_DRIVEN;
            continue;
        }
        if (strcmp(argv[i], "--host-waits") == 0) {
            host_waits = 1;
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
        else
            goto usage;
    }
    if (dsn == NULL || conns < 1 || inflight < 1 || seconds <= 0 ||
        (host_waits && mode != MOLT_DB_HOST_DRIVEN))
        goto usage;
    char db[1024], pool_min[64], pool_max[64];
    snprintf(db, sizeof db, "default=%s", dsn);
    snprintf(pool_min, sizeof pool_min, "default:min_conns=%d", conns);
    snprintf(pool_max, sizeof pool_max, "default:max_conns=%d", conns);
    /* the harness's role is a superuser: the worker refuses one unless told */
    const char *args[] = {"--db", db, "--pool", pool_max, "--pool", pool_min,
                          "--pool", "default:allow_privileged_role=true"};
    hbench b;
    memset(&b, 0, sizeof b);
    b.host_waits = host_waits;
    b.threaded = mode == MOLT_DB_HOST_THREADED;
    b.rng = 0x9e3779b97f4a7c15ULL;
    msgpack_sbuffer_init(&b.env);
    msgpack_sbuffer_init(&b.payload);
    if (!msgpack_zone_init(&b.zone, 4096))
        return 1;
    molt_db_error err;
    molt_db_error_init(&err);
    if (molt_db_host_new(8, args, mode, &b.h, &err) < 0) {
        fprintf(stderr, "molt_bench host: %s\n", err.message);
        return 1;
    }
    hslot *slots = calloc((size_t)inflight, sizeof *slots);
    if (!slots)
        return 1;
    hb_phase(&b, slots, inflight, warmup, 0);
    b.errors = 0;
    double c0 = bench_cpu_s();
    uint64_t w0 = bench_now_ns();
    hb_phase(&b, slots, inflight, seconds, 1);
    double wall = (double)(bench_now_ns() - w0) / 1e9, cpu = bench_cpu_s() - c0;
    int64_t check[3] = {hb_one(&b, &slots[0], 1), hb_one(&b, &slots[0], 500000),
                        hb_one(&b, &slots[0], 1000000)};
    printf("{\"ops\":%" PRIu64 ",\"seconds\":%.6f,\"cpu_seconds\":%.6f,"
           "\"latencies_us\":{\"p50\":%.3f,\"p99\":%.3f,\"n\":%zu},"
           "\"errors\":%" PRIu64 ",\"check\":[%" PRId64 ",%" PRId64 ",%" PRId64 "]}\n",
           b.ops, wall, cpu, bench_lat_pct_us(&b.lat, 0.50), bench_lat_pct_us(&b.lat, 0.99),
           b.lat.n, b.errors,
           check[0], check[1], check[2]);
    molt_db_host_free(b.h);
    msgpack_sbuffer_destroy(&b.env);
    msgpack_sbuffer_destroy(&b.payload);
    msgpack_zone_destroy(&b.zone);
    free(b.lat.v);
    free(slots);
    return 0;

usage:
    fprintf(stderr, "usage: molt_bench host --dsn DSN [--conns N] [--inflight M] "
                    "[--seconds S] [--warmup S] [--driven [--host-waits]]\n");
    return 2;
}
