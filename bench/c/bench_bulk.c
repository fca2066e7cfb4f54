/*
 * molt_bench bulk-arrow | bulk-structs --dsn DSN [--limit N] [--via copy|query]
 *
 * The bulk_1m / ipc_read100k work of bench/contenders.md: SELECT id, t, f,
 * ts, b, i FROM bench_bulk decoded into Arrow batches (kept: the table) or
 * into one array of C structs. --via query (default) runs it through the
 * extended protocol (DataRows, binary); --via copy through COPY (FORMAT
 * binary) and molt_db_conn_copy_query. Both are server-bound (the
 * server's own COPY to psql takes longer), so the client CPU is the
 * figure; docs/arrow.md has the measurements.
 * After a short warm-up (the same work on 1000 rows), the measured part is
 * the query from send to the last row decoded; the check sums are computed
 * afterwards from the decoded data, as the runner's rows_check does.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "molt_db/arrow.h"
#include "molt_db/conn.h"
#include "molt_db/copy_binary.h"
#include "molt_db/loop_libuv.h"
#include "molt_db/rowstruct.h"

#define TS_BASE_US INT64_C(1704067200000000) /* 2024-01-01 00:00:00 UTC */

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void fatal(const char *what, const molt_db_error *err)
{
    fprintf(stderr, "molt_bench: %s: %s\n", what, err ? err->message : "");
    exit(1);
}

/* ---- check sums ----------------------------------------------------------- */

typedef struct sums {
    int64_t rows, sum_id, sum_len_t, sum_ts, n_true, sum_i;
    double f, f_comp; /* Neumaier-compensated sum of f */
} sums;

static void add_f(sums *s, double x)
{
    double t = s->f + x;
    if ((s->f >= 0 ? s->f : -s->f) >= (x >= 0 ? x : -x))
        s->f_comp += (s->f - t) + x;
    else
        s->f_comp += (x - t) + s->f;
    s->f = t;
}

/* characters, as Python's len(): UTF-8 bytes that do not continue one */
static int64_t utf8_chars(const uint8_t *p, size_t n)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (p[i] & 0xC0) != 0x80;
    return c;
}

static void print_result(const sums *s, double secs, double cpu)
{
    printf("{\"ops\":%" PRId64 ",\"rows\":%" PRId64 ",\"seconds\":%.6f,"
           "\"cpu_seconds\":%.6f,\"check\":{\"rows\":%" PRId64 ",\"sum_id\":%" PRId64
           ",\"sum_len_t\":%" PRId64 ",\"sum_f\":%.17g,\"sum_ts_us\":%" PRId64
           ",\"n_true\":%" PRId64 ",\"sum_i\":%" PRId64 "}}\n",
           s->rows, s->rows, secs, cpu, s->rows, s->sum_id, s->sum_len_t,
           s->f + s->f_comp, s->sum_ts, s->n_true, s->sum_i);
}

/* ---- running one query to completion ---------------------------------- */

typedef struct run {
    uv_loop_t *loop;
    molt_db_conn *conn;
    int via_copy;
    int done, status;
    molt_db_error err;
} run;

static void run_done(run *r, int status, const molt_db_error *err)
{
    r->done = 1;
    r->status = status;
    if (status != MOLT_DB_OK && err)
        molt_db_error_copy(&r->err, err);
}

static void run_wait(run *r, const molt_db_result_handler *h, const char *sql)
{
    r->done = 0;
    int rc = r->via_copy ? molt_db_conn_copy_query(r->conn, sql, h)
                         : molt_db_conn_query(r->conn, sql, 0, NULL, h);
    if (rc != MOLT_DB_OK)
        fatal("could not start the query", NULL);
    while (!r->done)
        uv_run(r->loop, UV_RUN_ONCE);
    if (r->status != MOLT_DB_OK)
        fatal("query failed", &r->err);
}

/* ---- bulk-arrow -------------------------------------------------------- */

typedef struct table {
    run *r;
    struct ArrowArray *batches;
    size_t n, cap;
} table;

static int tb_batch(void *ud, struct ArrowArray *a)
{
    table *t = ud;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct ArrowArray *nb = realloc(t->batches, cap * sizeof *nb);
        if (nb == NULL)
            return MOLT_DB_ENOMEM;
        t->batches = nb;
        t->cap = cap;
    }
    t->batches[t->n++] = *a; /* move */
    a->release = NULL;
    return MOLT_DB_OK;
}

