/*
 * molt_db_conn_cancel: a CancelRequest over a second connection to the very
 * address the main connection uses (TLS when it uses TLS). The second
 * connection reuses the connect state machine in "cancel mode": instead of a
 * startup it sends the backend key, and it succeeds when the server closes
 * it. It has its own deadline and never blocks, and it outlives the main
 * connection if that closes first.
 */
#include "conn_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

molt_db_conninfo *molt_db__conninfo_dup(const molt_db_conninfo *ci);

typedef struct cancel_call {
    molt_db_cancel_cb cb;
    void *ud;
} cancel_call;

static void on_cancel_done(molt_db_conn *cc, int status,
                           const molt_db_error *err, void *ud)
{
    (void)cc;
    cancel_call *call = ud;
    if (call->cb != NULL)
        call->cb(call->ud, status, err);
    free(call);
}

/* The numeric form of the connected peer, so the cancel goes to the same
 * server even when a name resolves to several. */
static char *peer_numeric(const molt_db_conn *c)
{
    char buf[INET6_ADDRSTRLEN];
    const void *src = NULL;
    if (c->peer.ss_family == AF_INET)
        src = &((const struct sockaddr_in *)&c->peer)->sin_addr;
    else if (c->peer.ss_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)&c->peer)->sin6_addr;
    if (src == NULL || inet_ntop(c->peer.ss_family, src, buf, sizeof buf) == NULL)
        return NULL;
    return strdup(buf);
}

int molt_db_conn_cancel(molt_db_conn *c, int timeout_ms, molt_db_cancel_cb cb,
                        void *ud)
{
    if (c == NULL || c->state != MOLT_DB_CONN_READY || c->close_requested)
        return MOLT_DB_ESTATE;
    if (timeout_ms <= 0)
        return MOLT_DB_EINVAL;
    molt_db_conninfo *ci = molt_db__conninfo_dup(c->ci);
    if (ci == NULL)
        return MOLT_DB_ENOMEM;
    /* One host: the one connected to, at the address connected to. */
    molt_db_conninfo_host *h = &ci->hosts[c->host_idx];
    if (c->host_idx != 0) {
        molt_db_conninfo_host tmp = ci->hosts[0];
        ci->hosts[0] = *h;
        *h = tmp;
    }
    ci->nhosts = 1;
    h = &ci->hosts[0];
    if (!c->is_unix) {
        char *addr = peer_numeric(c);
        if (addr == NULL) {
            molt_db_conninfo_free(ci);
            return MOLT_DB_ENOMEM;
        }
        free(h->hostaddr);
        h->hostaddr = addr;
    }
    /* the other hosts are freed with the copy: restore nhosts for free */
    ci->connect_timeout_ms = timeout_ms;
    ci->target_session_attrs = MOLT_DB_TARGET_ANY;
    if (c->ssl == NULL)
        ci->sslmode = MOLT_DB_SSLMODE_DISABLE;
    else if (ci->sslmode < MOLT_DB_SSLMODE_REQUIRE)
        ci->sslmode = MOLT_DB_SSLMODE_REQUIRE;

    cancel_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        ci->nhosts = c->ci->nhosts;
        molt_db_conninfo_free(ci);
        return MOLT_DB_ENOMEM;
    }
    call->cb = cb;
    call->ud = ud;
    molt_db_conn *cc = NULL;
    int rc = molt_db_conn_connect(c->loop.loop, ci, NULL, on_cancel_done, call,
                                  &cc, NULL);
    ci->nhosts = c->ci->nhosts;
    molt_db_conninfo_free(ci);
    if (rc != MOLT_DB_OK) {
        free(call);
        return rc;
    }
    /* Set before the first loop tick, when the attempt starts. */
    cc->cancel_mode = 1;
    cc->cancel_pid = c->backend_pid;
    cc->cancel_key = c->secret_key;
    return MOLT_DB_OK;
}
