/* A host's streams (host_core.h): one request each, its frames queued for
 * the caller, and the commands that carry the caller's actions to the loop
 * thread. A stream's request runs in its host session's worker session
 * (host_session.c), so the worker's limits, backpressure and cancellation
 * apply unchanged: frames the caller has not taken count as the session's
 * unwritten bytes. */
#include "host_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "request.h"
#include "zalloc.h"

/* ---- frames and news (under h->lock unless said) ---- */

static void frames_free(host_frame *f)
{
    while (f) {
        host_frame *next = f->next;
        free(f->data);
        free(f);
        f = next;
    }
}

/* Frees the request's bytes, when they have an allocation of their own. */
static void req_free(molt_db_host_stream *st)
{
    if (st->req != st->inline_req)
        free(st->req);
    st->req = NULL;
}

void mw_host_stream_free(molt_db_host_stream *st)
{
    host_session *hs = st->hs;
    frames_free(st->head);
    frames_free(st->taken);
    req_free(st);
    if (hs != &st->own)
        free(st);
    mw_host_session_unref(hs);
}

/* st has news for the caller: returns 1 when the notify fd must be
 * written (after unlocking). */
static int news_locked(molt_db_host_stream *st)
{
    molt_db_host *h = st->h;
    if (st->released)
        return 0;
    if (!st->news) {
        st->news = 1;
        st->news_next = NULL;
        st->news_prev = h->news_tail;
        if (h->news_tail)
            h->news_tail->news_next = st;
        else
            h->news_head = st;
        h->news_tail = st;
    }
    /* once written, the fd stays readable until molt_db_host_poll: no
     * second write; on a host whose callers arm, none unless one waits */
    if (h->mode == MOLT_DB_HOST_THREADED && !h->notified && (!h->arming || h->armed)) {
        h->notified = 1;
        h->armed = 0;
        return 1;
    }
    return 0;
}

static void news_unlink_locked(molt_db_host_stream *st)
{
    molt_db_host *h = st->h;
    if (!st->news)
        return;
    if (st->news_prev)
        st->news_prev->news_next = st->news_next;
    else
        h->news_head = st->news_next;
    if (st->news_next)
        st->news_next->news_prev = st->news_prev;
    else
        h->news_tail = st->news_prev;
    st->news = 0;
    st->news_prev = st->news_next = NULL;
}

static void all_link_locked(molt_db_host_stream *st)
{
    molt_db_host *h = st->h;
    st->all_next = h->all;
    if (h->all)
        h->all->all_prev = st;
    h->all = st;
}

static void all_unlink_locked(molt_db_host_stream *st)
{
    molt_db_host *h = st->h;
    if (st->all_prev)
        st->all_prev->all_next = st->all_next;
    else
        h->all = st->all_next;
    if (st->all_next)
        st->all_next->all_prev = st->all_prev;
}

/* Appends a frame and says whether to notify. */
static int push_locked(molt_db_host_stream *st, host_frame *f)
{
    f->next = NULL;
    if (st->tail)
        st->tail->next = f;
    else
        st->head = f;
    st->tail = f;
    return news_locked(st);
}

/* Unlinks st when nothing holds it any more: returns 1 when it must then
 * be freed, after unlocking (mw_host_stream_free). */
static int finished_locked(molt_db_host_stream *st)
{
    if (!st->released || !st->ended || st->cmds || st->running)
        return 0;
    all_unlink_locked(st);
    return 1;
}


int mw_host_queue_locked(molt_db_host_stream *st, unsigned cmds)
{
    molt_db_host *h = st->h;
    int queued = st->cmds != 0;
    st->cmds |= cmds;
    if (queued)
        return 0;
    st->cmd_next = NULL;
    if (h->cmd_tail)
        h->cmd_tail->cmd_next = st;
    else
        h->cmd_head = st;
    h->cmd_tail = st;
    return mw_host_wake_locked(h);
}

/* Frames worth cost left the session's count (taken, or dropped with a
 * released stream): once enough, st carries the report to the loop.
 * Returns whether to wake it. */
