/* IANA time zones for the SQL functions Django registers on SQLite
 * (worker/sqlite_django_time.c), with the semantics of Python's zoneinfo,
 * which is what Django itself uses: the same TZif files, the same rule for
 * instants past the last transition (the file's POSIX TZ footer), and
 * fold=0 for local times that are ambiguous or do not exist.
 *
 * Zones are read from the system zoneinfo directories and cached (at most
 * MW_TZ_CACHE_MAX of them; when full, the least recently used zone that no
 * caller holds makes room, so no number of distinct zones asked for locks
 * others out). Lookups are thread-safe; a returned zone is immutable and
 * held by its caller until mw_tz_release. */
#ifndef MOLT_WORKER_SQLITE_TZ_H
#define MOLT_WORKER_SQLITE_TZ_H

#include <stdint.h>

#define MW_TZ_CACHE_MAX 128

typedef struct mw_tz mw_tz;

typedef enum {
    MW_TZ_OK = 0,
    MW_TZ_EINVAL,    /* not a valid zone key (absolute, "..", odd bytes) */
    MW_TZ_ENOTFOUND, /* no such zone in the zoneinfo directories */
    MW_TZ_EFORMAT,   /* the file is not TZif, or its footer does not parse */
    MW_TZ_ENOMEM,    /* out of memory, or every cached zone is held */
} mw_tz_status;

/* The zone named `key` (e.g. "Europe/Paris", "UTC"), held for the caller:
 * give it back with mw_tz_release. Returns NULL and sets *status when it
 * cannot be had. Thread-safe. */
const mw_tz *mw_tz_get(const char *key, mw_tz_status *status);

/* Gives back a zone from mw_tz_get (the cache may then drop it). */
void mw_tz_release(const mw_tz *z);

/* A short English text for a status. */
const char *mw_tz_strerror(mw_tz_status status);

/* The UTC offset, in seconds, in force at the local wall-clock time
 * `local` (seconds since 1970-01-01 00:00 local, microseconds dropped),
 * resolved as Python resolves fold=0: in a gap or an overlap, the offset in
 * force before the transition. `year` is the local year. */
int32_t mw_tz_offset_at_local(const mw_tz *z, int64_t local, int year);

/* The UTC offset, in seconds, in force at the instant `utc` (seconds since
 * the epoch); `year` is the UTC year (as Python passes it). */
int32_t mw_tz_offset_at_utc(const mw_tz *z, int64_t utc, int year);

#endif
