/* The driven adapter: watchers on one epoll fd, timers on a binary heap,
 * deferred calls on a list, wake-ups as eventfds watched like sockets; the
 * caller turns it with molt_db_loop_driven_run. */
#include "molt_db/loop_driven.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define MAX_EVENTS 64

typedef struct dio {
    molt_db_loop_io_cb cb;
    void *arg;
    int fd;
    int events;               /* registered with epoll; 0: not registered */
    int dead;                 /* freed during a turn: skip, free after */
    struct dio *next_dead;
} dio;

typedef struct dtimer {
    molt_db_loop_cb cb;
    void *arg;
    uint64_t due_ms;
    uint64_t seq;             /* start order: ties, and this turn or next */
    size_t slot;              /* index in the heap, or NOT_QUEUED */
} dtimer;

#define NOT_QUEUED ((size_t)-1)

typedef struct ddefer {
    molt_db_loop_cb cb;
    void *arg;
    struct ddefer *next;      /* in the due list */
    int due;
    int dead;                 /* freed while due: freed when reached */
} ddefer;

typedef struct driven {
    int epfd;
    dtimer **heap;
    size_t n, cap;             /* timers queued, room */
    size_t ntimers;            /* timers made and not freed */
    uint64_t seq;
    ddefer *due_head, *due_tail;
    size_t nwatched;          /* watchers registered with epoll */
    size_t ran;               /* callbacks run in this turn */
    int running;              /* inside molt_db_loop_driven_run */
    int doomed;               /* freed during a turn: free at its end */
    dio *dead_io;             /* freed at the end of the turn */
} driven;

static uint64_t now_ms(void *data)
{
    (void)data;
    return molt_db__hrtime_ns() / 1000000u;
}

/* ---- watchers ---------------------------------------------------------- */

static void *io_new(void *data, int fd, molt_db_loop_io_cb cb, void *arg)
{
    (void)data;
    dio *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->cb = cb;
    w->arg = arg;
    w->fd = fd;
    return w;
}

static int io_set(void *data, void *io, int events)
{
    driven *d = data;
    dio *w = io;
    if (events == w->events)
        return 0;
    /* Level-triggered. Not registered at all when nothing is wanted, since
     * epoll reports errors and hang-ups whatever the mask. */
    int rc;
    if (events == 0) {
        rc = epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    } else {
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = ((events & MOLT_DB_LOOP_READ) ? EPOLLIN : 0) |
                    ((events & MOLT_DB_LOOP_WRITE) ? EPOLLOUT : 0);
        ev.data.ptr = w;
        rc = epoll_ctl(d->epfd, w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                       w->fd, &ev);
    }
    if (rc < 0)
        return -errno;
    d->nwatched += (events != 0) - (w->events != 0);
    w->events = events;
    return 0;
}

static void io_free(void *data, void *io)
{
    driven *d = data;
    dio *w = io;
    if (w->events != 0) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->fd, NULL);
        d->nwatched--;
    }
    if (d->running) { /* this turn's events may still point to it */
        w->dead = 1;
        w->next_dead = d->dead_io;
        d->dead_io = w;
        return;
    }
    free(w);
}

/* ---- timers: a binary min-heap on (due_ms, seq) ------------------------ */

