/*
 * Transactions on the pool: BEGIN pins an idle connection (it waits in the
 * same FIFO as queries), nested scopes are savepoints, and the end of the
 * outer scope hands the connection back through the pool's release check
 * (idle goes back; anything else is rolled back, or closed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"

typedef enum tx_op_kind {
    TX_OP_SAVEPOINT,
    TX_OP_RELEASE,
    TX_OP_ROLLBACK_TO,
    TX_OP_COMMIT,
    TX_OP_ROLLBACK
} tx_op_kind;

typedef struct tx_op {
    molt_db_tx *tx;
    tx_op_kind kind;
    molt_db_tx_done_cb cb;
    void *ud;
    int answered_rollback; /* COMMIT of a failed transaction */
} tx_op;

static void end_tx(molt_db_tx *tx)
{
    molt_db_pool *p = tx->pool;
    free(tx);
    p->ntx--;
    molt_db__pool_maybe_finish_close(p);
}

static void on_begin_done(void *ud, int status, const molt_db_error *err)
{
    molt_db_tx *tx = ud;
    if (status == MOLT_DB_OK && tx->pc != NULL) {
        tx->begin_ns = molt_db__hrtime_ns();
        tx->begin_cb(tx->begin_ud, MOLT_DB_OK, tx, NULL);
        return;
    }
    if (tx->pc != NULL)
        molt_db__pconn_unpin(tx->pc);
    molt_db_error e;
    molt_db_error_init(&e);
    if (status == MOLT_DB_OK) { /* the connection went away meanwhile */
        status = molt_db_error_set(&e, MOLT_DB_ECLOSED, "connection lost");
        err = &e;
    }
    tx->begin_cb(tx->begin_ud, status, NULL, err);
    molt_db_error_clear(&e);
    end_tx(tx);
}

int molt_db_pool_begin(molt_db_pool *p, const molt_db_tx_options *opts,
                       molt_db_tx_begin_cb cb, void *ud,
                       molt_db_pool_req_id *id)
{
    if (p == NULL || cb == NULL)
        return MOLT_DB_EINVAL;
    if (p->closing)
        return MOLT_DB_ECLOSED;
    molt_db_tx_options o = {MOLT_DB_ISOLATION_DEFAULT, 0, 0, 0};
    if (opts)
        o = *opts;
    static const char *const iso[] = {
        "", " ISOLATION LEVEL READ COMMITTED",
        " ISOLATION LEVEL REPEATABLE READ", " ISOLATION LEVEL SERIALIZABLE"};
    if ((int)o.isolation < 0 || (int)o.isolation > 3)
        return MOLT_DB_EINVAL;
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN%s%s%s", iso[o.isolation],
             o.read_only ? " READ ONLY" : "", o.deferrable ? " DEFERRABLE" : "");
    molt_db_tx *tx = calloc(1, sizeof *tx);
    if (tx == NULL)
        return MOLT_DB_ENOMEM;
    tx->pool = p;
    tx->begin_cb = cb;
    tx->begin_ud = ud;
    molt_db_result_handler h = {NULL, NULL, NULL, on_begin_done, tx};
    molt_db_preq *r = NULL;
    int rc = molt_db__preq_new(p, sql, 0, NULL, &h, o.timeout_ms, NULL, &r);
    if (rc != MOLT_DB_OK) {
        free(tx);
        return rc;
    }
    r->kind = MOLT_DB_PREQ_BEGIN;
    r->force_simple = 1;
    r->tx = tx;
    p->ntx++;
    if (id)
        *id = molt_db__preq_id(r);
    molt_db__preq_enqueue(r);
    return MOLT_DB_OK;
}

/* Runs r on the transaction's connection, or fails it from the loop with
 * ECLOSED when the connection is gone. */
static void tx_run(molt_db_tx *tx, molt_db_preq *r)
{
    r->tx = tx;
    if (tx->pc == NULL) {
        r->state = MOLT_DB_PREQ_DUE;
        molt_db__preq_finish_later(r, MOLT_DB_ECLOSED, NULL);
        return;
    }
    molt_db__preq_start(r, tx->pc);
}

int molt_db_tx_query(molt_db_tx *tx, const char *sql, size_t nparams,
                     const molt_db_param *params,
                     const molt_db_result_handler *h,
                     const molt_db_pool_query_options *opts,
                     molt_db_pool_req_id *id)
{
    if (tx == NULL || sql == NULL || h == NULL || h->on_done == NULL ||
        (nparams > 0 && params == NULL))
        return MOLT_DB_EINVAL;
    if (tx->ending)
        return MOLT_DB_ESTATE;
    if (tx->pc == NULL)
        return MOLT_DB_ECLOSED;
    if ((tx->pool->s.statement_mode == MOLT_DB_STMT_SIMPLE && nparams > 0) ||
        (opts && opts->read_only_tx))
        return MOLT_DB_EINVAL;
    molt_db_preq *r = NULL;
    int rc = molt_db__preq_new(tx->pool, sql, nparams, params, h,
                               opts ? opts->timeout_ms : 0,
                               opts ? opts->tag : NULL, &r);
    if (rc != MOLT_DB_OK)
        return rc;
    r->close_conn = opts != NULL && opts->close_conn;
    if (id)
        *id = molt_db__preq_id(r);
    tx_run(tx, r);
    return MOLT_DB_OK;
}

