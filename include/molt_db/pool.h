/*
 * A pool of PostgreSQL connections on one molt_db_loop (loop.h).
 *
 * The pool is a handle (as in libuv): molt_db_pool_open creates it,
 * molt_db_pool_close ends it, and the close callback says when its memory is
 * gone. A pool request (molt_db_pool_query) is one-shot: it has a deadline
 * and can be cancelled from the moment it is made, waits in a FIFO queue for
 * a connection when none is free, runs through the statement cache, and
 * completes with exactly one on_done call.
 *
 * The pool is the only place that decides which request gets which
 * connection. A connection carries at most `pipeline_depth` pool requests at
 * once (each with its own Sync, so one request's error never fails
 * another's; requests marked read_only may share one, and the pool sends
 * again, transparently, those the server skipped for a neighbour's error). A connection goes back to the pool only when the server said
 * it is idle ('I' in ReadyForQuery); one left in a transaction is rolled
 * back, and one whose state is unknown (a cancel that did not succeed, a
 * broken socket, a failed rollback) is closed and replaced.
 *
 * Threads: a pool and everything about it belongs to the thread running its
 * loop; call these functions and expect callbacks only there. Callbacks may
 * call any function of this API, including molt_db_pool_close.
 *
 * LISTEN/NOTIFY: the pool's connections drop notifications (a pooled
 * connection serves many callers, and LISTEN is session state: a request
 * that runs it should set close_conn). A listener opens a connection of its
 * own with molt_db_conn_connect and molt_db_conn_options.on_notification
 * (conn.h).
 *
 * Full description, defaults and what is not done yet: docs/pool.md.
 */
#ifndef MOLT_DB_POOL_H
#define MOLT_DB_POOL_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/conn.h"
#include "molt_db/conninfo.h"
#include "molt_db/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_pool molt_db_pool;

/* How a pool request reaches the server. */
typedef enum molt_db_stmt_mode {
    /* Parse once per connection under a stable name derived from a hash of
     * the SQL text and parameter types ("molt_" + 16 hex digits), then
     * Bind/Execute: one round trip per query once prepared. Works behind
     * PgBouncer in transaction mode only from PgBouncer 1.21 on
     * (max_prepared_statements > 0), which tracks named statements. */
    MOLT_DB_STMT_CACHED = 0,
    /* molt_db_conn_query: Parse/Describe/Flush, then Bind/Execute/Sync with
     * binary results where the library decodes the type: two round trips,
     * one Sync, nothing kept between requests, so it works behind any
     * PgBouncer in transaction mode. */
    MOLT_DB_STMT_UNNAMED,
    /* The simple Query message: nothing outlives one message, so it is safe
     * behind any PgBouncer mode. Text results; several ;-separated
     * statements allowed. Parameters are refused (MOLT_DB_EINVAL): values are
     * never inlined into SQL text. */
    MOLT_DB_STMT_SIMPLE
} molt_db_stmt_mode;

