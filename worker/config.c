/* The typed settings table, flags, the config file and --help. */
#include "config.h"
#include "dsn_hide.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/conninfo.h"
#include "sql_memo.h"
#include "version.h"

typedef enum mw_type {
    T_BOOL,       /* int: true/false/on/off/1/0/yes/no */
    T_INT,        /* int, >= min */
    T_I64,        /* int64_t, >= min */
    T_STR,        /* char *, owned */
    T_MODE,       /* int, octal file mode */
    T_STMT_MODE   /* molt_db_stmt_mode: cached, unnamed, simple */
} mw_type;

typedef struct mw_setting {
    const char *name;
    mw_type type;
    size_t offset;        /* into mw_config or mw_alias */
    int64_t min;
    const char *def;      /* default, as text; NULL: from the pool's defaults */
    const char *help;
} mw_setting;

#define C(f) offsetof(mw_config, f)
#define A(f) offsetof(mw_alias, f)

static const mw_setting worker_settings[] = {
    {"stdio", T_BOOL, C(stdio), 0, "false",
     "serve one client on stdin/stdout"},
    {"socket", T_STR, C(socket_path), 0, "",
     "serve clients on this Unix socket path"},
    {"socket_mode", T_MODE, C(socket_mode), 0, "0600",
     "file mode of the socket (octal)"},
    {"default_timeout_ms", T_INT, C(default_timeout_ms), 1, "30000",
     "deadline of a request without timeout_ms"},
    {"max_rows", T_INT, C(max_rows), 1, "100000",
     "rows a db_query returns unless it asks for fewer (or more)"},
    {"max_request_bytes", T_I64, C(max_request_bytes), 16, "16777216",
     "largest request frame; a larger one closes the connection"},
    {"max_inflight", T_INT, C(max_inflight), 1, "10000",
     "requests in flight in the whole worker; past it: Busy"},
    {"max_session_inflight", T_INT, C(max_session_inflight), 1, "4096",
     "requests in flight on one client connection; past it: Busy"},
    {"tx_idle_timeout_ms", T_INT, C(tx_idle_timeout_ms), 1, "5000",
     "a transaction (tx_begin) with no request for this long is rolled back "
     "and its connection goes back to the pool"},
    {"tx_max_ms", T_INT, C(tx_max_ms), 1, "60000",
     "a transaction open this long is rolled back (its running request is "
     "answered Timeout)"},
    {"max_session_tx", T_INT, C(max_session_tx), 1, "4",
     "open transactions on one client connection; past it tx_begin is Busy"},
    {"tx_alias_share_pct", T_INT, C(tx_alias_share_pct), 1, "50",
     "open transactions may hold this percent (1 to 100) of an alias's "
     "connections (at least one); past it tx_begin is Busy"},
    {"batch_rows", T_INT, C(batch_rows), 1, "8192",
     "rows per streamed frame unless the request says"},
    {"max_timeout_ms", T_INT, C(max_timeout_ms), 1, "3600000",
     "largest timeout_ms a request may ask for; above it: InvalidInput"},
    {"max_result_bytes", T_I64, C(max_result_bytes), 1024, "67108864",
     "largest non-streamed result (and streamed batch); above it the query is "
     "cancelled and answered DbError 54000 (stream instead)"},
    {"max_batch_rows", T_INT, C(max_batch_rows), 1, "100000",
     "largest batch_rows a request may ask for; above it: InvalidInput"},
    {"max_sessions", T_INT, C(max_sessions), 1, "512",
     "client connections at once; one more is answered Busy and closed"},
    {"max_unread_bytes", T_I64, C(max_unread_bytes), 1048576, "134217728",
     "responses queued for one client that it has not read; above it the "
     "session is closed and its requests cancelled"},
    {"max_buffered_request_bytes", T_I64, C(max_buffered_request_bytes), 16,
     "268435456", "request bytes held for all sessions (frames not yet "
     "handled); a session whose bytes pass it is closed"},
    {"max_held_request_bytes", T_I64, C(max_held_request_bytes), 16, "268435456",
     "memory all requests hold from parse until freed (payload, rewritten "
     "SQL, parameters, copy_in rows); a request past it is answered Busy"},
    {"session_request_share_pct", T_INT, C(session_request_share_pct), 1, "25",
     "percent (1 to 100) of max_held_request_bytes the requests of one "
     "client connection may hold; past it: Busy"},
    {"write_timeout_ms", T_INT, C(write_timeout_ms), 1, "30000",
     "a client with more than 8 MiB unread that reads nothing for this long "
     "is closed and its requests cancelled"},
    {"paused_hold_ms", T_INT, C(paused_hold_ms), 1, "2000",
     "a client with more than 8 MiB unread that reads nothing for this long "
     "has its paused queries cancelled while other clients wait for their "
     "connections"},
    {"frame_timeout_ms", T_INT, C(frame_timeout_ms), 1, "10000",
     "a request frame that stays incomplete with no byte arriving for this "
     "long closes its session"},
    {"shutdown_grace_ms", T_INT, C(shutdown_grace_ms), 0, "10000",
     "after SIGTERM/SIGINT, how long in-flight requests may finish"},
    {"metrics_listen", T_STR, C(metrics_listen), 0, "",
     "serve Prometheus text on this IPv4 address (127.0.0.1:PORT; another "
     "address only with metrics_allow_remote)"},
    {"metrics_allow_remote", T_BOOL, C(metrics_allow_remote), 0, "false",
     "let metrics_listen bind a non-loopback address (anyone who reaches it "
     "reads the figures)"},
    {"log_requests", T_BOOL, C(log_requests), 0, "false",
     "write one line per request to stderr"},
    {"log_format", T_STR, C(log_format), 0, "json",
     "json (one object per line) or text, for every log line"},
    {"metrics_max_conns", T_INT, C(metrics_max_conns), 1, "8",
     "connections to the metrics port at once; more are closed at once"},
    {"metrics_timeout_ms", T_INT, C(metrics_timeout_ms), 1, "5000",
     "a metrics connection is closed this long after it was accepted"},
    {"sqlite_heap_limit_bytes", T_I64, C(sqlite_heap_limit_bytes), 0, "1073741824",
     "molt_worker: the memory all SQLite connections may hold at once "
     "(sqlite3_hard_heap_limit64; a statement past it fails DbError 53200); "
     "0: no limit. The in-process host leaves SQLite's process-wide limit "
     "alone"},
    {"allow_core_dumps", T_BOOL, C(allow_core_dumps), 0, "false",
     "let the worker dump core (a core holds DSNs with passwords and rows)"},
    {"max_listeners", T_INT, C(max_listeners), 1, "256",
     "listen requests in the whole worker; past it: Busy"},
    {"max_listen_channels", T_INT, C(max_listen_channels), 1, "64",
     "channels one client connection listens on, over all its listen "
     "requests; past it: Busy"},
    {"listen_queue_notes", T_INT, C(listen_queue_notes), 1, "1000",
     "notes held for a listener whose client does not keep up; newer ones are "
     "dropped and the listener is told how many"},
    {"listen_queue_bytes", T_I64, C(listen_queue_bytes), 0, "67108864",
     "bytes of notes held for every listener of the worker together whose "
     "client does not keep up; past it notes are dropped as past "
     "listen_queue_notes"},
};

