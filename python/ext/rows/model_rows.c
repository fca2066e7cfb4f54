/* InstanceBuilder(model, names, foreign_keys, state_class, db, deferred),
 * called with one row's values, gives what Model.from_db(db, init_list,
 * values) gives for a model whose construction is Django's own, without
 * Model.__init__'s Python loop:
 *
 *   obj = model.__new__(model)          object.__new__
 *   obj._state = state_class()          first in obj.__dict__, as __init__ sets it
 *   obj.<names[j]> = values[j]          a DeferredAttribute has no __set__, so
 *                                       setattr stores it; `deferred` is skipped
 *   a foreign key's value (foreign_keys[j] true) is stored as
 *   ForeignKeyDeferredAttribute.__set__ stores it, in obj.__dict__; that
 *   __set__ compares the value with the fresh instance's None and, when they
 *   differ, asks is_cached(), which reads _state.fields_cache and so makes
 *   it an empty dict: so does this, once
 *   obj._state.adding = False; obj._state.db = db
 *
 * The caller (molt_django_adapter/model_instances.py) checks that the model
 * is built that way (no __init__, __new__, __setattr__ or from_db of its
 * own, no pre_init/post_init receivers, each attribute Django's own
 * descriptor) and names the attribute of each value as from_db does. */
#include "model_rows.h"

#include <stddef.h>

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *model;
    PyObject *names;          /* tuple of str, one per value */
    char *foreign_key;        /* one flag per value */
    PyObject *state_class;
    PyObject *db;
    PyObject *deferred;
} builder;

static PyObject *s_state, *s_fields_cache, *s_adding, *s_db, *empty_args;

/* one value as its attribute (0, or -1 with an exception); *fk_seen: the
 * state's fields_cache was made */
static int set_value(builder *b, PyObject *obj, PyObject *state, Py_ssize_t j, PyObject *v, int *fk_seen)
{
    PyObject *name = PyTuple_GET_ITEM(b->names, j);
    if (!b->foreign_key[j])
        return PyObject_GenericSetAttr(obj, name, v);
    if (!*fk_seen) {
        int differs = PyObject_RichCompareBool(Py_None, v, Py_NE);
        if (differs < 0)
            return -1;
        if (differs) {
            PyObject *cache = PyDict_New();
            int rc = cache ? PyObject_SetAttr(state, s_fields_cache, cache) : -1;
            Py_XDECREF(cache);
            if (rc < 0)
                return -1;
            *fk_seen = 1;
        }
    }
    PyObject *dict = PyObject_GenericGetDict(obj, NULL);
    if (!dict)
        return -1;
    int rc = PyDict_SetItem(dict, name, v);
    Py_DECREF(dict);
    return rc;
}

static PyObject *build(builder *b, PyObject *values)
{
    PyObject *seq = PySequence_Fast(values, "InstanceBuilder() takes a row's values (a sequence)");
    if (!seq)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(b->names);
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "InstanceBuilder() takes %zd values, not %zd", n,
                     PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return NULL;
    }
    PyObject *obj = b->model->tp_new(b->model, empty_args, NULL);
    PyObject *state = obj ? PyObject_CallNoArgs(b->state_class) : NULL;
    if (!state || PyObject_GenericSetAttr(obj, s_state, state) < 0)
        goto fail;
    int fk_seen = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        /* a foreign key's comparison runs Python that could change a list
         * row: each value is held while it is stored, the size rechecked */
        if (PySequence_Fast_GET_SIZE(seq) != n) {
            PyErr_SetString(PyExc_RuntimeError, "InstanceBuilder(): the row changed while it was read");
            goto fail;
        }
        PyObject *v = PySequence_Fast_GET_ITEM(seq, j);
        if (v == b->deferred)
            continue;
        Py_INCREF(v);
        int rc = set_value(b, obj, state, j, v, &fk_seen);
        Py_DECREF(v);
        if (rc < 0)
            goto fail;
    }
    if (PyObject_SetAttr(state, s_adding, Py_False) < 0 || PyObject_SetAttr(state, s_db, b->db) < 0)
        goto fail;
    Py_DECREF(state);
    Py_DECREF(seq);
    return obj;
