/* SPDX-License-Identifier: Apache-2.0 */
/* server/main.c -- the difyguard binary: command dispatch and the local commands (init, serve,
 * admin-key, rotate-root-key, migrate, version). Exit codes: 0 ok, 1 runtime failure, 2 usage.
 * Each failure prints one line on stderr and never a secret. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "cli/audit_verify.h"
#include "cli/cmd_admin.h"
#include "cli/cmd_env.h"
#include "cli/report_verify.h"
#include "common/json/config.h"
#include "common/json/jsonx.h"
#include "common/log.h"
#include "crypto/apikey.h"
#include "crypto/init.h"
#include "crypto/secret.h"
#include "server/audit/audit.h"
#include "server/auth/jwt.h"
#include "server/certs.h"
#include "server/datalock.h"
#include "server/handlers/handlers.h"
#include "server/http/http.h"
#include "server/http/tls.h"
#include "server/janitor.h"
#include "server/keymetrics.h"
#include "server/main_help.h"
#include "server/main_tls.h"
#include "server/obs/metrics.h"
#include "server/service.h"

#define EXIT_USAGE 2

/* Options shared by every local command, then those of serve. */
struct opts {
    char *config, *data_dir, *database, *root_key, *log_level, *new_key, *old_key;
    bool json;
    char *listen, *tls_cert, *tls_key;
    bool tls_terminated_upstream;
    char *tls_client_ca, *tls_min_version, *tls_ciphers; /* issue 9 */
    int64_t tls_reload_interval;
    char *cert_sources, *cert_ca_bundle;
    int64_t cert_warning, cert_critical, cert_check_interval, cert_probe_timeout;
    bool audit_durable, audit_new_chain;
    int64_t audit_checkpoint_interval, audit_retention;
    char *audit_archive_dir, *jwt_config, *trusted_proxies, *metrics_listen;
    bool metrics_on_api, metrics_tls;
    char *policy_dir, *policy_params;
    int64_t compliance_interval;
    uint64_t log_buffer;
    uint64_t threads, max_body_bytes, max_batch_items, max_batch_bytes, max_connections,
        max_connections_per_ip, kek_max_encryptions, reserve_block;
    int64_t idle_timeout, maintenance_interval, shutdown_grace, replica_sync_interval;
};

/* clang-format off */
#define O(name, type, field, def, help) \
    {name, type, offsetof(struct opts, field), def, help, false, false}
#define COMMON_OPTS                                                                            \
    O("config", OPT_STRING, config, NULL, "JSON config file (keys are option names)"),         \
    O("data-dir", OPT_STRING, data_dir, "./data", "directory for the root key and database"),  \
    O("database", OPT_STRING, database, NULL, "database: sqlite:PATH (default sqlite:DATA_DIR/difyguard.db), postgresql://... or a libpq conninfo string (keep the password in PGPASSFILE)"), \
    O("root-key", OPT_STRING, root_key, NULL, "root key file (default DATA_DIR/root.key)"),    \
    O("log-level", OPT_STRING, log_level, "info", "debug, info, warn or error")
/* clang-format on */

static const struct opt init_opts[] = {
    COMMON_OPTS,
    O("json", OPT_BOOL, json, NULL, "print the result as one JSON object"),
};
static const struct opt admin_opts[] = {
    COMMON_OPTS,
    O("json", OPT_BOOL, json, NULL, "print the result as one JSON object"),
};
static const struct opt migrate_opts[] = {COMMON_OPTS};
static const struct opt rotate_opts[] = {
    COMMON_OPTS,
    O("new-key", OPT_STRING, new_key, NULL, "the new root key file (created 0600 if absent)"),
    O("old-key", OPT_STRING, old_key, NULL,
      "another root key rows may still be under (repeatable): recovery of an interrupted "
      "rotation or of rows wrapped under an earlier key"),
};
#define ROTATE_SUMMARY                                                                             \
    "Rewrap every key version and service key under a new root key, from whichever of the "        \
    "current root key and the --old-key files each row is under. Refused while difyguard "         \
    "serve runs on the database. An interrupted run can be repeated with the same options."
