/* A client connection: reading frames, writing responses, the table of
 * requests in flight, and cancelling them when the client goes away.
 *
 * Limits against a client that hogs the worker (docs/worker.md, "How it
 * runs"):
 * - more than MW_PAUSE_BYTES of responses unread: its requests wait (and
 *   its streamed results are not produced) until the queue is below
 *   MW_RESUME_BYTES, except cancel requests, which are picked out of the
 *   waiting ones so a client can still stop what it started; reading stops
 *   once MW_PAUSED_READ_BYTES of requests wait. No write completing for
 *   write_timeout_ms meanwhile, or more than max_unread_bytes queued,
 *   closes the session at once and cancels its requests, so their
 *   connections go back to the pool; one that reads nothing for
 *   paused_hold_ms meanwhile has its paused queries cancelled when other
 *   sessions wait for their alias (sched.c), so it holds no connection for
 *   long even when it reconnects each time it is closed;
 * - a request frame that stays incomplete with no byte arriving for
 *   frame_timeout_ms closes the session, and so does a read that takes the
 *   request bytes all sessions hold past max_buffered_request_bytes. */
#include "session.h"
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "request.h"
#include "sched.h"
#include "worker.h"
#include "zalloc.h"

/* requests read and left waiting while a session is paused */
#define MW_PAUSED_READ_BYTES ((size_t)1 << 20)
/* one read from a socket */
#define MW_READ_BYTES 65536

typedef struct write_req {
    uv_write_t req;
    mw_session *s;
    uv_buf_t bufs[MW_SEND_PIECES];   /* owned: freed after the write */
    unsigned n;
    size_t cost;   /* memory it holds: counted in s->write_bytes */
} write_req;

static void write_req_free(write_req *wr)
{
    for (unsigned i = 0; i < wr->n; i++)
        free(wr->bufs[i].base);
    free(wr);
}

static void session_free(mw_session *s)
{
    mw_worker *w = s->w;
    w->nsessions--;
    w->request_bytes -= s->request_bytes;
    mw_framer_free(&s->fr);
    mw_sched_session_free(s);
    free(s->rbuf);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    int stdio = s->stdio;
    if (s->sink)
        s->sink->closed(s->sink->ud);
    mw_freelist_give(&w->free_sessions, s);
    if (stdio)
        mw_worker_shutdown(w, 0);
    mw_worker_maybe_exit(w);
}

static void on_handle_closed(uv_handle_t *h)
{
    mw_session *s = h->data;
    if (--s->handles == 0)
        session_free(s);
}

