/*
 * profile_int.h - internals shared by profile.c (parsing, stored form, CSV)
 * and map.c (uplink -> entity fragments). Not for other modules.
 */
#ifndef PL_PROFILE_INT_H
#define PL_PROFILE_INT_H

#include "ingest/profile.h"

enum prof__attr_type { PROF__PROPERTY = 1, PROF__GEOPROPERTY, PROF__RELATIONSHIP };

/* Terms the mapping writes on its own (Device companion, raw codec,
 * refDevice, location): expanded at parse time like the profile's own. */
enum prof__term {
    PT_DEVICE = 0, PT_SERIAL_NUMBER, PT_SUPPORTED_PROTOCOL, PT_CONTROLLED_ASSET, PT_RSSI,
    PT_SNR, PT_DATE_LAST_VALUE_REPORTED, PT_FCNT, PT_BATTERY_LEVEL, PT_POWER_SOURCE,
    PT_LAST_JOIN_AT, PT_LAST_LOG, PT_REF_DEVICE, PT_LOCATION, PT_NAME, PT_PAYLOAD, PT_FPORT,
    PT__COUNT
};

extern const char *const prof__terms[PT__COUNT];

/* 1 if s is usable as an attribute or type name: 1..PROF_MAX_NAME bytes, no
 * whitespace, control characters or < > " ' = ; ( ) \, not a reserved
 * NGSI-LD member name. */
int prof__name_ok(const char *s);

struct prof__field {
    char *from;                 /* as given */
    int lpp_type;               /* cayenne-lpp: type id; else -1 */
    int lpp_channel;            /* cayenne-lpp: channel, -1 = first value of the type */
    char *path[PROF_MAX_PATH_DEPTH]; /* network-decoded: segments of from */
    int n_path;
    char *attribute;            /* term */
    char *iri;                  /* its expansion */
    enum prof__attr_type type;
    char unit_code[17];         /* "" = none */
    int has_scale, has_offset;  /* given in the profile */
    double scale, offset;
};

struct prof__static {
    char *term;
    char *iri;
    cJSON *value;
};

struct prof {
    char id[PROF_MAX_ID + 1];
    char *description;          /* NULL if none */
    enum prof_codec codec;
    char *entity_type;          /* term */
    char *entity_type_iri;
    char *pattern;              /* entityIdPattern (default filled in) */
    struct prof__field *fields;
    size_t n_fields;
    int keep_unmapped;
    struct prof__static *statics;
    size_t n_statics;
    int device_entity;
    int maps_location;          /* a field writes the location attribute */
    char *vocab;                /* base IRI for kept unmapped names */
    char *term_iri[PT__COUNT];
};

#endif
