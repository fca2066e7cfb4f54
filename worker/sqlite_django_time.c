/* Django's SQLite date and time functions (django_date_extract ...
 * django_timestamp_diff), computed the way Django computes them in Python
 * (django/db/backends/sqlite3/_functions.py with typecast_timestamp /
 * typecast_time from django/db/backends/utils.py), so that a query the
 * worker runs for Django gives what Django's own connection would.
 *
 * Python's outcomes come in three kinds, and so do ours:
 *   - a value;
 *   - None, where Django catches the parse error (ValueError/TypeError);
 *   - an exception, which SQLite reports as an error: we raise an error too;
 * and a fourth of our own: input whose Python result we do not reproduce
 * (non-ASCII digits or spaces, exotic offset spellings) raises an error
 * tagged MW_DJANGO_UNSUPPORTED, so the Django adapter runs the query through
 * the ORM instead. Never a different answer. */
#include "sqlite_django.h"

#include "civil.h"
#include "sqlite_tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* R_FALSY: typecast_timestamp returned None for a falsy value ("", 0, b"")
 * without raising, and Python goes on with dt = None */
typedef enum { R_OK, R_NONE, R_ERROR, R_UNSUPPORTED, R_FALSY } outcome;

typedef struct {
    int is_date; /* a date (no time fields), as typecast_date returns */
    int64_t y;
    int mo, d, h, mi, s, us;
} pydt;

typedef struct {
    sqlite3_context *ctx;
    char why[160];
    const mw_tz *zones[2]; /* held until datetime_parse returns */
    int nzones;
} call;

static outcome fail(call *c, outcome o, const char *why)
{
    snprintf(c->why, sizeof c->why, "%s", why);
    return o;
}

static void report(call *c, outcome o, const char *fn)
{
    char msg[256];
    if (o == R_NONE) {
        sqlite3_result_null(c->ctx);
        return;
    }
    if (o == R_UNSUPPORTED)
        snprintf(msg, sizeof msg, MW_DJANGO_UNSUPPORTED " %s: %s", fn, c->why);
    else
        snprintf(msg, sizeof msg, "%s: %s", fn, c->why);
    sqlite3_result_error(c->ctx, msg, -1);
}

/* ---- Python's str methods and int(), on ASCII ---------------------------- */

static int py_space(char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}

