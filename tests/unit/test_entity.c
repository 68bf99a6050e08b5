/*
 * test_entity.c - unit tests of the entity model (src/model): parsing of
 * the shared fixtures and of concise input, every validation error, merge
 * null markers, each update operation (exact resulting documents), and
 * rendering in the three formats with sysAttrs, pick/omit, several
 * instances and lang.
 *
 * Expected JSON is written with ' for " (see J()) and compared with
 * cJSON_Compare (member order does not matter). Fixtures are read from
 * $PL_FIXTURES (default /work/shared/fixtures); their remote @context is
 * replaced by the city context given inline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ld/ld.h"
#include "model/entity.h"

#define DV LD_DEFAULT_VOCAB
#define NS LD_NGSI_NS
#define SL "https://smartdatamodels.org/dataModel.Streetlighting/"
#define EX "https://ex.org/"
#define T0 "2026-01-01T00:00:00.000Z"
#define T1 "2026-02-01T00:00:00.000Z"
#define T2 "2026-03-01T00:00:00.000Z"

/* ---- helpers ---------------------------------------------------------- */

/* JSON text with ' standing for " (no apostrophes in test data). */
static char *J(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static cJSON *PJ(const char *s)
{
    char *t = J(s);
    cJSON *j = cJSON_Parse(t);
    if (j == NULL)
        fail_msg("bad test JSON: %s", t);
    free(t);
    return j;
}

static void assert_json(const cJSON *got, const char *expected)
{
    cJSON *exp = PJ(expected);
    if (!cJSON_Compare(got, exp, 1)) {
        char *g = cJSON_PrintUnformatted(got), *x = cJSON_PrintUnformatted(exp);
        print_error("got:      %s\nexpected: %s\n", g, x);
        free(g);
        free(x);
        cJSON_Delete(exp);
        fail();
    }
    cJSON_Delete(exp);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *fixtures_dir(void)
{
    const char *d = getenv("PL_FIXTURES");
    return d ? d : "/work/shared/fixtures";
}

static cJSON *load_json(const char *rel)
{
    char path[1024];
    char *text;
    cJSON *j;

    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), rel);
    text = read_file(path);
    j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static struct ld_ctx *build_ctx(const cJSON *context)
{
    struct ld_ctx *ctx = NULL;
    struct err e = {0};
    if (ld_ctx_build(context, NULL, &ctx, &e) != 0)
        fail_msg("ld_ctx_build: %s", e.detail);
    return ctx;
}

/* The city context, inline. */
static struct ld_ctx *city_ctx(void)
{
    cJSON *doc = load_json("entities/city-context.jsonld");
    struct ld_ctx *ctx = build_ctx(cJSON_GetObjectItem(doc, "@context"));
    cJSON_Delete(doc);
    return ctx;
}

/* A small test context. */
static struct ld_ctx *ex_ctx(void)
{
    cJSON *c = PJ("{'temperature': '" EX "temperature', 'T': '" EX "T', 'ex': '" EX "'}");
    struct ld_ctx *ctx = build_ctx(c);
    cJSON_Delete(c);
    return ctx;
}

static cJSON *parse_ok(const char *body, const struct ld_ctx *ctx, int flags)
{
    cJSON *in = PJ(body), *doc = NULL;
    struct err e = {0};
    int rc = ent_parse(in, ctx, flags, &doc, &e);
    if (rc != 0)
        fail_msg("ent_parse failed (%d): %s", rc, e.detail);
    cJSON_Delete(in);
    return doc;
}

static void parse_err(const char *body, int flags, int code, const char *detail)
{
    cJSON *in = PJ(body), *doc = NULL;
    struct err e = {0};
    int rc = ent_parse(in, NULL, flags, &doc, &e);
    if (rc != code || e.code != code || strstr(e.detail, detail) == NULL)
        fail_msg("body %s: rc %d detail '%s', expected %d '%s'", body, rc, e.detail, code, detail);
    assert_null(doc);
    cJSON_Delete(in);
}

static cJSON *render(const cJSON *doc, const struct ld_ctx *ctx, enum ent_format fmt, int sys,
                     const char *lang)
{
    struct ent_render_opts o = {0};
    struct err e = {0};
    cJSON *out = NULL;

    o.ctx = ctx;
    o.format = fmt;
    o.sys_attrs = sys;
    o.lang = lang;
    assert_int_equal(ent_render(doc, &o, &out, &e), 0);
    return out;
}

static const cJSON *attr(const cJSON *doc, const char *iri)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "attrs"), iri);
}

/* ---- fixtures --------------------------------------------------------- */

static void test_fixture_streetlight(void **state)
{
    struct ld_ctx *ctx = city_ctx();
    cJSON *in = load_json("entities/streetlight.jsonld"), *doc = NULL, *out;
    struct err e = {0};
    (void)state;

    assert_int_equal(ent_parse(in, ctx, ENT_FULL, &doc, &e), 0);
    /* "status" is a core-context term: the core context wins (5.5.7) */
    assert_json(doc,
        "{'id': 'urn:ngsi-ld:Streetlight:hoekplein-05', 'type': ['" SL "Streetlight'],"
        " 'attrs': {"
        "  '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"
        "      'coordinates': [4.8716, 52.3668]}}],"
        "  '" NS "status': [{'type': 'Property', 'value': 'ok',"
        "      'observedAt': '2026-06-12T08:15:00.000Z'}],"
        "  '" SL "powerState': [{'type': 'Property', 'value': 'on',"
        "      'observedAt': '2026-06-12T08:15:00.000Z'}],"
        "  '" SL "illuminanceLevel': [{'type': 'Property', 'value': 0.6,"
        "      'observedAt': '2026-06-12T08:15:00.000Z'}],"
        "  '" SL "locationCategory': [{'type': 'Property', 'value': 'pedestrianPath'}],"
        "  '" SL "laternHeight': [{'type': 'Property', 'value': 6.5, 'unitCode': 'MTR'}],"
        "  '" SL "refStreetlightGroup': [{'type': 'Relationship',"
        "      'object': 'urn:ngsi-ld:StreetlightGroup:hoekplein'}],"
        "  '" SL "refDevice': [{'type': 'Relationship',"
        "      'object': 'urn:ngsi-ld:Device:lightpost-05'}]}}");
    assert_string_equal(ent_doc_id(doc), "urn:ngsi-ld:Streetlight:hoekplein-05");
    assert_string_equal(cJSON_GetArrayItem(ent_doc_types(doc), 0)->valuestring,
                        SL "Streetlight");

    /* rendered back with the same context: the input (times normalized) */
    out = render(doc, ctx, ENT_NORMALIZED, 0, NULL);
    cJSON_DeleteItemFromObject(in, "@context");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(in, "status"), "observedAt",
                              cJSON_CreateString("2026-06-12T08:15:00.000Z"));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(in, "powerState"), "observedAt",
                              cJSON_CreateString("2026-06-12T08:15:00.000Z"));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(in, "illuminanceLevel"), "observedAt",
                              cJSON_CreateString("2026-06-12T08:15:00.000Z"));
    assert_true(cJSON_Compare(out, in, 1));
    cJSON_Delete(out);
    cJSON_Delete(in);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

