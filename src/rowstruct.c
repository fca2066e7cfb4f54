/* Struct mode: binding a struct description to a result's columns and
 * decoding rows into structs. */
#include "molt_db/rowstruct.h"
#include "molt_db/value.h"
#include "arrow_kind.h"
#include "types_internal.h"

#include <stdlib.h>
#include <string.h>


/* 96 bytes on 64-bit platforms: the decode loop indexes these, and three
 * times 32 is one lea and a shift (measured: at 112 bytes the loop took
 * 8 more instructions per row of six members). */
typedef struct bound {
    molt_db_member m;
    size_t col;          /* column index */
    const molt_db__scalar *t; /* oid's line in the type table, or NULL */
    const char *name;    /* points into the plan's name storage */
    uint32_t oid;
    uint8_t binary;      /* column format */
    uint8_t fast;        /* a fast_op, or FAST_NONE */
} bound;

/* The common (member, column) pairs, decoded inline by fast_one; the
 * others, and any value fast_one does not like, go through decode_one. */
enum fast_op {
    FAST_NONE = 0,
    FAST_BOOL,      /* bool */
    FAST_I16,       /* int2 into int16 */
    FAST_I32,       /* int4 into int32 */
    FAST_I64,       /* int8 into int64 */
    FAST_I64_FROM4, /* int4 into int64 */
    FAST_F32,       /* float4 into float */
    FAST_F64,       /* float8 into double */
    FAST_TS,        /* timestamp(tz) into int64 us from 1970 */
    FAST_CHARS,     /* text-like bytes as they are, into char[N] */
    FAST_SVIEW      /* ... into a string view */
};

struct molt_db_rowstruct_plan {
    size_t ncols;
    size_t n;
    bound *b;
    char *names;         /* the bound columns' names, NUL-separated */
    int needs_scratch;
    int has_views;
};

static int fast_op(const bound *b);

/* Whether a binary value of type t decodes to its text (text-like types,
 * json, jsonb), so a string member needs no printing. */
static int has_text(const molt_db__scalar *t)
{
    return t != NULL && (t->cls == MOLT_DB_VALUE_TEXT || t->cls == MOLT_DB_VALUE_JSON);
}

/* Whether a field's bytes are its text as they are. */
static int raw_text(const bound *b)
{
    return !b->binary || (b->t != NULL && b->t->raw_text);
}

static size_t member_size(const molt_db_member *m)
{
    switch (m->type) {
    case MOLT_DB_MEMBER_BOOL: return sizeof(bool);
    case MOLT_DB_MEMBER_INT16: return 2;
    case MOLT_DB_MEMBER_INT32: case MOLT_DB_MEMBER_DATE_DAYS: return 4;
    case MOLT_DB_MEMBER_INT64: case MOLT_DB_MEMBER_TIMESTAMP_US: return 8;
    case MOLT_DB_MEMBER_FLOAT: return sizeof(float);
    case MOLT_DB_MEMBER_DOUBLE: return sizeof(double);
    case MOLT_DB_MEMBER_CHARS: return m->size;
    case MOLT_DB_MEMBER_STRING_VIEW: return sizeof(molt_db_string_view);
    case MOLT_DB_MEMBER_STRING_COPY: return sizeof(char *);
    case MOLT_DB_MEMBER_BYTES_VIEW:
    case MOLT_DB_MEMBER_BYTES_COPY: return sizeof(molt_db_bytes_view);
    case MOLT_DB_MEMBER_UUID: return 16;
#if MOLT_DB_HAVE_INT128
    case MOLT_DB_MEMBER_DECIMAL128: return sizeof(molt_db_decimal128);
#endif
    default: return 0;
    }
}

static const char *type_label(int t)
{
    static const char *const names[] = {
        "?", "bool", "int16", "int32", "int64", "float", "double",
        "timestamp (int64 us)", "date (int32 days)", "char[N]",
        "string view", "string copy", "bytes view", "bytes copy", "uuid",
        "decimal128"};
    return t >= 1 && t <= MOLT_DB_MEMBER_DECIMAL128 ? names[t] : "?";
}

