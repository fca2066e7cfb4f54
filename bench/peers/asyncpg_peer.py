"""asyncpg peer: pingpong (one connection, prepared), pk (pool, N tasks), bulk (fetch)."""
import asyncio
import time

import asyncpg

from _common import (PINGPONG_CHECK, PINGPONG_SQL_PG, PK_CHECK_AIDS, PK_SQL_PG, Meter,
                     bulk_sql, emit, latency_summary, parser, rng, rows_check)


async def pingpong(a):
    conn = await asyncpg.connect(a.dsn)
    stmt = await conn.prepare(PINGPONG_SQL_PG)
    r = rng()
    end = time.perf_counter() + a.warmup
    while time.perf_counter() < end:
        await stmt.fetchval(r.randint(1, 1000000))
    lat, bad, ops = [], 0, 0
    pc = time.perf_counter_ns
    with Meter() as m:
        end = time.perf_counter() + a.seconds
        while time.perf_counter() < end:
            x = r.randint(1, 1000000)
            t0 = pc()
            v = await stmt.fetchval(x)
            lat.append(pc() - t0)
            bad += v != x
            ops += 1
    check = [await stmt.fetchval(x) for x in PINGPONG_CHECK]
    await conn.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat),
         errors=bad, check=check)


async def pk(a):
    pool = await asyncpg.create_pool(a.dsn, min_size=a.conns, max_size=a.conns)
    r = rng()
    state = {"stop": False, "ops": 0}
    lat = []
    pc = time.perf_counter_ns

    async def worker(record):
        while not state["stop"]:
            aid = r.randint(1, a.max_aid)
            t0 = pc()
            await pool.fetchval(PK_SQL_PG, aid)
            if record:
                lat.append(pc() - t0)
                state["ops"] += 1

    async def phase(seconds, record):
        state["stop"] = False
        tasks = [asyncio.create_task(worker(record)) for _ in range(a.inflight)]
        await asyncio.sleep(seconds)
        state["stop"] = True
        await asyncio.gather(*tasks)

    await phase(a.warmup, False)
    with Meter() as m:
        await phase(a.seconds, True)
    check = [await pool.fetchval(PK_SQL_PG, aid) for aid in PK_CHECK_AIDS]
    await pool.close()
    emit(ops=state["ops"], seconds=m.seconds, cpu_seconds=m.cpu,
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
