/* Building result payloads (see result.h). */
#include "result.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/types.h"
#include "pg_types.h"
#include "zalloc.h"

void mw_result_init(mw_result *r, const mw_result_opts *o)
{
    memset(r, 0, sizeof *r);
    r->o = *o;
    if (r->o.batch_rows == 0)
        r->o.batch_rows = 8192;
    molt_db_buf_init(&r->rows);
    molt_db_buf_init(&r->stmts);
    molt_db_buf_init(&r->parts);
    molt_db_buf_init(&r->arrow);
    molt_db_buf_init(&r->text);
    mw_enc_init(&r->enc, o->format == MW_FORMAT_JSON ? MW_FORMAT_JSON
                                                     : MW_FORMAT_MSGPACK, &r->rows);
    r->enc.scratch = &r->text;
}

/* names and types are one allocation (mw_result_columns) */
static void free_columns(mw_result *r)
{
    free(r->names);
    r->names = r->types = NULL;
    r->ncols = 0;
    r->have_columns = 0;
}

void mw_result_free(mw_result *r)
{
    free_columns(r);
    molt_db_buf_free(&r->rows);
    molt_db_buf_free(&r->stmts);
    molt_db_buf_free(&r->parts);
    molt_db_buf_free(&r->arrow);
    molt_db_buf_free(&r->text);
    molt_db_arrow_builder_free(r->ab);
    molt_db_arrow_ipc_writer_free(r->aw);
    r->ab = NULL;
    r->aw = NULL;
}

int mw_result_ok(const mw_result *r)
{
    if (r->failed || molt_db_buf_ok(&r->rows) || molt_db_buf_ok(&r->stmts) ||
        molt_db_buf_ok(&r->parts) || molt_db_buf_ok(&r->arrow))
        return MOLT_DB_ENOMEM;
    return r->too_large ? MOLT_DB_ERANGE : MOLT_DB_OK;
}

/* Sets too_large when what the result holds, plus `more` bytes about to
 * be added, passed max_bytes: everything when not streamed (for Arrow the
 * builder's rows, about the bytes read), the current batch when streamed. */
static void check_size(mw_result *r, uint64_t more)
{
    if (!r->o.max_bytes)
        return;
    uint64_t held = r->rows.len + more;
    if (!r->o.stream) {
        held += r->stmts.len + r->arrow.len;
        if (r->ab && r->bytes_in > held)
            held = r->bytes_in;
    }
    if (held > r->o.max_bytes)
        r->too_large = 1;
}

int mw_result_room(mw_result *r, uint64_t n)
{
    check_size(r, n);
    return !r->too_large;
}

/* Queues a part built in tmp. */
static void queue_part(mw_result *r, const molt_db_buf *tmp)
{
    if (tmp->failed || tmp->len > UINT32_MAX) {
        r->failed = 1;
        return;
    }
    uint32_t n = (uint32_t)tmp->len;
    molt_db_buf_put(&r->parts, &n, sizeof n);
    molt_db_buf_put(&r->parts, tmp->data, tmp->len);
}

static void put_names(mw_enc *e, char **v, size_t n)
{
    e->ops->array_begin(e, n);
    for (size_t i = 0; i < n; i++)
        mw_enc_cstr(e, v[i]);
    e->ops->array_end(e);
}

/* {"columns": [...], "types": [...]} members (the caller opened the map) */
static void put_columns(mw_result *r, mw_enc *e)
{
    mw_enc_cstr(e, "columns");
    put_names(e, r->names, r->ncols);
    mw_enc_cstr(e, "types");
    put_names(e, r->types, r->ncols);
}

static void splice_rows(mw_enc *e, const molt_db_buf *rows, size_t n)
{
    e->ops->array_begin(e, n);
    molt_db_buf_put(e->out, rows->data, rows->len);
    e->ops->array_end(e);
}

