# SPDX-License-Identifier: Apache-2.0
# Helpers for the -P scripts that embed files into C sources (store/embed_sql.cmake,
# policies/embed_packs.cmake).

# dg_c_literal(VAR TEXT): TEXT as the inside of a C string literal split at its line ends
# (backslashes and quotes escaped, "??" broken up so no trigraph forms under -std=c11, tabs as \t,
# CR dropped).
function(dg_c_literal var text)
    string(REPLACE "\\" "\\\\" text "${text}")
    string(REPLACE "\"" "\\\"" text "${text}")
    string(REPLACE "??" "?\\?" text "${text}")
    string(REPLACE "\t" "\\t" text "${text}")
    string(REPLACE "\r" "" text "${text}")
    string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
    set(${var} "${text}" PARENT_SCOPE)
endfunction()

# dg_write_if_changed(OUT BODY): write only when the content differs, so a re-run that changes
# nothing does not rebuild what depends on OUT.
function(dg_write_if_changed out body)
    if(EXISTS "${out}")
        file(READ "${out}" old)
        if(old STREQUAL body)
            return()
        endif()
    endif()
    file(WRITE "${out}" "${body}")
endfunction()
