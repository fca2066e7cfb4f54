/* db_query / db_exec / tx_* / cancel / listen payloads (see payload.h). */
#include "payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpbuf.h"
#include "mpread.h"
#include "msgpack_check.h"
#include "copy.h"
#include "pg_array.h"
#include "pg_ident.h"
#include "sql_memo.h"
#include "zalloc.h"

#define FAIL(...) do { snprintf(msg, MW_MSG_SIZE, __VA_ARGS__); return -1; } while (0)

/* The payload's bytes (mw_msgpack_check passed them), read in place. */
typedef struct pdoc {
    const uint8_t *p;
    size_t len;
} pdoc;

/* Reads the value at *i whole into out; *i moves past it. 0 or -1. */
static int doc_read(const pdoc *d, size_t *i, mw_mpitem *out)
{
    return mw_mpread_item(d->p, d->len, i, out);
}

static int val_is(const mw_mpitem *o, const char *s)
{
    size_t n = strlen(s);
    return o->v.type == MSGPACK_OBJECT_STR && o->v.size == n &&
           memcmp(o->v.ptr, s, n) == 0;
}

#define KEY(k, name) [k] = {name, sizeof name - 1}

/* The values of map m's keys named in names (mpread.h), or none when m is
 * not a map. Reads bytes mw_msgpack_check passed, which do not end early. */
static void index_keys(const pdoc *d, const mw_mpitem *m, const mw_mpkey *names, int n,
                       mw_mpkeys *k)
{
    if (m->v.type != MSGPACK_OBJECT_MAP) {
        memset(k->v, 0, sizeof k->v);
        memset(k->dup, 0, sizeof k->dup);
        return;
    }
    (void)mw_mpread_keys(d->p, d->len, m->at, m->v.size, names, n, k);
}

/* The keys of a payload map that its parsers read, the ones nearly every
 * request has first: the walk looks each key up in this order. */
typedef enum pkey {
    K_SQL, K_PARAMS, K_RESULT_FORMAT, K_DB_ALIAS, K_ALLOW_WRITE, K_ROW_SHAPE, K_TAG,
    K_PIN_PRIMARY, K_MAX_ROWS, K_BATCH_ROWS, K_STREAM, K_TX_ID, K_STATEMENTS,
    K_ISOLATION, K_READ_ONLY, K_DEFERRABLE, K_COUNT
} pkey;
_Static_assert(K_COUNT <= MW_MPKEYS_MAX, "mw_mpkeys holds every payload key");

static const mw_mpkey key_names[K_COUNT] = {
    KEY(K_DB_ALIAS, "db_alias"),       KEY(K_ALLOW_WRITE, "allow_write"),
    KEY(K_RESULT_FORMAT, "result_format"), KEY(K_ROW_SHAPE, "row_shape"),
    KEY(K_TAG, "tag"),                 KEY(K_PIN_PRIMARY, "pin_primary"),
    KEY(K_MAX_ROWS, "max_rows"),       KEY(K_BATCH_ROWS, "batch_rows"),
    KEY(K_STREAM, "stream"),           KEY(K_TX_ID, "tx_id"),
    KEY(K_SQL, "sql"),                 KEY(K_PARAMS, "params"),
    KEY(K_STATEMENTS, "statements"),   KEY(K_ISOLATION, "isolation"),
    KEY(K_READ_ONLY, "read_only"),     KEY(K_DEFERRABLE, "deferrable"),
};

/* The keys of the maps inside: params, a parameter, a statement. */
enum { P_MODE, P_VALUES, P_VALUE, P_TYPE, P_NAME, P_COUNT };
static const mw_mpkey param_keys[P_COUNT] = {
    KEY(P_MODE, "mode"), KEY(P_VALUES, "values"), KEY(P_VALUE, "value"),
    KEY(P_TYPE, "type"), KEY(P_NAME, "name"),
};
enum { S_SQL, S_PARAMS, S_COUNT };
static const mw_mpkey stmt_keys[S_COUNT] = {
    KEY(S_SQL, "sql"), KEY(S_PARAMS, "params"),
};
#undef KEY

/* The payload checked as one bounded, well-formed MsgPack map with nothing
 * after it, its keys named in names indexed into k by the same walk. 0 or
 * -1 with msg. */
