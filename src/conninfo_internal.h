/*
 * Internal to the conninfo parsers: the raw option values as written (before
 * environment variables, defaults and validation), shared by the key=value
 * parser (conninfo.c) and the URI parser (conninfo_uri.c).
 */
#ifndef MOLT_DB_CONNINFO_INTERNAL_H
#define MOLT_DB_CONNINFO_INTERNAL_H

#include <stddef.h>

#include "molt_db/conninfo.h"

/* Every key libpq 15 knows (plus a few from 16), in table order. */
typedef enum molt_db__key {
    MOLT_DB__K_HOST = 0,
    MOLT_DB__K_HOSTADDR,
    MOLT_DB__K_PORT,
    MOLT_DB__K_DBNAME,
    MOLT_DB__K_USER,
    MOLT_DB__K_PASSWORD,
    MOLT_DB__K_PASSFILE,
    MOLT_DB__K_CHANNEL_BINDING,
    MOLT_DB__K_CONNECT_TIMEOUT,
    MOLT_DB__K_CLIENT_ENCODING,
    MOLT_DB__K_OPTIONS,
    MOLT_DB__K_APPLICATION_NAME,
    MOLT_DB__K_FALLBACK_APPLICATION_NAME,
    MOLT_DB__K_KEEPALIVES,
    MOLT_DB__K_KEEPALIVES_IDLE,
    MOLT_DB__K_KEEPALIVES_INTERVAL,
    MOLT_DB__K_KEEPALIVES_COUNT,
    MOLT_DB__K_TCP_USER_TIMEOUT,
    MOLT_DB__K_SSLMODE,
    MOLT_DB__K_SSLCOMPRESSION,
    MOLT_DB__K_SSLCERT,
    MOLT_DB__K_SSLKEY,
    MOLT_DB__K_SSLPASSWORD,
    MOLT_DB__K_SSLROOTCERT,
    MOLT_DB__K_SSLCRL,
    MOLT_DB__K_SSLCRLDIR,
    MOLT_DB__K_SSLSNI,
    MOLT_DB__K_SSLCERTMODE,
    MOLT_DB__K_REQUIREPEER,
    MOLT_DB__K_SSL_MIN_PROTOCOL_VERSION,
    MOLT_DB__K_SSL_MAX_PROTOCOL_VERSION,
    MOLT_DB__K_GSSENCMODE,
    MOLT_DB__K_KRBSRVNAME,
    MOLT_DB__K_GSSLIB,
    MOLT_DB__K_REPLICATION,
    MOLT_DB__K_TARGET_SESSION_ATTRS,
    MOLT_DB__K_LOAD_BALANCE_HOSTS,
    MOLT_DB__K_SERVICE,
    MOLT_DB__K_COUNT
} molt_db__key;

typedef struct molt_db__opts {
    char *val[MOLT_DB__K_COUNT];     /* owned; NULL = not given */
    unsigned char from_env[MOLT_DB__K_COUNT];
} molt_db__opts;

/* Stores a copy of value under the key named `key` (a later value replaces
 * an earlier one, as in libpq). Returns MOLT_DB_OK, MOLT_DB_ECONFIG
 * ("unknown connection option") or MOLT_DB_ENOMEM. */
int molt_db__opts_set(molt_db__opts *o, const char *key, const char *value,
                      molt_db_error *err);

/* Frees every value, wiping secret ones first. */
void molt_db__opts_free(molt_db__opts *o);

/* Length of the URI scheme prefix ("postgresql://" or "postgres://") that s
 * starts with, or 0. */
size_t molt_db__uri_prefix_len(const char *s);

/* Parses a postgresql:// URI into o. Error messages give positions, never
 * the URI (it may hold a password). */
int molt_db__conninfo_parse_uri(molt_db__opts *o, const char *uri,
                                molt_db_error *err);

/* Overwrites n bytes so the compiler cannot drop it (passwords). */
void molt_db__wipe(void *p, size_t n);

#endif
