"""asyncpg peer: pingpong (one connection, prepared), pk (pool, N tasks), bulk (fetch),
many (executemany of an INSERT), copyin (copy_records_to_table)."""
import asyncio

import asyncpg

from _common import (PINGPONG_CHECK, PINGPONG_SQL_PG, PK_CHECK_AIDS, PK_SQL_PG, WRITE_COLUMNS, Meter,
                     apingpong, bulk_sql, emit, inflight, latency_summary, parser, rows_check,
                     write_check, write_check_sql, write_create_sql, write_insert_sql, write_rows,
                     write_table)


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


async def write(a):
    """many or copyin: a.rows rows into a fresh table, one connection."""
    conn = await asyncpg.connect(a.dsn)
    table = write_table()
    await conn.execute(write_create_sql(table))
    rows = write_rows(a.rows)
    if a.mode == "many":  # warm-up: the statement prepared, then emptied
        await conn.executemany(write_insert_sql(table), write_rows(1000, a.rows + 1))
    else:
        await conn.copy_records_to_table(table, records=write_rows(1000, a.rows + 1),
                                         columns=WRITE_COLUMNS)
    await conn.execute(f"TRUNCATE {table}")
    with Meter() as m:
        if a.mode == "many":
            await conn.executemany(write_insert_sql(table), rows)
        else:
            await conn.copy_records_to_table(table, records=rows, columns=WRITE_COLUMNS)
    check = write_check(await conn.fetchrow(write_check_sql(table)))
    await conn.execute(f"DROP TABLE {table}")
    await conn.close()
    emit(ops=a.rows, rows=a.rows, seconds=m.seconds, cpu_seconds=m.cpu, check=check)


def main():
    a = parser(["pingpong", "pk", "bulk", "many", "copyin"]).parse_args()
    asyncio.run({"pingpong": pingpong, "pk": pk, "bulk": bulk, "many": write,
                 "copyin": write}[a.mode](a))


if __name__ == "__main__":
    main()
