/*
 * Pool requests: slots with stable ids, the FIFO of waiters, deadlines and
 * cancellation, and running a request on a connection through the
 * statement mode (cached statements with transparent re-prepare, unnamed,
 * simple).
 */
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"

/* ---- slots ------------------------------------------------------------- */

static molt_db_preq *slot_alloc(molt_db_pool *p)
{
    if (p->free_slots == NULL) {
        molt_db_preq **chunks =
            realloc(p->chunks, (p->nchunks + 1) * sizeof *chunks);
        if (chunks == NULL)
            return NULL;
        p->chunks = chunks;
        molt_db_preq *c = calloc(MOLT_DB_POOL_CHUNK, sizeof *c);
        if (c == NULL)
            return NULL;
        p->chunks[p->nchunks] = c;
        for (size_t i = MOLT_DB_POOL_CHUNK; i-- > 0;) {
            c[i].pool = p;
            c[i].idx = (uint32_t)(p->nchunks * MOLT_DB_POOL_CHUNK + i);
            c[i].next = p->free_slots;
            p->free_slots = &c[i];
        }
        p->nchunks++;
    }
    molt_db_preq *r = p->free_slots;
    p->free_slots = r->next;
    r->next = NULL;
    p->active++;
    return r;
}

static void slot_free(molt_db_preq *r)
{
    molt_db_pool *p = r->pool;
    if (r->timer != NULL)
        molt_db__timer_stop(p->loop, r->timer);
    r->state = MOLT_DB_PREQ_FREE;
    r->gen++;
    r->user_done = r->delivered = r->conn_busy = 0;
    r->rows_seen = r->retried = r->read_only = r->read_only_tx = r->resent = r->paused = 0;
    r->cancel_exposed = r->cancel_resends = r->held = 0;
    r->pc = NULL;
    r->ent = NULL;
    r->next = p->free_slots;
    p->free_slots = r;
    p->active--;
    if (p->closing)
        molt_db__pool_maybe_finish_close(p);
}

static void maybe_free(molt_db_preq *r)
{
    if (r->delivered && !r->conn_busy && r->pc == NULL &&
        r->state != MOLT_DB_PREQ_FREE)
        slot_free(r);
}

void molt_db__preq_close_timers(molt_db_pool *p)
{
    for (size_t c = 0; c < p->nchunks; c++)
        for (size_t i = 0; i < MOLT_DB_POOL_CHUNK; i++) {
            molt_db_preq *r = &p->chunks[c][i];
            molt_db__timer_free(p->loop, &r->timer);
        }
}

void molt_db__preq_free_slots(molt_db_pool *p)
{
    for (size_t c = 0; c < p->nchunks; c++) {
        for (size_t i = 0; i < MOLT_DB_POOL_CHUNK; i++) {
            molt_db_preq *r = &p->chunks[c][i];
            free(r->sql);
            free(r->params);
            free(r->ptypes);
            free(r->pdata);
        }
        free(p->chunks[c]);
    }
    free(p->chunks);
    p->chunks = NULL;
    p->nchunks = 0;
}

/* ---- completion -------------------------------------------------------- */

static void deliver(molt_db_preq *r, int status, const molt_db_error *err)
{
    molt_db_pool *p = r->pool;
    r->user_done = 1;
    r->delivered = 1;
    if (r->timer != NULL)
        molt_db__timer_stop(p->loop, r->timer);
    p->st.completed++;
    if (status != MOLT_DB_OK)
        p->st.failed++;
    molt_db__metrics_done(&p->m, r->tag, molt_db__hrtime_ns() - r->t_submit_ns,
                          status, err);
    if (status != MOLT_DB_OK && err == NULL) {
        molt_db_error e; /* 1 KiB: only built when needed */
        molt_db_error_init(&e);
        molt_db_error_set(&e, status, "%s", molt_db_code_name(status));
        r->h.on_done(r->h.ud, status, &e);
        molt_db_error_clear(&e);
    } else {
        r->h.on_done(r->h.ud, status, status == MOLT_DB_OK ? NULL : err);
    }
    maybe_free(r);
}

static void on_req_timer(void *arg);
static void arm_waiting(molt_db_preq *r);
static void unpause(molt_db_preq *r);

/* Makes on_done due with status from the loop (never in the caller's
 * call). A waiting request leaves the queue now. */