static void on_reaped(mw_reap *node)
{
    session_free(MW_CONTAINER_OF(node, mw_session, reap));
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* Closes everything now; queued writes are dropped. The session is freed
 * once its pipes closed, or by the reaper when it has none (a sink). */
static void close_handles(mw_session *s)
{
    mw_deadlines *ds = &s->w->deadlines;
    mw_deadline_stop(ds, &s->frame_stall);
    mw_deadline_stop(ds, &s->write_stall);
    mw_deadline_stop(ds, &s->hold);
    if (s->released)
        return;
    s->released = 1;
    if (!s->sink)
        close_handle((uv_handle_t *)&s->in);
    if (s->stdio)
        close_handle((uv_handle_t *)&s->out);
    if (s->handles == 0)
        mw_reap_later(&s->w->reaper, &s->reap, on_reaped);
}

/* Closes a session that holds the worker up, without waiting for its
 * queued writes. */
static void session_drop(mw_session *s, const char *why)
{
    mw_log("session %llu closed: %s", (unsigned long long)s->id, why);
    s->w->c.sessions_dropped++;
    mw_session_close(s);
    close_handles(s);
}

static void on_write_stalled(mw_deadline *d)
{
    mw_session *s = MW_CONTAINER_OF(d, mw_session, write_stall);
    char why[128];
    snprintf(why, sizeof why, "%zu bytes of responses unread and none read for %d ms",
             s->write_bytes, s->w->cfg->write_timeout_ms);
    session_drop(s, why);
}

/* Every paused_hold_ms without reading while paused: the session's paused
 * queries give their connections to the other sessions waiting for them. */
static void on_hold_expired(mw_deadline *d)
{
    mw_session *s = MW_CONTAINER_OF(d, mw_session, hold);
    char msg[192];
    /* it repeats while the session stays paused (watch_writes stops it) */
    mw_deadline_start(&s->w->deadlines, &s->hold, (uint64_t)s->w->cfg->paused_hold_ms,
                      on_hold_expired);
    snprintf(msg, sizeof msg, "cancelled: the client read none of its responses "
             "for %d ms (paused_hold_ms) while other clients waited for this "
             "connection", s->w->cfg->paused_hold_ms);
    for (mw_request *r = s->reqs, *next; r && !s->dead; r = next) {
        next = r->next;
        if (r->paused && r->db_busy && mw_sched_others_wait(r))
            mw_request_stop(r, MW_CANCELLED, msg);
    }
}

/* (Re)arms d with cb after ms while on; a completed write (progress) arms
 * it again, a queued one does not. */
static void watch(mw_session *s, mw_deadline *d, int on, int progress, mw_deadline_cb cb,
                  int ms)
{
    if (s->released)
        return;
    if (on) {
        if (progress || !d->armed)
            mw_deadline_start(&s->w->deadlines, d, (uint64_t)ms, cb);
    } else {
        mw_deadline_stop(&s->w->deadlines, d);
    }
}

/* The write timer runs while the worker waits on the client's reading
 * (paused, closing, or shutting down with writes queued), the hold timer
 * while it is paused. */
static void watch_writes(mw_session *s, int progress)
{
    int waiting = s->write_bytes > 0;
    watch(s, &s->write_stall,
          waiting && (s->read_paused || s->dead || s->w->shutting_down), progress,
          on_write_stalled, s->w->cfg->write_timeout_ms);
    watch(s, &s->hold, waiting && s->read_paused && !s->dead, progress,
          on_hold_expired, s->w->cfg->paused_hold_ms);
}

static void on_frame_stalled(mw_deadline *d)
{
    mw_session *s = MW_CONTAINER_OF(d, mw_session, frame_stall);
    char msg[128];
    snprintf(msg, sizeof msg, "request frame incomplete: no byte arrived for %d ms",
             s->w->cfg->frame_timeout_ms);
    mw_log("session %llu closed: %s", (unsigned long long)s->id, msg);
    s->w->c.sessions_dropped++;
    mw_session_reply_error(s, 0, MW_INVALID_INPUT, msg);
    mw_session_close(s);
}

/* A frame begun and not finished gets frame_timeout_ms from its last byte. */
static void watch_frame(mw_session *s)
{
    watch(s, &s->frame_stall, !s->dead && !s->read_paused && mw_framer_pending(&s->fr) > 0,
          1, on_frame_stalled, s->w->cfg->frame_timeout_ms);
}

static void pause_requests(mw_session *s)
{
    s->read_paused = 1;
    watch_frame(s);
    mw_sched_session_paused(s);
}

/* While paused: answers the cancel requests among the waiting frames and
 * takes them out; the others keep their order. Reading stops when too
 * much waits. */
static void handle_cancels(mw_session *s)
{
    size_t pos = 0, at = 0;
    const uint8_t *body;
    size_t len;
    while (!s->dead && mw_framer_peek(&s->fr, &pos, &body, &len) == 1) {
        mw_envelope env;
        char msg[MW_MSG_SIZE];
        if (mw_envelope_parse(body, len, &env, msg) == 0 &&
            env.entry == MW_ENTRY_CANCEL) {
            mw_request_handle(s, body, len);
            mw_framer_remove(&s->fr, at, len);
            pos = at;
        } else {
            at = pos;
        }
    }
    if (!s->dead && mw_framer_pending(&s->fr) > MW_PAUSED_READ_BYTES) {
        uv_read_stop((uv_stream_t *)&s->in);
        s->read_stopped = 1;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void handle_frames(mw_session *s);

/* Counts the framer's bytes in the worker's total (O(1)). */
static void count_request_bytes(mw_session *s)
{
    size_t now = mw_framer_pending(&s->fr);
    s->w->request_bytes = s->w->request_bytes - s->request_bytes + now;
    s->request_bytes = now;
}

static void resume_requests(mw_session *s)
{
    s->read_paused = 0;
    handle_frames(s); /* those that waited */
    count_request_bytes(s);
    if (s->dead || s->read_paused)
        return;
    if (s->read_stopped) {
        s->read_stopped = 0;
        if (uv_read_start((uv_stream_t *)&s->in, on_alloc, on_read) < 0) {
            mw_session_close(s);
            return;
        }
    }
    watch_frame(s);
}

static uv_stream_t *wstream(mw_session *s)
{
    return (uv_stream_t *)(s->stdio ? &s->out : &s->in);
}

/* Frames worth cost left the session's queue (written, or taken by the
 * sink's reader): below MW_RESUME_BYTES, what waited for them goes on. */
static void writes_done(mw_session *s, size_t cost, int status)
{
    s->write_bytes -= cost;
    if (status < 0 && !s->dead) {
        mw_session_close(s);
        return;
    }
    if (s->write_bytes < MW_RESUME_BYTES) {
        /* backpressure: streamed requests waiting for the queue to drain */
        for (mw_request *r = s->reqs; r; r = r->next)
            if (r->paused && r->backend && r->backend->ops->resume) {
                r->paused = 0;
                r->backend->ops->resume(r->backend, r);
            }
        if (s->read_paused && !s->dead) {
            resume_requests(s);
            if (!s->read_paused && !s->dead)
                mw_sched_session_paused(s);
        }
    }
    watch_writes(s, 1);
    if (s->w->shutting_down && s->write_bytes == 0)
        mw_worker_maybe_exit(s->w);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *wr = (write_req *)req;
    mw_session *s = wr->s;
    size_t cost = wr->cost;
    write_req_free(wr);
    writes_done(s, cost, status);
}

void mw_session_taken(mw_session *s, size_t cost)
{
    writes_done(s, cost > s->write_bytes ? s->write_bytes : cost, 0);
}

/* Hands a frame for target `to` to the session's sink: counted as a write
 * that completes when the sink's reader takes it. */
static void sink_put(mw_session *s, void *to, molt_db_buf *pieces, size_t n)
{
    size_t cost = sizeof(write_req), len = 0;
    for (size_t i = 0; i < n; i++) {
        cost += pieces[i].cap;
        len += pieces[i].len;
    }
    s->w->c.frames_out++;
    s->w->c.bytes_out += len;
    if (s->sink->put(s->sink->ud, to, pieces, n, cost))
        s->write_bytes += cost;
}

void mw_session_send(mw_session *s, molt_db_buf *frame)
{
    mw_session_send_pieces(s, frame, 1);
}

/* Backpressure after a frame was queued: pause, or drop a session whose
 * client reads nothing. */
static void after_send(mw_session *s)
{
    if (s->dead)
        return;
    if (s->write_bytes > (uint64_t)s->w->cfg->max_unread_bytes) {
        char why[128];
        snprintf(why, sizeof why, "%zu bytes of responses unread (max_unread_bytes)",
                 s->write_bytes);
        session_drop(s, why);
        return;
    }
    if (!s->read_paused && s->write_bytes > MW_PAUSE_BYTES)
        pause_requests(s);
    if (s->read_paused || s->w->shutting_down)
        watch_writes(s, 0);
}

static void send_to(mw_session *s, void *to, molt_db_buf *pieces, size_t n)
{
    if (s->sink) {
        sink_put(s, to, pieces, n < MW_SEND_PIECES ? n : MW_SEND_PIECES);
        after_send(s);
        return;
    }
    write_req *wr = NULL;
    if (!(s->dead && uv_is_closing((uv_handle_t *)wstream(s))))
        wr = malloc(sizeof *wr);
    if (!wr) {
        for (size_t i = 0; i < n; i++)
            molt_db_buf_free(&pieces[i]);
        if (!s->dead)
            mw_session_close(s); /* out of memory */
        return;
    }
    wr->s = s;
    wr->n = 0;
    /* small answers cost more than their bytes: a flood of pings must
     * reach the limits as soon as a flood of rows would */
    wr->cost = sizeof *wr;
    size_t len = 0;
    for (size_t i = 0; i < n && i < MW_SEND_PIECES; i++) {
        if (pieces[i].len == 0) {
            molt_db_buf_free(&pieces[i]);
            continue;
        }
        wr->bufs[wr->n] = uv_buf_init((char *)pieces[i].data, (unsigned)pieces[i].len);
        wr->n++;
        wr->cost += pieces[i].cap;
        len += pieces[i].len;
        molt_db_buf_init(&pieces[i]); /* moved */
    }
    if (wr->n == 0) {
        write_req_free(wr);
        return;
    }
    s->write_bytes += wr->cost;
    s->w->c.frames_out++;
    s->w->c.bytes_out += len;
    if (uv_write(&wr->req, wstream(s), wr->bufs, wr->n, on_write) < 0) {
        s->write_bytes -= wr->cost;
        write_req_free(wr);
        mw_session_close(s);
        return;
    }
    after_send(s);
}

void mw_session_send_pieces(mw_session *s, molt_db_buf *pieces, size_t n)
{
    send_to(s, s->sink_to, pieces, n);
}

void mw_session_send_for(mw_request *r, molt_db_buf *pieces, size_t n)
{
    send_to(r->s, r->sink_to, pieces, n);
}

void mw_session_reply_error(mw_session *s, uint64_t id, mw_status st,
                            const char *msg)
{
    molt_db_buf frame;
    molt_db_buf_init(&frame);
    mw_response r = {0};
    r.request_id = id;
    r.status = st;
    r.error = msg;
    if (mw_response_frame(&frame, &r) == MOLT_DB_OK)
        mw_session_send(s, &frame);
    molt_db_buf_free(&frame);
    if (s->sink) /* the answer of a request that never was */
        s->sink->done(s->sink->ud, s->sink_to);
}

/* Where s's request ids live: its own space, or for one-request sink
 * sessions one space they share. */
static const void *id_space(const mw_session *s)
{
    return s->sink && s->sink->one_request ? NULL : s;
}

mw_request *mw_session_find(mw_session *s, uint64_t id)
{
    return mw_idmap_get(&s->w->ids, id_space(s), id);
}

int mw_session_link(mw_session *s, mw_request *r)
{
    if (mw_idmap_put(&s->w->ids, id_space(s), r->id, r) < 0)
        return -1;
    r->s = s;
    r->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = r;
    s->reqs = r;
    s->nreqs++;
    return 0;
}

void mw_session_unlink(mw_session *s, mw_request *r)
{
    if (!s || r->s != s)
        return;
    mw_idmap_del(&s->w->ids, id_space(s), r->id);
    if (r->prev)
        r->prev->next = r->next;
    else
        s->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    r->s = NULL;
    s->nreqs--;
    s->held_request_bytes -= r->held_bytes;
    mw_sched_forget(r);
    if (!s->sink)
        return;
    s->sink->done(s->sink->ud, r->sink_to);
    if (s->sink->one_request && s->nreqs == 0)
        mw_session_close(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    mw_session *s = req->data;
    free(req);
    close_handles(s);
}

void mw_session_close(mw_session *s)
{
    if (s->dead)
        return;
    s->dead = 1;
    if (!s->sink) {
        /* its limits while it flushes (a sink's end below, with it) */
        uv_read_stop((uv_stream_t *)&s->in);
        watch_frame(s);
        watch_writes(s, 0);
    }
    /* the client is gone: cancel its requests down to the database */
    while (s->reqs) {
        mw_request *r = s->reqs;
        mw_session_unlink(s, r);
        mw_request_stop(r, MW_CANCELLED, "client disconnected");
    }
    mw_tx_session_closed(s); /* each rolls back once its request stopped */
    if (s->sink) {
        /* its frames are with the sink already */
        s->sink->closing(s->sink->ud);
        close_handles(s);
        return;
    }
    /* flush what is queued (a last InvalidInput), then close */
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req) {
        req->data = s;
        if (uv_shutdown(req, wstream(s), on_shutdown) == 0)
            return;
        free(req);
    }
    close_handles(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    mw_session *s = h->data;
    *buf = uv_buf_init(s->rbuf, MW_READ_BYTES);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    mw_session *s = st->data;
    if (nread < 0) {
        mw_session_close(s);
        return;
    }
    if (nread == 0 || s->dead)
        return;
    int rc = mw_framer_feed(&s->fr, (const uint8_t *)s->rbuf, (size_t)nread);
    if (rc == -1) {
        mw_session_reply_error(s, 0, MW_INTERNAL_ERROR, "out of memory");
        mw_session_close(s);
        return;
    }
    if (s->read_paused)
        handle_cancels(s);
    else
        handle_frames(s);
    count_request_bytes(s);
    if (s->request_bytes > 0 && !s->dead &&
        s->w->request_bytes > (uint64_t)s->w->cfg->max_buffered_request_bytes) {
        mw_log("session %llu closed: %zu request bytes held, all sessions' past "
               "max_buffered_request_bytes", (unsigned long long)s->id, s->request_bytes);
        s->w->c.sessions_dropped++;
        mw_session_reply_error(s, 0, MW_BUSY, "the worker holds too many request "
                               "bytes (max_buffered_request_bytes); send again later");
        mw_session_close(s);
    }
    watch_frame(s);
}

/* Handles the whole frames buffered, until the session pauses or closes. */
static void handle_frames(mw_session *s)
{
    while (!s->dead && !s->read_paused) {
        const uint8_t *body;
        size_t len;
        int r = mw_framer_next(&s->fr, &body, &len);
        if (r == 0)
            break;
        if (r < 0) {
            char msg[128];
            if (len == 0)
                snprintf(msg, sizeof msg, "frame length 0 is not allowed");
            else
                snprintf(msg, sizeof msg,
                         "frame length %zu is above the limit of %lld bytes", len,
                         (long long)s->w->cfg->max_request_bytes);
            s->w->c.invalid_input++;
            mw_session_reply_error(s, 0, MW_INVALID_INPUT, msg);
            mw_session_close(s);
            return;
        }
        mw_request_handle(s, body, len);
    }
}

static mw_session *session_new(mw_worker *w, const mw_sink *sink)
{
    mw_session *s = mw_freelist_take(&w->free_sessions, mw_sched_session_size(w));
    if (!s)
        return NULL;
    s->w = w;
    s->sink = sink;
    if (!sink && !(s->rbuf = malloc(MW_READ_BYTES))) {
        mw_freelist_give(&w->free_sessions, s);
        return NULL;
    }
    mw_sched_session_init(s);
    s->id = ++w->next_session_id;
    mw_framer_init(&s->fr, (uint64_t)w->cfg->max_request_bytes);
    w->nsessions++;
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->c.sessions_opened++;
    return s;
}

int mw_session_start_socket(mw_worker *w, uv_stream_t *server)
{
    mw_session *s = session_new(w, NULL);
    if (!s)
        return -1;
    uv_pipe_init(w->loop, &s->in, 0);
    s->in.data = s;
    s->handles++;
    if (uv_accept(server, (uv_stream_t *)&s->in) < 0 ||
        uv_read_start((uv_stream_t *)&s->in, on_alloc, on_read) < 0) {
        s->dead = 1;
        close_handles(s);
        return -1;
    }
    return 0;
}

int mw_session_start_stdio(mw_worker *w)
{
    if (uv_guess_handle(0) != UV_NAMED_PIPE || uv_guess_handle(1) != UV_NAMED_PIPE) {
        fprintf(stderr, "molt_worker: --stdio needs stdin and stdout to be pipes "
                        "or sockets (not a terminal or a file)\n");
        return -1;
    }
    mw_session *s = session_new(w, NULL);
    if (!s)
        return -1;
    s->stdio = 1;
    uv_pipe_init(w->loop, &s->in, 0);
    uv_pipe_init(w->loop, &s->out, 0);
    s->in.data = s->out.data = s;
    s->handles += 2;
    if (uv_pipe_open(&s->in, 0) < 0 || uv_pipe_open(&s->out, 1) < 0 ||
        uv_read_start((uv_stream_t *)&s->in, on_alloc, on_read) < 0) {
        fprintf(stderr, "molt_worker: cannot use stdin/stdout\n");
        s->dead = 1;
        close_handles(s);
        return -1;
    }
    return 0;
}

mw_session *mw_session_start_sink(mw_worker *w, const mw_sink *sink)
{
    return session_new(w, sink);
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

void mw_session_refuse(mw_worker *w, uv_stream_t *server)
{
    uv_pipe_t *p = malloc(sizeof *p);
    if (!p)
        return; /* stays in the backlog; libuv retries */
    uv_pipe_init(w->loop, p, 0);
    if (uv_accept(server, (uv_stream_t *)p) == 0) {
        /* best effort, never waiting: the fd is given back at once */
        molt_db_buf frame;
        molt_db_buf_init(&frame);
        mw_response r = {0};
        r.status = MW_BUSY;
        r.error = "too many sessions (max_sessions)";
        if (mw_response_frame(&frame, &r) == MOLT_DB_OK) {
            uv_buf_t b = uv_buf_init((char *)frame.data, (unsigned)frame.len);
            (void)uv_try_write((uv_stream_t *)p, &b, 1);
        }
        molt_db_buf_free(&frame);
    }
    w->c.sessions_refused++;
    uv_close((uv_handle_t *)p, on_refused_closed);
}
