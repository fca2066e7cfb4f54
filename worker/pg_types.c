/* The per-alias cache of non-built-in PostgreSQL type names (pg_types.h):
 * an open-addressing table oid -> name, filled by pg_type lookups. */
#include "pg_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/types.h"

typedef struct slot {
    uint32_t oid;              /* 0: empty */
    char *name;                /* NULL: pg_type has none */
} slot;

struct mw_pg_types {
    molt_db_pool *pool;
    slot *slots;
    size_t cap, n;             /* cap a power of two, n <= cap / 2 */
    struct lookup *lookups;    /* in flight */
};

/* Who waits for a lookup. */
typedef struct waiter {
    struct waiter *next;
    void (*done)(void *ud);
    void *ud;
} waiter;

/* A lookup in flight; it outlives a freed cache (t NULL) until on_done. */
typedef struct lookup {
    struct lookup *next;
    mw_pg_types *t;
    uint32_t *oids;            /* asked for: cached as unknown if not found */
    size_t n;
    waiter *waiters;
} lookup;

mw_pg_types *mw_pg_types_new(molt_db_pool *pool)
{
    mw_pg_types *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->pool = pool;
    return t;
}

void mw_pg_types_free(mw_pg_types *t)
{
    if (!t)
        return;
    for (lookup *l = t->lookups; l; l = l->next)
        l->t = NULL;
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].name);
    free(t->slots);
    free(t);
}

static size_t hash(uint32_t oid, size_t cap)
{
    return (size_t)(oid * 2654435761u) & (cap - 1);
}

static const slot *find(const mw_pg_types *t, uint32_t oid)
{
    if (!t || t->cap == 0)
        return NULL;
    for (size_t i = hash(oid, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].oid == oid)
            return &t->slots[i];
        if (t->slots[i].oid == 0)
            return NULL;
    }
}

const char *mw_pg_types_name(const mw_pg_types *t, uint32_t oid)
{
    const slot *s = find(t, oid);
    return s ? s->name : NULL;
}

static int known(const mw_pg_types *t, uint32_t oid)
{
    return oid == 0 || molt_db_type_name(oid) != NULL || find(t, oid) != NULL;
}

int mw_pg_types_missing(const mw_pg_types *t, const uint32_t *oids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!known(t, oids[i]))
            return 1;
    return 0;
}

/* Records oid -> name (name copied; NULL: none). 0 or -1 (ENOMEM). */
static int put(mw_pg_types *t, uint32_t oid, const char *name, size_t len)
{
    if (find(t, oid))
        return 0;
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        slot *s = calloc(cap, sizeof *s);
        if (!s)
            return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].oid)
                continue;
            size_t k = hash(t->slots[i].oid, cap);
            while (s[k].oid)
                k = (k + 1) & (cap - 1);
            s[k] = t->slots[i];
        }
        free(t->slots);
        t->slots = s;
        t->cap = cap;
    }
    char *copy = NULL;
    if (name) {
        copy = malloc(len + 1);
        if (!copy)
            return -1;
        memcpy(copy, name, len);
        copy[len] = 0;
    }
    size_t k = hash(oid, t->cap);
    while (t->slots[k].oid)
        k = (k + 1) & (t->cap - 1);
    t->slots[k].oid = oid;
    t->slots[k].name = copy;
    t->n++;
    return 0;
}

