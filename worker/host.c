/* The host's life cycle and loop (host_core.h): created from molt_worker's
 * arguments, a worker on a loop of its own, run on the host's thread
 * (threaded mode) or by the caller's molt_db_host_poll (driven mode). */
#include "host_core.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "molt_db/loop_libuv.h"
#include "reap.h"
#include "request.h"
#include "tx.h"

/* most loop turns per molt_db_host_poll in driven mode (see there) */
#define DRIVEN_MAX_TURNS 16
/* most rounds of commands one prepare phase takes in threaded mode */
#define PREPARE_MAX_ROUNDS 4

int mw_host_wake_locked(molt_db_host *h)
{
    if (h->wake_due)
        return 0;
    h->wake_due = 1;
    /* threaded mode: a loop thread that is not polling takes the commands
     * in its next prepare phase (on_prepare) without being woken; driven
     * mode: only a molt_db_host_poll waiting on another thread is woken,
     * the next one sees wake_due */
    int wake = h->loop_polls || (h->mode == MOLT_DB_HOST_THREADED && h->closing);
    if (wake)
        atomic_fetch_add(&h->wakes_out, 1);
    return wake;
}

/* Makes an eventfd readable. */
static void poke(int fd)
{
    uint64_t one = 1;
    /* the counter cannot overflow: it is read before it reaches 2^64 - 1 */
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

/* After unlocking h->lock, exactly once for each 1 mw_host_wake_locked
 * returned: a waker that the loop thread could preempt while holding the
 * lock would block it on the lock at once. wake_fd stays open until the
 * host is freed, and the host is not freed while a wake is out
 * (wakes_out), so a wake racing molt_db_host_free, after the loop stopped
 * watching it, writes to an fd nobody reads. */
void mw_host_wake(molt_db_host *h)
{
    /* driven mode: wake_due is all it takes (molt_db_host_poll and
     * molt_db_host_timeout look at it), unless a molt_db_host_poll waits
     * on another thread (loop_polls, seen by mw_host_wake_locked): then
     * its wait ends */
    poke(h->wake_fd);
    atomic_fetch_sub(&h->wakes_out, 1);
}

int molt_db_host_wake(molt_db_host *h)
{
    pthread_mutex_lock(&h->lock);
    int closed = h->closing, wake = !closed && mw_host_wake_locked(h);
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    return closed ? MOLT_DB_ECLOSED : 0;
}

/* Commands wait for the loop (wake_due). */
static int commands_due(molt_db_host *h)
{
    pthread_mutex_lock(&h->lock);
    int due = h->wake_due;
    pthread_mutex_unlock(&h->lock);
    return due;
}

/* Every unfinished request of a stream submitted with token. */
static void cancel_token(molt_db_host *h, uint64_t token)
{
    for (mw_session *s = h->w.sessions; s; s = s->next) {
        if (!s->sink || s->dead)
            continue;
        mw_request *r = s->reqs;
        while (r) {
            mw_request *next = r->next;
            const molt_db_host_stream *st = r->sink_to;
            if (st->token == token)
                mw_request_stop(r, MW_CANCELLED, "cancelled by molt_db_host_cancel");
            r = next;
        }
    }
}

/* The loop thread takes the callers' commands: the streams' in the order
 * they were queued, then the cancels and session closes queued before the
 * stream queue was found empty (so a submit queued before a cancel or a
 * close has started when that runs). */
static void take_commands(molt_db_host *h)
{
    uint64_t *tokens;
    size_t ntokens;
    host_session *closes;
    int closing;
    for (int first = 1;; first = 0) {
        pthread_mutex_lock(&h->lock);
        if (first) {
            h->wake_due = 0; /* what is queued from now on wakes the loop again */
            h->loop_polls = 0;
        }
        molt_db_host_stream *st = h->cmd_head;
        unsigned cmds = 0;
        size_t taken = 0;
        if (st) {
            h->cmd_head = st->cmd_next;
            if (!h->cmd_head)
                h->cmd_tail = NULL;
            cmds = mw_host_stream_take_locked(st, &taken);
        } else {
            tokens = h->cancels;
            ntokens = h->ncancels;
            h->cancels = NULL;
            h->ncancels = h->cancels_cap = 0;
            closes = h->closes;
            h->closes = NULL;
            closing = h->closing;
        }
        pthread_mutex_unlock(&h->lock);
        if (!st)
            break;
        mw_host_stream_run(st, cmds, taken);
    }
    for (size_t i = 0; i < ntokens; i++)
        cancel_token(h, tokens[i]);
    free(tokens);
    while (closes) {
        host_session *next = closes->close_next;
        mw_host_session_close_now(closes);
        closes = next;
    }
    if (closing && !h->stopping) {
        /* as the worker's shutdown without grace: what runs is answered
         * Busy and cancelled, the connections close, the loop ends */
        h->stopping = 1;
        if (h->mode == MOLT_DB_HOST_THREADED) {
            /* free began: wakes from now on find no watcher (mw_host_wake) */
            uv_close((uv_handle_t *)&h->wake_poll, NULL);
            uv_close((uv_handle_t *)&h->flush, NULL);
            uv_close((uv_handle_t *)&h->flush_before, NULL);
            uv_close((uv_handle_t *)&h->more, NULL);
        } else {
            uv_close((uv_handle_t *)&h->wait_timer, NULL);
            uv_close((uv_handle_t *)&h->wait_prepare, NULL);
            uv_close((uv_handle_t *)&h->wait_check, NULL);
            if (h->wait_kick.data)
                uv_close((uv_handle_t *)&h->wait_kick, NULL);
        }
        mw_worker_shutdown(&h->w, 0);
    }
}

/* Threaded mode, after the loop thread took commands: what they started
 * goes out now rather than in the loop's next idle phase (a connection's
 * deferred write: the poll that follows then waits for the answer, where
 * a deferred call still due would make it return at once and cost a
 * turn), and what they ended is freed now rather than after the poll,
 * which on an idle host waits for the next command. */
static void send_taken(molt_db_host *h)
{
    molt_db_loop_libuv_flush(&h->loop);
    mw_reap_now(&h->w.reaper);
}

static void on_wake(uv_poll_t *p, int status, int events)
{
    (void)status; /* an eventfd has no error to report */
    (void)events;
    molt_db_host *h = p->data;
    uint64_t n;
    ssize_t got = read(h->wake_fd, &n, sizeof n); /* wakes from now on count */
    (void)got;
    take_commands(h);
    send_taken(h);
}

void mw_host_notify(molt_db_host *h)
{
    poke(h->notify_fd);
}

/* News from the loop thread: the fd is written once, after the loop's
 * I/O of this iteration (on_check), for all the news it brought. */
void mw_host_notify_later(molt_db_host *h)
{
    h->notify_due = 1;
}

static void flush_news(molt_db_host *h)
{
    if (h->notify_due) {
        h->notify_due = 0;
        mw_host_notify(h);
    }
}

/* After each turn's I/O: one write of the notify fd for all its news. The
 * loop no longer polls: commands queued from now on are taken by the next
 * on_prepare without a wake-up. */
static void on_check(uv_check_t *c)
{
    molt_db_host *h = c->data;
    /* only this thread writes loop_polls: a read of it needs no lock */
    if (h->loop_polls) {
        pthread_mutex_lock(&h->lock);
        h->loop_polls = 0;
        pthread_mutex_unlock(&h->lock);
    }
    flush_news(h);
}

/* The poll after a capped prepare phase does not wait (on_prepare). */
static void on_more(uv_idle_t *i)
{
    uv_idle_stop(i);
}

/* Just before each poll of I/O: the commands queued while the loop ran
 * (their callers did not wake it: mw_host_wake_locked), then loop_polls,
 * under the same lock as the last look at the queue, so that whatever is
 * queued after it wakes the loop; what the commands started is sent before
 * the poll (send_taken). Commands queued while they are taken are taken
 * too, for at most PREPARE_MAX_ROUNDS rounds: a flood from other threads
 * then waits for the next turn, whose poll does not wait, so the loop's
 * I/O is served between the rounds. Then the news of the turn's timers,
 * deferred calls and commands (a request answered at its deadline, failed
 * at once by a pool that backs off, or refused), which would otherwise
 * wait for the poll to end. */
static void on_prepare(uv_prepare_t *p)
{
    molt_db_host *h = p->data;
    int taken = 0;
    for (int rounds = 0;; rounds++) {
        pthread_mutex_lock(&h->lock);
        int due = h->wake_due;
        if (!due)
            h->loop_polls = 1;
        pthread_mutex_unlock(&h->lock);
        if (!due)
            break;
        if (rounds == PREPARE_MAX_ROUNDS) {
            uv_idle_start(&h->more, on_more);
            break;
        }
        take_commands(h);
        taken = 1;
        if (h->stopping)
            break;
    }
    if (taken)
        send_taken(h);
    flush_news(h);
}

static void *run_thread(void *arg)
{
    molt_db_host *h = arg;
    (void)mw_worker_run(&h->w);
#ifdef __GLIBC__
    /* This thread made and freed the requests' memory in its own malloc
     * arena, which glibc keeps, pages and all, for whichever thread comes
     * next: without the trim a host freed after a burst leaves the burst's
     * peak resident (10,000 requests in flight: ~50 MB). */
    malloc_trim(0);
#endif
    return NULL;
}

static void on_wait_kick(uv_poll_t *p, int status, int events);

static int refuse(molt_db_error *err, int code, const char *msg)
{
    return molt_db_error_set(err, code, "molt_db_host: %s", msg);
}

/* The worker's settings from argv, without a transport. */
static int configure(molt_db_host *h, int argc, const char *const argv[],
                     molt_db_error *err)
{
    char e[MW_ERR_SIZE];
    mw_config *c = &h->cfg;
    mw_config_init(c);
    c->embedded = 1;
    for (int i = 0; i < argc; i++)
        if (argv[i] && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "--version")))
            return refuse(err, MOLT_DB_ECONFIG, "--help and --version are molt_worker's");
    if (mw_config_parse_args(c, argc, (char **)argv, stderr, e) != 0)
        return refuse(err, MOLT_DB_ECONFIG, e);
    if (c->stdio || c->socket_path || c->metrics_listen)
        return refuse(err, MOLT_DB_ECONFIG, "stdio, socket and metrics_listen are "
                      "transports of molt_worker: a host takes its requests from "
                      "molt_db_host_submit");
    if (mw_config_validate(c, e) < 0)
        return refuse(err, MOLT_DB_ECONFIG, e);
    return 0;
}

