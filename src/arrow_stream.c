/* ArrowArrayStream over a query: a pull interface over the push-based
 * reader. The stream owns its connection on a driven loop of its own, which
 * get_next turns until the next batch is there: the caller's loop (if any)
 * is never run by the library. */
#include "arrow_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/loop_driven.h"

typedef struct stream_state {
    molt_db_loop *loop;        /* private, driven */
    molt_db_conn *conn;        /* NULL once closed */
    int connected;             /* connect callback ran */
    molt_db_arrow_reader *reader;
    struct ArrowArray *queue;  /* FIFO of owned batches */
    size_t head, count, cap;
    int done;
    int status;
    int abandon;               /* released early: fail the rest */
    molt_db_error err;
    char last_error[MOLT_DB_ERROR_MESSAGE_SIZE];
} stream_state;

static int st_on_batch(void *ud, struct ArrowArray *batch)
{
    stream_state *s = ud;
    if (s->abandon) {
        batch->release(batch);
        return MOLT_DB_ECANCELED;
    }
    if (s->head + s->count == s->cap) {
        if (s->head > 0) { /* slide to the front before growing */
            memmove(s->queue, s->queue + s->head, s->count * sizeof *s->queue);
            s->head = 0;
        }
        if (s->count == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 4;
            struct ArrowArray *q = realloc(s->queue, cap * sizeof *q);
            if (q == NULL) {
                batch->release(batch);
                return MOLT_DB_ENOMEM;
            }
            s->queue = q;
            s->cap = cap;
        }
    }
    s->queue[s->head + s->count++] = *batch; /* move */
    batch->release = NULL;
    return MOLT_DB_OK;
}

/* Nothing to do with it, but asking for it makes the reader take the
 * schema (and so fix array dimensions) when the first batch is cut, not
 * later when get_schema runs and more rows may have come. */
static int st_on_schema(void *ud, struct ArrowSchema *schema)
{
    (void)ud;
    (void)schema;
    return MOLT_DB_OK;
}

static void st_on_done(void *ud, int status, const molt_db_error *err)
{
    stream_state *s = ud;
    s->done = 1;
    s->status = status;
    if (status != MOLT_DB_OK) {
        if (err != NULL)
            molt_db_error_copy(&s->err, err);
        else
            molt_db_error_set(&s->err, status, "query failed (%s)",
                              molt_db_code_name(status));
    }
}

/* One turn of the private loop; the request ends with the connection, so
 * something is always left to wait for until it is done. */
static void pump(stream_state *s)
{
    int rc = molt_db_loop_driven_run(s->loop, -1);
    if (rc < 0 && !s->done) {
        s->done = 1;
        s->status = MOLT_DB_EIO;
        molt_db_error_set(&s->err, MOLT_DB_EIO, "arrow stream: epoll_wait "
                          "failed (%s)", strerror(-rc));
    }
}

static int to_errno(int code)
{
    switch (code) {
    case MOLT_DB_ENOMEM: return ENOMEM;
    case MOLT_DB_EINVAL: return EINVAL;
    default: return EIO;
    }
}

static int st_fail(stream_state *s)
{
    memcpy(s->last_error, s->err.message, sizeof s->last_error);
    return to_errno(s->status);
}

static int st_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out)
{
    stream_state *s = st->private_data;
    out->release = NULL;
    /* wait for the first batch, so that array dimensions are known */
    while (!s->done && s->count == 0)
        pump(s);
    molt_db_arrow_builder *b = molt_db_arrow_reader_builder(s->reader);
    if (b == NULL) {
        if (s->status != MOLT_DB_OK)
            return st_fail(s);
        snprintf(s->last_error, sizeof s->last_error,
                 "the statement returns no rows");
        return EINVAL;
    }
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = molt_db_arrow_builder_schema(b, out, &e);
    if (rc != MOLT_DB_OK) {
        memcpy(s->last_error, e.message, sizeof s->last_error);
        molt_db_error_clear(&e);
        return ENOMEM;
    }
    return 0;
}

