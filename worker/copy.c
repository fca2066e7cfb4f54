/* copy_in and copy_out payloads: the COPY statement, the rows in COPY's
 * text format, copy_out's checks (copy.h). No I/O: the fuzzer runs it. */
#include "copy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/types.h"
#include "mpbuf.h"
#include "pg_array.h"
#include "pg_ident.h"

void mw_copy_free(mw_copy *c)
{
    if (!c)
        return;
    free(c->sql);
    molt_db_buf_free(&c->data);
    free(c);
}

size_t mw_copy_held_bytes(const mw_copy *c)
{
    return c ? sizeof *c + (c->sql ? strlen(c->sql) + 1 : 0) + c->data.cap : 0;
}

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(msg, MW_MSG_SIZE, __VA_ARGS__);                               \
        return -1;                                                             \
    } while (0)
#define NOMEM()                                                                \
    do {                                                                       \
        snprintf(msg, MW_MSG_SIZE, "out of memory");                           \
        return -2;                                                             \
    } while (0)

/* Text as one COPY text field: backslash, tab, newline and carriage return
 * escaped, so a value never ends its field or row early. */
static void put_escaped(molt_db_buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t"
                          : s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : NULL;
        if (!esc)
            continue;
        molt_db_buf_put(b, s + run, i - run);
        molt_db_buf_put(b, esc, 2);
        run = i + 1;
    }
    molt_db_buf_put(b, s + run, n - run);
}

static int put_value(molt_db_buf *b, const msgpack_object *v, size_t row,
                     size_t col, char msg[MW_MSG_SIZE])
{
    char t[MOLT_DB_FLOAT_TEXT_SIZE > 32 ? MOLT_DB_FLOAT_TEXT_SIZE : 32];
    size_t n;
    switch (v->type) {
    case MSGPACK_OBJECT_NIL:
        molt_db_buf_put(b, "\\N", 2);
        return 0;
    case MSGPACK_OBJECT_BOOLEAN:
        molt_db_buf_put_u8(b, v->via.boolean ? 't' : 'f');
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = (size_t)snprintf(t, sizeof t, "%" PRIu64, v->via.u64);
        molt_db_buf_put(b, t, n);
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = (size_t)snprintf(t, sizeof t, "%" PRId64, v->via.i64);
        molt_db_buf_put(b, t, n);
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        n = molt_db_format_float8(v->via.f64, t);
        molt_db_buf_put(b, t, n);
        return 0;
    case MSGPACK_OBJECT_STR:
        put_escaped(b, v->via.str.ptr, v->via.str.size);
        return 0;
    case MSGPACK_OBJECT_BIN: {
        static const char hex[] = "0123456789abcdef";
        molt_db_buf_put(b, "\\\\x", 3); /* bytea's \x, its backslash escaped */
        for (size_t i = 0; i < v->via.bin.size; i++) {
            uint8_t c = (uint8_t)v->via.bin.ptr[i];
            molt_db_buf_put_u8(b, (uint8_t)hex[c >> 4]);
            molt_db_buf_put_u8(b, (uint8_t)hex[c & 15]);
        }
        return 0;
    }
    case MSGPACK_OBJECT_ARRAY: {
        /* pg_array reads MsgPack bytes: the rows here are msgpack-c objects,
         * so the array is packed back (copy_in's arrays are rare) */
        char *lit = NULL, err[MW_PG_ARRAY_ERR_SIZE];
        size_t len = 0;
        const char *type;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        int rc = msgpack_pack_object(&pk, *v) == 0
                     ? mw_pg_array_literal((const uint8_t *)sb.data, sb.size, &lit, &len,
                                           &type, err)
                     : -2;
        msgpack_sbuffer_destroy(&sb);
        if (rc == -2)
            NOMEM();
        if (rc < 0)
            FAIL("rows[%zu][%zu]: %s", row, col, err);
        put_escaped(b, lit, len);
        free(lit);
        return 0;
    }
    default:
        FAIL("rows[%zu][%zu]: a %s cannot be copied (values are nil, bool, int, "
             "float, str, bin or an array of them; send JSON as text)", row, col,
             v->type == MSGPACK_OBJECT_MAP ? "map" : "MsgPack extension");
    }
}

/* "schema"."table": table is a str or [schema, table]. */
static int put_table(molt_db_buf *sql, const msgpack_object *o, char msg[MW_MSG_SIZE])
{
    const msgpack_object *parts = o;
    size_t n = 1;
    if (o && o->type == MSGPACK_OBJECT_ARRAY) {
        parts = o->via.array.ptr;
        n = o->via.array.size;
    }
    if (!o || n < 1 || n > 2)
        FAIL("table must be a str or [schema, table]");
    for (size_t i = 0; i < n; i++) {
        const char *why;
        if (parts[i].type != MSGPACK_OBJECT_STR)
            FAIL("table must be a str or [schema, table]");
        if (mw_pg_ident_check(parts[i].via.str.ptr, parts[i].via.str.size, &why) < 0)
            FAIL("table name %s", why);
        if (i)
            molt_db_buf_put_u8(sql, '.');
        mw_pg_ident_quote(sql, parts[i].via.str.ptr, parts[i].via.str.size);
    }
    return 0;
}

