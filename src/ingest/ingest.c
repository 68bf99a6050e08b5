/*
 * ingest.c - the ingest runtime (see ingest.h for the pipeline).
 *
 * State per tenant (struct tenant), found by name in g->tenants:
 *   registry    profiles (id -> struct prof *), devices (devEui -> struct
 *               prof_device *), autoprovision (application -> profile id),
 *               the hashed webhook secret            guarded by g->reg (rwlock)
 *   quarantine  devEui -> struct qent, at most conf.quarantine_max
 *   counters    per reason / event / device, last errors ring
 *                                                    guarded by g->mu (mutex)
 * Tenants are created on first use and live until ingest_close; they come
 * from config (MQTT) or authenticated requests, never from messages.
 *
 * Duplicates: ChirpStack's deduplicationId in two generations of a hash
 * set (DEDUP_GEN ids each): an id is remembered for at least DEDUP_GEN and
 * at most 2 * DEDUP_GEN messages, enough for a message arriving through
 * both the MQTT integration and the webhook.
 *
 * In-flight writes: g->inflight counts messages handed to the writer and
 * not yet completed; MQTT threads wait while it is at max_inflight, which
 * stops reading the socket and lets the broker hold the backlog.
 */
#include "ingest/ingest.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/profile.h"
#include "store/store.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/time.h"

#define COLL_PROFILES "device-profiles"
#define COLL_DEVICES "devices"
#define COLL_INGEST "ingest"
#define SETTINGS_ID "settings"

#define DEDUP_GEN 8192
#define LAST_ERRORS 32
#define DEVSTATS_MAX 100000 /* per tenant; beyond, devices are not tracked one by one */
#define QMSG_MAX 8192       /* bytes of a quarantined device's last message kept */
#define MAX_REASONS 64

struct devstat {
    long received, stored, rejected;
    char last_reason[32];
    int64_t last_seen;
    double tokens; /* flood control bucket */
    int64_t tokens_at_us;
    unsigned long identity_gen; /* g->reg_gen when its identity was last stored (0: not yet) */
};

struct qent {
    char dev_eui[17];
    char name[128], application[128];
    enum uplink_format format;
    enum uplink_event event;
    int64_t first_seen, last_seen;
    long count;
    char *msg; /* last message, truncated to QMSG_MAX (then not replayable) */
    size_t msg_len;
    int msg_whole;
};

struct lasterr {
    int64_t at;
    char dev_eui[17];
    char reason[32];
    char detail[160];
    char source[16];
};

struct reason_count {
    const char *reason; /* static string or interned in names */
    long n;
    int64_t last_log_ms;
    long suppressed;
};

struct tenant {
    char *name;
    /* registry (g->reg) */
    struct hmap *profiles, *devices, *autoprov;
    char secret_hash[SECRET_HASH_LEN];
    /* counters (g->mu) */
    struct hmap *quarantine;
    struct hmap *devstats;
    long received, stored, duplicates, quarantined, rejected, nothing, store_errors;
    long by_event[5];
    long untracked;
    struct reason_count reasons[MAX_REASONS];
    int n_reasons;
    struct lasterr last[LAST_ERRORS];
    int n_last, last_pos;
};

struct ingest {
    struct store *store;
    struct ingest_config conf;
    pthread_rwlock_t reg;
    unsigned long reg_gen; /* bumped by every registry change (reg, write-locked) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hmap *tenants;  /* name -> struct tenant * (g->mu for lookups/creation) */
    struct hmap *dedup[2]; /* (g->mu) */
    long inflight;
    int waiters;            /* threads waiting on cv for inflight to drop */
    struct flight *reclaim; /* committed flights, freed off the writer (g->mu) */
};

void ingest_config_defaults(struct ingest_config *c)
{
    c->quarantine_max = 1000;
    c->device_rate = 10.0;
    c->device_burst = 60.0;
    c->max_inflight = 8192;
}

static cJSON *prof_json(const struct prof *p)
{
    cJSON *o = NULL;
    return prof_to_json(p, &o) == 0 ? o : NULL;
}

static cJSON *dev_json(const struct prof_device *d)
{
    cJSON *o = NULL;
    return prof_device_to_json(d, &o) == 0 ? o : NULL;
}

/* --- tenants ----------------------------------------------------------- */

static void free_prof(void *p)
{
    prof_free(p);
}
static void free_dev(void *d)
{
    prof_device_free(d);
}
static void free_qent(void *v)
{
    struct qent *q = v;
    if (q != NULL)
        free(q->msg);
    free(q);
}

static void tenant_free(void *v)
{
    struct tenant *t = v;
    if (t == NULL)
        return;
    hmap_free(t->profiles, free_prof);
    hmap_free(t->devices, free_dev);
    hmap_free(t->autoprov, free);
    hmap_free(t->quarantine, free_qent);
    hmap_free(t->devstats, free);
    free(t->name);
    free(t);
}

