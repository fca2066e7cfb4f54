/*
 * The worker (worker.c): one loop, the backends (one per alias), the
 * sessions, the counters, and shutdown. main.c reads the configuration,
 * opens a worker, chooses its transport (transport.c or the stdio session)
 * and runs it; a C test does the same on a loop of its own.
 *
 * Life cycles (libuv's model: the close callback frees):
 * - A session (session.h) lives from accept (or start, for --stdio) until
 *   its handles are closed; when the client goes away, its requests are
 *   cancelled down to the database and detached to finish on their own.
 * - A request (request.h) is answered exactly once and freed once both the
 *   answer was given and the database work, if any, reported done.
 * - Both are freed through the reaper (reap.h), after the code that ended
 *   them returned to the loop; their timed events are entries of the
 *   worker's deadlines (deadline.h), not handles of their own.
 * - The worker ends once shutdown began, every request was answered and
 *   freed, every session closed and every backend closed: then the loop
 *   stops and mw_worker_run returns.
 *
 * Everything here runs on the loop thread.
 */
#ifndef MW_WORKER_H
#define MW_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "deadline.h"
#include "freelist.h"
#include "idmap.h"
#include "reap.h"

typedef struct mw_worker mw_worker;
typedef struct mw_backend mw_backend;   /* backend.h */
typedef struct mw_session mw_session;   /* session.h */
typedef struct mw_sched mw_sched;       /* sched.c: one per alias */
typedef struct mw_hist mw_hist;         /* latency.h */
typedef struct mw_replica_set mw_replica_set; /* replica_route.h */

typedef struct mw_counters {
    uint64_t requests, ok, invalid_input, busy, timeouts, cancelled, db_errors,
        internal_errors, frames_out, bytes_out, sessions_opened,
        sessions_refused, sessions_dropped;
} mw_counters;

struct mw_worker {
    uv_loop_t *loop;
    mw_config *cfg;
    mw_backend **backends;   /* one per alias, same order as cfg->aliases;
                                an alias's replicas follow it */
    size_t nbackends;
    mw_sched *scheds;        /* one per backend, same order */
    mw_session *sessions;
    size_t nsessions;
    mw_freelist free_sessions;  /* released sessions kept for reuse */
    mw_freelist free_requests;  /* ... and requests */
    mw_idmap ids;            /* the requests in flight by id (session.c) */
    uint64_t request_bytes;  /* held by all sessions' framers */
    uint64_t held_request_bytes; /* held by parsed requests not yet freed */
    uint64_t next_session_id;
    size_t inflight;         /* requests accepted and not yet answered */
    size_t live_requests;    /* requests not yet freed */
    size_t live_txs;         /* transactions not yet freed (tx.h) */
    uint64_t last_tx_id;     /* tx.c: from a random start, so an id never
                                names a transaction of another connection
                                or worker process the client reached before */
    mw_counters c;
    int shutting_down;
    int stopping;            /* backends are closing */
    size_t backends_open;
    uv_pipe_t listener;      /* transport.c */
    int listening;
    uv_signal_t sigterm, sigint, sighup;  /* signals.c */
    int signals;             /* they were started */
    int argc;                /* the command line, read again on SIGHUP */
    char **argv;
    mw_hist *latency;        /* 2 per backend: db_query, db_exec */
    uv_timer_t grace;
    mw_deadlines deadlines;  /* requests', sessions' and aliases' timed events */
    mw_reaper reaper;        /* frees ended requests and sessions (reap.h) */
    void *metrics;           /* metrics_http.c */
    mw_replica_set *replica_sets; /* replica_route.c: aliases with replicas */
    struct mw_listen *listen; /* listen.c; NULL until the first listener */
    int exit_code;
};

/* Opens the backends of cfg's aliases on loop, with the scheduler and the
 * latency histograms. 0, or -1 with err: the worker then is shutting down
 * with exit code 1, and mw_worker_run closes what was opened. cfg must
 * outlive the worker. */
int mw_worker_open(mw_worker *w, uv_loop_t *loop, mw_config *cfg,
                   char err[MW_ERR_SIZE]);
/* Starting to serve failed (transport, metrics): exit code 1, shutdown now. */
void mw_worker_fail(mw_worker *w);
/* Runs the loop until shutdown is complete, then frees the worker (not
 * cfg, not the loop's other handles) and closes the loop. Returns the exit
 * code: 0, or 1 when opening or serving failed. */
int mw_worker_run(mw_worker *w);
/* Starts the shutdown (SIGTERM/SIGINT, or stdin closed): grace lets
 * requests run up to shutdown_grace_ms, then they are answered Busy. */
void mw_worker_shutdown(mw_worker *w, int grace);
/* Called whenever a request is freed or a session closes: stops the loop
 * once shutdown is complete. */
void mw_worker_maybe_exit(mw_worker *w);
/* The backend of an alias. */
mw_backend *mw_worker_backend(mw_worker *w, const mw_alias *a);

#endif