/* Times are milliseconds. See molt_db_pool_settings_init for defaults. */
typedef struct molt_db_pool_settings {
    int min_conns;                 /* kept open, also when idle */
    int max_conns;                 /* never more open or opening */
    int64_t max_idle_ms;           /* an idle connection above min_conns is
                                      closed after this; 0: never */
    int64_t max_lifetime_ms;       /* a connection is closed (when idle) and
                                      replaced after this, minus a random
                                      jitter of up to lifetime_jitter_pct; 0:
                                      never */
    int lifetime_jitter_pct;       /* 0..50 */
    int connect_timeout_ms;        /* per host attempt; 0: the conninfo's */
    int query_timeout_ms;          /* default request deadline (from the
                                      moment the request is made); 0: none */
    int statement_timeout_ms;      /* server-side statement_timeout of every
                                      connection (sent as `-c
                                      statement_timeout=N` in the startup
                                      options); 0: the server's setting */
    int client_check_ms;           /* server-side
                                      client_connection_check_interval of
                                      every connection (PostgreSQL 14+), sent
                                      the same way: while a query runs the
                                      server checks that the client is still
                                      there, so a client process that died
                                      leaves no query running to its end.
                                      0: the server's setting. Behind
                                      PgBouncer, which refuses the `options`
                                      startup parameter, keep both at 0 */
    int max_wait_ms;               /* longest wait for a connection; past it
                                      the request fails with MOLT_DB_EBUSY
                                      "pool exhausted". 0: no limit */
    int health_check_interval_ms;  /* an idle connection unused this long is
                                      pinged (empty query) before reuse; 0:
                                      never */
    int statement_cache_size;      /* statements per connection (cached mode);
                                      least recently used are closed */
    molt_db_stmt_mode statement_mode;
    int pipeline_depth;            /* pool requests in flight per connection;
                                      1: no pipelining */
    int cancel_timeout_ms;         /* deadline of one CancelRequest and of the
                                      wait for the cancelled query to end */
    int reconnect_min_ms;          /* backoff after a failed connect: doubles
                                      from min to max, with jitter; the next
                                      attempt is made by the first request
                                      after it (or for min_conns) */
    int reconnect_max_ms;
} molt_db_pool_settings;

/* Fills *s with the defaults (docs/pool.md has the table). */
MOLT_DB_API
void molt_db_pool_settings_init(molt_db_pool_settings *s);

/*
 * Creates a pool on loop (which must outlive the pool's close callback)
 * that connects with ci (copied; the caller may free it on
 * return) and opens min_conns connections in the background. settings may
 * be NULL (defaults). Returns MOLT_DB_OK and *out, MOLT_DB_ECONFIG with err
 * saying which setting is wrong, or MOLT_DB_ENOMEM. Nothing runs before this
 * returns.
 */
MOLT_DB_API
int molt_db_pool_open(molt_db_loop *loop, const molt_db_conninfo *ci,
                      const molt_db_pool_settings *settings,
                      molt_db_pool **out, molt_db_error *err);

typedef void (*molt_db_pool_close_cb)(molt_db_pool *pool, void *ud);

/*
 * Closes the pool: waiting and running requests complete with
 * MOLT_DB_ECLOSED (from the loop, not during this call), connections are
 * closed, and cb (may be NULL) runs once everything is gone; the pool's
 * memory is freed just after cb returns. A second call does nothing.
 */
MOLT_DB_API
void molt_db_pool_close(molt_db_pool *pool, molt_db_pool_close_cb cb,
                        void *ud);

/* Identifies a pool request for molt_db_pool_cancel; never 0. An id stays
 * unique for the pool's life (stale ids are recognised, not reused). */
typedef uint64_t molt_db_pool_req_id;

typedef struct molt_db_pool_query_options {
    int timeout_ms;    /* deadline from now; 0: the pool's query_timeout_ms;
                          < 0: none */
    const char *tag;   /* label for metrics (copied); NULL: none */
    int read_only;     /* the caller promises the statement only reads (a
                          SELECT without side effects): on a pipelined
                          connection it may share one Sync with other
                          read-only requests (fewer server commits and
                          flushes). The server enforces the promise: a write
                          in a shared batch fails with SQLSTATE 25006. A
                          request the server skipped because a neighbour in
                          its batch failed is sent again, once, on its own;
                          the caller never sees the skip. Ignored inside
                          transactions and outside the cached mode. Also
                          makes the request resendable: a neighbour's
                          CancelRequest need not wait for it, and if that
                          cancel stops it instead it is sent again
                          (docs/pool.md, Cancellation). */
    int read_only_tx;  /* 1: run inside BEGIN READ ONLY ... ROLLBACK sent
                          with the statement in one round trip
                          (molt_db_conn_execute_framed): a write fails with
                          25006 and nothing the statement sets, session
                          settings included, survives it. In simple mode the
                          statement goes through molt_db_conn_query_text
                          (one statement, text results). Not inside a
                          transaction (EINVAL). */
    int close_conn;    /* 1: the statement may leave session state behind
                          (advisory locks, LISTEN, SET...): its connection
                          takes no request after it and is closed once it
                          has ended (inside a transaction: once that ends) */
} molt_db_pool_query_options;

