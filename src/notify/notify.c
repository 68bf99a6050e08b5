/*
 * notify.c - the subscription runtime (see notify.h for the threads and the
 * flow). Locking:
 *   qmu  the change-event ring (listener <-> matcher);
 *   mu   the table, the index, entry status, streams and the endpoint
 *        queues; held only for bookkeeping: matching, rendering, printing
 *        and I/O run outside it;
 *   pmu  serializes persistence (snapshot under mu, then store_doc_*), so
 *        a counter flush can never overwrite a newer PATCH with an older
 *        document. Order: pmu before mu; never hold mu across I/O.
 *
 * Lifetimes. A subscription's compiled form lives in a struct ver
 * (version): immutable, reference counted (atomic), replaced as a whole by
 * PATCH, so the matcher and the interval thread can use it without mu. An
 * entry (one per subscription) is reference counted under mu: the table
 * holds one reference, and so does every matching candidate and every
 * queued delivery; DELETE marks it deleted and drops the table's. A
 * delivery is sent only if, when its turn comes, its entry is not deleted,
 * still usable (active, not expired) and still points at the same
 * endpoint: a DELETE, a pause or a re-pointing PATCH voids what is queued
 * (the attempt already in flight finishes).
 *
 * Matching one change event: under mu, collect the candidates (index by
 * tenant + type and the tenant's "any type" bucket; active, not throttled)
 * with a reference each; without mu, sub_match and render; under mu again,
 * re-check (deleted, paused, throttled meanwhile), then write the
 * notification to the subscription's open streams and queue it on its
 * endpoint.
 *
 * Counters (the status members, GS CIM 009 5.2.14): timesSent counts
 * notifications attempted (once each, whatever the retries), timesFailed
 * those whose every attempt failed, lastNotification is when the last
 * attempt started, lastSuccess / lastFailure when its outcome was known,
 * status ("ok"/"failed") the outcome of the last attempt. timesDropped
 * (pilotlight's) counts notifications never attempted: endpoint queue full,
 * endpoint table full, rendering failed. A subscription whose endpoint is
 * only its stream (SUB_SSE) counts a notification as sent when it was
 * written to at least one open stream.
 *
 * Persisted document ("subscriptions" collection, key = subscription id):
 * the stored form + "@context" (creation context value) + "_status"
 * {timesSent, timesFailed, timesDropped, lastNotification, lastSuccess,
 * lastFailure, ok, createdAt, modifiedAt}. createdAt is set once (strictly
 * increasing across subscriptions: it orders the list); modifiedAt is
 * createdAt, then the time of the last PATCH (strictly increasing per
 * subscription); the counters do not touch it. A document without
 * modifiedAt (an older build's) takes createdAt.
 */
#include "notify/notify.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "json/json.h"
#include "ld/cache.h"
#include "notify/httpc.h"
#include "notify/mqtt.h"
#include "notify/sub.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/time.h"

#define COLL "subscriptions"
#define KEY_SEP '\x1f'
#define BODY_MAX (16u << 20)     /* a notification larger than this is dropped */
#define RESPONSE_MAX (64u << 10) /* bytes of a receiver's answer read, at most */
#define INTERVAL_MAX_ENTITIES 1000
#define STOPPING(n) __atomic_load_n(&(n)->stopping, __ATOMIC_SEQ_CST)

struct ver {
    int refs; /* atomic */
    struct sub *sub;
    cJSON *ctx_value;           /* the creation "@context" value */
    struct curl_slist *headers; /* of every notification (HTTP; MQTT metadata) */
    char *http_head;            /* the same as CRLF-ended lines, for httpc */
    char *mqtt_meta;            /* MQTT: the printed "metadata" object */
    char *link;                 /* the context URL its Link header names (NULL:
                                 * none, the receiver asked for ld+json) */
    const char *implicit;       /* link when that names an ImplicitlyCreated
                                 * @context made for it, else NULL; see
                                 * drop_implicit */
};

struct stream {
    struct stream *next;
    struct notify_sink sink;
    int64_t last_write_ms;
};

struct entry {
    char *key; /* tenant KEY_SEP id */
    char *tenant;
    struct ver *ver; /* current version */
    cJSON *doc;      /* stored form with "@context", without "_status" */
    int refs;        /* under mu: the table's, candidates', deliveries' */
    int deleted;     /* out of the table */
    char created_at[TM_ISO_LEN];
    char modified_at[TM_ISO_LEN]; /* createdAt, then the last PATCH's time */
    /* changes committed up to this store_committed() number are not its to
     * notify: they came before it was created or last made active again (a
     * paused subscription must not hear of its pause once resumed, however
     * late the matcher gets to those events) */
    uint64_t from_seq;
    long sent, failed, dropped;
    int64_t last_notification, last_success, last_failure;
    int has_ok, ok;
    int64_t last_fire_ms, next_interval_ms;
    int dirty;
    unsigned seen;
    struct stream *streams;
    int n_streams;
};

struct bucket {
    struct entry **v;
    size_t n, cap;
};

struct delivery {
    struct delivery *next;
    struct entry *e; /* a reference */
    struct ver *v;   /* a reference: the headers, the QoS */
    char *body;
    size_t len;
};

struct response {
    struct notify *n;
    size_t got;
    int capped;
};

struct endpoint {
    struct notify *nt;
    char *uri;
    int transport;
    struct delivery *head, *tail;
    size_t n;
    pthread_cond_t cond;
    pthread_t thread; /* MQTT only: HTTP endpoints are driven by their dispatcher */
    int started;
    CURL *curl;    /* https://, or any HTTP when a proxy is configured */
    struct hc *hc; /* plain http:// (httpc.h) */
    int hc_tried;  /* hc_open was asked (NULL hc: libcurl takes the URI) */
    int busy;   /* a delivery is being sent (mu released) */
    int retire; /* out of the table: exit once the queue is empty */
    int exited; /* the sender thread has returned (join is instant) */
    struct endpoint *next_retired; /* also: its dispatcher's list of endpoints to free */
    /* HTTP, owned by the dispatcher (under mu, except the easy handle
     * while it is in the multi handle) */
    struct delivery *cur; /* being sent, or waiting for its retry */
    int attempt;          /* attempts of cur so far */
    int64_t retry_at, started_ms;
    int in_multi; /* a transfer in flight (in the curl multi handle, or httpc's) */
    int in_ready; /* on its dispatcher's ready list */
    struct disp *disp; /* HTTP: the dispatcher that drives it */
    struct endpoint *ready_next;
    struct endpoint *start_next;        /* dispatcher only: hc requests to start */
    struct endpoint *fl_next, *fl_prev; /* dispatcher only: hc requests in flight */
    struct response resp;
    char reason[160];
};

struct qev {
    int kind;
    char *tenant, *entity_id;
    cJSON *before, *after;
    size_t bytes;
    char at[TM_ISO_LEN]; /* the write's time (store_event.at) */
    uint64_t seq;        /* its commit number (store_event.seq) */
};

/* one matching candidate of an event (matcher thread) */
struct cand {
    struct entry *e;
    struct ver *v;
    int state; /* 0 no match, 1 rendered, -1 rendering failed */
    char nid[64];
    char *text;
    size_t len;
};

/* An HTTP dispatcher thread: its own curl multi handle, epoll set and
 * ready list; every HTTP endpoint belongs to one (assigned in turn). */
#define MAX_DISP 4
struct disp {
    struct notify *n;
    pthread_t thread;
    int started;
    CURLM *multi;        /* its endpoints' transfers */
    int epfd, wakefd;    /* curl's sockets and the eventfd that wakes it */
    int64_t curl_due_ms; /* when curl wants its timeout action (-1: never) */
    struct endpoint *ready_head, *ready_tail; /* endpoints with work to start (mu) */
    int wake_pending;                         /* a wakeup is on its way (mu) */
    struct endpoint *dead;   /* hc endpoints out of the table, for it to free (mu) */
    struct endpoint *flight; /* hc requests in flight (its own) */
    int64_t hc_due_ms;       /* the earliest of their deadlines (-1: none; hc_now's clock) */
};

struct notify {
    struct notify_config c;
    struct endpoint *retired; /* senders leaving the table, joined when they have exited */
    int64_t last_created_ms;  /* newest createdAt handed out (mu) */
    /* event ring */
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    struct qev *ring;
    size_t head, count, bytes;
    long ev_dropped;
    int n_subs; /* atomic: the listener skips everything when 0 */
    /* table */
    pthread_mutex_t mu, pmu;
    struct hmap *subs;  /* key -> entry */
    struct hmap *index; /* tenant SEP type | tenant SEP SEP | tenant SEP SEP attr -> bucket */
    size_t
        n_attr_buckets; /* buckets of the last kind: 0 = no change needs its attributes looked up */
    /* the index's keys again, for the writer's question "does anyone want
     * this entity's events?" (notify_store_wants) without taking mu */
    pthread_mutex_t wmu;
    struct hmap *wkeys;
    size_t w_attr_keys;
    struct hmap *endpoints; /* uri -> endpoint */
    struct mqtt_pool *mqtt; /* MQTT broker connections */
    unsigned gen;
    int n_streams;
    int stopping;
    pthread_t matcher, interval;
    int matcher_started, interval_started;
    struct disp disp[MAX_DISP];
    int n_disp;
    int direct_http;    /* plain http:// goes through httpc (no proxy configured) */
    unsigned next_disp; /* the dispatcher of the next new HTTP endpoint (mu) */
    pthread_cond_t icond;                     /* wakes the interval thread at stop */
    int64_t next_flush_ms, next_keepalive_ms;
    struct cand *cands; /* matcher's scratch */
    size_t cands_cap;
};

static char *make_key(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *k = malloc(la + lb + 2);
    if (k == NULL)
        return NULL;
    memcpy(k, a, la);
    k[la] = KEY_SEP;
    memcpy(k + la + 1, b, lb + 1);
    return k;
}

