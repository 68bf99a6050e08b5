/*
 * types.c - entity type and attribute information (GS CIM 009 5.7.5 -
 * 5.7.10): GET /types, /types/{type}, /attributes, /attributes/{attrId}.
 * Computed by one pass over the tenant's entities into a small summary
 * (type -> entity count, attributes and their NGSI-LD types).
 * TODO(perf): keep the summary up to date from the change events instead
 * of scanning; fine for a city's tens of thousands of entities, not for
 * millions.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"

/* summary: {"types": {typeIRI: {"count": n, "attrs": {attrIRI: {attrType: true}}}},
 *           "attrs": {attrIRI: {"count": n, "attrTypes": {...}, "typeNames": {...}}}} */
static void mark(cJSON *set, const char *key)
{
    if (!cJSON_HasObjectItem(set, key))
        cJSON_AddTrueToObject(set, key);
}

static cJSON *child(cJSON *o, const char *key)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, key);
    if (c == NULL)
        c = cJSON_AddObjectToObject(o, key);
    return c;
}

static void bump(cJSON *o)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "count");
    if (n == NULL)
        cJSON_AddNumberToObject(o, "count", 1);
    else
        cJSON_SetNumberValue(n, n->valuedouble + 1);
}

static int summarize(void *ud, const cJSON *doc)
{
    cJSON *sum = ud, *types = child(sum, "types"), *attrs_sum = child(sum, "attrs");
    const cJSON *t, *a, *inst;
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs");

    cJSON_ArrayForEach(t, ent_doc_types(doc))
    {
        cJSON *ts = child(types, t->valuestring);
        bump(ts);
        cJSON *ta = child(ts, "attrs");
        cJSON_ArrayForEach(a, attrs)
        {
            cJSON *set = child(ta, a->string);
            cJSON_ArrayForEach(inst, a)
            {
                const cJSON *it = cJSON_GetObjectItemCaseSensitive(inst, "type");
                if (cJSON_IsString(it))
                    mark(set, it->valuestring);
            }
        }
    }
    cJSON_ArrayForEach(a, attrs)
    {
        cJSON *as = child(attrs_sum, a->string);
        bump(as);
        cJSON *at = child(as, "attrTypes"), *tn = child(as, "typeNames");
        cJSON_ArrayForEach(inst, a)
        {
            const cJSON *it = cJSON_GetObjectItemCaseSensitive(inst, "type");
            if (cJSON_IsString(it))
                mark(at, it->valuestring);
        }
        cJSON_ArrayForEach(t, ent_doc_types(doc)) mark(tn, t->valuestring);
    }
    return 0;
}

static cJSON *load_summary(struct req *r)
{
    cJSON *sum = cJSON_CreateObject();
    if (sum == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    cJSON_AddObjectToObject(sum, "types");
    cJSON_AddObjectToObject(sum, "attrs");
    if (api_resolve_ctx(r, NULL) != 0 ||
        store_scan(api_app(r)->store, r->tenant, summarize, sum, &r->err) != 0) {
        cJSON_Delete(sum);
        return NULL;
    }
    return sum;
}

static cJSON *compact_keys(struct req *r, const cJSON *set)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *k;
    cJSON_ArrayForEach(k, set)
    {
        char *c = ld_compact(r->ctx, k->string);
        if (c)
            cJSON_AddItemToArray(arr, cJSON_CreateString(c));
        free(c);
    }
    return arr;
}

static cJSON *plain_keys(const cJSON *set)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *k;
    cJSON_ArrayForEach(k, set) cJSON_AddItemToArray(arr, cJSON_CreateString(k->string));
    return arr;
}

static int want_details(struct req *r)
{
    const char *d = req_query(r, "details");
    return d && strcmp(d, "true") == 0;
}

static void add_list_id(cJSON *o, const char *kind)
{
    char id[128];
    snprintf(id, sizeof(id), "urn:ngsi-ld:%s:%08lx", kind, (unsigned long)random());
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "type", kind);
}

