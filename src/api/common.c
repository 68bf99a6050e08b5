/*
 * common.c - helpers shared by the API handlers: body parsing, @context
 * resolution (body or Link header), view options (format, attrs, pick,
 * omit, lang, sysAttrs), rendering and the asynchronous write job.
 */
#include "api/api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/cache.h"
#include "ld/ld.h"
#include "util/uri.h"

#define LINK_REL_CONTEXT "http://www.w3.org/ns/json-ld#context"

struct app *api_app(struct req *r)
{
    return r->app;
}

/* Deepest nesting accepted in a body: every accepted document can then be
 * stored and printed again (the writer's printer stops at 512). */
#define API_MAX_DEPTH 64

static int too_deep(const cJSON *item, int depth)
{
    const cJSON *c;
    if (depth > API_MAX_DEPTH)
        return 1;
    for (c = item->child; c; c = c->next)
        if ((cJSON_IsArray(c) || cJSON_IsObject(c)) && too_deep(c, depth + 1))
            return 1;
    return 0;
}

int api_body_json(struct req *r, cJSON **out)
{
    const char *end = NULL;

    *out = NULL;
    if (r->body == NULL || r->body_len == 0)
        return err_set(&r->err, ERR_INVALID_REQUEST, "request body is empty");
    /* cJSON turns \u0000 into a terminator: an id "urn:a\u0000b" would
     * silently become "urn:a" */
    if (memmem(r->body, r->body_len, "\\u0000", 6))
        return err_set(&r->err, ERR_BAD_DATA, "the body contains a NUL character (\\u0000)");
    *out = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (*out == NULL) {
        size_t pos = end ? (size_t)(end - r->body) : 0;
        return err_set(&r->err, ERR_INVALID_REQUEST, "request body is not valid JSON (near byte %zu)",
                       pos);
    }
    for (; end && end < r->body + r->body_len; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(*out);
            *out = NULL;
            return err_set(&r->err, ERR_INVALID_REQUEST,
                           "request body has data after the JSON value (byte %zu)",
                           (size_t)(end - r->body));
        }
    if (too_deep(*out, 1)) {
        cJSON_Delete(*out);
        *out = NULL;
        return err_set(&r->err, ERR_BAD_DATA, "request body nested deeper than %d levels",
                       API_MAX_DEPTH);
    }
    return 0;
}

void api_path_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~:@!$&'()*+,;=", c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

static int content_is_ld(struct req *r)
{
    const char *ct = req_header(r, "Content-Type");
    return ct && strncasecmp(ct, "application/ld+json", 19) == 0;
}

/* Extract the context URL from a Link header; NULL if none. */
static char *link_context_url(const char *link)
{
    const char *p = link;
    while (p && *p) {
        const char *lt = strchr(p, '<'), *gt;
        if (lt == NULL || (gt = strchr(lt, '>')) == NULL)
            return NULL;
        const char *next = strchr(gt, ',');
        size_t span = next ? (size_t)(next - gt) : strlen(gt);
        const char *rel = strstr(gt, LINK_REL_CONTEXT);
        if (rel && (size_t)(rel - gt) < span)
            return strndup(lt + 1, (size_t)(gt - lt - 1));
        p = next ? next + 1 : NULL;
    }
    return NULL;
}

