/* Arrow IPC stream writer: Schema and RecordBatch messages (Message.fbs,
 * Schema.fbs) built with the tiny FlatBuffers builder, and the EOS mark. */
#include "molt_db/arrow_ipc.h"
#include "arrow_fb.h"

#include <stdlib.h>
#include <string.h>

/* Schema.fbs: union Type ids, and enums. */
enum {
    T_INT = 2, T_FLOAT = 3, T_BINARY = 4, T_UTF8 = 5, T_BOOL = 6,
    T_DECIMAL = 7, T_DATE = 8, T_TIME = 9, T_TIMESTAMP = 10, T_LIST = 12,
    T_STRUCT = 13,
    T_FSB = 15
};
/* Message.fbs: MessageHeader ids; MetadataVersion V5. */
enum { H_SCHEMA = 1, H_RECORD_BATCH = 3, METADATA_V5 = 4 };

/* How a field's buffers look in a batch, after its validity buffer. */
enum { L_FIXED, L_BITS, L_VAR, L_NONE, L_LIST };

typedef struct ipc_field {
    int type;
    int layout;      /* L_* */
    int width;       /* bytes per value for L_FIXED */
    int a, b;        /* Int: bitWidth, signed; FloatingPoint: precision;
                      * Decimal: precision, scale; Date/Time/Timestamp: unit,
                      * Time bitWidth; FixedSizeBinary: byteWidth */
    char *tz;        /* Timestamp zone or NULL */
    char *name;
    int nullable;
    int nchildren;
    char *meta;      /* copy of the C interface metadata, or NULL */
    int32_t nmeta;
} ipc_field;

struct molt_db_arrow_ipc_writer {
    ipc_field *fields;   /* pre-order, top-level struct excluded */
    size_t nfields, cap;
    size_t ntop;         /* top-level columns */
    molt_db__fb fb;
    molt_db_buf nodes;   /* FieldNode structs of the batch being written */
    molt_db_buf bufs;    /* Buffer structs */
    const void **bodyp;  /* the buffers' memory, in order ... */
    size_t *body_at;     /* ... or, when not SIZE_MAX, an offset in scratch */
    size_t nbody, bodycap;
    molt_db_buf scratch; /* buffers of a slice that need rewriting: bitmaps
                          * not starting at a byte, offsets not at 0 */
};

/* ---- parsing the C interface schema -------------------------------------- */

static int parse_int(const char **s, int *out)
{
    int v = 0, n = 0;
    while (**s >= '0' && **s <= '9' && n < 9) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    *out = v;
    return n > 0;
}

static int time_unit(char c)
{
    switch (c) {
    case 's': return 0;
    case 'm': return 1;
    case 'u': return 2;
    case 'n': return 3;
    default: return -1;
    }
}

