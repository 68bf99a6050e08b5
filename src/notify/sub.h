/*
 * sub.h - the NGSI-LD Subscription (GS CIM 009 v1.8, data type 5.2.12):
 * validation, the stored (expanded) form, compilation into a matcher, event
 * matching, and rendering of subscriptions and notification data.
 *
 * Forms of a subscription:
 *   input      the request body, names compacted against the caller's
 *              @context;
 *   stored     sub_expand's output: the same members, but entity types,
 *              watchedAttributes, notification.attributes and
 *              geoQ.geoproperty are absolute IRIs (q keeps its text and is
 *              expanded at compile time with the creation context). The
 *              notify layer adds "@context" (the creation @context value) and
 *              "_status" (counters) before persisting it;
 *   compiled   struct sub: parsed selectors, regexes, q, geometry and
 *              notification parameters, immutable after sub_compile.
 *
 * Pure functions on their arguments: any thread. A struct sub is read-only
 * after compilation and may be shared by threads that do not free it.
 */
#ifndef PL_SUB_H
#define PL_SUB_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ld/ld.h"
#include "model/entity.h"
#include "query/geo.h"
#include "store/store.h"
#include "util/err.h"

/* notificationTrigger values (bits). */
enum sub_trigger {
    SUB_ENTITY_CREATED = 1,
    SUB_ENTITY_UPDATED = 2,
    SUB_ENTITY_DELETED = 4,
    SUB_ATTR_CREATED = 8,
    SUB_ATTR_UPDATED = 16,
    SUB_ATTR_DELETED = 32,
};
/* GS CIM 009 v1.8 5.2.12: without notificationTrigger, attributeCreated and
 * attributeUpdated (an entity's creation creates its attributes). */
#define SUB_TRIGGER_DEFAULT (SUB_ATTR_CREATED | SUB_ATTR_UPDATED)

/* Transports of notification.endpoint.uri. SUB_SSE: the endpoint is only
 * the subscription's server-sent-events stream (GET
 * /subscriptions/{id}/stream); NGSI-LD requires endpoint.uri, so such a
 * subscription names the URN SUB_SSE_URI. */
enum sub_transport { SUB_HTTP = 1, SUB_MQTT, SUB_SSE };
#define SUB_SSE_URI "urn:pilotlight:sse"

/* Caps on untrusted input (BadRequestData beyond). */
#define SUB_MAX_SELECTORS 100
#define SUB_MAX_ATTRS 200
#define SUB_MAX_HEADERS 32
#define SUB_MAX_URI 2048

struct sub_selector {
    char *id;   /* NULL = any */
    char *type; /* expanded IRI, NULL = any */
    regex_t re; /* idPattern, when has_re */
    int has_re;
};

struct sub {
    char *id;
    const struct ld_ctx *ctx;     /* creation context (retained) */
    struct sub_selector *sels;    /* none: every entity */
    size_t n_sels;
    char **watched;               /* watchedAttributes (IRIs); none: all */
    size_t n_watched;
    unsigned triggers;            /* enum sub_trigger bits */
    struct q_expr *q;
    struct scopeq *scopeq;        /* scopeQ, NULL if none */
    struct geo_rel georel;
    struct geo_shape *geometry;   /* geoQ, NULL if none */
    char *geoproperty;            /* IRI */
    char **pick;                  /* notification.attributes + "id", "type" */
    size_t n_pick;                /* 0: every attribute */
    enum ent_format format;
    int sys_attrs, show_changes;
    char *lang; /* the subscription's lang (LanguageProperty choice), or NULL */
    enum sub_transport transport;
    char *uri;
    int accept_ld;                /* endpoint.accept application/ld+json */
    char **headers;               /* receiverInfo as "key: value" */
    size_t n_headers;
    int mqtt_qos;                 /* notifierInfo (or receiverInfo) MQTT-QoS: 0 or 1 */
    int64_t expires_ms;           /* 0 = never */
    int64_t throttling_ms;        /* 0 = none */
    int64_t interval_ms;          /* timeInterval, 0 = none */
    int active;                   /* isActive */
};

