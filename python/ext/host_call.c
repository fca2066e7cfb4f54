/*
 * The in-process clients' one-shot calls in C (docs/python.md "The fast
 * path"), for a driven host:
 *
 * - Caller (the blocking client, one per SyncHostExchange):
 *   plain(client, sql, params, write) makes query(sql, params) (write:
 *   execute) with every option at its default, its payload packed from sql
 *   and params (host_params.c); call(client, call, wait_s) makes any other
 *   one-shot Call, its payload packed by envelope_pack. Both take the
 *   exchange's leading lock without waiting (None, for the general path,
 *   when another thread drives), take the request id, submit the envelope
 *   and drive the host on the calling thread (a turn that waits, in the
 *   loop's epoll_wait, without the GIL) until the stream's frame arrives. An Ok final frame for
 *   the request becomes the result; anything else is handed to the
 *   general path at the point reached (_handover), and the caller gets
 *   (request, exception, wait_s, start) to go on from.
 * - submit_call(host, session, request_id, entry, payload, timeout_ms)
 *   packs the envelope in C (host_envelope.h) and submits it in the
 *   session: a Stream, or None when the payload holds a value left to
 *   msgpack (the asyncio client's short way, host_async.c).
 * - ok_parts reads an Ok final frame's (codec, payload, metrics) for both.
 */
#include "host_envelope.h"
#include "host_ext.h"

#include "rows/mpread.h"

#include <stddef.h>
#include <string.h>

#include <structmember.h>

/* A value of the final frame's map: strs through mp_short_str, and a map of
 * such keys and values (the metrics) built the same way; anything else
 * mp_value's. */
