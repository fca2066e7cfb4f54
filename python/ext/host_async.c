/*
 * The asyncio client's completions in C (host_ext.h, docs/python.md):
 * drain(host, fast, max_frame) runs one turn of the host (molt_db_host_poll, as
 * news(0.0) does) and hands out what arrived.
 *
 * fast maps a Stream to (future, request_id) of a one-shot call (one
 * request, one final frame) that waits for it. For such a stream whose
 * future is still pending, the frames are taken here: the first one
 * becomes the future's result; any later one is dropped (a one-shot call
 * reads one frame, as the general path does); once its last frame was
 * taken, the stream is released and leaves fast. An Ok final frame for
 * that request_id of up to max_frame bytes is given as its parts (codec,
 * payload, metrics), read by ok_parts (host_call.c, as the blocking
 * client's fast path reads it); any other frame as its bytes, which the
 * Python side decodes as the general path does.
 * Every other stream with news (a stream, a cancel, a transaction call,
 * or a fast one whose future is done: its task was cancelled) is
 * returned untouched, for the general code (AsyncHostExchange.hand_out).
 *
 * Called on the event loop's thread with the GIL held, as every call on a
 * driven host is.
 */
#include "host_ext.h"

/* Takes the frames of st, a fast stream whose future fut is pending: 0,
 * or -1 with an exception (the frame taken so far is lost; the caller's
 * exchange then fails every call, as a broken stream does). */
static int complete_fast(StreamObject *st, PyObject *fut, uint64_t rid, PyObject *fast,
                         size_t max_frame)
{
    static PyObject *set_result;
    if (set_result == NULL && (set_result = PyUnicode_InternFromString("set_result")) == NULL)
        return -1;
    int resolved = 0;
    for (;;) {
        const uint8_t *frame;
        size_t len;
        int rc = molt_db_host_next(st->s, &frame, &len);
        if (rc == 0)
            return 0; /* more to come in a later turn */
        if (rc == MOLT_DB_HOST_DONE)
            break;
        if (resolved)
            continue;
        if (len > (size_t)PY_SSIZE_T_MAX) {
            PyErr_NoMemory();
            return -1;
        }
        PyObject *b = len <= max_frame ? ok_parts(frame, len, rid) : Py_NewRef(Py_None);
        if (b == Py_None) {
            Py_DECREF(b);
            b = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)len);
        }
        if (b == NULL)
            return -1;
        PyObject *r = PyObject_CallMethodOneArg(fut, set_result, b);
        Py_DECREF(b);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        resolved = 1;
    }
    st->done = 1;
    /* released before it leaves fast, whose reference may be its last */
    stream_drop(st);
    return PyDict_DelItem(fast, (PyObject *)st);
}

/* 1 when fut (a Future) is done; -1 with an exception. */
static int future_done(PyObject *fut)
{
    static PyObject *done;
    if (done == NULL && (done = PyUnicode_InternFromString("done")) == NULL)
        return -1;
    PyObject *r = PyObject_CallMethodNoArgs(fut, done);
    if (r == NULL)
        return -1;
    int d = PyObject_IsTrue(r);
    Py_DECREF(r);
    return d;
}

/* drain(host, fast, max_frame) -> [Stream]: see the top of this file. */
static PyObject *drain(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 3 || !PyObject_TypeCheck(args[0], &HostType) || !PyDict_CheckExact(args[1]) ||
        !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "drain(host, fast, max_frame) takes a Host, a dict, an int");
        return NULL;
    }
    HostObject *host = (HostObject *)args[0];
    PyObject *fast = args[1];
    size_t max_frame = PyLong_AsSize_t(args[2]);
    if (max_frame == (size_t)-1 && PyErr_Occurred())
        return NULL;
    if (host_usable(host) < 0)
        return NULL;
    molt_db_host_poll(host->h, 0);
    PyObject *rest = PyList_New(0);
    if (rest == NULL)
        return NULL;
    void *ready[64];
    size_t got;
    do {
        got = molt_db_host_ready(host->h, ready, 64);
        /* a stream is referenced by the exchange until released, and a
         * released one is never ready: each is alive now. Held here while
         * the batch is handed out: an allocation below may run the cyclic
         * GC, whose finalizers could drop the exchange's references. */
        for (size_t i = 0; i < got; i++)
            Py_INCREF((PyObject *)ready[i]);
        size_t i = 0;
        for (; i < got; i++) {
            StreamObject *st = ready[i];
            PyObject *entry = PyDict_GetItemWithError(fast, (PyObject *)st);
            int general = 1, rc = 0;
            if (entry != NULL && (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2)) {
                PyErr_SetString(PyExc_TypeError, "drain(): fast maps a Stream to (future, request_id)");
                rc = -1;
            } else if (entry != NULL && st->s != NULL && !st->done) {
                /* (future, request_id), as submit_fast puts it */
                PyObject *fut = PyTuple_GET_ITEM(entry, 0);
                uint64_t rid = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(entry, 1));
                Py_INCREF(entry);
                int d = rid == (uint64_t)-1 && PyErr_Occurred() ? -1 : future_done(fut);
                rc = d < 0 ? -1 : d ? 0 : complete_fast(st, fut, rid, fast, max_frame);
                Py_DECREF(entry);
                general = d;
            } else if (PyErr_Occurred()) {
                rc = -1;
            }
            if (rc == 0 && general && PyList_Append(rest, (PyObject *)st) < 0)
                rc = -1;
            Py_DECREF((PyObject *)st);
            if (rc < 0)
                break; /* the news of the streams not handed over is lost
                          for this call */
        }
        if (i < got) {
            for (i++; i < got; i++)
                Py_DECREF((PyObject *)ready[i]);
            Py_DECREF(rest);
            return NULL;
        }
    } while (got == 64);
    return rest;
}

static PyMethodDef async_functions[] = {
    {"drain", (PyCFunction)(void (*)(void))drain, METH_FASTCALL,
     "drain(host, fast, max_frame) -> [Stream]: one turn of the host; the one-shot calls in "
     "fast ({Stream: (Future, request_id)}) get their final frame as the future's result "
     "(an Ok answer as (codec, payload, metrics), else its bytes); the other streams with "
     "news are returned."},
    {NULL, NULL, 0, NULL},
};

int host_async_add(PyObject *m)
{
    return PyModule_AddFunctions(m, async_functions);
}
