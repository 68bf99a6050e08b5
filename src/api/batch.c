/*
 * batch.c - /entityOperations/{create,upsert,update,delete,merge} (GS CIM
 * 009 5.6.7 - 5.6.10, 5.6.20). Every entity is validated on the HTTP
 * thread; the valid ones go to the writer as one submission (one
 * transaction, one fsync) and the answer lists each entity's outcome:
 * 201/204 when all succeeded, 207 {"success": [...], "errors": [...]}
 * otherwise. Invalid entities never reach the store.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 100000

enum batch_kind { B_CREATE, B_UPSERT, B_UPDATE, B_DELETE, B_MERGE };

/* Errors found before the write, kept for the answer. */
struct pre_errors {
    cJSON *errors; /* [{entityId, error: ProblemDetails}] */
};

static void pre_free(void *ud)
{
    struct pre_errors *p = ud;
    if (p) {
        cJSON_Delete(p->errors);
        free(p);
    }
}

static void add_error(cJSON *errors, const char *id, int code, const char *detail)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "entityId", id ? id : "");
    cJSON_AddItemToObject(e, "error", problem_json(code, detail));
    cJSON_AddItemToArray(errors, e);
}

static int batch_done(struct req *r)
{
    struct job *j = api_job(r);
    struct pre_errors *pre = j->extra;
    cJSON *success = cJSON_CreateArray(), *errors = pre->errors;
    int n_created = 0, n_ok = 0;
    enum batch_kind kind = (enum batch_kind)j->tag;

    pre->errors = NULL;
    for (size_t i = 0; i < j->n_ops; i++) {
        struct store_op *op = &j->ops[i];
        if (op->err.code) {
            add_error(errors, op->entity_id, op->err.code, op->err.detail);
            continue;
        }
        n_ok++;
        if (kind != B_UPSERT || op->created) {
            cJSON_AddItemToArray(success, cJSON_CreateString(op->entity_id));
            n_created += op->created;
        }
    }
    if (cJSON_GetArraySize(errors) == 0) {
        cJSON_Delete(errors);
        if (kind == B_CREATE || (kind == B_UPSERT && n_created > 0))
            return req_reply_json(r, 201, success);
        cJSON_Delete(success);
        return req_reply_json(r, 204, NULL);
    }
    if (kind == B_UPSERT) {
        /* 207 lists every entity that succeeded, created or updated */
        cJSON_Delete(success);
        success = cJSON_CreateArray();
        for (size_t i = 0; i < j->n_ops; i++)
            if (!j->ops[i].err.code)
                cJSON_AddItemToArray(success, cJSON_CreateString(j->ops[i].entity_id));
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddItemToObject(res, "success", success);
    cJSON_AddItemToObject(res, "errors", errors);
    (void)n_ok;
    return req_reply_json(r, 207, res);
}

static int batch(struct req *r, enum batch_kind kind)
{
    cJSON *body = NULL, *it;
    struct api_view v;
    struct job *j = NULL;
    struct pre_errors *pre = NULL;
    size_t n = 0;
    int size;

    memset(&v, 0, sizeof(v));
    if (api_body_json(r, &body) != 0)
        return req_reply_error(r);
    if (!cJSON_IsArray(body)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the body must be a JSON array");
    }
    size = cJSON_GetArraySize(body);
    if (size == 0 || size > BATCH_MAX) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "a batch holds 1 to %d entries", BATCH_MAX);
    }
    if ((kind != B_DELETE && api_resolve_ctx(r, body) != 0) ||
        (kind == B_DELETE && api_resolve_ctx(r, NULL) != 0) || api_view_parse(r, &v) != 0)
        goto fail;
    if ((j = job_new((size_t)size)) == NULL || (pre = calloc(1, sizeof(*pre))) == NULL ||
        (pre->errors = cJSON_CreateArray()) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    j->extra = pre;
    j->extra_free = pre_free;
    pre = NULL;
    j->tag = kind;
    cJSON_ArrayForEach(it, body)
    {
        struct err e = {0};
        cJSON *doc = NULL;
        const char *id = NULL;
        const cJSON *jid = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "id") : it;
        const char *shown = cJSON_IsString(jid) ? jid->valuestring : NULL;

        if (kind == B_DELETE) {
            if (!cJSON_IsString(it) || !api_is_uri(it->valuestring)) {
                add_error(((struct pre_errors *)j->extra)->errors, shown, ERR_BAD_DATA,
                          "not an entity id (URI)");
                continue;
            }
            id = job_str(j, strdup(it->valuestring));
        } else if (kind == B_CREATE || kind == B_UPSERT) {
            if (ent_parse(it, r->ctx, ENT_FULL, &doc, &e) != 0) {
                add_error(((struct pre_errors *)j->extra)->errors, shown, e.code, e.detail);
                continue;
            }
            job_keep(j, doc);
            id = ent_doc_id(doc);
        } else {
            /* update / merge: id plus attributes; the type is optional */
            if (shown == NULL || !api_is_uri(shown)) {
                add_error(((struct pre_errors *)j->extra)->errors, shown, ERR_BAD_DATA,
                          "entity without a valid id");
                continue;
            }
            if (ent_parse(it, r->ctx, ENT_FRAGMENT | (kind == B_MERGE ? ENT_MERGE : 0), &doc,
                          &e) != 0) {
                add_error(((struct pre_errors *)j->extra)->errors, shown, e.code, e.detail);
                continue;
            }
            job_keep(j, doc);
            id = job_str(j, strdup(shown));
        }
        struct store_op *op = &j->ops[n++];
        op->tenant = r->tenant;
        op->entity_id = id;
        op->doc = doc;
        switch (kind) {
        case B_CREATE: op->kind = STORE_CREATE; break;
        case B_UPSERT: op->kind = v.upsert_update ? STORE_UPSERT_UPDATE : STORE_UPSERT_REPLACE; break;
        case B_UPDATE: op->kind = STORE_APPEND; op->no_overwrite = v.no_overwrite; break;
        case B_DELETE: op->kind = STORE_DELETE; break;
        case B_MERGE: op->kind = STORE_MERGE; break;
        }
    }
    cJSON_Delete(body);
    api_view_free(&v);
    j->n_ops = n;
    return api_submit(r, j, batch_done);
fail:
    cJSON_Delete(body);
    api_view_free(&v);
    pre_free(pre);
    job_free(j);
    return req_reply_error(r);
}

int api_batch_create(struct req *r)
{
    return batch(r, B_CREATE);
}

int api_batch_upsert(struct req *r)
{
    return batch(r, B_UPSERT);
}

int api_batch_update(struct req *r)
{
    return batch(r, B_UPDATE);
}

int api_batch_delete(struct req *r)
{
    return batch(r, B_DELETE);
}

int api_batch_merge(struct req *r)
{
    return batch(r, B_MERGE);
}
