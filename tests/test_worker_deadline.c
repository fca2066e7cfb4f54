/*
 * The worker's deadlines (worker/deadline.h) on a real libuv loop: entries
 * armed with different delays, some stopped or re-armed before they are
 * due, fire once each, in the order of their dues and never before them;
 * the one uv timer keeps the loop alive exactly while an entry is armed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "test.h"

#define N 300

typedef struct item {
    mw_deadline d;
    uint64_t due;        /* when it must fire at the earliest (uv_now ms) */
    uint64_t fired_at;
    int fired;
    int stopped;
} item;

static mw_deadlines ds;
static item items[N];
static item *order[N];
static int nfired;

static void on_fire(mw_deadline *d)
{
    item *it = MW_CONTAINER_OF(d, item, d);
    it->fired++;
    it->fired_at = uv_now(ds.timer.loop);
    order[nfired++] = it;
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

TEST(entries_fire_once_in_due_order_never_early)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    mw_deadlines_init(&ds, &loop);
    memset(items, 0, sizeof items);
    nfired = 0;
    uint64_t now = uv_now(&loop);
    for (int i = 0; i < N; i++) {
        uint64_t ms = 1 + rnd(80); /* many equal dues among 300 */
        mw_deadline_start(&ds, &items[i].d, ms, on_fire);
        items[i].due = now + ms;
    }
    /* a third stop, a third move (later or earlier), out of arming order */
    for (int i = N - 1; i >= 0; i--) {
        if (i % 3 == 0) {
            mw_deadline_stop(&ds, &items[i].d);
            items[i].stopped = 1;
        } else if (i % 3 == 1) {
            uint64_t ms = 1 + rnd(120);
            mw_deadline_start(&ds, &items[i].d, ms, on_fire);
            items[i].due = now + ms;
        }
    }
    mw_deadline_stop(&ds, &items[0].d); /* stopping twice is harmless */
    ASSERT_EQ_UINT(ds.n, N - (N + 2) / 3);
    /* the loop runs while entries are armed, and ends when none is */
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ_UINT(ds.n, 0);
    ASSERT_EQ_INT(nfired, N - (N + 2) / 3);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(items[i].fired, items[i].stopped ? 0 : 1);
        if (!items[i].stopped)
            ASSERT(items[i].fired_at >= items[i].due);
    }
    for (int k = 1; k < nfired; k++)
        ASSERT(order[k - 1]->due <= order[k]->due);
    mw_deadlines_close(&ds);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* A callback that arms itself again with 0 ms fires once per firing, not
 * in a loop; arming after close does nothing. */
static int rearmed;

static void on_rearm(mw_deadline *d)
{
    if (++rearmed < 5)
        mw_deadline_start(&ds, d, 0, on_rearm);
}

TEST(rearming_from_its_callback_waits_for_the_next_firing)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    mw_deadlines_init(&ds, &loop);
    mw_deadline d;
    memset(&d, 0, sizeof d);
    rearmed = 0;
    mw_deadline_start(&ds, &d, 0, on_rearm);
    uv_run(&loop, UV_RUN_ONCE); /* its timers run before and after the poll */
    ASSERT(rearmed >= 1 && rearmed <= 2);
    ASSERT(d.armed);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ_INT(rearmed, 5);
    ASSERT(!d.armed);
    mw_deadlines_close(&ds);
    mw_deadline_start(&ds, &d, 10, on_rearm);
    ASSERT(!d.armed);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

TEST_MAIN(TEST_ENTRY(entries_fire_once_in_due_order_never_early),
          TEST_ENTRY(rearming_from_its_callback_waits_for_the_next_firing))