static int before(const dtimer *a, const dtimer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_put(driven *d, size_t i, dtimer *t)
{
    d->heap[i] = t;
    t->slot = i;
}

static void sift_up(driven *d, size_t i)
{
    dtimer *t = d->heap[i];
    while (i > 0 && before(t, d->heap[(i - 1) / 2])) {
        heap_put(d, i, d->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_put(d, i, t);
}

static void sift_down(driven *d, size_t i)
{
    dtimer *t = d->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->n)
            break;
        if (c + 1 < d->n && before(d->heap[c + 1], d->heap[c]))
            c++;
        if (!before(d->heap[c], t))
            break;
        heap_put(d, i, d->heap[c]);
        i = c;
    }
    heap_put(d, i, t);
}

static void heap_remove(driven *d, dtimer *t)
{
    size_t i = t->slot;
    if (i == NOT_QUEUED)
        return;
    t->slot = NOT_QUEUED;
    dtimer *last = d->heap[--d->n];
    if (last == t)
        return;
    heap_put(d, i, last);
    sift_down(d, i);
    sift_up(d, last->slot);
}

/* The heap has room for every timer there is, so that starting one never
 * fails (timer_start has no way to say so): it grows when a timer is made. */
static void *timer_new(void *data, int flags, molt_db_loop_cb cb, void *arg)
{
    driven *d = data;
    (void)flags; /* the caller decides when to stop turning the loop */
    if (d->ntimers == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        dtimer **h = realloc(d->heap, cap * sizeof *h);
        if (h == NULL)
            return NULL;
        d->heap = h;
        d->cap = cap;
    }
    dtimer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->cb = cb;
    t->arg = arg;
    t->slot = NOT_QUEUED;
    d->ntimers++;
    return t;
}

static void timer_start(void *data, void *timer, uint64_t ms)
{
    driven *d = data;
    dtimer *t = timer;
    heap_remove(d, t);
    t->due_ms = now_ms(d) + ms;
    t->seq = d->seq++;
    heap_put(d, d->n++, t);
    sift_up(d, t->slot);
}

static void timer_stop(void *data, void *timer)
{
    heap_remove(data, timer);
}

static void timer_free(void *data, void *timer)
{
    driven *d = data;
    heap_remove(d, timer);
    d->ntimers--;
    free(timer);
}

/* Runs the timers due now that were started before this call: one started
 * by a callback here (0 ms included) waits for the next turn. */
static void run_timers(driven *d)
{
    if (d->n == 0)
        return;
    uint64_t now = now_ms(d);
    uint64_t seq_end = d->seq;
    while (d->n > 0 && d->heap[0]->due_ms <= now && d->heap[0]->seq < seq_end) {
        dtimer *t = d->heap[0];
        heap_remove(d, t);
        d->ran++;
        t->cb(t->arg); /* may free t */
    }
}

/* ---- deferred calls ---------------------------------------------------- */

static void *defer_new(void *data, molt_db_loop_cb cb, void *arg)
{
    (void)data;
    ddefer *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->cb = cb;
    f->arg = arg;
    return f;
}

static void defer_start(void *data, void *defer)
{
    driven *d = data;
    ddefer *f = defer;
    if (f->due)
        return;
    f->due = 1;
    f->next = NULL;
    if (d->due_tail != NULL)
        d->due_tail->next = f;
    else
        d->due_head = f;
    d->due_tail = f;
}

static void defer_free(void *data, void *defer)
{
    (void)data;
    ddefer *f = defer;
    if (f->due)
        f->dead = 1; /* still on the due list: freed when reached */
    else
        free(f);
}

/* Runs the calls due now; those made due by them wait for the next turn. */
static void run_deferred(driven *d)
{
    ddefer *f = d->due_head;
    d->due_head = d->due_tail = NULL;
    while (f != NULL) {
        ddefer *next = f->next;
        f->due = 0;
        if (f->dead) {
            free(f);
        } else {
            d->ran++;
            f->cb(f->arg); /* may free f or make it due again */
        }
        f = next;
    }
}

/* ---- wake-ups: an eventfd each, watched for reading -------------------- */

typedef struct dwake {
    int fd;
    dio *io;
    molt_db_loop_cb cb;
    void *arg;
} dwake;

static void on_wake_readable(void *arg, int events)
{
    (void)events;
    dwake *k = arg;
    molt_db__wake_fd_drain(k->fd);
    k->cb(k->arg);
}

static int wake_new(void *data, molt_db_loop_cb cb, void *arg, void **out)
{
    dwake *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->cb = cb;
    k->arg = arg;
    k->fd = molt_db__wake_fd_new();
    if (k->fd < 0) {
        int rc = k->fd;
        free(k);
        return rc;
    }
    k->io = io_new(data, k->fd, on_wake_readable, k);
    int rc = k->io == NULL ? -ENOMEM : io_set(data, k->io, MOLT_DB_LOOP_READ);
    if (rc < 0) {
        if (k->io != NULL)
            io_free(data, k->io);
        close(k->fd);
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* Any thread: only the eventfd is touched. */
static void wake(void *data, void *handle)
{
    (void)data;
    molt_db__wake_fd_poke(((dwake *)handle)->fd);
}

static void wake_free(void *data, void *handle)
{
    dwake *k = handle;
    io_free(data, k->io); /* during a turn its event is skipped */
    close(k->fd);
    free(k);
}

/* ---- the loop ---------------------------------------------------------- */

static void driven_free_now(driven *d)
{
    /* Handles are the library's and are freed before the loop is; a due
     * deferred call freed while due is the one thing that can be left. */
    for (ddefer *f = d->due_head, *next; f != NULL; f = next) {
        next = f->next;
        if (f->dead)
            free(f);
    }
    close(d->epfd);
    free(d->heap);
    free(d);
}

/* The loop may go from inside a turn (its last connection closing there,
 * after the caller's molt_db_loop_free): then at the end of the turn. */
static void driven_free(void *data)
{
    driven *d = data;
    if (d->running)
        d->doomed = 1;
    else
        driven_free_now(d);
}

static const molt_db_loop_hooks driven_hooks = {
    io_new, io_set, io_free,
    timer_new, timer_start, timer_stop, timer_free,
    defer_new, defer_start, defer_free,
    now_ms, NULL, NULL, driven_free,
    wake_new, wake, wake_free,
};

int molt_db_loop_driven_new(molt_db_loop **out, molt_db_error *err)
{
    *out = NULL;
    driven *d = calloc(1, sizeof *d);
    if (d == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d->epfd < 0) {
        int e = errno;
        free(d);
        return molt_db_error_set(err, e == ENOMEM ? MOLT_DB_ENOMEM : MOLT_DB_EIO,
                                 "epoll_create1: %s", strerror(e));
    }
    int rc = molt_db_loop_new(&driven_hooks, d, out, err);
    if (rc != MOLT_DB_OK) {
        close(d->epfd);
        free(d);
    }
    return rc;
}

int molt_db_loop_driven_is(const molt_db_loop *loop)
{
    return loop != NULL && loop->h.io_new == io_new;
}

int molt_db_loop_driven_fd(const molt_db_loop *loop)
{
    return ((const driven *)loop->data)->epfd;
}

static int timeout_of(const driven *d)
{
    if (d->due_head != NULL)
        return 0;
    if (d->n == 0)
        return -1;
    uint64_t now = now_ms(NULL);
    uint64_t due = d->heap[0]->due_ms;
    if (due <= now)
        return 0;
    return due - now > INT_MAX ? INT_MAX : (int)(due - now);
}

int molt_db_loop_driven_timeout(const molt_db_loop *loop)
{
    return timeout_of(loop->data);
}

/* loop itself may be freed during the turn (see driven_free): only d is
 * used once callbacks ran. */
int molt_db_loop_driven_run(molt_db_loop *loop, int timeout_ms)
{
    driven *d = loop->data;
    d->running = 1;
    d->ran = 0;
    run_timers(d);
    run_deferred(d);
    /* No wait after work was done (the caller may be waiting for what it
     * did), nor when nothing could ever end it. */
    int wait = timeout_of(d);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    if (d->ran > 0 || (wait < 0 && d->nwatched == 0))
        wait = 0;
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(d->epfd, evs, MAX_EVENTS, wait);
    int rc = 0;
    if (n < 0) {
        rc = errno == EINTR ? 0 : -errno;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        dio *w = evs[i].data.ptr;
        if (w->dead)
            continue;
        int ev = 0;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            ev = MOLT_DB_LOOP_READ | MOLT_DB_LOOP_WRITE;
        if (evs[i].events & EPOLLIN)
            ev |= MOLT_DB_LOOP_READ;
        if (evs[i].events & EPOLLOUT)
            ev |= MOLT_DB_LOOP_WRITE;
        w->cb(w->arg, ev);
    }
    run_timers(d);
    run_deferred(d);
    d->running = 0;
    while (d->dead_io != NULL) {
        dio *w = d->dead_io;
        d->dead_io = w->next_dead;
        free(w);
    }
    if (d->doomed)
        driven_free_now(d);
    return rc;
}
