#!/usr/bin/env bash
# pg_ctl for the throwaway test server of scripts/with_pg.sh, run as the OS
# user that owns it, with -D (and -l for start/restart) already given:
#
#   "$MOLT_TEST_PGCTL" restart -m fast
#   "$MOLT_TEST_PGCTL" stop -m immediate && "$MOLT_TEST_PGCTL" start
#
# Reads MOLT_TEST_PGBIN, MOLT_TEST_PGDATA, MOLT_TEST_PGLOG, MOLT_TEST_PG_OSUSER
# from the environment with_pg.sh exported. -w (wait) is the default.
set -euo pipefail

: "${MOLT_TEST_PGDATA:?not under scripts/with_pg.sh}"
: "${MOLT_TEST_PGBIN:?not under scripts/with_pg.sh}"
: "${MOLT_TEST_PG_OSUSER:?not under scripts/with_pg.sh}"

if [ "$#" -eq 0 ]; then
    echo "usage: $0 start|stop|restart|reload|status [pg_ctl options]" >&2
    exit 2
fi

args=("$1" -D "$MOLT_TEST_PGDATA" -w)
case "$1" in
    # the log file keeps the postmaster's stdout/stderr away from ours (a
    # server holding the test's output pipe would hang ctest)
    start|restart) args+=(-l "${MOLT_TEST_PGLOG:-/dev/null}") ;;
    reload|status|promote|logrotate|kill) args=("$1" -D "$MOLT_TEST_PGDATA") ;;
esac
shift

cd /   # the server user may not be able to read the caller's directory
if [ "$(id -un)" = "$MOLT_TEST_PG_OSUSER" ]; then
    exec "$MOLT_TEST_PGBIN/pg_ctl" "${args[@]}" "$@"
elif [ "$(id -u)" -eq 0 ]; then
    exec runuser -u "$MOLT_TEST_PG_OSUSER" -- "$MOLT_TEST_PGBIN/pg_ctl" "${args[@]}" "$@"
else
    echo "pg_ctl_test.sh: the server belongs to $MOLT_TEST_PG_OSUSER; run as that user or root" >&2
    exit 1
fi