static int taken_locked(molt_db_host_stream *st, size_t cost)
{
    host_session *hs = st->hs;
    hs->taken_cost += cost;
    if (hs->taken_cost < HOST_REPORT_BYTES || hs->ended)
        return 0;
    st->taken_cost += hs->taken_cost;
    hs->taken_cost = 0;
    return mw_host_queue_locked(st, HOST_CMD_TAKEN);
}

/* ---- from the session's sink (host_session.c), on the loop thread ---- */

/* One frame from the session's pieces, without the length prefix. Pieces
 * that must be joined are laid out so that the second (a buffered
 * result's body: Arrow IPC bytes) starts on an 8-byte boundary, where a
 * caller of molt_db_host_next_owned can use its buffers in place. */
static host_frame *frame_from(molt_db_buf *pieces, size_t n, size_t cost)
{
    host_frame *f = mw_zalloc(1, sizeof *f);
    size_t total = 0, used = 0, lead = 0;
    for (size_t i = 0; i < n; i++) {
        total += pieces[i].len;
        used += pieces[i].len > 0;
    }
    if (f && used == 1 && pieces[0].len == total) {
        f->data = pieces[0].data; /* moved */
        molt_db_buf_init(&pieces[0]);
    } else if (f && (f->data = malloc(total + 8)) != NULL) {
        lead = (8 - ((uintptr_t)f->data + pieces[0].len) % 8) % 8;
        f->len = lead;
        for (size_t i = 0; i < n; i++) {
            if (pieces[i].len)
                memcpy(f->data + f->len, pieces[i].data, pieces[i].len);
            f->len += pieces[i].len;
        }
    }
    for (size_t i = 0; i < n; i++)
        molt_db_buf_free(&pieces[i]);
    if (!f || !f->data || total < 4) {
        if (f)
            free(f->data);
        free(f);
        return NULL;
    }
    f->off = lead + 4;
    f->len = total - 4;
    f->cost = cost;
    return f;
}

int mw_host_stream_put(molt_db_host_stream *st, molt_db_buf *pieces, size_t n,
                       size_t cost)
{
    molt_db_host *h = st->h;
    host_frame *f = frame_from(pieces, n, cost);
    if (!f)
        return -1;
    pthread_mutex_lock(&h->lock);
    int kept = !st->released, note = 0;
    if (kept)
        note = push_locked(st, f);
    pthread_mutex_unlock(&h->lock);
    if (!kept)
        frames_free(f);
    if (note)
        mw_host_notify_later(h);
    return kept;
}

void mw_host_stream_done(molt_db_host_stream *st)
{
    molt_db_host *h = st->h;
    pthread_mutex_lock(&h->lock);
    st->ended = 1;
    int note = news_locked(st);
    int done = finished_locked(st);
    pthread_mutex_unlock(&h->lock);
    if (note)
        mw_host_notify_later(h);
    if (done)
        mw_host_stream_free(st);
}

/* ---- a stream answered without the worker: framing errors, refusals ---- */

/* Queues the one frame of a request that never reaches the worker, and
 * ends the stream. Returns 1 when the notify fd must be written. */
static int answer_now_locked(molt_db_host_stream *st, mw_status status,
                              const char *msg)
{
    mw_response r = {0};
    r.status = status;
    r.error = msg;
    molt_db_buf b;
    molt_db_buf_init(&b);
    host_frame *f = NULL;
    if (mw_response_frame(&b, &r) == MOLT_DB_OK)
        f = frame_from(&b, 1, 0);
    molt_db_buf_free(&b);
    /* the push may be what marks the host notified: its answer counts */
    int note = f ? push_locked(st, f) : 0;
    st->ended = 1;
    return news_locked(st) | note;
}

/* The same from the loop thread. */
static void answer_now(molt_db_host_stream *st, mw_status status, const char *msg)
{
    molt_db_host *h = st->h;
    pthread_mutex_lock(&h->lock);
    int note = answer_now_locked(st, status, msg);
    pthread_mutex_unlock(&h->lock);
    if (note)
        mw_host_notify_later(h);
}

/* ---- the loop thread runs a stream's commands ---- */

