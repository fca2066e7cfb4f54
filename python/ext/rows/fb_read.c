/* Bounded FlatBuffers reading (fb_read.h). */
#include "fb_read.h"

#include <string.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The table at pos: its vtable and both within the buffer. */
static int table_at(const uint8_t *buf, size_t len, size_t pos, fb_table *t)
{
    if (len < 4 || pos > len - 4)
        return -1;
    int64_t vt = (int64_t)pos - (int32_t)le32(buf + pos);
    if (vt < 0 || (uint64_t)vt > len - 4)
        return -1;
    t->buf = buf;
    t->len = len;
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vtlen = le16(buf + vt);
    t->tlen = le16(buf + vt + 2);
    if (t->vtlen < 4 || (t->vtlen & 1) || t->vtlen > len - t->vt || t->tlen < 4 ||
        t->tlen > len - pos)
        return -1;
    return 0;
}

int fb_root(const uint8_t *buf, size_t len, fb_table *t)
{
    if (len < 4)
        return -1;
    return table_at(buf, len, le32(buf), t);
}

void fb_empty(fb_table *t, const uint8_t *buf, size_t len)
{
    memset(t, 0, sizeof *t);
    t->buf = buf;
    t->len = len;
}

/* Where field id's size bytes are: 1 present, 0 absent, -1 malformed. */
static int field(const fb_table *t, int id, size_t size, size_t *at)
{
    size_t slot = 4 + 2 * (size_t)id;
    if (id < 0 || slot + 2 > t->vtlen)
        return 0;
    uint16_t off = le16(t->buf + t->vt + slot);
    if (off == 0)
        return 0;
    if (off < 4 || size > t->tlen || off > t->tlen - size)
        return -1;
    *at = t->pos + off;
    return 1;
}

int fb_i64(const fb_table *t, int id, int64_t def, int64_t *out)
{
    size_t at;
    int rc = field(t, id, 8, &at);
    *out = def;
    if (rc == 1) {
        uint64_t v = (uint64_t)le32(t->buf + at) | (uint64_t)le32(t->buf + at + 4) << 32;
        memcpy(out, &v, 8);
    }
    return rc;
}

int fb_i32(const fb_table *t, int id, int32_t def, int32_t *out)
{
    size_t at;
    int rc = field(t, id, 4, &at);
    *out = rc == 1 ? (int32_t)le32(t->buf + at) : def;
    return rc;
}

int fb_i16(const fb_table *t, int id, int16_t def, int16_t *out)
{
    size_t at;
    int rc = field(t, id, 2, &at);
    *out = rc == 1 ? (int16_t)le16(t->buf + at) : def;
    return rc;
}

int fb_u8(const fb_table *t, int id, uint8_t def, uint8_t *out)
{
    size_t at;
    int rc = field(t, id, 1, &at);
    *out = rc == 1 ? t->buf[at] : def;
    return rc;
}

/* The offset in field id, followed: the position it names. */
static int follow(const fb_table *t, int id, size_t *target)
{
    size_t at;
    int rc = field(t, id, 4, &at);
    if (rc != 1)
        return rc;
    uint32_t u = le32(t->buf + at);
    if (u > t->len - at)
        return -1;
    *target = at + u;
    return 1;
}

int fb_table_field(const fb_table *t, int id, fb_table *out)
{
    size_t target;
    int rc = follow(t, id, &target);
    if (rc != 1) {
        fb_empty(out, t->buf, t->len);
        return rc;
    }
    return table_at(t->buf, t->len, target, out) < 0 ? -1 : 1;
}

int fb_vector(const fb_table *t, int id, size_t elem, size_t *at, uint32_t *n)
{
    size_t target;
    *at = 0;
    *n = 0;
    int rc = follow(t, id, &target);
    if (rc != 1)
        return rc;
    if (target > t->len - 4)
        return -1;
    uint32_t count = le32(t->buf + target);
    if (elem != 0 && count > (t->len - target - 4) / elem)
        return -1;
    *at = target + 4;
    *n = count;
    return 1;
}

int fb_string(const fb_table *t, int id, const char **s, uint32_t *n)
{
    size_t at;
    int rc = fb_vector(t, id, 1, &at, n);
    *s = rc == 1 ? (const char *)t->buf + at : "";
    return rc;
}

int fb_vector_table(const fb_table *t, size_t at, uint32_t n, uint32_t i, fb_table *out)
{
    if (i >= n)
        return -1;
    size_t slot = at + 4 * (size_t)i;
    uint32_t u = le32(t->buf + slot);
    if (u > t->len - slot)
        return -1;
    return table_at(t->buf, t->len, slot + u, out);
}
