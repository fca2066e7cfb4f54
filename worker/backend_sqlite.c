/*
 * SQLite backend: statements run on their connection's own thread (a lane,
 * lane.h), so the loop never blocks and no alias waits for a thread
 * another alias holds. A small pool of connections per alias
 * (sqlite_conns), each used by one job at a time; jobs wait FIFO for a
 * free connection. WAL on file databases, a busy
 * timeout, and for db_query a query-only connection plus
 * sqlite3_stmt_readonly and an authorizer (no ATTACH, DETACH, transaction
 * control or settings pragmas): a write attempt is DbError 25006.
 *
 * Rows are encoded on the pool thread into the request's result (which the
 * loop thread does not touch while the job runs). Streaming: a job stops
 * after each batch, the loop sends the parts, and the job is queued again.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "backend.h"
#include "lane.h"
#include "log.h"
#include "molt_db/types.h"
#include "mpbuf.h"
#include "msgpack_check.h"
#include "request.h"
#include "session.h"
#include "sqlite_django.h"
#include "sqlite_guard.h"
#include "sqlite_temp_cap.h"
#include "worker.h"

typedef struct sq_conn {
    mw_lane lane;          /* the thread that runs this connection's work */
    /* set by its lane thread once opened; a cancel on the loop thread reads
     * it to interrupt a running step */
    sqlite3 *_Atomic db;
    mw_sq_guard guard;     /* the authorizer's state */
    struct sq_conn *next;
} sq_conn;

typedef struct sq_job sq_job;
typedef struct sq_tx sq_tx;

typedef struct sq_backend {
    mw_backend base;
    mw_lanes lanes;
    mw_sq_temp_cap temp;   /* the VFS of its connections */
    mw_task sweep;         /* answers the cancelled waiters (sweep_later) */
    int sweep_due;
    sq_conn *idle;
    int nconns;            /* connections created (open or to open) */
    int in_use;
    sq_job *wait_head, *wait_tail;
    size_t waiters;
    int closing;
    void (*close_done)(mw_worker *w);
    char uri[128];         /* :memory: databases: a shared-cache name */
    uint64_t jobs, errors;
} sq_backend;

struct sq_job {
    mw_task task;          /* first: the lane hands it back */
    sq_backend *b;
    mw_request *r;
    sq_conn *c;
    sq_job *next;          /* wait queue */
    atomic_int cancelled;
    atomic_int running;
    size_t si;             /* current statement */
    sqlite3_stmt *stmt;
    int begun;             /* BEGIN sent (statements list) */
    int in_tx;             /* runs in a session's transaction (tx.h) */
    int finished;          /* all done (ok or error) */
    int have_row;          /* a stepped row not yet encoded */
    uint64_t text_cols;    /* arrow: columns made Utf8 (values off their
                              declared affinity) */
    int paused;            /* between batches, waiting for the client */
    int status;            /* mw_status */
    char msg[MOLT_DB_ERROR_MESSAGE_SIZE];
    molt_db_error err;     /* sqlstate for DbError */
    uint64_t t_start, t_end;
    int64_t rows_affected, last_id;
    int has_last_id;
};

/* A session's transaction: its connection, and the step running on it. */
struct sq_tx {
    mw_task task;          /* first: the lane hands it back */
    sq_backend *b;
    sq_conn *c;
    mw_tx *t;
    char sql[96];          /* the step's SQL, run in the worker's mode */
    int begin;             /* the step is BEGIN: the connection is new to it */
    int end;               /* COMMIT or ROLLBACK: the connection goes back */
    int status;            /* mw_status */
    molt_db_error err;
};

static void dispatch(sq_backend *b);

/* ---- errors ------------------------------------------------------------- */

static const char *sqlstate_of(int code, int readonly)
{
    switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
        switch (code) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY: return "23505";
        case SQLITE_CONSTRAINT_NOTNULL: return "23502";
        case SQLITE_CONSTRAINT_FOREIGNKEY: return "23503";
        case SQLITE_CONSTRAINT_CHECK: return "23514";
        default: return "23000";
        }
    case SQLITE_READONLY: return "25006";
    case SQLITE_AUTH: return readonly ? "25006" : "42501";
    case SQLITE_INTERRUPT: return "57014";
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return "55P03";
    case SQLITE_TOOBIG: return "54000";
    case SQLITE_MISMATCH: return "42804";
    case SQLITE_RANGE: return "22023";
    case SQLITE_NOMEM: return "53200";
    case SQLITE_FULL: return "53100";
    case SQLITE_ERROR: return "42000";
    default: return "58000";
    }
}

static void job_fail(sq_job *j, int status, const char *sqlstate, const char *fmt,
                     const char *a)
{
    j->status = status;
    snprintf(j->msg, sizeof j->msg, fmt, a);
    molt_db_error_set(&j->err, MOLT_DB_ESERVER, "%s", j->msg);
    if (sqlstate)
        snprintf(j->err.sqlstate, sizeof j->err.sqlstate, "%s", sqlstate);
    j->finished = 1;
}

