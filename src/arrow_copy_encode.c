/* Arrow batches to binary COPY tuples (see arrow_copy.h). */
#include "molt_db/arrow_copy.h"
#include "molt_db/types.h"
#include "molt_db/value.h"
#include "arrow_kind.h"
#include "types_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Arrays have at most 6 dimensions (PostgreSQL's MAXDIM). */
#define MAX_DIMS 6
/* Arrays of ranges of ...: as deep as the reader builds them. */
#define MAX_DEPTH 4

/* A column is read as an Arrow kind (molt_db__arrow_kind) of a scalar,
 * or as one of these containers. */
enum {
    E_ARRAY = MOLT_DB__AK_STRUCT + 1, /* Struct<lower_bounds: List<Int32>, values: List<..T>> */
    E_LIST,       /* List<..List<T>>: an array with lower bounds 1 */
    E_RANGE       /* Struct<empty, lower: Struct<value, inclusive>, upper> */
};

typedef struct enc_col enc_col;

struct enc_col {
    int kind;
    uint32_t oid;
    const molt_db__scalar *t; /* oid's line in the type table (scalars) */
    molt_db_buf *scratch;     /* the encoder's, for values parsed from text */
    int32_t scale;   /* Decimal128 */
    int ndim;        /* arrays: List levels down to the elements */
    enc_col *elem;   /* arrays: the elements; ranges: the bounds' values */
    char name[64];
};

struct molt_db_copy_encoder {
    size_t n;
    enc_col *cols;
    molt_db_buf scratch;
};

/* Arrow formats of the scalar kinds (a timestamp with a zone: "tsu:" and
 * its name). */
static const struct {
    const char *format;
    int kind;
} formats[] = {
    {"b", MOLT_DB__AK_BOOL},    {"s", MOLT_DB__AK_I16},      {"i", MOLT_DB__AK_I32},
    {"l", MOLT_DB__AK_I64},     {"I", MOLT_DB__AK_U32},      {"f", MOLT_DB__AK_F32},
    {"g", MOLT_DB__AK_F64},     {"u", MOLT_DB__AK_UTF8},     {"z", MOLT_DB__AK_BINARY},
    {"w:16", MOLT_DB__AK_UUID}, {"tdD", MOLT_DB__AK_DATE32}, {"ttu", MOLT_DB__AK_TIME64},
    {"tsu:", MOLT_DB__AK_TS},   {"+s", MOLT_DB__AK_STRUCT}};

static int src_kind(const struct ArrowSchema *s, int32_t *scale)
{
    const char *f = s->format;
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(f, formats[i].format) == 0)
            return formats[i].kind;
    if (strncmp(f, "tsu:", 4) == 0)
        return MOLT_DB__AK_TSTZ;
    if (strncmp(f, "d:", 2) == 0) {
        const char *comma = strchr(f, ',');
        if (comma == NULL)
            return -1;
        char *end;
        long sc = strtol(comma + 1, &end, 10);
        if ((*end != '\0' && strcmp(end, ",128") != 0) || sc < 0 || sc > 38)
            return -1;
        *scale = (int32_t)sc;
        return MOLT_DB__AK_DEC128;
    }
    return -1;
}

/* Whether a Struct s has the children of t's parts, in order. */
static int parts_match(const struct ArrowSchema *s, const molt_db__scalar *t)
{
    int32_t scale;
    if (t->nparts == 0 || (size_t)s->n_children != t->nparts)
        return 0;
    for (size_t i = 0; i < t->nparts; i++)
        if (s->children[i] == NULL || src_kind(s->children[i], &scale) != t->parts[i].kind)
            return 0;
    return 1;
}

static int is_bool(const struct ArrowSchema *s)
{
    return s != NULL && s->format != NULL && strcmp(s->format, "b") == 0;
}

static int is_list(const struct ArrowSchema *s)
{
    return s != NULL && s->format != NULL && strcmp(s->format, "+l") == 0 &&
           s->n_children == 1 && s->children[0] != NULL;
}

/* The schema of an array's elements under `levels` of List (the levels
 * counted into *ndim), or NULL past MAX_DIMS. */
static const struct ArrowSchema *list_items(const struct ArrowSchema *l, int *ndim)
{
    *ndim = 0;
    while (is_list(l)) {
        if (++*ndim > MAX_DIMS)
            return NULL;
        l = l->children[0];
    }
    return *ndim ? l : NULL;
}