int api_resolve_ctx(struct req *r, const cJSON *body)
{
    struct app *app = api_app(r);
    const char *link = req_header(r, "Link");
    cJSON *value = NULL;
    int body_ld = body && content_is_ld(r);
    int rc;

    if (body_ld) {
        const cJSON *first = cJSON_IsArray(body) ? cJSON_GetArrayItem(body, 0) : body;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(first, "@context");
        if (link && strstr(link, LINK_REL_CONTEXT))
            return err_set(&r->err, ERR_BAD_DATA,
                           "application/ld+json requests carry @context in the body, "
                           "not in a Link header");
        if (c == NULL && !(cJSON_IsArray(body) && cJSON_GetArraySize(body) == 0))
            return err_set(&r->err, ERR_BAD_DATA,
                           "application/ld+json body without @context");
        if (c && (value = cJSON_Duplicate(c, 1)) == NULL)
            return err_set(&r->err, ERR_NOMEM, "out of memory");
    } else {
        if (body) {
            const cJSON *first = cJSON_IsArray(body) ? cJSON_GetArrayItem(body, 0) : body;
            if (cJSON_IsObject(first) && cJSON_HasObjectItem(first, "@context"))
                return err_set(&r->err, ERR_BAD_DATA,
                               "@context in an application/json body: send it as "
                               "application/ld+json or in a Link header");
        }
        if (link) {
            char *url = link_context_url(link);
            if (url) {
                value = cJSON_CreateString(url);
                free(url);
                if (value == NULL)
                    return err_set(&r->err, ERR_NOMEM, "out of memory");
            }
        }
    }
    if (value == NULL && (value = cJSON_CreateString(LD_CORE_URL)) == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    if ((rc = ld_cache_resolve(app->contexts, value, &r->ctx, &r->err)) != 0) {
        cJSON_Delete(value);
        return rc;
    }
    cJSON_Delete(r->ctx_value);
    r->ctx_value = value;
    return 0;
}

char *api_expand(struct req *r, const char *term)
{
    return ld_expand(r->ctx ? r->ctx : ld_core(), term);
}

char *api_expand_cb(void *ud, const char *term)
{
    return api_expand(ud, term);
}

int api_is_uri(const char *s)
{
    return uri_is_absolute(s, ENT_MAX_IRI);
}

/* Split a comma list and expand each item ("id"/"type"/"scope" kept as is
 * when keep_members). */
static int expand_list(struct req *r, const char *text, int keep_members, char ***out,
                       size_t *n_out)
{
    char **items = NULL;
    size_t n = 0;
    const char *p = text;

    *out = NULL;
    *n_out = 0;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > ENT_MAX_IRI)
            goto bad;
        char *term = strndup(p, len);
        char *iri;
        if (term == NULL)
            goto oom;
        if (keep_members && (!strcmp(term, "id") || !strcmp(term, "type") ||
                             !strcmp(term, "scope")))
            iri = term;
        else {
            iri = api_expand(r, term);
            free(term);
            if (iri == NULL)
                goto oom;
        }
        char **grown = realloc(items, (n + 1) * sizeof(*items));
        if (grown == NULL) {
            free(iri);
            goto oom;
        }
        items = grown;
        items[n++] = iri;
        p = comma ? comma + 1 : NULL;
        if (comma && *p == '\0')
            goto bad;
    }
    *out = items;
    *n_out = n;
    return 0;
bad:
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return err_set(&r->err, ERR_BAD_DATA, "empty or oversized item in list '%.100s'", text);
oom:
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return err_set(&r->err, ERR_NOMEM, "out of memory");
}

static int set_format(struct req *r, struct api_view *v, const char *f)
{
    if (!strcmp(f, "normalized"))
        v->ro.format = ENT_NORMALIZED;
    else if (!strcmp(f, "concise"))
        v->ro.format = ENT_CONCISE;
    else if (!strcmp(f, "keyValues") || !strcmp(f, "simplified"))
        v->ro.format = ENT_KEYVALUES;
    else
        return err_set(&r->err, ERR_BAD_DATA, "unknown format '%.64s'", f);
    return 0;
}

