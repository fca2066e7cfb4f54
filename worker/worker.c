/* The worker's life cycle: opening the backends, the shutdown (a grace
 * period, then what still runs is answered Busy and cancelled; sessions
 * flush and close; the backends close) and the end of the loop. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "latency.h"
#include "listen.h"
#include "log.h"
#include "metrics_http.h"
#include "notify.h"
#include "replica_route.h"
#include "request.h"
#include "sched.h"
#include "session.h"
#include "signals.h"
#include "transport.h"

mw_backend *mw_worker_backend(mw_worker *w, const mw_alias *a)
{
    for (size_t i = 0; i < w->nbackends; i++)
        if (w->backends[i]->alias == a)
            return w->backends[i];
    return NULL;
}

static int open_backends(mw_worker *w, char err[MW_ERR_SIZE])
{
    size_t n = mw_replicas_backend_count(w->cfg);
    w->backends = calloc(n ? n : 1, sizeof *w->backends);
    if (!w->backends) {
        snprintf(err, MW_ERR_SIZE, "out of memory");
        return -1;
    }
    for (mw_alias *a = w->cfg->aliases; a; a = a->next) {
        mw_backend *b = NULL;
        char why[MW_ERR_SIZE];
        int rc = a->kind == MW_BACKEND_SQLITE ? mw_backend_sqlite_open(w, a, &b, why)
                                              : mw_backend_pg_open(w, a, &b, why);
        if (rc < 0) {
            snprintf(err, MW_ERR_SIZE, "alias %.64s: %.400s", a->name, why);
            return -1;
        }
        w->backends[w->nbackends++] = b;
        if (mw_replicas_open(w, a, why) < 0) {
            snprintf(err, MW_ERR_SIZE, "alias %.64s replicas: %.400s", a->name, why);
            return -1;
        }
    }
    if (mw_sched_init(w) < 0 || mw_latency_init(w) < 0) {
        snprintf(err, MW_ERR_SIZE, "out of memory");
        return -1;
    }
    return 0;
}

int mw_worker_open(mw_worker *w, uv_loop_t *loop, mw_config *cfg,
                   char err[MW_ERR_SIZE])
{
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->cfg = cfg;
    uv_timer_init(loop, &w->grace);
    w->grace.data = w;
    mw_deadlines_init(&w->deadlines, loop);
    mw_reaper_init(&w->reaper, loop);
    if (open_backends(w, err) < 0) {
        mw_worker_fail(w);
        return -1;
    }
    return 0;
}

static void on_backend_closed(mw_worker *w)
{
    if (w->backends_open > 0)
        w->backends_open--;
    mw_worker_maybe_exit(w);
}

static void close_all(mw_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    uv_timer_stop(&w->grace);
    uv_close((uv_handle_t *)&w->grace, NULL);
    mw_signals_stop(w);
    mw_metrics_http_stop(w);
    mw_replicas_close(w);
    mw_sched_close(w);
    /* nothing is armed or waits to be freed any more: no request, session
     * or transaction is left, and the aliases' lingers stopped */
    mw_deadlines_close(&w->deadlines);
    mw_reaper_close(&w->reaper);
    w->backends_open = w->nbackends + 1; /* + the listening connections */
    for (size_t i = 0; i < w->nbackends; i++)
        w->backends[i]->ops->close(w->backends[i], on_backend_closed);
    mw_listen_close(w, on_backend_closed);
}

void mw_worker_maybe_exit(mw_worker *w)
{
    if (!w->shutting_down)
        return;
    if (!w->stopping) {
        /* wait for answers, then for sessions to flush and close */
        if (w->inflight > 0)
            return;
        /* sessions close once their last answers are written (or after
         * write_timeout_ms, for a client that does not read them) */
        for (mw_session *s = w->sessions; s; s = s->next)
            if (!s->dead)
                mw_session_close(s);
        if (w->sessions || w->live_requests > 0 || w->live_txs > 0)
            return;
        close_all(w);
    }
    if (w->backends_open == 0 && w->live_requests == 0 && !w->sessions)
        uv_stop(w->loop);
}

static void on_grace(uv_timer_t *t)
{
    mw_worker *w = t->data;
    /* answer what is still running Busy, cancelling it in the database */
    for (mw_session *s = w->sessions; s; s = s->next) {
        mw_request *r = s->reqs;
        while (r) {
            mw_request *next = r->next;
            mw_request_stop(r, MW_BUSY, "the worker is shutting down");
            r = next;
        }
    }
    mw_worker_maybe_exit(w);
}

void mw_worker_shutdown(mw_worker *w, int grace)
{
    if (w->shutting_down) {
        if (!grace)
            on_grace(&w->grace);
        return;
    }
    w->shutting_down = 1;
    if (!w->cfg->embedded)
        mw_notify("STOPPING=1");
    mw_transport_stop(w);
    mw_listen_shutdown(w); /* listeners never finish on their own */
    if (grace && w->cfg->shutdown_grace_ms > 0)
        uv_timer_start(&w->grace, on_grace, (uint64_t)w->cfg->shutdown_grace_ms, 0);
    else
        on_grace(&w->grace);
    mw_worker_maybe_exit(w);
}

void mw_worker_fail(mw_worker *w)
{
    w->exit_code = 1;
    mw_worker_shutdown(w, 0);
}

/* How long the loop may run after the worker stopped, for the handles the
 * library still closes on its own (a CancelRequest on its way ends by its
 * own deadline, cancel_timeout_ms, 2 s by default). */
#define DRAIN_MS 5000

static void on_drain_over(uv_timer_t *t)
{
    uv_stop(t->loop);
}

int mw_worker_run(mw_worker *w)
{
    uv_run(w->loop, UV_RUN_DEFAULT);
    mw_deadlines_close(&w->deadlines); /* when close_all did not run */
    mw_reaper_close(&w->reaper);
    /* until nothing is left: the last close callbacks, and the connections
     * the library closes on its own (molt_db_loop_free). The timer does not
     * keep the loop alive; it only bounds the run, so that a handle left
     * open costs the log line below and a leak, never a hang at exit. */
    uv_timer_t drain;
    uv_timer_init(w->loop, &drain);
    uv_timer_start(&drain, on_drain_over, DRAIN_MS, 0);
    uv_unref((uv_handle_t *)&drain);
    uv_run(w->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&drain, NULL);
    uv_run(w->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < w->nbackends; i++)
        free(w->backends[i]);
    free(w->backends);
    mw_replicas_free(w);
    free(w->latency);
    mw_sched_free(w);
    mw_idmap_free(&w->ids);
    mw_freelist_drain(&w->free_requests);
    mw_freelist_drain(&w->free_sessions);
    if (uv_loop_close(w->loop) != 0)
        mw_log("loop closed with handles still open");
    return w->exit_code;
}
