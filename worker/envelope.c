/* Request envelope parsing and response frames. */
#include "envelope.h"

#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "mpbuf.h"
#include "msgpack_check.h"
#include "mpread.h"

const char *mw_status_name(mw_status s)
{
    switch (s) {
    case MW_OK: return "Ok";
    case MW_INVALID_INPUT: return "InvalidInput";
    case MW_BUSY: return "Busy";
    case MW_TIMEOUT: return "Timeout";
    case MW_CANCELLED: return "Cancelled";
    case MW_DB_ERROR: return "DbError";
    case MW_INTERNAL_ERROR: return "InternalError";
    }
    return "InternalError";
}

/* One row per entry, indexed by mw_entry: its name on the wire, whether a
 * request of it must carry a payload, and whether it writes (it then needs
 * the alias's --allow-write, and counts as a write in the latency figures). */
static const struct entry_kind {
    const char *name;
    int needs_payload;
    int writes;
} entry_kinds[] = {
    [MW_ENTRY_NONE] = {"", 0, 0},
    [MW_ENTRY_DB_QUERY] = {"db_query", 1, 0},
    [MW_ENTRY_DB_EXEC] = {"db_exec", 1, 1},
    [MW_ENTRY_CANCEL] = {"cancel", 1, 0},
    [MW_ENTRY_PING] = {"ping", 0, 0},
    [MW_ENTRY_STATS] = {"stats", 0, 0},
    [MW_ENTRY_LISTEN] = {"listen", 1, 0},
    [MW_ENTRY_COPY_IN] = {"copy_in", 1, 1},
    [MW_ENTRY_COPY_OUT] = {"copy_out", 1, 0},
    [MW_ENTRY_TX_BEGIN] = {"tx_begin", 0, 0},
    [MW_ENTRY_TX_COMMIT] = {"tx_commit", 0, 0},
    [MW_ENTRY_TX_ROLLBACK] = {"tx_rollback", 0, 0},
};
#define ENTRY_KINDS (sizeof entry_kinds / sizeof entry_kinds[0])

const char *mw_entry_name(mw_entry e)
{
    return (size_t)e < ENTRY_KINDS ? entry_kinds[e].name : "";
}

int mw_entry_writes(mw_entry e)
{
    return (size_t)e < ENTRY_KINDS && entry_kinds[e].writes;
}

static int val_is(const mw_mpval *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == MSGPACK_OBJECT_STR && v->size == n && memcmp(v->ptr, s, n) == 0;
}

static mw_entry entry_named(const mw_mpval *v)
{
    for (size_t i = 1; i < ENTRY_KINDS; i++)
        if (val_is(v, entry_kinds[i].name))
            return (mw_entry)i;
    return MW_ENTRY_NONE;
}

/* The envelope's keys, read in one pass over its map: the first value of
 * each (a str key; others are ignored) and whether the key appears again. */
enum { K_REQUEST_ID, K_ENTRY, K_PAYLOAD, K_CODEC, K_TIMEOUT_MS, K_COUNT };

static const mw_mpkey env_key_names[K_COUNT] = {
    [K_REQUEST_ID] = {"request_id", 10}, [K_ENTRY] = {"entry", 5},
    [K_PAYLOAD] = {"payload", 7},        [K_CODEC] = {"codec", 5},
    [K_TIMEOUT_MS] = {"timeout_ms", 10},
};

/* Key j's value, or NULL when absent. */
static const mw_mpval *key_val(const mw_mpkeys *k, int j)
{
    return k->v[j] ? &k->v[j]->v : NULL;
}

/* The body as one bounded, well-formed MsgPack map with nothing after it,
 * its keys read into k by the walk that checks it. The request_id is read as soon as there is a map,
 * so that even a refused body is answered under its id. */
