/* The per-type table and conversions (row_types.h). */
#include "row_types.h"
#include "json_fast.h"
#include "row_sqlite.h"

#include <datetime.h>
#include <string.h>

PyObject *rows_unconvertible;

static PyObject *decimal_cls, *json_loads, *json_scan, *json_error, *uuid_cls, *uuid_unknown;
static PyObject *date_fromiso, *time_fromiso, *datetime_fromiso;
static PyObject *str_astimezone, *empty_tuple;
/* uuid.UUID's member descriptors of its slots int and is_safe */
static PyObject *uuid_int_slot, *uuid_is_safe_slot;

/* The one table: a PostgreSQL type name and how its value becomes Python.
 * RK_ASIS: the MsgPack value as it is (int, float, str, bytes, bool). */
static const struct {
    const char *name;
    enum row_kind kind;
} TYPE_TABLE[] = {
    {"bool", RK_ASIS}, {"int2", RK_ASIS}, {"int4", RK_ASIS}, {"int8", RK_ASIS},
    {"oid", RK_ASIS}, {"float4", RK_ASIS}, {"float8", RK_ASIS},
    {"text", RK_ASIS}, {"varchar", RK_ASIS}, {"bpchar", RK_ASIS}, {"name", RK_ASIS},
    {"char", RK_ASIS}, {"xml", RK_ASIS},
    {"inet", RK_ASIS}, {"cidr", RK_ASIS},   /* text: Django registers text loaders for them */
    {"jsonb", RK_JSONB},                     /* text for Django, parsed by the client on request */
    {"json", RK_JSON}, {"numeric", RK_NUMERIC}, {"uuid", RK_UUID}, {"bytea", RK_BYTEA},
    {"date", RK_DATE}, {"time", RK_TIME}, {"timetz", RK_TIME},
    {"timestamp", RK_TIMESTAMP}, {"timestamptz", RK_TIMESTAMPTZ}, {"interval", RK_INTERVAL},
};

static enum row_kind kind_of(const char *t, Py_ssize_t n)
{
    for (size_t i = 0; i < sizeof TYPE_TABLE / sizeof TYPE_TABLE[0]; i++)
        if ((size_t)n == strlen(TYPE_TABLE[i].name) && memcmp(t, TYPE_TABLE[i].name, (size_t)n) == 0)
            return TYPE_TABLE[i].kind;
    return RK_UNKNOWN;
}

static PyObject *attr_of(const char *module, const char *a, const char *b)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return NULL;
    PyObject *o = PyObject_GetAttrString(m, a);
    Py_DECREF(m);
    if (o && b)
        Py_SETREF(o, PyObject_GetAttrString(o, b));
    return o;
}

int row_types_init(void)
{
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI)
        return -1;
    decimal_cls = attr_of("decimal", "Decimal", NULL);
    json_loads = attr_of("json", "loads", NULL);
    json_error = attr_of("json", "JSONDecodeError", NULL);
    json_scan = attr_of("json", "_default_decoder", "scan_once");
    uuid_cls = attr_of("uuid", "UUID", NULL);
    uuid_unknown = attr_of("uuid", "SafeUUID", "unknown");
    date_fromiso = attr_of("datetime", "date", "fromisoformat");
    time_fromiso = attr_of("datetime", "time", "fromisoformat");
    datetime_fromiso = attr_of("datetime", "datetime", "fromisoformat");
    uuid_int_slot = attr_of("uuid", "UUID", "int");
    uuid_is_safe_slot = attr_of("uuid", "UUID", "is_safe");
    str_astimezone = PyUnicode_InternFromString("astimezone");
    empty_tuple = PyTuple_New(0);
    if (!decimal_cls || !json_loads || !json_scan || !json_error || !uuid_cls || !uuid_unknown || !date_fromiso || !time_fromiso
        || !datetime_fromiso || !uuid_int_slot || !uuid_is_safe_slot || !str_astimezone || !empty_tuple)
        return -1;
    if (!Py_TYPE(uuid_int_slot)->tp_descr_set || !Py_TYPE(uuid_is_safe_slot)->tp_descr_set) {
        PyErr_SetString(PyExc_TypeError, "uuid.UUID.int and is_safe are not slots");
        return -1;
    }
    return 0;
}

int row_zone_is_utc(PyObject *zone)
{
    return zone == Py_None || zone == PyDateTime_TimeZone_UTC;
}

