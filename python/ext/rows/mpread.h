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

enum mp_kind mp_peek(const mp_reader *r);

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
int mp_ext(mp_reader *r, int8_t *code, const uint8_t **body, uint32_t *len);

/* module state the decoder needs (set once by the module's init) */
int mp_init(void);

PyObject *mp_error(const mp_reader *r, const char *what);

#endif
