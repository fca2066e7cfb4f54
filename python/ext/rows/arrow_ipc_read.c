/* Arrow IPC stream bytes as an ArrowArrayStream pointing into them
 * (arrow_ipc_read.h). Message.fbs, Schema.fbs and File.fbs name the
 * tables and fields read here. */
#include "arrow_ipc_read.h"
#include "fb_read.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the arrays point into little-endian IPC bodies: a little-endian host only"
#endif

enum { L_FIXED, L_BITS, L_VAR, L_LIST, L_STRUCT };
enum { MAX_DEPTH = 32, MAX_FIELDS = 65536, MAX_META = 1024 };
/* names and metadata copied out of one Schema: a table or string the
 * flatbuffer names many times is copied as many times */
#define MAX_SCHEMA_BYTES ((size_t)16 << 20)

typedef struct field {
    char *format, *name, *meta; /* meta: the C interface's metadata, or NULL */
    size_t metalen;
    int nullable, layout;
    size_t width;               /* bytes per value of L_FIXED */
    int64_t nchildren;
    struct field *children;
} field;

typedef struct ctx {
    char *err;
    size_t errlen;
    int nfields;
    size_t copied;  /* of MAX_SCHEMA_BYTES */
} ctx;

static int fail(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(ctx *c)
{
    snprintf(c->err, c->errlen, "out of memory");
    return -2;
}

/* n more bytes copied out of the Schema, within MAX_SCHEMA_BYTES. */
static int spend(ctx *c, size_t n)
{
    if (n > MAX_SCHEMA_BYTES - c->copied)
        return fail(c, "a Schema whose names and metadata pass %zu bytes", MAX_SCHEMA_BYTES);
    c->copied += n;
    return 0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t le64(const uint8_t *p)
{
    uint64_t v = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
    int64_t s;
    memcpy(&s, &v, 8);
    return s;
}

void ipc_owner_ref(ipc_owner *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void ipc_owner_unref(ipc_owner *o)
{
    if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
        o->drop(o);
}

/* ---- the schema ---------------------------------------------------------- */

static void field_free(field *f)
{
    for (int64_t i = 0; i < f->nchildren; i++)
        field_free(&f->children[i]);
    free(f->children);
    free(f->format);
    free(f->name);
    free(f->meta);
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void put32(char **p, uint32_t v)
{
    int32_t s = (int32_t)v;
    memcpy(*p, &s, 4);
    *p += 4;
}

/* A custom_metadata vector of KeyValue tables (field `id` of t) as the C
 * interface's metadata: int32 count, then each key and value as an int32
 * length and its bytes. */
static int parse_meta(ctx *c, const fb_table *t, int id, char **out, size_t *outlen)
{
    size_t at;
    uint32_t n;
    int rc = fb_vector(t, id, 4, &at, &n);
    if (rc <= 0)
        return rc < 0 ? fail(c, "malformed custom_metadata") : 0;
    if (n > MAX_META)
        return fail(c, "custom_metadata of %u entries (at most %d)", n, MAX_META);
    size_t total = 4;
    for (int pass = 0; pass < 2; pass++) {
        char *p = *out;
        if (pass == 1)
            put32(&p, n);
        for (uint32_t i = 0; i < n; i++) {
            fb_table kv;
            const char *k, *v;
            uint32_t kl, vl;
            if (fb_vector_table(t, at, n, i, &kv) < 0 || fb_string(&kv, 0, &k, &kl) < 0 ||
                fb_string(&kv, 1, &v, &vl) < 0)
                return fail(c, "malformed custom_metadata");
            if (pass == 0) {
                total += 8 + (size_t)kl + vl;
                continue;
            }
            put32(&p, kl);
            memcpy(p, k, kl);
            p += kl;
            put32(&p, vl);
            memcpy(p, v, vl);
            p += vl;
        }
        if (pass == 0) {
            if (spend(c, total) != 0)
                return -1;
            if ((*out = malloc(total)) == NULL)
                return oom(c);
            *outlen = total;
        }
    }
    return 0;
}

static const char *type_name(uint8_t t)
{
    static const char *const names[] = {
        "NONE", "Null", "Int", "FloatingPoint", "Binary", "Utf8", "Bool", "Decimal", "Date",
        "Time", "Timestamp", "Interval", "List", "Struct_", "Union", "FixedSizeBinary",
        "FixedSizeList", "Map", "Duration", "LargeBinary", "LargeUtf8", "LargeList",
        "RunEndEncoded", "BinaryView", "Utf8View", "ListView", "LargeListView"};
    return t < sizeof names / sizeof names[0] ? names[t] : "(unknown)";
}

static char unit_char(int16_t u)
{
    return u == 0 ? 's' : u == 1 ? 'm' : u == 2 ? 'u' : u == 3 ? 'n' : 0;
}

/* f's format, layout and width from the Type union (type id tt, table ty). */
static int type_format(ctx *c, field *f, uint8_t tt, const fb_table *ty)
{
    char fmt[160];
    int32_t a = 0, b = 0, bits = 0;
    int16_t u = 0;
    uint8_t sign = 0;
    int bad = 0;
    f->layout = L_FIXED;
    switch (tt) {
    case 2: /* Int */
        bad = fb_i32(ty, 0, 0, &bits) < 0 || fb_u8(ty, 1, 0, &sign) < 0;
        if (bad || (bits != 8 && bits != 16 && bits != 32 && bits != 64))
            break;
        fmt[0] = "cCsSiIlL"[(bits == 8 ? 0 : bits == 16 ? 2 : bits == 32 ? 4 : 6) + !sign];
        fmt[1] = '\0';
        f->width = (size_t)bits / 8;
        goto done;
    case 3: /* FloatingPoint */
        if (fb_i16(ty, 0, 0, &u) < 0 || u < 0 || u > 2)
            break;
        snprintf(fmt, sizeof fmt, "%c", "efg"[u]);
        f->width = (size_t)2 << u;
        goto done;
    case 4:
    case 5: /* Binary, Utf8 */
        snprintf(fmt, sizeof fmt, "%s", tt == 4 ? "z" : "u");
        f->layout = L_VAR;
        goto done;
    case 6: /* Bool */
        snprintf(fmt, sizeof fmt, "b");
        f->layout = L_BITS;
        goto done;
    case 7: /* Decimal */
        bad = fb_i32(ty, 0, 0, &a) < 0 || fb_i32(ty, 1, 0, &b) < 0 ||
              fb_i32(ty, 2, 128, &bits) < 0;
        if (bad || bits != 128 || a < 1 || a > 38 || b < -38 || b > 38)
            break;
        snprintf(fmt, sizeof fmt, "d:%d,%d", (int)a, (int)b);
        f->width = 16;
        goto done;
    case 8: /* Date: DAY or MILLISECOND (the default) */
        if (fb_i16(ty, 0, 1, &u) < 0 || u < 0 || u > 1)
            break;
        snprintf(fmt, sizeof fmt, "%s", u == 0 ? "tdD" : "tdm");
        f->width = u == 0 ? 4 : 8;
        goto done;
    case 9: /* Time: s, ms in 32 bits, us, ns in 64 */
        if (fb_i16(ty, 0, 1, &u) < 0 || fb_i32(ty, 1, 32, &bits) < 0 || !unit_char(u) ||
            bits != (u <= 1 ? 32 : 64))
            break;
        snprintf(fmt, sizeof fmt, "tt%c", unit_char(u));
        f->width = (size_t)bits / 8;
        goto done;
    case 10: { /* Timestamp */
        const char *tz;
        uint32_t tzl;
        if (fb_i16(ty, 0, 0, &u) < 0 || !unit_char(u) || fb_string(ty, 1, &tz, &tzl) < 0 ||
            tzl > 128 || memchr(tz, 0, tzl) != NULL)
            break;
        snprintf(fmt, sizeof fmt, "ts%c:%.*s", unit_char(u), (int)tzl, tz);
        f->width = 8;
        goto done;
    }
    case 12: /* List */
        snprintf(fmt, sizeof fmt, "+l");
        f->layout = L_LIST;
        goto done;
    case 13: /* Struct_ */
        snprintf(fmt, sizeof fmt, "+s");
        f->layout = L_STRUCT;
        goto done;
    case 15: /* FixedSizeBinary */
        if (fb_i32(ty, 0, 0, &a) < 0 || a < 1 || a > (1 << 20))
            break;
        snprintf(fmt, sizeof fmt, "w:%d", (int)a);
        f->width = (size_t)a;
        goto done;
    default:
        return fail(c, "field \"%s\": Arrow type %s (%u) is not supported", f->name,
                    type_name(tt), tt);
    }
    return fail(c, "field \"%s\": unsupported or malformed %s type parameters", f->name,
                type_name(tt));
done:
    if ((f->format = dupn(fmt, strlen(fmt))) == NULL)
        return oom(c);
    return 0;
}

static int parse_field(ctx *c, const fb_table *ft, field *f, int depth)
{
    const char *s;
    uint32_t n;
    uint8_t nullable, tt;
    fb_table ty, dict;
    if (depth > MAX_DEPTH)
        return fail(c, "fields nested deeper than %d", MAX_DEPTH);
    if (++c->nfields > MAX_FIELDS)
        return fail(c, "more than %d fields", MAX_FIELDS);
    if (fb_string(ft, 0, &s, &n) < 0 || fb_u8(ft, 1, 0, &nullable) < 0 ||
        fb_u8(ft, 2, 0, &tt) < 0 || fb_table_field(ft, 3, &ty) < 0)
        return fail(c, "malformed Field in the Schema");
    if (memchr(s, 0, n) != NULL)
        return fail(c, "a field name holds a NUL byte");
    if (spend(c, n) != 0)
        return -1;
    if ((f->name = dupn(s, n)) == NULL)
        return oom(c);
    f->nullable = nullable != 0;
    int rc = fb_table_field(ft, 4, &dict);
    if (rc != 0)
        return rc < 0 ? fail(c, "malformed Field in the Schema")
                      : fail(c, "field \"%s\": dictionary-encoded fields are not supported",
                             f->name);
    if ((rc = type_format(c, f, tt, &ty)) != 0)
        return rc;
    size_t at;
    uint32_t nk;
    if (fb_vector(ft, 5, 4, &at, &nk) < 0)
        return fail(c, "field \"%s\": malformed children", f->name);
    if ((f->layout == L_LIST && nk != 1) || (f->layout != L_LIST && f->layout != L_STRUCT && nk))
        return fail(c, "field \"%s\": %u children for its type %s", f->name, nk, f->format);
    if (nk > MAX_FIELDS)
        return fail(c, "more than %d fields", MAX_FIELDS);
    if ((f->children = calloc(nk ? nk : 1, sizeof *f->children)) == NULL)
        return oom(c);
    f->nchildren = nk;
    for (uint32_t i = 0; i < nk; i++) {
        fb_table kt;
        if (fb_vector_table(ft, at, nk, i, &kt) < 0)
            return fail(c, "field \"%s\": malformed children", f->name);
        if ((rc = parse_field(c, &kt, &f->children[i], depth + 1)) != 0)
            return rc;
    }
    return parse_meta(c, ft, 6, &f->meta, &f->metalen);
}

/* A Schema message's table into root (a struct of its fields). */
static int parse_schema(ctx *c, const fb_table *st, field *root)
{
    int16_t endianness;
    size_t at;
    uint32_t n;
    if (fb_i16(st, 0, 0, &endianness) < 0 || fb_vector(st, 1, 4, &at, &n) < 0)
        return fail(c, "malformed Schema message");
    if (endianness != 0)
        return fail(c, "a big-endian stream is not supported");
    if (n > MAX_FIELDS)
        return fail(c, "more than %d fields", MAX_FIELDS);
    root->layout = L_STRUCT;
    if ((root->format = dupn("+s", 2)) == NULL || (root->name = dupn("", 0)) == NULL ||
        (root->children = calloc(n ? n : 1, sizeof *root->children)) == NULL)
        return oom(c);
    root->nchildren = n;
    for (uint32_t i = 0; i < n; i++) {
        fb_table ft;
        if (fb_vector_table(st, at, n, i, &ft) < 0)
            return fail(c, "malformed Schema message");
        int rc = parse_field(c, &ft, &root->children[i], 0);
        if (rc != 0)
            return rc;
    }
    return parse_meta(c, st, 2, &root->meta, &root->metalen);
}

/* ---- exported schemas ---------------------------------------------------- */

typedef struct schema_priv {
    char *format, *name, *meta;
    struct ArrowSchema *kids[];  /* then the kids' structs */
} schema_priv;

static void schema_release(struct ArrowSchema *s)
{
    schema_priv *p = s->private_data;
    for (int64_t i = 0; i < s->n_children; i++)
        if (p->kids[i]->release != NULL)
            p->kids[i]->release(p->kids[i]);
    free(p->format);
    free(p->name);
    free(p->meta);
    free(p);
    s->release = NULL;
}

static int export_schema(const field *f, struct ArrowSchema *s)
{
    size_t n = (size_t)f->nchildren;
    schema_priv *p = calloc(1, sizeof *p + n * (sizeof(struct ArrowSchema *) +
                                                sizeof(struct ArrowSchema)));
    if (p == NULL)
        return -1;
    struct ArrowSchema *store = (struct ArrowSchema *)(void *)&p->kids[n];
    for (size_t i = 0; i < n; i++)
        p->kids[i] = &store[i];
    memset(s, 0, sizeof *s);
    s->private_data = p;
    s->release = schema_release;
    s->n_children = (int64_t)n;
    s->children = n ? p->kids : NULL;
    s->flags = f->nullable ? ARROW_FLAG_NULLABLE : 0;
    if ((p->format = dupn(f->format, strlen(f->format))) == NULL ||
        (p->name = dupn(f->name, strlen(f->name))) == NULL ||
        (f->meta != NULL && (p->meta = dupn(f->meta, f->metalen)) == NULL)) {
        schema_release(s);
        return -1;
    }
    s->format = p->format;
    s->name = p->name;
    s->metadata = p->meta;
    for (size_t i = 0; i < n; i++)
        if (export_schema(&f->children[i], p->kids[i]) != 0) {
            schema_release(s);
            return -1;
        }
    return 0;
}

/* ---- record batches ------------------------------------------------------ */

typedef struct array_priv {
    ipc_owner *owner;
    const void *bufs[3];
    struct ArrowArray *kids[]; /* then the kids' structs */
} array_priv;

static const int32_t zero_offsets[2];

static void array_release(struct ArrowArray *a)
{
    array_priv *p = a->private_data;
    for (int64_t i = 0; i < a->n_children; i++)
        if (p->kids[i]->release != NULL)
            p->kids[i]->release(p->kids[i]);
    ipc_owner_unref(p->owner);
    free(p);
    a->release = NULL;
}

/* An array of n children (each still released: release NULL), holding a
 * reference to owner. */
static int array_new(struct ArrowArray *a, int64_t n, ipc_owner *owner)
{
    array_priv *p = calloc(1, sizeof *p + (size_t)n * (sizeof(struct ArrowArray *) +
                                                       sizeof(struct ArrowArray)));
    memset(a, 0, sizeof *a);
    if (p == NULL)
        return -1;
    struct ArrowArray *store = (struct ArrowArray *)(void *)&p->kids[n];
    for (int64_t i = 0; i < n; i++)
        p->kids[i] = &store[i];
    p->owner = owner;
    ipc_owner_ref(owner);
    a->n_children = n;
    a->children = n ? p->kids : NULL;
    a->buffers = p->bufs;
    a->private_data = p;
    a->release = array_release;
    return 0;
}

typedef struct batch_ctx {
    ctx *c;
    const fb_table *rb;
    size_t nodes, bufs;        /* the vectors' element 0 in the flatbuffer */
    uint32_t nnodes, nbufs, inode, ibuf;
    const uint8_t *body;
    int64_t body_len;
    ipc_owner *owner;
} batch_ctx;

static int take_node(batch_ctx *b, const field *f, int64_t *len, int64_t *nulls)
{
    if (b->inode >= b->nnodes)
        return fail(b->c, "field \"%s\": fewer FieldNodes than fields", f->name);
    const uint8_t *p = b->rb->buf + b->nodes + 16 * (size_t)b->inode++;
    *len = le64(p);
    *nulls = le64(p + 8);
    if (*len < 0 || *nulls < 0 || *nulls > *len)
        return fail(b->c, "field \"%s\": length %lld with %lld nulls", f->name,
                    (long long)*len, (long long)*nulls);
    return 0;
}

/* The next Buffer: within the body, 8-aligned. */
static int take_buf(batch_ctx *b, const field *f, const uint8_t **at, size_t *len)
{
    if (b->ibuf >= b->nbufs)
        return fail(b->c, "field \"%s\": fewer Buffers than its layout has", f->name);
    const uint8_t *p = b->rb->buf + b->bufs + 16 * (size_t)b->ibuf++;
    int64_t off = le64(p), n = le64(p + 8);
    if (off < 0 || n < 0 || off > b->body_len || n > b->body_len - off)
        return fail(b->c, "field \"%s\": a buffer of %lld bytes at %lld outside the body of "
                    "%lld", f->name, (long long)n, (long long)off, (long long)b->body_len);
    if (off & 7)
        return fail(b->c, "field \"%s\": a buffer at body offset %lld, not 8-aligned",
                    f->name, (long long)off);
    *at = b->body + off;
    *len = (size_t)n;
    return 0;
}

static int bits_fit(int64_t len, size_t have)
{
    return (uint64_t)len / 8 + ((len & 7) != 0) <= have;
}

/* o[0] >= 0 and o[i] <= o[i + 1] for i < len: no branch in the loop,
 * which GCC vectorizes when asked (it does not at -O2). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
static int offsets_rise(const int32_t *o, int64_t len)
{
    int32_t fall = 0;
    for (int64_t i = 0; i < len; i++)
        fall |= o[i + 1] < o[i];
    return o[0] >= 0 && !fall;
}

/* len + 1 offsets in buffer p of n bytes: from 0 or more, not
 * decreasing; *last is the end offset. */
static int take_offsets(batch_ctx *b, const field *f, int64_t len, const void **out,
                        int64_t *last)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    int rc = take_buf(b, f, &p, &n);
    if (rc != 0)
        return rc;
    *last = 0;
    if (len == 0 && n < 4) {
        *out = zero_offsets;
        return 0;
    }
    if ((uint64_t)len >= n / 4)
        return fail(b->c, "field \"%s\": %lld offsets in a buffer of %zu bytes", f->name,
                    (long long)len + 1, n);
    const int32_t *o = (const int32_t *)(const void *)p; /* 8-aligned: take_buf */
    if (!offsets_rise(o, len))
        return fail(b->c, "field \"%s\": offsets negative or decreasing", f->name);
    *out = p;
    *last = o[len];
    return 0;
}

static int build(batch_ctx *b, const field *f, struct ArrowArray *a)
{
    int64_t len = 0, nulls = 0, last = 0;
    const uint8_t *p = NULL;
    size_t n = 0;
    int rc = take_node(b, f, &len, &nulls);
    if (rc != 0)
        return rc;
    if (array_new(a, f->nchildren, b->owner) != 0)
        return oom(b->c);
    array_priv *ap = a->private_data;
    a->length = len;
    a->null_count = nulls;
    if ((rc = take_buf(b, f, &p, &n)) != 0)
        return rc;
    if (nulls > 0 && !bits_fit(len, n))
        return fail(b->c, "field \"%s\": a validity bitmap of %zu bytes for %lld values",
                    f->name, n, (long long)len);
    ap->bufs[0] = nulls > 0 ? p : NULL;
    a->n_buffers = f->layout == L_STRUCT ? 1 : f->layout == L_VAR ? 3 : 2;
    switch (f->layout) {
    case L_FIXED:
        if ((rc = take_buf(b, f, &p, &n)) != 0)
            return rc;
        if ((uint64_t)len > n / f->width)
            return fail(b->c, "field \"%s\": %lld values of %zu bytes in %zu bytes", f->name,
                        (long long)len, f->width, n);
        ap->bufs[1] = p;
        break;
    case L_BITS:
        if ((rc = take_buf(b, f, &p, &n)) != 0)
            return rc;
        if (!bits_fit(len, n))
            return fail(b->c, "field \"%s\": %lld bits in %zu bytes", f->name,
                        (long long)len, n);
        ap->bufs[1] = p;
        break;
    case L_VAR:
        if ((rc = take_offsets(b, f, len, &ap->bufs[1], &last)) != 0 ||
            (rc = take_buf(b, f, &p, &n)) != 0)
            return rc;
        if ((uint64_t)last > n)
            return fail(b->c, "field \"%s\": offsets up to %lld in %zu bytes of data",
                        f->name, (long long)last, n);
        ap->bufs[2] = p;
        break;
    case L_LIST:
        if ((rc = take_offsets(b, f, len, &ap->bufs[1], &last)) != 0)
            return rc;
        break;
    default:
        break;
    }
    for (int64_t i = 0; i < f->nchildren; i++) {
        struct ArrowArray *kid = ap->kids[i];
        if ((rc = build(b, &f->children[i], kid)) != 0)
            return rc;
        if (f->layout == L_LIST ? last > kid->length : kid->length < len)
            return fail(b->c, "field \"%s\": a child of %lld values for %lld", f->name,
                        (long long)kid->length,
                        (long long)(f->layout == L_LIST ? last : len));
    }
    return 0;
}

/* A RecordBatch message (table rb, body) as a struct array of root's
 * columns. On failure *out is released. */
static int read_batch(ctx *c, const field *root, const fb_table *rb, const uint8_t *body,
                      int64_t body_len, ipc_owner *owner, struct ArrowArray *out)
{
    int64_t len = 0;
    fb_table comp;
    batch_ctx b = {.c = c, .rb = rb, .body = body, .body_len = body_len, .owner = owner};
    if (fb_i64(rb, 0, 0, &len) < 0 || fb_vector(rb, 1, 16, &b.nodes, &b.nnodes) < 0 ||
        fb_vector(rb, 2, 16, &b.bufs, &b.nbufs) < 0)
        return fail(c, "malformed RecordBatch message");
    int rc = fb_table_field(rb, 3, &comp);
    if (rc != 0)
        return rc < 0 ? fail(c, "malformed RecordBatch message")
                      : fail(c, "compressed record batches are not supported");
    if (len < 0)
        return fail(c, "a RecordBatch of %lld rows", (long long)len);
    if (array_new(out, root->nchildren, owner) != 0)
        return oom(c);
    out->length = len;
    out->n_buffers = 1;
    array_priv *ap = out->private_data;
    for (int64_t i = 0; i < root->nchildren && rc == 0; i++) {
        rc = build(&b, &root->children[i], ap->kids[i]);
        if (rc == 0 && ap->kids[i]->length != len)
            rc = fail(c, "column \"%s\" has %lld rows, its batch %lld", root->children[i].name,
                      (long long)ap->kids[i]->length, (long long)len);
    }
    if (rc == 0 && (b.inode != b.nnodes || b.ibuf != b.nbufs))
        rc = fail(c, "a RecordBatch with %u FieldNodes and %u Buffers for %u and %u",
                  b.nnodes, b.nbufs, b.inode, b.ibuf);
    if (rc != 0)
        out->release(out);
    return rc;
}

/* ---- the stream ---------------------------------------------------------- */

typedef struct stream_priv {
    field root;
    struct ArrowArray *batches;
    size_t n, cap, next;
    ipc_owner *owner;
    char err[64];
} stream_priv;

static void stream_free(stream_priv *sp)
{
    for (size_t i = sp->next; i < sp->n; i++)
        if (sp->batches[i].release != NULL)
            sp->batches[i].release(&sp->batches[i]);
    free(sp->batches);
    field_free(&sp->root);
    free(sp);
}

static int stream_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out)
{
    stream_priv *sp = s->private_data;
    if (export_schema(&sp->root, out) != 0) {
        snprintf(sp->err, sizeof sp->err, "out of memory");
        return 12; /* ENOMEM */
    }
    return 0;
}

static int stream_get_next(struct ArrowArrayStream *s, struct ArrowArray *out)
{
    stream_priv *sp = s->private_data;
    if (sp->next == sp->n) {
        memset(out, 0, sizeof *out); /* release NULL: the end */
        return 0;
    }
    *out = sp->batches[sp->next];
    sp->batches[sp->next++].release = NULL; /* moved */
    return 0;
}

static const char *stream_last_error(struct ArrowArrayStream *s)
{
    stream_priv *sp = s->private_data;
    return sp->err[0] ? sp->err : NULL;
}

static void stream_release(struct ArrowArrayStream *s)
{
    stream_priv *sp = s->private_data;
    ipc_owner *owner = sp->owner;
    stream_free(sp);
    s->release = NULL;
    ipc_owner_unref(owner);
}

/* One message at d[pos, n): *pos moves past it. */
static int read_message(ctx *c, stream_priv *sp, const uint8_t *d, size_t n, size_t *pos,
                        size_t chunk, int *eos)
{
    size_t at = *pos;
    if (n - at < 8)
        return fail(c, "chunk %zu: a message cut short at byte %zu", chunk, at);
    if (le32(d + at) != 0xFFFFFFFFu)
        return fail(c, "chunk %zu: no continuation marker at byte %zu", chunk, at);
    int32_t ml = (int32_t)le32(d + at + 4);
    if (ml == 0) {
        *eos = 1;
        *pos = at + 8;
        return 0;
    }
    if (ml < 0 || (size_t)ml > n - at - 8)
        return fail(c, "chunk %zu: metadata of %d bytes at byte %zu past its end", chunk,
                    (int)ml, at);
    fb_table msg, hdr;
    int16_t version;
    uint8_t type;
    int64_t body_len;
    if (fb_root(d + at + 8, (size_t)ml, &msg) < 0 || fb_i16(&msg, 0, 0, &version) < 0 ||
        fb_u8(&msg, 1, 0, &type) < 0 || fb_table_field(&msg, 2, &hdr) != 1 ||
        fb_i64(&msg, 3, 0, &body_len) < 0)
        return fail(c, "chunk %zu: a malformed Message at byte %zu", chunk, at);
    if (version != 3 && version != 4)
        return fail(c, "metadata version %d (V4 and V5 are read)", version + 1);
    size_t body_at = at + 8 + (size_t)ml;
    if (body_len < 0 || (uint64_t)body_len > n - body_at)
        return fail(c, "chunk %zu: a body of %lld bytes at byte %zu past its end", chunk,
                    (long long)body_len, body_at);
    if (body_at & 7)
        return fail(c, "chunk %zu: a body at byte %zu, not 8-aligned", chunk, body_at);
    *pos = body_at + (size_t)body_len;
    if (type == 1) {
        if (sp->root.format != NULL)
            return fail(c, "a second Schema message");
        return parse_schema(c, &hdr, &sp->root);
    }
    if (type == 2)
        return fail(c, "dictionary batches are not supported");
    if (type != 3)
        return fail(c, "a Message of type %u (Schema and RecordBatch are read)", type);
    if (sp->root.format == NULL)
        return fail(c, "a RecordBatch before the Schema");
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? 2 * sp->cap : 8;
        struct ArrowArray *nb = realloc(sp->batches, cap * sizeof *nb);
        if (nb == NULL)
            return oom(c);
        sp->batches = nb;
        sp->cap = cap;
    }
    int rc = read_batch(c, &sp->root, &hdr, d + body_at, body_len, sp->owner,
                        &sp->batches[sp->n]);
    if (rc == 0)
        sp->n++;
    return rc;
}

int ipc_stream_open(const ipc_chunk *chunks, size_t nchunks, ipc_owner *owner,
                    struct ArrowArrayStream *out, char *err, size_t errlen)
{
    ctx c = {err, errlen, 0, 0};
    stream_priv *sp = calloc(1, sizeof *sp);
    if (sp == NULL)
        return oom(&c);
    sp->owner = owner;
    int eos = 0, rc = 0;
    for (size_t i = 0; i < nchunks && rc == 0; i++) {
        size_t pos = 0;
        while (pos < chunks[i].len && rc == 0) {
            if (eos)
                rc = fail(&c, "chunk %zu: bytes after the end-of-stream mark", i);
            else
                rc = read_message(&c, sp, chunks[i].data, chunks[i].len, &pos, i, &eos);
        }
    }
    if (rc == 0 && sp->root.format == NULL)
        rc = fail(&c, "no Schema message");
    if (rc == 0 && !eos)
        rc = fail(&c, "no end-of-stream mark: the stream is cut short");
    if (rc != 0) {
        stream_free(sp);
        return rc;
    }
    ipc_owner_ref(owner);
    out->get_schema = stream_get_schema;
    out->get_next = stream_get_next;
    out->get_last_error = stream_last_error;
    out->release = stream_release;
    out->private_data = sp;
    return 0;
}
