/* Tiny back-to-front FlatBuffers builder (see arrow_fb.h). */
#include "arrow_fb.h"
#include "molt_db/error.h"

#include <stdlib.h>
#include <string.h>

void molt_db__fb_reset(molt_db__fb *f)
{
    f->size = 0;
    f->failed = 0;
    f->nslots = 0;
}

void molt_db__fb_free(molt_db__fb *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}

int molt_db__fb_ok(const molt_db__fb *f)
{
    return f->failed ? MOLT_DB_ENOMEM : MOLT_DB_OK;
}

const uint8_t *molt_db__fb_data(const molt_db__fb *f)
{
    return f->buf + f->cap - f->size;
}

/* Room for n more bytes in front of the data; the data moves to the end of
 * a larger buffer. */
static int room(molt_db__fb *f, size_t n)
{
    if (f->failed)
        return 0;
    if (f->cap - f->size >= n)
        return 1;
    size_t cap = f->cap ? f->cap : 512;
    while (cap - f->size < n) {
        if (cap > SIZE_MAX / 4 || cap > UINT32_MAX / 2) {
            f->failed = 1; /* uoffsets are 32-bit */
            return 0;
        }
        cap *= 2;
    }
    uint8_t *nb = malloc(cap);
    if (nb == NULL) {
        f->failed = 1;
        return 0;
    }
    if (f->size)
        memcpy(nb + cap - f->size, f->buf + f->cap - f->size, f->size);
    free(f->buf);
    f->buf = nb;
    f->cap = cap;
    return 1;
}

static void push(molt_db__fb *f, const void *p, size_t n)
{
    if (n == 0 || !room(f, n))
        return;
    f->size += n;
    memcpy(f->buf + f->cap - f->size, p, n);
}

static void push_zeros(molt_db__fb *f, size_t n)
{
    if (n == 0 || !room(f, n))
        return;
    f->size += n;
    memset(f->buf + f->cap - f->size, 0, n);
}

/* Pads so that after `additional` more bytes the size is a multiple of
 * align (alignment is counted from the end, which becomes the start of an
 * 8-aligned buffer at finish). */
static void prep(molt_db__fb *f, size_t align, size_t additional)
{
    size_t pad = (size_t)(0 - (f->size + additional)) & (align - 1);
    push_zeros(f, pad);
}

static void push_le(molt_db__fb *f, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    push(f, b, n);
}

/* A uoffset written at the next 4 bytes, pointing at r. */
static void push_uoffset(molt_db__fb *f, molt_db__fb_ref r)
{
    prep(f, 4, 0);
    push_le(f, (uint32_t)(f->size + 4 - r), 4);
}

molt_db__fb_ref molt_db__fb_string(molt_db__fb *f, const char *s, size_t len)
{
    prep(f, 4, len + 1);
    push_zeros(f, 1);
    push(f, s, len);
    push_le(f, (uint32_t)len, 4);
    return (molt_db__fb_ref)f->size;
}

molt_db__fb_ref molt_db__fb_vec_refs(molt_db__fb *f, const molt_db__fb_ref *refs,
                                     size_t n)
{
    prep(f, 4, 4 * n);
    for (size_t i = n; i-- > 0;)
        push_uoffset(f, refs[i]);
    push_le(f, (uint32_t)n, 4);
    return (molt_db__fb_ref)f->size;
}

molt_db__fb_ref molt_db__fb_vec_structs(molt_db__fb *f, const void *data,
                                        size_t n, size_t elem_size, size_t align)
{
    prep(f, 4, n * elem_size);
    prep(f, align, n * elem_size);
    push(f, data, n * elem_size);
    push_le(f, (uint32_t)n, 4);
    return (molt_db__fb_ref)f->size;
}

void molt_db__fb_start(molt_db__fb *f)
{
    memset(f->slots, 0, sizeof f->slots);
    f->nslots = 0;
    f->obj_start = f->size;
}

static void slot(molt_db__fb *f, int id)
{
    if (id < 0 || id >= MOLT_DB__FB_MAX_FIELDS) {
        f->failed = 1;
        return;
    }
    f->slots[id] = (uint32_t)f->size;
    if (id + 1 > f->nslots)
        f->nslots = id + 1;
}

static void add_scalar(molt_db__fb *f, int id, uint64_t v, size_t n)
{
    prep(f, n, 0);
    push_le(f, v, n);
    slot(f, id);
}

void molt_db__fb_add_u8(molt_db__fb *f, int id, uint8_t v)
{
    add_scalar(f, id, v, 1);
}

void molt_db__fb_add_i16(molt_db__fb *f, int id, int16_t v)
{
    add_scalar(f, id, (uint16_t)v, 2);
}

void molt_db__fb_add_i32(molt_db__fb *f, int id, int32_t v)
{
    add_scalar(f, id, (uint32_t)v, 4);
}

void molt_db__fb_add_i64(molt_db__fb *f, int id, int64_t v)
{
    add_scalar(f, id, (uint64_t)v, 8);
}

void molt_db__fb_add_ref(molt_db__fb *f, int id, molt_db__fb_ref r)
{
    push_uoffset(f, r);
    slot(f, id);
}

molt_db__fb_ref molt_db__fb_end(molt_db__fb *f)
{
    /* the table starts with an soffset to its vtable, patched below */
    prep(f, 4, 0);
    push_le(f, 0, 4);
    uint32_t table = (uint32_t)f->size;
    size_t obj_size = table - f->obj_start;
    /* vtable: [vtable bytes, object bytes, field offsets...], just before
     * the table (lower address: a positive soffset) */
    for (int id = f->nslots; id-- > 0;)
        push_le(f, f->slots[id] ? table - f->slots[id] : 0, 2);
    push_le(f, obj_size, 2);
    push_le(f, 4 + 2 * (uint64_t)f->nslots, 2);
    if (f->failed)
        return 0;
    uint32_t vt = (uint32_t)f->size;
    int32_t soff = (int32_t)(vt - table);
    uint8_t *at = f->buf + f->cap - table;
    for (int i = 0; i < 4; i++)
        at[i] = (uint8_t)((uint32_t)soff >> (8 * i));
    f->nslots = 0;
    return table;
}

void molt_db__fb_finish(molt_db__fb *f, molt_db__fb_ref root)
{
    prep(f, 8, 4);
    push_uoffset(f, root);
}
