/*
 * The host's threaded mode under load, through the ABI only (also built
 * with ThreadSanitizer: make tsan, stage ctest-tsan):
 * - 8 threads submit, read, cancel by token and release streams while
 *   their requests complete on the host's thread;
 * - 8 threads open sessions, run requests and transactions in them and
 *   close them while those run;
 * - one caller submitting right after each answer, as the host's thread
 *   goes to sleep: no wake-up is lost; one arming the host's fd as its
 *   answer comes: none is lost either;
 * - a thread flooding the host with cancels: requests are still answered;
 * - 10,000 requests in flight on one host at once, every response matched
 *   to its request through molt_db_host_ready's udata, RSS bounded.
 * A real SQLite file is the database.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host_test.h"

#define THREADS 8
#define PER_THREAD 300
#define MANY 10000

typedef struct fixture {
    char dir[64];
    char path[128];
    molt_db_host *h;
} fixture;

static void open_host(fixture *fx, int mode)
{
    snprintf(fx->dir, sizeof fx->dir, "/tmp/molt-hostt-XXXXXX");
    ASSERT(mkdtemp(fx->dir) != NULL);
    snprintf(fx->path, sizeof fx->path, "%s/t.db", fx->dir);
    char db[200];
    snprintf(db, sizeof db, "default=sqlite://%s", fx->path);
    const char *argv[] = {"--db", db, "--allow-write", "default", "--max-inflight", "20000",
                          "--pool", "default:sqlite_conns=4"};
    molt_db_error err;
    molt_db_error_init(&err);
    if (molt_db_host_new(8, argv, mode, &fx->h, &err) != 0)
        FAIL_AT("host_new: %s", err.message);
    env e;
    env_db(&e, 1, "db_exec", "create table t(x integer)", 0, 0, 0);
    ASSERT_EQ_STR(host_call(fx->h, &e, 10000).status, "Ok");
    env_free(&e);
    env_db(&e, 2, "db_exec",
           "insert into t with recursive c(x) as (select 1 union all select x + 1 from c "
           "where x < 200) select x from c", 0, 0, 0);
    ASSERT_EQ_STR(host_call(fx->h, &e, 10000).status, "Ok");
    env_free(&e);
}

static void close_host(fixture *fx)
{
    molt_db_host_free(fx->h);
    unlink(fx->path);
    rmdir(fx->dir);
}

/* Busy-waits ns nanoseconds (a sleep would be far longer). */
static void spin_ns(long ns)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < ns);
}

typedef struct worker_arg {
    molt_db_host *h;
    int t;
    int ok, cancelled, released;
} worker_arg;

/* The final frame of s, whose request_id must be id (the host's thread
 * runs the request). */
static frame_info final_of(molt_db_host_stream *s, uint64_t id)
{
    frame_info last = host_final(NULL, s, 20000, NULL);
    ASSERT_EQ_UINT(last.request_id, id);
    return last;
}

/* Runs fn on THREADS threads against h; *ok and *other add up their
 * counts. */
static void run_threads(molt_db_host *h, void *(*fn)(void *), int *ok, int *other)
{
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.h = h, .t = t + 1};
        ASSERT_EQ_INT(pthread_create(&th[t], NULL, fn, &args[t]), 0);
    }
    *ok = *other = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        *ok += args[t].ok;
        *other += args[t].cancelled;
    }
}

/* One thread: submits in waves of 10; of each wave one is released at
 * once, one is streamed, and the wave's token is cancelled while the rest
 * completes. Every final frame names its request. */
