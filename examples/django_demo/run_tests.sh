#!/usr/bin/env bash
# The demo project's Django tests (catalog/tests: baseline/offload parity,
# @molt_offload status mapping, manage.py molt_worker) on SQLite and, when
# MOLT_TEST_DSN is set (scripts/with_pg.sh), PostgreSQL; USE_TZ on and off.
# Needs build/molt_worker and the .venv with Django (scripts/deps.sh).
#
#   bash examples/django_demo/run_tests.sh [TEST_LABEL...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/molt-django-demo.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
labels=("${@:-catalog}")

fail=0
run() {   # NAME ENV...: its output in $TMP/NAME.out, a failure in $TMP/NAME.failed
    local name=$1; shift
    { echo "== django_demo tests: $name"
      if ! env "$@" MOLT_DEMO_TMP="$TMP/$name" "$PY" "$HERE/manage.py" test --noinput -v 1 "${labels[@]}"; then
          echo "== FAILED: $name"
          touch "$TMP/$name.failed"
      fi
    } >"$TMP/$name.out" 2>&1
}
# A SQLite configuration beside a PostgreSQL one (each its own files,
# socket and worker; the PostgreSQL ones one after the other: their tests
# look for their statements in pg_stat_activity)
pair() {   # USE_TZ NAME
    run "sqlite-$2" MOLT_DEMO_USE_TZ="$1" MOLT_DEMO_SQLITE="$TMP/sqlite-$2/demo.db" &
    if [ -n "${MOLT_TEST_DSN:-}" ]; then
        run "pg-$2" MOLT_DEMO_USE_TZ="$1" MOLT_DEMO_PG_DSN="$MOLT_TEST_DSN"
    fi
    wait
}
mkdir -p "$TMP"/{sqlite-tz,sqlite-notz,pg-tz,pg-notz}
pair 1 tz
pair 0 notz
for name in sqlite-tz sqlite-notz pg-tz pg-notz; do
    if [ -f "$TMP/$name.out" ]; then cat "$TMP/$name.out"; fi
    if [ -e "$TMP/$name.failed" ]; then fail=1; fi
done
if [ -z "${MOLT_TEST_DSN:-}" ]; then
    echo "== django_demo tests: PostgreSQL skipped (MOLT_TEST_DSN not set; run under scripts/with_pg.sh)"
fi
exit $fail