static void db_fail(sq_job *j, int code)
{
    int ro = !j->r->q.write;
    const char *m = j->c->db ? sqlite3_errmsg(j->c->db) : sqlite3_errstr(code);
    if (atomic_load(&j->cancelled)) {
        job_fail(j, MW_CANCELLED, "57014", "%s", "statement cancelled");
        return;
    }
    if (j->c->guard.denied[0]) {
        /* the authorizer refused (SQLITE_AUTH; SQLITE_ERROR for a function) */
        job_fail(j, MW_DB_ERROR, ro ? "25006" : "42501",
                 ro ? "cannot run this statement in a read-only query (db_query): %s"
                    : "db_exec may not run this statement: %s",
                 j->c->guard.denied);
        return;
    }
    if ((code & 0xff) == SQLITE_AUTH && ro)
        m = "cannot run this statement in a read-only query (db_query)";
    job_fail(j, MW_DB_ERROR, sqlstate_of(code, ro), "%s", m);
}

/* ---- pool thread -------------------------------------------------------- */

/* Why a connection could not be opened. */
typedef struct open_error {
    int status;            /* mw_status */
    const char *sqlstate;  /* or NULL */
    char msg[MOLT_DB_ERROR_MESSAGE_SIZE];
} open_error;

static int conn_open_failed(sqlite3 *db, open_error *e, int status, const char *sqlstate,
                            const char *fmt, const char *detail)
{
    e->status = status;
    e->sqlstate = sqlstate;
    snprintf(e->msg, sizeof e->msg, fmt, detail);
    sqlite3_close(db);
    return -1;
}

/* Opens c's database on its lane thread; c->db is set only once it is
 * ready, so a cancel never sees a handle that is being closed. */
