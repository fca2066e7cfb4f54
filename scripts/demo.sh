#!/usr/bin/env bash
# make demo: build everything, then run python/demo/worker_demo.py, which
# creates a SQLite demo database (.tmp/demo/items.db, 200k items), starts
# build/molt_worker on it and runs a few real queries from Python in json,
# msgpack and Arrow IPC, printing results and timings. Then
# examples/django_demo/run_demo.py: the Django demo project on SQLite
# (.tmp/django_demo/demo.db, 120k items), `manage.py molt_worker` and
# `manage.py runserver` on a free loopback port; it prints the URLs and a
# sample response of /baseline/api/items and /offload/api/items, then stops both.
#
#   DEMO_ROWS=N          rows of the demo table (default 200000; only when it is created)
#   DEMO_DB=PATH         where the demo database lives
#   DEMO_DJANGO_ITEMS=N  items of the Django demo (default 120000; only when created)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh                 # Debian packages and .venv (msgpack, pyarrow)
make --no-print-directory build      # build/molt_worker and the library

args=(--worker "$ROOT/build/molt_worker" --rows "${DEMO_ROWS:-200000}")
[ -n "${DEMO_DB:-}" ] && args+=(--db "$DEMO_DB")
"$ROOT/.venv/bin/python" python/demo/worker_demo.py "${args[@]}"
# Django comes from python/requirements-dev.txt, installed by scripts/deps.sh
exec "$ROOT/.venv/bin/python" examples/django_demo/run_demo.py --items "${DEMO_DJANGO_ITEMS:-120000}"
