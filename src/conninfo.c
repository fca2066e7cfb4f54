/*
 * Connection strings: the key table, the key=value parser, environment
 * variables, defaults, validation and the per-host password lookup.
 * The URI form is parsed in conninfo_uri.c into the same raw option table.
 * Rules follow libpq 15 (fe-connect.c); see include/molt_db/conninfo.h.
 */
#include "molt_db/conninfo.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conninfo_internal.h"

#define DEFAULT_SOCKET_DIR "/var/run/postgresql"
#define DEFAULT_PORT 5432

typedef struct key_def {
    const char *name;
    const char *envvar; /* NULL: libpq reads no variable for it */
    int secret;         /* wiped on free; value never echoed */
} key_def;

/* Indexed by molt_db__key. */
static const key_def KEYS[MOLT_DB__K_COUNT] = {
    [MOLT_DB__K_HOST] = {"host", "PGHOST", 0},
    [MOLT_DB__K_HOSTADDR] = {"hostaddr", "PGHOSTADDR", 0},
    [MOLT_DB__K_PORT] = {"port", "PGPORT", 0},
    [MOLT_DB__K_DBNAME] = {"dbname", "PGDATABASE", 0},
    [MOLT_DB__K_USER] = {"user", "PGUSER", 0},
    [MOLT_DB__K_PASSWORD] = {"password", "PGPASSWORD", 1},
    [MOLT_DB__K_PASSFILE] = {"passfile", "PGPASSFILE", 0},
    [MOLT_DB__K_CHANNEL_BINDING] = {"channel_binding", "PGCHANNELBINDING", 0},
    [MOLT_DB__K_CONNECT_TIMEOUT] = {"connect_timeout", "PGCONNECT_TIMEOUT", 0},
    [MOLT_DB__K_CLIENT_ENCODING] = {"client_encoding", "PGCLIENTENCODING", 0},
    [MOLT_DB__K_OPTIONS] = {"options", "PGOPTIONS", 0},
    [MOLT_DB__K_APPLICATION_NAME] = {"application_name", "PGAPPNAME", 0},
    [MOLT_DB__K_FALLBACK_APPLICATION_NAME] = {"fallback_application_name",
                                              NULL, 0},
    [MOLT_DB__K_KEEPALIVES] = {"keepalives", NULL, 0},
    [MOLT_DB__K_KEEPALIVES_IDLE] = {"keepalives_idle", NULL, 0},
    [MOLT_DB__K_KEEPALIVES_INTERVAL] = {"keepalives_interval", NULL, 0},
    [MOLT_DB__K_KEEPALIVES_COUNT] = {"keepalives_count", NULL, 0},
    [MOLT_DB__K_TCP_USER_TIMEOUT] = {"tcp_user_timeout", NULL, 0},
    [MOLT_DB__K_SSLMODE] = {"sslmode", "PGSSLMODE", 0},
    [MOLT_DB__K_SSLCOMPRESSION] = {"sslcompression", "PGSSLCOMPRESSION", 0},
    [MOLT_DB__K_SSLCERT] = {"sslcert", "PGSSLCERT", 0},
    [MOLT_DB__K_SSLKEY] = {"sslkey", "PGSSLKEY", 0},
    [MOLT_DB__K_SSLPASSWORD] = {"sslpassword", NULL, 1},
    [MOLT_DB__K_SSLROOTCERT] = {"sslrootcert", "PGSSLROOTCERT", 0},
    [MOLT_DB__K_SSLCRL] = {"sslcrl", "PGSSLCRL", 0},
    [MOLT_DB__K_SSLCRLDIR] = {"sslcrldir", "PGSSLCRLDIR", 0},
    [MOLT_DB__K_SSLSNI] = {"sslsni", "PGSSLSNI", 0},
    [MOLT_DB__K_SSLCERTMODE] = {"sslcertmode", "PGSSLCERTMODE", 0},
    [MOLT_DB__K_REQUIREPEER] = {"requirepeer", "PGREQUIREPEER", 0},
    [MOLT_DB__K_SSL_MIN_PROTOCOL_VERSION] = {"ssl_min_protocol_version",
                                             "PGSSLMINPROTOCOLVERSION", 0},
    [MOLT_DB__K_SSL_MAX_PROTOCOL_VERSION] = {"ssl_max_protocol_version",
                                             "PGSSLMAXPROTOCOLVERSION", 0},
    [MOLT_DB__K_GSSENCMODE] = {"gssencmode", "PGGSSENCMODE", 0},
    [MOLT_DB__K_KRBSRVNAME] = {"krbsrvname", "PGKRBSRVNAME", 0},
    [MOLT_DB__K_GSSLIB] = {"gsslib", "PGGSSLIB", 0},
    [MOLT_DB__K_REPLICATION] = {"replication", NULL, 0},
    [MOLT_DB__K_TARGET_SESSION_ATTRS] = {"target_session_attrs",
                                         "PGTARGETSESSIONATTRS", 0},
    [MOLT_DB__K_LOAD_BALANCE_HOSTS] = {"load_balance_hosts",
                                       "PGLOADBALANCEHOSTS", 0},
    [MOLT_DB__K_SERVICE] = {"service", "PGSERVICE", 0},
};

