/*
 * One non-blocking PostgreSQL connection on a molt_db_loop (loop.h).
 *
 * A connection is a long-lived handle (as in libuv): molt_db_conn_connect
 * creates it, molt_db_conn_close ends it, and the close callback says when
 * its memory is gone. Requests (prepare, execute, query, simple_query) are
 * one-shot: each is queued in order, written at once (so many may be in
 * flight: the library's own pipeline, each request with its own Sync, so one
 * request's error never fails another's), and completes with exactly one
 * on_done call, in the order the requests were made.
 *
 * Threads: a connection and everything about it belongs to the thread
 * running its loop; call these functions and expect callbacks only there.
 *
 * Callbacks may call any function of this API, including
 * molt_db_conn_close on their own connection.
 */
#ifndef MOLT_DB_CONN_H
#define MOLT_DB_CONN_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/conninfo.h"
#include "molt_db/error.h"
#include "molt_db/loop.h"
#include "molt_db/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_conn molt_db_conn;

/* status: MOLT_DB_OK, or the error of the last host tried (ECONNECT,
 * EAUTH, ETLS, ESERVER, ETIMEDOUT, EPROTO, ENOMEM). err is set when status
 * is not OK and is valid during the call only. On failure the connection is
 * closed and freed after the callback returns: do not use it again. */
typedef void (*molt_db_connect_cb)(molt_db_conn *conn, int status,
                                   const molt_db_error *err, void *ud);
/* Called once the connection's memory can be reclaimed (it is, just after). */
typedef void (*molt_db_close_cb)(molt_db_conn *conn, void *ud);
/* NoticeResponse from the server; notice is valid during the call only. */
typedef void (*molt_db_notice_cb)(molt_db_conn *conn,
                                  const molt_db_error *notice, void *ud);

/* An established connection broke (I/O error, protocol error, the server
 * closed it). Runs once, after every pending request completed with the
 * error; only molt_db_conn_close is useful afterwards. err is valid during
 * the call only. */
typedef void (*molt_db_broken_cb)(molt_db_conn *conn, int code,
                                  const molt_db_error *err, void *ud);

/* A NotificationResponse (LISTEN/NOTIFY): pid is the notifying backend's,
 * channel and payload are the server's NUL-terminated text. Both point into
 * the connection's receive buffer and are valid during the call only: copy
 * what you keep. It may run at any time the connection reads, between or
 * during requests (never while reading is paused), before the on_done of
 * the request whose transaction committed the NOTIFY on this same
 * connection. The connection only delivers: LISTEN and UNLISTEN are SQL the
 * caller sends (quote the channel as an identifier), and a connection that
 * broke has forgotten them. */
typedef void (*molt_db_notification_cb)(molt_db_conn *conn, int32_t pid,
                                        const char *channel,
                                        const char *payload, void *ud);

typedef struct molt_db_conn_options {
    molt_db_notice_cb on_notice;  /* NULL: notices are dropped */
    void *notice_ud;
    molt_db_broken_cb on_broken;  /* NULL: not told */
    void *broken_ud;
    molt_db_notification_cb on_notification; /* NULL: dropped */
    void *notification_ud;
} molt_db_conn_options;

/*
 * Starts connecting to the hosts of ci in order (DNS, TCP or Unix socket,
 * TLS per sslmode, authentication, startup), each host with
 * ci->connect_timeout_ms, on loop (which must outlive the connection's
 * close callback). ci is copied; the caller may free it on return.
 * opts may be NULL. cb runs on the loop, never before this returns.
 * Returns MOLT_DB_OK and *out (usable at once: requests made before the
 * connection is ready are queued), or ENOMEM/EINVAL with nothing started.
 */
MOLT_DB_API
int molt_db_conn_connect(molt_db_loop *loop, const molt_db_conninfo *ci,
                         const molt_db_conn_options *opts,
                         molt_db_connect_cb cb, void *ud,
                         molt_db_conn **out, molt_db_error *err);

/*
 * Closes the connection: every request not yet done completes with
 * MOLT_DB_ECLOSED, a Terminate is sent when the socket is open, and cb (may
 * be NULL) runs when all handles are closed. Calling it twice is allowed
 * (the second call does nothing).
 */
MOLT_DB_API
void molt_db_conn_close(molt_db_conn *conn, molt_db_close_cb cb, void *ud);

