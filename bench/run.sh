#!/usr/bin/env bash
# bench/run.sh [QUICK=1] [--only KEY,KEY]     (what `make bench` runs)
#
# 1. .venv (python3 -m venv) with the pinned peers of bench/requirements.txt
# 2. the high-latency link probe (bench/lib/netns.sh; netem may be unavailable)
# 3. a throwaway PostgreSQL 15 via scripts/with_pg.sh, tuned by MOLT_PG_CONF
#    (the same server and settings for every contender), pinned to CPU 0
# 4. bench/runner.py on CPU 1: data (pgbench -i -s 10, bench_bulk 1M rows),
#    every scenario, bench/results/latest.json
# 5. bench/report.py: bench/README.md and bench/results/*.png
# 6. bench/replicas.py under scripts/with_pg_replicas.sh (full runs only):
#    bench/results/replicas.json
#
# QUICK=1 (as an argument or in the environment): 3 repetitions of 2 s,
# under 5 minutes. Otherwise 5 repetitions of 5 s.
#
# --baseline DIR: an A/B run. DIR is the build directory of another commit
# (e.g. `git worktree add /tmp/base REV && make -C /tmp/base build`); every
# molt contender also runs with DIR's molt_bench and molt_worker, and the
# Python ones with the parent tree's bench/peers/molt_peer.py and python/
# (where its build put the extension modules, so in-process contenders run
# that commit's code), against the same server in the same run.
# The result goes to bench/results/ab.json and bench/results/ab.md, and
# latest.json and bench/README.md are left as they are.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
ONLY=""
BASELINE=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        QUICK=*) QUICK=${1#QUICK=} ;;
        --quick) QUICK=1 ;;
        --only) ONLY=$2; shift ;;
        --baseline) BASELINE=$(cd "$2" && pwd); shift ;;
        *) echo "usage: bench/run.sh [QUICK=1] [--only SCENARIO,...] [--baseline BUILD_DIR]" >&2; exit 2 ;;
    esac
    shift
done
[ "$QUICK" = 1 ] || QUICK=0
say() { echo "[bench] $*" >&2; }

# ---- 1. venv ----
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV"
    say "creating .venv"
    python3 -m venv "$VENV"
fi
# pip is a no-op (about a second, no network) when the pins are satisfied; it
# runs every time so that a shared .venv cannot drift from what we report.
say "checking bench/requirements.txt in .venv"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
    -r bench/requirements.txt </dev/null

# ---- 2. server tuning, the same for everyone ----
CONF="shared_buffers = 1GB
work_mem = 64MB
max_connections = 300
jit = off
max_parallel_workers_per_gather = 0
ssl = off
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 8GB
checkpoint_timeout = 1h
autovacuum = off
log_min_messages = warning"

NETEM_STATUS=$(mktemp /tmp/molt-bench-netem.XXXXXX.json)
cleanup() { bench/lib/netns.sh down >/dev/null 2>&1 || true; rm -f "$NETEM_STATUS"; }
trap cleanup EXIT
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v tc >/dev/null; then
    bench/lib/netns.sh up "$NETEM_STATUS"
else
    python3 -c 'import json,sys; json.dump({"ok": False, "error": sys.argv[1]}, open(sys.argv[2], "w"))' \
        "needs root and the ip and tc tools (uid $(id -u))" "$NETEM_STATUS"
fi
if python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("ok") else 1)' "$NETEM_STATUS"; then
    say "netem link up: $(cat "$NETEM_STATUS" | tr -d '\n')"
    CONF="$CONF
listen_addresses = '127.0.0.1,10.231.77.1'"
else
    say "high-latency variant unavailable: $(cat "$NETEM_STATUS")"
fi
export MOLT_PG_CONF="${MOLT_PG_CONF:+$MOLT_PG_CONF
}$CONF"

# ---- 3./4. server on CPU 0, clients on CPU 1 ----
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    CLIENT_PIN=(taskset -c 1)
    export BENCH_CLIENT_CPUS=1
    export BENCH_PINNING="server (postmaster and backends) pinned to CPU 0, every client process to CPU 1 (taskset); $NCPU CPUs"
else
    SERVER_PIN=()
    CLIENT_PIN=()
    export BENCH_CLIENT_CPUS=""
    export BENCH_PINNING="no pinning ($NCPU CPU(s) or no taskset)"
fi
CMD="make bench$([ "$QUICK" = 1 ] && echo ' QUICK=1' || true)"
[ -n "$ONLY" ] && CMD="bench/run.sh$([ "$QUICK" = 1 ] && echo ' QUICK=1' || true) --only $ONLY"
RUNNER=("$VENV/bin/python" bench/runner.py --command "$CMD" --netem-status "$NETEM_STATUS")
[ "$QUICK" = 1 ] && RUNNER+=(--quick)
[ -n "$ONLY" ] && RUNNER+=(--only "$ONLY")
if [ -n "$BASELINE" ]; then
    CMD="$CMD --baseline $BASELINE"
    RUNNER=("$VENV/bin/python" bench/runner.py --command "$CMD" --netem-status "$NETEM_STATUS"
            --baseline "$BASELINE" --out bench/results/ab.json)
    [ "$QUICK" = 1 ] && RUNNER+=(--quick)
    [ -n "$ONLY" ] && RUNNER+=(--only "$ONLY")
fi

WITH_PG=scripts/with_pg.sh
if [ ! -x "$WITH_PG" ] || [ "${BENCH_OWN_PG:-0}" = 1 ]; then
    WITH_PG=bench/lib/own_pg.sh
fi
# a throwaway server every time, whatever the caller's environment points at
unset MOLT_TEST_DSN
say "starting a throwaway PostgreSQL via $WITH_PG (${SERVER_PIN[*]:-unpinned})"
"${SERVER_PIN[@]}" "$WITH_PG" "${CLIENT_PIN[@]}" "${RUNNER[@]}"

# ---- 6. reads over a primary and two streaming replicas (bench/replicas.py) ----
# Unpinned: the three servers share the machine's cores, which is what the
# figures then say.
if [ -z "$ONLY$BASELINE" ] && [ "$WITH_PG" = scripts/with_pg.sh ]; then
    say "replicas: primary + 2 streaming replicas vs one server; routing overhead"
    "$WITH_PG" bash scripts/with_pg_replicas.sh "$VENV/bin/python" bench/replicas.py \
        $([ "$QUICK" = 1 ] && echo --quick) --out bench/results/replicas.json
fi

# ---- 5. report ----
if [ -n "$BASELINE" ]; then
    "$VENV/bin/python" bench/report.py --ab bench/results/ab.json > bench/results/ab.md
    cat bench/results/ab.md
    say "done: bench/results/ab.json, bench/results/ab.md"
    exit 0
fi
"$VENV/bin/python" bench/report.py
say "done: bench/results/latest.json, bench/README.md"
