"""Django's SQLite functions in the worker (worker/sqlite_django*.c) against
Django's own Python implementations as the oracle.

Every case runs twice: through Django's function
(django.db.backends.sqlite3._functions, the code Django registers on its own
connections) and as `SELECT fn($1, ...)` through a real molt_worker on
SQLite. They must agree: the same value of the same type, or both an error.
The worker may instead answer "[molt:unsupported]" (the Django adapter then
falls back to the ORM); that is counted and kept rare, and never allowed
where the inputs are the ordinary ones Django itself produces.
"""
import itertools
import random
from datetime import datetime, timedelta

import pytest

django = pytest.importorskip("django")
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(USE_TZ=True, TIME_ZONE="UTC")

from django.db.backends.sqlite3 import _functions as F  # noqa: E402

from molt_django_adapter.sqlite_functions import WORKER_DJANGO_FUNCTIONS  # noqa: E402
from worker_client import Worker, decode  # noqa: E402

UNSUPPORTED = "[molt:unsupported]"

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
         "America/Sao_Paulo", "Africa/Casablanca", "Pacific/Chatham", "Europe/Dublin",
         "America/St_Johns", "Asia/Tehran", "Etc/GMT+5", "Etc/GMT-14"]
# what Django passes as tzname: zone keys, fixed-offset names, abbreviations
TZNAMES = ZONES + ["UTC+05:00", "UTC-03:30", "Europe/Paris+01:00", "America/New_York-02:00",
                   "-05", "+0530", "UTC+5:3", "Nowhere/Land", "../etc/passwd", "UTC+25:00"]
CONN_TZ = [None, "UTC", "Europe/Paris", "America/New_York"]
DT_LOOKUPS = ["year", "quarter", "month", "week", "day", "hour", "minute", "second",
              "week_day", "iso_week_day", "iso_year", "microsecond", "bogus"]
TRUNC_LOOKUPS = ["year", "quarter", "month", "week", "day", "hour", "minute", "second", "bogus"]


def transition_instants():
    """Local wall-clock times right around DST changes, and far in the
    future (past the zone files' last transition: the POSIX rule)."""
    out = []
    for y in (1970, 2000, 2024, 2037, 2050, 2099):
        for month, day in ((3, 10), (3, 31), (4, 7), (10, 27), (11, 3), (10, 6)):
            for hh, mm in ((0, 59), (1, 30), (2, 0), (2, 30), (3, 0), (23, 59)):
                out.append(f"{y:04d}-{month:02d}-{day:02d} {hh:02d}:{mm:02d}:00")
    return out


def random_timestamps(rng, n):
    out = []
    base = datetime(1901, 1, 1)
    for _ in range(n):
        d = base + timedelta(seconds=rng.randrange(0, 200 * 365 * 86400))
        us = rng.choice([0, 0, rng.randrange(1, 1000000)])
        s = d.strftime("%Y-%m-%d %H:%M:%S")
        if us:
            s += f".{us:06d}"[: rng.choice([4, 7])]
        out.append(s)
    return out


ODD_TEXT = ["", "2024-02-30 10:00:00", "2024-02-29 10:00:00", "2023-02-29", "2024-01-01",
            "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", "2024-01-01T10:00:00",
            "2024-01-01 10:00", "2024-01 10:00:00", "2024-01-01 10:00:00+02:00",
            "2024-01-01 10:00:00-05", " 2024-01-01  10:00:00 ", "2024-01-01 10:00:00 x",
            "2024-1-1 1:2:3", "+2024-01-01 10:00:00", "2_024-01-01 10:00:00",
            "2024-01-01 10:00:00.5", "2024-01-01 10:00:00.1.2", "2024-01-01 24:00:00",
            "10:30:00", "10:30", "10:30:00.25", "25:00:00", "garbage", "2024-01-01\t10:00:00",
            "2024-01-01 10:00:60", "2024-13-01 00:00:00", "2024-01-01 10:00:00-",
            "2024-01-01-01 10:00:00", "１２:00:00"]
ODD_VALUES = [0, 1, 12.5, b"", b"10:30:00", None]


def oracle(fn, *args):
    try:
        v = fn(*args)
    except Exception:  # Django's connection reports any exception as an error
        return ("error",)
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int) and not -2 ** 63 <= v < 2 ** 63:
        return ("error",)  # sqlite3 cannot hand it to SQLite: OverflowError
    return ("value", v)


