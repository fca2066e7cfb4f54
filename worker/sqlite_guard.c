/*
 * The hardening of a SQLite connection at open and the authorizer that
 * decides, by what a statement does, whether a request may run it
 * (sqlite_guard.h says what and why).
 */
#include <stdio.h>
#include <string.h>

#include "sqlite_guard.h"

/* ---- PRAGMAs: an allowlist -------------------------------------------- */

/* What each listed PRAGMA may do; a PRAGMA not listed is refused. The
 * "argument" is the value after `=` or in parentheses: given, most PRAGMAs
 * change a setting, and a setting outlives the request. */
enum {
    P_READ = 1,     /* without an argument (a read), in any request */
    P_READ_ARG = 2, /* with an argument naming what to read, in any request */
    P_SET_DB = 4,   /* with an argument, in db_exec: kept in the database
                       file, not the connection (user_version) */
    P_MAINT = 8,    /* in db_exec, with or without an argument: maintenance
                       that changes no setting (optimize, wal_checkpoint) */
    P_IN_TX = 16    /* with an argument, in db_exec inside the request's own
                       transaction, whose end resets it (defer_foreign_keys) */
};

static const struct {
    const char *name;
    int allow;
} pragmas[] = {
    {"analysis_limit", P_READ},
    {"application_id", P_READ | P_SET_DB},
    {"auto_vacuum", P_READ},
    {"automatic_index", P_READ},
    {"busy_timeout", P_READ},
    {"cache_size", P_READ},
    {"cache_spill", P_READ},
    {"cell_size_check", P_READ},
    {"checkpoint_fullfsync", P_READ},
    {"collation_list", P_READ},
    {"compile_options", P_READ},
    {"data_version", P_READ},
    {"database_list", P_READ},
    {"defer_foreign_keys", P_READ | P_IN_TX},
    {"encoding", P_READ},
    {"foreign_key_check", P_READ | P_READ_ARG},
    {"foreign_key_list", P_READ_ARG},
    {"foreign_keys", P_READ},
    {"freelist_count", P_READ},
    {"fullfsync", P_READ},
    {"function_list", P_READ},
    {"hard_heap_limit", P_READ},
    {"ignore_check_constraints", P_READ},
    {"incremental_vacuum", P_MAINT},
    {"index_info", P_READ_ARG},
    {"index_list", P_READ_ARG},
    {"index_xinfo", P_READ_ARG},
    {"integrity_check", P_READ | P_READ_ARG},
    {"journal_mode", P_READ},
    {"journal_size_limit", P_READ},
    {"legacy_alter_table", P_READ},
    {"locking_mode", P_READ},
    {"max_page_count", P_READ},
    {"mmap_size", P_READ},
    {"module_list", P_READ},
    {"optimize", P_MAINT},
    {"page_count", P_READ},
    {"page_size", P_READ},
    {"pragma_list", P_READ},
    {"query_only", P_READ},
    {"quick_check", P_READ | P_READ_ARG},
    {"read_uncommitted", P_READ},
    {"recursive_triggers", P_READ},
    {"reverse_unordered_selects", P_READ},
    {"schema_version", P_READ},
    {"secure_delete", P_READ},
    {"soft_heap_limit", P_READ},
    {"synchronous", P_READ},
    {"table_info", P_READ_ARG},
    {"table_list", P_READ | P_READ_ARG},
    {"table_xinfo", P_READ_ARG},
    {"temp_store", P_READ},
    {"threads", P_READ},
    {"trusted_schema", P_READ},
    {"user_version", P_READ | P_SET_DB},
    {"wal_autocheckpoint", P_READ},
    {"wal_checkpoint", P_MAINT},
    {"writable_schema", P_READ},
};

/* `schema` is the PRAGMA's schema as written (NULL: none, the main
 * database). Setting and maintenance only on main: TEMP is the
 * connection's and outlives the request. */
static int pragma_allowed(const mw_sq_guard *g, const char *name, const char *arg,
                          const char *schema)
{
    int allow = 0;
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++)
        if (name && !sqlite3_stricmp(name, pragmas[i].name)) {
            allow = pragmas[i].allow;
            break;
        }
    if (!arg && (allow & P_READ))
        return 1;
    if (arg && (allow & P_READ_ARG))
        return 1;
    if (g->mode != MW_SQ_WRITE || (schema && sqlite3_stricmp(schema, "main")))
        return 0;
    if (allow & P_MAINT)
        return 1;
    if (arg && (allow & P_SET_DB))
        return 1;
    return arg && (allow & P_IN_TX) && !sqlite3_get_autocommit(g->db);
}

