# SPDX-License-Identifier: Apache-2.0
# Fuzz targets for cli/ parsers; included by fuzz/CMakeLists.txt.
dg_fuzz(fuzz_dotenv SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_dotenv.c LIBS dg_dotenv)
