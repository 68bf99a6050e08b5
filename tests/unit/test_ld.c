/*
 * test_ld.c - unit tests for src/ld (core context, context processing,
 * ld_expand / ld_compact) and the hash map in src/util/hmap.c it is built on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "ld/ld_int.h"
#include "util/hmap.h"

#define NS "https://uri.etsi.org/ngsi-ld/"
#define DEF LD_DEFAULT_VOCAB
#define SDM_SL "https://smartdatamodels.org/dataModel.Streetlighting/"

/* Same content as /work/shared/fixtures/entities/city-context.jsonld. */
static const char CITY_CONTEXT[] =
    "{\"@context\": {"
    "\"Streetlight\": \"https://smartdatamodels.org/dataModel.Streetlighting/Streetlight\","
    "\"status\": \"https://smartdatamodels.org/dataModel.Streetlighting/status\","
    "\"powerState\": \"https://smartdatamodels.org/dataModel.Streetlighting/powerState\","
    "\"illuminanceLevel\": \"https://smartdatamodels.org/dataModel.Streetlighting/illuminanceLevel\","
    "\"locationCategory\": \"https://smartdatamodels.org/dataModel.Streetlighting/locationCategory\","
    "\"refStreetlightGroup\": \"https://smartdatamodels.org/dataModel.Streetlighting/refStreetlightGroup\","
    "\"refDevice\": \"https://smartdatamodels.org/dataModel.Streetlighting/refDevice\","
    "\"laternHeight\": \"https://smartdatamodels.org/dataModel.Streetlighting/laternHeight\","
    "\"CrowdFlowObserved\": \"https://smartdatamodels.org/dataModel.Transportation/CrowdFlowObserved\","
    "\"peopleCount\": \"https://smartdatamodels.org/dataModel.Transportation/peopleCount\","
    "\"peopleCountTowards\": \"https://smartdatamodels.org/dataModel.Transportation/peopleCountTowards\","
    "\"peopleCountAway\": \"https://smartdatamodels.org/dataModel.Transportation/peopleCountAway\","
    "\"occupancy\": \"https://smartdatamodels.org/dataModel.Transportation/occupancy\","
    "\"averageCrowdSpeed\": \"https://smartdatamodels.org/dataModel.Transportation/averageCrowdSpeed\","
    "\"direction\": \"https://smartdatamodels.org/dataModel.Transportation/direction\","
    "\"dateObserved\": \"https://smartdatamodels.org/dataModel.Transportation/dateObserved\","
    "\"congested\": \"https://smartdatamodels.org/dataModel.Transportation/congested\","
    "\"AirQualityObserved\": \"https://smartdatamodels.org/dataModel.Environment/AirQualityObserved\","
    "\"no2\": \"https://smartdatamodels.org/dataModel.Environment/no2\","
    "\"pm10\": \"https://smartdatamodels.org/dataModel.Environment/pm10\","
    "\"pm25\": \"https://smartdatamodels.org/dataModel.Environment/pm25\","
    "\"temperature\": \"https://smartdatamodels.org/dataModel.Environment/temperature\","
    "\"relativeHumidity\": \"https://smartdatamodels.org/dataModel.Environment/relativeHumidity\","
    "\"airQualityIndex\": \"https://smartdatamodels.org/dataModel.Environment/airQualityIndex\","
    "\"reliability\": \"https://smartdatamodels.org/dataModel.Environment/reliability\","
    "\"Device\": \"https://smartdatamodels.org/dataModel.Device/Device\","
    "\"batteryLevel\": \"https://smartdatamodels.org/dataModel.Device/batteryLevel\","
    "\"rssi\": \"https://smartdatamodels.org/dataModel.Device/rssi\","
    "\"controlledProperty\": \"https://smartdatamodels.org/dataModel.Device/controlledProperty\","
    "\"supportedProtocol\": \"https://smartdatamodels.org/dataModel.Device/supportedProtocol\","
    "\"category\": \"https://smartdatamodels.org/dataModel.Device/category\","
    "\"serialNumber\": \"https://smartdatamodels.org/dataModel.Device/serialNumber\","
    "\"dateLastValueReported\": \"https://smartdatamodels.org/dataModel.Device/dateLastValueReported\","
    "\"name\": \"https://schema.org/name\""
    "}}";

