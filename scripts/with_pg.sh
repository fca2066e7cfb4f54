#!/usr/bin/env bash
# scripts/with_pg.sh CMD [ARGS...]
#
# Runs CMD against a throwaway PostgreSQL 15 server and stops the server
# afterwards (also when CMD fails or we get INT/TERM). Exits with CMD's status.
#
# If MOLT_TEST_DSN is already set, no server is started: CMD runs against
# the server the caller points at (the other MOLT_TEST_* are then the
# caller's business).
#
# The server: a fresh cluster in a mktemp -d directory, owned by an
# unprivileged OS user (the `postgres` system user when we are root, created
# if absent; else the invoking user), a free TCP port on loopback, a private
# Unix socket directory, durability off (fsync, synchronous_commit,
# full_page_writes), TLS with a CA and certificates generated right now.
# Extra postgresql.conf lines can be given in MOLT_PG_CONF (newline-separated).
#
# Roles (all can use database molt_test):
#   molt        superuser, trust (socket, 127.0.0.1, ::1)
#   molt_md5    password stored as MD5, pg_hba md5
#   molt_scram  password stored as SCRAM-SHA-256, pg_hba scram-sha-256
#   molt_cert   hostssl + cert: a client certificate with CN=molt_cert
#   molt_app    trust; no superuser: pg_read_all_data, pg_write_all_data
#
# Exported to CMD:
#   MOLT_TEST_DSN          postgresql://molt@127.0.0.1:PORT/molt_test
#   MOLT_TEST_DSN_APP      postgresql://molt_app@127.0.0.1:PORT/molt_test: no
#                          superuser; pg_read_all_data, pg_write_all_data
#   MOLT_TEST_DSN_SOCKET   host=SOCKDIR port=PORT user=molt dbname=molt_test
#   MOLT_TEST_DSN_MD5      postgresql://molt_md5:PASSWORD@127.0.0.1:PORT/molt_test
#   MOLT_TEST_DSN_SCRAM    postgresql://molt_scram:PASSWORD@127.0.0.1:PORT/molt_test
#   MOLT_TEST_CERT_DSN     host=localhost ... user=molt_cert sslmode=verify-full
#                          sslrootcert=... sslcert=... sslkey=...
#   MOLT_TEST_SSLROOTCERT  the CA certificate (PEM)
#   MOLT_TEST_SSLCERT, MOLT_TEST_SSLKEY   the molt_cert client cert and key (0600)
#   MOLT_TEST_PGHOST       the Unix socket directory
#   MOLT_TEST_PGPORT       the TCP port (also the socket's port)
#   MOLT_TEST_PGDATA       the data directory
#   MOLT_TEST_PGBIN        the PostgreSQL bin directory (psql, pg_ctl, pgbench)
#   MOLT_TEST_PGLOG        the server log file
#   MOLT_TEST_PG_OSUSER    the OS user that owns the server
#   MOLT_TEST_PGCTL        scripts/pg_ctl_test.sh: pg_ctl as that user with -D
#                          set, e.g. "$MOLT_TEST_PGCTL" restart -m fast
#   MOLT_TEST_BOUNCER_DSN  postgresql://molt@127.0.0.1:BPORT/molt_test: PgBouncer
#                          in transaction mode with 2 server connections (only
#                          when pgbouncer is installed and started)
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

if [ -n "${MOLT_TEST_DSN:-}" ]; then
    exec "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORIG_PWD=$PWD

# ---- PostgreSQL binaries ----
PGBIN=${MOLT_PG_BIN:-}
if [ -z "$PGBIN" ]; then
    if [ -x /usr/lib/postgresql/15/bin/postgres ]; then
        PGBIN=/usr/lib/postgresql/15/bin
    elif command -v pg_config >/dev/null 2>&1; then
        PGBIN=$(pg_config --bindir)
    fi
fi
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
    echo "with_pg: PostgreSQL 15 server binaries not found (run scripts/deps.sh, or set MOLT_PG_BIN)" >&2
    exit 1
fi
PSQL="$PGBIN/psql"
[ -x "$PSQL" ] || PSQL=psql

