/* molt_db_arrow_reader: a result handler that cuts rows into Arrow batches. */
#include "arrow_internal.h"

#include <stdlib.h>
#include <string.h>

struct molt_db_arrow_reader {
    molt_db_arrow_reader_options opts;
    molt_db_arrow_builder *builder;
    int emitted;        /* batches emitted for the current result set */
    int failed;         /* code of the first reader/callback error, or 0 */
    molt_db_error err;  /* its message */
};

int molt_db_arrow_reader_new(const molt_db_arrow_reader_options *opts,
                             molt_db_arrow_reader **out, molt_db_error *err)
{
    *out = NULL;
    if (opts == NULL || opts->on_batch == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow reader: on_batch is required");
    molt_db_arrow_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    r->opts = *opts;
    *out = r;
    return MOLT_DB_OK;
}

void molt_db_arrow_reader_free(molt_db_arrow_reader *r)
{
    if (r == NULL)
        return;
    molt_db_arrow_builder_free(r->builder);
    molt_db_error_clear(&r->err);
    free(r);
}

molt_db_arrow_builder *molt_db_arrow_reader_builder(molt_db_arrow_reader *r)
{
    return r->builder;
}

/* Remembers the first failure; returns its code for the connection. */
static int fail(molt_db_arrow_reader *r, int code, const molt_db_error *e,
                const char *what)
{
    if (!r->failed) {
        r->failed = code;
        if (e != NULL && e->code == code && e->message[0])
            molt_db_error_copy(&r->err, e);
        else
            molt_db_error_set(&r->err, code, "arrow reader: %s failed (%s)",
                              what, molt_db_code_name(code));
    }
    return code;
}

/* The schema, once per result set, just before its first batch. */
static int send_schema(molt_db_arrow_reader *r)
{
    if (r->emitted > 0 || r->opts.on_schema == NULL)
        return MOLT_DB_OK;
    struct ArrowSchema s;
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = molt_db_arrow_builder_schema(r->builder, &s, &e);
    if (rc == MOLT_DB_OK) {
        rc = r->opts.on_schema(r->opts.ud, &s);
        if (s.release != NULL)
            s.release(&s);
        if (rc != MOLT_DB_OK)
            molt_db_error_set(&e, rc, "arrow reader: on_schema returned %s",
                              molt_db_code_name(rc));
    }
    if (rc != MOLT_DB_OK)
        fail(r, rc, &e, "on_schema");
    molt_db_error_clear(&e);
    return rc;
}

static int emit(molt_db_arrow_reader *r)
{
    struct ArrowArray batch;
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = send_schema(r);
    if (rc != MOLT_DB_OK)
        return rc;
    if (r->opts.borrow) {
        molt_db_arrow_builder_view(r->builder, &batch);
        rc = r->opts.on_batch(r->opts.ud, &batch);
        molt_db_arrow_builder_reset(r->builder);
    } else {
        rc = molt_db_arrow_builder_finish(r->builder, &batch, &e);
        if (rc == MOLT_DB_OK)
            rc = r->opts.on_batch(r->opts.ud, &batch);
        else
            fail(r, rc, &e, "finishing a batch");
    }
    molt_db_error_clear(&e);
    r->emitted++;
    return rc == MOLT_DB_OK ? rc : fail(r, rc, NULL, "on_batch");
}

/* The last batch of a result set: the partial one, or an empty one when
 * the set had no rows at all. */
static int flush(molt_db_arrow_reader *r)
{
    if (r->builder == NULL || r->failed)
        return r->failed;
    if (molt_db_arrow_builder_rows(r->builder) > 0 || r->emitted == 0)
        return emit(r);
    return MOLT_DB_OK;
}

static int on_columns(void *ud, const molt_db_column *cols, size_t ncols)
{
    molt_db_arrow_reader *r = ud;
    int rc = flush(r);
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db_arrow_builder_free(r->builder);
    r->builder = NULL;
    r->emitted = 0;
    molt_db_error e;
    molt_db_error_init(&e);
    rc = molt_db_arrow_builder_new(cols, ncols, r->opts.batch_rows,
                                   &r->builder, &e);
    if (rc != MOLT_DB_OK)
        fail(r, rc, &e, "on_columns");
    molt_db_error_clear(&e);
    return rc;
}

static int on_row(void *ud, const molt_db_field *fields, size_t n)
{
    molt_db_arrow_reader *r = ud;
    if (r->failed)
        return r->failed;
    if (r->builder == NULL)
        return fail(r, MOLT_DB_EPROTO, NULL, "a row before its columns:");
    int rc = molt_db_arrow_builder_append(r->builder, fields, n, &r->err);
    if (rc != MOLT_DB_OK) {
        r->failed = rc; /* r->err holds the builder's message */
        return rc;
    }
    if (molt_db_arrow_builder_full(r->builder))
        return emit(r);
    return MOLT_DB_OK;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    molt_db_arrow_reader *r = ud;
    if (status == MOLT_DB_OK)
        flush(r);
    if (r->failed) {
        /* our own error explains a failed request best */
        status = r->failed;
        err = &r->err;
    }
    if (r->opts.on_done != NULL)
        r->opts.on_done(r->opts.ud, status, err);
}

molt_db_result_handler molt_db_arrow_reader_handler(molt_db_arrow_reader *r)
{
    molt_db_result_handler h;
    memset(&h, 0, sizeof h);
    h.on_columns = on_columns;
    h.on_row = on_row;
    h.on_done = on_done;
    h.ud = r;
    return h;
}
