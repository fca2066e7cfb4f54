/* libFuzzer harness: a binary COPY stream, split into chunks, parsed and
 * decoded into Arrow builders of every mapped type (scalars, numeric to
 * Decimal128 and to text, arrays, ranges, interval), each batch written as
 * Arrow IPC. Any bytes must parse or fail cleanly: no crash, no leak, no
 * read past the input. The first byte picks the chunk size.
 * The same rows also go into two builders of flat columns only, one with
 * its fast path (arrow_fast_row.c) and one without: they must take and
 * refuse the same rows and write the same IPC bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/arrow.h"
#include "molt_db/arrow_ipc.h"
#include "molt_db/copy_binary.h"
#include "molt_db/types.h"
#include "arrow_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCOLS 14

typedef struct sink {
    molt_db_arrow_builder *b;
    molt_db_arrow_ipc_writer *w;
    molt_db_buf out;
    molt_db_arrow_builder *fast, *slow; /* flat columns, with and without */
    molt_db_arrow_ipc_writer *fw;
    molt_db_buf fout, sout;
} sink;

/* Writes the flat builders' batches (views) and compares them. */
static void flat_compare(sink *s)
{
    struct ArrowArray a;
    molt_db_buf_reset(&s->fout);
    molt_db_buf_reset(&s->sout);
    molt_db_arrow_builder_view(s->fast, &a);
    int rf = molt_db_arrow_ipc_write_batch(s->fw, &a, &s->fout, NULL);
    molt_db_arrow_builder_view(s->slow, &a);
    int rs = molt_db_arrow_ipc_write_batch(s->fw, &a, &s->sout, NULL);
    if (rf != rs || s->fout.len != s->sout.len ||
        (s->fout.len && memcmp(s->fout.data, s->sout.data, s->fout.len) != 0))
        abort(); /* the fast path wrote something else */
    molt_db_arrow_builder_reset(s->fast);
    molt_db_arrow_builder_reset(s->slow);
}

static int on_flat_row(sink *s, const molt_db_field *f, size_t n)
{
    int rf = molt_db_arrow_builder_append(s->fast, f, n, NULL);
    int rs = molt_db_arrow_builder_append(s->slow, f, n, NULL);
    if (rf != rs)
        abort(); /* the fast path took or refused a row the other did not */
    if (rf == MOLT_DB_OK && molt_db_arrow_builder_full(s->fast))
        flat_compare(s);
    return rf == MOLT_DB_ENOMEM ? rf : MOLT_DB_OK;
}

