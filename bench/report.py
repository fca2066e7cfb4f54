#!/usr/bin/env python3
"""Regenerate bench/README.md and bench/results/<scenario>.png from latest.json.

    bench/report.py [RESULTS_JSON] [--out DIR]    (DIR default bench/: DIR/README.md, DIR/results/*.png)
    bench/report.py --ab RESULTS_JSON             (an A/B table on stdout)

A re-run's words (load average, figures of several runs) go into its entry
of machine.reruns in latest.json as "note", so they survive regeneration.
"""
import json
import os
import re
import sys
import textwrap

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


def short_label(name):
    """A contender's name for a picture: without its parenthesised details
    and, after an arrow, only the last target ("A -> B, c -> D" gives "A -> D");
    the full name and command are in the README's table."""
    s = re.sub(r"\s*\([^)]*\)", "", name).strip()
    parts = s.split(" -> ")
    if len(parts) > 1:
        s = f"{parts[0]} -> {parts[-1]}"
    return s


def picture_labels(names):
    """short_label of each name, made unique (a clash keeps the full names)
    and wrapped to lines of at most 26 characters."""
    short = [short_label(n) for n in names]
    labels = [n if short.count(sh) > 1 else sh for n, sh in zip(names, short)]
    return ["\n".join(textwrap.wrap(lb, 26)) for lb in labels]


def per_rep(c, unit_key):
    """Per-repetition figures of a contender (the runs that went ok):
    'throughput', 'client_cpu' or 'worker_cpu' (µs per operation)."""
    out = []
    for r in c.get("runs") or []:
        if r.get("status") != "ok" or not r.get("ops"):
            continue
        if unit_key == "throughput":
            v = r.get("throughput")
        elif unit_key == "client_cpu":
            cpu = r.get("cpu_measured_s", r.get("cpu_process_s"))
            v = None if cpu is None else cpu / r["ops"] * 1e6
        else:
            v = None if r.get("worker_cpu_s") is None else r["worker_cpu_s"] / r["ops"] * 1e6
        if v is not None:
            out.append(v)
    return out