static const mw_setting alias_settings[] = {
    {"allow_write", T_BOOL, A(allow_write), 0, "false",
     "grant db.write: db_exec may run on this database"},
    {"allow_privileged_role", T_BOOL, A(allow_privileged_role), 0, "false",
     "PostgreSQL: serve requests although the role is a superuser or may run "
     "programs, touch server files or replicate"},
    {"min_conns", T_INT, A(pool.min_conns), 0, NULL,
     "PostgreSQL: connections kept open"},
    {"max_conns", T_INT, A(pool.max_conns), 1, NULL,
     "PostgreSQL: most connections open"},
    {"max_idle_ms", T_I64, A(pool.max_idle_ms), 0, NULL,
     "PostgreSQL: idle connection above min_conns closed after (0 never)"},
    {"max_lifetime_ms", T_I64, A(pool.max_lifetime_ms), 0, NULL,
     "PostgreSQL: connection replaced after (0 never)"},
    {"lifetime_jitter_pct", T_INT, A(pool.lifetime_jitter_pct), 0, NULL,
     "PostgreSQL: random jitter of the lifetime, 0..50"},
    {"connect_timeout_ms", T_INT, A(pool.connect_timeout_ms), 0, NULL,
     "PostgreSQL: per host attempt (0: the DSN's connect_timeout)"},
    {"query_timeout_ms", T_INT, A(pool.query_timeout_ms), 0, NULL,
     "PostgreSQL: pool's default deadline (the worker's timeout applies first)"},
    {"statement_timeout_ms", T_INT, A(pool.statement_timeout_ms), 0, NULL,
     "PostgreSQL: server-side statement_timeout of every connection (0 the server's)"},
    {"client_check_ms", T_INT, A(pool.client_check_ms), 0, "1000",
     "PostgreSQL: the server checks the worker's socket this often while a query "
     "runs, so a killed worker leaves no query running (PostgreSQL 14+; 0 behind "
     "PgBouncer)"},
    {"max_wait_ms", T_INT, A(pool.max_wait_ms), 0, NULL,
     "PostgreSQL: longest wait for a connection, then Busy (0 no limit)"},
    {"health_check_interval_ms", T_INT, A(pool.health_check_interval_ms), 0, NULL,
     "PostgreSQL: idle connection pinged before reuse after (0 never)"},
    {"statement_cache_size", T_INT, A(pool.statement_cache_size), 0, NULL,
     "PostgreSQL: prepared statements per connection"},
    {"statement_mode", T_STMT_MODE, A(pool.statement_mode), 0, NULL,
     "PostgreSQL: cached, unnamed or simple (PgBouncer)"},
    {"pipeline_depth", T_INT, A(pool.pipeline_depth), 1, NULL,
     "PostgreSQL: requests in flight per connection"},
    {"cancel_timeout_ms", T_INT, A(pool.cancel_timeout_ms), 1, NULL,
     "PostgreSQL: deadline of a CancelRequest"},
    {"reconnect_min_ms", T_INT, A(pool.reconnect_min_ms), 0, NULL,
     "PostgreSQL: first backoff after a failed connect"},
    {"reconnect_max_ms", T_INT, A(pool.reconnect_max_ms), 0, NULL,
     "PostgreSQL: longest backoff"},
    {"max_replica_lag_ms", T_INT, A(max_replica_lag_ms), 0, "1000",
     "PostgreSQL with replicas: a replica whose replay lags the primary by more "
     "serves no db_query until it catches up (the worker measures it)"},
    {"read_your_writes_ms", T_INT, A(read_your_writes_ms), 0, "5000",
     "PostgreSQL with replicas: for this long after a session's last db_exec, "
     "its reads go to the primary or to a replica seen past that write"},
    {"replica_check_interval_ms", T_INT, A(replica_check_interval_ms), 10, "250",
     "PostgreSQL with replicas: how often the worker measures each server's "
     "health and replay position"},
    {"primary_serves_reads", T_BOOL, A(primary_serves_reads), 0, "false",
     "PostgreSQL with replicas: the primary takes db_query too, as one more "
     "server with the fewest requests in flight (else only when no replica "
     "qualifies)"},
    {"sqlite_conns", T_INT, A(sqlite_conns), 1, "4",
     "SQLite: connections (statements running at once)"},
    {"sqlite_busy_timeout_ms", T_INT, A(sqlite_busy_timeout_ms), 0, "5000",
     "SQLite: wait for a lock this long before SQLITE_BUSY"},
    {"sqlite_wal", T_BOOL, A(sqlite_wal), 0, "true",
     "SQLite: journal_mode=WAL on file databases"},
    {"sqlite_max_value_bytes", T_INT, A(sqlite_max_value_bytes), 1, "67108864",
     "SQLite: largest string or blob a statement may make or read (SQLITE_LIMIT_LENGTH)"},
    {"sqlite_temp_max_bytes", T_I64, A(sqlite_temp_max_bytes), 0, "1073741824",
     "SQLite: the temporary files (sorts, temp indexes) of the alias's "
     "connections together stay within this; a write past it fails DbError 53100"},
    {"sqlite_trusted_schema", T_BOOL, A(sqlite_trusted_schema), 0, "true",
     "SQLite: the schema (CHECK, views, triggers) may use functions and virtual tables not marked innocuous (Django's JSONField needs it)"},
    {"sqlite_django_functions", T_BOOL, A(sqlite_django_functions), 0, "false",
     "SQLite: register Django's SQL functions (django_*, REGEXP, MD5, LPAD, ...) on "
     "each connection; the Django adapter sets it"},
};

