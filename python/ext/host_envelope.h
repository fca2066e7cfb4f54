/*
 * A request envelope packed in C: the same bytes as
 * molt_db_adapter.envelope.encode_envelope (msgpack-python's Packer with
 * use_bin_type=True), without the Python objects in between. The payload
 * is a dict of what envelope.py's payload builders give: None, bool, int
 * (-2^63 .. 2^64-1), float, str, bytes, list/tuple and dict of those.
 */
#ifndef MOLT_DB_HOST_ENVELOPE_H
#define MOLT_DB_HOST_ENVELOPE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* A growing byte buffer; starts in its own inline space. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    uint8_t inline_space[512];
} env_buf;

void env_buf_init(env_buf *b);
void env_buf_free(env_buf *b);

/* What a packer's rc makes of b for Python, b freed: its bytes for 0,
 * None for ENV_LEAVE, NULL (the exception set) for -1. */
PyObject *env_buf_result(env_buf *b, int rc);

/* Packs {"request_id", "entry", "payload" (bin of the packed payload) and
 * "codec": "msgpack" when payload is not None, "timeout_ms" when it is not
 * None} into out (initialized by the caller, freed by the caller).
 * 0 when packed; 1 when some value is of a kind this packer leaves to
 * msgpack (no exception set: the caller packs it in Python); -1 with an
 * exception (no memory, a request_id of 0). */
int envelope_pack(env_buf *out, uint64_t request_id, PyObject *entry, PyObject *payload,
                  PyObject *timeout_ms);

/* What envelope_pack and the other packers answer for a kind left to
 * msgpack (or to the Python code that refuses it with its own error). */
#define ENV_LEAVE 1

/* Writes the envelope around a payload already packed (NULL: none), with
 * entry given as UTF-8: envelope_pack's bytes; 0, ENV_LEAVE (timeout_ms
 * not an int or None) or -1 with an exception. */
int envelope_write(env_buf *out, uint64_t request_id, const char *entry, size_t entry_len,
                   const env_buf *payload, PyObject *timeout_ms);

/* msgpack's encoding of one str, one value of the kinds above (ENV_LEAVE
 * for another), a map header and an array header: the pieces of other
 * packers (host_params.c); 0, ENV_LEAVE or -1 with an exception. */
int env_put_str(env_buf *b, const char *s, size_t n);
int env_put_value(env_buf *b, PyObject *o);
int env_put_map_header(env_buf *b, size_t n);
int env_put_array_header(env_buf *b, size_t n);

/* The payload of query(sql, params) (write: execute(sql, params)) with
 * every option at its default on a client whose db_alias is alias, packed
 * into out as msgpack packs the dict ClientBase._plain_call builds
 * (host_params.c); scan is placeholders.scan_placeholders. 0, ENV_LEAVE
 * (the Python path builds or refuses the call) or -1 with an exception. */
int plain_payload_pack(env_buf *out, PyObject *sql, PyObject *params, PyObject *alias, int write,
                       PyObject *scan);

/* Adds plain_payload() (host_params.c) to the module; -1 with an
 * exception. */
int host_params_add(PyObject *m);

/* Adds encode_envelope(request_id, entry, payload, timeout_ms) -> bytes |
 * None to the module (None: envelope_pack answered 1); -1 with an
 * exception. */
int host_envelope_add(PyObject *m);

#endif
