/* The SQL functions Django registers on its own SQLite connections
 * (django/db/backends/sqlite3/_functions.py), implemented in C for the
 * worker's SQLite connections so that the SQL Django compiles runs there
 * with the same results. docs/worker.md lists which ones and their limits.
 *
 * An optional part: registered only on the aliases whose
 * sqlite_django_functions is set (the Django adapter sets it), and built
 * only with the CMake option MOLT_WORKER_DJANGO_SQLITE (it needs PCRE2);
 * without it, sqlite_django_absent.c stands in.
 *
 * Where we do not reproduce Python's result for some input, the function
 * raises an SQLite error whose message starts with MW_DJANGO_UNSUPPORTED;
 * the Django adapter then runs that query through the ORM. */
#ifndef MOLT_WORKER_SQLITE_DJANGO_H
#define MOLT_WORKER_SQLITE_DJANGO_H

#include <sqlite3.h>

#define MW_DJANGO_UNSUPPORTED "[molt:unsupported]"

typedef struct {
    const char *name;
    int nargs;
    void (*fn)(sqlite3_context *, int, sqlite3_value **);
} mw_django_fn;

/* 1 when this worker was built with the functions, else 0. */
int mw_sqlite_django_built(void);

/* Registers every function on `db`. Returns SQLITE_OK or the first error
 * code of sqlite3_create_function_v2 (SQLITE_ERROR when not built). */
int mw_sqlite_django_register(sqlite3 *db);

/* The tables the registration walks, ending with a NULL name (one per
 * file: date/time, text, regexp). */
const mw_django_fn *mw_django_time_functions(void);
const mw_django_fn *mw_django_text_functions(void);
const mw_django_fn *mw_django_regexp_functions(void);

#endif
