/*
 * map.c - one uplink -> entity fragments (prof_map, see profile.h).
 *
 * The fragments are in the storage form of docs/DESIGN.md "The entity
 * document" (expanded names, attrs {IRI: [instance]}) without
 * createdAt/modifiedAt: the runtime hands them to the store as an
 * upsert-update, so attributes not in the fragment are left alone.
 *
 *   decoded value                      instance written
 *   LPP scalar                         Property, value * scale + offset, unitCode of the field
 *   LPP accelerometer / gyrometer      Property {"x", "y", "z"} (each scaled)
 *   LPP colour                         Property {"r", "g", "b"} (each scaled)
 *   LPP gps                            GeoProperty Point [lon, lat] (+ alt when non-zero)
 *   decoded member, Property           the JSON value; with scale/offset a number only
 *   decoded member, GeoProperty        a valid GeoJSON geometry only
 *   decoded member, Relationship       "object": an absolute URI string only
 *   kept unmapped LPP value            as above under <@vocab><name>_<channel>, the
 *                                      LPP type's unit as unitCode
 *   kept unmapped decoded member       Property under <@vocab><member name>
 *   raw payload                        Property payload (lowercase hex), Property fPort
 *
 * Measured instances carry observedAt; static attributes, the device's
 * location, refDevice and the Device's identity (serialNumber,
 * supportedProtocol, controlledAsset, name, location) do not, so they do
 * not add history rows on every uplink.
 *
 * A scale whose inverse is an integer (0.01, 0.1, 0.5) divides by that
 * integer instead of multiplying, so 71.5 with scale 0.01 gives the double
 * nearest 0.715, as a person would expect.
 *
 * Pure: reads the (immutable) profile and device, allocates only the output
 * trees. Any thread.
 */
#include "ingest/profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/lpp.h"
#include "ingest/profile_int.h"
#include "query/geo.h"
#include "util/time.h"
#include "util/uri.h"

#define DEVICE_ID_PREFIX "urn:ngsi-ld:Device:"

struct mapper {
    const struct prof *p;
    const struct prof_device *d;
    const struct uplink *u;
    struct prof_out *out;
    struct err *e;
    char when[TM_ISO_LEN];
    char entity_id[PROF_MAX_ENTITY_ID + 1];
    cJSON *attrs;        /* main entity's attrs */
    const cJSON *gps;    /* GeoJSON written to location in this uplink, or NULL */
    int n_kept;          /* unmapped values kept */
    unsigned flags;      /* PROF_MAP_* */
    char first_bad[160]; /* detail of the first rejected field */
};

void prof_out_clear(struct prof_out *o)
{
    if (o == NULL)
        return;
    cJSON_Delete(o->entity);
    cJSON_Delete(o->device);
    memset(o, 0, sizeof(*o));
}

static int nomem(struct mapper *m)
{
    m->out->reason = "nomem";
    return err_set(m->e, ERR_NOMEM, "out of memory");
}

static void reject_field(struct mapper *m, const char *reason, const char *from, const char *what)
{
    m->out->n_rejected++;
    if (m->out->field_reason == NULL) {
        m->out->field_reason = reason;
        snprintf(m->first_bad, sizeof(m->first_bad), "field '%.60s': %s (%s)", from, what, reason);
    }
}

/* ---- instances --------------------------------------------------------- */

/* obj[key] = item, taking item (freed when the key copy cannot be made). */
static int attach(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return ERR_NOMEM;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return ERR_NOMEM;
    }
    return 0;
}

/* {"type": type} plus observedAt when measured. */
static cJSON *instance(struct mapper *m, const char *type, int measured)
{
    cJSON *inst = cJSON_CreateObject();

    if (inst == NULL || !cJSON_AddStringToObject(inst, "type", type) ||
        (measured && !cJSON_AddStringToObject(inst, "observedAt", m->when))) {
        cJSON_Delete(inst);
        return NULL;
    }
    return inst;
}

/* attrs[iri] = [inst]; takes inst. An attribute already present keeps its
 * instance (*added = 0). */
static int put_attr(cJSON *attrs, const char *iri, cJSON *inst, int *added)
{
    cJSON *arr;

    if (added != NULL)
        *added = 0;
    if (inst == NULL)
        return ERR_NOMEM;
    if (cJSON_GetObjectItemCaseSensitive(attrs, iri) != NULL) {
        cJSON_Delete(inst);
        return 0;
    }
    if ((arr = cJSON_AddArrayToObject(attrs, iri)) == NULL) {
        cJSON_Delete(inst);
        return ERR_NOMEM;
    }
    cJSON_AddItemToArray(arr, inst);
    if (added != NULL)
        *added = 1;
    return 0;
}