/* explicit_bzero (glibc, musl, BSDs) rather than OPENSSL_cleanse keeps the
 * conninfo code free of libcrypto, so the fuzzer links without it. */
void molt_db__wipe(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
#if defined(__GLIBC__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||    \
    defined(__NetBSD__) || (defined(__linux__) && !defined(__ANDROID__))
    explicit_bzero(p, n);
#else
    /* A volatile pointer keeps the stores from being optimized away. */
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
#endif
}

static void free_secret(char *s)
{
    if (s != NULL) {
        molt_db__wipe(s, strlen(s));
        free(s);
    }
}

int molt_db__opts_set(molt_db__opts *o, const char *key, const char *value,
                      molt_db_error *err)
{
    for (int k = 0; k < MOLT_DB__K_COUNT; k++) {
        if (strcmp(KEYS[k].name, key) != 0)
            continue;
        char *copy = strdup(value);
        if (copy == NULL)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
        if (KEYS[k].secret)
            free_secret(o->val[k]);
        else
            free(o->val[k]);
        o->val[k] = copy;
        o->from_env[k] = 0;
        return MOLT_DB_OK;
    }
    return molt_db_error_set(err, MOLT_DB_ECONFIG,
                             "unknown connection option \"%s\"", key);
}

void molt_db__opts_free(molt_db__opts *o)
{
    for (int k = 0; k < MOLT_DB__K_COUNT; k++) {
        if (KEYS[k].secret)
            free_secret(o->val[k]);
        else
            free(o->val[k]);
        o->val[k] = NULL;
    }
}

/* ---- key=value strings ---- */

/* Parses `key = value key='quoted \' value'` as libpq's conninfo_parse does.
 * Positions in messages are 1-based byte offsets into the string; values are
 * never echoed (one may be a password). */
