/* The listen entry and its per-alias listening connections (listen.h). */
#include "listen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "molt_db/conn.h"
#include "molt_db/conninfo.h"
#include "molt_db/loop_libuv.h"
#include "mpbuf.h"
#include "pg_ident.h"
#include "session.h"

typedef struct hub hub;
typedef struct listener listener;

/* The LISTEN sent for one listener; outlives the listener if it leaves
 * before the server answered. */
typedef struct subscription {
    listener *l; /* NULL once the listener left */
} subscription;

struct listener {
    hub *h;
    mw_request *r;          /* NULL once it left */
    char **channels;        /* NUL-terminated copies */
    size_t nchannels;
    int acked;              /* "listening" went out */
    int ended;              /* left during a walk; unlinked after it */
    subscription *sub;      /* its LISTEN in flight, or NULL */
    molt_db_buf *queue;     /* parts its client has not taken yet (a ring) */
    size_t qhead, qlen, qcap;
    uint64_t dropped;       /* notes dropped since the client was told */
    listener *next, *prev;
};

struct hub {
    mw_worker *w;
    mw_alias *alias;
    molt_db_conninfo *ci;
    molt_db_conn *conn;     /* NULL while none is open or connecting */
    uv_timer_t retry;       /* reconnect backoff */
    int backoff_ms;
    listener *listeners;
    size_t nlisteners;
    int walking;            /* listeners are being walked: none is unlinked */
};

typedef struct mw_listen {
    hub **hubs;             /* one per backend (same index), made on first use */
    molt_db_loop *loop;     /* the worker's uv loop, for the connections */
    uint64_t notes, dropped; /* notes handed to listeners; parts dropped */
    size_t queued_bytes;    /* held in every listener's queue (listen_queue_bytes) */
    size_t closing_conns;   /* molt_db_conn_close not yet called back */
    size_t closing_timers;
    void (*done)(mw_worker *w); /* set once mw_listen_close ran */
} mw_listen;

static mw_listen *state(mw_worker *w)
{
    if (!w->listen) {
        mw_listen *L = calloc(1, sizeof *L);
        if (!L)
            return NULL;
        L->hubs = calloc(w->nbackends ? w->nbackends : 1, sizeof *L->hubs);
        if (!L->hubs || molt_db_loop_libuv_new(w->loop, &L->loop, NULL) !=
                            MOLT_DB_OK) {
            free(L->hubs);
            free(L);
            return NULL;
        }
        w->listen = L;
    }
    return w->listen;
}

/* ---- parts sent to a listener's client ---------------------------------- */

static int room(const mw_request *r)
{
    return r->s && r->s->write_bytes < MW_PAUSE_BYTES;
}

/* What a queued part holds: its buffer as allocated, and its slot. */
static size_t queued_size(const molt_db_buf *slot)
{
    return slot->cap + sizeof *slot;
}

/* One part for l: sent at once when its client keeps up, else queued, and
 * past its queue's size (listen_queue_notes) or the bytes every queue of the
 * worker may hold together (listen_queue_bytes) dropped (counted). 0, or -1 when dropped. The send
 * may close the session, which ends l: callers walk the hub. */
static int deliver(listener *l, const molt_db_buf *part)
{
    mw_listen *L = l->h->w->listen;
    mw_request *r = l->r;
    if (l->ended || !r->s)
        return -1;
    if (l->qlen == 0 && l->dropped == 0 && room(r)) {
        mw_request_send_part(r, "msgpack", part->data, part->len);
        return 0;
    }
    r->paused = 1; /* the session calls resume once its client read */
    if (!l->queue && l->qcap)
        l->queue = calloc(l->qcap, sizeof *l->queue);
    if (!l->queue || l->qlen == l->qcap ||
        L->queued_bytes + sizeof(molt_db_buf) + part->len >
            (size_t)l->h->w->cfg->listen_queue_bytes) {
        l->dropped++;
        L->dropped++;
        return -1;
    }
    molt_db_buf *slot = &l->queue[(l->qhead + l->qlen) % l->qcap];
    molt_db_buf_init(slot);
    molt_db_buf_put(slot, part->data, part->len);
    if (molt_db_buf_ok(slot) != MOLT_DB_OK) {
        molt_db_buf_free(slot);
        l->dropped++;
        L->dropped++;
        return -1;
    }
    l->qlen++;
    L->queued_bytes += queued_size(slot);
    return 0;
}

