/*
 * The event loop behind an adapter. Connections, pools, COPY and the Arrow
 * reader never wait: they ask a loop to watch a socket, to run timers and
 * to call them back soon. A molt_db_loop is a table of hooks that does this
 * on some event loop, as hiredis adapters do:
 *
 * - libuv: molt_db_loop_libuv_new (molt_db/loop_libuv.h), the default;
 * - driven: molt_db_loop_driven_new (molt_db/loop_driven.h), the library's
 *   own small loop for a caller without one (one fd to poll, a timeout, a
 *   run call);
 * - any other runtime: fill a molt_db_loop_hooks and call molt_db_loop_new.
 *
 * Threading: a loop and everything on it (connections, pools) are used from
 * one thread, the one that runs the loop; the hooks are called from it.
 * The one exception is a waker (molt_db_loop_wake): any thread may poke it
 * to have a callback run on the loop's thread. Nothing in the library
 * runs the loop: the caller does.
 *
 * This header needs only libc: the adapter handles are opaque pointers.
 */
#ifndef MOLT_DB_LOOP_H
#define MOLT_DB_LOOP_H

#include <stdint.h>

#include "molt_db/error.h"
#include "molt_db/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

typedef struct molt_db_loop molt_db_loop;

/* What a watcher waits for, and what its callback is told. */
#define MOLT_DB_LOOP_READ 1
#define MOLT_DB_LOOP_WRITE 2

/* Timer flag: the timer alone does not keep a loop that runs "until nothing
 * is left" running (libuv's uv_unref); the pool's maintenance tick. */
#define MOLT_DB_LOOP_WEAK 1

/* The fd is ready for `events` (MOLT_DB_LOOP_READ / _WRITE). On an error
 * or hang-up of the fd an adapter passes both: the library finds the error
 * by reading. */
typedef void (*molt_db_loop_io_cb)(void *arg, int events);
/* A timer fired, or a deferred call is due. */
typedef void (*molt_db_loop_cb)(void *arg);
/* A name resolved: a list the library then owns (it frees it with
 * freeaddrinfo) and error NULL, or ai NULL and a message for the caller. */
typedef void (*molt_db_loop_resolve_cb)(void *arg, struct addrinfo *ai,
                                        const char *error);

/*
 * The hooks. `data` is the adapter's pointer given to molt_db_loop_new,
 * passed back to every hook. A handle (watcher, timer, deferred call) is
 * whatever pointer the adapter returns from its *_new hook; the library
 * passes it back and frees it with the matching *_free hook exactly once.
 * A *_free hook may be called from the handle's own callback; after it
 * returns the callback never runs again (the adapter frees its memory
 * whenever it can). Callbacks run on the loop's thread, never inside a
 * hook call.
 */
