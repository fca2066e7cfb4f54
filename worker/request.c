/* One request: dispatch, deadline, the final answer, and its release. */
#include "request.h"
#include "tx.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "entries.h"
#include "latency.h"
#include "listen.h"
#include "log.h"
#include "replica_route.h"
#include "sched.h"
#include "session.h"
#include "worker.h"
#include "zalloc.h"

static void on_reaped(mw_reap *node)
{
    mw_request *r = MW_CONTAINER_OF(node, mw_request, reap);
    mw_worker *w = r->w;
    /* answered: its deadline was stopped then, and nothing arms it after */
    assert(!r->deadline.armed);
    mw_deadline_stop(&w->deadlines, &r->deadline);
    mw_replica_forget(r);
    if (r->tx)
        mw_tx_request_freed(r);
    if (r->have_q)
        mw_query_free(&r->q);
    w->held_request_bytes -= r->held_bytes;
    if (r->have_res)
        mw_result_free(&r->res);
    mw_freelist_give(&w->free_requests, r);
    w->live_requests--;
    mw_worker_maybe_exit(w);
}

/* Frees r once it was answered and the database is done with it. */
static void release_if_done(mw_request *r)
{
    if (!r->replied || r->db_busy || r->released)
        return;
    r->released = 1;
    mw_reap_later(&r->w->reaper, &r->reap, on_reaped);
}

static void count(mw_worker *w, mw_status st)
{
    switch (st) {
    case MW_OK: w->c.ok++; break;
    case MW_INVALID_INPUT: w->c.invalid_input++; break;
    case MW_BUSY: w->c.busy++; break;
    case MW_TIMEOUT: w->c.timeouts++; break;
    case MW_CANCELLED: w->c.cancelled++; break;
    case MW_DB_ERROR: w->c.db_errors++; break;
    case MW_INTERNAL_ERROR: w->c.internal_errors++; break;
    }
}

static int64_t us_between(uint64_t a, uint64_t b)
{
    return b > a ? (int64_t)((b - a) / 1000) : 0;
}

void mw_request_send_part(mw_request *r, const char *codec, const uint8_t *p, size_t n)
{
    if (!r->s || r->replied)
        return;
    molt_db_buf frame;
    molt_db_buf_init(&frame);
    mw_response resp = {0};
    resp.request_id = r->id;
    resp.status = MW_OK;
    resp.codec = codec;
    resp.payload = p;
    resp.payload_len = n;
    resp.more = 1;
    if (mw_response_frame(&frame, &resp) == MOLT_DB_OK)
        mw_session_send_for(r, &frame, 1);
    molt_db_buf_free(&frame);
}

static void send_part(void *ud, const uint8_t *p, size_t n)
{
    mw_request *r = ud;
    mw_request_send_part(r, mw_format_name(r->q.format), p, n);
}

static void drop_part(void *ud, const uint8_t *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
}

void mw_request_flush_parts(mw_request *r)
{
    if (!r->have_res)
        return;
    mw_result_take_parts(&r->res, r->s && !r->replied ? send_part : drop_part, r);
}

/* r->res may be read here: not while backend_sqlite's thread still fills
 * it (a request stopped before its query ended; request.h). */
static int res_readable(const mw_request *r)
{
    return r->have_res && !(r->db_busy && r->backend &&
                            r->backend->alias->kind == MW_BACKEND_SQLITE);
}

/* A JSON or MsgPack result's body of at most this many bytes joins its head
 * and tail: the frame is then one buffer (the frame's head and tail around
 * the payload), which a host stream takes without joining pieces, where the
 * copy of a small body costs less than the buffers of separate pieces. */
#define JOIN_BODY_MAX 4096

static void join_small_body(const mw_request *r, molt_db_buf *payload, molt_db_buf *body,
                            molt_db_buf *ptail)
{
    if (!r->have_q || r->q.format == MW_FORMAT_ARROW || body->len > JOIN_BODY_MAX)
        return;
    size_t n = payload->len;
    molt_db_buf_put(payload, body->data, body->len);
    molt_db_buf_put(payload, ptail->data, ptail->len);
    if (molt_db_buf_ok(payload) != MOLT_DB_OK) {
        payload->len = n; /* as it was: the pieces stay apart */
        payload->failed = 0;
        return;
    }
    molt_db_buf_reset(body);
    molt_db_buf_reset(ptail);
}

