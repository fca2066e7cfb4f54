/*
 * msgpack-c packers that write into a molt_db_buf, and small helpers to
 * read msgpack-c objects (keys by name, strings compared without copying).
 *
 * A packer over a buffer whose growth failed writes nothing more and the
 * buffer's `failed` flag is set: check molt_db_buf_ok once at the end.
 */
#ifndef MW_MPBUF_H
#define MW_MPBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "molt_db/buf.h"

/* Initializes pk to append to b. */
void mw_packer_init(msgpack_packer *pk, molt_db_buf *b);

/* Packs the n bytes at s as a MsgPack str. */
void mw_pack_str(msgpack_packer *pk, const char *s, size_t n);
/* Packs a NUL-terminated string as a MsgPack str (inline: a literal's
 * length is known where it is packed). */
static inline void mw_pack_cstr(msgpack_packer *pk, const char *s)
{
    mw_pack_str(pk, s, strlen(s));
}
/* Packs a key (str) and then the caller packs the value. */
static inline void mw_pack_key(msgpack_packer *pk, const char *key)
{
    mw_pack_cstr(pk, key);
}
/* Packs true when v is not 0, else false. */
void mw_pack_bool(msgpack_packer *pk, int v);

/* Direct MsgPack writes at p, in the encodings msgpack-c's packer picks
 * (the smallest), each returning the end of what it wrote. The caller
 * reserved the room: at most 9 bytes a number, 5 a map or bin header,
 * 5 + n a str. For the fixed parts of frames, written without a call per
 * value. */
static inline uint8_t *mw_mp_put_be(uint8_t *p, uint8_t tag, uint64_t v, int bytes)
{
    *p++ = tag;
    for (int i = bytes - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static inline uint8_t *mw_mp_put_uint(uint8_t *p, uint64_t v)
{
    if (v < 128) {
        *p = (uint8_t)v;
        return p + 1;
    }
    if (v < 256)
        return mw_mp_put_be(p, 0xcc, v, 1);
    if (v < 65536)
        return mw_mp_put_be(p, 0xcd, v, 2);
    if (v <= UINT32_MAX)
        return mw_mp_put_be(p, 0xce, v, 4);
    return mw_mp_put_be(p, 0xcf, v, 8);
}

static inline uint8_t *mw_mp_put_int(uint8_t *p, int64_t v)
{
    if (v >= -32)
        return v >= 0 ? mw_mp_put_uint(p, (uint64_t)v) : (*p = (uint8_t)v, p + 1);
    if (v >= -128)
        return mw_mp_put_be(p, 0xd0, (uint64_t)v, 1);
    if (v >= -32768)
        return mw_mp_put_be(p, 0xd1, (uint64_t)v, 2);
    if (v >= INT32_MIN)
        return mw_mp_put_be(p, 0xd2, (uint64_t)v, 4);
    return mw_mp_put_be(p, 0xd3, (uint64_t)v, 8);
}

static inline uint8_t *mw_mp_put_str(uint8_t *p, const char *s, size_t n)
{
    if (n < 32)
        *p++ = (uint8_t)(0xa0 | n);
    else if (n < 256)
        p = mw_mp_put_be(p, 0xd9, n, 1);
    else if (n < 65536)
        p = mw_mp_put_be(p, 0xda, n, 2);
    else
        p = mw_mp_put_be(p, 0xdb, n, 4);
    if (n) /* s may be NULL then */
        memcpy(p, s, n);
    return p + n;
}

/* A str from a string literal: its length known when compiled. */
#define MW_MP_PUT_LIT(p, lit) mw_mp_put_str((p), (lit), sizeof(lit) - 1)

static inline uint8_t *mw_mp_put_map(uint8_t *p, uint32_t n)
{
    if (n < 16) {
        *p = (uint8_t)(0x80 | n);
        return p + 1;
    }
    return n < 65536 ? mw_mp_put_be(p, 0xde, n, 2) : mw_mp_put_be(p, 0xdf, n, 4);
}

static inline uint8_t *mw_mp_put_array(uint8_t *p, uint32_t n)
{
    if (n < 16) {
        *p = (uint8_t)(0x90 | n);
        return p + 1;
    }
    return n < 65536 ? mw_mp_put_be(p, 0xdc, n, 2) : mw_mp_put_be(p, 0xdd, n, 4);
}

static inline uint8_t *mw_mp_put_bin_head(uint8_t *p, uint32_t n)
{
    if (n < 256)
        return mw_mp_put_be(p, 0xc4, n, 1);
    return n < 65536 ? mw_mp_put_be(p, 0xc5, n, 2) : mw_mp_put_be(p, 0xc6, n, 4);
}

/* 1 when o is a str equal to s. */
int mw_obj_is_str(const msgpack_object *o, const char *s);

/* The value of key in map m, or NULL (also when m is not a map). When the
 * key appears twice, *dup (may be NULL) is set to 1. */
const msgpack_object *mw_map_get(const msgpack_object *m, const char *key,
                                 int *dup);

#endif
