/* A worker built without Django's SQLite functions (CMake option
 * MOLT_WORKER_DJANGO_SQLITE=OFF, no PCRE2): an alias that asks for them is
 * refused when the worker starts (backend_sqlite.c). */
#include "sqlite_django.h"

int mw_sqlite_django_built(void)
{
    return 0;
}

int mw_sqlite_django_register(sqlite3 *db)
{
    (void)db;
    return SQLITE_ERROR;
}