/* Whether s is the reader's range struct: empty, lower, upper. */
static int is_range_struct(const struct ArrowSchema *s)
{
    if (strcmp(s->format, "+s") != 0 || s->n_children != 3 ||
        !is_bool(s->children[0]))
        return 0;
    for (int i = 1; i <= 2; i++) {
        const struct ArrowSchema *b = s->children[i];
        if (b == NULL || b->format == NULL || strcmp(b->format, "+s") != 0 ||
            b->n_children != 2 || b->children[0] == NULL ||
            !is_bool(b->children[1]))
            return 0;
    }
    return 1;
}

/* Whether Arrow kind `kind` (schema s) goes into type t: its line says. */
static int accepts(int kind, const struct ArrowSchema *s, const molt_db__scalar *t)
{
    if (t == NULL || ((t->copy_from >> kind) & 1) == 0)
        return 0;
    return kind != MOLT_DB__AK_STRUCT || parts_match(s, t);
}

static void col_free(enc_col *ec)
{
    if (ec != NULL && ec->elem != NULL) {
        col_free(ec->elem);
        free(ec->elem);
    }
}

static int col_setup(enc_col *ec, const struct ArrowSchema *s, uint32_t oid,
                     int depth, molt_db_error *err);

/* An array or range column: the shape of s, then its elements. */
static int nested_setup(enc_col *ec, const struct ArrowSchema *s,
                        const molt_db_type_info *t, int depth, molt_db_error *err)
{
    const struct ArrowSchema *items = NULL;
    if (t->kind == MOLT_DB_KIND_ARRAY) {
        if (is_list(s)) {
            ec->kind = E_LIST;
            items = list_items(s, &ec->ndim);
        } else if (strcmp(s->format, "+s") == 0 && s->n_children == 2 &&
                   is_list(s->children[0]) &&
                   strcmp(s->children[0]->children[0]->format, "i") == 0) {
            ec->kind = E_ARRAY;
            items = list_items(s->children[1], &ec->ndim);
        }
    } else if (is_range_struct(s)) {
        ec->kind = E_RANGE;
        items = s->children[1]->children[0];
    }
    if (items == NULL)
        return -1;
    if ((ec->elem = calloc(1, sizeof *ec->elem)) == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow copy: out of memory");
    memcpy(ec->elem->name, ec->name, sizeof ec->name);
    ec->elem->scratch = ec->scratch;
    return col_setup(ec->elem, items, t->element, depth + 1, err);
}

/* ec for values of Arrow type s going into PostgreSQL type oid: OK, an
 * error already set, or -1 for "these do not go together". */
static int col_setup(enc_col *ec, const struct ArrowSchema *s, uint32_t oid,
                     int depth, molt_db_error *err)
{
    ec->oid = oid;
    if (s == NULL || s->format == NULL)
        return -1;
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    if (t != NULL && depth < MAX_DEPTH &&
        (t->kind == MOLT_DB_KIND_ARRAY || t->kind == MOLT_DB_KIND_RANGE))
        return nested_setup(ec, s, t, depth, err);
    ec->t = molt_db__scalar_of(oid);
    ec->kind = src_kind(s, &ec->scale);
    return ec->kind >= 0 && accepts(ec->kind, s, ec->t) ? MOLT_DB_OK : -1;
}

int molt_db_copy_encoder_new(const struct ArrowSchema *schema,
                             const uint32_t *oids, size_t n,
                             molt_db_copy_encoder **out, molt_db_error *err)
{
    *out = NULL;
    if (schema == NULL || schema->format == NULL ||
        strcmp(schema->format, "+s") != 0 || (size_t)schema->n_children != n ||
        n > 1600)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow copy: the schema must be a struct of the "
                                 "%zu target columns", n);
    molt_db_copy_encoder *e = calloc(1, sizeof *e);
    if (e == NULL || (e->cols = calloc(n ? n : 1, sizeof *e->cols)) == NULL) {
        free(e);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow copy: out of memory");
    }
    e->n = n;
    for (size_t i = 0; i < n; i++) {
        const struct ArrowSchema *c = schema->children[i];
        enc_col *ec = &e->cols[i];
        snprintf(ec->name, sizeof ec->name, "%s", c->name ? c->name : "");
        ec->scratch = &e->scratch;
        int rc = col_setup(ec, c, oids[i], 0, err);
        if (rc != MOLT_DB_OK) {
            const char *tn = molt_db_type_name(oids[i]);
            if (rc < 0)
                rc = molt_db_error_set(err, MOLT_DB_ETYPE,
                                       "arrow copy: column \"%s\": Arrow \"%s\" "
                                       "cannot go into %s", ec->name,
                                       c->format ? c->format : "?",
                                       tn ? tn : "this column's type");
            molt_db_copy_encoder_free(e);
            return rc;
        }
    }
    *out = e;
    return MOLT_DB_OK;
}