static PyObject *frame_value(mp_reader *r, int depth)
{
    const char *s;
    uint32_t n;
    if (mp_peek(r) == MP_STR)
        return mp_str(r, &s, &n) < 0 ? NULL : mp_short_str(s, n);
    if (mp_peek(r) != MP_MAP || depth > 0)
        return mp_value(r);
    if (mp_map_header(r, &n) < 0)
        return NULL;
    PyObject *out = PyDict_New();
    for (uint32_t i = 0; out != NULL && i < n; i++) {
        PyObject *k = frame_value(r, 1);
        PyObject *v = k != NULL ? frame_value(r, 1) : NULL;
        if (v == NULL || PyDict_SetItem(out, k, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return out;
}

/* (host_ext.h) */
PyObject *frame_map(const uint8_t *data, size_t len)
{
    mp_reader r = {.p = data, .end = data + len, .depth = 0};
    if (mp_peek(&r) != MP_MAP)
        return mp_error(&r, "a map was expected");
    PyObject *out = frame_value(&r, 0);
    if (out != NULL && r.p != r.end)
        Py_SETREF(out, mp_error(&r, "extra data after the map"));
    return out;
}

/* (host_ext.h) */
PyObject *ok_parts(const uint8_t *data, size_t len, uint64_t request_id, int lazy)
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
        PyObject *v = slot == &metrics && lazy ? lazy_map(&r.p, r.end) : NULL;
        if (v == Py_None) /* not kept lazily: made now */
            Py_CLEAR(v);
        else if (v == NULL && PyErr_Occurred())
            goto other;
        if (v == NULL)
            v = frame_value(&r, 0);
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
    if (metrics == NULL || (Py_TYPE(metrics) != &MetricsType &&
                            (!PyDict_CheckExact(metrics) || PyDict_GET_SIZE(metrics) == 0)))
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

/* The stream's frame: (codec, payload, metrics) when it is the Ok final
 * frame (the stream released); bytes or a Frame for any other frame (an
 * error status, a frame that is not final, another request_id, a large or
 * oversized frame), for the general path's routing; [Stream] when the
 * stream ended without a frame; NULL with an exception; Py_NotImplemented
 * (borrowed) when no frame is ready yet. */
static PyObject *take_final(StreamObject *st, uint64_t rid, size_t max_frame, int lazy)
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
    PyObject *parts = ok_parts(data, len, rid, lazy);
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
    while (got == 64) {
        /* the collector may have run above, and a finalizer closed the host */
        if (host_usable(host) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        got = molt_db_host_ready(host->h, ready, 64);
        for (size_t i = 0; i < got; i++) {
            if (PyList_Append(out, (PyObject *)ready[i]) < 0) {
                Py_CLEAR(out);
                return NULL;
            }
        }
    }
    return out;
}

/* The stream's frame as take_final gives it, driving the host on the
 * calling thread (host_drive: a turn that may wait runs without the GIL,
 * so that other threads go on meanwhile) until one is
 * there, other streams have news ([Stream, ...]) or deadline passed
 * (None); NULL with an exception (KeyboardInterrupt from a signal
 * handler, HostError), the stream left as it is. */
static PyObject *drive_final(StreamObject *st, uint64_t rid, double deadline, size_t max_frame,
                             int lazy)
{
    HostObject *host = st->host;
    for (;;) {
        /* no poll() of the fd first: the turn waits itself (host_drive) */
        int ms = host_timeout_ms_of(deadline - host_now_s());
        if (host_drive(host, ms) < 0)
            return NULL;
        void *ready[64];
        size_t got = molt_db_host_ready(host->h, ready, 64);
        if (got == 1 && ready[0] == (void *)st) {
            PyObject *out = take_final(st, rid, max_frame, lazy);
            if (out != Py_NotImplemented)
                return out;
        } else if (got > 0) {
            return ready_list(host, ready, got);
        }
        if (ms == 0)
            Py_RETURN_NONE;
    }
}

/* ok_frame(frame, request_id, lazy=False): ok_parts on given bytes, so
 * that tests can feed it frames the host never makes. */
static PyObject *ok_frame(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs < 2 || nargs > 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "ok_frame(frame: bytes, request_id: int, lazy: bool = False)");
        return NULL;
    }
    unsigned long long rid = PyLong_AsUnsignedLongLong(args[1]);
    if (rid == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int lazy = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (lazy < 0)
        return NULL;
    return ok_parts((const uint8_t *)PyBytes_AS_STRING(args[0]),
                       (size_t)PyBytes_GET_SIZE(args[0]), (uint64_t)rid, lazy);
}

/* ---- Caller: a one-shot call in one call into C ---- */

typedef struct {
    PyObject_HEAD
    PyObject *exchange;           /* the SyncHostExchange (its dead) */
    HostObject *host;
    uint64_t session;
    PyObject *acquire, *release;  /* its leading lock's */
    PyObject *followers;          /* its set of followers' queues */
    PyObject *held;               /* its held streams (a dict: flow control) */
    PyObject *handover, *refused; /* its _handover and _refused */
    PyObject *pass_turn, *keep_if_pending;
    PyObject *scan;               /* placeholders.scan_placeholders */
    PyObject *query_result;       /* results.QueryResult */
    PyObject *result_of;          /* calls.result_of */
    PyObject *connection_lost;    /* calls.ConnectionLost */
    PyObject *c_rows;             /* molt_db_adapter.c_rows (its decoder) */
    Py_ssize_t max_frame;
    double default_timeout_ms;    /* calls.WORKER_DEFAULT_TIMEOUT_MS */
    unsigned long long submitted; /* calls it submitted (tests count them) */
} CallerObject;

static PyObject *str_dead, *str_before_send, *str_after_recv, *str_db_alias, *str_timeout_ms,
    *str_decoding, *str_grace_ms, *str_client_timeout_s, *str_ids, *str_entry, *str_payload,
    *str_kind, *str_query, *str_exec, *str_json, *str_msgpack, *str_arrow_ipc, *str_decoder,
    *str_decode_result, *str_numeric, *str_decimal, *str_rows;
static PyObject *decode_kwnames; /* ("numeric_decimal", "parse_json") */

#define CALLER_FIELDS(X)                                                                   \
    X(exchange) X(host) X(acquire) X(release) X(followers) X(held) X(handover) X(refused)  \
    X(pass_turn) X(keep_if_pending) X(scan) X(query_result) X(result_of) X(connection_lost)    \
    X(c_rows)

static int caller_traverse(PyObject *self, visitproc visit, void *arg)
{
    CallerObject *c = (CallerObject *)self;
#define VISIT(f) Py_VISIT(c->f);
    CALLER_FIELDS(VISIT)
#undef VISIT
    return 0;
}

static int caller_clear(PyObject *self)
{
    CallerObject *c = (CallerObject *)self;
#define CLEAR(f) Py_CLEAR(c->f);
    CALLER_FIELDS(CLEAR)
#undef CLEAR
    return 0;
}

static void caller_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    caller_clear(self);
    Py_TYPE(self)->tp_free(self);
}

/* Caller(exchange, host, session, leading, followers, max_frame,
 *        scan_placeholders, QueryResult, result_of, ConnectionLost,
 *        default_timeout_ms, c_rows) */
static PyObject *caller_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *exchange, *host, *leading, *followers, *scan, *query_result, *result_of, *lost, *c_rows;
    unsigned long long session;
    Py_ssize_t max_frame;
    double default_timeout_ms;
    if (kw != NULL && PyDict_GET_SIZE(kw) > 0) {
        PyErr_SetString(PyExc_TypeError, "Caller() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO!KOO!nOOOOdO:Caller", &exchange, &HostType, &host, &session,
                          &leading, &PySet_Type, &followers, &max_frame, &scan, &query_result,
                          &result_of, &lost, &default_timeout_ms, &c_rows))
        return NULL;
    if (!((HostObject *)host)->driven || max_frame < 0) {
        PyErr_SetString(PyExc_ValueError, "Caller() takes a driven host and a max_frame >= 0");
        return NULL;
    }
    CallerObject *c = (CallerObject *)type->tp_alloc(type, 0);
    if (c == NULL)
        return NULL;
    c->exchange = Py_NewRef(exchange);
    c->host = (HostObject *)Py_NewRef(host);
    c->session = (uint64_t)session;
    c->followers = Py_NewRef(followers);
    c->scan = Py_NewRef(scan);
    c->query_result = Py_NewRef(query_result);
    c->result_of = Py_NewRef(result_of);
    c->connection_lost = Py_NewRef(lost);
    c->c_rows = Py_NewRef(c_rows);
    c->max_frame = max_frame;
    c->default_timeout_ms = default_timeout_ms;
    if ((c->held = PyObject_GetAttrString(exchange, "held")) == NULL ||
        (c->acquire = PyObject_GetAttrString(leading, "acquire")) == NULL ||
        (c->release = PyObject_GetAttrString(leading, "release")) == NULL ||
        (c->handover = PyObject_GetAttrString(exchange, "_handover")) == NULL ||
        (c->refused = PyObject_GetAttrString(exchange, "_refused")) == NULL ||
        (c->pass_turn = PyObject_GetAttrString(exchange, "_pass_turn")) == NULL ||
        (c->keep_if_pending = PyObject_GetAttrString(exchange, "_keep_if_pending")) == NULL) {
        Py_DECREF(c);
        return NULL;
    }
    if (!PyDict_CheckExact(c->held)) {
        PyErr_SetString(PyExc_TypeError, "Caller() takes an exchange whose held is a dict");
        Py_DECREF(c);
        return NULL;
    }
    return (PyObject *)c;
}

