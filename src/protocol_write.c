/*
 * Frontend message encoders for the PostgreSQL v3 protocol.
 *
 * Every encoder validates its arguments first, then appends the whole
 * message to the buffer with a placeholder length that is backpatched at the
 * end. On any failure the buffer is cut back to where it was, so a
 * half-written message never reaches the socket.
 */
#include "molt_db/protocol.h"

#include <string.h>

/* Largest value an Int16 count field carries (the server reads it unsigned). */
#define MAX_COUNT 65535u

typedef struct msg_start {
    size_t at;       /* out->len before the call: where we cut back to */
    size_t len_at;   /* offset of the Int32 length field */
} msg_start;

/* Starts a typed message (type byte, then Int32 length placeholder). A type
 * of 0 starts an untyped startup-phase message (length first). */
static msg_start begin(molt_db_buf *out, uint8_t type)
{
    msg_start s = {out->len, out->len};
    if (type != 0) {
        molt_db_buf_put_u8(out, type);
        s.len_at = out->len;
    }
    molt_db_buf_put_u32(out, 0);
    return s;
}

/* Backpatches the length (which counts itself but not the type byte). */
static int finish(molt_db_buf *out, msg_start s)
{
    int rc = molt_db_buf_ok(out);
    if (rc == MOLT_DB_OK && out->len - s.len_at > (size_t)INT32_MAX)
        rc = MOLT_DB_EINVAL;
    if (rc != MOLT_DB_OK) {
        /* out->len only grows while failed is clear; if an append failed the
         * buffer may still hold part of the message. */
        if (out->len > s.at)
            out->len = s.at;
        return rc;
    }
    molt_db_buf_patch_u32(out, s.len_at, (uint32_t)(out->len - s.len_at));
    return MOLT_DB_OK;
}

/* A byte payload of len bytes must fit an Int32 length with room for the
 * message header around it; the real total is checked again in finish(). */
static int payload_ok(const void *data, size_t len)
{
    if (len > (size_t)INT32_MAX - 64)
        return 0;
    return data != NULL || len == 0;
}

static int valid_format(int16_t f)
{
    return f == MOLT_DB_FORMAT_TEXT || f == MOLT_DB_FORMAT_BINARY;
}

static int fixed_message(molt_db_buf *out, uint8_t type)
{
    msg_start s = begin(out, type);
    return finish(out, s);
}

int molt_db_proto_write_startup(molt_db_buf *out, const char *const *names,
                                const char *const *values, size_t n)
{
    if (n > 0 && (names == NULL || values == NULL))
        return MOLT_DB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        /* An empty name would end the list early and desync the server. */
        if (names[i] == NULL || names[i][0] == '\0' || values[i] == NULL)
            return MOLT_DB_EINVAL;
    }
    msg_start s = begin(out, 0);
    molt_db_buf_put_u32(out, MOLT_DB_PROTOCOL_VERSION);
    for (size_t i = 0; i < n; i++) {
        molt_db_buf_put_cstr(out, names[i]);
        molt_db_buf_put_cstr(out, values[i]);
    }
    molt_db_buf_put_u8(out, 0);
    return finish(out, s);
}

int molt_db_proto_write_ssl_request(molt_db_buf *out)
{
    msg_start s = begin(out, 0);
    molt_db_buf_put_u32(out, MOLT_DB_SSL_REQUEST_CODE);
    return finish(out, s);
}

int molt_db_proto_write_cancel_request(molt_db_buf *out, int32_t backend_pid,
                                       int32_t secret_key)
{
    msg_start s = begin(out, 0);
    molt_db_buf_put_u32(out, MOLT_DB_CANCEL_REQUEST_CODE);
    molt_db_buf_put_u32(out, (uint32_t)backend_pid);
    molt_db_buf_put_u32(out, (uint32_t)secret_key);
    return finish(out, s);
}

int molt_db_proto_write_password(molt_db_buf *out, const char *password)
{
    if (password == NULL)
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'p');
    molt_db_buf_put_cstr(out, password);
    return finish(out, s);
}

int molt_db_proto_write_sasl_initial(molt_db_buf *out, const char *mechanism,
                                     const uint8_t *data, size_t len)
{
    if (mechanism == NULL || !payload_ok(data, len))
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'p');
    molt_db_buf_put_cstr(out, mechanism);
    /* -1 says "no initial response"; an empty one is a length of 0. */
    molt_db_buf_put_u32(out, data == NULL ? UINT32_MAX : (uint32_t)len);
    molt_db_buf_put(out, data, len);
    return finish(out, s);
}

int molt_db_proto_write_sasl_response(molt_db_buf *out, const uint8_t *data,
                                      size_t len)
{
    if (!payload_ok(data, len))
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'p');
    molt_db_buf_put(out, data, len);
    return finish(out, s);
}

int molt_db_proto_write_query(molt_db_buf *out, const char *sql)
{
    if (sql == NULL)
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'Q');
    molt_db_buf_put_cstr(out, sql);
    return finish(out, s);
}

int molt_db_proto_write_parse(molt_db_buf *out, const char *stmt,
                              const char *sql, size_t nparams,
                              const uint32_t *param_oids)
{
    if (stmt == NULL || sql == NULL || nparams > MAX_COUNT ||
        (nparams > 0 && param_oids == NULL))
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'P');
    molt_db_buf_put_cstr(out, stmt);
    molt_db_buf_put_cstr(out, sql);
    molt_db_buf_put_u16(out, (uint16_t)nparams);
    for (size_t i = 0; i < nparams; i++)
        molt_db_buf_put_u32(out, param_oids[i]);
    return finish(out, s);
}

