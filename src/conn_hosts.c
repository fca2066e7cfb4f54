/*
 * Which server a connect attempt accepts, and in what order it tries them:
 * libpq's target_session_attrs (with prefer-standby's two passes) and
 * load_balance_hosts=random.
 */
#include "conn_internal.h"

#include <string.h>

#include <openssl/rand.h>

/* A uniform index below n (n >= 1). The order only spreads load, so a
 * failing RAND_bytes falls back to the first choice rather than failing. */
static size_t random_below(size_t n)
{
    uint64_t r = 0;
    if (n <= 1 || RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        return 0;
    return (size_t)(r % n);
}

void molt_db__shuffle_hosts(molt_db_conninfo *ci)
{
    for (size_t i = ci->nhosts; i > 1; i--) {
        size_t j = random_below(i);
        molt_db_host t = ci->hosts[i - 1];
        ci->hosts[i - 1] = ci->hosts[j];
        ci->hosts[j] = t;
    }
}

/* Swaps what two list nodes address, leaving the links (and what
 * freeaddrinfo walks) as they are. */
static void swap_addr(struct addrinfo *a, struct addrinfo *b)
{
    struct addrinfo t = *a;
    a->ai_family = b->ai_family;
    a->ai_socktype = b->ai_socktype;
    a->ai_protocol = b->ai_protocol;
    a->ai_addrlen = b->ai_addrlen;
    a->ai_addr = b->ai_addr;
    b->ai_family = t.ai_family;
    b->ai_socktype = t.ai_socktype;
    b->ai_protocol = t.ai_protocol;
    b->ai_addrlen = t.ai_addrlen;
    b->ai_addr = t.ai_addr;
}

void molt_db__shuffle_addrs(struct addrinfo *list)
{
    size_t n = 0;
    for (struct addrinfo *a = list; a != NULL; a = a->ai_next)
        n++;
    /* Fisher-Yates from the front: node k takes one of nodes k..n-1 */
    size_t k = 0;
    for (struct addrinfo *a = list; a != NULL && k + 1 < n; a = a->ai_next, k++) {
        size_t j = k + random_below(n - k);
        struct addrinfo *b = a;
        for (size_t s = k; s < j; s++)
            b = b->ai_next;
        if (b != a)
            swap_addr(a, b);
    }
}

/* PostgreSQL 14+ reports in_hot_standby and default_transaction_read_only
 * at startup; a target other than "any" needs them (libpq would ask older
 * servers with a query instead). */
int molt_db__session_matches_target(const molt_db_conn *c, const char **why)
{
    molt_db_target_session t = c->ci->target_session_attrs;
    if (t == MOLT_DB_TARGET_ANY ||
        (t == MOLT_DB_TARGET_PREFER_STANDBY && c->prefer_standby_pass2))
        return 1;
    const char *ro = molt_db_conn_parameter(c, "default_transaction_read_only");
    const char *sb = molt_db_conn_parameter(c, "in_hot_standby");
    if (sb == NULL) {
        *why = "target_session_attrs needs a server that reports in_hot_standby (PostgreSQL 14 or later)";
        return 0;
    }
    int standby = strcmp(sb, "on") == 0;
    int readonly = standby || (ro != NULL && strcmp(ro, "on") == 0);
    switch (t) {
    case MOLT_DB_TARGET_READ_WRITE: *why = "session is read-only"; return !readonly;
    case MOLT_DB_TARGET_READ_ONLY: *why = "session is not read-only"; return readonly;
    case MOLT_DB_TARGET_PRIMARY: *why = "server is in hot standby mode"; return !standby;
    default: /* standby, and prefer-standby's first pass */
        *why = "server is not in hot standby mode";
        return standby;
    }
}

int molt_db__conn_next_pass(molt_db_conn *c)
{
    if (c->ci->target_session_attrs != MOLT_DB_TARGET_PREFER_STANDBY ||
        c->prefer_standby_pass2)
        return 0;
    c->prefer_standby_pass2 = 1;
    c->host_idx = 0;
    return 1;
}
