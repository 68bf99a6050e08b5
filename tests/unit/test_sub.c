/*
 * test_sub.c - notify/sub.c: expansion, validation, PATCH merge, matching
 * (triggers, watchedAttributes, selectors, q) and rendering; query/scopeq.c
 * (scopeQ parsing and matching).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify/mqtt.h"
#include "notify/sub.h"
#include "query/scopeq.h"

#define DV LD_DEFAULT_VOCAB

static cJSON *J(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

/* expand + compile; returns the error code */
static int compile_text(const char *text, struct sub **out, struct err *e)
{
    cJSON *body = J(text), *doc = NULL;
    int rc = sub_expand(body, NULL, 0, &doc, e);
    if (rc == 0)
        rc = sub_compile(doc, NULL, out, e);
    cJSON_Delete(body);
    cJSON_Delete(doc);
    return rc;
}

static void test_expand(void **state)
{
    (void)state;
    struct err e = {0};
    cJSON *doc = NULL;
    cJSON *body = J("{\"type\":\"Subscription\",\"@context\":\"x\",\"status\":\"active\","
                    "\"entities\":[{\"type\":\"Sensor\"}],\"watchedAttributes\":[\"temp\"],"
                    "\"geoQ\":{\"geoproperty\":\"loc\"},"
                    "\"notification\":{\"attributes\":[\"temp\",\"location\"],\"timesSent\":4}}");
    assert_int_equal(sub_expand(body, NULL, 0, &doc, &e), 0);
    assert_null(cJSON_GetObjectItem(doc, "@context"));
    assert_null(cJSON_GetObjectItem(doc, "status"));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "entities"), 0), "type")
            ->valuestring,
        DV "Sensor");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "watchedAttributes"), 0)
                            ->valuestring,
                        DV "temp");
    cJSON *n = cJSON_GetObjectItem(doc, "notification");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(n, "attributes"), 1)->valuestring,
                        "https://uri.etsi.org/ngsi-ld/location");
    assert_null(cJSON_GetObjectItem(n, "timesSent"));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "geoQ"), "geoproperty")
                            ->valuestring,
                        DV "loc");
    cJSON_Delete(doc);
    cJSON_Delete(body);

    cJSON *arr = J("[1]");
    assert_int_equal(sub_expand(arr, NULL, 0, &doc, &e), ERR_INVALID_REQUEST);
    assert_null(doc);
    cJSON_Delete(arr);
}

static void test_compile_ok(void **state)
{
    (void)state;
    struct err e = {0};
    struct sub *s = NULL;
    assert_int_equal(
        compile_text("{\"id\":\"urn:s:1\",\"type\":\"Subscription\","
                     "\"entities\":[{\"type\":\"Sensor\"},{\"idPattern\":\"^urn:x\"}],"
                     "\"notificationTrigger\":[\"entityDeleted\",\"attributeUpdated\"],"
                     "\"throttling\":2.5,\"expiresAt\":\"2030-01-01T00:00:00Z\","
                     "\"isActive\":false,\"q\":\"temp>3\","
                     "\"notification\":{\"format\":\"concise\",\"attributes\":[\"temp\"],"
                     "\"endpoint\":{\"uri\":\"https://r.example/n\",\"accept\":"
                     "\"application/ld+json\",\"receiverInfo\":[{\"key\":\"X-K\",\"value\":\"v\"}]}}}",
                     &s, &e),
        0);
    assert_string_equal(s->id, "urn:s:1");
    assert_int_equal(s->n_sels, 2);
    assert_string_equal(s->sels[0].type, DV "Sensor");
    assert_true(s->sels[1].has_re);
    assert_int_equal(s->triggers, SUB_ENTITY_DELETED | SUB_ATTR_UPDATED);
    assert_int_equal(s->throttling_ms, 2500);
    assert_int_equal(s->expires_ms, 1893456000000LL);
    assert_int_equal(s->active, 0);
    assert_int_equal(s->format, ENT_CONCISE);
    assert_int_equal(s->n_pick, 3);
    assert_string_equal(s->pick[0], DV "temp");
    assert_int_equal(s->transport, SUB_HTTP);
    assert_true(s->accept_ld);
    assert_int_equal(s->n_headers, 1);
    assert_string_equal(s->headers[0], "X-K: v");
    sub_free(s);

    /* defaults; watchedAttributes alone; mqtt accepted */
    assert_int_equal(compile_text("{\"id\":\"urn:s:2\",\"type\":\"Subscription\","
                                  "\"watchedAttributes\":[\"a\"],"
                                  "\"notification\":{\"endpoint\":{\"uri\":\"mqtt://b:1883/t\"}}}",
                                  &s, &e),
                     0);
    assert_int_equal(s->triggers, SUB_TRIGGER_DEFAULT);
    assert_int_equal(s->active, 1);
    assert_int_equal(s->n_sels, 0);
    assert_int_equal(s->transport, SUB_MQTT);
    assert_int_equal(s->format, ENT_NORMALIZED);
    assert_int_equal(s->mqtt_qos, 0);
    sub_free(s);

    /* MQTT-QoS from notifierInfo */
    assert_int_equal(compile_text("{\"id\":\"urn:s:3\",\"type\":\"Subscription\","
                                  "\"watchedAttributes\":[\"a\"],"
                                  "\"notification\":{\"endpoint\":{\"uri\":\"mqtts://b/t\","
                                  "\"notifierInfo\":[{\"key\":\"MQTT-Version\",\"value\":"
                                  "\"mqtt5.0\"},{\"key\":\"MQTT-QoS\",\"value\":\"1\"}]}}}",
                                  &s, &e),
                     0);
    assert_int_equal(s->mqtt_qos, 1);
    sub_free(s);
}

