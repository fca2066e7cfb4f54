/*
 * molt_db_adapter._host: CPython's binding of the host ABI
 * (include/molt_db/host.h, docs/host.md, docs/python.md).
 *
 * Host wraps one molt_db_host, threaded (the host's own loop thread does
 * the I/O) or driven (the thread in Host.news() runs the loop; every call
 * on the host is made under the GIL, so one thread at a time); Stream
 * wraps one submitted request. A stream's udata is its Stream object, so Host.ready() hands the
 * streams with news straight back. The Python side (inprocess.py) keeps a
 * reference to every stream it has not released, so a udata pointer
 * returned by molt_db_host_ready always names a live object: ready() and a
 * stream's release both run under the GIL, and a released stream is never
 * returned.
 *
 * fork(): a host belongs to the process that created it. In a child, every
 * call on an inherited Host or Stream raises HostForked, and their
 * deallocation frees nothing (the parent's loop thread does not exist in
 * the child, its mutex may be held, and its connections are the
 * parent's): the child leaks the copy and makes a host of its own.
 */
#ifndef MOLT_DB_HOST_EXT_H
#define MOLT_DB_HOST_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/types.h>

#include "molt_db/host.h"

typedef struct {
    PyObject_HEAD
    molt_db_host *h; /* NULL once closed */
    pid_t pid;       /* the process that created it */
    int driven;      /* MOLT_DB_HOST_DRIVEN: news() runs the loop */
    int driving;     /* a thread runs its loop without the GIL (host_drive) */
} HostObject;

typedef struct {
    PyObject_HEAD
    molt_db_host_stream *s; /* NULL once released */
    HostObject *host;       /* strong: the host outlives its streams */
    int done;               /* the last frame was taken */
} StreamObject;

extern PyTypeObject HostType;
extern PyTypeObject StreamType;
extern PyObject *HostError;  /* creation refused, host closed, no memory */
extern PyObject *HostForked; /* used in a child of the process that made it */

/* This process's id, without a system call (kept by a fork handler). */
pid_t host_this_pid(void);

/* 0 when the host may be called from this process; -1 with an exception
 * set when it is closed or belongs to the parent of a fork. */
int host_usable(HostObject *host);

/* Submits request bytes in a session (host_usable checked by the
 * caller): a new Stream, NULL with an exception. */
PyObject *host_submit_in(HostObject *host, uint64_t session, const void *req, size_t len,
                         uint64_t token);

/* A new Stream for s (owned by it from now on); NULL with an exception. */
StreamObject *stream_wrap(HostObject *host, molt_db_host_stream *s);

/* Before taking frames from st: 1 to take them, 0 when its last frame
 * was taken already (nothing to take), -1 with an exception when it was
 * released or its host cannot be called. */
int stream_takeable(StreamObject *st);

/* Driven: molt_db_host_poll(h, ms), ms capped at DRIVE_WAIT_MAX_MS; when
 * it may wait (ms above 0), with the GIL released: its turn waits in the
 * loop's own epoll_wait, which also collects the events (one system call
 * where a poll() of the fd and a turn are two), and a command of another
 * thread (submit, release, cancel) ends the wait. 0, or -1 with an
 * exception (a signal handler raised, the host was closed meanwhile). */
int host_drive(HostObject *host, int ms);

/* Driven: 0 when this thread may run the host's loop, -1 with
 * RuntimeError while another thread runs it (host_drive, without the
 * GIL): one loop, one driver at a time. */
int host_may_drive(HostObject *host);

/* molt_db_host_pending, or 1 while another thread runs the loop (whose
 * state must not be read meanwhile: that thread has work). */
long host_pending_now(HostObject *host);

/* The longest wait of one host_drive: a signal does not end the loop's
 * epoll_wait (libuv waits on after EINTR), so a Ctrl-C raises at most this
 * late, and close() from another thread waits at most this long. */
#define DRIVE_WAIT_MAX_MS 100

/* Seconds as the milliseconds of a poll: 0 for none or less, rounded up. */
int host_timeout_ms_of(double seconds);

/* The monotonic clock in seconds. */
double host_now_s(void);

/* Lets go of the stream (as Stream.release()). */
void stream_drop(StreamObject *st);

/* below this a frame is copied into bytes: a Frame object is not worth it */
#define OWNED_MIN_BYTES 65536

/* A frame from molt_db_host_next_owned as take_owned() hands it out:
 * bytes (the frame freed) below OWNED_MIN_BYTES, else a Frame owning it;
 * NULL with an exception (the frame freed). */