static void host_destroy(molt_db_host *h)
{
    /* the worker is gone: what refers to a session is a stream not
     * released, or the caller's session not closed */
    molt_db_host_stream *st = h->all;
    while (st) {
        molt_db_host_stream *next = st->all_next;
        mw_host_stream_free(st);
        st = next;
    }
    host_session *hs = h->sessions;
    while (hs) {
        host_session *next = hs->next;
        free(hs);
        hs = next;
    }
    free(h->cancels);
    if (h->notify_fd >= 0)
        close(h->notify_fd);
    while (atomic_load(&h->wakes_out) > 0)
        uv_sleep(1); /* a caller between its unlock and its write */
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    pthread_mutex_destroy(&h->lock);
    mw_config_free(&h->cfg);
    free(h);
}

int molt_db_host_new(int argc, const char *const argv[], int mode,
                     molt_db_host **out, molt_db_error *err)
{
    if (!out || argc < 0 || (argc > 0 && !argv))
        return refuse(err, MOLT_DB_EINVAL, "bad arguments");
    *out = NULL;
    if (mode != MOLT_DB_HOST_THREADED && mode != MOLT_DB_HOST_DRIVEN)
        return refuse(err, MOLT_DB_EINVAL, "mode is MOLT_DB_HOST_THREADED or "
                      "MOLT_DB_HOST_DRIVEN");
    molt_db_host *h = calloc(1, sizeof *h);
    if (!h)
        return refuse(err, MOLT_DB_ENOMEM, "out of memory");
    h->mode = mode;
    h->notify_fd = h->wake_fd = -1;
    pthread_mutex_init(&h->lock, NULL);
    int rc = configure(h, argc, argv, err);
    if (rc < 0) {
        host_destroy(h);
        return rc;
    }
    mw_log_set_format(h->cfg.log_format);
    if ((mode == MOLT_DB_HOST_THREADED &&
         (h->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) ||
        (h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        host_destroy(h);
        return refuse(err, MOLT_DB_EIO, strerror(errno));
    }
    if (uv_loop_init(&h->loop) < 0) {
        host_destroy(h);
        return refuse(err, MOLT_DB_EIO, "cannot start an event loop");
    }
    char e[MW_ERR_SIZE];
    if (mw_worker_open(&h->w, &h->loop, &h->cfg, e) < 0) {
        (void)mw_worker_run(&h->w); /* closes what was opened, and the loop */
        host_destroy(h);
        return refuse(err, MOLT_DB_ECONFIG, e);
    }
    if (mode == MOLT_DB_HOST_THREADED) {
        if (uv_poll_init(&h->loop, &h->wake_poll, h->wake_fd) < 0) {
            h->stopping = 1;
            mw_worker_shutdown(&h->w, 0);
            (void)mw_worker_run(&h->w);
            host_destroy(h);
            return refuse(err, MOLT_DB_EIO, "cannot watch the host's wake-up fd");
        }
        h->wake_poll.data = h;
        uv_poll_start(&h->wake_poll, UV_READABLE, on_wake); /* cannot fail: a new fd */
        uv_check_init(&h->loop, &h->flush);
        uv_prepare_init(&h->loop, &h->flush_before);
        uv_idle_init(&h->loop, &h->more);
        h->flush.data = h->flush_before.data = h;
        uv_check_start(&h->flush, on_check);
        uv_prepare_start(&h->flush_before, on_prepare);
        if (pthread_create(&h->thread, NULL, run_thread, h) != 0) {
            h->closing = 1;
            take_commands(h);
            (void)mw_worker_run(&h->w);
            host_destroy(h);
            return refuse(err, MOLT_DB_ENOMEM, "cannot start the host's thread");
        }
        h->thread_started = 1;
    } else {
        uv_timer_init(&h->loop, &h->wait_timer);
        uv_prepare_init(&h->loop, &h->wait_prepare);
        uv_check_init(&h->loop, &h->wait_check);
        h->wait_prepare.data = h->wait_check.data = h;
        uv_unref((uv_handle_t *)&h->wait_timer);
        uv_unref((uv_handle_t *)&h->wait_prepare);
        uv_unref((uv_handle_t *)&h->wait_check);
        if (uv_poll_init(&h->loop, &h->wait_kick, h->wake_fd) < 0) {
            h->closing = 1; /* (wait_kick.data NULL: not a handle to close) */
            take_commands(h);
            (void)mw_worker_run(&h->w);
            host_destroy(h);
            return refuse(err, MOLT_DB_EIO, "cannot watch an eventfd");
        }
        h->wait_kick.data = h;
        uv_poll_start(&h->wait_kick, UV_READABLE, on_wait_kick);
        uv_unref((uv_handle_t *)&h->wait_kick);
    }
    *out = h;
    return 0;
}

int molt_db_host_cancel(molt_db_host *h, uint64_t token)
{
    if (!h || token == 0)
        return MOLT_DB_EINVAL;
    pthread_mutex_lock(&h->lock);
    int rc = 0, wake = 0;
    if (h->closing) {
        rc = MOLT_DB_ECLOSED;
    } else if (h->ncancels == h->cancels_cap) {
        size_t cap = h->cancels_cap ? h->cancels_cap * 2 : 8;
        uint64_t *t = realloc(h->cancels, cap * sizeof *t);
        if (t) {
            h->cancels = t;
            h->cancels_cap = cap;
        } else {
            rc = MOLT_DB_ENOMEM;
        }
    }
    if (rc == 0) {
        h->cancels[h->ncancels++] = token;
        wake = mw_host_wake_locked(h);
    }
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    return rc;
}

size_t molt_db_host_max_request_bytes(molt_db_host *h)
{
    return (size_t)h->cfg.max_request_bytes;
}

int molt_db_host_fd(molt_db_host *h)
{
    return h->mode == MOLT_DB_HOST_THREADED ? h->notify_fd : uv_backend_fd(&h->loop);
}

/* Driven mode: requests or sessions wait to be freed (reap.h). Their
 * prepare and check handles do not shorten a poll, so a caller that waits
 * on the fd would see them freed (molt_db_host_busy) only after its next
 * I/O: a turn more frees them now. */
static int reap_due(const molt_db_host *h)
{
    return h->w.reaper.head != NULL;
}

int molt_db_host_timeout(molt_db_host *h)
{
    /* a loop with nothing active (an idle SQLite-only host) waits for the
     * next submit; libuv's own timeout says 0 for it */
    if (h->mode == MOLT_DB_HOST_THREADED)
        return -1;
    if (commands_due(h))
        return 0;
    if (!uv_loop_alive(&h->loop))
        return -1;
    return reap_due(h) ? 0 : uv_backend_timeout(&h->loop);
}

/* The connections busy with work of their own, over every backend. */
static size_t backends_busy(const mw_worker *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nbackends; i++) {
        mw_backend *b = w->backends[i];
        if (b && b->ops->busy)
            n += b->ops->busy(b);
    }
    return n;
}

long molt_db_host_pending(molt_db_host *h)
{
    if (h->mode == MOLT_DB_HOST_THREADED)
        return -1;
    /* the caller's thread is the loop thread: the worker's counts are its own */
    return (long)(h->w.inflight + h->w.live_txs + backends_busy(&h->w));
}

long molt_db_host_busy(molt_db_host *h)
{
    if (h->mode == MOLT_DB_HOST_THREADED)
        return -1;
    /* a request answered but not yet freed still has database work (a
     * cancel's drain) or its close to finish: live, not inflight */
    size_t txs = h->w.live_txs - mw_tx_idle(&h->w);
    return (long)(h->w.live_requests + txs + backends_busy(&h->w));
}

static void wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR)
        ;
}