static void event(listener *l, const char *kind, uint64_t count)
{
    molt_db_buf p;
    msgpack_packer pk;
    molt_db_buf_init(&p);
    mw_packer_init(&pk, &p);
    msgpack_pack_map(&pk, count ? 2 : 1);
    mw_pack_key(&pk, "kind");
    mw_pack_cstr(&pk, kind);
    if (count) {
        mw_pack_key(&pk, "count");
        msgpack_pack_uint64(&pk, count);
    }
    if (molt_db_buf_ok(&p) == MOLT_DB_OK)
        (void)deliver(l, &p);
    molt_db_buf_free(&p);
}

/* A connection holds at most max_listeners / this many listen requests. */
#define MW_LISTEN_SESSION_SHARE 8

/* ---- listeners ---------------------------------------------------------- */

static int has_channel(const listener *l, const char *channel)
{
    for (size_t i = 0; i < l->nchannels; i++)
        if (!strcmp(l->channels[i], channel))
            return 1;
    return 0;
}

static void no_answer(void *ud, int status, const molt_db_error *err)
{
    (void)ud;
    (void)status;
    (void)err;
}

/* Sends "<verb> "a"; <verb> "b"; ..." for the given channels. */
static int send_channels(hub *h, const char *verb, char **channels, size_t n,
                         void (*done)(void *, int, const molt_db_error *), void *ud)
{
    molt_db_buf sql;
    molt_db_buf_init(&sql);
    for (size_t i = 0; i < n; i++) {
        molt_db_buf_put(&sql, verb, strlen(verb));
        mw_pg_ident_quote(&sql, channels[i], strlen(channels[i]));
        molt_db_buf_put(&sql, ";", 1);
    }
    molt_db_buf_put_u8(&sql, 0);
    int rc = molt_db_buf_ok(&sql);
    if (rc == MOLT_DB_OK) {
        molt_db_result_handler rh = {NULL, NULL, NULL, done, ud};
        rc = molt_db_conn_simple_query(h->conn, (const char *)sql.data, &rh);
    }
    molt_db_buf_free(&sql);
    return rc;
}

/* UNLISTEN the channels of l that no other listener of its hub holds. */
static void unlisten_unshared(listener *l)
{
    hub *h = l->h;
    if (!h->conn)
        return;
    for (size_t i = 0; i < l->nchannels; i++) {
        int shared = 0;
        for (listener *o = h->listeners; o && !shared; o = o->next)
            shared = o != l && !o->ended && has_channel(o, l->channels[i]);
        if (!shared)
            send_channels(h, "UNLISTEN ", &l->channels[i], 1, no_answer, NULL);
    }
}

static void listener_free(listener *l)
{
    for (size_t i = 0; i < l->nchannels; i++)
        free(l->channels[i]);
    free(l->channels);
    for (size_t i = 0; l->queue && i < l->qlen; i++) {
        molt_db_buf *slot = &l->queue[(l->qhead + i) % l->qcap];
        l->h->w->listen->queued_bytes -= queued_size(slot);
        molt_db_buf_free(slot);
    }
    free(l->queue);
    free(l);
}

static void drop_conn(hub *h);

static void unlink_listener(listener *l)
{
    hub *h = l->h;
    if (l->prev)
        l->prev->next = l->next;
    else
        h->listeners = l->next;
    if (l->next)
        l->next->prev = l->prev;
    h->nlisteners--;
    listener_free(l);
    if (h->nlisteners == 0) {
        /* nobody listens: the connection is not kept for nobody */
        uv_timer_stop(&h->retry);
        h->backoff_ms = 0;
        drop_conn(h);
    }
}

