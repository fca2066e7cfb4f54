/* mw_idmap (idmap.h): linear probing, deletion by backward shift, so a
 * lookup never walks tombstones; grown at 3/4 full. */
#include "idmap.h"

#include <stdlib.h>

static size_t slot_of(const mw_idmap *m, const void *space, uint64_t id)
{
    uint64_t h = id ^ ((uint64_t)(uintptr_t)space * 0x9E3779B97F4A7C15ull);
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return (size_t)h & (m->cap - 1);
}

static void place(mw_idmap *m, const mw_idmap_slot *e)
{
    size_t i = slot_of(m, e->space, e->id);
    while (m->slots[i].r != NULL)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = *e;
}

static int grow(mw_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (cap < m->cap)
        return -1;
    mw_idmap_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    mw_idmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].r != NULL)
            place(m, &old.slots[i]);
    free(old.slots);
    return 0;
}

int mw_idmap_put(mw_idmap *m, const void *space, uint64_t id, mw_request *r)
{
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    mw_idmap_slot e = {space, id, r};
    place(m, &e);
    m->n++;
    return 0;
}

static size_t find(const mw_idmap *m, const void *space, uint64_t id)
{
    if (m->cap == 0)
        return SIZE_MAX;
    for (size_t i = slot_of(m, space, id);; i = (i + 1) & (m->cap - 1)) {
        const mw_idmap_slot *e = &m->slots[i];
        if (e->r == NULL)
            return SIZE_MAX;
        if (e->id == id && e->space == space)
            return i;
    }
}

mw_request *mw_idmap_get(const mw_idmap *m, const void *space, uint64_t id)
{
    size_t i = find(m, space, id);
    return i == SIZE_MAX ? NULL : m->slots[i].r;
}

void mw_idmap_del(mw_idmap *m, const void *space, uint64_t id)
{
    size_t i = find(m, space, id);
    if (i == SIZE_MAX)
        return;
    m->n--;
    /* shift back the entries after i whose home is not between i and them */
    for (size_t j = (i + 1) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        mw_idmap_slot *e = &m->slots[j];
        if (e->r == NULL)
            break;
        size_t home = slot_of(m, e->space, e->id);
        if (((j - home) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
            m->slots[i] = *e;
            i = j;
        }
    }
    m->slots[i].r = NULL;
}

void mw_idmap_free(mw_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