# ---- the OS user that owns the server ----
if [ "$(id -u)" -eq 0 ]; then
    OSUSER=postgres
    if ! id "$OSUSER" >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash \
                --user-group "$OSUSER"
    fi
    as_pg() { runuser -u "$OSUSER" -- "$@"; }
else
    OSUSER=$(id -un)
    as_pg() { "$@"; }
fi

# ---- layout: TMP (invoking user, 0755) holds everything ----
#   data/    the cluster (server user, 0700)
#   sock/    Unix socket directory (server user)
#   server/  server key+cert and the CA cert (server user, 0700)
#   client/  CA cert, client key+cert (invoking user, 0700; key 0600)
#   ca/      the CA key (invoking user), removed with TMP
#   server.log
# /tmp by default: the server user must be able to traverse the path, and
# the socket path must stay short (sun_path is 108 bytes).
TMP=$(mktemp -d "${MOLT_PG_TMPDIR:-/tmp}/molt-pg.XXXXXX")
chmod 0755 "$TMP"
DATA="$TMP/data"
SOCK="$TMP/sock"
LOG="$TMP/server.log"
STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$STARTED" = 1 ] || [ -f "$DATA/postmaster.pid" ]; then
        (cd / && as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m immediate -w -t 30) >/dev/null 2>&1 || true
        # belt and braces: a postmaster that survived pg_ctl (or one a test
        # restarted by hand) must not outlive the run
        if [ -f "$DATA/postmaster.pid" ]; then
            local pid
            pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null || true
                sleep 0.5
            fi
        fi
    fi
    if [ -s "$TMP/bouncer/pgbouncer.pid" ]; then
        kill -TERM "$(cat "$TMP/bouncer/pgbouncer.pid")" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