static const struct opt serve_opts[] = {
    COMMON_OPTS,
    O("listen", OPT_STRING, listen, "127.0.0.1:8080", "API listener HOST:PORT"),
    O("tls-cert", OPT_STRING, tls_cert, NULL, "PEM certificate chain for the API listener"),
    O("tls-key", OPT_STRING, tls_key, NULL, "PEM private key for the API listener"),
    O("tls-terminated-upstream", OPT_BOOL, tls_terminated_upstream, NULL,
      "allow plain HTTP on a non-loopback address (a proxy or mesh does TLS)"),
    O("tls-client-ca", OPT_STRING, tls_client_ca, NULL,
      "mutual TLS: clients must present a certificate issued by this PEM bundle"),
    O("tls-min-version", OPT_STRING, tls_min_version, "1.2", "lowest TLS version: 1.2 or 1.3"),
    O("tls-ciphers", OPT_STRING, tls_ciphers, TLS_CIPHERS_DEFAULT,
      "AEAD ciphers, GnuTLS names separated by ':'"),
    O("tls-reload-interval", OPT_DURATION, tls_reload_interval, "10s",
      "how often the TLS files are checked for a new pair (SIGHUP: at once)"),
    O("cert-sources", OPT_STRING, cert_sources, NULL,
      "JSON file of certificate sources to watch ({\"sources\": [...]}, as POST "
      "/v1/certificates takes)"),
    O("cert-ca-bundle", OPT_STRING, cert_ca_bundle, NULL,
      "PEM bundle certificate chains are verified against (default: the system store)"),
    O("cert-warning", OPT_DURATION, cert_warning, "30d",
      "a certificate with less time left is in warning"),
    O("cert-critical", OPT_DURATION, cert_critical, "7d",
      "a certificate with less time left is critical"),
    O("cert-check-interval", OPT_DURATION, cert_check_interval, "60s",
      "how often certificate sources are read and endpoints probed"),
    O("cert-probe-timeout", OPT_DURATION, cert_probe_timeout, "5s",
      "connect and handshake timeout of an endpoint probe"),
    O("threads", OPT_UINT, threads, "0", "worker threads (0 = one per core)"),
    O("max-body-bytes", OPT_SIZE, max_body_bytes, "4MiB", "largest single request body"),
    O("max-batch-items", OPT_UINT, max_batch_items, "1000", "most items in one batch"),
    O("max-batch-bytes", OPT_SIZE, max_batch_bytes, "4MiB", "largest batch request body"),
    O("max-connections", OPT_UINT, max_connections, "4096", "most open connections"),
    O("max-connections-per-ip", OPT_UINT, max_connections_per_ip, "256",
      "most open connections from one client address (0 = no limit)"),
    O("idle-timeout", OPT_DURATION, idle_timeout, "60s", "close connections idle this long"),
    O("kek-max-encryptions", OPT_UINT, kek_max_encryptions, "4294967296",
      "encryptions per key version; rotation at 90%"),
    O("reserve-block", OPT_UINT, reserve_block, "4096",
      "encryption counts reserved per durable write"),
    O("maintenance-interval", OPT_DURATION, maintenance_interval, "60s",
      "how often due rotations are checked"),
    O("replica-sync-interval", OPT_DURATION, replica_sync_interval, "1s",
      "PostgreSQL: how often keyrings changed by other replicas are polled for (LISTEN/NOTIFY "
      "brings most changes sooner)"),
    O("shutdown-grace", OPT_DURATION, shutdown_grace, "30s",
      "on SIGTERM, how long in-flight requests may take"),
    O("log-buffer", OPT_SIZE, log_buffer, "4MiB",
      "log lines waiting for stdout; when full, lines are dropped and counted (min 16KiB)"),
    O("audit-durable", OPT_BOOL, audit_durable, "true",
      "answer only after the request's audit event is fsync'd"),
    O("audit-checkpoint-interval", OPT_DURATION, audit_checkpoint_interval, "60s",
      "how often the audit chain gets a signed checkpoint"),
    O("audit-retention", OPT_DURATION, audit_retention, "0",
      "prune audit events older than this behind a signed anchor (0 = keep)"),
    O("audit-new-chain", OPT_BOOL, audit_new_chain, NULL,
      "when the stored audit chain fails its check at start, begin a new chain (the break is "
      "logged and recorded) instead of refusing to start"),
    O("audit-archive-dir", OPT_STRING, audit_archive_dir, NULL,
      "where pruned events are exported first (default DATA_DIR/audit-archive)"),
    O("jwt-config", OPT_STRING, jwt_config, NULL, "JSON file of JWT issuers and keys"),
    O("trusted-proxies", OPT_STRING, trusted_proxies, NULL,
      "comma-separated addresses whose X-Forwarded-For is believed"),
    O("metrics-listen", OPT_STRING, metrics_listen, NULL,
      "a second listener HOST:PORT serving only /healthz, /readyz and /metrics (plain HTTP, "
      "allowed on any address)"),
    O("metrics-on-api", OPT_BOOL, metrics_on_api, "true",
      "serve /metrics on the API listener too (false: only on --metrics-listen)"),
    O("metrics-tls", OPT_BOOL, metrics_tls, "false",
      "serve --metrics-listen over TLS with the API's --tls-cert/--tls-key (reloaded with it; "
      "--tls-client-ca applies too)"),
    O("policy-dir", OPT_STRING, policy_dir, NULL,
      "directory of compliance policy packs (*.json) added to the shipped ones (a pack with a "
      "shipped pack's id replaces it)"),
    O("policy-params", OPT_JSON, policy_params, NULL,
      "compliance parameter overrides: {\"PACK\": {\"CONTROL\": {\"PARAM\": VALUE}}}"),
    O("compliance-interval", OPT_DURATION, compliance_interval, "1h",
      "how often the compliance controls are evaluated (0 = only when a report is asked for)"),
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "difyguard: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* Parse options for a command; returns -1 to continue, else the exit code. */
static int
parse(struct opts *o, const struct opt *t, size_t n, int argc, char **argv, const char *syn,
      const char *summary)
{
    char err[512];
    memset(o, 0, sizeof *o);
    enum status st = config_parse(o, t, n, argc, argv, NULL, err, sizeof err);
    if (st == ST_NOT_FOUND) {
        config_help(stdout, argv[0], syn, summary, t, n);
        return 0;
    }
    if (st != ST_OK)
        return fail(EXIT_USAGE, "%s", err);
    int lvl = log_level_parse(o->log_level != NULL ? o->log_level : "info");
    if (lvl < 0)
        return fail(EXIT_USAGE, "unknown --log-level '%s'", o->log_level);
    log_set_level((enum log_level)lvl);
    return -1;
}

/* Take the database's lock for `cmd` (see datalock.h); returns -1 to continue, else the exit
 * code after one line on stderr. `why` ends the refusal: what the user should do. */
static int
lock_database(struct datalock **lock, const char *database, const char *cmd, const char *why)
{
    char err[512];
    enum status st = datalock_acquire(lock, database, cmd, err, sizeof err);
    if (st == ST_CONFLICT)
        return fail(1, "%s: %s", err, why);
    if (st != ST_OK)
        return fail(1, "%s", err);
    return -1;
}

static int
cmd_init(int argc, char **argv)
{
    struct opts o;
    struct service_paths p;
    struct datalock *lock = NULL;
    char key[APIKEY_TEXT_CHARS + 1], root_id[32], err[512];
    bool adopted = false;
    int rc = parse(&o, init_opts, N(init_opts), argc, argv, "[--data-dir DIR] [--json]",
                   "Create the root key (0600), the database, the service keys and the admin app; "
                   "print the admin API key once. A root key file that exists already (provisioned "
                   "from outside: a Kubernetes Secret, SOPS, an agent) is adopted when it passes "
                   "the key-file rule and the database is new; a key file is never overwritten.");
    if (rc >= 0)
        return rc;
    key[0] = '\0';
    service_paths_resolve(&p, o.data_dir, o.database, o.root_key);
    if ((rc = lock_database(&lock, p.database, "init", "refusing to initialise it")) >= 0)
        goto out;
    char shown[512];
    store_url_display(p.database, shown, sizeof shown); /* never a password */
    if (service_init(&p, key, sizeof key, root_id, sizeof root_id, &adopted, err, sizeof err) !=
        ST_OK) {
        rc = fail(1, "init failed: %s", err);
    } else if (o.json) {
        json_t *j =
            json_pack("{s:s, s:s, s:b, s:s, s:s}", "key", key, "root_key_id", root_id,
                      "root_key_adopted", adopted, "data_dir", p.data_dir, "database", shown);
        char *s = json_dumps(j, JSON_COMPACT);
        printf("%s\n", s);
        jx_free_str(s);
        json_decref(j);
        rc = 0;
    } else {
        printf("Root key:  %s (id %s%s)\nDatabase:  %s\nAdmin API key (shown once, store it "
               "now):\n%s\n",
               p.root_key, root_id, adopted ? ", adopted" : "", shown, key);
        rc = 0;
    }
out:
    sodium_memzero(key, sizeof key);
    datalock_release(lock);
    service_paths_free(&p);
    config_free(&o, init_opts, N(init_opts));
    return rc;
}

static int
open_service(struct service **svc, const struct service_paths *p,
             const struct keyrings_settings *ks, const struct audit_settings *as)
{
    char err[512];
    enum status st = service_open(svc, p, ks, as, err, sizeof err);
    if (st != ST_OK && access(p->root_key, F_OK) != 0 && errno == ENOENT)
        return fail(1,
                    "%s. A new data dir? Run `difyguard init --data-dir %s` "
                    "first (or point --root-key at the key file)",
                    err, p->data_dir);
    if (st != ST_OK)
        return fail(1, "%s", err);
    return -1;
}

static int
cmd_admin_key(int argc, char **argv)
{
    struct opts o;
    struct service_paths p = {0};
    struct service *svc = NULL;
    struct keyrings_settings ks = {0};
    char key[APIKEY_TEXT_CHARS + 1];
    int rc = parse(&o, admin_opts, N(admin_opts), argc, argv, "--data-dir DIR [--json]",
                   "Break-glass: mint a new admin API key locally with the root key.");
    if (rc >= 0)
        return rc;
    struct audit_settings as = {.durable = true, .checkpoint_interval = 60, .own_chain = true};
    service_paths_resolve(&p, o.data_dir, o.database, o.root_key);
    if ((rc = open_service(&svc, &p, &ks, &as)) >= 0)
        goto out;
    if (service_admin_key(svc, key, sizeof key) != ST_OK) {
        rc = fail(1, "%s",
                  "could not mint an admin key (it is issued only together with its "
                  "audit event; see the log lines above): no key was issued");
        goto out;
    }
    if (o.json)
        printf("{\"key\":\"%s\"}\n", key);
    else
        printf("Admin API key (shown once, store it now):\n%s\n", key);
    sodium_memzero(key, sizeof key);
    rc = 0;
out:
    service_close(svc);
    service_paths_free(&p);
    config_free(&o, admin_opts, N(admin_opts));
    return rc;
}

static int
cmd_migrate(int argc, char **argv)
{
    struct opts o;
    struct service_paths p = {0};
    struct store *st = NULL;
    struct datalock *lock = NULL;
    char err[512];
    int rc = parse(&o, migrate_opts, N(migrate_opts), argc, argv, "[--database URL]",
                   "Apply pending database migrations and exit. Refused while difyguard serve "
                   "runs on the database.");
    if (rc >= 0)
        return rc;
    service_paths_resolve(&p, o.data_dir, o.database, o.root_key);
    if ((rc = lock_database(&lock, p.database, "migrate", "stop difyguard serve first")) >= 0) {
        /* refused: the line is printed */
    } else if (store_open(&st, p.database, err, sizeof err) != ST_OK) {
        rc = fail(1, "%s", err);
    } else {
        printf("schema version %d (%s)\n", store_schema_version(st), store_backend(st));
        rc = 0;
    }
    store_close(st);
    datalock_release(lock);
    service_paths_free(&p);
    config_free(&o, migrate_opts, N(migrate_opts));
    return rc;
}

/* fsync the directory so renames in it are durable. */
static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    return rc;
}

