/*
 * Internals shared by the pool's files: pool.c (life cycle of the pool and
 * its connections, dispatch), pool_request.c (requests: queueing, deadlines,
 * cancel, running through the statement modes) and stmt_cache.c (the
 * per-connection LRU of prepared statements).
 */
#ifndef MOLT_DB_POOL_INTERNAL_H
#define MOLT_DB_POOL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/pool.h"

#include "loop.h"

molt_db_conninfo *molt_db__conninfo_dup(const molt_db_conninfo *ci);

typedef struct molt_db_preq molt_db_preq;
typedef struct molt_db_pconn molt_db_pconn;

/* ---- metrics (pool_metrics.c) ------------------------------------------ */

#define MOLT_DB_HIST_BUCKETS 18    /* fixed log-spaced bounds, then +Inf */
#define MOLT_DB_METRIC_TAGS 64     /* distinct tags; later ones count as "other" */
#define MOLT_DB_METRIC_CLASSES 48  /* distinct SQLSTATE classes */

typedef struct molt_db_hist {
    uint64_t counts[MOLT_DB_HIST_BUCKETS + 1];
    uint64_t n;
    uint64_t sum_ns;
} molt_db_hist;

typedef struct molt_db_metric_tag {
    char *name;
    molt_db_hist latency;
} molt_db_metric_tag;

typedef struct molt_db_pool_metrics {
    molt_db_hist acquire;
    molt_db_hist tx_duration;
    molt_db_metric_tag tags[MOLT_DB_METRIC_TAGS + 1]; /* [0]: no tag */
    size_t ntags;
    char classes[MOLT_DB_METRIC_CLASSES][3];
    uint64_t class_counts[MOLT_DB_METRIC_CLASSES];
    size_t nclasses;
    uint64_t errors_by_code[32];   /* -code for client-side errors */
    uint64_t rows;
} molt_db_pool_metrics;

/* Index of tag (NULL or "": 0), adding it when there is room. */
uint16_t molt_db__metrics_tag(molt_db_pool_metrics *m, const char *tag);
void molt_db__hist_add(molt_db_hist *h, uint64_t ns);
void molt_db__metrics_done(molt_db_pool_metrics *m, uint16_t tag,
                           uint64_t latency_ns, int status,
                           const molt_db_error *err);
void molt_db__metrics_free(molt_db_pool_metrics *m);

/* ---- statement cache (stmt_cache.c) ------------------------------------ */

typedef struct molt_db_sc_entry {
    struct molt_db_sc_entry *hnext;           /* hash chain */
    struct molt_db_sc_entry *lprev, *lnext;   /* LRU list, lprev toward MRU */
    uint64_t hash;
    char *sql;
    size_t nparams;
    uint32_t *ptypes;
    char name[40];                 /* "molt_" + nonce + hash, 32 hex digits */
    molt_db_stmt *stmt;            /* NULL while the Parse is in flight */
    int refs;                      /* executes in flight + waiting requests */
    int linked;                    /* in the hash table and LRU */
    molt_db_preq *wait_head, *wait_tail; /* requests waiting for the Parse */
    molt_db_pconn *pc;             /* the connection it belongs to */
} molt_db_sc_entry;

typedef struct molt_db_stmt_cache {
    molt_db_sc_entry **buckets;
    size_t nbuckets;               /* power of two */
    molt_db_sc_entry *mru, *lru;
    size_t count, cap;
    uint64_t nonce;                /* random, in every name (RAND_bytes) */
} molt_db_stmt_cache;

uint64_t molt_db__sc_hash(const char *sql, size_t nparams,
                          const uint32_t *ptypes);
int molt_db__sc_init(molt_db_stmt_cache *c, size_t cap);
/* The live entry for this key (moved to MRU), or NULL. */
molt_db_sc_entry *molt_db__sc_find(molt_db_stmt_cache *c, uint64_t hash,
                                   const char *sql, size_t nparams,
                                   const uint32_t *ptypes);
/* 1 when some live entry has this hash but another key (name clash). */
int molt_db__sc_hash_taken(molt_db_stmt_cache *c, uint64_t hash);
/* A new live entry at MRU (refs 0, stmt NULL), or NULL on ENOMEM. */
molt_db_sc_entry *molt_db__sc_insert(molt_db_stmt_cache *c, uint64_t hash,
                                     const char *sql, size_t nparams,
                                     const uint32_t *ptypes);
/* Unlinks e from the table and LRU (it stays allocated while refs > 0). */
void molt_db__sc_unlink(molt_db_stmt_cache *c, molt_db_sc_entry *e);
/* Least recently used live entry with refs 0 and a statement, or NULL. */
molt_db_sc_entry *molt_db__sc_victim(molt_db_stmt_cache *c);
void molt_db__sc_entry_free(molt_db_sc_entry *e);
/* Unlinks every entry; frees those with refs 0 (the others are freed when
 * their last reference goes). */
void molt_db__sc_clear(molt_db_stmt_cache *c);

