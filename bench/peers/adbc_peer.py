"""ADBC PostgreSQL driver peer: bulk read into a pyarrow.Table (uses COPY BINARY)."""
import pyarrow as pa
import pyarrow.compute as pc
import adbc_driver_postgresql.dbapi as adbc

from _common import TS_BASE_US, Meter, bulk_sql, emit, parser


def arrow_check(tbl):
    ts = tbl.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return {"rows": tbl.num_rows,
            "sum_id": pc.sum(tbl.column("id")).as_py(),
            "sum_len_t": pc.sum(pc.utf8_length(tbl.column("t"))).as_py(),
            "sum_f": pc.sum(tbl.column("f")).as_py(),
            "sum_ts_us": pc.sum(pc.subtract_checked(ts, TS_BASE_US)).as_py(),
            "n_true": pc.sum(tbl.column("b").cast(pa.int64())).as_py(),
            "sum_i": pc.sum(tbl.column("i").cast(pa.int64())).as_py()}


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
