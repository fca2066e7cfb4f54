/* Arrays: the binary header (ndim, flags, element type, dims and lower
 * bounds), an element iterator, and the encoder. */
#include "molt_db/types.h"
#include "types_internal.h"

#define ARRAY_HEADER 12

int molt_db_array_decode(const uint8_t *p, size_t len, molt_db_array *out,
                         molt_db_error *err)
{
    if (len < ARRAY_HEADER)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "array value has %zu bytes, expected >= 12",
                                 len);
    int32_t ndim = (int32_t)molt_db__rd32(p);
    int32_t flags = (int32_t)molt_db__rd32(p + 4);
    molt_db_array a = {0};
    a.elem_oid = molt_db__rd32(p + 8);
    if (ndim < 0 || ndim > MOLT_DB_ARRAY_MAX_DIMS)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "array has %ld dimensions (0..%d allowed)",
                                 (long)ndim, MOLT_DB_ARRAY_MAX_DIMS);
    if (flags != 0 && flags != 1)
        return molt_db_error_set(err, MOLT_DB_EPROTO, "invalid array flags %ld",
                                 (long)flags);
    a.ndim = ndim;
    a.has_nulls = flags;
    size_t hdr = ARRAY_HEADER + 8 * (size_t)ndim;
    if (len < hdr)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "array header of %ld dimensions truncated "
                                 "(%zu bytes)", (long)ndim, len);
    size_t rest = len - hdr;
    size_t n = ndim > 0 ? 1 : 0;
    for (int i = 0; i < ndim; i++) {
        int32_t dim = (int32_t)molt_db__rd32(p + ARRAY_HEADER + 8 * i);
        int32_t lb = (int32_t)molt_db__rd32(p + ARRAY_HEADER + 8 * i + 4);
        if (dim < 0)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "array dimension %d has length %ld", i + 1,
                                     (long)dim);
        if ((int64_t)lb + dim - 1 > INT32_MAX)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "array dimension %d upper bound overflows",
                                     i + 1);
        a.dims[i] = dim;
        a.lbounds[i] = lb;
        /* every element takes 4 bytes at least, so a count past rest/4 is
         * impossible; checking that also rules out overflow */
        if (dim != 0 && n > rest / 4 / (size_t)dim)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "array dimensions exceed its %zu data bytes",
                                     rest);
        n *= (size_t)dim;
    }
    a.nelems = n;
    a.elems = p + hdr;
    a.elems_len = rest;
    *out = a;
    return MOLT_DB_OK;
}

void molt_db_array_iter_init(molt_db_array_iter *it, const molt_db_array *a)
{
    it->pos = a->elems;
    it->end = a->elems + a->elems_len;
    it->remaining = a->nelems;
    it->has_nulls = a->has_nulls;
}

int molt_db_array_next(molt_db_array_iter *it, const uint8_t **data,
                       int32_t *len, molt_db_error *err)
{
    size_t left = (size_t)(it->end - it->pos);
    if (it->remaining == 0) {
        if (left != 0)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "%zu bytes after the last array element",
                                     left);
        return 0;
    }
    if (left < 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "array element length truncated");
    int32_t n = (int32_t)molt_db__rd32(it->pos);
    it->pos += 4;
    left -= 4;
    if (n == -1) {
        if (!it->has_nulls)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "NULL element in an array without NULLs");
        *data = NULL;
        *len = -1;
    } else {
        if (n < 0 || (size_t)n > left)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "array element length %ld exceeds the %zu "
                                     "bytes left", (long)n, left);
        *data = it->pos;
        *len = n;
        it->pos += n;
    }
    it->remaining--;
    return 1;
}

int molt_db_encode_array(molt_db_buf *out, uint32_t elem_oid, int ndim,
                         const int32_t *dims, const int32_t *lbounds,
                         const uint8_t *elem_data, const int32_t *elem_lens,
                         size_t nelems, molt_db_error *err)
{
    if (ndim < 0 || ndim > MOLT_DB_ARRAY_MAX_DIMS || (ndim > 0 && dims == NULL))
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "array must have 0..%d dimensions",
                                 MOLT_DB_ARRAY_MAX_DIMS);
    size_t n = ndim > 0 ? 1 : 0;
    for (int i = 0; i < ndim; i++) {
        int32_t lb = lbounds ? lbounds[i] : 1;
        if (dims[i] < 0 || (int64_t)lb + dims[i] - 1 > INT32_MAX)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "array dimension %d: bad length or bound",
                                     i + 1);
        if (dims[i] != 0 && n > SIZE_MAX / (size_t)dims[i])
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "array dimensions overflow");
        n *= (size_t)dims[i];
    }
    if (n != nelems)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "array dimensions make %zu elements, %zu given",
                                 n, nelems);
    int has_nulls = 0;
    for (size_t i = 0; i < nelems; i++) {
        if (elem_lens[i] < -1)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "array element %zu has length %ld", i,
                                     (long)elem_lens[i]);
        has_nulls |= elem_lens[i] == -1;
    }
    size_t start = out->len;
    molt_db_buf_put_u32(out, (uint32_t)ndim);
    molt_db_buf_put_u32(out, (uint32_t)has_nulls);
    molt_db_buf_put_u32(out, elem_oid);
    for (int i = 0; i < ndim; i++) {
        molt_db_buf_put_u32(out, (uint32_t)dims[i]);
        molt_db_buf_put_u32(out, (uint32_t)(lbounds ? lbounds[i] : 1));
    }
    const uint8_t *d = elem_data;
    for (size_t i = 0; i < nelems; i++) {
        molt_db_buf_put_u32(out, (uint32_t)elem_lens[i]);
        if (elem_lens[i] > 0) {
            molt_db_buf_put(out, d, (size_t)elem_lens[i]);
            d += elem_lens[i];
        }
    }
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}
