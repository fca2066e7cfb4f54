/* json_fast.h: a recursive descent over UTF-8 bytes (a str's own for
 * ASCII text, its UTF-8 form, or a payload's bytes); every byte of a
 * multi-byte character is >= 0x80, so it is only ever part of a string's
 * text, and a string whose bytes are not UTF-8 is declined. */
#include "json_fast.h"

#include <stdint.h>
#include <string.h>

/* deeper documents go to json's scanner (which has its own limit) */
#define JSON_FAST_MAX_DEPTH 32
/* the longest number text handed to PyOS_string_to_double */
#define JSON_FAST_MAX_NUMBER 64
/* Object keys repeat from document to document (a column's documents share
 * their shape), and so do short values (a status, a tag): the str of a
 * short ASCII key or value stays in a small table indexed by a hash of its
 * bytes, so a repeated one costs a compare instead of a new str and its
 * dealloc (and a key its hash, which the str keeps). A colliding text
 * replaces the slot's. */
#define STR_CACHE_SLOTS 256
#define STR_CACHE_MAX_KEY 32
#define STR_CACHE_MAX_VALUE 16

static PyObject *str_cache[STR_CACHE_SLOTS];

typedef struct {
    const char *p;
    const char *end;
    int depth;
} json_in;

enum { DECLINE = 0, ERROR = -1 };

static void skip_space(json_in *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
        in->p++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static PyObject *value(json_in *in, int *rc);

/* s[0..n) as a str; text that is not UTF-8 is declined */
static PyObject *utf8_str(const char *s, Py_ssize_t n, int *rc)
{
    PyObject *str = PyUnicode_DecodeUTF8(s, n, NULL);
    if (!str) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            PyErr_Clear();
        else
            *rc = ERROR;
    }
    return str;
}

/* an ASCII text's str through str_cache (FNV-1a of its bytes picks the slot) */
static PyObject *cached_str(const char *s, Py_ssize_t n, int *rc)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    PyObject **slot = &str_cache[h % STR_CACHE_SLOTS];
    PyObject *k = *slot;
    if (k && PyUnicode_GET_LENGTH(k) == n && memcmp(PyUnicode_DATA(k), s, (size_t)n) == 0)
        return Py_NewRef(k);
    k = utf8_str(s, n, rc);
    if (k)
        Py_XSETREF(*slot, Py_NewRef(k));
    return k;
}

/* a string at '"' with no escape and no control character; a short one
 * may come from str_cache */
static PyObject *string(json_in *in, int *rc, int is_key)
{
    const char *s = ++in->p;
    unsigned char high = 0;
    while (in->p < in->end && *in->p != '"') {
        if (*in->p == '\\' || (unsigned char)*in->p < 0x20)
            return NULL;   /* declined */
        high |= (unsigned char)*in->p;
        in->p++;
    }
    if (in->p == in->end)
        return NULL;
    Py_ssize_t n = in->p - s;
    in->p++;
    if (high < 0x80 && n <= (is_key ? STR_CACHE_MAX_KEY : STR_CACHE_MAX_VALUE))
        return cached_str(s, n, rc);
    return utf8_str(s, n, rc);
}

/* json's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
static PyObject *number(json_in *in, int *rc)
{
    const char *s = in->p;
    int is_float = 0;
    if (in->p < in->end && *in->p == '-')
        in->p++;
    if (in->p == in->end || !is_digit(*in->p))
        return NULL;   /* -Infinity, or an error: json's */
    if (*in->p == '0')
        in->p++;
    else
        while (in->p < in->end && is_digit(*in->p))
            in->p++;
    if (in->p + 1 < in->end && *in->p == '.' && is_digit(in->p[1])) {
        is_float = 1;
        in->p++;
        while (in->p < in->end && is_digit(*in->p))
            in->p++;
    }
    if (in->p < in->end && (*in->p == 'e' || *in->p == 'E')) {
        const char *e = in->p + 1;
        if (e < in->end && (*e == '-' || *e == '+'))
            e++;
        if (e < in->end && is_digit(*e)) {
            is_float = 1;
            in->p = e;
            while (in->p < in->end && is_digit(*in->p))
                in->p++;
        }
    }
    Py_ssize_t n = in->p - s;
    PyObject *v;
    if (!is_float) {
        if (n > 18 + (*s == '-'))
            return NULL;   /* past long long: json's int() (and its digit limit) */
        long long x = 0;
        for (const char *d = *s == '-' ? s + 1 : s; d < in->p; d++)
            x = x * 10 + (*d - '0');
        v = PyLong_FromLongLong(*s == '-' ? -x : x);
    } else {
        if (n >= JSON_FAST_MAX_NUMBER)
            return NULL;
        char buf[JSON_FAST_MAX_NUMBER];
        memcpy(buf, s, (size_t)n);
        buf[n] = '\0';
        /* float(text) of a JSON number: out of range gives inf, as float() does */
        double d = PyOS_string_to_double(buf, NULL, NULL);
        v = d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
    }
    if (!v)
        *rc = ERROR;
    return v;
}