/* The exception being raised, normalized, with its traceback (a new
 * reference; the error indicator cleared). */
static PyObject *take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* What a lead under the lock came to. */
enum led { NOT_TAKEN, FINAL, HANDED };

/* The part of a call made under the exchange's leading lock: the request
 * id, the envelope, the submit and the wait. FINAL: the Ok final frame's
 * (codec, payload, metrics); HANDED: the stream handed to the general path,
 * (request, exception to raise after a cancel) from _handover, or (None,
 * ConnectionLost) when the host refused the request (_refused) or the
 * exchange ended before the stream was handed over; NOT_TAKEN:
 * None (a value of a kind msgpack packs: nothing was submitted); NULL with
 * an exception. *rid gets the request id. */
static PyObject *lead_locked(CallerObject *c, PyObject *ids, const char *entry, size_t entry_len,
                             const env_buf *payload, PyObject *timeout_ms, double deadline,
                             int is_query, enum led *led, PyObject **rid)
{
    *rid = PyIter_Next(ids);
    if (*rid == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "the client's request ids ran out");
        return NULL;
    }
    unsigned long long id = PyLong_AsUnsignedLongLong(*rid);
    if (id == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    env_buf env;
    env_buf_init(&env);
    int rc = envelope_write(&env, (uint64_t)id, entry, entry_len, payload, timeout_ms);
    if (rc != 0) {
        env_buf_free(&env);
        *led = NOT_TAKEN;
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *st = host_usable(c->host) < 0
                       ? NULL
                       : host_submit_in(c->host, c->session, env.data, env.len, 0);
    env_buf_free(&env);
    *led = HANDED;
    c->submitted += st != NULL;
    if (st == NULL) {
        if (!PyErr_ExceptionMatches(HostError))
            return NULL;
        PyObject *e = take_exception();
        PyObject *lost = e != NULL ? PyObject_CallOneArg(c->refused, e) : NULL;
        Py_XDECREF(e);
        if (lost == NULL)
            return NULL;
        PyObject *out = PyTuple_Pack(2, Py_None, lost);
        Py_DECREF(lost);
        return out;
    }
    PyObject *got = drive_final((StreamObject *)st, (uint64_t)id, deadline, (size_t)c->max_frame,
                                is_query);
    if (got != NULL && PyTuple_CheckExact(got)) {
        Py_DECREF(st); /* released by take_final */
        *led = FINAL;
        return got;
    }
    PyObject *exc = got == NULL ? take_exception() : NULL;
    if (got == NULL && exc == NULL) {
        Py_DECREF(st);
        return NULL;
    }
    PyObject *argv[] = {st, *rid, got != NULL ? got : Py_None, exc != NULL ? exc : Py_None};
    PyObject *out = PyObject_Vectorcall(c->handover, argv, 4, NULL);
    if (out == NULL && PyErr_ExceptionMatches(c->connection_lost)) {
        PyObject *lost = take_exception(); /* the exchange ended meanwhile */
        out = lost != NULL ? PyTuple_Pack(2, Py_None, lost) : NULL;
        Py_XDECREF(lost);
    }
    Py_DECREF(st);
    Py_XDECREF(got);
    Py_XDECREF(exc);
    return out;
}

/* After the lead: the lock released, a follower woken to drive, the
 * keeper started when the host has work pending (as fast paths' Python
 * callers did: _pass_turn, _keep_if_pending). An exception already set
 * stays the one raised. */
static int unlead(CallerObject *c)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PyObject_CallNoArgs(c->release);
    if (r != NULL && PySet_GET_SIZE(c->followers) > 0) {
        Py_DECREF(r);
        r = PyObject_CallNoArgs(c->pass_turn);
    }
    if (r != NULL && c->host->h != NULL && c->host->pid == host_this_pid() &&
        host_pending_now(c->host) > 0) {
        Py_DECREF(r);
        r = PyObject_CallNoArgs(c->keep_if_pending);
    }
    Py_XDECREF(r);
    if (type != NULL) {
        if (r == NULL)
            PyErr_WriteUnraisable(c->exchange);
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return r != NULL ? 0 : -1;
}

/* A msgpack query payload decoded by the C row decoder as
 * QueryResult._c_doc does it (c_rows.decoder.decode_result, the client's
 * decoding), done with the call rather than by the first read of the
 * rows: the doc, or Py_None when there is no C decoder, the decoder
 * declines the shape, the doc is not an exact dict with rows, or an
 * Exception comes on the way (a payload the decoder refuses, a decoding
 * whose values raise: the first read of the rows raises it, as before).
 * NULL with any other exception (no memory, KeyboardInterrupt). */
static PyObject *rows_now(PyObject *c_rows, PyObject *payload, PyObject *decoding)
{
    PyObject *decoder = PyObject_GetAttr(c_rows, str_decoder);
    if (decoder == Py_None)
        return decoder;
    PyObject *fn = decoder != NULL ? PyObject_GetAttr(decoder, str_decode_result) : NULL;
    PyObject *numeric = fn != NULL ? PyObject_GetAttr(decoding, str_numeric) : NULL;
    PyObject *json = numeric != NULL ? PyObject_GetAttr(decoding, str_json) : NULL;
    int as_decimal = json != NULL ? PyObject_RichCompareBool(numeric, str_decimal, Py_EQ) : -1;
    PyObject *doc = NULL;
    if (as_decimal >= 0) {
        PyObject *argv[] = {payload, Py_None, as_decimal ? Py_True : Py_False, json};
        doc = PyObject_Vectorcall(fn, argv, 2, decode_kwnames);
    }
    Py_XDECREF(decoder);
    Py_XDECREF(fn);
    Py_XDECREF(numeric);
    Py_XDECREF(json);
    if (doc == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception) || PyErr_ExceptionMatches(PyExc_MemoryError))
            return NULL;
        PyErr_Clear(); /* the first read of the rows meets it again, and raises it */
        return Py_NewRef(Py_None);
    }
    if (!PyDict_CheckExact(doc) || PyDict_GetItemWithError(doc, str_rows) == NULL) {
        Py_DECREF(doc);
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    return doc;
}

