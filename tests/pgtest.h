/*
 * Blocking helpers for tests that talk to the real server: each runs the
 * libuv loop (through the libuv adapter) until the request is done. Results are copied into a
 * pgt_result (rows x cols of owned byte strings).
 *
 * Connection strings come from the environment set by scripts/with_pg.sh:
 *   MOLT_TEST_DSN          trust superuser over TCP (127.0.0.1)
 *   MOLT_TEST_DSN_SOCKET   trust superuser over the Unix socket
 *   MOLT_TEST_DSN_MD5      md5 user        MOLT_TEST_DSN_SCRAM   scram user
 *   MOLT_TEST_CERT_DSN     client-certificate user (sslcert/sslkey given)
 *   MOLT_TEST_SSLROOTCERT  the throwaway CA      MOLT_TEST_PGPORT  the port
 */
#ifndef MOLT_DB_PGTEST_H
#define MOLT_DB_PGTEST_H

#include <uv.h>

#include "molt_db/conn.h"
#include "molt_db/loop_libuv.h"
#include "test.h"

typedef struct pgt_result {
    size_t ncols, nrows, cap;
    uint32_t *oids;
    int16_t *formats;
    char **names;
    uint8_t **data;   /* nrows * ncols; NULL for SQL NULL */
    int32_t *lens;    /* -1 for SQL NULL */
    char tag[64];
    int status;
    molt_db_error err;
    int done;
} pgt_result;

typedef struct pgt_conn {
    uv_loop_t loop;
    molt_db_loop *ml;       /* loop, for the library */
    molt_db_conn *conn;
    int connect_status;
    int connect_done;
    molt_db_error err;
} pgt_conn;

static inline void pgt_connect_cb_(molt_db_conn *c, int status,
                                   const molt_db_error *err, void *ud)
{
    pgt_conn *p = ud;
    (void)c;
    p->connect_status = status;
    p->connect_done = 1;
    if (status != MOLT_DB_OK && err)
        molt_db_error_copy(&p->err, err);
}

/* Connects; returns the status and leaves *out NULL on failure (err filled
 * in p->err of a temporary, copied to *err when not NULL). */
static inline int pgt_try_connect(const char *dsn, pgt_conn **out,
                                  molt_db_error *err)
{
    *out = NULL;
    molt_db_conninfo *ci = NULL;
    int rc = molt_db_conninfo_parse(dsn, &ci, err);
    if (rc != MOLT_DB_OK)
        return rc;
    pgt_conn *p = calloc(1, sizeof *p);
    ASSERT(p != NULL);
    ASSERT_EQ_INT(uv_loop_init(&p->loop), 0);
    ASSERT_OK(molt_db_loop_libuv_new(&p->loop, &p->ml, NULL), NULL);
    rc = molt_db_conn_connect(p->ml, ci, NULL, pgt_connect_cb_, p, &p->conn,
                              err);
    molt_db_conninfo_free(ci);
    if (rc != MOLT_DB_OK) {
        molt_db_loop_free(p->ml);
        uv_loop_close(&p->loop);
        free(p);
        return rc;
    }
    while (!p->connect_done)
        uv_run(&p->loop, UV_RUN_ONCE);
    rc = p->connect_status;
    if (rc != MOLT_DB_OK) {
        if (err)
            molt_db_error_move(err, &p->err);
        molt_db_error_clear(&p->err);
        uv_run(&p->loop, UV_RUN_DEFAULT); /* let the failed conn close */
        molt_db_loop_free(p->ml);
        ASSERT_EQ_INT(uv_loop_close(&p->loop), 0);
        free(p);
        return rc;
    }
    *out = p;
    return MOLT_DB_OK;
}

static inline pgt_conn *pgt_connect(const char *dsn)
{
    molt_db_error err;
    molt_db_error_init(&err);
    pgt_conn *p = NULL;
    int rc = pgt_try_connect(dsn, &p, &err);
    ASSERT_OK(rc, &err);
    return p;
}

