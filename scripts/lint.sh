#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Static checks that must stay quiet: the layer check (scripts/layers.sh), the house format
# (.clang-format, clang-format 14 as Debian 12 ships it), cppcheck and clang-tidy (.clang-tidy: the
# analyzer and bugprone checks) over the product's C sources, and no plain memcmp on secret
# material in crypto/ (secrets are compared with sodium_memcmp / CRYPTO_memcmp).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/layers.sh
if ! git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>/tmp/dg-format.$$; then
    head -20 /tmp/dg-format.$$; rm -f /tmp/dg-format.$$
    echo "lint: not in the house format: run git ls-files '*.c' '*.h' | xargs clang-format -i"
    exit 1
fi
rm -f /tmp/dg-format.$$
command -v cppcheck >/dev/null || { apt-get update -qq && apt-get install -y -qq cppcheck; }
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
    --inline-suppr -I . --suppress=missingIncludeSystem common crypto store policies server cli
command -v clang-tidy >/dev/null || { apt-get update -qq && apt-get install -y -qq clang-tidy; }
cmake -S . -B build-tidy -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DDG_TESTS=OFF >/dev/null
if ! git ls-files 'common/*.c' 'crypto/*.c' 'store/*.c' 'policies/*.c' 'server/*.c' 'cli/*.c' |
        xargs -P"$(nproc)" -n8 clang-tidy -p build-tidy --quiet >/tmp/dg-tidy.$$ 2>&1; then
    grep -E 'error:|warning:' /tmp/dg-tidy.$$ | sort -u | head -30; rm -f /tmp/dg-tidy.$$
    echo "lint: clang-tidy findings (.clang-tidy lists the checks)"
    exit 1
fi
rm -f /tmp/dg-tidy.$$
# memcmp in crypto/ is allowed only on public data: the word "public" on its line or the one above.
bad=$(awk '/(^|[^_a-z])memcmp\(/ && $0 !~ /public/ && prev !~ /public/ { print FILENAME ":" FNR ": " $0 }
           { prev = $0 }' crypto/*.c)
if [ -n "$bad" ]; then
    echo "$bad"
    echo "lint: plain memcmp in crypto/ (use sodium_memcmp for secrets, or say why it is public)"
    exit 1
fi
echo "lint: clean"
