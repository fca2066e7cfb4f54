/*
 * PostgreSQL backend over the molt_db pool (include/molt_db/pool.h): one
 * pool per alias, the pool's deadlines and cancellation (a server-side
 * CancelRequest), its statement cache.
 *
 * db_query runs inside BEGIN READ ONLY ... ROLLBACK (a write is SQLSTATE
 * 25006, and nothing a query sets survives it), sent with the statement in
 * one round trip (molt_db_pool_query_options.read_only_tx); db_exec runs alone
 * (autocommit) or, with a statements list, in one transaction at the asked
 * isolation, all or nothing.
 *
 * Before an alias's first request the role is checked (pg_role.h): a
 * superuser, replication or server-program/file role is refused unless the
 * alias sets allow_privileged_role. Requests that arrive meanwhile wait.
 *
 * Backpressure: a streamed result pauses reading on its connection
 * (molt_db_pool_pause) while the session has more than MW_PAUSE_BYTES
 * queued for the client, and resumes below MW_RESUME_BYTES; the server then
 * waits in its send. Cancels and timeouts read on by themselves.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "copy.h"
#include "molt_db/copy_binary.h"
#include "molt_db/loop_libuv.h"
#include "molt_db/pool.h"
#include "molt_db/types.h"
#include "mpbuf.h"
#include "pg_role.h"
#include "pg_types.h"
#include "request.h"
#include "session.h"
#include "worker.h"
#include "zalloc.h"

/* How long a query with a new type waits for its name (then: the OID). */
#define TYPE_LOOKUP_TIMEOUT_MS 1000

/* Statements of one job in flight at once on its transaction's connection:
 * the server runs them back to back instead of one round trip each. The
 * bound keeps the pool requests (each holding its parameters) that wait
 * on the connection to a fixed number per job. Only a run of one SQL text
 * with the same parameter types is in flight together: the pool's statement
 * cache sends a new text's Execute only after its Parse is answered, so a
 * cached statement behind it would overtake it on the wire. */
#define PIPELINE_WINDOW 256

/* Statements with at most this many parameters need no allocation for
 * them (send_stmt's frame, a job's few_oids). */
#define FEW_PARAMS 8
/* a result of up to this many columns keeps them in its job (few_cols) */
#define FEW_COLS 16

typedef struct pg_job pg_job;

/* How a job failed: made at its first failure, as most jobs succeed and
 * these buffers take 2 KB. */
typedef struct pg_failure {
    char msg[MOLT_DB_ERROR_MESSAGE_SIZE + 96]; /* + connect_hint */
    molt_db_error err;                         /* its SQLSTATE and fields */
} pg_failure;

typedef enum role_state {
    ROLE_UNCHECKED = 0, ROLE_CHECKING, ROLE_OK, ROLE_REFUSED
} role_state;

typedef struct pg_backend {
    mw_backend base;
    role_state role;
    char role_refusal[MOLT_DB_ERROR_MESSAGE_SIZE];
    pg_job *role_wait_head, *role_wait_tail; /* jobs waiting for the check */
    mw_tx *tx_wait_head, *tx_wait_tail;      /* transactions, too */
    molt_db_loop *loop;         /* the worker's uv loop, for the pool */
    molt_db_pool *pool;
    mw_pg_types *types;         /* names of non-built-in types */
    void (*close_done)(mw_worker *w);
    char connect_error[MOLT_DB_ERROR_MESSAGE_SIZE + 96];
} pg_backend;

struct pg_job {
    pg_backend *b;
    pg_job *role_next;          /* in b's role_wait list */
    mw_request *r;
    molt_db_pool_req_id id;     /* what a cancel would name now: the oldest
                                   statement in flight, whose results come */
    molt_db_tx *tx;
    int tx_borrowed;            /* tx is a session's transaction (tx.h) */
    size_t si;                  /* statements answered (in order) */
    size_t sent;                /* statements handed to the pool */
    const char *run_sql;        /* SQL and parameter types of the statements */
    uint32_t *run_oids;         /* in flight (run_noids of them): few_oids
                                   or malloc'd */
    size_t run_noids;
    uint32_t few_oids[FEW_PARAMS];
    molt_db_column *cols;       /* the statement's columns (h_columns): few_cols,
                                   named from the result's copy, or one
                                   allocation with their names */
    size_t ncols;
    molt_db_column few_cols[FEW_COLS];
    int cancelled;
    int truncated;
    int failed;                 /* status below is set */
    int status;
    int server_lost;            /* ... by the server's connection going
                                   (connection_lost) */
    pg_failure *fail;           /* once failed; NULL then: out of memory */
    int64_t affected;           /* last answered statement's count */
    int64_t stmt_affected;      /* count of the statement being answered */
    uint64_t t0;
    int resolving;              /* paused for type names (pg_types.h) */
    molt_db_conn *copy_conn;    /* copy_in/out: the connection its COPY runs on */
    int ended;                  /* answered while resolving: free after */
    /* statement k in flight at inflight[k % ninflight]: room for as many
     * as can be in flight, min(statements, PIPELINE_WINDOW), not a whole
     * window for every one-statement request */
    size_t ninflight;
    molt_db_pool_req_id inflight[];
};

/* ---- type names of typed parameters ------------------------------------- */

static uint32_t type_oid(const char *p, size_t n, int *ok)
{
    static const struct { const char *name; uint32_t oid; } alias[] = {
        {"unknown", 0},        {"integer", 23},   {"int", 23},
        {"bigint", 20},        {"smallint", 21},  {"boolean", 16},
        {"real", 700},         {"double precision", 701},
        {"float", 701},        {"character varying", 1043},
        {"timestamp with time zone", 1184},
        {"timestamp without time zone", 1114},
        {"decimal", 1700},     {"char", 1042},
    };
    char name[72];
    *ok = 1;
    if (n >= sizeof name - 1) {
        *ok = 0;
        return 0;
    }
    /* "int4[]" is "_int4" */
    size_t k = 0;
    if (n > 2 && p[n - 2] == '[' && p[n - 1] == ']') {
        name[k++] = '_';
        n -= 2;
    }
    memcpy(name + k, p, n);
    name[k + n] = 0;
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(name, alias[i].name))
            return alias[i].oid;
    for (uint32_t oid = 1; oid < 8000; oid++) {
        const char *tn = molt_db_type_name(oid);
        if (tn && !strcmp(tn, name))
            return oid;
    }
    *ok = 0;
    return 0;
}

