/*
 * profile.c - device profiles and devices: parsing, validation, the stored
 * form, the device CSV, and derived entity ids (see profile.h). The
 * mapping of uplinks is in map.c.
 *
 * Device profile members (unknown members are rejected: typo safety):
 *
 *   member            type     default                       rule
 *   id                string   required                      [A-Za-z0-9._-]{1,64}
 *   description       string   absent                        <= 512 bytes
 *   codec             string   required                      cayenne-lpp | network-decoded | raw
 *   entityType        term     required                      a valid name, expanded
 *   entityIdPattern   string   urn:ngsi-ld:{type}:{devEui}   <= 256, placeholders {devEui}
 *                                                            {DEVEUI} {name} {type}, gives a URI
 *   fields            array    []                            <= 64 objects (below); none for raw
 *   unmapped          string   ignore                        ignore | keep
 *   staticAttributes  object   {}                            <= 64, term -> non-null JSON value
 *                                                            (<= 4 KiB printed), stored as Property
 *   deviceEntity      boolean  true
 *   iris              object   (written by prof_to_json)     term -> IRI, "@vocab" -> IRI
 *
 *   field member  type     rule
 *   from          string   cayenne-lpp: <lpp name>_<channel 0-255> or <lpp name>;
 *                          network-decoded: member name or dotted path (<= 8 levels)
 *   attribute     term     a valid name, expanded; unique among fields and static attributes
 *   type          string   Property (default; GeoProperty for an LPP gps) | GeoProperty |
 *                          Relationship; LPP values only as Property, gps only as GeoProperty;
 *                          the location attribute only as GeoProperty
 *   unitCode      string   [A-Za-z0-9]{1,16}, Property only
 *   scale/offset  number   finite; value = raw * scale + offset (not for gps, Relationship,
 *                          GeoProperty); kept only when given
 *
 * Names (from, attribute, static terms) are at most 128 bytes with no
 * whitespace, control characters or any of < > " ' = ; ( ) \ , and are
 * none of the NGSI-LD reserved member names. Attributes the mapping writes
 * itself cannot be claimed: refDevice (when deviceEntity), location as a
 * static attribute, payload / fPort (raw codec).
 *
 * Device members: devEui (16 hex digits, required), profile (profile id,
 * required), entityId (absolute URI <= 512), name (<= 128, no control
 * characters), owner (like an id), location (GeoJSON Point [lon, lat(,
 * alt)] with lon in [-180, 180] and lat in [-90, 90]), description (<= 512),
 * tags (flat object, <= 32 members, keys <= 64 and values <= 128 bytes).
 *
 * Pure functions, no global mutable state; parsed objects are immutable
 * and may be shared by threads.
 */
#include "ingest/profile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/lpp.h"
#include "ingest/profile_int.h"
#include "ld/ld.h"
#include "util/hmap.h"
#include "util/uri.h"

#define DEFAULT_PATTERN "urn:ngsi-ld:{type}:{devEui}"
#define MAX_IRI 2048
/* Expanded to find the context's @vocab (what kept unmapped names use). */
#define VOCAB_PROBE "pilotlightVocabProbe"

const char *const prof__terms[PT__COUNT] = {
    [PT_DEVICE] = "Device",
    [PT_SERIAL_NUMBER] = "serialNumber",
    [PT_SUPPORTED_PROTOCOL] = "supportedProtocol",
    [PT_CONTROLLED_ASSET] = "controlledAsset",
    [PT_RSSI] = "rssi",
    [PT_SNR] = "snr",
    [PT_DATE_LAST_VALUE_REPORTED] = "dateLastValueReported",
    [PT_FCNT] = "fCnt",
    [PT_BATTERY_LEVEL] = "batteryLevel",
    [PT_POWER_SOURCE] = "powerSource",
    [PT_LAST_JOIN_AT] = "lastJoinAt",
    [PT_LAST_LOG] = "lastLog",
    [PT_REF_DEVICE] = "refDevice",
    [PT_LOCATION] = "location",
    [PT_NAME] = "name",
    [PT_PAYLOAD] = "payload",
    [PT_FPORT] = "fPort",
};

static const char *const PROFILE_MEMBERS[] = {
    "id", "description", "codec", "entityType", "entityIdPattern", "fields",
    "unmapped", "staticAttributes", "deviceEntity", "iris", NULL,
};
static const char *const FIELD_MEMBERS[] = {
    "from", "attribute", "type", "unitCode", "scale", "offset", NULL,
};
static const char *const DEVICE_MEMBERS[] = {
    "devEui", "profile", "entityId", "name", "owner", "location", "description", "tags", NULL,
};
/* Entity and attribute members that can never be attribute names. */
static const char *const RESERVED_NAMES[] = {
    "id", "@id", "type", "@type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt",
    "value", "object", "objectType", "languageMap", "valueList", "objectList", "json", "vocab",
    "observedAt", "unitCode", "datasetId", "instanceId", "lang", "valueType", "@value",
    "@language", "@list", "@none", "@json", NULL,
};

static int bad(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct err *e, const char *fmt, ...)
{
    char detail[ERR_DETAIL_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return err_set(e, ERR_BAD_DATA, "%s", detail);
}

static int nomem(struct err *e)
{
    return err_set(e, ERR_NOMEM, "out of memory");
}

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Check obj's member names: each in allowed, none twice (cJSON keeps
 * duplicates; a typo-safe parser must not pick one silently). Since every
 * member must be allowed, a duplicate shows up within the first
 * len(allowed) + 1 members: the loop is bounded by the list, not the input. */
static int check_members(const cJSON *obj, const char *const *allowed, const char *what,
                         struct err *e)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, obj) {
        if (it->string == NULL || !in_list(it->string, allowed))
            return err_set(e, ERR_BAD_DATA, "unknown member '%.60s' in the %s",
                           it->string != NULL ? it->string : "", what);
        for (const cJSON *o = obj->child; o != it; o = o->next)
            if (strcmp(o->string, it->string) == 0)
                return err_set(e, ERR_BAD_DATA, "member '%.60s' appears twice in the %s",
                               it->string, what);
    }
    return 0;
}

/* 1 if some object inside v (v included) has a member name twice. */
static int has_dup_key(const cJSON *v)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, v) {
        if (cJSON_IsObject(v))
            for (const cJSON *o = v->child; o != it; o = o->next)
                if (strcmp(o->string, it->string) == 0)
                    return 1;
        if ((cJSON_IsObject(it) || cJSON_IsArray(it)) && has_dup_key(it))
            return 1;
    }
    return 0;
}

