/* Host sessions (host_core.h): the caller's (molt_db_host_session_open),
 * in which requests run as on one connection of molt_worker, and the one
 * of each stream submitted without a session. Each is one sink session of
 * the worker, made at its first request; its sink hands each frame to
 * the stream of the request it answers. */
#include "host_core.h"

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "request.h"
#include "zalloc.h"

/* ---- the sink (loop thread) ---- */

static int sink_put(void *ud, void *to, molt_db_buf *pieces, size_t n, size_t cost)
{
    host_session *hs = ud;
    int rc = mw_host_stream_put(to, pieces, n, cost);
    if (rc < 0) {
        /* a frame is lost: its caller must not wait for more */
        mw_session_close(hs->s);
        return 0;
    }
    return rc;
}

static void sink_done(void *ud, void *to)
{
    (void)ud;
    mw_host_stream_done(to);
}

static void sink_closing(void *ud)
{
    host_session *hs = ud;
    pthread_mutex_lock(&hs->h->lock);
    hs->ended = 1;
    pthread_mutex_unlock(&hs->h->lock);
}

static void sink_closed(void *ud)
{
    host_session *hs = ud;
    hs->s = NULL;
    mw_host_session_unref(hs);
}

/* ---- the table ---- */

void mw_host_session_init_locked(host_session *hs, molt_db_host *h, uint64_t id)
{
    hs->h = h;
    hs->id = id;
    hs->refs = 1;
    hs->sink.put = sink_put;
    hs->sink.done = sink_done;
    hs->sink.closing = sink_closing;
    hs->sink.closed = sink_closed;
    hs->sink.ud = hs;
    hs->sink.one_request = id == 0;
    if (id) {
        hs->next = h->sessions;
        if (h->sessions)
            h->sessions->prev = hs;
        h->sessions = hs;
    }
}

host_session *mw_host_session_new_locked(molt_db_host *h, uint64_t id)
{
    host_session *hs = mw_zalloc(1, sizeof *hs);
    if (hs)
        mw_host_session_init_locked(hs, h, id);
    return hs;
}

host_session *mw_host_session_find_locked(molt_db_host *h, uint64_t id)
{
    for (host_session *hs = h->sessions; hs; hs = hs->next)
        if (hs->id == id && !hs->closed)
            return hs;
    return NULL;
}

void mw_host_session_unref(host_session *hs)
{
    if (!hs)
        return;
    molt_db_host *h = hs->h;
    pthread_mutex_lock(&h->lock);
    int last = --hs->refs == 0;
    if (last && hs->id) {
        if (hs->prev)
            hs->prev->next = hs->next;
        else
            h->sessions = hs->next;
        if (hs->next)
            hs->next->prev = hs->prev;
    }
    pthread_mutex_unlock(&h->lock);
    /* a stream's own session is part of the stream's allocation, whose
     * reference on it was the stream's last use (mw_host_stream_free) */
    if (last)
        free(hs->id ? (void *)hs : (void *)MW_CONTAINER_OF(hs, molt_db_host_stream, own));
}

/* ---- the loop thread ---- */

mw_session *mw_host_session_get(host_session *hs, const char **msg)
{
    static const char ended[] = "the session was closed (molt_db_host_session_close, "
                                "or a limit of the worker: write_timeout_ms, "
                                "max_unread_bytes): open another";
    molt_db_host *h = hs->h;
    pthread_mutex_lock(&h->lock);
    int refused = hs->ended, make = !refused && !hs->s;
    if (make)
        hs->refs++; /* the worker session's, dropped by sink_closed */
    pthread_mutex_unlock(&h->lock);
    *msg = NULL;
    if (refused || (hs->s && hs->s->dead)) {
        *msg = ended;
        return NULL;
    }
    if (!make)
        return hs->s;
    hs->s = mw_session_start_sink(&h->w, &hs->sink);
    if (!hs->s)
        mw_host_session_unref(hs); /* the stream's reference remains */
    return hs->s;
}

void mw_host_session_close_now(host_session *hs)
{
    mw_session *s = hs->s;
    if (s && !s->dead) {
        /* as a socket closing, but each stream gets its end */
        mw_request *r = s->reqs;
        while (r && !s->dead) {
            mw_request *next = r->next;
            mw_request_stop(r, MW_CANCELLED, "cancelled: its session was closed "
                            "(molt_db_host_session_close)");
            r = next;
        }
        mw_session_close(s); /* its transactions roll back */
    }
    pthread_mutex_lock(&hs->h->lock);
    hs->ended = 1;
    pthread_mutex_unlock(&hs->h->lock);
    mw_host_session_unref(hs); /* the caller's */
}

/* ---- the caller's side: any thread in threaded mode ---- */

/* A random session id, never 0: 0, or MOLT_DB_EIO when the kernel gives
 * no randomness (getrandom unavailable or refused). Outside h->lock. */
static int random_id(uint64_t *v)
{
    for (int tries = 0; tries < 64; tries++) {
        ssize_t n = getrandom(v, sizeof *v, 0);
        if (n == (ssize_t)sizeof *v && *v != 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return MOLT_DB_EIO;
    }
    return MOLT_DB_EIO;
}

int molt_db_host_session_open(molt_db_host *h, uint64_t *id)
{
    if (!h || !id)
        return MOLT_DB_EINVAL;
    *id = 0;
    uint64_t v;
    int rc;
    /* random, so that code not given an id cannot guess one; drawn outside
     * the lock, drawn again in the (2^-64) case that it is taken */
    for (int tries = 0;; tries++) {
        if ((rc = random_id(&v)) != 0)
            return rc;
        pthread_mutex_lock(&h->lock);
        rc = h->closing ? MOLT_DB_ECLOSED
             : h->nsessions >= h->cfg.max_sessions ? MOLT_DB_EBUSY : 0;
        if (rc != 0 || !mw_host_session_find_locked(h, v))
            break;
        pthread_mutex_unlock(&h->lock);
        if (tries == 64)
            return MOLT_DB_EIO;
    }
    if (rc == 0 && !mw_host_session_new_locked(h, v))
        rc = MOLT_DB_ENOMEM;
    if (rc == 0)
        h->nsessions++;
    pthread_mutex_unlock(&h->lock);
    if (rc == 0)
        *id = v;
    return rc;
}

int molt_db_host_session_close(molt_db_host *h, uint64_t id)
{
    if (!h || id == 0)
        return MOLT_DB_EINVAL;
    pthread_mutex_lock(&h->lock);
    host_session *hs = mw_host_session_find_locked(h, id);
    int rc = h->closing ? MOLT_DB_ECLOSED : hs ? 0 : MOLT_DB_EINVAL, wake = 0;
    if (rc == 0) {
        hs->closed = 1;
        h->nsessions--;
        hs->close_next = h->closes;
        h->closes = hs;
        wake = mw_host_wake_locked(h);
    }
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    return rc;
}

int molt_db_host_submit_in(molt_db_host *h, uint64_t session, const uint8_t *req,
                           size_t len, uint64_t token, void *udata,
                           molt_db_host_stream **out)
{
    if (!h || !out || (!req && len))
        return MOLT_DB_EINVAL;
    *out = NULL;
    return mw_host_stream_submit(h, session, req, len, token, udata, out);
}
