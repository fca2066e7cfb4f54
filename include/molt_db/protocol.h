/*
 * The PostgreSQL v3 wire protocol, sans-I/O.
 *
 * This layer does no I/O and knows no event loop. Encoders append whole
 * frontend messages to a molt_db_buf. The parser takes bytes and returns one
 * whole backend message, or MOLT_DB_NEED_MORE, or MOLT_DB_EPROTO when a
 * header cannot be right (the stream has lost sync; the connection must be
 * closed). The molt_db_proto_read_* functions decode one message body; they
 * check every length against the body before reading, so a malformed body is
 * MOLT_DB_EPROTO, never an overread.
 *
 * Pointers returned by readers point into the message body the caller passed
 * in; they are valid as long as those bytes are.
 *
 * Thread-safety: all functions are reentrant; they touch only their
 * arguments.
 */
#ifndef MOLT_DB_PROTOCOL_H
#define MOLT_DB_PROTOCOL_H

#include "molt_db/export.h"

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol 3.0 */
#define MOLT_DB_PROTOCOL_VERSION 196608
#define MOLT_DB_SSL_REQUEST_CODE 80877103
#define MOLT_DB_CANCEL_REQUEST_CODE 80877102

/* Largest backend message the parser accepts (header length field). The
 * server never sends a field over 1 GiB; anything larger is lost sync. */
#define MOLT_DB_MAX_MESSAGE_LEN ((uint32_t)0x40000000u + 1024u)
/* Messages other than DataRow, CopyData, ErrorResponse, NoticeResponse,
 * RowDescription, FunctionCallResponse, NotificationResponse,
 * Authentication (SASL), ParameterDescription and the CopyIn/CopyOut/
 * CopyBoth responses are never this long; as in libpq, a longer one means
 * the stream lost sync. */
#define MOLT_DB_MAX_SHORT_MESSAGE_LEN 30000u

/* Format codes */
#define MOLT_DB_FORMAT_TEXT 0
#define MOLT_DB_FORMAT_BINARY 1

/* ---------------------------------------------------------------------- */
/* Frontend encoders. Each appends one whole message to out and returns    */
/* MOLT_DB_OK, MOLT_DB_ENOMEM (out->failed set), or MOLT_DB_EINVAL (a NULL */
/* where a string is required, a count or length the protocol cannot carry).*/
/* On failure out->len is restored to its value before the call.           */
/* Format codes must be MOLT_DB_FORMAT_TEXT or _BINARY (else EINVAL).      */
/* ---------------------------------------------------------------------- */

/* StartupMessage: protocol 3.0 and n (name, value) pairs, e.g. "user".
 * An empty name is MOLT_DB_EINVAL (it would end the list early). */
MOLT_DB_API
int molt_db_proto_write_startup(molt_db_buf *out, const char *const *names,
                                const char *const *values, size_t n);
/* SSLRequest. The server answers one byte, 'S' or 'N', outside framing. */
MOLT_DB_API
int molt_db_proto_write_ssl_request(molt_db_buf *out);
/* CancelRequest, sent alone on a new connection. */
MOLT_DB_API
int molt_db_proto_write_cancel_request(molt_db_buf *out, int32_t backend_pid,
                                       int32_t secret_key);
/* PasswordMessage ('p') with a NUL-terminated password (cleartext or md5). */
MOLT_DB_API
int molt_db_proto_write_password(molt_db_buf *out, const char *password);
/* SASLInitialResponse ('p'): mechanism name and the client-first message.
 * data NULL (len 0) sends length -1, "no initial response". */
MOLT_DB_API
int molt_db_proto_write_sasl_initial(molt_db_buf *out, const char *mechanism,
                                     const uint8_t *data, size_t len);
/* SASLResponse ('p'): raw bytes. */
MOLT_DB_API
int molt_db_proto_write_sasl_response(molt_db_buf *out, const uint8_t *data,
                                      size_t len);
/* Query ('Q'): simple protocol. */
MOLT_DB_API
int molt_db_proto_write_query(molt_db_buf *out, const char *sql);
/* Parse ('P'). stmt "" is the unnamed statement. param_oids may be NULL when
 * nparams is 0; an oid of 0 lets the server infer that parameter's type. */
MOLT_DB_API
int molt_db_proto_write_parse(molt_db_buf *out, const char *stmt,
                              const char *sql, size_t nparams,
                              const uint32_t *param_oids);
/* Bind ('B'). portal/stmt "" are the unnamed ones. For each of nparams:
 * param_formats[i] (MOLT_DB_FORMAT_*; param_formats may be NULL: all text),
 * values[i] and lengths[i] (lengths[i] == -1 is NULL; values[i] ignored).
 * result_formats: nresult_formats codes (0 entries: all text; 1 entry: all
 * columns use it; else one per column), written as given.
 * Parameter format codes are written compactly: none when all are text,
 * one when all are binary, else one per parameter. values may be NULL when
 * no length is > 0; the values' total must fit the Int32 message length. */
