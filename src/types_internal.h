/* Helpers shared by the src/types_*.c codecs (not part of the API). */
#ifndef MOLT_DB_TYPES_INTERNAL_H
#define MOLT_DB_TYPES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"

static inline uint16_t molt_db__rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t molt_db__rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t molt_db__rd64(const uint8_t *p)
{
    return (uint64_t)molt_db__rd32(p) << 32 | molt_db__rd32(p + 4);
}

/* Checks that a fixed-size value has exactly `want` bytes. */
static inline int molt_db__want_len(const char *type, size_t len, size_t want,
                                    molt_db_error *err)
{
    if (len != want)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "%s value has %zu bytes, expected %zu", type,
                                 len, want);
    return MOLT_DB_OK;
}

/* Ends an encoder: on failure drops what it appended since `start`. */
static inline int molt_db__buf_finish(molt_db_buf *out, size_t start, int rc)
{
    if (rc == MOLT_DB_OK)
        rc = molt_db_buf_ok(out);
    if (rc != MOLT_DB_OK && out->len > start)
        out->len = start;
    return rc;
}

#include "molt_db/types.h"

/* PostgreSQL's epoch (2000-01-01) counted from the Unix epoch. */
#define MOLT_DB__PG_EPOCH_DAYS 10957
#define MOLT_DB__PG_EPOCH_USECS INT64_C(946684800000000)

/* Days (a date's int32 range) or microseconds since 2000 to the same since
 * 1970, the infinities kept; MOLT_DB_ERANGE when the result does not fit. */
static inline int molt_db__unix_days(int64_t *days)
{
    if (*days == MOLT_DB_DATE_INFINITY || *days == MOLT_DB_DATE_NEG_INFINITY)
        return MOLT_DB_OK;
    if (*days > INT32_MAX - MOLT_DB__PG_EPOCH_DAYS)
        return MOLT_DB_ERANGE;
    *days += MOLT_DB__PG_EPOCH_DAYS;
    return MOLT_DB_OK;
}

static inline int molt_db__unix_us(int64_t *us)
{
    if (*us == MOLT_DB_TIMESTAMP_INFINITY || *us == MOLT_DB_TIMESTAMP_NEG_INFINITY)
        return MOLT_DB_OK;
    if (*us > INT64_MAX - MOLT_DB__PG_EPOCH_USECS)
        return MOLT_DB_ERANGE;
    *us += MOLT_DB__PG_EPOCH_USECS;
    return MOLT_DB_OK;
}

/* Text output of containers (types_text_container.c); t is the catalog
 * entry of the array/range/multirange type. */
int molt_db__array_text(const molt_db_type_info *t, const uint8_t *p,
                        size_t len, molt_db_buf *out, molt_db_error *err);
int molt_db__range_text(const molt_db_type_info *t, const uint8_t *p,
                        size_t len, molt_db_buf *out, molt_db_error *err);
int molt_db__multirange_text(const molt_db_type_info *t, const uint8_t *p,
                             size_t len, molt_db_buf *out, molt_db_error *err);

/* The server's text of scalars to their values (types_parse.c): MOLT_DB_OK
 * or MOLT_DB_EINVAL for text the server does not print. bytea writes at
 * most n bytes to out. */
int molt_db__parse_bytea(const uint8_t *p, size_t n, uint8_t *out, size_t *len);
int molt_db__parse_timestamp(const uint8_t *p, size_t n, int with_zone,
                             int64_t *us);
int molt_db__parse_date(const uint8_t *p, size_t n, int32_t *days);
int molt_db__parse_time(const uint8_t *p, size_t n, int64_t *us);
int molt_db__parse_timetz(const uint8_t *p, size_t n, molt_db_timetz *tz);
int molt_db__parse_uuid(const uint8_t *p, size_t n, uint8_t out[16]);
int molt_db__parse_interval(const uint8_t *p, size_t n, molt_db_interval *iv);

/* ---- the scalar type table (types_value.c) ------------------------------ */

#include "molt_db/value.h"

typedef int (*molt_db__decode_fn)(const uint8_t *p, size_t len, molt_db_value *v,
                                  molt_db_error *err);
typedef int (*molt_db__parse_fn)(const uint8_t *p, size_t len, molt_db_buf *scratch,
                                 molt_db_value *v);
typedef int (*molt_db__encode_fn)(molt_db_buf *out, const molt_db_value *v);

/* A part of a value whose Arrow column is a Struct (interval's months,
 * days, micros): its child's name, its Arrow kind (a fixed-width one) and
 * where it sits in molt_db_value.u. */
typedef struct molt_db__value_part {
    const char *name;
    int kind;
    size_t offset;
} molt_db__value_part;

/* One line of the table: everything the library does with one scalar
 * type, whatever the format. */
typedef struct molt_db__scalar {
    uint32_t oid;
    molt_db_value_class cls;
    molt_db__decode_fn decode;  /* binary form -> value */
    molt_db__parse_fn parse;    /* the server's text -> value */
    molt_db__encode_fn encode;  /* value -> binary form */
    int raw_text;               /* the binary form is the text, byte for byte */
    /* The Arrow column of a binary field (molt_db__arrow_kind). Utf8 holds
     * the bytes when raw_text, else the value's bytes for the text and
     * JSON classes, else the server's text of the value. */
    int arrow;
    const molt_db__value_part *parts; /* arrow is Struct: its children */
    size_t nparts;
    unsigned copy_from;         /* Arrow kinds COPY writes into the type (MOLT_DB__AK_BIT) */
    unsigned members;           /* struct members a binary field fills
                                 * (1u << molt_db_member_type); string
                                 * members take every type */
} molt_db__scalar;

/* The line of a scalar type, or NULL (containers, user types). */
const molt_db__scalar *molt_db__scalar_of(uint32_t oid);

/* Line i of the table, or NULL past the last (for the tests). */
const molt_db__scalar *molt_db__scalar_at(size_t i);

/* Entry i of the type catalog (types_catalog.c), or NULL past the last. */
const molt_db_type_info *molt_db__type_at(size_t i);

#endif
