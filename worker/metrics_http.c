/* A Prometheus text endpoint (exposition format 0.0.4) on a TCP port
 * (--metrics-listen; loopback unless metrics_allow_remote): any HTTP
 * request gets the current figures: the stats entry's numbers (counters as
 * NAME_total), request latency histograms per alias and entry, and the
 * PostgreSQL pools' own metrics with an alias label. Anyone who can connect
 * may: at most metrics_max_conns connections are
 * served at once and each is closed metrics_timeout_ms after it was
 * accepted, answered or not. A connection beyond the cap takes the place
 * of the oldest one that has not sent its request MH_SILENT_MS after it
 * was accepted (one is refused when there is none), so idle connections
 * held open cannot keep a scraper out, and a scraper whose request is on
 * its way is not taken for an idle one. */
#include "metrics_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "entries.h"
#include "latency.h"
#include "replica_route.h"
#include "log.h"
#include "mpbuf.h"
#include "worker.h"

typedef struct mh_conn mh_conn;

/* A connection without a whole request this long after its accept may be
 * closed for a newer one (on_conn). */
#define MH_SILENT_MS 100

typedef struct mh_server {
    uv_tcp_t tcp;
    mw_worker *w;
    mh_conn *conns;           /* open connections, newest first */
    int nconns;               /* connections not yet freed */
    int live;                 /* of them, not being closed */
    int closed;               /* the listener is closed: freed with the last conn */
} mh_server;

struct mh_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;         /* closes the connection when it takes too long */
    int handles;              /* open handles */
    mh_server *server;
    mw_worker *w;
    char buf[8192];
    size_t len;
    uv_write_t wr;
    molt_db_buf out;
    int responded;
    int closing;
    uint64_t accepted_ms;     /* the loop's time at its accept */
    mh_conn *next, *prev;
};

static void conn_closed(uv_handle_t *h)
{
    mh_conn *c = h->data;
    if (--c->handles > 0)
        return;
    mh_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    molt_db_buf_free(&c->out);
    free(c);
    if (--s->nconns == 0 && s->closed)
        free(s);
}

