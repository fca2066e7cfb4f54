/* molt_db_rowstruct_reader: a result handler that decodes rows into an
 * array of structs and hands over full arrays. */
#include "molt_db/rowstruct.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 1024

struct molt_db_rowstruct_reader {
    molt_db_rowstruct_reader_options opts;
    molt_db_rowstruct_plan *plan;
    uint8_t *rows;       /* batch * struct_size bytes, reused */
    size_t batch, n;
    molt_db_buf scratch;
    int failed;
    molt_db_error err;
};

int molt_db_rowstruct_reader_new(const molt_db_rowstruct_reader_options *opts,
                                 molt_db_rowstruct_reader **out,
                                 molt_db_error *err)
{
    *out = NULL;
    if (opts == NULL || opts->desc == NULL || opts->on_rows == NULL ||
        opts->desc->struct_size == 0)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "rowstruct reader: desc and on_rows are required");
    molt_db_rowstruct_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    r->opts = *opts;
    *out = r;
    return MOLT_DB_OK;
}

void molt_db_rowstruct_reader_free(molt_db_rowstruct_reader *r)
{
    if (r == NULL)
        return;
    if (r->n > 0) /* rows never handed over: their copies are ours */
        molt_db_rowstruct_free_copies(r->opts.desc, r->rows, r->n);
    molt_db_rowstruct_plan_free(r->plan);
    free(r->rows);
    molt_db_buf_free(&r->scratch);
    molt_db_error_clear(&r->err);
    free(r);
}

static int fail(molt_db_rowstruct_reader *r, int rc)
{
    if (!r->failed)
        r->failed = rc;
    return rc;
}

static int hand_over(molt_db_rowstruct_reader *r)
{
    size_t n = r->n;
    r->n = 0; /* the copies are the callee's from here */
    if (n == 0)
        return MOLT_DB_OK;
    int rc = r->opts.on_rows(r->opts.ud, r->rows, n);
    if (rc != MOLT_DB_OK) {
        molt_db_error_set(&r->err, rc, "rowstruct reader: on_rows returned %s",
                          molt_db_code_name(rc));
        return fail(r, rc);
    }
    return MOLT_DB_OK;
}

static int on_columns(void *ud, const molt_db_column *cols, size_t ncols)
{
    molt_db_rowstruct_reader *r = ud;
    if (r->failed)
        return r->failed;
    int rc = hand_over(r);
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db_rowstruct_plan_free(r->plan);
    r->plan = NULL;
    rc = molt_db_rowstruct_bind(r->opts.desc, cols, ncols, &r->plan, &r->err);
    if (rc != MOLT_DB_OK)
        return fail(r, rc);
    size_t want = r->opts.batch_rows ? r->opts.batch_rows : DEFAULT_BATCH;
    if (molt_db_rowstruct_plan_has_views(r->plan))
        want = 1; /* views die with their row */
    if (want > SIZE_MAX / r->opts.desc->struct_size)
        want = SIZE_MAX / r->opts.desc->struct_size;
    if (r->rows == NULL || want != r->batch) {
        uint8_t *p = realloc(r->rows, want * r->opts.desc->struct_size);
        if (p == NULL) {
            molt_db_error_set(&r->err, MOLT_DB_ENOMEM, "out of memory");
            return fail(r, MOLT_DB_ENOMEM);
        }
        r->rows = p;
        r->batch = want;
    }
    return MOLT_DB_OK;
}

static int on_row(void *ud, const molt_db_field *fields, size_t n)
{
    molt_db_rowstruct_reader *r = ud;
    if (r->failed)
        return r->failed;
    if (r->plan == NULL) {
        molt_db_error_set(&r->err, MOLT_DB_EPROTO, "a row before its columns");
        return fail(r, MOLT_DB_EPROTO);
    }
    uint8_t *dst = r->rows + r->n * r->opts.desc->struct_size;
    memset(dst, 0, r->opts.desc->struct_size);
    int rc = molt_db_rowstruct_decode(r->plan, fields, n, dst, &r->scratch,
                                      &r->err);
    if (rc != MOLT_DB_OK)
        return fail(r, rc);
    if (++r->n == r->batch)
        return hand_over(r);
    return MOLT_DB_OK;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    molt_db_rowstruct_reader *r = ud;
    if (status == MOLT_DB_OK && !r->failed)
        hand_over(r);
    if (r->failed) {
        status = r->failed;
        err = &r->err;
    }
    if (r->opts.on_done != NULL)
        r->opts.on_done(r->opts.ud, status, err);
}

molt_db_result_handler molt_db_rowstruct_reader_handler(molt_db_rowstruct_reader *r)
{
    molt_db_result_handler h;
    memset(&h, 0, sizeof h);
    h.on_columns = on_columns;
    h.on_row = on_row;
    h.on_done = on_done;
    h.ud = r;
    return h;
}