CHILD=""
on_signal() {
    # pass the signal on to CMD (run in the background so that we get here
    # at once), give it a moment, then clean up
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$CHILD" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$CHILD" 2>/dev/null || true
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

mkdir -p "$DATA" "$SOCK" "$TMP/server" "$TMP/client" "$TMP/ca"
chmod 0700 "$DATA" "$TMP/server" "$TMP/client" "$TMP/ca"
: >"$LOG"

# ---- throwaway CA, server and client certificates ----
# The server certificate names DNS:localhost only (CN=localhost and a
# subjectAltName with just that name, no IP address): a verify-full
# connection to host=localhost passes, one to host=127.0.0.1 fails with a
# hostname mismatch. Tests rely on both outcomes.
gen_certs() {
    local d=$TMP/ca
    cat >"$d/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = molt-db test CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    cat >"$d/server.ext" <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
authorityKeyIdentifier = keyid
EOF
    cat >"$d/client.ext" <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3 \
        -config "$d/ca.cnf" -keyout "$d/ca.key" -out "$d/ca.crt"
    openssl req -new -nodes -newkey rsa:2048 -sha256 -subj "/CN=localhost" \
        -keyout "$d/server.key" -out "$d/server.csr"
    openssl x509 -req -sha256 -days 3 -in "$d/server.csr" -CA "$d/ca.crt" \
        -CAkey "$d/ca.key" -set_serial 2 -extfile "$d/server.ext" -out "$d/server.crt"
    openssl req -new -nodes -newkey rsa:2048 -sha256 -subj "/CN=molt_cert" \
        -keyout "$d/client.key" -out "$d/client.csr"
    openssl x509 -req -sha256 -days 3 -in "$d/client.csr" -CA "$d/ca.crt" \
        -CAkey "$d/ca.key" -set_serial 3 -extfile "$d/client.ext" -out "$d/client.crt"
}
if ! out=$(gen_certs 2>&1); then
    printf '%s\n' "$out" >&2
    echo "with_pg: certificate generation failed" >&2
    exit 1
fi
cp "$TMP/ca/ca.crt" "$TMP/ca/server.crt" "$TMP/ca/server.key" "$TMP/server/"
cp "$TMP/ca/ca.crt" "$TMP/ca/client.crt" "$TMP/ca/client.key" "$TMP/client/"
chmod 0600 "$TMP/server/server.key" "$TMP/client/client.key"
chmod 0644 "$TMP/server/server.crt" "$TMP/server/ca.crt" "$TMP/client/client.crt" "$TMP/client/ca.crt"

if [ "$(id -u)" -eq 0 ]; then
    chown -R "$OSUSER:" "$DATA" "$SOCK" "$TMP/server" "$LOG"
fi

# ---- initdb ----
cd "$TMP"   # the server user must be able to stat the working directory
if ! out=$(as_pg "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 \
               --no-locale --nosync 2>&1); then
    printf '%s\n' "$out" >&2
    echo "with_pg: initdb failed" >&2
    exit 1
fi

free_port() {
    if ! command -v python3 >/dev/null 2>&1; then
        # no python3: random ports until ss (iproute2) shows one unused
        local p
        while :; do
            p=$((20000 + RANDOM % 40000))
            ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
        done
    fi
    python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# ::1 too when this machine has IPv6 loopback, so "localhost" works whichever
# address a client tries first.
has_ipv6_lo() {
    if ! command -v python3 >/dev/null 2>&1; then
        ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'
        return
    fi
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("::1", int(sys.argv[1])))
s.close()
EOF
}

# pg_hba.conf: first matching line wins, so the specific roles come first.
cat >"$DATA/pg_hba.conf" <<'EOF'
# molt-db throwaway test server (scripts/with_pg.sh). First match wins.
# TYPE   DATABASE  USER        ADDRESS        METHOD
local    all       molt_md5                   md5
local    all       molt_scram                 scram-sha-256
local    all       molt_cert                  reject
local    all       all                        trust
hostssl  all       molt_cert   127.0.0.1/32   cert
hostssl  all       molt_cert   ::1/128        cert
host     all       molt_cert   0.0.0.0/0      reject
host     all       molt_cert   ::/0           reject
host     all       molt_md5    127.0.0.1/32   md5
host     all       molt_md5    ::1/128        md5
host     all       molt_scram  127.0.0.1/32   scram-sha-256
host     all       molt_scram  ::1/128        scram-sha-256
host     all       molt_app    127.0.0.1/32   trust
host     all       molt_app    ::1/128        trust
host     all       molt        127.0.0.1/32   trust
host     all       molt        ::1/128        trust
host     all       postgres    127.0.0.1/32   trust
host     all       postgres    ::1/128        trust
EOF

BASE_CONF=$(cat "$DATA/postgresql.conf")
start_server() {
    local port=$1 listen=127.0.0.1
    if has_ipv6_lo "$port"; then listen="127.0.0.1,::1"; fi
    {
        printf '%s\n' "$BASE_CONF"
        cat <<EOF

# ---- scripts/with_pg.sh ----
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$SOCK'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = '$TMP/server/server.crt'
ssl_key_file = '$TMP/server/server.key'
ssl_ca_file = '$TMP/server/ca.crt'
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
        if [ -n "${MOLT_PG_CONF:-}" ]; then
            printf '\n# ---- MOLT_PG_CONF ----\n%s\n' "$MOLT_PG_CONF"
        fi
    } >"$DATA/postgresql.conf"
    [ "$(id -u)" -eq 0 ] && chown "$OSUSER:" "$DATA/postgresql.conf"
    as_pg "$PGBIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null 2>&1
}

PORT=""
for attempt in 1 2 3; do
    PORT=$(free_port)
    STARTED=1
    if start_server "$PORT"; then
        break
    fi
    # a port grabbed between our probe and the bind: try another one
    if [ "$attempt" -lt 3 ] && grep -q "could not bind\|could not create any TCP/IP sockets" "$LOG"; then
        (as_pg "$PGBIN/pg_ctl" stop -D "$DATA" -m immediate -w) >/dev/null 2>&1 || true
        continue
    fi
    echo "with_pg: the server did not start; tail of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
done

# ---- roles and database ----
PW_MD5=molt_md5_pw
PW_SCRAM=molt_scram_pw
if ! out=$("$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres 2>&1 <<EOF
CREATE ROLE molt SUPERUSER LOGIN;
SET password_encryption = 'md5';
CREATE ROLE molt_md5 LOGIN PASSWORD '$PW_MD5';
SET password_encryption = 'scram-sha-256';
CREATE ROLE molt_scram LOGIN PASSWORD '$PW_SCRAM';
CREATE ROLE molt_cert LOGIN;
CREATE ROLE molt_app LOGIN;
GRANT pg_read_all_data, pg_write_all_data TO molt_app;
CREATE DATABASE molt_test OWNER molt;
GRANT ALL ON DATABASE molt_test TO molt_md5, molt_scram, molt_cert, molt_app;
\connect molt_test
GRANT ALL ON SCHEMA public TO molt_md5, molt_scram, molt_cert, molt_app;
EOF
); then
    printf '%s\n' "$out" >&2
    echo "with_pg: creating roles failed; tail of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
fi

C=$TMP/client
export MOLT_TEST_DSN="postgresql://molt@127.0.0.1:$PORT/molt_test"
export MOLT_TEST_DSN_APP="postgresql://molt_app@127.0.0.1:$PORT/molt_test"
export MOLT_TEST_DSN_SOCKET="host=$SOCK port=$PORT user=molt dbname=molt_test"
export MOLT_TEST_DSN_MD5="postgresql://molt_md5:$PW_MD5@127.0.0.1:$PORT/molt_test"
export MOLT_TEST_DSN_SCRAM="postgresql://molt_scram:$PW_SCRAM@127.0.0.1:$PORT/molt_test"
export MOLT_TEST_CERT_DSN="host=localhost port=$PORT user=molt_cert dbname=molt_test sslmode=verify-full sslrootcert=$C/ca.crt sslcert=$C/client.crt sslkey=$C/client.key"
export MOLT_TEST_SSLROOTCERT="$C/ca.crt"
export MOLT_TEST_SSLCERT="$C/client.crt"
export MOLT_TEST_SSLKEY="$C/client.key"
export MOLT_TEST_PGHOST="$SOCK"
export MOLT_TEST_PGPORT="$PORT"
export MOLT_TEST_PGDATA="$DATA"
export MOLT_TEST_PGBIN="$PGBIN"
export MOLT_TEST_PGLOG="$LOG"
export MOLT_TEST_PG_OSUSER="$OSUSER"
export MOLT_TEST_PGCTL="$ROOT/scripts/pg_ctl_test.sh"

# ---- PgBouncer in transaction mode in front of the server (if installed) ----
# Two server connections for any number of clients, so consecutive
# transactions of one client land on different server connections: what
# breaks a client that keeps anything between two Syncs.
BOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ -x "$BOUNCER" ]; then
    B=$TMP/bouncer
    mkdir -p "$B"
    BPORT=$(free_port)
    printf '"molt" ""\n' >"$B/userlist.txt"
    cat >"$B/pgbouncer.ini" <<EOF
[databases]
molt_test = host=127.0.0.1 port=$PORT dbname=molt_test user=molt
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BPORT
unix_socket_dir = $B
auth_type = trust
auth_file = $B/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 500
server_reset_query =
logfile = $B/pgbouncer.log
pidfile = $B/pgbouncer.pid
EOF
    [ "$(id -u)" -eq 0 ] && chown -R "$OSUSER:" "$B"
    if (cd "$B" && as_pg "$BOUNCER" -d -q "$B/pgbouncer.ini") >/dev/null 2>&1; then
        for _ in $(seq 1 50); do
            [ -s "$B/pgbouncer.pid" ] && break
            sleep 0.1
        done
        export MOLT_TEST_BOUNCER_DSN="postgresql://molt@127.0.0.1:$BPORT/molt_test"
    else
        echo "with_pg: pgbouncer did not start (tests that need it will skip); tail of its log:" >&2
        tail -n 10 "$B/pgbouncer.log" >&2 2>/dev/null || true
    fi
fi

cd "$ORIG_PWD"
# In the background plus wait, so a signal reaches our trap at once; <&0
# keeps CMD's stdin (a background job would otherwise get /dev/null).
"$@" <&0 &
CHILD=$!
CMD_STATUS=0
wait "$CHILD" || CMD_STATUS=$?
exit "$CMD_STATUS"
