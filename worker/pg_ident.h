/*
 * PostgreSQL identifiers that come from a client (LISTEN channels, COPY
 * table and column names): checked, then written double-quoted, so a name
 * is only ever a name and never SQL.
 */
#ifndef MW_PG_IDENT_H
#define MW_PG_IDENT_H

#include <stddef.h>

#include "molt_db/buf.h"

/* The longest identifier the server keeps whole (NAMEDATALEN - 1): a longer
 * one would be cut short by the server, so it is refused instead. */
#define MW_PG_IDENT_MAX 63

/* 0 when name (len bytes, UTF-8 already checked) may be an identifier: 1 to
 * MW_PG_IDENT_MAX bytes, no NUL byte. Otherwise -1 with why (a static
 * string). */
int mw_pg_ident_check(const char *name, size_t len, const char **why);

/* Appends "name" with every " doubled. Check the result with
 * molt_db_buf_ok. */
void mw_pg_ident_quote(molt_db_buf *out, const char *name, size_t len);

#endif
