/* molt_worker: the process around the worker (worker.h): configuration
 * from the environment and the command line, process limits (core dumps,
 * file descriptors, SIGPIPE), signals, the transport, readiness. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "metrics_http.h"
#include "notify.h"
#include "session.h"
#include "signals.h"
#include "transport.h"
#include "worker.h"

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

/* Starts serving: the metrics endpoint, then stdio or the socket. 0, or -1
 * with err (empty when the message is already on stderr). */
static int serve(mw_worker *w, char err[MW_ERR_SIZE])
{
    const mw_config *cfg = w->cfg;
    err[0] = 0;
    if (cfg->metrics_listen && mw_metrics_http_start(w, cfg->metrics_listen, err) < 0)
        return -1;
    if (cfg->stdio) {
        if (mw_session_start_stdio(w) < 0)
            return -1;
        mw_log("ready: serving on stdin/stdout (pid %d)", (int)getpid());
    } else {
        if (mw_transport_listen(w, err) < 0)
            return -1;
        mw_log("ready: listening on %s (pid %d)", cfg->socket_path, (int)getpid());
    }
    mw_notify("READY=1");
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
    if (mw_worker_open(&w, uv_default_loop(), &cfg, err) < 0) {
        fprintf(stderr, "molt_worker: %s\n", err);
    } else {
        mw_signals_start(&w, argc - 1, argv + 1);
        if (serve(&w, err) < 0) {
            if (err[0])
                fprintf(stderr, "molt_worker: %s\n", err);
            mw_worker_fail(&w);
        }
    }
    int code = mw_worker_run(&w);
    mw_config_free(&cfg);
    return code;
}
