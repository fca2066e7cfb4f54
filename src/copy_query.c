/* molt_db_conn_copy_query: a SELECT run through COPY ... (FORMAT binary)
 * and reported to a result handler as if it were a query. */
#include "molt_db/copy_binary.h"
#include "molt_db/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct copy_query {
    molt_db_result_handler h;
    molt_db_conn *conn;
    char *copy_sql;           /* sent once the SELECT is known to parse */
    molt_db_stmt *stmt;
    molt_db_column *cols;     /* stmt's columns, formats set to binary */
    molt_db_copy_parser *parser;
    int failed;               /* first error of ours or of a callback */
    molt_db_error err;
} copy_query;

static void cq_free(copy_query *q)
{
    molt_db_stmt_free(q->stmt);
    free(q->cols);
    free(q->copy_sql);
    molt_db_copy_parser_free(q->parser);
    molt_db_error_clear(&q->err);
    free(q);
}

static int cq_row(void *ud, const molt_db_field *f, size_t n)
{
    copy_query *q = ud;
    return q->h.on_row ? q->h.on_row(q->h.ud, f, n) : MOLT_DB_OK;
}

static void cq_fail(copy_query *q, int code, const molt_db_error *e)
{
    if (q->failed)
        return;
    q->failed = code;
    if (e != NULL && e->code == code)
        molt_db_error_copy(&q->err, e);
    else
        molt_db_error_set(&q->err, code, "copy query failed (%s)",
                          molt_db_code_name(code));
}

static void describe_columns(copy_query *q, const molt_db_stmt *stmt);
static int on_data(void *ud, const uint8_t *data, size_t len);
static void on_copy_done(void *ud, int status, const molt_db_error *err,
                         uint64_t rows);

/* The columns, and the COPY only now: the SELECT parsed as one statement on
 * its own, so wrapped in the COPY's parentheses it cannot close them early
 * (a `select 1) to '/file' --` never reaches the server as a COPY). */
static void on_prepared(void *ud, int status, molt_db_stmt *stmt,
                        const molt_db_error *err)
{
    copy_query *q = ud;
    q->stmt = stmt;
    if (status != MOLT_DB_OK) {
        if (q->h.on_done)
            q->h.on_done(q->h.ud, status, err);
        cq_free(q);
        return;
    }
    describe_columns(q, stmt);
    int rc = q->failed;
    if (rc == MOLT_DB_OK) {
        molt_db_copy_out_handler oh = {on_data, on_copy_done, q};
        rc = molt_db_conn_copy_out(q->conn, q->copy_sql, &oh);
        if (rc == MOLT_DB_OK)
            return;
        cq_fail(q, rc, NULL);
    }
    if (q->h.on_done)
        q->h.on_done(q->h.ud, q->failed, &q->err);
    cq_free(q);
}

static void describe_columns(copy_query *q, const molt_db_stmt *stmt)
{
    size_t n = stmt->ncols;
    q->cols = calloc(n ? n : 1, sizeof *q->cols);
    if (q->cols == NULL) {
        cq_fail(q, MOLT_DB_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        q->cols[i] = stmt->cols[i];
        q->cols[i].format = MOLT_DB_FORMAT_BINARY;
        if (!molt_db_type_binary_supported(stmt->cols[i].type_oid)) {
            molt_db_error e;
            molt_db_error_init(&e);
            molt_db_error_set(&e, MOLT_DB_ETYPE,
                              "copy query: column \"%s\" has a type (oid %u) "
                              "that cannot be read in binary: cast it to text",
                              stmt->cols[i].name, (unsigned)stmt->cols[i].type_oid);
            cq_fail(q, MOLT_DB_ETYPE, &e);
            molt_db_error_clear(&e);
            return;
        }
    }
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = molt_db_copy_parser_new(n, cq_row, q, &q->parser, &e);
    if (rc == MOLT_DB_OK && q->h.on_columns)
        rc = q->h.on_columns(q->h.ud, q->cols, n);
    if (rc != MOLT_DB_OK)
        cq_fail(q, rc, &e);
    molt_db_error_clear(&e);
}

static int on_data(void *ud, const uint8_t *data, size_t len)
{
    copy_query *q = ud;
    if (q->failed)
        return q->failed;
    if (q->parser == NULL) { /* cannot happen: the describe came first */
        cq_fail(q, MOLT_DB_ESTATE, NULL);
        return MOLT_DB_ESTATE;
    }
    /* The server sends a CopyData per row, and an error struct is 1 KiB:
     * the parser writes into q->err itself, which it does only to fail. */
    int rc = molt_db_copy_parser_feed(q->parser, data, len, &q->err);
    if (rc != MOLT_DB_OK) {
        q->failed = rc;
        if (q->err.code != rc) /* a row callback's code, no message */
            molt_db_error_set(&q->err, rc, "copy query failed (%s)",
                              molt_db_code_name(rc));
    }
    return rc;
}

static void on_copy_done(void *ud, int status, const molt_db_error *err,
                         uint64_t rows)
{
    copy_query *q = ud;
    if (status == MOLT_DB_OK && !q->failed) {
        molt_db_error e;
        molt_db_error_init(&e);
        if (q->parser == NULL)
            cq_fail(q, MOLT_DB_ESTATE, NULL);
        else if (molt_db_copy_parser_finish(q->parser, &e) != MOLT_DB_OK)
            cq_fail(q, MOLT_DB_EPROTO, &e);
        molt_db_error_clear(&e);
    }
    if (!q->failed && q->h.on_command) {
        char tag[32];
        snprintf(tag, sizeof tag, "COPY %llu", (unsigned long long)rows);
        q->h.on_command(q->h.ud, tag);
    }
    int st = q->failed ? q->failed : status;
    const molt_db_error *e = q->failed ? &q->err : err;
    if (q->h.on_done)
        q->h.on_done(q->h.ud, st, e);
    cq_free(q);
}

int molt_db_conn_copy_query(molt_db_conn *conn, const char *select_sql,
                            const molt_db_result_handler *h)
{
    if (conn == NULL || select_sql == NULL || h == NULL)
        return MOLT_DB_EINVAL;
    copy_query *q = calloc(1, sizeof *q);
    size_t n = strlen(select_sql);
    char *copy_sql = malloc(n + 64);
    if (q == NULL || copy_sql == NULL) {
        free(q);
        free(copy_sql);
        return MOLT_DB_ENOMEM;
    }
    /* newlines: a trailing -- comment cannot swallow the closing parenthesis */
    snprintf(copy_sql, n + 64, "COPY (\n%s\n) TO STDOUT (FORMAT binary)", select_sql);
    q->h = *h;
    q->conn = conn;
    q->copy_sql = copy_sql;
    molt_db_error_init(&q->err);
    int rc = molt_db_conn_prepare(conn, NULL, select_sql, 0, NULL, on_prepared, q);
    if (rc != MOLT_DB_OK) {
        free(copy_sql);
        free(q);
        return rc;
    }
    return MOLT_DB_OK;
}