/* 1 once the startup finished and the connection is not broken or closing. */
MOLT_DB_API
int molt_db_conn_is_ready(const molt_db_conn *conn);
/* Transaction status of the last ReadyForQuery: 'I', 'T', 'E'; 0 before. */
MOLT_DB_API
char molt_db_conn_tx_status(const molt_db_conn *conn);
/* A ParameterStatus value the server reported (server_version, TimeZone,
 * client_encoding, integer_datetimes, ...), or NULL. Owned by the
 * connection; valid until the server reports it again or the connection
 * closes. */
MOLT_DB_API
const char *molt_db_conn_parameter(const molt_db_conn *conn, const char *name);
/* BackendKeyData, for a CancelRequest. 0 on success, ESTATE before ready. */
MOLT_DB_API
int molt_db_conn_backend_key(const molt_db_conn *conn, int32_t *pid,
                             int32_t *secret_key);
/* 1 when the connection runs over TLS. */
MOLT_DB_API
int molt_db_conn_uses_tls(const molt_db_conn *conn);
/* Requests queued or in flight. */
MOLT_DB_API
size_t molt_db_conn_pending(const molt_db_conn *conn);
/* Bytes received from and sent to the socket so far (protocol bytes, the
 * plaintext under TLS). */
MOLT_DB_API
void molt_db_conn_bytes(const molt_db_conn *conn, uint64_t *in, uint64_t *out);

/* ---- read flow control ------------------------------------------------- */

/*
 * Backpressure for a consumer slower than the server (a client that reads a
 * streamed result slowly). molt_db_conn_pause_reading stops reading results:
 * no result callback (on_columns, on_row, on_command, on_data, on_done, the
 * prepare and cancel-free callbacks of this connection) runs until
 * molt_db_conn_resume_reading. Called from a result callback it takes effect
 * when that callback returns; messages already received stay in the
 * receive buffer (at most one read chunk, 64 KiB, or one large message),
 * and once the socket buffers fill the server blocks in its send and holds
 * its snapshot and locks. Sending is not paused: new requests are written.
 * Both calls are idempotent (no nesting count) and allowed in any state; a
 * pause made before the connection is ready applies once it is.
 *
 * Timers: the connection has no per-request deadline of its own, so nothing
 * times out because of a pause; deadlines kept by the caller (the pool's)
 * keep running. The connect timeout is not affected (the startup always
 * reads).
 *
 * Cancel while paused: molt_db_conn_cancel sends its CancelRequest as
 * usual, but PostgreSQL acts on a query cancel only once its blocked send
 * completes, so the cancelled statement ends (57014) only after the caller
 * resumes reading; the rows read meanwhile still reach on_row (return a
 * negative code there to skip them). molt_db_conn_close works while paused:
 * pending requests complete with MOLT_DB_ECLOSED. A server that goes away
 * while reading is paused is noticed on the next write or after the resume.
 *
 * molt_db_conn_resume_reading never runs callbacks itself: what was held
 * back is dispatched from the loop, before it next waits for I/O.
 */
MOLT_DB_API
void molt_db_conn_pause_reading(molt_db_conn *conn);
MOLT_DB_API
void molt_db_conn_resume_reading(molt_db_conn *conn);
/* 1 between a pause and the following resume. */
MOLT_DB_API
int molt_db_conn_reading_paused(const molt_db_conn *conn);

/* A parameter value. format MOLT_DB_FORMAT_TEXT with oid 0 binds the way an
 * untyped literal would (the server infers the type). len -1 is NULL. */
typedef struct molt_db_param {
    uint32_t oid;
    int16_t format;
    int32_t len;
    const uint8_t *data;
} molt_db_param;

/*
 * How a request hands back its results. All pointers passed to callbacks
 * point into the connection's receive buffer and are valid during the call
 * only: copy or decode what you keep. Rows stream: nothing accumulates.
 */
typedef struct molt_db_result_handler {
    /* Before the rows of each result set (for execute: from the statement's
     * description). Return MOLT_DB_OK to go on, or a negative code to fail
     * the request (the rest of its rows are skipped; on_done gets that
     * code). May be NULL. */
    int (*on_columns)(void *ud, const molt_db_column *cols, size_t ncols);
    /* One DataRow; fields[i].len is -1 for NULL. Same return rule. May be
     * NULL. */
    int (*on_row)(void *ud, const molt_db_field *fields, size_t nfields);
    /* Each CommandComplete, with its tag ("SELECT 3", "INSERT 0 1"). May be
     * NULL. */
    void (*on_command)(void *ud, const char *tag);
    /* Exactly once, last. status MOLT_DB_OK or a negative code; err is set
     * when status is not OK (ESERVER: sqlstate and fields), valid during the
     * call only. */
    void (*on_done)(void *ud, int status, const molt_db_error *err);
    void *ud;
} molt_db_result_handler;

