/*
 * A tiny FlatBuffers writer for the Arrow IPC metadata (Message, Schema,
 * RecordBatch). It builds back to front, as FlatBuffers are meant to be
 * built: an object is written before whatever refers to it, so every
 * uoffset points forward. References are distances from the end of the
 * buffer, stable while it grows. Scalars are written little-endian.
 *
 * Errors are sticky (like molt_db_buf): check molt_db__fb_ok once at the end.
 * One table at a time: build a table's strings, vectors and sub-tables
 * before molt_db__fb_start.
 */
#ifndef MOLT_DB_ARROW_FB_H
#define MOLT_DB_ARROW_FB_H

#include <stddef.h>
#include <stdint.h>

#define MOLT_DB__FB_MAX_FIELDS 16

typedef uint32_t molt_db__fb_ref;

typedef struct molt_db__fb {
    uint8_t *buf;
    size_t cap;
    size_t size;       /* bytes used, at the end of buf */
    int failed;
    size_t obj_start;  /* size when the current table started */
    uint32_t slots[MOLT_DB__FB_MAX_FIELDS];  /* field positions, 0: absent */
    int nslots;        /* highest field id + 1 */
} molt_db__fb;

/* Empties the builder (keeps memory). */
void molt_db__fb_reset(molt_db__fb *f);
void molt_db__fb_free(molt_db__fb *f);
int molt_db__fb_ok(const molt_db__fb *f);

molt_db__fb_ref molt_db__fb_string(molt_db__fb *f, const char *s, size_t len);
/* A vector of n references (tables or strings), in order. */
molt_db__fb_ref molt_db__fb_vec_refs(molt_db__fb *f, const molt_db__fb_ref *refs,
                                     size_t n);
/* A vector of n structs of elem_size bytes each, already little-endian,
 * aligned to align (a power of two). */
molt_db__fb_ref molt_db__fb_vec_structs(molt_db__fb *f, const void *data,
                                        size_t n, size_t elem_size,
                                        size_t align);

void molt_db__fb_start(molt_db__fb *f);
void molt_db__fb_add_u8(molt_db__fb *f, int id, uint8_t v);
void molt_db__fb_add_i16(molt_db__fb *f, int id, int16_t v);
void molt_db__fb_add_i32(molt_db__fb *f, int id, int32_t v);
void molt_db__fb_add_i64(molt_db__fb *f, int id, int64_t v);
void molt_db__fb_add_ref(molt_db__fb *f, int id, molt_db__fb_ref r);
molt_db__fb_ref molt_db__fb_end(molt_db__fb *f);

/* Writes the root offset; the finished buffer is molt_db__fb_data(f),
 * f->size bytes (a multiple of 8). */
void molt_db__fb_finish(molt_db__fb *f, molt_db__fb_ref root);
const uint8_t *molt_db__fb_data(const molt_db__fb *f);

#endif
