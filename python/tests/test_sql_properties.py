"""Property tests: values never enter the SQL text, and startswith /
endswith / contains match literally whatever characters the value holds.

Run against a real SQLite (in memory) and, when MOLT_TEST_DSN is set, a
real PostgreSQL through psycopg 3.
"""

import os
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molt_sql import count, table

U = table("users")
O = table("orders")

MARK = "\u2603"  # never produced by the compiler (identifiers below are ASCII)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
)
marked_text = st.text().map(lambda s: MARK + s + MARK)
non_null = scalars.filter(lambda v: v is not None)


def builds(v1, v2, s, items):
    """A grab bag of constructs, each holding the given values."""
    return [
        U.where(U.id == v1).select(U.id),
        U.where((U.name != v2) | ~(U.age < v1)).select(U.id, U.name),
        U.where(U.name.in_(items)).select(U.id),
        U.where(U.age.between(v1, v2)).select(U.id),
        U.where(U.name.like(s) & U.email.ilike(s)).select(U.id),
        U.where(U.name.startswith(s) | U.name.endswith(s) | U.name.contains(s)).select(U.id),
        U.left_join(O, on=(O.user_id == U.id) & (O.status == v2)).select(U.id, (O.total + v1).as_("t")),
        O.group_by(O.user_id).select(O.user_id, count()).having(count() > v1).order_by(O.user_id.desc()),
        U.select(U.id).limit(abs(hash(s)) % 1000).offset(3),
    ]


def texts(q):
    for d in ("postgres", "sqlite"):
        for ps in ("dollar", "qmark", "format"):
            yield q.compile(d, paramstyle=ps)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(v1=non_null, v2=non_null, s=marked_text, items=st.lists(marked_text, max_size=5))
def test_marked_values_never_appear_in_sql(v1, v2, s, items):
    for q in builds(v1, v2, s, items):
        for sql, params in texts(q):
            assert MARK not in sql
    # and the values did go somewhere: into params
    like_sql, like_params = builds(v1, v2, s, items)[4].compile("postgres")
    assert like_params == [s, s]
    in_sql, in_params = builds(v1, v2, s, items)[2].compile("sqlite")
    assert in_params == items


@settings(max_examples=300)
@given(a=st.tuples(non_null, non_null, st.text(), st.lists(st.text(), min_size=2, max_size=2)),
       b=st.tuples(non_null, non_null, st.text(), st.lists(st.text(), min_size=2, max_size=2)))
def test_sql_text_does_not_depend_on_values(a, b):
    # the same shapes with different values compile to the same text
    qa = builds(*a)
    qb = builds(*b)
    for x, y in zip(qa[:-1], qb[:-1]):
        for (sa, pa), (sb, pb) in zip(texts(x), texts(y)):
            assert sa == sb
            assert len(pa) == len(pb)


@given(v=non_null)
def test_values_reach_params_unchanged(v):
    sql, params = U.where(U.id == v).compile("postgres")
    assert sql == 'SELECT * FROM "users" WHERE "users"."id" = $1'
    assert params == [v] or (v != v)


# ---- literal matching, checked by the databases themselves ----

alphabet = st.sampled_from(list("aA%_\\*?[]^!-'\"é ") + ["\u2603"])
words = st.text(alphabet=alphabet, max_size=6)


def _sqlite_with(names):
    db = sqlite3.connect(":memory:")
    db.execute('CREATE TABLE "users" (id integer PRIMARY KEY, name text)')
    db.executemany('INSERT INTO "users" VALUES (?, ?)', list(enumerate(names)))
    return db


def _expected(names, fn, s):
    return sorted(i for i, n in enumerate(names) if getattr(n, fn)(s))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(words, max_size=12), s=words)
def test_literal_matches_on_sqlite(names, s):
    db = _sqlite_with(names)
    for fn, py in (("startswith", "startswith"), ("endswith", "endswith"), ("contains", "__contains__")):
        sql, params = U.where(getattr(U.name, fn)(s)).select(U.id).compile("sqlite", paramstyle="qmark")
        got = sorted(r[0] for r in db.execute(sql, params))
        assert got == _expected(names, py, s), (fn, s, sql, params)


@pytest.fixture(scope="module")
def pg():
    dsn = os.environ.get("MOLT_TEST_DSN")
    if not dsn:
        pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE users (id integer PRIMARY KEY, name text)")
        yield conn


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(names=st.lists(words, max_size=12), s=words)
def test_literal_matches_on_postgres(pg, names, s):
    pg.execute("TRUNCATE users")
    with pg.cursor() as cur:
        cur.executemany("INSERT INTO users VALUES (%s, %s)", list(enumerate(names)))
    for fn, py in (("startswith", "startswith"), ("endswith", "endswith"), ("contains", "__contains__")):
        sql, params = U.where(getattr(U.name, fn)(s)).select(U.id).compile("postgres", paramstyle="format")
        got = sorted(r[0] for r in pg.execute(sql, params))
        assert got == _expected(names, py, s), (fn, s, sql, params)