#define NWORKER (sizeof worker_settings / sizeof worker_settings[0])
#define NALIAS (sizeof alias_settings / sizeof alias_settings[0])

static int fail(char err[MW_ERR_SIZE], const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(char err[MW_ERR_SIZE], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, MW_ERR_SIZE, fmt, ap);
    va_end(ap);
    return -1;
}

static const mw_setting *find(const mw_setting *tab, size_t n, const char *name,
                              size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(tab[i].name) == len && memcmp(tab[i].name, name, len) == 0)
            return &tab[i];
    return NULL;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* Sets one setting of base from text. */
static int set_value(const mw_setting *st, void *base, const char *val,
                     char err[MW_ERR_SIZE])
{
    char *p = (char *)base + st->offset;
    int64_t v;
    switch (st->type) {
    case T_BOOL:
        if (!strcmp(val, "true") || !strcmp(val, "on") || !strcmp(val, "1") ||
            !strcmp(val, "yes"))
            *(int *)p = 1;
        else if (!strcmp(val, "false") || !strcmp(val, "off") ||
                 !strcmp(val, "0") || !strcmp(val, "no"))
            *(int *)p = 0;
        else
            return fail(err, "%s: expected true or false, got \"%s\"", st->name, val);
        return 0;
    case T_INT:
    case T_I64:
        if (parse_i64(val, &v) < 0 || v < st->min ||
            (st->type == T_INT && v > INT_MAX))
            return fail(err, "%s: expected an integer >= %lld, got \"%s\"",
                        st->name, (long long)st->min, val);
        if (st->type == T_INT)
            *(int *)p = (int)v;
        else
            *(int64_t *)p = v;
        return 0;
    case T_MODE: {
        char *end;
        errno = 0;
        long m = strtol(val, &end, 8);
        if (errno || end == val || *end || m < 0 || m > 0777)
            return fail(err, "%s: expected an octal mode like 0600, got \"%s\"",
                        st->name, val);
        *(int *)p = (int)m;
        return 0;
    }
    case T_STMT_MODE:
        if (!strcmp(val, "cached"))
            *(int *)p = MOLT_DB_STMT_CACHED;
        else if (!strcmp(val, "unnamed"))
            *(int *)p = MOLT_DB_STMT_UNNAMED;
        else if (!strcmp(val, "simple"))
            *(int *)p = MOLT_DB_STMT_SIMPLE;
        else
            return fail(err, "%s: expected cached, unnamed or simple, got \"%s\"",
                        st->name, val);
        return 0;
    case T_STR: {
        char **sp = (char **)p;
        char *dup = NULL;
        if (*val) {
            dup = strdup(val);
            if (!dup)
                return fail(err, "out of memory");
        }
        free(*sp);
        *sp = dup;
        return 0;
    }
    }
    return fail(err, "%s: unknown type", st->name);
}

