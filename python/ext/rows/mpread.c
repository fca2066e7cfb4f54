/* The bounded MsgPack reader (mpread.h). */
#include "mpread.h"

#include <datetime.h>
#include <string.h>

static PyObject *ext_type_cls;   /* msgpack.ExtType, imported on first use */

int mp_init(void)
{
    PyDateTime_IMPORT;
    return PyDateTimeAPI ? 0 : -1;
}

PyObject *mp_error(const mp_reader *r, const char *what)
{
    (void)r;
    PyErr_Format(PyExc_ValueError, "malformed result payload: %s", what);
    return NULL;
}

static int need(const mp_reader *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        mp_error(r, "truncated");
        return -1;
    }
    return 0;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

/* a length field of `width` bytes after the marker byte */
static int read_len(mp_reader *r, int width, uint32_t *n)
{
    if (need(r, 1 + (size_t)width) < 0)
        return -1;
    const uint8_t *q = r->p + 1;
    *n = width == 1 ? q[0] : width == 2 ? be16(q) : be32(q);
    r->p += 1 + width;
    return 0;
}

/* an array or map header: fix range [fix, fix + 15], then the 16- and 32-bit
 * forms; each item takes at least item_bytes, so a count past the payload is
 * refused before anything is allocated for it */
static int container_header(mp_reader *r, uint8_t fix, uint8_t m16, size_t item_bytes,
                            const char *what, uint32_t *n)
{
    if (need(r, 1) < 0)
        return -1;
    uint8_t b = *r->p;
    if (b >= fix && b <= fix + 15) {
        *n = b & 0x0f;
        r->p++;
    } else if (b == m16 || b == m16 + 1) {
        if (read_len(r, b == m16 ? 2 : 4, n) < 0)
            return -1;
    } else {
        PyErr_Format(PyExc_ValueError, "malformed result payload: %s was expected", what);
        return -1;
    }
    if (*n > (size_t)(r->end - r->p) / item_bytes) {
        PyErr_Format(PyExc_ValueError, "malformed result payload: %s longer than the payload", what);
        return -1;
    }
    return 0;
}

int mp_array_header(mp_reader *r, uint32_t *n)
{
    return container_header(r, 0x90, 0xdc, 1, "an array", n);
}

int mp_map_header(mp_reader *r, uint32_t *n)
{
    return container_header(r, 0x80, 0xde, 2, "a map", n);
}

/* str or bin body: the header, then n bytes that must be there */
static int sized(mp_reader *r, int width, const uint8_t **s, uint32_t *n)
{
    if (read_len(r, width, n) < 0 || need(r, *n) < 0)
        return -1;
    *s = r->p;
    r->p += *n;
    return 0;
}

int mp_str(mp_reader *r, const char **s, uint32_t *n)
{
    if (need(r, 1) < 0)
        return -1;
    uint8_t b = *r->p;
    const uint8_t *body;
    if (b >= 0xa0 && b <= 0xbf) {
        *n = b & 0x1f;
        r->p++;
        if (need(r, *n) < 0)
            return -1;
        *s = (const char *)r->p;
        r->p += *n;
        return 0;
    }
    if (b < 0xd9 || b > 0xdb) {
        mp_error(r, "a str was expected");
        return -1;
    }
    if (sized(r, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, &body, n) < 0)
        return -1;
    *s = (const char *)body;
    return 0;
}

int mp_ext(mp_reader *r, int8_t *code, const uint8_t **body, uint32_t *len)
{
    if (need(r, 1) < 0)
        return -1;
    uint8_t b = *r->p;
    if (b >= 0xd4 && b <= 0xd8) {
        *len = 1u << (b - 0xd4);
        if (need(r, 2 + (size_t)*len) < 0)
            return -1;
        r->p++;
    } else if (b >= 0xc7 && b <= 0xc9) {
        if (read_len(r, b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4, len) < 0 || need(r, 1 + (size_t)*len) < 0)
            return -1;
    } else {
        mp_error(r, "an extension was expected");
        return -1;
    }
    *code = (int8_t)r->p[0];
    *body = r->p + 1;
    r->p += 1 + *len;
    return 0;
}

/* days since 1970-01-01 to a civil date (H. Hinnant's algorithm) */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

PyObject *mp_timestamp(const uint8_t *body, uint32_t len)
{
    return mp_timestamp_tz(body, len, PyDateTime_TimeZone_UTC);
}

