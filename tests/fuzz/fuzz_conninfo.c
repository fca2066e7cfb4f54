/* libFuzzer harness for molt_db_conninfo_parse: any byte string (up to the
 * first NUL) must parse or fail cleanly, never crash or leak; on success the
 * documented invariants hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/conninfo.h"

extern char **environ;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Keep runs reproducible: no PG* variables, no ~/.pgpass or certs. */
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            const char *eq = strchr(*e, '=');
            size_t n = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
            if (strncmp(*e, "PG", 2) == 0 && n < sizeof name) {
                memcpy(name, *e, n);
                name[n] = '\0';
                break;
            }
        }
        if (name[0] == '\0' || unsetenv(name) != 0)
            break;
    }
    setenv("HOME", "/nonexistent-molt-fuzz-home", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_conninfo *ci = NULL;
    int rc = molt_db_conninfo_parse(s, &ci, &err);
    if (rc == MOLT_DB_OK) {
        if (ci == NULL || ci->nhosts < 1 || ci->user == NULL ||
            ci->dbname == NULL || ci->ssl_min_protocol_version == NULL)
            abort();
        for (size_t i = 0; i < ci->nhosts; i++)
            if (ci->hosts[i].host == NULL || ci->hosts[i].port == 0)
                abort();
    } else if (ci != NULL || err.code != rc ||
               memchr(err.message, '\0', sizeof err.message) == NULL) {
        abort();
    }
    molt_db_conninfo_free(ci);
    molt_db_error_clear(&err);
    free(s);
    return 0;
}