static int check(const pdoc *d, const mw_mpkey *names, int n, mw_mpkeys *k,
                 char msg[MW_MSG_SIZE])
{
    size_t end = 0, zone = 0, i = 0;
    mw_mp_check c = mw_msgpack_check_keys(d->p, d->len, names, n, k, &end, &zone);
    if (c != MW_MP_OK)
        FAIL("payload: %s", mw_msgpack_check_text(c));
    if (end != d->len)
        FAIL("payload has %zu trailing bytes", d->len - end);
    mw_mpval top;
    if (mw_mpread_head(d->p, d->len, &i, &top) < 0)
        FAIL("payload: malformed MsgPack");
    if (top.type != MSGPACK_OBJECT_MAP)
        FAIL("payload is not a MsgPack map");
    return 0;
}

/* The payload's top-level keys. */
static int payload_keys(const pdoc *d, mw_mpkeys *k, char msg[MW_MSG_SIZE])
{
    return check(d, key_names, K_COUNT, k, msg);
}

int mw_payload_check(const uint8_t *p, size_t n, mw_payload_keys *keys,
                     char msg[MW_MSG_SIZE])
{
    size_t end = 0;
    mw_mp_check c = mw_msgpack_check_keys(p, n, key_names, K_COUNT, &keys->k, &end,
                                          &keys->zone_bytes);
    if (c != MW_MP_OK)
        FAIL("payload: %s", mw_msgpack_check_text(c));
    if (end != n)
        FAIL("payload has %zu trailing bytes", n - end);
    if (n == 0 || !((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf))
        FAIL("payload is not a MsgPack map");
    return 0;
}

int mw_payload_unpack(const uint8_t *p, size_t n, const mw_payload_keys *keys,
                      msgpack_unpacked *up, char msg[MW_MSG_SIZE])
{
    /* The objects live as long as the request: a zone of exactly what they
     * take instead of msgpack's default 8 KB chunk, which 10,000 requests
     * in flight hold as 80 MB. */
    int r = mw_msgpack_unpack(p, n, keys->zone_bytes, up);
    if (r != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(up);
        if (r == MSGPACK_UNPACK_NOMEM_ERROR)
            return -2;
        FAIL("payload: malformed MsgPack");
    }
    return 0;
}

int mw_payload_has(const mw_payload_keys *keys, const char *name)
{
    int k = mw_mpkey_find(key_names, K_COUNT, (const uint8_t *)name, (uint32_t)strlen(name));
    return k >= 0 && keys->k.v[k] != NULL;
}

int mw_cancel_parse(const uint8_t *p, size_t n, uint64_t *target,
                    char msg[MW_MSG_SIZE])
{
    static const mw_mpkey request_id[] = {{"request_id", 10}};
    pdoc d = {p, n};
    mw_mpkeys k;
    if (check(&d, request_id, 1, &k, msg))
        return -1;
    const mw_mpitem *o = k.v[0];
    if (!o || o->v.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        FAIL("cancel payload needs request_id (uint64)");
    *target = o->v.u64;
    return 0;
}

static int get_str(const mw_mpkeys *m, pkey key, const mw_mpitem **out,
                   char msg[MW_MSG_SIZE])
{
    *out = m->v[key];
    if (m->dup[key])
        FAIL("%s appears twice", key_names[key].name);
    if (*out && (*out)->v.type != MSGPACK_OBJECT_STR)
        FAIL("%s must be a str", key_names[key].name);
    return 0;
}

static int get_bool(const mw_mpkeys *m, pkey key, int *out, char msg[MW_MSG_SIZE])
{
    const mw_mpitem *o = m->v[key];
    if (m->dup[key])
        FAIL("%s appears twice", key_names[key].name);
    if (!o)
        return 0;
    if (o->v.type != MSGPACK_OBJECT_BOOLEAN)
        FAIL("%s must be a bool", key_names[key].name);
    *out = (int)o->v.u64;
    return 1;
}

static int get_uint(const mw_mpkeys *m, pkey key, uint64_t *out, char msg[MW_MSG_SIZE])
{
    const mw_mpitem *o = m->v[key];
    if (m->dup[key])
        FAIL("%s appears twice", key_names[key].name);
    if (!o)
        return 0;
    if (o->v.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        FAIL("%s must be an unsigned integer", key_names[key].name);
    *out = o->v.u64;
    return 1;
}

static int get_isolation(const mw_mpkeys *m, mw_isolation *out, char msg[MW_MSG_SIZE])
{
    const mw_mpitem *o;
    if (get_str(m, K_ISOLATION, &o, msg))
        return -1;
    if (!o)
        return 0;
    if (val_is(o, "read_committed"))
        *out = MW_ISO_READ_COMMITTED;
    else if (val_is(o, "repeatable_read"))
        *out = MW_ISO_REPEATABLE_READ;
    else if (val_is(o, "serializable"))
        *out = MW_ISO_SERIALIZABLE;
    else
        FAIL("isolation must be read_committed, repeatable_read or serializable");
    return 1;
}

static int is_type_name(const char *p, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == ' ' || c == '.' ||
              c == '[' || c == ']' || c == '"'))
            return 0;
    }
    return 1;
}

