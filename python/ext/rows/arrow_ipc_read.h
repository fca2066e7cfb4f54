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

#include "molt_db/arrow_c_data.h"

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
