/* libFuzzer target: the worker's parser of the server's text forms
 * (worker/pg_text.c) on any bytes. The first byte picks the type. Whatever
 * it accepts must decode as that type's binary form and survive a round
 * trip: binary -> the library's text output -> parser -> the same binary. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/pg_text.h"
#include "molt_db/types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t oids[] = {MOLT_DB_OID_BYTEA, MOLT_DB_OID_TIMESTAMP,
                                    MOLT_DB_OID_TIMESTAMPTZ, MOLT_DB_OID_INTERVAL,
                                    MOLT_DB_OID_INT4};
    if (size < 1)
        return 0;
    uint32_t oid = oids[data[0] % (sizeof oids / sizeof oids[0])];
    molt_db_buf bin, text, again;
    molt_db_buf_init(&bin);
    molt_db_buf_init(&text);
    molt_db_buf_init(&again);
    if (mw_pg_text_to_binary(oid, data + 1, size - 1, &bin) == 0) {
        if (oid == MOLT_DB_OID_INT4)
            abort(); /* not a type it handles */
        if ((oid == MOLT_DB_OID_TIMESTAMP || oid == MOLT_DB_OID_TIMESTAMPTZ) && bin.len != 8)
            abort();
        if (oid == MOLT_DB_OID_INTERVAL && bin.len != 16)
            abort();
        if (oid == MOLT_DB_OID_BYTEA && bin.len > size)
            abort();
        molt_db_error err;
        molt_db_error_init(&err);
        /* value_to_text prints timestamptz in UTC and intervals in
         * IntervalStyle postgres: what the parser reads */
        if (molt_db_value_to_text(oid, bin.data ? bin.data : (const uint8_t *)"", bin.len,
                                  &text, &err) == MOLT_DB_OK) {
            if (mw_pg_text_to_binary(oid, text.data ? text.data : (const uint8_t *)"",
                                     text.len, &again) != 0 ||
                again.len != bin.len || (bin.len && memcmp(again.data, bin.data, bin.len)))
                abort();
        }
        molt_db_error_clear(&err);
    }
    molt_db_buf_free(&bin);
    molt_db_buf_free(&text);
    molt_db_buf_free(&again);
    return 0;
}
