/*
 * notify.c - the subscription runtime (see notify.h for the threads and the
 * flow). Locking:
 *   qmu  the change-event ring (listener <-> matcher);
 *   mu   the table, the index, entry status and the endpoint queues;
 *   pmu  serializes persistence (snapshot under mu, then store_doc_*), so
 *        a counter flush can never overwrite a newer PATCH with an older
 *        document. Order: pmu before mu; never hold mu across I/O.
 * A struct sub is only used under mu (matcher) or as a private copy
 * (timeInterval scans); PATCH swaps in a new one under mu.
 *
 * Persisted document ("subscriptions" collection, key = subscription id):
 * the stored form + "@context" (creation context value) + "_status"
 * {timesSent, timesFailed, timesDropped, lastNotification, lastSuccess,
 * lastFailure, ok, createdAt}.
 */
#include "notify/notify.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ld/cache.h"
#include "notify/mqtt.h"
#include "notify/sub.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/time.h"

#define COLL "subscriptions"
#define KEY_SEP '\x1f'
#define BODY_MAX (16u << 20) /* a notification larger than this is dropped */
#define INTERVAL_MAX_ENTITIES 1000
#define STOPPING(n) __atomic_load_n(&(n)->stopping, __ATOMIC_SEQ_CST)

struct entry {
    char *key; /* tenant KEY_SEP id */
    char *tenant;
    struct sub *sub;
    cJSON *doc; /* stored form with "@context", without "_status" */
    char created_at[TM_ISO_LEN];
    long sent, failed, dropped;
    int64_t last_notification, last_success, last_failure;
    int has_ok, ok;
    int64_t last_fire_ms, next_interval_ms;
    int dirty;
    unsigned seen;
};

struct bucket {
    struct entry **v;
    size_t n, cap;
};

struct delivery {
    struct delivery *next;
    char *key;
    char *body;
    size_t len;
    struct curl_slist *headers;
    int64_t notified_ms;
    int qos; /* MQTT */
};

struct endpoint {
    struct notify *nt;
    char *uri;
    int transport;
    struct delivery *head, *tail;
    size_t n;
    pthread_cond_t cond;
    pthread_t thread;
    int started;
    CURL *curl;
    int busy;          /* a delivery is being sent (mu released) */
    int retire;        /* out of the table: exit once the queue is empty */
    int exited;        /* the sender thread has returned (join is instant) */
    struct endpoint *next_retired;
};

struct qev {
    int kind;
    char *tenant, *entity_id;
    cJSON *before, *after;
};

struct notify {
    struct notify_config c;
    struct endpoint *retired; /* senders leaving the table, joined when they have exited */
    int64_t last_created_ms;  /* newest createdAt handed out (mu) */
    /* event ring */
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    struct qev *ring;
    size_t head, count;
    long ev_dropped;
    int n_subs; /* atomic: the listener skips everything when 0 */
    /* table */
    pthread_mutex_t mu, pmu;
    struct hmap *subs;      /* key -> entry */
    struct hmap *index;     /* tenant SEP type | tenant SEP SEP -> bucket */
    struct hmap *endpoints; /* uri -> endpoint */
    struct mqtt_pool *mqtt; /* MQTT broker connections */
    unsigned gen;
    int stopping;
    pthread_t matcher;
    int matcher_started;
    int64_t next_flush_ms, next_tick_ms;
};

static char *make_key(const char *a, const char *b)
{
    char *k;
    if (asprintf(&k, "%s%c%s", a, KEY_SEP, b) < 0)
        return NULL;
    return k;
}

/* --- index -------------------------------------------------------------------- */

static int bucket_add(struct notify *n, const char *key, struct entry *e)
{
    struct bucket *b = hmap_get(n->index, key);
    if (b == NULL) {
        if ((b = calloc(1, sizeof(*b))) == NULL)
            return ERR_NOMEM;
        if (hmap_put(n->index, key, b, NULL) != 0) {
            free(b);
            return ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i] == e)
            return 0;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        struct entry **v = realloc(b->v, cap * sizeof(*v));
        if (v == NULL)
            return ERR_NOMEM;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = e;
    return 0;
}

static void bucket_remove(struct notify *n, const char *key, struct entry *e)
{
    struct bucket *b = hmap_get(n->index, key);
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i] == e) {
            b->v[i] = b->v[--b->n];
            break;
        }
    if (b->n == 0) {
        hmap_del(n->index, key, NULL);
        free(b->v);
        free(b);
    }
}

/* The index keys of an entry: one per selector type; the tenant's "any
 * type" bucket when a selector has no type or there are no selectors. */
static int index_keys(const struct entry *e, char ***keys, size_t *n_keys)
{
    const struct sub *s = e->sub;
    size_t n = 0;
    char **k = calloc(s->n_sels + 1, sizeof(*k));
    int any = s->n_sels == 0;
    if (k == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < s->n_sels; i++) {
        if (s->sels[i].type == NULL) {
            any = 1;
            continue;
        }
        if ((k[n++] = make_key(e->tenant, s->sels[i].type)) == NULL)
            goto oom;
    }
    if (any) {
        char sep[2] = {KEY_SEP, '\0'};
        if ((k[n++] = make_key(e->tenant, sep)) == NULL)
            goto oom;
    }
    *keys = k;
    *n_keys = n;
    return 0;
oom:
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
    return ERR_NOMEM;
}

