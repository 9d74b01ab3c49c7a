# SPDX-License-Identifier: Apache-2.0
# Run as `cmake -DSQL_DIR=... -DPREFIX=sqlite -DOUT=file.c -P embed_sql.cmake`: writes a C source
# holding every SQL_DIR/NNNN_what.sql as a string literal, for server/store/store_migrations.h.
# Checks here what the runner relies on: names NNNN_what.sql, versions 1..N without gaps.
if(NOT SQL_DIR OR NOT PREFIX OR NOT OUT)
    message(FATAL_ERROR "embed_sql.cmake: SQL_DIR, PREFIX and OUT are required")
endif()

file(GLOB files RELATIVE "${SQL_DIR}" "${SQL_DIR}/*.sql")
list(SORT files)
if(NOT files)
    message(FATAL_ERROR "embed_sql.cmake: no migrations in ${SQL_DIR}")
endif()

get_filename_component(parent "${SQL_DIR}/../.." ABSOLUTE)
file(RELATIVE_PATH shown "${parent}" "${SQL_DIR}")
set(body "/* Generated from ${shown}/NNNN_what.sql by server/store/embed_sql.cmake: do not edit. */\n")
string(APPEND body "#include \"server/store/store_migrations.h\"\n\n")
set(table "")
set(expect 1)
foreach(name IN LISTS files)
    if(NOT name MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
        message(FATAL_ERROR "embed_sql.cmake: ${SQL_DIR}/${name}: want NNNN_what.sql")
    endif()
    string(REGEX REPLACE "^0+" "" version "${CMAKE_MATCH_1}")
    if(NOT version EQUAL expect)
        message(FATAL_ERROR "embed_sql.cmake: ${SQL_DIR}/${name}: expected version ${expect}")
    endif()
    math(EXPR expect "${expect} + 1")

    file(READ "${SQL_DIR}/${name}" sql)
    # Escape for a C string literal; "??" would start a trigraph under -std=c11.
    string(REPLACE "\\" "\\\\" sql "${sql}")
    string(REPLACE "\"" "\\\"" sql "${sql}")
    string(REPLACE "??" "?\\?" sql "${sql}")
    string(REPLACE "\t" "\\t" sql "${sql}")
    string(REPLACE "\r" "" sql "${sql}")
    string(REPLACE "\n" "\\n\"\n    \"" sql "${sql}")
    string(REGEX REPLACE "_[a-z0-9_]+\\.sql$" "" ident "${name}")
    string(REPLACE ".sql" "" label "${name}")
    string(APPEND body "static const char ${PREFIX}_${ident}[] =\n    \"${sql}\";\n\n")
    string(APPEND table "    {${version}, \"${label}\", ${PREFIX}_${ident}},\n")
endforeach()
math(EXPR count "${expect} - 1")

string(APPEND body "const struct store_migration store_migrations_${PREFIX}[] = {\n${table}};\n")
string(APPEND body "const size_t store_migrations_${PREFIX}_n = ${count};\n")

# Only touch the output when it changes, so an unrelated re-run does not rebuild dg_store.
if(EXISTS "${OUT}")
    file(READ "${OUT}" old)
    if(old STREQUAL body)
        return()
    endif()
endif()
file(WRITE "${OUT}" "${body}")
