/*
 * server.c - libmicrohttpd glue: request lifecycle, body limits, routing,
 * content negotiation, suspend/resume, responses.
 *
 * Lifecycle of a connection's request (MHD calls on_request repeatedly):
 *   1st call    allocate struct req (answering here would make MHD 0.9.75
 *               close keep-alive connections), check Content-Length
 *   body calls  append to a capped buffer (413 beyond max_body)
 *   last call   route, negotiate, run the handler; HTTP_ASYNC suspends
 *   resumed     run r->cont, queue the response
 * on_completed frees the request. URL unescaping is done here, per path
 * segment and per query value, so an encoded '/' in an entity id stays
 * inside its segment.
 *
 * Streams (http.h): the response is MHD_create_response_from_callback with
 * stream_read as the reader. Locks: stream_mu (the server's list of open
 * streams) before a stream's mu before susp_mu. A stream whose buffer is
 * empty suspends its connection inside the reader (the only place MHD
 * allows it besides the access handler) and counts in n_suspended; the
 * writer that refills it resumes it and uncounts it, under the stream's
 * mu, so a resume never precedes its suspend. Once the server is closing,
 * the reader ends the stream instead of suspending, and
 * http_close_suspensions resumes every suspended stream.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json/json.h"
#include "ld/ld.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/uri.h"

struct http_server {
    struct MHD_Daemon *d;
    struct http_config conf;
    int port;
    pthread_mutex_t susp_mu;
    int n_suspended; /* requests suspended and not yet answered */
    int closing;     /* no new suspensions */
    pthread_mutex_t stream_mu;
    struct http_stream *streams; /* open streams (responses queued) */
};

#define STREAM_CAP_DEFAULT ((size_t)1 << 20)

struct http_stream {
    pthread_mutex_t mu;
    int refs;                /* atomic */
    struct http_server *srv; /* set while the response is queued */
    struct MHD_Connection *conn;
    char *buf; /* pending bytes: buf[off, len) */
    size_t off, len, alloc, cap;
    int suspended;                   /* suspended by stream_read, counted */
    int closed;                      /* no more writes; end after the buffer */
    int gone;                        /* MHD has finished with the response */
    struct http_stream *prev, *next; /* srv->streams */
};

enum { RS_NEW = 0, RS_BODY, RS_SUSPENDED, RS_RESUMED, RS_DONE };

struct strnode {
    struct strnode *next;
    char s[];
};

struct req_priv {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct buf body;
    int state;
    int too_large;
    char *path_copy;
    struct strnode *strings; /* decoded values owned by the request */
    int counted;             /* counted in n_suspended */
    int status;
    char *resp_body;
    size_t resp_len;
    const char *resp_type;
    char *hdr_name[REQ_MAX_HEADERS], *hdr_value[REQ_MAX_HEADERS];
    int n_hdr;
    struct http_stream *stream; /* the body, when streamed (a reference) */
};

static char *req_strdup(struct req *r, const char *s, size_t len)
{
    struct strnode *n = malloc(sizeof(*n) + len + 1);
    if (n == NULL)
        return NULL;
    memcpy(n->s, s, len);
    n->s[len] = '\0';
    n->next = r->priv->strings;
    r->priv->strings = n;
    return n->s;
}

/* Percent-decode in place; plus_space turns '+' into ' ' (query strings). */
static void url_decode(char *s, int plus_space)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        int h, l;
        if (*p == '%' && (h = uri_hexval(p[1])) >= 0 && (l = uri_hexval(p[2])) >= 0) {
            *w++ = (char)(h * 16 + l);
            p += 2;
        } else if (*p == '+' && plus_space) {
            *w++ = ' ';
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

const char *req_query(struct req *r, const char *name)
{
    const char *raw = MHD_lookup_connection_value(r->priv->conn, MHD_GET_ARGUMENT_KIND, name);
    char *v;
    if (raw == NULL)
        return NULL;
    if ((v = req_strdup(r, raw, strlen(raw))) == NULL)
        return NULL;
    url_decode(v, 1);
    return v;
}

struct query_iter {
    void (*fn)(void *ud, const char *key, const char *raw);
    void *ud;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct query_iter *it = cls;
    (void)kind;
    it->fn(it->ud, key, value);
    return MHD_YES;
}

void req_query_each(struct req *r, void (*fn)(void *ud, const char *key, const char *raw), void *ud)
{
    struct query_iter it = {fn, ud};
    MHD_get_connection_values(r->priv->conn, MHD_GET_ARGUMENT_KIND, query_iter, &it);
}

const char *req_header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->priv->conn, MHD_HEADER_KIND, name);
}