static void test_mqtt_uri(void **state)
{
    (void)state;
    struct mqtt_uri u;
    struct err e = {0};
    assert_int_equal(mqtt_uri_parse("mqtt://broker.example/city/sensors", &u, &e), 0);
    assert_false(u.tls);
    assert_string_equal(u.host, "broker.example");
    assert_int_equal(u.port, 1883);
    assert_string_equal(u.user, "");
    assert_false(u.has_password);
    assert_string_equal(u.topic, "city/sensors");

    assert_int_equal(mqtt_uri_parse("mqtts://al%40x:p%3Aw@[::1]:9999/t", &u, &e), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 9999);
    assert_string_equal(u.user, "al@x");
    assert_true(u.has_password);
    assert_string_equal(u.password, "p:w");
    assert_string_equal(u.topic, "t");

    assert_int_equal(mqtt_uri_parse("mqtts://user@h/t", &u, &e), 0);
    assert_int_equal(u.port, 8883);
    assert_string_equal(u.user, "user");
    assert_false(u.has_password);

    static const char *bad[] = {
        "http://h/t", "mqtt://h", "mqtt://h/", "mqtt://h/a/#", "mqtt://h/+/b",
        "mqtt://h:0/t", "mqtt://h:65536/t", "mqtt://h:12x/t", "mqtt://h:/t", "mqtt://:1883/t",
        "mqtt://[::1/t", "mqtt://u:%zz@h/t", "mqtt://u:%4@h/t", "mqtt://[::1]x/t", NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err be = {0};
        assert_int_equal(mqtt_uri_parse(bad[i], &u, &be), ERR_BAD_DATA);
        assert_true(be.detail[0] != '\0');
    }
    char longhost[400];
    memset(longhost, 'h', sizeof(longhost));
    memcpy(longhost, "mqtt://", 7);
    strcpy(longhost + sizeof(longhost) - 3, "/t");
    assert_int_equal(mqtt_uri_parse(longhost, &u, &e), ERR_BAD_DATA);
}

static void test_mqtt_pool_down(void **state)
{
    (void)state;
    char reason[160] = "";
    struct mqtt_pool *p = mqtt_pool_new(1, 2000);
    assert_non_null(p);
    /* port 1 on loopback: nothing listens; fails without waiting the timeout */
    assert_int_equal(mqtt_pool_publish(p, "mqtt://127.0.0.1:1/t", "x", 1, 0, reason,
                                       sizeof(reason)),
                     -1);
    assert_non_null(strstr(reason, "MQTT"));
    /* a second broker is over the cap */
    assert_int_equal(mqtt_pool_publish(p, "mqtt://127.0.0.1:2/t", "x", 1, 1, reason,
                                       sizeof(reason)),
                     -1);
    assert_non_null(strstr(reason, "too many MQTT brokers"));
    assert_int_equal(mqtt_pool_publish(p, "mqtt://127.0.0.1:1/t", "x", 1, 2, reason,
                                       sizeof(reason)),
                     -1);
    assert_int_equal(mqtt_pool_publish(p, "mqtt://127.0.0.1:1/", "x", 1, 0, reason,
                                       sizeof(reason)),
                     -1);
    mqtt_pool_stop(p);
    assert_int_equal(mqtt_pool_publish(p, "mqtt://127.0.0.1:1/t", "x", 1, 0, reason,
                                       sizeof(reason)),
                     -1);
    assert_string_equal(reason, "MQTT transport stopped");
    mqtt_pool_free(p);
    mqtt_pool_free(NULL);
}

