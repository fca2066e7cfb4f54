/*
 * Backend message framing and body readers for the PostgreSQL v3 protocol.
 *
 * Nothing here trusts a length from the network: every read goes through a
 * cursor that checks what remains of the body first, and every reader
 * insists that the body ends exactly where its format ends (except where the
 * protocol documents that fields may be added).
 */
#include "molt_db/protocol.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Framing                                                                 */
/* ---------------------------------------------------------------------- */

/* 1: a backend message type; 2: one that may legitimately be long. */
static int type_class(uint8_t t)
{
    switch (t) {
    case 'D': /* DataRow */
    case 'd': /* CopyData */
    case 'E': /* ErrorResponse */
    case 'N': /* NoticeResponse */
    case 'T': /* RowDescription */
    case 'V': /* FunctionCallResponse */
    case 'A': /* NotificationResponse */
    case 'R': /* Authentication (SASL data, GSS tokens) */
    case 't': /* ParameterDescription: up to 65535 oids */
    case 'G': /* CopyInResponse: up to 65535 column formats */
    case 'H': /* CopyOutResponse */
    case 'W': /* CopyBothResponse */
        return 2;
    case 'S': /* ParameterStatus */
    case 'K': /* BackendKeyData */
    case 'Z': /* ReadyForQuery */
    case 'C': /* CommandComplete */
    case 'I': /* EmptyQueryResponse */
    case '1': /* ParseComplete */
    case '2': /* BindComplete */
    case '3': /* CloseComplete */
    case 'n': /* NoData */
    case 's': /* PortalSuspended */
    case 'c': /* CopyDone */
    case 'v': /* NegotiateProtocolVersion */
        return 1;
    default:
        return 0;
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

int molt_db_proto_next(const uint8_t *data, size_t len, molt_db_msg *msg,
                       size_t *consumed, size_t *need, molt_db_error *err)
{
    *consumed = 0;
    if (need != NULL)
        *need = 5;
    if (len == 0 || data == NULL)
        return MOLT_DB_NEED_MORE;
    /* Check the type byte as soon as it arrives: a stray byte is lost sync
     * whether or not its length has come in yet. */
    int cls = type_class(data[0]);
    if (cls == 0)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "lost sync: unknown message type 0x%02x",
                                 data[0]);
    if (len < 5)
        return MOLT_DB_NEED_MORE;
    uint32_t mlen = get_u32(data + 1);
    if (mlen < 4)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "lost sync: message type 0x%02x length %u < 4",
                                 data[0], (unsigned)mlen);
    if (mlen > MOLT_DB_MAX_MESSAGE_LEN)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "lost sync: message type 0x%02x length %u "
                                 "is too large",
                                 data[0], (unsigned)mlen);
    if (cls == 1 && mlen > MOLT_DB_MAX_SHORT_MESSAGE_LEN)
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "lost sync: message type 0x%02x length %u "
                                 "is impossible for its type",
                                 data[0], (unsigned)mlen);
    size_t total = (size_t)mlen + 1;
    if (need != NULL)
        *need = total;
    if (len < total)
        return MOLT_DB_NEED_MORE;
    msg->type = data[0];
    msg->len = mlen - 4;
    msg->body = data + 5;
    *consumed = total;
    return MOLT_DB_OK;
}