static void format_value(const mw_setting *st, const void *base, char *out,
                         size_t cap)
{
    const char *p = (const char *)base + st->offset;
    switch (st->type) {
    case T_BOOL:
        snprintf(out, cap, "%s", *(const int *)p ? "true" : "false");
        break;
    case T_INT:
        snprintf(out, cap, "%d", *(const int *)p);
        break;
    case T_I64:
        snprintf(out, cap, "%lld", (long long)*(const int64_t *)p);
        break;
    case T_MODE:
        snprintf(out, cap, "0%o", (unsigned)*(const int *)p);
        break;
    case T_STMT_MODE: {
        int m = *(const int *)p;
        snprintf(out, cap, "%s", m == MOLT_DB_STMT_SIMPLE    ? "simple"
                                 : m == MOLT_DB_STMT_UNNAMED ? "unnamed"
                                                             : "cached");
        break;
    }
    case T_STR: {
        const char *s = *(char *const *)p;
        snprintf(out, cap, "%s", s ? s : "(none)");
        break;
    }
    }
}

void mw_config_init(mw_config *c)
{
    char err[MW_ERR_SIZE];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NWORKER; i++)
        (void)set_value(&worker_settings[i], c, worker_settings[i].def, err);
}

static void free_dsn(char *dsn)
{
    if (dsn) {
        explicit_bzero(dsn, strlen(dsn));
        free(dsn);
    }
}

static void alias_free(mw_alias *a)
{
    if (!a)
        return;
    free(a->name);
    free_dsn(a->dsn);
    for (size_t i = 0; i < a->nreplicas; i++)
        free_dsn(a->replica_dsns[i]);
    free(a->replica_dsns);
    free(a->sqlite_path);
    mw_sql_memo_free(a->sql_memo);
    free(a);
}

void mw_config_free(mw_config *c)
{
    if (!c)
        return;
    free(c->socket_path);
    free(c->metrics_listen);
    free(c->log_format);
    mw_alias *a = c->aliases;
    while (a) {
        mw_alias *n = a->next;
        alias_free(a);
        a = n;
    }
    memset(c, 0, sizeof *c);
}

static mw_alias *alias_new(const char *name, size_t len)
{
    char err[MW_ERR_SIZE];
    mw_alias *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->name = strndup(name, len);
    if (!a->name) {
        free(a);
        return NULL;
    }
    molt_db_pool_settings_init(&a->pool);
    for (size_t i = 0; i < NALIAS; i++)
        if (alias_settings[i].def)
            (void)set_value(&alias_settings[i], a, alias_settings[i].def, err);
    return a;
}

mw_alias *mw_config_alias(const mw_config *c, const char *name, size_t len)
{
    for (mw_alias *a = c->aliases; a; a = a->next)
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0)
            return a;
    return NULL;
}

static int valid_alias_name(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

/* The alias called name, created (at the end of the list) when absent. */
static mw_alias *alias_get(mw_config *c, const char *name, size_t len,
                           char err[MW_ERR_SIZE])
{
    if (!valid_alias_name(name, len)) {
        fail(err, "bad alias name \"%.*s\" (1 to 64 of A-Za-z0-9_.-)",
             (int)(len > 64 ? 64 : len), name);
        return NULL;
    }
    mw_alias *a = mw_config_alias(c, name, len);
    if (a)
        return a;
    a = alias_new(name, len);
    if (!a) {
        fail(err, "out of memory");
        return NULL;
    }
    mw_alias **tail = &c->aliases;
    while (*tail)
        tail = &(*tail)->next;
    *tail = a;
    return a;
}

/* Classifies a DSN and fills kind / sqlite_path. */
static int set_dsn(mw_alias *a, const char *dsn, char err[MW_ERR_SIZE])
{
    char *path = NULL;
    mw_backend_kind kind;
    if (!strncmp(dsn, "sqlite:", 7)) {
        const char *rest = dsn + 7;
        kind = MW_BACKEND_SQLITE;
        if (!strcmp(rest, ":memory:")) {
            path = NULL;
        } else {
            if (!strncmp(rest, "///", 3))
                rest += 2;          /* sqlite:///abs/path -> /abs/path */
            else if (!strncmp(rest, "//", 2))
                return fail(err, "alias %s: sqlite DSN must be sqlite:///ABS/PATH, "
                            "sqlite:RELATIVE or sqlite::memory:", a->name);
            if (!*rest)
                return fail(err, "alias %s: empty sqlite path", a->name);
            path = strdup(rest);
            if (!path)
                return fail(err, "out of memory");
        }
    } else if (!strncmp(dsn, "postgresql://", 13) || !strncmp(dsn, "postgres://", 11) ||
               strchr(dsn, '=')) {
        kind = MW_BACKEND_PG;
    } else {
        return fail(err, "alias %s: unrecognised DSN (expected postgresql://..., "
                    "key=value pairs, or sqlite:...)", a->name);
    }
    char *d = strdup(dsn);
    if (!d) {
        free(path);
        return fail(err, "out of memory");
    }
    free_dsn(a->dsn);
    free(a->sqlite_path);
    a->dsn = d;
    a->kind = kind;
    a->sqlite_path = path;
    return 0;
}

/* "ALIAS=DSN" */
static int add_db(mw_config *c, const char *arg, char err[MW_ERR_SIZE])
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return fail(err, "--db expects ALIAS=DSN");
    mw_alias *a = alias_get(c, arg, (size_t)(eq - arg), err);
    if (!a)
        return -1;
    return set_dsn(a, eq + 1, err);
}

