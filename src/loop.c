/* The public loop object and the connection's hold on it, over the hooks. */
#include "loop.h"

#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn_internal.h"

int molt_db_loop_new(const molt_db_loop_hooks *hooks, void *data,
                     molt_db_loop **out, molt_db_error *err)
{
    *out = NULL;
    if (hooks == NULL || hooks->io_new == NULL || hooks->io_set == NULL ||
        hooks->io_free == NULL || hooks->timer_new == NULL ||
        hooks->timer_start == NULL || hooks->timer_stop == NULL ||
        hooks->timer_free == NULL || hooks->defer_new == NULL ||
        hooks->defer_start == NULL || hooks->defer_free == NULL ||
        hooks->now_ms == NULL ||
        (hooks->resolve != NULL) != (hooks->resolve_cancel != NULL))
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "molt_db_loop_new: a required hook is NULL");
    int nwake = (hooks->wake_new != NULL) + (hooks->wake != NULL) +
                (hooks->wake_free != NULL);
    if (nwake != 0 && nwake != 3)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "molt_db_loop_new: wake_new, "
                                 "wake and wake_free are all set or all NULL");
    molt_db_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    l->h = *hooks;
    l->data = data;
    *out = l;
    return MOLT_DB_OK;
}

void *molt_db_loop_data(const molt_db_loop *loop)
{
    return loop->data;
}

static void loop_free_now(molt_db_loop *loop)
{
    if (loop->h.free != NULL)
        loop->h.free(loop->data);
    free(loop);
}

void molt_db_loop_free(molt_db_loop *loop)
{
    if (loop == NULL)
        return;
    loop->free_wanted = 1;
    if (loop->users == 0)
        loop_free_now(loop);
}

void molt_db__loop_ref(molt_db_loop *l)
{
    l->users++;
}

void molt_db__loop_unref(molt_db_loop *l)
{
    if (--l->users == 0 && l->free_wanted)
        loop_free_now(l);
}

/* ---- wakers ------------------------------------------------------------- */

struct molt_db_loop_waker {
    molt_db_loop *loop;
    void *handle;             /* the adapter's */
    molt_db_loop_cb cb;
    void *arg;
    /* woken and the run not begun: a wake meanwhile needs no hook call */
    atomic_int pending;
};

static void on_wake(void *arg)
{
    molt_db_loop_waker *w = arg;
    /* Cleared before cb looks at the caller's queue: a wake from here on
     * calls the hook again, so nothing queued after cb looked is left
     * behind. The exchange pairs with the wakers' (their writes before
     * the wake are visible to cb). */
    (void)atomic_exchange(&w->pending, 0);
    w->cb(w->arg);
}

int molt_db_loop_waker_new(molt_db_loop *loop, molt_db_loop_cb cb, void *arg,
                          molt_db_loop_waker **out, molt_db_error *err)
{
    *out = NULL;
    if (loop->h.wake_new == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "molt_db_loop_waker_new: the loop's hooks have no wake-up");
    molt_db_loop_waker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    atomic_init(&w->pending, 0);
    int rc = loop->h.wake_new(loop->data, on_wake, w, &w->handle);
    if (rc < 0) {
        free(w);
        return molt_db_error_set(err, rc == -ENOMEM ? MOLT_DB_ENOMEM : MOLT_DB_EIO,
                                 "molt_db_loop_waker_new: %s", strerror(-rc));
    }
    molt_db__loop_ref(loop);
    *out = w;
    return MOLT_DB_OK;
}

void molt_db_loop_wake(molt_db_loop_waker *w)
{
    if (atomic_exchange(&w->pending, 1) == 0)
        w->loop->h.wake(w->loop->data, w->handle);
}

void molt_db_loop_waker_free(molt_db_loop_waker *w)
{
    if (w == NULL)
        return;
    molt_db_loop *loop = w->loop;
    loop->h.wake_free(loop->data, w->handle);
    free(w);
    molt_db__loop_unref(loop);
}