/* Rows are (oid::text, typname::text): text in either result format. */
static int on_row(void *ud, const molt_db_field *f, size_t n)
{
    lookup *l = ud;
    if (!l->t || n != 2 || f[0].len <= 0 || f[0].len > 10 || f[1].len < 0)
        return 0;
    char num[12];
    memcpy(num, f[0].data, (size_t)f[0].len);
    num[f[0].len] = 0;
    uint32_t oid = (uint32_t)strtoul(num, NULL, 10);
    if (oid && put(l->t, oid, (const char *)f[1].data, (size_t)f[1].len) != 0)
        return MOLT_DB_ENOMEM;
    return 0;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    (void)err;
    lookup *l = ud;
    mw_pg_types *t = l->t;
    if (t) {
        /* an OID pg_type does not have is shown as a number from now on;
         * after a failure (timeout, no connection) a later query asks again */
        if (status == MOLT_DB_OK)
            for (size_t i = 0; i < l->n; i++)
                put(t, l->oids[i], NULL, 0);
        for (lookup **p = &t->lookups; *p; p = &(*p)->next)
            if (*p == l) {
                *p = l->next;
                break;
            }
    }
    while (l->waiters) {
        waiter *wt = l->waiters;
        l->waiters = wt->next;
        wt->done(wt->ud);
        free(wt);
    }
    free(l->oids);
    free(l);
}

/* The lookup in flight that asks for oid, or NULL. */
static lookup *in_flight(const mw_pg_types *t, uint32_t oid)
{
    for (lookup *l = t->lookups; l; l = l->next)
        for (size_t i = 0; i < l->n; i++)
            if (l->oids[i] == oid)
                return l;
    return NULL;
}

static int wait_for(lookup *l, void (*done)(void *ud), void *ud)
{
    if (!done)
        return 0;
    waiter *wt = malloc(sizeof *wt);
    if (!wt)
        return -1;
    wt->done = done;
    wt->ud = ud;
    wt->next = l->waiters;
    l->waiters = wt;
    return 0;
}

int mw_pg_types_resolve(mw_pg_types *t, const uint32_t *oids, size_t n,
                        int timeout_ms, void (*done)(void *ud), void *ud)
{
    /* every missing OID already asked for: wait for the lookup in flight
     * (the one asking for the first; concurrent queries miss alike) */
    lookup *first = NULL;
    int all_asked = 1, any = 0;
    for (size_t i = 0; i < n; i++) {
        if (known(t, oids[i]))
            continue;
        lookup *f = in_flight(t, oids[i]);
        any = 1;
        all_asked &= f != NULL;
        if (!first)
            first = f;
    }
    if (!any)
        return -1;
    if (all_asked)
        return wait_for(first, done, ud);
    lookup *l = calloc(1, sizeof *l);
    size_t cap = 96 + n * 12;
    char *sql = malloc(cap);
    if (l)
        l->oids = malloc((n ? n : 1) * sizeof *l->oids);
    if (!l || !sql || !l->oids) {
        if (l)
            free(l->oids);
        free(l);
        free(sql);
        return -1;
    }
    /* the OIDs are numbers we format ourselves: inlined, so every
     * statement mode (also simple, which takes no parameters) can run it */
    size_t len = (size_t)snprintf(sql, cap, "SELECT oid::text, typname::text "
                                  "FROM pg_catalog.pg_type WHERE oid IN (");
    for (size_t i = 0; i < n; i++) {
        if (known(t, oids[i]))
            continue;
        int dup = 0;
        for (size_t k = 0; k < l->n; k++)
            dup |= l->oids[k] == oids[i];
        if (dup)
            continue;
        l->oids[l->n++] = oids[i];
        len += (size_t)snprintf(sql + len, cap - len, "%s%u", l->n > 1 ? "," : "",
                                (unsigned)oids[i]);
    }
    snprintf(sql + len, cap - len, ")");
    int rc = -1;
    if (l->n > 0 && wait_for(l, done, ud) == 0) {
        l->t = t;
        molt_db_result_handler h = {NULL, on_row, NULL, on_done, l};
        molt_db_pool_query_options o = {0};
        o.timeout_ms = timeout_ms;
        o.tag = "molt_type_names";
        rc = molt_db_pool_query(t->pool, sql, 0, NULL, &h, &o, NULL) == MOLT_DB_OK ? 0 : -1;
    }
    free(sql);
    if (rc != 0) {
        free(l->waiters);
        free(l->oids);
        free(l);
        return -1;
    }
    l->next = t->lookups;
    t->lookups = l;
    return 0;
}
