/*
 * Query results as Arrow: the C Data Interface structs, a column batch
 * builder fed from DataRow fields, a result-handler adapter that cuts a
 * streaming result into batches, and an ArrowArrayStream over a query.
 *
 * Type mapping (docs/arrow.md has the full table): bool Bool; int2 Int16;
 * int4 Int32; int8 Int64; oid UInt32; float4 Float32; float8 Float64;
 * numeric Decimal128(p, s) when the column's typmod declares 0 <= s <= p <=
 * 38, else Utf8 (exact text); text, varchar, bpchar, name Utf8; bytea
 * Binary; uuid FixedSizeBinary(16) + extension arrow.uuid; date Date32;
 * time Time64(us); timestamp Timestamp(us); timestamptz Timestamp(us, UTC);
 * interval Struct<months Int32, days Int32, micros Int64>; json, jsonb Utf8
 * + extension arrow.json; arrays Struct<lower_bounds: List<Int32>, values:
 * List<...List<T>>> with one List per dimension (see
 * molt_db_arrow_builder_schema for when that is fixed); ranges Struct<empty: Bool, lower: Struct<value: T,
 * inclusive: Bool>, upper: the same> (an infinite or absent bound is a NULL
 * struct); every other type (multiranges, timetz, ...) and every
 * text-format column Utf8 with the server's text form.
 *
 * Infinite dates and timestamps pass through as the extremes of the
 * integer (INT32_MIN/MAX days, INT64_MIN/MAX microseconds); finite values
 * are shifted to the Unix epoch. A NaN numeric in a Decimal128 column is
 * MOLT_DB_ETYPE naming the column (Decimal128 has no NaN).
 *
 * Ownership follows the C Data Interface: whoever holds a struct whose
 * release is not NULL must call release exactly once (or move the struct:
 * copy it and set the source's release to NULL). Children of a finished
 * batch may be moved out and released after their parent.
 *
 * Threads: a builder or reader belongs to one thread at a time. Arrays and
 * schemas produced here may be released on any thread.
 */
#ifndef MOLT_DB_ARROW_H
#define MOLT_DB_ARROW_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/conn.h"
#include "molt_db/error.h"
#include "molt_db/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "molt_db/arrow_c_data.h"

/* ---- batch builder ----------------------------------------------------- */

/* Default rows per batch, and the cap on one column's variable-length data
 * in a batch (Arrow's 32-bit offsets; a batch is cut earlier when a column
 * reaches it). */
#define MOLT_DB_ARROW_DEFAULT_BATCH_ROWS 65536
#define MOLT_DB_ARROW_MAX_BATCH_BYTES ((size_t)1 << 30)

typedef struct molt_db_arrow_builder molt_db_arrow_builder;

/*
 * Creates a builder for a result with these columns (names, type_oid,
 * type_modifier and format are read; everything is copied). batch_rows 0
 * means MOLT_DB_ARROW_DEFAULT_BATCH_ROWS. Returns MOLT_DB_OK and *out, or
 * ENOMEM / EINVAL (ncols 0 is allowed).
 */
MOLT_DB_API
int molt_db_arrow_builder_new(const molt_db_column *cols, size_t ncols,
                              size_t batch_rows, molt_db_arrow_builder **out,
                              molt_db_error *err);

/* Frees the builder and its buffers. NULL is allowed. Arrays already
 * finished (molt_db_arrow_builder_finish) stay valid. */
MOLT_DB_API
void molt_db_arrow_builder_free(molt_db_arrow_builder *b);

/*
 * Appends one row: fields[i] is column i's value in that column's format
 * (len -1 for NULL). nfields must equal the column count (else EPROTO).
 * Binary values are decoded straight into the column buffers; a malformed
 * value is EPROTO, a value the column's Arrow type cannot hold ETYPE or
 * ERANGE, all with a message naming the column. On error the row is not
 * appended (the batch keeps its earlier rows).
 */
MOLT_DB_API
int molt_db_arrow_builder_append(molt_db_arrow_builder *b,
                                 const molt_db_field *fields, size_t nfields,
                                 molt_db_error *err);

/* Rows in the current batch. */
MOLT_DB_API
int64_t molt_db_arrow_builder_rows(const molt_db_arrow_builder *b);
/* 1 when the batch reached batch_rows (or a column's data cap). */
MOLT_DB_API
int molt_db_arrow_builder_full(const molt_db_arrow_builder *b);
/* Number of columns. */
MOLT_DB_API
size_t molt_db_arrow_builder_ncols(const molt_db_arrow_builder *b);

/*
 * The schema: a struct ("+s") whose children are the columns, each
 * nullable, named as the result named it, extension metadata where the
 * mapping says. *out is owned by the caller (call out->release). Returns
 * OK or ENOMEM (then out->release is NULL).
 *
 * Arrays: an array column has one List level per dimension, taken from the
 * first array with dimensions appended; taking the schema fixes it (to 1
 * when only NULL or empty arrays came so far). From then on, an array of
 * another dimensionality is MOLT_DB_ETYPE naming the column. So take the
 * schema after the first batch's rows, as the reader does.
 */