static int parse_keyvalue(molt_db__opts *o, const char *str, molt_db_error *err)
{
    size_t len = strlen(str);
    /* Every key and value is at most len bytes once unescaped. */
    char *key = malloc(len + 1), *val = malloc(len + 1);
    int rc = MOLT_DB_OK;
    if (key == NULL || val == NULL) {
        rc = molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
        goto done;
    }
    const char *cp = str;
    while (*cp != '\0') {
        if (isspace((unsigned char)*cp)) {
            cp++;
            continue;
        }
        size_t key_pos = (size_t)(cp - str) + 1, kn = 0;
        while (*cp != '\0' && *cp != '=' && !isspace((unsigned char)*cp))
            key[kn++] = *cp++;
        key[kn] = '\0';
        while (isspace((unsigned char)*cp))
            cp++;
        if (*cp != '=') {
            rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                                   "missing \"=\" after the key at position "
                                   "%zu in connection string",
                                   key_pos);
            goto done;
        }
        cp++;
        while (isspace((unsigned char)*cp))
            cp++;
        size_t vn = 0;
        if (*cp != '\'') {
            while (*cp != '\0' && !isspace((unsigned char)*cp)) {
                if (*cp == '\\') {
                    cp++;
                    if (*cp == '\0')
                        break;
                }
                val[vn++] = *cp++;
            }
        } else {
            size_t quote_pos = (size_t)(cp - str) + 1;
            cp++;
            for (;;) {
                if (*cp == '\0') {
                    rc = molt_db_error_set(
                        err, MOLT_DB_ECONFIG,
                        "unterminated quoted string for \"%s\" starting at "
                        "position %zu in connection string",
                        key, quote_pos);
                    goto done;
                }
                if (*cp == '\\') {
                    cp++;
                    if (*cp != '\0')
                        val[vn++] = *cp++;
                    continue;
                }
                if (*cp == '\'') {
                    cp++;
                    break;
                }
                val[vn++] = *cp++;
            }
        }
        val[vn] = '\0';
        rc = molt_db__opts_set(o, key, val, err);
        if (rc != MOLT_DB_OK)
            goto done;
    }
done:
    if (val != NULL) {
        molt_db__wipe(val, len + 1);
        free(val);
    }
    free(key);
    return rc;
}

/* ---- environment and helpers ---- */

static const char *from_note(const molt_db__opts *o, int k)
{
    return o->from_env[k] ? " (from the environment)" : "";
}

static int given(const molt_db__opts *o, int k)
{
    return o->val[k] != NULL && o->val[k][0] != '\0';
}

static int nomem(molt_db_error *err)
{
    return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
}

/* *out = copy of o->val[k], or NULL when not given or empty. */
static int dup_opt(const molt_db__opts *o, int k, char **out,
                   molt_db_error *err)
{
    *out = NULL;
    if (!given(o, k))
        return MOLT_DB_OK;
    *out = strdup(o->val[k]);
    return *out == NULL ? nomem(err) : MOLT_DB_OK;
}

static int apply_env(molt_db__opts *o, molt_db_error *err)
{
    for (int k = 0; k < MOLT_DB__K_COUNT; k++) {
        if (o->val[k] != NULL || KEYS[k].envvar == NULL)
            continue;
        const char *v = getenv(KEYS[k].envvar);
        if (v == NULL)
            continue;
        if ((o->val[k] = strdup(v)) == NULL)
            return nomem(err);
        o->from_env[k] = 1;
    }
    return MOLT_DB_OK;
}

/* libpq's parse_int_param: optional leading and trailing whitespace around
 * a base-10 int; anything else is an error naming the key. */
static int parse_int(const molt_db__opts *o, int k, int *out,
                     molt_db_error *err)
{
    const char *v = o->val[k];
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end != v && errno == 0 && n >= INT_MIN && n <= INT_MAX) {
        while (isspace((unsigned char)*end))
            end++;
        if (*end == '\0') {
            *out = (int)n;
            return MOLT_DB_OK;
        }
    }
    return molt_db_error_set(err, MOLT_DB_ECONFIG,
                             "invalid integer value \"%s\" for connection "
                             "option \"%s\"%s",
                             v, KEYS[k].name, from_note(o, k));
}

/* Optional int: *out unchanged when not given. */
static int opt_int(const molt_db__opts *o, int k, int *out, molt_db_error *err)
{
    return given(o, k) ? parse_int(o, k, out, err) : MOLT_DB_OK;
}

/* Index of o->val[k] in names (NULL-terminated), *out unchanged when not
 * given; an unknown value is MOLT_DB_ECONFIG naming the key. */
static int opt_enum(const molt_db__opts *o, int k, const char *const *names,
                    int *out, molt_db_error *err)
{
    if (o->val[k] == NULL)
        return MOLT_DB_OK;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], o->val[k]) == 0) {
            *out = i;
            return MOLT_DB_OK;
        }
    }
    return molt_db_error_set(err, MOLT_DB_ECONFIG,
                             "invalid %s value: \"%s\"%s", KEYS[k].name,
                             o->val[k], from_note(o, k));
}