static void *submitter(void *p)
{
    worker_arg *a = p;
    unsigned seed = (unsigned)a->t * 7919u + 1;
    for (int wave = 0; wave < PER_THREAD / 10; wave++) {
        molt_db_host_stream *s[10];
        uint64_t ids[10];
        uint64_t token = ((uint64_t)a->t << 32) | ((uint64_t)wave + 1);
        for (int i = 0; i < 10; i++) {
            ids[i] = (uint64_t)a->t * 1000000 + (uint64_t)wave * 10 + (uint64_t)i + 100;
            env e;
            if (i == 0)
                env_db(&e, ids[i], "ping", NULL, 0, 0, 0);
            else
                env_db(&e, ids[i], "db_query", "select x from t", i == 1, 50, 0);
            ASSERT_EQ_INT(molt_db_host_submit(a->h, (const uint8_t *)e.b.data, e.b.size,
                                              token, NULL, &s[i]), 0);
            env_free(&e);
        }
        molt_db_host_release(s[9]);
        a->released++;
        if (rand_r(&seed) % 2)
            ASSERT_EQ_INT(molt_db_host_cancel(a->h, token), 0);
        for (int i = 0; i < 9; i++) {
            frame_info last = final_of(s[i], ids[i]);
            if (!strcmp(last.status, "Ok"))
                a->ok++;
            else if (!strcmp(last.status, "Cancelled"))
                a->cancelled++;
            else
                FAIL_AT("request %llu: %s %s", (unsigned long long)ids[i], last.status,
                        last.error);
            molt_db_host_release(s[i]);
        }
    }
    return NULL;
}

TEST(eight_threads_submit_cancel_and_release)
{
    fixture fx;
    open_host(&fx, MOLT_DB_HOST_THREADED);
    int ok, cancelled;
    run_threads(fx.h, submitter, &ok, &cancelled);
    ASSERT_EQ_INT(ok + cancelled, THREADS * PER_THREAD / 10 * 9);
    ASSERT(ok > 0);
    /* the host still answers after all that */
    env e;
    env_db(&e, 5, "db_query", "select count(*) from t", 0, 0, 0);
    ASSERT_EQ_STR(host_call(fx.h, &e, 10000).status, "Ok");
    env_free(&e);
    close_host(&fx);
}

/* One thread: sessions of 6 requests each (a transaction begun among
 * them), one released at once, the token cancelled or the session closed
 * while they run, at random. Each final frame names its request and is Ok,
 * Cancelled or Busy (a transaction beyond the alias's share). */
static void *session_user(void *p)
{
    worker_arg *a = p;
    unsigned seed = (unsigned)a->t * 104729u + 3;
    for (int round = 0; round < 20; round++) {
        uint64_t sid;
        ASSERT_EQ_INT(molt_db_host_session_open(a->h, &sid), 0);
        uint64_t token = ((uint64_t)a->t << 40) | ((uint64_t)round + 1);
        molt_db_host_stream *s[6];
        for (int i = 0; i < 6; i++) {
            env e;
            if (i == 2)
                env_tx(&e, (uint64_t)i + 1, "tx_begin", NULL, 0);
            else
                env_db(&e, (uint64_t)i + 1, "db_query", "select x from t", i == 1, 50, 0);
            ASSERT_EQ_INT(molt_db_host_submit_in(a->h, sid, (const uint8_t *)e.b.data,
                                                 e.b.size, token, NULL, &s[i]), 0);
            env_free(&e);
        }
        molt_db_host_release(s[5]);
        a->released++;
        unsigned r = rand_r(&seed) % 3;
        if (r == 0)
            ASSERT_EQ_INT(molt_db_host_cancel(a->h, token), 0);
        else if (r == 1)
            ASSERT_EQ_INT(molt_db_host_session_close(a->h, sid), 0);
        for (int i = 0; i < 5; i++) {
            frame_info last = final_of(s[i], (uint64_t)i + 1);
            if (!strcmp(last.status, "Ok"))
                a->ok++;
            else if (!strcmp(last.status, "Cancelled") || !strcmp(last.status, "Busy"))
                a->cancelled++;
            else
                FAIL_AT("session request %d: %s %s", i + 1, last.status, last.error);
            molt_db_host_release(s[i]);
        }
        if (r != 1)
            ASSERT_EQ_INT(molt_db_host_session_close(a->h, sid), 0);
    }
    return NULL;
}