static void free_keys(char **k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

static int index_entry(struct notify *n, struct entry *e, int add)
{
    char **keys;
    size_t nk;
    int rc = 0;
    if (index_keys(e, &keys, &nk) != 0)
        return ERR_NOMEM;
    for (size_t i = 0; i < nk; i++) {
        if (add)
            rc = rc ? rc : bucket_add(n, keys[i], e);
        else
            bucket_remove(n, keys[i], e);
    }
    free_keys(keys, nk);
    return rc;
}

/* --- entries -------------------------------------------------------------------- */

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    free(e->key);
    free(e->tenant);
    sub_free(e->sub);
    cJSON_Delete(e->doc);
    free(e);
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char ts[TM_ISO_LEN];
    if (ms == 0)
        return;
    tm_format(ms, ts);
    cJSON_AddStringToObject(o, name, ts);
}

static cJSON *status_json(const struct entry *e)
{
    cJSON *st = cJSON_CreateObject();
    if (st == NULL)
        return NULL;
    cJSON_AddNumberToObject(st, "timesSent", (double)e->sent);
    cJSON_AddNumberToObject(st, "timesFailed", (double)e->failed);
    if (e->dropped)
        cJSON_AddNumberToObject(st, "timesDropped", (double)e->dropped);
    add_time(st, "lastNotification", e->last_notification);
    add_time(st, "lastSuccess", e->last_success);
    add_time(st, "lastFailure", e->last_failure);
    if (e->has_ok)
        cJSON_AddBoolToObject(st, "ok", e->ok);
    cJSON_AddStringToObject(st, "createdAt", e->created_at);
    return st;
}

/* doc + _status; caller frees. Under mu. */
static cJSON *entry_full(const struct entry *e)
{
    cJSON *d = cJSON_Duplicate(e->doc, 1), *st = status_json(e);
    if (d == NULL || st == NULL) {
        cJSON_Delete(d);
        cJSON_Delete(st);
        return NULL;
    }
    cJSON_AddItemToObject(d, "_status", st);
    return d;
}

static char *entry_text(const struct entry *e)
{
    cJSON *d = entry_full(e);
    char *t = d ? cJSON_PrintUnformatted(d) : NULL;
    cJSON_Delete(d);
    return t;
}

static void load_status(struct entry *e, const cJSON *st)
{
    const cJSON *v;
    int64_t ms;
#define NUM(name, field)                                                                          \
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(st, name)))                            \
        e->field = (long)v->valuedouble;
#define TS(name, field)                                                                           \
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, name)) &&                          \
        tm_parse(v->valuestring, &ms) == 0)                                                        \
        e->field = ms;
    NUM("timesSent", sent)
    NUM("timesFailed", failed)
    NUM("timesDropped", dropped)
    TS("lastNotification", last_notification)
    TS("lastSuccess", last_success)
    TS("lastFailure", last_failure)
#undef NUM
#undef TS
    if (cJSON_IsBool(v = cJSON_GetObjectItemCaseSensitive(st, "ok"))) {
        e->has_ok = 1;
        e->ok = cJSON_IsTrue(v);
    }
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, "createdAt")) &&
        strlen(v->valuestring) < TM_ISO_LEN)
        strcpy(e->created_at, v->valuestring);
}

/* Insert a compiled entry (takes ownership). Under mu. */
static int insert(struct notify *n, struct entry *e)
{
    if (hmap_put(n->subs, e->key, e, NULL) != 0)
        return ERR_NOMEM;
    if (index_entry(n, e, 1) != 0) {
        index_entry(n, e, 0);
        hmap_del(n->subs, e->key, NULL);
        return ERR_NOMEM;
    }
    __atomic_add_fetch(&n->n_subs, 1, __ATOMIC_RELAXED);
    return 0;
}

static struct entry *entry_new(const char *tenant, const char *id, cJSON *doc, struct sub *s)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->tenant = strdup(tenant);
    e->key = make_key(tenant, id);
    if (e->tenant == NULL || e->key == NULL) {
        free(e->tenant);
        free(e->key);
        free(e);
        return NULL;
    }
    e->doc = doc;
    e->sub = s;
    return e;
}

/* --- loading ---------------------------------------------------------------------- */

static int load_one(void *ud, const char *tenant, const char *id, const char *json)
{
    struct notify *n = ud;
    struct err e = {0};
    cJSON *doc = cJSON_Parse(json), *st;
    struct ld_ctx *ctx = NULL;
    struct sub *s = NULL;
    struct entry *ent;

    if (doc == NULL) {
        log_msg(LOG_WARN, "subscriptions: %s is not valid JSON, skipped", id);
        return 0;
    }
    st = cJSON_DetachItemFromObjectCaseSensitive(doc, "_status");
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(doc, "@context");
    if (cv && n->c.contexts && ld_cache_resolve(n->c.contexts, cv, &ctx, &e) != 0) {
        log_msg(LOG_WARN, "subscriptions: %s: @context unavailable (%s), using the core context",
                id, e.detail);
        ctx = NULL;
        err_clear(&e);
    }
    if (sub_compile(doc, ctx, &s, &e) != 0) {
        log_msg(LOG_WARN, "subscriptions: %s no longer valid (%s), skipped", id, e.detail);
        goto out;
    }
    if ((ent = entry_new(tenant, id, doc, s)) == NULL)
        goto out;
    doc = NULL;
    s = NULL;
    load_status(ent, st);
    if (insert(n, ent) != 0)
        entry_free(ent);
out:
    ld_ctx_release(ctx);
    sub_free(s);
    cJSON_Delete(doc);
    cJSON_Delete(st);
    return 0;
}

