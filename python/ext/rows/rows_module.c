/* molt_db_adapter._rows: a db_query result payload (MsgPack) to the doc the
 * Python client decodes, with `rows` already a list of tuples whose values
 * are converted as row_types.c's table says. The pure-Python path
 * (results.py, decoding.py, molt_django_adapter/rows.py) gives the same
 * values and stays the fallback. */
#include "mpread.h"
#include "row_sqlite.h"
#include "row_types.h"

#include <string.h>

static int key_is(const char *s, uint32_t n, const char *want)
{
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

/* the types list: a list of str (borrowed), or NULL when it is not one */
static PyObject *types_list(PyObject *types)
{
    if (!types || !PyList_Check(types))
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(types); i++)
        if (!PyUnicode_Check(PyList_GET_ITEM(types, i)))
            return NULL;
    return types;
}

/* Rows as tuples, one plan per column (from sqlite_plans when given, else
 * from the types). 0: done; 1: a row is not an array of one value per
 * column (the Python path decides what that means); -1: an exception. */
static int decode_rows(const row_options *o, mp_reader *r, PyObject *types, PyObject *json_columns,
                       PyObject *sqlite_plans, PyObject **out)
{
    Py_ssize_t ncols = PyList_GET_SIZE(types);
    col_plan *plans = PyMem_Calloc((size_t)ncols + 1, sizeof *plans);
    if (!plans) {
        PyErr_NoMemory();
        return -1;
    }
    if (sqlite_plans && PyTuple_GET_SIZE(sqlite_plans) != ncols) {
        PyErr_Format(PyExc_ValueError, "%zd SQLite column plans for %zd columns",
                     PyTuple_GET_SIZE(sqlite_plans), ncols);
        PyMem_Free(plans);
        return -1;
    }
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Py_ssize_t n = 0;
        const char *t = sqlite_plans ? "" : PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(types, j), &n);
        if (!t || (sqlite_plans ? sqlite_col_plan(PyTuple_GET_ITEM(sqlite_plans, j), &plans[j])
                                : col_plan_for(o, t, n, &plans[j])) < 0) {
            PyMem_Free(plans);
            return -1;
        }
    }
    for (Py_ssize_t i = 0; json_columns && i < PyTuple_GET_SIZE(json_columns); i++) {
        Py_ssize_t j = PyLong_AsSsize_t(PyTuple_GET_ITEM(json_columns, i));
        if (j == -1 && PyErr_Occurred()) {
            PyMem_Free(plans);
            return -1;
        }
        if (j >= 0 && j < ncols && col_plan_json_field(&plans[j], PyList_GET_ITEM(types, j)) < 0) {
            PyMem_Free(plans);
            return -1;
        }
    }
    int rc = -1;
    uint32_t nrows;
    if (mp_peek(r) != MP_ARRAY) {
        rc = 1;
        goto done;
    }
    if (mp_array_header(r, &nrows) < 0)
        goto done;
    PyObject *list = PyList_New(nrows);
    if (!list)
        goto done;
    for (uint32_t i = 0; i < nrows; i++) {
        uint32_t width;
        if (mp_peek(r) != MP_ARRAY) {
            rc = 1;
            break;
        }
        if (mp_array_header(r, &width) < 0)
            break;
        if (width != (uint32_t)ncols) {
            rc = 1;
            break;
        }
        PyObject *row = PyTuple_New(ncols);
        if (!row)
            break;
        PyList_SET_ITEM(list, i, row);
        Py_ssize_t j = 0;
        for (; j < ncols; j++) {
            PyObject *v = col_value(o, &plans[j], r);
            if (!v)
                break;
            PyTuple_SET_ITEM(row, j, v);
        }
        if (j < ncols)
            break;
        if (i + 1 == nrows)
            rc = 0;
    }
    if (nrows == 0)
        rc = 0;
    if (rc == 0)
        *out = list;
    else
        Py_DECREF(list);
done:
    PyMem_Free(plans);
    return rc;
}

