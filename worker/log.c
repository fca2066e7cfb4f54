/* Log lines on stderr: plain messages and one JSON line per request
 * (never SQL text or parameter values). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "worker.h"

void mw_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("molt_worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void mw_log_request(mw_request *r, mw_status st)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = uv_hrtime();
    int64_t queue = r->t_start > r->t_recv ? (int64_t)(r->t_start - r->t_recv) / 1000 : -1;
    int64_t exec = r->t_start && r->t_exec_end > r->t_start
                       ? (int64_t)(r->t_exec_end - r->t_start) / 1000 : -1;
    /* wall-clock time of receipt: now minus the time since */
    int64_t since_us = (int64_t)(now - r->t_recv) / 1000;
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t start_us = now_us - since_us;
    fprintf(stderr,
            "{\"ts\":%lld.%03ld,\"start\":%lld.%06lld,\"session\":%llu,\"request_id\":%llu,\"entry\":\"%s\","
            "\"alias\":\"%s\",\"tag\":\"%s\",\"status\":\"%s\",\"queue_us\":%lld,"
            "\"exec_us\":%lld,\"handler_us\":%lld,\"rows\":%llu}\n",
            (long long)ts.tv_sec, ts.tv_nsec / 1000000,
            (long long)(start_us / 1000000), (long long)(start_us % 1000000),
            (unsigned long long)(r->s ? r->s->id : 0), (unsigned long long)r->id,
            mw_entry_name(r->entry), r->have_q && r->q.alias ? r->q.alias->name : "",
            r->have_q ? r->q.tag : "", mw_status_name(st), (long long)queue,
            (long long)exec, (long long)(now - r->t_recv) / 1000,
            (unsigned long long)(r->have_res ? r->res.total_rows : 0));
}