/* The tenant's state, created on first use. NULL when out of memory. */
static struct tenant *tenant_get(struct ingest *g, const char *name)
{
    struct tenant *t;
    pthread_mutex_lock(&g->mu);
    t = hmap_get(g->tenants, name);
    if (t == NULL && (t = calloc(1, sizeof(*t))) != NULL) {
        t->name = strdup(name);
        t->profiles = hmap_new(8);
        t->devices = hmap_new(64);
        t->autoprov = hmap_new(4);
        t->quarantine = hmap_new(16);
        t->devstats = hmap_new(64);
        if (t->name == NULL || t->profiles == NULL || t->devices == NULL || t->autoprov == NULL ||
            t->quarantine == NULL || t->devstats == NULL ||
            hmap_put(g->tenants, name, t, NULL) < 0) {
            tenant_free(t);
            t = NULL;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return t;
}

/* --- counters ------------------------------------------------------------ */

static struct devstat *devstat_get(struct tenant *t, const char *dev_eui)
{
    struct devstat *d = hmap_get(t->devstats, dev_eui);
    if (d == NULL && dev_eui[0] && hmap_count(t->devstats) < DEVSTATS_MAX &&
        (d = calloc(1, sizeof(*d))) != NULL && hmap_put(t->devstats, dev_eui, d, NULL) < 0) {
        free(d);
        d = NULL;
    }
    return d;
}

/* Count a rejection (g->mu held) and log it at most once a second per
 * reason. */
static void count_reject(struct tenant *t, const char *source, const char *dev_eui,
                         const char *reason, const char *detail)
{
    struct reason_count *rc = NULL;
    int64_t now = tm_now_ms();
    t->rejected++;
    for (int i = 0; i < t->n_reasons; i++)
        if (strcmp(t->reasons[i].reason, reason) == 0)
            rc = &t->reasons[i];
    if (rc == NULL && t->n_reasons < MAX_REASONS) {
        rc = &t->reasons[t->n_reasons++];
        rc->reason = reason; /* static: reason codes are string literals */
    }
    if (dev_eui[0]) {
        struct devstat *d = devstat_get(t, dev_eui);
        if (d != NULL) {
            d->rejected++;
            snprintf(d->last_reason, sizeof(d->last_reason), "%s", reason);
        } else {
            t->untracked++;
        }
    }
    struct lasterr *l = &t->last[t->last_pos];
    t->last_pos = (t->last_pos + 1) % LAST_ERRORS;
    if (t->n_last < LAST_ERRORS)
        t->n_last++;
    l->at = now;
    snprintf(l->dev_eui, sizeof(l->dev_eui), "%s", dev_eui);
    snprintf(l->reason, sizeof(l->reason), "%s", reason);
    snprintf(l->detail, sizeof(l->detail), "%s", detail);
    snprintf(l->source, sizeof(l->source), "%s", source);
    if (rc == NULL)
        return;
    rc->n++;
    if (now - rc->last_log_ms >= 1000) {
        if (rc->suppressed > 0)
            log_msg(LOG_WARN, "ingest: tenant '%s' %s: rejected %s from %s: %s (%ld more since)",
                    t->name, source, reason, dev_eui[0] ? dev_eui : "?", detail, rc->suppressed);
        else
            log_msg(LOG_WARN, "ingest: tenant '%s' %s: rejected %s from %s: %s", t->name, source,
                    reason, dev_eui[0] ? dev_eui : "?", detail);
        rc->last_log_ms = now;
        rc->suppressed = 0;
    } else {
        rc->suppressed++;
    }
}

static int reject(struct ingest *g, struct tenant *t, const struct ingest_msg *m,
                  const char *dev_eui, const char *reason, int code, struct err *e, const char *fmt,
                  ...) __attribute__((format(printf, 8, 9)));

static int reject(struct ingest *g, struct tenant *t, const struct ingest_msg *m,
                  const char *dev_eui, const char *reason, int code, struct err *e, const char *fmt,
                  ...)
{
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g->mu);
    count_reject(t, m->source ? m->source : "?", dev_eui, reason, detail);
    pthread_mutex_unlock(&g->mu);
    return err_set(e, code, "%s: %s", reason, detail);
}

/* Flood control: a token bucket per device (g->mu held). 1 = allowed. */
static int bucket_take(const struct ingest_config *c, struct devstat *d)
{
    int64_t now = tm_mono_us();
    if (c->device_rate <= 0)
        return 1;
    if (d->tokens_at_us == 0) {
        d->tokens = c->device_burst;
    } else {
        d->tokens += (double)(now - d->tokens_at_us) / 1e6 * c->device_rate;
        if (d->tokens > c->device_burst)
            d->tokens = c->device_burst;
    }
    d->tokens_at_us = now;
    if (d->tokens < 1.0)
        return 0;
    d->tokens -= 1.0;
    return 1;
}

/* 1 if (tenant, id) was seen recently; remembers it otherwise (g->mu held). */
static int dedup_seen(struct ingest *g, const char *tenant, const char *id)
{
    char key[256];
    snprintf(key, sizeof(key), "%s\x1f%s", tenant, id);
    if (hmap_get(g->dedup[0], key) || hmap_get(g->dedup[1], key))
        return 1;
    if (hmap_count(g->dedup[0]) >= DEDUP_GEN) {
        struct hmap *fresh = hmap_new(DEDUP_GEN);
        if (fresh == NULL)
            return 0;
        hmap_free(g->dedup[1], NULL);
        g->dedup[1] = g->dedup[0];
        g->dedup[0] = fresh;
    }
    (void)hmap_put(g->dedup[0], key, (void *)1, NULL);
    return 0;
}

/* --- quarantine ------------------------------------------------------------ */

static void quarantine_add(struct ingest *g, struct tenant *t, const struct uplink *u,
                           const struct ingest_msg *m, enum uplink_format f)
{
    struct qent *q;
    pthread_mutex_lock(&g->mu);
    t->quarantined++;
    q = hmap_get(t->quarantine, u->dev_eui);
    if (q == NULL) {
        if ((int)hmap_count(t->quarantine) >= g->conf.quarantine_max ||
            (q = calloc(1, sizeof(*q))) == NULL)
            goto out;
        snprintf(q->dev_eui, sizeof(q->dev_eui), "%s", u->dev_eui);
        q->first_seen = tm_now_ms();
        if (hmap_put(t->quarantine, u->dev_eui, q, NULL) < 0) {
            free(q);
            goto out;
        }
        log_msg(LOG_INFO, "ingest: tenant '%s': unknown device %s (%s) quarantined", t->name,
                u->dev_eui, u->device_name);
    }
    q->count++;
    q->last_seen = tm_now_ms();
    snprintf(q->name, sizeof(q->name), "%s", u->device_name);
    snprintf(q->application, sizeof(q->application), "%s", u->application);
    q->format = f;
    q->event = u->event;
    if (u->event == UPLINK_EV_UP) {
        size_t n = m->len < QMSG_MAX ? m->len : QMSG_MAX;
        char *copy = malloc(n + 1);
        if (copy != NULL) {
            memcpy(copy, m->data, n);
            copy[n] = '\0';
            free(q->msg);
            q->msg = copy;
            q->msg_len = n;
            q->msg_whole = n == m->len;
        }
    }
out:
    pthread_mutex_unlock(&g->mu);
}

/* --- writes ------------------------------------------------------------------ */

struct flight {
    struct ingest *g;
    struct tenant *t;
    struct store_op ops[2];
    size_t n_ops;
    cJSON *docs[2];
    char *entity_ids[2];
    struct devstat *ds; /* the device's counters (stable until the tenant goes), or NULL */
    unsigned long gen;  /* registry generation the uplink was mapped with */
    int identity;       /* it carried the identity attributes (not PROF_MAP_MEASURED) */
    ingest_done_fn done;
    void *ud;
    struct flight *next; /* g->reclaim */
};

static void flight_done(void *ud)
{
    struct flight *fl = ud;
    struct ingest *g = fl->g;
    int status = 0;
    for (size_t i = 0; i < fl->n_ops; i++)
        if (fl->ops[i].err.code != 0 && status == 0)
            status = fl->ops[i].err.code;
    pthread_mutex_lock(&g->mu);
    if (status == 0) {
        fl->t->stored++;
        /* identity stored: later uplinks send measurements only; an entity
         * (re)created without it gets it with the next uplink */
        if (fl->ds != NULL && fl->identity)
            fl->ds->identity_gen = fl->gen;
        else if (fl->ds != NULL && (fl->ops[0].created || (fl->n_ops > 1 && fl->ops[1].created)))
            fl->ds->identity_gen = 0;
    } else {
        fl->t->store_errors++;
        log_msg(LOG_ERROR, "ingest: tenant '%s': store write failed: %s", fl->t->name,
                fl->ops[0].err.code ? fl->ops[0].err.detail : fl->ops[1].err.detail);
    }
    g->inflight--;
    /* wake waiters only at the low-water mark (or the end): waking the
     * MQTT thread for every completion made it trade the lock with the
     * writer once per message */
    if (g->waiters > 0 && (g->inflight <= g->conf.max_inflight / 2 || g->inflight == 0))
        pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (fl->done)
        fl->done(fl->ud, status);
    /* the documents are freed by the next ingest_submit, on its thread:
     * freeing them here cost the single writer ~10 % of its time */
    pthread_mutex_lock(&g->mu);
    fl->next = g->reclaim;
    g->reclaim = fl;
    pthread_mutex_unlock(&g->mu);
}

static void flights_free(struct flight *fl)
{
    while (fl != NULL) {
        struct flight *next = fl->next;
        store_ops_clear(fl->ops, fl->n_ops);
        for (size_t i = 0; i < 2; i++) {
            cJSON_Delete(fl->docs[i]);
            free(fl->entity_ids[i]);
        }
        free(fl);
        fl = next;
    }
}

static int add_op(struct flight *fl, struct tenant *t, cJSON *doc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    size_t i = fl->n_ops;
    if (!cJSON_IsString(id) || (fl->entity_ids[i] = strdup(id->valuestring)) == NULL) {
        cJSON_Delete(doc);
        return ERR_NOMEM;
    }
    fl->docs[i] = doc;
    fl->ops[i].kind = STORE_UPSERT_UPDATE;
    fl->ops[i].tenant = t->name;
    fl->ops[i].entity_id = fl->entity_ids[i];
    fl->ops[i].doc = doc;
    fl->n_ops++;
    return 0;
}

/* --- the pipeline ---------------------------------------------------------------- */

static int autoprovision(struct ingest *g, struct tenant *t, const struct uplink *u);

/* Parse exactly data[0..len) as one JSON value (trailing whitespace only,
 * no NUL inside). 1 and *out, or 0. */
static int parse_whole(const char *data, size_t len, cJSON **out)
{
    const char *end = NULL;
    *out = NULL;
    if (len == 0 || memchr(data, '\0', len) != NULL)
        return 0;
    if ((*out = cJSON_ParseWithLengthOpts(data, len, &end, 0)) == NULL)
        return 0;
    while (end < data + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != data + len) {
        cJSON_Delete(*out);
        *out = NULL;
        return 0;
    }
    return 1;
}

int ingest_submit(struct ingest *g, const struct ingest_msg *m, ingest_done_fn done, void *ud,
                  enum ingest_result *res, char *entity_id, struct err *e)
{
    struct tenant *t = tenant_get(g, m->tenant ? m->tenant : "");
    struct uplink u;
    cJSON *msg = NULL;
    enum uplink_format f = m->format;
    enum uplink_event ev = m->event;
    char key[128] = "";
    struct prof_out po;
    struct flight *fl = NULL;
    int rc;

