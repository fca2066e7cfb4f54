/* Arrow builder, IPC writer and struct mode: unit cases on hand-made
 * fields and server cases through the real connection. */
#include "molt_db/arrow.h"
#include "molt_db/arrow_ipc.h"
#include "molt_db/rowstruct.h"
#include "molt_db/types.h"
#include "pgtest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static molt_db_column col(const char *name, uint32_t oid, int32_t typmod,
                          int16_t format)
{
    molt_db_column c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.type_oid = oid;
    c.type_modifier = typmod;
    c.format = format;
    return c;
}

static int bit(const void *bits, int64_t i)
{
    return (((const uint8_t *)bits)[i >> 3] >> (i & 7)) & 1;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Reads field `id` of the flatbuffer table at t: its position, or NULL. */
static const uint8_t *fb_field(const uint8_t *t, int id)
{
    int32_t soff = (int32_t)le32(t);
    const uint8_t *vt = t - soff;
    uint16_t vsize = (uint16_t)(vt[0] | vt[1] << 8);
    if (4 + 2 * id >= vsize)
        return NULL;
    uint16_t off = (uint16_t)(vt[4 + 2 * id] | vt[5 + 2 * id] << 8);
    return off ? t + off : NULL;
}

static const uint8_t *fb_deref(const uint8_t *p)
{
    return p + le32(p);
}

/* ---- builder ------------------------------------------------------------ */

TEST(builder_layout)
{
    molt_db_column cols[4] = {
        col("i", MOLT_DB_OID_INT4, -1, MOLT_DB_FORMAT_BINARY),
        col("s", MOLT_DB_OID_TEXT, -1, MOLT_DB_FORMAT_BINARY),
        col("b", MOLT_DB_OID_BOOL, -1, MOLT_DB_FORMAT_BINARY),
        col("d", MOLT_DB_OID_NUMERIC, ((12 << 16) | 3) + 4, MOLT_DB_FORMAT_BINARY),
    };
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_arrow_builder *b = NULL;
    ASSERT_OK(molt_db_arrow_builder_new(cols, 4, 0, &b, &err), &err);

    molt_db_buf iv, num;
    molt_db_buf_init(&iv);
    molt_db_buf_init(&num);
    ASSERT_OK(molt_db_encode_int4(&iv, -7), NULL);
    ASSERT_OK(molt_db_encode_numeric_text(&num, "-1.5", 4, &err), &err);
    uint8_t t = 1;
    for (int r = 0; r < 10; r++) {
        molt_db_field f[4] = {
            {iv.data, 4}, {(const uint8_t *)"héllo, world", r % 3 == 0 ? -1 : r},
            {&t, r % 2 ? 1 : -1}, {num.data, (int32_t)num.len}};
        if (r % 3 == 0)
            f[1].data = NULL;
        ASSERT_OK(molt_db_arrow_builder_append(b, f, 4, &err), &err);
    }
    /* a malformed int4 fails, names the column and leaves the batch as it
     * was (the columns before it are rolled back) */
    molt_db_field bad[4] = {{iv.data, 4}, {(const uint8_t *)"x", 1},
                            {&t, 1}, {iv.data, 3}};
    ASSERT_CODE(molt_db_arrow_builder_append(b, bad, 4, &err), MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "\"d\"");
    ASSERT_EQ_INT(molt_db_arrow_builder_rows(b), 10);
    ASSERT_CODE(molt_db_arrow_builder_append(b, bad, 3, &err), MOLT_DB_EPROTO);

    struct ArrowSchema s;
    ASSERT_OK(molt_db_arrow_builder_schema(b, &s, &err), &err);
    ASSERT_EQ_STR(s.format, "+s");
    ASSERT_EQ_INT(s.n_children, 4);
    ASSERT_EQ_STR(s.children[0]->format, "i");
    ASSERT_EQ_STR(s.children[1]->format, "u");
    ASSERT_EQ_STR(s.children[2]->format, "b");
    ASSERT_EQ_STR(s.children[3]->format, "d:12,3");
    ASSERT_EQ_STR(s.children[3]->name, "d");
    ASSERT(s.children[0]->flags & ARROW_FLAG_NULLABLE);
    s.release(&s);
    ASSERT(s.release == NULL);

    struct ArrowArray a;
    ASSERT_OK(molt_db_arrow_builder_finish(b, &a, &err), &err);
    ASSERT_EQ_INT(molt_db_arrow_builder_rows(b), 0);
    ASSERT_EQ_INT(a.length, 10);
    ASSERT_EQ_INT(a.n_children, 4);
    const struct ArrowArray *ci = a.children[0], *cs = a.children[1],
                            *cb = a.children[2], *cd = a.children[3];
    ASSERT_EQ_INT(ci->null_count, 0);
    ASSERT(ci->buffers[0] == NULL);
    for (int r = 0; r < 10; r++)
        ASSERT_EQ_INT(((const int32_t *)ci->buffers[1])[r], -7);
    ASSERT_EQ_INT(cs->null_count, 4);
    const int32_t *offs = cs->buffers[2] ? cs->buffers[1] : NULL;
    ASSERT(offs != NULL);
    int32_t want = 0;
    for (int r = 0; r < 10; r++) {
        ASSERT_EQ_INT(bit(cs->buffers[0], r), r % 3 != 0);
        ASSERT_EQ_INT(offs[r], want);
        if (r % 3)
            want += r;
    }
    ASSERT_EQ_INT(offs[10], want);
    ASSERT_EQ_MEM((const uint8_t *)cs->buffers[2] + offs[2], 2, "hé", 2);
    ASSERT_EQ_INT(cb->null_count, 5);
    for (int r = 0; r < 10; r++) {
        ASSERT_EQ_INT(bit(cb->buffers[0], r), r % 2);
        ASSERT_EQ_INT(bit(cb->buffers[1], r), r % 2);
    }
#if MOLT_DB_HAVE_INT128
    molt_db_int128 d;
    memcpy(&d, (const uint8_t *)cd->buffers[1] + 16 * 9, 16);
    ASSERT(d == -1500); /* -1.5 at scale 3 */
#endif
    a.release(&a);
    ASSERT(a.release == NULL);

    /* the builder goes on after finish (fresh buffers) */
    molt_db_field f2[4] = {{iv.data, 4}, {(const uint8_t *)"", 0}, {&t, 1},
                           {NULL, -1}};
    ASSERT_OK(molt_db_arrow_builder_append(b, f2, 4, &err), &err);
    molt_db_arrow_builder_view(b, &a);
    ASSERT_EQ_INT(a.length, 1);
    ASSERT_EQ_INT(a.children[3]->null_count, 1);
    a.release(&a);
    molt_db_buf_free(&iv);
    molt_db_buf_free(&num);
    molt_db_arrow_builder_free(b);
}

/* The fast row path (flat columns): a column's first NULL after many
 * rows gets its validity bits right; rows it declines (a bool byte of 2, a
 * timestamp past the epoch shift, a wrong length) get the general path's
 * errors and leave the batch as it was. */
TEST(builder_fast_rows)
{
    molt_db_column cols[4] = {
        col("id", MOLT_DB_OID_INT8, -1, MOLT_DB_FORMAT_BINARY),
        col("b", MOLT_DB_OID_BOOL, -1, MOLT_DB_FORMAT_BINARY),
        col("t", MOLT_DB_OID_TEXT, -1, MOLT_DB_FORMAT_BINARY),
        col("ts", MOLT_DB_OID_TIMESTAMPTZ, -1, MOLT_DB_FORMAT_BINARY),
    };
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_arrow_builder *b = NULL;
    ASSERT_OK(molt_db_arrow_builder_new(cols, 4, 0, &b, &err), &err);
    for (int r = 0; r < 1300; r++) {
        molt_db_buf id, ts;
        molt_db_buf_init(&id);
        molt_db_buf_init(&ts);
        ASSERT_OK(molt_db_encode_int8(&id, r), NULL);
        ASSERT_OK(molt_db_encode_timestamp(&ts, (int64_t)r * 1000000), NULL);
        uint8_t bv = r % 2;
        molt_db_field f[4] = {{id.data, 8}, {&bv, 1}, {(const uint8_t *)"abc", r % 4},
                              {ts.data, 8}};
        if (r == 1000 || r == 1203) {
            f[0].data = NULL;
            f[0].len = -1;
        }
        ASSERT_OK(molt_db_arrow_builder_append(b, f, 4, &err), &err);
        if (r == 1100) {
            /* declined rows, each a column-named error, nothing appended */
            uint8_t two = 2, big[8] = {0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0};
            f[1].data = &two;
            ASSERT_CODE(molt_db_arrow_builder_append(b, f, 4, &err), MOLT_DB_EPROTO);
            ASSERT_CONTAINS(err.message, "\"b\"");
            f[1].data = &bv;
            f[3].data = big;
            ASSERT_CODE(molt_db_arrow_builder_append(b, f, 4, &err), MOLT_DB_ERANGE);
            ASSERT_CONTAINS(err.message, "\"ts\"");
            f[3].data = ts.data;
            f[0].len = 4;
            f[0].data = id.data;
            ASSERT_CODE(molt_db_arrow_builder_append(b, f, 4, &err), MOLT_DB_EPROTO);
            ASSERT_CONTAINS(err.message, "\"id\"");
            ASSERT_EQ_INT(molt_db_arrow_builder_rows(b), 1101);
        }
        molt_db_buf_free(&id);
        molt_db_buf_free(&ts);
    }
    struct ArrowArray a;
    molt_db_arrow_builder_view(b, &a);
    ASSERT_EQ_INT(a.length, 1300);
    const struct ArrowArray *c0 = a.children[0], *c1 = a.children[1],
                            *c2 = a.children[2], *c3 = a.children[3];
    ASSERT_EQ_INT(c0->null_count, 2);
    ASSERT(c1->buffers[0] == NULL && c2->buffers[0] == NULL && c3->buffers[0] == NULL);
    const int64_t *ids = c0->buffers[1], *tss = c3->buffers[1];
    const int32_t *offs = c2->buffers[1];
    for (int r = 0; r < 1300; r++) {
        int null = r == 1000 || r == 1203;
        ASSERT_EQ_INT(bit(c0->buffers[0], r), !null);
        ASSERT_EQ_INT(ids[r], null ? 0 : r);
        ASSERT_EQ_INT(bit(c1->buffers[1], r), r % 2);
        ASSERT_EQ_INT(offs[r + 1] - offs[r], r % 4);
        ASSERT_EQ_INT(tss[r], INT64_C(946684800000000) + (int64_t)r * 1000000);
    }
    molt_db_arrow_builder_free(b);
}

TEST(builder_batch_rows_and_reset)
{
    molt_db_column c = col("x", MOLT_DB_OID_INT8, -1, MOLT_DB_FORMAT_BINARY);
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_arrow_builder *b = NULL;
    ASSERT_OK(molt_db_arrow_builder_new(&c, 1, 3, &b, &err), &err);
    uint8_t v[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    molt_db_field f = {v, 8};
    for (int i = 0; i < 3; i++) {
        ASSERT(!molt_db_arrow_builder_full(b));
        ASSERT_OK(molt_db_arrow_builder_append(b, &f, 1, &err), &err);
    }
    ASSERT(molt_db_arrow_builder_full(b));
    ASSERT_CODE(molt_db_arrow_builder_append(b, &f, 1, &err), MOLT_DB_ESTATE);
    struct ArrowArray a;
    molt_db_arrow_builder_view(b, &a);
    const void *mem = a.children[0]->buffers[1];
    ASSERT_EQ_INT(((const int64_t *)mem)[2], 42);
    molt_db_arrow_builder_reset(b);
    ASSERT_OK(molt_db_arrow_builder_append(b, &f, 1, &err), &err);
    molt_db_arrow_builder_view(b, &a);
    ASSERT(a.children[0]->buffers[1] == mem); /* memory reused */
    molt_db_arrow_builder_free(b);
}

TEST(builder_nested_owned_move_child)
{
    molt_db_column cols[2] = {
        col("a", MOLT_DB_OID_INT4_ARRAY, -1, MOLT_DB_FORMAT_BINARY),
        col("r", MOLT_DB_OID_INT8RANGE, -1, MOLT_DB_FORMAT_BINARY),
    };
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_arrow_builder *b = NULL;
    ASSERT_OK(molt_db_arrow_builder_new(cols, 2, 0, &b, &err), &err);

    /* {5,NULL,7} with lower bound 3; the range [10,) */
    molt_db_buf elems, arr, lo, rng;
    molt_db_buf_init(&elems); molt_db_buf_init(&arr);
    molt_db_buf_init(&lo); molt_db_buf_init(&rng);
    ASSERT_OK(molt_db_encode_int4(&elems, 5), NULL);
    ASSERT_OK(molt_db_encode_int4(&elems, 7), NULL);
    int32_t lens[3] = {4, -1, 4}, dims[1] = {3}, lbs[1] = {3};
    ASSERT_OK(molt_db_encode_array(&arr, MOLT_DB_OID_INT4, 1, dims, lbs,
                                   elems.data, lens, 3, &err), &err);
    ASSERT_OK(molt_db_encode_int8(&lo, 10), NULL);
    molt_db_range r = {MOLT_DB_RANGE_LB_INC | MOLT_DB_RANGE_UB_INF, lo.data, 8,
                       NULL, -1};
    ASSERT_OK(molt_db_encode_range(&rng, &r, &err), &err);
    molt_db_field f[2] = {{arr.data, (int32_t)arr.len}, {rng.data, (int32_t)rng.len}};
    ASSERT_OK(molt_db_arrow_builder_append(b, f, 2, &err), &err);
    molt_db_field nulls[2] = {{NULL, -1}, {NULL, -1}};
    ASSERT_OK(molt_db_arrow_builder_append(b, nulls, 2, &err), &err);
    /* a truncated array fails and is taken back entirely */
    molt_db_field bad[2] = {{arr.data, (int32_t)arr.len - 2}, {NULL, -1}};
    ASSERT_CODE(molt_db_arrow_builder_append(b, bad, 2, &err), MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "\"a\"");

    struct ArrowSchema s;
    ASSERT_OK(molt_db_arrow_builder_schema(b, &s, &err), &err);
    ASSERT_EQ_STR(s.children[0]->format, "+s");
    ASSERT_EQ_STR(s.children[0]->children[1]->name, "values");
    ASSERT_EQ_STR(s.children[0]->children[1]->format, "+l");
    ASSERT_EQ_STR(s.children[0]->children[1]->children[0]->format, "i");
    ASSERT_EQ_STR(s.children[1]->children[1]->children[0]->format, "l");
    s.release(&s);

    struct ArrowArray a;
    ASSERT_OK(molt_db_arrow_builder_finish(b, &a, &err), &err);
    ASSERT_EQ_INT(a.length, 2);
    struct ArrowArray *ac = a.children[0];
    ASSERT_EQ_INT(ac->length, 2);
    ASSERT_EQ_INT(ac->null_count, 1);
    struct ArrowArray *vals = ac->children[1], *items = vals->children[0];
    const int32_t *offs = vals->buffers[1];
    ASSERT_EQ_INT(offs[0], 0);
    ASSERT_EQ_INT(offs[1], 3);
    ASSERT_EQ_INT(offs[2], 3);
    ASSERT_EQ_INT(items->length, 3);
    ASSERT_EQ_INT(items->null_count, 1);
    ASSERT_EQ_INT(((const int32_t *)items->buffers[1])[2], 7);
    const struct ArrowArray *lbv = ac->children[0]->children[0];
    ASSERT_EQ_INT(((const int32_t *)lbv->buffers[1])[0], 3);
    /* range: lower present and inclusive, upper NULL (infinite) */
    const struct ArrowArray *rc = a.children[1];
    ASSERT_EQ_INT(rc->children[2]->null_count, 2);
    ASSERT_EQ_INT(bit(rc->children[1]->buffers[0] ? rc->children[1]->buffers[0]
                                                  : "\x01", 0), 1);
    ASSERT_EQ_INT(((const int64_t *)rc->children[1]->children[0]->buffers[1])[0], 10);

    /* move the array column out, release the batch, use the column */
    struct ArrowArray moved = *ac;
    ac->release = NULL;
    a.release(&a);
    ASSERT(a.release == NULL);
    ASSERT_EQ_INT(((const int32_t *)moved.children[1]->children[0]->buffers[1])[0], 5);
    moved.release(&moved);
    ASSERT(moved.release == NULL);

    molt_db_buf_free(&elems); molt_db_buf_free(&arr);
    molt_db_buf_free(&lo); molt_db_buf_free(&rng);
    molt_db_arrow_builder_free(b);
}

/* ---- IPC ---------------------------------------------------------------- */

TEST(ipc_byte_layout)
{
    molt_db_column cols[2] = {
        col("n", MOLT_DB_OID_INT4, -1, MOLT_DB_FORMAT_BINARY),
        col("u", MOLT_DB_OID_UUID, -1, MOLT_DB_FORMAT_BINARY),
    };
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_arrow_builder *b = NULL;
    ASSERT_OK(molt_db_arrow_builder_new(cols, 2, 0, &b, &err), &err);
    uint8_t one[4] = {0, 0, 0, 1}, u[16] = {1, 2, 3};
    molt_db_field f[2] = {{one, 4}, {u, 16}};
    ASSERT_OK(molt_db_arrow_builder_append(b, f, 2, &err), &err);
    f[1].len = -1;
    f[1].data = NULL;
    ASSERT_OK(molt_db_arrow_builder_append(b, f, 2, &err), &err);

    struct ArrowSchema s;
    ASSERT_OK(molt_db_arrow_builder_schema(b, &s, &err), &err);
    molt_db_arrow_ipc_writer *w = NULL;
    ASSERT_OK(molt_db_arrow_ipc_writer_new(&s, &w, &err), &err);
    s.release(&s);

    molt_db_buf out;
    molt_db_buf_init(&out);
    ASSERT_OK(molt_db_arrow_ipc_write_schema(w, &out, &err), &err);
    /* continuation, metadata length, body 8-aligned */
    ASSERT_EQ_UINT(le32(out.data), 0xFFFFFFFFu);
    uint32_t mlen = le32(out.data + 4);
    ASSERT_EQ_UINT((8 + mlen) % 8, 0);
    ASSERT_EQ_UINT(out.len, 8 + mlen); /* schema: no body */
    const uint8_t *msg = fb_deref(out.data + 8);
    ASSERT_EQ_UINT(fb_field(msg, 0)[0], 4);  /* version V5 */
    ASSERT_EQ_UINT(fb_field(msg, 1)[0], 1);  /* header: Schema */
    const uint8_t *schema = fb_deref(fb_field(msg, 2));
    const uint8_t *fields = fb_deref(fb_field(schema, 1));
    ASSERT_EQ_UINT(le32(fields), 2);
    const uint8_t *f1 = fb_deref(fields + 8);
    const uint8_t *name = fb_deref(fb_field(f1, 0));
    ASSERT_EQ_MEM(name + 4, le32(name), "u", 1);
    ASSERT_EQ_UINT(fb_field(f1, 2)[0], 15);  /* FixedSizeBinary */
    const uint8_t *md = fb_deref(fb_field(f1, 6));
    ASSERT_EQ_UINT(le32(md), 2);
    const uint8_t *kv = fb_deref(md + 4);
    const uint8_t *k = fb_deref(fb_field(kv, 0)), *v = fb_deref(fb_field(kv, 1));
    ASSERT_EQ_MEM(k + 4, le32(k), "ARROW:extension:name", 20);
    ASSERT_EQ_MEM(v + 4, le32(v), "arrow.uuid", 10);

    size_t at = out.len;
    struct ArrowArray a;
    molt_db_arrow_builder_view(b, &a);
    ASSERT_OK(molt_db_arrow_ipc_write_batch(w, &a, &out, &err), &err);
    ASSERT_EQ_UINT(le32(out.data + at), 0xFFFFFFFFu);
    mlen = le32(out.data + at + 4);
    ASSERT_EQ_UINT((8 + mlen) % 8, 0);
    msg = fb_deref(out.data + at + 8);
    ASSERT_EQ_UINT(fb_field(msg, 1)[0], 3);  /* RecordBatch */
    const uint8_t *blp = fb_field(msg, 3);
    uint64_t body = le32(blp) | (uint64_t)le32(blp + 4) << 32;
    ASSERT_EQ_UINT(out.len - at, 8 + mlen + body);
    const uint8_t *rb = fb_deref(fb_field(msg, 2));
    const uint8_t *bufs = fb_deref(fb_field(rb, 2));
    ASSERT_EQ_UINT(le32(bufs), 4); /* validity+values, twice */
    const uint8_t *body0 = out.data + at + 8 + mlen;
    /* buffer 1: int32 values at an 8-aligned offset, 8 bytes */
    ASSERT_EQ_UINT(le32(bufs + 4 + 16) % 8, 0);
    ASSERT_EQ_UINT(le32(bufs + 4 + 24), 8);
    ASSERT_EQ_UINT(le32(body0 + le32(bufs + 4 + 16)), 1);
    /* buffer 2: the uuid validity (one null): 1 byte, bit 0 set */
    ASSERT_EQ_UINT(le32(bufs + 4 + 40), 1);
    ASSERT_EQ_UINT(body0[le32(bufs + 4 + 32)], 1);

    at = out.len;
    ASSERT_OK(molt_db_arrow_ipc_write_eos(&out), NULL);
    ASSERT_EQ_MEM(out.data + at, 8, "\xff\xff\xff\xff\0\0\0\0", 8);
    molt_db_buf_free(&out);
    molt_db_arrow_ipc_writer_free(w);
    molt_db_arrow_builder_free(b);
}

TEST(ipc_rejects_unsupported)
{
    struct ArrowSchema child = {"+l", "x", NULL, 0, 0, NULL, NULL, NULL, NULL};
    struct ArrowSchema *kids[1] = {&child};
    struct ArrowSchema top = {"+s", "", NULL, 0, 1, kids, NULL, NULL, NULL};
    molt_db_arrow_ipc_writer *w = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_CODE(molt_db_arrow_ipc_writer_new(&top, &w, &err), MOLT_DB_ETYPE);
    ASSERT_CONTAINS(err.message, "\"x\"");
    ASSERT(w == NULL);
    top.format = "i";
    ASSERT_CODE(molt_db_arrow_ipc_writer_new(&top, &w, &err), MOLT_DB_EINVAL);
}

/* ---- IPC of sliced arrays ------------------------------------------------ */

#define SL_ROWS 41
#define SL_COLS 6

/* Row r of the slice tests, encoded into v[0..SL_COLS): int8, text, bool,
 * int4[], int4range, float8; NULLs, empty arrays and empty ranges spread
 * so that slices start and end at every bit position. */
static void slice_row(int r, molt_db_buf v[SL_COLS], molt_db_field f[SL_COLS])
{
    char t[32];
    for (int c = 0; c < SL_COLS; c++)
        molt_db_buf_init(&v[c]);
    ASSERT_OK(molt_db_encode_int8(&v[0], r * 1000003LL), NULL);
    snprintf(t, sizeof t, "v%d%s", r, r % 4 ? "-x" : "");
    ASSERT_OK(molt_db_encode_bytes(&v[1], t, strlen(t)), NULL);
    ASSERT_OK(molt_db_encode_bool(&v[2], r % 3 == 1), NULL);
    molt_db_buf el;
    molt_db_buf_init(&el);
    int32_t lens[3], n = r % 6 == 1 ? 0 : 1 + r % 3;
    for (int k = 0; k < n; k++) {
        lens[k] = (r + k) % 5 == 0 ? -1 : 4;
        if (lens[k] > 0)
            ASSERT_OK(molt_db_encode_int4(&el, r * 10 + k), NULL);
    }
    int32_t dims[1] = {n};
    ASSERT_OK(molt_db_encode_array(&v[3], MOLT_DB_OID_INT4, n ? 1 : 0, dims, NULL,
                                   el.data, lens, (size_t)n, NULL), NULL);
    molt_db_buf lo, hi;
    molt_db_buf_init(&lo);
    molt_db_buf_init(&hi);
    ASSERT_OK(molt_db_encode_int4(&lo, r), NULL);
    ASSERT_OK(molt_db_encode_int4(&hi, r + 5), NULL);
    molt_db_range rg = {MOLT_DB_RANGE_LB_INC, lo.data, 4, hi.data, 4};
    if (r % 9 == 0)
        rg = (molt_db_range){MOLT_DB_RANGE_EMPTY, NULL, -1, NULL, -1};
    else if (r % 7 == 3)
        rg = (molt_db_range){MOLT_DB_RANGE_UB_INF, lo.data, 4, NULL, -1};
    ASSERT_OK(molt_db_encode_range(&v[4], &rg, NULL), NULL);
    ASSERT_OK(molt_db_encode_float8(&v[5], r / 8.0), NULL);
    molt_db_buf_free(&el);
    molt_db_buf_free(&lo);
    molt_db_buf_free(&hi);
    for (int c = 0; c < SL_COLS; c++) {
        int null = (c == 0 && r % 5 == 0) || (c == 1 && r % 7 == 0) ||
                   (c == 2 && r % 3 == 0) || (c == 3 && r % 4 == 0) ||
                   (c == 4 && r % 11 == 5);
        f[c].data = null ? NULL : v[c].data;
        f[c].len = null ? -1 : (int32_t)v[c].len;
    }
}

static molt_db_arrow_builder *slice_builder(const molt_db_column *cols, int from,
                                            int n)
{
    molt_db_arrow_builder *b = NULL;
    ASSERT_OK(molt_db_arrow_builder_new(cols, SL_COLS, 0, &b, NULL), NULL);
    for (int r = from; r < from + n; r++) {
        molt_db_buf v[SL_COLS];
        molt_db_field f[SL_COLS];
        slice_row(r, v, f);
        ASSERT_OK(molt_db_arrow_builder_append(b, f, SL_COLS, NULL), NULL);
        for (int c = 0; c < SL_COLS; c++)
            molt_db_buf_free(&v[c]);
    }
    return b;
}

/* The record batch message (and body) of a, through a writer for schema s. */
static void ipc_batch(const struct ArrowSchema *s, const struct ArrowArray *a,
                      molt_db_buf *out)
{
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_arrow_ipc_writer *w = NULL;
    ASSERT_OK(molt_db_arrow_ipc_writer_new(s, &w, &err), &err);
    molt_db_buf_init(out);
    ASSERT_OK(molt_db_arrow_ipc_write_batch(w, a, out, &err), &err);
    molt_db_arrow_ipc_writer_free(w);
}

/* A slice of a batch -- by the batch's offset, or by every column's own
 * offset -- is written byte for byte as the batch built from those rows
 * alone: offsets rebased, bitmaps shifted, list children cut. */
TEST(ipc_sliced_batches)
{
    molt_db_column cols[SL_COLS] = {
        col("i8", MOLT_DB_OID_INT8, -1, MOLT_DB_FORMAT_BINARY),
        col("t", MOLT_DB_OID_TEXT, -1, MOLT_DB_FORMAT_BINARY),
        col("b", MOLT_DB_OID_BOOL, -1, MOLT_DB_FORMAT_BINARY),
        col("a", MOLT_DB_OID_INT4_ARRAY, -1, MOLT_DB_FORMAT_BINARY),
        col("r", MOLT_DB_OID_INT4RANGE, -1, MOLT_DB_FORMAT_BINARY),
        col("f", MOLT_DB_OID_FLOAT8, -1, MOLT_DB_FORMAT_BINARY),
    };
    molt_db_arrow_builder *full = slice_builder(cols, 0, SL_ROWS);
    struct ArrowSchema s;
    ASSERT_OK(molt_db_arrow_builder_schema(full, &s, NULL), NULL);
    static const int cuts[][2] = {{0, SL_ROWS}, {3, 20}, {8, 16}, {13, 28},
                                  {16, 9}, {0, 1}, {40, 1}, {5, 0}, {1, 40}};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        int from = cuts[k][0], n = cuts[k][1];
        molt_db_arrow_builder *part = slice_builder(cols, from, n);
        struct ArrowArray want_a, a;
        molt_db_arrow_builder_view(part, &want_a);
        molt_db_buf want, got;
        ipc_batch(&s, &want_a, &want);

        molt_db_arrow_builder_view(full, &a);
        a.offset = from;
        a.length = n;
        ipc_batch(&s, &a, &got);
        ASSERT_EQ_MEM(got.data, got.len, want.data, want.len);
        molt_db_buf_free(&got);

        molt_db_arrow_builder_view(full, &a);
        int64_t nulls[SL_COLS];
        for (int c = 0; c < SL_COLS; c++) {
            nulls[c] = a.children[c]->null_count;
            a.children[c]->offset = from;
            a.children[c]->length = SL_ROWS - from;
            a.children[c]->null_count = -1; /* of the slice: not known */
        }
        a.length = n;
        ipc_batch(&s, &a, &got);
        ASSERT_EQ_MEM(got.data, got.len, want.data, want.len);
        for (int c = 0; c < SL_COLS; c++) {
            a.children[c]->offset = 0;
            a.children[c]->length = SL_ROWS;
            a.children[c]->null_count = nulls[c];
        }
        molt_db_buf_free(&got);
        molt_db_buf_free(&want);
        molt_db_arrow_builder_free(part);
    }
    /* past the end of a column: refused, not read */
    struct ArrowArray a;
    molt_db_arrow_builder_view(full, &a);
    a.offset = 30;
    a.length = 12;
    molt_db_buf out;
    molt_db_buf_init(&out);
    molt_db_arrow_ipc_writer *w = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_arrow_ipc_writer_new(&s, &w, &err), &err);
    ASSERT_CODE(molt_db_arrow_ipc_write_batch(w, &a, &out, &err), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(out.len, 0);
    molt_db_arrow_ipc_writer_free(w);
    s.release(&s);
    molt_db_arrow_builder_free(full);
}

/* ---- server: reader and stream ----------------------------------------- */

typedef struct batches {
    int64_t rows[16];
    int n;
    int64_t sum;
    int done, status;
    char schema_fmt[16];
} batches;

static int on_schema(void *ud, struct ArrowSchema *s)
{
    batches *bt = ud;
    snprintf(bt->schema_fmt, sizeof bt->schema_fmt, "%s", s->children[0]->format);
    return MOLT_DB_OK;
}

static int on_batch(void *ud, struct ArrowArray *a)
{
    batches *bt = ud;
    ASSERT(bt->n < 16);
    bt->rows[bt->n++] = a->length;
    const int64_t *v = a->children[0]->buffers[1];
    for (int64_t i = 0; i < a->length; i++)
        bt->sum += v[i];
    a->release(a); /* owned mode: ours to release */
    return MOLT_DB_OK;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    batches *bt = ud;
    (void)err;
    bt->done = 1;
    bt->status = status;
}

TEST(reader_batches_from_server)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    batches bt;
    memset(&bt, 0, sizeof bt);
    molt_db_arrow_reader_options o = {3, 0, on_schema, on_batch, on_done, &bt};
    molt_db_arrow_reader *r = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_arrow_reader_new(&o, &r, &err), &err);
    molt_db_result_handler h = molt_db_arrow_reader_handler(r);
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT g::int8 FROM generate_series(1,10) g",
                                 0, NULL, &h), NULL);
    while (!bt.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(bt.status, NULL);
    ASSERT_EQ_STR(bt.schema_fmt, "l");
    ASSERT_EQ_INT(bt.n, 4);
    ASSERT_EQ_INT(bt.rows[0], 3);
    ASSERT_EQ_INT(bt.rows[3], 1);
    ASSERT_EQ_INT(bt.sum, 55);

    /* an empty result gives one empty batch */
    memset(&bt, 0, sizeof bt);
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT 1::int8 WHERE false", 0, NULL, &h),
              NULL);
    while (!bt.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(bt.status, NULL);
    ASSERT_EQ_INT(bt.n, 1);
    ASSERT_EQ_INT(bt.rows[0], 0);
    molt_db_arrow_reader_free(r);
    pgt_close(p);
}

