/*
 * molt_host_bridge (test-only): molt_worker --stdio, but every request goes
 * through the host ABI (molt_db/host.h), so the worker's Python suites run
 * against the host unchanged (MOLT_WORKER_BIN=build/molt_host_bridge).
 *
 * It reads length-prefixed envelopes on stdin, submits each body in one
 * host session (molt_db_host_submit_in: stdin is one connection, so its
 * transactions and read-your-writes span its requests), and writes every
 * frame of every stream back with its length prefix, as the worker's stdio
 * session does. The mode is MOLT_HOST_BRIDGE_MODE (threaded,
 * the default, or driven). Arguments are molt_worker's; --stdio is implied.
 * Like the worker, it closes on a bad frame length (InvalidInput) and when
 * stdin closes (its requests are cancelled), then exits 0.
 *
 * Its own poll() loop: stdin, stdout (while output waits) and the host's
 * fd. It stops taking frames while more than OUT_HIGH bytes wait for
 * stdout, so a test that does not read meets the host's backpressure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "molt_db/host.h"

#define OUT_HIGH ((size_t)256 << 10)

typedef struct bytes {
    uint8_t *p;
    size_t len, cap, off;
} bytes;

typedef struct req {
    molt_db_host_stream *s;
    int queued;              /* in the drain queue */
    struct req *qnext;
    struct req *prev, *next; /* live */
} req;

static molt_db_host *host;
static uint64_t session;
static bytes in, out;
static req *live, *qhead, *qtail;

static void die(const char *what)
{
    fprintf(stderr, "molt_host_bridge: %s\n", what);
    exit(2);
}

static void put(bytes *b, const void *p, size_t n)
{
    if (b->off > 0) { /* drop what was consumed */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            die("out of memory");
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_frame(const uint8_t *f, size_t n)
{
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    put(&out, le, 4);
    put(&out, f, n);
}

/* The framing error the worker's session answers before closing:
 * {request_id: 0, status: "InvalidInput", error: msg}. */
static void put_frame_error(const char *msg)
{
    uint8_t f[512];
    size_t n = 0, ml = strlen(msg);
    if (ml > 255)
        ml = 255;
    static const uint8_t head[] = {0x83, 0xaa, 'r', 'e', 'q', 'u', 'e', 's', 't', '_',
                                   'i', 'd', 0x00, 0xa6, 's', 't', 'a', 't', 'u', 's',
                                   0xac, 'I', 'n', 'v', 'a', 'l', 'i', 'd', 'I', 'n',
                                   'p', 'u', 't', 0xa5, 'e', 'r', 'r', 'o', 'r', 0xd9};
    memcpy(f, head, sizeof head);
    n = sizeof head;
    f[n++] = (uint8_t)ml;
    memcpy(f + n, msg, ml);
    put_frame(f, n + ml);
}

static void enqueue(req *r)
{
    if (r->queued)
        return;
    r->queued = 1;
    r->qnext = NULL;
    if (qtail)
        qtail->qnext = r;
    else
        qhead = r;
    qtail = r;
}

static void forget(req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    molt_db_host_release(r->s);
    free(r);
}

static void submit(const uint8_t *body, size_t len)
{
    req *r = calloc(1, sizeof *r);
    if (!r)
        die("out of memory");
    if (molt_db_host_submit_in(host, session, body, len, 0, r, &r->s) < 0)
        die("submit failed");
    r->next = live;
    if (live)
        live->prev = r;
    live = r;
}

/* Frames of the streams with news, while stdout keeps up. */
static void drain(void)
{
    void *ready[256];
    size_t n;
    while ((n = molt_db_host_ready(host, ready, 256)) > 0)
        for (size_t i = 0; i < n; i++)
            enqueue(ready[i]);
    while (qhead && out.len - out.off < OUT_HIGH) {
        req *r = qhead;
        const uint8_t *f;
        size_t len;
        int rc;
        while (out.len - out.off < OUT_HIGH && (rc = molt_db_host_next(r->s, &f, &len)) == 1)
            put_frame(f, len);
        if (out.len - out.off >= OUT_HIGH)
            break; /* r stays first */
        qhead = r->qnext;
        if (!qhead)
            qtail = NULL;
        r->queued = 0;
        if (rc == MOLT_DB_HOST_DONE)
            forget(r);
    }
}

/* Whole frames read: submitted. Returns 0, or -1 on a bad length (then
 * the error frame is queued). */
static int take_frames(size_t max)
{
    while (in.len - in.off >= 4) {
        const uint8_t *p = in.p + in.off;
        size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (n == 0 || n > max) {
            char msg[128];
            if (n == 0)
                snprintf(msg, sizeof msg, "frame length 0 is not allowed");
            else
                snprintf(msg, sizeof msg, "frame length %zu is above the limit of %zu bytes",
                         n, max);
            put_frame_error(msg);
            return -1;
        }
        if (in.len - in.off - 4 < n)
            break;
        submit(p + 4, n);
        in.off += 4 + n;
    }
    if (in.off == in.len)
        in.off = in.len = 0;
    return 0;
}

static int flush_out(void)
{
    while (out.off < out.len) {
        ssize_t w = write(1, out.p + out.off, out.len - out.off);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        out.off += (size_t)w;
    }
    out.off = out.len = 0;
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *m = getenv("MOLT_HOST_BRIDGE_MODE");
    int mode = m && !strcmp(m, "driven") ? MOLT_DB_HOST_DRIVEN : MOLT_DB_HOST_THREADED;
    const char **args = calloc((size_t)argc + 1, sizeof *args);
    int n = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--stdio"))
            args[n++] = argv[i];
    molt_db_error err;
    molt_db_error_init(&err);
    int rc = molt_db_host_new(n, args, mode, &host, &err);
    free(args);
    if (rc < 0)
        die(err.message);
    if (molt_db_host_session_open(host, &session) < 0)
        die("cannot open a session");
    size_t max = molt_db_host_max_request_bytes(host);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
    int reading = 1;
    while (reading || out.off < out.len) {
        struct pollfd p[3] = {{.fd = reading ? 0 : -1, .events = POLLIN},
                              {.fd = out.off < out.len ? 1 : -1, .events = POLLOUT},
                              {.fd = molt_db_host_fd(host), .events = POLLIN}};
        int timeout = qhead && out.len - out.off < OUT_HIGH ? 0 : molt_db_host_timeout(host);
        if (!reading)
            timeout = timeout < 0 || timeout > 100 ? 100 : timeout;
        if (poll(p, 3, timeout) < 0 && errno != EINTR)
            die("poll failed");
        molt_db_host_poll(host, 0);
        drain();
        if (flush_out() < 0)
            break; /* stdout closed: nobody reads any more */
        if (reading && (p[0].revents & (POLLIN | POLLHUP))) {
            uint8_t buf[65536];
            ssize_t r = read(0, buf, sizeof buf);
            if (r > 0) {
                put(&in, buf, (size_t)r);
                if (take_frames(max) < 0)
                    reading = 0;
            } else if (r == 0 || errno != EAGAIN) {
                reading = 0;
            }
            if (!reading) {
                /* the client is gone: as the worker, cancel what runs
                 * and roll its transactions back */
                while (live)
                    forget(live);
                qhead = qtail = NULL;
                molt_db_host_session_close(host, session);
            }
        }
    }
    molt_db_host_free(host);
    free(in.p);
    free(out.p);
    return 0;
}