int api_types_list(struct req *r)
{
    cJSON *sum = load_summary(r), *out;
    const cJSON *t;
    if (sum == NULL)
        return req_reply_error(r);
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(sum, "types");
    if (want_details(r)) {
        out = cJSON_CreateArray();
        cJSON_ArrayForEach(t, types)
        {
            cJSON *o = cJSON_CreateObject();
            char *c = ld_compact(r->ctx, t->string);
            cJSON_AddStringToObject(o, "id", t->string);
            cJSON_AddStringToObject(o, "type", "EntityType");
            cJSON_AddStringToObject(o, "typeName", c ? c : t->string);
            cJSON_AddItemToObject(o, "attributeNames",
                                  compact_keys(r, cJSON_GetObjectItemCaseSensitive(t, "attrs")));
            cJSON_AddItemToArray(out, o);
            free(c);
        }
    } else {
        out = cJSON_CreateObject();
        add_list_id(out, "EntityTypeList");
        cJSON_AddItemToObject(out, "typeList", compact_keys(r, types));
    }
    cJSON_Delete(sum);
    return api_reply_entities(r, 200, out);
}

int api_type_get(struct req *r)
{
    cJSON *sum = load_summary(r), *out;
    char *iri, *c;
    const cJSON *a;
    if (sum == NULL)
        return req_reply_error(r);
    iri = api_expand(r, r->route_params[0]);
    const cJSON *t = iri ? cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(sum, "types"), iri)
                         : NULL;
    if (t == NULL) {
        cJSON_Delete(sum);
        free(iri);
        return req_fail(r, ERR_NOT_FOUND, "no entity of type %.200s", r->route_params[0]);
    }
    out = cJSON_CreateObject();
    c = ld_compact(r->ctx, iri);
    cJSON_AddStringToObject(out, "id", iri);
    cJSON_AddStringToObject(out, "type", "EntityTypeInfo");
    cJSON_AddStringToObject(out, "typeName", c ? c : iri);
    cJSON_AddNumberToObject(out, "entityCount",
                            cJSON_GetObjectItemCaseSensitive(t, "count")->valuedouble);
    cJSON *details = cJSON_AddArrayToObject(out, "attributeDetails");
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(t, "attrs"))
    {
        cJSON *d = cJSON_CreateObject();
        char *an = ld_compact(r->ctx, a->string);
        cJSON_AddStringToObject(d, "id", a->string);
        cJSON_AddStringToObject(d, "type", "Attribute");
        cJSON_AddStringToObject(d, "attributeName", an ? an : a->string);
        cJSON_AddItemToObject(d, "attributeTypes", plain_keys(a));
        cJSON_AddItemToArray(details, d);
        free(an);
    }
    free(c);
    free(iri);
    cJSON_Delete(sum);
    return api_reply_entities(r, 200, out);
}

static cJSON *attribute_info(struct req *r, const cJSON *a)
{
    cJSON *o = cJSON_CreateObject();
    char *c = ld_compact(r->ctx, a->string);
    cJSON_AddStringToObject(o, "id", a->string);
    cJSON_AddStringToObject(o, "type", "Attribute");
    cJSON_AddStringToObject(o, "attributeName", c ? c : a->string);
    cJSON_AddNumberToObject(o, "attributeCount",
                            cJSON_GetObjectItemCaseSensitive(a, "count")->valuedouble);
    cJSON_AddItemToObject(o, "attributeTypes",
                          plain_keys(cJSON_GetObjectItemCaseSensitive(a, "attrTypes")));
    cJSON_AddItemToObject(o, "typeNames",
                          compact_keys(r, cJSON_GetObjectItemCaseSensitive(a, "typeNames")));
    free(c);
    return o;
}

int api_attributes_list(struct req *r)
{
    cJSON *sum = load_summary(r), *out;
    const cJSON *a;
    if (sum == NULL)
        return req_reply_error(r);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(sum, "attrs");
    if (want_details(r)) {
        out = cJSON_CreateArray();
        cJSON_ArrayForEach(a, attrs) cJSON_AddItemToArray(out, attribute_info(r, a));
    } else {
        out = cJSON_CreateObject();
        add_list_id(out, "AttributeList");
        cJSON_AddItemToObject(out, "attributeList", compact_keys(r, attrs));
    }
    cJSON_Delete(sum);
    return api_reply_entities(r, 200, out);
}

int api_attribute_get(struct req *r)
{
    cJSON *sum = load_summary(r), *out;
    char *iri;
    if (sum == NULL)
        return req_reply_error(r);
    iri = api_expand(r, r->route_params[0]);
    const cJSON *a = iri ? cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(sum, "attrs"), iri)
                         : NULL;
    free(iri);
    if (a == NULL) {
        cJSON_Delete(sum);
        return req_fail(r, ERR_NOT_FOUND, "no attribute %.200s", r->route_params[0]);
    }
    out = attribute_info(r, a);
    cJSON_Delete(sum);
    return api_reply_entities(r, 200, out);
}