/* ---------------------------------------------------------------------- */
/* A bounds-checked cursor over one body. Each getter returns 0 on success */
/* and -1 (leaving the output alone) when the body is too short.          */
/* ---------------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static cursor cursor_of(const molt_db_msg *msg)
{
    cursor c = {msg->body, msg->len};
    return c;
}

static int get_bytes(cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->left)
        return -1;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

static int get_u8(cursor *c, uint8_t *v)
{
    const uint8_t *p;
    if (get_bytes(c, 1, &p) != 0)
        return -1;
    *v = p[0];
    return 0;
}

static int get_u16c(cursor *c, uint16_t *v)
{
    const uint8_t *p;
    if (get_bytes(c, 2, &p) != 0)
        return -1;
    *v = (uint16_t)(p[0] << 8 | p[1]);
    return 0;
}

static int get_i16(cursor *c, int16_t *v)
{
    uint16_t u;
    if (get_u16c(c, &u) != 0)
        return -1;
    *v = (int16_t)u;
    return 0;
}

static int get_u32c(cursor *c, uint32_t *v)
{
    const uint8_t *p;
    if (get_bytes(c, 4, &p) != 0)
        return -1;
    *v = get_u32(p);
    return 0;
}

static int get_i32(cursor *c, int32_t *v)
{
    uint32_t u;
    if (get_u32c(c, &u) != 0)
        return -1;
    *v = (int32_t)u;
    return 0;
}

/* A NUL-terminated string that ends inside the body. */
static int get_cstr(cursor *c, const char **s)
{
    const uint8_t *nul = c->left ? memchr(c->p, 0, c->left) : NULL;
    if (nul == NULL)
        return -1;
    *s = (const char *)c->p;
    size_t n = (size_t)(nul - c->p) + 1;
    c->p += n;
    c->left -= n;
    return 0;
}

static int bad(molt_db_error *err, const molt_db_msg *msg, const char *what)
{
    return molt_db_error_set(err, MOLT_DB_EPROTO,
                             "malformed message type 0x%02x (%u bytes): %s",
                             msg->type, (unsigned)msg->len, what);
}

static int want_type(const molt_db_msg *msg, uint8_t type, molt_db_error *err)
{
    if (msg->type == type)
        return MOLT_DB_OK;
    return molt_db_error_set(err, MOLT_DB_EPROTO,
                             "expected message type '%c', got 0x%02x", type,
                             msg->type);
}

#define TRY_TYPE(msg, t, err)                                               \
    do {                                                                    \
        int rc_ = want_type((msg), (t), (err));                             \
        if (rc_ != MOLT_DB_OK)                                              \
            return rc_;                                                     \
    } while (0)

static int at_end(const cursor *c)
{
    return c->left == 0;
}

/* ---------------------------------------------------------------------- */
/* Authentication                                                          */
/* ---------------------------------------------------------------------- */

int molt_db_proto_next_sasl_mechanism(const molt_db_auth_msg *auth,
                                      size_t *pos, const char **name)
{
    if (auth == NULL || auth->code != MOLT_DB_AUTH_SASL || *pos >= auth->len ||
        (auth->data == NULL && auth->len > 0))
        return MOLT_DB_EPROTO;
    const uint8_t *p = auth->data + *pos;
    size_t left = auth->len - *pos;
    const uint8_t *nul = memchr(p, 0, left);
    if (nul == NULL)
        return MOLT_DB_EPROTO;
    if (nul == p) {
        /* The empty name closes the list and must be the last byte. */
        return left == 1 ? 0 : MOLT_DB_EPROTO;
    }
    *name = (const char *)p;
    *pos += (size_t)(nul - p) + 1;
    return 1;
}

int molt_db_proto_read_auth(const molt_db_msg *msg, molt_db_auth_msg *out,
                            molt_db_error *err)
{
    TRY_TYPE(msg, 'R', err);
    cursor c = cursor_of(msg);
    int32_t code;
    if (get_i32(&c, &code) != 0)
        return bad(err, msg, "no authentication code");
    size_t extra;
    switch (code) {
    case MOLT_DB_AUTH_OK:
    case MOLT_DB_AUTH_KERBEROS_V5:
    case MOLT_DB_AUTH_CLEARTEXT:
    case MOLT_DB_AUTH_GSS:
    case MOLT_DB_AUTH_SSPI:
        extra = 0;
        break;
    case MOLT_DB_AUTH_MD5:
        extra = 4; /* the salt */
        break;
    default:
        extra = c.left; /* SASL data, GSS tokens, codes we do not know */
        break;
    }
    if (c.left != extra)
        return bad(err, msg, "wrong length for its authentication code");
    molt_db_auth_msg a = {code, c.p, c.left};
    if (code == MOLT_DB_AUTH_SASL) {
        /* Validate the whole list now so callers can iterate without
         * meeting an error half-way. */
        size_t pos = 0;
        const char *name;
        int rc;
        while ((rc = molt_db_proto_next_sasl_mechanism(&a, &pos, &name)) == 1)
            ;
        if (rc != 0)
            return bad(err, msg, "bad SASL mechanism list");
    }
    *out = a;
    return MOLT_DB_OK;
}