/* The blocking stream runs a connection and a driven loop of its own: no
 * loop of the caller's is involved. */
TEST(stream_from_server)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    molt_db_conninfo *ci = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, &err), &err);
    struct ArrowArrayStream st;
    ASSERT_OK(molt_db_arrow_stream_open(ci,
                                         "SELECT g::int4 AS g, g::text AS t "
                                         "FROM generate_series(1,1000) g",
                                         0, NULL, 100, &st, &err), &err);
    struct ArrowSchema s;
    ASSERT_EQ_INT(st.get_schema(&st, &s), 0);
    ASSERT_EQ_STR(s.children[1]->name, "t");
    s.release(&s);
    int64_t rows = 0, sum = 0;
    for (;;) {
        struct ArrowArray a;
        ASSERT_EQ_INT(st.get_next(&st, &a), 0);
        if (a.release == NULL)
            break;
        const int32_t *v = a.children[0]->buffers[1];
        for (int64_t i = 0; i < a.length; i++)
            sum += v[i];
        rows += a.length;
        a.release(&a);
    }
    ASSERT_EQ_INT(rows, 1000);
    ASSERT_EQ_INT(sum, 500500);
    st.release(&st);

    /* an error surfaces from get_next with the server's message */
    ASSERT_OK(molt_db_arrow_stream_open(ci,
                                         "SELECT 1/(g-5) FROM generate_series(1,9) g",
                                         0, NULL, 2, &st, &err), &err);
    int rc = 0;
    for (;;) {
        struct ArrowArray a;
        rc = st.get_next(&st, &a);
        if (rc != 0 || a.release == NULL)
            break;
        a.release(&a);
    }
    ASSERT(rc != 0);
    ASSERT_CONTAINS(st.get_last_error(&st), "division by zero");
    st.release(&st);

    /* released early: the stream's connection closes; the server's
     * backend of it ends (no session is left running the query) */
    pgt_conn *p = pgt_connect(dsn);
    ASSERT_OK(molt_db_arrow_stream_open(ci,
                                         "SELECT g FROM generate_series(1,100000) g",
                                         0, NULL, 10, &st, &err), &err);
    struct ArrowArray a;
    ASSERT_EQ_INT(st.get_next(&st, &a), 0);
    ASSERT_EQ_INT(a.length, 10);
    a.release(&a);
    st.release(&st);
    int left = -1;
    for (int i = 0; i < 100 && left != 0; i++) {
        pgt_result *res = pgt_query(p, "SELECT count(*) FROM pg_stat_activity "
                                    "WHERE query LIKE 'SELECT g FROM generate_series(1,100000)%'",
                                    0, NULL);
        ASSERT_OK(res->status, &res->err);
        left = atoi((const char *)res->data[0]);
        pgt_result_free(res);
        if (left != 0)
            usleep(20000);
    }
    ASSERT_EQ_INT(left, 0);
    pgt_close(p);

    /* a server that cannot be reached: the open fails, nothing is left */
    molt_db_conninfo *bad = NULL;
    ASSERT_OK(molt_db_conninfo_parse("postgresql://u@127.0.0.1:1/db?connect_timeout=2",
                                     &bad, &err), &err);
    ASSERT_CODE(molt_db_arrow_stream_open(bad, "SELECT 1", 0, NULL, 10, &st, &err),
                MOLT_DB_ECONNECT);
    ASSERT(st.release == NULL);
    molt_db_conninfo_free(bad);
    molt_db_conninfo_free(ci);
    molt_db_error_clear(&err);
}

