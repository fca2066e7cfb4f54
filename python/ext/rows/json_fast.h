/* json.loads for the JSON text most documents are, without the scanner's
 * Python-level call and its str round trips: objects, arrays, strings
 * without escapes, integers of up to 18 digits, floats, true, false and
 * null. Anything else (an escape, NaN, a longer number, deep nesting, a
 * lone surrogate, an error) is declined, and the caller asks json's own
 * scanner, so values and errors stay json.loads's. */
#ifndef MOLT_ROWS_JSON_FAST_H
#define MOLT_ROWS_JSON_FAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 1 with *out (a new reference), 0: declined (no exception), -1: an
 * exception (out of memory) */
int json_fast_parse(PyObject *text, PyObject **out);
/* the same for the UTF-8 bytes of a text (a payload's str): what
 * json_fast_parse gives for the str they decode to; bytes that are not
 * UTF-8 are declined */
int json_fast_parse_utf8(const char *s, Py_ssize_t n, PyObject **out);

#endif
