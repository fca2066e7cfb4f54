#!/usr/bin/env bash
# bench/lib/netns.sh up STATUS_JSON | down
#
# The high-latency variant: a network namespace "moltbench" joined to the root
# namespace by a veth pair (root side 10.231.77.1/30, where the server listens;
# namespace side 10.231.77.2/30, where the clients run) with
# `tc qdisc add dev mbench0 root netem delay 1ms` on the root side, so every
# server->client packet waits 1 ms (+1 ms round trip). Only these two
# addresses are used. `up` writes {"ok": true|false, "error": ...} to
# STATUS_JSON and never fails: a machine without netem (no root, no
# CONFIG_NET_SCH_NETEM) gets the error recorded and the report says so.
set -u
NS=moltbench
HOST_IF=mbench0
NS_IF=mbench1
SERVER_ADDR=10.231.77.1
CLIENT_ADDR=10.231.77.2
DELAY=${BENCH_NETEM_DELAY:-1ms}

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

down() {
    ip link del "$HOST_IF" >/dev/null 2>&1 || true
    ip netns del "$NS" >/dev/null 2>&1 || true
}

up() {
    local status=$1 err
    down
    fail() {
        echo "{\"ok\": false, \"error\": $(json_str "$1")}" >"$status"
        down
        exit 0
    }
    err=$(ip netns add "$NS" 2>&1) || fail "ip netns add: $err"
    err=$(ip link add "$HOST_IF" type veth peer name "$NS_IF" 2>&1) || fail "ip link add veth: $err"
    err=$(ip link set "$NS_IF" netns "$NS" 2>&1) || fail "ip link set netns: $err"
    err=$(ip addr add "$SERVER_ADDR/30" dev "$HOST_IF" 2>&1 && ip link set "$HOST_IF" up 2>&1) \
        || fail "configuring $HOST_IF: $err"
    err=$(ip netns exec "$NS" ip addr add "$CLIENT_ADDR/30" dev "$NS_IF" 2>&1 \
          && ip netns exec "$NS" ip link set "$NS_IF" up 2>&1 \
          && ip netns exec "$NS" ip link set lo up 2>&1) || fail "configuring $NS_IF: $err"
    if [ "${BENCH_NETEM_NODELAY:-0}" != 1 ]; then
        err=$(tc qdisc add dev "$HOST_IF" root netem delay "$DELAY" 2>&1) \
            || fail "tc qdisc add dev $HOST_IF root netem delay $DELAY: $err (kernel $(uname -r), config: $(zcat /proc/config.gz 2>/dev/null | grep NET_SCH_NETEM || echo unknown))"
    fi
    cat >"$status" <<JSON
{"ok": true, "netns": "$NS", "server_addr": "$SERVER_ADDR", "client_addr": "$CLIENT_ADDR",
 "delay": "$DELAY", "setup": "veth $HOST_IF ($SERVER_ADDR, root ns, netem delay $DELAY on egress) <-> $NS_IF ($CLIENT_ADDR, netns $NS)",
 "nodelay_test": ${BENCH_NETEM_NODELAY:-0}}
JSON
}

case "${1:-}" in
    up) up "${2:?status file}" ;;
    down) down ;;
    *) echo "usage: $0 up STATUS_JSON | down" >&2; exit 2 ;;
esac
