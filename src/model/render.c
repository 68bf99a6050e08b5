/*
 * render.c - entity document -> output representation (GS CIM 009 4.5):
 * normalized, concise or keyValues, compacted against the caller's context,
 * with sysAttrs, pick/omit projection and LanguageProperty `lang` choice.
 *
 * Design: a fresh output tree is built from the stored document (which is
 * never modified); compaction is done per name with ld_compact. Per
 * instance, the rendering is
 *
 *   format      Property/Geo       Relationship   Language/List/ListRel/Vocab/Json
 *   normalized  {type,value,...}   {type,object}  {type,<member>,...}
 *   concise     value | {value,..} {object,...}   {<member>,...}
 *   keyValues   value              object         {<member>: v}
 *
 * ("..." = metadata, sysAttrs, sub-attributes flattened; concise drops every
 * "type" and uses the bare value when nothing else would be shown.)
 *
 * Thread safety: pure function, any thread.
 */
#include "model/entity.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/ent_int.h"

#define LANG_MAX_PREFS 16

struct lang_pref {
    char tag[64];
    double q;
};

struct rstate {
    const struct ent_render_opts *o;
    const struct ld_ctx *ctx;
    struct lang_pref prefs[LANG_MAX_PREFS];
    int n_prefs;
    int failed; /* out of memory somewhere */
};

/* ---- helpers ---------------------------------------------------------- */

static cJSON *dup(struct rstate *rs, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);

    if (d == NULL)
        rs->failed = 1;
    return d;
}

static void add(struct rstate *rs, cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        rs->failed = 1;
    }
}

static cJSON *compact_str(struct rstate *rs, const char *iri)
{
    char *c = ld_compact(rs->ctx, iri);
    cJSON *s;

    if (c == NULL) {
        rs->failed = 1;
        return NULL;
    }
    s = cJSON_CreateString(c);
    free(c);
    if (s == NULL)
        rs->failed = 1;
    return s;
}

/* A string or array of IRIs, compacted, same shape; one_as_string turns a
 * one-element array into a string. */
static cJSON *compact_terms(struct rstate *rs, const cJSON *v, int one_as_string)
{
    cJSON *arr;
    const cJSON *it;

    if (cJSON_IsString(v))
        return compact_str(rs, v->valuestring);
    if (!cJSON_IsArray(v))
        return dup(rs, v);
    if (one_as_string && cJSON_GetArraySize(v) == 1 && cJSON_IsString(v->child))
        return compact_str(rs, v->child->valuestring);
    if ((arr = cJSON_CreateArray()) == NULL) {
        rs->failed = 1;
        return NULL;
    }
    cJSON_ArrayForEach(it, v) {
        cJSON *c = cJSON_IsString(it) ? compact_str(rs, it->valuestring) : dup(rs, it);
        if (c == NULL || !cJSON_AddItemToArray(arr, c)) {
            cJSON_Delete(c);
            rs->failed = 1;
        }
    }
    return arr;
}

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] != NULL && strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

int ent_render_keeps(const struct ent_render_opts *o, const char *name)
{
    if (o->n_pick > 0 && !in_list(name, o->pick, o->n_pick))
        return 0;
    return !in_list(name, o->omit, o->n_omit);
}

static int keep(const struct rstate *rs, const char *name)
{
    return ent_render_keeps(rs->o, name);
}

/* ---- lang ------------------------------------------------------------- */

/* Parse "fr-CH, fr;q=0.9, *;q=0.5" into prefs sorted by q (stable). */
static void parse_lang(struct rstate *rs, const char *lang)
{
    const char *p = lang;

    rs->n_prefs = 0;
    while (p != NULL && *p && rs->n_prefs < LANG_MAX_PREFS) {
        struct lang_pref lp = {{0}, 1.0};
        size_t n = 0;
        while (*p == ' ' || *p == ',')
            p++;
        while (*p && *p != ',' && *p != ';' && *p != ' ') {
            if (n < sizeof(lp.tag) - 1)
                lp.tag[n++] = *p;
            p++;
        }
        while (*p == ' ')
            p++;
        if (*p == ';') {
            const char *q = strstr(p, "q=");
            const char *comma = strchr(p, ',');
            if (q != NULL && (comma == NULL || q < comma))
                lp.q = strtod(q + 2, NULL);
            p = comma ? comma : p + strlen(p);
        }
        if (n > 0 && lp.q > 0) {
            int i = rs->n_prefs++;
            while (i > 0 && rs->prefs[i - 1].q < lp.q) {
                rs->prefs[i] = rs->prefs[i - 1];
                i--;
            }
            rs->prefs[i] = lp;
        }
    }
}

