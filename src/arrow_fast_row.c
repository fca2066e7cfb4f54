/* The common row, fast: every column a flat Arrow type (fixed-width
 * scalars, bool, bytes taken as they are) and every value well-formed.
 *
 * The general path (arrow_builder.c) decodes value by value through the
 * shared codecs, reserves room for every value and saves every column so
 * that a bad value can take the row back. Here one pass checks the whole
 * row -- each length against its type, the value checks of the codecs,
 * room for the variable-length bytes -- and a second pass writes it with
 * nothing left that can fail. Room in the fixed-width buffers is reserved
 * for many rows at a time (b->room), and a column's validity bitmap is
 * written only once the column has a NULL: until then, every exporter
 * (arrow_export.c, arrow_ipc.c) ignores it since null_count is 0, and the
 * general path has it filled in before it pushes bits of its own
 * (molt_db__arrow_fast_sync). Whatever the first pass does not
 * like goes to the general path untouched, which appends it or gives the
 * error; so the two paths accept and reject exactly the same rows. */
#include "arrow_internal.h"
#include "molt_db/types.h"
#include "types_internal.h"

#include <string.h>


enum molt_db__arrow_fast {
    FAST_NONE = 0,
    FAST_BE16,  /* big-endian 2, 4, 8 bytes into native order */
    FAST_BE32,
    FAST_BE64,
    FAST_TIME,  /* int64 within a day */
    FAST_TS,    /* int64 from 2000-01-01 to 1970-01-01 (infinities kept) */
    FAST_DATE,  /* int32 days, likewise */
    FAST_BOOL,
    FAST_UUID,
    FAST_BYTES  /* the field's bytes and an int32 offset */
};

static int fast_op(const molt_db__arrow_col *c)
{
    switch (c->kind) {
    case MOLT_DB__AK_BOOL: return FAST_BOOL;
    case MOLT_DB__AK_I16: return FAST_BE16;
    case MOLT_DB__AK_I32:
    case MOLT_DB__AK_U32:
    case MOLT_DB__AK_F32: return FAST_BE32;
    case MOLT_DB__AK_I64:
    case MOLT_DB__AK_F64: return FAST_BE64;
    case MOLT_DB__AK_TIME64: return FAST_TIME;
    case MOLT_DB__AK_TS:
    case MOLT_DB__AK_TSTZ: return FAST_TS;
    case MOLT_DB__AK_DATE32: return FAST_DATE;
    case MOLT_DB__AK_UUID: return FAST_UUID;
    case MOLT_DB__AK_UTF8:
        return c->src == MOLT_DB__SRC_RAW ? FAST_BYTES : FAST_NONE;
    case MOLT_DB__AK_BINARY: return FAST_BYTES;
    default: return FAST_NONE;
    }
}

void molt_db__arrow_fast_plan(molt_db_arrow_builder *b)
{
    b->fast = 1;
    for (size_t i = 0; i < b->ncols; i++) {
        b->cols[i].fast = fast_op(&b->cols[i]);
        if (b->cols[i].fast == FAST_NONE)
            b->fast = 0;
    }
}

/* Bytes a value of a fixed-width op must have (bytes: any). */
static const int32_t op_len[] = {
    [FAST_BE16] = 2, [FAST_BE32] = 4, [FAST_BE64] = 8, [FAST_TIME] = 8,
    [FAST_TS] = 8, [FAST_DATE] = 4, [FAST_BOOL] = 1, [FAST_UUID] = 16,
    [FAST_BYTES] = -1};

static int has_room(molt_db_buf *buf, size_t n)
{
    return n <= buf->cap - buf->len || molt_db_buf_reserve(buf, n) == MOLT_DB_OK;
}

/* Room in every fixed-width buffer (values, offsets, bitmaps) for about
 * as many rows again as the batch has, at least 256, at most what the
 * batch still takes. */
static int make_room(molt_db_arrow_builder *b)
{
    size_t left = b->batch_rows - (size_t)b->rows;
    size_t n = (size_t)b->rows > 256 ? (size_t)b->rows : 256;
    if (n > left)
        n = left;
    for (size_t i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        size_t per = c->fast == FAST_BYTES ? 4 : (size_t)c->width;
        size_t vals = c->fast == FAST_BOOL ? n / 8 + 1 : n * per;
        if ((c->null_count > 0 && !has_room(&c->validity, n / 8 + 1)) ||
            !has_room(&c->values, vals))
            return 0;
    }
    b->room = n;
    return 1;
}

/* Whether a non-NULL value is one the codecs accept (its length checked
 * already), and for bytes whether the batch has room and offsets for it. */
static int value_ok(molt_db__arrow_col *c, const uint8_t *p, size_t len)
{
    int64_t v;
    switch (c->fast) {
    case FAST_BOOL:
        return p[0] <= 1;
    case FAST_TIME:
        v = (int64_t)molt_db__rd64(p);
        return v >= 0 && v <= MOLT_DB_USECS_PER_DAY;
    case FAST_TS:
        v = (int64_t)molt_db__rd64(p);
        return v == MOLT_DB_TIMESTAMP_INFINITY || v <= INT64_MAX - MOLT_DB__PG_EPOCH_USECS;
    case FAST_DATE:
        v = (int32_t)molt_db__rd32(p);
        return v == MOLT_DB_DATE_INFINITY || v <= INT32_MAX - MOLT_DB__PG_EPOCH_DAYS;
    case FAST_BYTES:
        return len <= (size_t)INT32_MAX - c->data.len && has_room(&c->data, len);
    default:
        return 1;
    }
}

