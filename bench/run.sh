#!/usr/bin/env bash
# difyguard benchmark: one script, one machine, one run. Prints figures; never fails on a
# target (exit 0), only when something broke (exit 1) or on a usage error (exit 2).
# See bench/README.md for what each figure means and the caveats.
#
#   bench/run.sh [--duration 10] [--bin PATH] [--threads 2] [--connections 64] [--warmup 2]
#                [--idle-connections 1000] [--hold 3] [--openssl-seconds 3]
#                [--serve-arg ARG]... [--json FILE] [--keep-tmp] [--no-install]
#                [--only all|main|audit] [--audit-dir DIR] [--audit-connections 32,256]
#                [--fsync-seconds 2] [--trace-rounds 2]
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3

DURATION=10
BIN="$REPO/build/server/difyguard"
THREADS=2
CONNS=64
WARMUP=2
IDLE_CONNS=1000
HOLD=3
OPENSSL_SECONDS=3
SERVE_ARGS=()
JSON_OUT=""
KEEP_TMP=0
INSTALL=1
ONLY=all
AUDIT_PARENT=/var/tmp
AUDIT_CONNS=32,256
FSYNC_SECONDS=2
TRACE_ROUNDS=2

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --duration N          seconds per measured wrk run (default 10)
  --bin PATH            difyguard binary (default build/server/difyguard in the repository)
  --threads N           wrk threads (default 2), the same for nginx and difyguard
  --connections N       wrk keep-alive connections (default 64), the same for both
  --warmup N            seconds of unmeasured wrk load before each run (default 2; 0 = none)
  --idle-connections N  idle keep-alive connections for the RSS figure (default 1000)
  --hold N              seconds to hold them before reading /proc/PID/status (default 3)
  --openssl-seconds N   duration of `openssl speed` (default 3)
  --serve-arg ARG       extra argument for `difyguard serve` (repeatable), e.g. --serve-arg=--threads=2
  --json FILE           also write the figures as JSON to FILE
  --keep-tmp            keep the temporary directory (logs, wrk output, data dir)
  --no-install          never call apt-get; fail if a tool is missing
  --only SECTION        all (default), main (openssl, nginx, difyguard figures) or audit
                        (encrypt with durable audit on vs off, and the disk's fsync latency)
  --audit-dir DIR       parent of the audit section's data dirs; must be a real disk, not tmpfs
                        (default /var/tmp)
  --audit-connections L comma-separated wrk connection counts for the audit section (default 32,256)
  --fsync-seconds N     length of the fdatasync probe in the audit section (default 2)
  --trace-rounds N      rounds of the tracing section (off, ratio 0.01, ratio 1.0 each; default 2)
EOF
}

need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) need_arg "$@"; DURATION=$2; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --bin) need_arg "$@"; BIN=$2; shift 2 ;;
    --bin=*) BIN=${1#*=}; shift ;;
    --threads) need_arg "$@"; THREADS=$2; shift 2 ;;
    --threads=*) THREADS=${1#*=}; shift ;;
    --connections) need_arg "$@"; CONNS=$2; shift 2 ;;
    --connections=*) CONNS=${1#*=}; shift ;;
    --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#*=}; shift ;;
    --idle-connections) need_arg "$@"; IDLE_CONNS=$2; shift 2 ;;
    --idle-connections=*) IDLE_CONNS=${1#*=}; shift ;;
    --hold) need_arg "$@"; HOLD=$2; shift 2 ;;
    --hold=*) HOLD=${1#*=}; shift ;;
    --openssl-seconds) need_arg "$@"; OPENSSL_SECONDS=$2; shift 2 ;;
    --openssl-seconds=*) OPENSSL_SECONDS=${1#*=}; shift ;;
    --serve-arg) need_arg "$@"; SERVE_ARGS+=("$2"); shift 2 ;;
    --serve-arg=*) SERVE_ARGS+=("${1#*=}"); shift ;;
    --json) need_arg "$@"; JSON_OUT=$2; shift 2 ;;
    --json=*) JSON_OUT=${1#*=}; shift ;;
    --keep-tmp) KEEP_TMP=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --only) need_arg "$@"; ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --audit-dir) need_arg "$@"; AUDIT_PARENT=$2; shift 2 ;;
    --audit-dir=*) AUDIT_PARENT=${1#*=}; shift ;;
    --audit-connections) need_arg "$@"; AUDIT_CONNS=$2; shift 2 ;;
    --audit-connections=*) AUDIT_CONNS=${1#*=}; shift ;;
    --fsync-seconds) need_arg "$@"; FSYNC_SECONDS=$2; shift 2 ;;
    --fsync-seconds=*) FSYNC_SECONDS=${1#*=}; shift ;;
    --trace-rounds) need_arg "$@"; TRACE_ROUNDS=$2; shift 2 ;;
    --trace-rounds=*) TRACE_ROUNDS=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
for v in DURATION THREADS CONNS WARMUP IDLE_CONNS HOLD OPENSSL_SECONDS FSYNC_SECONDS TRACE_ROUNDS; do
  is_uint "${!v}" || { echo "run.sh: ${v,,} must be a whole number, got '${!v}'" >&2; exit 2; }
done
[ "$DURATION" -ge 1 ] && [ "$THREADS" -ge 1 ] && [ "$CONNS" -ge "$THREADS" ] && [ "$OPENSSL_SECONDS" -ge 1 ] ||
  { echo "run.sh: need duration >= 1, threads >= 1, connections >= threads, openssl-seconds >= 1" >&2; exit 2; }
case "$ONLY" in
  all) RUN_MAIN=1; RUN_AUDIT=1; RUN_TRACE=1 ;;
  main) RUN_MAIN=1; RUN_AUDIT=0; RUN_TRACE=0 ;;
  audit) RUN_MAIN=0; RUN_AUDIT=1; RUN_TRACE=0 ;;
  trace) RUN_MAIN=0; RUN_AUDIT=0; RUN_TRACE=1 ;;
  *) echo "run.sh: --only must be all, main, audit or trace, got '$ONLY'" >&2; exit 2 ;;
