/*
 * Deadlines (deadline.c): the worker's timed events (a request's deadline
 * or its alias's max_wait_ms, a session's frame, write and hold limits, an
 * alias's linger) as entries inside the objects they belong to, kept in
 * one min-heap per worker and served by a single uv timer. Arming or
 * stopping one touches no libuv handle, so a request or session that ends
 * has nothing to close.
 *
 * The uv timer is armed for the earliest entry when an entry earlier than
 * its current due arrives; an entry that stops leaves it armed (it may
 * fire with nothing due, then arms for the next). It keeps the loop alive
 * while any entry is armed, as a running uv timer of each would.
 */
#ifndef MW_DEADLINE_H
#define MW_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct mw_deadline mw_deadline;
typedef void (*mw_deadline_cb)(mw_deadline *d);

struct mw_deadline {
    mw_deadline *left, *right, *parent; /* in the heap while armed */
    uint64_t due;            /* uv_now milliseconds */
    uint64_t seq;            /* equal dues fire in the order they were armed */
    mw_deadline_cb cb;
    int armed;
};

typedef struct mw_deadlines {
    uv_timer_t timer;
    mw_deadline *min;        /* the heap's root */
    size_t n;
    uint64_t seq;
    uint64_t timer_due;      /* the uv timer fires then; UINT64_MAX: not armed */
    int open;                /* the timer is initialised and not closed */
    int firing;
} mw_deadlines;

/* The struct holding member m, from a pointer to it. */
#define MW_CONTAINER_OF(p, type, m) ((type *)(void *)((char *)(p) - offsetof(type, m)))

void mw_deadlines_init(mw_deadlines *ds, uv_loop_t *loop);
/* Closes the uv timer (the loop's close phase ends it); nothing may be
 * armed, and arming does nothing from now on. Repeated calls do nothing. */
void mw_deadlines_close(mw_deadlines *ds);
/* (Re)arms d to call cb once, ms milliseconds from the loop's now. */
void mw_deadline_start(mw_deadlines *ds, mw_deadline *d, uint64_t ms, mw_deadline_cb cb);
/* Disarms d if armed. */
void mw_deadline_stop(mw_deadlines *ds, mw_deadline *d);

#endif