static void test_compile_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Sub\",\"entities\":[{\"type\":\"A\"}],\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}]}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"notification\":{\"endpoint\":{\"uri\":\"gopher://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"idPattern\":\"[\"}],\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"q\":\"(a\",\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"timeInterval\":0,\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"timeInterval\":5,\"throttling\":1,\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"notificationTrigger\":[],\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"notification\":{\"endpoint\":{\"uri\":\"http://x\",\"receiverInfo\":[{\"key\":\"A B\",\"value\":\"v\"}]}}}",
        "{\"id\":\"urn:s\",\"type\":\"Subscription\",\"entities\":[{\"type\":\"A\"}],\"geoQ\":{\"georel\":\"within\",\"geometry\":\"Point\",\"coordinates\":[1,2,3,4]},\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err e = {0};
        struct sub *s = NULL;
        int rc = compile_text(bad[i], &s, &e);
        if (rc != ERR_BAD_DATA)
            fail_msg("case %zu: rc %d (%s)", i, rc, e.detail);
        assert_null(s);
        assert_true(e.detail[0] != '\0');
    }
}

static void test_merge(void **state)
{
    (void)state;
    struct err e = {0};
    cJSON *doc = J("{\"id\":\"urn:s\",\"type\":\"Subscription\",\"q\":\"a>1\","
                   "\"notification\":{\"format\":\"keyValues\",\"endpoint\":{\"uri\":\"http://x\"}}}");
    cJSON *frag = J("{\"q\":null,\"isActive\":false,\"notification\":{\"format\":\"concise\"}}");
    assert_int_equal(sub_merge(doc, frag, &e), 0);
    assert_null(cJSON_GetObjectItem(doc, "q"));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(doc, "isActive")));
    cJSON *n = cJSON_GetObjectItem(doc, "notification");
    assert_string_equal(cJSON_GetObjectItem(n, "format")->valuestring, "concise");
    assert_non_null(cJSON_GetObjectItem(n, "endpoint"));
    cJSON_Delete(frag);
    frag = J("{\"id\":\"urn:other\"}");
    assert_int_equal(sub_merge(doc, frag, &e), ERR_BAD_DATA);
    cJSON_Delete(frag);
    cJSON_Delete(doc);
}

#define DOC(id, temp, extra)                                                                       \
    "{\"id\":\"" id "\",\"type\":[\"" DV "Sensor\"],\"attrs\":{\"" DV                              \
    "temp\":[{\"type\":\"Property\",\"value\":" temp "}]" extra "}}"

static unsigned match(const struct sub *s, int kind, const char *before, const char *after)
{
    cJSON *b = before ? J(before) : NULL, *a = after ? J(after) : NULL;
    struct store_event ev = {.kind = kind, .tenant = "", .entity_id = "urn:x", .before = b,
                             .after = a};
    unsigned t = sub_match(s, &ev);
    cJSON_Delete(b);
    cJSON_Delete(a);
    return t;
}

