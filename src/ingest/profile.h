/*
 * profile.h - device profiles, devices, and the mapping of one LoRaWAN
 * uplink (struct uplink) to NGSI-LD entity documents.
 *
 * A device profile says how a device's messages become entities: the codec
 * (Cayenne LPP, the network server's decoded object, or the raw payload),
 * the target entity type, field -> attribute mappings (unitCode, scale,
 * offset, NGSI-LD attribute type), static attributes, how unmapped fields
 * are treated and whether a companion Device entity is kept. A device is a
 * DevEUI bound to a profile, with an optional entity id, name, owner,
 * location, description and tags. Both come as JSON from the admin API
 * (devices also as CSV) and are validated here with ProblemDetails-ready
 * errors (ERR_BAD_DATA, detail naming the member).
 *
 * Terms (entity type, attribute names, the Device companion's attribute
 * names) are expanded once, at prof_parse time, with the caller's @context
 * expander; the profile keeps both the term and its IRI, and prof_to_json
 * writes the IRIs out ("iris") so that a stored profile reloads with no
 * context at all. Unmapped fields kept with "unmapped": "keep" are named
 * at mapping time by the context's @vocab (the expansion of a probe term,
 * kept as "iris"["@vocab"]).
 *
 * This layer is pure: no I/O, no store, no locks, no global mutable state.
 * A struct prof and a struct prof_device are immutable once parsed and may
 * be read by any number of threads at once (prof_map only reads them).
 */
#ifndef PL_PROFILE_H
#define PL_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ingest/uplink.h"
#include "util/err.h"

#define PROF_MAX_ID 64     /* profile id, owner: [A-Za-z0-9._-]{1,64} */
#define PROF_MAX_FIELDS 64 /* "fields" entries */
#define PROF_MAX_STATIC 64 /* "staticAttributes" members */
#define PROF_MAX_NAME 128  /* from, attribute, static and device names */
#define PROF_MAX_DESCRIPTION 512
#define PROF_MAX_PATTERN 256      /* entityIdPattern */
#define PROF_MAX_ENTITY_ID 512    /* device entityId and derived ids */
#define PROF_MAX_PATH_DEPTH 8     /* segments of a dotted "from" path */
#define PROF_MAX_STATIC_JSON 4096 /* printed size of one static value */
#define PROF_MAX_TAGS 32          /* device "tags" members */
#define PROF_MAX_CSV_ROWS 10000   /* data rows of a device CSV */
#define PROF_MAX_CSV_CELL 1024    /* bytes of one CSV cell */

enum prof_codec { PROF_CAYENNE_LPP = 1, PROF_NETWORK_DECODED, PROF_RAW };

/* A parsed device profile (opaque, immutable). */
struct prof;

/* A parsed device. Strings are owned by the struct (prof_device_free). */
struct prof_device {
    char dev_eui[17];              /* 16 lowercase hex digits */
    char profile[PROF_MAX_ID + 1]; /* profile id */
    char owner[PROF_MAX_ID + 1];   /* "" if none */
    char *entity_id;               /* NULL: derived from the profile's pattern */
    char *name;                    /* NULL if none */
    char *description;             /* NULL if none */
    int has_location;
    int n_coords;     /* 2, or 3 with altitude */
    double coords[3]; /* lon, lat[, alt] */
    cJSON *tags;      /* object of strings, NULL if none */
};

/* Expands a term with the request's @context: a malloc'd absolute IRI
 * (caller frees), NULL only when out of memory. */
typedef char *(*prof_expand_fn)(void *ud, const char *term);

/* Parse and validate a device profile (the JSON of the admin API, see the
 * member table in profile.c). Every term is expanded with expand(ud, term);
 * the result must be an absolute IRI. With expand == NULL the IRIs are
 * taken from the profile's own "iris" member (the stored form written by
 * prof_to_json), and a term missing there is an error; with an expander,
 * an "iris" member in json is accepted and ignored, so a stored profile can
 * be sent back as is. Returns 0 and *out (caller frees with prof_free), or
 * ERR_BAD_DATA with a detail naming the member ("fields[2].scale must be a
 * number"), or ERR_NOMEM; *out is NULL on error. */
int prof_parse(const cJSON *json, prof_expand_fn expand, void *ud, struct prof **out,
               struct err *e);

/* Free a profile; accepts NULL. */
void prof_free(struct prof *p);

/* The stored form: the input members normalized (defaults filled in:
 * description only when given, entityIdPattern, fields[].type, unmapped,
 * staticAttributes, deviceEntity) plus "iris": {term: IRI} for every term
 * the profile uses and "@vocab". prof_parse(prof_to_json(p), NULL, ...)
 * rebuilds an identical profile. Returns 0 and *out (caller frees with
 * cJSON_Delete) or ERR_NOMEM. */
int prof_to_json(const struct prof *p, cJSON **out);

/* Accessors (strings live as long as p). */
const char *prof_id(const struct prof *p);
enum prof_codec prof_codec_of(const struct prof *p);
const char *prof_entity_type(const struct prof *p);     /* the term */
const char *prof_entity_type_iri(const struct prof *p); /* its IRI */
int prof_device_entity(const struct prof *p);           /* 1 if a Device companion is kept */

/* Codec names "cayenne-lpp", "network-decoded", "raw"; "?" if unknown. */
const char *prof_codec_name(enum prof_codec c);

