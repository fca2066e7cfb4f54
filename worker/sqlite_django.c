/* Registers Django's SQLite functions on a worker connection: see
 * sqlite_django.h. */
#include "sqlite_django.h"

#include <string.h>

int mw_sqlite_django_built(void)
{
    return 1;
}

int mw_sqlite_django_register(sqlite3 *db)
{
    const mw_django_fn *tables[] = {mw_django_time_functions(), mw_django_text_functions(),
                                    mw_django_regexp_functions()};
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
        for (const mw_django_fn *f = tables[t]; f->name; f++) {
            /* RAND is the one that must be evaluated per row */
            int flags = SQLITE_UTF8 | (strcmp(f->name, "RAND") ? SQLITE_DETERMINISTIC : 0);
            int rc = sqlite3_create_function_v2(db, f->name, f->nargs, flags, NULL, f->fn, NULL,
                                                NULL, NULL);
            if (rc != SQLITE_OK)
                return rc;
        }
    }
    return SQLITE_OK;
}