def human(v, _pos=None):
    """Tick and bar labels: 950, 12k, 1.5M (no digits running together)."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def spread(medians, reps):
    """xerr for matplotlib: how far the repetitions' min and max lie from
    the median (0 where a contender has no repetitions)."""
    lo = [m - min(r) if r and m else 0 for m, r in zip(medians, reps)]
    hi = [max(r) - m if r and m else 0 for m, r in zip(medians, reps)]
    return [[max(v, 0) for v in lo], [max(v, 0) for v in hi]]


def plot(key, sc, command, path):
    """Two panels per scenario: throughput with the repetitions' min-max as
    whiskers and the best peer marked, and CPU per operation with the
    client's and molt_worker's CPU stacked (whiskers: min-max of the sum)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    names = list(sc["contenders"])
    cs = [sc["contenders"][n] for n in names]
    ok = [c.get("status") == "ok" for c in cs]
    tp = [c.get("throughput") or 0 for c in cs]
    client = [c.get("cpu_us_per_op") or 0 for c in cs]
    worker = [c.get("worker_cpu_us_per_op") or 0 for c in cs]
    tp_reps = [per_rep(c, "throughput") for c in cs]
    cpu_reps = []
    for c in cs:
        cl, wk = per_rep(c, "client_cpu"), per_rep(c, "worker_cpu")
        cpu_reps.append([a + b for a, b in zip(cl, wk)] if wk else cl)
    colors = {"peer": "#4C72B0", "floor": "#8C8C8C", "molt": "#DD8452"}
    bar_colors = [colors.get(c.get("role"), "#999") for c in cs]
    peers = [i for i, c in enumerate(cs) if c.get("role") == "peer" and ok[i] and tp[i]]
    best = max(peers, key=lambda i: tp[i]) if peers else None

    labels = picture_labels(names)
    lines = max(lb.count("\n") + 1 for lb in labels)
    fig, axes = plt.subplots(1, 2, figsize=(12, (0.32 + 0.18 * lines) * len(names) + 2.2), sharey=True)
    y = list(range(len(names)))[::-1]
    err_style = dict(ecolor="#222", capsize=3, elinewidth=1)

    ax = axes[0]
    ax.barh(y, tp, color=bar_colors)
    ax.errorbar(tp, y, xerr=spread(tp, tp_reps), fmt="none", **err_style)
    ax.set_xlabel(f"{unit_plural(sc['unit'])}/s (median; whiskers: min-max of the repetitions)")
    if best is not None:
        ax.axvline(tp[best], color=colors["peer"], linestyle="--", linewidth=1)
        ax.text(tp[best], 1.01, "best peer", color=colors["peer"], fontsize=8, ha="center",
                va="bottom", transform=ax.get_xaxis_transform())

    ax = axes[1]
    ax.barh(y, client, color=bar_colors)
    total = [a + b for a, b in zip(client, worker)]
    with_worker = [i for i, w in enumerate(worker) if w]
    if with_worker:
        pick = lambda vals: [vals[i] for i in with_worker]  # noqa: E731
        ax.barh(pick(y), pick(worker), left=pick(client), color="#F2C29B", hatch="//",
                edgecolor=colors["molt"], linewidth=0)
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(facecolor="#BBB", label="client CPU"),
                           Patch(facecolor="#F2C29B", hatch="//", edgecolor=colors["molt"],
                                 label="molt_worker CPU")], fontsize=8, ncol=2, frameon=False,
                  loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.errorbar(total, y, xerr=spread(total, cpu_reps), fmt="none", **err_style)
    ax.set_xlabel(f"CPU µs per {sc['unit']} (median" + ("; client + molt_worker" if with_worker else "")
                  + "; whiskers: min-max)")

    for ax, vals, reps in ((axes[0], tp, tp_reps), (axes[1], total, cpu_reps)):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.xaxis.set_major_formatter(FuncFormatter(human))
        ax.tick_params(axis="x", labelsize=8)
        for i, (yi, v) in enumerate(zip(y, vals)):
            if not ok[i] or not v:
                ax.text(0, yi, "  " + cs[i].get("status", "?"), va="center", fontsize=8, color="#B00")
            else:  # right of the whisker, so the two do not overlap
                ax.text(max([v] + reps[i]), yi, "  " + human(v), va="center", fontsize=8)
        ax.margins(x=0.2)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(labels, fontsize=8)
    if best is not None:
        axes[0].get_yticklabels()[best].set_fontweight("bold")
    fig.suptitle(sc["title"], fontsize=10)
    fig.text(0.01, 0.01, "full contender names and commands: bench/README.md", fontsize=7, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
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
    args = sys.argv[1:]
    out_dir = os.path.join(ROOT, "bench")
    if "--out" in args:
        i = args.index("--out")
        out_dir = args[i + 1]
        del args[i:i + 2]
    os.makedirs(os.path.join(out_dir, "results"), exist_ok=True)
    src = args[0] if args else os.path.join(RESULTS, "latest.json")
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
                f"(git {r.get('git_commit')}), {r.get('total_seconds')} s."
                + (f" {r['note']}" if r.get("note") else ""), ""]
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
            plot(key, sc, cmd, os.path.join(out_dir, "results", png))
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
            out += ["<details><summary>exact contender commands (last repetition), with each"
                    " one's label in the picture</summary>", ""]
            short = dict(zip(sc["contenders"], picture_labels(list(sc["contenders"]))))
            out += [f"- {n} (picture: *{short[n].replace(chr(10), ' ')}*): `{c}`" for n, c in cmds]
            out += ["", "</details>", ""]
        if has_data:
            out += [f"![{key}](results/{png})", "", f"Figure produced by: `{cmd}`", ""]
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
