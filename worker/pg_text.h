/* The server's text form of some PostgreSQL types to their values
 * (worker/pg_text.c): for text results, so that they encode as binary ones.
 * Each returns 0, or -1 when the text is not what the server prints (the
 * caller then passes the text on). */
#ifndef MOLT_WORKER_PG_TEXT_H
#define MOLT_WORKER_PG_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/types.h"

/* bytea in hex ("\x00ff") or escape output into out, which has room for n
 * bytes (the decoded value is never longer than its text); *len its length. */
int mw_pg_text_bytea(const uint8_t *p, size_t n, uint8_t *out, size_t *len);

/* timestamp (with_zone 0) or timestamptz (1) in DateStyle ISO, infinity
 * included, to microseconds since 2000-01-01 (UTC for timestamptz). */
int mw_pg_text_timestamp(const uint8_t *p, size_t n, int with_zone, int64_t *us);

/* interval in IntervalStyle postgres. */
int mw_pg_text_interval(const uint8_t *p, size_t n, molt_db_interval *iv);

#endif
