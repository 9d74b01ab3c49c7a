/* SPDX-License-Identifier: Apache-2.0 */
/* server/main_help.c -- what the command line says about itself (issue 14): the top-level usage,
 * `help CMD [SUB]`, `version` with the commit and the libraries' versions, and shell completion
 * scripts that ask the binary itself for each command's options. */
#include "server/main_help.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "store/store.h"

#include "dg_revision.h" /* generated at build time: DG_REVISION */

void
main_usage(FILE *f)
{
    fprintf(f,
            "usage: difyguard COMMAND [options]   (difyguard help COMMAND, or COMMAND --help)\n\n"
            "Secrets and compliance guard for Dify: envelope encryption over HTTP.\n\n"
            "commands:\n"
            "  init             create the root key, database and admin API key\n"
            "  serve            run the HTTP service\n"
            "  admin-key        break-glass: mint a new admin API key with the root key\n"
            "  rotate-root-key  rewrap all key versions under a new root key\n"
            "  migrate          apply database migrations and exit\n"
            "  audit            verify an export offline; events, public-key, export (API)\n"
            "  report verify    verify a signed compliance report offline\n"
            "  app              create, list and show apps; their usage (over the API)\n"
            "  key              create, list, show, revoke and rotate API keys (over the API)\n"
            "  keyring          create, list, show, rotate, update, delete keyrings (API)\n"
            "  cert             add, list, show, history and remove certificate sources (API)\n"
            "  env              encrypted dotenv files: encrypt, decrypt, exec, check\n"
            "  help             help COMMAND [SUBCOMMAND]: that command's help\n"
            "  completion       completion bash|zsh: a shell completion script\n"
            "  version          print the version, the commit and the libraries' versions\n\n"
            "Every option also reads DIFYGUARD_<OPTION> (e.g. DIFYGUARD_DATA_DIR) and the JSON\n"
            "file given by --config; flags win over variables, variables over the file. Options\n"
            "of app/key/keyring that say what is granted or changed are flags only. The API\n"
            "commands also read ~/.config/difyguard/client.json (addr, cacert, token; mode 0600).\n"
            "Durations: 90d, 12h, 30m, 45s, compounds such as 1h30m (--timeout: also 500ms).\n"
            "A boolean flag takes --flag, --flag=false or --flag false.\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 usage error (audit verify: 1 when the trail\n"
            "does not verify). These are not Vault's (which exits 2 for API errors too).\n");
}

int
main_help(int argc, char **argv, int (*run)(int argc, char **argv))
{
    char *args[4] = {NULL, NULL, NULL, NULL};
    char help[] = "--help";

    if (argc < 2) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: difyguard help [COMMAND [SUBCOMMAND]]\n"
               "Print a command's help: the same text as difyguard COMMAND [SUBCOMMAND] --help.\n");
        return 0;
    }
    if (argc > 3) {
        fprintf(stderr, "difyguard: help takes a command and, optionally, a subcommand\n");
        return 2;
    }
    /* `difyguard help keyring create` is `difyguard keyring create --help` */
    args[0] = argv[1];
    args[1] = argc == 3 ? argv[2] : help;
    args[2] = argc == 3 ? help : NULL;
    return run(argc == 3 ? 3 : 2, args);
}

const char *
main_revision(void)
{
    return DG_REVISION;
}

void
main_version_libraries(char *out, size_t cap)
{
    char db[128];
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    store_library_versions(db, sizeof db);
    snprintf(out, cap,
             "libsodium %s, %s, libmicrohttpd %s, GnuTLS %s, jansson %s, libcurl %s, libjwt "
             "(linked), %s",
             sodium_version_string(), OpenSSL_version(OPENSSL_VERSION), MHD_get_version(),
             gnutls_check_version(NULL), jansson_version_str(), cv != NULL ? cv->version : "?", db);
}

