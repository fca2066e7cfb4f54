/*
 * _host.Waiter: what a one-shot call of the asyncio client awaits
 * (host_async.c, docs/python.md). It speaks asyncio's Future protocol as
 * asyncio.Task uses it (_asyncio_future_blocking, get_loop(),
 * add_done_callback(fn, *, context=None), remove_done_callback(), done(),
 * cancelled(), result(), exception(), cancel(msg=None), set_result(),
 * set_exception(), await), so a task awaits it as it awaits a Future.
 *
 * The difference is how its callbacks run. Completed by drain() in the
 * loop's host turn (waiter_complete), it joins that turn's list of woken
 * waiters, and wake() runs their callbacks (the awaiting task's wakeup)
 * right after the turn, each in its context: no loop.call_soon, Handle and
 * loop iteration between the answer and its task. Completed or cancelled
 * from Python (a deadline, a lost host, Task.cancel()), its callbacks are
 * scheduled with loop.call_soon, as a Future's are.
 *
 * It also carries what drain needs of the call: its request_id, its
 * stream, its client-side deadline (time.monotonic() seconds) and, for a
 * plain query (submit_plain), the client's decoding, with which drain
 * makes the QueryResult the task gets (rows decoded, metrics lazy). An
 * exception never retrieved is not logged (the client always retrieves).
 */
#include "host_ext.h"

#include <structmember.h>

enum { PENDING, HAS_RESULT, HAS_EXCEPTION, CANCELLED };

typedef struct {
    PyObject_HEAD
    PyObject *loop;
    PyObject *stream;    /* the call's Stream */
    PyObject *fn;        /* the first callback, or NULL */
    PyObject *ctx;       /* its context */
    PyObject *more;      /* a list of (fn, context) after it, or NULL */
    PyObject *value;     /* the result, the exception, or the cancel message */
    PyObject *decoding;  /* a plain query's: drain() makes its QueryResult; or NULL */
    double deadline;     /* time.monotonic() seconds */
    unsigned long long rid;
    int state;
    char blocking; /* _asyncio_future_blocking */
} WaiterObject;

static int waiter_traverse(WaiterObject *w, visitproc visit, void *arg)
{
    Py_VISIT(w->loop);
    Py_VISIT(w->stream);
    Py_VISIT(w->fn);
    Py_VISIT(w->ctx);
    Py_VISIT(w->more);
    Py_VISIT(w->value);
    Py_VISIT(w->decoding);
    return 0;
}

static int waiter_clear(WaiterObject *w)
{
    Py_CLEAR(w->loop);
    Py_CLEAR(w->stream);
    Py_CLEAR(w->fn);
    Py_CLEAR(w->ctx);
    Py_CLEAR(w->more);
    Py_CLEAR(w->value);
    Py_CLEAR(w->decoding);
    return 0;
}

