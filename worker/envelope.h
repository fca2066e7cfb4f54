/*
 * Request and response envelopes (contract sections 2 to 4 and 8).
 *
 * mw_envelope_parse checks a frame body (one MsgPack map, nothing after it,
 * UTF-8 strs, bounded size) and reads the envelope keys in one pass over
 * the bytes, without unpacking them (mpread.h); unknown keys are
 * ignored. Pointers in the result (payload) point into the body: copy what
 * must outlive it.
 *
 * mw_response_frame appends one whole frame (length prefix and map) to a
 * buffer; the caller owns the buffer. mw_response_frame_around builds a
 * frame around a large payload body without copying it: the frame is
 * head + body + tail, written to the socket as three buffers. The
 * frames' fixed parts are written straight into the buffer (mpbuf.h).
 */
#ifndef MW_ENVELOPE_H
#define MW_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"

typedef enum mw_status {
    MW_OK = 0,
    MW_INVALID_INPUT,
    MW_BUSY,
    MW_TIMEOUT,
    MW_CANCELLED,
    MW_DB_ERROR,
    MW_INTERNAL_ERROR
} mw_status;

const char *mw_status_name(mw_status s);

typedef enum mw_entry {
    MW_ENTRY_NONE = 0,
    MW_ENTRY_DB_QUERY,
    MW_ENTRY_DB_EXEC,
    MW_ENTRY_CANCEL,
    MW_ENTRY_PING,
    MW_ENTRY_STATS,
    MW_ENTRY_LISTEN,
    MW_ENTRY_COPY_IN,
    MW_ENTRY_COPY_OUT,
    MW_ENTRY_TX_BEGIN,
    MW_ENTRY_TX_COMMIT,
    MW_ENTRY_TX_ROLLBACK
} mw_entry;

const char *mw_entry_name(mw_entry e);
/* 1 for the entries that write (db_exec, copy_in). */
int mw_entry_writes(mw_entry e);

typedef struct mw_envelope {
    int have_id;              /* request_id could be read */
    uint64_t request_id;
    mw_entry entry;
    const uint8_t *payload;   /* into the body; NULL when absent */
    size_t payload_len;
    uint32_t timeout_ms;      /* 0: the worker's default */
} mw_envelope;

#define MW_MSG_SIZE 256

/* Returns 0, or -1 with msg (env->have_id tells whether the error can name
 * the request). */
int mw_envelope_parse(const uint8_t *body, size_t len, mw_envelope *env,
                      char msg[MW_MSG_SIZE]);

/* Section 8. Fields < 0 (or NULL strings) are left out. */
typedef struct mw_metrics {
    int64_t queue_us, handler_us, exec_us, decode_us;
    const char *db_alias, *db_tag, *db_result_format;
    int64_t db_row_count;
    int64_t db_bytes_in, db_bytes_out;
    int64_t db_rows_affected;      /* -1: absent */
    int have_last_insert_id;
    int64_t db_last_insert_id;
} mw_metrics;

/* Sets every field to "absent". */
void mw_metrics_init(mw_metrics *m);

typedef struct mw_response {
    uint64_t request_id;
    mw_status status;
    const char *codec;            /* with a payload */
    const uint8_t *payload;       /* NULL: none */
    size_t payload_len;
    /* for mw_response_frame_around: the payload goes on with body_len
     * bytes the caller sends itself, then payload_tail */
    size_t body_len;
    const uint8_t *payload_tail;
    size_t payload_tail_len;
    const char *error;            /* when not Ok */
    const molt_db_error *dberr;   /* sqlstate and error_detail, may be NULL */
    const mw_metrics *metrics;    /* may be NULL */
    int more;                     /* streaming part */
} mw_response;

/* Appends the frame. Returns MOLT_DB_OK or MOLT_DB_ENOMEM (out->len is
 * restored). */
int mw_response_frame(molt_db_buf *out, const mw_response *r);

/* The frame up to the end of r->payload appended to head, and from
 * r->payload_tail on appended to tail; the body (r->body_len bytes) goes
 * between them. MOLT_DB_OK or MOLT_DB_ENOMEM (both lengths restored). */
int mw_response_frame_around(molt_db_buf *head, molt_db_buf *tail,
                             const mw_response *r);

/* Packs a small msgpack payload map into out (helper for ping/cancel). */

#endif
