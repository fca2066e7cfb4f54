/*
 * Lanes: one thread per SQLite connection, so that the work of one alias
 * never waits for a thread another alias holds (libuv's thread pool is
 * four threads for the whole process, shared with name resolution and
 * with any other libuv user of a host's process).
 *
 * A lane runs one task at a time on its thread (a connection serves one
 * job at a time); the task's done callback then runs on the loop thread.
 * The lanes of one backend share an mw_lanes: the loop's end, an async
 * handle referenced while any task is posted and not yet done (so a loop
 * that has nothing else to do still waits for them, as for uv_queue_work).
 *
 * Threads: mw_lanes_* and mw_lane_post / mw_lane_stop on the loop thread
 * only. A lane's thread blocks every signal.
 */
#ifndef MW_LANE_H
#define MW_LANE_H

#include <pthread.h>

#include <uv.h>

typedef struct mw_task mw_task;
struct mw_task {
    void (*run)(mw_task *t);  /* on the lane's thread */
    void (*done)(mw_task *t); /* then on the loop thread; may free t or post it again */
    mw_task *next;
};

typedef struct mw_lanes {
    uv_async_t async;
    pthread_mutex_t lock;
    mw_task *head, *tail;     /* run, waiting for done (under lock) */
    size_t pending;           /* posted, done not yet called (loop thread) */
} mw_lanes;

typedef struct mw_lane {
    mw_lanes *owner;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mw_task *task;            /* posted, not yet taken by the thread */
    int stop;
    int started;
} mw_lane;

/* Sets up ls on loop. 0, or a libuv / errno error (nothing to free). */
int mw_lanes_init(mw_lanes *ls, uv_loop_t *loop);
/* Closes ls's handle (libuv frees nothing: ls must stay allocated until the
 * loop ran its close callbacks). Every lane of ls must be stopped and no
 * task pending. */
void mw_lanes_close(mw_lanes *ls);

/* Runs t->done on the loop thread soon (a later turn of the loop, never
 * within this call), as if a lane had run t. */
void mw_lanes_defer(mw_lanes *ls, mw_task *t);

/* A lane of ls, its thread not yet started (mw_lane_post starts it). */
void mw_lane_init(mw_lane *l, mw_lanes *ls);
/* Hands t to l's thread, starting the thread on first use. l must be idle
 * (its previous task's done called). 0, or -1 when the thread could not be
 * started (t is not run; try again later or fail the work). */
int mw_lane_post(mw_lane *l, mw_task *t);
/* Ends l's thread (which must be idle) and waits for it. l may then be
 * freed. Harmless on a lane never started. */
void mw_lane_stop(mw_lane *l);

#endif