/* Whether a column of type s (binary or text format) goes into member
 * type t: string members take any column, the others what s's line in the
 * type table lists, from a binary column. */
static int compatible(int t, const molt_db__scalar *s, int binary)
{
    if (t == MOLT_DB_MEMBER_CHARS || t == MOLT_DB_MEMBER_STRING_VIEW ||
        t == MOLT_DB_MEMBER_STRING_COPY)
        return 1; /* text-like bytes as they are, other binary values (only
                   * types the library decodes come binary) printed as the
                   * server's text */
    return binary && s != NULL && t >= 0 && t < 32 && ((s->members >> t) & 1);
}

void molt_db_rowstruct_plan_free(molt_db_rowstruct_plan *plan)
{
    if (plan == NULL)
        return;
    free(plan->b);
    free(plan->names);
    free(plan);
}

int molt_db_rowstruct_plan_needs_scratch(const molt_db_rowstruct_plan *plan)
{
    return plan->needs_scratch;
}

int molt_db_rowstruct_plan_has_views(const molt_db_rowstruct_plan *plan)
{
    return plan->has_views;
}

/* The column a member names (or sits at): its index, or ncols with err set. */
static size_t member_column(const molt_db_member *m, size_t i,
                            const molt_db_column *cols, size_t ncols,
                            molt_db_error *err)
{
    if (m->column != NULL) {
        for (size_t c = 0; c < ncols; c++)
            if (cols[c].name && strcmp(cols[c].name, m->column) == 0)
                return c;
        molt_db_error_set(err, MOLT_DB_EINVAL,
                          "rowstruct: the result has no column \"%s\"", m->column);
        return ncols;
    }
    if (m->position < 0 || (size_t)m->position >= ncols) {
        molt_db_error_set(err, MOLT_DB_EINVAL,
                          "rowstruct: member %zu: no column at position %d (the "
                          "result has %zu)", i, m->position, ncols);
        return ncols;
    }
    return (size_t)m->position;
}

/* Whether member m fits the struct the description is of. */
static int member_fits(const molt_db_rowstruct_desc *desc, const molt_db_member *m)
{
    size_t sz = member_size(m);
    return sz != 0 && m->offset <= desc->struct_size &&
           sz <= desc->struct_size - m->offset &&
           (!m->null_offset || m->null_offset <= desc->struct_size) &&
           (m->type != MOLT_DB_MEMBER_DECIMAL128 || (m->scale >= 0 && m->scale <= 38));
}

/* Binds member i to its column, into b and the plan's flags. */
static int bind_member(molt_db_rowstruct_plan *p, const molt_db_rowstruct_desc *desc,
                       size_t i, const molt_db_column *cols, size_t ncols,
                       molt_db_error *err)
{
    const molt_db_member *m = &desc->members[i];
    bound *b = &p->b[i];
    b->m = *m;
    if (!member_fits(desc, m))
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "rowstruct: member %zu (column \"%s\"): bad "
                                 "description (type, size, offset or scale)",
                                 i, m->column ? m->column : "(by position)");
    size_t c = member_column(m, i, cols, ncols, err);
    if (c == ncols)
        return MOLT_DB_EINVAL;
    b->col = c;
    b->oid = cols[c].type_oid;
    b->t = molt_db__scalar_of(b->oid);
    b->binary = cols[c].format == MOLT_DB_FORMAT_BINARY;
    if (!compatible(m->type, b->t, b->binary)) {
        const char *tn = molt_db_type_name(b->oid);
        return molt_db_error_set(err, MOLT_DB_ETYPE,
                                 "rowstruct: column \"%s\" (%s%s, oid %u) "
                                 "cannot go into a %s member",
                                 cols[c].name ? cols[c].name : "",
                                 tn ? tn : "unknown type",
                                 b->binary ? "" : ", text format",
                                 (unsigned)b->oid, type_label(m->type));
    }
    int stringy = m->type == MOLT_DB_MEMBER_STRING_VIEW ||
                  m->type == MOLT_DB_MEMBER_STRING_COPY ||
                  m->type == MOLT_DB_MEMBER_CHARS;
    if (stringy && b->binary && !has_text(b->t))
        p->needs_scratch = 1; /* printed as text first */
    if (m->type == MOLT_DB_MEMBER_STRING_VIEW || m->type == MOLT_DB_MEMBER_BYTES_VIEW)
        p->has_views = 1;
    b->fast = (uint8_t)fast_op(b);
    return MOLT_DB_OK;
}

