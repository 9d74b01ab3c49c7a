#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Encrypt with durable audit on PostgreSQL next to SQLite, in one run (issue 12): one server on
# SQLite, one on PostgreSQL, then two replicas on the same PostgreSQL database each loaded by its
# own wrk at once (their figures added). The cluster is a throwaway one (scripts/pgtest.sh:
# fsync off, so the figure shows difyguard's side of the work, not the disk). Prints the figures
# and the issue's targets (PostgreSQL >= 0.6x SQLite, two replicas above one); never fails on a
# target. Needs wrk and PostgreSQL's server binaries (scripts/deps.sh --bench).
#   bench/postgres.sh [--bin build/server/difyguard] [--duration 10] [--connections 64]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="$ROOT/build/server/difyguard"
DURATION=10
CONNS=64
THREADS=2
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--duration N] [--connections N]" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "postgres.sh: wrk missing (apt-get install wrk)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "postgres.sh: no binary at $BIN" >&2; exit 1; }

TMP="$(mktemp -d /tmp/dg-bench-pg.XXXXXX)"
chmod 755 "$TMP"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    "$ROOT/scripts/pgtest.sh" stop "$TMP/pg" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve DATA_DIR DATABASE -> PORT set, the pid appended to PIDS (no subshell: PIDS must stay)
serve() {
    local port; port=$(free_port)
    "$BIN" serve --data-dir "$1" --database "$2" --listen "127.0.0.1:$port" \
        >"$1/serve.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && { PORT=$port; return; }
        sleep 0.05
    done
    echo "postgres.sh: serve on $2 did not get ready" >&2; tail -5 "$1/serve.log" >&2; exit 1
}

# setup PORT ADMIN_KEY -> an encrypt-scoped key on keyring "bench" in $TMP/token
setup() {
    local api="http://127.0.0.1:$1" h="Authorization: Bearer $2"
    curl -sf -H "$h" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
        "$api/v1/keyrings" >/dev/null
    curl -sf -H "$h" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
        "$api/v1/apps" >/dev/null
    curl -sf -H "$h" -H 'Content-Type: application/json' \
        -d '{"scopes":["encrypt"],"keyrings":["bench"]}' "$api/v1/apps/bench/keys" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$TMP/token"
}

init() { # init DIR DATABASE -> admin key
    mkdir -p "$1"
    "$BIN" init --data-dir "$1" --database "$2" --json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}

# load PORT... : one wrk per port at once; prints the sum of their requests per second
load() {
    local outs=() i=0
    for port in "$@"; do
        BENCH_BODY_FILE="$TMP/body.json" BENCH_TOKEN="$(cat "$TMP/token")" \
            wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$HERE/post.lua" \
            "http://127.0.0.1:$port/v1/keyrings/bench/encrypt" >"$TMP/wrk$i.txt" 2>&1 &
        outs+=($!)
        i=$((i + 1))
    done
    for p in "${outs[@]}"; do wait "$p"; done
    local total=0 j
    for j in $(seq 0 $((i - 1))); do
        if grep -q "Non-2xx" "$TMP/wrk$j.txt"; then
            echo "postgres.sh: non-2xx answers:" >&2; grep "Non-2xx" "$TMP/wrk$j.txt" >&2
        fi
        total=$(awk -v t="$total" '/^Requests\/sec:/ {printf "%.0f", t + $2}' "$TMP/wrk$j.txt")
    done
    echo "$total"
}

printf '{"text":"%s"}' "a secret of about forty bytes, typical." >"$TMP/body.json"
PGURL="$("$ROOT/scripts/pgtest.sh" start "$TMP/pg")"
psql -qtAX "$PGURL" -c "CREATE DATABASE bench" >/dev/null
DB="${PGURL/\/postgres?//bench?}"

key=$(init "$TMP/sq" "sqlite:$TMP/sq/difyguard.db")
serve "$TMP/sq" "sqlite:$TMP/sq/difyguard.db"; p=$PORT
setup "$p" "$key"
sqlite_rps=$(load "$p")
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

key=$(init "$TMP/pg1" "$DB")
serve "$TMP/pg1" "$DB"; p1=$PORT
setup "$p1" "$key"
pg1_rps=$(load "$p1")
mkdir -p "$TMP/pg2" && cp "$TMP/pg1/root.key" "$TMP/pg2/root.key" && chmod 600 "$TMP/pg2/root.key"
serve "$TMP/pg2" "$DB"; p2=$PORT
pg2_rps=$(load "$p1" "$p2")

ratio=$(awk -v a="$pg1_rps" -v b="$sqlite_rps" 'BEGIN { printf "%.2f", a / b }')
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
echo "encrypt, durable audit, ${DURATION}s, $CONNS connections per server, $(nproc) cores"
printf '%-34s %10s req/s\n' "SQLite, one server" "$sqlite_rps"
printf '%-34s %10s req/s  (%sx SQLite, target >= 0.6: %s)\n' "PostgreSQL, one replica" \
    "$pg1_rps" "$ratio" "$(verdict "$ratio >= 0.6")"
printf '%-34s %10s req/s  (target above one replica: %s)\n' "PostgreSQL, two replicas" \
    "$pg2_rps" "$(verdict "$pg2_rps > $pg1_rps")"