/* Put the new key file's content in place of the default root key `cur`, keeping the old one as
 * root.key.retired-<old_id> (old_id "" when cur is missing: an install interrupted between its
 * two renames). The content is read before anything is written, and a leftover of an interrupted
 * install is replaced, so this can always be run again. */
static int
install_root_key(const char *dir, const char *cur, const char *new_key, const char *old_id)
{
    char retired[4096], tmp[4096], buf[256];
    ssize_t n = -1;
    int in = -1, out = -1, rc = 1;

    snprintf(retired, sizeof retired, "%s/root.key.retired-%s", dir, old_id);
    snprintf(tmp, sizeof tmp, "%s/root.key.installing", dir);
    if ((in = open(new_key, O_RDONLY | O_CLOEXEC)) < 0 || (n = read(in, buf, sizeof buf)) <= 0 ||
        (unlink(tmp) != 0 && errno != ENOENT) ||
        (out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
        write(out, buf, (size_t)n) != n || fsync(out) != 0 ||
        (old_id[0] != '\0' && rename(cur, retired) != 0) || rename(tmp, cur) != 0 ||
        fsync_dir(dir) != 0) {
        fail(1, "could not install the new root key: %s", strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (old_id[0] != '\0')
        printf("The new root key is now %s; the old one is kept as %s until you remove it.\n", cur,
               retired);
    else
        printf("The new root key is now %s.\n", cur);
    rc = 0;
out:
    sodium_memzero(buf, sizeof buf);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* --old-key may be given several times, and the option engine keeps one value per option: take
 * those flags out of argv (into olds) before it runs; rest gets every other argument. */
static int
take_old_keys(int argc, char **argv, char **rest, int *rest_argc, const char **olds, size_t *n)
{
    static const char flag[] = "--old-key";
    bool done = false;

    *rest_argc = 0;
    *n = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i == 0 || done || strncmp(a, flag, sizeof flag - 1) != 0 ||
            (a[sizeof flag - 1] != '\0' && a[sizeof flag - 1] != '=')) {
            done |= i > 0 && strcmp(a, "--") == 0;
            rest[(*rest_argc)++] = argv[i];
        } else if (a[sizeof flag - 1] == '=') {
            olds[(*n)++] = a + sizeof flag;
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            olds[(*n)++] = argv[++i];
        } else {
            return fail(EXIT_USAGE, "%s", "option --old-key needs a value");
        }
    }
    rest[*rest_argc] = NULL;
    return -1;
}

/* The root keys of a rotation into keys[0..n): the new key first (its file created 0600 when
 * absent), then the current root key file (skipped when the default one is missing: see
 * install_root_key) and every old key, each key once. cur_id gets the current file's id or "". */
static int
rotation_keys(const struct service_paths *p, const struct opts *o, const char *const *olds,
              size_t n_old, struct rootkey **keys, size_t *n,
              char cur_id[static ROOTKEY_ID_CHARS + 1])
{
    bool with_cur = o->root_key != NULL || access(p->root_key, F_OK) == 0;
    char err[512];

    *n = 0;
    cur_id[0] = '\0';
    if (access(o->new_key, F_OK) != 0 && rootkey_create(o->new_key, err, sizeof err) != ST_OK)
        return fail(1, "%s", err);
    for (size_t i = 0; i < n_old + 2; i++) {
        const char *path = i == 0 ? o->new_key : i == 1 ? p->root_key : olds[i - 2];
        struct rootkey *rk = NULL;
        bool dup = false;
        if (i == 1 && !with_cur)
            continue;
        if (rootkey_load(&rk, path, err, sizeof err) != ST_OK)
            return fail(1, "%s", err);
        if (i == 1)
            snprintf(cur_id, ROOTKEY_ID_CHARS + 1, "%s", rootkey_id(rk));
        for (size_t j = 0; j < *n; j++)
            dup |= strcmp(rootkey_id(keys[j]), rootkey_id(rk)) == 0;
        if (dup)
            rootkey_free(rk);
        else
            keys[(*n)++] = rk;
    }
    return -1;
}

/* After the database moved: the default root key file gets the new key (unless it has it). */
static int
rotation_done(const struct service_paths *p, const struct opts *o, const char *cur_id,
              const char *to_id, size_t count)
{
    printf("Rewrapped %zu key versions; every key is now under root key %s.\n", count, to_id);
    if (strcmp(cur_id, to_id) == 0)
        return 0;
    if (o->root_key == NULL)
        return install_root_key(p->data_dir, p->root_key, o->new_key, cur_id);
    printf("Rotated. Start difyguard with --root-key %s from now on.\n", o->new_key);
    return 0;
}

static int
cmd_rotate_root(int argc, char **argv)
{
    struct opts o;
    struct service_paths p = {0};
    struct service *svc = NULL;
    struct datalock *lock = NULL;
    struct rootkey **keys = xcalloc((size_t)argc + 3, sizeof *keys);
    const char **olds = xcalloc((size_t)argc + 1, sizeof *olds);
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    char err[512], cur_id[ROOTKEY_ID_CHARS + 1], to_id[ROOTKEY_ID_CHARS + 1];
    size_t n_old = 0, n_keys = 0, count = 0;
    int rest_argc = 0, rc = take_old_keys(argc, argv, rest, &rest_argc, olds, &n_old);

    memset(&o, 0, sizeof o);
    if (rc >= 0 ||
        (rc = parse(&o, rotate_opts, N(rotate_opts), rest_argc, rest,
                    "--data-dir DIR --new-key FILE [--old-key FILE]...", ROTATE_SUMMARY)) >= 0)
        goto out;
    if (o.old_key != NULL)
        olds[n_old++] = o.old_key;
    if (o.new_key == NULL) {
        rc = fail(EXIT_USAGE, "%s", "--new-key FILE is required");
        goto out;
    }
    service_paths_resolve(&p, o.data_dir, o.database, o.root_key);
    if ((rc = lock_database(&lock, p.database, "rotate-root-key", "stop difyguard serve first")) >=
            0 ||
        (rc = rotation_keys(&p, &o, olds, n_old, keys, &n_keys, cur_id)) >= 0)
        goto out;
    /* --new-key may be the current key: that finishes a rotation whose rows are left under the
     * --old-key files, or (without them) checks that every row is under it. */
    snprintf(to_id, sizeof to_id, "%s", rootkey_id(keys[0]));
    rc = 1;
    if (service_open_keys(&svc, &p, keys, n_keys, err, sizeof err) != ST_OK)
        fail(1, "%s", err);
    else if (service_rotate_root(svc, svc->keys[0], &count, err, sizeof err) != ST_OK)
        fail(1, "root key rotation failed: %s", err);
    else
        rc = rotation_done(&p, &o, cur_id, to_id, count);
    keys = NULL; /* the service's now, opened or not */
out:
    service_close(svc);
    for (size_t i = 0; keys != NULL && i < n_keys; i++)
        rootkey_free(keys[i]);
    free(keys);
    free(olds);
    free(rest);
    datalock_release(lock);
    service_paths_free(&p);
    config_free(&o, rotate_opts, N(rotate_opts));
    return rc;
}

static void
duty_rotation(void *arg, int64_t now_ms)
{
    keyrings_maintain(arg, now_ms / 1000);
}

static void
duty_replica_sync(void *arg, int64_t now_ms)
{
    (void)now_ms;
    keyrings_sync(arg);
}

/* LISTEN/NOTIFY (store_watch): another replica committed a change. */
struct watch_ctx {
    struct janitor *janitor;
    struct apps *apps;
};

static void
watch_changes(void *arg, const char *what)
{
    const struct watch_ctx *w = arg;
    bool all = strcmp(what, "resync") == 0;

    if (all || strcmp(what, "keyrings") == 0)
        janitor_kick(w->janitor, "replica_sync");
    if (all || strcmp(what, "apikeys") == 0)
        apps_forget_all(w->apps);
}

static void
kick_rotation(void *arg)
{
    janitor_kick(arg, "rotation");
}

/* The periodic duties of a serving process, on one thread. */
static int
start_janitor(struct janitor **out, struct service *svc, const struct opts *o, struct tls *tls)
{
    int64_t rotation_every_s = o->maintenance_interval;
    struct duty duties[6] = {
        {"rotation", (rotation_every_s > 0 ? rotation_every_s : 60) * 1000, duty_rotation,
         svc->keyrings},
        {"api_key_metrics", KEYMETRICS_EVERY_MS, keymetrics_refresh, svc->keymetrics},
    };
    size_t n = 2;

    /* Several replicas on one PostgreSQL database: keyrings changed through another replica
     * reach this one at the next --replica-sync-interval (polling), key rows within twice that
     * (their cache lifetime); LISTEN/NOTIFY (watch_changes) brings both sooner. */
    if (strcmp(store_backend(svc->store), "postgres") == 0) {
        duties[n++] = (struct duty){
            "replica_sync", (o->replica_sync_interval > 0 ? o->replica_sync_interval : 1) * 1000,
            duty_replica_sync, svc->keyrings};
        apps_set_cache_ttl(svc->apps,
                           2 * (o->replica_sync_interval > 0 ? o->replica_sync_interval : 1));
    }
    if (svc->audit != NULL)
        duties[n++] = (struct duty){"audit", 1000, audit_janitor, svc->audit};
    if (svc->certs != NULL) /* reads files, wakes the prober for endpoints */
        duties[n++] = (struct duty){
            "certs", (o->cert_check_interval > 0 ? o->cert_check_interval : 60) * 1000,
            certs_janitor, svc->certs};
    if (tls != NULL)
        duties[n++] = (struct duty){
            "tls_reload", (o->tls_reload_interval > 0 ? o->tls_reload_interval : 10) * 1000,
            serve_tls_duty, serve_tls_duty_arg(svc, tls)};
    if (svc->compliance != NULL && o->compliance_interval > 0)
        duties[n++] = (struct duty){"compliance", o->compliance_interval * 1000, compliance_janitor,
                                    svc->compliance};
    *out = janitor_new(duties, n);
    keyrings_set_kick(svc->keyrings, kick_rotation, *out);
    if (janitor_start(*out) != ST_OK)
        return fail(1, "%s", "cannot start the janitor thread");
    return -1;
}

/* The compliance manager (server/compliance.h) and its metrics. */
static int
open_compliance(struct service *svc, const struct opts *o)
{
    const struct compliance_deps d = {svc->store, svc->root,  svc->keyrings, svc->apps,
                                      svc->audit, svc->certs, &svc->facts};
    struct metrics_source src = {"compliance", compliance_metrics, NULL};
    char err[512];
    enum status st =
        compliance_open(&svc->compliance, &d, o->policy_dir, o->policy_params, err, sizeof err);

    if (st != ST_OK)
        return fail(st == ST_INVALID ? EXIT_USAGE : 1, "%s", err);
    src.self = svc->compliance;
    metrics_register(svc->metrics, &src);
    return -1;
}

/* What the inventory (server/inventory.h) reports of how this process was started. */
static void
facts_fill(struct inventory_facts *f, const struct opts *o, const struct service_paths *p,
           const char *root_id)
{
    struct inv_listener *api = &f->listeners[0];

    memset(f, 0, sizeof *f);
    f->root_key_path = p->root_key;
    f->root_key_id = root_id;
    snprintf(api->name, sizeof api->name, "api");
    snprintf(api->addr, sizeof api->addr, "%s", o->listen);
    api->loopback = http_is_loopback(o->listen);
    api->tls = o->tls_cert != NULL;
    api->tls_upstream = o->tls_terminated_upstream;
    f->n_listeners = 1;
    if (o->metrics_listen != NULL) {
        struct inv_listener *m = &f->listeners[f->n_listeners++];
        snprintf(m->name, sizeof m->name, "metrics");
        snprintf(m->addr, sizeof m->addr, "%s", o->metrics_listen);
        m->loopback = http_is_loopback(o->metrics_listen);
        m->tls = o->metrics_tls;
    }
}

/* The routes a listener serves: the API's (without /metrics when --metrics-on-api=false), or only
 * the public ones (health and metrics: no audit operation) for --metrics-listen. */
struct listener_routes {
    struct route *v;
    struct route_table table;
    struct http_app app;
};

static void
listener_routes(struct listener_routes *lr, bool public_only, bool with_metrics)
{
    const struct route_table *all = handlers_app.routes;

    lr->v = xcalloc(all->n, sizeof *lr->v);
    lr->table = (struct route_table){lr->v, 0};
    for (size_t i = 0; i < all->n; i++) {
        const struct route *rt = &all->v[i];
        if ((public_only && rt->audit_op != NULL) ||
            (!with_metrics && strcmp(rt->path, "/metrics") == 0))
            continue;
        lr->v[lr->table.n++] = *rt;
    }
    lr->app = handlers_app;
    lr->app.routes = &lr->table;
}

/* --metrics-listen: plain HTTP on any address (it serves no secret and no /v1 route). */
static int
start_metrics_listener(struct http_server **out, struct service *svc, const struct opts *o,
                       struct listener_routes *lr, const struct http_obs *obs, struct tls *tls)
{
    struct http_listen ml = {o->metrics_listen, o->metrics_tls ? tls : NULL, true, NULL};
    char err[512];

    *out = NULL;
    if (o->metrics_listen == NULL)
        return -1;
    listener_routes(lr, true, true);
    enum status st = http_start(out, svc, &lr->app, &ml, &svc->limits, obs, err, sizeof err);
    if (st != ST_OK)
        return fail(st == ST_INVALID ? EXIT_USAGE : 1, "--metrics-listen: %s", err);
    return -1;
}

static int
cmd_serve(int argc, char **argv)
{
    struct opts o;
    struct service_paths p = {0};
    struct service *svc = NULL;
    struct http_server *http = NULL, *mhttp = NULL;
    struct listener_routes api_routes = {0}, metrics_routes = {0};
    struct janitor *janitor = NULL;
    struct watch_ctx watch = {0};
    struct datalock *lock = NULL;
    struct tls *tls = NULL;
    char err[512];
    sigset_t hup;
    /* SIGHUP reloads (serve_wait): blocked before any thread of serve starts. */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    int rc = parse(&o, serve_opts, N(serve_opts), argc, argv,
                   "[--listen HOST:PORT] [--data-dir DIR] [--database URL] [--config FILE]",
                   "Run the service. TLS is required on non-loopback addresses.");
    if (rc >= 0)
        return rc;
    /* A stalled stdout must never block request threads: lines go through a bounded buffer
     * written by its own thread; what does not fit is dropped and counted (issue 14). */
    if (o.log_buffer < 16384) {
        rc = fail(EXIT_USAGE, "%s", "--log-buffer must be at least 16KiB");
        goto out;
    }
    log_set_buffered((size_t)o.log_buffer);
    struct http_listen l = {o.listen, NULL, o.tls_terminated_upstream, o.trusted_proxies};
    if (!http_listen_has_port(o.listen)) {
        rc = fail(EXIT_USAGE,
                  "--listen %s: a port is required: HOST:PORT, e.g. --listen %s:8080 (IPv6: "
                  "[::1]:8080)",
                  o.listen, strchr(o.listen, ':') == NULL ? o.listen : "127.0.0.1");
        goto out;
    }
    if (o.tls_cert == NULL && !o.tls_terminated_upstream && !http_is_loopback(o.listen)) {
        rc = fail(EXIT_USAGE,
                  "refusing plain HTTP on non-loopback address %s: give --tls-cert "
                  "and --tls-key, or --tls-terminated-upstream",
                  o.listen);
        goto out;
    }
    /* Large request and response buffers come and go with every big request: keep them in the
     * heap instead of a fresh mmap (and its page faults) each time. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    struct keyrings_settings ks = {o.kek_max_encryptions, (int64_t)o.reserve_block};
    char archive[4096];
    snprintf(archive, sizeof archive, "%s/audit-archive", o.data_dir);
    struct audit_settings as = {o.audit_durable,
                                o.audit_checkpoint_interval,
                                o.audit_retention,
                                o.audit_archive_dir != NULL ? o.audit_archive_dir : archive,
                                false,
                                o.audit_new_chain,
                                false /* service_open: one chain per process on PostgreSQL */};
    /* One server per database, for its whole life: rotate-root-key and migrate wait for it. */
    service_paths_resolve(&p, o.data_dir, o.database, o.root_key);
    struct serve_tls_opts to = {o.tls_cert, o.tls_key, o.tls_client_ca, o.tls_min_version,
                                o.tls_ciphers};
    struct serve_certs_opts co = {o.cert_sources,  o.cert_ca_bundle,      o.cert_warning,
                                  o.cert_critical, o.cert_check_interval, o.cert_probe_timeout};
    if ((rc = serve_tls_open(&tls, &to)) >= 0 ||
        (rc = lock_database(&lock, p.database, "serve",
                            "refusing to start a second server on it")) >= 0 ||
        (rc = open_service(&svc, &p, &ks, &as)) >= 0 || (rc = serve_certs_open(svc, &co, tls)) >= 0)
        goto out;
    l.tls = tls;
    if (o.jwt_config != NULL && (rc = serve_jwt_load(svc, o.jwt_config)) >= 0)
        goto out;
    if (!o.metrics_on_api && o.metrics_listen == NULL) {
        rc = fail(EXIT_USAGE, "%s", "--metrics-on-api=false needs --metrics-listen");
        goto out;
    }
    if (o.metrics_tls && (o.metrics_listen == NULL || o.tls_cert == NULL)) {
        rc =
            fail(EXIT_USAGE, "%s", "--metrics-tls needs --metrics-listen and --tls-cert/--tls-key");
        goto out;
    }
    listener_routes(&api_routes, false, o.metrics_on_api);
    if (service_observe(svc, &api_routes.table, err, sizeof err) != ST_OK) {
        rc = fail(EXIT_USAGE, "%s", err);
        goto out;
    }
    struct http_obs obs = {svc->http_stats, svc->tracer};
    svc->limits = (struct http_limits){
        o.max_body_bytes,         o.max_batch_bytes, o.max_batch_items, o.max_connections,
        o.max_connections_per_ip, o.idle_timeout,    o.threads};
    facts_fill(&svc->facts, &o, &p, rootkey_id(svc->root));
    if ((rc = open_compliance(svc, &o)) >= 0 || (rc = start_janitor(&janitor, svc, &o, tls)) >= 0)
        goto out;
    watch = (struct watch_ctx){janitor, svc->apps};
    store_watch(svc->store, watch_changes, &watch);
    enum status st =
        http_start(&http, svc, &api_routes.app, &l, &svc->limits, &obs, err, sizeof err);
    if (st != ST_OK) {
        rc = fail(st == ST_INVALID ? EXIT_USAGE : 1, "%s", err);
        goto out;
    }
    if ((rc = start_metrics_listener(&mhttp, svc, &o, &metrics_routes, &obs, tls)) >= 0)
        goto out;
    atomic_store(&svc->ready, true);
    log_msg(LOG_INFO, "listening", "addr", o.listen, "version", DG_VERSION, "commit",
            main_revision(), "tls", o.tls_cert != NULL ? "on" : "off", "database",
            store_backend(svc->store), "root_key_id", rootkey_id(svc->root), "metrics_addr",
            o.metrics_listen, "tracing", svc->tracer != NULL ? "on" : "off", LOG_END);
    int sig = serve_wait(svc, tls, o.jwt_config);
    atomic_store(&svc->ready, false);
    log_msg(LOG_INFO, "shutting_down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", LOG_END);
    http_stop(http, (int)o.shutdown_grace);
    http_stop(mhttp, 0);
    http = mhttp = NULL;
    log_msg(LOG_INFO, "stopped", LOG_END);
    rc = 0;
out:
    http_stop(mhttp, 0); /* after a failed start: whichever listener is up */
    http_stop(http, 0);
    if (svc != NULL) {
        store_watch(svc->store, NULL, NULL); /* before the janitor it kicks */
        keyrings_set_kick(svc->keyrings, NULL, NULL);
    }
    janitor_free(janitor); /* before the modules its duties use */
    service_close(svc);
    free(api_routes.v);
    free(metrics_routes.v);
    tls_free(tls); /* after the listener stopped */
    datalock_release(lock);
    service_paths_free(&p);
    config_free(&o, serve_opts, N(serve_opts));
    log_flush(2000);
    return rc;
}

static int run_command(int argc, char **argv);

static int
cmd_help(int argc, char **argv)
{
    return main_help(argc, argv, run_command);
}

/* argv[0] is the command: run it, or say it is unknown (exit 2). */
static int
run_command(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"help", cmd_help},
        {"completion", main_completion},
        {"version", main_version},
        {"init", cmd_init},
        {"serve", cmd_serve},
        {"admin-key", cmd_admin_key},
        {"rotate-root-key", cmd_rotate_root},
        {"migrate", cmd_migrate},
        {"audit", cmd_audit_all},
        {"report", cmd_report},
        {"app", cmd_app},
        {"key", cmd_key},
        {"keyring", cmd_keyring},
        {"cert", cmd_cert},
        {"env", cmd_env},
    };
    for (size_t i = 0; i < N(cmds); i++)
        if (strcmp(argv[0], cmds[i].name) == 0)
            return cmds[i].fn(argc, argv);
    fprintf(stderr, "difyguard: unknown command '%s' (difyguard --help lists them)\n", argv[0]);
    return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
    sigset_t set;

    if (argc < 2) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return main_version(1, argv + 1);
    /* Block the stop signals before any thread starts: serve waits for them with sigwait. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (crypto_init() != ST_OK)
        return fail(1, "%s", "crypto initialisation failed");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) /* before any thread: not thread-safe */
        return fail(1, "%s", "libcurl initialisation failed");
    jx_init();
    if (strcmp(argv[1], "serve") != 0)
        log_set_fd(STDERR_FILENO);
    return run_command(argc - 1, argv + 1);
}