/* [A-Za-z0-9._-]{1,64} */
static int id_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > PROF_MAX_ID)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int prof__name_ok(const char *s)
{
    size_t len = strlen(s);

    /* '@' starts a JSON-LD keyword (an attribute "@vocab" would also meet the
     * vocabulary's own entry in the stored iris) */
    if (len == 0 || len > PROF_MAX_NAME || s[0] == '@' || in_list(s, RESERVED_NAMES))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr("<>\"'=;()\\", c) != NULL)
            return 0;
    }
    return 1;
}

/* A string of at most max bytes with no control characters. */
static int text_ok(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* An optional string member: *out NULL when absent; not a string is bad. */
static int opt_string(const cJSON *obj, const char *key, const char *what, const char **out,
                      struct err *e)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    *out = NULL;
    if (it == NULL)
        return 0;
    if (!cJSON_IsString(it) || it->valuestring == NULL)
        return bad(e, "%s must be a string", what);
    *out = it->valuestring;
    return 0;
}

static int req_string(const cJSON *obj, const char *key, const char *what, const char **out,
                      struct err *e)
{
    int rc = opt_string(obj, key, what, out, e);

    if (rc == 0 && *out == NULL)
        return bad(e, "%s is required", what);
    return rc;
}

static int dup_to(char **dst, const char *s, struct err *e)
{
    *dst = strdup(s);
    return *dst != NULL ? 0 : nomem(e);
}

/* ---- term expansion ----------------------------------------------------- */

struct expander {
    prof_expand_fn fn;     /* NULL: look terms up in iris */
    void *ud;
    const cJSON *iris;
};

/* Expand term into *iri (malloc'd). what names the member in errors. */
static int expand_term(const struct expander *x, const char *term, const char *what, char **iri,
                       struct err *e)
{
    *iri = NULL;
    if (x->fn != NULL) {
        if ((*iri = x->fn(x->ud, term)) == NULL)
            return nomem(e);
    } else {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(x->iris, term);

        if (!cJSON_IsString(it) || it->valuestring == NULL)
            return bad(e, "%s: no IRI for term '%.60s' in iris", what, term);
        if ((*iri = strdup(it->valuestring)) == NULL)
            return nomem(e);
    }
    if (!uri_is_absolute(*iri, MAX_IRI)) {
        free(*iri);
        *iri = NULL;
        return bad(e, "%s '%.60s' does not expand to an absolute IRI", what, term);
    }
    return 0;
}

/* The context's @vocab: the expansion of a probe term minus the term. */
static int find_vocab(const struct expander *x, char **vocab, struct err *e)
{
    char *iri = NULL;
    size_t len, plen = strlen(VOCAB_PROBE);

    *vocab = NULL;
    if (x->fn == NULL) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(x->iris, "@vocab");

        if (!cJSON_IsString(it) || it->valuestring == NULL)
            return bad(e, "iris: no IRI for '@vocab'");
        if (strlen(it->valuestring) > MAX_IRI - PROF_MAX_NAME ||
            !uri_is_absolute(it->valuestring, MAX_IRI))
            return bad(e, "iris: '@vocab' is not an absolute IRI");
        return dup_to(vocab, it->valuestring, e);
    }
    if ((iri = x->fn(x->ud, VOCAB_PROBE)) == NULL)
        return nomem(e);
    len = strlen(iri);
    if (len > plen && strcmp(iri + len - plen, VOCAB_PROBE) == 0 &&
        len - plen <= MAX_IRI - PROF_MAX_NAME && uri_is_absolute(iri, MAX_IRI)) {
        iri[len - plen] = '\0';
        *vocab = iri;
        return 0;
    }
    free(iri);
    /* a context without a usable @vocab: the NGSI-LD default vocabulary */
    return dup_to(vocab, LD_DEFAULT_VOCAB, e);
}

/* ---- profile ------------------------------------------------------------ */

const char *prof_codec_name(enum prof_codec c)
{
    switch (c) {
    case PROF_CAYENNE_LPP: return "cayenne-lpp";
    case PROF_NETWORK_DECODED: return "network-decoded";
    case PROF_RAW: return "raw";
    }
    return "?";
}

static const char *attr_type_name(enum prof__attr_type t)
{
    switch (t) {
    case PROF__PROPERTY: return "Property";
    case PROF__GEOPROPERTY: return "GeoProperty";
    case PROF__RELATIONSHIP: return "Relationship";
    }
    return "?";
}

void prof_free(struct prof *p)
{
    if (p == NULL)
        return;
    free(p->description);
    free(p->entity_type);
    free(p->entity_type_iri);
    free(p->pattern);
    for (size_t i = 0; i < p->n_fields; i++) {
        struct prof__field *f = &p->fields[i];

        free(f->from);
        for (int k = 0; k < f->n_path; k++)
            free(f->path[k]);
        free(f->attribute);
        free(f->iri);
    }
    free(p->fields);
    for (size_t i = 0; i < p->n_statics; i++) {
        free(p->statics[i].term);
        free(p->statics[i].iri);
        cJSON_Delete(p->statics[i].value);
    }
    free(p->statics);
    free(p->vocab);
    for (int i = 0; i < PT__COUNT; i++)
        free(p->term_iri[i]);
    free(p);
}

/* Parse an LPP "from": "<name>_<channel>" or "<name>". */
static int parse_lpp_from(const char *from, int *type, int *channel)
{
    const char *us = strrchr(from, '_');

    for (int pass = 0; pass < 2; pass++) {
        size_t name_len = strlen(from);

        *channel = -1;
        if (pass == 1) {
            /* <name>_<digits> with the channel 0..255 */
            const char *d;
            long ch = 0;

            if (us == NULL || us[1] == '\0' || strlen(us + 1) > 3)
                return -1;
            for (d = us + 1; *d; d++) {
                if (*d < '0' || *d > '9')
                    return -1;
                ch = ch * 10 + (*d - '0');
            }
            if (ch > 255)
                return -1;
            *channel = (int)ch;
            name_len = (size_t)(us - from);
        }
        for (int t = 0; t < 256; t++) {
            const char *n = lpp_type_name(t);

            if (n != NULL && strlen(n) == name_len && strncmp(n, from, name_len) == 0) {
                *type = t;
                return 0;
            }
        }
    }
    return -1;
}

/* Split a network-decoded "from" into its dotted path. */
static int parse_path(struct prof__field *f, const char *what, struct err *e)
{
    const char *s = f->from;

    for (;;) {
        const char *dot = strchr(s, '.');
        size_t len = dot != NULL ? (size_t)(dot - s) : strlen(s);

        if (len == 0)
            return bad(e, "%s.from '%.60s' has an empty path segment", what, f->from);
        if (f->n_path == PROF_MAX_PATH_DEPTH)
            return bad(e, "%s.from '%.60s' is deeper than %d levels", what, f->from,
                       PROF_MAX_PATH_DEPTH);
        if ((f->path[f->n_path] = strndup(s, len)) == NULL)
            return nomem(e);
        f->n_path++;
        if (dot == NULL)
            return 0;
        s = dot + 1;
    }
}

