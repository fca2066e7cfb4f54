/*
 * The password file (~/.pgpass), read as libpq reads it:
 *   hostname:port:database:username:password
 * one entry a line, the first matching line wins; a field that is exactly
 * "*" matches anything; "\:" and "\\" escape a colon and a backslash; lines
 * starting with '#' are comments. The file is ignored unless it is a regular
 * file that group and others cannot access (S_IRWXG | S_IRWXO).
 * Lines are read whole with getline(), however long.
 */
#include "molt_db/conninfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conninfo_internal.h"

/* If the field at p equals tok (after unescaping) or is "*", returns the
 * start of the next field; else NULL. A field must end with ':'. */
static const char *match_field(const char *p, const char *tok)
{
    if (p[0] == '*' && p[1] == ':')
        return p + 2;
    for (;;) {
        char c = *p;
        if (c == '\0')
            return NULL;
        if (c == ':')
            return *tok == '\0' ? p + 1 : NULL;
        if (c == '\\') {
            c = p[1];
            if (c == '\0')
                return NULL;
            p++;
        }
        p++;
        if (*tok != c)
            return NULL;
        tok++;
    }
}

/* The password field: unescaped, up to the first unescaped ':' (libpq
 * ignores anything after it). */
static char *copy_password(const char *p)
{
    char *out = malloc(strlen(p) + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (; *p != '\0' && *p != ':'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

int molt_db_pgpass_lookup(const char *path, const char *host, uint16_t port,
                          const char *dbname, const char *user,
                          char **password)
{
    *password = NULL;
    if (path == NULL || host == NULL || dbname == NULL || user == NULL)
        return 0;
    /* O_NONBLOCK: a FIFO must not hang us before fstat rejects it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        return 0;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return errno == ENOMEM ? MOLT_DB_ENOMEM : 0;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);

    char *line = NULL;
    size_t cap = 0;
    int result = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) {
            if (errno == ENOMEM)
                result = MOLT_DB_ENOMEM;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        const char *p = match_field(line, host);
        if (p != NULL)
            p = match_field(p, portstr);
        if (p != NULL)
            p = match_field(p, dbname);
        if (p != NULL)
            p = match_field(p, user);
        if (p == NULL)
            continue;
        *password = copy_password(p);
        result = *password != NULL ? 1 : MOLT_DB_ENOMEM;
        break;
    }
    if (line != NULL) {
        molt_db__wipe(line, cap);
        free(line);
    }
    fclose(f);
    return result;
}