void mw_request_reply(mw_request *r, mw_status st, const char *msg,
                      const molt_db_error *err)
{
    if (r->replied)
        return;
    mw_worker *w = r->w;
    uint64_t now = uv_hrtime();
    /* payload: head + body + tail; the body (a buffered result's rows) is
     * sent as it is, between the frame's head and tail, never copied */
    molt_db_buf payload, body, ptail, frame, ftail;
    molt_db_buf_init(&payload);
    molt_db_buf_init(&body);
    molt_db_buf_init(&ptail);
    molt_db_buf_init(&frame);
    molt_db_buf_init(&ftail);
    molt_db_error ferr;
    molt_db_error_init(&ferr);
    mw_metrics m;
    mw_metrics_init(&m);
    int db = r->entry == MW_ENTRY_DB_QUERY || r->entry == MW_ENTRY_DB_EXEC ||
             r->entry == MW_ENTRY_COPY_IN || r->entry == MW_ENTRY_COPY_OUT;
    if (st == MW_OK && db && r->have_res) {
        uint64_t t0 = uv_hrtime();
        if (mw_result_finish(&r->res, &payload, &body, &ptail, &ferr) != MOLT_DB_OK) {
            st = MW_INTERNAL_ERROR;
            msg = ferr.message[0] ? ferr.message : "could not encode the result";
            err = NULL;
        }
        r->res.encode_ns += uv_hrtime() - t0;
        mw_request_flush_parts(r);
        if (st == MW_OK)
            join_small_body(r, &payload, &body, &ptail);
    }
    r->replied = 1;
    mw_deadline_stop(&w->deadlines, &r->deadline);
    w->inflight--;
    count(w, st);
    if (db) {
        m.handler_us = us_between(r->t_recv, now);
        if (r->t_start) {
            m.queue_us = us_between(r->t_recv, r->t_start);
            m.exec_us = us_between(r->t_start, r->t_exec_end ? r->t_exec_end : now);
        } else {
            m.queue_us = m.handler_us;
        }
        if (r->have_q) {
            m.db_alias = r->q.alias->name;
            m.db_tag = r->q.tag[0] ? r->q.tag : NULL;
            m.db_result_format = mw_format_name(r->q.format);
        }
        if (res_readable(r)) {
            /* on PostgreSQL an estimate from sampled rows, where one
             * preempted row counts several times: never past handler_us */
            m.decode_us = (int64_t)(r->res.encode_ns / 1000);
            if (m.decode_us > m.handler_us)
                m.decode_us = m.handler_us;
            m.db_row_count = (int64_t)r->res.total_rows;
            m.db_bytes_in = (int64_t)r->res.bytes_in;
        }
        m.db_bytes_out = (int64_t)(payload.len + body.len + ptail.len);
        if (st == MW_OK && mw_entry_writes(r->entry)) {
            m.db_rows_affected = r->rows_affected;
            m.have_last_insert_id = r->has_last_id;
            m.db_last_insert_id = r->last_id;
        }
    }
    if (r->s) {
        mw_response resp = {0};
        resp.request_id = r->id;
        resp.status = st;
        if (st == MW_OK && (db || payload.len)) {
            resp.codec = db ? mw_format_name(r->q.format) : "msgpack";
            resp.payload = payload.data ? payload.data : (const uint8_t *)"";
            resp.payload_len = payload.len;
            resp.body_len = body.len;
            resp.payload_tail = ptail.data;
            resp.payload_tail_len = ptail.len;
        }
        resp.error = msg;
        resp.dberr = err;
        resp.metrics = db ? &m : NULL;
        /* without a body the tail follows the head in the same buffer: one
         * piece, which a host stream takes as its frame without a copy */
        if (mw_response_frame_around(&frame, body.len ? &ftail : &frame, &resp) !=
            MOLT_DB_OK) {
            /* the result itself did not fit in memory: say so, small */
            mw_response small = {0};
            small.request_id = r->id;
            small.status = MW_INTERNAL_ERROR;
            small.error = "out of memory while encoding the response";
            molt_db_buf_reset(&frame);
            molt_db_buf_free(&body);
            if (mw_response_frame(&frame, &small) != MOLT_DB_OK)
                molt_db_buf_reset(&frame);
        }
        if (frame.len) {
            molt_db_buf pieces[3] = {frame, body, ftail};
            molt_db_buf_init(&frame);
            molt_db_buf_init(&body);
            molt_db_buf_init(&ftail);
            mw_session_send_for(r, pieces, 3);
        }
    }
    if (db)
        mw_latency_observe(r);
    if (db && w->cfg->log_requests)
        mw_log_request(r, st, err);
    if (r->s)
        mw_session_unlink(r->s, r);
    molt_db_buf_free(&payload);
    molt_db_buf_free(&body);
    molt_db_buf_free(&ptail);
    molt_db_buf_free(&frame);
    molt_db_buf_free(&ftail);
    molt_db_error_clear(&ferr);
    release_if_done(r);
}

