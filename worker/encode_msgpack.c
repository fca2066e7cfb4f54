/* The MsgPack value writer (msgpack-c). */
#include "encode.h"

#include <string.h>

#include "mpbuf.h"

#define PK(e) (&(e)->pk)

static void mp_nil(mw_enc *e) { msgpack_pack_nil(PK(e)); }
static void mp_bool(mw_enc *e, int v)
{
    if (v)
        msgpack_pack_true(PK(e));
    else
        msgpack_pack_false(PK(e));
}
static void mp_i64(mw_enc *e, int64_t v) { msgpack_pack_int64(PK(e), v); }
static void mp_f64(mw_enc *e, double v, const char *text)
{
    (void)text;
    msgpack_pack_double(PK(e), v);
}
static void mp_str(mw_enc *e, const char *p, size_t n)
{
    msgpack_pack_str(PK(e), n);
    msgpack_pack_str_body(PK(e), p, n);
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
static void mp_array(mw_enc *e, size_t n) { msgpack_pack_array(PK(e), n); }
static void mp_map(mw_enc *e, size_t n) { msgpack_pack_map(PK(e), n); }
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

void mw_enc_cstr(mw_enc *e, const char *s)
{
    e->ops->str(e, s, strlen(s));
}
