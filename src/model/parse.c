/*
 * parse.c - input entities and attribute fragments (normalized or concise
 * form, GS CIM 009 4.5) -> entity document (docs/DESIGN.md).
 *
 * Design: one recursive descent over the cJSON body that validates and
 * builds the expanded document in the same pass; nothing of the input is
 * kept (values are duplicated). Names and types are expanded with
 * ld_expand; times are re-formatted with tm_format so that string order is
 * time order; GeoProperty values are validated with geo_parse.
 *
 * How an attribute value is read (first rule that matches):
 *   JSON null / "urn:ngsi-ld:null"     null marker (ENT_MERGE), else error
 *   array whose elements all look like attribute instances
 *                                      several instances (top level only)
 *   not an object                      concise Property, value = it
 *   object with "type" an attribute type
 *                                      normalized instance of that type
 *   object with "type" a GeoJSON geometry + "coordinates"
 *                                      concise GeoProperty
 *   object with "type" anything else   error
 *   object with one of value / object / languageMap / valueList /
 *   objectList / vocab / json          concise instance of the matching type
 *                                      ("value" holding GeoJSON: GeoProperty)
 *   any other object                   concise Property, value = the object
 * In an instance object, members other than the NGSI-LD ones are
 * sub-attributes (same rules, no multi-instance arrays), nested at most
 * ENT_MAX_DEPTH levels.
 *
 * Thread safety: pure functions, any thread.
 */
#include "model/entity.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ent_int.h"
#include "query/geo.h"
#include "util/time.h"
#include "util/uri.h"

/* ---- shared tables (declared in ent_int.h) ---------------------------- */

const char *const ent__kind_names[ENT__N_KINDS] = {
    "Property",     "Relationship",     "GeoProperty",  "LanguageProperty",
    "ListProperty", "ListRelationship", "JsonProperty", "VocabProperty",
};

const char *const ent__value_members[ENT__N_KINDS] = {
    "value", "object", "value", "languageMap", "valueList", "objectList", "json", "vocab",
};

enum ent__kind ent__kind_by_name(const char *name)
{
    size_t ns = strlen(LD_NGSI_NS);

    if (name == NULL)
        return ENT__NONE;
    if (strncmp(name, LD_NGSI_NS, ns) == 0)
        name += ns;
    for (int k = 0; k < ENT__N_KINDS; k++)
        if (strcmp(name, ent__kind_names[k]) == 0)
            return (enum ent__kind)k;
    if (strcmp(name, "VocabularyProperty") == 0) /* spelling used in some examples */
        return ENT__VOCAB;
    return ENT__NONE;
}

enum ent__kind ent__kind_of(const cJSON *inst)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(inst, "type");
    return cJSON_IsString(t) ? ent__kind_by_name(t->valuestring) : ENT__NONE;
}

int ent__is_value_member(const char *name)
{
    for (int k = 0; k < ENT__N_KINDS; k++)
        if (name[0] == ent__value_members[k][0] && strcmp(name, ent__value_members[k]) == 0)
            return 1;
    return 0;
}

const char *ent__dataset_id(const cJSON *inst)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
    return cJSON_IsString(d) ? d->valuestring : NULL;
}

int ent__find_instance(const cJSON *instances, const char *dsid)
{
    int i = 0;
    const cJSON *it;

    cJSON_ArrayForEach(it, instances) {
        const char *d = ent__dataset_id(it);
        if ((d == NULL && dsid == NULL) || (d != NULL && dsid != NULL && strcmp(d, dsid) == 0))
            return i;
        i++;
    }
    return -1;
}

static const char *const geo_types[] = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection", NULL,
};

int ent__looks_geojson(const cJSON *v)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");

    if (!cJSON_IsObject(v) || !cJSON_IsString(t))
        return 0;
    if (!cJSON_HasObjectItem(v, "coordinates") && !cJSON_HasObjectItem(v, "geometries"))
        return 0;
    for (int i = 0; geo_types[i]; i++)
        if (strcmp(t->valuestring, geo_types[i]) == 0)
            return 1;
    return 0;
}

int ent_is_null_marker(const cJSON *inst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(inst, "value");
    return cJSON_IsObject(inst) && v != NULL && cJSON_IsNull(v);
}

