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
# MOLT_FUZZ_JOBS (build parallelism, default 2).
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

failed=0
while read -r name; do
    [ -n "$name" ] || continue
    bin="$build/tests/fuzz/$name"
    seeds="$root/tests/fuzz/corpus/${name#fuzz_}"
    corpus="$work/corpus/$name"
    artifacts="$work/artifacts/$name"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$seeds" ]; then cp "$seeds"/* "$corpus"/ 2>/dev/null || true; fi

    echo "== $name: ${secs}s"
    rc=0
    (cd "$work" && "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus") \
        >"$work/$name.log" 2>&1 || rc=$?
    # One summary line: executions, speed, coverage.
    execs=$(grep -E '^stat::number_of_executed_units' "$work/$name.log" | awk '{print $2}' || true)
    speed=$(grep -E '^stat::average_exec_per_sec' "$work/$name.log" | awk '{print $2}' || true)
    cov=$(grep -oE 'cov: [0-9]+' "$work/$name.log" | tail -n 1 || true)
    if [ "$rc" = 0 ]; then
        echo "   ok: ${execs:-?} execs (${speed:-?}/s), ${cov:-cov: ?}"
    else
        failed=1
        keep=1
        grep -E 'ERROR|SUMMARY|deadly signal|Test unit written' "$work/$name.log" >&2 || tail -n 30 "$work/$name.log" >&2
        for f in "$artifacts"/*; do
            [ -e "$f" ] || continue
            echo "   reproducer: $f" >&2
            echo "   replay:     $bin $f" >&2
        done
        echo "   full log:   $work/$name.log" >&2
    fi
done <"$list"

if [ "$failed" != 0 ]; then
    echo "fuzz.sh: FAILED (artifacts kept in $work)" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran ${secs}s without a crash"