void molt_db__preq_finish_later(molt_db_preq *r, int status,
                                const molt_db_error *err)
{
    (void)err;
    unpause(r); /* the rest of its rows must be read (and dropped) */
    if (r->state == MOLT_DB_PREQ_WAITING) {
        molt_db__preq_queue_remove(r->pool, r);
        r->state = MOLT_DB_PREQ_DUE;
    }
    r->user_done = 1;
    r->due_status = status;
    molt_db__timer_start(r->pool->loop, r->timer, 0);
}

void molt_db__preq_queue_remove(molt_db_pool *p, molt_db_preq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        p->wait_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        p->wait_tail = r->prev;
    r->prev = r->next = NULL;
    p->nwaiting--;
}

static void deliver_exhausted(molt_db_preq *r)
{
    molt_db_pool *p = r->pool;
    molt_db_error e;
    molt_db_error_init(&e);
    int status;
    if (molt_db_pool_connect_error(p) != NULL) {
        status = MOLT_DB_ECONNECT;
        molt_db_error_copy(&e, &p->last_connect_err);
        e.code = MOLT_DB_ECONNECT;
    } else {
        status = MOLT_DB_EBUSY;
        p->st.exhausted++;
        molt_db_error_set(&e, MOLT_DB_EBUSY,
                          "pool exhausted: no connection within %d ms "
                          "(max_conns %d, %zu waiting)",
                          p->s.max_wait_ms, p->s.max_conns, p->nwaiting);
    }
    deliver(r, status, &e);
    molt_db_error_clear(&e);
}

static void on_req_timer(void *arg)
{
    molt_db_preq *r = arg;
    molt_db_pool *p = r->pool;
    if (r->user_done) {
        if (!r->delivered) {
            if (r->due_status == MOLT_DB_ECANCELED)
                p->st.cancels++;
            deliver(r, r->due_status, NULL);
        }
        return;
    }
    uint64_t now = molt_db__now_ms(p->loop);
    int timed_out = r->deadline_ms != 0 && now >= r->deadline_ms;
    if (r->state == MOLT_DB_PREQ_WAITING) {
        int wait_over = r->acquire_deadline_ms != 0 &&
                        now >= r->acquire_deadline_ms;
        if (!timed_out && !wait_over && molt_db_pool_connect_error(p) == NULL) {
            arm_waiting(r); /* failed early, but the pool connected since */
            return;
        }
        molt_db__preq_queue_remove(p, r);
        r->state = MOLT_DB_PREQ_DUE;
        if (timed_out) {
            p->st.timeouts++;
            molt_db_error e;
            molt_db_error_init(&e);
            const molt_db_error *why = molt_db_pool_connect_error(p);
            if (why != NULL)
                molt_db_error_set(&e, MOLT_DB_ETIMEDOUT,
                                  "query timeout while waiting for a connection "
                                  "(connecting fails: %s)", why->message);
            else
                molt_db_error_set(&e, MOLT_DB_ETIMEDOUT,
                                  "query timeout while waiting for a connection");
            deliver(r, MOLT_DB_ETIMEDOUT, &e);
        } else {
            deliver_exhausted(r);
        }
        return;
    }
    if (r->state == MOLT_DB_PREQ_RUNNING) {
        molt_db_pconn *pc = r->pc;
        p->st.timeouts++;
        molt_db_error e;
        molt_db_error_init(&e);
        molt_db_error_set(&e, MOLT_DB_ETIMEDOUT, "query timeout");
        r->user_done = 1;
        unpause(r);
        if (pc != NULL)
            molt_db__pconn_want_cancel(pc);
        deliver(r, MOLT_DB_ETIMEDOUT, &e);
    }
}

/* ---- the caller's handler, wrapped ------------------------------------- */

static int w_columns(void *ud, const molt_db_column *cols, size_t n)
{
    molt_db_preq *r = ud;
    if (r->user_done)
        return MOLT_DB_ECANCELED;
    return r->h.on_columns ? r->h.on_columns(r->h.ud, cols, n) : MOLT_DB_OK;
}

static int w_row(void *ud, const molt_db_field *f, size_t n)
{
    molt_db_preq *r = ud;
    if (r->user_done)
        return MOLT_DB_ECANCELED; /* skip the rest of the rows */
    r->rows_seen = 1;
    r->pool->m.rows++;
    return r->h.on_row ? r->h.on_row(r->h.ud, f, n) : MOLT_DB_OK;
}

