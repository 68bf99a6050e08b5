/*
 * apply.c - the update operations on an entity document (create stamps,
 * replace, append, update, merge-patch, single-attribute patch / replace /
 * delete). The store writer calls them on the current document inside its
 * transaction; the API layer produced the fragment with ent_parse.
 *
 * Invariants kept on the stored document (docs/DESIGN.md):
 *   - every attribute has >= 1 instance, at most one per datasetId;
 *   - no null markers and no JSON-null metadata members are ever stored
 *     (clean_instance strips what a merge fragment may carry);
 *   - a replaced or merged instance keeps its createdAt; what changed gets
 *     modifiedAt = now, and so does the entity.
 *
 * Thread safety: pure functions on the caller's trees, any thread.
 */
#include "model/entity.h"

#include <stdio.h>
#include <string.h>

#include "json/json.h"
#include "model/ent_int.h"

/* ---- small helpers ---------------------------------------------------- */

static int set_str(cJSON *obj, const char *key, const char *val)
{
    cJSON *cur = json_member(obj, key), *s;
    size_t n = strlen(val);

    /* a string of the same length (a timestamp restamped) is overwritten in
     * place: no allocation */
    if (cJSON_IsString(cur) && !(cur->type & cJSON_IsReference) && cur->valuestring != NULL &&
        strlen(cur->valuestring) == n) {
        memcpy(cur->valuestring, val, n);
        return 0;
    }
    if ((s = cJSON_CreateString(val)) == NULL)
        return ERR_NOMEM;
    if (cur != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, s) ? 0 : (cJSON_Delete(s),
                                                                          ERR_NOMEM);
    if (!cJSON_AddItemToObject(obj, key, s)) {
        cJSON_Delete(s);
        return ERR_NOMEM;
    }
    return 0;
}

static int set_item(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return ERR_NOMEM;
    if (cJSON_HasObjectItem(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item) ? 0 : (cJSON_Delete(item),
                                                                             ERR_NOMEM);
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return ERR_NOMEM;
    }
    return 0;
}

/* createdAt = created, modifiedAt = now on inst; every sub-attribute fully
 * (createdAt = modifiedAt = now). */
static int stamp_instance(cJSON *inst, const char *created, const char *now)
{
    cJSON *sub = cJSON_GetObjectItemCaseSensitive(inst, "sub"), *s;

    if (set_str(inst, "createdAt", created) || set_str(inst, "modifiedAt", now))
        return ERR_NOMEM;
    cJSON_ArrayForEach(s, sub)
        if (stamp_instance(s, now, now))
            return ERR_NOMEM;
    return 0;
}

/* Strip what a fragment may carry but a stored document may not: JSON-null
 * metadata, null-valued languages, null-marker sub-attributes, an empty
 * "sub". Recursive. */
