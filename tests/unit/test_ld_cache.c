/*
 * test_ld_cache.c - unit tests for src/ld/cache.c against a real HTTP server
 * on loopback: a small server thread started by the test
 * (127.0.0.1, port 0) that serves fixed documents, counts requests per path
 * and can answer 404, slowly, too much, or not JSON.
 * Link: -lcurl -lpthread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ld/cache.h"
#include "ld/ld.h"
#include "util/time.h"

#define BASE "http://127.0.0.1:1/ngsi-ld/v1/jsonldContexts/"

/* ---- the loopback server ---------------------------------------------- */

enum { N_PATHS = 16 };

static const char *const PATHS[N_PATHS] = {
    "/ctx.jsonld", "/nested.jsonld", "/missing", "/slow.jsonld", "/big.jsonld",
    "/big-nolen.jsonld", "/notjson", "/noctx.jsonld", "/mutable.jsonld", "/flaky.jsonld",
    "/redirect", "/a.jsonld", "/b.jsonld", "/c.jsonld", "/other", NULL,
};

struct server {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    atomic_int count[N_PATHS];
    char last_accept[256];
    pthread_mutex_t lock; /* last_accept */
};

static struct server srv;

static int path_index(const char *path)
{
    for (int i = 0; PATHS[i] != NULL; i++)
        if (strcmp(PATHS[i], path) == 0)
            return i;
    return N_PATHS - 1;
}

static int count_of(const char *path)
{
    return atomic_load(&srv.count[path_index(path)]);
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *body, int with_length, const char *extra)
{
    char head[512];
    size_t blen = strlen(body);

    if (with_length)
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: application/ld+json\r\nContent-Length: %zu\r\n"
                 "%sConnection: close\r\n\r\n",
                 status, blen, extra);
    else
        snprintf(head, sizeof(head),
                 "HTTP/1.0 %d X\r\nContent-Type: application/ld+json\r\n%sConnection: close\r\n\r\n",
                 status, extra);
    send_all(fd, head, strlen(head));
    send_all(fd, body, blen);
}

static char *big_body(size_t n)
{
    char *s = malloc(n + 64);

    strcpy(s, "{\"@context\": {\"pad\": \"");
    memset(s + strlen(s), 'x', n);
    s[n + 22] = '\0';
    strcat(s, "\"}}");
    return s;
}

static void handle(int fd)
{
    char req[8192], path[256] = "", *accept;
    size_t len = 0;
    int idx, n;

    while (len < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + len, sizeof(req) - 1 - len, 0);

        if (r <= 0)
            break;
        len += (size_t)r;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    req[len] = '\0';
    if (sscanf(req, "GET %255s", path) != 1)
        return;
    accept = strcasestr(req, "\r\nAccept:");
    if (accept != NULL) {
        pthread_mutex_lock(&srv.lock);
        snprintf(srv.last_accept, sizeof(srv.last_accept), "%.*s",
                 (int)strcspn(accept + 2, "\r"), accept + 2);
        pthread_mutex_unlock(&srv.lock);
    }
    idx = path_index(path);
    n = atomic_fetch_add(&srv.count[idx], 1) + 1;
    switch (idx) {
    case 0:
        respond(fd, 200, "{\"@context\": {\"sensor\": \"http://sensors.org/sensor\","
                         " \"city\": \"http://city.org/\"}}", 1, "");
        break;
    case 1:
        respond(fd, 200, "{\"@context\": [\"/ctx.jsonld\", {\"extra\": \"http://ex.org/extra\"}]}", 1, "");
        break;
    case 3: {
        struct timespec ts = {1, 500 * 1000 * 1000};

        nanosleep(&ts, NULL);
        respond(fd, 200, "{\"@context\": {}}", 1, "");
        break;
    }
    case 4:
    case 5: {
        char *b = big_body(300 * 1024);

        respond(fd, 200, b, idx == 4, "");
        free(b);
        break;
    }
    case 6:
        respond(fd, 200, "hello, world", 1, "");
        break;
    case 7:
        respond(fd, 200, "{\"a\": 1}", 1, "");
        break;
    case 8: {
        char b[128];

        snprintf(b, sizeof(b), "{\"@context\": {\"m\": \"http://m.org/v%d\"}}", n);
        respond(fd, 200, b, 1, "");
        break;
    }
    case 9:
        if (n == 1)
            respond(fd, 200, "{\"@context\": {\"f\": \"http://f.org/f\"}}", 1, "");
        else
            respond(fd, 500, "oops", 1, "");
        break;
    case 10:
        respond(fd, 302, "", 1, "Location: /ctx.jsonld\r\n");
        break;
    case 11:
    case 12:
    case 13: {
        char b[128];

        snprintf(b, sizeof(b), "{\"@context\": {\"t%c\": \"http://t.org/%c\"}}", path[1], path[1]);
        respond(fd, 200, b, 1, "");
        break;
    }
    default:
        respond(fd, 404, "{\"title\": \"not found\"}", 1, "");
    }
}