/* The entry of languageMap lm that best matches the preferences: exact tag,
 * then a more specific tag ("en" matches "en-GB"), "*" takes "@none" or the
 * first; failing all, "@none", else the first entry. */
static const cJSON *choose_lang(const struct rstate *rs, const cJSON *lm)
{
    const cJSON *it, *none = cJSON_GetObjectItemCaseSensitive(lm, "@none");

    for (int i = 0; i < rs->n_prefs; i++) {
        const char *tag = rs->prefs[i].tag;
        size_t len = strlen(tag);
        if (strcmp(tag, "*") == 0)
            return none ? none : lm->child;
        cJSON_ArrayForEach(it, lm)
            if (strcasecmp(it->string, tag) == 0)
                return it;
        cJSON_ArrayForEach(it, lm)
            if (strncasecmp(it->string, tag, len) == 0 && it->string[len] == '-')
                return it;
    }
    return none ? none : lm->child;
}

/* ---- instances -------------------------------------------------------- */

static cJSON *render_instance(struct rstate *rs, const cJSON *inst, int multi);

static const char *const meta_members[] = {"observedAt", "unitCode", "datasetId", "valueType",
                                           NULL};

/* Would this Property value, shown bare in concise form, read back as
 * something else than a Property with that value? */
static int bare_ambiguous(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return 1;
    if (!cJSON_IsObject(v))
        return 0;
    if (cJSON_HasObjectItem(v, "type") || ent__looks_geojson(v))
        return 1;
    for (int k = 0; k < ENT__N_KINDS; k++)
        if (cJSON_HasObjectItem(v, ent__value_members[k]))
            return 1;
    return 0;
}

static cJSON *render_key_values(struct rstate *rs, const cJSON *inst, enum ent__kind k,
                                const cJSON *lang_entry)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(inst, ent__value_members[k]);
    cJSON *o;

    if (lang_entry != NULL)
        return dup(rs, lang_entry);
    switch (k) {
    case ENT__PROPERTY:
    case ENT__GEO:
    case ENT__REL:
        return v ? dup(rs, v) : cJSON_CreateNull();
    default:
        break;
    }
    if ((o = cJSON_CreateObject()) == NULL) {
        rs->failed = 1;
        return NULL;
    }
    if (k == ENT__VOCAB) {
        if (v != NULL)
            add(rs, o, "vocab", compact_terms(rs, v, 0));
    } else if (k == ENT__LISTREL) {
        cJSON *uris = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            const cJSON *u = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "object")
                                                : it;
            cJSON *c = dup(rs, u);
            if (uris == NULL || c == NULL || !cJSON_AddItemToArray(uris, c)) {
                cJSON_Delete(c);
                rs->failed = 1;
            }
        }
        add(rs, o, "objectList", uris);
    } else if (v != NULL) {
        add(rs, o, ent__value_members[k], dup(rs, v));
    }
    return o;
}