void molt_db_copy_encoder_free(molt_db_copy_encoder *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        col_free(&e->cols[i]);
    free(e->cols);
    molt_db_buf_free(&e->scratch);
    free(e);
}

void molt_db_copy_encode_header(molt_db_buf *out)
{
    static const uint8_t hdr[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF,
                                    '\r', '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0};
    molt_db_buf_put(out, hdr, sizeof hdr);
}

void molt_db_copy_encode_trailer(molt_db_buf *out)
{
    molt_db_buf_put_u16(out, 0xFFFF);
}

static int is_valid(const struct ArrowArray *a, int64_t i)
{
    const uint8_t *v = a->null_count == 0 ? NULL : a->buffers[0];
    return v == NULL || ((v[i >> 3] >> (i & 7)) & 1);
}

/* Reads element i (already offset) of a fixed-width buffer. */
#define AT(a, type, i) (((const type *)(a)->buffers[1])[(i)])

static int put_field(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                     molt_db_buf *out);

/* Entry i (physical) of list l: its children [*lo, *hi) of l's child, as
 * physical indexes there; EINVAL unless the offsets are in bounds. */
static int list_span(const struct ArrowArray *l, int64_t i, int64_t *lo, int64_t *hi)
{
    if (l->n_children != 1 || l->buffers[1] == NULL)
        return MOLT_DB_EINVAL;
    const int32_t *off = l->buffers[1];
    const struct ArrowArray *kid = l->children[0];
    if (off[i] < 0 || off[i + 1] < off[i] || off[i + 1] > kid->length)
        return MOLT_DB_EINVAL;
    *lo = kid->offset + off[i];
    *hi = kid->offset + off[i + 1];
    return MOLT_DB_OK;
}

/* Writes a length placeholder; put_len_patch fills it in. */
static size_t put_len_mark(molt_db_buf *out)
{
    size_t at = out->len;
    molt_db_buf_put_u32(out, 0);
    return at;
}

static int put_len_patch(molt_db_buf *out, size_t at)
{
    if (molt_db_buf_ok(out) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    if (out->len - at - 4 > (size_t)INT32_MAX)
        return MOLT_DB_ERANGE;
    molt_db_buf_patch_u32(out, at, (uint32_t)(out->len - at - 4));
    return MOLT_DB_OK;
}

/* A PostgreSQL array (array_send's layout) from entry i of `values`, a
 * List nested ec->ndim deep; lb is the lower_bounds list or NULL (all
 * 1). Every level must be rectangular and no sub-list NULL: PostgreSQL
 * has neither. An empty top list is the empty array. */
static int put_array(const enc_col *ec, const struct ArrowArray *values,
                     int64_t i, const struct ArrowArray *lb, int64_t lbi,
                     molt_db_buf *out)
{
    int32_t dims[MAX_DIMS], lbounds[MAX_DIMS];
    int64_t lo, hi;
    const struct ArrowArray *level = values;
    int rc = list_span(level, i, &lo, &hi);
    if (rc != MOLT_DB_OK)
        return rc;
    int ndim = hi > lo ? ec->ndim : 0;
    if (ndim > 0)
        dims[0] = (int32_t)(hi - lo);
    /* each deeper level: every entry of the one above has dims[k] children */
    for (int k = 1; k < ndim; k++) {
        level = level->children[0];
        int64_t first = lo, last = hi, klo = 0, khi = 0;
        for (int64_t e = first; e < last; e++) {
            int64_t elo, ehi;
            if (!is_valid(level, e) || (rc = list_span(level, e, &elo, &ehi)) != MOLT_DB_OK)
                return MOLT_DB_EINVAL;
            if (e == first) {
                klo = elo;
                dims[k] = (int32_t)(ehi - elo);
            } else if (ehi - elo != dims[k] || elo != khi) {
                return MOLT_DB_EINVAL; /* ragged */
            }
            khi = ehi;
        }
        if (dims[k] == 0)
            return MOLT_DB_EINVAL; /* PostgreSQL has no zero-length inner dimension */
        lo = klo;
        hi = khi;
    }
    const struct ArrowArray *items = ndim ? level->children[0] : NULL;
    for (int k = 0; k < ndim; k++)
        lbounds[k] = 1;
    if (lb != NULL && ndim > 0 && is_valid(lb, lbi)) {
        int64_t blo, bhi;
        if ((rc = list_span(lb, lbi, &blo, &bhi)) != MOLT_DB_OK)
            return rc;
        const struct ArrowArray *b = lb->children[0];
        if (bhi - blo != ndim || b->buffers[1] == NULL)
            return MOLT_DB_EINVAL;
        for (int k = 0; k < ndim; k++) {
            if (!is_valid(b, blo + k))
                return MOLT_DB_EINVAL;
            lbounds[k] = AT(b, int32_t, blo + k);
            if ((int64_t)lbounds[k] + dims[k] - 1 > INT32_MAX)
                return MOLT_DB_ERANGE;
        }
    }
    int has_null = 0;
    for (int64_t e = lo; ndim > 0 && e < hi; e++)
        has_null |= !is_valid(items, e);
    size_t at = put_len_mark(out);
    molt_db_buf_put_u32(out, (uint32_t)ndim);
    molt_db_buf_put_u32(out, (uint32_t)has_null);
    molt_db_buf_put_u32(out, ec->elem->oid);
    for (int k = 0; k < ndim; k++) {
        molt_db_buf_put_u32(out, (uint32_t)dims[k]);
        molt_db_buf_put_u32(out, (uint32_t)lbounds[k]);
    }
    for (int64_t e = lo; ndim > 0 && e < hi; e++) {
        if (!is_valid(items, e))
            molt_db_buf_put_u32(out, 0xFFFFFFFFu);
        else if ((rc = put_field(ec->elem, items, e, out)) != MOLT_DB_OK)
            return rc;
    }
    return put_len_patch(out, at);
}

/* A PostgreSQL range from entry i of the reader's range struct: a NULL
 * bound (or a bound whose value is NULL) is infinite. */
static int put_range(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                     molt_db_buf *out)
{
    if (a->n_children != 3)
        return MOLT_DB_EINVAL;
    const struct ArrowArray *empty = a->children[0];
    int64_t ei = empty->offset + i;
    uint8_t flags = 0;
    const struct ArrowArray *vals[2] = {NULL, NULL};
    int64_t vi[2] = {0, 0};
    if (is_valid(empty, ei) &&
        ((const uint8_t *)empty->buffers[1])[ei >> 3] >> (ei & 7) & 1) {
        flags = MOLT_DB_RANGE_EMPTY;
    } else {
        for (int k = 0; k < 2; k++) {
            const struct ArrowArray *bd = a->children[1 + k];
            if (bd->n_children != 2)
                return MOLT_DB_EINVAL;
            int64_t bi = bd->offset + i;
            const struct ArrowArray *v = bd->children[0], *inc = bd->children[1];
            int64_t x = v->offset + bi, ii = inc->offset + bi;
            if (!is_valid(bd, bi) || !is_valid(v, x)) {
                flags |= k ? MOLT_DB_RANGE_UB_INF : MOLT_DB_RANGE_LB_INF;
                continue;
            }
            vals[k] = v;
            vi[k] = x;
            if (is_valid(inc, ii) &&
                ((const uint8_t *)inc->buffers[1])[ii >> 3] >> (ii & 7) & 1)
                flags |= k ? MOLT_DB_RANGE_UB_INC : MOLT_DB_RANGE_LB_INC;
        }
    }
    size_t at = put_len_mark(out);
    molt_db_buf_put_u8(out, flags);
    for (int k = 0; k < 2; k++) {
        if (vals[k] == NULL)
            continue;
        int rc = put_field(ec->elem, vals[k], vi[k], out);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    return put_len_patch(out, at);
}

static int put_decimal(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                       molt_db_buf *out)
{
#if MOLT_DB_HAVE_INT128
    molt_db_decimal128 d;
    memcpy(&d.unscaled, (const uint8_t *)a->buffers[1] + 16 * i, 16);
    d.scale = ec->scale;
    size_t at = put_len_mark(out);
    int rc = molt_db_encode_numeric_decimal128(out, d, NULL);
    return rc == MOLT_DB_OK ? put_len_patch(out, at) : rc;
#else
    (void)ec, (void)a, (void)i, (void)out;
    return MOLT_DB_ETYPE;
#endif
}

/* Utf8 or Binary entry i: its bytes; EINVAL for offsets out of order. */
static int var_bytes(const struct ArrowArray *a, int64_t i, const uint8_t **p,
                     size_t *len)
{
    const int32_t *offs = a->buffers[1];
    int32_t s = offs[i], e = offs[i + 1];
    if (s < 0 || e < s)
        return MOLT_DB_EINVAL;
    *p = (const uint8_t *)a->buffers[2] + s;
    *len = (size_t)(e - s);
    return MOLT_DB_OK;
}

/* Days or microseconds since 1970 back to since 2000, infinities kept. */
static int pg_days(int32_t d, int64_t *days)
{
    if (d != INT32_MAX && d != INT32_MIN) {
        if (d < INT32_MIN + MOLT_DB__PG_EPOCH_DAYS + 1)
            return MOLT_DB_ERANGE;
        d -= MOLT_DB__PG_EPOCH_DAYS;
    }
    *days = d;
    return MOLT_DB_OK;
}

static int pg_us(int64_t us, int64_t *out)
{
    if (us != INT64_MAX && us != INT64_MIN) {
        if (us < INT64_MIN + MOLT_DB__PG_EPOCH_USECS + 1)
            return MOLT_DB_ERANGE;
        us -= MOLT_DB__PG_EPOCH_USECS;
    }
    *out = us;
    return MOLT_DB_OK;
}

static double float_at(const enc_col *ec, const struct ArrowArray *a, int64_t i)
{
    return ec->kind == MOLT_DB__AK_F32 ? (double)AT(a, float, i) : AT(a, double, i);
}

/* Entry i of a Struct of t's parts: each child's entry into its part. */
static void parts_value(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                        molt_db_value *v)
{
    /* element i of a struct is element i of each child, past the child's
     * own offset */
    for (size_t k = 0; k < ec->t->nparts; k++) {
        const struct ArrowArray *kid = a->children[k];
        size_t w = (size_t)molt_db__ak_width(ec->t->parts[k].kind);
        memcpy((uint8_t *)&v->u + ec->t->parts[k].offset,
               (const uint8_t *)kid->buffers[1] + w * (size_t)(kid->offset + i), w);
    }
}

/* Utf8 entry i: the value of its text (the server's text form), parsed by
 * the type's line. */
static int text_value(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                      molt_db_value *v)
{
    const uint8_t *p;
    size_t len;
    if (var_bytes(a, i, &p, &len) != MOLT_DB_OK)
        return MOLT_DB_EINVAL;
    molt_db_buf_reset(ec->scratch);
    int rc = ec->t->parse(p, len, ec->scratch, v);
    return rc == MOLT_DB_EINVAL ? MOLT_DB_ERANGE : rc; /* text the type does not take */
}

/* Entry i of a scalar column as the value of the target type's class
 * (the kinds its line lets COPY write into it). */
static int arrow_value(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                       molt_db_value *v)
{
    const uint8_t *bits = a->buffers[1];
    v->cls = ec->t->cls;
    switch (ec->kind) {
    case MOLT_DB__AK_BOOL: v->u.i = (bits[i >> 3] >> (i & 7)) & 1; return MOLT_DB_OK;
    case MOLT_DB__AK_I16: v->u.i = AT(a, int16_t, i); return MOLT_DB_OK;
    case MOLT_DB__AK_I32: v->u.i = AT(a, int32_t, i); return MOLT_DB_OK;
    case MOLT_DB__AK_I64: v->u.i = AT(a, int64_t, i); return MOLT_DB_OK;
    case MOLT_DB__AK_U32: v->u.i = AT(a, uint32_t, i); return MOLT_DB_OK;
    case MOLT_DB__AK_F32:
    case MOLT_DB__AK_F64:
        if (v->cls == MOLT_DB_VALUE_FLOAT4)
            v->u.f4 = (float)float_at(ec, a, i);
        else
            v->u.f8 = float_at(ec, a, i);
        return MOLT_DB_OK;
    case MOLT_DB__AK_UTF8: return text_value(ec, a, i, v);
    case MOLT_DB__AK_BINARY: return var_bytes(a, i, &v->u.bytes.p, &v->u.bytes.len);
    case MOLT_DB__AK_UUID: memcpy(v->u.uuid, bits + 16 * i, 16); return MOLT_DB_OK;
    case MOLT_DB__AK_DATE32: return pg_days(AT(a, int32_t, i), &v->u.i);
    case MOLT_DB__AK_TIME64: v->u.i = AT(a, int64_t, i); return MOLT_DB_OK;
    case MOLT_DB__AK_TS:
    case MOLT_DB__AK_TSTZ: return pg_us(AT(a, int64_t, i), &v->u.i);
    case MOLT_DB__AK_STRUCT: parts_value(ec, a, i, v); return MOLT_DB_OK;
    default: return MOLT_DB_ETYPE;
    }
}

/* A scalar field: its value, encoded through the type table. */
static int put_scalar(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                      molt_db_buf *out)
{
    molt_db_value v;
    int rc = arrow_value(ec, a, i, &v);
    if (rc != MOLT_DB_OK)
        return rc;
    size_t at = put_len_mark(out);
    rc = ec->t->encode(out, &v);
    if (rc == MOLT_DB_EINVAL)
        return MOLT_DB_ERANGE; /* a value the type cannot hold */
    return rc == MOLT_DB_OK ? put_len_patch(out, at) : rc;
}

static int put_field(const enc_col *ec, const struct ArrowArray *a, int64_t i,
                     molt_db_buf *out)
{
    switch (ec->kind) {
    case E_LIST:
        return put_array(ec, a, i, NULL, 0, out);
    case E_ARRAY: {
        if (a->n_children != 2)
            return MOLT_DB_EINVAL;
        const struct ArrowArray *lb = a->children[0], *v = a->children[1];
        if (!is_valid(v, v->offset + i))
            return MOLT_DB_EINVAL; /* a valid array with NULL values */
        return put_array(ec, v, v->offset + i, lb, lb->offset + i, out);
    }
    case E_RANGE:
        return put_range(ec, a, i, out);
    case MOLT_DB__AK_DEC128:
        return put_decimal(ec, a, i, out);
    default: /* the other kinds of a scalar */
        return put_scalar(ec, a, i, out);
    }
}

int molt_db_copy_encode_batch(molt_db_copy_encoder *e,
                              const struct ArrowArray *batch, molt_db_buf *out,
                              molt_db_error *err)
{
    if (batch == NULL || batch->release == NULL || (size_t)batch->n_children != e->n)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow copy: the batch does not match the schema");
    for (size_t c = 0; c < e->n; c++)
        if (batch->children[c]->length < batch->offset + batch->length)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "arrow copy: column \"%s\" is shorter than "
                                     "the batch", e->cols[c].name);
    size_t before = out->len;
    for (int64_t r = 0; r < batch->length; r++) {
        molt_db_buf_put_u16(out, (uint16_t)e->n);
        for (size_t c = 0; c < e->n; c++) {
            const struct ArrowArray *a = batch->children[c];
            int64_t i = a->offset + batch->offset + r;
            if (!is_valid(a, i)) {
                molt_db_buf_put_u32(out, 0xFFFFFFFFu);
                continue;
            }
            int rc = put_field(&e->cols[c], a, i, out);
            if (rc != MOLT_DB_OK) {
                out->len = before;
                if (rc == MOLT_DB_EINVAL)
                    return molt_db_error_set(err, rc, "arrow copy: column \"%s\", "
                                             "row %lld: malformed nested value "
                                             "(offsets out of bounds, a ragged "
                                             "or NULL sub-array, bad lower "
                                             "bounds)", e->cols[c].name, (long long)r);
                return molt_db_error_set(err, rc == MOLT_DB_ENOMEM ? rc : MOLT_DB_ERANGE,
                                         "arrow copy: column \"%s\", row %lld: "
                                         "value out of the target's range",
                                         e->cols[c].name, (long long)r);
            }
        }
    }
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        out->len = before;
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow copy: out of memory");
    }
    return MOLT_DB_OK;
}
