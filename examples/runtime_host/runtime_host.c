/*
 * runtime_host: a second host of molt_db's request core that is not
 * molt_worker. A tiny runtime with its own poll() loop and cooperative
 * tasks (no libuv here) runs many db_query requests at once through the
 * host ABI's driven mode, cancels one by its token while it runs on the
 * server, and prints what each task got.
 *
 *   runtime_host sqlite|postgres [molt_worker arguments...]
 *   runtime_host postgres --db default=postgresql://... \
 *       --pool default:allow_privileged_role=true
 *
 * Exit status 0 when every query answered Ok and the slow one Cancelled.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, poll */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "molt_db/host.h"

#define TASKS 40
#define SLOW_TOKEN 99

/* ---- the runtime: tasks that park on a stream or a timer ---- */

typedef enum { T_START, T_WAIT_STREAM, T_WAIT_TIMER, T_DONE } task_state;

typedef struct task {
    int id;
    task_state state;
    int (*step)(struct task *); /* runs until it parks; returns 1 when done */
    molt_db_host_stream *stream;
    long long wake_at;          /* T_WAIT_TIMER */
    int runnable;
    char status[32];
    char result[160];
} task;

static molt_db_host *host;
static task tasks[TASKS + 2];
static int ntasks;
static const char *slow_sql;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- requests and answers: the IPC contract's MsgPack maps ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Submits {request_id, entry: db_query, payload: {sql}} with token. */
static molt_db_host_stream *query(task *t, const char *sql, uint64_t token)
{
    msgpack_sbuffer p, e;
    msgpack_packer pk;
    msgpack_sbuffer_init(&p);
    msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "sql");
    pack_str(&pk, sql);
    msgpack_sbuffer_init(&e);
    msgpack_packer_init(&pk, &e, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "request_id");
    msgpack_pack_uint64(&pk, (uint64_t)t->id);
    pack_str(&pk, "entry");
    pack_str(&pk, "db_query");
    pack_str(&pk, "payload");
    msgpack_pack_bin(&pk, p.size);
    msgpack_pack_bin_body(&pk, p.data, p.size);
    molt_db_host_stream *s = NULL;
    if (molt_db_host_submit(host, (const uint8_t *)e.data, e.size, token, t, &s) < 0) {
        fprintf(stderr, "submit failed\n");
        exit(1);
    }
    msgpack_sbuffer_destroy(&p);
    msgpack_sbuffer_destroy(&e);
    return s;
}

/* Copies the frame's status and its payload (JSON text) or error. */
static void read_answer(task *t, const uint8_t *f, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)f, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        snprintf(t->status, sizeof t->status, "?");
        msgpack_unpacked_destroy(&u);
        return;
    }
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_object k = u.data.via.map.ptr[i].key, v = u.data.via.map.ptr[i].val;
        if (k.type != MSGPACK_OBJECT_STR)
            continue;
        const char *field = NULL;
        uint32_t n = 0;
        if (v.type == MSGPACK_OBJECT_STR) {
            field = v.via.str.ptr;
            n = v.via.str.size;
        } else if (v.type == MSGPACK_OBJECT_BIN) {
            field = v.via.bin.ptr;
            n = v.via.bin.size;
        }
        if (!field)
            continue;
        if (k.via.str.size == 6 && !memcmp(k.via.str.ptr, "status", 6))
            snprintf(t->status, sizeof t->status, "%.*s", (int)n, field);
        else if ((k.via.str.size == 7 && !memcmp(k.via.str.ptr, "payload", 7)) ||
                 (k.via.str.size == 5 && !memcmp(k.via.str.ptr, "error", 5)))
            snprintf(t->result, sizeof t->result, "%.*s", (int)n, field);
    }
    msgpack_unpacked_destroy(&u);
}

/* Takes what the stream has: 1 once it ended (the stream is released). */
static int collect(task *t)
{
    const uint8_t *f;
    size_t len;
    int rc;
    while ((rc = molt_db_host_next(t->stream, &f, &len)) == 1)
        read_answer(t, f, len);
    if (rc != MOLT_DB_HOST_DONE)
        return 0;
    molt_db_host_release(t->stream);
    t->stream = NULL;
    return 1;
}

/* ---- the tasks ---- */