static void conn_close(mh_conn *c)
{
    if (!c->closing) {
        c->closing = 1;
        c->server->live--;
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_conn_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* Figures of the stats entry that are gauges; every other one counts up
 * and is exported as NAME_total. */
static int is_gauge(const char *name)
{
    static const char *const gauges[] = {"inflight", "queued", "transactions", "sessions", "size",
                                         "in_use", "idle", "waiters", "opening",
                                         "max_wait_us"};
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        if (!strcmp(name, gauges[i]))
            return 1;
    return 0;
}

static void put_str(molt_db_buf *b, const char *s)
{
    molt_db_buf_put(b, s, strlen(s));
}

static void put_family(molt_db_buf *b, const char *name, int gauge, const char *what)
{
    char line[320];
    int n = snprintf(line, sizeof line, "# HELP %s%s %s (the stats entry's \"%s\").\n"
                     "# TYPE %s%s %s\n", name, gauge ? "" : "_total",
                     gauge ? "Gauge" : "Counter", what, name, gauge ? "" : "_total",
                     gauge ? "gauge" : "counter");
    if (n > 0 && (size_t)n < sizeof line)
        molt_db_buf_put(b, line, (size_t)n);
}

static void put_sample(molt_db_buf *b, const char *name, int gauge,
                       const char *alias, const msgpack_object *v)
{
    char line[320];
    int n;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        n = snprintf(line, sizeof line, "%s%s%s%s%s %llu\n", name,
                     gauge ? "" : "_total", alias ? "{alias=\"" : "",
                     alias ? alias : "", alias ? "\"}" : "",
                     (unsigned long long)v->via.u64);
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        n = snprintf(line, sizeof line, "%s%s%s%s%s %lld\n", name,
                     gauge ? "" : "_total", alias ? "{alias=\"" : "",
                     alias ? alias : "", alias ? "\"}" : "", (long long)v->via.i64);
    else
        return;
    if (n > 0 && (size_t)n < sizeof line)
        molt_db_buf_put(b, line, (size_t)n);
}

static void key_text(const msgpack_object *k, char *out, size_t cap)
{
    if (k->type == MSGPACK_OBJECT_STR)
        snprintf(out, cap, "%.*s", (int)k->via.str.size, k->via.str.ptr);
    else
        out[0] = 0;
}

/* The worker's figures, one family each. */
static void render_worker(const msgpack_object *wk, molt_db_buf *b)
{
    char key[64], name[96];
    for (uint32_t i = 0; wk && wk->type == MSGPACK_OBJECT_MAP && i < wk->via.map.size; i++) {
        const msgpack_object_kv *kv = &wk->via.map.ptr[i];
        key_text(&kv->key, key, sizeof key);
        if (!key[0])
            continue;
        int gauge = is_gauge(key);
        snprintf(name, sizeof name, "molt_worker_%s", key);
        put_family(b, name, gauge, key);
        put_sample(b, name, gauge, NULL, &kv->val);
    }
}

/* The aliases' figures: one family per figure with a sample per alias that
 * has it (PostgreSQL and SQLite aliases report different figures). */
static void render_aliases(const msgpack_object *al, molt_db_buf *b)
{
    char key[64], other[64], name[96], alias[80];
    if (!al || al->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < al->via.map.size; i++) {
        const msgpack_object *fi = &al->via.map.ptr[i].val;
        for (uint32_t k = 0; fi->type == MSGPACK_OBJECT_MAP && k < fi->via.map.size; k++) {
            key_text(&fi->via.map.ptr[k].key, key, sizeof key);
            if (!key[0] || fi->via.map.ptr[k].val.type == MSGPACK_OBJECT_STR)
                continue;
            /* done already for an earlier alias? */
            int seen = 0;
            for (uint32_t j = 0; j < i && !seen; j++) {
                const msgpack_object *fj = &al->via.map.ptr[j].val;
                for (uint32_t m = 0; fj->type == MSGPACK_OBJECT_MAP &&
                                     m < fj->via.map.size && !seen; m++) {
                    key_text(&fj->via.map.ptr[m].key, other, sizeof other);
                    seen = !strcmp(key, other);
                }
            }
            if (seen)
                continue;
            int gauge = is_gauge(key);
            snprintf(name, sizeof name, "molt_worker_alias_%s", key);
            put_family(b, name, gauge, key);
            for (uint32_t j = i; j < al->via.map.size; j++) {
                const msgpack_object *fj = &al->via.map.ptr[j].val;
                const msgpack_object *v = mw_map_get(fj, key, NULL);
                key_text(&al->via.map.ptr[j].key, alias, sizeof alias);
                if (v)
                    put_sample(b, name, gauge, alias, v);
            }
        }
    }
}

/* The library's pool metrics of every PostgreSQL alias, with an alias
 * label. Every pool renders the same families in the same order, each
 * starting at its "# HELP" line: family k is written once, with the samples
 * of every pool. */
static void render_pools(mw_worker *w, molt_db_buf *b)
{
    molt_db_buf *txt = calloc(w->nbackends ? w->nbackends : 1, sizeof *txt);
    if (!txt)
        return;
    size_t npools = 0, *idx = calloc(w->nbackends ? w->nbackends : 1, sizeof *idx);
    const char **alias = calloc(w->nbackends ? w->nbackends : 1, sizeof *alias);
    for (size_t i = 0; idx && alias && i < w->nbackends; i++) {
        mw_backend *be = w->backends[i];
        if (!be->ops->prometheus)
            continue;
        molt_db_buf_init(&txt[npools]);
        if (be->ops->prometheus(be, &txt[npools]) != MOLT_DB_OK) {
            molt_db_buf_free(&txt[npools]);
            continue;
        }
        alias[npools++] = be->alias->name;
    }
    /* idx[p]: where pool p's next family starts */
    int more = npools > 0;
    while (more) {
        more = 0;
        for (size_t p = 0; p < npools; p++) {
            const char *t = (const char *)txt[p].data;
            size_t len = txt[p].len, at = idx[p];
            int first_line = 1;
            while (at < len) {
                const char *nl = memchr(t + at, '\n', len - at);
                size_t end = nl ? (size_t)(nl - t) + 1 : len;
                const char *line = t + at;
                size_t ll = end - at;
                if (!first_line && ll > 7 && !memcmp(line, "# HELP ", 7))
                    break;          /* the next family */
                if (line[0] == '#') {
                    if (p == 0)
                        molt_db_buf_put(b, line, ll);
                } else {
                    /* name{labels} value -> name{alias="A",labels} value */
                    size_t n = 0;
                    while (n < ll && line[n] != '{' && line[n] != ' ')
                        n++;
                    molt_db_buf_put(b, line, n);
                    put_str(b, "{alias=\"");
                    put_str(b, alias[p]);
                    if (n < ll && line[n] == '{') {
                        put_str(b, "\",");
                        n++;
                    } else {
                        put_str(b, "\"}");
                    }
                    molt_db_buf_put(b, line + n, ll - n);
                }
                first_line = 0;
                at = end;
            }
            idx[p] = at;
            if (at < len)
                more = 1;
        }
    }
    for (size_t p = 0; p < npools; p++)
        molt_db_buf_free(&txt[p]);
    free(txt);
    free(idx);
    free(alias);
}

static void render(mw_worker *w, molt_db_buf *body)
{
    molt_db_buf mp;
    msgpack_packer pk;
    molt_db_buf_init(&mp);
    mw_packer_init(&pk, &mp);
    mw_stats_pack(w, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (molt_db_buf_ok(&mp) == MOLT_DB_OK &&
        msgpack_unpack_next(&u, (const char *)mp.data, mp.len, &off) ==
            MSGPACK_UNPACK_SUCCESS) {
        render_worker(mw_map_get(&u.data, "worker", NULL), body);
        render_aliases(mw_map_get(&u.data, "aliases", NULL), body);
    }
    msgpack_unpacked_destroy(&u);
    molt_db_buf_free(&mp);
    mw_latency_render(w, body);
    render_pools(w, body);
    (void)mw_replicas_prometheus(w, body);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    mh_conn *c = req->data;
    conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)s;
    mh_conn *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static int headers_done(const char *b, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(b + i, "\r\n\r\n", 4))
            return 1;
    return 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    mh_conn *c = st->data;
    if (n < 0 || c->len + (size_t)n >= sizeof c->buf) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    if (c->responded || !headers_done(c->buf, c->len))
        return;
    c->responded = 1;
    uv_read_stop(st);
    molt_db_buf body;
    molt_db_buf_init(&body);
    render(c->w, &body);
    char head[160];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", body.len);
    molt_db_buf_put(&c->out, head, (size_t)hn);
    molt_db_buf_put(&c->out, body.data, body.len);
    int body_ok = molt_db_buf_ok(&body) == MOLT_DB_OK;
    molt_db_buf_free(&body);
    if (!body_ok || molt_db_buf_ok(&c->out) != MOLT_DB_OK) {
        conn_close(c);
        return;
    }
    uv_buf_t ob = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    if (uv_write(&c->wr, st, &ob, 1, on_written) < 0)
        conn_close(c);
}

static void on_conn(uv_stream_t *server, int status)
{
    mh_server *s = server->data;
    if (status < 0)
        return;
    mh_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->w = s->w;
    c->server = s;
    c->accepted_ms = uv_now(s->w->loop);
    s->nconns++;
    s->live++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    molt_db_buf_init(&c->out);
    uv_tcp_init(s->w->loop, &c->tcp);
    uv_timer_init(s->w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    if (s->live > s->w->cfg->metrics_max_conns) {
        /* the oldest connection still waiting for its request makes room */
        mh_conn *oldest = NULL;
        uint64_t now = uv_now(s->w->loop);
        for (mh_conn *o = c->next; o; o = o->next)
            if (!o->responded && !o->closing && now - o->accepted_ms >= MH_SILENT_MS)
                oldest = o;
        if (oldest)
            conn_close(oldest);
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        s->live > s->w->cfg->metrics_max_conns ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_conn_timeout, (uint64_t)s->w->cfg->metrics_timeout_ms, 0);
}

static void server_closed(uv_handle_t *h);

int mw_metrics_http_start(mw_worker *w, const char *addr, char err[MW_ERR_SIZE])
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    size_t hl = (size_t)(colon - addr);
    int port = atoi(colon + 1);
    if (hl >= sizeof host || port <= 0 || port > 65535) {
        snprintf(err, MW_ERR_SIZE, "metrics_listen: expected 127.0.0.1:PORT");
        return -1;
    }
    memcpy(host, addr, hl);
    host[hl] = 0;
    struct sockaddr_in sa;
    if (uv_ip4_addr(host, port, &sa) < 0) {
        snprintf(err, MW_ERR_SIZE, "metrics_listen: bad address %s", host);
        return -1;
    }
    mh_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, MW_ERR_SIZE, "out of memory");
        return -1;
    }
    s->w = w;
    uv_tcp_init(w->loop, &s->tcp);
    s->tcp.data = s;
    int r = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&sa, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->tcp, 16, on_conn);
    if (r < 0) {
        snprintf(err, MW_ERR_SIZE, "metrics_listen %s: %s", addr, uv_strerror(r));
        uv_close((uv_handle_t *)&s->tcp, server_closed);
        return -1;
    }
    w->metrics = s;
    return 0;
}

static void server_closed(uv_handle_t *h)
{
    mh_server *s = h->data;
    s->closed = 1;
    if (s->nconns == 0)
        free(s);
}

void mw_metrics_http_stop(mw_worker *w)
{
    mh_server *s = w->metrics;
    if (!s)
        return;
    w->metrics = NULL;
    for (mh_conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->tcp, server_closed);
}
