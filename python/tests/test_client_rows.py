"""Rows as the clients hand them out, on both transports (conftest.py's
transport fixture), from real PostgreSQL: ``QueryResult.dicts()`` and the
streams' ``dicts()`` (sync and asyncio) built in C give, for every type of
the worker's type table, arrays and NULLs, exactly what the pure-Python
path gives (compared by repr), with one shared key object per column; a
stream's dicts are its rows' tuples keyed by the columns; and the C rows
are left to the cyclic GC only when they can hold a cycle (a row of atoms
is untracked, a row with a list is tracked, as CPython does itself)."""

import asyncio
import gc

import pytest

from molt_db_adapter import AsyncMoltClient, MoltClient, c_rows
from test_rows_c import ARRAYS_SQL, MANY_SQL, NULLS_SQL
from test_worker_pg import SCALAR_EDGES_SQL, TYPES_SQL
from worker_client import NEEDS_PG_WORKER, pg_client_cmd

pytestmark = [pytest.mark.usefixtures("transport"), *NEEDS_PG_WORKER,
              pytest.mark.skipif(c_rows.decoder is None, reason="molt_db_adapter._rows is not built (make)")]

ALL_SQL = [TYPES_SQL, SCALAR_EDGES_SQL, ARRAYS_SQL, MANY_SQL, NULLS_SQL]
IDS = ["types", "edges", "arrays", "many", "nulls"]


def same(a, b):
    assert repr(a) == repr(b)


def pure_python(fn):
    """fn() with the C decoder turned off."""
    saved, c_rows.decoder = c_rows.decoder, None
    try:
        return fn()
    finally:
        c_rows.decoder = saved


@pytest.mark.parametrize("sql", ALL_SQL, ids=IDS)
@pytest.mark.parametrize("numeric", ["str", "decimal"])
def test_dicts_built_in_c_are_the_python_ones(sql, numeric):
    with MoltClient(pg_client_cmd(), decode_numeric=numeric, decode_json=numeric == "decimal") as c:
        r = c.query(sql)
        fast = r.dicts()
        assert r._c_doc(dicts=True) is not None, "the C decoder declined a worker payload"
        slow = pure_python(lambda: c.query(sql).dicts())
        same(fast, slow)
        same(fast, [dict(zip(r.columns, row)) for row in r.rows])
        # one key object per column, shared by every row
        for row in fast[1:]:
            assert all(a is b for a, b in zip(row, fast[0]))


def test_repeated_column_names_keep_the_last_value():
    with MoltClient(pg_client_cmd()) as c:
        r = c.query("select 1 as a, 2 as b, 3 as a")
        assert r.dicts() == [{"a": 3, "b": 2}]
        assert pure_python(lambda: c.query("select 1 as a, 2 as b, 3 as a").dicts()) == [{"a": 3, "b": 2}]


def test_stream_dicts_are_the_rows_keyed_by_column():
    with MoltClient(pg_client_cmd()) as c:
        with c.stream(MANY_SQL, batch_rows=700, decode_numeric="decimal", decode_json=True) as s:
            dicts = list(s.dicts())
        with c.stream(MANY_SQL, batch_rows=700, decode_numeric="decimal", decode_json=True) as s:
            rows = list(s)
            cols = s.columns
        slow = pure_python(lambda: list(c.stream(MANY_SQL, batch_rows=700, decode_numeric="decimal",
                                                 decode_json=True).dicts()))
    assert len(dicts) == 3000
    same(dicts, [dict(zip(cols, r)) for r in rows])
    same(dicts, slow)


def test_async_stream_dicts():
    async def run():
        async with AsyncMoltClient(pg_client_cmd()) as ac:
            async with ac.stream(MANY_SQL, batch_rows=1000) as s:
                dicts = [d async for d in s.dicts()]
            return dicts, (await ac.query(MANY_SQL)).dicts()

    streamed, whole = asyncio.run(run())
    assert len(streamed) == 3000
    same(streamed, whole)


def test_rows_of_atoms_are_untracked_rows_with_lists_are_not():
    with MoltClient(pg_client_cmd()) as c:
        atoms = c.query("select g, 't' || g, g * 0.5, now(), null::int from generate_series(1, 3) g").rows
        lists = c.query("select g, array[g, g + 1] from generate_series(1, 3) g").rows
        d = c.query("select g, array[g] as a from generate_series(1, 2) g").dicts()
    assert not any(gc.is_tracked(r) for r in atoms)
    assert all(gc.is_tracked(r) for r in lists)
    assert all(gc.is_tracked(r) for r in d)
    # a cycle through a tracked row's list is still collected
    lists[0][1].append(lists[0])
    del lists
    assert gc.collect() >= 1