esac
IFS=, read -r -a AUDIT_CONN_LIST <<<"$AUDIT_CONNS"
[ ${#AUDIT_CONN_LIST[@]} -ge 1 ] || { echo "run.sh: --audit-connections is empty" >&2; exit 2; }
for c in "${AUDIT_CONN_LIST[@]}"; do
  is_uint "$c" && [ "$c" -ge "$THREADS" ] ||
    { echo "run.sh: --audit-connections takes whole numbers >= threads, got '$c'" >&2; exit 2; }
done
[ "$FSYNC_SECONDS" -ge 1 ] || { echo "run.sh: fsync-seconds must be >= 1" >&2; exit 2; }
if [ "$RUN_AUDIT" = 1 ] && [ ! -d "$AUDIT_PARENT" ]; then
  echo "run.sh: --audit-dir $AUDIT_PARENT is not a directory" >&2; exit 2
fi

exec 3>&2   # progress messages go to the original stderr, even from a trap inside a redirection
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&3; }
BROKEN=()   # things that failed; any entry makes the exit status 1
broke() { BROKEN+=("$*"); log "ERROR: $*"; }

# ---------------------------------------------------------------------------------------------
# Processes we start, and cleanup (also on Ctrl-C, SIGTERM and failure).
NGINX_PID=""; DG_PID=""; FG_PID=""; TMP=""; AUDIT_WORK=""; SINK_PID=""

stop_pid() { # stop_pid PID SIGNAL: signal one of our children, wait up to 10 s, then SIGKILL it
  local pid=$1 sig=$2 i kids
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
  kill -"$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIG$sig; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  for i in $kids; do # e.g. nginx workers, should their master have been killed hard
    kill -0 "$i" 2>/dev/null && kill -KILL "$i" 2>/dev/null || true
  done
  return 0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_pid "$FG_PID" TERM   # background children ignore SIGINT
  stop_pid "$NGINX_PID" TERM
  stop_pid "$DG_PID" TERM
  stop_pid "$SINK_PID" TERM
  local d
  for d in "$TMP" "$AUDIT_WORK"; do   # both made by mktemp -d in this run
    if [ -n "$d" ] && [ -d "$d" ]; then
      if [ "$KEEP_TMP" = 1 ] || [ "$rc" -ne 0 ]; then
        log "temporary files kept in $d"
      else
        rm -rf "$d"
      fi
    fi
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# run_fg OUT ERR CMD...: run CMD in the background with stdout to OUT and stderr to ERR ("-" =
# with stdout) and wait for it, so that a signal reaches our trap at once (bash defers traps
# while a foreground child runs) and the trap can stop the child.
run_fg() {
  local out=$1 err=$2
  shift 2
  if [ "$err" = - ]; then "$@" >"$out" 2>&1 </dev/null & else "$@" >"$out" 2>"$err" </dev/null & fi
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=""
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Tools
ensure_tools() {
  local missing=() pkgs=()
  command -v wrk >/dev/null 2>&1 || { missing+=(wrk); pkgs+=(wrk); }
  if [ "$RUN_MAIN" = 1 ]; then
    { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || { missing+=(nginx); pkgs+=(nginx-light); }
  fi
  command -v openssl >/dev/null 2>&1 || { missing+=(openssl); pkgs+=(openssl); }
  command -v curl >/dev/null 2>&1 || { missing+=(curl); pkgs+=(curl); }
  [ -x "$PY" ] || { missing+=(python3); pkgs+=(python3); }
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$INSTALL" = 0 ]; then
    echo "run.sh: missing tools: ${missing[*]} (install: apt-get install -y ${pkgs[*]})" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: missing tools: ${missing[*]}; need root and apt-get to install ${pkgs[*]}" >&2
    exit 1
  fi
  log "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${pkgs[@]}" >&2
}
ensure_tools
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# Enough descriptors for 1,000 idle connections plus wrk's (children inherit the limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + CONNS + 256)) ]; then
  log "WARNING: open-files limit $(ulimit -n) is low for $IDLE_CONNS idle connections"
fi

[ -x "$BIN" ] || log "WARNING: no difyguard binary at $BIN yet; only the baselines will be measured"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/difyguard-bench.XXXXXX")
chmod 700 "$TMP"

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL PID NAME: poll until URL answers 200, or the process died, or 15 s passed
wait_http() {
  local url=$1 pid=$2 name=$3 i code
  for i in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up"
      return 1
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  log "$name did not answer 200 on $url within 15 s"
  return 1
}

# ---------------------------------------------------------------------------------------------
# wrk: run_wrk NAME URL BODY_FILE CONTENT_TYPE [TOKEN] -> sets W_RPS W_P50 W_P99 (ms) W_REQS
# W_NON2XX W_SOCKERR; output kept in $TMP/wrk-NAME.txt. Returns 1 when wrk failed or its
# output could not be parsed.
to_ms() { # wrk latency ("412.00us", "1.23ms", "2.00s", "1.00m") -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (match(v, /^[0-9.]+/)) { n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1) } else { print ""; exit }
    if (u == "us") n /= 1000; else if (u == "ms") n += 0; else if (u == "s") n *= 1000;
    else if (u == "m") n *= 60000; else if (u == "h") n *= 3600000; else { print ""; exit }
    printf "%.3f\n", n }'
}

run_wrk() {
  local name=$1 url=$2 body=$3 ctype=$4 token=${5:-} out="$TMP/wrk-$1.txt"
  W_RPS=""; W_P50=""; W_P99=""; W_REQS=""; W_NON2XX=0; W_SOCKERR=0
  if [ "$WARMUP" -gt 0 ]; then
    BENCH_BODY_FILE="$body" BENCH_CONTENT_TYPE="$ctype" BENCH_TOKEN="$token" \
      run_fg "$TMP/wrk-$name-warmup.txt" - \
      wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s -s "$HERE/post.lua" "$url" || true
  fi
  log "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency: $name"
  if ! BENCH_BODY_FILE="$body" BENCH_CONTENT_TYPE="$ctype" BENCH_TOKEN="$token" \
       run_fg "$out" - \
       wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$HERE/post.lua" "$url"; then
    log "wrk failed for $name:"; sed 's/^/    /' "$out" >&2
    return 1
  fi
  W_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  W_REQS=$(awk '/ requests in / {print $1}' "$out")
  W_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  W_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  W_NON2XX=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out")
  W_NON2XX=${W_NON2XX:-0}
  W_SOCKERR=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")
  W_SOCKERR=${W_SOCKERR:-0}
  if [ -z "$W_RPS" ] || [ -z "$W_P50" ] || [ -z "$W_P99" ]; then
    log "could not parse wrk output for $name:"; sed 's/^/    /' "$out" >&2
    return 1
  fi
  if [ "$W_NON2XX" != 0 ] || [ "$W_SOCKERR" != 0 ]; then
    log "WARNING: $name: $W_NON2XX non-2xx responses, $W_SOCKERR socket errors out of $W_REQS requests"
  fi
  return 0
}

# Results: R[<id>_<figure>], ids nginx enc dec batch raw idle end
declare -A R
save_wrk() { # save_wrk ID
  R[${1}_rps]=$W_RPS; R[${1}_p50]=$W_P50; R[${1}_p99]=$W_P99
  R[${1}_reqs]=$W_REQS; R[${1}_non2xx]=$W_NON2XX; R[${1}_sockerr]=$W_SOCKERR
}

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# ---------------------------------------------------------------------------------------------
# Request bodies (random values, made once per run)
VALUE64_B64=$(head -c 64 /dev/urandom | base64 -w0)
"$PY" - "$TMP" "$VALUE64_B64" <<'EOF'
import base64, json, os, sys
tmp, v64 = sys.argv[1], sys.argv[2]
with open(os.path.join(tmp, "enc64.json"), "w") as f:
    json.dump({"plaintext": v64}, f)
items = [{"plaintext": base64.b64encode(os.urandom(64)).decode()} for _ in range(100)]
with open(os.path.join(tmp, "batch100.json"), "w") as f:
    json.dump({"items": items}, f)
with open(os.path.join(tmp, "raw1m.bin"), "wb") as f:
    f.write(os.urandom(1 << 20))
EOF
MIB=1048576

# ---------------------------------------------------------------------------------------------
# 1. openssl speed: single-core AES-256-GCM throughput on 16 KiB blocks (nothing else running)
OPENSSL_MBS=""
if [ "$RUN_MAIN" = 1 ]; then
  log "openssl speed -evp aes-256-gcm -bytes 16384 -seconds $OPENSSL_SECONDS"
  if run_fg "$TMP/openssl-speed.txt" "$TMP/openssl-speed.err" \
       openssl speed -evp aes-256-gcm -bytes 16384 -seconds "$OPENSSL_SECONDS"; then
    # "The 'numbers' are in 1000s of bytes per second processed." ... "AES-256-GCM  2757607.42k"
    OPENSSL_KBS=$(awk 'toupper($1) == "AES-256-GCM" { v = $NF; sub(/k$/, "", v); print v }' "$TMP/openssl-speed.txt" | tail -n 1)
    if [[ "$OPENSSL_KBS" =~ ^[0-9.]+$ ]]; then
      OPENSSL_MBS=$(calc "$OPENSSL_KBS * 1000 / 1000000" 1)   # 1000s of bytes/s -> MB/s (10^6)
    else
      broke "could not parse openssl speed output ($TMP/openssl-speed.txt)"
    fi
  else
    broke "openssl speed failed: $(tail -n 3 "$TMP/openssl-speed.err" | tr '\n' ' ')"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 2. nginx baseline: static JSON 200 of about the size of an encrypt reply, for POST
if [ "$RUN_MAIN" = 1 ]; then
  NGX="$TMP/nginx"
  mkdir -p "$NGX"
  NGX_PORT=$(free_port)
  FAKE_CT="dg:v1:$(head -c 128 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  sed -e "s#@PREFIX@#$NGX#g" -e "s#@PORT@#$NGX_PORT#g" \
      -e "s#@BODY@#{\"ciphertext\":\"$FAKE_CT\",\"key_version\":1}#g" \
      "$HERE/nginx.conf.template" >"$NGX/nginx.conf"
  log "starting nginx on 127.0.0.1:$NGX_PORT (prefix $NGX)"
  NGINX_OK=0
  if "$NGINX" -t -q -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" 2>"$NGX/configtest.err"; then
    "$NGINX" -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" >"$NGX/stdout.log" 2>&1 &
    NGINX_PID=$!
    if wait_http "http://127.0.0.1:$NGX_PORT/" "$NGINX_PID" nginx; then
      code=$(curl -s -o "$TMP/nginx-check.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
             --data-binary @"$TMP/enc64.json" "http://127.0.0.1:$NGX_PORT/v1/keyrings/bench/encrypt" || true)
      if [ "$code" = 200 ]; then
        NGINX_OK=1
      else
        broke "nginx answered $code to the POST check"
      fi
    else
      broke "nginx did not start; see $NGX/error.log"; tail -n 5 "$NGX/error.log" >&2 2>/dev/null || true
    fi
  else
    broke "nginx config test failed: $(tr '\n' ' ' <"$NGX/configtest.err")"
  fi
  if [ "$NGINX_OK" = 1 ]; then
    if run_wrk nginx "http://127.0.0.1:$NGX_PORT/v1/keyrings/bench/encrypt" "$TMP/enc64.json" application/json; then
      save_wrk nginx
    else
      broke "wrk against nginx failed"
    fi
  fi
  stop_pid "$NGINX_PID" TERM; NGINX_PID=""
fi

# ---------------------------------------------------------------------------------------------
# 3. difyguard
DG_OK=0
DG_PORT=""
DG_DATA="$TMP/data"
TOKEN=""
KEY_KIND=""
AUTH_HDR="$TMP/auth.hdr"

json_field() { # json_field FILE KEY -> value (strings raw, others as JSON); empty when absent
  "$PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    v = d.get(sys.argv[2]) if isinstance(d, dict) else None
except Exception:
    v = None
print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))' "$1" "$2"
}

# api METHOD PATH [BODY_FILE [CONTENT_TYPE]] -> writes the response to $TMP/resp, prints the status
api() {
  local method=$1 path=$2 body=${3:-} ctype=${4:-application/json}
  local args=(-s -o "$TMP/resp" -w '%{http_code}' --max-time 30 -X "$method" -H @"$AUTH_HDR")
  [ -n "$body" ] && args+=(-H "Content-Type: $ctype" --data-binary @"$body")
  curl "${args[@]}" "http://127.0.0.1:$DG_PORT$path" || echo 000
}
set_token() { TOKEN=$1; umask 077; printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HDR"; umask 022; }

DG_LOG="$TMP/difyguard"   # server stdout/stderr go to $DG_LOG.log / $DG_LOG.err
DG_EXTRA_ARGS=()          # appended after --serve-arg ones (the audit section's --audit-durable=false)
DG_ENV=()                 # NAME=VALUE for the server's environment (the tracing section's OTEL_*)
start_difyguard() {
  DG_PORT=$(free_port)
  log "starting difyguard serve on 127.0.0.1:$DG_PORT${DG_EXTRA_ARGS[*]:+ (${DG_EXTRA_ARGS[*]})}${DG_ENV[*]:+ with ${DG_ENV[*]}}"
  env "${DG_ENV[@]}" "$BIN" serve --data-dir "$DG_DATA" --listen "127.0.0.1:$DG_PORT" \
    --max-connections-per-ip 2000 --max-connections 4096 "${SERVE_ARGS[@]}" "${DG_EXTRA_ARGS[@]}" \
    >>"$DG_LOG.log" 2>>"$DG_LOG.err" </dev/null &
  DG_PID=$!
  if ! wait_http "http://127.0.0.1:$DG_PORT/healthz" "$DG_PID" difyguard; then
    tail -n 5 "$DG_LOG.err" "$DG_LOG.log" >&2 2>/dev/null || true
    return 1
  fi
}

# stop_difyguard: SIGTERM, up to 10 s, exit status 0 expected; records what broke
stop_difyguard() {
  local i rc=0
  if ! kill -0 "$DG_PID" 2>/dev/null; then
    broke "difyguard is no longer running after the load runs"
    wait "$DG_PID" 2>/dev/null || true
    DG_PID=""
    return 1
  fi
  log "stopping difyguard (SIGTERM)"
  kill -TERM "$DG_PID" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$DG_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$DG_PID" 2>/dev/null; then
    broke "difyguard did not exit within 10 s of SIGTERM"
    stop_pid "$DG_PID" KILL
  else
    wait "$DG_PID" || rc=$?
    [ "$rc" = 0 ] || broke "difyguard exited $rc on SIGTERM"
  fi
  DG_PID=""
}

dg_setup() {
  if [ ! -x "$BIN" ]; then
    broke "difyguard binary not found or not executable: $BIN (build it, or pass --bin PATH)"
    return 1
  fi
  log "difyguard init --data-dir $DG_DATA --json"
  if ! "$BIN" init --data-dir "$DG_DATA" --json >"$TMP/init.json" 2>"$TMP/init.err"; then
    broke "difyguard init failed: $(tr '\n' ' ' <"$TMP/init.err")"
    return 1
  fi
  local admin
  # The admin key is the "key" of the JSON object init prints (log lines may share stdout).
  admin=$("$PY" -c 'import json,sys
text = open(sys.argv[1]).read()
for chunk in [text] + text.splitlines():
    try:
        d = json.loads(chunk)
    except ValueError:
        continue
    if isinstance(d, dict) and isinstance(d.get("key"), str):
        print(d["key"]); break' "$TMP/init.json" 2>/dev/null || true)
  if [ -z "$admin" ]; then broke "difyguard init --json printed no key"; return 1; fi
  set_token "$admin"; KEY_KIND="admin"
  start_difyguard || { broke "difyguard serve did not start (see $DG_LOG.err)"; return 1; }

  local code
  echo '{"name":"bench"}' >"$TMP/keyring.json"
  code=$(api POST /v1/keyrings "$TMP/keyring.json")
  if [ "$code" != 201 ] && [ "$code" != 200 ]; then
    broke "POST /v1/keyrings answered $code: $(head -c 300 "$TMP/resp")"
    return 1
  fi
  # An app key limited to encrypt/decrypt on this keyring, as a Dify component would use; the
  # admin key is the fallback when apps are not available.
  echo '{"name":"bench","description":"bench/run.sh"}' >"$TMP/app.json"
  echo '{"scopes":["encrypt","decrypt"],"keyrings":["bench"]}' >"$TMP/appkey.json"
  code=$(api POST /v1/apps "$TMP/app.json")
  if [ "$code" = 201 ] || [ "$code" = 200 ]; then
    code=$(api POST /v1/apps/bench/keys "$TMP/appkey.json")
    local k
    k=$(json_field "$TMP/resp" key)
    if { [ "$code" = 201 ] || [ "$code" = 200 ]; } && [ -n "$k" ]; then
      set_token "$k"; KEY_KIND="app key (scopes encrypt, decrypt; keyring bench)"
    fi
  fi
  [ "$KEY_KIND" = admin ] && log "app keys not available (last answer $code); using the admin key"
  return 0
}

# check_call NAME PATH BODY CTYPE: one request through curl before wrk; 200 expected
check_call() {
  local code
  code=$(api POST "$2" "$3" "$4")
  if [ "$code" != 200 ]; then
    broke "$1: POST $2 answered $code: $(head -c 300 "$TMP/resp")"
    return 1
  fi
}

if [ "$RUN_MAIN" = 1 ] && dg_setup; then
  DG_OK=1
  # Memory first, on the fresh process (only the keyring and app set up), so that VmHWM is
  # not the peak of the 1 MiB check or of the load runs.
  log "opening $IDLE_CONNS idle keep-alive connections (GET /healthz each), holding ${HOLD}s"
  if run_fg "$TMP/idle.txt" "$TMP/idle.err" \
       "$PY" "$HERE/idle_conns.py" --port "$DG_PORT" --pid "$DG_PID" --count "$IDLE_CONNS" --hold "$HOLD"; then
    for kv in $(cat "$TMP/idle.txt"); do R[idle_${kv%%=*}]=${kv#*=}; done
    [ -s "$TMP/idle.err" ] && log "idle connections: $(tr '\n' ' ' <"$TMP/idle.err")"
  else
    broke "idle-connections helper failed: $(tr '\n' ' ' <"$TMP/idle.err")"
  fi
  kill -0 "$DG_PID" 2>/dev/null || { broke "difyguard died during the idle-connections step"; DG_OK=0; }

  # Ciphertext of the 64-byte value for the decrypt run, and checks of every request we drive.
  ENC_OK=0; DEC_OK=0; BATCH_OK=0; RAW_OK=0
  if check_call encrypt /v1/keyrings/bench/encrypt "$TMP/enc64.json" application/json; then
    CT=$(json_field "$TMP/resp" ciphertext)
    if [[ "$CT" == dg:v* ]]; then
      ENC_OK=1
      "$PY" -c 'import json,sys; json.dump({"ciphertext": sys.argv[2]}, open(sys.argv[1], "w"))' "$TMP/dec64.json" "$CT"
      if check_call decrypt /v1/keyrings/bench/decrypt "$TMP/dec64.json" application/json; then
        if [ "$(json_field "$TMP/resp" plaintext)" = "$VALUE64_B64" ]; then DEC_OK=1
        else broke "decrypt check: plaintext does not round-trip"; fi
      fi
    else
      broke "encrypt check: no dg:v ciphertext in $(head -c 300 "$TMP/resp")"
    fi
  fi
  if check_call batch /v1/keyrings/bench/encrypt "$TMP/batch100.json" application/json; then
    n=$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1])); items = d.get("items", [])
print(sum(1 for i in items if isinstance(i, dict) and str(i.get("ciphertext", "")).startswith("dg:v")))' "$TMP/resp" 2>/dev/null || echo 0)
    if [ "$n" = 100 ]; then BATCH_OK=1; else broke "batch check: $n of 100 items encrypted"; fi
  fi
  if check_call "1 MiB encrypt" /v1/keyrings/bench/encrypt "$TMP/raw1m.bin" application/octet-stream; then
    if [[ "$(json_field "$TMP/resp" ciphertext)" == dg:v* ]]; then RAW_OK=1
    else broke "1 MiB encrypt check: no dg:v ciphertext"; fi
  fi


  URL="http://127.0.0.1:$DG_PORT/v1/keyrings/bench"
  if [ "$DG_OK" = 1 ] && [ "$ENC_OK" = 1 ]; then
    run_wrk encrypt "$URL/encrypt" "$TMP/enc64.json" application/json "$TOKEN" && save_wrk enc || broke "wrk encrypt failed"
  fi
  if [ "$DG_OK" = 1 ] && [ "$DEC_OK" = 1 ]; then
    run_wrk decrypt "$URL/decrypt" "$TMP/dec64.json" application/json "$TOKEN" && save_wrk dec || broke "wrk decrypt failed"
  fi
  if [ "$DG_OK" = 1 ] && [ "$BATCH_OK" = 1 ]; then
    run_wrk batch "$URL/encrypt" "$TMP/batch100.json" application/json "$TOKEN" && save_wrk batch || broke "wrk batch failed"
  fi
  if [ "$DG_OK" = 1 ] && [ "$RAW_OK" = 1 ]; then
    run_wrk raw1m "$URL/encrypt" "$TMP/raw1m.bin" application/octet-stream "$TOKEN" && save_wrk raw || broke "wrk 1 MiB failed"
  fi
  if kill -0 "$DG_PID" 2>/dev/null; then
    R[end_hwm]=$(awk '/^VmHWM:/ {print $2}' "/proc/$DG_PID/status" 2>/dev/null || true)
    R[end_rss]=$(awk '/^VmRSS:/ {print $2}' "/proc/$DG_PID/status" 2>/dev/null || true)
  fi
  stop_difyguard || true
fi

# ---------------------------------------------------------------------------------------------
# 3b. Durable audit on vs off: the 64-byte encrypt against a server started with the default
# (--audit-durable=true: the reply waits for the group commit's fsync) and against one started
# with --audit-durable=false, at each of AUDIT_CONN_LIST connections, each on a fresh data dir on
# a real disk (AUDIT_PARENT, default /var/tmp), plus the fdatasync latency of that disk.
AUDIT_FS=""; AUDIT_DEV=""
audit_run() { # audit_run CONNS MODE(durable|nondurable) -> R[audit_cCONNS_MODE_*]
  local c=$1 mode=$2 id="audit_c$1_$2" saved_conns=$CONNS
  DG_DATA="$AUDIT_WORK/data-c$c-$mode"
  DG_LOG="$TMP/difyguard-c$c-$mode"
  DG_EXTRA_ARGS=()
  [ "$mode" = nondurable ] && DG_EXTRA_ARGS=(--audit-durable=false)
  log "audit section: $c connections, $mode audit, data dir $DG_DATA"
  if ! dg_setup; then DG_EXTRA_ARGS=(); stop_pid "$DG_PID" TERM; DG_PID=""; return 1; fi
  DG_EXTRA_ARGS=()
  if check_call "audit $mode encrypt" /v1/keyrings/bench/encrypt "$TMP/enc64.json" application/json &&
     [[ "$(json_field "$TMP/resp" ciphertext)" == dg:v* ]]; then
    CONNS=$c
    if run_wrk "audit-c$c-$mode" "http://127.0.0.1:$DG_PORT/v1/keyrings/bench/encrypt" \
         "$TMP/enc64.json" application/json "$TOKEN"; then
      save_wrk "$id"
    else
      broke "wrk encrypt ($c connections, $mode audit) failed"
    fi
    CONNS=$saved_conns
  else
    broke "audit section: encrypt check failed on the $mode server"
  fi
  stop_difyguard || true
}

if [ "$RUN_AUDIT" = 1 ]; then
  AUDIT_WORK=$(mktemp -d "$AUDIT_PARENT/difyguard-bench-audit.XXXXXX")
  chmod 700 "$AUDIT_WORK"
  AUDIT_FS=$(stat -f -c %T "$AUDIT_WORK" 2>/dev/null || echo unknown)
  AUDIT_DEV=$(findmnt -n -o SOURCE,FSTYPE --target "$AUDIT_WORK" 2>/dev/null | awk 'END {print $1 " " $2}' || true)   # last line: the mount that is visible
  R[audit_dir]=$AUDIT_WORK; R[audit_fs]=$AUDIT_FS; R[audit_mount]=$AUDIT_DEV
  case "$AUDIT_FS" in
    tmpfs|ramfs)
      log "WARNING: $AUDIT_WORK is on $AUDIT_FS: fsync is free there and the durable figures mean nothing; pass --audit-dir on a real disk" ;;
  esac
  for a in "${SERVE_ARGS[@]}"; do
    [[ "$a" == --audit-durable* ]] && log "WARNING: --serve-arg $a also applies to the audit section's durable server"
  done

  # fdatasync latency of the disk, alone (nothing else running), before and after the load runs:
  # append 4 KiB + fdatasync in a loop, in the directory that holds the data dirs (same filesystem)
  # (run_fg gives its command /dev/null as stdin, so the script goes in a file, not a here-doc)
  cat >"$TMP/fsync_probe.py" <<'EOF'
