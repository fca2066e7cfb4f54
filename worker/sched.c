/*
 * Fair sharing of each alias's connections between sessions.
 *
 * An alias runs at most `slots` requests at once (PostgreSQL: max_conns x
 * pipeline_depth; SQLite: sqlite_conns); the others wait here, in one queue
 * per session and alias (a lane), and are handed to the backend only when a
 * slot is free. Free slots go round-robin between the sessions whose
 * requests wait, not FIFO between requests, so a session with 20k requests
 * queued delays another's one request by a turn, not by 20k. While several
 * sessions have work on the alias (requests waiting or running, or within
 * the last MW_LINGER_MS), none gets more than its fair share, ceil(slots /
 * those sessions); one session alone gets every slot. A session paused for
 * backpressure (it does not read its responses) gets no slot until it
 * reads, and takes no share meanwhile.
 *
 * An open transaction (tx.c) keeps the slot its tx_begin took until it
 * ends, and counts in its session's running while the session lasts.
 *
 * A waiting request is answered and never started when it times out, is
 * cancelled or its client goes away (mw_sched_forget, from
 * mw_session_unlink); it is answered Busy after the alias's max_wait_ms.
 */
#include "sched.h"
#include "tx.h"

#include <stdlib.h>

#include "backend.h"
#include "request.h"
#include "session.h"
#include "worker.h"
#include "zalloc.h"

/* how long a session counts as having work on an alias after its last
 * request there ended */
#define MW_LINGER_MS 100

struct mw_lane {
    mw_session *s;
    size_t alias;             /* index in w->backends and w->scheds */
    mw_request *head, *tail;  /* waiting, in arrival order */
    size_t waiting;
    size_t running;           /* started and still attached to the session */
    int lately;               /* has work, or had it within MW_LINGER_MS */
    int counted;              /* in nactive: lately, and its session reads */
    uint64_t idle_since;      /* uv_now when its work ended (lingering) */
    mw_lane *lnext, *lprev;   /* in the alias's lingering list */
    int lingering;
    mw_lane *rnext, *rprev;   /* in the alias's ring while waiting > 0 */
};

struct mw_sched {
    size_t slots;
    size_t running;           /* started, not yet done with the database */
    size_t nactive;           /* lanes counted (see mw_lane) */
    mw_lane *linger_head, *linger_tail; /* lanes lately without work, oldest first */
    size_t waiting;
    mw_lane *cursor;          /* ring of lanes with waiting requests: whose turn */
    int dispatching;
    int max_wait_ms;          /* 0: wait until the request's deadline */
    size_t ntx;               /* transactions of the alias not yet freed */
    mw_deadline linger;       /* a share grows when a lingering lane expires */
    mw_worker *w;
    size_t index;
};

static void linger_remove(mw_sched *q, mw_lane *l);
static void dispatch(mw_worker *w, size_t alias);

static void on_linger(mw_deadline *d)
{
    mw_sched *q = MW_CONTAINER_OF(d, mw_sched, linger);
    dispatch(q->w, q->index);
}

int mw_sched_init(mw_worker *w)
{
    w->scheds = mw_zalloc(w->nbackends ? w->nbackends : 1, sizeof *w->scheds);
    if (!w->scheds)
        return -1;
    for (size_t i = 0; i < w->nbackends; i++) {
        const mw_alias *a = w->backends[i]->alias;
        mw_sched *q = &w->scheds[i];
        q->w = w;
        q->index = i;
        if (a->kind == MW_BACKEND_SQLITE) {
            q->slots = (size_t)a->sqlite_conns;
        } else {
            q->slots = (size_t)a->pool.max_conns * (size_t)a->pool.pipeline_depth;
            q->max_wait_ms = a->pool.max_wait_ms;
        }
        if (q->slots == 0)
            q->slots = 1;
    }
    return 0;
}

void mw_sched_close(mw_worker *w)
{
    for (size_t i = 0; w->scheds && i < w->nbackends; i++)
        mw_deadline_stop(&w->deadlines, &w->scheds[i].linger);
}

void mw_sched_free(mw_worker *w)
{
    free(w->scheds);
    w->scheds = NULL;
}

_Static_assert(sizeof(mw_session) % _Alignof(mw_lane) == 0,
               "the lanes can follow a session in its allocation");

size_t mw_sched_session_size(const mw_worker *w)
{
    return sizeof(mw_session) + w->nbackends * sizeof(mw_lane);
}

void mw_sched_session_init(mw_session *s)
{
    mw_worker *w = s->w;
    s->lanes = (mw_lane *)(s + 1); /* zeroed with the session */
    for (size_t i = 0; i < w->nbackends; i++) {
        s->lanes[i].s = s;
        s->lanes[i].alias = i;
    }
}

