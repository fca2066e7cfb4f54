/*
 * The pool's metrics: histograms with fixed log-spaced buckets (acquire
 * wait, query latency per tag, transaction duration), errors by SQLSTATE
 * class and by client-side code, and their rendering in the Prometheus text
 * exposition format (version 0.0.4).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/buf.h"
#include "pool_internal.h"

/* Upper bounds in microseconds: 1-2.5-5 steps from 25 us to 10 s. */
static const uint64_t bounds_us[MOLT_DB_HIST_BUCKETS] = {
    25,    50,    100,    250,    500,    1000,    2500,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

void molt_db__hist_add(molt_db_hist *h, uint64_t ns)
{
    uint64_t us = ns / 1000;
    size_t i = 0;
    while (i < MOLT_DB_HIST_BUCKETS && us > bounds_us[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum_ns += ns;
}

uint16_t molt_db__metrics_tag(molt_db_pool_metrics *m, const char *tag)
{
    if (tag == NULL || *tag == '\0')
        return 0;
    for (size_t i = 1; i <= m->ntags; i++)
        if (strcmp(m->tags[i].name, tag) == 0)
            return (uint16_t)i;
    if (m->ntags >= MOLT_DB_METRIC_TAGS - 1)
        return MOLT_DB_METRIC_TAGS; /* "other" */
    char *copy = strdup(tag);
    if (copy == NULL)
        return MOLT_DB_METRIC_TAGS;
    m->ntags++;
    m->tags[m->ntags].name = copy;
    return (uint16_t)m->ntags;
}

void molt_db__metrics_done(molt_db_pool_metrics *m, uint16_t tag,
                           uint64_t latency_ns, int status,
                           const molt_db_error *err)
{
    molt_db__hist_add(&m->tags[tag].latency, latency_ns);
    if (status == MOLT_DB_OK)
        return;
    if (status == MOLT_DB_ESERVER && err != NULL && err->sqlstate[0] != '\0') {
        for (size_t i = 0; i < m->nclasses; i++) {
            if (memcmp(m->classes[i], err->sqlstate, 2) == 0) {
                m->class_counts[i]++;
                return;
            }
        }
        if (m->nclasses < MOLT_DB_METRIC_CLASSES) {
            memcpy(m->classes[m->nclasses], err->sqlstate, 2);
            m->classes[m->nclasses][2] = '\0';
            m->class_counts[m->nclasses++] = 1;
            return;
        }
    }
    int k = -status;
    if (k > 0 && k < 32)
        m->errors_by_code[k]++;
}

void molt_db__metrics_free(molt_db_pool_metrics *m)
{
    for (size_t i = 1; i <= m->ntags; i++)
        free(m->tags[i].name);
    m->ntags = 0;
}

/* ---- rendering --------------------------------------------------------- */

static void put_fmt(molt_db_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put_fmt(molt_db_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    molt_db_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A label value with \, " and newline escaped, as the format asks. */
static void put_label(molt_db_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            molt_db_buf_put_u8(b, '\\');
            molt_db_buf_put_u8(b, (uint8_t)*v);
        } else if (*v == '\n') {
            molt_db_buf_put(b, "\\n", 2);
        } else {
            molt_db_buf_put_u8(b, (uint8_t)*v);
        }
    }
}

static void put_hist(molt_db_buf *b, const char *name, const char *label,
                     const char *value, const molt_db_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= MOLT_DB_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        put_fmt(b, "%s_bucket{", name);
        if (label) {
            put_fmt(b, "%s=\"", label);
            put_label(b, value);
            molt_db_buf_put(b, "\",", 2);
        }
        if (i < MOLT_DB_HIST_BUCKETS)
            put_fmt(b, "le=\"%g\"} %" PRIu64 "\n", (double)bounds_us[i] / 1e6,
                    cum);
        else
            put_fmt(b, "le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    const char *suffix[2] = {"_sum", "_count"};
    for (int k = 0; k < 2; k++) {
        put_fmt(b, "%s%s", name, suffix[k]);
        if (label) {
            put_fmt(b, "{%s=\"", label);
            put_label(b, value);
            molt_db_buf_put(b, "\"}", 2);
        }
        if (k == 0)
            put_fmt(b, " %.9f\n", (double)h->sum_ns / 1e9);
        else
            put_fmt(b, " %" PRIu64 "\n", h->n);
    }
}

static void put_counter(molt_db_buf *b, const char *name, const char *help,
                        const char *type, uint64_t v)
{
    put_fmt(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help,
            name, type, name, v);
}

int molt_db_pool_metrics_prometheus(const molt_db_pool *p, molt_db_buf *b)
{
    if (p == NULL || b == NULL)
        return MOLT_DB_EINVAL;
    molt_db_pool_stats st;
    molt_db_pool_get_stats(p, &st);
    const molt_db_pool_metrics *m = &p->m;
    put_counter(b, "molt_db_pool_connections", "Connections open or opening.",
                "gauge", st.conns);
    put_counter(b, "molt_db_pool_connections_idle", "Ready connections with no request.",
                "gauge", st.conns_idle);
    put_counter(b, "molt_db_pool_connections_in_use",
                "Connections carrying requests, pinned, checking or draining.",
                "gauge", st.conns_in_use);
    put_counter(b, "molt_db_pool_waiters", "Requests waiting for a connection.",
                "gauge", st.waiters);
    put_counter(b, "molt_db_pool_connections_opened_total",
                "Connections established.", "counter", st.conns_opened);
    put_counter(b, "molt_db_pool_connections_closed_total",
                "Established connections closed.", "counter", st.conns_closed);
    put_counter(b, "molt_db_pool_connections_abandoned_total",
                "Connections closed because their state was unknown.",
                "counter", st.conns_abandoned);
    put_counter(b, "molt_db_pool_connect_failures_total",
                "Connection attempts that failed.", "counter",
                st.connect_failures);
    put_counter(b, "molt_db_pool_requests_total", "Requests made.", "counter",
                st.requests);
    put_counter(b, "molt_db_pool_rows_total", "Rows delivered.", "counter",
                m->rows);
    put_counter(b, "molt_db_pool_received_bytes_total",
                "Bytes received from the server.", "counter", st.bytes_in);
    put_counter(b, "molt_db_pool_sent_bytes_total", "Bytes sent to the server.",
                "counter", st.bytes_out);
    put_counter(b, "molt_db_pool_commits_total", "Transactions committed.",
                "counter", st.tx_commits);
    put_counter(b, "molt_db_pool_rollbacks_total",
                "Transactions rolled back.", "counter", st.tx_rollbacks);
    put_counter(b, "molt_db_pool_cancel_requests_total",
                "CancelRequests sent to the server.", "counter",
                st.cancel_requests);
    put_counter(b, "molt_db_pool_reprepares_total",
                "Statements transparently prepared again.", "counter",
                st.reprepares);
    put_counter(b, "molt_db_pool_resends_total",
                "Read-only requests sent again after a failure in their "
                "batch.", "counter", st.resends);

    put_fmt(b, "# HELP molt_db_pool_errors_total Failed requests by SQLSTATE "
               "class or client-side code.\n"
               "# TYPE molt_db_pool_errors_total counter\n");
    for (size_t i = 0; i < m->nclasses; i++)
        put_fmt(b, "molt_db_pool_errors_total{sqlstate_class=\"%s\"} %" PRIu64
                   "\n", m->classes[i], m->class_counts[i]);
    for (int k = 1; k < 32; k++)
        if (m->errors_by_code[k] > 0)
            put_fmt(b, "molt_db_pool_errors_total{code=\"%s\"} %" PRIu64 "\n",
                    molt_db_code_name(-k), m->errors_by_code[k]);

    put_fmt(b, "# HELP molt_db_pool_acquire_seconds Wait for a connection.\n"
               "# TYPE molt_db_pool_acquire_seconds histogram\n");
    put_hist(b, "molt_db_pool_acquire_seconds", NULL, NULL, &m->acquire);
    put_fmt(b, "# HELP molt_db_pool_query_seconds Request latency, from the "
               "request to on_done, by tag.\n"
               "# TYPE molt_db_pool_query_seconds histogram\n");
    for (size_t i = 0; i <= MOLT_DB_METRIC_TAGS; i++) {
        if (i > m->ntags && i != MOLT_DB_METRIC_TAGS)
            continue;
        if (m->tags[i].latency.n == 0 && i != 0)
            continue;
        const char *name = i == 0 ? "" : i == MOLT_DB_METRIC_TAGS ? "other"
                                                                  : m->tags[i].name;
        put_hist(b, "molt_db_pool_query_seconds", "tag", name,
                 &m->tags[i].latency);
    }
    put_fmt(b, "# HELP molt_db_pool_transaction_seconds Transaction duration, "
               "BEGIN to the end of COMMIT or ROLLBACK.\n"
               "# TYPE molt_db_pool_transaction_seconds histogram\n");
    put_hist(b, "molt_db_pool_transaction_seconds", NULL, NULL, &m->tx_duration);
    return molt_db_buf_ok(b);
}
