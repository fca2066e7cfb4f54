/*
 * Arrow batches into a table through COPY ... FROM STDIN (FORMAT binary).
 *
 * Each column of the batches' schema goes to the table column of the same
 * name, encoded in that column's binary format. Accepted pairs (Arrow ->
 * PostgreSQL; only widening for numbers):
 *   Bool -> bool; Int16 -> int2, int4, int8; Int32 -> int4, int8;
 *   Int64 -> int8; UInt32 -> oid, int8; Float32 -> float4, float8;
 *   Float64 -> float8; Decimal128 -> numeric; Utf8 -> text, varchar,
 *   bpchar, name, json, jsonb; Binary -> bytea; FixedSizeBinary(16) ->
 *   uuid; Date32 -> date; Time64(us) -> time; Timestamp(us[, tz]) ->
 *   timestamp, timestamptz; Struct<months Int32, days Int32, micros Int64>
 *   -> interval; Utf8 -> numeric, timetz, "char" (their text as the
 *   server prints it, which is how the reader gives them). The pairs are
 *   the type table's (src/types_value.c), which lists for each type the
 *   Arrow types that go into it.
 * Arrays (any element type above, up to 6 dimensions): the reader's
 *   Struct<lower_bounds: List<Int32>, values: List<..List<T>>>, or a plain
 *   (nested) List<T> with lower bounds 1. Every level must be rectangular
 *   and no sub-list NULL (PostgreSQL has neither); an empty list is '{}'.
 * Ranges: the reader's Struct<empty: Bool, lower: Struct<value: T,
 *   inclusive: Bool>, upper: the same>; a NULL bound (or bound value) is
 *   infinite. Arrays of ranges work too.
 * Dates and timestamps are Unix-epoch based; INT32/INT64 extremes become
 * -infinity/infinity (the inverse of the Arrow output). Anything else is
 * MOLT_DB_ETYPE naming the column, found before any row is sent.
 *
 * Threads: everything here runs on the connection's loop thread.
 */
#ifndef MOLT_DB_ARROW_COPY_H
#define MOLT_DB_ARROW_COPY_H

#include "molt_db/export.h"

#include "molt_db/arrow.h"
#include "molt_db/buf.h"
#include "molt_db/conn.h"
#include "molt_db/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_copy_encoder molt_db_copy_encoder;

/* An encoder for batches of `schema` (a struct of columns) into table
 * columns of types oids[0..n) (n must equal the column count). schema is
 * read, not kept. Returns OK, ETYPE (a pair not accepted; the message
 * names the column), EINVAL, ENOMEM. */
MOLT_DB_API
int molt_db_copy_encoder_new(const struct ArrowSchema *schema,
                             const uint32_t *oids, size_t n,
                             molt_db_copy_encoder **out, molt_db_error *err);
MOLT_DB_API
void molt_db_copy_encoder_free(molt_db_copy_encoder *e);

/* The 19-byte file header, once first; the trailer, once last. */
MOLT_DB_API
void molt_db_copy_encode_header(molt_db_buf *out);
MOLT_DB_API
void molt_db_copy_encode_trailer(molt_db_buf *out);

/* Appends one tuple per row of batch (offsets honoured: the batch's, each
 * column's, a struct's for its children, a list's child ranges). ERANGE
 * for a value the target cannot take (a date past int32 after the epoch
 * shift, a time outside 0..24h), EINVAL for a malformed nested value
 * (list offsets out of bounds, a ragged or NULL sub-array, lower bounds
 * not one per dimension), each naming the column and row; ENOMEM. On error
 * out->len is restored. */
MOLT_DB_API
int molt_db_copy_encode_batch(molt_db_copy_encoder *e,
                              const struct ArrowArray *batch, molt_db_buf *out,
                              molt_db_error *err);

/* Done: status, rows the server copied. err valid during the call. */
typedef void (*molt_db_arrow_copy_done_cb)(void *ud, int status,
                                           const molt_db_error *err,
                                           uint64_t rows);

/*
 * Copies every batch of `batches` into `table` (an identifier or a
 * schema-qualified one, as SQL text: it is put into the statements as
 * given), the columns named as the stream's schema names them (quoted).
 * The stream is moved in (released by the library when done, on success
 * or failure) and is pulled on the loop thread as the send buffer drains
 * (at most about 1 MiB queued). A describe of the target columns and the
 * COPY are pipelined; a type mismatch, a stream error or an encoding error
 * aborts the COPY (nothing is inserted) and cb gets that error.
 * Returns OK (cb will run), or EINVAL / ENOMEM / ECLOSED (cb will not run;
 * the stream is released).
 */
MOLT_DB_API
int molt_db_arrow_copy_in(molt_db_conn *conn, const char *table,
                          struct ArrowArrayStream *batches,
                          molt_db_arrow_copy_done_cb cb, void *ud);

#ifdef __cplusplus
}
#endif
#endif
