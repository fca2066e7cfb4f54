/* molt_db_error: codes, messages and the server fields an error owns. */
#include "molt_db/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

void molt_db_error_init(molt_db_error *err)
{
    /* the 1 KB message only needs its NUL: this runs for every request */
    memset(err, 0, offsetof(molt_db_error, message));
    err->message[0] = 0;
    memset(&err->severity, 0, sizeof *err - offsetof(molt_db_error, severity));
}

static char **error_fields(molt_db_error *err, size_t *n)
{
    /* The owned string fields lie contiguously from severity to constraint. */
    *n = (size_t)(&err->constraint - &err->severity) + 1;
    return &err->severity;
}

void molt_db_error_clear(molt_db_error *err)
{
    if (err == NULL)
        return;
    size_t n;
    char **f = error_fields(err, &n);
    for (size_t i = 0; i < n; i++)
        free(f[i]);
    molt_db_error_init(err);
}

int molt_db_error_set(molt_db_error *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    molt_db_error_clear(err);
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void molt_db_error_move(molt_db_error *dst, molt_db_error *src)
{
    if (dst == src)
        return;
    molt_db_error_clear(dst);
    *dst = *src;
    molt_db_error_init(src);
}

int molt_db_error_copy(molt_db_error *dst, const molt_db_error *src)
{
    if (dst == src)
        return MOLT_DB_OK;
    molt_db_error_clear(dst);
    *dst = *src;
    size_t n;
    char **f = error_fields(dst, &n);
    int rc = MOLT_DB_OK;
    for (size_t i = 0; i < n; i++) {
        if (f[i] == NULL)
            continue;
        f[i] = strdup(f[i]);
        if (f[i] == NULL)
            rc = MOLT_DB_ENOMEM;
    }
    return rc;
}

const char *molt_db_code_name(int code)
{
    switch (code) {
    case MOLT_DB_OK: return "MOLT_DB_OK";
    case MOLT_DB_NEED_MORE: return "MOLT_DB_NEED_MORE";
    case MOLT_DB_ENOMEM: return "MOLT_DB_ENOMEM";
    case MOLT_DB_EINVAL: return "MOLT_DB_EINVAL";
    case MOLT_DB_EPROTO: return "MOLT_DB_EPROTO";
    case MOLT_DB_EIO: return "MOLT_DB_EIO";
    case MOLT_DB_ECONNECT: return "MOLT_DB_ECONNECT";
    case MOLT_DB_EAUTH: return "MOLT_DB_EAUTH";
    case MOLT_DB_ETLS: return "MOLT_DB_ETLS";
    case MOLT_DB_ESERVER: return "MOLT_DB_ESERVER";
    case MOLT_DB_ETIMEDOUT: return "MOLT_DB_ETIMEDOUT";
    case MOLT_DB_ECANCELED: return "MOLT_DB_ECANCELED";
    case MOLT_DB_ECLOSED: return "MOLT_DB_ECLOSED";
    case MOLT_DB_EBUSY: return "MOLT_DB_EBUSY";
    case MOLT_DB_ETYPE: return "MOLT_DB_ETYPE";
    case MOLT_DB_ERANGE: return "MOLT_DB_ERANGE";
    case MOLT_DB_ECONFIG: return "MOLT_DB_ECONFIG";
    case MOLT_DB_ESTATE: return "MOLT_DB_ESTATE";
    case MOLT_DB_ESKIPPED: return "MOLT_DB_ESKIPPED";
    default: return "MOLT_DB_UNKNOWN";
    }
}
