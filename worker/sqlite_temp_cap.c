/* A per-alias bound on SQLite's temporary files (sqlite_temp_cap.h). */
#include "sqlite_temp_cap.h"

#include <stdio.h>
#include <string.h>

/* A temporary file: the real one follows it (szOsFile of the real VFS). */
typedef struct temp_file {
    sqlite3_file base;
    mw_sq_temp_cap *owner;
    int64_t size;          /* counted in owner->used */
} temp_file;

static sqlite3_file *real_file(sqlite3_file *f)
{
    return (sqlite3_file *)((temp_file *)f + 1);
}

/* Counts f as `size` bytes long; SQLITE_FULL when growing to it would
 * take the total past the cap. */
static int resize(temp_file *f, int64_t size)
{
    mw_sq_temp_cap *c = f->owner;
    int64_t d = size - f->size;
    if (d > 0 && atomic_fetch_add(&c->used, d) + d > c->cap) {
        atomic_fetch_sub(&c->used, d);
        return SQLITE_FULL;
    }
    if (d < 0)
        atomic_fetch_sub(&c->used, -d);
    f->size = size;
    return SQLITE_OK;
}

static int t_close(sqlite3_file *f)
{
    resize((temp_file *)f, 0);
    return real_file(f)->pMethods->xClose(real_file(f));
}

static int t_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return real_file(f)->pMethods->xRead(real_file(f), p, n, off);
}

static int t_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    temp_file *t = (temp_file *)f;
    int64_t end = off + n;
    if (end > t->size) {
        int rc = resize(t, end);
        if (rc != SQLITE_OK)
            return rc;
    }
    return real_file(f)->pMethods->xWrite(real_file(f), p, n, off);
}

static int t_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = real_file(f)->pMethods->xTruncate(real_file(f), size);
    temp_file *t = (temp_file *)f;
    if (rc == SQLITE_OK && size < t->size)
        resize(t, size);
    return rc;
}

static int t_sync(sqlite3_file *f, int flags)
{
    return real_file(f)->pMethods->xSync(real_file(f), flags);
}

static int t_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_file(f)->pMethods->xFileSize(real_file(f), size);
}

static int t_lock(sqlite3_file *f, int level)
{
    return real_file(f)->pMethods->xLock(real_file(f), level);
}

static int t_unlock(sqlite3_file *f, int level)
{
    return real_file(f)->pMethods->xUnlock(real_file(f), level);
}

static int t_check_reserved(sqlite3_file *f, int *out)
{
    return real_file(f)->pMethods->xCheckReservedLock(real_file(f), out);
}

static int t_file_control(sqlite3_file *f, int op, void *arg)
{
    /* a size hint would grow the file past the count: let it pass as done */
    if (op == SQLITE_FCNTL_SIZE_HINT)
        return SQLITE_OK;
    return real_file(f)->pMethods->xFileControl(real_file(f), op, arg);
}

static int t_sector_size(sqlite3_file *f)
{
    return real_file(f)->pMethods->xSectorSize(real_file(f));
}

static int t_device_characteristics(sqlite3_file *f)
{
    return real_file(f)->pMethods->xDeviceCharacteristics(real_file(f));
}

/* version 1: no shared memory (a temporary file has none) and no mmap
 * (whose pages would be written without xWrite) */
static const sqlite3_io_methods temp_methods = {
    1, t_close, t_read, t_write, t_truncate, t_sync, t_file_size, t_lock, t_unlock,
    t_check_reserved, t_file_control, t_sector_size, t_device_characteristics,
    NULL, NULL, NULL, NULL, NULL, NULL,
};

#define TEMP_FILES (SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | \
                    SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TRANSIENT_DB)

static sqlite3_vfs *real_vfs(sqlite3_vfs *v)
{
    return ((mw_sq_temp_cap *)v->pAppData)->real;
}

static int v_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    mw_sq_temp_cap *cap = v->pAppData;
    if (!(flags & TEMP_FILES)) /* the database and its journals: the real file itself */
        return cap->real->xOpen(cap->real, name, f, flags, out);
    temp_file *t = (temp_file *)f;
    memset(t, 0, sizeof *t);
    int rc = cap->real->xOpen(cap->real, name, real_file(f), flags, out);
    if (rc != SQLITE_OK || !real_file(f)->pMethods) {
        f->pMethods = NULL;
        return rc;
    }
    t->owner = cap;
    f->pMethods = &temp_methods;
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync)
{
    return real_vfs(v)->xDelete(real_vfs(v), name, sync);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
    return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    return real_vfs(v)->xSleep(real_vfs(v), us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
    return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int v_get_last_error(sqlite3_vfs *v, int n, char *out)
{
    return real_vfs(v)->xGetLastError(real_vfs(v), n, out);
}

static int v_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

int mw_sq_temp_cap_open(mw_sq_temp_cap *t, int64_t cap)
{
    memset(t, 0, sizeof *t);
    t->real = sqlite3_vfs_find(NULL);
    if (!t->real || t->real->iVersion < 2)
        return SQLITE_ERROR;
    t->cap = cap;
    atomic_init(&t->used, 0);
    snprintf(t->name, sizeof t->name, "molt_temp_cap_%p", (void *)t);
    /* no extension loading (the guard forbids it): no xDl* */
    t->vfs.iVersion = 2;
    t->vfs.szOsFile = (int)sizeof(temp_file) + t->real->szOsFile;
    t->vfs.mxPathname = t->real->mxPathname;
    t->vfs.zName = t->name;
    t->vfs.pAppData = t;
    t->vfs.xOpen = v_open;
    t->vfs.xDelete = v_delete;
    t->vfs.xAccess = v_access;
    t->vfs.xFullPathname = v_full_pathname;
    t->vfs.xRandomness = v_randomness;
    t->vfs.xSleep = v_sleep;
    t->vfs.xCurrentTime = v_current_time;
    t->vfs.xGetLastError = v_get_last_error;
    t->vfs.xCurrentTimeInt64 = v_current_time_int64;
    int rc = sqlite3_vfs_register(&t->vfs, 0);
    if (rc != SQLITE_OK)
        t->name[0] = 0;
    return rc;
}

void mw_sq_temp_cap_close(mw_sq_temp_cap *t)
{
    if (t->name[0])
        sqlite3_vfs_unregister(&t->vfs);
    t->name[0] = 0;
}