static void tb_done(void *ud, int status, const molt_db_error *err)
{
    run_done(((table *)ud)->r, status, err);
}

static void table_clear(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->batches[i].release(&t->batches[i]);
    t->n = 0;
}

static void table_sums(const table *t, sums *s)
{
    for (size_t k = 0; k < t->n; k++) {
        const struct ArrowArray *a = &t->batches[k];
        struct ArrowArray *const *c = a->children;
        const int64_t *id = c[0]->buffers[1];
        const int32_t *to = c[1]->buffers[1];
        const uint8_t *td = c[1]->buffers[2];
        const double *f = c[2]->buffers[1];
        const int64_t *ts = c[3]->buffers[1];
        const uint8_t *b = c[4]->buffers[1];
        const int32_t *iv = c[5]->buffers[1];
        for (int64_t r = 0; r < a->length; r++) {
            s->sum_id += id[r];
            s->sum_len_t += utf8_chars(td + to[r], (size_t)(to[r + 1] - to[r]));
            add_f(s, f[r]);
            s->sum_ts += ts[r] - TS_BASE_US;
            s->n_true += (b[r >> 3] >> (r & 7)) & 1;
            s->sum_i += iv[r];
        }
        s->rows += a->length;
    }
}

static void bulk_arrow(run *r, const char *sql, const char *warm_sql)
{
    table t = {r, NULL, 0, 0};
    molt_db_arrow_reader_options o = {0, 0, NULL, tb_batch, tb_done, &t};
    molt_db_arrow_reader *rd = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    if (molt_db_arrow_reader_new(&o, &rd, &err) != MOLT_DB_OK)
        fatal("reader", &err);
    molt_db_result_handler h = molt_db_arrow_reader_handler(rd);
    run_wait(r, &h, warm_sql);
    table_clear(&t);

    double w0 = wall_s(), c0 = cpu_now();
    run_wait(r, &h, sql);
    double secs = wall_s() - w0, cpu = cpu_now() - c0;

    sums s;
    memset(&s, 0, sizeof s);
    table_sums(&t, &s);
    print_result(&s, secs, cpu);
    table_clear(&t);
    free(t.batches);
    molt_db_arrow_reader_free(rd);
}

/* ---- bulk-structs -------------------------------------------------------- */

typedef struct bulk_row {
    int64_t id;
    char t[64];
    double f;
    int64_t ts_us;
    bool b;
    int32_t i;
} bulk_row;

static const molt_db_member bulk_members[] = {
    {"id", 0, offsetof(bulk_row, id), MOLT_DB_MEMBER_INT64},
    {"t", 0, offsetof(bulk_row, t), MOLT_DB_MEMBER_CHARS, .size = 64},
    {"f", 0, offsetof(bulk_row, f), MOLT_DB_MEMBER_DOUBLE},
    {"ts", 0, offsetof(bulk_row, ts_us), MOLT_DB_MEMBER_TIMESTAMP_US},
    {"b", 0, offsetof(bulk_row, b), MOLT_DB_MEMBER_BOOL},
    {"i", 0, offsetof(bulk_row, i), MOLT_DB_MEMBER_INT32},
};

static const molt_db_rowstruct_desc bulk_desc = {
    sizeof(bulk_row), sizeof bulk_members / sizeof bulk_members[0], bulk_members};

typedef struct rows {
    run *r;
    bulk_row *v;
    size_t n, cap;
} rows;

static int rs_rows(void *ud, void *p, size_t n)
{
    rows *rs = ud;
    if (rs->n + n > rs->cap) {
        size_t cap = rs->cap ? rs->cap : 4096;
        while (cap < rs->n + n)
            cap *= 2;
        bulk_row *nv = realloc(rs->v, cap * sizeof *nv);
        if (nv == NULL)
            return MOLT_DB_ENOMEM;
        rs->v = nv;
        rs->cap = cap;
    }
    memcpy(rs->v + rs->n, p, n * sizeof *rs->v);
    rs->n += n;
    return MOLT_DB_OK;
}

static void rs_done(void *ud, int status, const molt_db_error *err)
{
    run_done(((rows *)ud)->r, status, err);
}

