#!/usr/bin/env bash
# A worker built without Django's SQLite functions (CMake option
# MOLT_WORKER_DJANGO_SQLITE=OFF): it builds in a build directory of its own
# (BUILD_DIR/worker-without-django, kept for the next run), references no
# PCRE2 symbol, serves SQLite (test_worker_core of that build: requests
# through the core on a real file), and refuses at start an alias that asks
# for the functions, saying why.
#
#   tests/worker_without_django.sh SOURCE_DIR BUILD_DIR BUILD_TYPE
set -euo pipefail
root=$1
dir=$2/worker-without-django
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake -S "$root" -B "$dir" -DMOLT_WORKER_DJANGO_SQLITE=OFF -DMOLT_DB_WERROR=ON \
      -DCMAKE_BUILD_TYPE="$3" >/dev/null
cmake --build "$dir" -j 2 --target molt_worker test_worker_core >/dev/null

if nm "$dir/molt_worker" | grep -q pcre2_; then
    echo "molt_worker references PCRE2:"; nm "$dir/molt_worker" | grep pcre2_ | head
    exit 1
fi
if nm "$dir/molt_worker" | grep -q django_date_extract; then
    echo "molt_worker holds Django's SQLite functions"
    exit 1
fi

"$dir/tests/test_worker_core"

rc=0
"$dir/molt_worker" --socket "$tmp/w.sock" --db "app=sqlite://$tmp/app.db" \
    --pool app:sqlite_django_functions=true 2>"$tmp/err" || rc=$?
cat "$tmp/err"
[ "$rc" = 1 ] || { echo "exit code $rc, want 1"; exit 1; }
grep -q "alias app: sqlite_django_functions is set, but this molt_worker was built without" "$tmp/err"
[ ! -e "$tmp/w.sock" ] || { echo "it listened"; exit 1; }
echo "ok"
