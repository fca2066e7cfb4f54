/*
 * One C value per PostgreSQL scalar, read through the type table.
 *
 * Every scalar type the library knows has one entry in the table
 * (src/types_value.c): its value class, how its binary form decodes into a
 * molt_db_value, how the server's text form parses into the same value,
 * how a value encodes back into the binary form, and what Arrow column and
 * struct members its values go into.
 * Everything that reads values goes through it: the server's text output
 * (molt_db_value_to_text), the Arrow builder, struct mode, COPY BINARY
 * from Arrow (molt_db_value_encode), and the worker's
 * MsgPack/JSON writer, which writes a value by its class whether it came
 * from a binary or a text field. So the two formats cannot give different
 * values, and a new consumer (a Python object builder) switches on the
 * class alone.
 *
 * Values point into the bytes they were read from (or into the scratch
 * buffer given to molt_db_value_parse); they are valid as long as those.
 *
 * Thread-safety: all functions are reentrant; the table is constant.
 */
#ifndef MOLT_DB_VALUE_H
#define MOLT_DB_VALUE_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"
#include "molt_db/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a value is, whatever its type's OID. */
typedef enum molt_db_value_class {
    MOLT_DB_VALUE_BOOL = 1,     /* u.i: 0 or 1 */
    MOLT_DB_VALUE_INT,          /* u.i: int2, int4, int8, oid */
    MOLT_DB_VALUE_FLOAT4,       /* u.f4 */
    MOLT_DB_VALUE_FLOAT8,       /* u.f8 */
    MOLT_DB_VALUE_NUMERIC,      /* u.numeric */
    MOLT_DB_VALUE_TEXT,         /* u.bytes: text, varchar, bpchar, name, xml */
    MOLT_DB_VALUE_CHAR,         /* u.ch: "char", one byte */
    MOLT_DB_VALUE_BYTES,        /* u.bytes: bytea */
    MOLT_DB_VALUE_JSON,         /* u.bytes: the JSON text of json and jsonb */
    MOLT_DB_VALUE_UUID,         /* u.uuid */
    MOLT_DB_VALUE_DATE,         /* u.i: days since 2000-01-01 */
    MOLT_DB_VALUE_TIME,         /* u.i: microseconds since midnight */
    MOLT_DB_VALUE_TIMETZ,       /* u.timetz */
    MOLT_DB_VALUE_TIMESTAMP,    /* u.i: microseconds since 2000-01-01 */
    MOLT_DB_VALUE_TIMESTAMPTZ,  /* u.i: the same, UTC */
    MOLT_DB_VALUE_INTERVAL      /* u.interval */
} molt_db_value_class;

typedef struct molt_db_value {
    molt_db_value_class cls;
    union {
        int64_t i;
        float f4;
        double f8;
        molt_db_numeric numeric;
        struct {
            const uint8_t *p;
            size_t len;
        } bytes;
        uint8_t ch;
        uint8_t uuid[16];
        molt_db_timetz timetz;
        molt_db_interval interval;
    } u;
} molt_db_value;

/* The value class of a scalar type, or 0 when oid is no scalar the table
 * holds (arrays, ranges, multiranges, user types). */
MOLT_DB_API
int molt_db_value_class_of(uint32_t oid);

/* Decodes the binary form of a scalar of type oid. MOLT_DB_ETYPE when the
 * table has no such scalar, MOLT_DB_EPROTO for malformed bytes. */
MOLT_DB_API
int molt_db_value_decode(uint32_t oid, const uint8_t *p, size_t len,
                         molt_db_value *v, molt_db_error *err);

/*
 * Parses the text the server prints for a scalar of type oid (DateStyle ISO,
 * IntervalStyle postgres, bytea_output hex or escape; timestamptz with any
 * UTC offset) into the value its binary form decodes to. scratch receives
 * the bytes a value needs and cannot point at in p (bytea, numeric); the
 * value then points into scratch, so reset it only after the value is used.
 * Returns MOLT_DB_OK, MOLT_DB_EINVAL for text the server would not print
 * (or an unknown oid), MOLT_DB_ENOMEM.
 */
MOLT_DB_API
int molt_db_value_parse(uint32_t oid, const uint8_t *p, size_t len,
                        molt_db_buf *scratch, molt_db_value *v);

/* Appends the binary form of type oid (no length prefix: the bytes of a
 * molt_db_param or of a COPY BINARY field) of a value of oid's class.
 * A numeric value is written as the digits it views (as decoded or
 * parsed). Returns MOLT_DB_OK, MOLT_DB_EINVAL (a value the type cannot
 * hold: a time past 24:00, a timetz zone past 15:59:59), MOLT_DB_ETYPE (no
 * such scalar, or a class that is not oid's), MOLT_DB_ENOMEM. On failure
 * out->len is restored. */
MOLT_DB_API
int molt_db_value_encode(uint32_t oid, const molt_db_value *v, molt_db_buf *out);

/* Appends the server's text of a value (as molt_db_value_to_text does for
 * its binary form). Returns MOLT_DB_OK or MOLT_DB_ENOMEM (out->failed). */
MOLT_DB_API
int molt_db_value_text(const molt_db_value *v, molt_db_buf *out);

#ifdef __cplusplus
}
#endif
#endif
