/*
 * What the payload parser derives from a statement's SQL alone, kept for
 * the SQL texts an alias ran last: the rewrite for the backend (params.h)
 * and, on PostgreSQL, the classification (sql_classify.h). Both are pure
 * functions of the SQL bytes, the dialect, the parameter mode and the
 * number of values, which together are the key (compared whole, not only
 * by hash), so a hit gives exactly what computing them again would.
 * Statements with named parameters, SQL above MW_SQL_MEMO_MAX_SQL bytes
 * and failed rewrites are never kept. One memo per alias, used on its
 * worker's loop thread only; MW_SQL_MEMO_SLOTS entries at most, each
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

/* What the memo hands out: rw is the caller's (mw_rewrite_free). */
typedef struct mw_sql_derived {
    mw_rewrite rw;
    int have_class;        /* PostgreSQL */
    mw_sql_class cls;
} mw_sql_derived;

/* 1 with *out filled (its rw a fresh copy), 0 when sql is not kept (or
 * the copy failed: the caller computes it as without a memo). *memo may be
 * NULL (nothing kept yet). */
int mw_sql_memo_get(mw_sql_memo *memo, const char *sql, size_t len, mw_dialect d,
                    mw_param_mode mode, size_t nvalues, mw_sql_derived *out);

/* Keeps a copy of what was derived for sql (nothing when it may not be
 * kept, or memory runs out), making *memo at the first call. */
void mw_sql_memo_put(mw_sql_memo **memo, const char *sql, size_t len, mw_dialect d,
                     mw_param_mode mode, size_t nvalues, const mw_sql_derived *in);

void mw_sql_memo_free(mw_sql_memo *memo);

#endif