/* One detached thread per connection, so a slow answer blocks nobody else. */
static void *connection(void *arg)
{
    int fd = (int)(intptr_t)arg;

    handle(fd);
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {srv.fd, POLLIN, 0};
        pthread_t t;
        int fd;

        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept(srv.fd, NULL, NULL);
        if (fd < 0)
            continue;
        if (pthread_create(&t, NULL, connection, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static int server_start(void **state)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int one = 1;

    (void)state;
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.lock, NULL);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv.fd < 0)
        return -1;
    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(srv.fd, 16) != 0 ||
        getsockname(srv.fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    return pthread_create(&srv.thread, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int server_stop(void **state)
{
    (void)state;
    atomic_store(&srv.stop, 1);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    pthread_mutex_destroy(&srv.lock);
    return 0;
}

/* A loopback port nothing listens on. */
static int dead_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- hooks and helpers ------------------------------------------------ */

struct hooks {
    int n_persist, n_unpersist;
    char url[512], kind[32], unpersisted[512];
    char *text;
};

static void on_persist(void *ud, const char *url, const char *kind, const char *text)
{
    struct hooks *h = ud;

    h->n_persist++;
    snprintf(h->url, sizeof(h->url), "%s", url);
    snprintf(h->kind, sizeof(h->kind), "%s", kind);
    free(h->text);
    h->text = strdup(text);
}

static void on_unpersist(void *ud, const char *url)
{
    struct hooks *h = ud;

    h->n_unpersist++;
    snprintf(h->unpersisted, sizeof(h->unpersisted), "%s", url);
}

static struct ld_cache *new_cache(struct hooks *h, size_t max_entries, size_t max_memo)
{
    struct ld_cache_opts o = {
        .hosted_base_url = "http://127.0.0.1:1/ngsi-ld/v1/jsonldContexts", /* '/' appended */
        .fetch_timeout_ms = 400,
        .max_doc_bytes = 64 * 1024,
        .max_entries = max_entries,
        .max_memo = max_memo,
        .persist = on_persist,
        .unpersist = on_unpersist,
        .hook_ud = h,
    };
    struct ld_cache *c = NULL;

    memset(h, 0, sizeof(*h));
    assert_int_equal(ld_cache_new(&o, &c), 0);
    assert_non_null(c);
    return c;
}

static void free_cache(struct ld_cache *c, struct hooks *h)
{
    ld_cache_free(c);
    free(h->text);
    h->text = NULL;
}

static char *url_of(const char *path)
{
    char *u = malloc(128);

    snprintf(u, 128, "http://127.0.0.1:%d%s", srv.port, path);
    return u;
}

/* Resolve a JSON @context text; returns rc, *ctx set on success. */
static int resolve_json(struct ld_cache *c, const char *json, struct ld_ctx **ctx, struct err *e)
{
    cJSON *v = cJSON_Parse(json);
    int rc;

    assert_non_null(v);
    err_clear(e);
    rc = ld_cache_resolve(c, v, ctx, e);
    cJSON_Delete(v);
    return rc;
}

static int resolve_url(struct ld_cache *c, const char *url, struct ld_ctx **ctx, struct err *e)
{
    cJSON *v = cJSON_CreateString(url);
    int rc;

    err_clear(e);
    rc = ld_cache_resolve(c, v, ctx, e);
    cJSON_Delete(v);
    return rc;
}

static void assert_expand(const struct ld_ctx *ctx, const char *term, const char *want)
{
    char *got = ld_expand(ctx, term);

    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("ld_expand(%s) = %s, want %s", term, got, want);
    free(got);
}

/* The listing object for url in a details listing, or NULL. */
static const cJSON *find_info(const cJSON *list, const char *url)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, list) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(item, "URL");

        if (cJSON_IsString(u) && strcmp(u->valuestring, url) == 0)
            return item;
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------ */

static void test_fetch_once_then_cached(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char *url = url_of("/ctx.jsonld");
    char json[256];
    struct ld_ctx *a = NULL, *b = NULL, *d = NULL;
    struct err e = {0};
    cJSON *list = NULL;
    const cJSON *info;
    int before = count_of("/ctx.jsonld");

    (void)state;
    assert_int_equal(resolve_url(c, url, &a, &e), 0);
    assert_expand(a, "sensor", "http://sensors.org/sensor");
    assert_expand(a, "city:x", "http://city.org/x");
    assert_expand(a, "location", "https://uri.etsi.org/ngsi-ld/location");
    assert_int_equal(count_of("/ctx.jsonld"), before + 1);
    pthread_mutex_lock(&srv.lock);
    assert_non_null(strstr(srv.last_accept, "application/ld+json"));
    pthread_mutex_unlock(&srv.lock);
    assert_int_equal(h.n_persist, 1);
    assert_string_equal(h.url, url);
    assert_string_equal(h.kind, "Cached");
    assert_non_null(strstr(h.text, "http://sensors.org/sensor"));

    /* same value: memoized, same active context */
    assert_int_equal(resolve_url(c, url, &b, &e), 0);
    assert_ptr_equal(a, b);
    /* another value using the same document: built, document from the cache */
    snprintf(json, sizeof(json), "[\"%s\", {\"x\": \"http://x.org/x\"}, \"%s\"]", url, LD_CORE_URL);
    assert_int_equal(resolve_json(c, json, &d, &e), 0);
    assert_expand(d, "x", "http://x.org/x");
    assert_expand(d, "sensor", "http://sensors.org/sensor");
    assert_int_equal(count_of("/ctx.jsonld"), before + 1);
    assert_int_equal(h.n_persist, 1);

    assert_int_equal(ld_cache_list(c, 1, NULL, &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 2); /* core + ctx.jsonld */
    info = find_info(list, url);
    assert_non_null(info);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "kind")->valuestring, "Cached");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(info, "numberOfHits")->valuedouble, 3);
    assert_true(tm_is_datetime(cJSON_GetObjectItemCaseSensitive(info, "createdAt")->valuestring));
    assert_true(tm_is_datetime(cJSON_GetObjectItemCaseSensitive(info, "lastUsage")->valuestring));
    info = find_info(list, LD_CORE_URL);
    assert_non_null(info);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "localId")->valuestring, LD_CACHE_CORE_ID);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(info, "numberOfHits")->valuedouble, 1);
    cJSON_Delete(list);

    ld_ctx_release(a);
    ld_ctx_release(b);
    ld_ctx_release(d);
    free_cache(c, &h);
    free(url);
}

