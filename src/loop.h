/*
 * The event-loop adapter (internal). The connection state machine never
 * calls libuv directly: it asks this adapter to watch one fd for
 * readiness, to run one timer, and to resolve one host name, and the adapter
 * calls back into the connection (molt_db__conn_on_*). loop_libuv.c is the
 * only file that includes uv.h for this; another runtime can drive the same
 * connection by providing these few functions (as hiredis adapters do).
 */
#ifndef MOLT_DB_LOOP_H
#define MOLT_DB_LOOP_H

#include <stdint.h>

#include <uv.h>

struct molt_db_conn;
struct addrinfo;

#define MOLT_DB_WATCH_READ 1
#define MOLT_DB_WATCH_WRITE 2

typedef struct molt_db_loop {
    uv_loop_t *uv;
    uv_poll_t *poll;          /* the watcher of the current fd, or NULL */
    int poll_fd;
    int poll_events;          /* MOLT_DB_WATCH_* currently asked for */
    uv_timer_t timer;
    uv_idle_t idle;           /* runs deferred flushes before the loop polls */
    int deferred;             /* idle is started */
    struct molt_db_resolve *resolving;  /* in-flight getaddrinfo, or NULL */
    int open_handles;         /* handles whose close callback is pending */
    int closing;
} molt_db_loop;

/* Readiness and timer entry points into the connection. */
void molt_db__conn_on_io(struct molt_db_conn *conn, int readable, int writable);
void molt_db__conn_on_timer(struct molt_db_conn *conn);
/* The deferred work asked for with molt_db__loop_defer. */
void molt_db__conn_on_deferred(struct molt_db_conn *conn);
/* status 0 with a list the connection owns (freed with freeaddrinfo), or a
 * negative libuv error code and NULL. */
void molt_db__conn_on_resolved(struct molt_db_conn *conn, int status,
                               struct addrinfo *ai);
/* All handles closed: the connection may free itself. */
void molt_db__conn_on_closed(struct molt_db_conn *conn);

int molt_db__loop_init(molt_db_loop *l, uv_loop_t *uv);
/* Watches fd for `events` (0 stops watching). A different fd than before
 * replaces the watcher. Returns 0 or a libuv error. */
int molt_db__loop_watch(molt_db_loop *l, int fd, int events);
/* Stops watching fd; call before closing it. */
void molt_db__loop_unwatch(molt_db_loop *l);
/* Asks for molt_db__conn_on_deferred once, at the start of the next loop
 * iteration, before the loop waits for I/O: writes made by several
 * callbacks of one iteration go out in one system call. An idle handle
 * carries it, so while it is asked for uv_backend_timeout is 0 and a
 * caller driving the loop from outside does not block on it. */
void molt_db__loop_defer(molt_db_loop *l);
/* Arms the timer for ms milliseconds (0 disarms it). */
void molt_db__loop_timer(molt_db_loop *l, uint64_t ms);
/* Starts resolving host:port (TCP, any family). Returns 0 or a libuv error;
 * molt_db__conn_on_resolved runs later, unless the loop is closed first. */
int molt_db__loop_resolve(molt_db_loop *l, const char *host, uint16_t port);
/* Abandons an in-flight resolve (its result will be dropped). */
void molt_db__loop_cancel_resolve(molt_db_loop *l);
/* Closes every handle; molt_db__conn_on_closed runs once they are closed. */
void molt_db__loop_close(molt_db_loop *l);
/* Monotonic milliseconds of the loop. */
uint64_t molt_db__loop_now(const molt_db_loop *l);

#endif
