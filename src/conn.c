/*
 * The connection's life cycle: connect to each host in turn (DNS, socket,
 * TLS per sslmode, startup, authentication), socket I/O, failure and close.
 * Requests and result dispatch live in conn_request.c, OpenSSL in
 * conn_tls.c; this file never blocks: every step waits for readiness.
 */
#include "conn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "molt_db/protocol.h"

#define MOLT_DB_READ_CHUNK 65536

molt_db_conninfo *molt_db__conninfo_dup(const molt_db_conninfo *ci);

struct molt_db_conn *molt_db__conn_from_loop(molt_db_conn_loop *l)
{
    /* The loop is the first member of the connection. */
    return (struct molt_db_conn *)(void *)l;
}

static const molt_db_conninfo_host *cur_host(const molt_db_conn *c)
{
    return &c->ci->hosts[c->host_idx];
}

/* ---- watching and writing ---------------------------------------------- */

/* Pausing applies to results: the startup always reads. */
static int reading_paused(const molt_db_conn *c)
{
    return c->read_paused && c->state == MOLT_DB_CONN_READY;
}

static void update_watch(molt_db_conn *c)
{
    if (c->fd < 0 || c->close_requested)
        return;
    int ev = reading_paused(c) ? 0 : MOLT_DB_WATCH_READ;
    if (c->state == MOLT_DB_CONN_CONNECTING || c->out_off < c->out.len ||
        c->tls_want_write)
        ev |= MOLT_DB_WATCH_WRITE;
    if (molt_db__loop_watch(&c->loop, c->fd, ev) < 0) {
        molt_db_error e;
        molt_db_error_init(&e);
        molt_db_error_set(&e, MOLT_DB_ENOMEM, "could not watch the socket");
        molt_db__conn_fail(c, MOLT_DB_ENOMEM, &e);
    }
}

void molt_db__conn_want_write(molt_db_conn *c)
{
    update_watch(c);
}