/* ---- parse state and error details ------------------------------------ */

struct pstate {
    const struct ld_ctx *ctx;
    int flags;
    struct err *e;
    int budget;         /* instances left (ENT_MAX_INSTANCES) */
    const char *attr;   /* attribute name as given, for details */
    const char *sub;    /* innermost sub-attribute name, or NULL */
};

/* Record ERR_BAD_DATA with "attribute 'x'[, sub-attribute 'y']: " before the detail. */
static int bad(struct pstate *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct pstate *ps, const char *fmt, ...)
{
    char msg[ERR_DETAIL_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ps->attr == NULL)
        return err_set(ps->e, ERR_BAD_DATA, "%s", msg);
    if (ps->sub == NULL)
        return err_set(ps->e, ERR_BAD_DATA, "attribute '%.80s': %s", ps->attr, msg);
    return err_set(ps->e, ERR_BAD_DATA, "attribute '%.80s', sub-attribute '%.60s': %s", ps->attr,
                   ps->sub, msg);
}

static int nomem(struct pstate *ps)
{
    return err_set(ps->e, ERR_NOMEM, "out of memory");
}

/* ---- lexical checks --------------------------------------------------- */

static int is_abs_uri(const char *s)
{
    return uri_is_absolute(s, ENT_MAX_IRI);
}

/* Attribute / type names (4.6.2): non-empty, capped, no whitespace or
 * control characters and none of < > " ' = ; ( ) \ . Full IRIs and compact
 * IRIs pass. */
static int name_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > ENT_MAX_IRI)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr("<>\"'=;()\\", c) != NULL)
            return 0;
    }
    return 1;
}

/* Names that can be neither attributes nor sub-attributes: the entity's own
 * members and the NGSI-LD attribute members. */
static const char *const reserved_names[] = {
    "id", "@id", "type", "@type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt",
    "value", "object", "objectType", "languageMap", "valueList", "objectList", "json", "vocab",
    "observedAt", "unitCode", "datasetId", "instanceId", "lang", "valueType", "@value",
    "@language", "@list", "@none", "@json", NULL,
};

/* Is s one of list's names (NULL-terminated)? The first byte is compared
 * before the rest: parsing a batch asks this several times per member. */
