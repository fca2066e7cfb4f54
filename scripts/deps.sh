#!/usr/bin/env bash
# Installs what the build and the tests need, and nothing when it is there.
#
#   scripts/deps.sh            Debian packages, then the Python venv (.venv)
#   scripts/deps.sh --system   Debian packages only
#   scripts/deps.sh --build    only what building molt_worker and the library
#                              needs (make wheel): compiler, CMake, -dev packages
#   scripts/deps.sh --demo [--postgres]
#                              what make demo needs: --build's packages and the
#                              venv; PostgreSQL 15 only with --postgres (no clang,
#                              no PgBouncer: the demo builds no test binaries)
#
# Debian packages are checked with dpkg-query; when something is missing and
# we are root, `apt-get update` runs once and `apt-get install` installs only
# the missing packages. When not root it prints the command to run and exits 1.
#
# The Python side lives in .venv (created here, ignored by git); the pinned
# python/requirements-dev.txt is installed only when it changed since the last
# install (a sha256 stamp inside .venv).
#
# Quiet unless something is installed or fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

want_python=1
profile=all          # all | build | demo
want_postgres=1
for arg in "$@"; do
    case "$arg" in
        --system) want_python=0 ;;
        --build) profile=build want_python=0 want_postgres=0 ;;
        --demo) profile=demo want_postgres=0 ;;
        --postgres) want_postgres=1 ;;
        *) printf 'deps: unknown argument %s\n' "$arg" >&2; exit 2 ;;
    esac
done

say() { printf 'deps: %s\n' "$*" >&2; }

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# A package apt knows a candidate for (postgresql-contrib-15 is a separate
# package on some PGDG setups; on Debian 12 contrib ships in postgresql-15).
available() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

missing=()
need() { installed "$1" || missing+=("$1"); }

if ! command -v dpkg-query >/dev/null 2>&1; then
    say "dpkg-query not found: this script supports Debian/Ubuntu only."
    say "Install by hand: a C compiler, make, cmake, pkg-config, libuv, OpenSSL 3, SQLite 3,"
    say "msgpack-c, PostgreSQL 15 server+client, clang 14 with compiler-rt, python3 with venv,"
    say "PgBouncer (for the tests that run behind it)."
    exit 1
fi

# compiler + make: build-essential, or gcc and make already there
if ! installed build-essential; then
    if ! command -v gcc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
        missing+=(build-essential)
    fi
fi
# building the worker and the library
for p in cmake pkg-config libuv1-dev libssl-dev libsqlite3-dev libmsgpack-dev libpcre2-dev; do
    need "$p"
done
# a throwaway server (scripts/with_pg.sh: openssl makes its certificates)
if [ "$want_postgres" = 1 ]; then
    for p in postgresql-15 postgresql-client-15 openssl iproute2; do need "$p"; done
    if ! installed postgresql-contrib-15 && available postgresql-contrib-15; then
        missing+=(postgresql-contrib-15)
    fi
fi
# the tests: sqlite3 CLI, the fuzz build, the tests behind PgBouncer
if [ "$profile" = all ]; then
    for p in sqlite3 clang libclang-rt-14-dev pgbouncer; do need "$p"; done
fi
# runuser (util-linux) and useradd (passwd) are Essential/priority required
# on Debian; check the commands anyway so a trimmed image fails clearly.
command -v runuser >/dev/null 2>&1 || need util-linux
command -v useradd >/dev/null 2>&1 || need passwd

# python3 with a working venv (ensurepip is what Debian splits out into
# python3-venv; a pyenv or python.org build has it built in)
if [ "$want_python" = 1 ]; then
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3 python3-venv)
    elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [ "$(command -v python3)" = /usr/bin/python3 ]; then
            need python3-venv
        else
            say "$(command -v python3) cannot create a venv (no ensurepip); fix that Python or put /usr/bin first in PATH"
            exit 1
        fi
    fi
    # its headers, for the extension modules (python/ext/); Debian's python3
    # has them in python3-dev, a pyenv or python.org build ships them
    if command -v python3 >/dev/null 2>&1 && [ "$(command -v python3)" = /usr/bin/python3 ] &&
        ! python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
        need python3-dev
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}"
        say "install them with:"
        say "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
        exit 1
    fi
    say "installing: ${missing[*]}"
    log=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 </dev/null; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        say "apt-get failed"
        exit 1
    fi
    rm -f "$log"
fi

[ "$want_python" = 1 ] || exit 0

# ---- Python: project-local venv with pinned requirements ----
VENV="$ROOT/.venv"
REQ="$ROOT/python/requirements-dev.txt"
STAMP="$VENV/.molt-requirements.sha256"

if [ -d "$VENV" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    say "$VENV is broken (its Python moved?); recreating it"
    rm -rf "$VENV"
fi
if [ ! -d "$VENV" ]; then
    if ! out=$(python3 -m venv "$VENV" 2>&1); then
        printf '%s\n' "$out" >&2
        rm -rf "$VENV"
        say "python3 -m venv failed"
        exit 1
    fi
fi

[ -f "$REQ" ] || exit 0
sum=$(sha256sum "$REQ" | awk '{print $1}')
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$sum" ]; then
    say "installing python/requirements-dev.txt into .venv"
    if ! out=$("$VENV/bin/python" -m pip install -q --disable-pip-version-check \
                 --no-input -r "$REQ" 2>&1 </dev/null); then
        printf '%s\n' "$out" >&2
        say "pip install failed"
        exit 1
    fi
    printf '%s\n' "$sum" >"$STAMP"
fi

# ---- Django 4.2 LTS beside the venv's 5.2: the adapter's tests run under both ----
# (scripts/test.sh puts .tmp/django42 first on PYTHONPATH for the django42 stage;
# Django 4.2 shares the venv's asgiref and sqlparse)
DJ42_REQ="$ROOT/python/requirements-django42.txt"
DJ42="$ROOT/.tmp/django42"
DJ42_STAMP="$DJ42/.molt-requirements.sha256"
if [ "$profile" = all ] && [ -f "$DJ42_REQ" ]; then
    sum=$(sha256sum "$DJ42_REQ" | awk '{print $1}')
    if [ "$(cat "$DJ42_STAMP" 2>/dev/null || true)" != "$sum" ]; then
        say "installing python/requirements-django42.txt into .tmp/django42"
        rm -rf "$DJ42"
        if ! out=$("$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
                     --no-deps --target "$DJ42" -r "$DJ42_REQ" 2>&1 </dev/null); then
            printf '%s\n' "$out" >&2
            say "pip install of Django 4.2 failed"
            exit 1
        fi
        printf '%s\n' "$sum" >"$DJ42_STAMP"
    fi
fi
