/* The worker's deadlines (deadline.h): an intrusive binary min-heap (each
 * entry links to its parent and children; the shape is that of an array
 * heap, the path to the last slot read off the bits of the count) served
 * by one uv timer. */
#include "deadline.h"

#include <string.h>

static int less(const mw_deadline *a, const mw_deadline *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* Child c takes the place of its parent p, p goes down into c's. */
static void swap(mw_deadlines *ds, mw_deadline *p, mw_deadline *c)
{
    mw_deadline *pp = p->parent, *pl = p->left, *pr = p->right;
    mw_deadline *cl = c->left, *cr = c->right;
    c->parent = pp;
    if (pl == c) {
        c->left = p;
        c->right = pr;
        if (pr)
            pr->parent = c;
    } else {
        c->right = p;
        c->left = pl;
        if (pl)
            pl->parent = c;
    }
    p->parent = c;
    p->left = cl;
    p->right = cr;
    if (cl)
        cl->parent = p;
    if (cr)
        cr->parent = p;
    if (!pp)
        ds->min = c;
    else if (pp->left == p)
        pp->left = c;
    else
        pp->right = c;
}

/* The link that holds (or is to hold) slot n (1-based, breadth first). */
static mw_deadline **slot(mw_deadlines *ds, size_t n, mw_deadline **parent)
{
    size_t path = 0, k = 0;
    for (; n >= 2; k++, n /= 2)
        path = (path << 1) | (n & 1);
    mw_deadline **link = &ds->min;
    *parent = NULL;
    for (; k > 0; k--, path >>= 1) {
        *parent = *link;
        link = (path & 1) ? &(*link)->right : &(*link)->left;
    }
    return link;
}

static void heap_insert(mw_deadlines *ds, mw_deadline *d)
{
    mw_deadline *parent;
    mw_deadline **link = slot(ds, ds->n + 1, &parent);
    d->left = d->right = NULL;
    d->parent = parent;
    *link = d;
    ds->n++;
    while (d->parent && less(d, d->parent))
        swap(ds, d->parent, d);
}

static void heap_remove(mw_deadlines *ds, mw_deadline *d)
{
    mw_deadline *parent;
    mw_deadline **link = slot(ds, ds->n, &parent);
    mw_deadline *last = *link;
    *link = NULL;
    ds->n--;
    if (last == d)
        return;
    /* the last slot's entry takes d's place, then moves down or up */
    last->left = d->left;
    last->right = d->right;
    last->parent = d->parent;
    if (last->left)
        last->left->parent = last;
    if (last->right)
        last->right->parent = last;
    if (!d->parent)
        ds->min = last;
    else if (d->parent->left == d)
        d->parent->left = last;
    else
        d->parent->right = last;
    for (;;) {
        mw_deadline *s = last;
        if (last->left && less(last->left, s))
            s = last->left;
        if (last->right && less(last->right, s))
            s = last->right;
        if (s == last)
            break;
        swap(ds, last, s);
    }
    while (last->parent && less(last, last->parent))
        swap(ds, last->parent, last);
}

static void on_timer(uv_timer_t *t);

/* From its own callback the timer is armed 1 ms ahead at least: libuv
 * would run one due now again before it returns to the loop. */
static void arm(mw_deadlines *ds, uint64_t due)
{
    uint64_t now = uv_now(ds->timer.loop);
    ds->timer_due = due;
    uv_timer_start(&ds->timer, on_timer, due > now ? due - now : ds->firing ? 1 : 0, 0);
}

/* Runs the entries due, earliest first. One armed while they run (its
 * seq is past `last`) waits for the next firing even when due now, so a
 * callback that re-arms with 0 cannot hold the loop here. */
static void on_timer(uv_timer_t *t)
{
    mw_deadlines *ds = MW_CONTAINER_OF(t, mw_deadlines, timer);
    uint64_t now = uv_now(t->loop), last = ds->seq;
    ds->timer_due = UINT64_MAX;
    ds->firing = 1;
    while (ds->min && ds->min->due <= now && ds->min->seq < last) {
        mw_deadline *d = ds->min;
        mw_deadline_stop(ds, d);
        d->cb(d);
    }
    if (ds->min && ds->open)
        arm(ds, ds->min->due);
    ds->firing = 0;
}

void mw_deadlines_init(mw_deadlines *ds, uv_loop_t *loop)
{
    memset(ds, 0, sizeof *ds);
    uv_timer_init(loop, &ds->timer); /* cannot fail */
    uv_unref((uv_handle_t *)&ds->timer);
    ds->timer_due = UINT64_MAX;
    ds->open = 1;
}

void mw_deadlines_close(mw_deadlines *ds)
{
    if (!ds->open)
        return;
    ds->open = 0;
    uv_close((uv_handle_t *)&ds->timer, NULL);
}

void mw_deadline_start(mw_deadlines *ds, mw_deadline *d, uint64_t ms, mw_deadline_cb cb)
{
    if (!ds->open)
        return;
    mw_deadline_stop(ds, d);
    d->due = uv_now(ds->timer.loop) + ms;
    d->seq = ds->seq++;
    d->cb = cb;
    d->armed = 1;
    heap_insert(ds, d);
    if (ds->n == 1)
        uv_ref((uv_handle_t *)&ds->timer);
    if (!ds->firing && d->due < ds->timer_due)
        arm(ds, d->due);
}

void mw_deadline_stop(mw_deadlines *ds, mw_deadline *d)
{
    if (!d->armed)
        return;
    heap_remove(ds, d);
    d->armed = 0;
    d->left = d->right = d->parent = NULL;
    if (ds->n == 0 && ds->open)
        uv_unref((uv_handle_t *)&ds->timer);
}
