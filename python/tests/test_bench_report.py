"""bench/report.py draws readable pictures from a results file: short unique
labels, tick labels that do not run together, whiskers from the
repetitions, client and worker CPU stacked (checked on a small fixture)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

REPORT = pathlib.Path(__file__).resolve().parents[2] / "bench" / "report.py"
spec = importlib.util.spec_from_file_location("bench_report", REPORT)
assert spec and spec.loader
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)

LONG = "AsyncMoltClient(socket_path) 64 tasks -> molt_worker --socket, pool 16 conns"


def run(tp: float, cpu_s: float, worker_s: float | None = None) -> dict[str, object]:
    r: dict[str, object] = {"cmd": "x", "status": "ok", "ops": 1000, "seconds": 1.0, "throughput": tp,
                            "cpu_measured_s": cpu_s, "cpu_process_s": cpu_s + 0.1}
    if worker_s is not None:
        r["worker_cpu_s"] = worker_s
    return r


def contender(role: str, cmd: str, runs: list[dict[str, object]], worker: float | None = None) -> dict[str, object]:
    tps = sorted(float(r["throughput"]) for r in runs)  # type: ignore[arg-type]
    c = {"role": role, "status": "ok", "cmd": cmd, "throughput": tps[len(tps) // 2], "runs": runs,
         "cpu_us_per_op": 40.0, "peak_rss_mb": 30.0, "ratio_to_best_peer": 1.0, "check": "ok"}
    if worker is not None:
        c["worker_cpu_us_per_op"] = worker
    return c


FIXTURE = {
    "machine": {"command": "bench/run.sh", "date": "2026-12-06", "git_commit": "abc", "reps": 3,
                "seconds_per_run": 1, "warmup_seconds": 1, "total_seconds": 9, "cpu_model": "cpu",
                "cores": 2, "memory_gb": 4, "kernel": "6", "postgres": "PostgreSQL 15", "pgbench": "pgbench",
                "python": "3.11", "peer_versions": {"asyncpg": "0.32"}, "pg_settings": {"fsync": "off"},
                "pinning": "client on CPU 1", "netem": {"ok": False, "error": "no tc"}},
    "scenarios": {
        "ipc": {"title": "IPC", "unit": "query", "latency": False, "contenders": {
            "asyncpg pool 16 conns, 64 tasks": contender(
                "peer", "python asyncpg_peer.py", [run(7000, 1.0), run(6000, 0.9), run(8000, 1.1)]),
            LONG: contender("molt", "python molt_peer.py --worker molt_worker",
                            [run(12000, 0.05, 0.03), run(11000, 0.05, 0.04), run(18000, 0.04, 0.03)],
                            worker=33.0),
            "molt_db_adapter -> molt_worker --stdio, arrow_ipc -> pyarrow.Table": contender(
                "molt", "python molt_peer.py arrow", [run(1_400_000, 0.5)]),
            "molt_db_adapter -> molt_worker --stdio, msgpack -> tuples": contender(
                "molt", "python molt_peer.py msgpack", [run(1_200_000, 0.5)]),
        }},
        "skipped": {"title": "netem", "unit": "query", "status": "skipped", "reason": "no tc", "contenders": {
            "pgbench": {"role": "peer", "status": "skipped"}}},
    },
}


def test_report_draws_every_scenario_with_data(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "latest.json"
    src.write_text(json.dumps(FIXTURE))
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(REPORT), str(src), "--out", str(out)], check=True, timeout=120)
    png = out / "results" / "ipc.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "results" / "skipped.png").exists()
    readme = (out / "README.md").read_text()
    # the full name and the command stay in the README, beside the short label
    assert LONG in readme and "`python molt_peer.py --worker molt_worker`" in readme
    assert "picture: *AsyncMoltClient 64 tasks -> molt_worker --socket, pool 16 conns*" in readme


def test_short_labels_are_short_and_unique() -> None:
    names = list(FIXTURE["scenarios"]["ipc"]["contenders"])  # type: ignore[index]
    labels = report.picture_labels(names)
    assert len(set(labels)) == len(labels)
    assert all(len(line) <= 26 for lb in labels for line in lb.split("\n"))
    assert report.short_label("asyncpg (1 conn, prepared)") == "asyncpg"


def test_ticks_do_not_run_together() -> None:
    assert [report.human(v) for v in (950, 12000, 1_400_000)] == ["950", "12k", "1.4M"]


def test_whiskers_and_worker_cpu_come_from_the_repetitions() -> None:
    c = FIXTURE["scenarios"]["ipc"]["contenders"][LONG]  # type: ignore[index]
    assert report.per_rep(c, "throughput") == [12000, 11000, 18000]
    assert report.per_rep(c, "worker_cpu") == pytest.approx([30.0, 40.0, 30.0])
    assert report.spread([12000], [[12000, 11000, 18000]]) == [[1000], [6000]]