/* A Property; takes value. unit may be NULL or "". */
static cJSON *property(struct mapper *m, cJSON *value, const char *unit, int measured)
{
    cJSON *inst;

    if (value == NULL)
        return NULL;
    if ((inst = instance(m, "Property", measured)) == NULL) {
        cJSON_Delete(value);
        return NULL;
    }
    if (attach(inst, "value", value) != 0 ||
        (unit != NULL && unit[0] && !cJSON_AddStringToObject(inst, "unitCode", unit))) {
        cJSON_Delete(inst);
        return NULL;
    }
    return inst;
}

static cJSON *geoproperty(struct mapper *m, cJSON *geojson, int measured)
{
    cJSON *inst;

    if (geojson == NULL)
        return NULL;
    if ((inst = instance(m, "GeoProperty", measured)) == NULL) {
        cJSON_Delete(geojson);
        return NULL;
    }
    if (attach(inst, "value", geojson) != 0) {
        cJSON_Delete(inst);
        return NULL;
    }
    return inst;
}

static cJSON *relationship(struct mapper *m, const char *object, int measured)
{
    cJSON *inst = instance(m, "Relationship", measured);

    if (inst != NULL && !cJSON_AddStringToObject(inst, "object", object)) {
        cJSON_Delete(inst);
        return NULL;
    }
    return inst;
}

static cJSON *point(const double *coords, int n)
{
    cJSON *g = cJSON_CreateObject(), *c;

    if (g == NULL || !cJSON_AddStringToObject(g, "type", "Point") ||
        (c = cJSON_CreateDoubleArray(coords, n)) == NULL) {
        cJSON_Delete(g);
        return NULL;
    }
    if (attach(g, "coordinates", c) != 0) {
        cJSON_Delete(g);
        return NULL;
    }
    return g;
}

/* {"@type": "DateTime", "@value": when}, as the entity model stores a typed
 * literal. */
