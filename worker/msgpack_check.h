/*
 * A structural check of MsgPack bytes before msgpack-c unpacks them.
 *
 * msgpack-c allocates an array's or map's element storage (24 bytes an
 * element) as soon as it reads the declared count, before the elements
 * arrive, so a 5-byte body declaring 4 billion elements would ask for about
 * 100 GB. This walk, which only reads type bytes and lengths (it decodes no
 * values), proves first that the bytes hold one complete value whose
 * containers' counts are all backed by real elements, that no str holds
 * invalid UTF-8, that nesting is bounded, and where the value ends. Only
 * then does msgpack-c unpack it, with memory bounded by the body's size.
 */
#ifndef MW_MSGPACK_CHECK_H
#define MW_MSGPACK_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "mpread.h"

typedef enum mw_mp_check {
    MW_MP_OK = 0,
    MW_MP_TRUNCATED,      /* the value does not end within the bytes */
    MW_MP_INVALID,        /* a reserved type byte (0xc1) */
    MW_MP_BAD_UTF8,       /* a str that is not UTF-8 */
    MW_MP_TOO_DEEP,       /* nesting above MW_MP_MAX_DEPTH */
    MW_MP_TOO_MANY        /* more than MW_MP_MAX_ELEMENTS elements */
} mw_mp_check;

#define MW_MP_MAX_DEPTH 24   /* below msgpack-c's own stack of 32 */
#define MW_MP_MAX_ELEMENTS 4000000u

/* Checks the first value of p[0..len): returns MW_MP_OK, *end (the
 * offset just past it; < len means trailing bytes) and *zone_bytes (what
 * msgpack-c's unpack of it takes from its zone), or the first problem.
 * MW_MP_BAD_UTF8 is reported only once the whole value is known to be
 * complete and bounded (*end and *zone_bytes are set then too), so it may
 * still be unpacked safely, e.g. to read the request_id of the request it
 * rejects. */
mw_mp_check mw_msgpack_check(const uint8_t *p, size_t len, size_t *end,
                             size_t *zone_bytes);

/* mw_msgpack_check, and in the same walk, when the first value is a map,
 * its keys named in keys[0..nkeys) (nkeys at most MW_MPKEYS_MAX) indexed
 * into out as mw_mpread_keys does: for key k its first value in vals[k]
 * (str keys only; others are ignored), v[k] pointing at it or NULL when
 * absent, dup[k] 1 when the key appears again. For a first value that is
 * not a map, and whenever the result is neither MW_MP_OK nor
 * MW_MP_BAD_UTF8, out holds no key. */
mw_mp_check mw_msgpack_check_keys(const uint8_t *p, size_t len, const mw_mpkey *keys,
                                  int nkeys, mw_mpkeys *out, size_t *end,
                                  size_t *zone_bytes);

/* Unpacks the first value of checked bytes into u, with a zone of one
 * chunk of zone_bytes (mw_msgpack_check's). Returns msgpack_unpack's
 * result (EXTRA_BYTES when bytes follow the value) or NOMEM_ERROR; in
 * every case the caller destroys u. */
int mw_msgpack_unpack(const uint8_t *p, size_t len, size_t zone_bytes,
                      msgpack_unpacked *u);

/* A short English description of a check result. */
const char *mw_msgpack_check_text(mw_mp_check c);

/* 1 when p[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int mw_utf8_valid(const uint8_t *p, size_t n);

#endif