static void clean_instance(cJSON *inst)
{
    cJSON *m = inst->child, *next, *sub, *lm;

    while (m != NULL) {
        next = m->next;
        if (cJSON_IsNull(m) && strcmp(m->string, "value") != 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(inst, m));
        m = next;
    }
    if ((lm = cJSON_GetObjectItemCaseSensitive(inst, "languageMap")) != NULL) {
        for (m = lm->child; m != NULL; m = next) {
            next = m->next;
            if (cJSON_IsNull(m))
                cJSON_Delete(cJSON_DetachItemViaPointer(lm, m));
        }
    }
    if ((sub = cJSON_GetObjectItemCaseSensitive(inst, "sub")) != NULL) {
        for (m = sub->child; m != NULL; m = next) {
            next = m->next;
            if (ent_is_null_marker(m))
                cJSON_Delete(cJSON_DetachItemViaPointer(sub, m));
            else
                clean_instance(m);
        }
        if (sub->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(inst, "sub");
    }
}

/* A stored copy of a fragment instance: cleaned, stamped. created NULL = now. */
static cJSON *new_instance(const cJSON *inst, const char *created, const char *now)
{
    cJSON *c = cJSON_Duplicate(inst, 1);

    if (c == NULL)
        return NULL;
    clean_instance(c);
    if (stamp_instance(c, created ? created : now, now)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static const char *created_of(const cJSON *inst)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(inst, "createdAt");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static cJSON *attrs_of(cJSON *doc)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "attrs");

    if (a == NULL)
        a = cJSON_AddObjectToObject(doc, "attrs");
    return a;
}

static int note_updated(cJSON *updated, const char *iri)
{
    const cJSON *it;
    cJSON *s;

    if (updated == NULL)
        return 0;
    cJSON_ArrayForEach(it, updated)
        if (cJSON_IsString(it) && strcmp(it->valuestring, iri) == 0)
            return 0;
    if ((s = cJSON_CreateString(iri)) == NULL || !cJSON_AddItemToArray(updated, s)) {
        cJSON_Delete(s);
        return ERR_NOMEM;
    }
    return 0;
}

static int note_not_updated(cJSON *not_updated, const char *iri, const char *reason)
{
    cJSON *o;

    if (not_updated == NULL)
        return 0;
    if ((o = cJSON_CreateObject()) == NULL || !cJSON_AddStringToObject(o, "attributeName", iri) ||
        !cJSON_AddStringToObject(o, "reason", reason) || !cJSON_AddItemToArray(not_updated, o)) {
        cJSON_Delete(o);
        return ERR_NOMEM;
    }
    return 0;
}

/* Add the strings of src missing from the array dst[key] (created if absent). */
static int union_strings(cJSON *dst, const char *key, const cJSON *src)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(dst, key);
    const cJSON *it, *have;

    if (!cJSON_IsArray(src))
        return 0;
    if (!cJSON_IsArray(arr)) {
        cJSON_DeleteItemFromObjectCaseSensitive(dst, key);
        if ((arr = cJSON_AddArrayToObject(dst, key)) == NULL)
            return ERR_NOMEM;
    }
    cJSON_ArrayForEach(it, src) {
        int found = 0;
        cJSON *s;
        cJSON_ArrayForEach(have, arr)
            if (cJSON_IsString(have) && strcmp(have->valuestring, it->valuestring) == 0)
                found = 1;
        if (found)
            continue;
        if ((s = cJSON_CreateString(it->valuestring)) == NULL || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return ERR_NOMEM;
        }
    }
    return 0;
}

/* scope of frag replaces cur's; JSON null (merge) removes it. */
static int replace_scope(cJSON *cur, const cJSON *frag)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(frag, "scope");

    if (s == NULL)
        return 0;
    if (cJSON_IsNull(s)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cur, "scope");
        return 0;
    }
    return set_item(cur, "scope", cJSON_Duplicate(s, 1));
}

