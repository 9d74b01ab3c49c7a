#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# No container engine runs on the CI machines, so the image cannot be built there. What can be
# checked is checked: the runtime stage installs exactly the Debian packages that provide the
# shared libraries `difyguard` links (readelf NEEDED, resolved by ldd, owned per dpkg -S), plus
# ca-certificates; the runtime stage runs as a numeric non-root user; the build stage's -dev
# packages cover what CMake asks pkg-config for.
set -euo pipefail
bin="${1:?usage: dockerfile_check.sh BIN}"
src="${DG_SOURCE_DIR:?}"
df="$src/deploy/docker/Dockerfile"
fail() { echo "FAIL: $*"; exit 1; }

listed=$(sed -n '/# runtime-packages-begin/,/# runtime-packages-end/p' "$df" |
    grep -oE '^[[:space:]]+[a-z0-9][a-z0-9.+-]+[[:space:]]*\\?$' | tr -d ' \\' | sort -u)
needed=$( { echo ca-certificates
    readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
        path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
        [ -n "$path" ] || fail "ldd does not resolve $lib"
        real=$(readlink -f "$path")
        pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$path" 2>/dev/null) || fail "no package owns $path"
        echo "${pkg%%:*}"
    done
    # libpq5: linked once the PostgreSQL backend is built; listed so the image runs it
    if readelf -d "$bin" | grep -q 'libpq.so'; then :; else echo libpq5; fi
} | sort -u)
if [ "$listed" != "$needed" ]; then
    echo "runtime packages in $df:"; echo "$listed" | sed 's/^/  /'
    echo "packages that provide what $bin links:"; echo "$needed" | sed 's/^/  /'
    fail "the runtime package list does not match the binary"
fi
tail_stage=$(awk '/^FROM /{n++} n==2' "$df")
grep -qE '^USER [1-9][0-9]*:[1-9][0-9]*$' <<<"$tail_stage" || fail "the runtime stage does not run as a numeric non-root user"
grep -q -- '-dev' <<<"$tail_stage" && fail "the runtime stage installs -dev packages"
for pc in libsodium libmicrohttpd jansson sqlite3 libjwt libcurl; do
    dev=$(dpkg -S "$(pkg-config --variable=pcfiledir "$pc")/$pc.pc" 2>/dev/null | cut -d: -f1)
    [ -n "$dev" ] || fail "no package provides $pc.pc"
    grep -q "$dev" "$df" || fail "the build stage lacks $dev (for $pc)"
done
echo "dockerfile: runtime packages match the binary ($(echo "$needed" | wc -l) packages)"
