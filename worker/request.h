/*
 * A request (request.c): one frame of a session, from its envelope to its
 * one answer. It is answered exactly once (mw_request_reply) and freed once
 * both the answer was given and the database work, if any, reported done
 * (mw_request_db_done). Everything runs on the loop thread, except what
 * backend_sqlite does with r->res on the thread pool while the request is
 * in the database.
 */
#ifndef MW_REQUEST_H
#define MW_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "deadline.h"
#include "envelope.h"
#include "molt_db/buf.h"
#include "molt_db/error.h"
#include "payload.h"
#include "reap.h"
#include "result.h"

typedef struct mw_worker mw_worker;
typedef struct mw_session mw_session;
typedef struct mw_request mw_request;
typedef struct mw_backend mw_backend;
typedef struct mw_lane mw_lane;
typedef struct mw_tx mw_tx;

struct mw_request {
    mw_worker *w;
    mw_session *s;           /* NULL once the session went away */
    void *sink_to;           /* a sink session's target for its frames */
    mw_request *next, *prev; /* in s->reqs while in flight */
    uint64_t id;
    mw_entry entry;
    uint64_t t_recv, t_start, t_exec_end;   /* uv_hrtime ns */
    uint32_t timeout_ms;
    mw_deadline deadline;    /* its deadline, or max_wait_ms while queued */
    mw_reap reap;            /* freed through the worker's reaper */
    int released;            /* ... and queued there */
    int replied;
    int db_busy;             /* the backend has not called db_done yet */
    int stopping;            /* cancel asked of the backend */
    int paused;              /* the backend waits for the session's writes */
    mw_query q;
    int have_q;
    size_t held_bytes;       /* q's, charged to the worker's held_request_bytes
                                until freed, to its session's while linked */
    mw_result res;
    int have_res;
    mw_backend *backend;
    void *job;               /* the backend's state */
    struct mw_replica *route; /* replica_route.c: the server it counts on */
    mw_request *route_next, *route_prev; /* in route's list */
    int rerouting;           /* cancelled there to run on the primary */
    int server_lost;         /* set by the backend before db_done: the work
                                failed as its server's connection went or
                                could not be made (backend.h) */
    int write_counted;       /* ... in its session's writes_running */
    /* sched.c: waiting for a slot of its alias, or holding one */
    mw_lane *lane;           /* NULL once forgotten */
    mw_request *qnext, *qprev; /* in lane's queue while queued */
    size_t alias_index;
    int queued;
    int max_wait_armed;      /* the timer runs for the alias's max_wait_ms */
    int in_slot;             /* counted in the alias's running */
    int counted_in_lane;     /* counted in lane's running */
    mw_tx *tx;               /* tx_begin/tx_commit/tx_rollback, or a statement
                                run in a transaction (tx.h) */
    int64_t rows_affected;
    int has_last_id;
    int64_t last_id;
};

/* Handles one frame body of session s. */
void mw_request_handle(mw_session *s, const uint8_t *body, size_t len);
/* Final answer (exactly once; later calls do nothing). msg/err may be
 * NULL. For Ok on db entries the payload comes from r->res. */
void mw_request_reply(mw_request *r, mw_status st, const char *msg,
                      const molt_db_error *err);
/* Ok with a msgpack payload (ping, stats, cancel). */
void mw_request_reply_payload(mw_request *r, const molt_db_buf *payload);
/* Backend: the work is over (on the loop thread). status MW_OK replies
 * with the result; otherwise with the error. */
void mw_request_db_done(mw_request *r, mw_status st, const char *msg,
                        const molt_db_error *err);
/* Backend: send queued streaming parts (loop thread). */
void mw_request_flush_parts(mw_request *r);
/* One streamed part (more: true) of r now, in codec; nothing once r was
 * answered or its session is gone. The send may close the session. */
void mw_request_send_part(mw_request *r, const char *codec, const uint8_t *p, size_t n);
/* Backend start: a zeroed job of `size` bytes, or NULL after answering the
 * request InternalError (out of memory; the backend then returns). */
void *mw_request_job_new(mw_request *r, size_t size);
/* Stops a request: asks the backend to cancel and answers st (Timeout,
 * Cancelled, Busy) unless the session is gone. */
void mw_request_stop(mw_request *r, mw_status st, const char *msg);
/* Charges r's parsed query (mw_query_held_bytes) to max_held_request_bytes
 * and to its session's share of it (session_request_share_pct). 0, or -1
 * with msg when either would pass its limit: nothing is charged then, and
 * the caller answers Busy. */
int mw_request_hold(mw_request *r, char msg[MW_MSG_SIZE]);
/* (Re)arms r's deadline entry to fire in ms: its deadline, or the alias's
 * max_wait_ms while it waits in sched.c (r->max_wait_armed). */
void mw_request_set_timer(mw_request *r, uint64_t ms);

#endif
