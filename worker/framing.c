/* Length-prefixed frames: limit checked before the body is buffered; the
 * buffer grows with the bytes that arrive, never to the declared length. */
#include "framing.h"

#include <string.h>

/* capacity kept between frames; a larger buffer is freed once empty */
#define MW_FRAMER_KEEP_BYTES ((size_t)256 << 10)

void mw_framer_init(mw_framer *f, uint64_t limit)
{
    molt_db_buf_init(&f->buf);
    f->off = 0;
    f->limit = limit;
}

void mw_framer_free(mw_framer *f)
{
    molt_db_buf_free(&f->buf);
    f->off = 0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

size_t mw_framer_pending(const mw_framer *f)
{
    return f->buf.len - f->off;
}

/* 1 when the frame at off has a length header that is not acceptable. */
static int bad_header(const mw_framer *f)
{
    if (mw_framer_pending(f) < 4)
        return 0;
    uint32_t n = le32(f->buf.data + f->off);
    return n == 0 || n > f->limit;
}

int mw_framer_feed(mw_framer *f, const uint8_t *p, size_t n)
{
    if (bad_header(f))
        return -2;
    /* Drop consumed bytes before growing, so the buffer holds at most one
     * partial frame plus one read. */
    if (f->off > 0) {
        molt_db_buf_consume(&f->buf, f->off);
        f->off = 0;
    }
    /* a large frame is gone: give its memory back */
    if (f->buf.len == 0 && f->buf.cap > MW_FRAMER_KEEP_BYTES)
        molt_db_buf_free(&f->buf);
    molt_db_buf_put(&f->buf, p, n);
    return molt_db_buf_ok(&f->buf) == 0 ? 0 : -1;
}

int mw_framer_next(mw_framer *f, const uint8_t **body, size_t *len)
{
    size_t avail = mw_framer_pending(f);
    if (avail < 4)
        return 0;
    uint32_t n = le32(f->buf.data + f->off);
    if (n == 0 || n > f->limit) {
        *len = n;
        return -1;
    }
    if (avail - 4 < n)
        return 0;
    *body = f->buf.data + f->off + 4;
    *len = n;
    f->off += 4 + (size_t)n;
    return 1;
}

int mw_framer_peek(const mw_framer *f, size_t *pos, const uint8_t **body,
                   size_t *len)
{
    size_t avail = mw_framer_pending(f);
    if (*pos > avail || avail - *pos < 4)
        return 0;
    const uint8_t *p = f->buf.data + f->off + *pos;
    uint32_t n = le32(p);
    if (n == 0 || n > f->limit || avail - *pos - 4 < n)
        return 0;
    *body = p + 4;
    *len = n;
    *pos += 4 + (size_t)n;
    return 1;
}

void mw_framer_remove(mw_framer *f, size_t pos, size_t len)
{
    uint8_t *at = f->buf.data + f->off + pos;
    size_t n = 4 + len;
    size_t after = mw_framer_pending(f) - pos - n;
    memmove(at, at + n, after);
    f->buf.len -= n;
}