/* A prepared statement as the server described it. */
typedef struct molt_db_stmt {
    char *name;               /* "" for the unnamed statement */
    size_t nparams;
    uint32_t *param_oids;     /* as the server resolved them */
    size_t ncols;             /* 0 when the statement returns no rows */
    molt_db_column *cols;     /* names owned by the stmt */
    int16_t *result_formats;  /* binary where the library decodes the type */
} molt_db_stmt;

/* Frees a statement description (not the server-side statement: use
 * molt_db_conn_close_stmt for that). NULL is allowed. */
MOLT_DB_API
void molt_db_stmt_free(molt_db_stmt *stmt);

/* stmt is owned by the callee (free with molt_db_stmt_free); NULL on error. */
typedef void (*molt_db_prepare_cb)(void *ud, int status, molt_db_stmt *stmt,
                                   const molt_db_error *err);

/*
 * Parse + Describe + Sync: prepares `name` (NULL or "" for the unnamed
 * statement) with param_oids (0 entries: inferred). Returns MOLT_DB_OK
 * (cb will run), or ENOMEM/EINVAL/ECLOSED (cb will not run).
 */
MOLT_DB_API
int molt_db_conn_prepare(molt_db_conn *conn, const char *name, const char *sql,
                         size_t nparams, const uint32_t *param_oids,
                         molt_db_prepare_cb cb, void *ud);

/*
 * One request on the connection: what it runs and how it goes out. Every
 * statement request is this descriptor given to molt_db_conn_submit; the
 * functions after it are shorthands for one mode each.
 */
typedef enum molt_db_run_mode {
    /* Bind/Execute/Sync of a prepared statement (stmt) */
    MOLT_DB_RUN_PREPARED = 1,
    /* as PREPARED, for a statement the caller knows only reads: it may
     * share one Sync with other such executions (molt_db_conn_execute_batched) */
    MOLT_DB_RUN_PREPARED_BATCHED,
    /* sql through the unnamed statement: Parse/Describe/Flush, then
     * Bind/Execute/Sync with binary results (molt_db_conn_query) */
    MOLT_DB_RUN_UNNAMED,
    /* sql through the unnamed statement in one round trip, text results
     * (molt_db_conn_query_text) */
    MOLT_DB_RUN_UNNAMED_TEXT,
    /* sql as a simple-protocol Query: any number of ;-separated
     * statements, text results, no parameters (molt_db_conn_simple_query) */
    MOLT_DB_RUN_SIMPLE
} molt_db_run_mode;

typedef struct molt_db_frame molt_db_frame;

typedef struct molt_db_request {
    molt_db_run_mode mode;
    const char *sql;               /* the UNNAMED modes and SIMPLE */
    const molt_db_stmt *stmt;      /* the PREPARED modes; must outlive on_done */
    size_t nparams;                /* PREPARED: stmt->nparams */
    const molt_db_param *params;   /* copied before submit returns */
    const molt_db_frame *frame;    /* NULL, or a frame (see below) around
                                      the statement: PREPARED and the
                                      UNNAMED modes */
} molt_db_request;

/*
 * Sends a request (queued behind those in flight). Returns MOLT_DB_OK
 * (h->on_done will run), or MOLT_DB_EINVAL (a field the mode needs is
 * missing or does not fit: parameter count, a frame where the mode takes
 * none), MOLT_DB_ENOMEM, MOLT_DB_ECLOSED (h->on_done will not run).
 */
MOLT_DB_API
int molt_db_conn_submit(molt_db_conn *conn, const molt_db_request *req,
                        const molt_db_result_handler *h);

/*
 * Bind + Execute + Sync on a prepared statement. params are copied into the
 * send buffer before this returns. stmt must stay alive until h->on_done.
 * Results come back in binary for the types the library decodes
 * (stmt->result_formats), text for the others.
 * Returns MOLT_DB_OK (on_done will run) or ENOMEM/EINVAL/ECLOSED.
 */