int
main_version(int argc, char **argv)
{
    char libs[512];
    bool json =
        argc == 2 && (strcmp(argv[1], "--json") == 0 || strcmp(argv[1], "--output=json") == 0);

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: difyguard version [--json]\n"
               "Print the version, the source commit it was built from and the versions of the\n"
               "libraries it runs with (the same version and commit as difyguard_build_info in\n"
               "/metrics).\n");
        return 0;
    }
    if (argc > 1 && !json) {
        fprintf(stderr, "difyguard: version: unknown option %.40s (it takes --json)\n", argv[1]);
        return 2;
    }
    main_version_libraries(libs, sizeof libs);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "version", DG_VERSION, "commit", DG_REVISION,
                              "libraries", libs);
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(j);
    } else {
        printf("difyguard %s\ncommit: %s\nlibraries: %s\n", DG_VERSION, DG_REVISION, libs);
    }
    return 0;
}

/* The completion scripts: commands and subcommands are listed here; each command's options come
 * from its own --help at completion time, so they never drift. */
static const char bash_script[] =
    "# difyguard bash completion: eval \"$(difyguard completion bash)\"\n"
    "_difyguard() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} sub=''\n"
    "    local cmds='init serve admin-key rotate-root-key migrate audit app key keyring cert help "
    "completion version'\n"
    "    if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W \"$cmds\" -- \"$cur\")); "
    "return; fi\n"
    "    case $cmd in\n"
    "        app) sub='create list show usage' ;;\n"
    "        key) sub='create list show revoke rotate' ;;\n"
    "        keyring) sub='create list show rotate update delete' ;;\n"
    "        cert) sub='add list show history remove' ;;\n"
    "        audit) sub='verify events public-key export' ;;\n"
    "        completion) sub='bash zsh' ;;\n"
    "        help) sub=\"$cmds\" ;;\n"
    "    esac\n"
    "    if [ -n \"$sub\" ] && [ \"$COMP_CWORD\" -eq 2 ]; then\n"
    "        COMPREPLY=($(compgen -W \"$sub\" -- \"$cur\")); return; fi\n"
    "    if [[ $cur == -* ]]; then\n"
    "        local words=(\"$cmd\"); [ -n \"$sub\" ] && words+=(\"${COMP_WORDS[2]}\")\n"
    "        local opts=$(\"${COMP_WORDS[0]}\" \"${words[@]}\" --help 2>/dev/null | "
    "grep -o -- '--[a-z][a-z0-9-]*' | sort -u)\n"
    "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); return; fi\n"
    "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
    "}\n"
    "complete -F _difyguard difyguard\n";

static const char zsh_script[] =
    "#compdef difyguard\n"
    "# difyguard zsh completion: difyguard completion zsh > \"${fpath[1]}/_difyguard\"\n"
    "_difyguard() {\n"
    "    local -a cmds subs opts\n"
    "    cmds=(init serve admin-key rotate-root-key migrate audit app key keyring cert help "
    "completion version)\n"
    "    if (( CURRENT == 2 )); then compadd -a cmds; return; fi\n"
    "    case ${words[2]} in\n"
    "        app) subs=(create list show usage) ;;\n"
    "        key) subs=(create list show revoke rotate) ;;\n"
    "        keyring) subs=(create list show rotate update delete) ;;\n"
    "        cert) subs=(add list show history remove) ;;\n"
    "        audit) subs=(verify events public-key export) ;;\n"
    "        completion) subs=(bash zsh) ;;\n"
    "        help) subs=($cmds) ;;\n"
    "    esac\n"
    "    if (( CURRENT == 3 )) && (( ${#subs} )); then compadd -a subs; return; fi\n"
    "    if [[ ${words[CURRENT]} == -* ]]; then\n"
    "        local -a w; w=(${words[2]}); (( ${#subs} )) && w+=(${words[3]})\n"
    "        opts=(${(f)\"$(${words[1]} $w --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' "
    "| sort -u)\"})\n"
    "        compadd -a opts; return; fi\n"
    "    _files\n"
    "}\n"
    "compdef _difyguard difyguard\n";

int
main_completion(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "bash") == 0) {
        fputs(bash_script, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "zsh") == 0) {
        fputs(zsh_script, stdout);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: difyguard completion bash|zsh\n"
               "Print a completion script: eval \"$(difyguard completion bash)\" in ~/.bashrc, or\n"
               "difyguard completion zsh > \"${fpath[1]}/_difyguard\".\n");
        return 0;
    }
    fprintf(stderr, "difyguard: completion: give bash or zsh\n");
    return 2;
}
