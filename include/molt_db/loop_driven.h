/*
 * The driven adapter: the library's own small event loop (epoll), for a
 * caller that has none or polls file descriptors itself. Nothing runs
 * until the caller calls molt_db_loop_driven_run; between calls, the fd
 * and the timeout say exactly what is left:
 *
 *     for (;;) {
 *         struct pollfd p = {molt_db_loop_driven_fd(loop), POLLIN, 0};
 *         poll(&p, 1, molt_db_loop_driven_timeout(loop));
 *         molt_db_loop_driven_run(loop, 0);
 *     }
 *
 * or simply molt_db_loop_driven_run(loop, -1) in a loop (it waits itself).
 *
 * Host names resolve with a blocking getaddrinfo on the calling thread
 * (the loop has no resolve hook): a name that is not a numeric address
 * stalls the loop while the system resolver answers, up to its timeout.
 * Numeric addresses and Unix sockets never block.
 *
 * A waker (molt_db_loop_waker_new in molt_db/loop.h) is an eventfd in the
 * loop's epoll set: molt_db_loop_wake from another thread makes the fd
 * readable, so a caller blocked in poll() on it, or in
 * molt_db_loop_driven_run, wakes and runs the waker's callback in its next
 * turn. A waker counts as watched: with one open, run(loop, -1) waits for
 * it even when nothing else is left.
 *
 * Linux only (epoll). One thread: the one calling these functions (and
 * molt_db_loop_wake from any).
 */
#ifndef MOLT_DB_LOOP_DRIVEN_H
#define MOLT_DB_LOOP_DRIVEN_H

#include "molt_db/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A new driven loop; free it with molt_db_loop_free once its connections
 * and pools closed. Returns OK, or ENOMEM / EIO (epoll_create1 failed; err
 * says why). */
MOLT_DB_API
int molt_db_loop_driven_new(molt_db_loop **out, molt_db_error *err);

/* True when loop was made by molt_db_loop_driven_new. */
MOLT_DB_API
int molt_db_loop_driven_is(const molt_db_loop *loop);

/* A file descriptor that is readable when a watched socket is ready (an
 * epoll fd; poll it for POLLIN, never read it). Owned by the loop. */
MOLT_DB_API
int molt_db_loop_driven_fd(const molt_db_loop *loop);

/* Milliseconds until the next timer is due: 0 when work is ready now (a
 * deferred call or a due timer), -1 when no timer runs (then only the fd
 * can bring work). */
MOLT_DB_API
int molt_db_loop_driven_timeout(const molt_db_loop *loop);

/*
 * One turn: runs due timers and deferred calls; unless that ran anything,
 * waits up to timeout_ms (0: not at all; -1: until something happens) for
 * socket readiness, but no longer than the next timer, and not at all while
 * work is ready or when nothing is watched and no timer runs; runs the
 * ready watchers, then the timers and deferred calls now due, and returns.
 * Callbacks run inside this call. Returns 0, or a negative errno value from
 * epoll_wait (EINTR is 0).
 */
MOLT_DB_API
int molt_db_loop_driven_run(molt_db_loop *loop, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