static void test_fixture_airquality(void **state)
{
    struct ld_ctx *ctx = city_ctx();
    cJSON *in = load_json("entities/airquality.jsonld"), *doc = NULL;
    struct err e = {0};
    const char *env = "https://smartdatamodels.org/dataModel.Environment/";
    char iri[256];
    (void)state;

    assert_int_equal(ent_parse(in, ctx, ENT_FULL, &doc, &e), 0);
    assert_string_equal(cJSON_GetArrayItem(ent_doc_types(doc), 0)->valuestring,
                        "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved");
    snprintf(iri, sizeof(iri), "%spm25", env);
    assert_json(attr(doc, iri), "[{'type': 'Property', 'value': 12.34, 'unitCode': 'GQ',"
                                " 'observedAt': '2026-06-12T08:15:00.000Z'}]");
    /* a JSON-LD value object is kept as is */
    assert_json(attr(doc, "https://smartdatamodels.org/dataModel.Transportation/dateObserved"),
                "[{'type': 'Property', 'value': {'@type': 'DateTime',"
                " '@value': '2026-06-12T08:15:00Z'}}]");
    snprintf(iri, sizeof(iri), "%srefDevice", SL);
    assert_json(attr(doc, iri), "[{'type': 'Relationship',"
                                " 'object': 'urn:ngsi-ld:Device:air-node-017'}]");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "attrs")), 8);
    assert_json(ent_doc_geo(doc, NS "location"), "{'type': 'Point', 'coordinates': [4.8931, 52.3729]}");
    cJSON_Delete(in);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