PyObject *mp_timestamp_tz(const uint8_t *body, uint32_t len, PyObject *tz)
{
    int64_t sec;
    uint32_t nsec;
    if (len == 4) {
        sec = be32(body);
        nsec = 0;
    } else if (len == 8) {
        uint64_t v = be64(body);
        nsec = (uint32_t)(v >> 34);
        sec = (int64_t)(v & 0x00000003FFFFFFFFull);
    } else if (len == 12) {
        nsec = be32(body);
        sec = (int64_t)be64(body + 4);
    } else {
        PyErr_SetString(PyExc_ValueError, "malformed result payload: a timestamp of bad length");
        return NULL;
    }
    /* msgpack: epoch + timedelta(seconds=sec, microseconds=nsec // 1000) */
    int64_t us = nsec / 1000;
    const int64_t limit = 400000LL * 366 * 86400;   /* past datetime's range either way */
    if (sec > -limit && sec < limit) {
        int64_t s = sec + us / 1000000;
        us %= 1000000;
        int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
        int64_t rem = s - days * 86400;
        int64_t y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        if (y >= 1 && y <= 9999)
            return PyDateTimeAPI->DateTime_FromDateAndTime(
                (int)y, (int)m, (int)d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
                (int)us, tz, PyDateTimeAPI->DateTimeType);
    }
    PyErr_SetString(PyExc_OverflowError, "date value out of range");
    return NULL;
}

static PyObject *ext_value(mp_reader *r)
{
    int8_t code;
    const uint8_t *body;
    uint32_t len;
    if (mp_ext(r, &code, &body, &len) < 0)
        return NULL;
    if (code == -1)
        return mp_timestamp(body, len);
    if (!ext_type_cls) {
        PyObject *m = PyImport_ImportModule("msgpack");
        if (!m)
            return NULL;
        ext_type_cls = PyObject_GetAttrString(m, "ExtType");
        Py_DECREF(m);
        if (!ext_type_cls)
            return NULL;
    }
    return PyObject_CallFunction(ext_type_cls, "iy#", (int)code, (const char *)body, (Py_ssize_t)len);
}

static PyObject *int_value(mp_reader *r)
{
    uint8_t b = *r->p;
    if (b <= 0x7f || b >= 0xe0) {
        r->p++;
        return PyLong_FromLong((int8_t)b);
    }
    static const int widths[] = {1, 2, 4, 8, 1, 2, 4, 8};   /* 0xcc..0xd3 */
    int w = widths[b - 0xcc];
    if (need(r, 1 + (size_t)w) < 0)
        return NULL;
    const uint8_t *q = r->p + 1;
    r->p += 1 + w;
    uint64_t u = w == 1 ? q[0] : w == 2 ? be16(q) : w == 4 ? be32(q) : be64(q);
    if (b <= 0xcf)
        return PyLong_FromUnsignedLongLong(u);
    int64_t s = w == 1 ? (int8_t)u : w == 2 ? (int16_t)u : w == 4 ? (int32_t)u : (int64_t)u;
    return PyLong_FromLongLong(s);
}

/* float32 (widened, as msgpack does) or float64 */
static PyObject *float_value(mp_reader *r)
{
    int wide = *r->p == 0xcb;
    if (need(r, wide ? 9 : 5) < 0)
        return NULL;
    double d;
    if (wide) {
        uint64_t u = be64(r->p + 1);
        memcpy(&d, &u, 8);
    } else {
        uint32_t u = be32(r->p + 1);
        float f;
        memcpy(&f, &u, 4);
        d = f;
    }
    r->p += wide ? 9 : 5;
    return PyFloat_FromDouble(d);
}

