#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Mutation check of the security-critical lines: each entry of tests/mutants/ (README there) is
# applied to a scratch copy of the tree, built, and the tests it names must then fail (the
# mutant is "killed"). The working tree is never changed.
#   scripts/mutants.sh            a rotating subset (CI): MUTANTS_SUBSET entries (default 4),
#                                 chosen by the day of the year (MUTANTS_DAY, default today)
#   scripts/mutants.sh --all      every entry
#   scripts/mutants.sh ID...      the named entries
#   scripts/mutants.sh --list     print the entries and exit
# The subset rotates only through entries expected to be killed; --all and named entries also
# run those marked "survives:" (a known gap), which then count as survived.
# Exit 0: every mutant run was killed. 1: a mutant survived, or one marked "survives:" was
# killed (drop the mark). 2: a broken entry, a mutant that does not build, or a named test that
# fails on the unmutated tree.
#   MUTANTS_WORK     scratch directory (default build-mutants: source copy, build dir, logs)
#   MUTANTS_JOBS     build parallelism (default nproc)
#   MUTANTS_TIMEOUT  seconds per test command (default 600; a timeout counts as a kill)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
py=/usr/bin/python3
work="${MUTANTS_WORK:-$root/build-mutants}"
src="$work/src"
bld="$work/build"
logs="$work/logs"
jobs="${MUTANTS_JOBS:-$(nproc)}"
tmo="${MUTANTS_TIMEOUT:-600}"
vectors="${DG_VECTORS_DIR:-$root/../shared/vectors/wycheproof}"
# Vector tests must not skip when the vectors are there (as in scripts/test.sh and .ci/run).
if [ -z "${DG_REQUIRE_VECTORS:-}" ] && [ -d "$vectors" ]; then export DG_REQUIRE_VECTORS=1; fi

usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
    exit "$1"
}

# --- the entries -------------------------------------------------------------------------------

ids=() files=() expects=() tests=()
entries="$("$py" scripts/mutant_entry.py list "$root")" || exit 2
while IFS=$'\t' read -r id file expect named; do
    ids+=("$id")
    files+=("$file")
    expects+=("$expect")
    tests+=("$named")
done <<<"$entries"
n_entries=${#ids[@]}

index_of() {
    local i
    for ((i = 0; i < n_entries; i++)); do
        if [ "${ids[i]}" = "$1" ]; then
            echo "$i"
            return 0
        fi
    done
    echo "mutants: no entry tests/mutants/$1.mut" >&2
    exit 2
}

sel=()
case "${1:-}" in
-h | --help) usage 0 ;;
--list)
    for ((i = 0; i < n_entries; i++)); do
        printf '%-34s %-7s %-28s %s\n' "${ids[i]}" "${expects[i]}" "${files[i]}" "${tests[i]}"
    done
    exit 0
    ;;
--all)
    for ((i = 0; i < n_entries; i++)); do sel+=("$i"); done
    ;;
