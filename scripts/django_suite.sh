#!/usr/bin/env bash
# Django's own test suite (tests/ of the pinned Django sdists) for the apps
# the adapter touches, run with Django's backends and then with the molt
# backends and MOLT_DB["OFFLOAD"] = "all", on SQLite files and on the
# PostgreSQL of MOLT_TEST_DSN, under Django 5.2 and 4.2. Passes when every
# molt run ends exactly as Django's own run did: the same "Ran N tests",
# the same OK/FAILED line, the same failing tests.
#
#   bash scripts/with_pg.sh bash scripts/django_suite.sh
#
# The sdists are downloaded once into .tmp/django-src (pip download).
# Settings: python/tests/django/djangosuite/. Per run it prints how many
# statements the worker ran and why the others stayed on the ORM (mostly
# "inside a transaction": TestCase runs each test in atomic()).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${MOLT_TEST_JOBS:-2}
SRC="$ROOT/.tmp/django-src"
PY="$ROOT/.venv/bin/python"
APPS="basic queries lookup aggregation annotations expressions expressions_window db_functions
ordering select_related prefetch_related timezones model_fields async dates datetimes test_utils"
: "${MOLT_TEST_DSN:?run under scripts/with_pg.sh}"
mkdir -p "$SRC"

pin() { sed -n 's/^Django==\([0-9.]*\).*/\1/p' "$1" | head -n 1; }
V52=$(pin "$ROOT/python/requirements-dev.txt")
V42=$(pin "$ROOT/python/requirements-django42.txt")

tests_of() {   # VERSION: the unpacked tests/ directory
    local v=$1
    if [ ! -d "$SRC/django-$v/tests" ]; then
        [ -f "$SRC/django-$v.tar.gz" ] ||
            "$PY" -m pip download -q --no-binary :all: --no-deps "Django==$v" -d "$SRC" || return 1
        tar -xzf "$SRC/django-$v.tar.gz" -C "$SRC" || return 1
    fi
    echo "$SRC/django-$v/tests"
}

# the lines that say how a run ended, failing tests sorted
outcome() { grep -E '^(Ran [0-9]+ tests?|OK|FAILED)|^(FAIL|ERROR): ' "$1" | sed 's/ in [0-9.]*s$//' | sort; }

status=0
versions=() tests_dirs=()
for version in "$V52" "$V42"; do
    tests=$(tests_of "$version") || { echo "FAILED: cannot get the Django $version sdist"; status=1; continue; }
    versions+=("$version") tests_dirs+=("$tests")
done

run_one() {   # TESTS_DIR VERSION VENDOR BACKEND: $SRC/VERSION-VENDOR-BACKEND.{log,decisions,secs}
    local tests=$1 version=$2 vendor=$3 backend=$4 extra="" apps=$APPS t0
    local run="$SRC/$version-$vendor-$backend"
    [ "$version" = "$V42" ] && extra="$ROOT/.tmp/django42:"
    [ "$vendor" = pg ] && apps="$APPS distinct_on_fields"
    rm -f "$run.decisions"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    (cd "$tests" && DJSUITE_BACKEND=$backend DJSUITE_RUN="${version//./_}_$backend" \
        MOLT_DECISIONS_LOG="$run.decisions" \
        PYTHONPATH="$extra$ROOT/python:$ROOT/python/tests/django/djangosuite" \
        "$PY" runtests.py --settings="settings_$vendor" --parallel 1 --noinput $apps) >"$run.log" 2>&1
    echo $(( $(date +%s) - t0 )) >"$run.secs"
}

# The runs, JOBS at a time, the longest first (PostgreSQL, the molt backends
# slowest): each has SQLite files of its own (settings_sqlite's mkdtemp) or
# PostgreSQL test databases of its own (DJSUITE_RUN in their names), so
# their outcomes are those of runs one after another.
running=0
for run in pg:molt pg:django sqlite:django sqlite:molt; do
    for i in "${!versions[@]}"; do
        if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
        run_one "${tests_dirs[$i]}" "${versions[$i]}" "${run%:*}" "${run#*:}" &
        running=$((running + 1))
    done
done
wait

for version in "${versions[@]}"; do
    for vendor in sqlite pg; do
        for backend in django molt; do
            log="$SRC/$version-$vendor-$backend.log"
            echo "Django $version $vendor $backend: $(outcome "$log" | grep -E '^(Ran|OK|FAILED)' | tr '\n' ' ')($(cat "$SRC/$version-$vendor-$backend.secs") s)"
        done
        decisions="$SRC/$version-$vendor-molt.decisions"
        if [ -f "$decisions" ]; then
            echo "  worker ran $(grep -c '^offloaded on' "$decisions") statements; stayed on the ORM:"
            grep -o 'ORM fallback on [a-z_]* ([^)]*' "$decisions" | sed 's/ORM fallback on [a-z_]* (//' |
                sort | uniq -c | sort -rn | head -n 5 | sed 's/^/    /'
        fi
        if ! diff <(outcome "$SRC/$version-$vendor-django.log") <(outcome "$SRC/$version-$vendor-molt.log") >/dev/null; then
            echo "FAILED: Django $version on $vendor ends otherwise with the molt backends:"
            diff <(outcome "$SRC/$version-$vendor-django.log") <(outcome "$SRC/$version-$vendor-molt.log") | head -n 40
            grep -E -A 25 '^(FAIL|ERROR): ' "$SRC/$version-$vendor-molt.log" | head -n 120
            status=1
        fi
        grep -qE '^Ran [1-9]' "$SRC/$version-$vendor-molt.log" || { echo "FAILED: no tests ran"; status=1; }
    done
done
[ "$status" = 0 ] && echo "django-suite: every run ends as with Django's own backends"
exit "$status"