MOLT_DB_API
int molt_db_proto_write_bind(molt_db_buf *out, const char *portal,
                             const char *stmt, size_t nparams,
                             const int16_t *param_formats,
                             const uint8_t *const *values,
                             const int32_t *lengths, size_t nresult_formats,
                             const int16_t *result_formats);
/* Describe ('D'): kind 'S' (statement) or 'P' (portal). */
MOLT_DB_API
int molt_db_proto_write_describe(molt_db_buf *out, char kind, const char *name);
/* Execute ('E'): max_rows 0 means all rows; > INT32_MAX is MOLT_DB_EINVAL. */
MOLT_DB_API
int molt_db_proto_write_execute(molt_db_buf *out, const char *portal,
                                uint32_t max_rows);
/* Close ('C'): kind 'S' or 'P'. */
MOLT_DB_API
int molt_db_proto_write_close(molt_db_buf *out, char kind, const char *name);
MOLT_DB_API
int molt_db_proto_write_sync(molt_db_buf *out);      /* 'S' */
MOLT_DB_API
int molt_db_proto_write_flush(molt_db_buf *out);     /* 'H' */
MOLT_DB_API
int molt_db_proto_write_terminate(molt_db_buf *out); /* 'X' */
MOLT_DB_API
int molt_db_proto_write_copy_data(molt_db_buf *out, const uint8_t *data,
                                  size_t len);          /* 'd' */
MOLT_DB_API
int molt_db_proto_write_copy_done(molt_db_buf *out); /* 'c' */
MOLT_DB_API
int molt_db_proto_write_copy_fail(molt_db_buf *out, const char *reason); /* 'f' */

/* ---------------------------------------------------------------------- */
/* Backend message framing.                                                */
/* ---------------------------------------------------------------------- */

typedef struct molt_db_msg {
    uint8_t type;         /* the message type byte, e.g. 'D' */
    uint32_t len;         /* body length (header length minus 4) */
    const uint8_t *body;  /* len bytes, inside the caller's input */
} molt_db_msg;

/*
 * Frames the next backend message in data[0..len).
 * Returns:
 *   MOLT_DB_OK        *msg is set; *consumed = 5 + msg->len.
 *   MOLT_DB_NEED_MORE the message is not whole yet; *consumed = 0 and
 *                     *need (if not NULL) is the total bytes the message
 *                     needs (type byte included) when the 5-byte header is
 *                     readable, else 5. The type byte is checked as soon
 *                     as it is there (an unknown one is EPROTO at once).
 *   MOLT_DB_EPROTO    an unknown type byte or an impossible length: lost
 *                     sync. err says which.
 * need may be NULL.
 */
MOLT_DB_API
int molt_db_proto_next(const uint8_t *data, size_t len, molt_db_msg *msg,
                       size_t *consumed, size_t *need, molt_db_error *err);

/* ---------------------------------------------------------------------- */
/* Backend message bodies. Each returns MOLT_DB_OK or MOLT_DB_EPROTO (the  */
/* body is malformed for its type, or msg->type is not the expected one).  */
/* ---------------------------------------------------------------------- */

/* Authentication request codes ('R') */
enum {
    MOLT_DB_AUTH_OK = 0,
    MOLT_DB_AUTH_KERBEROS_V5 = 2,
    MOLT_DB_AUTH_CLEARTEXT = 3,
    MOLT_DB_AUTH_MD5 = 5,
    MOLT_DB_AUTH_GSS = 7,
    MOLT_DB_AUTH_GSS_CONTINUE = 8,
    MOLT_DB_AUTH_SSPI = 9,
    MOLT_DB_AUTH_SASL = 10,
    MOLT_DB_AUTH_SASL_CONTINUE = 11,
    MOLT_DB_AUTH_SASL_FINAL = 12
};

typedef struct molt_db_auth_msg {
    int32_t code;         /* MOLT_DB_AUTH_* */
    const uint8_t *data;  /* what follows the code: the md5 salt (4 bytes),
                             the SASL mechanism list (NUL-terminated names,
                             then an empty one), or SASL data */
    size_t len;
} molt_db_auth_msg;

/* The length is checked per code (OK, cleartext, GSS, SSPI: nothing
 * follows; MD5: 4 bytes) and an AUTH_SASL list is validated whole, so
 * molt_db_proto_next_sasl_mechanism cannot fail on it afterwards. Unknown
 * codes are returned as they are, for the caller to refuse. */
MOLT_DB_API
int molt_db_proto_read_auth(const molt_db_msg *msg, molt_db_auth_msg *out,
                            molt_db_error *err);

/* Iterates the mechanism names of an AUTH_SASL message. *pos starts at 0.
 * Returns 1 with *name set, 0 at the end of the list, or MOLT_DB_EPROTO when
 * the list is not NUL-terminated names closed by an empty one. */
MOLT_DB_API
int molt_db_proto_next_sasl_mechanism(const molt_db_auth_msg *auth,
                                      size_t *pos, const char **name);

/* ParameterStatus ('S'): name and value, NUL-terminated inside the body. */
MOLT_DB_API
int molt_db_proto_read_parameter_status(const molt_db_msg *msg,
                                        const char **name, const char **value,
                                        molt_db_error *err);

