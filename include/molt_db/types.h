/*
 * PostgreSQL built-in types: OIDs, a small catalog, binary codecs and the
 * server's text output.
 *
 * Decoders read one value in the binary format (the bytes of one DataRow
 * field, without its length prefix). They check the length before reading:
 * a value whose length or content cannot be right for its type is
 * MOLT_DB_EPROTO (the server never sends it; the stream may be corrupt)
 * with a message in err. They never allocate; pointers they return point
 * into the caller's bytes and are valid as long as those are.
 *
 * Encoders append one value in the binary format (no length prefix: the
 * bytes of a molt_db_param) to out and return MOLT_DB_OK, MOLT_DB_ENOMEM
 * (out->failed set) or MOLT_DB_EINVAL (a C value the type cannot hold). On
 * failure out->len is restored to its value before the call.
 *
 * Time values use PostgreSQL's own epoch and units: days or microseconds
 * since 2000-01-01 00:00:00 (UTC for timestamptz). The infinities are the
 * extreme values of the integer (MOLT_DB_DATE_INFINITY, ...).
 *
 * Thread-safety: all functions are reentrant; the catalog is constant.
 */
#ifndef MOLT_DB_TYPES_H
#define MOLT_DB_TYPES_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* OIDs (pg_type.oid; fixed for built-in types in every release)           */
/* ---------------------------------------------------------------------- */

#define MOLT_DB_OID_BOOL 16u
#define MOLT_DB_OID_BYTEA 17u
#define MOLT_DB_OID_CHAR 18u        /* "char": one byte */
#define MOLT_DB_OID_NAME 19u
#define MOLT_DB_OID_INT8 20u
#define MOLT_DB_OID_INT2 21u
#define MOLT_DB_OID_INT4 23u
#define MOLT_DB_OID_TEXT 25u
#define MOLT_DB_OID_OID 26u
#define MOLT_DB_OID_JSON 114u
#define MOLT_DB_OID_XML 142u        /* known by name only: not decoded */
#define MOLT_DB_OID_FLOAT4 700u
#define MOLT_DB_OID_FLOAT8 701u
#define MOLT_DB_OID_BPCHAR 1042u
#define MOLT_DB_OID_VARCHAR 1043u
#define MOLT_DB_OID_DATE 1082u
#define MOLT_DB_OID_TIME 1083u
#define MOLT_DB_OID_TIMESTAMP 1114u
#define MOLT_DB_OID_TIMESTAMPTZ 1184u
#define MOLT_DB_OID_INTERVAL 1186u
#define MOLT_DB_OID_TIMETZ 1266u
#define MOLT_DB_OID_NUMERIC 1700u
#define MOLT_DB_OID_UUID 2950u
#define MOLT_DB_OID_JSONB 3802u

#define MOLT_DB_OID_INT4RANGE 3904u
#define MOLT_DB_OID_NUMRANGE 3906u
#define MOLT_DB_OID_TSRANGE 3908u
#define MOLT_DB_OID_TSTZRANGE 3910u
#define MOLT_DB_OID_DATERANGE 3912u
#define MOLT_DB_OID_INT8RANGE 3926u

#define MOLT_DB_OID_INT4MULTIRANGE 4451u
#define MOLT_DB_OID_NUMMULTIRANGE 4532u
#define MOLT_DB_OID_TSMULTIRANGE 4533u
#define MOLT_DB_OID_TSTZMULTIRANGE 4534u
#define MOLT_DB_OID_DATEMULTIRANGE 4535u
#define MOLT_DB_OID_INT8MULTIRANGE 4536u

