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

/* Driven: wakes a thread waiting in news() so that it runs the loop turn
 * a submit, cancel or release just asked for. Threaded: nothing (the
 * host's thread wakes itself). */
void host_kick(HostObject *host);

/* A new Stream for s (owned by it from now on); NULL with an exception. */
StreamObject *stream_wrap(HostObject *host, molt_db_host_stream *s);

/* Before taking frames from st: 1 to take them, 0 when its last frame
 * was taken already (nothing to take), -1 with an exception when it was
 * released or its host cannot be called. */
int stream_takeable(StreamObject *st);

/* Lets go of st's stream (releasing it when the host is this process's
 * and open; a request still running is cancelled). */
void stream_drop(StreamObject *st);

/* Adds take_owned() and Frame (host_frames.c) to the module; -1 with an
 * exception. */
int host_frames_add(PyObject *m);

/* Adds drain() (host_async.c) to the module; -1 with an exception. */
int host_async_add(PyObject *m);

#endif
