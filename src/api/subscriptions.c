/*
 * subscriptions.c - /subscriptions (GS CIM 009 5.8): create, query,
 * retrieve, update and delete subscriptions of the request's tenant. The
 * handlers expand the body with the request's @context (sub_expand), hand
 * it to the runtime (notify/notify.h), which validates, persists and
 * matches; responses are compacted with the caller's @context
 * (sub_render). Persistence is synchronous (store_doc_*, rare writes), so
 * these handlers answer on their first call. A path {id} that is not a URI
 * is BadRequestData before anything is looked up.
 *
 * GET /subscriptions/{id}/stream answers text/event-stream: an http_stream
 * (http.h) attached to the subscription as a notify_sink; every
 * notification of the subscription becomes one server-sent event (see
 * notify.h). The handler only attaches and returns: no worker waits on a
 * stream.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "notify/sub.h"
#include "util/cfg.h"
#include "util/time.h"

static struct notify *runtime(struct req *r)
{
    return api_app(r)->notify;
}

static int reply_sub(struct req *r, int status, cJSON *body)
{
    if (body == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    if (r->accept == MIME_LD_JSON) {
        cJSON *it;
        if (cJSON_IsArray(body)) {
            cJSON_ArrayForEach(it, body)
                cJSON_AddItemToObject(it, "@context", cJSON_Duplicate(r->ctx_value, 1));
        } else {
            cJSON_AddItemToObject(body, "@context", cJSON_Duplicate(r->ctx_value, 1));
        }
    } else {
        api_link_context(r);
    }
    return req_reply_json(r, status, body);
}

static int unavailable(struct req *r)
{
    return req_fail(r, ERR_UNAVAILABLE, "subscriptions are not available");
}

/* The {id} of /subscriptions/{id}: a subscription id is a URI, and one that
 * is not is the request's fault, not an unknown subscription (GS CIM 009
 * 5.8.2, 5.8.3, 5.8.5: BadRequestData). Sets r->err and returns its code
 * when it is not one. */
static int path_id(struct req *r, const char **id)
{
    *id = r->route_params[0];
    if (!api_is_uri(*id))
        return err_set(&r->err, ERR_BAD_DATA, "subscription id '%.200s' is not a URI", *id);
    return 0;
}

int api_subscription_create(struct req *r)
{
    cJSON *body = NULL, *doc = NULL;
    char *id = NULL, loc[3 * 2048 + 64];
    int rc;

    if (runtime(r) == NULL)
        return unavailable(r);
    if (api_body_json(r, &body) != 0 || api_resolve_ctx(r, body) != 0)
        goto fail;
    if (sub_expand(body, r->ctx, 0, &doc, &r->err) != 0)
        goto fail;
    if (notify_sub_create(runtime(r), r->tenant, doc, r->ctx, r->ctx_value, &id, &r->err) != 0)
        goto fail;
    size_t n = (size_t)snprintf(loc, sizeof(loc), API_BASE "/subscriptions/");
    api_path_escape(id, loc + n, sizeof(loc) - n);
    req_add_header(r, "Location", loc);
    rc = req_reply_json(r, 201, NULL);
    free(id);
    cJSON_Delete(body);
    cJSON_Delete(doc);
    return rc;
fail:
    cJSON_Delete(body);
    cJSON_Delete(doc);
    return req_reply_error(r);
}

/* options= of GET /subscriptions and /subscriptions/{id}: sysAttrs adds
 * createdAt and modifiedAt (GS CIM 009 6.3.11); any other option is
 * BadRequestData (r->err set, its code returned). */
static int parse_options(struct req *r, int *sys_attrs)
{
    const char *p = req_query(r, "options");
    *sys_attrs = 0;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        if (len == strlen("sysAttrs") && !strncmp(p, "sysAttrs", len))
            *sys_attrs = 1;
        else
            return err_set(&r->err, ERR_BAD_DATA,
                           "unknown option '%.*s' (subscriptions take options=sysAttrs)",
                           (int)(len > 64 ? 64 : len), p);
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int parse_long(struct req *r, const char *name, long dflt, long *out)
{
    const char *v = req_query(r, name);
    char *end;
    *out = dflt;
    if (v == NULL)
        return 0;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end || x < 0)
        return err_set(&r->err, ERR_BAD_DATA, "%s must be a non-negative integer", name);
    *out = x;
    return 0;
}

