/*
 * Fair sharing of each alias's connections (sched.c): one mw_sched per
 * alias, one lane per session and alias; a request waits in its session's
 * lane until its alias has a free slot and its session's turn comes.
 */
#ifndef MW_SCHED_H
#define MW_SCHED_H

#include <stddef.h>

typedef struct mw_worker mw_worker;
typedef struct mw_session mw_session;
typedef struct mw_request mw_request;
typedef struct mw_tx mw_tx;

int mw_sched_init(mw_worker *w);          /* after the backends: 0 or -1 */
void mw_sched_close(mw_worker *w);        /* stops its deadlines */
void mw_sched_free(mw_worker *w);
/* A session's bytes with its lanes (one per alias) after it: session.c
 * takes both in one piece, and mw_sched_session_init points s->lanes
 * there. */
size_t mw_sched_session_size(const mw_worker *w);
void mw_sched_session_init(mw_session *s);
void mw_sched_session_free(mw_session *s);
/* Starts r's database work now or when its turn comes (r->backend set). */
void mw_sched_submit(mw_request *r);
/* The backend is done with r: its slot goes to the next in turn. */
void mw_sched_done(mw_request *r);
/* r leaves its session: a waiting r is never started; a running one no
 * longer counts in the session's share. */
void mw_sched_forget(mw_request *r);
/* s->read_paused changed: a paused session takes no share; one that reads
 * again has its waiting requests take their turn. */
void mw_sched_session_paused(mw_session *s);
/* 1 when a session other than r's, one that reads, waits for r's alias. */
int mw_sched_others_wait(const mw_request *r);
/* requests waiting for a slot, all aliases */
size_t mw_sched_waiting(const mw_worker *w);
/* Transactions (tx.h): r, a tx_begin whose transaction began, hands its
 * slot and its place in its session's share to t; t leaves its session's
 * share (the session closes); t ended: its slot goes to the next in turn. */
void mw_sched_tx_hold(mw_request *r, mw_tx *t);
void mw_sched_tx_leave_lane(mw_tx *t);
void mw_sched_tx_release(mw_tx *t);
/* the alias's transactions not yet freed (tx.c keeps it) */
size_t *mw_sched_tx_count(mw_worker *w, size_t alias);

#endif