/* Asks the database for its id times 7, and waits for the answer. */
static int step_query(task *t)
{
    if (t->state == T_START) {
        char sql[64];
        snprintf(sql, sizeof sql, "select %d * 7 as n", t->id);
        t->stream = query(t, sql, 0);
        t->state = T_WAIT_STREAM;
        return 0;
    }
    return collect(t);
}

/* A query that would run for 30 s, cancelled by the canceller. */
static int step_slow(task *t)
{
    if (t->state == T_START) {
        t->stream = query(t, slow_sql, SLOW_TOKEN);
        t->state = T_WAIT_STREAM;
        return 0;
    }
    return collect(t);
}

/* Sleeps 500 ms (the slow query is on the server by then), then cancels
 * every request of SLOW_TOKEN. */
static int step_canceller(task *t)
{
    if (t->state == T_START) {
        t->state = T_WAIT_TIMER;
        t->wake_at = now_ms() + 500;
        return 0;
    }
    int rc = molt_db_host_cancel(host, SLOW_TOKEN);
    snprintf(t->status, sizeof t->status, rc == 0 ? "Ok" : "failed");
    snprintf(t->result, sizeof t->result, "cancelled token %d", SLOW_TOKEN);
    return 1;
}

static void spawn(int (*step)(task *))
{
    task *t = &tasks[ntasks];
    t->id = ++ntasks;
    t->step = step;
    t->runnable = 1;
}

/* ---- the loop: run what is runnable, then poll the host and the timers ---- */

static void run(void)
{
    int live = ntasks;
    while (live > 0) {
        for (int i = 0; i < ntasks; i++) {
            task *t = &tasks[i];
            if (!t->runnable || t->state == T_DONE)
                continue;
            t->runnable = 0;
            if (t->step(t)) {
                t->state = T_DONE;
                live--;
            }
        }
        if (live == 0)
            break; /* nothing left to wait for: an idle host's timeout is -1 */
        /* sleep until the host has I/O, its next timer, or a task's timer */
        long long next = -1, now = now_ms();
        for (int i = 0; i < ntasks; i++)
            if (tasks[i].state == T_WAIT_TIMER && (next < 0 || tasks[i].wake_at < next))
                next = tasks[i].wake_at;
        int timeout = next < 0 ? -1 : (int)(next > now ? next - now : 0);
        int ht = molt_db_host_timeout(host);
        if (ht >= 0 && (timeout < 0 || ht < timeout))
            timeout = ht;
        struct pollfd p = {.fd = molt_db_host_fd(host), .events = POLLIN};
        if (poll(&p, 1, timeout) < 0 && errno != EINTR)
            exit(1);
        molt_db_host_poll(host, 0); /* the host's I/O and timers, here */
        void *ready[64];
        size_t n;
        while ((n = molt_db_host_ready(host, ready, 64)) > 0)
            for (size_t k = 0; k < n; k++)
                ((task *)ready[k])->runnable = 1;
        now = now_ms();
        for (int i = 0; i < ntasks; i++)
            if (tasks[i].state == T_WAIT_TIMER && tasks[i].wake_at <= now)
                tasks[i].runnable = 1;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "sqlite") && strcmp(argv[1], "postgres"))) {
        fprintf(stderr, "usage: runtime_host sqlite|postgres [molt_worker arguments]\n");
        return 2;
    }
    slow_sql = !strcmp(argv[1], "postgres")
                   ? "select pg_sleep(30)"
                   : "with recursive c(x) as (select 1 union all select x + 1 from c) "
                     "select count(*) from c";
    molt_db_error err;
    molt_db_error_init(&err);
    if (molt_db_host_new(argc - 2, (const char *const *)argv + 2, MOLT_DB_HOST_DRIVEN,
                         &host, &err) < 0) {
        fprintf(stderr, "runtime_host: %s\n", err.message);
        return 2;
    }
    for (int i = 0; i < TASKS; i++)
        spawn(step_query);
    spawn(step_slow);
    spawn(step_canceller);
    long long t0 = now_ms();
    run();
    int bad = 0;
    for (int i = 0; i < ntasks; i++) {
        task *t = &tasks[i];
        const char *want = t->step == step_slow ? "Cancelled" : "Ok";
        printf("task %2d %-10s %s\n", t->id, t->status, t->result);
        bad += strcmp(t->status, want) != 0;
    }
    printf("%d tasks in %lld ms, %d unexpected\n", ntasks, now_ms() - t0, bad);
    molt_db_host_free(host);
    return bad ? 1 : 0;
}
