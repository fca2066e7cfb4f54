/*
 * The asyncio client's one-shot calls in C (host_ext.h, docs/python.md):
 *
 * - submit_fast(host, session, request_id, entry, payload, timeout_ms,
 *   fast, loop, deadline) packs and submits the call as submit_call
 *   (host_call.c) does and enters its stream in fast with the Waiter
 *   (host_waiter.c) the call awaits; the Waiter, or None when the payload
 *   holds a value left to msgpack (the general path takes it).
 * - submit_plain(host, session, client, sql, params, write, fast, loop,
 *   scan, default_timeout_ms) makes query(sql, params) (write: execute)
 *   with every option at its default up to the await, as Caller.plain
 *   (host_call.c) does for the blocking client, and enters its stream in
 *   fast as submit_fast does.
 * - drain(host, fast, max_frame, woken, plain) runs one turn of the host
 *   (molt_db_host_poll, as news(0.0) does) and hands out what arrived.
 *
 * fast maps the Stream of a one-shot call (one request, one final frame)
 * to its Waiter. For such a stream whose waiter is still pending, drain
 * takes the frames: the first one completes the waiter, which joins
 * woken (wake() runs its task's wakeup after the turn); any later one is
 * dropped (a one-shot call reads one frame, as the general path does);
 * once its last frame was taken, the stream is released and leaves fast.
 * A stream that ends with its waiter still pending (the host closed the
 * session under it: write_timeout_ms, max_unread_bytes) calls the third
 * of plain, the exchange's way to fail (its waiters then get the
 * ConnectionLost), instead of leaving the call to its deadline.
 * An Ok final frame for that request_id of up to max_frame bytes is given
 * as its parts (codec, payload, metrics), read by ok_parts (host_call.c,
 * as the blocking client's fast path reads it); for a plain query's
 * waiter (submit_plain) as its finished QueryResult instead, made with
 * plain's first two, (QueryResult, c_rows), as Caller.plain makes it (rows decoded,
 * metrics a lazy _host.Metrics), so the task has nothing left to decode;
 * any other frame as its bytes, which the Python side decodes as the
 * general path does.
 * Every other stream with news (a stream, a cancel, a transaction call,
 * or a fast one whose waiter is done: its task was cancelled or its
 * deadline passed) is returned untouched, for the general code
 * (AsyncHostExchange.hand_out). A stream released meanwhile (by code the
 * cyclic GC ran inside drain) is skipped, and a host closed meanwhile ends
 * drain with HostError (the waiters completed before that stay in woken).
 *
 * Called on the event loop's thread with the GIL held, as every call on a
 * driven host is.
 */
#include "host_envelope.h"
#include "host_ext.h"

#include <string.h>

/* Removes st from fast; already gone (code run by the collector took it
 * out) is no error. 0, or -1 with an exception. */
static int fast_forget(PyObject *fast, StreamObject *st)
{
    if (PyDict_DelItem(fast, (PyObject *)st) == 0)
        return 0;
    if (!PyErr_ExceptionMatches(PyExc_KeyError))
        return -1;
    PyErr_Clear();
    return 0;
}

/* parts (taken) as the QueryResult of a plain query with request id rid
 * (query_result_of with plain's QueryResult and c_rows); parts themselves when
 * the codec is not a query's (the general path reports it). NULL with an
 * exception. */
static PyObject *query_result_from_parts(PyObject *parts, uint64_t rid, PyObject *decoding,
                                         PyObject *plain)
{
    PyObject *id = PyLong_FromUnsignedLongLong(rid);
    PyObject *r = id != NULL ? query_result_of(PyTuple_GET_ITEM(plain, 0),
                                               PyTuple_GET_ITEM(plain, 1), parts, id, decoding)
                             : NULL;
    Py_XDECREF(id);
    if (r == Py_None) {
        Py_DECREF(r);
        return parts;
    }
    Py_DECREF(parts);
    return r;
}

/* Takes the frames of st, a fast stream whose waiter w was pending: 0, or
 * -1 with an exception (the frame taken so far is lost; the caller's
 * exchange then fails every call, as a broken stream does).
 *
 * Building a frame's objects may run the cyclic GC, and a finalizer may
 * then run any Python (as may QueryResult() and the row decoder of a plain
 * query's result): close the host, release st, cancel w, or run a turn of
 * its own. So each frame is taken owned (valid whatever happens to st
 * and the host) and freed once read; before each call on st the host is
 * checked (closed: HostError) and st too (released: nothing more to take);
 * w is completed only while still pending. */
