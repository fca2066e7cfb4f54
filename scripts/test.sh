#!/usr/bin/env bash
# What `make test` runs (and CI through .ci/run):
#
#   1. scripts/deps.sh                    Debian packages + .venv
#      mypy         mypy --strict over molt_db_adapter, molt_sql and
#                   molt_django_adapter (python/pyproject.toml's [tool.mypy])
#   2. build/       -DMOLT_DB_WERROR=ON   normal build
#   3. build-asan/  + -DMOLT_DB_SANITIZE=ON (ASan + UBSan), and build-tsan/
#      (-DMOLT_DB_TSAN=ON: the host's and the loop wakers' tests, under
#      ThreadSanitizer)
#   4. inside ONE throwaway server (scripts/with_pg.sh) and its two streaming
#      replicas (scripts/with_pg_replicas.sh):
#        pgenv   a self-check of the server the harness made (roles, TLS)
#        ctest   build/       ctest-asan  build-asan/   ctest-tsan  build-tsan/
#                (test_host_*, test_loop_wake: threads, under ThreadSanitizer)
#        pytest  python/tests (when it exists; the client suites on both
#                transports: the worker and the in-process client), and
#                pytest-asan: the worker tests against the ASan+UBSan worker,
#                then the in-process suites on build-asan's _host extension
#        pyversions  the in-process suites and the C rows suite on Python 3.12
#                and 3.13 (scripts/python_versions.sh: per version a venv,
#                the extension modules built for it, in .tmp/pyversions/);
#                a version not found is reported "skipped: no python3.13"
#        pytest-host  the worker and attack tests again through the host ABI
#                (build/molt_host_bridge), threaded and driven mode; what
#                only molt_worker's process does is skipped, with the reason
#                (python/tests/host_bridge_skips.py)
#        django  python/tests/django (molt_django_adapter) under Django 5.2,
#                and django42 under Django 4.2 (.tmp/django42 first on PYTHONPATH);
#                django-inprocess, django42-inprocess: the same suites with
#                MOLT_DB["TRANSPORT"] = "inprocess"
#        django-demo  examples/django_demo/run_tests.sh (the demo project's
#                Django tests: endpoint parity, @molt_offload statuses,
#                manage.py molt_worker; SQLite and PostgreSQL, USE_TZ on/off)
#        django-suite  scripts/django_suite.sh: Django's own tests (of the
#                pinned 5.2 and 4.2 sdists, downloaded once into .tmp/django-src)
#                for the ORM apps, with the molt backends and OFFLOAD "all",
#                must end as with Django's backends (SQLite and PostgreSQL)
#        wheel   python/tests/wheel: `make wheel`, installed into a fresh venv,
#                queries on SQLite and PostgreSQL from outside the checkout
#        fuzz    scripts/fuzz.sh 6 (when it exists), one target at a time on one
#                core beside the pytest stages, which mostly wait
#   5. a summary table and the line "N passed, N failed"
#
# Every stage runs even when an earlier one failed (a test stage is skipped
# only when its build failed). Exit status 0 only when everything passed.
# Logs of every stage: .tmp/test-logs/.
#
# Knobs (environment):
#   MOLT_TEST_DSN      run against this existing server instead (see docs/testing.md)
#   MOLT_TEST_JOBS     ctest parallelism (default 2)
#   MOLT_FUZZ_SECONDS  fuzz run length per target (default 6)
#   MOLT_TEST_STAGES   space-separated subset of: mypy ctest ctest-asan ctest-tsan pytest pytest-asan pyversions pytest-host django django42 django-inprocess django42-inprocess django-demo django-suite wheel fuzz
#                      (default all; the builds run for the ctest stages)
#   MOLT_PYTHON_VERSIONS  the pyversions stage's versions (default "3.12 3.13")
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LOGDIR="$ROOT/.tmp/test-logs"
RESULTS="$LOGDIR/results.tsv"
JOBS=${MOLT_TEST_JOBS:-2}
# 10 s: from the seeds in tests/fuzz/corpus/ every target is at the coverage
# that 20 s from hand-written seeds reached (docs/testing.md, Fuzzing)
FUZZ_SECONDS=${MOLT_FUZZ_SECONDS:-6}
STAGES=${MOLT_TEST_STAGES:-"mypy ctest ctest-asan ctest-tsan pytest pytest-asan pyversions pytest-host django django42 django-inprocess django42-inprocess django-demo django-suite wheel fuzz"}

