#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command: install what is missing, build, initialise ./data on first run (printing the admin
# API key once), and serve on 127.0.0.1:8080 with the embedded SQLite database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
DATA="${DIFYGUARD_DATA_DIR:-./data}"
if [ ! -e "$DATA/root.key" ]; then
    build/server/difyguard init --data-dir "$DATA"
fi
exec build/server/difyguard serve --data-dir "$DATA" "$@"