/* A parameter as messages name it: "$2" (positional, name NULL) or
 * ":name". Made only for a message: most requests have none. */
typedef struct param_ref {
    size_t index;
    const char *name;
    size_t name_len;
} param_ref;

static const char *param_what(const param_ref *ref, char buf[80])
{
    if (ref->name)
        snprintf(buf, 80, ":%.*s", (int)ref->name_len, ref->name);
    else
        snprintf(buf, 80, "$%zu", ref->index + 1);
    return buf;
}

/* An array value: PostgreSQL's array literal in text (pg_array.h), typed
 * by its elements unless a type was given. SQLite has no arrays. */
static int array_value(const pdoc *doc, const mw_mpitem *v, mw_value *out, mw_dialect d,
                       const param_ref *ref, char msg[MW_MSG_SIZE])
{
    char what[80];
    if (d == MW_DIALECT_SQLITE)
        FAIL("parameter %s: SQLite has no array type; send a JSON text and "
             "read it with json_each()", param_what(ref, what));
    char err[MW_PG_ARRAY_ERR_SIZE];
    const char *type;
    int rc = mw_pg_array_literal(doc->p + v->start, doc->len - v->start, &out->owned,
                                 &out->n, &type, err);
    if (rc == -1)
        FAIL("parameter %s: %s", param_what(ref, what), err);
    if (rc)
        return rc;
    out->t = MW_V_STR;
    out->p = out->owned;
    if (!out->type && type) {
        out->type = type;
        out->type_len = strlen(type);
    }
    return 0;
}

/* One value (ref names it in messages). */
static int value_of(const pdoc *doc, const mw_mpitem *v, const mw_mpitem *type, mw_value *out,
                    mw_dialect d, const param_ref *ref, char msg[MW_MSG_SIZE])
{
    char what[80];
    memset(out, 0, sizeof *out);
    if (type) {
        if (type->v.type != MSGPACK_OBJECT_STR ||
            !is_type_name((const char *)type->v.ptr, type->v.size))
            FAIL("parameter %s: type must be a type name", param_what(ref, what));
        out->type = (const char *)type->v.ptr;
        out->type_len = type->v.size;
    }
    switch (v->v.type) {
    case MSGPACK_OBJECT_NIL:
        if (!type)
            FAIL("parameter %s is nil without a type", param_what(ref, what));
        out->t = MW_V_NIL;
        return 0;
    case MSGPACK_OBJECT_BOOLEAN:
        out->t = MW_V_BOOL;
        out->i = (int64_t)v->v.u64;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (v->v.u64 > INT64_MAX)
            FAIL("parameter %s: integer out of the signed 64-bit range",
                 param_what(ref, what));
        out->t = MW_V_INT;
        out->i = (int64_t)v->v.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        out->t = MW_V_INT;
        out->i = (int64_t)v->v.u64;
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        out->t = MW_V_FLOAT;
        out->f = v->v.f64;
        return 0;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        out->t = v->v.type == MSGPACK_OBJECT_STR ? MW_V_STR : MW_V_BIN;
        out->p = (const char *)v->v.ptr;
        out->n = v->v.size;
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        return array_value(doc, v, out, d, ref, msg);
    default:
        FAIL("parameter %s: unsupported value type (nil, bool, int, float, str, "
             "bin or an array of them)", param_what(ref, what));
    }
}

/* The values and names of n parameters, in one allocation. */
static int alloc_values(mw_stmt *s, size_t n)
{
    s->values = mw_zalloc(n, sizeof *s->values + sizeof *s->names);
    if (!s->values)
        return -2;
    s->names = (mw_param_name *)(s->values + n);
    return 0;
}