static int ascii_only(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* int(s[0..n)): surrounding whitespace, a sign, digits with single
 * underscores between them. Fails (ValueError) otherwise, or when the value
 * is too large for anything a date could hold. */
static int py_int(const char *s, int n, int64_t *out)
{
    int i = 0, j = n;
    while (i < j && py_space(s[i]))
        i++;
    while (j > i && py_space(s[j - 1]))
        j--;
    int neg = 0;
    if (i < j && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == j || s[i] == '_' || s[j - 1] == '_')
        return -1;
    int64_t v = 0;
    for (int k = i; k < j; k++) {
        if (s[k] == '_') {
            if (s[k - 1] == '_')
                return -1;
            continue;
        }
        if (s[k] < '0' || s[k] > '9')
            return -1;
        if (v > (INT64_MAX / 100))
            v = INT64_MAX / 100; /* saturate: out of every range below */
        else
            v = v * 10 + (s[k] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* s.split(sep) into at most `max` parts; returns the number of parts, or
 * max + 1 when there are more. */
static int split_on(const char *s, int n, char sep, const char **p, int *len, int max)
{
    int k = 0, start = 0;
    for (int i = 0; i <= n; i++) {
        if (i == n || s[i] == sep) {
            if (k == max)
                return max + 1;
            p[k] = s + start;
            len[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

static int memhas(const char *s, int n, char ch)
{
    return n > 0 && memchr(s, ch, (size_t)n) != NULL;
}

static int valid_ymd(int64_t y, int64_t m, int64_t d)
{
    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 &&
           d <= civil_days_in_month(y, (int)m);
}

/* ---- typecast_date / typecast_timestamp / typecast_time ---------------- */

/* typecast_date(s), s non-empty: date(*map(int, s.split("-"))) */
static outcome typecast_date(call *c, const char *s, int n, pydt *out)
{
    const char *p[4];
    int len[4];
    int k = split_on(s, n, '-', p, len, 3);
    int64_t v[3];
    for (int i = 0; i < k && i < 3; i++)
        if (py_int(p[i], len[i], &v[i]) < 0)
            return fail(c, R_NONE, "not a date");
    if (k != 3 || !valid_ymd(v[0], v[1], v[2]))
        return fail(c, R_NONE, "not a date");
    memset(out, 0, sizeof *out);
    out->is_date = 1;
    out->y = v[0];
    out->mo = (int)v[1];
    out->d = (int)v[2];
    return R_OK;
}

/* seconds.split(".") into the seconds text and the padded microseconds
 * text ((f + "000000")[:6]); more than one '.' is a ValueError. */
static int split_seconds(const char *s, int n, const char **sec, int *sec_len, char frac[7])
{
    const char *p[3];
    int len[3];
    int k = split_on(s, n, '.', p, len, 2);
    if (k > 2)
        return -1;
    memcpy(frac, "000000", 7);
    if (k == 2)
        memcpy(frac, p[1], (size_t)(len[1] < 6 ? len[1] : 6));
    *sec = p[0];
    *sec_len = len[0];
    return 0;
}

/* typecast_timestamp(s) as _sqlite_datetime_parse calls it: ValueError and
 * TypeError give None; IndexError propagates (an error). */
static outcome typecast_timestamp(call *c, sqlite3_value *v, pydt *out)
{
    int type = sqlite3_value_type(v);
    if (type == SQLITE_NULL)
        return fail(c, R_NONE, "null");
    if (type != SQLITE_TEXT) {
        int falsy = type == SQLITE_BLOB      ? sqlite3_value_bytes(v) == 0
                    : type == SQLITE_INTEGER ? sqlite3_value_int64(v) == 0
                                             : sqlite3_value_double(v) == 0;
        return fail(c, falsy ? R_FALSY : R_NONE, "not text"); /* `" " in x`: TypeError */
    }
    const char *s = (const char *)sqlite3_value_text(v);
    int n = sqlite3_value_bytes(v);
    if (!s)
        return fail(c, R_ERROR, "out of memory");
    if (n == 0)
        return fail(c, R_FALSY, "empty");
    if (!ascii_only(s, n))
        return fail(c, R_UNSUPPORTED, "non-ASCII date text");
    if (!memhas(s, n, ' '))
        return typecast_date(c, s, n, out);
    /* d, t = s.split() */
    const char *tok[2];
    int tl[2], nt = 0, i = 0;
    while (i < n) {
        while (i < n && py_space(s[i]))
            i++;
        if (i == n)
            break;
        int st = i;
        while (i < n && !py_space(s[i]))
            i++;
        if (nt == 2)
            return fail(c, R_NONE, "more than two words");
        tok[nt] = s + st;
        tl[nt++] = i - st;
    }
    if (nt != 2)
        return fail(c, R_NONE, "not two words");
    const char *t = tok[1];
    int tn = tl[1];
    const char *cut = memhas(t, tn, '-') ? memchr(t, '-', (size_t)tn)
                      : memhas(t, tn, '+') ? memchr(t, '+', (size_t)tn) : NULL;
    if (cut)
        tn = (int)(cut - t);
    const char *dp[4], *tp[4];
    int dl[4], tpl[4];
    int nd = split_on(tok[0], tl[0], '-', dp, dl, 3);
    int ntm = split_on(t, tn, ':', tp, tpl, 3);
    if (ntm < 3) /* times[2] */
        return fail(c, R_ERROR, "IndexError: no seconds in the time");
    const char *st;
    int stl;
    char frac[7];
    if (split_seconds(tp[2], tpl[2], &st, &stl, frac) < 0)
        return fail(c, R_NONE, "too many '.' in the seconds");
    /* the datetime(...) arguments, left to right */
    int64_t f[5], sec, us;
    for (int k = 0; k < 3; k++) {
        if (k >= nd)
            return fail(c, R_ERROR, "IndexError: not enough date parts");
        if (py_int(dp[k], dl[k], &f[k]) < 0)
            return fail(c, R_NONE, "bad date part");
    }
    if (py_int(tp[0], tpl[0], &f[3]) < 0 || py_int(tp[1], tpl[1], &f[4]) < 0 ||
        py_int(st, stl, &sec) < 0 || py_int(frac, 6, &us) < 0)
        return fail(c, R_NONE, "bad time part");
    if (!valid_ymd(f[0], f[1], f[2]) || f[3] < 0 || f[3] > 23 || f[4] < 0 || f[4] > 59 ||
        sec < 0 || sec > 59 || us < 0 || us > 999999)
        return fail(c, R_NONE, "out of range");
    out->is_date = 0;
    out->y = f[0];
    out->mo = (int)f[1];
    out->d = (int)f[2];
    out->h = (int)f[3];
    out->mi = (int)f[4];
    out->s = (int)sec;
    out->us = (int)us;
    return R_OK;
}

/* typecast_time(s) for a str s: R_NONE here means "returned None" (s empty);
 * a ValueError is R_ERROR with why "ValueError" (callers that catch it turn
 * it into None). */
static outcome typecast_time(call *c, const char *s, int n, pydt *out)
{
    if (n == 0)
        return fail(c, R_NONE, "empty");
    if (!ascii_only(s, n))
        return fail(c, R_UNSUPPORTED, "non-ASCII time text");
    const char *p[4];
    int len[4];
    if (split_on(s, n, ':', p, len, 3) != 3)
        return fail(c, R_ERROR, "ValueError: not a time");
    int64_t h, m, sec, us;
    const char *st;
    int stl;
    char frac[7];
    if (split_seconds(p[2], len[2], &st, &stl, frac) < 0 || py_int(st, stl, &sec) < 0 ||
        py_int(frac, 6, &us) < 0 ||
        py_int(p[0], len[0], &h) < 0 || py_int(p[1], len[1], &m) < 0 || h < 0 ||
        h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59 || us < 0 || us > 999999)
        return fail(c, R_ERROR, "ValueError: not a time");
    memset(out, 0, sizeof *out);
    out->h = (int)h;
    out->mi = (int)m;
    out->s = (int)sec;
    out->us = (int)us;
    return R_OK;
}

/* ---- time zones: _sqlite_datetime_parse -------------------------------- */

static int64_t local_seconds(const pydt *t)
{
    return civil_days_from(t->y, t->mo, t->d) * 86400 + t->h * 3600 + t->mi * 60 + t->s;
}

static int set_from_seconds(pydt *t, int64_t secs)
{
    int64_t days = civil_floordiv(secs, 86400), rem = secs - days * 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return -1; /* OverflowError */
    t->y = y;
    t->mo = m;
    t->d = d;
    t->h = (int)(rem / 3600);
    t->mi = (int)(rem / 60 % 60);
    t->s = (int)(rem % 60);
    return 0;
}

static const char *text_arg(sqlite3_value *v)
{
    if (sqlite3_value_type(v) != SQLITE_TEXT)
        return NULL;
    const char *s = (const char *)sqlite3_value_text(v);
    /* an embedded NUL would differ from what Python sees */
    if (s && (int)strlen(s) != sqlite3_value_bytes(v))
        return NULL;
    return s;
}

static outcome zone(call *c, const char *key, const mw_tz **out)
{
    mw_tz_status st;
    if (c->nzones == (int)(sizeof c->zones / sizeof c->zones[0]))
        return fail(c, R_ERROR, "more time zones than one call holds");
    *out = mw_tz_get(key, &st);
    if (*out) {
        c->zones[c->nzones++] = *out;
        return R_OK;
    }
    char why[160];
    snprintf(why, sizeof why, "time zone '%.80s': %s", key, mw_tz_strerror(st));
    return fail(c, st == MW_TZ_ENOMEM ? R_UNSUPPORTED : R_ERROR, why);
}

/* Django's parse_time(offset) is truthy: time.fromisoformat or its regex
 * accepts it. We recognise HH, HHMM, HHMMSS, HH:MM, HH:MM:SS and H:M[:S];
 * anything else built of digits and separators is a spelling we do not
 * reproduce. Returns 1 (an offset), 0 (not one), -1 (unsupported),
 * -2 (Django would raise ValueError). */
static int offset_like(const char *o)
{
    size_t n = strlen(o), digits = strspn(o, "0123456789");
    if (!n)
        return 0;
    if (strspn(o, "0123456789:.,TZ+-") != n)
        return 0;
    if (digits == n) {
        if (n != 2 && n != 4 && n != 6)
            return 0;
        int h = (o[0] - '0') * 10 + (o[1] - '0');
        int m = n >= 4 ? (o[2] - '0') * 10 + (o[3] - '0') : 0;
        int s = n == 6 ? (o[4] - '0') * 10 + (o[5] - '0') : 0;
        return h <= 23 && m <= 59 && s <= 59 ? 1 : 0;
    }
    /* \d{1,2}:\d{1,2}(:\d{1,2})? */
    int parts[3], np = 0;
    const char *p = o;
    for (;;) {
        size_t d = strspn(p, "0123456789");
        if (d < 1 || d > 2 || np == 3)
            return -1;
        parts[np++] = atoi(p);
        p += d;
        if (!*p)
            break;
        if (*p != ':')
            return -1;
        p++;
    }
    if (np < 2)
        return -1;
    if (parts[0] > 23 || parts[1] > 59 || (np == 3 && parts[2] > 59))
        return -2;
    return 1;
}

/* The tzname and conn_tzname arguments as text, NULL for SQL NULL. */
static outcome zone_names(call *c, sqlite3_value *tzv, sqlite3_value *connv,
                          const char **tz, const char **conn)
{
    int tz_null = !tzv || sqlite3_value_type(tzv) == SQLITE_NULL;
    int conn_null = !connv || sqlite3_value_type(connv) == SQLITE_NULL;
    *tz = tz_null ? NULL : text_arg(tzv);
    *conn = conn_null ? NULL : text_arg(connv);
    if ((!tz_null && !*tz) || (!conn_null && !*conn))
        return fail(c, R_UNSUPPORTED, "time zone argument is not plain text");
    return R_OK;
}

/* dt is None: None.replace() fails; localtime(None) would be "now". */
static outcome none_in_zones(call *c, const char *tz, const char *conn)
{
    if (conn && *conn)
        return fail(c, R_ERROR, "AttributeError: None has no replace()");
    if (tz && !(conn && !strcmp(tz, conn)))
        return fail(c, R_UNSUPPORTED, "a time zone conversion of None");
    return fail(c, R_NONE, "None");
}

/* The offset after the sign at `at` (sc: '+' or '-'), as Django's
 * split_tzname_delta reads it: *found 1 and *shift its seconds, or *found
 * 0 when it is not an offset. */
static outcome offset_after(call *c, const char *at, char sc, int *found, int64_t *shift)
{
    *found = 0;
    int lk = offset_like(at + 1);
    if (lk == -1)
        return fail(c, R_UNSUPPORTED, "time zone offset spelling");
    if (lk == -2)
        return fail(c, R_ERROR, "ValueError: offset is not a valid time");
    if (lk == 0)
        return R_OK;
    char off[64];
    snprintf(off, sizeof off, "%s%s", at + 1, strchr(at + 1, ':') ? "" : ":00");
    const char *p[3];
    int len[3];
    int64_t hh, mm;
    if (split_on(off, (int)strlen(off), ':', p, len, 2) != 2 ||
        py_int(p[0], len[0], &hh) < 0 || py_int(p[1], len[1], &mm) < 0)
        return fail(c, R_ERROR, "ValueError: offset hours and minutes");
    *found = 1;
    *shift = (hh * 3600 + mm * 60) * (sc == '+' ? 1 : -1);
    return R_OK;
}

/* split_tzname_delta: name loses a trailing +offset (else -offset), whose
 * seconds go to *shift. */
static outcome split_tzname_delta(call *c, char *name, int64_t *shift)
{
    int found = 0;
    *shift = 0;
    for (int k = 0; k < 2 && !found; k++) {
        char sc = k == 0 ? '+' : '-';
        char *at = strrchr(name, sc);
        if (!at)
            continue;
        outcome o = offset_after(c, at, sc, &found, shift);
        if (o != R_OK)
            return o;
        if (found)
            *at = 0;
    }
    return R_OK;
}

/* t (in the connection's zone cz, or naive when NULL) shifted, then
 * converted to the zone target_key. */
static outcome to_zone(call *c, pydt *t, const mw_tz *cz, const char *conn,
                       const char *target_key, int64_t shift)
{
    outcome o;
    if (cz && !strcmp(target_key, conn)) {
        /* ZoneInfo(key) is one cached object: astimezone() to the zone the
         * value is in already returns it unchanged (a gap time stays) */
        if (shift && set_from_seconds(t, local_seconds(t) + shift) < 0)
            return fail(c, R_ERROR, "OverflowError: date value out of range");
        return R_OK;
    }
    const mw_tz *tzz;
    if ((o = zone(c, target_key, &tzz)) != R_OK)
        return o;
    if (!cz)
        return fail(c, R_ERROR, "ValueError: localtime() cannot be applied to a naive datetime");
    int64_t local = local_seconds(t) + shift;
    if (shift && set_from_seconds(t, local) < 0)
        return fail(c, R_ERROR, "OverflowError: date value out of range");
    int64_t utc = local - mw_tz_offset_at_local(cz, local, (int)t->y);
    int64_t uy;
    int um, ud;
    civil_from_days(civil_floordiv(utc, 86400), &uy, &um, &ud);
    if (uy < 1 || uy > 9999)
        return fail(c, R_ERROR, "OverflowError: date value out of range");
    int64_t there = utc + mw_tz_offset_at_utc(tzz, utc, (int)uy);
    if (set_from_seconds(t, there) < 0)
        return fail(c, R_ERROR, "OverflowError: date value out of range");
    return R_OK;
}

/* datetime_parse, holding the zones it looks up in c */
static outcome parse_in_zones(call *c, sqlite3_value *v, sqlite3_value *tzv,
                              sqlite3_value *connv, pydt *t)
{
    outcome o = typecast_timestamp(c, v, t);
    if (o != R_OK && o != R_FALSY)
        return o;
    int falsy = o == R_FALSY;
    const char *tz, *conn;
    if ((o = zone_names(c, tzv, connv, &tz, &conn)) != R_OK)
        return o;
    if (falsy)
        return none_in_zones(c, tz, conn);
    const mw_tz *cz = NULL;
    if (conn && *conn) {
        if (t->is_date)
            return fail(c, R_ERROR, "TypeError: a date has no tzinfo");
        if ((o = zone(c, conn, &cz)) != R_OK)
            return o;
    }
    if (!tz || (conn && !strcmp(tz, conn)))
        return R_OK;
    if (!ascii_only(tz, (int)strlen(tz)))
        return fail(c, R_UNSUPPORTED, "non-ASCII time zone name");
    char name[256];
    snprintf(name, sizeof name, "%s", tz);
    int64_t shift;
    if ((o = split_tzname_delta(c, name, &shift)) != R_OK)
        return o;
    if (t->is_date)
        return fail(c, R_ERROR, "a date cannot be converted between time zones");
    const char *target_key = name[0] ? name : conn;
    if (!target_key)
        return fail(c, R_ERROR, "TypeError: no time zone to convert to");
    return to_zone(c, t, cz, conn, target_key, shift);
}

/* _sqlite_datetime_parse(v, tzname, conn_tzname) */
static outcome datetime_parse(call *c, sqlite3_value *v, sqlite3_value *tzv,
                              sqlite3_value *connv, pydt *t)
{
    outcome o = parse_in_zones(c, v, tzv, connv, t);
    while (c->nzones > 0)
        mw_tz_release(c->zones[--c->nzones]);
    return o;
}

/* ---- the functions --------------------------------------------------- */

static int64_t days_of(const pydt *t)
{
    return civil_days_from(t->y, t->mo, t->d);
}

static void iso_calendar(const pydt *t, int64_t *year, int *week)
{
    int64_t z = days_of(t);
    int64_t thursday = z - civil_isoweekday(z) + 4;
    int64_t y;
    int m, d;
    civil_from_days(thursday, &y, &m, &d);
    *year = y;
    *week = (int)((thursday - civil_days_from(y, 1, 1)) / 7 + 1);
}

static outcome lookup_arg(call *c, sqlite3_value *v, const char **out)
{
    if (!(*out = text_arg(v)))
        return fail(c, R_ERROR, "lookup type is not text");
    return R_OK;
}

/* _sqlite_datetime_extract */
static outcome extract(call *c, const char *lk, const pydt *t, int64_t *out)
{
    int64_t iy;
    int iw;
    if (!strcmp(lk, "week_day")) {
        *out = civil_isoweekday(days_of(t)) % 7 + 1;
    } else if (!strcmp(lk, "iso_week_day")) {
        *out = civil_isoweekday(days_of(t));
    } else if (!strcmp(lk, "week")) {
        iso_calendar(t, &iy, &iw);
        *out = iw;
    } else if (!strcmp(lk, "quarter")) {
        *out = (t->mo + 2) / 3;
    } else if (!strcmp(lk, "iso_year")) {
        iso_calendar(t, &iy, &iw);
        *out = iy;
    } else if (!strcmp(lk, "year")) {
        *out = t->y;
    } else if (!strcmp(lk, "month")) {
        *out = t->mo;
    } else if (!strcmp(lk, "day")) {
        *out = t->d;
    } else if (!t->is_date && !strcmp(lk, "hour")) {
        *out = t->h;
    } else if (!t->is_date && !strcmp(lk, "minute")) {
        *out = t->mi;
    } else if (!t->is_date && !strcmp(lk, "second")) {
        *out = t->s;
    } else if (!t->is_date && !strcmp(lk, "microsecond")) {
        *out = t->us;
    } else {
        return fail(c, R_ERROR, "AttributeError: unknown lookup type");
    }
    return R_OK;
}

static void fn_datetime_extract(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    call c = {ctx, ""};
    pydt t;
    const char *lk;
    int64_t v;
    outcome o = datetime_parse(&c, a[1], argc == 4 ? a[2] : NULL, argc == 4 ? a[3] : NULL, &t);
    if (o == R_OK && (o = lookup_arg(&c, a[0], &lk)) == R_OK &&
        (o = extract(&c, lk, &t, &v)) == R_OK) {
        sqlite3_result_int64(ctx, v);
        return;
    }
    report(&c, o, argc == 4 ? "django_datetime_extract" : "django_date_extract");
}

/* the date part of a truncation; returns -1 for an unknown lookup type */
static int trunc_date(call *c, const char *lk, pydt *t, outcome *o)
{
    if (!strcmp(lk, "year")) {
        t->mo = t->d = 1;
    } else if (!strcmp(lk, "quarter")) {
        t->mo -= (t->mo - 1) % 3;
        t->d = 1;
    } else if (!strcmp(lk, "month")) {
        t->d = 1;
    } else if (!strcmp(lk, "week")) {
        int64_t z = days_of(t) - (civil_isoweekday(days_of(t)) - 1);
        int h = t->h, mi = t->mi, s = t->s;
        if (set_from_seconds(t, z * 86400) < 0) {
            *o = fail(c, R_ERROR, "OverflowError: date value out of range");
            return -1;
        }
        t->h = h, t->mi = mi, t->s = s;
    } else if (strcmp(lk, "day")) {
        return 0;
    }
    return 1;
}

static void fn_date_trunc(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    call c = {ctx, ""};
    pydt t;
    const char *lk;
    (void)argc;
    outcome o = datetime_parse(&c, a[1], a[2], a[3], &t);
    if (o == R_OK && (o = lookup_arg(&c, a[0], &lk)) == R_OK) {
        int r = trunc_date(&c, lk, &t, &o);
        if (r > 0) {
            char out[16];
            snprintf(out, sizeof out, "%04d-%02d-%02d", (int)t.y, t.mo, t.d);
            sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
            return;
        }
        if (r == 0)
            o = fail(&c, R_ERROR, "ValueError: Unsupported lookup type");
    }
    report(&c, o, "django_date_trunc");
}

static void fn_datetime_trunc(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    call c = {ctx, ""};
    pydt t;
    const char *lk;
    (void)argc;
    outcome o = datetime_parse(&c, a[1], a[2], a[3], &t);
    if (o == R_OK && (o = lookup_arg(&c, a[0], &lk)) == R_OK) {
        int r = trunc_date(&c, lk, &t, &o), keep = 0;
        if (r == 0) {
            keep = !strcmp(lk, "hour") ? 1 : !strcmp(lk, "minute") ? 2 : !strcmp(lk, "second") ? 3 : 0;
            r = keep ? 1 : 0;
        }
        if (r > 0 && t.is_date && keep) {
            o = fail(&c, R_ERROR, "AttributeError: a date has no time");
        } else if (r > 0) {
            char out[32];
            snprintf(out, sizeof out, "%04d-%02d-%02d %02d:%02d:%02d", (int)t.y, t.mo, t.d,
                     keep >= 1 ? t.h : 0, keep >= 2 ? t.mi : 0, keep >= 3 ? t.s : 0);
            sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
            return;
        } else if (r == 0) {
            o = fail(&c, R_ERROR, "ValueError: Unsupported lookup type");
        }
    }
    report(&c, o, "django_datetime_trunc");
}

static void fn_datetime_cast(sqlite3_context *ctx, sqlite3_value **a, int want_time)
{
    call c = {ctx, ""};
    pydt t;
    outcome o = datetime_parse(&c, a[0], a[1], a[2], &t);
    if (o == R_OK && t.is_date)
        o = fail(&c, R_ERROR, "AttributeError: a date is not a datetime");
    if (o == R_OK) {
        char out[32];
        if (!want_time)
            snprintf(out, sizeof out, "%04d-%02d-%02d", (int)t.y, t.mo, t.d);
        else if (t.us)
            snprintf(out, sizeof out, "%02d:%02d:%02d.%06d", t.h, t.mi, t.s, t.us);
        else
            snprintf(out, sizeof out, "%02d:%02d:%02d", t.h, t.mi, t.s);
        sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
        return;
    }
    report(&c, o, want_time ? "django_datetime_cast_time" : "django_datetime_cast_date");
}

static void fn_datetime_cast_date(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    fn_datetime_cast(ctx, a, 0);
}

static void fn_datetime_cast_time(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    fn_datetime_cast(ctx, a, 1);
}

/* typecast_time(v) inside `try: ... except (ValueError, TypeError): None`,
 * for a value that is not NULL. R_NONE: it returned None (then the caller's
 * next step fails on None); R_OK with *none_ok: the exception was caught. */
static outcome time_of_value(call *c, sqlite3_value *v, pydt *t, int *caught)
{
    *caught = 0;
    int type = sqlite3_value_type(v);
    if (type == SQLITE_BLOB) {
        /* bytes.split(":") is a TypeError, b"" is falsy */
        if (sqlite3_value_bytes(v) == 0)
            return fail(c, R_NONE, "empty");
        *caught = 1;
        return R_OK;
    }
    if (type != SQLITE_TEXT) {
        if (type == SQLITE_INTEGER ? sqlite3_value_int64(v) == 0 : sqlite3_value_double(v) == 0)
            return fail(c, R_NONE, "zero");
        return fail(c, R_ERROR, "AttributeError: a number has no split()");
    }
    const char *s = (const char *)sqlite3_value_text(v);
    if (!s)
        return fail(c, R_ERROR, "out of memory");
    outcome o = typecast_time(c, s, sqlite3_value_bytes(v), t);
    if (o == R_ERROR) {
        *caught = 1;
        return R_OK;
    }
    return o;
}

static void fn_time_trunc(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    call c = {ctx, ""};
    pydt t;
    const char *lk;
    (void)argc;
    if (sqlite3_value_type(a[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    outcome o = datetime_parse(&c, a[1], a[2], a[3], &t);
    if (o == R_NONE) {
        int caught;
        o = time_of_value(&c, a[1], &t, &caught);
        if (o == R_OK && caught) {
            sqlite3_result_null(ctx);
            return;
        }
        if (o == R_NONE)
            o = fail(&c, R_ERROR, "AttributeError: None has no hour");
    } else if (o == R_OK && t.is_date) {
        o = fail(&c, R_ERROR, "AttributeError: a date has no hour");
    }
    if (o == R_OK && (o = lookup_arg(&c, a[0], &lk)) == R_OK) {
        int keep = !strcmp(lk, "hour") ? 1 : !strcmp(lk, "minute") ? 2 : !strcmp(lk, "second") ? 3 : 0;
        if (keep) {
            char out[16];
            snprintf(out, sizeof out, "%02d:%02d:%02d", t.h, keep >= 2 ? t.mi : 0,
                     keep >= 3 ? t.s : 0);
            sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
            return;
        }
        o = fail(&c, R_ERROR, "ValueError: Unsupported lookup type");
    }
    report(&c, o, "django_time_trunc");
}

static void fn_time_extract(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    call c = {ctx, ""};
    pydt t;
    const char *lk;
    int caught;
    (void)argc;
    if (sqlite3_value_type(a[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    outcome o = time_of_value(&c, a[1], &t, &caught);
    if (o == R_OK && caught) {
        sqlite3_result_null(ctx);
        return;
    }
    if (o == R_NONE)
        o = fail(&c, R_ERROR, "AttributeError: None has no such attribute");
    if (o == R_OK && (o = lookup_arg(&c, a[0], &lk)) == R_OK) {
        int64_t v = !strcmp(lk, "hour") ? t.h : !strcmp(lk, "minute") ? t.mi
                  : !strcmp(lk, "second") ? t.s : !strcmp(lk, "microsecond") ? t.us : -1;
        if (v >= 0) {
            sqlite3_result_int64(ctx, v);
            return;
        }
        o = fail(&c, R_ERROR, "AttributeError: unknown lookup type");
    }
    report(&c, o, "django_time_extract");
}

/* typecast_time(v) with nothing caught (django_time_diff) */
static outcome strict_time(call *c, sqlite3_value *v, pydt *t)
{
    const char *s = sqlite3_value_type(v) == SQLITE_TEXT ? (const char *)sqlite3_value_text(v)
                                                         : NULL;
    if (!s)
        return fail(c, R_ERROR, "not a time");
    outcome o = typecast_time(c, s, sqlite3_value_bytes(v), t);
    return o == R_NONE ? fail(c, R_ERROR, "AttributeError: None has no hour") : o;
}

/* typecast_timestamp(v) with nothing caught (django_timestamp_diff) */
static outcome strict_timestamp(call *c, sqlite3_value *v, pydt *t)
{
    if (sqlite3_value_type(v) != SQLITE_TEXT)
        return fail(c, R_ERROR, "TypeError: not text");
    outcome o = typecast_timestamp(c, v, t);
    if (o == R_NONE || o == R_FALSY) /* None - x, or the ValueError uncaught */
        return fail(c, R_ERROR, "not a timestamp");
    return o;
}

/* lhs - rhs in microseconds: django_time_diff (times of day) and
 * django_timestamp_diff (datetimes, or dates, never one of each) */
static void diff(sqlite3_context *ctx, sqlite3_value **a, int timestamps, const char *fn)
{
    call c = {ctx, ""};
    pydt l, r;
    if (sqlite3_value_type(a[0]) == SQLITE_NULL || sqlite3_value_type(a[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    outcome (*parse)(call *, sqlite3_value *, pydt *) = timestamps ? strict_timestamp
                                                                   : strict_time;
    outcome o = parse(&c, a[0], &l);
    if (o == R_OK)
        o = parse(&c, a[1], &r);
    if (o == R_OK && l.is_date != r.is_date)
        o = fail(&c, R_ERROR, "TypeError: a date minus a datetime");
    if (o == R_OK) {
        int64_t ld = timestamps ? days_of(&l) : 0, rd = timestamps ? days_of(&r) : 0;
        int64_t lv = ((ld * 86400 + l.h * 3600 + l.mi * 60 + l.s) * 1000000) + l.us;
        int64_t rv = ((rd * 86400 + r.h * 3600 + r.mi * 60 + r.s) * 1000000) + r.us;
        sqlite3_result_int64(ctx, lv - rv);
        return;
    }
    report(&c, o, fn);
}

static void fn_time_diff(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    diff(ctx, a, 0, "django_time_diff");
}

static void fn_timestamp_diff(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    (void)argc;
    diff(ctx, a, 1, "django_timestamp_diff");
}

/* ---- django_format_dtdelta: F() arithmetic with timedeltas ------------- */

#define TD_MAX_DAYS 999999999LL
#define US_PER_DAY 86400000000LL

/* one operand after _sqlite_prepare_dtdelta_param for "+" and "-" */
typedef struct {
    enum { OP_TD, OP_DT, OP_DATE } kind;
    __int128 us; /* OP_TD: microseconds; OP_DT/OP_DATE: since 1970-01-01 */
} dt_operand;

static outcome prepare_operand(call *c, sqlite3_value *v, dt_operand *o)
{
    if (sqlite3_value_type(v) == SQLITE_INTEGER) {
        o->kind = OP_TD;
        o->us = sqlite3_value_int64(v);
        return R_OK;
    }
    pydt t;
    outcome r = typecast_timestamp(c, v, &t);
    if (r != R_OK) /* R_FALSY: None, which fails later, outside the try */
        return r;
    o->kind = t.is_date ? OP_DATE : OP_DT;
    o->us = (__int128)local_seconds(&t) * 1000000 + t.us;
    return R_OK;
}

static int64_t floordiv128(__int128 a, int64_t b)
{
    __int128 q = a / b;
    return (int64_t)((a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q);
}

/* str() of the result, as Python prints a timedelta, datetime or date */
static outcome format_operand(call *c, const dt_operand *o, char *out, size_t n)
{
    if (o->kind == OP_TD) {
        int64_t days = floordiv128(o->us, US_PER_DAY);
        if (days > TD_MAX_DAYS || days < -TD_MAX_DAYS)
            return fail(c, R_ERROR, "OverflowError: timedelta out of range");
        int64_t rest = (int64_t)(o->us - (__int128)days * US_PER_DAY);
        int64_t secs = rest / 1000000, us = rest % 1000000;
        char clock[48];
        int k = snprintf(clock, sizeof clock, "%d:%02d:%02d", (int)(secs / 3600),
                         (int)(secs / 60 % 60), (int)(secs % 60));
        if (us)
            snprintf(clock + k, sizeof clock - (size_t)k, ".%06d", (int)us);
        if (days)
            snprintf(out, n, "%lld day%s, %s", (long long)days,
                     days == 1 || days == -1 ? "" : "s", clock);
        else
            snprintf(out, n, "%s", clock);
        return R_OK;
    }
    pydt t;
    memset(&t, 0, sizeof t);
    int64_t secs = floordiv128(o->us, 1000000);
    if (o->us < (__int128)INT64_MIN / 2 || o->us > (__int128)INT64_MAX / 2 ||
        set_from_seconds(&t, secs) < 0)
        return fail(c, R_ERROR, "OverflowError: date value out of range");
    t.us = (int)(o->us - (__int128)secs * 1000000);
    if (o->kind == OP_DATE)
        snprintf(out, n, "%04d-%02d-%02d", (int)t.y, t.mo, t.d);
    else if (t.us)
        snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d.%06d", (int)t.y, t.mo, t.d, t.h, t.mi,
                 t.s, t.us);
    else
        snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d", (int)t.y, t.mo, t.d, t.h, t.mi, t.s);
    return R_OK;
}

/* lhs + rhs (sub: lhs - rhs) with Python's rules for the three kinds */
static outcome add_operands(call *c, dt_operand l, dt_operand r, int sub, dt_operand *out)
{
    if (sub) {
        if (l.kind != OP_TD && r.kind == l.kind) { /* datetime - datetime, date - date */
            out->kind = OP_TD;
            out->us = l.us - r.us;
            return R_OK;
        }
        if (r.kind != OP_TD)
            return fail(c, R_ERROR, "TypeError: unsupported operand types for -");
        r.us = -r.us;
    }
    if (l.kind != OP_TD && r.kind != OP_TD)
        return fail(c, R_ERROR, "TypeError: unsupported operand types for +");
    if (l.kind == OP_TD && r.kind == OP_TD) {
        out->kind = OP_TD;
        out->us = l.us + r.us;
        return R_OK;
    }
    dt_operand when = l.kind == OP_TD ? r : l, delta = l.kind == OP_TD ? l : r;
    out->kind = when.kind;
    if (when.kind == OP_DATE) {
        /* date +/- timedelta moves by the timedelta's .days only */
        int64_t days = floordiv128(sub ? -delta.us : delta.us, US_PER_DAY);
        out->us = when.us + (__int128)(sub ? -days : days) * US_PER_DAY;
    } else {
        out->us = when.us + delta.us;
    }
    return R_OK;
}

static void fn_format_dtdelta(sqlite3_context *ctx, int argc, sqlite3_value **a)
{
    call c = {ctx, ""};
    (void)argc;
    for (int i = 0; i < 3; i++)
        if (sqlite3_value_type(a[i]) == SQLITE_NULL) {
            sqlite3_result_null(ctx);
            return;
        }
    const char *conn = text_arg(a[0]);
    outcome o;
    if (!conn) {
        o = fail(&c, R_ERROR, "AttributeError: the connector is not text");
    } else {
        while (py_space(*conn))
            conn++;
        size_t n = strlen(conn);
        while (n && py_space(conn[n - 1]))
            n--;
        int plus = n == 1 && conn[0] == '+', minus = n == 1 && conn[0] == '-';
        if (plus || minus) {
            dt_operand l, r, res;
            char out[128];
            outcome ol = prepare_operand(&c, a[1], &l), orr = R_OK;
            if (ol == R_OK || ol == R_FALSY)
                orr = prepare_operand(&c, a[2], &r);
            o = ol != R_OK && ol != R_FALSY ? ol : orr != R_OK && orr != R_FALSY ? orr : R_OK;
            if (o == R_OK && (ol == R_FALSY || orr == R_FALSY))
                o = fail(&c, R_ERROR, "TypeError: an operand is None");
            if (o == R_OK &&
                (o = add_operands(&c, l, r, minus, &res)) == R_OK &&
                (o = format_operand(&c, &res, out, sizeof out)) == R_OK) {
                sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
                return;
            }
        } else {
            /* "*" and anything else ("/"): the raw values; we take numbers */
            int times = n == 1 && conn[0] == '*';
            int tl = sqlite3_value_type(a[1]), tr = sqlite3_value_type(a[2]);
            if ((tl != SQLITE_INTEGER && tl != SQLITE_FLOAT) ||
                (tr != SQLITE_INTEGER && tr != SQLITE_FLOAT)) {
                o = fail(&c, R_UNSUPPORTED, "* or / of a value that is not a number");
            } else if (times && tl == SQLITE_INTEGER && tr == SQLITE_INTEGER) {
                long long p;
                if (!__builtin_mul_overflow(sqlite3_value_int64(a[1]), sqlite3_value_int64(a[2]),
                                            &p)) {
                    sqlite3_result_int64(ctx, p);
                    return;
                }
                o = fail(&c, R_ERROR, "OverflowError: Python int too large for SQLite");
            } else if (times) {
                sqlite3_result_double(ctx, sqlite3_value_double(a[1]) * sqlite3_value_double(a[2]));
                return;
            } else {
                double rv = sqlite3_value_double(a[2]);
                int64_t big = (int64_t)1 << 53;
                if (rv == 0) {
                    o = fail(&c, R_ERROR, "ZeroDivisionError: division by zero");
                } else if ((tl == SQLITE_INTEGER && llabs(sqlite3_value_int64(a[1])) > big) ||
                           (tr == SQLITE_INTEGER && llabs(sqlite3_value_int64(a[2])) > big)) {
                    o = fail(&c, R_UNSUPPORTED, "integer division beyond 2**53");
                } else {
                    sqlite3_result_double(ctx, sqlite3_value_double(a[1]) / rv);
                    return;
                }
            }
        }
    }
    report(&c, o, "django_format_dtdelta");
}

static const mw_django_fn time_fns[] = {
    {"django_date_extract", 2, fn_datetime_extract},
    {"django_date_trunc", 4, fn_date_trunc},
    {"django_datetime_cast_date", 3, fn_datetime_cast_date},
    {"django_datetime_cast_time", 3, fn_datetime_cast_time},
    {"django_datetime_extract", 4, fn_datetime_extract},
    {"django_datetime_trunc", 4, fn_datetime_trunc},
    {"django_time_extract", 2, fn_time_extract},
    {"django_time_trunc", 4, fn_time_trunc},
    {"django_time_diff", 2, fn_time_diff},
    {"django_timestamp_diff", 2, fn_timestamp_diff},
    {"django_format_dtdelta", 3, fn_format_dtdelta},
    {NULL, 0, NULL},
};

const mw_django_fn *mw_django_time_functions(void)
{
    return time_fns;
}
