#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/systemd/difyguard.service: `systemd-analyze verify` is clean (with the unit pointed at
# this build's binary), the hardening the README promises is present, and the offline security
# score stays in systemd's "OK" band (exposure below 2.0).
set -euo pipefail
bin="${1:?usage: systemd_check.sh BIN}"
unit="${DG_SOURCE_DIR:?}/deploy/systemd/difyguard.service"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (package systemd)"
sed "s#/usr/local/bin/difyguard#$bin#g" "$unit" >"$work/difyguard.service"
out=$(systemd-analyze verify "$work/difyguard.service" 2>&1) || fail "verify: $out"
[ -z "$out" ] || fail "verify printed: $out"
for want in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    MemoryDenyWriteExecute=yes 'SystemCallFilter=@system-service' LoadCredential=root.key: \
    LimitCORE=0 DynamicUser=yes 'CapabilityBoundingSet='; do
    grep -q "^$want" "$unit" || fail "the unit lacks $want"
done
grep -q -- '--root-key ${CREDENTIALS_DIRECTORY}/root.key' "$unit" || fail "the root key is not read from the credential"
grep -qE '^Environment=.*(ROOT|KEY|TOKEN)' "$unit" && fail "a secret in Environment="
score=$(systemd-analyze security --offline=yes "$work/difyguard.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for difyguard.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no security score"
awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || fail "exposure $score is not below 2.0"
echo "systemd: verify clean, exposure $score"