"")
    active=()
    for ((i = 0; i < n_entries; i++)); do
        if [ "${expects[i]}" = kill ]; then active+=("$i"); fi
    done
    k="${MUTANTS_SUBSET:-4}"
    day=$((10#${MUTANTS_DAY:-$(date +%j)}))
    if [ "$k" -gt "${#active[@]}" ]; then k=${#active[@]}; fi
    if [ "$k" -eq 0 ]; then
        echo "mutants: subset of 0, nothing to run"
        exit 0
    fi
    start=$(((day - 1) * k % ${#active[@]}))
    for ((i = 0; i < k; i++)); do sel+=("${active[(start + i) % ${#active[@]}]}"); done
    echo "mutants: day $day, $k of ${#active[@]} rotating entries (MUTANTS_SUBSET, MUTANTS_DAY)"
    ;;
-*) usage 2 >&2 ;;
*)
    for a in "$@"; do sel+=("$(index_of "$a")"); done
    ;;
esac

# --- the scratch tree ----------------------------------------------------------------------------

# Copy every tracked or unignored file whose content differs. Copies get a new mtime, so the
# build sees them even when a run was interrupted with a mutant in place.
sync_tree() {
    local f
    mkdir -p "$src" "$logs"
    while IFS= read -r -d '' f; do
        [ -f "$root/$f" ] || continue
        if ! cmp -s "$root/$f" "$src/$f"; then
            mkdir -p "$src/$(dirname "$f")"
            cp --preserve=mode "$root/$f" "$src/$f"
        fi
    done < <(git -C "$root" ls-files -z --cached --others --exclude-standard)
}

applied=""
revert() {
    if [ -n "$applied" ]; then
        cp --preserve=mode "$root/$applied" "$src/$applied"
        applied=""
    fi
}
trap revert EXIT
trap 'exit 130' INT TERM

# The build targets a list of tests needs: unit tests are their own targets; pytest needs the
# binary and the LD_PRELOAD spy of test_secret_bodies.py.
targets_for() {
    local t need_bin=0 out=()
    for t in "$@"; do
        case "$t" in
        *::* | *.py) need_bin=1 ;;
        *) out+=("$t") ;;
        esac
    done
    if [ "$need_bin" = 1 ]; then out+=(difyguard mhd_spy); fi
    printf '%s\n' "${out[@]}" | sort -u
}

build() {
    local log="$1"
    shift
    local targets
    mapfile -t targets < <(targets_for "$@")
    cmake --build "$bld" -j"$jobs" --target "${targets[@]}" >"$log" 2>&1
}

# Run the named tests; failed=() gets those that failed (a timeout or crash counts).
failed=()
run_tests() {
    local log="$1"
    shift
    local t h hit rc unit=() nodes=() hits=()
    failed=()
    : >"$log"
    for t in "$@"; do
        case "$t" in
        *::* | *.py) nodes+=("$t") ;;
        *) unit+=("$t") ;;
        esac
    done
    for t in "${unit[@]}"; do
        if ! (cd "$bld" && ctest -R "^${t}\$" --no-tests=error --timeout "$tmo" \
            --output-on-failure) >>"$log" 2>&1; then
            failed+=("$t")
        fi
    done
    [ ${#nodes[@]} -gt 0 ] || return 0
    rc=0
    (cd "$src" && DIFYGUARD_BIN="$bld/server/difyguard" DG_SOURCE_DIR="$src" \
        DG_MHD_SPY_LIB="$bld/tests/integration/libmhd_spy.so" \
        timeout --kill-after=20 "$tmo" "$py" -m pytest -q -p no:cacheprovider -rfE \
        "${nodes[@]}") >>"$log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || return 0
    mapfile -t hits < <(grep -E '^(FAILED|ERROR) tests/' "$log" | awk '{print $2}' || true)
    for t in "${nodes[@]}"; do
        # a node fails when it or one of its parameter cases is listed (ERROR: setup/teardown,
        # such as the session's log scan, which pytest attributes to the last test); when
        # nothing is listed (a crash, a timeout) every node counts as failed
        hit=$((${#hits[@]} == 0))
        for h in "${hits[@]}"; do
            if [ "$h" = "$t" ] || [[ "$h" == "${t}["* ]]; then hit=1; fi
        done
        if [ "$hit" = 1 ]; then failed+=("$t"); fi
    done
    if [ "$rc" -eq 124 ]; then echo "mutants: pytest timed out after ${tmo}s" >>"$log"; fi
}

now() { date +%s; }

# --- baseline: the unmutated tree must build and pass every named test -----------------------------

mkdir -p "$work"
exec 9>"$work/lock"
flock -n 9 || { echo "mutants: another run is using $work (set MUTANTS_WORK)"; exit 2; }
sync_tree
cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_VECTORS_DIR="$vectors" \
    >"$logs/configure.log" 2>&1 || { tail -30 "$logs/configure.log"; exit 2; }
all_tests=()
for i in "${sel[@]}"; do
    read -ra t <<<"${tests[i]}"
    all_tests+=("${t[@]}")
done
mapfile -t all_tests < <(printf '%s\n' "${all_tests[@]}" | sort -u)
t0=$(now)
if ! build "$logs/baseline.build.log" "${all_tests[@]}"; then
    tail -40 "$logs/baseline.build.log"
    echo "mutants: the unmutated tree does not build"
    exit 2
fi
t1=$(now)
run_tests "$logs/baseline.test.log" "${all_tests[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    tail -60 "$logs/baseline.test.log"
    echo "mutants: on the unmutated tree these named tests fail (fix them first): ${failed[*]}"
    exit 2
fi
echo "mutants: baseline built in $((t1 - t0))s, ${#all_tests[@]} named tests pass in $(($(now) - t1))s"

# --- the mutants -----------------------------------------------------------------------------------

killed=0 survived=0 errors=0 stale=0 n=0
report=()
printf 'id\tresult\tbuild_s\ttest_s\tkilled_by\tnot_killed_by\n' >"$work/results.tsv"
for i in "${sel[@]}"; do
    id="${ids[i]}"
    n=$((n + 1))
    entry="$root/tests/mutants/$id.mut"
    read -ra named <<<"${tests[i]}"
    printf '[%d/%d] %-34s ' "$n" "${#sel[@]}" "$id"
    if ! "$py" scripts/mutant_entry.py apply "$entry" "$src"; then
        echo "ERROR: does not apply"
        errors=$((errors + 1))
        continue
    fi
    applied="${files[i]}"
    t0=$(now)
    if ! build "$logs/$id.build.log" "${named[@]}"; then
        revert
        echo "ERROR: does not build (see $logs/$id.build.log)"
        grep -m5 -E 'error' "$logs/$id.build.log" || true
        errors=$((errors + 1))
        continue
    fi
    t1=$(now)
    run_tests "$logs/$id.test.log" "${named[@]}"
    revert
    t2=$(now)
    times="build $((t1 - t0))s, tests $((t2 - t1))s"
    spared=()
    for t in "${named[@]}"; do
        [[ " ${failed[*]} " == *" $t "* ]] || spared+=("$t")
    done
    if [ ${#failed[@]} -gt 0 ]; then
        killed=$((killed + 1))
        result=killed
        echo "killed by ${failed[*]} ($times)"
        if [ "${expects[i]}" = survive ]; then
            stale=$((stale + 1))
            report+=("  $id is now killed: drop its survives:/wanted: lines so CI rotates it")
        fi
    else
        survived=$((survived + 1))
        result=survived
        echo "SURVIVED ($times; log $logs/$id.test.log)"
        if [ "${expects[i]}" = survive ]; then
            report+=("  $id (known): $("$py" scripts/mutant_entry.py field "$entry" survives)")
            report+=("      wanted: $("$py" scripts/mutant_entry.py field "$entry" wanted)")
        else
            report+=("  $id: none of ${named[*]} fails; breaks: $("$py" \
                scripts/mutant_entry.py field "$entry" breaks)")
        fi
    fi
    printf '%s\t%s\t%d\t%d\t%s\t%s\n' "$id" "$result" $((t1 - t0)) $((t2 - t1)) \
        "${failed[*]}" "${spared[*]}" >>"$work/results.tsv"
done

if [ ${#report[@]} -gt 0 ]; then
    echo "mutants: to look at:"
    printf '%s\n' "${report[@]}"
fi
broken=""
if [ "$errors" -gt 0 ]; then broken=" ($errors broken: see above)"; fi
echo "mutants: $killed killed, $survived survived of $n$broken"
if [ "$errors" -gt 0 ]; then exit 2; fi
if [ "$survived" -gt 0 ] || [ "$stale" -gt 0 ]; then exit 1; fi
exit 0
