/* The libuv adapter: the hooks of molt_db_loop on libuv handles. The only
 * file of the library that calls libuv. */
#include "molt_db/loop_libuv.h"

#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

/* A watcher. The idle handle asks for one more turn after a change: libuv
 * hands a watcher's change to epoll when it next polls, and before 1.45
 * uv_backend_timeout does not count such a change, so a caller blocking on
 * uv_backend_fd would not see it. Both handles close before it is freed. */
typedef struct uvio {
    uv_poll_t poll;
    uv_idle_t kick;
    molt_db_loop_io_cb cb;
    void *arg;
    int events;               /* asked for; 0 after libuv stopped it */
    int open;                 /* handles not closed yet */
} uvio;

typedef struct uvtimer {
    uv_timer_t t;
    molt_db_loop_cb cb;
    void *arg;
} uvtimer;

/* A deferred call: an idle handle, started while due. */
typedef struct uvdefer {
    uv_idle_t idle;
    molt_db_loop_cb cb;
    void *arg;
} uvdefer;

typedef struct uvresolve {
    uv_getaddrinfo_t req;
    molt_db_loop_resolve_cb cb;
    void *arg;
    int cancelled;
} uvresolve;

static void on_poll(uv_poll_t *p, int status, int events)
{
    uvio *w = p->data;
    if (status < 0) {
        /* libuv stopped the watcher (an error or hang-up on the fd): the
         * next io_set starts it again; the connection finds the error by
         * reading. */
        w->events = 0;
        w->cb(w->arg, MOLT_DB_LOOP_READ | MOLT_DB_LOOP_WRITE);
        return;
    }
    w->cb(w->arg, ((events & UV_READABLE) ? MOLT_DB_LOOP_READ : 0) |
                      ((events & UV_WRITABLE) ? MOLT_DB_LOOP_WRITE : 0));
}

static void on_kick(uv_idle_t *i)
{
    uv_idle_stop(i);
}

static void *io_new(void *data, int fd, molt_db_loop_io_cb cb, void *arg)
{
    uvio *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    if (uv_poll_init(data, &w->poll, fd) < 0) {
        free(w);
        return NULL;
    }
    uv_idle_init(data, &w->kick); /* cannot fail */
    w->poll.data = w->kick.data = w;
    w->cb = cb;
    w->arg = arg;
    w->open = 2;
    return w;
}

static int io_set(void *data, void *io, int events)
{
    (void)data;
    uvio *w = io;
    if (events == w->events)
        return 0;
    w->events = events;
    if (events == 0)
        return uv_poll_stop(&w->poll) < 0 ? -EIO : 0;
    int uvev = ((events & MOLT_DB_LOOP_READ) ? UV_READABLE : 0) |
               ((events & MOLT_DB_LOOP_WRITE) ? UV_WRITABLE : 0);
    if (uv_poll_start(&w->poll, uvev, on_poll) < 0) {
        w->events = 0;
        return -EIO;
    }
    uv_idle_start(&w->kick, on_kick);
    return 0;
}

static void on_io_closed(uv_handle_t *h)
{
    uvio *w = h->data;
    if (--w->open == 0)
        free(w);
}

static void io_free(void *data, void *io)
{
    (void)data;
    uvio *w = io;
    uv_close((uv_handle_t *)&w->poll, on_io_closed);
    uv_close((uv_handle_t *)&w->kick, on_io_closed);
}

static void on_timer(uv_timer_t *t)
{
    uvtimer *u = t->data;
    u->cb(u->arg);
}

static void *timer_new(void *data, int flags, molt_db_loop_cb cb, void *arg)
{
    uvtimer *u = malloc(sizeof *u);
    if (u == NULL)
        return NULL;
    uv_timer_init(data, &u->t); /* cannot fail */
    u->t.data = u;
    u->cb = cb;
    u->arg = arg;
    if (flags & MOLT_DB_LOOP_WEAK)
        uv_unref((uv_handle_t *)&u->t);
    return u;
}

static void timer_start(void *data, void *timer, uint64_t ms)
{
    (void)data;
    uv_timer_start(&((uvtimer *)timer)->t, on_timer, ms, 0);
}