#define MOLT_DB_OID_BOOL_ARRAY 1000u
#define MOLT_DB_OID_BYTEA_ARRAY 1001u
#define MOLT_DB_OID_CHAR_ARRAY 1002u
#define MOLT_DB_OID_NAME_ARRAY 1003u
#define MOLT_DB_OID_INT2_ARRAY 1005u
#define MOLT_DB_OID_INT4_ARRAY 1007u
#define MOLT_DB_OID_TEXT_ARRAY 1009u
#define MOLT_DB_OID_BPCHAR_ARRAY 1014u
#define MOLT_DB_OID_VARCHAR_ARRAY 1015u
#define MOLT_DB_OID_INT8_ARRAY 1016u
#define MOLT_DB_OID_FLOAT4_ARRAY 1021u
#define MOLT_DB_OID_FLOAT8_ARRAY 1022u
#define MOLT_DB_OID_OID_ARRAY 1028u
#define MOLT_DB_OID_TIMESTAMP_ARRAY 1115u
#define MOLT_DB_OID_DATE_ARRAY 1182u
#define MOLT_DB_OID_TIME_ARRAY 1183u
#define MOLT_DB_OID_TIMESTAMPTZ_ARRAY 1185u
#define MOLT_DB_OID_INTERVAL_ARRAY 1187u
#define MOLT_DB_OID_NUMERIC_ARRAY 1231u
#define MOLT_DB_OID_TIMETZ_ARRAY 1270u
#define MOLT_DB_OID_XML_ARRAY 143u
#define MOLT_DB_OID_JSON_ARRAY 199u
#define MOLT_DB_OID_UUID_ARRAY 2951u
#define MOLT_DB_OID_JSONB_ARRAY 3807u
#define MOLT_DB_OID_INT4RANGE_ARRAY 3905u
#define MOLT_DB_OID_NUMRANGE_ARRAY 3907u
#define MOLT_DB_OID_TSRANGE_ARRAY 3909u
#define MOLT_DB_OID_TSTZRANGE_ARRAY 3911u
#define MOLT_DB_OID_DATERANGE_ARRAY 3913u
#define MOLT_DB_OID_INT8RANGE_ARRAY 3927u
#define MOLT_DB_OID_INT4MULTIRANGE_ARRAY 6150u
#define MOLT_DB_OID_NUMMULTIRANGE_ARRAY 6151u
#define MOLT_DB_OID_TSMULTIRANGE_ARRAY 6152u
#define MOLT_DB_OID_TSTZMULTIRANGE_ARRAY 6153u
#define MOLT_DB_OID_DATEMULTIRANGE_ARRAY 6155u
#define MOLT_DB_OID_INT8MULTIRANGE_ARRAY 6157u

/* ---------------------------------------------------------------------- */
/* Catalog                                                                 */
/* ---------------------------------------------------------------------- */

typedef enum molt_db_type_kind {
    MOLT_DB_KIND_BASE = 0,
    MOLT_DB_KIND_ARRAY,
    MOLT_DB_KIND_RANGE,
    MOLT_DB_KIND_MULTIRANGE
} molt_db_type_kind;

/* One built-in type, as pg_type and pg_range describe it. */
typedef struct molt_db_type_info {
    uint32_t oid;
    const char *name;     /* pg_type.typname: "int8", "_int4", "int4range" */
    int kind;             /* a molt_db_type_kind */
    /* arrays: the element type; ranges: the subtype; multiranges: the
     * range type; 0 for base types. */
    uint32_t element;
    uint32_t array;       /* the type's array type (pg_type.typarray), or 0 */
} molt_db_type_info;

/* The catalog entry of oid, or NULL for a type this library does not know
 * (user types, extensions). The pointer is to constant static storage. */
MOLT_DB_API
const molt_db_type_info *molt_db_type_lookup(uint32_t oid);

/* The type's name ("int8", "_int4"), or NULL when unknown. */
MOLT_DB_API
const char *molt_db_type_name(uint32_t oid);

/* 1 when the library decodes the binary form of oid: the connection asks
 * for binary results for these types and text for all others. Arrays,
 * ranges and multiranges count when their element/subtype does. */
MOLT_DB_API
int molt_db_type_binary_supported(uint32_t oid);

/* ---------------------------------------------------------------------- */
/* Scalars. Each decoder takes the value's bytes and its exact length.     */
/* ---------------------------------------------------------------------- */

/* bool: 1 byte, 0 or 1. *out is 0 or 1. */
MOLT_DB_API
int molt_db_decode_bool(const uint8_t *p, size_t len, int *out,
                        molt_db_error *err);
/* "char": 1 byte (any value). */
MOLT_DB_API
int molt_db_decode_char(const uint8_t *p, size_t len, uint8_t *out,
                        molt_db_error *err);
MOLT_DB_API
int molt_db_decode_int2(const uint8_t *p, size_t len, int16_t *out,
                        molt_db_error *err);