int molt_db_rowstruct_bind(const molt_db_rowstruct_desc *desc,
                           const molt_db_column *cols, size_t ncols,
                           molt_db_rowstruct_plan **out, molt_db_error *err)
{
    *out = NULL;
    if (desc == NULL || (desc->nmembers > 0 && desc->members == NULL) ||
        (ncols > 0 && cols == NULL))
        return molt_db_error_set(err, MOLT_DB_EINVAL, "rowstruct: no description");
    molt_db_rowstruct_plan *p = calloc(1, sizeof *p);
    if (p == NULL ||
        (p->b = calloc(desc->nmembers ? desc->nmembers : 1, sizeof *p->b)) == NULL) {
        molt_db_rowstruct_plan_free(p);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "rowstruct: out of memory");
    }
    p->ncols = ncols;
    p->n = desc->nmembers;
    int rc = MOLT_DB_OK;
    for (size_t i = 0; i < desc->nmembers && rc == MOLT_DB_OK; i++)
        rc = bind_member(p, desc, i, cols, ncols, err);
    if (rc != MOLT_DB_OK) {
        molt_db_rowstruct_plan_free(p);
        return rc;
    }
    /* keep the names of bound columns for error messages (a column may
     * be bound by several members) */
    size_t names_len = 0;
    for (size_t i = 0; i < p->n; i++)
        names_len += strlen(cols[p->b[i].col].name ? cols[p->b[i].col].name : "") + 1;
    if ((p->names = malloc(names_len ? names_len : 1)) == NULL) {
        molt_db_rowstruct_plan_free(p);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "rowstruct: out of memory");
    }
    char *w = p->names;
    for (size_t i = 0; i < p->n; i++) {
        const char *nm = cols[p->b[i].col].name ? cols[p->b[i].col].name : "";
        size_t l = strlen(nm) + 1;
        memcpy(w, nm, l);
        p->b[i].name = w;
        w += l;
    }
    *out = p;
    return MOLT_DB_OK;
}

/* ---- decoding ------------------------------------------------------------- */

/* The fast op of a bound pair. A binary value's layout is its type's Arrow
 * kind (its line in the type table): I32 is a big-endian int32, ... */
static int fast_op(const bound *b)
{
    if (b->m.type == MOLT_DB_MEMBER_CHARS && raw_text(b))
        return FAST_CHARS;
    if (b->m.type == MOLT_DB_MEMBER_STRING_VIEW && raw_text(b))
        return FAST_SVIEW;
    if (!b->binary || b->t == NULL)
        return FAST_NONE;
    int kind = b->t->arrow;
    switch (b->m.type) {
    case MOLT_DB_MEMBER_BOOL: return FAST_BOOL;
    case MOLT_DB_MEMBER_INT16: return FAST_I16;
    case MOLT_DB_MEMBER_INT32:
        return kind == MOLT_DB__AK_I32 ? FAST_I32 : FAST_NONE;
    case MOLT_DB_MEMBER_INT64:
        return kind == MOLT_DB__AK_I64   ? FAST_I64
               : kind == MOLT_DB__AK_I32 ? FAST_I64_FROM4
                                         : FAST_NONE;
    case MOLT_DB_MEMBER_FLOAT: return FAST_F32;
    case MOLT_DB_MEMBER_DOUBLE:
        return kind == MOLT_DB__AK_F64 ? FAST_F64 : FAST_NONE;
    case MOLT_DB_MEMBER_TIMESTAMP_US: return FAST_TS;
    default: return FAST_NONE;
    }
}

/* Decodes a well-formed value of a fast pair into its member; returns 0,
 * having written nothing, for anything else (decode_one explains it). */
