/* Session-bound transactions: the tx_* entries, their bookkeeping and
 * their bounds (see tx.h). */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "mpbuf.h"
#include "replica_route.h"
#include "request.h"
#include "sched.h"
#include "session.h"
#include "worker.h"
#include "zalloc.h"

/* savepoints one transaction may nest */
#define MW_TX_MAX_DEPTH 64
/* an abandoned transaction whose rollback could not be sent tries again */
#define MW_TX_RETRY_MS 100

static void on_timer(uv_timer_t *h);
static void run_after(mw_tx *t);
static void refuse_after(mw_tx *t, const char *why);

static mw_tx *find(mw_session *s, uint64_t id)
{
    for (mw_tx *t = s ? s->txs : NULL; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static void refuse_after_request(mw_tx *t, mw_request *r, const char *why)
{
    char msg[MW_MSG_SIZE];
    snprintf(msg, sizeof msg, "transaction %llu %s while this request waited "
             "for the one before it to end", (unsigned long long)t->id, why);
    mw_request_reply(r, MW_INVALID_INPUT, msg, NULL);
}

/* The request parked in t->after is answered: t ended or is rolled back. */
static void refuse_after(mw_tx *t, const char *why)
{
    mw_request *r = t->after;
    if (!r)
        return;
    t->after = NULL;
    r->tx = NULL;
    refuse_after_request(t, r, why);
}

/* t leaves its session: its id is unknown from now on, and it no longer
 * counts in the session's share. */
static void unlink_session(mw_tx *t)
{
    mw_session *s = t->s;
    if (!s)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        s->txs = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
    s->ntxs--;
    mw_replica_session_wrote(s); /* its reads must see what it committed */
    t->s = NULL;
    mw_sched_tx_leave_lane(t);
}

static void on_closed(uv_handle_t *h)
{
    mw_tx *t = h->data;
    mw_worker *w = t->w;
    free(t);
    w->live_txs--;
    mw_worker_maybe_exit(w);
}

/* The backend holds nothing of t any more and no request runs in it. */
static void tx_free(mw_tx *t)
{
    refuse_after(t, "ended");
    unlink_session(t);
    mw_sched_tx_release(t);
    (*mw_sched_tx_count(t->w, t->alias_index))--;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_closed);
}

/* Idle: until tx_idle_timeout_ms or the end of tx_max_ms, whichever comes
 * first; a request running: until the end of tx_max_ms. */
static void arm(mw_tx *t)
{
    const mw_config *c = t->w->cfg;
    uint64_t now = uv_now(t->w->loop);
    uint64_t end = t->t_begin_ms + (uint64_t)c->tx_max_ms;
    uint64_t left = end > now ? end - now : 1;
    if (!t->req && (uint64_t)c->tx_idle_timeout_ms < left)
        left = (uint64_t)c->tx_idle_timeout_ms;
    uv_timer_start(&t->timer, on_timer, left, 0);
}

static void run_step(mw_tx *t, mw_tx_step step, mw_request *r)
{
    t->step = step;
    t->req = r;
    if (step == MW_TX_COMMIT || step == MW_TX_ROLLBACK)
        t->state = MW_TX_ENDING;
    uv_timer_stop(&t->timer);
    if (r) {
        r->tx = t;
        r->backend = t->backend;
        r->alias_index = t->alias_index;
        r->db_busy = 1;
    }
    t->backend->ops->tx_step(t->backend, t, step);
}

/* An abandoned transaction ends as soon as nothing runs in it: its
 * savepoints one step each, then ROLLBACK. */
static void roll_back_abandoned(mw_tx *t)
{
    if (t->req || t->state != MW_TX_OPEN)
        return;
    run_step(t, t->depth > 0 ? MW_TX_ROLLBACK_TO : MW_TX_ROLLBACK, NULL);
}

static void abandon(mw_tx *t)
{
    t->abandoned = 1;
    unlink_session(t);
    roll_back_abandoned(t);
}

static void on_timer(uv_timer_t *h)
{
    mw_tx *t = h->data;
    if (t->state != MW_TX_OPEN)
        return;
    if (t->abandoned) {
        roll_back_abandoned(t); /* a retry */
        return;
    }
    const mw_config *c = t->w->cfg;
    int lifetime = uv_now(t->w->loop) >= t->t_begin_ms + (uint64_t)c->tx_max_ms;
    char msg[MW_MSG_SIZE];
    snprintf(msg, sizeof msg, "transaction %llu rolled back: %s",
             (unsigned long long)t->id,
             lifetime ? "open longer than tx_max_ms" : "idle longer than tx_idle_timeout_ms");
    mw_log("session %llu: %s", t->s ? (unsigned long long)t->s->id : 0ULL, msg);
    if (t->req) {
        mw_request *r = t->req;
        t->abandoned = 1;
        unlink_session(t);
        mw_request_stop(r, MW_TIMEOUT, msg); /* rolled back once it stopped */
        return;
    }
    abandon(t);
}

static void reply_state(mw_request *r, const mw_tx *t, int ended)
{
    molt_db_buf p;
    msgpack_packer pk;
    molt_db_buf_init(&p);
    mw_packer_init(&pk, &p);
    msgpack_pack_map(&pk, 4);
    mw_pack_key(&pk, "tx_id");
    msgpack_pack_uint64(&pk, t->id);
    mw_pack_key(&pk, "depth");
    msgpack_pack_int(&pk, t->depth);
    mw_pack_key(&pk, "read_only");
    mw_pack_bool(&pk, t->read_only);
    mw_pack_key(&pk, "ended");
    mw_pack_bool(&pk, ended);
    mw_request_reply_payload(r, &p);
    molt_db_buf_free(&p);
}

/* The open transaction r names; or NULL after answering r InvalidInput,
 * or after parking r in t->after. A client told at once that its statement
 * was cancelled or timed out sends the transaction's next request (often
 * its ROLLBACK) while that statement still ends on the server: that one
 * request waits for it instead of being refused; any more are refused. */
static mw_tx *lookup(mw_request *r, uint64_t id)
{
    char msg[MW_MSG_SIZE];
    mw_tx *t = find(r->s, id);
    if (t && t->after && t->after->replied) { /* it was cancelled waiting */
        t->after->tx = NULL;
        t->after = NULL;
    }
    if (t && t->state == MW_TX_OPEN && t->req && t->req->replied && !t->after) {
        t->after = r;
        r->tx = t;
        return NULL;
    }
    if (!t)
        snprintf(msg, sizeof msg, "unknown tx_id %llu (no open transaction of "
                 "this connection has it: it ended, or was rolled back after "
                 "tx_idle_timeout_ms or tx_max_ms)", (unsigned long long)id);
    else if (t->state != MW_TX_OPEN)
        snprintf(msg, sizeof msg, "transaction %llu is %s", (unsigned long long)id,
                 t->state == MW_TX_ENDING ? "ending" : "not begun yet");
    else if (t->req)
        snprintf(msg, sizeof msg, "transaction %llu is busy with request %llu: "
                 "it runs one request at a time", (unsigned long long)id,
                 (unsigned long long)t->req->id);
    else
        return t;
    mw_request_reply(r, MW_INVALID_INPUT, msg, NULL);
    return NULL;
}

static int parse(mw_request *r, const uint8_t *payload, size_t len, int begin,
                 mw_tx_payload *p)
{
    char msg[MW_MSG_SIZE];
    int rc = mw_tx_payload_parse(payload, len, begin, r->w->cfg, p, msg);
    if (rc < 0)
        mw_request_reply(r, rc == -2 ? MW_INTERNAL_ERROR : MW_INVALID_INPUT,
                         rc == -2 ? "out of memory" : msg, NULL);
    return rc;
}

/* Transaction ids count up from a random start below 2^52 (exact in a
 * double): a client whose connection or worker was replaced cannot name a
 * transaction it did not begin by reusing an old id. */
static uint64_t next_id(mw_worker *w)
{
    if (w->last_tx_id == 0) {
        uint64_t r = 0;
        if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
            r = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32);
        w->last_tx_id = (r & (((uint64_t)1 << 52) - 1)) | 1;
    }
    return ++w->last_tx_id;
}