static void close_fd(molt_db_conn *c)
{
    molt_db__loop_unwatch(&c->loop);
    molt_db__tls_free(c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->tls_want_write = 0;
}

/* Writes what the send buffer holds. MOLT_DB_OK when all of it went out or
 * the socket is full (the write watcher is then on), else an error (the
 * caller breaks the connection). */
static int flush_out(molt_db_conn *c, molt_db_error *err)
{
    molt_db__conn_close_batch(c); /* a batch ends where a write begins */
    while (c->out_off < c->out.len) {
        const uint8_t *p = c->out.data + c->out_off;
        size_t n = c->out.len - c->out_off;
        long w;
        int again = 0;
        if (c->ssl != NULL) {
            w = molt_db__tls_write(c, p, n, &again, err);
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                again = 1;
            else if (w < 0 && errno == EINTR)
                continue;
            else if (w < 0)
                return molt_db_error_set(err, MOLT_DB_EIO,
                                         "could not send data to the server: %s",
                                         strerror(errno));
        }
        if (w < 0 && again)
            break;
        if (w < 0)
            return err ? err->code : MOLT_DB_EIO;
        c->out_off += (size_t)w;
        c->bytes_out += (uint64_t)w;
    }
    if (c->out_off == c->out.len) {
        c->out.len = 0;
        c->out_off = 0;
    } else if (c->out_off > (1u << 20)) {
        molt_db_buf_consume(&c->out, c->out_off);
        c->out_off = 0;
    }
    update_watch(c);
    return MOLT_DB_OK;
}

/* Writes the send buffer now; a failure breaks the connection. */
static int flush_now(molt_db_conn *c)
{
    if (c->fd < 0 || c->state != MOLT_DB_CONN_READY)
        return MOLT_DB_OK;
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = flush_out(c, &e);
    if (rc != MOLT_DB_OK) {
        molt_db__conn_fail(c, rc, &e);
        molt_db_error_clear(&e);
    }
    return rc;
}

/* Requests are written once per loop iteration (at the end of a read
 * dispatch, or just before the loop polls), so a burst of requests from
 * many callbacks costs one system call, not one each. */
int molt_db__conn_flush(molt_db_conn *c)
{
    if (c->fd < 0 || c->state != MOLT_DB_CONN_READY || c->dispatching)
        return MOLT_DB_OK;
    if (c->in_deferred) {
        /* the idle handle started from its own callback would wait for
         * the next turn of the loop: write in this one */
        c->flush_again = 1;
        return MOLT_DB_OK;
    }
    molt_db__loop_defer(&c->loop);
    return MOLT_DB_OK;
}

static void on_readable(molt_db_conn *c);

void molt_db__conn_on_deferred(molt_db_conn *c)
{
    if (c->resume_due) {
        /* resumed: dispatch what was held back, then read on */
        c->resume_due = 0;
        if (!reading_paused(c) && !c->close_requested && c->fd >= 0)
            on_readable(c);
    }
    c->in_deferred = 1;
    do {
        c->flush_again = 0;
        if (c->close_requested || (c->out_off >= c->out.len && c->batch_n == 0))
            break;
        if (flush_now(c) != MOLT_DB_OK)
            break;
        /* a COPY producer may queue more from on_drain */
        molt_db__conn_copy_drained(c);
    } while (c->flush_again);
    c->in_deferred = 0;
}

/* ---- failure and close ------------------------------------------------- */

void molt_db__conn_fail(molt_db_conn *c, int code, const molt_db_error *err)
{
    if (c->state == MOLT_DB_CONN_BROKEN || c->state == MOLT_DB_CONN_CLOSING)
        return;
    int was_ready = c->state == MOLT_DB_CONN_READY;
    c->state = MOLT_DB_CONN_BROKEN;
    close_fd(c);
    molt_db__conn_fail_requests(c, code, err);
    if (was_ready && c->opts.on_broken != NULL && !c->close_requested)
        c->opts.on_broken(c, code, err, c->opts.broken_ud);
}

static void finish_connect(molt_db_conn *c, int status, const molt_db_error *err)
{
    molt_db_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    if (cb != NULL)
        cb(c, status, err, c->connect_ud);
    if (status != MOLT_DB_OK || c->cancel_mode)
        molt_db_conn_close(c, NULL, NULL);
}

void molt_db_conn_close(molt_db_conn *c, molt_db_close_cb cb, void *ud)
{
    if (c == NULL || c->close_requested)
        return;
    c->close_requested = 1;
    c->close_cb = cb;
    c->close_ud = ud;
    if (c->connect_cb != NULL) {
        molt_db_error e;
        molt_db_error_init(&e);
        molt_db_error_set(&e, MOLT_DB_ECLOSED,
                          "connection closed before it was established");
        molt_db_connect_cb ccb = c->connect_cb;
        c->connect_cb = NULL;
        ccb(c, MOLT_DB_ECLOSED, &e, c->connect_ud);
    }
    molt_db_error closed;
    molt_db_error_init(&closed);
    molt_db_error_set(&closed, MOLT_DB_ECLOSED, "connection closed");
    molt_db__conn_fail_requests(c, MOLT_DB_ECLOSED, &closed);
    if (c->state == MOLT_DB_CONN_READY && c->fd >= 0) {
        /* Best effort: tell the server we are leaving. */
        c->dispatching = 0;
        if (molt_db_proto_write_terminate(&c->out) == MOLT_DB_OK)
            flush_out(c, NULL);
    }
    c->state = MOLT_DB_CONN_CLOSING;
    close_fd(c);
    molt_db__loop_close(&c->loop);
}

void molt_db__conn_on_closed(molt_db_conn *c)
{
    molt_db_close_cb cb = c->close_cb;
    void *ud = c->close_ud;
    if (c->addrs != NULL)
        freeaddrinfo(c->addrs);
    molt_db__tls_free(c);
    molt_db_scram_clear(&c->scram);
    molt_db_buf_free(&c->in);
    molt_db_buf_free(&c->out);
    molt_db_buf_free(&c->batch_buf);
    for (size_t i = 0; i < c->nparams; i++) {
        free(c->params[i].name);
        free(c->params[i].value);
    }
    free(c->params);
    free(c->fields);
    free(c->cols);
    molt_db_error_clear(&c->connect_err);
    molt_db_conninfo_free(c->ci);
    if (cb != NULL)
        cb(c, ud);
    free(c);
}

/* ---- connecting -------------------------------------------------------- */

static void try_host(molt_db_conn *c);
static void try_addr(molt_db_conn *c);
static long read_some(molt_db_conn *c, size_t want, int *full,
                      molt_db_error *err);

/* Appends one host's failure to the accumulated connect error, libpq style:
 * `connection to server at "h" (addr), port p failed: why`. */
static void note_failure(molt_db_conn *c, const molt_db_error *why)
{
    const molt_db_conninfo_host *h = cur_host(c);
    char where[512];
    if (c->is_unix)
        snprintf(where, sizeof where,
                 "connection to server on socket \"%s/.s.PGSQL.%u\" failed",
                 h->host, (unsigned)h->port);
    else
        snprintf(where, sizeof where,
                 "connection to server at \"%s\", port %u failed", h->host,
                 (unsigned)h->port);
    char prev[MOLT_DB_ERROR_MESSAGE_SIZE];
    memcpy(prev, c->connect_err.message, sizeof prev);
    molt_db_error_copy(&c->connect_err, why);
    char all[3 * MOLT_DB_ERROR_MESSAGE_SIZE];
    snprintf(all, sizeof all, "%s%s%s: %s", prev, prev[0] ? "\n" : "", where,
             why->message);
    size_t n = strlen(all);
    if (n >= sizeof c->connect_err.message)
        n = sizeof c->connect_err.message - 1;
    memcpy(c->connect_err.message, all, n);
    c->connect_err.message[n] = '\0';
}

static void fail_attempt_msg(molt_db_conn *c, int code, const char *fmt,
                             const char *arg)
{
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, code, fmt, arg);
    note_failure(c, &e);
    molt_db_error_clear(&e);
}

/* Forgets what the failed attempt set up on its socket, and the server's
 * parameters (the next server reports its own). */
static void reset_attempt(molt_db_conn *c)
{
    close_fd(c);
    molt_db_buf_reset(&c->in);
    c->in_off = 0;
    molt_db_buf_reset(&c->out);
    c->out_off = 0;
    molt_db_scram_clear(&c->scram);
    c->sasl_used = 0;
    c->auth_ok = 0;
    for (size_t i = 0; i < c->nparams; i++) {
        free(c->params[i].name);
        free(c->params[i].value);
    }
    c->nparams = 0;
}

/* The current host is done with (its other addresses are not tried). */
static void next_host(molt_db_conn *c)
{
    reset_attempt(c);
    if (c->addrs != NULL) {
        freeaddrinfo(c->addrs);
        c->addrs = NULL;
    }
    c->addr_cur = NULL;
    c->host_idx++;
    c->tls_tried = 0;
    try_host(c);
}

/* The current address failed: try the next one, then the next host. */
static void next_addr(molt_db_conn *c)
{
    reset_attempt(c);
    if (c->addr_cur != NULL)
        c->addr_cur = c->addr_cur->ai_next;
    if (c->addr_cur != NULL) {
        try_addr(c);
        return;
    }
    next_host(c);
}

/* A failure after which no other host is tried (authentication, server
 * errors during startup), as libpq does. */
static void fail_connect(molt_db_conn *c, int code)
{
    close_fd(c);
    c->connect_err.code = code;
    finish_connect(c, code, &c->connect_err);
}

static void all_hosts_failed(molt_db_conn *c)
{
    int code = c->connect_err.code;
    if (code == MOLT_DB_OK || code == MOLT_DB_EIO)
        code = MOLT_DB_ECONNECT;
    c->connect_err.code = code;
    finish_connect(c, code, &c->connect_err);
}