int mw_result_columns(mw_result *r, size_t ncols, const char *const *names,
                      const char *const *types)
{
    free_columns(r);
    /* one allocation: the names' and the types' pointers, then their bytes */
    size_t slots = ncols ? ncols : 1, bytes = 2 * slots * sizeof(char *);
    for (size_t i = 0; i < ncols && bytes < SIZE_MAX / 2; i++)
        bytes += strlen(names[i] ? names[i] : "") + strlen(types[i] ? types[i] : "") + 2;
    char **block = bytes < SIZE_MAX / 2 ? malloc(bytes) : NULL;
    if (!block) {
        r->failed = 1;
        return MOLT_DB_ENOMEM;
    }
    r->names = block;
    r->types = block + slots;
    char *at = (char *)(block + 2 * slots);
    for (size_t i = 0; i < ncols; i++) {
        const char *name = names[i] ? names[i] : "", *type = types[i] ? types[i] : "";
        size_t ln = strlen(name) + 1, lt = strlen(type) + 1;
        r->names[i] = memcpy(at, name, ln);
        r->types[i] = memcpy(at + ln, type, lt);
        at += ln + lt;
    }
    r->ncols = ncols;
    r->have_columns = 1;
    if (r->o.stream && r->o.format != MW_FORMAT_ARROW && !r->columns_sent) {
        molt_db_buf tmp;
        mw_enc e;
        molt_db_buf_init(&tmp);
        mw_enc_init(&e, r->enc.format, &tmp);
        e.ops->map_begin(&e, 2);
        put_columns(r, &e);
        e.ops->map_end(&e);
        queue_part(r, &tmp);
        molt_db_buf_free(&tmp);
        r->columns_sent = 1;
    }
    return mw_result_ok(r);
}

static int arrow_out(mw_result *r, int (*write)(mw_result *, molt_db_buf *,
                                                 molt_db_error *),
                     molt_db_error *err)
{
    int rc;
    if (r->o.stream) {
        molt_db_buf tmp;
        molt_db_buf_init(&tmp);
        rc = write(r, &tmp, err);
        if (rc == MOLT_DB_OK)
            queue_part(r, &tmp);
        molt_db_buf_free(&tmp);
    } else {
        rc = write(r, &r->arrow, err);
    }
    return rc;
}

static int write_schema(mw_result *r, molt_db_buf *out, molt_db_error *err)
{
    return molt_db_arrow_ipc_write_schema(r->aw, out, err);
}

static int write_batch(mw_result *r, molt_db_buf *out, molt_db_error *err)
{
    struct ArrowArray view;
    molt_db_arrow_builder_view(r->ab, &view);
    int rc = molt_db_arrow_ipc_write_batch(r->aw, &view, out, err);
    if (view.release)
        view.release(&view);
    molt_db_arrow_builder_reset(r->ab);
    r->arrow_batches++;
    return rc;
}

static int arrow_setup(mw_result *r, const molt_db_column *cols, size_t ncols,
                       molt_db_error *err)
{
    molt_db_arrow_builder_free(r->ab);
    molt_db_arrow_ipc_writer_free(r->aw);
    r->ab = NULL;
    r->aw = NULL;
    /* the schema is taken when the first batch is written: an array
     * column's dimensionality comes from its first rows (arrow.h) */
    return molt_db_arrow_builder_new(cols, ncols, r->o.stream ? r->o.batch_rows : 0,
                                     &r->ab, err);
}