static void bulk_structs(run *r, const char *sql, const char *warm_sql)
{
    rows rs = {r, NULL, 0, 0};
    molt_db_rowstruct_reader_options o = {&bulk_desc, 8192, rs_rows, rs_done, &rs};
    molt_db_rowstruct_reader *rd = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    if (molt_db_rowstruct_reader_new(&o, &rd, &err) != MOLT_DB_OK)
        fatal("reader", &err);
    molt_db_result_handler h = molt_db_rowstruct_reader_handler(rd);
    run_wait(r, &h, warm_sql);
    rs.n = 0;

    double w0 = wall_s(), c0 = cpu_now();
    run_wait(r, &h, sql);
    double secs = wall_s() - w0, cpu = cpu_now() - c0;

    sums s;
    memset(&s, 0, sizeof s);
    for (size_t k = 0; k < rs.n; k++) {
        const bulk_row *w = &rs.v[k];
        s.sum_id += w->id;
        s.sum_len_t += utf8_chars((const uint8_t *)w->t, strlen(w->t));
        add_f(&s, w->f);
        s.sum_ts += w->ts_us - TS_BASE_US;
        s.n_true += w->b;
        s.sum_i += w->i;
    }
    s.rows = (int64_t)rs.n;
    print_result(&s, secs, cpu);
    free(rs.v);
    molt_db_rowstruct_reader_free(rd);
}

/* ---- entry ---------------------------------------------------------------- */

typedef struct conn_wait {
    int done, status;
    molt_db_error err;
} conn_wait;

static void on_conn(molt_db_conn *c, int status, const molt_db_error *err, void *ud)
{
    conn_wait *w = ud;
    (void)c;
    w->done = 1;
    w->status = status;
    if (status != MOLT_DB_OK && err)
        molt_db_error_copy(&w->err, err);
}

int molt_bench_bulk(int argc, char **argv)
{
    const char *mode = argv[1], *dsn = NULL;
    long long limit = 0;
    int via_copy = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc)
            dsn = argv[++i];
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
            limit = atoll(argv[++i]);
        else if (strcmp(argv[i], "--via") == 0 && i + 1 < argc)
            via_copy = strcmp(argv[++i], "copy") == 0;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            i++; /* bulk work is a fixed count */
        else {
            fprintf(stderr, "usage: molt_bench %s --dsn DSN [--limit N] "
                            "[--via copy|query]\n", mode);
            return 2;
        }
    }
    if (dsn == NULL) {
        fprintf(stderr, "molt_bench %s: --dsn is required\n", mode);
        return 2;
    }
    char sql[256], warm[256];
    snprintf(sql, sizeof sql, "SELECT id, t, f, ts, b, i FROM bench_bulk%s",
             limit > 0 ? " ORDER BY id LIMIT " : "");
    if (limit > 0)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), "%lld", limit);
    snprintf(warm, sizeof warm,
             "SELECT id, t, f, ts, b, i FROM bench_bulk ORDER BY id LIMIT 1000");

    uv_loop_t loop;
    uv_loop_init(&loop);
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_conninfo *ci = NULL;
    if (molt_db_conninfo_parse(dsn, &ci, &err) != MOLT_DB_OK)
        fatal("bad DSN", &err);
    molt_db_loop *ml = NULL;
    if (molt_db_loop_libuv_new(&loop, &ml, &err) != MOLT_DB_OK)
        fatal("loop", &err);
    conn_wait cw;
    memset(&cw, 0, sizeof cw);
    run r;
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    r.via_copy = via_copy;
    if (molt_db_conn_connect(ml, ci, NULL, on_conn, &cw, &r.conn, &err) != MOLT_DB_OK)
        fatal("connect", &err);
    molt_db_conninfo_free(ci);
    while (!cw.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (cw.status != MOLT_DB_OK)
        fatal("connect", &cw.err);

    if (strcmp(mode, "bulk-arrow") == 0)
        bulk_arrow(&r, sql, warm);
    else if (strcmp(mode, "bulk-structs") == 0)
        bulk_structs(&r, sql, warm);
    else {
        fprintf(stderr, "molt_bench: unknown mode %s\n", mode);
        return 2;
    }
    molt_db_conn_close(r.conn, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    molt_db_loop_free(ml);
    uv_loop_close(&loop);
    molt_db_error_clear(&r.err);
    return 0;
}
