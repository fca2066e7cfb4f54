/* MsgPack read in place (mpread.h). */
#include "mpread.h"

#include <string.h>

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[k];
    return v;
}

/* n bytes at p[*i], or -1 */
static int take(size_t len, size_t *i, uint64_t n, size_t *at)
{
    if (n > len - *i)
        return -1;
    *at = *i;
    *i += (size_t)n;
    return 0;
}

/* A signed integer of n bytes, typed as msgpack-c types it. */
static int sint(const uint8_t *p, size_t len, size_t *i, int n, mw_mpval *v)
{
    size_t at;
    if (take(len, i, (uint64_t)n, &at) < 0)
        return -1;
    uint64_t raw = be(p + at, n);
    int64_t s = n == 8 ? (int64_t)raw
                       : (int64_t)(raw ^ (1ull << (8 * n - 1))) - (int64_t)(1ull << (8 * n - 1));
    v->type = s >= 0 ? MSGPACK_OBJECT_POSITIVE_INTEGER : MSGPACK_OBJECT_NEGATIVE_INTEGER;
    v->u64 = (uint64_t)s;
    return 0;
}

/* A str, bin or ext whose length takes n bytes (0: fix length len0),
 * then skip bytes more (ext's type byte). */
static int bytes(const uint8_t *p, size_t len, size_t *i, int n, uint64_t len0,
                 int skip, msgpack_object_type t, mw_mpval *v)
{
    size_t at;
    uint64_t size = len0;
    if (n) {
        if (take(len, i, (uint64_t)n, &at) < 0)
            return -1;
        size = be(p + at, n);
    }
    if (take(len, i, size + (uint64_t)skip, &at) < 0)
        return -1;
    v->type = t;
    v->ptr = p + at + skip;
    v->size = (uint32_t)size;
    return 0;
}

/* A float of n bytes (4 or 8), widened to double as msgpack-c does. */
static int real(const uint8_t *p, size_t len, size_t *i, int n, mw_mpval *v)
{
    size_t at;
    if (take(len, i, (uint64_t)n, &at) < 0)
        return -1;
    uint64_t raw = be(p + at, n);
    if (n == 4) {
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        v->type = MSGPACK_OBJECT_FLOAT32;
        v->f64 = f;
    } else {
        memcpy(&v->f64, &raw, sizeof v->f64);
        v->type = MSGPACK_OBJECT_FLOAT64;
    }
    return 0;
}

static int count(const uint8_t *p, size_t len, size_t *i, int n, msgpack_object_type t,
                 mw_mpval *v)
{
    size_t at;
    if (take(len, i, (uint64_t)n, &at) < 0)
        return -1;
    v->type = t;
    v->size = (uint32_t)be(p + at, n);
    return 0;
}

/* mw_mpread_head's body, inlined into every reader here (a call of its
 * own cost as much as a short value's read). */
