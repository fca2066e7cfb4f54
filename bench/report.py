#!/usr/bin/env python3
"""Regenerate bench/README.md and bench/results/<scenario>.png from latest.json."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")

METHOD = """\
## Method

- **One run, everyone.** Each scenario runs every contender in the same run
  against the same throwaway PostgreSQL 15 (started by `scripts/with_pg.sh`,
  tuned identically for all through `MOLT_PG_CONF`, settings listed below).
  Each contender gets one warm-up run, then the repetitions alternate the
  contenders (A B C, B C A, C A B, ...). Figures are medians over the
  repetitions (p99 is the median of the per-repetition p99s; peak RSS the
  maximum).
- **Pinning.** {pinning}.
- **Measured by the runner, not by the contender.** Every contender is a
  child process; the runner reaps it with `os.wait4` and takes its CPU
  (user+sys) and peak RSS (`ru_maxrss`) from that. *CPU/op* divides the CPU of
  the measured part by the operations: contenders that report `cpu_seconds`
  (the Python peers: `time.process_time()` around the measured loop, so
  interpreter start-up and imports are excluded) use that, the others the
  whole-process figure (pgbench, psql, where start-up is negligible); the
  whole-process figure is in latest.json too (`cpu_process_us_per_op`).
- **molt_worker's CPU.** In the scenarios where Python talks to molt_worker
  (bench/peers/molt_peer.py), the worker is the contender's child process,
  pinned with it to the client CPU. *CPU/op* is then the Python client's
  own CPU, and *worker CPU/op* the worker's user+sys CPU over the same
  measured part (`/proc/PID/stat`, 10 ms ticks); the wait4 figure
  (`cpu_process_us_per_op`) holds both, start-up included.
- **Same work.** Same SQL text, prepared where the client can prepare,
  binary results where the client can choose; rows are decoded into
  comparable objects (Arrow table, Python tuples/Records, C structs). After
  measuring, each contender reports a sample (the echoed values; three
  `abalance` values; row count and order-independent sums of every column of
  the bulk read) and the runner compares it with what psql computes; a
  mismatch makes the contender *failed*. Failed, unbuilt and unimplemented
  contenders stay in the tables with the reason.
- **Ratio** is throughput divided by the best *peer*'s throughput in the same
  scenario (the psql floor and molt are not peers).
- **Contract** for contenders (how molt plugs in): see
  [contenders.md](contenders.md). molt's contenders are the binary
  `build/bench/molt_bench` (sources in bench/c/) and, from Python,
  `bench/peers/molt_peer.py` driving `build/molt_worker` through
  `molt_db_adapter`; until they are built, their rows say "not built".
