/*
 * The binary COPY format (COPY ... TO STDOUT (FORMAT binary)) as rows of
 * field views, and a query adapter that runs a SELECT through COPY and
 * feeds any molt_db_result_handler (the Arrow reader, the struct reader).
 *
 * The parser is sans-I/O: feed it the CopyData payloads in order, split
 * anywhere; it checks the 11-byte signature, the flags (bits 0-16 set is
 * EPROTO: OIDs are not supported; bits 17-31 are ignored as the format
 * says), the header extension length, every tuple's field count (it must
 * equal the expected column count when one is given) and every field
 * length against the bytes there, and the trailer (-1); data after the
 * trailer is EPROTO. A tuple inside one chunk is passed without copying; a
 * tuple split across chunks is assembled in a carry buffer that is reused.
 *
 * Threads: a parser belongs to one thread.
 */
#ifndef MOLT_DB_COPY_BINARY_H
#define MOLT_DB_COPY_BINARY_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/conn.h"
#include "molt_db/error.h"
#include "molt_db/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct molt_db_copy_parser molt_db_copy_parser;

/* A tuple: fields[i].len -1 for NULL; views valid during the call. Return
 * OK or a negative code (feed then returns it). */
typedef int (*molt_db_copy_row_cb)(void *ud, const molt_db_field *fields,
                                   size_t nfields);

/* ncols: the field count every tuple must have, or 0 to accept any (then
 * the first tuple's count is required of the others). Returns OK and
 * *out, or ENOMEM. */
MOLT_DB_API
int molt_db_copy_parser_new(size_t ncols, molt_db_copy_row_cb on_row, void *ud,
                            molt_db_copy_parser **out, molt_db_error *err);
MOLT_DB_API
void molt_db_copy_parser_free(molt_db_copy_parser *p);

/* Parses the next bytes of the stream. Returns OK, EPROTO (malformed:
 * the parser stays failed), ENOMEM, or the callback's code. */
MOLT_DB_API
int molt_db_copy_parser_feed(molt_db_copy_parser *p, const uint8_t *data,
                             size_t len, molt_db_error *err);

/* At the end of the data: OK when the trailer was seen and nothing is left
 * over, else EPROTO. */
MOLT_DB_API
int molt_db_copy_parser_finish(molt_db_copy_parser *p, molt_db_error *err);

/* Tuples parsed so far. */
MOLT_DB_API
uint64_t molt_db_copy_parser_rows(const molt_db_copy_parser *p);

/*
 * Runs `COPY (select_sql) TO STDOUT (FORMAT binary)` and reports it to h
 * as if it were a query: on_columns once (the columns as the server
 * describes select_sql, every format binary), on_row per tuple, on_command
 * with "COPY n", on_done once. select_sql is one SELECT (or VALUES, TABLE)
 * without parameters and without a trailing semicolon. The COPY goes out
 * only once select_sql was described as one statement on its own (two round
 * trips), so SQL that would close the COPY's parentheses early (`select 1)
 * to '/file' --`) fails its describe and is never run as a COPY; requests
 * made on the connection meanwhile run before the COPY. A
 * column whose type the library cannot decode in binary fails the request
 * with MOLT_DB_ETYPE naming it (cast it to text in the SQL). h is copied;
 * h->ud must outlive on_done.
 * Returns OK (on_done will run), or ENOMEM / EINVAL / ECLOSED.
 */
MOLT_DB_API
int molt_db_conn_copy_query(molt_db_conn *conn, const char *select_sql,
                            const molt_db_result_handler *h);

#ifdef __cplusplus
}
#endif
#endif