void mw_sched_session_free(mw_session *s)
{
    for (size_t i = 0; s->lanes && i < s->w->nbackends; i++) {
        mw_lane *l = &s->lanes[i];
        mw_sched *q = &s->w->scheds[i];
        if (l->lingering)
            linger_remove(q, l);
        if (l->counted)
            q->nactive--;
    }
    s->lanes = NULL; /* they go with the session */
}

static void linger_remove(mw_sched *q, mw_lane *l)
{
    if (l->lprev)
        l->lprev->lnext = l->lnext;
    else
        q->linger_head = l->lnext;
    if (l->lnext)
        l->lnext->lprev = l->lprev;
    else
        q->linger_tail = l->lprev;
    l->lnext = l->lprev = NULL;
    l->lingering = 0;
}

/* nactive counts the lanes that had work lately, of sessions that read
 * their responses: a paused session gets no slot, so it takes no share
 * from the others either (else many paused sessions would shrink every
 * share while the slots stay free). */
static void recount(mw_sched *q, mw_lane *l)
{
    int want = l->lately && !l->s->read_paused;
    if (want == l->counted)
        return;
    l->counted = want;
    if (want)
        q->nactive++;
    else
        q->nactive--;
}

/* A session has work lately while it has work on the alias and for
 * MW_LINGER_MS after: a client doing one query after another is idle
 * between them for the time of a round trip, and those gaps must not let
 * another session's share grow to the whole pool. */
static void update_active(mw_worker *w, mw_sched *q, mw_lane *l)
{
    if (l->waiting > 0 || l->running > 0) {
        if (l->lingering)
            linger_remove(q, l);
        l->lately = 1;
    } else if (l->lately && !l->lingering) {
        l->lingering = 1;
        l->idle_since = uv_now(w->loop);
        l->lprev = q->linger_tail;
        l->lnext = NULL;
        if (q->linger_tail)
            q->linger_tail->lnext = l;
        else
            q->linger_head = l;
        q->linger_tail = l;
    }
    recount(q, l);
}

/* Ends "lately" for the lanes idle for MW_LINGER_MS. */
static void expire_lingering(mw_worker *w, mw_sched *q)
{
    uint64_t now = uv_now(w->loop);
    while (q->linger_head && now - q->linger_head->idle_since >= MW_LINGER_MS) {
        mw_lane *l = q->linger_head;
        linger_remove(q, l);
        l->lately = 0;
        recount(q, l);
    }
}

static void ring_add(mw_sched *q, mw_lane *l)
{
    if (!q->cursor) {
        l->rnext = l->rprev = l;
        q->cursor = l;
        return;
    }
    /* the newcomer's turn comes last: just before the cursor */
    l->rnext = q->cursor;
    l->rprev = q->cursor->rprev;
    l->rprev->rnext = l;
    q->cursor->rprev = l;
}

static void ring_remove(mw_sched *q, mw_lane *l)
{
    if (l->rnext == l) {
        q->cursor = NULL;
    } else {
        l->rprev->rnext = l->rnext;
        l->rnext->rprev = l->rprev;
        if (q->cursor == l)
            q->cursor = l->rnext;
    }
    l->rnext = l->rprev = NULL;
}

static void lane_remove(mw_sched *q, mw_lane *l, mw_request *r)
{
    if (r->qprev)
        r->qprev->qnext = r->qnext;
    else
        l->head = r->qnext;
    if (r->qnext)
        r->qnext->qprev = r->qprev;
    else
        l->tail = r->qprev;
    r->qnext = r->qprev = NULL;
    r->queued = 0;
    l->waiting--;
    q->waiting--;
    if (l->waiting == 0)
        ring_remove(q, l);
}

/* The lane whose turn it is: the first one in ring order, from the cursor,
 * whose session is open, reads its responses and holds less than its fair
 * share, ceil(slots / sessions with work on the alias, now or within
 * MW_LINGER_MS). None may be: then a free slot stays free until a session
 * under its share asks, so a client's long or paused queries cannot take
 * the slots the others' short ones free between two of their requests. */
static mw_lane *pick(mw_worker *w, mw_sched *q)
{
    expire_lingering(w, q);
    size_t share = q->nactive > 1 ? (q->slots + q->nactive - 1) / q->nactive : q->slots;
    mw_lane *l = q->cursor;
    do {
        if (!l->s->read_paused && !l->s->dead && l->running < share)
            return l;
        l = l->rnext;
    } while (l != q->cursor);
    return NULL;
}

/* Gives r back its slot once the backend is done with it (or never
 * started it). */
static void release_slot(mw_worker *w, mw_request *r)
{
    if (!r->in_slot)
        return;
    r->in_slot = 0;
    w->scheds[r->alias_index].running--;
}