static void arm_deadline(molt_db_conn *c)
{
    if (c->ci->connect_timeout_ms > 0) {
        c->deadline_ms = molt_db__loop_now(&c->loop) +
                         (uint64_t)c->ci->connect_timeout_ms;
        molt_db__loop_timer(&c->loop, (uint64_t)c->ci->connect_timeout_ms);
    } else {
        c->deadline_ms = 0;
        molt_db__loop_timer(&c->loop, 0);
    }
}

static void try_host(molt_db_conn *c)
{
    if (c->host_idx >= c->ci->nhosts && !molt_db__conn_next_pass(c)) {
        all_hosts_failed(c);
        return;
    }
    const molt_db_conninfo_host *h = cur_host(c);
    c->is_unix = h->host[0] == '/' && h->hostaddr == NULL;
    arm_deadline(c);
    if (c->is_unix) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        int n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%u",
                         h->host, (unsigned)h->port);
        if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
            fail_attempt_msg(c, MOLT_DB_ECONNECT,
                             "Unix socket path \"%s\" is too long", h->host);
            c->host_idx++;
            try_host(c);
            return;
        }
        c->unix_addr = sun;
        memset(&c->unix_ai, 0, sizeof c->unix_ai);
        c->unix_ai.ai_family = AF_UNIX;
        c->unix_ai.ai_socktype = SOCK_STREAM;
        c->unix_ai.ai_addr = (struct sockaddr *)&c->unix_addr;
        c->unix_ai.ai_addrlen = sizeof c->unix_addr;
        c->addr_cur = &c->unix_ai;
        try_addr(c);
        return;
    }
    if (h->hostaddr != NULL) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        char port[8];
        snprintf(port, sizeof port, "%u", (unsigned)h->port);
        int rc = getaddrinfo(h->hostaddr, port, &hints, &res);
        if (rc != 0) {
            fail_attempt_msg(c, MOLT_DB_ECONNECT,
                             "could not parse network address \"%s\"",
                             h->hostaddr);
            c->host_idx++;
            try_host(c);
            return;
        }
        molt_db__conn_on_resolved(c, res, NULL);
        return;
    }
    c->state = MOLT_DB_CONN_RESOLVING;
    int rc = molt_db__loop_resolve(&c->loop, h->host, h->port);
    if (rc < 0) {
        fail_attempt_msg(c, MOLT_DB_ECONNECT,
                         "could not start resolving \"%s\"", h->host);
        c->host_idx++;
        try_host(c);
    }
}

void molt_db__conn_on_resolved(molt_db_conn *c, struct addrinfo *ai,
                               const char *error)
{
    if (c->close_requested) {
        if (ai != NULL)
            freeaddrinfo(ai);
        return;
    }
    if (ai == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "could not translate host name \"%.200s\" to address: %s",
                 cur_host(c)->host, error != NULL ? error : "no address");
        fail_attempt_msg(c, MOLT_DB_ECONNECT, "%s", msg);
        c->host_idx++;
        c->tls_tried = 0;
        try_host(c);
        return;
    }
    if (c->ci->load_balance_random)
        molt_db__shuffle_addrs(ai);
    c->addrs = ai;
    c->addr_cur = ai;
    try_addr(c);
}

static void set_socket_options(molt_db_conn *c)
{
    if (c->is_unix)
        return;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->ci->keepalives) {
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#ifdef TCP_KEEPIDLE
        if (c->ci->keepalives_idle_s > 0)
            setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE,
                       &c->ci->keepalives_idle_s, sizeof(int));
        if (c->ci->keepalives_interval_s > 0)
            setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL,
                       &c->ci->keepalives_interval_s, sizeof(int));
        if (c->ci->keepalives_count > 0)
            setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT,
                       &c->ci->keepalives_count, sizeof(int));
#endif
    }
}

static void on_connected(molt_db_conn *c);

static void try_addr(molt_db_conn *c)
{
    struct addrinfo *ai = c->addr_cur;
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail_attempt_msg(c, MOLT_DB_ECONNECT, "could not create socket: %s",
                         strerror(errno));
        next_addr(c);
        return;
    }
    set_socket_options(c);
    int rc;
    do {
        rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN) {
        fail_attempt_msg(c, MOLT_DB_ECONNECT, "%s", strerror(errno));
        next_addr(c);
        return;
    }
    c->state = MOLT_DB_CONN_CONNECTING;
    if (rc == 0) {
        on_connected(c);
        return;
    }
    update_watch(c);
}

static int use_tls(const molt_db_conn *c)
{
    if (c->is_unix)
        return 0; /* as libpq: never TLS over a Unix socket */
    switch (c->ci->sslmode) {
    case MOLT_DB_SSLMODE_DISABLE: return 0;
    case MOLT_DB_SSLMODE_ALLOW: return c->tls_tried; /* plain first */
    case MOLT_DB_SSLMODE_PREFER: return !c->tls_tried;
    default: return 1;
    }
}

static void send_startup(molt_db_conn *c);
static void start_tls(molt_db_conn *c);

static void on_connected(molt_db_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0) {
        fail_attempt_msg(c, MOLT_DB_ECONNECT, "%s", strerror(soerr));
        next_addr(c);
        return;
    }
    if (c->addr_cur->ai_addrlen <= sizeof c->peer) {
        memcpy(&c->peer, c->addr_cur->ai_addr, c->addr_cur->ai_addrlen);
        c->peer_len = c->addr_cur->ai_addrlen;
    }
    if (!use_tls(c)) {
        send_startup(c);
        return;
    }
    molt_db_buf_reset(&c->out);
    c->out_off = 0;
    molt_db_proto_write_ssl_request(&c->out);
    c->state = MOLT_DB_CONN_SSL_ANSWER;
    molt_db_error e;
    molt_db_error_init(&e);
    if (flush_out(c, &e) != MOLT_DB_OK) {
        note_failure(c, &e);
        molt_db_error_clear(&e);
        next_addr(c);
    }
}

