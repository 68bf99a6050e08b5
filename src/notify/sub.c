/*
 * sub.c - subscriptions as data: expansion of input (names -> IRIs),
 * validation and compilation (GS CIM 009 v1.8 5.2.12, 5.8.1), PATCH merge,
 * event matching (5.8.6 / 5.8.7 triggers), rendering of subscriptions and
 * notification data. See sub.h for the three forms of a subscription.
 *
 * Validation decisions (400 BadRequestData unless said otherwise):
 *   - type must be "Subscription"; id, when given, a URI;
 *   - entities (non-empty array of {id | idPattern | type}, at least one
 *     of them) or watchedAttributes (non-empty array of names) must be
 *     given; timeInterval excludes watchedAttributes and throttling;
 *   - notification.endpoint.uri is required: http, https or
 *     mqtt[s]://[user[:password]@]host[:port]/topic (GS CIM 009 clause 7;
 *     the topic has no wildcards), or SUB_SSE_URI for a subscription
 *     read only through its event stream;
 *   - top-level members outside the Subscription data type are rejected
 *     (a typo such as "watchedAttribute" must not silently widen a
 *     subscription), as are csf, temporalQ and jsonldContext, which
 *     pilotlight does not implement; scopeQ follows query/scopeq.h;
 *   - notifierInfo (or receiverInfo) "MQTT-QoS" is "0" or "1" (default 0;
 *     QoS 2 is not supported); "MQTT-Version" is accepted and ignored
 *     (MQTT 3.1.1 is always used);
 *   - expiresAt in the past is refused by create and PATCH (notify.c); one
 *     that passed while the hub was down makes the subscription "expired";
 *   - receiverInfo keys and values must be printable header text.
 * Pure functions, any thread.
 */
#include "notify/sub.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "notify/mqtt.h"
#include "query/q.h"
#include "query/scopeq.h"
#include "util/time.h"
#include "util/re.h"
#include "util/uri.h"

#define NOTIF "notification"
#define NGSI_LD_NULL "urn:ngsi-ld:null"

static const struct {
    const char *name;
    unsigned bit;
} triggers[] = {
    {"entityCreated", SUB_ENTITY_CREATED},       {"entityUpdated", SUB_ENTITY_UPDATED},
    {"entityDeleted", SUB_ENTITY_DELETED},       {"attributeCreated", SUB_ATTR_CREATED},
    {"attributeUpdated", SUB_ATTR_UPDATED},      {"attributeDeleted", SUB_ATTR_DELETED},
};

/* read-only members a client may echo back; dropped on input */
static const char *const status_members[] = {"timesSent", "timesFailed", "timesDropped",
                                             "lastNotification", "lastSuccess",
                                             "lastFailure", "status"};

/* top-level members of a Subscription (5.2.12) that pilotlight implements,
 * besides the read-only ones above and "@context" */
static const char *const known_members[] = {
    "id",         "type",         "subscriptionName", "description", "entities",
    "watchedAttributes", "notificationTrigger", "timeInterval", "q", "geoQ",
    "scopeQ",     "isActive",     "notification",     "expiresAt",   "throttling",
    "lang",
};

static cJSON *get(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, list[i]))
            return 1;
    return 0;
}

/* Members of notification (NotificationParams, 5.2.14) and of its endpoint
 * (5.2.15): those pilotlight implements pass (the read-only status ones are
 * dropped later); those of the spec it does not implement, and anything
 * else (a typo such as "attrs" would otherwise silently deliver every
 * attribute), are refused. */
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int check_notification_members(const cJSON *n, struct err *e)
{
    static const char *const ok[] = {"attributes", "format", "endpoint", "sysAttrs",
                                      "showChanges"};
    static const char *const ep_ok[] = {"uri", "accept", "receiverInfo", "notifierInfo",
                                         "status"};
    static const char *const unsupported[] = {"pick", "omit", "join", "joinLevel", "timeout",
                                              "cooldown", "lang"};
    const cJSON *it, *ep = get(n, "endpoint");
    const char *where = NULL, *name = NULL;

    cJSON_ArrayForEach(it, n)
    {
        if (!in_list(it->string, ok, N_OF(ok)) &&
            !in_list(it->string, status_members, N_OF(status_members))) {
            where = "notification.";
            name = it->string;
            break;
        }
    }
    if (name == NULL && cJSON_IsObject(ep))
        cJSON_ArrayForEach(it, ep)
        {
            if (!in_list(it->string, ep_ok, N_OF(ep_ok))) {
                where = "notification.endpoint.";
                name = it->string;
                break;
            }
        }
    if (name == NULL)
        return 0;
    return err_set(e, ERR_BAD_DATA, "'%s%.64s' is not a member of a Subscription%s", where, name,
                   in_list(name, unsupported, N_OF(unsupported)) ? " that pilotlight supports"
                                                                 : "");
}

static int known_member(const char *name)
{
    for (size_t i = 0; i < sizeof(known_members) / sizeof(known_members[0]); i++)
        if (!strcmp(name, known_members[i]))
            return 1;
    for (size_t i = 0; i < sizeof(status_members) / sizeof(status_members[0]); i++)
        if (!strcmp(name, status_members[i]))
            return 1;
    return !strcmp(name, "@context") || !strcmp(name, "createdAt") ||
           !strcmp(name, "modifiedAt");
}

/* --- expansion ----------------------------------------------------------- */

static int expand_string(cJSON *item, const struct ld_ctx *ctx)
{
    if (!cJSON_IsString(item))
        return 0;
    char *iri = ld_expand(ctx ? ctx : ld_core(), item->valuestring);
    if (iri == NULL)
        return ERR_NOMEM;
    if (cJSON_SetValuestring(item, iri) == NULL) {
        free(iri);
        return ERR_NOMEM;
    }
    free(iri);
    return 0;
}

/* fn (expand_string, compact_string) on every string of an array. */
static int each_string(cJSON *arr, const struct ld_ctx *ctx,
                       int (*fn)(cJSON *item, const struct ld_ctx *ctx))
{
    cJSON *it;
    if (!cJSON_IsArray(arr))
        return 0;
    cJSON_ArrayForEach(it, arr) if (fn(it, ctx) != 0) return ERR_NOMEM;
    return 0;
}

static int expand_array(cJSON *arr, const struct ld_ctx *ctx)
{
    return each_string(arr, ctx, expand_string);
}

int sub_expand(const cJSON *body, const struct ld_ctx *ctx, int fragment, cJSON **out,
               struct err *e)
{
    cJSON *d = NULL, *it, *n;
    int n_members = 0;

