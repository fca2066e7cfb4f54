/* Replica-aware aliases: opening the replicas' backends, choosing a server
 * per request, running a failed replica read again on the primary, and the
 * per-server figures (replica_route.h). */
#include "replica_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "mpbuf.h"
#include "request.h"
#include "sched.h"
#include "session.h"
#include "worker.h"

size_t mw_replicas_backend_count(const mw_config *c)
{
    size_t n = 0;
    for (const mw_alias *a = c->aliases; a; a = a->next)
        n += 1 + a->nreplicas;
    return n;
}

/* The replica's alias: the primary's settings, its own DSN and name, no
 * write grant (only reads are routed there, and the backend runs them in
 * read-only transactions anyway). */
static mw_alias *replica_alias(const mw_alias *a, size_t i)
{
    mw_alias *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    *m = *a;
    m->next = NULL;
    m->replica_dsns = NULL;
    m->nreplicas = 0;
    m->allow_write = 0;
    m->sqlite_path = NULL;
    size_t n = strlen(a->name) + 32;
    m->name = malloc(n);
    m->dsn = strdup(a->replica_dsns[i]);
    if (!m->name || !m->dsn) {
        free(m->name);
        free(m->dsn);
        free(m);
        return NULL;
    }
    snprintf(m->name, n, "%s@replica%zu", a->name, i + 1);
    return m;
}

static void free_replica_alias(mw_alias *m)
{
    free(m->name);
    if (m->dsn) {
        explicit_bzero(m->dsn, strlen(m->dsn));
        free(m->dsn);
    }
    free(m);
}

int mw_replicas_open(mw_worker *w, mw_alias *a, char err[MW_ERR_SIZE])
{
    if (a->nreplicas == 0)
        return 0;
    mw_replica_set *set = calloc(1, sizeof *set);
    mw_replica *servers = calloc(1 + a->nreplicas, sizeof *servers);
    if (!set || !servers) {
        free(set);
        free(servers);
        snprintf(err, MW_ERR_SIZE, "out of memory");
        return -1;
    }
    set->w = w;
    set->alias = a;
    set->servers = servers;
    set->nservers = 1;
    servers[0].set = set;
    servers[0].backend = w->backends[w->nbackends - 1];
    servers[0].alias = a;
    servers[0].is_primary = 1;
    set->next = (mw_replica_set *)w->replica_sets;
    w->replica_sets = set;
    for (size_t i = 0; i < a->nreplicas; i++) {
        mw_replica *rp = &servers[i + 1];
        rp->set = set;
        rp->alias = replica_alias(a, i);
        if (!rp->alias) {
            snprintf(err, MW_ERR_SIZE, "out of memory");
            return -1;
        }
        set->nservers++;
        if (mw_backend_pg_open(w, rp->alias, &rp->backend, err) < 0)
            return -1;
        w->backends[w->nbackends++] = rp->backend;
    }
    mw_replica_health_start(set);
    return 0;
}

static mw_replica_set *set_of(mw_worker *w, const mw_alias *a)
{
    for (mw_replica_set *s = w->replica_sets; s; s = s->next)
        if (s->alias == a)
            return s;
    return NULL;
}

/* The session must read its own writes: none running, and the last one
 * ended read_your_writes_ms ago or more, else only servers that replayed a
 * primary position read after it. Returns the time a replica must have
 * covered (0: any). */
static uint64_t must_cover(const mw_request *r, uint64_t now)
{
    const mw_session *s = r->s;
    if (s->writes_running > 0 || s->ntxs > 0)
        return UINT64_MAX;
    if (s->last_write_ms == 0 ||
        now - s->last_write_ms >= (uint64_t)r->q.alias->read_your_writes_ms)
        return 0;
    return s->last_write_ms;
}

/* The server with the fewest reads in flight among the healthy replicas
 * that cover `cover` (and the primary with primary_serves_reads); NULL:
 * none of the replicas. */
static mw_replica *pick_replica(mw_replica_set *set, uint64_t cover)
{
    mw_replica *best = NULL;
    int with_primary = set->alias->primary_serves_reads;
    size_t first = with_primary ? 0 : 1, n = set->nservers - first;
    for (size_t k = 0; k < n; k++) {
        mw_replica *rp = &set->servers[first + (set->next_pick + k) % n];
        if (!rp->is_primary && (!rp->healthy || (cover && rp->covered_ms <= cover)))
            continue;
        if (!best || rp->inflight < best->inflight)
            best = rp;
    }
    set->next_pick++;
    return best;
}

