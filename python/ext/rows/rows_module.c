/* molt_db_adapter._rows: a db_query result payload (MsgPack) to the doc the
 * Python client decodes, with `rows` already a list of tuples whose values
 * are converted as row_types.c's table says. The pure-Python path
 * (results.py, decoding.py, molt_django_adapter/rows.py) gives the same
 * values and stays the fallback. */
#include "arrow_capsule.h"
#include "model_rows.h"
#include "mpread.h"
#include "row_sqlite.h"
#include "row_types.h"

#include <string.h>

/* The doc's key decode_result sets, made once: a str literal given to
 * PyDict_SetItemString is a new str, hashed, on every call. */
static PyObject *key_rows;

/* A value of the doc outside its rows, as mp_value gives it, its strs and
 * the strs of an array (types, columns) through mp_short_str. */
static PyObject *doc_value(mp_reader *r)
{
    const char *s;
    uint32_t n, sn;
    if (mp_peek(r) == MP_STR)
        return mp_str(r, &s, &sn) < 0 ? NULL : mp_short_str(s, sn);
    if (mp_peek(r) != MP_ARRAY)
        return mp_value(r);
    if (mp_array_header(r, &n) < 0)
        return NULL;
    if (++r->depth > MP_MAX_DEPTH) {
        r->depth--;
        return mp_error(r, "nested too deeply");
    }
    PyObject *out = PyList_New(n);
    for (uint32_t i = 0; out && i < n; i++) {
        PyObject *v = mp_peek(r) != MP_STR ? mp_value(r) : mp_str(r, &s, &sn) < 0 ? NULL : mp_short_str(s, sn);
        if (!v)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, v);
    }
    r->depth--;
    return out;
}

static int key_is(const char *s, uint32_t n, const char *want)
{
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

/* a list whose items are all str (borrowed), or NULL when it is not one */
static PyObject *str_list(PyObject *list)
{
    if (!list || !PyList_Check(list))
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++)
        if (!PyUnicode_Check(PyList_GET_ITEM(list, i)))
            return NULL;
    return list;
}

/* The GC needs to see a container only when it may hold one: a row whose
 * values are all atoms (str, int, float, datetime...) or sealed
 * (row_is_sealed: not an empty dict or list, which may be filled later)
 * leaves the collector's lists at once, as CPython untracks such tuples
 * itself on its next collection. Without it, the collections that
 * allocating 100k rows triggers walk every row built so far. */
static void untrack_if_atoms(PyObject *row, Py_ssize_t ncols)
{
    for (Py_ssize_t j = 0; j < ncols; j++)
        if (!row_is_sealed(PyTuple_GET_ITEM(row, j)))
            return;
    PyObject_GC_UnTrack(row);
}

/* Row dicts share one key object per column (the columns' own str, keys a
 * tuple of them): a template of the keys (values None) is copied per row,
 * so no row rehashes or resizes; a repeated column name keeps its last
 * value, as dict(zip(columns, row)) does. The names are not interned: they
 * come from the query's SQL, and on Python 3.12 an interned str is
 * immortal, so distinct aliases would pile up for the life of the process. */
static PyObject *dict_template(PyObject *keys)
{
    PyObject *t = PyDict_New();
    for (Py_ssize_t j = 0; t && j < PyTuple_GET_SIZE(keys); j++)
        if (PyDict_SetItem(t, PyTuple_GET_ITEM(keys, j), Py_None) < 0)
            Py_CLEAR(t);
    return t;
}


/* The SQLite profile's plans: specs = sqlite_plans(types), a tuple of one
 * plan per column (row_sqlite.h), which the plans borrow from. The specs
 * (a new reference) or NULL with an exception. */
static PyObject *plan_sqlite_columns(PyObject *sqlite_plans, PyObject *types, col_plan *plans)
{
    Py_ssize_t ncols = PyList_GET_SIZE(types);
    PyObject *specs = PyObject_CallOneArg(sqlite_plans, types);
    if (specs && (!PyTuple_Check(specs) || PyTuple_GET_SIZE(specs) != ncols)) {
        PyErr_Format(PyExc_TypeError, "sqlite_plans() returned %R, not a tuple of %zd plans", specs, ncols);
        Py_CLEAR(specs);
    }
    for (Py_ssize_t j = 0; specs && j < ncols; j++)
        if (sqlite_col_plan(PyTuple_GET_ITEM(specs, j), &plans[j]) < 0)
            Py_CLEAR(specs);
    return specs;
}

/* The plans of the columns, from sqlite_plans when given (*specs then holds
 * what they borrow, a new reference; else NULL); NULL with an exception. */
