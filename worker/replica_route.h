/*
 * Replica-aware aliases: a PostgreSQL alias with streaming replicas
 * (`--db-replica ALIAS=DSN`, or `replica = DSN` in its [db ALIAS] section).
 *
 * Each replica is served by a backend of its own (a pool, a scheduler with
 * its fair shares, latency figures), named "ALIAS@replicaN" in stats and
 * metrics; clients cannot name it, only ALIAS. Where a request of ALIAS
 * runs (mw_replica_route):
 *   - db_exec, copy_in, copy_out, and every entry other than db_query: the
 *     primary (copy_in counts as a write, below);
 *   - a db_query with pin_primary: the primary;
 *   - a db_query with tx_id: its transaction's connection, on the primary
 *     (tx.c; transactions begin on the primary);
 *   - a db_query of a session with a db_exec or copy_in running or a
 *     transaction open,
 *     or whose last write or transaction ended less than
 *     read_your_writes_ms ago: a replica the worker saw replay a primary
 *     position taken after that, else the primary;
 *   - any other db_query: the healthy replica with the fewest requests in
 *     flight whose replay lag is at most max_replica_lag_ms (the primary
 *     too with primary_serves_reads), else the primary.
 * A replica read that fails because its server's connection went away
 * (lost, refused, the server shutting down), which also takes the replica
 * out, or that the server cancelled for a recovery conflict, runs again,
 * once, on the primary if nothing was sent to the client yet
 * (mw_replica_done). Any other error, a client's SQL or value, is answered
 * where it happened.
 *
 * Health and lag (replica_health.c): every replica_check_interval_ms the
 * worker reads pg_current_wal_insert_lsn() on the primary and
 * pg_is_in_recovery(), pg_last_wal_replay_lsn() on each replica, on the
 * worker's own clock: a replica's lag is how long ago the worker read the
 * oldest primary position it has not replayed (0 when it has replayed every
 * one). A replica serves no read before it replayed a position this worker
 * read (what was written earlier is invisible to the lag), unless the
 * primary never answered. A replica is taken out while its check fails, it
 * is not in recovery
 * (promoted), its lag is above max_replica_lag_ms, or its last good check is
 * older than 4 intervals; it is put back by the first good check.
 */
#ifndef MW_REPLICA_ROUTE_H
#define MW_REPLICA_ROUTE_H

#include <msgpack.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "molt_db/buf.h"
#include "molt_db/pool.h"

typedef struct mw_worker mw_worker;
typedef struct mw_request mw_request;
typedef struct mw_backend mw_backend;
typedef struct mw_replica_set mw_replica_set;
typedef struct mw_replica mw_replica;

/* primary positions remembered to compute lag (replica_check_interval_ms
 * apart; older ones are forgotten) */
#define MW_LSN_SAMPLES 64

typedef struct mw_lsn_sample {
    uint64_t at_ms;      /* worker clock (uv_now) when the read was sent */
    uint64_t lsn;
} mw_lsn_sample;

/* One server of a replica set: index 0 is the primary. */
struct mw_replica {
    mw_replica_set *set;
    mw_backend *backend;
    mw_alias *alias;          /* replicas: a copy of the primary's alias */
    int is_primary;
    int healthy;              /* replicas: serves reads now */
    int in_recovery;
    int checking;             /* a check is in flight */
    uint64_t check_sent_ms;
    uint64_t last_ok_ms;      /* last good check */
    uint64_t lag_ms;
    uint64_t covered_ms;      /* newest primary position it has replayed was
                                 read at this time (0: none known) */
    uint64_t replay_lsn;
    uint64_t inflight, requests, errors, rerouted, checks_failed;
    mw_request *reqs;         /* routed here and not yet done */
    char last_error[160];
};

struct mw_replica_set {
    mw_worker *w;
    mw_alias *alias;          /* the primary's */
    mw_replica *servers;      /* [0] primary, then the replicas */
    size_t nservers;
    mw_lsn_sample samples[MW_LSN_SAMPLES];
    size_t nsamples, next_sample;
    uv_timer_t timer;
    int closing;
    size_t next_pick;         /* round robin among equals */
    mw_replica_set *next;
};

/* Backends a configuration needs (aliases plus their replicas). */
size_t mw_replicas_backend_count(const mw_config *c);
/* After the alias's own backend opened as w->backends[w->nbackends - 1]:
 * opens one backend per replica (appended to w->backends) and starts the
 * checks. 0, or -1 with err. */
int mw_replicas_open(mw_worker *w, mw_alias *a, char err[MW_ERR_SIZE]);
/* The backend a db_query/db_exec of r->q.alias runs on (r->s set). */
mw_backend *mw_replica_route(mw_request *r);
/* From mw_request_db_done, before the answer: counts, notes a session's
 * write, and runs a failed replica read again on the primary (returns 1:
 * r is submitted again and not to be answered now) when its server's
 * connection went (`lost`, the backend's r->server_lost: the replica is
 * then out until its next good check) or the server cancelled it for a
 * recovery conflict (sqlstate 40001). */
int mw_replica_done(mw_request *r, int status, int lost, const char *sqlstate);
/* r is freed without a db_done (answered before it ever ran). */
void mw_replica_forget(mw_request *r);
/* The session's write entries (db_exec) start: their reads go to the
 * primary while they run. */
void mw_replica_write_started(mw_request *r);
/* A transaction of session s ended (tx.c): its reads are held to what it
 * may have committed, as after a db_exec. */
typedef struct mw_session mw_session;
void mw_replica_session_wrote(mw_session *s);
/* Stops the checks (shutdown, before the backends close). */
void mw_replicas_close(mw_worker *w);
/* After the loop ended. */
void mw_replicas_free(mw_worker *w);
/* stats entry: {"ALIAS": [{server, role, healthy, lag_ms, ...}, ...]} */
void mw_replicas_stats_pack(mw_worker *w, msgpack_packer *pk);
size_t mw_replicas_count(const mw_worker *w);
/* Prometheus text of every server of every set. */
int mw_replicas_prometheus(mw_worker *w, molt_db_buf *out);

/* The replica stopped answering its checks: its requests that sent nothing
 * to their clients yet run on the primary instead (those waiting for a
 * connection there would otherwise wait until their deadline). */
void mw_replica_down(mw_replica *rp);

/* replica_health.c */
void mw_replica_health_start(mw_replica_set *set);
/* "16/B374D848" to a number; 0 when it is not one */
uint64_t mw_lsn_parse(const char *s, size_t n);

/* backend_pg.c: the pool behind a PostgreSQL backend */
molt_db_pool *mw_backend_pg_pool(mw_backend *b);

#endif