int col_plan_for(const row_options *o, const char *t, Py_ssize_t n, col_plan *out)
{
    out->array_depth = 0;
    if (!o->django) {
        /* decoding.py: the base type of an array, converted through lists */
        if (n > 0 && t[0] == '_')
            t++, n--;
        enum row_kind k = kind_of(t, n);
        if (k == RK_NUMERIC && o->numeric_decimal)
            out->kind = RK_NUMERIC;
        else if ((k == RK_JSON || k == RK_JSONB) && o->parse_json)
            out->kind = RK_JSON;
        else
            out->kind = RK_ASIS;
        return 0;
    }
    const char *whole = t;
    Py_ssize_t whole_n = n;
    while (n > 0 && t[0] == '_' && kind_of(t, n) == RK_UNKNOWN)
        t++, n--, out->array_depth++;
    out->kind = kind_of(t, n);
    if (out->kind == RK_UNKNOWN) {
        PyObject *name = PyUnicode_DecodeUTF8(whole, whole_n, "replace");
        if (name) {
            PyErr_Format(rows_unconvertible, "column type %U has no conversion", name);
            Py_DECREF(name);
        }
        return -1;
    }
    return 0;
}

static PyObject *unconvertible(const char *what, PyObject *v);

static int json_space(Py_UCS4 c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* json.loads(v) for a str: what json.loads does (skip whitespace, the
 * default decoder's scanner, only whitespace after), without its Python
 * frames; anything but a clean parse goes to json.loads itself, so errors
 * are exactly its own */
static PyObject *json_parse(PyObject *v)
{
    PyObject *fast;
    int rc = json_fast_parse(v, &fast);
    if (rc != 0)
        return rc > 0 ? fast : NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(v), i = 0;
    int kind = PyUnicode_KIND(v);
    const void *data = PyUnicode_DATA(v);
    while (i < n && json_space(PyUnicode_READ(kind, data, i)))
        i++;
    PyObject *got = PyObject_CallFunction(json_scan, "On", v, i);
    if (got && PyTuple_Check(got) && PyTuple_GET_SIZE(got) == 2) {
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(got, 1));
        while (end >= 0 && end < n && json_space(PyUnicode_READ(kind, data, end)))
            end++;
        if (end == n) {
            PyObject *out = Py_NewRef(PyTuple_GET_ITEM(got, 0));
            Py_DECREF(got);
            return out;
        }
    }
    Py_XDECREF(got);
    PyErr_Clear();
    return PyObject_CallOneArg(json_loads, v);
}

int col_plan_json_field(col_plan *c, PyObject *type)
{
    if ((c->kind != RK_ASIS && c->kind != RK_JSONB) || c->array_depth) {
        PyErr_Format(rows_unconvertible, "a JSONField over a column of type %S", type);
        return -1;
    }
    c->kind = RK_JSON_FIELD;
    return 0;
}

/* JSONField.from_db_value: json.loads(value), the text itself when it is not JSON */
PyObject *json_field_value(PyObject *v)
{
    if (!PyUnicode_Check(v))
        return unconvertible("JSONField", v);
    PyObject *out = json_parse(v);
    if (!out && PyErr_ExceptionMatches(json_error)) {
        PyErr_Clear();
        out = Py_NewRef(v);
    }
    return out;
}

/* ---- text to date/time objects: the worker's own formats; anything else
 * (and anything the constructor refuses) goes to fromisoformat ---- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_date(const char *s, Py_ssize_t n, int *y, int *m, int *d)
{
    if (n < 10 || s[4] != '-' || s[7] != '-')
        return -1;
    return digits(s, 4, y) | digits(s + 5, 2, m) | digits(s + 8, 2, d);
}

/* HH:MM:SS[.f{1,6}], all of s */
static int parse_time(const char *s, Py_ssize_t n, int *h, int *mi, int *sec, int *us)
{
    if (n < 8 || s[2] != ':' || s[5] != ':'
        || (digits(s, 2, h) | digits(s + 3, 2, mi) | digits(s + 6, 2, sec)) != 0)
        return -1;
    *us = 0;
    if (n == 8)
        return 0;
    int k = (int)n - 9;
    if (s[8] != '.' || k < 1 || k > 6 || digits(s + 9, k, us) < 0)
        return -1;
    for (int i = k; i < 6; i++)
        *us *= 10;
    return 0;
}

/* YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}] (PostgreSQL's worker writes the T, Django's
 * SQLite columns hold the space: fromisoformat reads both alike) */
PyObject *fast_timestamp(const char *s, Py_ssize_t n, PyObject *tz)
{
    int y, m, d, h, mi, sec, us;
    PyObject *v = NULL;
    if (n >= 19 && (s[10] == 'T' || s[10] == ' ') && parse_date(s, 10, &y, &m, &d) == 0
        && parse_time(s + 11, n - 11, &h, &mi, &sec, &us) == 0)
        v = PyDateTimeAPI->DateTime_FromDateAndTime(y, m, d, h, mi, sec, us, tz, PyDateTimeAPI->DateTimeType);
    if (!v)
        PyErr_Clear();
    return v;
}

PyObject *fast_temporal(enum row_kind kind, const char *s, Py_ssize_t n)
{
    int y, m, d, h, mi, sec, us;
    PyObject *v = NULL;
    if (kind == RK_TIMESTAMP)
        return fast_timestamp(s, n, Py_None);
    if (kind == RK_DATE && n == 10 && parse_date(s, n, &y, &m, &d) == 0)
        v = PyDate_FromDate(y, m, d);
    else if (kind == RK_TIME && parse_time(s, n, &h, &mi, &sec, &us) == 0)
        v = PyTime_FromTime(h, mi, sec, us);
    if (!v)
        PyErr_Clear();
    return v;
}

static PyObject *unconvertible(const char *what, PyObject *v)
{
    PyErr_Format(rows_unconvertible, "%s value %R from the worker", what, v);
    return NULL;
}

/* fromisoformat, its ValueError as Unconvertible for date and timestamp
 * (infinity, BC: psycopg refuses them too) */
static PyObject *slow_temporal(enum row_kind kind, PyObject *v)
{
    PyObject *f = kind == RK_DATE ? date_fromiso : kind == RK_TIME ? time_fromiso : datetime_fromiso;
    PyObject *out = PyObject_CallOneArg(f, v);
    if (!out && kind != RK_TIME && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        PyErr_Format(rows_unconvertible, "%s %R", kind == RK_DATE ? "date" : "timestamp", v);
    }
    return out;
}

/* a hex digit's value + 1 (lowercase, as PostgreSQL and Django write them); 0: not one */
static const unsigned char HEX1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9,
    ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* uuid.UUID for lowercase 8-4-4-4-12 text (PostgreSQL's) or 32 hex digits
 * (Django's SQLite char(32)), without running UUID.__init__'s Python: its
 * int from the 16 bytes and its two slots set through UUID's own
 * descriptors. A UUID cannot take part in a cycle (it is immutable and holds
 * an int and a SafeUUID member), so it leaves the collector's lists, as a
 * tuple of atoms does. NULL without an exception: another spelling. */
PyObject *uuid_from_text(const char *s, Py_ssize_t n)
{
    /* where the 32 digits are, in 8-4-4-4-12 text and in 32 digits */
    static const unsigned char DASHED[32] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17,
                                             19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
    static const unsigned char PLAIN[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    if (n == 36 && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-'))
        return NULL;
    if (n != 36 && n != 32)
        return NULL;
    const unsigned char *at = n == 36 ? DASHED : PLAIN;
    unsigned char bytes[16];
    unsigned bad = 0;
    for (int j = 0; j < 16; j++) {
        /* not a digit: HEX1 is 0, and the value wraps past 15 */
        unsigned h = HEX1[(unsigned char)s[at[2 * j]]] - 1u, l = HEX1[(unsigned char)s[at[2 * j + 1]]] - 1u;
        bad |= h | l;
        bytes[j] = (unsigned char)(h << 4 | (l & 0x0f));
    }
    if (bad > 15)
        return NULL;
    PyObject *i = _PyLong_FromByteArray(bytes, sizeof bytes, 0, 0);
    if (!i)
        return NULL;
    PyTypeObject *t = (PyTypeObject *)uuid_cls;
    PyObject *u = t->tp_new(t, empty_tuple, NULL);
    if (!u || Py_TYPE(uuid_int_slot)->tp_descr_set(uuid_int_slot, u, i) < 0
        || Py_TYPE(uuid_is_safe_slot)->tp_descr_set(uuid_is_safe_slot, u, uuid_unknown) < 0)
        Py_CLEAR(u);
    Py_DECREF(i);
    if (u && PyObject_GC_IsTracked(u))
        PyObject_GC_UnTrack(u);
    return u;
}

int row_is_sealed(PyObject *v)
{
    if (!PyObject_IS_GC(v))
        return 1;
    if (PyObject_GC_IsTracked(v))
        return 0;
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyTuple_Type || (t == (PyTypeObject *)uuid_cls && t->tp_dictoffset == 0);
}

/* uuid.UUID(s) for a str: uuid_from_text, other spellings through UUID() itself */
PyObject *uuid_value(PyObject *v)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (!s)
        return NULL;
    PyObject *u = uuid_from_text(s, n);
    return u || PyErr_Occurred() ? u : PyObject_CallOneArg(uuid_cls, v);
}

static PyObject *with_tzinfo(PyObject *dt, PyObject *tz)
{
    return PyDateTimeAPI->DateTime_FromDateAndTimeAndFold(
        PyDateTime_GET_YEAR(dt), PyDateTime_GET_MONTH(dt), PyDateTime_GET_DAY(dt),
        PyDateTime_DATE_GET_HOUR(dt), PyDateTime_DATE_GET_MINUTE(dt), PyDateTime_DATE_GET_SECOND(dt),
        PyDateTime_DATE_GET_MICROSECOND(dt), tz, PyDateTime_DATE_GET_FOLD(dt),
        PyDateTimeAPI->DateTimeType);
}

/* rows.py: v.astimezone(zone).replace(tzinfo=django_tz) */
static PyObject *timestamptz_value(const row_options *o, PyObject *v)
{
    if (!PyDateTime_Check(v)) {
        PyErr_Format(rows_unconvertible, "timestamptz %R", v);
        return NULL;
    }
    PyObject *local = o->zone_is_utc ? Py_NewRef(v) : PyObject_CallMethodOneArg(v, str_astimezone, o->zone);
    if (!local)
        return NULL;
    PyObject *out = with_tzinfo(local, o->django_tz);
    Py_DECREF(local);
    return out;
}

static int interval_field(PyObject *v, const char *name, long long *out)
{
    PyObject *f = PyDict_GetItemString(v, name);
    if (!f) {
        PyErr_SetString(PyExc_KeyError, name);
        return -1;
    }
    if (!PyLong_Check(f)) {
        PyErr_Format(PyExc_TypeError, "interval %s is a %s, not an int", name, Py_TYPE(f)->tp_name);
        return -1;
    }
    *out = PyLong_AsLongLong(f);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* rows.py (psycopg): a month is 30 days and a year 365 */
static PyObject *interval_value(PyObject *v)
{
    long long months, days, micros;
    if (!PyDict_Check(v))
        return unconvertible("interval", v);
    if (interval_field(v, "months", &months) < 0 || interval_field(v, "days", &days) < 0
        || interval_field(v, "micros", &micros) < 0)
        return NULL;
    const long long cap = 1LL << 40;   /* far past timedelta's range, far from overflow */
    if (months > cap || months < -cap || days > cap || days < -cap) {
        PyErr_SetString(PyExc_OverflowError, "interval out of timedelta's range");
        return NULL;
    }
    long long am = months < 0 ? -months : months, sign = months < 0 ? -1 : 1;
    long long total_days = days + sign * (365 * (am / 12) + 30 * (am % 12));
    const long long day_us = 86400000000LL;
    long long extra = micros / day_us, rem = micros % day_us;
    if (rem < 0)
        rem += day_us, extra--;
    total_days += extra;
    if (total_days > 999999999 || total_days < -999999999) {
        PyErr_Format(PyExc_OverflowError, "days=%lld; must have magnitude <= 999999999", total_days);
        return NULL;
    }
    return PyDelta_FromDSU((int)total_days, (int)(rem / 1000000), (int)(rem % 1000000));
}

/* one non-null scalar value in the Django profile */
static PyObject *django_leaf(const row_options *o, enum row_kind kind, PyObject *v)
{
    switch (kind) {
    case RK_NUMERIC:
        return PyUnicode_Check(v) ? PyObject_CallOneArg(decimal_cls, v) : unconvertible("numeric", v);
    case RK_JSON:
        return PyUnicode_Check(v) ? json_parse(v) : unconvertible("json", v);
    case RK_UUID:
        return PyUnicode_Check(v) ? uuid_value(v) : unconvertible("uuid", v);
    case RK_BYTEA:
        return PyBytes_Check(v) ? Py_NewRef(v) : unconvertible("bytea", v);
    case RK_DATE:
    case RK_TIME:
    case RK_TIMESTAMP: {
        if (!PyUnicode_Check(v))
            return unconvertible(kind == RK_DATE ? "date" : kind == RK_TIME ? "time" : "timestamp", v);
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (!s)
            return NULL;
        PyObject *out = fast_temporal(kind, s, n);
        return out ? out : slow_temporal(kind, v);
    }
    case RK_TIMESTAMPTZ:
        return timestamptz_value(o, v);
    case RK_INTERVAL:
        return interval_value(v);
    case RK_JSON_FIELD:
        return json_field_value(v);
    default:
        return Py_NewRef(v);
    }
}

/* rows.py _array: nested lists of the element conversion */
static PyObject *django_array(const row_options *o, const col_plan *c, int depth, PyObject *v)
{
    if (!PyList_Check(v)) {
        PyErr_SetString(rows_unconvertible, "an array with lower bounds other than 1");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(v);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *x = PyList_GET_ITEM(v, i), *y;
        if (x == Py_None)
            y = Py_NewRef(x);
        else if (PyList_Check(x))
            y = django_array(o, c, depth, x);
        else
            y = depth > 1 ? django_array(o, c, depth - 1, x) : django_leaf(o, c->kind, x);
        if (!y)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, y);
    }
    return out;
}

/* decoding.py _deep: the conversion of str values, through lists */
static PyObject *client_deep(const col_plan *c, PyObject *v)
{
    if (PyList_Check(v)) {
        Py_ssize_t n = PyList_GET_SIZE(v);
        PyObject *out = PyList_New(n);
        for (Py_ssize_t i = 0; out && i < n; i++) {
            PyObject *x = PyList_GET_ITEM(v, i);
            PyObject *y = x == Py_None ? Py_NewRef(x) : client_deep(c, x);
            if (!y)
                Py_CLEAR(out);
            else
                PyList_SET_ITEM(out, i, y);
        }
        return out;
    }
    if (!PyUnicode_Check(v))
        return Py_NewRef(v);
    return c->kind == RK_NUMERIC ? PyObject_CallOneArg(decimal_cls, v) : json_parse(v);
}

/* Django: a value converted straight from the payload's bytes, without a
 * msgpack object in between: the worker's text of a temporal, a uuid or a
 * JSON document, and a timestamptz of a UTC session (its instant with
 * Django's tzinfo at once). NULL without an exception (r unmoved) when
 * these do not read it: col_value then converts its msgpack value. */
static PyObject *django_payload_value(const row_options *o, enum row_kind kind, enum mp_kind k, mp_reader *r)
{
    mp_reader at = *r;
    PyObject *out = NULL;
    if (k == MP_EXT && kind == RK_TIMESTAMPTZ && o->zone_is_utc) {
        int8_t code;
        const uint8_t *body;
        uint32_t n;
        if (mp_ext(r, &code, &body, &n) < 0)
            return NULL;
        if (code == -1)
            out = mp_timestamp_tz(body, n, o->django_tz);
    } else if (k == MP_STR && (kind == RK_DATE || kind == RK_TIME || kind == RK_TIMESTAMP || kind == RK_UUID
                               || kind == RK_JSON || kind == RK_JSON_FIELD)) {
        const char *s;
        uint32_t n;
        if (mp_str(r, &s, &n) < 0)
            return NULL;
        if (kind == RK_UUID)
            out = uuid_from_text(s, n);
        else if (kind == RK_JSON || kind == RK_JSON_FIELD) {
            if (json_fast_parse_utf8(s, n, &out) <= 0)
                out = NULL;   /* declined, or out of memory (raised) */
        } else
            out = fast_temporal(kind, s, n);
    }
    if (!out)
        *r = at;
    return out;
}

PyObject *col_value(const row_options *o, const col_plan *c, mp_reader *r)
{
    enum mp_kind k = mp_peek(r);
    if (k == MP_NIL) {
        r->p++;
        Py_RETURN_NONE;
    }
    if (c->kind >= RK_SQ_CALL)
        return sqlite_col_value(c, r);
    /* (a Django array still checks its shape: lower bounds are refused) */
    if (c->kind == RK_ASIS && c->array_depth == 0)
        return mp_value(r);
    if (o->django && c->array_depth == 0) {
        PyObject *out = django_payload_value(o, c->kind, k, r);
        if (out || PyErr_Occurred())
            return out;
    }
    PyObject *v = mp_value(r);
    if (!v)
        return NULL;
    PyObject *out = !o->django ? client_deep(c, v)
                  : c->array_depth ? django_array(o, c, c->array_depth, v)
                  : django_leaf(o, c->kind, v);
    Py_DECREF(v);
    return out;
}
