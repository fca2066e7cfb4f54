"""ADBC PostgreSQL driver peer: bulk read into a pyarrow.Table (uses COPY BINARY)."""
import adbc_driver_postgresql.dbapi as adbc

from _common import Meter, arrow_check, bulk_sql, emit, parser


def bulk(a):
    conn = adbc.connect(a.dsn)
    sql = bulk_sql(a.limit)
    with conn.cursor() as cur:
        cur.execute(bulk_sql(min(a.limit or 1000, 1000)))
        cur.fetch_arrow_table()
    with Meter() as m:
        with conn.cursor() as cur:
            cur.execute(sql)
            tbl = cur.fetch_arrow_table()
    conn.close()
    emit(ops=tbl.num_rows, rows=tbl.num_rows, seconds=m.seconds, cpu_seconds=m.cpu,
         check=arrow_check(tbl))


def main():
    a = parser(["bulk"]).parse_args()
    bulk(a)


if __name__ == "__main__":
    main()
