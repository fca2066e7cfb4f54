/* libFuzzer target: the type table's parsers of the server's text forms
 * (src/types_parse.c, through molt_db_value_parse) on any bytes. The first
 * byte picks the type. Whatever a parser accepts must survive a round
 * trip: value -> the library's text output -> parser -> a value with the
 * same text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/types.h"
#include "molt_db/value.h"

/* the first four keep the seeds' meaning (byte 0..3) */
static const uint32_t oids[] = {
    MOLT_DB_OID_BYTEA, MOLT_DB_OID_TIMESTAMP, MOLT_DB_OID_TIMESTAMPTZ,
    MOLT_DB_OID_INTERVAL, MOLT_DB_OID_BOOL, MOLT_DB_OID_CHAR, MOLT_DB_OID_INT2,
    MOLT_DB_OID_INT4, MOLT_DB_OID_INT8, MOLT_DB_OID_OID, MOLT_DB_OID_FLOAT4,
    MOLT_DB_OID_FLOAT8, MOLT_DB_OID_NUMERIC, MOLT_DB_OID_TEXT, MOLT_DB_OID_JSONB,
    MOLT_DB_OID_UUID, MOLT_DB_OID_DATE, MOLT_DB_OID_TIME, MOLT_DB_OID_TIMETZ,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t oid = oids[data[0] % (sizeof oids / sizeof oids[0])];
    molt_db_buf scratch, text, scratch2, text2;
    molt_db_buf_init(&scratch);
    molt_db_buf_init(&text);
    molt_db_buf_init(&scratch2);
    molt_db_buf_init(&text2);
    molt_db_value v, again;
    if (molt_db_value_parse(oid, data + 1, size - 1, &scratch, &v) == MOLT_DB_OK) {
        if ((int)v.cls != molt_db_value_class_of(oid))
            abort();
        if (v.cls == MOLT_DB_VALUE_BYTES && v.u.bytes.len > size - 1)
            abort();
        /* timestamptz prints in UTC, what the parser reads too */
        if (molt_db_value_text(&v, &text) == MOLT_DB_OK &&
            (molt_db_value_parse(oid, text.data, text.len, &scratch2, &again) != MOLT_DB_OK ||
             molt_db_value_text(&again, &text2) != MOLT_DB_OK || text2.len != text.len ||
             (text.len && memcmp(text.data, text2.data, text.len))))
            abort();
    }
    molt_db_buf_free(&scratch);
    molt_db_buf_free(&text);
    molt_db_buf_free(&scratch2);
    molt_db_buf_free(&text2);
    return 0;
}
