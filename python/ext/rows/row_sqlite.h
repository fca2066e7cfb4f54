/* The Django SQLite profile of the row decoder: the final values Django's
 * SQLite backend gives (its driver's PARSE_DECLTYPES converters, then the
 * backend's and the field's converters that molt_django_adapter skips).
 *
 * The caller (molt_django_adapter/sqlite_values.py) names each column's plan:
 * None (the value as MsgPack gives it) or (kind, convert, arg), where convert
 * is the exact Python conversion of a non-null value and kind a spelling C
 * builds itself ("datetime" with tzinfo arg, "date", "time", "bool", "uuid",
 * "duration", "json_field"; "decimal": an int or float v becomes
 * create(v).quantize(quantum, context=context) for arg (create, quantum,
 * context), create(v) when quantum is None; "text": bytes are Unconvertible;
 * "call": always convert). A value outside the kind's spelling goes to
 * convert, so the values are convert's by construction. */
#ifndef MOLT_ROWS_ROW_SQLITE_H
#define MOLT_ROWS_ROW_SQLITE_H

#include "row_types.h"

int row_sqlite_init(void);
/* a column's plan from its spec; -1 with TypeError for a malformed spec */
int sqlite_col_plan(PyObject *spec, col_plan *out);
/* the next non-nil value of a column of the profile (new reference) or NULL */
PyObject *sqlite_col_value(const col_plan *c, mp_reader *r);

#endif
