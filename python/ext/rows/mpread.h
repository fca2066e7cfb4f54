/* A bounded MsgPack reader over one payload, and the generic value decoder
 * that gives what msgpack.unpackb(raw=False, timestamp=3,
 * strict_map_key=False) gives. Every length is checked against the bytes
 * left; a short or malformed payload raises ValueError, never reads past
 * the end. */
#ifndef MOLT_ROWS_MPREAD_H
#define MOLT_ROWS_MPREAD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* nesting deeper than this is refused (msgpack's own unpacker stops at 1024) */
#define MP_MAX_DEPTH 512

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int depth;
} mp_reader;

/* what the next value is, without consuming it */
enum mp_kind { MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT, MP_BAD };

/* inline: it runs once per value */
static inline enum mp_kind mp_peek(const mp_reader *r)
{
    if (r->p >= r->end)
        return MP_BAD;
    uint8_t b = *r->p;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
        return MP_INT;
    if (b <= 0x8f || b == 0xde || b == 0xdf)
        return MP_MAP;
    if (b <= 0x9f || b == 0xdc || b == 0xdd)
        return MP_ARRAY;
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb))
        return MP_STR;
    switch (b) {
    case 0xc0: return MP_NIL;
    case 0xc2: case 0xc3: return MP_BOOL;
    case 0xc4: case 0xc5: case 0xc6: return MP_BIN;
    case 0xca: case 0xcb: return MP_FLOAT;
    case 0xc7: case 0xc8: case 0xc9:
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return MP_EXT;
    default: return MP_BAD;   /* 0xc1: never used */
    }
}

/* headers: 0 and the count, or -1 with ValueError (not that kind, or short) */
int mp_array_header(mp_reader *r, uint32_t *n);
int mp_map_header(mp_reader *r, uint32_t *n);
/* a str: its bytes stay in the payload */
int mp_str(mp_reader *r, const char **s, uint32_t *n);
int mp_skip(mp_reader *r);
/* the next value as msgpack-python gives it (new reference), or NULL */
PyObject *mp_value(mp_reader *r);

/* the UTC datetime of a timestamp extension's body, as msgpack gives it */
PyObject *mp_timestamp(const uint8_t *body, uint32_t len);
/* the same instant's wall time in UTC with tzinfo tz (None: naive) */
PyObject *mp_timestamp_tz(const uint8_t *body, uint32_t len, PyObject *tz);
int mp_ext(mp_reader *r, int8_t *code, const uint8_t **body, uint32_t *len);

/* A str of n bytes at s, as mp_value makes it, from a small cache of the
 * short ASCII strs a payload repeats call after call (map keys, type and
 * column names): a hit costs no decoding, and a cached str has its hash
 * already. Not interned (the names can come from SQL, and an interned str
 * is immortal from Python 3.12 on). NULL with an exception. */
PyObject *mp_short_str(const char *s, uint32_t n);
/* module state the decoder needs (set once by the module's init) */
int mp_init(void);

PyObject *mp_error(const mp_reader *r, const char *what);

#endif
