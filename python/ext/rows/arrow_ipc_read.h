/* Arrow IPC stream bytes (the encapsulated messages src/arrow_ipc.c
 * writes) as an ArrowArrayStream whose arrays point into those bytes.
 *
 * Plain C, no Python: python/ext/rows/arrow_capsule.c wraps it for the
 * _rows module, tests/fuzz/fuzz_arrow_ipc_read.c fuzzes it.
 *
 * Accepted: one Schema message, RecordBatch messages, the end-of-stream
 * mark as the last 8 bytes; each message inside one chunk; metadata
 * version V4 or V5, little-endian, uncompressed, no dictionaries; the
 * types Int (8-64 bits), FloatingPoint, Binary, Utf8, Bool, Decimal128,
 * Date, Time, Timestamp, List, Struct and FixedSizeBinary, with field
 * custom metadata (ARROW:extension:name ...) passed on. Anything else is
 * refused with a message; nothing past a checked offset is ever read.
 */
#ifndef MOLT_ARROW_IPC_READ_H
#define MOLT_ARROW_IPC_READ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
    int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
    int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
    const char *(*get_last_error)(struct ArrowArrayStream *);
    void (*release)(struct ArrowArrayStream *);
    void *private_data;
};

#endif /* ARROW_C_STREAM_INTERFACE */

/* Whoever keeps the bytes alive. Every array handed out, and the stream,
 * holds a reference; drop(owner) runs once, when the last one goes, on
 * whatever thread releases it. */
typedef struct ipc_owner {
    atomic_long refs;
    void (*drop)(struct ipc_owner *);
} ipc_owner;

void ipc_owner_ref(ipc_owner *o);
void ipc_owner_unref(ipc_owner *o);

/* One chunk of the stream: len bytes at data, 8-byte aligned (the
 * buffers inside are then aligned as the writer placed them). */
typedef struct ipc_chunk {
    const uint8_t *data;
    size_t len;
} ipc_chunk;

/* Parses and checks the whole stream (every message, offset, length and
 * offsets buffer) and fills *out, whose batches point into the chunks.
 * On success the stream and each batch hold references to owner (the
 * caller keeps its own); on failure out is untouched, nothing holds owner
 * and err (errlen bytes) says what is wrong. 0 on success, -1 on a
 * malformed or unsupported stream, -2 when out of memory. */
int ipc_stream_open(const ipc_chunk *chunks, size_t nchunks, ipc_owner *owner,
                    struct ArrowArrayStream *out, char *err, size_t errlen);

#endif
