/*
 * What the payload parser derives from a statement's SQL alone, kept for
 * the SQL texts an alias ran last: the rewrite for the backend (params.h)
 * and, on PostgreSQL, the classification (sql_classify.h). Both are pure
 * functions of the SQL bytes, the dialect, the parameter mode and the
 * number of values, which together are the key (compared whole, not only
 * by hash), so a hit gives exactly what computing them again would.
 * Statements with named parameters, SQL above MW_SQL_MEMO_MAX_SQL bytes
 * and failed rewrites are never kept. One memo per alias, used on its
 * worker's loop thread only (its references too); MW_SQL_MEMO_SLOTS entries at most, each
 * replaced by the next SQL whose hash picks its slot.
 */
#ifndef MW_SQL_MEMO_H
#define MW_SQL_MEMO_H

#include <stddef.h>

#include "params.h"
#include "sql_classify.h"

#define MW_SQL_MEMO_SLOTS 64
#define MW_SQL_MEMO_MAX_SQL 2048

typedef struct mw_sql_memo mw_sql_memo;

/* A kept rewrite, shared by the memo and the statements a hit gave it to;
 * freed when the last of them lets go (mw_sql_memo_release), so a slot
 * replaced while a request still runs its SQL frees nothing under it. */
typedef struct mw_sql_shared mw_sql_shared;

/* What the memo hands out (get) or takes a copy of (put). */
typedef struct mw_sql_derived {
    mw_rewrite rw;         /* get: borrowed from shared, valid until released */
    mw_sql_shared *shared; /* get: the caller's reference; put: not read */
    int have_class;        /* PostgreSQL */
    mw_sql_class cls;
} mw_sql_derived;

/* 1 with *out filled (out->shared a reference the caller releases), 0 when
 * sql is not kept. *memo may be NULL (nothing kept yet). */
int mw_sql_memo_get(mw_sql_memo *memo, const char *sql, size_t len, mw_dialect d,
                    mw_param_mode mode, size_t nvalues, mw_sql_derived *out);

/* Keeps a copy of what was derived for sql (nothing when it may not be
 * kept, or memory runs out), making *memo at the first call. */
void mw_sql_memo_put(mw_sql_memo **memo, const char *sql, size_t len, mw_dialect d,
                     mw_param_mode mode, size_t nvalues, const mw_sql_derived *in);

/* Lets go of a reference from mw_sql_memo_get (NULL: nothing). */
void mw_sql_memo_release(mw_sql_shared *shared);

void mw_sql_memo_free(mw_sql_memo *memo);

#endif