static int parse_params(const pdoc *doc, mw_stmt *s, const mw_mpitem *params,
                        mw_dialect d, char msg[MW_MSG_SIZE])
{
    s->mode = MW_PARAMS_NONE;
    if (!params || params->v.type == MSGPACK_OBJECT_NIL)
        return 0;
    if (params->v.type != MSGPACK_OBJECT_MAP)
        FAIL("params must be a map {\"mode\", \"values\"}");
    mw_mpkeys pk;
    index_keys(doc, params, param_keys, P_COUNT, &pk);
    const mw_mpitem *mode = pk.v[P_MODE], *vals = pk.v[P_VALUES];
    if (mode && val_is(mode, "positional"))
        s->mode = MW_PARAMS_POSITIONAL;
    else if (mode && val_is(mode, "named"))
        s->mode = MW_PARAMS_NAMED;
    else
        FAIL("params.mode must be \"positional\" or \"named\"");
    if (!vals || vals->v.type != MSGPACK_OBJECT_ARRAY)
        FAIL("params.values must be a list");
    size_t n = vals->v.size;
    /* the count the array declares, refused before a byte per value is
     * allocated: the cap bounds what a statement's values take */
    if (n > mw_params_max(d))
        FAIL("%s takes at most %zu parameters in one statement, got %zu",
             d == MW_DIALECT_PG ? "PostgreSQL" : "SQLite", mw_params_max(d), n);
    s->nvalues = n;
    if (n == 0)
        return 0;
    if (alloc_values(s, n))
        return -2;
    size_t at = vals->at;
    for (size_t i = 0; i < n; i++) {
        mw_mpitem e;
        if (doc_read(doc, &at, &e) < 0)
            FAIL("payload: malformed MsgPack");
        param_ref ref = {i, NULL, 0};
        char what[80];
        mw_mpkeys ek;
        if (e.v.type == MSGPACK_OBJECT_MAP)
            index_keys(doc, &e, param_keys, P_COUNT, &ek);
        if (s->mode == MW_PARAMS_POSITIONAL) {
            const mw_mpitem *v = &e, *type = NULL;
            if (e.v.type == MSGPACK_OBJECT_MAP) {
                v = ek.v[P_VALUE];
                type = ek.v[P_TYPE];
                if (!v)
                    FAIL("parameter %s: a map entry needs \"value\"", param_what(&ref, what));
            }
            int rc = value_of(doc, v, type, &s->values[i], d, &ref, msg);
            if (rc)
                return rc;
        } else {
            if (e.v.type != MSGPACK_OBJECT_MAP)
                FAIL("named parameter %zu must be a map {\"name\", \"value\", \"type\"?}",
                     i + 1);
            const mw_mpitem *name = ek.v[P_NAME], *v = ek.v[P_VALUE];
            if (!name || name->v.type != MSGPACK_OBJECT_STR || name->v.size == 0 ||
                name->v.size > 63)
                FAIL("named parameter %zu needs a name (str)", i + 1);
            ref.name = (const char *)name->v.ptr;
            ref.name_len = name->v.size;
            if (!v)
                FAIL("parameter %s needs a value", param_what(&ref, what));
            int rc = value_of(doc, v, ek.v[P_TYPE], &s->values[i], d, &ref, msg);
            if (rc)
                return rc;
            s->names[i].name = (const char *)name->v.ptr;
            s->names[i].len = name->v.size;
        }
    }
    return 0;
}

/* PostgreSQL: what the statement does (sql_classify.h). A db_query that
 * is not one statement that reads is refused before the server sees it;
 * the BEGIN READ ONLY frame stays behind this. */
static int classify_pg(mw_query *q, mw_stmt *s, const mw_sql_class *cls,
                       char msg[MW_MSG_SIZE])
{
    mw_sql_class c = *cls;
    if (c.verdict == MW_SQL_EMPTY)
        FAIL("sql has no statement (only blanks, comments or ;)");
    s->session_state = c.session_state;
    s->tx_control = c.tx_control;
    if (q->write && c.tx_control) {
        /* COMMIT inside db_exec's transaction, or one of tx_begin's, would
         * end it behind the worker's back (db_query refuses it as it
         * refuses anything but a read) */
        memcpy(q->refused_sqlstate, "42501", 6);
        snprintf(q->refused, sizeof q->refused,
                 "transaction control in SQL is refused: use the tx_begin, "
                 "tx_commit and tx_rollback entries");
    }
    if (q->write || q->refused[0])
        return 0;
    if (c.nstatements > 1) {
        memcpy(q->refused_sqlstate, "42601", 6);
        snprintf(q->refused, sizeof q->refused,
                 "db_query runs one statement, got %zu", c.nstatements);
    } else if (c.verdict != MW_SQL_READ) {
        memcpy(q->refused_sqlstate, c.sqlstate, 6);
        memcpy(q->refused, c.reason, sizeof q->refused);
    }
    return 0;
}

/* The SQL's rewrite for the backend and, on PostgreSQL, its class into s:
 * from the alias's memo when it ran this SQL lately (sql_memo.h), else
 * computed and kept. 0, -1 (msg) or -2. */
