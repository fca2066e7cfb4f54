/*
 * The request envelope packed in C (host_envelope.h). Every choice of
 * encoding is msgpack-python's (1.x, use_bin_type=True): the shortest
 * integer form, float64, str8 for short strings, bin for bytes, maps and
 * arrays by their size. Kinds it does not pack (a dict or list subclass,
 * an int above 64 bits, a str with lone surrogates, deep nesting, some
 * other object) are left to msgpack, which packs them or raises its own
 * error, so both paths give the same bytes or the same exception.
 */
#include "host_envelope.h"

#include <string.h>

/* deeper than any payload envelope.py builds (arrays nest 6 deep) */
#define PACK_MAX_DEPTH 32
#define LEAVE ENV_LEAVE

void env_buf_init(env_buf *b)
{
    b->data = b->inline_space;
    b->len = 0;
    b->cap = sizeof b->inline_space;
}

void env_buf_free(env_buf *b)
{
    if (b->data != b->inline_space)
        PyMem_Free(b->data);
    env_buf_init(b);
}

/* Room for n more bytes; -1 with MemoryError. */
static int reserve(env_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > PY_SSIZE_T_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = b->cap * 2;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *data;
    if (b->data == b->inline_space) {
        data = PyMem_Malloc(cap);
        if (data != NULL)
            memcpy(data, b->data, b->len);
    } else {
        data = PyMem_Realloc(b->data, cap);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(env_buf *b, const void *src, size_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* A one-byte tag and a big-endian number of width bytes (0: the tag only). */
static int put_tagged(env_buf *b, uint8_t tag, uint64_t v, int width)
{
    if (width == 0 && b->len < b->cap) { /* most of an envelope's headers */
        b->data[b->len++] = tag;
        return 0;
    }
    uint8_t out[9];
    out[0] = tag;
    for (int i = 0; i < width; i++)
        out[1 + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    return put(b, out, (size_t)width + 1);
}

static int put_uint(env_buf *b, uint64_t v)
{
    if (v < 0x80)
        return put_tagged(b, (uint8_t)v, 0, 0);
    if (v < 0x100)
        return put_tagged(b, 0xcc, v, 1);
    if (v < 0x10000)
        return put_tagged(b, 0xcd, v, 2);
    if (v < 0x100000000ULL)
        return put_tagged(b, 0xce, v, 4);
    return put_tagged(b, 0xcf, v, 8);
}

static int put_int(env_buf *b, long long v)
{
    if (v >= 0)
        return put_uint(b, (uint64_t)v);
    if (v >= -32)
        return put_tagged(b, (uint8_t)(int8_t)v, 0, 0);
    if (v >= -128)
        return put_tagged(b, 0xd0, (uint64_t)v, 1);
    if (v >= -32768)
        return put_tagged(b, 0xd1, (uint64_t)v, 2);
    if (v >= -2147483648LL)
        return put_tagged(b, 0xd2, (uint64_t)v, 4);
    return put_tagged(b, 0xd3, (uint64_t)v, 8);
}

/* A str, bin, array or map header: fix is the fix form's tag (0: none, as
 * for bin), fix_max the most it holds, then the 8-bit tag (0: none, as for
 * arrays and maps) and the 16- and 32-bit ones. LEAVE above 2^32-1. */
static int put_header(env_buf *b, size_t n, uint8_t fix, size_t fix_max, uint8_t t8,
                      uint8_t t16, uint8_t t32)
{
    if (fix && n <= fix_max)
        return put_tagged(b, (uint8_t)(fix | n), 0, 0);
    if (t8 && n < 0x100)
        return put_tagged(b, t8, n, 1);
    if (n < 0x10000)
        return put_tagged(b, t16, n, 2);
    if (n <= 0xffffffffULL)
        return put_tagged(b, t32, n, 4);
    return LEAVE;
}

static int put_str(env_buf *b, const char *s, size_t n)
{
    int rc = put_header(b, n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    return rc != 0 ? rc : put(b, s, n);
}

static int put_bin(env_buf *b, const void *s, size_t n)
{
    int rc = put_header(b, n, 0, 0, 0xc4, 0xc5, 0xc6);
    return rc != 0 ? rc : put(b, s, n);
}

static int pack_value(env_buf *b, PyObject *o, int depth);

static int pack_long(env_buf *b, PyObject *o)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow == 0)
        return put_int(b, v);
    if (overflow < 0)
        return LEAVE;
    unsigned long long u = PyLong_AsUnsignedLongLong(o);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* above 64 bits: msgpack raises its OverflowError */
        return LEAVE;
    }
    return put_uint(b, u);
}

static int pack_double(env_buf *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return put_tagged(b, 0xcb, bits, 8);
}

static int pack_unicode(env_buf *b, PyObject *o)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) {
        PyErr_Clear(); /* lone surrogates: msgpack raises its own error */
        return LEAVE;
    }
    return put_str(b, s, (size_t)n);
}

static int pack_dict(env_buf *b, PyObject *o, int depth)
{
    int rc = put_header(b, (size_t)PyDict_GET_SIZE(o), 0x80, 15, 0, 0xde, 0xdf);
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (rc == 0 && PyDict_Next(o, &pos, &k, &v)) {
        rc = pack_value(b, k, depth + 1);
        if (rc == 0)
            rc = pack_value(b, v, depth + 1);
    }
    return rc;
}

static int pack_sequence(env_buf *b, PyObject *o, int depth)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
    PyObject **items = PySequence_Fast_ITEMS(o);
    int rc = put_header(b, (size_t)n, 0x90, 15, 0, 0xdc, 0xdd);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++)
        rc = pack_value(b, items[i], depth + 1);
    return rc;
}