int api_view_parse(struct req *r, struct api_view *v)
{
    const char *options = req_query(r, "options"), *format = req_query(r, "format");
    const char *attrs = req_query(r, "attrs"), *pick = req_query(r, "pick");
    const char *omit = req_query(r, "omit"), *count = req_query(r, "count");
    int rc;

    memset(v, 0, sizeof(*v));
    v->ro.ctx = r->ctx;
    v->ro.lang = req_query(r, "lang");
    if (options) {
        const char *p = options;
        while (*p) {
            size_t len = strcspn(p, ",");
            char opt[32];
            if (len == 0 || len >= sizeof(opt))
                return err_set(&r->err, ERR_BAD_DATA, "invalid options '%.64s'", options);
            memcpy(opt, p, len);
            opt[len] = '\0';
            if (!strcmp(opt, "sysAttrs"))
                v->ro.sys_attrs = 1;
            else if (!strcmp(opt, "noOverwrite"))
                v->no_overwrite = 1;
            else if (!strcmp(opt, "update"))
                v->upsert_update = 1;
            else if (!strcmp(opt, "replace"))
                v->upsert_update = 0;
            else if (!strcmp(opt, "temporalValues"))
                v->temporal_values = 1; /* the temporal API's */
            else if (!strcmp(opt, "aggregatedValues"))
                v->aggregated_values = 1; /* the temporal API's */
            else if (set_format(r, v, opt) != 0)
                return err_set(&r->err, ERR_BAD_DATA, "unknown option '%s'", opt);
            p += len;
            if (*p == ',')
                p++;
        }
    }
    if (format && !strcmp(format, "temporalValues")) /* the temporal API's, as an option */
        v->temporal_values = 1;
    else if (format && !strcmp(format, "aggregatedValues"))
        v->aggregated_values = 1;
    else if (format && (rc = set_format(r, v, format)) != 0)
        return rc;
    if (count) {
        if (!strcmp(count, "true"))
            v->want_count = 1;
        else if (strcmp(count, "false") != 0)
            return err_set(&r->err, ERR_BAD_DATA, "count must be true or false");
    }
    if (attrs && pick)
        return err_set(&r->err, ERR_BAD_DATA, "attrs and pick cannot be combined");
    if (attrs && (rc = expand_list(r, attrs, 0, &v->attrs, &v->n_attrs)) != 0)
        return rc;
    if (pick && (rc = expand_list(r, pick, 1, &v->pick, &v->n_pick)) != 0)
        return rc;
    if (omit && (rc = expand_list(r, omit, 1, &v->omit, &v->n_omit)) != 0)
        return rc;
    if (attrs && v->n_attrs) {
        /* attrs = pick of those attributes, plus id and type */
        char **p = calloc(v->n_attrs + 2, sizeof(*p));
        if (p == NULL)
            return err_set(&r->err, ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < v->n_attrs; i++)
            p[i] = strdup(v->attrs[i]);
        p[v->n_attrs] = strdup("id");
        p[v->n_attrs + 1] = strdup("type");
        v->pick = p;
        v->n_pick = v->n_attrs + 2;
        for (size_t i = 0; i < v->n_pick; i++)
            if (p[i] == NULL)
                return err_set(&r->err, ERR_NOMEM, "out of memory");
    }
    v->ro.pick = (const char *const *)v->pick;
    v->ro.n_pick = v->n_pick;
    v->ro.omit = (const char *const *)v->omit;
    v->ro.n_omit = v->n_omit;
    return 0;
}

void api_view_free(struct api_view *v)
{
    for (size_t i = 0; i < v->n_pick; i++)
        free(v->pick[i]);
    for (size_t i = 0; i < v->n_omit; i++)
        free(v->omit[i]);
    for (size_t i = 0; i < v->n_attrs; i++)
        free(v->attrs[i]);
    free(v->pick);
    free(v->omit);
    free(v->attrs);
    memset(v, 0, sizeof(*v));
}

cJSON *api_render(struct req *r, const struct api_view *v, const cJSON *doc)
{
    cJSON *out = NULL;
    struct ent_render_opts ro = v->ro;
    ro.ctx = r->ctx;
    if (ent_render(doc, &ro, &out, &r->err) != 0)
        return NULL;
    return out;
}

void api_link_context(struct req *r)
{
    char link[1200];
    const char *url = LD_CORE_URL;
    if (cJSON_IsString(r->ctx_value) && strlen(r->ctx_value->valuestring) < 1024)
        url = r->ctx_value->valuestring;
    snprintf(link, sizeof(link), "<%s>; rel=\"%s\"; type=\"application/ld+json\"", url,
             LINK_REL_CONTEXT);
    req_add_header(r, "Link", link);
}

/* GeoJSON representation (GS CIM 009 4.5.16): a Feature per entity, its
 * geometry taken from geometryProperty (default location). */
