/* Binary COPY stream parser: header, tuples, trailer; chunks split
 * anywhere (see copy_binary.h). */
#include "molt_db/buf.h"
#include "molt_db/copy_binary.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n',
                                      0xFF, '\r', '\n', 0};

enum { ST_HEADER, ST_TUPLES, ST_TRAILER_SEEN, ST_FAILED };

struct molt_db_copy_parser {
    int state;
    size_t ncols;          /* required field count, 0 until known */
    molt_db_copy_row_cb on_row;
    void *ud;
    molt_db_field *fields;
    size_t cap;
    molt_db_buf carry;     /* an incomplete header or tuple */
    uint64_t rows;
};

int molt_db_copy_parser_new(size_t ncols, molt_db_copy_row_cb on_row, void *ud,
                            molt_db_copy_parser **out, molt_db_error *err)
{
    *out = NULL;
    if (on_row == NULL || ncols > 65535)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "copy: bad arguments");
    molt_db_copy_parser *p = calloc(1, sizeof *p);
    if (p == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "copy: out of memory");
    p->ncols = ncols;
    p->on_row = on_row;
    p->ud = ud;
    p->cap = ncols ? ncols : 16;
    p->fields = calloc(p->cap, sizeof *p->fields);
    if (p->fields == NULL) {
        free(p);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "copy: out of memory");
    }
    *out = p;
    return MOLT_DB_OK;
}

void molt_db_copy_parser_free(molt_db_copy_parser *p)
{
    if (p == NULL)
        return;
    free(p->fields);
    molt_db_buf_free(&p->carry);
    free(p);
}

uint64_t molt_db_copy_parser_rows(const molt_db_copy_parser *p)
{
    return p->rows;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int fail(molt_db_copy_parser *p, molt_db_error *err, const char *what)
{
    p->state = ST_FAILED;
    return molt_db_error_set(err, MOLT_DB_EPROTO, "copy binary: %s", what);
}

/* Tries to take one unit (the header, a tuple or the trailer) from b[0..n).
 * Returns the bytes used, 0 when more bytes are needed, or a negative
 * code. */
static long take(molt_db_copy_parser *p, const uint8_t *b, size_t n,
                 molt_db_error *err)
{
    if (p->state == ST_HEADER) {
        if (n < 19)
            return 0;
        if (memcmp(b, SIGNATURE, 11) != 0)
            return fail(p, err, "bad signature");
        uint32_t flags = be32(b + 11);
        if (flags & 0x1FFFFu)
            return fail(p, err, "unsupported flags (OIDs or unknown format bits)");
        uint32_t ext = be32(b + 15);
        if (ext > (uint32_t)INT32_MAX)
            return fail(p, err, "bad header extension length");
        if (n - 19 < ext)
            return 0;
        p->state = ST_TUPLES;
        return (long)(19 + ext);
    }
    if (p->state == ST_TRAILER_SEEN)
        return fail(p, err, "data after the trailer");
    if (n < 2)
        return 0;
    int16_t count = (int16_t)((uint16_t)b[0] << 8 | b[1]);
    if (count == -1) {
        p->state = ST_TRAILER_SEEN;
        return 2;
    }
    if (count < 0)
        return fail(p, err, "negative field count");
    size_t nf = (size_t)count;
    if (p->ncols == 0)
        p->ncols = nf;
    if (nf != p->ncols)
        return fail(p, err, "a tuple's field count differs from the columns'");
    if (nf > p->cap) {
        molt_db_field *f = realloc(p->fields, nf * sizeof *f);
        if (f == NULL)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "copy: out of memory");
        p->fields = f;
        p->cap = nf;
    }
    size_t at = 2;
    for (size_t i = 0; i < nf; i++) {
        if (n - at < 4)
            return 0;
        int32_t len = (int32_t)be32(b + at);
        at += 4;
        if (len < -1)
            return fail(p, err, "negative field length");
        if (len == -1) {
            p->fields[i].data = NULL;
            p->fields[i].len = -1;
            continue;
        }
        if (n - at < (size_t)len)
            return 0;
        p->fields[i].data = b + at;
        p->fields[i].len = len;
        at += (size_t)len;
    }
    int rc = p->on_row(p->ud, p->fields, nf);
    if (rc != MOLT_DB_OK)
        return rc;
    p->rows++;
    return (long)at;
}

int molt_db_copy_parser_feed(molt_db_copy_parser *p, const uint8_t *data,
                             size_t len, molt_db_error *err)
{
    if (p->state == ST_FAILED)
        return molt_db_error_set(err, MOLT_DB_EPROTO, "copy binary: failed earlier");
    long used = 0;
    if (p->carry.len > 0) {
        /* finish the unit that started in an earlier chunk: feed the carry
         * bytes plus this chunk, then go on in place */
        molt_db_buf_put(&p->carry, data, len);
        if (molt_db_buf_ok(&p->carry) != MOLT_DB_OK)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "copy: out of memory");
        size_t off = 0;
        while (off < p->carry.len &&
               (used = take(p, p->carry.data + off, p->carry.len - off, err)) > 0)
            off += (size_t)used;
        if (used < 0 && off < p->carry.len)
            return (int)used;
        molt_db_buf_consume(&p->carry, off);
        return MOLT_DB_OK;
    }
    size_t off = 0;
    while (off < len && (used = take(p, data + off, len - off, err)) > 0)
        off += (size_t)used;
    if (off < len) {
        if (used < 0)
            return (int)used;
        molt_db_buf_put(&p->carry, data + off, len - off);
        if (molt_db_buf_ok(&p->carry) != MOLT_DB_OK)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "copy: out of memory");
    }
    return MOLT_DB_OK;
}

int molt_db_copy_parser_finish(molt_db_copy_parser *p, molt_db_error *err)
{
    if (p->state == ST_FAILED)
        return molt_db_error_set(err, MOLT_DB_EPROTO, "copy binary: failed earlier");
    if (p->state != ST_TRAILER_SEEN || p->carry.len != 0)
        return fail(p, err, "the stream ended before its trailer");
    return MOLT_DB_OK;
}
