"""asyncpg peer: pingpong (one connection, prepared), pk (pool, N tasks), bulk (fetch)."""
import asyncio

import asyncpg

from _common import (PINGPONG_CHECK, PINGPONG_SQL_PG, PK_CHECK_AIDS, PK_SQL_PG, Meter, apingpong,
                     bulk_sql, emit, inflight, latency_summary, parser, rows_check)


async def pingpong(a):
    conn = await asyncpg.connect(a.dsn)
    stmt = await conn.prepare(PINGPONG_SQL_PG)
    m = Meter()
    ops, lat, bad = await apingpong(a, stmt.fetchval, m)
    check = [await stmt.fetchval(x) for x in PINGPONG_CHECK]
    await conn.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat),
         errors=bad, check=check)


async def pk(a):
    pool = await asyncpg.create_pool(a.dsn, min_size=a.conns, max_size=a.conns)
    m = Meter()
    ops, lat = await inflight(a, lambda aid: pool.fetchval(PK_SQL_PG, aid), m)
    check = [await pool.fetchval(PK_SQL_PG, aid) for aid in PK_CHECK_AIDS]
    await pool.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu,
         latencies_us=latency_summary(lat), check=check)


async def bulk(a):
    conn = await asyncpg.connect(a.dsn)
    sql = bulk_sql(a.limit)
    await conn.fetch(sql + " LIMIT 1000" if not a.limit else bulk_sql(min(a.limit, 1000)))
    with Meter() as m:
        rows = await conn.fetch(sql)
    await conn.close()
    emit(ops=len(rows), rows=len(rows), seconds=m.seconds, cpu_seconds=m.cpu,
         check=rows_check(rows))


def main():
    a = parser(["pingpong", "pk", "bulk"]).parse_args()
    asyncio.run({"pingpong": pingpong, "pk": pk, "bulk": bulk}[a.mode](a))


if __name__ == "__main__":
    main()