static col_plan *plan_columns(const row_options *o, PyObject *types, PyObject *json_columns,
                              PyObject *sqlite_plans, PyObject **specs)
{
    Py_ssize_t ncols = PyList_GET_SIZE(types);
    col_plan *plans = PyMem_Calloc((size_t)ncols + 1, sizeof *plans);
    *specs = NULL;
    if (!plans) {
        PyErr_NoMemory();
        return NULL;
    }
    if (sqlite_plans) {
        if (!(*specs = plan_sqlite_columns(sqlite_plans, types, plans)))
            goto fail;
        return plans;
    }
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Py_ssize_t n;
        const char *t = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(types, j), &n);
        if (!t || col_plan_for(o, t, n, &plans[j]) < 0)
            goto fail;
    }
    for (Py_ssize_t i = 0; json_columns && i < PyTuple_GET_SIZE(json_columns); i++) {
        Py_ssize_t j = PyLong_AsSsize_t(PyTuple_GET_ITEM(json_columns, i));
        if (j == -1 && PyErr_Occurred())
            goto fail;
        if (j >= 0 && j < ncols && col_plan_json_field(&plans[j], PyList_GET_ITEM(types, j)) < 0)
            goto fail;
    }
    return plans;
fail:
    PyMem_Free(plans);
    return NULL;
}

/* One row: an array of one value per column, as a tuple (untracked when it
 * holds only atoms), or with a template a copy of it with the values set
 * (keys: its keys, a tuple). 1: another shape; -1: an exception. */
static int decode_row(const row_options *o, const col_plan *plans, Py_ssize_t ncols, mp_reader *r,
                      PyObject *template, PyObject *keys, PyObject **out)
{
    uint32_t width;
    if (mp_peek(r) != MP_ARRAY)
        return 1;
    if (mp_array_header(r, &width) < 0)
        return -1;
    if (width != (uint32_t)ncols)
        return 1;
    PyObject *row = template ? PyDict_Copy(template) : PyTuple_New(ncols);
    if (!row)
        return -1;
    int sealed = 1;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        PyObject *v = col_value(o, &plans[j], r);
        if (v && template && PyDict_SetItem(row, PyTuple_GET_ITEM(keys, j), v) < 0)
            Py_CLEAR(v);
        if (!v) {
            Py_DECREF(row);
            return -1;
        }
        if (template) {
            sealed = sealed && (!PyType_IS_GC(Py_TYPE(v)) || row_is_sealed(v));   /* most values: a flag */
            Py_DECREF(v);
        } else
            PyTuple_SET_ITEM(row, j, v);
    }
    /* A dict is tracked once it holds a GC object, a UUID included (CPython's
     * rule); one whose values are all sealed leaves the collector's lists,
     * as a tuple of atoms does: no cycle can pass through it, and storing a
     * container in it later tracks it again (CPython's dicts do that up to
     * 3.13; from 3.14 a dict is never tracked again, so it stays tracked). */
    if (!template)
        untrack_if_atoms(row, ncols);
#if PY_VERSION_HEX < 0x030E0000
    else if (sealed && PyObject_GC_IsTracked(row))
        PyObject_GC_UnTrack(row);
#else
    (void)sealed;
#endif
    *out = row;
    return 0;
}

/* Rows as tuples, or as dicts keyed by columns when it is not NULL. 0:
 * done; 1: a row is not an array of one value per column (the Python path
 * decides what that means); -1: an exception. */
static int decode_rows(const row_options *o, mp_reader *r, PyObject *types, PyObject *columns,
                       PyObject *json_columns, PyObject *sqlite_plans, PyObject **out)
{
    Py_ssize_t ncols = PyList_GET_SIZE(types);
    PyObject *specs;
    col_plan *plans = plan_columns(o, types, json_columns, sqlite_plans, &specs);
    if (!plans)
        return -1;
    /* the keys as a tuple: converting a value may run Python code (a
     * tzinfo, a patched UUID class) that could change a caller's list */
    PyObject *keys = columns ? PyList_AsTuple(columns) : NULL;
    PyObject *template = keys && PyTuple_GET_SIZE(keys) == ncols ? dict_template(keys) : NULL;
    int rc = -1;
    uint32_t nrows;
    PyObject *list = NULL;
    if (columns && !template) {
        if (keys && !PyErr_Occurred())
            rc = 1;   /* not one name per column */
        goto done;
    }
    if (mp_peek(r) != MP_ARRAY) {
        rc = 1;
        goto done;
    }
    if (mp_array_header(r, &nrows) < 0 || !(list = PyList_New(nrows)))
        goto done;
    /* nobody else sees the list until it is full: out of the GC's lists
     * meanwhile, so its collections do not walk it (list_dealloc copes) */
    PyObject_GC_UnTrack(list);
    rc = 0;
    for (uint32_t i = 0; i < nrows && rc == 0; i++) {
        PyObject *row;
        rc = decode_row(o, plans, ncols, r, template, keys, &row);
        if (rc == 0)
            PyList_SET_ITEM(list, i, row);
    }
    if (rc == 0) {
        PyObject_GC_Track(list);
        *out = list;
        list = NULL;
    }
done:
    Py_XDECREF(list);
    Py_XDECREF(template);
    Py_XDECREF(keys);
    Py_XDECREF(specs);
    PyMem_Free(plans);
    return rc;
}