/* (host_ext.h) */
PyObject *query_result_of(PyObject *query_result, PyObject *c_rows, PyObject *parts, PyObject *rid,
                          PyObject *decoding)
{
    PyObject *codec = PyTuple_GET_ITEM(parts, 0);
    PyObject *payload = PyTuple_GET_ITEM(parts, 1);
    PyObject *metrics = PyTuple_GET_ITEM(parts, 2);
    if (!PyUnicode_CheckExact(codec))
        return Py_NewRef(Py_None);
    int msgpack = PyUnicode_Compare(codec, str_msgpack) == 0;
    if (!msgpack && PyUnicode_Compare(codec, str_json) != 0 &&
        PyUnicode_Compare(codec, str_arrow_ipc) != 0)
        return Py_NewRef(Py_None);
    PyObject *doc = msgpack ? rows_now(c_rows, payload, decoding) : Py_NewRef(Py_None);
    if (doc == NULL)
        return NULL;
    PyObject *argv[] = {codec, payload, metrics, rid, decoding, doc};
    PyObject *out = PyObject_Vectorcall(query_result, argv, 6, NULL);
    Py_DECREF(doc);
    return out;
}

/* The result of a call of kind (is_query: "query") from an Ok final
 * frame's parts: a QueryResult at once for a query's codec
 * (query_result_of), any other the way calls.result_of gives it (its
 * metrics a dict). */