static PyObject *array(json_in *in, int *rc)
{
    PyObject *list = PyList_New(0);
    if (!list) {
        *rc = ERROR;
        return NULL;
    }
    in->p++;
    skip_space(in);
    if (in->p < in->end && *in->p == ']') {
        in->p++;
        return list;
    }
    for (;;) {
        PyObject *item = value(in, rc);
        if (!item || PyList_Append(list, item) < 0) {
            if (item)
                *rc = ERROR;
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
        skip_space(in);
        if (in->p < in->end && *in->p == ',') {
            in->p++;
            continue;
        }
        if (in->p < in->end && *in->p == ']') {
            in->p++;
            return list;
        }
        Py_DECREF(list);
        return NULL;
    }
}

/* an object: its keys set in order, a repeated key keeping the last value */
static PyObject *object(json_in *in, int *rc)
{
    PyObject *dict = PyDict_New();
    if (!dict) {
        *rc = ERROR;
        return NULL;
    }
    in->p++;
    skip_space(in);
    if (in->p < in->end && *in->p == '}') {
        in->p++;
        return dict;
    }
    for (;;) {
        skip_space(in);
        if (in->p == in->end || *in->p != '"')
            break;
        PyObject *key = string(in, rc, 1);
        if (!key)
            break;
        skip_space(in);
        PyObject *val = NULL;
        if (in->p < in->end && *in->p == ':') {
            in->p++;
            val = value(in, rc);
        }
        int set = val ? PyDict_SetItem(dict, key, val) : -1;
        Py_DECREF(key);
        Py_XDECREF(val);
        if (set < 0) {
            if (val)
                *rc = ERROR;
            break;
        }
        skip_space(in);
        if (in->p < in->end && *in->p == ',') {
            in->p++;
            continue;
        }
        if (in->p < in->end && *in->p == '}') {
            in->p++;
            return dict;
        }
        break;
    }
    Py_DECREF(dict);
    return NULL;
}

static int word(json_in *in, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(in->end - in->p) < n || memcmp(in->p, w, n) != 0)
        return 0;
    in->p += n;
    return 1;
}

/* the next value (leading space skipped), or NULL: declined (*rc left
 * DECLINE) or an exception (*rc ERROR) */
static PyObject *value(json_in *in, int *rc)
{
    skip_space(in);
    if (in->p == in->end)
        return NULL;
    PyObject *v = NULL;
    switch (*in->p) {
    case '{':
    case '[':
        if (in->depth >= JSON_FAST_MAX_DEPTH)
            return NULL;
        in->depth++;
        v = *in->p == '{' ? object(in, rc) : array(in, rc);
        in->depth--;
        return v;
    case '"':
        return string(in, rc, 0);
    case 't':
        return word(in, "true") ? Py_NewRef(Py_True) : NULL;
    case 'f':
        return word(in, "false") ? Py_NewRef(Py_False) : NULL;
    case 'n':
        return word(in, "null") ? Py_NewRef(Py_None) : NULL;
    default:
        return number(in, rc);
    }
}

int json_fast_parse(PyObject *text, PyObject **out)
{
    if (!PyUnicode_Check(text))
        return DECLINE;
    const char *s;
    Py_ssize_t n;
    if (PyUnicode_IS_ASCII(text)) {
        s = (const char *)PyUnicode_DATA(text);
        n = PyUnicode_GET_LENGTH(text);
    } else if (!(s = PyUnicode_AsUTF8AndSize(text, &n))) {   /* a lone surrogate: json's */
        PyErr_Clear();
        return DECLINE;
    }
    return json_fast_parse_utf8(s, n, out);
}

int json_fast_parse_utf8(const char *s, Py_ssize_t n, PyObject **out)
{
    json_in in = {s, s + n, 0};
    int rc = DECLINE;
    PyObject *v = value(&in, &rc);
    if (!v)
        return rc;
    skip_space(&in);
    if (in.p != in.end) {   /* extra data: json's error */
        Py_DECREF(v);
        return DECLINE;
    }
    *out = v;
    return 1;
}