/* --- delivery ------------------------------------------------------------------ */

static void delivery_free(struct delivery *d)
{
    if (d == NULL)
        return;
    free(d->key);
    free(d->body);
    curl_slist_free_all(d->headers);
    free(d);
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct notify *n = ud;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return STOPPING(n) ? 1 : 0;
}

/* One attempt. 0 on a 2xx answer; else fills reason. */
static int http_post(struct endpoint *ep, const struct delivery *d, char *reason, size_t cap)
{
    long status = 0;
    CURLcode rc;
    if (ep->curl == NULL && (ep->curl = curl_easy_init()) == NULL) {
        snprintf(reason, cap, "libcurl init failed");
        return -1;
    }
    CURL *c = ep->curl;
    curl_easy_setopt(c, CURLOPT_URL, ep->uri);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)d->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ep->nt->c.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ep->nt->c.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, ep->nt);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(reason, cap, "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        snprintf(reason, cap, "HTTP status %ld", status);
        return -1;
    }
    return 0;
}

/* Wait ms on the endpoint's condition (mu held); 1 if stopping. */
static int backoff_wait(struct endpoint *ep, int64_t ms)
{
    struct notify *n = ep->nt;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!STOPPING(n))
        if (pthread_cond_timedwait(&ep->cond, &n->mu, &ts) != 0)
            break;
    return STOPPING(n);
}

static void record(struct notify *n, const char *key, int ok, int64_t notified_ms,
                   const char *reason)
{
    struct entry *e = hmap_get(n->subs, key);
    int64_t now = tm_now_ms();
    if (e == NULL)
        return;
    e->sent++;
    e->last_notification = notified_ms;
    e->has_ok = 1;
    e->ok = ok;
    if (ok)
        e->last_success = now;
    else {
        e->failed++;
        e->last_failure = now;
        log_msg(LOG_DEBUG, "notify: %s: %s", strchr(key, KEY_SEP) + 1, reason);
    }
    e->dirty = 1;
}