static const char *const SSLMODES[] = {"disable", "allow", "prefer",
                                       "require", "verify-ca", "verify-full",
                                       NULL};

const char *molt_db_sslmode_name(molt_db_sslmode mode)
{
    if ((int)mode < 0 || (int)mode > MOLT_DB_SSLMODE_VERIFY_FULL)
        return "unknown";
    return SSLMODES[mode];
}

/* ---- home directory, OS user ---- */

/* getpwuid_r(geteuid()) with a growing buffer; field 0 = name, 1 = dir. */
static int passwd_field(int which, char **out)
{
    *out = NULL;
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 1024;
    for (;;) {
        char *buf = malloc(size);
        if (buf == NULL)
            return MOLT_DB_ENOMEM;
        struct passwd pw, *res = NULL;
        int rc = getpwuid_r(geteuid(), &pw, buf, size, &res);
        if (rc == ERANGE && size < (1u << 20)) {
            free(buf);
            size *= 2;
            continue;
        }
        int result = MOLT_DB_OK;
        if (rc == 0 && res != NULL) {
            const char *f = which == 0 ? pw.pw_name : pw.pw_dir;
            if (f != NULL && f[0] != '\0' && (*out = strdup(f)) == NULL)
                result = MOLT_DB_ENOMEM;
        }
        free(buf);
        return result;
    }
}

/* $HOME, else the passwd entry; *out NULL when neither is known. */
static int home_dir(char **out)
{
    const char *h = getenv("HOME");
    if (h != NULL && h[0] != '\0') {
        *out = strdup(h);
        return *out == NULL ? MOLT_DB_ENOMEM : MOLT_DB_OK;
    }
    return passwd_field(1, out);
}

/* *out = home + "/" + rel, or NULL when there is no home. */
static int home_path(const char *home, const char *rel, char **out)
{
    *out = NULL;
    if (home == NULL)
        return MOLT_DB_OK;
    size_t n = strlen(home) + 1 + strlen(rel) + 1;
    if ((*out = malloc(n)) == NULL)
        return MOLT_DB_ENOMEM;
    snprintf(*out, n, "%s/%s", home, rel);
    return MOLT_DB_OK;
}

/* Sets *field to the given value, else to home/rel when that file exists. */
static int path_default(const molt_db__opts *o, int k, const char *home,
                        const char *rel, char **field, molt_db_error *err)
{
    if (given(o, k))
        return dup_opt(o, k, field, err);
    char *p;
    if (home_path(home, rel, &p) != MOLT_DB_OK)
        return nomem(err);
    struct stat st;
    if (p != NULL && stat(p, &st) == 0)
        *field = p;
    else
        free(p);
    return MOLT_DB_OK;
}

/* ---- host, hostaddr and port lists ---- */

static void free_list(char **items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

/* Splits a comma-separated list ("a,,b" is three entries, the middle one
 * empty). */
static int split_list(const char *s, char ***items, size_t *n)
{
    size_t count = 1;
    for (const char *p = s; *p != '\0'; p++)
        count += *p == ',';
    char **v = calloc(count, sizeof *v);
    if (v == NULL)
        return MOLT_DB_ENOMEM;
    const char *start = s;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(start, ',');
        size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
        if ((v[i] = strndup(start, len)) == NULL) {
            free_list(v, count);
            return MOLT_DB_ENOMEM;
        }
        start = end != NULL ? end + 1 : start + len;
    }
    *items = v;
    *n = count;
    return MOLT_DB_OK;
}