static int in_list(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (s[0] == list[i][0] && strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static int is_reserved(const char *s)
{
    return in_list(s, reserved_names);
}

/* Instance members read from input but never stored (output-only or
 * server-set members). */
static const char *const ignored_members[] = {
    "createdAt", "modifiedAt", "deletedAt", "instanceId", "lang", "@context",
    "previousValue", "previousObject", "previousLanguageMap", "previousValueList",
    "previousObjectList", "previousJson", "previousVocab", NULL,
};

static int is_ignored_member(const char *s)
{
    return in_list(s, ignored_members);
}

static int is_ngsi_null(const cJSON *v)
{
    return cJSON_IsNull(v) || (cJSON_IsString(v) && strcmp(v->valuestring, ENT_NULL_URI) == 0);
}

/* BCP 47-ish tag: letters, digits and '-', starting with a letter, or @none. */
static int lang_tag_ok(const char *s)
{
    size_t len = strlen(s);

    if (strcmp(s, "@none") == 0)
        return 1;
    if (len == 0 || len > 64 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* Scope: "/" segment ("/" segment)*, segments of letters, digits, '_' and '-'. */
static int scope_ok(const char *s)
{
    size_t len = strlen(s);

    if (len < 2 || len > ENT_MAX_IRI || s[0] != '/')
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] == '/') {
            if (s[i - 1] == '/' || i == len - 1)
                return 0;
        } else if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/* ---- building blocks -------------------------------------------------- */

static cJSON *make_null_marker(void)
{
    cJSON *m = cJSON_CreateObject();

    if (m == NULL)
        return NULL;
    if (!cJSON_AddStringToObject(m, "type", "Property") || !cJSON_AddNullToObject(m, "value")) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* Add dup(v) under key, or fail. */
static int add_dup(struct pstate *ps, cJSON *obj, const char *key, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);

    if (d == NULL || !cJSON_AddItemToObject(obj, key, d)) {
        cJSON_Delete(d);
        return nomem(ps);
    }
    return 0;
}

static int push_string(struct pstate *ps, cJSON *arr, const char *s)
{
    cJSON *item = cJSON_CreateString(s);

    if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return nomem(ps);
    }
    return 0;
}

/* Expand a term into a new string item; what names the term in details. */
static int expand_term(struct pstate *ps, const cJSON *v, const char *what, cJSON **out)
{
    char *iri;

    *out = NULL;
    if (!cJSON_IsString(v) || !name_ok(v->valuestring))
        return bad(ps, "%s must be a valid name", what);
    iri = ld_expand(ps->ctx, v->valuestring);
    if (iri == NULL)
        return nomem(ps);
    *out = cJSON_CreateString(iri);
    free(iri);
    return *out ? 0 : nomem(ps);
}

/* A term or a non-empty array of terms -> array of expanded IRIs (deduplicated). */
static int expand_terms(struct pstate *ps, const cJSON *v, const char *what, cJSON **out)
{
    cJSON *arr = cJSON_CreateArray(), *item = NULL;
    const cJSON *it;
    int rc;

    *out = NULL;
    if (arr == NULL)
        return nomem(ps);
    if (cJSON_IsString(v)) {
        if ((rc = expand_term(ps, v, what, &item)) != 0)
            goto fail;
        cJSON_AddItemToArray(arr, item);
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        if (cJSON_GetArraySize(v) > ENT_MAX_ATTRS) {
            rc = bad(ps, "too many values in %s", what);
            goto fail;
        }
        cJSON_ArrayForEach(it, v) {
            const cJSON *have;
            int dup = 0;
            if ((rc = expand_term(ps, it, what, &item)) != 0)
                goto fail;
            cJSON_ArrayForEach(have, arr)
                if (strcmp(have->valuestring, item->valuestring) == 0)
                    dup = 1;
            if (dup)
                cJSON_Delete(item);
            else
                cJSON_AddItemToArray(arr, item);
        }
    } else {
        rc = bad(ps, "%s must be a string or a non-empty array of strings", what);
        goto fail;
    }
    *out = arr;
    return 0;
fail:
    cJSON_Delete(arr);
    return rc;
}

/* ---- value members ---------------------------------------------------- */

static int parse_geo_value(struct pstate *ps, const cJSON *v, cJSON *inst)
{
    struct geo_shape *shape = NULL;
    struct err ge = {0};

    if (!cJSON_IsObject(v))
        return bad(ps, "GeoProperty value must be a GeoJSON geometry object");
    if (geo_parse(v, &shape, &ge) != 0)
        return bad(ps, "invalid GeoJSON: %s", ge.detail);
    geo_free(shape);
    return add_dup(ps, inst, "value", v);
}

static int parse_object_member(struct pstate *ps, const cJSON *v, cJSON *inst)
{
    const cJSON *it;

    if (cJSON_IsString(v)) {
        if (!is_abs_uri(v->valuestring))
            return bad(ps, "Relationship object '%.80s' is not a URI", v->valuestring);
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        cJSON_ArrayForEach(it, v)
            if (!cJSON_IsString(it) || !is_abs_uri(it->valuestring))
                return bad(ps, "Relationship object must be a URI or an array of URIs");
    } else {
        return bad(ps, "Relationship object must be a URI or an array of URIs");
    }
    return add_dup(ps, inst, "object", v);
}

static int parse_language_map(struct pstate *ps, const cJSON *v, cJSON *inst)
{
    const cJSON *it, *s;

    if (!cJSON_IsObject(v) || v->child == NULL)
        return bad(ps, "languageMap must be a non-empty object");
    cJSON_ArrayForEach(it, v) {
        if (!lang_tag_ok(it->string))
            return bad(ps, "invalid language tag '%.40s' in languageMap", it->string);
        if (cJSON_IsString(it))
            continue;
        if (cJSON_IsNull(it) && (ps->flags & ENT_MERGE))
            continue;
        if (!cJSON_IsArray(it))
            return bad(ps, "languageMap value for '%.40s' must be a string or array of strings",
                       it->string);
        cJSON_ArrayForEach(s, it)
            if (!cJSON_IsString(s))
                return bad(ps, "languageMap value for '%.40s' must be a string or array of "
                               "strings", it->string);
    }
    return add_dup(ps, inst, "languageMap", v);
}

static int parse_object_list(struct pstate *ps, const cJSON *v, cJSON *inst)
{
    cJSON *list = cJSON_CreateArray();
    const cJSON *it;

    if (list == NULL)
        return nomem(ps);
    if (!cJSON_IsArray(v)) {
        cJSON_Delete(list);
        return bad(ps, "objectList must be an array");
    }
    cJSON_ArrayForEach(it, v) {
        const cJSON *uri = it;
        cJSON *o;
        if (cJSON_IsObject(it))
            uri = cJSON_GetObjectItemCaseSensitive(it, "object");
        if (!cJSON_IsString(uri) || !is_abs_uri(uri->valuestring)) {
            cJSON_Delete(list);
            return bad(ps, "objectList items must be URIs or {\"object\": URI}");
        }
        o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddStringToObject(o, "object", uri->valuestring)) {
            cJSON_Delete(o);
            cJSON_Delete(list);
            return nomem(ps);
        }
        cJSON_AddItemToArray(list, o);
    }
    cJSON_AddItemToObject(inst, "objectList", list);
    return 0;
}

static int parse_vocab(struct pstate *ps, const cJSON *v, cJSON *inst)
{
    cJSON *terms = NULL;
    int rc;

    if ((rc = expand_terms(ps, v, "vocab", &terms)) != 0)
        return rc;
    if (cJSON_IsString(v)) { /* keep the input's shape: string stays a string */
        cJSON *one = cJSON_DetachItemFromArray(terms, 0);
        cJSON_Delete(terms);
        terms = one;
    }
    cJSON_AddItemToObject(inst, "vocab", terms);
    return 0;
}

/* The value member of kind k from v (present, not a null marker). */
static int parse_value_member(struct pstate *ps, enum ent__kind k, const cJSON *v, cJSON *inst)
{
    switch (k) {
    case ENT__PROPERTY:
        return add_dup(ps, inst, "value", v);
    case ENT__GEO:
        return parse_geo_value(ps, v, inst);
    case ENT__REL:
        return parse_object_member(ps, v, inst);
    case ENT__LANG:
        return parse_language_map(ps, v, inst);
    case ENT__LIST:
        if (!cJSON_IsArray(v))
            return bad(ps, "valueList must be an array");
        return add_dup(ps, inst, "valueList", v);
    case ENT__LISTREL:
        return parse_object_list(ps, v, inst);
    case ENT__JSON:
        return add_dup(ps, inst, "json", v);
    case ENT__VOCAB:
        return parse_vocab(ps, v, inst);
    default:
        return bad(ps, "unknown attribute type");
    }
}

/* Does value member v of kind k say "delete" (ENT_MERGE)? */
static int value_is_null(enum ent__kind k, const cJSON *v)
{
    if (is_ngsi_null(v))
        return 1;
    if (k == ENT__LANG && cJSON_IsObject(v)) {
        const cJSON *none = cJSON_GetObjectItemCaseSensitive(v, "@none");
        return cJSON_GetArraySize(v) == 1 && none != NULL && is_ngsi_null(none);
    }
    return 0;
}

/* ---- instances -------------------------------------------------------- */

static int parse_instance(struct pstate *ps, const cJSON *in, int depth, cJSON **out);

static int parse_metadata(struct pstate *ps, const char *key, const cJSON *v, enum ent__kind k,
                          cJSON *inst)
{
    int merge = ps->flags & ENT_MERGE;

    if (cJSON_IsNull(v) && merge && strcmp(key, "datasetId") != 0 &&
        strcmp(key, "valueType") != 0)
        return cJSON_AddNullToObject(inst, key) ? 0 : nomem(ps);
    if (strcmp(key, "observedAt") == 0) {
        int64_t ms;
        char buf[TM_ISO_LEN];
        if (!cJSON_IsString(v) || tm_parse(v->valuestring, &ms) != 0)
            return bad(ps, "observedAt must be an ISO 8601 date-time");
        tm_format(ms, buf);
        return cJSON_AddStringToObject(inst, "observedAt", buf) ? 0 : nomem(ps);
    }
    if (strcmp(key, "unitCode") == 0) {
        if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > 64)
            return bad(ps, "unitCode must be a non-empty string");
        return add_dup(ps, inst, key, v);
    }
    if (strcmp(key, "datasetId") == 0) {
        if (!cJSON_IsString(v) || !is_abs_uri(v->valuestring))
            return bad(ps, "datasetId must be a URI");
        return add_dup(ps, inst, key, v);
    }
    if (strcmp(key, "valueType") == 0) {
        if (!cJSON_IsString(v) || !name_ok(v->valuestring))
            return bad(ps, "valueType must be a valid name");
        return add_dup(ps, inst, key, v);
    }
    /* objectType */
    if (k != ENT__REL && k != ENT__LISTREL)
        return bad(ps, "objectType is only allowed in a Relationship or ListRelationship");
    {
        cJSON *terms = NULL;
        int rc = expand_terms(ps, v, "objectType", &terms);
        if (rc != 0)
            return rc;
        if (cJSON_IsString(v)) {
            cJSON *one = cJSON_DetachItemFromArray(terms, 0);
            cJSON_Delete(terms);
            terms = one;
        }
        cJSON_AddItemToObject(inst, "objectType", terms);
    }
    return 0;
}