static int derive(mw_alias *alias, mw_stmt *s, mw_dialect d, mw_sql_class *cls,
                  char msg[MW_MSG_SIZE])
{
    mw_sql_derived v;
    if (mw_sql_memo_get(alias->sql_memo, s->sql, s->sql_len, d, s->mode, s->nvalues, &v)) {
        s->rw = v.rw;
        s->rw_shared = v.shared;
        *cls = v.cls;
        return 0;
    }
    char perr[MW_PARAMS_ERR_SIZE];
    int rc = mw_params_rewrite(s->sql, s->sql_len, d, s->mode, s->nvalues, s->names,
                               &s->rw, perr);
    if (rc == -1)
        FAIL("%s", perr);
    if (rc)
        return rc;
    memset(&v, 0, sizeof v);
    if (d == MW_DIALECT_PG) {
        mw_sql_classify(s->rw.sql, s->rw.sql_len, cls);
        v.have_class = 1;
        v.cls = *cls;
    }
    v.rw = s->rw;
    mw_sql_memo_put(&alias->sql_memo, s->sql, s->sql_len, d, s->mode, s->nvalues, &v);
    return 0;
}

static int parse_stmt(const pdoc *doc, mw_query *q, mw_stmt *s, const mw_mpitem *sql,
                      const mw_mpitem *params, mw_dialect d, char msg[MW_MSG_SIZE])
{
    if (!sql || sql->v.type != MSGPACK_OBJECT_STR)
        FAIL("sql is required (a str)");
    s->sql = (const char *)sql->v.ptr;
    s->sql_len = sql->v.size;
    size_t k = 0;
    while (k < s->sql_len && (s->sql[k] == ' ' || s->sql[k] == '\n' ||
                              s->sql[k] == '\t' || s->sql[k] == '\r'))
        k++;
    if (k == s->sql_len)
        FAIL("sql is empty");
    int rc = parse_params(doc, s, params, d, msg);
    if (rc)
        return rc;
    mw_sql_class cls;
    rc = derive(q->alias, s, d, &cls, msg);
    if (rc)
        return rc;
    if (d == MW_DIALECT_PG &&
        q->alias->pool.statement_mode == MOLT_DB_STMT_SIMPLE && s->rw.nslots > 0)
        FAIL("statement_mode simple takes no parameters (values are never "
             "written into the SQL): use cached or unnamed");
    return d == MW_DIALECT_PG ? classify_pg(q, s, &cls, msg) : 0;
}