typedef struct molt_db_loop_hooks {
    /* Watches fd (a non-blocking socket) for nothing yet. Returns the
     * watcher, or NULL when out of memory. */
    void *(*io_new)(void *data, int fd, molt_db_loop_io_cb cb, void *arg);
    /* Watches for `events` from now on (0: nothing). Returns 0, or a
     * negative errno value (the library then fails the connection). */
    int (*io_set)(void *data, void *io, int events);
    /* Stops and frees the watcher; the library calls it before it closes
     * the fd. */
    void (*io_free)(void *data, void *io);

    /* A one-shot timer, stopped. flags: MOLT_DB_LOOP_WEAK or 0. Returns the
     * timer, or NULL when out of memory. */
    void *(*timer_new)(void *data, int flags, molt_db_loop_cb cb, void *arg);
    /* (Re)starts the timer: cb runs once, ms milliseconds from now (0: in
     * the next turn of the loop). */
    void (*timer_start)(void *data, void *timer, uint64_t ms);
    /* Stops the timer if it runs. */
    void (*timer_stop)(void *data, void *timer);
    void (*timer_free)(void *data, void *timer);

    /* A deferred call, not due. Returns it, or NULL when out of memory. */
    void *(*defer_new)(void *data, molt_db_loop_cb cb, void *arg);
    /* Makes cb due once at the start of the next turn, before the loop
     * waits for I/O (a loop polled from outside reports a timeout of 0 while
     * one is due): writes asked for by several callbacks of one turn go out
     * in one system call. Due already: nothing changes. */
    void (*defer_start)(void *data, void *defer);
    void (*defer_free)(void *data, void *defer);

    /* Monotonic milliseconds (the base of timers and deadlines). */
    uint64_t (*now_ms)(void *data);

    /* Optional (NULL: the library calls getaddrinfo itself, on the loop's
     * thread: a host name, not a numeric address, blocks the loop while the
     * system resolver answers). Starts resolving host:service for TCP, any
     * family; returns 0 and the request in *req, or a negative errno value.
     * cb runs once later, unless resolve_cancel ran first. */
    int (*resolve)(void *data, const char *host, const char *service,
                   molt_db_loop_resolve_cb cb, void *arg, void **req);
    /* Abandons a request: its cb never runs (the adapter frees whatever
     * result comes). */
    void (*resolve_cancel)(void *data, void *req);

    /* Optional: frees `data` when molt_db_loop_free frees the loop. */
    void (*free)(void *data);

    /* Optional, all three or none (none: molt_db_loop_waker_new fails with
     * EINVAL). A waker: `wake` is the only hook called from any thread.
     * wake_new (loop thread) makes one, idle; returns 0 and the handle in
     * *out, or a negative errno value (-ENOMEM, -EMFILE, ...). */
    int (*wake_new)(void *data, molt_db_loop_cb cb, void *arg, void **out);
    /* Any thread (not a signal handler): makes cb run soon on the loop's
     * thread, waking the loop if it waits. Called again before cb ran, one
     * run may serve both; a call after cb started gives another run. The
     * library calls it at most once per run of cb (it coalesces its
     * callers' wakes with one atomic flag). */
    void (*wake)(void *data, void *handle);
    /* Loop thread: cb never runs again once it returns (also from inside
     * cb). No thread may call wake with the handle from then on. */
    void (*wake_free)(void *data, void *handle);
} molt_db_loop_hooks;

/* A loop over the caller's hooks (copied; every hook but resolve,
 * resolve_cancel, free and the wake-up is required). Returns OK or EINVAL /
 * ENOMEM. */
MOLT_DB_API
int molt_db_loop_new(const molt_db_loop_hooks *hooks, void *data,
                     molt_db_loop **out, molt_db_error *err);

/* The adapter's data pointer. */
MOLT_DB_API
void *molt_db_loop_data(const molt_db_loop *loop);

/* Frees the loop (and its data through the free hook). Call it once every
 * connection and pool on it has closed (their close callbacks ran); a
 * connection of the library's own still closing (a pool's CancelRequest
 * may outlive the pool) keeps the loop until it is gone, as does a waker
 * not freed yet, so run the loop until it has nothing left before closing
 * the event loop underneath. NULL is allowed. */
MOLT_DB_API
void molt_db_loop_free(molt_db_loop *loop);

/*
 * A waker lets another thread hand work to the loop's thread (a queue of
 * the caller's, then molt_db_loop_wake). Every wake before the callback
 * runs gives one run of it, on the loop's thread, never two at once; a
 * wake made after the callback started (while it runs, too) gives another
 * run, so work queued before a wake is always seen by a run that starts
 * after it. Memory the waking thread wrote before molt_db_loop_wake is
 * visible to that run. A waker keeps the loop busy (a uv loop run with
 * UV_RUN_DEFAULT does not end; the driven loop counts it as watched) until
 * it is freed.
 */
typedef struct molt_db_loop_waker molt_db_loop_waker;

/* Loop thread: a waker that runs cb(arg) on the loop's thread. Returns
 * OK, EINVAL (the hooks have no wake-up), ENOMEM, or EIO (err says why:
 * no file descriptor left, ...). */
MOLT_DB_API
int molt_db_loop_waker_new(molt_db_loop *loop, molt_db_loop_cb cb, void *arg,
                          molt_db_loop_waker **out, molt_db_error *err);

/* Any thread: cb runs soon on the loop's thread (see above). Cheap when a
 * run is due already: one atomic operation, no system call. Calling it
 * once molt_db_loop_waker_free began is the caller's error (the handle is
 * freed memory): stop the waking threads first. */
MOLT_DB_API
void molt_db_loop_wake(molt_db_loop_waker *waker);

/* Loop thread: frees the waker (NULL allowed); cb never runs again, even
 * when woken before. May be called from cb. The loop may be freed before
 * or after; it is freed once its wakers and connections are gone. */
MOLT_DB_API
void molt_db_loop_waker_free(molt_db_loop_waker *waker);

#ifdef __cplusplus
}
#endif
#endif
