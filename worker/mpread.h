/*
 * Reading MsgPack bytes in place, without unpacking them into msgpack-c
 * objects: one value's type and scalar at a time, and skipping whole
 * values. Meant for bytes that mw_msgpack_check walked already (so
 * lengths and counts are backed by bytes and nesting is bounded), but
 * every read is bounds-checked all the same. The types are msgpack-c's,
 * as its unpack would give them: a signed integer format holding a value
 * >= 0 is a POSITIVE_INTEGER.
 */
#ifndef MW_MPREAD_H
#define MW_MPREAD_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

typedef struct mw_mpval {
    msgpack_object_type type;
    uint64_t u64;          /* POSITIVE_INTEGER, BOOLEAN (0 or 1); for
                              NEGATIVE_INTEGER the int64_t's bits */
    double f64;            /* FLOAT32 (widened), FLOAT64 */
    const uint8_t *ptr;    /* STR, BIN: the bytes */
    uint32_t size;         /* STR, BIN: their length; ARRAY, MAP: the count */
} mw_mpval;

/* Reads the value at p[*i] and moves *i past it whole (a container's
 * elements included). 0, or -1 when the bytes end first. */
int mw_mpread(const uint8_t *p, size_t len, size_t *i, mw_mpval *v);

/* Reads the header of the value at p[*i]: for a map or an array, *i moves
 * to its first element only (v->size is the count); any other value is
 * read whole as by mw_mpread. 0 or -1. */
int mw_mpread_head(const uint8_t *p, size_t len, size_t *i, mw_mpval *v);

#endif