/* tenant SEP SEP attr: the bucket of the untyped subscriptions watching attr. */
static char *attr_key(const char *tenant, const char *attr)
{
    size_t lt = strlen(tenant), la = strlen(attr);
    char *k = malloc(lt + la + 3);
    if (k == NULL)
        return NULL;
    memcpy(k, tenant, lt);
    k[lt] = KEY_SEP;
    k[lt + 1] = KEY_SEP;
    memcpy(k + lt + 2, attr, la + 1);
    return k;
}

/* Collect the untyped subscriptions watching any attribute of doc (mu held). */
static int collect(struct notify *n, const char *key, size_t *n_cands, int64_t now,
                   uint64_t seq);

static void collect_attrs(struct notify *n, const char *tenant, const cJSON *doc, size_t *n_cands,
                          int64_t now, uint64_t seq)
{
    const cJSON *a;
    if (n->n_attr_buckets == 0) /* no untyped subscription watches an attribute */
        return;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "attrs"))
    {
        char *key = attr_key(tenant, a->string);
        if (key != NULL)
            collect(n, key, n_cands, now, seq);
        free(key);
    }
}

/* Is key an attribute bucket's (tenant SEP SEP attr)? */
static int is_attr_key(const char *key)
{
    const char *sep = strchr(key, KEY_SEP);
    return sep != NULL && sep[1] == KEY_SEP && sep[2] != '\0';
}

/* --- versions ----------------------------------------------------------------- */

static struct ver *ver_retain(struct ver *v)
{
    __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
    return v;
}

static void ver_release(struct ver *v)
{
    if (v == NULL || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    sub_free(v->sub);
    cJSON_Delete(v->ctx_value);
    curl_slist_free_all(v->headers);
    free(v->http_head);
    free(v->mqtt_meta);
    free(v->link);
    free(v);
}

static struct curl_slist *add_header(struct curl_slist *h, const char *line)
{
    struct curl_slist *t = curl_slist_append(h, line);
    if (t == NULL)
        curl_slist_free_all(h);
    return t;
}

/* The MQTT "metadata" object (GS CIM 009 clause 7.2) from the HTTP header
 * lines, printed; NULL when out of memory. */
static char *mqtt_metadata(const struct curl_slist *h)
{
    cJSON *md = cJSON_CreateObject();
    char *text = NULL;
    if (md == NULL)
        return NULL;
    for (; h; h = h->next) {
        const char *colon = strchr(h->data, ':');
        char *name;
        if (colon == NULL || colon == h->data || colon[1] == '\0')
            continue; /* "Expect:" */
        if ((name = strndup(h->data, (size_t)(colon - h->data))) == NULL)
            goto out;
        colon++;
        while (*colon == ' ')
            colon++;
        cJSON_DeleteItemFromObjectCaseSensitive(md, name);
        if (cJSON_AddStringToObject(md, name, colon) == NULL) {
            free(name);
            goto out;
        }
        free(name);
    }
    text = json_print(md, NULL);
out:
    cJSON_Delete(md);
    return text;
}

/* The header lines h as httpc sends them (each CRLF-ended; malloc'd, NULL
 * when out of memory), without those the client writes itself or that
 * would break its framing of the request (a receiverInfo may name any
 * header). */
static char *http_head(const struct curl_slist *h)
{
    static const char *const own[] = {
        "Host:", "Content-Length:", "Transfer-Encoding:", "Connection:",       "Expect:",
        "TE:",   "Upgrade:",        "Keep-Alive:",        "Proxy-Connection:", "Trailer:"};
    size_t len = 1;
    char *out, *o;
    for (const struct curl_slist *p = h; p; p = p->next)
        len += strlen(p->data) + 2;
    if ((out = o = malloc(len)) == NULL)
        return NULL;
    for (; h; h = h->next) {
        int skip = 0;
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) && !skip; i++)
            skip = strncasecmp(h->data, own[i], strlen(own[i])) == 0;
        if (skip)
            continue;
        size_t k = strlen(h->data);
        memcpy(o, h->data, k);
        memcpy(o + k, "\r\n", 2);
        o += k + 2;
    }
    *o = '\0';
    return out;
}

/* The context URL a subscription whose @context is cv links (see
 * notify_sub_link, malloc'd; NULL when out of memory); *implicit set when
 * it names an ImplicitlyCreated copy of cv made here. */
static char *context_link(struct ld_cache *contexts, const cJSON *cv, int *implicit)
{
    char *url = NULL;
    struct err e = {0};

    *implicit = 0;
    if (cJSON_IsArray(cv) && cJSON_GetArraySize(cv) == 1 && cJSON_IsString(cv->child))
        cv = cv->child;
    if (cJSON_IsString(cv) && strlen(cv->valuestring) < 1024)
        return strdup(cv->valuestring);
    if ((cJSON_IsArray(cv) || cJSON_IsObject(cv)) && contexts != NULL) {
        if (ld_cache_implicit(contexts, cv, &url, &e) == 0 && strlen(url) < 1024) {
            *implicit = 1;
            return url;
        }
        if (url == NULL)
            log_msg(LOG_WARN, "subscriptions: cannot host an @context for notifications (%s);"
                              " their Link names the core context",
                    e.detail);
        free(url);
    }
    return strdup(LD_CORE_URL);
}

/* An ImplicitlyCreated @context lives as long as a subscription names it
 * (GS CIM 009 5.13.1: the broker made it for that subscription): after a
 * version naming url was replaced or deleted, remove it unless another
 * subscription (of any tenant: contexts are shared) still names it. pmu is
 * held, so no create or patch can pick the same context up meanwhile (they
 * make their versions under pmu); mu is not. */
static void drop_implicit(struct notify *n, const char *url)
{
    size_t pos = 0;
    void *val;
    int used = 0;
    struct err e = {0};

    if (url == NULL || n->c.contexts == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    while (!used && hmap_next(n->subs, &pos, NULL, &val)) {
        const struct ver *v = ((const struct entry *)val)->ver;
        used = v->implicit != NULL && strcmp(v->implicit, url) == 0;
    }
    pthread_mutex_unlock(&n->mu);
    if (!used && ld_cache_delete(n->c.contexts, url, 0, &e) != 0 && e.code != ERR_NOT_FOUND)
        log_msg(LOG_WARN, "subscriptions: cannot remove the @context %s (%s)", url, e.detail);
}

/* A version of a subscription (takes s; doc is borrowed). NULL when out of
 * memory (s freed). */
static struct ver *ver_new(struct notify *n, const char *tenant, const cJSON *doc, struct sub *s)
{
    struct ver *v = calloc(1, sizeof(*v));
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(doc, "@context");
    struct curl_slist *h = NULL;
    char line[1400];

    if (v == NULL) {
        sub_free(s);
        return NULL;
    }
    v->refs = 1;
    v->sub = s;
    if (cv && (v->ctx_value = cJSON_Duplicate(cv, 1)) == NULL)
        goto fail;
    h = add_header(NULL, s->accept_ld ? "Content-Type: application/ld+json"
                                      : "Content-Type: application/json");
    if (h && !s->accept_ld) {
        int implicit;
        char *url = context_link(n->c.contexts, cv, &implicit);
        if (url == NULL) {
            curl_slist_free_all(h);
            goto fail;
        }
        snprintf(line, sizeof(line),
                 "Link: <%s>; rel=\"http://www.w3.org/ns/json-ld#context\"; "
                 "type=\"application/ld+json\"",
                 url);
        v->link = url;
        v->implicit = implicit ? url : NULL;
        h = add_header(h, line);
    }
    if (h && tenant[0] && strlen(tenant) < 256) {
        snprintf(line, sizeof(line), "NGSILD-Tenant: %s", tenant);
        h = add_header(h, line);
    }
    for (size_t i = 0; h && i < s->n_headers; i++)
        h = add_header(h, s->headers[i]);
    if (h)
        h = add_header(h, "Expect:");
    if ((v->headers = h) == NULL)
        goto fail;
    if (s->transport == SUB_HTTP && (v->http_head = http_head(h)) == NULL)
        goto fail;
    if (s->transport == SUB_MQTT && (v->mqtt_meta = mqtt_metadata(h)) == NULL)
        goto fail;
    return v;
fail:
    ver_release(v);
    return NULL;
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
        pthread_mutex_lock(&n->wmu);
        int put = hmap_put(n->wkeys, key, (void *)1, NULL);
        if (put == 0)
            n->w_attr_keys += is_attr_key(key);
        pthread_mutex_unlock(&n->wmu);
        if (put < 0) { /* without its key the writer would never send its events */
            hmap_del(n->index, key, NULL);
            free(b);
            return ERR_NOMEM;
        }
        n->n_attr_buckets += is_attr_key(key);
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
        n->n_attr_buckets -= is_attr_key(key);
        pthread_mutex_lock(&n->wmu);
        if (hmap_del(n->wkeys, key, NULL))
            n->w_attr_keys -= is_attr_key(key);
        pthread_mutex_unlock(&n->wmu);
        free(b->v);
        free(b);
    }
}

/* The index keys of an entry: one per selector type; when a selector has
 * no type (or there are no selectors), one per watched attribute
 * (tenant SEP SEP attr), or the tenant's "any" bucket (tenant SEP SEP) when
 * it watches every attribute. So a change is matched only against the
 * subscriptions of its types and of its attributes, plus the few that
 * watch everything of any type. */