# Time budgets per stage (seconds): guard rails so that one hung test cannot
# push `make test` past CI's 20 minutes. A normal run takes far less.
T_CTEST=${MOLT_T_CTEST:-300}
T_CTEST_ASAN=${MOLT_T_CTEST_ASAN:-360}
T_PYTEST=${MOLT_T_PYTEST:-480}
T_PYTEST_ASAN=${MOLT_T_PYTEST_ASAN:-480}
T_CTEST_TSAN=${MOLT_T_CTEST_TSAN:-480}
T_PYTEST_HOST=${MOLT_T_PYTEST_HOST:-300}
T_FUZZ=${MOLT_T_FUZZ:-420}
T_DJANGO=${MOLT_T_DJANGO:-240}
T_DJANGO_DEMO=${MOLT_T_DJANGO_DEMO:-300}
T_DJANGO_SUITE=${MOLT_T_DJANGO_SUITE:-600}
T_WHEEL=${MOLT_T_WHEEL:-240}
T_MYPY=${MOLT_T_MYPY:-180}
T_PYVERSIONS=${MOLT_T_PYVERSIONS:-180}
PY_VERSIONS=${MOLT_PYTHON_VERSIONS:-"3.12 3.13"}
# what the pyversions stage runs on each version:
# the extension modules' C API (_host: test_inprocess, test_inprocess_arrow:
# frames handed to pyarrow as buffers; _rows: test_rows_c,
# test_client_rows: dicts, which rows the cyclic GC tracks,
# test_rows_sqlite_profile: Django's SQLite values),
# the asyncio client's driven host and host sessions on the in-process
# transport (test_adapter_worker, test_client_tx). Left out: test_client_params,
# _copy and _listen (request building and frames on the paths above; listen
# waits on timeouts), the worker client suites, Django, and the RSS and
# reference-leak loops (RSS_LOOPS: the same C on every version, and the
# slowest of these tests, 10 s of a version's 36 for CALL_LOOPS alone;
# 3.12's immortal objects would hide a leaked None or small int: 3.11 runs
# them)
CALL_LOOPS="test_plain_calls_keep_no_reference_and_leave_rss_flat or test_many_calls_leave_rss_flat"
RSS_LOOPS="test_no_reference_leaks or test_frames_dropped_without_pyarrow_leave_rss_flat or $CALL_LOOPS"
PYVERSIONS_TESTS=(python/tests/test_inprocess.py python/tests/test_inprocess_fast.py
    python/tests/test_inprocess_arrow.py python/tests/test_arrow_c_stream.py
    python/tests/test_rows_c.py python/tests/test_client_rows.py
    python/tests/test_rows_sqlite_profile.py python/tests/test_adapter_worker.py
    python/tests/test_client_tx.py
    -k "not ($RSS_LOOPS)")

want() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
now() { date +%s; }
banner() { printf '\n==== %s ====\n' "$*"; }

# record NAME STATUS PASSED FAILED SKIPPED SECONDS NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# run_limited BUDGET LOG CMD...: CMD with a time limit, output to LOG and
# echoed. timeout puts CMD in its own process group and, when it gets a
# signal, passes it to that whole group; so on INT/TERM we signal timeout and
# no test process outlives the run (a foreground pipeline would defer our
# trap until it ended).
STAGE_PID=""
run_limited() {
    local budget=$1 log=$2 rc tail_pid
    shift 2
    : >"$log"
    timeout -k 15 "$budget" "$@" >"$log" 2>&1 </dev/null &
    STAGE_PID=$!
    tail -n +1 -f --pid="$STAGE_PID" "$log" &
    tail_pid=$!
    wait "$STAGE_PID"
    rc=$?
    STAGE_PID=""
    wait "$tail_pid" 2>/dev/null
    return "$rc"
}
stop_stage() {
    trap - INT TERM
    [ -n "${FUZZ_PID:-}" ] && kill -TERM "$FUZZ_PID" 2>/dev/null
    if [ -n "$STAGE_PID" ]; then
        kill -TERM "$STAGE_PID" 2>/dev/null
        wait "$STAGE_PID" 2>/dev/null
    fi
    exit "$1"
}

