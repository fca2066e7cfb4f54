/*
 * The entries (entries.c): what each request's "entry" does once
 * request.c has parsed and admitted it. Each answers its request with
 * mw_request_reply / mw_request_reply_payload (request.h), at once or
 * later from a backend.
 */
#ifndef MW_ENTRIES_H
#define MW_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

typedef struct mw_worker mw_worker;
typedef struct mw_request mw_request;

void mw_entry_ping(mw_request *r);
void mw_entry_stats(mw_request *r);
void mw_entry_cancel(mw_request *r, const uint8_t *payload, size_t len);
void mw_entry_db(mw_request *r, const uint8_t *payload, size_t len);
/* packs the stats map (also for the Prometheus endpoint) */
void mw_stats_pack(mw_worker *w, msgpack_packer *pk);

#endif