static int index_keys(const struct entry *e, char ***keys, size_t *n_keys)
{
    const struct sub *s = e->ver->sub;
    size_t n = 0;
    char **k = calloc(s->n_sels + s->n_watched + 1, sizeof(*k));
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
    if (any && s->n_watched > 0) {
        for (size_t i = 0; i < s->n_watched; i++)
            if ((k[n++] = attr_key(e->tenant, s->watched[i])) == NULL)
                goto oom;
    } else if (any) {
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

/* --- streams ------------------------------------------------------------------ */

static const char SSE_END[] = "event: end\ndata: {\"reason\":\"subscription deleted\"}\n\n";
static const char SSE_DROPPED[] =
    "event: dropped\ndata: {\"reason\":\"the client did not read fast enough\"}\n\n";
static const char SSE_KEEPALIVE[] = ": keep-alive\n\n";

static void stream_free(struct stream *st)
{
    if (st->sink.release)
        st->sink.release(st->sink.ud);
    free(st);
}

/* Write text to every stream of e (mu held); streams that are gone or full
 * are dropped (a full one gets a final "dropped" event). Returns how many
 * took it. */
static int streams_write(struct notify *n, struct entry *e, const char *text, size_t len,
                         int64_t now)
{
    struct stream **pp = &e->streams;
    int n_ok = 0;
    while (*pp) {
        struct stream *st = *pp;
        int rc = st->sink.write(st->sink.ud, text, len);
        if (rc == 0) {
            st->last_write_ms = now;
            n_ok++;
            pp = &st->next;
            continue;
        }
        if (rc == ERR_TOO_LARGE) {
            log_msg(LOG_WARN, "subscriptions: %s: a stream client fell behind, dropped",
                    e->ver->sub->id);
            st->sink.close(st->sink.ud, SSE_DROPPED, sizeof(SSE_DROPPED) - 1);
        }
        *pp = st->next;
        stream_free(st);
        e->n_streams--;
        n->n_streams--;
    }
    return n_ok;
}

/* End every stream of e with final (mu held). */
static void streams_close(struct notify *n, struct entry *e, const char *final, size_t len)
{
    while (e->streams) {
        struct stream *st = e->streams;
        e->streams = st->next;
        st->sink.close(st->sink.ud, final, len);
        stream_free(st);
        e->n_streams--;
        n->n_streams--;
    }
}

/* --- entries -------------------------------------------------------------------- */

/* Free an entry (no references left, or at teardown). */
static void entry_free(struct notify *n, struct entry *e)
{
    if (e == NULL)
        return;
    streams_close(n, e, NULL, 0);
    free(e->key);
    free(e->tenant);
    ver_release(e->ver);
    cJSON_Delete(e->doc);
    free(e);
}

/* Drop a reference (mu held). */
static void entry_unref(struct notify *n, struct entry *e)
{
    if (--e->refs == 0)
        entry_free(n, e);
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
    cJSON_AddStringToObject(st, "modifiedAt", e->modified_at);
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
#define NUM(name, field)                                                                           \
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(st, name)))                            \
        e->field = (long)v->valuedouble;
#define TS(name, field)                                                                            \
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
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, "modifiedAt")) &&
        strlen(v->valuestring) < TM_ISO_LEN)
        strcpy(e->modified_at, v->valuestring);
    else
        strcpy(e->modified_at, e->created_at);
}

/* A PATCH changed the entry: modifiedAt is now, or a millisecond after the
 * previous one when the clock has not moved past it (under mu). */
static void touch(struct entry *e)
{
    int64_t now = tm_now_ms(), prev;
    if (tm_parse(e->modified_at, &prev) == 0 && now <= prev)
        now = prev + 1;
    tm_format(now, e->modified_at);
}

/* Insert an entry (the table takes the caller's reference). Under mu. */
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

/* A new entry with one reference (takes doc and v; frees them on failure). */
static struct entry *entry_new(const char *tenant, const char *id, cJSON *doc, struct ver *v)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto fail;
    e->tenant = strdup(tenant);
    e->key = make_key(tenant, id);
    if (e->tenant == NULL || e->key == NULL) {
        free(e->tenant);
        free(e->key);
        free(e);
        goto fail;
    }
    e->doc = doc;
    e->ver = v;
    e->refs = 1;
    return e;
fail:
    cJSON_Delete(doc);
    ver_release(v);
    return NULL;
}

static int usable(const struct entry *e, int64_t now)
{
    const struct sub *s = e->ver->sub;
    return !e->deleted && s->active && !(s->expires_ms && now >= s->expires_ms);
}

static int throttled(const struct entry *e, int64_t now)
{
    const struct sub *s = e->ver->sub;
    return s->throttling_ms && e->last_fire_ms && now - e->last_fire_ms < s->throttling_ms;
}

/* --- loading ---------------------------------------------------------------------- */

static int load_one(void *ud, const char *tenant, const char *id, const char *json)
{
    struct notify *n = ud;
    struct err e = {0};
    cJSON *doc = cJSON_Parse(json), *st;
    struct ld_ctx *ctx = NULL;
    struct sub *s = NULL;
    struct ver *v = NULL;
    struct entry *ent = NULL;

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
        cJSON_Delete(doc);
        goto out;
    }
    if ((v = ver_new(n, tenant, doc, s)) == NULL || (ent = entry_new(tenant, id, doc, v)) == NULL) {
        if (v == NULL)
            cJSON_Delete(doc);
        log_msg(LOG_WARN, "subscriptions: out of memory loading %s", id);
        goto out;
    }
    load_status(ent, st);
    if (insert(n, ent) != 0)
        entry_free(n, ent);
out:
    ld_ctx_release(ctx);
    cJSON_Delete(st);
    return 0;
}

/* --- delivery ------------------------------------------------------------------ */

/* Free a delivery (mu held: it drops an entry reference). */
static void delivery_free(struct notify *n, struct delivery *d)
{
    if (d == NULL)
        return;
    if (d->e)
        entry_unref(n, d->e);
    ver_release(d->v);
    free(d->body);
    free(d);
}

/* A receiver's answer is read (for keep-alive) but never kept; past
 * RESPONSE_MAX bytes the transfer is cut. */
static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    struct response *r = ud;
    (void)p;
    r->got += size * nmemb;
    if (r->got > RESPONSE_MAX) {
        r->capped = 1;
        return 0;
    }
    return size * nmemb;
}

/* Prepare ep's easy handle to POST d (one attempt). 0, or -1 with reason. */
static int http_setup(struct endpoint *ep, const struct delivery *d)
{
    if (ep->curl == NULL && (ep->curl = curl_easy_init()) == NULL) {
        snprintf(ep->reason, sizeof(ep->reason), "libcurl init failed");
        return -1;
    }
    CURL *c = ep->curl;
    ep->resp = (struct response){.n = ep->nt};
    curl_easy_setopt(c, CURLOPT_URL, ep->uri);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)d->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, d->v->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ep->nt->c.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ep->nt->c.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &ep->resp);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, ep);
    return 0;
}

/* The outcome of a finished attempt: 0 on a 2xx answer (also when the
 * answer was cut at RESPONSE_MAX), else -1 with ep->reason. */
