/*
 * Helpers of the host tests (test_host_*.c): envelopes packed with
 * msgpack-c, a response's status read back, and waiting for a stream's
 * frames in either mode, the way a runtime would (poll on the host's fd).
 */
#ifndef MOLT_DB_HOST_TEST_H
#define MOLT_DB_HOST_TEST_H

#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "molt_db/host.h"
#include "test.h"

typedef struct env {
    msgpack_sbuffer b;
} env;

/* An envelope: entry, request_id and, when sql is not NULL, a db payload
 * {sql, stream, batch_rows, allow_write} (stream 0: not streamed). */
static inline void env_db(env *e, uint64_t id, const char *entry, const char *sql,
                          int stream, int batch_rows, uint32_t timeout_ms)
{
    msgpack_sbuffer p;
    msgpack_sbuffer_init(&p);
    msgpack_packer pk;
    if (sql) {
        msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
        int n = 1 + (stream ? 2 : 0) + (!strcmp(entry, "db_exec") ? 1 : 0);
        msgpack_pack_map(&pk, (size_t)n);
        msgpack_pack_str_with_body(&pk, "sql", 3);
        msgpack_pack_str_with_body(&pk, sql, strlen(sql));
        if (stream) {
            msgpack_pack_str_with_body(&pk, "stream", 6);
            msgpack_pack_true(&pk);
            msgpack_pack_str_with_body(&pk, "batch_rows", 10);
            msgpack_pack_int(&pk, batch_rows);
        }
        if (!strcmp(entry, "db_exec")) {
            msgpack_pack_str_with_body(&pk, "allow_write", 11);
            msgpack_pack_true(&pk);
        }
    }
    msgpack_sbuffer_init(&e->b);
    msgpack_packer_init(&pk, &e->b, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2 + (sql ? 1 : 0) + (timeout_ms ? 1 : 0));
    msgpack_pack_str_with_body(&pk, "request_id", 10);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_str_with_body(&pk, "entry", 5);
    msgpack_pack_str_with_body(&pk, entry, strlen(entry));
    if (sql) {
        msgpack_pack_str_with_body(&pk, "payload", 7);
        msgpack_pack_bin(&pk, p.size);
        msgpack_pack_bin_body(&pk, p.data, p.size);
    }
    if (timeout_ms) {
        msgpack_pack_str_with_body(&pk, "timeout_ms", 10);
        msgpack_pack_uint32(&pk, timeout_ms);
    }
    msgpack_sbuffer_destroy(&p);
}

/* The envelope {request_id, entry, payload} around payload p (freed). */
static inline void env_wrap(env *e, uint64_t id, const char *entry, msgpack_sbuffer *p)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(&e->b);
    msgpack_packer_init(&pk, &e->b, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "request_id", 10);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_str_with_body(&pk, "entry", 5);
    msgpack_pack_str_with_body(&pk, entry, strlen(entry));
    msgpack_pack_str_with_body(&pk, "payload", 7);
    msgpack_pack_bin(&pk, p->size);
    msgpack_pack_bin_body(&pk, p->data, p->size);
    msgpack_sbuffer_destroy(p);
}

static inline void env_cancel(env *e, uint64_t id, uint64_t target)
{
    msgpack_sbuffer p;
    msgpack_sbuffer_init(&p);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "request_id", 10);
    msgpack_pack_uint64(&pk, target);
    env_wrap(e, id, "cancel", &p);
}

/* An envelope whose payload is {sql?, tx_id?, allow_write (db_exec)}. */
static inline void env_tx(env *e, uint64_t id, const char *entry, const char *sql, uint64_t tx_id)
{
    msgpack_sbuffer p;
    msgpack_sbuffer_init(&p);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
    int exec = !strcmp(entry, "db_exec");
    msgpack_pack_map(&pk, (size_t)((sql ? 1 : 0) + (tx_id ? 1 : 0) + exec));
    if (sql) {
        msgpack_pack_str_with_body(&pk, "sql", 3);
        msgpack_pack_str_with_body(&pk, sql, strlen(sql));
    }
    if (tx_id) {
        msgpack_pack_str_with_body(&pk, "tx_id", 5);
        msgpack_pack_uint64(&pk, tx_id);
    }
    if (exec) {
        msgpack_pack_str_with_body(&pk, "allow_write", 11);
        msgpack_pack_true(&pk);
    }
    env_wrap(e, id, entry, &p);
}

static inline void env_free(env *e)
{
    msgpack_sbuffer_destroy(&e->b);
}

