/* Arrow batch builder: column type choice and appending DataRow fields.
 *
 * A column is a tree: scalars are leaves (of the Arrow kind their line in
 * the type table names); scalars made of parts (interval), arrays and
 * ranges are structs (and lists) whose children are filled by the
 * parent's decoder.
 * Every node keeps its own length, since list children grow by elements,
 * not rows. */
#include "arrow_internal.h"
#include "types_internal.h"
#include "molt_db/types.h"
#include "molt_db/value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2000-01-01 minus 1970-01-01, in days and in microseconds. */

/* Arrays of ranges of ... : nesting stops here (then: text). */
#define MAX_DEPTH 4

int molt_db__arrow_col_nbuffers(const molt_db__arrow_col *c)
{
    switch (c->kind) {
    case MOLT_DB__AK_UTF8:
    case MOLT_DB__AK_BINARY:
        return 3;
    case MOLT_DB__AK_STRUCT:
        return 1;
    default:
        return 2;
    }
}

static int is_offsets(const molt_db__arrow_col *c)
{
    return c->kind == MOLT_DB__AK_UTF8 || c->kind == MOLT_DB__AK_BINARY ||
           c->kind == MOLT_DB__AK_LIST;
}

/* Decimal128(p, s) from a numeric typmod when 0 <= s <= p <= 38 (PostgreSQL
 * 15 allows negative scales and s > p: those stay text). */
static int numeric_typmod(int32_t typmod, int32_t *p, int32_t *s)
{
    if (typmod < 4)
        return 0;
    int32_t t = typmod - 4;
    *p = (t >> 16) & 0xFFFF;
    *s = ((t & 0x7FF) ^ 1024) - 1024;
    return *p >= 1 && *p <= 38 && *s >= 0 && *s <= *p;
}

static void col_free(molt_db__arrow_col *c)
{
    for (size_t i = 0; i < c->nkids; i++)
        col_free(&c->kids[i]);
    free(c->kids);
    free(c->view_kids);
    free(c->name);
    molt_db_buf_free(&c->validity);
    molt_db_buf_free(&c->values);
    molt_db_buf_free(&c->data);
}

static int col_init(molt_db__arrow_col *c, const char *name, uint32_t oid,
                    int32_t typmod, int binary, int depth);

/* Gives c n children (zeroed; freed by col_free even when half made). */
static int kids_alloc(molt_db__arrow_col *c, size_t n)
{
    c->kids = calloc(n, sizeof *c->kids);
    c->view_kids = calloc(n, sizeof *c->view_kids);
    if (c->kids == NULL || c->view_kids == NULL)
        return MOLT_DB_ENOMEM;
    c->nkids = n;
    return MOLT_DB_OK;
}

/* A child filled by its parent's decoder, of a fixed kind. */
static int col_leaf(molt_db__arrow_col *c, const char *name, int kind, int width)
{
    c->name = strdup(name);
    c->kind = kind;
    c->width = width;
    return c->name ? MOLT_DB_OK : MOLT_DB_ENOMEM;
}

static int col_nested(molt_db__arrow_col *c, const molt_db_type_info *t,
                      int32_t typmod, int depth)
{
    int rc;
    c->kind = MOLT_DB__AK_STRUCT;
    if (t->kind == MOLT_DB_KIND_ARRAY) {
        c->role = MOLT_DB__ROLE_ARRAY;
        if ((rc = kids_alloc(c, 2)) != MOLT_DB_OK)
            return rc;
        molt_db__arrow_col *lb = &c->kids[0], *vals = &c->kids[1];
        if ((rc = col_leaf(lb, "lower_bounds", MOLT_DB__AK_LIST, 0)) ||
            (rc = kids_alloc(lb, 1)) ||
            (rc = col_leaf(&lb->kids[0], "item", MOLT_DB__AK_I32, 4)) ||
            (rc = col_leaf(vals, "values", MOLT_DB__AK_LIST, 0)) ||
            (rc = kids_alloc(vals, 1)))
            return rc;
        /* a numeric[] column's typmod is its elements' */
        return col_init(&vals->kids[0], "item", t->element, typmod, 1, depth + 1);
    }
    /* a range: Struct<empty, lower: Struct<value, inclusive>, upper: ...> */
    c->role = MOLT_DB__ROLE_RANGE;
    if ((rc = kids_alloc(c, 3)) != MOLT_DB_OK ||
        (rc = col_leaf(&c->kids[0], "empty", MOLT_DB__AK_BOOL, 0)) != MOLT_DB_OK)
        return rc;
    for (int i = 1; i <= 2; i++) {
        molt_db__arrow_col *bd = &c->kids[i];
        if ((rc = col_leaf(bd, i == 1 ? "lower" : "upper", MOLT_DB__AK_STRUCT, 0)) ||
            (rc = kids_alloc(bd, 2)) ||
            (rc = col_init(&bd->kids[0], "value", t->element, -1, 1, depth + 1)) ||
            (rc = col_leaf(&bd->kids[1], "inclusive", MOLT_DB__AK_BOOL, 0)))
            return rc;
        bd->role = MOLT_DB__ROLE_BOUND;
    }
    return MOLT_DB_OK;
}

