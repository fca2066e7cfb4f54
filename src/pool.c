/*
 * The pool handle: settings, the life cycle of its connections (open, keep
 * min_conns, lifetime with jitter, idle timeout, health check, backoff on
 * reconnect, cancel drains, rollback on dirty release) and dispatch of
 * waiting requests to connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"

void molt_db_pool_settings_init(molt_db_pool_settings *s)
{
    memset(s, 0, sizeof *s);
    s->min_conns = 0;
    s->max_conns = 10;
    s->max_idle_ms = 10 * 60 * 1000;
    s->max_lifetime_ms = 60 * 60 * 1000;
    s->lifetime_jitter_pct = 10;
    s->connect_timeout_ms = 10000;
    s->query_timeout_ms = 0;
    s->max_wait_ms = 30000;
    s->health_check_interval_ms = 30000;
    s->statement_cache_size = 256;
    s->statement_mode = MOLT_DB_STMT_CACHED;
    s->pipeline_depth = 1;
    s->cancel_timeout_ms = 2000;
    s->reconnect_min_ms = 50;
    s->reconnect_max_ms = 5000;
}

static int check_settings(const molt_db_pool_settings *s, molt_db_error *err)
{
#define BAD(...) return molt_db_error_set(err, MOLT_DB_ECONFIG, __VA_ARGS__)
    if (s->max_conns < 1)
        BAD("max_conns must be at least 1 (got %d)", s->max_conns);
    if (s->min_conns < 0 || s->min_conns > s->max_conns)
        BAD("min_conns must be in 0..max_conns (got %d)", s->min_conns);
    if (s->max_idle_ms < 0 || s->max_lifetime_ms < 0)
        BAD("max_idle_ms and max_lifetime_ms must not be negative");
    if (s->lifetime_jitter_pct < 0 || s->lifetime_jitter_pct > 50)
        BAD("lifetime_jitter_pct must be in 0..50 (got %d)",
            s->lifetime_jitter_pct);
    if (s->connect_timeout_ms < 0 || s->query_timeout_ms < 0 ||
        s->statement_timeout_ms < 0 || s->client_check_ms < 0 ||
        s->max_wait_ms < 0 || s->health_check_interval_ms < 0)
        BAD("timeouts must not be negative");
    if (s->statement_cache_size < 1)
        BAD("statement_cache_size must be at least 1 (got %d)",
            s->statement_cache_size);
    if (s->statement_mode != MOLT_DB_STMT_CACHED &&
        s->statement_mode != MOLT_DB_STMT_UNNAMED &&
        s->statement_mode != MOLT_DB_STMT_SIMPLE)
        BAD("statement_mode %d is not a molt_db_stmt_mode",
            (int)s->statement_mode);
    if (s->pipeline_depth < 1 || s->pipeline_depth > 65536)
        BAD("pipeline_depth must be in 1..65536 (got %d)", s->pipeline_depth);
    if (s->cancel_timeout_ms < 1)
        BAD("cancel_timeout_ms must be at least 1");
    if (s->reconnect_min_ms < 1 || s->reconnect_max_ms < s->reconnect_min_ms)
        BAD("need 1 <= reconnect_min_ms <= reconnect_max_ms");
    return MOLT_DB_OK;
#undef BAD
}

uint64_t molt_db__pool_rand(molt_db_pool *p)
{
    uint64_t x = p->rng; /* xorshift64: jitter only, not security */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    return x;
}

/* ---- connections ------------------------------------------------------- */

static void list_remove(molt_db_pool *p, molt_db_pconn *pc)
{
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        p->conns_head = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    else
        p->conns_tail = pc->prev;
    pc->prev = pc->next = NULL;
}

static void pconn_free_if_done(molt_db_pconn *pc)
{
    if (pc->refs > 0)
        return;
    molt_db_pool *p = pc->pool;
    molt_db__sc_clear(&pc->cache);
    free(pc);
    p->nclosing--;
    molt_db__pool_maybe_finish_close(p);
}

static void on_conn_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    molt_db_pconn *pc = ud;
    pc->conn = NULL;
    pc->refs--;
    pconn_free_if_done(pc);
}

/* Adds the connection's byte counters to st's. */
static void add_bytes(molt_db_pool_stats *st, const molt_db_conn *c)
{
    uint64_t in, out;
    molt_db_conn_bytes(c, &in, &out);
    st->bytes_in += in;
    st->bytes_out += out;
}

