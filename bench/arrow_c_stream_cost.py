"""What handing an arrow_ipc result to pyarrow costs, by way: the C reader's
capsule (`pa.table(result)`, python/ext/rows/arrow_capsule.c), the way
before it (pyarrow's IPC reader, then that Table's capsule), and
`to_arrow()` (pyarrow's IPC reader alone). Instructions are the measure
(callgrind repeats them under load): the payload is saved once, then each
way runs N times under callgrind and 0 times, and the difference is
divided by N.

    bash scripts/with_pg.sh .venv/bin/python bench/arrow_c_stream_cost.py --save /tmp/r.arrows --rows 100000
    for way in capsule before to_arrow; do for n in 0 1000; do
        PYTHONHASHSEED=0 PYTHONPATH=python valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            .venv/bin/python bench/arrow_c_stream_cost.py --read /tmp/r.arrows --way $way -n $n 2>&1 | grep refs
    done; done

The result: g int8, md5(g) text, g * 0.5 (numeric as Utf8), a timestamptz,
in 65536-row batches. Without valgrind, --read also prints the wall time
per conversion (indicative only on a loaded machine).
"""
import argparse
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "python"))

from molt_db_adapter import MoltClient  # noqa: E402
from molt_db_adapter.results import QueryResult, arrow_table_from_ipc  # noqa: E402

SQL = ("SELECT g, md5(g::text) AS h, g * 0.5 AS f, now() + g * interval '1 s' AS ts "
       "FROM generate_series(1, {rows}) g")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--save")
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--read")
    ap.add_argument("--way", choices=("capsule", "before", "to_arrow"), default="capsule")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--worker", default=os.path.join(ROOT, "build", "molt_worker"))
    a = ap.parse_args()
    if a.save:
        cmd = [a.worker, "--stdio", "--db", f"default={os.environ['MOLT_TEST_DSN']}",
               "--pool", "default:allow_privileged_role=true"]
        with MoltClient(cmd) as c:
            raw = c.query(SQL.format(rows=a.rows), result_format="arrow_ipc").raw
        with open(a.save, "wb") as f:
            f.write(raw)
        return
    import pyarrow as pa

    with open(a.read, "rb") as f:
        raw = f.read()
    way = {
        "capsule": lambda: pa.table(QueryResult("arrow_ipc", raw, {}, 1)),
        "before": lambda: pa.table(arrow_table_from_ipc(raw)),
        "to_arrow": lambda: arrow_table_from_ipc(raw),
    }[a.way]
    way()  # the first call's imports and caches are in both runs
    t0 = time.perf_counter()
    for _ in range(a.n):
        way()
    if a.n:
        print(f"{a.way}: {(time.perf_counter() - t0) / a.n * 1e6:.1f} us per conversion (wall)")


if __name__ == "__main__":
    main()
