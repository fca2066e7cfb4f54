/*
 * postgresql:// URIs, split as libpq 15's conninfo_uri_parse_options does:
 *
 *   postgresql://[user[:password]@][host][:port][,host[:port]...]
 *                [/dbname][?key=value&...]
 *
 * Hosts and ports are collected into comma-separated "host" and "port"
 * values (an IPv6 host in brackets loses them); every piece is
 * percent-decoded. Error messages give 1-based positions and never quote the
 * URI, which may carry a password.
 */
#include <stdlib.h>
#include <string.h>

#include "conninfo_internal.h"
#include "hex.h"

size_t molt_db__uri_prefix_len(const char *s)
{
    static const char *const prefixes[] = {"postgresql://", "postgres://"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(s, prefixes[i], n) == 0)
            return n;
    }
    return 0;
}

/* Percent-decodes s[0..n) (pos: its 1-based position in the URI) into a new
 * string. %00 is refused: it would cut the value short. */
static int decode(const char *s, size_t n, size_t pos, char **out,
                  molt_db_error *err)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[j++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? molt_db__hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? molt_db__hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || hi * 16 + lo == 0) {
            molt_db__wipe(d, n + 1);
            free(d);
            return molt_db_error_set(
                err, MOLT_DB_ECONFIG,
                hi < 0 || lo < 0
                    ? "invalid percent-encoded token at position %zu in URI"
                    : "forbidden value %%00 at position %zu in URI",
                pos + i);
        }
        d[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[j] = '\0';
    *out = d;
    return MOLT_DB_OK;
}

/* Decodes s[0..n) and stores it under key; secret pieces are wiped. */
static int store(molt_db__opts *o, const char *key, const char *s, size_t n,
                 size_t pos, molt_db_error *err)
{
    char *v;
    int rc = decode(s, n, pos, &v, err);
    if (rc != MOLT_DB_OK)
        return rc;
    rc = molt_db__opts_set(o, key, v, err);
    molt_db__wipe(v, strlen(v));
    free(v);
    return rc;
}

/* key=value&key=value: each a conninfo key (ssl=true: sslmode=require). */
static int parse_query(molt_db__opts *o, const char *uri, const char *p,
                       molt_db_error *err)
{
    while (*p != '\0') {
        const char *start = p, *eq = NULL;
        size_t pos = (size_t)(p - uri) + 1;
        for (; *p != '\0' && *p != '&'; p++) {
            if (*p != '=')
                continue;
            if (eq != NULL)
                return molt_db_error_set(
                    err, MOLT_DB_ECONFIG,
                    "extra key/value separator \"=\" in URI query parameter "
                    "at position %zu",
                    pos);
            eq = p;
        }
        if (eq == NULL)
            return molt_db_error_set(err, MOLT_DB_ECONFIG,
                                     "missing key/value separator \"=\" in "
                                     "URI query parameter at position %zu",
                                     pos);
        char *key = NULL, *val = NULL;
        int rc = decode(start, (size_t)(eq - start), pos, &key, err);
        if (rc == MOLT_DB_OK)
            rc = decode(eq + 1, (size_t)(p - eq - 1),
                        (size_t)(eq + 1 - uri) + 1, &val, err);
        if (rc == MOLT_DB_OK) {
            if (strcmp(key, "ssl") == 0 && strcmp(val, "true") == 0)
                rc = molt_db__opts_set(o, "sslmode", "require", err);
            else
                rc = molt_db__opts_set(o, key, val, err);
            if (rc == MOLT_DB_ECONFIG)
                molt_db_error_set(err, MOLT_DB_ECONFIG,
                                  "unknown connection option \"%s\" in URI "
                                  "query",
                                  key);
        }
        if (val != NULL) {
            molt_db__wipe(val, strlen(val));
            free(val);
        }
        free(key);
        if (rc != MOLT_DB_OK)
            return rc;
        if (*p == '&')
            p++;
    }
    return MOLT_DB_OK;
}

