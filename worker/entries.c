/* The entries: ping, stats, cancel, and the start of db_query / db_exec
 * (tx.c has the tx_* entries). */
#include "entries.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "copy.h"
#include "listen.h"
#include "mpbuf.h"
#include "replica_route.h"
#include "request.h"
#include "sched.h"
#include "session.h"
#include "tx.h"
#include "version.h"
#include "worker.h"

void mw_entry_ping(mw_request *r)
{
    molt_db_buf p;
    msgpack_packer pk;
    molt_db_buf_init(&p);
    mw_packer_init(&pk, &p);
    msgpack_pack_map(&pk, 3);
    mw_pack_key(&pk, "version");
    mw_pack_cstr(&pk, MW_VERSION);
    mw_pack_key(&pk, "pid");
    msgpack_pack_int64(&pk, (int64_t)getpid());
    mw_pack_key(&pk, "contract");
    msgpack_pack_int(&pk, MW_CONTRACT_VERSION);
    mw_request_reply_payload(r, &p);
    molt_db_buf_free(&p);
}

void mw_stats_pack(mw_worker *w, msgpack_packer *pk)
{
    size_t sets = mw_replicas_count(w);
    msgpack_pack_map(pk, sets ? 3 : 2);
    if (sets) {
        mw_pack_key(pk, "replicas");
        mw_replicas_stats_pack(w, pk);
    }
    mw_pack_key(pk, "aliases");
    msgpack_pack_map(pk, w->nbackends);
    for (size_t i = 0; i < w->nbackends; i++) {
        mw_backend *b = w->backends[i];
        mw_pack_cstr(pk, b->alias->name);
        b->ops->stats(b, pk);
    }
    mw_pack_key(pk, "worker");
    uint64_t listeners, notes, notes_dropped;
    mw_listen_counts(w, &listeners, &notes, &notes_dropped);
    struct { const char *k; uint64_t v; } c[] = {
        {"requests", w->c.requests},
        {"inflight", w->inflight},
        {"queued", mw_sched_waiting(w)},
        {"transactions", w->live_txs},
        {"sessions", w->nsessions},
        {"sessions_opened", w->c.sessions_opened},
        {"sessions_refused", w->c.sessions_refused},
        {"sessions_dropped", w->c.sessions_dropped},
        {"ok", w->c.ok},
        {"invalid_input", w->c.invalid_input},
        {"busy", w->c.busy},
        {"timeouts", w->c.timeouts},
        {"cancelled", w->c.cancelled},
        {"db_errors", w->c.db_errors},
        {"internal_errors", w->c.internal_errors},
        {"frames_out", w->c.frames_out},
        {"bytes_out", w->c.bytes_out},
        {"listeners", listeners},
        {"notes", notes},
        {"notes_dropped", notes_dropped},
    };
    msgpack_pack_map(pk, sizeof c / sizeof c[0]);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        mw_pack_key(pk, c[i].k);
        msgpack_pack_uint64(pk, c[i].v);
    }
}

void mw_entry_stats(mw_request *r)
{
    molt_db_buf p;
    msgpack_packer pk;
    molt_db_buf_init(&p);
    mw_packer_init(&pk, &p);
    mw_stats_pack(r->w, &pk);
    mw_request_reply_payload(r, &p);
    molt_db_buf_free(&p);
}

void mw_entry_cancel(mw_request *r, const uint8_t *payload, size_t len)
{
    char msg[MW_MSG_SIZE];
    uint64_t target;
    int rc = mw_cancel_parse(payload, len, &target, msg);
    if (rc < 0) {
        mw_request_reply(r, rc == -2 ? MW_INTERNAL_ERROR : MW_INVALID_INPUT,
                         rc == -2 ? "out of memory" : msg, NULL);
        return;
    }
    mw_request *t = r->s ? mw_session_find(r->s, target) : NULL;
    int found = t && t != r && !t->replied;
    if (found)
        mw_request_stop(t, MW_CANCELLED, "cancelled by a cancel request");
    molt_db_buf p;
    msgpack_packer pk;
    molt_db_buf_init(&p);
    mw_packer_init(&pk, &p);
    msgpack_pack_map(&pk, 1);
    mw_pack_key(&pk, "found");
    mw_pack_bool(&pk, found);
    mw_request_reply_payload(r, &p);
    molt_db_buf_free(&p);
}

void mw_entry_db(mw_request *r, const uint8_t *payload, size_t len)
{
    char msg[MW_MSG_SIZE];
    int write = mw_entry_writes(r->entry);
    int rc = r->entry == MW_ENTRY_COPY_IN
                 ? mw_copy_in_parse(&r->q, r->w->cfg, payload, len, msg)
                 : mw_query_parse(&r->q, write, r->w->cfg, payload, len, msg);
    r->have_q = 1;
    if (rc < 0) {
        r->have_q = r->q.alias != NULL; /* metrics name the alias when known */
        if (!r->have_q)
            mw_query_free(&r->q);
        mw_request_reply(r, rc == -2 ? MW_INTERNAL_ERROR : MW_INVALID_INPUT,
                         rc == -2 ? "out of memory" : msg, NULL);
        return;
    }
    if (r->entry == MW_ENTRY_COPY_OUT && mw_copy_out_check(&r->q, msg) < 0) {
        mw_request_reply(r, MW_INVALID_INPUT, msg, NULL);
        return;
    }
    if (r->q.batch_rows > (size_t)r->w->cfg->max_batch_rows) {
        snprintf(msg, sizeof msg, "batch_rows %zu is above the worker's "
                 "max_batch_rows of %d", r->q.batch_rows, r->w->cfg->max_batch_rows);
        mw_request_reply(r, MW_INVALID_INPUT, msg, NULL);
        return;
    }
    if (mw_request_hold(r, msg) < 0) {
        mw_query_shed(&r->q); /* nothing of it is kept while it is answered */
        mw_request_reply(r, MW_BUSY, msg, NULL);
        return;
    }
    mw_result_opts o = {0};
    o.format = r->q.format;
    o.objects = r->q.objects;
    o.stream = r->q.stream;
    o.exec = write;
    o.statements = r->q.statements;
    o.max_rows = r->q.max_rows;
    o.batch_rows = r->q.batch_rows;
    o.max_bytes = (uint64_t)r->w->cfg->max_result_bytes;
    mw_result_init(&r->res, &o);
    r->have_res = 1;
    if (r->q.in_tx) {
        /* on its transaction's connection: the primary's */
        r->backend = mw_worker_backend(r->w, r->q.alias);
        mw_tx_run(r, r->q.tx_id);
        return;
    }
    r->backend = mw_replica_route(r);
    if (write)
        mw_replica_write_started(r);
    mw_sched_submit(r);
}