import os, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = os.urandom(4096)
lat = []
end = time.monotonic() + seconds
try:
    while time.monotonic() < end:
        os.write(fd, buf)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1000.0)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
n = len(lat)
pick = lambda q: lat[min(n - 1, int(q * n))]
print("n=%d p50=%.3f p99=%.3f mean=%.3f max=%.3f" % (n, pick(0.50), pick(0.99), sum(lat) / n, lat[-1]))
EOF
  fsync_probe() { # fsync_probe WHEN(pre|post) -> R[fsync_WHEN_{n,p50,p99,mean,max}] (ms)
    log "fdatasync probe ($1): 4 KiB append + os.fdatasync for ${FSYNC_SECONDS}s in $AUDIT_WORK"
    if run_fg "$TMP/fsync-$1.txt" "$TMP/fsync-$1.err" \
         "$PY" "$TMP/fsync_probe.py" "$AUDIT_WORK/fsync-probe.bin" "$FSYNC_SECONDS"; then
      for kv in $(cat "$TMP/fsync-$1.txt"); do R[fsync_$1_${kv%%=*}]=${kv#*=}; done
      [ -n "${R[fsync_$1_p50]:-}" ] || broke "fdatasync probe printed nothing usable ($TMP/fsync-$1.txt)"
    else
      broke "fdatasync probe failed: $(tr '\n' ' ' <"$TMP/fsync-$1.err")"
    fi
  }
  fsync_probe pre

  if [ ! -x "$BIN" ]; then
    broke "difyguard binary not found or not executable: $BIN (build it, or pass --bin PATH)"
  else
    for c in "${AUDIT_CONN_LIST[@]}"; do
      audit_run "$c" durable || true
      audit_run "$c" nondurable || true
    done
  fi
  fsync_probe post
  DG_DATA="$TMP/data"; DG_LOG="$TMP/difyguard"
fi

# ---------------------------------------------------------------------------------------------
# 3c. Tracing: the 64-byte encrypt with tracing off, at sample ratio 0.01 and at 1.0, exporting
# OTLP/HTTP JSON to a local sink started here (answers 200 to every batch), each on a fresh data
# dir, TRACE_ROUNDS rounds interleaved (off, 0.01, 1.0, off, ...) so drift hits all three alike.
trace_run() { # trace_run MODE(off|r001|r1) ROUND -> R[trace_MODE_rN_*]
  local mode=$1 round=$2 id="trace_${1}_r${2}"
  DG_DATA="$TMP/data-trace-$mode-$round"
  DG_LOG="$TMP/difyguard-trace-$mode-$round"
  DG_ENV=()
  case "$mode" in
    r001) DG_ENV=(OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.01) ;;
    r1) DG_ENV=(OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=1.0) ;;
  esac
  [ "$mode" != off ] && DG_ENV+=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT"
                                 OTEL_EXPORTER_OTLP_PROTOCOL=http/json
                                 OTEL_BSP_MAX_QUEUE_SIZE=16384 OTEL_BSP_SCHEDULE_DELAY=500)
  log "tracing section: $mode, round $round"
  if ! dg_setup; then DG_ENV=(); stop_pid "$DG_PID" TERM; DG_PID=""; return 1; fi
  DG_ENV=()
  if check_call "trace $mode encrypt" /v1/keyrings/bench/encrypt "$TMP/enc64.json" application/json; then
    if run_wrk "trace-$mode-$round" "http://127.0.0.1:$DG_PORT/v1/keyrings/bench/encrypt" \
         "$TMP/enc64.json" application/json "$TOKEN"; then
      save_wrk "$id"
    else
      broke "wrk encrypt (tracing $mode) failed"
    fi
    sleep 1   # the exporter's last batch (schedule delay 0.5 s)
    curl -s --max-time 10 "http://127.0.0.1:$DG_PORT/metrics" >"$TMP/metrics-$mode-$round.txt" || true
    R[${id}_exported]=$(awk '$1 == "difyguard_trace_spans_exported_total" {print $2}' "$TMP/metrics-$mode-$round.txt")
    R[${id}_dropped]=$(awk '/^difyguard_trace_spans_dropped_total/ {s += $2} END {print s + 0}' "$TMP/metrics-$mode-$round.txt")
  else
    broke "tracing section: encrypt check failed ($mode)"
  fi
  stop_difyguard || true
}

