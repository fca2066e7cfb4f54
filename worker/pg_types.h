/*
 * Names of PostgreSQL types the library does not know (enums, domains,
 * composites, extension types, arrays of them), per alias: an OID seen in a
 * result for the first time is looked up in pg_type once, through the
 * alias's pool, and cached for the worker's life (also when pg_type has no
 * such row: the OID is then shown as a number, as before). The hot path is
 * a hash lookup; only a query whose columns carry a new OID waits for the
 * lookup (one round trip on another connection of the pool).
 *
 * A type dropped and its OID reused for another type keeps its first name
 * until the worker restarts.
 */
#ifndef MW_PG_TYPES_H
#define MW_PG_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/pool.h"

typedef struct mw_pg_types mw_pg_types;

/* NULL on ENOMEM. The pool must outlive the cache's lookups. */
mw_pg_types *mw_pg_types_new(molt_db_pool *pool);
/* Frees the cache; lookups in flight finish into nothing. */
void mw_pg_types_free(mw_pg_types *t);

/* The cached name of a non-built-in oid, or NULL (not looked up yet, or
 * pg_type has none). t may be NULL. */
const char *mw_pg_types_name(const mw_pg_types *t, uint32_t oid);
/* 1 when some of the oids is neither built in nor looked up yet. */
int mw_pg_types_missing(const mw_pg_types *t, const uint32_t *oids, size_t n);

/* Looks up the oids not looked up yet (or waits for the lookup in flight
 * that asks for them); done(ud) runs once, from the loop, when the cache
 * holds the answer or the lookup failed (names then stay unknown and a
 * later query tries again). done may be NULL: a lookup in the background,
 * for the next queries. timeout_ms as for molt_db_pool_query. Returns 0
 * (done will run) or -1 (nothing missing, ENOMEM, the pool refused). */
int mw_pg_types_resolve(mw_pg_types *t, const uint32_t *oids, size_t n,
                        int timeout_ms, void (*done)(void *ud), void *ud);

#endif