int api_subscriptions_list(struct req *r)
{
    struct app *app = api_app(r);
    const char *count_p = req_query(r, "count");
    long limit, offset, count = 0;
    int want_count = 0, sys_attrs;
    cJSON *docs = NULL, *out = NULL, *it;
    int64_t now = tm_now_ms();

    if (runtime(r) == NULL)
        return unavailable(r);
    if (api_resolve_ctx(r, NULL) != 0)
        return req_reply_error(r);
    if (count_p) {
        if (!strcmp(count_p, "true"))
            want_count = 1;
        else if (strcmp(count_p, "false") != 0)
            return req_fail(r, ERR_BAD_DATA, "count must be true or false");
    }
    if (parse_long(r, "limit", app->cfg->page_limit_default, &limit) != 0 ||
        parse_long(r, "offset", 0, &offset) != 0 || parse_options(r, &sys_attrs) != 0)
        return req_reply_error(r);
    if (limit > app->cfg->page_limit_max)
        return req_fail(r, ERR_TOO_MANY, "limit %ld is above the maximum %d", limit,
                        app->cfg->page_limit_max);
    if (limit == 0 && !want_count)
        return req_fail(r, ERR_BAD_DATA, "limit=0 is only allowed with count=true");
    if (notify_sub_list(runtime(r), r->tenant, offset, limit, &docs, &count, &r->err) != 0)
        return req_reply_error(r);
    if ((out = cJSON_CreateArray()) == NULL) {
        cJSON_Delete(docs);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    cJSON_ArrayForEach(it, docs)
    {
        cJSON *s = sub_render(it, r->ctx, now, sys_attrs);
        if (s == NULL) {
            cJSON_Delete(docs);
            cJSON_Delete(out);
            return req_fail(r, ERR_NOMEM, "out of memory");
        }
        cJSON_AddItemToArray(out, s);
    }
    cJSON_Delete(docs);
    if (want_count) {
        char n[32];
        snprintf(n, sizeof(n), "%ld", count);
        req_add_header(r, "NGSILD-Results-Count", n);
    }
    if (limit > 0 && offset + cJSON_GetArraySize(out) < count) {
        char link[256];
        snprintf(link, sizeof(link), "<%s?offset=%ld&limit=%ld>; rel=\"next\"", r->path,
                 offset + cJSON_GetArraySize(out), limit);
        req_add_header(r, "Link", link);
    }
    return reply_sub(r, 200, out);
}

int api_subscription_get(struct req *r)
{
    cJSON *doc = NULL, *out;
    const char *id;
    int sys_attrs;
    if (runtime(r) == NULL)
        return unavailable(r);
    if (path_id(r, &id) != 0 || parse_options(r, &sys_attrs) != 0 ||
        api_resolve_ctx(r, NULL) != 0 ||
        notify_sub_get(runtime(r), r->tenant, id, &doc, &r->err) != 0)
        return req_reply_error(r);
    out = sub_render(doc, r->ctx, tm_now_ms(), sys_attrs);
    cJSON_Delete(doc);
    return reply_sub(r, 200, out);
}

int api_subscription_patch(struct req *r)
{
    cJSON *body = NULL, *frag = NULL;
    const char *id;
    if (runtime(r) == NULL)
        return unavailable(r);
    if (path_id(r, &id) != 0 || api_body_json(r, &body) != 0 || api_resolve_ctx(r, body) != 0 ||
        sub_expand(body, r->ctx, 1, &frag, &r->err) != 0 ||
        notify_sub_patch(runtime(r), r->tenant, id, frag, &r->err) != 0) {
        cJSON_Delete(body);
        cJSON_Delete(frag);
        return req_reply_error(r);
    }
    cJSON_Delete(body);
    cJSON_Delete(frag);
    return req_reply_json(r, 204, NULL);
}

/* notify_sink over an http_stream */
static int sink_write(void *ud, const char *data, size_t len)
{
    return http_stream_write(ud, data, len);
}

static void sink_close(void *ud, const char *final, size_t len)
{
    http_stream_close(ud, final, len);
}

static void sink_release(void *ud)
{
    http_stream_release(ud);
}

#define STREAM_BUFFER ((size_t)1 << 20) /* bytes waiting for a slow client */

/* The events are the subscription's notifications: unless it asked for
 * application/ld+json (then each carries its @context), the stream's Link
 * header gives the context to read them with, as an HTTP notification's
 * does. */
static void stream_link(struct req *r, const char *id)
{
    char link[1200], *url;

    /* the subscription's own (a lookup: a context is never made here) */
    if ((url = notify_sub_link(runtime(r), r->tenant, id)) == NULL)
        return;
    snprintf(link, sizeof(link),
             "<%s>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
             url);
    free(url);
    req_add_header(r, "Link", link);
}

int api_subscription_stream(struct req *r)
{
    static const char hello[] = ": pilotlight subscription stream\nretry: 5000\n\n";
    struct http_stream *st;
    struct notify_sink sink = {.write = sink_write, .close = sink_close, .release = sink_release};
    cJSON *doc = NULL;
    const char *id;

    if (runtime(r) == NULL)
        return unavailable(r);
    if (path_id(r, &id) != 0 || notify_sub_get(runtime(r), r->tenant, id, &doc, &r->err) != 0)
        return req_reply_error(r);
    stream_link(r, id);
    cJSON_Delete(doc);
    if (r->method == HTTP_HEAD) /* no stream to attach: only say whether it exists */
        return req_reply_text(r, 200, "text/event-stream", "", 0);
    if ((st = http_stream_new(STREAM_BUFFER)) == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    if (http_stream_write(st, hello, sizeof(hello) - 1) != 0) {
        http_stream_release(st);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    /* the response takes its own reference first: once attached, the
     * runtime may end the stream (and drop the creator's) at any time */
    req_add_header(r, "Cache-Control", "no-cache");
    req_add_header(r, "X-Accel-Buffering", "no");
    req_reply_stream(r, "text/event-stream", st);
    sink.ud = st;
    if (notify_stream_attach(runtime(r), r->tenant, id, &sink, &r->err) != 0) {
        http_stream_release(st);
        return req_reply_error(r); /* not a 200: the stream is not sent */
    }
    return HTTP_DONE;
}

int api_subscription_delete(struct req *r)
{
    const char *id;
    if (runtime(r) == NULL)
        return unavailable(r);
    if (path_id(r, &id) != 0 || notify_sub_delete(runtime(r), r->tenant, id, &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 204, NULL);
}
