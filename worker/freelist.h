/*
 * A bounded list of freed objects of one kind kept for reuse, on the loop
 * thread only. The per-request objects larger than glibc's per-thread
 * cache (a request, a session: above 1 kB) otherwise cost the full
 * allocator twice a request. At most MW_FREELIST_MAX are kept; under
 * AddressSanitizer a kept object is poisoned, so a use after its release
 * is still reported.
 */
#ifndef MW_FREELIST_H
#define MW_FREELIST_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "zalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define MW_FREELIST_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define MW_FREELIST_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define MW_FREELIST_POISON(p, n) ((void)(p), (void)(n))
#define MW_FREELIST_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MW_FREELIST_MAX 128

typedef struct mw_freelist {
    void *head;   /* each kept object starts with the next one's address */
    size_t n;
    size_t size;  /* of each object */
} mw_freelist;

/* A zeroed object of size bytes (the same size on every call for one
 * list), or NULL when out of memory. */
static inline void *mw_freelist_take(mw_freelist *fl, size_t size)
{
    void *p = fl->head;
    fl->size = size;
    if (!p)
        return mw_zalloc(1, size);
    MW_FREELIST_UNPOISON(p, size);
    fl->head = *(void **)p;
    fl->n--;
    memset(p, 0, size);
    return p;
}

/* Releases p (from mw_freelist_take): kept, or freed. */
static inline void mw_freelist_give(mw_freelist *fl, void *p)
{
    if (fl->n >= MW_FREELIST_MAX) {
        free(p);
        return;
    }
    *(void **)p = fl->head;
    MW_FREELIST_POISON(p, fl->size);
    fl->head = p;
    fl->n++;
}

/* Frees every kept object. */
static inline void mw_freelist_drain(mw_freelist *fl)
{
    while (fl->head) {
        void *p = fl->head;
        MW_FREELIST_UNPOISON(p, fl->size);
        fl->head = *(void **)p;
        free(p);
    }
    fl->n = 0;
}

#endif