static cJSON *render_instance(struct rstate *rs, const cJSON *inst, int multi)
{
    enum ent__kind k = ent__kind_of(inst);
    enum ent_format fmt = rs->o->format;
    const cJSON *lang_entry = NULL, *v, *sub, *s;
    cJSON *o;
    int n_other = 0;

    if (k == ENT__NONE)
        k = ENT__PROPERTY;
    if (k == ENT__LANG && rs->n_prefs > 0) {
        const cJSON *lm = cJSON_GetObjectItemCaseSensitive(inst, "languageMap");
        if (cJSON_IsObject(lm) && lm->child != NULL)
            lang_entry = choose_lang(rs, lm);
    }
    if (fmt == ENT_KEYVALUES)
        return render_key_values(rs, inst, k, lang_entry);

    if ((o = cJSON_CreateObject()) == NULL) {
        rs->failed = 1;
        return NULL;
    }
    if (fmt == ENT_NORMALIZED)
        add(rs, o, "type", cJSON_CreateString(lang_entry ? "Property" : ent__kind_names[k]));
    v = cJSON_GetObjectItemCaseSensitive(inst, ent__value_members[k]);
    if (lang_entry != NULL) {
        add(rs, o, "value", dup(rs, lang_entry));
        add(rs, o, "lang", cJSON_CreateString(lang_entry->string));
        n_other++;
    } else if (k == ENT__VOCAB && v != NULL) {
        add(rs, o, "vocab", compact_terms(rs, v, 0));
    } else if (v != NULL) {
        add(rs, o, ent__value_members[k], dup(rs, v));
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(inst, "objectType")) != NULL) {
        add(rs, o, "objectType", compact_terms(rs, v, 0));
        n_other++;
    }
    for (int i = 0; meta_members[i]; i++) {
        if ((v = cJSON_GetObjectItemCaseSensitive(inst, meta_members[i])) != NULL) {
            add(rs, o, meta_members[i], dup(rs, v));
            n_other++;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(inst, "deletedAt")) != NULL) {
        add(rs, o, "deletedAt", dup(rs, v)); /* only history records of deletions have it */
        n_other++;
    }
    if (rs->o->sys_attrs) {
        if ((v = cJSON_GetObjectItemCaseSensitive(inst, "createdAt")) != NULL) {
            add(rs, o, "createdAt", dup(rs, v));
            n_other++;
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(inst, "modifiedAt")) != NULL) {
            add(rs, o, "modifiedAt", dup(rs, v));
            n_other++;
        }
    }
    sub = cJSON_GetObjectItemCaseSensitive(inst, "sub");
    cJSON_ArrayForEach(s, sub) {
        char *name = ld_compact(rs->ctx, s->string);
        if (name == NULL) {
            rs->failed = 1;
            continue;
        }
        if (cJSON_HasObjectItem(o, name))
            add(rs, o, s->string, render_instance(rs, s, 0));
        else
            add(rs, o, name, render_instance(rs, s, 0));
        free(name);
        n_other++;
    }
    if (fmt == ENT_CONCISE && !multi && n_other == 0 && (k == ENT__PROPERTY || k == ENT__GEO)) {
        v = cJSON_GetObjectItemCaseSensitive(o, "value");
        if (v != NULL && (k == ENT__GEO || !bare_ambiguous(v))) {
            cJSON *bare = cJSON_DetachItemViaPointer(o, (cJSON *)v);
            cJSON_Delete(o);
            return bare;
        }
    }
    return o;
}

static cJSON *render_attr(struct rstate *rs, const cJSON *insts)
{
    const cJSON *inst;
    cJSON *arr;

    if (cJSON_GetArraySize(insts) == 1)
        return render_instance(rs, insts->child, 0);
    if ((arr = cJSON_CreateArray()) == NULL) {
        rs->failed = 1;
        return NULL;
    }
    cJSON_ArrayForEach(inst, insts) {
        cJSON *r = render_instance(rs, inst, 1);
        if (r == NULL || !cJSON_AddItemToArray(arr, r)) {
            cJSON_Delete(r);
            rs->failed = 1;
        }
    }
    return arr;
}

int ent_render(const cJSON *doc, const struct ent_render_opts *o, cJSON **out, struct err *e)
{
    struct rstate rs;
    const cJSON *v, *attrs, *a;
    cJSON *res = NULL;

    *out = NULL;
    if (!cJSON_IsObject(doc) || o == NULL)
        return err_set(e, ERR_INTERNAL, "not an entity document");
    memset(&rs, 0, sizeof(rs));
    rs.o = o;
    rs.ctx = o->ctx ? o->ctx : ld_core();
    parse_lang(&rs, o->lang);
    if ((res = cJSON_CreateObject()) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");

    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "id")) != NULL && keep(&rs, "id"))
        add(&rs, res, "id", dup(&rs, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "type")) != NULL && keep(&rs, "type"))
        add(&rs, res, "type", compact_terms(&rs, v, 1));
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "scope")) != NULL && keep(&rs, "scope")) {
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
            add(&rs, res, "scope", dup(&rs, v->child));
        else
            add(&rs, res, "scope", dup(&rs, v));
    }
    if (o->sys_attrs) {
        if ((v = cJSON_GetObjectItemCaseSensitive(doc, "createdAt")) != NULL)
            add(&rs, res, "createdAt", dup(&rs, v));
        if ((v = cJSON_GetObjectItemCaseSensitive(doc, "modifiedAt")) != NULL)
            add(&rs, res, "modifiedAt", dup(&rs, v));
    }
    attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs");
    cJSON_ArrayForEach(a, attrs) {
        char *name;
        if (!keep(&rs, a->string) || a->child == NULL)
            continue;
        if ((name = ld_compact(rs.ctx, a->string)) == NULL) {
            rs.failed = 1;
            break;
        }
        /* two IRIs compacting to one name (or to id/type): keep the IRI */
        if (cJSON_HasObjectItem(res, name))
            add(&rs, res, a->string, render_attr(&rs, a));
        else
            add(&rs, res, name, render_attr(&rs, a));
        free(name);
    }
    if (rs.failed) {
        cJSON_Delete(res);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = res;
    return 0;
}
