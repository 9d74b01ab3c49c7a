# SPDX-License-Identifier: Apache-2.0
# Fuzz targets for crypto/ parsers; included by fuzz/CMakeLists.txt. Run one with its corpus and
# dictionary: fuzz_envelope -dict=fuzz/envelope.dict fuzz/corpus/fuzz_envelope
dg_fuzz(fuzz_envelope SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_envelope.c LIBS dg_crypto)
dg_fuzz(fuzz_context SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_context.c LIBS dg_crypto)
dg_fuzz(fuzz_cert SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_cert.c LIBS dg_crypto OpenSSL::Crypto)
