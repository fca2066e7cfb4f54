/* arrow_stream(chunks): an Arrow IPC stream held in Python buffers as an
 * "arrow_array_stream" PyCapsule (the Arrow PyCapsule interface) whose
 * arrays point into those buffers (arrow_ipc_read.h). */
#ifndef MOLT_ROWS_ARROW_CAPSULE_H
#define MOLT_ROWS_ARROW_CAPSULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* adds arrow_stream, arrow_stats and ArrowIpcError to the module
 * m; -1 with an exception */
int arrow_capsule_add(PyObject *m);

#endif
