/*
 * ent_int.h - internals shared by the files of the model module (parse.c,
 * apply.c, render.c): the attribute kinds table and small lookups on the
 * entity document. Not part of the public API.
 */
#ifndef PL_ENT_INT_H
#define PL_ENT_INT_H

#include <cjson/cJSON.h>

/* The attribute types, with the member that carries each one's value:
 *   kind            "type"              value member
 *   ENT__PROPERTY   Property            value
 *   ENT__REL        Relationship        object
 *   ENT__GEO        GeoProperty         value
 *   ENT__LANG       LanguageProperty    languageMap
 *   ENT__LIST       ListProperty        valueList
 *   ENT__LISTREL    ListRelationship    objectList
 *   ENT__JSON       JsonProperty        json
 *   ENT__VOCAB      VocabProperty       vocab
 */
enum ent__kind {
    ENT__NONE = -1,
    ENT__PROPERTY = 0,
    ENT__REL,
    ENT__GEO,
    ENT__LANG,
    ENT__LIST,
    ENT__LISTREL,
    ENT__JSON,
    ENT__VOCAB,
    ENT__N_KINDS
};

extern const char *const ent__kind_names[ENT__N_KINDS];
extern const char *const ent__value_members[ENT__N_KINDS];

/* Kind named by a stored instance's "type", or ENT__NONE. */
enum ent__kind ent__kind_of(const cJSON *inst);

/* Kind for a type name ("Property" or its full IRI), or ENT__NONE. */
enum ent__kind ent__kind_by_name(const char *name);

/* Is name one of the value members (value, object, languageMap, ...)? */
int ent__is_value_member(const char *name);

/* datasetId of an instance, NULL for the default instance. */
const char *ent__dataset_id(const cJSON *inst);

/* Index of the instance with datasetId dsid (NULL = default) in an
 * instances array, or -1. */
int ent__find_instance(const cJSON *instances, const char *dsid);

/* Does v look like a GeoJSON geometry (object, "type" a geometry name,
 * "coordinates" present)? Shape only; geo_parse validates. */
int ent__looks_geojson(const cJSON *v);

#endif
