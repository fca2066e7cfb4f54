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

/* A deferred call: an idle handle, and a link in its thread's due list
 * while it is started (molt_db_loop_libuv_run_deferred). */
typedef struct due_link {
    struct due_link *prev, *next;
} due_link;

typedef struct uvdefer {
    uv_idle_t idle;
    due_link due;             /* linked while due (prev == NULL: not due) */
    uv_loop_t *uv;
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

/* The deferred calls due on the calling thread, over every uv loop it
 * runs, kept only on a thread that runs them itself
 * (molt_db_loop_libuv_run_deferred, which then owns its loops: every hook
 * but wake runs on a loop's thread, so a list per thread needs no lock
 * and finds a loop's due calls without a walk of its handles). A thread
 * that only sets a loop up (a host's, before its thread starts) keeps
 * none, so no other thread ever unlinks from its list. Circular, around
 * this sentinel. */
static _Thread_local due_link due_list;
static _Thread_local int due_kept;

static void due_unlink(uvdefer *d)
{
    if (d->due.prev == NULL)
        return;
    d->due.prev->next = d->due.next;
    d->due.next->prev = d->due.prev;
    d->due.prev = d->due.next = NULL;
}

static void due_append(due_link *list, due_link *l)
{
    if (list->next == NULL)
        list->next = list->prev = list;
    l->prev = list->prev;
    l->next = list;
    list->prev->next = l;
    list->prev = l;
}

/* Not due any more, then its call. */
static void defer_run(uvdefer *d)
{
    due_unlink(d);
    uv_idle_stop(&d->idle);
    d->cb(d->arg);
}

static void on_idle(uv_idle_t *i)
{
    defer_run(i->data);
}

/* A deferred call due now: stopped and run (molt_db_loop_libuv_flush).
 * Its memory goes only in a close callback, in a later turn, so the walk
 * survives a call that frees it or starts others. */
static void run_due_defer(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type != UV_IDLE || !uv_is_active(h) || ((uv_idle_t *)h)->idle_cb != on_idle)
        return;
    on_idle((uv_idle_t *)h);
}

void molt_db_loop_libuv_flush(uv_loop_t *uv)
{
    uv_walk(uv, run_due_defer, NULL);
}

static void *defer_new(void *data, molt_db_loop_cb cb, void *arg)
{
    uvdefer *d = malloc(sizeof *d);
    if (d == NULL)
        return NULL;
    uv_idle_init(data, &d->idle); /* cannot fail */
    d->idle.data = d;
    d->due.prev = d->due.next = NULL;
    d->uv = data;
    d->cb = cb;
    d->arg = arg;
    return d;
}

static void defer_start(void *data, void *defer)
{
    (void)data;
    uvdefer *d = defer;
    if (due_kept && d->due.prev == NULL)
        due_append(&due_list, &d->due);
    uv_idle_start(&d->idle, on_idle); /* no-op if started */
}

static void defer_free(void *data, void *defer)
{
    (void)data;
    uvdefer *d = defer;
    due_unlink(d);
    uv_close((uv_handle_t *)&d->idle, free_on_close);
}

void molt_db_loop_libuv_run_deferred(uv_loop_t *uv)
{
    due_kept = 1; /* from now on: those due before ran in the idle phase */
    if (due_list.next == NULL)
        return;
    /* the calls due now, moved to a list of their own: one that a call
     * defers again waits for the loop's idle phase, as it would there */
    due_link batch = {&batch, &batch};
    for (due_link *l = due_list.next, *next; l != &due_list; l = next) {
        next = l->next;
        uvdefer *d = (uvdefer *)((char *)l - offsetof(uvdefer, due));
        if (d->uv != uv)
            continue;
        l->prev->next = l->next;
        l->next->prev = l->prev;
        due_append(&batch, l);
    }
    /* a call may free another of the batch (defer_free unlinks it) */
    while (batch.next != &batch)
        defer_run((uvdefer *)((char *)batch.next - offsetof(uvdefer, due)));
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