static int on_row(void *ud, const molt_db_field *f, size_t n)
{
    sink *s = ud;
    if (s->fast != NULL && on_flat_row(s, f, n) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    int rc = molt_db_arrow_builder_append(s->b, f, n, NULL);
    if (rc == MOLT_DB_EPROTO || rc == MOLT_DB_ETYPE || rc == MOLT_DB_ERANGE)
        rc = MOLT_DB_OK; /* a bad value: the row is skipped, the batch is intact */
    if (rc == MOLT_DB_OK && molt_db_arrow_builder_full(s->b)) {
        struct ArrowArray a;
        molt_db_arrow_builder_view(s->b, &a);
        molt_db_buf_reset(&s->out);
        rc = molt_db_arrow_ipc_write_batch(s->w, &a, &s->out, NULL);
        molt_db_arrow_builder_reset(s->b);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    static const struct { uint32_t oid; int32_t typmod; } types[NCOLS] = {
        {MOLT_DB_OID_BOOL, -1}, {MOLT_DB_OID_INT4, -1}, {MOLT_DB_OID_INT8, -1},
        {MOLT_DB_OID_FLOAT8, -1}, {MOLT_DB_OID_NUMERIC, ((10 << 16) | 2) + 4},
        {MOLT_DB_OID_NUMERIC, -1}, {MOLT_DB_OID_TEXT, -1}, {MOLT_DB_OID_UUID, -1},
        {MOLT_DB_OID_DATE, -1}, {MOLT_DB_OID_TIMESTAMPTZ, -1},
        {MOLT_DB_OID_INTERVAL, -1}, {MOLT_DB_OID_JSONB, -1},
        {MOLT_DB_OID_INT4_ARRAY, -1}, {MOLT_DB_OID_INT8RANGE, -1}};
    /* column by column, a flat type that takes the seeds' field lengths */
    static const uint32_t flat[NCOLS] = {
        MOLT_DB_OID_BOOL, MOLT_DB_OID_OID, MOLT_DB_OID_INT8, MOLT_DB_OID_FLOAT8,
        MOLT_DB_OID_BYTEA, MOLT_DB_OID_TEXT, MOLT_DB_OID_TEXT, MOLT_DB_OID_UUID,
        MOLT_DB_OID_DATE, MOLT_DB_OID_TIMESTAMPTZ, MOLT_DB_OID_UUID,
        MOLT_DB_OID_TEXT, MOLT_DB_OID_BYTEA, MOLT_DB_OID_BYTEA};
    molt_db_column cols[NCOLS], fcols[NCOLS];
    memset(cols, 0, sizeof cols);
    memset(fcols, 0, sizeof fcols);
    for (int i = 0; i < NCOLS; i++) {
        cols[i].name = fcols[i].name = "c";
        cols[i].type_oid = types[i].oid;
        cols[i].type_modifier = types[i].typmod;
        fcols[i].type_oid = flat[i];
        fcols[i].type_modifier = -1;
        cols[i].format = fcols[i].format = MOLT_DB_FORMAT_BINARY;
    }
    sink s;
    memset(&s, 0, sizeof s);
    struct ArrowSchema fschema;
    if (molt_db_arrow_builder_new(fcols, NCOLS, 5, &s.fast, NULL) != MOLT_DB_OK ||
        molt_db_arrow_builder_new(fcols, NCOLS, 5, &s.slow, NULL) != MOLT_DB_OK ||
        !s.fast->fast)
        abort();
    s.slow->fast = 0;
    if (molt_db_arrow_builder_schema(s.fast, &fschema, NULL) != MOLT_DB_OK ||
        molt_db_arrow_ipc_writer_new(&fschema, &s.fw, NULL) != MOLT_DB_OK)
        abort();
    fschema.release(&fschema);
    struct ArrowSchema schema;
    molt_db_copy_parser *p = NULL;
    if (molt_db_arrow_builder_new(cols, NCOLS, 4, &s.b, NULL) == MOLT_DB_OK &&
        molt_db_arrow_builder_schema(s.b, &schema, NULL) == MOLT_DB_OK) {
        if (molt_db_arrow_ipc_writer_new(&schema, &s.w, NULL) == MOLT_DB_OK &&
            molt_db_copy_parser_new(NCOLS, on_row, &s, &p, NULL) == MOLT_DB_OK) {
            int rc = MOLT_DB_OK;
            for (size_t off = 0; off < size && rc == MOLT_DB_OK; off += chunk)
                rc = molt_db_copy_parser_feed(p, data + off,
                                              size - off < chunk ? size - off : chunk,
                                              NULL);
            if (rc == MOLT_DB_OK)
                (void)molt_db_copy_parser_finish(p, NULL);
            /* the last partial batch, owned this time */
            struct ArrowArray a;
            if (molt_db_arrow_builder_finish(s.b, &a, NULL) == MOLT_DB_OK) {
                (void)molt_db_arrow_ipc_write_batch(s.w, &a, &s.out, NULL);
                a.release(&a);
            }
        }
        schema.release(&schema);
    }
    flat_compare(&s); /* the last partial batches */
    molt_db_copy_parser_free(p);
    molt_db_arrow_ipc_writer_free(s.w);
    molt_db_arrow_builder_free(s.b);
    molt_db_buf_free(&s.out);
    molt_db_arrow_ipc_writer_free(s.fw);
    molt_db_arrow_builder_free(s.fast);
    molt_db_arrow_builder_free(s.slow);
    molt_db_buf_free(&s.fout);
    molt_db_buf_free(&s.sout);
    return 0;
}
