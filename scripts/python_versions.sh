#!/usr/bin/env bash
# The Python versions besides the .venv's (3.11) that the in-process clients
# and the C extension modules are tested on (scripts/test.sh's pyversions
# stage, docs/testing.md):
#
#   scripts/python_versions.sh find VERSION
#       prints the interpreter of VERSION (e.g. 3.13) that really runs: the
#       newest of `pyenv root`/versions/VERSION.*/bin/pythonVERSION, else
#       pythonVERSION on PATH (a pyenv shim that refuses does not count);
#       exit 1 when there is none.
#   scripts/python_versions.sh prepare VERSION PYTHON BUILD_DIR
#       under .tmp/pyversions/VERSION/:
#       venv/    a venv of PYTHON with the test requirements (the pins of
#                python/requirements-dev.txt, a subset: REQUIRED below),
#                reinstalled only when they or PYTHON change;
#       build/   molt_db_adapter._host and _rows built for PYTHON
#                (python/ext/ alone, -Werror, linking BUILD_DIR's host
#                library: nothing of the library is compiled again);
#       python/  the packages of python/ with those two modules
#                (make_overlay): the PYTHONPATH of the tests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# the packages the in-process suites import, pinned in requirements-dev.txt
# (test_rows_c.py imports molt_django_adapter, hence Django)
REQUIRED='pytest|msgpack|psycopg\[binary\]|pyarrow|Django'

runs_as() {   # PYTHON VERSION: PYTHON runs and is VERSION
    "$1" -c 'import sys; raise SystemExit(sys.argv[1] != "%d.%d" % sys.version_info[:2])' \
        "$2" >/dev/null 2>&1 </dev/null
}

find_python() {
    local ver=$1 root py
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for py in $(ls -d "$root/versions/$ver".*/bin/"python$ver" 2>/dev/null | sort -rV) \
              "$(command -v "python$ver" || true)"; do
        if [ -n "$py" ] && runs_as "$py" "$ver"; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

# make_overlay DEST EXT_DIR: DEST/ holds molt_db_adapter (python/'s modules
# with the extension modules of EXT_DIR), molt_sql and molt_django_adapter,
# all symlinks; scripts/test.sh's ASan run uses it too
make_overlay() {
    local dest=$1 ext=$2
    rm -rf "$dest" && mkdir -p "$dest/molt_db_adapter"
    ln -s "$ROOT"/python/molt_db_adapter/*.py "$ROOT/python/molt_db_adapter/py.typed" \
        "$ext"/*.so "$dest/molt_db_adapter/"
    ln -s "$ROOT/python/molt_sql" "$ROOT/python/molt_django_adapter" "$dest/"
}

prepare() {
    local ver=$1 py=$2 build=$3 dir="$ROOT/.tmp/pyversions/$1" reqs sum
    mkdir -p "$dir"
    reqs=$(grep -E "^($REQUIRED)==" "$ROOT/python/requirements-dev.txt" | sed 's/[[:space:]]*#.*//')
    sum=$(printf '%s\n%s\n' "$py" "$reqs" | sha256sum | awk '{print $1}')
    if [ "$(cat "$dir/venv/.molt-requirements.sha256" 2>/dev/null || true)" != "$sum" ]; then
        echo "venv: $py with $(echo $reqs)"
        rm -rf "$dir/venv"
        "$py" -m venv "$dir/venv"
        # shellcheck disable=SC2086
        "$dir/venv/bin/python" -m pip install -q --disable-pip-version-check --no-input \
            $reqs </dev/null
        echo "$sum" >"$dir/venv/.molt-requirements.sha256"
    fi
    cmake -S "$ROOT/python/ext" -B "$dir/build" -DMOLT_DB_BUILD_DIR="$build" \
        -DPython3_EXECUTABLE="$dir/venv/bin/python" -DMOLT_DB_WERROR=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$dir/build" -j "${JOBS:-2}"
    make_overlay "$dir/python" "$dir/build/python/molt_db_adapter"
}

case "${1:-}" in
    find) find_python "$2" ;;
    prepare) prepare "$2" "$3" "$4" ;;
    overlay) make_overlay "$2" "$3" ;;
    *) echo "usage: $0 find VERSION | prepare VERSION PYTHON BUILD_DIR | overlay DEST EXT_DIR" >&2
       exit 2 ;;
esac