int req_add_header(struct req *r, const char *name, const char *value)
{
    struct req_priv *p = r->priv;
    if (p->n_hdr == REQ_MAX_HEADERS)
        return ERR_INTERNAL;
    p->hdr_name[p->n_hdr] = strdup(name);
    p->hdr_value[p->n_hdr] = strdup(value);
    if (!p->hdr_name[p->n_hdr] || !p->hdr_value[p->n_hdr]) {
        free(p->hdr_name[p->n_hdr]);
        free(p->hdr_value[p->n_hdr]);
        return ERR_NOMEM;
    }
    p->n_hdr++;
    return 0;
}

static void set_body(struct req *r, int status, char *body, size_t len, const char *type)
{
    struct req_priv *p = r->priv;
    free(p->resp_body);
    p->status = status;
    p->resp_body = body;
    p->resp_len = len;
    p->resp_type = type;
}

int req_reply_json(struct req *r, int status, cJSON *body)
{
    char *text = NULL;
    size_t len = 0;
    if (body) {
        if (r->accept == MIME_LD_JSON && cJSON_IsObject(body) && r->ctx_value &&
            !cJSON_HasObjectItem(body, "@context"))
            cJSON_AddItemToObject(body, "@context", cJSON_Duplicate(r->ctx_value, 1));
        text = json_print(body, &len);
        cJSON_Delete(body);
        if (text == NULL)
            return req_fail(r, ERR_NOMEM, "out of memory rendering the response");
    }
    set_body(r, status, text, len,
             r->accept == MIME_LD_JSON    ? "application/ld+json"
             : r->accept == MIME_GEO_JSON ? "application/geo+json"
                                          : "application/json");
    return HTTP_DONE;
}

int req_reply_text(struct req *r, int status, const char *content_type, const char *text,
                   size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    set_body(r, status, copy, len, content_type);
    return HTTP_DONE;
}

int req_reply_error(struct req *r)
{
    int code = r->err.code ? r->err.code : ERR_INTERNAL;
    cJSON *pd = problem_json(code, r->err.detail);
    char *text = pd ? cJSON_PrintUnformatted(pd) : NULL;
    cJSON_Delete(pd);
    /* headers set for a success do not belong on the error */
    for (int i = 0; i < r->priv->n_hdr; i++) {
        free(r->priv->hdr_name[i]);
        free(r->priv->hdr_value[i]);
    }
    r->priv->n_hdr = 0;
    if (code == ERR_UNAUTHORIZED) /* RFC 9110 15.5.2: a 401 names its scheme */
        req_add_header(r, "WWW-Authenticate", "Bearer realm=\"pilotlight\"");
    set_body(r, problem_status(code), text, text ? strlen(text) : 0, "application/json");
    if (problem_status(code) >= 500 && code != ERR_LD_CONTEXT && code != ERR_UNAVAILABLE)
        log_msg(LOG_ERROR, "http: %s %s: %s", err_name(code), r->path, r->err.detail);
    return HTTP_DONE;
}

int req_fail(struct req *r, int code, const char *fmt, ...)
{
    va_list ap;
    if (r->err.code == 0) {
        r->err.code = code;
        va_start(ap, fmt);
        vsnprintf(r->err.detail, sizeof(r->err.detail), fmt, ap);
        va_end(ap);
    }
    return req_reply_error(r);
}

int req_suspend(struct req *r)
{
    struct http_server *srv = r->priv->srv;
    pthread_mutex_lock(&srv->susp_mu);
    if (srv->closing) {
        pthread_mutex_unlock(&srv->susp_mu);
        return ERR_UNAVAILABLE;
    }
    srv->n_suspended++;
    r->priv->counted = 1;
    pthread_mutex_unlock(&srv->susp_mu);
    r->priv->state = RS_SUSPENDED;
    MHD_suspend_connection(r->priv->conn);
    return 0;
}

/* The suspension of r is over (answered or abandoned). */
static void suspension_done(struct req *r)
{
    struct http_server *srv = r->priv->srv;
    if (!r->priv->counted)
        return;
    r->priv->counted = 0;
    pthread_mutex_lock(&srv->susp_mu);
    srv->n_suspended--;
    pthread_mutex_unlock(&srv->susp_mu);
}

void req_resume(struct req *r)
{
    r->priv->state = RS_RESUMED;
    MHD_resume_connection(r->priv->conn);
}