static void start(molt_db_host_stream *st)
{
    host_session *hs = st->hs;
    const char *why = NULL;
    mw_session *s = mw_host_session_get(hs, &why);
    if (!s) {
        answer_now(st, why ? MW_INVALID_INPUT : MW_INTERNAL_ERROR,
                   why ? why : "out of memory");
        return;
    }
    s->sink_to = st;
    mw_request_handle(s, st->req, st->req_len);
    s->sink_to = NULL;
    /* a one-request session answered without a request (a bad envelope):
     * nothing else comes */
    if (hs->sink.one_request && !s->dead && s->nreqs == 0)
        mw_session_close(s);
}

/* The caller released st while its request runs: as a client that
 * disconnects, for a session of its own, or as a cancel request (whose
 * answer nobody reads) in the caller's session. */
static void stop(molt_db_host_stream *st)
{
    mw_session *s = st->hs->s;
    if (!s || s->dead)
        return;
    if (st->hs->sink.one_request) {
        mw_session_close(s);
        return;
    }
    for (mw_request *r = s->reqs; r; r = r->next) {
        if (r->sink_to == st) {
            mw_request_stop(r, MW_CANCELLED, "cancelled: its stream was released");
            return;
        }
    }
}

unsigned mw_host_stream_take_locked(molt_db_host_stream *st, size_t *taken)
{
    unsigned cmds = st->cmds;
    st->cmds = 0;
    st->running = 1;
    *taken = st->taken_cost;
    st->taken_cost = 0;
    if (cmds & HOST_CMD_SUBMIT) {
        st->h->queued_request_bytes -= st->req_len;
        if (st->released)
            st->ended = 1;
    }
    return cmds;
}

void mw_host_stream_run(molt_db_host_stream *st, unsigned cmds, size_t taken)
{
    molt_db_host *h = st->h;
    if (cmds & HOST_CMD_SUBMIT) {
        /* ended here only when released before it started (set under the
         * lock by mw_host_stream_take_locked; a submitted stream's end is
         * otherwise written by this thread only) */
        if (!st->ended)
            start(st);
        req_free(st);
    }
    mw_session *s = st->hs->s;
    if ((cmds & HOST_CMD_TAKEN) && s && !s->dead)
        mw_session_taken(s, taken);
    if (cmds & HOST_CMD_RELEASE)
        stop(st);
    pthread_mutex_lock(&h->lock);
    st->running = 0;
    int done = finished_locked(st);
    pthread_mutex_unlock(&h->lock);
    if (done)
        mw_host_stream_free(st);
}

/* ---- the caller's side: any thread in threaded mode ---- */

int mw_host_stream_submit(molt_db_host *h, uint64_t session_id, const uint8_t *req,
                          size_t len, uint64_t token, void *udata,
                          molt_db_host_stream **out)
{
    host_session *hs;
    int inline_req = len <= HOST_INLINE_REQUEST;
    molt_db_host_stream *st = mw_zalloc(1, sizeof *st + (inline_req ? len : 0));
    if (!st)
        return MOLT_DB_ENOMEM;
    st->h = h;
    st->token = token;
    st->udata = udata;
    /* the worker's framing limits: the envelope is a frame's body */
    char msg[MW_MSG_SIZE];
    msg[0] = 0;
    if (len == 0)
        snprintf(msg, sizeof msg, "frame length 0 is not allowed");
    else if (len > (uint64_t)h->cfg.max_request_bytes)
        snprintf(msg, sizeof msg, "frame length %zu is above the limit of %lld bytes",
                 len, (long long)h->cfg.max_request_bytes);
    else if (!(st->req = inline_req ? st->inline_req : malloc(len))) {
        free(st);
        return MOLT_DB_ENOMEM;
    } else {
        memcpy(st->req, req, len);
        st->req_len = len;
    }
    pthread_mutex_lock(&h->lock);
    if (h->closing) {
        pthread_mutex_unlock(&h->lock);
        mw_host_stream_free(st);
        return MOLT_DB_ECLOSED;
    }
    if (session_id) {
        hs = mw_host_session_find_locked(h, session_id);
        if (!hs && !msg[0])
            snprintf(msg, sizeof msg, "session %llu is not open on this host (never "
                     "opened, or closed)", (unsigned long long)session_id);
    } else {
        hs = &st->own;
        mw_host_session_init_locked(hs, h, 0);
    }
    if (hs) {
        if (session_id)
            hs->refs++;
        st->hs = hs;
    }
    all_link_locked(st);
    int wake = 0, note = 0;
    if (msg[0]) {
        note = answer_now_locked(st, MW_INVALID_INPUT, msg);
    } else if (h->queued_request_bytes + len > (uint64_t)h->cfg.max_buffered_request_bytes) {
        note = answer_now_locked(st, MW_BUSY, "the worker holds too many request "
                                 "bytes (max_buffered_request_bytes); send again later");
    } else {
        h->queued_request_bytes += len;
        wake = mw_host_queue_locked(st, HOST_CMD_SUBMIT);
    }
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    if (note)
        mw_host_notify(h);
    *out = st;
    return 0;
}

