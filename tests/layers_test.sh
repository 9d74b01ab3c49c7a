#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The layer check catches what it is for: on a copy of the tree it passes, then fails, naming the
# file, for each planted violation (crypto including the server, the store including libsodium,
# a handler reaching the store directly, a manager including a handler, common including jansson).
set -euo pipefail
src="${DG_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
copy() {
    rm -rf "$work/tree"; mkdir -p "$work/tree"
    (cd "$src" && git ls-files -z '*.c' '*.h' 'scripts/layers.sh') |
        (cd "$src" && xargs -0 cp --parents -t "$work/tree")
    (cd "$work/tree" && git init -q && git add -A)
}
check() {   # file, line to plant, what the message must name
    copy
    printf '%s\n' "$2" >>"$work/tree/$1"
    (cd "$work/tree" && git add -A)
    if out="$("$work/tree/scripts/layers.sh" "$work/tree" 2>&1)"; then
        echo "FAIL: planting $2 in $1 passed the layer check"; exit 1
    fi
    grep -qF "$1" <<<"$out" && grep -qF "$3" <<<"$out" ||
        { echo "FAIL: the report does not name $1 and $3:"; echo "$out"; exit 1; }
    echo "ok: $1 + $2"
}
copy
"$work/tree/scripts/layers.sh" "$work/tree" >/dev/null || { echo "FAIL: the clean tree fails"; exit 1; }
echo "ok: the tree as it is passes"
check crypto/aead.c '#include "server/service.h"' 'server/service.h'
check store/store.c '#include <sodium.h>' '<sodium.h>'
check server/handlers/crypto.c '#include "store/store.h"' 'store/store.h'
check server/keyrings.c '#include "server/handlers/handlers.h"' 'server/handlers/handlers.h'
check common/log.c '#include <jansson.h>' '<jansson.h>'
check server/http/router.c '#include "server/handlers/handlers.h"' 'server/handlers/handlers.h'
check cli/client.c '#include "server/keyrings.h"' 'server/keyrings.h'
