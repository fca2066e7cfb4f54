#!/usr/bin/env bash
# The C example of README.md ("Using the C library") the way a user meets
# it: extracted from the README, built against the library installed with
# `cmake --install` (what `make install PREFIX=...` runs) into a scratch
# prefix, compiled with -std=c11 and linked with plain `pkg-config --libs
# molt_db` (the shared library), then with `--static`, and run against the
# test server: it prints 42 and returns (the loop ends).
#
#   tests/readme_c_example.sh SOURCE_DIR BUILD_DIR    (exit 77: no server)
set -euo pipefail
root=$1
build=$2
if [ -z "${MOLT_TEST_DSN:-}" ]; then
    echo "MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(find "$tmp/prefix" -name molt_db.pc)
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir molt_db)

awk '/^## Using the C library/ { in_section = 1 }
     in_section && /^```c$/ { in_block = 1; next }
     in_block && /^```$/ { exit }
     in_block' "$root/README.md" >"$tmp/app.c"
grep -q '^int main' "$tmp/app.c" || { echo "no complete C example in README.md"; exit 1; }

cc=${CC:-cc}
flags=(-std=c11 -Wall -Wextra -Werror -pedantic)
# shellcheck disable=SC2046 # pkg-config's output is a list of words
"$cc" "${flags[@]}" "$tmp/app.c" $(pkg-config --cflags --libs molt_db) -o "$tmp/app"
# shellcheck disable=SC2046
"$cc" "${flags[@]}" "$tmp/app.c" \
    $(pkg-config --cflags molt_db) "$libdir/libmolt_db.a" \
    $(pkg-config --static --libs molt_db | sed 's/-lmolt_db//') -o "$tmp/app_static"

# ldd's output is read whole first: `ldd | grep -q` fails under pipefail when
# grep exits at its match and ldd, still writing, dies of SIGPIPE
app_deps=$(ldd "$tmp/app")
app_static_deps=$(ldd "$tmp/app_static")
grep -q 'libmolt_db\.so' <<<"$app_deps" || { echo "app is not linked to libmolt_db.so"; exit 1; }
if grep -q 'libmolt_db\.so' <<<"$app_static_deps"; then
    echo "app_static links libmolt_db.so"
    exit 1
fi

for app in app app_static; do
    # timeout: the example must close its connection so that uv_run returns
    out=$(LD_LIBRARY_PATH="$libdir" timeout 20 "$tmp/$app" "$MOLT_TEST_DSN")
    if [ "$out" != 42 ]; then
        echo "$app printed '$out', not 42"
        exit 1
    fi
done
# a connect error is reported and the program still ends
if LD_LIBRARY_PATH="$libdir" timeout 20 "$tmp/app" "postgresql://molt@127.0.0.1:1/x" 2>"$tmp/err"; then
    echo "app succeeded against a closed port"
    exit 1
fi
grep -q 'connect failed' "$tmp/err"
echo "README C example: built with pkg-config (shared and static), printed 42"
