/* Array parameters as PostgreSQL text array literals (see pg_array.h). */
#include "pg_array.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"
#include "molt_db/types.h"

#include "mpread.h"

/* The element kinds, in the order a mix may widen (int + float = float). */
enum { K_NONE = 0, K_INT, K_FLOAT, K_BOOL, K_STR, K_BIN };

typedef struct shape {
    size_t ndims;
    size_t dims[MW_PG_ARRAY_MAX_DIMS];
    int kind;
    char *err;
} shape;

static int fail(shape *s, const char *m)
{
    snprintf(s->err, MW_PG_ARRAY_ERR_SIZE, "%s", m);
    return -1;
}

static int scalar_kind(const mw_mpval *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return K_NONE;
    case MSGPACK_OBJECT_BOOLEAN: return K_BOOL;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return K_INT;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return K_FLOAT;
    case MSGPACK_OBJECT_STR: return K_STR;
    case MSGPACK_OBJECT_BIN: return K_BIN;
    default: return -1;
    }
}

/* Checks the value at p[*i] (at depth d) against the dimensions and merges
 * element kinds; *i moves past it. */
static int check(shape *s, const uint8_t *p, size_t len, size_t *i, size_t d)
{
    mw_mpval o;
    if (mw_mpread_head(p, len, i, &o) < 0)
        return fail(s, "an array parameter is malformed MsgPack");
    if (d < s->ndims) {
        if (o.type != MSGPACK_OBJECT_ARRAY)
            return fail(s, "a nested array mixes lists and values at one depth");
        if (o.size != s->dims[d])
            return fail(s, "a nested array is ragged (sub-lists of different "
                           "lengths at one depth)");
        for (uint32_t k = 0; k < o.size; k++)
            if (check(s, p, len, i, d + 1))
                return -1;
        return 0;
    }
    if (o.type == MSGPACK_OBJECT_ARRAY)
        return fail(s, "a nested array mixes lists and values at one depth");
    int k = scalar_kind(&o);
    if (k < 0)
        return fail(s, "array elements are nil, bool, int, float, str or bin");
    if (o.type == MSGPACK_OBJECT_POSITIVE_INTEGER && o.u64 > INT64_MAX)
        return fail(s, "an array element is out of the signed 64-bit range");
    if (k == K_NONE || k == s->kind)
        return 0;
    if (s->kind == K_NONE)
        s->kind = k;
    else if ((s->kind == K_INT && k == K_FLOAT) || (s->kind == K_FLOAT && k == K_INT))
        s->kind = K_FLOAT;
    else
        return fail(s, "array elements mix types (all of one type, or nil)");
    return 0;
}

static void put_str(molt_db_buf *b, const char *s)
{
    molt_db_buf_put(b, s, strlen(s));
}

/* A str element: always quoted, so "", "NULL", blanks, commas and braces
 * stay text; " and \ are the two characters the array parser unescapes. */
static void put_quoted(molt_db_buf *b, const char *p, size_t n)
{
    molt_db_buf_put_u8(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            molt_db_buf_put(b, p + run, i - run);
            molt_db_buf_put_u8(b, '\\');
            run = i;
        }
    }
    molt_db_buf_put(b, p + run, n - run);
    molt_db_buf_put_u8(b, '"');
}

static void put_element(molt_db_buf *b, const mw_mpval *o)
{
    static const char hex[] = "0123456789abcdef";
    char t[MOLT_DB_FLOAT_TEXT_SIZE + 24];
    size_t n;
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        molt_db_buf_put_u8(b, o->u64 ? 't' : 'f');
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)o->u64);
        molt_db_buf_put(b, t, n);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = (size_t)snprintf(t, sizeof t, "%lld", (long long)(int64_t)o->u64);
        molt_db_buf_put(b, t, n);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        n = molt_db_format_float8(o->f64, t);
        molt_db_buf_put(b, t, n);
        break;
    case MSGPACK_OBJECT_STR:
        put_quoted(b, (const char *)o->ptr, o->size);
        break;
    case MSGPACK_OBJECT_BIN:
        /* bytea's hex input, its backslash escaped for the array parser */
        put_str(b, "\"\\\\x");
        for (uint32_t i = 0; i < o->size; i++) {
            unsigned char c = o->ptr[i];
            molt_db_buf_put_u8(b, (uint8_t)hex[c >> 4]);
            molt_db_buf_put_u8(b, (uint8_t)hex[c & 15]);
        }
        molt_db_buf_put_u8(b, '"');
        break;
    default: /* nil; check() let nothing else through */
        put_str(b, "NULL");
        break;
    }
}

/* The array at p[*i] (check() passed it), at depth d; *i moves past it. */
static void put_array(molt_db_buf *b, const uint8_t *p, size_t len, size_t *i,
                      size_t d, size_t ndims)
{
    mw_mpval o, e;
    if (mw_mpread_head(p, len, i, &o) < 0)
        return; /* check() read these bytes already */
    molt_db_buf_put_u8(b, '{');
    for (uint32_t k = 0; k < o.size; k++) {
        if (k)
            molt_db_buf_put_u8(b, ',');
        if (d + 1 < ndims)
            put_array(b, p, len, i, d + 1, ndims);
        else if (mw_mpread(p, len, i, &e) == 0)
            put_element(b, &e);
    }
    molt_db_buf_put_u8(b, '}');
}

int mw_pg_array_literal(const uint8_t *p, size_t len, char **lit, size_t *litlen,
                        const char **type, char err[MW_PG_ARRAY_ERR_SIZE])
{
    static const char *const type_of[] = {
        [K_NONE] = NULL, [K_INT] = "int8[]", [K_FLOAT] = "float8[]",
        [K_BOOL] = "bool[]", [K_STR] = NULL, [K_BIN] = "bytea[]",
    };
    shape s = {0, {0}, K_NONE, err};
    *lit = NULL;
    *litlen = 0;
    *type = NULL;
    /* the dimensions follow the first element down: the bytes of an array
     * whose first element is an array go on with that element's head */
    size_t i = 0;
    mw_mpval o;
    int empty = 0;
    if (mw_mpread_head(p, len, &i, &o) < 0)
        return fail(&s, "an array parameter is malformed MsgPack");
    while (o.type == MSGPACK_OBJECT_ARRAY) {
        if (s.ndims == MW_PG_ARRAY_MAX_DIMS)
            return fail(&s, "an array has more than 6 dimensions");
        s.dims[s.ndims++] = o.size;
        if (o.size == 0) {
            empty = 1;
            break;
        }
        if (mw_mpread_head(p, len, &i, &o) < 0)
            return fail(&s, "an array parameter is malformed MsgPack");
    }
    i = 0;
    if (check(&s, p, len, &i, 0))
        return -1;
    molt_db_buf b;
    molt_db_buf_init(&b);
    i = 0;
    if (empty)
        put_str(&b, "{}"); /* PostgreSQL has one empty array, of no dimensions */
    else
        put_array(&b, p, len, &i, 0, s.ndims);
    molt_db_buf_put_u8(&b, 0);
    if (molt_db_buf_ok(&b) != MOLT_DB_OK) {
        molt_db_buf_free(&b);
        return -2;
    }
    if (b.len - 1 > MW_PG_ARRAY_MAX_BYTES) {
        molt_db_buf_free(&b);
        return fail(&s, "an array parameter is larger than PostgreSQL's 1 GB "
                        "field limit");
    }
    *lit = (char *)b.data;
    *litlen = b.len - 1;
    *type = type_of[s.kind];
    return 0;
}