static void w_command(void *ud, const char *tag)
{
    molt_db_preq *r = ud;
    if (!r->user_done && r->h.on_command)
        r->h.on_command(r->h.ud, tag);
}

static void w_done(void *ud, int status, const molt_db_error *err);

static molt_db_result_handler wrap(molt_db_preq *r)
{
    molt_db_result_handler h = {w_columns, w_row, w_command, w_done, r};
    return h;
}

static void run(molt_db_preq *r);

/* The conn request could not even be queued: finish through the loop. */
static void start_failed(molt_db_preq *r, int rc)
{
    molt_db_pconn *pc = r->pc;
    r->conn_busy = 0;
    if (!r->user_done)
        molt_db__preq_finish_later(r, rc, NULL);
    if (pc != NULL)
        molt_db__pconn_request_ended(pc, r);
    maybe_free(r);
}

static void entry_release(molt_db_sc_entry *e)
{
    e->refs--;
    if (e->refs == 0 && !e->linked)
        molt_db__sc_entry_free(e);
}

static const molt_db_frame read_only_frame = {"BEGIN READ ONLY", "ROLLBACK"};

static const molt_db_frame *frame_of(const molt_db_preq *r)
{
    return r->read_only_tx ? &read_only_frame : NULL;
}

static void exec_cached(molt_db_preq *r, molt_db_sc_entry *e)
{
    r->ent = e; /* its reference was taken when r looked it up */
    molt_db_result_handler h = wrap(r);
    /* Only a first run may share a Sync: a retry goes alone, so it can
     * never be skipped again; a framed request has its own Sync. */
    int rc = r->read_only && !r->read_only_tx && !r->retried && !r->resent && r->tx == NULL
                 ? molt_db_conn_execute_batched(r->pc->conn, e->stmt,
                                                r->nparams, r->params, &h)
                 : molt_db_conn_execute_framed(r->pc->conn, e->stmt, r->nparams,
                                               r->params, frame_of(r), &h);
    if (rc != MOLT_DB_OK) {
        r->ent = NULL;
        entry_release(e);
        start_failed(r, rc);
    }
}

static void on_prepared(void *ud, int status, molt_db_stmt *stmt,
                        const molt_db_error *err)
{
    molt_db_sc_entry *e = ud;
    molt_db_preq *w = e->wait_head;
    e->wait_head = e->wait_tail = NULL;
    if (status == MOLT_DB_OK) {
        e->stmt = stmt;
    } else if (e->linked) {
        molt_db__sc_unlink(&e->pc->cache, e);
    }
    e->refs++; /* keep e while we walk the waiters */
    while (w != NULL) {
        molt_db_preq *nx = w->snext;
        w->snext = NULL;
        if (status == MOLT_DB_OK && !w->user_done &&
            e->pc->state != MOLT_DB_PC_CLOSING) {
            exec_cached(w, e);
        } else {
            molt_db_pconn *pc = w->pc;
            w->conn_busy = 0;
            entry_release(e);
            if (!w->user_done)
                deliver(w, status == MOLT_DB_OK ? MOLT_DB_ECLOSED : status,
                        err);
            if (pc != NULL && w->pc == pc)
                molt_db__pconn_request_ended(pc, w);
            maybe_free(w);
        }
        w = nx;
    }
    entry_release(e);
}

static void run_cached(molt_db_preq *r)
{
    molt_db_pconn *pc = r->pc;
    molt_db_stmt_cache *c = &pc->cache;
    const char *sql = r->sql;
    molt_db_sc_entry *e =
        molt_db__sc_find(c, r->hash, sql, r->nparams, r->ptypes);
    if (e != NULL) {
        e->refs++;
        if (e->stmt != NULL) {
            exec_cached(r, e);
            return;
        }
        r->snext = NULL; /* join the waiters of the Parse in flight */
        if (e->wait_tail)
            e->wait_tail->snext = r;
        else
            e->wait_head = r;
        e->wait_tail = r;
        return;
    }
    if (molt_db__sc_hash_taken(c, r->hash)) {
        /* Two texts, one name: this one goes unnamed. */
        molt_db_result_handler h = wrap(r);
        int rc = molt_db_conn_query_framed(pc->conn, sql, r->nparams,
                                           r->params, frame_of(r), &h);
        if (rc != MOLT_DB_OK)
            start_failed(r, rc);
        return;
    }
    while (c->count >= c->cap) {
        molt_db_sc_entry *v = molt_db__sc_victim(c);
        if (v == NULL)
            break; /* all in use: grow past the cap for now */
        molt_db__sc_unlink(c, v);
        molt_db_conn_close_stmt(pc->conn, v->name, NULL);
        molt_db__sc_entry_free(v);
    }
    e = molt_db__sc_insert(c, r->hash, sql, r->nparams, r->ptypes);
    if (e == NULL) {
        start_failed(r, MOLT_DB_ENOMEM);
        return;
    }
    e->pc = pc;
    int rc = molt_db_conn_prepare(pc->conn, e->name, sql, r->nparams,
                                  r->ptypes, on_prepared, e);
    if (rc != MOLT_DB_OK) {
        molt_db__sc_unlink(c, e);
        molt_db__sc_entry_free(e);
        start_failed(r, rc);
        return;
    }
    e->refs++;
    e->wait_head = e->wait_tail = r;
    r->snext = NULL;
}

