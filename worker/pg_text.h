/* The server's text form of some PostgreSQL types to their binary wire form
 * (worker/pg_text.c): for text results, so that they encode as binary ones.
 * Handles bytea (hex and escape output), timestamp/timestamptz (DateStyle
 * ISO, as the server prints them, infinity included) and interval
 * (IntervalStyle postgres). */
#ifndef MOLT_WORKER_PG_TEXT_H
#define MOLT_WORKER_PG_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/types.h"

/* Appends the binary form of text p[0..n) of type oid to out: 0, or -1 when
 * the type is not one of these or the text is not what the server prints
 * (the caller then passes the text on; out may hold a partial value). */
int mw_pg_text_to_binary(uint32_t oid, const uint8_t *p, size_t n, molt_db_buf *out);

#endif
