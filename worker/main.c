/* molt_worker: configuration, backends, transport, signals (SIGTERM and
 * SIGINT: shutdown; SIGHUP: reload), readiness, shutdown. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "worker.h"

mw_backend *mw_worker_backend(mw_worker *w, const mw_alias *a)
{
    for (size_t i = 0; i < w->nbackends; i++)
        if (w->backends[i]->alias == a)
            return w->backends[i];
    return NULL;
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
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    uv_close((uv_handle_t *)&w->sighup, NULL);
    mw_metrics_http_stop(w);
    mw_replicas_close(w);
    mw_sched_close(w);
    w->backends_open = w->nbackends;
    for (size_t i = 0; i < w->nbackends; i++)
        w->backends[i]->ops->close(w->backends[i], on_backend_closed);
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
        if (w->sessions || w->live_requests > 0)
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
    mw_notify("STOPPING=1");
    mw_transport_stop(w);
    if (grace && w->cfg->shutdown_grace_ms > 0)
        uv_timer_start(&w->grace, on_grace, (uint64_t)w->cfg->shutdown_grace_ms, 0);
    else
        on_grace(&w->grace);
    mw_worker_maybe_exit(w);
}

static void on_signal(uv_signal_t *h, int signum)
{
    mw_worker *w = h->data;
    mw_log("signal %d: shutting down (grace %d ms)", signum, w->cfg->shutdown_grace_ms);
    mw_worker_shutdown(w, 1);
}

/* Reads the environment, the command line and its --config file again into
 * a fresh configuration; applies what may change at run time. A file that
 * does not parse or validate is logged and changes nothing. Requests in
 * flight keep running: nothing is closed or reopened. */
static void note_reload(void *ud, const char *msg)
{
    (void)ud;
    mw_log("%s", msg);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    mw_worker *w = h->data;
    char err[MW_ERR_SIZE];
    mw_config fresh;
    /* systemd's Type=notify-reload wants the time the reload began */
    char reloading[64];
    snprintf(reloading, sizeof reloading, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)(uv_hrtime() / 1000));
    mw_notify(reloading);
    mw_config_init(&fresh);
    if (mw_config_load_env(&fresh, err) < 0 ||
        mw_config_parse_args(&fresh, w->argc, w->argv, stdout, err) != 0 ||
        mw_config_validate(&fresh, err) < 0)
        mw_log("reload failed, the running configuration is kept: %s", err);
    else {
        mw_config_reload(w->cfg, &fresh, note_reload, NULL);
        mw_log_set_format(w->cfg->log_format);
        mw_log("reloaded");
    }
    mw_config_free(&fresh);
    mw_notify("READY=1");
}

/* A core file or a debugger attached by the same user would read the DSNs'
 * passwords and the rows in flight: neither unless --allow-core-dumps. */
static struct rlimit core_limit;