/*
 * Runs one statement on some connection of the pool. sql and params are
 * copied before this returns. h's callbacks run as for molt_db_conn_execute
 * (pointers valid during the call only). on_columns may run twice when the
 * statement was transparently re-prepared (the server said the cached plan
 * changed, SQLSTATE 0A000, or the statement no longer exists, 26000); rows
 * always follow the last on_columns. A request that already delivered rows
 * is never retried.
 *
 * on_done's status: MOLT_DB_OK; MOLT_DB_ESERVER (err has the SQLSTATE);
 * MOLT_DB_ETIMEDOUT (deadline passed); MOLT_DB_ECANCELED
 * (molt_db_pool_cancel); MOLT_DB_EBUSY (no connection within max_wait_ms:
 * "pool exhausted"); MOLT_DB_ECONNECT (the pool cannot connect: err has
 * the connect error, with the server's SQLSTATE such as 28P01 or 3D000, else
 * 08001 (refused, unresolvable, timed out) or 08006 (lost during start-up);
 * it comes as soon as an attempt fails while the pool has no connection,
 * and at once to requests made while the next attempt waits for its
 * backoff); MOLT_DB_EIO /
 * MOLT_DB_EPROTO (the connection broke under the request); MOLT_DB_ECLOSED
 * (the pool was closed). After a cancel or timeout on_done runs at once; the
 * server-side query is cancelled in the background and its connection is
 * reused only once the server confirmed it idle.
 *
 * opts may be NULL. *id (may be NULL) gets the request's id. Returns
 * MOLT_DB_OK (on_done will run, never during this call), or EINVAL (NULL
 * sql or h->on_done, parameters in simple mode), ECLOSED (the pool is
 * closing), ENOMEM, and then on_done will not run.
 */
MOLT_DB_API
int molt_db_pool_query(molt_db_pool *pool, const char *sql, size_t nparams,
                       const molt_db_param *params,
                       const molt_db_result_handler *h,
                       const molt_db_pool_query_options *opts,
                       molt_db_pool_req_id *id);

/*
 * Cancels a request: a waiting one leaves the queue at once; a running one
 * gets a CancelRequest (sent once no other live request shares its
 * connection, so the cancel cannot hit an innocent request). Its on_done
 * runs with MOLT_DB_ECANCELED from the loop soon after (not during this
 * call). Returns MOLT_DB_OK, or MOLT_DB_ESTATE when the request already
 * completed or its on_done is already due (a cancel racing with completion:
 * nothing happens), or EINVAL for an id this pool never gave.
 */
MOLT_DB_API
int molt_db_pool_cancel(molt_db_pool *pool, molt_db_pool_req_id id);

/*
 * Read backpressure for a consumer slower than the server: pause stops
 * reading results on the running request's connection (as
 * molt_db_conn_pause_reading: its callbacks stop, the server blocks in its
 * send), resume reads on. Called from on_row, the pause takes effect when
 * that callback returns. With pipeline_depth > 1 the requests behind it on
 * that connection wait too (their results come after its own).
 *
 * The request's deadline keeps running while it is paused. A cancel, a
 * timeout or the pool's close resumes reading by itself: the server acts on
 * a query cancel only once its send completes, so the rest of the rows are
 * read and dropped until the cancel ends the statement; the connection is
 * then reused once the server confirmed it idle, or closed when that takes
 * longer than the drain deadline (2 x cancel_timeout_ms).
 *
 * Returns MOLT_DB_OK, MOLT_DB_ESTATE when the request is not running (still
 * waiting for a connection, completed, or its on_done is due), EINVAL for an
 * id this pool never gave. Pausing twice or resuming an unpaused request
 * does nothing.
 */