/* v in decimal into b (room for 20 characters); its length. */
static size_t int_text(int64_t v, char *b)
{
    char t[20];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        t[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        b[len++] = '-';
    while (n)
        b[len++] = t[--n];
    return len;
}

/* Where a statement's parameters are built: for a few, in the caller's
 * frame; for more, one allocation (heap) holds both arrays. */
typedef struct param_space {
    molt_db_param ps[FEW_PARAMS];
    size_t offs[FEW_PARAMS];
    void *heap;
} param_space;

/* Builds the parameters of statement s: text for everything but bytes
 * (binary), OID 0 for untyped values (the server infers, as for a
 * literal). The caller frees sp->heap. */
static int build_params(const mw_stmt *s, molt_db_buf *store, param_space *sp,
                        molt_db_param **out, char msg[MW_MSG_SIZE])
{
    size_t n = s->rw.nslots;
    *out = NULL;
    sp->heap = NULL;
    if (n == 0)
        return 0;
    molt_db_param *ps = sp->ps;
    size_t *offs = sp->offs;
    if (n > FEW_PARAMS) {
        sp->heap = mw_zalloc(n, sizeof *ps + sizeof *offs);
        if (!sp->heap) {
            snprintf(msg, MW_MSG_SIZE, "out of memory");
            return -2;
        }
        ps = sp->heap;
        offs = (size_t *)(ps + n);
    }
    memset(ps, 0, n * sizeof *ps);
    for (size_t k = 0; k < n; k++) {
        const mw_value *v = &s->values[s->rw.slot_value[k]];
        int ok = 1;
        uint32_t oid = v->type ? type_oid(v->type, v->type_len, &ok) : 0;
        if (!ok) {
            snprintf(msg, MW_MSG_SIZE, "unknown type name \"%.*s\"",
                     (int)(v->type_len > 64 ? 64 : v->type_len), v->type);
            return -1;
        }
        ps[k].oid = oid;
        ps[k].format = MOLT_DB_FORMAT_TEXT;
        offs[k] = store->len;
        char b[MOLT_DB_FLOAT_TEXT_SIZE + 8];
        switch (v->t) {
        case MW_V_NIL:
            ps[k].len = -1;
            break;
        case MW_V_BOOL:
            if (!v->type) {
                ps[k].oid = MOLT_DB_OID_BOOL;
                ps[k].format = MOLT_DB_FORMAT_BINARY;
                molt_db_buf_put_u8(store, v->i ? 1 : 0);
                ps[k].len = 1;
            } else {
                const char *t = v->i ? "true" : "false";
                molt_db_buf_put(store, t, strlen(t));
                ps[k].len = (int32_t)strlen(t);
            }
            break;
        case MW_V_INT:
            ps[k].len = (int32_t)int_text(v->i, b);
            molt_db_buf_put(store, b, (size_t)ps[k].len);
            break;
        case MW_V_FLOAT:
            ps[k].len = (int32_t)molt_db_format_float8(v->f, b);
            molt_db_buf_put(store, b, (size_t)ps[k].len);
            break;
        case MW_V_STR:
        case MW_V_BIN:
            if (v->n > INT32_MAX) {
                snprintf(msg, MW_MSG_SIZE, "parameter too large");
                return -1;
            }
            if (v->t == MW_V_BIN) {
                ps[k].format = MOLT_DB_FORMAT_BINARY;
                if (!v->type)
                    ps[k].oid = MOLT_DB_OID_BYTEA;
            }
            molt_db_buf_put(store, v->p, v->n);
            ps[k].len = (int32_t)v->n;
            break;
        }
    }
    if (molt_db_buf_ok(store) != MOLT_DB_OK) {
        snprintf(msg, MW_MSG_SIZE, "out of memory");
        return -2;
    }
    for (size_t k = 0; k < n; k++)
        ps[k].data = ps[k].len >= 0 ? store->data + offs[k] : NULL;
    *out = ps;
    return 0;
}

/* ---- job ---------------------------------------------------------------- */

/* the columns (h_columns): few_cols, or with their names one allocation */
static void free_cols(pg_job *j)
{
    if (j->cols != j->few_cols)
        free(j->cols);
    j->cols = NULL;
    j->ncols = 0;
}

/* Marks j failed with status (the first failure counts: callers check
 * j->failed) and returns its failure record to fill in, or NULL when there
 * is no memory for it (the answer then says so). */
static pg_failure *fail_begin(pg_job *j, int status)
{
    j->failed = 1;
    j->status = status;
    if (!j->fail && (j->fail = malloc(sizeof *j->fail)) != NULL) {
        j->fail->msg[0] = 0;
        molt_db_error_init(&j->fail->err);
    }
    return j->fail;
}

static void job_done(pg_job *j)
{
    mw_request *r = j->r;
    mw_status st = MW_OK;
    const char *msg = NULL;
    const molt_db_error *err = NULL;
    if (j->failed) {
        st = (mw_status)j->status;
        msg = j->fail ? j->fail->msg : "out of memory";
        err = j->fail && j->fail->err.sqlstate[0] ? &j->fail->err : NULL;
    }
    r->job = NULL;
    r->paused = 0;
    r->rows_affected = j->affected;
    r->server_lost = j->failed && j->server_lost;
    mw_request_db_done(r, st, msg, err);
    free_cols(j);
    if (j->run_oids != j->few_oids)
        free(j->run_oids);
    j->run_oids = NULL;
    if (j->fail) {
        molt_db_error_clear(&j->fail->err);
        free(j->fail);
        j->fail = NULL;
    }
    if (j->resolving) {
        j->ended = 1; /* types_resolved frees it */
        return;
    }
    free(j);
}

/* What to add to a connect error's message: PgBouncer refuses the startup
 * `options` that client_check_ms and statement_timeout_ms send. */
static const char *connect_hint(const char *message)
{
    return strstr(message, "unsupported startup parameter: options")
               ? " (behind PgBouncer set client_check_ms=0 and statement_timeout_ms=0)"
               : "";
}

/* The answer to a pool status: its status, message and error (SQLSTATE
 * kept only where the server or the connect attempt gave it). */
static mw_status status_from(int code, const molt_db_error *err, molt_db_error *out,
                             char *msg, size_t msg_size)
{
    mw_status st;
    switch (code) {
    case MOLT_DB_ESERVER:
        st = MW_DB_ERROR;
        if (err && !strcmp(err->sqlstate, "57014"))
            st = MW_CANCELLED;
        break;
    case MOLT_DB_ETIMEDOUT: st = MW_TIMEOUT; break;
    case MOLT_DB_ECANCELED: st = MW_CANCELLED; break;
    case MOLT_DB_ECONNECT:  /* the pool cannot connect: the SQLSTATE says
                               why (28P01, 3D000, 08001, ...) */
        st = MW_DB_ERROR;
        break;
    case MOLT_DB_ESTATE:    /* COMMIT of a transaction that had failed */
        st = MW_DB_ERROR;
        break;
    case MOLT_DB_EBUSY:     /* no connection within max_wait_ms */
    case MOLT_DB_ECLOSED:   /* the pool is closing: shutdown */
        st = MW_BUSY;
        break;
    default: st = MW_INTERNAL_ERROR; break;
    }
    if (err) {
        molt_db_error_copy(out, err);
        snprintf(msg, msg_size, "%s%s", err->message,
                 code == MOLT_DB_ECONNECT ? connect_hint(err->message) : "");
    } else {
        snprintf(msg, msg_size, "%s", molt_db_code_name(code));
    }
    if (code != MOLT_DB_ESERVER && code != MOLT_DB_ECONNECT)
        out->sqlstate[0] = 0;
    if (code == MOLT_DB_ESTATE)
        memcpy(out->sqlstate, "25P02", 6); /* in_failed_sql_transaction */
    return st;
}

/* A session's transaction whose connection is gone (ECLOSED): the server
 * rolled it back. */
static mw_status lost_tx(molt_db_error *out, char *msg, size_t msg_size)
{
    snprintf(msg, msg_size, "the transaction's connection was lost: the server "
             "rolled it back");
    molt_db_error_set(out, MOLT_DB_ESERVER, "%s", msg);
    memcpy(out->sqlstate, "08006", 6);
    return MW_DB_ERROR;
}

/* The pool status says the server's connection is gone or cannot be made:
 * closed or broken under the request, no connect, or the server ending the
 * session (FATAL of class 08, or shutting down / starting: 57P01-57P03).
 * Anything else, a client's bad value or SQL included, is not. */
static int connection_lost(int code, const molt_db_error *err)
{
    if (code == MOLT_DB_ECLOSED || code == MOLT_DB_EIO || code == MOLT_DB_ECONNECT)
        return 1;
    if (code != MOLT_DB_ESERVER || !err || !err->severity ||
        (strcmp(err->severity, "FATAL") && strcmp(err->severity, "PANIC")))
        return 0;
    return !strncmp(err->sqlstate, "08", 2) || !strcmp(err->sqlstate, "57P01") ||
           !strcmp(err->sqlstate, "57P02") || !strcmp(err->sqlstate, "57P03");
}

/* Records the first failure of the job from a pool status. */
static void fail_from(pg_job *j, int code, const molt_db_error *err)
{
    if (j->failed)
        return;
    j->server_lost = connection_lost(code, err);
    pg_failure *f = fail_begin(j, MW_INTERNAL_ERROR);
    if (!f)
        return;
    if (j->tx_borrowed && code == MOLT_DB_ECLOSED)
        j->status = (int)lost_tx(&f->err, f->msg, sizeof f->msg);
    else
        j->status = (int)status_from(code, err, &f->err, f->msg, sizeof f->msg);
}

/* Records an encoding failure (e, of mw_result_pg_*) unless j failed
 * before; clears e. */
static void fail_encoding(pg_job *j, molt_db_error *e)
{
    if (!j->failed) {
        pg_failure *f = fail_begin(j, mw_result_error_status(e));
        if (f) {
            snprintf(f->msg, sizeof f->msg, "%s", e->message);
            molt_db_error_move(&f->err, e);
        }
    }
    molt_db_error_clear(e);
}

/* The columns to the result; the encoding's time counts from t. */
static int emit_columns(pg_job *j, uint64_t t)
{
    j->r->res.pg_types = j->b->types;
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = mw_result_pg_columns(&j->r->res, j->cols, j->ncols, &e);
    j->r->res.encode_ns += uv_hrtime() - t;
    if (rc != MOLT_DB_OK)
        fail_encoding(j, &e);
    return rc;
}

static void types_resolved(void *ud)
{
    pg_job *j = ud;
    j->resolving = 0;
    if (j->ended) {
        free(j);
        return;
    }
    if (j->cancelled || !j->id) /* the pool reads on (and drops) by itself */
        return;
    if (emit_columns(j, uv_hrtime()) != MOLT_DB_OK)
        molt_db_pool_cancel(j->b->pool, j->id);
    if (!j->r->paused) /* not also paused for the client */
        molt_db_pool_resume(j->b->pool, j->id);
}

/* A column of a type whose name is not cached: pause the request's reading
 * (no row comes before its columns), look the names up, go on in
 * types_resolved. 0 when nothing was started. */
static int start_resolving(pg_job *j)
{
    uint32_t stack[16] = {0}; /* (read only up to ncols; GCC cannot tell) */
    uint32_t *oids = j->ncols > 16 ? malloc(j->ncols * sizeof *oids) : stack;
    if (!oids)
        return 0;
    for (size_t i = 0; i < j->ncols; i++)
        oids[i] = j->cols[i].type_oid;
    int started = 0;
    if (mw_pg_types_missing(j->b->types, oids, j->ncols)) {
        /* wait only when another connection can run the lookup (this one
         * is ours); else show the OIDs now and look up for the next query */
        molt_db_pool_stats st;
        molt_db_pool_get_stats(j->b->pool, &st);
        int can_wait = st.conns_idle > 0 ||
                       st.conns < (size_t)j->b->base.alias->pool.max_conns;
        if (!can_wait)
            mw_pg_types_resolve(j->b->types, oids, j->ncols, 0, NULL, NULL);
        else if (molt_db_pool_pause(j->b->pool, j->id) == MOLT_DB_OK) {
            started = mw_pg_types_resolve(j->b->types, oids, j->ncols,
                                          TYPE_LOOKUP_TIMEOUT_MS, types_resolved, j) == 0;
            if (!started)
                molt_db_pool_resume(j->b->pool, j->id);
        }
    }
    if (oids != stack)
        free(oids);
    j->resolving = started;
    return started;
}

/* Stops what the job runs on the server: its pool requests, or its COPY
 * (a CancelRequest on the transaction's connection; the server ends the
 * COPY with 57014). All statements in flight: the pool sends the
 * CancelRequest only once no live request of the connection could be hit
 * in place of the one meant. */
static void cancel_on_server(pg_job *j)
{
    if (j->id && j->si >= j->sent)
        molt_db_pool_cancel(j->b->pool, j->id); /* BEGIN */
    for (size_t k = j->si; k < j->sent; k++)
        molt_db_pool_cancel(j->b->pool, j->inflight[k % j->ninflight]);
    if (j->copy_conn) {
        const molt_db_pool_settings *ps = &j->b->base.alias->pool;
        molt_db_conn_resume_reading(j->copy_conn); /* the cancel needs the reads */
        molt_db_conn_cancel(j->copy_conn,
                            ps->cancel_timeout_ms > 0 ? ps->cancel_timeout_ms : 5000,
                            NULL, NULL);
    }
}

/* A few columns whose types are all named go out at once: the job keeps
 * their types and formats for the rows (few_cols), and for their names the
 * result's copy (the pool's are valid during its call only). 0 when they
 * do not qualify (nothing done). */
static int few_columns(pg_job *j, const molt_db_column *cols, size_t n, uint64_t t,
                       int *rc)
{
    uint32_t oids[FEW_COLS];
    if (j->resolving || n > FEW_COLS)
        return 0;
    for (size_t i = 0; i < n; i++)
        oids[i] = cols[i].type_oid;
    if (mw_pg_types_missing(j->b->types, oids, n))
        return 0;
    if (n) /* a statement without columns: cols may be NULL */
        memcpy(j->few_cols, cols, n * sizeof *cols);
    j->cols = j->few_cols;
    j->ncols = n;
    *rc = emit_columns(j, t);
    char **names = j->r->res.ncols == n ? j->r->res.names : NULL;
    for (size_t i = 0; i < n; i++)
        j->few_cols[i].name = names ? names[i] : "";
    return 1;
}

static int h_columns(void *ud, const molt_db_column *cols, size_t n)
{
    pg_job *j = ud;
    uint64_t t = uv_hrtime();
    free_cols(j);
    int rc;
    if (few_columns(j, cols, n, t, &rc))
        return rc;
    /* else the columns, then their names' bytes, in one allocation */
    size_t slots = n ? n : 1, bytes = slots * sizeof *j->cols;
    for (size_t i = 0; i < n && bytes < SIZE_MAX / 2; i++)
        bytes += strlen(cols[i].name ? cols[i].name : "") + 1;
    j->cols = bytes < SIZE_MAX / 2 ? malloc(bytes) : NULL;
    if (!j->cols)
        return MOLT_DB_ENOMEM;
    char *at = (char *)(j->cols + slots);
    for (size_t i = 0; i < n; i++) {
        const char *name = cols[i].name ? cols[i].name : "";
        size_t len = strlen(name) + 1;
        j->cols[i] = cols[i];
        j->cols[i].name = memcpy(at, name, len);
        at += len;
    }
    j->ncols = n;
    if (!j->resolving && start_resolving(j)) {
        j->r->res.encode_ns += uv_hrtime() - t;
        return MOLT_DB_OK; /* the columns go out once the names are in */
    }
    return emit_columns(j, t); /* the copy counts with the encoding */
}

/* How many rows one timed row stands for in decode_us past a result's first
 * ROW_TIMING_SAMPLE rows (each of those is timed): two clock reads per row
 * were 4% of a bulk read's CPU. 0: this row is not timed. */
#define ROW_TIMING_SAMPLE 16
static uint64_t row_timing_weight(uint64_t rows_before)
{
    if (rows_before < ROW_TIMING_SAMPLE)
        return 1;
    return rows_before % ROW_TIMING_SAMPLE == 0 ? ROW_TIMING_SAMPLE : 0;
}

static int h_row(void *ud, const molt_db_field *f, size_t n)
{
    pg_job *j = ud;
    if (j->truncated)
        return MOLT_DB_ECANCELED;
    uint64_t weight = row_timing_weight(j->r->res.total_rows);
    uint64_t t = weight ? uv_hrtime() : 0;
    molt_db_error e;
    molt_db_error_init(&e);
    int rc = mw_result_pg_row(&j->r->res, j->cols, f, n, &e);
    if (weight)
        j->r->res.encode_ns += (uv_hrtime() - t) * weight;
    if (rc == 1) {
        /* max_rows reached: stop reading, cancel the rest on the server */
        j->truncated = 1;
        cancel_on_server(j);
        return MOLT_DB_ECANCELED;
    }
    if (rc != MOLT_DB_OK) {
        fail_encoding(j, &e);
        return rc;
    }
    if (j->r->res.parts.len)
        mw_request_flush_parts(j->r);
    /* backpressure: the client reads slower than the server sends; the
     * session resumes us once its queue drained (pg_resume) */
    mw_request *r = j->r;
    if (r->s && r->s->write_bytes > MW_PAUSE_BYTES && !r->paused && !j->cancelled) {
        if (j->copy_conn) {
            molt_db_conn_pause_reading(j->copy_conn);
            r->paused = 1;
        } else if (molt_db_pool_pause(j->b->pool, j->id) == MOLT_DB_OK) {
            r->paused = 1;
        }
    }
    return MOLT_DB_OK;
}

static void h_command(void *ud, const char *tag)
{
    pg_job *j = ud;
    uint64_t rows;
    if (molt_db_proto_tag_rows(tag, &rows))
        j->stmt_affected = (int64_t)rows;
}

/* j->id follows the oldest statement in flight (0: none). */
static void track_oldest(pg_job *j)
{
    j->id = j->si < j->sent ? j->inflight[j->si % j->ninflight] : 0;
}

static void next_step(pg_job *j);

/* Records statement si's failure: in a statements list, the message names
 * the statement. A cancel stops the whole job, whichever statement saw it. */
static void fail_stmt(pg_job *j, int status, const molt_db_error *err)
{
    if (j->failed)
        return;
    if (j->cancelled) {
        fail_from(j, MOLT_DB_ECANCELED, NULL);
        return;
    }
    fail_from(j, status, err);
    pg_failure *f = j->fail;
    if (f && j->r->q.statements && j->status != MW_CANCELLED && j->status != MW_TIMEOUT) {
        char prefix[48];
        int n = snprintf(prefix, sizeof prefix, "statements[%zu]: ", j->si);
        size_t len = strnlen(f->msg, sizeof f->msg - 1 - (size_t)n);
        memmove(f->msg + n, f->msg, len);
        memcpy(f->msg, prefix, (size_t)n);
        f->msg[(size_t)n + len] = 0;
    }
}

static void h_done(void *ud, int status, const molt_db_error *err)
{
    pg_job *j = ud;
    j->copy_conn = NULL;
    if (status != MOLT_DB_OK && !(j->truncated && !j->failed))
        fail_stmt(j, status, err);
    if (j->si < j->sent)
        j->si++;
    if (status == MOLT_DB_ETIMEDOUT)
        cancel_on_server(j); /* those behind it, too */
    if (!j->failed) {
        j->affected = j->stmt_affected;
        if (j->r->q.write)
            mw_result_stmt_end(&j->r->res, j->affected, 0, 0);
    }
    j->stmt_affected = 0;
    track_oldest(j);
    next_step(j);
}

static void tx_ended(void *ud, int status, const molt_db_error *err)
{
    pg_job *j = ud;
    j->tx = NULL;
    if (status != MOLT_DB_OK && j->r->q.write)
        fail_from(j, status, err); /* a failed COMMIT */
    job_done(j);
}

/* Whether statement s with parameters ps may join those in flight (the
 * same SQL text and parameter types: see PIPELINE_WINDOW); records its text
 * and types as the run's. 0: it waits until those in flight are answered;
 * -1: out of memory. */
static int joins_run(pg_job *j, const mw_stmt *s, const molt_db_param *ps)
{
    size_t n = s->rw.nslots;
    int same = j->run_sql && !strcmp(j->run_sql, s->rw.sql) && j->run_noids == n;
    for (size_t k = 0; same && k < n; k++)
        same = j->run_oids[k] == ps[k].oid;
    if (same)
        return 1;
    if (j->si < j->sent)
        return 0;
    uint32_t *oids = j->run_oids;
    if (n <= FEW_PARAMS) {
        if (oids != j->few_oids)
            free(oids);
        oids = j->few_oids;
    } else if (oids == j->few_oids || n > j->run_noids) {
        oids = realloc(oids == j->few_oids ? NULL : oids, n * sizeof *oids);
        if (!oids)
            return -1;
    }
    for (size_t k = 0; k < n; k++)
        oids[k] = ps[k].oid;
    j->run_oids = oids;
    j->run_noids = n;
    j->run_sql = s->rw.sql;
    return 1;
}

/* Hands statement j->sent to the pool: 0 sent, 1 it waits for those in
 * flight, -1 failed (recorded). */
static int send_stmt(pg_job *j)
{
    const mw_stmt *s = &j->r->q.stmts[j->sent];
    if (j->si < j->sent && strcmp(j->run_sql, s->rw.sql))
        return 1; /* another text: not worth building its parameters yet */
    molt_db_buf store;
    molt_db_param *ps = NULL;
    param_space space;
    char msg[MW_MSG_SIZE];
    molt_db_buf_init(&store);
    int rc = build_params(s, &store, &space, &ps, msg);
    if (rc < 0) {
        free(space.heap);
        pg_failure *f = fail_begin(j, rc == -2 ? MW_INTERNAL_ERROR : MW_INVALID_INPUT);
        if (f && j->r->q.statements)
            snprintf(f->msg, sizeof f->msg, "statements[%zu]: %s", j->sent, msg);
        else if (f)
            snprintf(f->msg, sizeof f->msg, "%s", msg);
        molt_db_buf_free(&store);
        return -1;
    }
    int joins = joins_run(j, s, ps);
    if (joins <= 0) {
        free(space.heap);
        molt_db_buf_free(&store);
        if (joins == 0)
            return 1;
        fail_from(j, MOLT_DB_ENOMEM, NULL);
        return -1;
    }
    molt_db_result_handler h = {h_columns, h_row, h_command, h_done, j};
    if (!j->r->t_start)
        j->r->t_start = uv_hrtime(); /* exec_us: from handing it to the pool */
    uint64_t elapsed_ms = (uv_hrtime() - j->r->t_recv) / 1000000;
    molt_db_pool_query_options o = {0};
    o.timeout_ms = (int)(j->r->timeout_ms > elapsed_ms ? j->r->timeout_ms - elapsed_ms : 1) + 50;
    o.tag = j->r->q.tag[0] ? j->r->q.tag : NULL;
    o.read_only_tx = !j->r->q.write && !j->tx; /* in a transaction: its own */
    o.close_conn = s->session_state;
    molt_db_pool_req_id id = 0;
    if (j->tx)
        rc = molt_db_tx_query(j->tx, s->rw.sql, s->rw.nslots, ps, &h, &o, &id);
    else
        rc = molt_db_pool_query(j->b->pool, s->rw.sql, s->rw.nslots, ps, &h, &o, &id);
    free(space.heap);
    molt_db_buf_free(&store);
    if (rc != MOLT_DB_OK) {
        fail_from(j, rc, NULL);
        return -1;
    }
    j->inflight[j->sent % j->ninflight] = id;
    j->sent++;
    track_oldest(j);
    return 0;
}

/* After BEGIN, and after each answered statement: more statements into the
 * window; once all are answered (or one failed and those in flight are
 * answered), the end. Answers come in statement order on the one
 * connection; after a failure the server refuses the rest (25P02). */
static void next_step(pg_job *j)
{
    const mw_query *q = &j->r->q;
    if (j->cancelled && !j->failed) {
        pg_failure *f = fail_begin(j, MW_CANCELLED);
        if (f)
            snprintf(f->msg, sizeof f->msg, "cancelled");
    }
    /* without a transaction there is one statement: no pipelining */
    size_t window = j->tx ? PIPELINE_WINDOW : 1;
    while (!j->failed && j->sent < q->nstmts && j->sent - j->si < window)
        if (send_stmt(j) != 0)
            break;
    if (j->si < j->sent)
        return; /* h_done of those in flight comes back here */
    if (!j->r->t_exec_end)
        j->r->t_exec_end = uv_hrtime();
    if (j->tx && !j->tx_borrowed) {
        int rc = (!j->failed && q->write) ? molt_db_tx_commit(j->tx, tx_ended, j)
                                          : molt_db_tx_rollback(j->tx, tx_ended, j);
        if (rc == MOLT_DB_OK)
            return;
        j->tx = NULL;
    }
    job_done(j);
}

/* ---- copy_in (copy.h): the COPY on the transaction's connection, all its
 * rows sent at once; next_step then commits, or rolls back after an error */

static void copy_ready(void *ud)
{
    pg_job *j = ud;
    const mw_copy *c = j->r->q.copy;
    int rc = MOLT_DB_OK;
    for (size_t off = 0; rc == MOLT_DB_OK && off < c->data.len; off += (size_t)1 << 20) {
        size_t n = c->data.len - off < ((size_t)1 << 20) ? c->data.len - off : (size_t)1 << 20;
        rc = molt_db_conn_copy_data(j->copy_conn, c->data.data + off, n);
    }
    if (rc == MOLT_DB_OK)
        rc = molt_db_conn_copy_end(j->copy_conn);
    if (rc != MOLT_DB_OK)
        molt_db_conn_copy_fail(j->copy_conn, "the worker could not send the rows");
}

static void copy_done(void *ud, int status, const molt_db_error *err, uint64_t rows)
{
    pg_job *j = ud;
    j->copy_conn = NULL;
    if (status != MOLT_DB_OK) {
        fail_from(j, status, err);
    } else {
        j->affected = (int64_t)rows;
        mw_result_stmt_end(&j->r->res, j->affected, 0, 0);
    }
    next_step(j);
}

static void run_copy(pg_job *j)
{
    if (!j->r->t_start)
        j->r->t_start = uv_hrtime();
    molt_db_copy_in_handler h = {copy_ready, NULL, copy_done, j};
    j->copy_conn = molt_db_tx_conn(j->tx);
    int rc = j->copy_conn ? molt_db_conn_copy_in(j->copy_conn, j->r->q.copy->sql, &h)
                          : MOLT_DB_ECLOSED;
    if (rc != MOLT_DB_OK) {
        j->copy_conn = NULL;
        fail_from(j, rc, NULL);
        next_step(j);
    }
}

/* copy_out: the statement through COPY TO STDOUT (FORMAT binary) on the
 * READ ONLY transaction's connection, its rows into the same handler as a
 * query's; h_done then goes on to the ROLLBACK. */
static void run_copy_out(pg_job *j)
{
    if (!j->r->t_start)
        j->r->t_start = uv_hrtime();
    molt_db_result_handler h = {h_columns, h_row, h_command, h_done, j};
    j->si = j->sent = j->r->q.nstmts; /* not a statement for next_step */
    j->copy_conn = molt_db_tx_conn(j->tx);
    int rc = j->copy_conn ? molt_db_conn_copy_query(j->copy_conn, j->r->q.stmts[0].rw.sql, &h)
                          : MOLT_DB_ECLOSED;
    if (rc != MOLT_DB_OK) {
        j->copy_conn = NULL;
        fail_from(j, rc, NULL);
        next_step(j);
    }
}

static void began(void *ud, int status, molt_db_tx *tx, const molt_db_error *err)
{
    pg_job *j = ud;
    j->id = 0;
    if (status != MOLT_DB_OK) {
        fail_from(j, status, err);
        job_done(j);
        return;
    }
    j->tx = tx;
    if (j->r->q.copy) {
        run_copy(j);
        return;
    }
    if (j->r->q.copy_out) {
        run_copy_out(j);
        return;
    }
    next_step(j);
}

/* Answers j DbError without asking the server. */
static void refuse(pg_job *j, const char *sqlstate, const char *msg)
{
    pg_failure *f = fail_begin(j, MW_DB_ERROR);
    if (f) {
        snprintf(f->err.sqlstate, sizeof f->err.sqlstate, "%s", sqlstate);
        snprintf(f->msg, sizeof f->msg, "%s", msg);
    }
    job_done(j);
}

static molt_db_isolation isolation_of(mw_isolation i)
{
    return i == MW_ISO_SERIALIZABLE      ? MOLT_DB_ISOLATION_SERIALIZABLE
           : i == MW_ISO_REPEATABLE_READ ? MOLT_DB_ISOLATION_REPEATABLE_READ
                                         : MOLT_DB_ISOLATION_READ_COMMITTED;
}

static void run_job(pg_job *j)
{
    pg_backend *b = j->b;
    mw_request *r = j->r;
    const mw_query *q = &r->q;
    if (j->cancelled) {
        next_step(j); /* answers Cancelled */
        return;
    }
    /* db_exec of one statement runs alone; db_query too, framed in BEGIN
     * READ ONLY / ROLLBACK by the pool in the same round trip; in a
     * session's transaction, on its connection */
    if ((!q->statements && !q->copy && !q->copy_out) || j->tx_borrowed) {
        next_step(j);
        return;
    }
    molt_db_tx_options o = {0};
    /* db_exec with statements: one transaction at the asked isolation */
    o.isolation = isolation_of(q->isolation);
    o.read_only = q->copy_out;
    o.timeout_ms = (int)r->timeout_ms + 50;
    int rc = molt_db_pool_begin(b->pool, &o, began, j, &j->id);
    if (rc != MOLT_DB_OK) {
        fail_from(j, rc, NULL);
        job_done(j);
    }
}

/* ---- session transactions (tx.h) ---------------------------------------- */

static void tx_fail(mw_tx *t, int code, const molt_db_error *err)
{
    char msg[MOLT_DB_ERROR_MESSAGE_SIZE + 96];
    molt_db_error e;
    molt_db_error_init(&e);
    mw_status st;
    if (code == MOLT_DB_ECLOSED && t->state != MW_TX_BEGINNING)
        st = t->step == MW_TX_ROLLBACK ? MW_OK : lost_tx(&e, msg, sizeof msg);
    else
        st = status_from(code, err, &e, msg, sizeof msg);
    mw_tx_done(t, st, st == MW_OK ? NULL : msg, e.sqlstate[0] ? &e : NULL);
    molt_db_error_clear(&e);
}

static void tx_began(void *ud, int status, molt_db_tx *tx, const molt_db_error *err)
{
    mw_tx *t = ud;
    if (status != MOLT_DB_OK) {
        tx_fail(t, status, err);
        return;
    }
    t->handle = tx;
    mw_tx_done(t, MW_OK, NULL, NULL);
}

static void tx_begin_now(pg_backend *b, mw_tx *t)
{
    molt_db_tx_options o = {0};
    o.isolation = isolation_of(t->isolation);
    o.read_only = t->read_only;
    o.deferrable = t->deferrable;
    o.timeout_ms = (int)t->timeout_ms + 50;
    int rc = molt_db_pool_begin(b->pool, &o, tx_began, t, NULL);
    if (rc != MOLT_DB_OK)
        tx_fail(t, rc, NULL);
}

static void tx_refuse(mw_tx *t, const char *msg)
{
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, MOLT_DB_ESERVER, "%s", msg);
    memcpy(e.sqlstate, "42501", 6);
    mw_tx_done(t, MW_DB_ERROR, msg, &e);
    molt_db_error_clear(&e);
}