MOLT_DB_API
int molt_db_arrow_builder_schema(molt_db_arrow_builder *b,
                                 struct ArrowSchema *out, molt_db_error *err);

/*
 * Finishes the current batch into *out (a struct array of the columns, 0
 * rows allowed) and starts an empty one. The buffers move into *out: the
 * caller owns it and calls out->release, from any thread. The builder
 * allocates fresh buffers for the next batch. Returns OK or ENOMEM (the
 * batch is then kept; out->release is NULL).
 */
MOLT_DB_API
int molt_db_arrow_builder_finish(molt_db_arrow_builder *b,
                                 struct ArrowArray *out, molt_db_error *err);

/*
 * A borrowed view of the current batch, without copying or allocating: the
 * buffers stay the builder's and are valid until the next append, reset,
 * finish or free. out->release only marks the view released (call it or
 * not). Used to serialize a batch and then reuse its memory
 * (molt_db_arrow_builder_reset).
 */
MOLT_DB_API
void molt_db_arrow_builder_view(molt_db_arrow_builder *b,
                                struct ArrowArray *out);

/* Empties the current batch, keeping the buffers' memory for the next. */
MOLT_DB_API
void molt_db_arrow_builder_reset(molt_db_arrow_builder *b);

/* ---- result handler adapter -------------------------------------------- */

typedef struct molt_db_arrow_reader molt_db_arrow_reader;

typedef struct molt_db_arrow_reader_options {
    size_t batch_rows;  /* 0: MOLT_DB_ARROW_DEFAULT_BATCH_ROWS */
    /* Borrowed batches: on_batch gets a view into the builder's buffers
     * (valid during the call only; its memory is reused for the next
     * batch, so no allocation per batch). 0: owned batches, moved to the
     * callback. */
    int borrow;
    /* Once per result set, just before its first batch (so that array
     * dimensions are known from the first batch's rows). schema is
     * borrowed: valid during the call only (move it to keep it). Return OK
     * or a negative code to fail the request. May be NULL. */
    int (*on_schema)(void *ud, struct ArrowSchema *schema);
    /* Each batch (full ones, then the last partial one; a result with no
     * rows gives one empty batch). Owned mode: the callee owns *batch and
     * must release or move it. Borrow mode: valid during the call only.
     * Return OK or a negative code to fail the request. */
    int (*on_batch)(void *ud, struct ArrowArray *batch);
    /* Exactly once, last: the query's status, or the first error of the
     * reader or a callback. err valid during the call only. */
    void (*on_done)(void *ud, int status, const molt_db_error *err);
    void *ud;
} molt_db_arrow_reader_options;

/* Creates a reader. Returns OK and *out, or ENOMEM / EINVAL (no on_batch). */
MOLT_DB_API
int molt_db_arrow_reader_new(const molt_db_arrow_reader_options *opts,
                             molt_db_arrow_reader **out, molt_db_error *err);

/* The handler to pass to molt_db_conn_query / execute / simple_query. The
 * reader must outlive the request (until its on_done ran). */
MOLT_DB_API
molt_db_result_handler molt_db_arrow_reader_handler(molt_db_arrow_reader *r);

/* The builder of the current result set (NULL before the first). */
MOLT_DB_API
molt_db_arrow_builder *molt_db_arrow_reader_builder(molt_db_arrow_reader *r);

/* Frees the reader. Not while its request is pending. NULL is allowed. */
MOLT_DB_API
void molt_db_arrow_reader_free(molt_db_arrow_reader *r);

/* ---- ArrowArrayStream over a query -------------------------------------- */

/*
 * A blocking stream over one query, for a consumer without an event loop:
 * connects with ci (copied) on a connection and a driven loop of the
 * stream's own (loop_driven.h), waits for the connection, starts sql
 * (extended protocol, params copied) and fills *out. get_schema/get_next
 * turn that private loop on the calling thread until the next batch is
 * there, with at most a socket read's worth of batches buffered; nothing
 * else runs on it. get_next ends with a released (release NULL) array; an
 * error is an errno code (EIO, ENOMEM, EINVAL) and get_last_error gives the
 * message. Releasing the stream closes its connection (the rest of the
 * rows is not read) and frees everything. On a loop of your own, run the
 * reader above instead (molt_db_arrow_reader_new): its batches arrive in
 * callbacks and nothing blocks.
 * Returns OK, or ECONNECT / the server's error (err says why), ENOMEM,
 * EINVAL (out->release NULL).
 */
MOLT_DB_API
int molt_db_arrow_stream_open(const molt_db_conninfo *ci, const char *sql,
                              size_t nparams, const molt_db_param *params,
                              size_t batch_rows, struct ArrowArrayStream *out,
                              molt_db_error *err);

#ifdef __cplusplus
}
#endif
#endif