MOLT_DB_API
int molt_db_decode_int4(const uint8_t *p, size_t len, int32_t *out,
                        molt_db_error *err);
MOLT_DB_API
int molt_db_decode_int8(const uint8_t *p, size_t len, int64_t *out,
                        molt_db_error *err);
MOLT_DB_API
int molt_db_decode_oid(const uint8_t *p, size_t len, uint32_t *out,
                       molt_db_error *err);
MOLT_DB_API
int molt_db_decode_float4(const uint8_t *p, size_t len, float *out,
                          molt_db_error *err);
MOLT_DB_API
int molt_db_decode_float8(const uint8_t *p, size_t len, double *out,
                          molt_db_error *err);
/* uuid: exactly 16 bytes, copied to out. */
MOLT_DB_API
int molt_db_decode_uuid(const uint8_t *p, size_t len, uint8_t out[16],
                        molt_db_error *err);
/* text, varchar, bpchar, name, json and bytea are their bytes as they are
 * (text in the client encoding, not NUL-terminated); no decoder is needed.
 * jsonb is a version byte (1) and then the JSON text: *text points just
 * past the version byte. A missing or unknown version is MOLT_DB_EPROTO. */
MOLT_DB_API
int molt_db_decode_jsonb(const uint8_t *p, size_t len, const uint8_t **text,
                         size_t *text_len, molt_db_error *err);

MOLT_DB_API
int molt_db_encode_bool(molt_db_buf *out, int v);
MOLT_DB_API
int molt_db_encode_char(molt_db_buf *out, uint8_t v);
MOLT_DB_API
int molt_db_encode_int2(molt_db_buf *out, int16_t v);
MOLT_DB_API
int molt_db_encode_int4(molt_db_buf *out, int32_t v);
MOLT_DB_API
int molt_db_encode_int8(molt_db_buf *out, int64_t v);
MOLT_DB_API
int molt_db_encode_oid(molt_db_buf *out, uint32_t v);
MOLT_DB_API
int molt_db_encode_float4(molt_db_buf *out, float v);
MOLT_DB_API
int molt_db_encode_float8(molt_db_buf *out, double v);
MOLT_DB_API
int molt_db_encode_uuid(molt_db_buf *out, const uint8_t v[16]);
/* text, varchar, bpchar, name, json, bytea: the bytes as they are. */
MOLT_DB_API
int molt_db_encode_bytes(molt_db_buf *out, const void *p, size_t len);
/* jsonb: the version byte 1, then the JSON text. */
MOLT_DB_API
int molt_db_encode_jsonb(molt_db_buf *out, const char *json, size_t len);

/* ---------------------------------------------------------------------- */
/* numeric                                                                 */
/* ---------------------------------------------------------------------- */

/* Sign codes of the binary form (PostgreSQL 14+ for the infinities). */
#define MOLT_DB_NUMERIC_POS 0x0000u
#define MOLT_DB_NUMERIC_NEG 0x4000u
#define MOLT_DB_NUMERIC_NAN 0xC000u
#define MOLT_DB_NUMERIC_PINF 0xD000u
#define MOLT_DB_NUMERIC_NINF 0xF000u
/* Largest display scale the format can carry. */
#define MOLT_DB_NUMERIC_MAX_DSCALE 0x3FFF

/*
 * A view of a binary numeric: value = sum(digit[i] * 10000^(weight - i)),
 * negated when sign is NEG, shown with dscale digits after the point.
 * digits points into the decoded bytes: ndigits big-endian uint16 values,
 * each 0..9999 (read them with molt_db_numeric_digit).
 */
typedef struct molt_db_numeric {
    uint16_t ndigits;
    int16_t weight;
    uint16_t sign;      /* MOLT_DB_NUMERIC_* */
    uint16_t dscale;
    const uint8_t *digits;
} molt_db_numeric;

/* Checks and views a binary numeric: the length must be 8 + 2 * ndigits,
 * the sign one of the five codes, dscale <= MOLT_DB_NUMERIC_MAX_DSCALE,
 * every digit <= 9999, no digits for NaN/infinities and no nonzero digit
 * past the display scale. Anything else is MOLT_DB_EPROTO. */