/* One more streaming replica of alias a (checked in mw_config_validate). */
static int add_replica(mw_alias *a, const char *dsn, char err[MW_ERR_SIZE])
{
    if (a->nreplicas >= MW_MAX_REPLICAS)
        return fail(err, "alias %s: at most %d replicas", a->name, MW_MAX_REPLICAS);
    char **v = realloc(a->replica_dsns, (a->nreplicas + 1) * sizeof *v);
    if (!v)
        return fail(err, "out of memory");
    a->replica_dsns = v;
    if (!(v[a->nreplicas] = strdup(dsn)))
        return fail(err, "out of memory");
    a->nreplicas++;
    return 0;
}

static int alias_set(mw_alias *a, const char *name, size_t nlen,
                     const char *val, char err[MW_ERR_SIZE])
{
    if (nlen == 3 && !memcmp(name, "dsn", 3))
        return set_dsn(a, val, err);
    if (nlen == 7 && !memcmp(name, "replica", 7))
        return add_replica(a, val, err);
    const mw_setting *st = find(alias_settings, NALIAS, name, nlen);
    if (!st)
        return fail(err, "unknown database setting \"%.*s\" (see --help)",
                    (int)(nlen > 64 ? 64 : nlen), name);
    if (set_value(st, a, val, err) < 0) {
        char tmp[MW_ERR_SIZE];
        snprintf(tmp, sizeof tmp, "alias %s: %s", a->name, err);
        memcpy(err, tmp, MW_ERR_SIZE);
        return -1;
    }
    return 0;
}

/* "ALIAS=DSN" of a replica */
static int add_db_replica(mw_config *c, const char *arg, char err[MW_ERR_SIZE])
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return fail(err, "--db-replica expects ALIAS=DSN");
    mw_alias *a = alias_get(c, arg, (size_t)(eq - arg), err);
    if (!a)
        return -1;
    return add_replica(a, eq + 1, err);
}

/* "ALIAS:NAME=VALUE" */
static int pool_flag(mw_config *c, const char *arg, char err[MW_ERR_SIZE])
{
    const char *colon = strchr(arg, ':');
    const char *eq = colon ? strchr(colon, '=') : NULL;
    if (!colon || !eq)
        return fail(err, "--pool expects ALIAS:NAME=VALUE");
    mw_alias *a = alias_get(c, arg, (size_t)(colon - arg), err);
    if (!a)
        return -1;
    return alias_set(a, colon + 1, (size_t)(eq - colon - 1), eq + 1, err);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

int mw_config_load_file(mw_config *c, const char *path, char err[MW_ERR_SIZE])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, "cannot open config file %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    mw_alias *section = NULL;
    char sub[MW_ERR_SIZE];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = fail(err, "%s:%d: line too long", path, lineno);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1] || strncmp(s, "[db ", 4)) {
                rc = fail(err, "%s:%d: expected [db ALIAS]", path, lineno);
                break;
            }
            *end = 0;
            char *name = trim(s + 4);
            section = alias_get(c, name, strlen(name), sub);
            if (!section) {
                rc = fail(err, "%s:%d: %s", path, lineno, sub);
                break;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail(err, "%s:%d: expected NAME = VALUE", path, lineno);
            break;
        }
        *eq = 0;
        char *name = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = 0;
            val++;
        }
        int r;
        if (section) {
            r = alias_set(section, name, strlen(name), val, sub);
        } else {
            const mw_setting *st = find(worker_settings, NWORKER, name, strlen(name));
            r = st ? set_value(st, c, val, sub)
                   : fail(sub, "unknown setting \"%.64s\" (see --help)", name);
        }
        if (r < 0) {
            rc = fail(err, "%s:%d: %s", path, lineno, sub);
            break;
        }
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    return rc;
}

