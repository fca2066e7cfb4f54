/*
 * Array parameters (contract section 5): a MsgPack array given as a
 * parameter value becomes PostgreSQL's text array literal, e.g.
 * [[1, nil], [3, 4]] -> {{1,NULL},{3,4}} and ["a\"b", "NULL"] ->
 * {"a\"b","NULL"}: every str is quoted with " and \ escaped, so no
 * element can end early, split or turn into NULL.
 *
 * Elements are nil, bool, int, float, str or bin (sent as bytea's \x hex),
 * all of one kind apart from nil; int and float together are float. Nested
 * arrays are dimensions: every sub-array at one depth has the same length,
 * at most MW_PG_ARRAY_MAX_DIMS deep (PostgreSQL's limit). Anything else
 * (a map, a ragged or too deep nesting, mixed kinds) is refused.
 *
 * Pure function, no I/O, no global state; reentrant.
 */
#ifndef MW_PG_ARRAY_H
#define MW_PG_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#define MW_PG_ARRAY_MAX_DIMS 6
/* PostgreSQL's largest field */
#define MW_PG_ARRAY_MAX_BYTES ((size_t)1 << 30)
#define MW_PG_ARRAY_ERR_SIZE 160

/*
 * Builds the literal for the array whose MsgPack bytes begin at p (len
 * bytes are readable there; every read is bounds-checked). Returns 0 with
 * *lit (malloc'd, NUL-terminated; the caller frees it), *litlen and *type:
 * the array type the elements imply ("int8[]", "float8[]", "bool[]",
 * "bytea[]") or NULL for str elements and arrays of only nil or nothing, which go untyped so the
 * server infers the type from the query (uuid[], date[], text[]...).
 * Returns -1 with err for an array it refuses, -2 when memory ran out.
 */
int mw_pg_array_literal(const uint8_t *p, size_t len, char **lit, size_t *litlen,
                        const char **type, char err[MW_PG_ARRAY_ERR_SIZE]);

#endif
