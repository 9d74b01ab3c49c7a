#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command: install what is missing, build, and run every test: unit and integration tests
# (normal build), a rotating subset of the mutation check (tests/mutants/README.md), the same
# tests again under ASan+UBSan, and each libFuzzer target briefly. Warnings are errors here
# (-DDG_WERROR=ON); a plain user build only warns.
#   FUZZ_SECONDS=20   seconds per fuzz target (0 skips fuzzing)
#   SKIP_ASAN=1       skip the sanitizer pass
#   DG_REQUIRE_VECTORS=1  fail (not skip) the Wycheproof tests when their files are missing; the
#                     default when ../shared/vectors is beside the checkout
#   SKIP_MUTANTS=1    skip the mutation check (MUTANTS_SUBSET=N runs N mutants instead of 4)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DG_REQUIRE_VECTORS:-}" ] && [ -d ../shared/vectors ]; then
    export DG_REQUIRE_VECTORS=1
fi
scripts/deps.sh
jobs="$(nproc)"

echo "== static checks"
scripts/lint.sh

echo "== Release builds, gcc and clang (what users build; -O3 finds warnings -O2 does not)"
for cc in gcc clang; do
    CC=$cc cmake -S . -B "build-release-$cc" -DCMAKE_C_COMPILER=$cc -DCMAKE_BUILD_TYPE=Release \
        -DDG_TESTS=OFF -DDG_WERROR=ON >/dev/null
    cmake --build "build-release-$cc" -j"$jobs" >/dev/null
done

echo "== build and test (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
# two at a time: the SQLite and PostgreSQL integration suites overlap (the chaos drill runs alone)
(cd build && ctest -j"$jobs" --output-on-failure --timeout 900)

if [ "${SKIP_MUTANTS:-0}" != "1" ]; then
    echo "== mutation check (rotating subset; scripts/mutants.sh --all runs every mutant)"
    scripts/mutants.sh
fi

if [ "${SKIP_ASAN:-0}" != "1" ]; then
    echo "== build and test under ASan+UBSan"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDG_SANITIZE=ON -DDG_WERROR=ON >/dev/null
    cmake --build build-asan -j"$jobs"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure --timeout 900)
fi

if [ "${FUZZ_SECONDS:-20}" != "0" ]; then
    echo "== fuzz smoke (${FUZZ_SECONDS:-20}s per target, ASan+UBSan)"
    scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"
fi
echo "== all tests passed"