/* The driven wait's bound: its firing ends the wait, nothing more. */
static void on_wait_timer(uv_timer_t *t)
{
    (void)t;
}

/* Just before the driven wait's poll of I/O: a stream that has news (a
 * request answered while the commands were taken, or by a timer of this
 * turn) is the caller's at once, and a command queued by another thread
 * since the poll took them is the next poll's, so the poll must not wait
 * (libuv's poll does not wait once the loop is stopped). Else a command
 * queued from now on ends the wait (mw_host_wake). */
static void on_wait_prepare(uv_prepare_t *p)
{
    molt_db_host *h = p->data;
    pthread_mutex_lock(&h->lock);
    int now = h->news_head != NULL || h->wake_due;
    /* from now on a command from another thread pokes wake_fd */
    h->loop_polls = !now;
    pthread_mutex_unlock(&h->lock);
    if (now)
        uv_stop(&h->loop);
}

/* The driven wait's turn ends after its I/O. */
static void on_wait_check(uv_check_t *c)
{
    molt_db_host *h = c->data;
    pthread_mutex_lock(&h->lock);
    h->loop_polls = 0;
    pthread_mutex_unlock(&h->lock);
    uv_stop(c->loop);
}

/* A command from another thread ended the wait: the next
 * molt_db_host_poll takes it. */
