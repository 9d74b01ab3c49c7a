# SPDX-License-Identifier: Apache-2.0
# Write OUT (dg_revision.h) with the source commit, at every build, touching it only when the
# commit changed: `difyguard version`, the listening line and difyguard_build_info never name a
# stale commit. "unknown" outside git. cmake -DSRC=... -DOUT=... -P revision.cmake
execute_process(COMMAND git -C ${SRC} rev-parse --short=12 HEAD
    OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT rev)
    set(rev unknown)
endif()
set(text "#define DG_REVISION \"${rev}\"\n")
set(old "")
if(EXISTS ${OUT})
    file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
    file(WRITE ${OUT} "${text}")
endif()
