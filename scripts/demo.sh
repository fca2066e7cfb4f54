#!/usr/bin/env bash
# make demo [DB=postgres]: build molt_worker alone (build-demo/: no tests, no
# fuzz targets), then
#  1. python/demo/worker_demo.py: the worker behind the public Python client
#     (MoltClient) on a small shop table: queries in json, msgpack and Arrow,
#     a streamed read, a transaction that fails and changes nothing, a write
#     and its undo. On SQLite (.tmp/demo/items.db) by default; DB=postgres
#     runs it on a throwaway PostgreSQL 15 (scripts/with_pg.sh, as the tests
#     do) as a role without superuser. It leaves the table as it found it.
#  2. examples/django_demo/run_demo.py: the Django demo project on SQLite
#     (.tmp/django_demo/demo.db), `manage.py molt_worker` and `manage.py
#     runserver` on a free loopback port; prints the URLs and a sample
#     response of /baseline/api/items and /offload/api/items, then stops both.
#
#   DEMO_ROWS=N          rows of the demo table (default 200000; only when it is created)
#   DEMO_DJANGO_ITEMS=N  items of the Django demo (default 120000; only when created)
#   DEMO_DB_KIND         sqlite (default) or postgres (what make's DB= sets)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
KIND=${DEMO_DB_KIND:-sqlite}
JOBS=${JOBS:-2}

case "$KIND" in
    sqlite) bash scripts/deps.sh --demo ;;
    postgres) bash scripts/deps.sh --demo --postgres ;;
    *) echo "make demo: DB must be sqlite or postgres, not $KIND" >&2; exit 2 ;;
esac

echo "building molt_worker (build-demo/) ..."
mkdir -p .tmp
log=.tmp/demo-build.log
if ! { cmake -S . -B build-demo -DMOLT_DB_TESTS=OFF -DCMAKE_BUILD_TYPE=Release &&
       cmake --build build-demo -j "$JOBS" --target molt_worker; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "make demo: the build failed (whole log: $log)" >&2
    exit 1
fi

# the client runs `molt_worker`, which MOLT_WORKER_BIN names (worker_path.py);
# the Django demo's settings read it too
export MOLT_WORKER_BIN="$ROOT/build-demo/molt_worker"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
PY="$ROOT/.venv/bin/python"
rows=${DEMO_ROWS:-200000}

if [ "$KIND" = postgres ]; then
    # molt_app: the harness's role without superuser (the worker refuses one)
    bash scripts/with_pg.sh bash -c '"$1" python/demo/worker_demo.py --rows "$2" --dsn "$MOLT_TEST_DSN_APP"' \
        _ "$PY" "$rows"
else
    "$PY" python/demo/worker_demo.py --rows "$rows"
fi
# Django comes from python/requirements-dev.txt, installed by scripts/deps.sh
exec "$PY" examples/django_demo/run_demo.py --items "${DEMO_DJANGO_ITEMS:-120000}"