static void run(molt_db_preq *r)
{
    molt_db_pool *p = r->pool;
    r->conn_busy = 1;
    r->rows_seen = 0;
    if (p->s.statement_mode == MOLT_DB_STMT_CACHED && !r->force_simple) {
        run_cached(r);
        return;
    }
    molt_db_result_handler h = wrap(r);
    int rc;
    if (p->s.statement_mode == MOLT_DB_STMT_UNNAMED && !r->force_simple)
        rc = molt_db_conn_query_framed(r->pc->conn, r->sql, r->nparams,
                                       r->params, frame_of(r), &h);
    else if (r->read_only_tx && !r->force_simple)
        /* simple mode: a Query message could COMMIT out of the frame, so
         * one statement through the extended protocol */
        rc = molt_db_conn_query_text(r->pc->conn, r->sql, 0, NULL,
                                     frame_of(r), &h);
    else
        rc = molt_db_conn_simple_query(r->pc->conn, r->sql, &h);
    if (rc != MOLT_DB_OK)
        start_failed(r, rc);
}

int molt_db__preq_resendable(const molt_db_preq *r)
{
    const molt_db_pool *p = r->pool;
    int shared_parse = p->s.statement_mode == MOLT_DB_STMT_CACHED &&
                       !r->force_simple && r->ent == NULL;
    return r->kind == MOLT_DB_PREQ_QUERY && r->tx == NULL &&
           (r->read_only || r->read_only_tx) && !r->rows_seen && !shared_parse;
}

/* A 57014 that a CancelRequest meant for an older neighbour caused (it
 * landed after that one had ended): the query was stopped before it
 * delivered anything and is read-only, so it goes again. At most a few
 * times, since a server-side statement_timeout also reports 57014. */
static int hit_by_neighbours_cancel(const molt_db_preq *r, int status,
                                    const molt_db_error *err)
{
    return status == MOLT_DB_ESERVER && err != NULL && r->cancel_exposed &&
           !r->user_done && r->cancel_resends < 3 &&
           strcmp(err->sqlstate, "57014") == 0 && molt_db__preq_resendable(r);
}

static int wants_reprepare(const molt_db_preq *r, int status,
                           const molt_db_error *err)
{
    if (status != MOLT_DB_ESERVER || err == NULL || r->rows_seen ||
        r->retried || r->user_done || r->pc == NULL ||
        r->pc->state == MOLT_DB_PC_CLOSING)
        return 0;
    if (strcmp(err->sqlstate, "0A000") != 0 &&
        strcmp(err->sqlstate, "26000") != 0)
        return 0;
    /* In a failed transaction a retry would only get 25P02. */
    return molt_db_conn_is_ready(r->pc->conn) &&
           molt_db_conn_tx_status(r->pc->conn) == 'I';
}

