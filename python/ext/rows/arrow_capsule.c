/* The _rows module's Arrow C Data hand-off (arrow_capsule.h): each chunk's
 * buffer is held (PyObject_GetBuffer) until the stream and the last array
 * read from it are released, whichever thread releases them. */
#include "arrow_capsule.h"
#include "arrow_ipc_read.h"

#include <stdlib.h>
#include <string.h>

static PyObject *arrow_ipc_error;
/* chunks that did not start 8-byte aligned, copied to aligned memory; the
 * owners not yet dropped (a stream or an array of it still held) */
static atomic_long aligned_copies, live_owners;

typedef struct py_owner {
    ipc_owner base;
    Py_ssize_t n;     /* views taken */
    Py_buffer *views;
    void **copies;    /* per chunk: its aligned copy, or NULL */
} py_owner;

static void py_owner_drop(ipc_owner *o)
{
    py_owner *po = (py_owner *)o;
    /* a consumer may release after the interpreter is gone: its buffers are
     * then left as they are (there is no Python to give them back to) */
    if (Py_IsInitialized()) {
        PyGILState_STATE g = PyGILState_Ensure();
        for (Py_ssize_t i = 0; i < po->n; i++)
            PyBuffer_Release(&po->views[i]);
        PyGILState_Release(g);
    }
    for (Py_ssize_t i = 0; i < po->n; i++)
        free(po->copies[i]);
    free(po->views);
    free(po->copies);
    free(po);
    atomic_fetch_sub_explicit(&live_owners, 1, memory_order_relaxed);
}

static void capsule_free(PyObject *capsule)
{
    struct ArrowArrayStream *s = PyCapsule_GetPointer(capsule, "arrow_array_stream");
    if (s == NULL) {
        PyErr_WriteUnraisable(capsule);
        return;
    }
    if (s->release != NULL) /* not taken by a consumer */
        s->release(s);
    free(s);
}

static PyObject *arrow_stream(PyObject *self, PyObject *chunks)
{
    (void)self;
    /* a tuple of its own: a buffer's __buffer__ may change the caller's list */
    PyObject *seq = PySequence_Tuple(chunks);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    py_owner *po = calloc(1, sizeof *po);
    ipc_chunk *spans = calloc(n ? (size_t)n : 1, sizeof *spans);
    struct ArrowArrayStream *s = calloc(1, sizeof *s);
    PyObject *result = NULL;
    if (po != NULL) {
        po->views = calloc(n ? (size_t)n : 1, sizeof *po->views);
        po->copies = calloc(n ? (size_t)n : 1, sizeof *po->copies);
    }
    if (po == NULL || spans == NULL || s == NULL || po->views == NULL || po->copies == NULL) {
        if (po != NULL) {
            free(po->views);
            free(po->copies);
            free(po);
        }
        free(spans);
        free(s);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    atomic_init(&po->base.refs, 1);
    po->base.drop = py_owner_drop;
    atomic_fetch_add_explicit(&live_owners, 1, memory_order_relaxed);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_buffer *v = &po->views[i];
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(seq, i), v, PyBUF_SIMPLE) < 0)
            goto out;
        po->n = i + 1;
        spans[i].data = v->buf;
        spans[i].len = (size_t)v->len;
        if ((((uintptr_t)v->buf & 7) != 0 || !v->readonly) && v->len > 0) {
            /* the arrays' buffers must be 8-aligned, and what was checked
             * must not change after the check: a chunk that does not start
             * aligned, or that can be written (a bytearray), is read from a
             * copy of its own (counted) */
            if ((po->copies[i] = malloc((size_t)v->len)) == NULL) {
                PyErr_NoMemory();
                goto out;
            }
            memcpy(po->copies[i], v->buf, (size_t)v->len);
            spans[i].data = po->copies[i];
            atomic_fetch_add_explicit(&aligned_copies, 1, memory_order_relaxed);
        }
    }
    char err[256];
    int rc = ipc_stream_open(spans, (size_t)n, &po->base, s, err, sizeof err);
    if (rc == -2)
        PyErr_NoMemory();
    else if (rc != 0)
        PyErr_Format(arrow_ipc_error, "Arrow IPC stream: %s", err);
    else if ((result = PyCapsule_New(s, "arrow_array_stream", capsule_free)) != NULL)
        s = NULL; /* the capsule's */
    else
        s->release(s);
out:
    free(s);
    free(spans);
    Py_DECREF(seq);
    ipc_owner_unref(&po->base); /* the arrays and the stream hold their own */
    return result;
}

PyDoc_STRVAR(arrow_stream_doc,
"arrow_stream(chunks)\n"
"--\n\n"
"An 'arrow_array_stream' PyCapsule (the Arrow PyCapsule interface) of the\n"
"Arrow IPC stream held in chunks, a sequence of buffers (bytes, memoryview)\n"
"each holding whole messages. The arrays point into the chunks' memory,\n"
"which stays held until the stream and every array read from it are\n"
"released. The whole stream is checked first: ArrowIpcError (a ValueError)\n"
"for malformed or unsupported bytes (docs/arrow.md).");

static PyObject *arrow_stats(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("{sl,sl}", "aligned_copies",
                         atomic_load_explicit(&aligned_copies, memory_order_relaxed), "live",
                         atomic_load_explicit(&live_owners, memory_order_relaxed));
}

PyDoc_STRVAR(arrow_stats_doc,
"arrow_stats()\n"
"--\n\n"
"{'aligned_copies': chunks arrow_stream copied because they did not start\n"
"8-byte aligned or could be written, 'live': arrow_stream results whose chunks are still held\n"
"(by the stream or by an array read from it)}.");

static PyMethodDef methods[] = {
    {"arrow_stream", arrow_stream, METH_O, arrow_stream_doc},
    {"arrow_stats", arrow_stats, METH_NOARGS, arrow_stats_doc},
    {NULL, NULL, 0, NULL},
};

int arrow_capsule_add(PyObject *m)
{
    arrow_ipc_error = PyErr_NewException("molt_db_adapter._rows.ArrowIpcError", PyExc_ValueError,
                                         NULL);
    if (arrow_ipc_error == NULL || PyModule_AddObjectRef(m, "ArrowIpcError", arrow_ipc_error) < 0)
        return -1;
    return PyModule_AddFunctions(m, methods);
}