static int fast_one(const bound *b, const uint8_t *p, size_t len, uint8_t *row)
{
    uint8_t *at = row + b->m.offset;
    switch (b->fast) {
    case FAST_BOOL: {
        if (len != 1 || p[0] > 1)
            return 0;
        bool x = p[0] != 0;
        memcpy(at, &x, sizeof x);
        return 1;
    }
    case FAST_I16: {
        if (len != 2)
            return 0;
        uint16_t v = molt_db__rd16(p);
        memcpy(at, &v, 2);
        return 1;
    }
    case FAST_I32:
    case FAST_F32: {
        if (len != 4)
            return 0;
        uint32_t v = molt_db__rd32(p);
        memcpy(at, &v, 4);
        return 1;
    }
    case FAST_I64_FROM4: {
        if (len != 4)
            return 0;
        int64_t v = (int32_t)molt_db__rd32(p);
        memcpy(at, &v, 8);
        return 1;
    }
    case FAST_I64:
    case FAST_F64: {
        if (len != 8)
            return 0;
        uint64_t v = molt_db__rd64(p);
        memcpy(at, &v, 8);
        return 1;
    }
    case FAST_TS: {
        if (len != 8)
            return 0;
        int64_t v = (int64_t)molt_db__rd64(p);
        if (v != INT64_MAX && v != INT64_MIN) {
            if (v > INT64_MAX - MOLT_DB__PG_EPOCH_USECS)
                return 0;
            v += MOLT_DB__PG_EPOCH_USECS;
        }
        memcpy(at, &v, 8);
        return 1;
    }
    case FAST_CHARS:
        if (len >= b->m.size)
            return 0; /* does not fit: truncated or refused there */
        memcpy(at, p, len);
        memset(at + len, 0, b->m.size - len);
        return 1;
    case FAST_SVIEW: {
        molt_db_string_view sv = {(const char *)p, len};
        memcpy(at, &sv, sizeof sv);
        return 1;
    }
    default:
        return 0;
    }
}

/* Longest prefix of s (at most max bytes) that does not split a UTF-8
 * character. */