int mw_config_parse_args(mw_config *c, int argc, char **argv, FILE *out,
                         char err[MW_ERR_SIZE])
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            mw_config_print_help(out);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            fprintf(out, "molt_worker %s (IPC contract %d)\n", MW_VERSION,
                    MW_CONTRACT_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2))
            return fail(err, "unexpected argument \"%.64s\" (see --help)", arg);
        /* --name=value or --name value; dashes stand for underscores */
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen == 0 || nlen >= sizeof name)
            return fail(err, "unknown option \"%.64s\" (see --help)", arg);
        for (size_t k = 0; k < nlen; k++)
            name[k] = arg[2 + k] == '-' ? '_' : arg[2 + k];
        name[nlen] = 0;
        const mw_setting *st = find(worker_settings, NWORKER, name, nlen);
        int is_bool_flag = st && st->type == T_BOOL;
        if (!st && strcmp(name, "db") && strcmp(name, "db_replica") &&
            strcmp(name, "allow_write") &&
            strcmp(name, "pool") && strcmp(name, "config"))
            return fail(err, "unknown option \"--%.64s\" (see --help)", name);
        if (eq) {
            val = eq + 1;
        } else if (is_bool_flag) {
            val = "true";
        } else {
            if (i + 1 >= argc)
                return fail(err, "%s needs a value", arg);
            val = argv[++i];
        }
        int r;
        if (!strcmp(name, "db") || !strcmp(name, "db_replica")) {
            r = name[2] ? add_db_replica(c, val, err) : add_db(c, val, err);
            /* copied: hide the password from ps (argv is the process's) */
            if (r == 0 && mw_dsn_hide_password(strchr(val, '=') + 1))
                c->argv_password = 1;
        }
        else if (!strcmp(name, "allow_write")) {
            mw_alias *a = alias_get(c, val, strlen(val), err);
            r = a ? (a->allow_write = 1, 0) : -1;
        } else if (!strcmp(name, "pool"))
            r = pool_flag(c, val, err);
        else if (!strcmp(name, "config"))
            r = mw_config_load_file(c, val, err);
        else if (st)
            r = set_value(st, c, val, err);
        else
            r = fail(err, "unknown option \"--%.64s\" (see --help)", name);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* A PostgreSQL DSN parses (its message names the alias, never the DSN). */
static int check_pg_dsn(const char *alias, const char *what, const char *dsn,
                        char err[MW_ERR_SIZE])
{
    molt_db_conninfo *ci = NULL;
    molt_db_error e;
    molt_db_error_init(&e);
    if (molt_db_conninfo_parse(dsn, &ci, &e) != MOLT_DB_OK) {
        fail(err, "alias %s%s: %s", alias, what, e.message);
        molt_db_error_clear(&e);
        return -1;
    }
    molt_db_conninfo_free(ci);
    return 0;
}

int64_t mw_config_session_request_share(const mw_config *c)
{
    /* exact, and without overflow for any int64 budget */
    int64_t pct = c->session_request_share_pct;
    return c->max_held_request_bytes / 100 * pct + c->max_held_request_bytes % 100 * pct / 100;
}

int mw_config_validate(const mw_config *c, char err[MW_ERR_SIZE])
{
    if (!c->embedded && c->stdio == !!c->socket_path)
        return fail(err, "choose exactly one transport: --stdio or --socket PATH");
    if (!c->aliases)
        return fail(err, "no database configured: give --db ALIAS=DSN (or [db ALIAS] in --config)");
    for (const mw_alias *a = c->aliases; a; a = a->next) {
        if (!a->dsn)
            return fail(err, "alias %s has settings but no dsn", a->name);
        if (a->kind == MW_BACKEND_PG && check_pg_dsn(a->name, "", a->dsn, err) < 0)
            return -1;
        if (a->nreplicas > 0 && a->kind != MW_BACKEND_PG)
            return fail(err, "alias %s: only a PostgreSQL database has replicas",
                        a->name);
        for (size_t i = 0; i < a->nreplicas; i++) {
            const char *d = a->replica_dsns[i];
            if (strncmp(d, "postgresql://", 13) && strncmp(d, "postgres://", 11) &&
                !strchr(d, '='))
                return fail(err, "alias %s: a replica DSN must be postgresql://... "
                            "or key=value pairs", a->name);
            if (check_pg_dsn(a->name, " replica", d, err) < 0)
                return -1;
        }
    }
    if (c->default_timeout_ms > c->max_timeout_ms)
        return fail(err, "default_timeout_ms (%d) is above max_timeout_ms (%d)",
                    c->default_timeout_ms, c->max_timeout_ms);
    if (c->batch_rows > c->max_batch_rows)
        return fail(err, "batch_rows (%d) is above max_batch_rows (%d)",
                    c->batch_rows, c->max_batch_rows);
    if (c->tx_alias_share_pct > 100)
        return fail(err, "tx_alias_share_pct (%d) is above 100", c->tx_alias_share_pct);
    if (c->max_buffered_request_bytes < c->max_request_bytes)
        return fail(err, "max_buffered_request_bytes is below max_request_bytes");
    if (c->session_request_share_pct > 100)
        return fail(err, "session_request_share_pct (%d) is above 100",
                    c->session_request_share_pct);
    if (mw_config_session_request_share(c) < c->max_request_bytes)
        return fail(err, "a session's share of max_held_request_bytes "
                    "(session_request_share_pct) is below max_request_bytes");
    /* a result's buffer may have up to twice its length allocated */
    if (c->max_unread_bytes / 2 < c->max_result_bytes)
        return fail(err, "max_unread_bytes must be at least twice max_result_bytes, "
                    "or a result that fits could close its session");
    if (c->metrics_listen) {
        const char *colon = strrchr(c->metrics_listen, ':');
        if (!colon)
            return fail(err, "metrics_listen must be ADDRESS:PORT");
        if (strncmp(c->metrics_listen, "127.", 4) && !c->metrics_allow_remote)
            return fail(err, "metrics_listen %s is not a loopback 127.x.y.z:PORT; "
                        "set metrics_allow_remote to serve it there",
                        c->metrics_listen);
    }
    if (!c->log_format || (strcmp(c->log_format, "json") && strcmp(c->log_format, "text")))
        return fail(err, "log_format must be json or text");
    return 0;
}

