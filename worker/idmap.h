/* The requests in flight by request_id, for the duplicate check and
 * cancel's lookup in O(1): one table per worker, keyed by (space, id), the
 * space being a session or NULL (the one-request sessions' shared space of
 * ids, session.c). Open addressing with linear probing. */
#ifndef MW_IDMAP_H
#define MW_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct mw_request mw_request;

typedef struct mw_idmap_slot {
    const void *space;
    uint64_t id;
    mw_request *r; /* NULL: empty */
} mw_idmap_slot;

typedef struct mw_idmap {
    mw_idmap_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
} mw_idmap;

/* Adds r under (space, id), which must not be there. 0, or -1 when the
 * table could not grow (out of memory: nothing changed). */
int mw_idmap_put(mw_idmap *m, const void *space, uint64_t id, mw_request *r);
/* The request under (space, id), or NULL. */
mw_request *mw_idmap_get(const mw_idmap *m, const void *space, uint64_t id);
/* Removes (space, id) if there. */
void mw_idmap_del(mw_idmap *m, const void *space, uint64_t id);
/* Frees the table (the requests are not the map's). */
void mw_idmap_free(mw_idmap *m);

#endif
