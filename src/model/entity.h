/*
 * entity.h - the NGSI-LD entity model: validation of input entities and
 * attribute fragments (normalized or concise form), the entity document (the
 * expanded storage form described in docs/DESIGN.md "The entity document"),
 * the update operations the store writer applies to it, and rendering for
 * output (normalized, concise, keyValues).
 *
 * Every function here is a pure function on cJSON trees: no global state, no
 * locks, callable from any thread. The only shared object used is the
 * immutable struct ld_ctx.
 *
 * Null marker (ENT_MERGE only). A deletion requested in a merge fragment
 * (JSON null or "urn:ngsi-ld:null" as an attribute or sub-attribute value,
 * {"@none": "urn:ngsi-ld:null"} as a languageMap, "urn:ngsi-ld:null" as a
 * Relationship object) is kept in the fragment document as the instance
 *     {"type": "Property", "value": null}            (+ "datasetId" if given)
 * ent_is_null_marker() recognises it. A metadata member to delete
 * ("observedAt": null, "unitCode": null, "objectType": null) stays in the
 * instance as JSON null; a language to delete stays as "lang": null inside
 * the languageMap. Null markers never reach a stored document: the apply
 * operations consume them.
 */
#ifndef PL_ENTITY_H
#define PL_ENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ld/ld.h"
#include "util/err.h"

/* Caps on untrusted input (bad data beyond). */
#define ENT_MAX_DEPTH 16         /* sub-attribute nesting levels */
#define ENT_MAX_ATTRS 2000       /* attributes of one entity / fragment */
#define ENT_MAX_INSTANCES 10000  /* instances + sub-attributes in one body */
#define ENT_MAX_IRI 2048         /* length of an id, name or type */

/* The NGSI-LD null, "urn:ngsi-ld:null". */
#define ENT_NULL_URI "urn:ngsi-ld:null"

enum ent_parse_flags {
    ENT_FULL = 1,     /* whole entity: id and type required */
    ENT_FRAGMENT = 2, /* attributes only: id ignored, type optional (returned in doc["type"]) */
    ENT_MERGE = 4,    /* allow null markers (see above); combine with ENT_FRAGMENT */
};

/* Validate an input entity / fragment in normalized or concise form,
 * compacted against ctx (NULL = core context only), and produce its entity
 * document: {"id" (ENT_FULL only), "type" (array of IRIs; ENT_FULL always,
 * fragments when given), "scope" (array, when given), "attrs": {...}}, with
 * no createdAt/modifiedAt. "@context", "createdAt", "modifiedAt" in the body
 * are ignored. Errors: ERR_INVALID_REQUEST when body is not a JSON object,
 * ERR_BAD_DATA with a precise detail ("attribute 'temperature': Property has
 * no value"), ERR_NOMEM. On success the caller frees *doc_out with
 * cJSON_Delete; on error *doc_out is NULL. */
int ent_parse(const cJSON *body, const struct ld_ctx *ctx, int flags, cJSON **doc_out,
              struct err *e);

/* One attribute for PATCH/PUT /entities/{id}/attrs/{attrId}: body is the
 * attribute in normalized or concise form (one instance; a JSON array is
 * rejected). attr_iri (already expanded) only names the attribute in error
 * details and selects GeoJSON inference. *inst_out is one instance object in
 * storage form, caller frees. flags: 0 or ENT_MERGE. Errors as ent_parse. */
int ent_parse_attr(const char *attr_iri, const cJSON *body, const struct ld_ctx *ctx, int flags,
                   cJSON **inst_out, struct err *e);

/* 1 if inst is a null marker (see file comment), else 0. */
int ent_is_null_marker(const cJSON *inst);

/* ---- Operations applied by the store writer --------------------------
 * `now` is a tm_format timestamp. They modify cur (a stored document) in
 * place and never take ownership of their other arguments (they copy).
 * updated / not_updated, when non-NULL, are cJSON arrays to which the
 * function appends attribute IRIs (updated, each IRI once) and
 * {"attributeName": IRI, "reason": "..."} objects (not_updated). Instances
 * are matched by datasetId (absent = the default instance). A replaced
 * instance keeps its createdAt; every changed instance gets modifiedAt =
 * now, and so does the entity when anything changed. They return 0 or
 * ERR_NOMEM (cur is then consistent but partly updated). */

/* createdAt/modifiedAt = now on the entity, every instance and sub-attribute. */
void ent_stamp_new(cJSON *doc, const char *now);

/* PUT /entities/{id}, upsert?options=replace: all attributes replaced by
 * incoming's (a parsed ENT_FULL or ENT_FRAGMENT document), types replaced
 * when incoming has them, scope replaced (removed when incoming has none),
 * entity createdAt kept. */
int ent_replace(cJSON *cur, const cJSON *incoming, const char *now);

/* POST /entities/{id}/attrs, batch update / upsert?options=update: add or
 * overwrite instances; with no_overwrite existing instances are kept and
 * reported in not_updated. New types and scopes in frag are added. A null
 * marker deletes the matching instance. */
int ent_append(cJSON *cur, const cJSON *frag, int no_overwrite, const char *now, cJSON *updated,
               cJSON *not_updated);