    memset(&u, 0, sizeof(u));
    memset(&po, 0, sizeof(po));
    *res = INGEST_NOTHING;
    if (entity_id)
        entity_id[0] = '\0';
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    /* count it, and take back the flights the writer has finished with */
    pthread_mutex_lock(&g->mu);
    t->received++;
    struct flight *done_flights = g->reclaim;
    g->reclaim = NULL;
    pthread_mutex_unlock(&g->mu);
    flights_free(done_flights);

    if (uplink_check_size(m->len) != 0)
        return reject(g, t, m, "", "too_large", ERR_TOO_LARGE, e, "message of %zu bytes (limit %d)",
                      m->len, UPLINK_MAX_MESSAGE);
    if (m->topic != NULL && uplink_topic(m->topic, &f, &ev, key) != 0)
        return reject(g, t, m, "", "bad_topic", ERR_BAD_DATA, e,
                      "topic '%.100s' is not an uplink topic", m->topic);
    if (!parse_whole(m->data, m->len, &msg))
        return reject(g, t, m, "", "invalid_json", ERR_BAD_DATA, e, "message is not valid JSON");
    if (m->topic == NULL && f == UPLINK_CHIRPSTACK_V4 && cJSON_IsObject(msg) &&
        cJSON_GetObjectItemCaseSensitive(msg, "deviceInfo") == NULL &&
        cJSON_GetObjectItemCaseSensitive(msg, "devEUI") != NULL)
        f = UPLINK_CHIRPSTACK_V3;
    {
        struct err pe = {0};
        if (uplink_parse(f, ev, msg, &u, &pe) != 0) {
            rc = reject(g, t, m, u.dev_eui, u.reason ? u.reason : "bad_message", ERR_BAD_DATA, e,
                        "%s", pe.detail);
            goto done;
        }
    }
    /* event counter, duplicates and flood control */
    pthread_mutex_lock(&g->mu);
    if (ev >= 1 && ev <= 4)
        t->by_event[ev]++;
    if (u.dedup_id[0] && !m->replay && dedup_seen(g, t->name, u.dedup_id)) {
        t->duplicates++;
        pthread_mutex_unlock(&g->mu);
        *res = INGEST_DUPLICATE;
        rc = 0;
        goto done;
    }
    struct devstat *ds = devstat_get(t, u.dev_eui);
    unsigned long identity_gen = ds ? ds->identity_gen : 0;
    if (ds != NULL) {
        ds->received++;
        ds->last_seen = tm_now_ms();
        if (!bucket_take(&g->conf, ds)) {
            pthread_mutex_unlock(&g->mu);
            rc = reject(g, t, m, u.dev_eui, "flood", ERR_RATE_LIMITED, e,
                        "device sends more than %g messages/s", g->conf.device_rate);
            goto done;
        }
    }
    pthread_mutex_unlock(&g->mu);