static void join(mw_replica *to, mw_request *r)
{
    r->route = to;
    r->route_prev = NULL;
    r->route_next = to->reqs;
    if (to->reqs)
        to->reqs->route_prev = r;
    to->reqs = r;
    to->inflight++;
    to->requests++;
}

mw_backend *mw_replica_route(mw_request *r)
{
    mw_backend *primary = mw_worker_backend(r->w, r->q.alias);
    mw_replica_set *set = r->q.alias->nreplicas ? set_of(r->w, r->q.alias) : NULL;
    if (!set)
        return primary;
    mw_replica *to = &set->servers[0];
    /* only a plain db_query may leave the primary (not copy_out, not a
     * write, not a pinned read) */
    if (r->entry == MW_ENTRY_DB_QUERY && !r->q.write && !r->q.pin_primary) {
        uint64_t cover = must_cover(r, uv_now(r->w->loop));
        mw_replica *rp = cover == UINT64_MAX ? NULL : pick_replica(set, cover);
        if (rp)
            to = rp;
    }
    join(to, r);
    return to->backend;
}

void mw_replica_session_wrote(mw_session *s)
{
    s->last_write_ms = uv_now(s->w->loop);
}

void mw_replica_write_started(mw_request *r)
{
    if (r->s && !r->write_counted) {
        r->write_counted = 1;
        r->s->writes_running++;
    }
}

/* The server cancelled the read for a conflict with its recovery
 * (replay needed what the read held): the primary has no such conflict. */
static int recovery_conflict(const char *sqlstate)
{
    return sqlstate && !strcmp(sqlstate, "40001");
}

/* The request leaves its server: the counts, and the session's last
 * write. Returns the server, or NULL when it had none. */
static mw_replica *leave(mw_request *r)
{
    mw_replica *to = r->route;
    if (r->write_counted) {
        r->write_counted = 0;
        if (r->s) {
            r->s->writes_running--;
            r->s->last_write_ms = uv_now(r->w->loop);
        }
    }
    if (to) {
        if (r->route_prev)
            r->route_prev->route_next = r->route_next;
        else
            to->reqs = r->route_next;
        if (r->route_next)
            r->route_next->route_prev = r->route_prev;
        r->route = NULL;
        to->inflight--;
    }
    return to;
}

void mw_replica_forget(mw_request *r)
{
    leave(r);
}

/* Nothing of r reached its client (no streamed columns or Arrow schema),
 * and it may still be answered. */
static int can_move(const mw_request *r)
{
    return !r->replied && !r->stopping && r->s && !r->res.columns_sent && !r->res.aw;
}

/* r left replica `from` (its slot there is given back): it runs again on
 * the primary, from the start. */
static void move_to_primary(mw_replica *from, mw_request *r)
{
    mw_replica_set *set = from->set;
    from->rerouted++;
    mw_sched_done(r);
    mw_sched_forget(r);
    mw_result_opts o = r->res.o;
    mw_result_free(&r->res);
    mw_result_init(&r->res, &o);
    join(&set->servers[0], r);
    r->backend = set->servers[0].backend;
    mw_sched_submit(r);
}

int mw_replica_done(mw_request *r, int status, int lost, const char *sqlstate)
{
    int rerouting = r->rerouting;
    r->rerouting = 0;
    mw_replica *to = leave(r);
    if (!to)
        return 0;
    if (status != MW_OK && !rerouting)
        to->errors++;
    if (to->is_primary || status == MW_OK)
        return 0;
    if (lost && to->healthy && !rerouting) {
        to->healthy = 0; /* until its next good check */
        snprintf(to->last_error, sizeof to->last_error,
                 "a read failed with %s", sqlstate && *sqlstate ? sqlstate : "a lost connection");
    }
    if (!can_move(r) || (!rerouting && !lost && !recovery_conflict(sqlstate)))
        return 0;
    move_to_primary(to, r);
    return 1;
}

void mw_replica_down(mw_replica *rp)
{
    mw_request *r = rp->reqs;
    while (r) {
        mw_request *next = r->route_next;
        if (r->queued && can_move(r)) {
            leave(r);
            move_to_primary(rp, r);
        } else if (r->db_busy && !r->rerouting && can_move(r)) {
            /* its db_done (cancelled) moves it */
            r->rerouting = 1;
            r->backend->ops->cancel(r->backend, r);
        }
        r = next;
    }
}