/* ---- struct mode -------------------------------------------------------- */

typedef struct item {
    int64_t id;
    int32_t small;
    char code[6];
    double price;
    bool price_null;
    molt_db_string_view name;
    char *copy;
    int64_t ts_us;
    int32_t day;
    uint8_t uuid[16];
#if MOLT_DB_HAVE_INT128
    molt_db_decimal128 amount;
#endif
} item;

static molt_db_member item_members[] = {
    {"id", 0, offsetof(item, id), MOLT_DB_MEMBER_INT64},
    {NULL, 1, offsetof(item, small), MOLT_DB_MEMBER_INT32},
    {"code", 0, offsetof(item, code), MOLT_DB_MEMBER_CHARS, .size = 6},
    {"price", 0, offsetof(item, price), MOLT_DB_MEMBER_DOUBLE,
     .null_offset = MOLT_DB_NULL_FLAG(item, price_null)},
    {"name", 0, offsetof(item, name), MOLT_DB_MEMBER_STRING_VIEW},
    {"name", 0, offsetof(item, copy), MOLT_DB_MEMBER_STRING_COPY},
    {"ts", 0, offsetof(item, ts_us), MOLT_DB_MEMBER_TIMESTAMP_US},
    {"day", 0, offsetof(item, day), MOLT_DB_MEMBER_DATE_DAYS},
    {"u", 0, offsetof(item, uuid), MOLT_DB_MEMBER_UUID},
#if MOLT_DB_HAVE_INT128
    {"amount", 0, offsetof(item, amount), MOLT_DB_MEMBER_DECIMAL128, .scale = 4},
#endif
};

