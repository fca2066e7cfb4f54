/*
 * The seam between requests and databases. A backend serves one alias:
 * backend_pg.c (the molt_db pool) and backend_sqlite.c (SQLite on libuv's
 * thread pool).
 *
 * start: begins the database work of a db_query/db_exec request (its
 * parsed payload is r->q, its result builder r->res). The backend calls
 * mw_request_db_done exactly once, on the loop thread, never during start;
 * before it, r->server_lost = 1 when the work failed because the
 * connection to the server went away or could not be made (not for an
 * error of the request's own: its SQL, its values, its result's encoding).
 * Streaming parts go through mw_request_flush_parts.
 *
 * cancel: asks for the work to stop (timeout, cancel entry, disconnect,
 * shutdown); mw_request_db_done still comes, soon. May be called after the
 * work finished (then it does nothing).
 *
 * Backpressure: a backend producing a streamed result may pause when the
 * session has more than MW_PAUSE_BYTES queued for writing (set r->paused);
 * the session calls resume once the queue is below MW_RESUME_BYTES.
 *
 * The read-only guarantee is the backend's: r->q.write is 0 for db_query.
 *
 * Transactions (tx.h): tx_begin pins a connection for t (PostgreSQL BEGIN
 * at t's isolation, READ ONLY when t->read_only; SQLite BEGIN, IMMEDIATE
 * unless read only, on a query_only connection when read only) and sets
 * t->handle; tx_step runs a savepoint step or the outer COMMIT / ROLLBACK
 * on it. Both call mw_tx_done(t, ...) exactly once, on the loop thread;
 * after the outer COMMIT or ROLLBACK, ok or not, the connection went back
 * (a failed COMMIT rolled back) and t->handle is NULL. A db_query /
 * db_exec with r->tx set runs through start on t's connection, neither
 * beginning nor ending a transaction, and is cancelled as any other.
 */
#ifndef MW_BACKEND_H
#define MW_BACKEND_H

#include <msgpack.h>

#include "config.h"
#include "tx.h"

#define MW_PAUSE_BYTES ((size_t)8 << 20)
#define MW_RESUME_BYTES ((size_t)2 << 20)

typedef struct mw_worker mw_worker;
typedef struct mw_request mw_request;
typedef struct mw_backend mw_backend;

typedef struct mw_backend_ops {
    const char *kind;   /* "postgresql", "sqlite" */
    void (*start)(mw_backend *b, mw_request *r);
    void (*cancel)(mw_backend *b, mw_request *r);
    /* continues a streamed request paused for backpressure (r->paused was
     * set by the backend; the session calls this once its queue drained).
     * May be NULL for backends that never pause. */
    void (*resume)(mw_backend *b, mw_request *r);
    /* why requests wait: the connect error while the backend has no open
     * connection (owned by the backend, valid until it next connects), else
     * NULL. May be NULL for backends that always have one. */
    const char *(*connect_error)(mw_backend *b);
    /* packs one map of figures (size, in_use, idle, waiters, ...) */
    void (*stats)(mw_backend *b, msgpack_packer *pk);
    /* closes; calls done(w) once everything is released (may be later) */
    void (*close)(mw_backend *b, void (*done)(mw_worker *w));
    /* appends the backend's own Prometheus text (MOLT_DB_OK or an error);
     * NULL for backends without one */
    int (*prometheus)(mw_backend *b, molt_db_buf *out);
    void (*tx_begin)(mw_backend *b, mw_tx *t, uint32_t timeout_ms);
    void (*tx_step)(mw_backend *b, mw_tx *t, mw_tx_step step);
    /* connections with work of their own beyond the requests (opening,
     * draining after a cancel, rolling back; not a transaction's connection
     * with nothing running on it): a driven host keeps its loop turning
     * while there are any. NULL for backends without such work. */
    size_t (*busy)(mw_backend *b);
} mw_backend_ops;

struct mw_backend {
    const mw_backend_ops *ops;
    mw_alias *alias;
    mw_worker *w;
};

/* Open a backend for alias. 0, or -1 with err. */
int mw_backend_pg_open(mw_worker *w, mw_alias *alias, mw_backend **out,
                       char err[MW_ERR_SIZE]);
int mw_backend_sqlite_open(mw_worker *w, mw_alias *alias, mw_backend **out,
                           char err[MW_ERR_SIZE]);

#endif