MOLT_DB_API
int molt_db_conn_execute(molt_db_conn *conn, const molt_db_stmt *stmt,
                         size_t nparams, const molt_db_param *params,
                         const molt_db_result_handler *h);

/*
 * As molt_db_conn_execute, for a statement the caller knows only reads: it
 * may share one Sync (so one implicit transaction, one commit and one
 * server flush) with the other batched executions made before the
 * connection next writes (once per loop iteration) or before any other
 * request; a batch of one is a plain execute. A batch of two or more first
 * runs a guard that makes its transaction read only, so a write in it
 * fails with SQLSTATE 25006 instead of being rolled back unseen. All
 * members complete at the batch's ReadyForQuery, in order. When a member
 * fails, the server skips the rest of its batch: those complete with
 * MOLT_DB_ESKIPPED (they did not run; sending them again is safe). Rows of
 * the members before the failure were delivered and stay valid. Never
 * batch a statement that returns no rows (a transaction statement, SET,
 * a write without RETURNING). Without a ready connection (or once a guard
 * failed on it) this is molt_db_conn_execute.
 */
MOLT_DB_API
int molt_db_conn_execute_batched(molt_db_conn *conn, const molt_db_stmt *stmt,
                                 size_t nparams, const molt_db_param *params,
                                 const molt_db_result_handler *h);

/*
 * One statement through the unnamed statement: Parse/Describe/Flush, then,
 * once the Describe is answered, Bind/Execute/Sync with per-column result
 * formats (two round trips, one Sync: behind PgBouncer in transaction mode
 * both steps reach the same server connection). Nothing else goes out on
 * the connection between the two steps; requests made meanwhile wait.
 * params are copied before this returns.
 */
MOLT_DB_API
int molt_db_conn_query(molt_db_conn *conn, const char *sql, size_t nparams,
                       const molt_db_param *params,
                       const molt_db_result_handler *h);

/*
 * A frame around one statement, sent with it in one round trip: `before`
 * (e.g. "BEGIN READ ONLY"), the statement and `after` (e.g. "ROLLBACK")
 * are each parsed, bound and executed through the unnamed statement and
 * portal under ONE Sync, so the server answers with one ReadyForQuery and
 * skips the statement when `before` fails. When the server reports an
 * error before that ReadyForQuery (`before`, the statement or `after`
 * failed, or was cancelled), it skipped `after`: the connection then sends
 * `after` as a Query message of its own at once, and completes the request
 * at that Query's ReadyForQuery (a second round trip, on the error path
 * only). Both are SQL without parameters (`before` and `after` one
 * statement each); their own results are not shown to the handler: it sees
 * the statement's columns, rows and command tag only. on_done gets the
 * first error (the statement's when it is the one that failed) and runs
 * after `after` completed; with before/after as BEGIN/ROLLBACK the
 * connection is idle ('I') again by then, also after an error. Nothing is
 * written on the connection behind a framed request until it completed
 * (so a request never runs inside another's failed transaction): requests
 * made meanwhile wait in order.
 */
struct molt_db_frame {
    const char *before;
    const char *after;
};

/* molt_db_conn_execute inside a frame (NULL: no frame; both members must
 * be set). The frame's strings are encoded before this returns. */
MOLT_DB_API
int molt_db_conn_execute_framed(molt_db_conn *conn, const molt_db_stmt *stmt,
                                size_t nparams, const molt_db_param *params,
                                const molt_db_frame *frame,
                                const molt_db_result_handler *h);
/* molt_db_conn_query framed: `before` goes ahead of the first step,
 * `after` with the second step, ahead of its Sync; frame is copied. */
MOLT_DB_API
int molt_db_conn_query_framed(molt_db_conn *conn, const char *sql,
                              size_t nparams, const molt_db_param *params,
                              const molt_db_frame *frame,
                              const molt_db_result_handler *h);

/*
 * One statement through the unnamed statement and portal in one round trip
 * (Parse/Bind/Describe portal/Execute/Sync), results in text, framed when
 * frame is not NULL. Nothing named outlives the request (safe behind
 * PgBouncer's transaction mode, as the simple protocol is), but unlike
 * molt_db_conn_simple_query the server refuses several ';'-separated
 * statements (42601), so the statement cannot step out of a frame with a
 * COMMIT of its own. params are copied before this returns.
 */
