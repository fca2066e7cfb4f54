/* Text output of arrays (array_out's quoting and [lb:ub]= decoration),
 * ranges (range_out's bound quoting) and multiranges. Elements and bounds
 * go through molt_db_value_to_text, then get quoted as the server would. */
#include "molt_db/types.h"
#include "types_internal.h"

#include <stdio.h>
#include <string.h>

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

static int is_null_word(const uint8_t *s, size_t n)
{
    static const char w[] = "null";
    if (n != 4)
        return 0;
    for (size_t i = 0; i < 4; i++)
        if ((s[i] | 0x20) != w[i])
            return 0;
    return 1;
}

/* Appends an array element's text, quoted and escaped when array_in would
 * otherwise misread it. */
static void put_array_elem(molt_db_buf *out, const uint8_t *s, size_t n)
{
    int quote = n == 0 || is_null_word(s, n);
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == '"' || s[i] == '\\' || s[i] == '{' || s[i] == '}' ||
                s[i] == ',' || is_space(s[i]);
    if (!quote) {
        molt_db_buf_put(out, s, n);
        return;
    }
    molt_db_buf_put_u8(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            molt_db_buf_put_u8(out, '\\');
        molt_db_buf_put_u8(out, s[i]);
    }
    molt_db_buf_put_u8(out, '"');
}

/* Appends a range bound's text, quoted when range_in would misread it;
 * inside quotes '"' and '\' are doubled. */
static void put_range_bound(molt_db_buf *out, const uint8_t *s, size_t n)
{
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == '"' || s[i] == '\\' || s[i] == '(' || s[i] == ')' ||
                s[i] == '[' || s[i] == ']' || s[i] == ',' || is_space(s[i]);
    if (!quote) {
        molt_db_buf_put(out, s, n);
        return;
    }
    molt_db_buf_put_u8(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            molt_db_buf_put_u8(out, s[i]);
        molt_db_buf_put_u8(out, s[i]);
    }
    molt_db_buf_put_u8(out, '"');
}

typedef struct array_walk {
    const molt_db_array *a;
    molt_db_array_iter it;
    molt_db_buf *out;
    molt_db_buf scratch;
    molt_db_error *err;
} array_walk;

static int walk_dim(array_walk *w, int dim)
{
    molt_db_buf_put_u8(w->out, '{');
    for (int32_t j = 0; j < w->a->dims[dim]; j++) {
        if (j > 0)
            molt_db_buf_put_u8(w->out, ',');
        int rc;
        if (dim + 1 < w->a->ndim) {
            if ((rc = walk_dim(w, dim + 1)) != MOLT_DB_OK)
                return rc;
            continue;
        }
        const uint8_t *d;
        int32_t n;
        rc = molt_db_array_next(&w->it, &d, &n, w->err);
        if (rc < 0)
            return rc;
        if (rc == 0) /* cannot happen: nelems is the product of dims */
            return molt_db_error_set(w->err, MOLT_DB_EPROTO,
                                     "array ended early");
        if (n < 0) {
            molt_db_buf_put(w->out, "NULL", 4);
            continue;
        }
        molt_db_buf_reset(&w->scratch);
        rc = molt_db_value_to_text(w->a->elem_oid, d, (size_t)n, &w->scratch,
                                   w->err);
        if (rc != MOLT_DB_OK)
            return rc;
        put_array_elem(w->out, w->scratch.data, w->scratch.len);
    }
    molt_db_buf_put_u8(w->out, '}');
    return molt_db_buf_ok(w->out);
}

