/*
 * Requests on a connection and the dispatch of their results.
 *
 * Every statement request comes through molt_db_conn_submit, whose run
 * mode (run_modes) says what it checks and writes. Each request ends with a
 * Sync, so the server answers each with its own ReadyForQuery and one
 * request's error never spoils another's. Requests are written at once when
 * the connection is ready (pipelining) and kept in a FIFO of what was sent;
 * every backend message belongs to the head of that FIFO and goes to the
 * handler its kind's routes name for it. A query (MOLT_DB_RUN_UNNAMED)
 * has two steps on the unnamed statement: Parse/Describe/Flush, then, once
 * the Describe is answered, Bind/Execute/Sync with per-column result
 * formats; nothing else is sent in between.
 *
 * A framed request (molt_db_frame) runs `before`, the statement and `after`
 * under its one Sync. When the server reports an error before that Sync's
 * ReadyForQuery it skipped `after`, which then goes as a Query of its own;
 * the request completes at that Query's ReadyForQuery. Nothing else is sent
 * behind a framed request until it completed: it would run inside the
 * failed transaction.
 *
 * Batches (molt_db_conn_execute_batched) are the exception: executions the
 * caller declared read-only share one Sync, so the server commits and
 * flushes once per batch instead of once per request. A batch collects its
 * members until the connection writes (once per loop iteration) or another
 * request comes; a batch of two or more starts with a guard statement that
 * makes its implicit transaction read only, so a write slipped in fails
 * (25006) instead of being rolled back silently with the batch. The members
 * complete together at the batch's ReadyForQuery; when one fails the server
 * skips the rest, and those complete with MOLT_DB_ESKIPPED.
 */
#include "conn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/protocol.h"

/* From the type catalog (types_catalog.c). */
int molt_db_type_binary_supported(uint32_t oid);

/* ---- statements -------------------------------------------------------- */

void molt_db_stmt_free(molt_db_stmt *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ncols; i++)
        free((char *)s->cols[i].name);
    free(s->cols);
    free(s->param_oids);
    free(s->result_formats);
    free(s->name);
    free(s);
}

