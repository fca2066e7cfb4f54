/*
 * Connection strings, exactly as libpq users write them.
 *
 * molt_db_conninfo_parse accepts:
 *   - URIs: postgresql://[user[:password]@][host][:port][,host[:port]...]
 *           [/dbname][?key=value&...]   (also the postgres:// scheme;
 *           percent-encoding; [IPv6] hosts; a host that is a percent-encoded
 *           absolute path is a Unix socket directory)
 *   - key=value strings: `host=a,b port=5432,5433 dbname='my db' sslmode=require`
 *     (single-quoted values with \' and \\ escapes)
 *   - "" (empty): everything from the environment and defaults.
 *     A string that is neither a URI nor contains '=' is MOLT_DB_ECONFIG
 *     (some libpq APIs take it as a dbname; we do not guess).
 * A key given twice keeps the last value, as in libpq. Host, hostaddr and port
 * are comma-separated lists: the port list has one entry (for every host) or
 * one per host; an empty entry takes the default.
 * Then, for each setting not given, the same environment variable libpq 15
 * reads: PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
 * PGPASSFILE, PGCHANNELBINDING, PGCONNECT_TIMEOUT, PGCLIENTENCODING,
 * PGOPTIONS, PGAPPNAME, PGSSLMODE, PGSSLCOMPRESSION, PGSSLCERT, PGSSLKEY,
 * PGSSLROOTCERT, PGSSLCRL, PGSSLCRLDIR, PGSSLSNI, PGREQUIREPEER,
 * PGSSLMINPROTOCOLVERSION, PGSSLMAXPROTOCOLVERSION, PGGSSENCMODE,
 * PGKRBSRVNAME, PGGSSLIB, PGTARGETSESSIONATTRS, PGSERVICE, and from libpq 16
 * PGSSLCERTMODE, PGLOADBALANCEHOSTS. (sslpassword, keepalives*,
 * tcp_user_timeout, replication and fallback_application_name have no
 * variable, as in libpq.) Then the libpq default (host: the Unix socket
 * directory /var/run/postgresql, Debian's; port 5432; user: the OS user
 * (empty also means the OS user); dbname: the user; sslmode: prefer;
 * channel_binding: prefer; ssl_min_protocol_version: TLSv1.2; sslrootcert,
 * sslcert, sslkey: ~/.postgresql/root.crt, postgresql.crt, postgresql.key
 * when those files exist; the home directory is $HOME, else the passwd
 * entry). An empty value for a path, name or list counts as not given.
 * connect_timeout is in seconds; values of 0 or below mean none, 1 is raised
 * to 2 (libpq's rule).
 * A password not given (or empty) is looked up per host in the passfile
 * (`passfile`, PGPASSFILE, or ~/.pgpass; ignored, as by libpq, when it is not
 * a regular file or its mode lets group or others access it). The host used
 * for the lookup is the host entry, the hostaddr when the host entry is empty,
 * and "localhost" for the default socket directory (as libpq; another socket
 * directory must be written as its path in the passfile). An empty password
 * from the passfile counts as none.
 *
 * Keys libpq knows but this library does not act on are accepted when their
 * value asks for nothing we lack (gssencmode=disable|prefer,
 * sslcompression=0|1, krbsrvname, gsslib, replication=false,
 * sslcertmode=allow|disable) and rejected with
 * MOLT_DB_ECONFIG otherwise (service and PGSERVICE: service files are not
 * supported; sslcrl, sslcrldir, requirepeer: not supported); a key libpq does
 * not know is MOLT_DB_ECONFIG "unknown connection option \"foo\"". In a
 * URI query, ssl=true means sslmode=require (libpq's JDBC compatibility).
 * Values are validated: sslmode, channel_binding, target_session_attrs,
 * load_balance_hosts (disable, random),
 * gssencmode and TLS version names; integers as libpq parses them (port
 * 1..65535); sslsni and sslcompression 0 or 1; keepalives any integer
 * (nonzero: on); hostaddr entries numeric IPv4/IPv6. Error messages name the
 * key, and the environment variable when the value came from one.
 *
 * Ownership: the returned molt_db_conninfo and every string in it are owned
 * by it; free with molt_db_conninfo_free. Passwords are never put in error
 * messages.
 * Thread-safety: parse reads the environment (getenv) and the passfile; do not
 * call it while another thread changes the environment.
 */
#ifndef MOLT_DB_CONNINFO_H
#define MOLT_DB_CONNINFO_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum molt_db_sslmode {
    MOLT_DB_SSLMODE_DISABLE = 0,
    MOLT_DB_SSLMODE_ALLOW,
    MOLT_DB_SSLMODE_PREFER,
    MOLT_DB_SSLMODE_REQUIRE,
    MOLT_DB_SSLMODE_VERIFY_CA,
    MOLT_DB_SSLMODE_VERIFY_FULL
} molt_db_sslmode;

