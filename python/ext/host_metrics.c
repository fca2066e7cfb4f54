/*
 * _host.Metrics: a final frame's metrics map kept as its MsgPack bytes,
 * made into the dict the worker clients give only when something reads
 * it (QueryResult.metrics). Most callers never read the metrics of a
 * point query, and building the dict is a good part of what the Python
 * side spends per call.
 *
 * Only a map the dict cannot fail to come from is kept this way (lazy_map
 * checks it): str keys and scalar values, every str ASCII, so reading it
 * later gives the same dict, or MemoryError, and never an error the
 * frame would have given at once.
 */
#include "host_ext.h"

#include "rows/mpread.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *raw; /* bytes: the map, copied out of the frame */
} MetricsObject;

/* 1 when the str at r (r then past it) is ASCII, 0 when not or not a str. */
static int ascii_str(mp_reader *r)
{
    const char *s;
    uint32_t n;
    if (mp_peek(r) != MP_STR || mp_str(r, &s, &n) < 0)
        return 0;
    uint64_t high = 0, w;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        high |= w;
    }
    for (; i < n; i++)
        high |= (uint8_t)s[i];
    return (high & 0x8080808080808080ull) == 0;
}

/* 1 when the value at r (r then past it) is nil, a bool, an int, a float
 * or an ASCII str; 0 otherwise (r anywhere). */
static int plain_scalar(mp_reader *r)
{
    switch (mp_peek(r)) {
    case MP_NIL: case MP_BOOL: case MP_INT: case MP_FLOAT:
        return mp_skip(r) == 0;
    case MP_STR:
        return ascii_str(r);
    default:
        return 0;
    }
}

/* (host_ext.h) */
PyObject *lazy_map(const uint8_t **p, const uint8_t *end)
{
    mp_reader at = {.p = *p, .end = end, .depth = 0};
    uint32_t n;
    if (mp_peek(&at) != MP_MAP || mp_map_header(&at, &n) < 0 || n == 0) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!ascii_str(&at) || !plain_scalar(&at)) {
            PyErr_Clear();
            return Py_NewRef(Py_None);
        }
    }
    MetricsObject *m = PyObject_New(MetricsObject, &MetricsType);
    if (m == NULL)
        return NULL;
    m->raw = PyBytes_FromStringAndSize((const char *)*p, at.p - *p);
    if (m->raw == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    *p = at.p;
    return (PyObject *)m;
}

/* (host_ext.h) */
PyObject *metrics_dict(PyObject *metrics)
{
    PyObject *raw = ((MetricsObject *)metrics)->raw;
    return frame_map((const uint8_t *)PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
}

static PyObject *metrics_dict_method(PyObject *self, PyObject *unused)
{
    (void)unused;
    return metrics_dict(self);
}

static void metrics_dealloc(PyObject *self)
{
    Py_XDECREF(((MetricsObject *)self)->raw);
    PyObject_Free(self);
}

static PyMethodDef metrics_methods[] = {
    {"dict", metrics_dict_method, METH_NOARGS,
     "dict() -> dict: the metrics as the worker clients give them (a new dict each call)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject MetricsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._host.Metrics",
    .tp_basicsize = sizeof(MetricsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A final frame's metrics, made into a dict on demand (dict()); made by the "
              "in-process client's C caller only.",
    .tp_dealloc = metrics_dealloc,
    .tp_methods = metrics_methods,
};
