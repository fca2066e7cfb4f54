/*
 * Frames handed over without a copy (host_ext.h): take_owned(stream) is
 * Stream.take() through molt_db_host_next_owned. A frame of at least
 * OWNED_MIN_BYTES becomes a Frame object that owns the host's frame and
 * exposes it through the buffer protocol (read-only); a smaller one is
 * copied into bytes as by take(), which is cheaper than an object for it.
 *
 * Frame.split() is how an arrow_ipc payload reaches pyarrow in place: it
 * returns the response map with its payload left out (bytes, for the
 * usual decoding) and the payload as a memoryview into the frame, moved
 * down to an 8-byte boundary first when it is not on one (the host
 * aligns a buffered result's; a streamed part's depends on its map's
 * head). Once it moved, the frame can be split no more.
 * pyarrow's IPC reader references that memory instead of copying it, and
 * the view keeps the Frame alive, so the host's frame is freed exactly
 * once, when the last Arrow buffer (or view) over it is gone. Any other
 * frame splits to (bytes(frame), None).
 */
#include "host_ext.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    molt_db_host_frame *owned;
    uint8_t *data;  /* the caller's (host.h): split() may move the payload */
    Py_ssize_t len;
    int split;      /* split() moved the payload: the map's head is gone */
} FrameObject;

static void frame_dealloc(PyObject *self)
{
    FrameObject *f = (FrameObject *)self;
    molt_db_host_frame_free(f->owned);
    PyObject_Free(self);
}

static int frame_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    FrameObject *f = (FrameObject *)self;
    return PyBuffer_FillInfo(view, self, (void *)f->data, f->len, 1, flags);
}

static PyBufferProcs frame_as_buffer = {.bf_getbuffer = frame_getbuffer};

/* ---- a bounds-checked walk over the MsgPack of a response map ---- */

/* Skips one value at *p; -1 when it does not fit before end or nests
 * deeper than the worker writes. */
static int mp_skip(const uint8_t **p, const uint8_t *end, int depth)
{
    if (*p >= end || depth > 8)
        return -1;
    uint8_t t = *(*p)++;
    uint64_t n = 0, items = 0;
    size_t w = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;
    if ((t & 0xe0) == 0xa0) {
        n = t & 0x1f;
    } else if ((t & 0xf0) == 0x90 || (t & 0xf0) == 0x80) {
        items = (uint64_t)(t & 0x0f) * ((t & 0xf0) == 0x80 ? 2 : 1);
    } else {
        switch (t) {
        case 0xcc: case 0xd0: n = 1; break;
        case 0xcd: case 0xd1: n = 2; break;
        case 0xca: case 0xce: case 0xd2: n = 4; break;
        case 0xcb: case 0xcf: case 0xd3: n = 8; break;
        case 0xc4: case 0xd9: w = 1; break;
        case 0xc5: case 0xda: case 0xdc: case 0xde: w = 2; break;
        case 0xc6: case 0xdb: case 0xdd: case 0xdf: w = 4; break;
        default: return -1; /* ext types: the worker writes none */
        }
        if (w) {
            if ((size_t)(end - *p) < w)
                return -1;
            uint64_t v = 0;
            for (size_t i = 0; i < w; i++)
                v = v << 8 | (*p)[i];
            *p += w;
            if (t == 0xdc || t == 0xdd)
                items = v;
            else if (t == 0xde || t == 0xdf)
                items = 2 * v;
            else
                n = v;
        }
    }
    if ((uint64_t)(end - *p) < n)
        return -1;
    *p += n;
    for (uint64_t i = 0; i < items; i++)
        if (mp_skip(p, end, depth + 1) < 0)
            return -1;
    return 0;
}

/* A fixstr key equal to name at *p (consumed), else 0 with *p unmoved. */
static int mp_key_is(const uint8_t **p, const uint8_t *end, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(end - *p) < 1 + n || **p != (0xa0 | n) || memcmp(*p + 1, name, n) != 0)
        return 0;
    *p += 1 + n;
    return 1;
}

