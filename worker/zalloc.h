/*
 * Zeroed allocations for the per-request objects. glibc's calloc never
 * takes a chunk from its per-thread cache (tcache), so each call runs the
 * full allocator, and the chunks it hands out, once freed, fill that cache
 * for nothing; malloc and memset are served from the cache. The memset
 * goes through a volatile pointer because GCC and clang turn a malloc
 * followed by a memset of the same size back into calloc. Same contract
 * as calloc: NULL when out of memory or when n * size overflows.
 */
#ifndef MW_ZALLOC_H
#define MW_ZALLOC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *(*volatile mw_zalloc_memset)(void *, int, size_t) = memset;

static inline void *mw_zalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = malloc(bytes > 0 ? bytes : 1);
    if (p)
        mw_zalloc_memset(p, 0, bytes);
    return p;
}

#endif