static int http_outcome(struct endpoint *ep, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(ep->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && ep->resp.capped)) {
        snprintf(ep->reason, sizeof(ep->reason), "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(ep->reason, sizeof(ep->reason), "HTTP status %ld", status);
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

/* The outcome of one notification (mu held). */
static void record(struct entry *e, int ok, int64_t started_ms, const char *reason)
{
    int64_t now = tm_now_ms();
    if (e->deleted)
        return;
    e->sent++;
    e->last_notification = started_ms;
    e->has_ok = 1;
    e->ok = ok;
    if (ok)
        e->last_success = now;
    else {
        e->failed++;
        e->last_failure = now;
        log_msg(LOG_DEBUG, "notify: %s: %s", e->ver->sub->id, reason);
    }
    e->dirty = 1;
}

/* Is a queued delivery still wanted? Not once its subscription was deleted,
 * paused, expired or pointed at another endpoint (mu held). */
static int wanted(const struct endpoint *ep, const struct delivery *d, int64_t now)
{
    return usable(d->e, now) && strcmp(d->e->ver->sub->uri, ep->uri) == 0;
}

/* Send d again until it succeeds or max_attempts is reached, with
 * backoff (mu held, released while sending); then record and free it.
 * attempt: the attempts already made (their failure in reason), started:
 * when the last of them started. */
static void mqtt_retry(struct notify *n, struct endpoint *ep, struct delivery *d, int attempt,
                       int64_t started, char *reason, size_t cap)
{
    int ok = 0;
    for (; attempt < n->c.max_attempts && !ok; attempt++) {
        if (attempt > 0 && backoff_wait(ep, (int64_t)n->c.backoff_ms << (attempt - 1)))
            break;
        if (!wanted(ep, d, tm_now_ms()))
            break; /* paused, deleted or re-pointed meanwhile */
        started = tm_now_ms();
        pthread_mutex_unlock(&n->mu);
        ok = mqtt_pool_publish(n->mqtt, ep->uri, d->body, d->len, d->v->sub->mqtt_qos, reason,
                               cap) == 0;
        pthread_mutex_lock(&n->mu);
    }
    if (started && (!STOPPING(n) || ok))
        record(d->e, ok, started, reason);
    delivery_free(n, d);
}

/* An MQTT endpoint's sender: takes what is queued (up to MQTT_BATCH
 * deliveries still wanted) and publishes it as one batch on the broker's
 * connection, in queue order; each that failed is then retried on its own
 * with backoff, in order, before the next batch. Failures end a batch (a
 * lost connection, a timeout: everything after the first failure failed
 * too), so the order holds, except around a message that can never be sent
 * (too large) or QoS 1 acknowledgements arriving out of order. */
#define MQTT_BATCH 64
static void *sender_main(void *arg)
{
    struct endpoint *ep = arg;
    struct notify *n = ep->nt;
    struct delivery *batch[MQTT_BATCH];
    struct mqtt_msg msgs[MQTT_BATCH];
    char reason[160] = "";

    pthread_setname_np(pthread_self(), "pl-notify-mqtt");
    pthread_mutex_lock(&n->mu);
    while (!STOPPING(n)) {
        size_t nb = 0;
        int64_t now = tm_now_ms(), started;
        if (ep->head == NULL) {
            if (ep->retire)
                break;
            pthread_cond_wait(&ep->cond, &n->mu);
            continue;
        }
        while (ep->head && nb < MQTT_BATCH) {
            struct delivery *d = ep->head;
            if ((ep->head = d->next) == NULL)
                ep->tail = NULL;
            ep->n--;
            if (wanted(ep, d, now))
                batch[nb++] = d;
            else
                delivery_free(n, d);
        }
        if (nb == 0)
            continue;
        for (size_t i = 0; i < nb; i++)
            msgs[i] = (struct mqtt_msg){
                .payload = batch[i]->body, .len = batch[i]->len, .qos = batch[i]->v->sub->mqtt_qos};
        ep->busy = 1;
        started = tm_now_ms();
        pthread_mutex_unlock(&n->mu);
        mqtt_pool_publish_many(n->mqtt, ep->uri, msgs, nb, reason, sizeof(reason));
        pthread_mutex_lock(&n->mu);
        for (size_t i = 0; i < nb; i++) {
            if (msgs[i].ok) {
                record(batch[i]->e, 1, started, reason);
                delivery_free(n, batch[i]);
            } else
                mqtt_retry(n, ep, batch[i], 1, started, reason, sizeof(reason));
        }
        ep->busy = 0;
    }
    ep->exited = 1;
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static void endpoint_free(struct notify *n, struct endpoint *ep)
{
    delivery_free(n, ep->cur);
    while (ep->head) {
        struct delivery *d = ep->head;
        ep->head = d->next;
        delivery_free(n, d);
    }
    if (ep->curl)
        curl_easy_cleanup(ep->curl);
    hc_free(ep->hc);
    pthread_cond_destroy(&ep->cond);
    free(ep->uri);
    free(ep);
}

static void wake_dispatcher(struct disp *d);

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
        endpoint_free(n, ep);
    }
    int n_busy = 0, n_used = 0;
    while (hmap_next(n->endpoints, &pos, &key, &val)) {
        struct endpoint *ep = val;
        size_t spos = 0;
        void *sval;
        int used = 0;
        if (ep->head || ep->busy || ep->cur) {
            n_busy++;
            continue;
        }
        while (!used && hmap_next(n->subs, &spos, NULL, &sval))
            used = strcmp(((struct entry *)sval)->ver->sub->uri, ep->uri) == 0;
        if (used) {
            n_used++;
            continue;
        }
        hmap_del(n->endpoints, ep->uri, NULL);
        pos = 0; /* the table changed: scan again from the start */
        n_busy = n_used = 0;
        if (ep->hc) { /* its connection is in the dispatcher's epoll set */
            ep->next_retired = ep->disp->dead;
            ep->disp->dead = ep;
            wake_dispatcher(ep->disp);
            continue;
        }
        if (!ep->started) {
            endpoint_free(n, ep);
            continue;
        }
        ep->retire = 1;
        pthread_cond_signal(&ep->cond);
        ep->next_retired = n->retired;
        n->retired = ep;
    }
    log_msg(LOG_DEBUG, "notify: endpoint table: %zu endpoints, %d busy, %d in use",
            hmap_count(n->endpoints), n_busy, n_used);
}

static void count_drop(struct entry *e)
{
    e->dropped++;
    e->dirty = 1;
}

static void ready_push(struct endpoint *ep);

/* Queue a delivery on its endpoint (mu held; takes body). */
static void enqueue(struct notify *n, struct entry *e, struct ver *v, char *body, size_t len)
{
    struct endpoint *ep = hmap_get(n->endpoints, v->sub->uri);
    struct delivery *d = NULL;

    if (ep == NULL) {
        if (hmap_count(n->endpoints) >= (size_t)n->c.max_endpoints)
            reclaim_endpoints(n);
        if (hmap_count(n->endpoints) >= (size_t)n->c.max_endpoints ||
            (ep = calloc(1, sizeof(*ep))) == NULL)
            goto drop;
        ep->nt = n;
        ep->transport = v->sub->transport;
        if (ep->transport != SUB_MQTT) /* MQTT endpoints have threads of their own */
            ep->disp = &n->disp[n->next_disp++ % (unsigned)n->n_disp];
        pthread_cond_init(&ep->cond, NULL);
        if ((ep->uri = strdup(v->sub->uri)) == NULL ||
            hmap_put(n->endpoints, ep->uri, ep, NULL) != 0) {
            pthread_cond_destroy(&ep->cond);
            free(ep->uri);
            free(ep);
            goto drop;
        }
    }
    if (ep->transport == SUB_MQTT && !ep->started) {
        if (pthread_create(&ep->thread, NULL, sender_main, ep) != 0)
            goto drop;
        ep->started = 1;
    }
    if (ep->n >= n->c.endpoint_queue_cap || (d = calloc(1, sizeof(*d))) == NULL)
        goto drop;
    d->e = e;
    e->refs++;
    d->v = ver_retain(v);
    d->body = body;
    d->len = len;
    if (ep->tail)
        ep->tail->next = d;
    else
        ep->head = d;
    ep->tail = d;
    ep->n++;
    if (ep->transport == SUB_MQTT)
        pthread_cond_signal(&ep->cond);
    else if (!ep->cur)
        ready_push(ep);
    return;
drop:
    count_drop(e);
    free(body);
}

/* Render the Notification for data (takes data) into c->nid / c->text.
 * Any thread, no lock. */
static int render(const struct ver *v, cJSON *data, int64_t now, struct cand *c)
{
    char ts[TM_ISO_LEN];
    cJSON *body;
    const cJSON *id;

    tm_format(now, ts);
    if ((body = sub_notification(v->sub, v->ctx_value, data, ts)) == NULL)
        return ERR_NOMEM;
    if (cJSON_IsString(id = cJSON_GetObjectItemCaseSensitive(body, "id")))
        snprintf(c->nid, sizeof(c->nid), "%s", id->valuestring);
    c->text = json_print(body, &c->len);
    cJSON_Delete(body);
    if (c->text == NULL || c->len > BODY_MAX) {
        free(c->text);
        c->text = NULL;
        return ERR_NOMEM;
    }
    return 0;
}

/* Hand a rendered notification (c->text, taken) to e's streams and
 * endpoint (mu held). */
static void deliver(struct notify *n, struct entry *e, struct ver *v, struct cand *c, int64_t now)
{
    char *text = c->text, *wire = NULL;
    size_t len = c->len, wire_len = 0;

    c->text = NULL;
    if (e->streams) {
        char *ev = NULL;
        int k = asprintf(&ev, "id: %s\nevent: notification\ndata: %s\n\n", c->nid, text);
        if (k > 0 && streams_write(n, e, ev, (size_t)k, now) > 0 && v->sub->transport == SUB_SSE) {
            e->sent++;
            e->last_notification = e->last_success = now;
            e->has_ok = e->ok = 1;
            e->dirty = 1;
        }
        free(ev);
    }
    if (v->sub->transport == SUB_SSE) {
        free(text);
        return;
    }
    if (v->sub->transport == SUB_MQTT) {
        int k = asprintf(&wire, "{\"metadata\":%s,\"body\":%s}", v->mqtt_meta, text);
        free(text);
        if (k < 0) {
            count_drop(e);
            return;
        }
        wire_len = (size_t)k;
    } else {
        wire = text;
        wire_len = len;
    }
    enqueue(n, e, v, wire, wire_len);
}

/* --- the HTTP dispatchers -----------------------------------------------------------
 * A dispatcher thread drives the HTTP notifications of its endpoints; there
 * is one per core, up to MAX_DISP, and endpoints are dealt to them in
 * turn, so a burst to many receivers is sent from every core. Plain
 * http:// receivers get pilotlight's own client (httpc.h: one keep-alive
 * connection per receiver, a notification is one sendmsg and one recv,
 * ~25 us of CPU with loopback TCP); https:// receivers, and every receiver
 * when a proxy is configured, go through the thread's curl multi handle
 * (its connection cache keeps the keep-alive connections; ~50 us). Per
 * endpoint at most one transfer at a time, so each receiver gets its
 * notifications in order; a failed attempt waits its backoff (200 ms,
 * doubled) without holding anything up; the attempt's start is
 * lastNotification. No thread per endpoint, no lock held across I/O: an
 * httpc request is started after mu is released (hc_start_all).
 *
 * The work is proportional to what happens, not to how much exists:
 * endpoints with a delivery to start sit on a ready list (enqueue and the
 * end of a transfer put them there); httpc connections and curl's sockets
 * share the thread's epoll set (curl through curl_multi_socket_action and
 * its timer callback); httpc requests in flight are on a list scanned only
 * when the earliest deadline passes. So a burst of notifications to many
 * receivers costs one pass per transfer event instead of a walk over every
 * transfer and endpoint per wakeup. An eventfd wakes the thread. An httpc
 * endpoint that leaves the table is freed by its dispatcher (its
 * connection is in that thread's epoll set), never by the thread that
 * reclaimed it. */

static void wake_dispatcher(struct disp *d)
{
    uint64_t one = 1;
    if (d->wakefd >= 0 && write(d->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_msg(LOG_WARN, "notify: dispatcher wakeup: %s", strerror(errno));
}

/* Append ep to its dispatcher's ready list (mu held). */
static void ready_append(struct endpoint *ep)
{
    struct disp *d = ep->disp;
    ep->in_ready = 1;
    ep->ready_next = NULL;
    if (d->ready_tail)
        d->ready_tail->ready_next = ep;
    else
        d->ready_head = ep;
    d->ready_tail = ep;
}

/* Put ep on the ready list and wake its dispatcher (mu held). */
static void ready_push(struct endpoint *ep)
{
    if (ep->in_ready)
        return;
    ready_append(ep);
    if (!ep->disp->wake_pending) {
        ep->disp->wake_pending = 1;
        wake_dispatcher(ep->disp);
    }
}

/* epoll_event.data of the dispatcher's descriptors: an endpoint pointer
 * (an httpc connection's events), or a descriptor number shifted left once
 * with the low bit set (the eventfd, curl's sockets). */
#define FD_TAG(fd) (((uint64_t)(unsigned)(fd) << 1) | 1u)

/* Does ep's URI go through httpc? Opens its client the first time
 * (dispatcher thread). */
static int use_hc(struct notify *n, struct endpoint *ep)
{
    if (!ep->hc_tried) {
        ep->hc_tried = 1;
        if (n->direct_http && hc_open(ep->uri, ep->disp->epfd, ep, &ep->hc) != 0)
            ep->hc = NULL;
    }
    return ep->hc != NULL;
}

static void flight_add(struct disp *d, struct endpoint *ep)
{
    ep->fl_prev = NULL;
    if ((ep->fl_next = d->flight) != NULL)
        d->flight->fl_prev = ep;
    d->flight = ep;
}

static void flight_del(struct disp *d, struct endpoint *ep)
{
    if (ep->fl_prev)
        ep->fl_prev->fl_next = ep->fl_next;
    else if (d->flight == ep)
        d->flight = ep->fl_next;
    if (ep->fl_next)
        ep->fl_next->fl_prev = ep->fl_prev;
    ep->fl_next = ep->fl_prev = NULL;
}

/* Start what can start (mu held); returns the next retry time. httpc
 * requests are not started here but listed on *hc_start, for the caller
 * to start once mu is released (their first send is I/O). */
static int64_t dispatch_start(struct disp *dp, int64_t now, struct endpoint **hc_start)
{
    struct notify *n = dp->n;
    struct endpoint *ep = dp->ready_head, *next_ep;
    int64_t next = now + 1000;

    dp->wake_pending = 0;
    dp->ready_head = dp->ready_tail = NULL;
    for (; ep; ep = next_ep) {
        next_ep = ep->ready_next;
        ep->in_ready = 0;
        if (ep->in_multi)
            continue;
        if (ep->cur && ep->attempt > 0 && !wanted(ep, ep->cur, now)) {
            delivery_free(n, ep->cur); /* paused, deleted or re-pointed while waiting */
            ep->cur = NULL;
            ep->busy = 0; /* else the endpoint could never be reclaimed */
        }
        while (ep->cur == NULL && ep->head) {
            struct delivery *d = ep->head;
            if ((ep->head = d->next) == NULL)
                ep->tail = NULL;
            ep->n--;
            if (!wanted(ep, d, now)) {
                delivery_free(n, d);
                continue;
            }
            ep->cur = d;
            ep->attempt = 0;
            ep->retry_at = 0;
        }
        if (ep->cur == NULL)
            continue;
        if (ep->retry_at > now) { /* back on the list until its time */
            if (ep->retry_at < next)
                next = ep->retry_at;
            ready_append(ep);
            continue;
        }
        ep->busy = 1;
        ep->started_ms = now;
        if (use_hc(n, ep)) {
            ep->in_multi = 1;
            ep->start_next = *hc_start;
            *hc_start = ep;
            continue;
        }
        if (http_setup(ep, ep->cur) != 0 || curl_multi_add_handle(dp->multi, ep->curl) != CURLM_OK) {
            record(ep->cur->e, 0, now, ep->reason);
            delivery_free(n, ep->cur);
            ep->cur = NULL;
            ep->busy = 0;
            if (ep->head)
                ready_push(ep);
            continue;
        }
        ep->in_multi = 1;
    }
    return next;
}

/* A transfer ended, ok or not (its reason in ep->reason); mu held. */
static void dispatch_done(struct notify *n, struct endpoint *ep, int ok)
{
    ep->in_multi = 0;
    ep->attempt++;
    if (ok || ep->attempt >= n->c.max_attempts) {
        record(ep->cur->e, ok, ep->started_ms, ep->reason);
        delivery_free(n, ep->cur);
        ep->cur = NULL;
        ep->busy = 0;
        if (ep->head)
            ready_push(ep);
    } else {
        ep->retry_at = tm_now_ms() + ((int64_t)n->c.backoff_ms << (ep->attempt - 1));
        ready_push(ep);
    }
}

/* curl: watch (or stop watching) socket s. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
    struct disp *d = ud;
    struct epoll_event ev = {0};
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(d->multi, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.u64 = FD_TAG(s);
    if (sockp == NULL) {
        if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(d->epfd, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(d->multi, s, d);
    } else if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(d->epfd, EPOLL_CTL_ADD, s, &ev);
    }
    return 0;
}

/* curl: call socket_action(CURL_SOCKET_TIMEOUT) in timeout_ms (-1: never). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud)
{
    struct disp *d = ud;
    (void)multi;
    d->curl_due_ms = timeout_ms < 0 ? -1 : tm_now_ms() + timeout_ms;
    return 0;
}

/* An httpc request ended (HC_DONE or HC_FAILED): its outcome (mu held;
 * dispatcher thread, which runs dispatch_start before it waits again, so
 * whatever this makes ready needs no wakeup). */
static void hc_outcome(struct notify *n, struct endpoint *ep, int rc)
{
    int ok = 0;
    ep->disp->wake_pending = 1;
    flight_del(ep->disp, ep);
    if (rc == HC_DONE) {
        int st = hc_status(ep->hc);
        ok = st >= 200 && st <= 299;
        if (!ok)
            snprintf(ep->reason, sizeof(ep->reason), "HTTP status %d", st);
    } else {
        snprintf(ep->reason, sizeof(ep->reason), "%s", hc_reason(ep->hc));
    }
    dispatch_done(n, ep, ok);
}

/* httpc's clock: monotonic milliseconds (deadlines must not move with the
 * wall clock) */
static int64_t hc_now(void)
{
    return tm_mono_us() / 1000;
}

/* Start the httpc requests dispatch_start listed (mu not held); 1 if any
 * ended at once. */
static int hc_start_all(struct disp *d, struct endpoint *list, int64_t now)
{
    struct notify *n = d->n;
    int ended = 0;
    for (struct endpoint *ep = list, *next; ep; ep = next) {
        next = ep->start_next;
        ep->start_next = NULL;
        const struct delivery *dv = ep->cur;
        int rc = hc_request(ep->hc, dv->v->http_head, dv->body, dv->len, n->c.timeout_ms, now);
        flight_add(d, ep);
        if (rc != HC_AGAIN) {
            pthread_mutex_lock(&n->mu);
            hc_outcome(n, ep, rc);
            pthread_mutex_unlock(&n->mu);
            ended = 1;
            continue;
        }
        int64_t due = hc_deadline(ep->hc);
        if (d->hc_due_ms < 0 || due < d->hc_due_ms)
            d->hc_due_ms = due;
    }
    return ended;
}

/* End the httpc requests past their deadline; the next deadline. 1 if
 * any ended. */
static int hc_expire_all(struct disp *d, int64_t now)
{
    struct notify *n = d->n;
    int ended = 0;
    d->hc_due_ms = -1;
    for (struct endpoint *ep = d->flight, *next; ep; ep = next) {
        next = ep->fl_next;
        if (hc_expire(ep->hc, now) == HC_FAILED) {
            pthread_mutex_lock(&n->mu);
            hc_outcome(n, ep, HC_FAILED);
            pthread_mutex_unlock(&n->mu);
            ended = 1;
            continue;
        }
        int64_t due = hc_deadline(ep->hc);
        if (due >= 0 && (d->hc_due_ms < 0 || due < d->hc_due_ms))
            d->hc_due_ms = due;
    }
    return ended;
}

static void *dispatcher_main(void *arg)
{
    struct disp *d = arg;
    struct notify *n = d->n;
    struct epoll_event evs[64];
    int running = 0;

    pthread_setname_np(pthread_self(), "pl-notify-http");
    for (;;) {
        CURLMsg *msg;
        struct endpoint *starts = NULL, *dead;
        int left, k;
        pthread_mutex_lock(&n->mu);
        if (STOPPING(n)) {
            size_t pos = 0;
            void *val;
            while (hmap_next(n->endpoints, &pos, NULL, &val)) {
                struct endpoint *ep = val;
                if (ep->disp != d)
                    continue;
                if (ep->in_multi && ep->curl && !ep->hc)
                    curl_multi_remove_handle(d->multi, ep->curl);
                ep->in_multi = 0;
            }
            pthread_mutex_unlock(&n->mu);
            break;
        }
        dead = d->dead; /* reclaimed httpc endpoints: only this thread may free them */
        d->dead = NULL;
        int64_t now = tm_now_ms(), next = dispatch_start(d, now, &starts);
        pthread_mutex_unlock(&n->mu);
        while (dead) {
            struct endpoint *ep = dead;
            dead = ep->next_retired;
            endpoint_free(n, ep);
        }
        int finished = hc_start_all(d, starts, hc_now());
        if (d->curl_due_ms >= 0 && d->curl_due_ms <= tm_now_ms()) {
            d->curl_due_ms = -1;
            curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
            struct endpoint *ep = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&ep);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(d->multi, msg->easy_handle);
            pthread_mutex_lock(&n->mu);
            dispatch_done(n, ep, http_outcome(ep, rc) == 0);
            pthread_mutex_unlock(&n->mu);
            finished = 1;
        }
        now = tm_now_ms();
        int64_t mono = hc_now();
        if (d->hc_due_ms >= 0 && d->hc_due_ms <= mono)
            finished |= hc_expire_all(d, mono);
        if (finished)
            continue; /* their endpoints may have more to send */
        int64_t wait = next - now;
        if (d->curl_due_ms >= 0 && d->curl_due_ms - now < wait)
            wait = d->curl_due_ms - now;
        if (d->hc_due_ms >= 0 && d->hc_due_ms - mono < wait)
            wait = d->hc_due_ms - mono;
        k = epoll_wait(d->epfd, evs, 64, wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait);
        mono = hc_now();
        for (int i = 0; i < k; i++) {
            uint64_t tag = evs[i].data.u64;
            if (!(tag & 1)) { /* an httpc connection */
                struct endpoint *ep = evs[i].data.ptr;
                int rc = hc_io(ep->hc, evs[i].events, mono);
                if (rc != HC_AGAIN) {
                    pthread_mutex_lock(&n->mu);
                    hc_outcome(n, ep, rc);
                    pthread_mutex_unlock(&n->mu);
                }
                continue;
            }
            int fd = (int)(tag >> 1);
            if (fd == d->wakefd) {
                uint64_t v;
                if (read(d->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    log_msg(LOG_WARN, "notify: dispatcher wakeup: %s", strerror(errno));
                continue;
            }
            int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(d->multi, fd, flags, &running);
        }
    }
    return NULL;
}

/* --- matching ------------------------------------------------------------------- */

/* Add the bucket's live candidates for an event of commit seq (mu held). */
static int collect(struct notify *n, const char *key, size_t *n_cands, int64_t now,
                   uint64_t seq)
{
    struct bucket *b = hmap_get(n->index, key);
    if (b == NULL)
        return 0;
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = b->v[i];
        if (e->seen == n->gen)
            continue;
        e->seen = n->gen;
        if (e->ver->sub->interval_ms || !usable(e, now) || throttled(e, now) ||
            (seq != 0 && seq <= e->from_seq) ||
            (e->ver->sub->transport == SUB_SSE && e->streams == NULL))
            continue;
        if (*n_cands == n->cands_cap) {
            size_t cap = n->cands_cap ? n->cands_cap * 2 : 64;
            struct cand *c = realloc(n->cands, cap * sizeof(*c));
            if (c == NULL)
                return ERR_NOMEM;
            n->cands = c;
            n->cands_cap = cap;
        }
        struct cand *c = &n->cands[(*n_cands)++];
        memset(c, 0, sizeof(*c));
        c->e = e;
        e->refs++;
        c->v = ver_retain(e->ver);
    }
    return 0;
}

static void process(struct notify *n, const struct qev *q)
{
    struct store_event ev = {.kind = q->kind,
                             .tenant = q->tenant,
                             .entity_id = q->entity_id,
                             .before = q->before,
                             .after = q->after};
    const cJSON *doc = q->kind == STORE_EV_DELETED ? q->before : q->after, *t;
    char sep[2] = {KEY_SEP, '\0'};
    int64_t now = tm_now_ms();
    size_t n_cands = 0;
    char *key;

    if (doc == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    n->gen++;
    cJSON_ArrayForEach(t, ent_doc_types(doc))
    {
        if (!cJSON_IsString(t) || (key = make_key(q->tenant, t->valuestring)) == NULL)
            continue;
        collect(n, key, &n_cands, now, q->seq);
        free(key);
    }
    if ((key = make_key(q->tenant, sep)) != NULL) {
        collect(n, key, &n_cands, now, q->seq);
        free(key);
    }
    /* attributes of either version: a deleted attribute is only in before */
    if (q->after)
        collect_attrs(n, q->tenant, q->after, &n_cands, now, q->seq);
    if (q->before)
        collect_attrs(n, q->tenant, q->before, &n_cands, now, q->seq);
    pthread_mutex_unlock(&n->mu);

    /* match and render without the lock */
    for (size_t i = 0; i < n_cands; i++) {
        struct cand *c = &n->cands[i];
        struct err err = {0};
        cJSON *item = NULL, *data;
        char ts[TM_ISO_LEN];
        if (sub_match(c->v->sub, &ev) == 0)
            continue;
        if (q->at[0]) /* a deletion's deletedAt is when it was written */
            snprintf(ts, sizeof(ts), "%s", q->at);
        else
            tm_format(now, ts);
        c->state = -1;
        if (sub_render_entity(c->v->sub, &ev, ts, &item, &err) != 0 ||
            (data = cJSON_CreateArray()) == NULL) {
            cJSON_Delete(item);
            continue;
        }
        cJSON_AddItemToArray(data, item);
        if (render(c->v, data, now, c) == 0)
            c->state = 1;
    }

    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n_cands; i++) {
        struct cand *c = &n->cands[i];
        struct entry *e = c->e;
        if (c->state == 1 && usable(e, now) && !throttled(e, now)) {
            e->last_fire_ms = now;
            deliver(n, e, c->v, c, now);
        } else if (c->state == -1 && !e->deleted) {
            count_drop(e);
        }
        free(c->text);
        entry_unref(n, e);
    }
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < n_cands; i++)
        ver_release(n->cands[i].v);
}

/* --- periodic work ----------------------------------------------------------------- */

struct scan {
    struct notify *n;
    struct sub *sub;
    cJSON *data;
    int count;
};

static int scan_each(void *ud, const cJSON *doc)
{
    struct scan *sc = ud;
    struct store_event ev = {.kind = STORE_EV_CREATED, .after = doc};
    struct err e = {0};
    cJSON *item;
    if (STOPPING(sc->n))
        return 1;
    if (!sub_selects(sc->sub, doc))
        return 0;
    if (sub_render_entity(sc->sub, &ev, "", &item, &e) == 0) {
        cJSON_AddItemToArray(sc->data, item);
        sc->count++;
    }
    return sc->count >= INTERVAL_MAX_ENTITIES;
}

/* timeInterval subscriptions: every interval, the current matching
 * entities (up to INTERVAL_MAX_ENTITIES) in one notification. A scan that
 * takes longer than the interval makes the next one start an interval
 * after it ended (overlapping ticks are skipped, never queued up). */
static void run_intervals(struct notify *n)
{
    size_t pos = 0;
    void *val;
    while (!STOPPING(n)) {
        struct entry *found = NULL;
        struct ver *v = NULL;
        char *tenant = NULL;
        struct err e = {0};
        int64_t now = tm_now_ms();

        pthread_mutex_lock(&n->mu);
        while (hmap_next(n->subs, &pos, NULL, &val)) {
            struct entry *x = val;
            if (x->ver->sub->interval_ms && usable(x, now) && now >= x->next_interval_ms) {
                x->next_interval_ms = now + x->ver->sub->interval_ms;
                if (x->ver->sub->transport == SUB_SSE && x->streams == NULL)
                    continue; /* nobody listens */
                found = x;
                break;
            }
        }
        if (found) {
            found->refs++;
            v = ver_retain(found->ver);
            tenant = strdup(found->tenant);
        }
        pthread_mutex_unlock(&n->mu);
        if (found == NULL)
            return;
        struct scan sc = {.n = n, .sub = v->sub, .data = cJSON_CreateArray()};
        struct cand c = {0};
        int rendered = 0;
        if (tenant && sc.data && store_scan(n->c.store, tenant, scan_each, &sc, &e) == 0 &&
            sc.count > 0 && !STOPPING(n)) {
            rendered = render(v, sc.data, tm_now_ms(), &c) == 0;
            sc.data = NULL;
        }
        cJSON_Delete(sc.data);
        pthread_mutex_lock(&n->mu);
        int64_t end = tm_now_ms();
        if (rendered && usable(found, end))
            deliver(n, found, v, &c, end);
        if (!found->deleted && end > found->next_interval_ms)
            found->next_interval_ms = end + v->sub->interval_ms;
        entry_unref(n, found);
        pthread_mutex_unlock(&n->mu);
        free(c.text);
        ver_release(v);
        free(tenant);
    }
}

static void flush(struct notify *n);

/* The periodic work that touches the store: timeInterval scans and the
 * persistence of counters, so the matcher never waits on I/O. */
static void *interval_main(void *arg)
{
    struct notify *n = arg;

    pthread_setname_np(pthread_self(), "pl-notify-tick");
    pthread_mutex_lock(&n->mu);
    while (!STOPPING(n)) {
        struct timespec ts;
        pthread_mutex_unlock(&n->mu);
        run_intervals(n);
        if (tm_now_ms() >= n->next_flush_ms) {
            flush(n);
            n->next_flush_ms = tm_now_ms() + n->c.flush_ms;
        }
        pthread_mutex_lock(&n->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!STOPPING(n))
            pthread_cond_timedwait(&n->icond, &n->mu, &ts);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* Comments on idle streams, so proxies keep them open and a client that
 * left is noticed (its write fails). */
static void keepalive(struct notify *n, int64_t now)
{
    size_t pos = 0;
    void *val;
    int64_t every = n->c.sse_keepalive_ms;
    pthread_mutex_lock(&n->mu);
    if (n->n_streams > 0)
        while (hmap_next(n->subs, &pos, NULL, &val)) {
            struct entry *e = val;
            struct stream **pp = &e->streams;
            while (*pp) {
                struct stream *st = *pp;
                if (now - st->last_write_ms < every) {
                    pp = &st->next;
                    continue;
                }
                if (st->sink.write(st->sink.ud, SSE_KEEPALIVE, sizeof(SSE_KEEPALIVE) - 1) == 0) {
                    st->last_write_ms = now;
                    pp = &st->next;
                    continue;
                }
                *pp = st->next;
                stream_free(st);
                e->n_streams--;
                n->n_streams--;
            }
        }
    pthread_mutex_unlock(&n->mu);
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
            p[n_p].id = strdup(x->ver->sub->id);
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

static void qev_free(struct qev *q)
{
    free(q->tenant);
    free(q->entity_id);
    cJSON_Delete(q->before);
    cJSON_Delete(q->after);
}

static void *matcher_main(void *arg)
{
    struct notify *n = arg;
    enum { BATCH = 256 };
    struct qev batch[BATCH];
    long reported = 0;

    pthread_setname_np(pthread_self(), "pl-notify-match");
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
            batch[got] = n->ring[n->head];
            n->bytes -= batch[got].bytes;
            got++;
            n->head = (n->head + 1) % n->c.queue_cap;
            n->count--;
        }
        stop = STOPPING(n) && n->count == 0;
        long dropped = n->ev_dropped;
        pthread_mutex_unlock(&n->qmu);

        for (size_t i = 0; i < got; i++) {
            process(n, &batch[i]);
            qev_free(&batch[i]);
        }
        if (dropped != reported) {
            log_msg(LOG_WARN, "subscriptions: %ld change events dropped (queue full)",
                    dropped - reported);
            reported = dropped;
        }
        if (stop)
            break;
        int64_t now = tm_now_ms();
        if (now >= n->next_keepalive_ms) {
            keepalive(n, now);
            n->next_keepalive_ms = now + 1000;
        }
    }
    return NULL;
}

/* --- listener ------------------------------------------------------------------------ */

/* Approximate heap size of a cJSON tree (nodes and strings). */
static size_t json_weight(const cJSON *j)
{
    size_t w = 0;
    for (; j; j = j->next) {
        w += sizeof(*j) + 16;
        if (j->string)
            w += strlen(j->string) + 1;
        if (j->valuestring)
            w += strlen(j->valuestring) + 1;
        if (j->child)
            w += json_weight(j->child);
    }
    return w;
}

static size_t doc_weight(const cJSON *doc)
{
    if (doc == NULL)
        return 0;
    return sizeof(*doc) + json_weight(doc->child);
}

/* Heap an event will hold in the queue: a parsed document takes about
 * JSON_HEAP_FACTOR times its text (3.65 for the bench entity), so the
 * stored length avoids walking the tree on the writer's thread. */
#define JSON_HEAP_FACTOR 4
static size_t event_weight(const struct store_event *ev)
{
    size_t docs = (ev->before != NULL) + (ev->after != NULL);
    if (ev->text_len > 0)
        return docs * ev->text_len * JSON_HEAP_FACTOR + 256;
    return doc_weight(ev->before) + doc_weight(ev->after) + 256;
}

/* Is key (tenant SEP name) in wkeys? (wmu held) Long keys: yes (the
 * matcher decides). */
static int wkey_has(struct notify *n, const char *tenant, const char *name)
{
    char key[1024];
    size_t lt = strlen(tenant), ln = strlen(name);
    if (lt + ln + 2 > sizeof(key))
        return 1;
    memcpy(key, tenant, lt);
    key[lt] = KEY_SEP;
    memcpy(key + lt + 1, name, ln + 1);
    return hmap_get(n->wkeys, key) != NULL;
}

int notify_store_wants(void *ud, const char *tenant, const cJSON *types_a, const cJSON *types_b)
{
    struct notify *n = ud;
    const char any[2] = {KEY_SEP, '\0'};
    const cJSON *t;
    int yes;

    pthread_mutex_lock(&n->wmu);
    yes = n->w_attr_keys > 0 || wkey_has(n, tenant, any);
    cJSON_ArrayForEach(t, types_a)
    {
        if (yes)
            break;
        yes = !cJSON_IsString(t) || wkey_has(n, tenant, t->valuestring);
    }
    cJSON_ArrayForEach(t, types_b)
    {
        if (yes)
            break;
        yes = !cJSON_IsString(t) || wkey_has(n, tenant, t->valuestring);
    }
    pthread_mutex_unlock(&n->wmu);
    return yes;
}

int notify_store_active(void *ud)
{
    struct notify *n = ud;
    return __atomic_load_n(&n->n_subs, __ATOMIC_RELAXED) > 0;
}

void notify_store_listener(void *ud, struct store_event *evs, size_t n_evs)
{
    struct notify *n = ud;
    if (__atomic_load_n(&n->n_subs, __ATOMIC_RELAXED) == 0)
        return;
    for (size_t i = 0; i < n_evs; i++) {
        struct qev q = {.kind = evs[i].kind};
        size_t bytes = event_weight(&evs[i]);
        pthread_mutex_lock(&n->qmu);
        int full = n->count >= n->c.queue_cap || n->bytes + bytes > n->c.queue_bytes || STOPPING(n);
        if (full)
            n->ev_dropped++;
        pthread_mutex_unlock(&n->qmu);
        if (full)
            continue;
        q.bytes = bytes;
        q.seq = evs[i].seq;
        if (evs[i].at != NULL)
            snprintf(q.at, sizeof(q.at), "%s", evs[i].at);
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
            (evs[i].after && !q.after) || n->count >= n->c.queue_cap ||
            n->bytes + bytes > n->c.queue_bytes) {
            n->ev_dropped++;
            pthread_mutex_unlock(&n->qmu);
            qev_free(&q);
            continue;
        }
        n->ring[(n->head + n->count) % n->c.queue_cap] = q;
        n->count++;
        n->bytes += bytes;
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

/* At open: the ImplicitlyCreated contexts no loaded subscription names
 * (left by a build that kept them, or by subscriptions that no longer load). */
static void drop_unused_implicit(struct notify *n)
{
    cJSON *urls = NULL, *u;
    struct err e = {0};

    if (n->c.contexts == NULL || ld_cache_list(n->c.contexts, 0, LD_KIND_IMPLICIT, &urls, &e) != 0)
        return;
    cJSON_ArrayForEach(u, urls)
    {
        if (cJSON_IsString(u))
            drop_implicit(n, u->valuestring);
    }
    cJSON_Delete(urls);
}

int notify_open(const struct notify_config *c, struct notify **out, struct err *e)
{
    struct notify *n = calloc(1, sizeof(*n));
    *out = NULL;
    if (n == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    n->c = *c;
    if (!n->c.queue_cap)
        n->c.queue_cap = 65536;
    if (!n->c.queue_bytes)
        n->c.queue_bytes = (size_t)256 << 20;
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
    if (n->c.sse_keepalive_ms <= 0)
        n->c.sse_keepalive_ms = NOTIFY_SSE_KEEPALIVE_MS;
    pthread_mutex_init(&n->qmu, NULL);
    pthread_cond_init(&n->qcond, NULL);
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->pmu, NULL);
    pthread_cond_init(&n->icond, NULL);
    n->ring = calloc(n->c.queue_cap, sizeof(*n->ring));
    n->subs = hmap_new(64);
    n->index = hmap_new(64);
    n->endpoints = hmap_new(16);
    n->wkeys = hmap_new(64);
    pthread_mutex_init(&n->wmu, NULL);
    n->mqtt = mqtt_pool_new(n->c.max_endpoints, n->c.timeout_ms);
    cpu_set_t cpus;
    long cores = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus)
                                                               : sysconf(_SC_NPROCESSORS_ONLN);
    n->n_disp = cores < 1 ? 1 : cores > MAX_DISP ? MAX_DISP : (int)cores;
    /* libcurl honours these (and no_proxy); httpc speaks only directly */
    n->direct_http = 1;
    for (const char *const *v = (const char *const[]){"http_proxy", "all_proxy", "ALL_PROXY", NULL};
         *v; v++)
        if (getenv(*v) && *getenv(*v))
            n->direct_http = 0;
    if (!n->direct_http)
        log_msg(LOG_INFO, "notify: a proxy is configured: HTTP notifications go through libcurl");
    int disp_ok = 1;
    for (int i = 0; i < MAX_DISP; i++)
        n->disp[i].epfd = n->disp[i].wakefd = -1;
    for (int i = 0; i < n->n_disp; i++) {
        struct disp *d = &n->disp[i];
        d->n = n;
        d->epfd = epoll_create1(EPOLL_CLOEXEC);
        d->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        d->curl_due_ms = d->hc_due_ms = -1;
        if ((d->multi = curl_multi_init()) != NULL) {
            curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)n->c.max_endpoints);
            curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
            curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
            curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
            curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
        }
        if (d->epfd >= 0 && d->wakefd >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = FD_TAG(d->wakefd)};
            if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wakefd, &ev) != 0) {
                close(d->wakefd);
                d->wakefd = -1;
            }
        }
        disp_ok &= d->multi != NULL && d->epfd >= 0 && d->wakefd >= 0;
    }
    if (n->ring == NULL || n->subs == NULL || n->index == NULL || n->endpoints == NULL ||
        n->wkeys == NULL || n->mqtt == NULL || !disp_ok) {
        notify_free(n);
        return err_set(e, ERR_NOMEM, "cannot set up the notification dispatcher");
    }
    if (n->c.store)
        store_doc_each(n->c.store, NULL, COLL, load_one, n);
    drop_unused_implicit(n);
    *out = n;
    return 0;
}

