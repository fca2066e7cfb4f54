/*
 * The libuv adapter: a molt_db_loop over a uv_loop_t. The only public
 * header that includes uv.h; include it where the loop is set up.
 */
#ifndef MOLT_DB_LOOP_LIBUV_H
#define MOLT_DB_LOOP_LIBUV_H

#include <uv.h>

#include "molt_db/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A loop whose watchers, timers and deferred calls are libuv handles on uv
 * (deferred calls are idle handles, so uv_backend_timeout is 0 while one is
 * due), and whose names resolve on libuv's thread pool (uv_getaddrinfo).
 * Timers flagged MOLT_DB_LOOP_WEAK are unreferenced, so uv_run with
 * UV_RUN_DEFAULT returns once nothing else is active; a waker
 * (molt_db_loop_waker_new) is an eventfd under a uv_poll_t, referenced.
 * Handles freed by the library close on uv; their memory goes in their
 * close callbacks, so run uv once more before uv_loop_close. uv must outlive the returned loop;
 * free it with molt_db_loop_free once its connections and pools closed.
 * Returns OK or ENOMEM.
 */
MOLT_DB_API
int molt_db_loop_libuv_new(uv_loop_t *uv, molt_db_loop **out,
                           molt_db_error *err);

/* Runs now, outside a turn of uv, the deferred calls due of the loops on
 * uv (the writes the connections deferred to uv's next idle phase), as
 * that phase would; a call made due by another one here may run here too
 * or in that phase. On the thread that runs uv, or on one that holds it
 * while no thread is inside uv_run. For a caller that drives uv itself
 * and is about to wait (on uv_backend_fd, or in a turn's poll): the writes
 * go out before the wait, which then waits for their answers, rather than
 * in a turn that polls first or a poll that returns at once for an idle
 * handle still due. */
MOLT_DB_API
void molt_db_loop_libuv_flush(uv_loop_t *uv);

/* The uv loop of a loop made by molt_db_loop_libuv_new. */
MOLT_DB_API
uv_loop_t *molt_db_loop_libuv_uv(const molt_db_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