MOLT_DB_API
int molt_db_conn_query_text(molt_db_conn *conn, const char *sql,
                            size_t nparams, const molt_db_param *params,
                            const molt_db_frame *frame,
                            const molt_db_result_handler *h);

/*
 * The simple protocol (Query): any number of ;-separated statements, text
 * results. on_columns/on_row/on_command run for each result set. If one
 * statement fails, the rest are skipped by the server and on_done gets the
 * error.
 */
MOLT_DB_API
int molt_db_conn_simple_query(molt_db_conn *conn, const char *sql,
                              const molt_db_result_handler *h);

/* Close (server side) a prepared statement: Close + Sync. h may be NULL. */
MOLT_DB_API
int molt_db_conn_close_stmt(molt_db_conn *conn, const char *name,
                            const molt_db_result_handler *h);

/* ---- cancellation ------------------------------------------------------ */

typedef void (*molt_db_cancel_cb)(void *ud, int status, const molt_db_error *err);

/*
 * Asks the server to cancel what this connection's backend runs now: a
 * CancelRequest over a new, non-blocking connection to the same address
 * (TLS when this connection uses TLS), with its own deadline of timeout_ms
 * (> 0). cb (may be NULL) gets MOLT_DB_OK once the server took the request
 * and closed that connection, or ETIMEDOUT / ECONNECT / ETLS / ENOMEM. The
 * server may have finished the statement first; the statement that is
 * cancelled completes through its own on_done, with MOLT_DB_ESERVER and
 * SQLSTATE 57014. With several requests in flight the server cancels the one
 * it is running when the CancelRequest arrives. The cancel outlives the
 * connection if that closes first (cb still runs).
 * Returns MOLT_DB_OK (cb will run), ESTATE before the connection is ready,
 * ENOMEM.
 */
MOLT_DB_API
int molt_db_conn_cancel(molt_db_conn *conn, int timeout_ms,
                        molt_db_cancel_cb cb, void *ud);

/* ---- COPY -------------------------------------------------------------- */

/* COPY ... TO STDOUT: every CopyData payload goes to on_data (pointer into
 * the receive buffer, valid during the call; return a negative code to fail
 * the request: the rest of the data is skipped), then on_done once. With
 * FORMAT binary the payloads concatenate to the binary COPY file format. */
typedef struct molt_db_copy_out_handler {
    int (*on_data)(void *ud, const uint8_t *data, size_t len);
    void (*on_done)(void *ud, int status, const molt_db_error *err,
                    uint64_t rows);
    void *ud;
} molt_db_copy_out_handler;

MOLT_DB_API
int molt_db_conn_copy_out(molt_db_conn *conn, const char *sql,
                          const molt_db_copy_out_handler *h);

/* COPY ... FROM STDIN: on_ready runs when the server is ready for data; from
 * then on the caller sends with molt_db_conn_copy_data and ends with
 * molt_db_conn_copy_end (or molt_db_conn_copy_fail). on_drain (may be NULL)
 * runs whenever the send buffer has emptied, for flow control with
 * molt_db_conn_send_pending. on_done runs once with the rows copied. */
typedef struct molt_db_copy_in_handler {
    void (*on_ready)(void *ud);
    void (*on_drain)(void *ud);
    void (*on_done)(void *ud, int status, const molt_db_error *err,
                    uint64_t rows);
    void *ud;
} molt_db_copy_in_handler;

MOLT_DB_API
int molt_db_conn_copy_in(molt_db_conn *conn, const char *sql,
                         const molt_db_copy_in_handler *h);
/* Queues one CopyData message (len may be 0..1 GiB). ESTATE when no COPY
 * FROM STDIN is waiting for data on this connection. */
MOLT_DB_API
int molt_db_conn_copy_data(molt_db_conn *conn, const uint8_t *data, size_t len);
/* CopyDone: the server then commits the rows and on_done runs. */
MOLT_DB_API
int molt_db_conn_copy_end(molt_db_conn *conn);
/* CopyFail: the server aborts the COPY; on_done gets ESERVER (57014). */
MOLT_DB_API
int molt_db_conn_copy_fail(molt_db_conn *conn, const char *reason);
/* Bytes queued for sending and not yet written to the socket. */
MOLT_DB_API
size_t molt_db_conn_send_pending(const molt_db_conn *conn);

#ifdef __cplusplus
}
#endif
#endif
