#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throwaway PostgreSQL cluster for the tests: initdb into DIR and serve on a unix socket in DIR
# only (no TCP listener), trust authentication for the local user, fsync off (test data).
#   scripts/pgtest.sh start DIR   prints the libpq URL of the database "postgres" on it
#   scripts/pgtest.sh stop DIR    stops it (fast) and keeps DIR
#   scripts/pgtest.sh url DIR     prints the URL again
#   PGTEST_OPTS="-c ssl=on ..."   more server settings for start (e.g. a TCP listener with TLS)
#   scripts/pgtest.sh with CMD... runs CMD with a new cluster in a temporary directory, its URL
#                                 in DG_PG_URL and DG_STORE_URL, DG_PG_DIR naming the directory
#                                 (tests stop and start it there); stops and removes it after
# The binaries come from `pg_config --bindir`, /usr/lib/postgresql/*/bin or PATH. PostgreSQL
# refuses to run as root: as root the cluster belongs to the "postgres" user (Debian's package
# creates it) and the URL names that user.
set -euo pipefail
cmd="${1:-}"; dir="${2:-}"
if [ "$cmd" = with ]; then
    shift
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/dg-pg.XXXXXX")"
    self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
    cleanup() { "$self" stop "$tmp/c" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
    trap cleanup EXIT
    chmod 755 "$tmp"
    DG_PG_URL="$("$self" start "$tmp/c")"
    export DG_PG_URL DG_STORE_URL="$DG_PG_URL" DG_PG_DIR="$tmp/c"
    rc=0
    "$@" || rc=$?
    exit "$rc"
fi
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }

find_bin() {
    local d
    for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"; return
    fi
    echo "pgtest: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    exit 3
}

owner=""
[ "$(id -u)" -eq 0 ] && owner=postgres
as_owner() {
    if [ -n "$owner" ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}
user="${owner:-$(id -un)}"
abs="$(mkdir -p "$dir" && cd "$dir" && pwd)"
url="postgresql:///postgres?host=${abs}&user=${user}"

case "$cmd" in
start)
    bin="$(find_bin)"
    [ -n "$owner" ] && chown "$owner" "$abs"
    chmod 700 "$abs"
    if [ ! -f "$abs/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$abs/data" -A trust -U "$user" -E UTF8 --no-locale \
            >"$abs/initdb.log" 2>&1 || { cat "$abs/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$abs/data" -l "$abs/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$abs' -c fsync=off \
            -c max_connections=200 -c shared_buffers=32MB ${PGTEST_OPTS:-}" start >/dev/null \
        || { tail -20 "$abs/server.log" >&2; exit 1; }
    echo "$url"
    ;;
stop)
    bin="$(find_bin)"
    if [ -f "$abs/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$abs/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
url) echo "$url" ;;
*) echo "usage: $0 start|stop|url DIR" >&2; exit 2 ;;
esac