static int valid_ip(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

static int build_hosts(const molt_db__opts *o, molt_db_conninfo *ci,
                       molt_db_error *err)
{
    char **hosts = NULL, **addrs = NULL, **ports = NULL;
    size_t nh = 0, na = 0, np = 0;
    int rc = MOLT_DB_OK;
    if ((given(o, MOLT_DB__K_HOST) &&
         split_list(o->val[MOLT_DB__K_HOST], &hosts, &nh) != MOLT_DB_OK) ||
        (given(o, MOLT_DB__K_HOSTADDR) &&
         split_list(o->val[MOLT_DB__K_HOSTADDR], &addrs, &na) != MOLT_DB_OK) ||
        (given(o, MOLT_DB__K_PORT) &&
         split_list(o->val[MOLT_DB__K_PORT], &ports, &np) != MOLT_DB_OK)) {
        rc = nomem(err);
        goto done;
    }
    if (hosts != NULL && addrs != NULL && nh != na) {
        rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                               "could not match %zu host names to %zu "
                               "hostaddr values",
                               nh, na);
        goto done;
    }
    size_t n = addrs != NULL ? na : hosts != NULL ? nh : 1;
    if (ports != NULL && np != 1 && np != n) {
        rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                               "could not match %zu port numbers to %zu "
                               "hosts",
                               np, n);
        goto done;
    }
    if ((ci->hosts = calloc(n, sizeof *ci->hosts)) == NULL) {
        rc = nomem(err);
        goto done;
    }
    ci->nhosts = n;
    for (size_t i = 0; i < n; i++) {
        molt_db_host *h = &ci->hosts[i];
        const char *addr = addrs != NULL ? addrs[i] : "";
        const char *name = hosts != NULL ? hosts[i] : "";
        const char *port = ports != NULL ? ports[np == 1 ? 0 : i] : "";
        if (addr[0] != '\0') {
            if (!valid_ip(addr)) {
                rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                                       "invalid hostaddr \"%s\": not a "
                                       "numeric IPv4 or IPv6 address%s",
                                       addr,
                                       from_note(o, MOLT_DB__K_HOSTADDR));
                goto done;
            }
            if ((h->hostaddr = strdup(addr)) == NULL) {
                rc = nomem(err);
                goto done;
            }
        }
        if (name[0] == '\0')
            name = h->hostaddr != NULL ? h->hostaddr : DEFAULT_SOCKET_DIR;
        if ((h->host = strdup(name)) == NULL) {
            rc = nomem(err);
            goto done;
        }
        h->port = DEFAULT_PORT;
        if (port[0] != '\0') {
            char *end;
            errno = 0;
            long p = strtol(port, &end, 10);
            while (end != port && isspace((unsigned char)*end))
                end++;
            if (end == port || *end != '\0' || errno != 0 || p < 1 ||
                p > 65535) {
                rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                                       "invalid port number: \"%s\"%s", port,
                                       from_note(o, MOLT_DB__K_PORT));
                goto done;
            }
            h->port = (uint16_t)p;
        }
    }
done:
    free_list(hosts, nh);
    free_list(addrs, na);
    free_list(ports, np);
    return rc;
}

/* Explicit password for every host, else each host's passfile line. */
static int build_passwords(const molt_db__opts *o, molt_db_conninfo *ci,
                           const char *home, molt_db_error *err)
{
    if (given(o, MOLT_DB__K_PASSWORD)) {
        for (size_t i = 0; i < ci->nhosts; i++)
            if ((ci->hosts[i].password = strdup(o->val[MOLT_DB__K_PASSWORD])) ==
                NULL)
                return nomem(err);
        return MOLT_DB_OK;
    }
    char *passfile = NULL;
    if (given(o, MOLT_DB__K_PASSFILE))
        passfile = strdup(o->val[MOLT_DB__K_PASSFILE]);
    else if (home_path(home, ".pgpass", &passfile) != MOLT_DB_OK)
        return nomem(err);
    if (passfile == NULL)
        return given(o, MOLT_DB__K_PASSFILE) ? nomem(err) : MOLT_DB_OK;
    int rc = MOLT_DB_OK;
    for (size_t i = 0; i < ci->nhosts; i++) {
        molt_db_host *h = &ci->hosts[i];
        /* libpq: the default socket directory is "localhost" in the file. */
        const char *pwhost =
            strcmp(h->host, DEFAULT_SOCKET_DIR) == 0 ? "localhost" : h->host;
        int r = molt_db_pgpass_lookup(passfile, pwhost, h->port, ci->dbname,
                                      ci->user, &h->password);
        if (r < 0) {
            rc = nomem(err);
            break;
        }
        if (h->password != NULL && h->password[0] == '\0') {
            free(h->password);
            h->password = NULL;
        }
    }
    free(passfile);
    return rc;
}