static void test_match(void **state)
{
    (void)state;
    struct err e = {0};
    struct sub *s = NULL;
    assert_int_equal(compile_text("{\"id\":\"urn:s\",\"type\":\"Subscription\","
                                  "\"entities\":[{\"type\":\"Sensor\"}],\"watchedAttributes\":[\"hum\"],"
                                  "\"q\":\"temp>3\",\"notificationTrigger\":[\"attributeCreated\","
                                  "\"attributeUpdated\",\"attributeDeleted\",\"entityDeleted\"],"
                                  "\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
                                  &s, &e),
                     0);
    const char *hum = ",\"" DV "hum\":[{\"type\":\"Property\",\"value\":1}]";
    const char *hum2 = ",\"" DV "hum\":[{\"type\":\"Property\",\"value\":2}]";
    /* created with the watched attribute, q holds */
    char before[512], after[512];
    snprintf(after, sizeof(after), DOC("urn:a", "5", "%s"), hum);
    assert_int_equal(match(s, STORE_EV_CREATED, NULL, after), SUB_ATTR_CREATED);
    /* q fails */
    snprintf(after, sizeof(after), DOC("urn:a", "1", "%s"), hum);
    assert_int_equal(match(s, STORE_EV_CREATED, NULL, after), 0);
    /* an unwatched attribute changes: nothing */
    snprintf(before, sizeof(before), DOC("urn:a", "5", "%s"), hum);
    snprintf(after, sizeof(after), DOC("urn:a", "6", "%s"), hum);
    assert_int_equal(match(s, STORE_EV_UPDATED, before, after), 0);
    /* the watched one changes */
    snprintf(after, sizeof(after), DOC("urn:a", "6", "%s"), hum2);
    assert_int_equal(match(s, STORE_EV_UPDATED, before, after), SUB_ATTR_UPDATED);
    /* deleted attribute */
    snprintf(after, sizeof(after), DOC("urn:a", "6", "%s"), "");
    assert_int_equal(match(s, STORE_EV_UPDATED, before, after), SUB_ATTR_DELETED);
    /* entity deleted (q on the before document): its watched attribute goes too */
    assert_int_equal(match(s, STORE_EV_DELETED, before, NULL),
                     SUB_ENTITY_DELETED | SUB_ATTR_DELETED);
    /* an entity without the watched attribute: only entityDeleted */
    snprintf(before, sizeof(before), DOC("urn:a", "5", "%s"), "");
    assert_int_equal(match(s, STORE_EV_DELETED, before, NULL), SUB_ENTITY_DELETED);
    /* another type */
    assert_int_equal(match(s, STORE_EV_DELETED,
                           "{\"id\":\"urn:b\",\"type\":[\"" DV "Other\"],\"attrs\":{}}", NULL),
                     0);
    sub_free(s);

    /* id and idPattern selectors, default triggers */
    assert_int_equal(compile_text("{\"id\":\"urn:s\",\"type\":\"Subscription\","
                                  "\"entities\":[{\"id\":\"urn:a\"},{\"idPattern\":\"^urn:p\"}],"
                                  "\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}}}",
                                  &s, &e),
                     0);
    snprintf(after, sizeof(after), DOC("urn:a", "5", "%s"), "");
    assert_int_equal(match(s, STORE_EV_CREATED, NULL, after), SUB_ATTR_CREATED);
    snprintf(after, sizeof(after), DOC("urn:pq", "5", "%s"), "");
    assert_int_equal(match(s, STORE_EV_CREATED, NULL, after), SUB_ATTR_CREATED);
    snprintf(after, sizeof(after), DOC("urn:b", "5", "%s"), "");
    assert_int_equal(match(s, STORE_EV_CREATED, NULL, after), 0);
    /* deletion is not a default trigger */
    snprintf(before, sizeof(before), DOC("urn:a", "5", "%s"), "");
    assert_int_equal(match(s, STORE_EV_DELETED, before, NULL), 0);
    sub_free(s);
}