static int parse_number(const cJSON *obj, const char *key, const char *what, int *has,
                        double *out, struct err *e)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    *has = 0;
    if (it == NULL)
        return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return bad(e, "%s.%s must be a finite number", what, key);
    *has = 1;
    *out = it->valuedouble;
    return 0;
}

static int parse_field(struct prof *p, const cJSON *in, size_t i, const struct expander *x,
                       struct err *e)
{
    struct prof__field *f = &p->fields[i];
    const char *from, *attribute, *type, *unit;
    char what[32];
    int rc;

    snprintf(what, sizeof(what), "fields[%zu]", i);
    f->lpp_type = -1;
    f->lpp_channel = -1;
    if (!cJSON_IsObject(in))
        return bad(e, "%s must be an object", what);
    {
        char w[48];

        snprintf(w, sizeof(w), "%s", what);
        if ((rc = check_members(in, FIELD_MEMBERS, w, e)) != 0)
            return rc;
    }
    {
        char w_from[48], w_attr[48], w_type[48], w_unit[48];

        snprintf(w_from, sizeof(w_from), "%s.from", what);
        snprintf(w_attr, sizeof(w_attr), "%s.attribute", what);
        snprintf(w_type, sizeof(w_type), "%s.type", what);
        snprintf(w_unit, sizeof(w_unit), "%s.unitCode", what);
        if ((rc = req_string(in, "from", w_from, &from, e)) != 0 ||
            (rc = req_string(in, "attribute", w_attr, &attribute, e)) != 0 ||
            (rc = opt_string(in, "type", w_type, &type, e)) != 0 ||
            (rc = opt_string(in, "unitCode", w_unit, &unit, e)) != 0)
            return rc;
    }
    if (strlen(from) == 0 || strlen(from) > PROF_MAX_NAME || !text_ok(from, PROF_MAX_NAME))
        return bad(e, "%s.from must be a name of 1 to %d characters", what, PROF_MAX_NAME);
    if ((rc = dup_to(&f->from, from, e)) != 0)
        return rc;
    if (p->codec == PROF_CAYENNE_LPP) {
        if (parse_lpp_from(from, &f->lpp_type, &f->lpp_channel) != 0)
            return bad(e, "%s.from '%.60s' is not a Cayenne LPP name (<type>_<channel>, e.g. "
                          "temperature_1)", what, from);
    } else if ((rc = parse_path(f, what, e)) != 0) {
        return rc;
    }
    if (!prof__name_ok(attribute))
        return bad(e, "%s.attribute '%.60s' is not a valid attribute name", what, attribute);
    if ((rc = dup_to(&f->attribute, attribute, e)) != 0)
        return rc;
    snprintf(what + strlen(what), sizeof(what) - strlen(what), ".attribute");
    if ((rc = expand_term(x, attribute, what, &f->iri, e)) != 0)
        return rc;
    snprintf(what, sizeof(what), "fields[%zu]", i);

    if (type == NULL)
        f->type = f->lpp_type == LPP_GPS ? PROF__GEOPROPERTY : PROF__PROPERTY;
    else if (strcmp(type, "Property") == 0)
        f->type = PROF__PROPERTY;
    else if (strcmp(type, "GeoProperty") == 0)
        f->type = PROF__GEOPROPERTY;
    else if (strcmp(type, "Relationship") == 0)
        f->type = PROF__RELATIONSHIP;
    else
        return bad(e, "%s.type must be Property, GeoProperty or Relationship", what);
    if (p->codec == PROF_CAYENNE_LPP) {
        if (f->lpp_type == LPP_GPS && f->type != PROF__GEOPROPERTY)
            return bad(e, "%s: an LPP gps value is a GeoProperty", what);
        if (f->lpp_type != LPP_GPS && f->type != PROF__PROPERTY)
            return bad(e, "%s: an LPP %s value is a Property", what, lpp_type_name(f->lpp_type));
    }
    if (strcmp(f->iri, p->term_iri[PT_LOCATION]) == 0) {
        if (f->type != PROF__GEOPROPERTY)
            return bad(e, "%s: location must be a GeoProperty", what);
        p->maps_location = 1;
    }
    if (unit != NULL) {
        size_t len = strlen(unit);

        if (f->type != PROF__PROPERTY)
            return bad(e, "%s.unitCode applies to a Property only", what);
        if (len == 0 || len >= sizeof(f->unit_code))
            return bad(e, "%s.unitCode must be 1 to %zu characters", what,
                       sizeof(f->unit_code) - 1);
        for (size_t k = 0; k < len; k++) {
            char c = unit[k];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                return bad(e, "%s.unitCode must be a UN/CEFACT code (letters and digits)",
                           what);
        }
        memcpy(f->unit_code, unit, len + 1);
    }
    if ((rc = parse_number(in, "scale", what, &f->has_scale, &f->scale, e)) != 0 ||
        (rc = parse_number(in, "offset", what, &f->has_offset, &f->offset, e)) != 0)
        return rc;
    if (!f->has_scale)
        f->scale = 1.0;
    if (!f->has_offset)
        f->offset = 0.0;
    if ((f->has_scale || f->has_offset) && f->type != PROF__PROPERTY)
        return bad(e, "%s: scale and offset apply to a Property only", what);
    return 0;
}

/* Check the entityIdPattern's placeholders; the sample id must be a URI. */
static int check_pattern(const struct prof *p, struct err *e)
{
    const char *s = p->pattern;

    if (strlen(s) == 0 || strlen(s) > PROF_MAX_PATTERN)
        return bad(e, "entityIdPattern must be 1 to %d characters", PROF_MAX_PATTERN);
    while (*s) {
        if (*s == '{') {
            if (strncmp(s, "{devEui}", 8) == 0 || strncmp(s, "{DEVEUI}", 8) == 0)
                s += 8;
            else if (strncmp(s, "{name}", 6) == 0 || strncmp(s, "{type}", 6) == 0)
                s += 6;
            else
                return bad(e, "entityIdPattern: unknown placeholder at '%.20s' (use {devEui}, "
                              "{DEVEUI}, {name}, {type})", s);
        } else if (*s == '}') {
            return bad(e, "entityIdPattern: unbalanced '}'");
        } else {
            s++;
        }
    }
    return 0;
}