/* ---- requests (pool_request.c) ----------------------------------------- */

typedef enum molt_db_preq_state {
    MOLT_DB_PREQ_FREE = 0,
    MOLT_DB_PREQ_WAITING,          /* in the pool's FIFO */
    MOLT_DB_PREQ_RUNNING,          /* on a connection */
    MOLT_DB_PREQ_DUE               /* out of the queue; on_done is due */
} molt_db_preq_state;

typedef enum molt_db_preq_kind {
    MOLT_DB_PREQ_QUERY = 0,
    MOLT_DB_PREQ_BEGIN,            /* acquires an idle connection and pins it */
    MOLT_DB_PREQ_TXCTL             /* SAVEPOINT, RELEASE, COMMIT, ROLLBACK */
} molt_db_preq_kind;

struct molt_db_preq {
    molt_db_pool *pool;
    molt_db_preq_kind kind;
    int force_simple;              /* the simple protocol whatever the mode */
    molt_db_tx *tx;                /* runs inside this transaction */
    uint32_t idx;                  /* slot index */
    uint32_t gen;                  /* bumped on every reuse of the slot */
    molt_db_preq_state state;
    molt_db_preq *prev, *next;     /* pool FIFO, or a free list (next) */
    molt_db_preq *snext;           /* an entry's Parse waiters */
    molt_db_preq *cprev, *cnext;   /* the connection's running requests */

    molt_db_result_handler h;      /* the caller's */
    char *sql;
    size_t sql_len, sql_cap;
    size_t nparams, params_cap;
    molt_db_param *params;
    uint32_t *ptypes;
    uint8_t *pdata;
    size_t pdata_cap;
    uint64_t hash;

    void *timer;                   /* deadline, or 0 ms to complete a cancel */
    uint64_t deadline_ms;          /* 0: none (loop time) */
    uint64_t acquire_deadline_ms;  /* 0: none */
    uint64_t t_submit_ns;

    molt_db_pconn *pc;             /* while running */
    molt_db_sc_entry *ent;         /* cached mode: the statement used */
    int user_done;                 /* no more caller callbacks but on_done */
    int delivered;                 /* on_done was called */
    int due_status;                /* status of a due on_done (cancel) */
    int conn_busy;                 /* a connection request is in flight */
    int rows_seen;
    int retried;                   /* re-prepared once */
    int paused;                    /* molt_db_pool_pause: its conn's reading */
    int read_only;                 /* may share a Sync (options.read_only) */
    int read_only_tx;              /* framed in BEGIN READ ONLY / ROLLBACK */
    int resent;                    /* skipped in a batch and sent again */
    int close_conn;                /* options.close_conn */
    int cancel_exposed;            /* live when a CancelRequest for an older
                                      neighbour went out: may get its 57014 */
    int cancel_resends;            /* sent again after such a 57014 */
    int held;                      /* on its transaction's connection, not
                                      yet sent: a cancel there is not over */
    uint16_t tag;                  /* metrics tag index */
};

/* ---- transactions (pool_tx.c) ------------------------------------------ */

struct molt_db_tx {
    molt_db_pool *pool;
    molt_db_pconn *pc;             /* pinned; NULL once lost */
    int depth;                     /* open savepoints */
    int ending;                    /* COMMIT or ROLLBACK sent */
    molt_db_tx_begin_cb begin_cb;
    void *begin_ud;
    uint64_t begin_ns;
    molt_db_tx_done_cb end_cb;     /* of the scope being closed */
    void *end_ud;
    int end_commit;
    int end_rolled_back;           /* COMMIT answered ROLLBACK */
};

/* ---- pooled connections (pool.c) --------------------------------------- */

typedef enum molt_db_pconn_state {
    MOLT_DB_PC_CONNECTING,
    MOLT_DB_PC_READY,              /* may take requests */
    MOLT_DB_PC_CHECKING,           /* health-check ping in flight */
    MOLT_DB_PC_RESETTING,          /* ROLLBACK in flight */
    MOLT_DB_PC_DRAINING,           /* cancelled requests must end first */
    MOLT_DB_PC_PINNED,             /* a transaction holds it */
    MOLT_DB_PC_CLOSING
} molt_db_pconn_state;

typedef enum molt_db_cancel_state {
    MOLT_DB_CANCEL_NONE = 0,
    MOLT_DB_CANCEL_WANTED,         /* send when every request is cancelled */
    MOLT_DB_CANCEL_SENT,
    MOLT_DB_CANCEL_OK,
    MOLT_DB_CANCEL_FAILED
} molt_db_cancel_state;