static void on_wait_kick(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    uint64_t n;
    ssize_t got = read(((molt_db_host *)p->data)->wake_fd, &n, sizeof n);
    (void)got;
}

/* Driven mode: one turn whose poll of I/O waits up to timeout_ms (-1: no
 * bound) for I/O or a timer. The wait is libuv's own epoll_wait, which
 * also collects the events, rather than a poll() of its fd followed by a
 * second epoll_wait. The turn runs in UV_RUN_DEFAULT, stopped by the
 * check handle after its I/O: UV_RUN_ONCE would not wait at all when a
 * deferred call (an idle handle: the statements of the request just
 * taken, written in the turn's idle phase) is due as the turn starts,
 * where UV_RUN_DEFAULT reckons the wait after the idle phase. Timers due
 * when the wait ends run in the next turn (molt_db_host_poll's own). The
 * handles stay unreferenced between waits (they keep no loop alive);
 * during a wait the timer (bounded) or wait_kick (unbounded) is
 * referenced, so that a loop with nothing else active (an idle
 * SQLite-only host) still waits, until the timer, I/O or another thread's
 * command. */
static void driven_wait_turn(molt_db_host *h, int timeout_ms)
{
    /* unbounded: the wake-up's handle keeps the loop waiting instead */
    uv_handle_t *keeps = timeout_ms > 0 ? (uv_handle_t *)&h->wait_timer
                         : h->wait_kick.data ? (uv_handle_t *)&h->wait_kick : NULL;
    if (timeout_ms > 0)
        uv_timer_start(&h->wait_timer, on_wait_timer, (uint64_t)timeout_ms, 0);
    if (keeps)
        uv_ref(keeps);
    uv_prepare_start(&h->wait_prepare, on_wait_prepare);
    uv_check_start(&h->wait_check, on_wait_check);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_check_stop(&h->wait_check);
    uv_prepare_stop(&h->wait_prepare);
    uv_timer_stop(&h->wait_timer);
    if (keeps)
        uv_unref(keeps);
}