static int is_metadata(const char *key)
{
    return strcmp(key, "observedAt") == 0 || strcmp(key, "unitCode") == 0 ||
           strcmp(key, "datasetId") == 0 || strcmp(key, "objectType") == 0 ||
           strcmp(key, "valueType") == 0;
}

/* One sub-attribute: name check, expansion, recursive parse into sub{}. */
static int parse_sub(struct pstate *ps, const cJSON *m, int depth, cJSON *inst, cJSON **sub)
{
    const char *saved = ps->sub;
    char *iri = NULL;
    cJSON *child = NULL;
    int rc;

    if (!name_ok(m->string))
        return bad(ps, "invalid sub-attribute name '%.60s'", m->string);
    if (is_reserved(m->string))
        return bad(ps, "'%.40s' cannot be a sub-attribute name", m->string);
    if (depth >= ENT_MAX_DEPTH)
        return bad(ps, "sub-attributes nested deeper than %d levels", ENT_MAX_DEPTH);
    if ((iri = ld_expand(ps->ctx, m->string)) == NULL)
        return nomem(ps);
    if (*sub == NULL) {
        if ((*sub = cJSON_AddObjectToObject(inst, "sub")) == NULL) {
            free(iri);
            return nomem(ps);
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(*sub, iri) != NULL) {
        rc = bad(ps, "sub-attribute '%.60s' given twice", m->string);
        goto out;
    }
    ps->sub = m->string;
    rc = parse_instance(ps, m, depth + 1, &child);
    ps->sub = saved;
    if (rc != 0)
        goto out;
    if (cJSON_GetObjectItemCaseSensitive(child, "datasetId") != NULL) {
        cJSON_Delete(child);
        rc = bad(ps, "sub-attribute '%.60s' cannot have a datasetId", m->string);
        goto out;
    }
    cJSON_AddItemToObject(*sub, iri, child);
out:
    free(iri);
    return rc;
}

/* Decide the kind of an object instance. *concise_value set when the whole
 * object is a concise Property value. */
static int object_kind(struct pstate *ps, const cJSON *in, enum ent__kind *k, int *concise_value)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(in, "type");
    int found = 0;

    *concise_value = 0;
    *k = ENT__NONE;
    if (t != NULL) {
        if (cJSON_IsString(t) && (*k = ent__kind_by_name(t->valuestring)) != ENT__NONE)
            return 0;
        if (ent__looks_geojson(in)) {
            *k = ENT__GEO;
            *concise_value = 1;
            return 0;
        }
        if (cJSON_IsString(t))
            return bad(ps, "invalid attribute type '%.60s'", t->valuestring);
        return bad(ps, "attribute type must be a string");
    }
    for (int i = 0; i < ENT__N_KINDS; i++) {
        if (i == ENT__GEO)
            continue; /* shares "value" with Property */
        if (cJSON_GetObjectItemCaseSensitive(in, ent__value_members[i]) != NULL) {
            if (found)
                return bad(ps, "ambiguous attribute: several of value/object/languageMap/"
                               "valueList/objectList/vocab/json");
            found = 1;
            *k = (enum ent__kind)i;
        }
    }
    if (!found) {
        *k = ENT__PROPERTY;
        *concise_value = 1;
    } else if (*k == ENT__PROPERTY &&
               ent__looks_geojson(cJSON_GetObjectItemCaseSensitive(in, "value"))) {
        *k = ENT__GEO;
    }
    return 0;
}

