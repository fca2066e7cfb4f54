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
    uint8_t env[256];       /* the envelope, built afresh for each request */
} hbench;

/* MsgPack, written and read as a runtime's binding does (the CPython one,
 * python/ext/, packs with lengths known at compile time and reads frames
 * with a cursor): no library objects or allocations per request. */

/* a str of at most 31 bytes, known at compile time */
#define PUT_FIXSTR(p, lit) \
    ((p)[0] = (uint8_t)(0xa0 | (sizeof(lit) - 1)), memcpy((p) + 1, lit, sizeof(lit) - 1), \
     (p) + sizeof(lit))

static uint8_t *put_be(uint8_t *p, uint8_t type, uint64_t v, int n)
{
    *p++ = type;
    for (int i = n - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static void hb_send(hbench *b, hslot *sl, int32_t aid)
{
    static const char sql[] = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    uint8_t payload[128], *p = payload;
    *p++ = 0x83; /* {sql, params: {mode, values: [aid]}, result_format} */
    p = PUT_FIXSTR(p, "sql");
    *p++ = 0xd9; /* str 8 */
    *p++ = (uint8_t)(sizeof sql - 1);
    memcpy(p, sql, sizeof sql - 1);
    p += sizeof sql - 1;
    p = PUT_FIXSTR(p, "params");
    *p++ = 0x82;
    p = PUT_FIXSTR(p, "mode");
    p = PUT_FIXSTR(p, "positional");
    p = PUT_FIXSTR(p, "values");
    *p++ = 0x91;
    p = put_be(p, 0xd2, (uint32_t)aid, 4);
    p = PUT_FIXSTR(p, "result_format");
    p = PUT_FIXSTR(p, "msgpack");
    size_t plen = (size_t)(p - payload);
    uint8_t *e = b->env;
    *e++ = 0x83; /* {request_id, entry, payload: bin} */
    e = PUT_FIXSTR(e, "request_id");
    e = put_be(e, 0xcf, ++b->next_id, 8);
    e = PUT_FIXSTR(e, "entry");
    e = PUT_FIXSTR(e, "db_query");
    e = PUT_FIXSTR(e, "payload");
    *e++ = 0xc4; /* bin 8 */
    *e++ = (uint8_t)plen;
    memcpy(e, payload, plen);
    e += plen;
    sl->got = 0;
    sl->t0 = bench_now_ns();
    if (molt_db_host_submit(b->h, b->env, (size_t)(e - b->env), 0, sl, &sl->s) < 0) {
        fprintf(stderr, "molt_bench host: submit failed\n");
        exit(1);
    }
    b->in_flight++;
}

/* A cursor over MsgPack bytes; every read is bounds-checked, and a bad or
 * short value sets bad. */
typedef struct cur {
    const uint8_t *p, *end;
    int bad;
} cur;

static uint64_t take_be(cur *c, int n)
{
    if (c->end - c->p < n) {
        c->bad = 1;
        c->p = c->end;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | *c->p++;
    return v;
}

/* The head of the next value: its type byte, and for a str, bin or
 * container its length or count in *n (for a map, its pairs). */
static uint8_t head(cur *c, uint64_t *n)
{
    *n = 0;
    if (c->p >= c->end) {
        c->bad = 1;
        return 0xc1;
    }
    uint8_t t = *c->p++;
    if (t >= 0x80 && t <= 0x8f)
        *n = t & 0x0f;
    else if (t >= 0x90 && t <= 0x9f)
        *n = t & 0x0f;
    else if (t >= 0xa0 && t <= 0xbf)
        *n = t & 0x1f;
    else if (t == 0xc4 || t == 0xd9)
        *n = take_be(c, 1);
    else if (t == 0xc5 || t == 0xda || t == 0xdc || t == 0xde)
        *n = take_be(c, 2);
    else if (t == 0xc6 || t == 0xdb || t == 0xdd || t == 0xdf)
        *n = take_be(c, 4);
    return t;
}

static int is_str(uint8_t t) { return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb); }
static int is_map(uint8_t t) { return (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf; }
static int is_array(uint8_t t) { return (t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd; }

/* n bytes of a str or bin, or NULL. */
static const uint8_t *take_bytes(cur *c, uint64_t n)
{
    if ((uint64_t)(c->end - c->p) < n) {
        c->bad = 1;
        c->p = c->end;
        return NULL;
    }
    const uint8_t *at = c->p;
    c->p += n;
    return at;
}

/* Skips one whole value (containers at most 8 deep). */
static void skip(cur *c, int depth)
{
    uint64_t n;
    uint8_t t = head(c, &n);
    if (c->bad)
        return;
    if (is_map(t) || is_array(t)) {
        if (depth == 8) {
            c->bad = 1;
            return;
        }
        for (uint64_t i = 0; i < (is_map(t) ? 2 * n : n) && !c->bad; i++)
            skip(c, depth + 1);
    } else if (is_str(t) || (t >= 0xc4 && t <= 0xc6)) {
        (void)take_bytes(c, n);
    } else if (t >= 0xc7 && t <= 0xc9) {
        n = take_be(c, t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4);
        (void)take_bytes(c, n + 1);
    } else if (t >= 0xca && t <= 0xd8) {
        static const uint8_t size[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 2, 3, 5, 9, 17};
        (void)take_bytes(c, size[t - 0xca]);
    } else if (t == 0xc1) {
        c->bad = 1;
    }
}

/* Reads a map's head and moves the cursor to the value of key; 0 when
 * the map has no such key (or is not a map). */
static int find_key(cur *c, const char *key, size_t klen)
{
    uint64_t pairs, n;
    if (!is_map(head(c, &pairs)))
        return 0;
    for (uint64_t i = 0; i < pairs && !c->bad; i++) {
        uint8_t t = head(c, &n);
        const uint8_t *k = is_str(t) ? take_bytes(c, n) : NULL;
        if (k && n == klen && memcmp(k, key, klen) == 0)
            return !c->bad;
        skip(c, 1);
    }
    return 0;
}

#define FIND_KEY(c, lit) find_key(c, lit, sizeof(lit) - 1)

/* An integer value. */
static int take_int(cur *c, int64_t *v)
{
    uint64_t n;
    uint8_t t = head(c, &n);
    if (t <= 0x7f || t >= 0xe0) {
        *v = (int8_t)t;
        return 1;
    }
    if (t < 0xcc || t > 0xd3)
        return 0;
    int bytes = 1 << ((t - 0xcc) & 3);
    uint64_t u = take_be(c, bytes);
    switch (t) {
    case 0xd0: *v = (int8_t)u; break;
    case 0xd1: *v = (int16_t)u; break;
    case 0xd2: *v = (int32_t)u; break;
    default: *v = (int64_t)u; break; /* uint 8..64 (the bench's values fit), int 64 */
    }
    return !c->bad;
}

/* abalance from an Ok frame: {status: "Ok", payload: bin {rows:
 * [[abalance]], ...}, ...}, whatever the keys' order. The read stops once
 * it has both: the timing figures after them (metrics) are not wanted, and
 * the stream says when it ends (molt_db_host_next), not the frame's "more". */
static int hb_read(hslot *sl, const uint8_t *f, size_t len)
{
    uint64_t pairs, n;
    cur c = {f, f + len, 0};
    const uint8_t *payload = NULL;
    size_t payload_len = 0;
    int ok = 0;
    if (!is_map(head(&c, &pairs)))
        return 0;
    for (uint64_t i = 0; i < pairs && !c.bad && !(ok && payload); i++) {
        uint8_t t = head(&c, &n);
        const uint8_t *k = is_str(t) ? take_bytes(&c, n) : NULL;
        if (k && n == 6 && memcmp(k, "status", 6) == 0) {
            const uint8_t *v = is_str(head(&c, &n)) ? take_bytes(&c, n) : NULL;
            if (!v || n != 2 || memcmp(v, "Ok", 2) != 0)
                return 0;
            ok = 1;
        } else if (k && n == 7 && memcmp(k, "payload", 7) == 0) {
            t = head(&c, &n);
            payload = t >= 0xc4 && t <= 0xc6 ? take_bytes(&c, n) : NULL;
            payload_len = (size_t)n;
        } else {
            skip(&c, 1);
        }
    }
    if (c.bad || !ok || !payload)
        return 0;
    cur r = {payload, payload + payload_len, 0};
    uint64_t rows, cols;
    if (!FIND_KEY(&r, "rows") || !is_array(head(&r, &rows)) || rows != 1 ||
        !is_array(head(&r, &cols)) || cols != 1)
        return 0;
    return take_int(&r, &sl->value);
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
                sl->got = hb_read(sl, f, len);
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
    free(b.lat.v);
    free(slots);
    return 0;

usage:
    fprintf(stderr, "usage: molt_bench host --dsn DSN [--conns N] [--inflight M] "
                    "[--seconds S] [--warmup S] [--driven [--host-waits]]\n");
    return 2;
}
