"""Property tests for the DF1 constructs.

1. Random queries (arithmetic, CASE, COALESCE, NULLIF, GREATEST/LEAST,
   IS [NOT] DISTINCT FROM, window functions with frames, set operations)
   over random rows give the same rows on SQLite (sqlite3, in memory) and on
   PostgreSQL (through the worker), where the two databases' semantics agree:
   integers only, no division, every ORDER BY total and explicit about NULLs.
2. Marked values in every value position of the DF1 constructs never
   appear in the SQL text, for every dialect and placeholder style.
"""

import os
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molt_db_adapter import MoltClient
from molt_sql import (
    CURRENT_ROW, UNBOUNDED_FOLLOWING, UNBOUNDED_PRECEDING, abs_, case, coalesce, count, dense_rank,
    exists, extract, following, greatest, lag, lead, least, max_, min_, nullif, param, preceding,
    rank, row_number, rows_between, sum_, table, window,
)
from sql_sides import norm
from worker_client import WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
APP_DSN = os.environ.get("MOLT_TEST_DSN_APP")
SCHEMA = f"molt_sql_df1p_{os.getpid()}"
DDL = 'CREATE TABLE {}"t" (id integer PRIMARY KEY, g integer NOT NULL, v integer, w integer)'

small = st.integers(min_value=-20, max_value=20)
maybe = st.one_of(st.none(), small)
rows_st = st.lists(st.tuples(st.integers(0, 3), maybe, maybe), min_size=1, max_size=10).map(
    lambda rs: [(i + 1, g, v, w) for i, (g, v, w) in enumerate(rs)])


# Strategies draw builders, functions of the table, so that one drawn shape
# is built over SQLite's "t" and over PostgreSQL's schema-qualified "t".

def exprs():
    leaves = st.sampled_from(["id", "g", "v", "w"]).map(lambda n: lambda T: T.c(n)) | \
        small.map(lambda k: lambda T: param(k))

    def grow(inner):
        two, three = st.tuples(inner, inner), st.tuples(inner, inner, inner)
        return st.one_of(
            st.tuples(inner, inner, st.sampled_from(["+", "-", "*"])).map(lambda a: lambda T: _arith(a, T)),
            two.map(lambda a: lambda T: coalesce(a[0](T), a[1](T))),
            two.map(lambda a: lambda T: nullif(a[0](T), a[1](T))),
            three.map(lambda a: lambda T: greatest(a[0](T), a[1](T), a[2](T))),
            two.map(lambda a: lambda T: least(a[0](T), a[1](T))),
            st.tuples(preds(inner), inner, inner).map(
                lambda a: lambda T: case((a[0](T), a[1](T)), else_=a[2](T))),
            inner.map(lambda a: lambda T: abs_(a(T))),
            inner.map(lambda a: lambda T: -a(T)),
        )

    return st.recursive(leaves, grow, max_leaves=6)


def _arith(a, T):
    x, y, op = a[0](T), a[1](T), a[2]
    return x + y if op == "+" else x - y if op == "-" else x * y


def _compare(a, T):
    x, y, op = a[0](T), a[1](T), a[2]
    return x < y if op == "<" else (x == y) if op == "=" else x >= y


def preds(e):
    return st.one_of(
        st.tuples(e, e, st.sampled_from(["<", "=", ">="])).map(lambda a: lambda T: _compare(a, T)),
        st.tuples(e, e).map(lambda a: lambda T: a[0](T).is_distinct_from(a[1](T))),
        st.tuples(e, e).map(lambda a: lambda T: a[0](T).is_not_distinct_from(a[1](T))),
        e.map(lambda a: lambda T: a(T).is_null()),
        st.tuples(e, st.lists(small, min_size=1, max_size=3)).map(lambda a: lambda T: a[0](T).in_(a[1])),
        st.tuples(e, e).map(lambda a: lambda T: _compare((a[0], a[1], "<"), T) | a[1](T).is_null()),
    )


# total and explicit about NULLs: PostgreSQL and SQLite put NULLs at
# opposite ends by default
ORDERS = [lambda T: [T.v.asc().nulls_last(), T.id], lambda T: [T.w.desc().nulls_first(), T.id.desc()]]
PARTITIONS = [lambda T: [], lambda T: [T.g]]
FRAMES = st.one_of(
    st.just(None),
    st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda a: rows_between(preceding(a[0]), following(a[1]))),
    st.just(rows_between(UNBOUNDED_PRECEDING, CURRENT_ROW)),
    st.just(rows_between(CURRENT_ROW, UNBOUNDED_FOLLOWING)),
)


def windows(e):
    spec = st.tuples(st.sampled_from(PARTITIONS), st.sampled_from(ORDERS), st.booleans())

    def over(call, sp, T, frame=None):
        part, order, named = sp
        if named:
            return call.over(window("win dow", partition_by=part(T), order_by=order(T), frame=frame))
        return call.over(partition_by=part(T), order_by=order(T), frame=frame)

    ranked = st.tuples(st.sampled_from([row_number, rank, dense_rank]), spec).map(
        lambda a: lambda T: over(a[0](), a[1], T))
    shifted = st.tuples(st.sampled_from([lag, lead]), e, st.integers(0, 2), spec).map(
        lambda a: lambda T: over(a[0](a[1](T), a[2]), a[3], T))
    agg = st.tuples(st.sampled_from([sum_, min_, max_]), e, spec, FRAMES).map(
        lambda a: lambda T: over(a[0](a[1](T)), a[2], T, a[3]))
    counted = st.tuples(spec, FRAMES, preds(e)).map(
        lambda a: lambda T: over(count().filter(a[2](T)), a[0], T, a[1]))
    return st.one_of(ranked, shifted, agg, counted)


