"""The same question asked through molt_sql and through hand-written SQL
gives the same rows: on SQLite (sqlite3, a temp file) and on PostgreSQL
(psycopg 3 on MOLT_TEST_DSN). The molt_sql side is compiled with the
placeholder style of the driver (qmark / format); the worker path, which
uses $n, is covered in test_adapter_worker.py.
"""

import os
import sqlite3

import pytest

from molt_sql import avg, count, max_, min_, sum_, table

from sql_data import ODD, ODD_DDL, ORDERS, ORDERS_DDL, USERS, USERS_DDL

U = table("users")
O = table("orders")
A = U.alias("a")
B = U.alias("b")
ODDT = table('odd "name" %s')

# (name, query, hand-written SQL with %s, params[, SQLite SQL with ?, params])
# "ordered": the hand SQL has a total ORDER BY, compare in order.
CASES = [
    ("eq", U.where(U.id == 3).select(U.id, U.name),
     "SELECT id, name FROM users WHERE id = %s", [3]),
    ("ne_and_not", U.where((U.name != "bob") & ~(U.age > 40)).select(U.id),
     "SELECT id FROM users WHERE name <> %s AND NOT (age > %s)", ["bob", 40]),
    ("or_null", U.where((U.age >= 36) | U.email.is_null()).select(U.id),
     "SELECT id FROM users WHERE age >= %s OR email IS NULL", [36]),
    ("in", U.where(U.id.in_([2, 4, 6, 99])).select(U.id),
     "SELECT id FROM users WHERE id IN (2, 4, 6, 99)", []),
    ("not_in", U.where(U.id.not_in([1, 2])).select(U.id),
     "SELECT id FROM users WHERE id NOT IN (1, 2)", []),
    ("in_empty", U.where(U.id.in_([])).select(U.id),
     "SELECT id FROM users WHERE false", [],
     "SELECT id FROM users WHERE 0", []),
    ("in_subquery", U.where(U.id.in_(O.where(O.total > 90).select(O.user_id))).select(U.id),
     "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 90)", []),
    ("between", U.where(U.age.between(22, 36)).select(U.id),
     "SELECT id FROM users WHERE age >= 22 AND age <= 36", []),
    ("is_not_null", U.where(U.score.is_not_null()).select(U.id, U.score),
     "SELECT id, score FROM users WHERE score IS NOT NULL", []),
    ("like_raw", U.where(U.email.like("%@austin.edu")).select(U.id),
     "SELECT id FROM users WHERE email LIKE %s", ["%@austin.edu"]),
    ("ilike", U.where(U.name.ilike("ada")).select(U.id),
     "SELECT id FROM users WHERE lower(name) = 'ada'", []),
    ("endswith_case_sensitive", U.where(U.email.endswith("@austin.edu")).select(U.id),
     "SELECT id FROM users WHERE right(email, 11) = '@austin.edu'", [],
     "SELECT id FROM users WHERE substr(email, -11) = '@austin.edu'", []),
    ("startswith_wildcards", U.where(U.email.startswith("hal%")).select(U.id),
     "SELECT id FROM users WHERE left(email, 4) = 'hal%%'", [],
     "SELECT id FROM users WHERE substr(email, 1, 4) = 'hal%'", []),
    ("contains_underscore", U.where(U.name.contains("_")).select(U.id),
     "SELECT id FROM users WHERE strpos(name, '_') > 0", [],
     "SELECT id FROM users WHERE instr(name, '_') > 0", []),
    ("contains_backslash", U.where(U.name.contains("\\")).select(U.id),
     "SELECT id FROM users WHERE strpos(name, chr(92)) > 0", [],
     "SELECT id FROM users WHERE instr(name, char(92)) > 0", []),
    ("contains_glob_chars", U.where(U.name.contains("*?[")).select(U.id),
     "SELECT id FROM users WHERE strpos(name, '*?[') > 0", [],
     "SELECT id FROM users WHERE instr(name, '*?[') > 0", []),
    ("order_nulls_last", U.select(U.id, U.age).order_by(U.age.desc().nulls_last(), U.id),
     "SELECT id, age FROM users ORDER BY age DESC NULLS LAST, id", [], "ordered"),
    ("order_nulls_first", U.select(U.id, U.score).order_by(U.score.asc().nulls_first(), U.id.desc()),
     "SELECT id, score FROM users ORDER BY score ASC NULLS FIRST, id DESC", [], "ordered"),
    ("limit_offset", U.select(U.id).order_by(U.id).limit(3).offset(4),
     "SELECT id FROM users ORDER BY id LIMIT 3 OFFSET 4", [], "ordered"),
    ("offset_only", U.select(U.id).order_by(U.id).offset(7),
     "SELECT id FROM users ORDER BY id OFFSET 7", [],
     "SELECT id FROM users ORDER BY id LIMIT -1 OFFSET 7", []),
    ("inner_join", U.join(O, on=O.user_id == U.id).where(O.status == "paid").select(U.name, O.total),
     "SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.status = 'paid'", []),
    ("left_join", U.left_join(O, on=(O.user_id == U.id) & (O.status == "open")).select(U.id, O.id.as_("oid")),
     "SELECT u.id, o.id FROM users u LEFT JOIN orders o ON o.user_id = u.id AND o.status = 'open'", []),
    ("self_join", A.join(B, on=(A.age == B.age) & (A.id < B.id)).select(A.id, B.id),
     "SELECT a.id, b.id FROM users a JOIN users b ON a.age = b.age AND a.id < b.id", []),
    ("group_having", O.group_by(O.user_id).select(O.user_id, count(), sum_(O.total), min_(O.total), max_(O.total)).having(count() > 1),
     "SELECT user_id, count(*), sum(total), min(total), max(total) FROM orders GROUP BY user_id HAVING count(*) > 1", []),
    ("group_avg", O.group_by(O.status).select(O.status, avg(O.total).as_("a")).order_by(O.status),
     "SELECT status, avg(total) FROM orders GROUP BY status ORDER BY status", [], "ordered"),
    ("count_distinct", O.select(O.user_id.count(distinct=True), count()),
     "SELECT count(DISTINCT user_id), count(*) FROM orders", []),
    ("order_by_alias", O.group_by(O.status).select(O.status, O.total.sum().as_("s")).order_by(O.total.sum().as_("s").desc()),
     "SELECT status, sum(total) AS s FROM orders GROUP BY status ORDER BY s DESC", [], "ordered"),
    ("distinct", U.select(U.age).distinct(),
     "SELECT DISTINCT age FROM users", []),
    ("arithmetic", O.select(O.id, (O.total * 2 + 1).as_("x")).where(O.total - 5 > 50),
     "SELECT id, total * 2 + 1 FROM orders WHERE total - 5 > 50", []),
    ("quoted_identifiers", ODDT.select(ODDT.c("select"), ODDT["Mixed Case"]).where(ODDT.c("select") >= 2),
     'SELECT "select", "Mixed Case" FROM "odd ""name"" %%s" WHERE "select" >= 2', [],
     'SELECT "select", "Mixed Case" FROM "odd ""name"" %s" WHERE "select" >= 2', []),
    ("strings_with_quotes", U.where(U.name == "Gus O'Neil").select(U.id),
     "SELECT id FROM users WHERE id = 7", []),
]