/* ---- helpers ---------------------------------------------------------- */

static void assert_expand(const struct ld_ctx *ctx, const char *term, const char *want)
{
    char *got = ld_expand(ctx, term);

    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("ld_expand(%s) = %s, want %s", term, got, want);
    free(got);
}

static void assert_compact(const struct ld_ctx *ctx, const char *iri, const char *want)
{
    char *got = ld_compact(ctx, iri);

    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("ld_compact(%s) = %s, want %s", iri, got, want);
    free(got);
}

/* Build from JSON text; returns the error code, *out set on success. */
static int build_text(const char *json, const struct ld_loader *loader, struct ld_ctx **out,
                      struct err *e)
{
    cJSON *v = cJSON_Parse(json);
    int rc;

    assert_non_null(v);
    err_clear(e);
    rc = ld_ctx_build(v, loader, out, e);
    cJSON_Delete(v);
    return rc;
}

static struct ld_ctx *build_ok(const char *json, const struct ld_loader *loader)
{
    struct err e = {0};
    struct ld_ctx *ctx = NULL;
    int rc = build_text(json, loader, &ctx, &e);

    if (rc != 0)
        fail_msg("build of %s failed: %d %s", json, rc, e.detail);
    assert_non_null(ctx);
    return ctx;
}

static void assert_build_fails(const char *json, const struct ld_loader *loader, int code,
                               const char *detail_part)
{
    struct err e = {0};
    struct ld_ctx *ctx = NULL;
    int rc = build_text(json, loader, &ctx, &e);

    if (rc != code)
        fail_msg("build of %s: rc %d (%s), want %d", json, rc, e.detail, code);
    assert_null(ctx);
    assert_int_equal(e.code, code);
    if (detail_part != NULL && strstr(e.detail, detail_part) == NULL)
        fail_msg("detail '%s' lacks '%s'", e.detail, detail_part);
}

/* ---- hmap ------------------------------------------------------------- */

static void test_hmap_basic(void **state)
{
    struct hmap *m = hmap_new(0);
    void *old = (void *)1;
    const char *stored = NULL;
    int a = 1, b = 2;

    (void)state;
    assert_non_null(m);
    assert_null(hmap_get(m, "x"));
    assert_int_equal(hmap_put(m, "x", &a, &old), 0);
    assert_null(old);
    assert_ptr_equal(hmap_get(m, "x"), &a);
    assert_int_equal(hmap_put(m, "x", &b, &old), 1);
    assert_ptr_equal(old, &a);
    assert_ptr_equal(hmap_get_entry(m, "x", &stored), &b);
    assert_string_equal(stored, "x");
    assert_int_equal(hmap_count(m), 1);
    assert_int_equal(hmap_put(m, "", &a, NULL), 0); /* empty key is a key */
    assert_ptr_equal(hmap_get(m, ""), &a);
    assert_int_equal(hmap_del(m, "x", &old), 1);
    assert_ptr_equal(old, &b);
    assert_int_equal(hmap_del(m, "x", &old), 0);
    assert_null(old);
    assert_null(hmap_get(m, "x"));
    assert_int_equal(hmap_count(m), 1);
    hmap_free(m, NULL);
    hmap_free(NULL, NULL);
    assert_int_equal(hmap_count(NULL), 0);
    assert_null(hmap_get(NULL, "x"));
}