/* Parse one attribute / sub-attribute instance. depth = sub-attribute level. */
static int parse_instance(struct pstate *ps, const cJSON *in, int depth, cJSON **out)
{
    cJSON *inst = NULL, *sub = NULL;
    const cJSON *m, *val;
    enum ent__kind k;
    int concise_value, rc, merge = ps->flags & ENT_MERGE;

    *out = NULL;
    if (--ps->budget < 0)
        return bad(ps, "too many attribute instances (max %d)", ENT_MAX_INSTANCES);
    if (is_ngsi_null(in)) {
        if (!merge)
            return bad(ps, "null is only allowed in a merge or update");
        return (*out = make_null_marker()) ? 0 : nomem(ps);
    }
    if (!cJSON_IsObject(in)) { /* concise Property */
        if ((inst = cJSON_CreateObject()) == NULL || !cJSON_AddStringToObject(inst, "type",
                                                                             "Property")) {
            rc = nomem(ps);
            goto fail;
        }
        if ((rc = add_dup(ps, inst, "value", in)) != 0)
            goto fail;
        *out = inst;
        return 0;
    }
    if ((rc = object_kind(ps, in, &k, &concise_value)) != 0)
        return rc;
    if ((inst = cJSON_CreateObject()) == NULL ||
        !cJSON_AddStringToObject(inst, "type", ent__kind_names[k])) {
        rc = nomem(ps);
        goto fail;
    }
    if (concise_value) {
        rc = k == ENT__GEO ? parse_geo_value(ps, in, inst) : add_dup(ps, inst, "value", in);
        if (rc != 0)
            goto fail;
        *out = inst;
        return 0;
    }
    val = cJSON_GetObjectItemCaseSensitive(in, ent__value_members[k]);
    if (val != NULL && value_is_null(k, val)) {
        const cJSON *ds = cJSON_GetObjectItemCaseSensitive(in, "datasetId");
        if (!merge) {
            rc = bad(ps, "null is only allowed in a merge or update");
            goto fail;
        }
        cJSON_Delete(inst);
        if ((inst = make_null_marker()) == NULL)
            return nomem(ps);
        if (ds != NULL && (rc = parse_metadata(ps, "datasetId", ds, k, inst)) != 0)
            goto fail;
        *out = inst;
        return 0;
    }
    if (val == NULL) {
        /* merge-patch may change only metadata / sub-attributes of an
         * instance whose type is given explicitly */
        if (!merge) {
            rc = bad(ps, "%s has no %s", ent__kind_names[k], ent__value_members[k]);
            goto fail;
        }
    } else if ((rc = parse_value_member(ps, k, val, inst)) != 0) {
        goto fail;
    }
    cJSON_ArrayForEach(m, in) {
        const char *key = m->string;
        if (strcmp(key, "type") == 0 || strcmp(key, ent__value_members[k]) == 0 ||
            is_ignored_member(key))
            continue;
        if (is_metadata(key)) {
            if ((rc = parse_metadata(ps, key, m, k, inst)) != 0)
                goto fail;
        } else if (ent__is_value_member(key)) {
            rc = bad(ps, "'%s' is not allowed in a %s", key, ent__kind_names[k]);
            goto fail;
        } else if ((rc = parse_sub(ps, m, depth, inst, &sub)) != 0) {
            goto fail;
        }
    }
    *out = inst;
    return 0;
fail:
    cJSON_Delete(inst);
    return rc;
}