/* ---- the no-op and unsupported keys ---- */

static int check_unsupported(const molt_db__opts *o, molt_db_error *err)
{
    if (o->val[MOLT_DB__K_SERVICE] != NULL)
        return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                 "connection option \"service\"%s: service "
                                 "files are not supported",
                                 from_note(o, MOLT_DB__K_SERVICE));
    static const int never[] = {MOLT_DB__K_SSLCRL, MOLT_DB__K_SSLCRLDIR,
                                MOLT_DB__K_REQUIREPEER};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (given(o, never[i]))
            return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                     "connection option \"%s\"%s is not "
                                     "supported",
                                     KEYS[never[i]].name,
                                     from_note(o, never[i]));
    static const char *const gss[] = {"disable", "prefer", "require", NULL};
    int g = 0;
    int rc = opt_enum(o, MOLT_DB__K_GSSENCMODE, gss, &g, err);
    if (rc == MOLT_DB_OK && g == 2)
        return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                 "gssencmode=require is not supported (no "
                                 "GSSAPI)");
    static const char *const bit[] = {"0", "1", NULL};
    int dummy = 0;
    if (rc == MOLT_DB_OK)
        rc = opt_enum(o, MOLT_DB__K_SSLCOMPRESSION, bit, &dummy, err);
    const char *rep = o->val[MOLT_DB__K_REPLICATION];
    if (rc == MOLT_DB_OK && rep != NULL) {
        static const char *const falses[] = {"0", "false", "off", "no", "f",
                                             "n", NULL};
        int is_false = 0;
        for (int i = 0; falses[i] != NULL; i++)
            is_false |= strcasecmp(rep, falses[i]) == 0;
        if (!is_false)
            return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                     "connection option \"replication\": "
                                     "replication connections are not "
                                     "supported");
    }
    return rc;
}

static int build_tls(const molt_db__opts *o, molt_db_conninfo *ci,
                     const char *home, molt_db_error *err)
{
    int v = MOLT_DB_SSLMODE_PREFER;
    int rc = opt_enum(o, MOLT_DB__K_SSLMODE, SSLMODES, &v, err);
    if (rc != MOLT_DB_OK)
        return rc;
    ci->sslmode = (molt_db_sslmode)v;
    static const char *const bit[] = {"0", "1", NULL};
    ci->sslsni = 1;
    if ((rc = opt_enum(o, MOLT_DB__K_SSLSNI, bit, &ci->sslsni, err)) !=
        MOLT_DB_OK)
        return rc;
    static const char *const certmodes[] = {"disable", "allow", "require",
                                            NULL};
    int cm = 1;
    if ((rc = opt_enum(o, MOLT_DB__K_SSLCERTMODE, certmodes, &cm, err)) !=
        MOLT_DB_OK)
        return rc;
    if (cm == 2)
        return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                 "sslcertmode=require is not supported");
    static const char *const tlsv[] = {"TLSv1", "TLSv1.1", "TLSv1.2",
                                       "TLSv1.3", NULL};
    int vmin = 2, vmax = 3;
    if ((rc = opt_enum(o, MOLT_DB__K_SSL_MIN_PROTOCOL_VERSION, tlsv, &vmin,
                       err)) != MOLT_DB_OK)
        return rc;
    /* libpq: an empty maximum means no maximum. */
    if (given(o, MOLT_DB__K_SSL_MAX_PROTOCOL_VERSION) &&
        (rc = opt_enum(o, MOLT_DB__K_SSL_MAX_PROTOCOL_VERSION, tlsv, &vmax,
                       err)) != MOLT_DB_OK)
        return rc;
    if (vmin > vmax)
        return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                 "invalid SSL protocol version range: "
                                 "ssl_min_protocol_version is above "
                                 "ssl_max_protocol_version");
    if ((ci->ssl_min_protocol_version = strdup(tlsv[vmin])) == NULL ||
        (ci->sslcertmode = strdup(certmodes[cm])) == NULL)
        return nomem(err);
    if ((rc = dup_opt(o, MOLT_DB__K_SSL_MAX_PROTOCOL_VERSION,
                      &ci->ssl_max_protocol_version, err)) != MOLT_DB_OK ||
        (rc = dup_opt(o, MOLT_DB__K_SSLPASSWORD, &ci->sslpassword, err)) !=
            MOLT_DB_OK ||
        (rc = path_default(o, MOLT_DB__K_SSLROOTCERT, home,
                           ".postgresql/root.crt", &ci->sslrootcert, err)) !=
            MOLT_DB_OK ||
        (rc = path_default(o, MOLT_DB__K_SSLCERT, home,
                           ".postgresql/postgresql.crt", &ci->sslcert, err)) !=
            MOLT_DB_OK ||
        (rc = path_default(o, MOLT_DB__K_SSLKEY, home,
                           ".postgresql/postgresql.key", &ci->sslkey, err)) !=
            MOLT_DB_OK)
        return rc;
    return MOLT_DB_OK;
}

