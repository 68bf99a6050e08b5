/*
 * temporal_write.c - the temporal API's writes (GS CIM 009 5.6.11-5.6.16):
 *   POST   /temporal/entities                          create or add to a temporal entity
 *   POST   /temporal/entities/{id}/attrs               add attribute instances
 *   DELETE /temporal/entities/{id}                     the history and the entity
 *   DELETE /temporal/entities/{id}/attrs/{attrId}      an attribute's instances
 *                                                      (datasetId, deleteAll)
 *   PATCH  /temporal/entities/{id}/attrs/{attrId}/{instanceId}
 *   DELETE /temporal/entities/{id}/attrs/{attrId}/{instanceId}
 *
 * The body of a temporal write is an entity in the temporal representation:
 * each attribute an instance or an array of instances, every instance with
 * an observedAt. Each instance is validated and expanded on the HTTP worker
 * (model/ent_parse_attr), then one store op carries all of them to the
 * writer, which appends every instance to the history and, in the same
 * transaction, keeps the current state in step: the newest instance of each
 * attribute and datasetId replaces the current one unless that is newer
 * (observedAt). So a temporal write is durable when acknowledged, ordered
 * with the other writes, and GET /entities shows the latest values; a late
 * back-fill extends the history without turning back the current state.
 * The temporal deletes and the instance PATCH touch the history only,
 * except DELETE /temporal/entities/{id}, which deletes the entity as well
 * (in this hub the temporal entity and the entity are one).
 */
#include "api/api.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "util/time.h"

#define INSTANCE_PREFIX "urn:ngsi-ld:attribute:instance:"

static int op_failed(struct req *r, const struct store_op *op)
{
    r->err = op->err;
    return req_reply_error(r);
}

static int is_member(const char *k)
{
    return !strcmp(k, "id") || !strcmp(k, "type") || !strcmp(k, "scope") ||
           !strcmp(k, "@context") || !strcmp(k, "createdAt") || !strcmp(k, "modifiedAt");
}

static const char *dataset_of(const cJSON *inst)
{
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
    return cJSON_IsString(ds) ? ds->valuestring : NULL;
}

static int64_t observed(const cJSON *inst)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(inst, "observedAt");
    int64_t t = INT64_MIN;
    if (cJSON_IsString(o))
        tm_parse(o->valuestring, &t);
    return t;
}

/* Keep inst (a copy) in the current-state fragment's attribute `arr` when
 * it is the newest of its datasetId so far. */
static int keep_latest(cJSON *arr, const cJSON *inst)
{
    const char *ds = dataset_of(inst);
    cJSON *it, *copy;

    cJSON_ArrayForEach(it, arr)
    {
        const char *ids = dataset_of(it);
        if ((ds == NULL) != (ids == NULL) || (ds && strcmp(ds, ids) != 0))
            continue;
        if (observed(inst) < observed(it))
            return 0;
        if ((copy = cJSON_Duplicate(inst, 1)) == NULL)
            return ERR_NOMEM;
        cJSON_ReplaceItemViaPointer(arr, it, copy);
        return 0;
    }
    if ((copy = cJSON_Duplicate(inst, 1)) == NULL)
        return ERR_NOMEM;
    cJSON_AddItemToArray(arr, copy);
    return 0;
}

/* The attributes of a temporal body: *history = {IRI: [instances]} and
 * doc.attrs = the newest instance of each attribute and datasetId. */