static int conn_open(sq_backend *b, sq_conn *c, open_error *e)
{
    const mw_alias *a = b->base.alias;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                SQLITE_OPEN_URI;
    const char *name = a->sqlite_path ? a->sqlite_path : b->uri;
    if (a->sqlite_path && !strncmp(name, "file:", 5))
        flags &= ~SQLITE_OPEN_URI;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(name, &db, flags, b->temp.name);
    if (rc != SQLITE_OK)
        return conn_open_failed(db, e, MW_DB_ERROR, "08006", "cannot open the SQLite database: %s",
                                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    mw_sq_hardening h = {a->sqlite_trusted_schema, a->sqlite_max_value_bytes};
    rc = mw_sqlite_guard_open(&c->guard, db, &h);
    if (rc != SQLITE_OK)
        return conn_open_failed(db, e, MW_INTERNAL_ERROR, NULL,
                                "cannot harden the SQLite connection: %s", sqlite3_errstr(rc));
    if (a->sqlite_django_functions && mw_sqlite_django_register(db) != SQLITE_OK)
        return conn_open_failed(db, e, MW_INTERNAL_ERROR, NULL, "cannot register SQL functions: %s",
                                sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, a->sqlite_busy_timeout_ms);
    sqlite3_extended_result_codes(db, 1);
    if (a->sqlite_path && a->sqlite_wal)
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    c->db = db;
    return 0;
}

/* The worker's own statements (query_only, BEGIN, COMMIT) run with the
 * guard in its worker mode: the client's mode is on only between
 * request_begin and the next worker_exec or request_end. */
static int worker_exec(sq_job *j, const char *sql)
{
    j->c->guard.mode = MW_SQ_WORKER;
    j->c->guard.denied[0] = 0;
    int rc = sqlite3_exec(j->c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        db_fail(j, rc);
        return -1;
    }
    return 0;
}

static int bind_values(sq_job *j, const mw_stmt *s)
{
    for (size_t k = 0; k < s->rw.nslots; k++) {
        const mw_value *v = &s->values[s->rw.slot_value[k]];
        int idx = (int)k + 1, rc;
        switch (v->t) {
        case MW_V_NIL: rc = sqlite3_bind_null(j->stmt, idx); break;
        case MW_V_BOOL:
        case MW_V_INT: rc = sqlite3_bind_int64(j->stmt, idx, v->i); break;
        case MW_V_FLOAT: rc = sqlite3_bind_double(j->stmt, idx, v->f); break;
        case MW_V_STR:
            rc = sqlite3_bind_text64(j->stmt, idx, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case MW_V_BIN:
            rc = sqlite3_bind_blob64(j->stmt, idx, v->p, v->n, SQLITE_STATIC);
            break;
        default: rc = SQLITE_MISMATCH; break;
        }
        if (rc != SQLITE_OK) {
            db_fail(j, rc);
            return -1;
        }
    }
    return 0;
}

static int first_keyword_is(const char *sql, const char *kw)
{
    while (*sql && isspace((unsigned char)*sql))
        sql++;
    size_t n = strlen(kw);
    return strncasecmp(sql, kw, n) == 0 && !isalnum((unsigned char)sql[n]);
}

static int prepare(sq_job *j)
{
    const mw_stmt *s = &j->r->q.stmts[j->si];
    const char *tail = NULL;
    j->c->guard.denied[0] = 0;
    int rc = sqlite3_prepare_v3(j->c->db, s->rw.sql, (int)s->rw.sql_len + 1, 0,
                                &j->stmt, &tail);
    if (rc != SQLITE_OK) {
        db_fail(j, rc);
        return -1;
    }
    if (!j->stmt) {
        job_fail(j, MW_INVALID_INPUT, NULL, "%s", "sql holds no statement");
        return -1;
    }
    while (tail && *tail && (isspace((unsigned char)*tail) || *tail == ';'))
        tail++;
    if (tail && *tail) {
        job_fail(j, MW_INVALID_INPUT, NULL, "%s",
                 "sql must hold one statement (use statements for several)");
        return -1;
    }
    if (!j->r->q.write && !sqlite3_stmt_readonly(j->stmt)) {
        job_fail(j, MW_DB_ERROR, "25006", "%s",
                 "cannot execute a write in a read-only query (db_query)");
        return -1;
    }
    return bind_values(j, s);
}

/* ---- values: one entry per SQLite storage class ---- */

/* Writes column i of the current row; returns the bytes it read. */
typedef uint64_t (*sq_write_fn)(mw_enc *e, sqlite3_stmt *st, int i);

static uint64_t write_integer(mw_enc *e, sqlite3_stmt *st, int i)
{
    e->ops->i64(e, sqlite3_column_int64(st, i));
    return 8;
}

static uint64_t write_float(mw_enc *e, sqlite3_stmt *st, int i)
{
    e->ops->f64(e, sqlite3_column_double(st, i), NULL);
    return 8;
}

static uint64_t write_text(mw_enc *e, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (t == NULL)
        t = (const unsigned char *)"";
    if (mw_utf8_valid(t, n))
        e->ops->str(e, (const char *)t, n);
    else
        e->ops->bin(e, t, n); /* not UTF-8: bytes, not a str */
    return n;
}

static uint64_t write_blob(mw_enc *e, sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
    e->ops->bin(e, p ? p : "", n);
    return n;
}

static uint64_t write_null(mw_enc *e, sqlite3_stmt *st, int i)
{
    (void)st, (void)i;
    e->ops->nil(e);
    return 0;
}

typedef struct sq_class {
    const char *name;   /* a column's type when it declares none */
    sq_write_fn write;  /* MsgPack/JSON (docs/ipc-contract.md section 7) */
} sq_class;

static const sq_class sq_classes[] = {
    [SQLITE_INTEGER] = {"integer", write_integer},
    [SQLITE_FLOAT] = {"real", write_float},
    [SQLITE_TEXT] = {"text", write_text},
    [SQLITE_BLOB] = {"blob", write_blob},
    [SQLITE_NULL] = {"null", write_null},
};

static const sq_class *sq_class_of(int storage_class)
{
    if (storage_class < SQLITE_INTEGER || storage_class > SQLITE_NULL)
        storage_class = SQLITE_NULL;
    return &sq_classes[storage_class];
}

/* Encodes the current row, each value only while the result stays within
 * max_result_bytes (the row's values are SQLite's until encoded: a wide
 * row of large values is never copied whole); past it res->too_large is
 * set and the row stays unfinished (the request fails, see run_rows). */
static void encode_row(sq_job *j)
{
    mw_result *res = &j->r->res;
    int n = sqlite3_column_count(j->stmt);
    mw_result_row_begin(res);
    for (int i = 0; i < n; i++) {
        int t = sqlite3_column_type(j->stmt, i);
        uint64_t size = t == SQLITE_TEXT || t == SQLITE_BLOB
                            ? (uint64_t)sqlite3_column_bytes(j->stmt, i) : 8;
        if (!mw_result_room(res, size))
            return;
        mw_result_key(res, (size_t)i);
        res->bytes_in += sq_class_of(t)->write(&res->enc, j->stmt, i);
    }
    mw_result_row_end(res);
}

/* Arrow: SQLite columns as PostgreSQL-typed binary fields for the builder
 * (declared affinity: INTEGER int8, REAL float8, TEXT text, BLOB bytea;
 * anything else text). */
static uint32_t arrow_oid(sqlite3_stmt *st, int i)
{
    const char *d = sqlite3_column_decltype(st, i);
    char u[64] = {0};
    for (size_t k = 0; d && d[k] && k < sizeof u - 1; k++)
        u[k] = (char)toupper((unsigned char)d[k]);
    if (strstr(u, "INT"))
        return MOLT_DB_OID_INT8;
    if (strstr(u, "CHAR") || strstr(u, "CLOB") || strstr(u, "TEXT"))
        return MOLT_DB_OID_TEXT;
    if (strstr(u, "BLOB"))
        return MOLT_DB_OID_BYTEA;
    if (strstr(u, "REAL") || strstr(u, "FLOA") || strstr(u, "DOUB"))
        return MOLT_DB_OID_FLOAT8;
    return MOLT_DB_OID_TEXT;
}

static void arrow_fields(sq_job *j, molt_db_column *cols, int n)
{
    for (int i = 0; i < n; i++) {
        cols[i].name = sqlite3_column_name(j->stmt, i);
        cols[i].type_oid = (j->text_cols >> i & 1) ? MOLT_DB_OID_TEXT
                                                   : arrow_oid(j->stmt, i);
        cols[i].type_modifier = -1;
        cols[i].format = 1;
    }
}

static int arrow_columns(sq_job *j, molt_db_column *cols, int n)
{
    int rc = mw_result_pg_columns(&j->r->res, cols, (size_t)n, &j->err);
    if (rc != MOLT_DB_OK) {
        job_fail(j, MW_INTERNAL_ERROR, NULL, "%s", j->err.message);
        return -1;
    }
    return 0;
}

static int arrow_row(sq_job *j, const molt_db_column *cols, int n)
{
    molt_db_field f[64];
    uint8_t num[64][8];
    if (n > 64) {
        job_fail(j, MW_INVALID_INPUT, NULL, "%s",
                 "arrow_ipc on SQLite takes at most 64 columns for now");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int t = sqlite3_column_type(j->stmt, i);
        f[i].len = -1;
        f[i].data = NULL;
        if (t == SQLITE_NULL)
            continue;
        uint64_t bits;
        switch (cols[i].type_oid) {
        case MOLT_DB_OID_INT8:
            if (t != SQLITE_INTEGER)
                goto mismatch;
            bits = (uint64_t)sqlite3_column_int64(j->stmt, i);
            goto be8;
        case MOLT_DB_OID_FLOAT8: {
            if (t != SQLITE_FLOAT && t != SQLITE_INTEGER)
                goto mismatch;
            double dv = sqlite3_column_double(j->stmt, i);
            memcpy(&bits, &dv, 8);
            goto be8;
        }
        case MOLT_DB_OID_BYTEA:
            f[i].data = sqlite3_column_blob(j->stmt, i);
            f[i].len = sqlite3_column_bytes(j->stmt, i);
            if (!f[i].data)
                f[i].data = (const uint8_t *)"";
            continue;
        default:
            f[i].data = sqlite3_column_text(j->stmt, i);
            f[i].len = sqlite3_column_bytes(j->stmt, i);
            if (!f[i].data)
                f[i].data = (const uint8_t *)"";
            continue;
        }
    be8:
        for (int k = 0; k < 8; k++)
            num[i][k] = (uint8_t)(bits >> (56 - 8 * k));
        f[i].data = num[i];
        f[i].len = 8;
        continue;
    mismatch:
        if (!j->r->res.aw) {
            /* no schema went out yet: run again with this column as Utf8 */
            j->text_cols |= (uint64_t)1 << i;
            return 2;
        }
        job_fail(j, MW_DB_ERROR, "42804",
                 "column %s: a value does not fit the column's declared type "
                 "after the stream's first batch fixed it (arrow_ipc on SQLite)",
                 cols[i].name);
        return -1;
    }
    int rc = mw_result_pg_row(&j->r->res, cols, f, (size_t)n, &j->err);
    if (rc < 0) {
        char sqlstate[sizeof j->err.sqlstate];
        memcpy(sqlstate, j->err.sqlstate, sizeof sqlstate);
        job_fail(j, mw_result_error_status(&j->err), sqlstate[0] ? sqlstate : NULL, "%s",
                 j->err.message);
        return -1;
    }
    return rc; /* 1: max_rows reached; 2: run again (text_cols grew) */
}

static int columns(sq_job *j)
{
    int n = sqlite3_column_count(j->stmt);
    mw_result *res = &j->r->res;
    if (res->o.format == MW_FORMAT_ARROW && !j->r->q.write)
        return 0; /* set up with the first batch, see run_rows */
    const char **names = calloc((size_t)n + 1, sizeof *names);
    const char **types = calloc((size_t)n + 1, sizeof *types);
    char (*tb)[32] = calloc((size_t)n + 1, sizeof *tb);
    int rc = -1;
    if (names && types && tb) {
        for (int i = 0; i < n; i++) {
            names[i] = sqlite3_column_name(j->stmt, i);
            const char *d = sqlite3_column_decltype(j->stmt, i);
            if (!d)
                d = sq_class_of(j->have_row ? sqlite3_column_type(j->stmt, i)
                                            : SQLITE_NULL)->name;
            size_t k = 0;
            for (; d[k] && k < sizeof tb[i] - 1; k++)
                tb[i][k] = (char)tolower((unsigned char)d[k]);
            tb[i][k] = 0;
            types[i] = tb[i];
        }
        rc = mw_result_columns(res, (size_t)n, names, types) == MOLT_DB_OK ? 0 : -1;
    }
    free(names);
    free(types);
    free(tb);
    if (rc < 0)
        job_fail(j, MW_INTERNAL_ERROR, NULL, "%s", "out of memory");
    return rc;
}

/* Steps the current statement: rows until done, max_rows or (streaming) a
 * full batch. Returns 1 when the statement finished, 0 to continue later,
 * -1 on error. */
static int run_rows(sq_job *j)
{
    mw_result *res = &j->r->res;
    int arrow = res->o.format == MW_FORMAT_ARROW && !j->r->q.write;
    int n = sqlite3_column_count(j->stmt);
    molt_db_column cols[64];
    if (arrow && n > 64) {
        job_fail(j, MW_INVALID_INPUT, NULL, "%s",
                 "arrow_ipc on SQLite takes at most 64 columns for now");
        return -1;
    }
    if (arrow) {
        arrow_fields(j, cols, n);
        if (!res->ab && arrow_columns(j, cols, n) < 0)
            return -1;
    }
    uint64_t batch_start = res->row_count;
    for (;;) {
        if (atomic_load(&j->cancelled)) {
            db_fail(j, SQLITE_INTERRUPT);
            return -1;
        }
        if (!j->have_row) {
            int rc = sqlite3_step(j->stmt);
            if (rc == SQLITE_DONE)
                return 1;
            if (rc != SQLITE_ROW) {
                db_fail(j, rc);
                return -1;
            }
            j->have_row = 1;
            if (!res->have_columns && !arrow && columns(j) < 0)
                return -1;
        }
        if (res->o.max_rows && res->row_count >= res->o.max_rows) {
            res->truncated = 1;
            return 1; /* stop reading; the statement is reset below */
        }
        uint64_t e0 = uv_hrtime();
        if (arrow) {
            int rc = arrow_row(j, cols, n);
            if (rc < 0)
                return -1;
            if (rc == 2) {
                /* a column becomes Utf8: the rows so far are dropped with
                 * the builder and read again (db_query only reads) */
                res->total_rows -= res->row_count;
                sqlite3_reset(j->stmt);
                j->have_row = 0;
                arrow_fields(j, cols, n);
                if (arrow_columns(j, cols, n) < 0)
                    return -1;
                batch_start = res->row_count;
                continue;
            }
        } else {
            encode_row(j);
        }
        res->encode_ns += uv_hrtime() - e0;
        j->have_row = 0;
        if (mw_result_ok(res) != MOLT_DB_OK) {
            job_fail(j, MW_INTERNAL_ERROR, NULL, "%s", "out of memory");
            return -1;
        }
        if (res->o.stream && res->row_count - batch_start >= res->o.batch_rows)
            return 0;
    }
}

static void finish_stmt(sq_job *j)
{
    const mw_stmt *s = &j->r->q.stmts[j->si];
    mw_result *res = &j->r->res;
    if (!res->have_columns && sqlite3_column_count(j->stmt) > 0 &&
        !(res->o.format == MW_FORMAT_ARROW && !j->r->q.write))
        columns(j);
    if (j->r->q.write) {
        int64_t changes = sqlite3_stmt_readonly(j->stmt) ? 0 : sqlite3_changes64(j->c->db);
        int ins = first_keyword_is(s->rw.sql, "INSERT") ||
                  first_keyword_is(s->rw.sql, "REPLACE");
        int64_t lid = sqlite3_last_insert_rowid(j->c->db);
        j->rows_affected += changes;
        if (ins) {
            j->has_last_id = 1;
            j->last_id = lid;
        }
        mw_result_stmt_end(res, changes, ins, lid);
    }
    sqlite3_finalize(j->stmt);
    j->stmt = NULL;
}

/* The connection's state for a request is set here and put back by
 * request_end, and nowhere else: query_only, the guard's mode, the
 * transaction of `statements`. */
static int request_begin(sq_job *j)
{
    const mw_query *q = &j->r->q;
    if (j->in_tx) {
        /* the session's transaction set query_only and began; SQLite ends
         * a transaction by itself on some errors (an interrupted write, a
         * full disk): then nothing may run as if it were still open */
        if (sqlite3_get_autocommit(j->c->db)) {
            job_fail(j, MW_DB_ERROR, "25P02", "%s", "the transaction was rolled "
                     "back by SQLite (after an error or a cancel): roll it back");
            return -1;
        }
        j->c->guard.mode = q->write ? MW_SQ_WRITE : MW_SQ_READ;
        return 0;
    }
    if (worker_exec(j, q->write ? "PRAGMA query_only=0" : "PRAGMA query_only=1") < 0)
        return -1;
    if (q->write && q->statements) {
        if (worker_exec(j, q->isolation == MW_ISO_READ_COMMITTED ? "BEGIN IMMEDIATE"
                                                                : "BEGIN EXCLUSIVE") < 0)
            return -1;
        j->begun = 1;
    }
    j->c->guard.mode = q->write ? MW_SQ_WRITE : MW_SQ_READ;
    return 0;
}

/* Ends the request's use of the connection however it ended (done, error,
 * cancel, timeout, a stream left early: work() and after_work() both come
 * here): the statement finalized, a transaction still open rolled back,
 * the guard back in the worker's mode. */
static void request_end(sq_job *j)
{
    if (j->stmt) {
        sqlite3_finalize(j->stmt);
        j->stmt = NULL;
    }
    j->c->guard.mode = MW_SQ_WORKER;
    /* no request can open a transaction of its own (the guard refuses
     * BEGIN); be sure anyway. A session's transaction stays open. */
    if (j->c->db && !j->in_tx && (j->begun || !sqlite3_get_autocommit(j->c->db)))
        sqlite3_exec(j->c->db, "ROLLBACK", NULL, NULL, NULL);
    j->begun = 0;
}

static int job_cancelled(void *ud)
{
    return atomic_load(&((sq_job *)ud)->cancelled);
}

static void work(mw_task *t)
{
    sq_job *j = (sq_job *)t;
    mw_request *r = j->r;
    const mw_query *q = &r->q;
    atomic_store(&j->running, 1);
    if (!j->t_start)
        j->t_start = uv_hrtime();
    if (atomic_load(&j->cancelled) && !j->stmt && j->si == 0 && !j->begun) {
        /* cancelled before it started */
        job_fail(j, MW_CANCELLED, NULL, "%s", "cancelled");
        goto out;
    }
    if (!j->c->db) {
        open_error e;
        if (conn_open(j->b, j->c, &e) < 0) {
            job_fail(j, e.status, e.sqlstate, "%s", e.msg);
            goto out;
        }
    }
    /* sqlite3_interrupt from the loop is lost when it lands between our
     * check of `cancelled` and sqlite3_step; a progress handler reading the
     * flag cannot miss it. Removed again before this slice returns. */
    sqlite3_progress_handler(j->c->db, 1000, job_cancelled, j);
    if (!j->stmt && j->si == 0 && !j->begun && request_begin(j) < 0)
        goto out; /* first slice */
    while (j->si < q->nstmts) {
        if (!j->stmt && prepare(j) < 0)
            goto out;
        int rc = run_rows(j);
        if (rc < 0)
            goto out;
        if (rc == 0)
            goto slice; /* a streamed batch is ready */
        finish_stmt(j);
        j->si++;
    }
    if (j->begun) {
        if (worker_exec(j, "COMMIT") < 0)
            goto out;
        j->begun = 0;
    }
    j->status = MW_OK;
    j->finished = 1;
out:
    request_end(j);
    j->t_end = uv_hrtime();
slice:
    if (j->c->db)
        sqlite3_progress_handler(j->c->db, 0, NULL, NULL);
    atomic_store(&j->running, 0);
}

/* ---- loop thread -------------------------------------------------------- */

static void conn_release(sq_backend *b, sq_conn *c)
{
    b->in_use--;
    c->next = b->idle;
    b->idle = c;
    dispatch(b);
}

static void job_free(sq_job *j)
{
    molt_db_error_clear(&j->err);
    free(j);
}

static void after_work(mw_task *t);

/* Hands j to its connection's thread. 0, or -1 (the thread could not start). */
static int job_post(sq_job *j)
{
    j->task.run = work;
    j->task.done = after_work;
    return mw_lane_post(&j->c->lane, &j->task);
}

static void after_work(mw_task *t)
{
    sq_job *j = (sq_job *)t;
    sq_backend *b = j->b;
    mw_request *r = j->r;
    r->t_start = j->t_start;
    mw_request_flush_parts(r);
    if (!j->finished) {
        /* the next streamed batch, unless the client reads slower than we
         * produce: then wait until the session's queue drained */
        if (r->s && r->s->write_bytes > MW_PAUSE_BYTES && !atomic_load(&j->cancelled)) {
            r->paused = 1;
            j->paused = 1;
            return;
        }
        if (job_post(j) == 0)
            return;
        request_end(j);
        j->status = MW_INTERNAL_ERROR;
        snprintf(j->msg, sizeof j->msg, "cannot queue work");
    }
    r->t_exec_end = j->t_end ? j->t_end : uv_hrtime();
    r->rows_affected = j->rows_affected;
    r->has_last_id = j->has_last_id;
    r->last_id = j->last_id;
    if (j->status != MW_OK)
        b->errors++;
    sq_conn *c = j->c;
    int in_tx = j->in_tx;
    r->job = NULL;
    mw_request_db_done(r, (mw_status)j->status, j->msg,
                       j->status == MW_DB_ERROR ? &j->err : NULL);
    job_free(j);
    if (!in_tx) /* a session's transaction keeps its connection */
        conn_release(b, c);
}

static void start_job(sq_backend *b, sq_job *j, sq_conn *c)
{
    j->c = c;
    b->in_use++;
    if (job_post(j) != 0) {
        mw_request *r = j->r;
        r->job = NULL;
        job_free(j);
        conn_release(b, c);
        mw_request_db_done(r, MW_INTERNAL_ERROR, "cannot queue work", NULL);
    }
}

/* A new connection of b (opened by its first job), or NULL. */
static sq_conn *conn_new(sq_backend *b)
{
    sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    mw_lane_init(&c->lane, &b->lanes);
    b->nconns++;
    return c;
}

static void dispatch(sq_backend *b)
{
    while (b->wait_head) {
        sq_job *j = b->wait_head;
        if (atomic_load(&j->cancelled)) {
            b->wait_head = j->next;
            if (!b->wait_head)
                b->wait_tail = NULL;
            b->waiters--;
            mw_request *r = j->r;
            r->job = NULL;
            job_free(j);
            mw_request_db_done(r, MW_CANCELLED, "cancelled", NULL);
            continue;
        }
        sq_conn *c = b->idle;
        if (c) {
            b->idle = c->next;
        } else if (b->nconns < b->base.alias->sqlite_conns) {
            c = conn_new(b);
            if (!c)
                return;
        } else {
            return;
        }
        b->wait_head = j->next;
        if (!b->wait_head)
            b->wait_tail = NULL;
        b->waiters--;
        j->next = NULL;
        start_job(b, j, c);
    }
    if (b->closing && b->in_use == 0 && b->close_done) {
        void (*done)(mw_worker *) = b->close_done;
        b->close_done = NULL;
        while (b->idle) {
            sq_conn *c = b->idle;
            b->idle = c->next;
            mw_lane_stop(&c->lane);
            sqlite3_close(c->db);
            free(c);
        }
        mw_lanes_close(&b->lanes);
        mw_sq_temp_cap_close(&b->temp);
        done(b->base.w);
    }
}

static void sq_start(mw_backend *base, mw_request *r)
{
    sq_backend *b = (sq_backend *)base;
    sq_job *j = mw_request_job_new(r, sizeof *j);
    if (!j)
        return;
    j->b = b;
    j->r = r;
    molt_db_error_init(&j->err);
    atomic_init(&j->cancelled, 0);
    atomic_init(&j->running, 0);
    r->job = j;
    b->jobs++;
    if (r->tx) {
        /* a session's transaction: on its connection, no waiting */
        sq_tx *x = r->tx->handle;
        j->in_tx = 1;
        j->c = x->c;
        if (job_post(j) != 0) {
            r->job = NULL;
            job_free(j);
            mw_request_db_done(r, MW_INTERNAL_ERROR, "cannot queue work", NULL);
        }
        return;
    }
    if (b->wait_tail)
        b->wait_tail->next = j;
    else
        b->wait_head = j;
    b->wait_tail = j;
    b->waiters++;
    dispatch(b);
}

/* Answers every cancelled waiter (Cancelled, unless its request was
 * answered already: a timeout's Timeout is). */
static void sweep(mw_task *t)
{
    sq_backend *b = MW_CONTAINER_OF(t, sq_backend, sweep);
    b->sweep_due = 0;
    /* out of the queue first: an answer may start other work */
    sq_job **at = &b->wait_head, *last = NULL, *gone = NULL, **gone_end = &gone;
    while (*at) {
        sq_job *j = *at;
        if (!atomic_load(&j->cancelled)) {
            last = j;
            at = &j->next;
            continue;
        }
        *at = j->next;
        b->waiters--;
        j->next = NULL;
        *gone_end = j;
        gone_end = &j->next;
    }
    b->wait_tail = last;
    while (gone) {
        sq_job *j = gone;
        gone = j->next;
        mw_request *r = j->r;
        r->job = NULL;
        job_free(j);
        mw_request_db_done(r, MW_CANCELLED, "cancelled", NULL);
    }
}

/* A waiter was cancelled: it is answered in a later turn of the loop, after
 * the canceller's own answer (mw_request_stop answers once cancel
 * returns). */
static void sweep_later(sq_backend *b)
{
    if (b->sweep_due)
        return;
    b->sweep_due = 1;
    b->sweep.done = sweep;
    mw_lanes_defer(&b->lanes, &b->sweep);
}

static void sq_cancel(mw_backend *base, mw_request *r)
{
    sq_backend *b = (sq_backend *)base;
    sq_job *j = r->job;
    if (!j)
        return;
    atomic_store(&j->cancelled, 1);
    if (j->paused) {
        /* not queued anywhere: run it once more to clean up */
        j->paused = 0;
        r->paused = 0;
        if (job_post(j) != 0)
            mw_log("cannot queue the cleanup of a cancelled job");
        return;
    }
    if (j->c) {
        /* on its connection's thread: it stops before it starts, or at
         * the next progress check; an interrupt stops a long step */
        sqlite3 *db = j->c->db;
        if (atomic_load(&j->running) && db)
            sqlite3_interrupt(db);
    } else {
        sweep_later(b);
    }
}

static void sq_resume(mw_backend *base, mw_request *r)
{
    (void)base;
    sq_job *j = r->job;
    if (!j || !j->paused)
        return;
    j->paused = 0;
    if (job_post(j) != 0)
        mw_log("cannot queue the next batch");
}

/* ---- session transactions (tx.h) ---------------------------------------- */


static void tx_error(sq_tx *x, int code, const char *what)
{
    x->status = MW_DB_ERROR;
    molt_db_error_set(&x->err, MOLT_DB_ESERVER, "%s: %s", what,
                      x->c->db ? sqlite3_errmsg(x->c->db) : sqlite3_errstr(code));
    snprintf(x->err.sqlstate, sizeof x->err.sqlstate, "%s", sqlstate_of(code, 0));
}

static void tx_work(mw_task *task)
{
    sq_tx *x = (sq_tx *)task;
    x->status = MW_OK;
    if (!x->c->db) {
        open_error e;
        if (conn_open(x->b, x->c, &e) < 0) {
            x->status = e.status;
            molt_db_error_set(&x->err, MOLT_DB_ESERVER, "%s", e.msg);
            if (e.sqlstate)
                snprintf(x->err.sqlstate, sizeof x->err.sqlstate, "%s", e.sqlstate);
            x->end = 1; /* never began: the connection goes back */
            return;
        }
    }
    sqlite3 *db = x->c->db;
    x->c->guard.mode = MW_SQ_WORKER;
    x->c->guard.denied[0] = 0;
    int rc = sqlite3_exec(db, x->sql, NULL, NULL, NULL);
    /* ROLLBACK of a transaction SQLite already ended is done */
    if (rc != SQLITE_OK && !(x->end && !strcmp(x->sql, "ROLLBACK") &&
                             sqlite3_get_autocommit(db)))
        tx_error(x, rc, x->begin ? "BEGIN failed" : x->sql);
    if (x->begin && rc != SQLITE_OK)
        x->end = 1; /* never began: the connection goes back */
    if (x->end) {
        /* a failed COMMIT leaves the transaction open: roll it back */
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        x->c->guard.worker_tx = 0;
    } else {
        x->c->guard.worker_tx = 1;
    }
}

static void tx_after(mw_task *task)
{
    sq_tx *x = (sq_tx *)task;
    mw_tx *t = x->t;
    /* mw_tx_done may queue x's next step at once: take what it needs */
    int st = x->status, end = x->end;
    molt_db_error err;
    molt_db_error_init(&err);
    if (st != MW_OK)
        molt_db_error_copy(&err, &x->err);
    molt_db_error_clear(&x->err);
    molt_db_error_init(&x->err);
    if (end) {
        t->handle = NULL;
        conn_release(x->b, x->c);
        free(x);
    }
    mw_tx_done(t, (mw_status)st, st != MW_OK ? err.message : NULL,
               st == MW_DB_ERROR ? &err : NULL);
    molt_db_error_clear(&err);
}

/* Queues x's step; on failure answers at once (and lets go of a new
 * connection). */
static void tx_queue(sq_tx *x)
{
    x->task.run = tx_work;
    x->task.done = tx_after;
    if (mw_lane_post(&x->c->lane, &x->task) == 0)
        return;
    x->status = MW_INTERNAL_ERROR;
    molt_db_error_set(&x->err, MOLT_DB_ENOMEM, "cannot queue work");
    if (x->begin)
        x->end = 1;
    tx_after(&x->task);
}

static void sq_tx_begin(mw_backend *base, mw_tx *t, uint32_t timeout_ms)
{
    (void)timeout_ms; /* sched.c gave it a slot: a connection is free */
    sq_backend *b = (sq_backend *)base;
    sq_tx *x = calloc(1, sizeof *x);
    if (!x) {
        mw_tx_done(t, MW_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    sq_conn *c = b->idle;
    if (c)
        b->idle = c->next;
    else if (b->nconns < base->alias->sqlite_conns)
        c = conn_new(b);
    if (!c) {
        free(x);
        mw_tx_done(t, MW_BUSY, "no free SQLite connection for a transaction", NULL);
        return;
    }
    b->in_use++;
    molt_db_error_init(&x->err);
    x->b = b;
    x->c = c;
    x->t = t;
    x->begin = 1;
    t->handle = x;
    snprintf(x->sql, sizeof x->sql, "%s", t->read_only
                 ? "PRAGMA query_only=1; BEGIN"
                 : "PRAGMA query_only=0; BEGIN IMMEDIATE");
    tx_queue(x);
}

static void sq_tx_step(mw_backend *base, mw_tx *t, mw_tx_step step)
{
    (void)base;
    sq_tx *x = t->handle;
    x->begin = 0;
    x->end = step == MW_TX_COMMIT || step == MW_TX_ROLLBACK;
    int d = t->depth;
    switch (step) {
    case MW_TX_SAVEPOINT:
        snprintf(x->sql, sizeof x->sql, "SAVEPOINT molt_sp_%d", d + 1);
        break;
    case MW_TX_RELEASE:
        snprintf(x->sql, sizeof x->sql, "RELEASE molt_sp_%d", d);
        break;
    case MW_TX_ROLLBACK_TO:
        snprintf(x->sql, sizeof x->sql, "ROLLBACK TO molt_sp_%d; RELEASE molt_sp_%d", d, d);
        break;
    case MW_TX_COMMIT: snprintf(x->sql, sizeof x->sql, "COMMIT"); break;
    case MW_TX_ROLLBACK: snprintf(x->sql, sizeof x->sql, "ROLLBACK"); break;
    }
    tx_queue(x);
}

static void sq_stats(mw_backend *base, msgpack_packer *pk)
{
    sq_backend *b = (sq_backend *)base;
    int idle = 0;
    for (sq_conn *c = b->idle; c; c = c->next)
        idle++;
    msgpack_pack_map(pk, 7);
    mw_pack_key(pk, "backend");
    mw_pack_cstr(pk, "sqlite");
    mw_pack_key(pk, "size");
    msgpack_pack_int(pk, b->nconns);
    mw_pack_key(pk, "in_use");
    msgpack_pack_int(pk, b->in_use);
    mw_pack_key(pk, "idle");
    msgpack_pack_int(pk, idle);
    mw_pack_key(pk, "waiters");
    msgpack_pack_uint64(pk, b->waiters);
    mw_pack_key(pk, "requests");
    msgpack_pack_uint64(pk, b->jobs);
    mw_pack_key(pk, "errors");
    msgpack_pack_uint64(pk, b->errors);
}

static void sq_close(mw_backend *base, void (*done)(mw_worker *w))
{
    sq_backend *b = (sq_backend *)base;
    b->closing = 1;
    b->close_done = done;
    dispatch(b);
}

static const mw_backend_ops sq_ops = {"sqlite", sq_start, sq_cancel, sq_resume,
                                      NULL, sq_stats, sq_close, NULL,
                                      sq_tx_begin, sq_tx_step, NULL};

int mw_backend_sqlite_open(mw_worker *w, mw_alias *alias, mw_backend **out,
                           char err[MW_ERR_SIZE])
{
    if (!sqlite3_threadsafe()) {
        snprintf(err, MW_ERR_SIZE, "this SQLite library is not thread-safe");
        return -1;
    }
    if (alias->sqlite_django_functions && !mw_sqlite_django_built()) {
        snprintf(err, MW_ERR_SIZE, "sqlite_django_functions is set, but this molt_worker "
                 "was built without Django's SQLite functions (CMake option "
                 "MOLT_WORKER_DJANGO_SQLITE=OFF)");
        return -1;
    }
    /* process-wide: set by molt_worker, never by a host inside someone
     * else's process (its own sqlite3 users would share the limit) */
    if (!w->cfg->embedded)
        sqlite3_hard_heap_limit64(w->cfg->sqlite_heap_limit_bytes);
    sq_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, MW_ERR_SIZE, "out of memory");
        return -1;
    }
    if (mw_sq_temp_cap_open(&b->temp, alias->sqlite_temp_max_bytes) != SQLITE_OK) {
        free(b);
        snprintf(err, MW_ERR_SIZE, "cannot set up the SQLite connections' VFS");
        return -1;
    }
    if (mw_lanes_init(&b->lanes, w->loop) != 0) {
        mw_sq_temp_cap_close(&b->temp);
        free(b);
        snprintf(err, MW_ERR_SIZE, "cannot set up the SQLite connections' threads");
        return -1;
    }
    b->base.ops = &sq_ops;
    b->base.alias = alias;
    b->base.w = w;
    /* one in-memory database shared by the alias's connections */
    snprintf(b->uri, sizeof b->uri, "file:molt_mem_%p?mode=memory&cache=shared",
             (void *)b);
    *out = &b->base;
    return 0;
}
