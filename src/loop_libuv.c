/* The libuv adapter: one poll watcher, one timer, one getaddrinfo at a time. */
#include "loop.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_internal.h"

/* A getaddrinfo request outlives its connection when the connection closes
 * first: then conn is NULL and the callback only frees. */
typedef struct molt_db_resolve {
    uv_getaddrinfo_t req;
    molt_db_loop *loop;
    struct molt_db_conn *conn;
} molt_db_resolve;

static struct molt_db_conn *conn_of(molt_db_loop *l)
{
    return molt_db__conn_from_loop(l);
}

static void on_handle_closed(uv_handle_t *h)
{
    molt_db_loop *l = h->data;
    if (h != (uv_handle_t *)&l->timer && h != (uv_handle_t *)&l->idle)
        free(h);
    if (--l->open_handles == 0 && l->closing)
        molt_db__conn_on_closed(conn_of(l));
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    molt_db_loop *l = p->data;
    if (status < 0) {
        /* libuv stopped the watcher (an error or hang-up on the fd): say so,
         * so the next watch call starts it again, and let the connection
         * find the error by reading. */
        l->poll_events = 0;
        molt_db__conn_on_io(conn_of(l), 1, 1);
        return;
    }
    molt_db__conn_on_io(conn_of(l), (events & UV_READABLE) != 0,
                        (events & UV_WRITABLE) != 0);
}

static void on_timer(uv_timer_t *t)
{
    molt_db__conn_on_timer(conn_of(t->data));
}

int molt_db__loop_init(molt_db_loop *l, uv_loop_t *uv)
{
    memset(l, 0, sizeof *l);
    l->uv = uv;
    l->poll_fd = -1;
    int rc = uv_timer_init(uv, &l->timer);
    if (rc < 0)
        return rc;
    l->timer.data = l;
    l->open_handles = 1;
    rc = uv_idle_init(uv, &l->idle);
    if (rc < 0) {
        /* the timer is open: close it; the caller frees l once it is */
        l->closing = 1;
        uv_close((uv_handle_t *)&l->timer, on_handle_closed);
        return rc;
    }
    l->idle.data = l;
    l->open_handles = 2;
    return 0;
}

static void on_idle(uv_idle_t *i)
{
    molt_db_loop *l = i->data;
    uv_idle_stop(i);
    l->deferred = 0;
    molt_db__conn_on_deferred(conn_of(l));
}

void molt_db__loop_defer(molt_db_loop *l)
{
    if (l->closing || l->deferred)
        return;
    l->deferred = 1;
    uv_idle_start(&l->idle, on_idle);
}

static void drop_poll(molt_db_loop *l)
{
    if (l->poll == NULL)
        return;
    uv_poll_stop(l->poll);
    uv_close((uv_handle_t *)l->poll, on_handle_closed);
    l->poll = NULL;
    l->poll_fd = -1;
    l->poll_events = 0;
}

int molt_db__loop_watch(molt_db_loop *l, int fd, int events)
{
    if (l->closing)
        return UV_EINVAL;
    if (l->poll != NULL && l->poll_fd != fd)
        drop_poll(l);
    if (l->poll == NULL) {
        if (events == 0)
            return 0;
        uv_poll_t *p = malloc(sizeof *p);
        if (p == NULL)
            return UV_ENOMEM;
        int rc = uv_poll_init(l->uv, p, fd);
        if (rc < 0) {
            free(p);
            return rc;
        }
        p->data = l;
        l->open_handles++;
        l->poll = p;
        l->poll_fd = fd;
        l->poll_events = 0;
    }
    if (events == l->poll_events)
        return 0;
    l->poll_events = events;
    if (events == 0)
        return uv_poll_stop(l->poll);
    int uvev = ((events & MOLT_DB_WATCH_READ) ? UV_READABLE : 0) |
               ((events & MOLT_DB_WATCH_WRITE) ? UV_WRITABLE : 0);
    int rc = uv_poll_start(l->poll, uvev, on_poll);
    /* libuv hands a watcher's change to epoll when it next polls, and
     * before 1.45 uv_backend_timeout does not count such a change: one
     * more turn first, so a caller blocking on uv_backend_fd sees it */
    if (rc == 0)
        molt_db__loop_defer(l);
    return rc;
}

void molt_db__loop_unwatch(molt_db_loop *l)
{
    drop_poll(l);
}

void molt_db__loop_timer(molt_db_loop *l, uint64_t ms)
{
    if (l->closing)
        return;
    if (ms == 0)
        uv_timer_stop(&l->timer);
    else
        uv_timer_start(&l->timer, on_timer, ms, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    molt_db_resolve *r = req->data;
    struct molt_db_conn *conn = r->conn;
    if (conn != NULL)
        r->loop->resolving = NULL;
    free(r);
    if (conn == NULL) {
        if (ai != NULL)
            uv_freeaddrinfo(ai);
        return;
    }
    molt_db__conn_on_resolved(conn, status, status == 0 ? ai : NULL);
}

int molt_db__loop_resolve(molt_db_loop *l, const char *host, uint16_t port)
{
    if (l->closing || l->resolving != NULL)
        return UV_EINVAL;
    molt_db_resolve *r = calloc(1, sizeof *r);
    if (r == NULL)
        return UV_ENOMEM;
    r->loop = l;
    r->conn = conn_of(l);
    r->req.data = r;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    l->resolving = r;
    int rc = uv_getaddrinfo(l->uv, &r->req, on_resolved, host, service, &hints);
    if (rc < 0) {
        l->resolving = NULL;
        free(r);
    }
    return rc;
}

void molt_db__loop_cancel_resolve(molt_db_loop *l)
{
    if (l->resolving != NULL) {
        /* The request frees itself in its callback, detached from us. */
        l->resolving->conn = NULL;
        uv_cancel((uv_req_t *)&l->resolving->req);
        l->resolving = NULL;
    }
}

void molt_db__loop_close(molt_db_loop *l)
{
    if (l->closing)
        return;
    l->closing = 1;
    molt_db__loop_cancel_resolve(l);
    drop_poll(l);
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
    uv_idle_stop(&l->idle);
    l->deferred = 0;
    uv_close((uv_handle_t *)&l->idle, on_handle_closed);
}

uint64_t molt_db__loop_now(const molt_db_loop *l)
{
    return uv_now(l->uv);
}