/* ("a", "b"), or nothing when columns is absent (all, in table order). */
static int put_columns(molt_db_buf *sql, const msgpack_object *o, size_t *ncols,
                       char msg[MW_MSG_SIZE])
{
    *ncols = 0;
    if (!o)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
        FAIL("columns must be a non-empty array of str");
    molt_db_buf_put(sql, " (", 2);
    for (size_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        const char *why;
        if (c->type != MSGPACK_OBJECT_STR)
            FAIL("columns[%zu] must be a str", i);
        if (mw_pg_ident_check(c->via.str.ptr, c->via.str.size, &why) < 0)
            FAIL("columns[%zu] %s", i, why);
        for (size_t k = 0; k < i; k++)
            if (o->via.array.ptr[k].via.str.size == c->via.str.size &&
                !memcmp(o->via.array.ptr[k].via.str.ptr, c->via.str.ptr, c->via.str.size))
                FAIL("columns[%zu] is given twice", i);
        if (i)
            molt_db_buf_put(sql, ", ", 2);
        mw_pg_ident_quote(sql, c->via.str.ptr, c->via.str.size);
    }
    molt_db_buf_put_u8(sql, ')');
    *ncols = o->via.array.size;
    return 0;
}

static int put_rows(mw_copy *c, const msgpack_object *o, size_t ncols,
                    char msg[MW_MSG_SIZE])
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        FAIL("rows must be an array of arrays");
    for (size_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *row = &o->via.array.ptr[i];
        if (row->type != MSGPACK_OBJECT_ARRAY || row->via.array.size == 0)
            FAIL("rows[%zu] must be a non-empty array", i);
        if (!ncols)
            ncols = row->via.array.size;
        if (row->via.array.size != ncols)
            FAIL("rows[%zu] has %u values, not %zu", i, row->via.array.size, ncols);
        for (size_t k = 0; k < ncols; k++) {
            if (k)
                molt_db_buf_put_u8(&c->data, '\t');
            int rc = put_value(&c->data, &row->via.array.ptr[k], i, k, msg);
            if (rc < 0)
                return rc;
        }
        molt_db_buf_put_u8(&c->data, '\n');
    }
    c->rows = o->via.array.size;
    if (molt_db_buf_ok(&c->data) != MOLT_DB_OK)
        NOMEM();
    return 0;
}

/* Fills q's copy from the unpacked payload. 0, or -1 (InvalidInput) / -2
 * (out of memory) with msg. */
static int parse(mw_query *q, const msgpack_object *m, char msg[MW_MSG_SIZE])
{
    q->write = 1;
    q->format = MW_FORMAT_MSGPACK;
    mw_copy *c = q->copy = calloc(1, sizeof *c);
    if (!c)
        NOMEM();
    molt_db_buf_init(&c->data);
    molt_db_buf sql;
    molt_db_buf_init(&sql);
    size_t ncols = 0;
    molt_db_buf_put(&sql, "COPY ", 5);
    int rc = put_table(&sql, mw_map_get(m, "table", NULL), msg);
    if (rc == 0)
        rc = put_columns(&sql, mw_map_get(m, "columns", NULL), &ncols, msg);
    if (rc == 0)
        rc = put_rows(c, mw_map_get(m, "rows", NULL), ncols, msg);
    molt_db_buf_put(&sql, " FROM STDIN", 12); /* with its NUL */
    if (rc == 0 && molt_db_buf_ok(&sql) != MOLT_DB_OK) {
        snprintf(msg, MW_MSG_SIZE, "out of memory");
        rc = -2;
    }
    c->sql = (char *)sql.data; /* owned by c now */
    return rc;
}

int mw_copy_out_check(mw_query *q, char msg[MW_MSG_SIZE])
{
    if (q->alias->kind != MW_BACKEND_PG)
        FAIL("copy_out is not supported on SQLite (alias \"%s\"): use db_query "
             "(stream: true)", q->alias->name);
    if (q->statements || q->nstmts != 1)
        FAIL("copy_out runs one sql, not statements");
    if (q->in_tx)
        FAIL("copy_out does not run in a session's transaction (tx_id): use "
             "db_query there");
    if (q->stmts[0].rw.nslots > 0)
        FAIL("copy_out takes no parameters (COPY has none): write the values "
             "into the SQL or use db_query");
    q->copy_out = 1;
    return 0;
}

int mw_copy_in_parse(mw_query *q, const mw_config *cfg, const uint8_t *payload,
                     size_t len, char msg[MW_MSG_SIZE])
{
    mw_payload_keys keys;
    /* alias, backend, capability and transaction are judged on the indexed
     * keys, before the rows are unpacked: a refused copy_in costs no more
     * memory than its bytes */
    if (mw_payload_check(payload, len, &keys, msg) ||
        mw_payload_alias(cfg, &keys, &q->alias, msg))
        return -1;
    if (q->alias->kind != MW_BACKEND_PG)
        FAIL("copy_in is not supported on SQLite (alias \"%s\"): send the rows "
             "with db_exec statements (executemany)", q->alias->name);
    if (mw_payload_write_grant(&keys, "copy_in", q->alias, msg))
        return -1;
    if (mw_payload_has(&keys, "tx_id"))
        FAIL("copy_in does not run in a session's transaction (tx_id): it runs "
             "in a transaction of its own; use db_exec (executemany) inside one");
    msgpack_unpacked up;
    int rc = mw_payload_unpack(payload, len, &keys, &up, msg);
    if (rc)
        return rc;
    static const char *const names[] = {"table", "columns", "rows"};
    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names[0]; i++) {
        int dup = 0;
        mw_map_get(&up.data, names[i], &dup);
        if (dup) {
            snprintf(msg, MW_MSG_SIZE, "%s appears twice", names[i]);
            rc = -1;
        }
    }
    if (rc == 0)
        rc = parse(q, &up.data, msg);
    msgpack_unpacked_destroy(&up);
    return rc;
}
