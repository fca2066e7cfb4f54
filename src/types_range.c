/* Ranges (a flags byte and the bounds it calls for) and multiranges (a
 * count of length-prefixed ranges): binary codecs. */
#include "molt_db/types.h"
#include "types_internal.h"

#define WIRE_FLAGS                                                          \
    (MOLT_DB_RANGE_EMPTY | MOLT_DB_RANGE_LB_INC | MOLT_DB_RANGE_UB_INC |     \
     MOLT_DB_RANGE_LB_INF | MOLT_DB_RANGE_UB_INF)

/* As the server's RANGE_HAS_LBOUND / RANGE_HAS_UBOUND. */
static int has_lower(uint8_t f)
{
    return !(f & (MOLT_DB_RANGE_EMPTY | MOLT_DB_RANGE_LB_NULL |
                  MOLT_DB_RANGE_LB_INF));
}

static int has_upper(uint8_t f)
{
    return !(f & (MOLT_DB_RANGE_EMPTY | MOLT_DB_RANGE_UB_NULL |
                  MOLT_DB_RANGE_UB_INF));
}

static int read_bound(const uint8_t **pos, const uint8_t *end,
                      const uint8_t **data, int32_t *len, const char *which,
                      molt_db_error *err)
{
    size_t left = (size_t)(end - *pos);
    if (left < 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "range %s bound length truncated", which);
    int32_t n = (int32_t)molt_db__rd32(*pos);
    if (n < 0 || (size_t)n > left - 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "range %s bound length %ld exceeds the %zu "
                                 "bytes left", which, (long)n, left - 4);
    *data = *pos + 4;
    *len = n;
    *pos += 4 + (size_t)n;
    return MOLT_DB_OK;
}

int molt_db_range_decode(const uint8_t *p, size_t len, molt_db_range *out,
                         molt_db_error *err)
{
    if (len < 1)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "range value has no flags byte");
    molt_db_range r = {p[0], NULL, -1, NULL, -1};
    const uint8_t *pos = p + 1, *end = p + len;
    int rc;
    if (has_lower(r.flags) &&
        (rc = read_bound(&pos, end, &r.lower, &r.lower_len, "lower", err)) < 0)
        return rc;
    if (has_upper(r.flags) &&
        (rc = read_bound(&pos, end, &r.upper, &r.upper_len, "upper", err)) < 0)
        return rc;
    if (pos != end)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "%zu bytes after the range's bounds",
                                 (size_t)(end - pos));
    *out = r;
    return MOLT_DB_OK;
}

int molt_db_encode_range(molt_db_buf *out, const molt_db_range *r,
                         molt_db_error *err)
{
    uint8_t f = r->flags;
    if (f & ~WIRE_FLAGS)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "invalid range flags 0x%02x", f);
    if ((f & MOLT_DB_RANGE_EMPTY) && f != MOLT_DB_RANGE_EMPTY)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "an empty range takes no other flags");
    if ((has_lower(f) && (r->lower_len < 0 || r->lower == NULL)) ||
        (has_upper(f) && (r->upper_len < 0 || r->upper == NULL)))
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "range flags call for a bound that is missing");
    size_t start = out->len;
    molt_db_buf_put_u8(out, f);
    if (has_lower(f)) {
        molt_db_buf_put_u32(out, (uint32_t)r->lower_len);
        molt_db_buf_put(out, r->lower, (size_t)r->lower_len);
    }
    if (has_upper(f)) {
        molt_db_buf_put_u32(out, (uint32_t)r->upper_len);
        molt_db_buf_put(out, r->upper, (size_t)r->upper_len);
    }
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}

int molt_db_multirange_decode(const uint8_t *p, size_t len,
                              molt_db_multirange *out, molt_db_error *err)
{
    if (len < 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "multirange value has %zu bytes, expected >= 4",
                                 len);
    uint32_t count = molt_db__rd32(p);
    /* each range takes a 4-byte length and a flags byte at least */
    if (count > INT32_MAX || count > (len - 4) / 5)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "multirange count %lu exceeds its %zu bytes",
                                 (unsigned long)count, len);
    out->count = count;
    out->ranges = p + 4;
    out->ranges_len = len - 4;
    return MOLT_DB_OK;
}

void molt_db_multirange_iter_init(molt_db_multirange_iter *it,
                                  const molt_db_multirange *m)
{
    it->pos = m->ranges;
    it->end = m->ranges + m->ranges_len;
    it->remaining = m->count;
}

int molt_db_multirange_next(molt_db_multirange_iter *it, molt_db_range *r,
                            molt_db_error *err)
{
    size_t left = (size_t)(it->end - it->pos);
    if (it->remaining == 0) {
        if (left != 0)
            return molt_db_error_set(err, MOLT_DB_EPROTO,
                                     "%zu bytes after the last range", left);
        return 0;
    }
    if (left < 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "multirange range length truncated");
    int32_t n = (int32_t)molt_db__rd32(it->pos);
    if (n < 1 || (size_t)n > left - 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "multirange range length %ld exceeds the %zu "
                                 "bytes left", (long)n, left - 4);
    int rc = molt_db_range_decode(it->pos + 4, (size_t)n, r, err);
    if (rc != MOLT_DB_OK)
        return rc;
    it->pos += 4 + (size_t)n;
    it->remaining--;
    return 1;
}

int molt_db_encode_multirange(molt_db_buf *out, const uint8_t *range_data,
                              const int32_t *range_lens, size_t n,
                              molt_db_error *err)
{
    if (n > INT32_MAX)
        return molt_db_error_set(err, MOLT_DB_EINVAL, "too many ranges");
    for (size_t i = 0; i < n; i++)
        if (range_lens[i] < 1)
            return molt_db_error_set(err, MOLT_DB_EINVAL,
                                     "range %zu has length %ld", i,
                                     (long)range_lens[i]);
    size_t start = out->len;
    molt_db_buf_put_u32(out, (uint32_t)n);
    const uint8_t *d = range_data;
    for (size_t i = 0; i < n; i++) {
        molt_db_buf_put_u32(out, (uint32_t)range_lens[i]);
        molt_db_buf_put(out, d, (size_t)range_lens[i]);
        d += range_lens[i];
    }
    return molt_db__buf_finish(out, start, MOLT_DB_OK);
}