MOLT_DB_API
int molt_db_pool_pause(molt_db_pool *pool, molt_db_pool_req_id id);
MOLT_DB_API
int molt_db_pool_resume(molt_db_pool *pool, molt_db_pool_req_id id);

/* ---- transactions ------------------------------------------------------ */

/*
 * A transaction pins one connection from BEGIN to COMMIT or ROLLBACK; a
 * pinned connection is never pipelined with requests from outside it.
 * Scopes nest: molt_db_tx_begin_nested opens a SAVEPOINT, and
 * molt_db_tx_commit / molt_db_tx_rollback close the innermost open scope
 * (RELEASE SAVEPOINT, or ROLLBACK TO SAVEPOINT then RELEASE; at the outer
 * scope COMMIT or ROLLBACK, which ends the transaction and frees it once
 * its callback returned).
 *
 * After an error or a cancel inside the transaction the server refuses
 * further statements (25P02) until the innermost scope is rolled back;
 * COMMIT of a failed transaction is a rollback and reports MOLT_DB_ESTATE
 * "transaction was rolled back". When the transaction ends, the connection
 * goes back to the pool only if the server says it is idle; otherwise it is
 * rolled back, and closed if that fails.
 *
 * Every transaction must be ended (commit or rollback at the outer scope),
 * also after errors and after molt_db_pool_close: the pool's close callback
 * waits for that. Once the connection is lost, queries fail with
 * MOLT_DB_ECLOSED and ending the transaction reports MOLT_DB_ECLOSED.
 */
typedef struct molt_db_tx molt_db_tx;

typedef enum molt_db_isolation {
    MOLT_DB_ISOLATION_DEFAULT = 0,  /* the server's default_transaction_isolation */
    MOLT_DB_ISOLATION_READ_COMMITTED,
    MOLT_DB_ISOLATION_REPEATABLE_READ,
    MOLT_DB_ISOLATION_SERIALIZABLE
} molt_db_isolation;

typedef struct molt_db_tx_options {
    molt_db_isolation isolation;
    int read_only;
    int deferrable;    /* with serializable and read_only */
    int timeout_ms;    /* deadline of acquire + BEGIN; as for queries */
} molt_db_tx_options;

/* tx is NULL unless status is MOLT_DB_OK. */
typedef void (*molt_db_tx_begin_cb)(void *ud, int status, molt_db_tx *tx,
                                    const molt_db_error *err);
typedef void (*molt_db_tx_done_cb)(void *ud, int status,
                                   const molt_db_error *err);

/*
 * Waits (FIFO, with the other requests) for an idle connection and sends
 * BEGIN with the options (opts may be NULL). cb runs once, from the loop.
 * *id (may be NULL) cancels the wait with molt_db_pool_cancel. Returns
 * MOLT_DB_OK (cb will run), EINVAL, ECLOSED, ENOMEM.
 */
MOLT_DB_API
int molt_db_pool_begin(molt_db_pool *pool, const molt_db_tx_options *opts,
                       molt_db_tx_begin_cb cb, void *ud,
                       molt_db_pool_req_id *id);

/* As molt_db_pool_query, on the transaction's connection (no waiting).
 * ESTATE once the transaction is ending; ECLOSED once its connection is
 * lost. A cancel or timeout sends a CancelRequest as outside transactions;
 * the transaction is then failed. Requests made while that cancel is not
 * over (its CancelRequest answered and its statement ended) wait on the
 * connection unsent, so a late-landing cancel cannot stop them
 * (docs/pool.md, Transactions). */
MOLT_DB_API
int molt_db_tx_query(molt_db_tx *tx, const char *sql, size_t nparams,
                     const molt_db_param *params,
                     const molt_db_result_handler *h,
                     const molt_db_pool_query_options *opts,
                     molt_db_pool_req_id *id);

/* Opens a nested scope (SAVEPOINT). cb (may be NULL) gets the outcome. */
MOLT_DB_API
int molt_db_tx_begin_nested(molt_db_tx *tx, molt_db_tx_done_cb cb, void *ud);
/* Closes the innermost scope. cb may be NULL. Returns MOLT_DB_OK (cb will
 * run), ESTATE when the transaction is already ending, ENOMEM. */
