/*
 * Host: one molt_db_host, threaded or driven (host_ext.h).
 *
 * news() is the one wait: it releases the GIL. Threaded, it polls the
 * host's notify fd (and the object's own wake fd, which close() writes so
 * that a thread still waiting lets go), clears the fd and returns the
 * streams with news; a signal interrupts the wait (EINTR): the pending
 * Python signal handler runs, so Ctrl-C in a blocking call raises
 * KeyboardInterrupt at once. Driven, it runs molt_db_host_poll(h, ms)
 * (host_drive), whose wait is at most DRIVE_WAIT_MAX_MS long.
 * close() waits until no thread is inside a call that left the GIL.
 */
#include "host_ext.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    HostObject base;
    int wake_fd;  /* eventfd written by close(); -1 if none */
    int kicked;   /* kick() since a driven news() last returned */
    int waiting;  /* threads in news() or wait_io() without the GIL (read under the GIL) */
    int closing;
} Host;

int host_usable(HostObject *host)
{
    if (host->pid != host_this_pid()) {
        PyErr_SetString(HostForked,
                        "this molt_db host was created by the parent of a fork(); "
                        "the child needs a host of its own");
        return -1;
    }
    if (host->h == NULL || ((Host *)host)->closing) {
        PyErr_SetString(HostError, "the molt_db host is closed");
        return -1;
    }
    return 0;
}

static int host_init(PyObject *self_, PyObject *args, PyObject *kw)
{
    Host *self = (Host *)self_;
    static char *kwlist[] = {"argv", "driven", NULL};
    PyObject *seq = NULL;
    int driven = 0;
    if (self->base.h != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Host.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:Host", kwlist, &seq, &driven))
        return -1;
    if (PyUnicode_Check(seq) || PyBytes_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "argv must be a sequence of str, not one string");
        return -1;
    }
    PyObject *tuple = PySequence_Tuple(seq);
    if (tuple == NULL)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    if (n > INT_MAX / 2) {
        Py_DECREF(tuple);
        PyErr_SetString(PyExc_ValueError, "argv is too long");
        return -1;
    }
    const char **argv = PyMem_Calloc((size_t)n + 1, sizeof *argv);
    if (argv == NULL) {
        Py_DECREF(tuple);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "argv[%zd] must be a str", i);
            goto fail;
        }
        argv[i] = PyUnicode_AsUTF8AndSize(item, &len);
        if (argv[i] == NULL)
            goto fail;
        if ((Py_ssize_t)strlen(argv[i]) != len) {
            PyErr_Format(PyExc_ValueError, "argv[%zd] contains a NUL character", i);
            goto fail;
        }
    }
    self->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->wake_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    molt_db_error err = {0};
    molt_db_host *h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = molt_db_host_new((int)n, argv, driven ? MOLT_DB_HOST_DRIVEN : MOLT_DB_HOST_THREADED,
                          &h, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_Format(HostError, "%s", err.message[0] ? err.message : "molt_db_host_new failed");
        molt_db_error_clear(&err);
        goto fail;
    }
    molt_db_error_clear(&err);
    self->base.h = h;
    self->base.pid = host_this_pid();
    self->base.driven = driven;
    PyMem_Free(argv);
    Py_DECREF(tuple);
    return 0;
fail:
    PyMem_Free(argv);
    Py_DECREF(tuple);
    return -1;
}

static PyObject *host_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)args;
    (void)kw;
    Host *self = (Host *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->wake_fd = -1;
        self->base.pid = host_this_pid();
    }
    return (PyObject *)self;
}

/* Frees the host (this process's only); waits for threads in news(). */
static void host_free(Host *self)
{
    if (self->base.h == NULL || self->closing)
        return;
    if (self->base.pid != host_this_pid()) { /* a fork's copy: not ours to free */
        self->base.h = NULL;
        return;
    }
    self->closing = 1;
    if (self->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(self->wake_fd, &one, sizeof one);
        (void)w; /* a full counter is still readable */
    }
    while (self->waiting > 0) {
        Py_BEGIN_ALLOW_THREADS
        sched_yield();
        Py_END_ALLOW_THREADS
    }
    molt_db_host *h = self->base.h;
    self->base.h = NULL;
    Py_BEGIN_ALLOW_THREADS
    molt_db_host_free(h);
    Py_END_ALLOW_THREADS
}

static void host_dealloc(PyObject *self_)
{
    Host *self = (Host *)self_;
    host_free(self);
    if (self->wake_fd >= 0) /* our own eventfd: closing the copy is harmless */
        close(self->wake_fd);
    Py_TYPE(self_)->tp_free(self_);
}

static PyObject *host_close(PyObject *self_, PyObject *unused)
{
    (void)unused;
    host_free((Host *)self_);
    Py_RETURN_NONE;
}