/* ---- routing ------------------------------------------------------------ */

static int method_of(const char *m)
{
    static const struct {
        const char *name;
        int bit;
    } t[] = {{"GET", HTTP_GET},        {"POST", HTTP_POST},     {"PUT", HTTP_PUT},
             {"PATCH", HTTP_PATCH},    {"DELETE", HTTP_DELETE}, {"HEAD", HTTP_HEAD},
             {"OPTIONS", HTTP_OPTIONS}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(m, t[i].name) == 0)
            return t[i].bit;
    return 0;
}

/* Match path segments (already split, decoded) against a pattern. */
static int pattern_match(const char *pattern, char **segs, int n_segs, const char **params,
                         int *n_params)
{
    int i = 0, np = 0;
    const char *p = pattern;

    while (*p) {
        const char *start, *end;
        if (*p == '/')
            p++;
        start = p;
        while (*p && *p != '/')
            p++;
        end = p;
        if (i >= n_segs)
            return 0;
        if (*start == '{') {
            if (np == REQ_MAX_PARAMS || segs[i][0] == '\0')
                return 0;
            params[np++] = segs[i];
        } else if (strlen(segs[i]) != (size_t)(end - start) ||
                   strncmp(segs[i], start, (size_t)(end - start)) != 0) {
            return 0;
        }
        i++;
    }
    if (i != n_segs)
        return 0;
    *n_params = np;
    return 1;
}

static void allow_header(int methods, char *out, size_t cap)
{
    static const char *names[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < 7; i++)
        if (methods & (1 << i))
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", names[i]);
}

/* Route r->path; on success sets the params and returns the handler. */
static http_handler_fn route(struct req *r, const struct http_config *c)
{
    char *segs[32];
    int n_segs = 0, allowed = 0;
    char *p = r->priv->path_copy;

    if (*p == '/')
        p++;
    while (*p && n_segs < 32) {
        segs[n_segs++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    if (*p && n_segs == 32) {
        req_fail(r, ERR_NOT_FOUND, "no resource at %s", r->path);
        return NULL;
    }
    for (int i = 0; i < n_segs; i++)
        url_decode(segs[i], 0);
    for (size_t i = 0; i < c->n_routes; i++) {
        const char *params[REQ_MAX_PARAMS];
        int n_params = 0;
        if (!pattern_match(c->routes[i].pattern, segs, n_segs, params, &n_params))
            continue;
        /* HEAD is GET without a body (MHD leaves the body out) */
        int method = r->method == HTTP_HEAD ? HTTP_GET : r->method;
        if (!(c->routes[i].method & method)) {
            allowed |= c->routes[i].method;
            continue;
        }
        memcpy(r->route_params, params, sizeof(params));
        r->n_route_params = n_params;
        r->route_flags = c->routes[i].flags;
        return c->routes[i].fn;
    }
    if (allowed) {
        char allow[128];
        allow_header(allowed, allow, sizeof(allow));
        req_fail(r, ERR_METHOD, "method not allowed on %s (allowed: %s)", r->path, allow);
        req_add_header(r, "Allow", allow);
        return NULL;
    }
    req_fail(r, ERR_NOT_FOUND, "no resource at %s", r->path);
    return NULL;
}

/* ---- content negotiation --------------------------------------------------- */

/* Compare a media range (up to ';' or ',') with a type, case-insensitively. */
static int media_is(const char *s, size_t len, const char *type)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    return strlen(type) == len && strncasecmp(s, type, len) == 0;
}

/* Pick the response type from Accept (highest q wins, ties: first listed).
 * A streaming route serves only text/event-stream (also for a missing
 * Accept, text/ * and * / *). */
static int negotiate(const char *accept, int stream)
{
    int best = 0;
    double best_q = -1;
    const char *p = accept;

    if (accept == NULL || *accept == '\0')
        return stream ? MIME_EVENT_STREAM : MIME_JSON;
    while (*p) {
        const char *end = strchr(p, ','), *semi;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t tlen = len;
        double q = 1.0;
        if ((semi = memchr(p, ';', len)) != NULL) {
            tlen = (size_t)(semi - p);
            const char *qp = strstr(semi, "q=");
            if (qp && qp < p + len)
                q = strtod(qp + 2, NULL);
        }
        int m = 0;
        if (stream) {
            if (media_is(p, tlen, "text/event-stream") || media_is(p, tlen, "text/*") ||
                media_is(p, tlen, "*/*"))
                m = MIME_EVENT_STREAM;
        } else if (media_is(p, tlen, "application/ld+json"))
            m = MIME_LD_JSON;
        else if (media_is(p, tlen, "application/json") || media_is(p, tlen, "application/*") ||
                 media_is(p, tlen, "*/*"))
            m = MIME_JSON;
        else if (media_is(p, tlen, "application/geo+json"))
            m = MIME_GEO_JSON;
        if (m && q > 0 && q > best_q) {
            best = m;
            best_q = q;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return best;
}

static int content_type_ok(const char *ct, int method)
{
    size_t len;
    if (ct == NULL)
        return 0;
    len = strcspn(ct, ";");
    return media_is(ct, len, "application/json") || media_is(ct, len, "application/ld+json") ||
           (method == HTTP_PATCH && media_is(ct, len, "application/merge-patch+json"));
}

static int tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128)
        return 0;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.:/~", *p))
            return 0;
    return 1;
}

/* ---- MHD callbacks ---------------------------------------------------------- */

/* ---- streams ------------------------------------------------------------------ */

struct http_stream *http_stream_new(size_t cap)
{
    struct http_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 1;
    s->cap = cap ? cap : STREAM_CAP_DEFAULT;
    return s;
}

void http_stream_release(struct http_stream *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->buf);
    free(s);
}