static size_t alias_index(mw_worker *w, const mw_backend *b)
{
    size_t i = 0;
    while (i < w->nbackends && w->backends[i] != b)
        i++;
    return i;
}

/* max_session_tx and tx_alias_share_pct: 0, or -1 after answering Busy. */
/* How many of s's open transactions are on backend b. */
static size_t open_in_session(const mw_session *s, const mw_backend *b)
{
    size_t n = 0;
    for (const mw_tx *t = s->txs; t; t = t->next)
        n += t->backend == b;
    return n;
}

/* max_session_tx and tx_alias_share_pct: 0, or -1 after answering Busy. A
 * session that holds a transaction on the alias never takes its last free
 * slot: one session cannot hold every slot while others wait for one. */
static int check_caps(mw_request *r, const mw_alias *a, const mw_backend *b,
                      size_t open_on_alias)
{
    const mw_config *c = r->w->cfg;
    char msg[MW_MSG_SIZE];
    int conns = a->kind == MW_BACKEND_SQLITE ? a->sqlite_conns : a->pool.max_conns;
    size_t cap = (size_t)conns * (size_t)c->tx_alias_share_pct / 100;
    if (cap < 1)
        cap = 1;
    if (r->s->ntxs >= (size_t)c->max_session_tx)
        snprintf(msg, sizeof msg, "too many open transactions on this connection "
                 "(max_session_tx %d)", c->max_session_tx);
    else if (open_on_alias >= cap)
        snprintf(msg, sizeof msg, "alias \"%s\" has %zu open transactions, its cap "
                 "(tx_alias_share_pct %d%% of %d connections): the rest stay for "
                 "other requests", a->name, open_on_alias, c->tx_alias_share_pct, conns);
    else if (open_on_alias + 1 >= cap && open_in_session(r->s, b) > 0)
        snprintf(msg, sizeof msg, "alias \"%s\" has one transaction slot left "
                 "(tx_alias_share_pct %d%% of %d connections): it stays for a "
                 "client without a transaction there", a->name,
                 c->tx_alias_share_pct, conns);
    else
        return 0;
    mw_request_reply(r, MW_BUSY, msg, NULL);
    return -1;
}

