/* Structural pre-check of MsgPack bytes (see msgpack_check.h). */
#include "msgpack_check.h"

#include <string.h>

/* 1 when p[0..n) is all ASCII: 8 bytes at a time, then the tail in at
 * most two loads that may overlap bytes already seen. */
MW_ALWAYS_INLINE int all_ascii(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, w;
    uint32_t h;
    size_t i = 0;
    if (n >= 8) {
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            acc |= w;
        }
        if (i < n) {
            memcpy(&w, p + n - 8, 8);
            acc |= w;
        }
    } else if (n >= 4) {
        memcpy(&h, p, 4);
        acc = h;
        memcpy(&h, p + n - 4, 4);
        acc |= h;
    } else if (n > 0) {
        acc = (uint64_t)(p[0] | p[n / 2] | p[n - 1]);
    }
    return (acc & 0x8080808080808080ull) == 0;
}

int mw_utf8_valid(const uint8_t *p, size_t n)
{
    if (all_ascii(p, n)) /* keys, SQL: the common case, walked once */
        return 1;
    size_t i = 0;
    while (i < n) {
        /* ASCII, the common case, 8 bytes at a time */
        uint64_t w;
        if (n - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0)) {
            i += 8;
            continue;
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            uint8_t d = p[i + k];
            if ((d & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (d & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* What a type byte says about the bytes that follow it. */
typedef enum mp_kind {
    MP_SCALAR = 0,   /* skip fixed bytes */
    MP_BYTES,        /* bin, ext: a length, then that many bytes */
    MP_STR,          /* the same, and they must be UTF-8 */
    MP_ARRAY,        /* a count of elements */
    MP_MAP,          /* a count of key/value pairs */
    MP_INVALID
} mp_kind;

typedef struct mp_format {
    uint8_t kind;        /* mp_kind */
    uint8_t len_bytes;   /* big-endian length or count after the type byte */
    uint8_t skip;        /* fixed bytes after that (ext's type byte, a number) */
} mp_format;

/* The type bytes 0xc0..0xdf, from the MsgPack specification. */
static const mp_format formats[32] = {
    [0x00] = {MP_SCALAR, 0, 0},                              /* nil */
    [0x01] = {MP_INVALID, 0, 0},                             /* never used */
    [0x02] = {MP_SCALAR, 0, 0}, [0x03] = {MP_SCALAR, 0, 0},  /* false, true */
    [0x04] = {MP_BYTES, 1, 0},  [0x05] = {MP_BYTES, 2, 0},  [0x06] = {MP_BYTES, 4, 0}, /* bin */
    [0x07] = {MP_BYTES, 1, 1},  [0x08] = {MP_BYTES, 2, 1},  [0x09] = {MP_BYTES, 4, 1}, /* ext */
    [0x0a] = {MP_SCALAR, 0, 4}, [0x0b] = {MP_SCALAR, 0, 8},  /* float 32, 64 */
    [0x0c] = {MP_SCALAR, 0, 1}, [0x0d] = {MP_SCALAR, 0, 2},  /* uint 8 .. 64 */
    [0x0e] = {MP_SCALAR, 0, 4}, [0x0f] = {MP_SCALAR, 0, 8},
    [0x10] = {MP_SCALAR, 0, 1}, [0x11] = {MP_SCALAR, 0, 2},  /* int 8 .. 64 */
    [0x12] = {MP_SCALAR, 0, 4}, [0x13] = {MP_SCALAR, 0, 8},
    [0x14] = {MP_SCALAR, 0, 2}, [0x15] = {MP_SCALAR, 0, 3},  /* fixext 1 .. 16 */
    [0x16] = {MP_SCALAR, 0, 5}, [0x17] = {MP_SCALAR, 0, 9}, [0x18] = {MP_SCALAR, 0, 17},
    [0x19] = {MP_STR, 1, 0},    [0x1a] = {MP_STR, 2, 0},    [0x1b] = {MP_STR, 4, 0}, /* str */
    [0x1c] = {MP_ARRAY, 2, 0},  [0x1d] = {MP_ARRAY, 4, 0},   /* array 16, 32 */
    [0x1e] = {MP_MAP, 2, 0},    [0x1f] = {MP_MAP, 4, 0},     /* map 16, 32 */
};

/* The format of type byte b; *n is the length or count a fix type holds. */
MW_ALWAYS_INLINE mp_format format_of(uint8_t b, uint64_t *n)
{
    *n = 0;
    if (b <= 0x7f || b >= 0xe0)
        return (mp_format){MP_SCALAR, 0, 0};   /* fixint */
    if (b <= 0x8f) {
        *n = b & 0x0f;
        return (mp_format){MP_MAP, 0, 0};
    }
    if (b <= 0x9f) {
        *n = b & 0x0f;
        return (mp_format){MP_ARRAY, 0, 0};
    }
    if (b <= 0xbf) {
        *n = b & 0x1f;
        return (mp_format){MP_STR, 0, 0};
    }
    return formats[b - 0xc0];
}

/* Moves *i past the value whose type byte p[*i - 1] is b: its length and
 * its bytes, not its elements, whose number goes to *children. */
MW_ALWAYS_INLINE mw_mp_check value_bytes(uint8_t b, const uint8_t *p, size_t len,
                                     size_t *i, uint64_t *children, int *bad_utf8)
{
    uint64_t n;
    mp_format f = format_of(b, &n);
    if (f.kind == MP_INVALID)
        return MW_MP_INVALID;
    if (f.len_bytes) {
        if (f.len_bytes > len - *i)
            return MW_MP_TRUNCATED;
        n = be(p + *i, f.len_bytes);
        *i += f.len_bytes;
    }
    uint64_t skip = f.skip + (f.kind == MP_STR || f.kind == MP_BYTES ? n : 0);
    *children = f.kind == MP_ARRAY ? n : f.kind == MP_MAP ? 2 * n : 0;
    if (skip > len - *i)
        return MW_MP_TRUNCATED;
    /* a bad str is remembered, not returned: the walk still proves the
     * rest bounded, because the envelope is unpacked anyway to find the
     * request_id it should answer */
    if (f.kind == MP_STR && !*bad_utf8 && !mw_utf8_valid(p + *i, (size_t)skip))
        *bad_utf8 = 1;
    *i += (size_t)skip;
    return MW_MP_OK;
}

/* A map's type byte. */
static int is_map(uint8_t b)
{
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/* mw_msgpack_check's walk; with out, also mw_msgpack_check_keys's index
 * of the first value's keys (the elements at depth 1 when it is a map:
 * keys and values alternate, a key where remaining[1] is even before its
 * element is taken). Inlined into both, so the walk without an index pays
 * nothing for it. */
MW_ALWAYS_INLINE mw_mp_check
walk(const uint8_t *p, size_t len, size_t *end, size_t *zone_bytes, const mw_mpkey *keys,
     int nkeys, mw_mpkeys *out)
{
    uint64_t slots = 0; /* msgpack-c's element storage, in msgpack_objects */
    /* remaining[d]: values still expected by the container at depth d */
    uint64_t remaining[MW_MP_MAX_DEPTH + 1];
    int depth = 0, bad_utf8 = 0;
    uint64_t elements = 0;
    size_t i = 0;
    int index = 0, want = -1; /* want: the key whose value comes next */
    if (out) {
        memset(out->v, 0, sizeof out->v);
        memset(out->dup, 0, sizeof out->dup);
        index = len > 0 && is_map(p[0]);
    }
    remaining[0] = 1;
    while (depth > 0 || remaining[0] > 0) {
        if (remaining[depth] == 0) {
            depth--;
            continue;
        }
        size_t start = i;
        int top_key = 0;
        if (out && index && depth == 1) {
            if (remaining[1] % 2 == 0) {
                top_key = 1;
                want = -1;
            } else if (want >= 0) {
                /* a value the walk goes on to check: a read past the
                 * bytes fails here and there alike */
                mw_mpitem *it = &out->vals[want];
                size_t j = start;
                it->start = start;
                if (mw_mpread_head(p, len, &j, &it->v) == 0) {
                    it->at = j;
                    out->v[want] = it;
                }
                want = -1;
            }
        }
        remaining[depth]--;
        if (++elements > MW_MP_MAX_ELEMENTS)
            return MW_MP_TOO_MANY;
        if (i >= len)
            return MW_MP_TRUNCATED;
        uint8_t b = p[i++];
        if (b <= 0x7f || b >= 0xe0)
            continue; /* a fixint: nothing follows its type byte */
        if ((b & 0xe0) == 0xa0) { /* a fixstr: most keys and short values */
            size_t n = b & 0x1f;
            if (n > len - i)
                return MW_MP_TRUNCATED;
            if (!bad_utf8 && !all_ascii(p + i, n) && !mw_utf8_valid(p + i, n))
                bad_utf8 = 1;
            if (out && top_key)
                want = mw_mpkey_find(keys, nkeys, p + i, (uint32_t)n);
            i += n;
        } else {
            uint64_t children;
            mw_mp_check c = value_bytes(b, p, len, &i, &children, &bad_utf8);
            if (c != MW_MP_OK)
                return c;
            if (out && top_key && b >= 0xd9 && b <= 0xdb) { /* a longer str key */
                size_t j = start;
                mw_mpval kv;
                if (mw_mpread_head(p, len, &j, &kv) == 0)
                    want = mw_mpkey_find(keys, nkeys, kv.ptr, kv.size);
            }
            /* an array's elements take a msgpack_object each, a map's pairs
             * a msgpack_object_kv (two): children counts both alike */
            slots += children;
            if (children > 0) {
                /* every element takes at least one byte */
                if (children > len - i)
                    return MW_MP_TRUNCATED;
                if (depth == MW_MP_MAX_DEPTH)
                    return MW_MP_TOO_DEEP;
                remaining[++depth] = children;
            }
        }
        if (out && want >= 0 && out->v[want]) {
            /* a key seen before: its first value stays */
            out->dup[want] = 1;
            want = -1;
        }
    }
    *end = i;
    *zone_bytes = (size_t)slots * sizeof(msgpack_object);
    return bad_utf8 ? MW_MP_BAD_UTF8 : MW_MP_OK;
}

mw_mp_check mw_msgpack_check(const uint8_t *p, size_t len, size_t *end,
                             size_t *zone_bytes)
{
    return walk(p, len, end, zone_bytes, NULL, 0, NULL);
}

mw_mp_check mw_msgpack_check_keys(const uint8_t *p, size_t len, const mw_mpkey *keys,
                                  int nkeys, mw_mpkeys *out, size_t *end,
                                  size_t *zone_bytes)
{
    mw_mp_check c = walk(p, len, end, zone_bytes, keys, nkeys, out);
    if (c != MW_MP_OK && c != MW_MP_BAD_UTF8) {
        memset(out->v, 0, sizeof out->v);
        memset(out->dup, 0, sizeof out->dup);
    }
    return c;
}

int mw_msgpack_unpack(const uint8_t *p, size_t len, size_t zone_bytes,
                      msgpack_unpacked *u)
{
    msgpack_unpacked_init(u);
    /* one chunk that holds it all (a minimum keeps an empty container's
     * zero-byte allocation inside it); msgpack-c's default chunk is 8 KB */
    u->zone = msgpack_zone_new(zone_bytes < 64 ? 64 : zone_bytes);
    if (u->zone == NULL)
        return MSGPACK_UNPACK_NOMEM_ERROR;
    size_t off = 0;
    return msgpack_unpack((const char *)p, len, &off, u->zone, &u->data);
}

const char *mw_msgpack_check_text(mw_mp_check c)
{
    switch (c) {
    case MW_MP_OK: return "ok";
    case MW_MP_TRUNCATED: return "truncated MsgPack value";
    case MW_MP_INVALID: return "invalid MsgPack type byte";
    case MW_MP_BAD_UTF8: return "invalid UTF-8 in a MsgPack str";
    case MW_MP_TOO_DEEP: return "MsgPack nesting too deep";
    case MW_MP_TOO_MANY: return "too many MsgPack elements";
    }
    return "bad MsgPack";
}
