/* How each type name of a result becomes a Python object: the one table
 * (row_types.c) and the conversions it names, in two profiles:
 *
 * - the client profile (molt_db_adapter's QueryResult rows): values as
 *   MsgPack gives them, numeric as Decimal and json/jsonb parsed when the
 *   call's decoding asks (element by element through arrays);
 * - the Django PostgreSQL profile (molt_django_adapter/rows.py): the values
 *   psycopg 3 gives Django (Decimal, UUID, date/time/datetime, timedelta,
 *   timestamptz in the session zone with Django's tzinfo, json parsed,
 *   jsonb/inet/cidr as text); a type outside the table is Unconvertible;
 *   a JSONField's column is parsed as the field would (col_plan_json_field);
 * - the Django SQLite profile (row_sqlite.c): the caller names each column's
 *   conversion (a kind and the exact Python function it stands for); C builds
 *   the common spellings itself and calls that function for anything else.
 */
#ifndef MOLT_ROWS_ROW_TYPES_H
#define MOLT_ROWS_ROW_TYPES_H

#include "mpread.h"

enum row_kind {
    RK_ASIS, RK_NUMERIC, RK_JSON, RK_JSONB, RK_BYTEA, RK_UUID, RK_DATE, RK_TIME,
    RK_TIMESTAMP, RK_TIMESTAMPTZ, RK_INTERVAL, RK_UNKNOWN,
    RK_JSON_FIELD,  /* django: a JSONField column, parsed as its from_db_value would */
    /* the Django SQLite profile (row_sqlite.h) */
    RK_SQ_CALL, RK_SQ_TEXT, RK_SQ_DATETIME, RK_SQ_DATE, RK_SQ_TIME, RK_SQ_BOOL, RK_SQ_UUID,
    RK_SQ_DURATION, RK_SQ_JSON_FIELD, RK_SQ_DECIMAL
};

typedef struct {
    int django;            /* the Django PostgreSQL profile */
    int numeric_decimal;   /* client: numeric as Decimal */
    int parse_json;        /* client: json/jsonb parsed */
    PyObject *zone;        /* django: the session zone (borrowed) */
    int zone_is_utc;
    PyObject *django_tz;   /* django: tzinfo put on timestamptz (borrowed; None: naive) */
} row_options;

typedef struct {
    enum row_kind kind;    /* RK_ASIS: as MsgPack gives it */
    int array_depth;       /* django: leading '_' of the type name */
    PyObject *call;        /* SQLite profile: the column's Python conversion (borrowed) */
    PyObject *arg;         /* SQLite profile (borrowed): RK_SQ_DATETIME: the tzinfo to put on (None:
                            * naive); RK_SQ_DECIMAL: (create, quantum, context), row_sqlite.h */
} col_plan;

extern PyObject *rows_unconvertible;   /* the module's Unconvertible (a ValueError) */

int row_types_init(void);
/* None or datetime.timezone.utc */
int row_zone_is_utc(PyObject *zone);
/* a column's plan; -1 with Unconvertible for a type the profile cannot take */
int col_plan_for(const row_options *o, const char *type, Py_ssize_t len, col_plan *out);
/* django: column j is a JSONField's (Django's converter for it is then
 * skipped): its text parsed as JSONField.from_db_value parses it, text that
 * is not JSON kept. Only over a column whose own conversion passes the value
 * through (jsonb, text...); any other is Unconvertible. */
int col_plan_json_field(col_plan *c, PyObject *type);
/* the next value of a column, converted (new reference) or NULL */
PyObject *col_value(const row_options *o, const col_plan *c, mp_reader *r);

/* shared with row_sqlite.c: NULL without an exception when the text is not
 * the worker's own spelling of the kind (RK_DATE, RK_TIME, RK_TIMESTAMP) */
PyObject *fast_temporal(enum row_kind kind, const char *s, Py_ssize_t n);
/* the same for a timestamp, with tzinfo tz (None: naive) */
PyObject *fast_timestamp(const char *s, Py_ssize_t n, PyObject *tz);
/* uuid.UUID(v) for a str */
PyObject *uuid_value(PyObject *v);
/* the same for the text's bytes when they are 8-4-4-4-12 or 32 lowercase
 * hex digits; NULL without an exception for any other spelling */
PyObject *uuid_from_text(const char *s, Py_ssize_t n);
/* 1 when v holds no reference a cycle could pass through, now or later:
 * not a GC object, or an untracked tuple (its items are atoms), or an
 * untracked UUID of the class uuid_from_text builds (immutable, slots
 * only); an untracked dict or list is not, as it may be filled later */
int row_is_sealed(PyObject *v);
/* JSONField.from_db_value for a str */
PyObject *json_field_value(PyObject *v);

#endif