    *out = NULL;
    if (!cJSON_IsObject(body))
        return err_set(e, ERR_INVALID_REQUEST, "a subscription must be a JSON object");
    cJSON_ArrayForEach(it, body)
    {
        if (!known_member(it->string))
            return err_set(e, ERR_BAD_DATA, "'%.64s' is not a member of a Subscription%s",
                           it->string,
                           (!strcmp(it->string, "csf") || !strcmp(it->string, "temporalQ") ||
                            !strcmp(it->string, "jsonldContext"))
                               ? " that pilotlight supports"
                               : "");
        n_members += strcmp(it->string, "@context") != 0;
    }
    if (fragment && n_members == 0)
        return err_set(e, ERR_BAD_DATA, "the update names no member of the subscription");
    if (cJSON_IsObject(n = get(body, NOTIF))) {
        int rc = check_notification_members(n, e);
        if (rc)
            return rc;
    }
    if ((d = cJSON_Duplicate(body, 1)) == NULL)
        goto oom;
    cJSON_DeleteItemFromObjectCaseSensitive(d, "@context");
    cJSON_DeleteItemFromObjectCaseSensitive(d, "_status");
    cJSON_DeleteItemFromObjectCaseSensitive(d, "status");
    cJSON_DeleteItemFromObjectCaseSensitive(d, "createdAt");
    cJSON_DeleteItemFromObjectCaseSensitive(d, "modifiedAt");
    if (cJSON_IsArray(it = get(d, "entities"))) {
        cJSON *sel;
        cJSON_ArrayForEach(sel, it) if (expand_string(get(sel, "type"), ctx) != 0) goto oom;
    }
    if (expand_array(get(d, "watchedAttributes"), ctx) != 0)
        goto oom;
    if (cJSON_IsObject(it = get(d, "geoQ")) && expand_string(get(it, "geoproperty"), ctx) != 0)
        goto oom;
    if (cJSON_IsObject(n = get(d, NOTIF))) {
        if (expand_array(get(n, "attributes"), ctx) != 0)
            goto oom;
        for (size_t i = 0; i < sizeof(status_members) / sizeof(status_members[0]); i++)
            cJSON_DeleteItemFromObjectCaseSensitive(n, status_members[i]);
    }
    *out = d;
    return 0;
oom:
    cJSON_Delete(d);
    return err_set(e, ERR_NOMEM, "out of memory");
}

/* --- compilation ------------------------------------------------------------ */

void sub_free(struct sub *s)
{
    if (s == NULL)
        return;
    free(s->id);
    ld_ctx_release(s->ctx);
    for (size_t i = 0; i < s->n_sels; i++) {
        free(s->sels[i].id);
        free(s->sels[i].type);
        if (s->sels[i].has_re)
            regfree(&s->sels[i].re);
    }
    free(s->sels);
    for (size_t i = 0; i < s->n_watched; i++)
        free(s->watched[i]);
    free(s->watched);
    q_free(s->q);
    scopeq_free(s->scopeq);
    geo_free(s->geometry);
    free(s->geoproperty);
    for (size_t i = 0; i < s->n_pick; i++)
        free(s->pick[i]);
    free(s->pick);
    free(s->uri);
    free(s->lang);
    for (size_t i = 0; i < s->n_headers; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s);
}

static int is_uri(const char *s)
{
    return uri_is_absolute(s, SUB_MAX_URI);
}

/* A non-empty array of non-empty strings (at most cap) copied into *out. */
static int string_list(const cJSON *arr, const char *what, size_t cap, char ***out, size_t *n,
                       struct err *e)
{
    const cJSON *it;
    size_t count;

    if (!cJSON_IsArray(arr) || (count = (size_t)cJSON_GetArraySize(arr)) == 0)
        return err_set(e, ERR_BAD_DATA, "%s must be a non-empty array of names", what);
    if (count > cap)
        return err_set(e, ERR_BAD_DATA, "%s has more than %zu items", what, cap);
    if ((*out = calloc(count + 2, sizeof(**out))) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0' ||
            strlen(it->valuestring) > ENT_MAX_IRI)
            return err_set(e, ERR_BAD_DATA, "%s must contain non-empty strings", what);
        if (((*out)[(*n)++] = strdup(it->valuestring)) == NULL)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* Positive number of seconds -> ms. */
static int seconds(const cJSON *v, const char *what, int64_t *ms, struct err *e)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 1e9)
        return err_set(e, ERR_BAD_DATA, "%s must be a positive number of seconds", what);
    *ms = (int64_t)(v->valuedouble * 1000.0);
    if (*ms < 1)
        *ms = 1;
    return 0;
}

