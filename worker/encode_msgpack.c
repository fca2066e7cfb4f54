/* The MsgPack value writer (msgpack-c). */
#include "encode.h"

#include <string.h>

#include "mpbuf.h"

#define PK(e) (&(e)->pk)

/* Room for n bytes at the end of e's buffer, or NULL once it failed (the
 * buffer's failed flag then tells). The common values are written there
 * directly, in msgpack-c's encodings, rather than through its packer's
 * callback piece by piece. */
static uint8_t *room(mw_enc *e, size_t n)
{
    molt_db_buf *b = e->out;
    if (!b->failed && n <= b->cap - b->len) /* the usual case, without a call */
        return b->data + b->len;
    return molt_db_buf_reserve(b, n) == MOLT_DB_OK ? b->data + b->len : NULL;
}

static void done(mw_enc *e, const uint8_t *end)
{
    e->out->len = (size_t)(end - e->out->data);
}

static void mp_nil(mw_enc *e)
{
    uint8_t *p = room(e, 1);
    if (p) {
        *p = 0xc0;
        done(e, p + 1);
    }
}
static void mp_bool(mw_enc *e, int v)
{
    uint8_t *p = room(e, 1);
    if (p) {
        *p = v ? 0xc3 : 0xc2;
        done(e, p + 1);
    }
}
static void mp_i64(mw_enc *e, int64_t v)
{
    uint8_t *p = room(e, 9);
    if (p)
        done(e, mw_mp_put_int(p, v));
}
static void mp_f64(mw_enc *e, double v, const char *text)
{
    (void)text;
    msgpack_pack_double(PK(e), v);
}
static void mp_str(mw_enc *e, const char *s, size_t n)
{
    if (n > UINT32_MAX) { /* never written: the buffer fails as msgpack-c's would */
        msgpack_pack_str(PK(e), n);
        msgpack_pack_str_body(PK(e), s, n);
        return;
    }
    uint8_t *p = room(e, 5 + n);
    if (p)
        done(e, mw_mp_put_str(p, s, n));
}
static void mp_bin(mw_enc *e, const uint8_t *p, size_t n)
{
    msgpack_pack_bin(PK(e), n);
    msgpack_pack_bin_body(PK(e), p, n);
}
static void mp_ts(mw_enc *e, int64_t us)
{
    msgpack_timestamp t;
    int64_t sec = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        sec -= 1;
    }
    t.tv_sec = sec;
    t.tv_nsec = (uint32_t)(rem * 1000);
    msgpack_pack_timestamp(PK(e), &t);
}
static void mp_array(mw_enc *e, size_t n)
{
    uint8_t *p = room(e, 5);
    if (p)
        done(e, mw_mp_put_array(p, (uint32_t)n));
}
static void mp_map(mw_enc *e, size_t n)
{
    uint8_t *p = room(e, 5);
    if (p)
        done(e, mw_mp_put_map(p, (uint32_t)n));
}
static void mp_end(mw_enc *e) { (void)e; }

const mw_enc_ops mw_enc_msgpack_ops = {
    mp_nil, mp_bool, mp_i64, mp_f64, mp_str, mp_bin, mp_str, mp_ts,
    mp_array, mp_end, mp_map, mp_end,
};

const char *mw_format_name(mw_format f)
{
    return f == MW_FORMAT_JSON ? "json" : f == MW_FORMAT_MSGPACK ? "msgpack"
                                                                : "arrow_ipc";
}

void mw_enc_init(mw_enc *e, mw_format format, molt_db_buf *out)
{
    memset(e, 0, sizeof *e);
    e->format = format;
    e->ops = format == MW_FORMAT_JSON ? &mw_enc_json_ops : &mw_enc_msgpack_ops;
    mw_enc_retarget(e, out);
}

void mw_enc_retarget(mw_enc *e, molt_db_buf *out)
{
    e->out = out;
    mw_packer_init(&e->pk, out);
}
