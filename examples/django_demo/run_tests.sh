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
run() {   # NAME ENV...
    local name=$1; shift
    echo "== django_demo tests: $name"
    if ! env "$@" MOLT_DEMO_TMP="$TMP/$name" "$PY" "$HERE/manage.py" test --noinput -v 1 "${labels[@]}"; then
        echo "== FAILED: $name"
        fail=1
    fi
}
mkdir -p "$TMP"/{sqlite-tz,sqlite-notz,pg-tz,pg-notz}
run sqlite-tz MOLT_DEMO_USE_TZ=1 MOLT_DEMO_SQLITE="$TMP/sqlite-tz/demo.db"
run sqlite-notz MOLT_DEMO_USE_TZ=0 MOLT_DEMO_SQLITE="$TMP/sqlite-notz/demo.db"
if [ -n "${MOLT_TEST_DSN:-}" ]; then
    run pg-tz MOLT_DEMO_USE_TZ=1 MOLT_DEMO_PG_DSN="$MOLT_TEST_DSN"
    run pg-notz MOLT_DEMO_USE_TZ=0 MOLT_DEMO_PG_DSN="$MOLT_TEST_DSN"
else
    echo "== django_demo tests: PostgreSQL skipped (MOLT_TEST_DSN not set; run under scripts/with_pg.sh)"
fi
exit $fail
