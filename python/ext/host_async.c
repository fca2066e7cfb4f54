/*
 * The asyncio client's completions in C (host_ext.h, docs/python.md):
 * drain(host, fast, max_frame) runs one turn of the host (molt_db_host_poll, as
 * news(0.0) does) and hands out what arrived.
 *
 * fast maps a Stream to the asyncio Future of a one-shot call (one
 * request, one final frame) that waits for it. For such a stream whose
 * future is still pending, the frames are taken here: the first one
 * becomes the future's result; any later one is dropped (a one-shot call
 * reads one frame, as the general path does); once its last frame was
 * taken, the stream is released and leaves fast. A plain Ok answer (up to
 * max_frame bytes; the keys request_id, status, codec msgpack or json,
 * payload, metrics of int and str values, and no other) is given as the
 * tuple (codec, payload, metrics, request_id), read here with every
 * length checked against the frame; any other frame as its bytes, which
 * the Python side decodes as the general path does.
 * Every other stream with news (a stream, a cancel, a transaction call,
 * or a fast one whose future is done: its task was cancelled) is
 * returned untouched, for the general code (AsyncHostExchange.hand_out).
 *
 * Called on the event loop's thread with the GIL held, as every call on a
 * driven host is.
 */
#include "host_ext.h"

#include <limits.h>
#include <string.h>

/* ---- a plain Ok answer, read in place ---- */

typedef struct {
    const uint8_t *p, *end;
} reader;

/* The big-endian unsigned integer of w bytes at r->p (consumed); -1 when
 * fewer are left. */
static int read_be(reader *r, size_t w, uint64_t *v)
{
    if ((size_t)(r->end - r->p) < w)
        return -1;
    *v = 0;
    for (size_t i = 0; i < w; i++)
        *v = *v << 8 | r->p[i];
    r->p += w;
    return 0;
}

/* A str, bin or map header: its length (bytes or pairs); -1 when the next
 * value is not of that kind or does not fit. kind: 's', 'b' or 'm'. */
static int read_head(reader *r, int kind, uint64_t *n)
{
    if (r->p >= r->end)
        return -1;
    uint8_t t = *r->p++;
    size_t w;
    if (kind == 's' && (t & 0xe0) == 0xa0) {
        *n = t & 0x1f;
        w = 0;
    } else if (kind == 'm' && (t & 0xf0) == 0x80) {
        *n = t & 0x0f;
        w = 0;
    } else if (kind == 's' && t >= 0xd9 && t <= 0xdb) {
        w = (size_t)1 << (t - 0xd9);
    } else if (kind == 'b' && t >= 0xc4 && t <= 0xc6) {
        w = (size_t)1 << (t - 0xc4);
    } else if (kind == 'm' && (t == 0xde || t == 0xdf)) {
        w = t == 0xde ? 2 : 4;
    } else {
        return -1;
    }
    if (w > 0 && read_be(r, w, n) < 0)
        return -1;
    /* a str or bin must fit; a map's pairs are checked as they are read */
    return kind == 'm' || *n <= (uint64_t)(r->end - r->p) ? 0 : -1;
}