static PyObject *decode_result(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"payload", "types", "numeric_decimal", "parse_json", "django", "zone",
                             "django_tz", "json_columns", "sqlite_plans", NULL};
    Py_buffer buf;
    PyObject *types_arg = Py_None, *zone = Py_None, *django_tz = Py_None, *json_columns = NULL,
             *sqlite_plans = NULL;
    row_options o = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|O$pppOOO!O", kwlist, &buf, &types_arg,
                                     &o.numeric_decimal, &o.parse_json, &o.django, &zone, &django_tz,
                                     &PyTuple_Type, &json_columns, &sqlite_plans))
        return NULL;
    if ((json_columns || sqlite_plans) && !o.django) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_TypeError, "json_columns and sqlite_plans are for Django (django=True)");
        return NULL;
    }
    o.zone = zone;
    o.zone_is_utc = row_zone_is_utc(zone);
    o.django_tz = django_tz;

    mp_reader r = {buf.buf, (const uint8_t *)buf.buf + buf.len, 0};
    PyObject *doc = NULL, *result = NULL;
    const uint8_t *rows_at = NULL;
    uint32_t n;
    if (mp_peek(&r) == MP_BAD) {
        mp_error(&r, r.p == r.end ? "empty" : "an invalid MsgPack byte");
        goto out;
    }
    if (mp_peek(&r) != MP_MAP) {
        result = Py_NewRef(Py_None);   /* not a map: the Python path says why */
        goto out;
    }
    if (mp_map_header(&r, &n) < 0 || !(doc = PyDict_New()))
        goto out;
    /* everything but rows, decoded as msgpack does; rows after the types */
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kn;
        if (mp_peek(&r) == MP_STR) {
            mp_reader at = r;
            if (mp_str(&r, &k, &kn) < 0)
                goto out;
            if (key_is(k, kn, "rows")) {
                rows_at = r.p;
                if (mp_skip(&r) < 0)
                    goto out;
                continue;
            }
            r = at;
        }
        PyObject *key = mp_value(&r);
        PyObject *val = key ? mp_value(&r) : NULL;
        int rc = val ? PyDict_SetItem(doc, key, val) : -1;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (rc < 0)
            goto out;
    }
    if (r.p != r.end) {
        mp_error(&r, "extra data after the result map");
        goto out;
    }
    if (!rows_at) {
        result = Py_NewRef(doc);
        goto out;
    }
    PyObject *types = types_list(types_arg != Py_None ? types_arg : PyDict_GetItemString(doc, "types"));
    PyObject *rows = NULL, *plans = NULL;
    int rc = 1;
    if (types && sqlite_plans) {
        plans = PyObject_CallOneArg(sqlite_plans, types);
        if (plans && !PyTuple_Check(plans)) {
            PyErr_Format(PyExc_TypeError, "sqlite_plans() returned %R, not a tuple", plans);
            Py_CLEAR(plans);
        }
        if (!plans)
            goto out;
    }
    if (types) {
        mp_reader rr = {rows_at, r.end, 0};
        rc = decode_rows(&o, &rr, types, plans ? NULL : json_columns, plans, &rows);
    }
    Py_XDECREF(plans);
    if (rc == 0 && PyDict_SetItemString(doc, "rows", rows) == 0)
        result = Py_NewRef(doc);
    else if (rc == 1)
        result = Py_NewRef(Py_None);   /* rows of another shape: the Python path */
    Py_XDECREF(rows);
out:
    Py_XDECREF(doc);
    PyBuffer_Release(&buf);
    return result;
}

PyDoc_STRVAR(decode_result_doc,
"decode_result(payload, types=None, *, numeric_decimal=False, parse_json=False,\n"
"              django=False, zone=None, django_tz=None, json_columns=(),\n"
"              sqlite_plans=None)\n"
"--\n\n"
"A db_query result payload (MsgPack) as msgpack.unpackb gives it, with\n"
"'rows' a list of tuples converted per column type (types: the doc's own,\n"
"or those of a stream's first part). The client profile converts numeric to\n"
"Decimal (numeric_decimal) and parses json/jsonb (parse_json); django=True\n"
"gives molt_django_adapter's PostgreSQL values (timestamptz in zone, then\n"
"with tzinfo django_tz; the column indexes in json_columns parsed as a\n"
"JSONField's from_db_value would). django=True with sqlite_plans, a callable\n"
"taking the types and giving a tuple of one plan per column (None or (kind,\n"
"convert, tz), python/ext/rows/row_sqlite.h), gives the Django SQLite values\n"
"those plans name. None: rows of a shape left to the Python path (not\n"
"one array per row of one value per column, or no types). ValueError: a\n"
"malformed payload; Unconvertible (a ValueError): a value or type the\n"
"Django profile cannot convert.");

static PyMethodDef methods[] = {
    {"decode_result", (PyCFunction)(void (*)(void))decode_result, METH_VARARGS | METH_KEYWORDS,
     decode_result_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rows", "Result rows built in C (see decode_result).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__rows(void)
{
    if (mp_init() < 0 || row_types_init() < 0 || row_sqlite_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    rows_unconvertible = PyErr_NewException("molt_db_adapter._rows.Unconvertible", PyExc_ValueError, NULL);
    if (!rows_unconvertible || PyModule_AddObjectRef(m, "Unconvertible", rows_unconvertible) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