fail:
    Py_XDECREF(state);
    Py_XDECREF(obj);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *builder_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "InstanceBuilder() takes one argument, a row's values");
        return NULL;
    }
    return build((builder *)self, args[0]);
}

static PyObject *builder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"model", "names", "foreign_keys", "state_class", "db", "deferred", NULL};
    PyObject *model, *names, *fks, *state_class, *db, *deferred;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!OOO:InstanceBuilder", kw, &PyType_Type, &model,
                                     &PyTuple_Type, &names, &PyTuple_Type, &fks, &state_class, &db, &deferred))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(fks) != n) {
        PyErr_SetString(PyExc_ValueError, "InstanceBuilder(): one foreign_keys flag per name");
        return NULL;
    }
    for (Py_ssize_t j = 0; j < n; j++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(names, j))) {
            PyErr_SetString(PyExc_TypeError, "InstanceBuilder(): names must be exact str");
            return NULL;
        }
    if (!((PyTypeObject *)model)->tp_new) {
        PyErr_SetString(PyExc_TypeError, "InstanceBuilder(): the model cannot be instantiated");
        return NULL;
    }
    builder *b = (builder *)type->tp_alloc(type, 0);
    if (!b)
        return NULL;
    b->foreign_key = PyMem_Malloc((size_t)n + 1);
    if (!b->foreign_key) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        int truth = PyObject_IsTrue(PyTuple_GET_ITEM(fks, j));
        if (truth < 0) {
            Py_DECREF(b);
            return NULL;
        }
        b->foreign_key[j] = (char)truth;
    }
    b->vectorcall = builder_vectorcall;
    b->model = (PyTypeObject *)Py_NewRef(model);
    b->names = Py_NewRef(names);
    b->state_class = Py_NewRef(state_class);
    b->db = Py_NewRef(db);
    b->deferred = Py_NewRef(deferred);
    return (PyObject *)b;
}

static int builder_traverse(builder *b, visitproc visit, void *arg)
{
    Py_VISIT(b->model);
    Py_VISIT(b->names);
    Py_VISIT(b->state_class);
    Py_VISIT(b->db);
    Py_VISIT(b->deferred);
    return 0;
}

static int builder_clear(builder *b)
{
    Py_CLEAR(b->model);
    Py_CLEAR(b->names);
    Py_CLEAR(b->state_class);
    Py_CLEAR(b->db);
    Py_CLEAR(b->deferred);
    return 0;
}

static void builder_dealloc(builder *b)
{
    PyObject_GC_UnTrack(b);
    builder_clear(b);
    PyMem_Free(b->foreign_key);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

PyDoc_STRVAR(builder_doc,
"InstanceBuilder(model, names, foreign_keys, state_class, db, deferred)\n"
"--\n\n"
"Called with one row's values (one per name), the instance that\n"
"Model.from_db gives for a model built by Django's own __init__: _state a\n"
"new state_class() with adding False and db, each value (but `deferred`)\n"
"the attribute of its name, a foreign key's (foreign_keys[j] true) stored\n"
"as ForeignKeyDeferredAttribute stores it. The caller checks the model.");

static PyTypeObject builder_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._rows.InstanceBuilder",
    .tp_basicsize = sizeof(builder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = builder_doc,
    .tp_new = builder_new,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_traverse = (traverseproc)builder_traverse,
    .tp_clear = (inquiry)builder_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(builder, vectorcall),
};

int model_rows_add(PyObject *m)
{
    if (!empty_args) { /* the last one made: a failed start is redone */
        s_state = PyUnicode_InternFromString("_state");
        s_fields_cache = PyUnicode_InternFromString("fields_cache");
        s_adding = PyUnicode_InternFromString("adding");
        s_db = PyUnicode_InternFromString("db");
        empty_args = PyTuple_New(0);
        if (!s_state || !s_fields_cache || !s_adding || !s_db || !empty_args)
            return -1;
    }
    if (PyType_Ready(&builder_type) < 0)
        return -1;
    return PyModule_AddObjectRef(m, "InstanceBuilder", (PyObject *)&builder_type);
}