/* Under h->lock: molt_db_host_arm. */
static int arm_locked(molt_db_host *h)
{
    int news = h->news_head != NULL;
    if (!news && h->mode == MOLT_DB_HOST_THREADED)
        h->armed = 1;
    return news;
}

int molt_db_host_arm(molt_db_host *h)
{
    pthread_mutex_lock(&h->lock);
    h->arming = h->mode == MOLT_DB_HOST_THREADED;
    int news = arm_locked(h);
    pthread_mutex_unlock(&h->lock);
    return news;
}

/* Threaded mode: molt_db_host_poll. */
static int wait_news(molt_db_host *h, int timeout_ms)
{
    if (timeout_ms != 0) {
        pthread_mutex_lock(&h->lock);
        int news = h->arming && arm_locked(h);
        pthread_mutex_unlock(&h->lock);
        if (!news)
            wait_readable(h->notify_fd, timeout_ms);
    }
    /* The fd is readable only while notified is set (its one write may
     * still be on its way): no read otherwise, as for a caller whose arm
     * found news and did not wait. Read first, then clear: news in between
     * writes the fd again. A read that finds the write not yet made leaves
     * notified set, so the poll after that write clears the fd. */
    int cleared = 0;
    if (atomic_load(&h->notified)) {
        uint64_t n;
        cleared = read(h->notify_fd, &n, sizeof n) == (ssize_t)sizeof n;
    }
    pthread_mutex_lock(&h->lock);
    if (cleared)
        h->notified = 0;
    int closing = h->closing;
    pthread_mutex_unlock(&h->lock);
    return closing ? MOLT_DB_ECLOSED : 0;
}

