/*
 * Frame reader: a 4-byte little-endian length N, then N bytes (contract
 * section 2). Sans-I/O: the session feeds what it read and takes whole
 * frames out. The length is checked against the limit as soon as its four
 * bytes are there; the buffer holds what arrived, never reserving the
 * declared length, and is freed once a large frame was taken.
 *
 * Ownership: the framer owns its buffer (mw_framer_free). A body returned by
 * mw_framer_next points into it and stays valid until the next feed.
 */
#ifndef MW_FRAMING_H
#define MW_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"

typedef struct mw_framer {
    molt_db_buf buf;
    size_t off;          /* start of the unconsumed bytes */
    uint64_t limit;      /* largest N accepted */
} mw_framer;

void mw_framer_init(mw_framer *f, uint64_t limit);
void mw_framer_free(mw_framer *f);

/* Appends bytes read from the peer. 0, or -1 when memory ran out. Refuses
 * (returns -2) to buffer more than the header of a frame whose length is
 * bad: call mw_framer_next first, which reports it. */
int mw_framer_feed(mw_framer *f, const uint8_t *p, size_t n);

/* Takes the next whole frame: returns 1 with *body and *len, 0 when more bytes
 * are needed, -1 when the next length is 0 or above the limit (*len is N):
 * the connection must answer InvalidInput and close. */
int mw_framer_next(mw_framer *f, const uint8_t **body, size_t *len);

/* Bytes buffered and not yet taken. */
size_t mw_framer_pending(const mw_framer *f);

/* Looks at the whole frame at *pos (an offset in the unconsumed bytes, 0 for
 * the first) without taking it: returns 1 with *body and *len and moves
 * *pos past it, 0 when no whole acceptable frame is there. */
int mw_framer_peek(const mw_framer *f, size_t *pos, const uint8_t **body,
                   size_t *len);

/* Removes the frame of body length len found at pos by mw_framer_peek
 * (frames after it move down). */
void mw_framer_remove(mw_framer *f, size_t pos, size_t len);

#endif
