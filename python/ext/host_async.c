/*
 * The asyncio client's completions in C (host_ext.h, docs/python.md):
 * drain(host, fast) runs one turn of the host (molt_db_host_poll, as
 * news(0.0) does) and hands out what arrived.
 *
 * fast maps a Stream to the asyncio Future of a one-shot call (one
 * request, one final frame) that waits for it. For such a stream whose
 * future is still pending, the frames are taken here: the first one,
 * copied into bytes, becomes the future's result; any later one is
 * dropped (a one-shot call reads one frame, as the general path does);
 * once its last frame was taken, the stream is released and leaves fast.
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
static int complete_fast(StreamObject *st, PyObject *fut, PyObject *fast)
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
        PyObject *b = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)len);
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

/* drain(host, fast) -> [Stream]: see the top of this file. */
static PyObject *drain(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 2 || !PyObject_TypeCheck(args[0], &HostType) || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "drain(host, fast) takes a Host and a dict");
        return NULL;
    }
    HostObject *host = (HostObject *)args[0];
    PyObject *fast = args[1];
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
        for (size_t i = 0; i < got; i++) {
            StreamObject *st = ready[i];
            /* a stream is referenced by the exchange until released, and
             * a released one is never ready: st is alive */
            PyObject *fut = PyDict_GetItemWithError(fast, (PyObject *)st);
            int general = 1;
            if (fut != NULL && st->s != NULL && !st->done) {
                Py_INCREF(fut);
                int d = future_done(fut);
                int rc = d < 0 ? -1 : d ? 0 : complete_fast(st, fut, fast);
                Py_DECREF(fut);
                if (rc < 0)
                    goto fail; /* the news of the streams not handed over
                                  is lost for this call */
                general = d;
            } else if (PyErr_Occurred()) {
                goto fail;
            }
            if (general && PyList_Append(rest, (PyObject *)st) < 0)
                goto fail;
        }
    } while (got == 64);
    return rest;
fail:
    Py_DECREF(rest);
    return NULL;
}

static PyMethodDef async_functions[] = {
    {"drain", (PyCFunction)(void (*)(void))drain, METH_FASTCALL,
     "drain(host, fast) -> [Stream]: one turn of the host; the one-shot calls in fast "
     "({Stream: Future}) get their final frame (bytes) as the future's result; the other "
     "streams with news are returned."},
    {NULL, NULL, 0, NULL},
};

int host_async_add(PyObject *m)
{
    return PyModule_AddFunctions(m, async_functions);
}
