/* Lanes: a thread per connection (see lane.h). */
#include "lane.h"

#include <signal.h>

static void on_done(uv_async_t *a)
{
    mw_lanes *ls = a->data;
    pthread_mutex_lock(&ls->lock);
    mw_task *t = ls->head;
    ls->head = ls->tail = NULL;
    pthread_mutex_unlock(&ls->lock);
    while (t) {
        mw_task *next = t->next;
        ls->pending--;
        t->done(t); /* may post again: pending grows, the handle stays referenced */
        t = next;
    }
    if (ls->pending == 0)
        uv_unref((uv_handle_t *)a);
}

int mw_lanes_init(mw_lanes *ls, uv_loop_t *loop)
{
    ls->head = ls->tail = NULL;
    ls->pending = 0;
    int rc = pthread_mutex_init(&ls->lock, NULL);
    if (rc != 0)
        return rc;
    rc = uv_async_init(loop, &ls->async, on_done);
    if (rc != 0) {
        pthread_mutex_destroy(&ls->lock);
        return rc;
    }
    ls->async.data = ls;
    uv_unref((uv_handle_t *)&ls->async);
    return 0;
}

static void on_lanes_closed(uv_handle_t *h)
{
    pthread_mutex_destroy(&((mw_lanes *)h->data)->lock);
}

void mw_lanes_close(mw_lanes *ls)
{
    uv_close((uv_handle_t *)&ls->async, on_lanes_closed);
}

/* t was run (or needs no running): its done is the loop's next. */
static void complete(mw_lanes *ls, mw_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&ls->lock);
    if (ls->tail)
        ls->tail->next = t;
    else
        ls->head = t;
    ls->tail = t;
    pthread_mutex_unlock(&ls->lock);
    uv_async_send(&ls->async);
}

static void count_pending(mw_lanes *ls)
{
    if (ls->pending++ == 0)
        uv_ref((uv_handle_t *)&ls->async);
}

void mw_lanes_defer(mw_lanes *ls, mw_task *t)
{
    count_pending(ls);
    complete(ls, t);
}

static void *lane_main(void *arg)
{
    mw_lane *l = arg;
    mw_lanes *ls = l->owner;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->task && !l->stop)
            pthread_cond_wait(&l->cond, &l->lock);
        mw_task *t = l->task;
        if (!t)
            break; /* stop */
        l->task = NULL;
        pthread_mutex_unlock(&l->lock);
        t->run(t);
        complete(ls, t);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

void mw_lane_init(mw_lane *l, mw_lanes *ls)
{
    l->owner = ls;
    l->task = NULL;
    l->stop = 0;
    l->started = 0;
}

/* Starts l's thread with every signal blocked (the process's signals are
 * its main thread's, or libuv's). 0 or -1. */
static int lane_start(mw_lane *l)
{
    if (pthread_mutex_init(&l->lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&l->cond, NULL) != 0) {
        pthread_mutex_destroy(&l->lock);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, lane_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
        return -1;
    }
    l->started = 1;
    return 0;
}

int mw_lane_post(mw_lane *l, mw_task *t)
{
    if (!l->started && lane_start(l) < 0)
        return -1;
    count_pending(l->owner);
    pthread_mutex_lock(&l->lock);
    l->task = t;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

void mw_lane_stop(mw_lane *l)
{
    if (!l->started)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    l->started = 0;
}