/* Fills type/layout/params from a format string; 0 when unsupported. */
static int parse_format(ipc_field *f, const char *fmt)
{
    static const struct { char c; int bits, sign; } ints[] = {
        {'c', 8, 1}, {'C', 8, 0}, {'s', 16, 1}, {'S', 16, 0},
        {'i', 32, 1}, {'I', 32, 0}, {'l', 64, 1}, {'L', 64, 0}};
    f->layout = L_FIXED;
    if (fmt[0] != '\0' && fmt[1] == '\0') {
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            if (fmt[0] == ints[i].c) {
                f->type = T_INT;
                f->a = ints[i].bits;
                f->b = ints[i].sign;
                f->width = ints[i].bits / 8;
                return 1;
            }
        switch (fmt[0]) {
        case 'b': f->type = T_BOOL; f->layout = L_BITS; return 1;
        case 'e': f->type = T_FLOAT; f->a = 0; f->width = 2; return 1;
        case 'f': f->type = T_FLOAT; f->a = 1; f->width = 4; return 1;
        case 'g': f->type = T_FLOAT; f->a = 2; f->width = 8; return 1;
        case 'u': f->type = T_UTF8; f->layout = L_VAR; return 1;
        case 'z': f->type = T_BINARY; f->layout = L_VAR; return 1;
        default: return 0;
        }
    }
    if (strcmp(fmt, "+s") == 0) {
        f->type = T_STRUCT;
        f->layout = L_NONE;
        return 1;
    }
    if (strcmp(fmt, "+l") == 0) {
        f->type = T_LIST;
        f->layout = L_LIST;
        return 1;
    }
    if (strncmp(fmt, "w:", 2) == 0) {
        const char *p = fmt + 2;
        f->type = T_FSB;
        return parse_int(&p, &f->a) && *p == '\0' && f->a > 0 &&
               (f->width = f->a, 1);
    }
    if (strncmp(fmt, "d:", 2) == 0) {
        const char *p = fmt + 2;
        int bits = 128;
        if (!parse_int(&p, &f->a) || *p++ != ',')
            return 0;
        int neg = *p == '-';
        p += neg;
        if (!parse_int(&p, &f->b))
            return 0;
        if (neg)
            f->b = -f->b;
        if (*p == ',') {
            p++;
            if (!parse_int(&p, &bits))
                return 0;
        }
        f->type = T_DECIMAL;
        f->width = 16;
        return *p == '\0' && bits == 128;
    }
    if (strcmp(fmt, "tdD") == 0) {
        f->type = T_DATE; f->a = 0; f->width = 4; return 1;
    }
    if (strcmp(fmt, "tdm") == 0) {
        f->type = T_DATE; f->a = 1; f->width = 8; return 1;
    }
    if (strncmp(fmt, "tt", 2) == 0 && fmt[2] && !fmt[3]) {
        f->type = T_TIME;
        f->a = time_unit(fmt[2]);
        f->width = f->a <= 1 ? 4 : 8;
        f->b = f->width * 8;
        return f->a >= 0;
    }
    if (strncmp(fmt, "ts", 2) == 0 && fmt[2] && fmt[3] == ':') {
        f->type = T_TIMESTAMP;
        f->a = time_unit(fmt[2]);
        f->width = 8;
        if (fmt[4] != '\0' && (f->tz = strdup(fmt + 4)) == NULL)
            return -1;
        return f->a >= 0;
    }
    return 0;
}

/* Length of C interface metadata (int32 count, then int32-length-prefixed
 * keys and values), or -1 when malformed. */
static long meta_len(const char *m, int32_t *count)
{
    int32_t n, l;
    long len = 4;
    memcpy(&n, m, 4);
    if (n < 0 || n > 1024)
        return -1;
    *count = n;
    for (int32_t i = 0; i < 2 * n; i++) {
        memcpy(&l, m + len, 4);
        if (l < 0 || l > (1 << 20))
            return -1;
        len += 4 + l;
    }
    return len;
}

static int add_field(molt_db_arrow_ipc_writer *w, const struct ArrowSchema *s,
                     int depth, molt_db_error *err)
{
    if (depth > 32)
        return molt_db_error_set(err, MOLT_DB_ETYPE, "arrow ipc: nesting too deep");
    if (s == NULL || s->format == NULL || s->dictionary != NULL)
        return molt_db_error_set(err, MOLT_DB_ETYPE,
                                 "arrow ipc: missing format or dictionary field");
    if (w->nfields == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        ipc_field *nf = realloc(w->fields, cap * sizeof *nf);
        if (nf == NULL)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
        w->fields = nf;
        w->cap = cap;
    }
    ipc_field *f = &w->fields[w->nfields++];
    memset(f, 0, sizeof *f);
    f->nullable = (s->flags & ARROW_FLAG_NULLABLE) != 0;
    f->nchildren = (int)s->n_children;
    f->name = strdup(s->name ? s->name : "");
    if (f->name == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    if (s->metadata != NULL) {
        long ml = meta_len(s->metadata, &f->nmeta);
        if (ml < 0)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "arrow ipc: field \"%s\": bad metadata",
                                     f->name);
        if ((f->meta = malloc((size_t)ml)) == NULL)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
        memcpy(f->meta, s->metadata, (size_t)ml);
    }
    int ok = parse_format(f, s->format);
    if (ok < 0)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    if (!ok || (f->type != T_STRUCT && f->type != T_LIST && s->n_children != 0) ||
        (f->type == T_LIST && s->n_children != 1))
        return molt_db_error_set(err, MOLT_DB_ETYPE,
                                 "arrow ipc: field \"%s\": format \"%s\" is not "
                                 "supported", f->name, s->format);
    /* f may move when the array grows: do not use it below */
    for (int64_t i = 0; i < s->n_children; i++) {
        int rc = add_field(w, s->children[i], depth + 1, err);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    return MOLT_DB_OK;
}

void molt_db_arrow_ipc_writer_free(molt_db_arrow_ipc_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nfields; i++) {
        free(w->fields[i].name);
        free(w->fields[i].tz);
        free(w->fields[i].meta);
    }
    free(w->fields);
    molt_db__fb_free(&w->fb);
    molt_db_buf_free(&w->nodes);
    molt_db_buf_free(&w->bufs);
    free(w->bodyp);
    free(w->body_at);
    molt_db_buf_free(&w->scratch);
    free(w);
}