static int complete_fast(StreamObject *st, PyObject *w, PyObject *fast, size_t max_frame,
                         PyObject *woken, PyObject *plain)
{
    uint64_t rid = waiter_rid(w);
    PyObject *decoding = waiter_decoding(w); /* a plain query's: its QueryResult made here */
    for (;;) {
        if (host_usable(st->host) < 0)
            return -1;
        if (st->s == NULL || st->done)
            return 0; /* released (or finished) by code the collector ran */
        molt_db_host_frame *owned;
        const uint8_t *frame;
        size_t len;
        int rc = molt_db_host_next_owned(st->s, &owned, &frame, &len);
        if (rc == 0)
            return 0; /* more to come in a later turn */
        if (rc == MOLT_DB_HOST_DONE)
            break;
        if (!waiter_pending(w)) { /* answered already, or cancelled */
            molt_db_host_frame_free(owned);
            continue;
        }
        PyObject *b = NULL;
        if (len > (size_t)PY_SSIZE_T_MAX)
            PyErr_NoMemory();
        else if (len > max_frame ||
                 (b = ok_parts(frame, len, rid, decoding != NULL)) == Py_None) {
            Py_XDECREF(b);
            b = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)len);
        }
        molt_db_host_frame_free(owned);
        if (b != NULL && decoding != NULL && PyTuple_CheckExact(b))
            b = query_result_from_parts(b, rid, decoding, plain);
        if (b == NULL)
            return -1;
        rc = waiter_pending(w) ? waiter_complete(w, b, woken) : 0;
        Py_DECREF(b);
        if (rc < 0)
            return -1;
    }
    st->done = 1;
    if (waiter_pending(w)) { /* ended without its answer: the session is gone */
        PyObject *r = PyObject_CallNoArgs(PyTuple_GET_ITEM(plain, 2));
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    /* released before it leaves fast, whose reference may be its last */
    stream_drop(st);
    return fast_forget(fast, st);
}

/* drain(host, fast, max_frame, woken, plain) -> [Stream]: see the top of
 * this file. */
static PyObject *drain(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 5 || !PyObject_TypeCheck(args[0], &HostType) || !PyDict_CheckExact(args[1]) ||
        !PyLong_Check(args[2]) || !PyList_CheckExact(args[3]) || !PyTuple_CheckExact(args[4]) ||
        PyTuple_GET_SIZE(args[4]) != 3) {
        PyErr_SetString(PyExc_TypeError, "drain(host, fast, max_frame, woken, plain) takes a Host, "
                                         "a dict, an int, a list, (QueryResult, c_rows, ended)");
        return NULL;
    }
    HostObject *host = (HostObject *)args[0];
    PyObject *fast = args[1], *woken = args[3], *plain = args[4];
    size_t max_frame = PyLong_AsSize_t(args[2]);
    if (max_frame == (size_t)-1 && PyErr_Occurred())
        return NULL;
    if (host_usable(host) < 0 || host_may_drive(host) < 0)
        return NULL;
    molt_db_host_poll(host->h, 0);
    PyObject *rest = PyList_New(0);
    if (rest == NULL)
        return NULL;
    void *ready[64];
    size_t got;
    do {
        /* the collector may have run code that closed the host: checked
         * before every call on it */
        if (host_usable(host) < 0) {
            Py_DECREF(rest);
            return NULL;
        }
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
            int rc = 0;
            if (entry != NULL && !PyObject_TypeCheck(entry, &WaiterType)) {
                PyErr_SetString(PyExc_TypeError, "drain(): fast maps a Stream to a Waiter");
                rc = -1;
            } else if (entry == NULL && PyErr_Occurred()) {
                rc = -1;
            } else if (st->s == NULL || st->done) {
                /* released (or finished) meanwhile by code the collector
                 * ran: nothing of it to hand out */
            } else if (entry != NULL && waiter_pending(entry)) {
                Py_INCREF(entry); /* fast's reference goes with the stream */
                rc = complete_fast(st, entry, fast, max_frame, woken, plain);
                Py_DECREF(entry);
            } else {
                rc = PyList_Append(rest, (PyObject *)st);
            }
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

/* the module's submit_call (host_call.c), which packs and submits */
static PyObject *submit_call_fn;

/* Enters st (a new reference, taken) in fast with a new Waiter for request
 * rid due at deadline (decoding: a plain query's, else NULL): the Waiter,
 * or NULL with an exception (st released: its request ends in the host). */
static PyObject *enter_fast(PyObject *st, PyObject *fast, PyObject *loop, unsigned long long rid,
                            double deadline, PyObject *decoding)
{
    PyObject *w = waiter_new(loop, st, rid, deadline, decoding);
    if (w == NULL || PyDict_SetItem(fast, st, w) < 0) {
        stream_drop((StreamObject *)st);
        Py_DECREF(st);
        Py_XDECREF(w);
        return NULL;
    }
    Py_DECREF(st);
    return w;
}

/* submit_fast(host, session, request_id, entry, payload, timeout_ms, fast,
 * loop, deadline) -> Waiter or None: see the top of this file. */
static PyObject *submit_fast(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 9 || !PyDict_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "submit_fast(host, session, request_id, entry, payload, "
                                         "timeout_ms, fast, loop, deadline)");
        return NULL;
    }
    unsigned long long rid = PyLong_AsUnsignedLongLong(args[2]);
    if (rid == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    double deadline = PyFloat_AsDouble(args[8]);
    if (deadline == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *st = PyObject_Vectorcall(submit_call_fn, args, 6, NULL);
    if (st == NULL || st == Py_None)
        return st;
    return enter_fast(st, args[6], args[7], rid, deadline, NULL);
}

/* "_ids": the client's iterator of request ids */
static PyObject *str_ids;

/* The next request id of client's _ids: 0, or -1 with an exception. */
static int next_request_id(PyObject *client, unsigned long long *id)
{
    PyObject *ids = PyObject_GetAttr(client, str_ids);
    PyObject *rid = ids != NULL ? PyIter_Next(ids) : NULL;
    Py_XDECREF(ids);
    if (rid == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "the client's request ids ran out");
        return -1;
    }
    *id = PyLong_AsUnsignedLongLong(rid);
    Py_DECREF(rid);
    return *id == (unsigned long long)-1 && PyErr_Occurred() ? -1 : 0;
}