static const molt_db_rowstruct_desc item_desc = {
    sizeof(item), sizeof item_members / sizeof item_members[0], item_members};

#define ITEM_SQL(code, price)                                               \
    "SELECT g::int8 AS id, (g * 2)::int2 AS small, " code " AS code, "        \
    price " AS price, 'nämé ' || g AS name, "                               \
    "'1970-01-01 00:00:01.5+00'::timestamptz AS ts, '1969-12-31'::date AS day, " \
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, 12.5::numeric(10,2) AS amount " \
    "FROM generate_series(1,3) g"

typedef struct struct_run {
    item got[8];
    size_t n;
    int calls;
    int done, status;
    molt_db_error err;
} struct_run;

static int on_rows(void *ud, void *rows, size_t n)
{
    struct_run *s = ud;
    item *it = rows;
    for (size_t i = 0; i < n && s->n < 8; i++) {
        s->got[s->n] = it[i];
        /* a view dies with its row: check it now */
        char want[32];
        snprintf(want, sizeof want, "nämé %d", (int)it[i].id);
        ASSERT_EQ_MEM(it[i].name.data, it[i].name.len, want, strlen(want));
        s->got[s->n].name.data = NULL;
        s->n++;
    }
    s->calls++;
    return MOLT_DB_OK;
}