/* Writes the current batch, preceded by the schema the first time. */
static int flush_batch(mw_result *r, molt_db_error *err)
{
    if (!r->aw) {
        struct ArrowSchema schema;
        int rc = molt_db_arrow_builder_schema(r->ab, &schema, err);
        if (rc != MOLT_DB_OK)
            return rc;
        rc = molt_db_arrow_ipc_writer_new(&schema, &r->aw, err);
        schema.release(&schema);
        if (rc != MOLT_DB_OK)
            return rc;
        rc = arrow_out(r, write_schema, err);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    return arrow_out(r, write_batch, err);
}

int mw_result_pg_columns(mw_result *r, const molt_db_column *cols,
                         size_t ncols, molt_db_error *err)
{
    /* a re-prepare may describe the columns twice: start over */
    r->batch_count = 0;
    r->row_count = 0;
    molt_db_buf_reset(&r->rows);
    if (r->o.format == MW_FORMAT_ARROW && !r->o.exec) {
        int rc = arrow_setup(r, cols, ncols, err);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    /* mw_result_columns copies them: on the stack unless there are many */
    enum { STACK_COLS = 16 };
    const char *names_s[STACK_COLS] = {NULL}, *types_s[STACK_COLS] = {NULL};
    char tb_s[STACK_COLS][16];
    int heap = ncols > STACK_COLS;
    const char **names = heap ? mw_zalloc(ncols, sizeof *names) : names_s;
    const char **types = heap ? mw_zalloc(ncols, sizeof *types) : types_s;
    char (*tb)[16] = heap ? mw_zalloc(ncols, sizeof *tb) : tb_s;
    int rc = MOLT_DB_ENOMEM;
    if (names && types && tb) {
        for (size_t i = 0; i < ncols; i++) {
            names[i] = cols[i].name;
            types[i] = mw_pg_types_name(r->pg_types, cols[i].type_oid);
            if (!types[i])
                types[i] = mw_pg_type_name(cols[i].type_oid, tb[i]);
        }
        rc = mw_result_columns(r, ncols, names, types);
    }
    if (heap) {
        free(names);
        free(types);
        free(tb);
    }
    if (rc != MOLT_DB_OK)
        molt_db_error_set(err, rc, "out of memory");
    return rc;
}

static void rows_part(mw_result *r)
{
    molt_db_buf tmp;
    mw_enc e;
    molt_db_buf_init(&tmp);
    mw_enc_init(&e, r->enc.format, &tmp);
    e.ops->map_begin(&e, 1);
    mw_enc_cstr(&e, "rows");
    splice_rows(&e, &r->rows, r->batch_count);
    e.ops->map_end(&e);
    queue_part(r, &tmp);
    molt_db_buf_free(&tmp);
    molt_db_buf_reset(&r->rows);
    r->batch_count = 0;
}

int mw_result_row_begin(mw_result *r)
{
    if (r->o.max_rows && r->row_count >= r->o.max_rows) {
        r->truncated = 1;
        return 1;
    }
    if (r->enc.format == MW_FORMAT_JSON && r->batch_count > 0)
        molt_db_buf_put_u8(&r->rows, ',');
    if (r->o.objects)
        r->enc.ops->map_begin(&r->enc, r->ncols);
    else
        r->enc.ops->array_begin(&r->enc, r->ncols);
    return 0;
}

void mw_result_key(mw_result *r, size_t i)
{
    if (r->o.objects && i < r->ncols)
        mw_enc_cstr(&r->enc, r->names[i]);
}

void mw_result_row_end(mw_result *r)
{
    if (r->o.objects)
        r->enc.ops->map_end(&r->enc);
    else
        r->enc.ops->array_end(&r->enc);
    r->row_count++;
    r->total_rows++;
    r->batch_count++;
    check_size(r, 0);
    if (r->o.stream && r->batch_count >= r->o.batch_rows)
        rows_part(r);
}

int mw_result_pg_row(mw_result *r, const molt_db_column *cols,
                     const molt_db_field *fields, size_t n, molt_db_error *err)
{
    for (size_t i = 0; i < n; i++)
        r->bytes_in += fields[i].len > 0 ? (size_t)fields[i].len + 4 : 4;
    if (r->o.max_rows && r->row_count >= r->o.max_rows) {
        r->truncated = 1;
        return 1;
    }
    if (r->ab) {
        check_size(r, 0); /* before the builder copies a row past the cap */
        if (r->too_large)
            return 1;
        int rc = molt_db_arrow_builder_append(r->ab, fields, n, err);
        if (rc == MOLT_DB_ERANGE || rc == MOLT_DB_ETYPE) /* a value its type cannot hold */
            memcpy(err->sqlstate, MW_SQLSTATE_UNCARRIED, sizeof err->sqlstate);
        if (rc != MOLT_DB_OK)
            return rc;
        r->row_count++;
        r->total_rows++;
        check_size(r, 0);
        if (r->too_large)
            return 1;
        if (molt_db_arrow_builder_full(r->ab))
            return flush_batch(r, err);
        return MOLT_DB_OK;
    }
    if (n != r->ncols)
        return molt_db_error_set(err, MOLT_DB_EPROTO, "row has %zu fields, expected %zu",
                                 n, r->ncols);
    mw_result_row_begin(r);
    for (size_t i = 0; i < n; i++) {
        mw_result_key(r, i);
        int rc = mw_enc_pg_value(&r->enc, cols[i].type_oid, cols[i].format,
                                 fields[i].data, fields[i].len, err);
        if (rc != MOLT_DB_OK) {
            if (err && err->message[0]) {
                char m[MOLT_DB_ERROR_MESSAGE_SIZE];
                memcpy(m, err->message, sizeof m);
                molt_db_error_set(err, rc, "column %.64s: %.900s", cols[i].name, m);
            }
            return rc;
        }
    }
    mw_result_row_end(r);
    return r->too_large ? 1 : mw_result_ok(r);
}

mw_status mw_result_error_status(const molt_db_error *err)
{
    return err->sqlstate[0] ? MW_DB_ERROR : MW_INTERNAL_ERROR;
}

void mw_result_stmt_end(mw_result *r, int64_t rows_affected, int has_last_id,
                        int64_t last_id)
{
    mw_enc e;
    if (r->enc.format == MW_FORMAT_JSON && r->nstmts > 0)
        molt_db_buf_put_u8(&r->stmts, ',');
    mw_enc_init(&e, r->enc.format, &r->stmts);
    int cols = r->have_columns && r->ncols > 0;
    e.ops->map_begin(&e, 1 + (has_last_id ? 1 : 0) + (cols ? 3 : 0));
    mw_enc_cstr(&e, "rows_affected");
    e.ops->i64(&e, rows_affected);
    if (has_last_id) {
        mw_enc_cstr(&e, "last_insert_id");
        e.ops->i64(&e, last_id);
    }
    if (cols) {
        put_columns(r, &e);
        mw_enc_cstr(&e, "rows");
        splice_rows(&e, &r->rows, r->batch_count);
    }
    e.ops->map_end(&e);
    r->nstmts++;
    molt_db_buf_reset(&r->rows);
    r->batch_count = 0;
    r->row_count = 0;
    free_columns(r);
}

void mw_result_take_parts(mw_result *r,
                          void (*cb)(void *ud, const uint8_t *p, size_t n),
                          void *ud)
{
    size_t off = 0;
    while (r->parts.len - off >= 4) {
        uint32_t n;
        memcpy(&n, r->parts.data + off, 4);
        cb(ud, r->parts.data + off + 4, n);
        off += 4 + (size_t)n;
    }
    molt_db_buf_reset(&r->parts);
}

/* body takes the bytes of big (moved, not copied). */
static void move_buf(molt_db_buf *body, molt_db_buf *big)
{
    molt_db_buf_free(body);
    *body = *big;
    molt_db_buf_init(big);
}

/* An array of n items held in items: its header into head (e writes
 * there), the items moved to body, its end into tail (e writes there
 * after). */
static void array_around(mw_enc *e, molt_db_buf *items, size_t n,
                         molt_db_buf *body, molt_db_buf *tail)
{
    e->ops->array_begin(e, n);
    move_buf(body, items);
    mw_enc_retarget(e, tail);
    e->ops->array_end(e);
}

int mw_result_finish(mw_result *r, molt_db_buf *head, molt_db_buf *body,
                     molt_db_buf *tail, molt_db_error *err)
{
    mw_enc e;
    int rc;
    if (r->o.format == MW_FORMAT_ARROW && !r->o.exec) {
        if (!r->ab) {
            /* no result set was described: an empty stream with no columns */
            rc = arrow_setup(r, NULL, 0, err);
            if (rc != MOLT_DB_OK)
                return rc;
        }
        if (molt_db_arrow_builder_rows(r->ab) > 0 || r->arrow_batches == 0) {
            rc = flush_batch(r, err);
            if (rc != MOLT_DB_OK)
                return rc;
        }
        if (!r->o.stream)
            move_buf(body, &r->arrow);
        rc = molt_db_arrow_ipc_write_eos(tail);
        if (rc != MOLT_DB_OK)
            return molt_db_error_set(err, rc, "out of memory");
        return mw_result_ok(r) || molt_db_buf_ok(body) || molt_db_buf_ok(tail)
                   ? molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory")
                   : MOLT_DB_OK;
    }
    mw_enc_init(&e, r->enc.format, head);
    if (r->o.exec) {
        if (r->o.statements) {
            e.ops->map_begin(&e, 1);
            mw_enc_cstr(&e, "results");
            array_around(&e, &r->stmts, r->nstmts, body, tail);
            e.ops->map_end(&e);
        } else {
            move_buf(body, &r->stmts);
        }
    } else if (r->o.stream) {
        if (!r->columns_sent)
            mw_result_columns(r, 0, NULL, NULL);
        if (r->batch_count > 0)
            rows_part(r);
        e.ops->map_begin(&e, 2);
        mw_enc_cstr(&e, "row_count");
        e.ops->i64(&e, (int64_t)r->row_count);
        mw_enc_cstr(&e, "truncated");
        e.ops->boolean(&e, r->truncated);
        e.ops->map_end(&e);
    } else {
        e.ops->map_begin(&e, 5);
        if (!r->have_columns) {
            mw_enc_cstr(&e, "columns");
            e.ops->array_begin(&e, 0);
            e.ops->array_end(&e);
            mw_enc_cstr(&e, "types");
            e.ops->array_begin(&e, 0);
            e.ops->array_end(&e);
        } else {
            put_columns(r, &e);
        }
        mw_enc_cstr(&e, "rows");
        array_around(&e, &r->rows, r->batch_count, body, tail);
        mw_enc_cstr(&e, "row_count");
        e.ops->i64(&e, (int64_t)r->row_count);
        mw_enc_cstr(&e, "truncated");
        e.ops->boolean(&e, r->truncated);
        e.ops->map_end(&e);
    }
    if (mw_result_ok(r) != MOLT_DB_OK || molt_db_buf_ok(head) != MOLT_DB_OK ||
        molt_db_buf_ok(body) != MOLT_DB_OK || molt_db_buf_ok(tail) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    return MOLT_DB_OK;
}