void molt_db__pconn_discard(molt_db_pconn *pc, int abandoned)
{
    if (pc->state == MOLT_DB_PC_CLOSING)
        return;
    molt_db_pool *p = pc->pool;
    int was_open = pc->state != MOLT_DB_PC_CONNECTING;
    if (!was_open)
        p->nopening--;
    add_bytes(&p->st, pc->conn);
    pc->state = MOLT_DB_PC_CLOSING;
    list_remove(p, pc);
    p->nconns--;
    p->nclosing++;
    if (was_open) {
        p->st.conns_closed++;
        if (abandoned)
            p->st.conns_abandoned++;
    }
    if (pc->tx != NULL) {
        pc->tx->pc = NULL; /* the transaction is lost */
        pc->tx = NULL;
    }
    molt_db__timer_free(p->loop, &pc->drain_timer);
    molt_db__preq_release_held(pc, 0);
    pc->refs++;
    /* Requests still on it complete with ECLOSED from here. */
    molt_db_conn_close(pc->conn, on_conn_closed, pc);
    if (!p->closing)
        molt_db__pool_grow(p);
}

static void on_broken(molt_db_conn *c, int code, const molt_db_error *err,
                      void *ud)
{
    (void)c;
    (void)code;
    (void)err;
    molt_db_pconn *pc = ud;
    pc->broken = 1;
    molt_db__pconn_discard(pc, 1);
    molt_db__pool_dispatch(pc->pool);
}

static void schedule_backoff(molt_db_pool *p);

/* A connect error the server gave no SQLSTATE (refused, unresolvable, timed
 * out, TLS, lost during start-up) gets the standard one of its class, so a
 * caller can tell "cannot connect" from a query's error by SQLSTATE alone. */
static void set_connect_sqlstate(molt_db_error *e)
{
    if (e->sqlstate[0] != 0)
        return;
    const char *s = e->code == MOLT_DB_EIO || e->code == MOLT_DB_EPROTO
                        ? "08006"  /* connection_failure */
                        : "08001"; /* sqlclient_unable_to_establish_... */
    memcpy(e->sqlstate, s, 6);
}

/* A connect attempt failed (last_connect_err says why): the next one waits
 * for the backoff, and when the pool has no connection at all (none open,
 * none opening) the waiting requests get the error now instead of waiting
 * out max_wait_ms for attempts that fail the same way. */
static void connect_failed(molt_db_pool *p)
{
    set_connect_sqlstate(&p->last_connect_err);
    p->connect_failures_row++;
    schedule_backoff(p);
    if (p->nconns == 0)
        molt_db__preq_fail_waiting(p);
}

static void on_connected(molt_db_conn *c, int status, const molt_db_error *err,
                         void *ud)
{
    (void)c;
    molt_db_pconn *pc = ud;
    molt_db_pool *p = pc->pool;
    if (pc->state == MOLT_DB_PC_CLOSING)
        return; /* we closed it; on_conn_closed frees pc */
    if (status != MOLT_DB_OK) {
        /* The connection frees itself after this callback. */
        add_bytes(&p->st, c);
        p->nopening--;
        p->nconns--;
        list_remove(p, pc);
        molt_db__sc_clear(&pc->cache);
        free(pc);
        p->st.connect_failures++;
        if (err != NULL)
            molt_db_error_copy(&p->last_connect_err, err);
        else
            molt_db_error_set(&p->last_connect_err, status, "connect failed");
        connect_failed(p);
        return;
    }
    p->nopening--;
    p->connect_failures_row = 0;
    molt_db_error_clear(&p->last_connect_err);
    p->st.conns_opened++;
    uint64_t now = molt_db__now_ms(p->loop);
    pc->state = MOLT_DB_PC_READY;
    pc->created_ms = pc->last_used_ms = now;
    pc->expires_ms = 0;
    if (p->s.max_lifetime_ms > 0) {
        uint64_t life = (uint64_t)p->s.max_lifetime_ms;
        uint64_t jitter = life * (uint64_t)p->s.lifetime_jitter_pct / 100;
        if (jitter > 0)
            life -= molt_db__pool_rand(p) % (jitter + 1);
        pc->expires_ms = now + life;
    }
    molt_db__pool_dispatch(p);
}

