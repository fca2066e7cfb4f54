/*
 * Session-bound transactions (contract section 11): tx_begin pins one
 * connection of an alias for a session, db_query / db_exec naming its
 * tx_id run on that connection one at a time, tx_commit / tx_rollback end
 * the innermost scope (a nested tx_begin is a SAVEPOINT).
 *
 * A transaction never outlives what bounds it: its session closing, its
 * begin request answered otherwise (timeout, cancel), tx_idle_timeout_ms
 * without a request, or tx_max_ms since it began all roll it back and hand
 * the connection back to the pool (PostgreSQL: the pool's release check;
 * SQLite: ROLLBACK on the connection). max_session_tx and
 * tx_alias_share_pct cap how many may be open, and an open transaction
 * holds one of its alias's slots in sched.c, so it counts in its session's
 * fair share.
 *
 * Capabilities: on an alias without db.write the transaction is READ ONLY
 * whatever the client asks (PostgreSQL BEGIN ... READ ONLY; SQLite
 * query_only), db_exec in a read-only transaction is refused, and a
 * db_query keeps its classifier; in a read-only transaction SQL whose
 * effect outlives ROLLBACK (set_config, session advisory locks...) is
 * refused too. Transaction control written as SQL stays refused: only
 * these entries control a transaction.
 */
#ifndef MW_TX_H
#define MW_TX_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "envelope.h"
#include "payload.h"

typedef struct mw_worker mw_worker;
typedef struct mw_session mw_session;
typedef struct mw_request mw_request;
typedef struct mw_backend mw_backend;
typedef struct mw_tx mw_tx;

/* What a backend runs on a transaction's connection (backend.h). */
typedef enum mw_tx_step {
    MW_TX_SAVEPOINT = 0, /* open scope depth + 1 */
    MW_TX_RELEASE,       /* end the innermost savepoint, keeping its work */
    MW_TX_ROLLBACK_TO,   /* end the innermost savepoint, undoing its work */
    MW_TX_COMMIT,        /* end the transaction (depth 0 only) */
    MW_TX_ROLLBACK       /* end the transaction (depth 0 only) */
} mw_tx_step;

typedef enum mw_tx_state {
    MW_TX_WAITING = 0,   /* its tx_begin waits for a slot (sched.c) */
    MW_TX_BEGINNING,     /* the backend is beginning it */
    MW_TX_OPEN,
    MW_TX_ENDING         /* the outer COMMIT or ROLLBACK is running */
} mw_tx_state;

struct mw_tx {
    mw_worker *w;
    mw_session *s;          /* NULL once it left its session (ending) */
    mw_tx *next, *prev;     /* in s->txs */
    uint64_t id;
    mw_backend *backend;
    size_t alias_index;
    mw_tx_state state;
    mw_isolation isolation;
    int read_only;
    int deferrable;
    int depth;              /* open savepoints */
    int abandoned;          /* roll back as soon as nothing runs in it */
    int session_state;      /* a statement may have left session state:
                               the connection is closed at the end */
    mw_tx_step step;        /* the step running (backend) */
    mw_request *req;        /* the request running in it: one at a time */
    mw_request *after;      /* one request that came while req, already
                               answered (cancelled, timed out), was still
                               ending on the server: it runs once req ended */
    void *handle;           /* the backend's; NULL before BEGIN and once the
                               connection went back */
    uint32_t timeout_ms;    /* of the BEGIN, while it waits (backend) */
    mw_tx *wait_next;       /* the backend's list (PostgreSQL role check) */
    uint64_t t_begin_ms;    /* uv_now when it began */
    int holds_slot;         /* sched.c: counted in the alias's running */
    void *lane;             /* sched.c: counted in this lane's running */
    uv_timer_t timer;       /* idle / lifetime / retry */
};

/* tx_begin, tx_commit or tx_rollback (r->entry says which). */
void mw_entry_tx(mw_request *r, const uint8_t *payload, size_t len);

/* db_query / db_exec whose payload named tx_id: checks the transaction and
 * starts r on its connection; answers r itself when it cannot. */
void mw_tx_run(mw_request *r, uint64_t tx_id);

/* sched.c started a tx_begin request: the backend begins. */
void mw_tx_start(mw_request *r);

/* Backend: the begin or step it was asked for is over (loop thread). */
void mw_tx_done(mw_tx *t, mw_status st, const char *msg, const molt_db_error *err);

/* A statement request that ran in a transaction is done (request.c). */
void mw_tx_request_done(mw_request *r);

/* r is being freed while still bound to its transaction (a tx_begin that
 * never started): forget it. */
void mw_tx_request_freed(mw_request *r);

/* The session closes: every transaction it holds rolls back. */
void mw_tx_session_closed(mw_session *s);

/* The open transactions with nothing running in them (no request, no
 * step, not being rolled back): they wait for their session's next
 * request or their idle / lifetime timer, nothing else. */
size_t mw_tx_idle(const mw_worker *w);

#endif