int mw_config_load_env(mw_config *c, char err[MW_ERR_SIZE])
{
    char var[96], sub[MW_ERR_SIZE];
    for (size_t i = 0; i < NWORKER; i++) {
        int n = snprintf(var, sizeof var, "MOLT_WORKER_%s", worker_settings[i].name);
        for (int k = 12; k < n && k < (int)sizeof var; k++)
            var[k] = (char)toupper((unsigned char)var[k]);
        const char *val = getenv(var);
        if (val && set_value(&worker_settings[i], c, val, sub) < 0)
            return fail(err, "%s: %s", var, sub);
    }
    return 0;
}

/* Settings read where they are used (not copied at start-up): a reload
 * changes them for the next request, session or connection. */
static const char *const reloadable[] = {
    "default_timeout_ms", "max_rows", "max_inflight", "batch_rows",
    "max_timeout_ms", "max_result_bytes", "max_batch_rows", "max_request_bytes",
    "max_unread_bytes", "max_buffered_request_bytes", "write_timeout_ms",
    "frame_timeout_ms", "shutdown_grace_ms", "log_requests", "log_format",
    "metrics_max_conns", "metrics_timeout_ms", "max_session_inflight",
    "paused_hold_ms", "max_listeners", "max_listen_channels", "listen_queue_notes",
    "listen_queue_bytes",
    "tx_idle_timeout_ms", "tx_max_ms", "max_session_tx", "tx_alias_share_pct",
    "max_held_request_bytes", "session_request_share_pct",
    /* per database */
    "allow_write", "sqlite_busy_timeout_ms", "max_replica_lag_ms",
    "read_your_writes_ms", "primary_serves_reads",
};

static int is_reloadable(const char *name)
{
    for (size_t i = 0; i < sizeof reloadable / sizeof reloadable[0]; i++)
        if (!strcmp(reloadable[i], name))
            return 1;
    return 0;
}

/* Copies each reloadable setting of tab from src to dst; reports each other
 * one that differs. Strings move from src to dst. */
static void reload_table(const mw_setting *tab, size_t n, void *dst, void *src,
                         const char *alias,
                         void (*note)(void *ud, const char *msg), void *ud)
{
    char a[128], b[128], msg[512];
    for (size_t i = 0; i < n; i++) {
        const mw_setting *st = &tab[i];
        format_value(st, dst, a, sizeof a);
        format_value(st, src, b, sizeof b);
        if (!strcmp(a, b))
            continue;
        if (!is_reloadable(st->name)) {
            snprintf(msg, sizeof msg, "reload: %s%s%s%s changes only at a "
                     "restart; the running value is kept", alias ? "alias " : "",
                     alias ? alias : "", alias ? ": " : "", st->name);
            /* the value is left out: a string setting may be a path */
            note(ud, msg);
            continue;
        }
        char *d = (char *)dst + st->offset, *s = (char *)src + st->offset;
        if (st->type == T_STR) {
            char *t = *(char **)d;
            *(char **)d = *(char **)s;
            *(char **)s = t;
        } else {
            memcpy(d, s, st->type == T_I64 ? sizeof(int64_t) : sizeof(int));
        }
        snprintf(msg, sizeof msg, "reload: %s%s%s%s = %s", alias ? "alias " : "",
                 alias ? alias : "", alias ? ": " : "", st->name, b);
        note(ud, msg);
    }
}

static int replicas_differ(const mw_alias *a, const mw_alias *b)
{
    if (a->nreplicas != b->nreplicas)
        return 1;
    for (size_t i = 0; i < a->nreplicas; i++)
        if (strcmp(a->replica_dsns[i], b->replica_dsns[i]))
            return 1;
    return 0;
}