if [ "$RUN_TRACE" = 1 ]; then
  cat >"$TMP/otlp_sink.py" <<'EOF'
import signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
srv.serve_forever()
EOF
  SINK_PORT=$(free_port)
  "$PY" "$TMP/otlp_sink.py" "$SINK_PORT" >"$TMP/otlp_sink.log" 2>&1 </dev/null &
  SINK_PID=$!
  log "OTLP sink (python http.server, answers 200) on 127.0.0.1:$SINK_PORT"
  if [ ! -x "$BIN" ]; then
    broke "difyguard binary not found or not executable: $BIN (build it, or pass --bin PATH)"
  else
    for round in $(seq 1 "$TRACE_ROUNDS"); do
      for mode in off r001 r1; do trace_run "$mode" "$round" || true; done
    done
  fi
  stop_pid "$SINK_PID" TERM; SINK_PID=""
  DG_DATA="$TMP/data"; DG_LOG="$TMP/difyguard"
  for mode in off r001 r1; do # means over the rounds
    R[trace_${mode}_rps]=$(for round in $(seq 1 "$TRACE_ROUNDS"); do echo "${R[trace_${mode}_r${round}_rps]:-}"; done |
      awk 'NF { s += $1; n++ } END { if (n) printf "%.1f", s / n }')
  done