static int build_timeouts(const molt_db__opts *o, molt_db_conninfo *ci,
                          molt_db_error *err)
{
    int t = 0, rc;
    if ((rc = opt_int(o, MOLT_DB__K_CONNECT_TIMEOUT, &t, err)) != MOLT_DB_OK)
        return rc;
    if (t > INT_MAX / 1000)
        return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                 "connect_timeout %d is out of range%s", t,
                                 from_note(o, MOLT_DB__K_CONNECT_TIMEOUT));
    /* libpq: below 2 s rounding could fail a connection at once. */
    if (t == 1)
        t = 2;
    ci->connect_timeout_ms = t > 0 ? t * 1000 : 0;
    ci->keepalives = 1;
    int *ints[] = {&ci->keepalives, &ci->keepalives_idle_s,
                   &ci->keepalives_interval_s, &ci->keepalives_count,
                   &ci->tcp_user_timeout_ms};
    static const int keys[] = {
        MOLT_DB__K_KEEPALIVES, MOLT_DB__K_KEEPALIVES_IDLE,
        MOLT_DB__K_KEEPALIVES_INTERVAL, MOLT_DB__K_KEEPALIVES_COUNT,
        MOLT_DB__K_TCP_USER_TIMEOUT};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if ((rc = opt_int(o, keys[i], ints[i], err)) != MOLT_DB_OK)
            return rc;
        if (*ints[i] < 0) /* libpq clamps negatives to 0 */
            *ints[i] = 0;
    }
    ci->keepalives = ci->keepalives != 0;
    return MOLT_DB_OK;
}