/* submit_plain(host, session, client, sql, params, write, fast, loop, scan,
 * default_timeout_ms) -> Waiter or None: the whole of query(sql, params)
 * (write: execute) with every option at its default up to the await, as
 * Caller.plain (host_call.c) makes it for the blocking client: the
 * client's settings read (plain_settings_read), its payload packed from
 * sql and params (host_params.c), the request id taken from client._ids,
 * the envelope submitted and its stream entered in fast, a query's waiter
 * with the client's decoding (drain makes its QueryResult). None (nothing
 * submitted) for a client with hooks and for what the packer leaves to
 * the general path. */
static PyObject *submit_plain(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 10 || !PyObject_TypeCheck(args[0], &HostType) || !PyDict_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "submit_plain(host, session, client, sql, params, write, "
                                         "fast, loop, scan, default_timeout_ms)");
        return NULL;
    }
    double start = host_now_s();
    HostObject *host = (HostObject *)args[0];
    unsigned long long session = PyLong_AsUnsignedLongLong(args[1]);
    if (session == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int write = PyObject_IsTrue(args[5]);
    double default_timeout_ms = write < 0 ? -1.0 : PyFloat_AsDouble(args[9]);
    if (default_timeout_ms == -1.0 && PyErr_Occurred())
        return NULL;
    plain_settings ps;
    int got = plain_settings_read(&ps, args[2], default_timeout_ms);
    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *out = NULL;
    env_buf payload, env;
    env_buf_init(&payload);
    env_buf_init(&env);
    unsigned long long id = 0;
    int rc = plain_payload_pack(&payload, args[3], args[4], ps.a[PS_DB_ALIAS], write, args[8]);
    if (rc == 0)
        rc = next_request_id(args[2], &id);
    const char *entry = write ? "db_exec" : "db_query";
    if (rc == 0)
        rc = envelope_write(&env, (uint64_t)id, entry, strlen(entry), &payload,
                            ps.a[PS_TIMEOUT_MS]);
    /* packing may have run Python (the placeholder scan): checked now */
    if (rc == 0 && host_usable(host) < 0)
        rc = -1;
    PyObject *st = rc == 0 ? host_submit_in(host, (uint64_t)session, env.data, env.len, 0) : NULL;
    env_buf_free(&payload);
    env_buf_free(&env);
    if (st != NULL)
        out = enter_fast(st, args[6], args[7], id, start + (ps.wait_s > 0 ? ps.wait_s : 0),
                         write ? NULL : ps.a[PS_DECODING]);
    else if (rc == ENV_LEAVE)
        out = Py_NewRef(Py_None);
    plain_settings_clear(&ps);
    return out;
}

static PyMethodDef async_functions[] = {
    {"drain", (PyCFunction)(void (*)(void))drain, METH_FASTCALL,
     "drain(host, fast, max_frame, woken, plain) -> [Stream]: one turn of the host; the "
     "one-shot calls in fast ({Stream: Waiter}) get their final frame as the waiter's result "
     "(an Ok answer as (codec, payload, metrics), a plain query's as its QueryResult made with "
     "plain = (QueryResult, c_rows, ended), else its bytes) and join woken; ended() is called "
     "for a call whose stream ends unanswered; the other streams with news are returned."},
    {"submit_fast", (PyCFunction)(void (*)(void))submit_fast, METH_FASTCALL,
     "submit_fast(host, session, request_id, entry, payload, timeout_ms, fast, loop, deadline) "
     "-> Waiter or None: a one-shot call packed and submitted, its stream entered in fast."},
    {"submit_plain", (PyCFunction)(void (*)(void))submit_plain, METH_FASTCALL,
     "submit_plain(host, session, client, sql, params, write, fast, loop, scan, "
     "default_timeout_ms) -> Waiter or None: query(sql, params) (write: execute) with every "
     "option at its default, made in C up to the await; None for the general path."},
    {NULL, NULL, 0, NULL},
};

int host_async_add(PyObject *m)
{
    if ((str_ids = PyUnicode_InternFromString("_ids")) == NULL)
        return -1;
    if ((submit_call_fn = PyObject_GetAttrString(m, "submit_call")) == NULL)
        return -1;
    return PyModule_AddFunctions(m, async_functions);
}