static void tx_stepped(void *ud, int status, const molt_db_error *err)
{
    mw_tx *t = ud;
    if (t->step == MW_TX_COMMIT || t->step == MW_TX_ROLLBACK)
        t->handle = NULL; /* the pool frees it and takes the connection back */
    if (status != MOLT_DB_OK)
        tx_fail(t, status, err);
    else
        mw_tx_done(t, MW_OK, NULL, NULL);
}

/* The ROLLBACK that ended a failed read-only transaction on tx_commit: answered
 * as the server's COMMIT of a failed transaction is (25P02). */
static void failed_commit_done(void *ud, int status, const molt_db_error *err)
{
    if (status != MOLT_DB_OK) {
        tx_stepped(ud, status, err);
        return;
    }
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, MOLT_DB_ESTATE, "transaction was rolled back (it had "
                      "failed before COMMIT)");
    tx_stepped(ud, MOLT_DB_ESTATE, &e);
    molt_db_error_clear(&e);
}

/* tx_commit of a read-only transaction ends it with ROLLBACK: PostgreSQL lets
 * a READ ONLY transaction create large objects and queue notifications (a
 * function's lo_from_bytea or pg_notify, out of the classifier's sight),
 * which COMMIT would keep. Its reads need no commit. */
static int commit_read_only(molt_db_tx *tx, mw_tx *t)
{
    molt_db_conn *c = molt_db_tx_conn(tx);
    int failed = c != NULL && molt_db_conn_tx_status(c) == 'E';
    return molt_db_tx_rollback(tx, failed ? failed_commit_done : tx_stepped, t);
}

