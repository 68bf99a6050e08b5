/*
 * cache.c - @context documents, memoized active contexts and the
 * /jsonldContexts data (see cache.h for the contract).
 *
 * Design
 *   docs:  struct doc per document, in two hash maps (by URL, by localId)
 *          and a list in insertion order (listings are stable).
 *   memo:  JSON text of an @context value -> built active context, with the
 *          URLs of the documents it used (so a memo hit still counts as a hit
 *          on each of them); an LRU list bounds it. Any delete or reload drops
 *          the whole memo: those are rare and it keeps invalidation trivial.
 *   fetch: one libcurl easy handle per fetch, no lock held; the body is
 *          capped while it streams in (CURLOPT_MAXFILESIZE catches honest
 *          Content-Lengths early) and must parse as a JSON object with
 *          "@context" before it is cached.
 *
 * localIds: Hosted ones are 32 random hex digits; Cached and
 * ImplicitlyCreated ones are derived from the URL / the text with FNV-1a
 * (stable across restarts, so a re-created implicit context keeps its URL).
 *
 * Lock order: c->lock only; hooks and fetches run outside it.
 */
#include "ld/cache.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ld/ld_int.h"
#include "util/hmap.h"
#include "util/time.h"

#define DEFAULT_BASE "http://localhost/ngsi-ld/v1/jsonldContexts/"
#define DEFAULT_TIMEOUT_MS 5000L
#define DEFAULT_MAX_DOC ((size_t)1 << 20)
#define DEFAULT_MAX_ENTRIES 1024
#define DEFAULT_MAX_MEMO 256
#define MEMO_MAX_KEY 65536 /* larger @context values are built, not memoized */

enum kind { KIND_CACHED, KIND_HOSTED, KIND_IMPLICIT };

static const char *const KIND_NAMES[] = {LD_KIND_CACHED, LD_KIND_HOSTED, LD_KIND_IMPLICIT};

struct doc {
    char *url;
    char *local_id;
    char *text;
    enum kind kind;
    int64_t created_at;
    int64_t last_usage;
    uint64_t hits;
    uint64_t used_seq;       /* c->use_seq at the last use: LRU order */
    struct doc *prev, *next; /* insertion order */
};

struct memo {
    char *key;
    struct ld_ctx *ctx; /* one reference held by the memo */
    char **deps;        /* URLs of the documents used */
    size_t n_deps;
    int uses_core;
    struct memo *prev, *next; /* LRU: head is the most recent */
};

struct ld_cache {
    pthread_mutex_t lock;
    char *base;      /* hosted_base_url, ending in '/' */
    long timeout_ms;
    size_t max_doc, max_entries, max_memo;
    void (*persist)(void *ud, const char *url, const char *kind, const char *text);
    void (*unpersist)(void *ud, const char *url);
    void *hook_ud;

    struct hmap *by_url;   /* url -> struct doc */
    struct hmap *by_local; /* localId -> struct doc (same objects) */
    struct doc *first, *last;

    struct hmap *memo_map; /* key -> struct memo */
    struct memo *memo_head, *memo_tail;

    uint64_t use_seq;   /* bumped on every document use */
    int64_t created_at; /* of the core entry */
    int64_t core_last_usage;
    uint64_t core_hits;
};

/* Documents used by one build, recorded by the loader. */
struct resolve_state {
    struct ld_cache *c;
    char *deps[LD_MAX_LOADS];
    size_t n_deps;
    int oom;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- helpers ---------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static int kind_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, KIND_NAMES[i]) == 0)
            return i;
    return -1;
}

/* Is s a JSON object with an "@context" member? */
static int is_context_doc(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    int ok = cJSON_IsObject(doc) && cJSON_GetObjectItemCaseSensitive(doc, "@context") != NULL;

    cJSON_Delete(doc);
    return ok;
}

