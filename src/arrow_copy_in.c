/* molt_db_arrow_copy_in: an ArrowArrayStream into a table via COPY FROM
 * STDIN (FORMAT binary), pulled as the send buffer drains. */
#include "molt_db/arrow_copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pull more batches while less than this is queued for the socket. */
#define HIGH_WATER ((size_t)1 << 20)

typedef struct copy_in {
    molt_db_conn *conn;
    struct ArrowArrayStream stream;
    struct ArrowSchema schema;
    molt_db_copy_encoder *enc;
    molt_db_buf buf;
    int header_sent, ended, failed;
    int orphan;   /* the COPY could not be queued: the describe frees us */
    molt_db_error err;
    molt_db_arrow_copy_done_cb cb;
    void *ud;
} copy_in;

static void ci_free(copy_in *c)
{
    if (c->stream.release)
        c->stream.release(&c->stream);
    if (c->schema.release)
        c->schema.release(&c->schema);
    molt_db_copy_encoder_free(c->enc);
    molt_db_buf_free(&c->buf);
    molt_db_error_clear(&c->err);
    free(c);
}

static void ci_fail(copy_in *c, int code, const molt_db_error *e, const char *msg)
{
    if (c->failed)
        return;
    c->failed = code;
    if (e != NULL && e->code == code && e->message[0])
        molt_db_error_copy(&c->err, e);
    else
        molt_db_error_set(&c->err, code, "arrow copy: %s", msg);
}

/* Quotes name as an identifier ("a""b") into out. */
static void put_ident(molt_db_buf *out, const char *name)
{
    molt_db_buf_put_u8(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            molt_db_buf_put_u8(out, '"');
        molt_db_buf_put_u8(out, (uint8_t)*p);
    }
    molt_db_buf_put_u8(out, '"');
}

static void on_described(void *ud, int status, molt_db_stmt *stmt,
                         const molt_db_error *err)
{
    copy_in *c = ud;
    if (c->orphan) {
        molt_db_stmt_free(stmt);
        ci_free(c);
        return;
    }
    if (status != MOLT_DB_OK) {
        ci_fail(c, status, err, "describing the target columns failed");
        return; /* the COPY fails on its own (same statement error) */
    }
    uint32_t *oids = calloc(stmt->ncols ? stmt->ncols : 1, sizeof *oids);
    if (oids == NULL) {
        ci_fail(c, MOLT_DB_ENOMEM, NULL, "out of memory");
    } else {
        for (size_t i = 0; i < stmt->ncols; i++)
            oids[i] = stmt->cols[i].type_oid;
        molt_db_error e;
        molt_db_error_init(&e);
        int rc = molt_db_copy_encoder_new(&c->schema, oids, stmt->ncols, &c->enc, &e);
        if (rc != MOLT_DB_OK)
            ci_fail(c, rc, &e, "encoder");
        molt_db_error_clear(&e);
        free(oids);
    }
    molt_db_stmt_free(stmt);
}

/* Sends batches until HIGH_WATER bytes are queued or the stream ends. */
static void produce(copy_in *c)
{
    if (c->ended)
        return;
    if (c->failed || c->enc == NULL) {
        if (!c->failed)
            ci_fail(c, MOLT_DB_ESTATE, NULL, "no encoder");
        c->ended = 1;
        molt_db_conn_copy_fail(c->conn, c->err.message);
        return;
    }
    while (molt_db_conn_send_pending(c->conn) < HIGH_WATER) {
        molt_db_buf_reset(&c->buf);
        if (!c->header_sent) {
            molt_db_copy_encode_header(&c->buf);
            c->header_sent = 1;
        }
        struct ArrowArray a;
        memset(&a, 0, sizeof a);
        int rc = c->stream.get_next(&c->stream, &a);
        if (rc != 0) {
            const char *m = c->stream.get_last_error ? c->stream.get_last_error(&c->stream)
                                                     : NULL;
            molt_db_error e;
            molt_db_error_init(&e);
            molt_db_error_set(&e, MOLT_DB_EINVAL, "arrow copy: the stream failed: %s",
                              m ? m : "(no message)");
            ci_fail(c, MOLT_DB_EINVAL, &e, "stream");
            molt_db_error_clear(&e);
            break;
        }
        int last = a.release == NULL;
        if (last) {
            molt_db_copy_encode_trailer(&c->buf);
        } else {
            molt_db_error e;
            molt_db_error_init(&e);
            rc = molt_db_copy_encode_batch(c->enc, &a, &c->buf, &e);
            a.release(&a);
            if (rc != MOLT_DB_OK) {
                ci_fail(c, rc, &e, "encoding");
                molt_db_error_clear(&e);
                break;
            }
            molt_db_error_clear(&e);
        }
        if (molt_db_buf_ok(&c->buf) != MOLT_DB_OK ||
            (c->buf.len && molt_db_conn_copy_data(c->conn, c->buf.data, c->buf.len) !=
                               MOLT_DB_OK)) {
            ci_fail(c, MOLT_DB_ENOMEM, NULL, "queueing the data failed");
            break;
        }
        if (last) {
            c->ended = 1;
            molt_db_conn_copy_end(c->conn);
            return;
        }
    }
    if (c->failed) {
        c->ended = 1;
        molt_db_conn_copy_fail(c->conn, c->err.message);
    }
}