static int header_text(const char *s, size_t max)
{
    if (s == NULL || strlen(s) > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return 0;
    return 1;
}

static int header_name(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 256)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

static int compile_selectors(struct sub *s, const cJSON *ents, struct err *e)
{
    const cJSON *sel;
    size_t count = (size_t)cJSON_GetArraySize(ents);

    if (!cJSON_IsArray(ents) || count == 0)
        return err_set(e, ERR_BAD_DATA, "entities must be a non-empty array of entity selectors");
    if (count > SUB_MAX_SELECTORS)
        return err_set(e, ERR_BAD_DATA, "entities has more than %d selectors", SUB_MAX_SELECTORS);
    if ((s->sels = calloc(count, sizeof(*s->sels))) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(sel, ents)
    {
        struct sub_selector *x = &s->sels[s->n_sels++];
        const cJSON *id = get(sel, "id"), *pat = get(sel, "idPattern"), *type = get(sel, "type");
        if (!cJSON_IsObject(sel))
            return err_set(e, ERR_BAD_DATA, "an entity selector must be an object");
        if (!id && !pat && !type)
            return err_set(e, ERR_BAD_DATA, "an entity selector needs id, idPattern or type");
        if (id) {
            if (!cJSON_IsString(id) || !is_uri(id->valuestring))
                return err_set(e, ERR_BAD_DATA, "entity selector id must be a URI");
            if ((x->id = strdup(id->valuestring)) == NULL)
                return err_set(e, ERR_NOMEM, "out of memory");
        }
        if (pat && !id) {
            char why[96] = "is not a string";
            if (!cJSON_IsString(pat) || re_compile(&x->re, pat->valuestring, 0, why, sizeof(why)))
                return err_set(e, ERR_BAD_DATA, "entity selector idPattern %s", why);
            x->has_re = 1;
        }
        if (type) {
            if (!cJSON_IsString(type) || type->valuestring[0] == '\0' ||
                strlen(type->valuestring) > ENT_MAX_IRI)
                return err_set(e, ERR_BAD_DATA, "entity selector type must be a non-empty string");
            if ((x->type = strdup(type->valuestring)) == NULL)
                return err_set(e, ERR_NOMEM, "out of memory");
        }
    }
    return 0;
}

static int compile_geoq(struct sub *s, const cJSON *g, struct err *e)
{
    const cJSON *rel = get(g, "georel"), *geom = get(g, "geometry"), *coords = get(g, "coordinates");
    const cJSON *prop = get(g, "geoproperty");
    char *text = NULL;
    int rc;

    if (!cJSON_IsObject(g) || !cJSON_IsString(rel) || !cJSON_IsString(geom) || coords == NULL)
        return err_set(e, ERR_BAD_DATA, "geoQ needs georel, geometry and coordinates");
    if (prop && !cJSON_IsString(prop))
        return err_set(e, ERR_BAD_DATA, "geoQ.geoproperty must be a string");
    if (geo_rel_parse(rel->valuestring, &s->georel, e) != 0)
        return e->code = ERR_BAD_DATA;
    if (cJSON_IsString(coords))
        text = strdup(coords->valuestring);
    else if (cJSON_IsArray(coords))
        text = cJSON_PrintUnformatted(coords);
    else
        return err_set(e, ERR_BAD_DATA, "geoQ.coordinates must be an array or a string");
    if (text == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = geo_parse_query(geom->valuestring, text, &s->geometry, e);
    free(text);
    if (rc != 0)
        return e->code = ERR_BAD_DATA;
    s->geoproperty = strdup(prop ? prop->valuestring : LD_LOCATION_IRI);
    return s->geoproperty ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static char *expand_cb(void *ud, const char *term)
{
    return ld_expand(ud, term);
}


/* MQTT-QoS value: "0" or "1" (QoS 2 is not supported). */
static int mqtt_qos(struct sub *s, const char *v, struct err *e)
{
    if (strcmp(v, "0") && strcmp(v, "1"))
        return err_set(e, ERR_BAD_DATA, "notification.endpoint MQTT-QoS must be \"0\" or \"1\"");
    s->mqtt_qos = v[0] - '0';
    return 0;
}

static int compile_notification(struct sub *s, const cJSON *n, struct err *e)
{
    const cJSON *attrs = get(n, "attributes"), *fmt = get(n, "format"), *ep = get(n, "endpoint");
    const cJSON *sys = get(n, "sysAttrs"), *changes = get(n, "showChanges");
    const cJSON *uri, *accept, *info;

    if (!cJSON_IsObject(n))
        return err_set(e, ERR_BAD_DATA, "notification must be an object");
    if (attrs) {
        int rc = string_list(attrs, "notification.attributes", SUB_MAX_ATTRS, &s->pick,
                             &s->n_pick, e);
        if (rc)
            return rc;
        if ((s->pick[s->n_pick++] = strdup("id")) == NULL ||
            (s->pick[s->n_pick++] = strdup("type")) == NULL)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    s->format = ENT_NORMALIZED;
    if (fmt) {
        if (!cJSON_IsString(fmt))
            return err_set(e, ERR_BAD_DATA, "notification.format must be a string");
        if (!strcmp(fmt->valuestring, "normalized"))
            s->format = ENT_NORMALIZED;
        else if (!strcmp(fmt->valuestring, "concise"))
            s->format = ENT_CONCISE;
        else if (!strcmp(fmt->valuestring, "keyValues") || !strcmp(fmt->valuestring, "simplified"))
            s->format = ENT_KEYVALUES;
        else
            return err_set(e, ERR_BAD_DATA, "notification.format '%.64s' is not normalized, "
                           "concise or keyValues", fmt->valuestring);
    }
    if (sys && !cJSON_IsBool(sys))
        return err_set(e, ERR_BAD_DATA, "notification.sysAttrs must be true or false");
    if (changes && !cJSON_IsBool(changes))
        return err_set(e, ERR_BAD_DATA, "notification.showChanges must be true or false");
    s->sys_attrs = cJSON_IsTrue(sys);
    s->show_changes = cJSON_IsTrue(changes);

    if (!cJSON_IsObject(ep))
        return err_set(e, ERR_BAD_DATA, "notification.endpoint is required (an object)");
    uri = get(ep, "uri");
    if (!cJSON_IsString(uri) || strlen(uri->valuestring) > SUB_MAX_URI || !is_uri(uri->valuestring))
        return err_set(e, ERR_BAD_DATA, "notification.endpoint.uri must be a URI");
    if (!strncmp(uri->valuestring, "http://", 7) || !strncmp(uri->valuestring, "https://", 8))
        s->transport = SUB_HTTP;
    else if (!strcmp(uri->valuestring, SUB_SSE_URI))
        s->transport = SUB_SSE;
    else if (!strncmp(uri->valuestring, "mqtt://", 7) || !strncmp(uri->valuestring, "mqtts://", 8)) {
        struct mqtt_uri mu;
        struct err me = {0};
        if (mqtt_uri_parse(uri->valuestring, &mu, &me) != 0)
            return err_set(e, ERR_BAD_DATA, "notification.endpoint.uri: %s", me.detail);
        memset(mu.password, 0, sizeof(mu.password));
        s->transport = SUB_MQTT;
    }
    else
        return err_set(e, ERR_BAD_DATA, "notification.endpoint.uri scheme must be http, https, "
                       "mqtt or mqtts (or the URI " SUB_SSE_URI ")");
    if ((s->uri = strdup(uri->valuestring)) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    accept = get(ep, "accept");
    if (accept) {
        if (!cJSON_IsString(accept) || (strcmp(accept->valuestring, "application/json") &&
                                        strcmp(accept->valuestring, "application/ld+json")))
            return err_set(e, ERR_BAD_DATA, "notification.endpoint.accept must be "
                           "application/json or application/ld+json");
        s->accept_ld = !strcmp(accept->valuestring, "application/ld+json");
    }
    info = get(ep, "receiverInfo");
    if (info) {
        const cJSON *kv;
        int count = cJSON_GetArraySize(info);
        if (!cJSON_IsArray(info) || count > SUB_MAX_HEADERS)
            return err_set(e, ERR_BAD_DATA, "notification.endpoint.receiverInfo must be an array "
                           "of at most %d {key, value} objects", SUB_MAX_HEADERS);
        if ((s->headers = calloc((size_t)count + 1, sizeof(*s->headers))) == NULL)
            return err_set(e, ERR_NOMEM, "out of memory");
        cJSON_ArrayForEach(kv, info)
        {
            const cJSON *k = get(kv, "key"), *v = get(kv, "value");
            char *h;
            if (!cJSON_IsString(k) || !cJSON_IsString(v) || !header_name(k->valuestring) ||
                !header_text(v->valuestring, 4096))
                return err_set(e, ERR_BAD_DATA, "notification.endpoint.receiverInfo items must be "
                               "{key, value} with a header name and printable text");
            if (asprintf(&h, "%s: %s", k->valuestring, v->valuestring) < 0)
                return err_set(e, ERR_NOMEM, "out of memory");
            s->headers[s->n_headers++] = h;
            if (!strcasecmp(k->valuestring, "MQTT-QoS") && mqtt_qos(s, v->valuestring, e) != 0)
                return ERR_BAD_DATA;
        }
    }
    info = get(ep, "notifierInfo");
    if (info) {
        const cJSON *kv;
        if (!cJSON_IsArray(info) || cJSON_GetArraySize(info) > SUB_MAX_HEADERS)
            return err_set(e, ERR_BAD_DATA, "notification.endpoint.notifierInfo must be an array "
                           "of at most %d {key, value} objects", SUB_MAX_HEADERS);
        cJSON_ArrayForEach(kv, info)
        {
            const cJSON *k = get(kv, "key"), *v = get(kv, "value");
            if (!cJSON_IsString(k) || !cJSON_IsString(v))
                return err_set(e, ERR_BAD_DATA, "notification.endpoint.notifierInfo items must be "
                               "{key, value} strings");
            if (!strcasecmp(k->valuestring, "MQTT-QoS") && mqtt_qos(s, v->valuestring, e) != 0)
                return ERR_BAD_DATA;
        }
    }
    return 0;
}

int sub_compile(const cJSON *doc, const struct ld_ctx *ctx, struct sub **out, struct err *e)
{
    struct sub *s = NULL;
    const cJSON *id = get(doc, "id"), *type = get(doc, "type"), *v;
    int rc;

    *out = NULL;
    if (!cJSON_IsObject(doc))
        return err_set(e, ERR_BAD_DATA, "a subscription must be a JSON object");
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->ctx = ctx ? ctx : ld_core();
    ld_ctx_retain(s->ctx);
    s->active = 1;
    s->triggers = SUB_TRIGGER_DEFAULT;
    if (!cJSON_IsString(id) || !is_uri(id->valuestring) || strlen(id->valuestring) > ENT_MAX_IRI) {
        rc = err_set(e, ERR_BAD_DATA, "subscription id must be a URI");
        goto fail;
    }
    if ((s->id = strdup(id->valuestring)) == NULL)
        goto oom;
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "Subscription") != 0) {
        rc = err_set(e, ERR_BAD_DATA, "type must be \"Subscription\"");
        goto fail;
    }
    if ((v = get(doc, "entities")) && (rc = compile_selectors(s, v, e)) != 0)
        goto fail;
    if ((v = get(doc, "watchedAttributes")) &&
        (rc = string_list(v, "watchedAttributes", SUB_MAX_ATTRS, &s->watched, &s->n_watched,
                          e)) != 0)
        goto fail;
    if ((v = get(doc, "timeInterval")) &&
        (rc = seconds(v, "timeInterval", &s->interval_ms, e)) != 0)
        goto fail;
    if ((v = get(doc, "throttling")) && (rc = seconds(v, "throttling", &s->throttling_ms, e)) != 0)
        goto fail;
    if (s->n_sels == 0 && s->n_watched == 0) {
        rc = err_set(e, ERR_BAD_DATA, "a subscription needs entities or watchedAttributes");
        goto fail;
    }
    if (s->interval_ms && (s->n_watched || s->throttling_ms)) {
        rc = err_set(e, ERR_BAD_DATA,
                     "timeInterval cannot be combined with watchedAttributes or throttling");
        goto fail;
    }
    if ((v = get(doc, "notificationTrigger"))) {
        const cJSON *t;
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
            rc = err_set(e, ERR_BAD_DATA, "notificationTrigger must be a non-empty array");
            goto fail;
        }
        s->triggers = 0;
        cJSON_ArrayForEach(t, v)
        {
            unsigned bit = 0;
            for (size_t i = 0; cJSON_IsString(t) && i < sizeof(triggers) / sizeof(triggers[0]); i++)
                if (!strcmp(t->valuestring, triggers[i].name))
                    bit = triggers[i].bit;
            if (bit == 0) {
                rc = err_set(e, ERR_BAD_DATA, "unknown notificationTrigger '%.64s'",
                             cJSON_IsString(t) ? t->valuestring : "(not a string)");
                goto fail;
            }
            s->triggers |= bit;
        }
    }
    if ((v = get(doc, "q"))) {
        if (!cJSON_IsString(v)) {
            rc = err_set(e, ERR_BAD_DATA, "q must be a string");
            goto fail;
        }
        if (q_parse(v->valuestring, &s->q, e) != 0) {
            rc = e->code = ERR_BAD_DATA;
            goto fail;
        }
        if ((rc = q_expand(s->q, expand_cb, (void *)s->ctx, e)) != 0)
            goto fail;
    }
    if ((v = get(doc, "scopeQ"))) {
        if (!cJSON_IsString(v)) {
            rc = err_set(e, ERR_BAD_DATA, "scopeQ must be a string");
            goto fail;
        }
        if (scopeq_parse(v->valuestring, &s->scopeq, e) != 0) {
            rc = e->code = ERR_BAD_DATA;
            goto fail;
        }
    }
    if ((v = get(doc, "lang"))) {
        /* the lang parameter's syntax ("fr-CH, fr;q=0.9, *"): printable, short */
        if (!cJSON_IsString(v) || !header_text(v->valuestring, 256) || !v->valuestring[0]) {
            rc = err_set(e, ERR_BAD_DATA, "lang must be a language range list such as \"fr,en\"");
            goto fail;
        }
        if ((s->lang = strdup(v->valuestring)) == NULL) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    if ((v = get(doc, "geoQ")) && (rc = compile_geoq(s, v, e)) != 0)
        goto fail;
    if ((rc = compile_notification(s, get(doc, NOTIF), e)) != 0)
        goto fail;
    if ((v = get(doc, "expiresAt"))) {
        if (!cJSON_IsString(v) || tm_parse(v->valuestring, &s->expires_ms) != 0) {
            rc = err_set(e, ERR_BAD_DATA, "expiresAt must be an ISO 8601 date-time");
            goto fail;
        }
    }
    if ((v = get(doc, "isActive"))) {
        if (!cJSON_IsBool(v)) {
            rc = err_set(e, ERR_BAD_DATA, "isActive must be true or false");
            goto fail;
        }
        s->active = cJSON_IsTrue(v);
    }
    if ((v = get(doc, "subscriptionName")) && !cJSON_IsString(v)) {
        rc = err_set(e, ERR_BAD_DATA, "subscriptionName must be a string");
        goto fail;
    }
    if ((v = get(doc, "description")) && !cJSON_IsString(v)) {
        rc = err_set(e, ERR_BAD_DATA, "description must be a string");
        goto fail;
    }
    *out = s;
    return 0;
oom:
    rc = err_set(e, ERR_NOMEM, "out of memory");
fail:
    sub_free(s);
    return rc;
}

/* --- PATCH ------------------------------------------------------------------ */

/* Set obj.name to a copy of val; JSON null or "urn:ngsi-ld:null" (the
 * NGSI-LD null, 5.2.1) removes the member. */
static int replace_member(cJSON *obj, const char *name, const cJSON *val)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
    if (cJSON_IsNull(val) || (cJSON_IsString(val) && !strcmp(val->valuestring, NGSI_LD_NULL)))
        return 0;
    cJSON *copy = cJSON_Duplicate(val, 1);
    if (copy == NULL)
        return ERR_NOMEM;
    cJSON_AddItemToObject(obj, name, copy);
    return 0;
}

int sub_merge(cJSON *doc, const cJSON *frag, struct err *e)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, frag)
    {
        const char *name = m->string;
        if (!strcmp(name, "id") || !strcmp(name, "type")) {
            const cJSON *cur = get(doc, name);
            if (!cJSON_IsString(m) || !cJSON_IsString(cur) || strcmp(m->valuestring, cur->valuestring))
                return err_set(e, ERR_BAD_DATA, "a subscription's %s cannot be changed", name);
            continue;
        }
        if (!strcmp(name, NOTIF) && cJSON_IsObject(m) && cJSON_IsObject(get(doc, NOTIF))) {
            cJSON *n = get(doc, NOTIF);
            const cJSON *nm;
            cJSON_ArrayForEach(nm, m) if (replace_member(n, nm->string, nm) != 0) goto oom;
            continue;
        }
        if (replace_member(doc, name, m) != 0)
            goto oom;
    }
    return 0;
oom:
    return err_set(e, ERR_NOMEM, "out of memory");
}

/* --- matching ------------------------------------------------------------------ */

static int watched(const struct sub *s, const char *iri)
{
    if (s->n_watched == 0)
        return 1;
    for (size_t i = 0; i < s->n_watched; i++)
        if (!strcmp(s->watched[i], iri))
            return 1;
    return 0;
}

/* The instance of insts with inst's datasetId (or the default one), or NULL. */
static const cJSON *same_dataset(const cJSON *insts, const cJSON *inst)
{
    const cJSON *ds = get(inst, "datasetId"), *i;
    cJSON_ArrayForEach(i, insts)
    {
        const cJSON *d = get(i, "datasetId");
        if (cJSON_IsString(ds) ? cJSON_IsString(d) && !strcmp(d->valuestring, ds->valuestring)
                               : d == NULL)
            return i;
    }
    return NULL;
}

static int has_dataset(const cJSON *insts, const cJSON *inst)
{
    return same_dataset(insts, inst) != NULL;
}

/* What a change did to an attribute that was there before (b) and is
 * after (a): instances updated (a new datasetId or a changed one), and
 * datasetIds deleted (an instance of b that a lacks, 5.8.6: deleting one
 * datasetId of several is an attributeDeleted). */
static unsigned instance_changes(const cJSON *b, const cJSON *a)
{
    const cJSON *i, *m;
    unsigned bits = 0;
    cJSON_ArrayForEach(i, a) if ((m = same_dataset(b, i)) == NULL || !cJSON_Compare(i, m, 1))
        bits |= SUB_ATTR_UPDATED;
    cJSON_ArrayForEach(i, b) if (!has_dataset(a, i)) bits |= SUB_ATTR_DELETED;
    return bits;
}

static unsigned event_triggers(const struct sub *s, const struct store_event *ev)
{
    unsigned t = 0;
    const cJSON *a, *attrs_before, *attrs_after;
    int watched_change = 0;

    if (ev->kind == STORE_EV_DELETED) {
        /* deleting an entity deletes its attributes too (5.8.6) */
        t = SUB_ENTITY_DELETED;
        cJSON_ArrayForEach(a, get(ev->before, "attrs")) if (watched(s, a->string)) t |=
            SUB_ATTR_DELETED;
        return t;
    }
    attrs_after = get(ev->after, "attrs");
    if (ev->kind == STORE_EV_CREATED) {
        t |= SUB_ENTITY_CREATED;
        cJSON_ArrayForEach(a, attrs_after) if (watched(s, a->string)) t |= SUB_ATTR_CREATED;
        return t;
    }
    attrs_before = get(ev->before, "attrs");
    cJSON_ArrayForEach(a, attrs_after)
    {
        const cJSON *b = get(attrs_before, a->string);
        unsigned bit = b == NULL               ? SUB_ATTR_CREATED
                       : cJSON_Compare(a, b, 1) ? 0
                                                : instance_changes(b, a);
        if (bit && watched(s, a->string)) {
            t |= bit;
            watched_change = 1;
        }
    }
    cJSON_ArrayForEach(a, attrs_before) if (get(attrs_after, a->string) == NULL &&
                                            watched(s, a->string))
    {
        t |= SUB_ATTR_DELETED;
        watched_change = 1;
    }
    if (watched_change || (s->n_watched == 0 &&
                           (!cJSON_Compare(get(ev->before, "type"), get(ev->after, "type"), 1) ||
                            !cJSON_Compare(get(ev->before, "scope"), get(ev->after, "scope"), 1))))
        t |= SUB_ENTITY_UPDATED;
    return t;
}

static int has_type(const cJSON *doc, const char *type)
{
    const cJSON *t, *types = ent_doc_types(doc);
    cJSON_ArrayForEach(t, types) if (cJSON_IsString(t) && !strcmp(t->valuestring, type)) return 1;
    return 0;
}

static int selected(const struct sub *s, const cJSON *doc)
{
    const char *id = ent_doc_id(doc);
    if (s->n_sels == 0)
        return 1;
    if (id == NULL)
        return 0;
    for (size_t i = 0; i < s->n_sels; i++) {
        const struct sub_selector *x = &s->sels[i];
        if (x->id && strcmp(x->id, id) != 0)
            continue;
        if (x->has_re && regexec(&x->re, id, 0, NULL, 0) != 0)
            continue;
        if (x->type && !has_type(doc, x->type))
            continue;
        return 1;
    }
    return 0;
}

static int geo_ok(const struct sub *s, const cJSON *doc)
{
    struct geo_shape *target = NULL;
    const cJSON *g = ent_doc_geo(doc, s->geoproperty);
    int ok;
    if (g == NULL || geo_parse(g, &target, NULL) != 0)
        return 0;
    ok = geo_match(&s->georel, s->geometry, target);
    geo_free(target);
    return ok;
}

int sub_selects(const struct sub *s, const cJSON *doc)
{
    return selected(s, doc) && (s->q == NULL || q_match(s->q, doc)) &&
           (s->scopeq == NULL || scopeq_match(s->scopeq, get(doc, "scope"))) &&
           (s->geometry == NULL || geo_ok(s, doc));
}

unsigned sub_match(const struct sub *s, const struct store_event *ev)
{
    const cJSON *doc = ev->kind == STORE_EV_DELETED ? ev->before : ev->after;
    unsigned t;
    if (doc == NULL)
        return 0;
    t = event_triggers(s, ev) & s->triggers;
    if (t == 0 || !selected(s, doc))
        return 0;
    if (s->q && !q_match(s->q, doc))
        return 0;
    if (s->scopeq && !scopeq_match(s->scopeq, get(doc, "scope")))
        return 0;
    if (s->geometry && !geo_ok(s, doc))
        return 0;
    return t;
}

/* --- rendering ---------------------------------------------------------------- */

static int compact_string(cJSON *item, const struct ld_ctx *ctx)
{
    if (!cJSON_IsString(item))
        return 0;
    char *term = ld_compact(ctx, item->valuestring);
    if (term == NULL)
        return ERR_NOMEM;
    char *ok = cJSON_SetValuestring(item, term);
    free(term);
    return ok ? 0 : ERR_NOMEM;
}

static int compact_array(cJSON *arr, const struct ld_ctx *ctx)
{
    return each_string(arr, ctx, compact_string);
}

/* The member that holds an instance's value, by attribute type, and its
 * showChanges name (GS CIM 009 5.2.14); the first row (Property) for an
 * instance without a known type. */
static const struct value_member {
    const char *type, *member, *previous;
} value_members[] = {
    {"Property", "value", "previousValue"},
    {"GeoProperty", "value", "previousValue"},
    {"Relationship", "object", "previousObject"},
    {"LanguageProperty", "languageMap", "previousLanguageMap"},
    {"VocabProperty", "vocab", "previousVocab"},
    {"ListProperty", "valueList", "previousValueList"},
    {"ListRelationship", "objectList", "previousObjectList"},
    {"JsonProperty", "json", "previousJson"},
};

static const struct value_member *value_member_of(const cJSON *inst)
{
    const cJSON *t = get(inst, "type");
    for (size_t i = 0; cJSON_IsString(t) && i < N_OF(value_members); i++)
        if (!strcmp(t->valuestring, value_members[i].type))
            return &value_members[i];
    return &value_members[0];
}

/* The rendered attribute out[name] that a previous* member goes into. A
 * concise Property or GeoProperty may be its bare value (a number, a
 * GeoJSON object...): it becomes {"value": bare} first, so the previous
 * value has a place beside it. NULL when there is none (not rendered,
 * several instances) or, with *oom set, out of memory. */
static cJSON *previous_slot(const struct sub *s, cJSON *out, const char *name,
                            const struct value_member *vm, int *oom)
{
    cJSON *target = get(out, name), *wrap;
    if (target == NULL || cJSON_IsArray(target))
        return NULL;
    if (s->format != ENT_CONCISE || strcmp(vm->member, "value") != 0 ||
        (cJSON_IsObject(target) && cJSON_HasObjectItem(target, "value")))
        return cJSON_IsObject(target) ? target : NULL;
    if ((wrap = cJSON_CreateObject()) == NULL) {
        *oom = 1;
        return NULL;
    }
    cJSON_DetachItemViaPointer(out, target);
    if (!cJSON_AddItemToObject(wrap, "value", target)) {
        cJSON_Delete(target);
        cJSON_Delete(wrap);
        *oom = 1;
        return NULL;
    }
    if (!cJSON_AddItemToObject(out, name, wrap)) {
        cJSON_Delete(wrap);
        *oom = 1;
        return NULL;
    }
    return wrap;
}

/* The instance an attribute's change or deletion is told with: its default
 * instance (no datasetId), else its first. */
static const cJSON *base_instance(const cJSON *insts)
{
    const cJSON *inst;
    cJSON_ArrayForEach(inst, insts) if (get(inst, "datasetId") == NULL) return inst;
    return cJSON_GetArrayItem(insts, 0);
}

/* A copy of a previous value as the notification shows it: vocab values
 * are IRIs, compacted like the current ones. NULL when out of memory. */
static cJSON *previous_copy(const struct sub *s, const struct value_member *vm, const cJSON *old)
{
    cJSON *copy = cJSON_Duplicate(old, 1);
    if (copy == NULL || strcmp(vm->member, "vocab") != 0)
        return copy;
    if ((cJSON_IsString(copy) ? compact_string(copy, s->ctx) : compact_array(copy, s->ctx)) != 0) {
        cJSON_Delete(copy);
        return NULL;
    }
    return copy;
}

/* showChanges: beside the value of each default instance the change
 * updated or deleted (a deleted one is its tombstone), its previous value
 * under the member its type names (value_members), in the normalized and
 * concise forms. An entity's deletion deletes every attribute. */
static int add_previous(const struct sub *s, const struct store_event *ev, cJSON *out)
{
    const cJSON *b, *after = get(ev->after, "attrs");
    cJSON_ArrayForEach(b, get(ev->before, "attrs"))
    {
        const cJSON *a = get(after, b->string), *bi, *ai, *old;
        const struct value_member *vm;
        cJSON *slot, *copy;
        char *name;
        int oom = 0;
        if (a != NULL && cJSON_Compare(a, b, 1))
            continue;
        bi = base_instance(b);
        ai = a ? base_instance(a) : NULL;
        if (get(bi, "datasetId") || get(ai, "datasetId"))
            continue;
        vm = value_member_of(ai ? ai : bi);
        if ((old = get(bi, vm->member)) == NULL ||
            (ai && cJSON_Compare(old, get(ai, vm->member), 1)))
            continue;
        if ((name = ld_compact(s->ctx, b->string)) == NULL)
            return ERR_NOMEM;
        slot = previous_slot(s, out, name, vm, &oom);
        free(name);
        if (oom)
            return ERR_NOMEM;
        if (slot == NULL)
            continue;
        if ((copy = previous_copy(s, vm, old)) == NULL ||
            !cJSON_AddItemToObject(slot, vm->previous, copy)) {
            cJSON_Delete(copy);
            return ERR_NOMEM;
        }
    }
    return 0;
}

/* A stored-form instance saying that inst was deleted at `at` (GS CIM 009
 * 5.2.1, 5.8.6): the NGSI-LD null in the shape of its type
 * (ent_null_instance), its datasetId with with_ds; under sysAttrs also its
 * createdAt and modifiedAt and the deletedAt. NULL when out of memory. */
static cJSON *null_of(const struct sub *s, const cJSON *inst, const char *at, int with_ds)
{
    const cJSON *type = get(inst, "type"), *v;
    cJSON *o = ent_null_instance(cJSON_IsString(type) ? type->valuestring : NULL);
    if (o == NULL)
        return NULL;
    if (with_ds && cJSON_IsString(v = get(inst, "datasetId")) &&
        !cJSON_AddStringToObject(o, "datasetId", v->valuestring))
        goto oom;
    if (s->sys_attrs) {
        static const char *const times[] = {"createdAt", "modifiedAt"};
        for (size_t i = 0; i < N_OF(times); i++)
            if (cJSON_IsString(v = get(inst, times[i])) &&
                !cJSON_AddStringToObject(o, times[i], v->valuestring))
                goto oom;
        if (!cJSON_AddStringToObject(o, "deletedAt", at))
            goto oom;
    }
    return o;
oom:
    cJSON_Delete(o);
    return NULL;
}

/* The instances [one] saying that attribute insts was deleted: one per
 * attribute, told with its base instance and without datasetId, however
 * many instances went. NULL when out of memory. */
static cJSON *tombstone(const struct sub *s, const cJSON *insts, const char *at)
{
    cJSON *arr = cJSON_CreateArray(), *o = null_of(s, base_instance(insts), at, 0);
    if (arr == NULL || o == NULL || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(arr);
        cJSON_Delete(o);
        return NULL;
    }
    return arr;
}

/* The rendering a subscription asks for (its `lang` is the caller's to add). */
static struct ent_render_opts render_opts(const struct sub *s)
{
    return (struct ent_render_opts){
        .ctx = s->ctx,
        .format = s->format,
        .sys_attrs = s->sys_attrs,
        .pick = (const char *const *)s->pick,
        .n_pick = s->n_pick,
    };
}

/* Render a stored-form document of tombstones (and what else it has) as
 * the subscription asks. No `lang`: a tombstone's languageMap must stay
 * the NGSI-LD null. */
static int render_as_sub(const struct sub *s, const cJSON *doc, cJSON **out, struct err *e)
{
    struct ent_render_opts ro = render_opts(s);
    return ent_render(doc, &ro, out, e);
}

/* The instances of an attribute that stays which the change removed (one
 * datasetId of several deleted): tombstones with their datasetId, rendered
 * as the subscription asks and added beside the attribute's remaining
 * instances in out (normalized and concise; keyValues shows no instances). */
static int add_dropped_instances(const struct sub *s, const cJSON *b, const cJSON *a,
                                 const char *at, cJSON *out, struct err *e)
{
    cJSON *doc = cJSON_CreateObject(), *attrs, *list, *r = NULL, *got, *slot, *it;
    const cJSON *bi;
    int rc = 0;

    if (doc == NULL || (attrs = cJSON_AddObjectToObject(doc, "attrs")) == NULL ||
        (list = cJSON_AddArrayToObject(attrs, b->string)) == NULL)
        goto oom;
    cJSON_ArrayForEach(bi, b)
    {
        cJSON *t;
        if (has_dataset(a, bi))
            continue;
        if ((t = null_of(s, bi, at, 1)) == NULL || !cJSON_AddItemToArray(list, t)) {
            cJSON_Delete(t);
            goto oom;
        }
    }
    if (list->child == NULL || s->format == ENT_KEYVALUES)
        goto out;
    if ((rc = render_as_sub(s, doc, &r, e)) != 0 || (got = r->child) == NULL)
        goto out;
    if ((slot = cJSON_GetObjectItemCaseSensitive(out, got->string)) == NULL)
        goto out; /* projected out */
    if (!cJSON_IsArray(slot)) { /* one instance left: a list of instances now */
        cJSON *arr = cJSON_CreateArray();
        if (arr == NULL || !cJSON_AddItemToObject(out, got->string, arr)) {
            cJSON_Delete(arr);
            goto oom;
        }
        cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(out, slot));
        slot = arr;
    }
    if (cJSON_IsArray(got)) {
        while ((it = got->child) != NULL)
            cJSON_AddItemToArray(slot, cJSON_DetachItemViaPointer(got, it));
    } else {
        cJSON_AddItemToArray(slot, cJSON_DetachItemViaPointer(r, got));
    }
    goto out;
oom:
    rc = err_set(e, ERR_NOMEM, "out of memory");
out:
    cJSON_Delete(r);
    cJSON_Delete(doc);
    return rc;
}

