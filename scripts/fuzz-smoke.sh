#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build every libFuzzer target with clang (ASan+UBSan) and run each on a copy of its seed corpus
# for N seconds (default 30). Fails on any crash, leak, hang or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
CC=clang cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DDG_FUZZ=ON -DDG_TESTS=OFF -DDG_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
n=0
for bin in build-fuzz/fuzz/fuzz_*; do
    name="$(basename "$bin")"
    [ -x "$bin" ] || continue
    mkdir -p "$work/$name"
    cp -r fuzz/corpus/"$name"/. "$work/$name"/ 2>/dev/null || true
    dict=(); short="${name#fuzz_}"
    for d in "fuzz/$name.dict" "fuzz/$short.dict"; do [ -f "$d" ] && dict=(-dict="$d"); done
    echo "-- $name (${secs}s)"
    UBSAN_OPTIONS=halt_on_error=1 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        "${dict[@]}" "$work/$name" >"$work/$name.log" 2>&1 || { tail -40 "$work/$name.log"; exit 1; }
    grep -E "^Done|stat::number_of_executed_units" "$work/$name.log" | tail -1 || true
    n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "no fuzz targets were built"; exit 1; }
echo "fuzz smoke: $n targets clean"