/* The payload's bytes (bin) of a response map whose codec is arrow_ipc:
 * 1 with [*start, *start + *len) and the value's own span [*vstart, *vend),
 * 0 when the frame is not that, -1 when it is not valid MsgPack. */
static int arrow_payload(const uint8_t *b, size_t size, const uint8_t **vstart,
                         const uint8_t **vend, const uint8_t **start, size_t *len)
{
    const uint8_t *p = b, *end = b + size;
    if (size < 1)
        return -1;
    uint64_t keys;
    if ((*p & 0xf0) == 0x80) {
        keys = *p++ & 0x0f;
    } else if (*p == 0xde && size >= 3) {
        keys = (uint64_t)p[1] << 8 | p[2];
        p += 3;
    } else {
        return 0;
    }
    int arrow = 0, found = 0;
    for (uint64_t i = 0; i < keys; i++) {
        if (mp_key_is(&p, end, "codec")) {
            arrow = mp_key_is(&p, end, "arrow_ipc");
            if (!arrow && mp_skip(&p, end, 0) < 0)
                return -1;
        } else if (mp_key_is(&p, end, "payload")) {
            *vstart = p;
            if (p < end && (*p == 0xc4 || *p == 0xc5 || *p == 0xc6)) {
                size_t w = *p == 0xc4 ? 1 : *p == 0xc5 ? 2 : 4;
                if ((size_t)(end - p) < 1 + w)
                    return -1;
                uint64_t n = 0;
                for (size_t k = 0; k < w; k++)
                    n = n << 8 | p[1 + k];
                if ((uint64_t)(end - p - 1 - w) < n)
                    return -1;
                *start = p + 1 + w;
                *len = (size_t)n;
                found = 1;
            }
            if (mp_skip(&p, end, 0) < 0)
                return -1;
            *vend = p;
        } else if (mp_skip(&p, end, 0) < 0 || mp_skip(&p, end, 0) < 0) {
            return -1;
        }
    }
    return arrow && found;
}

/* split() -> (bytes, memoryview | None): see the top of this file. */
static PyObject *frame_split(PyObject *self, PyObject *unused)
{
    (void)unused;
    FrameObject *f = (FrameObject *)self;
    if (f->split) {
        PyErr_SetString(PyExc_RuntimeError, "the frame was split already");
        return NULL;
    }
    const uint8_t *vs = NULL, *ve = NULL, *start = NULL;
    size_t len = 0;
    if (arrow_payload(f->data, (size_t)f->len, &vs, &ve, &start, &len) != 1)
        return Py_BuildValue("(y#O)", (const char *)f->data, f->len, Py_None);
    /* the map with an empty bin where the payload was */
    Py_ssize_t head = vs - f->data, tail = f->len - (ve - f->data);
    PyObject *env = PyBytes_FromStringAndSize(NULL, head + 2 + tail);
    if (env == NULL)
        return NULL;
    char *e = PyBytes_AS_STRING(env);
    memcpy(e, f->data, (size_t)head);
    e[head] = (char)0xc4;
    e[head + 1] = 0;
    memcpy(e + head + 2, ve, (size_t)tail);
    /* Arrow's buffers are 8-aligned within the payload; a consumer may
     * need them aligned in memory too (typed slices), so an unaligned
     * payload moves down over the map's head, already copied into env */
    uint8_t *at = f->data + (start - f->data);
    uint8_t *to = (uint8_t *)((uintptr_t)at & ~(uintptr_t)7);
    if (to != at && to >= f->data) {
        memmove(to, at, len);
        f->split = 1;
        start = to;
    }
    PyObject *whole = PyMemoryView_FromObject(self);
    PyObject *view = NULL;
    if (whole != NULL) {
        Py_ssize_t from = start - f->data;
        PyObject *a = PyLong_FromSsize_t(from);
        PyObject *b = PyLong_FromSsize_t(from + (Py_ssize_t)len);
        PyObject *s = a && b ? PySlice_New(a, b, NULL) : NULL;
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (s != NULL)
            view = PyObject_GetItem(whole, s);
        Py_XDECREF(s);
        Py_DECREF(whole);
    }
    if (view == NULL) {
        Py_DECREF(env);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, env, view);
    Py_DECREF(env);
    Py_DECREF(view);
    return out;
}