static int pconn_open(molt_db_pool *p)
{
    molt_db_pconn *pc = calloc(1, sizeof *pc);
    if (pc == NULL)
        return MOLT_DB_ENOMEM;
    pc->pool = p;
    if (molt_db__sc_init(&pc->cache, (size_t)p->s.statement_cache_size) !=
        MOLT_DB_OK) {
        free(pc);
        return MOLT_DB_ENOMEM;
    }
    pc->state = MOLT_DB_PC_CONNECTING;
    molt_db_conn_options o = {NULL, NULL, on_broken, pc, NULL, NULL};
    molt_db_error err;
    molt_db_error_init(&err);
    int rc = molt_db_conn_connect(p->loop, p->ci, &o, on_connected, pc,
                                  &pc->conn, &err);
    if (rc != MOLT_DB_OK) {
        molt_db_error_move(&p->last_connect_err, &err);
        set_connect_sqlstate(&p->last_connect_err);
        molt_db__sc_clear(&pc->cache);
        free(pc);
        return rc;
    }
    pc->prev = p->conns_tail;
    if (p->conns_tail)
        p->conns_tail->next = pc;
    else
        p->conns_head = pc;
    p->conns_tail = pc;
    p->nconns++;
    p->nopening++;
    return MOLT_DB_OK;
}

static void finish_close(molt_db_pool *p);

static void on_backoff(void *arg)
{
    molt_db_pool *p = arg;
    if (p->closing) {
        finish_close(p);
        return;
    }
    p->backoff_active = 0;
    molt_db__pool_grow(p);
}

static void schedule_backoff(molt_db_pool *p)
{
    if (p->closing)
        return;
    int n = p->connect_failures_row > 16 ? 16 : p->connect_failures_row;
    uint64_t d = (uint64_t)p->s.reconnect_min_ms << (n > 0 ? n - 1 : 0);
    if (d > (uint64_t)p->s.reconnect_max_ms)
        d = (uint64_t)p->s.reconnect_max_ms;
    d = d / 2 + molt_db__pool_rand(p) % (d / 2 + 1); /* jitter: d/2..d */
    p->next_connect_ms = molt_db__now_ms(p->loop) + d;
    if (!p->backoff_active) {
        p->backoff_active = 1;
        molt_db__timer_start(p->loop, p->backoff, d);
    }
}

/* Opens connections: up to min_conns, and enough for the waiters. */
void molt_db__pool_grow(molt_db_pool *p)
{
    if (p->closing)
        return;
    size_t depth = (size_t)p->s.pipeline_depth;
    size_t want = (size_t)p->s.min_conns;
    size_t need = (p->nwaiting + depth - 1) / depth + (p->nconns - p->nopening);
    if (p->nwaiting > 0 && need > want)
        want = need;
    if (want > (size_t)p->s.max_conns)
        want = (size_t)p->s.max_conns;
    if (p->nconns >= want)
        return;
    if (p->connect_failures_row > 0) {
        /* Server down: one attempt at a time, spaced by the backoff. */
        if (p->nopening > 0 || p->backoff_active)
            return;
        if (molt_db__now_ms(p->loop) < p->next_connect_ms) {
            p->backoff_active = 1;
            molt_db__timer_start(p->loop, p->backoff,
                                 p->next_connect_ms - molt_db__now_ms(p->loop));
            return;
        }
        if (pconn_open(p) != MOLT_DB_OK)
            connect_failed(p);
        return;
    }
    while (p->nconns < want) {
        if (pconn_open(p) != MOLT_DB_OK) {
            connect_failed(p);
            return;
        }
    }
}

/* The ready connection with the fewest requests and room for one more; an
 * idle one only when the request will pin it (a transaction). */
static molt_db_pconn *pick(molt_db_pool *p, int idle_only)
{
    molt_db_pconn *best = NULL, *next;
    uint64_t now = molt_db__now_ms(p->loop);
    for (molt_db_pconn *pc = p->conns_head; pc; pc = next) {
        next = pc->next;
        if (pc->state == MOLT_DB_PC_READY && pc->inflight == 0 &&
            pc->expires_ms != 0 && now >= pc->expires_ms) {
            molt_db__pconn_discard(pc, 0); /* too old: never handed out */
            continue;
        }
        if (pc->state != MOLT_DB_PC_READY || pc->retiring ||
            pc->inflight >= p->s.pipeline_depth ||
            (idle_only && pc->inflight > 0))
            continue;
        if (pc->inflight == 0)
            return pc;
        if (best == NULL || pc->inflight < best->inflight)
            best = pc;
    }
    return best;
}

void molt_db__pool_dispatch(molt_db_pool *p)
{
    if (p->dispatching || p->closing)
        return;
    p->dispatching = 1;
    while (p->wait_head != NULL) {
        molt_db_preq *r = p->wait_head;
        molt_db_pconn *pc = pick(p, r->kind == MOLT_DB_PREQ_BEGIN);
        if (pc == NULL)
            break; /* strict FIFO: nobody overtakes the head */
        molt_db__preq_queue_remove(p, r);
        if (pc->inflight > 0 && p->nopening == 0 &&
            p->nconns < (size_t)p->s.max_conns && p->connect_failures_row == 0)
            pconn_open(p); /* pipelining because all are busy: grow too */
        molt_db__preq_start(r, pc);
    }
    p->dispatching = 0;
    if (p->wait_head != NULL)
        molt_db__pool_grow(p);
}