TEST(eight_threads_open_use_and_close_sessions)
{
    fixture fx;
    open_host(&fx, MOLT_DB_HOST_THREADED);
    int ok, other;
    run_threads(fx.h, session_user, &ok, &other);
    ASSERT_EQ_INT(ok + other, THREADS * 20 * 5);
    ASSERT(ok > 0);
    /* a session left open with requests in flight is freed with the host */
    uint64_t sid;
    ASSERT_EQ_INT(molt_db_host_session_open(fx.h, &sid), 0);
    env e;
    env_db(&e, 1, "db_query", "select x from t", 1, 10, 0);
    molt_db_host_stream *held;
    ASSERT_EQ_INT(molt_db_host_submit_in(fx.h, sid, (const uint8_t *)e.b.data, e.b.size, 0,
                                         NULL, &held), 0);
    env_free(&e);
    close_host(&fx);
}

/* A caller's submit skips the wake-up while the host's thread is not
 * polling (it takes the commands before it polls again): submitting right
 * after each answer, after a pause of 0 to ~40 us that sweeps the moment
 * the host's thread goes to sleep, every request must still run. A lost
 * wake-up leaves one waiting for good (the final frame's deadline). */
TEST(submits_racing_the_loop_going_to_sleep_run)
{
    fixture fx;
    open_host(&fx, MOLT_DB_HOST_THREADED);
    unsigned seed = 12345;
    for (uint64_t i = 0; i < 2000; i++) {
        spin_ns((long)(rand_r(&seed) % 40000));
        env e;
        env_db(&e, 100 + i, "ping", NULL, 0, 0, 0);
        molt_db_host_stream *s = NULL;
        ASSERT_EQ_INT(molt_db_host_submit(fx.h, (const uint8_t *)e.b.data, e.b.size, 0,
                                          NULL, &s), 0);
        env_free(&e);
        frame_info last = host_final(fx.h, s, 10000, NULL);
        ASSERT_EQ_UINT(last.request_id, 100 + i);
        ASSERT_EQ_STR(last.status, "Ok");
        molt_db_host_release(s);
    }
    close_host(&fx);
}

/* A host whose caller arms (molt_db_host_arm) writes its fd only for an
 * armed wait: arming right after each submit, after a pause of 0 to ~40
 * us that sweeps the moment the answer comes, the caller either sees news
 * already there (arm returns 1) or is woken by the fd. A wake-up lost
 * between the arm and the poll leaves the poll to time out. */
TEST(armed_waits_racing_answers_are_woken)
{
    fixture fx;
    open_host(&fx, MOLT_DB_HOST_THREADED);
    struct pollfd p = {.fd = molt_db_host_fd(fx.h), .events = POLLIN};
    unsigned seed = 54321;
    int waited = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        env e;
        env_db(&e, 100 + i, "ping", NULL, 0, 0, 0);
        molt_db_host_stream *s = NULL;
        ASSERT_EQ_INT(molt_db_host_submit(fx.h, (const uint8_t *)e.b.data, e.b.size, 0,
                                          &fx, &s), 0);
        env_free(&e);
        spin_ns((long)(rand_r(&seed) % 40000));
        if (molt_db_host_arm(fx.h) == 0) {
            ASSERT_EQ_INT(poll(&p, 1, 10000), 1);
            waited++;
        }
        ASSERT_EQ_INT(molt_db_host_poll(fx.h, 0), 0);
        void *ud[2];
        ASSERT_EQ_UINT(molt_db_host_ready(fx.h, ud, 2), 1);
        ASSERT(ud[0] == &fx);
        frame_info last = host_final(NULL, s, 10000, NULL);
        ASSERT_EQ_UINT(last.request_id, 100 + i);
        molt_db_host_release(s);
    }
    ASSERT(waited > 0);
    close_host(&fx);
}

#define FLOOD_SLOW 8

typedef struct flood_arg {
    molt_db_host *h;
    atomic_int stop;
    atomic_long cancels;
} flood_arg;

