/* The copy_in entry: its payload read, then the pool's turn (copy.h). */
#include "copy.h"

#include "sched.h"
#include "worker.h"

void mw_entry_copy_in(mw_request *r, const uint8_t *payload, size_t len)
{
    char msg[MW_MSG_SIZE];
    int rc = mw_copy_in_parse(&r->q, r->w->cfg, payload, len, msg);
    r->have_q = 1;
    if (rc < 0) {
        r->have_q = r->q.alias != NULL; /* metrics name the alias when known */
        if (!r->have_q)
            mw_query_free(&r->q);
        mw_request_reply(r, rc == -2 ? MW_INTERNAL_ERROR : MW_INVALID_INPUT,
                         rc == -2 ? "out of memory" : msg, NULL);
        return;
    }
    mw_result_opts o = {0};
    o.format = MW_FORMAT_MSGPACK;
    o.exec = 1;
    o.max_bytes = (uint64_t)r->w->cfg->max_result_bytes;
    mw_result_init(&r->res, &o);
    r->have_res = 1;
    r->backend = mw_worker_backend(r->w, r->q.alias);
    mw_sched_submit(r);
}
