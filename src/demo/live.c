/*
 * live.c - the demo city's live sensors (see live.h). The profiles'
 * terms are expanded with the core context, so their attributes land in
 * the default vocabulary like the static demo city's.
 *
 * Rotating the default tenant's webhook secret at every demo start is
 * deliberate: the simulator needs the secret in clear, and the hub only
 * keeps a hash. A demo is not a production tenant.
 */
#include "demo/live.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "ingest/profile.h"
#include "ld/ld.h"
#include "sim/sim.h"
#include "util/log.h"

struct demo_live {
    pthread_t thread;
    int started;
    volatile int stop;
    struct sim_conf conf;
    char url[64];
    char secret[65];
};

static char *core_expand(void *ud, const char *term)
{
    (void)ud;
    return ld_expand(ld_core(), term);
}

static int provision(struct ingest *g, const struct sim_conf *c, struct err *e)
{
    cJSON *profiles = sim_profiles_json(), *devices = sim_devices_json(c), *it;
    int rc = 0;
    if (profiles == NULL || devices == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, profiles)
    {
        struct prof *p = NULL;
        if ((rc = prof_parse(it, core_expand, NULL, &p, e)) != 0 ||
            (rc = ingest_profile_put(g, "", p, 0, e)) != 0)
            goto out;
    }
    cJSON_ArrayForEach(it, devices)
    {
        struct prof_device *d = NULL;
        if ((rc = prof_device_parse(it, &d, e)) != 0 ||
            (rc = ingest_device_put(g, "", d, 0, e)) != 0)
            goto out;
    }
out:
    cJSON_Delete(profiles);
    cJSON_Delete(devices);
    return rc;
}

static void *run(void *ud)
{
    struct demo_live *l = ud;
    struct sim_stats st = {0};
    struct err e = {0};
    if (sim_run(&l->conf, &l->stop, &st, &e) != 0)
        log_msg(LOG_ERROR, "demo: the simulator stopped: %s", e.detail);
    else
        log_msg(LOG_INFO, "demo: the simulator sent %ld uplinks (%ld failed)", st.sent, st.failed);
    return NULL;
}

int demo_live_start(struct ingest *g, int port, int n_devices, double rate, struct demo_live **out,
                    struct err *e)
{
    struct demo_live *l = calloc(1, sizeof(*l));
    int rc;
    *out = NULL;
    if (l == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    sim_conf_defaults(&l->conf);
    l->conf.n_devices = n_devices;
    l->conf.rate = rate;
    l->conf.format = "mix";
    snprintf(l->url, sizeof(l->url), "http://127.0.0.1:%d", port);
    l->conf.webhook_url = l->url;
    if ((rc = provision(g, &l->conf, e)) != 0 ||
        (rc = ingest_secret_set(g, "", NULL, l->secret, e)) != 0)
        goto fail;
    l->conf.secret = l->secret;
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot start the simulator thread");
        goto fail;
    }
    l->started = 1;
    log_msg(LOG_INFO, "demo: %d simulated LoRaWAN devices report to the webhooks (%.1f uplinks/s)",
            n_devices, rate);
    *out = l;
    return 0;
fail:
    free(l);
    return rc;
}

void demo_live_stop(struct demo_live *l)
{
    if (l == NULL)
        return;
    l->stop = 1;
    if (l->started)
        pthread_join(l->thread, NULL);
    free(l);
}
