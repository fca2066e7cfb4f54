/*
 * molt_worker configuration: one table of typed settings (name, type,
 * default, help), as PgBouncer keeps it. Command-line flags and the config
 * file both fill the same table, so every setting has one name, one type and
 * one default; `molt_worker --help` prints the table.
 *
 * Worker settings live in mw_config; per-database settings (the pool's and
 * SQLite's) live in each mw_alias. A flag `--NAME-WITH-DASHES VALUE` sets a
 * worker setting; `--pool ALIAS:NAME=VALUE` sets a per-alias one. The config
 * file (`--config FILE`) has `name = value` lines for worker settings and a
 * `[db ALIAS]` section per database (keys: dsn, allow_write and every
 * per-alias setting; `replica = DSN`, repeatable, adds a streaming replica
 * like `--db-replica ALIAS=DSN`). Later sources override earlier ones: the file is read
 * where `--config` appears on the command line.
 *
 * Ownership: mw_config owns every string and alias it holds;
 * mw_config_free releases them. Errors: functions return 0 or -1 with a
 * message in err (never a password or a full DSN).
 */
#ifndef MW_CONFIG_H
#define MW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "molt_db/pool.h"

typedef enum mw_backend_kind {
    MW_BACKEND_PG = 1,
    MW_BACKEND_SQLITE = 2
} mw_backend_kind;

typedef struct mw_alias {
    char *name;
    char *dsn;            /* as given: for PostgreSQL, never logged */
    mw_backend_kind kind;
    char *sqlite_path;    /* SQLite: a path, or NULL for :memory: */
    int allow_write;      /* the db.write capability */
    int allow_privileged_role; /* PostgreSQL: skip the role check at connect */
    molt_db_pool_settings pool;   /* PostgreSQL pool settings */
    int sqlite_conns;             /* SQLite connections (threads busy at once) */
    int sqlite_busy_timeout_ms;
    int sqlite_wal;
    int sqlite_max_value_bytes;   /* SQLITE_LIMIT_LENGTH */
    int64_t sqlite_temp_max_bytes; /* the connections' temporary files */
    int sqlite_trusted_schema;
    /* PostgreSQL streaming replicas of this (primary) database: reads may go
     * there (replica_route.h); never logged */
    char **replica_dsns;
    size_t nreplicas;
    int max_replica_lag_ms;       /* a replica further behind serves no read */
    int read_your_writes_ms;      /* after a session's write, its reads ... */
    int replica_check_interval_ms;
    int primary_serves_reads;     /* the primary is one more read candidate */
    int sqlite_django_functions;  /* register Django's SQL functions */
    struct mw_sql_memo *sql_memo; /* payload.c: its SQL's derived forms
                                     (sql_memo.h), NULL until the first */
    struct mw_alias *next;
} mw_alias;

typedef struct mw_config {
    int embedded;                 /* a host (host.c): no transport, no systemd */
    int stdio;
    char *socket_path;
    int socket_mode;              /* octal, e.g. 0600 */
    int default_timeout_ms;
    int max_rows;
    int64_t max_request_bytes;
    int max_inflight;
    int max_session_inflight;     /* one session's share of max_inflight */
    int tx_idle_timeout_ms;       /* an idle transaction is rolled back after */
    int tx_max_ms;                /* ... and any transaction this long after BEGIN */
    int max_session_tx;           /* open transactions of one session */
    int tx_alias_share_pct;       /* of an alias's connections, for transactions */
    int batch_rows;               /* default rows per streamed frame */
    int max_timeout_ms;           /* largest timeout_ms of a request */
    int64_t max_result_bytes;     /* non-streamed result or one streamed batch */
    int max_batch_rows;
    int max_sessions;
    int64_t max_unread_bytes;     /* one session's queued responses */
    int64_t max_buffered_request_bytes; /* all sessions' partial requests */
    int64_t max_held_request_bytes; /* all parsed requests' memory */
    int session_request_share_pct; /* ... one session's percent of it */
    int write_timeout_ms;         /* a stalled reader is closed after */
    int paused_hold_ms;           /* ... loses its held connections after */
    int frame_timeout_ms;         /* a stalled half-sent frame is closed after */
    int shutdown_grace_ms;
    char *metrics_listen;         /* "127.0.0.1:PORT" or NULL */
    int metrics_allow_remote;     /* metrics_listen may be non-loopback */
    int log_requests;
    char *log_format;             /* "json" or "text" */
    int argv_password;            /* a --db carried a password (now hidden) */
    int metrics_max_conns;
    int metrics_timeout_ms;
    int allow_core_dumps;
    int64_t sqlite_heap_limit_bytes; /* molt_worker: SQLite's hard heap limit */
    int max_listeners;            /* listen requests in the worker */
    int max_listen_channels;      /* channels one client connection listens on */
    int listen_queue_notes;       /* notes held for a listener that does not read */
    int64_t listen_queue_bytes;   /* notes' bytes held for all such listeners */
    mw_alias *aliases;            /* in the order given */
} mw_config;

#define MW_ERR_SIZE 512
#define MW_MAX_REPLICAS 16

/* Fills every setting with its default; no aliases. */
void mw_config_init(mw_config *c);
void mw_config_free(mw_config *c);

/* Parses argv (after the program name). Returns 0, 1 when --help or
 * --version was handled (printed to out; the caller exits 0), or -1 with
 * err. */
int mw_config_parse_args(mw_config *c, int argc, char **argv, FILE *out,
                         char err[MW_ERR_SIZE]);

/* Reads a config file (see above). 0 or -1 with err naming file and line. */
int mw_config_load_file(mw_config *c, const char *path, char err[MW_ERR_SIZE]);

/* Sets worker settings from MOLT_WORKER_<NAME> environment variables (NAME
 * in capitals). 0 or -1 with err naming the variable. */
int mw_config_load_env(mw_config *c, char err[MW_ERR_SIZE]);

/* Applies a freshly read configuration to the running one: settings that
 * can change at run time are moved from fresh into live; every other
 * difference (socket, DSNs, aliases added or removed, pool sizes) is
 * reported through note and left as it is. fresh is left for freeing. */
void mw_config_reload(mw_config *live, mw_config *fresh,
                      void (*note)(void *ud, const char *msg), void *ud);

/* Checks the whole configuration (a transport chosen unless embedded, at
 * least one alias, DSNs parse). 0 or -1 with err. */
int mw_config_validate(const mw_config *c, char err[MW_ERR_SIZE]);

/* The alias called name, or NULL. */
mw_alias *mw_config_alias(const mw_config *c, const char *name, size_t len);
/* The bytes one session's requests may hold: session_request_share_pct of
 * max_held_request_bytes. */
int64_t mw_config_session_request_share(const mw_config *c);

/* Prints the usage text with the settings table. */
void mw_config_print_help(FILE *out);

#endif