static void pg_tx_step(mw_backend *base, mw_tx *t, mw_tx_step step)
{
    (void)base;
    molt_db_tx *tx = t->handle;
    int rc;
    switch (step) {
    case MW_TX_SAVEPOINT: rc = molt_db_tx_begin_nested(tx, tx_stepped, t); break;
    case MW_TX_COMMIT:
        rc = t->read_only ? commit_read_only(tx, t) : molt_db_tx_commit(tx, tx_stepped, t);
        break;
    case MW_TX_RELEASE: rc = molt_db_tx_commit(tx, tx_stepped, t); break;
    default: rc = molt_db_tx_rollback(tx, tx_stepped, t); break;
    }
    if (rc != MOLT_DB_OK)
        tx_fail(t, rc, NULL); /* not sent: the transaction stays as it was */
}

/* ---- the role check (pg_role.h) ----------------------------------------- */

static void role_checked(void *ud, int status, const molt_db_error *err,
                         const char *role, const char *privileges);

/* Starts the role check unless it runs already. */
static void check_role(pg_backend *b, uint32_t timeout_ms)
{
    if (b->role != ROLE_UNCHECKED)
        return;
    b->role = ROLE_CHECKING;
    int rc = mw_pg_role_check(b->pool, (int)timeout_ms + 50, role_checked, b);
    if (rc != MOLT_DB_OK)
        role_checked(b, rc, NULL, "", "");
}