static PyObject *result_from(CallerObject *c, int is_query, PyObject *kind, PyObject *decoding,
                             PyObject *rid, PyObject *parts)
{
    if (is_query) {
        PyObject *out = query_result_of(c->query_result, c->c_rows, parts, rid, decoding);
        if (out != Py_None)
            return out;
        Py_DECREF(out);
    }
    PyObject *codec = PyTuple_GET_ITEM(parts, 0);
    PyObject *payload = PyTuple_GET_ITEM(parts, 1);
    PyObject *metrics = PyTuple_GET_ITEM(parts, 2);
    PyObject *dict = Py_TYPE(metrics) == &MetricsType ? metrics_dict(metrics) : Py_NewRef(metrics);
    if (dict == NULL)
        return NULL;
    PyObject *argv[] = {kind, decoding, rid, codec, payload, dict};
    PyObject *out = PyObject_Vectorcall(c->result_of, argv, 6, NULL);
    Py_DECREF(dict);
    return out;
}

/* A call's lead: see Caller.plain. */
static PyObject *lead(CallerObject *c, PyObject *client, const char *entry, size_t entry_len,
                      const env_buf *payload, PyObject *timeout_ms, double wait_s, double start,
                      PyObject *kind, PyObject *decoding)
{
    PyObject *ids = PyObject_GetAttr(client, str_ids);
    if (ids == NULL)
        return NULL;
    PyObject *got = PyObject_CallOneArg(c->acquire, Py_False);
    if (got == NULL || got != Py_True) {
        Py_DECREF(ids);
        return got == NULL ? NULL : (Py_DECREF(got), Py_NewRef(Py_None));
    }
    Py_DECREF(got);
    if (PyDict_GET_SIZE(c->held) > 0) {
        /* streams' frames held in the host, which may have paused the
         * session's new requests: the general path lets them flow */
        Py_DECREF(ids);
        return unlead(c) < 0 ? NULL : Py_NewRef(Py_None);
    }
    enum led led = NOT_TAKEN;
    PyObject *rid = NULL;
    double deadline = start + (wait_s > 0 ? wait_s : 0);
    int is_query = PyUnicode_Compare(kind, str_query) == 0;
    got = lead_locked(c, ids, entry, entry_len, payload, timeout_ms, deadline, is_query, &led, &rid);
    Py_DECREF(ids);
    PyObject *out = NULL;
    if (unlead(c) < 0 || got == NULL)
        goto done;
    if (led == FINAL) {
        out = result_from(c, is_query, kind, decoding, rid, got);
    } else if (led == HANDED) {
        PyObject *w = PyFloat_FromDouble(wait_s), *s = PyFloat_FromDouble(start);
        if (w != NULL && s != NULL && PyTuple_CheckExact(got) && PyTuple_GET_SIZE(got) == 2)
            out = PyTuple_Pack(4, PyTuple_GET_ITEM(got, 0), PyTuple_GET_ITEM(got, 1), w, s);
        else if (w != NULL && s != NULL)
            PyErr_SetString(PyExc_TypeError, "_handover must give (request, exception)");
        Py_XDECREF(w);
        Py_XDECREF(s);
    } else {
        out = Py_NewRef(got);
    }
done:
    Py_XDECREF(got);
    Py_XDECREF(rid);
    return out;
}

