/*
 * The worker's core objects: the worker (one loop, the backends, the
 * sessions, counters, shutdown), a session (one client connection with its
 * frame reader and its table of requests in flight) and a request.
 *
 * Life cycles (libuv's model: the close callback frees):
 * - A session lives from accept (or start, for --stdio) until its handles
 *   are closed; when the client goes away, its requests are cancelled down
 *   to the database and detached (r->s = NULL) to finish on their own.
 * - A request is answered exactly once (mw_request_reply) and freed once
 *   both the answer was given and the database work, if any, reported done
 *   (mw_request_db_done).
 *
 * Everything here runs on the loop thread, except what backend_sqlite does
 * with r->res on the thread pool while the request is in the database.
 */
#ifndef MW_WORKER_H
#define MW_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "backend.h"
#include "config.h"
#include "envelope.h"
#include "framing.h"
#include "payload.h"
#include "replica_route.h"
#include "result.h"

typedef struct mw_session mw_session;
typedef struct mw_sched mw_sched;   /* sched.c: one per alias */
typedef struct mw_lane mw_lane;     /* sched.c: one per session and alias */

/* Latency histogram (latency.c): counts[i] for bucket i, the last +Inf. */
#define MW_HIST_BUCKETS 18
typedef struct mw_hist {
    uint64_t counts[MW_HIST_BUCKETS + 1];
    uint64_t n, sum_ns;
} mw_hist;

typedef struct mw_counters {
    uint64_t requests, ok, invalid_input, busy, timeouts, cancelled, db_errors,
        internal_errors, frames_out, bytes_out, sessions_opened,
        sessions_refused, sessions_dropped;
} mw_counters;

struct mw_worker {
    uv_loop_t *loop;
    mw_config *cfg;
    mw_backend **backends;   /* one per alias, same order as cfg->aliases */
    size_t nbackends;
    mw_sched *scheds;        /* one per backend, same order */
    mw_session *sessions;
    size_t nsessions;
    uint64_t request_bytes;  /* held by all sessions' framers */
    uint64_t next_session_id;
    size_t inflight;         /* requests accepted and not yet answered */
    size_t live_requests;    /* requests not yet freed */
    mw_counters c;
    int shutting_down;
    int stopping;            /* backends are closing */
    size_t backends_open;
    uv_pipe_t listener;
    int listening;
    uv_signal_t sigterm, sigint, sighup;
    int argc;                /* the command line, read again on SIGHUP */
    char **argv;
    mw_hist *latency;        /* 2 per backend: db_query, db_exec */
    uv_timer_t grace;
    void *metrics;           /* metrics_http.c */
    mw_replica_set *replica_sets; /* replica_route.c: aliases with replicas */
    int exit_code;
};

struct mw_session {
    mw_worker *w;
    uint64_t id;
    int stdio;
    uv_pipe_t in;            /* the socket, or stdin */
    uv_pipe_t out;           /* stdout (stdio mode only) */
    mw_framer fr;
    mw_request *reqs;        /* in flight */
    size_t nreqs;
    mw_lane *lanes;          /* its requests waiting for each alias */
    size_t writes_running;   /* replica_route.c: its db_exec in flight */
    uint64_t last_write_ms;  /* ... and when the last one ended (uv_now) */
    int dead;                /* no more reading; closing */
    int handles;             /* open handles */
    size_t write_bytes;      /* memory held by writes not yet done */
    int read_paused;         /* too much unread: its requests wait */
    int read_stopped;        /* and so many wait that reading stopped */
    size_t request_bytes;    /* its framer's bytes, as counted in the worker's */
    uv_timer_t frame_timer;  /* a half-sent request frame stalls */
    uv_timer_t write_timer;  /* the client stops reading its responses */
    uv_timer_t hold_timer;   /* ... while its paused requests hold connections */
    mw_session *next, *prev;
    char rbuf[65536];
};

struct mw_request {
    mw_worker *w;
    mw_session *s;           /* NULL once the session went away */
    mw_request *next, *prev; /* in s->reqs while in flight */
    uint64_t id;
    mw_entry entry;
    uint64_t t_recv, t_start, t_exec_end;   /* uv_hrtime ns */
    uint32_t timeout_ms;
    uv_timer_t timer;
    int replied;
    int db_busy;             /* the backend has not called db_done yet */
    int stopping;            /* cancel asked of the backend */
    int paused;              /* the backend waits for the session's writes */
    mw_query q;
    int have_q;
    mw_result res;
    int have_res;
    mw_backend *backend;
    void *job;               /* the backend's state */
    mw_replica *route;       /* replica_route.c: the server it counts on */
    mw_request *route_next, *route_prev; /* in route's list */
    int rerouting;           /* cancelled there to run on the primary */
    int write_counted;       /* ... in its session's writes_running */
    /* sched.c: waiting for a slot of its alias, or holding one */
    mw_lane *lane;           /* NULL once forgotten */
    mw_request *qnext, *qprev; /* in lane's queue while queued */
    size_t alias_index;
    int queued;
    int max_wait_armed;      /* the timer runs for the alias's max_wait_ms */
    int in_slot;             /* counted in the alias's running */
    int counted_in_lane;     /* counted in lane's running */
    int64_t rows_affected;
    int has_last_id;
    int64_t last_id;
};

