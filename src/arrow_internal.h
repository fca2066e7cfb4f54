/* Internals shared by the Arrow builder, its exports and the reader. */
#ifndef MOLT_DB_ARROW_INTERNAL_H
#define MOLT_DB_ARROW_INTERNAL_H

#include "molt_db/arrow.h"
#include "molt_db/buf.h"
#include "arrow_kind.h"
#include "types_internal.h"

/* What a value of a nested column is decoded from. */
typedef enum molt_db__arrow_role {
    MOLT_DB__ROLE_PLAIN,     /* a scalar column, or a child filled by its parent */
    MOLT_DB__ROLE_PARTS,     /* Struct of a scalar's parts (the type table's) */
    MOLT_DB__ROLE_ARRAY,     /* Struct<lower_bounds: List<Int32>, values: List<T>> */
    MOLT_DB__ROLE_RANGE,     /* Struct<empty, lower: bound, upper: bound> */
    MOLT_DB__ROLE_BOUND      /* Struct<value: T, inclusive: Bool> */
} molt_db__arrow_role;

/* Where a Utf8 column's bytes come from. */
typedef enum molt_db__utf8_src {
    MOLT_DB__SRC_RAW,    /* the field's bytes as they are */
    MOLT_DB__SRC_VALUE,  /* the text of the decoded value (jsonb's) */
    MOLT_DB__SRC_TEXT    /* binary value printed by molt_db_value_to_text */
} molt_db__utf8_src;

typedef struct molt_db__arrow_col molt_db__arrow_col;

struct molt_db__arrow_col {
    char *name;
    uint32_t oid;     /* the PostgreSQL type this column's values have */
    const molt_db__scalar *scalar; /* its line in the type table, or NULL */
    int kind;         /* molt_db__arrow_kind */
    int role;         /* molt_db__arrow_role */
    int src;          /* molt_db__utf8_src, for Utf8 */
    int width;        /* bytes per value of `values` (fixed-width kinds) */
    int ndim;         /* arrays: List levels under "values"; 0 while not
                       * known (only NULL or empty arrays seen so far) */
    int32_t precision, scale;   /* Decimal128 */
    const char *ext;  /* extension name or NULL */
    int fast;         /* molt_db__arrow_fast op, or 0: general path only */
    molt_db_buf validity;
    molt_db_buf values;   /* fixed-width values, bool bits, or int32 offsets */
    molt_db_buf data;     /* variable-length bytes */
    int64_t length;       /* values appended in this batch */
    int64_t null_count;
    size_t nkids;
    molt_db__arrow_col *kids;
    /* sizes before the row being appended, to take a failed row back */
    struct {
        int64_t length, null_count;
        size_t validity, values, data;
    } saved;
    /* storage of the borrowed view (molt_db_arrow_builder_view) */
    struct ArrowArray view;
    const void *view_bufs[3];
    struct ArrowArray **view_kids;
};

struct molt_db_arrow_builder {
    size_t ncols;
    molt_db__arrow_col *cols;
    size_t batch_rows;
    int64_t rows;
    int full;
    int ready;  /* 0 when the last start failed (ENOMEM): retry first */
    int frozen; /* the schema was taken: array dimensions are fixed */
    int fast;   /* every column has a fast op (arrow_fast_row.c) */
    size_t room; /* rows the fast path may add before it reserves again */
    struct ArrowArray view;
    const void *view_bufs[1];
    struct ArrowArray **view_children;
};

/* Empties every column (keeping memory) and writes the first offset of the
 * offset-based ones. Returns OK or ENOMEM. */
int molt_db__arrow_builder_start(molt_db_arrow_builder *b);

/* Fixes the dimensionality of array columns not known yet (to 1): called
 * when the schema is taken, which must not change afterwards. */
void molt_db__arrow_builder_freeze(molt_db_arrow_builder *b);

/* Gives each column its fast op and b->fast (arrow_fast_row.c). */
void molt_db__arrow_fast_plan(molt_db_arrow_builder *b);

/* Appends a row when every column is flat and every value well-formed
 * (the common row); returns 1 then. Returns 0, having appended nothing,
 * for any row it does not take: the general path appends it or explains
 * what is wrong with it. */
int molt_db__arrow_fast_row(molt_db_arrow_builder *b, const molt_db_field *fields);

/* Writes out the validity bits the fast path skipped, before the general
 * path pushes bits of its own. Returns OK or ENOMEM. */
int molt_db__arrow_fast_sync(molt_db_arrow_builder *b);

/* Buffers of a column in the C Data Interface layout. */
int molt_db__arrow_col_nbuffers(const molt_db__arrow_col *c);

#endif