"""


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def unit_plural(u):
    return "queries" if u == "query" else u + "s"


def plot(key, sc, command, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(sc["contenders"])
    cs = [sc["contenders"][n] for n in names]
    tp = [c.get("throughput") or 0 for c in cs]
    cpu = [c.get("cpu_us_per_op") or 0 for c in cs]
    colors = {"peer": "#4C72B0", "floor": "#8C8C8C", "molt": "#DD8452"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.55 * len(names) + 1.8), sharey=True)
    y = list(range(len(names)))[::-1]
    for ax, vals, label in ((axes[0], tp, f"{unit_plural(sc['unit'])}/s (median)"),
                            (axes[1], cpu, f"client CPU µs per {sc['unit']} (median)")):
        ax.barh(y, vals, color=[colors.get(c.get("role"), "#999") for c in cs])
        ax.set_xlabel(label)
        for yi, v, c in zip(y, vals, cs):
            if c.get("status") != "ok" or not v:
                ax.text(0, yi, "  " + c.get("status", "?"), va="center", fontsize=8, color="#B00")
            else:
                ax.text(v, yi, f" {v:,.0f}" if v >= 100 else f" {v:.3g}", va="center", fontsize=8)
        ax.margins(x=0.25)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names, fontsize=8)
    fig.suptitle(sc["title"], fontsize=10)
    fig.text(0.01, 0.01, f"command: {command}", fontsize=7, color="#555")
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def ab_table(path):
    """Markdown of an A/B run (bench/run.sh --baseline): each molt contender
    beside the same contender built from the baseline commit."""
    with open(path) as f:
        d = json.load(f)
    m = d["machine"]
    out = [f"A/B run: `{m['command']}` on {m['date']} (git {m.get('git_commit')}), "
           f"{m['reps']} repetitions of {m['seconds_per_run']:g} s, alternating.", "",
           "| scenario | contender | this build | baseline | ratio | CPU µs/op this / baseline |",
           "|---|---|---|---|---|---|"]
    for key, sc in d["scenarios"].items():
        cs = sc["contenders"]
        for name, c in cs.items():
            base = next((b for n, b in cs.items() if n.startswith(name + " [baseline ")), None)
            if c.get("role") != "molt" or base is None:
                continue
            a, b = c.get("throughput"), base.get("throughput")
            out.append(f"| {key} | {name} | {fmt(a, ',.0f')} | {fmt(b, ',.0f')} | "
                       f"{fmt(a / b if a and b else None, '.3f')} | "
                       f"{fmt(c.get('cpu_us_per_op'), '.3g')} / {fmt(base.get('cpu_us_per_op'), '.3g')} |")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--ab":
        sys.stdout.write(ab_table(sys.argv[2]))
        return
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(RESULTS, "latest.json")
    with open(src) as f:
        d = json.load(f)
    m = d["machine"]
    cmd = m["command"]
    out = ["# molt-db benchmarks", "",
           "Generated by `bench/report.py` from `bench/results/latest.json`; do not edit by hand.",
           f"Produced by: `{cmd}` on {m['date']} (git {m.get('git_commit')}), "
           f"{'QUICK: ' if m.get('quick') else ''}{m['reps']} repetitions of {m['seconds_per_run']:g} s "
           f"after a {m['warmup_seconds']:g} s warm-up, {m.get('total_seconds')} s in all.", ""]
    for r in m.get("reruns", []):
        out += [f"Re-run since: {', '.join(r['scenarios'])} by `{r['command']}` on {r['date']} "
                f"(git {r.get('git_commit')}), {r.get('total_seconds')} s.", ""]
    out += [
           "## Machine", "",
           f"- CPU: {m['cpu_model']}, {m['cores']} cores; memory {m['memory_gb']} GB; kernel {m['kernel']}",
           f"- {m['postgres']}", f"- {m.get('pgbench')}; Python {m['python']}",
           "- peers: " + ", ".join(f"{k} {v}" for k, v in m["peer_versions"].items() if v),
           "- server settings: " + ", ".join(f"{k}={v}" for k, v in m["pg_settings"].items()),
           f"- pinning: {m['pinning']}",
           "- high-latency link: " + (f"{m['netem'].get('setup')}" if m["netem"].get("ok")
                                      else f"**unavailable here**: {m['netem'].get('error')}"),
           "", METHOD.format(pinning=m["pinning"][0].upper() + m["pinning"][1:]), "## Results", ""]
    for key, sc in d["scenarios"].items():
        u = sc["unit"]
        out += [f"### {key}: {sc['title']}", ""]
        if sc.get("status") == "skipped":
            out += [f"Skipped: {sc['reason']}.", ""]
        if sc.get("pinning"):
            out += [f"Pinning in this scenario: {sc['pinning']}.", ""]
        png = f"{key}.png"
        has_data = any(c.get("throughput") for c in sc["contenders"].values())
        if has_data:
            plot(key, sc, cmd, os.path.join(RESULTS, png))
        lat = sc.get("latency")
        wcol = any(c.get("worker_cpu_us_per_op") is not None for c in sc["contenders"].values())
        hdr = ["contender", "status", f"{unit_plural(u)}/s"] + (["p50 µs", "p99 µs"] if lat else []) + \
              [f"CPU µs/{u}"] + ([f"worker CPU µs/{u}"] if wcol else []) + \
              ["peak RSS MB", "ratio to best peer", "check"]
        out += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        notes = []
        for name, c in sc["contenders"].items():
            st = c.get("status", "?")
            if st != "ok" and c.get("reason") and c["reason"] != st and st != "skipped":
                notes.append(f"- {name}: {st}: {c['reason']}")
            if c.get("note"):
                notes.append(f"- {name}: {c['note']}")
            cpu = c.get("cpu_us_per_op")
            row = [name + (f" ({c['role']})" if c.get("role") != "peer" else ""), st,
                   fmt(c.get("throughput"), ",.0f")]
            if lat:
                row += [fmt(c.get("p50_us"), ",.0f"), fmt(c.get("p99_us"), ",.0f")]
            row += [fmt(cpu, ".3g")] + ([fmt(c.get("worker_cpu_us_per_op"), ".3g")] if wcol else [])
            row += [fmt(c.get("peak_rss_mb"), ".0f"),
                    fmt(c.get("ratio_to_best_peer"), ".2f"),
                    (c.get("check") or "").split(":")[0]]
            out.append("| " + " | ".join(r.replace("|", "\\|") for r in row) + " |")
        out.append("")
        if notes:
            out += notes + [""]
        cmds = [(n, c["cmd"]) for n, c in sc["contenders"].items() if c.get("cmd")]
        if cmds:
            out += ["<details><summary>exact contender commands (last repetition)</summary>", ""]
            out += [f"- {n}: `{c}`" for n, c in cmds]
            out += ["", "</details>", ""]
        if has_data:
            out += [f"![{key}](results/{png})", "", f"Figure produced by: `{cmd}`", ""]
    with open(os.path.join(ROOT, "bench", "README.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