static void on_rows_done(void *ud, int status, const molt_db_error *err)
{
    struct_run *s = ud;
    s->done = 1;
    s->status = status;
    if (err)
        molt_db_error_copy(&s->err, err);
}

static void run_struct(pgt_conn *p, const char *sql, const molt_db_rowstruct_desc *d,
                       struct_run *s)
{
    memset(s, 0, sizeof *s);
    molt_db_rowstruct_reader_options o = {d, 0, on_rows, on_rows_done, s};
    molt_db_rowstruct_reader *r = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_rowstruct_reader_new(&o, &r, &err), &err);
    molt_db_result_handler h = molt_db_rowstruct_reader_handler(r);
    ASSERT_OK(molt_db_conn_query(p->conn, sql, 0, NULL, &h), NULL);
    while (!s->done)
        uv_run(&p->loop, UV_RUN_ONCE);
    molt_db_rowstruct_reader_free(r);
}

TEST(rowstruct_decodes_rows)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    struct_run s;
    run_struct(p, ITEM_SQL("'ab'", "CASE WHEN g = 2 THEN NULL ELSE g * 1.25::float8 END"),
               &item_desc, &s);
    ASSERT_OK(s.status, &s.err);
    ASSERT_EQ_UINT(s.n, 3);
    ASSERT_EQ_INT(s.calls, 3); /* a view member: one row per call */
    for (size_t i = 0; i < 3; i++) {
        item *it = &s.got[i];
        ASSERT_EQ_INT(it->id, (int64_t)i + 1);
        ASSERT_EQ_INT(it->small, 2 * ((int)i + 1));
        ASSERT_EQ_STR(it->code, "ab");
        ASSERT_EQ_INT(it->price_null, i == 1);
        ASSERT_EQ_DBL(it->price, i == 1 ? 0.0 : 1.25 * (double)(i + 1));
        char want[32];
        snprintf(want, sizeof want, "nämé %d", (int)i + 1);
        ASSERT_EQ_STR(it->copy, want);
        ASSERT_EQ_INT(it->ts_us, 1500000);
        ASSERT_EQ_INT(it->day, -1);
        ASSERT_EQ_UINT(it->uuid[0], 0xa0);
        ASSERT_EQ_UINT(it->uuid[15], 0x11);
#if MOLT_DB_HAVE_INT128
        ASSERT(it->amount.unscaled == 125000 && it->amount.scale == 4);
#endif
    }
    molt_db_rowstruct_free_copies(&item_desc, s.got, s.n);
    ASSERT(s.got[0].copy == NULL);
    molt_db_error_clear(&s.err);
    pgt_close(p);
}