static PyMethodDef frame_methods[] = {
    {"split", frame_split, METH_NOARGS,
     "split() -> (bytes, memoryview | None): an arrow_ipc response without its "
     "payload, and the payload in place; any other frame: (bytes(frame), None)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject FrameType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._host.Frame",
    .tp_doc = "A response frame the host handed over (take_owned); freed with the last reference.",
    .tp_basicsize = sizeof(FrameObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = frame_dealloc,
    .tp_methods = frame_methods,
    .tp_as_buffer = &frame_as_buffer,
};

PyObject *frame_item(molt_db_host_frame *owned, const uint8_t *data, size_t len)
{
    if (len > (size_t)PY_SSIZE_T_MAX) {
        molt_db_host_frame_free(owned);
        return PyErr_NoMemory();
    }
    if (len < OWNED_MIN_BYTES) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
        molt_db_host_frame_free(owned);
        return b;
    }
    FrameObject *f = PyObject_New(FrameObject, &FrameType);
    if (f == NULL) {
        molt_db_host_frame_free(owned);
        return NULL;
    }
    f->owned = owned;
    f->data = (uint8_t *)data;
    f->len = (Py_ssize_t)len;
    f->split = 0;
    return (PyObject *)f;
}

/* take_owned(stream, most=0) -> [bytes | Frame]: Stream.take() without
 * copying the large frames; at most `most` of them when it is above 0 (a
 * flow-controlled stream's parts, one at a time). */
static PyObject *take_owned(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs < 1 || nargs > 2 || !PyObject_TypeCheck(args[0], &StreamType)) {
        PyErr_SetString(PyExc_TypeError, "take_owned(stream, most=0) takes a Stream");
        return NULL;
    }
    Py_ssize_t most = 0;
    if (nargs == 2 && (most = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    StreamObject *st = (StreamObject *)args[0];
    int go = stream_takeable(st);
    PyObject *out = go < 0 ? NULL : PyList_New(0);
    if (out == NULL || go == 0)
        return out;
    while (most <= 0 || PyList_GET_SIZE(out) < most) {
        molt_db_host_frame *owned;
        const uint8_t *data;
        size_t len;
        int rc = molt_db_host_next_owned(st->s, &owned, &data, &len);
        if (rc == 0)
            break;
        if (rc == MOLT_DB_HOST_DONE) {
            st->done = 1;
            break;
        }
        PyObject *item = frame_item(owned, data, len);
        if (item == NULL || PyList_Append(out, item) < 0) {
            /* the frame is lost: the caller treats the stream as broken */
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
    }
    return out;
}

static PyMethodDef frames_functions[] = {
    {"take_owned", (PyCFunction)(void (*)(void))take_owned, METH_FASTCALL,
     "take_owned(stream, most=0) -> [bytes | Frame]: Stream.take(), the large frames not "
     "copied; at most `most` frames when above 0."},
    {NULL, NULL, 0, NULL},
};

int host_frames_add(PyObject *m)
{
    if (PyType_Ready(&FrameType) < 0 || PyModule_AddFunctions(m, frames_functions) < 0 ||
        PyModule_AddObjectRef(m, "Frame", (PyObject *)&FrameType) < 0 ||
        PyModule_AddIntConstant(m, "OWNED_MIN_BYTES", OWNED_MIN_BYTES) < 0)
        return -1;
    return 0;
}