static void op_command(void *ud, const char *tag)
{
    tx_op *op = ud;
    if (op->kind == TX_OP_COMMIT && strcmp(tag, "ROLLBACK") == 0)
        op->answered_rollback = 1;
}

static void op_done(void *ud, int status, const molt_db_error *err)
{
    tx_op *op = ud;
    molt_db_tx *tx = op->tx;
    molt_db_pool *p = tx->pool;
    molt_db_error e;
    molt_db_error_init(&e);
    if (status == MOLT_DB_OK && op->answered_rollback) {
        status = molt_db_error_set(&e, MOLT_DB_ESTATE,
                                   "transaction was rolled back (it had "
                                   "failed before COMMIT)");
        err = &e;
    }
    int outer = op->kind == TX_OP_COMMIT || op->kind == TX_OP_ROLLBACK;
    if (outer) {
        if (tx->begin_ns != 0)
            molt_db__hist_add(&p->m.tx_duration,
                              molt_db__hrtime_ns() - tx->begin_ns);
        if (op->kind == TX_OP_COMMIT && status == MOLT_DB_OK)
            p->st.tx_commits++;
        else
            p->st.tx_rollbacks++;
        /* The release check rolls back or closes what is not idle. */
        if (tx->pc != NULL)
            molt_db__pconn_unpin(tx->pc);
        tx->pc = NULL;
    }
    if (op->cb)
        op->cb(op->ud, status, status == MOLT_DB_OK ? NULL : err);
    molt_db_error_clear(&e);
    free(op);
    if (outer)
        end_tx(tx);
}

static int tx_op_submit(molt_db_tx *tx, tx_op_kind kind, const char *sql,
                        molt_db_tx_done_cb cb, void *ud)
{
    tx_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return MOLT_DB_ENOMEM;
    op->tx = tx;
    op->kind = kind;
    op->cb = cb;
    op->ud = ud;
    molt_db_result_handler h = {NULL, NULL, op_command, op_done, op};
    molt_db_preq *r = NULL;
    int rc = molt_db__preq_new(tx->pool, sql, 0, NULL, &h, 0, NULL, &r);
    if (rc != MOLT_DB_OK) {
        free(op);
        return rc;
    }
    r->kind = MOLT_DB_PREQ_TXCTL;
    r->force_simple = 1;
    tx_run(tx, r);
    return MOLT_DB_OK;
}

int molt_db_tx_begin_nested(molt_db_tx *tx, molt_db_tx_done_cb cb, void *ud)
{
    if (tx == NULL)
        return MOLT_DB_EINVAL;
    if (tx->ending)
        return MOLT_DB_ESTATE;
    char sql[64];
    snprintf(sql, sizeof sql, "SAVEPOINT molt_sp_%d", tx->depth + 1);
    int rc = tx_op_submit(tx, TX_OP_SAVEPOINT, sql, cb, ud);
    if (rc == MOLT_DB_OK)
        tx->depth++;
    return rc;
}

static int tx_end_scope(molt_db_tx *tx, int commit, molt_db_tx_done_cb cb,
                        void *ud)
{
    if (tx == NULL)
        return MOLT_DB_EINVAL;
    if (tx->ending)
        return MOLT_DB_ESTATE;
    char sql[128];
    int rc;
    if (tx->depth > 0) {
        int d = tx->depth;
        if (commit)
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT molt_sp_%d", d);
        else
            snprintf(sql, sizeof sql,
                     "ROLLBACK TO SAVEPOINT molt_sp_%d; "
                     "RELEASE SAVEPOINT molt_sp_%d", d, d);
        rc = tx_op_submit(tx, commit ? TX_OP_RELEASE : TX_OP_ROLLBACK_TO, sql,
                          cb, ud);
        if (rc == MOLT_DB_OK)
            tx->depth--;
        return rc;
    }
    rc = tx_op_submit(tx, commit ? TX_OP_COMMIT : TX_OP_ROLLBACK,
                      commit ? "COMMIT" : "ROLLBACK", cb, ud);
    if (rc == MOLT_DB_OK)
        tx->ending = 1;
    return rc;
}

int molt_db_tx_commit(molt_db_tx *tx, molt_db_tx_done_cb cb, void *ud)
{
    return tx_end_scope(tx, 1, cb, ud);
}

int molt_db_tx_rollback(molt_db_tx *tx, molt_db_tx_done_cb cb, void *ud)
{
    return tx_end_scope(tx, 0, cb, ud);
}

molt_db_conn *molt_db_tx_conn(molt_db_tx *tx)
{
    if (tx == NULL || tx->ending || tx->pc == NULL)
        return NULL;
    return tx->pc->conn;
}

int molt_db_tx_depth(const molt_db_tx *tx)
{
    return tx ? tx->depth : 0;
}
