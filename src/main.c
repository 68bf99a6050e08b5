/*
 * main.c - the pilotlight command line: `serve` (the hub), `simulate`
 * (sim/sim.h), `version`, `config` (print the reference configuration) and
 * `--help`.
 *
 * serve wires the subsystems together in dependency order: config -> log
 * -> store (writer thread) -> @context cache (persisted in the store) ->
 * subscriptions -> ingest (device registry, MQTT connections) -> admin
 * secret -> HTTP server (worker threads) -> demo city and its simulated
 * sensors; then waits for SIGINT or SIGTERM and stops them in reverse
 * order: sources first (simulator, MQTT), then the writer is drained.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "build_info.h"
#include "demo/demo.h"
#include "demo/live.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "ingest/mqttin.h"
#include "ld/cache.h"
#include "ld/ld.h"
#include "notify/notify.h"
#include "sim/sim.h"
#include "store/store.h"
#include "util/cfg.h"
#include "util/log.h"
#include "util/time.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "pilotlight - a real-time NGSI-LD data hub for smart cities\n\n"
        "usage:\n"
        "  pilotlight serve [--config FILE] [--KEY VALUE ...]   run the hub\n"
        "  pilotlight simulate --mqtt URL | --webhook URL ... publish simulated LoRaWAN uplinks\n"
        "                                                     (simulate --help)\n"
        "  pilotlight version                                 print the version\n"
        "  pilotlight config                                  print the reference config\n"
        "  pilotlight --help                                  this text\n\n"
        "serve options (flags override the config file):\n"
        "  --config FILE            read settings from an INI file first\n");
    cfg_print_help(out);
}

/* Persistence hooks: the context cache keeps its documents in the store. */
static void ctx_persist(void *ud, const char *url, const char *kind, const char *text)
{
    if (store_context_put(ud, url, kind, text) != 0)
        log_msg(LOG_WARN, "contexts: could not persist %s", url);
}

static void ctx_unpersist(void *ud, const char *url)
{
    store_context_delete(ud, url);
}

static void ctx_preload(void *ud, const char *url, const char *kind, const char *text)
{
    ld_cache_preload(ud, url, kind, text);
}