static void *sender_main(void *arg)
{
    struct endpoint *ep = arg;
    struct notify *n = ep->nt;
    char reason[160] = "";

    pthread_mutex_lock(&n->mu);
    while (!STOPPING(n)) {
        struct delivery *d = ep->head;
        int ok = 0;
        if (d == NULL) {
            if (ep->retire)
                break;
            pthread_cond_wait(&ep->cond, &n->mu);
            continue;
        }
        if ((ep->head = d->next) == NULL)
            ep->tail = NULL;
        ep->n--;
        ep->busy = 1;
        for (int attempt = 0; attempt < n->c.max_attempts && !ok; attempt++) {
            if (attempt > 0 && backoff_wait(ep, (int64_t)n->c.backoff_ms << (attempt - 1)))
                break;
            pthread_mutex_unlock(&n->mu);
            if (ep->transport == SUB_MQTT)
                ok = mqtt_pool_publish(n->mqtt, ep->uri, d->body, d->len, d->qos, reason,
                                       sizeof(reason)) == 0;
            else
                ok = http_post(ep, d, reason, sizeof(reason)) == 0;
            pthread_mutex_lock(&n->mu);
        }
        if (!STOPPING(n) || ok)
            record(n, d->key, ok, d->notified_ms, reason);
        delivery_free(d);
        ep->busy = 0;
    }
    ep->exited = 1;
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static void endpoint_free(struct endpoint *ep)
{
    while (ep->head) {
        struct delivery *d = ep->head;
        ep->head = d->next;
        delivery_free(d);
    }
    if (ep->curl)
        curl_easy_cleanup(ep->curl);
    pthread_cond_destroy(&ep->cond);
    free(ep->uri);
    free(ep);
}

/* The table is full: free the slots of idle endpoints no subscription uses
 * any more (subscriptions come and go; the table must not fill up for
 * good). Their senders exit on their own; exited ones are joined here.
 * mu held. */
static void reclaim_endpoints(struct notify *n)
{
    struct endpoint **pp = &n->retired;
    size_t pos = 0;
    void *val;
    const char *key;

    while (*pp) { /* join and free the senders that have returned */
        struct endpoint *ep = *pp;
        if (!ep->exited) {
            pp = &ep->next_retired;
            continue;
        }
        *pp = ep->next_retired;
        pthread_join(ep->thread, NULL);
        endpoint_free(ep);
    }
    while (hmap_next(n->endpoints, &pos, &key, &val)) {
        struct endpoint *ep = val;
        size_t spos = 0;
        void *sval;
        int used = 0;
        if (ep->head || ep->busy)
            continue;
        while (!used && hmap_next(n->subs, &spos, NULL, &sval))
            used = strcmp(((struct entry *)sval)->sub->uri, ep->uri) == 0;
        if (used)
            continue;
        hmap_del(n->endpoints, ep->uri, NULL);
        pos = 0; /* the table changed: scan again from the start */
        if (!ep->started) {
            endpoint_free(ep);
            continue;
        }
        ep->retire = 1;
        pthread_cond_signal(&ep->cond);
        ep->next_retired = n->retired;
        n->retired = ep;
    }
}

/* Queue a delivery on its endpoint (mu held; takes d). */
static void enqueue(struct notify *n, struct entry *e, struct delivery *d)
{
    struct endpoint *ep = hmap_get(n->endpoints, e->sub->uri);
    int64_t now = tm_now_ms();

    if (ep == NULL) {
        if (hmap_count(n->endpoints) >= (size_t)n->c.max_endpoints)
            reclaim_endpoints(n);
        if (hmap_count(n->endpoints) >= (size_t)n->c.max_endpoints ||
            (ep = calloc(1, sizeof(*ep))) == NULL)
            goto drop;
        ep->nt = n;
        ep->transport = e->sub->transport;
        pthread_cond_init(&ep->cond, NULL);
        if ((ep->uri = strdup(e->sub->uri)) == NULL ||
            hmap_put(n->endpoints, ep->uri, ep, NULL) != 0) {
            pthread_cond_destroy(&ep->cond);
            free(ep->uri);
            free(ep);
            goto drop;
        }
    }
    if (!ep->started) {
        if (pthread_create(&ep->thread, NULL, sender_main, ep) != 0)
            goto drop;
        ep->started = 1;
    }
    if (ep->n >= n->c.endpoint_queue_cap)
        goto drop;
    if (ep->tail)
        ep->tail->next = d;
    else
        ep->head = d;
    ep->tail = d;
    ep->n++;
    pthread_cond_signal(&ep->cond);
    return;
drop:
    e->dropped++;
    e->failed++;
    e->last_failure = now;
    e->has_ok = 1;
    e->ok = 0;
    e->dirty = 1;
    delivery_free(d);
}

/* The MQTT message (GS CIM 009 clause 7.2): {"metadata": {header: value},
 * "body": notification}, metadata from the HTTP header lines (takes
 * body; NULL when out of memory). */
static cJSON *mqtt_message(cJSON *body, const struct curl_slist *h)
{
    cJSON *msg = cJSON_CreateObject(), *md = cJSON_CreateObject();
    if (msg == NULL || md == NULL)
        goto fail;
    for (; h; h = h->next) {
        const char *colon = strchr(h->data, ':');
        char *name;
        if (colon == NULL || colon == h->data || colon[1] == '\0')
            continue; /* "Expect:" */
        if ((name = strndup(h->data, (size_t)(colon - h->data))) == NULL)
            goto fail;
        colon++;
        while (*colon == ' ')
            colon++;
        cJSON_DeleteItemFromObjectCaseSensitive(md, name);
        if (cJSON_AddStringToObject(md, name, colon) == NULL) {
            free(name);
            goto fail;
        }
        free(name);
    }
    cJSON_AddItemToObject(msg, "metadata", md);
    md = NULL;
    cJSON_AddItemToObject(msg, "body", body);
    return msg;
fail:
    cJSON_Delete(msg);
    cJSON_Delete(md);
    cJSON_Delete(body);
    return NULL;
}

/* Build and queue the notification for data (takes data). mu held. */
static void notify_entry(struct notify *n, struct entry *e, cJSON *data, int64_t now)
{
    char ts[TM_ISO_LEN];
    const cJSON *ctx_value = cJSON_GetObjectItemCaseSensitive(e->doc, "@context");
    struct sub *s = e->sub;
    struct delivery *d = NULL;
    cJSON *body;

    tm_format(now, ts);
    if ((body = sub_notification(s, ctx_value, data, ts)) == NULL)
        goto fail;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        goto fail;
    d->key = strdup(e->key);
    d->notified_ms = now;
    d->qos = s->mqtt_qos;
    {
        struct curl_slist *h = NULL, *t;
        char line[1400];
        h = curl_slist_append(h, s->accept_ld ? "Content-Type: application/ld+json"
                                              : "Content-Type: application/json");
        if (h && !s->accept_ld) {
            const char *url = LD_CORE_URL;
            if (cJSON_IsString(ctx_value) && strlen(ctx_value->valuestring) < 1024)
                url = ctx_value->valuestring;
            snprintf(line, sizeof(line),
                     "Link: <%s>; rel=\"http://www.w3.org/ns/json-ld#context\"; "
                     "type=\"application/ld+json\"",
                     url);
            h = (t = curl_slist_append(h, line)) ? t : (curl_slist_free_all(h), NULL);
        }
        if (h && e->tenant[0] && strlen(e->tenant) < 256) {
            snprintf(line, sizeof(line), "NGSILD-Tenant: %s", e->tenant);
            h = (t = curl_slist_append(h, line)) ? t : (curl_slist_free_all(h), NULL);
        }
        for (size_t i = 0; h && i < s->n_headers; i++)
            h = (t = curl_slist_append(h, s->headers[i])) ? t : (curl_slist_free_all(h), NULL);
        if (h && (t = curl_slist_append(h, "Expect:")))
            h = t;
        if (h == NULL)
            goto fail;
        d->headers = h;
    }
    if (s->transport == SUB_MQTT) {
        cJSON *msg = mqtt_message(body, d->headers);
        body = msg;
        if (body == NULL)
            goto fail;
    }
    d->body = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    body = NULL;
    if (d->body == NULL || d->key == NULL || (d->len = strlen(d->body)) > BODY_MAX)
        goto fail;
    enqueue(n, e, d);
    return;
fail:
    cJSON_Delete(body);
    delivery_free(d);
    e->dropped++;
    e->failed++;
    e->last_failure = now;
    e->has_ok = 1;
    e->ok = 0;
    e->dirty = 1;
}

/* --- matching ------------------------------------------------------------------- */

static int usable(const struct entry *e, int64_t now)
{
    const struct sub *s = e->sub;
    return s->active && !(s->expires_ms && now >= s->expires_ms);
}

static void match_bucket(struct notify *n, const char *key, const struct store_event *ev,
                         int64_t now)
{
    struct bucket *b = hmap_get(n->index, key);
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = b->v[i];
        struct sub *s = e->sub;
        struct err err = {0};
        cJSON *item = NULL, *data;
        char ts[TM_ISO_LEN];
        if (e->seen == n->gen)
            continue;
        e->seen = n->gen;
        if (s->interval_ms || !usable(e, now) || sub_match(s, ev) == 0)
            continue;
        if (s->throttling_ms && e->last_fire_ms && now - e->last_fire_ms < s->throttling_ms)
            continue;
        e->last_fire_ms = now;
        tm_format(now, ts);
        if (sub_render_entity(s, ev, ts, &item, &err) != 0 || (data = cJSON_CreateArray()) == NULL) {
            cJSON_Delete(item);
            e->failed++;
            e->dropped++;
            e->last_failure = now;
            e->dirty = 1;
            continue;
        }
        cJSON_AddItemToArray(data, item);
        notify_entry(n, e, data, now);
    }
}

