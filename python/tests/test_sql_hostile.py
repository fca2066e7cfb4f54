"""A hostile value or name never becomes SQL: injection-looking strings in
every position of molt_sql that takes a value or a name, run through the
real worker on SQLite and PostgreSQL. Each test asserts what the database
holds afterwards (the row written is the string itself; the other rows and
tables are untouched) and what comes back, not only that nothing failed."""

import os

import pytest

from molt_sql import (
    BuildError, case, coalesce, count, excluded, lag, param, recursive_cte, row_number, table, window,
)
from sql_data import ITEMS, USERS
from sql_sides import lite, pg, rows_of  # noqa: F401  (lite, pg: fixtures)
from worker_client import WORKER_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built")

HOSTILE = [
    "'; DROP TABLE items; --",
    '"; DROP TABLE items; --',
    "x') OR ('1'='1",
    "$1",
    "?",
    "%s",
    "%(x)s",
    "\\",
    "\\'; DELETE FROM items; --",
    "*/ DELETE FROM items /*",
    'excluded."name"',
    "]]*?[%_",
    "ü€😀",
]
IDS = [f"h{i}" for i in range(len(HOSTILE))]


def side_table(side, name):
    return table(name, schema=side.schema)


def untouched(side):
    """The tables the attacks name still hold what they held."""
    assert rows_of(side.run("SELECT * FROM items WHERE id < 100"), False) == rows_of(ITEMS, False)
    assert side.run("SELECT count(*) FROM users")[0][0] == len(USERS)


def run_values(side, h):
    I = side_table(side, "items")
    on = (side.client, "default", side.dialect)
    got = I.insert({"id": 100, "name": h, "qty": 1}).on_conflict(I.id) \
        .do_update({"name": h}).returning(I.name).using(*on).execute_sync()
    assert got.rows == [(h,)]
    got = I.update({"name": I.name.concat(h)}).where(I.id == 100).returning(I.name).using(*on).execute_sync()
    assert got.rows == [(h + h,)]
    assert side.run("SELECT name FROM items WHERE id = 100") == [(h + h,)]
    # upsert with the value as the conflicting row's: excluded() is the value, not SQL
    got = I.insert({"id": 100, "name": h, "qty": 2}).on_conflict(I.id) \
        .do_update({"name": excluded(I.name)}).returning(I.name, I.qty).using(*on).execute_sync()
    assert got.rows == [(h, 1)]
    q = I.where((I.name == h) & I.name.startswith(h) & I.name.endswith(h) & I.name.contains(h)
                & I.name.in_([h, "x"]) & ~I.name.is_distinct_from(h)).select(
        I.id, coalesce(param(h), I.name), case((I.id == 100, h), else_="no"),
        lag(I.name, 1, h).over(order_by=[I.id]), count().filter(I.name != h).over(),
        param(h).concat(I.name))
    assert q.using(*on).fetch_all_sync() == [(100, h, h, h, 0, h + h)]
    got = I.delete().where(I.name == h).returning(I.id).using(*on).execute_sync()
    assert got.rows == [(100,)]
    untouched(side)


def run_names(side, h):
    """A table, a column, an alias, a CTE, a window and a subquery all
    named after ``h``: each comes back under that exact name."""
    quoted = '"' + h.replace('"', '""') + '"'
    where = f'"{side.schema}".' if side.schema else ""
    side.run(f"DROP TABLE IF EXISTS {where}{quoted}")
    side.run(f"CREATE TABLE {where}{quoted} ({quoted} integer, other integer)")
    if side.schema:
        side.run(f"GRANT ALL ON {where}{quoted} TO molt_app")
    on = (side.client, "default", side.dialect)
    T = side_table(side, h)
    got = T.insert([{h: 1, "other": 10}, {h: 2, "other": 20}]).returning(T[h]).using(*on).execute_sync()
    assert sorted(got.rows) == [(1,), (2,)]
    A = T.alias(h + "a")
    c = T.select(T[h].as_(h)).cte(h + "c")
    w = window(h, order_by=[A[h]])
    sub = c.select(c[h].as_(h)).subquery(h + "s")
    q = A.join(sub, on=sub[h] == A[h]).select(A[h].as_(h), row_number().over(w).as_(h + "rn"))
    r = side.client.query(*q.compile(side.dialect), db_alias="default")
    assert r.columns == [h, h + "rn"] and sorted(r.rows) == [(1, 1), (2, 2)]
    n = recursive_cte(h + "r", [h])
    n = n.defined_as(T.where(T[h] == 1).select(T[h]).union_all(n.where(n[h] < 3).select(n[h] + 1)))
    assert sorted(n.select(n[h]).using(*on).fetch_all_sync()) == [(1,), (2,), (3,)]
    got = T.update({h: T[h] + 10}).where(T.other == 20).returning(T[h]).using(*on).execute_sync()
    assert got.rows == [(12,)]
    assert sorted(side.run(f"SELECT {quoted}, other FROM {where}{quoted}")) == [(1, 10), (12, 20)]
    side.run(f"DROP TABLE {where}{quoted}")
    untouched(side)


@pytest.mark.parametrize("db", ["lite", "pg"])
@pytest.mark.parametrize("h", HOSTILE, ids=IDS)
def test_hostile_values(request, db, h):
    run_values(request.getfixturevalue(db), h)


@pytest.mark.parametrize("db", ["lite", "pg"])
@pytest.mark.parametrize("h", HOSTILE, ids=IDS)
def test_hostile_names(request, db, h):
    run_names(request.getfixturevalue(db), h)


def test_names_that_cannot_be_identifiers_are_build_errors():
    T = table("items")
    for bad in ("", "a\x00b"):
        with pytest.raises(BuildError):
            table(bad).select(T.id).compile()
        with pytest.raises(BuildError):
            T.select(T.id.as_(bad)).compile()
        with pytest.raises(BuildError):
            T.select(T.id).cte(bad).select(T.id).compile()
        with pytest.raises(BuildError):
            T.insert({bad: 1}).compile()
    with pytest.raises(BuildError):
        T.insert({"id": 1}).on_conflict("id").do_update({"id": [1, 2]})  # not a value
    with pytest.raises(BuildError):
        T.select(T.id).limit("1; DROP TABLE items")  # type: ignore[arg-type]
    from molt_sql import cast, extract, preceding

    with pytest.raises(BuildError):
        cast(T.id, "int); DROP TABLE items; --")  # type: ignore[arg-type]
    with pytest.raises(BuildError):
        extract("year FROM now()); --", T.id)
    with pytest.raises(BuildError):
        preceding("1) DROP")  # type: ignore[arg-type]