/* Makes c's validity bitmap hold its bits 0 .. length-1 (all 1 while
 * the column has no NULL) with room for `more` bits after them. */
static int valid_sync(molt_db__arrow_col *c, size_t more)
{
    if (c->null_count > 0)
        return 1; /* bits are pushed, not skipped, once there is a NULL */
    size_t bytes = (size_t)(c->length + 7) / 8;
    c->validity.len = 0;
    if (!has_room(&c->validity, bytes + more / 8 + 1))
        return 0;
    memset(c->validity.data, 0xFF, (size_t)c->length / 8);
    if (c->length & 7)
        c->validity.data[bytes - 1] = (uint8_t)((1u << (c->length & 7)) - 1);
    c->validity.len = bytes;
    return 1;
}

int molt_db__arrow_fast_sync(molt_db_arrow_builder *b)
{
    for (size_t i = 0; b->fast && i < b->ncols; i++)
        if (!valid_sync(&b->cols[i], 8))
            return MOLT_DB_ENOMEM;
    return MOLT_DB_OK;
}

/* Sets bit i of a bitmap holding bits 0 .. i-1 (room made already). */
static void bit_put(molt_db_buf *bits, int64_t i, int set)
{
    uint8_t m = (uint8_t)((unsigned)set << (i & 7));
    if ((i & 7) == 0)
        bits->data[bits->len++] = m;
    else
        bits->data[i >> 3] |= m;
}

/* Writes a non-NULL value (checked by value_ok, room made). Locals, not
 * c's fields, carry the work: byte stores may alias anything, so fields
 * re-read after each store would cost a load apiece. */
static void put_fast(molt_db__arrow_col *c, const uint8_t *p, size_t len)
{
    uint8_t *at = c->values.data + c->values.len;
    size_t w = 8;
    switch (c->fast) {
    case FAST_BOOL:
        bit_put(&c->values, c->length, p[0]);
        return;
    case FAST_BE16: {
        uint16_t v = molt_db__rd16(p);
        memcpy(at, &v, 2);
        w = 2;
        break;
    }
    case FAST_BE32: {
        uint32_t v = molt_db__rd32(p);
        memcpy(at, &v, 4);
        w = 4;
        break;
    }
    case FAST_DATE: {
        int32_t v = (int32_t)molt_db__rd32(p);
        if (v != MOLT_DB_DATE_INFINITY && v != MOLT_DB_DATE_NEG_INFINITY)
            v += MOLT_DB__PG_EPOCH_DAYS;
        memcpy(at, &v, 4);
        w = 4;
        break;
    }
    case FAST_BE64:
    case FAST_TIME: {
        uint64_t v = molt_db__rd64(p);
        memcpy(at, &v, 8);
        break;
    }
    case FAST_TS: {
        int64_t v = (int64_t)molt_db__rd64(p);
        if (v != MOLT_DB_TIMESTAMP_INFINITY && v != MOLT_DB_TIMESTAMP_NEG_INFINITY)
            v += MOLT_DB__PG_EPOCH_USECS;
        memcpy(at, &v, 8);
        break;
    }
    case FAST_UUID:
        memcpy(at, p, 16);
        w = 16;
        break;
    case FAST_BYTES: {
        size_t end = c->data.len + len;
        memcpy(c->data.data + c->data.len, p, len);
        c->data.len = end;
        int32_t e = (int32_t)end;
        memcpy(at, &e, 4);
        w = 4;
        break;
    }
    }
    c->values.len += w;
}

static void put_null(molt_db__arrow_col *c)
{
    uint8_t *at = c->values.data + c->values.len;
    c->null_count++;
    if (c->fast == FAST_BOOL) {
        bit_put(&c->values, c->length, 0);
    } else if (c->fast == FAST_BYTES) {
        int32_t end = (int32_t)c->data.len;
        memcpy(at, &end, 4);
        c->values.len += 4;
    } else {
        memset(at, 0, (size_t)c->width);
        c->values.len += (size_t)c->width;
    }
}

int molt_db__arrow_fast_row(molt_db_arrow_builder *b, const molt_db_field *fields)
{
    if (b->room == 0 && !make_room(b))
        return 0;
    for (size_t i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        int32_t len = fields[i].len, want = op_len[c->fast];
        if (len < 0) {
            if (c->null_count == 0 && !valid_sync(c, b->room))
                return 0;
            continue;
        }
        if ((want >= 0 && len != want) ||
            !value_ok(c, fields[i].data, (size_t)len))
            return 0;
    }
    molt_db__arrow_col *c = b->cols, *end = b->cols + b->ncols;
    for (const molt_db_field *f = fields; c < end; c++, f++) {
        if (f->len < 0) {
            bit_put(&c->validity, c->length, 0);
            put_null(c);
        } else {
            if (c->null_count > 0)
                bit_put(&c->validity, c->length, 1);
            put_fast(c, f->data, (size_t)f->len);
            if (c->data.len >= MOLT_DB_ARROW_MAX_BATCH_BYTES)
                b->full = 1;
        }
        c->length++;
    }
    b->room--;
    b->rows++;
    if ((size_t)b->rows >= b->batch_rows)
        b->full = 1;
    return 1;
}