static void process(struct notify *n, const struct qev *q)
{
    struct store_event ev = {.kind = q->kind, .tenant = q->tenant, .entity_id = q->entity_id,
                             .before = q->before, .after = q->after};
    const cJSON *doc = q->kind == STORE_EV_DELETED ? q->before : q->after, *t;
    char sep[2] = {KEY_SEP, '\0'};
    int64_t now = tm_now_ms();
    char *key;

    if (doc == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    n->gen++;
    cJSON_ArrayForEach(t, ent_doc_types(doc))
    {
        if (!cJSON_IsString(t) || (key = make_key(q->tenant, t->valuestring)) == NULL)
            continue;
        match_bucket(n, key, &ev, now);
        free(key);
    }
    if ((key = make_key(q->tenant, sep)) != NULL) {
        match_bucket(n, key, &ev, now);
        free(key);
    }
    pthread_mutex_unlock(&n->mu);
}

/* --- periodic work ----------------------------------------------------------------- */

struct scan {
    struct sub *sub;
    cJSON *data;
    int n;
};

static int scan_each(void *ud, const cJSON *doc)
{
    struct scan *sc = ud;
    struct store_event ev = {.kind = STORE_EV_CREATED, .after = doc};
    struct err e = {0};
    cJSON *item;
    if (!sub_selects(sc->sub, doc))
        return 0;
    if (sub_render_entity(sc->sub, &ev, "", &item, &e) == 0) {
        cJSON_AddItemToArray(sc->data, item);
        sc->n++;
    }
    return sc->n >= INTERVAL_MAX_ENTITIES;
}

/* timeInterval subscriptions: every interval, the current matching
 * entities (up to INTERVAL_MAX_ENTITIES) in one notification. */
static void run_intervals(struct notify *n, int64_t now)
{
    size_t pos = 0;
    void *val;
    for (;;) {
        struct sub *copy = NULL;
        char *tenant = NULL, *key = NULL;
        struct err e = {0};
        struct entry *found = NULL;

        pthread_mutex_lock(&n->mu);
        while (hmap_next(n->subs, &pos, NULL, &val)) {
            struct entry *x = val;
            if (x->sub->interval_ms && usable(x, now) && now >= x->next_interval_ms) {
                found = x;
                break;
            }
        }
        if (found) {
            found->next_interval_ms = now + found->sub->interval_ms;
            tenant = strdup(found->tenant);
            key = strdup(found->key);
            if (sub_compile(found->doc, found->sub->ctx, &copy, &e) != 0)
                copy = NULL;
        }
        pthread_mutex_unlock(&n->mu);
        if (found == NULL)
            return;
        if (copy && tenant && key) {
            struct scan sc = {.sub = copy, .data = cJSON_CreateArray()};
            if (sc.data && store_scan(n->c.store, tenant, scan_each, &sc, &e) == 0 && sc.n > 0) {
                pthread_mutex_lock(&n->mu);
                struct entry *cur = hmap_get(n->subs, key);
                if (cur) {
                    notify_entry(n, cur, sc.data, tm_now_ms());
                    sc.data = NULL;
                }
                pthread_mutex_unlock(&n->mu);
            }
            cJSON_Delete(sc.data);
        }
        sub_free(copy);
        free(tenant);
        free(key);
    }
}

/* Persist dirty entries' counters: snapshot them under mu, write without. */
static void flush(struct notify *n)
{
    struct pending {
        char *text, *tenant, *id;
    } *p = NULL;
    size_t n_p = 0, pos = 0;
    void *val;

    pthread_mutex_lock(&n->pmu);
    pthread_mutex_lock(&n->mu);
    if ((p = calloc(hmap_count(n->subs) + 1, sizeof(*p))) != NULL)
        while (hmap_next(n->subs, &pos, NULL, &val)) {
            struct entry *x = val;
            if (!x->dirty)
                continue;
            x->dirty = 0;
            p[n_p].text = entry_text(x);
            p[n_p].tenant = strdup(x->tenant);
            p[n_p].id = strdup(x->sub->id);
            n_p++;
        }
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < n_p; i++) {
        if (!p[i].text || !p[i].tenant || !p[i].id ||
            store_doc_put(n->c.store, p[i].tenant, COLL, p[i].id, p[i].text, 0) != 0)
            log_msg(LOG_WARN, "subscriptions: could not persist the status of %s",
                    p[i].id ? p[i].id : "a subscription");
        free(p[i].text);
        free(p[i].tenant);
        free(p[i].id);
    }
    free(p);
    pthread_mutex_unlock(&n->pmu);
}