/* The rows at r (r then past them): 0 with *rows set, 1: declined (another
 * shape, no types, or for dicts no columns of the right width), -1: an
 * exception. */
static int rows_at(const row_options *o, mp_reader *r, PyObject *types, PyObject *columns, int dicts,
                   PyObject *json_columns, PyObject *sqlite_plans, PyObject **rows)
{
    if (!types || (dicts && (!columns || PyList_GET_SIZE(columns) != PyList_GET_SIZE(types))))
        return 1;
    return decode_rows(o, r, types, dicts ? columns : NULL, json_columns, sqlite_plans, rows);
}

/* decode_result's arguments after the payload and types, at their defaults
 * until given. */
typedef struct {
    PyObject *types, *zone, *django_tz, *json_columns, *columns, *sqlite_plans;
    int dicts;
} result_args;

/* The keyword-only arguments of decode_result, in its signature's order. */
static const char *const result_keywords[] = {"numeric_decimal", "parse_json", "django", "zone", "django_tz",
                                              "json_columns", "columns", "dicts", "sqlite_plans"};
enum { KW_NUMERIC_DECIMAL, KW_PARSE_JSON, KW_DJANGO, KW_ZONE, KW_DJANGO_TZ, KW_JSON_COLUMNS, KW_COLUMNS,
       KW_DICTS, KW_SQLITE_PLANS, KW_COUNT };

/* The index of name among result_keywords, or -1. Callers pass interned
 * names, so the pointer test usually settles it. */
static int result_keyword(PyObject *name, PyObject *const *interned)
{
    for (int i = 0; i < KW_COUNT; i++)
        if (name == interned[i])
            return i;
    if (!PyUnicode_Check(name))
        return -1;
    for (int i = 0; i < KW_COUNT; i++)
        if (PyUnicode_CompareWithASCIIString(name, result_keywords[i]) == 0)
            return i;
    return -1;
}

/* A flag argument as 'p' reads it: 0 or 1, -1 with an exception. */
static int flag_arg(PyObject *v, int *out)
{
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    *out = t;
    return 0;
}

/* decode_result's arguments from a vectorcall (PyArg_ParseTupleAndKeywords
 * costs about as much as a small result's decoding): the payload and types
 * positional or by keyword, the rest keyword-only, with its errors. 0, or
 * -1 with an exception (buf then not held). */
