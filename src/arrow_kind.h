/* Arrow storage kinds: of a column the Arrow builder makes, of a column
 * the COPY encoder reads, and of a scalar type in the type table. */
#ifndef MOLT_DB_ARROW_KIND_H
#define MOLT_DB_ARROW_KIND_H

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
    MOLT_DB__AK_LIST,    /* int32 offsets into kids[0] */
    MOLT_DB__AK_STRUCT   /* kids; what fills them is the role */
} molt_db__arrow_kind;

/* Bytes per value of a fixed-width kind; 0 for the others. */
static inline int molt_db__ak_width(int kind)
{
    static const signed char width[] = {
        [MOLT_DB__AK_I16] = 2,  [MOLT_DB__AK_I32] = 4,     [MOLT_DB__AK_I64] = 8,
        [MOLT_DB__AK_U32] = 4,  [MOLT_DB__AK_F32] = 4,     [MOLT_DB__AK_F64] = 8,
        [MOLT_DB__AK_DEC128] = 16, [MOLT_DB__AK_UUID] = 16, [MOLT_DB__AK_DATE32] = 4,
        [MOLT_DB__AK_TIME64] = 8, [MOLT_DB__AK_TS] = 8,     [MOLT_DB__AK_TSTZ] = 8,
        [MOLT_DB__AK_STRUCT] = 0};
    return width[kind];
}

/* A set of kinds, as bits. */
#define MOLT_DB__AK_BIT(k) (1u << MOLT_DB__AK_##k)

#endif