static int valid_url(const char *url)
{
    size_t len = strlen(url);

    if (len > LD_MAX_URL_LEN || !(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return 0;
    return 1;
}

static int is_core_id(const char *id)
{
    return strcmp(id, LD_CACHE_CORE_ID) == 0 || ld_is_core_url(id);
}

static void doc_free(struct doc *d)
{
    if (d == NULL)
        return;
    free(d->url);
    free(d->local_id);
    free(d->text);
    free(d);
}

static void memo_free(struct memo *m)
{
    if (m == NULL)
        return;
    ld_ctx_release(m->ctx);
    for (size_t i = 0; i < m->n_deps; i++)
        free(m->deps[i]);
    free(m->deps);
    free(m->key);
    free(m);
}

/* ---- document table (lock held) --------------------------------------- */

static void touch(struct ld_cache *c, struct doc *d)
{
    d->used_seq = ++c->use_seq;
    d->hits++;
    d->last_usage = tm_now_ms();
}

static struct doc *find_doc(struct ld_cache *c, const char *id)
{
    struct doc *d = hmap_get(c->by_local, id);

    return d != NULL ? d : hmap_get(c->by_url, id);
}

/* Insert d (owned by the table afterwards). */
static int doc_insert(struct ld_cache *c, struct doc *d)
{
    if (hmap_put(c->by_url, d->url, d, NULL) < 0)
        return ERR_NOMEM;
    if (hmap_put(c->by_local, d->local_id, d, NULL) < 0) {
        hmap_del(c->by_url, d->url, NULL);
        return ERR_NOMEM;
    }
    d->prev = c->last;
    d->next = NULL;
    if (c->last != NULL)
        c->last->next = d;
    else
        c->first = d;
    c->last = d;
    return 0;
}

static void doc_unlink(struct ld_cache *c, struct doc *d)
{
    hmap_del(c->by_url, d->url, NULL);
    hmap_del(c->by_local, d->local_id, NULL);
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        c->first = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    else
        c->last = d->prev;
    d->prev = d->next = NULL;
}

/* Make room for one more document: evict the least recently used Cached
 * one if the table is full. Returns the evicted document (caller unpersists
 * and frees it outside the lock) via *evicted; 0, or ERR_UNAVAILABLE when
 * full of documents that are never evicted. */
static int make_room(struct ld_cache *c, struct doc **evicted)
{
    struct doc *victim = NULL;

    *evicted = NULL;
    if (hmap_count(c->by_url) < c->max_entries)
        return 0;
    for (struct doc *d = c->first; d != NULL; d = d->next)
        if (d->kind == KIND_CACHED && (victim == NULL || d->used_seq < victim->used_seq))
            victim = d;
    if (victim == NULL)
        return ERR_UNAVAILABLE;
    doc_unlink(c, victim);
    *evicted = victim;
    return 0;
}

static struct doc *doc_new(enum kind kind, const char *url, const char *local_id, const char *text)
{
    struct doc *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->kind = kind;
    d->url = strdup(url);
    d->local_id = strdup(local_id);
    d->text = strdup(text);
    d->created_at = d->last_usage = tm_now_ms();
    if (d->url == NULL || d->local_id == NULL || d->text == NULL) {
        doc_free(d);
        return NULL;
    }
    return d;
}

static void memo_flush(struct ld_cache *c)
{
    struct memo *m = c->memo_head;

    while (m != NULL) {
        struct memo *next = m->next;

        hmap_del(c->memo_map, m->key, NULL);
        memo_free(m);
        m = next;
    }
    c->memo_head = c->memo_tail = NULL;
}

static void memo_unlink(struct ld_cache *c, struct memo *m)
{
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        c->memo_head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        c->memo_tail = m->prev;
    m->prev = m->next = NULL;
}

static void memo_push_front(struct ld_cache *c, struct memo *m)
{
    m->prev = NULL;
    m->next = c->memo_head;
    if (c->memo_head != NULL)
        c->memo_head->prev = m;
    else
        c->memo_tail = m;
    c->memo_head = m;
}

static void hit_core(struct ld_cache *c)
{
    c->core_hits++;
    c->core_last_usage = tm_now_ms();
}

/* ---- fetching --------------------------------------------------------- */

struct body {
    char *p;
    size_t len, cap, max;
    int too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t add = size * n;

    if (add > b->max - b->len) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + add + 1 > b->cap) {
        size_t ncap = b->cap == 0 ? 4096 : b->cap;
        char *np;

        while (ncap < b->len + add + 1)
            ncap *= 2;
        if (ncap > b->max + 1)
            ncap = b->max + 1;
        np = realloc(b->p, ncap);
        if (np == NULL)
            return 0;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* Fetch url; on success *text is the body (malloc'd), a JSON-LD context
 * document. Errors: ERR_LD_CONTEXT with the reason, ERR_NOMEM. */
static int fetch(struct ld_cache *c, const char *url, char **text, struct err *e)
{
    struct body b = {.max = c->max_doc};
    struct curl_slist *hdrs = NULL;
    CURL *h = NULL;
    CURLcode res;
    long status = 0;
    int rc = 0;

    *text = NULL;
    if (!valid_url(url))
        return err_set(e, ERR_LD_CONTEXT, "cannot fetch @context %s: not an http(s) URL", url);
    h = curl_easy_init();
    hdrs = curl_slist_append(NULL, "Accept: application/ld+json, application/json;q=0.9");
    if (h == NULL || hdrs == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_doc);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pilotlight");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    res = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 0 && (status < 200 || status > 299)) {
        rc = err_set(e, ERR_LD_CONTEXT, "cannot fetch @context %s: HTTP status %ld", url, status);
        goto out;
    }
    if (b.too_big || res == CURLE_FILESIZE_EXCEEDED) {
        rc = err_set(e, ERR_LD_CONTEXT, "@context %s is larger than %zu bytes", url, c->max_doc);
        goto out;
    }
    if (res != CURLE_OK || status == 0) {
        rc = err_set(e, ERR_LD_CONTEXT, "cannot fetch @context %s: %s", url, curl_easy_strerror(res));
        goto out;
    }
    if (b.p == NULL || !is_context_doc(b.p)) {
        rc = err_set(e, ERR_LD_CONTEXT, "%s is not a JSON-LD context document", url);
        goto out;
    }
    *text = b.p;
    b.p = NULL;
out:
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- the loader used while building ----------------------------------- */

static void record_dep(struct resolve_state *rs, const char *url)
{
    char *copy;

    for (size_t i = 0; i < rs->n_deps; i++)
        if (strcmp(rs->deps[i], url) == 0)
            return;
    if (rs->n_deps >= LD_MAX_LOADS)
        return;
    copy = strdup(url);
    if (copy == NULL) {
        rs->oom = 1;
        return;
    }
    rs->deps[rs->n_deps++] = copy;
}

static int is_hosted_url(const struct ld_cache *c, const char *url)
{
    return strncmp(url, c->base, strlen(c->base)) == 0;
}

/* A Hosted or ImplicitlyCreated document named through another host name
 * for this broker (".../jsonldContexts/{localId}"): served from the table
 * instead of fetching it from ourselves. Lock held. */
static struct doc *local_alias(struct ld_cache *c, const char *url)
{
    const char *p = strstr(url, "/jsonldContexts/");
    struct doc *d;

    if (p == NULL)
        return NULL;
    d = hmap_get(c->by_local, p + strlen("/jsonldContexts/"));
    return d != NULL && d->kind != KIND_CACHED ? d : NULL;
}

static int cache_load(void *ud, const char *url, char **text, struct err *e)
{
    struct resolve_state *rs = ud;
    struct ld_cache *c = rs->c;
    struct doc *d, *evicted = NULL;
    char *body = NULL, *evicted_url = NULL;
    int rc = 0, persist = 0;

    *text = NULL;
    pthread_mutex_lock(&c->lock);
    d = hmap_get(c->by_url, url);
    if (d == NULL)
        d = local_alias(c, url);
    if (d != NULL) {
        touch(c, d);
        record_dep(rs, url);
        *text = strdup(d->text);
        pthread_mutex_unlock(&c->lock);
        return *text != NULL ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&c->lock);
    if (is_hosted_url(c, url))
        return err_set(e, ERR_LD_CONTEXT, "@context %s is not hosted here", url);
    if ((rc = fetch(c, url, &body, e)) != 0)
        return rc;

    pthread_mutex_lock(&c->lock);
    d = hmap_get(c->by_url, url);
    if (d == NULL && make_room(c, &evicted) == 0) {
        char local_id[24];

        snprintf(local_id, sizeof(local_id), "c%016llx", (unsigned long long)fnv1a(url));
        if (hmap_get(c->by_local, local_id) == NULL && (d = doc_new(KIND_CACHED, url, local_id, body)) != NULL) {
            if (doc_insert(c, d) != 0) {
                doc_free(d);
                d = NULL;
            } else {
                d->hits = 0;
                persist = 1;
            }
        }
    }
    if (d != NULL) {
        touch(c, d);
        record_dep(rs, url);
    }
    if (evicted != NULL)
        evicted_url = evicted->url;
    pthread_mutex_unlock(&c->lock);

    if (evicted != NULL) {
        if (c->unpersist != NULL)
            c->unpersist(c->hook_ud, evicted_url);
        doc_free(evicted);
    }
    if (persist && c->persist != NULL)
        c->persist(c->hook_ud, url, LD_KIND_CACHED, body);
    *text = body; /* the caller parses our copy; the table holds its own */
    return 0;
}

/* ---- public API ------------------------------------------------------- */

int ld_cache_new(const struct ld_cache_opts *o, struct ld_cache **out)
{
    struct ld_cache_opts defaults = {0};
    struct ld_cache *c;
    const char *base;
    size_t blen;

    *out = NULL;
    if (o == NULL)
        o = &defaults;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return ERR_INTERNAL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ERR_NOMEM;
    base = o->hosted_base_url != NULL ? o->hosted_base_url : DEFAULT_BASE;
    blen = strlen(base);
    c->base = blen > 0 && base[blen - 1] == '/' ? strdup(base) : dup_printf("%s/", base);
    c->timeout_ms = o->fetch_timeout_ms > 0 ? o->fetch_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_doc = o->max_doc_bytes > 0 ? o->max_doc_bytes : DEFAULT_MAX_DOC;
    c->max_entries = o->max_entries > 0 ? o->max_entries : DEFAULT_MAX_ENTRIES;
    c->max_memo = o->max_memo > 0 ? o->max_memo : DEFAULT_MAX_MEMO;
    c->persist = o->persist;
    c->unpersist = o->unpersist;
    c->hook_ud = o->hook_ud;
    c->by_url = hmap_new(64);
    c->by_local = hmap_new(64);
    c->memo_map = hmap_new(64);
    c->created_at = tm_now_ms();
    if (c->base == NULL || c->by_url == NULL || c->by_local == NULL || c->memo_map == NULL ||
        pthread_mutex_init(&c->lock, NULL) != 0) {
        hmap_free(c->by_url, NULL);
        hmap_free(c->by_local, NULL);
        hmap_free(c->memo_map, NULL);
        free(c->base);
        free(c);
        return ERR_NOMEM;
    }
    (void)ld_core(); /* build the core now, not in the first request */
    *out = c;
    return 0;
}

void ld_cache_free(struct ld_cache *c)
{
    struct doc *d;

    if (c == NULL)
        return;
    memo_flush(c);
    d = c->first;
    while (d != NULL) {
        struct doc *next = d->next;

        doc_free(d);
        d = next;
    }
    hmap_free(c->by_url, NULL);
    hmap_free(c->by_local, NULL);
    hmap_free(c->memo_map, NULL);
    pthread_mutex_destroy(&c->lock);
    free(c->base);
    free(c);
}

static int mentions_core(const cJSON *context)
{
    const cJSON *item;

    if (cJSON_IsString(context))
        return ld_is_core_url(context->valuestring);
    if (cJSON_IsArray(context))
        cJSON_ArrayForEach(item, context)
            if (cJSON_IsString(item) && ld_is_core_url(item->valuestring))
                return 1;
    return 0;
}

int ld_cache_resolve(struct ld_cache *c, const cJSON *context, struct ld_ctx **out,
                     struct err *e)
{
    struct resolve_state rs = {.c = c};
    struct ld_loader loader = {cache_load, &rs};
    struct ld_ctx *ctx = NULL;
    struct memo *m = NULL;
    char *key = NULL;
    int rc = 0, uses_core;

    *out = NULL;
    if (context == NULL || cJSON_IsNull(context)) {
        *out = (struct ld_ctx *)ld_core();
        return 0;
    }
    uses_core = mentions_core(context);
    if (cJSON_IsString(context) && uses_core) {
        pthread_mutex_lock(&c->lock);
        hit_core(c);
        pthread_mutex_unlock(&c->lock);
        *out = (struct ld_ctx *)ld_core();
        return 0;
    }
    key = cJSON_PrintUnformatted(context);
    if (key == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (strlen(key) > MEMO_MAX_KEY) {
        free(key);
        key = NULL;
    }
    if (key != NULL) {
        pthread_mutex_lock(&c->lock);
        m = hmap_get(c->memo_map, key);
        if (m != NULL) {
            memo_unlink(c, m);
            memo_push_front(c, m);
            for (size_t i = 0; i < m->n_deps; i++) {
                struct doc *d = hmap_get(c->by_url, m->deps[i]);

                if (d != NULL)
                    touch(c, d);
            }
            if (m->uses_core)
                hit_core(c);
            ld_ctx_retain(m->ctx);
            *out = m->ctx;
        }
        pthread_mutex_unlock(&c->lock);
        if (*out != NULL) {
            free(key);
            return 0;
        }
    }

    rc = ld_ctx_build(context, &loader, &ctx, e);
    if (rc != 0)
        goto out;
    if (rs.oom) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (uses_core) {
        pthread_mutex_lock(&c->lock);
        hit_core(c);
        pthread_mutex_unlock(&c->lock);
    }
    if (key == NULL || ctx == ld_core()) {
        *out = ctx;
        ctx = NULL;
        goto out;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL || (rs.n_deps > 0 && (m->deps = calloc(rs.n_deps, sizeof(char *))) == NULL)) {
        free(m);
        m = NULL;
        *out = ctx; /* works, just not memoized */
        ctx = NULL;
        goto out;
    }
    m->key = key;
    key = NULL;
    m->ctx = ctx;
    m->uses_core = uses_core;
    for (size_t i = 0; i < rs.n_deps; i++) {
        m->deps[i] = rs.deps[i];
        rs.deps[i] = NULL;
    }
    m->n_deps = rs.n_deps;
    pthread_mutex_lock(&c->lock);
    {
        struct memo *other = hmap_get(c->memo_map, m->key);

        if (other != NULL || hmap_put(c->memo_map, m->key, m, NULL) < 0) {
            /* another thread memoized it meanwhile (or no memory): ours is
             * returned unmemoized */
            m->ctx = NULL;
            *out = ctx;
        } else {
            memo_push_front(c, m);
            ld_ctx_retain(ctx);
            *out = ctx;
            m = NULL;
            while (hmap_count(c->memo_map) > c->max_memo && c->memo_tail != NULL) {
                struct memo *old = c->memo_tail;

                memo_unlink(c, old);
                hmap_del(c->memo_map, old->key, NULL);
                memo_free(old);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    ctx = NULL;
out:
    memo_free(m);
    ld_ctx_release(ctx);
    for (size_t i = 0; i < rs.n_deps; i++)
        free(rs.deps[i]);
    free(key);
    return rc;
}

/* The localId a Hosted/Implicit URL carries: its last path segment. */
static const char *last_segment(const char *url)
{
    const char *slash = strrchr(url, '/');

    return slash != NULL ? slash + 1 : url;
}

int ld_cache_preload(struct ld_cache *c, const char *url, const char *kind, const char *text)
{
    int k = kind != NULL ? kind_parse(kind) : -1;
    char local_id[24];
    char *rebased = NULL;
    const char *lid, *u;
    struct doc *d, *old, *old2;
    int rc = 0;

    if (k < 0 || url == NULL || text == NULL || !is_context_doc(text))
        return ERR_BAD_DATA;
    if (k == KIND_CACHED) {
        if (!valid_url(url) || ld_is_core_url(url))
            return ERR_BAD_DATA;
        snprintf(local_id, sizeof(local_id), "c%016llx", (unsigned long long)fnv1a(url));
        lid = local_id;
        u = url;
    } else {
        lid = last_segment(url);
        if (lid[0] == '\0' || strlen(lid) > 128 || strchr(lid, '?') != NULL)
            return ERR_BAD_DATA;
        rebased = dup_printf("%s%s", c->base, lid);
        if (rebased == NULL)
            return ERR_NOMEM;
        u = rebased;
    }
    d = doc_new((enum kind)k, u, lid, text);
    if (d == NULL) {
        free(rebased);
        return ERR_NOMEM;
    }
    pthread_mutex_lock(&c->lock);
    old = hmap_get(c->by_local, lid);
    old2 = hmap_get(c->by_url, u);
    if (old != NULL)
        doc_unlink(c, old);
    if (old2 == old)
        old2 = NULL;
    else if (old2 != NULL)
        doc_unlink(c, old2);
    if (doc_insert(c, d) != 0) {
        rc = ERR_NOMEM;
        doc_free(d);
    }
    memo_flush(c);
    pthread_mutex_unlock(&c->lock);
    doc_free(old);
    doc_free(old2);
    free(rebased);
    return rc;
}

/* Validate a context value by building it with the cache's loader. */
static int check_context(struct ld_cache *c, const cJSON *context, struct err *e)
{
    struct ld_ctx *ctx = NULL;
    int rc = ld_cache_resolve(c, context, &ctx, e);

    ld_ctx_release(ctx);
    return rc;
}

/* Add a Hosted or ImplicitlyCreated document; lock not held on entry. */
static int add_local(struct ld_cache *c, enum kind kind, const char *local_id, const char *text,
                     char **url_out, struct err *e)
{
    char *url = dup_printf("%s%s", c->base, local_id);
    struct doc *d = NULL, *evicted = NULL, *existing;
    int rc = 0, persist = 1;

    if (url == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&c->lock);
    existing = hmap_get(c->by_local, local_id);
    if (existing != NULL && kind == KIND_IMPLICIT && strcmp(existing->text, text) == 0) {
        persist = 0; /* same implicit context again */
        goto unlock;
    }
    if (existing != NULL) {
        rc = err_set(e, ERR_EXISTS, "@context %s already exists", local_id);
        goto unlock;
    }
    if (make_room(c, &evicted) != 0) {
        rc = err_set(e, ERR_UNAVAILABLE, "too many @contexts held (at most %zu)", c->max_entries);
        goto unlock;
    }
    d = doc_new(kind, url, local_id, text);
    if (d == NULL || doc_insert(c, d) != 0) {
        doc_free(d);
        rc = err_set(e, ERR_NOMEM, "out of memory");
    }
unlock:
    pthread_mutex_unlock(&c->lock);
    if (evicted != NULL) {
        if (c->unpersist != NULL)
            c->unpersist(c->hook_ud, evicted->url);
        doc_free(evicted);
    }
    if (rc != 0) {
        free(url);
        return rc;
    }
    if (persist && c->persist != NULL)
        c->persist(c->hook_ud, url, KIND_NAMES[kind], text);
    if (url_out != NULL)
        *url_out = url;
    else
        free(url);
    return 0;
}

int ld_cache_host(struct ld_cache *c, const char *text, char **local_id_out, char **url_out,
                  struct err *e)
{
    cJSON *doc = NULL;
    const cJSON *context;
    unsigned char rnd[16];
    char local_id[33];
    int rc;

    *local_id_out = NULL;
    if (url_out != NULL)
        *url_out = NULL;
    if (strlen(text) > c->max_doc)
        return err_set(e, ERR_TOO_LARGE, "@context document larger than %zu bytes", c->max_doc);
    doc = cJSON_Parse(text);
    if (doc == NULL)
        return err_set(e, ERR_INVALID_REQUEST, "the @context document is not valid JSON");
    context = cJSON_GetObjectItemCaseSensitive(doc, "@context");
    if (!cJSON_IsObject(doc) || context == NULL) {
        rc = err_set(e, ERR_INVALID_REQUEST, "the body must be a JSON object with an @context member");
        goto out;
    }
    if ((rc = check_context(c, context, e)) != 0)
        goto out;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        rc = err_set(e, ERR_INTERNAL, "no randomness for a @context id");
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(local_id + 2 * i, 3, "%02x", rnd[i]);
    if ((rc = add_local(c, KIND_HOSTED, local_id, text, url_out, e)) != 0)
        goto out;
    *local_id_out = strdup(local_id);
    if (*local_id_out == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        if (url_out != NULL) {
            free(*url_out);
            *url_out = NULL;
        }
    }
out:
    cJSON_Delete(doc);
    return rc;
}

int ld_cache_implicit(struct ld_cache *c, const cJSON *context, char **url_out, struct err *e)
{
    cJSON *wrap = NULL;
    char *text = NULL;
    char local_id[24];
    int rc;

    *url_out = NULL;
    if (context == NULL)
        return err_set(e, ERR_BAD_DATA, "no @context to create");
    if ((rc = check_context(c, context, e)) != 0)
        return rc;
    wrap = cJSON_CreateObject();
    if (wrap == NULL || !cJSON_AddItemToObject(wrap, "@context", cJSON_Duplicate(context, 1)) ||
        (text = cJSON_PrintUnformatted(wrap)) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (strlen(text) > c->max_doc) {
        rc = err_set(e, ERR_TOO_LARGE, "@context larger than %zu bytes", c->max_doc);
        goto out;
    }
    snprintf(local_id, sizeof(local_id), "i%016llx", (unsigned long long)fnv1a(text));
    rc = add_local(c, KIND_IMPLICIT, local_id, text, url_out, e);
out:
    free(text);
    cJSON_Delete(wrap);
    return rc;
}

static cJSON *info_object(const char *url, const char *local_id, const char *kind,
                          int64_t created, int with_usage, int64_t last_usage, uint64_t hits)
{
    cJSON *o = cJSON_CreateObject();
    char created_s[TM_ISO_LEN], last_s[TM_ISO_LEN];

    if (o == NULL)
        return NULL;
    tm_format(created, created_s);
    if (cJSON_AddStringToObject(o, "URL", url) == NULL ||
        cJSON_AddStringToObject(o, "localId", local_id) == NULL ||
        cJSON_AddStringToObject(o, "kind", kind) == NULL ||
        cJSON_AddStringToObject(o, "createdAt", created_s) == NULL)
        goto fail;
    if (with_usage) {
        tm_format(last_usage, last_s);
        if (cJSON_AddStringToObject(o, "lastUsage", last_s) == NULL ||
            cJSON_AddNumberToObject(o, "numberOfHits", (double)hits) == NULL)
            goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static cJSON *core_info(struct ld_cache *c)
{
    return info_object(LD_CORE_URL, LD_CACHE_CORE_ID, LD_KIND_CACHED, c->created_at, 1,
                       c->core_hits > 0 ? c->core_last_usage : c->created_at, c->core_hits);
}

static cJSON *doc_info(const struct doc *d)
{
    return info_object(d->url, d->local_id, KIND_NAMES[d->kind], d->created_at,
                       d->kind != KIND_HOSTED, d->last_usage, d->hits);
}

int ld_cache_list(struct ld_cache *c, int details, const char *kind_filter, cJSON **out,
                  struct err *e)
{
    int k = -1;
    cJSON *arr;

    *out = NULL;
    if (kind_filter != NULL && kind_filter[0] != '\0' && (k = kind_parse(kind_filter)) < 0)
        return err_set(e, ERR_BAD_DATA, "invalid kind '%s': expected Cached, Hosted or ImplicitlyCreated",
                       kind_filter);
    arr = cJSON_CreateArray();
    if (arr == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&c->lock);
    if (k < 0 || k == KIND_CACHED) {
        cJSON *item = details ? core_info(c) : cJSON_CreateString(LD_CORE_URL);

        if (item == NULL || !cJSON_AddItemToArray(arr, item))
            goto nomem;
    }
    for (struct doc *d = c->first; d != NULL; d = d->next) {
        cJSON *item;

        if (k >= 0 && (int)d->kind != k)
            continue;
        item = details ? doc_info(d) : cJSON_CreateString(d->url);
        if (item == NULL || !cJSON_AddItemToArray(arr, item))
            goto nomem;
    }
    pthread_mutex_unlock(&c->lock);
    *out = arr;
    return 0;
nomem:
    pthread_mutex_unlock(&c->lock);
    cJSON_Delete(arr);
    return err_set(e, ERR_NOMEM, "out of memory");
}

int ld_cache_get(struct ld_cache *c, const char *id, int details, char **text_out,
                 cJSON **info_out, struct err *e)
{
    struct doc *d;
    int rc = 0;

    if (text_out != NULL)
        *text_out = NULL;
    if (info_out != NULL)
        *info_out = NULL;
    pthread_mutex_lock(&c->lock);
    if (is_core_id(id)) {
        if (details) {
            if (info_out != NULL && (*info_out = core_info(c)) == NULL)
                rc = err_set(e, ERR_NOMEM, "out of memory");
        } else if (text_out != NULL && (*text_out = strdup(ld_core_text())) == NULL) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
        }
        goto out;
    }
    d = find_doc(c, id);
    if (d == NULL) {
        rc = err_set(e, ERR_NOT_FOUND, "@context %s not found", id);
    } else if (details) {
        if (info_out != NULL && (*info_out = doc_info(d)) == NULL)
            rc = err_set(e, ERR_NOMEM, "out of memory");
    } else if (d->kind == KIND_CACHED) {
        rc = err_set(e, ERR_NOT_SUPPORTED,
                     "@context %s is a Cached copy and is not served; use details=true", id);
    } else {
        touch(c, d);
        if (text_out != NULL && (*text_out = strdup(d->text)) == NULL)
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int reload(struct ld_cache *c, const char *id, struct err *e)
{
    struct doc *d;
    char *url = NULL, *body = NULL, *copy = NULL;
    int rc;

    pthread_mutex_lock(&c->lock);
    d = find_doc(c, id);
    if (d == NULL || d->kind != KIND_CACHED) {
        pthread_mutex_unlock(&c->lock);
        return err_set(e, ERR_BAD_DATA, "reload is only possible for a Cached @context; %s is %s", id,
                       d == NULL ? "unknown" : KIND_NAMES[d->kind]);
    }
    url = strdup(d->url);
    pthread_mutex_unlock(&c->lock);
    if (url == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = fetch(c, url, &body, e)) != 0)
        goto out;
    if ((copy = strdup(body)) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&c->lock);
    d = hmap_get(c->by_url, url);
    if (d != NULL) { /* still there: replace the copy */
        free(d->text);
        d->text = copy;
        copy = NULL;
    } else {
        rc = err_set(e, ERR_NOT_FOUND, "@context %s was deleted during the reload", id);
    }
    memo_flush(c);
    pthread_mutex_unlock(&c->lock);
    if (rc == 0 && c->persist != NULL)
        c->persist(c->hook_ud, url, LD_KIND_CACHED, body);
out:
    free(copy);
    free(body);
    free(url);
    return rc;
}

int ld_cache_delete(struct ld_cache *c, const char *id, int reload_it, struct err *e)
{
    struct doc *d;

    if (is_core_id(id))
        return err_set(e, ERR_BAD_DATA, "the core @context cannot be deleted or reloaded");
    if (reload_it)
        return reload(c, id, e);
    pthread_mutex_lock(&c->lock);
    d = find_doc(c, id);
    if (d != NULL) {
        doc_unlink(c, d);
        memo_flush(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (d == NULL)
        return err_set(e, ERR_NOT_FOUND, "@context %s not found", id);
    if (c->unpersist != NULL)
        c->unpersist(c->hook_ud, d->url);
    doc_free(d);
    return 0;
}