int notify_start(struct notify *n, struct err *e)
{
    n->next_flush_ms = tm_now_ms() + n->c.flush_ms;
    if (pthread_create(&n->matcher, NULL, matcher_main, n) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the subscription matcher");
    n->matcher_started = 1;
    if (pthread_create(&n->interval, NULL, interval_main, n) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the subscription interval thread");
    n->interval_started = 1;
    for (int i = 0; i < n->n_disp; i++) {
        if (pthread_create(&n->disp[i].thread, NULL, dispatcher_main, &n->disp[i]) != 0)
            return err_set(e, ERR_INTERNAL, "cannot start the notification dispatcher");
        n->disp[i].started = 1;
    }
    return 0;
}

static void free_bucket(void *v)
{
    struct bucket *b = v;
    free(b->v);
    free(b);
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
    pthread_mutex_lock(&n->mu);
    pthread_cond_broadcast(&n->icond);
    pthread_mutex_unlock(&n->mu);
    if (n->matcher_started)
        pthread_join(n->matcher, NULL);
    n->matcher_started = 0;
    if (n->interval_started)
        pthread_join(n->interval, NULL);
    n->interval_started = 0;
    for (int i = 0; i < n->n_disp; i++) {
        wake_dispatcher(&n->disp[i]);
        if (n->disp[i].started)
            pthread_join(n->disp[i].thread, NULL);
        n->disp[i].started = 0;
    }
    pthread_mutex_lock(&n->mu);
    while (hmap_next(n->endpoints, &pos, NULL, &val))
        pthread_cond_broadcast(&((struct endpoint *)val)->cond);
    pos = 0;
    while (hmap_next(n->subs, &pos, NULL, &val))
        streams_close(n, val, NULL, 0);
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
    /* every thread has stopped: deliveries first (they hold entry
     * references), then the table's own entries */
    while (n->endpoints && hmap_next(n->endpoints, &pos, NULL, &val))
        endpoint_free(n, val);
    while (n->retired) {
        struct endpoint *ep = n->retired;
        n->retired = ep->next_retired;
        endpoint_free(n, ep);
    }
    hmap_free(n->endpoints, NULL);
    for (int i = 0; i < MAX_DISP; i++) {
        while (n->disp[i].dead) {
            struct endpoint *ep = n->disp[i].dead;
            n->disp[i].dead = ep->next_retired;
            endpoint_free(n, ep);
        }
        if (n->disp[i].multi)
            curl_multi_cleanup(n->disp[i].multi);
        if (n->disp[i].epfd >= 0)
            close(n->disp[i].epfd);
        if (n->disp[i].wakefd >= 0)
            close(n->disp[i].wakefd);
    }
    mqtt_pool_free(n->mqtt);
    hmap_free(n->index, free_bucket);
    hmap_free(n->wkeys, NULL);
    pos = 0;
    while (n->subs && hmap_next(n->subs, &pos, NULL, &val))
        entry_free(n, val);
    hmap_free(n->subs, NULL);
    for (size_t i = 0; n->ring && i < n->count; i++)
        qev_free(&n->ring[(n->head + i) % n->c.queue_cap]);
    free(n->ring);
    free(n->cands);
    pthread_mutex_destroy(&n->qmu);
    pthread_cond_destroy(&n->qcond);
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->wmu);
    pthread_mutex_destroy(&n->pmu);
    pthread_cond_destroy(&n->icond);
    free(n);
}

/* --- management -------------------------------------------------------------------------- */

/* Rules a create or PATCH must meet that a stored subscription is not
 * held to at load (refusing it then would drop it): showChanges cannot go
 * with keyValues (5.2.14). */
static int request_rules(const cJSON *doc, struct err *e)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(doc, "notification");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(n, "format");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n, "showChanges")) && cJSON_IsString(f) &&
        (!strcmp(f->valuestring, "keyValues") || !strcmp(f->valuestring, "simplified")))
        return err_set(e, ERR_BAD_DATA, "showChanges cannot be combined with format keyValues");
    return 0;
}