static void test_nested_and_redirect(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char *nested = url_of("/nested.jsonld"), *redirect = url_of("/redirect");
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    int before = count_of("/ctx.jsonld");

    (void)state;
    assert_int_equal(resolve_url(c, nested, &ctx, &e), 0);
    assert_expand(ctx, "extra", "http://ex.org/extra");
    assert_expand(ctx, "sensor", "http://sensors.org/sensor"); /* "/ctx.jsonld" resolved */
    assert_int_equal(count_of("/ctx.jsonld"), before + 1);
    assert_int_equal(h.n_persist, 2);
    ld_ctx_release(ctx);

    assert_int_equal(resolve_url(c, redirect, &ctx, &e), 0);
    assert_expand(ctx, "sensor", "http://sensors.org/sensor");
    ld_ctx_release(ctx);
    free_cache(c, &h);
    free(nested);
    free(redirect);
}

static void expect_fetch_error(struct ld_cache *c, const char *url, int code, const char *part)
{
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    int rc = resolve_url(c, url, &ctx, &e);

    if (rc != code)
        fail_msg("resolve %s: %d (%s), want %d", url, rc, e.detail, code);
    assert_null(ctx);
    if (strstr(e.detail, part) == NULL)
        fail_msg("detail '%s' lacks '%s'", e.detail, part);
}

