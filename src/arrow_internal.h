/* Internals shared by the Arrow builder, its exports and the reader. */
#ifndef MOLT_DB_ARROW_INTERNAL_H
#define MOLT_DB_ARROW_INTERNAL_H

#include "molt_db/arrow.h"
#include "molt_db/buf.h"

/* Arrow storage of a column. */
typedef enum molt_db__arrow_kind {
    MOLT_DB__AK_BOOL,
    MOLT_DB__AK_I16,
    MOLT_DB__AK_I32,
    MOLT_DB__AK_I64,
    MOLT_DB__AK_U32,
    MOLT_DB__AK_F32,
    MOLT_DB__AK_F64,
    MOLT_DB__AK_DEC128,
    MOLT_DB__AK_UTF8,
    MOLT_DB__AK_BINARY,
    MOLT_DB__AK_UUID,
    MOLT_DB__AK_DATE32,
    MOLT_DB__AK_TIME64,
    MOLT_DB__AK_TS,
    MOLT_DB__AK_TSTZ,
    MOLT_DB__AK_INTERVAL
} molt_db__arrow_kind;

/* Where a Utf8 column's bytes come from. */
typedef enum molt_db__utf8_src {
    MOLT_DB__SRC_RAW,    /* the field's bytes as they are */
    MOLT_DB__SRC_JSONB,  /* binary jsonb: skip the version byte */
    MOLT_DB__SRC_TEXT    /* binary value printed by molt_db_value_to_text */
} molt_db__utf8_src;

typedef struct molt_db__arrow_col {
    char *name;
    uint32_t oid;
    int kind;         /* molt_db__arrow_kind */
    int src;          /* molt_db__utf8_src, for Utf8 */
    int width;        /* bytes per value of `values` (0: bits or offsets) */
    int32_t precision, scale;   /* Decimal128 */
    const char *ext;  /* extension name or NULL */
    molt_db_buf validity;
    molt_db_buf values;   /* fixed-width values, bool bits, or int32 offsets;
                           * interval: months */
    molt_db_buf data;     /* variable-length bytes; interval: days */
    molt_db_buf extra;    /* interval: micros */
    int64_t null_count;
    /* storage of the borrowed view (molt_db_arrow_builder_view) */
    struct ArrowArray view;
    const void *view_bufs[3];
    struct ArrowArray child_view[3];
    const void *child_bufs[3][2];
    struct ArrowArray *child_ptrs[3];
} molt_db__arrow_col;

struct molt_db_arrow_builder {
    size_t ncols;
    molt_db__arrow_col *cols;
    size_t batch_rows;
    int64_t rows;
    int full;
    int ready;  /* 0 when the last start failed (ENOMEM): retry first */
    struct ArrowArray view;
    const void *view_bufs[1];
    struct ArrowArray **view_children;
};

/* Child count of a column's Arrow type (interval: 3). */
int molt_db__arrow_col_children(const molt_db__arrow_col *c);

/* Empties every column (keeping memory) and writes the first offset of the
 * variable-length ones. Returns OK or ENOMEM. */
int molt_db__arrow_builder_start(molt_db_arrow_builder *b);

#endif