/* Is v (an array element) shaped like an attribute instance? */
static int looks_instance(const cJSON *v)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");

    if (!cJSON_IsObject(v))
        return 0;
    if (cJSON_IsString(t) && ent__kind_by_name(t->valuestring) != ENT__NONE)
        return 1;
    for (int i = 0; i < ENT__N_KINDS; i++)
        if (cJSON_GetObjectItemCaseSensitive(v, ent__value_members[i]) != NULL)
            return 1;
    return 0;
}

static int looks_instances(const cJSON *v)
{
    const cJSON *it;

    if (!cJSON_IsArray(v) || v->child == NULL)
        return 0;
    cJSON_ArrayForEach(it, v)
        if (!looks_instance(it))
            return 0;
    return 1;
}

/* Parse a top-level attribute value (one instance or several) into a new
 * instances array. */
static int parse_instances(struct pstate *ps, const cJSON *v, cJSON **out)
{
    cJSON *arr = cJSON_CreateArray(), *inst = NULL;
    const cJSON *it;
    int rc;

    *out = NULL;
    if (arr == NULL)
        return nomem(ps);
    if (!looks_instances(v)) {
        if ((rc = parse_instance(ps, v, 0, &inst)) != 0)
            goto fail;
        cJSON_AddItemToArray(arr, inst);
        *out = arr;
        return 0;
    }
    cJSON_ArrayForEach(it, v) {
        if ((rc = parse_instance(ps, it, 0, &inst)) != 0)
            goto fail;
        if (ent__find_instance(arr, ent__dataset_id(inst)) >= 0) {
            const char *ds = ent__dataset_id(inst);
            cJSON_Delete(inst);
            if (ds == NULL)
                rc = bad(ps, "two instances without datasetId");
            else
                rc = bad(ps, "two instances with the same datasetId");
            goto fail;
        }
        cJSON_AddItemToArray(arr, inst);
    }
    *out = arr;
    return 0;
fail:
    cJSON_Delete(arr);
    return rc;
}

