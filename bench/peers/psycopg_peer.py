"""psycopg 3 peer (binary protocol, server-side prepared statements, autocommit).

pingpong: one sync connection (the fastest psycopg shape for one connection).
pk:       psycopg_pool.AsyncConnectionPool of --conns, --inflight asyncio tasks.
bulk:     one connection, binary cursor, fetchall() into Python tuples.
"""
import asyncio

import psycopg
from psycopg.types.numeric import Int8
from psycopg_pool import AsyncConnectionPool

from _common import (PINGPONG_CHECK, PK_CHECK_AIDS, Meter, bulk_sql, emit, inflight,
                     latency_summary, parser, rows_check)
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


def main():
    a = parser(["pingpong", "pk", "bulk"]).parse_args()
    if a.mode == "pk":
        asyncio.run(pk(a))
    else:
        {"pingpong": pingpong, "bulk": bulk}[a.mode](a)


if __name__ == "__main__":
    main()