/* Appends s[0..n) to the growing list *buf (length *len). */
static int append(char **buf, size_t *len, const char *s, size_t n,
                  molt_db_error *err)
{
    char *b = realloc(*buf, *len + n + 1);
    if (b == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    memcpy(b + *len, s, n);
    *len += n;
    b[*len] = '\0';
    *buf = b;
    return MOLT_DB_OK;
}

/* Parses the comma-separated host[:port] list at *pp; stores "host" and
 * "port" when non-empty, and leaves *pp at the terminator ('/', '?' or
 * NUL). Pieces are decoded after joining, as libpq does. */
static int parse_hosts(molt_db__opts *o, const char *uri, const char **pp,
                       molt_db_error *err)
{
    const char *p = *pp;
    size_t hosts_pos = (size_t)(p - uri) + 1;
    char *hosts = NULL, *ports = NULL;
    size_t hl = 0, pl = 0;
    int rc = MOLT_DB_OK;
    for (;;) {
        const char *h, *hend;
        if (*p == '[') {
            h = ++p;
            while (*p != '\0' && *p != ']')
                p++;
            if (*p == '\0') {
                rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                                       "missing \"]\" after the IPv6 host "
                                       "address at position %zu in URI",
                                       (size_t)(h - uri));
                goto done;
            }
            if (p == h) {
                rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                                       "IPv6 host address may not be empty "
                                       "(position %zu in URI)",
                                       (size_t)(h - uri));
                goto done;
            }
            hend = p++;
            if (*p != '\0' && *p != ':' && *p != '/' && *p != '?' &&
                *p != ',') {
                rc = molt_db_error_set(err, MOLT_DB_ECONFIG,
                                       "unexpected character \"%c\" at "
                                       "position %zu in URI (expected \":\", "
                                       "\",\" or \"/\" after \"]\")",
                                       *p, (size_t)(p - uri) + 1);
                goto done;
            }
        } else {
            h = p;
            while (*p != '\0' && *p != ':' && *p != '/' && *p != '?' &&
                   *p != ',')
                p++;
            hend = p;
        }
        if ((rc = append(&hosts, &hl, h, (size_t)(hend - h), err)) !=
            MOLT_DB_OK)
            goto done;
        if (*p == ':') {
            const char *port = ++p;
            while (*p != '\0' && *p != '/' && *p != '?' && *p != ',')
                p++;
            if ((rc = append(&ports, &pl, port, (size_t)(p - port), err)) !=
                MOLT_DB_OK)
                goto done;
        }
        if (*p != ',')
            break;
        p++;
        if ((rc = append(&hosts, &hl, ",", 1, err)) != MOLT_DB_OK ||
            (rc = append(&ports, &pl, ",", 1, err)) != MOLT_DB_OK)
            goto done;
    }
    if (hl > 0 && (rc = store(o, "host", hosts, hl, hosts_pos, err)) !=
                      MOLT_DB_OK)
        goto done;
    if (pl > 0 && (rc = store(o, "port", ports, pl, hosts_pos, err)) !=
                      MOLT_DB_OK)
        goto done;
    *pp = p;
done:
    free(hosts);
    free(ports);
    return rc;
}

int molt_db__conninfo_parse_uri(molt_db__opts *o, const char *uri,
                                molt_db_error *err)
{
    const char *start = uri + molt_db__uri_prefix_len(uri);
    const char *p = start;
    int rc;
    /* user[:password]@ is there when an '@' comes before any '/'. */
    while (*p != '\0' && *p != '@' && *p != '/')
        p++;
    if (*p == '@') {
        const char *at = p, *colon = memchr(start, ':', (size_t)(at - start));
        const char *uend = colon != NULL ? colon : at;
        if (uend > start &&
            (rc = store(o, "user", start, (size_t)(uend - start),
                        (size_t)(start - uri) + 1, err)) != MOLT_DB_OK)
            return rc;
        if (colon != NULL && at > colon + 1 &&
            (rc = store(o, "password", colon + 1, (size_t)(at - colon - 1),
                        (size_t)(colon - uri) + 2, err)) != MOLT_DB_OK)
            return rc;
        p = at + 1;
    } else {
        p = start;
    }
    if ((rc = parse_hosts(o, uri, &p, err)) != MOLT_DB_OK)
        return rc;
    if (*p == '/') {
        const char *db = ++p;
        while (*p != '\0' && *p != '?')
            p++;
        /* An empty path sets nothing, so PGDATABASE still applies. */
        if (p > db && (rc = store(o, "dbname", db, (size_t)(p - db),
                                  (size_t)(db - uri) + 1, err)) != MOLT_DB_OK)
            return rc;
    }
    if (*p == '?')
        return parse_query(o, uri, p + 1, err);
    return MOLT_DB_OK;
}