/* 1 when the exchange is over (its dead set), 0 when not, -1 with an
 * exception. */
static int exchange_dead(CallerObject *c)
{
    PyObject *dead = PyObject_GetAttr(c->exchange, str_dead);
    if (dead == NULL)
        return -1;
    int rc = PyObject_IsTrue(dead);
    Py_DECREF(dead);
    return rc;
}

/* calls.Call.wait_seconds for a client's timeout_ms, grace_ms and
 * client_timeout_s (a call with every option at its default; worker:
 * default_timeout_ms when timeout_ms is None or 0); -1 with an
 * exception. */
static double call_wait_seconds(double default_timeout_ms, PyObject *timeout_ms,
                                PyObject *grace_ms, PyObject *client_timeout_s)
{
    double worker = default_timeout_ms;
    int set = timeout_ms != Py_None ? PyObject_IsTrue(timeout_ms) : 0;
    if (set < 0)
        return -1;
    if (set) {
        worker = PyFloat_AsDouble(timeout_ms);
        if (worker == -1.0 && PyErr_Occurred())
            return -1;
    }
    double grace = PyFloat_AsDouble(grace_ms);
    if (grace == -1.0 && PyErr_Occurred())
        return -1;
    double wait = (worker + grace) / 1000.0;
    if (client_timeout_s != Py_None) {
        double limit = PyFloat_AsDouble(client_timeout_s);
        if (limit == -1.0 && PyErr_Occurred())
            return -1;
        if (limit < wait)
            wait = limit;
    }
    return wait;
}

