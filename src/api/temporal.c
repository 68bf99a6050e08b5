/*
 * temporal.c - GET /ngsi-ld/v1/temporal/entities/{id} (GS CIM 009 5.7.3):
 * the history of one entity's attributes, from the store's append-only
 * history, in the temporal representation (every attribute an array of
 * instances with instanceId) or, with options=temporalValues, the
 * simplified one ("values": [[value, time], ...]). timerel before / after /
 * between with timeAt / endTimeAt, attrs, lastN. The query over several
 * entities, aggregation and the temporal writes are the next step (issue 3).
 */
#include "api/api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "util/time.h"

struct hist {
    cJSON *attrs; /* attr IRI -> [instances] (storage form) */
    cJSON *ids;   /* attr IRI -> [instanceId], same order */
    int oom;
};

static int collect(void *ud, const char *attr, int64_t iid, int64_t t_ms, const char *text)
{
    struct hist *h = ud;
    cJSON *inst = cJSON_Parse(text), *arr;
    char id[64];
    (void)t_ms;
    if (inst == NULL)
        return 0; /* a corrupt row is skipped */
    snprintf(id, sizeof(id), "urn:ngsi-ld:attribute:instance:%lld", (long long)iid);
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(h->ids, attr);
    if (((arr = cJSON_GetObjectItemCaseSensitive(h->attrs, attr)) == NULL &&
         (arr = cJSON_AddArrayToObject(h->attrs, attr)) == NULL) ||
        (ids == NULL && (ids = cJSON_AddArrayToObject(h->ids, attr)) == NULL)) {
        cJSON_Delete(inst);
        h->oom = 1;
        return 1;
    }
    cJSON_AddItemToArray(arr, inst);
    cJSON_AddItemToArray(ids, cJSON_CreateString(id));
    return 0;
}

static int parse_time(struct req *r, const char *name, int64_t *ms)
{
    const char *v = req_query(r, name);
    if (v == NULL)
        return err_set(&r->err, ERR_BAD_DATA, "%s is required with this timerel", name);
    if (tm_parse(v, ms) != 0)
        return err_set(&r->err, ERR_BAD_DATA, "%s '%.64s' is not a date-time", name, v);
    return 0;
}

static int time_window(struct req *r, int64_t *from, int64_t *to)
{
    const char *rel = req_query(r, "timerel"), *tp = req_query(r, "timeproperty");
    int64_t a, b;

    *from = INT64_MIN;
    *to = INT64_MAX;
    if (tp && strcmp(tp, "observedAt") != 0)
        return err_set(&r->err, ERR_NOT_SUPPORTED,
                       "timeproperty %.32s: the history is kept by observedAt", tp);
    if (rel == NULL)
        return req_query(r, "timeAt") ? err_set(&r->err, ERR_BAD_DATA, "timeAt needs timerel")
                                      : 0;
    if (!strcmp(rel, "before")) {
        if (parse_time(r, "timeAt", &a))
            return r->err.code;
        *to = a;
    } else if (!strcmp(rel, "after")) {
        if (parse_time(r, "timeAt", &a))
            return r->err.code;
        *from = a + 1;
    } else if (!strcmp(rel, "between")) {
        if (parse_time(r, "timeAt", &a) || parse_time(r, "endTimeAt", &b))
            return r->err.code;
        if (b <= a)
            return err_set(&r->err, ERR_BAD_DATA, "endTimeAt must be after timeAt");
        *from = a;
        *to = b;
    } else {
        return err_set(&r->err, ERR_BAD_DATA, "timerel must be before, after or between");
    }
    return 0;
}

/* The simplified temporal representation of one rendered attribute. */
static cJSON *temporal_values(const cJSON *instances)
{
    cJSON *o = cJSON_CreateObject(), *values = cJSON_CreateArray();
    const cJSON *inst;
    const char *type = "Property";
    cJSON_ArrayForEach(inst, instances)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(inst, "type");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(inst, "value");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(inst, "observedAt");
        if (v == NULL)
            v = cJSON_GetObjectItemCaseSensitive(inst, "object");
        if (cJSON_IsString(t))
            type = t->valuestring;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        cJSON_AddItemToArray(pair, at ? cJSON_Duplicate(at, 1) : cJSON_CreateNull());
        cJSON_AddItemToArray(values, pair);
    }
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddItemToObject(o, "values", values);
    return o;
}