static size_t utf8_cut(const uint8_t *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && (s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* The text of a value for a string member: its bytes, or the text it
 * decodes to (jsonb's), or the server's text form printed into scratch. */
static int text_of(const bound *b, const uint8_t *p, size_t len,
                   molt_db_buf *scratch, const uint8_t **t, size_t *tl,
                   molt_db_error *err)
{
    if (raw_text(b)) {
        *t = p;
        *tl = len;
        return MOLT_DB_OK;
    }
    if (has_text(b->t)) {
        molt_db_value v;
        int rc = b->t->decode(p, len, &v, err);
        if (rc != MOLT_DB_OK)
            return rc;
        *t = v.u.bytes.p;
        *tl = v.u.bytes.len;
        return MOLT_DB_OK;
    }
    if (scratch == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "rowstruct: column \"%s\" needs a scratch buffer",
                                 b->name);
    size_t at = scratch->len;
    int rc = molt_db_value_to_text(b->oid, p, len, scratch, err);
    if (rc != MOLT_DB_OK)
        return rc;
    *t = scratch->data + at;
    *tl = scratch->len - at;
    return MOLT_DB_OK;
}

/* Members that take a number, a time or a uuid: the value read through
 * the type table, converted to the member's C type. */
static int decode_scalar(const bound *b, const uint8_t *p, size_t len,
                         uint8_t *at, molt_db_error *err)
{
    molt_db_value v;
    v.cls = b->t->cls; /* bound: a type with a line */
    int rc = b->t->decode(p, len, &v, err);
    if (rc != MOLT_DB_OK)
        return rc;
    union {
        bool b;
        int16_t i16;
        int32_t i32;
        double f8;
    } x;
    switch (b->m.type) {
    case MOLT_DB_MEMBER_BOOL: x.b = v.u.i != 0; break;
    case MOLT_DB_MEMBER_INT16: x.i16 = (int16_t)v.u.i; break;
    case MOLT_DB_MEMBER_INT32: x.i32 = (int32_t)v.u.i; break; /* int2/int4 only */
    case MOLT_DB_MEMBER_DOUBLE:
        x.f8 = v.cls == MOLT_DB_VALUE_FLOAT4 ? (double)v.u.f4 : v.u.f8;
        break;
    case MOLT_DB_MEMBER_TIMESTAMP_US:
        if (molt_db__unix_us(&v.u.i) != MOLT_DB_OK)
            return molt_db_error_set(err, MOLT_DB_ERANGE, "timestamp out of range");
        memcpy(at, &v.u.i, 8);
        return MOLT_DB_OK;
    case MOLT_DB_MEMBER_DATE_DAYS:
        if (molt_db__unix_days(&v.u.i) != MOLT_DB_OK)
            return molt_db_error_set(err, MOLT_DB_ERANGE, "date out of range");
        x.i32 = (int32_t)v.u.i;
        break;
    default: /* FLOAT, INT64, UUID: the value as it is */
        memcpy(at, &v.u, member_size(&b->m));
        return MOLT_DB_OK;
    }
    memcpy(at, &x, member_size(&b->m));
    return MOLT_DB_OK;
}

/* char[N], string view, string copy */
static int decode_string(const bound *b, const uint8_t *p, size_t len,
                         uint8_t *at, molt_db_buf *scratch, molt_db_error *err)
{
    const uint8_t *t = NULL;
    size_t tl = 0;
    int rc = text_of(b, p, len, scratch, &t, &tl, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (b->m.type == MOLT_DB_MEMBER_STRING_VIEW) {
        molt_db_string_view sv = {(const char *)t, tl};
        memcpy(at, &sv, sizeof sv);
    } else if (b->m.type == MOLT_DB_MEMBER_STRING_COPY) {
        char *c = malloc(tl + 1);
        if (c == NULL)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
        memcpy(c, t, tl);
        c[tl] = '\0';
        memcpy(at, &c, sizeof c);
    } else {
        size_t room = b->m.size - 1;
        if (tl > room && !(b->m.flags & MOLT_DB_MEMBER_TRUNCATE))
            return molt_db_error_set(err, MOLT_DB_ERANGE,
                                     "a string of %zu bytes does not fit "
                                     "char[%zu]", tl, b->m.size);
        tl = utf8_cut(t, tl, room);
        memcpy(at, t, tl);
        memset(at + tl, 0, b->m.size - tl);
    }
    return MOLT_DB_OK;
}

/* bytes view, bytes copy */
static int decode_bytes(const bound *b, const uint8_t *p, size_t len,
                        uint8_t *at, molt_db_error *err)
{
    molt_db_bytes_view bv = {p, len};
    if (b->m.type == MOLT_DB_MEMBER_BYTES_COPY) {
        uint8_t *c = malloc(len ? len : 1);
        if (c == NULL)
            return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
        memcpy(c, p, len);
        bv.data = c;
    }
    memcpy(at, &bv, sizeof bv);
    return MOLT_DB_OK;
}

#if MOLT_DB_HAVE_INT128
static int decode_decimal(const bound *b, const uint8_t *p, size_t len,
                          uint8_t *at, molt_db_error *err)
{
    molt_db_numeric n;
    molt_db_decimal128 d;
    int rc;
    if ((rc = molt_db_numeric_decode(p, len, &n, err)) != MOLT_DB_OK)
        return rc;
    if (n.sign != MOLT_DB_NUMERIC_POS && n.sign != MOLT_DB_NUMERIC_NEG)
        return molt_db_error_set(err, MOLT_DB_ERANGE,
                                 "NaN or infinity cannot be a decimal128");
    if ((rc = molt_db_numeric_to_decimal128(&n, &d, err)) != MOLT_DB_OK)
        return rc;
    if (d.scale > b->m.scale)
        return molt_db_error_set(err, MOLT_DB_ERANGE,
                                 "value has %d digits after the point, the "
                                 "member %d", (int)d.scale, (int)b->m.scale);
    for (; d.scale < b->m.scale; d.scale++) {
        molt_db_int128 lim = (molt_db_int128)1 << 122;
        if (d.unscaled > lim || d.unscaled < -lim)
            return molt_db_error_set(err, MOLT_DB_ERANGE, "value out of range");
        d.unscaled *= 10;
    }
    memcpy(at, &d, sizeof d);
    return MOLT_DB_OK;
}
#endif

static int decode_one(const bound *b, const uint8_t *p, size_t len,
                      uint8_t *dst, molt_db_buf *scratch, molt_db_error *err)
{
    uint8_t *at = dst + b->m.offset;
    switch (b->m.type) {
    case MOLT_DB_MEMBER_CHARS:
    case MOLT_DB_MEMBER_STRING_VIEW:
    case MOLT_DB_MEMBER_STRING_COPY:
        return decode_string(b, p, len, at, scratch, err);
    case MOLT_DB_MEMBER_BYTES_VIEW:
    case MOLT_DB_MEMBER_BYTES_COPY:
        return decode_bytes(b, p, len, at, err);
#if MOLT_DB_HAVE_INT128
    case MOLT_DB_MEMBER_DECIMAL128:
        return decode_decimal(b, p, len, at, err);
#endif
    default:
        if (member_size(&b->m) == 0)
            return molt_db_error_set(err, MOLT_DB_EINVAL, "bad member type");
        return decode_scalar(b, p, len, at, err);
    }
}

static void free_copy(const molt_db_member *m, uint8_t *row)
{
    uint8_t *at = row + m->offset;
    if (m->type == MOLT_DB_MEMBER_STRING_COPY) {
        char *c;
        memcpy(&c, at, sizeof c);
        free(c);
        c = NULL;
        memcpy(at, &c, sizeof c);
    } else if (m->type == MOLT_DB_MEMBER_BYTES_COPY) {
        molt_db_bytes_view bv;
        memcpy(&bv, at, sizeof bv);
        free((void *)bv.data);
        bv.data = NULL;
        bv.len = 0;
        memcpy(at, &bv, sizeof bv);
    }
}

int molt_db_rowstruct_decode(const molt_db_rowstruct_plan *plan,
                             const molt_db_field *fields, size_t nfields,
                             void *dst, molt_db_buf *scratch,
                             molt_db_error *err)
{
    if (nfields != plan->ncols)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "rowstruct: row has %zu fields, result %zu "
                                 "columns", nfields, plan->ncols);
    if (scratch != NULL)
        molt_db_buf_reset(scratch);
    uint8_t *row = dst;
    size_t i;
    int rc = MOLT_DB_OK;
    for (i = 0; i < plan->n; i++) {
        const bound *b = &plan->b[i];
        const molt_db_field *f = &fields[b->col];
        bool is_null = f->len < 0;
        if (b->m.null_offset) {
            memcpy(row + b->m.null_offset - 1, &is_null, sizeof is_null);
        } else if (is_null) {
            rc = molt_db_error_set(err, MOLT_DB_ERANGE,
                                   "rowstruct: column \"%s\": NULL into a member "
                                   "with no null flag", b->name);
            break;
        }
        if (is_null) {
            size_t sz = member_size(&b->m);
            memset(row + b->m.offset, 0, sz);
            continue;
        }
        if (fast_one(b, f->data, (size_t)f->len, row))
            continue;
        rc = decode_one(b, f->data, (size_t)f->len, row, scratch, err);
        if (rc != MOLT_DB_OK) {
            if (err != NULL) {
                char m[MOLT_DB_ERROR_MESSAGE_SIZE];
                memcpy(m, err->message, sizeof m);
                molt_db_error_set(err, rc, "rowstruct: column \"%s\": %s",
                                  b->name, m);
            }
            break;
        }
    }
    if (rc != MOLT_DB_OK) {
        /* copies made for this row before the failing member */
        for (size_t j = 0; j < i; j++)
            if (fields[plan->b[j].col].len >= 0)
                free_copy(&plan->b[j].m, row);
    }
    return rc;
}

void molt_db_rowstruct_free_copies(const molt_db_rowstruct_desc *desc,
                                   void *rows, size_t n)
{
    uint8_t *r = rows;
    for (size_t k = 0; k < n; k++, r += desc->struct_size)
        for (size_t i = 0; i < desc->nmembers; i++)
            free_copy(&desc->members[i], r);
}