/* Check and expand an attribute name; *iri malloc'd. */
static int attr_name(struct pstate *ps, const char *name, char **iri)
{
    *iri = NULL;
    if (!name_ok(name))
        return err_set(ps->e, ERR_BAD_DATA, "invalid attribute name '%.80s'", name);
    if (is_reserved(name))
        return err_set(ps->e, ERR_BAD_DATA, "'%.40s' cannot be an attribute name", name);
    if ((*iri = ld_expand(ps->ctx, name)) == NULL)
        return nomem(ps);
    return 0;
}

static int parse_scope(struct pstate *ps, const cJSON *v, cJSON *doc)
{
    cJSON *arr;
    const cJSON *it;

    if ((ps->flags & ENT_MERGE) && is_ngsi_null(v))
        return cJSON_AddNullToObject(doc, "scope") ? 0 : nomem(ps);
    if (cJSON_IsString(v)) {
        if (!scope_ok(v->valuestring))
            return bad(ps, "invalid scope '%.80s'", v->valuestring);
    } else if (cJSON_IsArray(v) && v->child != NULL && cJSON_GetArraySize(v) <= ENT_MAX_ATTRS) {
        cJSON_ArrayForEach(it, v)
            if (!cJSON_IsString(it) || !scope_ok(it->valuestring))
                return bad(ps, "scope must be a string or array of strings like /a/b");
    } else {
        return bad(ps, "scope must be a string or array of strings like /a/b");
    }
    if ((arr = cJSON_AddArrayToObject(doc, "scope")) == NULL)
        return nomem(ps);
    if (cJSON_IsString(v))
        return push_string(ps, arr, v->valuestring);
    cJSON_ArrayForEach(it, v) {
        const cJSON *have;
        int dup = 0;
        cJSON_ArrayForEach(have, arr)
            if (strcmp(have->valuestring, it->valuestring) == 0)
                dup = 1;
        if (!dup && push_string(ps, arr, it->valuestring) != 0)
            return ERR_NOMEM;
    }
    return 0;
}