int molt_db__array_text(const molt_db_type_info *t, const uint8_t *p,
                        size_t len, molt_db_buf *out, molt_db_error *err)
{
    molt_db_array a;
    int rc = molt_db_array_decode(p, len, &a, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (a.elem_oid != t->element)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "%s value has element type %lu", t->name,
                                 (unsigned long)a.elem_oid);
    if (a.nelems == 0) {
        if (a.elems_len != 0)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "empty array with %zu data bytes",
                                     a.elems_len);
        molt_db_buf_put(out, "{}", 2);
        return molt_db_buf_ok(out);
    }
    int decorate = 0;
    for (int i = 0; i < a.ndim; i++)
        decorate |= a.lbounds[i] != 1;
    if (decorate) {
        for (int i = 0; i < a.ndim; i++) {
            char dim[32];
            int n = snprintf(dim, sizeof dim, "[%ld:%ld]", (long)a.lbounds[i],
                             (long)a.lbounds[i] + a.dims[i] - 1);
            molt_db_buf_put(out, dim, (size_t)n);
        }
        molt_db_buf_put_u8(out, '=');
    }
    array_walk w = {&a, {0}, out, {0}, err};
    molt_db_array_iter_init(&w.it, &a);
    rc = walk_dim(&w, 0);
    if (rc == MOLT_DB_OK) {
        const uint8_t *d;
        int32_t n;
        rc = molt_db_array_next(&w.it, &d, &n, err); /* 0: no bytes left */
    }
    molt_db_buf_free(&w.scratch);
    return rc;
}

static int range_text(uint32_t subtype, const molt_db_range *r,
                      molt_db_buf *out, molt_db_buf *scratch,
                      molt_db_error *err)
{
    if (r->flags & MOLT_DB_RANGE_EMPTY) {
        molt_db_buf_put(out, "empty", 5);
        return molt_db_buf_ok(out);
    }
    molt_db_buf_put_u8(out, (r->flags & MOLT_DB_RANGE_LB_INC) ? '[' : '(');
    const uint8_t *b[2] = {r->lower, r->upper};
    int32_t n[2] = {r->lower_len, r->upper_len};
    for (int i = 0; i < 2; i++) {
        if (i == 1)
            molt_db_buf_put_u8(out, ',');
        if (n[i] < 0)
            continue; /* infinite */
        molt_db_buf_reset(scratch);
        int rc = molt_db_value_to_text(subtype, b[i], (size_t)n[i], scratch,
                                       err);
        if (rc != MOLT_DB_OK)
            return rc;
        put_range_bound(out, scratch->data, scratch->len);
    }
    molt_db_buf_put_u8(out, (r->flags & MOLT_DB_RANGE_UB_INC) ? ']' : ')');
    return molt_db_buf_ok(out);
}

int molt_db__range_text(const molt_db_type_info *t, const uint8_t *p,
                        size_t len, molt_db_buf *out, molt_db_error *err)
{
    molt_db_range r;
    int rc = molt_db_range_decode(p, len, &r, err);
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db_buf scratch = {0};
    rc = range_text(t->element, &r, out, &scratch, err);
    molt_db_buf_free(&scratch);
    return rc;
}

int molt_db__multirange_text(const molt_db_type_info *t, const uint8_t *p,
                             size_t len, molt_db_buf *out, molt_db_error *err)
{
    const molt_db_type_info *rt = molt_db_type_lookup(t->element);
    if (rt == NULL)
        return molt_db_error_set(err, MOLT_DB_ETYPE, "unknown range type");
    molt_db_multirange m;
    int rc = molt_db_multirange_decode(p, len, &m, err);
    if (rc != MOLT_DB_OK)
        return rc;
    molt_db_multirange_iter it;
    molt_db_multirange_iter_init(&it, &m);
    molt_db_buf scratch = {0};
    molt_db_range r;
    molt_db_buf_put_u8(out, '{');
    for (uint32_t i = 0; (rc = molt_db_multirange_next(&it, &r, err)) == 1;
         i++) {
        if (i > 0)
            molt_db_buf_put_u8(out, ',');
        if ((rc = range_text(rt->element, &r, out, &scratch, err)) != MOLT_DB_OK)
            break;
    }
    molt_db_buf_free(&scratch);
    if (rc != 0)
        return rc;
    molt_db_buf_put_u8(out, '}');
    return molt_db_buf_ok(out);
}