TEST(rowstruct_errors)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    struct_run s;

    /* a string longer than char[6] */
    run_struct(p, ITEM_SQL("'abcdefgh'", "1.0::float8"), &item_desc, &s);
    ASSERT_CODE(s.status, MOLT_DB_ERANGE);
    ASSERT_CONTAINS(s.err.message, "\"code\"");
    ASSERT_CONTAINS(s.err.message, "char[6]");
    molt_db_error_clear(&s.err);

    /* NULL into a member with no null flag */
    run_struct(p, ITEM_SQL("NULL::text", "1.0::float8"), &item_desc, &s);
    ASSERT_CODE(s.status, MOLT_DB_ERANGE);
    ASSERT_CONTAINS(s.err.message, "\"code\"");
    ASSERT_CONTAINS(s.err.message, "NULL");
    molt_db_error_clear(&s.err);

    /* type mismatch: numeric into a double member, found at bind time */
    run_struct(p, ITEM_SQL("'ab'", "1.0::numeric"), &item_desc, &s);
    ASSERT_CODE(s.status, MOLT_DB_ETYPE);
    ASSERT_CONTAINS(s.err.message, "\"price\"");
    ASSERT_CONTAINS(s.err.message, "numeric");
    ASSERT_EQ_UINT(s.n, 0);
    molt_db_error_clear(&s.err);

    /* int8 does not narrow into int32 */
    molt_db_member m2[] = {{"id", 0, 0, MOLT_DB_MEMBER_INT32}};
    molt_db_rowstruct_desc d2 = {sizeof(int32_t), 1, m2};
    run_struct(p, "SELECT 1::int8 AS id", &d2, &s);
    ASSERT_CODE(s.status, MOLT_DB_ETYPE);
    ASSERT_CONTAINS(s.err.message, "\"id\" (int8");
    molt_db_error_clear(&s.err);

    /* missing column, position out of range */
    molt_db_member m3[] = {{"nope", 0, 0, MOLT_DB_MEMBER_INT32}};
    molt_db_rowstruct_desc d3 = {sizeof(int32_t), 1, m3};
    run_struct(p, "SELECT 1::int4 AS id", &d3, &s);
    ASSERT_CODE(s.status, MOLT_DB_EINVAL);
    ASSERT_CONTAINS(s.err.message, "\"nope\"");
    molt_db_error_clear(&s.err);
    molt_db_member m4[] = {{NULL, 3, 0, MOLT_DB_MEMBER_INT32}};
    molt_db_rowstruct_desc d4 = {sizeof(int32_t), 1, m4};
    run_struct(p, "SELECT 1::int4 AS id", &d4, &s);
    ASSERT_CODE(s.status, MOLT_DB_EINVAL);
    molt_db_error_clear(&s.err);

    /* the connection is still fine after the failed requests */
    pgt_result *res = pgt_query(p, "SELECT 1", 0, NULL);
    ASSERT_OK(res->status, &res->err);
    pgt_result_free(res);
    pgt_close(p);
}

