/*
 * The copy_in entry (contract section 13): rows into a PostgreSQL table
 * through COPY ... FROM STDIN, in one transaction.
 *
 * The payload names the table and its columns (identifiers, checked and
 * double-quoted: never SQL text) and carries the rows as MsgPack values,
 * which are written here, before any database work, in COPY's text format
 * (NULL as \N; tab, newline, carriage return and backslash escaped; arrays
 * as PostgreSQL array literals; bytes as bytea hex). The server then reads
 * each value as its column's type, as it would a literal.
 *
 * It is a write: the request needs allow_write and the alias db.write.
 * backend_pg.c runs it: BEGIN, the COPY with all its data, COMMIT (or
 * ROLLBACK on any error: all rows or none).
 */
#ifndef MW_COPY_H
#define MW_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "payload.h"

typedef struct mw_copy {
    char *sql;            /* COPY "schema"."table" ("a", "b") FROM STDIN */
    molt_db_buf data;     /* the rows in COPY's text format */
    uint64_t rows;
} mw_copy;

/* Reads a copy_in payload into q (alias, write, q->copy with its COPY and
 * data). 0, -1 (InvalidInput, msg) or -2 (out of memory); in every case
 * the caller releases q with mw_query_free. */
int mw_copy_in_parse(mw_query *q, const mw_config *cfg, const uint8_t *payload,
                     size_t len, char msg[MW_MSG_SIZE]);

void mw_copy_free(mw_copy *c);
/* The heap bytes c holds (0 for NULL). */
size_t mw_copy_held_bytes(const mw_copy *c);

/* copy_out: a db_query payload (already parsed into q) whose one statement
 * backend_pg.c runs as COPY (...) TO STDOUT (FORMAT binary) in a READ ONLY
 * transaction, the rows reported as db_query's. Refuses what COPY cannot
 * run (SQLite, statements lists, parameters) and marks q. 0 or -1 with
 * msg. */
int mw_copy_out_check(mw_query *q, char msg[MW_MSG_SIZE]);

#endif