static void role_checked(void *ud, int status, const molt_db_error *err,
                         const char *role, const char *privileges)
{
    pg_backend *b = ud;
    if (status != MOLT_DB_OK)
        b->role = ROLE_UNCHECKED; /* the next request tries again */
    else if (privileges[0] == 0)
        b->role = ROLE_OK;
    else {
        b->role = ROLE_REFUSED;
        snprintf(b->role_refusal, sizeof b->role_refusal,
                 "alias \"%s\": role \"%.64s\" has %s: any client could run "
                 "programs or touch files on the database server, so the worker "
                 "refuses it; connect as a role without these (to read: CREATE "
                 "ROLE app_ro LOGIN; GRANT pg_read_all_data TO app_ro) or set "
                 "allow_privileged_role=true for this alias",
                 b->base.alias->name, role, privileges);
    }
    pg_job *j = b->role_wait_head;
    b->role_wait_head = b->role_wait_tail = NULL;
    while (j) {
        pg_job *next = j->role_next;
        if (b->role == ROLE_OK) {
            run_job(j);
        } else if (b->role == ROLE_REFUSED) {
            refuse(j, "42501", b->role_refusal);
        } else {
            fail_from(j, status, err);
            job_done(j);
        }
        j = next;
    }
    mw_tx *t = b->tx_wait_head;
    b->tx_wait_head = b->tx_wait_tail = NULL;
    while (t) {
        mw_tx *next = t->wait_next;
        t->wait_next = NULL;
        if (b->role == ROLE_OK)
            tx_begin_now(b, t);
        else if (b->role == ROLE_REFUSED)
            tx_refuse(t, b->role_refusal);
        else
            tx_fail(t, status, err);
        t = next;
    }
}