/* (host_ext.h) */
int plain_settings_read(plain_settings *ps, PyObject *client, double default_timeout_ms)
{
    PyObject *const names[PS_COUNT] = {str_before_send, str_after_recv, str_db_alias,
                                       str_timeout_ms, str_decoding, str_grace_ms,
                                       str_client_timeout_s};
    memset(ps, 0, sizeof *ps);
    for (int i = 0; i < PS_COUNT; i++) {
        if ((ps->a[i] = PyObject_GetAttr(client, names[i])) == NULL)
            goto fail;
    }
    if (ps->a[PS_BEFORE_SEND] != Py_None || ps->a[PS_AFTER_RECV] != Py_None) {
        plain_settings_clear(ps);
        return 0; /* hooks: the general path */
    }
    ps->wait_s = call_wait_seconds(default_timeout_ms, ps->a[PS_TIMEOUT_MS], ps->a[PS_GRACE_MS],
                                   ps->a[PS_CLIENT_TIMEOUT_S]);
    if (ps->wait_s == -1 && PyErr_Occurred())
        goto fail;
    return 1;
fail:
    plain_settings_clear(ps);
    return -1;
}

/* (host_ext.h) */
void plain_settings_clear(plain_settings *ps)
{
    for (int i = 0; i < PS_COUNT; i++)
        Py_CLEAR(ps->a[i]);
}

/* plain(client, sql, params, write) */
static PyObject *caller_plain(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CallerObject *c = (CallerObject *)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "plain(client, sql, params, write)");
        return NULL;
    }
    double start = host_now_s();
    PyObject *client = args[0];
    int write = PyObject_IsTrue(args[3]);
    int dead = write < 0 ? -1 : exchange_dead(c);
    if (dead != 0)
        return dead < 0 ? NULL : Py_NewRef(Py_None);
    plain_settings ps;
    int got = plain_settings_read(&ps, client, c->default_timeout_ms);
    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *out = NULL;
    env_buf payload;
    env_buf_init(&payload);
    int rc = plain_payload_pack(&payload, args[1], args[2], ps.a[PS_DB_ALIAS], write, c->scan);
    if (rc == 0) {
        const char *entry = write ? "db_exec" : "db_query";
        out = lead(c, client, entry, strlen(entry), &payload, ps.a[PS_TIMEOUT_MS], ps.wait_s,
                   start, write ? str_exec : str_query, ps.a[PS_DECODING]);
    } else if (rc == ENV_LEAVE) {
        out = Py_NewRef(Py_None);
    }
    env_buf_free(&payload);
    plain_settings_clear(&ps);
    return out;
}

/* call(client, call, wait_s) */
static PyObject *caller_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CallerObject *c = (CallerObject *)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "call(client, call, wait_s)");
        return NULL;
    }
    double start = host_now_s();
    double wait = PyFloat_AsDouble(args[2]);
    if (wait == -1.0 && PyErr_Occurred())
        return NULL;
    int dead = exchange_dead(c);
    if (dead != 0)
        return dead < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *entry = PyObject_GetAttr(args[1], str_entry);
    PyObject *payload = entry != NULL ? PyObject_GetAttr(args[1], str_payload) : NULL;
    PyObject *timeout_ms = payload != NULL ? PyObject_GetAttr(args[1], str_timeout_ms) : NULL;
    PyObject *kind = timeout_ms != NULL ? PyObject_GetAttr(args[1], str_kind) : NULL;
    PyObject *decoding = kind != NULL ? PyObject_GetAttr(args[1], str_decoding) : NULL;
    PyObject *out = NULL;
    if (decoding == NULL)
        goto done;
    Py_ssize_t entry_len = 0;
    const char *entry_utf8 = PyUnicode_Check(entry) ? PyUnicode_AsUTF8AndSize(entry, &entry_len)
                                                    : NULL;
    env_buf packed;
    env_buf_init(&packed);
    int rc = entry_utf8 != NULL && PyUnicode_Check(kind) ? 0 : ENV_LEAVE;
    PyErr_Clear(); /* an entry with lone surrogates: msgpack raises its own error */
    if (rc == 0 && payload != Py_None)
        rc = env_put_value(&packed, payload);
    if (rc == 0)
        out = lead(c, args[0], entry_utf8, (size_t)entry_len, payload != Py_None ? &packed : NULL,
                   timeout_ms, wait, start, kind, decoding);
    else if (rc == ENV_LEAVE)
        out = Py_NewRef(Py_None);
    env_buf_free(&packed);