/* Attributes an update removed (in before, not in after) appear as
 * tombstones, so the receiver learns which went: rendered in the
 * subscription's format (normalized {type, value|object|...: null},
 * concise and keyValues the shortest form that still reads as that type).
 * Only those notification.attributes selects. */
static int add_deleted(const struct sub *s, const struct store_event *ev, const char *at,
                       cJSON *out, struct err *e)
{
    const cJSON *b, *after = get(ev->after, "attrs");
    cJSON *doc = cJSON_CreateObject(), *attrs, *r = NULL, *it;
    int rc = 0;

    if (doc == NULL || (attrs = cJSON_AddObjectToObject(doc, "attrs")) == NULL)
        goto oom;
    cJSON_ArrayForEach(b, get(ev->before, "attrs"))
    {
        cJSON *t;
        const cJSON *a = get(after, b->string);
        if (a != NULL) { /* stays, perhaps with fewer datasetIds */
            if ((rc = add_dropped_instances(s, b, a, at, out, e)) != 0)
                goto out;
            continue;
        }
        if ((t = tombstone(s, b, at)) == NULL || !cJSON_AddItemToObject(attrs, b->string, t)) {
            cJSON_Delete(t);
            goto oom;
        }
    }
    if (attrs->child == NULL)
        goto out;
    if ((rc = render_as_sub(s, doc, &r, e)) != 0)
        goto out;
    while ((it = r->child) != NULL) {
        cJSON_DetachItemViaPointer(r, it);
        if (get(out, it->string) != NULL) { /* a name the after document already uses */
            cJSON_Delete(it);
            continue;
        }
        if (!cJSON_AddItemToObject(out, it->string, it)) {
            cJSON_Delete(it);
            goto oom;
        }
    }
    goto out;
oom:
    rc = err_set(e, ERR_NOMEM, "out of memory");
out:
    cJSON_Delete(r);
    cJSON_Delete(doc);
    return rc;
}