static void pg_tx_begin(mw_backend *base, mw_tx *t, uint32_t timeout_ms)
{
    pg_backend *b = (pg_backend *)base;
    t->timeout_ms = timeout_ms;
    if (b->role == ROLE_OK || base->alias->allow_privileged_role) {
        tx_begin_now(b, t);
        return;
    }
    if (b->role == ROLE_REFUSED) {
        tx_refuse(t, b->role_refusal);
        return;
    }
    if (b->tx_wait_tail)
        b->tx_wait_tail->wait_next = t;
    else
        b->tx_wait_head = t;
    b->tx_wait_tail = t;
    check_role(b, timeout_ms);
}

static void pg_start(mw_backend *base, mw_request *r)
{
    pg_backend *b = (pg_backend *)base;
    size_t ninflight = r->q.nstmts < PIPELINE_WINDOW ? r->q.nstmts : PIPELINE_WINDOW;
    if (ninflight == 0)
        ninflight = 1;
    pg_job *j = mw_request_job_new(r, sizeof *j + ninflight * sizeof j->inflight[0]);
    if (!j)
        return;
    j->ninflight = ninflight;
    j->b = b;
    j->r = r;
    r->job = j;
    if (r->q.refused[0]) {
        /* the classifier's verdict (payload.c): the server never sees it */
        refuse(j, r->q.refused_sqlstate, r->q.refused);
        return;
    }
    if (r->tx) {
        /* a session's transaction: its BEGIN passed the role check */
        j->tx = r->tx->handle;
        j->tx_borrowed = 1;
        run_job(j);
        return;
    }
    if (b->role == ROLE_OK || base->alias->allow_privileged_role) {
        run_job(j);
        return;
    }
    if (b->role == ROLE_REFUSED) {
        refuse(j, "42501", b->role_refusal);
        return;
    }
    if (b->role_wait_tail)
        b->role_wait_tail->role_next = j;
    else
        b->role_wait_head = j;
    b->role_wait_tail = j;
    check_role(b, r->timeout_ms);
}

