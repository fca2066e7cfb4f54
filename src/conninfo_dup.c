/* Deep copy of a molt_db_conninfo (a connection keeps its own). */
#include <stdlib.h>
#include <string.h>

#include "molt_db/conninfo.h"

molt_db_conninfo *molt_db__conninfo_dup(const molt_db_conninfo *ci);

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst == NULL ? -1 : 0;
}

molt_db_conninfo *molt_db__conninfo_dup(const molt_db_conninfo *ci)
{
    molt_db_conninfo *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    *d = *ci;
    d->hosts = calloc(ci->nhosts ? ci->nhosts : 1, sizeof *d->hosts);
    int bad = d->hosts == NULL;
    /* Null every owned pointer first so a partial copy frees cleanly. */
    char **strs[] = {&d->user, &d->dbname, &d->application_name, &d->options,
                     &d->client_encoding, &d->sslrootcert, &d->sslcert,
                     &d->sslkey, &d->sslpassword, &d->ssl_min_protocol_version,
                     &d->ssl_max_protocol_version, &d->sslcertmode};
    const char *src[] = {ci->user, ci->dbname, ci->application_name, ci->options,
                         ci->client_encoding, ci->sslrootcert, ci->sslcert,
                         ci->sslkey, ci->sslpassword, ci->ssl_min_protocol_version,
                         ci->ssl_max_protocol_version, ci->sslcertmode};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        *strs[i] = NULL;
    if (bad) {
        d->nhosts = 0;
        molt_db_conninfo_free(d);
        return NULL;
    }
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        bad |= dup_str(strs[i], src[i]);
    for (size_t i = 0; i < ci->nhosts; i++) {
        d->hosts[i].port = ci->hosts[i].port;
        bad |= dup_str(&d->hosts[i].host, ci->hosts[i].host);
        bad |= dup_str(&d->hosts[i].hostaddr, ci->hosts[i].hostaddr);
        bad |= dup_str(&d->hosts[i].password, ci->hosts[i].password);
    }
    if (bad) {
        molt_db_conninfo_free(d);
        return NULL;
    }
    return d;
}
