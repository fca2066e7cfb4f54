"""psycopg 3 peer (binary protocol, server-side prepared statements, autocommit).

pingpong: one sync connection (the fastest psycopg shape for one connection).
pk:       psycopg_pool.AsyncConnectionPool of --conns, --inflight asyncio tasks.
bulk:     one connection, binary cursor, fetchall() into Python tuples.
many:     one connection, cursor.executemany of an INSERT (psycopg pipelines
          it), in one transaction.
copyin:   one connection, cursor.copy(... FROM STDIN) with write_row.
"""
import asyncio

import psycopg
from psycopg.types.numeric import Int8
from psycopg_pool import AsyncConnectionPool

from _common import (PINGPONG_CHECK, PK_CHECK_AIDS, Meter, bulk_sql, emit, inflight,
                     latency_summary, parser, rows_check, write_check, write_check_sql,
                     write_create_sql, write_insert_sql, write_rows, write_table)
from _common import pingpong as run_pingpong

PINGPONG_SQL = "SELECT %s::int8"
PK_SQL = "SELECT abalance FROM pgbench_accounts WHERE aid = %s"


def pingpong(a):
    conn = psycopg.connect(a.dsn, autocommit=True, prepare_threshold=0)
    cur = conn.cursor(binary=True)

    def q(x):
        cur.execute(PINGPONG_SQL, (Int8(x),), prepare=True)
        return cur.fetchone()[0]

    m = Meter()
    ops, lat, bad = run_pingpong(a, q, m)
    check = [q(x) for x in PINGPONG_CHECK]
    conn.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat),
         errors=bad, check=check)


async def pk(a):
    pool = AsyncConnectionPool(a.dsn, min_size=a.conns, max_size=a.conns, open=False,
                               kwargs={"autocommit": True, "prepare_threshold": 0})
    await pool.open(wait=True)

    async def one(aid):
        async with pool.connection() as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(PK_SQL, (Int8(aid),), prepare=True)
            return (await cur.fetchone())[0]

    m = Meter()
    ops, lat = await inflight(a, one, m)
    check = [await one(aid) for aid in PK_CHECK_AIDS]
    await pool.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu,
         latencies_us=latency_summary(lat), check=check)


def bulk(a):
    conn = psycopg.connect(a.dsn, autocommit=True)
    sql = bulk_sql(a.limit)
    with conn.cursor(binary=True) as cur:
        cur.execute(bulk_sql(min(a.limit or 1000, 1000)))
        cur.fetchall()
    with Meter() as m:
        with conn.cursor(binary=True) as cur:
            cur.execute(sql)
            rows = cur.fetchall()
    conn.close()
    emit(ops=len(rows), rows=len(rows), seconds=m.seconds, cpu_seconds=m.cpu,
         check=rows_check(rows))


def write(a):
    """many or copyin: a.rows rows into a fresh table, one connection, one
    transaction."""
    conn = psycopg.connect(a.dsn, autocommit=True)
    table = write_table()
    conn.execute(write_create_sql(table))
    insert = write_insert_sql(table, "%s")

    def run(rows):
        with conn.transaction(), conn.cursor() as cur:
            if a.mode == "many":
                cur.executemany(insert, rows)
            else:
                with cur.copy(f"COPY {table} (id, t, f) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)

    run(write_rows(1000, a.rows + 1))  # warm-up, then emptied
    conn.execute(f"TRUNCATE {table}")
    rows = write_rows(a.rows)
    with Meter() as m:
        run(rows)
    check = write_check(conn.execute(write_check_sql(table)).fetchone())
    conn.execute(f"DROP TABLE {table}")
    conn.close()
    emit(ops=a.rows, rows=a.rows, seconds=m.seconds, cpu_seconds=m.cpu, check=check)


def main():
    a = parser(["pingpong", "pk", "bulk", "many", "copyin"]).parse_args()
    if a.mode == "pk":
        asyncio.run(pk(a))
    else:
        {"pingpong": pingpong, "bulk": bulk, "many": write, "copyin": write}[a.mode](a)


if __name__ == "__main__":
    main()