static int read_body(const uint8_t *body, size_t len, mw_mpkeys *k, mw_envelope *env,
                     char msg[MW_MSG_SIZE])
{
    size_t end = 0, zone = 0;
    mw_mp_check c = mw_msgpack_check_keys(body, len, env_key_names, K_COUNT, k, &end, &zone);
    if (c == MW_MP_TRUNCATED || c == MW_MP_INVALID || c == MW_MP_TOO_DEEP ||
        c == MW_MP_TOO_MANY) {
        snprintf(msg, MW_MSG_SIZE, "frame body: %s", mw_msgpack_check_text(c));
        return -1;
    }
    /* The first value is complete and bounded (for BAD_UTF8 the walk
     * stopped early: read it anyway, only to find the request_id). */
    size_t i = 0;
    mw_mpval top;
    if (mw_mpread_head(body, len, &i, &top) < 0) {
        snprintf(msg, MW_MSG_SIZE, "frame body: malformed MsgPack");
        return -1;
    }
    if (top.type != MSGPACK_OBJECT_MAP) {
        snprintf(msg, MW_MSG_SIZE, "frame body is not a MsgPack map");
        return -1;
    }
    const mw_mpval *id = key_val(k, K_REQUEST_ID);
    if (id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        env->have_id = 1;
        env->request_id = id->u64;
    }
    if (c == MW_MP_BAD_UTF8) {
        snprintf(msg, MW_MSG_SIZE, "frame body: %s", mw_msgpack_check_text(c));
        return -1;
    }
    if (end != len) {
        snprintf(msg, MW_MSG_SIZE,
                 "frame body has %zu trailing bytes after the MsgPack map",
                 len - end);
        return -1;
    }
    return 0;
}

static int read_request_id(const mw_mpkeys *k, const mw_envelope *env,
                           char msg[MW_MSG_SIZE])
{
    if (!env->have_id) {
        snprintf(msg, MW_MSG_SIZE, k->v[K_REQUEST_ID] ? "request_id must be an unsigned integer"
                                                      : "request_id is missing");
        return -1;
    }
    if (k->dup[K_REQUEST_ID]) {
        snprintf(msg, MW_MSG_SIZE, "request_id appears twice");
        return -1;
    }
    return 0;
}

static int read_entry(const mw_mpkeys *k, mw_envelope *env, char msg[MW_MSG_SIZE])
{
    const mw_mpval *o = key_val(k, K_ENTRY);
    int dup = k->dup[K_ENTRY];
    if (!o || o->type != MSGPACK_OBJECT_STR || dup) {
        snprintf(msg, MW_MSG_SIZE, !o ? "entry is missing"
                                   : dup ? "entry appears twice"
                                         : "entry must be a str");
        return -1;
    }
    env->entry = entry_named(o);
    if (env->entry == MW_ENTRY_NONE) {
        snprintf(msg, MW_MSG_SIZE, "unknown entry \"%.*s\"",
                 (int)(o->size > 64 ? 64 : o->size), (const char *)o->ptr);
        return -1;
    }
    return 0;
}

static int read_payload(const mw_mpkeys *k, mw_envelope *env, char msg[MW_MSG_SIZE])
{
    const mw_mpval *o = key_val(k, K_PAYLOAD);
    int dup = k->dup[K_PAYLOAD];
    if (o) {
        if (o->type != MSGPACK_OBJECT_BIN || dup) {
            snprintf(msg, MW_MSG_SIZE, dup ? "payload appears twice"
                                           : "payload must be bin");
            return -1;
        }
        /* the body outlives this call; the value points into it */
        env->payload = o->ptr;
        env->payload_len = o->size;
    }
    return 0;
}

static int read_options(const mw_mpkeys *k, mw_envelope *env, char msg[MW_MSG_SIZE])
{
    const mw_mpval *o = key_val(k, K_CODEC);
    if (o && (!val_is(o, "msgpack") || k->dup[K_CODEC])) {
        snprintf(msg, MW_MSG_SIZE, "codec must be \"msgpack\"");
        return -1;
    }
    o = key_val(k, K_TIMEOUT_MS);
    if (o) {
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->u64 > UINT32_MAX ||
            k->dup[K_TIMEOUT_MS]) {
            snprintf(msg, MW_MSG_SIZE, "timeout_ms must be a uint32");
            return -1;
        }
        env->timeout_ms = (uint32_t)o->u64;
    }
    return 0;
}

