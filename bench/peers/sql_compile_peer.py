"""Query-builder compile time: molt_sql against SQLAlchemy Core, the same
query (a CTE, three joins, a window function, on the pgbench tables).

    sql_compile_peer.py {molt_sql,sqlalchemy} --dsn DSN --seconds S [--prebuilt]

Each operation builds the query and compiles it for PostgreSQL (text and
parameters), as an application does per request; with --prebuilt the query
is built once and only compiled. No database work is measured. After
measuring, the compiled query runs once through psycopg and its rows are
summed for the runner's check (SQL_COMPILE_CHECK in bench/runner.py computes
the same sums from the hand-written query).
"""
import os
import sys
import time

import psycopg

from _common import Meter, emit, parser

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

# the values the query carries (parameters in both builders)
TOP_AID, AID, TID, LIMIT = 50000, 1000, 10, 100


def molt_sql_query():
    from molt_sql import row_number, sum_, table

    acc, br, tel = table("pgbench_accounts"), table("pgbench_branches"), table("pgbench_tellers")
    a, b, t = acc.alias("a"), br.alias("b"), tel.alias("t")
    top = acc.where(acc.aid <= TOP_AID).group_by(acc.bid) \
        .select(acc.bid, sum_(acc.abalance).as_("total")).cte("top")
    rn = row_number().over(partition_by=[b.bid], order_by=[a.abalance.desc(), a.aid, t.tid]).as_("rn")
    q = (a.join(b, on=b.bid == a.bid).join(t, on=t.bid == b.bid).join(top, on=top.bid == b.bid)
         .where(a.aid <= AID, t.tid <= TID)
         .select(a.aid, b.bid, t.tid, top.total, rn)
         .order_by(rn, a.aid, t.tid).limit(LIMIT))
    return q


def molt_sql_compile(q):
    return q.compile("postgres")


def molt_sql_for_psycopg(q):
    return q.compile("postgres", paramstyle="format")


_SA = {}


def sqlalchemy_tables():
    if not _SA:
        from sqlalchemy import Column, Integer, MetaData, Table
        from sqlalchemy.dialects import postgresql

        md = MetaData()
        _SA["acc"] = Table("pgbench_accounts", md, Column("aid", Integer, primary_key=True),
                           Column("bid", Integer), Column("abalance", Integer))
        _SA["br"] = Table("pgbench_branches", md, Column("bid", Integer, primary_key=True),
                          Column("bbalance", Integer))
        _SA["tel"] = Table("pgbench_tellers", md, Column("tid", Integer, primary_key=True),
                           Column("bid", Integer), Column("tbalance", Integer))
        _SA["dialect"] = postgresql.psycopg.dialect()
    return _SA


def sqlalchemy_query():
    from sqlalchemy import func, select

    s = sqlalchemy_tables()
    a, b, t = s["acc"].alias("a"), s["br"].alias("b"), s["tel"].alias("t")
    acc = s["acc"]
    top = select(acc.c.bid, func.sum(acc.c.abalance).label("total")).where(acc.c.aid <= TOP_AID) \
        .group_by(acc.c.bid).cte("top")
    rn = func.row_number().over(partition_by=b.c.bid, order_by=[a.c.abalance.desc(), a.c.aid, t.c.tid]).label("rn")
    q = (select(a.c.aid, b.c.bid, t.c.tid, top.c.total, rn)
         .select_from(a.join(b, b.c.bid == a.c.bid).join(t, t.c.bid == b.c.bid).join(top, top.c.bid == b.c.bid))
         .where(a.c.aid <= AID, t.c.tid <= TID)
         .order_by(rn, a.c.aid, t.c.tid).limit(LIMIT))
    return q


def sqlalchemy_compile(q):
    compiled = q.compile(dialect=_SA["dialect"])
    return str(compiled), compiled.params


MODES = {
    "molt_sql": (molt_sql_query, molt_sql_compile, molt_sql_for_psycopg),
    "sqlalchemy": (sqlalchemy_query, sqlalchemy_compile, sqlalchemy_compile),
}


def check(dsn, sql, params):
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(sql, params).fetchall()
    return [len(rows), sum(r[0] for r in rows), sum(r[2] for r in rows), sum(int(r[3]) for r in rows),
            sum(r[4] for r in rows)]


def main():
    p = parser(list(MODES))
    p.add_argument("--prebuilt", action="store_true", help="build the query once; time the compile only")
    a = p.parse_args()
    build, compile_, for_psycopg = MODES[a.mode]
    if a.mode == "sqlalchemy":
        sqlalchemy_tables()  # table metadata is set up once, as in an application
    prebuilt = build()

    def op():
        return compile_(prebuilt if a.prebuilt else build())

    end = time.perf_counter() + a.warmup
    while time.perf_counter() < end:
        op()
    ops = 0
    meter = Meter()
    with meter:
        end = time.perf_counter() + a.seconds
        while time.perf_counter() < end:
            for _ in range(50):
                op()
            ops += 50
    emit(ops=ops, seconds=meter.seconds, cpu_seconds=meter.cpu,
         check=check(a.dsn, *for_psycopg(prebuilt)))


if __name__ == "__main__":
    main()