static int parse_result_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, Py_buffer *buf,
                             row_options *o, result_args *a)
{
    static PyObject *interned[KW_COUNT], *payload_name, *types_name;
    if (!payload_name) {
        for (int i = 0; i < KW_COUNT; i++)
            if (!(interned[i] = PyUnicode_InternFromString(result_keywords[i])))
                return -1;
        if (!(payload_name = PyUnicode_InternFromString("payload")) ||
            !(types_name = PyUnicode_InternFromString("types")))
            return -1;
    }
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "decode_result() takes at most 2 positional arguments (%zd given)", nargs);
        return -1;
    }
    PyObject *payload = nargs > 0 ? args[0] : NULL;
    PyObject *given[KW_COUNT] = {0};
    a->types = nargs > 1 ? args[1] : Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i), *v = args[nargs + i];
        int k = result_keyword(name, interned);
        if (k >= 0) {
            given[k] = v;   /* a name given twice cannot reach a vectorcall */
            continue;
        }
        int is_payload = PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "payload") == 0;
        int is_types = !is_payload && PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "types") == 0;
        if ((is_payload && nargs > 0) || (is_types && nargs > 1)) {
            PyErr_Format(PyExc_TypeError, "argument for decode_result() given by name ('%U') and position (%d)",
                         name, is_payload ? 1 : 2);
            return -1;
        }
        if (is_payload)
            payload = v;
        else if (is_types)
            a->types = v;
        else {
            PyErr_Format(PyExc_TypeError, "'%S' is an invalid keyword argument for decode_result()", name);
            return -1;
        }
    }
    if (!payload) {
        PyErr_SetString(PyExc_TypeError, "decode_result() missing required argument 'payload' (pos 1)");
        return -1;
    }
    if ((given[KW_NUMERIC_DECIMAL] && flag_arg(given[KW_NUMERIC_DECIMAL], &o->numeric_decimal) < 0) ||
        (given[KW_PARSE_JSON] && flag_arg(given[KW_PARSE_JSON], &o->parse_json) < 0) ||
        (given[KW_DJANGO] && flag_arg(given[KW_DJANGO], &o->django) < 0) ||
        (given[KW_DICTS] && flag_arg(given[KW_DICTS], &a->dicts) < 0))
        return -1;
    if (given[KW_JSON_COLUMNS] && !PyTuple_Check(given[KW_JSON_COLUMNS])) {
        PyErr_Format(PyExc_TypeError, "decode_result() argument 'json_columns' must be tuple, not %.50s",
                     Py_TYPE(given[KW_JSON_COLUMNS])->tp_name);
        return -1;
    }
    a->zone = given[KW_ZONE] ? given[KW_ZONE] : Py_None;
    a->django_tz = given[KW_DJANGO_TZ] ? given[KW_DJANGO_TZ] : Py_None;
    a->json_columns = given[KW_JSON_COLUMNS];
    a->columns = given[KW_COLUMNS] ? given[KW_COLUMNS] : Py_None;
    a->sqlite_plans = given[KW_SQLITE_PLANS];
    if (PyObject_GetBuffer(payload, buf, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "decode_result() argument 'payload' must be bytes-like object, not %.50s",
                         Py_TYPE(payload)->tp_name);
        }
        return -1;
    }
    return 0;
}

static PyObject *decode_result(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)self;
    Py_buffer buf;
    row_options o = {0};
    result_args a = {0};
    if (parse_result_args(args, nargs, kwnames, &buf, &o, &a) < 0)
        return NULL;
    PyObject *types_arg = a.types, *zone = a.zone, *django_tz = a.django_tz, *json_columns = a.json_columns;
    PyObject *columns_arg = a.columns, *sqlite_plans = a.sqlite_plans;
    int dicts = a.dicts;
    if ((json_columns || sqlite_plans) && !o.django) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_TypeError, "json_columns and sqlite_plans are for Django (django=True)");
        return NULL;
    }
    if (sqlite_plans)
        json_columns = NULL;   /* the SQLite plans name JSONField columns themselves */
    o.zone = zone;
    o.zone_is_utc = row_zone_is_utc(zone);
    o.django_tz = django_tz;

    mp_reader r = {buf.buf, (const uint8_t *)buf.buf + buf.len, 0};
    PyObject *doc = NULL, *result = NULL;
    /* The collector is paused while the rows are built: every container
     * made counts toward generation 0's threshold, and the collections that
     * triggers would walk all the rows built so far and move them to the
     * older generations, whose passes then walk them again. The count
     * stays, so one collection runs at the first allocation afterwards.
     * (Python code a conversion calls runs with it paused too.) */
    int gc_was_enabled = PyGC_Disable();
    /* the rows, decoded where they are when the types (and for dicts the
     * columns) came before them, as the worker sends them; else after the
     * map, from rows_pos. used_*: what they were decoded with. */
    const uint8_t *rows_pos = NULL;
    PyObject *used_types = NULL, *used_columns = NULL;
    /* the map's types and columns so far (the last of each key), held */
    PyObject *map_types = NULL, *map_columns = NULL;
    /* a types or columns key came after the rows: what they were decoded
     * with may not be the map's own */
    int renamed = 0;
    int declined = 0;
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
    /* everything but rows decoded as msgpack does */
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kn;
        int is_types = 0, is_columns = 0;
        if (mp_peek(&r) == MP_STR) {
            mp_reader at = r;
            if (mp_str(&r, &k, &kn) < 0)
                goto out;
            if (key_is(k, kn, "rows")) {
                rows_pos = r.p;
                /* held: a later key of the same name must not free them */
                Py_XSETREF(used_types, Py_XNewRef(str_list(types_arg != Py_None ? types_arg : map_types)));
                Py_XSETREF(used_columns, Py_XNewRef(str_list(columns_arg != Py_None ? columns_arg : map_columns)));
                PyObject *rows = NULL;
                mp_reader rr = r;
                int rc = rows_at(&o, &rr, used_types, used_columns, dicts, json_columns, sqlite_plans, &rows);
                if (rc < 0)
                    goto out;
                if (rc == 0) {
                    rc = PyDict_SetItem(doc, key_rows, rows);
                    Py_DECREF(rows);
                    if (rc < 0)
                        goto out;
                    r = rr;
                } else {
                    Py_CLEAR(used_types);
                    if (mp_skip(&r) < 0)
                        goto out;
                }
                continue;
            }
            is_types = key_is(k, kn, "types");
            is_columns = key_is(k, kn, "columns");
            renamed |= rows_pos && (is_types || is_columns);
            r = at;
        }
        PyObject *key = doc_value(&r);
        PyObject *val = key ? doc_value(&r) : NULL;
        int rc = val ? PyDict_SetItem(doc, key, val) : -1;
        if (rc == 0 && (is_types || is_columns))
            Py_XSETREF(*(is_types ? &map_types : &map_columns), Py_NewRef(val));
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (rc < 0)
            goto out;
    }
    if (r.p != r.end) {
        mp_error(&r, "extra data after the result map");
        goto out;
    }
    if (!rows_pos) {
        result = Py_NewRef(doc);
        goto out;
    }
    /* the types or columns the rows need came after them (or again, as
     * another value): decode the rows now with the map's own */
    PyObject *types = used_types, *columns = used_columns;
    if (renamed) {
        types = str_list(types_arg != Py_None ? types_arg : map_types);
        columns = str_list(columns_arg != Py_None ? columns_arg : map_columns);
    }
    if (!used_types || types != used_types || (dicts && columns != used_columns)) {
        PyObject *rows = NULL;
        mp_reader rr = {rows_pos, r.end, 0};
        int rc = rows_at(&o, &rr, types, columns, dicts, json_columns, sqlite_plans, &rows);
        if (rc < 0)
            goto out;
        declined = rc == 1;
        if (rc == 0 && PyDict_SetItem(doc, key_rows, rows) < 0) {
            Py_DECREF(rows);
            goto out;
        }
        Py_XDECREF(rows);
    }
    /* rows of another shape: the Python path */
    result = Py_NewRef(declined ? Py_None : doc);
