/*
 * molt_db host: the worker's request core inside a program (docs/host.md).
 *
 * A request is one envelope of the IPC contract (docs/ipc-contract.md) as
 * MsgPack bytes without the 4-byte length prefix; every response frame is
 * the map molt_worker would write for it, again without the prefix. A host
 * is created from molt_worker's own arguments, minus the transport ones.
 *
 * Modes:
 * - MOLT_DB_HOST_THREADED: the host runs its event loop on a thread of its
 *   own; every function but molt_db_host_free may be called from any
 *   thread. molt_db_host_fd is readable when some stream has news (on a
 *   host whose callers arm, when one armed: molt_db_host_arm);
 *   molt_db_host_poll(h, 0) clears it, then molt_db_host_ready says which.
 * - MOLT_DB_HOST_DRIVEN: no thread is started; every call is made on one
 *   thread, the caller's. molt_db_host_fd is readable when
 *   molt_db_host_poll has I/O to do; molt_db_host_timeout is the
 *   milliseconds until its next timer (-1: none).
 *
 * Sessions: a request submitted with molt_db_host_submit is a session of
 * its own, as if it came alone on a connection of molt_worker. One
 * submitted with molt_db_host_submit_in runs in a session the caller
 * opened (molt_db_host_session_open), as on one connection: its
 * transactions (tx_begin ... tx_commit) and read-your-writes span the
 * requests of that session, and its request_ids are its own.
 *
 * Ownership: the caller owns each stream from molt_db_host_submit until
 * molt_db_host_release (exactly once; releasing a stream whose request
 * still runs cancels it, on the server too). A frame from molt_db_host_next
 * stays valid until the next call on its stream or its release.
 * molt_db_host_free cancels everything and invalidates every stream.
 *
 * This header needs only the C standard library's headers.
 */
#ifndef MOLT_DB_HOST_H
#define MOLT_DB_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/error.h"
#include "molt_db/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_host molt_db_host;
typedef struct molt_db_host_stream molt_db_host_stream;
typedef struct molt_db_host_frame molt_db_host_frame;

enum { MOLT_DB_HOST_THREADED = 1, MOLT_DB_HOST_DRIVEN = 2 };

/* molt_db_host_next: the stream's last frame was taken. */
#define MOLT_DB_HOST_DONE 2

/* argv as molt_worker takes it, without the program name. 0, or a
 * negative MOLT_DB_E* code with err filled (a bad DSN, an unknown flag, a
 * transport flag, a mode that is neither of the two). */
MOLT_DB_API
int molt_db_host_new(int argc, const char *const argv[], int mode,
                     molt_db_host **out, molt_db_error *err);

/* Starts one request (req is copied). token: the caller's cancel token, 0
 * for none; udata comes back from molt_db_host_ready. 0 with *out, a
 * stream to release; malformed bytes still give a stream, whose one frame
 * is InvalidInput. MOLT_DB_ECLOSED once molt_db_host_free began,
 * MOLT_DB_ENOMEM when memory ran out. */
MOLT_DB_API
int molt_db_host_submit(molt_db_host *h, const uint8_t *req, size_t len,
                        uint64_t token, void *udata, molt_db_host_stream **out);

/* Opens a session: 0 with *id (never 0; random, so that code not given an
 * id cannot guess one), MOLT_DB_EBUSY when max_sessions are open,
 * MOLT_DB_ECLOSED once molt_db_host_free began, MOLT_DB_ENOMEM when memory
 * ran out, MOLT_DB_EIO when the kernel gives no randomness (getrandom). */
MOLT_DB_API
int molt_db_host_session_open(molt_db_host *h, uint64_t *id);

/* Closes a session: its unfinished requests each end with a Cancelled
 * frame, its transactions roll back, and a later submit in it is refused.
 * Its streams stay the caller's to release. 0, MOLT_DB_EINVAL when no
 * session of this host has that id open, MOLT_DB_ECLOSED once
 * molt_db_host_free began. */
MOLT_DB_API
int molt_db_host_session_close(molt_db_host *h, uint64_t id);

/* molt_db_host_submit, in session `session` (0: a session of its own). A
 * session that is not open on this host (never opened, closed, another
 * host's, or closed by a limit of the worker) gives a stream whose one
 * frame is InvalidInput and says so. */
MOLT_DB_API
int molt_db_host_submit_in(molt_db_host *h, uint64_t session, const uint8_t *req,
                           size_t len, uint64_t token, void *udata,
                           molt_db_host_stream **out);

/* 1 with the next frame, 0 when none is ready yet, MOLT_DB_HOST_DONE once
 * the final frame was taken. */
MOLT_DB_API
int molt_db_host_next(molt_db_host_stream *s, const uint8_t **frame, size_t *len);

/* molt_db_host_next, except that the frame becomes the caller's: it stays
 * valid, whatever happens to the stream or the host, until
 * molt_db_host_frame_free(*owned) (exactly once). So a runtime can hand a
 * large frame's bytes (an arrow_ipc batch) on without copying them. *owned
 * is NULL when no frame was returned. The frame's bytes are the caller's
 * to read and write (e.g. to move a payload to an aligned address). */