/* A deleted entity (5.8.6): its id, type, deletedAt (always) and, under
 * sysAttrs, createdAt and modifiedAt; a tombstone for each attribute that
 * notification.attributes selects when entityDeleted fired with
 * showChanges (their previous values come with add_previous), else for
 * each one it watches (all when it watches none) when attributeDeleted
 * fired. */
static int render_deleted(const struct sub *s, const struct store_event *ev, const char *at,
                          cJSON **out, struct err *e)
{
    unsigned fired = event_triggers(s, ev) & s->triggers;
    const cJSON *types = ent_doc_types(ev->before), *a, *v;
    cJSON *doc = cJSON_CreateObject(), *attrs;
    int rc;

    *out = NULL;
    if (doc == NULL || cJSON_AddStringToObject(doc, "id", ev->entity_id) == NULL ||
        !cJSON_AddItemToObject(doc, "type", types ? cJSON_Duplicate(types, 1)
                                                  : cJSON_CreateArray()) ||
        (attrs = cJSON_AddObjectToObject(doc, "attrs")) == NULL)
        goto oom;
    if (cJSON_IsString(v = get(ev->before, "createdAt")) &&
        !cJSON_AddStringToObject(doc, "createdAt", v->valuestring))
        goto oom;
    if (cJSON_IsString(v = get(ev->before, "modifiedAt")) &&
        !cJSON_AddStringToObject(doc, "modifiedAt", v->valuestring))
        goto oom;
    cJSON_ArrayForEach(a, get(ev->before, "attrs"))
    {
        cJSON *t;
        if (!((fired & SUB_ATTR_DELETED) && watched(s, a->string)) &&
            !((fired & SUB_ENTITY_DELETED) && s->show_changes))
            continue;
        if ((t = tombstone(s, a, at)) == NULL || !cJSON_AddItemToObject(attrs, a->string, t)) {
            cJSON_Delete(t);
            goto oom;
        }
    }
    rc = render_as_sub(s, doc, out, e);
    cJSON_Delete(doc);
    if (rc)
        return rc;
    if (cJSON_AddStringToObject(*out, "deletedAt", at) == NULL) {
        cJSON_Delete(*out);
        *out = NULL;
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
oom:
    cJSON_Delete(doc);
    return err_set(e, ERR_NOMEM, "out of memory");
}

int sub_render_entity(const struct sub *s, const struct store_event *ev, const char *at,
                      cJSON **out, struct err *e)
{
    struct ent_render_opts ro = render_opts(s);
    int rc;

    ro.lang = s->lang;
    *out = NULL;
    if (ev->kind == STORE_EV_DELETED)
        rc = render_deleted(s, ev, at, out, e);
    else
        rc = ent_render(ev->after, &ro, out, e);
    if (rc)
        return rc;
    if (ev->kind == STORE_EV_UPDATED && ev->before && (rc = add_deleted(s, ev, at, *out, e)) != 0)
        goto fail;
    if (s->show_changes && ev->kind != STORE_EV_CREATED && ev->before &&
        s->format != ENT_KEYVALUES && add_previous(s, ev, *out) != 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    return 0;
fail:
    cJSON_Delete(*out);
    *out = NULL;
    return rc;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* 128 bits per id from a per-thread generator seeded once from getrandom
 * (one syscall per thread, not per notification): ids only need to be
 * unique and unguessable enough, not secret. */
void sub_random_id(const char *prefix, char *out, size_t cap)
{
    static _Thread_local uint64_t state[2];
    static _Thread_local int seeded;
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(prefix);
    uint64_t w[2];

    if (!seeded) {
        if (getrandom(state, sizeof(state), 0) != (ssize_t)sizeof(state)) {
            /* no entropy source: time and address, unique enough within a process */
            static unsigned long counter;
            state[0] = (uint64_t)tm_mono_us() ^ (uint64_t)(uintptr_t)out;
            state[1] = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 2654435761UL;
        }
        seeded = 1;
    }
    w[0] = splitmix64(&state[0]);
    w[1] = splitmix64(&state[1]);
    if (cap < len + 33) {
        if (cap)
            out[0] = '\0';
        return;
    }
    memcpy(out, prefix, len);
    for (int i = 0; i < 32; i++)
        out[len + (size_t)i] = hex[(w[i / 16] >> (4 * (i % 16))) & 15];
    out[len + 32] = '\0';
}

cJSON *sub_notification(const struct sub *s, const cJSON *ctx_value, cJSON *data, const char *now)
{
    char id[64];
    cJSON *n = cJSON_CreateObject();
    if (n == NULL) {
        cJSON_Delete(data);
        return NULL;
    }
    sub_random_id("urn:ngsi-ld:Notification:", id, sizeof(id));
    cJSON_AddStringToObject(n, "id", id);
    cJSON_AddStringToObject(n, "type", "Notification");
    cJSON_AddStringToObject(n, "subscriptionId", s->id);
    cJSON_AddStringToObject(n, "notifiedAt", now);
    cJSON_AddItemToObject(n, "data", data);
    if (s->accept_ld)
        cJSON_AddItemToObject(n, "@context", ctx_value ? cJSON_Duplicate(ctx_value, 1)
                                                       : cJSON_CreateString(LD_CORE_URL));
    return n;
}

cJSON *sub_render(const cJSON *stored, const struct ld_ctx *ctx, int64_t now_ms, int sys_attrs)
{
    cJSON *d = cJSON_Duplicate(stored, 1), *it, *n, *st;
    const cJSON *active, *expires;
    int64_t exp_ms = 0;
    const char *status = "active";
    static const char *const counters[] = {"timesSent", "timesFailed", "timesDropped",
                                           "lastNotification", "lastSuccess", "lastFailure"};

    if (d == NULL)
        return NULL;
    if (ctx == NULL)
        ctx = ld_core();
    cJSON_DeleteItemFromObjectCaseSensitive(d, "@context");
    st = cJSON_DetachItemFromObjectCaseSensitive(d, "_status");
    if (cJSON_IsArray(it = get(d, "entities"))) {
        cJSON *sel;
        cJSON_ArrayForEach(sel, it) if (compact_string(get(sel, "type"), ctx) != 0) goto oom;
    }
    if (compact_array(get(d, "watchedAttributes"), ctx) != 0)
        goto oom;
    if (cJSON_IsObject(it = get(d, "geoQ")) && compact_string(get(it, "geoproperty"), ctx) != 0)
        goto oom;
    active = get(d, "isActive");
    expires = get(d, "expiresAt");
    if (cJSON_IsString(expires) && tm_parse(expires->valuestring, &exp_ms) == 0 && exp_ms <= now_ms)
        status = "expired";
    else if (cJSON_IsFalse(active))
        status = "paused";
    if (!cJSON_HasObjectItem(d, "isActive"))
        cJSON_AddBoolToObject(d, "isActive", 1);
    cJSON_AddStringToObject(d, "status", status);
    for (size_t i = 0; sys_attrs && i < 2; i++) {
        const char *name = i == 0 ? "createdAt" : "modifiedAt";
        const cJSON *t = get(st, name);
        if (cJSON_IsString(t) && t->valuestring[0] &&
            !cJSON_AddStringToObject(d, name, t->valuestring))
            goto oom;
    }
    if (cJSON_IsObject(n = get(d, NOTIF))) {
        if (compact_array(get(n, "attributes"), ctx) != 0)
            goto oom;
        if (!cJSON_HasObjectItem(n, "format"))
            cJSON_AddStringToObject(n, "format", "normalized");
        for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
            const cJSON *c = get(st, counters[i]);
            if (c)
                cJSON_AddItemToObject(n, counters[i], cJSON_Duplicate(c, 1));
        }
        const cJSON *ok = get(st, "ok");
        if (cJSON_IsBool(ok))
            cJSON_AddStringToObject(n, "status", cJSON_IsTrue(ok) ? "ok" : "failed");
    }
    cJSON_Delete(st);
    return d;
oom:
    cJSON_Delete(st);
    cJSON_Delete(d);
    return NULL;
}