/* ---------------------------------------------------------------------- */
/* Small fixed messages                                                    */
/* ---------------------------------------------------------------------- */

int molt_db_proto_read_parameter_status(const molt_db_msg *msg,
                                        const char **name, const char **value,
                                        molt_db_error *err)
{
    TRY_TYPE(msg, 'S', err);
    cursor c = cursor_of(msg);
    const char *n, *v;
    if (get_cstr(&c, &n) != 0 || get_cstr(&c, &v) != 0 || !at_end(&c))
        return bad(err, msg, "expected two NUL-terminated strings");
    *name = n;
    *value = v;
    return MOLT_DB_OK;
}

int molt_db_proto_read_backend_key(const molt_db_msg *msg, int32_t *pid,
                                   int32_t *secret_key, molt_db_error *err)
{
    TRY_TYPE(msg, 'K', err);
    cursor c = cursor_of(msg);
    int32_t p, k;
    if (get_i32(&c, &p) != 0 || get_i32(&c, &k) != 0 || !at_end(&c))
        return bad(err, msg, "expected 8 bytes");
    *pid = p;
    *secret_key = k;
    return MOLT_DB_OK;
}

int molt_db_proto_read_ready(const molt_db_msg *msg, char *status,
                             molt_db_error *err)
{
    TRY_TYPE(msg, 'Z', err);
    cursor c = cursor_of(msg);
    uint8_t s;
    if (get_u8(&c, &s) != 0 || !at_end(&c))
        return bad(err, msg, "expected 1 byte");
    if (s != 'I' && s != 'T' && s != 'E')
        return bad(err, msg, "unknown transaction status");
    *status = (char)s;
    return MOLT_DB_OK;
}

int molt_db_proto_read_command_complete(const molt_db_msg *msg,
                                        const char **tag, molt_db_error *err)
{
    TRY_TYPE(msg, 'C', err);
    cursor c = cursor_of(msg);
    const char *t;
    if (get_cstr(&c, &t) != 0 || !at_end(&c))
        return bad(err, msg, "expected one NUL-terminated tag");
    *tag = t;
    return MOLT_DB_OK;
}

int molt_db_proto_read_notification(const molt_db_msg *msg, int32_t *pid,
                                    const char **channel, const char **payload,
                                    molt_db_error *err)
{
    TRY_TYPE(msg, 'A', err);
    cursor c = cursor_of(msg);
    int32_t p;
    const char *ch, *pl;
    if (get_i32(&c, &p) != 0 || get_cstr(&c, &ch) != 0 ||
        get_cstr(&c, &pl) != 0 || !at_end(&c))
        return bad(err, msg, "expected pid, channel and payload");
    *pid = p;
    *channel = ch;
    *payload = pl;
    return MOLT_DB_OK;
}

int molt_db_proto_read_negotiate_version(const molt_db_msg *msg,
                                         int32_t *minor, int32_t *nunrecognized,
                                         molt_db_error *err)
{
    TRY_TYPE(msg, 'v', err);
    cursor c = cursor_of(msg);
    int32_t m, n;
    if (get_i32(&c, &m) != 0 || get_i32(&c, &n) != 0)
        return bad(err, msg, "expected version and option count");
    if (m < 0 || n < 0)
        return bad(err, msg, "negative version or option count");
    for (int32_t i = 0; i < n; i++) {
        const char *opt;
        if (get_cstr(&c, &opt) != 0)
            return bad(err, msg, "option count larger than the body");
    }
    if (!at_end(&c))
        return bad(err, msg, "trailing bytes");
    *minor = m;
    *nunrecognized = n;
    return MOLT_DB_OK;
}