out:
    Py_XDECREF(used_types);
    Py_XDECREF(used_columns);
    Py_XDECREF(map_types);
    Py_XDECREF(map_columns);
    Py_XDECREF(doc);
    PyBuffer_Release(&buf);
    if (gc_was_enabled)
        PyGC_Enable();
    return result;
}

PyDoc_STRVAR(decode_result_doc,
"decode_result(payload, types=None, *, numeric_decimal=False, parse_json=False,\n"
"              django=False, zone=None, django_tz=None, json_columns=(),\n"
"              columns=None, dicts=False, sqlite_plans=None)\n"
"--\n\n"
"A db_query result payload (MsgPack) as msgpack.unpackb gives it, with\n"
"'rows' a list of tuples converted per column type (types: the doc's own,\n"
"or those of a stream's first part), or with dicts=True a list of dicts\n"
"keyed by the column names (columns: the doc's own, or the stream's; the\n"
"dicts share one key object per column). The client profile converts numeric to\n"
"Decimal (numeric_decimal) and parses json/jsonb (parse_json); django=True\n"
"gives molt_django_adapter's PostgreSQL values (timestamptz in zone, then\n"
"with tzinfo django_tz; the column indexes in json_columns parsed as a\n"
"JSONField's from_db_value would). django=True with sqlite_plans, a callable\n"
"taking the types and giving a tuple of one plan per column (None or (kind,\n"
"convert, arg), python/ext/rows/row_sqlite.h), gives the Django SQLite values\n"
"those plans name. None: rows of a shape left to the Python path (not\n"
"one array per row of one value per column, no types, or for dicts no\n"
"columns as many as the types). ValueError: a\n"
"malformed payload; Unconvertible (a ValueError): a value or type the\n"
"Django profile cannot convert.");

static PyMethodDef methods[] = {
    {"decode_result", (PyCFunction)(void (*)(void))decode_result, METH_FASTCALL | METH_KEYWORDS,
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
    if (!key_rows && !(key_rows = PyUnicode_InternFromString("rows")))
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    rows_unconvertible = PyErr_NewException("molt_db_adapter._rows.Unconvertible", PyExc_ValueError, NULL);
    if (!rows_unconvertible || PyModule_AddObjectRef(m, "Unconvertible", rows_unconvertible) < 0 ||
        model_rows_add(m) < 0 || arrow_capsule_add(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