static int parse_serve_args(int argc, char **argv, struct cfg *c, struct err *e)
{
    /* the config file first, wherever --config appears, then the flags */
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 || strncmp(argv[i], "--config=", 9) == 0) {
            const char *path =
                argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[i + 1] : NULL);
            if (path == NULL)
                return err_set(e, ERR_INVALID_REQUEST, "--config needs a file");
            int rc = cfg_load_file(c, path, e);
            if (rc)
                return rc;
        }
    for (int i = 2; i < argc; i++) {
        char key[64];
        const char *arg = argv[i], *val;
        if (strncmp(arg, "--", 2) != 0)
            return err_set(e, ERR_INVALID_REQUEST, "unexpected argument '%s'", arg);
        const char *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (klen >= sizeof(key))
            return err_set(e, ERR_INVALID_REQUEST, "unknown option '%s'", arg);
        memcpy(key, arg + 2, klen);
        key[klen] = '\0';
        if (eq)
            val = eq + 1;
        else if (strcmp(key, "demo") == 0 && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            val = "true"; /* a bare boolean flag */
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return err_set(e, ERR_INVALID_REQUEST, "option '%s' needs a value", arg);
        if (strcmp(key, "config") == 0)
            continue;
        int rc = cfg_set(c, key, val, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int serve(int argc, char **argv)
{
    struct cfg conf;
    struct err e = {0};
    struct store *store = NULL;
    struct ld_cache *contexts = NULL;
    struct http_server *http = NULL;
    struct notify *notify = NULL;
    struct ingest *ingest = NULL;
    struct mqin *mqin = NULL;
    struct mqin_conf *mconfs = NULL;
    struct demo_live *live = NULL;
    struct app app;
    sigset_t sigs;
    char public_url[300];
    int sig = 0, rc = 1;

    cfg_defaults(&conf);
    if (parse_serve_args(argc, argv, &conf, &e) != 0) {
        fprintf(stderr, "pilotlight: %s\n", e.detail);
        return 2;
    }
    log_set_level((enum log_level)log_level_parse(conf.log_level));

    /* the threads started below inherit the blocked signals; main waits */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct store_config sc = {
        .backend = conf.store,
        .data_dir = conf.data_dir,
        .durability_full = strcmp(conf.durability, "full") == 0,
        .history = !strcmp(conf.history, "all")   ? STORE_HISTORY_ALL
                   : !strcmp(conf.history, "off") ? STORE_HISTORY_OFF
                                                  : STORE_HISTORY_OBSERVED,
        .group_max = conf.group_max,
        .history_max_age = conf.history_max_age,
    };
    if (store_open(&sc, &store, &e) != 0) {
        log_msg(LOG_ERROR, "store: %s", e.detail);
        goto out;
    }

    if (conf.public_url[0])
        snprintf(public_url, sizeof(public_url), "%s" API_BASE "/jsonldContexts/", conf.public_url);
    else
        snprintf(public_url, sizeof(public_url), "http://localhost:%d" API_BASE "/jsonldContexts/",
                 conf.port);
    struct ld_cache_opts co = {
        .hosted_base_url = public_url,
        .fetch_timeout_ms = conf.context_timeout_ms,
        .max_doc_bytes = (size_t)conf.context_max_bytes,
        .max_entries = 1024,
        .persist = ctx_persist,
        .unpersist = ctx_unpersist,
        .hook_ud = store,
    };
    if (ld_cache_new(&co, &contexts) != 0) {
        log_msg(LOG_ERROR, "contexts: cannot create the cache");
        goto out;
    }
    store_context_each(store, ctx_preload, contexts);

    /* subscriptions: load them, listen to the store's change events, match */
    struct notify_config nc = {.store = store, .contexts = contexts};
    if (notify_open(&nc, &notify, &e) != 0 ||
        store_listen(store, notify_store_listener, notify_store_active, notify) != 0 ||
        store_listen_wants(store, notify, notify_store_wants) != 0 ||
        notify_start(notify, &e) != 0) {
        log_msg(LOG_ERROR, "subscriptions: %s", e.detail[0] ? e.detail : "cannot start");
        goto out;
    }

    /* LoRaWAN ingest: the device registry, then the broker connections */
    struct ingest_config ic;
    ingest_config_defaults(&ic);
    ic.device_rate = conf.ingest_device_rate;
    ic.device_burst = conf.ingest_device_burst;
    ic.quarantine_max = conf.ingest_quarantine_max;
    if (ingest_open(store, &ic, &ingest, &e) != 0) {
        log_msg(LOG_ERROR, "ingest: %s", e.detail);
        goto out;
    }
    if (conf.ingest_mqtt.n > 0) {
        if ((mconfs = calloc((size_t)conf.ingest_mqtt.n, sizeof(*mconfs))) == NULL)
            goto out;
        for (int i = 0; i < conf.ingest_mqtt.n; i++)
            if (mqin_parse(conf.ingest_mqtt.v[i], &mconfs[i], &e) != 0) {
                log_msg(LOG_ERROR, "config: ingest_mqtt #%d: %s", i + 1, e.detail);
                goto out;
            }
        int started =
            mqin_start(mconfs, (size_t)conf.ingest_mqtt.n, ingest_mqtt_message, ingest, &mqin, &e);
        memset(mconfs, 0, (size_t)conf.ingest_mqtt.n * sizeof(*mconfs)); /* passwords */
        free(mconfs);
        mconfs = NULL;
        if (started != 0) {
            log_msg(LOG_ERROR, "ingest: %s", e.detail);
            goto out;
        }
    }

    app = (struct app){.store = store,
                       .contexts = contexts,
                       .cfg = &conf,
                       .started_ms = tm_now_ms(),
                       .notify = notify,
                       .ingest = ingest,
                       .mqin = mqin};
    if (api_admin_secret_load(conf.data_dir, app.admin_secret, &e) != 0) {
        log_msg(LOG_ERROR, "admin: %s", e.detail);
        goto out;
    }
    struct http_config hc = {
        .bind = conf.bind,
        .port = conf.port,
        .threads = conf.threads,
        .max_body = (size_t)conf.max_body,
        .max_connections = conf.max_connections,
        .routes = api_routes,
        .n_routes = api_n_routes,
        .app = &app,
    };
    if (http_start(&hc, &http, &e) != 0) {
        log_msg(LOG_ERROR, "http: %s", e.detail);
        goto out;
    }
    if (conf.demo) {
        int n = demo_load(store, &e);
        if (n < 0)
            log_msg(LOG_ERROR, "demo: %s", e.detail);
        else if (n > 0)
            log_msg(LOG_INFO, "demo: loaded %d entities of the demo city", n);
        if (conf.demo_sensors > 0 && demo_live_start(ingest, http_port(http), conf.demo_sensors,
                                                     conf.demo_rate, &live, &e) != 0)
            log_msg(LOG_ERROR, "demo: live sensors: %s", e.detail);
    }
    log_msg(LOG_INFO, "pilotlight %s (%s) serving NGSI-LD on http://%s:%d" API_BASE, PL_VERSION,
            PL_BUILD, conf.bind, http_port(http));

    sigwait(&sigs, &sig);
    log_msg(LOG_INFO, "received signal %d, shutting down", sig);
    rc = 0;
out:
    /* Let the writer finish what it has queued (every suspended request is
     * resumed with its result; later writes are refused), wait for those
     * answers, then stop HTTP: MHD must not be stopped while a connection
     * is suspended. */
    demo_live_stop(live);
    mqin_stop(mqin); /* no new uplinks; those in the writer finish below */
    store_drain(store);
    http_close_suspensions(http, 2000);
    http_stop(http);
    ingest_close(ingest);
    free(mconfs);
    notify_stop(notify);
    store_close(store);
    notify_free(notify);
    ld_cache_free(contexts);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("pilotlight %s (%s)\n", PL_VERSION, PL_BUILD);
        return 0;
    }
    if (!strcmp(argv[1], "config")) {
        cfg_print_reference(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "serve"))
        return serve(argc, argv);
    if (!strcmp(argv[1], "simulate"))
        return sim_main(argc, argv);
    fprintf(stderr, "pilotlight: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
