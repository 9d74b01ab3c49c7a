# SPDX-License-Identifier: Apache-2.0
# Fuzz targets for server/ parsers; included by fuzz/CMakeLists.txt. Run one with its corpus and
# dictionary: fuzz_config -dict=fuzz/config.dict fuzz/corpus/fuzz_config
dg_fuzz(fuzz_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.c ${CMAKE_SOURCE_DIR}/server/config.c
    LIBS dg_common PkgConfig::JANSSON)

# Request JSON decoding of the crypto routes (single and batch), no keys involved.
dg_fuzz(fuzz_request
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_request.c
    LIBS dg_server)