static void test_hmap_many(void **state)
{
    enum { N = 20000 };
    struct hmap *m = hmap_new(0);
    char key[32];
    size_t pos = 0, seen = 0;
    const char *k;
    void *v;

    (void)state;
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%lu", (unsigned long)i);
        assert_int_equal(hmap_put(m, key, (void *)(i + 1), NULL), 0);
    }
    assert_int_equal(hmap_count(m), N);
    /* delete every third, then check all: backward shift must keep runs intact */
    for (uintptr_t i = 0; i < N; i += 3) {
        snprintf(key, sizeof(key), "key-%lu", (unsigned long)i);
        assert_int_equal(hmap_del(m, key, NULL), 1);
    }
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%lu", (unsigned long)i);
        if (i % 3 == 0)
            assert_null(hmap_get(m, key));
        else
            assert_ptr_equal(hmap_get(m, key), (void *)(i + 1));
    }
    while (hmap_next(m, &pos, &k, &v)) {
        unsigned long i = strtoul(k + 4, NULL, 10);

        assert_ptr_equal(v, (void *)(uintptr_t)(i + 1));
        assert_true(i % 3 != 0);
        seen++;
    }
    assert_int_equal(seen, N - (N + 2) / 3);
    assert_int_equal(hmap_count(m), seen);
    hmap_free(m, NULL);
}

static void test_hmap_free_values(void **state)
{
    struct hmap *m = hmap_new(4);

    (void)state;
    assert_int_equal(hmap_put(m, "a", strdup("va"), NULL), 0);
    assert_int_equal(hmap_put(m, "b", strdup("vb"), NULL), 0);
    assert_string_equal(hmap_get(m, "b"), "vb");
    assert_true(hmap_hash("abc", 3) == hmap_hash("abc", 3));
    assert_true(hmap_hash("abc", 3) != hmap_hash("abd", 3));
    hmap_free(m, free); /* ASan reports a leak if values are not freed */
}

/* ---- core context ----------------------------------------------------- */

static void test_core_text(void **state)
{
    cJSON *doc = cJSON_Parse(ld_core_text());
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(doc, "@context");
    int n = 0;
    const cJSON *m;

    (void)state;
    assert_non_null(doc);
    assert_true(cJSON_IsObject(ctx));
    cJSON_ArrayForEach(m, ctx) n++;
    assert_int_equal(n, 184); /* v1.8: 181 terms + @version, @protected, @vocab */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ctx, "@vocab")->valuestring, DEF);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ctx, "ngsi-ld")->valuestring, NS);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(ctx, "jsonKeys")); /* new in 1.8 */
    assert_null(cJSON_GetObjectItemCaseSensitive(ctx, "Snapshot"));      /* 1.9 only */
    cJSON_Delete(doc);
    assert_ptr_equal(ld_core(), ld_core());
    assert_int_equal(hmap_count(ld_core()->terms), 181);
}