static void w_done(void *ud, int status, const molt_db_error *err)
{
    molt_db_preq *r = ud;
    molt_db_pool *p = r->pool;
    int hit = hit_by_neighbours_cancel(r, status, err); /* (reads r->ent) */
    molt_db_sc_entry *e = r->ent;
    r->ent = NULL;
    r->conn_busy = 0;
    if ((status == MOLT_DB_ESKIPPED || hit) && !r->user_done) {
        /* A neighbour in its batch failed and the server skipped this one
         * (it did not run), or a neighbour's cancel stopped it: it goes
         * again, alone, on the same connection. */
        if (e != NULL)
            entry_release(e);
        if (r->pc != NULL && r->pc->state != MOLT_DB_PC_CLOSING) {
            r->resent = 1;
            r->cancel_resends += hit;
            p->st.resends++;
            molt_db__pconn_requeue(r->pc, r);
            run(r);
            return;
        }
        status = MOLT_DB_ECLOSED; /* as for the rest of a closing connection */
        err = NULL;
        e = NULL;
    }
    if (e != NULL && wants_reprepare(r, status, err)) {
        /* The cached plan changed or the statement is gone: Close it (a
         * no-op if gone) and Parse again under the same name; both go
         * down the pipeline in order. */
        if (e->linked) {
            molt_db__sc_unlink(&r->pc->cache, e);
            molt_db_conn_close_stmt(r->pc->conn, e->name, NULL);
        }
        entry_release(e);
        r->retried = 1;
        p->st.reprepares++;
        molt_db__pconn_requeue(r->pc, r);
        run(r);
        return;
    }
    if (e != NULL)
        entry_release(e);
    molt_db_pconn *pc = r->pc;
    if (pc != NULL)
        molt_db__pconn_request_ended(pc, r);
    if (!r->user_done)
        deliver(r, status, err);
    else
        maybe_free(r);
}

/* ---- starting ---------------------------------------------------------- */

static void arm(molt_db_preq *r, uint64_t at)
{
    if (at == 0) {
        molt_db__timer_stop(r->pool->loop, r->timer);
        return;
    }
    uint64_t now = molt_db__now_ms(r->pool->loop);
    molt_db__timer_start(r->pool->loop, r->timer, at > now ? at - now : 0);
}

/* A waiting request's timer fires from the loop at once: on_req_timer
 * delivers the connect error (or waits on if the pool connected since). */
static void fail_soon(molt_db_preq *r)
{
    molt_db__timer_start(r->pool->loop, r->timer, 0);
}

/* A waiting request's timer: its deadline or the end of max_wait_ms. */
static void arm_waiting(molt_db_preq *r)
{
    uint64_t at = r->deadline_ms;
    if (r->acquire_deadline_ms != 0 &&
        (at == 0 || r->acquire_deadline_ms < at))
        at = r->acquire_deadline_ms;
    arm(r, at);
}

void molt_db__preq_start(molt_db_preq *r, molt_db_pconn *pc)
{
    molt_db_pool *p = r->pool;
    if (r->tx == NULL || r->kind == MOLT_DB_PREQ_BEGIN) {
        uint64_t waited = molt_db__hrtime_ns() - r->t_submit_ns;
        molt_db__hist_add(&p->m.acquire, waited);
        if (waited / 1000 > p->st.max_wait_us)
            p->st.max_wait_us = waited / 1000;
    }
    r->state = MOLT_DB_PREQ_RUNNING;
    r->pc = pc;
    pc->inflight++;
    if (r->close_conn)
        pc->retiring = 1;
    if (r->kind == MOLT_DB_PREQ_BEGIN && r->tx != NULL) {
        pc->tx = r->tx; /* pinned from BEGIN on */
        pc->state = MOLT_DB_PC_PINNED;
        r->tx->pc = pc;
    }
    molt_db_preq *before = pc->run_tail;
    molt_db__pconn_run_push(pc, r);
    arm(r, r->deadline_ms);
    /* (held requests are the running list's tail: none overtakes them) */
    if (molt_db__pconn_cancel_pending(pc) || (before != NULL && before->held)) {
        r->held = 1;
        return;
    }
    run(r);
}

void molt_db__preq_release_held(molt_db_pconn *pc, int send)
{
    for (;;) {
        molt_db_preq *r = pc->run_head;
        while (r != NULL && !r->held)
            r = r->cnext;
        if (r == NULL)
            return;
        r->held = 0;
        if (send && !r->user_done) {
            run(r);
            continue;
        }
        if (!r->user_done)
            molt_db__preq_finish_later(r, MOLT_DB_ECLOSED, NULL);
        molt_db__pconn_request_ended(pc, r);
        maybe_free(r);
    }
}