void mw_replicas_close(mw_worker *w)
{
    for (mw_replica_set *s = w->replica_sets; s; s = s->next) {
        if (s->closing)
            continue;
        s->closing = 1;
        uv_close((uv_handle_t *)&s->timer, NULL);
    }
}

void mw_replicas_free(mw_worker *w)
{
    mw_replica_set *s = w->replica_sets;
    while (s) {
        mw_replica_set *next = s->next;
        for (size_t i = 1; i < s->nservers; i++)
            free_replica_alias(s->servers[i].alias);
        free(s->servers);
        free(s);
        s = next;
    }
    w->replica_sets = NULL;
}

size_t mw_replicas_count(const mw_worker *w)
{
    size_t n = 0;
    for (const mw_replica_set *s = w->replica_sets; s; s = s->next)
        n++;
    return n;
}

void mw_replicas_stats_pack(mw_worker *w, msgpack_packer *pk)
{
    msgpack_pack_map(pk, mw_replicas_count(w));
    for (mw_replica_set *s = w->replica_sets; s; s = s->next) {
        mw_pack_cstr(pk, s->alias->name);
        msgpack_pack_array(pk, s->nservers);
        for (size_t i = 0; i < s->nservers; i++) {
            const mw_replica *rp = &s->servers[i];
            msgpack_pack_map(pk, 10);
            mw_pack_key(pk, "server");
            mw_pack_cstr(pk, rp->alias->name);
            mw_pack_key(pk, "role");
            mw_pack_cstr(pk, rp->is_primary ? "primary" : "replica");
            mw_pack_key(pk, "healthy");
            if (rp->is_primary || rp->healthy)
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
            struct { const char *k; uint64_t v; } f[] = {
                {"lag_ms", rp->lag_ms}, {"inflight", rp->inflight},
                {"requests", rp->requests}, {"errors", rp->errors},
                {"rerouted", rp->rerouted}, {"checks_failed", rp->checks_failed},
            };
            for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
                mw_pack_key(pk, f[k].k);
                msgpack_pack_uint64(pk, f[k].v);
            }
            mw_pack_key(pk, "last_error");
            mw_pack_cstr(pk, rp->last_error);
        }
    }
}

int mw_replicas_prometheus(mw_worker *w, molt_db_buf *out)
{
    static const char *const help =
        "# HELP molt_worker_server_up 1 when the server serves its requests "
        "(a replica: healthy and within max_replica_lag_ms)\n"
        "# TYPE molt_worker_server_up gauge\n"
        "# HELP molt_worker_server_lag_ms replay lag the worker measured\n"
        "# TYPE molt_worker_server_lag_ms gauge\n"
        "# HELP molt_worker_server_requests_total requests routed to the server\n"
        "# TYPE molt_worker_server_requests_total counter\n"
        "# HELP molt_worker_server_errors_total requests that failed there\n"
        "# TYPE molt_worker_server_errors_total counter\n";
    if (!w->replica_sets)
        return MOLT_DB_OK;
    molt_db_buf_put(out, help, strlen(help));
    for (mw_replica_set *s = w->replica_sets; s; s = s->next) {
        for (size_t i = 0; i < s->nservers; i++) {
            const mw_replica *rp = &s->servers[i];
            char line[1024];
            char labels[300];
            snprintf(labels, sizeof labels, "alias=\"%s\",server=\"%s\",role=\"%s\"",
                     s->alias->name, rp->alias->name,
                     rp->is_primary ? "primary" : "replica");
            int n = snprintf(line, sizeof line,
                             "molt_worker_server_up{%s} %d\n"
                             "molt_worker_server_lag_ms{%s} %llu\n"
                             "molt_worker_server_requests_total{%s} %llu\n"
                             "molt_worker_server_errors_total{%s} %llu\n",
                             labels, rp->is_primary || rp->healthy, labels,
                             (unsigned long long)rp->lag_ms, labels,
                             (unsigned long long)rp->requests, labels,
                             (unsigned long long)rp->errors);
            if (n > 0 && (size_t)n < sizeof line)
                molt_db_buf_put(out, line, (size_t)n);
        }
    }
    return molt_db_buf_ok(out);
}