static inline void pgt_close(pgt_conn *p)
{
    if (p == NULL)
        return;
    molt_db_conn_close(p->conn, NULL, NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    molt_db_loop_free(p->ml);
    ASSERT_EQ_INT(uv_loop_close(&p->loop), 0);
    molt_db_error_clear(&p->err);
    free(p);
}

static inline int pgt_on_columns_(void *ud, const molt_db_column *cols,
                                  size_t n)
{
    pgt_result *r = ud;
    /* multi-statement simple queries: keep the last result set only */
    for (size_t i = 0; i < r->ncols; i++)
        free(r->names[i]);
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->data[i]);
    free(r->names); free(r->oids); free(r->formats);
    free(r->data); free(r->lens);
    r->nrows = 0; r->cap = 0; r->data = NULL; r->lens = NULL;
    r->ncols = n;
    r->names = calloc(n ? n : 1, sizeof *r->names);
    r->oids = calloc(n ? n : 1, sizeof *r->oids);
    r->formats = calloc(n ? n : 1, sizeof *r->formats);
    ASSERT(r->names && r->oids && r->formats);
    for (size_t i = 0; i < n; i++) {
        r->names[i] = strdup(cols[i].name);
        r->oids[i] = cols[i].type_oid;
        r->formats[i] = cols[i].format;
    }
    return MOLT_DB_OK;
}

static inline int pgt_on_row_(void *ud, const molt_db_field *f, size_t n)
{
    pgt_result *r = ud;
    ASSERT_EQ_UINT(n, r->ncols);
    if (r->nrows == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->data = realloc(r->data, r->cap * (n ? n : 1) * sizeof *r->data);
        r->lens = realloc(r->lens, r->cap * (n ? n : 1) * sizeof *r->lens);
        ASSERT(r->data && r->lens);
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = r->nrows * n + i;
        r->lens[k] = f[i].len;
        if (f[i].len < 0) {
            r->data[k] = NULL;
            continue;
        }
        r->data[k] = malloc((size_t)f[i].len + 1);
        ASSERT(r->data[k] != NULL);
        memcpy(r->data[k], f[i].data, (size_t)f[i].len);
        r->data[k][f[i].len] = '\0';
    }
    r->nrows++;
    return MOLT_DB_OK;
}

static inline void pgt_on_command_(void *ud, const char *tag)
{
    pgt_result *r = ud;
    snprintf(r->tag, sizeof r->tag, "%s", tag);
}

static inline void pgt_on_done_(void *ud, int status, const molt_db_error *err)
{
    pgt_result *r = ud;
    r->status = status;
    if (status != MOLT_DB_OK && err)
        molt_db_error_copy(&r->err, err);
    r->done = 1;
}

static inline void pgt_result_free(pgt_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->ncols; i++)
        free(r->names[i]);
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->data[i]);
    free(r->names); free(r->oids); free(r->formats);
    free(r->data); free(r->lens);
    molt_db_error_clear(&r->err);
    free(r);
}

static inline molt_db_result_handler pgt_handler_(pgt_result *r)
{
    molt_db_result_handler h = {pgt_on_columns_, pgt_on_row_, pgt_on_command_,
                                pgt_on_done_, r};
    return h;
}

static inline pgt_result *pgt_wait_(pgt_conn *p, pgt_result *r)
{
    while (!r->done)
        uv_run(&p->loop, UV_RUN_ONCE);
    return r;
}

/* Extended protocol (unnamed statement). The result's status says how it
 * went; the caller frees it. */
static inline pgt_result *pgt_query(pgt_conn *p, const char *sql, size_t n,
                                    const molt_db_param *params)
{
    pgt_result *r = calloc(1, sizeof *r);
    ASSERT(r != NULL);
    molt_db_result_handler h = pgt_handler_(r);
    int rc = molt_db_conn_query(p->conn, sql, n, params, &h);
    if (rc != MOLT_DB_OK) {
        r->status = rc;
        return r;
    }
    return pgt_wait_(p, r);
}

/* Simple protocol; the last result set is kept. */
static inline pgt_result *pgt_simple(pgt_conn *p, const char *sql)
{
    pgt_result *r = calloc(1, sizeof *r);
    ASSERT(r != NULL);
    molt_db_result_handler h = pgt_handler_(r);
    int rc = molt_db_conn_simple_query(p->conn, sql, &h);
    if (rc != MOLT_DB_OK) {
        r->status = rc;
        return r;
    }
    return pgt_wait_(p, r);
}

/* Runs SQL with the simple protocol and asserts it succeeded. */
static inline void pgt_exec_ok(pgt_conn *p, const char *sql)
{
    pgt_result *r = pgt_simple(p, sql);
    ASSERT_OK(r->status, &r->err);
    pgt_result_free(r);
}

/* The text of cell (row, col) of a text-format result, or NULL. */
static inline const char *pgt_text(const pgt_result *r, size_t row, size_t col)
{
    ASSERT(row < r->nrows && col < r->ncols);
    return (const char *)r->data[row * r->ncols + col];
}

#endif
