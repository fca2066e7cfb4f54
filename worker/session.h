/*
 * A session (session.c): one client connection with its frame reader, its
 * queue of responses and its table of requests in flight. It lives from
 * accept (or start, for --stdio) until its pipes are closed (a sink
 * session, which has none, until the reaper's next run); when the
 * client goes away, its requests are cancelled down to the database and
 * detached (r->s = NULL) to finish on their own.
 */
#ifndef MW_SESSION_H
#define MW_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "deadline.h"
#include "envelope.h"
#include "framing.h"
#include "molt_db/buf.h"
#include "reap.h"

typedef struct mw_worker mw_worker;
typedef struct mw_session mw_session;
typedef struct mw_request mw_request;
typedef struct mw_lane mw_lane;     /* sched.c: one per session and alias */
typedef struct mw_tx mw_tx;         /* tx.h: a session-bound transaction */

/* Where a session without a socket puts its frames (host.c: a host
 * session, whose requests each answer to a stream of their own). A frame
 * goes to a target: the request's (r->sink_to), or for an answer without a
 * request the session's sink_to, set by the sink's owner around
 * mw_request_handle. All are called on the loop thread. */
typedef struct mw_sink {
    /* one whole frame (length prefix included) for target `to`, as n
     * pieces, each moved (left empty). Returns 1 when it keeps the frame:
     * cost then counts in the session's write_bytes until
     * mw_session_taken gives it back; 0 when it dropped it (nobody reads
     * `to` any more, or memory ran out) */
    int (*put)(void *ud, void *to, molt_db_buf *pieces, size_t n, size_t cost);
    /* no frame follows for target `to` */
    void (*done)(void *ud, void *to);
    /* the session closed: no frame follows for any target */
    void (*closing)(void *ud);
    /* the session is freed */
    void (*closed)(void *ud);
    void *ud;
    /* the session closes once its one request is over, and its
     * request_ids are unique among all such sessions (a cancel request
     * reaches any of them); otherwise it lives until closed and its
     * request_ids are its own, as a connection's */
    int one_request;
} mw_sink;

struct mw_session {
    mw_worker *w;
    uint64_t id;
    int stdio;
    const mw_sink *sink;     /* frames go there, not to a socket (no in/out) */
    void *sink_to;           /* the target of an answer without a request */
    uv_pipe_t in;            /* the socket, or stdin */
    uv_pipe_t out;           /* stdout (stdio mode only) */
    mw_framer fr;
    mw_request *reqs;        /* in flight */
    size_t nreqs;
    mw_lane *lanes;          /* its requests waiting for each alias */
    size_t writes_running;   /* replica_route.c: its db_exec in flight */
    uint64_t last_write_ms;  /* ... and when the last one ended (uv_now) */
    mw_tx *txs;              /* its open transactions (tx.h) */
    size_t ntxs;
    int dead;                /* no more reading; closing */
    int handles;             /* open handles: its pipes */
    int released;            /* they are closing: freed once closed */
    mw_reap reap;            /* ... through the reaper when it has none */
    size_t write_bytes;      /* memory held by writes not yet done */
    int read_paused;         /* too much unread: its requests wait */
    int read_stopped;        /* and so many wait that reading stopped */
    size_t request_bytes;    /* its framer's bytes, as counted in the worker's */
    size_t held_request_bytes; /* its requests' r->held_bytes, while in flight */
    mw_deadline frame_stall; /* a half-sent request frame stalls */
    mw_deadline write_stall; /* the client stops reading its responses */
    mw_deadline hold;        /* ... while its paused requests hold connections */
    mw_session *next, *prev;
    char *rbuf;              /* MW_READ_BYTES, with a socket */
};

/* Starts a session on an accepted socket (socket mode); takes ownership. */
int mw_session_start_socket(mw_worker *w, uv_stream_t *server);
/* Starts the stdio session. 0 or -1 (message on stderr). */
int mw_session_start_stdio(mw_worker *w);
/* Starts a session whose frames go to sink (which must outlive it), or
 * NULL (out of memory). Its requests are handed in with mw_request_handle
 * (each answers to the sink_to of that moment). */
mw_session *mw_session_start_sink(mw_worker *w, const mw_sink *sink);
/* The sink's reader took frames worth cost: as a completed write, this
 * may resume the session's paused requests. */
void mw_session_taken(mw_session *s, size_t cost);
/* Queues a frame (moves frame->data; frame is left empty). */
void mw_session_send(mw_session *s, molt_db_buf *frame);
/* Queues a frame made of n (at most MW_SEND_PIECES) buffers written in
 * order, each moved (left empty); empty pieces are skipped. */
#define MW_SEND_PIECES 3
void mw_session_send_pieces(mw_session *s, molt_db_buf *pieces, size_t n);
/* The same for a frame of request r (r->s not NULL). */
void mw_session_send_for(mw_request *r, molt_db_buf *pieces, size_t n);
/* Removes a request from its session's table. */
void mw_session_unlink(mw_session *s, mw_request *r);
mw_request *mw_session_find(mw_session *s, uint64_t id);
/* Puts r (its id set, not yet any session's) in flight on s. 0, or -1 out of
 * memory (r untouched). */
int mw_session_link(mw_session *s, mw_request *r);
/* Answers a request that never got a mw_request (framing/envelope errors). */
void mw_session_reply_error(mw_session *s, uint64_t id, mw_status st,
                            const char *msg);
/* Closes a session (client gone or fatal error): cancels its requests,
 * flushes what is queued (for at most write_timeout_ms), then closes. */
void mw_session_close(mw_session *s);
/* Refuses a connection over max_sessions: answers Busy and closes it. */
void mw_session_refuse(mw_worker *w, uv_stream_t *server);

#endif