fi

# ---------------------------------------------------------------------------------------------
# 4. Table
NGX_RPS=${R[nginx_rps]:-}
MARK_NOTE=""
verdict() { # verdict VALUE OP LIMIT -> PASS / MISS (informational)
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v >= l) : (op == "<=") ? (v <= l) : (v < l); print ok ? "PASS" : "MISS" }'
}
errs() { # errs ID -> " [N non-2xx, M socket errors]" when any
  local n=${R[${1}_non2xx]:-0} s=${R[${1}_sockerr]:-0}
  if [ "$n" != 0 ] || [ "$s" != 0 ]; then printf ' [%s non-2xx, %s socket errors]' "$n" "$s"; fi
}
AUDIT_IDS=()
for c in "${AUDIT_CONN_LIST[@]}"; do AUDIT_IDS+=("audit_c${c}_durable" "audit_c${c}_nondurable"); done
for id in nginx enc dec batch raw "${AUDIT_IDS[@]}"; do
  if [ "${R[${id}_non2xx]:-0}" != 0 ] || [ "${R[${id}_sockerr]:-0}" != 0 ]; then MARK_NOTE=1; fi
done

FMT='%-34s %14s %9s %9s %9s  %-24s %s\n'
echo
echo "difyguard benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores, $(uname -r)"
if [ "$RUN_MAIN" = 1 ] || [ "$RUN_AUDIT" = 0 ]; then WRK_C="-c$CONNS"; else WRK_C="-c{${AUDIT_CONNS}}"; fi
echo "wrk -t$THREADS $WRK_C -d${DURATION}s --timeout 10s --latency, keep-alive, warm-up ${WARMUP}s; servers run one at a time"
[ -x "$BIN" ] && [ -n "$KEY_KIND" ] && echo "difyguard: $BIN ($("$BIN" version 2>/dev/null | head -n 1 || true)); auth: $KEY_KIND"
[ "$DG_OK" = 1 ] && echo "data dir on: $(df -P "$DG_DATA" 2>/dev/null | awk 'NR == 2 {print $1}') ($(stat -f -c %T "$DG_DATA" 2>/dev/null))"
table_head() {
  echo
  printf "$FMT" "figure" "value" "p50 ms" "p99 ms" "${1:-ratio}" "target" "result"
  printf "$FMT" "----------------------------------" "--------------" "---------" "---------" "---------" "------------------------" "------"
}
if [ "$RUN_MAIN" = 1 ]; then
table_head

