/*
 * Struct mode: rows decoded straight into an array of C structs that the
 * caller describes with a static table.
 *
 *   typedef struct item {
 *       int64_t id; char code[8]; double price; bool price_null;
 *       molt_db_string_view name; int64_t created_us;
 *   } item;
 *   static const molt_db_member item_members[] = {
 *       {"id", 0, offsetof(item, id), MOLT_DB_MEMBER_INT64},
 *       {"code", 0, offsetof(item, code), MOLT_DB_MEMBER_CHARS,
 *        .size = sizeof ((item *)0)->code},
 *       {"price", 0, offsetof(item, price), MOLT_DB_MEMBER_DOUBLE,
 *        .null_offset = MOLT_DB_NULL_FLAG(item, price_null)},
 *       ...
 *   };
 *
 * A description is checked against a result's columns once per statement
 * (molt_db_rowstruct_bind): by name, or by 0-based position when column is
 * NULL; the member type must take the column's type (table in
 * docs/arrow.md). Then molt_db_rowstruct_decode fills one struct per row
 * without allocating (except MOLT_DB_MEMBER_STRING_COPY/BYTES_COPY, which
 * malloc by definition).
 *
 * Time members use the Unix epoch: timestamps as int64 microseconds since
 * 1970-01-01 00:00:00 (UTC for timestamptz), dates as int32 days since
 * 1970-01-01; infinities pass through as INT64_MIN/MAX and INT32_MIN/MAX.
 *
 * Threads: a plan may be used by several threads at once; a reader belongs
 * to one thread.
 */
#ifndef MOLT_DB_ROWSTRUCT_H
#define MOLT_DB_ROWSTRUCT_H

#include "molt_db/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "molt_db/conn.h"
#include "molt_db/error.h"
#include "molt_db/protocol.h"
#include "molt_db/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum molt_db_member_type {
    MOLT_DB_MEMBER_BOOL = 1,     /* bool                  <- bool */
    MOLT_DB_MEMBER_INT16,        /* int16_t               <- int2 */
    MOLT_DB_MEMBER_INT32,        /* int32_t               <- int2, int4 */
    MOLT_DB_MEMBER_INT64,        /* int64_t               <- int2, int4, int8, oid */
    MOLT_DB_MEMBER_FLOAT,        /* float                 <- float4 */
    MOLT_DB_MEMBER_DOUBLE,       /* double                <- float4, float8 */
    MOLT_DB_MEMBER_TIMESTAMP_US, /* int64_t, Unix epoch   <- timestamp, timestamptz */
    MOLT_DB_MEMBER_DATE_DAYS,    /* int32_t, Unix epoch   <- date */
    MOLT_DB_MEMBER_CHARS,        /* char[size], NUL-terminated copy <- any (text form) */
    MOLT_DB_MEMBER_STRING_VIEW,  /* molt_db_string_view   <- any (text form) */
    MOLT_DB_MEMBER_STRING_COPY,  /* char *, malloc'ed, NUL-terminated <- any */
    MOLT_DB_MEMBER_BYTES_VIEW,   /* molt_db_bytes_view    <- bytea */
    MOLT_DB_MEMBER_BYTES_COPY,   /* molt_db_bytes_view whose data is malloc'ed */
    MOLT_DB_MEMBER_UUID,         /* uint8_t[16]           <- uuid */
    MOLT_DB_MEMBER_DECIMAL128    /* molt_db_decimal128 at the member's scale <- numeric */
} molt_db_member_type;

/* A string or bytes value. Views point into the connection's receive
 * buffer (or the reader's scratch space for values printed as text) and
 * are valid during the row callback only; copies are the caller's to
 * free (molt_db_rowstruct_free_copies). Strings are not NUL-terminated in
 * a view. */
typedef struct molt_db_string_view {
    const char *data;
    size_t len;
} molt_db_string_view;

typedef struct molt_db_bytes_view {
    const uint8_t *data;
    size_t len;
} molt_db_bytes_view;

/* The null_offset of a bool member `m` of struct `type`. */
#define MOLT_DB_NULL_FLAG(type, m) (offsetof(type, m) + 1)

/* Member flags. */
#define MOLT_DB_MEMBER_TRUNCATE 1u  /* CHARS: cut a longer string (at a UTF-8
                                     * character boundary) instead of ERANGE */