/* ---- release: back to the pool, roll back, or close --------------------- */

static void release_check(molt_db_pconn *pc);

/* A rollback or ping the pool sent on its own has ended: 1 when the
 * connection is idle and clean again (READY), 0 when it was closed or is
 * being closed. */
static int maintenance_done(molt_db_pconn *pc, int status)
{
    pc->refs--;
    if (pc->state == MOLT_DB_PC_CLOSING) {
        pconn_free_if_done(pc);
        return 0;
    }
    if (status != MOLT_DB_OK || molt_db_conn_tx_status(pc->conn) != 'I') {
        molt_db__pconn_discard(pc, 1);
        return 0;
    }
    pc->state = MOLT_DB_PC_READY;
    return 1;
}

static void on_rollback_done(void *ud, int status, const molt_db_error *err)
{
    (void)err;
    molt_db_pconn *pc = ud;
    if (maintenance_done(pc, status))
        molt_db__pool_dispatch(pc->pool);
}

static void on_ping_done(void *ud, int status, const molt_db_error *err)
{
    (void)err;
    molt_db_pconn *pc = ud;
    if (!maintenance_done(pc, status))
        return;
    pc->last_used_ms = molt_db__now_ms(pc->pool->loop);
    molt_db__pool_dispatch(pc->pool);
}

/* Runs once pc carries no request: decides its fate. */
static void release_check(molt_db_pconn *pc)
{
    molt_db_pool *p = pc->pool;
    if (pc->cancel == MOLT_DB_CANCEL_SENT)
        return; /* wait for the CancelRequest's outcome */
    if (pc->cancel == MOLT_DB_CANCEL_FAILED || p->closing ||
        !molt_db_conn_is_ready(pc->conn)) {
        molt_db__pconn_discard(pc, pc->cancel == MOLT_DB_CANCEL_FAILED ||
                                       !molt_db_conn_is_ready(pc->conn));
        return;
    }
    pc->cancel = MOLT_DB_CANCEL_NONE;
    if (pc->drain_timer != NULL)
        molt_db__timer_stop(pc->pool->loop, pc->drain_timer);
    char tx = molt_db_conn_tx_status(pc->conn);
    if (tx == 'T' || tx == 'E') {
        molt_db_result_handler h = {NULL, NULL, NULL, on_rollback_done, pc};
        pc->state = MOLT_DB_PC_RESETTING;
        if (molt_db_conn_simple_query(pc->conn, "ROLLBACK", &h) != MOLT_DB_OK) {
            molt_db__pconn_discard(pc, 1);
            return;
        }
        pc->refs++;
        p->st.rollbacks++;
        return;
    }
    if (tx != 'I') {
        molt_db__pconn_discard(pc, 1);
        return;
    }
    if (pc->retiring || (pc->expires_ms != 0 && molt_db__now_ms(p->loop) >= pc->expires_ms)) {
        molt_db__pconn_discard(pc, 0);
        return;
    }
    pc->state = MOLT_DB_PC_READY;
}

static void cancel_next_in_line(molt_db_pconn *pc);

static void on_drain_timer(void *arg)
{
    molt_db_pconn *pc = arg;
    if (pc->drain_check) {
        if (pc->state == MOLT_DB_PC_DRAINING && pc->inflight > 0)
            cancel_next_in_line(pc);
        return;
    }
    /* The cancelled query did not end in time: state unknown. */
    molt_db__pconn_discard(pc, 1);
}

static int drain_timer_ready(molt_db_pconn *pc)
{
    if (pc->drain_timer == NULL) {
        pc->drain_timer = molt_db__timer_new(pc->pool->loop, 0,
                                             on_drain_timer, pc);
        if (pc->drain_timer == NULL) {
            molt_db__pconn_discard(pc, 1);
            return 0;
        }
    }
    return 1;
}

/* Runs on_drain_timer in ms: the drain's deadline, or (check) at once. */
static void drain_timer_start(molt_db_pconn *pc, int check, uint64_t ms)
{
    pc->drain_check = check;
    molt_db__timer_start(pc->pool->loop, pc->drain_timer, ms);
}

static void try_send_cancel(molt_db_pconn *pc);