static void test_core_urls(void **state)
{
    (void)state;
    assert_true(ld_is_core_url(LD_CORE_URL));
    assert_true(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"));
    assert_true(ld_is_core_url("http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"));
    assert_true(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.0.jsonld"));
    assert_true(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld"));
    assert_true(ld_is_core_url("http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"));
    assert_true(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"));
    assert_false(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.2.jsonld"));
    assert_false(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v2.0.jsonld"));
    assert_false(ld_is_core_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld?x"));
    assert_false(ld_is_core_url("https://evil.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"));
    assert_false(ld_is_core_url("ftp://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"));
    assert_false(ld_is_core_url(""));
    assert_false(ld_is_core_url(NULL));
}

static void test_core_expand(void **state)
{
    const struct ld_ctx *core = ld_core();

    (void)state;
    assert_expand(core, "location", NS "location");
    assert_expand(NULL, "location", NS "location");
    assert_expand(core, "Property", NS "Property");
    assert_expand(core, "Relationship", NS "Relationship");
    assert_expand(core, "value", NS "hasValue");
    assert_expand(core, "object", NS "hasObject");
    assert_expand(core, "observedAt", NS "observedAt");
    assert_expand(core, "Point", "https://purl.org/geojson/vocab#Point");
    assert_expand(core, "description", "http://purl.org/dc/terms/description");
    assert_expand(core, "id", "@id");
    assert_expand(core, "type", "@type");
    assert_expand(core, "attributeCount", DEF "attributeCount"); /* "x": "x" -> @vocab */
    assert_expand(core, "foo", DEF "foo");
    assert_expand(core, "ngsi-ld:foo", NS "foo");
    assert_expand(core, "geojson:Point", "https://purl.org/geojson/vocab#Point");
    assert_expand(core, "urn:ngsi-ld:Thing:1", "urn:ngsi-ld:Thing:1");
    assert_expand(core, "http://example.org/a", "http://example.org/a");
    assert_expand(core, "@id", "@id");
    assert_expand(core, "_:b0", "_:b0");
    assert_null(ld_expand(core, NULL));
}

static void test_core_compact(void **state)
{
    const struct ld_ctx *core = ld_core();

    (void)state;
    assert_compact(core, NS "location", "location");
    assert_compact(NULL, NS "Property", "Property");
    assert_compact(core, NS "hasValue", "value");
    assert_compact(core, "@id", "id");
    assert_compact(core, DEF "foo", "foo");
    assert_compact(core, DEF "attributeCount", "attributeCount");
    assert_compact(core, NS "foo", "ngsi-ld:foo");
    assert_compact(core, "https://purl.org/geojson/vocab#zzz", "geojson:zzz");
    /* "location" is a term for another IRI: neither @vocab nor... */
    assert_compact(core, DEF "location", "ngsi-ld:default-context/location");
    assert_compact(core, "http://example.org/x", "http://example.org/x");
    assert_compact(core, "urn:ngsi-ld:x", "urn:ngsi-ld:x");
    assert_null(ld_compact(core, NULL));
}

static void test_core_term_type(void **state)
{
    (void)state;
    assert_string_equal(ld_term_type(NULL, "createdAt"), NS "DateTime");
    assert_string_equal(ld_term_type(NULL, "object"), "@id");
    assert_string_equal(ld_term_type(NULL, "vocab"), "@vocab");
    assert_string_equal(ld_term_type(NULL, "json"), "@json");
    assert_null(ld_term_type(NULL, "location"));
    assert_null(ld_term_type(NULL, "nope"));
}

/* ---- caller contexts -------------------------------------------------- */

static void test_null_and_empty_give_core(void **state)
{
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    cJSON *null = cJSON_CreateNull();

    (void)state;
    assert_int_equal(ld_ctx_build(NULL, NULL, &ctx, &e), 0);
    assert_ptr_equal(ctx, ld_core());
    assert_int_equal(ld_ctx_build(null, NULL, &ctx, &e), 0);
    assert_ptr_equal(ctx, ld_core());
    cJSON_Delete(null);
    ctx = build_ok("{}", NULL);
    assert_ptr_equal(ctx, ld_core());
    ctx = build_ok("\"" LD_CORE_URL "\"", NULL); /* never loaded */
    assert_ptr_equal(ctx, ld_core());
    ctx = build_ok("[\"http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld\"]", NULL);
    assert_ptr_equal(ctx, ld_core());
    ld_ctx_release(ctx); /* no-op on the core */
    ld_ctx_retain(ld_core());
    ld_ctx_release(NULL);
    ld_ctx_retain(NULL);
}

/* The city context document's @context value (an inline object). */
static struct ld_ctx *build_city(void)
{
    cJSON *doc = cJSON_Parse(CITY_CONTEXT);
    struct ld_ctx *ctx = NULL;
    struct err e = {0};

    assert_non_null(doc);
    assert_int_equal(ld_ctx_build(cJSON_GetObjectItemCaseSensitive(doc, "@context"), NULL, &ctx, &e), 0);
    cJSON_Delete(doc);
    return ctx;
}

static void test_city_context(void **state)
{
    struct ld_ctx *ctx = build_city();

    (void)state;
    assert_expand(ctx, "Streetlight", SDM_SL "Streetlight");
    assert_expand(ctx, "powerState", SDM_SL "powerState");
    assert_expand(ctx, "name", "https://schema.org/name");
    assert_expand(ctx, "location", NS "location");
    assert_expand(ctx, "unknownAttr", DEF "unknownAttr");
    /* "status" is a core term: the core context wins (GS CIM 009 5.5.7) */
    assert_expand(ctx, "status", NS "status");
    assert_compact(ctx, SDM_SL "Streetlight", "Streetlight");
    assert_compact(ctx, "https://smartdatamodels.org/dataModel.Device/batteryLevel", "batteryLevel");
    assert_compact(ctx, SDM_SL "status", SDM_SL "status"); /* never "status" */
    assert_compact(ctx, NS "status", "status");
    assert_compact(ctx, DEF "unknownAttr", "unknownAttr");
    assert_expand(ctx, "rssi", "https://smartdatamodels.org/dataModel.Device/rssi");
    ld_ctx_retain(ctx);
    ld_ctx_release(ctx);
    assert_expand(ctx, "no2", "https://smartdatamodels.org/dataModel.Environment/no2");
    ld_ctx_release(ctx);
}

static void test_prefixes(void **state)
{
    struct ld_ctx *ctx = build_ok("{\"exFoo\": \"ex:foo\","
                                  " \"Thing\": {\"@id\": \"ex:Thing\", \"@type\": \"@id\"},"
                                  " \"when\": {\"@id\": \"ex:when\", \"@type\": \"DateTime\"},"
                                  " \"ex\": \"http://example.org/\","
                                  " \"notPrefix\": \"http://example.org/np\","
                                  " \"explicit\": {\"@id\": \"http://e.org/x\", \"@prefix\": true}}",
                                  NULL);

    (void)state;
    assert_expand(ctx, "ex:bar", "http://example.org/bar");
    assert_expand(ctx, "exFoo", "http://example.org/foo");  /* defined before its prefix */
    assert_expand(ctx, "Thing", "http://example.org/Thing");
    assert_expand(ctx, "explicit:y", "http://e.org/xy");
    assert_expand(ctx, "notPrefix:z", "notPrefix:z"); /* not a prefix: an IRI */
    assert_string_equal(ld_term_type(ctx, "Thing"), "@id");
    assert_string_equal(ld_term_type(ctx, "when"), NS "DateTime");
    assert_compact(ctx, "http://example.org/foo", "exFoo");
    assert_compact(ctx, "http://example.org/zzz", "ex:zzz");
    assert_compact(ctx, "http://example.org/", "ex");
    assert_compact(ctx, NS "zzz", "ngsi-ld:zzz");
    ld_ctx_release(ctx);
}

static void test_vocab(void **state)
{
    struct ld_ctx *ctx = build_ok("{\"@vocab\": \"http://vocab.org/\", \"a\": \"b\"}", NULL);
    struct ld_ctx *c2;

    (void)state;
    assert_expand(ctx, "foo", "http://vocab.org/foo");
    assert_expand(ctx, "a", "http://vocab.org/b");
    assert_expand(ctx, "location", NS "location");
    assert_compact(ctx, "http://vocab.org/foo", "foo");
    assert_compact(ctx, DEF "foo", "ngsi-ld:default-context/foo");
    ld_ctx_release(ctx);

    /* a compact IRI @vocab through a prefix of an earlier context */
    c2 = build_ok("[{\"ex\": \"http://example.org/\"}, {\"@vocab\": \"ex:v/\"}]", NULL);
    assert_expand(c2, "thing", "http://example.org/v/thing");
    ld_ctx_release(c2);

    /* @vocab null returns to the default vocabulary */
    c2 = build_ok("[{\"@vocab\": \"http://vocab.org/\"}, {\"@vocab\": null, \"x\": \"http://x.org/x\"}]",
                  NULL);
    assert_expand(c2, "foo", DEF "foo");
    ld_ctx_release(c2);
}

static void test_arrays_and_null(void **state)
{
    struct ld_ctx *ctx = build_ok("[{\"a\": \"http://a.org/a\", \"b\": \"http://a.org/b\"},"
                                  " null, {\"b\": \"http://b.org/b\"},"
                                  " {\"c\": \"http://c.org/c1\"}, {\"c\": \"http://c.org/c2\"},"
                                  " {\"c2\": \"http://c.org/c2\"}, {\"gone\": \"http://g.org/\"},"
                                  " {\"gone\": null}]",
                                  NULL);

    (void)state;
    assert_expand(ctx, "a", DEF "a"); /* reset by null */
    assert_expand(ctx, "b", "http://b.org/b");
    assert_expand(ctx, "c", "http://c.org/c2"); /* later definition wins */
    assert_expand(ctx, "gone", DEF "gone");
    assert_compact(ctx, "http://c.org/c2", "c"); /* shortest term */
    ld_ctx_release(ctx);
}

static void test_core_not_overridable(void **state)
{
    struct ld_ctx *ctx = build_ok("{\"location\": \"http://evil.org/loc\","
                                  " \"type\": \"http://evil.org/type\","
                                  " \"ngsi-ld\": \"http://evil.org/\","
                                  " \"myLoc\": \"location\","
                                  " \"myProp\": \"ngsi-ld:prop\"}",
                                  NULL);

    (void)state;
    assert_expand(ctx, "location", NS "location");
    assert_expand(ctx, "type", "@type");
    assert_expand(ctx, "ngsi-ld:x", NS "x");
    assert_expand(ctx, "myLoc", NS "location"); /* alias resolved through the core */
    assert_expand(ctx, "myProp", NS "prop");
    assert_compact(ctx, "http://evil.org/loc", "http://evil.org/loc");
    /* the caller's own term is preferred for compaction */
    assert_compact(ctx, NS "location", "myLoc");
    assert_compact(ctx, NS "prop", "myProp");
    ld_ctx_release(ctx);
}

static void test_keyword_alias_and_misc(void **state)
{
    struct ld_ctx *ctx = build_ok("{\"@version\": 1.1, \"@protected\": true, \"@language\": \"en\","
                                  " \"@base\": \"http://base.org/\", \"@unknownKeyword\": 1,"
                                  " \"myId\": \"@id\","
                                  " \"x:y\": \"http://xy.org/\","
                                  " \"rev\": {\"@reverse\": \"http://r.org/r\"},"
                                  " \"list\": {\"@id\": \"http://l.org/l\", \"@container\": [\"@list\", \"@set\"]},"
                                  " \"scoped\": {\"@id\": \"http://s.org/s\", \"@context\": {\"qq\": \"http://q\"}},"
                                  " \"self\": {\"@type\": \"@vocab\"}}",
                                  NULL);

    (void)state;
    assert_expand(ctx, "myId", "@id");
    assert_expand(ctx, "x:y", "http://xy.org/");
    assert_expand(ctx, "rev", "http://r.org/r");
    assert_expand(ctx, "list", "http://l.org/l");
    assert_expand(ctx, "self", DEF "self");
    assert_expand(ctx, "qq", DEF "qq"); /* scoped context not applied */
    assert_compact(ctx, "http://r.org/r", "http://r.org/r"); /* reverse: never compacted to */
    assert_compact(ctx, "http://l.org/l", "list");
    assert_string_equal(ld_term_type(ctx, "self"), "@vocab");
    ld_ctx_release(ctx);
}

static void test_invalid_contexts(void **state)
{
    (void)state;
    assert_build_fails("42", NULL, ERR_BAD_DATA, "invalid @context");
    assert_build_fails("true", NULL, ERR_BAD_DATA, NULL);
    assert_build_fails("[{\"a\": \"http://a\"}, [\"x\"]]", NULL, ERR_BAD_DATA, "nested array");
    assert_build_fails("{\"a\": 5}", NULL, ERR_BAD_DATA, "'a'");
    assert_build_fails("{\"a\": [\"http://a\"]}", NULL, ERR_BAD_DATA, "'a'");
    assert_build_fails("{\"a\": {\"@id\": 5}}", NULL, ERR_BAD_DATA, "@id");
    assert_build_fails("{\"a\": {\"@type\": 5}}", NULL, ERR_BAD_DATA, "@type");
    assert_build_fails("{\"a\": {\"@container\": \"@bogus\"}}", NULL, ERR_BAD_DATA, "@container");
    assert_build_fails("{\"a\": {\"@container\": [\"@list\", 3]}}", NULL, ERR_BAD_DATA, "@container");
    assert_build_fails("{\"a\": {\"@prefix\": \"yes\"}}", NULL, ERR_BAD_DATA, "@prefix");
    assert_build_fails("{\"a\": {\"@context\": 5}}", NULL, ERR_BAD_DATA, "scoped");
    assert_build_fails("{\"@version\": 1.0}", NULL, ERR_BAD_DATA, "@version");
    assert_build_fails("{\"@version\": \"1.1\"}", NULL, ERR_BAD_DATA, "@version");
    assert_build_fails("{\"@protected\": 1}", NULL, ERR_BAD_DATA, "@protected");
    assert_build_fails("{\"@vocab\": \"relative\"}", NULL, ERR_BAD_DATA, "@vocab");
    assert_build_fails("{\"@vocab\": 7}", NULL, ERR_BAD_DATA, "@vocab");
    assert_build_fails("{\"@vocab\": \"\"}", NULL, ERR_BAD_DATA, "@vocab");
    assert_build_fails("{\"@import\": \"http://x\"}", NULL, ERR_BAD_DATA, "@import");
    assert_build_fails("{\"\": \"http://x\"}", NULL, ERR_BAD_DATA, "empty term");
    assert_build_fails("{\"a\": \"b:x\", \"b\": \"a:y\"}", NULL, ERR_BAD_DATA, "cyclic");
    assert_build_fails("{\"a\": \"@context\"}", NULL, ERR_BAD_DATA, "@context");
    assert_build_fails(CITY_CONTEXT, NULL, ERR_BAD_DATA, "keyword redefinition of @context");
    assert_build_fails("{\"@id\": \"http://x\"}", NULL, ERR_BAD_DATA, "keyword redefinition");
    assert_build_fails("\"not a url\"", NULL, ERR_BAD_DATA, "not an http(s) URL");
    assert_build_fails("\"ftp://x.org/ctx\"", NULL, ERR_BAD_DATA, "not an http(s) URL");
    assert_build_fails("\"http://example.org/ctx.jsonld\"", NULL, ERR_LD_CONTEXT,
                       "http://example.org/ctx.jsonld");
}

/* ---- remote contexts through a loader --------------------------------- */

struct fake_doc {
    const char *url;
    const char *text;
};

struct fake_loader {
    const struct fake_doc *docs;
    int calls;
};

static int fake_load(void *ud, const char *url, char **text, struct err *e)
{
    struct fake_loader *fl = ud;

    fl->calls++;
    for (const struct fake_doc *d = fl->docs; d->url != NULL; d++) {
        if (strcmp(d->url, url) == 0) {
            *text = strdup(d->text);
            return *text != NULL ? 0 : ERR_NOMEM;
        }
    }
    return err_set(e, ERR_LD_CONTEXT, "fake: %s not found", url);
}

static const struct fake_doc DOCS[] = {
    {"http://a.org/dir/main.jsonld",
     "{\"@context\": [\"nested.jsonld\", {\"x\": \"http://x.org/x\"}, \"/abs.jsonld\","
     " \"" LD_CORE_URL "\"]}"},
    {"http://a.org/dir/nested.jsonld", "{\"@context\": {\"y\": \"http://y.org/y\", \"x\": \"http://old/x\"}}"},
    {"http://a.org/abs.jsonld", "{\"@context\": {\"z\": \"http://z.org/z\"}}"},
    {"http://c.org/a", "{\"@context\": \"http://c.org/b\"}"},
    {"http://c.org/b", "{\"@context\": [\"http://c.org/a\"]}"},
    {"http://d.org/0", "{\"@context\": \"http://d.org/1\"}"},
    {"http://d.org/1", "{\"@context\": \"http://d.org/2\"}"},
    {"http://d.org/2", "{\"@context\": \"http://d.org/3\"}"},
    {"http://d.org/3", "{\"@context\": \"http://d.org/4\"}"},
    {"http://d.org/4", "{\"@context\": \"http://d.org/5\"}"},
    {"http://d.org/5", "{\"@context\": \"http://d.org/6\"}"},
    {"http://d.org/6", "{\"@context\": \"http://d.org/7\"}"},
    {"http://d.org/7", "{\"@context\": {\"deep\": \"http://deep.org/\"}}"},
    {"http://d.org/8", "{\"@context\": \"http://d.org/0\"}"},
    {"http://e.org/notjson", "this is not json"},
    {"http://e.org/nocontext", "{\"a\": 1}"},
    {"http://e.org/bad", "{\"@context\": {\"a\": 5}}"},
    {NULL, NULL},
};

static void test_remote_nested(void **state)
{
    struct fake_loader fl = {DOCS, 0};
    struct ld_loader loader = {fake_load, &fl};
    struct ld_ctx *ctx = build_ok("[\"http://a.org/dir/main.jsonld\", {\"w\": \"http://w.org/w\"}]",
                                  &loader);

    (void)state;
    assert_int_equal(fl.calls, 3); /* main, nested, abs; never the core */
    assert_expand(ctx, "x", "http://x.org/x"); /* later in the array wins */
    assert_expand(ctx, "y", "http://y.org/y");
    assert_expand(ctx, "z", "http://z.org/z");
    assert_expand(ctx, "w", "http://w.org/w");
    ld_ctx_release(ctx);

    /* 8 levels are allowed (0..7), 9 are not */
    ctx = build_ok("\"http://d.org/0\"", &loader);
    assert_expand(ctx, "deep:er", "http://deep.org/er");
    ld_ctx_release(ctx);
    assert_build_fails("\"http://d.org/8\"", &loader, ERR_BAD_DATA, "deeper than 8");
}

static void test_remote_errors(void **state)
{
    struct fake_loader fl = {DOCS, 0};
    struct ld_loader loader = {fake_load, &fl};

    (void)state;
    assert_build_fails("\"http://c.org/a\"", &loader, ERR_BAD_DATA, "recursive");
    assert_build_fails("\"http://e.org/missing\"", &loader, ERR_LD_CONTEXT, "fake: http://e.org/missing");
    assert_build_fails("[\"http://a.org/abs.jsonld\", \"http://e.org/missing\"]", &loader,
                       ERR_LD_CONTEXT, "not found");
    assert_build_fails("\"http://e.org/notjson\"", &loader, ERR_LD_CONTEXT, "not valid JSON");
    assert_build_fails("\"http://e.org/nocontext\"", &loader, ERR_LD_CONTEXT, "no @context");
    assert_build_fails("\"http://e.org/bad\"", &loader, ERR_BAD_DATA, "'a'");
    assert_build_fails("\"relative.jsonld\"", &loader, ERR_BAD_DATA, "not an http(s) URL");
}

/* ---- threads ---------------------------------------------------------- */

struct thread_arg {
    const struct ld_ctx *ctx;
    int failures;
};

static void *expand_worker(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < 2000; i++) {
        const struct ld_ctx *c = a->ctx != NULL ? a->ctx : ld_core();
        char *x = ld_expand(c, i % 2 ? "location" : "Streetlight");
        char *y = x != NULL ? ld_compact(c, x) : NULL;

        if (y == NULL || strcmp(y, i % 2 ? "location" : "Streetlight") != 0)
            a->failures++;
        ld_ctx_retain(c);
        ld_ctx_release(c);
        free(x);
        free(y);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct ld_ctx *ctx = build_city();
    pthread_t th[8];
    struct thread_arg args[8];

    (void)state;
    for (int i = 0; i < 8; i++) {
        args[i].ctx = i % 2 ? ctx : NULL;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, expand_worker, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    ld_ctx_release(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmap_basic),
        cmocka_unit_test(test_hmap_many),
        cmocka_unit_test(test_hmap_free_values),
        cmocka_unit_test(test_core_text),
        cmocka_unit_test(test_core_urls),
        cmocka_unit_test(test_core_expand),
        cmocka_unit_test(test_core_compact),
        cmocka_unit_test(test_core_term_type),
        cmocka_unit_test(test_null_and_empty_give_core),
        cmocka_unit_test(test_city_context),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_vocab),
        cmocka_unit_test(test_arrays_and_null),
        cmocka_unit_test(test_core_not_overridable),
        cmocka_unit_test(test_keyword_alias_and_misc),
        cmocka_unit_test(test_invalid_contexts),
        cmocka_unit_test(test_remote_nested),
        cmocka_unit_test(test_remote_errors),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