static void walk_begin(hub *h)
{
    h->walking++;
}

static void walk_end(hub *h)
{
    if (--h->walking > 0)
        return;
    listener *l = h->listeners;
    while (l) {
        listener *next = l->next;
        if (l->ended)
            unlink_listener(l);
        l = next;
    }
}

/* l leaves (its request is over): its channels no one else holds are
 * UNLISTENed, and it is freed now or, during a walk, after it. */
static void listener_leave(listener *l)
{
    if (l->ended)
        return;
    unlisten_unshared(l);
    l->ended = 1;
    if (l->sub)
        l->sub->l = NULL;
    l->sub = NULL;
    if (l->r)
        l->r->job = NULL;
    l->r = NULL;
    if (!l->h->walking)
        unlink_listener(l);
}

/* Ends a listener that never got "listening": its LISTEN failed, or the
 * connection did. A connection failure without a SQLSTATE is 08001
 * (could not connect) or 08006 (lost). */
static void listener_fail(listener *l, const molt_db_error *err, const char *sqlstate)
{
    mw_request *r = l->r;
    molt_db_error e;
    molt_db_error_init(&e);
    if (err)
        molt_db_error_copy(&e, err);
    if (!e.message[0])
        snprintf(e.message, sizeof e.message, "the listening connection failed");
    if (!e.sqlstate[0])
        memcpy(e.sqlstate, sqlstate, 6);
    listener_leave(l);
    mw_request_db_done(r, MW_DB_ERROR, e.message, &e);
    molt_db_error_clear(&e);
}

/* ---- the hub's connection ----------------------------------------------- */

static void subscribed(void *ud, int status, const molt_db_error *err)
{
    subscription *sub = ud;
    listener *l = sub->l;
    free(sub);
    if (!l)
        return;
    l->sub = NULL;
    hub *h = l->h;
    walk_begin(h);
    if (status == MOLT_DB_OK) {
        event(l, l->acked ? "reconnected" : "listening", 0);
        l->acked = 1;
    } else if (!l->acked) {
        listener_fail(l, err, status == MOLT_DB_ESERVER ? "" : "08006");
    } /* else: the connection broke; the hub reconnects and subscribes again */
    walk_end(h);
}

static void subscribe(listener *l)
{
    hub *h = l->h;
    if (!h->conn || l->sub || l->ended)
        return;
    subscription *sub = calloc(1, sizeof *sub);
    if (!sub) {
        listener_fail(l, NULL, "53200");
        return;
    }
    sub->l = l;
    if (send_channels(h, "LISTEN ", l->channels, l->nchannels, subscribed, sub) != MOLT_DB_OK) {
        free(sub);
        listener_fail(l, NULL, "08006");
        return;
    }
    l->sub = sub;
}

/* After mw_listen_close: everything is released once the last connection
 * and timer closed. */
static void maybe_done(mw_worker *w)
{
    mw_listen *L = w->listen;
    if (!L->done || L->closing_conns > 0 || L->closing_timers > 0)
        return;
    void (*done)(mw_worker *) = L->done;
    free(L->hubs);
    molt_db_loop_free(L->loop);
    free(L);
    w->listen = NULL;
    done(w);
}

static void conn_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    mw_worker *w = ud;
    w->listen->closing_conns--;
    maybe_done(w);
}

static void drop_conn(hub *h)
{
    if (!h->conn)
        return;
    mw_listen *L = h->w->listen;
    L->closing_conns++;
    molt_db_conn *c = h->conn;
    h->conn = NULL;
    molt_db_conn_close(c, conn_closed, h->w);
}

static void on_retry(uv_timer_t *t);