static cJSON *to_feature(struct req *r, cJSON *ent, const char *geo_name)
{
    cJSON *f = cJSON_CreateObject(), *geom = NULL;
    cJSON *id = cJSON_DetachItemFromObjectCaseSensitive(ent, "id");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(ent, geo_name);
    (void)r;
    if (cJSON_IsArray(g))
        g = cJSON_GetArrayItem(g, 0);
    if (cJSON_IsObject(g))
        geom = cJSON_HasObjectItem(g, "coordinates")
                   ? cJSON_Duplicate(g, 1)
                   : cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(g, "value"), 1);
    cJSON_AddItemToObject(f, "id", id ? id : cJSON_CreateNull());
    cJSON_AddStringToObject(f, "type", "Feature");
    cJSON_AddItemToObject(f, "geometry", geom ? geom : cJSON_CreateNull());
    cJSON_AddItemToObject(f, "properties", ent);
    return f;
}

static cJSON *to_geojson(struct req *r, cJSON *body)
{
    const char *gp = req_query(r, "geometryProperty");
    char *name = NULL;
    cJSON *out;

    if (gp) {
        char *iri = api_expand(r, gp);
        name = iri ? ld_compact(r->ctx, iri) : NULL;
        free(iri);
    }
    if (cJSON_IsArray(body)) {
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "type", "FeatureCollection");
        cJSON *features = cJSON_AddArrayToObject(out, "features");
        while (cJSON_GetArraySize(body) > 0)
            cJSON_AddItemToArray(features,
                                 to_feature(r, cJSON_DetachItemFromArray(body, 0),
                                            name ? name : "location"));
        cJSON_Delete(body);
    } else {
        out = to_feature(r, body, name ? name : "location");
    }
    free(name);
    return out;
}

int api_reply_entities(struct req *r, int status, cJSON *body)
{
    if (r->accept == MIME_GEO_JSON) {
        api_link_context(r);
        return req_reply_json(r, status, to_geojson(r, body));
    }
    if (r->accept == MIME_LD_JSON) {
        const cJSON *ctx = r->ctx_value;
        cJSON *it;
        if (cJSON_IsArray(body) && ctx)
            cJSON_ArrayForEach(it, body) if (cJSON_IsObject(it))
                cJSON_AddItemToObject(it, "@context", cJSON_Duplicate(ctx, 1));
    } else {
        api_link_context(r);
    }
    return req_reply_json(r, status, body);
}

/* --- write jobs ------------------------------------------------------------ */

struct job *job_new(size_t n_ops)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->ops = calloc(n_ops ? n_ops : 1, sizeof(*j->ops));
    j->keep = cJSON_CreateArray();
    if (j->ops == NULL || j->keep == NULL) {
        free(j->ops);
        cJSON_Delete(j->keep);
        free(j);
        return NULL;
    }
    j->n_ops = n_ops;
    return j;
}

cJSON *job_keep(struct job *j, cJSON *doc)
{
    if (doc)
        cJSON_AddItemToArray(j->keep, doc);
    return doc;
}

const char *job_str(struct job *j, char *s)
{
    char **p;
    if (s == NULL)
        return NULL;
    if ((p = realloc(j->strs, (j->n_strs + 1) * sizeof(*p))) == NULL) {
        free(s);
        return NULL;
    }
    j->strs = p;
    j->strs[j->n_strs++] = s;
    return s;
}

void job_free(struct job *j)
{
    if (j == NULL)
        return;
    store_ops_clear(j->ops, j->n_ops);
    free(j->ops);
    cJSON_Delete(j->keep);
    for (size_t i = 0; i < j->n_strs; i++)
        free(j->strs[i]);
    free(j->strs);
    if (j->have_view)
        api_view_free(&j->view);
    if (j->extra_free)
        j->extra_free(j->extra);
    free(j);
}

static void job_done(void *ud)
{
    req_resume(ud);
}

struct job *api_job(struct req *r)
{
    return r->cont_ud;
}

int api_submit(struct req *r, struct job *j, http_handler_fn cont)
{
    struct app *app = api_app(r);
    r->cont = cont;
    r->cont_ud = j;
    r->cont_free = (void (*)(void *))job_free;
    if (req_suspend(r) != 0) {
        r->cont = NULL;
        return req_fail(r, ERR_UNAVAILABLE, "the hub is shutting down");
    }
    if (store_submit(app->store, j->ops, j->n_ops, job_done, r) != 0) {
        for (size_t i = 0; i < j->n_ops; i++)
            err_set(&j->ops[i].err, ERR_UNAVAILABLE, "the store is shutting down");
        req_resume(r);
    }
    return HTTP_ASYNC;
}