int molt_db__pconn_cancel_pending(const molt_db_pconn *pc)
{
    return pc->state == MOLT_DB_PC_PINNED &&
           (pc->cancel == MOLT_DB_CANCEL_SENT || pc->cancel_target != NULL);
}

/* A transaction's connection, after each of a cancel's two outcomes: the
 * CancelRequest's answer and the cancelled query's end. Until both are in,
 * nothing changes: the drain's deadline stands, and the transaction's
 * requests made meanwhile are held, because PostgreSQL may act on a
 * CancelRequest late (it signals the backend twice, to its pid and to its
 * process group) and would stop the next statement instead. Once both are
 * in:
 * - the deadline is moot, whatever else the transaction runs (else it
 *   would close the transaction's connection under a statement that
 *   legitimately runs);
 * - the held requests go to the server, in order (the cancelled ones
 *   never);
 * - the connection stays the transaction's as it is (aborted, on
 *   PostgreSQL): its end decides the rest (molt_db__pconn_unpin).
 *   Releasing it here would roll the transaction back under its owner,
 *   whose next statements would then run outside any transaction;
 * - a statement cancelled while that CancelRequest was out wants its own
 *   once it is the oldest (the one the server runs): the want is read
 *   again from the running list, not kept. */
static void pinned_cancel_over(molt_db_pconn *pc)
{
    if (pc->releasing_held || molt_db__pconn_cancel_pending(pc))
        return;
    if (pc->drain_timer != NULL)
        molt_db__timer_stop(pc->pool->loop, pc->drain_timer);
    /* the oldest statement's own CancelRequest first, while the requests
     * behind it are still held (a late cancel cannot hit those); they stay
     * held until it is over too, or while it waits for a live one */
    molt_db_preq *head = pc->run_head;
    pc->cancel = head != NULL && head->user_done && !head->held &&
                         head->kind != MOLT_DB_PREQ_TXCTL
                     ? MOLT_DB_CANCEL_WANTED
                     : MOLT_DB_CANCEL_NONE;
    try_send_cancel(pc);
    if (pc->state != MOLT_DB_PC_PINNED || pc->cancel != MOLT_DB_CANCEL_NONE)
        return;
    /* a cancelled statement still on the server behind the oldest (a
     * savepoint's rollback): its CancelRequest comes when it is the
     * oldest, before anything held goes */
    for (molt_db_preq *r = head; r != NULL && !r->held; r = r->cnext)
        if (r->user_done && r->kind != MOLT_DB_PREQ_TXCTL)
            return;
    pc->releasing_held = 1;
    molt_db__preq_release_held(pc, 1);
    pc->releasing_held = 0;
}

static void on_cancel_done(void *ud, int status, const molt_db_error *err)
{
    (void)err;
    molt_db_pconn *pc = ud;
    pc->refs--;
    if (pc->state == MOLT_DB_PC_CLOSING) {
        pconn_free_if_done(pc);
        return;
    }
    pc->cancel = status == MOLT_DB_OK ? MOLT_DB_CANCEL_OK : MOLT_DB_CANCEL_FAILED;
    if (pc->cancel == MOLT_DB_CANCEL_FAILED) {
        molt_db__pconn_discard(pc, 1);
        return;
    }
    if (pc->state == MOLT_DB_PC_PINNED) {
        pinned_cancel_over(pc);
        return;
    }
    if (pc->inflight == 0) {
        release_check(pc);
        molt_db__pool_dispatch(pc->pool);
        return;
    }
    if (pc->cancel_target == NULL && pc->drain_timer != NULL) /* its query ended */
        molt_db__timer_stop(pc->pool->loop, pc->drain_timer);
    cancel_next_in_line(pc);
}

static void try_send_cancel(molt_db_pconn *pc)
{
    if (pc->cancel != MOLT_DB_CANCEL_WANTED || pc->inflight == 0)
        return;
    /* The server cancels whatever runs when the CancelRequest lands. It
     * goes at once when no live request shares the connection, or when the
     * cancelled one is the oldest (the one the server runs) and every live
     * one behind it can go again should the cancel land late and hit it
     * instead; otherwise it waits until that holds. (A transaction's
     * COMMIT/ROLLBACK behind a cancelled statement is doomed or harmless to
     * cancel.) */
    molt_db_preq *head = pc->run_head;
    int live = 0;
    int early = pc->state != MOLT_DB_PC_PINNED && head->user_done;
    for (molt_db_preq *r = head; r; r = r->cnext)
        if (!r->user_done && !r->held && r->kind != MOLT_DB_PREQ_TXCTL) {
            live = 1;
            early = early && molt_db__preq_resendable(r);
        }
    if ((live && !early) ||
        (pc->cancel_target == head && pc->cancel_target_gen == head->gen))
        return; /* (the second: its CancelRequest went out already) */
    molt_db_pool *p = pc->pool;
    if (!drain_timer_ready(pc))
        return;
    if (molt_db_conn_cancel(pc->conn, p->s.cancel_timeout_ms, on_cancel_done,
                            pc) != MOLT_DB_OK) {
        molt_db__pconn_discard(pc, 1);
        return;
    }
    pc->refs++;
    pc->cancel = MOLT_DB_CANCEL_SENT;
    pc->cancel_target = head;
    pc->cancel_target_gen = head->gen;
    for (molt_db_preq *r = head->cnext; live && r; r = r->cnext)
        r->cancel_exposed |= !r->user_done;
    p->st.cancel_requests++;
    drain_timer_start(pc, 0, 2 * (uint64_t)p->s.cancel_timeout_ms);
}