static void test_render(void **state)
{
    (void)state;
    struct err e = {0};
    struct sub *s = NULL;
    cJSON *out = NULL;
    assert_int_equal(compile_text("{\"id\":\"urn:s\",\"type\":\"Subscription\","
                                  "\"entities\":[{\"type\":\"Sensor\"}],"
                                  "\"notification\":{\"format\":\"keyValues\",\"attributes\":[\"temp\"],"
                                  "\"endpoint\":{\"uri\":\"http://x\"}}}",
                                  &s, &e),
                     0);
    cJSON *after = J(DOC("urn:a", "5", ",\"" DV "hum\":[{\"type\":\"Property\",\"value\":1}]"));
    struct store_event ev = {.kind = STORE_EV_CREATED, .after = after, .entity_id = "urn:a"};
    assert_int_equal(sub_render_entity(s, &ev, "2026-01-01T00:00:00.000Z", &out, &e), 0);
    char *text = cJSON_PrintUnformatted(out);
    assert_string_equal(text, "{\"id\":\"urn:a\",\"type\":\"Sensor\",\"temp\":5}");
    free(text);
    cJSON_Delete(out);

    struct store_event del = {.kind = STORE_EV_DELETED, .before = after, .entity_id = "urn:a"};
    assert_int_equal(sub_render_entity(s, &del, "2026-01-01T00:00:00.000Z", &out, &e), 0);
    text = cJSON_PrintUnformatted(out);
    assert_string_equal(text, "{\"id\":\"urn:a\",\"type\":\"Sensor\","
                              "\"deletedAt\":\"2026-01-01T00:00:00.000Z\"}");
    free(text);

    cJSON *n = sub_notification(s, NULL, cJSON_CreateArray(), "2026-01-01T00:00:00.000Z");
    assert_string_equal(cJSON_GetObjectItem(n, "type")->valuestring, "Notification");
    assert_string_equal(cJSON_GetObjectItem(n, "subscriptionId")->valuestring, "urn:s");
    assert_int_equal(strlen(cJSON_GetObjectItem(n, "id")->valuestring),
                     strlen("urn:ngsi-ld:Notification:") + 32);
    assert_null(cJSON_GetObjectItem(n, "@context"));
    cJSON_Delete(n);
    cJSON_Delete(out);
    cJSON_Delete(after);
    sub_free(s);

    /* attributeDeleted fired by a deletion: the watched attribute as a
     * tombstone in its type's shape, with the entity's and its sysAttrs */
    assert_int_equal(compile_text("{\"id\":\"urn:s\",\"type\":\"Subscription\","
                                  "\"entities\":[{\"type\":\"Sensor\"}],"
                                  "\"watchedAttributes\":[\"hum\"],"
                                  "\"notificationTrigger\":[\"attributeDeleted\"],"
                                  "\"notification\":{\"sysAttrs\":true,"
                                  "\"endpoint\":{\"uri\":\"http://x\"}}}",
                                  &s, &e),
                     0);
    cJSON *gone = J("{\"id\":\"urn:a\",\"type\":[\"" DV "Sensor\"],\"createdAt\":\"c\","
                    "\"modifiedAt\":\"m\",\"attrs\":{\"" DV "temp\":[{\"type\":\"Property\","
                    "\"value\":5}],\"" DV "hum\":[{\"type\":\"LanguageProperty\","
                    "\"languageMap\":{\"en\":\"x\"},\"createdAt\":\"hc\"}]}}");
    del.before = gone;
    assert_int_equal(sub_render_entity(s, &del, "2026-01-01T00:00:00.000Z", &out, &e), 0);
    text = cJSON_PrintUnformatted(out);
    assert_string_equal(text, "{\"id\":\"urn:a\",\"type\":\"Sensor\",\"createdAt\":\"c\","
                              "\"modifiedAt\":\"m\",\"hum\":{\"type\":\"LanguageProperty\","
                              "\"languageMap\":{\"@none\":\"urn:ngsi-ld:null\"},"
                              "\"deletedAt\":\"2026-01-01T00:00:00.000Z\",\"createdAt\":\"hc\"},"
                              "\"deletedAt\":\"2026-01-01T00:00:00.000Z\"}");
    free(text);
    cJSON_Delete(out);
    cJSON_Delete(gone);
    sub_free(s);

    /* sub_render: status members and compaction */
    cJSON *stored = J("{\"id\":\"urn:s\",\"type\":\"Subscription\",\"@context\":\"x\","
                      "\"entities\":[{\"type\":\"" DV "Sensor\"}],\"isActive\":true,"
                      "\"expiresAt\":\"2020-01-01T00:00:00Z\","
                      "\"notification\":{\"endpoint\":{\"uri\":\"http://x\"}},"
                      "\"_status\":{\"timesSent\":3,\"timesFailed\":1,\"ok\":false,"
                      "\"createdAt\":\"2026-01-01T00:00:00.000Z\","
                      "\"modifiedAt\":\"2026-01-02T00:00:00.000Z\"}}");
    out = sub_render(stored, NULL, 1700000000000LL, 0);
    assert_null(cJSON_GetObjectItem(out, "createdAt"));
    assert_null(cJSON_GetObjectItem(out, "modifiedAt"));
    cJSON_Delete(out);
    out = sub_render(stored, NULL, 1700000000000LL, 1); /* options=sysAttrs */
    assert_string_equal(cJSON_GetObjectItem(out, "createdAt")->valuestring,
                        "2026-01-01T00:00:00.000Z");
    assert_string_equal(cJSON_GetObjectItem(out, "modifiedAt")->valuestring,
                        "2026-01-02T00:00:00.000Z");
    assert_null(cJSON_GetObjectItem(out, "@context"));
    assert_null(cJSON_GetObjectItem(out, "_status"));
    assert_string_equal(cJSON_GetObjectItem(out, "status")->valuestring, "expired");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(out, "entities"), 0), "type")
            ->valuestring,
        "Sensor");
    cJSON *no = cJSON_GetObjectItem(out, "notification");
    assert_int_equal(cJSON_GetObjectItem(no, "timesSent")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(no, "status")->valuestring, "failed");
    assert_string_equal(cJSON_GetObjectItem(no, "format")->valuestring, "normalized");
    cJSON_Delete(out);
    cJSON_Delete(stored);
}