/* Delete the attribute when its last instance went. */
static void drop_if_empty(cJSON *attrs, const char *iri)
{
    cJSON *insts = cJSON_GetObjectItemCaseSensitive(attrs, iri);

    if (insts != NULL && insts->child == NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(attrs, iri);
}

static void dataset_reason(char *buf, size_t len, const char *what, const char *ds)
{
    if (ds == NULL)
        snprintf(buf, len, "%s (default instance)", what);
    else
        snprintf(buf, len, "%s (datasetId %.180s)", what, ds);
}

/* ---- merge of one instance (merge-patch, 5.6.17) ----------------------- */

static const char *const merge_meta[] = {"observedAt", "unitCode", "objectType", "valueType",
                                         NULL};

static int merge_instance(cJSON *old, const cJSON *new, const char *now)
{
    enum ent__kind k_new = ent__kind_of(new), k_old = ent__kind_of(old);
    const cJSON *nsub, *s, *m;
    cJSON *osub;
    const char *vm = NULL;

    if (k_new != ENT__NONE && cJSON_HasObjectItem(new, ent__value_members[k_new]))
        vm = ent__value_members[k_new];
    if (vm != NULL) {
        const cJSON *nv = cJSON_GetObjectItemCaseSensitive(new, vm);
        cJSON *olm = cJSON_GetObjectItemCaseSensitive(old, "languageMap");
        if (k_new == ENT__LANG && k_old == ENT__LANG && cJSON_IsObject(olm)) {
            cJSON_ArrayForEach(m, nv) {
                cJSON_DeleteItemFromObjectCaseSensitive(olm, m->string);
                if (!cJSON_IsNull(m) && set_item(olm, m->string, cJSON_Duplicate(m, 1)))
                    return ERR_NOMEM;
            }
        } else {
            for (int k = 0; k < ENT__N_KINDS; k++)
                cJSON_DeleteItemFromObjectCaseSensitive(old, ent__value_members[k]);
            if (set_item(old, vm, cJSON_Duplicate(nv, 1)))
                return ERR_NOMEM;
            if (k_new == ENT__LANG)
                clean_instance(old);
        }
        if (set_str(old, "type", ent__kind_names[k_new]))
            return ERR_NOMEM;
        if (k_new != ENT__REL && k_new != ENT__LISTREL)
            cJSON_DeleteItemFromObjectCaseSensitive(old, "objectType");
    }
    for (int i = 0; merge_meta[i]; i++) {
        m = cJSON_GetObjectItemCaseSensitive(new, merge_meta[i]);
        if (m == NULL)
            continue;
        if (cJSON_IsNull(m))
            cJSON_DeleteItemFromObjectCaseSensitive(old, merge_meta[i]);
        else if (set_item(old, merge_meta[i], cJSON_Duplicate(m, 1)))
            return ERR_NOMEM;
    }
    nsub = cJSON_GetObjectItemCaseSensitive(new, "sub");
    if (nsub != NULL && nsub->child != NULL) {
        osub = cJSON_GetObjectItemCaseSensitive(old, "sub");
        if (osub == NULL && (osub = cJSON_AddObjectToObject(old, "sub")) == NULL)
            return ERR_NOMEM;
        cJSON_ArrayForEach(s, nsub) {
            cJSON *os = cJSON_GetObjectItemCaseSensitive(osub, s->string);
            if (ent_is_null_marker(s)) {
                cJSON_DeleteItemFromObjectCaseSensitive(osub, s->string);
            } else if (os != NULL) {
                if (merge_instance(os, s, now))
                    return ERR_NOMEM;
            } else if (set_item(osub, s->string, new_instance(s, NULL, now))) {
                return ERR_NOMEM;
            }
        }
        if (osub->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(old, "sub");
    }
    if (created_of(old) == NULL && set_str(old, "createdAt", now))
        return ERR_NOMEM;
    return set_str(old, "modifiedAt", now);
}

/* ---- public operations ------------------------------------------------ */

void ent_stamp_new(cJSON *doc, const char *now)
{
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs"), *a, *inst;

    if (doc == NULL || now == NULL)
        return;
    set_str(doc, "createdAt", now);
    set_str(doc, "modifiedAt", now);
    cJSON_ArrayForEach(a, attrs)
        cJSON_ArrayForEach(inst, a)
            stamp_instance(inst, now, now);
}

int ent_replace(cJSON *cur, const cJSON *incoming, const char *now)
{
    const cJSON *in_attrs = cJSON_GetObjectItemCaseSensitive(incoming, "attrs"), *a, *inst;
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(incoming, "type");
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(incoming, "scope");
    cJSON *attrs = cJSON_CreateObject(), *insts, *c;

    if (attrs == NULL)
        return ERR_NOMEM;
    cJSON_ArrayForEach(a, in_attrs) {
        if ((insts = cJSON_AddArrayToObject(attrs, a->string)) == NULL)
            goto nomem;
        cJSON_ArrayForEach(inst, a) {
            if (ent_is_null_marker(inst))
                continue;
            if ((c = new_instance(inst, NULL, now)) == NULL)
                goto nomem;
            cJSON_AddItemToArray(insts, c);
        }
        if (insts->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(attrs, a->string);
    }
    if (set_item(cur, "attrs", attrs))
        return ERR_NOMEM;
    if (cJSON_IsArray(types) && set_item(cur, "type", cJSON_Duplicate(types, 1)))
        return ERR_NOMEM;
    if (cJSON_IsArray(scope)) {
        if (set_item(cur, "scope", cJSON_Duplicate(scope, 1)))
            return ERR_NOMEM;
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(cur, "scope");
    }
    if (created_of(cur) == NULL && set_str(cur, "createdAt", now))
        return ERR_NOMEM;
    return set_str(cur, "modifiedAt", now);
nomem:
    cJSON_Delete(attrs);
    return ERR_NOMEM;
}

/* Shared body of append (may_create=1) and update (may_create=0). */
static int put_instances(cJSON *cur, const cJSON *frag, int may_create, int no_overwrite,
                         const char *now, cJSON *updated, cJSON *not_updated)
{
    const cJSON *a, *inst;
    cJSON *attrs = attrs_of(cur);
    int changed = 0;
    char reason[256];

    if (attrs == NULL)
        return ERR_NOMEM;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(frag, "attrs")) {
        cJSON *insts = cJSON_GetObjectItemCaseSensitive(attrs, a->string);
        cJSON_ArrayForEach(inst, a) {
            const char *ds = ent__dataset_id(inst);
            int idx = insts ? ent__find_instance(insts, ds) : -1;
            cJSON *c;
            if (ent_is_null_marker(inst)) {
                if (idx < 0) {
                    dataset_reason(reason, sizeof(reason), "attribute not found", ds);
                    if (note_not_updated(not_updated, a->string, reason))
                        return ERR_NOMEM;
                    continue;
                }
                cJSON_DeleteItemFromArray(insts, idx);
                drop_if_empty(attrs, a->string);
                insts = cJSON_GetObjectItemCaseSensitive(attrs, a->string);
            } else if (idx >= 0) {
                if (no_overwrite) {
                    dataset_reason(reason, sizeof(reason),
                                   "attribute already exists and noOverwrite is set", ds);
                    if (note_not_updated(not_updated, a->string, reason))
                        return ERR_NOMEM;
                    continue;
                }
                c = new_instance(inst, created_of(cJSON_GetArrayItem(insts, idx)), now);
                if (c == NULL || !cJSON_ReplaceItemInArray(insts, idx, c)) {
                    cJSON_Delete(c);
                    return ERR_NOMEM;
                }
            } else if (!may_create) {
                dataset_reason(reason, sizeof(reason), "attribute not found", ds);
                if (note_not_updated(not_updated, a->string, reason))
                    return ERR_NOMEM;
                continue;
            } else {
                if (insts == NULL && (insts = cJSON_AddArrayToObject(attrs, a->string)) == NULL)
                    return ERR_NOMEM;
                if ((c = new_instance(inst, NULL, now)) == NULL)
                    return ERR_NOMEM;
                cJSON_AddItemToArray(insts, c);
            }
            changed = 1;
            if (note_updated(updated, a->string))
                return ERR_NOMEM;
        }
    }
    if (changed && set_str(cur, "modifiedAt", now))
        return ERR_NOMEM;
    return 0;
}

int ent_append(cJSON *cur, const cJSON *frag, int no_overwrite, const char *now, cJSON *updated,
               cJSON *not_updated)
{
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(frag, "type");
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(frag, "scope");

    if (union_strings(cur, "type", types) || union_strings(cur, "scope", scope))
        return ERR_NOMEM;
    if ((cJSON_IsArray(types) || cJSON_IsArray(scope)) && set_str(cur, "modifiedAt", now))
        return ERR_NOMEM;
    return put_instances(cur, frag, 1, no_overwrite, now, updated, not_updated);
}

int ent_update(cJSON *cur, const cJSON *frag, const char *now, cJSON *updated, cJSON *not_updated)
{
    if (cJSON_HasObjectItem(frag, "scope")) {
        if (replace_scope(cur, frag) || set_str(cur, "modifiedAt", now))
            return ERR_NOMEM;
    }
    return put_instances(cur, frag, 0, 0, now, updated, not_updated);
}

int ent_merge(cJSON *cur, const cJSON *frag, const char *now)
{
    const cJSON *a, *inst;
    cJSON *attrs = attrs_of(cur);

    if (attrs == NULL || union_strings(cur, "type", cJSON_GetObjectItemCaseSensitive(frag, "type")))
        return ERR_NOMEM;
    if (replace_scope(cur, frag))
        return ERR_NOMEM;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(frag, "attrs")) {
        cJSON *insts = cJSON_GetObjectItemCaseSensitive(attrs, a->string);
        cJSON_ArrayForEach(inst, a) {
            int idx = insts ? ent__find_instance(insts, ent__dataset_id(inst)) : -1;
            cJSON *c;
            if (ent_is_null_marker(inst)) {
                if (idx >= 0) {
                    cJSON_DeleteItemFromArray(insts, idx);
                    drop_if_empty(attrs, a->string);
                    insts = cJSON_GetObjectItemCaseSensitive(attrs, a->string);
                }
            } else if (idx >= 0) {
                if (merge_instance(cJSON_GetArrayItem(insts, idx), inst, now))
                    return ERR_NOMEM;
            } else {
                /* a new instance needs a value: a metadata-only patch of a
                 * missing instance has nothing to patch */
                enum ent__kind k = ent__kind_of(inst);
                if (k == ENT__NONE || !cJSON_HasObjectItem(inst, ent__value_members[k]))
                    continue;
                if (insts == NULL && (insts = cJSON_AddArrayToObject(attrs, a->string)) == NULL)
                    return ERR_NOMEM;
                if ((c = new_instance(inst, NULL, now)) == NULL)
                    return ERR_NOMEM;
                cJSON_AddItemToArray(insts, c);
            }
        }
    }
    return set_str(cur, "modifiedAt", now);
}

/* Locate attribute attr_iri's instance with datasetId ds: 0 and *insts,
 * *idx, or ERR_NOT_FOUND with a detail. */
static int locate(cJSON *cur, const char *attr_iri, const char *ds, cJSON **insts, int *idx,
                  struct err *e)
{
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(cur, "attrs");

    *insts = cJSON_GetObjectItemCaseSensitive(attrs, attr_iri);
    if (attr_iri == NULL || *insts == NULL)
        return err_set(e, ERR_NOT_FOUND, "attribute '%.120s' not found",
                       attr_iri ? attr_iri : "");
    *idx = ent__find_instance(*insts, ds);
    if (*idx < 0) {
        if (ds == NULL)
            return err_set(e, ERR_NOT_FOUND, "attribute '%.120s' has no default instance",
                           attr_iri);
        return err_set(e, ERR_NOT_FOUND, "attribute '%.120s' has no instance with datasetId "
                       "'%.100s'", attr_iri, ds);
    }
    return 0;
}

int ent_attr_patch(cJSON *cur, const char *attr_iri, const cJSON *inst, const char *now,
                   struct err *e)
{
    cJSON *insts;
    int idx = -1, rc;

    if ((rc = locate(cur, attr_iri, ent__dataset_id(inst), &insts, &idx, e)) != 0)
        return rc;
    if (ent_is_null_marker(inst)) {
        cJSON_DeleteItemFromArray(insts, idx);
        drop_if_empty(cJSON_GetObjectItemCaseSensitive(cur, "attrs"), attr_iri);
    } else if (merge_instance(cJSON_GetArrayItem(insts, idx), inst, now)) {
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (set_str(cur, "modifiedAt", now))
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

int ent_attr_replace(cJSON *cur, const char *attr_iri, const cJSON *inst, const char *now,
                     struct err *e)
{
    cJSON *insts, *c;
    int idx = -1, rc;

    if ((rc = locate(cur, attr_iri, ent__dataset_id(inst), &insts, &idx, e)) != 0)
        return rc;
    if (ent_is_null_marker(inst)) {
        cJSON_DeleteItemFromArray(insts, idx);
        drop_if_empty(cJSON_GetObjectItemCaseSensitive(cur, "attrs"), attr_iri);
    } else {
        c = new_instance(inst, created_of(cJSON_GetArrayItem(insts, idx)), now);
        if (c == NULL || !cJSON_ReplaceItemInArray(insts, idx, c)) {
            cJSON_Delete(c);
            return err_set(e, ERR_NOMEM, "out of memory");
        }
    }
    if (set_str(cur, "modifiedAt", now))
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

cJSON *ent_null_instance(const char *type)
{
    enum ent__kind k = type ? ent__kind_by_name(type) : ENT__PROPERTY;
    cJSON *o = cJSON_CreateObject(), *v;

    if (k == ENT__NONE)
        k = ENT__PROPERTY;
    if (o == NULL)
        return NULL;
    if (k == ENT__LANG) {
        v = cJSON_CreateObject();
        if (v && !cJSON_AddStringToObject(v, "@none", "urn:ngsi-ld:null")) {
            cJSON_Delete(v);
            v = NULL;
        }
    } else if (k == ENT__LIST || k == ENT__LISTREL) {
        v = cJSON_CreateArray();
        if (v && !cJSON_AddItemToArray(v, cJSON_CreateString("urn:ngsi-ld:null"))) {
            cJSON_Delete(v);
            v = NULL;
        }
    } else {
        v = cJSON_CreateString("urn:ngsi-ld:null");
    }
    if (v == NULL || !cJSON_AddStringToObject(o, "type", ent__kind_names[k]) ||
        !cJSON_AddItemToObject(o, ent__value_members[k], v)) {
        cJSON_Delete(v);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int ent_attr_delete(cJSON *cur, const char *attr_iri, const char *dataset_id, int delete_all,
                    struct err *e)
{
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(cur, "attrs"), *insts;
    int idx = -1, rc;

    if (delete_all) {
        if (attr_iri == NULL || cJSON_GetObjectItemCaseSensitive(attrs, attr_iri) == NULL)
            return err_set(e, ERR_NOT_FOUND, "attribute '%.120s' not found",
                           attr_iri ? attr_iri : "");
        cJSON_DeleteItemFromObjectCaseSensitive(attrs, attr_iri);
        return 0;
    }
    if ((rc = locate(cur, attr_iri, dataset_id, &insts, &idx, e)) != 0)
        return rc;
    cJSON_DeleteItemFromArray(insts, idx);
    drop_if_empty(attrs, attr_iri);
    return 0;
}

/* ---- accessors -------------------------------------------------------- */

/* A string's hash, eight bytes at a time (FNV's byte loop cost ~1 us per
 * signature of a bench entity's long expanded names); mix() below spreads it. */
static uint64_t str_hash(uint64_t h, const char *s)
{
    size_t n = strlen(s);
    uint64_t w;

    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    h = (h ^ n) * 0x9E3779B97F4A7C15ULL; /* the tail's length on its own (any byte order) */
    return h ^ h >> 29;
}

/* murmur3's finalizer: sums of raw FNV values would collide by structure */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t ent_attr_sig(const cJSON *doc)
{
    const cJSON *a, *inst;
    uint64_t sum = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "attrs"))
    {
        if (a->string == NULL)
            continue;
        uint64_t ha = str_hash(0xcbf29ce484222325ULL, a->string);
        cJSON_ArrayForEach(inst, a)
        {
            const cJSON *ds = json_member(inst, "datasetId");
            /* the datasetId hashed on its own (another basis), not appended
             * to the name: ("a", "b") must not read as ("a" + "b", none) */
            sum += mix(cJSON_IsString(ds) ? ha ^ mix(str_hash(0x84222325cbf29ce4ULL, ds->valuestring))
                                          : ha);
        }
    }
    return sum;
}

const char *ent_doc_id(const cJSON *doc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

const cJSON *ent_doc_types(const cJSON *doc)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "type");
    return cJSON_IsArray(t) ? t : NULL;
}

const cJSON *ent_doc_geo(const cJSON *doc, const char *geoprop_iri)
{
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs"), *insts, *inst;
    int idx;

    if (geoprop_iri == NULL)
        return NULL;
    insts = cJSON_GetObjectItemCaseSensitive(attrs, geoprop_iri);
    if ((idx = ent__find_instance(insts, NULL)) < 0)
        return NULL;
    inst = cJSON_GetArrayItem(insts, idx);
    if (ent__kind_of(inst) != ENT__GEO)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(inst, "value");
}
