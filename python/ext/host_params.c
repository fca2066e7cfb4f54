/*
 * The payload of query(sql, params) / execute(sql, params) with every
 * option at its default, packed in C (host_envelope.h): the bytes msgpack
 * gives for the dict ClientBase._plain_call builds, params by
 * encode_params' rules (params.py). Only what those rules take as it is:
 * no params or a list/tuple for $1..$n, each value None, bool, int within
 * signed 64 bits, float, str, bytes, bytearray, or a list/tuple of those
 * nested at most MAX_ARRAY_DIMS deep. Anything else (a mapping, a
 * placeholder without a value, Typed, Decimal, a date, a subclass, sql or
 * alias not plainly valid) is ENV_LEAVE: the Python path then builds the
 * call, or refuses it with its own error.
 */
#include "host_envelope.h"

/* params.MAX_ARRAY_DIMS */
#define MAX_ARRAY_DIMS 6

static PyObject *str_positional, *str_named;

/* A str literal (its length known when compiled) */
#define put_key(b, key) env_put_str((b), "" key, sizeof(key) - 1)

/* A value _value() gives back as it is, packed; ENV_LEAVE for any other. */
static int pack_scalar(env_buf *b, PyObject *v)
{
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        (void)PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow != 0)
            return ENV_LEAVE; /* outside signed 64 bits: params.py's error */
    } else if (!(v == Py_None || PyBool_Check(v) || PyFloat_CheckExact(v) ||
                 PyUnicode_CheckExact(v) || PyBytes_CheckExact(v) || PyByteArray_CheckExact(v))) {
        return ENV_LEAVE;
    }
    return env_put_value(b, v); /* a str that is not UTF-8: ENV_LEAVE there */
}

/* params._array */
static int pack_array(env_buf *b, PyObject *seq, int depth)
{
    if (depth >= MAX_ARRAY_DIMS)
        return ENV_LEAVE;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int rc = env_put_array_header(b, (size_t)n);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *e = items[i];
        rc = PyList_CheckExact(e) || PyTuple_CheckExact(e) ? pack_array(b, e, depth + 1)
                                                            : pack_scalar(b, e);
    }
    return rc;
}

/* params._entry: one positional value */
static int pack_entry(env_buf *b, PyObject *v)
{
    if (v == Py_None) {
        int rc = env_put_map_header(b, 2);
        if (rc == 0)
            rc = put_key(b, "value");
        if (rc == 0)
            rc = env_put_value(b, Py_None);
        if (rc == 0)
            rc = put_key(b, "type");
        return rc != 0 ? rc : put_key(b, "unknown");
    }
    if (PyList_CheckExact(v) || PyTuple_CheckExact(v))
        return pack_array(b, v, 0);
    return pack_scalar(b, v);
}

/* 1 when sql has a character str.strip() keeps. */
static int has_text(PyObject *sql)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(sql);
    int kind = PyUnicode_KIND(sql);
    const void *data = PyUnicode_DATA(sql);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            return 1;
    }
    return 0;
}

/* positional_count's answers by sql (an application sends the same few
 * statements over and over); emptied when it reaches COUNTS_MAX. */
#define COUNTS_MAX 1024
static PyObject *counts;

/* How many positional values sql's placeholders take when they are
 * exactly $1..$n and none is named (scan: placeholders.scan_placeholders);
 * -1 when they are anything else, -2 with an exception. */
static Py_ssize_t scan_count(PyObject *sql, PyObject *scan)
{
    PyObject *found = PyObject_CallOneArg(scan, sql);
    if (found == NULL)
        return -2;
    PyObject *positional = PyObject_GetAttr(found, str_positional);
    PyObject *named = positional != NULL ? PyObject_GetAttr(found, str_named) : NULL;
    Py_DECREF(found);
    Py_ssize_t n = -2;
    if (named == NULL)
        goto done;
    if (!PyAnySet_Check(positional) || !PyAnySet_Check(named) || PySet_GET_SIZE(named) != 0) {
        n = -1;
        goto done;
    }
    n = PySet_GET_SIZE(positional);
    for (Py_ssize_t k = 1; k <= n; k++) {
        PyObject *key = PyLong_FromSsize_t(k);
        int in = key != NULL ? PySet_Contains(positional, key) : -1;
        Py_XDECREF(key);
        if (in <= 0) {
            n = in < 0 ? -2 : -1;
            break;
        }
    }
done:
    Py_XDECREF(positional);
    Py_XDECREF(named);
    return n;
}