static void timer_stop(void *data, void *timer)
{
    (void)data;
    uv_timer_stop(&((uvtimer *)timer)->t);
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

static void timer_free(void *data, void *timer)
{
    (void)data;
    uv_close((uv_handle_t *)&((uvtimer *)timer)->t, free_on_close);
}

static void on_idle(uv_idle_t *i)
{
    uvdefer *d = i->data;
    uv_idle_stop(i);
    d->cb(d->arg);
}

/* A node of libuv's lists (QUEUE, void *[2], before 1.47; struct
 * uv__queue since): next, then prev, a layout libuv 1 keeps, since
 * uv_loop_t is embedded by its users. The loop's idle_handles list holds
 * exactly its active idle handles, linked by their queue field. */
typedef struct uvq {
    struct uvq *next, *prev;
} uvq;

static void uvq_remove(uvq *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
}

/* The active idle handles are walked, not every handle of the loop, as
 * libuv's idle phase walks them: the list is moved aside and each handle
 * put back before its call, so a call that stops, starts or closes idle
 * handles leaves the walk sound; one started by a call waits for the idle
 * phase. */
void molt_db_loop_libuv_flush(uv_loop_t *uv)
{
    uvq *head = (uvq *)(void *)&uv->idle_handles;
    if (head->next == head)
        return;
    uvq batch = {head->next, head->prev};
    batch.next->prev = batch.prev->next = &batch;
    head->next = head->prev = head;
    while (batch.next != &batch) {
        uvq *q = batch.next;
        uvq_remove(q);
        q->next = head;
        q->prev = head->prev;
        head->prev->next = q;
        head->prev = q;
        uv_idle_t *i = (uv_idle_t *)(void *)((char *)q - offsetof(uv_idle_t, queue));
        if (i->idle_cb == on_idle)
            on_idle(i);
    }
}

static void *defer_new(void *data, molt_db_loop_cb cb, void *arg)
{
    uvdefer *d = malloc(sizeof *d);
    if (d == NULL)
        return NULL;
    uv_idle_init(data, &d->idle); /* cannot fail */
    d->idle.data = d;
    d->cb = cb;
    d->arg = arg;
    return d;
}

static void defer_start(void *data, void *defer)
{
    (void)data;
    uv_idle_start(&((uvdefer *)defer)->idle, on_idle); /* no-op if started */
}

static void defer_free(void *data, void *defer)
{
    (void)data;
    uv_close((uv_handle_t *)&((uvdefer *)defer)->idle, free_on_close);
}

static uint64_t now_ms(void *data)
{
    return uv_now(data);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    uvresolve *r = req->data;
    if (r->cancelled) {
        if (ai != NULL)
            uv_freeaddrinfo(ai);
    } else if (status < 0 || ai == NULL) {
        if (ai != NULL)
            uv_freeaddrinfo(ai);
        r->cb(r->arg, NULL, status < 0 ? uv_strerror(status) : "no address");
    } else {
        r->cb(r->arg, ai, NULL);
    }
    free(r);
}

static int resolve(void *data, const char *host, const char *service,
                   molt_db_loop_resolve_cb cb, void *arg, void **req)
{
    uvresolve *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->req.data = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    int rc = uv_getaddrinfo(data, &r->req, on_resolved, host, service, &hints);
    if (rc < 0) {
        free(r);
        return rc == UV_ENOMEM ? -ENOMEM : -EIO;
    }
    *req = r;
    return 0;
}

/* The request frees itself in its callback, detached from its caller. */
static void resolve_cancel(void *data, void *req)
{
    (void)data;
    uvresolve *r = req;
    r->cancelled = 1;
    uv_cancel((uv_req_t *)&r->req);
}

/* A wake-up: an eventfd under a poll handle (see molt_db__wake_fd_new for
 * why not a uv_async_t). */
typedef struct uvwake {
    uv_poll_t poll;
    int fd;
    molt_db_loop_cb cb;
    void *arg;
} uvwake;

static void on_wake_readable(uv_poll_t *p, int status, int events)
{
    (void)status; /* an eventfd has no error to report */
    (void)events;
    uvwake *k = p->data;
    molt_db__wake_fd_drain(k->fd);
    k->cb(k->arg);
}

static int wake_new(void *data, molt_db_loop_cb cb, void *arg, void **out)
{
    uvwake *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->fd = molt_db__wake_fd_new();
    if (k->fd < 0) {
        int rc = k->fd;
        free(k);
        return rc;
    }
    if (uv_poll_init(data, &k->poll, k->fd) < 0) {
        close(k->fd);
        free(k);
        return -EIO;
    }
    k->poll.data = k;
    k->cb = cb;
    k->arg = arg;
    uv_poll_start(&k->poll, UV_READABLE, on_wake_readable); /* a new fd: cannot fail */
    *out = k;
    return 0;
}

/* Any thread: only the eventfd is touched. */
static void wake(void *data, void *handle)
{
    (void)data;
    molt_db__wake_fd_poke(((uvwake *)handle)->fd);
}

static void on_wake_closed(uv_handle_t *h)
{
    uvwake *k = h->data;
    close(k->fd);
    free(k);
}

static void wake_free(void *data, void *handle)
{
    (void)data;
    uv_close((uv_handle_t *)&((uvwake *)handle)->poll, on_wake_closed);
}

static const molt_db_loop_hooks libuv_hooks = {
    io_new, io_set, io_free,
    timer_new, timer_start, timer_stop, timer_free,
    defer_new, defer_start, defer_free,
    now_ms, resolve, resolve_cancel, NULL,
    wake_new, wake, wake_free,
};

int molt_db_loop_libuv_new(uv_loop_t *uv, molt_db_loop **out,
                           molt_db_error *err)
{
    if (uv == NULL) {
        *out = NULL;
        return molt_db_error_set(err, MOLT_DB_EINVAL, "the uv loop is NULL");
    }
    return molt_db_loop_new(&libuv_hooks, uv, out, err);
}

uv_loop_t *molt_db_loop_libuv_uv(const molt_db_loop *loop)
{
    return loop->data;
}
