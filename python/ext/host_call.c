/*
 * The blocking in-process client's one-shot call in two C calls
 * (docs/python.md "The fast path"), for a driven host:
 *
 * - submit_call(host, session, request_id, entry, payload, timeout_ms)
 *   packs the envelope in C (host_envelope.h) and submits it in the
 *   session: a Stream, or None when the payload holds a value left to
 *   msgpack (the caller then takes the general path).
 * - wait_final(stream, request_id, wait_s, max_frame) drives the host on
 *   the calling thread (its turns under the GIL, its waits without) until
 *   the stream's frame arrives, and answers with
 *     (codec, payload, metrics)  the final frame was Ok: the stream is
 *                                released, the caller builds the result;
 *     bytes or a Frame           any other frame (an error status, a
 *                                frame that is not final, another
 *                                request_id, a large or oversized frame),
 *                                for the general path's routing;
 *     [Stream, ...]              other streams have news too (or the
 *                                stream ended without a frame): the
 *                                general path hands them out;
 *     None                       wait_s ran out.
 *   An exception (KeyboardInterrupt from a signal handler, HostError)
 *   leaves the stream as it is. In every case but the first the caller
 *   gives the stream to the general path (which routes, cancels and
 *   releases as for any request).
 */
#include "host_envelope.h"
#include "host_ext.h"

#include "rows/mpread.h"

#include <string.h>

/* (host_ext.h) */
PyObject *ok_parts(const uint8_t *data, size_t len, uint64_t request_id)
{
    mp_reader r = {.p = data, .end = data + len, .depth = 0};
    PyObject *codec = NULL, *payload = NULL, *metrics = NULL, *out = NULL;
    int ok = 0, other = 0, named = 0;
    uint32_t n;
    if (mp_peek(&r) != MP_MAP || mp_map_header(&r, &n) < 0)
        goto other;
    for (uint32_t i = 0; i < n && !other; i++) {
        const char *key, *s;
        uint32_t kn, sn;
        if (mp_peek(&r) != MP_STR || mp_str(&r, &key, &kn) < 0)
            goto other;
#define KEY(name) (kn == sizeof(name) - 1 && memcmp(key, name, kn) == 0)
        if (KEY("status")) {
            if (mp_peek(&r) != MP_STR || mp_str(&r, &s, &sn) < 0)
                goto other;
            ok = sn == 2 && memcmp(s, "Ok", 2) == 0;
            other = !ok;
            continue;
        }
        PyObject **slot = KEY("codec") ? &codec : KEY("payload") ? &payload
                        : KEY("metrics") ? &metrics : NULL;
        int is_rid = KEY("request_id"), is_more = KEY("more");
#undef KEY
        if (slot == NULL && !is_rid && !is_more) {
            if (mp_skip(&r) < 0)
                goto other;
            continue;
        }
        PyObject *v = mp_value(&r);
        if (v == NULL)
            goto other;
        if (is_rid) {
            unsigned long long rid = PyLong_CheckExact(v) ? PyLong_AsUnsignedLongLong(v) : 0;
            if (rid == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear(); /* negative or too large: not this request's */
                rid = 0;
            }
            named = 1;
            other = rid != request_id; /* 0 (not named) goes the general way too */
            Py_DECREF(v);
        } else if (is_more) {
            other = PyObject_IsTrue(v) != 0; /* a part, not the final frame */
            Py_DECREF(v);
        } else {
            Py_XSETREF(*slot, v);
        }
    }
    if (other || !ok || !named || r.p != r.end)
        goto other;
    if (codec != NULL && codec != Py_None && !PyUnicode_CheckExact(codec))
        goto other;
    if (payload != NULL && payload != Py_None && !PyBytes_CheckExact(payload))
        goto other;
    if (payload == NULL || payload == Py_None)
        Py_XSETREF(payload, PyBytes_FromStringAndSize(NULL, 0));
    if (metrics == NULL || !PyDict_CheckExact(metrics) || PyDict_GET_SIZE(metrics) == 0)
        Py_XSETREF(metrics, PyDict_New()); /* decode_response: metrics or {} */
    if (payload != NULL && metrics != NULL)
        out = PyTuple_Pack(3, codec != NULL ? codec : Py_None, payload, metrics);
    goto done;
other:
    /* anything mp_value refused (a bad length, an unhashable key, an
     * out-of-range timestamp) is the general path's to report; only a
     * failed allocation is raised */
    if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_MemoryError))
        goto done;
    PyErr_Clear();
    out = Py_NewRef(Py_None);
done:
    Py_XDECREF(codec);
    Py_XDECREF(payload);
    Py_XDECREF(metrics);
    return out;
}