static void start(mw_worker *w, mw_sched *q, mw_lane *l, mw_request *r)
{
    q->running++;
    l->running++;
    r->in_slot = 1;
    r->counted_in_lane = 1;
    update_active(w, q, l);
    if (r->max_wait_armed) {
        /* back to the request's own deadline */
        r->max_wait_armed = 0;
        uint64_t spent = (uv_hrtime() - r->t_recv) / 1000000;
        mw_request_set_timer(r, spent < r->timeout_ms ? r->timeout_ms - spent : 1);
    }
    r->db_busy = 1;
    if (r->tx)
        mw_tx_start(r); /* a tx_begin */
    else
        r->backend->ops->start(r->backend, r);
    if (!r->db_busy) /* answered by start itself (out of memory) */
        release_slot(w, r);
}

static void dispatch(mw_worker *w, size_t alias)
{
    mw_sched *q = &w->scheds[alias];
    if (q->dispatching)
        return; /* a start that finished at once: the loop below goes on */
    q->dispatching = 1;
    while (q->running < q->slots && q->cursor) {
        mw_lane *l = pick(w, q);
        if (!l)
            break;
        mw_request *r = l->head;
        q->cursor = l->rnext; /* the next session's turn */
        lane_remove(q, l, r);
        start(w, q, l, r);
    }
    q->dispatching = 0;
    /* slots left free for sessions that had work lately: look again when
     * the first of them stops counting */
    if (q->running < q->slots && q->cursor && q->linger_head) {
        uint64_t due = q->linger_head->idle_since + MW_LINGER_MS, now = uv_now(w->loop);
        mw_deadline_start(&w->deadlines, &q->linger, due > now ? due - now : 1, on_linger);
    }
}

void mw_sched_submit(mw_request *r)
{
    mw_worker *w = r->w;
    size_t i = 0;
    while (i < w->nbackends && w->backends[i] != r->backend)
        i++;
    r->alias_index = i;
    mw_sched *q = &w->scheds[i];
    mw_lane *l = &r->s->lanes[i];
    r->lane = l;
    r->queued = 1;
    r->qprev = l->tail;
    r->qnext = NULL;
    if (l->tail)
        l->tail->qnext = r;
    else
        l->head = r;
    l->tail = r;
    if (l->waiting++ == 0)
        ring_add(q, l);
    q->waiting++;
    update_active(w, q, l);
    dispatch(w, i);
    if (r->queued && q->max_wait_ms > 0 && (uint32_t)q->max_wait_ms < r->timeout_ms) {
        r->max_wait_armed = 1;
        mw_request_set_timer(r, (uint64_t)q->max_wait_ms);
    }
}

void mw_sched_done(mw_request *r)
{
    if (!r->in_slot)
        return;
    release_slot(r->w, r);
    dispatch(r->w, r->alias_index);
}

void mw_sched_forget(mw_request *r)
{
    mw_lane *l = r->lane;
    if (!l)
        return;
    mw_worker *w = r->w;
    mw_sched *q = &w->scheds[l->alias];
    if (r->queued)
        lane_remove(q, l, r);
    if (r->counted_in_lane) {
        r->counted_in_lane = 0;
        l->running--;
    }
    r->lane = NULL;
    update_active(w, q, l);
}

void mw_sched_session_paused(mw_session *s)
{
    mw_worker *w = s->w;
    for (size_t i = 0; i < w->nbackends; i++) {
        recount(&w->scheds[i], &s->lanes[i]);
        if (!s->read_paused && s->lanes[i].waiting > 0)
            dispatch(w, i);
    }
}

int mw_sched_others_wait(const mw_request *r)
{
    const mw_sched *q = &r->w->scheds[r->alias_index];
    const mw_lane *l = q->cursor;
    if (!l)
        return 0;
    do {
        if (l->s != r->s && !l->s->read_paused && !l->s->dead)
            return 1;
        l = l->rnext;
    } while (l != q->cursor);
    return 0;
}

size_t mw_sched_waiting(const mw_worker *w)
{
    size_t n = 0;
    for (size_t i = 0; w->scheds && i < w->nbackends; i++)
        n += w->scheds[i].waiting;
    return n;
}

size_t *mw_sched_tx_count(mw_worker *w, size_t alias)
{
    return &w->scheds[alias].ntx;
}

void mw_sched_tx_hold(mw_request *r, mw_tx *t)
{
    t->alias_index = r->alias_index;
    t->holds_slot = r->in_slot;
    r->in_slot = 0;
    if (r->counted_in_lane && r->lane) {
        r->counted_in_lane = 0;
        t->lane = r->lane;
    }
}

void mw_sched_tx_leave_lane(mw_tx *t)
{
    mw_lane *l = t->lane;
    if (!l)
        return;
    t->lane = NULL;
    l->running--;
    update_active(t->w, &t->w->scheds[l->alias], l);
}

void mw_sched_tx_release(mw_tx *t)
{
    mw_sched_tx_leave_lane(t);
    if (!t->holds_slot)
        return;
    t->holds_slot = 0;
    t->w->scheds[t->alias_index].running--;
    dispatch(t->w, t->alias_index);
}