MOLT_DB_API
int molt_db_numeric_decode(const uint8_t *p, size_t len, molt_db_numeric *out,
                           molt_db_error *err);

/* Digit i (< n->ndigits) of a decoded numeric. */
MOLT_DB_API
uint16_t molt_db_numeric_digit(const molt_db_numeric *n, size_t i);

/* Appends the exact decimal text the server prints ("-12.30", "0.000",
 * "NaN", "Infinity", "-Infinity"). Returns OK or ENOMEM. */
MOLT_DB_API
int molt_db_numeric_to_text(const molt_db_numeric *n, molt_db_buf *out);

/*
 * Parses decimal text (optional sign, digits with an optional point, an
 * optional exponent "e-3"; or "NaN", "Infinity", "inf", "-Infinity" in any
 * case) and appends its binary numeric, keeping the scale it was written
 * with as the display scale ("1.50" keeps 2). No surrounding spaces.
 * MOLT_DB_EINVAL for anything else or for a value past numeric's range.
 */
MOLT_DB_API
int molt_db_encode_numeric_text(molt_db_buf *out, const char *s, size_t len,
                                molt_db_error *err);

#if defined(__SIZEOF_INT128__)
#define MOLT_DB_HAVE_INT128 1
__extension__ typedef __int128 molt_db_int128;

/* A fixed-point decimal: value = unscaled / 10^scale (the shape of an
 * Arrow Decimal128). scale is the numeric's dscale. */
typedef struct molt_db_decimal128 {
    molt_db_int128 unscaled;
    int32_t scale;
} molt_db_decimal128;

/* Converts a decoded numeric to a 128-bit decimal at its display scale.
 * MOLT_DB_ERANGE when the unscaled value does not fit in 128 bits;
 * MOLT_DB_ETYPE for NaN and the infinities. */
MOLT_DB_API
int molt_db_numeric_to_decimal128(const molt_db_numeric *n,
                                  molt_db_decimal128 *out, molt_db_error *err);

/* Appends the binary numeric of a 128-bit decimal (scale 0..38 digits
 * after the point becomes the display scale; scale must be 0..16383). */
MOLT_DB_API
int molt_db_encode_numeric_decimal128(molt_db_buf *out, molt_db_decimal128 v,
                                      molt_db_error *err);
#endif

/* ---------------------------------------------------------------------- */
/* Dates and times                                                         */
/* ---------------------------------------------------------------------- */

/* date: int32 days since 2000-01-01. */
#define MOLT_DB_DATE_INFINITY INT32_MAX
#define MOLT_DB_DATE_NEG_INFINITY INT32_MIN
/* timestamp, timestamptz: int64 microseconds since 2000-01-01 00:00:00. */
#define MOLT_DB_TIMESTAMP_INFINITY INT64_MAX
#define MOLT_DB_TIMESTAMP_NEG_INFINITY INT64_MIN
#define MOLT_DB_USECS_PER_DAY INT64_C(86400000000)

/* time of day with a zone, as the server stores it: zone is the offset in
 * seconds WEST of UTC (12:00+05:30 has zone -19800). */
typedef struct molt_db_timetz {
    int64_t time_us;   /* 0 .. MOLT_DB_USECS_PER_DAY inclusive */
    int32_t zone;      /* -57599 .. 57599 (+-15:59:59) */
} molt_db_timetz;

/* interval: the three fields are independent (a month is not 30 days). */
typedef struct molt_db_interval {
    int64_t micros;
    int32_t days;
    int32_t months;
} molt_db_interval;

MOLT_DB_API
int molt_db_decode_date(const uint8_t *p, size_t len, int32_t *days,
                        molt_db_error *err);
/* time: int64 us since midnight, checked to be 0 .. 24:00:00. */
MOLT_DB_API
int molt_db_decode_time(const uint8_t *p, size_t len, int64_t *us,
                        molt_db_error *err);
MOLT_DB_API
int molt_db_decode_timetz(const uint8_t *p, size_t len, molt_db_timetz *out,
                          molt_db_error *err);
/* timestamp and timestamptz (the same format). */
MOLT_DB_API
int molt_db_decode_timestamp(const uint8_t *p, size_t len, int64_t *us,
                             molt_db_error *err);