static void on_ssl_answer(molt_db_conn *c)
{
    uint8_t b;
    ssize_t n;
    do {
        n = recv(c->fd, &b, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        fail_attempt_msg(c, MOLT_DB_ECONNECT,
                         "server closed the connection during the SSL request%s",
                         "");
        next_addr(c);
        return;
    }
    if (b == 'S') {
        start_tls(c);
        return;
    }
    if (b == 'N') {
        if (c->ci->sslmode >= MOLT_DB_SSLMODE_REQUIRE) {
            fail_attempt_msg(c, MOLT_DB_ETLS, "%s",
                             "server does not support SSL, but SSL was required");
            next_addr(c);
            return;
        }
        send_startup(c);
        return;
    }
    fail_attempt_msg(c, MOLT_DB_EPROTO,
                     "received invalid response to SSL negotiation%s", "");
    next_addr(c);
}

static void tls_failed(molt_db_conn *c, molt_db_error *e)
{
    note_failure(c, e);
    molt_db_error_clear(e);
    if (c->ci->sslmode == MOLT_DB_SSLMODE_PREFER && !c->tls_tried) {
        /* prefer: retry this address without TLS, as libpq does */
        c->tls_tried = 1;
        close_fd(c);
        try_addr(c);
        return;
    }
    next_addr(c);
}

static void start_tls(molt_db_conn *c)
{
    molt_db_error e;
    molt_db_error_init(&e);
    c->state = MOLT_DB_CONN_TLS_HANDSHAKE;
    if (molt_db__tls_start(c, &e) != MOLT_DB_OK) {
        tls_failed(c, &e);
        return;
    }
    int rc = molt_db__tls_handshake(c, &e);
    if (rc == MOLT_DB_OK)
        send_startup(c);
    else if (rc != MOLT_DB_NEED_MORE)
        tls_failed(c, &e);
}

static void send_cancel_request(molt_db_conn *c)
{
    molt_db_buf_reset(&c->out);
    c->out_off = 0;
    c->state = MOLT_DB_CONN_CANCEL_SENT;
    molt_db_error e;
    molt_db_error_init(&e);
    if (molt_db_proto_write_cancel_request(&c->out, c->cancel_pid,
                                           c->cancel_key) != MOLT_DB_OK ||
        flush_out(c, &e) != MOLT_DB_OK) {
        if (e.code == MOLT_DB_OK)
            molt_db_error_set(&e, MOLT_DB_ENOMEM, "out of memory");
        note_failure(c, &e);
        molt_db_error_clear(&e);
        next_addr(c);
    }
}

/* The cancel connection ends when the server closes it: success. */
static void on_cancel_readable(molt_db_conn *c)
{
    molt_db_error e;
    molt_db_error_init(&e);
    for (;;) {
        int full = 0;
        c->in.len = 0;
        c->in_off = 0;
        c->eof = 0;
        long n = read_some(c, 256, &full, &e);
        if (n > 0)
            continue; /* the server says nothing here; ignore it */
        if (n == 0)
            return;
        if (c->eof || strstr(e.message, "reset") != NULL) {
            molt_db_error_clear(&e);
            finish_connect(c, MOLT_DB_OK, NULL);
            return;
        }
        note_failure(c, &e);
        molt_db_error_clear(&e);
        fail_connect(c, MOLT_DB_EIO);
        return;
    }
}

static void send_startup(molt_db_conn *c)
{
    const molt_db_conninfo *ci = c->ci;
    if (c->cancel_mode) {
        send_cancel_request(c);
        return;
    }
    const char *names[8], *values[8];
    size_t n = 0;
    names[n] = "user"; values[n++] = ci->user;
    names[n] = "database"; values[n++] = ci->dbname;
    names[n] = "client_encoding";
    values[n++] = ci->client_encoding ? ci->client_encoding : "UTF8";
    if (ci->application_name) {
        names[n] = "application_name"; values[n++] = ci->application_name;
    }
    if (ci->options) {
        names[n] = "options"; values[n++] = ci->options;
    }
    molt_db_buf_reset(&c->out);
    c->out_off = 0;
    c->state = MOLT_DB_CONN_STARTUP;
    molt_db_error e;
    molt_db_error_init(&e);
    if (molt_db_proto_write_startup(&c->out, names, values, n) != MOLT_DB_OK) {
        molt_db_error_set(&e, MOLT_DB_ENOMEM, "out of memory");
        note_failure(c, &e);
        fail_connect(c, MOLT_DB_ENOMEM);
        molt_db_error_clear(&e);
        return;
    }
    if (flush_out(c, &e) != MOLT_DB_OK) {
        note_failure(c, &e);
        molt_db_error_clear(&e);
        next_addr(c);
    }
}

/* ---- authentication ---------------------------------------------------- */

static int auth_fail(molt_db_conn *c, int code, const char *msg)
{
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, code, "%s", msg);
    note_failure(c, &e);
    molt_db_error_clear(&e);
    return code;
}

static const char *password_or_null(const molt_db_conn *c)
{
    return cur_host(c)->password;
}

static int send_out(molt_db_conn *c, molt_db_error *e)
{
    if (molt_db_buf_ok(&c->out) != MOLT_DB_OK)
        return molt_db_error_set(e, MOLT_DB_ENOMEM, "out of memory");
    return flush_out(c, e);
}

/* Sends what an authentication step appended to the send buffer when rc
 * says the step went well; notes the failure (e's, or `what`) otherwise.
 * Clears e. */
static int send_auth(molt_db_conn *c, int rc, molt_db_error *e, const char *what)
{
    if (rc == MOLT_DB_OK)
        rc = send_out(c, e);
    if (rc != MOLT_DB_OK) {
        if (e->code == MOLT_DB_OK)
            molt_db_error_set(e, rc, "%s", what);
        note_failure(c, e);
    }
    molt_db_error_clear(e);
    return rc;
}

