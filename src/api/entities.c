/*
 * entities.c - /ngsi-ld/v1/entities/{id} and its attributes (ETSI GS CIM
 * 009 5.6 and 5.7.1): create, retrieve, replace, merge, delete, and the
 * attribute operations. Each write parses and validates on the HTTP thread,
 * then hands one op to the store writer and answers from the continuation
 * once the write is durable.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"

/* Fail with the first op's error as ProblemDetails. */
static int op_failed(struct req *r, const struct store_op *op)
{
    r->err = op->err;
    return req_reply_error(r);
}

static int check_path_id(struct req *r, const char **id)
{
    *id = r->route_params[0];
    if (!api_is_uri(*id))
        return req_fail(r, ERR_BAD_DATA, "entity id '%.200s' is not a URI", *id);
    return 0;
}

/* Parse the body and resolve the context. */
static int body_and_ctx(struct req *r, cJSON **body)
{
    if (api_body_json(r, body) != 0)
        return req_reply_error(r), -1;
    if (api_resolve_ctx(r, *body) != 0) {
        cJSON_Delete(*body);
        *body = NULL;
        return req_reply_error(r), -1;
    }
    return 0;
}

/* ---- POST /entities ---- */

static int create_done(struct req *r)
{
    struct job *j = api_job(r);
    char loc[2400];
    const char *id = j->ops[0].entity_id;

    if (j->ops[0].err.code)
        return op_failed(r, &j->ops[0]);
    size_t n = (size_t)snprintf(loc, sizeof(loc), API_BASE "/entities/");
    api_path_escape(id, loc + n, sizeof(loc) - n);
    req_add_header(r, "Location", loc);
    return req_reply_json(r, 201, NULL);
}

int api_entity_create(struct req *r)
{
    cJSON *body, *doc = NULL;
    struct job *j;

    if (body_and_ctx(r, &body) != 0)
        return HTTP_DONE;
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the body must be a JSON object (an entity)");
    }
    int rc = ent_parse(body, r->ctx, ENT_FULL, &doc, &r->err);
    cJSON_Delete(body);
    if (rc)
        return req_reply_error(r);
    if ((j = job_new(1)) == NULL) {
        cJSON_Delete(doc);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    j->ops[0].kind = STORE_CREATE;
    j->ops[0].tenant = r->tenant;
    j->ops[0].doc = job_keep(j, doc);
    j->ops[0].entity_id = ent_doc_id(doc);
    return api_submit(r, j, create_done);
}

/* ---- GET /entities/{id} ---- */

int api_entity_get(struct req *r)
{
    struct app *app = api_app(r);
    struct api_view v;
    const char *id;
    cJSON *doc = NULL, *out;

    memset(&v, 0, sizeof(v));
    if (check_path_id(r, &id) != 0)
        return HTTP_DONE;
    if (api_resolve_ctx(r, NULL) != 0 || api_view_parse(r, &v) != 0) {
        api_view_free(&v);
        return req_reply_error(r);
    }
    if (store_entity_get(app->store, r->tenant, id, &doc, &r->err) != 0) {
        api_view_free(&v);
        return req_reply_error(r);
    }
    if (v.n_attrs) {
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs");
        int any = 0;
        for (size_t i = 0; i < v.n_attrs; i++)
            any |= cJSON_HasObjectItem(attrs, v.attrs[i]);
        if (!any) {
            cJSON_Delete(doc);
            api_view_free(&v);
            return req_fail(r, ERR_NOT_FOUND, "entity %s has none of the requested attributes",
                            id);
        }
    }
    out = api_render(r, &v, doc);
    cJSON_Delete(doc);
    api_view_free(&v);
    if (out == NULL)
        return req_reply_error(r);
    return api_reply_entities(r, 200, out);
}

/* ---- writes answered with 204 ---- */

static int done_204(struct req *r)
{
    struct job *j = api_job(r);
    if (j->ops[0].err.code)
        return op_failed(r, &j->ops[0]);
    return req_reply_json(r, 204, NULL);
}

/* Compact the IRIs of an updated / notUpdated list. */
static cJSON *compact_names(struct req *r, const cJSON *list, int objects)
{
    cJSON *out = cJSON_CreateArray(), *it;
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *name = objects ? cJSON_GetObjectItemCaseSensitive(it, "attributeName") : it;
        char *c = cJSON_IsString(name) ? ld_compact(r->ctx, name->valuestring) : NULL;
        if (objects) {
            cJSON *o = cJSON_Duplicate(it, 1);
            if (o && c)
                cJSON_ReplaceItemInObject(o, "attributeName", cJSON_CreateString(c));
            cJSON_AddItemToArray(out, o);
        } else if (c) {
            cJSON_AddItemToArray(out, cJSON_CreateString(c));
        }
        free(c);
    }
    return out;
}

/* 204 when every attribute was updated, else 207 with the lists. */
static int done_attrs(struct req *r)
{
    struct job *j = api_job(r);
    struct store_op *op = &j->ops[0];
    cJSON *res;

    if (op->err.code)
        return op_failed(r, op);
    if (cJSON_GetArraySize(op->not_updated) == 0)
        return req_reply_json(r, 204, NULL);
    res = cJSON_CreateObject();
    cJSON_AddItemToObject(res, "updated", compact_names(r, op->updated, 0));
    cJSON_AddItemToObject(res, "notUpdated", compact_names(r, op->not_updated, 1));
    return req_reply_json(r, 207, res);
}