static void test_fixture_crowdflow_device(void **state)
{
    struct ld_ctx *ctx = city_ctx();
    cJSON *in = load_json("entities/crowdflow.jsonld"), *doc = NULL;
    struct err e = {0};
    (void)state;

    assert_int_equal(ent_parse(in, ctx, ENT_FULL, &doc, &e), 0);
    assert_json(ent_doc_geo(doc, NS "location"),
                "{'type': 'LineString', 'coordinates': [[4.8714, 52.3667], [4.8719, 52.3669]]}");
    assert_json(attr(doc, "https://smartdatamodels.org/dataModel.Transportation/peopleCountTowards"),
                "[{'type': 'Property', 'value': 57, 'observedAt': '2026-06-12T08:15:00.000Z'}]");
    assert_null(ent_doc_geo(doc, "https://smartdatamodels.org/dataModel.Transportation/occupancy"));
    assert_null(ent_doc_geo(doc, NS "observationSpace"));
    cJSON_Delete(in);
    cJSON_Delete(doc);

    in = load_json("entities/device.jsonld");
    assert_int_equal(ent_parse(in, ctx, ENT_FULL, &doc, &e), 0);
    assert_json(attr(doc, "https://schema.org/name"),
                "[{'type': 'LanguageProperty', 'languageMap': {'nl': 'Luchtkwaliteit Centrum 17',"
                " 'en': 'Air quality centre 17'}}]");
    assert_json(attr(doc, "https://smartdatamodels.org/dataModel.Device/controlledProperty"),
                "[{'type': 'Property', 'value': ['airPollution', 'temperature', 'humidity']}]");
    assert_json(attr(doc, "https://smartdatamodels.org/dataModel.Device/rssi"),
                "[{'type': 'Property', 'value': -97, 'unitCode': 'DBM',"
                " 'observedAt': '2026-06-12T08:15:00.000Z'}]");
    cJSON_Delete(in);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

/* ---- concise input, instances, fragments -------------------------------- */

static void test_concise(void **state)
{
    struct ld_ctx *ctx = ex_ctx();
    cJSON *doc;
    (void)state;

    doc = parse_ok(
        "{'id': 'urn:ngsi-ld:T:1', 'type': 'T', '@context': 'ignored',"
        " 'temperature': 21.5, 'tags': ['a', 'b'],"
        " 'state': {'value': 'ok', 'observedAt': '2026-06-12T08:15:00+02:00'},"
        " 'owner': {'object': 'urn:ngsi-ld:P:1', 'objectType': 'T'},"
        " 'name': {'languageMap': {'en': 'x', 'nl': ['y', 'z']}},"
        " 'location': {'type': 'Point', 'coordinates': [4.9, 52.4]},"
        " 'area': {'value': {'type': 'Polygon', 'coordinates': [[[0,0],[1,0],[1,1],[0,0]]]}},"
        " 'list': {'valueList': [1, 2, 3]},"
        " 'route': {'objectList': ['urn:a:1', {'object': 'urn:a:2'}]},"
        " 'cat': {'vocab': 'temperature'}, 'cats': {'vocab': ['ex:a', 'b']},"
        " 'cfg': {'json': {'a': {'b': 1}}},"
        " 'meta': {'a': 1},"
        " 'when': {'@type': 'DateTime', '@value': '2026-01-01T00:00:00Z'},"
        " 'reading': {'value': 3, 'createdAt': 'x', 'accuracy': 0.5,"
        "             'source': {'object': 'urn:s:1', 'since': {'value': 1}}}}",
        ctx, ENT_FULL);
    assert_json(doc,
        "{'id': 'urn:ngsi-ld:T:1', 'type': ['" EX "T'], 'attrs': {"
        " '" EX "temperature': [{'type': 'Property', 'value': 21.5}],"
        " '" DV "tags': [{'type': 'Property', 'value': ['a', 'b']}],"
        " '" DV "state': [{'type': 'Property', 'value': 'ok',"
        "     'observedAt': '2026-06-12T06:15:00.000Z'}],"
        " '" DV "owner': [{'type': 'Relationship', 'object': 'urn:ngsi-ld:P:1',"
        "     'objectType': '" EX "T'}],"
        " '" DV "name': [{'type': 'LanguageProperty', 'languageMap': {'en': 'x', 'nl': ['y', 'z']}}],"
        " '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"
        "     'coordinates': [4.9, 52.4]}}],"
        " '" DV "area': [{'type': 'GeoProperty', 'value': {'type': 'Polygon',"
        "     'coordinates': [[[0,0],[1,0],[1,1],[0,0]]]}}],"
        " '" DV "list': [{'type': 'ListProperty', 'valueList': [1, 2, 3]}],"
        " '" DV "route': [{'type': 'ListRelationship', 'objectList': [{'object': 'urn:a:1'},"
        "     {'object': 'urn:a:2'}]}],"
        " '" DV "cat': [{'type': 'VocabProperty', 'vocab': '" EX "temperature'}],"
        " '" DV "cats': [{'type': 'VocabProperty', 'vocab': ['" EX "a', '" DV "b']}],"
        " '" DV "cfg': [{'type': 'JsonProperty', 'json': {'a': {'b': 1}}}],"
        " '" DV "meta': [{'type': 'Property', 'value': {'a': 1}}],"
        " '" DV "when': [{'type': 'Property', 'value': {'@type': 'DateTime',"
        "     '@value': '2026-01-01T00:00:00Z'}}],"
        " '" DV "reading': [{'type': 'Property', 'value': 3, 'sub': {"
        "     '" DV "accuracy': {'type': 'Property', 'value': 0.5},"
        "     '" DV "source': {'type': 'Relationship', 'object': 'urn:s:1', 'sub': {"
        "         '" DV "since': {'type': 'Property', 'value': 1}}}}}]}}");
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

static void test_instances_and_fragments(void **state)
{
    cJSON *doc;
    (void)state;

    doc = parse_ok("{'id': 'urn:x:1', 'type': ['A', 'B', 'A'], 'scope': ['/a/b', '/c'],"
                   " 'createdAt': 'whatever', 'speed': [{'type': 'Property', 'value': 1},"
                   " {'value': 2, 'datasetId': 'urn:ds:gps'}]}", NULL, ENT_FULL);
    assert_json(doc, "{'id': 'urn:x:1', 'type': ['" DV "A', '" DV "B'], 'scope': ['/a/b', '/c'],"
                     " 'attrs': {'" DV "speed': [{'type': 'Property', 'value': 1},"
                     " {'type': 'Property', 'value': 2, 'datasetId': 'urn:ds:gps'}]}}");
    cJSON_Delete(doc);

    /* fragment: id ignored, type returned when present, attrs always */
    doc = parse_ok("{'id': 'whatever', 'a': 1}", NULL, ENT_FRAGMENT);
    assert_json(doc, "{'attrs': {'" DV "a': [{'type': 'Property', 'value': 1}]}}");
    cJSON_Delete(doc);
    doc = parse_ok("{'type': 'X'}", NULL, ENT_FRAGMENT);
    assert_json(doc, "{'type': ['" DV "X'], 'attrs': {}}");
    cJSON_Delete(doc);
    doc = parse_ok("{'scope': '/x'}", NULL, ENT_FRAGMENT);
    assert_json(doc, "{'scope': ['/x'], 'attrs': {}}");
    cJSON_Delete(doc);
}

static void test_merge_markers(void **state)
{
    cJSON *doc;
    (void)state;

    doc = parse_ok("{'a': null, 'b': 'urn:ngsi-ld:null',"
                   " 'c': {'type': 'Property', 'value': 1, 'unitCode': null, 's': null},"
                   " 'n': {'type': 'LanguageProperty', 'languageMap': {'@none': 'urn:ngsi-ld:null'}},"
                   " 'n2': {'languageMap': {'fr': null, 'en': 'x'}},"
                   " 'r': {'type': 'Relationship', 'object': 'urn:ngsi-ld:null', 'datasetId': 'urn:d:1'},"
                   " 'm': {'type': 'Property', 'observedAt': '2026-01-01T00:00:00Z'},"
                   " 'scope': null}",
                   NULL, ENT_FRAGMENT | ENT_MERGE);
    assert_json(doc,
        "{'scope': null, 'attrs': {"
        " '" DV "a': [{'type': 'Property', 'value': null}],"
        " '" DV "b': [{'type': 'Property', 'value': null}],"
        " '" DV "c': [{'type': 'Property', 'value': 1, 'unitCode': null, 'sub': {"
        "     '" DV "s': {'type': 'Property', 'value': null}}}],"
        " '" DV "n': [{'type': 'Property', 'value': null}],"
        " '" DV "n2': [{'type': 'LanguageProperty', 'languageMap': {'fr': null, 'en': 'x'}}],"
        " '" DV "r': [{'type': 'Property', 'value': null, 'datasetId': 'urn:d:1'}],"
        " '" DV "m': [{'type': 'Property', 'observedAt': '2026-01-01T00:00:00.000Z'}]}}");
    assert_true(ent_is_null_marker(cJSON_GetArrayItem(attr(doc, DV "a"), 0)));
    assert_false(ent_is_null_marker(cJSON_GetArrayItem(attr(doc, DV "c"), 0)));
    cJSON_Delete(doc);
}

static void test_parse_attr(void **state)
{
    cJSON *in, *inst = NULL;
    struct err e = {0};
    (void)state;

    in = cJSON_CreateNumber(5);
    assert_int_equal(ent_parse_attr(DV "a", in, NULL, 0, &inst, &e), 0);
    assert_json(inst, "{'type': 'Property', 'value': 5}");
    cJSON_Delete(inst);
    cJSON_Delete(in);

    in = PJ("{'type': 'Relationship', 'object': 'urn:x:2', 'datasetId': 'urn:d:1',"
            " 'observedAt': '2026-01-01'}");
    assert_int_equal(ent_parse_attr(DV "a", in, NULL, 0, &inst, &e), 0);
    assert_json(inst, "{'type': 'Relationship', 'object': 'urn:x:2', 'datasetId': 'urn:d:1',"
                      " 'observedAt': '2026-01-01T00:00:00.000Z'}");
    cJSON_Delete(inst);
    cJSON_Delete(in);

    in = PJ("[{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}]");
    assert_int_equal(ent_parse_attr(DV "a", in, NULL, 0, &inst, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "attribute '" DV "a': expected one attribute instance, got an array");
    assert_null(inst);
    cJSON_Delete(in);

    err_clear(&e);
    in = cJSON_CreateNull();
    assert_int_equal(ent_parse_attr(DV "a", in, NULL, 0, &inst, &e), ERR_BAD_DATA);
    err_clear(&e);
    assert_int_equal(ent_parse_attr(DV "a", in, NULL, ENT_MERGE, &inst, &e), 0);
    assert_true(ent_is_null_marker(inst));
    cJSON_Delete(inst);
    cJSON_Delete(in);
}

/* ---- validation errors ------------------------------------------------ */

#define ID "'id': 'urn:x:1', 'type': 'T', "

static void test_errors(void **state)
{
    (void)state;
    parse_err("[1]", ENT_FULL, ERR_INVALID_REQUEST, "must be a JSON object");
    parse_err("{'type': 'T'}", ENT_FULL, ERR_BAD_DATA, "the entity has no id");
    parse_err("{'id': 'notauri', 'type': 'T'}", ENT_FULL, ERR_BAD_DATA,
              "entity id must be an absolute URI");
    parse_err("{'id': 'urn:a b', 'type': 'T'}", ENT_FULL, ERR_BAD_DATA, "absolute URI");
    parse_err("{'id': 5, 'type': 'T'}", ENT_FULL, ERR_BAD_DATA, "absolute URI");
    parse_err("{'id': 'urn:x:1'}", ENT_FULL, ERR_BAD_DATA, "the entity has no type");
    parse_err("{'id': 'urn:x:1', 'type': []}", ENT_FULL, ERR_BAD_DATA,
              "entity type must be a string or a non-empty array of strings");
    parse_err("{'id': 'urn:x:1', 'type': 5}", ENT_FULL, ERR_BAD_DATA, "entity type must be");
    parse_err("{'id': 'urn:x:1', 'type': 'a b'}", ENT_FULL, ERR_BAD_DATA,
              "entity type must be a valid name");
    parse_err("{" ID "'temperature': {'type': 'Property'}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'temperature': Property has no value");
    parse_err("{" ID "'r': {'type': 'Relationship'}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'r': Relationship has no object");
    parse_err("{" ID "'r': {'type': 'Relationship', 'object': 'not a uri'}}", ENT_FULL,
              ERR_BAD_DATA, "Relationship object 'not a uri' is not a URI");
    parse_err("{" ID "'r': {'type': 'Relationship', 'object': []}}", ENT_FULL, ERR_BAD_DATA,
              "must be a URI or an array of URIs");
    parse_err("{" ID "'r': {'object': ['urn:a:1', 5]}}", ENT_FULL, ERR_BAD_DATA,
              "must be a URI or an array of URIs");
    parse_err("{" ID "'location': {'type': 'GeoProperty', 'value': {'type': 'Point',"
              " 'coordinates': [200, 0]}}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'location': invalid GeoJSON");
    parse_err("{" ID "'location': {'type': 'Point', 'coordinates': 'x'}}", ENT_FULL,
              ERR_BAD_DATA, "invalid GeoJSON");
    parse_err("{" ID "'location': {'type': 'GeoProperty', 'value': 'x'}}", ENT_FULL,
              ERR_BAD_DATA, "GeoProperty value must be a GeoJSON geometry object");
    parse_err("{" ID "'n': {'type': 'LanguageProperty'}}", ENT_FULL, ERR_BAD_DATA,
              "LanguageProperty has no languageMap");
    parse_err("{" ID "'n': {'type': 'LanguageProperty', 'languageMap': {}}}", ENT_FULL,
              ERR_BAD_DATA, "languageMap must be a non-empty object");
    parse_err("{" ID "'n': {'languageMap': {'en': 5}}}", ENT_FULL, ERR_BAD_DATA,
              "languageMap value for 'en' must be a string or array of strings");
    parse_err("{" ID "'n': {'languageMap': {'e n': 'x'}}}", ENT_FULL, ERR_BAD_DATA,
              "invalid language tag 'e n'");
    parse_err("{" ID "'a': {'type': 'Foo', 'value': 1}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'a': invalid attribute type 'Foo'");
    parse_err("{" ID "'a': {'type': 5, 'value': 1}}", ENT_FULL, ERR_BAD_DATA,
              "attribute type must be a string");
    parse_err("{" ID "'a': {'value': 1, 'observedAt': 'yesterday'}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'a': observedAt must be an ISO 8601 date-time");
    parse_err("{" ID "'a': {'value': 1, 'datasetId': 'x'}}", ENT_FULL, ERR_BAD_DATA,
              "datasetId must be a URI");
    parse_err("{" ID "'a': {'value': 1, 'unitCode': 5}}", ENT_FULL, ERR_BAD_DATA,
              "unitCode must be a non-empty string");
    parse_err("{" ID "'a': {'type': 'Property', 'value': null}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'a': null is only allowed in a merge or update");
    parse_err("{" ID "'a': 'urn:ngsi-ld:null'}", ENT_FULL, ERR_BAD_DATA, "null is only allowed");
    parse_err("{" ID "'a': null}", ENT_FRAGMENT, ERR_BAD_DATA, "null is only allowed");
    parse_err("{" ID "'a b': 1}", ENT_FULL, ERR_BAD_DATA, "invalid attribute name 'a b'");
    parse_err("{" ID "'a(1)': 1}", ENT_FULL, ERR_BAD_DATA, "invalid attribute name");
    parse_err("{" ID "'': 1}", ENT_FULL, ERR_BAD_DATA, "invalid attribute name");
    parse_err("{" ID "'value': 1}", ENT_FULL, ERR_BAD_DATA, "'value' cannot be an attribute name");
    parse_err("{" ID "'observedAt': 1}", ENT_FULL, ERR_BAD_DATA, "cannot be an attribute name");
    parse_err("{" ID "'a': {'value': 1, 'object': 'urn:x:1'}}", ENT_FULL, ERR_BAD_DATA,
              "ambiguous attribute");
    parse_err("{" ID "'a': {'type': 'Property', 'value': 1, 'object': 'urn:x:1'}}", ENT_FULL,
              ERR_BAD_DATA, "'object' is not allowed in a Property");
    parse_err("{" ID "'a': {'value': 1, 'objectType': 'T'}}", ENT_FULL, ERR_BAD_DATA,
              "objectType is only allowed in a Relationship or ListRelationship");
    parse_err("{" ID "'a': {'value': 1, 'id': 'x'}}", ENT_FULL, ERR_BAD_DATA,
              "'id' cannot be a sub-attribute name");
    parse_err("{" ID "'a': {'value': 1, 's': {'value': 2, 'datasetId': 'urn:d:1'}}}", ENT_FULL,
              ERR_BAD_DATA, "sub-attribute 's' cannot have a datasetId");
    parse_err("{" ID "'a': {'value': 1, 's': {'type': 'Property'}}}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'a', sub-attribute 's': Property has no value");
    parse_err("{" ID "'a': {'value': 1, 'x y': 2}}", ENT_FULL, ERR_BAD_DATA,
              "invalid sub-attribute name 'x y'");
    parse_err("{" ID "'scope': 'noslash'}", ENT_FULL, ERR_BAD_DATA, "invalid scope 'noslash'");
    parse_err("{" ID "'scope': ['/a', 5]}", ENT_FULL, ERR_BAD_DATA, "scope must be");
    parse_err("{" ID "'m': [{'value': 1, 'datasetId': 'urn:d:1'}, {'value': 2,"
              " 'datasetId': 'urn:d:1'}]}", ENT_FULL, ERR_BAD_DATA,
              "attribute 'm': two instances with the same datasetId");
    parse_err("{" ID "'m': [{'value': 1}, {'type': 'Property', 'value': 2}]}", ENT_FULL,
              ERR_BAD_DATA, "two instances without datasetId");
    parse_err("{" ID "'l': {'type': 'ListProperty', 'valueList': 1}}", ENT_FULL, ERR_BAD_DATA,
              "valueList must be an array");
    parse_err("{" ID "'l': {'type': 'ListRelationship', 'objectList': [1]}}", ENT_FULL,
              ERR_BAD_DATA, "objectList items must be URIs");
    parse_err("{" ID "'v': {'type': 'VocabProperty', 'vocab': 5}}", ENT_FULL, ERR_BAD_DATA,
              "vocab must be a string or a non-empty array of strings");
    parse_err("{" ID "'a': 1, '" DV "a': 2}", ENT_FULL, ERR_BAD_DATA, "given twice");
    parse_err("{" ID "'a': {'value': 1, 's': 1, '" DV "s': 2}}", ENT_FULL, ERR_BAD_DATA,
              "sub-attribute '" DV "s' given twice");
}

static void test_error_caps(void **state)
{
    cJSON *body = PJ("{'id': 'urn:x:1', 'type': 'T'}"), *inner, *doc = NULL;
    struct err e = {0};
    char name[32];
    (void)state;

    /* sub-attributes nested ENT_MAX_DEPTH + 1 levels */
    inner = PJ("{'value': 1}");
    for (int i = 0; i <= ENT_MAX_DEPTH; i++) {
        cJSON *outer = PJ("{'value': 1}");
        cJSON_AddItemToObject(outer, "s", inner);
        inner = outer;
    }
    cJSON_AddItemToObject(body, "deep", inner);
    assert_int_equal(ent_parse(body, NULL, ENT_FULL, &doc, &e), ERR_BAD_DATA);
    assert_non_null(strstr(e.detail, "nested deeper than 16 levels"));
    /* one level less is fine */
    cJSON *last = inner;
    while (cJSON_GetObjectItem(cJSON_GetObjectItem(last, "s"), "s") != NULL)
        last = cJSON_GetObjectItem(last, "s");
    cJSON_DeleteItemFromObject(last, "s");
    err_clear(&e);
    assert_int_equal(ent_parse(body, NULL, ENT_FULL, &doc, &e), 0);
    cJSON_Delete(doc);
    cJSON_Delete(body);

    body = PJ("{'id': 'urn:x:1', 'type': 'T'}");
    for (int i = 0; i <= ENT_MAX_ATTRS; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        cJSON_AddNumberToObject(body, name, i);
    }
    err_clear(&e);
    assert_int_equal(ent_parse(body, NULL, ENT_FULL, &doc, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "too many attributes (max 2000)");
    assert_null(doc);
    cJSON_Delete(body);
}

/* ---- update operations ------------------------------------------------ */

#define BASE "{'id': 'urn:x:1', 'type': 'T', 'a': 1, 'b': {'value': 2, 'unitCode': 'CEL'," \
             " 's': {'value': 'x'}}, 'm': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}]}"

static cJSON *base_doc(void)
{
    cJSON *doc = parse_ok(BASE, NULL, ENT_FULL);
    ent_stamp_new(doc, T0);
    return doc;
}

static void test_stamp_new(void **state)
{
    cJSON *doc = base_doc();
    (void)state;
    assert_json(doc,
        "{'id': 'urn:x:1', 'type': ['" DV "T'], 'createdAt': '" T0 "', 'modifiedAt': '" T0 "',"
        " 'attrs': {"
        " '" DV "a': [{'type': 'Property', 'value': 1, 'createdAt': '" T0 "', 'modifiedAt': '" T0 "'}],"
        " '" DV "b': [{'type': 'Property', 'value': 2, 'unitCode': 'CEL', 'createdAt': '" T0 "',"
        "     'modifiedAt': '" T0 "', 'sub': {'" DV "s': {'type': 'Property', 'value': 'x',"
        "     'createdAt': '" T0 "', 'modifiedAt': '" T0 "'}}}],"
        " '" DV "m': [{'type': 'Property', 'value': 1, 'createdAt': '" T0 "', 'modifiedAt': '" T0 "'},"
        "     {'type': 'Property', 'value': 2, 'datasetId': 'urn:d:1', 'createdAt': '" T0 "',"
        "      'modifiedAt': '" T0 "'}]}}");
    cJSON_Delete(doc);
}

static void test_replace(void **state)
{
    cJSON *doc = base_doc();
    cJSON *in = parse_ok("{'id': 'urn:x:1', 'type': 'U', 'c': 3}", NULL, ENT_FULL);
    (void)state;

    assert_int_equal(ent_replace(doc, in, T1), 0);
    assert_json(doc,
        "{'id': 'urn:x:1', 'type': ['" DV "U'], 'createdAt': '" T0 "', 'modifiedAt': '" T1 "',"
        " 'attrs': {'" DV "c': [{'type': 'Property', 'value': 3, 'createdAt': '" T1 "',"
        " 'modifiedAt': '" T1 "'}]}}");
    cJSON_Delete(in);
    /* scope replaced; absent in incoming -> removed */
    in = parse_ok("{'scope': '/s', 'd': 4}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_replace(doc, in, T2), 0);
    assert_json(cJSON_GetObjectItem(doc, "scope"), "['/s']");
    assert_json(cJSON_GetObjectItem(doc, "type"), "['" DV "U']");
    assert_null(attr(doc, DV "c"));
    cJSON_Delete(in);
    in = parse_ok("{'d': 4}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_replace(doc, in, T2), 0);
    assert_null(cJSON_GetObjectItem(doc, "scope"));
    cJSON_Delete(in);
    cJSON_Delete(doc);
}

static void test_append(void **state)
{
    cJSON *doc = base_doc(), *frag, *up = cJSON_CreateArray(), *nu = cJSON_CreateArray();
    (void)state;

    frag = parse_ok("{'type': 'U', 'a': 10, 'c': {'value': 3},"
                    " 'm': {'value': 5, 'datasetId': 'urn:d:2'}}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_append(doc, frag, 0, T1, up, nu), 0);
    assert_json(up, "['" DV "a', '" DV "c', '" DV "m']");
    assert_json(nu, "[]");
    assert_json(cJSON_GetObjectItem(doc, "type"), "['" DV "T', '" DV "U']");
    assert_json(attr(doc, DV "a"), "[{'type': 'Property', 'value': 10, 'createdAt': '" T0 "',"
                                   " 'modifiedAt': '" T1 "'}]");
    assert_json(attr(doc, DV "c"), "[{'type': 'Property', 'value': 3, 'createdAt': '" T1 "',"
                                   " 'modifiedAt': '" T1 "'}]");
    assert_int_equal(cJSON_GetArraySize(attr(doc, DV "m")), 3);
    assert_json(cJSON_GetArrayItem(attr(doc, DV "m"), 2),
                "{'type': 'Property', 'value': 5, 'datasetId': 'urn:d:2', 'createdAt': '" T1 "',"
                " 'modifiedAt': '" T1 "'}");
    assert_string_equal(cJSON_GetObjectItem(doc, "modifiedAt")->valuestring, T1);
    cJSON_Delete(frag);
    cJSON_Delete(up);
    cJSON_Delete(nu);

    /* noOverwrite */
    up = cJSON_CreateArray();
    nu = cJSON_CreateArray();
    frag = parse_ok("{'a': 11, 'd': 4}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_append(doc, frag, 1, T2, up, nu), 0);
    assert_json(up, "['" DV "d']");
    assert_json(nu, "[{'attributeName': '" DV "a',"
                    " 'reason': 'attribute already exists and noOverwrite is set (default instance)'}]");
    assert_json(attr(doc, DV "a"), "[{'type': 'Property', 'value': 10, 'createdAt': '" T0 "',"
                                   " 'modifiedAt': '" T1 "'}]");
    cJSON_Delete(frag);
    cJSON_Delete(up);
    cJSON_Delete(nu);

    /* NULL report arrays are allowed */
    frag = parse_ok("{'a': 12}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_append(doc, frag, 0, T2, NULL, NULL), 0);
    assert_json(cJSON_GetObjectItem(cJSON_GetArrayItem(attr(doc, DV "a"), 0), "value"), "12");
    cJSON_Delete(frag);
    cJSON_Delete(doc);
}

static void test_update(void **state)
{
    cJSON *doc = base_doc(), *frag, *up = cJSON_CreateArray(), *nu = cJSON_CreateArray();
    (void)state;

    frag = parse_ok("{'type': 'U', 'a': {'value': 10, 'observedAt': '2026-01-01T00:00:00Z'},"
                    " 'z': 1, 'm': {'value': 9, 'datasetId': 'urn:d:9'},"
                    " 'b': {'value': 3}}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_update(doc, frag, T1, up, nu), 0);
    assert_json(up, "['" DV "a', '" DV "b']");
    assert_json(nu, "[{'attributeName': '" DV "z', 'reason': 'attribute not found (default instance)'},"
                    " {'attributeName': '" DV "m', 'reason': 'attribute not found (datasetId urn:d:9)'}]");
    assert_json(cJSON_GetObjectItem(doc, "type"), "['" DV "T']");
    assert_json(attr(doc, DV "a"), "[{'type': 'Property', 'value': 10,"
                                   " 'observedAt': '2026-01-01T00:00:00.000Z', 'createdAt': '" T0 "',"
                                   " 'modifiedAt': '" T1 "'}]");
    /* update replaces the whole instance: unitCode and sub-attribute gone */
    assert_json(attr(doc, DV "b"), "[{'type': 'Property', 'value': 3, 'createdAt': '" T0 "',"
                                   " 'modifiedAt': '" T1 "'}]");
    assert_null(attr(doc, DV "z"));
    assert_string_equal(cJSON_GetObjectItem(doc, "modifiedAt")->valuestring, T1);
    cJSON_Delete(frag);
    cJSON_Delete(up);
    cJSON_Delete(nu);

    /* nothing updated: modifiedAt untouched */
    frag = parse_ok("{'zz': 1}", NULL, ENT_FRAGMENT);
    assert_int_equal(ent_update(doc, frag, T2, NULL, NULL), 0);
    assert_string_equal(cJSON_GetObjectItem(doc, "modifiedAt")->valuestring, T1);
    cJSON_Delete(frag);
    cJSON_Delete(doc);
}

static void test_merge(void **state)
{
    cJSON *doc = base_doc(), *frag;
    (void)state;

    frag = parse_ok("{'type': 'U', 'a': null,"
                    " 'b': {'value': 5, 'unitCode': null, 's': {'value': 'y'}, 't': {'value': 1}},"
                    " 'm': {'value': 7, 'datasetId': 'urn:d:1'},"
                    " 'n': {'type': 'LanguageProperty', 'languageMap': {'en': 'hi'}},"
                    " 'ghost': {'type': 'Property', 'unitCode': 'X'}}",
                    NULL, ENT_FRAGMENT | ENT_MERGE);
    assert_int_equal(ent_merge(doc, frag, T1), 0);
    assert_json(doc,
        "{'id': 'urn:x:1', 'type': ['" DV "T', '" DV "U'], 'createdAt': '" T0 "',"
        " 'modifiedAt': '" T1 "', 'attrs': {"
        " '" DV "b': [{'type': 'Property', 'value': 5, 'createdAt': '" T0 "',"
        "     'modifiedAt': '" T1 "', 'sub': {"
        "     '" DV "s': {'type': 'Property', 'value': 'y', 'createdAt': '" T0 "', 'modifiedAt': '" T1 "'},"
        "     '" DV "t': {'type': 'Property', 'value': 1, 'createdAt': '" T1 "', 'modifiedAt': '" T1 "'}}}],"
        " '" DV "m': [{'type': 'Property', 'value': 1, 'createdAt': '" T0 "', 'modifiedAt': '" T0 "'},"
        "     {'type': 'Property', 'value': 7, 'datasetId': 'urn:d:1', 'createdAt': '" T0 "',"
        "      'modifiedAt': '" T1 "'}],"
        " '" DV "n': [{'type': 'LanguageProperty', 'languageMap': {'en': 'hi'},"
        "     'createdAt': '" T1 "', 'modifiedAt': '" T1 "'}]}}");
    cJSON_Delete(frag);

    /* languageMap merged by language; metadata-only patch; sub null deletes */
    frag = parse_ok("{'n': {'languageMap': {'fr': 'salut', 'en': null}},"
                    " 'b': {'type': 'Property', 'observedAt': '2026-05-05T00:00:00Z', 't': null},"
                    " 'scope': '/z'}",
                    NULL, ENT_FRAGMENT | ENT_MERGE);
    assert_int_equal(ent_merge(doc, frag, T2), 0);
    assert_json(attr(doc, DV "n"), "[{'type': 'LanguageProperty', 'languageMap': {'fr': 'salut'},"
                                   " 'createdAt': '" T1 "', 'modifiedAt': '" T2 "'}]");
    assert_json(attr(doc, DV "b"),
        "[{'type': 'Property', 'value': 5, 'observedAt': '2026-05-05T00:00:00.000Z',"
        "  'createdAt': '" T0 "', 'modifiedAt': '" T2 "', 'sub': {"
        "  '" DV "s': {'type': 'Property', 'value': 'y', 'createdAt': '" T0 "', 'modifiedAt': '" T1 "'}}}]");
    assert_json(cJSON_GetObjectItem(doc, "scope"), "['/z']");
    cJSON_Delete(frag);

    /* a value of another type replaces the type; null scope removes it;
     * deleting the last instance deletes the attribute */
    frag = parse_ok("{'b': {'object': 'urn:r:1'}, 'scope': null, 'n': 'urn:ngsi-ld:null',"
                    " 'm': [null, {'value': null, 'datasetId': 'urn:d:1'}]}",
                    NULL, ENT_FRAGMENT | ENT_MERGE);
    assert_int_equal(ent_merge(doc, frag, T2), 0);
    assert_null(cJSON_GetObjectItem(doc, "scope"));
    assert_null(attr(doc, DV "n"));
    assert_json(cJSON_GetObjectItem(cJSON_GetArrayItem(attr(doc, DV "b"), 0), "type"),
                "'Relationship'");
    assert_json(cJSON_GetObjectItem(cJSON_GetArrayItem(attr(doc, DV "b"), 0), "object"),
                "'urn:r:1'");
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(attr(doc, DV "b"), 0), "value"));
    cJSON_Delete(frag);
    cJSON_Delete(doc);
}

static cJSON *attr_inst(const char *body, int flags)
{
    cJSON *in = PJ(body), *inst = NULL;
    struct err e = {0};
    assert_int_equal(ent_parse_attr(DV "b", in, NULL, flags, &inst, &e), 0);
    cJSON_Delete(in);
    return inst;
}

static void test_attr_ops(void **state)
{
    cJSON *doc = base_doc(), *inst;
    struct err e = {0};
    (void)state;

    /* patch: value replaced, the rest kept */
    inst = attr_inst("{'value': 6}", ENT_MERGE);
    assert_int_equal(ent_attr_patch(doc, DV "b", inst, T1, &e), 0);
    assert_json(attr(doc, DV "b"),
        "[{'type': 'Property', 'value': 6, 'unitCode': 'CEL', 'createdAt': '" T0 "',"
        "  'modifiedAt': '" T1 "', 'sub': {'" DV "s': {'type': 'Property', 'value': 'x',"
        "  'createdAt': '" T0 "', 'modifiedAt': '" T0 "'}}}]");
    assert_int_equal(ent_attr_patch(doc, DV "zz", inst, T1, &e), ERR_NOT_FOUND);
    assert_string_equal(e.detail, "attribute '" DV "zz' not found");
    cJSON_Delete(inst);
    err_clear(&e);
    inst = attr_inst("{'value': 6, 'datasetId': 'urn:d:7'}", ENT_MERGE);
    assert_int_equal(ent_attr_patch(doc, DV "m", inst, T1, &e), ERR_NOT_FOUND);
    assert_string_equal(e.detail, "attribute '" DV "m' has no instance with datasetId 'urn:d:7'");
    cJSON_Delete(inst);

    /* replace: the whole instance, createdAt kept */
    inst = attr_inst("{'value': 7}", 0);
    assert_int_equal(ent_attr_replace(doc, DV "b", inst, T2, &e), 0);
    assert_json(attr(doc, DV "b"), "[{'type': 'Property', 'value': 7, 'createdAt': '" T0 "',"
                                   " 'modifiedAt': '" T2 "'}]");
    assert_string_equal(cJSON_GetObjectItem(doc, "modifiedAt")->valuestring, T2);
    err_clear(&e);
    assert_int_equal(ent_attr_replace(doc, DV "zz", inst, T2, &e), ERR_NOT_FOUND);
    cJSON_Delete(inst);

    /* delete */
    err_clear(&e);
    assert_int_equal(ent_attr_delete(doc, DV "m", NULL, 0, &e), 0);
    assert_int_equal(cJSON_GetArraySize(attr(doc, DV "m")), 1);
    assert_int_equal(ent_attr_delete(doc, DV "m", NULL, 0, &e), ERR_NOT_FOUND);
    assert_string_equal(e.detail, "attribute '" DV "m' has no default instance");
    err_clear(&e);
    assert_int_equal(ent_attr_delete(doc, DV "m", "urn:d:1", 0, &e), 0);
    assert_null(attr(doc, DV "m"));
    assert_int_equal(ent_attr_delete(doc, DV "m", "urn:d:1", 0, &e), ERR_NOT_FOUND);
    err_clear(&e);
    assert_int_equal(ent_attr_delete(doc, DV "b", NULL, 1, &e), 0);
    assert_null(attr(doc, DV "b"));
    assert_int_equal(ent_attr_delete(doc, DV "b", NULL, 1, &e), ERR_NOT_FOUND);
    assert_json(cJSON_GetObjectItem(doc, "attrs"),
                "{'" DV "a': [{'type': 'Property', 'value': 1, 'createdAt': '" T0 "',"
                " 'modifiedAt': '" T0 "'}]}");
    cJSON_Delete(doc);
}

/* ---- rendering -------------------------------------------------------- */

#define RBODY "{'id': 'urn:x:1', 'type': 'T', 'scope': '/a'," \
    " 'temperature': {'value': 21.5, 'unitCode': 'CEL', 'observedAt': '2026-06-12T08:15:00Z'," \
    "                 'accuracy': {'value': 0.5}}," \
    " 'state': 'ok', 'owner': {'object': 'urn:p:1', 'objectType': 'T'}," \
    " 'name': {'languageMap': {'en': 'Hello', 'nl': 'Hallo', '@none': 'Hoi'}}," \
    " 'location': {'type': 'Point', 'coordinates': [1, 2]}," \
    " 'cat': {'vocab': 'temperature'}, 'list': {'valueList': [1, 2]}," \
    " 'cfg': {'json': {'k': 1}}, 'route': {'objectList': ['urn:a:1']}," \
    " 'm': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}]," \
    " 'obj': {'value': {'value': 1}}}"

static void test_render_normalized(void **state)
{
    struct ld_ctx *ctx = ex_ctx();
    cJSON *doc = parse_ok(RBODY, ctx, ENT_FULL), *out;
    (void)state;

    ent_stamp_new(doc, T0);
    out = render(doc, ctx, ENT_NORMALIZED, 0, NULL);
    assert_json(out,
        "{'id': 'urn:x:1', 'type': 'T', 'scope': '/a',"
        " 'temperature': {'type': 'Property', 'value': 21.5, 'unitCode': 'CEL',"
        "     'observedAt': '2026-06-12T08:15:00.000Z', 'accuracy': {'type': 'Property', 'value': 0.5}},"
        " 'state': {'type': 'Property', 'value': 'ok'},"
        " 'owner': {'type': 'Relationship', 'object': 'urn:p:1', 'objectType': 'T'},"
        " 'name': {'type': 'LanguageProperty', 'languageMap': {'en': 'Hello', 'nl': 'Hallo', '@none': 'Hoi'}},"
        " 'location': {'type': 'GeoProperty', 'value': {'type': 'Point', 'coordinates': [1, 2]}},"
        " 'cat': {'type': 'VocabProperty', 'vocab': 'temperature'},"
        " 'list': {'type': 'ListProperty', 'valueList': [1, 2]},"
        " 'cfg': {'type': 'JsonProperty', 'json': {'k': 1}},"
        " 'route': {'type': 'ListRelationship', 'objectList': [{'object': 'urn:a:1'}]},"
        " 'm': [{'type': 'Property', 'value': 1}, {'type': 'Property', 'value': 2, 'datasetId': 'urn:d:1'}],"
        " 'obj': {'type': 'Property', 'value': {'value': 1}}}");
    cJSON_Delete(out);

    /* sysAttrs at every level; without a context the IRIs stay long */
    out = render(doc, NULL, ENT_NORMALIZED, 1, NULL);
    assert_string_equal(cJSON_GetObjectItem(out, "createdAt")->valuestring, T0);
    assert_string_equal(cJSON_GetObjectItem(out, "modifiedAt")->valuestring, T0);
    assert_string_equal(cJSON_GetObjectItem(out, "type")->valuestring, EX "T");
    assert_json(cJSON_GetObjectItem(out, EX "temperature"),
        "{'type': 'Property', 'value': 21.5, 'unitCode': 'CEL',"
        " 'observedAt': '2026-06-12T08:15:00.000Z', 'createdAt': '" T0 "', 'modifiedAt': '" T0 "',"
        " 'accuracy': {'type': 'Property', 'value': 0.5, 'createdAt': '" T0 "', 'modifiedAt': '" T0 "'}}");
    assert_json(cJSON_GetObjectItem(out, "cat"),
        "{'type': 'VocabProperty', 'vocab': '" EX "temperature', 'createdAt': '" T0 "',"
        " 'modifiedAt': '" T0 "'}");
    cJSON_Delete(out);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

static void test_render_concise_keyvalues(void **state)
{
    struct ld_ctx *ctx = ex_ctx();
    cJSON *doc = parse_ok(RBODY, ctx, ENT_FULL), *out, *back = NULL;
    struct err e = {0};
    (void)state;

    ent_stamp_new(doc, T0);
    out = render(doc, ctx, ENT_CONCISE, 0, NULL);
    assert_json(out,
        "{'id': 'urn:x:1', 'type': 'T', 'scope': '/a',"
        " 'temperature': {'value': 21.5, 'unitCode': 'CEL',"
        "     'observedAt': '2026-06-12T08:15:00.000Z', 'accuracy': 0.5},"
        " 'state': 'ok',"
        " 'owner': {'object': 'urn:p:1', 'objectType': 'T'},"
        " 'name': {'languageMap': {'en': 'Hello', 'nl': 'Hallo', '@none': 'Hoi'}},"
        " 'location': {'type': 'Point', 'coordinates': [1, 2]},"
        " 'cat': {'vocab': 'temperature'}, 'list': {'valueList': [1, 2]},"
        " 'cfg': {'json': {'k': 1}}, 'route': {'objectList': [{'object': 'urn:a:1'}]},"
        " 'm': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}],"
        " 'obj': {'value': {'value': 1}}}");
    /* concise is lossless: parsing it back gives the same attributes */
    assert_int_equal(ent_parse(out, ctx, ENT_FULL, &back, &e), 0);
    cJSON *orig = parse_ok(RBODY, ctx, ENT_FULL);
    assert_true(cJSON_Compare(back, orig, 1));
    cJSON_Delete(orig);
    cJSON_Delete(back);
    cJSON_Delete(out);

    out = render(doc, ctx, ENT_KEYVALUES, 0, NULL);
    assert_json(out,
        "{'id': 'urn:x:1', 'type': 'T', 'scope': '/a', 'temperature': 21.5, 'state': 'ok',"
        " 'owner': 'urn:p:1',"
        " 'name': {'languageMap': {'en': 'Hello', 'nl': 'Hallo', '@none': 'Hoi'}},"
        " 'location': {'type': 'Point', 'coordinates': [1, 2]},"
        " 'cat': {'vocab': 'temperature'}, 'list': {'valueList': [1, 2]},"
        " 'cfg': {'json': {'k': 1}}, 'route': {'objectList': ['urn:a:1']},"
        " 'm': [1, 2], 'obj': {'value': 1}}");
    cJSON_Delete(out);

    /* keyValues with sysAttrs: entity timestamps only */
    out = render(doc, ctx, ENT_KEYVALUES, 1, NULL);
    assert_string_equal(cJSON_GetObjectItem(out, "createdAt")->valuestring, T0);
    assert_json(cJSON_GetObjectItem(out, "temperature"), "21.5");
    cJSON_Delete(out);
    /* concise with sysAttrs: no bare values */
    out = render(doc, ctx, ENT_CONCISE, 1, NULL);
    assert_json(cJSON_GetObjectItem(out, "state"),
                "{'value': 'ok', 'createdAt': '" T0 "', 'modifiedAt': '" T0 "'}");
    cJSON_Delete(out);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

static void test_render_pick_omit(void **state)
{
    struct ld_ctx *ctx = ex_ctx();
    cJSON *doc = parse_ok(RBODY, ctx, ENT_FULL), *out = NULL;
    const char *pick[] = {"id", DV "state", EX "temperature"};
    const char *omit[] = {"type", "scope", EX "temperature", DV "name", DV "cat", DV "list",
                          DV "cfg", DV "route", DV "m", DV "obj", NS "location"};
    struct ent_render_opts o = {0};
    struct err e = {0};
    (void)state;

    o.ctx = ctx;
    o.format = ENT_KEYVALUES;
    o.pick = pick;
    o.n_pick = 3;
    assert_int_equal(ent_render(doc, &o, &out, &e), 0);
    assert_json(out, "{'id': 'urn:x:1', 'state': 'ok', 'temperature': 21.5}");
    cJSON_Delete(out);

    o.pick = NULL;
    o.n_pick = 0;
    o.omit = omit;
    o.n_omit = sizeof(omit) / sizeof(omit[0]);
    assert_int_equal(ent_render(doc, &o, &out, &e), 0);
    assert_json(out, "{'id': 'urn:x:1', 'state': 'ok', 'owner': 'urn:p:1'}");
    cJSON_Delete(out);

    o.pick = pick;
    o.n_pick = 3;
    assert_int_equal(ent_render(doc, &o, &out, &e), 0);
    assert_json(out, "{'id': 'urn:x:1', 'state': 'ok'}");
    cJSON_Delete(out);

    assert_int_equal(ent_render(NULL, &o, &out, &e), ERR_INTERNAL);
    assert_null(out);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

static void test_render_lang(void **state)
{
    struct ld_ctx *ctx = ex_ctx();
    cJSON *doc = parse_ok(RBODY, ctx, ENT_FULL), *out;
    (void)state;

    out = render(doc, ctx, ENT_NORMALIZED, 0, "nl");
    assert_json(cJSON_GetObjectItem(out, "name"),
                "{'type': 'Property', 'value': 'Hallo', 'lang': 'nl'}");
    cJSON_Delete(out);
    out = render(doc, ctx, ENT_NORMALIZED, 0, "de");
    assert_json(cJSON_GetObjectItem(out, "name"),
                "{'type': 'Property', 'value': 'Hoi', 'lang': '@none'}");
    cJSON_Delete(out);
    out = render(doc, ctx, ENT_NORMALIZED, 0, "fr, de;q=0.2, en;q=0.5");
    assert_json(cJSON_GetObjectItem(out, "name"),
                "{'type': 'Property', 'value': 'Hello', 'lang': 'en'}");
    cJSON_Delete(out);
    out = render(doc, ctx, ENT_NORMALIZED, 0, "*");
    assert_json(cJSON_GetObjectItem(out, "name"),
                "{'type': 'Property', 'value': 'Hoi', 'lang': '@none'}");
    cJSON_Delete(out);
    out = render(doc, ctx, ENT_CONCISE, 0, "EN");
    assert_json(cJSON_GetObjectItem(out, "name"), "{'value': 'Hello', 'lang': 'en'}");
    cJSON_Delete(out);
    out = render(doc, ctx, ENT_KEYVALUES, 0, "nl");
    assert_json(cJSON_GetObjectItem(out, "name"), "'Hallo'");
    /* other attributes are not affected */
    assert_json(cJSON_GetObjectItem(out, "state"), "'ok'");
    cJSON_Delete(out);
    cJSON_Delete(doc);

    /* a more specific tag matches; no @none -> first entry */
    doc = parse_ok("{'id': 'urn:x:1', 'type': 'T', 'n': {'languageMap': {'fr': 'Bonjour',"
                   " 'en-GB': 'Hello'}}}", ctx, ENT_FULL);
    out = render(doc, ctx, ENT_KEYVALUES, 0, "en");
    assert_json(cJSON_GetObjectItem(out, "n"), "'Hello'");
    cJSON_Delete(out);
    out = render(doc, ctx, ENT_NORMALIZED, 0, "ja");
    assert_json(cJSON_GetObjectItem(out, "n"),
                "{'type': 'Property', 'value': 'Bonjour', 'lang': 'fr'}");
    cJSON_Delete(out);
    cJSON_Delete(doc);
    ld_ctx_release(ctx);
}

/* ent_attr_sig: the same instances give the same value whatever the order
 * and whatever their values; any instance more, less or renamed changes it. */
static void test_attr_sig(void **state)
{
    static const char *const same[] = {
        "{'attrs': {'a': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}], 'b': [{}]}}",
        "{'id': 'x', 'attrs': {'b': [{'object': 'y'}], "
        "'a': [{'datasetId': 'urn:d:1'}, {'value': 'other'}]}}",
    };
    static const char *const differ[] = {
        "{'attrs': {'a': [{'value': 1}], 'b': [{}]}}",
        "{'attrs': {'a': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}]}}",
        "{'attrs': {'a': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:2'}], 'b': [{}]}}",
        "{'attrs': {'a': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}], 'c': [{}]}}",
        "{'attrs': {'a': [{'value': 2, 'datasetId': 'urn:d:1'}], 'b': [{}, {}]}}",
        "{'attrs': {'a': [{'value': 1}, {'value': 2, 'datasetId': 'urn:d:1'}], 'b': [{}], "
        "'c': [{}]}}",
        /* an attribute named like another's datasetId pair */
        "{'attrs': {'a\\nurn:d:1': [{}], 'a': [{}], 'b': [{}]}}",
        "{'attrs': {}}",
    };
    (void)state;
    cJSON *a = PJ(same[0]), *b = PJ(same[1]);
    uint64_t sig = ent_attr_sig(a);
    assert_true(sig == ent_attr_sig(b));
    cJSON *none = PJ("{'id': 'x'}");
    assert_true(ent_attr_sig(none) == 0); /* no instances: the empty sum */
    cJSON_Delete(none);
    for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
        cJSON *d = PJ(differ[i]);
        if (ent_attr_sig(d) == sig)
            fail_msg("same value for %s", differ[i]);
        cJSON_Delete(d);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_streetlight),
        cmocka_unit_test(test_fixture_airquality),
        cmocka_unit_test(test_fixture_crowdflow_device),
        cmocka_unit_test(test_concise),
        cmocka_unit_test(test_instances_and_fragments),
        cmocka_unit_test(test_merge_markers),
        cmocka_unit_test(test_parse_attr),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_caps),
        cmocka_unit_test(test_stamp_new),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_attr_ops),
        cmocka_unit_test(test_render_normalized),
        cmocka_unit_test(test_render_concise_keyvalues),
        cmocka_unit_test(test_render_pick_omit),
        cmocka_unit_test(test_render_lang),
        cmocka_unit_test(test_attr_sig),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
