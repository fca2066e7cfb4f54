"""psqlpy peer (Rust, asyncio): pingpong (one connection, prepared) and pk
(a pool of --conns connections, --inflight tasks)."""
import asyncio
import os
import sys

from psqlpy import ConnectionPool

from _common import (PINGPONG_CHECK, PINGPONG_SQL_PG, PK_CHECK_AIDS, PK_SQL_PG, Meter, apingpong, emit,
                     inflight, latency_summary, parser)


async def pingpong(a):
    pool = ConnectionPool(dsn=a.dsn, max_db_pool_size=2)  # its smallest
    async with pool.acquire() as conn:  # one connection throughout
        async def q(x):
            return await conn.fetch_val(PINGPONG_SQL_PG, [x], prepared=True)

        m = Meter()
        ops, lat, bad = await apingpong(a, q, m)
        check = [await q(x) for x in PINGPONG_CHECK]
    pool.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat),
         errors=bad, check=check)


async def pk(a):
    pool = ConnectionPool(dsn=a.dsn, max_db_pool_size=a.conns)

    async def one(aid):
        async with pool.acquire() as conn:
            return await conn.fetch_val(PK_SQL_PG, [aid], prepared=True)

    m = Meter()
    ops, lat = await inflight(a, one, m)
    check = [await one(aid) for aid in PK_CHECK_AIDS]
    pool.close()
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat), check=check)


def main():
    a = parser(["pingpong", "pk"]).parse_args()
    asyncio.run(pingpong(a) if a.mode == "pingpong" else pk(a))
    # psqlpy's runtime threads may still hold Python thread states when the
    # interpreter finalizes (Fatal Python error: PyGILState_Release, exit
    # -6, in most runs): the result is out, so leave without finalizing
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
