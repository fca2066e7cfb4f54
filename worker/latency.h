/* Request latency histograms per alias and entry (latency.c), rendered
 * for the Prometheus endpoint. */
#ifndef MW_LATENCY_H
#define MW_LATENCY_H

#include <stdint.h>

#include "molt_db/buf.h"

typedef struct mw_worker mw_worker;
typedef struct mw_request mw_request;

/* counts[i] for bucket i, the last +Inf */
#define MW_HIST_BUCKETS 18
typedef struct mw_hist {
    uint64_t counts[MW_HIST_BUCKETS + 1];
    uint64_t n, sum_ns;
} mw_hist;

/* Allocates the histograms once the backends are open. 0 or -1. */
int mw_latency_init(mw_worker *w);
/* Counts an answered db_query / db_exec. */
void mw_latency_observe(mw_request *r);
void mw_latency_render(mw_worker *w, molt_db_buf *b);

#endif
