#!/usr/bin/env bash
# libmolt_db.so exports exactly the functions declared in the public headers
# (include/molt_db/*.h, each marked MOLT_DB_API): no internal molt_db__
# function, and none of the declared ones missing.
#
#   tests/exported_symbols.sh SOURCE_DIR LIBMOLT_DB_SO C_COMPILER
set -euo pipefail
root=$1
lib=$2
cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '{ print $3 }' | sort -u >"$tmp/exported"

# Function names declared in the headers: comments stripped by the compiler
# (-fpreprocessed keeps the rest as written), then every `molt_db_name(`.
for h in "$root"/include/molt_db/*.h; do
    [ "$(basename "$h")" = export.h ] && continue  # macros only
    [ "$(basename "$h")" = host.h ] && continue    # libmolt_db_host.so's
    "$cc" -fpreprocessed -dD -E -P "$h"
done | grep -o '\bmolt_db_[a-z0-9_]*[[:space:]]*(' | tr -d ' \t(' | sort -u >"$tmp/declared"

status=0
if grep '^molt_db__' "$tmp/exported"; then
    echo "^ internal molt_db__ functions exported by $lib"
    status=1
fi
if comm -23 "$tmp/declared" "$tmp/exported" | grep .; then
    echo "^ declared in include/molt_db/ but not exported (MOLT_DB_API missing?)"
    status=1
fi
if comm -13 "$tmp/declared" "$tmp/exported" | grep .; then
    echo "^ exported but not declared in include/molt_db/"
    status=1
fi
echo "$(wc -l <"$tmp/exported") symbols exported, $(wc -l <"$tmp/declared") functions declared"
exit $status