typedef enum molt_db_channel_binding {
    MOLT_DB_CHANNEL_BINDING_DISABLE = 0,
    MOLT_DB_CHANNEL_BINDING_PREFER,
    MOLT_DB_CHANNEL_BINDING_REQUIRE
} molt_db_channel_binding;

typedef enum molt_db_target_session {
    MOLT_DB_TARGET_ANY = 0,
    MOLT_DB_TARGET_READ_WRITE,
    MOLT_DB_TARGET_READ_ONLY,
    MOLT_DB_TARGET_PRIMARY,
    MOLT_DB_TARGET_STANDBY,
    MOLT_DB_TARGET_PREFER_STANDBY
} molt_db_target_session;

/* One host to try, in list order. */
typedef struct molt_db_host {
    char *host;      /* a name or IP to resolve, or an absolute Unix socket
                        directory (starts with '/'); never NULL (a copy of
                        hostaddr when only that was given) */
    char *hostaddr;  /* numeric IP that skips DNS (host still used for TLS
                        verification and pgpass), or NULL */
    uint16_t port;
    char *password;  /* explicit password, else from the passfile, else NULL */
} molt_db_host;

typedef struct molt_db_conninfo {
    molt_db_host *hosts;
    size_t nhosts;                 /* >= 1 */
    char *user;                    /* never NULL after parse */
    char *dbname;                  /* never NULL after parse */
    char *application_name;        /* NULL when not set */
    char *options;                 /* the `options` startup parameter, or NULL */
    char *client_encoding;         /* NULL: UTF8 is sent */
    molt_db_sslmode sslmode;
    char *sslrootcert;             /* path, "system", or NULL (default file
                                      ~/.postgresql/root.crt if it exists) */
    char *sslcert;                 /* client certificate path, or NULL */
    char *sslkey;                  /* client key path, or NULL */
    char *sslpassword;             /* passphrase for sslkey, or NULL */
    int sslsni;                    /* 1 (default): send SNI for host names */
    molt_db_channel_binding channel_binding;
    molt_db_target_session target_session_attrs;
    int connect_timeout_ms;        /* per host attempt; 0 = none. libpq's
                                      `connect_timeout` is in seconds; values
                                      1 are raised to 2 as libpq does */
    int keepalives;                /* 1 (default) enables TCP keepalives */
    int keepalives_idle_s;         /* 0 = system default */
    int keepalives_interval_s;
    int keepalives_count;
    int tcp_user_timeout_ms;       /* TCP_USER_TIMEOUT; 0 = system default */
    char *ssl_min_protocol_version; /* "TLSv1".."TLSv1.3"; default "TLSv1.2"
                                       as in libpq 15; never NULL */
    char *ssl_max_protocol_version; /* same names, or NULL for no maximum */
    char *sslcertmode;             /* "allow" (default) or "disable": whether
                                      a client certificate may be sent */
    int load_balance_random;       /* load_balance_hosts=random: each connect
                                      tries the hosts, and each host's
                                      addresses, in a random order */
} molt_db_conninfo;

/* Parses str (may be NULL or "": environment and defaults only).
 * Returns MOLT_DB_OK and *out, or MOLT_DB_ECONFIG (message names the key or
 * position at fault), MOLT_DB_ENOMEM. *out is NULL on failure. */
MOLT_DB_API
int molt_db_conninfo_parse(const char *str, molt_db_conninfo **out,
                           molt_db_error *err);

/* Frees ci and everything in it; wipes passwords first. NULL is allowed. */
MOLT_DB_API
void molt_db_conninfo_free(molt_db_conninfo *ci);

/* Looks up a password in a pgpass-format file for (host, port, dbname,
 * user). The caller passes the host as libpq does: "localhost" for the
 * default socket directory, else the host (or socket path) as given. The
 * port is compared as its decimal text ("5432"). Lines may be any length.
 * Returns 1 and a malloc'ed *password (caller frees, and should wipe), 0 when
 * no line matches or the file is missing, not a regular file, or
 * accessible by group or others, or MOLT_DB_ENOMEM. */
MOLT_DB_API
int molt_db_pgpass_lookup(const char *path, const char *host, uint16_t port,
                          const char *dbname, const char *user,
                          char **password);

/* Name of an sslmode ("verify-full"); never NULL. */
MOLT_DB_API
const char *molt_db_sslmode_name(molt_db_sslmode mode);

#ifdef __cplusplus
}
#endif
#endif