static void test_fetch_errors(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char dead[64], *u;
    cJSON *list = NULL;
    struct err e = {0};
    int64_t t0;

    (void)state;
    u = url_of("/missing");
    expect_fetch_error(c, u, ERR_LD_CONTEXT, "HTTP status 404");
    free(u);
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/ctx.jsonld", dead_port());
    expect_fetch_error(c, dead, ERR_LD_CONTEXT, "cannot fetch @context");
    u = url_of("/slow.jsonld");
    t0 = tm_mono_us();
    expect_fetch_error(c, u, ERR_LD_CONTEXT, "Timeout");
    assert_true(tm_mono_us() - t0 < 1200 * 1000); /* gave up at ~400 ms */
    free(u);
    u = url_of("/big.jsonld");
    expect_fetch_error(c, u, ERR_LD_CONTEXT, "larger than 65536 bytes");
    free(u);
    u = url_of("/big-nolen.jsonld");
    expect_fetch_error(c, u, ERR_LD_CONTEXT, "larger than 65536 bytes");
    free(u);
    u = url_of("/notjson");
    expect_fetch_error(c, u, ERR_LD_CONTEXT, "not a JSON-LD context document");
    free(u);
    u = url_of("/noctx.jsonld");
    expect_fetch_error(c, u, ERR_LD_CONTEXT, "not a JSON-LD context document");
    free(u);
    expect_fetch_error(c, "ftp://127.0.0.1/x", ERR_BAD_DATA, "not an http(s) URL");
    expect_fetch_error(c, BASE "nosuch", ERR_LD_CONTEXT, "not hosted here");

    /* nothing was cached or persisted */
    assert_int_equal(h.n_persist, 0);
    assert_int_equal(ld_cache_list(c, 0, NULL, &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring, LD_CORE_URL);
    cJSON_Delete(list);
    free_cache(c, &h);
}

static void test_preload_offline(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char dead[64];
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    char *text = NULL;
    cJSON *list = NULL;

    (void)state;
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/ctx.jsonld", dead_port());
    assert_int_equal(ld_cache_preload(c, dead, "Cached", "{\"@context\": {\"p\": \"http://p.org/p\"}}"), 0);
    assert_int_equal(ld_cache_preload(c, "http://old-host:9/ngsi-ld/v1/jsonldContexts/abc123",
                                      "Hosted", "{\"@context\": {\"hh\": \"http://hh.org/\"}}"),
                     0);
    assert_int_equal(ld_cache_preload(c, dead, "Bogus", "{\"@context\": {}}"), ERR_BAD_DATA);
    assert_int_equal(ld_cache_preload(c, dead, "Cached", "{\"no\": 1}"), ERR_BAD_DATA);
    assert_int_equal(ld_cache_preload(c, dead, "Cached", "not json"), ERR_BAD_DATA);
    assert_int_equal(ld_cache_preload(c, "ftp://x/y", "Cached", "{\"@context\": {}}"), ERR_BAD_DATA);
    assert_int_equal(h.n_persist, 0); /* preloading never persists */

    assert_int_equal(resolve_url(c, dead, &ctx, &e), 0); /* offline: no fetch */
    assert_expand(ctx, "p", "http://p.org/p");
    ld_ctx_release(ctx);
    assert_int_equal(resolve_url(c, BASE "abc123", &ctx, &e), 0); /* re-based */
    assert_expand(ctx, "hh:x", "http://hh.org/x");
    ld_ctx_release(ctx);
    assert_int_equal(ld_cache_get(c, "abc123", 0, &text, NULL, &e), 0);
    assert_string_equal(text, "{\"@context\": {\"hh\": \"http://hh.org/\"}}");
    free(text);
    assert_int_equal(ld_cache_list(c, 0, "Hosted", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring, BASE "abc123");
    cJSON_Delete(list);
    /* preloading the same URL again replaces the document */
    assert_int_equal(ld_cache_preload(c, dead, "Cached", "{\"@context\": {\"p\": \"http://p.org/p2\"}}"), 0);
    assert_int_equal(resolve_url(c, dead, &ctx, &e), 0);
    assert_expand(ctx, "p", "http://p.org/p2");
    ld_ctx_release(ctx);
    assert_int_equal(ld_cache_list(c, 0, "Cached", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 2); /* core + one */
    cJSON_Delete(list);
    free_cache(c, &h);
}

static void test_host_list_get_delete(void **state)
{
    static const char DOC[] = "{\"@context\": {\"h\": \"http://h.org/h\"}}";
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char *id = NULL, *url = NULL, *text = NULL, *cached = url_of("/ctx.jsonld");
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    cJSON *list = NULL, *info = NULL;
    char big[70 * 1024];

    (void)state;
    assert_int_equal(ld_cache_host(c, DOC, &id, &url, &e), 0);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strncmp(url, BASE, strlen(BASE)), 0);
    assert_string_equal(url + strlen(BASE), id);
    assert_int_equal(h.n_persist, 1);
    assert_string_equal(h.kind, "Hosted");
    assert_string_equal(h.url, url);
    assert_string_equal(h.text, DOC);

    assert_int_equal(resolve_url(c, url, &ctx, &e), 0); /* local, no fetch */
    assert_expand(ctx, "h", "http://h.org/h");
    ld_ctx_release(ctx);
    snprintf(big, sizeof(big), "http://broker.example:1026/ngsi-ld/v1/jsonldContexts/%s", id);
    assert_int_equal(resolve_url(c, big, &ctx, &e), 0); /* another name for us */
    assert_expand(ctx, "h", "http://h.org/h");
    ld_ctx_release(ctx);
    assert_int_equal(ld_cache_get(c, id, 0, &text, NULL, &e), 0);
    assert_string_equal(text, DOC);
    free(text);
    assert_int_equal(ld_cache_get(c, url, 0, &text, NULL, &e), 0);
    assert_string_equal(text, DOC);
    free(text);
    assert_int_equal(ld_cache_get(c, id, 1, NULL, &info, &e), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "URL")->valuestring, url);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "localId")->valuestring, id);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "kind")->valuestring, "Hosted");
    assert_null(cJSON_GetObjectItemCaseSensitive(info, "numberOfHits"));
    cJSON_Delete(info);

    /* a Cached document: listed, details served, content not (5.13.4) */
    assert_int_equal(resolve_url(c, cached, &ctx, &e), 0);
    ld_ctx_release(ctx);
    err_clear(&e);
    assert_int_equal(ld_cache_get(c, cached, 0, &text, NULL, &e), ERR_NOT_SUPPORTED);
    assert_null(text);
    assert_int_equal(ld_cache_get(c, cached, 1, NULL, &info, &e), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "kind")->valuestring, "Cached");
    cJSON_Delete(info);

    assert_int_equal(ld_cache_list(c, 0, NULL, &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 3);
    assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring, LD_CORE_URL);
    assert_string_equal(cJSON_GetArrayItem(list, 1)->valuestring, url);
    assert_string_equal(cJSON_GetArrayItem(list, 2)->valuestring, cached);
    cJSON_Delete(list);
    assert_int_equal(ld_cache_list(c, 1, "Hosted", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
    assert_int_equal(ld_cache_list(c, 0, "Cached", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 2);
    cJSON_Delete(list);
    assert_int_equal(ld_cache_list(c, 0, "ImplicitlyCreated", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    err_clear(&e);
    assert_int_equal(ld_cache_list(c, 0, "Weird", &list, &e), ERR_BAD_DATA);
    assert_null(list);

    /* the core context */
    assert_int_equal(ld_cache_get(c, LD_CORE_URL, 0, &text, NULL, &e), 0);
    assert_string_equal(text, ld_core_text());
    free(text);
    assert_int_equal(ld_cache_get(c, LD_CACHE_CORE_ID, 1, NULL, &info, &e), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(info, "kind")->valuestring, "Cached");
    cJSON_Delete(info);
    err_clear(&e);
    assert_int_equal(ld_cache_delete(c, LD_CORE_URL, 0, &e), ERR_BAD_DATA);

    /* bad hosting requests */
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, "not json", &text, NULL, &e), ERR_INVALID_REQUEST);
    assert_null(text);
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, "[1]", &text, NULL, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, "{\"a\": 1}", &text, NULL, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, "{\"@context\": 5}", &text, NULL, &e), ERR_BAD_DATA);
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, "{\"@context\": {\"a\": {\"@id\": 3}}}", &text, NULL, &e),
                     ERR_BAD_DATA);
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, "{\"@context\": \"" BASE "nosuch\"}", &text, NULL, &e),
                     ERR_LD_CONTEXT);
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"@context\": {}}", 16);
    err_clear(&e);
    assert_int_equal(ld_cache_host(c, big, &text, NULL, &e), ERR_TOO_LARGE);
    assert_int_equal(h.n_persist, 2); /* the hosted one and ctx.jsonld */

    /* delete */
    err_clear(&e);
    assert_int_equal(ld_cache_delete(c, id, 1, &e), ERR_BAD_DATA); /* reload of a Hosted one */
    err_clear(&e);
    assert_int_equal(ld_cache_delete(c, "nosuch", 1, &e), ERR_BAD_DATA);
    assert_int_equal(ld_cache_delete(c, id, 0, &e), 0);
    assert_int_equal(h.n_unpersist, 1);
    assert_string_equal(h.unpersisted, url);
    err_clear(&e);
    assert_int_equal(ld_cache_get(c, id, 0, &text, NULL, &e), ERR_NOT_FOUND);
    err_clear(&e);
    assert_int_equal(ld_cache_delete(c, id, 0, &e), ERR_NOT_FOUND);
    err_clear(&e);
    assert_int_equal(resolve_url(c, url, &ctx, &e), ERR_LD_CONTEXT); /* memo dropped too */
    assert_null(ctx);

    free_cache(c, &h);
    free(id);
    free(url);
    free(cached);
}