/* ---------------------------------------------------------------------- */
/* ErrorResponse / NoticeResponse                                          */
/* ---------------------------------------------------------------------- */

/* Takes a copy of s into *slot, freeing what was there (a field may repeat;
 * the last one wins). A failed copy leaves the slot NULL, as documented. */
static void set_field(char **slot, const char *s)
{
    free(*slot);
    *slot = strdup(s);
}

static int is_sqlstate(const char *s)
{
    if (strlen(s) != 5)
        return 0;
    for (int i = 0; i < 5; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')))
            return 0;
    }
    return 1;
}

/* P: a 1-based character position, digits only; anything else is 0. */
static int parse_position(const char *s)
{
    int v = 0;
    if (*s == '\0')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT32_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*s - '0');
    }
    return v;
}

int molt_db_proto_read_error(const molt_db_msg *msg, molt_db_error *out,
                             molt_db_error *err)
{
    if (msg->type != 'E' && msg->type != 'N')
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "expected message type 'E' or 'N', got 0x%02x",
                                 msg->type);
    /* Check the whole structure first so *out is untouched on EPROTO. */
    cursor c = cursor_of(msg);
    for (;;) {
        uint8_t code = 0;
        const char *val = NULL;
        if (get_u8(&c, &code) != 0)
            return bad(err, msg, "fields not closed by a zero byte");
        if (code == 0)
            break;
        if (get_cstr(&c, &val) != 0)
            return bad(err, msg, "field value without NUL");
    }
    if (!at_end(&c))
        return bad(err, msg, "trailing bytes after the last field");

    molt_db_error_clear(out);
    out->code = MOLT_DB_ESERVER;
    const char *sev_s = NULL;
    c = cursor_of(msg);
    for (;;) {
        /* Validated above, so these reads cannot fail. */
        uint8_t code = 0;
        const char *val = "";
        (void)get_u8(&c, &code);
        if (code == 0)
            break;
        (void)get_cstr(&c, &val);
        switch (code) {
        case 'S': sev_s = val; break;
        case 'V': set_field(&out->severity, val); break;
        case 'C':
            if (is_sqlstate(val))
                memcpy(out->sqlstate, val, 6);
            else
                out->sqlstate[0] = '\0';
            break;
        case 'M': {
            /* Truncate into the fixed buffer. */
            size_t n = strlen(val);
            if (n >= sizeof out->message)
                n = sizeof out->message - 1;
            memcpy(out->message, val, n);
            out->message[n] = '\0';
            break;
        }
        case 'D': set_field(&out->detail, val); break;
        case 'H': set_field(&out->hint, val); break;
        case 'W': set_field(&out->where, val); break;
        case 's': set_field(&out->schema, val); break;
        case 't': set_field(&out->table, val); break;
        case 'c': set_field(&out->column, val); break;
        case 'd': set_field(&out->datatype, val); break;
        case 'n': set_field(&out->constraint, val); break;
        case 'P': out->position = parse_position(val); break;
        default: break; /* the docs say new field codes may appear */
        }
    }
    /* V (never localized) wins; S is the fallback for old servers. */
    if (out->severity == NULL && sev_s != NULL)
        out->severity = strdup(sev_s);
    return MOLT_DB_OK;
}

/* ---------------------------------------------------------------------- */
/* RowDescription, ParameterDescription, DataRow                           */
/* ---------------------------------------------------------------------- */

