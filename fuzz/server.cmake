# SPDX-License-Identifier: Apache-2.0
# Fuzz targets for server/ parsers; included by fuzz/CMakeLists.txt. Run one with its corpus and
# dictionary: fuzz_config -dict=fuzz/config.dict fuzz/corpus/fuzz_config
dg_fuzz(fuzz_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.c ${CMAKE_SOURCE_DIR}/common/json/config.c
    LIBS dg_common PkgConfig::JANSSON)

# Request JSON decoding of the crypto routes (single and batch), no keys involved.
dg_fuzz(fuzz_request
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_request.c
    LIBS dg_server)

# fuzz_jwt -dict=fuzz/jwt.dict and fuzz_authz -dict=fuzz/authz.dict.
# JWT verification (our strict split and header checks, then libjwt) with in-memory HS256,
# RS256 and ES256 keys; and the Authorization header classifier (API key vs JWT vs malformed).
if(NOT TARGET PkgConfig::LIBJWT)
    pkg_check_modules(LIBJWT REQUIRED IMPORTED_TARGET libjwt>=1.10)
endif()
dg_fuzz(fuzz_jwt
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_jwt.c ${CMAKE_SOURCE_DIR}/server/auth/jwt.c
    LIBS dg_server dg_crypto dg_common PkgConfig::LIBJWT PkgConfig::JANSSON OpenSSL::Crypto m)
# The oracle accepts only seed tokens that verify, read from the source corpus at start.
target_compile_definitions(fuzz_jwt PRIVATE
    DG_FUZZ_SEEDS="${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_jwt")
dg_fuzz(fuzz_authz
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_authz.c ${CMAKE_SOURCE_DIR}/server/auth/authz.c
    LIBS dg_crypto dg_common)

# The offline audit export verifier (`difyguard audit verify`). Seeds are valid exports signed with
# the driver's fixed key; tests/unit/server/audit/format_test.c writes and checks them.
dg_fuzz(fuzz_audit_verify
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_audit_verify.c
    LIBS dg_auditfmt dg_crypto dg_common PkgConfig::JANSSON)
# Its oracle: accepted lines must be seed lines (read from the source corpus at start).
target_compile_definitions(fuzz_audit_verify PRIVATE
    DG_FUZZ_SEEDS="${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_audit_verify")

# W3C traceparent/tracestate headers and the OTEL_* key=value lists (server/obs/trace_parse.c).
dg_fuzz(fuzz_trace
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_trace.c
    LIBS dg_server)
# A certificate source's JSON (POST /v1/certificates, --cert-sources entries).
dg_fuzz(fuzz_cert_source
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_cert_source.c
    LIBS dg_server)
# Policy packs and parameter overrides (policies/pack.h), then the evaluator over what parsed.
dg_fuzz(fuzz_policy_pack
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_policy_pack.c
    LIBS dg_policies dg_json dg_common PkgConfig::JANSSON)

# The offline verifier of signed compliance reports (`difyguard report verify`). Seeds are reports
# signed with the driver's fixed key; tests/unit/policies/report_test.c writes and checks them.
dg_fuzz(fuzz_report_verify
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_report_verify.c
    LIBS dg_policies dg_crypto dg_json dg_common PkgConfig::JANSSON PkgConfig::SODIUM)
target_compile_definitions(fuzz_report_verify PRIVATE
    DG_FUZZ_SEEDS="${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_report_verify")

# Query-string times and the unknown-field message (issue 14).
dg_fuzz(fuzz_query
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_query.c
    LIBS dg_server)
# The CLI's client config file (issue 14).
dg_fuzz(fuzz_client_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_client_config.c
    LIBS dg_cli)