/* A frame's fields: its status, request_id, whether more follow, and
 * (a copy of) its error text. */
typedef struct frame_info {
    char status[32];
    char error[256];
    uint64_t request_id;
    int more;
    uint64_t tx_id;     /* a transaction's answer: its payload's tx_id */
} frame_info;

/* The value under key in a msgpack map, or NULL. */
static inline const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    size_t kl = strlen(key);
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static inline void copy_str(char *dst, size_t cap, const msgpack_object *v)
{
    if (!v || v->type != MSGPACK_OBJECT_STR)
        return;
    memcpy(dst, v->via.str.ptr, v->via.str.size < cap - 1 ? v->via.str.size : cap - 1);
}

static inline uint64_t get_uint(const msgpack_object *v)
{
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

static inline frame_info frame_read(const uint8_t *f, size_t len)
{
    frame_info fi;
    memset(&fi, 0, sizeof fi);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ASSERT(msgpack_unpack_next(&u, (const char *)f, len, NULL) == MSGPACK_UNPACK_SUCCESS);
    ASSERT(u.data.type == MSGPACK_OBJECT_MAP);
    copy_str(fi.status, sizeof fi.status, map_get(&u.data, "status"));
    copy_str(fi.error, sizeof fi.error, map_get(&u.data, "error"));
    fi.request_id = get_uint(map_get(&u.data, "request_id"));
    const msgpack_object *v = map_get(&u.data, "more");
    fi.more = v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
    v = map_get(&u.data, "payload");
    if (v && v->type == MSGPACK_OBJECT_BIN) {
        msgpack_unpacked p;
        msgpack_unpacked_init(&p);
        if (msgpack_unpack_next(&p, v->via.bin.ptr, v->via.bin.size, NULL) ==
            MSGPACK_UNPACK_SUCCESS)
            fi.tx_id = get_uint(map_get(&p.data, "tx_id"));
        msgpack_unpacked_destroy(&p);
    }
    msgpack_unpacked_destroy(&u);
    return fi;
}

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (at most ms) on the host's fd the way a runtime's poller does, then
 * lets the host run (driven) or clears the fd (threaded). */
static inline void host_wait(molt_db_host *h, int ms)
{
    int t = molt_db_host_timeout(h);
    if (t >= 0 && t < ms)
        ms = t;
    struct pollfd p = {.fd = molt_db_host_fd(h), .events = POLLIN};
    (void)poll(&p, 1, ms);
    ASSERT_EQ_INT(molt_db_host_poll(h, 0), 0);
}

/* The final frame of s (the parts before it counted in *parts), waiting
 * up to ms; the stream is then done. Every frame names the same request.
 * h NULL: another thread runs the host (threaded mode), so just wait. */
static inline frame_info host_final(molt_db_host *h, molt_db_host_stream *s, int ms,
                                    int *parts)
{
    frame_info last;
    memset(&last, 0, sizeof last);
    int seen = 0, n = 0;
    long long deadline = now_ms() + ms;
    for (;;) {
        const uint8_t *f;
        size_t len;
        int rc = molt_db_host_next(s, &f, &len);
        if (rc == 1) {
            frame_info fi = frame_read(f, len);
            if (seen)
                ASSERT_EQ_UINT(fi.request_id, last.request_id);
            last = fi;
            seen = 1;
            n += last.more;
            continue;
        }
        if (rc == MOLT_DB_HOST_DONE)
            break;
        ASSERT_EQ_INT(rc, 0);
        if (now_ms() > deadline)
            FAIL_AT("no final frame within %d ms", ms);
        if (h) {
            host_wait(h, 50);
        } else {
            sched_yield();
            usleep(200);
        }
    }
    ASSERT(seen);
    ASSERT(!last.more);
    if (parts)
        *parts = n;
    return last;
}

/* Submits env e in session (0: one of its own) and returns its final
 * frame. */
static inline frame_info host_call_in(molt_db_host *h, uint64_t session, env *e, int ms)
{
    molt_db_host_stream *s = NULL;
    ASSERT_EQ_INT(molt_db_host_submit_in(h, session, (const uint8_t *)e->b.data,
                                         e->b.size, 0, NULL, &s), 0);
    frame_info fi = host_final(h, s, ms, NULL);
    molt_db_host_release(s);
    return fi;
}

static inline frame_info host_call(molt_db_host *h, env *e, int ms)
{
    return host_call_in(h, 0, e, ms);
}

#endif