static int st_get_next(struct ArrowArrayStream *st, struct ArrowArray *out)
{
    stream_state *s = st->private_data;
    out->release = NULL;
    while (s->count == 0 && !s->done)
        pump(s);
    if (s->count > 0) {
        *out = s->queue[s->head++];
        s->count--;
        if (s->count == 0)
            s->head = 0;
        return 0;
    }
    if (s->status != MOLT_DB_OK)
        return st_fail(s);
    return 0; /* end of stream: out->release is NULL */
}

static const char *st_get_last_error(struct ArrowArrayStream *st)
{
    stream_state *s = st->private_data;
    return s->last_error[0] ? s->last_error : NULL;
}

static void on_conn_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    stream_state *s = ud;
    s->conn = NULL;
}

/* Closes the connection (a request still running completes with ECLOSED),
 * turns the loop until it is gone, frees the loop and the state. */
static void st_free(stream_state *s)
{
    if (s->conn != NULL) {
        molt_db_conn_close(s->conn, on_conn_closed, s);
        while (s->conn != NULL)
            molt_db_loop_driven_run(s->loop, -1);
    }
    molt_db_loop_free(s->loop);
    for (size_t i = 0; i < s->count; i++) {
        struct ArrowArray *a = &s->queue[s->head + i];
        if (a->release)
            a->release(a);
    }
    free(s->queue);
    molt_db_arrow_reader_free(s->reader);
    molt_db_error_clear(&s->err);
    free(s);
}

static void st_release(struct ArrowArrayStream *st)
{
    if (st == NULL || st->release == NULL)
        return;
    stream_state *s = st->private_data;
    /* the next batch is refused: the connection skips the rest and is
     * closed right after */
    s->abandon = 1;
    st_free(s);
    st->release = NULL;
}

static void on_connect(molt_db_conn *c, int status, const molt_db_error *err,
                       void *ud)
{
    (void)c;
    stream_state *s = ud;
    s->connected = 1;
    if (status != MOLT_DB_OK) {
        s->conn = NULL; /* the library frees a connection that failed */
        s->status = status;
        if (err != NULL)
            molt_db_error_copy(&s->err, err);
    }
}

int molt_db_arrow_stream_open(const molt_db_conninfo *ci, const char *sql,
                              size_t nparams, const molt_db_param *params,
                              size_t batch_rows, struct ArrowArrayStream *out,
                              molt_db_error *err)
{
    memset(out, 0, sizeof *out);
    if (ci == NULL || sql == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow stream: ci and sql are required");
    stream_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    molt_db_error_init(&s->err);
    molt_db_arrow_reader_options o;
    memset(&o, 0, sizeof o);
    o.batch_rows = batch_rows;
    o.on_schema = st_on_schema;
    o.on_batch = st_on_batch;
    o.on_done = st_on_done;
    o.ud = s;
    int rc = molt_db_loop_driven_new(&s->loop, err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_arrow_reader_new(&o, &s->reader, err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_conn_connect(s->loop, ci, NULL, on_connect, s, &s->conn,
                                  err);
    if (rc != MOLT_DB_OK) {
        st_free(s);
        return rc;
    }
    while (!s->connected)
        pump(s);
    if (s->conn == NULL) {
        rc = s->status != MOLT_DB_OK ? s->status : MOLT_DB_ECONNECT;
        if (err != NULL)
            molt_db_error_copy(err, &s->err);
        st_free(s);
        return rc;
    }
    molt_db_result_handler h = molt_db_arrow_reader_handler(s->reader);
    rc = molt_db_conn_query(s->conn, sql, nparams, params, &h);
    if (rc != MOLT_DB_OK) {
        st_free(s);
        return molt_db_error_set(err, rc, "arrow stream: could not start the "
                                 "query (%s)", molt_db_code_name(rc));
    }
    out->get_schema = st_get_schema;
    out->get_next = st_get_next;
    out->get_last_error = st_get_last_error;
    out->release = st_release;
    out->private_data = s;
    return MOLT_DB_OK;
}