# ---- ctest: run, then count from its summary ----
# ctest counts skipped tests (exit 77) as passed in its "N tests failed out
# of M" line; we list them separately.
run_ctest() {   # NAME BUILD_DIR BUDGET
    local name=$1 dir=$2 budget=$3 log="$LOGDIR/$1.log" t0 rc total failed skipped note=""
    banner "$name ($dir)"
    t0=$(now)
    run_limited "$budget" "$log" ctest --test-dir "$dir" --output-on-failure \
        -j "$JOBS" --no-tests=ignore ${CTEST_ONLY:+-R "$CTEST_ONLY"}
    rc=$?
    total=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\2/p' "$log" | tail -n 1)
    failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    skipped=$(grep -cE '^[[:space:]]+[0-9]+ - .* \((Skipped|Disabled)\)$' "$log")
    if [ -z "$total" ]; then
        if grep -q 'No tests were found' "$log"; then total=0 failed=0
        else total=0 failed=0 note="no ctest summary"; [ "$rc" = 0 ] && rc=1
        fi
    fi
    [ "$rc" = 124 ] && note="timed out after ${budget}s"
    local st=PASS
    [ "$rc" = 0 ] || st=FAIL
    record "$name" "$st" "$((total - failed - skipped))" "$failed" "$skipped" "$(($(now) - t0))" "$note"
}

run_pytest() {   # NAME BUILD_DIR BUDGET TESTS...
    local name=$1 dir=$2 budget=$3
    shift 3
    local log="$LOGDIR/$name.log" t0 rc line p f e s st note=""
    banner "$name ($dir: $*)"
    t0=$(now)
    PYTHONPATH="${PY_ROOT:-$ROOT/python}${PYTHONPATH:+:$PYTHONPATH}" MOLT_BUILD_DIR="$ROOT/$dir" \
    MOLT_WORKER_BIN="$ROOT/$dir/${WORKER_NAME:-molt_worker}" \
        run_limited "$budget" "$log" "${PY_BIN:-$ROOT/.venv/bin/python}" -m pytest "$@" \
        -q -p no:cacheprovider --durations=40
    rc=$?
    # the last summary line: "3 passed, 1 failed, 2 skipped, 1 error in 0.12s"
    line=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|no tests ran)' "$log" | tail -n 1)
    num() { printf '%s\n' "$line" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' | head -n 1; }
    p=$(num passed); f=$(num failed); e=$(num 'errors?'); s=$(num skipped)
    p=${p:-0}; f=$(( ${f:-0} + ${e:-0} )); s=${s:-0}
    st=PASS
    case "$rc" in
        0) ;;
        5) note="no tests collected" ;;
        124) st=FAIL; note="timed out after ${budget}s" ;;
        *) st=FAIL ;;
    esac
    record "$name" "$st" "$p" "$f" "$s" "$(($(now) - t0))" "$note"
}

# mypy prints "Found N errors in M files" or "Success: no issues found in M
# source files"; each error counts as one failure. Its cache lives in .tmp/.
run_mypy() {
    local log="$LOGDIR/mypy.log" t0 rc errors st=PASS note=""
    banner "mypy (python/pyproject.toml)"
    t0=$(now)
    run_limited "$T_MYPY" "$log" env -C "$ROOT/python" "$ROOT/.venv/bin/python" -m mypy \
        --cache-dir "$ROOT/.tmp/mypy-cache"
    rc=$?
    errors=$(sed -n 's/^Found \([0-9]*\) errors\{0,1\} in .*/\1/p' "$log" | tail -n 1)
    [ "$rc" = 0 ] || st=FAIL
    [ "$rc" = 124 ] && note="timed out after ${T_MYPY}s"
    [ "$rc" != 0 ] && [ -z "$note" ] && note="see .tmp/test-logs/mypy.log"
    record mypy "$st" - "${errors:-0}" - "$(($(now) - t0))" "$note"
}