PyObject *host_submit_in(HostObject *host, uint64_t session, const void *req, size_t len,
                         uint64_t token)
{
    StreamObject *st = stream_wrap(host, NULL);
    if (st == NULL)
        return NULL;
    molt_db_host_stream *s = NULL;
    /* the request is copied under the host's mutex: no wait worth
     * releasing the GIL for */
    int rc = molt_db_host_submit_in(host->h, session, req, len, token, st, &s);
    if (rc < 0) {
        Py_DECREF(st);
        if (rc == MOLT_DB_ENOMEM)
            return PyErr_NoMemory();
        PyErr_SetString(HostError, "the molt_db host is closed");
        return NULL;
    }
    st->s = s;
    return (PyObject *)st;
}

static PyObject *host_submit(PyObject *self_, PyObject *args, PyObject *kw)
{
    HostObject *self = (HostObject *)self_;
    static char *kwlist[] = {"request", "token", "session", NULL};
    Py_buffer req;
    unsigned long long token = 0, session = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|KK:submit", kwlist, &req, &token, &session))
        return NULL;
    if (host_usable(self) < 0) {
        PyBuffer_Release(&req);
        return NULL;
    }
    PyObject *st = host_submit_in(self, (uint64_t)session, req.buf, (size_t)req.len,
                                  (uint64_t)token);
    PyBuffer_Release(&req);
    return st;
}