int molt_db__wake_fd_new(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void molt_db__wake_fd_poke(int fd)
{
    uint64_t one = 1;
    /* cannot fill the counter: the library pokes at most once per drain */
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

void molt_db__wake_fd_drain(int fd)
{
    uint64_t n;
    ssize_t got = read(fd, &n, sizeof n);
    (void)got;
}

uint64_t molt_db__hrtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- a connection's hold on the loop ----------------------------------- */

static struct molt_db_conn *conn_of(molt_db_conn_loop *l)
{
    return molt_db__conn_from_loop(l);
}

static void on_io(void *arg, int events)
{
    molt_db__conn_on_io(conn_of(arg), (events & MOLT_DB_LOOP_READ) != 0,
                        (events & MOLT_DB_LOOP_WRITE) != 0);
}

static void on_timer(void *arg)
{
    molt_db__conn_on_timer(conn_of(arg));
}

/* One deferred call carries three things, in this order: the end of the
 * connection (after close), a name resolved without a resolve hook, and the
 * connection's own deferred work. */
static void on_defer(void *arg)
{
    molt_db_conn_loop *l = arg;
    if (l->closing) {
        molt_db_loop *loop = l->loop;
        loop->h.defer_free(loop->data, l->defer);
        l->defer = NULL;
        molt_db__conn_on_closed(conn_of(l)); /* frees l */
        molt_db__loop_unref(loop);
        return;
    }
    if (l->resolve_due) {
        struct addrinfo *ai = l->resolved;
        l->resolve_due = 0;
        l->resolved = NULL;
        molt_db__conn_on_resolved(conn_of(l), ai, l->resolve_error);
        if (l->closing)
            return; /* the close made the call due again */
    }
    if (l->deferred) {
        l->deferred = 0;
        molt_db__conn_on_deferred(conn_of(l));
    }
}

int molt_db__loop_init(molt_db_conn_loop *l, molt_db_loop *loop)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->io_fd = -1;
    l->timer = molt_db__timer_new(loop, 0, on_timer, l);
    l->defer = loop->h.defer_new(loop->data, on_defer, l);
    if (l->timer == NULL || l->defer == NULL) {
        molt_db__timer_free(loop, &l->timer);
        if (l->defer != NULL)
            loop->h.defer_free(loop->data, l->defer);
        l->defer = NULL;
        return -ENOMEM;
    }
    molt_db__loop_ref(loop);
    return 0;
}

void molt_db__loop_defer(molt_db_conn_loop *l)
{
    if (l->closing || l->deferred)
        return;
    l->deferred = 1;
    l->loop->h.defer_start(l->loop->data, l->defer);
}

void molt_db__loop_unwatch(molt_db_conn_loop *l)
{
    if (l->io == NULL)
        return;
    l->loop->h.io_free(l->loop->data, l->io);
    l->io = NULL;
    l->io_fd = -1;
    l->io_events = 0;
}

/* Every change goes to the adapter, also one to the events already asked
 * for: an adapter whose loop stopped a watcher on an error starts it
 * again. */
int molt_db__loop_watch(molt_db_conn_loop *l, int fd, int events)
{
    if (l->closing)
        return -EINVAL;
    if (l->io != NULL && l->io_fd != fd)
        molt_db__loop_unwatch(l);
    if (l->io == NULL) {
        if (events == 0)
            return 0;
        l->io = l->loop->h.io_new(l->loop->data, fd, on_io, l);
        if (l->io == NULL)
            return -ENOMEM;
        l->io_fd = fd;
    }
    l->io_events = events;
    return l->loop->h.io_set(l->loop->data, l->io, events);
}

void molt_db__loop_timer(molt_db_conn_loop *l, uint64_t ms)
{
    if (l->closing)
        return;
    if (ms == 0)
        molt_db__timer_stop(l->loop, l->timer);
    else
        molt_db__timer_start(l->loop, l->timer, ms);
}

static void on_resolved(void *arg, struct addrinfo *ai, const char *error)
{
    molt_db_conn_loop *l = arg;
    l->resolving = NULL;
    molt_db__conn_on_resolved(conn_of(l), ai, ai != NULL ? NULL : error);
}

int molt_db__loop_resolve(molt_db_conn_loop *l, const char *host, uint16_t port)
{
    if (l->closing || l->resolving != NULL || l->resolve_due)
        return -EINVAL;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (l->loop->h.resolve != NULL)
        return l->loop->h.resolve(l->loop->data, host, service, on_resolved, l,
                                  &l->resolving);
    /* No resolve hook: the system resolver, here; the result is handed
     * over from the loop, as an adapter's would be. */
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, service, &hints, &ai);
    l->resolved = rc == 0 ? ai : NULL;
    l->resolve_error = rc == 0 ? NULL : gai_strerror(rc);
    if (rc == 0 && ai == NULL)
        l->resolve_error = "no address";
    l->resolve_due = 1;
    l->loop->h.defer_start(l->loop->data, l->defer);
    return 0;
}

void molt_db__loop_cancel_resolve(molt_db_conn_loop *l)
{
    if (l->resolving != NULL) {
        l->loop->h.resolve_cancel(l->loop->data, l->resolving);
        l->resolving = NULL;
    }
    if (l->resolve_due) {
        if (l->resolved != NULL)
            freeaddrinfo(l->resolved);
        l->resolved = NULL;
        l->resolve_due = 0;
    }
}

void molt_db__loop_close(molt_db_conn_loop *l)
{
    if (l->closing)
        return;
    molt_db__loop_cancel_resolve(l);
    molt_db__loop_unwatch(l);
    molt_db__timer_free(l->loop, &l->timer);
    l->closing = 1;
    l->deferred = 0;
    l->loop->h.defer_start(l->loop->data, l->defer);
}

uint64_t molt_db__loop_now(const molt_db_conn_loop *l)
{
    return molt_db__now_ms(l->loop);
}