def _norm(case):
    name, q, pg_sql, pg_params, *rest = case
    ordered = False
    if rest and rest[-1] == "ordered":
        ordered = True
        rest = rest[:-1]
    if rest:
        lite_sql, lite_params = rest
    else:
        lite_sql, lite_params = pg_sql.replace("%%", "\x00").replace("%s", "?").replace("\x00", "%"), pg_params
    return name, q, pg_sql, pg_params, lite_sql, lite_params, ordered


NORMED = [_norm(c) for c in CASES]
IDS = [c[0] for c in NORMED]


def _cmp(got, want, ordered):
    got = [tuple(r) for r in got]
    want = [tuple(r) for r in want]
    if not ordered:
        key = lambda r: tuple((v is None, repr(type(v)), v) if v is not None else (True, "", 0) for v in r)  # noqa: E731
        got, want = sorted(got, key=key), sorted(want, key=key)
    assert got == want
    return got


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    path = tmp_path_factory.mktemp("oracle") / "oracle.db"
    db = sqlite3.connect(path)
    db.execute(USERS_DDL)
    db.execute(ORDERS_DDL)
    db.execute(ODD_DDL)
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", USERS)
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ORDERS)
    db.executemany('INSERT INTO "odd ""name"" %s" VALUES (?, ?)', ODD)
    db.commit()
    yield db
    db.close()


@pytest.fixture(scope="module")
def pg():
    dsn = os.environ.get("MOLT_TEST_DSN")
    if not dsn:
        pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
    psycopg = pytest.importorskip("psycopg")
    schema = f"molt_sql_oracle_{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f"SET search_path = {schema}")
            conn.execute(USERS_DDL)
            conn.execute(ORDERS_DDL)
            conn.execute(ODD_DDL)  # no params: psycopg leaves % alone
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO users VALUES (%s, %s, %s, %s, %s)", USERS)
                cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", ORDERS)
                cur.executemany('INSERT INTO "odd ""name"" %%s" VALUES (%s, %s)', ODD)
            yield conn
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize("case", NORMED, ids=IDS)
def test_same_rows_on_sqlite(lite, case):
    name, q, _, _, lite_sql, lite_params, ordered = case
    sql, params = q.compile("sqlite", paramstyle="qmark")
    got = lite.execute(sql, params).fetchall()
    want = lite.execute(lite_sql, lite_params).fetchall()
    rows = _cmp(got, want, ordered)
    if name not in ("in_empty",):
        assert rows, f"{name}: the oracle returned no rows, so the case proves little"


@pytest.mark.parametrize("case", NORMED, ids=IDS)
def test_same_rows_on_postgres(pg, case):
    name, q, pg_sql, pg_params, _, _, ordered = case
    sql, params = q.compile("postgres", paramstyle="format")
    got = pg.execute(sql, params).fetchall()
    want = pg.execute(pg_sql, pg_params).fetchall()
    rows = _cmp(got, want, ordered)
    if name not in ("in_empty",):
        assert rows, f"{name}: the oracle returned no rows, so the case proves little"


def test_sqlite_like_semantics_documented(lite):
    # on SQLite, like() keeps SQLite's ASCII case-insensitive LIKE, while
    # endswith() is case-sensitive (GLOB), as on PostgreSQL
    like = U.where(U.email.like("%@austin.edu")).select(U.id).compile("sqlite", paramstyle="qmark")
    ends = U.where(U.email.endswith("@austin.edu")).select(U.id).compile("sqlite", paramstyle="qmark")
    like_ids = {r[0] for r in lite.execute(*like)}
    ends_ids = {r[0] for r in lite.execute(*ends)}
    assert 3 in like_ids and 3 not in ends_ids  # carla@AUSTIN.EDU
    assert ends_ids < like_ids