static int parse_statics(struct prof *p, const cJSON *obj, const struct expander *x,
                         struct err *e)
{
    const cJSON *it;
    int n = cJSON_GetArraySize(obj), rc;
    char what[PROF_MAX_NAME + 32];

    if (n > PROF_MAX_STATIC)
        return bad(e, "staticAttributes: more than %d members", PROF_MAX_STATIC);
    if (n == 0)
        return 0;
    if ((p->statics = calloc((size_t)n, sizeof(*p->statics))) == NULL)
        return nomem(e);
    cJSON_ArrayForEach(it, obj) {
        struct prof__static *s = &p->statics[p->n_statics];
        char *text;
        size_t len;

        if (it->string == NULL || !prof__name_ok(it->string))
            return bad(e, "staticAttributes: '%.60s' is not a valid attribute name",
                       it->string != NULL ? it->string : "");
        if (cJSON_IsNull(it) || cJSON_IsInvalid(it))
            return bad(e, "staticAttributes.%.60s must not be null", it->string);
        if ((text = cJSON_PrintUnformatted(it)) == NULL)
            return nomem(e);
        len = strlen(text);
        free(text);
        if (len > PROF_MAX_STATIC_JSON)
            return bad(e, "staticAttributes.%.60s is larger than %d bytes", it->string,
                       PROF_MAX_STATIC_JSON);
        if (has_dup_key(it))
            return bad(e, "staticAttributes.%.60s has an object with a member twice",
                       it->string);
        for (const cJSON *o = obj->child; o != it; o = o->next)
            if (strcmp(o->string, it->string) == 0)
                return bad(e, "staticAttributes.%.60s appears twice", it->string);
        p->n_statics++;
        if ((rc = dup_to(&s->term, it->string, e)) != 0)
            return rc;
        snprintf(what, sizeof(what), "staticAttributes.%s", it->string);
        if ((rc = expand_term(x, it->string, what, &s->iri, e)) != 0)
            return rc;
        if ((s->value = cJSON_Duplicate(it, 1)) == NULL)
            return nomem(e);
    }
    return 0;
}

/* No two attributes of the main entity share an IRI, and none takes one the
 * mapping writes itself. */
static int check_collisions(const struct prof *p, struct err *e)
{
    const char *ref = p->term_iri[PT_REF_DEVICE];

    for (size_t i = 0; i < p->n_fields; i++) {
        const char *iri = p->fields[i].iri;

        for (size_t j = 0; j < i; j++)
            if (strcmp(iri, p->fields[j].iri) == 0)
                return bad(e, "fields[%zu].attribute '%.60s' is already used by fields[%zu]", i,
                           p->fields[i].attribute, j);
        if (p->device_entity && strcmp(iri, ref) == 0)
            return bad(e, "fields[%zu].attribute: refDevice is set by the Device companion", i);
    }
    for (size_t i = 0; i < p->n_statics; i++) {
        const char *iri = p->statics[i].iri;

        for (size_t j = 0; j < p->n_fields; j++)
            if (strcmp(iri, p->fields[j].iri) == 0)
                return bad(e, "staticAttributes.%.60s is already mapped by fields[%zu]",
                           p->statics[i].term, j);
        for (size_t j = 0; j < i; j++)
            if (strcmp(iri, p->statics[j].iri) == 0)
                return bad(e, "staticAttributes.%.60s has the same IRI as %.60s",
                           p->statics[i].term, p->statics[j].term);
        if (strcmp(iri, p->term_iri[PT_LOCATION]) == 0)
            return bad(e, "staticAttributes.%.60s: location comes from the device or a field",
                       p->statics[i].term);
        if (p->device_entity && strcmp(iri, ref) == 0)
            return bad(e, "staticAttributes.%.60s: refDevice is set by the Device companion",
                       p->statics[i].term);
        if (p->codec == PROF_RAW && (strcmp(iri, p->term_iri[PT_PAYLOAD]) == 0 ||
                                     strcmp(iri, p->term_iri[PT_FPORT]) == 0))
            return bad(e, "staticAttributes.%.60s is written by the raw codec",
                       p->statics[i].term);
    }
    return 0;
}

int prof_parse(const cJSON *json, prof_expand_fn expand, void *ud, struct prof **out,
               struct err *e)
{
    struct prof *p = NULL;
    struct expander x = {expand, ud, NULL};
    const char *s;
    const cJSON *it;
    int rc;

    *out = NULL;
    if (!cJSON_IsObject(json))
        return bad(e, "a device profile must be a JSON object");
    if ((rc = check_members(json, PROFILE_MEMBERS, "device profile", e)) != 0)
        return rc;
    x.iris = cJSON_GetObjectItemCaseSensitive(json, "iris");
    if (x.iris != NULL && !cJSON_IsObject(x.iris))
        return bad(e, "iris must be an object");
    if (expand == NULL && x.iris == NULL)
        return bad(e, "iris is required to load a profile without a @context");
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return nomem(e);
    p->device_entity = 1;

    if ((rc = req_string(json, "id", "id", &s, e)) != 0)
        goto fail;
    if (!id_ok(s)) {
        rc = bad(e, "id must be 1 to %d characters among A-Z a-z 0-9 . _ -", PROF_MAX_ID);
        goto fail;
    }
    memcpy(p->id, s, strlen(s) + 1);
    if ((rc = opt_string(json, "description", "description", &s, e)) != 0)
        goto fail;
    if (s != NULL) {
        if (strlen(s) > PROF_MAX_DESCRIPTION) {
            rc = bad(e, "description is longer than %d bytes", PROF_MAX_DESCRIPTION);
            goto fail;
        }
        if ((rc = dup_to(&p->description, s, e)) != 0)
            goto fail;
    }
    if ((rc = req_string(json, "codec", "codec", &s, e)) != 0)
        goto fail;
    if (strcmp(s, "cayenne-lpp") == 0)
        p->codec = PROF_CAYENNE_LPP;
    else if (strcmp(s, "network-decoded") == 0)
        p->codec = PROF_NETWORK_DECODED;
    else if (strcmp(s, "raw") == 0)
        p->codec = PROF_RAW;
    else {
        rc = bad(e, "codec must be cayenne-lpp, network-decoded or raw");
        goto fail;
    }
    if ((rc = req_string(json, "entityType", "entityType", &s, e)) != 0)
        goto fail;
    if (!prof__name_ok(s)) {
        rc = bad(e, "entityType '%.60s' is not a valid type name", s);
        goto fail;
    }
    if ((rc = dup_to(&p->entity_type, s, e)) != 0 ||
        (rc = expand_term(&x, s, "entityType", &p->entity_type_iri, e)) != 0)
        goto fail;
    for (int t = 0; t < PT__COUNT; t++)
        if ((rc = expand_term(&x, prof__terms[t], "Device companion term", &p->term_iri[t],
                              e)) != 0)
            goto fail;
    if ((rc = find_vocab(&x, &p->vocab, e)) != 0)
        goto fail;

