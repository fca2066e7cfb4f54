/*
 * The listen entry: LISTEN/NOTIFY for clients (contract section 12).
 *
 * Each PostgreSQL alias has at most one listening connection of its own (a
 * "hub", not a pool connection), opened when its first listener arrives and
 * closed when its last one leaves; all of the alias's listeners share it.
 * The hub LISTENs on the union of their channels and hands each
 * notification to every listener of its channel. When the connection
 * breaks (a server restart) the hub reconnects with the alias's reconnect
 * backoff and LISTENs again; each listener is told ("reconnected"), since
 * what was notified meanwhile is lost.
 *
 * A listen request stays in flight until it is cancelled, its deadline
 * (only an explicit timeout_ms) passes, its client goes away, or the worker
 * shuts down. Each note is a streamed part. A listener whose client does
 * not read keeps at most listen_queue_notes notes of its own; past that new
 * notes are dropped and counted, and the listener is told how many once it
 * reads again. Other listeners are not slowed down.
 */
#ifndef MW_LISTEN_H
#define MW_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "worker.h"

/* Starts the listen entry of r. */
void mw_entry_listen(mw_request *r, const uint8_t *payload, size_t len);
/* The shutdown began: every listener ends (Busy). */
void mw_listen_shutdown(mw_worker *w);
/* Closes the hubs' connections and timers; done(w) once all are closed
 * (also when there were none). */
void mw_listen_close(mw_worker *w, void (*done)(mw_worker *w));
/* Figures for stats: listeners now, notes sent, notes dropped. */
void mw_listen_counts(const mw_worker *w, uint64_t *listeners, uint64_t *notes,
                      uint64_t *dropped);

#endif