static void forbid_core_dumps(void)
{
    if (getrlimit(RLIMIT_CORE, &core_limit) == 0) {
        struct rlimit none = {0, core_limit.rlim_max};
        (void)setrlimit(RLIMIT_CORE, &none);
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        mw_log("could not turn core dumps off");
}

static void allow_core_dumps(void)
{
    (void)setrlimit(RLIMIT_CORE, &core_limit);
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* Sessions must leave file descriptors for the databases' connections:
 * raises the soft RLIMIT_NOFILE as far as needed (up to the hard limit);
 * -1 with err when even that is too few for max_sessions. */
static int reserve_fds(const mw_config *cfg, char err[MW_ERR_SIZE])
{
    rlim_t need = (cfg->stdio ? 1 : (rlim_t)cfg->max_sessions) + 64; /* + loop, logs */
    for (const mw_alias *a = cfg->aliases; a; a = a->next)
        need += a->kind == MW_BACKEND_SQLITE ? (rlim_t)a->sqlite_conns * 3
                                             : (rlim_t)a->pool.max_conns + 1;
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
        return 0;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need) {
        lim.rlim_cur = lim.rlim_max == RLIM_INFINITY || lim.rlim_max > need
                           ? need : lim.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &lim);
        (void)getrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need) {
        snprintf(err, MW_ERR_SIZE, "max_sessions %d and the databases' connections "
                 "need %llu file descriptors; RLIMIT_NOFILE allows %llu",
                 cfg->max_sessions, (unsigned long long)need,
                 (unsigned long long)lim.rlim_cur);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    mw_config cfg;
    char err[MW_ERR_SIZE];
    forbid_core_dumps(); /* before the DSNs are read */
    mw_config_init(&cfg);
    int rc = mw_config_load_env(&cfg, err);
    if (rc == 0)
        rc = mw_config_parse_args(&cfg, argc - 1, argv + 1, stdout, err);
    if (rc == 1) {
        mw_config_free(&cfg);
        return 0;
    }
    if (rc < 0 || mw_config_validate(&cfg, err) < 0 || reserve_fds(&cfg, err) < 0) {
        fprintf(stderr, "molt_worker: %s\n", err);
        mw_config_free(&cfg);
        return 2;
    }
    if (cfg.argv_password)
        fprintf(stderr, "molt_worker: warning: a password given in --db was "
                        "visible to other users (ps) until now; put the DSN in a "
                        "--config file of mode 0600, or use ~/.pgpass or PGPASSWORD\n");
    mw_log_set_format(cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    if (cfg.allow_core_dumps)
        allow_core_dumps();

    mw_worker w;
    memset(&w, 0, sizeof w);
    w.loop = uv_default_loop();
    w.cfg = &cfg;
    w.argc = argc - 1;
    w.argv = argv + 1;
    w.backends = calloc(mw_replicas_backend_count(&cfg), sizeof *w.backends);
    if (!w.backends) {
        fprintf(stderr, "molt_worker: out of memory\n");
        return 1;
    }
    for (mw_alias *a = cfg.aliases; a; a = a->next) {
        mw_backend *b = NULL;
        rc = a->kind == MW_BACKEND_SQLITE ? mw_backend_sqlite_open(&w, a, &b, err)
                                          : mw_backend_pg_open(&w, a, &b, err);
        if (rc < 0) {
            fprintf(stderr, "molt_worker: alias %s: %s\n", a->name, err);
            w.shutting_down = 1;
            break;
        }
        w.backends[w.nbackends++] = b;
        if (mw_replicas_open(&w, a, err) < 0) {
            fprintf(stderr, "molt_worker: alias %s replicas: %s\n", a->name, err);
            w.shutting_down = 1;
            break;
        }
    }
    if (!w.shutting_down && (mw_sched_init(&w) < 0 || mw_latency_init(&w) < 0)) {
        fprintf(stderr, "molt_worker: out of memory\n");
        w.shutting_down = 1;
    }
    uv_timer_init(w.loop, &w.grace);
    w.grace.data = &w;
    uv_signal_init(w.loop, &w.sigterm);
    uv_signal_init(w.loop, &w.sigint);
    uv_signal_init(w.loop, &w.sighup);
    w.sigterm.data = w.sigint.data = w.sighup.data = &w;
    if (!w.shutting_down) {
        uv_signal_start(&w.sigterm, on_signal, SIGTERM);
        uv_signal_start(&w.sigint, on_signal, SIGINT);
        uv_signal_start(&w.sighup, on_sighup, SIGHUP);
        if (cfg.metrics_listen && mw_metrics_http_start(&w, cfg.metrics_listen, err) < 0) {
            fprintf(stderr, "molt_worker: %s\n", err);
            w.shutting_down = 1;
        } else if (cfg.stdio) {
            if (mw_session_start_stdio(&w) < 0)
                w.shutting_down = 1;
        } else if (mw_transport_listen(&w, err) < 0) {
            fprintf(stderr, "molt_worker: %s\n", err);
            w.shutting_down = 1;
        }
        if (w.shutting_down) {
            w.exit_code = 1;
        } else {
            if (cfg.stdio)
                mw_log("ready: serving on stdin/stdout (pid %d)", (int)getpid());
            else
                mw_log("ready: listening on %s (pid %d)", cfg.socket_path, (int)getpid());
            mw_notify("READY=1");
        }
    } else {
        w.exit_code = 1;
    }
    if (w.shutting_down) {
        w.shutting_down = 0;
        mw_worker_shutdown(&w, 0);
    }
    uv_run(w.loop, UV_RUN_DEFAULT);
    /* let the last close callbacks run */
    uv_run(w.loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < w.nbackends; i++)
        free(w.backends[i]);
    free(w.backends);
    mw_replicas_free(&w);
    free(w.latency);
    mw_sched_free(&w);
    int code = w.exit_code;
    if (uv_loop_close(w.loop) != 0)
        mw_log("loop closed with handles still open");
    mw_config_free(&cfg);
    return code;
}