if [ -n "$NGX_RPS" ]; then
  printf "$FMT" "nginx static JSON 200 (baseline)" "$(calc "$NGX_RPS" 0) req/s" "${R[nginx_p50]}" "${R[nginx_p99]}" "1.00x" "" "$(errs nginx)"
else
  printf "$FMT" "nginx static JSON 200 (baseline)" "n/a" "" "" "" "" "not measured"
fi

row_single() { # row_single ID LABEL
  local id=$1 label=$2 rps=${R[${1}_rps]:-} ratio="" res="n/a"
  if [ -z "$rps" ]; then printf "$FMT" "$label" "n/a" "" "" "" ">= 0.35x nginx" "not measured"; return; fi
  if [ -n "$NGX_RPS" ]; then
    ratio=$(calc "$rps / $NGX_RPS" 2); R[${id}_ratio]=$ratio
    res=$(verdict "$ratio" ">=" 0.35)
  fi
  R[${id}_result]=$res
  printf "$FMT" "$label" "$(calc "$rps" 0) req/s" "${R[${id}_p50]}" "${R[${id}_p99]}" "${ratio:+${ratio}x}" ">= 0.35x nginx" "$res$(errs "$id")"
}
row_single enc "encrypt 64 B (JSON)"
row_single dec "decrypt 64 B (JSON)"