/* A binary column of a scalar type: the Arrow column its line names. */
static int col_scalar(molt_db__arrow_col *c, const molt_db__scalar *t, int32_t typmod)
{
    c->kind = t->arrow;
    if (c->kind == MOLT_DB__AK_DEC128 && !numeric_typmod(typmod, &c->precision, &c->scale))
        c->kind = MOLT_DB__AK_UTF8;
    c->width = molt_db__ak_width(c->kind);
    if (c->kind == MOLT_DB__AK_UUID)
        c->ext = "arrow.uuid";
    if (c->kind == MOLT_DB__AK_UTF8)
        c->src = t->raw_text ? MOLT_DB__SRC_RAW
                 : t->cls == MOLT_DB_VALUE_TEXT || t->cls == MOLT_DB_VALUE_JSON
                     ? MOLT_DB__SRC_VALUE
                     : MOLT_DB__SRC_TEXT;
    if (c->kind != MOLT_DB__AK_STRUCT)
        return MOLT_DB_OK;
    /* a Struct of the value's parts (interval's) */
    c->role = MOLT_DB__ROLE_PARTS;
    int rc = kids_alloc(c, t->nparts);
    for (size_t i = 0; i < t->nparts && rc == MOLT_DB_OK; i++)
        rc = col_leaf(&c->kids[i], t->parts[i].name, t->parts[i].kind,
                      molt_db__ak_width(t->parts[i].kind));
    return rc;
}

static int col_init(molt_db__arrow_col *c, const char *name, uint32_t oid,
                    int32_t typmod, int binary, int depth)
{
    c->name = strdup(name ? name : "");
    if (c->name == NULL)
        return MOLT_DB_ENOMEM;
    c->oid = oid;
    c->scalar = molt_db__scalar_of(oid);
    c->kind = MOLT_DB__AK_UTF8;
    c->role = MOLT_DB__ROLE_PLAIN;
    c->src = MOLT_DB__SRC_RAW;
    if (c->scalar != NULL && c->scalar->cls == MOLT_DB_VALUE_JSON)
        c->ext = "arrow.json";
    if (!binary)
        return MOLT_DB_OK; /* text format: the server's text, as Utf8 */
    if (c->scalar != NULL)
        return col_scalar(c, c->scalar, typmod);
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    if (t != NULL && depth < MAX_DEPTH &&
        (t->kind == MOLT_DB_KIND_ARRAY || t->kind == MOLT_DB_KIND_RANGE))
        return col_nested(c, t, typmod, depth);
    c->src = MOLT_DB__SRC_TEXT; /* multiranges, arrays nested too deep */
    return MOLT_DB_OK;
}

