#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The layer check: a lower layer never includes a higher one (DESIGN.md, Code layout; HACKING.md).
# Each file of the tree belongs to the first layer below whose path pattern matches it; every
# project include ("dir/file.h") must match that layer's allowed pattern, and no system include
# (<...>) may match its forbidden pattern. tests/, fuzz/ and bench/ may include anything.
#   scripts/layers.sh          check the tree (exit 1 and one line per violation)
#   scripts/layers.sh DIR      check another checkout (the planted-violation test uses this)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

# layer; files (ERE on the path); allowed project includes (ERE); forbidden system includes (ERE
# alternatives, matched at the start of the <...> name; - for none)
rules=(
"common/json;^common/json/;^common/;microhttpd|sqlite3|libpq|openssl/|sodium|curl/"
"common;^common/;^common/[a-z_]+\.h$;jansson|microhttpd|sqlite3|libpq|openssl/|sodium|curl/"
"crypto;^crypto/;^(common/[a-z_]+\.h|crypto/);jansson|microhttpd|sqlite3|libpq|curl/"
"store;^store/;^(common/[a-z_]+\.h|store/);sodium|openssl/|microhttpd|jansson|curl/"
"policies;^policies/;^(common/|crypto/|policies/);microhttpd|sqlite3|libpq|curl/"
"audit format;^server/audit/(format|verify);^(common/|crypto/|server/audit/(format|format_priv|verify_priv)\.h$);microhttpd|sqlite3|libpq|curl/"
"cli;^cli/;^(common/|crypto/|cli/|policies/|server/audit/format\.h$);microhttpd|sqlite3|libpq"
"obs;^server/obs/;^(common/|server/obs/);microhttpd|sqlite3|libpq|sodium"
"http;^server/http/;^(common/|crypto/|server/http/|server/obs/|server/auth/principal\.h$);sqlite3|libpq"
"auth;^server/auth/;^(common/|crypto/|store/store\.h$|server/auth/|server/obs/);microhttpd|sqlite3|libpq"
"audit;^server/audit/;^(common/|crypto/|store/store\.h$|server/audit/|server/obs/|server/(sealed|svckey)\.h$);microhttpd|sqlite3|libpq"
"handlers;^server/handlers/;^(common/|crypto/|server/);sqlite3|libpq"
"main;^server/main(_tls|_help)?\.[ch]$;^(common/|crypto/|store/store\.h$|cli/|server/);sqlite3|libpq"
"service;^server/service\.[ch]$;^(common/|crypto/|policies/|store/store\.h$|server/[a-z_]+\.h$|server/(audit|auth|obs)/[a-z_]+\.h$|server/http/http\.h$);sqlite3|libpq|microhttpd"
"managers;^server/[a-z_]+\.[ch]$;^(common/|crypto/|policies/|store/store\.h$|server/(apps|keyrings|keyrings_priv|keymetrics|svckey|sealed|datalock|janitor|certs|certs_priv|inventory|compliance)\.h$|server/(audit|auth|obs)/[a-z_]+\.h$);sqlite3|libpq|microhttpd"
)

bad=0
while IFS= read -r f; do
    case "$f" in tests/*|fuzz/*|bench/*) continue ;; esac
    layer=""
    for r in "${rules[@]}"; do
        IFS=';' read -r name files allowed forbid <<<"$r"
        if [[ "$f" =~ $files ]]; then
            layer="$name"
            break
        fi
    done
    if [ -z "$layer" ]; then
        echo "layers: $f: in no layer (add it to scripts/layers.sh)"
        bad=1
        continue
    fi
    while IFS=: read -r line inc; do
        if [[ "$inc" =~ ^#include\ \"([^\"]+)\" ]]; then
            h="${BASH_REMATCH[1]}"
            [[ "$h" == */* ]] || continue           # same-directory private headers
            if ! [[ "$h" =~ $allowed ]]; then
                echo "layers: $f:$line: the $layer layer must not include \"$h\""
                bad=1
            fi
        elif [[ "$inc" =~ ^#include\ \<([^\>]+)\> ]]; then
            h="${BASH_REMATCH[1]}"
            if [ "$forbid" != "-" ] && [[ "$h" =~ ^($forbid) ]]; then
                echo "layers: $f:$line: the $layer layer must not include <$h>"
                bad=1
            fi
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f" | sed 's/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*/\1:#include /')
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*' | sed 's#^\./##')

if [ "$bad" -ne 0 ]; then
    echo "layers: a lower layer includes a higher one (see HACKING.md for the map)"
    exit 1
fi
echo "layers: clean"