    /* device and profile */
    pthread_rwlock_rdlock(&g->reg);
    struct prof_device *d = hmap_get(t->devices, u.dev_eui);
    if (d == NULL) {
        const char *ap = u.application[0] ? hmap_get(t->autoprov, u.application) : NULL;
        pthread_rwlock_unlock(&g->reg);
        if (ap == NULL || autoprovision(g, t, &u) != 0) {
            quarantine_add(g, t, &u, m, f);
            *res = INGEST_QUARANTINED;
            rc = 0;
            goto done;
        }
        pthread_rwlock_rdlock(&g->reg);
        d = hmap_get(t->devices, u.dev_eui);
    }
    struct prof *p = d ? hmap_get(t->profiles, ((const struct prof_device *)d)->profile) : NULL;
    if (p == NULL) {
        pthread_rwlock_unlock(&g->reg);
        rc = reject(g, t, m, u.dev_eui, "no_profile", ERR_BAD_DATA, e,
                    "device %s has no usable profile", u.dev_eui);
        goto done;
    }
    unsigned long gen = g->reg_gen;
    int identity = ds == NULL || identity_gen != gen || m->replay;
    {
        struct err me = {0};
        rc = prof_map_opts(p, d, &u, tm_now_ms(), identity ? 0 : PROF_MAP_MEASURED, &po, &me);
        pthread_rwlock_unlock(&g->reg);
        if (rc != 0) {
            rc = reject(g, t, m, u.dev_eui, po.reason ? po.reason : "mapping", ERR_BAD_DATA, e,
                        "%s", me.detail);
            goto done;
        }
    }
    if (po.n_rejected > 0) {
        pthread_mutex_lock(&g->mu);
        count_reject(t, m->source ? m->source : "?", u.dev_eui, "bad_field",
                     "some decoded fields could not be mapped");
        t->rejected--; /* the message itself is stored */
        pthread_mutex_unlock(&g->mu);
    }
    if (po.entity == NULL && po.device == NULL) {
        pthread_mutex_lock(&g->mu);
        t->nothing++;
        pthread_mutex_unlock(&g->mu);
        rc = 0;
        goto done;
    }

