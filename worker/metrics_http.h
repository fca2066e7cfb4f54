/* The Prometheus text endpoint (metrics_http.c, --metrics-listen). */
#ifndef MW_METRICS_HTTP_H
#define MW_METRICS_HTTP_H

#include "config.h"

typedef struct mw_worker mw_worker;

int mw_metrics_http_start(mw_worker *w, const char *addr, char err[MW_ERR_SIZE]);
void mw_metrics_http_stop(mw_worker *w);

#endif
