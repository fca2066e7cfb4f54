/* molt_db_buf: growable byte buffer with a sticky failure flag. */
#include "molt_db/buf.h"
#include "molt_db/error.h"

#include <stdlib.h>
#include <string.h>

void molt_db_buf_init(molt_db_buf *b)
{
    memset(b, 0, sizeof *b);
}

void molt_db_buf_free(molt_db_buf *b)
{
    free(b->data);
    molt_db_buf_init(b);
}

void molt_db_buf_reset(molt_db_buf *b)
{
    b->len = 0;
    b->failed = 0;
}

int molt_db_buf_reserve(molt_db_buf *b, size_t extra)
{
    if (b->failed)
        return MOLT_DB_ENOMEM;
    if (extra <= b->cap - b->len)
        return MOLT_DB_OK;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return MOLT_DB_ENOMEM;
    }
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return MOLT_DB_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return MOLT_DB_OK;
}

int molt_db_buf_ok(const molt_db_buf *b)
{
    return b->failed ? MOLT_DB_ENOMEM : MOLT_DB_OK;
}

void molt_db_buf_put(molt_db_buf *b, const void *p, size_t n)
{
    if (n == 0 || molt_db_buf_reserve(b, n) != MOLT_DB_OK)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* The protocol writers put dozens of small integers and names a query:
 * while the buffer has room they are written in place, without the calls
 * of molt_db_buf_put; otherwise they go through it (growth, failure). */
static int has_room(const molt_db_buf *b, size_t n)
{
    return !b->failed && n <= b->cap - b->len;
}

void molt_db_buf_put_u8(molt_db_buf *b, uint8_t v)
{
    if (has_room(b, 1))
        b->data[b->len++] = v;
    else
        molt_db_buf_put(b, &v, 1);
}

void molt_db_buf_put_u16(molt_db_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    if (has_room(b, 2)) {
        memcpy(b->data + b->len, x, 2);
        b->len += 2;
    } else {
        molt_db_buf_put(b, x, 2);
    }
}

void molt_db_buf_put_u32(molt_db_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    if (has_room(b, 4)) {
        memcpy(b->data + b->len, x, 4);
        b->len += 4;
    } else {
        molt_db_buf_put(b, x, 4);
    }
}

void molt_db_buf_put_u64(molt_db_buf *b, uint64_t v)
{
    molt_db_buf_put_u32(b, (uint32_t)(v >> 32));
    molt_db_buf_put_u32(b, (uint32_t)v);
}

void molt_db_buf_put_cstr(molt_db_buf *b, const char *s)
{
    size_t n = strlen(s) + 1;
    if (has_room(b, n)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    } else {
        molt_db_buf_put(b, s, n);
    }
}

void molt_db_buf_patch_u32(molt_db_buf *b, size_t at, uint32_t v)
{
    if (b->failed || at + 4 > b->len)
        return;
    b->data[at] = (uint8_t)(v >> 24);
    b->data[at + 1] = (uint8_t)(v >> 16);
    b->data[at + 2] = (uint8_t)(v >> 8);
    b->data[at + 3] = (uint8_t)v;
}

void molt_db_buf_consume(molt_db_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
