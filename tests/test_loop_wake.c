/*
 * Wakers (molt_db_loop_wake in molt_db/loop.h) on both adapters, libuv and
 * driven, each case run on each: 8 threads waking 100,000 times each while
 * the loop runs (no wake lost, the callback never runs twice at once),
 * coalescing, a wake while the callback runs, a loop blocked with a long
 * timeout woken from another thread (latency), and the free orders. No
 * server. Also built with ThreadSanitizer (stage ctest-tsan).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "loop.h" /* the hooks, for a table without a wake-up */
#include "molt_db/loop_driven.h"
#include "molt_db/loop_libuv.h"
#include "test.h"

#define THREADS 8
#define WAKES_PER_THREAD 100000
#define STRESS_SECONDS 120.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- one loop of either adapter, turned by this thread ------------------ */

typedef struct adapter {
    int driven;
    uv_loop_t uv;            /* libuv only */
    uv_timer_t tick;         /* libuv only: bounds a turn's wait */
    molt_db_loop *loop;
} adapter;

static void adapter_open(adapter *a, int driven)
{
    memset(a, 0, sizeof *a);
    a->driven = driven;
    if (driven) {
        ASSERT_OK(molt_db_loop_driven_new(&a->loop, NULL), NULL);
        return;
    }
    ASSERT_EQ_INT(uv_loop_init(&a->uv), 0);
    ASSERT_EQ_INT(uv_timer_init(&a->uv, &a->tick), 0);
    ASSERT_OK(molt_db_loop_libuv_new(&a->uv, &a->loop, NULL), NULL);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* One turn that waits at most ms (-1: until something happens). */
static void adapter_turn(adapter *a, int ms)
{
    if (a->driven) {
        ASSERT_EQ_INT(molt_db_loop_driven_run(a->loop, ms), 0);
        return;
    }
    if (ms >= 0)
        uv_timer_start(&a->tick, on_tick, (uint64_t)ms, 0);
    uv_run(&a->uv, UV_RUN_ONCE);
    uv_timer_stop(&a->tick);
}

/* The loop goes; under libuv every handle must be closed by then
 * (uv_loop_close fails with EBUSY otherwise: a waker's handle left open). */
static void adapter_close(adapter *a)
{
    molt_db_loop_free(a->loop);
    if (a->driven)
        return;
    uv_close((uv_handle_t *)&a->tick, NULL);
    uv_run(&a->uv, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(uv_loop_close(&a->uv), 0);
}

/* ---- 8 threads waking while the loop runs ------------------------------ */

typedef struct stress {
    molt_db_loop_waker *w;
    atomic_long posted;      /* work queued: incremented before each wake */
    long seen;               /* posted as the last run found it */
    long runs;
    atomic_int inside;       /* runs in progress */
    int overlapped;
} stress;

static void on_stress_wake(void *arg)
{
    stress *s = arg;
    if (atomic_fetch_add(&s->inside, 1) != 0)
        s->overlapped = 1;
    s->seen = atomic_load(&s->posted);
    s->runs++;
    atomic_fetch_sub(&s->inside, 1);
}

static void *stress_thread(void *arg)
{
    stress *s = arg;
    for (int i = 0; i < WAKES_PER_THREAD; i++) {
        atomic_fetch_add(&s->posted, 1);
        molt_db_loop_wake(s->w);
    }
    return NULL;
}

/* A lost wake-up leaves seen below the total for good: a run that starts
 * after the last wake must come, and it finds every post. */
static void stress_on(int driven)
{
    adapter a;
    adapter_open(&a, driven);
    stress s;
    memset(&s, 0, sizeof s);
    atomic_init(&s.posted, 0);
    atomic_init(&s.inside, 0);
    ASSERT_OK(molt_db_loop_waker_new(a.loop, on_stress_wake, &s, &s.w, NULL), NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, stress_thread, &s), 0);
    const long total = (long)THREADS * WAKES_PER_THREAD;
    double end = now_s() + STRESS_SECONDS;
    while (s.seen < total && now_s() < end)
        adapter_turn(&a, 100);
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ_INT(pthread_join(t[i], NULL), 0);
    ASSERT_EQ_INT(s.seen, total);
    ASSERT_EQ_INT(s.overlapped, 0);
    ASSERT(s.runs >= 1 && s.runs <= total);
    fprintf(stderr, "%s: %ld wakes from %d threads, %ld runs of the callback\n",
            driven ? "driven" : "libuv", total, THREADS, s.runs);
    molt_db_loop_waker_free(s.w);
    adapter_close(&a);
}

TEST(stress_8_threads_libuv) { stress_on(0); }
TEST(stress_8_threads_driven) { stress_on(1); }

/* ---- coalescing, and a wake while the callback runs -------------------- */

typedef struct probe {
    molt_db_loop_waker *w;
    int runs;
    int from_thread_on;      /* the run in which a thread wakes it */
    int from_itself_on;      /* the run in which the callback wakes it */
    int free_on;             /* the run in which the callback frees it */
} probe;

static void *wake_thread(void *arg)
{
    molt_db_loop_wake(arg);
    return NULL;
}

static void on_probe_wake(void *arg)
{
    probe *p = arg;
    p->runs++;
    if (p->runs == p->from_thread_on) {
        /* another thread wakes it while this run is under way */
        pthread_t t;
        ASSERT_EQ_INT(pthread_create(&t, NULL, wake_thread, p->w), 0);
        ASSERT_EQ_INT(pthread_join(t, NULL), 0);
    }
    if (p->runs == p->from_itself_on)
        molt_db_loop_wake(p->w);
    if (p->runs == p->free_on) {
        molt_db_loop_wake(p->w); /* woken, then freed: no run follows */
        molt_db_loop_waker_free(p->w);
        p->w = NULL;
    }
}

/* Turns until p->runs reaches want (at most 5 s), then a few more short
 * turns in which it must stay there. */
static void turn_until_runs(adapter *a, probe *p, int want)
{
    double end = now_s() + 5;
    while (p->runs < want && now_s() < end)
        adapter_turn(a, 50);
    for (int i = 0; i < 3; i++)
        adapter_turn(a, 10);
    ASSERT_EQ_INT(p->runs, want);
}

static void coalesce_on(int driven)
{
    adapter a;
    adapter_open(&a, driven);
    probe p = {0};
    p.from_thread_on = 2;
    p.from_itself_on = 3;
    p.free_on = 4;
    ASSERT_OK(molt_db_loop_waker_new(a.loop, on_probe_wake, &p, &p.w, NULL), NULL);

    /* not woken: nothing runs, and a driven loop has no work to report */
    for (int i = 0; i < 3; i++)
        adapter_turn(&a, 10);
    ASSERT_EQ_INT(p.runs, 0);
    if (driven)
        ASSERT_EQ_INT(molt_db_loop_driven_timeout(a.loop), -1);

    /* 1,000 wakes before the loop turns: one run */
    for (int i = 0; i < 1000; i++)
        molt_db_loop_wake(p.w);
    turn_until_runs(&a, &p, 1);

    /* run 2: a thread wakes it meanwhile, so run 3 follows; in run 3 the
     * callback wakes it itself, so run 4 follows; run 4 frees it */
    molt_db_loop_wake(p.w);
    turn_until_runs(&a, &p, 4);
    ASSERT(p.w == NULL);
    adapter_close(&a);
}

TEST(coalesce_and_wake_during_run_libuv) { coalesce_on(0); }
TEST(coalesce_and_wake_during_run_driven) { coalesce_on(1); }

/* ---- a loop blocked with a long timeout, woken from another thread ----- */

typedef struct late {
    molt_db_loop_waker *w;
    double woken_at;
    int runs;
} late;

static void *late_wake_thread(void *arg)
{
    late *l = arg;
    sleep_ms(50);
    l->woken_at = now_s();
    molt_db_loop_wake(l->w);
    return NULL;
}

static void on_late_wake(void *arg)
{
    ((late *)arg)->runs++;
}

/* how blocks: 0 in the adapter's own wait (driven: run with 10 s; libuv:
 * uv_run UV_RUN_ONCE, no timer), 1 in the caller's poll() on the driven
 * loop's fd with 10 s. Returns the latency from the wake to the run. */
static double latency_on(int driven, int how)
{
    adapter a;
    adapter_open(&a, driven);
    late l = {0};
    ASSERT_OK(molt_db_loop_waker_new(a.loop, on_late_wake, &l, &l.w, NULL), NULL);
    pthread_t t;
    double t0 = now_s();
    ASSERT_EQ_INT(pthread_create(&t, NULL, late_wake_thread, &l), 0);
    if (how == 1) {
        struct pollfd pf = {molt_db_loop_driven_fd(a.loop), POLLIN, 0};
        ASSERT_EQ_INT(poll(&pf, 1, 10000), 1);
        ASSERT_EQ_INT(l.runs, 0); /* runs in the turn, not before */
        adapter_turn(&a, 0);
    } else {
        adapter_turn(&a, driven ? 10000 : -1);
    }
    double back = now_s();
    ASSERT_EQ_INT(pthread_join(t, NULL), 0);
    ASSERT_EQ_INT(l.runs, 1);
    ASSERT(back - t0 >= 0.045); /* it did block until the wake */
    double latency = back - l.woken_at;
    fprintf(stderr, "%s, blocked in %s: woken after %.3f ms\n",
            driven ? "driven" : "libuv",
            how ? "poll() on the fd" : "the loop's wait", latency * 1e3);
    ASSERT(latency < 0.1);
    molt_db_loop_waker_free(l.w);
    adapter_close(&a);
    return latency;
}

TEST(wake_interrupts_a_blocked_loop)
{
    latency_on(0, 0);
    latency_on(1, 0);
    latency_on(1, 1);
}

/* ---- free orders ------------------------------------------------------- */

static void free_orders_on(int driven)
{
    /* woken, then freed before the loop turned: the callback never runs */
    adapter a;
    adapter_open(&a, driven);
    probe p = {0};
    ASSERT_OK(molt_db_loop_waker_new(a.loop, on_probe_wake, &p, &p.w, NULL), NULL);
    molt_db_loop_wake(p.w);
    molt_db_loop_waker_free(p.w);
    for (int i = 0; i < 3; i++)
        adapter_turn(&a, 10);
    ASSERT_EQ_INT(p.runs, 0);
    adapter_close(&a);

    /* the loop freed first: it stays until its waker is gone, which still
     * wakes it (ASan: nothing used after it was freed, nothing leaked) */
    adapter_open(&a, driven);
    memset(&p, 0, sizeof p);
    ASSERT_OK(molt_db_loop_waker_new(a.loop, on_probe_wake, &p, &p.w, NULL), NULL);
    molt_db_loop *loop = a.loop;
    molt_db_loop_free(loop);
    molt_db_loop_wake(p.w);
    double end = now_s() + 5;
    while (p.runs < 1 && now_s() < end) {
        if (driven)
            ASSERT_EQ_INT(molt_db_loop_driven_run(loop, 50), 0);
        else
            adapter_turn(&a, 50);
    }
    ASSERT_EQ_INT(p.runs, 1);
    molt_db_loop_waker_free(p.w); /* the loop goes now */
    if (!driven) {
        uv_close((uv_handle_t *)&a.tick, NULL);
        uv_run(&a.uv, UV_RUN_NOWAIT);
        ASSERT_EQ_INT(uv_loop_close(&a.uv), 0);
    }
}

TEST(free_orders_libuv) { free_orders_on(0); }
TEST(free_orders_driven) { free_orders_on(1); }

/* A hook table without a wake-up has no wakers; half of one is refused. */
TEST(hooks_without_a_wake_up)
{
    molt_db_loop *driven = NULL;
    ASSERT_OK(molt_db_loop_driven_new(&driven, NULL), NULL);
    molt_db_loop_hooks h = driven->h;
    h.free = NULL; /* the driven loop's data stays the driven loop's */
    h.wake_new = NULL;
    molt_db_loop *loop = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_EQ_INT(molt_db_loop_new(&h, driven->data, &loop, &err), MOLT_DB_EINVAL);
    ASSERT_CONTAINS(err.message, "all set or all NULL");
    h.wake = NULL;
    h.wake_free = NULL;
    ASSERT_OK(molt_db_loop_new(&h, driven->data, &loop, NULL), NULL);
    molt_db_loop_waker *w = (molt_db_loop_waker *)1;
    ASSERT_EQ_INT(molt_db_loop_waker_new(loop, on_late_wake, NULL, &w, &err),
                  MOLT_DB_EINVAL);
    ASSERT(w == NULL);
    ASSERT_CONTAINS(err.message, "no wake-up");
    molt_db_error_clear(&err);
    molt_db_loop_free(loop);
    molt_db_loop_free(driven);
}

TEST_MAIN(TEST_ENTRY(stress_8_threads_libuv),
          TEST_ENTRY(stress_8_threads_driven),
          TEST_ENTRY(coalesce_and_wake_during_run_libuv),
          TEST_ENTRY(coalesce_and_wake_during_run_driven),
          TEST_ENTRY(wake_interrupts_a_blocked_loop),
          TEST_ENTRY(free_orders_libuv),
          TEST_ENTRY(free_orders_driven),
          TEST_ENTRY(hooks_without_a_wake_up))