void mw_request_reply_payload(mw_request *r, const molt_db_buf *payload)
{
    if (r->replied)
        return;
    mw_worker *w = r->w;
    r->replied = 1;
    mw_deadline_stop(&w->deadlines, &r->deadline);
    w->inflight--;
    if (molt_db_buf_ok(payload) != MOLT_DB_OK) {
        r->replied = 0;
        w->inflight++;
        mw_request_reply(r, MW_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    count(w, MW_OK);
    if (r->s) {
        molt_db_buf frame;
        molt_db_buf_init(&frame);
        mw_response resp = {0};
        resp.request_id = r->id;
        resp.status = MW_OK;
        resp.codec = "msgpack";
        resp.payload = payload->data ? payload->data : (const uint8_t *)"";
        resp.payload_len = payload->len;
        if (mw_response_frame(&frame, &resp) == MOLT_DB_OK)
            mw_session_send_for(r, &frame, 1);
        molt_db_buf_free(&frame);
        if (r->s) /* the send may have closed the session */
            mw_session_unlink(r->s, r);
    }
    release_if_done(r);
}

/* The answer to a result that passed max_result_bytes (the backend stopped
 * reading it and cancelled the query): DbError with SQLSTATE 54000
 * (program_limit_exceeded), saying how to get it. */
static void reply_too_large(mw_request *r)
{
    molt_db_error e;
    molt_db_error_init(&e);
    molt_db_error_set(&e, MOLT_DB_ERANGE,
                      r->res.o.stream
                          ? "a streamed batch is larger than max_result_bytes "
                            "(%lld bytes): ask for a smaller batch_rows"
                          : "the result is larger than max_result_bytes (%lld "
                            "bytes): ask for it streamed (stream: true) or for "
                            "fewer rows",
                      (long long)r->w->cfg->max_result_bytes);
    memcpy(e.sqlstate, "54000", 6);
    mw_request_reply(r, MW_DB_ERROR, e.message, &e);
    molt_db_error_clear(&e);
}

static void db_done_reply(mw_request *r, mw_status st, const char *msg,
                          const molt_db_error *err)
{
    if (r->have_res && r->res.too_large && !r->replied) {
        mw_request_flush_parts(r);
        reply_too_large(r);
        return;
    }
    if (!r->t_exec_end)
        r->t_exec_end = uv_hrtime();
    if (!r->replied) {
        mw_request_flush_parts(r);
        mw_request_reply(r, st, msg, err);
    } else {
        mw_request_flush_parts(r); /* drops them */
        release_if_done(r);
    }
}

void *mw_request_job_new(mw_request *r, size_t size)
{
    void *job = mw_zalloc(1, size);
    if (!job) {
        r->db_busy = 0;
        mw_request_reply(r, MW_INTERNAL_ERROR, "out of memory", NULL);
    }
    return job;
}

void mw_request_db_done(mw_request *r, mw_status st, const char *msg,
                        const molt_db_error *err)
{
    r->db_busy = 0;
    int lost = r->server_lost;
    r->server_lost = 0;
    if (mw_replica_done(r, st, lost, err ? err->sqlstate : NULL))
        return; /* runs again on the primary */
    db_done_reply(r, st, msg, err);
    if (r->tx)
        mw_tx_request_done(r); /* a statement that ran in a transaction */
    /* r is freed no earlier than the loop's next prepare or check (reap.h) */
    mw_sched_done(r);
}

void mw_request_stop(mw_request *r, mw_status st, const char *msg)
{
    if (r->db_busy && !r->stopping && r->backend) {
        r->stopping = 1;
        r->backend->ops->cancel(r->backend, r);
    }
    mw_request_reply(r, st, msg, NULL);
}

static void on_deadline(mw_deadline *d)
{
    mw_request *r = MW_CONTAINER_OF(d, mw_request, deadline);
    char msg[MW_MSG_SIZE];
    if (r->queued && r->max_wait_armed) {
        snprintf(msg, sizeof msg, "no connection of alias \"%s\" within its "
                 "max_wait_ms of %d ms", r->q.alias->name, r->q.alias->pool.max_wait_ms);
        mw_request_stop(r, MW_BUSY, msg);
        return;
    }
    const char *why = r->backend && r->backend->ops->connect_error
                          ? r->backend->ops->connect_error(r->backend) : NULL;
    if (r->queued)
        snprintf(msg, sizeof msg, "deadline of %u ms passed while the request "
                 "waited for its turn on alias \"%s\"; it never ran", r->timeout_ms,
                 r->q.alias->name);
    else if (why != NULL)
        snprintf(msg, sizeof msg, "deadline of %u ms passed waiting for a "
                 "connection; connecting fails: %s", r->timeout_ms, why);
    else
        snprintf(msg, sizeof msg, "deadline of %u ms passed; the query was cancelled",
                 r->timeout_ms);
    mw_request_stop(r, MW_TIMEOUT, msg);
}

/* A session whose requests in flight hold at most this much is admitted
 * beyond max_held_request_bytes, by up to max_sessions times it: sessions
 * that fill the budget with big requests cannot keep out the point queries
 * of others. */
#define MW_HELD_SMALL_BYTES ((uint64_t)64 << 10)

int mw_request_hold(mw_request *r, char msg[MW_MSG_SIZE])
{
    mw_worker *w = r->w;
    mw_session *s = r->s;
    size_t n = mw_query_held_bytes(&r->q);
    uint64_t cap = (uint64_t)w->cfg->max_held_request_bytes;
    if (s && s->held_request_bytes + n <= MW_HELD_SMALL_BYTES)
        cap += (uint64_t)w->cfg->max_sessions * MW_HELD_SMALL_BYTES;
    if (w->held_request_bytes + n > cap) {
        snprintf(msg, MW_MSG_SIZE, "the worker's requests hold too much memory: "
                 "this one's %zu bytes would pass max_held_request_bytes (%lld); "
                 "send it again later", n, (long long)w->cfg->max_held_request_bytes);
        return -1;
    }
    if (s && s->held_request_bytes + n > (uint64_t)mw_config_session_request_share(w->cfg)) {
        snprintf(msg, MW_MSG_SIZE, "this connection's requests in flight hold %zu "
                 "bytes; this one's %zu would pass the connection's share of "
                 "max_held_request_bytes (session_request_share_pct, %d%%)",
                 s->held_request_bytes, n, w->cfg->session_request_share_pct);
        return -1;
    }
    r->held_bytes = n;
    w->held_request_bytes += n;
    if (s)
        s->held_request_bytes += n;
    return 0;
}

void mw_request_set_timer(mw_request *r, uint64_t ms)
{
    mw_deadline_start(&r->w->deadlines, &r->deadline, ms, on_deadline);
}

void mw_request_handle(mw_session *s, const uint8_t *body, size_t len)
{
    mw_worker *w = s->w;
    mw_envelope env;
    char msg[MW_MSG_SIZE];
    w->c.requests++;
    if (mw_envelope_parse(body, len, &env, msg) < 0) {
        w->c.invalid_input++;
        mw_session_reply_error(s, env.have_id ? env.request_id : 0,
                               MW_INVALID_INPUT, msg);
        return;
    }
    if (env.timeout_ms > (uint32_t)w->cfg->max_timeout_ms) {
        w->c.invalid_input++;
        snprintf(msg, sizeof msg, "timeout_ms %u is above the worker's "
                 "max_timeout_ms of %d", env.timeout_ms, w->cfg->max_timeout_ms);
        mw_session_reply_error(s, env.request_id, MW_INVALID_INPUT, msg);
        return;
    }
    if (mw_session_find(s, env.request_id)) {
        w->c.invalid_input++;
        snprintf(msg, sizeof msg, "request_id %llu is already in flight",
                 (unsigned long long)env.request_id);
        mw_session_reply_error(s, env.request_id, MW_INVALID_INPUT, msg);
        return;
    }
    if (w->shutting_down && env.entry != MW_ENTRY_PING) {
        w->c.busy++;
        mw_session_reply_error(s, env.request_id, MW_BUSY,
                               "the worker is shutting down");
        return;
    }
    /* max_inflight bounds database work; ping and cancel always get through,
     * or a client at the limit could not stop what it started */
    if (w->inflight >= (size_t)w->cfg->max_inflight && env.entry != MW_ENTRY_PING &&
        env.entry != MW_ENTRY_CANCEL) {
        w->c.busy++;
        mw_session_reply_error(s, env.request_id, MW_BUSY,
                               "too many requests in flight (max_inflight)");
        return;
    }
    /* one session may not take all of max_inflight */
    if (s->nreqs >= (size_t)w->cfg->max_session_inflight &&
        env.entry != MW_ENTRY_PING && env.entry != MW_ENTRY_CANCEL) {
        w->c.busy++;
        mw_session_reply_error(s, env.request_id, MW_BUSY, "too many requests "
                               "in flight on this connection (max_session_inflight)");
        return;
    }
    mw_request *r = mw_freelist_take(&w->free_requests, sizeof *r);
    if (!r) {
        w->c.internal_errors++;
        mw_session_reply_error(s, env.request_id, MW_INTERNAL_ERROR, "out of memory");
        return;
    }
    r->w = w;
    r->id = env.request_id;
    if (mw_session_link(s, r) < 0) {
        mw_freelist_give(&w->free_requests, r);
        w->c.internal_errors++;
        mw_session_reply_error(s, env.request_id, MW_INTERNAL_ERROR, "out of memory");
        return;
    }
    r->sink_to = s->sink_to;
    r->entry = env.entry;
    r->t_recv = uv_hrtime();
    r->timeout_ms = env.timeout_ms ? env.timeout_ms : (uint32_t)w->cfg->default_timeout_ms;
    w->inflight++;
    w->live_requests++;
    switch (env.entry) {
    case MW_ENTRY_PING:
        mw_entry_ping(r);
        break;
    case MW_ENTRY_STATS:
        mw_entry_stats(r);
        break;
    case MW_ENTRY_CANCEL:
        mw_entry_cancel(r, env.payload, env.payload_len);
        break;
    case MW_ENTRY_DB_QUERY:
    case MW_ENTRY_DB_EXEC:
    case MW_ENTRY_COPY_IN:
    case MW_ENTRY_COPY_OUT:
        mw_request_set_timer(r, r->timeout_ms);
        mw_entry_db(r, env.payload, env.payload_len);
        break;
    case MW_ENTRY_LISTEN:
        /* a listener runs until cancelled, unless it asked for a deadline */
        if (env.timeout_ms)
            mw_request_set_timer(r, r->timeout_ms);
        mw_entry_listen(r, env.payload, env.payload_len);
        break;
    case MW_ENTRY_TX_BEGIN:
    case MW_ENTRY_TX_COMMIT:
    case MW_ENTRY_TX_ROLLBACK:
        mw_request_set_timer(r, r->timeout_ms);
        mw_entry_tx(r, env.payload, env.payload_len);
        break;
    case MW_ENTRY_NONE:
        mw_request_reply(r, MW_INVALID_INPUT, "unknown entry", NULL);
        break;
    }
}