static void savepoint_in(mw_tx *t, mw_request *r)
{
    if (t->depth >= MW_TX_MAX_DEPTH) {
        mw_request_reply(r, MW_INVALID_INPUT, "at most 64 nested savepoints", NULL);
        return;
    }
    run_step(t, MW_TX_SAVEPOINT, r);
}

static void entry_begin(mw_request *r, const uint8_t *payload, size_t len)
{
    mw_worker *w = r->w;
    mw_tx_payload p;
    if (parse(r, payload, len, 1, &p) < 0)
        return;
    if (p.nested) {
        mw_tx *t = lookup(r, p.tx_id);
        if (t)
            savepoint_in(t, r);
        return;
    }
    mw_backend *b = mw_worker_backend(w, p.alias);
    size_t ai = alias_index(w, b);
    size_t *open_on_alias = mw_sched_tx_count(w, ai);
    if (check_caps(r, p.alias, b, *open_on_alias) < 0)
        return;
    mw_tx *t = mw_zalloc(1, sizeof *t);
    if (!t) {
        mw_request_reply(r, MW_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    mw_session *s = r->s;
    t->w = w;
    t->s = s;
    t->id = next_id(w);
    t->backend = b;
    t->alias_index = ai;
    t->isolation = p.isolation;
    t->deferrable = p.deferrable;
    /* without db.write the transaction is read only, whatever was asked */
    t->read_only = p.read_only || !p.alias->allow_write;
    uv_timer_init(w->loop, &t->timer);
    t->timer.data = t;
    w->live_txs++;
    (*open_on_alias)++;
    t->next = s->txs;
    if (s->txs)
        s->txs->prev = t;
    s->txs = t;
    s->ntxs++;
    t->req = r;
    r->tx = t;
    r->q.alias = p.alias; /* named in sched.c's answers */
    r->backend = b;
    mw_sched_submit(r);
}

void mw_tx_start(mw_request *r)
{
    mw_tx *t = r->tx;
    t->state = MW_TX_BEGINNING;
    uint64_t spent = (uv_hrtime() - r->t_recv) / 1000000;
    uint32_t left = spent < r->timeout_ms ? r->timeout_ms - (uint32_t)spent : 1;
    t->backend->ops->tx_begin(t->backend, t, left);
}

static void end_in(mw_tx *t, mw_request *r);

static void entry_end(mw_request *r, const uint8_t *payload, size_t len)
{
    mw_tx_payload p;
    if (parse(r, payload, len, 0, &p) < 0)
        return;
    mw_tx *t = lookup(r, p.tx_id);
    if (t)
        end_in(t, r);
}

static void end_in(mw_tx *t, mw_request *r)
{
    int commit = r->entry == MW_ENTRY_TX_COMMIT;
    mw_tx_step step = t->depth > 0 ? (commit ? MW_TX_RELEASE : MW_TX_ROLLBACK_TO)
                                   : (commit ? MW_TX_COMMIT : MW_TX_ROLLBACK);
    run_step(t, step, r);
}

void mw_entry_tx(mw_request *r, const uint8_t *payload, size_t len)
{
    if (r->entry == MW_ENTRY_TX_BEGIN)
        entry_begin(r, payload, len);
    else
        entry_end(r, payload, len);
}

static void run_in(mw_tx *t, mw_request *r);

void mw_tx_run(mw_request *r, uint64_t tx_id)
{
    mw_tx *t = lookup(r, tx_id);
    if (t)
        run_in(t, r);
}

/* r, a db_query or db_exec, on t's connection. */
static void run_in(mw_tx *t, mw_request *r)
{
    char msg[MW_MSG_SIZE];
    const mw_query *q = &r->q;
    if (q->alias != t->backend->alias) {
        snprintf(msg, sizeof msg, "db_alias \"%s\" is not the alias of transaction "
                 "%llu (\"%s\")", q->alias->name, (unsigned long long)t->id,
                 t->backend->alias->name);
        mw_request_reply(r, MW_INVALID_INPUT, msg, NULL);
        return;
    }
    if (q->write && t->read_only) {
        snprintf(msg, sizeof msg, "transaction %llu is read only: db_exec is "
                 "refused in it", (unsigned long long)t->id);
        mw_request_reply(r, MW_INVALID_INPUT, msg, NULL);
        return;
    }
    for (size_t i = 0; i < q->nstmts && !q->refused[0]; i++) {
        if (!q->stmts[i].session_state)
            continue;
        if (t->read_only) {
            /* set_config, session advisory locks...: nothing may outlive a
             * read-only transaction */
            molt_db_error e;
            molt_db_error_init(&e);
            molt_db_error_set(&e, MOLT_DB_ESERVER, "refused in a read-only "
                              "transaction: this SQL can leave state on the "
                              "connection (set_config, session advisory locks, "
                              "SET, temporary tables...)");
            memcpy(e.sqlstate, "25006", 6);
            mw_request_reply(r, MW_DB_ERROR, e.message, &e);
            molt_db_error_clear(&e);
            return;
        }
        t->session_state = 1; /* the connection is closed when t ends */
    }
    t->req = r;
    r->tx = t;
    r->backend = t->backend;
    r->alias_index = t->alias_index;
    arm(t); /* tx_max_ms still bounds it */
    r->db_busy = 1;
    r->backend->ops->start(r->backend, r);
}

void mw_tx_done(mw_tx *t, mw_status st, const char *msg, const molt_db_error *err)
{
    mw_request *r = t->req;
    int ended = 0;
    t->req = NULL;
    if (t->state == MW_TX_BEGINNING) {
        if (st == MW_OK) {
            t->state = MW_TX_OPEN;
            t->t_begin_ms = uv_now(t->w->loop);
            mw_sched_tx_hold(r, t);
            if (r->replied || !r->s) /* timed out, cancelled, client gone */
                t->abandoned = 1;
        } else {
            ended = 1;
        }
    } else {
        if (t->step == MW_TX_SAVEPOINT && st == MW_OK)
            t->depth++;
        if (t->step == MW_TX_RELEASE || t->step == MW_TX_ROLLBACK_TO)
            t->depth--; /* the scope is gone, ok or not */
        if (!t->handle)
            ended = 1;  /* the backend let go of the connection */
        else if (t->state == MW_TX_ENDING)
            t->state = MW_TX_OPEN; /* the outer step could not be sent */
    }
    if (ended)
        t->state = MW_TX_ENDING;
    if (r) {
        r->tx = NULL;
        if (st == MW_OK)
            reply_state(r, t, ended);
        mw_request_db_done(r, st, msg, err);
    }
    if (ended) {
        tx_free(t);
        return;
    }
    if (t->abandoned) {
        refuse_after(t, "rolled back");
        unlink_session(t);
        if (st == MW_OK)
            roll_back_abandoned(t);
        else
            uv_timer_start(&t->timer, on_timer, MW_TX_RETRY_MS, 0);
        return;
    }
    arm(t);
    run_after(t);
}

/* Unbinds r from its transaction; the transaction when r was running in it. */
static mw_tx *unbind(mw_request *r)
{
    mw_tx *t = r->tx;
    r->tx = NULL;
    if (t && t->after == r) { /* it waited and never ran */
        t->after = NULL;
        return NULL;
    }
    if (!t || t->req != r)
        return NULL;
    t->req = NULL;
    return t;
}

/* Nothing runs in t any more: an abandoned t is rolled back, else its
 * idle bound is armed and the request waiting for it (if any) runs. */
static void after_request(mw_tx *t)
{
    if (t->abandoned) {
        refuse_after(t, "rolled back");
        roll_back_abandoned(t);
    } else {
        arm(t);
        run_after(t);
    }
}

void mw_tx_request_done(mw_request *r)
{
    mw_tx *t = unbind(r);
    if (t)
        after_request(t);
}

/* The request parked in t->after (lookup), once nothing runs in t. */
static void run_after(mw_tx *t)
{
    mw_request *r = t->after;
    if (!r || t->req)
        return;
    t->after = NULL;
    r->tx = NULL;
    if (r->replied) /* its own deadline or cancel came first */
        return;
    if (t->state != MW_TX_OPEN) {
        refuse_after_request(t, r, "ended");
        return;
    }
    if (r->entry == MW_ENTRY_TX_BEGIN)
        savepoint_in(t, r);
    else if (r->entry == MW_ENTRY_TX_COMMIT || r->entry == MW_ENTRY_TX_ROLLBACK)
        end_in(t, r);
    else
        run_in(t, r);
}


void mw_tx_request_freed(mw_request *r)
{
    mw_tx *t = unbind(r);
    if (t && t->state == MW_TX_WAITING) /* its begin never started */
        tx_free(t);
    else if (t && t->state == MW_TX_OPEN) /* its start failed (out of memory) */
        after_request(t);
}

void mw_tx_session_closed(mw_session *s)
{
    while (s->txs)
        abandon(s->txs);
}

size_t mw_tx_idle(const mw_worker *w)
{
    size_t n = 0;
    /* an abandoned transaction has left its session: not counted */
    for (const mw_session *s = w->sessions; s; s = s->next)
        for (const mw_tx *t = s->txs; t; t = t->next)
            n += t->state == MW_TX_OPEN && !t->req;
    return n;
}