    if ((rc = opt_string(json, "entityIdPattern", "entityIdPattern", &s, e)) != 0 ||
        (rc = dup_to(&p->pattern, s != NULL ? s : DEFAULT_PATTERN, e)) != 0 ||
        (rc = check_pattern(p, e)) != 0)
        goto fail;

    it = cJSON_GetObjectItemCaseSensitive(json, "fields");
    if (it != NULL) {
        int n = cJSON_GetArraySize(it);
        const cJSON *f;

        if (!cJSON_IsArray(it)) {
            rc = bad(e, "fields must be an array");
            goto fail;
        }
        if (n > PROF_MAX_FIELDS) {
            rc = bad(e, "fields: more than %d entries", PROF_MAX_FIELDS);
            goto fail;
        }
        if (n > 0 && p->codec == PROF_RAW) {
            rc = bad(e, "fields: the raw codec maps no fields");
            goto fail;
        }
        if (n > 0 && (p->fields = calloc((size_t)n, sizeof(*p->fields))) == NULL) {
            rc = nomem(e);
            goto fail;
        }
        cJSON_ArrayForEach(f, it) {
            p->n_fields++;
            if ((rc = parse_field(p, f, p->n_fields - 1, &x, e)) != 0)
                goto fail;
        }
    }
    if ((rc = opt_string(json, "unmapped", "unmapped", &s, e)) != 0)
        goto fail;
    if (s == NULL || strcmp(s, "ignore") == 0)
        p->keep_unmapped = 0;
    else if (strcmp(s, "keep") == 0)
        p->keep_unmapped = 1;
    else {
        rc = bad(e, "unmapped must be ignore or keep");
        goto fail;
    }
    it = cJSON_GetObjectItemCaseSensitive(json, "staticAttributes");
    if (it != NULL) {
        if (!cJSON_IsObject(it)) {
            rc = bad(e, "staticAttributes must be an object");
            goto fail;
        }
        if ((rc = parse_statics(p, it, &x, e)) != 0)
            goto fail;
    }
    it = cJSON_GetObjectItemCaseSensitive(json, "deviceEntity");
    if (it != NULL) {
        if (!cJSON_IsBool(it)) {
            rc = bad(e, "deviceEntity must be true or false");
            goto fail;
        }
        p->device_entity = cJSON_IsTrue(it);
    }
    if ((rc = check_collisions(p, e)) != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    prof_free(p);
    return rc;
}

static int add_iri(cJSON *iris, const char *term, const char *iri)
{
    if (cJSON_GetObjectItemCaseSensitive(iris, term) != NULL)
        return 0; /* same expander, same IRI */
    return cJSON_AddStringToObject(iris, term, iri) != NULL ? 0 : ERR_NOMEM;
}

int prof_to_json(const struct prof *p, cJSON **out)
{
    cJSON *o = cJSON_CreateObject(), *fields, *statics, *iris;

    *out = NULL;
    if (o == NULL || !cJSON_AddStringToObject(o, "id", p->id) ||
        (p->description != NULL && !cJSON_AddStringToObject(o, "description", p->description)) ||
        !cJSON_AddStringToObject(o, "codec", prof_codec_name(p->codec)) ||
        !cJSON_AddStringToObject(o, "entityType", p->entity_type) ||
        !cJSON_AddStringToObject(o, "entityIdPattern", p->pattern) ||
        (fields = cJSON_AddArrayToObject(o, "fields")) == NULL ||
        !cJSON_AddStringToObject(o, "unmapped", p->keep_unmapped ? "keep" : "ignore") ||
        (statics = cJSON_AddObjectToObject(o, "staticAttributes")) == NULL ||
        !cJSON_AddBoolToObject(o, "deviceEntity", p->device_entity) ||
        (iris = cJSON_AddObjectToObject(o, "iris")) == NULL)
        goto fail;
    if (add_iri(iris, p->entity_type, p->entity_type_iri) != 0)
        goto fail;
    for (size_t i = 0; i < p->n_fields; i++) {
        const struct prof__field *f = &p->fields[i];
        cJSON *fo = cJSON_CreateObject();

        if (fo == NULL)
            goto fail;
        if (!cJSON_AddItemToArray(fields, fo)) {
            cJSON_Delete(fo);
            goto fail;
        }
        if (!cJSON_AddStringToObject(fo, "from", f->from) ||
            !cJSON_AddStringToObject(fo, "attribute", f->attribute) ||
            !cJSON_AddStringToObject(fo, "type", attr_type_name(f->type)) ||
            (f->unit_code[0] && !cJSON_AddStringToObject(fo, "unitCode", f->unit_code)) ||
            (f->has_scale && !cJSON_AddNumberToObject(fo, "scale", f->scale)) ||
            (f->has_offset && !cJSON_AddNumberToObject(fo, "offset", f->offset)) ||
            add_iri(iris, f->attribute, f->iri) != 0)
            goto fail;
    }
    for (size_t i = 0; i < p->n_statics; i++) {
        cJSON *v = cJSON_Duplicate(p->statics[i].value, 1);

        if (v == NULL || !cJSON_AddItemToObject(statics, p->statics[i].term, v)) {
            cJSON_Delete(v);
            goto fail;
        }
        if (add_iri(iris, p->statics[i].term, p->statics[i].iri) != 0)
            goto fail;
    }
    for (int t = 0; t < PT__COUNT; t++)
        if (add_iri(iris, prof__terms[t], p->term_iri[t]) != 0)
            goto fail;
    if (!cJSON_AddStringToObject(iris, "@vocab", p->vocab))
        goto fail;
    *out = o;
    return 0;
fail:
    cJSON_Delete(o);
    return ERR_NOMEM;
}

const char *prof_id(const struct prof *p)
{
    return p->id;
}

enum prof_codec prof_codec_of(const struct prof *p)
{
    return p->codec;
}

const char *prof_entity_type(const struct prof *p)
{
    return p->entity_type;
}

const char *prof_entity_type_iri(const struct prof *p)
{
    return p->entity_type_iri;
}

int prof_device_entity(const struct prof *p)
{
    return p->device_entity;
}

/* ---- entity ids ---------------------------------------------------------- */

static int put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n >= cap)
        return -1;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