/* How many parameter format codes Bind carries: 0 when all are text, 1 when
 * all share one binary code, else one per parameter. */
static size_t bind_format_count(size_t nparams, const int16_t *formats)
{
    if (formats == NULL || nparams == 0)
        return 0;
    int all_text = 1, all_same = 1;
    for (size_t i = 0; i < nparams; i++) {
        if (formats[i] != MOLT_DB_FORMAT_TEXT)
            all_text = 0;
        if (formats[i] != formats[0])
            all_same = 0;
    }
    return all_text ? 0 : all_same ? 1 : nparams;
}

static int bind_args_ok(const char *portal, const char *stmt, size_t nparams,
                        const int16_t *param_formats,
                        const uint8_t *const *values, const int32_t *lengths,
                        size_t nresult_formats, const int16_t *result_formats)
{
    if (portal == NULL || stmt == NULL || nparams > MAX_COUNT ||
        nresult_formats > MAX_COUNT)
        return 0;
    if (nparams > 0 && lengths == NULL)
        return 0;
    if (nresult_formats > 0 && result_formats == NULL)
        return 0;
    /* Sum the values first so an oversized Bind is refused before anything
     * is copied (65535 values of at most 2 GiB cannot overflow 64 bits). */
    uint64_t total = 0;
    for (size_t i = 0; i < nparams; i++) {
        if (lengths[i] < -1)
            return 0;
        if (lengths[i] > 0)
            total += (uint64_t)lengths[i];
        if (lengths[i] > 0 && (values == NULL || values[i] == NULL))
            return 0;
        if (param_formats != NULL && !valid_format(param_formats[i]))
            return 0;
    }
    for (size_t i = 0; i < nresult_formats; i++) {
        if (!valid_format(result_formats[i]))
            return 0;
    }
    return total <= (uint64_t)INT32_MAX;
}

int molt_db_proto_write_bind(molt_db_buf *out, const char *portal,
                             const char *stmt, size_t nparams,
                             const int16_t *param_formats,
                             const uint8_t *const *values,
                             const int32_t *lengths, size_t nresult_formats,
                             const int16_t *result_formats)
{
    if (!bind_args_ok(portal, stmt, nparams, param_formats, values, lengths,
                      nresult_formats, result_formats))
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'B');
    molt_db_buf_put_cstr(out, portal);
    molt_db_buf_put_cstr(out, stmt);
    size_t nformats = bind_format_count(nparams, param_formats);
    molt_db_buf_put_u16(out, (uint16_t)nformats);
    for (size_t i = 0; i < nformats; i++)
        molt_db_buf_put_u16(out, (uint16_t)param_formats[i]);
    molt_db_buf_put_u16(out, (uint16_t)nparams);
    for (size_t i = 0; i < nparams; i++) {
        molt_db_buf_put_u32(out, (uint32_t)lengths[i]);
        if (lengths[i] > 0)
            molt_db_buf_put(out, values[i], (size_t)lengths[i]);
    }
    molt_db_buf_put_u16(out, (uint16_t)nresult_formats);
    for (size_t i = 0; i < nresult_formats; i++)
        molt_db_buf_put_u16(out, (uint16_t)result_formats[i]);
    return finish(out, s);
}

static int kind_message(molt_db_buf *out, uint8_t type, char kind,
                        const char *name)
{
    if (name == NULL || (kind != 'S' && kind != 'P'))
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, type);
    molt_db_buf_put_u8(out, (uint8_t)kind);
    molt_db_buf_put_cstr(out, name);
    return finish(out, s);
}

int molt_db_proto_write_describe(molt_db_buf *out, char kind, const char *name)
{
    return kind_message(out, 'D', kind, name);
}

int molt_db_proto_write_execute(molt_db_buf *out, const char *portal,
                                uint32_t max_rows)
{
    /* The field is an Int32; the server treats a negative one as "all". */
    if (portal == NULL || max_rows > (uint32_t)INT32_MAX)
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'E');
    molt_db_buf_put_cstr(out, portal);
    molt_db_buf_put_u32(out, max_rows);
    return finish(out, s);
}

int molt_db_proto_write_close(molt_db_buf *out, char kind, const char *name)
{
    return kind_message(out, 'C', kind, name);
}

int molt_db_proto_write_sync(molt_db_buf *out)
{
    return fixed_message(out, 'S');
}

int molt_db_proto_write_flush(molt_db_buf *out)
{
    return fixed_message(out, 'H');
}

int molt_db_proto_write_terminate(molt_db_buf *out)
{
    return fixed_message(out, 'X');
}

int molt_db_proto_write_copy_data(molt_db_buf *out, const uint8_t *data,
                                  size_t len)
{
    if (!payload_ok(data, len))
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'd');
    molt_db_buf_put(out, data, len);
    return finish(out, s);
}

int molt_db_proto_write_copy_done(molt_db_buf *out)
{
    return fixed_message(out, 'c');
}

int molt_db_proto_write_copy_fail(molt_db_buf *out, const char *reason)
{
    if (reason == NULL)
        return MOLT_DB_EINVAL;
    msg_start s = begin(out, 'f');
    molt_db_buf_put_cstr(out, reason);
    return finish(out, s);
}
