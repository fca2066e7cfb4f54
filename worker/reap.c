/* Deferred release (reap.h). */
#include "reap.h"

/* Runs every waiting fn, also those that their fns queue. */
static void drain(mw_reaper *rp)
{
    while (rp->head) {
        mw_reap *n = rp->head;
        rp->head = n->next;
        if (!rp->head)
            rp->tail = NULL;
        n->next = NULL;
        n->fn(n);
    }
    if (rp->open) {
        uv_prepare_stop(&rp->prepare);
        uv_check_stop(&rp->check);
    }
}

static void on_prepare(uv_prepare_t *p)
{
    drain(p->data);
}

static void on_check(uv_check_t *c)
{
    drain(c->data);
}

void mw_reap_now(mw_reaper *rp)
{
    if (rp->head)
        drain(rp);
}

void mw_reaper_init(mw_reaper *rp, uv_loop_t *loop)
{
    rp->head = rp->tail = NULL;
    uv_prepare_init(loop, &rp->prepare); /* cannot fail */
    uv_check_init(loop, &rp->check);
    rp->prepare.data = rp->check.data = rp;
    rp->open = 1;
}

void mw_reaper_close(mw_reaper *rp)
{
    if (!rp->open)
        return;
    drain(rp);
    rp->open = 0;
    uv_close((uv_handle_t *)&rp->prepare, NULL);
    uv_close((uv_handle_t *)&rp->check, NULL);
}

void mw_reap_later(mw_reaper *rp, mw_reap *node, void (*fn)(mw_reap *node))
{
    node->fn = fn;
    node->next = NULL;
    if (!rp->open) {
        fn(node);
        return;
    }
    if (rp->tail) {
        rp->tail->next = node;
    } else {
        rp->head = node;
        uv_prepare_start(&rp->prepare, on_prepare);
        uv_check_start(&rp->check, on_check);
    }
    rp->tail = node;
}