done:
    Py_XDECREF(entry);
    Py_XDECREF(payload);
    Py_XDECREF(timeout_ms);
    Py_XDECREF(kind);
    Py_XDECREF(decoding);
    return out;
}

static PyMethodDef caller_methods[] = {
    {"plain", (PyCFunction)(void (*)(void))caller_plain, METH_FASTCALL,
     "plain(client, sql, params, write) -> QueryResult | ExecResult | (request, exception, "
     "wait_s, start) | None: query(sql, params) (write: execute) with every option at its "
     "default, made in C (docs/python.md \"The fast path\")."},
    {"call", (PyCFunction)(void (*)(void))caller_call, METH_FASTCALL,
     "call(client, call, wait_s) -> result | (request, exception, wait_s, start) | None: a "
     "one-shot Call made in C."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef caller_members[] = {
    {"submitted", T_ULONGLONG, offsetof(CallerObject, submitted), READONLY,
     "how many calls it submitted"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._host.Caller",
    .tp_basicsize = sizeof(CallerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The blocking in-process client's one-shot calls on one exchange, made in C "
              "while no other thread drives the host.",
    .tp_new = caller_new,
    .tp_dealloc = caller_dealloc,
    .tp_traverse = caller_traverse,
    .tp_clear = caller_clear,
    .tp_methods = caller_methods,
    .tp_members = caller_members,
};

static int caller_init_type(PyObject *m)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&str_dead, "dead"}, {&str_before_send, "before_send"}, {&str_after_recv, "after_recv"},
        {&str_db_alias, "db_alias"}, {&str_timeout_ms, "timeout_ms"}, {&str_decoding, "decoding"},
        {&str_grace_ms, "grace_ms"}, {&str_client_timeout_s, "client_timeout_s"},
        {&str_ids, "_ids"}, {&str_entry, "entry"}, {&str_payload, "payload"}, {&str_kind, "kind"},
        {&str_query, "query"}, {&str_exec, "exec"}, {&str_json, "json"},
        {&str_msgpack, "msgpack"}, {&str_arrow_ipc, "arrow_ipc"}, {&str_decoder, "decoder"},
        {&str_decode_result, "decode_result"}, {&str_numeric, "numeric"},
        {&str_decimal, "decimal"}, {&str_rows, "rows"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    }
    /* interned, as _rows's own names are: its argument parser then finds
     * them by pointer */
    PyObject *numeric_decimal = PyUnicode_InternFromString("numeric_decimal");
    PyObject *parse_json = PyUnicode_InternFromString("parse_json");
    decode_kwnames = numeric_decimal != NULL && parse_json != NULL
                         ? PyTuple_Pack(2, numeric_decimal, parse_json)
                         : NULL;
    Py_XDECREF(numeric_decimal);
    Py_XDECREF(parse_json);
    if (decode_kwnames == NULL || PyType_Ready(&CallerType) < 0 || PyType_Ready(&MetricsType) < 0 ||
        PyModule_AddObjectRef(m, "Metrics", (PyObject *)&MetricsType) < 0)
        return -1;
    return PyModule_AddObjectRef(m, "Caller", (PyObject *)&CallerType);
}

static PyMethodDef call_functions[] = {
    {"ok_frame", (PyCFunction)(void (*)(void))ok_frame, METH_FASTCALL,
     "ok_frame(frame, request_id, lazy=False) -> (codec, payload, metrics) | None: what the "
     "fast paths read from a final frame (None: the general path's); lazy: the metrics as "
     "the blocking client's queries take them (a Metrics when it can be one)."},
    {"submit_call", (PyCFunction)(void (*)(void))submit_call, METH_FASTCALL,
     "submit_call(host, session, request_id, entry, payload, timeout_ms) -> Stream | None: "
     "the envelope packed in C and submitted; None when msgpack must pack it."},
    {NULL, NULL, 0, NULL},
};

int host_call_add(PyObject *m)
{
    if (mp_init() < 0 || host_envelope_add(m) < 0 || host_params_add(m) < 0 ||
        caller_init_type(m) < 0)
        return -1;
    return PyModule_AddFunctions(m, call_functions);
}