/* On a draining connection (not a transaction's) whose CancelRequest (if
 * any) is through: the oldest request, when cancelled, wants a
 * CancelRequest of its own. */
static void cancel_next_in_line(molt_db_pconn *pc)
{
    molt_db_preq *head = pc->run_head;
    if (pc->state == MOLT_DB_PC_DRAINING && pc->cancel == MOLT_DB_CANCEL_OK &&
        head != NULL && head->user_done && head->kind != MOLT_DB_PREQ_TXCTL)
        pc->cancel = MOLT_DB_CANCEL_WANTED;
    try_send_cancel(pc);
}

void molt_db__pconn_want_cancel(molt_db_pconn *pc)
{
    if (pc->state == MOLT_DB_PC_CLOSING)
        return;
    if (pc->state != MOLT_DB_PC_PINNED)
        pc->state = MOLT_DB_PC_DRAINING; /* no new requests */
    if (pc->cancel == MOLT_DB_CANCEL_NONE || pc->cancel == MOLT_DB_CANCEL_OK)
        pc->cancel = MOLT_DB_CANCEL_WANTED;
    try_send_cancel(pc);
}

static void run_list_unlink(molt_db_pconn *pc, molt_db_preq *r)
{
    if (r->cprev)
        r->cprev->cnext = r->cnext;
    else
        pc->run_head = r->cnext;
    if (r->cnext)
        r->cnext->cprev = r->cprev;
    else
        pc->run_tail = r->cprev;
    r->cprev = r->cnext = NULL;
}

void molt_db__pconn_run_push(molt_db_pconn *pc, molt_db_preq *r)
{
    r->cnext = NULL;
    r->cprev = pc->run_tail;
    if (pc->run_tail)
        pc->run_tail->cnext = r;
    else
        pc->run_head = r;
    pc->run_tail = r;
}

void molt_db__pconn_requeue(molt_db_pconn *pc, molt_db_preq *r)
{
    run_list_unlink(pc, r);
    molt_db__pconn_run_push(pc, r);
}

void molt_db__pconn_request_ended(molt_db_pconn *pc, molt_db_preq *r)
{
    run_list_unlink(pc, r);
    r->pc = NULL;
    if (pc->cancel_target == r && pc->cancel_target_gen == r->gen)
        pc->cancel_target = NULL; /* the cancelled query ended */
    pc->inflight--;
    molt_db_pool *p = pc->pool;
    if (pc->state == MOLT_DB_PC_CLOSING)
        return;
    pc->last_used_ms = molt_db__now_ms(p->loop);
    if (!molt_db_conn_is_ready(pc->conn)) {
        molt_db__pconn_discard(pc, 1);
        return;
    }
    if (pc->state == MOLT_DB_PC_PINNED) {
        pinned_cancel_over(pc); /* the transaction decides the rest */
        return;
    }
    if (pc->state == MOLT_DB_PC_READY &&
        molt_db_conn_tx_status(pc->conn) != 'I')
        pc->state = MOLT_DB_PC_DRAINING; /* someone ran BEGIN: reset first */
    if (pc->state == MOLT_DB_PC_DRAINING) {
        if (pc->inflight > 0) {
            /* Unless a CancelRequest is still out, the cancelled query (if
             * any) ended: the live requests behind it may take as long as
             * they take; whether the oldest now wants a CancelRequest is
             * decided once the answers already read are through (a batch
             * ends all its members at once). */
            if (pc->cancel != MOLT_DB_CANCEL_SENT && drain_timer_ready(pc))
                drain_timer_start(pc, 1, 0);
            return;
        }
        if (pc->cancel == MOLT_DB_CANCEL_WANTED)
            pc->cancel = MOLT_DB_CANCEL_NONE; /* ended before we had to */
        release_check(pc);
    } else if (pc->state == MOLT_DB_PC_READY && pc->inflight == 0 &&
               (pc->retiring ||
                (pc->expires_ms != 0 && molt_db__now_ms(p->loop) >= pc->expires_ms))) {
        molt_db__pconn_discard(pc, 0);
        return;
    }
    molt_db__pool_dispatch(p);
}