static void waiter_dealloc(WaiterObject *w)
{
    PyObject_GC_UnTrack(w);
    waiter_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

PyObject *waiter_new(PyObject *loop, PyObject *stream, unsigned long long rid, double deadline,
                     PyObject *decoding)
{
    WaiterObject *w = PyObject_GC_New(WaiterObject, &WaiterType);
    if (w == NULL)
        return NULL;
    w->loop = Py_NewRef(loop);
    w->stream = Py_NewRef(stream);
    w->fn = w->ctx = w->more = w->value = NULL;
    w->decoding = Py_XNewRef(decoding);
    w->deadline = deadline;
    w->rid = rid;
    w->state = PENDING;
    w->blocking = 0;
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

int waiter_pending(PyObject *w)
{
    return ((WaiterObject *)w)->state == PENDING;
}

unsigned long long waiter_rid(PyObject *w)
{
    return ((WaiterObject *)w)->rid;
}

PyObject *waiter_decoding(PyObject *w)
{
    return ((WaiterObject *)w)->decoding;
}

static int has_callbacks(WaiterObject *w)
{
    return w->fn != NULL || (w->more != NULL && PyList_GET_SIZE(w->more) > 0);
}

int waiter_complete(PyObject *self, PyObject *value, PyObject *woken)
{
    WaiterObject *w = (WaiterObject *)self;
    w->state = HAS_RESULT;
    w->value = Py_NewRef(value);
    return has_callbacks(w) ? PyList_Append(woken, self) : 0;
}

/* loop.call_soon(fn, w, context=ctx): 0, or -1 with an exception. */
static int call_soon(WaiterObject *w, PyObject *fn, PyObject *ctx)
{
    static PyObject *name, *kwnames;
    if (name == NULL && (name = PyUnicode_InternFromString("call_soon")) == NULL)
        return -1;
    if (kwnames == NULL && (kwnames = Py_BuildValue("(s)", "context")) == NULL)
        return -1;
    PyObject *args[4] = {w->loop, fn, (PyObject *)w, ctx};
    PyObject *r = PyObject_VectorcallMethod(name, args, 3, kwnames);
    Py_XDECREF(r);
    return r != NULL ? 0 : -1;
}

/* Schedules each callback with loop.call_soon, as a Future does, and
 * forgets them: 0, or -1 with an exception. */
static int schedule_callbacks(WaiterObject *w)
{
    PyObject *fn = w->fn, *ctx = w->ctx, *more = w->more;
    w->fn = w->ctx = w->more = NULL;
    int rc = fn != NULL ? call_soon(w, fn, ctx) : 0;
    Py_ssize_t n = more != NULL ? PyList_GET_SIZE(more) : 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *pair = PyList_GET_ITEM(more, i);
        rc = call_soon(w, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
    }
    Py_XDECREF(fn);
    Py_XDECREF(ctx);
    Py_XDECREF(more);
    return rc;
}

/* Runs fn(w) in context ctx, as a Handle does: an exception other than
 * SystemExit and KeyboardInterrupt goes to the loop's exception handler.
 * A context entered already (tasks made with one shared context) cannot
 * be entered again: that callback is scheduled instead. 0, or -1 with
 * that SystemExit / KeyboardInterrupt (or a failure to report) set. */
static int run_callback(WaiterObject *w, PyObject *fn, PyObject *ctx)
{
    int rc = 0;
    if (PyContext_Enter(ctx) == 0) {
        PyObject *r = PyObject_CallOneArg(fn, (PyObject *)w);
        if (PyContext_Exit(ctx) < 0) {
            Py_XDECREF(r);
            return -1;
        }
        Py_XDECREF(r);
        rc = r != NULL ? 0 : -1;
    } else if (PyErr_ExceptionMatches(PyExc_RuntimeError)) {
        PyErr_Clear();
        rc = call_soon(w, fn, ctx);
    } else {
        return -1;
    }
    if (rc == 0)
        return 0;
    if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
        return -1;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    PyObject *report = Py_BuildValue("{s:s,s:O,s:O}", "message", "Exception in a callback of a _host.Waiter",
                                     "exception", ev != NULL ? ev : Py_None, "future", (PyObject *)w);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    if (report == NULL)
        return -1;
    PyObject *r = PyObject_CallMethod(w->loop, "call_exception_handler", "O", report);
    Py_DECREF(report);
    if (r == NULL)
        PyErr_Clear(); /* as asyncio does when the handler itself fails, quietly */
    Py_XDECREF(r);
    return 0;
}

/* wake(woken): runs the callbacks of the waiters in woken (emptied first),
 * each in its context. When one raises SystemExit or KeyboardInterrupt,
 * the callbacks not run yet are scheduled with loop.call_soon and it
 * propagates. */
static PyObject *wake(PyObject *mod, PyObject *woken)
{
    (void)mod;
    if (!PyList_CheckExact(woken)) {
        PyErr_SetString(PyExc_TypeError, "wake(woken) takes a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(woken);
    if (n == 0)
        Py_RETURN_NONE;
    /* taken out first: a callback may run a host turn that wakes more */
    PyObject *batch = PyList_GetSlice(woken, 0, n);
    if (batch == NULL || PyList_SetSlice(woken, 0, n, NULL) < 0) {
        Py_XDECREF(batch);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyObject_TypeCheck(PyList_GET_ITEM(batch, i), &WaiterType)) {
            Py_DECREF(batch);
            PyErr_SetString(PyExc_TypeError, "wake() takes a list of Waiters");
            return NULL;
        }
    int failed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        WaiterObject *w = (WaiterObject *)PyList_GET_ITEM(batch, i);
        if (failed) {
            /* after a SystemExit / KeyboardInterrupt: later, by the loop */
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            if (schedule_callbacks(w) < 0)
                PyErr_WriteUnraisable((PyObject *)w);
            PyErr_Restore(et, ev, tb);
            continue;
        }
        PyObject *fn = w->fn, *ctx = w->ctx, *more = w->more;
        w->fn = w->ctx = w->more = NULL;
        if (fn != NULL && run_callback(w, fn, ctx) < 0)
            failed = 1;
        Py_ssize_t m = more != NULL ? PyList_GET_SIZE(more) : 0;
        for (Py_ssize_t j = 0; j < m && !failed; j++) {
            PyObject *pair = PyList_GET_ITEM(more, j);
            if (run_callback(w, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0)
                failed = 1;
        }
        Py_XDECREF(fn);
        Py_XDECREF(ctx);
        Py_XDECREF(more);
    }
    Py_DECREF(batch);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- the Future protocol ---- */

static PyObject *asyncio_exc(const char *name)
{
    PyObject *mod = PyImport_ImportModule("asyncio.exceptions");
    if (mod == NULL)
        return NULL;
    PyObject *cls = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return cls;
}

/* Raises what result() raises for a waiter that is not HAS_RESULT. */
static PyObject *raise_state(WaiterObject *w)
{
    if (w->state == HAS_EXCEPTION) {
        PyErr_SetObject((PyObject *)Py_TYPE(w->value), w->value);
        return NULL;
    }
    PyObject *cls = asyncio_exc(w->state == CANCELLED ? "CancelledError" : "InvalidStateError");
    if (cls == NULL)
        return NULL;
    PyObject *exc = w->state == PENDING     ? PyObject_CallFunction(cls, "s", "Result is not set.")
                  : w->value != NULL ? PyObject_CallOneArg(cls, w->value) /* the cancel message */
                                     : PyObject_CallNoArgs(cls);
    if (exc != NULL) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    Py_DECREF(cls);
    return NULL;
}

static PyObject *waiter_result(WaiterObject *w, PyObject *unused)
{
    (void)unused;
    if (w->state == HAS_RESULT)
        return Py_NewRef(w->value);
    return raise_state(w);
}

static PyObject *waiter_exception(WaiterObject *w, PyObject *unused)
{
    (void)unused;
    if (w->state == HAS_RESULT)
        Py_RETURN_NONE;
    if (w->state == HAS_EXCEPTION)
        return Py_NewRef(w->value);
    return raise_state(w);
}

static PyObject *waiter_done(WaiterObject *w, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(w->state != PENDING);
}

static PyObject *waiter_cancelled(WaiterObject *w, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(w->state == CANCELLED);
}

static PyObject *waiter_get_loop(WaiterObject *w, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(w->loop);
}

/* Completes a pending waiter from Python: its callbacks are scheduled. */
static PyObject *settle(WaiterObject *w, int state, PyObject *value)
{
    if (w->state != PENDING) {
        PyObject *cls = asyncio_exc("InvalidStateError");
        if (cls != NULL) {
            PyErr_SetString(cls, "invalid state");
            Py_DECREF(cls);
        }
        return NULL;
    }
    w->state = state;
    Py_XSETREF(w->value, Py_XNewRef(value));
    if (schedule_callbacks(w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *waiter_set_result(WaiterObject *w, PyObject *value)
{
    return settle(w, HAS_RESULT, value);
}

static PyObject *waiter_set_exception(WaiterObject *w, PyObject *exc)
{
    PyObject *inst = exc;
    if (PyExceptionClass_Check(exc)) {
        inst = PyObject_CallNoArgs(exc);
        if (inst == NULL)
            return NULL;
    } else if (!PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "set_exception() takes an exception");
        return NULL;
    } else {
        Py_INCREF(inst);
    }
    PyObject *r = settle(w, HAS_EXCEPTION, inst);
    Py_DECREF(inst);
    return r;
}

static PyObject *waiter_cancel(WaiterObject *w, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    PyObject *msg = nargs > 0 ? args[0] : NULL;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 1 || nkw > 1 || (nkw == 1 && (nargs == 1 || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "msg") != 0))) {
        PyErr_SetString(PyExc_TypeError, "cancel(msg=None)");
        return NULL;
    }
    if (nkw == 1)
        msg = args[nargs];
    if (w->state != PENDING)
        Py_RETURN_FALSE;
    PyObject *r = settle(w, CANCELLED, msg == Py_None ? NULL : msg);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_TRUE;
}

static PyObject *waiter_add_done_callback(WaiterObject *w, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs != 1 || nkw > 1 ||
        (nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "context") != 0)) {
        PyErr_SetString(PyExc_TypeError, "add_done_callback(fn, *, context=None)");
        return NULL;
    }
    PyObject *fn = args[0];
    PyObject *ctx = nkw == 1 && args[1] != Py_None ? Py_NewRef(args[1]) : PyContext_CopyCurrent();
    if (ctx == NULL)
        return NULL;
    if (w->state != PENDING) { /* scheduled now, as a Future does */
        int rc = call_soon(w, fn, ctx);
        Py_DECREF(ctx);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (w->fn == NULL && (w->more == NULL || PyList_GET_SIZE(w->more) == 0)) {
        w->fn = Py_NewRef(fn);
        w->ctx = ctx;
        Py_RETURN_NONE;
    }
    if (w->more == NULL && (w->more = PyList_New(0)) == NULL) {
        Py_DECREF(ctx);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, fn, ctx);
    Py_DECREF(ctx);
    if (pair == NULL)
        return NULL;
    int rc = PyList_Append(w->more, pair);
    Py_DECREF(pair);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *waiter_remove_done_callback(WaiterObject *w, PyObject *fn)
{
    /* a callback's __eq__ runs Python that may complete the Waiter or add
     * and remove callbacks: every object compared is held, and the
     * survivors go into a new list (as asyncio's Future does) */
    Py_ssize_t removed = 0;
    if (w->fn != NULL) {
        PyObject *first = Py_NewRef(w->fn);
        int eq = PyObject_RichCompareBool(first, fn, Py_EQ);
        if (eq > 0 && w->fn == first) {
            Py_CLEAR(w->fn);
            Py_CLEAR(w->ctx);
            removed++;
        }
        Py_DECREF(first);
        if (eq < 0)
            return NULL;
    }
    if (w->more == NULL)
        return PyLong_FromSsize_t(removed);
    PyObject *more = Py_NewRef(w->more);
    PyObject *keep = PyList_New(0);
    if (keep == NULL) {
        Py_DECREF(more);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(more); i++) {
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(more, i));
        int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), fn, Py_EQ);
        int rc = eq == 0 ? PyList_Append(keep, pair) : 0;
        Py_DECREF(pair);
        if (eq < 0 || rc < 0) {
            Py_DECREF(keep);
            Py_DECREF(more);
            return NULL;
        }
        removed += eq;
    }
    if (w->more == more) /* still its list: not completed meanwhile */
        Py_SETREF(w->more, keep);
    else
        Py_DECREF(keep);
    Py_DECREF(more);
    return PyLong_FromSsize_t(removed);
}

/* await: yields itself while pending (blocking set, as a Future does),
 * then returns the result or raises. */
static PySendResult waiter_send(WaiterObject *w, PyObject *arg, PyObject **result)
{
    (void)arg;
    if (w->state == PENDING) {
        w->blocking = 1;
        *result = Py_NewRef(w);
        return PYGEN_NEXT;
    }
    if (w->state == HAS_RESULT) {
        *result = Py_NewRef(w->value);
        return PYGEN_RETURN;
    }
    *result = raise_state(w);
    return PYGEN_ERROR;
}

static PyObject *waiter_iternext(WaiterObject *w)
{
    PyObject *r;
    switch (waiter_send(w, Py_None, &r)) {
    case PYGEN_NEXT:
        return r;
    case PYGEN_RETURN: {
        /* StopIteration(value): a tuple value must not become its args */
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, r);
        Py_DECREF(r);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

static PyObject *waiter_await(PyObject *self)
{
    return Py_NewRef(self);
}

static PyAsyncMethods waiter_async = {
    .am_await = waiter_await,
    .am_send = (sendfunc)waiter_send,
};

static PyMethodDef waiter_methods[] = {
    {"result", (PyCFunction)waiter_result, METH_NOARGS, "The result, or raises as a Future does."},
    {"exception", (PyCFunction)waiter_exception, METH_NOARGS, "The exception set, or None."},
    {"done", (PyCFunction)waiter_done, METH_NOARGS, "True once completed or cancelled."},
    {"cancelled", (PyCFunction)waiter_cancelled, METH_NOARGS, "True once cancelled."},
    {"get_loop", (PyCFunction)waiter_get_loop, METH_NOARGS, "The event loop it belongs to."},
    {"set_result", (PyCFunction)waiter_set_result, METH_O, "Completes it; callbacks scheduled."},
    {"set_exception", (PyCFunction)waiter_set_exception, METH_O, "Fails it; callbacks scheduled."},
    {"cancel", (PyCFunction)(void (*)(void))waiter_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel(msg=None): True when it was pending; callbacks scheduled."},
    {"add_done_callback", (PyCFunction)(void (*)(void))waiter_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, "add_done_callback(fn, *, context=None)"},
    {"remove_done_callback", (PyCFunction)waiter_remove_done_callback, METH_O,
     "Removes fn from the callbacks: how many were removed."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef waiter_members[] = {
    {"_asyncio_future_blocking", T_BOOL, offsetof(WaiterObject, blocking), 0,
     "set while a task waits on it (asyncio's Future protocol)"},
    {"_loop", T_OBJECT, offsetof(WaiterObject, loop), READONLY, "the event loop"},
    {"stream", T_OBJECT, offsetof(WaiterObject, stream), READONLY, "the call's Stream"},
    {"request_id", T_ULONGLONG, offsetof(WaiterObject, rid), READONLY, "the call's request_id"},
    {"deadline", T_DOUBLE, offsetof(WaiterObject, deadline), READONLY,
     "the client-side deadline, time.monotonic() seconds"},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject WaiterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._host.Waiter",
    .tp_basicsize = sizeof(WaiterObject),
    .tp_dealloc = (destructor)waiter_dealloc,
    .tp_as_async = &waiter_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What a one-shot call of the asyncio client awaits: a Future whose "
              "completion by drain() wakes its task right after the host's turn.",
    .tp_traverse = (traverseproc)waiter_traverse,
    .tp_clear = (inquiry)waiter_clear,
    .tp_iter = waiter_await,
    .tp_iternext = (iternextfunc)waiter_iternext,
    .tp_methods = waiter_methods,
    .tp_members = waiter_members,
};

static PyMethodDef waiter_functions[] = {
    {"wake", (PyCFunction)wake, METH_O,
     "wake(woken): runs the callbacks of the Waiters drain() completed (the list is "
     "emptied first), each in its context."},
    {NULL, NULL, 0, NULL},
};

int host_waiter_add(PyObject *m)
{
    if (PyType_Ready(&WaiterType) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Waiter", (PyObject *)&WaiterType) < 0)
        return -1;
    return PyModule_AddFunctions(m, waiter_functions);
}
