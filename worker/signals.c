/* SIGTERM and SIGINT: shutdown with grace. SIGHUP: reads the environment,
 * the command line and its --config file again into a fresh configuration
 * and applies what may change at run time; a file that does not parse or
 * validate is logged and changes nothing. Requests in flight keep running:
 * nothing is closed or reopened. */
#include "signals.h"

#include <signal.h>
#include <stdio.h>

#include "log.h"
#include "notify.h"
#include "worker.h"

static void on_signal(uv_signal_t *h, int signum)
{
    mw_worker *w = h->data;
    mw_log("signal %d: shutting down (grace %d ms)", signum, w->cfg->shutdown_grace_ms);
    mw_worker_shutdown(w, 1);
}

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

void mw_signals_start(mw_worker *w, int argc, char **argv)
{
    w->argc = argc;
    w->argv = argv;
    uv_signal_init(w->loop, &w->sigterm);
    uv_signal_init(w->loop, &w->sigint);
    uv_signal_init(w->loop, &w->sighup);
    w->sigterm.data = w->sigint.data = w->sighup.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    w->signals = 1;
}

void mw_signals_stop(mw_worker *w)
{
    if (!w->signals)
        return;
    w->signals = 0;
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    uv_close((uv_handle_t *)&w->sighup, NULL);
}
