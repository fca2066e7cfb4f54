/*
 * The worker's map of requests in flight by (space, id) (worker/idmap.c):
 * every entry found after many puts and deletes in random order, with ids
 * chosen to collide, across growth; absent keys not found.
 */
#include <stdint.h>
#include <stdlib.h>

#include "idmap.h"
#include "test.h"

enum { N = 20000 };

/* The request pointers are never read by the map: distinct fake ones. */
static mw_request *fake(size_t i)
{
    return (mw_request *)(uintptr_t)(0x1000 + i * 16);
}

TEST(test_puts_gets_and_deletes)
{
    static uint64_t ids[N];
    static const void *spaces[N];
    static int present[N];
    static const char space_a, space_b;
    mw_idmap m = {0};
    srand(7);
    for (size_t i = 0; i < N; i++) {
        /* few distinct ids in three spaces: many equal ids, many collisions */
        ids[i] = i / 3;
        spaces[i] = i % 3 == 0 ? NULL : i % 3 == 1 ? (const void *)&space_a : &space_b;
        ASSERT(mw_idmap_put(&m, spaces[i], ids[i], fake(i)) == 0);
        present[i] = 1;
    }
    ASSERT(m.n == N);
    for (int round = 0; round < 4; round++) {
        for (size_t k = 0; k < N / 2; k++) {
            size_t i = (size_t)rand() % N;
            if (present[i]) {
                mw_idmap_del(&m, spaces[i], ids[i]);
                present[i] = 0;
            } else {
                ASSERT(mw_idmap_put(&m, spaces[i], ids[i], fake(i)) == 0);
                present[i] = 1;
            }
        }
        size_t n = 0;
        for (size_t i = 0; i < N; i++) {
            ASSERT(mw_idmap_get(&m, spaces[i], ids[i]) == (present[i] ? fake(i) : NULL));
            n += (size_t)present[i];
        }
        ASSERT(m.n == n);
    }
    ASSERT(mw_idmap_get(&m, NULL, N) == NULL);
    mw_idmap_del(&m, &space_a, N); /* absent: nothing changes */
    mw_idmap_free(&m);
    ASSERT(mw_idmap_get(&m, NULL, 0) == NULL);
}

TEST_MAIN(TEST_ENTRY(test_puts_gets_and_deletes))
