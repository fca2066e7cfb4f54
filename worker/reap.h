/*
 * Deferred release (reap.c): a request or session that is done is freed
 * when the loop next reaches its prepare or check phase, not at once, so
 * the code that ended it (often deep in a call chain that still reads it)
 * finishes first. Either phase comes before the loop waits again: prepare
 * just before it polls for I/O (for what ended outside the loop, in a
 * timer or in a deferred call), check just after (for what ended in I/O
 * callbacks). Neither makes the poll return early, so no loop turn is
 * spent on it, and the two handles run only while something waits.
 */
#ifndef MW_REAP_H
#define MW_REAP_H

#include <uv.h>

typedef struct mw_reap mw_reap;
struct mw_reap {
    mw_reap *next;
    void (*fn)(mw_reap *node);
};

typedef struct mw_reaper {
    uv_prepare_t prepare;
    uv_check_t check;
    mw_reap *head, *tail;
    int open;
} mw_reaper;

void mw_reaper_init(mw_reaper *rp, uv_loop_t *loop);
/* Runs what waits, then closes both handles. Repeated calls do nothing. */
void mw_reaper_close(mw_reaper *rp);
/* fn(node) runs at the next prepare or check phase (at once once closed).
 * A node waits at most once at a time. */
void mw_reap_later(mw_reaper *rp, mw_reap *node, void (*fn)(mw_reap *node));
/* Runs what waits now, for code that ends requests where neither phase
 * follows before the loop waits (a prepare callback of its own). */
void mw_reap_now(mw_reaper *rp);

#endif