MOLT_DB_API
int molt_db_tx_commit(molt_db_tx *tx, molt_db_tx_done_cb cb, void *ud);
MOLT_DB_API
int molt_db_tx_rollback(molt_db_tx *tx, molt_db_tx_done_cb cb, void *ud);
/* The connection the transaction pinned, for what the pool has no call for
 * (COPY: molt_db_conn_copy_in / copy_out / copy_query), or NULL once it is
 * lost or the transaction is ending. Requests made on it directly run in
 * the transaction, in order with its own; the caller must let them
 * complete before committing or rolling back (a cancel: molt_db_conn_cancel
 * on it, then roll back). Never close it. */
MOLT_DB_API
molt_db_conn *molt_db_tx_conn(molt_db_tx *tx);
/* Open savepoints (0 at the outer scope). */
MOLT_DB_API
int molt_db_tx_depth(const molt_db_tx *tx);

/* Counters and gauges (a snapshot). */
typedef struct molt_db_pool_stats {
    size_t conns;             /* open or opening */
    size_t conns_opening;
    size_t conns_idle;        /* ready with no request */
    size_t conns_in_use;      /* carrying requests, checking, draining */
    size_t waiters;           /* requests waiting for a connection */
    uint64_t requests;        /* made (molt_db_pool_query returned OK) */
    uint64_t completed;       /* on_done called */
    uint64_t failed;          /* on_done with status != OK */
    uint64_t timeouts, cancels, exhausted;
    uint64_t reprepares;      /* transparent re-prepares */
    uint64_t resends;         /* read-only requests sent again because an
                                 earlier one in their batch failed */
    uint64_t conns_opened;    /* connect succeeded */
    uint64_t connect_failures;
    uint64_t conns_closed;    /* closed after having been opened */
    uint64_t conns_abandoned; /* closed because their state was unknown:
                                 broken, cancel failed, rollback failed */
    uint64_t cancel_requests; /* CancelRequests sent */
    uint64_t rollbacks;       /* dirty connections rolled back on release */
    uint64_t tx_commits;      /* transactions committed */
    uint64_t tx_rollbacks;    /* transactions rolled back (also failed
                                 commits) */
    uint64_t max_wait_us;     /* longest acquire wait seen */
    uint64_t bytes_in;        /* received from the server, every connection
                                 (protocol bytes; plaintext under TLS) */
    uint64_t bytes_out;       /* sent to the server */
    size_t conns_tx_idle;     /* of conns_in_use: held by a transaction with
                                 nothing running or being cancelled on it */
} molt_db_pool_stats;

MOLT_DB_API
void molt_db_pool_get_stats(const molt_db_pool *pool, molt_db_pool_stats *out);

/* Why the pool has no connection: the last connect attempt's error while no
 * connection is open (e.g. wrong password, server down, a PgBouncer that
 * refuses a startup parameter), else NULL. Owned by the pool, valid until
 * its next connect attempt ends. */
MOLT_DB_API
const molt_db_error *molt_db_pool_connect_error(const molt_db_pool *pool);

/*
 * Appends the pool's metrics to out in the Prometheus text exposition format
 * (0.0.4): gauges (connections, idle, in use, waiters), counters
 * (connections opened/closed/abandoned, connect failures, requests, rows,
 * bytes in and out, commits, rollbacks, cancel requests, re-prepares,
 * resends, errors by SQLSTATE class and by client-side code) and histograms in seconds (acquire wait, query
 * latency per tag, transaction duration) over fixed buckets from 25 us to
 * 10 s. Metric names start with molt_db_pool_. Returns MOLT_DB_OK, ENOMEM
 * (out's failure flag is set), or EINVAL.
 */
MOLT_DB_API
int molt_db_pool_metrics_prometheus(const molt_db_pool *pool, molt_db_buf *out);

#ifdef __cplusplus
}
#endif
#endif