void molt_db__pconn_unpin(molt_db_pconn *pc)
{
    pc->tx = NULL;
    if (pc->state == MOLT_DB_PC_CLOSING)
        return;
    pc->state = MOLT_DB_PC_DRAINING;
    if (pc->inflight > 0) {
        try_send_cancel(pc);
        return;
    }
    if (pc->cancel == MOLT_DB_CANCEL_WANTED)
        pc->cancel = MOLT_DB_CANCEL_NONE;
    release_check(pc);
    molt_db__pool_dispatch(pc->pool);
}

/* ---- maintenance ------------------------------------------------------- */

static void on_maint(void *arg)
{
    molt_db_pool *p = arg;
    molt_db__timer_start(p->loop, p->maint, p->maint_ms);
    uint64_t now = molt_db__now_ms(p->loop);
    molt_db_pconn *next;
    for (molt_db_pconn *pc = p->conns_head; pc; pc = next) {
        next = pc->next;
        if (pc->state != MOLT_DB_PC_READY || pc->inflight > 0)
            continue;
        if (pc->expires_ms != 0 && now >= pc->expires_ms) {
            molt_db__pconn_discard(pc, 0);
            continue;
        }
        if (p->s.max_idle_ms > 0 && p->nconns > (size_t)p->s.min_conns &&
            now - pc->last_used_ms >= (uint64_t)p->s.max_idle_ms) {
            molt_db__pconn_discard(pc, 0);
            continue;
        }
        if (p->s.health_check_interval_ms > 0 &&
            now - pc->last_used_ms >= (uint64_t)p->s.health_check_interval_ms) {
            molt_db_result_handler h = {NULL, NULL, NULL, on_ping_done, pc};
            if (molt_db_conn_simple_query(pc->conn, "", &h) != MOLT_DB_OK) {
                molt_db__pconn_discard(pc, 1);
                continue;
            }
            pc->refs++;
            pc->state = MOLT_DB_PC_CHECKING;
        }
    }
    molt_db__pool_grow(p);
}

static uint64_t maint_interval(const molt_db_pool_settings *s)
{
    uint64_t iv = 1000;
    if (s->health_check_interval_ms > 0 &&
        (uint64_t)s->health_check_interval_ms / 2 < iv)
        iv = (uint64_t)s->health_check_interval_ms / 2;
    if (s->max_idle_ms > 0 && (uint64_t)s->max_idle_ms / 2 < iv)
        iv = (uint64_t)s->max_idle_ms / 2;
    if (s->max_lifetime_ms > 0 && (uint64_t)s->max_lifetime_ms / 2 < iv)
        iv = (uint64_t)s->max_lifetime_ms / 2;
    return iv < 10 ? 10 : iv;
}

/* ---- the pool handle --------------------------------------------------- */

/* Appends `-c NAME=MS` to the startup options when MS > 0 (after the
 * conninfo's own: the pool's setting wins). */
static int add_server_setting(molt_db_conninfo *ci, const char *name, int ms)
{
    if (ms <= 0)
        return MOLT_DB_OK;
    const char *old = ci->options ? ci->options : "";
    size_t n = strlen(old) + strlen(name) + 24;
    char *opt = malloc(n);
    if (opt == NULL)
        return MOLT_DB_ENOMEM;
    snprintf(opt, n, "%s%s-c %s=%d", old, *old ? " " : "", name, ms);
    free(ci->options);
    ci->options = opt;
    return MOLT_DB_OK;
}