if [ -n "${R[batch_rps]:-}" ]; then
  items=$(calc "${R[batch_rps]} * 100" 0); R[batch_items]=$items
  ratio=""; [ -n "$NGX_RPS" ] && { ratio=$(calc "$items / $NGX_RPS" 2); R[batch_ratio]=$ratio; }
  R[batch_result]=$(verdict "$items" ">=" 300000)
  printf "$FMT" "batch encrypt 100 x 64 B" "$items items/s" "${R[batch_p50]}" "${R[batch_p99]}" "${ratio:+${ratio}x}" ">= 300000 items/s" "${R[batch_result]} ($(calc "${R[batch_rps]}" 0) req/s)$(errs batch)"
else
  printf "$FMT" "batch encrypt 100 x 64 B" "n/a" "" "" "" ">= 300000 items/s" "not measured"
fi

if [ -n "${R[raw_rps]:-}" ]; then
  mbs=$(calc "${R[raw_rps]} * $MIB / 1000000" 1); R[raw_mbs]=$mbs
  ratio=""; res="n/a"
  if [ -n "$OPENSSL_MBS" ]; then ratio=$(calc "$mbs / $OPENSSL_MBS" 3); R[raw_ratio]=$ratio; res=$(verdict "$ratio" ">=" 0.1); fi
  R[raw_result]=$res
  printf "$FMT" "encrypt 1 MiB (octet-stream)" "$mbs MB/s" "${R[raw_p50]}" "${R[raw_p99]}" "${ratio:+${ratio}x}" ">= 0.1x openssl" "$res ($(calc "${R[raw_rps]}" 1) req/s)$(errs raw)"
else
  printf "$FMT" "encrypt 1 MiB (octet-stream)" "n/a" "" "" "" ">= 0.1x openssl" "not measured"
fi
if [ -n "$OPENSSL_MBS" ]; then
  printf "$FMT" "openssl speed aes-256-gcm 16 KiB" "$OPENSSL_MBS MB/s" "" "" "1.00x" "" "(one core, ${OPENSSL_SECONDS}s)"
fi

if [ -n "${R[idle_vm_hwm_kb]:-}" ]; then
  hwm=$(calc "${R[idle_vm_hwm_kb]} * 1024 / 1000000" 1); rss=$(calc "${R[idle_vm_rss_kb]} * 1024 / 1000000" 1)
  R[idle_hwm_mb]=$hwm; R[idle_rss_mb]=$rss
  R[idle_result]=$(verdict "$hwm" "<" 100)
  held="${R[idle_still_open]}/$IDLE_CONNS open after ${HOLD}s, ${R[idle_ok]} got 200"
  [ "${R[idle_still_open]}" = "$IDLE_CONNS" ] && [ "${R[idle_ok]}" = "$IDLE_CONNS" ] || MARK_NOTE=1
  printf "$FMT" "peak RSS, $IDLE_CONNS idle keep-alive conns" "$hwm MB" "" "" "" "< 100 MB" "${R[idle_result]} (VmRSS $rss MB; $held)"
else
  printf "$FMT" "peak RSS, $IDLE_CONNS idle keep-alive conns" "n/a" "" "" "" "< 100 MB" "not measured"
fi
if [ -n "${R[end_hwm]:-}" ]; then
  printf "$FMT" "peak RSS after all load runs" "$(calc "${R[end_hwm]} * 1024 / 1000000" 1) MB" "" "" "" "(information)" "VmRSS at end $(calc "${R[end_rss]} * 1024 / 1000000" 1) MB"
fi
echo
echo "MB = 10^6 bytes. Ratios: single calls and batch items/s over nginx req/s; 1 MiB over openssl speed."
fi   # RUN_MAIN