# Django's own test runner: "Ran N tests" and "FAILED (failures=F, errors=E)"
# per configuration of run_tests.sh.
run_django_demo() {
    local log="$LOGDIR/django-demo.log" t0 rc ran failed st=PASS note=""
    banner "django-demo (examples/django_demo/run_tests.sh)"
    t0=$(now)
    run_limited "$T_DJANGO_DEMO" "$log" bash examples/django_demo/run_tests.sh
    rc=$?
    ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
    failed=$(grep -oE '(failures|errors)=[0-9]+' "$log" | cut -d= -f2 | awk '{n += $1} END {print n + 0}')
    [ "$rc" = 0 ] || st=FAIL
    [ "$rc" = 124 ] && note="timed out after ${T_DJANGO_DEMO}s"
    record django-demo "$st" "$((ran - failed))" "$failed" 0 "$(($(now) - t0))" "$note"
}

# Django's own test suite, Django's backends against the molt backends:
# passed counts the tests of the molt runs, failed the runs that ended
# otherwise than Django's own.
run_django_suite() {
    local log="$LOGDIR/django-suite.log" t0 rc ran st=PASS note=""
    banner "django-suite (scripts/django_suite.sh)"
    t0=$(now)
    run_limited "$T_DJANGO_SUITE" "$log" bash scripts/django_suite.sh
    rc=$?
    ran=$(sed -n 's/^Django .* molt: .*Ran \([0-9]*\) tests.*/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
    [ "$rc" = 0 ] || { st=FAIL; note="see .tmp/test-logs/django-suite.log"; }
    [ "$rc" = 124 ] && note="timed out after ${T_DJANGO_SUITE}s"
    record django-suite "$st" "$ran" "$(grep -c '^FAILED: ' "$log")" 0 "$(($(now) - t0))" "$note"
}

run_fuzz() {
    local log="$LOGDIR/fuzz.log" t0 rc st note=""
    banner "fuzz (scripts/fuzz.sh $FUZZ_SECONDS)"
    t0=$(now)
    run_limited "$T_FUZZ" "$log" bash scripts/fuzz.sh "$FUZZ_SECONDS"
    rc=$?
    st=PASS
    [ "$rc" = 0 ] || st=FAIL
    [ "$rc" = 124 ] && note="timed out after ${T_FUZZ}s"
    [ "$rc" != 0 ] && [ -z "$note" ] && note="exit $rc, see .tmp/test-logs/fuzz.log"
    record fuzz "$st" - - - "$(($(now) - t0))" "$note"
}

# A quick check that the server with_pg.sh made is what the tests expect:
# every role authenticates with its method and verify-full TLS behaves.
run_pgenv() {
    local log="$LOGDIR/pgenv.log" t0 bad=0 psql
    t0=$(now)
    psql="${MOLT_TEST_PGBIN:-}/psql"
    [ -x "$psql" ] || psql=psql
    : >"$log"
    check() {   # LABEL EXPECT(ok|fail) CONNINFO
        local out
        if out=$("$psql" -X -A -t -q -c 'select 1' "$3" 2>&1 </dev/null) && [ "$out" = 1 ]; then
            [ "$2" = ok ] || { bad=1; echo "pgenv: $1 connected but should not have" >>"$log"; }
        else
            [ "$2" = fail ] || { bad=1; echo "pgenv: $1 failed: $out" >>"$log"; }
        fi
    }
    if [ -z "${MOLT_TEST_PGPORT:-}" ]; then
        # an existing server (MOLT_TEST_DSN given by the caller): only try it
        check "MOLT_TEST_DSN" ok "$MOLT_TEST_DSN"
    else
        local p=$MOLT_TEST_PGPORT
        check "trust over TCP" ok "$MOLT_TEST_DSN"
        check "trust over the socket" ok "$MOLT_TEST_DSN_SOCKET"
        check "md5" ok "$MOLT_TEST_DSN_MD5"
        check "md5, wrong password" fail "postgresql://molt_md5:wrong@127.0.0.1:$p/molt_test"
        check "scram" ok "$MOLT_TEST_DSN_SCRAM"
        check "scram, wrong password" fail "postgresql://molt_scram:wrong@127.0.0.1:$p/molt_test"
        check "client certificate, verify-full localhost" ok "$MOLT_TEST_CERT_DSN"
        check "verify-full to 127.0.0.1 (name mismatch)" fail \
            "host=127.0.0.1 port=$p user=molt dbname=molt_test sslmode=verify-full sslrootcert=$MOLT_TEST_SSLROOTCERT"
        check "cert role without TLS" fail \
            "host=127.0.0.1 port=$p user=molt_cert dbname=molt_test sslmode=disable"
    fi
    if [ "$bad" = 0 ]; then
        record pgenv PASS - - - "$(($(now) - t0))" ""
    else
        cat "$log" >&2
        record pgenv FAIL - - - "$(($(now) - t0))" "test server not as expected"
    fi
}

# ---- the part that runs inside the server ----
if [ "${1:-}" = "--stages" ]; then
    trap 'stop_stage 130' INT
    trap 'stop_stage 143' TERM
    run_pgenv
    if want ctest; then
        if [ -f "$LOGDIR/build.ok" ]; then run_ctest ctest build "$T_CTEST"
        else record ctest FAIL 0 0 0 0 "build failed"; fi
    fi
    if want ctest-asan; then
        if [ -f "$LOGDIR/build-asan.ok" ]; then
            ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
            UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
                run_ctest ctest-asan build-asan "$T_CTEST_ASAN"
        else record ctest-asan FAIL 0 0 0 0 "build failed"; fi
    fi
    if want ctest-tsan; then
        if [ -f "$LOGDIR/build-tsan.ok" ]; then
            TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
            CTEST_ONLY='^test_(host_|loop_wake)' run_ctest ctest-tsan build-tsan "$T_CTEST_TSAN"
        else record ctest-tsan FAIL 0 0 0 0 "build failed"; fi
    fi
    # The fuzz stage needs no server and the pytest stages mostly wait on
    # it: its targets run one at a time on one core beside them (the same
    # seconds each), its report printed at the end.
    FUZZ_PID=""
    if want fuzz && [ -f scripts/fuzz.sh ]; then
        MOLT_FUZZ_PARALLEL=1 MOLT_FUZZ_JOBS=1 run_fuzz >"$LOGDIR/fuzz.out" 2>&1 &
        FUZZ_PID=$!
    fi
    if want pytest && [ -d python/tests ]; then
        run_pytest pytest build "$T_PYTEST" python/tests --ignore=python/tests/django \
            --ignore=python/tests/wheel
    fi
    # molt_django_adapter against the normal worker, under both Django LTS
    # releases; MOLT_EXPECT_DJANGO makes the run fail if the other one loaded.
    if want django && [ -d python/tests/django ]; then
        MOLT_EXPECT_DJANGO=5.2 run_pytest django build "$T_DJANGO" python/tests/django
    fi
    if want django42 && [ -d python/tests/django ]; then
        PYTHONPATH="$ROOT/.tmp/django42" MOLT_EXPECT_DJANGO=4.2 \
            run_pytest django42 build "$T_DJANGO" python/tests/django
    fi
    # the same two on the in-process client (MOLT_DB["TRANSPORT"] = "inprocess")
    if want django-inprocess && [ -d python/tests/django ]; then
        MOLT_DJANGO_TRANSPORT=inprocess MOLT_EXPECT_DJANGO=5.2 \
            run_pytest django-inprocess build "$T_DJANGO" python/tests/django
    fi
    if want django42-inprocess && [ -d python/tests/django ]; then
        MOLT_DJANGO_TRANSPORT=inprocess PYTHONPATH="$ROOT/.tmp/django42" MOLT_EXPECT_DJANGO=4.2 \
            run_pytest django42-inprocess build "$T_DJANGO" python/tests/django
    fi
    if want django-demo && [ -f examples/django_demo/run_tests.sh ]; then run_django_demo; fi
    if want django-suite && [ -f scripts/django_suite.sh ]; then run_django_suite; fi
    # The worker is C: its protocol tests also run against the ASan+UBSan
    # build, where any overread, leak (the worker must exit 0) or UB fails.
    if want pytest-asan && [ -f "$LOGDIR/build-asan.ok" ]; then
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
            MOLT_TEST_TRANSPORTS=worker \
            run_pytest pytest-asan build-asan "$T_PYTEST_ASAN" python/tests/test_worker_*.py \
                python/tests/test_attack_*.py python/tests/test_client_params.py \
                python/tests/test_client_copy.py python/tests/test_client_listen.py
    fi
    # The in-process clients on build-asan's _host extension, loaded into the
    # venv's (uninstrumented) Python with libasan and libubsan preloaded; the
    # package comes from an overlay whose _host and _rows are build-asan's
    # (so the C row decoder's hostile-payload tests run under ASan too).
    # LSan is off (CPython frees little at exit); the server restart test is
    # left out (the preload would reach pg_ctl and the server it starts), and
    # so are the two loops of 10^5 and 5 * 10^4 calls (CALL_LOOPS: RSS there is ASan's
    # quarantine, their reference counts are the pytest stage's, and the
    # other tests make the same calls under ASan).
    if want pytest-asan && [ -f "$LOGDIR/build-asan.ok" ]; then
        if ls build-asan/python/molt_db_adapter/_host.*.so >/dev/null 2>&1; then
            overlay="$ROOT/.tmp/asan-python"
            bash scripts/python_versions.sh overlay "$overlay" "$ROOT/build-asan/python/molt_db_adapter"
            PY_ROOT="$overlay" MOLT_TEST_TRANSPORTS=inprocess \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
            ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} \
            UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
                run_pytest pytest-asan-inprocess build-asan "$T_PYTEST_ASAN" python/tests/test_inprocess.py \
                    python/tests/test_inprocess_fast.py python/tests/test_inprocess_async_fast.py \
                    python/tests/test_inprocess_arrow.py python/tests/test_arrow_c_stream.py \
                    python/tests/test_adapter_worker.py python/tests/test_client_params.py \
                    python/tests/test_client_copy.py python/tests/test_client_listen.py \
                    python/tests/test_client_tx.py python/tests/test_client_tx_cancel.py \
                    python/tests/test_client_rows.py \
                    python/tests/test_rows_c.py python/tests/test_rows_django_text.py \
                    -k "not server_restart and not ($CALL_LOOPS)"
        fi
    fi
    # The in-process suites on the other Python versions: the extension
    # modules built for each (prepared before the server started).
    if want pyversions; then
        for ver in $PY_VERSIONS; do
            [ -f "$LOGDIR/build-py$ver.ok" ] || continue
            PY_BIN="$ROOT/.tmp/pyversions/$ver/venv/bin/python" \
            PY_ROOT="$ROOT/.tmp/pyversions/$ver/python" MOLT_TEST_TRANSPORTS=inprocess \
                run_pytest "py$ver" build "$T_PYVERSIONS" "${PYVERSIONS_TESTS[@]}"
        done
    fi
    # The same suites through the host ABI (molt_db/host.h), in both modes.
    if want pytest-host && [ -f "$LOGDIR/build.ok" ]; then
        for mode in threaded driven; do
            MOLT_HOST_BRIDGE_MODE=$mode WORKER_NAME=molt_host_bridge MOLT_TEST_TRANSPORTS=worker \
                run_pytest "pytest-host-$mode" build "$T_PYTEST_HOST" \
                python/tests/test_worker_*.py python/tests/test_attack_*.py
        done
    fi
    if want wheel && [ -d python/tests/wheel ]; then
        run_pytest wheel build "$T_WHEEL" python/tests/wheel
    fi
    if [ -n "$FUZZ_PID" ]; then
        wait "$FUZZ_PID"
        cat "$LOGDIR/fuzz.out"
    fi
    exit 0