def run_cases(worker, cases):
    """cases: [(sql_fn, nargs, python_fn, args)] -> list of (case, want, got)"""
    c = worker.conn
    out = []
    for chunk_start in range(0, len(cases), 400):
        chunk = cases[chunk_start:chunk_start + 400]
        ids = {}
        for case in chunk:
            name, args = case[0], case[2]
            ph = ", ".join(f"${i + 1}" for i in range(len(args)))
            values = [{"value": a, "type": "unknown"} if a is None else a for a in args]
            payload = {"sql": f"select {name}({ph})", "result_format": "msgpack"}
            if args:
                payload["params"] = {"mode": "positional", "values": values}
            ids[c.request("db_query", payload)] = case
        got = {}
        while len(got) < len(ids):
            r = c.recv(timeout=30)
            got[r["request_id"]] = r
        for rid, case in ids.items():
            r = got[rid]
            if r["status"] == "Ok":
                res = ("value", decode(r)["rows"][0][0])
            elif r["status"] == "DbError" and UNSUPPORTED in r.get("error", ""):
                res = ("unsupported", r["error"])
            elif r["status"] == "DbError":
                res = ("error",)
            else:
                res = ("status", r["status"], r.get("error"))
            out.append((case, oracle(case[1], *case[2]), res))
    return out


def check(results, max_unsupported_share=0.0):
    bad = [(c[0], c[2], want, got) for c, want, got in results
           if got[0] != "unsupported" and got != want]
    assert not bad, "\n".join(f"{n}{tuple(a)}: django {w} worker {g}" for n, a, w, g in bad[:25])
    uns = [c for c, _, got in results if got[0] == "unsupported"]
    assert len(uns) <= max_unsupported_share * len(results), (
        f"{len(uns)} of {len(results)} unsupported, e.g. {[(c[0], c[2]) for c in uns[:5]]}")
    return uns


@pytest.fixture(scope="module")
def worker():
    with Worker({"default": "sqlite::memory:"},
                "--pool", "default:sqlite_django_functions=true") as w:
        yield w


def test_functions_only_where_asked_for():
    """A worker registers Django's functions on the aliases that ask for
    them (the Django adapter does), and on no other: a plain alias has
    SQLite's own functions only, whatever SQL a client sends."""
    names = ", ".join(f"'{n}'" for n in sorted(WORKER_DJANGO_FUNCTIONS))
    sql = f"select lower(name) from pragma_function_list where lower(name) in ({names})"
    with Worker({"plain": "sqlite::memory:", "django": "sqlite::memory:"},
                "--pool", "django:sqlite_django_functions=true") as w:
        plain = {r[0] for r in decode(w.conn.query(sql, db_alias="plain"))["rows"]}
        django = {r[0] for r in decode(w.conn.query(sql, db_alias="django"))["rows"]}
        r = w.conn.call("db_query", {"db_alias": "plain",
                                     "sql": "select django_date_extract('year', '2024-05-06')"})
        assert r["status"] == "DbError" and "no such function" in r["error"], r
        r = w.conn.call("db_query", {"db_alias": "plain", "sql": "select 'abc' regexp 'b'"})
        assert r["status"] == "DbError" and "no such function" in r["error"], r
    # what the plain alias has is SQLite's own (its math functions)
    assert "django_date_extract" not in plain and "regexp" not in plain and "md5" not in plain
    assert {"django_date_extract", "regexp", "md5", "lpad"} <= django