int molt_db_proto_read_count(const molt_db_msg *msg, size_t *n,
                             molt_db_error *err)
{
    if (msg->type != 'T' && msg->type != 'D' && msg->type != 't')
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "expected message type 'T', 'D' or 't', "
                                 "got 0x%02x",
                                 msg->type);
    cursor c = cursor_of(msg);
    uint16_t count;
    if (get_u16c(&c, &count) != 0)
        return bad(err, msg, "no count");
    *n = count;
    return MOLT_DB_OK;
}

/* Reads the Int16 count and checks that count entries of at least min_size
 * bytes can fit in the rest (EPROTO) and in cap (ERANGE, *n = count). */
static int read_counted(const molt_db_msg *msg, cursor *c, size_t min_size,
                        size_t cap, size_t *n, molt_db_error *err)
{
    uint16_t count;
    if (get_u16c(c, &count) != 0)
        return bad(err, msg, "no count");
    if ((size_t)count * min_size > c->left)
        return bad(err, msg, "count larger than the body");
    if (count > cap) {
        *n = count;
        return molt_db_error_set(err, MOLT_DB_ERANGE,
                                 "message has %u entries, room for %zu",
                                 (unsigned)count, cap);
    }
    *n = count;
    return MOLT_DB_OK;
}

int molt_db_proto_read_row_description(const molt_db_msg *msg,
                                       molt_db_column *cols, size_t cap,
                                       size_t *n, molt_db_error *err)
{
    TRY_TYPE(msg, 'T', err);
    cursor c = cursor_of(msg);
    size_t count;
    /* The smallest column: an empty name (1) and 18 bytes of attributes. */
    int rc = read_counted(msg, &c, 19, cap, &count, err);
    if (rc != MOLT_DB_OK) {
        *n = rc == MOLT_DB_ERANGE ? count : 0;
        return rc;
    }
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        molt_db_column col;
        if (get_cstr(&c, &col.name) != 0 || get_u32c(&c, &col.table_oid) != 0 ||
            get_i16(&c, &col.column_number) != 0 ||
            get_u32c(&c, &col.type_oid) != 0 ||
            get_i16(&c, &col.type_size) != 0 ||
            get_i32(&c, &col.type_modifier) != 0 ||
            get_i16(&c, &col.format) != 0)
            return bad(err, msg, "truncated column");
        if (col.format != MOLT_DB_FORMAT_TEXT &&
            col.format != MOLT_DB_FORMAT_BINARY)
            return bad(err, msg, "unknown column format");
        cols[i] = col;
    }
    if (!at_end(&c))
        return bad(err, msg, "trailing bytes");
    *n = count;
    return MOLT_DB_OK;
}

int molt_db_proto_read_parameter_description(const molt_db_msg *msg,
                                             uint32_t *oids, size_t cap,
                                             size_t *n, molt_db_error *err)
{
    TRY_TYPE(msg, 't', err);
    cursor c = cursor_of(msg);
    *n = 0;
    /* The size is exact here, so check it before the room (ERANGE). */
    if (msg->len < 2 ||
        msg->len - 2 != ((size_t)msg->body[0] << 8 | msg->body[1]) * 4)
        return bad(err, msg, "length does not match the count");
    size_t count;
    int rc = read_counted(msg, &c, 4, cap, &count, err);
    if (rc != MOLT_DB_OK) {
        *n = rc == MOLT_DB_ERANGE ? count : 0;
        return rc;
    }
    for (size_t i = 0; i < count; i++)
        (void)get_u32c(&c, &oids[i]);
    *n = count;
    return MOLT_DB_OK;
}