MOLT_DB_API
int molt_db_decode_interval(const uint8_t *p, size_t len,
                            molt_db_interval *out, molt_db_error *err);

MOLT_DB_API
int molt_db_encode_date(molt_db_buf *out, int32_t days);
/* EINVAL when us is outside 0 .. MOLT_DB_USECS_PER_DAY. */
MOLT_DB_API
int molt_db_encode_time(molt_db_buf *out, int64_t us);
/* EINVAL when a field is out of its range (see molt_db_timetz). */
MOLT_DB_API
int molt_db_encode_timetz(molt_db_buf *out, molt_db_timetz v);
MOLT_DB_API
int molt_db_encode_timestamp(molt_db_buf *out, int64_t us);
MOLT_DB_API
int molt_db_encode_interval(molt_db_buf *out, molt_db_interval v);

/* Proleptic Gregorian calendar over PostgreSQL's day numbers. year 0 is
 * 1 BC, -1 is 2 BC. days_from_ymd returns EINVAL for an impossible date or
 * one past the int32 day range. */
MOLT_DB_API
void molt_db_date_to_ymd(int32_t days, int *year, int *month, int *day);
MOLT_DB_API
int molt_db_date_from_ymd(int year, int month, int day, int32_t *days);

/* ---------------------------------------------------------------------- */
/* Arrays                                                                  */
/* ---------------------------------------------------------------------- */

#define MOLT_DB_ARRAY_MAX_DIMS 6

/* The header of a binary array; elems/elems_len are the element data that
 * follows it, a sequence of (int32 length or -1 for NULL, bytes). */
typedef struct molt_db_array {
    int ndim;                                /* 0 (empty) .. 6 */
    int has_nulls;                           /* the flags word: 0 or 1 */
    uint32_t elem_oid;
    int32_t dims[MOLT_DB_ARRAY_MAX_DIMS];    /* each >= 0 */
    int32_t lbounds[MOLT_DB_ARRAY_MAX_DIMS];
    size_t nelems;                           /* product of dims; 0 if ndim 0 */
    const uint8_t *elems;
    size_t elems_len;
} molt_db_array;

/* Reads and checks the header: ndim 0..6, flags 0 or 1, dims >= 0, the
 * upper bounds within int32, the element count without overflow and small
 * enough for the bytes that follow (each element takes 4 bytes at least).
 * Elements are checked by the iterator. */
MOLT_DB_API
int molt_db_array_decode(const uint8_t *p, size_t len, molt_db_array *out,
                         molt_db_error *err);

typedef struct molt_db_array_iter {
    const uint8_t *pos, *end;
    size_t remaining;
    int has_nulls;
} molt_db_array_iter;

MOLT_DB_API
void molt_db_array_iter_init(molt_db_array_iter *it, const molt_db_array *a);

/* Yields the next element in row-major order: returns 1 with *data, *len
 * set (*len -1 and *data NULL for NULL), 0 after the last one (EPROTO if
 * bytes are left over), or EPROTO when a length runs past the end or a
 * NULL appears in an array whose flags say it has none. */
MOLT_DB_API
int molt_db_array_next(molt_db_array_iter *it, const uint8_t **data,
                       int32_t *len, molt_db_error *err);

/*
 * Appends a binary array of nelems already-encoded elements. elem_data is
 * the concatenation of the non-NULL elements' bytes, elem_lens[i] each
 * element's length or -1 for NULL. dims holds ndim (0..6) lengths whose
 * product must be nelems; lbounds may be NULL (all 1). EINVAL on a
 * mismatch or a bound past int32.
 */
MOLT_DB_API
int molt_db_encode_array(molt_db_buf *out, uint32_t elem_oid, int ndim,
                         const int32_t *dims, const int32_t *lbounds,
                         const uint8_t *elem_data, const int32_t *elem_lens,
                         size_t nelems, molt_db_error *err);

/* ---------------------------------------------------------------------- */
/* Ranges and multiranges                                                  */
/* ---------------------------------------------------------------------- */

