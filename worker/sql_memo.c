/* The SQL memo (sql_memo.h). */
#include "sql_memo.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mw_sql_shared {
    size_t refs;           /* the memo's slot, and each statement using it */
    mw_rewrite rw;
};

typedef struct memo_entry {
    uint64_t hash;
    char *sql;             /* the key's SQL as given; NULL: the slot is empty */
    size_t sql_len;
    mw_dialect d;
    mw_param_mode mode;
    size_t nvalues;
    mw_sql_shared *shared; /* the rewrite */
    int have_class;
    mw_sql_class cls;
} memo_entry;

struct mw_sql_memo {
    memo_entry slots[MW_SQL_MEMO_SLOTS];
};

static int keepable(size_t len, mw_param_mode mode)
{
    return mode != MW_PARAMS_NAMED && len <= MW_SQL_MEMO_MAX_SQL;
}

/* FNV-1a over 8-byte words, then the tail */
static uint64_t hash_of(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h ^ (h >> 32);
}

static uint64_t key_hash(const char *sql, size_t len, mw_dialect d, mw_param_mode mode,
                         size_t nvalues)
{
    return hash_of(sql, len, (uint64_t)d | (uint64_t)mode << 8 | (uint64_t)nvalues << 16);
}

/* A copy of rw for nvalues values (the size of its slot map). */
static int rw_copy(mw_rewrite *to, const mw_rewrite *from, size_t nvalues)
{
    memset(to, 0, sizeof *to);
    to->sql = malloc(from->sql_len + 1);
    if (!to->sql)
        return -1;
    memcpy(to->sql, from->sql, from->sql_len + 1);
    to->sql_len = from->sql_len;
    to->nslots = from->nslots;
    if (from->slot_value) {
        to->slot_value = malloc(nvalues * sizeof *to->slot_value);
        if (!to->slot_value) {
            mw_rewrite_free(to);
            return -1;
        }
        memcpy(to->slot_value, from->slot_value, nvalues * sizeof *to->slot_value);
    }
    return 0;
}

void mw_sql_memo_release(mw_sql_shared *shared)
{
    if (shared && --shared->refs == 0) {
        mw_rewrite_free(&shared->rw);
        free(shared);
    }
}

static void entry_clear(memo_entry *e)
{
    free(e->sql);
    mw_sql_memo_release(e->shared);
    memset(e, 0, sizeof *e);
}

int mw_sql_memo_get(mw_sql_memo *memo, const char *sql, size_t len, mw_dialect d,
                    mw_param_mode mode, size_t nvalues, mw_sql_derived *out)
{
    if (!memo || !keepable(len, mode))
        return 0;
    if (mode == MW_PARAMS_NONE)
        nvalues = 0;
    uint64_t h = key_hash(sql, len, d, mode, nvalues);
    memo_entry *e = &memo->slots[h % MW_SQL_MEMO_SLOTS];
    if (!e->sql || e->hash != h || e->sql_len != len || e->d != d || e->mode != mode ||
        e->nvalues != nvalues || memcmp(e->sql, sql, len) != 0)
        return 0;
    e->shared->refs++;
    out->shared = e->shared;
    out->rw = e->shared->rw;
    out->have_class = e->have_class;
    out->cls = e->cls;
    return 1;
}

void mw_sql_memo_put(mw_sql_memo **memo, const char *sql, size_t len, mw_dialect d,
                     mw_param_mode mode, size_t nvalues, const mw_sql_derived *in)
{
    if (!keepable(len, mode))
        return;
    if (mode == MW_PARAMS_NONE)
        nvalues = 0;
    if (!*memo && !(*memo = calloc(1, sizeof **memo)))
        return;
    uint64_t h = key_hash(sql, len, d, mode, nvalues);
    memo_entry *e = &(*memo)->slots[h % MW_SQL_MEMO_SLOTS];
    entry_clear(e);
    e->shared = calloc(1, sizeof *e->shared);
    if (!e->shared)
        return;
    e->shared->refs = 1;
    if (rw_copy(&e->shared->rw, &in->rw, nvalues) < 0) {
        entry_clear(e);
        return;
    }
    e->sql = malloc(len ? len : 1);
    if (!e->sql) {
        entry_clear(e);
        return;
    }
    memcpy(e->sql, sql, len);
    e->hash = h;
    e->sql_len = len;
    e->d = d;
    e->mode = mode;
    e->nvalues = nvalues;
    e->have_class = in->have_class;
    e->cls = in->cls;
}

void mw_sql_memo_free(mw_sql_memo *memo)
{
    if (!memo)
        return;
    for (size_t i = 0; i < MW_SQL_MEMO_SLOTS; i++)
        entry_clear(&memo->slots[i]);
    free(memo);
}