static void on_ready(void *ud)
{
    produce(ud);
}

static void on_drain(void *ud)
{
    produce(ud);
}

static void on_done(void *ud, int status, const molt_db_error *err, uint64_t rows)
{
    copy_in *c = ud;
    if (c->failed) {
        status = c->failed;
        err = &c->err;
        rows = 0;
    }
    if (c->cb)
        c->cb(c->ud, status, err, rows);
    ci_free(c);
}

int molt_db_arrow_copy_in(molt_db_conn *conn, const char *table,
                          struct ArrowArrayStream *batches,
                          molt_db_arrow_copy_done_cb cb, void *ud)
{
    if (batches == NULL || batches->release == NULL)
        return MOLT_DB_EINVAL;
    copy_in *c = calloc(1, sizeof *c);
    if (c == NULL) {
        batches->release(batches);
        return MOLT_DB_ENOMEM;
    }
    c->stream = *batches; /* moved in */
    batches->release = NULL;
    c->conn = conn;
    c->cb = cb;
    c->ud = ud;
    if (conn == NULL || table == NULL ||
        c->stream.get_schema(&c->stream, &c->schema) != 0 ||
        c->schema.format == NULL || strcmp(c->schema.format, "+s") != 0 ||
        c->schema.n_children < 1) {
        ci_free(c);
        return MOLT_DB_EINVAL;
    }
    /* column list, quoted, from the schema's names */
    molt_db_buf cols, sql;
    molt_db_buf_init(&cols);
    molt_db_buf_init(&sql);
    for (int64_t i = 0; i < c->schema.n_children; i++) {
        if (i)
            molt_db_buf_put(&cols, ", ", 2);
        put_ident(&cols, c->schema.children[i]->name ? c->schema.children[i]->name : "");
    }
    molt_db_buf_put(&sql, "SELECT ", 7);
    molt_db_buf_put(&sql, cols.data, cols.len);
    molt_db_buf_put(&sql, " FROM ", 6);
    molt_db_buf_put_cstr(&sql, table);
    size_t copy_at = sql.len;
    molt_db_buf_put(&sql, "COPY ", 5);
    molt_db_buf_put(&sql, table, strlen(table));
    molt_db_buf_put(&sql, " (", 2);
    molt_db_buf_put(&sql, cols.data, cols.len);
    molt_db_buf_put_cstr(&sql, ") FROM STDIN (FORMAT binary)");
    int rc = molt_db_buf_ok(&sql) == MOLT_DB_OK && molt_db_buf_ok(&cols) == MOLT_DB_OK
                 ? MOLT_DB_OK : MOLT_DB_ENOMEM;
    molt_db_buf_free(&cols);
    if (rc == MOLT_DB_OK)
        rc = molt_db_conn_prepare(conn, NULL, (const char *)sql.data, 0, NULL,
                                  on_described, c);
    if (rc != MOLT_DB_OK) {
        molt_db_buf_free(&sql);
        ci_free(c);
        return rc;
    }
    molt_db_copy_in_handler h = {on_ready, on_drain, on_done, c};
    rc = molt_db_conn_copy_in(conn, (const char *)sql.data + copy_at, &h);
    molt_db_buf_free(&sql);
    if (rc != MOLT_DB_OK) {
        /* the describe is queued and will call back into c: it frees c */
        c->stream.release(&c->stream);
        c->orphan = 1;
        return rc;
    }
    return MOLT_DB_OK;
}
