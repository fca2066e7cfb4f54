"""ConnectorX peer: bulk read into a pyarrow.Table (Rust, binary COPY,
one partition: the same single query as the other contenders)."""
import connectorx as cx

from _common import Meter, arrow_check, bulk_sql, emit, parser


def bulk(a):
    uri = a.dsn if "://" in a.dsn else None
    if uri is None:
        raise SystemExit("connectorx takes a postgresql:// URI, not a key=value DSN")
    cx.read_sql(uri, bulk_sql(min(a.limit or 1000, 1000)), return_type="arrow")
    with Meter() as m:
        tbl = cx.read_sql(uri, bulk_sql(a.limit), return_type="arrow")
    emit(ops=tbl.num_rows, rows=tbl.num_rows, seconds=m.seconds, cpu_seconds=m.cpu,
         check=arrow_check(tbl))


def main():
    a = parser(["bulk"]).parse_args()
    bulk(a)


if __name__ == "__main__":
    main()