static void *matcher_main(void *arg)
{
    struct notify *n = arg;
    enum { BATCH = 256 };
    struct qev batch[BATCH];
    long reported = 0;

    for (;;) {
        size_t got = 0;
        int stop;
        pthread_mutex_lock(&n->qmu);
        if (n->count == 0 && !STOPPING(n)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&n->qcond, &n->qmu, &ts);
        }
        while (n->count > 0 && got < BATCH) {
            batch[got++] = n->ring[n->head];
            n->head = (n->head + 1) % n->c.queue_cap;
            n->count--;
        }
        stop = STOPPING(n) && n->count == 0;
        long dropped = n->ev_dropped;
        pthread_mutex_unlock(&n->qmu);

        for (size_t i = 0; i < got; i++) {
            process(n, &batch[i]);
            free(batch[i].tenant);
            free(batch[i].entity_id);
            cJSON_Delete(batch[i].before);
            cJSON_Delete(batch[i].after);
        }
        if (dropped != reported) {
            log_msg(LOG_WARN, "subscriptions: %ld change events dropped (queue full)",
                    dropped - reported);
            reported = dropped;
        }
        if (stop)
            break;
        int64_t now = tm_now_ms();
        if (now >= n->next_tick_ms) {
            run_intervals(n, now);
            n->next_tick_ms = now + 1000;
        }
        if (now >= n->next_flush_ms) {
            flush(n);
            n->next_flush_ms = now + n->c.flush_ms;
        }
    }
    return NULL;
}

/* --- listener ------------------------------------------------------------------------ */

void notify_store_listener(void *ud, struct store_event *evs, size_t n_evs)
{
    struct notify *n = ud;
    if (__atomic_load_n(&n->n_subs, __ATOMIC_RELAXED) == 0)
        return;
    for (size_t i = 0; i < n_evs; i++) {
        struct qev q = {.kind = evs[i].kind};
        pthread_mutex_lock(&n->qmu);
        int full = n->count >= n->c.queue_cap || STOPPING(n);
        if (full)
            n->ev_dropped++;
        pthread_mutex_unlock(&n->qmu);
        if (full)
            continue;
        q.tenant = strdup(evs[i].tenant ? evs[i].tenant : "");
        q.entity_id = strdup(evs[i].entity_id ? evs[i].entity_id : "");
        /* take the store's documents (notify is the last listener), copy
         * the submitter's */
        q.before = evs[i].before_owned ? (cJSON *)evs[i].before
                   : evs[i].before     ? cJSON_Duplicate(evs[i].before, 1)
                                       : NULL;
        q.after = evs[i].after_owned ? (cJSON *)evs[i].after
                  : evs[i].after     ? cJSON_Duplicate(evs[i].after, 1)
                                     : NULL;
        if (evs[i].before_owned)
            evs[i].before = NULL;
        if (evs[i].after_owned)
            evs[i].after = NULL;
        pthread_mutex_lock(&n->qmu);
        if (!q.tenant || !q.entity_id || (evs[i].before && !q.before) ||
            (evs[i].after && !q.after) || n->count >= n->c.queue_cap) {
            n->ev_dropped++;
            pthread_mutex_unlock(&n->qmu);
            free(q.tenant);
            free(q.entity_id);
            cJSON_Delete(q.before);
            cJSON_Delete(q.after);
            continue;
        }
        n->ring[(n->head + n->count) % n->c.queue_cap] = q;
        n->count++;
        pthread_cond_signal(&n->qcond);
        pthread_mutex_unlock(&n->qmu);
    }
}

long notify_events_dropped(struct notify *n)
{
    long v;
    pthread_mutex_lock(&n->qmu);
    v = n->ev_dropped;
    pthread_mutex_unlock(&n->qmu);
    return v;
}

/* --- life cycle ------------------------------------------------------------------------ */

