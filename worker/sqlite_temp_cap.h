/*
 * A bound on the temporary files of one alias's SQLite connections (sorts,
 * temp indexes and tables, statement journals, materialized views): a VFS
 * that passes every file to the process's default VFS and counts the size
 * of the temporary ones; a write that would take their total past the cap
 * fails SQLITE_FULL (DbError 53100 for the request).
 *
 * One VFS per alias (connections share a cache, an in-memory database's
 * included, only through the same VFS), registered under a name of its own,
 * never as the default: other SQLite users of the process are not affected.
 *
 * Threads: open and close on one thread, with no connection using the VFS;
 * the count is atomic (the alias's connections run on threads of their
 * own).
 */
#ifndef MOLT_WORKER_SQLITE_TEMP_CAP_H
#define MOLT_WORKER_SQLITE_TEMP_CAP_H

#include <stdatomic.h>
#include <stdint.h>

#include <sqlite3.h>

typedef struct mw_sq_temp_cap {
    sqlite3_vfs vfs;       /* registered as `name` while open */
    sqlite3_vfs *real;     /* the default VFS when opened */
    int64_t cap;           /* bytes; the temporary files' total stays within */
    _Atomic int64_t used;  /* their total now */
    char name[48];
} mw_sq_temp_cap;

/* Registers t's VFS (t->name: pass it to sqlite3_open_v2) bounding the
 * temporary files to cap bytes. t must stay where it is until
 * mw_sq_temp_cap_close. SQLITE_OK, or SQLite's error (nothing to close). */
int mw_sq_temp_cap_open(mw_sq_temp_cap *t, int64_t cap);
/* Unregisters t's VFS; the connection using it must be closed first.
 * Harmless on a t never opened (zeroed). */
void mw_sq_temp_cap_close(mw_sq_temp_cap *t);

#endif