static void retry_later(hub *h)
{
    const molt_db_pool_settings *ps = &h->alias->pool;
    int min = ps->reconnect_min_ms > 0 ? ps->reconnect_min_ms : 50;
    int max = ps->reconnect_max_ms > min ? ps->reconnect_max_ms : min;
    h->backoff_ms = h->backoff_ms ? h->backoff_ms * 2 : min;
    if (h->backoff_ms > max)
        h->backoff_ms = max;
    uv_timer_start(&h->retry, on_retry, (uint64_t)h->backoff_ms, 0);
}

/* every listener that was not yet told "listening" fails with err */
static void fail_unacked(hub *h, const molt_db_error *err, const char *sqlstate)
{
    walk_begin(h);
    for (listener *l = h->listeners; l; l = l->next)
        if (!l->ended && !l->acked)
            listener_fail(l, err, sqlstate);
    walk_end(h);
}

static void on_connected(molt_db_conn *c, int status, const molt_db_error *err,
                         void *ud)
{
    (void)c;
    hub *h = ud;
    if (status == MOLT_DB_OK) {
        h->backoff_ms = 0;
        return;
    }
    h->conn = NULL; /* the library frees it */
    fail_unacked(h, err, "08001");
    if (h->nlisteners > 0)
        retry_later(h);
}

static void on_broken(molt_db_conn *c, int code, const molt_db_error *err, void *ud)
{
    (void)c;
    (void)code;
    (void)err;
    hub *h = ud;
    drop_conn(h);
    if (h->nlisteners > 0)
        retry_later(h);
}

static void on_note(molt_db_conn *c, int32_t pid, const char *channel,
                    const char *payload, void *ud)
{
    (void)c;
    hub *h = ud;
    molt_db_buf p;
    msgpack_packer pk;
    molt_db_buf_init(&p);
    mw_packer_init(&pk, &p);
    msgpack_pack_map(&pk, 4);
    mw_pack_key(&pk, "kind");
    mw_pack_cstr(&pk, "note");
    mw_pack_key(&pk, "channel");
    mw_pack_cstr(&pk, channel);
    mw_pack_key(&pk, "payload");
    mw_pack_cstr(&pk, payload);
    mw_pack_key(&pk, "pid");
    msgpack_pack_int64(&pk, pid);
    if (molt_db_buf_ok(&p) == MOLT_DB_OK) {
        walk_begin(h);
        for (listener *l = h->listeners; l; l = l->next)
            if (!l->ended && l->acked && has_channel(l, channel) &&
                deliver(l, &p) == 0)
                h->w->listen->notes++;
        walk_end(h);
    }
    molt_db_buf_free(&p);
}

static void hub_connect(hub *h)
{
    molt_db_conn_options o = {NULL, NULL, on_broken, h, on_note, h};
    molt_db_error e;
    molt_db_error_init(&e);
    if (molt_db_conn_connect(h->w->listen->loop, h->ci, &o, on_connected, h, &h->conn,
                             &e) != MOLT_DB_OK) {
        h->conn = NULL;
        fail_unacked(h, &e, "08001");
        molt_db_error_clear(&e);
        if (h->nlisteners > 0)
            retry_later(h);
        return;
    }
    /* queued until the connection is ready */
    walk_begin(h);
    for (listener *l = h->listeners; l; l = l->next)
        subscribe(l);
    walk_end(h);
}

static void on_retry(uv_timer_t *t)
{
    hub *h = t->data;
    if (h->nlisteners > 0 && !h->conn && !h->w->listen->done)
        hub_connect(h);
}

static hub *hub_of(mw_worker *w, size_t index, char msg[MW_MSG_SIZE])
{
    mw_listen *L = state(w);
    if (!L) {
        snprintf(msg, MW_MSG_SIZE, "out of memory");
        return NULL;
    }
    if (L->hubs[index])
        return L->hubs[index];
    hub *h = calloc(1, sizeof *h);
    molt_db_error e;
    molt_db_error_init(&e);
    if (!h || molt_db_conninfo_parse(w->backends[index]->alias->dsn, &h->ci, &e) != MOLT_DB_OK) {
        snprintf(msg, MW_MSG_SIZE, "%.200s", h ? e.message : "out of memory");
        molt_db_error_clear(&e);
        free(h);
        return NULL;
    }
    h->w = w;
    h->alias = w->backends[index]->alias;
    if (h->alias->pool.connect_timeout_ms > 0)
        h->ci->connect_timeout_ms = h->alias->pool.connect_timeout_ms;
    uv_timer_init(w->loop, &h->retry);
    h->retry.data = h;
    L->hubs[index] = h;
    return h;
}