/* ---- the authorizer ------------------------------------------------------ */

/* Functions no request may call: fts3_tokenizer reads (one argument) and
 * replaces (two, allowed by SQLite with a bound parameter even when the
 * two-argument form is off) a tokenizer as a raw pointer; load_extension
 * loads code. */
static int function_denied(const char *name)
{
    return name && (!sqlite3_stricmp(name, "fts3_tokenizer") ||
                    !sqlite3_stricmp(name, "load_extension"));
}

static int is_temp(const char *db)
{
    return db && !sqlite3_stricmp(db, "temp");
}

static int deny(mw_sq_guard *g, const char *what, const char *name)
{
    snprintf(g->denied, sizeof g->denied, "%s%s%.64s", what, name ? " " : "",
             name ? name : "");
    return SQLITE_DENY;
}

/* The arguments per action are listed in sqlite3.h ("Authorizer Action
 * Codes"); `db` is the database name where the action has one. */
static int authorize(void *ud, int action, const char *a1, const char *a2,
                     const char *db, const char *trigger)
{
    mw_sq_guard *g = ud;
    (void)trigger;
    if (g->mode == MW_SQ_WORKER)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        return function_denied(a2) ? deny(g, "the function", a2) : SQLITE_OK;
    case SQLITE_PRAGMA:
        if (pragma_allowed(g, a1, a2, db))
            return SQLITE_OK;
        return deny(g, a2 ? "a PRAGMA that sets a value:" : "the PRAGMA", a1);
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        return deny(g, "ATTACH, DETACH or VACUUM (which attaches)", NULL);
    case SQLITE_TRANSACTION:
        return deny(g, "transaction control (db_exec's statements run in one "
                       "transaction)", NULL);
    case SQLITE_SAVEPOINT:
        /* inside the request's transaction, whose end ends them */
        if (g->mode == MW_SQ_WRITE && !sqlite3_get_autocommit(g->db) && !g->worker_tx)
            return SQLITE_OK;
        return deny(g, g->worker_tx ? "a savepoint in SQL (nest tx_begin instead)"
                                    : "a savepoint outside db_exec's statements", NULL);
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
        return deny(g, "a TEMP object (it would outlive the request)", NULL);
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        /* row writes in db_query: see sqlite_guard.h */
        break;
    case SQLITE_COPY:
        return deny(g, "COPY", NULL);
    default:
        /* CREATE, DROP, ALTER, ANALYZE, REINDEX, virtual tables */
        if (g->mode != MW_SQ_WRITE)
            return deny(g, "a schema change", NULL);
        break;
    }
    /* TEMP objects also by name: CREATE TRIGGER temp.t ... ON main.t
     * reports CREATE_TRIGGER on main, then its INSERT into temp */
    if (is_temp(db))
        return deny(g, "a TEMP object (it would outlive the request)", NULL);
    return SQLITE_OK;
}

/* ---- hardening at open ------------------------------------------------- */

int mw_sqlite_guard_open(mw_sq_guard *g, sqlite3 *db, const mw_sq_hardening *h)
{
    static const struct {
        int op, on;
    } flags[] = {
        /* no writes to sqlite_schema, shadow tables or sqlite_dbpage, no
         * journal_mode=OFF, no schema_version=N */
        {SQLITE_DBCONFIG_DEFENSIVE, 1},
        /* foreign keys enforced, as on Django's own connections */
        {SQLITE_DBCONFIG_ENABLE_FKEY, 1},
        {SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0},
        {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0},
        {SQLITE_DBCONFIG_WRITABLE_SCHEMA, 0},
        {SQLITE_DBCONFIG_RESET_DATABASE, 0},
    };
    int rc = SQLITE_OK;
    g->db = db;
    g->mode = MW_SQ_WORKER;
    g->denied[0] = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0] && rc == SQLITE_OK; i++)
        rc = sqlite3_db_config(db, flags[i].op, flags[i].on, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, h->trusted_schema != 0,
                               (int *)NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, h->max_value_bytes);
    return sqlite3_set_authorizer(db, authorize, g);
}
