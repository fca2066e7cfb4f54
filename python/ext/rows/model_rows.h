/* InstanceBuilder: a Django model instance from one row's values, as
 * Model.from_db builds it for a model whose construction is Django's own
 * (molt_django_adapter/model_instances.py decides which models those are
 * and names each value's attribute). */
#ifndef MOLT_ROWS_MODEL_ROWS_H
#define MOLT_ROWS_MODEL_ROWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* the type, ready, added to the module m; -1 with an exception */
int model_rows_add(PyObject *m);

#endif