/* ---- the request side --------------------------------------------------- */

static void listen_cancel(mw_backend *b, mw_request *r)
{
    (void)b;
    listener *l = r->job;
    if (!l)
        return;
    hub *h = l->h;
    walk_begin(h);
    listener_leave(l);
    walk_end(h);
    /* nothing left to wait for: mw_request_stop answers r next */
    r->db_busy = 0;
}

/* The client read: queued parts go out while it keeps up, then word of
 * what was dropped. */
static void listen_resume(mw_backend *b, mw_request *r)
{
    (void)b;
    listener *l = r->job;
    if (!l)
        return;
    hub *h = l->h;
    walk_begin(h);
    while (!l->ended && l->qlen && room(r)) {
        molt_db_buf *slot = &l->queue[l->qhead];
        l->qhead = (l->qhead + 1) % l->qcap;
        l->qlen--;
        h->w->listen->queued_bytes -= queued_size(slot);
        mw_request_send_part(r, "msgpack", slot->data, slot->len);
        molt_db_buf_free(slot);
    }
    if (!l->ended && !l->qlen && l->dropped && room(r)) {
        uint64_t n = l->dropped;
        l->dropped = 0;
        event(l, "dropped", n);
    }
    if (!l->ended && (l->qlen || l->dropped))
        r->paused = 1;
    walk_end(h);
}

static const mw_backend_ops listen_ops = {"listen", NULL, listen_cancel,
                                          listen_resume, NULL, NULL, NULL, NULL};
static mw_backend listen_backend = {&listen_ops, NULL, NULL};

/* The channels and the listen requests a session holds open. */
static void session_listens(mw_worker *w, const mw_session *s, size_t *channels,
                            size_t *requests)
{
    *channels = *requests = 0;
    mw_listen *L = w->listen;
    for (size_t i = 0; L && i < w->nbackends; i++)
        for (listener *l = L->hubs[i] ? L->hubs[i]->listeners : NULL; l; l = l->next)
            if (!l->ended && l->r && l->r->s == s) {
                *channels += l->nchannels;
                (*requests)++;
            }
}

static uint64_t all_listeners(const mw_worker *w)
{
    uint64_t n = 0;
    const mw_listen *L = w->listen;
    for (size_t i = 0; L && i < w->nbackends; i++)
        n += L->hubs[i] ? L->hubs[i]->nlisteners : 0;
    return n;
}

/* Reads the payload (payload.h) into l (its channels) and *index (the
 * alias's backend), then checks the worker's and the session's limits. 0,
 * or -1 with *status and msg. */