MW_ALWAYS_INLINE int head(const uint8_t *p, size_t len, size_t *i, mw_mpval *v)
{
    size_t at;
    v->u64 = 0;
    v->f64 = 0;
    v->ptr = NULL;
    v->size = 0;
    if (*i >= len)
        return -1;
    uint8_t b = p[(*i)++];
    if (b >= 0xa0 && b <= 0xbf) { /* fixstr: most keys and short values */
        uint32_t n = b & 0x1f;
        if (n > len - *i)
            return -1;
        v->type = MSGPACK_OBJECT_STR;
        v->ptr = p + *i;
        v->size = n;
        *i += n;
        return 0;
    }
    if (b <= 0x7f) {
        v->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        v->u64 = b;
        return 0;
    }
    if (b >= 0xe0) {
        v->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        v->u64 = (uint64_t)(int64_t)(int8_t)b;
        return 0;
    }
    if (b <= 0x8f) {
        v->type = MSGPACK_OBJECT_MAP;
        v->size = b & 0x0f;
        return 0;
    }
    if (b <= 0x9f) {
        v->type = MSGPACK_OBJECT_ARRAY;
        v->size = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf)
        return bytes(p, len, i, 0, b & 0x1f, 0, MSGPACK_OBJECT_STR, v);
    switch (b) {
    case 0xc0: v->type = MSGPACK_OBJECT_NIL; return 0;
    case 0xc2: case 0xc3:
        v->type = MSGPACK_OBJECT_BOOLEAN;
        v->u64 = b == 0xc3;
        return 0;
    case 0xc4: return bytes(p, len, i, 1, 0, 0, MSGPACK_OBJECT_BIN, v);
    case 0xc5: return bytes(p, len, i, 2, 0, 0, MSGPACK_OBJECT_BIN, v);
    case 0xc6: return bytes(p, len, i, 4, 0, 0, MSGPACK_OBJECT_BIN, v);
    case 0xc7: return bytes(p, len, i, 1, 0, 1, MSGPACK_OBJECT_EXT, v);
    case 0xc8: return bytes(p, len, i, 2, 0, 1, MSGPACK_OBJECT_EXT, v);
    case 0xc9: return bytes(p, len, i, 4, 0, 1, MSGPACK_OBJECT_EXT, v);
    case 0xca: return real(p, len, i, 4, v);
    case 0xcb: return real(p, len, i, 8, v);
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        int n = 1 << (b - 0xcc);
        if (take(len, i, (uint64_t)n, &at) < 0)
            return -1;
        v->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        v->u64 = be(p + at, n);
        return 0;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return sint(p, len, i, 1 << (b - 0xd0), v);
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return bytes(p, len, i, 0, 1u << (b - 0xd4), 1, MSGPACK_OBJECT_EXT, v);
    case 0xd9: return bytes(p, len, i, 1, 0, 0, MSGPACK_OBJECT_STR, v);
    case 0xda: return bytes(p, len, i, 2, 0, 0, MSGPACK_OBJECT_STR, v);
    case 0xdb: return bytes(p, len, i, 4, 0, 0, MSGPACK_OBJECT_STR, v);
    case 0xdc: return count(p, len, i, 2, MSGPACK_OBJECT_ARRAY, v);
    case 0xdd: return count(p, len, i, 4, MSGPACK_OBJECT_ARRAY, v);
    case 0xde: return count(p, len, i, 2, MSGPACK_OBJECT_MAP, v);
    case 0xdf: return count(p, len, i, 4, MSGPACK_OBJECT_MAP, v);
    default: return -1; /* 0xc1: never used */
    }
}

int mw_mpread_head(const uint8_t *p, size_t len, size_t *i, mw_mpval *v)
{
    return head(p, len, i, v);
}

int mw_mpread_skip(const uint8_t *p, size_t len, size_t *i, uint64_t n)
{
    /* each value takes at least one byte, so the count cannot pass the
     * bytes left without the walk ending first */
    while (n > 0) {
        mw_mpval e;
        if (head(p, len, i, &e) < 0)
            return -1;
        n--;
        if (e.type == MSGPACK_OBJECT_MAP)
            n += 2 * (uint64_t)e.size;
        else if (e.type == MSGPACK_OBJECT_ARRAY)
            n += e.size;
    }
    return 0;
}

int mw_mpread(const uint8_t *p, size_t len, size_t *i, mw_mpval *v)
{
    if (head(p, len, i, v) < 0)
        return -1;
    if (v->type == MSGPACK_OBJECT_MAP)
        return mw_mpread_skip(p, len, i, 2 * (uint64_t)v->size);
    if (v->type == MSGPACK_OBJECT_ARRAY)
        return mw_mpread_skip(p, len, i, v->size);
    return 0;
}

int mw_mpread_item(const uint8_t *p, size_t len, size_t *i, mw_mpitem *out)
{
    out->start = *i;
    if (head(p, len, i, &out->v) < 0)
        return -1;
    out->at = *i;
    if (out->v.type == MSGPACK_OBJECT_MAP)
        return mw_mpread_skip(p, len, i, 2 * (uint64_t)out->v.size);
    if (out->v.type == MSGPACK_OBJECT_ARRAY)
        return mw_mpread_skip(p, len, i, out->v.size);
    return 0;
}

int mw_mpread_keys(const uint8_t *p, size_t len, size_t i, uint32_t npairs,
                   const mw_mpkey *keys, int nkeys, mw_mpkeys *out)
{
    memset(out->v, 0, sizeof out->v);
    memset(out->dup, 0, sizeof out->dup);
    for (uint32_t e = 0; e < npairs; e++) {
        mw_mpitem key, val;
        if (mw_mpread_item(p, len, &i, &key) < 0 || mw_mpread_item(p, len, &i, &val) < 0)
            return -1;
        if (key.v.type != MSGPACK_OBJECT_STR)
            continue;
        int k = mw_mpkey_find(keys, nkeys, key.v.ptr, key.v.size);
        if (k < 0)
            continue;
        if (out->v[k]) {
            out->dup[k] = 1;
        } else {
            out->vals[k] = val;
            out->v[k] = &out->vals[k];
        }
    }
    return 0;
}