MOLT_DB_API
int molt_db_host_next_owned(molt_db_host_stream *s, molt_db_host_frame **owned,
                            const uint8_t **frame, size_t *len);

/* Frees a frame from molt_db_host_next_owned; NULL is ignored. May be
 * called from any thread, after the stream's release or the host's free. */
MOLT_DB_API
void molt_db_host_frame_free(molt_db_host_frame *owned);

/* Frees the stream; a request still running is cancelled. */
MOLT_DB_API
void molt_db_host_release(molt_db_host_stream *s);

/* Cancels every unfinished request submitted with token (not 0): each ends
 * with a Cancelled frame. 0, or MOLT_DB_ECLOSED / MOLT_DB_ENOMEM. */
MOLT_DB_API
int molt_db_host_cancel(molt_db_host *h, uint64_t token);

/* The fd to watch for reading (see the modes above). */
MOLT_DB_API
int molt_db_host_fd(molt_db_host *h);

/* Driven mode: milliseconds until molt_db_host_poll has a timer to run, 0
 * when it has work now (a submit, release or cancel waits for it: call it
 * without waiting on the fd), -1 when nothing but I/O or a submit can
 * wake it (also when nothing is active at all, as in an idle SQLite-only
 * host). Threaded mode: -1. */
MOLT_DB_API
int molt_db_host_timeout(molt_db_host *h);

/* Driven mode: the requests running (accepted, not yet answered), the
 * transactions open and the database connections busy with work of their
 * own (opening, finishing a cancel, rolling back): work whose timers and
 * I/O need molt_db_host_poll even while the caller waits for no frame (a
 * transaction's idle timeout, the CancelRequest after a request was
 * answered Cancelled). 0 when the host may sleep until the next submit.
 * Threaded mode: -1 (the host's thread runs that work). */
MOLT_DB_API
long molt_db_host_pending(molt_db_host *h);

/* Driven mode: the part of molt_db_host_pending that needs
 * molt_db_host_poll to make progress now: the requests not yet over
 * (running, or answered while their database work still ends, as after a
 * cancel), the transactions beginning, ending or being rolled back, and
 * the connections busy with work of their own. An open transaction with
 * nothing running in it is not counted (it waits for its session's next
 * request; only its idle and lifetime timers need a poll, when
 * molt_db_host_timeout says they are due), nor is its connection. 0 when
 * the host has nothing to do before its next timer or submit. Threaded
 * mode: -1. */
MOLT_DB_API
long molt_db_host_busy(molt_db_host *h);

/* Driven mode: takes the submits, releases and cancels made since the last
 * call, then runs ready I/O and timers, waiting at most timeout_ms for
 * some (-1: until something happens); no wait while a stream has news not
 * yet returned by molt_db_host_ready. Threaded mode: waits at most
 * timeout_ms for news (not at all when news waits on a host whose callers
 * arm: molt_db_host_arm), then clears the fd's readiness. 0, or
 * MOLT_DB_ECLOSED. */
MOLT_DB_API
int molt_db_host_poll(molt_db_host *h, int timeout_ms);

/* Ends a molt_db_host_poll waiting on another thread (driven mode; in
 * threaded mode the loop thread's wait), or the next one's wait, as a
 * submit would, without a command: for a caller that must have its
 * driving thread look at something of its own. Callable from any thread.
 * 0, or MOLT_DB_ECLOSED once molt_db_host_free began. */
MOLT_DB_API
int molt_db_host_wake(molt_db_host *h);

/* The caller is about to wait for news on molt_db_host_fd (threaded
 * mode). 1: a stream has news already (molt_db_host_ready returns it; do
 * not wait); 0: the fd becomes readable at the next news. A host whose
 * callers arm (one call of this function makes it one, for good) writes
 * its fd only when a caller armed, once per arm, rather than at every
 * news after molt_db_host_poll cleared it: a caller that takes news as it
 * comes then costs the host no write it does not wait for. So on such a
 * host every waiter arms before it waits (molt_db_host_poll(h, ms) with
 * ms != 0 arms itself); news that comes between the arm and the wait
 * still makes the fd readable. Driven mode: 1 when a stream has news,
 * else 0. */
MOLT_DB_API
int molt_db_host_arm(molt_db_host *h);

/* Fills udata with the streams that have news (a frame, or their end)
 * since they were last returned here, at most cap of them; returns how
 * many. A stream released meanwhile is not returned. */
MOLT_DB_API
size_t molt_db_host_ready(molt_db_host *h, void **udata, size_t cap);

/* The largest request molt_db_host_submit accepts (the worker's
 * max_request_bytes): a transport that reads length-prefixed frames
 * refuses a longer one before reading it. */
MOLT_DB_API
size_t molt_db_host_max_request_bytes(molt_db_host *h);

/* Cancels every request, closes every connection (a CancelRequest still on
 * its way first ends, within its alias's cancel_timeout_ms and at most 5 s), joins the
 * host's thread and frees the host; streams not released become invalid. */
MOLT_DB_API
void molt_db_host_free(molt_db_host *h);

#ifdef __cplusplus
}
#endif

#endif