/* submit_call(host, session, request_id, entry, payload, timeout_ms) */
static PyObject *submit_call(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 6 || !PyObject_TypeCheck(args[0], &HostType)) {
        PyErr_SetString(PyExc_TypeError,
                        "submit_call(host, session, request_id, entry, payload, timeout_ms)");
        return NULL;
    }
    HostObject *host = (HostObject *)args[0];
    unsigned long long session = PyLong_AsUnsignedLongLong(args[1]);
    if (session == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    unsigned long long rid = PyLong_AsUnsignedLongLong(args[2]);
    if (rid == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (host_usable(host) < 0)
        return NULL;
    env_buf env;
    env_buf_init(&env);
    int rc = envelope_pack(&env, (uint64_t)rid, args[3], args[4], args[5]);
    if (rc != 0) {
        env_buf_free(&env);
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *st = host_submit_in(host, (uint64_t)session, env.data, env.len, 0);
    env_buf_free(&env);
    return st;
}

/* The stream's frame as wait_final answers it (see the top); NULL with an
 * exception; Py_NotImplemented (borrowed) when no frame is ready yet. */
static PyObject *take_final(StreamObject *st, uint64_t rid, size_t max_frame)
{
    molt_db_host_frame *owned;
    const uint8_t *data;
    size_t len;
    int rc = molt_db_host_next_owned(st->s, &owned, &data, &len);
    if (rc == 0)
        return Py_NotImplemented;
    if (rc == MOLT_DB_HOST_DONE) { /* ended without a frame for us */
        st->done = 1;
        PyObject *out = PyList_New(1);
        if (out != NULL)
            PyList_SET_ITEM(out, 0, Py_NewRef((PyObject *)st));
        return out;
    }
    if (len >= OWNED_MIN_BYTES || len > max_frame)
        return frame_item(owned, data, len);
    PyObject *parts = ok_parts(data, len, rid);
    if (parts != Py_None) {
        molt_db_host_frame_free(owned);
        if (parts != NULL) {
            st->done = 1; /* the final frame: nothing follows it */
            stream_drop(st);
        }
        return parts;
    }
    Py_DECREF(parts);
    return frame_item(owned, data, len);
}

/* Every stream with news (the host's ready list, drained), first the ones
 * in ready[0..got). */
static PyObject *ready_list(HostObject *host, void **ready, size_t got)
{
    /* the pointers in ready[] hold no reference, and making the list may
     * run the collector (and a finalizer dropping a stream): hold them */
    for (size_t i = 0; i < got; i++)
        Py_INCREF((PyObject *)ready[i]);
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out != NULL && i < got; i++) {
        if (PyList_Append(out, (PyObject *)ready[i]) < 0)
            Py_CLEAR(out);
    }
    for (size_t i = 0; i < got; i++)
        Py_DECREF((PyObject *)ready[i]);
    if (out == NULL)
        return NULL;
    got = got == 64 ? molt_db_host_ready(host->h, ready, 64) : 0;
    while (got > 0) {
        for (size_t i = 0; i < got; i++) {
            if (PyList_Append(out, (PyObject *)ready[i]) < 0) {
                Py_CLEAR(out);
                return NULL;
            }
        }
        got = got == 64 ? molt_db_host_ready(host->h, ready, 64) : 0;
    }
    return out;
}

/* wait_final(stream, request_id, wait_s, max_frame) */
static PyObject *wait_final(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 4 || !PyObject_TypeCheck(args[0], &StreamType)) {
        PyErr_SetString(PyExc_TypeError, "wait_final(stream, request_id, wait_s, max_frame)");
        return NULL;
    }
    StreamObject *st = (StreamObject *)args[0];
    unsigned long long rid = PyLong_AsUnsignedLongLong(args[1]);
    double wait_s = PyFloat_AsDouble(args[2]);
    Py_ssize_t max_frame = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    HostObject *host = st->host;
    if (stream_takeable(st) < 0)
        return NULL;
    if (!host->driven || st->done || max_frame < 0) {
        PyErr_SetString(PyExc_ValueError, "wait_final() takes an unfinished stream of a driven host");
        return NULL;
    }
    double deadline = host_now_s() + (wait_s > 0 ? wait_s : 0);
    for (;;) {
        if (molt_db_host_poll(host->h, 0) < 0) {
            PyErr_SetString(HostError, "the molt_db host is closed");
            return NULL;
        }
        void *ready[64];
        size_t got = molt_db_host_ready(host->h, ready, 64);
        if (got == 1 && ready[0] == (void *)st) {
            PyObject *out = take_final(st, (uint64_t)rid, (size_t)max_frame);
            if (out != Py_NotImplemented)
                return out;
        } else if (got > 0) {
            return ready_list(host, ready, got);
        }
        int ms = host_timeout_ms_of(deadline - host_now_s());
        if (ms == 0)
            Py_RETURN_NONE;
        int due = molt_db_host_timeout(host->h);
        if (due == 0) { /* more work now: let other threads have the GIL a moment */
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
            if (PyErr_CheckSignals() < 0 || host_usable(host) < 0)
                return NULL;
            continue;
        }
        if (due > 0 && due < ms)
            ms = due;
        if (host_wait(host, ms) < 0)
            return NULL;
    }
}

/* ok_frame(frame, request_id): ok_parts on given bytes, so that tests can
 * feed it frames the host never makes. */
static PyObject *ok_frame(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "ok_frame(frame: bytes, request_id: int)");
        return NULL;
    }
    unsigned long long rid = PyLong_AsUnsignedLongLong(args[1]);
    if (rid == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return ok_parts((const uint8_t *)PyBytes_AS_STRING(args[0]),
                    (size_t)PyBytes_GET_SIZE(args[0]), (uint64_t)rid);
}

static PyMethodDef call_functions[] = {
    {"ok_frame", (PyCFunction)(void (*)(void))ok_frame, METH_FASTCALL,
     "ok_frame(frame, request_id) -> (codec, payload, metrics) | None: what the fast paths "
     "read from a final frame (None: the general path's)."},
    {"submit_call", (PyCFunction)(void (*)(void))submit_call, METH_FASTCALL,
     "submit_call(host, session, request_id, entry, payload, timeout_ms) -> Stream | None: "
     "the envelope packed in C and submitted; None when msgpack must pack it."},
    {"wait_final", (PyCFunction)(void (*)(void))wait_final, METH_FASTCALL,
     "wait_final(stream, request_id, wait_s, max_frame) -> (codec, payload, metrics) | "
     "bytes | Frame | [Stream] | None: drives the host until the stream's final frame."},
    {NULL, NULL, 0, NULL},
};

int host_call_add(PyObject *m)
{
    if (mp_init() < 0 || host_envelope_add(m) < 0)
        return -1;
    return PyModule_AddFunctions(m, call_functions);
}
