/* Bounded FlatBuffers reading: tables, scalars, strings and vectors of a
 * buffer that came from outside, every offset checked against the buffer.
 *
 * Plain C, no Python (the fuzz target fuzz_arrow_ipc_read links it). A
 * table read from a buffer is a view: it points into the buffer and owns
 * nothing. The accessors answer 1 (present: *out set), 0 (absent: *out
 * holds the default) or -1 (malformed: an offset or size leaves the
 * buffer, or the field is larger than its table).
 */
#ifndef MOLT_FB_READ_H
#define MOLT_FB_READ_H

#include <stddef.h>
#include <stdint.h>

typedef struct fb_table {
    const uint8_t *buf;  /* the whole flatbuffer */
    size_t len;
    size_t pos;          /* the table's start; 0 with vtlen 0: an absent table */
    size_t vt;           /* its vtable */
    uint16_t vtlen, tlen;
} fb_table;

/* The root table of buf[0, len). 0 on success, -1 when malformed. */
int fb_root(const uint8_t *buf, size_t len, fb_table *t);

/* A table with no fields (every accessor answers 0): an absent table
 * field read with its defaults. */
void fb_empty(fb_table *t, const uint8_t *buf, size_t len);

int fb_i64(const fb_table *t, int id, int64_t def, int64_t *out);
int fb_i32(const fb_table *t, int id, int32_t def, int32_t *out);
int fb_i16(const fb_table *t, int id, int16_t def, int16_t *out);
int fb_u8(const fb_table *t, int id, uint8_t def, uint8_t *out);

/* A table field. */
int fb_table_field(const fb_table *t, int id, fb_table *out);

/* A string field: *s points into the buffer (not NUL-terminated), *n bytes. */
int fb_string(const fb_table *t, int id, const char **s, uint32_t *n);

/* A vector field of n elements of elem bytes each: *at is the offset of
 * element 0 in the buffer. */
int fb_vector(const fb_table *t, int id, size_t elem, size_t *at, uint32_t *n);

/* Element i of a vector of tables (at, n from fb_vector with elem 4). */
int fb_vector_table(const fb_table *t, size_t at, uint32_t n, uint32_t i, fb_table *out);

#endif