/* ---- session.c ---- */
/* Starts a session on an accepted socket (socket mode); takes ownership. */
int mw_session_start_socket(mw_worker *w, uv_stream_t *server);
/* Starts the stdio session. 0 or -1 (message on stderr). */
int mw_session_start_stdio(mw_worker *w);
/* Queues a frame (moves frame->data; frame is left empty). */
void mw_session_send(mw_session *s, molt_db_buf *frame);
/* Queues a frame made of n (at most MW_SEND_PIECES) buffers written in
 * order, each moved (left empty); empty pieces are skipped. */
#define MW_SEND_PIECES 3
void mw_session_send_pieces(mw_session *s, molt_db_buf *pieces, size_t n);
/* Removes a request from its session's table. */
void mw_session_unlink(mw_session *s, mw_request *r);
mw_request *mw_session_find(mw_session *s, uint64_t id);
/* Answers a request that never got a mw_request (framing/envelope errors). */
void mw_session_reply_error(mw_session *s, uint64_t id, mw_status st,
                            const char *msg);
/* Closes a session (client gone or fatal error): cancels its requests,
 * flushes what is queued (for at most write_timeout_ms), then closes. */
void mw_session_close(mw_session *s);
/* Refuses a connection over max_sessions: answers Busy and closes it. */
void mw_session_refuse(mw_worker *w, uv_stream_t *server);

/* ---- request.c ---- */
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
/* Backend start: a zeroed job of `size` bytes, or NULL after answering the
 * request InternalError (out of memory; the backend then returns). */
void *mw_request_job_new(mw_request *r, size_t size);
/* Stops a request: asks the backend to cancel and answers st (Timeout,
 * Cancelled, Busy) unless the session is gone. */
void mw_request_stop(mw_request *r, mw_status st, const char *msg);
/* (Re)starts r's timer to fire in ms: its deadline, or the alias's
 * max_wait_ms while it waits in sched.c (r->max_wait_armed). */
void mw_request_set_timer(mw_request *r, uint64_t ms);

/* ---- sched.c (fair sharing of each alias's connections) ---- */
int mw_sched_init(mw_worker *w);          /* after the backends: 0 or -1 */
void mw_sched_close(mw_worker *w);        /* closes its handles */
void mw_sched_free(mw_worker *w);         /* once they are closed */
int mw_sched_session_init(mw_session *s); /* 0 or -1 (out of memory) */
void mw_sched_session_free(mw_session *s);
/* Starts r's database work now or when its turn comes (r->backend set). */
void mw_sched_submit(mw_request *r);
/* The backend is done with r: its slot goes to the next in turn. */
void mw_sched_done(mw_request *r);
/* r leaves its session: a waiting r is never started; a running one no
 * longer counts in the session's share. */
void mw_sched_forget(mw_request *r);
/* s->read_paused changed: a paused session takes no share; one that reads
 * again has its waiting requests take their turn. */
void mw_sched_session_paused(mw_session *s);
/* 1 when a session other than r's, one that reads, waits for r's alias. */
int mw_sched_others_wait(const mw_request *r);
/* requests waiting for a slot, all aliases */
size_t mw_sched_waiting(const mw_worker *w);

/* ---- entries.c ---- */
void mw_entry_ping(mw_request *r);
void mw_entry_stats(mw_request *r);
void mw_entry_cancel(mw_request *r, const uint8_t *payload, size_t len);
void mw_entry_db(mw_request *r, const uint8_t *payload, size_t len);
/* packs the stats map (also for the Prometheus endpoint) */
void mw_stats_pack(mw_worker *w, msgpack_packer *pk);

/* ---- transport.c ---- */
/* Listens on cfg->socket_path (mode cfg->socket_mode; a stale socket file
 * is replaced only when nobody listens on it). 0 or -1 with err. */
int mw_transport_listen(mw_worker *w, char err[MW_ERR_SIZE]);
/* Stops accepting and removes the socket file. */
void mw_transport_stop(mw_worker *w);

/* ---- main.c ---- */
/* Starts the shutdown (SIGTERM/SIGINT, or stdin closed). */
void mw_worker_shutdown(mw_worker *w, int grace);
/* Called whenever a request is freed or a session closes: exits the loop
 * once shutdown is complete. */
void mw_worker_maybe_exit(mw_worker *w);
/* The backend of an alias. */
mw_backend *mw_worker_backend(mw_worker *w, const mw_alias *a);

/* ---- log.c ---- */
/* "json" (also NULL) or "text" */
void mw_log_set_format(const char *format);
/* err: the database error of a DbError answer (its SQLSTATE is logged), or NULL */
void mw_log_request(mw_request *r, mw_status st, const molt_db_error *err);
void mw_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- notify.c ---- */
/* Sends state ("READY=1", ...) to systemd's NOTIFY_SOCKET, when set. */
void mw_notify(const char *state);

/* ---- latency.c ---- */
/* Allocates the histograms once the backends are open. 0 or -1. */
int mw_latency_init(mw_worker *w);
/* Counts an answered db_query / db_exec. */
void mw_latency_observe(mw_request *r);
void mw_latency_render(mw_worker *w, molt_db_buf *b);

/* ---- metrics_http.c ---- */
int mw_metrics_http_start(mw_worker *w, const char *addr, char err[MW_ERR_SIZE]);
void mw_metrics_http_stop(mw_worker *w);

#endif
