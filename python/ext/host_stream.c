/*
 * Stream: one request submitted to a Host (host_ext.h). take() hands over
 * the frames that arrived, each copied once into a bytes object (the
 * host's frame is valid only until the next call on the stream). Release
 * is explicit (release()) or on deallocation; a request still running is
 * then cancelled, on the server too.
 */
#include "host_ext.h"

#include <unistd.h>

StreamObject *stream_wrap(HostObject *host, molt_db_host_stream *s)
{
    StreamObject *st = PyObject_New(StreamObject, &StreamType);
    if (st == NULL)
        return NULL;
    st->s = s;
    st->host = host;
    Py_INCREF(host);
    st->done = 0;
    return st;
}

/* Lets go of the stream: released when the host is this process's and
 * still open; otherwise the host already freed it (close) or it is the
 * parent's (fork) and is only forgotten. */
void stream_drop(StreamObject *st)
{
    molt_db_host_stream *s = st->s;
    st->s = NULL;
    if (s != NULL && st->host->h != NULL && st->host->pid == host_this_pid())
        molt_db_host_release(s); /* driven: a poll waiting on another thread wakes */
}

static void stream_dealloc(PyObject *self)
{
    StreamObject *st = (StreamObject *)self;
    stream_drop(st);
    Py_CLEAR(st->host);
    PyObject_Free(self);
}

static PyObject *stream_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    stream_drop((StreamObject *)self);
    Py_RETURN_NONE;
}

int stream_takeable(StreamObject *st)
{
    if (st->done)
        return 0;
    if (st->s == NULL) {
        PyErr_SetString(HostError, "the stream was released");
        return -1;
    }
    return host_usable(st->host) < 0 ? -1 : 1;
}

/* take() -> [bytes]: the frames ready now (maybe none); .done says
 * whether the last one was among them (or before). */
static PyObject *stream_take(PyObject *self, PyObject *unused)
{
    (void)unused;
    StreamObject *st = (StreamObject *)self;
    int go = stream_takeable(st);
    PyObject *out = go < 0 ? NULL : PyList_New(0);
    if (out == NULL || go == 0)
        return out;
    for (;;) {
        const uint8_t *frame;
        size_t len;
        int rc = molt_db_host_next(st->s, &frame, &len);
        if (rc == 0)
            break;
        if (rc == MOLT_DB_HOST_DONE) {
            st->done = 1;
            break;
        }
        if (len > (size_t)PY_SSIZE_T_MAX) {
            Py_DECREF(out);
            return PyErr_NoMemory();
        }
        PyObject *b = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)len);
        if (b == NULL || PyList_Append(out, b) < 0) {
            /* the frame is lost: the caller treats the stream as broken */
            Py_XDECREF(b);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(b);
    }
    return out;
}

static PyObject *stream_get_done(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((StreamObject *)self)->done);
}

static PyMethodDef stream_methods[] = {
    {"take", stream_take, METH_NOARGS, "take() -> [bytes]: the frames that arrived."},
    {"release", stream_release, METH_NOARGS,
     "Frees the stream; a request still running is cancelled."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stream_getset[] = {
    {"done", stream_get_done, NULL, "True once the last frame was taken.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._host.Stream",
    .tp_doc = "One request submitted to a Host (Host.submit).",
    .tp_basicsize = sizeof(StreamObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = stream_dealloc,
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
};