/* Turn an input subscription (or, with fragment, a PATCH fragment) into the
 * stored form, expanding names with ctx (NULL = core). Read-only status
 * members and "@context" are dropped. Members of the wrong JSON type are
 * copied unchanged for sub_compile to reject. Errors: ERR_INVALID_REQUEST
 * (not a JSON object), ERR_BAD_DATA (a top-level member the Subscription
 * data type (GS CIM 009 5.2.12) does not have, or one pilotlight does not
 * support: csf, temporalQ, jsonldContext; an empty fragment),
 * ERR_NOMEM. Caller frees *out. */
int sub_expand(const cJSON *body, const struct ld_ctx *ctx, int fragment, cJSON **out,
               struct err *e);

/* Validate a stored-form subscription (with its "id") and compile it. ctx is
 * the creation context (q expansion; retained by the sub). Errors:
 * ERR_BAD_DATA with the member at fault in the detail, ERR_NOMEM. Caller
 * frees *out with sub_free. */
int sub_compile(const cJSON *doc, const struct ld_ctx *ctx, struct sub **out, struct err *e);
void sub_free(struct sub *s);

/* Merge a stored-form PATCH fragment into a stored document (5.8.2: each
 * member given replaces the old one; notification members one by one; a JSON
 * null removes a member). Returns 0 or ERR_NOMEM / ERR_BAD_DATA (id or type
 * changed). */
int sub_merge(cJSON *doc, const cJSON *frag, struct err *e);

/* Which of the subscription's triggers an event fires (0: none), from the
 * before/after documents and watchedAttributes (an entity's deletion fires
 * entityDeleted, and attributeDeleted when it had a watched attribute);
 * then the entity selectors,
 * q, scopeQ and geoQ must hold (on the after document; on the before document for a
 * deletion). isActive, expiresAt and throttling are the caller's. */
unsigned sub_match(const struct sub *s, const struct store_event *ev);

/* 1 if an entity document satisfies the entity selectors, q, scopeQ and
 * geoQ (timeInterval subscriptions, which ignore triggers). */
int sub_selects(const struct sub *s, const cJSON *doc);

/* One notification data item for an event: the after document rendered as
 * the subscription asks (format, attributes, sysAttrs, showChanges,
 * compacted with its context), with a tombstone (the NGSI-LD null in the
 * shape of its type, deletedAt = at under sysAttrs) for each attribute the
 * change removed. An entity's deletion gives {id, type, deletedAt: at}
 * (createdAt, modifiedAt under sysAttrs) and, when attributeDeleted fired,
 * a tombstone for each watched attribute (every one when it watches none).
 * at: when the write happened (store_event.at). Caller frees. */
int sub_render_entity(const struct sub *s, const struct store_event *ev, const char *at,
                      cJSON **out, struct err *e);

/* The NGSI-LD Notification {id, type, subscriptionId, notifiedAt, data}
 * (takes ownership of data; "@context" added when the endpoint accepts
 * application/ld+json, ctx_value is the creation @context). Caller frees. */
cJSON *sub_notification(const struct sub *s, const cJSON *ctx_value, cJSON *data,
                        const char *now);

/* Render a stored document (with "_status") for output compacted with ctx:
 * internal members dropped, status ("active", "paused", "expired" at
 * now_ms) and notification.{status, timesSent, ...} added; with sys_attrs
 * (options=sysAttrs, GS CIM 009 6.3.11) also createdAt and modifiedAt.
 * Caller frees; NULL when out of memory. */
cJSON *sub_render(const cJSON *stored, const struct ld_ctx *ctx, int64_t now_ms, int sys_attrs);

/* prefix + 32 random hex digits into out (cap >= strlen(prefix) + 33). */
void sub_random_id(const char *prefix, char *out, size_t cap);

#endif
