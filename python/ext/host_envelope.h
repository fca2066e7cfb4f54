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

/* Packs {"request_id", "entry", "payload" (bin of the packed payload) and
 * "codec": "msgpack" when payload is not None, "timeout_ms" when it is not
 * None} into out (initialized by the caller, freed by the caller).
 * 0 when packed; 1 when some value is of a kind this packer leaves to
 * msgpack (no exception set: the caller packs it in Python); -1 with an
 * exception (no memory, a request_id of 0). */
int envelope_pack(env_buf *out, uint64_t request_id, PyObject *entry, PyObject *payload,
                  PyObject *timeout_ms);

/* Adds encode_envelope(request_id, entry, payload, timeout_ms) -> bytes |
 * None to the module (None: envelope_pack answered 1); -1 with an
 * exception. */
int host_envelope_add(PyObject *m);

#endif