static PyObject *host_cancel(PyObject *self_, PyObject *arg)
{
    HostObject *self = (HostObject *)self_;
    unsigned long long token = PyLong_AsUnsignedLongLong(arg);
    if (token == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (token == 0) {
        PyErr_SetString(PyExc_ValueError, "token 0 means no token");
        return NULL;
    }
    if (host_usable(self) < 0)
        return NULL;
    int rc = molt_db_host_cancel(self->h, (uint64_t)token);
    if (rc == MOLT_DB_ENOMEM)
        return PyErr_NoMemory();
    if (rc < 0) {
        PyErr_SetString(HostError, "the molt_db host is closed");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* session_open() -> int: a session for submit(session=...), as one
 * connection to molt_worker is one session. */
static PyObject *host_session_open(PyObject *self_, PyObject *unused)
{
    (void)unused;
    HostObject *self = (HostObject *)self_;
    if (host_usable(self) < 0)
        return NULL;
    uint64_t id = 0;
    int rc = molt_db_host_session_open(self->h, &id);
    if (rc == MOLT_DB_ENOMEM)
        return PyErr_NoMemory();
    if (rc == MOLT_DB_EBUSY) {
        PyErr_SetString(HostError, "the molt_db host has max_sessions sessions open");
        return NULL;
    }
    if (rc < 0) {
        PyErr_SetString(HostError, "the molt_db host is closed");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(id);
}

/* session_close(id): its unfinished requests end Cancelled, its
 * transactions roll back. */
static PyObject *host_session_close(PyObject *self_, PyObject *arg)
{
    HostObject *self = (HostObject *)self_;
    unsigned long long id = PyLong_AsUnsignedLongLong(arg);
    if (id == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (host_usable(self) < 0)
        return NULL;
    int rc = molt_db_host_session_close(self->h, (uint64_t)id);
    if (rc == MOLT_DB_EINVAL) {
        PyErr_SetString(PyExc_ValueError, "no session of this host has that id open");
        return NULL;
    }
    if (rc < 0) {
        PyErr_SetString(HostError, "the molt_db host is closed");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *host_fileno(PyObject *self_, PyObject *unused)
{
    (void)unused;
    HostObject *self = (HostObject *)self_;
    if (host_usable(self) < 0)
        return NULL;
    return PyLong_FromLong(molt_db_host_fd(self->h));
}

int host_timeout_ms_of(double seconds)
{
    if (isnan(seconds) || seconds <= 0)
        return 0;
    double ms = ceil(seconds * 1000.0);
    return ms >= (double)INT_MAX ? INT_MAX : (int)ms;
}

/* The streams with news since the last call (a new list; NULL with an
 * exception). */
static PyObject *ready_streams(HostObject *host)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    void *ready[64];
    size_t got;
    do {
        /* making the list may have run the collector, whose finalizers
         * may have closed the host */
        if (host_usable(host) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        got = molt_db_host_ready(host->h, ready, 64);
        for (size_t i = 0; i < got; i++) {
            if (PyList_Append(out, (PyObject *)ready[i]) < 0) {
                /* the news of the streams not handed over is lost for
                 * this call; their next frame raises the fd again */
                Py_DECREF(out);
                return NULL;
            }
        }
    } while (got == 64);
    return out;
}

/* Threaded: waits up to ms for the host's notify fd, or for close() from
 * another thread (the wake fd). */
static int wait_fds(Host *self, int ms)
{
    struct pollfd fds[2] = {
        {.fd = molt_db_host_fd(self->base.h), .events = POLLIN},
        {.fd = self->wake_fd, .events = POLLIN},
    };
    int rc, saved;
    self->waiting++;
    Py_BEGIN_ALLOW_THREADS
    rc = poll(fds, 2, ms);
    saved = errno;
    Py_END_ALLOW_THREADS
    self->waiting--;
    if (rc < 0 && saved == EINTR)
        return PyErr_CheckSignals() < 0 ? -1 : 1;
    if (rc < 0) {
        errno = saved;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (host_usable(&self->base) < 0) /* also what a write of the wake fd means */
        return -1;
    return rc > 0;
}

int host_drive(HostObject *host, int ms)
{
    Host *self = (Host *)host;
    int rc;
    if (ms > DRIVE_WAIT_MAX_MS)
        ms = DRIVE_WAIT_MAX_MS;
    if (ms == 0) {
        rc = molt_db_host_poll(host->h, 0);
    } else {
        self->waiting++; /* close() waits for it */
        Py_BEGIN_ALLOW_THREADS
        rc = molt_db_host_poll(host->h, ms);
        Py_END_ALLOW_THREADS
        self->waiting--;
        if (PyErr_CheckSignals() < 0 || host_usable(host) < 0)
            return -1;
    }
    if (rc < 0) {
        PyErr_SetString(HostError, "the molt_db host is closed");
        return -1;
    }
    return 0;
}

double host_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Driven: turns of the host until some stream has news or timeout_s ran
 * out, each waiting in the host's own poll (host_drive, GIL released);
 * a submit, cancel, session close or release from another thread ends
 * the wait (the host wakes itself). */
static PyObject *driven_news(Host *self, double timeout_s)
{
    double deadline = host_now_s() + (isnan(timeout_s) || timeout_s < 0 ? 0 : timeout_s);
    for (;;) {
        int ms = host_timeout_ms_of(deadline - host_now_s());
        if (host_drive(&self->base, ms) < 0)
            return NULL;
        PyObject *out = ready_streams(&self->base);
        if (out == NULL || PyList_GET_SIZE(out) > 0 || ms == 0 || self->kicked) {
            self->kicked = 0;
            return out; /* news, the time ran out, or kick() */
        }
        Py_DECREF(out);
    }
}

/* news(timeout_s=0.0): the streams that have news, waiting up to
 * timeout_s for some (GIL released). [] when the time ran out. */
static PyObject *host_news(PyObject *self_, PyObject *args)
{
    Host *self = (Host *)self_;
    double timeout_s = 0.0;
    if (!PyArg_ParseTuple(args, "|d:news", &timeout_s))
        return NULL;
    if (host_usable(&self->base) < 0)
        return NULL;
    if (self->base.driven)
        return driven_news(self, timeout_s);
    int ms = host_timeout_ms_of(timeout_s);
    if (ms > 0) {
        int rc = wait_fds(self, ms);
        if (rc < 0)
            return NULL;
        if (rc == 0)
            return PyList_New(0);
    }
    molt_db_host_poll(self->base.h, 0); /* clears the fd */
    return ready_streams(&self->base);
}

/* wait_io(timeout_s) -> bool: driven: waits up to timeout_s, at most
 * WAIT_IO_MAX_MS (GIL released), for the host's fd alone, without a turn:
 * True when it is readable. Kicks are not read here (they are the driving
 * thread's), so close() cannot wake this wait: the cap bounds how long
 * close() waits for it. */
#define WAIT_IO_MAX_MS 100
static PyObject *host_wait_io(PyObject *self_, PyObject *arg)
{
    Host *self = (Host *)self_;
    double timeout_s = PyFloat_AsDouble(arg);
    if (timeout_s == -1.0 && PyErr_Occurred())
        return NULL;
    if (host_usable(&self->base) < 0)
        return NULL;
    if (!self->base.driven) {
        PyErr_SetString(PyExc_ValueError, "wait_io() is for a driven host");
        return NULL;
    }
    struct pollfd fd = {.fd = molt_db_host_fd(self->base.h), .events = POLLIN};
    int ms = host_timeout_ms_of(timeout_s), rc, saved;
    if (ms > WAIT_IO_MAX_MS)
        ms = WAIT_IO_MAX_MS;
    self->waiting++; /* close() waits for it */
    Py_BEGIN_ALLOW_THREADS
    rc = poll(&fd, 1, ms);
    saved = errno;
    Py_END_ALLOW_THREADS
    self->waiting--;
    if (rc < 0 && saved == EINTR)
        return PyErr_CheckSignals() < 0 ? NULL : Py_NewRef(Py_False);
    if (rc < 0) {
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (host_usable(&self->base) < 0)
        return NULL;
    return PyBool_FromLong(rc > 0);
}

/* kick(): driven: a news() waiting on another thread returns now, or the
 * next news() at once (molt_db_host_wake ends its wait). */
static PyObject *host_kick(PyObject *self_, PyObject *unused)
{
    (void)unused;
    Host *self = (Host *)self_;
    if (host_usable(&self->base) < 0)
        return NULL;
    self->kicked = 1;
    molt_db_host_wake(self->base.h);
    Py_RETURN_NONE;
}

static PyObject *host_timeout(PyObject *self_, PyObject *unused)
{
    (void)unused;
    HostObject *self = (HostObject *)self_;
    if (host_usable(self) < 0)
        return NULL;
    return PyLong_FromLong(molt_db_host_timeout(self->h));
}

static PyObject *host_count(PyObject *self_, long (*count)(molt_db_host *h))
{
    HostObject *self = (HostObject *)self_;
    if (host_usable(self) < 0)
        return NULL;
    return PyLong_FromLong(count(self->h));
}

static PyObject *host_pending(PyObject *self_, PyObject *unused)
{
    (void)unused;
    return host_count(self_, molt_db_host_pending);
}

static PyObject *host_busy(PyObject *self_, PyObject *unused)
{
    (void)unused;
    return host_count(self_, molt_db_host_busy);
}

static PyObject *host_max_request_bytes(PyObject *self_, PyObject *unused)
{
    (void)unused;
    HostObject *self = (HostObject *)self_;
    if (host_usable(self) < 0)
        return NULL;
    return PyLong_FromSize_t(molt_db_host_max_request_bytes(self->h));
}

static PyObject *host_get_forked(PyObject *self_, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((HostObject *)self_)->pid != host_this_pid());
}

static PyObject *host_get_closed(PyObject *self_, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((HostObject *)self_)->h == NULL);
}

static PyObject *host_get_driven(PyObject *self_, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((HostObject *)self_)->driven);
}

static PyMethodDef host_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))host_submit, METH_VARARGS | METH_KEYWORDS,
     "submit(request, token=0, session=0) -> Stream: one envelope (MsgPack, no length "
     "prefix), in the session opened by session_open() (0: a session of its own)."},
    {"session_open", host_session_open, METH_NOARGS,
     "session_open() -> int: a session spanning requests (transactions), as one connection."},
    {"session_close", host_session_close, METH_O,
     "session_close(id): its unfinished requests end Cancelled, its transactions roll back."},
    {"cancel", host_cancel, METH_O,
     "cancel(token): every unfinished request submitted with token ends Cancelled."},
    {"news", host_news, METH_VARARGS,
     "news(timeout_s=0.0) -> [Stream]: the streams with news, waiting up to timeout_s "
     "(the GIL released)."},
    {"wait_io", host_wait_io, METH_O,
     "wait_io(timeout_s) -> bool: driven: waits up to timeout_s (at most 0.1 s; the GIL "
     "released) for the host's fd, without a turn; True when it is readable."},
    {"kick", host_kick, METH_NOARGS,
     "kick(): driven: a news() waiting on another thread returns now (else the next "
     "news() returns at once)."},
    {"fileno", host_fileno, METH_NOARGS,
     "The notify fd: readable when some stream has news (for a poller; then news())."},
    {"timeout", host_timeout, METH_NOARGS,
     "Driven: milliseconds until news() has a timer to run (0: work now, -1: only I/O); "
     "threaded: -1."},
    {"pending", host_pending, METH_NOARGS,
     "Driven: the requests running plus the transactions open (work whose timers need "
     "news() calls while nobody waits; 0: none); threaded: -1."},
    {"busy", host_busy, METH_NOARGS,
     "Driven: the part of pending() that needs news() calls now (requests not over, "
     "cancels and rollbacks finishing; not an idle open transaction, whose timers "
     "timeout() tells); threaded: -1."},
    {"max_request_bytes", host_max_request_bytes, METH_NOARGS,
     "The largest request submit() takes."},
    {"close", host_close, METH_NOARGS,
     "Cancels everything, closes the connections, joins the host's thread."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef host_getset[] = {
    {"forked", host_get_forked, NULL, "True in a child of the process that made the host.",
     NULL},
    {"closed", host_get_closed, NULL, "True once closed.", NULL},
    {"driven", host_get_driven, NULL, "True when news() runs the host's loop itself.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject HostType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "molt_db_adapter._host.Host",
    .tp_doc = "Host(argv, driven=False): molt_db's host from molt_worker's arguments without "
              "the transport ones; threaded (its own loop thread) or driven (news() runs "
              "the loop).",
    .tp_basicsize = sizeof(Host),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = host_new,
    .tp_init = host_init,
    .tp_dealloc = host_dealloc,
    .tp_methods = host_methods,
    .tp_getset = host_getset,
};