/* scopeQ against one entity scope list (JSON text; "null" = no scope) */
static int scope_match(const char *query, const char *scopes)
{
    struct scopeq *q = NULL;
    struct err e = {0};
    cJSON *s = J(scopes);
    assert_int_equal(scopeq_parse(query, &q, &e), 0);
    int m = scopeq_match(q, cJSON_IsNull(s) ? NULL : s);
    scopeq_free(q);
    cJSON_Delete(s);
    return m;
}

static void test_scopeq(void **state)
{
    (void)state;
    /* exact */
    assert_int_equal(scope_match("/Madrid", "[\"/Madrid\"]"), 1);
    assert_int_equal(scope_match("/Madrid", "[\"/Madrid/Gardens\"]"), 0);
    assert_int_equal(scope_match("/Madrid", "[\"/Madri\"]"), 0);
    assert_int_equal(scope_match("/Madrid", "[\"/Madrid2\"]"), 0);
    assert_int_equal(scope_match("/Madrid", "\"/Madrid\""), 1);
    /* '#': this level and below */
    assert_int_equal(scope_match("/Madrid/#", "[\"/Madrid\"]"), 1);
    assert_int_equal(scope_match("/Madrid/#", "[\"/Madrid/Gardens/Parque\"]"), 1);
    assert_int_equal(scope_match("/Madrid/#", "[\"/Madridx/Gardens\"]"), 0);
    assert_int_equal(scope_match("/#", "[\"/Anything/at/all\"]"), 1);
    assert_int_equal(scope_match("/#", "null"), 0);
    assert_int_equal(scope_match("/#", "[]"), 0);
    /* '+': exactly one level */
    assert_int_equal(scope_match("/Madrid/+", "[\"/Madrid/Gardens\"]"), 1);
    assert_int_equal(scope_match("/Madrid/+", "[\"/Madrid\"]"), 0);
    assert_int_equal(scope_match("/Madrid/+", "[\"/Madrid/Gardens/Parque\"]"), 0);
    assert_int_equal(scope_match("/+/Gardens", "[\"/Madrid/Gardens\"]"), 1);
    assert_int_equal(scope_match("/+/+/#", "[\"/Madrid\"]"), 0);
    /* any of several scopes; ',' OR, ';' AND (binds tighter), () */
    assert_int_equal(scope_match("/Paris", "[\"/Madrid\", \"/Paris\"]"), 1);
    assert_int_equal(scope_match("/Paris,/Rome", "[\"/Rome\"]"), 1);
    assert_int_equal(scope_match("/Paris;/Rome", "[\"/Rome\"]"), 0);
    assert_int_equal(scope_match("/Paris;/Rome", "[\"/Rome\", \"/Paris\"]"), 1);
    assert_int_equal(scope_match("/A,/B;/C", "[\"/A\"]"), 1);
    assert_int_equal(scope_match("(/A,/B);/C", "[\"/A\"]"), 0);
    assert_int_equal(scope_match("(/A,/B);/C", "[\"/B\", \"/C\"]"), 1);
    /* syntax errors */
    const char *bad[] = {"", "Madrid", "/", "/Madrid/", "//a", "/a/#/b", "/a#", "/a b", "(/a",
                         "/a)", "/a;", ",/a", "/a,,/b", "/a/++", "()"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct scopeq *q = NULL;
        struct err e = {0};
        assert_int_equal(scopeq_parse(bad[i], &q, &e), ERR_INVALID_REQUEST);
        assert_null(q);
        assert_non_null(strstr(e.detail, "scopeQ"));
    }
    /* caps */
    char deep[200] = "", many[4200] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "(");
    strcat(deep, "/a");
    for (int i = 0; i < 20; i++)
        strcat(deep, ")");
    struct scopeq *q = NULL;
    struct err e = {0};
    assert_int_equal(scopeq_parse(deep, &q, &e), ERR_INVALID_REQUEST);
    for (int i = 0; i < 200; i++)
        strcat(many, i ? ",/a" : "/a");
    assert_int_equal(scopeq_parse(many, &q, &e), ERR_INVALID_REQUEST);
    scopeq_free(NULL);
}