static void test_reload_and_delete_cached(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char *mut = url_of("/mutable.jsonld"), *flaky = url_of("/flaky.jsonld");
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    int n0 = count_of("/mutable.jsonld");
    char want[64];

    (void)state;
    assert_int_equal(resolve_url(c, mut, &ctx, &e), 0);
    snprintf(want, sizeof(want), "http://m.org/v%d", n0 + 1);
    assert_expand(ctx, "m", want);
    ld_ctx_release(ctx);
    assert_int_equal(ld_cache_delete(c, mut, 1, &e), 0); /* reload: fetched again */
    assert_int_equal(count_of("/mutable.jsonld"), n0 + 2);
    assert_int_equal(h.n_persist, 2);
    assert_string_equal(h.url, mut);
    assert_int_equal(resolve_url(c, mut, &ctx, &e), 0);
    snprintf(want, sizeof(want), "http://m.org/v%d", n0 + 2);
    assert_expand(ctx, "m", want); /* memo dropped, new document used */
    ld_ctx_release(ctx);
    assert_int_equal(count_of("/mutable.jsonld"), n0 + 2);

    /* a failing reload keeps the old copy */
    assert_int_equal(resolve_url(c, flaky, &ctx, &e), 0);
    ld_ctx_release(ctx);
    err_clear(&e);
    assert_int_equal(ld_cache_delete(c, flaky, 1, &e), ERR_LD_CONTEXT);
    assert_non_null(strstr(e.detail, "HTTP status 500"));
    assert_int_equal(resolve_url(c, flaky, &ctx, &e), 0);
    assert_expand(ctx, "f", "http://f.org/f");
    ld_ctx_release(ctx);

    /* deleting a Cached document: unpersisted, fetched again on next use */
    assert_int_equal(ld_cache_delete(c, mut, 0, &e), 0);
    assert_int_equal(h.n_unpersist, 1);
    assert_string_equal(h.unpersisted, mut);
    assert_int_equal(resolve_url(c, mut, &ctx, &e), 0);
    assert_int_equal(count_of("/mutable.jsonld"), n0 + 3);
    ld_ctx_release(ctx);
    free_cache(c, &h);
    free(mut);
    free(flaky);
}