static int copy_request(molt_db_preq *r, const char *sql, size_t nparams,
                        const molt_db_param *params)
{
    size_t n = strlen(sql);
    if (n + 1 > r->sql_cap) {
        char *s = realloc(r->sql, n + 1);
        if (s == NULL)
            return MOLT_DB_ENOMEM;
        r->sql = s;
        r->sql_cap = n + 1;
    }
    memcpy(r->sql, sql, n + 1);
    r->sql_len = n;
    size_t bytes = 0;
    for (size_t i = 0; i < nparams; i++) {
        if (params[i].len < -1 || (params[i].len > 0 && params[i].data == NULL))
            return MOLT_DB_EINVAL;
        if (params[i].len > 0)
            bytes += (size_t)params[i].len;
    }
    if (nparams > r->params_cap) {
        molt_db_param *pp = realloc(r->params, nparams * sizeof *pp);
        if (pp == NULL)
            return MOLT_DB_ENOMEM;
        r->params = pp;
        uint32_t *pt = realloc(r->ptypes, nparams * sizeof *pt);
        if (pt == NULL)
            return MOLT_DB_ENOMEM;
        r->ptypes = pt;
        r->params_cap = nparams;
    }
    if (bytes > r->pdata_cap) {
        uint8_t *d = realloc(r->pdata, bytes);
        if (d == NULL)
            return MOLT_DB_ENOMEM;
        r->pdata = d;
        r->pdata_cap = bytes;
    }
    size_t off = 0;
    for (size_t i = 0; i < nparams; i++) {
        r->params[i] = params[i];
        r->ptypes[i] = params[i].oid;
        if (params[i].len > 0) {
            memcpy(r->pdata + off, params[i].data, (size_t)params[i].len);
            r->params[i].data = r->pdata + off;
            off += (size_t)params[i].len;
        } else {
            r->params[i].data = NULL;
        }
    }
    r->nparams = nparams;
    return MOLT_DB_OK;
}

/* A new request: slot, copies, deadline. *out is not queued yet. */
int molt_db__preq_new(molt_db_pool *p, const char *sql, size_t nparams,
                      const molt_db_param *params,
                      const molt_db_result_handler *h, int timeout_ms,
                      const char *tag, molt_db_preq **out)
{
    molt_db_preq *r = slot_alloc(p);
    if (r == NULL)
        return MOLT_DB_ENOMEM;
    int rc = copy_request(r, sql, nparams, params);
    if (rc == MOLT_DB_OK && r->timer == NULL) {
        r->timer = molt_db__timer_new(p->loop, 0, on_req_timer, r);
        if (r->timer == NULL)
            rc = MOLT_DB_ENOMEM;
    }
    if (rc != MOLT_DB_OK) {
        r->delivered = 1;
        slot_free(r);
        return rc;
    }
    r->h = *h;
    r->kind = MOLT_DB_PREQ_QUERY;
    r->tx = NULL;
    r->force_simple = 0;
    r->read_only = r->read_only_tx = r->close_conn = 0;
    r->tag = molt_db__metrics_tag(&p->m, tag);
    if (p->s.statement_mode == MOLT_DB_STMT_CACHED)
        r->hash = molt_db__sc_hash(r->sql, nparams, r->ptypes);
    int timeout = timeout_ms != 0 ? timeout_ms : p->s.query_timeout_ms;
    uint64_t now = molt_db__now_ms(p->loop);
    r->deadline_ms = timeout > 0 ? now + (uint64_t)timeout : 0;
    r->acquire_deadline_ms =
        p->s.max_wait_ms > 0 ? now + (uint64_t)p->s.max_wait_ms : 0;
    r->t_submit_ns = molt_db__hrtime_ns();
    p->st.requests++;
    *out = r;
    return MOLT_DB_OK;
}

molt_db_pool_req_id molt_db__preq_id(const molt_db_preq *r)
{
    return (uint64_t)r->gen << 32 | (uint64_t)(r->idx + 1);
}

/* Joins the FIFO and gets a connection when one is free. */
void molt_db__preq_enqueue(molt_db_preq *r)
{
    molt_db_pool *p = r->pool;
    r->state = MOLT_DB_PREQ_WAITING;
    r->next = NULL;
    r->prev = p->wait_tail;
    if (p->wait_tail)
        p->wait_tail->next = r;
    else
        p->wait_head = r;
    p->wait_tail = r;
    p->nwaiting++;
    molt_db__pool_dispatch(p);
    if (r->state != MOLT_DB_PREQ_WAITING)
        return;
    if (p->nconns == 0 && molt_db_pool_connect_error(p) != NULL)
        fail_soon(r); /* backing off: fail fast, no attempt */
    else
        arm_waiting(r);
}

