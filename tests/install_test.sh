#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cmake --install` puts the binary, the docs and the packaged data where packagers expect them,
# and the installed binary runs.
set -euo pipefail
build="${1:?usage: install_test.sh BUILD_DIR}"
prefix="$(mktemp -d)"; trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
fail() { echo "FAIL: $*"; find "$prefix" -maxdepth 4 | sort | head -50; exit 1; }
[ -x "$prefix/bin/difyguard" ] || fail "no bin/difyguard"
for f in README.md SECURITY.md HACKING.md openapi.yaml audit.md internals/layers.md; do
    [ -f "$prefix/share/doc/difyguard/$f" ] || fail "no share/doc/difyguard/$f"
done
if [ -d "${DG_SOURCE_DIR:?}/policies/packs" ]; then
    ls "$prefix/share/difyguard/policies/"*.json >/dev/null 2>&1 || fail "no policy packs"
fi
"$prefix/bin/difyguard" version | grep -q "difyguard" || fail "the installed binary does not run"
# difyguard(1), generated from the help text at build time (issue 14)
man1="$prefix/share/man/man1/difyguard.1"
[ -f "$man1" ] || fail "no share/man/man1/difyguard.1"
grep -q "keyring update" "$man1" || fail "the man page lacks the keyring subcommands' help"
if command -v man >/dev/null; then
    warn=$(man --warnings -l "$man1" 2>&1 >/dev/null) || fail "man cannot render difyguard.1"
    [ -z "$warn" ] || fail "difyguard.1 renders with warnings: $warn"
fi
echo "install: ok ($prefix)"
