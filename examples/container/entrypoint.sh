#!/bin/sh
# Container entrypoint for molt_worker (examples/container/README.md).
#
# Settings come from MOLT_WORKER_* variables (every worker setting: the name
# in capitals, e.g. MOLT_WORKER_MAX_INFLIGHT=100), databases from MOLT_DB_*
# variables or a mounted config file:
#   MOLT_DB_<ALIAS>=DSN            one database (alias in lower case)
#   MOLT_DB_WRITE=alias1,alias2    the aliases db_exec may write to
#   MOLT_WORKER_CONFIG=/etc/molt/worker.conf   read this file as well
# Extra arguments are passed to molt_worker as they are.
#
# The worker runs as PID 1 (exec), so `docker stop` (SIGTERM) drains
# requests in flight and `docker kill -s HUP` reloads the settings.
set -eu

: "${MOLT_WORKER_SOCKET:=/run/molt/worker.sock}"
export MOLT_WORKER_SOCKET
mkdir -p "$(dirname "$MOLT_WORKER_SOCKET")"

set -- "$@"
if [ -n "${MOLT_WORKER_CONFIG:-}" ]; then
    set -- --config "$MOLT_WORKER_CONFIG" "$@"
fi
# MOLT_DB_<ALIAS>=DSN: the DSN goes into a file of mode 0600, not onto the
# command line, where any process in the container could read a password
dbconf=$(mktemp "${TMPDIR:-/tmp}/molt-dbs.XXXXXX")
chmod 600 "$dbconf"
env | sed -n 's/^MOLT_DB_\([A-Za-z0-9_]*\)=\(.*\)$/\1 \2/p' | while read -r name dsn; do
    [ "$name" = WRITE ] && continue
    alias=$(printf '%s' "$name" | tr 'A-Z' 'a-z')
    printf '[db %s]\ndsn = %s\n' "$alias" "$dsn" >>"$dbconf"
done
if [ -s "$dbconf" ]; then
    set -- --config "$dbconf" "$@"
fi
for alias in $(printf '%s' "${MOLT_DB_WRITE:-}" | tr ',' ' '); do
    set -- --allow-write "$alias" "$@"
done
# the worker read the file at start and reads it again on SIGHUP: it stays,
# in a directory only this user can read
exec molt_worker "$@"