static molt_db_stmt *stmt_new(const char *name)
{
    molt_db_stmt *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->name = strdup(name ? name : "");
    if (s->name == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

/* ---- request life ------------------------------------------------------ */

static void req_free(molt_db_req *r)
{
    molt_db_buf_free(&r->msgs);
    molt_db_stmt_free(r->own_stmt);
    free(r->params);
    free(r->param_data);
    if (r->frame_after != r->after_buf)
        free(r->frame_after);
    molt_db_error_clear(&r->err);
    free(r);
}

static molt_db_req *req_new(molt_db_conn *c, molt_db_req_kind kind,
                            const molt_db_result_handler *h)
{
    (void)c;
    molt_db_req *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->kind = kind;
    r->part = MOLT_DB_PART_STMT;
    if (h != NULL)
        r->h = *h;
    return r;
}

static void list_push(molt_db_req **head, molt_db_req **tail, molt_db_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

/* While a COPY FROM STDIN is in flight the server reads only copy messages,
 * so later requests wait until it completes. */
/* Sent: the request's answers come in FIFO order. */
static void fly_push(molt_db_conn *c, molt_db_req *r)
{
    list_push(&c->fly_head, &c->fly_tail, r);
    if (r->kind == MOLT_DB_REQ_COPY_IN && !r->in_fly)
        c->copy_in_inflight++; /* what follows waits for it */
    if (r->kind == MOLT_DB_REQ_QUERY && r->phase == 1)
        c->describe_inflight = 1; /* so does what follows a first step */
    if (r->framed)
        c->frame_inflight = 1; /* and what follows a framed request */
    r->in_fly = 1;
}

/* Nothing may go on the wire behind a COPY FROM STDIN, a query's first
 * step or a framed request until they are through: a request behind a
 * framed one that failed would run inside its failed transaction. */
static int held(const molt_db_conn *c)
{
    return c->copy_in_inflight > 0 || c->describe_inflight || c->frame_inflight;
}

static int can_send_now(const molt_db_conn *c)
{
    return c->state == MOLT_DB_CONN_READY && c->wait_head == NULL &&
           !c->close_requested && !held(c);
}

static int check_usable(const molt_db_conn *c)
{
    if (c->close_requested || c->state == MOLT_DB_CONN_CLOSING)
        return MOLT_DB_ECLOSED;
    if (c->state == MOLT_DB_CONN_BROKEN)
        return MOLT_DB_ECLOSED;
    return MOLT_DB_OK;
}

/* Where a new request's messages go: straight into the send buffer when the
 * connection is ready, else into the request until it is. */
static molt_db_buf *target_buf(molt_db_conn *c, molt_db_req *r)
{
    if (!can_send_now(c))
        return &r->msgs;
    molt_db__conn_close_batch(c); /* nothing joins a batch after its Sync */
    return can_send_now(c) ? &c->out : &r->msgs;
}

/* The messages were encoded into target: account for the request and, when
 * they went into the send buffer, write them. */
static void submit(molt_db_conn *c, molt_db_req *r, molt_db_buf *target)
{
    c->npending++;
    if (target == &c->out) {
        fly_push(c, r);
        molt_db__conn_flush(c);
    } else {
        list_push(&c->wait_head, &c->wait_tail, r);
    }
}

/* The request's messages were encoded into out from mark on: on failure
 * they are dropped with the request, else the request is submitted. */
static int submit_or_drop(molt_db_conn *c, molt_db_req *r, molt_db_buf *out,
                          size_t mark, int rc)
{
    if (rc != MOLT_DB_OK) {
        out->len = mark;
        out->failed = 0;
        req_free(r);
        return rc;
    }
    submit(c, r, out);
    return MOLT_DB_OK;
}

void molt_db__conn_send_waiting(molt_db_conn *c)
{
    molt_db__conn_close_batch(c); /* what waited goes after it */
    while (c->wait_head != NULL && !held(c)) {
        molt_db_req *r = c->wait_head;
        c->wait_head = r->next;
        if (c->wait_head == NULL)
            c->wait_tail = NULL;
        molt_db_buf_put(&c->out, r->msgs.data, r->msgs.len);
        molt_db_buf_free(&r->msgs);
        fly_push(c, r);
    }
    if (molt_db_buf_ok(&c->out) != MOLT_DB_OK) {
        molt_db_error e;
        molt_db_error_init(&e);
        molt_db_error_set(&e, MOLT_DB_ENOMEM, "out of memory queueing requests");
        molt_db__conn_fail(c, MOLT_DB_ENOMEM, &e);
        return;
    }
    molt_db__conn_flush(c);
}

static void complete(molt_db_conn *c, molt_db_req *r)
{
    if (r->kind == MOLT_DB_REQ_BATCH_GUARD || r->kind == MOLT_DB_REQ_BATCH_SYNC) {
        req_free(r); /* the connection's own, not a caller's request */
        return;
    }
    c->npending--;
    if (r->kind == MOLT_DB_REQ_QUERY && r->phase == 1 && r->in_fly)
        c->describe_inflight = 0; /* failed with the connection */
    if (r->framed && r->in_fly)
        c->frame_inflight = 0;
    const molt_db_error *err = r->status == MOLT_DB_OK ? NULL : &r->err;
    if (r->kind == MOLT_DB_REQ_COPY_IN) {
        if (c->copy_in_req == r)
            c->copy_in_req = NULL;
        if (r->in_fly && c->copy_in_inflight > 0)
            c->copy_in_inflight--;
        if (r->copy_in.on_done)
            r->copy_in.on_done(r->copy_in.ud, r->status, err, r->copy_rows);
        req_free(r);
        return;
    }
    if (r->kind == MOLT_DB_REQ_COPY_OUT) {
        if (r->copy_out.on_done)
            r->copy_out.on_done(r->copy_out.ud, r->status, err, r->copy_rows);
        req_free(r);
        return;
    }
    if (r->kind == MOLT_DB_REQ_PREPARE) {
        molt_db_stmt *s = NULL;
        if (r->status == MOLT_DB_OK) {
            s = r->own_stmt;
            r->own_stmt = NULL;
        }
        if (r->prepare_cb)
            r->prepare_cb(r->prepare_ud, r->status, s,
                          r->status == MOLT_DB_OK ? NULL : &r->err);
        else
            molt_db_stmt_free(s);
    } else if (r->h.on_done) {
        r->h.on_done(r->h.ud, r->status,
                     r->status == MOLT_DB_OK ? NULL : &r->err);
    }
    req_free(r);
}

void molt_db__conn_fail_requests(molt_db_conn *c, int code,
                                 const molt_db_error *err)
{
    /* Detach the lists first: callbacks may add requests (which then fail
     * with ECLOSED at once) or close the connection. Batch members already
     * answered keep their own outcome: they ran to their CommandComplete. */
    molt_db_req *done = c->done_head;
    molt_db_req *lists[3] = {c->fly_head, c->batch_head, c->wait_head};
    molt_db_req *extra[2] = {c->batch_guard, c->batch_sync};
    c->done_head = c->done_tail = NULL;
    c->fly_head = c->fly_tail = c->wait_head = c->wait_tail = NULL;
    c->batch_head = c->batch_tail = c->batch_guard = c->batch_sync = NULL;
    c->batch_n = 0;
    c->batch_buf.len = 0;
    c->copy_in_req = NULL;
    for (int i = 0; i < 2; i++)
        if (extra[i] != NULL)
            req_free(extra[i]);
    while (done != NULL) {
        molt_db_req *next = done->next;
        complete(c, done);
        done = next;
    }
    for (int i = 0; i < 3; i++) {
        molt_db_req *r = lists[i];
        while (r != NULL) {
            molt_db_req *next = r->next;
            if (r->status == MOLT_DB_OK) {
                r->status = code;
                if (err != NULL)
                    molt_db_error_copy(&r->err, err);
                else
                    molt_db_error_set(&r->err, code, "connection failed");
            }
            complete(c, r);
            r = next;
        }
    }
}

/* ---- encoding ---------------------------------------------------------- */

/* Bind with the parameters' formats and values, and result formats
 * (collapsed to one code when all columns agree). */
static int write_bind(molt_db_buf *out, const char *stmt, size_t nparams,
                      const molt_db_param *params, size_t ncols,
                      const int16_t *result_formats)
{
    int16_t fmt_stack[16] = {0};
    const uint8_t *val_stack[16] = {0};
    int32_t len_stack[16] = {0};
    int16_t *fmts = fmt_stack;
    const uint8_t **vals = val_stack;
    int32_t *lens = len_stack;
    if (nparams > 16) {
        fmts = malloc(nparams * sizeof *fmts);
        vals = malloc(nparams * sizeof *vals);
        lens = malloc(nparams * sizeof *lens);
    }
    int rc = MOLT_DB_ENOMEM;
    if (fmts != NULL && vals != NULL && lens != NULL) {
        for (size_t i = 0; i < nparams; i++) {
            fmts[i] = params[i].format;
            vals[i] = params[i].data;
            lens[i] = params[i].len < 0 ? -1 : params[i].len;
        }
        size_t nres = ncols;
        if (ncols > 0) {
            size_t same = 1;
            for (size_t i = 1; i < ncols; i++)
                same &= result_formats[i] == result_formats[0];
            if (same)
                nres = 1;
        }
        rc = molt_db_proto_write_bind(out, "", stmt, nparams, fmts, vals, lens,
                                      nres, result_formats);
    }
    if (nparams > 16) {
        free(fmts);
        free(vals);
        free(lens);
    }
    return rc;
}

static int check_params(size_t nparams, const molt_db_param *params)
{
    if (nparams > 0 && params == NULL)
        return MOLT_DB_EINVAL;
    for (size_t i = 0; i < nparams; i++) {
        if (params[i].len >= 0 && params[i].data == NULL && params[i].len > 0)
            return MOLT_DB_EINVAL;
        if (params[i].format != MOLT_DB_FORMAT_TEXT &&
            params[i].format != MOLT_DB_FORMAT_BINARY)
            return MOLT_DB_EINVAL;
    }
    return MOLT_DB_OK;
}

/* ---- public requests --------------------------------------------------- */

int molt_db_conn_prepare(molt_db_conn *c, const char *name, const char *sql,
                         size_t nparams, const uint32_t *param_oids,
                         molt_db_prepare_cb cb, void *ud)
{
    int rc = check_usable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    if (sql == NULL || (nparams > 0 && param_oids == NULL))
        return MOLT_DB_EINVAL;
    molt_db_req *r = req_new(c, MOLT_DB_REQ_PREPARE, NULL);
    if (r == NULL || (r->own_stmt = stmt_new(name)) == NULL) {
        if (r)
            req_free(r);
        return MOLT_DB_ENOMEM;
    }
    r->prepare_cb = cb;
    r->prepare_ud = ud;
    molt_db_buf *out = target_buf(c, r);
    size_t mark = out->len;
    rc = molt_db_proto_write_parse(out, r->own_stmt->name, sql, nparams, param_oids);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_describe(out, 'S', r->own_stmt->name);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_sync(out);
    return submit_or_drop(c, r, out, mark, rc);
}

static int frame_ok(const molt_db_frame *f)
{
    return f == NULL || (f->before != NULL && f->after != NULL);
}

/* Parse/Bind/Execute of sql (no parameters) through the unnamed statement
 * and portal: how a frame's statements go. */
static int write_unnamed_run(molt_db_buf *out, const char *sql)
{
    int rc = molt_db_proto_write_parse(out, "", sql, 0, NULL);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_bind(out, "", "", 0, NULL, NULL, NULL, 0, NULL);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_execute(out, "", 0);
    return rc;
}

/* A frame's first half (frame may be NULL: none): `after` is kept in the
 * request (for the error path, and a query's second step), and `before`
 * runs ahead of the statement under the statement's Sync, so the server
 * skips the statement when before fails. */
static int write_frame_before(molt_db_buf *out, molt_db_req *r,
                              const molt_db_frame *frame)
{
    r->framed = frame != NULL;
    r->part = r->framed ? MOLT_DB_PART_BEFORE : MOLT_DB_PART_STMT;
    if (!r->framed)
        return MOLT_DB_OK;
    size_t n = strlen(frame->after) + 1;
    r->frame_after = n <= sizeof r->after_buf ? r->after_buf : malloc(n);
    if (r->frame_after == NULL)
        return MOLT_DB_ENOMEM;
    memcpy(r->frame_after, frame->after, n);
    return write_unnamed_run(out, frame->before);
}

/* The frame's `after` (unless the server already skips to the Sync for an
 * error), then the statement's Sync: one ReadyForQuery when all went well.
 * After an error the server skips `after`: it goes alone at the
 * ReadyForQuery (send_after_alone). */
static int write_frame_after(molt_db_buf *out, const molt_db_req *r, int rc)
{
    if (rc == MOLT_DB_OK && r->framed && !r->frame_failed)
        rc = write_unnamed_run(out, r->frame_after);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_sync(out);
    return rc;
}

/* Bind + Execute of the prepared statement s, in frame (or NULL). */
static int write_exec(molt_db_buf *out, molt_db_req *r, const molt_db_stmt *s,
                      size_t nparams, const molt_db_param *params,
                      const molt_db_frame *frame)
{
    int rc = write_frame_before(out, r, frame);
    if (rc == MOLT_DB_OK)
        rc = write_bind(out, s->name, nparams, params, s->ncols,
                        s->result_formats);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_execute(out, "", 0);
    return write_frame_after(out, r, rc);
}

static int valid_prepared(const molt_db_request *q)
{
    return q->stmt != NULL && q->nparams == q->stmt->nparams;
}

static int setup_prepared(molt_db_req *r, const molt_db_request *q)
{
    r->stmt = q->stmt;
    return MOLT_DB_OK;
}

static int write_prepared(molt_db_buf *out, molt_db_req *r,
                          const molt_db_request *q)
{
    return write_exec(out, r, q->stmt, q->nparams, q->params, q->frame);
}

/* ---- read-only batches ------------------------------------------------- */

#define GUARD_NAME "molt_batch_ro"
#define GUARD_SQL "SELECT set_config('transaction_read_only', 'on', true)"
/* Parse + Bind + Execute of the guard and the Sync, with room to spare. */
#define BATCH_TAIL_BYTES 256

static int submit_one(molt_db_conn *c, const molt_db_request *q,
                      const molt_db_result_handler *h);

static int valid_batched(const molt_db_request *q)
{
    return valid_prepared(q) && q->frame == NULL;
}

/* Whether an execution can join a batch now (else it goes alone). */
static int batchable(const molt_db_conn *c, const molt_db_request *q)
{
    return can_send_now(c) && !c->batch_off && q->stmt->ncols > 0;
}

/* An execution joins the batch being collected (checked by submit). */
static int submit_batched(molt_db_conn *c, const molt_db_request *q,
                          const molt_db_result_handler *h)
{
    const molt_db_stmt *stmt = q->stmt;
    /* The Sync joins at the first member, the guard at the second; kept
     * for the next member when this one fails. */
    if (c->batch_sync == NULL &&
        (c->batch_sync = req_new(c, MOLT_DB_REQ_BATCH_SYNC, NULL)) == NULL)
        return submit_one(c, q, h);
    if (c->batch_n >= 1 && c->batch_guard == NULL &&
        (c->batch_guard = req_new(c, MOLT_DB_REQ_BATCH_GUARD, NULL)) == NULL)
        return submit_one(c, q, h);
    molt_db_req *r = req_new(c, MOLT_DB_REQ_EXECUTE, h);
    if (r == NULL)
        return MOLT_DB_ENOMEM;
    r->stmt = stmt;
    r->batched = 1;
    size_t mark = c->batch_buf.len;
    int rc = write_bind(&c->batch_buf, stmt->name, q->nparams, q->params,
                        stmt->ncols, stmt->result_formats);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_execute(&c->batch_buf, "", 0);
    /* Closing the batch must not need memory it might not get. */
    if (rc == MOLT_DB_OK)
        rc = molt_db_buf_reserve(&c->out, c->batch_buf.len + BATCH_TAIL_BYTES);
    if (rc != MOLT_DB_OK) {
        c->batch_buf.len = mark;
        c->batch_buf.failed = 0;
        c->out.failed = 0;
        req_free(r);
        return rc;
    }
    list_push(&c->batch_head, &c->batch_tail, r);
    c->batch_n++;
    c->npending++;
    molt_db__conn_flush(c);
    return MOLT_DB_OK;
}

void molt_db__conn_close_batch(molt_db_conn *c)
{
    if (c->batch_n == 0)
        return;
    molt_db_buf *out = &c->out;
    if (c->batch_guard != NULL) {
        if (!c->guard_parsed)
            molt_db_proto_write_parse(out, GUARD_NAME, GUARD_SQL, 0, NULL);
        c->guard_parsed = 1;
        molt_db_proto_write_bind(out, "", GUARD_NAME, 0, NULL, NULL, NULL, 0,
                                 NULL);
        molt_db_proto_write_execute(out, "", 0);
        fly_push(c, c->batch_guard);
    }
    molt_db_buf_put(out, c->batch_buf.data, c->batch_buf.len);
    molt_db_proto_write_sync(out);
    c->batch_buf.len = 0;
    while (c->batch_head != NULL) {
        molt_db_req *m = c->batch_head;
        c->batch_head = m->next;
        fly_push(c, m);
    }
    fly_push(c, c->batch_sync);
    c->batch_tail = c->batch_guard = c->batch_sync = NULL;
    c->batch_n = 0;
    if (molt_db_buf_ok(out) != MOLT_DB_OK) { /* not expected: room reserved */
        molt_db_error e;
        molt_db_error_init(&e);
        molt_db_error_set(&e, MOLT_DB_ENOMEM, "out of memory closing a batch");
        molt_db__conn_fail(c, MOLT_DB_ENOMEM, &e);
    }
}

/* Copies the parameters into the request for the query's second step. */
static int keep_params(molt_db_req *r, size_t n, const molt_db_param *params)
{
    if (n == 0)
        return MOLT_DB_OK;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (params[i].len > 0)
            total += (size_t)params[i].len;
    r->params = malloc(n * sizeof *r->params);
    r->param_data = malloc(total ? total : 1);
    if (r->params == NULL || r->param_data == NULL)
        return MOLT_DB_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        r->params[i] = params[i];
        if (params[i].len > 0) {
            memcpy(r->param_data + off, params[i].data, (size_t)params[i].len);
            r->params[i].data = r->param_data + off;
            off += (size_t)params[i].len;
        } else {
            r->params[i].data = r->param_data; /* non-NULL for empty values */
        }
    }
    r->nparams = n;
    return MOLT_DB_OK;
}

static int valid_unnamed(const molt_db_request *q)
{
    return q->sql != NULL && q->nparams <= 65535;
}

/* Parse of sql as stmt, typed by the parameters' OIDs. */
static int write_parse_params(molt_db_buf *out, const char *stmt,
                              const char *sql, size_t nparams,
                              const molt_db_param *params)
{
    uint32_t oid_stack[16] = {0};
    uint32_t *oids = nparams > 16 ? malloc(nparams * sizeof *oids) : oid_stack;
    if (oids == NULL)
        return MOLT_DB_ENOMEM;
    for (size_t i = 0; i < nparams; i++)
        oids[i] = params[i].oid;
    int rc = molt_db_proto_write_parse(out, stmt, sql, nparams, oids);
    if (oids != oid_stack)
        free(oids);
    return rc;
}

/* The frame's `before` (frame may be NULL), then the Parse of sql as the
 * unnamed statement, with the parameters' types. */
static int write_unnamed_parse(molt_db_buf *out, molt_db_req *r,
                               const molt_db_frame *frame, const char *sql,
                               size_t nparams, const molt_db_param *params)
{
    int rc = write_frame_before(out, r, frame);
    if (rc == MOLT_DB_OK)
        rc = write_parse_params(out, "", sql, nparams, params);
    return rc;
}

static int setup_unnamed(molt_db_req *r, const molt_db_request *q)
{
    r->phase = 1;
    r->own_stmt = stmt_new("");
    if (r->own_stmt == NULL || keep_params(r, q->nparams, q->params) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    return MOLT_DB_OK;
}

/* The first step: the frame's `before` (executed: so it runs ahead of the
 * statement, and a failure skips the rest), Parse and Describe of the
 * unnamed statement, then Flush, not Sync: the implicit transaction stays
 * open until the second step's Sync, so behind PgBouncer in transaction
 * mode both steps reach the same server connection, and the unnamed
 * statement is never left for another client. The connection sends nothing
 * else until the second step (describe_inflight). */
static int write_unnamed(molt_db_buf *out, molt_db_req *r,
                         const molt_db_request *q)
{
    int rc = write_unnamed_parse(out, r, q->frame, q->sql, q->nparams, q->params);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_describe(out, 'S', "");
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_flush(out);
    return rc;
}

/* Parse/Bind/Describe portal/Execute/Sync, routed as the simple protocol
 * is: RowDescription, then rows. */
static int write_unnamed_text(molt_db_buf *out, molt_db_req *r,
                              const molt_db_request *q)
{
    int rc = write_unnamed_parse(out, r, q->frame, q->sql, q->nparams, q->params);
    if (rc == MOLT_DB_OK)
        rc = write_bind(out, "", q->nparams, q->params, 0, NULL);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_describe(out, 'P', "");
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_execute(out, "", 0);
    return write_frame_after(out, r, rc);
}

static int valid_simple(const molt_db_request *q)
{
    return q->sql != NULL && q->nparams == 0 && q->frame == NULL;
}

static int write_simple(molt_db_buf *out, molt_db_req *r, const molt_db_request *q)
{
    (void)r;
    return molt_db_proto_write_query(out, q->sql);
}

/* ---- one submit for every mode -------------------------------------------- */

/* What a mode checks, sets up in its request and writes. */
typedef struct run_mode {
    molt_db_req_kind kind;
    int (*valid)(const molt_db_request *q);
    int (*setup)(molt_db_req *r, const molt_db_request *q); /* or NULL */
    int (*write)(molt_db_buf *out, molt_db_req *r, const molt_db_request *q);
} run_mode;

static const run_mode run_modes[] = {
    [MOLT_DB_RUN_PREPARED] = {MOLT_DB_REQ_EXECUTE, valid_prepared, setup_prepared,
                              write_prepared},
    /* (when it cannot join a batch, see submit_batched) */
    [MOLT_DB_RUN_PREPARED_BATCHED] = {MOLT_DB_REQ_EXECUTE, valid_batched,
                                      setup_prepared, write_prepared},
    [MOLT_DB_RUN_UNNAMED] = {MOLT_DB_REQ_QUERY, valid_unnamed, setup_unnamed,
                             write_unnamed},
    [MOLT_DB_RUN_UNNAMED_TEXT] = {MOLT_DB_REQ_SIMPLE, valid_unnamed, NULL,
                                  write_unnamed_text},
    [MOLT_DB_RUN_SIMPLE] = {MOLT_DB_REQ_SIMPLE, valid_simple, NULL, write_simple},
};

static const run_mode *mode_of(const molt_db_request *q)
{
    if (q->mode < MOLT_DB_RUN_PREPARED || q->mode > MOLT_DB_RUN_SIMPLE)
        return NULL;
    return &run_modes[q->mode];
}

/* A request of its own (checked by molt_db_conn_submit). */
static int submit_one(molt_db_conn *c, const molt_db_request *q,
                      const molt_db_result_handler *h)
{
    const run_mode *m = mode_of(q);
    molt_db_req *r = req_new(c, m->kind, h);
    if (r == NULL)
        return MOLT_DB_ENOMEM;
    if (m->setup != NULL && m->setup(r, q) != MOLT_DB_OK) {
        req_free(r);
        return MOLT_DB_ENOMEM;
    }
    molt_db_buf *out = target_buf(c, r);
    size_t mark = out->len;
    int rc = m->write(out, r, q);
    return submit_or_drop(c, r, out, mark, rc);
}

int molt_db_conn_submit(molt_db_conn *c, const molt_db_request *q,
                        const molt_db_result_handler *h)
{
    int rc = check_usable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    const run_mode *m = q != NULL ? mode_of(q) : NULL;
    if (m == NULL || h == NULL || check_params(q->nparams, q->params) != MOLT_DB_OK ||
        !frame_ok(q->frame) || !m->valid(q))
        return MOLT_DB_EINVAL;
    if (q->mode == MOLT_DB_RUN_PREPARED_BATCHED && batchable(c, q))
        return submit_batched(c, q, h);
    return submit_one(c, q, h);
}

/* ---- the shorthands ---- */

int molt_db_conn_execute(molt_db_conn *c, const molt_db_stmt *stmt,
                         size_t nparams, const molt_db_param *params,
                         const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_PREPARED, NULL, stmt, nparams, params, NULL};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_execute_framed(molt_db_conn *c, const molt_db_stmt *stmt,
                                size_t nparams, const molt_db_param *params,
                                const molt_db_frame *frame,
                                const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_PREPARED, NULL, stmt, nparams, params, frame};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_execute_batched(molt_db_conn *c, const molt_db_stmt *stmt,
                                 size_t nparams, const molt_db_param *params,
                                 const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_PREPARED_BATCHED, NULL, stmt, nparams,
                         params, NULL};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_query(molt_db_conn *c, const char *sql, size_t nparams,
                       const molt_db_param *params,
                       const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_UNNAMED, sql, NULL, nparams, params, NULL};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_query_framed(molt_db_conn *c, const char *sql, size_t nparams,
                              const molt_db_param *params,
                              const molt_db_frame *frame,
                              const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_UNNAMED, sql, NULL, nparams, params, frame};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_query_text(molt_db_conn *c, const char *sql, size_t nparams,
                            const molt_db_param *params,
                            const molt_db_frame *frame,
                            const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_UNNAMED_TEXT, sql, NULL, nparams, params,
                         frame};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_simple_query(molt_db_conn *c, const char *sql,
                              const molt_db_result_handler *h)
{
    molt_db_request q = {MOLT_DB_RUN_SIMPLE, sql, NULL, 0, NULL, NULL};
    return molt_db_conn_submit(c, &q, h);
}

int molt_db_conn_close_stmt(molt_db_conn *c, const char *name,
                            const molt_db_result_handler *h)
{
    int rc = check_usable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    if (name == NULL)
        return MOLT_DB_EINVAL;
    molt_db_req *r = req_new(c, MOLT_DB_REQ_CLOSE_STMT, h);
    if (r == NULL)
        return MOLT_DB_ENOMEM;
    molt_db_buf *out = target_buf(c, r);
    size_t mark = out->len;
    rc = molt_db_proto_write_close(out, 'S', name);
    if (rc == MOLT_DB_OK)
        rc = molt_db_proto_write_sync(out);
    return submit_or_drop(c, r, out, mark, rc);
}

/* ---- COPY -------------------------------------------------------------- */


/* A request that is one simple-protocol Query message (COPY). */
static int submit_query_message(molt_db_conn *c, molt_db_req *r, const char *sql)
{
    molt_db_buf *out = target_buf(c, r);
    size_t mark = out->len;
    int rc = molt_db_proto_write_query(out, sql);
    return submit_or_drop(c, r, out, mark, rc);
}

int molt_db_conn_copy_out(molt_db_conn *c, const char *sql,
                          const molt_db_copy_out_handler *h)
{
    int rc = check_usable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    if (sql == NULL || h == NULL)
        return MOLT_DB_EINVAL;
    molt_db_req *r = req_new(c, MOLT_DB_REQ_COPY_OUT, NULL);
    if (r == NULL)
        return MOLT_DB_ENOMEM;
    r->copy_out = *h;
    return submit_query_message(c, r, sql);
}

int molt_db_conn_copy_in(molt_db_conn *c, const char *sql,
                         const molt_db_copy_in_handler *h)
{
    int rc = check_usable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    if (sql == NULL || h == NULL)
        return MOLT_DB_EINVAL;
    molt_db_req *r = req_new(c, MOLT_DB_REQ_COPY_IN, NULL);
    if (r == NULL)
        return MOLT_DB_ENOMEM;
    r->copy_in = *h;
    return submit_query_message(c, r, sql);
}

static int copy_writable(const molt_db_conn *c)
{
    if (check_usable(c) != MOLT_DB_OK)
        return MOLT_DB_ECLOSED;
    if (c->copy_in_req == NULL || c->copy_in_req->copy_ended)
        return MOLT_DB_ESTATE;
    return MOLT_DB_OK;
}

/* Writes what copy calls queued; asks for on_drain when bytes remain. */
static int copy_flush(molt_db_conn *c, int rc)
{
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db__conn_flush(c);
    if (c->out.len > c->out_off)
        c->copy_want_drain = 1;
    return MOLT_DB_OK;
}

int molt_db_conn_copy_data(molt_db_conn *c, const uint8_t *data, size_t len)
{
    int rc = copy_writable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    if (len > 0 && data == NULL)
        return MOLT_DB_EINVAL;
    size_t mark = c->out.len;
    rc = molt_db_proto_write_copy_data(&c->out, data, len);
    if (rc != MOLT_DB_OK) {
        c->out.len = mark;
        c->out.failed = 0;
    }
    return copy_flush(c, rc);
}

int molt_db_conn_copy_end(molt_db_conn *c)
{
    int rc = copy_writable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    rc = molt_db_proto_write_copy_done(&c->out);
    if (rc == MOLT_DB_OK)
        c->copy_in_req->copy_ended = 1;
    return copy_flush(c, rc);
}

int molt_db_conn_copy_fail(molt_db_conn *c, const char *reason)
{
    int rc = copy_writable(c);
    if (rc != MOLT_DB_OK)
        return rc;
    rc = molt_db_proto_write_copy_fail(&c->out, reason ? reason : "cancelled by the client");
    if (rc == MOLT_DB_OK)
        c->copy_in_req->copy_ended = 1;
    return copy_flush(c, rc);
}

size_t molt_db_conn_send_pending(const molt_db_conn *c)
{
    return c->out.len - c->out_off;
}

void molt_db__conn_copy_drained(molt_db_conn *c)
{
    if (!c->copy_want_drain || c->out.len > c->out_off)
        return;
    c->copy_want_drain = 0;
    molt_db_req *r = c->copy_in_req;
    if (r != NULL && !r->copy_ended && r->copy_in.on_drain != NULL)
        r->copy_in.on_drain(r->copy_in.ud);
}

/* ---- dispatch ---------------------------------------------------------- */

static int grow_fields(molt_db_conn *c, size_t n)
{
    if (n <= c->fields_cap)
        return MOLT_DB_OK;
    size_t cap = c->fields_cap ? c->fields_cap : 16;
    while (cap < n)
        cap *= 2;
    molt_db_field *f = realloc(c->fields, cap * sizeof *f);
    if (f == NULL)
        return MOLT_DB_ENOMEM;
    c->fields = f;
    c->fields_cap = cap;
    return MOLT_DB_OK;
}

static int grow_cols(molt_db_conn *c, size_t n)
{
    if (n <= c->cols_cap)
        return MOLT_DB_OK;
    size_t cap = c->cols_cap ? c->cols_cap : 16;
    while (cap < n)
        cap *= 2;
    molt_db_column *f = realloc(c->cols, cap * sizeof *f);
    if (f == NULL)
        return MOLT_DB_ENOMEM;
    c->cols = f;
    c->cols_cap = cap;
    return MOLT_DB_OK;
}

/* Records the first failure of a request; later messages are skipped. */
static void req_fail(molt_db_req *r, int code, const char *msg)
{
    if (r->status != MOLT_DB_OK)
        return;
    r->status = code;
    molt_db_error_set(&r->err, code, "%s", msg);
}

/* Reads a message's column count and decodes a RowDescription into the
 * connection's scratch columns. */
static int read_columns(molt_db_conn *c, const molt_db_msg *msg, size_t *n,
                        molt_db_error *err)
{
    int rc = molt_db_proto_read_count(msg, n, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (grow_cols(c, *n ? *n : 1) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    return molt_db_proto_read_row_description(msg, c->cols, c->cols_cap, n, err);
}

/* The statement being described takes the columns (names copied) and the
 * result format per column: binary where the library has a codec. */
static int describe_columns(molt_db_conn *c, molt_db_stmt *s, size_t n)
{
    s->cols = calloc(n ? n : 1, sizeof *s->cols);
    s->result_formats = calloc(n ? n : 1, sizeof *s->result_formats);
    if (s->cols == NULL || s->result_formats == NULL)
        return MOLT_DB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->cols[i] = c->cols[i];
        s->cols[i].name = strdup(c->cols[i].name);
        if (s->cols[i].name == NULL) {
            s->ncols = i;
            return MOLT_DB_ENOMEM;
        }
        s->result_formats[i] = molt_db_type_binary_supported(c->cols[i].type_oid)
                                   ? MOLT_DB_FORMAT_BINARY
                                   : MOLT_DB_FORMAT_TEXT;
        s->cols[i].format = s->result_formats[i];
    }
    s->ncols = n;
    return MOLT_DB_OK;
}

/* The statement whose rows an executing request gets: the caller's, or a
 * query's own in its second step. */
static const molt_db_stmt *exec_stmt(const molt_db_req *r)
{
    return r->kind == MOLT_DB_REQ_EXECUTE ? r->stmt : r->own_stmt;
}

/* The connection failed for want of memory for what the server waits for
 * (the bytes from mark on are dropped). */
static void fail_encoding(molt_db_conn *c, size_t mark, const char *what)
{
    c->out.len = mark;
    c->out.failed = 0;
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, MOLT_DB_ENOMEM, "out of memory encoding %s", what);
    molt_db__conn_fail(c, MOLT_DB_ENOMEM, &e);
    molt_db_error_clear(&e);
}

/* Requests held back (held()) go out once the connection is free again. */
static void send_held(molt_db_conn *c)
{
    if (c->wait_head != NULL && c->state == MOLT_DB_CONN_READY && !c->close_requested)
        molt_db__conn_send_waiting(c);
}

/* The end of a query's first step (its Describe answered, or an error the
 * server now skips to a Sync for): the second step goes out at once, ahead
 * of whatever waited. Bind/Execute of the unnamed statement with the
 * result formats the Describe allows, the frame's `after`, then Sync;
 * after a server error only the Sync. */
static void query_second_step(molt_db_conn *c, molt_db_req *r)
{
    molt_db_stmt *s = r->own_stmt;
    molt_db_buf *out = &c->out;
    size_t mark = out->len;
    int rc = MOLT_DB_OK;
    if (r->status == MOLT_DB_OK) {
        rc = write_bind(out, "", r->nparams, r->params, s->ncols, s->result_formats);
        if (rc == MOLT_DB_OK)
            rc = molt_db_proto_write_execute(out, "", 0);
    }
    rc = write_frame_after(out, r, rc);
    r->phase = 2;
    c->describe_inflight = 0;
    if (rc != MOLT_DB_OK) {
        fail_encoding(c, mark, "the query"); /* the server waits for a Sync */
        return;
    }
    molt_db__conn_flush(c);
    send_held(c);
}

static molt_db_req *fly_pop(molt_db_conn *c)
{
    molt_db_req *r = c->fly_head;
    c->fly_head = r->next;
    if (c->fly_head == NULL)
        c->fly_tail = NULL;
    r->next = NULL;
    return r;
}

/* A command tag of a statement that changed rows. Only writes PostgreSQL
 * allows in a read-only transaction can reach a guarded batch (to
 * temporary tables), or a batch of one (which has no guard). */
static int is_write_tag(const char *tag)
{
    static const char *const writes[] = {"INSERT ", "UPDATE ", "DELETE ",
                                         "MERGE ", "COPY "};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (strncmp(tag, writes[i], strlen(writes[i])) == 0)
            return 1;
    return 0;
}

/* A batch member's answer is complete: it waits for the batch's Sync. */
static void member_answered(molt_db_conn *c)
{
    molt_db_req *r = fly_pop(c);
    list_push(&c->done_head, &c->done_tail, r);
}

/* The guard failed: the server skips the whole batch, so the members are
 * skipped; batches stop on this connection unless the guard statement was
 * only deallocated behind our back or a CancelRequest meant for a
 * neighbour stopped it. */
static int guard_failed(molt_db_conn *c, const molt_db_msg *msg,
                        molt_db_error *err)
{
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = molt_db_proto_read_error(msg, &e, err);
    if (rc == MOLT_DB_OK && strcmp(e.sqlstate, "26000") == 0)
        c->guard_parsed = 0;
    else if (rc != MOLT_DB_OK || strcmp(e.sqlstate, "57014") != 0)
        c->batch_off = 1; /* (a cancel meant for a neighbour: no) */
    molt_db_error_clear(&e);
    return rc;
}

/* ReadyForQuery of a batch: the answered members complete in order, then
 * those the server skipped after a failure. */
static int batch_end(molt_db_conn *c)
{
    molt_db_req *sync = c->fly_head;
    while (sync != NULL && sync->batched)
        sync = sync->next;
    if (sync == NULL || sync->kind != MOLT_DB_REQ_BATCH_SYNC)
        return MOLT_DB_EPROTO;
    molt_db_req *skipped = NULL, *skipped_tail = NULL;
    while (c->fly_head != sync) {
        molt_db_req *m = fly_pop(c);
        if (m->status == MOLT_DB_OK) {
            m->status = MOLT_DB_ESKIPPED;
            molt_db_error_set(&m->err, MOLT_DB_ESKIPPED,
                              "not run: an earlier request of its batch failed");
        }
        list_push(&skipped, &skipped_tail, m);
    }
    req_free(fly_pop(c));
    molt_db_req *r = c->done_head;
    c->done_head = c->done_tail = NULL;
    /* When the batch failed its transaction was rolled back: a write that
     * came before the failure is undone and must not be reported done. */
    int failed = skipped != NULL || c->batch_aborted;
    c->batch_aborted = 0;
    for (molt_db_req *m = r; failed && m != NULL; m = m->next)
        if (m->status == MOLT_DB_OK && m->wrote) {
            m->status = MOLT_DB_ESTATE;
            molt_db_error_set(&m->err, MOLT_DB_ESTATE,
                              "rolled back: a later request of its batch failed "
                              "(a write in a request marked read-only)");
        }
    if (r != NULL) {
        molt_db_req *t = r;
        while (t->next != NULL)
            t = t->next;
        t->next = skipped; /* one list: answered, then skipped */
    } else {
        r = skipped;
    }
    /* Detached: a callback that closes the connection cannot reach them. */
    while (r != NULL) {
        molt_db_req *next = r->next;
        complete(c, r);
        r = next;
    }
    return MOLT_DB_OK;
}

/* ---- message handlers ------------------------------------------------------
 *
 * Each request kind has a table of the backend messages it expects, each
 * routed to one handler (the routes below); a message its table lacks is a
 * protocol error. Messages that may come at any time (ParameterStatus,
 * NoticeResponse, NotificationResponse) have a table of their own, which no
 * kind's table overlaps. Each table lists its most frequent message (a row)
 * first. A result callback may close the connection, which
 * completes and frees every request, r included: after a callback, a
 * handler touches r only when closed_by() says the connection is open. */

typedef int (*msg_fn)(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                      molt_db_error *err);

typedef struct msg_route {
    char type;
    msg_fn fn;
} msg_route;

static int closed_by(const molt_db_conn *c)
{
    return c->close_requested;
}

static int ignore(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                  molt_db_error *err)
{
    (void)c, (void)r, (void)msg, (void)err;
    return MOLT_DB_OK;
}

/* ---- at any time ---- */

static int on_parameter_status(molt_db_conn *c, molt_db_req *r,
                               const molt_db_msg *msg, molt_db_error *err)
{
    (void)r;
    const char *name, *value;
    int rc = molt_db_proto_read_parameter_status(msg, &name, &value, err);
    if (rc == MOLT_DB_OK)
        rc = molt_db__conn_set_param(c, name, value);
    return rc;
}

static int on_notice(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                     molt_db_error *err)
{
    (void)r;
    if (c->opts.on_notice == NULL)
        return MOLT_DB_OK;
    molt_db_error notice;
    molt_db_error_init(&notice);
    int rc = molt_db_proto_read_error(msg, &notice, err);
    if (rc == MOLT_DB_OK)
        c->opts.on_notice(c, &notice, c->opts.notice_ud);
    molt_db_error_clear(&notice);
    return rc;
}

/* NotificationResponse: to the connection's on_notification (conn_notify.c). */
static int on_notification(molt_db_conn *c, molt_db_req *r,
                           const molt_db_msg *msg, molt_db_error *err)
{
    (void)r;
    return molt_db__conn_notification(c, msg, err);
}

static const msg_route anytime_routes[] = {
    {'S', on_parameter_status},
    {'N', on_notice},
    {'A', on_notification},
    {0, NULL}};

/* ---- errors and the end of a statement ---- */

static int on_error(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                    molt_db_error *err)
{
    (void)c;
    r->frame_failed = r->framed; /* the server skips to the Sync */
    if (r->status != MOLT_DB_OK)
        return MOLT_DB_OK;
    molt_db_error_clear(&r->err);
    int rc = molt_db_proto_read_error(msg, &r->err, err);
    if (rc == MOLT_DB_OK)
        r->status = MOLT_DB_ESERVER;
    return rc;
}

/* A CommandComplete (or EmptyQueryResponse): the statement's goes to the
 * handler; a frame's own are not shown. */
static void part_done(molt_db_req *r, const char *tag)
{
    if (r->part == MOLT_DB_PART_BEFORE) {
        r->part = MOLT_DB_PART_STMT;
    } else if (r->part == MOLT_DB_PART_STMT) {
        if (r->framed)
            r->part = MOLT_DB_PART_AFTER; /* under the same Sync */
        if (r->h.on_command != NULL && r->status == MOLT_DB_OK)
            r->h.on_command(r->h.ud, tag); /* the last use of r: closed_by() */
    }
}

static int on_command_complete(molt_db_conn *c, molt_db_req *r,
                               const molt_db_msg *msg, molt_db_error *err)
{
    (void)c;
    const char *tag;
    int rc = molt_db_proto_read_command_complete(msg, &tag, err);
    if (rc == MOLT_DB_OK)
        part_done(r, tag);
    return rc;
}

static int on_empty_query(molt_db_conn *c, molt_db_req *r,
                          const molt_db_msg *msg, molt_db_error *err)
{
    (void)c, (void)msg, (void)err;
    part_done(r, "");
    return MOLT_DB_OK;
}

/* The server skipped a framed request's `after` (an error came before the
 * Sync): it goes now as a Query of its own, before anything else (held()),
 * and the request completes at its ReadyForQuery. */
static void send_after_alone(molt_db_conn *c, molt_db_req *r)
{
    r->part = MOLT_DB_PART_AFTER;
    r->after_alone = 1;
    size_t mark = c->out.len;
    if (molt_db_proto_write_query(&c->out, r->frame_after) != MOLT_DB_OK) {
        fail_encoding(c, mark, "the frame's end");
        return;
    }
    molt_db__conn_flush(c);
}

/* ReadyForQuery completes the request, unless a framed request failed and
 * its `after` still has to run. What it held back goes out. */
static int on_ready(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                    molt_db_error *err)
{
    int rc = molt_db_proto_read_ready(msg, &c->tx_status, err);
    if (rc != MOLT_DB_OK)
        return rc;
    c->readies++;
    if (r->frame_failed && !r->after_alone) {
        send_after_alone(c, r);
        return MOLT_DB_OK;
    }
    int held_back = r->framed || r->kind == MOLT_DB_REQ_COPY_IN;
    complete(c, fly_pop(c));
    if (held_back)
        send_held(c);
    return MOLT_DB_OK;
}

/* ---- rows ---- */

/* BindComplete of an execution: its columns go to the handler. */
static int on_bind_complete(molt_db_conn *c, molt_db_req *r,
                            const molt_db_msg *msg, molt_db_error *err)
{
    (void)msg, (void)err;
    const molt_db_stmt *s = exec_stmt(r);
    if (s != NULL && r->h.on_columns != NULL && r->status == MOLT_DB_OK &&
        r->part == MOLT_DB_PART_STMT) {
        int urc = r->h.on_columns(r->h.ud, s->cols, s->ncols);
        if (urc < 0 && !closed_by(c))
            req_fail(r, urc, "the result handler refused the columns");
    }
    return MOLT_DB_OK;
}

/* RowDescription of a simple query: the columns go to the handler. */
static int on_simple_columns(molt_db_conn *c, molt_db_req *r,
                             const molt_db_msg *msg, molt_db_error *err)
{
    if (r->part != MOLT_DB_PART_STMT)
        return MOLT_DB_OK; /* a frame statement's rows are not shown */
    size_t n;
    int rc = read_columns(c, msg, &n, err);
    if (rc == MOLT_DB_ENOMEM) {
        req_fail(r, rc, "out of memory");
        return MOLT_DB_OK;
    }
    if (rc != MOLT_DB_OK || r->h.on_columns == NULL || r->status != MOLT_DB_OK)
        return rc;
    int urc = r->h.on_columns(r->h.ud, c->cols, n);
    if (urc < 0 && !closed_by(c))
        req_fail(r, urc, "the result handler refused the columns");
    return MOLT_DB_OK;
}

/* RowDescription where none was asked for (no Describe was sent). */
static int unexpected_columns(molt_db_conn *c, molt_db_req *r,
                              const molt_db_msg *msg, molt_db_error *err)
{
    (void)c, (void)msg, (void)err;
    return r->part != MOLT_DB_PART_STMT ? MOLT_DB_OK : MOLT_DB_EPROTO;
}

static int on_row(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                  molt_db_error *err)
{
    if (r->status != MOLT_DB_OK || r->h.on_row == NULL ||
        r->part != MOLT_DB_PART_STMT)
        return MOLT_DB_OK;
    size_t n;
    int rc = molt_db_proto_read_count(msg, &n, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (grow_fields(c, n ? n : 1) != MOLT_DB_OK) {
        req_fail(r, MOLT_DB_ENOMEM, "out of memory");
        return MOLT_DB_OK;
    }
    rc = molt_db_proto_read_data_row(msg, c->fields, c->fields_cap, &n, err);
    if (rc != MOLT_DB_OK)
        return rc;
    int urc = r->h.on_row(r->h.ud, c->fields, n);
    if (urc < 0 && !closed_by(c))
        req_fail(r, urc, "the result handler refused a row");
    return MOLT_DB_OK;
}

/* A DataRow for a request that executes nothing. */
static int unexpected_row(molt_db_conn *c, molt_db_req *r,
                          const molt_db_msg *msg, molt_db_error *err)
{
    (void)c, (void)msg, (void)err;
    if (r->status != MOLT_DB_OK || r->h.on_row == NULL ||
        r->part != MOLT_DB_PART_STMT)
        return MOLT_DB_OK;
    return MOLT_DB_EPROTO;
}

/* ---- describing a statement (prepare, a query's first step) ---- */

static int on_parameters(molt_db_conn *c, molt_db_req *r,
                         const molt_db_msg *msg, molt_db_error *err)
{
    (void)c;
    molt_db_stmt *s = r->own_stmt;
    if (s == NULL)
        return MOLT_DB_EPROTO;
    size_t n;
    int rc = molt_db_proto_read_count(msg, &n, err);
    if (rc != MOLT_DB_OK)
        return rc;
    free(s->param_oids);
    s->param_oids = calloc(n ? n : 1, sizeof *s->param_oids);
    if (s->param_oids == NULL) {
        req_fail(r, MOLT_DB_ENOMEM, "out of memory");
        return MOLT_DB_OK;
    }
    return molt_db_proto_read_parameter_description(msg, s->param_oids, n,
                                                    &s->nparams, err);
}

static int on_describe(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                       molt_db_error *err)
{
    if (r->part != MOLT_DB_PART_STMT || r->own_stmt == NULL)
        return r->own_stmt == NULL ? MOLT_DB_EPROTO : MOLT_DB_OK;
    size_t n;
    int rc = read_columns(c, msg, &n, err);
    if (rc == MOLT_DB_ENOMEM || (rc == MOLT_DB_OK &&
                                 describe_columns(c, r->own_stmt, n) != MOLT_DB_OK)) {
        req_fail(r, MOLT_DB_ENOMEM, "out of memory");
        return MOLT_DB_OK;
    }
    return rc;
}

/* A query's first step ends with its Describe answered (RowDescription or
 * NoData) or an error the server now skips to a Sync for: the second step
 * goes out. If that fails the connection, r is gone. */
static int on_describe_then_execute(molt_db_conn *c, molt_db_req *r,
                                    const molt_db_msg *msg, molt_db_error *err)
{
    int rc = on_describe(c, r, msg, err);
    if (rc == MOLT_DB_OK && r->part == MOLT_DB_PART_STMT)
        query_second_step(c, r);
    return rc;
}

static int on_no_data_then_execute(molt_db_conn *c, molt_db_req *r,
                                   const molt_db_msg *msg, molt_db_error *err)
{
    (void)msg, (void)err;
    query_second_step(c, r);
    return MOLT_DB_OK;
}

static int on_error_then_execute(molt_db_conn *c, molt_db_req *r,
                                 const molt_db_msg *msg, molt_db_error *err)
{
    int rc = on_error(c, r, msg, err);
    query_second_step(c, r);
    return rc;
}

/* ---- COPY ---- */

static int on_copy_complete(molt_db_conn *c, molt_db_req *r,
                            const molt_db_msg *msg, molt_db_error *err)
{
    (void)c;
    const char *tag;
    int rc = molt_db_proto_read_command_complete(msg, &tag, err);
    if (rc == MOLT_DB_OK)
        molt_db_proto_tag_rows(tag, &r->copy_rows);
    return rc;
}

static int on_copy_in_start(molt_db_conn *c, molt_db_req *r,
                            const molt_db_msg *msg, molt_db_error *err)
{
    (void)msg, (void)err;
    c->copy_in_req = r;
    if (r->copy_in.on_ready)
        r->copy_in.on_ready(r->copy_in.ud);
    return MOLT_DB_OK;
}

static int on_copy_data(molt_db_conn *c, molt_db_req *r, const molt_db_msg *msg,
                        molt_db_error *err)
{
    (void)err;
    if (r->status == MOLT_DB_OK && r->copy_out.on_data != NULL) {
        int urc = r->copy_out.on_data(r->copy_out.ud, msg->body, msg->len);
        if (urc < 0 && !closed_by(c))
            req_fail(r, urc, "the COPY handler refused the data");
    }
    return MOLT_DB_OK;
}

/* CopyInResponse to a request that is no COPY IN: the COPY is failed. */
static int refuse_copy_in(molt_db_conn *c, molt_db_req *r,
                          const molt_db_msg *msg, molt_db_error *err)
{
    (void)msg, (void)err;
    req_fail(r, MOLT_DB_EINVAL, "COPY FROM STDIN needs molt_db_conn_copy_in");
    molt_db__conn_close_batch(c); /* keeps the stream in order */
    return molt_db_proto_write_copy_fail(&c->out,
                                         "COPY FROM STDIN needs molt_db_conn_copy_in");
}

/* CopyOutResponse to a request that is no COPY OUT: its data is dropped. */
static int refuse_copy_out(molt_db_conn *c, molt_db_req *r,
                           const molt_db_msg *msg, molt_db_error *err)
{
    (void)c, (void)msg, (void)err;
    req_fail(r, MOLT_DB_EINVAL, "COPY TO STDOUT needs molt_db_conn_copy_out");
    return MOLT_DB_OK;
}

/* ---- batches ---- */

static int on_member_error(molt_db_conn *c, molt_db_req *r,
                           const molt_db_msg *msg, molt_db_error *err)
{
    int rc = on_error(c, r, msg, err);
    c->batch_aborted = 1; /* the rest of the batch is skipped */
    member_answered(c);
    return rc;
}

static int on_member_complete(molt_db_conn *c, molt_db_req *r,
                              const molt_db_msg *msg, molt_db_error *err)
{
    const char *tag;
    int rc = molt_db_proto_read_command_complete(msg, &tag, err);
    if (rc != MOLT_DB_OK)
        return rc;
    r->wrote = is_write_tag(tag);
    member_answered(c); /* before a callback that may close */
    part_done(r, tag);
    return MOLT_DB_OK;
}

static int on_member_empty(molt_db_conn *c, molt_db_req *r,
                           const molt_db_msg *msg, molt_db_error *err)
{
    member_answered(c);
    return on_empty_query(c, r, msg, err);
}

static int on_batch_ready(molt_db_conn *c, molt_db_req *r,
                          const molt_db_msg *msg, molt_db_error *err)
{
    (void)r;
    int rc = molt_db_proto_read_ready(msg, &c->tx_status, err);
    return rc == MOLT_DB_OK ? batch_end(c) : rc;
}

static int on_guard_error(molt_db_conn *c, molt_db_req *r,
                          const molt_db_msg *msg, molt_db_error *err)
{
    (void)r;
    int rc = guard_failed(c, msg, err);
    if (rc == MOLT_DB_OK)
        req_free(fly_pop(c));
    return rc;
}

static int on_guard_done(molt_db_conn *c, molt_db_req *r,
                         const molt_db_msg *msg, molt_db_error *err)
{
    (void)r, (void)msg, (void)err;
    req_free(fly_pop(c));
    return MOLT_DB_OK;
}

/* ---- the routes of each kind ---- */

/* ParseComplete, CloseComplete, PortalSuspended, CopyDone: nothing to do. */
#define ROUTES_NOISE {'1', ignore}, {'3', ignore}, {'s', ignore}, {'c', ignore}
/* What any statement that is not a COPY request may also run into. */
#define ROUTES_STATEMENT                                                      \
    {'E', on_error}, {'C', on_command_complete}, {'I', on_empty_query},       \
    {'G', refuse_copy_in}, {'H', refuse_copy_out}, {'d', ignore}

static const msg_route prepare_routes[] = {
    ROUTES_NOISE, ROUTES_STATEMENT, {'Z', on_ready},
    {'t', on_parameters}, {'T', on_describe}, {'n', ignore},
    {'2', ignore}, {'D', unexpected_row}, {0, NULL}};

/* a query's first step: Parse/Describe/Flush, no Sync of its own */
static const msg_route query_describe_routes[] = {
    ROUTES_NOISE, {'E', on_error_then_execute}, {'C', on_command_complete},
    {'I', on_empty_query}, {'G', refuse_copy_in}, {'H', refuse_copy_out},
    {'d', ignore}, {'t', on_parameters}, {'T', on_describe_then_execute},
    {'n', on_no_data_then_execute}, {'2', ignore}, {'D', unexpected_row},
    {0, NULL}};

/* an execution of a prepared statement, or a query's second step */
static const msg_route execute_routes[] = {
    {'D', on_row}, ROUTES_NOISE, ROUTES_STATEMENT, {'Z', on_ready},
    {'2', on_bind_complete}, {'T', unexpected_columns}, {'n', ignore},
    {0, NULL}};

static const msg_route simple_routes[] = {
    {'D', on_row}, ROUTES_NOISE, ROUTES_STATEMENT, {'Z', on_ready},
    {'T', on_simple_columns}, {'2', ignore}, {'n', ignore}, {0, NULL}};

static const msg_route close_stmt_routes[] = {
    ROUTES_NOISE, ROUTES_STATEMENT, {'Z', on_ready},
    {'T', unexpected_columns}, {'D', unexpected_row}, {'2', ignore},
    {'n', ignore}, {0, NULL}};

static const msg_route copy_out_routes[] = {
    {'d', on_copy_data}, ROUTES_NOISE, {'E', on_error}, {'I', on_empty_query},
    {'Z', on_ready}, {'C', on_copy_complete}, {'H', ignore}, {'G', refuse_copy_in}, {'T', unexpected_columns}, {'D', unexpected_row},
    {'2', ignore}, {'n', ignore}, {0, NULL}};

static const msg_route copy_in_routes[] = {
    ROUTES_NOISE, {'E', on_error}, {'I', on_empty_query}, {'Z', on_ready},
    {'C', on_copy_complete}, {'G', on_copy_in_start}, {'H', refuse_copy_out},
    {'d', ignore}, {'T', unexpected_columns}, {'D', unexpected_row},
    {'2', ignore}, {'n', ignore}, {0, NULL}};

/* an execution in a batch: answered at its CommandComplete or error,
 * completed at the batch's ReadyForQuery */
static const msg_route batch_member_routes[] = {
    {'D', on_row}, ROUTES_NOISE, {'E', on_member_error}, {'C', on_member_complete},
    {'I', on_member_empty}, {'Z', on_batch_ready}, {'G', refuse_copy_in},
    {'H', refuse_copy_out}, {'d', ignore}, {'2', on_bind_complete},
    {'T', unexpected_columns}, {'n', ignore}, {0, NULL}};

/* the guard's answers are dropped (guard_failed) */
static const msg_route batch_guard_routes[] = {
    {'1', ignore}, {'2', ignore}, {'D', ignore}, {'E', on_guard_error},
    {'C', on_guard_done}, {0, NULL}};

/* An error at the batch's commit: its members were reads and have their
 * answers; nothing is lost. */
static const msg_route batch_sync_routes[] = {
    {'E', ignore}, {'Z', on_batch_ready}, {0, NULL}};

static const msg_route *const kind_routes[] = {
    [MOLT_DB_REQ_PREPARE] = prepare_routes,
    [MOLT_DB_REQ_EXECUTE] = execute_routes,
    [MOLT_DB_REQ_QUERY] = execute_routes, /* its second step; see routes_of */
    [MOLT_DB_REQ_SIMPLE] = simple_routes,
    [MOLT_DB_REQ_CLOSE_STMT] = close_stmt_routes,
    [MOLT_DB_REQ_COPY_OUT] = copy_out_routes,
    [MOLT_DB_REQ_COPY_IN] = copy_in_routes,
    [MOLT_DB_REQ_BATCH_GUARD] = batch_guard_routes,
    [MOLT_DB_REQ_BATCH_SYNC] = batch_sync_routes,
};

static const msg_route *routes_of(const molt_db_req *r)
{
    if (r->batched)
        return batch_member_routes;
    if (r->kind == MOLT_DB_REQ_QUERY && r->phase == 1)
        return query_describe_routes;
    return kind_routes[r->kind];
}

static msg_fn route(const msg_route *routes, char type)
{
    for (; routes->fn != NULL; routes++)
        if (routes->type == type)
            return routes->fn;
    return NULL;
}

/* The request's routes come first (no kind routes a message of the
 * anytime table, so the order only saves time: a row is one compare). */
int molt_db__conn_dispatch(molt_db_conn *c, const molt_db_msg *msg,
                           molt_db_error *err)
{
    molt_db_req *r = c->fly_head;
    msg_fn fn = r != NULL ? route(routes_of(r), msg->type) : NULL;
    if (fn != NULL)
        return fn(c, r, msg, err);
    if ((fn = route(anytime_routes, msg->type)) != NULL)
        return fn(c, NULL, msg, err);
    if (r == NULL && msg->type == 'E')
        /* An error with nothing in flight is a FATAL (admin shutdown, idle
         * timeout): the server closes the socket next and we report that. */
        return MOLT_DB_OK;
    return MOLT_DB_EPROTO;
}