static int put_encoded(char *out, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char enc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '~' || c == '-') {
            if (put(out, cap, len, s, 1) != 0)
                return -1;
        } else if (put(out, cap, len, enc, 3) != 0) {
            return -1;
        }
    }
    return 0;
}

int prof_entity_id(const struct prof *p, const struct prof_device *d, char *out, size_t cap,
                   struct err *e)
{
    size_t len = 0;
    const char *s;

    if (cap == 0)
        return err_set(e, ERR_BAD_DATA, "no room for an entity id");
    out[0] = '\0';
    if (d->entity_id != NULL) {
        if (put(out, cap, &len, d->entity_id, strlen(d->entity_id)) != 0)
            return err_set(e, ERR_BAD_DATA, "entity id of device %s is too long", d->dev_eui);
        return 0;
    }
    for (s = p->pattern; *s;) {
        int rc = 0;

        if (strncmp(s, "{devEui}", 8) == 0) {
            rc = put(out, cap, &len, d->dev_eui, strlen(d->dev_eui));
            s += 8;
        } else if (strncmp(s, "{DEVEUI}", 8) == 0) {
            char up[17];
            size_t n = strlen(d->dev_eui);

            for (size_t i = 0; i <= n && i < sizeof(up); i++)
                up[i] = (char)(d->dev_eui[i] >= 'a' && d->dev_eui[i] <= 'f'
                                   ? d->dev_eui[i] - 'a' + 'A' : d->dev_eui[i]);
            up[sizeof(up) - 1] = '\0';
            rc = put(out, cap, &len, up, strlen(up));
            s += 8;
        } else if (strncmp(s, "{name}", 6) == 0) {
            rc = put_encoded(out, cap, &len, d->name != NULL ? d->name : d->dev_eui);
            s += 6;
        } else if (strncmp(s, "{type}", 6) == 0) {
            rc = put(out, cap, &len, p->entity_type, strlen(p->entity_type));
            s += 6;
        } else {
            rc = put(out, cap, &len, s, 1);
            s++;
        }
        if (rc != 0)
            return err_set(e, ERR_BAD_DATA, "entity id of device %s is longer than %zu bytes",
                           d->dev_eui, cap - 1);
    }
    if (!uri_is_absolute(out, PROF_MAX_ENTITY_ID))
        return err_set(e, ERR_BAD_DATA, "entity id '%.80s' of device %s is not an absolute URI",
                       out, d->dev_eui);
    return 0;
}

/* ---- devices ------------------------------------------------------------- */

void prof_device_free(struct prof_device *d)
{
    if (d == NULL)
        return;
    free(d->entity_id);
    free(d->name);
    free(d->description);
    cJSON_Delete(d->tags);
    free(d);
}

static int parse_location(struct prof_device *d, const cJSON *loc, struct err *e)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(loc, "type");
    const cJSON *coords = cJSON_GetObjectItemCaseSensitive(loc, "coordinates"), *c;
    static const char *const allowed[] = {"type", "coordinates", NULL};
    int n = 0;

    if (!cJSON_IsObject(loc) || check_members(loc, allowed, "location", NULL) != 0 ||
        !cJSON_IsString(type) ||
        strcmp(type->valuestring, "Point") != 0)
        return bad(e, "location must be a GeoJSON Point {\"type\": \"Point\", "
                      "\"coordinates\": [lon, lat]}");
    if (!cJSON_IsArray(coords) || cJSON_GetArraySize(coords) < 2 ||
        cJSON_GetArraySize(coords) > 3)
        return bad(e, "location.coordinates must be [lon, lat] or [lon, lat, alt]");
    cJSON_ArrayForEach(c, coords) {
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
            return bad(e, "location.coordinates must be numbers");
        d->coords[n++] = c->valuedouble;
    }
    if (d->coords[0] < -180.0 || d->coords[0] > 180.0)
        return bad(e, "location: longitude %g is outside [-180, 180]", d->coords[0]);
    if (d->coords[1] < -90.0 || d->coords[1] > 90.0)
        return bad(e, "location: latitude %g is outside [-90, 90]", d->coords[1]);
    d->n_coords = n;
    d->has_location = 1;
    return 0;
}

static int parse_tags(struct prof_device *d, const cJSON *tags, struct err *e)
{
    const cJSON *it;

    if (!cJSON_IsObject(tags))
        return bad(e, "tags must be an object of strings");
    if (cJSON_GetArraySize(tags) > PROF_MAX_TAGS)
        return bad(e, "tags: more than %d members", PROF_MAX_TAGS);
    cJSON_ArrayForEach(it, tags) {
        if (it->string == NULL || it->string[0] == '\0' || !text_ok(it->string, 64))
            return bad(e, "tags: a name must be 1 to 64 characters");
        if (!cJSON_IsString(it) || !text_ok(it->valuestring, 128))
            return bad(e, "tags.%.60s must be a string of at most 128 characters", it->string);
        for (const cJSON *o = tags->child; o != it; o = o->next)
            if (strcmp(o->string, it->string) == 0)
                return bad(e, "tags.%.60s appears twice", it->string);
    }
    if ((d->tags = cJSON_Duplicate(tags, 1)) == NULL)
        return nomem(e);
    return 0;
}