static int parse_instances(struct req *r, const cJSON *body, cJSON *doc, cJSON **history)
{
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs");
    const cJSON *m;
    long n_total = 0;

    if ((*history = cJSON_CreateObject()) == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    if (attrs == NULL && (attrs = cJSON_AddObjectToObject(doc, "attrs")) == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(m, body)
    {
        const cJSON *list = m, *one;
        cJSON *hist_arr, *cur_arr;
        char *iri;

        if (is_member(m->string))
            continue;
        if ((iri = api_expand(r, m->string)) == NULL)
            return err_set(&r->err, ERR_NOMEM, "out of memory");
        hist_arr = cJSON_GetObjectItemCaseSensitive(*history, iri);
        if (hist_arr == NULL)
            hist_arr = cJSON_AddArrayToObject(*history, iri);
        cur_arr = cJSON_GetObjectItemCaseSensitive(attrs, iri);
        if (cur_arr == NULL)
            cur_arr = cJSON_AddArrayToObject(attrs, iri);
        if (hist_arr == NULL || cur_arr == NULL) {
            free(iri);
            return err_set(&r->err, ERR_NOMEM, "out of memory");
        }
        if (!cJSON_IsArray(m))
            list = NULL; /* one instance: m itself */
        if (cJSON_IsArray(m) && m->child == NULL) {
            err_set(&r->err, ERR_BAD_DATA, "attribute '%.100s' has no instance", m->string);
            free(iri);
            return ERR_BAD_DATA;
        }
        for (one = list ? list->child : m; one; one = list ? one->next : NULL) {
            cJSON *inst = NULL;
            if (++n_total > ENT_MAX_INSTANCES) {
                free(iri);
                return err_set(&r->err, ERR_BAD_DATA, "more than %d instances in one body",
                               ENT_MAX_INSTANCES);
            }
            if (!cJSON_IsObject(one)) {
                free(iri);
                return err_set(&r->err, ERR_BAD_DATA,
                               "attribute '%.100s': a temporal instance is an object",
                               m->string);
            }
            if (ent_parse_attr(iri, one, r->ctx, 0, &inst, &r->err) != 0) {
                free(iri);
                return r->err.code;
            }
            if (observed(inst) == INT64_MIN) {
                cJSON_Delete(inst);
                err_set(&r->err, ERR_BAD_DATA,
                        "attribute '%.100s': every temporal instance needs observedAt",
                        m->string);
                free(iri);
                return ERR_BAD_DATA;
            }
            if (keep_latest(cur_arr, inst) != 0) {
                cJSON_Delete(inst);
                free(iri);
                return err_set(&r->err, ERR_NOMEM, "out of memory");
            }
            cJSON_AddItemToArray(hist_arr, inst);
        }
        free(iri);
    }
    return 0;
}

/* ---- POST /temporal/entities -------------------------------------------------- */

static int create_done(struct req *r)
{
    struct job *j = api_job(r);
    char loc[2400];

    if (j->ops[0].err.code)
        return op_failed(r, &j->ops[0]);
    if (!j->ops[0].created)
        return req_reply_json(r, 204, NULL);
    size_t n = (size_t)snprintf(loc, sizeof(loc), API_BASE "/temporal/entities/");
    api_path_escape(j->ops[0].entity_id, loc + n, sizeof(loc) - n);
    req_add_header(r, "Location", loc);
    return req_reply_json(r, 201, NULL);
}

static int simple_done(struct req *r)
{
    struct job *j = api_job(r);
    if (j->ops[0].err.code)
        return op_failed(r, &j->ops[0]);
    return req_reply_json(r, 204, NULL);
}

/* Parse body into a TEMPORAL_UPSERT job: with path_id (POST .../attrs) the
 * entity must exist; else the body names the entity (id and type). */
static int temporal_upsert(struct req *r, const char *path_id)
{
    cJSON *body = NULL, *head = NULL, *doc = NULL, *history = NULL;
    struct job *j = NULL;
    const cJSON *m;

    if (path_id && !api_is_uri(path_id))
        return req_fail(r, ERR_BAD_DATA, "entity id '%.200s' is not a URI", path_id);
    if (api_body_json(r, &body) != 0 || api_resolve_ctx(r, body) != 0)
        goto fail;
    if (!cJSON_IsObject(body)) {
        err_set(&r->err, ERR_BAD_DATA, "the body must be a JSON object (a temporal entity)");
        goto fail;
    }
    /* id, type and scope through the model, as for an entity */
    if ((head = cJSON_CreateObject()) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    cJSON_ArrayForEach(m, body) if (is_member(m->string) && strcmp(m->string, "createdAt") &&
                                     strcmp(m->string, "modifiedAt"))
        cJSON_AddItemToObject(head, m->string, cJSON_Duplicate(m, 1));
    if (ent_parse(head, r->ctx, path_id ? ENT_FRAGMENT : ENT_FULL, &doc, &r->err) != 0)
        goto fail;
    if (parse_instances(r, body, doc, &history) != 0)
        goto fail;
    if (path_id && cJSON_GetObjectItemCaseSensitive(doc, "attrs")->child == NULL) {
        err_set(&r->err, ERR_BAD_DATA, "no attribute instance to add");
        goto fail;
    }
    if ((j = job_new(1)) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    j->ops[0].kind = STORE_TEMPORAL_UPSERT;
    j->ops[0].tenant = r->tenant;
    j->ops[0].doc = job_keep(j, doc);
    j->ops[0].history = job_keep(j, history);
    j->ops[0].must_exist = path_id != NULL;
    j->ops[0].entity_id = path_id ? path_id : ent_doc_id(doc);
    cJSON_Delete(body);
    cJSON_Delete(head);
    return api_submit(r, j, path_id ? simple_done : create_done);
fail:
    cJSON_Delete(body);
    cJSON_Delete(head);
    cJSON_Delete(doc);
    cJSON_Delete(history);
    return req_reply_error(r);
}

int api_temporal_create(struct req *r)
{
    return temporal_upsert(r, NULL);
}

int api_temporal_attrs_append(struct req *r)
{
    return temporal_upsert(r, r->route_params[0]);
}

/* ---- deletes and the instance PATCH ----------------------------------------- */

static int parse_instance_id(struct req *r, const char *text, int64_t *iid)
{
    size_t n = strlen(INSTANCE_PREFIX);
    char *end;
    long long v;

    *iid = 0;
    if (strncmp(text, INSTANCE_PREFIX, n) != 0 || text[n] < '0' || text[n] > '9')
        return err_set(&r->err, ERR_BAD_DATA, "instanceId '%.200s' is not one of this hub's",
                       text);
    errno = 0;
    v = strtoll(text + n, &end, 10);
    if (*end || errno || v <= 0)
        return err_set(&r->err, ERR_BAD_DATA, "instanceId '%.200s' is not one of this hub's",
                       text);
    *iid = v;
    return 0;
}

/* A history op on entity route_params[0] (attribute route_params[1] when
 * with_attr, expanded with the request's context, resolved from body or
 * the Link header). */
static struct job *history_job(struct req *r, enum store_op_kind kind, int with_attr,
                               const cJSON *body)
{
    const char *id = r->route_params[0];
    struct job *j;

    if (!api_is_uri(id)) {
        err_set(&r->err, ERR_BAD_DATA, "entity id '%.200s' is not a URI", id);
        return NULL;
    }
    if (api_resolve_ctx(r, body) != 0)
        return NULL;
    if ((j = job_new(1)) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    j->ops[0].kind = kind;
    j->ops[0].tenant = r->tenant;
    j->ops[0].entity_id = id;
    if (with_attr && (j->ops[0].attr_iri = job_str(j, api_expand(r, r->route_params[1]))) == NULL) {
        job_free(j);
        err_set(&r->err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    return j;
}

int api_temporal_entity_delete(struct req *r)
{
    struct job *j = history_job(r, STORE_HISTORY_DELETE, 0, NULL);
    return j ? api_submit(r, j, simple_done) : req_reply_error(r);
}

int api_temporal_attr_delete(struct req *r)
{
    const char *ds = req_query(r, "datasetId"), *all = req_query(r, "deleteAll");
    struct job *j;

    if (all && strcmp(all, "true") != 0 && strcmp(all, "false") != 0)
        return req_fail(r, ERR_BAD_DATA, "deleteAll must be true or false");
    if ((j = history_job(r, STORE_HISTORY_DELETE, 1, NULL)) == NULL)
        return req_reply_error(r);
    j->ops[0].delete_all = all && !strcmp(all, "true");
    if (ds && (j->ops[0].dataset_id = job_str(j, strdup(ds))) == NULL) {
        job_free(j);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    return api_submit(r, j, simple_done);
}

int api_temporal_instance_delete(struct req *r)
{
    int64_t iid;
    struct job *j;

    if (parse_instance_id(r, r->route_params[2], &iid) != 0)
        return req_reply_error(r);
    if ((j = history_job(r, STORE_HISTORY_DELETE, 1, NULL)) == NULL)
        return req_reply_error(r);
    j->ops[0].instance_id = iid;
    j->ops[0].delete_all = 1;
    return api_submit(r, j, simple_done);
}

int api_temporal_instance_patch(struct req *r)
{
    cJSON *body = NULL, *inst = NULL;
    int64_t iid;
    struct job *j = NULL;

    if (parse_instance_id(r, r->route_params[2], &iid) != 0 || api_body_json(r, &body) != 0)
        goto fail;
    if ((j = history_job(r, STORE_HISTORY_PATCH, 1, body)) == NULL)
        goto fail;
    if (!cJSON_IsObject(body)) {
        err_set(&r->err, ERR_BAD_DATA, "the body must be an attribute instance (an object)");
        goto fail;
    }
    if (ent_parse_attr(j->ops[0].attr_iri, body, r->ctx, 0, &inst, &r->err) != 0)
        goto fail;
    if (cJSON_HasObjectItem(body, "observedAt") && observed(inst) == INT64_MIN) {
        err_set(&r->err, ERR_BAD_DATA, "observedAt must be a date-time");
        goto fail;
    }
    j->ops[0].instance_id = iid;
    j->ops[0].inst = job_keep(j, inst);
    cJSON_Delete(body);
    return api_submit(r, j, simple_done);
fail:
    job_free(j);
    cJSON_Delete(body);
    cJSON_Delete(inst);
    return req_reply_error(r);
}
