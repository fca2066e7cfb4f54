/* The Django SQLite profile (row_sqlite.h). */
#include "row_sqlite.h"

#include <datetime.h>
#include <string.h>

static const struct {
    const char *name;
    enum row_kind kind;
} SQLITE_KINDS[] = {
    {"call", RK_SQ_CALL}, {"text", RK_SQ_TEXT}, {"datetime", RK_SQ_DATETIME}, {"date", RK_SQ_DATE},
    {"time", RK_SQ_TIME}, {"bool", RK_SQ_BOOL}, {"uuid", RK_SQ_UUID}, {"duration", RK_SQ_DURATION},
    {"json_field", RK_SQ_JSON_FIELD}, {"decimal", RK_SQ_DECIMAL},
};

static PyObject *str_quantize, *context_kwname;

int row_sqlite_init(void)
{
    PyDateTime_IMPORT;
    str_quantize = PyUnicode_InternFromString("quantize");
    context_kwname = Py_BuildValue("(s)", "context");
    return PyDateTimeAPI && str_quantize && context_kwname ? 0 : -1;
}

int sqlite_col_plan(PyObject *spec, col_plan *out)
{
    out->array_depth = 0;
    out->call = out->arg = NULL;
    if (spec == Py_None) {
        out->kind = RK_ASIS;
        return 0;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))
        || !PyCallable_Check(PyTuple_GET_ITEM(spec, 1))) {
        PyErr_Format(PyExc_TypeError, "a SQLite column plan is None or (kind, convert, arg), not %R", spec);
        return -1;
    }
    const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof SQLITE_KINDS / sizeof SQLITE_KINDS[0]; i++)
        if (strcmp(name, SQLITE_KINDS[i].name) == 0) {
            out->kind = SQLITE_KINDS[i].kind;
            out->call = PyTuple_GET_ITEM(spec, 1);
            out->arg = PyTuple_GET_ITEM(spec, 2);
            if (out->kind == RK_SQ_DATETIME && out->arg != Py_None && !PyTZInfo_Check(out->arg)) {
                PyErr_Format(PyExc_TypeError, "a datetime plan's arg is None or a tzinfo, not %R", out->arg);
                return -1;
            }
            if (out->kind == RK_SQ_DECIMAL && (!PyTuple_Check(out->arg) || PyTuple_GET_SIZE(out->arg) != 3
                                               || !PyCallable_Check(PyTuple_GET_ITEM(out->arg, 0)))) {
                PyErr_Format(PyExc_TypeError, "a decimal plan's arg is (create, quantum, context), not %R", out->arg);
                return -1;
            }
            return 0;
        }
    PyErr_Format(PyExc_TypeError, "unknown SQLite column kind %R", PyTuple_GET_ITEM(spec, 0));
    return -1;
}

/* timedelta(0, 0, us) for an int that fits; NULL without an exception when not */
static PyObject *duration_value(PyObject *v)
{
    int overflow;
    long long us = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (us == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return NULL;
    }
    const long long day_us = 86400000000LL;
    long long days = us / day_us, rem = us % day_us;
    if (rem < 0)
        rem += day_us, days--;
    if (days > 999999999 || days < -999999999)
        return NULL;   /* convert raises timedelta's own OverflowError */
    return PyDelta_FromDSU((int)days, (int)(rem / 1000000), (int)(rem % 1000000));
}

/* Django's SQLite DecimalField converter for an int or float */
static PyObject *decimal_value(PyObject *arg, PyObject *v)
{
    PyObject *d = PyObject_CallOneArg(PyTuple_GET_ITEM(arg, 0), v);
    PyObject *quantum = PyTuple_GET_ITEM(arg, 1);
    if (!d || quantum == Py_None)
        return d;
    PyObject *args[] = {d, quantum, PyTuple_GET_ITEM(arg, 2)};
    PyObject *out = PyObject_VectorcallMethod(str_quantize, args, 2, context_kwname);
    Py_DECREF(d);
    return out;
}

/* the kind's own spelling of v built in C; NULL without an exception: v is
 * not in it (convert decides) */
static PyObject *fast_value(const col_plan *c, PyObject *v)
{
    switch (c->kind) {
    case RK_SQ_BOOL:
        /* 0 and 1 (what BooleanField stores): False and True, with or
         * without the "bool" declared type's converter before */
        if (PyLong_CheckExact(v)) {
            int overflow;
            long x = PyLong_AsLongAndOverflow(v, &overflow);
            if (!overflow && (x == 0 || x == 1))
                return Py_NewRef(x ? Py_True : Py_False);
        }
        return NULL;
    case RK_SQ_UUID:
        return PyUnicode_Check(v) ? uuid_value(v) : NULL;
    case RK_SQ_DURATION:
        return PyLong_CheckExact(v) ? duration_value(v) : NULL;
    case RK_SQ_JSON_FIELD:
        return PyUnicode_Check(v) ? json_field_value(v) : NULL;
    case RK_SQ_DECIMAL:
        return PyLong_CheckExact(v) || PyFloat_CheckExact(v) ? decimal_value(c->arg, v) : NULL;
    default:
        return NULL;
    }
}

PyObject *sqlite_col_value(const col_plan *c, mp_reader *r)
{
    enum mp_kind k = mp_peek(r);
    if (c->kind == RK_SQ_TEXT) {
        if (k == MP_BIN) {
            PyErr_SetString(rows_unconvertible, "bytes in a TEXT column (a BLOB, or text that is not UTF-8)");
            return NULL;
        }
        return mp_value(r);
    }
    /* Django's own text for dates and times, read straight from the payload */
    if (k == MP_STR && (c->kind == RK_SQ_DATETIME || c->kind == RK_SQ_DATE || c->kind == RK_SQ_TIME)) {
        mp_reader at = *r;
        const char *s;
        uint32_t n;
        if (mp_str(r, &s, &n) < 0)
            return NULL;
        PyObject *out = c->kind == RK_SQ_DATETIME ? fast_timestamp(s, n, c->arg)
                      : fast_temporal(c->kind == RK_SQ_DATE ? RK_DATE : RK_TIME, s, n);
        if (out)
            return out;
        *r = at;
    }
    PyObject *v = mp_value(r);
    if (!v)
        return NULL;
    PyObject *out = fast_value(c, v);
    if (!out && !PyErr_Occurred())
        out = PyObject_CallOneArg(c->call, v);
    Py_DECREF(v);
    return out;
}