static void test_implicit(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    char *ctxurl = url_of("/ctx.jsonld"), *u1 = NULL, *u2 = NULL, *text = NULL;
    char json[256];
    cJSON *v, *list = NULL, *info = NULL;
    struct ld_ctx *ctx = NULL;
    struct err e = {0};

    (void)state;
    snprintf(json, sizeof(json), "[\"%s\", {\"i\": \"http://i.org/i\"}]", ctxurl);
    v = cJSON_Parse(json);
    assert_int_equal(ld_cache_implicit(c, v, &u1, &e), 0);
    assert_int_equal(strncmp(u1, BASE, strlen(BASE)), 0);
    assert_int_equal(h.n_persist, 2); /* ctx.jsonld (Cached) then the implicit one */
    assert_string_equal(h.kind, "ImplicitlyCreated");
    assert_int_equal(ld_cache_implicit(c, v, &u2, &e), 0);
    assert_string_equal(u1, u2); /* same value, same document */
    assert_int_equal(h.n_persist, 2);
    assert_int_equal(ld_cache_get(c, u1, 0, &text, NULL, &e), 0);
    snprintf(json, sizeof(json), "{\"@context\":[\"%s\",{\"i\":\"http://i.org/i\"}]}", ctxurl);
    assert_string_equal(text, json);
    free(text);
    assert_int_equal(resolve_url(c, u1, &ctx, &e), 0);
    assert_expand(ctx, "i", "http://i.org/i");
    assert_expand(ctx, "sensor", "http://sensors.org/sensor");
    ld_ctx_release(ctx);
    assert_int_equal(ld_cache_list(c, 1, "ImplicitlyCreated", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    info = cJSON_GetArrayItem(list, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(info, "numberOfHits")->valuedouble, 2);
    cJSON_Delete(list);
    cJSON_Delete(v);
    free(u2);
    u2 = NULL;
    v = cJSON_Parse("{\"a\": 7}");
    err_clear(&e);
    assert_int_equal(ld_cache_implicit(c, v, &u2, &e), ERR_BAD_DATA);
    assert_null(u2);
    cJSON_Delete(v);
    free_cache(c, &h);
    free(u1);
    free(ctxurl);
}

static void test_eviction_and_memo_lru(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 2, 1);
    char *a = url_of("/a.jsonld"), *b = url_of("/b.jsonld"), *cc = url_of("/c.jsonld");
    struct ld_ctx *x1 = NULL, *x2 = NULL, *x3 = NULL;
    struct err e = {0};
    cJSON *list = NULL;
    int na = count_of("/a.jsonld");

    (void)state;
    assert_int_equal(resolve_url(c, a, &x1, &e), 0);
    assert_int_equal(resolve_url(c, a, &x2, &e), 0);
    assert_ptr_equal(x1, x2); /* memoized */
    ld_ctx_release(x2);
    assert_int_equal(resolve_url(c, b, &x2, &e), 0); /* memo holds 1: a is dropped */
    ld_ctx_release(x2);
    assert_int_equal(resolve_url(c, a, &x3, &e), 0);
    assert_ptr_not_equal(x1, x3); /* rebuilt, document still cached */
    assert_expand(x3, "ta", "http://t.org/a");
    assert_expand(x1, "ta", "http://t.org/a"); /* the old one is still valid */
    assert_int_equal(count_of("/a.jsonld"), na + 1);
    ld_ctx_release(x1);
    ld_ctx_release(x3);
    /* third document: the least recently used (b) is evicted */
    assert_int_equal(resolve_url(c, cc, &x1, &e), 0);
    ld_ctx_release(x1);
    assert_int_equal(h.n_unpersist, 1);
    assert_string_equal(h.unpersisted, b);
    assert_int_equal(ld_cache_list(c, 0, "Cached", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 3); /* core, a, c */
    cJSON_Delete(list);
    free_cache(c, &h);
    free(a);
    free(b);
    free(cc);
}

struct worker {
    struct ld_cache *c;
    int failures;
};

static void *resolve_worker(void *p)
{
    struct worker *w = p;
    char *u = url_of("/ctx.jsonld");
    char json[256];

    snprintf(json, sizeof(json), "[\"%s\", {\"w\": \"http://w.org/w\"}]", u);
    for (int i = 0; i < 50; i++) {
        struct ld_ctx *ctx = NULL;
        struct err e = {0};
        cJSON *v = cJSON_Parse(i % 2 ? json : "{\"q2\": \"http://q.org/\"}");
        char *x;

        if (ld_cache_resolve(w->c, v, &ctx, &e) != 0) {
            w->failures++;
        } else {
            x = ld_expand(ctx, i % 2 ? "sensor" : "q2");
            if (x == NULL || strcmp(x, i % 2 ? "http://sensors.org/sensor" : "http://q.org/") != 0)
                w->failures++;
            free(x);
        }
        ld_ctx_release(ctx);
        cJSON_Delete(v);
    }
    free(u);
    return NULL;
}

static void test_threads(void **state)
{
    struct hooks h;
    struct ld_cache *c = new_cache(&h, 0, 0);
    pthread_t th[8];
    struct worker w[8];

    (void)state;
    for (int i = 0; i < 8; i++) {
        w[i].c = c;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, resolve_worker, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    free_cache(c, &h);
}

static void test_defaults_and_null(void **state)
{
    struct ld_cache *c = NULL;
    struct ld_ctx *ctx = (struct ld_ctx *)1;
    struct err e = {0};
    cJSON *list = NULL;

    (void)state;
    assert_int_equal(ld_cache_new(NULL, &c), 0);
    assert_int_equal(ld_cache_resolve(c, NULL, &ctx, &e), 0);
    assert_ptr_equal(ctx, ld_core());
    assert_int_equal(resolve_url(c, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", &ctx, &e), 0);
    assert_ptr_equal(ctx, ld_core());
    assert_int_equal(ld_cache_list(c, 0, "", &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
    ld_cache_free(c);
    ld_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_once_then_cached),
        cmocka_unit_test(test_nested_and_redirect),
        cmocka_unit_test(test_fetch_errors),
        cmocka_unit_test(test_preload_offline),
        cmocka_unit_test(test_host_list_get_delete),
        cmocka_unit_test(test_reload_and_delete_cached),
        cmocka_unit_test(test_implicit),
        cmocka_unit_test(test_eviction_and_memo_lru),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_defaults_and_null),
    };

    return cmocka_run_group_tests(tests, server_start, server_stop);
}