static void pg_cancel(mw_backend *base, mw_request *r)
{
    (void)base;
    pg_job *j = r->job;
    if (!j)
        return;
    j->cancelled = 1;
    r->paused = 0; /* the pool's cancel reads on by itself */
    cancel_on_server(j);
}

static void pg_resume(mw_backend *base, mw_request *r)
{
    pg_backend *b = (pg_backend *)base;
    pg_job *j = r->job;
    if (j && j->copy_conn)
        molt_db_conn_resume_reading(j->copy_conn);
    else if (j && j->id)
        molt_db_pool_resume(b->pool, j->id);
}

static void pg_stats(mw_backend *base, msgpack_packer *pk)
{
    pg_backend *b = (pg_backend *)base;
    molt_db_pool_stats s;
    molt_db_pool_get_stats(b->pool, &s);
    struct { const char *k; uint64_t v; } f[] = {
        {"size", s.conns},           {"in_use", s.conns_in_use},
        {"idle", s.conns_idle},      {"waiters", s.waiters},
        {"opening", s.conns_opening}, {"requests", s.requests},
        {"completed", s.completed},  {"failed", s.failed},
        {"timeouts", s.timeouts},    {"cancels", s.cancels},
        {"exhausted", s.exhausted},  {"reprepares", s.reprepares},
        {"conns_opened", s.conns_opened}, {"connect_failures", s.connect_failures},
        {"conns_closed", s.conns_closed}, {"conns_abandoned", s.conns_abandoned},
        {"cancel_requests", s.cancel_requests}, {"rollbacks", s.rollbacks},
        {"tx_commits", s.tx_commits}, {"tx_rollbacks", s.tx_rollbacks},
        {"max_wait_us", s.max_wait_us},
    };
    msgpack_pack_map(pk, 1 + sizeof f / sizeof f[0]);
    mw_pack_key(pk, "backend");
    mw_pack_cstr(pk, "postgresql");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        mw_pack_key(pk, f[i].k);
        msgpack_pack_uint64(pk, f[i].v);
    }
}

