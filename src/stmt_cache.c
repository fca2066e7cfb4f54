/*
 * Per-connection statement cache: a hash table keyed by SQL text and
 * parameter types, with an LRU list. It only keeps the bookkeeping; the
 * pool sends the Parse and Close messages (pool_request.c).
 *
 * A statement's name is "molt_" + a random nonce of the connection + the
 * hash of its key: whoever else runs SQL on the connection cannot name a
 * statement the pool will prepare, nor compute it from the SQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "pool_internal.h"

/* FNV-1a 64 over the SQL and the parameter type oids (the table's key;
 * the name adds the connection's nonce). */
uint64_t molt_db__sc_hash(const char *sql, size_t nparams,
                          const uint32_t *ptypes)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *s = (const unsigned char *)sql; *s; s++) {
        h ^= *s;
        h *= 0x100000001b3ULL;
    }
    for (size_t i = 0; i < nparams; i++) {
        for (int k = 0; k < 4; k++) {
            h ^= (ptypes[i] >> (8 * k)) & 0xff;
            h *= 0x100000001b3ULL;
        }
        h ^= 0xff; /* separates the lists (1 param of oid 0 vs none) */
        h *= 0x100000001b3ULL;
    }
    return h;
}

int molt_db__sc_init(molt_db_stmt_cache *c, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    if (RAND_bytes((unsigned char *)&c->nonce, sizeof c->nonce) != 1)
        return MOLT_DB_ENOMEM;
    size_t n = 16;
    while (n < cap * 2)
        n *= 2;
    c->buckets = calloc(n, sizeof *c->buckets);
    if (c->buckets == NULL)
        return MOLT_DB_ENOMEM;
    c->nbuckets = n;
    return MOLT_DB_OK;
}

static int same_key(const molt_db_sc_entry *e, const char *sql,
                    size_t nparams, const uint32_t *ptypes)
{
    if (e->nparams != nparams || strcmp(e->sql, sql) != 0)
        return 0;
    return nparams == 0 ||
           memcmp(e->ptypes, ptypes, nparams * sizeof *ptypes) == 0;
}

static void lru_remove(molt_db_stmt_cache *c, molt_db_sc_entry *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        c->mru = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        c->lru = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push_front(molt_db_stmt_cache *c, molt_db_sc_entry *e)
{
    e->lprev = NULL;
    e->lnext = c->mru;
    if (c->mru)
        c->mru->lprev = e;
    c->mru = e;
    if (c->lru == NULL)
        c->lru = e;
}

molt_db_sc_entry *molt_db__sc_find(molt_db_stmt_cache *c, uint64_t hash,
                                   const char *sql, size_t nparams,
                                   const uint32_t *ptypes)
{
    for (molt_db_sc_entry *e = c->buckets[hash & (c->nbuckets - 1)]; e;
         e = e->hnext) {
        if (e->hash == hash && same_key(e, sql, nparams, ptypes)) {
            if (c->mru != e) {
                lru_remove(c, e);
                lru_push_front(c, e);
            }
            return e;
        }
    }
    return NULL;
}

int molt_db__sc_hash_taken(molt_db_stmt_cache *c, uint64_t hash)
{
    for (molt_db_sc_entry *e = c->buckets[hash & (c->nbuckets - 1)]; e;
         e = e->hnext)
        if (e->hash == hash)
            return 1;
    return 0;
}

molt_db_sc_entry *molt_db__sc_insert(molt_db_stmt_cache *c, uint64_t hash,
                                     const char *sql, size_t nparams,
                                     const uint32_t *ptypes)
{
    molt_db_sc_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->sql = strdup(sql);
    if (nparams > 0)
        e->ptypes = malloc(nparams * sizeof *ptypes);
    if (e->sql == NULL || (nparams > 0 && e->ptypes == NULL)) {
        free(e->sql);
        free(e->ptypes);
        free(e);
        return NULL;
    }
    if (nparams > 0)
        memcpy(e->ptypes, ptypes, nparams * sizeof *ptypes);
    e->nparams = nparams;
    e->hash = hash;
    snprintf(e->name, sizeof e->name, "molt_%016llx%016llx",
             (unsigned long long)c->nonce, (unsigned long long)hash);
    size_t b = hash & (c->nbuckets - 1);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    lru_push_front(c, e);
    e->linked = 1;
    c->count++;
    return e;
}

void molt_db__sc_unlink(molt_db_stmt_cache *c, molt_db_sc_entry *e)
{
    if (!e->linked)
        return;
    molt_db_sc_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    e->hnext = NULL;
    lru_remove(c, e);
    e->linked = 0;
    c->count--;
}

molt_db_sc_entry *molt_db__sc_victim(molt_db_stmt_cache *c)
{
    for (molt_db_sc_entry *e = c->lru; e; e = e->lprev)
        if (e->refs == 0 && e->stmt != NULL)
            return e;
    return NULL;
}

void molt_db__sc_entry_free(molt_db_sc_entry *e)
{
    if (e == NULL)
        return;
    molt_db_stmt_free(e->stmt);
    free(e->sql);
    free(e->ptypes);
    free(e);
}

void molt_db__sc_clear(molt_db_stmt_cache *c)
{
    while (c->mru) {
        molt_db_sc_entry *e = c->mru;
        molt_db__sc_unlink(c, e);
        if (e->refs == 0)
            molt_db__sc_entry_free(e);
    }
    free(c->buckets);
    c->buckets = NULL;
    c->nbuckets = 0;
}