static void *cancel_flood(void *p)
{
    flood_arg *a = p;
    for (uint64_t n = 0; !atomic_load(&a->stop); n++) {
        ASSERT_EQ_INT(molt_db_host_cancel(a->h, 1 + n % 1000), 0);
        atomic_fetch_add(&a->cancels, 1);
    }
    return NULL;
}

/* Another thread cancelling without pause (tokens nobody uses, each
 * looked up among the requests running) keeps queueing commands while the
 * host's thread takes them: it takes a bounded number of rounds per turn,
 * so requests are still answered during the flood. */
TEST(a_flood_of_cancels_leaves_requests_answered)
{
    fixture fx;
    open_host(&fx, MOLT_DB_HOST_THREADED);
    /* requests that run through the flood: each cancel looks at them */
    molt_db_host_stream *slow[FLOOD_SLOW];
    for (int i = 0; i < FLOOD_SLOW; i++) {
        env e;
        env_db(&e, 10 + (uint64_t)i, "db_query",
               "with recursive c(x) as (select 1 union all select x + 1 from c "
               "where x < 3000000) select count(*) from c", 0, 0, 0);
        ASSERT_EQ_INT(molt_db_host_submit(fx.h, (const uint8_t *)e.b.data, e.b.size, 7,
                                          NULL, &slow[i]), 0);
        env_free(&e);
    }
    flood_arg a = {.h = fx.h};
    pthread_t th;
    ASSERT_EQ_INT(pthread_create(&th, NULL, cancel_flood, &a), 0);
    while (atomic_load(&a.cancels) == 0)
        sched_yield();
    long long worst = 0;
    for (uint64_t i = 0; i < 100; i++) {
        env e;
        env_db(&e, 100 + i, "ping", NULL, 0, 0, 0);
        long long t0 = now_ms();
        frame_info fi = host_call(fx.h, &e, 10000);
        env_free(&e);
        ASSERT_EQ_STR(fi.status, "Ok");
        if (now_ms() - t0 > worst)
            worst = now_ms() - t0;
    }
    atomic_store(&a.stop, 1);
    pthread_join(th, NULL);
    ASSERT_EQ_INT(molt_db_host_cancel(fx.h, 7), 0);
    for (int i = 0; i < FLOOD_SLOW; i++) {
        /* Ok when it ended before the cancel (a slow machine) */
        const char *st = host_final(NULL, slow[i], 30000, NULL).status;
        ASSERT(!strcmp(st, "Cancelled") || !strcmp(st, "Ok"));
        molt_db_host_release(slow[i]);
    }
    printf("    %ld cancels; worst ping %lld ms\n", atomic_load(&a.cancels), worst);
    ASSERT(worst < 5000);
    close_host(&fx);
}

/* Racing free: threads still submitting and releasing while another frees
 * the host is the caller's bug, but free with streams held is not. */
TEST(free_while_streams_are_held)
{
    fixture fx;
    open_host(&fx, MOLT_DB_HOST_THREADED);
    for (int i = 0; i < 200; i++) {
        env e;
        env_db(&e, (uint64_t)i + 10, "db_query", "select x from t", i % 2, 10, 0);
        molt_db_host_stream *s;
        ASSERT_EQ_INT(molt_db_host_submit(fx.h, (const uint8_t *)e.b.data, e.b.size, 0,
                                          NULL, &s), 0);
        env_free(&e);
    }
    close_host(&fx);
}

/* the process's peak RSS so far (VmHWM): the allocator gives memory back
 * and takes it again between rounds, a leak raises the peak */
static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* MANY requests in flight at once; the answers come back in any order
 * and each is matched to its request through the udata it was given. */
