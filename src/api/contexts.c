/*
 * contexts.c - /jsonldContexts (GS CIM 009 5.13): list, host, serve and
 * delete @context documents. The cache (ld/cache.c) owns them and keeps
 * them in the store, so a restart works offline.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/cache.h"

static int bool_param(struct req *r, const char *name, int *out)
{
    const char *v = req_query(r, name);
    *out = 0;
    if (v == NULL || !strcmp(v, "false"))
        return 0;
    if (!strcmp(v, "true")) {
        *out = 1;
        return 0;
    }
    return err_set(&r->err, ERR_BAD_DATA, "%s must be true or false", name);
}

int api_contexts_list(struct req *r)
{
    cJSON *out = NULL;
    int details;
    if (bool_param(r, "details", &details) != 0 ||
        ld_cache_list(api_app(r)->contexts, details, req_query(r, "kind"), &out, &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 200, out);
}

int api_contexts_create(struct req *r)
{
    char *id = NULL, *url = NULL, loc[512];
    if (r->body == NULL || r->body_len == 0)
        return req_fail(r, ERR_INVALID_REQUEST, "request body is empty");
    if (ld_cache_host(api_app(r)->contexts, r->body, &id, &url, &r->err) != 0)
        return req_reply_error(r);
    size_t n = (size_t)snprintf(loc, sizeof(loc), API_BASE "/jsonldContexts/");
    api_path_escape(id, loc + n, sizeof(loc) - n);
    req_add_header(r, "Location", loc);
    free(id);
    free(url);
    return req_reply_json(r, 201, NULL);
}

int api_context_get(struct req *r)
{
    char *text = NULL;
    cJSON *info = NULL;
    int details;
    if (bool_param(r, "details", &details) != 0 ||
        ld_cache_get(api_app(r)->contexts, r->route_params[0], details, &text, &info, &r->err) !=
            0)
        return req_reply_error(r);
    if (details)
        return req_reply_json(r, 200, info);
    req_reply_text(r, 200, "application/ld+json", text, strlen(text));
    free(text);
    return HTTP_DONE;
}

int api_context_delete(struct req *r)
{
    int reload;
    if (bool_param(r, "reload", &reload) != 0 ||
        ld_cache_delete(api_app(r)->contexts, r->route_params[0], reload, &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 204, NULL);
}