def test_datetime_functions_across_zones_and_dst(worker):
    rng = random.Random(20261201)
    stamps = transition_instants() + random_timestamps(rng, 150)
    cases = []
    for s in stamps:
        conn = rng.choice(CONN_TZ[1:])
        tz = rng.choice(ZONES)
        lk = rng.choice(DT_LOOKUPS)
        tl = rng.choice(TRUNC_LOOKUPS)
        cases += [
            ("django_datetime_extract", F._sqlite_datetime_extract, [lk, s, tz, conn]),
            ("django_datetime_trunc", F._sqlite_datetime_trunc, [tl, s, tz, conn]),
            ("django_date_trunc", F._sqlite_date_trunc, [tl, s, tz, conn]),
            ("django_time_trunc", F._sqlite_time_trunc, [tl, s, tz, conn]),
            ("django_datetime_cast_date", F._sqlite_datetime_cast_date, [s, tz, conn]),
            ("django_datetime_cast_time", F._sqlite_datetime_cast_time, [s, tz, conn]),
            ("django_date_extract", F._sqlite_datetime_extract, [lk, s]),
        ]
    # USE_TZ=False: Django passes NULL time zones
    for s, lk in itertools.product(stamps[:60], DT_LOOKUPS):
        cases.append(("django_datetime_extract", F._sqlite_datetime_extract, [lk, s, None, None]))
    # ordinary inputs are never "unsupported"
    check(run_cases(worker, cases), max_unsupported_share=0.0)


def test_tznames_as_django_spells_them(worker):
    cases = []
    for s, tz, conn in itertools.product(transition_instants()[::7], TZNAMES, CONN_TZ):
        cases.append(("django_datetime_trunc", F._sqlite_datetime_trunc, ["minute", s, tz, conn]))
        cases.append(("django_datetime_extract", F._sqlite_datetime_extract, ["day", s, tz, conn]))
    check(run_cases(worker, cases), max_unsupported_share=0.02)


def test_odd_values_match_or_fall_back(worker):
    cases = []
    for v in ODD_TEXT + ODD_VALUES:
        for conn, tz in ((None, None), ("UTC", "Europe/Paris"), ("Europe/Paris", "Europe/Paris")):
            for lk in ("year", "hour", "week", "microsecond"):
                cases += [
                    ("django_datetime_extract", F._sqlite_datetime_extract, [lk, v, tz, conn]),
                    ("django_datetime_trunc", F._sqlite_datetime_trunc, [lk, v, tz, conn]),
                    ("django_time_trunc", F._sqlite_time_trunc, [lk, v, tz, conn]),
                ]
            cases.append(("django_datetime_cast_date", F._sqlite_datetime_cast_date, [v, tz, conn]))
            cases.append(("django_datetime_cast_time", F._sqlite_datetime_cast_time, [v, tz, conn]))
        for lk in ("hour", "minute", "second", "microsecond", "year"):
            cases.append(("django_time_extract", F._sqlite_time_extract, [lk, v]))
        for w in ("10:00:00", "2024-01-01 10:00:00", "2024-01-01", v):
            cases.append(("django_time_diff", F._sqlite_time_diff, [v, w]))
            cases.append(("django_timestamp_diff", F._sqlite_timestamp_diff, [v, w]))
    uns = check(run_cases(worker, cases), max_unsupported_share=0.05)
    # beyond us: full-width digits, and a time zone conversion of None (which
    # Python turns into "now"; Django never asks for it)
    for name, _, args in uns:
        assert any("１２" in str(a) for a in args) or (
            args[-1] is None and args[-2] is not None), (name, args)


def test_format_dtdelta(worker):
    """F() arithmetic with durations: timedeltas as microseconds, datetimes
    and dates as text, and plain numbers for * and /."""
    operands = [0, 1, -1, 86400 * 10 ** 6, -(86400 * 10 ** 6) - 5, 3600 * 10 ** 6 + 123,
                10 ** 15, 2 ** 62, "2024-02-28 23:30:00", "2024-03-01 00:00:00.5",
                "2024-01-01", "9999-12-31 23:59:59", "0001-01-01 00:00:00", "", "junk",
                "2024-01-01 10:00", 2.5, 0.0, 7]
    def huge_repeat(conn, a, b):  # "junk" * 10**15 would exhaust Python's memory
        return conn == "*" and any(isinstance(x, str) and isinstance(y, int) and abs(y) > 100
                                   for x, y in ((a, b), (b, a)))

    cases = [("django_format_dtdelta", F._sqlite_format_dtdelta, [conn, lhs, rhs])
             for conn in ("+", "-", " - ", "*", "/", None, 5)
             for lhs in operands for rhs in operands if not huge_repeat(conn, lhs, rhs)]
    uns = check(run_cases(worker, cases), max_unsupported_share=0.2)
    # beyond us: * and / of text (Python repeats strings or fails)
    assert all(c[2][0] in ("*", "/") for c in uns), [c[2] for c in uns[:5]]


