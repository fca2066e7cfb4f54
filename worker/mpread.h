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
#include <string.h>

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

/* Moves *i past n whole values (their elements included). 0 or -1. */
int mw_mpread_skip(const uint8_t *p, size_t len, size_t *i, uint64_t n);

/* A value read whole, with where its bytes start and, for a map or an
 * array, where its elements start (to read them afterwards). */
typedef struct mw_mpitem {
    mw_mpval v;
    size_t start;
    size_t at;
} mw_mpitem;

/* Reads the value at p[*i] whole, as mw_mpread, into out. 0 or -1. */
int mw_mpread_item(const uint8_t *p, size_t len, size_t *i, mw_mpitem *out);

/* A key a map is searched for. */
typedef struct mw_mpkey {
    const char *name;
    uint32_t len;
} mw_mpkey;

#define MW_MPKEYS_MAX 16

/* The values of a map's wanted keys, found in one pass over it: for key
 * k its first value (str keys only; others are ignored) in vals[k], v[k]
 * pointing at it or NULL when absent, dup[k] 1 when it appears again. */
/* For the readers and walks that run on every request's bytes: a helper
 * inlined into them (GCC and Clang), where a call would cost as much as the
 * helper's work. */
#define MW_ALWAYS_INLINE static inline __attribute__((always_inline))

typedef struct mw_mpkeys {
    const mw_mpitem *v[MW_MPKEYS_MAX];
    uint8_t dup[MW_MPKEYS_MAX];
    mw_mpitem vals[MW_MPKEYS_MAX];
} mw_mpkeys;

/* The index of the key named s[0..n) among keys[0..nkeys), or -1 (inline:
 * the walks that index maps call it for every str key). */
static inline int mw_mpkey_find(const mw_mpkey *keys, int nkeys, const uint8_t *s,
                                uint32_t n)
{
    /* the length and the first byte settle most keys without a memcmp */
    for (int k = 0; k < nkeys; k++)
        if (keys[k].len == n && (n == 0 || (uint8_t)keys[k].name[0] == s[0]) &&
            memcmp(s, keys[k].name, n) == 0)
            return k;
    return -1;
}

/* Fills out for the nkeys (at most MW_MPKEYS_MAX) keys from the npairs
 * pairs of the map whose first key is at p[i]. 0, or -1 when the bytes
 * end first (out then holds what was found before). */
int mw_mpread_keys(const uint8_t *p, size_t len, size_t i, uint32_t npairs,
                   const mw_mpkey *keys, int nkeys, mw_mpkeys *out);

#endif
