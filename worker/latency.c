/* Request latency per alias and entry (db_query, db_exec): histograms with
 * fixed 1-2.5-5 buckets from 25 us to 10 s, the bounds the library's pool
 * histograms use, rendered in the Prometheus text format. */
#include "latency.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "request.h"
#include "worker.h"

static const uint64_t bounds_us[MW_HIST_BUCKETS] = {
    25,    50,    100,    250,    500,    1000,    2500,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

int mw_latency_init(mw_worker *w)
{
    w->latency = calloc(w->nbackends ? w->nbackends * 2 : 1, sizeof *w->latency);
    return w->latency ? 0 : -1;
}

void mw_latency_observe(mw_request *r)
{
    mw_worker *w = r->w;
    if (!w->latency || !r->have_q || !r->q.alias)
        return;
    size_t b = 0;
    while (b < w->nbackends && w->backends[b]->alias != r->q.alias)
        b++;
    if (b == w->nbackends)
        return;
    mw_hist *h = &w->latency[b * 2 + (r->entry == MW_ENTRY_DB_EXEC)];
    uint64_t ns = uv_hrtime() - r->t_recv, us = ns / 1000;
    size_t i = 0;
    while (i < MW_HIST_BUCKETS && us > bounds_us[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum_ns += ns;
}

static void put(molt_db_buf *b, const char *s, int n)
{
    if (n > 0)
        molt_db_buf_put(b, s, (size_t)n);
}

void mw_latency_render(mw_worker *w, molt_db_buf *b)
{
    static const char name[] = "molt_worker_request_seconds";
    char line[256];
    put(b, line, snprintf(line, sizeof line,
        "# HELP %s Requests from receipt to answer, by alias and entry.\n"
        "# TYPE %s histogram\n", name, name));
    for (size_t k = 0; w->latency && k < w->nbackends * 2; k++) {
        const mw_hist *h = &w->latency[k];
        const char *alias = w->backends[k / 2]->alias->name;
        const char *entry = k % 2 ? "db_exec" : "db_query";
        uint64_t cum = 0;
        for (size_t i = 0; i <= MW_HIST_BUCKETS; i++) {
            cum += h->counts[i];
            char le[32];
            if (i < MW_HIST_BUCKETS)
                snprintf(le, sizeof le, "%g", (double)bounds_us[i] / 1e6);
            else
                snprintf(le, sizeof le, "+Inf");
            put(b, line, snprintf(line, sizeof line,
                "%s_bucket{alias=\"%s\",entry=\"%s\",le=\"%s\"} %" PRIu64 "\n",
                name, alias, entry, le, cum));
        }
        put(b, line, snprintf(line, sizeof line,
            "%s_sum{alias=\"%s\",entry=\"%s\"} %.9f\n"
            "%s_count{alias=\"%s\",entry=\"%s\"} %" PRIu64 "\n",
            name, alias, entry, (double)h->sum_ns / 1e9, name, alias, entry, h->n));
    }
}
