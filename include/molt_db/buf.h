/*
 * molt_db_buf: a growable byte buffer with a sticky failure flag.
 *
 * Appends never fail loudly: when growth fails, `failed` is set and later
 * appends do nothing, so an encoder can append a whole message and check
 * once at the end (molt_db_buf_ok). Integers are written big-endian (network
 * order), as the PostgreSQL protocol wants.
 *
 * Ownership: the buffer owns `data`; molt_db_buf_free releases it. A zeroed
 * struct is an empty, valid buffer.
 */
#ifndef MOLT_DB_BUF_H
#define MOLT_DB_BUF_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed;  /* nonzero once an allocation failed or a size overflowed */
} molt_db_buf;

MOLT_DB_API
void molt_db_buf_init(molt_db_buf *b);
MOLT_DB_API
void molt_db_buf_free(molt_db_buf *b);

/* Empties the buffer (keeps its memory) and clears the failure flag. */
MOLT_DB_API
void molt_db_buf_reset(molt_db_buf *b);

/* Ensures room for `extra` more bytes. Returns MOLT_DB_OK or MOLT_DB_ENOMEM
 * (and sets failed). */
MOLT_DB_API
int molt_db_buf_reserve(molt_db_buf *b, size_t extra);

/* MOLT_DB_OK unless an earlier append failed (then MOLT_DB_ENOMEM). */
MOLT_DB_API
int molt_db_buf_ok(const molt_db_buf *b);

MOLT_DB_API
void molt_db_buf_put(molt_db_buf *b, const void *p, size_t n);
MOLT_DB_API
void molt_db_buf_put_u8(molt_db_buf *b, uint8_t v);
MOLT_DB_API
void molt_db_buf_put_u16(molt_db_buf *b, uint16_t v);
MOLT_DB_API
void molt_db_buf_put_u32(molt_db_buf *b, uint32_t v);
MOLT_DB_API
void molt_db_buf_put_u64(molt_db_buf *b, uint64_t v);
/* Appends s and its terminating NUL. */
MOLT_DB_API
void molt_db_buf_put_cstr(molt_db_buf *b, const char *s);

/* Overwrites 4 bytes at offset `at` (must be < len - 3) with v, big-endian. */
MOLT_DB_API
void molt_db_buf_patch_u32(molt_db_buf *b, size_t at, uint32_t v);

/* Drops the first n bytes (n <= len), moving the rest to the front. */
MOLT_DB_API
void molt_db_buf_consume(molt_db_buf *b, size_t n);

#ifdef __cplusplus
}
#endif
#endif