def test_text_hash_and_number_functions(worker):
    texts = ["", "a", "héllo", "日本語テキスト", "x" * 50, "emoji 🎉 ok"]
    cases = []
    for t in texts + [None, 5, 2.5, b"ab"]:
        for n in (-3, 0, 1, 4, 12, None, 2.0):
            for fill in ("", "*", "ab", "ü", None, 7):
                cases.append(("LPAD", F._sqlite_lpad, [t, n, fill]))
                cases.append(("RPAD", F._sqlite_rpad, [t, n, fill]))
            cases.append(("REPEAT", F._sqlite_repeat, [t, n]))
        cases.append(("REVERSE", F._sqlite_reverse, [t]))
        for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
            cases.append((name.upper(), getattr(F, f"_sqlite_{name}"), [t]))
    for x in (-7, 0, 3, -0.5, 0.0, 2.25, 1e300, None, "a"):
        cases.append(("SIGN", F._sqlite_sign, [x]))
        cases.append(("COT", F._sqlite_cot, [x]))
        for y in (3, 0, -1, 1.5, None):
            cases.append(("BITXOR", F._sqlite_bitxor, [x, y]))
    uns = check(run_cases(worker, cases), max_unsupported_share=0.1)
    assert {(n, type(args[0])) for n, _, args in uns} <= {("LPAD", bytes), ("RPAD", bytes)}


def test_regexp(worker):
    pats = ["^ab+c$", "a.c", "(?i)hello", "\\d{2,4}-\\d+", "[^a-z]+", "colou?r", "^$",
            "(foo|bar)baz", "\\bword\\b", "x*", "[]a]", "(?P<y>\\d{4})", "a{3}", "\\w+@\\w+\\.com",
            "(?:ab)+", "é+", "\\.", "[a-c\\d]", "(?s)a.b", "a(?=b)", "(?<!x)y", "(",  # invalid
            "a\\Z", "[[:alpha:]]", "a{,3}", "\\p{L}", "(?x) a b"]  # unsupported
    subjects = ["abc", "abbbc", "ABC hello", "Hello", "1234-5", "color", "colour", "", "foobaz",
                "a word here", "aaa", "é", "a.c", "a\nb", "ab", "xy", "zy", 42, None,
                "user@example.com", "line\n"]
    cases = [("regexp", F._sqlite_regexp, [p, s]) for p in pats for s in subjects]
    cases += [("regexp", F._sqlite_regexp, [7, "7"]), ("regexp", F._sqlite_regexp, [None, "a"])]
    results = run_cases(worker, cases)
    uns = check(results, max_unsupported_share=0.25)
    assert {c[2][0] for c in uns} == {"a\\Z", "[[:alpha:]]", "a{,3}", "\\p{L}", "(?x) a b"}


def test_functions_inside_real_queries(worker):
    """The shapes Django compiles: functions over a table, in WHERE and GROUP BY."""
    c = worker.conn
    rows = c.query(
        "with t(ts) as (values ('2024-03-31 00:30:00'), ('2024-03-31 01:30:00'), "
        "('2024-10-27 00:30:00'), ('2024-10-27 01:30:00')) "
        "select django_datetime_trunc('hour', ts, 'Europe/Paris', 'UTC') as h, count(*) "
        "from t where django_datetime_extract('year', ts, 'Europe/Paris', 'UTC') = 2024 "
        "group by h order by h", result_format="msgpack")
    want = {}
    for ts in ("2024-03-31 00:30:00", "2024-03-31 01:30:00", "2024-10-27 00:30:00",
               "2024-10-27 01:30:00"):
        h = F._sqlite_datetime_trunc("hour", ts, "Europe/Paris", "UTC")
        want[h] = want.get(h, 0) + 1
    assert decode(rows)["rows"] == [[k, v] for k, v in sorted(want.items())]
    # a zone with a one-hour DST gap: local 02:30 does not exist in Paris
    r = c.query("select django_datetime_trunc('minute', '2024-03-31 02:30:00', 'UTC', "
                "'Europe/Paris')", result_format="msgpack")
    assert decode(r)["rows"][0][0] == F._sqlite_datetime_trunc(
        "minute", "2024-03-31 02:30:00", "UTC", "Europe/Paris")
