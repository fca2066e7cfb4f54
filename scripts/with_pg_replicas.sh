#!/usr/bin/env bash
# scripts/with_pg_replicas.sh CMD [ARGS...]
#
# Inside scripts/with_pg.sh: makes two hot-standby streaming replicas of its
# server (pg_basebackup -R, so they stream from it over its Unix socket),
# runs CMD, and stops them afterwards. Exits with CMD's status.
#
#   bash scripts/with_pg.sh bash scripts/with_pg_replicas.sh CMD...
#
# Nothing is started when MOLT_TEST_REPLICA1_DSN is already set (the caller
# brought its own). The replicas are copies of the primary: same roles,
# passwords, certificates and max_connections (a standby needs at least the
# primary's); each has its own port and socket directory. The primary gets
# pg_hba lines for replication by the postgres role (trust, local only).
#
# Exported to CMD, for N in 1 2:
#   MOLT_TEST_REPLICA<N>_DSN     postgresql://molt@127.0.0.1:PORT/molt_test
#   MOLT_TEST_REPLICA<N>_DSN_APP postgresql://molt_app@127.0.0.1:PORT/molt_test
#   MOLT_TEST_REPLICA<N>_PORT    its TCP port (also its socket's)
#   MOLT_TEST_REPLICA<N>_PGDATA  its data directory
#   MOLT_TEST_REPLICA<N>_PGLOG   its log file
# To stop or pause one (as the server's OS user, like MOLT_TEST_PGCTL):
#   MOLT_TEST_PGDATA=$MOLT_TEST_REPLICA1_PGDATA MOLT_TEST_PGLOG=$MOLT_TEST_REPLICA1_PGLOG \
#       "$MOLT_TEST_PGCTL" stop -m fast
#   psql ... -c 'select pg_wal_replay_pause()'   (on the replica)
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi
if [ -n "${MOLT_TEST_REPLICA1_DSN:-}" ]; then
    exec "$@"
fi
for v in MOLT_TEST_PGDATA MOLT_TEST_PGBIN MOLT_TEST_PGHOST MOLT_TEST_PGPORT MOLT_TEST_PG_OSUSER; do
    if [ -z "${!v:-}" ]; then
        echo "with_pg_replicas: $v is not set; run under scripts/with_pg.sh" >&2
        exit 2
    fi
done

PGBIN=$MOLT_TEST_PGBIN
OSUSER=$MOLT_TEST_PG_OSUSER
if [ "$(id -un)" = "$OSUSER" ]; then
    as_pg() { "$@"; }
else
    as_pg() { runuser -u "$OSUSER" -- "$@"; }
fi
PSQL="$PGBIN/psql"
ORIG_PWD=$PWD

TMP=$(mktemp -d "${MOLT_PG_TMPDIR:-/tmp}/molt-rep.XXXXXX")
chmod 0755 "$TMP"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for n in 1 2; do
        local d=$TMP/r$n/data
        if [ -f "$d/postmaster.pid" ]; then
            (cd / && as_pg "$PGBIN/pg_ctl" stop -D "$d" -m immediate -w -t 30) >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$TMP"
    exit "$rc"
}
CHILD=""
on_signal() {
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- the primary lets the postgres role replicate over its socket ----
if ! grep -q '^local *replication' "$MOLT_TEST_PGDATA/pg_hba.conf"; then
    printf 'local    replication  postgres              trust\n' |
        as_pg tee -a "$MOLT_TEST_PGDATA/pg_hba.conf" >/dev/null
    "$PSQL" -X -q -h "$MOLT_TEST_PGHOST" -p "$MOLT_TEST_PGPORT" -U postgres -d postgres \
        -c 'select pg_reload_conf()' >/dev/null
fi

cd "$TMP"
for n in 1 2; do
    R=$TMP/r$n
    mkdir -p "$R/sock"
    [ "$(id -u)" -eq 0 ] && chown -R "$OSUSER:" "$R"
    if ! out=$(as_pg "$PGBIN/pg_basebackup" -h "$MOLT_TEST_PGHOST" -p "$MOLT_TEST_PGPORT" \
                   -U postgres -D "$R/data" -R -X stream -c fast --no-sync 2>&1); then
        printf '%s\n' "$out" >&2
        echo "with_pg_replicas: pg_basebackup failed" >&2
        exit 1
    fi
    started=0
    for attempt in 1 2 3; do
        port=$(free_port)
        # later lines win: the copy's postgresql.conf carries the primary's port
        as_pg tee -a "$R/data/postgresql.conf" >/dev/null <<EOF

# ---- scripts/with_pg_replicas.sh ----
port = $port
unix_socket_directories = '$R/sock'
hot_standby = on
EOF
        if as_pg "$PGBIN/pg_ctl" start -D "$R/data" -l "$R/server.log" -w -t 60 >/dev/null 2>&1; then
            started=1
            break
        fi
    done
    if [ "$started" != 1 ]; then
        echo "with_pg_replicas: replica $n did not start; tail of its log:" >&2
        tail -n 30 "$R/server.log" >&2
        exit 1
    fi
    export "MOLT_TEST_REPLICA${n}_DSN=postgresql://molt@127.0.0.1:$port/molt_test"
    export "MOLT_TEST_REPLICA${n}_DSN_APP=postgresql://molt_app@127.0.0.1:$port/molt_test"
    export "MOLT_TEST_REPLICA${n}_PORT=$port"
    export "MOLT_TEST_REPLICA${n}_PGDATA=$R/data"
    export "MOLT_TEST_REPLICA${n}_PGLOG=$R/server.log"
done

# ---- both stream before CMD starts ----
for _ in $(seq 1 100); do
    streaming=$("$PSQL" -X -A -t -h "$MOLT_TEST_PGHOST" -p "$MOLT_TEST_PGPORT" -U postgres -d postgres \
                    -c "select count(*) from pg_stat_replication where state = 'streaming'" 2>/dev/null || echo 0)
    [ "$streaming" = 2 ] && break
    sleep 0.1
done
if [ "$streaming" != 2 ]; then
    echo "with_pg_replicas: the replicas do not stream (pg_stat_replication: $streaming)" >&2
    exit 1
fi

cd "$ORIG_PWD"
"$@" <&0 &
CHILD=$!
CMD_STATUS=0
wait "$CHILD" || CMD_STATUS=$?
exit "$CMD_STATUS"
