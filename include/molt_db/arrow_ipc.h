/*
 * Arrow IPC streaming format writer (encapsulated messages, metadata
 * version V5, little-endian, no compression, no dictionaries).
 *
 * A stream is: molt_db_arrow_ipc_write_schema once, then
 * molt_db_arrow_ipc_write_batch per batch, then molt_db_arrow_ipc_write_eos.
 * Each call appends exactly one message to a molt_db_buf, so a caller can
 * send the three kinds of message as separate frames and the frames,
 * concatenated, are one valid stream.
 *
 * Types written: the ones molt_db_arrow_builder produces and a few more:
 * Bool, Int8..Int64 and UInt8..UInt64, Float16/32/64, Decimal128, Utf8,
 * Binary, FixedSizeBinary, Date32/64, Time32/64, Timestamp (any unit, with
 * or without a zone), Struct, List. Field metadata (extension names) is kept.
 * Sliced arrays (an offset in the batch, a column or a child; a list's
 * entries not starting at 0) are written as arrays of their own starting
 * at 0: offsets rebased and bitmaps shifted in a scratch copy, values and
 * bytes sent from where they are. A slice past an array's length is
 * MOLT_DB_EINVAL. Any other type is MOLT_DB_ETYPE.
 *
 * Return codes: MOLT_DB_OK; MOLT_DB_ENOMEM (out may have a partial message
 * appended: out->len is restored to its value before the call);
 * MOLT_DB_ETYPE / MOLT_DB_EINVAL for a schema or array this cannot write.
 *
 * Threads: a writer belongs to one thread at a time.
 */
#ifndef MOLT_DB_ARROW_IPC_H
#define MOLT_DB_ARROW_IPC_H

#include "molt_db/export.h"

#include "molt_db/arrow.h"
#include "molt_db/buf.h"
#include "molt_db/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_arrow_ipc_writer molt_db_arrow_ipc_writer;

/* Creates a writer for batches of `schema`, a struct ("+s") whose children
 * are the columns. The schema is read and copied (the caller keeps
 * ownership). Returns OK and *out, or ENOMEM / ETYPE / EINVAL. */
MOLT_DB_API
int molt_db_arrow_ipc_writer_new(const struct ArrowSchema *schema,
                                 molt_db_arrow_ipc_writer **out,
                                 molt_db_error *err);

/* Frees the writer. NULL is allowed. */
MOLT_DB_API
void molt_db_arrow_ipc_writer_free(molt_db_arrow_ipc_writer *w);

/* Appends the Schema message. */
MOLT_DB_API
int molt_db_arrow_ipc_write_schema(molt_db_arrow_ipc_writer *w,
                                   molt_db_buf *out, molt_db_error *err);

/* Appends one RecordBatch message for batch (a struct array matching the
 * schema; borrowed: the caller still releases it). Buffers are copied into
 * out, each padded to 8 bytes; a batch of 0 rows is allowed. */
MOLT_DB_API
int molt_db_arrow_ipc_write_batch(molt_db_arrow_ipc_writer *w,
                                  const struct ArrowArray *batch,
                                  molt_db_buf *out, molt_db_error *err);

/* Appends the end-of-stream marker (0xFFFFFFFF, 0x00000000). Returns OK or
 * ENOMEM. */
MOLT_DB_API
int molt_db_arrow_ipc_write_eos(molt_db_buf *out);

#ifdef __cplusplus
}
#endif
#endif