/* Flags byte of a binary range (rangetypes.c). */
#define MOLT_DB_RANGE_EMPTY 0x01u
#define MOLT_DB_RANGE_LB_INC 0x02u
#define MOLT_DB_RANGE_UB_INC 0x04u
#define MOLT_DB_RANGE_LB_INF 0x08u
#define MOLT_DB_RANGE_UB_INF 0x10u
#define MOLT_DB_RANGE_LB_NULL 0x20u   /* internal to the server; never sent */
#define MOLT_DB_RANGE_UB_NULL 0x40u
#define MOLT_DB_RANGE_CONTAIN_EMPTY 0x80u

/* A binary range: a bound is present unless the range is empty or that
 * bound is infinite; an absent bound has len -1 and data NULL. Bound bytes
 * are in the subtype's binary format. */
typedef struct molt_db_range {
    uint8_t flags;
    const uint8_t *lower;
    int32_t lower_len;
    const uint8_t *upper;
    int32_t upper_len;
} molt_db_range;

/* Reads the flags and the bounds it says are there; every length checked,
 * no bytes may be left over. */
MOLT_DB_API
int molt_db_range_decode(const uint8_t *p, size_t len, molt_db_range *out,
                         molt_db_error *err);

/* Appends a binary range: r->flags (EMPTY, LB_INC, UB_INC, LB_INF, UB_INF;
 * other bits are EINVAL) and the bounds the flags call for, already encoded
 * in the subtype's format (a needed bound with len < 0 is EINVAL). */
MOLT_DB_API
int molt_db_encode_range(molt_db_buf *out, const molt_db_range *r,
                         molt_db_error *err);

/* A binary multirange: count ranges, each int32 length + range bytes. */
typedef struct molt_db_multirange {
    uint32_t count;
    const uint8_t *ranges;
    size_t ranges_len;
} molt_db_multirange;

MOLT_DB_API
int molt_db_multirange_decode(const uint8_t *p, size_t len,
                              molt_db_multirange *out, molt_db_error *err);

typedef struct molt_db_multirange_iter {
    const uint8_t *pos, *end;
    uint32_t remaining;
} molt_db_multirange_iter;

MOLT_DB_API
void molt_db_multirange_iter_init(molt_db_multirange_iter *it,
                                  const molt_db_multirange *m);
/* Returns 1 with the next range decoded into *r, 0 after the last one
 * (EPROTO if bytes are left over), or EPROTO. */
MOLT_DB_API
int molt_db_multirange_next(molt_db_multirange_iter *it, molt_db_range *r,
                            molt_db_error *err);

/* Appends a multirange of n already-encoded ranges: range_data is their
 * concatenation and range_lens[i] the length of each (>= 1). */
MOLT_DB_API
int molt_db_encode_multirange(molt_db_buf *out, const uint8_t *range_data,
                              const int32_t *range_lens, size_t n,
                              molt_db_error *err);

/* ---------------------------------------------------------------------- */
/* Text output                                                             */
/* ---------------------------------------------------------------------- */

/* Room for any float text from molt_db_format_float8/4, NUL included. */
#define MOLT_DB_FLOAT_TEXT_SIZE 32

/* The server's float8out/float4out with extra_float_digits >= 1: the
 * shortest text that reads back as the same value ("0.1", "1e+100",
 * "1.5e-07", "NaN", "-Infinity"). Writes a NUL-terminated string to out
 * and returns its length. */
MOLT_DB_API
size_t molt_db_format_float8(double v, char out[MOLT_DB_FLOAT_TEXT_SIZE]);
MOLT_DB_API
size_t molt_db_format_float4(float v, char out[MOLT_DB_FLOAT_TEXT_SIZE]);

/*
 * Appends the text the server would send for a binary value of type oid,
 * with the session settings DateStyle=ISO, MDY; IntervalStyle=postgres;
 * TimeZone=UTC; extra_float_digits >= 1; bytea_output=hex. Handles every
 * type molt_db_type_binary_supported accepts (arrays, ranges and
 * multiranges of them included, with the server's quoting).
 *
 * Returns MOLT_DB_OK, MOLT_DB_ETYPE (a type this cannot print),
 * MOLT_DB_EPROTO (malformed bytes) or MOLT_DB_ENOMEM. out is not
 * NUL-terminated; on failure out->len is restored.
 */
MOLT_DB_API
int molt_db_value_to_text(uint32_t oid, const uint8_t *data, size_t len,
                          molt_db_buf *out, molt_db_error *err);

#ifdef __cplusplus
}
#endif
#endif
