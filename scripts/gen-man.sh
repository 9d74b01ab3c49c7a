#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Write difyguard(1) from the binary's own help text: the top-level usage, then each command's and
# each subcommand's --help, verbatim. Run at build time (CMake target `man`), so the page cannot
# drift from --help. Usage: scripts/gen-man.sh path/to/difyguard > difyguard.1
set -euo pipefail
bin="$1"
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"; }
section() {
    printf '.SS %s\n.nf\n' "$1"
    "$bin" "${@:2}" --help 2>&1 | esc
    printf '.fi\n'
}
version=$("$bin" version | sed -n '1s/^difyguard //p')
printf '.TH DIFYGUARD 1 "" "difyguard %s" "User Commands"\n' "$version"
printf '.SH NAME\ndifyguard \\- secrets and compliance guard for Dify\n'
printf '.SH SYNOPSIS\n.B difyguard\n.I COMMAND\n[options]\n'
printf '.SH DESCRIPTION\n.nf\n'
"$bin" --help | esc
printf '.fi\n.SH COMMANDS\n'
for cmd in init serve admin-key rotate-root-key migrate version completion; do
    section "difyguard $cmd" "$cmd"
done
for group in "app:create list show usage" "key:create list show revoke rotate" \
             "keyring:create list show rotate update delete" "cert:add list show history remove" \
             "audit:verify events public-key export"; do
    g=${group%%:*}
    section "difyguard $g" "$g"
    for s in ${group#*:}; do
        section "difyguard $g $s" "$g" "$s"
    done
done
printf '.SH EXIT STATUS\n0 success; 1 a runtime failure (an API error, an unreachable server, a trail that does not verify); 2 a usage error. Unlike Vault, an API error is 1, not 2.\n'
printf '.SH SEE ALSO\nThe README and docs/openapi.yaml of the difyguard source.\n'