/* expiresAt set by a request must lie ahead (GS CIM 009 5.8.1.4, 5.8.2.4);
 * a stored one that passed while the hub was down only makes the
 * subscription "expired". */
static int expires_ahead(const cJSON *body, struct err *e)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(body, "expiresAt");
    int64_t ms;
    if (cJSON_IsString(x) && tm_parse(x->valuestring, &ms) == 0 && ms <= tm_now_ms())
        return err_set(e, ERR_BAD_DATA, "expiresAt %s is in the past", x->valuestring);
    return 0;
}

int notify_sub_create(struct notify *n, const char *tenant, const cJSON *doc,
                      const struct ld_ctx *ctx, const cJSON *ctx_value, char **id_out,
                      struct err *e)
{
    cJSON *d = cJSON_Duplicate(doc, 1);
    struct sub *s = NULL;
    struct ver *v = NULL;
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
    if ((rc = request_rules(d, e)) != 0 || (rc = expires_ahead(d, e)) != 0 ||
        (rc = sub_compile(d, ctx, &s, e)) != 0) {
        sub_free(s);
        cJSON_Delete(d);
        return rc;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(d, "@context");
    cJSON_AddItemToObject(
        d, "@context", ctx_value ? cJSON_Duplicate(ctx_value, 1) : cJSON_CreateString(LD_CORE_URL));
    pthread_mutex_lock(&n->pmu); /* before ver_new: see drop_implicit */
    if ((v = ver_new(n, tenant, d, s)) == NULL) {
        pthread_mutex_unlock(&n->pmu);
        cJSON_Delete(d);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if ((ent = entry_new(tenant, v->sub->id, d, v)) == NULL) {
        pthread_mutex_unlock(&n->pmu);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&n->mu);
    /* createdAt orders the list: strictly increasing, so two subscriptions
     * created in the same millisecond keep their creation order */
    int64_t created = tm_now_ms();
    if (created <= n->last_created_ms)
        created = n->last_created_ms + 1;
    n->last_created_ms = created;
    tm_format(created, ent->created_at);
    strcpy(ent->modified_at, ent->created_at);
    ent->from_seq = store_committed(n->c.store);
    if (hmap_get(n->subs, ent->key)) {
        pthread_mutex_unlock(&n->mu);
        rc = err_set(e, ERR_EXISTS, "subscription %.200s already exists", ent->ver->sub->id);
        goto out;
    }
    text = entry_text(ent);
    pthread_mutex_unlock(&n->mu);
    if (text == NULL)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if ((rc = store_doc_put(n->c.store, tenant, COLL, ent->ver->sub->id, text, 1)) != 0)
        rc = rc == ERR_EXISTS
                 ? err_set(e, ERR_EXISTS, "subscription %.200s already exists", ent->ver->sub->id)
                 : err_set(e, ERR_IO, "could not store the subscription");
    if (rc == 0) {
        pthread_mutex_lock(&n->mu);
        if ((*id_out = strdup(ent->ver->sub->id)) == NULL || insert(n, ent) != 0) {
            pthread_mutex_unlock(&n->mu);
            store_doc_delete(n->c.store, tenant, COLL, ent->ver->sub->id);
            free(*id_out);
            *id_out = NULL;
            rc = err_set(e, ERR_NOMEM, "out of memory");
        } else {
            ent = NULL;
            pthread_mutex_unlock(&n->mu);
        }
    }
out:
    if (ent != NULL) { /* not created: its context may have been made for it */
        char *url = ent->ver->implicit ? strdup(ent->ver->implicit) : NULL;
        entry_free(n, ent);
        drop_implicit(n, url);
        free(url);
    }
    pthread_mutex_unlock(&n->pmu);
    free(text);
    return rc;
}

char *notify_sub_link(struct notify *n, const char *tenant, const char *id)
{
    char *key = make_key(tenant, id), *url = NULL;
    struct entry *ent;
    if (key == NULL)
        return NULL;
    pthread_mutex_lock(&n->mu);
    if ((ent = hmap_get(n->subs, key)) != NULL && ent->ver->link != NULL)
        url = strdup(ent->ver->link);
    pthread_mutex_unlock(&n->mu);
    free(key);
    return url;
}

int notify_sub_get(struct notify *n, const char *tenant, const char *id, cJSON **out, struct err *e)
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
    struct ver *v = NULL, *old = NULL;
    const struct ld_ctx *ctx = NULL;
    cJSON *d = NULL;
    int rc = 0;

    if (key == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&n->pmu);
    pthread_mutex_lock(&n->mu);
    if ((ent = hmap_get(n->subs, key)) != NULL) {
        d = cJSON_Duplicate(ent->doc, 1);
        ctx = ent->ver->sub->ctx;
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
    if ((rc = expires_ahead(frag, e)) != 0 || (rc = sub_merge(d, frag, e)) != 0 ||
        (rc = request_rules(d, e)) != 0 || (rc = sub_compile(d, ctx, &s, e)) != 0)
        goto out;
    if ((v = ver_new(n, tenant, d, s)) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&n->mu);
    if ((ent = hmap_get(n->subs, key)) == NULL) {
        pthread_mutex_unlock(&n->mu);
        rc = err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
        goto out;
    }
    index_entry(n, ent, 0);
    old = ent->ver;
    ent->ver = v;
    cJSON_Delete(ent->doc);
    ent->doc = d;
    touch(ent);
    if (v->sub->active && !old->sub->active) /* resumed: not the changes of its pause */
        ent->from_seq = store_committed(n->c.store);
    v = NULL;
    d = NULL;
    ent->next_interval_ms = 0;
    if (index_entry(n, ent, 1) != 0)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    text = entry_text(ent);
    pthread_mutex_unlock(&n->mu);
    if (rc == 0 && (text == NULL || store_doc_put(n->c.store, tenant, COLL, id, text, 0) != 0))
        rc = err_set(e, ERR_IO, "could not store the subscription");
out:
    if (old != NULL && old->implicit != NULL && (v == NULL || v->implicit == NULL ||
                                                 strcmp(old->implicit, v->implicit) != 0))
        drop_implicit(n, old->implicit);
    if (v != NULL && v->implicit != NULL) /* made for a version that failed */
        drop_implicit(n, v->implicit);
    pthread_mutex_unlock(&n->pmu);
    ld_ctx_release(ctx);
    ver_release(old);
    ver_release(v);
    cJSON_Delete(d);
    free(text);
    free(key);
    return rc;
}

int notify_sub_delete(struct notify *n, const char *tenant, const char *id, struct err *e)
{
    char *key = make_key(tenant, id), *implicit = NULL;
    void *old = NULL;
    int rc = 0;
    if (key == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&n->pmu);
    pthread_mutex_lock(&n->mu);
    if (hmap_del(n->subs, key, &old)) {
        struct entry *ent = old;
        if (ent->ver->implicit && (implicit = strdup(ent->ver->implicit)) == NULL)
            log_msg(LOG_WARN, "subscriptions: out of memory; @context %s kept",
                    ent->ver->implicit);
        index_entry(n, ent, 0);
        ent->deleted = 1;
        streams_close(n, ent, SSE_END, sizeof(SSE_END) - 1);
        entry_unref(n, ent);
        __atomic_sub_fetch(&n->n_subs, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&n->mu);
    if (old == NULL)
        rc = err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
    else if (store_doc_delete(n->c.store, tenant, COLL, id) != 0)
        rc = err_set(e, ERR_IO, "could not delete the stored subscription");
    drop_implicit(n, implicit);
    pthread_mutex_unlock(&n->pmu);
    free(implicit);
    free(key);
    return rc;
}

/* --- streams ---------------------------------------------------------------------------- */

int notify_stream_attach(struct notify *n, const char *tenant, const char *id,
                         const struct notify_sink *sink, struct err *e)
{
    char *key = make_key(tenant, id);
    struct stream *st = calloc(1, sizeof(*st));
    struct entry *ent;
    int rc = 0;

    if (key == NULL || st == NULL) {
        free(key);
        free(st);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&n->mu);
    if (STOPPING(n))
        rc = err_set(e, ERR_UNAVAILABLE, "shutting down");
    else if ((ent = hmap_get(n->subs, key)) == NULL)
        rc = err_set(e, ERR_NOT_FOUND, "no subscription %.200s", id);
    else if (n->n_streams >= NOTIFY_MAX_STREAMS)
        rc = err_set(e, ERR_UNAVAILABLE, "too many open streams (at most %d)", NOTIFY_MAX_STREAMS);
    else {
        st->sink = *sink;
        st->last_write_ms = tm_now_ms();
        st->next = ent->streams;
        ent->streams = st;
        ent->n_streams++;
        n->n_streams++;
        st = NULL;
    }
    pthread_mutex_unlock(&n->mu);
    free(st);
    free(key);
    return rc;
}

int notify_streams_open(struct notify *n)
{
    pthread_mutex_lock(&n->mu);
    int k = n->n_streams;
    pthread_mutex_unlock(&n->mu);
    return k;
}