int molt_db_proto_read_data_row(const molt_db_msg *msg, molt_db_field *fields,
                                size_t cap, size_t *n, molt_db_error *err)
{
    TRY_TYPE(msg, 'D', err);
    cursor c = cursor_of(msg);
    size_t count;
    int rc = read_counted(msg, &c, 4, cap, &count, err);
    if (rc != MOLT_DB_OK) {
        *n = rc == MOLT_DB_ERANGE ? count : 0;
        return rc;
    }
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        int32_t len;
        const uint8_t *data = NULL;
        if (get_i32(&c, &len) != 0)
            return bad(err, msg, "truncated field length");
        if (len < -1)
            return bad(err, msg, "negative field length");
        if (len >= 0 && get_bytes(&c, (size_t)len, &data) != 0)
            return bad(err, msg, "field longer than the body");
        fields[i].data = data;
        fields[i].len = len;
    }
    if (!at_end(&c))
        return bad(err, msg, "trailing bytes");
    *n = count;
    return MOLT_DB_OK;
}

/* ---------------------------------------------------------------------- */
/* Command tags                                                            */
/* ---------------------------------------------------------------------- */

/* Parses s as a whole decimal number (no sign, at least one digit). */
static int parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (*s == '\0')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

int molt_db_proto_tag_rows(const char *tag, uint64_t *rows)
{
    /* Only these commands report a row count (as libpq's PQcmdTuples). */
    static const char *const counted[] = {"SELECT ", "UPDATE ", "DELETE ",
                                          "MERGE ",  "MOVE ",   "FETCH ",
                                          "COPY "};
    if (tag == NULL)
        return 0;
    const char *num = NULL;
    if (strncmp(tag, "INSERT ", 7) == 0) {
        /* "INSERT oid rows": skip the oid, which is always 0 nowadays. */
        const char *sp = strchr(tag + 7, ' ');
        if (sp == NULL)
            return 0;
        for (const char *p = tag + 7; p < sp; p++) {
            if (*p < '0' || *p > '9')
                return 0;
        }
        if (sp == tag + 7)
            return 0;
        num = sp + 1;
    } else {
        for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
            size_t k = strlen(counted[i]);
            if (strncmp(tag, counted[i], k) == 0) {
                num = tag + k;
                break;
            }
        }
    }
    uint64_t v;
    if (num == NULL || !parse_u64(num, &v))
        return 0;
    *rows = v;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Copy responses                                                          */
/* ---------------------------------------------------------------------- */

static int is_copy_response(uint8_t t)
{
    return t == 'G' || t == 'H' || t == 'W';
}

int molt_db_proto_read_copy_response(const molt_db_msg *msg, int *format,
                                     size_t *ncols, molt_db_error *err)
{
    if (!is_copy_response(msg->type))
        return molt_db_error_set(err, MOLT_DB_EPROTO,
                                 "expected message type 'G', 'H' or 'W', "
                                 "got 0x%02x",
                                 msg->type);
    cursor c = cursor_of(msg);
    uint8_t overall;
    uint16_t count;
    if (get_u8(&c, &overall) != 0 || get_u16c(&c, &count) != 0)
        return bad(err, msg, "expected format and column count");
    if (overall > 1)
        return bad(err, msg, "unknown overall format");
    if (c.left != (size_t)count * 2)
        return bad(err, msg, "length does not match the column count");
    for (size_t i = 0; i < count; i++) {
        int16_t f = -1;
        (void)get_i16(&c, &f);
        /* Each is 0 or 1, and all 0 when the overall format is text. */
        if (f < 0 || f > (int16_t)overall)
            return bad(err, msg, "bad column format");
    }
    *format = overall;
    *ncols = count;
    return MOLT_DB_OK;
}

int molt_db_proto_copy_column_format(const molt_db_msg *msg, size_t i)
{
    if (!is_copy_response(msg->type) || msg->len < 3)
        return MOLT_DB_EINVAL;
    size_t count = (size_t)msg->body[1] << 8 | msg->body[2];
    if (i >= count || msg->len < 3 + 2 * (i + 1))
        return MOLT_DB_EINVAL;
    const uint8_t *p = msg->body + 3 + 2 * i;
    return (int16_t)(p[0] << 8 | p[1]);
}
