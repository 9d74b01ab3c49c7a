#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Static checks that must stay quiet: cppcheck over the C sources, and no plain memcmp/strcmp on
# secret material in crypto/ (secrets are compared with sodium_memcmp / CRYPTO_memcmp).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cppcheck >/dev/null || { apt-get update -qq && apt-get install -y -qq cppcheck; }
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
    --inline-suppr -I . --suppress=missingIncludeSystem common crypto server
# memcmp in crypto/ is allowed only on public data, marked "public" on the same line.
X
    echo "lint: plain memcmp in crypto/ (use sodium_memcmp for secrets, or mark the line public)"
    exit 1
fi
echo "lint: clean"