/* Shared by the writes whose body is an entity or a fragment. */
static int fragment_write(struct req *r, enum store_op_kind kind, int flags,
                          http_handler_fn done)
{
    cJSON *body, *doc = NULL;
    struct api_view v;
    const char *id;
    struct job *j;
    int rc;

    memset(&v, 0, sizeof(v));
    if (check_path_id(r, &id) != 0)
        return HTTP_DONE;
    if (body_and_ctx(r, &body) != 0)
        return HTTP_DONE;
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the body must be a JSON object");
    }
    const cJSON *bid = cJSON_GetObjectItemCaseSensitive(body, "id");
    if (bid && (!cJSON_IsString(bid) || strcmp(bid->valuestring, id) != 0)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the id in the body differs from the id in the path");
    }
    rc = ent_parse(body, r->ctx, flags, &doc, &r->err);
    cJSON_Delete(body);
    if (rc)
        return req_reply_error(r);
    if (api_view_parse(r, &v) != 0) {
        api_view_free(&v);
        cJSON_Delete(doc);
        return req_reply_error(r);
    }
    if ((j = job_new(1)) == NULL) {
        api_view_free(&v);
        cJSON_Delete(doc);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    j->ops[0].kind = kind;
    j->ops[0].tenant = r->tenant;
    j->ops[0].entity_id = job_str(j, strdup(id));
    j->ops[0].doc = job_keep(j, doc);
    j->ops[0].no_overwrite = v.no_overwrite;
    api_view_free(&v);
    return api_submit(r, j, done);
}

int api_entity_replace(struct req *r)
{
    return fragment_write(r, STORE_REPLACE, ENT_FRAGMENT, done_204);
}

int api_entity_merge(struct req *r)
{
    return fragment_write(r, STORE_MERGE, ENT_FRAGMENT | ENT_MERGE, done_204);
}

int api_attrs_append(struct req *r)
{
    return fragment_write(r, STORE_APPEND, ENT_FRAGMENT, done_attrs);
}

int api_attrs_update(struct req *r)
{
    return fragment_write(r, STORE_UPDATE, ENT_FRAGMENT, done_attrs);
}

int api_entity_delete(struct req *r)
{
    const char *id;
    struct job *j;

    if (check_path_id(r, &id) != 0)
        return HTTP_DONE;
    if ((j = job_new(1)) == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    j->ops[0].kind = STORE_DELETE;
    j->ops[0].tenant = r->tenant;
    j->ops[0].entity_id = job_str(j, strdup(id));
    return api_submit(r, j, done_204);
}

/* ---- /entities/{id}/attrs/{attrId} ---- */

static int attr_write(struct req *r, enum store_op_kind kind)
{
    cJSON *body = NULL, *inst = NULL;
    const char *id, *attr = r->route_params[1];
    char *iri;
    struct job *j;

    if (check_path_id(r, &id) != 0)
        return HTTP_DONE;
    if (kind == STORE_ATTR_DELETE) {
        const char *ds = req_query(r, "datasetId"), *all = req_query(r, "deleteAll");
        if (ds && !api_is_uri(ds))
            return req_fail(r, ERR_BAD_DATA, "datasetId '%.200s' is not a URI", ds);
        if (all && strcmp(all, "true") != 0 && strcmp(all, "false") != 0)
            return req_fail(r, ERR_BAD_DATA, "deleteAll must be true or false");
        if (api_resolve_ctx(r, NULL) != 0)
            return req_reply_error(r);
    } else if (body_and_ctx(r, &body) != 0) {
        return HTTP_DONE;
    }
    if ((iri = api_expand(r, attr)) == NULL) {
        cJSON_Delete(body);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    if (body && ent_parse_attr(iri, body, r->ctx, kind == STORE_ATTR_PATCH ? ENT_MERGE : 0, &inst,
                               &r->err) != 0) {
        cJSON_Delete(body);
        free(iri);
        return req_reply_error(r);
    }
    cJSON_Delete(body);
    if ((j = job_new(1)) == NULL) {
        cJSON_Delete(inst);
        free(iri);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    j->ops[0].kind = kind;
    j->ops[0].tenant = r->tenant;
    j->ops[0].entity_id = job_str(j, strdup(id));
    j->ops[0].attr_iri = job_str(j, iri);
    j->ops[0].inst = job_keep(j, inst);
    if (kind == STORE_ATTR_DELETE) {
        const char *ds = req_query(r, "datasetId"), *all = req_query(r, "deleteAll");
        j->ops[0].dataset_id = ds ? job_str(j, strdup(ds)) : NULL;
        j->ops[0].delete_all = all && strcmp(all, "true") == 0;
    }
    return api_submit(r, j, done_204);
}

int api_attr_patch(struct req *r)
{
    return attr_write(r, STORE_ATTR_PATCH);
}

int api_attr_replace(struct req *r)
{
    return attr_write(r, STORE_ATTR_REPLACE);
}

int api_attr_delete(struct req *r)
{
    return attr_write(r, STORE_ATTR_DELETE);
}
