/* Health and replay lag of a replica set, measured by the worker on its own
 * clock (replica_route.h): the primary's WAL insert position and each
 * replica's replay position, every replica_check_interval_ms. */
#include "replica_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* WAL page layout of PostgreSQL: an insert position exactly at a page
 * boundary is reported after the page header, a replayed record ends
 * before it. */
#define WAL_PAGE 8192u
#define WAL_SHORT_HEADER 24u
#define WAL_LONG_HEADER 40u
#define WAL_SEGMENT (16u << 20)

static const char primary_sql[] = "select pg_catalog.pg_current_wal_insert_lsn()::text";
static const char replica_sql[] =
    "select pg_catalog.pg_is_in_recovery()::text, "
    "pg_catalog.pg_last_wal_replay_lsn()::text";

typedef struct check {
    mw_replica *rp;
    uint64_t sent_ms;
    int rows;
    char f[2][32];
    int null[2];
} check;

uint64_t mw_lsn_parse(const char *s, size_t n)
{
    uint64_t hi = 0, lo = 0, *cur = &hi;
    int digits = 0, slash = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0'
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (c == '/' && !slash && digits) {
            slash = 1;
            cur = &lo;
            digits = 0;
            continue;
        }
        if (v < 0 || ++digits > 8)
            return 0;
        *cur = *cur << 4 | (uint64_t)v;
    }
    return slash && digits ? hi << 32 | lo : 0;
}

/* The position a replica that replayed everything before it reports. */
static uint64_t record_end(uint64_t insert)
{
    if (insert % WAL_PAGE == WAL_SHORT_HEADER)
        return insert - WAL_SHORT_HEADER;
    if (insert % WAL_SEGMENT == WAL_LONG_HEADER)
        return insert - WAL_LONG_HEADER;
    return insert;
}

static int on_row(void *ud, const molt_db_field *f, size_t n)
{
    check *c = ud;
    if (n == 0 || n > 2)
        return MOLT_DB_EPROTO;
    for (size_t i = 0; i < n; i++) {
        c->null[i] = f[i].len < 0;
        size_t len = f[i].len > 0 ? (size_t)f[i].len : 0;
        if (len >= sizeof c->f[i])
            return MOLT_DB_EPROTO;
        memcpy(c->f[i], f[i].data, len);
        c->f[i][len] = 0;
    }
    c->rows++;
    return MOLT_DB_OK;
}

static void failed(mw_replica *rp, const char *why)
{
    rp->checks_failed++;
    rp->healthy = 0;
    snprintf(rp->last_error, sizeof rp->last_error, "%s", why);
}

static void primary_checked(mw_replica_set *set, const check *c)
{
    uint64_t lsn = c->null[0] ? 0 : mw_lsn_parse(c->f[0], strlen(c->f[0]));
    if (lsn == 0)
        return;
    mw_lsn_sample *s = &set->samples[set->next_sample];
    s->at_ms = c->sent_ms;
    s->lsn = record_end(lsn);
    set->next_sample = (set->next_sample + 1) % MW_LSN_SAMPLES;
    if (set->nsamples < MW_LSN_SAMPLES)
        set->nsamples++;
}

/* Lag: how long before the replica was read the worker read the oldest
 * primary position the replica has not replayed. Covered: when the worker
 * read the newest primary position it has replayed (every write that ended
 * before then is on the replica). */