static int build(const molt_db__opts *o, molt_db_conninfo *ci,
                 molt_db_error *err)
{
    int rc = check_unsupported(o, err);
    if (rc != MOLT_DB_OK)
        return rc;
    static const char *const cb[] = {"disable", "prefer", "require", NULL};
    int v = MOLT_DB_CHANNEL_BINDING_PREFER;
    if ((rc = opt_enum(o, MOLT_DB__K_CHANNEL_BINDING, cb, &v, err)) !=
        MOLT_DB_OK)
        return rc;
    ci->channel_binding = (molt_db_channel_binding)v;
    static const char *const tsa[] = {"any",     "read-write", "read-only",
                                      "primary", "standby",    "prefer-standby",
                                      NULL};
    v = MOLT_DB_TARGET_ANY;
    if ((rc = opt_enum(o, MOLT_DB__K_TARGET_SESSION_ATTRS, tsa, &v, err)) !=
        MOLT_DB_OK)
        return rc;
    ci->target_session_attrs = (molt_db_target_session)v;
    static const char *const lb[] = {"disable", "random", NULL};
    v = 0;
    if ((rc = opt_enum(o, MOLT_DB__K_LOAD_BALANCE_HOSTS, lb, &v, err)) !=
        MOLT_DB_OK)
        return rc;
    ci->load_balance_random = v == 1;
    if ((rc = build_timeouts(o, ci, err)) != MOLT_DB_OK)
        return rc;

    if ((rc = dup_opt(o, MOLT_DB__K_USER, &ci->user, err)) != MOLT_DB_OK)
        return rc;
    if (ci->user == NULL) {
        if (passwd_field(0, &ci->user) != MOLT_DB_OK)
            return nomem(err);
        if (ci->user == NULL)
            return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                     "could not determine the OS user name; "
                                     "set \"user\" or PGUSER");
    }
    if ((rc = dup_opt(o, MOLT_DB__K_DBNAME, &ci->dbname, err)) != MOLT_DB_OK)
        return rc;
    if (ci->dbname == NULL && (ci->dbname = strdup(ci->user)) == NULL)
        return nomem(err);
    /* An application_name given, even empty, hides the fallback (libpq). */
    int app = o->val[MOLT_DB__K_APPLICATION_NAME] != NULL
                  ? MOLT_DB__K_APPLICATION_NAME
                  : MOLT_DB__K_FALLBACK_APPLICATION_NAME;
    if ((rc = dup_opt(o, app, &ci->application_name, err)) != MOLT_DB_OK ||
        (rc = dup_opt(o, MOLT_DB__K_OPTIONS, &ci->options, err)) !=
            MOLT_DB_OK ||
        (rc = dup_opt(o, MOLT_DB__K_CLIENT_ENCODING, &ci->client_encoding,
                      err)) != MOLT_DB_OK)
        return rc;
    if ((rc = build_hosts(o, ci, err)) != MOLT_DB_OK)
        return rc;

    char *home = NULL;
    if (home_dir(&home) != MOLT_DB_OK)
        return nomem(err);
    rc = build_tls(o, ci, home, err);
    if (rc == MOLT_DB_OK)
        rc = build_passwords(o, ci, home, err);
    free(home);
    return rc;
}

int molt_db_conninfo_parse(const char *str, molt_db_conninfo **out,
                           molt_db_error *err)
{
    *out = NULL;
    if (str == NULL)
        str = "";
    molt_db__opts o;
    memset(&o, 0, sizeof o);
    int rc;
    if (molt_db__uri_prefix_len(str) > 0) {
        rc = molt_db__conninfo_parse_uri(&o, str, err);
    } else {
        const char *p = str;
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '\0' && strchr(p, '=') == NULL)
            rc = molt_db_error_set(
                err, MOLT_DB_ECONFIG,
                "invalid connection string: it is neither a postgresql:// "
                "URI nor key=value pairs (a bare database name is not "
                "accepted; write dbname=NAME)");
        else
            rc = parse_keyvalue(&o, str, err);
    }
    if (rc == MOLT_DB_OK)
        rc = apply_env(&o, err);
    molt_db_conninfo *ci = NULL;
    if (rc == MOLT_DB_OK && (ci = calloc(1, sizeof *ci)) == NULL)
        rc = nomem(err);
    if (rc == MOLT_DB_OK)
        rc = build(&o, ci, err);
    molt_db__opts_free(&o);
    if (rc != MOLT_DB_OK) {
        molt_db_conninfo_free(ci);
        return rc;
    }
    *out = ci;
    return MOLT_DB_OK;
}

void molt_db_conninfo_free(molt_db_conninfo *ci)
{
    if (ci == NULL)
        return;
    for (size_t i = 0; i < ci->nhosts; i++) {
        free(ci->hosts[i].host);
        free(ci->hosts[i].hostaddr);
        free_secret(ci->hosts[i].password);
    }
    free(ci->hosts);
    free(ci->user);
    free(ci->dbname);
    free(ci->application_name);
    free(ci->options);
    free(ci->client_encoding);
    free(ci->sslrootcert);
    free(ci->sslcert);
    free(ci->sslkey);
    free_secret(ci->sslpassword);
    free(ci->ssl_min_protocol_version);
    free(ci->ssl_max_protocol_version);
    free(ci->sslcertmode);
    free(ci);
}