void mw_config_reload(mw_config *live, mw_config *fresh,
                      void (*note)(void *ud, const char *msg), void *ud)
{
    char msg[512];
    reload_table(worker_settings, NWORKER, live, fresh, NULL, note, ud);
    for (mw_alias *f = fresh->aliases; f; f = f->next) {
        mw_alias *l = mw_config_alias(live, f->name, strlen(f->name));
        if (!l) {
            snprintf(msg, sizeof msg, "reload: alias %s is new; it is served "
                     "after a restart", f->name);
            note(ud, msg);
            continue;
        }
        /* a --db password was hidden in argv: the reparsed DSN differs */
        if (!live->argv_password && strcmp(l->dsn, f->dsn)) {
            snprintf(msg, sizeof msg, "reload: alias %s: dsn changes only at a "
                     "restart; still the old one", f->name);
            note(ud, msg);
        }
        if (!live->argv_password && replicas_differ(l, f)) {
            snprintf(msg, sizeof msg, "reload: alias %s: replicas change only at "
                     "a restart; still the old ones", f->name);
            note(ud, msg);
        }
        reload_table(alias_settings, NALIAS, l, f, l->name, note, ud);
    }
    for (mw_alias *l = live->aliases; l; l = l->next)
        if (!mw_config_alias(fresh, l->name, strlen(l->name))) {
            snprintf(msg, sizeof msg, "reload: alias %s is gone from the "
                     "configuration; it is served until a restart", l->name);
            note(ud, msg);
        }
}

static void print_table(FILE *out, const mw_setting *tab, size_t n,
                        const void *base, int flags)
{
    for (size_t i = 0; i < n; i++) {
        char def[128], flag[64];
        format_value(&tab[i], base, def, sizeof def);
        if (flags) {
            snprintf(flag, sizeof flag, "--%s", tab[i].name);
            for (char *p = flag + 2; *p; p++)
                if (*p == '_')
                    *p = '-';
        } else {
            snprintf(flag, sizeof flag, "%s", tab[i].name);
        }
        static const char *tn[] = {"bool", "int", "int", "string", "octal", "enum"};
        fprintf(out, "  %-28s %-6s %-10s %s\n", flag, tn[tab[i].type], def,
                tab[i].help);
    }
}

void mw_config_print_help(FILE *out)
{
    mw_config c;
    mw_config_init(&c);
    mw_alias *a = alias_new("x", 1);
    fprintf(out,
"usage: molt_worker (--stdio | --socket PATH) --db ALIAS=DSN [options]\n"
"\n"
"molt_worker runs database requests for its clients over the molt IPC\n"
"contract (docs/ipc-contract.md): length-prefixed MsgPack frames on stdin/\n"
"stdout or on a Unix socket.\n"
"\n"
"Databases:\n"
"  --db ALIAS=DSN        a database (repeatable). DSN: postgresql://...,\n"
"                        libpq key=value pairs (\"host=... dbname=...\"),\n"
"                        sqlite:///abs/path.db, sqlite:relative.db, sqlite::memory:\n"
"  --db-replica ALIAS=DSN  a streaming replica of PostgreSQL database ALIAS\n"
"                        (repeatable): db_query may be served there\n"
"                        (docs/scaling.md)\n"
"  --allow-write ALIAS   grant db.write on ALIAS (db_exec may run there)\n"
"  --pool ALIAS:NAME=VALUE  a per-database setting (table below)\n"
"  --config FILE         read settings from FILE (format below)\n"
"  --help, --version\n"
"\n"
"Worker settings (flag / config name without dashes, type, default):\n");
    print_table(out, worker_settings, NWORKER, &c, 1);
    fprintf(out,
"\nPer-database settings (--pool ALIAS:NAME=VALUE or in [db ALIAS]):\n");
    if (a)
        print_table(out, alias_settings, NALIAS, a, 0);
    fprintf(out,
"\nConfig file: '#' comments, NAME = VALUE lines for worker settings, then\n"
"a section per database:\n"
"\n"
"  default_timeout_ms = 5000\n"
"  socket = /run/molt/worker.sock\n"
"  [db default]\n"
"  dsn = sqlite:///var/lib/app/app.db\n"
"  allow_write = true\n"
"  sqlite_conns = 8\n"
"  [db reports]\n"
"  dsn = postgresql://app@db.internal/app?sslmode=verify-full\n"
"  max_conns = 20\n"
"  replica = postgresql://app@db-replica1.internal/app?sslmode=verify-full\n"
"\n"
"Environment: MOLT_WORKER_NAME (the setting's name in capitals, e.g.\n"
"MOLT_WORKER_MAX_INFLIGHT=100) sets a worker setting; the config file and\n"
"flags override it.\n"
"\n"
"Signals: SIGTERM or SIGINT stop accepting, let in-flight requests finish\n"
"within shutdown_grace_ms, answer the rest Busy and exit 0. SIGHUP reads\n"
"the environment, flags and --config file again and applies the settings\n"
"that can change at run time (docs/worker.md); a bad file is logged and\n"
"the running configuration kept.\n");
    alias_free(a);
    mw_config_free(&c);
}