int molt_db_pool_open(molt_db_loop *loop, const molt_db_conninfo *ci,
                      const molt_db_pool_settings *settings,
                      molt_db_pool **out, molt_db_error *err)
{
    *out = NULL;
    if (loop == NULL || ci == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "loop and ci are needed");
    molt_db_pool_settings s;
    if (settings)
        s = *settings;
    else
        molt_db_pool_settings_init(&s);
    int rc = check_settings(&s, err);
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    p->ci = molt_db__conninfo_dup(ci);
    if (p->ci == NULL) {
        free(p);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    }
    if (s.connect_timeout_ms > 0)
        p->ci->connect_timeout_ms = s.connect_timeout_ms;
    if (add_server_setting(p->ci, "statement_timeout", s.statement_timeout_ms) != MOLT_DB_OK ||
        add_server_setting(p->ci, "client_connection_check_interval", s.client_check_ms) !=
            MOLT_DB_OK) {
        molt_db_conninfo_free(p->ci);
        free(p);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    }
    p->loop = loop;
    p->s = s;
    p->rng = (molt_db__hrtime_ns() ^ (uint64_t)(uintptr_t)p) | 1;
    molt_db_error_init(&p->last_connect_err);
    p->maint = molt_db__timer_new(loop, MOLT_DB_LOOP_WEAK, on_maint, p);
    p->backoff = molt_db__timer_new(loop, 0, on_backoff, p);
    if (p->maint == NULL || p->backoff == NULL) {
        molt_db__timer_free(loop, &p->maint);
        molt_db__timer_free(loop, &p->backoff);
        molt_db_conninfo_free(p->ci);
        free(p);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    }
    p->maint_ms = maint_interval(&s);
    molt_db__timer_start(loop, p->maint, p->maint_ms);
    molt_db__loop_ref(loop);
    molt_db__pool_grow(p);
    *out = p;
    return MOLT_DB_OK;
}

void molt_db__pool_maybe_finish_close(molt_db_pool *p)
{
    if (!p->closing || p->nconns > 0 || p->nclosing > 0 || p->active > 0 ||
        p->ntx > 0)
        return;
    if (p->closing != 1)
        return;
    /* The close callback runs from the loop (the backoff timer's), never
     * inside the caller's call. */
    p->closing = 2;
    molt_db__preq_close_timers(p);
    molt_db__timer_free(p->loop, &p->maint);
    molt_db__timer_start(p->loop, p->backoff, 0);
}

static void finish_close(molt_db_pool *p)
{
    molt_db_loop *loop = p->loop;
    p->closing = 3;
    molt_db__timer_free(loop, &p->backoff);
    molt_db__preq_free_slots(p);
    molt_db__metrics_free(&p->m);
    molt_db_error_clear(&p->last_connect_err);
    molt_db_conninfo_free(p->ci);
    if (p->close_cb)
        p->close_cb(p, p->close_ud);
    free(p);
    molt_db__loop_unref(loop);
}

void molt_db_pool_close(molt_db_pool *p, molt_db_pool_close_cb cb, void *ud)
{
    if (p == NULL || p->closing)
        return;
    p->closing = 1;
    p->close_cb = cb;
    p->close_ud = ud;
    molt_db__timer_stop(p->loop, p->maint);
    molt_db__timer_stop(p->loop, p->backoff);
    p->backoff_active = 0;
    /* Every live request gets ECLOSED from the loop. */
    for (size_t c = 0; c < p->nchunks; c++) {
        for (size_t i = 0; i < MOLT_DB_POOL_CHUNK; i++) {
            molt_db_preq *r = &p->chunks[c][i];
            if (r->state == MOLT_DB_PREQ_WAITING ||
                (r->state == MOLT_DB_PREQ_RUNNING && !r->user_done))
                molt_db__preq_finish_later(r, MOLT_DB_ECLOSED, NULL);
        }
    }
    while (p->conns_head)
        molt_db__pconn_discard(p->conns_head, 0);
    molt_db__pool_maybe_finish_close(p);
}

const molt_db_error *molt_db_pool_connect_error(const molt_db_pool *p)
{
    for (const molt_db_pconn *pc = p->conns_head; pc; pc = pc->next)
        if (pc->state != MOLT_DB_PC_CONNECTING)
            return NULL;
    return p->last_connect_err.code != MOLT_DB_OK ? &p->last_connect_err : NULL;
}

void molt_db_pool_get_stats(const molt_db_pool *p, molt_db_pool_stats *out)
{
    *out = p->st;
    out->conns = p->nconns;
    out->conns_opening = p->nopening;
    out->waiters = p->nwaiting;
    out->conns_idle = 0;
    out->conns_in_use = 0;
    out->conns_tx_idle = 0;
    for (const molt_db_pconn *pc = p->conns_head; pc; pc = pc->next) {
        add_bytes(out, pc->conn);
        if (pc->state == MOLT_DB_PC_CONNECTING)
            continue;
        if (pc->state == MOLT_DB_PC_READY && pc->inflight == 0) {
            out->conns_idle++;
            continue;
        }
        out->conns_in_use++;
        if (pc->state == MOLT_DB_PC_PINNED && pc->inflight == 0 &&
            pc->cancel != MOLT_DB_CANCEL_SENT)
            out->conns_tx_idle++;
    }
}