static cJSON *datetime(const char *when)
{
    cJSON *v = cJSON_CreateObject();

    if (v == NULL || !cJSON_AddStringToObject(v, "@type", "DateTime") ||
        !cJSON_AddStringToObject(v, "@value", when)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* ---- values ------------------------------------------------------------- */

static double apply_scale(const struct prof__field *f, double v)
{
    if (f->has_scale) {
        double s = f->scale;

        if (s != 0.0 && fabs(s) < 1.0) {
            double inv = 1.0 / s, r = round(inv);

            if (fabs(inv - r) <= 1e-9 * fabs(r))
                v = v / r;
            else
                v = v * s;
        } else {
            v = v * s;
        }
    }
    if (f->has_offset)
        v = v + f->offset;
    return v;
}

/* GeoJSON Point of an LPP gps value, NULL with *bad set when out of range. */
static cJSON *lpp_point(const struct lpp_value *v, int *bad)
{
    double c[3] = {v->v[1], v->v[0], v->v[2]}; /* lon, lat, alt */

    *bad = 0;
    if (c[0] < -180.0 || c[0] > 180.0 || c[1] < -90.0 || c[1] > 90.0) {
        *bad = 1;
        return NULL;
    }
    return point(c, c[2] != 0.0 ? 3 : 2);
}

/* The JSON value of a (non-gps) LPP reading, scaled by f when given. NULL
 * with *bad set when a scaled value is not finite. */
static cJSON *lpp_json(const struct lpp_value *v, const struct prof__field *f, int *bad)
{
    static const char *const xyz[3] = {"x", "y", "z"}, *const rgb[3] = {"r", "g", "b"};
    double c[3];
    cJSON *o;

    *bad = 0;
    for (int k = 0; k < v->n; k++) {
        c[k] = f != NULL ? apply_scale(f, v->v[k]) : v->v[k];
        if (!isfinite(c[k])) {
            *bad = 1;
            return NULL;
        }
    }
    if (v->n == 1)
        return cJSON_CreateNumber(c[0]);
    if ((o = cJSON_CreateObject()) == NULL)
        return NULL;
    for (int k = 0; k < v->n; k++)
        if (!cJSON_AddNumberToObject(o, v->type == LPP_COLOUR ? rgb[k] : xyz[k], c[k])) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

/* The attribute IRI of a kept unmapped value: @vocab + name. */
static char *kept_iri(const struct prof *p, const char *name)
{
    size_t a = strlen(p->vocab), b = strlen(name);
    char *iri = malloc(a + b + 1);

    if (iri != NULL) {
        memcpy(iri, p->vocab, a);
        memcpy(iri + a, name, b + 1);
    }
    return iri;
}

static int keep(struct mapper *m, const char *name, cJSON *inst)
{
    char *iri;
    int rc, added;

    if (inst == NULL)
        return nomem(m);
    if (!prof__name_ok(name)) {
        cJSON_Delete(inst);
        reject_field(m, "bad_name", name, "not a valid attribute name");
        return 0;
    }
    if ((iri = kept_iri(m->p, name)) == NULL) {
        cJSON_Delete(inst);
        return nomem(m);
    }
    rc = put_attr(m->attrs, iri, inst, &added);
    free(iri);
    if (rc != 0)
        return nomem(m);
    m->n_kept += added;
    return 0;
}

/* ---- codecs -------------------------------------------------------------- */

/* Write a mapped field's instance (takes inst). */
static int map_put(struct mapper *m, const struct prof__field *f, cJSON *inst)
{
    int added;

    if (put_attr(m->attrs, f->iri, inst, &added) != 0)
        return nomem(m);
    if (added && f->type == PROF__GEOPROPERTY && strcmp(f->iri, m->p->term_iri[PT_LOCATION]) == 0)
        m->gps = cJSON_GetObjectItemCaseSensitive(inst, "value");
    m->out->n_mapped++;
    return 0;
}

static int map_lpp(struct mapper *m)
{
    const struct prof *p = m->p;
    struct lpp_value v[LPP_MAX_VALUES];
    unsigned char used[LPP_MAX_VALUES] = {0};
    enum lpp_error why = LPP_OK;
    size_t n = 0;
    int rc;

    rc = lpp_decode(m->u->payload, m->u->payload_len, v, LPP_MAX_VALUES, &n, &why);
    if (rc != 0) {
        m->out->reason = why == LPP_TRUNCATED      ? "lpp_truncated"
                         : why == LPP_UNKNOWN_TYPE ? "lpp_unknown_type"
                                                   : "lpp_too_many_values";
        return err_set(m->e, ERR_BAD_DATA, "Cayenne LPP frame rejected: %s (%s)",
                       lpp_error_name(why), m->out->reason);
    }
    for (size_t i = 0; i < p->n_fields; i++) {
        const struct prof__field *f = &p->fields[i];
        const struct lpp_value *val = NULL;
        cJSON *inst;
        int bad;

        for (size_t k = 0; k < n && val == NULL; k++)
            if (v[k].type == f->lpp_type &&
                (f->lpp_channel < 0 || v[k].channel == f->lpp_channel)) {
                val = &v[k];
                used[k] = 1;
            }
        if (val == NULL)
            continue;
        if (f->type == PROF__GEOPROPERTY) {
            cJSON *g = lpp_point(val, &bad);

            if (bad) {
                reject_field(m, "out_of_range", f->from, "latitude or longitude out of range");
                continue;
            }
            inst = geoproperty(m, g, 1);
        } else {
            cJSON *j = lpp_json(val, f, &bad);

            if (bad) {
                reject_field(m, "out_of_range", f->from, "scaled value is not finite");
                continue;
            }
            inst = property(m, j, f->unit_code, 1);
        }
        if ((rc = map_put(m, f, inst)) != 0)
            return rc;
    }
    for (size_t k = 0; k < n; k++) {
        char name[64];
        cJSON *inst;
        int bad;

        if (used[k])
            continue;
        m->out->n_unmapped++;
        if (!p->keep_unmapped)
            continue;
        snprintf(name, sizeof(name), "%s_%u", v[k].name, (unsigned)v[k].channel);
        if (v[k].type == LPP_GPS) {
            cJSON *g = lpp_point(&v[k], &bad);

            if (bad) {
                reject_field(m, "out_of_range", name, "latitude or longitude out of range");
                continue;
            }
            inst = geoproperty(m, g, 1);
        } else {
            inst = property(m, lpp_json(&v[k], NULL, &bad), v[k].unit, 1);
        }
        if ((rc = keep(m, name, inst)) != 0)
            return rc;
    }
    return 0;
}

/* The value at f's dotted path in obj, NULL if absent or JSON null. */
static const cJSON *lookup(const cJSON *obj, const struct prof__field *f)
{
    const cJSON *it = obj;

    for (int k = 0; k < f->n_path && it != NULL; k++)
        it = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, f->path[k]) : NULL;
    return it == NULL || cJSON_IsNull(it) ? NULL : it;
}

static int map_decoded(struct mapper *m)
{
    const struct prof *p = m->p;
    const cJSON *obj = m->u->decoded, *it;
    int rc;

    for (size_t i = 0; i < p->n_fields; i++) {
        const struct prof__field *f = &p->fields[i];
        const cJSON *val = lookup(obj, f);
        cJSON *inst = NULL;

        if (val == NULL)
            continue;
        if (f->type == PROF__PROPERTY) {
            if (f->has_scale || f->has_offset) {
                double x;

                if (!cJSON_IsNumber(val)) {
                    reject_field(m, "not_a_number", f->from, "scale/offset needs a number");
                    continue;
                }
                x = apply_scale(f, val->valuedouble);
                if (!isfinite(x)) {
                    reject_field(m, "out_of_range", f->from, "scaled value is not finite");
                    continue;
                }
                inst = property(m, cJSON_CreateNumber(x), f->unit_code, 1);
            } else {
                inst = property(m, cJSON_Duplicate(val, 1), f->unit_code, 1);
            }
        } else if (f->type == PROF__GEOPROPERTY) {
            struct geo_shape *shape = NULL;
            struct err ge = {0};

            if (geo_parse(val, &shape, &ge) != 0) {
                reject_field(m, "bad_geometry", f->from, "not a GeoJSON geometry");
                continue;
            }
            geo_free(shape);
            inst = geoproperty(m, cJSON_Duplicate(val, 1), 1);
        } else {
            if (!cJSON_IsString(val)) {
                reject_field(m, "not_a_string", f->from, "a Relationship needs a URI string");
                continue;
            }
            if (!uri_is_absolute(val->valuestring, PROF_MAX_ENTITY_ID)) {
                reject_field(m, "not_a_uri", f->from, "a Relationship needs an absolute URI");
                continue;
            }
            inst = relationship(m, val->valuestring, 1);
        }
        if ((rc = map_put(m, f, inst)) != 0)
            return rc;
    }
    /* unmapped: top-level members no field path starts with */
    cJSON_ArrayForEach(it, obj)
    {
        int named = 0;

        if (it->string == NULL || cJSON_IsNull(it))
            continue;
        for (size_t i = 0; i < p->n_fields && !named; i++)
            named = strcmp(p->fields[i].path[0], it->string) == 0;
        if (named)
            continue;
        m->out->n_unmapped++;
        if (p->keep_unmapped &&
            (rc = keep(m, it->string, property(m, cJSON_Duplicate(it, 1), NULL, 1))) != 0)
            return rc;
    }
    return 0;
}

static int map_raw(struct mapper *m)
{
    static const char hex[] = "0123456789abcdef";
    char text[2 * UPLINK_MAX_PAYLOAD + 1];
    size_t n = m->u->payload_len;

    for (size_t i = 0; i < n; i++) {
        text[2 * i] = hex[m->u->payload[i] >> 4];
        text[2 * i + 1] = hex[m->u->payload[i] & 15];
    }
    text[2 * n] = '\0';
    if (put_attr(m->attrs, m->p->term_iri[PT_PAYLOAD],
                 property(m, cJSON_CreateString(text), NULL, 1), NULL) != 0 ||
        put_attr(m->attrs, m->p->term_iri[PT_FPORT],
                 property(m, cJSON_CreateNumber(m->u->f_port), NULL, 1), NULL) != 0)
        return nomem(m);
    m->out->n_mapped++;
    return 0;
}

/* ---- fragments ----------------------------------------------------------- */

/* {"id", "type": [type_iri], "attrs"}; takes attrs. */
static cJSON *fragment(const char *id, const char *type_iri, cJSON *attrs)
{
    cJSON *doc = cJSON_CreateObject(), *types;

    if (attrs == NULL || doc == NULL || !cJSON_AddStringToObject(doc, "id", id) ||
        (types = cJSON_AddArrayToObject(doc, "type")) == NULL) {
        cJSON_Delete(doc);
        cJSON_Delete(attrs);
        return NULL;
    }
    cJSON_AddItemToArray(types, cJSON_CreateString(type_iri));
    if (cJSON_GetArraySize(types) != 1) {
        cJSON_Delete(doc);
        cJSON_Delete(attrs);
        return NULL;
    }
    if (attach(doc, "attrs", attrs) != 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static int main_entity(struct mapper *m)
{
    const struct prof *p = m->p;
    const struct prof_device *d = m->d;
    char device_id[sizeof(DEVICE_ID_PREFIX) + 16];

    int identity = !(m->flags & PROF_MAP_MEASURED);

    for (size_t i = 0; identity && i < p->n_statics; i++)
        if (put_attr(m->attrs, p->statics[i].iri,
                     property(m, cJSON_Duplicate(p->statics[i].value, 1), NULL, 0), NULL) != 0)
            return nomem(m);
    if (identity && !p->maps_location && d->has_location &&
        put_attr(m->attrs, p->term_iri[PT_LOCATION],
                 geoproperty(m, point(d->coords, d->n_coords), 0), NULL) != 0)
        return nomem(m);
    if (identity && p->device_entity) {
        snprintf(device_id, sizeof(device_id), DEVICE_ID_PREFIX "%s", d->dev_eui);
        if (put_attr(m->attrs, p->term_iri[PT_REF_DEVICE], relationship(m, device_id, 0), NULL) !=
            0)
            return nomem(m);
    }
    m->out->entity = fragment(m->entity_id, p->entity_type_iri, m->attrs);
    m->attrs = NULL;
    return m->out->entity != NULL ? 0 : nomem(m);
}

static int device_entity(struct mapper *m)
{
    const struct prof *p = m->p;
    const struct prof_device *d = m->d;
    const struct uplink *u = m->u;
    const char *const *iri = (const char *const *)p->term_iri;
    char id[sizeof(DEVICE_ID_PREFIX) + 16], serial[17];
    const char *name = d->name != NULL ? d->name : u->device_name[0] ? u->device_name : NULL;
    cJSON *a = cJSON_CreateObject(), *proto = NULL;
    int rc = 0;

    if (a == NULL)
        return nomem(m);
    snprintf(id, sizeof(id), DEVICE_ID_PREFIX "%s", d->dev_eui);
    for (int i = 0; i < 17; i++)
        serial[i] = (char)(d->dev_eui[i] >= 'a' && d->dev_eui[i] <= 'f' ? d->dev_eui[i] - 32
                                                                        : d->dev_eui[i]);
    if ((proto = cJSON_CreateArray()) != NULL)
        cJSON_AddItemToArray(proto, cJSON_CreateString("lora"));
    if (proto != NULL && cJSON_GetArraySize(proto) != 1) {
        cJSON_Delete(proto);
        proto = NULL;
    }
    if (m->flags & PROF_MAP_MEASURED) {
        cJSON_Delete(proto);
    } else {
        rc |= put_attr(a, iri[PT_SERIAL_NUMBER], property(m, cJSON_CreateString(serial), NULL, 0),
                       NULL);
        rc |= put_attr(a, iri[PT_SUPPORTED_PROTOCOL], property(m, proto, NULL, 0), NULL);
        rc |= put_attr(a, iri[PT_CONTROLLED_ASSET], relationship(m, m->entity_id, 0), NULL);
        if (name != NULL)
            rc |= put_attr(a, iri[PT_NAME], property(m, cJSON_CreateString(name), NULL, 0), NULL);
    }
    if (m->gps != NULL)
        rc |= put_attr(a, iri[PT_LOCATION], geoproperty(m, cJSON_Duplicate(m->gps, 1), 0), NULL);
    else if (d->has_location && !(m->flags & PROF_MAP_MEASURED))
        rc |= put_attr(a, iri[PT_LOCATION], geoproperty(m, point(d->coords, d->n_coords), 0), NULL);
    switch (u->event) {
    case UPLINK_EV_UP:
        if (u->has_rssi) {
            rc |=
                put_attr(a, iri[PT_RSSI], property(m, cJSON_CreateNumber(u->rssi), "DBM", 1), NULL);
            rc |= put_attr(a, iri[PT_SNR], property(m, cJSON_CreateNumber(u->snr), "2N", 1), NULL);
        }
        rc |= put_attr(a, iri[PT_DATE_LAST_VALUE_REPORTED], property(m, datetime(m->when), NULL, 1),
                       NULL);
        rc |= put_attr(a, iri[PT_FCNT], property(m, cJSON_CreateNumber(u->f_cnt), NULL, 1), NULL);
        break;
    case UPLINK_EV_STATUS:
        if (u->has_battery)
            rc |= put_attr(a, iri[PT_BATTERY_LEVEL],
                           property(m, cJSON_CreateNumber(u->battery / 100.0), NULL, 1), NULL);
        if (u->external_power || u->has_battery)
            rc |=
                put_attr(a, iri[PT_POWER_SOURCE],
                         property(m, cJSON_CreateString(u->external_power ? "external" : "battery"),
                                  NULL, 1),
                         NULL);
        break;
    case UPLINK_EV_JOIN:
        rc |= put_attr(a, iri[PT_LAST_JOIN_AT], property(m, datetime(m->when), NULL, 1), NULL);
        break;
    case UPLINK_EV_LOG: {
        cJSON *log = cJSON_CreateObject();

        if (log != NULL && (!cJSON_AddStringToObject(log, "level", u->log_level) ||
                            !cJSON_AddStringToObject(log, "code", u->log_code) ||
                            !cJSON_AddStringToObject(log, "description", u->log_text))) {
            cJSON_Delete(log);
            log = NULL;
        }
        rc |= put_attr(a, iri[PT_LAST_LOG], property(m, log, NULL, 1), NULL);
        break;
    }
    }
    if (rc != 0) {
        cJSON_Delete(a);
        return nomem(m);
    }
    m->out->device = fragment(id, iri[PT_DEVICE], a);
    return m->out->device != NULL ? 0 : nomem(m);
}

int prof_map(const struct prof *p, const struct prof_device *d, const struct uplink *u,
             int64_t now_ms, struct prof_out *out, struct err *e)
{
    return prof_map_opts(p, d, u, now_ms, 0, out, e);
}

int prof_map_opts(const struct prof *p, const struct prof_device *d, const struct uplink *u,
                  int64_t now_ms, unsigned flags, struct prof_out *out, struct err *e)
{
    struct mapper m = {0};
    struct err sub = {0};
    int rc = 0;

    memset(out, 0, sizeof(*out));
    m.flags = flags;
    m.p = p;
    m.d = d;
    m.u = u;
    m.out = out;
    m.e = e;
    tm_format(u->time_ms != 0 ? u->time_ms : now_ms, m.when);
    if (prof_entity_id(p, d, m.entity_id, sizeof(m.entity_id), &sub) != 0) {
        out->reason = "bad_entity_id";
        return err_set(e, ERR_BAD_DATA, "%s (bad_entity_id)", sub.detail);
    }
    if ((m.attrs = cJSON_CreateObject()) == NULL) {
        rc = nomem(&m);
        goto fail;
    }
    if (u->event == UPLINK_EV_UP) {
        if (p->codec == PROF_CAYENNE_LPP)
            rc = u->payload_len > 0 ? map_lpp(&m) : 0;
        else if (p->codec == PROF_RAW)
            rc = u->payload_len > 0 ? map_raw(&m) : 0;
        else if (u->decoded != NULL)
            rc = map_decoded(&m); /* a codec may decode an empty frame too */
        else if (u->payload_len > 0) {
            out->reason = "no_decoded_object";
            rc = err_set(e, ERR_BAD_DATA,
                         "the network server sent no decoded object (no_decoded_object)");
        }
        if (rc != 0)
            goto fail;
        if (out->n_rejected > 0 && out->n_mapped == 0 && m.n_kept == 0) {
            out->reason = "bad_field";
            rc = err_set(e, ERR_BAD_DATA, "nothing mapped: %s", m.first_bad);
            goto fail;
        }
        if (out->n_mapped + m.n_kept > 0 && (rc = main_entity(&m)) != 0)
            goto fail;
    }
    if (p->device_entity && (rc = device_entity(&m)) != 0)
        goto fail;
    cJSON_Delete(m.attrs);
    return 0;
fail:
    cJSON_Delete(m.attrs);
    cJSON_Delete(out->entity);
    cJSON_Delete(out->device);
    out->entity = NULL;
    out->device = NULL;
    if (out->reason == NULL)
        out->reason = "nomem";
    return rc;
}