int mw_envelope_parse(const uint8_t *body, size_t len, mw_envelope *env,
                      char msg[MW_MSG_SIZE])
{
    memset(env, 0, sizeof *env);
    mw_mpkeys k;
    int rc = read_body(body, len, &k, env, msg);
    if (rc == 0)
        rc = read_request_id(&k, env, msg);
    if (rc == 0)
        rc = read_entry(&k, env, msg);
    if (rc == 0)
        rc = read_payload(&k, env, msg);
    if (rc == 0)
        rc = read_options(&k, env, msg);
    if (rc == 0 && !env->payload && entry_kinds[env->entry].needs_payload) {
        snprintf(msg, MW_MSG_SIZE, "%s needs a payload", mw_entry_name(env->entry));
        rc = -1;
    }
    return rc;
}

void mw_metrics_init(mw_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->queue_us = m->handler_us = m->exec_us = m->decode_us = -1;
    m->db_row_count = m->db_bytes_in = m->db_bytes_out = -1;
    m->db_rows_affected = -1;
}

/* The metrics map (section 8), written straight into b: the keys and
 * numbers of every db answer, without a packer call per value. */
static void put_metrics(molt_db_buf *b, const mw_metrics *m)
{
    size_t la = m->db_alias ? strlen(m->db_alias) : 0;
    size_t lt = m->db_tag ? strlen(m->db_tag) : 0;
    size_t lf = m->db_result_format ? strlen(m->db_result_format) : 0;
    uint32_t n = (m->queue_us >= 0) + (m->handler_us >= 0) + (m->exec_us >= 0) +
                 (m->decode_us >= 0) + (m->db_row_count >= 0) + (m->db_bytes_in >= 0) +
                 (m->db_bytes_out >= 0) + (m->db_rows_affected >= 0) +
                 (m->db_alias != NULL) + (m->db_tag != NULL) +
                 (m->db_result_format != NULL) + (m->have_last_insert_id != 0);
    /* every key is a fixstr of at most 18 bytes, every number at most 9 */
    if (molt_db_buf_reserve(b, 5 + 28 * 12 + 15 + la + lt + lf) != MOLT_DB_OK)
        return; /* b->failed is set */
    uint8_t *p = mw_mp_put_map(b->data + b->len, n);
#define PUT_INT(name)                                                          \
    if (m->name >= 0) {                                                        \
        p = MW_MP_PUT_LIT(p, #name);                                           \
        p = mw_mp_put_uint(p, (uint64_t)m->name);                              \
    }
#define PUT_STR(name, len)                                                     \
    if (m->name) {                                                             \
        p = MW_MP_PUT_LIT(p, #name);                                           \
        p = mw_mp_put_str(p, m->name, len);                                    \
    }
    PUT_INT(queue_us) PUT_INT(handler_us) PUT_INT(exec_us) PUT_INT(decode_us)
    PUT_INT(db_row_count) PUT_INT(db_bytes_in) PUT_INT(db_bytes_out)
    PUT_INT(db_rows_affected)
    PUT_STR(db_alias, la) PUT_STR(db_tag, lt) PUT_STR(db_result_format, lf)
#undef PUT_INT
#undef PUT_STR
    if (m->have_last_insert_id) {
        p = MW_MP_PUT_LIT(p, "db_last_insert_id");
        p = mw_mp_put_int(p, m->db_last_insert_id);
    }
    b->len = (size_t)(p - b->data);
}

static void pack_detail(msgpack_packer *pk, const molt_db_error *e)
{
    struct { const char *k; const char *v; } f[] = {
        {"detail", e->detail}, {"hint", e->hint},     {"schema", e->schema},
        {"table", e->table},   {"column", e->column}, {"constraint", e->constraint},
    };
    size_t n = e->position > 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        n += f[i].v != NULL;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v) {
            mw_pack_key(pk, f[i].k);
            mw_pack_cstr(pk, f[i].v);
        }
    if (e->position > 0) {
        mw_pack_key(pk, "position");
        msgpack_pack_int(pk, e->position);
    }
}

static int has_detail(const molt_db_error *e)
{
    return e->detail || e->hint || e->schema || e->table || e->column ||
           e->constraint || e->position > 0;
}

int mw_response_frame(molt_db_buf *out, const mw_response *r)
{
    mw_response whole = *r;
    whole.body_len = 0; /* nothing may go between: one buffer */
    return mw_response_frame_around(out, out, &whole);
}

int mw_response_frame_around(molt_db_buf *out, molt_db_buf *tail,
                             const mw_response *r)
{
    size_t start = out->len, tail_start = tail->len;
    msgpack_packer pk;
    int ok = r->status == MW_OK;
    int with_payload = ok && r->payload;
    int sqlstate = r->dberr && r->dberr->sqlstate[0] &&
                   (r->status == MW_DB_ERROR || r->status == MW_TIMEOUT ||
                    r->status == MW_CANCELLED || r->status == MW_INTERNAL_ERROR);
    int detail = r->dberr && r->status == MW_DB_ERROR && has_detail(r->dberr);
    size_t n = 2 + (with_payload ? 2 : 0) + (!ok ? 1 : 0) + sqlstate +
               detail + (r->metrics ? 1 : 0) + (r->more ? 1 : 0);
    size_t n_payload = r->payload_len + r->body_len + r->payload_tail_len;
    if (with_payload && n_payload > UINT32_MAX)
        goto fail;
    /* the head (length prefix, map, request_id, status, codec, the
     * payload's first part) in one reservation */
    const char *status = mw_status_name(r->status);
    const char *codec = r->codec ? r->codec : "msgpack";
    size_t status_len = strlen(status), codec_len = with_payload ? strlen(codec) : 0;
    size_t room = 4 + 5 + 20 + 7 + 5 + status_len +
                  (with_payload ? 6 + 5 + codec_len + 8 + 5 + r->payload_len : 0);
    /* a tail in the same buffer: room for the metrics too (put_metrics
     * needs at most 356 bytes and the names), so it rarely grows again */
    if (tail == out && r->metrics)
        room += 512;
    if (molt_db_buf_reserve(out, room) != MOLT_DB_OK)
        goto fail;
    uint8_t *p = out->data + out->len;
    memset(p, 0, 4); /* the length, patched below (little-endian) */
    p = mw_mp_put_map(p + 4, (uint32_t)n);
    p = MW_MP_PUT_LIT(p, "request_id");
    p = mw_mp_put_uint(p, r->request_id);
    p = MW_MP_PUT_LIT(p, "status");
    p = mw_mp_put_str(p, status, status_len);
    if (with_payload) {
        p = MW_MP_PUT_LIT(p, "codec");
        p = mw_mp_put_str(p, codec, codec_len);
        p = MW_MP_PUT_LIT(p, "payload");
        p = mw_mp_put_bin_head(p, (uint32_t)n_payload);
        if (r->payload_len)
            memcpy(p, r->payload, r->payload_len);
        p += r->payload_len;
    }
    out->len = (size_t)(p - out->data);
    /* the body goes between */
    mw_packer_init(&pk, tail);
    if (with_payload && r->payload_tail_len)
        msgpack_pack_bin_body(&pk, r->payload_tail, r->payload_tail_len);
    if (!ok) {
        mw_pack_key(&pk, "error");
        mw_pack_cstr(&pk, r->error ? r->error : mw_status_name(r->status));
    }
    if (sqlstate) {
        mw_pack_key(&pk, "sqlstate");
        mw_pack_cstr(&pk, r->dberr->sqlstate);
    }
    if (detail) {
        mw_pack_key(&pk, "error_detail");
        pack_detail(&pk, r->dberr);
    }
    if (r->metrics) {
        mw_pack_key(&pk, "metrics");
        put_metrics(tail, r->metrics);
    }
    if (r->more) {
        mw_pack_key(&pk, "more");
        msgpack_pack_true(&pk);
    }
    size_t total = out->len - start - 4 + (with_payload ? r->body_len : 0) +
                   (tail != out ? tail->len - tail_start : 0);
    if (molt_db_buf_ok(out) != MOLT_DB_OK || molt_db_buf_ok(tail) != MOLT_DB_OK ||
        total > UINT32_MAX)
        goto fail;
    uint32_t body = (uint32_t)total;
    uint8_t *len = out->data + start;
    len[0] = (uint8_t)body;
    len[1] = (uint8_t)(body >> 8);
    len[2] = (uint8_t)(body >> 16);
    len[3] = (uint8_t)(body >> 24);
    return MOLT_DB_OK;
fail:
    out->len = start;
    out->failed = 0;
    if (tail != out) {
        tail->len = tail_start;
        tail->failed = 0;
    }
    return MOLT_DB_ENOMEM;
}