/* Parse and validate a device object (see profile.h struct prof_device and
 * the member table in profile.c; unknown members are rejected). The devEui
 * is normalized to lowercase. Whether the named profile exists is the
 * caller's business. Returns 0 and *out (free with prof_device_free), or
 * ERR_BAD_DATA (detail names the member) / ERR_NOMEM with *out NULL. */
int prof_device_parse(const cJSON *json, struct prof_device **out, struct err *e);

/* Free a device; accepts NULL. */
void prof_device_free(struct prof_device *d);

/* The stored form of a device (normalized: lowercase devEui, absent
 * members omitted). prof_device_parse of it gives the same device.
 * Returns 0 and *out (cJSON_Delete) or ERR_NOMEM. */
int prof_device_to_json(const struct prof_device *d, cJSON **out);

/* Bulk provisioning: CSV text (RFC 4180: quoted cells with "" escapes and
 * line breaks, CRLF or LF, an optional UTF-8 BOM) whose first row names
 * columns among devEui, profile, entityId, name, owner, lat, lon,
 * description (any order, case-insensitive; devEui and profile required;
 * lat and lon together). Blank lines are skipped; an empty cell omits the
 * member. Each row becomes a device object (lat/lon -> "location" Point)
 * and is validated as prof_device_parse does. At most PROF_MAX_CSV_ROWS
 * rows, PROF_MAX_CSV_CELL bytes a cell. Returns 0 and *array (JSON array
 * of device objects in row order, caller frees), or ERR_BAD_DATA with a
 * detail starting "line N: " (the line where the bad row starts), or
 * ERR_NOMEM; *array is NULL on error. */
int prof_devices_csv(const char *text, size_t len, cJSON **array, struct err *e);

/* The main entity id of device d under profile p: d->entity_id when set,
 * else the profile's entityIdPattern with {devEui} (lowercase), {DEVEUI}
 * (uppercase), {type} (the entity type term) and {name} (the device name,
 * percent-encoded outside [A-Za-z0-9._~-]; the lowercase DevEUI when the
 * device has no name) substituted. Writes a NUL-terminated id into
 * out[0..cap). Returns 0, or ERR_BAD_DATA if the id does not fit or is not
 * an absolute URI (detail set). */
int prof_entity_id(const struct prof *p, const struct prof_device *d, char *out, size_t cap,
                   struct err *e);

/* The result of mapping one uplink. */
struct prof_out {
    cJSON *entity;            /* main entity fragment or NULL: storage form (docs/DESIGN.md "The
                                 entity document": id, type [IRI], attrs {IRI: [instance]})
                                 without createdAt/modifiedAt; measured instances carry
                                 observedAt = the uplink time, unitCode when the profile sets one */
    cJSON *device;            /* companion Device entity fragment or NULL, same form */
    int n_mapped;             /* decoded values written through a profile field */
    int n_unmapped;           /* decoded values no field names (kept or ignored) */
    int n_rejected;           /* fields skipped for a bad value */
    const char *reason;       /* static code when the whole uplink is rejected, else NULL */
    const char *field_reason; /* static code of the first rejected field, else NULL */
};

/* Map uplink u of device d (whose profile is p) to entity fragments, for an
 * upsert-update (append) by the runtime. observedAt is u->time_ms, or now_ms
 * when u->time_ms is 0. By event:
 *   up      main entity: mapped attributes, kept unmapped ones, static
 *           attributes, the device's location (GeoProperty "location",
 *           unless a field maps to location), "refDevice" when deviceEntity;
 *           no main entity when the payload is empty or nothing was decoded.
 *           Device: rssi, snr, dateLastValueReported, fCnt.
 *   status  Device: batteryLevel (fraction 0..1), powerSource "external".
 *   join    Device: lastJoinAt.         log  Device: lastLog {level, code, description}.
 * Every Device fragment also carries serialNumber, supportedProtocol
 * ["lora"], controlledAsset, and name / location when known (these without
 * observedAt, so they do not grow the history). With deviceEntity off, no
 * Device fragment. A bad value of one field is skipped and counted
 * (n_rejected, field_reason: "not_a_number", "not_a_string", "not_a_uri",
 * "bad_geometry", "out_of_range", "bad_name"). Returns 0 with *out filled
 * (its fragments owned by out: prof_out_clear), or ERR_BAD_DATA with the
 * detail in e, out->reason set and no fragments: "lpp_truncated",
 * "lpp_unknown_type", "lpp_too_many_values", "no_decoded_object",
 * "bad_field" (every decoded value of a field was rejected and nothing else
 * was mapped), "bad_entity_id"; or ERR_NOMEM (reason "nomem"). *out is
 * overwritten entirely. */
int prof_map(const struct prof *p, const struct prof_device *d, const struct uplink *u,
             int64_t now_ms, struct prof_out *out, struct err *e);

/* prof_map with flags. PROF_MAP_MEASURED leaves out what does not change
 * from one uplink to the next: the static attributes, the registered
 * location and refDevice of the main entity, and the Device's
 * serialNumber, supportedProtocol, controlledAsset, name and registered
 * location (a location decoded from the uplink stays). The runtime writes
 * those with a device's first uplink after a start or a registry change,
 * then only the measurements, so they are not rewritten (nor notified as
 * updated) with every message. */
#define PROF_MAP_MEASURED 1u
int prof_map_opts(const struct prof *p, const struct prof_device *d, const struct uplink *u,
                  int64_t now_ms, unsigned flags, struct prof_out *out, struct err *e);

/* Free the fragments of o and reset it; accepts NULL, safe twice. */
void prof_out_clear(struct prof_out *o);

#endif