/* One value, in msgpack's order of checks; 0, LEAVE, or -1 with an
 * exception. */
static int pack_value(env_buf *b, PyObject *o, int depth)
{
    if (depth > PACK_MAX_DEPTH)
        return LEAVE;
    if (o == Py_None)
        return put_tagged(b, 0xc0, 0, 0);
    if (o == Py_True)
        return put_tagged(b, 0xc3, 0, 0);
    if (o == Py_False)
        return put_tagged(b, 0xc2, 0, 0);
    if (PyLong_Check(o))
        return pack_long(b, o);
    if (PyFloat_Check(o))
        return pack_double(b, PyFloat_AS_DOUBLE(o));
    if (PyBytes_Check(o))
        return put_bin(b, PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    if (PyByteArray_Check(o))
        return put_bin(b, PyByteArray_AS_STRING(o), (size_t)PyByteArray_GET_SIZE(o));
    if (PyUnicode_Check(o))
        return pack_unicode(b, o);
    if (PyDict_CheckExact(o))
        return pack_dict(b, o, depth);
    if (PyList_CheckExact(o) || PyTuple_CheckExact(o))
        return pack_sequence(b, o, depth);
    return LEAVE;
}

/* A str literal (its length known when compiled) */
#define put_key(b, key) put_str((b), "" key, sizeof(key) - 1)

/* (host_envelope.h) */
int env_put_str(env_buf *b, const char *s, size_t n)
{
    return put_str(b, s, n);
}

int env_put_value(env_buf *b, PyObject *o)
{
    return pack_value(b, o, 0);
}

int env_put_map_header(env_buf *b, size_t n)
{
    return put_header(b, n, 0x80, 15, 0, 0xde, 0xdf);
}

int env_put_array_header(env_buf *b, size_t n)
{
    return put_header(b, n, 0x90, 15, 0, 0xdc, 0xdd);
}

int envelope_write(env_buf *out, uint64_t request_id, const char *entry, size_t entry_len,
                   const env_buf *payload, PyObject *timeout_ms)
{
    if (request_id == 0) {
        PyErr_SetString(PyExc_ValueError, "request_id 0 is not a positive uint64");
        return -1;
    }
    if (timeout_ms != Py_None && !PyLong_CheckExact(timeout_ms))
        return LEAVE; /* a bool or an int subclass: msgpack's way */
    int with_payload = payload != NULL;
    int with_timeout = timeout_ms != Py_None;
    int rc = put_tagged(out, (uint8_t)(0x80 | (2 + 2 * with_payload + with_timeout)), 0, 0);
    if (rc == 0)
        rc = put_key(out, "request_id");
    if (rc == 0)
        rc = put_uint(out, request_id);
    if (rc == 0)
        rc = put_key(out, "entry");
    if (rc == 0)
        rc = put_str(out, entry, entry_len);
    if (rc == 0 && with_payload) {
        rc = put_key(out, "payload");
        if (rc == 0)
            rc = put_bin(out, payload->data, payload->len);
        if (rc == 0)
            rc = put_key(out, "codec");
        if (rc == 0)
            rc = put_key(out, "msgpack");
    }
    if (rc == 0 && with_timeout) {
        rc = put_key(out, "timeout_ms");
        if (rc == 0)
            rc = pack_long(out, timeout_ms);
    }
    return rc;
}

int envelope_pack(env_buf *out, uint64_t request_id, PyObject *entry, PyObject *payload,
                  PyObject *timeout_ms)
{
    if (request_id == 0)
        return envelope_write(out, 0, "", 0, NULL, Py_None); /* its ValueError */
    if (!PyUnicode_Check(entry))
        return LEAVE;
    Py_ssize_t entry_len;
    const char *entry_utf8 = PyUnicode_AsUTF8AndSize(entry, &entry_len);
    if (entry_utf8 == NULL) {
        PyErr_Clear(); /* lone surrogates: msgpack raises its own error */
        return LEAVE;
    }
    env_buf packed; /* the payload, to be written as bin */
    env_buf_init(&packed);
    int rc = payload != Py_None ? pack_value(&packed, payload, 0) : 0;
    if (rc == 0)
        rc = envelope_write(out, request_id, entry_utf8, (size_t)entry_len,
                            payload != Py_None ? &packed : NULL, timeout_ms);
    env_buf_free(&packed);
    return rc;
}

/* (host_envelope.h) */
PyObject *env_buf_result(env_buf *b, int rc)
{
    PyObject *out = NULL;
    if (rc == 0)
        out = PyBytes_FromStringAndSize((const char *)b->data, (Py_ssize_t)b->len);
    else if (rc == LEAVE)
        out = Py_NewRef(Py_None);
    env_buf_free(b);
    return out;
}

/* encode_envelope(request_id, entry, payload, timeout_ms) -> bytes | None */
static PyObject *encode_envelope(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *rid_obj, *entry, *payload, *timeout_ms;
    if (!PyArg_ParseTuple(args, "OOOO:encode_envelope", &rid_obj, &entry, &payload, &timeout_ms))
        return NULL;
    unsigned long long rid = PyLong_AsUnsignedLongLong(rid_obj);
    if (rid == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    env_buf b;
    env_buf_init(&b);
    return env_buf_result(&b, envelope_pack(&b, (uint64_t)rid, entry, payload, timeout_ms));
}

static PyMethodDef envelope_functions[] = {
    {"encode_envelope", encode_envelope, METH_VARARGS,
     "encode_envelope(request_id, entry, payload, timeout_ms) -> bytes | None: "
     "envelope.encode_envelope's bytes packed in C; None when a value is left to msgpack."},
    {NULL, NULL, 0, NULL},
};

int host_envelope_add(PyObject *m)
{
    return PyModule_AddFunctions(m, envelope_functions);
}
