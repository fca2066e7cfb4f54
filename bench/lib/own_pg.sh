#!/usr/bin/env bash
# Fallback for scripts/with_pg.sh, used only when that script is absent or
# BENCH_OWN_PG=1: start a throwaway PostgreSQL 15 in a temp dir (as user
# postgres when run as root), export the same variables with_pg.sh exports,
# run "$@", then stop and delete the server.
#   MOLT_TEST_DSN, MOLT_TEST_PGHOST (socket dir), MOLT_TEST_PGPORT, MOLT_TEST_PGBIN
# Extra postgresql.conf lines come from MOLT_PG_CONF (newline-separated).
set -euo pipefail
PGBIN=${MOLT_TEST_PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/postgres" ] || PGBIN=$(dirname "$(command -v postgres || command -v pg_ctl || echo /nonexistent/x)")
[ -x "$PGBIN/initdb" ] || { echo "own_pg.sh: no PostgreSQL binaries found" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir=$(mktemp -d /tmp/molt-bench-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
port=${MOLT_BENCH_PGPORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}

cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_pg "$PGBIN/initdb" -D "$dir/data" -U molt --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
  || as_pg "$PGBIN/initdb" -D "$dir/data" -U molt --auth=trust -E UTF8 --locale=C >/dev/null
{
  echo "listen_addresses = '${MOLT_BENCH_LISTEN:-127.0.0.1}'"
  echo "port = $port"
  echo "unix_socket_directories = '$dir'"
  printf '%s\n' "${MOLT_PG_CONF:-}"
} >> "$dir/data/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
as_pg "$PGBIN/createdb" -h "$dir" -p "$port" -U molt molt_test

export MOLT_TEST_DSN="postgresql://molt@127.0.0.1:$port/molt_test"
export MOLT_TEST_PGHOST="$dir"
export MOLT_TEST_PGPORT="$port"
export MOLT_TEST_PGBIN="$PGBIN"
"$@"
