/* Hiding a DSN's password in place (see dsn_hide.h). */
#include "dsn_hide.h"

#include <string.h>

static size_t blank(char *p, size_t n)
{
    memset(p, '*', n);
    return n;
}

/* ?a=b&password=SECRET&c=d */
static size_t hide_query(char *q)
{
    size_t hidden = 0;
    while (q && *q) {
        char *end = strchr(q, '&');
        size_t n = end ? (size_t)(end - q) : strlen(q);
        if (n > 9 && !strncmp(q, "password=", 9))
            hidden += blank(q + 9, n - 9);
        q = end ? end + 1 : NULL;
    }
    return hidden;
}

/* postgresql://user:SECRET@host/db?password=SECRET: userinfo ends at the
 * first '@' before any '/', as libpq reads it */
static size_t hide_uri(char *rest)
{
    size_t hidden = 0;
    char *p = rest;
    while (*p && *p != '@' && *p != '/' && *p != '?')
        p++;
    if (*p == '@') {
        char *colon = memchr(rest, ':', (size_t)(p - rest));
        if (colon && p > colon + 1)
            hidden += blank(colon + 1, (size_t)(p - colon - 1));
    }
    return hidden + hide_query(strchr(rest, '?') ? strchr(rest, '?') + 1 : NULL);
}

/* host=h password='SE CRET' dbname=d */
static size_t hide_keywords(char *s)
{
    size_t hidden = 0;
    char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        char *key = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        int is_password = p - key == 8 && !strncmp(key, "password", 8);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=')
            return hidden; /* not key=value: libpq refuses it anyway */
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        char *v = p;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (is_password)
                hidden += blank(v + 1, (size_t)(p - v - 1));
            if (*p)
                p++;
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                p++;
            if (is_password)
                hidden += blank(v, (size_t)(p - v));
        }
    }
    return hidden;
}

size_t mw_dsn_hide_password(char *dsn)
{
    if (!strncmp(dsn, "postgresql://", 13))
        return hide_uri(dsn + 13);
    if (!strncmp(dsn, "postgres://", 11))
        return hide_uri(dsn + 11);
    if (!strncmp(dsn, "sqlite:", 7))
        return 0;
    return hide_keywords(dsn);
}