int molt_db_arrow_ipc_writer_new(const struct ArrowSchema *schema,
                                 molt_db_arrow_ipc_writer **out,
                                 molt_db_error *err)
{
    *out = NULL;
    if (schema == NULL || schema->format == NULL ||
        strcmp(schema->format, "+s") != 0)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow ipc: the schema must be a struct (+s)");
    molt_db_arrow_ipc_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    w->ntop = (size_t)schema->n_children;
    for (int64_t i = 0; i < schema->n_children; i++) {
        int rc = add_field(w, schema->children[i], 0, err);
        if (rc != MOLT_DB_OK) {
            molt_db_arrow_ipc_writer_free(w);
            return rc;
        }
    }
    *out = w;
    return MOLT_DB_OK;
}

/* ---- the encapsulated message -------------------------------------------- */

static void put_le32(molt_db_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    molt_db_buf_put(b, x, 4);
}

static void put_le64(molt_db_buf *b, uint64_t v)
{
    put_le32(b, (uint32_t)v);
    put_le32(b, (uint32_t)(v >> 32));
}

static const uint8_t zeros8[8];

static size_t pad8(size_t n)
{
    return (8 - (n & 7)) & 7;
}

/* Continuation marker, metadata length, the Message flatbuffer padded so
 * that the body starts 8-aligned. */
static void put_metadata(molt_db_buf *out, const molt_db__fb *fb)
{
    size_t n = fb->size; /* a multiple of 8 already */
    size_t pad = pad8(8 + n);
    put_le32(out, 0xFFFFFFFFu);
    put_le32(out, (uint32_t)(n + pad));
    molt_db_buf_put(out, molt_db__fb_data(fb), n);
    molt_db_buf_put(out, zeros8, pad);
}

static molt_db__fb_ref message(molt_db__fb *fb, int header_type,
                               molt_db__fb_ref header, int64_t body_len)
{
    molt_db__fb_start(fb);
    molt_db__fb_add_i64(fb, 3, body_len);
    molt_db__fb_add_ref(fb, 2, header);
    molt_db__fb_add_i16(fb, 0, METADATA_V5);
    molt_db__fb_add_u8(fb, 1, (uint8_t)header_type);
    return molt_db__fb_end(fb);
}

/* ---- Schema message ---------------------------------------------------- */

