/*
 * Value writers for result payloads: one interface, two formats (JSON in
 * encode_json.c, MsgPack with msgpack-c in encode_msgpack.c). The writer
 * appends to enc->out, which the caller may point at another buffer
 * between top-level values (never inside a container).
 *
 * Containers: array_begin(n)/map_begin(n) with their exact element count
 * (a map's n is its number of pairs; keys are written with str), then the
 * elements, then array_end/map_end.
 *
 * Errors: allocation failures stick in out->failed (check molt_db_buf_ok).
 * Thread-safety: a writer belongs to one thread at a time.
 */
#ifndef MW_ENCODE_H
#define MW_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"

typedef enum mw_format {
    MW_FORMAT_JSON = 0,
    MW_FORMAT_MSGPACK,
    MW_FORMAT_ARROW
} mw_format;

const char *mw_format_name(mw_format f);

#define MW_ENC_MAX_DEPTH 40

typedef struct mw_enc mw_enc;

typedef struct mw_enc_ops {
    void (*nil)(mw_enc *e);
    void (*boolean)(mw_enc *e, int v);
    void (*i64)(mw_enc *e, int64_t v);
    /* f64: NaN and infinities are strings in JSON; text is the shortest
     * decimal text of the value when known (else NULL) */
    void (*f64)(mw_enc *e, double v, const char *text);
    void (*str)(mw_enc *e, const char *p, size_t n);
    /* bytes: MsgPack bin; JSON base64 str */
    void (*bin)(mw_enc *e, const uint8_t *p, size_t n);
    /* a JSON document as text: MsgPack str; JSON embedded as it is */
    void (*json_text)(mw_enc *e, const char *p, size_t n);
    /* timestamptz, microseconds since the Unix epoch (UTC): MsgPack
     * timestamp extension; JSON "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00" */
    void (*timestamptz)(mw_enc *e, int64_t unix_us);
    void (*array_begin)(mw_enc *e, size_t n);
    void (*array_end)(mw_enc *e);
    void (*map_begin)(mw_enc *e, size_t n);
    void (*map_end)(mw_enc *e);
} mw_enc_ops;

struct mw_enc {
    const mw_enc_ops *ops;
    mw_format format;
    molt_db_buf *out;
    molt_db_buf *scratch;       /* a value's server text is built here when
                                   set (a result's, reused across its rows),
                                   else in a buffer of its own */
    msgpack_packer pk;          /* MsgPack: writes to *out */
    /* JSON: per open container, items written so far */
    int depth;
    uint32_t items[MW_ENC_MAX_DEPTH];
    uint8_t is_map[MW_ENC_MAX_DEPTH];
};

/* Sets up a writer of format (JSON or MSGPACK) appending to out. */
void mw_enc_init(mw_enc *e, mw_format format, molt_db_buf *out);
/* Points the writer at another buffer (between top-level values). */
void mw_enc_retarget(mw_enc *e, molt_db_buf *out);

/* Writes a NUL-terminated string (inline: a literal key's length is
 * known where it is written). */
static inline void mw_enc_cstr(mw_enc *e, const char *s)
{
    e->ops->str(e, s, strlen(s));
}

extern const mw_enc_ops mw_enc_json_ops;
extern const mw_enc_ops mw_enc_msgpack_ops;

/*
 * Writes one PostgreSQL value (a DataRow field of type oid in format
 * format; data NULL / len -1 is NULL) with the contract's encodings
 * (section 7). Returns MOLT_DB_OK, or EPROTO for malformed binary data
 * (err says which), or ENOMEM.
 */
int mw_enc_pg_value(mw_enc *e, uint32_t oid, int16_t format,
                    const uint8_t *data, int32_t len, molt_db_error *err);

/* The contract's name for a PostgreSQL type: the catalog's name
 * ("int8", "_int4"), else the OID as decimal text. buf has room for 16. */
const char *mw_pg_type_name(uint32_t oid, char buf[16]);

#endif
