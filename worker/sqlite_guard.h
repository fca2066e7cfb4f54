/*
 * What a request may do on one of the worker's SQLite connections.
 *
 * A connection serves every client in turn, so no request, read or write,
 * may leave anything behind that changes what a later request sees or may
 * do: no setting, no attached database, no TEMP object, no open
 * transaction. Two layers, both judging what SQLite compiled rather than
 * how the SQL is spelled:
 *
 *  - mw_sqlite_guard_open hardens the connection once, when it opens:
 *    defensive mode, no two-argument fts3_tokenizer, no extension loading,
 *    trusted_schema as the alias says, foreign keys
 *    enforced, no attached databases at all (SQLITE_LIMIT_ATTACHED 0), a
 *    bound on the size of one value; and installs the authorizer below for
 *    the connection's life.
 *  - the authorizer consults the guard's mode at every prepare: MW_SQ_READ
 *    (db_query) allows reads, the PRAGMAs that only read, and functions
 *    other than fts3_tokenizer and load_extension; MW_SQ_WRITE (db_exec)
 *    allows in addition data and schema changes to the main database, the
 *    database-level PRAGMAs user_version and application_id and the
 *    maintenance ones, and savepoints and defer_foreign_keys inside the
 *    request's own transaction. docs/worker.md has the tables.
 *
 * Row writes in db_query are stopped by sqlite3_stmt_readonly and
 * query_only (backend_sqlite.c), not here: virtual tables such as R*Tree
 * prepare their write statements when a reader first opens them.
 *
 * Threads: a guard belongs to one connection and is used by whichever
 * thread runs that connection's job.
 */
#ifndef MOLT_WORKER_SQLITE_GUARD_H
#define MOLT_WORKER_SQLITE_GUARD_H

#include <sqlite3.h>

typedef enum mw_sq_mode {
    MW_SQ_WORKER = 0, /* the worker's own statements: everything allowed */
    MW_SQ_READ,       /* a db_query */
    MW_SQ_WRITE       /* a db_exec */
} mw_sq_mode;

typedef struct mw_sq_guard {
    sqlite3 *db;
    mw_sq_mode mode;
    int worker_tx;    /* a session's transaction (tx.h) is open: its
                         savepoints are the worker's, none of the client's */
    char denied[128]; /* what the authorizer last refused, "" if nothing */
} mw_sq_guard;

typedef struct mw_sq_hardening {
    int trusted_schema;  /* SQLITE_DBCONFIG_TRUSTED_SCHEMA */
    int max_value_bytes; /* SQLITE_LIMIT_LENGTH */
} mw_sq_hardening;

/* Hardens `db` and installs the authorizer with `g` as its state (mode
 * MW_SQ_WORKER). `g` must outlive `db`. Returns SQLITE_OK, or the code of
 * the first setting SQLite refused. */
int mw_sqlite_guard_open(mw_sq_guard *g, sqlite3 *db, const mw_sq_hardening *h);

#endif