    /* hand to the writer */
    if ((fl = calloc(1, sizeof(*fl))) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    fl->g = g;
    fl->t = t;
    fl->ds = ds;
    fl->gen = gen;
    fl->identity = identity;
    fl->done = done;
    fl->ud = ud;
    if ((po.entity && (rc = add_op(fl, t, po.entity)) != 0) ||
        (po.device && (rc = add_op(fl, t, po.device)) != 0)) {
        po.entity = po.device = NULL; /* add_op took them */
        err_set(e, rc, "out of memory");
        goto done;
    }
    if (entity_id && fl->n_ops > 0)
        snprintf(entity_id, 256, "%s", fl->entity_ids[0]);
    po.entity = po.device = NULL;
    pthread_mutex_lock(&g->mu);
    g->inflight++;
    pthread_mutex_unlock(&g->mu);
    if (store_submit(g->store, fl->ops, fl->n_ops, flight_done, fl) != 0) {
        pthread_mutex_lock(&g->mu);
        g->inflight--;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        rc = err_set(e, ERR_UNAVAILABLE, "the store is shutting down");
        goto done;
    }
    fl = NULL;
    *res = INGEST_STORED;
    rc = 0;
done:
    if (fl != NULL) {
        for (size_t i = 0; i < 2; i++) {
            cJSON_Delete(fl->docs[i]);
            free(fl->entity_ids[i]);
        }
        free(fl);
    }
    prof_out_clear(&po);
    uplink_free(&u);
    cJSON_Delete(msg);
    return rc;
}

void ingest_mqtt_message(void *ud, const char *tenant, const char *topic, const void *payload,
                         size_t len)
{
    struct ingest *g = ud;
    struct ingest_msg m = {
        .tenant = tenant, .source = "mqtt", .topic = topic, .data = payload, .len = len};
    enum ingest_result res;
    struct err e = {0};

    pthread_mutex_lock(&g->mu);
    while (g->inflight >= g->conf.max_inflight) {
        g->waiters++;
        pthread_cond_wait(&g->cv, &g->mu);
        g->waiters--;
    }
    pthread_mutex_unlock(&g->mu);
    (void)ingest_submit(g, &m, NULL, NULL, &res, NULL, &e); /* counted and logged inside */
}

/* --- registry --------------------------------------------------------------------- */

static int doc_put(struct ingest *g, const char *tenant, const char *coll, const char *id,
                   cJSON *json, int create_only, struct err *e)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    int rc;
    if (text == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = store_doc_put(g->store, tenant, coll, id, text, create_only);
    free(text);
    if (rc == ERR_EXISTS)
        return err_set(e, rc, "'%s' already exists", id);
    if (rc != 0)
        return err_set(e, rc, "could not store '%s'", id);
    return 0;
}

static cJSON *settings_json(struct tenant *t)
{
    cJSON *o = cJSON_CreateObject(), *ap = cJSON_AddObjectToObject(o, "autoprovision");
    size_t pos = 0;
    const char *k;
    void *v;
    if (t->secret_hash[0])
        cJSON_AddStringToObject(o, "secretHash", t->secret_hash);
    while (ap && hmap_next(t->autoprov, &pos, &k, &v))
        cJSON_AddStringToObject(ap, k, v);
    return o;
}

int ingest_profile_put(struct ingest *g, const char *tenant, struct prof *p, int create_only,
                       struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    cJSON *json;
    void *old = NULL;
    int rc;
    if (t == NULL || (json = prof_json(p)) == NULL) {
        prof_free(p);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    if ((rc = doc_put(g, tenant, COLL_PROFILES, prof_id(p), json, create_only, e)) == 0 &&
        (rc = hmap_put(t->profiles, prof_id(p), p, &old)) >= 0) {
        prof_free(old);
        p = NULL;
        rc = 0;
    } else if (rc > 0) {
        rc = 0;
    }
    pthread_rwlock_unlock(&g->reg);
    cJSON_Delete(json);
    prof_free(p);
    return rc < 0 ? err_set(e, rc, "could not keep the profile") : 0;
}

int ingest_profile_get(struct ingest *g, const char *tenant, const char *id, cJSON **out,
                       struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    struct prof *p;
    *out = NULL;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_rwlock_rdlock(&g->reg);
    if ((p = hmap_get(t->profiles, id)) != NULL)
        *out = prof_json(p);
    pthread_rwlock_unlock(&g->reg);
    if (p == NULL)
        return err_set(e, ERR_NOT_FOUND, "no device profile '%.64s'", id);
    return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of a map, sorted (caller frees the array, not the keys). */
static const char **sorted_keys(struct hmap *m, size_t *n)
{
    size_t pos = 0, i = 0, cnt = hmap_count(m);
    const char *k, **keys = malloc((cnt ? cnt : 1) * sizeof(*keys));
    if (keys == NULL)
        return NULL;
    while (hmap_next(m, &pos, &k, NULL))
        keys[i++] = k;
    qsort(keys, i, sizeof(*keys), cmp_id);
    *n = i;
    return keys;
}

int ingest_profile_list(struct ingest *g, const char *tenant, cJSON **out, struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    const char **keys;
    size_t n = 0;
    if (t == NULL || (*out = cJSON_CreateArray()) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_rwlock_rdlock(&g->reg);
    if ((keys = sorted_keys(t->profiles, &n)) != NULL)
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(*out, prof_json(hmap_get(t->profiles, keys[i])));
    pthread_rwlock_unlock(&g->reg);
    free(keys);
    return keys ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

int ingest_profile_delete(struct ingest *g, const char *tenant, const char *id, struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    size_t pos = 0, users = 0;
    void *v, *old = NULL;
    int rc = 0;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    if (hmap_get(t->profiles, id) == NULL) {
        rc = err_set(e, ERR_NOT_FOUND, "no device profile '%.64s'", id);
        goto out;
    }
    while (hmap_next(t->devices, &pos, NULL, &v))
        users += strcmp(((const struct prof_device *)v)->profile, id) == 0;
    pos = 0;
    while (hmap_next(t->autoprov, &pos, NULL, &v))
        users += strcmp(v, id) == 0;
    if (users > 0) {
        rc = err_set(e, ERR_EXISTS,
                     "device profile '%.64s' is used by %zu device(s) or "
                     "application(s)",
                     id, users);
        goto out;
    }
    if ((rc = store_doc_delete(g->store, tenant, COLL_PROFILES, id)) != 0 && rc != ERR_NOT_FOUND) {
        rc = err_set(e, rc, "could not delete '%.64s'", id);
        goto out;
    }
    rc = 0;
    hmap_del(t->profiles, id, &old);
    prof_free(old);
out:
    pthread_rwlock_unlock(&g->reg);
    return rc;
}

/* Put d in the registry (g->reg held for writing); takes d. */
static int device_put_locked(struct ingest *g, struct tenant *t, struct prof_device *d,
                             int create_only, struct err *e)
{
    const char *eui = d->dev_eui;
    cJSON *json = NULL;
    void *old = NULL;
    int rc;
    if (hmap_get(t->profiles, ((const struct prof_device *)d)->profile) == NULL) {
        rc = err_set(e, ERR_BAD_DATA, "device %s: no device profile '%.64s'", eui,
                     ((const struct prof_device *)d)->profile);
        goto fail;
    }
    if (create_only && hmap_get(t->devices, eui) != NULL) {
        rc = err_set(e, ERR_EXISTS, "device %s already exists", eui);
        goto fail;
    }
    if ((json = dev_json(d)) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = doc_put(g, t->name, COLL_DEVICES, eui, json, 0, e)) != 0)
        goto fail;
    if ((rc = hmap_put(t->devices, eui, d, &old)) < 0) {
        rc = err_set(e, rc, "could not keep device %s", eui);
        goto fail;
    }
    prof_device_free(old);
    cJSON_Delete(json);
    return 0;
fail:
    cJSON_Delete(json);
    prof_device_free(d);
    return rc;
}

static void quarantine_drop(struct ingest *g, struct tenant *t, const char *eui)
{
    void *old = NULL;
    pthread_mutex_lock(&g->mu);
    if (hmap_del(t->quarantine, eui, &old))
        free_qent(old);
    pthread_mutex_unlock(&g->mu);
}

int ingest_device_put(struct ingest *g, const char *tenant, struct prof_device *d, int create_only,
                      struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    char eui[17];
    int rc;
    if (t == NULL) {
        prof_device_free(d);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    snprintf(eui, sizeof(eui), "%s", d->dev_eui);
    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    rc = device_put_locked(g, t, d, create_only, e);
    pthread_rwlock_unlock(&g->reg);
    if (rc == 0)
        quarantine_drop(g, t, eui);
    return rc;
}

static int autoprovision(struct ingest *g, struct tenant *t, const struct uplink *u)
{
    cJSON *in = cJSON_CreateObject();
    struct prof_device *d = NULL;
    struct err e = {0};
    const char *profile;
    int rc = ERR_NOMEM;

    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    if (hmap_get(t->devices, u->dev_eui) != NULL) {
        rc = 0; /* another thread provisioned it meanwhile */
        goto out;
    }
    if ((profile = hmap_get(t->autoprov, u->application)) == NULL || in == NULL)
        goto out;
    cJSON_AddStringToObject(in, "devEui", u->dev_eui);
    cJSON_AddStringToObject(in, "profile", profile);
    if (u->device_name[0])
        cJSON_AddStringToObject(in, "name", u->device_name);
    if ((rc = prof_device_parse(in, &d, &e)) == 0 && (rc = device_put_locked(g, t, d, 1, &e)) == 0)
        log_msg(LOG_INFO, "ingest: tenant '%s': device %s autoprovisioned with profile '%s'",
                t->name, u->dev_eui, profile);
    else
        log_msg(LOG_WARN, "ingest: tenant '%s': autoprovisioning %s failed: %s", t->name,
                u->dev_eui, e.detail);
out:
    pthread_rwlock_unlock(&g->reg);
    cJSON_Delete(in);
    return rc;
}

int ingest_device_get(struct ingest *g, const char *tenant, const char *dev_eui, cJSON **out,
                      struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    struct prof_device *d;
    *out = NULL;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_rwlock_rdlock(&g->reg);
    if ((d = hmap_get(t->devices, dev_eui)) != NULL)
        *out = dev_json(d);
    pthread_rwlock_unlock(&g->reg);
    if (d == NULL)
        return err_set(e, ERR_NOT_FOUND, "no device '%.32s'", dev_eui);
    return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

int ingest_device_list(struct ingest *g, const char *tenant, const char *profile, const char *owner,
                       long offset, long limit, cJSON **out, long *total, struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    const char **keys;
    size_t n = 0;
    long match = 0;
    if (t == NULL || (*out = cJSON_CreateArray()) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_rwlock_rdlock(&g->reg);
    if ((keys = sorted_keys(t->devices, &n)) != NULL) {
        for (size_t i = 0; i < n; i++) {
            struct prof_device *d = hmap_get(t->devices, keys[i]);
            const char *o = (d->owner[0] ? d->owner : NULL);
            if ((profile && strcmp(profile, ((const struct prof_device *)d)->profile) != 0) ||
                (owner && (o == NULL || strcmp(owner, o) != 0)))
                continue;
            if (match >= offset && match < offset + limit)
                cJSON_AddItemToArray(*out, dev_json(d));
            match++;
        }
    }
    pthread_rwlock_unlock(&g->reg);
    free(keys);
    *total = match;
    return keys ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

int ingest_device_delete(struct ingest *g, const char *tenant, const char *dev_eui, struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    void *old = NULL;
    int rc;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    if (hmap_get(t->devices, dev_eui) == NULL) {
        rc = err_set(e, ERR_NOT_FOUND, "no device '%.32s'", dev_eui);
    } else if ((rc = store_doc_delete(g->store, tenant, COLL_DEVICES, dev_eui)) != 0 &&
               rc != ERR_NOT_FOUND) {
        rc = err_set(e, rc, "could not delete device '%.32s'", dev_eui);
    } else {
        rc = 0;
        hmap_del(t->devices, dev_eui, &old);
        prof_device_free(old);
    }
    pthread_rwlock_unlock(&g->reg);
    return rc;
}

/* --- quarantine (admin) --------------------------------------------------------------- */

static int cmp_qent(const void *a, const void *b)
{
    const struct qent *x = *(const struct qent *const *)a, *y = *(const struct qent *const *)b;
    return x->last_seen < y->last_seen   ? 1
           : x->last_seen > y->last_seen ? -1
                                         : strcmp(x->dev_eui, y->dev_eui);
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char buf[TM_ISO_LEN];
    tm_format(ms, buf);
    cJSON_AddStringToObject(o, name, buf);
}

cJSON *ingest_quarantine_list(struct ingest *g, const char *tenant)
{
    struct tenant *t = tenant_get(g, tenant);
    cJSON *arr = cJSON_CreateArray();
    struct qent **v = NULL;
    size_t n = 0, pos = 0;
    void *val;
    if (t == NULL || arr == NULL)
        return arr;
    pthread_mutex_lock(&g->mu);
    if ((v = malloc((hmap_count(t->quarantine) + 1) * sizeof(*v))) != NULL) {
        while (hmap_next(t->quarantine, &pos, NULL, &val))
            v[n++] = val;
        qsort(v, n, sizeof(*v), cmp_qent);
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject(), *msg;
            if (o == NULL)
                break;
            cJSON_AddStringToObject(o, "devEui", v[i]->dev_eui);
            cJSON_AddStringToObject(o, "deviceName", v[i]->name);
            cJSON_AddStringToObject(o, "application", v[i]->application);
            cJSON_AddStringToObject(o, "format", uplink_format_name(v[i]->format));
            add_time(o, "firstSeen", v[i]->first_seen);
            add_time(o, "lastSeen", v[i]->last_seen);
            cJSON_AddNumberToObject(o, "count", (double)v[i]->count);
            if (v[i]->msg && v[i]->msg_whole &&
                (msg = cJSON_ParseWithLength(v[i]->msg, v[i]->msg_len)) != NULL)
                cJSON_AddItemToObject(o, "lastMessage", msg);
            cJSON_AddItemToArray(arr, o);
        }
    }
    pthread_mutex_unlock(&g->mu);
    free(v);
    return arr;
}

int ingest_quarantine_delete(struct ingest *g, const char *tenant, const char *dev_eui,
                             struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    void *old = NULL;
    int found;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&g->mu);
    found = hmap_del(t->quarantine, dev_eui, &old);
    pthread_mutex_unlock(&g->mu);
    free_qent(old);
    return found ? 0 : err_set(e, ERR_NOT_FOUND, "device '%.32s' is not in quarantine", dev_eui);
}

int ingest_quarantine_take(struct ingest *g, const char *tenant, const char *dev_eui, char **msg,
                           size_t *len, enum uplink_format *f, enum uplink_event *ev, struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    struct qent *q = NULL;
    *msg = NULL;
    *len = 0;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&g->mu);
    hmap_del(t->quarantine, dev_eui, (void **)&q);
    pthread_mutex_unlock(&g->mu);
    if (q == NULL)
        return err_set(e, ERR_NOT_FOUND, "device '%.32s' is not in quarantine", dev_eui);
    if (q->msg && q->msg_whole) {
        *msg = q->msg;
        *len = q->msg_len;
        q->msg = NULL;
    }
    *f = q->format;
    *ev = q->event;
    free_qent(q);
    return 0;
}

/* --- settings ------------------------------------------------------------------------- */

int ingest_secret_set(struct ingest *g, const char *tenant, const char *secret, char out[65],
                      struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    char fresh[65], hash[SECRET_HASH_LEN], saved[SECRET_HASH_LEN];
    cJSON *json;
    int rc;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (secret == NULL) {
        if (secret_new(fresh) != 0)
            return err_set(e, ERR_INTERNAL, "no randomness available");
        secret = fresh;
    } else if (strlen(secret) < 16 || strlen(secret) > 256) {
        return err_set(e, ERR_BAD_DATA, "an ingest secret has 16 to 256 characters");
    }
    if (secret_hash(secret, hash) != 0)
        return err_set(e, ERR_INTERNAL, "no randomness available");
    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    memcpy(saved, t->secret_hash, sizeof(saved));
    memcpy(t->secret_hash, hash, sizeof(hash));
    json = settings_json(t);
    if ((rc = doc_put(g, tenant, COLL_INGEST, SETTINGS_ID, json, 0, e)) != 0)
        memcpy(t->secret_hash, saved, sizeof(saved));
    pthread_rwlock_unlock(&g->reg);
    cJSON_Delete(json);
    if (rc == 0 && out != NULL)
        snprintf(out, 65, "%s", secret);
    return rc;
}

int ingest_secret_check(struct ingest *g, const char *tenant, const char *secret, struct err *e)
{
    struct tenant *t;
    int ok = 0;
    /* look up only: an unauthenticated caller must not create tenant state */
    pthread_mutex_lock(&g->mu);
    t = hmap_get(g->tenants, tenant);
    pthread_mutex_unlock(&g->mu);
    if (t == NULL)
        return err_set(e, ERR_UNAUTHORIZED, "missing or wrong ingest secret for this tenant");
    pthread_rwlock_rdlock(&g->reg);
    if (t->secret_hash[0] && secret != NULL)
        ok = secret_check(secret, t->secret_hash);
    pthread_rwlock_unlock(&g->reg);
    return ok ? 0 : err_set(e, ERR_UNAUTHORIZED, "missing or wrong ingest secret for this tenant");
}

int ingest_autoprovision_set(struct ingest *g, const char *tenant, const char *application,
                             const char *profile, struct err *e)
{
    struct tenant *t = tenant_get(g, tenant);
    char *copy = NULL;
    void *old = NULL;
    cJSON *json = NULL;
    int rc;
    if (t == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (application[0] == '\0' || strlen(application) > 127)
        return err_set(e, ERR_BAD_DATA, "an application id has 1 to 127 characters");
    pthread_rwlock_wrlock(&g->reg);
    g->reg_gen++;
    if (profile != NULL && hmap_get(t->profiles, profile) == NULL) {
        rc = err_set(e, ERR_BAD_DATA, "no device profile '%.64s'", profile);
        goto out;
    }
    if (profile != NULL) {
        if ((copy = strdup(profile)) == NULL ||
            (rc = hmap_put(t->autoprov, application, copy, &old)) < 0) {
            free(copy);
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
    } else if (!hmap_del(t->autoprov, application, &old)) {
        rc = err_set(e, ERR_NOT_FOUND, "application '%.64s' has no autoprovisioning", application);
        goto out;
    }
    json = settings_json(t);
    if ((rc = doc_put(g, tenant, COLL_INGEST, SETTINGS_ID, json, 0, e)) != 0) {
        /* undo */
        if (profile != NULL) {
            void *mine = NULL;
            if (old != NULL)
                hmap_put(t->autoprov, application, old, &mine);
            else
                hmap_del(t->autoprov, application, &mine);
            free(mine);
        } else if (old != NULL && hmap_put(t->autoprov, application, old, NULL) < 0) {
            free(old);
        }
        old = NULL;
    }
out:
    pthread_rwlock_unlock(&g->reg);
    free(old);
    cJSON_Delete(json);
    return rc;
}

cJSON *ingest_autoprovision_get(struct ingest *g, const char *tenant)
{
    struct tenant *t = tenant_get(g, tenant);
    cJSON *o = cJSON_CreateObject();
    size_t pos = 0;
    const char *k;
    void *v;
    if (t == NULL || o == NULL)
        return o;
    pthread_rwlock_rdlock(&g->reg);
    while (hmap_next(t->autoprov, &pos, &k, &v))
        cJSON_AddStringToObject(o, k, v);
    pthread_rwlock_unlock(&g->reg);
    return o;
}

/* --- stats ------------------------------------------------------------------------------ */

struct devrow {
    const char *eui;
    const struct devstat *d;
};

static int cmp_devrow(const void *a, const void *b)
{
    const struct devrow *x = a, *y = b;
    if (x->d->rejected != y->d->rejected)
        return x->d->rejected < y->d->rejected ? 1 : -1;
    return strcmp(x->eui, y->eui);
}

cJSON *ingest_stats(struct ingest *g, const char *tenant)
{
    struct tenant *t = tenant_get(g, tenant);
    cJSON *o = cJSON_CreateObject(), *r, *ev, *devs, *last;
    struct devrow *rows = NULL;
    size_t n = 0, pos = 0;
    const char *k;
    void *v;
    if (t == NULL || o == NULL)
        return o;
    pthread_mutex_lock(&g->mu);
    cJSON_AddNumberToObject(o, "received", (double)t->received);
    cJSON_AddNumberToObject(o, "stored", (double)t->stored);
    cJSON_AddNumberToObject(o, "duplicates", (double)t->duplicates);
    cJSON_AddNumberToObject(o, "quarantined", (double)t->quarantined);
    cJSON_AddNumberToObject(o, "rejected", (double)t->rejected);
    cJSON_AddNumberToObject(o, "nothingToStore", (double)t->nothing);
    cJSON_AddNumberToObject(o, "storeErrors", (double)t->store_errors);
    cJSON_AddNumberToObject(o, "inFlight", (double)g->inflight);
    if ((ev = cJSON_AddObjectToObject(o, "byEvent")) != NULL)
        for (int i = 1; i <= 4; i++)
            cJSON_AddNumberToObject(ev, uplink_event_name((enum uplink_event)i),
                                    (double)t->by_event[i]);
    if ((r = cJSON_AddObjectToObject(o, "rejectedByReason")) != NULL)
        for (int i = 0; i < t->n_reasons; i++)
            cJSON_AddNumberToObject(r, t->reasons[i].reason, (double)t->reasons[i].n);
    cJSON_AddNumberToObject(o, "devicesSeen", (double)hmap_count(t->devstats));
    cJSON_AddNumberToObject(o, "untrackedRejections", (double)t->untracked);
    cJSON_AddNumberToObject(o, "quarantineSize", (double)hmap_count(t->quarantine));
    /* the 100 devices with the most rejections */
    if ((devs = cJSON_AddArrayToObject(o, "devicesWithRejections")) != NULL &&
        (rows = malloc((hmap_count(t->devstats) + 1) * sizeof(*rows))) != NULL) {
        while (hmap_next(t->devstats, &pos, &k, &v))
            if (((struct devstat *)v)->rejected > 0)
                rows[n++] = (struct devrow){k, v};
        qsort(rows, n, sizeof(*rows), cmp_devrow);
        for (size_t i = 0; i < n && i < 100; i++) {
            cJSON *d = cJSON_CreateObject();
            if (d == NULL)
                break;
            cJSON_AddStringToObject(d, "devEui", rows[i].eui);
            cJSON_AddNumberToObject(d, "received", (double)rows[i].d->received);
            cJSON_AddNumberToObject(d, "rejected", (double)rows[i].d->rejected);
            cJSON_AddStringToObject(d, "lastReason", rows[i].d->last_reason);
            add_time(d, "lastSeen", rows[i].d->last_seen);
            cJSON_AddItemToArray(devs, d);
        }
    }
    if ((last = cJSON_AddArrayToObject(o, "lastErrors")) != NULL)
        for (int i = 0; i < t->n_last; i++) {
            /* newest first */
            const struct lasterr *l =
                &t->last[(t->last_pos - 1 - i + 2 * LAST_ERRORS) % LAST_ERRORS];
            cJSON *x = cJSON_CreateObject();
            if (x == NULL)
                break;
            add_time(x, "at", l->at);
            cJSON_AddStringToObject(x, "source", l->source);
            cJSON_AddStringToObject(x, "devEui", l->dev_eui);
            cJSON_AddStringToObject(x, "reason", l->reason);
            cJSON_AddStringToObject(x, "detail", l->detail);
            cJSON_AddItemToArray(last, x);
        }
    pthread_mutex_unlock(&g->mu);
    free(rows);
    return o;
}

/* --- open / close ------------------------------------------------------------------------- */

struct loader {
    struct ingest *g;
    int kind; /* 0 profiles, 1 devices, 2 settings */
    long loaded, failed;
};

static int load_one(void *ud, const char *tenant, const char *id, const char *json)
{
    struct loader *l = ud;
    struct tenant *t = tenant_get(l->g, tenant);
    cJSON *in = cJSON_Parse(json);
    struct err e = {0};
    int rc = -1;
    if (t == NULL || in == NULL)
        goto out;
    if (l->kind == 0) {
        struct prof *p = NULL;
        if ((rc = prof_parse(in, NULL, NULL, &p, &e)) == 0 &&
            (rc = hmap_put(t->profiles, prof_id(p), p, NULL)) < 0)
            prof_free(p);
    } else if (l->kind == 1) {
        struct prof_device *d = NULL;
        if ((rc = prof_device_parse(in, &d, &e)) == 0 &&
            (rc = hmap_put(t->devices, d->dev_eui, d, NULL)) < 0)
            prof_device_free(d);
    } else {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(in, "secretHash"), *c;
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(in, "autoprovision");
        if (cJSON_IsString(h) && strlen(h->valuestring) == SECRET_HASH_LEN - 1)
            memcpy(t->secret_hash, h->valuestring, SECRET_HASH_LEN);
        cJSON_ArrayForEach(c, ap)
        {
            char *copy;
            if (cJSON_IsString(c) && (copy = strdup(c->valuestring)) != NULL &&
                hmap_put(t->autoprov, c->string, copy, NULL) < 0)
                free(copy);
        }
        rc = 0;
    }
out:
    if (rc != 0) {
        l->failed++;
        log_msg(LOG_ERROR, "ingest: tenant '%s': stored %s '%s' is unreadable, skipped: %s", tenant,
                l->kind == 0   ? "profile"
                : l->kind == 1 ? "device"
                               : "settings",
                id, e.detail);
    } else {
        l->loaded++;
    }
    cJSON_Delete(in);
    return 0;
}

int ingest_open(struct store *s, const struct ingest_config *c, struct ingest **out, struct err *e)
{
    struct ingest *g = calloc(1, sizeof(*g));
    struct loader l = {0};
    *out = NULL;
    if (g == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    g->store = s;
    if (c)
        g->conf = *c;
    else
        ingest_config_defaults(&g->conf);
    if (g->conf.max_inflight < 1)
        g->conf.max_inflight = 1;
    pthread_rwlock_init(&g->reg, NULL);
    g->reg_gen = 1; /* identity_gen 0 means "never stored" */
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->tenants = hmap_new(4);
    g->dedup[0] = hmap_new(DEDUP_GEN);
    g->dedup[1] = hmap_new(16);
    if (g->tenants == NULL || g->dedup[0] == NULL || g->dedup[1] == NULL) {
        ingest_close(g);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    l.g = g;
    /* profiles before devices: a device names its profile */
    static const char *const colls[3] = {COLL_PROFILES, COLL_DEVICES, COLL_INGEST};
    for (l.kind = 0; l.kind < 3; l.kind++)
        if (store_doc_each(s, NULL, colls[l.kind], load_one, &l) != 0) {
            ingest_close(g);
            return err_set(e, ERR_IO, "could not read the device registry");
        }
    log_msg(LOG_INFO, "ingest: %ld profile(s), device(s) and setting(s) loaded%s", l.loaded,
            l.failed ? " (some unreadable, see above)" : "");
    *out = g;
    return 0;
}

void ingest_close(struct ingest *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    while (g->inflight > 0) {
        g->waiters++;
        pthread_cond_wait(&g->cv, &g->mu);
        g->waiters--;
    }
    pthread_mutex_unlock(&g->mu);
    flights_free(g->reclaim);
    hmap_free(g->tenants, tenant_free);
    hmap_free(g->dedup[0], NULL);
    hmap_free(g->dedup[1], NULL);
    pthread_rwlock_destroy(&g->reg);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