static int handle_sasl(molt_db_conn *c, const molt_db_auth_msg *am)
{
    int plus_offered = 0, plain_offered = 0;
    size_t pos = 0;
    const char *mech;
    int r;
    while ((r = molt_db_proto_next_sasl_mechanism(am, &pos, &mech)) == 1) {
        if (strcmp(mech, "SCRAM-SHA-256-PLUS") == 0)
            plus_offered = 1;
        else if (strcmp(mech, "SCRAM-SHA-256") == 0)
            plain_offered = 1;
    }
    if (r < 0)
        return auth_fail(c, MOLT_DB_EPROTO, "malformed SASL mechanism list");
    int use_plus = plus_offered && c->ssl != NULL &&
                   c->ci->channel_binding != MOLT_DB_CHANNEL_BINDING_DISABLE;
    if (c->ci->channel_binding == MOLT_DB_CHANNEL_BINDING_REQUIRE && !use_plus)
        return auth_fail(c, MOLT_DB_EAUTH,
                         "channel binding is required, but the server did not "
                         "offer SCRAM-SHA-256-PLUS over TLS");
    if (!use_plus && !plain_offered)
        return auth_fail(c, MOLT_DB_EAUTH,
                         "none of the server's SASL mechanisms is supported");
    const char *pw = password_or_null(c);
    if (pw == NULL)
        return auth_fail(c, MOLT_DB_EAUTH,
                         "password authentication is required, but no password "
                         "was given (password=, PGPASSWORD or a passfile)");
    uint8_t cb[64];
    int cblen = 0;
    molt_db_error e;
    molt_db_error_init(&e);
    if (use_plus) {
        cblen = molt_db__tls_end_point(c, cb, &e);
        if (cblen <= 0) {
            note_failure(c, &e);
            molt_db_error_clear(&e);
            return MOLT_DB_ETLS;
        }
    }
    molt_db_buf first;
    molt_db_buf_init(&first);
    int rc = molt_db_scram_init(&c->scram, pw, use_plus ? cb : NULL,
                                (size_t)cblen, &e);
    if (rc == MOLT_DB_OK && !use_plus && c->ssl != NULL &&
        c->ci->channel_binding != MOLT_DB_CHANNEL_BINDING_DISABLE)
        molt_db_scram_set_cb_supported(&c->scram);
    if (rc == MOLT_DB_OK)
        rc = molt_db_scram_client_first(&c->scram, &first, &e);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_sasl_initial(
            &c->out, use_plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256",
            first.data, first.len);
    molt_db_buf_free(&first);
    c->sasl_used = 1;
    return send_auth(c, rc, &e, "could not start SCRAM authentication");
}

static int handle_auth(molt_db_conn *c, const molt_db_msg *msg)
{
    molt_db_auth_msg am;
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = molt_db_proto_read_auth(msg, &am, &e);
    if (rc != MOLT_DB_OK) {
        note_failure(c, &e);
        molt_db_error_clear(&e);
        return rc;
    }
    const char *pw = password_or_null(c);
    switch (am.code) {
    case MOLT_DB_AUTH_OK:
        if (c->ci->channel_binding == MOLT_DB_CHANNEL_BINDING_REQUIRE &&
            !c->sasl_used)
            return auth_fail(c, MOLT_DB_EAUTH,
                             "channel binding required, but the server "
                             "authenticated the client without it");
        if (c->sasl_used && c->scram.state != MOLT_DB_SCRAM_DONE)
            return auth_fail(c, MOLT_DB_EAUTH,
                             "server ended SCRAM authentication early");
        c->auth_ok = 1;
        return MOLT_DB_OK;
    case MOLT_DB_AUTH_CLEARTEXT:
    case MOLT_DB_AUTH_MD5: {
        if (c->ci->channel_binding == MOLT_DB_CHANNEL_BINDING_REQUIRE)
            return auth_fail(c, MOLT_DB_EAUTH,
                             "channel binding required, but the server asked "
                             "for a non-SCRAM password");
        if (pw == NULL)
            return auth_fail(c, MOLT_DB_EAUTH,
                             "password authentication is required, but no "
                             "password was given (password=, PGPASSWORD or a "
                             "passfile)");
        if (am.code == MOLT_DB_AUTH_CLEARTEXT) {
            rc = molt_db_proto_write_password(&c->out, pw);
        } else {
            if (am.len != 4)
                return auth_fail(c, MOLT_DB_EPROTO, "malformed MD5 salt");
            char md5[MOLT_DB_MD5_PASSWORD_LEN];
            rc = molt_db_md5_password(c->ci->user, pw, am.data, md5);
            if (rc == MOLT_DB_OK)
                rc = molt_db_proto_write_password(&c->out, md5);
        }
        return send_auth(c, rc, &e, "could not send the password");
    }
    case MOLT_DB_AUTH_SASL:
        return handle_sasl(c, &am);
    case MOLT_DB_AUTH_SASL_CONTINUE: {
        if (!c->sasl_used)
            return auth_fail(c, MOLT_DB_EPROTO, "unexpected SASL continue");
        molt_db_buf fin;
        molt_db_buf_init(&fin);
        rc = molt_db_scram_client_final(&c->scram, am.data, am.len, &fin, &e);
        if (rc == MOLT_DB_OK)
            rc = molt_db_proto_write_sasl_response(&c->out, fin.data, fin.len);
        molt_db_buf_free(&fin);
        return send_auth(c, rc, &e, "SCRAM exchange failed");
    }
    case MOLT_DB_AUTH_SASL_FINAL:
        if (!c->sasl_used)
            return auth_fail(c, MOLT_DB_EPROTO, "unexpected SASL final");
        rc = molt_db_scram_verify_final(&c->scram, am.data, am.len, &e);
        if (rc != MOLT_DB_OK)
            note_failure(c, &e);
        molt_db_error_clear(&e);
        return rc;
    default: {
        char why[96];
        snprintf(why, sizeof why,
                 "authentication method %d (GSSAPI/SSPI/Kerberos) is not supported",
                 (int)am.code);
        return auth_fail(c, MOLT_DB_EAUTH, why);
    }
    }
}