int molt_db_host_poll(molt_db_host *h, int timeout_ms)
{
    if (h->mode == MOLT_DB_HOST_THREADED)
        return wait_news(h, timeout_ms);
    if (h->stopping)
        return MOLT_DB_ECLOSED;
    /* The callers' commands first, here rather than from a handle of the
     * loop: what they start (a request's statements, deferred by the
     * connection to the loop's next idle phase) is then written below,
     * before any poll of I/O (by the flush, or in the waiting turn's idle
     * phase). */
    int took = commands_due(h);
    if (took) {
        uv_update_time(&h->loop); /* the requests' timers count from now */
        take_commands(h);
    }
    /* one turn (waiting in it, if asked), then more while work is ready
     * without waiting (a flush deferred to the next turn, a watcher libuv
     * has yet to hand to epoll): what the caller then polls for is exactly
     * what is left. The cap keeps one call short under a flood;
     * molt_db_host_timeout is then 0. Without a wait, the statements of
     * the commands just taken go out here rather than in a turn: its
     * epoll_wait(0) would come too soon for their answers, and the caller
     * waits on the fd next; a turn follows only when something else is
     * due now. */
    if (timeout_ms != 0) {
        driven_wait_turn(h, timeout_ms);
    } else if (took) {
        molt_db_loop_libuv_flush(&h->loop);
        if (uv_backend_timeout(&h->loop) != 0 && !reap_due(h))
            return 0;
        uv_run(&h->loop, UV_RUN_NOWAIT);
    } else {
        uv_run(&h->loop, UV_RUN_NOWAIT);
    }
    int turns = 1;
    while (turns++ < DRIVEN_MAX_TURNS && (uv_backend_timeout(&h->loop) == 0 || reap_due(h)))
        uv_run(&h->loop, UV_RUN_NOWAIT);
    return 0;
}

void molt_db_host_free(molt_db_host *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->closing = 1;
    int wake = mw_host_wake_locked(h);
    pthread_mutex_unlock(&h->lock);
    if (wake)
        mw_host_wake(h);
    if (h->thread_started) {
        pthread_join(h->thread, NULL);
    } else {
        take_commands(h);
        (void)mw_worker_run(&h->w);
    }
    host_destroy(h);
}