static void replica_checked(mw_replica *rp, const check *c, uint64_t now)
{
    mw_replica_set *set = rp->set;
    rp->in_recovery = !c->null[0] && !strcmp(c->f[0], "true");
    if (!rp->in_recovery) {
        failed(rp, "not in recovery: promoted, or not a replica");
        return;
    }
    uint64_t replay = c->null[1] ? 0 : mw_lsn_parse(c->f[1], strlen(c->f[1]));
    uint64_t covered = 0, oldest_behind = UINT64_MAX;
    for (size_t i = 0; i < set->nsamples; i++) {
        const mw_lsn_sample *s = &set->samples[i];
        if (s->lsn <= replay) {
            if (s->at_ms > covered)
                covered = s->at_ms;
        } else if (s->at_ms <= c->sent_ms && s->at_ms < oldest_behind) {
            oldest_behind = s->at_ms;
        }
    }
    rp->replay_lsn = replay;
    if (covered > rp->covered_ms)
        rp->covered_ms = covered;
    rp->lag_ms = oldest_behind == UINT64_MAX ? 0 : c->sent_ms - oldest_behind;
    rp->last_ok_ms = now;
    /* What was written before the worker's first position is invisible to
     * the lag: a replica serves only once it replayed a position the worker
     * read (unless the primary never answered: then nothing better is
     * known). */
    const mw_replica *primary = &set->servers[0];
    int primary_never_read = set->nsamples == 0 && primary->checks_failed > 0;
    if (rp->covered_ms == 0 && !primary_never_read) {
        rp->healthy = 0;
        snprintf(rp->last_error, sizeof rp->last_error,
                 "not yet past a primary position this worker read");
    } else if (rp->lag_ms > (uint64_t)set->alias->max_replica_lag_ms) {
        rp->healthy = 0;
        snprintf(rp->last_error, sizeof rp->last_error,
                 "replay lag %llu ms is above max_replica_lag_ms",
                 (unsigned long long)rp->lag_ms);
    } else {
        rp->healthy = 1;
        rp->last_error[0] = 0;
    }
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    check *c = ud;
    mw_replica *rp = c->rp;
    rp->checking = 0;
    if (!rp->set->closing) {
        if (status == MOLT_DB_OK && c->rows == 1) {
            if (rp->is_primary)
                primary_checked(rp->set, c);
            else
                replica_checked(rp, c, uv_now(rp->set->w->loop));
        } else {
            char why[160];
            snprintf(why, sizeof why, "check failed: %.140s",
                     err ? err->message : molt_db_code_name(status));
            failed(rp, why);
            if (!rp->is_primary)
                mw_replica_down(rp);
        }
    }
    free(c);
}

static void check_server(mw_replica *rp, uint64_t now, int interval)
{
    if (!rp->is_primary && rp->healthy &&
        now - rp->last_ok_ms > 4 * (uint64_t)interval) {
        failed(rp, "no good check for 4 intervals");
        mw_replica_down(rp);
    }
    if (rp->checking)
        return;
    check *c = calloc(1, sizeof *c);
    if (!c)
        return; /* the next tick tries again */
    c->rp = rp;
    c->sent_ms = now;
    molt_db_result_handler h = {NULL, on_row, NULL, on_done, c};
    molt_db_pool_query_options o = {0};
    o.timeout_ms = 4 * interval;
    o.read_only_tx = 1;
    o.tag = "replica_check";
    const char *sql = rp->is_primary ? primary_sql : replica_sql;
    rp->checking = 1;
    rp->check_sent_ms = now;
    if (molt_db_pool_query(mw_backend_pg_pool(rp->backend), sql, 0, NULL, &h, &o,
                           NULL) != MOLT_DB_OK) {
        rp->checking = 0;
        free(c);
        failed(rp, "check could not be sent");
    }
}

static void on_tick(uv_timer_t *t)
{
    mw_replica_set *set = t->data;
    if (set->closing || set->w->stopping)
        return;
    uint64_t now = uv_now(set->w->loop);
    for (size_t i = 0; i < set->nservers; i++)
        check_server(&set->servers[i], now, set->alias->replica_check_interval_ms);
}

void mw_replica_health_start(mw_replica_set *set)
{
    uv_timer_init(set->w->loop, &set->timer);
    set->timer.data = set;
    uint64_t every = (uint64_t)set->alias->replica_check_interval_ms;
    uv_timer_start(&set->timer, on_tick, 0, every);
}