/* BackendKeyData ('K') */
MOLT_DB_API
int molt_db_proto_read_backend_key(const molt_db_msg *msg, int32_t *pid,
                                   int32_t *secret_key, molt_db_error *err);

/* ReadyForQuery ('Z'): *status is 'I' (idle), 'T' (in transaction) or 'E'
 * (failed transaction); any other byte is MOLT_DB_EPROTO. */
MOLT_DB_API
int molt_db_proto_read_ready(const molt_db_msg *msg, char *status,
                             molt_db_error *err);

/* ErrorResponse ('E') or NoticeResponse ('N') into *out: code
 * MOLT_DB_ESERVER, sqlstate, message (M), and the other fields. Returns
 * MOLT_DB_OK (out cleared, then filled; a field that could not be allocated
 * is left NULL), or MOLT_DB_EPROTO (then err, not out, says why; out is
 * untouched). severity is V, else S. sqlstate is set only when C is five
 * characters [0-9A-Z]; message is "" when there is no M; position is 0
 * unless P is all digits. Unknown field codes are skipped. */
MOLT_DB_API
int molt_db_proto_read_error(const molt_db_msg *msg, molt_db_error *out,
                             molt_db_error *err);

/* One column of a RowDescription ('T'). */
typedef struct molt_db_column {
    const char *name;     /* NUL-terminated, inside the body */
    uint32_t table_oid;
    int16_t column_number;
    uint32_t type_oid;
    int16_t type_size;
    int32_t type_modifier;
    int16_t format;       /* MOLT_DB_FORMAT_* */
} molt_db_column;

/* Reads the count of a RowDescription, DataRow or ParameterDescription (the
 * first Int16, read unsigned: 0..65535). */
MOLT_DB_API
int molt_db_proto_read_count(const molt_db_msg *msg, size_t *n,
                             molt_db_error *err);

/* RowDescription ('T'): fills cols[0..n). cap must be >= the message's
 * column count (see molt_db_proto_read_count); else MOLT_DB_ERANGE with *n
 * set to that count (checked before the columns are read, so a retry with
 * more room may still find the body malformed). A column format other than
 * 0 or 1 is MOLT_DB_EPROTO. On EPROTO *n is 0. */
MOLT_DB_API
int molt_db_proto_read_row_description(const molt_db_msg *msg,
                                       molt_db_column *cols, size_t cap,
                                       size_t *n, molt_db_error *err);

/* ParameterDescription ('t'): fills oids[0..n), same cap rule. */
MOLT_DB_API
int molt_db_proto_read_parameter_description(const molt_db_msg *msg,
                                             uint32_t *oids, size_t cap,
                                             size_t *n, molt_db_error *err);

/* One field of a DataRow: len -1 is NULL (data NULL). */
typedef struct molt_db_field {
    const uint8_t *data;
    int32_t len;
} molt_db_field;

/* DataRow ('D'): fills fields[0..n), same cap rule. Each field's length is
 * checked against the body; a length below -1 is MOLT_DB_EPROTO. */
MOLT_DB_API
int molt_db_proto_read_data_row(const molt_db_msg *msg, molt_db_field *fields,
                                size_t cap, size_t *n, molt_db_error *err);

/* CommandComplete ('C'): the tag, e.g. "SELECT 3", "INSERT 0 1". */
MOLT_DB_API
int molt_db_proto_read_command_complete(const molt_db_msg *msg,
                                        const char **tag, molt_db_error *err);

/* Parses the row count at the end of a command tag ("SELECT 3" -> 3).
 * Returns 1 and sets *rows when the tag carries a count, else 0. As in
 * libpq's PQcmdTuples, only SELECT, INSERT (oid rows), UPDATE, DELETE,
 * MERGE, MOVE, FETCH and COPY carry one. tag may be NULL. */
MOLT_DB_API
int molt_db_proto_tag_rows(const char *tag, uint64_t *rows);

/* NotificationResponse ('A') */
MOLT_DB_API
int molt_db_proto_read_notification(const molt_db_msg *msg, int32_t *pid,
                                    const char **channel, const char **payload,
                                    molt_db_error *err);

/* CopyInResponse ('G'), CopyOutResponse ('H'), CopyBothResponse ('W'):
 * overall format, and the column count; per-column formats via
 * molt_db_proto_copy_column_format. Every format is 0 or 1, and all are 0
 * when the overall format is text (as the docs require), else EPROTO. */
MOLT_DB_API
int molt_db_proto_read_copy_response(const molt_db_msg *msg, int *format,
                                     size_t *ncols, molt_db_error *err);
/* Format code of column i of a message read_copy_response accepted;
 * MOLT_DB_EINVAL when i >= ncols or msg is not a copy response. */
MOLT_DB_API
int molt_db_proto_copy_column_format(const molt_db_msg *msg, size_t i);

/* NegotiateProtocolVersion ('v'): newest minor version the server supports,
 * and the number of unrecognized options. */
MOLT_DB_API
int molt_db_proto_read_negotiate_version(const molt_db_msg *msg,
                                         int32_t *minor, int32_t *nunrecognized,
                                         molt_db_error *err);

#ifdef __cplusplus
}
#endif
#endif