static molt_db__fb_ref type_table(molt_db__fb *fb, const ipc_field *f)
{
    molt_db__fb_ref tz = 0;
    if (f->type == T_TIMESTAMP && f->tz)
        tz = molt_db__fb_string(fb, f->tz, strlen(f->tz));
    molt_db__fb_start(fb);
    switch (f->type) {
    case T_INT:
        molt_db__fb_add_i32(fb, 0, f->a);
        molt_db__fb_add_u8(fb, 1, (uint8_t)f->b);
        break;
    case T_FLOAT:
        molt_db__fb_add_i16(fb, 0, (int16_t)f->a);
        break;
    case T_DECIMAL:
        molt_db__fb_add_i32(fb, 0, f->a);
        molt_db__fb_add_i32(fb, 1, f->b);
        molt_db__fb_add_i32(fb, 2, 128);
        break;
    case T_DATE:
        molt_db__fb_add_i16(fb, 0, (int16_t)f->a);
        break;
    case T_TIME:
        molt_db__fb_add_i32(fb, 1, f->b);
        molt_db__fb_add_i16(fb, 0, (int16_t)f->a);
        break;
    case T_TIMESTAMP:
        if (tz)
            molt_db__fb_add_ref(fb, 1, tz);
        molt_db__fb_add_i16(fb, 0, (int16_t)f->a);
        break;
    case T_FSB:
        molt_db__fb_add_i32(fb, 0, f->a);
        break;
    default: /* Utf8, Binary, Bool, Struct_, List: empty tables */
        break;
    }
    return molt_db__fb_end(fb);
}

static molt_db__fb_ref metadata_vec(molt_db__fb *fb, const ipc_field *f)
{
    molt_db__fb_ref kv[16];
    int32_t n = f->nmeta < 16 ? f->nmeta : 16;
    const char *p = f->meta + 4;
    for (int32_t i = 0; i < n; i++) {
        int32_t kl, vl;
        memcpy(&kl, p, 4);
        const char *k = p + 4;
        memcpy(&vl, k + kl, 4);
        const char *v = k + kl + 4;
        p = v + vl;
        molt_db__fb_ref ks = molt_db__fb_string(fb, k, (size_t)kl);
        molt_db__fb_ref vs = molt_db__fb_string(fb, v, (size_t)vl);
        molt_db__fb_start(fb);
        molt_db__fb_add_ref(fb, 0, ks);
        molt_db__fb_add_ref(fb, 1, vs);
        kv[i] = molt_db__fb_end(fb);
    }
    return molt_db__fb_vec_refs(fb, kv, (size_t)n);
}

/* Writes field *i (and its subtree); *i moves past it. */
static molt_db__fb_ref field_table(molt_db__fb *fb, const ipc_field *fields,
                                   size_t *i)
{
    const ipc_field *f = &fields[(*i)++];
    molt_db__fb_ref kids_small[8] = {0}, *kids = kids_small;
    if (f->nchildren > 8) {
        kids = malloc((size_t)f->nchildren * sizeof *kids);
        if (kids == NULL) {
            fb->failed = 1;
            return 0;
        }
    }
    for (int c = 0; c < f->nchildren; c++)
        kids[c] = field_table(fb, fields, i);
    molt_db__fb_ref children = molt_db__fb_vec_refs(fb, kids, (size_t)f->nchildren);
    if (kids != kids_small)
        free(kids);
    molt_db__fb_ref meta = f->meta ? metadata_vec(fb, f) : 0;
    molt_db__fb_ref type = type_table(fb, f);
    molt_db__fb_ref name = molt_db__fb_string(fb, f->name, strlen(f->name));
    molt_db__fb_start(fb);
    molt_db__fb_add_ref(fb, 0, name);
    molt_db__fb_add_ref(fb, 3, type);
    molt_db__fb_add_ref(fb, 5, children);
    if (meta)
        molt_db__fb_add_ref(fb, 6, meta);
    molt_db__fb_add_u8(fb, 1, (uint8_t)f->nullable);
    molt_db__fb_add_u8(fb, 2, (uint8_t)f->type);
    return molt_db__fb_end(fb);
}