typedef struct molt_db_member {
    const char *column;   /* column name, or NULL to use position */
    int position;         /* 0-based column position when column is NULL */
    size_t offset;        /* offsetof(struct, member) */
    int type;             /* a molt_db_member_type */
    size_t size;          /* CHARS: the array size (room for the NUL too) */
    int32_t scale;        /* DECIMAL128: the member's fixed scale (0..38) */
    /* offset of a bool set to true for NULL (and false otherwise), PLUS
     * ONE; 0 means no flag: a NULL is then an error. */
    size_t null_offset;
    unsigned flags;       /* MOLT_DB_MEMBER_* flags */
} molt_db_member;

typedef struct molt_db_rowstruct_desc {
    size_t struct_size;           /* sizeof the struct */
    size_t nmembers;
    const molt_db_member *members;
} molt_db_rowstruct_desc;

/* A description bound to one result's columns. */
typedef struct molt_db_rowstruct_plan molt_db_rowstruct_plan;

/*
 * Checks desc against cols and returns a plan (desc is copied). Errors,
 * each naming the member's column: EINVAL (no such column, position out of
 * range, bad description: unknown type, CHARS with size 0, a member past
 * struct_size, scale out of 0..38), ETYPE (the column's type does not go
 * into the member's type, or a numeric-typed member on a text-format
 * column), ENOMEM.
 */
MOLT_DB_API
int molt_db_rowstruct_bind(const molt_db_rowstruct_desc *desc,
                           const molt_db_column *cols, size_t ncols,
                           molt_db_rowstruct_plan **out, molt_db_error *err);

MOLT_DB_API
void molt_db_rowstruct_plan_free(molt_db_rowstruct_plan *plan);

/*
 * Decodes one row into the struct at dst (struct_size bytes; members not in
 * the description are left as they are). scratch is used for values that
 * must be printed as text for a string member (it is reset per row; view
 * members point into it; it may be NULL when the plan needs none:
 * molt_db_rowstruct_plan_needs_scratch).
 * Errors name the column: ERANGE (NULL into a member with no null flag; a
 * string longer than CHARS allows without TRUNCATE; a numeric that does
 * not fit the member's scale or 128 bits; a NaN numeric), EPROTO
 * (malformed value, or a field count that differs from the columns'),
 * ENOMEM (copies). On error, copies made for this row are freed and their
 * members set to NULL.
 */
MOLT_DB_API
int molt_db_rowstruct_decode(const molt_db_rowstruct_plan *plan,
                             const molt_db_field *fields, size_t nfields,
                             void *dst, molt_db_buf *scratch,
                             molt_db_error *err);

/* 1 when a string member takes a binary non-text column (printed as the
 * server's text into the scratch buffer). */
MOLT_DB_API
int molt_db_rowstruct_plan_needs_scratch(const molt_db_rowstruct_plan *plan);
/* 1 when the description has view members (their data dies with the row). */
MOLT_DB_API
int molt_db_rowstruct_plan_has_views(const molt_db_rowstruct_plan *plan);

/* Frees the STRING_COPY / BYTES_COPY members of n structs at rows (and
 * sets them to NULL). */
MOLT_DB_API
void molt_db_rowstruct_free_copies(const molt_db_rowstruct_desc *desc,
                                   void *rows, size_t n);

/* ---- result handler adapter --------------------------------------------- */

typedef struct molt_db_rowstruct_reader molt_db_rowstruct_reader;

typedef struct molt_db_rowstruct_reader_options {
    const molt_db_rowstruct_desc *desc;  /* must outlive the reader */
    /* Structs per on_rows call (0: 1024). Forced to 1 when the description
     * has view members, since views die with their row. */
    size_t batch_rows;
    /* Full arrays, then the last partial one. rows is the reader's array,
     * valid during the call; the structs' copies become the callee's.
     * Return OK or a negative code to fail the request. */
    int (*on_rows)(void *ud, void *rows, size_t n);
    /* Exactly once, last; err valid during the call. */
    void (*on_done)(void *ud, int status, const molt_db_error *err);
    void *ud;
} molt_db_rowstruct_reader_options;

/* Returns OK and *out, or ENOMEM / EINVAL (no desc or on_rows). */
MOLT_DB_API
int molt_db_rowstruct_reader_new(const molt_db_rowstruct_reader_options *opts,
                                 molt_db_rowstruct_reader **out,
                                 molt_db_error *err);
/* The handler for molt_db_conn_query / execute; the description is bound
 * at each result's columns (a mismatch fails the request with the bind
 * error). The reader must outlive the request. */
MOLT_DB_API
molt_db_result_handler molt_db_rowstruct_reader_handler(molt_db_rowstruct_reader *r);
MOLT_DB_API
void molt_db_rowstruct_reader_free(molt_db_rowstruct_reader *r);

#ifdef __cplusplus
}
#endif
#endif
