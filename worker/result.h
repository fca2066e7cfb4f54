/*
 * A result being built (contract section 7): columns, rows encoded as they
 * arrive (JSON, MsgPack or Arrow IPC), max_rows with `truncated`,
 * streaming parts, and db_exec's per-statement maps.
 *
 * Backends call, in order: mw_result_columns (or _pg_columns), then per row
 * mw_result_row_begin / values / mw_result_row_end (or mw_result_pg_row),
 * then for db_exec mw_result_stmt_end per statement, and the request layer
 * calls mw_result_finish for the payload of the final frame.
 *
 * Streaming parts are queued inside the result (mw_result_take_parts
 * drains them on the loop thread), so a backend may build rows on a
 * thread-pool thread. A result belongs to one thread at a time.
 *
 * Ownership: the result owns its buffers and copies of the column names;
 * mw_result_free releases them. Errors: allocation failures make
 * mw_result_ok return MOLT_DB_ENOMEM.
 */
#ifndef MW_RESULT_H
#define MW_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "encode.h"
#include "envelope.h"
#include "molt_db/arrow.h"
#include "molt_db/arrow_ipc.h"
#include "molt_db/buf.h"
#include "molt_db/protocol.h"

typedef struct mw_result_opts {
    mw_format format;
    int objects;          /* row_shape objects */
    int stream;
    int exec;             /* db_exec: per-statement maps */
    int statements;       /* db_exec with a statements list */
    uint64_t max_rows;    /* 0: no limit */
    size_t batch_rows;
    uint64_t max_bytes;   /* a non-streamed result or one batch; 0: no limit */
} mw_result_opts;

typedef struct mw_result {
    mw_result_opts o;
    mw_enc enc;                 /* writes rows into `rows` */
    molt_db_buf rows;           /* rows of the current batch (or all) */
    uint64_t batch_count;       /* rows in `rows` */
    uint64_t row_count;         /* rows of the current statement */
    uint64_t total_rows;        /* over all statements */
    int truncated;
    int have_columns;
    size_t ncols;
    char **names;
    char **types;
    molt_db_buf stmts;          /* db_exec: finished statement maps */
    size_t nstmts;
    molt_db_buf parts;          /* queued parts: u32 length (host order) + bytes */
    int columns_sent;
    int failed;                 /* an allocation failed */
    int too_large;              /* max_bytes passed: the rows stop */
    /* Arrow */
    molt_db_arrow_builder *ab;
    molt_db_arrow_ipc_writer *aw;
    molt_db_buf arrow;          /* non-streamed Arrow stream bytes */
    molt_db_buf text;           /* enc's scratch: a value's server text */
    int arrow_batches;
    /* names of non-built-in PostgreSQL types (pg_types.h), or NULL */
    const struct mw_pg_types *pg_types;
    /* metrics */
    uint64_t bytes_in;
    uint64_t encode_ns;
} mw_result;

void mw_result_init(mw_result *r, const mw_result_opts *o);
void mw_result_free(mw_result *r);

/* MOLT_DB_OK, MOLT_DB_ENOMEM, or MOLT_DB_ERANGE once the result passed
 * max_bytes (too_large is set: stop reading and cancel; the request layer
 * answers with the reason). */
int mw_result_ok(const mw_result *r);

/* Columns of the next result set: names and contract type names, copied. */
int mw_result_columns(mw_result *r, size_t ncols, const char *const *names,
                      const char *const *types);
/* PostgreSQL columns (also sets up the Arrow builder for arrow_ipc). */
int mw_result_pg_columns(mw_result *r, const molt_db_column *cols,
                         size_t ncols, molt_db_error *err);

/* Returns 0 to go on with a row, 1 when max_rows is reached (truncated is
 * now set: stop reading). */
int mw_result_row_begin(mw_result *r);
/* Before value i of a row: the key in object rows. */
void mw_result_key(mw_result *r, size_t i);
void mw_result_row_end(mw_result *r);
/* Before a value of about n bytes is written: 1 when the result would
 * still be within max_bytes, else 0 with too_large set (write nothing
 * more: stop reading). Bounds the memory of one wide row to max_bytes
 * plus one value rather than the whole row. */
int mw_result_room(mw_result *r, uint64_t n);

/* A whole PostgreSQL DataRow (JSON/MsgPack values or an Arrow row).
 * Returns MOLT_DB_OK, 1 when max_rows or max_bytes was reached (stop
 * reading; with max_bytes too_large is set), or an
 * error (EPROTO/ETYPE/ERANGE/ENOMEM with err). A value its column's Arrow
 * type cannot hold (a timestamp or date past Timestamp(us) or Date32, a
 * NaN or too many digits for a Decimal128, an array of other dimensions
 * than its column's) also sets err->sqlstate to MW_SQLSTATE_UNCARRIED. */
int mw_result_pg_row(mw_result *r, const molt_db_column *cols,
                     const molt_db_field *fields, size_t n, molt_db_error *err);

/* The SQLSTATE (data_exception) of a value the result format cannot carry:
 * the query's own error, as the database's 22xxx for a value its type
 * cannot take, answered DbError wherever the query runs. */
#define MW_SQLSTATE_UNCARRIED "22000"

/* The answer to a failed mw_result_pg_columns / mw_result_pg_row: DbError
 * when it set err->sqlstate, else InternalError. */
mw_status mw_result_error_status(const molt_db_error *err);

/* db_exec: closes the current statement's map. */
void mw_result_stmt_end(mw_result *r, int64_t rows_affected, int has_last_id,
                        int64_t last_id);

/* Calls cb for each queued streaming part, then empties the queue. */
void mw_result_take_parts(mw_result *r,
                          void (*cb)(void *ud, const uint8_t *p, size_t n),
                          void *ud);

/* The payload of the final frame, in three pieces (head + body + tail,
 * head and tail appended to): the whole result, or when streaming the
 * closing part (Arrow EOS; JSON/MsgPack {"row_count", "truncated"}). The
 * body is the result's rows buffer itself, moved there rather than copied
 * (empty when streaming), so a buffered result is held once. Any rows
 * still batched become a part first (take the parts before sending the
 * final frame). */
int mw_result_finish(mw_result *r, molt_db_buf *head, molt_db_buf *body,
                     molt_db_buf *tail, molt_db_error *err);

#endif