/* PATCH /entities/{id}/attrs: only instances that exist are overwritten;
 * others go to not_updated ("attribute not found" / "no instance with
 * datasetId ..."). scope is replaced when frag has one; types are ignored. */
int ent_update(cJSON *cur, const cJSON *frag, const char *now, cJSON *updated, cJSON *not_updated);

/* PATCH /entities/{id}, batch merge: merge-patch (GS CIM 009 5.6.17). For an
 * instance present in both: type and value member replaced, languageMap
 * merged by language, observedAt/unitCode/objectType replaced (JSON null:
 * removed), sub-attributes merged recursively. A new instance is added; a
 * null marker deletes. Types are added; scope replaced (null: removed). */
int ent_merge(cJSON *cur, const cJSON *frag, const char *now);

/* PATCH /entities/{id}/attrs/{attrId}: merge inst (as ent_merge does) into
 * the instance with inst's datasetId; a null marker deletes that instance.
 * ERR_NOT_FOUND (detail set) if the attribute or instance is absent. */
int ent_attr_patch(cJSON *cur, const char *attr_iri, const cJSON *inst, const char *now,
                   struct err *e);

/* PUT /entities/{id}/attrs/{attrId}: replace the instance with inst's
 * datasetId (createdAt kept). ERR_NOT_FOUND if absent. */
int ent_attr_replace(cJSON *cur, const char *attr_iri, const cJSON *inst, const char *now,
                     struct err *e);

/* An instance saying "deleted" (GS CIM 009 5.2.1): {type, <the type's value
 * member>: the NGSI-LD null "urn:ngsi-ld:null"}, in the shape the type's
 * value takes (a languageMap {"@none": null}, a one-item list...). type:
 * the deleted instance's (NULL: Property). NULL when out of memory. */
cJSON *ent_null_instance(const char *type);

/* DELETE /entities/{id}/attrs/{attrId}?datasetId=&deleteAll=: delete the
 * instance with dataset_id (NULL = default instance), or every instance when
 * delete_all. The attribute disappears with its last instance. Does not
 * touch modifiedAt (the caller does, it knows `now`). ERR_NOT_FOUND if the
 * attribute / instance is absent. */
int ent_attr_delete(cJSON *cur, const char *attr_iri, const char *dataset_id, int delete_all,
                    struct err *e);

/* ---- Rendering ------------------------------------------------------- */
enum ent_format { ENT_NORMALIZED = 0, ENT_CONCISE, ENT_KEYVALUES };

struct ent_render_opts {
    const struct ld_ctx *ctx;               /* compaction; NULL = core context */
    enum ent_format format;
    int sys_attrs;                          /* include createdAt/modifiedAt */
    const char *const *pick; size_t n_pick; /* n_pick > 0: keep only these members
                                               (attribute IRIs, "id", "type", "scope") */
    const char *const *omit; size_t n_omit; /* drop these members */
    const char *lang;                       /* `lang` parameter ("fr,en;q=0.5", "*") or NULL */
};

/* Render a stored document for output (without "@context"). Attribute
 * names, types, objectType and vocab values are compacted with ctx. One
 * instance renders as an object, several as an array; "type" and "scope" as
 * a string when single, else arrays.
 *   normalized: every member, "sub" flattened into the instance.
 *   concise:    "type" members dropped; a Property or GeoProperty with no
 *               other member renders as its bare value (a Property whose
 *               value is an object that would read back as something else
 *               keeps {"value": ...}); several instances always as objects.
 *   keyValues:  Property/GeoProperty -> value, Relationship -> object,
 *               LanguageProperty -> {"languageMap": m}, ListProperty ->
 *               {"valueList": l}, ListRelationship -> {"objectList": l},
 *               VocabProperty -> {"vocab": v}, JsonProperty -> {"json": j};
 *               several instances -> array of those; no metadata.
 *   lang:       a LanguageProperty becomes a Property whose value is the
 *               best-matching string, with "lang": the chosen tag (keyValues:
 *               the string alone).
 * Caller frees *out with cJSON_Delete. Errors: ERR_NOMEM, ERR_INTERNAL
 * (not a document). */
int ent_render(const cJSON *doc, const struct ent_render_opts *o, cJSON **out, struct err *e);

/* Does o's pick / omit keep member name (an attribute IRI, "id", "type")? */
int ent_render_keeps(const struct ent_render_opts *o, const char *name);

/* Which instances a document has, in one number: the sum over its
 * attribute instances of a 64-bit hash of (attribute IRI, datasetId or
 * none), so member order does not matter. Documents with the same value
 * have the same instances (but for a 2^-64 accident): the store keeps it
 * beside each document, and a replace that brings the same value knows it
 * drops nothing without reading the old document. A value stored by an
 * older build (another hash) only sends that one replace to the old
 * document. */
uint64_t ent_attr_sig(const cJSON *doc);

/* ---- Accessors for the store's indexes (borrowed pointers) ------------ */
const char *ent_doc_id(const cJSON *doc);
const cJSON *ent_doc_types(const cJSON *doc);                        /* the "type" array */
const cJSON *ent_doc_geo(const cJSON *doc, const char *geoprop_iri); /* GeoJSON of the default
                                                                        instance, or NULL */

#endif
