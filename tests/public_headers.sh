#!/usr/bin/env bash
# Every public header (include/molt_db/*.h) but the libuv adapter's compiles
# alone as strict C11 with nothing but libc headers: -std=c11 -pedantic, no
# POSIX feature macro, warnings as errors, and uv.h is never among the
# headers it pulls in.
#
#   tests/public_headers.sh SOURCE_DIR C_COMPILER
set -euo pipefail
root=$1
cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
for h in "$root"/include/molt_db/*.h; do
    name=$(basename "$h")
    [ "$name" = loop_libuv.h ] && continue  # the one that includes uv.h
    # (a declaration after the include: an empty unit is not ISO C)
    printf '#include <molt_db/%s>\ntypedef int molt_db_header_check_;\n' "$name" >"$tmp/t.c"
    if ! "$cc" -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only \
            -I "$root/include" "$tmp/t.c" 2>"$tmp/err"; then
        echo "$name does not compile alone under -std=c11 -pedantic:"
        cat "$tmp/err"
        status=1
        continue
    fi
    if "$cc" -std=c11 -M -I "$root/include" "$tmp/t.c" | tr ' \\' '\n\n' |
            grep -E '(^|/)uv(\.h|/)' >/dev/null; then
        echo "$name includes libuv's headers"
        status=1
    fi
done
exit $status