struct molt_db_pconn {
    molt_db_pool *pool;
    molt_db_pconn *prev, *next;    /* pool's list of open connections */
    molt_db_conn *conn;
    molt_db_pconn_state state;
    int inflight;                  /* pool requests on it */
    molt_db_preq *run_head, *run_tail;
    uint64_t created_ms, expires_ms, last_used_ms;
    molt_db_cancel_state cancel;
    molt_db_preq *cancel_target;   /* the request the CancelRequest is for */
    uint32_t cancel_target_gen;    /* its slot generation (the slot may be
                                      reused once it ended) */
    void *drain_timer;             /* deadline of a drain after a cancel, */
    int drain_check;               /* or (set) a check that a cancel is due */
    int releasing_held;            /* in molt_db__preq_release_held (the
                                      requests it ends come back here) */
    int refs;                      /* callbacks still due that point here */
    int broken;
    int retiring;                  /* closed once idle, takes no request */
    molt_db_tx *tx;                /* pinned by this transaction */
    molt_db_stmt_cache cache;
};

struct molt_db_pool {
    molt_db_loop *loop;
    molt_db_conninfo *ci;
    molt_db_pool_settings s;
    uint64_t rng;

    molt_db_pconn *conns_head, *conns_tail;
    size_t nconns, nopening, nclosing;

    molt_db_preq *wait_head, *wait_tail;
    size_t nwaiting;

    /* request slots: chunks of fixed size so addresses stay put */
    molt_db_preq **chunks;
    size_t nchunks;
    molt_db_preq *free_slots;
    size_t nslots;
    size_t active;                 /* slots in use */

    void *maint;                   /* maintenance tick */
    void *backoff;                 /* reconnect after a failed connect;
                                      the close callback while closing */
    int backoff_active;
    int connect_failures_row;
    uint64_t next_connect_ms;
    uint64_t maint_ms;             /* its interval */
    molt_db_error last_connect_err;

    int closing;
    int dispatching;
    molt_db_pool_close_cb close_cb;
    void *close_ud;
    size_t ntx;                    /* transactions not yet ended */

    molt_db_pool_stats st;         /* bytes_*: of connections gone */
    molt_db_pool_metrics m;
};

#define MOLT_DB_POOL_CHUNK 256

/* pool.c */
void molt_db__pool_dispatch(molt_db_pool *p);
void molt_db__pool_grow(molt_db_pool *p);
/* A request left the connection (its conn on_done came back). */
void molt_db__pconn_request_ended(molt_db_pconn *pc, molt_db_preq *r);
/* Closes pc and forgets it; abandoned counts it as state unknown. */
void molt_db__pconn_discard(molt_db_pconn *pc, int abandoned);
/* A cancelled request on pc wants a CancelRequest. */
void molt_db__pconn_want_cancel(molt_db_pconn *pc);
/* 1 while a transaction's connection has a cancel not over (its
 * CancelRequest unanswered or its query not ended): the transaction's new
 * requests are held, not sent, until it is (pool.c pinned_cancel_over). */
int molt_db__pconn_cancel_pending(const molt_db_pconn *pc);
/* r starts on pc: it joins the end of pc's running list. */
void molt_db__pconn_run_push(molt_db_pconn *pc, molt_db_preq *r);
/* r goes again on pc: its place moves to the end of pc's running list, the
 * order in which the server answers (molt_db__pconn_want_cancel relies on
 * the oldest running request being the one the server runs). */
void molt_db__pconn_requeue(molt_db_pconn *pc, molt_db_preq *r);
void molt_db__pool_maybe_finish_close(molt_db_pool *p);
uint64_t molt_db__pool_rand(molt_db_pool *p);

/* pool_request.c */
void molt_db__preq_start(molt_db_preq *r, molt_db_pconn *pc);
void molt_db__preq_finish_later(molt_db_preq *r, int status,
                                const molt_db_error *err);
void molt_db__preq_queue_remove(molt_db_pool *p, molt_db_preq *r);
void molt_db__preq_close_timers(molt_db_pool *p);
int molt_db__preq_new(molt_db_pool *p, const char *sql, size_t nparams,
                      const molt_db_param *params,
                      const molt_db_result_handler *h, int timeout_ms,
                      const char *tag, molt_db_preq **out);
void molt_db__preq_enqueue(molt_db_preq *r);
/* The pool cannot connect: every waiting request gets the connect error
 * (MOLT_DB_ECONNECT) from the loop, not in this call. */
void molt_db__preq_fail_waiting(molt_db_pool *p);
/* 1 when r can be sent again if a CancelRequest meant for an older
 * neighbour hits it: a read-only query outside a transaction that has
 * delivered no row and does not wait for a Parse shared with others. */
int molt_db__preq_resendable(const molt_db_preq *r);
molt_db_pool_req_id molt_db__preq_id(const molt_db_preq *r);
/* pc's held requests, in order: sent (send), or ended unsent (the caller
 * gets ECLOSED unless it cancelled them). A cancelled one is never sent. */
void molt_db__preq_release_held(molt_db_pconn *pc, int send);

/* pool.c */
/* A pinned connection is given back (the transaction ended or failed). */
void molt_db__pconn_unpin(molt_db_pconn *pc);
void molt_db__preq_free_slots(molt_db_pool *p);

#endif