int prof_device_parse(const cJSON *json, struct prof_device **out, struct err *e)
{
    struct prof_device *d = NULL;
    const char *s;
    const cJSON *it;
    int rc;

    *out = NULL;
    if (!cJSON_IsObject(json))
        return bad(e, "a device must be a JSON object");
    if ((rc = check_members(json, DEVICE_MEMBERS, "device", e)) != 0)
        return rc;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return nomem(e);
    if ((rc = req_string(json, "devEui", "devEui", &s, e)) != 0)
        goto fail;
    if (strlen(s) != 16) {
        rc = bad(e, "devEui must be 16 hex digits");
        goto fail;
    }
    for (int i = 0; i < 16; i++) {
        int v = uri_hexval((unsigned char)s[i]);

        if (v < 0) {
            rc = bad(e, "devEui must be 16 hex digits");
            goto fail;
        }
        d->dev_eui[i] = "0123456789abcdef"[v];
    }
    if ((rc = req_string(json, "profile", "profile", &s, e)) != 0)
        goto fail;
    if (!id_ok(s)) {
        rc = bad(e, "profile must be a profile id (1 to %d characters among A-Z a-z 0-9 . _ -)",
                 PROF_MAX_ID);
        goto fail;
    }
    memcpy(d->profile, s, strlen(s) + 1);
    if ((rc = opt_string(json, "owner", "owner", &s, e)) != 0)
        goto fail;
    if (s != NULL) {
        if (!id_ok(s)) {
            rc = bad(e, "owner must be 1 to %d characters among A-Z a-z 0-9 . _ -", PROF_MAX_ID);
            goto fail;
        }
        memcpy(d->owner, s, strlen(s) + 1);
    }
    if ((rc = opt_string(json, "entityId", "entityId", &s, e)) != 0)
        goto fail;
    if (s != NULL) {
        if (!uri_is_absolute(s, PROF_MAX_ENTITY_ID)) {
            rc = bad(e, "entityId must be an absolute URI of at most %d characters",
                     PROF_MAX_ENTITY_ID);
            goto fail;
        }
        if ((rc = dup_to(&d->entity_id, s, e)) != 0)
            goto fail;
    }
    if ((rc = opt_string(json, "name", "name", &s, e)) != 0)
        goto fail;
    if (s != NULL) {
        if (s[0] == '\0' || !text_ok(s, PROF_MAX_NAME)) {
            rc = bad(e, "name must be 1 to %d characters, no control characters", PROF_MAX_NAME);
            goto fail;
        }
        if ((rc = dup_to(&d->name, s, e)) != 0)
            goto fail;
    }
    if ((rc = opt_string(json, "description", "description", &s, e)) != 0)
        goto fail;
    if (s != NULL) {
        if (strlen(s) > PROF_MAX_DESCRIPTION) {
            rc = bad(e, "description is longer than %d bytes", PROF_MAX_DESCRIPTION);
            goto fail;
        }
        if ((rc = dup_to(&d->description, s, e)) != 0)
            goto fail;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "location")) != NULL &&
        (rc = parse_location(d, it, e)) != 0)
        goto fail;
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "tags")) != NULL &&
        (rc = parse_tags(d, it, e)) != 0)
        goto fail;
    *out = d;
    return 0;
fail:
    prof_device_free(d);
    return rc;
}

int prof_device_to_json(const struct prof_device *d, cJSON **out)
{
    cJSON *o = cJSON_CreateObject(), *loc, *coords, *tags;

    *out = NULL;
    if (o == NULL || !cJSON_AddStringToObject(o, "devEui", d->dev_eui) ||
        !cJSON_AddStringToObject(o, "profile", d->profile) ||
        (d->entity_id != NULL && !cJSON_AddStringToObject(o, "entityId", d->entity_id)) ||
        (d->name != NULL && !cJSON_AddStringToObject(o, "name", d->name)) ||
        (d->owner[0] && !cJSON_AddStringToObject(o, "owner", d->owner)) ||
        (d->description != NULL && !cJSON_AddStringToObject(o, "description", d->description)))
        goto fail;
    if (d->has_location) {
        if ((loc = cJSON_AddObjectToObject(o, "location")) == NULL ||
            !cJSON_AddStringToObject(loc, "type", "Point") ||
            (coords = cJSON_CreateDoubleArray(d->coords, d->n_coords)) == NULL)
            goto fail;
        if (!cJSON_AddItemToObject(loc, "coordinates", coords)) {
            cJSON_Delete(coords);
            goto fail;
        }
    }
    if (d->tags != NULL) {
        if ((tags = cJSON_Duplicate(d->tags, 1)) == NULL)
            goto fail;
        if (!cJSON_AddItemToObject(o, "tags", tags)) {
            cJSON_Delete(tags);
            goto fail;
        }
    }
    *out = o;
    return 0;
fail:
    cJSON_Delete(o);
    return ERR_NOMEM;
}

/* ---- CSV ------------------------------------------------------------------ */

enum csv_col { COL_DEVEUI, COL_PROFILE, COL_ENTITYID, COL_NAME, COL_OWNER, COL_LAT, COL_LON,
               COL_DESCRIPTION, N_COLS };
static const char *const COL_NAMES[N_COLS] = {
    "devEui", "profile", "entityId", "name", "owner", "lat", "lon", "description",
};

struct csv {
    const char *text;
    size_t len, pos;
    int line;                            /* physical line at pos (1-based) */
    char cells[N_COLS][PROF_MAX_CSV_CELL + 1];
    size_t n_cells;                      /* cells in the record (may exceed N_COLS) */
};

static int at_eol(const struct csv *c)
{
    return c->pos >= c->len || c->text[c->pos] == '\n' ||
           (c->text[c->pos] == '\r' && c->pos + 1 < c->len && c->text[c->pos + 1] == '\n');
}

static void skip_eol(struct csv *c)
{
    if (c->pos < c->len && c->text[c->pos] == '\r')
        c->pos++;
    if (c->pos < c->len && c->text[c->pos] == '\n') {
        c->pos++;
        c->line++;
    }
}

/* Append byte ch to cell k (cells past N_COLS are counted, not kept). */
static int cell_put(struct csv *c, size_t k, size_t *len, char ch, int start_line,
                    struct err *e)
{
    if (*len >= PROF_MAX_CSV_CELL)
        return bad(e, "line %d: a cell is longer than %d bytes", start_line, PROF_MAX_CSV_CELL);
    if (k < N_COLS)
        c->cells[k][*len] = ch;
    (*len)++;
    return 0;
}

static void trim(char *s)
{
    size_t len = strlen(s), start = 0;

    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    while (s[start] == ' ' || s[start] == '\t')
        start++;
    memmove(s, s + start, len - start + 1);
}

/* Read one record at c->pos. *blank is set for an empty line. */
static int csv_record(struct csv *c, int *start_line, int *blank, struct err *e)
{
    *start_line = c->line;
    *blank = 0;
    c->n_cells = 0;
    for (;;) {
        size_t k = c->n_cells, len = 0;
        int quoted = 0, rc;

        if (c->pos < c->len && c->text[c->pos] == '"') {
            quoted = 1;
            c->pos++;
            for (;;) {
                char ch;

                if (c->pos >= c->len)
                    return bad(e, "line %d: a quoted cell is not closed", *start_line);
                ch = c->text[c->pos++];
                if (ch == '"') {
                    if (c->pos < c->len && c->text[c->pos] == '"')
                        c->pos++;
                    else
                        break;
                } else if (ch == '\n') {
                    c->line++;
                } else if (ch == '\0') {
                    return bad(e, "line %d: NUL byte", c->line);
                }
                if ((rc = cell_put(c, k, &len, ch, *start_line, e)) != 0)
                    return rc;
            }
            if (!at_eol(c) && c->text[c->pos] != ',')
                return bad(e, "line %d: text after a closing quote", c->line);
        } else {
            while (!at_eol(c) && c->text[c->pos] != ',') {
                char ch = c->text[c->pos++];

                if (ch == '"')
                    return bad(e, "line %d: a quote inside an unquoted cell", c->line);
                if (ch == '\0')
                    return bad(e, "line %d: NUL byte", c->line);
                if (ch == '\r')
                    return bad(e, "line %d: a carriage return not followed by a line feed",
                               c->line);
                if ((rc = cell_put(c, k, &len, ch, *start_line, e)) != 0)
                    return rc;
            }
        }
        if (k < N_COLS) {
            c->cells[k][len] = '\0';
            if (!quoted)
                trim(c->cells[k]);
        }
        c->n_cells++;
        if (c->pos < c->len && c->text[c->pos] == ',') {
            c->pos++;
            continue;
        }
        *blank = c->n_cells == 1 && !quoted && len == 0;
        skip_eol(c);
        return 0;
    }
}