int notify_open(const struct notify_config *c, struct notify **out, struct err *e)
{
    struct notify *n = calloc(1, sizeof(*n));
    *out = NULL;
    if (n == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    n->c = *c;
    if (!n->c.queue_cap)
        n->c.queue_cap = 65536;
    if (!n->c.endpoint_queue_cap)
        n->c.endpoint_queue_cap = 1000;
    if (n->c.timeout_ms <= 0)
        n->c.timeout_ms = 5000;
    if (n->c.max_attempts <= 0)
        n->c.max_attempts = 3;
    if (n->c.backoff_ms <= 0)
        n->c.backoff_ms = 200;
    if (n->c.flush_ms <= 0)
        n->c.flush_ms = 2000;
    if (n->c.max_endpoints <= 0)
        n->c.max_endpoints = 256;
    pthread_mutex_init(&n->qmu, NULL);
    pthread_cond_init(&n->qcond, NULL);
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->pmu, NULL);
    n->ring = calloc(n->c.queue_cap, sizeof(*n->ring));
    n->subs = hmap_new(64);
    n->index = hmap_new(64);
    n->endpoints = hmap_new(16);
    n->mqtt = mqtt_pool_new(n->c.max_endpoints, n->c.timeout_ms);
    if (n->ring == NULL || n->subs == NULL || n->index == NULL || n->endpoints == NULL ||
        n->mqtt == NULL) {
        notify_free(n);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (n->c.store)
        store_doc_each(n->c.store, NULL, COLL, load_one, n);
    *out = n;
    return 0;
}

int notify_start(struct notify *n, struct err *e)
{
    n->next_flush_ms = tm_now_ms() + n->c.flush_ms;
    if (pthread_create(&n->matcher, NULL, matcher_main, n) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the subscription matcher");
    n->matcher_started = 1;
    return 0;
}

static void free_bucket(void *v)
{
    struct bucket *b = v;
    free(b->v);
    free(b);
}

static void free_entry(void *v)
{
    entry_free(v);
}

void notify_stop(struct notify *n)
{
    size_t pos = 0;
    void *val;
    if (n == NULL || STOPPING(n))
        return;
    pthread_mutex_lock(&n->qmu);
    __atomic_store_n(&n->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&n->qcond);
    pthread_mutex_unlock(&n->qmu);
    if (n->matcher_started)
        pthread_join(n->matcher, NULL);
    n->matcher_started = 0;
    pthread_mutex_lock(&n->mu);
    while (hmap_next(n->endpoints, &pos, NULL, &val))
        pthread_cond_broadcast(&((struct endpoint *)val)->cond);
    pthread_mutex_unlock(&n->mu);
    mqtt_pool_stop(n->mqtt); /* wakes senders waiting on a broker */
    pos = 0;
    while (hmap_next(n->endpoints, &pos, NULL, &val)) {
        struct endpoint *ep = val;
        if (ep->started)
            pthread_join(ep->thread, NULL);
        ep->started = 0;
    }
    for (struct endpoint *ep = n->retired; ep; ep = ep->next_retired) {
        if (ep->started)
            pthread_join(ep->thread, NULL);
        ep->started = 0;
        ep->exited = 0;
    }
    if (n->c.store)
        flush(n);
}

void notify_free(struct notify *n)
{
    size_t pos = 0;
    void *val;
    if (n == NULL)
        return;
    if (n->subs && n->index && n->endpoints && n->ring)
        notify_stop(n);
    while (n->endpoints && hmap_next(n->endpoints, &pos, NULL, &val))
        endpoint_free(val);
    while (n->retired) { /* joined by notify_stop */
        struct endpoint *ep = n->retired;
        n->retired = ep->next_retired;
        endpoint_free(ep);
    }
    hmap_free(n->endpoints, NULL);
    mqtt_pool_free(n->mqtt);
    hmap_free(n->index, free_bucket);
    hmap_free(n->subs, free_entry);
    for (size_t i = 0; n->ring && i < n->count; i++) {
        struct qev *q = &n->ring[(n->head + i) % n->c.queue_cap];
        free(q->tenant);
        free(q->entity_id);
        cJSON_Delete(q->before);
        cJSON_Delete(q->after);
    }
    free(n->ring);
    pthread_mutex_destroy(&n->qmu);
    pthread_cond_destroy(&n->qcond);
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->pmu);
    free(n);
}

/* --- management -------------------------------------------------------------------------- */

int notify_sub_create(struct notify *n, const char *tenant, const cJSON *doc,
                      const struct ld_ctx *ctx, const cJSON *ctx_value, char **id_out,
                      struct err *e)
{
    cJSON *d = cJSON_Duplicate(doc, 1);
    struct sub *s = NULL;
    struct entry *ent = NULL;
    char *text = NULL;
    int rc;

    *id_out = NULL;
    if (d == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (!cJSON_HasObjectItem(d, "id")) {
        char id[80];
        sub_random_id("urn:ngsi-ld:Subscription:", id, sizeof(id));
        cJSON_AddStringToObject(d, "id", id);
    }
    if ((rc = sub_compile(d, ctx, &s, e)) != 0)
        goto out;
    cJSON_DeleteItemFromObjectCaseSensitive(d, "@context");
    cJSON_AddItemToObject(d, "@context", ctx_value ? cJSON_Duplicate(ctx_value, 1)
                                                   : cJSON_CreateString(LD_CORE_URL));
    if ((ent = entry_new(tenant, s->id, d, s)) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    d = NULL;
    s = NULL;
    pthread_mutex_lock(&n->pmu);
    pthread_mutex_lock(&n->mu);
    /* createdAt orders the list: strictly increasing, so two subscriptions
     * created in the same millisecond keep their creation order */
    int64_t created = tm_now_ms();
    if (created <= n->last_created_ms)
        created = n->last_created_ms + 1;
    n->last_created_ms = created;
    tm_format(created, ent->created_at);
    if (hmap_get(n->subs, ent->key)) {
        pthread_mutex_unlock(&n->mu);
        pthread_mutex_unlock(&n->pmu);
        rc = err_set(e, ERR_EXISTS, "subscription %.200s already exists", ent->sub->id);
        goto out;
    }
    text = entry_text(ent);
    pthread_mutex_unlock(&n->mu);
    if (text == NULL)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if ((rc = store_doc_put(n->c.store, tenant, COLL, ent->sub->id, text, 1)) != 0)
        rc = rc == ERR_EXISTS
                 ? err_set(e, ERR_EXISTS, "subscription %.200s already exists", ent->sub->id)
                 : err_set(e, ERR_IO, "could not store the subscription");
    if (rc == 0) {
        pthread_mutex_lock(&n->mu);
        if ((*id_out = strdup(ent->sub->id)) == NULL || insert(n, ent) != 0) {
            pthread_mutex_unlock(&n->mu);
            store_doc_delete(n->c.store, tenant, COLL, ent->sub->id);
            free(*id_out);
            *id_out = NULL;
            rc = err_set(e, ERR_NOMEM, "out of memory");
        } else {
            ent = NULL;
            pthread_mutex_unlock(&n->mu);
        }
    }
    pthread_mutex_unlock(&n->pmu);
out:
    free(text);
    entry_free(ent);
    sub_free(s);
    cJSON_Delete(d);
    return rc;
}

int notify_sub_get(struct notify *n, const char *tenant, const char *id, cJSON **out,
                   struct err *e)
{
    char *key = make_key(tenant, id);
    struct entry *ent;
    *out = NULL;
    if (key == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&n->mu);
    if ((ent = hmap_get(n->subs, key)) != NULL)
        *out = entry_full(ent);
    pthread_mutex_unlock(&n->mu);
    free(key);
    if (ent == NULL)
        return err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
    return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int by_creation(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    int c = strcmp(x->created_at, y->created_at);
    return c ? c : strcmp(x->key, y->key);
}

int notify_sub_list(struct notify *n, const char *tenant, long offset, long limit, cJSON **out,
                    long *count, struct err *e)
{
    struct entry **all = NULL;
    size_t n_all = 0, pos = 0;
    void *val;
    cJSON *arr = cJSON_CreateArray();
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (arr == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&n->mu);
    if ((all = calloc(hmap_count(n->subs) + 1, sizeof(*all))) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    while (hmap_next(n->subs, &pos, NULL, &val))
        if (!strcmp(((struct entry *)val)->tenant, tenant))
            all[n_all++] = val;
    qsort(all, n_all, sizeof(*all), by_creation);
    for (size_t i = (size_t)offset; offset >= 0 && i < n_all && (long)(i - (size_t)offset) < limit;
         i++) {
        cJSON *d = entry_full(all[i]);
        if (d == NULL) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        cJSON_AddItemToArray(arr, d);
    }
    *count = (long)n_all;
out:
    pthread_mutex_unlock(&n->mu);
    free(all);
    if (rc) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int notify_sub_patch(struct notify *n, const char *tenant, const char *id, const cJSON *frag,
                     struct err *e)
{
    char *key = make_key(tenant, id), *text = NULL;
    struct entry *ent;
    struct sub *s = NULL;
    const struct ld_ctx *ctx = NULL;
    cJSON *d = NULL;
    int rc = 0;

    if (key == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&n->pmu);
    pthread_mutex_lock(&n->mu);
    if ((ent = hmap_get(n->subs, key)) != NULL) {
        d = cJSON_Duplicate(ent->doc, 1);
        ctx = ent->sub->ctx;
        ld_ctx_retain(ctx);
    }
    pthread_mutex_unlock(&n->mu);
    if (ent == NULL) {
        rc = err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
        goto out;
    }
    if (d == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = sub_merge(d, frag, e)) != 0 || (rc = sub_compile(d, ctx, &s, e)) != 0)
        goto out;
    pthread_mutex_lock(&n->mu);
    if ((ent = hmap_get(n->subs, key)) == NULL) {
        pthread_mutex_unlock(&n->mu);
        rc = err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
        goto out;
    }
    index_entry(n, ent, 0);
    sub_free(ent->sub);
    cJSON_Delete(ent->doc);
    ent->sub = s;
    ent->doc = d;
    s = NULL;
    d = NULL;
    ent->next_interval_ms = 0;
    if (index_entry(n, ent, 1) != 0)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    text = entry_text(ent);
    pthread_mutex_unlock(&n->mu);
    if (rc == 0 && (text == NULL || store_doc_put(n->c.store, tenant, COLL, id, text, 0) != 0))
        rc = err_set(e, ERR_IO, "could not store the subscription");
out:
    pthread_mutex_unlock(&n->pmu);
    ld_ctx_release(ctx);
    sub_free(s);
    cJSON_Delete(d);
    free(text);
    free(key);
    return rc;
}

int notify_sub_delete(struct notify *n, const char *tenant, const char *id, struct err *e)
{
    char *key = make_key(tenant, id);
    void *old = NULL;
    int rc = 0;
    if (key == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&n->pmu);
    pthread_mutex_lock(&n->mu);
    if (hmap_del(n->subs, key, &old)) {
        index_entry(n, old, 0);
        entry_free(old);
        __atomic_sub_fetch(&n->n_subs, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&n->mu);
    if (old == NULL)
        rc = err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
    else if (store_doc_delete(n->c.store, tenant, COLL, id) != 0)
        rc = err_set(e, ERR_IO, "could not delete the stored subscription");
    pthread_mutex_unlock(&n->pmu);
    free(key);
    return rc;
}