static Py_ssize_t positional_count(PyObject *sql, PyObject *scan)
{
    PyObject *known = PyDict_GetItemWithError(counts, sql);
    if (known != NULL)
        return PyLong_AsSsize_t(known);
    if (PyErr_Occurred())
        return -2;
    Py_ssize_t n = scan_count(sql, scan);
    if (n == -2)
        return -2;
    if (PyDict_GET_SIZE(counts) >= COUNTS_MAX)
        PyDict_Clear(counts);
    PyObject *value = PyLong_FromSsize_t(n);
    int rc = value != NULL ? PyDict_SetItem(counts, sql, value) : -1;
    Py_XDECREF(value);
    return rc < 0 ? -2 : n;
}

int plain_payload_pack(env_buf *out, PyObject *sql, PyObject *params, PyObject *alias, int write,
                       PyObject *scan)
{
    if (!PyUnicode_CheckExact(sql) || !PyUnicode_CheckExact(alias) ||
        PyUnicode_GET_LENGTH(alias) == 0 || !has_text(sql))
        return ENV_LEAVE;
    int listed = PyList_CheckExact(params) || PyTuple_CheckExact(params);
    if (params != Py_None && !listed)
        return ENV_LEAVE;
    Py_ssize_t n = positional_count(sql, scan);
    if (n == -2)
        return -1;
    if (n < 0 || (params == Py_None ? n != 0 : n != PySequence_Fast_GET_SIZE(params)))
        return ENV_LEAVE;
    int rc = env_put_map_header(out, (size_t)(3 + listed + write));
    if (rc == 0)
        rc = put_key(out, "db_alias");
    if (rc == 0)
        rc = env_put_value(out, alias);
    if (rc == 0)
        rc = put_key(out, "sql");
    if (rc == 0)
        rc = env_put_value(out, sql);
    if (rc == 0)
        rc = put_key(out, "result_format");
    if (rc == 0)
        rc = put_key(out, "msgpack");
    if (rc == 0 && listed) {
        rc = put_key(out, "params");
        if (rc == 0)
            rc = env_put_map_header(out, 2);
        if (rc == 0)
            rc = put_key(out, "mode");
        if (rc == 0)
            rc = put_key(out, "positional");
        if (rc == 0)
            rc = put_key(out, "values");
        if (rc == 0)
            rc = env_put_array_header(out, (size_t)n);
        PyObject **items = PySequence_Fast_ITEMS(params);
        for (Py_ssize_t i = 0; rc == 0 && i < n; i++)
            rc = pack_entry(out, items[i]);
    }
    if (rc == 0 && write) {
        rc = put_key(out, "allow_write");
        if (rc == 0)
            rc = env_put_value(out, Py_True);
    }
    return rc;
}

/* plain_payload(sql, params, alias, write, scan) -> bytes | None: what
 * plain_payload_pack packs, so that tests compare it with msgpack's
 * bytes of ClientBase._plain_call's payload. */
static PyObject *plain_payload(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "plain_payload(sql, params, alias, write, scan)");
        return NULL;
    }
    int write = PyObject_IsTrue(args[3]);
    if (write < 0)
        return NULL;
    env_buf b;
    env_buf_init(&b);
    return env_buf_result(&b, plain_payload_pack(&b, args[0], args[1], args[2], write, args[4]));
}

static PyMethodDef params_functions[] = {
    {"plain_payload", (PyCFunction)(void (*)(void))plain_payload, METH_FASTCALL,
     "plain_payload(sql, params, alias, write, scan) -> bytes | None: the payload of a plain "
     "query (write: execute) packed in C; None when the Python path builds it."},
    {NULL, NULL, 0, NULL},
};

int host_params_add(PyObject *m)
{
    str_positional = PyUnicode_InternFromString("positional");
    str_named = PyUnicode_InternFromString("named");
    counts = PyDict_New();
    if (str_positional == NULL || str_named == NULL || counts == NULL)
        return -1;
    return PyModule_AddFunctions(m, params_functions);
}