TEST(rowstruct_truncate_flag)
{
    /* no server needed: bind against hand-made columns */
    typedef struct t { char s[5]; } t;
    molt_db_member m[] = {{"s", 0, offsetof(t, s), MOLT_DB_MEMBER_CHARS,
                           .size = 5, .flags = MOLT_DB_MEMBER_TRUNCATE}};
    molt_db_rowstruct_desc d = {sizeof(t), 1, m};
    molt_db_column c = col("s", MOLT_DB_OID_TEXT, -1, MOLT_DB_FORMAT_BINARY);
    molt_db_rowstruct_plan *plan = NULL;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_rowstruct_bind(&d, &c, 1, &plan, &err), &err);
    t row;
    /* "abcé": 5 bytes; room for 4: é (2 bytes) would be split, so cut to 3 */
    molt_db_field f = {(const uint8_t *)"abcé", 5};
    ASSERT_OK(molt_db_rowstruct_decode(plan, &f, 1, &row, NULL, &err), &err);
    ASSERT_EQ_STR(row.s, "abc");
    f.data = (const uint8_t *)"abcd";
    f.len = 4;
    ASSERT_OK(molt_db_rowstruct_decode(plan, &f, 1, &row, NULL, &err), &err);
    ASSERT_EQ_STR(row.s, "abcd");
    ASSERT_CODE(molt_db_rowstruct_decode(plan, &f, 2, &row, NULL, &err),
                MOLT_DB_EPROTO);
    molt_db_rowstruct_plan_free(plan);

    /* a binary non-text column into char[]: printed as the server's text */
    molt_db_member mi[] = {{"n", 0, offsetof(t, s), MOLT_DB_MEMBER_CHARS, .size = 5}};
    molt_db_rowstruct_desc di = {sizeof(t), 1, mi};
    molt_db_column ci = col("n", MOLT_DB_OID_INT4, -1, MOLT_DB_FORMAT_BINARY);
    ASSERT_OK(molt_db_rowstruct_bind(&di, &ci, 1, &plan, &err), &err);
    ASSERT(molt_db_rowstruct_plan_needs_scratch(plan));
    molt_db_buf scratch;
    molt_db_buf_init(&scratch);
    uint8_t m42[4] = {0xFF, 0xFF, 0xFF, 0xD6};
    molt_db_field fi = {m42, 4};
    ASSERT_OK(molt_db_rowstruct_decode(plan, &fi, 1, &row, &scratch, &err), &err);
    ASSERT_EQ_STR(row.s, "-42");
    ASSERT_CODE(molt_db_rowstruct_decode(plan, &fi, 1, &row, NULL, &err), MOLT_DB_EINVAL);
    molt_db_buf_free(&scratch);
    molt_db_rowstruct_plan_free(plan);

    /* a bad description: CHARS of size 0 */
    molt_db_member bad[] = {{"s", 0, 0, MOLT_DB_MEMBER_CHARS}};
    molt_db_rowstruct_desc db = {sizeof(t), 1, bad};
    ASSERT_CODE(molt_db_rowstruct_bind(&db, &c, 1, &plan, &err), MOLT_DB_EINVAL);
    ASSERT(plan == NULL);
}

TEST_MAIN(TEST_ENTRY(builder_layout), TEST_ENTRY(builder_fast_rows),
          TEST_ENTRY(builder_batch_rows_and_reset),
          TEST_ENTRY(builder_nested_owned_move_child),
          TEST_ENTRY(ipc_byte_layout), TEST_ENTRY(ipc_rejects_unsupported),
          TEST_ENTRY(ipc_sliced_batches),
          TEST_ENTRY(reader_batches_from_server), TEST_ENTRY(stream_from_server),
          TEST_ENTRY(rowstruct_decodes_rows), TEST_ENTRY(rowstruct_errors),
          TEST_ENTRY(rowstruct_truncate_flag))