/* Strict decimal number (the whole cell). */
static int parse_coord(const char *s, double *out)
{
    char *end;

    if (s[0] == '\0')
        return -1;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out) ? 0 : -1;
}

static int csv_row(const struct csv *c, const int col_of[N_COLS], int line, cJSON **obj,
                   struct err *e)
{
    cJSON *o = cJSON_CreateObject();
    struct prof_device *d = NULL;
    struct err sub = {0};
    int rc;
    const char *lat = NULL, *lon = NULL;

    *obj = NULL;
    if (o == NULL)
        return nomem(e);
    for (int col = 0; col < N_COLS; col++) {
        const char *v;

        if (col_of[col] < 0)
            continue;
        v = c->cells[col_of[col]];
        if (v[0] == '\0')
            continue;
        if (col == COL_LAT)
            lat = v;
        else if (col == COL_LON)
            lon = v;
        else if (!cJSON_AddStringToObject(o, COL_NAMES[col], v)) {
            rc = nomem(e);
            goto fail;
        }
    }
    if ((lat == NULL) != (lon == NULL)) {
        rc = bad(e, "line %d: lat and lon must be given together", line);
        goto fail;
    }
    if (lat != NULL) {
        double coords[2];
        cJSON *loc, *arr;

        if (parse_coord(lon, &coords[0]) != 0 || parse_coord(lat, &coords[1]) != 0) {
            rc = bad(e, "line %d: lat and lon must be decimal numbers", line);
            goto fail;
        }
        if ((loc = cJSON_AddObjectToObject(o, "location")) == NULL ||
            !cJSON_AddStringToObject(loc, "type", "Point") ||
            (arr = cJSON_CreateDoubleArray(coords, 2)) == NULL) {
            rc = nomem(e);
            goto fail;
        }
        if (!cJSON_AddItemToObject(loc, "coordinates", arr)) {
            cJSON_Delete(arr);
            rc = nomem(e);
            goto fail;
        }
    }
    if ((rc = prof_device_parse(o, &d, &sub)) != 0) {
        rc = err_set(e, rc, "line %d: %s", line, sub.detail);
        goto fail;
    }
    /* the normalized form (lowercase devEui) */
    cJSON_Delete(o);
    o = NULL;
    if ((rc = prof_device_to_json(d, &o)) != 0) {
        rc = nomem(e);
        goto fail;
    }
    prof_device_free(d);
    *obj = o;
    return 0;
fail:
    prof_device_free(d);
    cJSON_Delete(o);
    return rc;
}

int prof_devices_csv(const char *text, size_t len, cJSON **array, struct err *e)
{
    struct csv *c = NULL;
    struct hmap *seen = NULL;
    cJSON *arr = NULL;
    int col_of[N_COLS], have_header = 0, rc = 0, n_rows = 0;

    *array = NULL;
    for (int i = 0; i < N_COLS; i++)
        col_of[i] = -1;
    if ((c = calloc(1, sizeof(*c))) == NULL || (arr = cJSON_CreateArray()) == NULL ||
        (seen = hmap_new(64)) == NULL) {
        rc = nomem(e);
        goto out;
    }
    c->text = text;
    c->len = text != NULL ? len : 0;
    c->line = 1;
    if (c->len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3;
    while (c->pos < c->len) {
        int line, blank;
        cJSON *obj;

        if ((rc = csv_record(c, &line, &blank, e)) != 0)
            goto out;
        if (blank)
            continue;
        if (!have_header) {
            if (c->n_cells > N_COLS) {
                rc = bad(e, "line %d: more than %d columns", line, N_COLS);
                goto out;
            }
            for (size_t k = 0; k < c->n_cells; k++) {
                int col = -1;

                for (int j = 0; j < N_COLS; j++)
                    if (strcasecmp(c->cells[k], COL_NAMES[j]) == 0)
                        col = j;
                if (col < 0) {
                    rc = bad(e, "line %d: unknown column '%.40s' (columns: devEui, profile, "
                                "entityId, name, owner, lat, lon, description)", line,
                             c->cells[k]);
                    goto out;
                }
                if (col_of[col] >= 0) {
                    rc = bad(e, "line %d: column %s appears twice", line, COL_NAMES[col]);
                    goto out;
                }
                col_of[col] = (int)k;
            }
            if (col_of[COL_DEVEUI] < 0 || col_of[COL_PROFILE] < 0) {
                rc = bad(e, "line %d: the header must name the devEui and profile columns",
                         line);
                goto out;
            }
            have_header = 1;
            continue;
        }
        {
            size_t n_header = 0;
            const cJSON *eui;
            void *prev;

            for (int j = 0; j < N_COLS; j++)
                n_header += col_of[j] >= 0;
            if (c->n_cells != n_header) {
                rc = bad(e, "line %d: %zu cells where the header has %zu", line, c->n_cells,
                         n_header);
                goto out;
            }
            if (++n_rows > PROF_MAX_CSV_ROWS) {
                rc = err_set(e, ERR_TOO_LARGE, "line %d: more than %d devices in one CSV", line,
                             PROF_MAX_CSV_ROWS);
                goto out;
            }
            if ((rc = csv_row(c, col_of, line, &obj, e)) != 0)
                goto out;
            cJSON_AddItemToArray(arr, obj);
            eui = cJSON_GetObjectItemCaseSensitive(obj, "devEui");
            if ((prev = hmap_get(seen, eui->valuestring)) != NULL) {
                rc = bad(e, "line %d: devEui %s is already on line %d", line, eui->valuestring,
                         (int)(intptr_t)prev);
                goto out;
            }
            if ((rc = hmap_put(seen, eui->valuestring, (void *)(intptr_t)line, NULL)) < 0) {
                rc = nomem(e);
                goto out;
            }
        }
    }
    if (!have_header) {
        rc = bad(e, "line 1: no header row");
        goto out;
    }
    *array = arr;
    arr = NULL;
out:
    cJSON_Delete(arr);
    hmap_free(seen, NULL);
    free(c);
    return rc;
}