static int valid_tag(const char *p, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int payload_alias(const mw_config *cfg, const mw_mpkeys *m, mw_alias **alias,
                         char msg[MW_MSG_SIZE])
{
    const mw_mpitem *o;
    if (get_str(m, K_DB_ALIAS, &o, msg))
        return -1;
    if (o) {
        *alias = mw_config_alias(cfg, (const char *)o->v.ptr, o->v.size);
        if (!*alias)
            FAIL("unknown db_alias \"%.*s\"", (int)(o->v.size > 64 ? 64 : o->v.size),
                 (const char *)o->v.ptr);
    } else {
        *alias = mw_config_alias(cfg, "default", 7);
        if (!*alias)
            FAIL("no db_alias given and no alias \"default\" is configured");
    }
    return 0;
}

static int write_grant(const mw_mpkeys *m, const char *entry, const mw_alias *alias,
                       char msg[MW_MSG_SIZE])
{
    int b = 0;
    if (get_bool(m, K_ALLOW_WRITE, &b, msg) < 0)
        return -1;
    if (!b)
        FAIL("%s needs allow_write: true", entry);
    if (!alias->allow_write)
        FAIL("alias \"%s\" does not grant db.write (start the worker with "
             "--allow-write %s)", alias->name, alias->name);
    return 0;
}

int mw_payload_alias(const mw_config *cfg, const mw_payload_keys *keys,
                     mw_alias **alias, char msg[MW_MSG_SIZE])
{
    return payload_alias(cfg, &keys->k, alias, msg);
}

int mw_payload_write_grant(const mw_payload_keys *keys, const char *entry,
                           const mw_alias *alias, char msg[MW_MSG_SIZE])
{
    return write_grant(&keys->k, entry, alias, msg);
}

/* db_alias (default "default") and the db.write capability. */
static int parse_alias(mw_query *q, const mw_mpkeys *m, int write,
                       const mw_config *cfg, char msg[MW_MSG_SIZE])
{
    int b = 0;
    if (payload_alias(cfg, m, &q->alias, msg))
        return -1;
    if (write)
        return write_grant(m, "db_exec", q->alias, msg);
    if (get_bool(m, K_ALLOW_WRITE, &b, msg) < 0)
        return -1;
    if (b)
        FAIL("allow_write must be false for db_query (use db_exec)");
    return 0;
}

/* result_format, row_shape and tag. */
static int parse_format(mw_query *q, const mw_mpkeys *m, int write,
                        char msg[MW_MSG_SIZE])
{
    const mw_mpitem *o;
    q->format = MW_FORMAT_JSON;
    if (get_str(m, K_RESULT_FORMAT, &o, msg))
        return -1;
    if (o) {
        if (val_is(o, "json"))
            q->format = MW_FORMAT_JSON;
        else if (val_is(o, "msgpack"))
            q->format = MW_FORMAT_MSGPACK;
        else if (!write && val_is(o, "arrow_ipc"))
            q->format = MW_FORMAT_ARROW;
        else
            FAIL(write ? "result_format must be json or msgpack for db_exec"
                       : "result_format must be json, msgpack or arrow_ipc");
    }
    if (get_str(m, K_ROW_SHAPE, &o, msg))
        return -1;
    if (o) {
        if (val_is(o, "objects"))
            q->objects = 1;
        else if (!val_is(o, "arrays"))
            FAIL("row_shape must be arrays or objects");
        if (q->objects && q->format == MW_FORMAT_ARROW)
            FAIL("row_shape objects is for json and msgpack only");
    }
    if (get_str(m, K_TAG, &o, msg))
        return -1;
    if (o) {
        if (!valid_tag((const char *)o->v.ptr, o->v.size))
            FAIL("tag must be 1 to 64 of A-Za-z0-9_.-");
        memcpy(q->tag, o->v.ptr, o->v.size);
        q->tag[o->v.size] = 0;
    }
    return 0;
}

/* max_rows, batch_rows and stream (db_query only); pin_primary. */
static int parse_rows(mw_query *q, const mw_mpkeys *m, int write,
                      const mw_config *cfg, char msg[MW_MSG_SIZE])
{
    if (get_bool(m, K_PIN_PRIMARY, &q->pin_primary, msg) < 0)
        return -1;
    q->max_rows = write ? 0 : (uint64_t)cfg->max_rows;
    q->batch_rows = (size_t)cfg->batch_rows;
    if (write)
        return 0;
    uint64_t u;
    int r;
    if ((r = get_uint(m, K_MAX_ROWS, &u, msg)) < 0)
        return -1;
    if (r && u > 0)
        q->max_rows = u; /* 0: the worker's max_rows, like timeout_ms */
    if ((r = get_uint(m, K_BATCH_ROWS, &u, msg)) < 0)
        return -1;
    if (r) {
        if (u == 0 || u > 10000000)
            FAIL("batch_rows must be 1 to 10000000");
        q->batch_rows = (size_t)u;
    }
    return get_bool(m, K_STREAM, &q->stream, msg) < 0 ? -1 : 0;
}

/* sql and params, or (db_exec) a list of statements. 0, -1 (msg) or -2. */
static int parse_statements(const pdoc *doc, mw_query *q, const mw_mpkeys *m, int write,
                            char msg[MW_MSG_SIZE])
{
    mw_dialect d = q->alias->kind == MW_BACKEND_SQLITE ? MW_DIALECT_SQLITE
                                                       : MW_DIALECT_PG;
    const mw_mpitem *sql = m->v[K_SQL];
    const mw_mpitem *list = write ? m->v[K_STATEMENTS] : NULL;
    if (list) {
        if (sql)
            FAIL("give sql or statements, not both");
        if (list->v.type != MSGPACK_OBJECT_ARRAY || list->v.size == 0)
            FAIL("statements must be a non-empty list of {\"sql\", \"params\"}");
        if (list->v.size > 10000)
            FAIL("at most 10000 statements");
        q->statements = 1;
        q->nstmts = list->v.size;
        q->stmts = mw_zalloc(q->nstmts, sizeof *q->stmts);
        if (!q->stmts)
            return -2;
    } else {
        q->nstmts = 1;
        q->stmts = &q->one_stmt;
    }
    size_t at = list ? list->at : 0;
    for (size_t i = 0; i < q->nstmts; i++) {
        int rc;
        if (list) {
            mw_mpitem e;
            mw_mpkeys sk;
            if (doc_read(doc, &at, &e) < 0)
                FAIL("payload: malformed MsgPack");
            if (e.v.type != MSGPACK_OBJECT_MAP)
                FAIL("statements[%zu] must be a map {\"sql\", \"params\"}", i);
            index_keys(doc, &e, stmt_keys, S_COUNT, &sk);
            rc = parse_stmt(doc, q, &q->stmts[i], sk.v[S_SQL], sk.v[S_PARAMS], d, msg);
        } else {
            rc = parse_stmt(doc, q, &q->stmts[i], sql, m->v[K_PARAMS], d, msg);
        }
        if (rc == -1 && list) {
            char tmp[MW_MSG_SIZE];
            snprintf(tmp, sizeof tmp, "statements[%zu]: %s", i, msg);
            memcpy(msg, tmp, MW_MSG_SIZE);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* isolation (db_exec; ignored for db_query once it is a str). */
static int parse_isolation(mw_query *q, const mw_mpkeys *m, int write,
                           char msg[MW_MSG_SIZE])
{
    const mw_mpitem *o;
    if (!write)
        return get_str(m, K_ISOLATION, &o, msg) ? -1 : 0;
    return get_isolation(m, &q->isolation, msg) < 0 ? -1 : 0;
}

/* The payload's keys, checked in this order (the first error is reported). */
static int parse(const pdoc *doc, mw_query *q, int write, const mw_config *cfg,
                 char msg[MW_MSG_SIZE])
{
    mw_mpkeys keys;
    const mw_mpkeys *m = &keys;
    int rc;
    if (payload_keys(doc, &keys, msg))
        return -1;
    if (parse_alias(q, m, write, cfg, msg) < 0 || parse_format(q, m, write, msg) < 0 ||
        parse_rows(q, m, write, cfg, msg) < 0)
        return -1;
    int in_tx = get_uint(m, K_TX_ID, &q->tx_id, msg);
    if (in_tx < 0)
        return -1;
    q->in_tx = in_tx;
    if ((rc = parse_statements(doc, q, m, write, msg)) != 0)
        return rc;
    return parse_isolation(q, m, write, msg);
}

/* Frees the payload copy of a parsed q when no value points into it: the
 * SQL text was read while parsing, and the backend runs its rewrite. */
static void drop_payload(mw_query *q)
{
    for (size_t i = 0; i < q->nstmts; i++)
        if (q->stmts[i].nvalues)
            return;
    for (size_t i = 0; i < q->nstmts; i++)
        q->stmts[i].sql = NULL;
    if (q->bytes != q->small_bytes)
        free(q->bytes);
    q->bytes = NULL;
    q->nbytes = 0;
}

int mw_query_parse(mw_query *q, int write, const mw_config *cfg,
                   const uint8_t *p, size_t n, char msg[MW_MSG_SIZE])
{
    memset(q, 0, sizeof *q);
    q->write = write;
    q->bytes = n <= sizeof q->small_bytes ? q->small_bytes : malloc(n);
    if (!q->bytes)
        return -2;
    memcpy(q->bytes, p, n);
    q->nbytes = n;
    pdoc doc = {q->bytes, n};
    int rc = parse(&doc, q, write, cfg, msg);
    if (rc == 0)
        drop_payload(q);
    return rc;
}

size_t mw_query_held_bytes(const mw_query *q)
{
    size_t n = q->bytes != q->small_bytes ? q->nbytes : 0;
    if (q->stmts != &q->one_stmt)
        n += q->nstmts * sizeof *q->stmts;
    for (size_t i = 0; q->stmts && i < q->nstmts; i++) {
        const mw_stmt *s = &q->stmts[i];
        n += s->nvalues * (sizeof *s->values + sizeof *s->names);
        for (size_t k = 0; s->values && k < s->nvalues; k++)
            if (s->values[k].owned)
                n += s->values[k].n + 1;
        if (!s->rw_shared && s->rw.sql)
            n += s->rw.sql_len + 1 + s->rw.nslots * sizeof *s->rw.slot_value;
    }
    return n + mw_copy_held_bytes(q->copy);
}

void mw_query_shed(mw_query *q)
{
    mw_alias *alias = q->alias;
    mw_format format = q->format;
    char tag[sizeof q->tag];
    memcpy(tag, q->tag, sizeof tag);
    mw_query_free(q);
    q->alias = alias;
    q->format = format;
    memcpy(q->tag, tag, sizeof tag);
}

void mw_query_free(mw_query *q)
{
    for (size_t i = 0; q->stmts && i < q->nstmts; i++) {
        for (size_t k = 0; q->stmts[i].values && k < q->stmts[i].nvalues; k++)
            free(q->stmts[i].values[k].owned);
        free(q->stmts[i].values); /* the names too (alloc_values) */
        if (q->stmts[i].rw_shared)
            mw_sql_memo_release(q->stmts[i].rw_shared);
        else
            mw_rewrite_free(&q->stmts[i].rw);
    }
    if (q->stmts != &q->one_stmt)
        free(q->stmts);
    if (q->bytes != q->small_bytes)
        free(q->bytes);
    mw_copy_free(q->copy);
    memset(q, 0, sizeof *q);
}

/* The keys of a tx_begin (nested: tx_id alone) or tx_commit / tx_rollback
 * (tx_id) payload. */
static int parse_tx(const mw_mpkeys *m, int begin, const mw_config *cfg,
                    mw_tx_payload *t, char msg[MW_MSG_SIZE])
{
    int r = get_uint(m, K_TX_ID, &t->tx_id, msg);
    if (r < 0)
        return -1;
    t->nested = r;
    if (!begin) {
        if (!t->nested)
            FAIL("tx_id is required (an unsigned integer)");
        return 0;
    }
    const mw_mpitem *o;
    if (get_str(m, K_DB_ALIAS, &o, msg))
        return -1;
    int ro = get_bool(m, K_READ_ONLY, &t->read_only, msg);
    int df = ro < 0 ? -1 : get_bool(m, K_DEFERRABLE, &t->deferrable, msg);
    int iso = df < 0 ? -1 : get_isolation(m, &t->isolation, msg);
    if (iso < 0)
        return -1;
    if (t->nested) {
        if (o || ro || df || iso)
            FAIL("a nested tx_begin (a savepoint) takes only tx_id");
        return 0;
    }
    t->alias = o ? mw_config_alias(cfg, (const char *)o->v.ptr, o->v.size)
                 : mw_config_alias(cfg, "default", 7);
    if (!t->alias && o)
        FAIL("unknown db_alias \"%.*s\"", (int)(o->v.size > 64 ? 64 : o->v.size),
             (const char *)o->v.ptr);
    if (!t->alias)
        FAIL("no db_alias given and no alias \"default\" is configured");
    return 0;
}

int mw_tx_payload_parse(const uint8_t *p, size_t n, int begin, const mw_config *cfg,
                        mw_tx_payload *t, char msg[MW_MSG_SIZE])
{
    memset(t, 0, sizeof *t);
    pdoc d = {p, n};
    mw_mpkeys keys;
    if (payload_keys(&d, &keys, msg))
        return -1;
    return parse_tx(&keys, begin, cfg, t, msg);
}

void mw_listen_payload_free(mw_listen_payload *l)
{
    for (size_t i = 0; i < l->nchannels; i++)
        free(l->channels[i]);
    free(l->channels);
    l->channels = NULL;
    l->nchannels = 0;
}

#define LFAIL(r, ...)                                                          \
    do {                                                                       \
        snprintf(msg, MW_MSG_SIZE, __VA_ARGS__);                               \
        rc = (r);                                                              \
        goto out;                                                              \
    } while (0)

int mw_listen_parse(const uint8_t *p, size_t n, const mw_config *cfg,
                    mw_listen_payload *l, char msg[MW_MSG_SIZE])
{
    memset(l, 0, sizeof *l);
    msgpack_unpacked up;
    mw_payload_keys keys;
    /* alias and backend are judged on the indexed keys, before anything
     * of the payload is unpacked */
    if (mw_payload_check(p, n, &keys, msg) || payload_alias(cfg, &keys.k, &l->alias, msg))
        return -1;
    if (l->alias->kind != MW_BACKEND_PG)
        FAIL("listen is not supported on SQLite (alias \"%s\"): "
             "LISTEN/NOTIFY is PostgreSQL's", l->alias->name);
    int rc = mw_payload_unpack(p, n, &keys, &up, msg);
    if (rc == -2)
        snprintf(msg, MW_MSG_SIZE, "out of memory");
    if (rc)
        return rc;
    int dup = 0;
    rc = -1;
    const msgpack_object *o = mw_map_get(&up.data, "channels", &dup);
    if (!o || dup || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
        LFAIL(-1, "channels must be a non-empty array of str, given once");
    size_t nch = o->via.array.size;
    if (nch > (size_t)cfg->max_listen_channels)
        LFAIL(-1, "%zu channels are more than max_listen_channels (%d)", nch,
              cfg->max_listen_channels);
    l->channels = calloc(nch, sizeof *l->channels);
    if (!l->channels)
        LFAIL(-2, "out of memory");
    for (size_t i = 0; i < nch; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        const char *why;
        if (c->type != MSGPACK_OBJECT_STR)
            LFAIL(-1, "channels[%zu] must be a str", i);
        if (mw_pg_ident_check(c->via.str.ptr, c->via.str.size, &why) < 0)
            LFAIL(-1, "channels[%zu] %s", i, why);
        for (size_t j = 0; j < i; j++)
            if (strlen(l->channels[j]) == c->via.str.size &&
                memcmp(l->channels[j], c->via.str.ptr, c->via.str.size) == 0)
                LFAIL(-1, "channels[%zu] is given twice", i);
        l->channels[i] = strndup(c->via.str.ptr, c->via.str.size);
        if (!l->channels[i])
            LFAIL(-2, "out of memory");
        l->nchannels++;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}
#undef LFAIL