static void many_round(molt_db_host *h, uint64_t base)
{
    molt_db_host_stream **s = calloc(MANY, sizeof *s);
    char *done = calloc(MANY, 1);
    ASSERT(s && done);
    for (size_t i = 0; i < MANY; i++) {
        env e;
        char sql[64];
        snprintf(sql, sizeof sql, "select x from t where x = %zu", i % 200 + 1);
        env_db(&e, base + i, "db_query", sql, 0, 0, 240000);
        ASSERT_EQ_INT(molt_db_host_submit(h, (const uint8_t *)e.b.data, e.b.size, 0,
                                          (void *)(i + 1), &s[i]), 0);
        env_free(&e);
    }
    size_t finished = 0;
    long long deadline = now_ms() + 240000;
    void *ready[512];
    while (finished < MANY) {
        if (now_ms() > deadline)
            FAIL_AT("%zu of %d answered", finished, MANY);
        host_wait(h, 100);
        size_t n;
        while ((n = molt_db_host_ready(h, ready, 512)) > 0) {
            for (size_t k = 0; k < n; k++) {
                size_t i = (size_t)ready[k] - 1;
                ASSERT(i < MANY && !done[i]);
                const uint8_t *f;
                size_t len;
                int rc;
                while ((rc = molt_db_host_next(s[i], &f, &len)) == 1) {
                    frame_info fi = frame_read(f, len);
                    ASSERT_EQ_UINT(fi.request_id, base + i);
                    if (strcmp(fi.status, "Ok"))
                        FAIL_AT("request %zu: %s %s", i, fi.status, fi.error);
                }
                if (rc == MOLT_DB_HOST_DONE) {
                    done[i] = 1;
                    finished++;
                    molt_db_host_release(s[i]);
                }
            }
        }
    }
    free(s);
    free(done);
}

/* RSS bounded: 10,000 in flight fit in 100 MB, the peak of the whole
 * process, both modes (about 50 MB measured: twice that leaves room for
 * the allocator; 8 kB more a request, such as a parsed payload held in
 * MsgPack's default zone, fails it). A leak raises the peak every round;
 * the allocator raises it in steps while its heaps settle (how far
 * depends on the machine's load), then not at all. So after four rounds,
 * of four more at least one must leave the peak where it was (within
 * 512 kB: a leak of 50 bytes per request would show). */
static void many(int mode)
{
    fixture fx;
    open_host(&fx, mode);
    many_round(fx.h, 1000000);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    /* the sanitizers make rounds slow and RSS meaningless (LeakSanitizer
     * finds leaks at exit instead): one round */
    close_host(&fx);
    return;
#endif
    for (int r = 0; r < 3; r++)
        many_round(fx.h, 2000000 + (uint64_t)r * 100000);
    long peak = peak_rss_kb(), first = peak;
    int flat = 0;
    for (int r = 0; r < 4; r++) {
        many_round(fx.h, 3000000 + (uint64_t)r * 100000);
        long now = peak_rss_kb();
        flat |= now - peak <= 512;
        peak = now;
    }
    printf("mode %d: peak RSS %ld kB after four rounds of %d in flight, %ld kB after eight\n",
           mode, first, MANY, peak);
    if (peak > 102400)
        FAIL_AT("RSS %ld kB for %d requests in flight", peak, MANY);
    if (!flat)
        FAIL_AT("the peak RSS grew in every round of %d requests: %ld to %ld kB", MANY,
                first, peak);
    close_host(&fx);
}

TEST(ten_thousand_in_flight_threaded)
{
    many(MOLT_DB_HOST_THREADED);
}

TEST(ten_thousand_in_flight_driven)
{
#ifdef __SANITIZE_THREAD__
    /* driven mode runs on one thread: nothing for ThreadSanitizer to see */
    return;
#endif
    many(MOLT_DB_HOST_DRIVEN);
}

TEST_MAIN(TEST_ENTRY(eight_threads_submit_cancel_and_release),
          TEST_ENTRY(eight_threads_open_use_and_close_sessions),
          TEST_ENTRY(free_while_streams_are_held),
          TEST_ENTRY(submits_racing_the_loop_going_to_sleep_run),
          TEST_ENTRY(armed_waits_racing_answers_are_woken),
          TEST_ENTRY(a_flood_of_cancels_leaves_requests_answered),
          TEST_ENTRY(ten_thousand_in_flight_threaded),
          TEST_ENTRY(ten_thousand_in_flight_driven))