@st.composite
def queries(draw):
    e = exprs()
    ex, win = draw(e), draw(windows(e))
    cond = draw(st.one_of(st.none(), preds(e)))

    def build(T):
        q = T.select(T.id, ex(T).as_("e"), win(T).as_("win"))
        return q if cond is None else q.where(cond(T))
    return build


@st.composite
def set_queries(draw):
    e = exprs()
    pa, ea, pb, eb = draw(preds(e)), draw(e), draw(preds(e)), draw(e)
    op = draw(st.sampled_from(["union", "union_all", "intersect", "except_"]))

    def build(T):
        a = T.where(pa(T)).select(ea(T).as_("x"))
        b = T.where(pb(T)).select(eb(T).as_("x"))
        return getattr(a, op)(b)
    return build


def _lite(rows):
    db = sqlite3.connect(":memory:")
    db.execute(DDL.format(""))
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    return db


def _sorted(rows):
    """Sorted, with numbers in one form: sum() of bigint is numeric on
    PostgreSQL (a Decimal here) and an integer on SQLite."""
    rows = [tuple(norm(v) for v in r) for r in rows]
    return sorted(rows, key=lambda r: tuple((v is None, v if v is not None else 0) for v in r))


@pytest.fixture(scope="module")
def pg():
    if not (DSN and APP_DSN) or not os.path.exists(WORKER_BIN):
        pytest.skip("needs the worker and MOLT_TEST_DSN(_APP) (run under scripts/with_pg.sh)")
    psycopg = pytest.importorskip("psycopg")
    conn = psycopg.connect(DSN, autocommit=True)
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    try:
        conn.execute(DDL.format(SCHEMA + "."))
        conn.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO molt_app")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO molt_app")
        with MoltClient([WORKER_BIN, "--stdio", "--db", f"default={APP_DSN}"], decode_numeric="decimal") as client:
            yield conn, client
    finally:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        conn.close()


def _load_pg(conn, rows):
    conn.execute(f"TRUNCATE {SCHEMA}.t")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {SCHEMA}.t VALUES (%s, %s, %s, %s)", rows)


def _same_on_both(pg, rows, build):
    conn, client = pg
    _load_pg(conn, rows)
    lite_q, pg_q = build(table("t")), build(table("t", schema=SCHEMA))
    sql, params = lite_q.compile("sqlite", paramstyle="qmark")
    want = _sorted(_lite(rows).execute(sql, params).fetchall())
    got = _sorted(pg_q.using(client, "default", "postgres").fetch_all_sync())
    assert got == want, (sql, params)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=rows_st, build=queries())
def test_windows_and_expressions_agree_across_dialects(pg, rows, build):
    _same_on_both(pg, rows, build)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=rows_st, build=set_queries())
def test_set_operations_agree_across_dialects(pg, rows, build):
    _same_on_both(pg, rows, build)


# ---- placeholders and values, without a database ----

MARK = "\u2603"
marked = st.text(max_size=8).map(lambda s: MARK + s + MARK)
numbers = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def df1_builds(s, n):
    """The DF1 constructs, each holding the marked text ``s`` or the int
    ``n`` in every value position it has."""
    U, O, I = table("users"), table("orders"), table("items")
    w = window("w", partition_by=[O.user_id], order_by=[O.id], frame=rows_between(preceding(abs(n) % 9), CURRENT_ROW))
    sub = O.where(O.status == s).select(O.user_id)
    return [
        U.select(case((U.name == s, s), else_=s), coalesce(U.email, s), nullif(U.name, s), greatest(U.age, n)),
        U.select(U.name.concat(s, param(s)), U.name.is_distinct_from(s), extract("year", param(s))),
        O.select(lag(O.status, 1, s).over(w), count().filter(O.status == s).over(w), sum_(O.total + n).over()),
        U.where(U.id.in_(sub) & exists(O.where((O.user_id == U.id) & (O.status != s)))).select(U.id),
        U.where(U.id.not_in(sub)).select(U.id).union(O.where(O.status == s).select(O.id)).limit(abs(n) % 1000),
        sub.cte("c").select(sub.cte("c").user_id),
        I.insert({"id": n, "name": s}).on_conflict(I.id).do_update({"name": s}).returning(I.id),
        I.insert([{"id": n, "name": s}, {"id": n, "name": s}]),
        I.update({"name": s, "qty": I.qty + n}).where(I.name == s).returning(I.name),
        I.delete().where(I.name.startswith(s) | (I.name == s)),
    ]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=marked, n=numbers, s2=marked, n2=numbers)
def test_marked_values_never_appear_in_df1_sql(s, n, s2, n2):
    for q, other in zip(df1_builds(s, n), df1_builds(s2, n2)):
        for d in ("postgres", "sqlite"):
            for ps in ("dollar", "qmark", "format"):
                sql, params = q.compile(d, paramstyle=ps)
                assert MARK not in sql
                # the text depends on the shape only, never on the values
                assert sql == other.compile(d, paramstyle=ps)[0]
        sql, params = q.compile("postgres")
        assert any(isinstance(p, str) and MARK in p for p in params)


def test_placeholders_are_numbered_in_text_order():
    import re

    from sql_df1_cases import CASES, build

    for case in CASES:
        q = build(case)
        for d in ("postgres", "sqlite"):
            sql, params = q.compile(d)
            seen = [int(m) for m in re.findall(r"\$(\d+)", sql)]
            assert seen == list(range(1, len(params) + 1)), (case.name, d, sql)