fi

# ---- outside: deps, builds, server, summary ----
T_START=$(now)
mkdir -p "$LOGDIR"
rm -f "$RESULTS" "$LOGDIR"/*.ok

banner "dependencies"
t0=$(now)
if ! bash scripts/deps.sh; then
    echo "scripts/deps.sh failed; nothing else can run." >&2
    echo "0 passed, 1 failed"
    exit 1
fi
record deps PASS - - - "$(($(now) - t0))" ""

# no server and no build needed: before the builds, so a type error shows first
if want mypy; then run_mypy; fi

# step NAME CMD...: one build step, its output in .tmp/test-logs/NAME.log;
# NAME.ok tells the stages that need it that it passed
step() {
    local name=$1 log="$LOGDIR/$1.log" t0
    shift
    t0=$(now)
    if "$@" >"$log" 2>&1 </dev/null; then
        touch "$LOGDIR/$name.ok"
        echo "ok"
        record "$name" PASS - - - "$(($(now) - t0))" ""
    else
        grep -vE '(Entering|Leaving) directory' "$log" | tail -n 80
        record "$name" FAIL - - - "$(($(now) - t0))" "see .tmp/test-logs/$name.log"
    fi
}
cmake_build() {   # DIR CMAKE_ARGS...
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j "$JOBS" ${TARGETS:+--target $TARGETS}
}
build() {   # NAME DIR CMAKE_ARGS...
    banner "$1 ($2)"
    step "$1" cmake_build "${@:2}"
}
# the Python extension modules are built for the venv's Python
PY_EXE="-DPython3_EXECUTABLE=$ROOT/.venv/bin/python"
if want ctest || want pyversions || want pytest-host || want django || want django42 || want django-inprocess || want django42-inprocess || want django-demo || want django-suite; then build build build -DMOLT_DB_WERROR=ON "$PY_EXE"; fi
# the ASan build beside the TSan build and the other Pythons' venvs (their
# configure steps, pip and links leave a core free): its log and result
# as any step's
ASAN_PID=""
if want ctest-asan; then
    build build-asan build-asan -DMOLT_DB_SANITIZE=ON -DMOLT_DB_WERROR=ON "$PY_EXE" &
    ASAN_PID=$!
fi
if want ctest-tsan; then
    TARGETS="test_host_threads test_host_abi test_loop_wake" \
        build build-tsan build-tsan -DMOLT_DB_TSAN=ON -DMOLT_DB_WERROR=ON
fi

# pyversions: per Python version a venv and the extension modules linking
# build/'s host library; a version not found is a loud skip, not a failure
if want pyversions; then
    for ver in $PY_VERSIONS; do
        if ! py=$(bash scripts/python_versions.sh find "$ver"); then
            banner "py$ver: SKIPPED: no python$ver (pyenv root or PATH)"
            record "py$ver" PASS 0 0 1 0 "skipped: no python$ver"
        elif [ ! -f "$LOGDIR/build.ok" ]; then
            record "py$ver" FAIL 0 0 0 0 "build failed"
        else
            banner "build-py$ver ($py)"
            step "build-py$ver" bash scripts/python_versions.sh prepare "$ver" "$py" "$ROOT/build"
        fi
    done
fi
[ -n "$ASAN_PID" ] && wait "$ASAN_PID"

banner "test server"
t0=$(now)
bash scripts/with_pg.sh bash scripts/with_pg_replicas.sh bash "$ROOT/scripts/test.sh" --stages
rc=$?
if ! grep -q '^pgenv' "$RESULTS" 2>/dev/null; then
    record server FAIL - - - "$(($(now) - t0))" "with_pg.sh exit $rc: the server did not start"
elif [ "$rc" != 0 ]; then
    record server FAIL - - - "$(($(now) - t0))" "with_pg.sh exit $rc"
fi

# ---- summary ----
banner "summary"
printf '%-12s %-5s %7s %7s %7s %6s  %s\n' stage result passed failed skipped secs note
total_p=0 total_f=0 any_fail=0
while IFS=$'\t' read -r name st p f s secs note; do
    printf '%-12s %-5s %7s %7s %7s %6s  %s\n' "$name" "$st" "$p" "$f" "$s" "$secs" "$note"
    [ "$p" = - ] || total_p=$((total_p + p))
    [ "$f" = - ] || total_f=$((total_f + f))
    if [ "$st" != PASS ]; then
        any_fail=1
        # a stage that failed without a failing test (a build error, a
        # fuzz crash, a timeout) still counts as one failure
        if [ "$f" = - ] || [ "$f" = 0 ]; then total_f=$((total_f + 1)); fi
    fi
done <"$RESULTS"
echo "total time: $(($(now) - T_START))s; logs in .tmp/test-logs/"
echo "$total_p passed, $total_f failed"
[ "$any_fail" = 0 ] && [ "$total_f" = 0 ]