static void test_sub_scopeq_and_sse(void **state)
{
    struct sub *s = NULL;
    struct err e = {0};
    (void)state;
    assert_int_equal(compile_text("{\"id\":\"urn:s:1\",\"type\":\"Subscription\","
                                  "\"entities\":[{\"type\":\"T\"}],\"scopeQ\":\"/Delft/#\","
                                  "\"notification\":{\"endpoint\":{\"uri\":\"urn:pilotlight:sse\"}}}",
                                  &s, &e), 0);
    assert_int_equal(s->transport, SUB_SSE);
    cJSON *in = J("{\"id\":\"urn:e:1\",\"type\":[\"" DV "T\"],\"scope\":[\"/Delft/Zuid\"],"
                   "\"attrs\":{\"" DV "a\":[{\"type\":\"Property\",\"value\":1}]}}");
    cJSON *out = J("{\"id\":\"urn:e:1\",\"type\":[\"" DV "T\"],\"scope\":[\"/Leiden\"],"
                    "\"attrs\":{\"" DV "a\":[{\"type\":\"Property\",\"value\":1}]}}");
    assert_int_equal(sub_selects(s, in), 1);
    assert_int_equal(sub_selects(s, out), 0);
    struct store_event ev = {.kind = STORE_EV_CREATED, .tenant = "", .entity_id = "urn:e:1",
                             .after = in};
    assert_int_not_equal(sub_match(s, &ev), 0);
    ev.after = out;
    assert_int_equal(sub_match(s, &ev), 0);
    cJSON_Delete(in);
    cJSON_Delete(out);
    sub_free(s);
    /* unknown members and empty fragments */
    cJSON *doc = NULL, *body = J("{\"type\":\"Subscription\",\"entitie\":[]}");
    memset(&e, 0, sizeof(e));
    assert_int_equal(sub_expand(body, NULL, 0, &doc, &e), ERR_BAD_DATA);
    assert_non_null(strstr(e.detail, "entitie"));
    cJSON_Delete(body);
    body = J("{\"@context\":\"http://x/c.jsonld\"}");
    memset(&e, 0, sizeof(e));
    assert_int_equal(sub_expand(body, NULL, 1, &doc, &e), ERR_BAD_DATA);
    assert_int_equal(sub_expand(body, NULL, 0, &doc, &e), 0); /* not a fragment: compile decides */
    cJSON_Delete(doc);
    cJSON_Delete(body);
}

static void test_random_id(void **state)
{
    (void)state;
    char a[64], b[64], small[8];
    sub_random_id("urn:x:", a, sizeof(a));
    sub_random_id("urn:x:", b, sizeof(b));
    assert_int_equal(strlen(a), 6 + 32);
    assert_string_not_equal(a, b);
    sub_random_id("urn:x:", small, sizeof(small));
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),       cmocka_unit_test(test_compile_ok),
        cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_merge),
        cmocka_unit_test(test_match),        cmocka_unit_test(test_render),
        cmocka_unit_test(test_random_id),    cmocka_unit_test(test_mqtt_uri),
        cmocka_unit_test(test_mqtt_pool_down), cmocka_unit_test(test_scopeq),
        cmocka_unit_test(test_sub_scopeq_and_sse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
