/*
 * The loop inside the library: the public molt_db_loop (a table of hooks,
 * include/molt_db/loop.h), short wrappers that call them, and the
 * connection's hold on a loop (one fd watcher, one timer, one deferred
 * call, one resolve at a time), which calls back into the connection
 * (molt_db__conn_on_*). No file of the library but the adapters
 * (loop_libuv.c, loop_driven.c) knows which event loop runs.
 */
#ifndef MOLT_DB_LOOP_INTERNAL_H
#define MOLT_DB_LOOP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/loop.h"

struct molt_db_conn;
struct addrinfo;

struct molt_db_loop {
    molt_db_loop_hooks h;
    void *data;
    size_t users;             /* connections, pools, wakers not yet gone */
    int free_wanted;          /* molt_db_loop_free ran: free at 0 users */
};

/* A connection or pool starts or stops using the loop. The library's own
 * connections count too (a pool's CancelRequest may outlive the pool), so
 * a loop freed while one still closes goes when it is gone. */
void molt_db__loop_ref(molt_db_loop *l);
void molt_db__loop_unref(molt_db_loop *l);

static inline void *molt_db__timer_new(molt_db_loop *l, int flags,
                                       molt_db_loop_cb cb, void *arg)
{
    return l->h.timer_new(l->data, flags, cb, arg);
}

static inline void molt_db__timer_start(molt_db_loop *l, void *t, uint64_t ms)
{
    l->h.timer_start(l->data, t, ms);
}

static inline void molt_db__timer_stop(molt_db_loop *l, void *t)
{
    l->h.timer_stop(l->data, t);
}

/* Frees *t (NULL allowed) and sets it to NULL. */
static inline void molt_db__timer_free(molt_db_loop *l, void **t)
{
    if (*t != NULL)
        l->h.timer_free(l->data, *t);
    *t = NULL;
}

static inline uint64_t molt_db__now_ms(molt_db_loop *l)
{
    return l->h.now_ms(l->data);
}

/* Monotonic nanoseconds, for durations in metrics (not from the loop). */
uint64_t molt_db__hrtime_ns(void);

/* The adapters' wake-up is an eventfd their loop watches for reading (not
 * uv_async_send: its sender, preempted on the same CPU by the loop thread
 * it woke, leaves that thread spinning in sched_yield until it resumes).
 * A new one (non-blocking, close-on-exec): the fd, or a negative errno. */
int molt_db__wake_fd_new(void);
/* Any thread: makes fd readable. */
void molt_db__wake_fd_poke(int fd);
/* The loop's thread, before it runs the callback: fd is no longer readable
 * (a poke from now on makes it readable again). */
void molt_db__wake_fd_drain(int fd);

/* ---- a connection's hold on the loop ----------------------------------- */

#define MOLT_DB_WATCH_READ MOLT_DB_LOOP_READ
#define MOLT_DB_WATCH_WRITE MOLT_DB_LOOP_WRITE

typedef struct molt_db_conn_loop {
    molt_db_loop *loop;
    void *io;                 /* the watcher of the current fd, or NULL */
    int io_fd;
    int io_events;            /* MOLT_DB_WATCH_* currently asked for */
    void *timer;
    void *defer;
    int deferred;             /* the connection asked for its deferred call */
    void *resolving;          /* the adapter's in-flight resolve, or NULL */
    int resolve_due;          /* resolved here (no resolve hook): */
    struct addrinfo *resolved;  /* the list to hand over, */
    const char *resolve_error;  /* or the failure */
    int closing;
} molt_db_conn_loop;

/* Readiness and timer entry points into the connection. */
void molt_db__conn_on_io(struct molt_db_conn *conn, int readable, int writable);
void molt_db__conn_on_timer(struct molt_db_conn *conn);
/* The deferred work asked for with molt_db__loop_defer. */
void molt_db__conn_on_deferred(struct molt_db_conn *conn);
/* A list the connection owns (freed with freeaddrinfo) and error NULL, or
 * ai NULL and the resolver's message. */
void molt_db__conn_on_resolved(struct molt_db_conn *conn, struct addrinfo *ai,
                               const char *error);
/* The loop let go of the connection: it may free itself. */
void molt_db__conn_on_closed(struct molt_db_conn *conn);

/* Returns 0, or -ENOMEM with nothing left to close. */
int molt_db__loop_init(molt_db_conn_loop *l, molt_db_loop *loop);
/* Watches fd for `events` (0 stops watching). A different fd than before
 * replaces the watcher. Returns 0 or a negative errno value. */
int molt_db__loop_watch(molt_db_conn_loop *l, int fd, int events);
/* Stops watching fd; call before closing it. */
void molt_db__loop_unwatch(molt_db_conn_loop *l);
/* Asks for molt_db__conn_on_deferred once, at the start of the next loop
 * turn, before the loop waits for I/O: writes made by several callbacks of
 * one turn go out in one system call. */
void molt_db__loop_defer(molt_db_conn_loop *l);
/* Arms the timer for ms milliseconds (0 disarms it). */
void molt_db__loop_timer(molt_db_conn_loop *l, uint64_t ms);
/* Starts resolving host:port (TCP, any family). Returns 0 or a negative
 * errno value; molt_db__conn_on_resolved runs later, from the loop, unless
 * the resolve is cancelled or the loop closed first. */
int molt_db__loop_resolve(molt_db_conn_loop *l, const char *host, uint16_t port);
/* Abandons an in-flight resolve (its result will be dropped). */
void molt_db__loop_cancel_resolve(molt_db_conn_loop *l);
/* Frees every handle; molt_db__conn_on_closed runs from the loop. */
void molt_db__loop_close(molt_db_conn_loop *l);
/* Monotonic milliseconds of the loop. */
uint64_t molt_db__loop_now(const molt_db_conn_loop *l);

#endif