PyObject *frame_item(molt_db_host_frame *owned, const uint8_t *data, size_t len);

/* Adds take_owned() and Frame (host_frames.c) to the module; -1 with an
 * exception. */
int host_frames_add(PyObject *m);

/* Adds Caller, submit_call() and ok_frame() (host_call.c) and
 * plain_payload() and encode_envelope() (host_params.c,
 * host_envelope.c) to the module; -1 with an exception. */
int host_call_add(PyObject *m);


/* The final frame's metrics map at data (len bytes, nothing after it) as
 * the dict ok_parts gives; NULL with an exception (ValueError: not such a
 * map). */
PyObject *frame_map(const uint8_t *data, size_t len);

/* _host.Metrics (host_metrics.c): a metrics map made into a dict on
 * demand. */
extern PyTypeObject MetricsType;

/* The MsgPack map at *p (before end) as a new Metrics (*p then past it)
 * when its keys are ASCII strs and its values nil, bools, ints, floats or
 * ASCII strs, so that making the dict later cannot fail but for memory;
 * else Py_None (*p unmoved). NULL with an exception (no memory). */
PyObject *lazy_map(const uint8_t **p, const uint8_t *end);

/* A Metrics's dict (a new one each call); NULL with an exception. */
PyObject *metrics_dict(PyObject *metrics);

/* The parts (codec, payload, metrics) of an Ok final frame for
 * request_id (host_call.c), the metrics a dict, or when lazy and lazy_map
 * takes them a Metrics (host_metrics.c); Py_None when the frame is
 * anything else (not even MsgPack): the general path decodes it. NULL
 * with an exception (no memory). */
PyObject *ok_parts(const uint8_t *data, size_t len, uint64_t request_id, int lazy);

/* A plain call's client settings (Caller.plain, submit_plain), read in
 * this order: PS_DECODING is the client's decoding, wait_s its
 * calls.Call.wait_seconds for a call with every option at its default. */
enum { PS_BEFORE_SEND, PS_AFTER_RECV, PS_DB_ALIAS, PS_TIMEOUT_MS, PS_DECODING, PS_GRACE_MS,
       PS_CLIENT_TIMEOUT_S, PS_COUNT };
typedef struct {
    PyObject *a[PS_COUNT];
    double wait_s;
} plain_settings;

/* Reads client's settings into ps (host_call.c; worker timeout
 * default_timeout_ms when its timeout_ms is None or 0): 1, ps held (free
 * it with plain_settings_clear); 0 when the client has hooks (the general
 * path's call) and -1 with an exception, nothing held. */
int plain_settings_read(plain_settings *ps, PyObject *client, double default_timeout_ms);

/* Lets go of what plain_settings_read took. */
void plain_settings_clear(plain_settings *ps);

/* The QueryResult (query_result, the class, called with codec, payload,
 * metrics, rid, decoding, doc) of a query's Ok final frame parts (codec,
 * payload, metrics), a msgpack payload's rows decoded now by c_rows's
 * decoder as QueryResult._c_doc would decode them (host_call.c); Py_None
 * for a codec that is not a query's (the general path reports it); NULL
 * with an exception. */
PyObject *query_result_of(PyObject *query_result, PyObject *c_rows, PyObject *parts, PyObject *rid,
                          PyObject *decoding);

/* Adds drain(), submit_fast() and submit_plain() (host_async.c) to the module; -1 with
 * an exception. */
int host_async_add(PyObject *m);

/* _host.Waiter (host_waiter.c): what a one-shot asyncio call awaits. */
extern PyTypeObject WaiterType;

/* A new pending Waiter of loop for the call of request rid on stream,
 * due at deadline (time.monotonic() seconds); decoding: the client's, for
 * a plain query whose result drain() builds, else NULL. NULL with an
 * exception. */
PyObject *waiter_new(PyObject *loop, PyObject *stream, unsigned long long rid, double deadline,
                     PyObject *decoding);

/* The decoding w was made with (borrowed), or NULL. */
PyObject *waiter_decoding(PyObject *w);

/* 1 while w (a Waiter) is neither completed nor cancelled. */
int waiter_pending(PyObject *w);

/* The request_id w was made for. */
unsigned long long waiter_rid(PyObject *w);

/* Completes pending w with value; when a callback waits, w joins woken
 * (a list wake() runs after the host's turn). 0, or -1 with an exception
 * (w completed all the same). */
int waiter_complete(PyObject *w, PyObject *value, PyObject *woken);

/* Adds Waiter and wake() (host_waiter.c) to the module; -1 with an
 * exception. */
int host_waiter_add(PyObject *m);

#endif