static PyObject *container_value(mp_reader *r, int is_map)
{
    uint32_t n;
    if ((is_map ? mp_map_header(r, &n) : mp_array_header(r, &n)) < 0)
        return NULL;
    if (++r->depth > MP_MAX_DEPTH) {
        r->depth--;
        return mp_error(r, "nested too deeply");
    }
    PyObject *out = is_map ? PyDict_New() : PyList_New(n);
    for (uint32_t i = 0; out && i < n; i++) {
        PyObject *k = is_map ? mp_value(r) : NULL;
        if (is_map && !k) {
            Py_CLEAR(out);
            break;
        }
        PyObject *v = mp_value(r);
        if (!v) {
            Py_XDECREF(k);
            Py_CLEAR(out);
            break;
        }
        if (!is_map) {
            PyList_SET_ITEM(out, i, v);
            continue;
        }
        int rc = PyDict_SetItem(out, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            Py_CLEAR(out);
    }
    r->depth--;
    return out;
}

/* One slot per hash of a str's length and three of its bytes; a slot
 * holds the last str that landed in it. */
#define SHORT_STRS 64
#define SHORT_STR_MAX 24
static PyObject *short_strs[SHORT_STRS];

PyObject *mp_short_str(const char *s, uint32_t n)
{
    if (n == 0 || n > SHORT_STR_MAX)
        return PyUnicode_DecodeUTF8(s, n, NULL);
    unsigned h = (n * 31u + (uint8_t)s[0] * 7u + (uint8_t)s[n / 2] * 3u + (uint8_t)s[n - 1]) % SHORT_STRS;
    PyObject *k = short_strs[h];   /* ASCII: one byte a character */
    if (k && (uint32_t)PyUnicode_GET_LENGTH(k) == n && memcmp(PyUnicode_DATA(k), s, n) == 0)
        return Py_NewRef(k);
    PyObject *str = PyUnicode_DecodeUTF8(s, n, NULL);
    if (!str || !PyUnicode_IS_ASCII(str))
        return str;
    if (PyObject_Hash(str) == -1) {   /* cached in the str from now on */
        Py_DECREF(str);
        return NULL;
    }
    Py_XSETREF(short_strs[h], Py_NewRef(str));
    return str;
}

PyObject *mp_value(mp_reader *r)
{
    const char *s;
    const uint8_t *body;
    uint32_t n;
    switch (mp_peek(r)) {
    case MP_NIL:
        r->p++;
        Py_RETURN_NONE;
    case MP_BOOL:
        return PyBool_FromLong(*r->p++ == 0xc3);
    case MP_INT:
        return int_value(r);
    case MP_FLOAT:
        return float_value(r);
    case MP_STR:
        if (mp_str(r, &s, &n) < 0)
            return NULL;
        return PyUnicode_DecodeUTF8(s, n, NULL);
    case MP_BIN:
        if (sized(r, *r->p == 0xc4 ? 1 : *r->p == 0xc5 ? 2 : 4, &body, &n) < 0)
            return NULL;
        return PyBytes_FromStringAndSize((const char *)body, n);
    case MP_ARRAY:
        return container_value(r, 0);
    case MP_MAP:
        return container_value(r, 1);
    case MP_EXT:
        return ext_value(r);
    case MP_BAD:
        break;
    }
    return mp_error(r, r->p >= r->end ? "truncated" : "an invalid MsgPack byte");
}

int mp_skip(mp_reader *r)
{
    const char *s;
    const uint8_t *body;
    uint32_t n;
    int8_t code;
    switch (mp_peek(r)) {
    case MP_NIL:
    case MP_BOOL:
        r->p++;
        return 0;
    case MP_INT:
    case MP_FLOAT: {
        uint8_t b = *r->p;
        size_t w = (b <= 0x7f || b >= 0xe0) ? 0
                 : b == 0xca ? 4 : b == 0xcb ? 8
                 : (size_t)1 << ((b - 0xcc) & 3);
        if (need(r, 1 + w) < 0)
            return -1;
        r->p += 1 + w;
        return 0;
    }
    case MP_STR:
        return mp_str(r, &s, &n);
    case MP_BIN:
        return sized(r, *r->p == 0xc4 ? 1 : *r->p == 0xc5 ? 2 : 4, &body, &n);
    case MP_EXT:
        return mp_ext(r, &code, &body, &n);
    case MP_ARRAY:
    case MP_MAP: {
        int is_map = mp_peek(r) == MP_MAP;
        if ((is_map ? mp_map_header(r, &n) : mp_array_header(r, &n)) < 0)
            return -1;
        if (++r->depth > MP_MAX_DEPTH) {
            r->depth--;
            mp_error(r, "nested too deeply");
            return -1;
        }
        uint64_t items = (uint64_t)n * (is_map ? 2 : 1);
        for (uint64_t i = 0; i < items; i++)
            if (mp_skip(r) < 0) {
                r->depth--;
                return -1;
            }
        r->depth--;
        return 0;
    }
    case MP_BAD:
        break;
    }
    mp_error(r, r->p >= r->end ? "truncated" : "an invalid MsgPack byte");
    return -1;
}