int molt_db_host_submit(molt_db_host *h, const uint8_t *req, size_t len,
                        uint64_t token, void *udata, molt_db_host_stream **out)
{
    if (!h || !out || (!req && len))
        return MOLT_DB_EINVAL;
    *out = NULL;
    return mw_host_stream_submit(h, 0, req, len, token, udata, out);
}

/* Unlinks the next frame (*f, NULL when none) and returns what
 * molt_db_host_next returns; the frame of the previous next is freed. With
 * keep, the frame stays the stream's until the next call (next), else it
 * becomes the caller's (next_owned). */
static int take_frame(molt_db_host_stream *st, int keep, host_frame **out)
{
    molt_db_host *h = st->h;
    pthread_mutex_lock(&h->lock);
    host_frame *old = st->taken;
    st->taken = NULL;
    host_frame *f = st->head;
    int rc, wake = 0;
    if (f) {
        st->head = f->next;
        if (!st->head)
            st->tail = NULL;
        f->next = NULL;
        if (keep)
            st->taken = f;
        rc = 1;
        if (st->hs)
            wake = taken_locked(st, f->cost);
    } else {
        rc = st->ended ? MOLT_DB_HOST_DONE : 0;
    }
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    frames_free(old);
    *out = f;
    return rc;
}

int molt_db_host_next(molt_db_host_stream *st, const uint8_t **frame, size_t *len)
{
    host_frame *f;
    int rc = take_frame(st, 1, &f);
    if (f) {
        *frame = f->data + f->off;
        *len = f->len;
    }
    return rc;
}

int molt_db_host_next_owned(molt_db_host_stream *st, molt_db_host_frame **owned,
                            const uint8_t **frame, size_t *len)
{
    host_frame *f;
    int rc = take_frame(st, 0, &f);
    *owned = (molt_db_host_frame *)f;
    if (f) {
        *frame = f->data + f->off;
        *len = f->len;
    }
    return rc;
}

void molt_db_host_frame_free(molt_db_host_frame *owned)
{
    frames_free((host_frame *)owned);
}

void molt_db_host_release(molt_db_host_stream *st)
{
    if (!st)
        return;
    molt_db_host *h = st->h;
    pthread_mutex_lock(&h->lock);
    st->released = 1;
    news_unlink_locked(st);
    /* frames never taken leave the session's count too */
    size_t dropped = 0;
    for (host_frame *f = st->head; f; f = f->next)
        dropped += f->cost;
    host_frame *frames = st->head;
    st->head = st->tail = NULL;
    int wake = st->hs && dropped ? taken_locked(st, dropped) : 0;
    /* a request still running must be told, to cancel it */
    if (!st->ended)
        wake |= mw_host_queue_locked(st, HOST_CMD_RELEASE);
    int done = finished_locked(st);
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    frames_free(frames);
    if (done)
        mw_host_stream_free(st);
}

size_t molt_db_host_ready(molt_db_host *h, void **udata, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&h->lock);
    while (n < cap && h->news_head) {
        molt_db_host_stream *st = h->news_head;
        news_unlink_locked(st);
        udata[n++] = st->udata;
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}