void molt_db__preq_fail_waiting(molt_db_pool *p)
{
    for (molt_db_preq *r = p->wait_head; r != NULL; r = r->next)
        fail_soon(r);
}

int molt_db_pool_query(molt_db_pool *p, const char *sql, size_t nparams,
                       const molt_db_param *params,
                       const molt_db_result_handler *h,
                       const molt_db_pool_query_options *opts,
                       molt_db_pool_req_id *id)
{
    if (p == NULL || sql == NULL || h == NULL || h->on_done == NULL ||
        (nparams > 0 && params == NULL))
        return MOLT_DB_EINVAL;
    if (p->closing)
        return MOLT_DB_ECLOSED;
    if (p->s.statement_mode == MOLT_DB_STMT_SIMPLE && nparams > 0)
        return MOLT_DB_EINVAL; /* values are never inlined into SQL */
    molt_db_preq *r = NULL;
    int rc = molt_db__preq_new(p, sql, nparams, params, h,
                               opts ? opts->timeout_ms : 0,
                               opts ? opts->tag : NULL, &r);
    if (rc != MOLT_DB_OK)
        return rc;
    r->read_only = opts != NULL && opts->read_only;
    r->read_only_tx = opts != NULL && opts->read_only_tx;
    r->close_conn = opts != NULL && opts->close_conn;
    if (id)
        *id = molt_db__preq_id(r);
    molt_db__preq_enqueue(r);
    return MOLT_DB_OK;
}

/* The live request an id names: MOLT_DB_OK and *out, EINVAL for an id the
 * pool never gave, ESTATE when it completed or its on_done is due. */
static int find_live(molt_db_pool *p, molt_db_pool_req_id id,
                     molt_db_preq **out)
{
    uint64_t idx1 = id & 0xffffffffu;
    uint32_t gen = (uint32_t)(id >> 32);
    if (p == NULL || idx1 == 0 ||
        idx1 > (uint64_t)p->nchunks * MOLT_DB_POOL_CHUNK)
        return MOLT_DB_EINVAL;
    size_t i = (size_t)idx1 - 1;
    molt_db_preq *r = &p->chunks[i / MOLT_DB_POOL_CHUNK][i % MOLT_DB_POOL_CHUNK];
    if (r->gen != gen || r->state == MOLT_DB_PREQ_FREE || r->user_done)
        return MOLT_DB_ESTATE;
    *out = r;
    return MOLT_DB_OK;
}

int molt_db_pool_cancel(molt_db_pool *p, molt_db_pool_req_id id)
{
    molt_db_preq *r = NULL;
    int rc = find_live(p, id, &r);
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db_pconn *pc = r->state == MOLT_DB_PREQ_RUNNING ? r->pc : NULL;
    molt_db__preq_finish_later(r, MOLT_DB_ECANCELED, NULL);
    if (pc != NULL)
        molt_db__pconn_want_cancel(pc);
    return MOLT_DB_OK;
}

/* ---- read backpressure ------------------------------------------------- */

/* Reading on a connection is paused while any of its requests asks. */
static void unpause(molt_db_preq *r)
{
    if (!r->paused)
        return;
    r->paused = 0;
    molt_db_pconn *pc = r->pc;
    if (pc == NULL || pc->conn == NULL)
        return;
    for (const molt_db_preq *o = pc->run_head; o != NULL; o = o->cnext)
        if (o->paused)
            return;
    molt_db_conn_resume_reading(pc->conn);
}

int molt_db_pool_pause(molt_db_pool *p, molt_db_pool_req_id id)
{
    molt_db_preq *r = NULL;
    int rc = find_live(p, id, &r);
    if (rc != MOLT_DB_OK)
        return rc;
    if (r->state != MOLT_DB_PREQ_RUNNING || r->pc == NULL ||
        r->pc->conn == NULL)
        return MOLT_DB_ESTATE;
    r->paused = 1;
    molt_db_conn_pause_reading(r->pc->conn);
    return MOLT_DB_OK;
}

int molt_db_pool_resume(molt_db_pool *p, molt_db_pool_req_id id)
{
    molt_db_preq *r = NULL;
    int rc = find_live(p, id, &r);
    if (rc != MOLT_DB_OK)
        return rc;
    unpause(r);
    return MOLT_DB_OK;
}
