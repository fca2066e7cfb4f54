/* libFuzzer target: the worker's parser of the server's text forms
 * (worker/pg_text.c) on any bytes. The first byte picks the type. Whatever
 * it accepts must survive a round trip: value -> binary wire form -> the
 * library's text output -> parser -> the same value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/pg_text.h"
#include "molt_db/types.h"

/* The library's text of the binary value bin, parsed again into again. */
static int reparse(uint32_t oid, const molt_db_buf *bin, molt_db_buf *text)
{
    molt_db_error err;
    molt_db_error_init(&err);
    int rc = molt_db_value_to_text(oid, bin->data ? bin->data : (const uint8_t *)"",
                                   bin->len, text, &err);
    molt_db_error_clear(&err);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    molt_db_buf bin, text;
    molt_db_buf_init(&bin);
    molt_db_buf_init(&text);
    switch (data[0] % 4) {
    case 0: {
        uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
        size_t al, bl;
        if (a && b && mw_pg_text_bytea(p, n, a, &al) == 0) {
            if (al > n)
                abort();
            molt_db_encode_bytes(&bin, a, al);
            /* the library prints hex: it decodes to al bytes, room enough */
            if (reparse(MOLT_DB_OID_BYTEA, &bin, &text) == MOLT_DB_OK &&
                (mw_pg_text_bytea(text.data, text.len, b, &bl) != 0 || bl != al ||
                 (al && memcmp(a, b, al))))
                abort();
        }
        free(a);
        free(b);
        break;
    }
    case 1:
    case 2: {
        uint32_t oid = data[0] % 4 == 1 ? MOLT_DB_OID_TIMESTAMP : MOLT_DB_OID_TIMESTAMPTZ;
        int64_t us, again;
        if (mw_pg_text_timestamp(p, n, oid == MOLT_DB_OID_TIMESTAMPTZ, &us) == 0) {
            molt_db_encode_timestamp(&bin, us);
            /* value_to_text prints timestamptz in UTC: what the parser reads */
            if (reparse(oid, &bin, &text) == MOLT_DB_OK &&
                (mw_pg_text_timestamp(text.data, text.len, oid == MOLT_DB_OID_TIMESTAMPTZ,
                                      &again) != 0 || again != us))
                abort();
        }
        break;
    }
    default: {
        molt_db_interval iv, again;
        if (mw_pg_text_interval(p, n, &iv) == 0) {
            molt_db_encode_interval(&bin, iv);
            if (reparse(MOLT_DB_OID_INTERVAL, &bin, &text) == MOLT_DB_OK &&
                (mw_pg_text_interval(text.data, text.len, &again) != 0 ||
                 again.micros != iv.micros || again.days != iv.days ||
                 again.months != iv.months))
                abort();
        }
        break;
    }
    }
    molt_db_buf_free(&bin);
    molt_db_buf_free(&text);
    return 0;
}