int api_temporal_entity_get(struct req *r)
{
    struct app *app = api_app(r);
    struct api_view v;
    struct hist h = {0};
    struct store_history_query hq = {0};
    const char *id = r->route_params[0], *last = req_query(r, "lastN");
    cJSON *cur = NULL, *doc = NULL, *out = NULL;
    struct err ignore = {0};
    int values;

    memset(&v, 0, sizeof(v));
    if (!api_is_uri(id))
        return req_fail(r, ERR_BAD_DATA, "entity id '%.200s' is not a URI", id);
    if (api_resolve_ctx(r, NULL) != 0 || api_view_parse(r, &v) != 0 ||
        time_window(r, &hq.from_ms, &hq.to_ms) != 0)
        goto fail;
    values = v.temporal_values;
    if (last) {
        char *end;
        hq.last_n = strtol(last, &end, 10);
        if (*last == '\0' || *end || hq.last_n <= 0 || hq.last_n > 100000) {
            err_set(&r->err, ERR_BAD_DATA, "lastN must be an integer in [1, 100000]");
            goto fail;
        }
    }
    hq.tenant = r->tenant;
    hq.entity_id = id;
    hq.attrs = (const char *const *)v.attrs;
    hq.n_attrs = v.n_attrs;
    if ((h.attrs = cJSON_CreateObject()) == NULL || (h.ids = cJSON_CreateObject()) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (store_history(app->store, &hq, collect, &h, &r->err) != 0)
        goto fail;
    if (h.oom) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (store_entity_get(app->store, r->tenant, id, &cur, &ignore) != 0 &&
        h.attrs->child == NULL) {
        err_set(&r->err, ERR_NOT_FOUND, "no entity %s and no history of it", id);
        goto fail;
    }
    /* a document of the history, rendered like an entity (names compacted) */
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddItemToObject(doc, "type",
                          cur ? cJSON_Duplicate(ent_doc_types(cur), 1) : cJSON_CreateArray());
    cJSON_AddItemToObject(doc, "attrs", h.attrs);
    h.attrs = NULL;
    v.ro.format = ENT_NORMALIZED;
    v.ro.n_pick = 0; /* attrs already selected the history */
    if ((out = api_render(r, &v, doc)) == NULL)
        goto fail;
    /* every attribute is an array of instances with its instanceId (the
     * renderer keeps the document's attribute and instance order); or the
     * simplified [[value, time]...] */
    const cJSON *ids = h.ids->child;
    for (cJSON *a = out->child; a; a = a->next) {
        if (!strcmp(a->string, "id") || !strcmp(a->string, "type") || a->string[0] == '@')
            continue;
        if (cJSON_IsObject(a)) {
            cJSON *arr = cJSON_CreateArray();
            cJSON_AddItemToArray(arr, cJSON_Duplicate(a, 1));
            arr->string = strdup(a->string); /* replacing keeps no key */
            cJSON_ReplaceItemViaPointer(out, a, arr);
            a = arr;
        }
        if (ids) {
            cJSON *inst = a->child;
            for (const cJSON *iid = ids->child; iid && inst; iid = iid->next, inst = inst->next)
                cJSON_AddStringToObject(inst, "instanceId", iid->valuestring);
            ids = ids->next;
        }
        if (values) {
            cJSON *tv = temporal_values(a);
            tv->string = strdup(a->string);
            cJSON_ReplaceItemViaPointer(out, a, tv);
            a = tv;
        }
    }
    cJSON_Delete(cur);
    cJSON_Delete(doc);
    cJSON_Delete(h.ids);
    api_view_free(&v);
    return api_reply_entities(r, 200, out);
fail:
    cJSON_Delete(h.attrs);
    cJSON_Delete(h.ids);
    cJSON_Delete(cur);
    cJSON_Delete(doc);
    api_view_free(&v);
    return req_reply_error(r);
}