static void free_loop_once_closed(molt_db_pool *pool, void *loop)
{
    (void)pool;
    molt_db_loop_free(loop);
}

static void pool_closed(molt_db_pool *pool, void *ud)
{
    (void)pool;
    pg_backend *b = ud;
    b->pool = NULL;
    molt_db_loop_free(b->loop);
    b->loop = NULL;
    mw_pg_types_free(b->types);
    b->types = NULL;
    if (b->close_done)
        b->close_done(b->base.w);
}

static void pg_close(mw_backend *base, void (*done)(mw_worker *w))
{
    pg_backend *b = (pg_backend *)base;
    b->close_done = done;
    molt_db_pool_close(b->pool, pool_closed, b);
}

static const char *pg_connect_error(mw_backend *base)
{
    pg_backend *b = (pg_backend *)base;
    const molt_db_error *e = molt_db_pool_connect_error(b->pool);
    if (e == NULL)
        return NULL;
    snprintf(b->connect_error, sizeof b->connect_error, "%s%s", e->message,
             connect_hint(e->message));
    return b->connect_error;
}

static int pg_prometheus(mw_backend *base, molt_db_buf *out)
{
    return molt_db_pool_metrics_prometheus(((pg_backend *)base)->pool, out);
}

molt_db_pool *mw_backend_pg_pool(mw_backend *base)
{
    return ((pg_backend *)base)->pool;
}

static size_t pg_busy(mw_backend *base)
{
    molt_db_pool_stats s;
    molt_db_pool_get_stats(((pg_backend *)base)->pool, &s);
    /* a transaction's connection with nothing running on it waits for
     * its transaction, not for the loop */
    return s.conns_in_use - s.conns_tx_idle + s.conns_opening;
}

static const mw_backend_ops pg_ops = {"postgresql", pg_start, pg_cancel, pg_resume,
                                      pg_connect_error, pg_stats, pg_close,
                                      pg_prometheus, pg_tx_begin, pg_tx_step, pg_busy};

int mw_backend_pg_open(mw_worker *w, mw_alias *alias, mw_backend **out,
                       char err[MW_ERR_SIZE])
{
    molt_db_conninfo *ci = NULL;
    molt_db_error e;
    molt_db_error_init(&e);
    if (molt_db_conninfo_parse(alias->dsn, &ci, &e) != MOLT_DB_OK) {
        snprintf(err, MW_ERR_SIZE, "%.400s", e.message);
        molt_db_error_clear(&e);
        return -1;
    }
    pg_backend *b = mw_zalloc(1, sizeof *b);
    if (!b) {
        molt_db_conninfo_free(ci);
        snprintf(err, MW_ERR_SIZE, "out of memory");
        return -1;
    }
    b->base.ops = &pg_ops;
    b->base.alias = alias;
    b->base.w = w;
    int rc = molt_db_loop_libuv_new(w->loop, &b->loop, &e);
    if (rc == MOLT_DB_OK)
        rc = molt_db_pool_open(b->loop, ci, &alias->pool, &b->pool, &e);
    molt_db_conninfo_free(ci);
    if (rc != MOLT_DB_OK) {
        snprintf(err, MW_ERR_SIZE, "%.400s", e.message);
        molt_db_error_clear(&e);
        molt_db_loop_free(b->loop);
        free(b);
        return -1;
    }
    b->types = mw_pg_types_new(b->pool);
    if (!b->types) {
        molt_db_pool_close(b->pool, free_loop_once_closed, b->loop);
        snprintf(err, MW_ERR_SIZE, "out of memory");
        free(b);
        return -1;
    }
    *out = &b->base;
    return 0;
}
