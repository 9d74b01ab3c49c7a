#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what difyguard needs on Debian 12, only when something is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-format clang-tidy libclang-rt-14-dev
      libsodium-dev libssl-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev libcmocka-dev libjwt-dev
      curl libcurl4-openssl-dev ca-certificates openssl sqlite3
      cppcheck python3 python3-pytest python3-requests python3-yaml python3-jsonschema
      python3-nacl systemd faketime
      prometheus prometheus-alertmanager
      chromium)   # headless, renders the HTML compliance report in test_compliance.py
# issue 9: GnuTLS headers (the listener's certificate callback and mutual TLS use its API; already
# pulled in by libmicrohttpd-dev, named here because the code includes them), certificates made
# by the tests (python3-cryptography).
pkgs+=(libgnutls28-dev python3-cryptography)
# issue 8: Dify-format (RSA-OAEP + AES-EAX) ciphertexts made by the provider and migrator tests.
pkgs+=(python3-pycryptodome)
# issue 12: the PostgreSQL backend links libpq; its tests start a throwaway PostgreSQL server
# (scripts/pgtest.sh: initdb into a temporary directory, a unix socket there).
pkgs+=(libpq-dev postgresql)
if [ "${1:-}" = "--bench" ]; then pkgs+=(wrk nginx-light); fi
# `kubectl kustomize` renders deploy/kustomize in the tests: any kubectl on PATH will do (the
# manifests stay within what Debian's kubectl 1.20 renders), else Debian's.
command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