/* One message during startup. Returns MOLT_DB_OK to go on, MOLT_DB_NEED_MORE
 * when the connection became ready or moved on (stop processing), or an
 * error (the attempt failed; already noted). */
static int startup_message(molt_db_conn *c, const molt_db_msg *msg)
{
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = MOLT_DB_OK;
    switch (msg->type) {
    case 'R':
        rc = handle_auth(c, msg);
        if (rc != MOLT_DB_OK) {
            fail_connect(c, rc);
            return MOLT_DB_NEED_MORE;
        }
        return MOLT_DB_OK;
    case 'E': {
        molt_db_error srv;
        molt_db_error_init(&srv);
        rc = molt_db_proto_read_error(msg, &srv, &e);
        if (rc != MOLT_DB_OK) {
            note_failure(c, &e);
            molt_db_error_clear(&e);
            fail_connect(c, MOLT_DB_EPROTO);
            return MOLT_DB_NEED_MORE;
        }
        /* sslmode=allow: a server refusing a plain connection gets a TLS one */
        if (c->ci->sslmode == MOLT_DB_SSLMODE_ALLOW && !c->tls_tried &&
            !c->is_unix && c->ssl == NULL &&
            strcmp(srv.sqlstate, "28000") == 0) {
            molt_db_error_clear(&srv);
            c->tls_tried = 1;
            close_fd(c);
            molt_db_buf_reset(&c->in);
            c->in_off = 0;
            try_addr(c);
            return MOLT_DB_NEED_MORE;
        }
        note_failure(c, &srv);
        molt_db_error_clear(&srv);
        fail_connect(c, MOLT_DB_ESERVER);
        return MOLT_DB_NEED_MORE;
    }
    case 'K':
        rc = molt_db_proto_read_backend_key(msg, &c->backend_pid, &c->secret_key, &e);
        break;
    case 'S': {
        const char *name, *value;
        rc = molt_db_proto_read_parameter_status(msg, &name, &value, &e);
        if (rc == MOLT_DB_OK && molt_db__conn_set_param(c, name, value) != MOLT_DB_OK)
            rc = molt_db_error_set(&e, MOLT_DB_ENOMEM, "out of memory");
        break;
    }
    case 'N':
        if (c->opts.on_notice != NULL) {
            molt_db_error notice;
            molt_db_error_init(&notice);
            if (molt_db_proto_read_error(msg, &notice, &e) == MOLT_DB_OK)
                c->opts.on_notice(c, &notice, c->opts.notice_ud);
            molt_db_error_clear(&notice);
        }
        break;
    case 'v':
        break; /* we ask for 3.0 without options: nothing to negotiate */
    case 'Z': {
        rc = molt_db_proto_read_ready(msg, &c->tx_status, &e);
        if (rc != MOLT_DB_OK)
            break;
        if (!c->auth_ok) {
            rc = molt_db_error_set(&e, MOLT_DB_EPROTO,
                                   "server was ready before authentication ended");
            break;
        }
        const char *why = NULL;
        if (!molt_db__session_matches_target(c, &why)) {
            /* as libpq: the server is not asked again on another address */
            fail_attempt_msg(c, MOLT_DB_ECONNECT, "%s", why);
            next_host(c);
            return MOLT_DB_NEED_MORE;
        }
        c->state = MOLT_DB_CONN_READY;
        molt_db__loop_timer(&c->loop, 0);
        molt_db_error_clear(&c->connect_err);
        /* Send what was queued before the connection was ready. */
        molt_db__conn_send_waiting(c);
        finish_connect(c, MOLT_DB_OK, NULL);
        return MOLT_DB_NEED_MORE;
    }
    default:
        rc = molt_db_error_set(&e, MOLT_DB_EPROTO,
                               "unexpected message '%c' during startup",
                               msg->type);
    }
    if (rc != MOLT_DB_OK) {
        note_failure(c, &e);
        molt_db_error_clear(&e);
        fail_connect(c, rc);
        return MOLT_DB_NEED_MORE;
    }
    return MOLT_DB_OK;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads what the socket has into c->in. Returns bytes read (> 0; *full
 * says whether they filled the room), 0 when nothing is available now, or a
 * negative code with err filled (EOF is MOLT_DB_EIO). */
static long read_some(molt_db_conn *c, size_t want, int *full,
                      molt_db_error *err)
{
    if (c->in_off > 0 && c->in_off == c->in.len) {
        c->in.len = 0;
        c->in_off = 0;
    }
    if (c->in.cap - c->in.len < want && c->in_off > 0) {
        molt_db_buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
    if (molt_db_buf_reserve(&c->in, want) != MOLT_DB_OK) {
        c->in.failed = 0;
        return molt_db_error_set(err, MOLT_DB_ENOMEM,
                                 "out of memory for a %zu-byte message", want);
    }
    size_t room = c->in.cap - c->in.len;
    long n;
    int again = 0;
    if (c->ssl != NULL) {
        n = molt_db__tls_read(c, c->in.data + c->in.len, room, &again, err);
    } else {
        do {
            n = recv(c->fd, c->in.data + c->in.len, room, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            again = 1;
        else if (n < 0)
            return molt_db_error_set(err, MOLT_DB_EIO,
                                     "could not receive data from the server: %s",
                                     strerror(errno));
    }
    if (n < 0)
        return again ? 0 : (err ? err->code : MOLT_DB_EIO);
    if (n == 0) {
        c->eof = 1;
        return molt_db_error_set(err, MOLT_DB_EIO,
                                 "server closed the connection unexpectedly");
    }
    c->in.len += (size_t)n;
    c->bytes_in += (uint64_t)n;
    *full = (size_t)n == room;
    return n;
}

/* Processes whole messages in c->in. Returns MOLT_DB_OK, MOLT_DB_NEED_MORE
 * with *need set when a message is incomplete, or a fatal code. */
static int process_input(molt_db_conn *c, size_t *need, molt_db_error *err)
{
    for (;;) {
        if (c->close_requested || c->state == MOLT_DB_CONN_BROKEN)
            return MOLT_DB_OK;
        if (reading_paused(c)) {
            /* a callback paused reading: the rest waits for the resume */
            c->in_held = c->in_off < c->in.len;
            return MOLT_DB_OK;
        }
        molt_db_msg msg;
        size_t consumed = 0, total = 0;
        int rc = molt_db_proto_next(c->in.data + c->in_off, c->in.len - c->in_off,
                                    &msg, &consumed, &total, err);
        if (rc == MOLT_DB_NEED_MORE) {
            *need = total;
            return MOLT_DB_NEED_MORE;
        }
        if (rc != MOLT_DB_OK)
            return rc;
        c->in_off += consumed;
        if (c->state == MOLT_DB_CONN_STARTUP) {
            rc = startup_message(c, &msg);
            if (rc != MOLT_DB_OK)
                return MOLT_DB_OK; /* ready, moved on, or failed */
            continue;
        }
        rc = molt_db__conn_dispatch(c, &msg, err);
        if (rc != MOLT_DB_OK) {
            if (err->code == MOLT_DB_OK)
                molt_db_error_set(err, rc, "protocol error: unexpected message "
                                  "'%c' while reading results", msg.type);
            return rc;
        }
    }
}

static void on_readable(molt_db_conn *c)
{
    molt_db_error e;
    molt_db_error_init(&e);
    size_t want = MOLT_DB_READ_CHUNK;
    int ready_before = c->state == MOLT_DB_CONN_READY;
    c->dispatching = ready_before;
    /* bytes held back by a pause are dispatched before reading more */
    int held = c->in_held;
    c->in_held = 0;
    for (;;) {
        int full = 1;
        long n = held ? 1 : read_some(c, want, &full, &e);
        held = 0;
        if (n == 0)
            break;
        if (n < 0) {
            if (c->state == MOLT_DB_CONN_READY) {
                c->dispatching = 0;
                molt_db__conn_fail(c, (int)n, &e);
            } else {
                note_failure(c, &e);
                next_addr(c);
            }
            molt_db_error_clear(&e);
            return;
        }
        size_t need = 0;
        int rc = process_input(c, &need, &e);
        if (rc == MOLT_DB_NEED_MORE) {
            size_t have = c->in.len - c->in_off;
            want = need > have ? need - have : MOLT_DB_READ_CHUNK;
            if (want < MOLT_DB_READ_CHUNK)
                want = MOLT_DB_READ_CHUNK;
        } else if (rc != MOLT_DB_OK) {
            if (c->state == MOLT_DB_CONN_READY) {
                c->dispatching = 0;
                molt_db__conn_fail(c, rc, &e);
            } else if (c->state == MOLT_DB_CONN_STARTUP) {
                note_failure(c, &e);
                fail_connect(c, rc);
            }
            molt_db_error_clear(&e);
            return;
        }
        if (c->close_requested || c->fd < 0 || reading_paused(c) ||
            (c->state != MOLT_DB_CONN_READY && c->state != MOLT_DB_CONN_STARTUP))
            break;
        if (c->state == MOLT_DB_CONN_READY && !c->dispatching)
            c->dispatching = 1; /* became ready in this batch */
        /* A read that did not fill the buffer drained the socket: save the
         * recv that would only say EAGAIN (TLS may still hold a record). */
        if (!full && (c->ssl == NULL || !molt_db__tls_pending(c)))
            break;
    }
    c->dispatching = 0;
    if (c->state == MOLT_DB_CONN_READY && !c->close_requested &&
        (c->out_off < c->out.len || c->batch_n > 0) && flush_now(c) == MOLT_DB_OK)
        molt_db__conn_copy_drained(c); /* what callbacks queued */
}

void molt_db__conn_on_io(molt_db_conn *c, int readable, int writable)
{
    if (c->close_requested)
        return;
    switch (c->state) {
    case MOLT_DB_CONN_CONNECTING:
        if (writable || readable)
            on_connected(c);
        return;
    case MOLT_DB_CONN_SSL_ANSWER:
        if (c->out_off < c->out.len) {
            molt_db_error e;
            molt_db_error_init(&e);
            if (flush_out(c, &e) != MOLT_DB_OK) {
                note_failure(c, &e);
                molt_db_error_clear(&e);
                next_addr(c);
                return;
            }
        }
        if (readable)
            on_ssl_answer(c);
        return;
    case MOLT_DB_CONN_TLS_HANDSHAKE: {
        molt_db_error e;
        molt_db_error_init(&e);
        int rc = molt_db__tls_handshake(c, &e);
        if (rc == MOLT_DB_OK)
            send_startup(c);
        else if (rc != MOLT_DB_NEED_MORE)
            tls_failed(c, &e);
        return;
    }
    case MOLT_DB_CONN_CANCEL_SENT:
        if (c->out_off < c->out.len) {
            molt_db_error e;
            molt_db_error_init(&e);
            if (flush_out(c, &e) != MOLT_DB_OK) {
                note_failure(c, &e);
                molt_db_error_clear(&e);
                fail_connect(c, MOLT_DB_EIO);
                return;
            }
        }
        if (readable)
            on_cancel_readable(c);
        return;
    case MOLT_DB_CONN_STARTUP:
    case MOLT_DB_CONN_READY:
        if (writable && (c->out_off < c->out.len || c->tls_want_write)) {
            molt_db_error e;
            molt_db_error_init(&e);
            int wrc = flush_out(c, &e);
            if (wrc != MOLT_DB_OK) {
                if (c->state == MOLT_DB_CONN_READY) {
                    molt_db__conn_fail(c, wrc, &e);
                } else {
                    note_failure(c, &e);
                    next_addr(c);
                }
                molt_db_error_clear(&e);
                return;
            }
            if (c->tls_want_write) {
                c->tls_want_write = 0;
                readable = 1;
            }
            molt_db__conn_copy_drained(c);
        }
        if (readable && !c->close_requested && c->fd >= 0 && !reading_paused(c))
            on_readable(c);
        /* re-arm a watcher libuv stopped after an error on the fd */
        if (!c->close_requested && c->fd >= 0 &&
            (c->state == MOLT_DB_CONN_READY || c->state == MOLT_DB_CONN_STARTUP))
            update_watch(c);
        return;
    default:
        return;
    }
}

void molt_db__conn_on_timer(molt_db_conn *c)
{
    if (c->close_requested)
        return;
    if (c->state == MOLT_DB_CONN_READY || c->state == MOLT_DB_CONN_BROKEN)
        return;
    if (!c->started) {
        /* the first tick after molt_db_conn_connect: start */
        c->started = 1;
        try_host(c);
        return;
    }
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, MOLT_DB_ETIMEDOUT, "timeout expired after %d ms",
                      c->ci->connect_timeout_ms);
    note_failure(c, &e);
    molt_db_error_clear(&e);
    c->connect_err.code = MOLT_DB_ETIMEDOUT;
    molt_db__loop_cancel_resolve(&c->loop);
    /* libpq moves to the next host on a timeout, not the next address. */
    next_host(c);
}

/* ---- public ------------------------------------------------------------ */

int molt_db_conn_connect(molt_db_loop *loop, const molt_db_conninfo *ci,
                         const molt_db_conn_options *opts,
                         molt_db_connect_cb cb, void *ud, molt_db_conn **out,
                         molt_db_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (loop == NULL || ci == NULL || ci->nhosts == 0 || out == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "molt_db_conn_connect: loop, conninfo with a "
                                 "host, and out are required");
    molt_db_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    c->fd = -1;
    c->ci = molt_db__conninfo_dup(ci);
    if (c->ci == NULL) {
        free(c);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    }
    if (c->ci->load_balance_random)
        molt_db__shuffle_hosts(c->ci);
    if (molt_db__loop_init(&c->loop, loop) < 0) {
        molt_db_conninfo_free(c->ci);
        free(c);
        return molt_db_error_set(err, MOLT_DB_ENOMEM,
                                 "could not init the loop handles");
    }
    if (opts != NULL)
        c->opts = *opts;
    c->connect_cb = cb;
    c->connect_ud = ud;
    c->host_idx = 0;
    /* Start on the next loop iteration so cb never runs before we return. */
    molt_db__loop_timer(&c->loop, 1);
    c->state = MOLT_DB_CONN_CONNECTING;
    *out = c;
    return MOLT_DB_OK;
}

int molt_db_conn_is_ready(const molt_db_conn *c)
{
    return c != NULL && c->state == MOLT_DB_CONN_READY && !c->close_requested;
}

char molt_db_conn_tx_status(const molt_db_conn *c)
{
    return c->tx_status;
}

const char *molt_db_conn_parameter(const molt_db_conn *c, const char *name)
{
    for (size_t i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].name, name) == 0)
            return c->params[i].value;
    return NULL;
}

int molt_db__conn_set_param(molt_db_conn *c, const char *name, const char *value)
{
    char *v = strdup(value);
    if (v == NULL)
        return MOLT_DB_ENOMEM;
    for (size_t i = 0; i < c->nparams; i++) {
        if (strcmp(c->params[i].name, name) == 0) {
            free(c->params[i].value);
            c->params[i].value = v;
            return MOLT_DB_OK;
        }
    }
    if (c->nparams == c->params_cap) {
        size_t cap = c->params_cap ? c->params_cap * 2 : 16;
        molt_db_pstatus *p = realloc(c->params, cap * sizeof *p);
        if (p == NULL) {
            free(v);
            return MOLT_DB_ENOMEM;
        }
        c->params = p;
        c->params_cap = cap;
    }
    char *n = strdup(name);
    if (n == NULL) {
        free(v);
        return MOLT_DB_ENOMEM;
    }
    c->params[c->nparams].name = n;
    c->params[c->nparams].value = v;
    c->nparams++;
    return MOLT_DB_OK;
}

int molt_db_conn_backend_key(const molt_db_conn *c, int32_t *pid,
                             int32_t *secret_key)
{
    if (c->state != MOLT_DB_CONN_READY)
        return MOLT_DB_ESTATE;
    *pid = c->backend_pid;
    *secret_key = c->secret_key;
    return MOLT_DB_OK;
}

int molt_db_conn_uses_tls(const molt_db_conn *c)
{
    return c->ssl != NULL;
}

void molt_db_conn_bytes(const molt_db_conn *c, uint64_t *in, uint64_t *out)
{
    *in = c->bytes_in;
    *out = c->bytes_out;
}

size_t molt_db_conn_pending(const molt_db_conn *c)
{
    return c->npending;
}

void molt_db_conn_pause_reading(molt_db_conn *c)
{
    if (c == NULL || c->read_paused)
        return;
    c->read_paused = 1;
    update_watch(c);
}

void molt_db_conn_resume_reading(molt_db_conn *c)
{
    if (c == NULL || !c->read_paused)
        return;
    c->read_paused = 0;
    if (c->close_requested || c->fd < 0)
        return;
    update_watch(c);
    /* Held bytes (and a TLS record OpenSSL decrypted) raise no readiness
     * event: dispatch them from the loop, never inside this call. */
    c->resume_due = 1;
    molt_db__loop_defer(&c->loop);
}

int molt_db_conn_reading_paused(const molt_db_conn *c)
{
    return c != NULL && c->read_paused;
}