if [ "$RUN_AUDIT" = 1 ]; then
  echo
  echo "Durable audit on vs off: encrypt 64 B (JSON), fresh data dir per run under ${AUDIT_WORK%/*}"
  echo "  filesystem: ${AUDIT_FS:-unknown} (stat -f -c %T); mount: ${AUDIT_DEV:-unknown}$(case "$AUDIT_FS" in tmpfs|ramfs) echo "  WARNING: not a real disk, fsync is free";; esac)"
  for w in pre post; do
    if [ "$w" = pre ]; then when="before the runs"; else when="after the runs "; fi
    if [ -n "${R[fsync_${w}_p50]:-}" ]; then
      echo "  fdatasync, 4 KiB append, $when: p50 ${R[fsync_${w}_p50]} ms, p99 ${R[fsync_${w}_p99]} ms, mean ${R[fsync_${w}_mean]} ms, max ${R[fsync_${w}_max]} ms (${R[fsync_${w}_n]} calls in ${FSYNC_SECONDS}s)"
    else
      echo "  fdatasync, $when: not measured"
    fi
  done
  echo "  (measured alone; the server logs no per-commit fsync timing)"
  table_head "dur/non"
  for c in "${AUDIT_CONN_LIST[@]}"; do
    d="audit_c${c}_durable"; n="audit_c${c}_nondurable"
    for id in "$d" "$n"; do
      if [ "$id" = "$d" ]; then label="encrypt, $c conns, durable"
      else label="encrypt, $c conns, not durable"; fi
      if [ -n "${R[${id}_rps]:-}" ]; then
        printf "$FMT" "$label" "$(calc "${R[${id}_rps]}" 0) req/s" "${R[${id}_p50]}" "${R[${id}_p99]}" "" "" "$(errs "$id")"
      else
        printf "$FMT" "$label" "n/a" "" "" "" "" "not measured"
      fi
    done
    if [ "$c" = 256 ]; then target="<= 20% at 256"; else target="(information)"; fi
    if [ -n "${R[${d}_rps]:-}" ] && [ -n "${R[${n}_rps]:-}" ] && [ "$(calc "(${R[${n}_rps]} > 0) ? 1 : 0" 0)" = 1 ]; then
      ratio=$(calc "${R[${d}_rps]} / ${R[${n}_rps]}" 3)
      cost=$(calc "(1 - ${R[${d}_rps]} / ${R[${n}_rps]}) * 100" 1)
      R[audit_c${c}_cost_pct]=$cost; R[audit_c${c}_ratio]=$ratio
      res=""
      if [ "$c" = 256 ]; then res=$(verdict "$cost" "<=" 20); R[audit_c${c}_result]=$res; fi
      printf "$FMT" "  cost of durable, $c conns" "$cost %" "" "" "${ratio}x" "$target" "$res"
    else
      printf "$FMT" "  cost of durable, $c conns" "n/a" "" "" "" "$target" "not measured"
    fi
  done
  echo
  echo "cost = 1 - durable req/s / non-durable req/s. Durable: each reply waits for the fsync of the group"
  echo "commit holding its audit event (SQLite WAL, synchronous=FULL); --audit-durable=false replies before it."
fi
if [ "$RUN_TRACE" = 1 ]; then
  echo
  echo "Tracing: encrypt 64 B (JSON), ${TRACE_ROUNDS} round(s) of off / ratio 0.01 / ratio 1.0, OTLP/HTTP JSON to a local sink"
  table_head "vs off"
  for mode in off r001 r1; do
    case "$mode" in off) label="tracing off";; r001) label="sample ratio 0.01";; r1) label="sample ratio 1.0";; esac
    for round in $(seq 1 "$TRACE_ROUNDS"); do
      id="trace_${mode}_r${round}"
      if [ -n "${R[${id}_rps]:-}" ]; then
        extra=""
        [ "$mode" != off ] && extra="spans exported ${R[${id}_exported]:-?}, dropped ${R[${id}_dropped]:-?}"
        printf "$FMT" "  $label, round $round" "$(calc "${R[${id}_rps]}" 0) req/s" "${R[${id}_p50]}" "${R[${id}_p99]}" "" "" "$extra$(errs "$id")"
      fi
    done
    if [ -n "${R[trace_${mode}_rps]:-}" ] && [ -n "${R[trace_off_rps]:-}" ]; then
      ratio=$(calc "${R[trace_${mode}_rps]} / ${R[trace_off_rps]}" 3)
      R[trace_${mode}_ratio]=$ratio
      target=""; res=""
      if [ "$mode" = r001 ]; then target=">= 0.95x of off"; res=$(verdict "$ratio" ">=" 0.95); R[trace_r001_result]=$res; fi
      printf "$FMT" "$label, mean" "$(calc "${R[trace_${mode}_rps]}" 0) req/s" "" "" "${ratio}x" "$target" "$res"
    fi
  done
fi
echo
echo "PASS/MISS are informational; see bench/README.md for methodology and caveats."
[ -n "$MARK_NOTE" ] && echo "NOTE: some runs had errors or dropped connections (bracketed); those figures are suspect."
[ "$DG_OK" = 1 ] && [ -s "$TMP/difyguard.log" ] && echo "difyguard log: $(wc -l <"$TMP/difyguard.log") lines"

# ---------------------------------------------------------------------------------------------
# 5. JSON (optional)
if [ -n "$JSON_OUT" ]; then
  {
    for k in "${!R[@]}"; do printf '%s\t%s\n' "$k" "${R[$k]}"; done
    printf 'openssl_mbs\t%s\n' "$OPENSSL_MBS"
  } | "$PY" -c '
import json, sys
meta = {"threads": int(sys.argv[2]), "connections": int(sys.argv[3]), "duration_s": int(sys.argv[4]),
        "warmup_s": int(sys.argv[5]), "idle_connections": int(sys.argv[6]), "broken": sys.argv[7:]}
out = {}
for line in sys.stdin:
    k, _, v = line.rstrip("\n").partition("\t")
    if v == "":
        continue
    try:
        out[k] = int(v)
    except ValueError:
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
json.dump({"meta": meta, "figures": dict(sorted(out.items()))}, open(sys.argv[1], "w"), indent=2)
' "$JSON_OUT" "$THREADS" "$CONNS" "$DURATION" "$WARMUP" "$IDLE_CONNS" "${BROKEN[@]}"
  log "figures written to $JSON_OUT"
fi

if [ ${#BROKEN[@]} -gt 0 ]; then
  echo
  echo "Something broke (exit 1):"
  for b in "${BROKEN[@]}"; do echo "  - $b"; done
  exit 1
fi
exit 0