static int parse(mw_request *r, const uint8_t *p, size_t n, listener *l,
                 size_t *index, mw_status *status, char msg[MW_MSG_SIZE])
{
    mw_worker *w = r->w;
    const mw_config *cfg = w->cfg;
    mw_listen_payload lp;
    int rc = mw_listen_parse(p, n, cfg, &lp, msg);
    l->channels = lp.channels; /* listener_free releases them */
    l->nchannels = lp.nchannels;
    if (rc) {
        *status = rc == -2 ? MW_INTERNAL_ERROR : MW_INVALID_INPUT;
        return -1;
    }
    for (*index = 0; *index < w->nbackends && w->backends[*index]->alias != lp.alias;
         (*index)++)
        ;
    *status = MW_BUSY;
    size_t channels, requests;
    session_listens(w, r->s, &channels, &requests);
    if (channels + l->nchannels > (size_t)cfg->max_listen_channels) {
        snprintf(msg, MW_MSG_SIZE, "this connection would listen on more than "
                 "max_listen_channels (%d) channels", cfg->max_listen_channels);
        return -1;
    }
    /* one connection's share, so that a few cannot hold every listener
     * of the worker */
    size_t share = (size_t)cfg->max_listeners / MW_LISTEN_SESSION_SHARE;
    if (requests >= (share ? share : 1)) {
        snprintf(msg, MW_MSG_SIZE, "this connection holds %zu listen requests, its "
                 "share of max_listeners (%d / %d): listen on more channels per "
                 "request", requests, cfg->max_listeners, MW_LISTEN_SESSION_SHARE);
        return -1;
    }
    if (all_listeners(w) >= (uint64_t)cfg->max_listeners) {
        snprintf(msg, MW_MSG_SIZE, "too many listeners in the worker (max_listeners)");
        return -1;
    }
    return 0;
}

void mw_entry_listen(mw_request *r, const uint8_t *payload, size_t len)
{
    char msg[MW_MSG_SIZE];
    mw_status st = MW_OK;
    size_t index = 0;
    listener *l = calloc(1, sizeof *l);
    if (!l) {
        mw_request_reply(r, MW_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    if (parse(r, payload, len, l, &index, &st, msg) < 0) {
        listener_free(l);
        mw_request_reply(r, st, msg, NULL);
        return;
    }
    hub *h = hub_of(r->w, index, msg);
    if (!h) {
        listener_free(l);
        mw_request_reply(r, MW_INTERNAL_ERROR, msg, NULL);
        return;
    }
    l->h = h;
    l->r = r;
    l->qcap = (size_t)r->w->cfg->listen_queue_notes;
    r->job = l;
    r->backend = &listen_backend;
    r->db_busy = 1;
    l->next = h->listeners;
    if (h->listeners)
        h->listeners->prev = l;
    h->listeners = l;
    h->nlisteners++;
    if (h->conn)
        subscribe(l);
    else if (!uv_is_active((uv_handle_t *)&h->retry))
        hub_connect(h); /* subscribes l; in backoff, the next attempt does */
}

void mw_listen_shutdown(mw_worker *w)
{
    mw_listen *L = w->listen;
    for (size_t i = 0; L && i < w->nbackends; i++) {
        hub *h = L->hubs[i];
        if (!h)
            continue;
        walk_begin(h);
        for (listener *l = h->listeners; l; l = l->next)
            if (!l->ended && l->r)
                mw_request_stop(l->r, MW_BUSY, "the worker is shutting down");
        walk_end(h);
    }
}

static void hub_timer_closed(uv_handle_t *t)
{
    hub *h = t->data;
    mw_worker *w = h->w;
    mw_listen *L = w->listen;
    molt_db_conninfo_free(h->ci);
    free(h);
    L->closing_timers--;
    maybe_done(w);
}

void mw_listen_close(mw_worker *w, void (*done)(mw_worker *w))
{
    mw_listen *L = w->listen;
    if (!L) {
        done(w);
        return;
    }
    L->done = done;
    size_t nhubs = 0;
    for (size_t i = 0; i < w->nbackends; i++)
        nhubs += L->hubs[i] != NULL;
    L->closing_timers = nhubs + 1; /* + 1 until every close is under way */
    for (size_t i = 0; i < w->nbackends; i++) {
        hub *h = L->hubs[i];
        if (!h)
            continue;
        L->hubs[i] = NULL;
        drop_conn(h);
        uv_close((uv_handle_t *)&h->retry, hub_timer_closed);
    }
    L->closing_timers--;
    maybe_done(w);
}

void mw_listen_counts(const mw_worker *w, uint64_t *listeners, uint64_t *notes,
                      uint64_t *dropped)
{
    const mw_listen *L = w->listen;
    *listeners = all_listeners(w);
    *notes = L ? L->notes : 0;
    *dropped = L ? L->dropped : 0;
}
