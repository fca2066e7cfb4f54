#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each one for SECONDS
# seconds (default 20) on a temporary copy of its seed corpus, so nothing is
# written into the repository.
#
#   scripts/fuzz.sh [SECONDS]
#
# Exits non-zero when a target crashes (or leaks, or times out on an input)
# and prints the reproducer path and the command that replays it.
# Environment: MOLT_FUZZ_BUILD_DIR (default build-fuzz), CC (default clang),
# MOLT_FUZZ_JOBS (build parallelism, default 2), MOLT_FUZZ_PARALLEL (targets
# run at once, default: the number of cores).
set -euo pipefail

secs=${1:-20}
case $secs in
    ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=${MOLT_FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${CC:-clang}
# A gcc-configured shell (CC=gcc) cannot build libFuzzer targets.
case $(basename "$cc") in clang*) ;; *) cc=clang ;; esac

die() { echo "fuzz.sh: $*" >&2; exit 2; }

command -v "$cc" >/dev/null 2>&1 ||
    die "$cc not found; install clang and libclang-rt-14-dev (scripts/deps.sh)"
command -v cmake >/dev/null 2>&1 || die "cmake not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/molt-fuzz.XXXXXX")
keep=0
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# Fail clearly (not deep inside CMake) when the libFuzzer runtime is absent.
cat >"$work/probe.c" <<'C'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
C
if ! "$cc" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" 2>"$work/probe.log"; then
    cat "$work/probe.log" >&2
    die "$cc cannot link -fsanitize=fuzzer: the libFuzzer runtime is missing (apt-get install libclang-rt-14-dev, matching the clang version)"
fi

echo "== configure $build (CC=$cc)"
CC=$cc cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" \
    -DMOLT_DB_FUZZ=ON -DMOLT_DB_TESTS=ON -DMOLT_DB_WERROR=ON >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log" >&2; die "configure failed"; }
echo "== build fuzz targets"
cmake --build "$build" --target fuzzers -j "${MOLT_FUZZ_JOBS:-2}" >"$work/build.log" 2>&1 ||
    { tail -n 60 "$work/build.log" >&2; die "build failed"; }

list="$build/tests/fuzz/fuzzers.txt"
[ -s "$list" ] || die "no fuzz targets listed in $list"

# One target: its run, then one summary line (executions, speed, coverage)
# into $work/NAME.summary; a crash also leaves NAME.failed.
run_target() {
    local name=$1 rc=0
    local bin="$build/tests/fuzz/$name"
    local seeds="$root/tests/fuzz/corpus/${name#fuzz_}"
    local corpus="$work/corpus/$name" artifacts="$work/artifacts/$name"
    local log="$work/$name.log" out="$work/$name.summary"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$seeds" ]; then cp "$seeds"/* "$corpus"/ 2>/dev/null || true; fi
    (cd "$work" && "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus") \
        >"$log" 2>&1 || rc=$?
    local execs speed cov
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)
    echo "== $name: ${secs}s" >"$out"
    if [ "$rc" = 0 ]; then
        echo "   ok: ${execs:-?} execs (${speed:-?}/s), ${cov:-cov: ?}" >>"$out"
        return
    fi
    touch "$work/$name.failed"
    {
        grep -E 'ERROR|SUMMARY|deadly signal|Test unit written' "$log" || tail -n 30 "$log"
        for f in "$artifacts"/*; do
            [ -e "$f" ] || continue
            echo "   reproducer: $f"
            echo "   replay:     $bin $f"
        done
        echo "   full log:   $log"
    } >>"$out"
}

# The targets run $jobs at a time (one per core): the same seconds each,
# in less wall time.
jobs=${MOLT_FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}
names=()
while read -r name; do
    [ -n "$name" ] && names+=("$name")
done <"$list"
running=0
for name in "${names[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_target "$name" &
    running=$((running + 1))
done
wait || true

failed=0
for name in "${names[@]}"; do
    cat "$work/$name.summary"
    if [ -e "$work/$name.failed" ]; then failed=1; keep=1; fi
done

if [ "$failed" != 0 ]; then
    echo "fuzz.sh: FAILED (artifacts kept in $work)" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran ${secs}s without a crash"