int molt_db_arrow_ipc_write_schema(molt_db_arrow_ipc_writer *w,
                                   molt_db_buf *out, molt_db_error *err)
{
    molt_db__fb *fb = &w->fb;
    molt_db__fb_reset(fb);
    molt_db__fb_ref *top = calloc(w->ntop ? w->ntop : 1, sizeof *top);
    if (top == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    size_t i = 0;
    for (size_t c = 0; c < w->ntop; c++)
        top[c] = field_table(fb, w->fields, &i);
    molt_db__fb_ref fields = molt_db__fb_vec_refs(fb, top, w->ntop);
    free(top);
    molt_db__fb_start(fb);
    molt_db__fb_add_ref(fb, 1, fields);
    molt_db__fb_add_i16(fb, 0, 0); /* Little endian */
    molt_db__fb_ref schema = molt_db__fb_end(fb);
    molt_db__fb_finish(fb, message(fb, H_SCHEMA, schema, 0));
    if (molt_db__fb_ok(fb) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    size_t before = out->len;
    put_metadata(out, fb);
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        out->len = before;
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    }
    return MOLT_DB_OK;
}

/* ---- RecordBatch message -------------------------------------------------- */

/* Adds a body buffer: len bytes at p, or (p NULL, at != SIZE_MAX) at
 * offset `at` of the scratch buffer, which may still move. */
static int add_body(molt_db_arrow_ipc_writer *w, const void *p, size_t at,
                    size_t len, uint64_t *body_off)
{
    if (w->nbody == w->bodycap) {
        size_t cap = w->bodycap ? w->bodycap * 2 : 32;
        const void **nb = realloc(w->bodyp, cap * sizeof *nb);
        if (nb != NULL)
            w->bodyp = nb;
        size_t *na = realloc(w->body_at, cap * sizeof *na);
        if (na != NULL)
            w->body_at = na;
        if (nb == NULL || na == NULL)
            return MOLT_DB_ENOMEM;
        w->bodycap = cap;
    }
    if (len > 0 && p == NULL && at == SIZE_MAX)
        return MOLT_DB_EINVAL;
    w->bodyp[w->nbody] = p;
    w->body_at[w->nbody++] = at;
    put_le64(&w->bufs, *body_off);
    put_le64(&w->bufs, len);
    *body_off += len + pad8(len);
    return molt_db_buf_ok(&w->bufs);
}

static int add_buffer(molt_db_arrow_ipc_writer *w, const void *p, size_t len,
                      uint64_t *body_off)
{
    return add_body(w, p, SIZE_MAX, len, body_off);
}

/* Bits [start, start + n) of a bitmap, as a buffer starting at bit 0:
 * the bitmap itself when it starts on a byte and is the whole array or
 * whole bytes, else a shifted copy whose bits past n are 0 (as a builder
 * leaves them). */
static int add_bits(molt_db_arrow_ipc_writer *w, const uint8_t *bits,
                    int64_t start, size_t n, int whole, uint64_t *body_off)
{
    size_t bytes = (n + 7) / 8;
    if (bits == NULL || ((start & 7) == 0 && (whole || (n & 7) == 0)))
        return add_buffer(w, bits ? bits + (start >> 3) : NULL, bytes, body_off);
    size_t at = w->scratch.len;
    if (molt_db_buf_reserve(&w->scratch, bytes) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    const uint8_t *src = bits + (start >> 3);
    unsigned sh = (unsigned)(start & 7);
    size_t readable = (sh + n + 7) / 8;
    uint8_t *dst = w->scratch.data + at;
    for (size_t j = 0; j < bytes; j++) {
        unsigned hi = j + 1 < readable ? (unsigned)src[j + 1] << (8 - sh) : 0;
        dst[j] = (uint8_t)((src[j] >> sh) | hi);
    }
    if (n & 7)
        dst[bytes - 1] &= (uint8_t)((1u << (n & 7)) - 1);
    w->scratch.len += bytes;
    return add_body(w, NULL, at, bytes, body_off);
}

/* Offsets [start, start + n] as a buffer starting at 0: the offsets
 * themselves when offs[start] is 0, else rebased copies. */
static int add_offsets(molt_db_arrow_ipc_writer *w, const int32_t *offs,
                       int64_t start, size_t n, uint64_t *body_off)
{
    if (offs == NULL)
        return add_buffer(w, NULL, 0, body_off);
    int32_t base = offs[start];
    if (base == 0)
        return add_buffer(w, offs + start, (n + 1) * 4, body_off);
    size_t at = w->scratch.len;
    if (molt_db_buf_reserve(&w->scratch, (n + 1) * 4) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    for (size_t j = 0; j <= n; j++) {
        int32_t v = offs[start + (int64_t)j] - base;
        memcpy(w->scratch.data + at + 4 * j, &v, 4);
    }
    w->scratch.len += (n + 1) * 4;
    return add_body(w, NULL, at, (n + 1) * 4, body_off);
}

static int64_t count_nulls(const uint8_t *bits, int64_t start, int64_t n)
{
    int64_t set = 0;
    for (int64_t i = start; i < start + n; i++)
        set += (bits[i >> 3] >> (i & 7)) & 1;
    return n - set;
}

/* The first and the end offset of entries [start, start + n), checked:
 * not negative, not decreasing (at the ends), within `limit` values. */
static int offsets_span(const int32_t *offs, int64_t start, size_t n,
                        int64_t limit, int64_t *lo, int64_t *hi)
{
    *lo = *hi = 0;
    if (offs == NULL)
        return n == 0;
    *lo = offs[start];
    *hi = offs[start + (int64_t)n];
    return *lo >= 0 && *hi >= *lo && *hi <= limit;
}

/* Collects the nodes and buffers of field *i over values [rel, rel + n)
 * of array a (rel counts from a's own offset), pre-order. A slice -- an
 * offset in a, in its parent, or a list's child range -- is written as
 * an array of its own, starting at 0. */
static int walk(molt_db_arrow_ipc_writer *w, size_t *i,
                const struct ArrowArray *a, int64_t rel, size_t n,
                uint64_t *off, molt_db_error *err)
{
    const ipc_field *f = &w->fields[(*i)++];
    if (a == NULL || a->offset < 0 || a->length < 0 ||
        a->n_children != f->nchildren || a->buffers == NULL ||
        a->n_buffers != (f->layout == L_NONE ? 1 : f->layout == L_VAR ? 3 : 2) ||
        (a->n_children > 0 && a->children == NULL) ||
        rel < 0 || rel > a->length || n > (size_t)(a->length - rel) ||
        n > SIZE_MAX / 16)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow ipc: field \"%s\": array does not match "
                                 "its schema (or is shorter than its parent)",
                                 f->name);
    int64_t start = a->offset + rel; /* in a's buffers */
    const uint8_t *validity = a->buffers[0];
    int whole = rel == 0 && (size_t)a->length == n;
    int64_t nulls = whole ? a->null_count : -1;
    if (validity == NULL)
        nulls = 0;
    else if (nulls < 0)
        nulls = count_nulls(validity, start, (int64_t)n);
    put_le64(&w->nodes, (uint64_t)n);
    put_le64(&w->nodes, (uint64_t)nulls);
    int rc = add_bits(w, nulls ? validity : NULL, start, nulls ? n : 0, whole, off);
    int64_t lo = 0, hi = 0;
    if (rc == MOLT_DB_OK) {
        switch (f->layout) {
        case L_BITS:
            rc = add_bits(w, a->buffers[1], start, n, whole, off);
            break;
        case L_FIXED:
            rc = add_buffer(w, a->buffers[1] ? (const uint8_t *)a->buffers[1] +
                                                   (size_t)start * (size_t)f->width
                                             : NULL,
                            n * (size_t)f->width, off);
            break;
        case L_VAR:
        case L_LIST:
            if (!offsets_span(a->buffers[1], start, n,
                              f->layout == L_LIST ? a->children[0]->length : INT32_MAX,
                              &lo, &hi))
                return molt_db_error_set(err, MOLT_DB_EINVAL,
                                         "arrow ipc: field \"%s\": bad offsets",
                                         f->name);
            rc = add_offsets(w, a->buffers[1], start, n, off);
            if (rc == MOLT_DB_OK && f->layout == L_VAR)
                rc = add_buffer(w, a->buffers[2] ? (const uint8_t *)a->buffers[2] + lo
                                                 : NULL,
                                (size_t)(hi - lo), off);
            break;
        default:
            break;
        }
    }
    if (rc != MOLT_DB_OK)
        return molt_db_error_set(err, rc, "arrow ipc: field \"%s\": %s", f->name,
                                 rc == MOLT_DB_ENOMEM ? "out of memory"
                                                      : "missing buffer");
    for (int c = 0; c < f->nchildren; c++) {
        /* a struct's offset applies to its children; a list's entries
         * are a range of its child */
        rc = f->type == T_STRUCT ? walk(w, i, a->children[c], start, n, off, err)
                                 : walk(w, i, a->children[c], lo, (size_t)(hi - lo),
                                        off, err);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    return MOLT_DB_OK;
}

int molt_db_arrow_ipc_write_batch(molt_db_arrow_ipc_writer *w,
                                  const struct ArrowArray *batch,
                                  molt_db_buf *out, molt_db_error *err)
{
    if (batch == NULL || batch->release == NULL ||
        (size_t)batch->n_children != w->ntop || batch->offset < 0 ||
        batch->length < 0 || batch->children == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow ipc: the batch does not match the schema");
    molt_db_buf_reset(&w->nodes);
    molt_db_buf_reset(&w->bufs);
    molt_db_buf_reset(&w->scratch);
    w->nbody = 0;
    uint64_t body_len = 0;
    size_t i = 0;
    for (size_t c = 0; c < w->ntop; c++) {
        /* the batch is a struct: its offset applies to every column */
        if (batch->children[c] == NULL ||
            batch->children[c]->length < batch->offset + batch->length)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "arrow ipc: column %zu has %lld rows, the "
                                     "batch %lld from %lld", c,
                                     batch->children[c] ? (long long)batch->children[c]->length : 0LL,
                                     (long long)batch->length, (long long)batch->offset);
        int rc = walk(w, &i, batch->children[c], batch->offset,
                      (size_t)batch->length, &body_len, err);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    if (molt_db_buf_ok(&w->nodes) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");

    molt_db__fb *fb = &w->fb;
    molt_db__fb_reset(fb);
    molt_db__fb_ref bufs = molt_db__fb_vec_structs(fb, w->bufs.data, w->nbody,
                                                   16, 8);
    molt_db__fb_ref nodes = molt_db__fb_vec_structs(fb, w->nodes.data,
                                                    w->nodes.len / 16, 16, 8);
    molt_db__fb_start(fb);
    molt_db__fb_add_i64(fb, 0, batch->length);
    molt_db__fb_add_ref(fb, 1, nodes);
    molt_db__fb_add_ref(fb, 2, bufs);
    molt_db__fb_ref rb = molt_db__fb_end(fb);
    molt_db__fb_finish(fb, message(fb, H_RECORD_BATCH, rb, (int64_t)body_len));
    if (molt_db__fb_ok(fb) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");

    size_t before = out->len;
    if (molt_db_buf_reserve(out, 8 + fb->size + 8 + body_len) != MOLT_DB_OK) {
        out->len = before;
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    }
    put_metadata(out, fb);
    const uint8_t *spec = w->bufs.data;
    for (size_t b = 0; b < w->nbody; b++) {
        uint64_t len = 0;
        for (int k = 7; k >= 0; k--) /* written little-endian */
            len = (len << 8) | spec[b * 16 + 8 + (size_t)k];
        molt_db_buf_put(out, w->body_at[b] == SIZE_MAX
                                 ? w->bodyp[b]
                                 : w->scratch.data + w->body_at[b],
                        (size_t)len);
        molt_db_buf_put(out, zeros8, pad8((size_t)len));
    }
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        out->len = before;
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    }
    return MOLT_DB_OK;
}

int molt_db_arrow_ipc_write_eos(molt_db_buf *out)
{
    size_t before = out->len;
    put_le32(out, 0xFFFFFFFFu);
    put_le32(out, 0);
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        out->len = before;
        return MOLT_DB_ENOMEM;
    }
    return MOLT_DB_OK;
}