/* Resume a stream suspended by stream_read (s->mu held). */
static void stream_wake(struct http_stream *s)
{
    if (!s->suspended)
        return;
    s->suspended = 0;
    pthread_mutex_lock(&s->srv->susp_mu);
    s->srv->n_suspended--;
    pthread_mutex_unlock(&s->srv->susp_mu);
    MHD_resume_connection(s->conn);
}

/* Append to the buffer (s->mu held); cap 0 = no cap. */
static int stream_append(struct http_stream *s, const char *data, size_t len, size_t cap)
{
    if (s->off > 0 && (s->off == s->len || s->off > s->alloc / 2)) {
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (cap && s->len + len > cap)
        return ERR_TOO_LARGE;
    if (s->len + len > s->alloc) {
        size_t alloc = s->alloc ? s->alloc : 4096;
        char *b;
        while (alloc < s->len + len)
            alloc *= 2;
        if ((b = realloc(s->buf, alloc)) == NULL)
            return ERR_NOMEM;
        s->buf = b;
        s->alloc = alloc;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

int http_stream_write(struct http_stream *s, const char *data, size_t len)
{
    int rc;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->gone)
        rc = ERR_UNAVAILABLE;
    else if ((rc = stream_append(s, data, len, s->cap)) == 0)
        stream_wake(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void http_stream_close(struct http_stream *s, const char *final, size_t len)
{
    pthread_mutex_lock(&s->mu);
    if (!s->closed && !s->gone) {
        if (final && len)
            stream_append(s, final, len, 0);
        s->closed = 1;
        stream_wake(s);
    }
    pthread_mutex_unlock(&s->mu);
}

int http_stream_alive(struct http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    int alive = !s->closed && !s->gone;
    pthread_mutex_unlock(&s->mu);
    return alive;
}

/* MHD's content reader (the connection's thread). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct http_stream *s = cls;
    ssize_t n;
    (void)pos;
    pthread_mutex_lock(&s->mu);
    if (s->len > s->off) {
        size_t k = s->len - s->off < max ? s->len - s->off : max;
        memcpy(out, s->buf + s->off, k);
        s->off += k;
        n = (ssize_t)k;
    } else if (s->closed) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        pthread_mutex_lock(&s->srv->susp_mu);
        if (s->srv->closing) {
            pthread_mutex_unlock(&s->srv->susp_mu);
            s->closed = 1;
            n = MHD_CONTENT_READER_END_OF_STREAM;
        } else {
            s->srv->n_suspended++;
            pthread_mutex_unlock(&s->srv->susp_mu);
            s->suspended = 1;
            MHD_suspend_connection(s->conn);
            n = 0; /* called again once resumed */
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* MHD is done with the response: the client left or the stream ended. */
static void stream_done(void *cls)
{
    struct http_stream *s = cls;
    struct http_server *srv = s->srv;
    pthread_mutex_lock(&srv->stream_mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    pthread_mutex_lock(&s->mu);
    s->gone = 1;
    s->conn = NULL;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&srv->stream_mu);
    http_stream_release(s);
}

int req_reply_stream(struct req *r, const char *content_type, struct http_stream *s)
{
    struct req_priv *p = r->priv;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    http_stream_release(p->stream);
    p->stream = s;
    set_body(r, 200, NULL, 0, content_type);
    return HTTP_DONE;
}

/* Add the request's headers to resp, queue it and drop our reference. */
static enum MHD_Result queue_send(struct req_priv *p, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    for (int i = 0; i < p->n_hdr; i++)
        MHD_add_response_header(resp, p->hdr_name[i], p->hdr_value[i]);
    ret = MHD_queue_response(p->conn, (unsigned)p->status, resp);
    MHD_destroy_response(resp);
    p->state = RS_DONE;
    return ret;
}

static enum MHD_Result queue_stream(struct req *r)
{
    struct req_priv *p = r->priv;
    struct http_stream *s = p->stream;
    struct http_server *srv = p->srv;
    struct MHD_Response *resp;

    pthread_mutex_lock(&srv->stream_mu);
    pthread_mutex_lock(&s->mu);
    s->srv = srv;
    s->conn = p->conn;
    pthread_mutex_unlock(&s->mu);
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_done);
    if (resp == NULL) {
        pthread_mutex_lock(&s->mu);
        s->gone = 1;
        s->conn = NULL;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&srv->stream_mu);
        return MHD_NO;
    }
    p->stream = NULL; /* the response's reference now, dropped by stream_done */
    s->next = srv->streams;
    if (s->next)
        s->next->prev = s;
    srv->streams = s;
    pthread_mutex_unlock(&srv->stream_mu);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, p->resp_type);
    return queue_send(p, resp);
}

static enum MHD_Result queue(struct req *r)
{
    struct req_priv *p = r->priv;
    struct MHD_Response *resp;

    if (p->stream && p->status == 200 && r->method != HTTP_HEAD)
        return queue_stream(r);
    resp = MHD_create_response_from_buffer(p->resp_len, p->resp_body ? p->resp_body : "",
                                           p->resp_body ? MHD_RESPMEM_MUST_FREE
                                                        : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    p->resp_body = NULL; /* MHD owns it now */
    if (p->resp_len || p->status == 200)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                p->resp_type ? p->resp_type : "application/json");
    return queue_send(p, resp);
}

static struct req *req_new(struct http_server *srv, struct MHD_Connection *conn, const char *url,
                           const char *method)
{
    struct req *r = calloc(1, sizeof(*r));
    struct req_priv *p = calloc(1, sizeof(*p));
    size_t len;

    if (r == NULL || p == NULL)
        goto fail;
    r->priv = p;
    p->srv = srv;
    p->conn = conn;
    buf_init(&p->body, srv->conf.max_body);
    r->method = method_of(method);
    r->app = srv->conf.app;
    r->tenant = "";
    len = strlen(url);
    while (len > 1 && url[len - 1] == '/')
        len--; /* "/entities/" is "/entities" */
    if ((p->path_copy = malloc(len + 1)) == NULL)
        goto fail;
    memcpy(p->path_copy, url, len);
    p->path_copy[len] = '\0';
    if ((r->path = req_strdup(r, url, len)) == NULL)
        goto fail;
    return r;
fail:
    if (p) {
        free(p->path_copy);
        free(p);
    }
    free(r);
    return NULL;
}

static void req_free(struct req *r)
{
    struct req_priv *p;
    if (r == NULL)
        return;
    p = r->priv;
    suspension_done(r);
    if (r->cont_free)
        r->cont_free(r->cont_ud);
    ld_ctx_release(r->ctx);
    cJSON_Delete(r->ctx_value);
    buf_free(&p->body);
    http_stream_release(p->stream);
    free(p->path_copy);
    free(p->resp_body);
    for (int i = 0; i < p->n_hdr; i++) {
        free(p->hdr_name[i]);
        free(p->hdr_value[i]);
    }
    while (p->strings) {
        struct strnode *next = p->strings->next;
        free(p->strings);
        p->strings = next;
    }
    free(p);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
}

static int run(struct req *r, http_handler_fn fn)
{
    int rc = fn(r);
    if (rc == HTTP_ASYNC)
        return rc;
    if (r->priv->status == 0) /* a handler that set no response failed */
        req_reply_error(r);
    return HTTP_DONE;
}

static int dispatch(struct req *r)
{
    struct http_server *srv = r->priv->srv;
    http_handler_fn fn;
    const char *tenant;

    if (r->priv->too_large)
        return req_fail(r, ERR_TOO_LARGE, "request body larger than %zu bytes", srv->conf.max_body);
    if ((fn = route(r, &srv->conf)) == NULL)
        return HTTP_DONE;
    r->body = r->priv->body.data;
    r->body_len = r->priv->body.len;
    if ((r->accept = negotiate(req_header(r, MHD_HTTP_HEADER_ACCEPT),
                               r->route_flags & HTTP_ROUTE_STREAM)) == 0)
        return req_fail(r, ERR_NOT_ACCEPTABLE, "Accept allows none of %s",
                        (r->route_flags & HTTP_ROUTE_STREAM)
                            ? "text/event-stream"
                            : "application/json, application/ld+json");
    if ((r->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH)) && r->body_len > 0 &&
        !(r->route_flags & HTTP_ROUTE_ANY_BODY) &&
        !content_type_ok(req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->method))
        return req_fail(r, ERR_MEDIA_TYPE,
                        "Content-Type must be application/json or application/ld+json");
    if ((tenant = req_header(r, "NGSILD-Tenant")) != NULL) {
        if (!tenant_ok(tenant))
            return req_fail(r, ERR_BAD_DATA, "invalid NGSILD-Tenant '%.64s'", tenant);
        r->tenant = tenant;
    }
    return run(r, fn);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct req *r = *con_cls;
    (void)version;

    if (r == NULL) {
        const char *cl;
        if ((r = req_new(srv, conn, url, method)) == NULL)
            return MHD_NO;
        *con_cls = r;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->conf.max_body) {
            /* answer now, without reading (or asking for, with Expect:
             * 100-continue) the body; MHD then closes the connection */
            r->priv->too_large = 1;
            r->priv->state = RS_BODY;
            req_fail(r, ERR_TOO_LARGE, "request body larger than %zu bytes", srv->conf.max_body);
            return queue(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->priv->too_large && buf_append(&r->priv->body, upload_data, *upload_data_size) != 0)
            r->priv->too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (r->priv->state) {
    case RS_NEW:
        r->priv->state = RS_BODY;
        if (dispatch(r) == HTTP_ASYNC)
            return MHD_YES;
        return queue(r);
    case RS_RESUMED: {
        http_handler_fn cont = r->cont;
        r->cont = NULL;
        suspension_done(r);
        if (cont == NULL)
            return req_reply_error(r), queue(r);
        if (run(r, cont) == HTTP_ASYNC)
            return MHD_YES;
        return queue(r);
    }
    case RS_SUSPENDED: /* spurious call while suspended */ return MHD_YES;
    default: return MHD_NO;
    }
}

int http_start(const struct http_config *c, struct http_server **out, struct err *e)
{
    struct http_server *s = calloc(1, sizeof(*s));
    unsigned threads =
        c->threads > 0 ? (unsigned)c->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    struct sockaddr_in addr;

    *out = NULL;
    if (s == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->conf = *c;
    pthread_mutex_init(&s->susp_mu, NULL);
    pthread_mutex_init(&s->stream_mu, NULL);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->bind, &addr.sin_addr) != 1) {
        free(s);
        return err_set(e, ERR_INVALID_REQUEST, "bind: '%s' is not an IPv4 address", c->bind);
    }
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME,
        (uint16_t)c->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)c->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s, MHD_OPTION_END);
    if (s->d == NULL) {
        free(s);
        return err_set(e, ERR_IO, "cannot listen on %s:%d", c->bind, c->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : c->port;
    *out = s;
    return 0;
}

int http_port(const struct http_server *s)
{
    return s->port;
}

void http_close_suspensions(struct http_server *s, int ms)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->susp_mu);
    s->closing = 1;
    pthread_mutex_unlock(&s->susp_mu);
    /* end every stream: what is buffered is still sent, then the chunked
     * body ends; a suspended one is resumed (and uncounted) here */
    pthread_mutex_lock(&s->stream_mu);
    for (struct http_stream *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        st->closed = 1;
        stream_wake(st);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&s->stream_mu);
    for (int waited = 0; waited <= ms; waited += 5) {
        pthread_mutex_lock(&s->stream_mu);
        int streaming = s->streams != NULL; /* ended streams still sending their tail */
        pthread_mutex_unlock(&s->stream_mu);
        pthread_mutex_lock(&s->susp_mu);
        int n = s->n_suspended;
        pthread_mutex_unlock(&s->susp_mu);
        if (n == 0 && !streaming)
            return;
        usleep(5000);
    }
    log_msg(LOG_WARN, "http: %d requests still suspended at shutdown", s->n_suspended);
}

void http_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->susp_mu);
    pthread_mutex_destroy(&s->stream_mu);
    free(s);
}
