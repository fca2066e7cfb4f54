/* Log lines on stderr, every one in the format log_format names: json (one
 * object per line) or text. Lifecycle messages and one line per request
 * (never SQL text, parameter values or a DSN). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "request.h"
#include "session.h"

static int log_json = 1;

void mw_log_set_format(const char *format)
{
    log_json = !format || strcmp(format, "text") != 0;
}

/* s as a JSON string body: quotes, backslashes and control bytes escaped */
static void put_json_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

static void put_ts(FILE *f, const struct timespec *ts)
{
    fprintf(f, "%lld.%03ld", (long long)ts->tv_sec, ts->tv_nsec / 1000000);
}

void mw_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!log_json) {
        fprintf(stderr, "molt_worker: %s\n", msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fputs("{\"ts\":", stderr);
    put_ts(stderr, &ts);
    fputs(",\"msg\":\"", stderr);
    put_json_text(stderr, msg);
    fputs("\"}\n", stderr);
}

void mw_log_request(mw_request *r, mw_status st, const molt_db_error *err)
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
    /* alias names and tags are [A-Za-z0-9_.-]; a SQLSTATE is 5 of [0-9A-Z] */
    const char *alias = r->have_q && r->q.alias ? r->q.alias->name : "";
    const char *tag = r->have_q ? r->q.tag : "";
    const char *sqlstate = st == MW_DB_ERROR && err ? err->sqlstate : "";
    if (log_json)
        fprintf(stderr,
                "{\"ts\":%lld.%03ld,\"start\":%lld.%06lld,\"session\":%llu,"
                "\"request_id\":%llu,\"entry\":\"%s\",\"alias\":\"%s\",\"tag\":\"%s\","
                "\"status\":\"%s\",\"sqlstate\":\"%.5s\",\"queue_us\":%lld,"
                "\"exec_us\":%lld,\"handler_us\":%lld,\"rows\":%llu}\n",
                (long long)ts.tv_sec, ts.tv_nsec / 1000000,
                (long long)(start_us / 1000000), (long long)(start_us % 1000000),
                (unsigned long long)(r->s ? r->s->id : 0), (unsigned long long)r->id,
                mw_entry_name(r->entry), alias, tag, mw_status_name(st), sqlstate,
                (long long)queue, (long long)exec, (long long)(now - r->t_recv) / 1000,
                (unsigned long long)(r->have_res ? r->res.total_rows : 0));
    else
        fprintf(stderr,
                "molt_worker: request session=%llu request_id=%llu entry=%s "
                "alias=%s tag=%s status=%s sqlstate=%.5s queue_us=%lld exec_us=%lld "
                "handler_us=%lld rows=%llu\n",
                (unsigned long long)(r->s ? r->s->id : 0), (unsigned long long)r->id,
                mw_entry_name(r->entry), alias[0] ? alias : "-", tag[0] ? tag : "-",
                mw_status_name(st), sqlstate[0] ? sqlstate : "-", (long long)queue,
                (long long)exec, (long long)(now - r->t_recv) / 1000,
                (unsigned long long)(r->have_res ? r->res.total_rows : 0));
}
