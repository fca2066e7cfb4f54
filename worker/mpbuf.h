/*
 * msgpack-c packers that write into a molt_db_buf, and small helpers to
 * read msgpack-c objects (keys by name, strings compared without copying).
 *
 * A packer over a buffer whose growth failed writes nothing more and the
 * buffer's `failed` flag is set: check molt_db_buf_ok once at the end.
 */
#ifndef MW_MPBUF_H
#define MW_MPBUF_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "molt_db/buf.h"

/* Initializes pk to append to b. */
void mw_packer_init(msgpack_packer *pk, molt_db_buf *b);

/* Packs a NUL-terminated string as a MsgPack str. */
void mw_pack_cstr(msgpack_packer *pk, const char *s);
/* Packs a key (str) and then the caller packs the value. */
void mw_pack_key(msgpack_packer *pk, const char *key);
/* Packs true when v is not 0, else false. */
void mw_pack_bool(msgpack_packer *pk, int v);

/* 1 when o is a str equal to s. */
int mw_obj_is_str(const msgpack_object *o, const char *s);

/* The value of key in map m, or NULL (also when m is not a map). When the
 * key appears twice, *dup (may be NULL) is set to 1. */
const msgpack_object *mw_map_get(const msgpack_object *m, const char *key,
                                 int *dup);

#endif