static int col_start(molt_db__arrow_col *c)
{
    int32_t zero = 0;
    molt_db_buf_reset(&c->validity);
    molt_db_buf_reset(&c->values);
    molt_db_buf_reset(&c->data);
    c->length = 0;
    c->null_count = 0;
    /* a little room everywhere, so even an empty batch has non-NULL
     * buffers (some consumers want them) */
    if (molt_db_buf_reserve(&c->validity, 8) != MOLT_DB_OK ||
        molt_db_buf_reserve(&c->values, 8) != MOLT_DB_OK ||
        molt_db_buf_reserve(&c->data, 8) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    if (is_offsets(c))
        molt_db_buf_put(&c->values, &zero, 4);
    for (size_t i = 0; i < c->nkids; i++)
        if (col_start(&c->kids[i]) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
    return MOLT_DB_OK;
}

int molt_db__arrow_builder_start(molt_db_arrow_builder *b)
{
    b->rows = 0;
    b->full = 0;
    b->ready = 0;
    b->room = 0;
    for (size_t i = 0; i < b->ncols; i++)
        if (col_start(&b->cols[i]) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
    b->ready = 1;
    return MOLT_DB_OK;
}

int molt_db_arrow_builder_new(const molt_db_column *cols, size_t ncols,
                              size_t batch_rows, molt_db_arrow_builder **out,
                              molt_db_error *err)
{
    *out = NULL;
    if (ncols > 0 && cols == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "arrow: no columns given");
    if (batch_rows == 0)
        batch_rows = MOLT_DB_ARROW_DEFAULT_BATCH_ROWS;
    if (batch_rows > INT32_MAX)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "arrow: batch_rows %zu is too large", batch_rows);
    molt_db_arrow_builder *b = calloc(1, sizeof *b);
    if (b == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    b->batch_rows = batch_rows;
    b->cols = calloc(ncols ? ncols : 1, sizeof *b->cols);
    b->view_children = calloc(ncols ? ncols : 1, sizeof *b->view_children);
    if (b->cols == NULL || b->view_children == NULL)
        goto nomem;
    b->ncols = ncols;
    for (size_t i = 0; i < ncols; i++)
        if (col_init(&b->cols[i], cols[i].name, cols[i].type_oid,
                     cols[i].type_modifier,
                     cols[i].format == MOLT_DB_FORMAT_BINARY, 0) != MOLT_DB_OK)
            goto nomem;
    molt_db__arrow_fast_plan(b);
    if (molt_db__arrow_builder_start(b) != MOLT_DB_OK)
        goto nomem;
    *out = b;
    return MOLT_DB_OK;
nomem:
    molt_db_arrow_builder_free(b);
    return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
}

void molt_db_arrow_builder_free(molt_db_arrow_builder *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->ncols; i++)
        col_free(&b->cols[i]);
    free(b->cols);
    free(b->view_children);
    free(b);
}

int64_t molt_db_arrow_builder_rows(const molt_db_arrow_builder *b)
{
    return b->rows;
}

int molt_db_arrow_builder_full(const molt_db_arrow_builder *b)
{
    return b->full;
}

size_t molt_db_arrow_builder_ncols(const molt_db_arrow_builder *b)
{
    return b->ncols;
}

void molt_db_arrow_builder_reset(molt_db_arrow_builder *b)
{
    /* Memory is kept, so the reserves in start cannot fail. */
    (void)molt_db__arrow_builder_start(b);
}

/* ---- appending ---------------------------------------------------------- */

static int put_fixed(molt_db_buf *buf, const void *v, size_t n)
{
    if (molt_db_buf_reserve(buf, n) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    memcpy(buf->data + buf->len, v, n);
    buf->len += n;
    return MOLT_DB_OK;
}

/* Appends bit `i` (0 or 1) to a bitmap that holds bits 0..i-1. */
static int bit_push(molt_db_buf *bits, int64_t i, int set)
{
    if ((i & 7) == 0) {
        uint8_t z = 0;
        if (put_fixed(bits, &z, 1) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
    }
    if (set)
        bits->data[i >> 3] |= (uint8_t)(1u << (i & 7));
    return MOLT_DB_OK;
}

static int err_col(molt_db_error *err, int code, const molt_db__arrow_col *c,
                   const char *what)
{
    return molt_db_error_set(err, code, "arrow: column \"%s\": %s", c->name, what);
}

/* Closes a value of an offsets column: end = bytes (or child values) so
 * far, within Arrow's 32-bit offsets. */
static int offset_push(molt_db__arrow_col *c, int64_t end, molt_db_error *err)
{
    if (end > INT32_MAX)
        return err_col(err, MOLT_DB_ERANGE, c,
                       "more than 2^31 bytes or elements in one batch");
    int32_t e = (int32_t)end;
    return put_fixed(&c->values, &e, 4);
}

static int col_null(molt_db__arrow_col *c, molt_db_error *err);
static int col_value(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                     molt_db_error *err);

/* A non-NULL value for a leaf filled by its parent (interval fields, list
 * items, range flags). */
static int leaf_fixed(molt_db__arrow_col *c, const void *v)
{
    if (bit_push(&c->validity, c->length, 1) != MOLT_DB_OK ||
        put_fixed(&c->values, v, (size_t)c->width) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    c->length++;
    return MOLT_DB_OK;
}

static int leaf_bool(molt_db__arrow_col *c, int v)
{
    if (bit_push(&c->validity, c->length, 1) != MOLT_DB_OK ||
        bit_push(&c->values, c->length, v) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    c->length++;
    return MOLT_DB_OK;
}

static int col_null(molt_db__arrow_col *c, molt_db_error *err)
{
    static const uint8_t zeros[16];
    int rc = MOLT_DB_OK;
    if (bit_push(&c->validity, c->length, 0) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    switch (c->kind) {
    case MOLT_DB__AK_BOOL:
        rc = bit_push(&c->values, c->length, 0);
        break;
    case MOLT_DB__AK_UTF8:
    case MOLT_DB__AK_BINARY:
        rc = offset_push(c, (int64_t)c->data.len, err);
        break;
    case MOLT_DB__AK_LIST:
        rc = offset_push(c, c->kids[0].length, err);
        break;
    case MOLT_DB__AK_STRUCT:
        /* children keep the parent's length; their slots are NULL too */
        for (size_t i = 0; i < c->nkids && rc == MOLT_DB_OK; i++)
            rc = col_null(&c->kids[i], err);
        break;
    default:
        rc = put_fixed(&c->values, zeros, (size_t)c->width);
        break;
    }
    if (rc != MOLT_DB_OK)
        return rc;
    c->null_count++;
    c->length++;
    return MOLT_DB_OK;
}

static int put_decimal(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                       molt_db_error *err)
{
#if MOLT_DB_HAVE_INT128
    molt_db_numeric n;
    molt_db_decimal128 d;
    int rc = molt_db_numeric_decode(p, len, &n, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (n.sign == MOLT_DB_NUMERIC_NAN || n.sign == MOLT_DB_NUMERIC_PINF ||
        n.sign == MOLT_DB_NUMERIC_NINF)
        return err_col(err, MOLT_DB_ETYPE, c,
                       "NaN or infinity cannot be a Decimal128");
    rc = molt_db_numeric_to_decimal128(&n, &d, err);
    if (rc != MOLT_DB_OK)
        return rc;
    /* The column's scale is fixed; a value shown with fewer digits (never
     * from the server for numeric(p,s), but cheap to handle) is rescaled. */
    if (d.scale > c->scale)
        return err_col(err, MOLT_DB_ERANGE, c, "value has more digits after "
                                               "the point than the column's scale");
    for (int32_t s = d.scale; s < c->scale; s++) {
        molt_db_int128 lim = (molt_db_int128)1 << 120;
        if (d.unscaled > lim || d.unscaled < -lim)
            return err_col(err, MOLT_DB_ERANGE, c, "value out of range");
        d.unscaled *= 10;
    }
    return put_fixed(&c->values, &d.unscaled, 16);
#else
    (void)p; (void)len;
    return err_col(err, MOLT_DB_ETYPE, c, "no 128-bit integers on this platform");
#endif
}

static void col_save(molt_db__arrow_col *c);

/* The first array with dimensions in a column not yet frozen: puts ndim-1
 * more List levels between "values" and its items. Only NULL or empty
 * arrays came before, so "values" has no children yet and the new levels
 * start empty. */
static int array_set_ndim(molt_db__arrow_col *c, int ndim)
{
    molt_db__arrow_col *vals = &c->kids[1];
    for (int d = 1; d < ndim; d++) {
        molt_db__arrow_col lvl;
        memset(&lvl, 0, sizeof lvl);
        if (col_leaf(&lvl, "item", MOLT_DB__AK_LIST, 0) != MOLT_DB_OK ||
            kids_alloc(&lvl, 1) != MOLT_DB_OK) {
            col_free(&lvl);
            return MOLT_DB_ENOMEM;
        }
        lvl.kids[0] = vals->kids[0]; /* the item column moves one level down */
        vals->kids[0] = lvl;
        if (col_start(&vals->kids[0]) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM; /* the tree is whole; its buffers are empty */
        col_save(&vals->kids[0]);
    }
    c->ndim = ndim;
    return MOLT_DB_OK;
}

/* A valid list entry with n children more. */
static int list_entry(molt_db__arrow_col *l, int64_t n, molt_db_error *err)
{
    if (bit_push(&l->validity, l->length, 1) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    int32_t last;
    memcpy(&last, l->values.data + l->values.len - 4, 4);
    int rc = offset_push(l, (int64_t)last + n, err);
    if (rc == MOLT_DB_OK)
        l->length++;
    return rc;
}

static int put_array(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                     molt_db_error *err)
{
    molt_db_array a;
    int rc = molt_db_array_decode(p, len, &a, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (a.ndim > 0 && a.nelems == 0)
        return err_col(err, MOLT_DB_EPROTO, c, "an array with a zero dimension");
    if (a.ndim > 0 && a.ndim != c->ndim) {
        if (c->ndim != 0) {
            char m[96];
            snprintf(m, sizeof m, "an array of %d dimensions in a column whose "
                     "Arrow type has %d", a.ndim, c->ndim);
            return err_col(err, MOLT_DB_ETYPE, c, m);
        }
        if ((rc = array_set_ndim(c, a.ndim)) != MOLT_DB_OK)
            return rc;
    }
    molt_db__arrow_col *lb = &c->kids[0], *vals = &c->kids[1];
    for (int d = 0; d < a.ndim; d++)
        if ((rc = leaf_fixed(&lb->kids[0], &a.lbounds[d])) != MOLT_DB_OK)
            return rc;
    if ((rc = list_entry(lb, a.ndim, err)) != MOLT_DB_OK)
        return rc;
    /* "values": one entry per row with dims[0] children; level k (1 ..
     * ndim-1) has dims[0]*...*dims[k-1] entries of dims[k] children each
     * (row-major), all <= nelems since no dimension is 0 */
    if ((rc = list_entry(vals, a.ndim ? a.dims[0] : 0, err)) != MOLT_DB_OK)
        return rc;
    molt_db__arrow_col *lvl = vals;
    int64_t entries = a.ndim ? a.dims[0] : 0;
    for (int k = 1; k < a.ndim; k++) {
        lvl = &lvl->kids[0];
        for (int64_t e = 0; e < entries; e++)
            if ((rc = list_entry(lvl, a.dims[k], err)) != MOLT_DB_OK)
                return rc;
        entries *= a.dims[k];
    }
    molt_db__arrow_col *item = &lvl->kids[0];
    molt_db_array_iter it;
    molt_db_array_iter_init(&it, &a);
    const uint8_t *ep;
    int32_t el;
    while ((rc = molt_db_array_next(&it, &ep, &el, err)) == 1) {
        rc = el < 0 ? col_null(item, err) : col_value(item, ep, (size_t)el, err);
        if (rc != MOLT_DB_OK)
            return rc;
    }
    return rc; /* 0 (MOLT_DB_OK) after the last element, or EPROTO */
}

void molt_db__arrow_builder_freeze(molt_db_arrow_builder *b)
{
    b->frozen = 1;
    for (size_t i = 0; i < b->ncols; i++)
        if (b->cols[i].role == MOLT_DB__ROLE_ARRAY && b->cols[i].ndim == 0)
            b->cols[i].ndim = 1; /* only NULL or empty arrays so far */
}

static int put_bound(molt_db__arrow_col *bd, const uint8_t *p, int32_t len,
                     int inclusive, molt_db_error *err)
{
    if (p == NULL || len < 0)
        return col_null(bd, err); /* infinite, or the range is empty */
    int rc = col_value(&bd->kids[0], p, (size_t)len, err);
    if (rc == MOLT_DB_OK)
        rc = leaf_bool(&bd->kids[1], inclusive);
    if (rc == MOLT_DB_OK)
        rc = bit_push(&bd->validity, bd->length, 1);
    if (rc == MOLT_DB_OK)
        bd->length++;
    return rc;
}

static int put_range(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                     molt_db_error *err)
{
    molt_db_range r;
    int rc = molt_db_range_decode(p, len, &r, err);
    if (rc != MOLT_DB_OK)
        return rc;
    int empty = (r.flags & MOLT_DB_RANGE_EMPTY) != 0;
    if ((rc = leaf_bool(&c->kids[0], empty)) != MOLT_DB_OK)
        return rc;
    if ((rc = put_bound(&c->kids[1], empty ? NULL : r.lower, r.lower_len,
                        (r.flags & MOLT_DB_RANGE_LB_INC) != 0, err)) != MOLT_DB_OK)
        return rc;
    return put_bound(&c->kids[2], empty ? NULL : r.upper, r.upper_len,
                     (r.flags & MOLT_DB_RANGE_UB_INC) != 0, err);
}

/* Days or microseconds since 2000 to the Unix epoch's (Date32, Timestamp). */
static int shift_date(molt_db__arrow_col *c, int64_t days, molt_db_error *err)
{
    if (molt_db__unix_days(&days) != MOLT_DB_OK)
        return err_col(err, MOLT_DB_ERANGE, c, "date out of range");
    int32_t d = (int32_t)days;
    return put_fixed(&c->values, &d, 4);
}

static int shift_timestamp(molt_db__arrow_col *c, int64_t us, molt_db_error *err)
{
    if (molt_db__unix_us(&us) != MOLT_DB_OK)
        return err_col(err, MOLT_DB_ERANGE, c, "timestamp out of range");
    return put_fixed(&c->values, &us, 8);
}

/* A Struct of the value's parts: each part into its child. */
static int put_parts(molt_db__arrow_col *c, const molt_db_value *v)
{
    int rc = MOLT_DB_OK;
    for (size_t i = 0; i < c->nkids && rc == MOLT_DB_OK; i++)
        rc = leaf_fixed(&c->kids[i], (const uint8_t *)&v->u + c->scalar->parts[i].offset);
    return rc;
}

/* A column of a fixed-width kind (or of a value's parts): its value read
 * through the type table, stored at the kind's width. */
static int put_scalar(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                      molt_db_error *err)
{
    molt_db_value v;
    v.cls = c->scalar->cls;
    int rc = c->scalar->decode(p, len, &v, err);
    if (rc != MOLT_DB_OK)
        return rc;
    union {
        int16_t i16;
        int32_t i32;
        uint32_t u32;
    } n;
    switch (c->kind) {
    case MOLT_DB__AK_BOOL: return bit_push(&c->values, c->length, (int)v.u.i);
    case MOLT_DB__AK_I16: n.i16 = (int16_t)v.u.i; return put_fixed(&c->values, &n, 2);
    case MOLT_DB__AK_I32: n.i32 = (int32_t)v.u.i; return put_fixed(&c->values, &n, 4);
    case MOLT_DB__AK_U32: n.u32 = (uint32_t)v.u.i; return put_fixed(&c->values, &n, 4);
    case MOLT_DB__AK_I64:
    case MOLT_DB__AK_TIME64: return put_fixed(&c->values, &v.u.i, 8);
    case MOLT_DB__AK_F32: return put_fixed(&c->values, &v.u.f4, 4);
    case MOLT_DB__AK_F64: return put_fixed(&c->values, &v.u.f8, 8);
    case MOLT_DB__AK_UUID: return put_fixed(&c->values, v.u.uuid, 16);
    case MOLT_DB__AK_DATE32: return shift_date(c, v.u.i, err);
    case MOLT_DB__AK_TS:
    case MOLT_DB__AK_TSTZ: return shift_timestamp(c, v.u.i, err);
    default: return put_parts(c, &v);
    }
}

/* A Utf8 column: text-like bytes, the text of a decoded value (jsonb's),
 * or the server's text of a binary value (SRC_TEXT). */
static int put_utf8(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                    molt_db_error *err)
{
    int rc;
    if (c->src == MOLT_DB__SRC_VALUE) {
        molt_db_value v;
        if ((rc = c->scalar->decode(p, len, &v, err)) != MOLT_DB_OK)
            return rc;
        rc = put_fixed(&c->data, v.u.bytes.p, v.u.bytes.len);
    } else if (c->src == MOLT_DB__SRC_TEXT) {
        rc = molt_db_value_to_text(c->oid, p, len, &c->data, err);
    } else {
        rc = put_fixed(&c->data, p, len);
    }
    if (rc != MOLT_DB_OK)
        return rc;
    return offset_push(c, (int64_t)c->data.len, err);
}

/* The value of c itself (its validity bit is already pushed). */
static int put_value(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                     molt_db_error *err)
{
    switch (c->kind) {
    case MOLT_DB__AK_DEC128:
        return put_decimal(c, p, len, err);
    case MOLT_DB__AK_BINARY:
        if (put_fixed(&c->data, p, len) != MOLT_DB_OK)
            return MOLT_DB_ENOMEM;
        return offset_push(c, (int64_t)c->data.len, err);
    case MOLT_DB__AK_BOOL: case MOLT_DB__AK_I16: case MOLT_DB__AK_I32:
    case MOLT_DB__AK_I64: case MOLT_DB__AK_U32: case MOLT_DB__AK_F32:
    case MOLT_DB__AK_F64: case MOLT_DB__AK_UUID: case MOLT_DB__AK_DATE32:
    case MOLT_DB__AK_TIME64: case MOLT_DB__AK_TS: case MOLT_DB__AK_TSTZ:
        return put_scalar(c, p, len, err);
    case MOLT_DB__AK_STRUCT:
        if (c->role == MOLT_DB__ROLE_ARRAY)
            return put_array(c, p, len, err);
        if (c->role == MOLT_DB__ROLE_RANGE)
            return put_range(c, p, len, err);
        if (c->role == MOLT_DB__ROLE_PARTS)
            return put_scalar(c, p, len, err);
        return err_col(err, MOLT_DB_EINVAL, c, "no decoder for this struct");
    case MOLT_DB__AK_UTF8:
    default:
        return put_utf8(c, p, len, err);
    }
}

static int col_value(molt_db__arrow_col *c, const uint8_t *p, size_t len,
                     molt_db_error *err)
{
    if (bit_push(&c->validity, c->length, 1) != MOLT_DB_OK)
        return MOLT_DB_ENOMEM;
    int rc = put_value(c, p, len, err);
    if (rc != MOLT_DB_OK)
        return rc;
    c->length++;
    return MOLT_DB_OK;
}

/* ---- taking back a failed row ---------------------------------------------- */

static void col_save(molt_db__arrow_col *c)
{
    c->saved.length = c->length;
    c->saved.null_count = c->null_count;
    c->saved.validity = c->validity.len;
    c->saved.values = c->values.len;
    c->saved.data = c->data.len;
    for (size_t i = 0; i < c->nkids; i++)
        col_save(&c->kids[i]);
}

/* Clears the bits at and past n in the last byte of a bitmap. */
static void bits_trim(molt_db_buf *bits, int64_t n)
{
    if ((n & 7) && bits->len > (size_t)(n >> 3))
        bits->data[n >> 3] &= (uint8_t)((1u << (n & 7)) - 1);
}

static void col_restore(molt_db__arrow_col *c)
{
    c->length = c->saved.length;
    c->null_count = c->saved.null_count;
    c->validity.len = c->saved.validity;
    c->values.len = c->saved.values;
    c->data.len = c->saved.data;
    bits_trim(&c->validity, c->length);
    if (c->kind == MOLT_DB__AK_BOOL)
        bits_trim(&c->values, c->length);
    for (size_t i = 0; i < c->nkids; i++)
        col_restore(&c->kids[i]);
}

int molt_db_arrow_builder_append(molt_db_arrow_builder *b,
                                 const molt_db_field *fields, size_t nfields,
                                 molt_db_error *err)
{
    if (nfields != b->ncols)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "arrow: row has %zu fields, result has %zu "
                                 "columns", nfields, b->ncols);
    if (b->full)
        return molt_db_error_set(err, MOLT_DB_ESTATE,
                                 "arrow: batch is full; finish it first");
    if (!b->ready && molt_db__arrow_builder_start(b) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    if (b->fast && molt_db__arrow_fast_row(b, fields))
        return MOLT_DB_OK;
    b->room = 0; /* this row uses room the fast path counted on */
    if (molt_db__arrow_fast_sync(b) != MOLT_DB_OK)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    int rc = MOLT_DB_OK;
    size_t i;
    for (i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        col_save(c);
        rc = fields[i].len < 0
                 ? col_null(c, err)
                 : col_value(c, fields[i].data, (size_t)fields[i].len, err);
        if (rc != MOLT_DB_OK)
            break;
    }
    if (rc != MOLT_DB_OK) {
        if (rc == MOLT_DB_ENOMEM)
            molt_db_error_set(err, rc, "arrow: out of memory");
        else if (err != NULL && strncmp(err->message, "arrow:", 6) != 0) {
            /* a decoder's message: say which column */
            char m[MOLT_DB_ERROR_MESSAGE_SIZE];
            memcpy(m, err->message, sizeof m);
            molt_db_error_set(err, rc, "arrow: column \"%s\": %s",
                              b->cols[i].name, m);
        }
        for (size_t j = 0; j <= i && j < b->ncols; j++)
            col_restore(&b->cols[j]);
        return rc;
    }
    b->rows++;
    if ((size_t)b->rows >= b->batch_rows)
        b->full = 1;
    for (i = 0; i < b->ncols && !b->full; i++)
        if (b->cols[i].data.len >= MOLT_DB_ARROW_MAX_BATCH_BYTES)
            b->full = 1;
    return MOLT_DB_OK;
}