/* A str's bytes, within the frame; -1 when the next value is not one. */
static int read_str(reader *r, const char **s, size_t *n)
{
    uint64_t len;
    if (read_head(r, 's', &len) < 0)
        return -1;
    *s = (const char *)r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

static int str_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* An integer (any MsgPack int that fits a long long); -1 when the next
 * value is not one. */
static int read_int(reader *r, long long *v)
{
    if (r->p >= r->end)
        return -1;
    uint8_t t = *r->p++;
    uint64_t u;
    if (t <= 0x7f) {
        *v = t;
        return 0;
    }
    if (t >= 0xe0) {
        *v = (int8_t)t;
        return 0;
    }
    if (t >= 0xcc && t <= 0xcf) {
        if (read_be(r, (size_t)1 << (t - 0xcc), &u) < 0 || u > (uint64_t)LLONG_MAX)
            return -1;
        *v = (long long)u;
        return 0;
    }
    if (t >= 0xd0 && t <= 0xd3) {
        size_t w = (size_t)1 << (t - 0xd0);
        if (read_be(r, w, &u) < 0)
            return -1;
        if (w < 8 && (u >> (8 * w - 1)) & 1) /* sign-extend */
            u |= ~(uint64_t)0 << (8 * w);
        *v = (long long)u;
        return 0;
    }
    return -1;
}

/* The metrics map (int and str values) as a new dict; NULL without an
 * exception when it is something else, with one when memory ran out. */
static PyObject *read_metrics(reader *r)
{
    uint64_t pairs;
    if (read_head(r, 'm', &pairs) < 0 || pairs > (uint64_t)(r->end - r->p) / 2)
        return NULL;
    PyObject *d = PyDict_New();
    for (uint64_t i = 0; d != NULL && i < pairs; i++) {
        const char *k;
        size_t kn;
        long long iv;
        PyObject *key = NULL, *val = NULL;
        if (read_str(r, &k, &kn) < 0)
            goto other;
        if (r->p < r->end && ((*r->p & 0xe0) == 0xa0 || (*r->p >= 0xd9 && *r->p <= 0xdb))) {
            const char *sv;
            size_t sn;
            if (read_str(r, &sv, &sn) < 0)
                goto other;
            val = PyUnicode_DecodeUTF8(sv, (Py_ssize_t)sn, NULL);
        } else if (read_int(r, &iv) == 0) {
            val = PyLong_FromLongLong(iv);
        } else {
            goto other;
        }
        key = val ? PyUnicode_DecodeUTF8(k, (Py_ssize_t)kn, NULL) : NULL;
        if (key == NULL || PyDict_SetItem(d, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            /* bad UTF-8 is left to the general decoder; memory is not */
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                goto other;
            }
            Py_CLEAR(d);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(val);
        continue;
    other:
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* 1 with *out = (codec, payload, metrics, request_id) when the frame is a
 * plain Ok answer (the top of this file), 0 when it is anything else, -1
 * with an exception. */
static int plain_ok(const uint8_t *frame, size_t len, PyObject **out)
{
    reader r = {frame, frame + len};
    uint64_t keys;
    if (read_head(&r, 'm', &keys) < 0 || keys > 5)
        return 0;
    const char *codec = NULL;
    size_t codec_n = 0;
    const uint8_t *payload = NULL;
    uint64_t payload_n = 0;
    long long rid = -1;
    int ok = 0;
    PyObject *metrics = NULL;
    for (uint64_t i = 0; i < keys; i++) {
        const char *k, *v;
        size_t kn, vn;
        if (read_str(&r, &k, &kn) < 0)
            goto other;
        if (str_is(k, kn, "request_id") && rid < 0) {
            if (read_int(&r, &rid) < 0 || rid < 0)
                goto other;
        } else if (str_is(k, kn, "status") && !ok) {
            if (read_str(&r, &v, &vn) < 0 || !str_is(v, vn, "Ok"))
                goto other;
            ok = 1;
        } else if (str_is(k, kn, "codec") && codec == NULL) {
            if (read_str(&r, &codec, &codec_n) < 0 ||
                !(str_is(codec, codec_n, "msgpack") || str_is(codec, codec_n, "json")))
                goto other;
        } else if (str_is(k, kn, "payload") && payload == NULL) {
            if (read_head(&r, 'b', &payload_n) < 0)
                goto other;
            payload = r.p;
            r.p += payload_n;
        } else if (str_is(k, kn, "metrics") && metrics == NULL) {
            metrics = read_metrics(&r);
            if (metrics == NULL)
                return PyErr_Occurred() ? -1 : 0;
        } else {
            goto other;
        }
    }
    if (!ok || codec == NULL || payload == NULL || rid < 0 || r.p != r.end)
        goto other;
    if (metrics == NULL && (metrics = PyDict_New()) == NULL)
        return -1;
    *out = Py_BuildValue("(s#y#NL)", codec, (Py_ssize_t)codec_n, (const char *)payload,
                         (Py_ssize_t)payload_n, metrics, rid);
    return *out == NULL ? -1 : 1;
other:
    Py_XDECREF(metrics);
    return 0;
}

/* Takes the frames of st, a fast stream whose future fut is pending: 0,
 * or -1 with an exception (the frame taken so far is lost; the caller's
 * exchange then fails every call, as a broken stream does). */
static int complete_fast(StreamObject *st, PyObject *fut, PyObject *fast, size_t max_frame)
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
        PyObject *b = NULL;
        int plain = len <= max_frame ? plain_ok(frame, len, &b) : 0;
        if (plain < 0)
            return -1;
        if (!plain && (b = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)len)) == NULL)
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
            PyObject *fut = PyDict_GetItemWithError(fast, (PyObject *)st);
            int general = 1, rc = 0;
            if (fut != NULL && st->s != NULL && !st->done) {
                Py_INCREF(fut);
                int d = future_done(fut);
                rc = d < 0 ? -1 : d ? 0 : complete_fast(st, fut, fast, max_frame);
                Py_DECREF(fut);
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
     "fast ({Stream: Future}) get their final frame as the future's result (a plain Ok "
     "answer as (codec, payload, metrics, request_id), else its bytes); the other streams "
     "with news are returned."},
    {NULL, NULL, 0, NULL},
};

int host_async_add(PyObject *m)
{
    return PyModule_AddFunctions(m, async_functions);
}
