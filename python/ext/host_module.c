/* molt_db_adapter._host: the module, its types and exceptions
 * (host_ext.h). */
#include "host_ext.h"

#include <pthread.h>
#include <unistd.h>

PyObject *HostError;
PyObject *HostForked;

static struct PyModuleDef host_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "molt_db_adapter._host",
    .m_doc = "molt_db's host ABI in this process (docs/python.md).",
    .m_size = -1,
};

/* getpid() costs a system call, and every call on a host checks it: the
 * id is read once and again in a child of fork() */
static pid_t this_pid;

static void refresh_pid(void)
{
    this_pid = getpid();
}

pid_t host_this_pid(void)
{
    return this_pid;
}

PyMODINIT_FUNC PyInit__host(void)
{
    refresh_pid();
    if (pthread_atfork(NULL, NULL, refresh_pid) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
        return NULL;
    }
    if (PyType_Ready(&HostType) < 0 || PyType_Ready(&StreamType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&host_module);
    if (m == NULL)
        return NULL;
    HostError = PyErr_NewExceptionWithDoc(
        "molt_db_adapter._host.HostError",
        "The host refused its arguments, is closed, or memory ran out.", NULL, NULL);
    HostForked = PyErr_NewExceptionWithDoc(
        "molt_db_adapter._host.HostForked",
        "A host (or stream) used in a child of the process that created it.",
        HostError, NULL);
    if (HostError == NULL || HostForked == NULL ||
        PyModule_AddObjectRef(m, "HostError", HostError) < 0 ||
        PyModule_AddObjectRef(m, "HostForked", HostForked) < 0 ||
        PyModule_AddObjectRef(m, "Host", (PyObject *)&HostType) < 0 ||
        PyModule_AddObjectRef(m, "Stream", (PyObject *)&StreamType) < 0 ||
        PyModule_AddIntConstant(m, "DONE", MOLT_DB_HOST_DONE) < 0 || host_frames_add(m) < 0 ||
        host_call_add(m) < 0 || host_async_add(m) < 0 || host_waiter_add(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