int ent_parse(const cJSON *body, const struct ld_ctx *ctx, int flags, cJSON **doc_out,
              struct err *e)
{
    struct pstate ps = {ctx ? ctx : ld_core(), flags, e, ENT_MAX_INSTANCES, NULL, NULL};
    cJSON *doc = NULL, *attrs, *types = NULL, *insts = NULL;
    const cJSON *m, *id, *type;
    char *iri = NULL;
    int rc, n_attrs = 0;

    *doc_out = NULL;
    if (!cJSON_IsObject(body))
        return err_set(e, ERR_INVALID_REQUEST, "the entity must be a JSON object");
    if ((doc = cJSON_CreateObject()) == NULL)
        return nomem(&ps);

    id = cJSON_GetObjectItemCaseSensitive(body, "id");
    if (id == NULL)
        id = cJSON_GetObjectItemCaseSensitive(body, "@id");
    type = cJSON_GetObjectItemCaseSensitive(body, "type");
    if (type == NULL)
        type = cJSON_GetObjectItemCaseSensitive(body, "@type");
    if (flags & ENT_FULL) {
        if (id == NULL) {
            rc = err_set(e, ERR_BAD_DATA, "the entity has no id");
            goto fail;
        }
        if (!cJSON_IsString(id) || !is_abs_uri(id->valuestring)) {
            rc = err_set(e, ERR_BAD_DATA, "entity id must be an absolute URI");
            goto fail;
        }
        if (!cJSON_AddStringToObject(doc, "id", id->valuestring)) {
            rc = nomem(&ps);
            goto fail;
        }
        if (type == NULL) {
            rc = err_set(e, ERR_BAD_DATA, "the entity has no type");
            goto fail;
        }
    }
    if (type != NULL) {
        if ((rc = expand_terms(&ps, type, "entity type", &types)) != 0)
            goto fail;
        cJSON_AddItemToObject(doc, "type", types);
    }
    if ((m = cJSON_GetObjectItemCaseSensitive(body, "scope")) != NULL &&
        (rc = parse_scope(&ps, m, doc)) != 0)
        goto fail;
    if ((attrs = cJSON_AddObjectToObject(doc, "attrs")) == NULL) {
        rc = nomem(&ps);
        goto fail;
    }
    cJSON_ArrayForEach(m, body) {
        const char *key = m->string;
        if (key == NULL || strcmp(key, "id") == 0 || strcmp(key, "@id") == 0 ||
            strcmp(key, "type") == 0 || strcmp(key, "@type") == 0 ||
            strcmp(key, "scope") == 0 || strcmp(key, "@context") == 0 ||
            strcmp(key, "createdAt") == 0 || strcmp(key, "modifiedAt") == 0 ||
            strcmp(key, "deletedAt") == 0)
            continue;
        if (++n_attrs > ENT_MAX_ATTRS) {
            rc = err_set(e, ERR_BAD_DATA, "too many attributes (max %d)", ENT_MAX_ATTRS);
            goto fail;
        }
        if ((rc = attr_name(&ps, key, &iri)) != 0)
            goto fail;
        if (cJSON_GetObjectItemCaseSensitive(attrs, iri) != NULL) {
            rc = err_set(e, ERR_BAD_DATA, "attribute '%.80s' given twice (same IRI)", key);
            goto fail;
        }
        ps.attr = key;
        ps.sub = NULL;
        if ((rc = parse_instances(&ps, m, &insts)) != 0)
            goto fail;
        cJSON_AddItemToObject(attrs, iri, insts);
        free(iri);
        iri = NULL;
    }
    *doc_out = doc;
    return 0;
fail:
    free(iri);
    cJSON_Delete(doc);
    return rc;
}

int ent_parse_attr(const char *attr_iri, const cJSON *body, const struct ld_ctx *ctx, int flags,
                   cJSON **inst_out, struct err *e)
{
    struct pstate ps = {ctx ? ctx : ld_core(), flags, e, ENT_MAX_INSTANCES,
                        attr_iri ? attr_iri : "?", NULL};

    *inst_out = NULL;
    if (body == NULL)
        return err_set(e, ERR_INVALID_REQUEST, "no attribute in the request body");
    if (cJSON_IsArray(body) && looks_instances(body))
        return bad(&ps, "expected one attribute instance, got an array");
    return parse_instance(&ps, body, 0, inst_out);
}
