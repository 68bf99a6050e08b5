/*
 * test_profile.c - device profiles, devices and uplink mapping
 * (src/ingest/profile.c, map.c): exact entity documents for every shared
 * LoRaWAN fixture, each codec and field type, rejections, every validation
 * error, the stored-form round trip (prof_to_json -> prof_parse without a
 * context), devices and the device CSV.
 *
 * Terms are expanded with the city context of the shared fixtures
 * (entities/city-context.jsonld, given inline), so Smart Data Model terms
 * get their SDM IRIs and the others the default vocabulary. Expected JSON
 * is written with ' for " and compared with cJSON_Compare (member order
 * does not matter). Fixtures are read from $PL_FIXTURES (default
 * /work/shared/fixtures).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/profile.h"
#include "ingest/uplink.h"
#include "ld/ld.h"
#include "util/err.h"

#define DV LD_DEFAULT_VOCAB
#define NS LD_NGSI_NS
#define ENV "https://smartdatamodels.org/dataModel.Environment/"
#define TRANS "https://smartdatamodels.org/dataModel.Transportation/"
#define SL "https://smartdatamodels.org/dataModel.Streetlighting/"
#define DEV "https://smartdatamodels.org/dataModel.Device/"
#define NAME_IRI "https://schema.org/name"
#define NOW_MS 1781254800000LL /* 2026-06-12T09:00:00.000Z */

/* ---- helpers ------------------------------------------------------------ */

static const char *fixtures_dir(void)
{
    const char *d = getenv("PL_FIXTURES");

    return d != NULL && d[0] != '\0' ? d : "/work/shared/fixtures";
}

static char *read_fixture(const char *name)
{
    char path[512];
    char *data;
    long size;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
    if ((f = fopen(path, "rb")) == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    return data;
}

/* JSON text with ' standing for " (no apostrophes in test data). */
static cJSON *PJ(const char *s)
{
    char *t = strdup(s);
    cJSON *j;

    assert_non_null(t);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = cJSON_Parse(t);
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

static struct ld_ctx *city;

static int setup(void **state)
{
    char *text = read_fixture("entities/city-context.jsonld");
    cJSON *doc = cJSON_Parse(text);
    struct err e = {0};

    (void)state;
    free(text);
    assert_non_null(doc);
    assert_int_equal(ld_ctx_build(cJSON_GetObjectItem(doc, "@context"), NULL, &city, &e), 0);
    cJSON_Delete(doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ld_ctx_release(city);
    return 0;
}

static char *expand_city(void *ud, const char *term)
{
    return ld_expand(ud, term);
}

/* An expander that fails (out of memory) on the Nth call. */
static int expand_budget;

static char *expand_limited(void *ud, const char *term)
{
    if (expand_budget-- <= 0)
        return NULL;
    return ld_expand(ud, term);
}

/* An expander that maps every term to one IRI (no @vocab to find). */
static char *expand_fixed(void *ud, const char *term)
{
    (void)ud;
    (void)term;
    return strdup("urn:fixed:1");
}

/* An expander whose IRIs are not absolute. */
static char *expand_relative(void *ud, const char *term)
{
    char *s = malloc(strlen(term) + 3);

    (void)ud;
    if (s != NULL)
        sprintf(s, "x/%s", term);
    return s;
}

static struct prof *profile_ok(const char *json_text)
{
    cJSON *j = PJ(json_text);
    struct prof *p = NULL;
    struct err e = {0};

    if (prof_parse(j, expand_city, city, &p, &e) != 0)
        fail_msg("profile rejected: %s", e.detail);
    cJSON_Delete(j);
    return p;
}

static struct prof_device *device_ok(const char *json_text)
{
    cJSON *j = PJ(json_text);
    struct prof_device *d = NULL;
    struct err e = {0};

    if (prof_device_parse(j, &d, &e) != 0)
        fail_msg("device rejected: %s", e.detail);
    cJSON_Delete(j);
    return d;
}

/* Parse a fixture into *u; *msg must outlive u (decoded points into it). */
static void load_uplink(const char *name, enum uplink_format f, enum uplink_event ev, cJSON **msg,
                        struct uplink *u)
{
    char *text = read_fixture(name);
    struct err e = {0};

    *msg = cJSON_Parse(text);
    free(text);
    assert_non_null(*msg);
    if (uplink_parse(f, ev, *msg, u, &e) != 0)
        fail_msg("%s: %s", name, e.detail);
}

static const char AIR_PROFILE[] =
    "{'id': 'air-quality-lpp', 'description': 'Air quality node, Cayenne LPP',"
    " 'codec': 'cayenne-lpp', 'entityType': 'AirQualityObserved',"
    " 'entityIdPattern': 'urn:ngsi-ld:AirQualityObserved:{devEui}',"
    " 'fields': ["
    "   {'from': 'temperature_1', 'attribute': 'temperature', 'unitCode': 'CEL'},"
    "   {'from': 'humidity_2', 'attribute': 'relativeHumidity', 'scale': 0.01},"
    "   {'from': 'analog_input_4', 'attribute': 'pm25', 'unitCode': 'GQ', 'scale': 1.0,"
    "    'offset': 0}],"
    " 'staticAttributes': {'dataProvider': 'Gemeente Voorbeeld'}}";

static const char AIR_DEVICE[] =
    "{'devEui': '70B3D57ED0051A17', 'profile': 'air-quality-lpp', 'name': 'air-node-017',"
    " 'owner': 'city', 'location': {'type': 'Point', 'coordinates': [4.8931, 52.3729]}}";

/* The main entity the air node's frame gives, observed at time t. */
#define AIR_ENTITY(t)                                                                              \
    "{'id': 'urn:ngsi-ld:AirQualityObserved:70b3d57ed0051a17',"                                    \
    " 'type': ['" ENV "AirQualityObserved'], 'attrs': {"                                           \
    " '" ENV "temperature': [{'type': 'Property', 'value': 18.4, 'unitCode': 'CEL',"               \
    "     'observedAt': '" t "'}],"                                                                \
    " '" ENV "relativeHumidity': [{'type': 'Property', 'value': 0.715, 'observedAt': '" t "'}],"   \
    " '" ENV "pm25': [{'type': 'Property', 'value': 12.34, 'unitCode': 'GQ',"                      \
    "     'observedAt': '" t "'}],"                                                                \
    " '" DV "dataProvider': [{'type': 'Property', 'value': 'Gemeente Voorbeeld'}],"                \
    " '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"                       \
    "     'coordinates': [4.8931, 52.3729]}}],"                                                    \
    " '" SL "refDevice': [{'type': 'Relationship',"                                                \
    "     'object': 'urn:ngsi-ld:Device:70b3d57ed0051a17'}]}}"

/* The Device companion's identity attributes of the air node. */
#define AIR_DEVICE_IDENTITY                                                                        \
    " '" DEV "serialNumber': [{'type': 'Property', 'value': '70B3D57ED0051A17'}],"                 \
    " '" DEV "supportedProtocol': [{'type': 'Property', 'value': ['lora']}],"                      \
    " '" DV "controlledAsset': [{'type': 'Relationship',"                                          \
    "     'object': 'urn:ngsi-ld:AirQualityObserved:70b3d57ed0051a17'}],"                          \
    " '" NAME_IRI "': [{'type': 'Property', 'value': 'air-node-017'}],"                            \
    " '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"                       \
    "     'coordinates': [4.8931, 52.3729]}}]"

#define AIR_DEVICE_UP(t, snr)                                                                      \
    "{'id': 'urn:ngsi-ld:Device:70b3d57ed0051a17', 'type': ['" DEV                                 \
    "Device'], 'attrs': {" AIR_DEVICE_IDENTITY ","                                                 \
    " '" DEV "rssi': [{'type': 'Property', 'value': -97, 'unitCode': 'DBM',"                       \
    "     'observedAt': '" t "'}],"                                                                \
    " '" DV "snr': [{'type': 'Property', 'value': " snr ", 'unitCode': '2N',"                      \
    "     'observedAt': '" t "'}],"                                                                \
    " '" DEV "dateLastValueReported': [{'type': 'Property',"                                       \
    "     'value': {'@type': 'DateTime', '@value': '" t "'}, 'observedAt': '" t "'}],"             \
    " '" DV "fCnt': [{'type': 'Property', 'value': 1842, 'observedAt': '" t "'}]}}"

/* ---- mapping the shared fixtures ------------------------------------------ */

static void map_air_fixture(const char *name, enum uplink_format f, const char *entity,
                            const char *device)
{
    struct prof *p = profile_ok(AIR_PROFILE);
    struct prof_device *d = device_ok(AIR_DEVICE);
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    cJSON *msg;

    load_uplink(name, f, UPLINK_EV_UP, &msg, &u);
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_null(out.reason);
    assert_null(out.field_reason);
    assert_int_equal(out.n_mapped, 3);
    assert_int_equal(out.n_unmapped, 1); /* barometer_3 */
    assert_int_equal(out.n_rejected, 0);
    assert_json(out.entity, entity);
    assert_json(out.device, device);
    prof_out_clear(&out);
    assert_null(out.entity);
    prof_out_clear(&out);
    uplink_free(&u);
    cJSON_Delete(msg);
    prof_device_free(d);
    prof_free(p);
}

static void test_fixture_lpp_chirpstack_v4(void **state)
{
    (void)state;
    map_air_fixture("lorawan/chirpstack-v4-up-cayenne.json", UPLINK_CHIRPSTACK_V4,
                    AIR_ENTITY("2026-06-12T08:15:02.118Z"),
                    AIR_DEVICE_UP("2026-06-12T08:15:02.118Z", "6.25"));
}

/* With PROF_MAP_MEASURED only the measurements remain: no static
 * attribute, registered location, refDevice or Device identity. */
static void test_map_measured_only(void **state)
{
    struct prof *p = profile_ok(AIR_PROFILE);
    struct prof_device *d = device_ok(AIR_DEVICE);
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    cJSON *msg;
    (void)state;

    load_uplink("lorawan/chirpstack-v4-up-cayenne.json", UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, &msg,
                &u);
    assert_int_equal(prof_map_opts(p, d, &u, NOW_MS, PROF_MAP_MEASURED, &out, &e), 0);
    assert_int_equal(out.n_mapped, 3);
    assert_json(out.entity,
                "{'id': 'urn:ngsi-ld:AirQualityObserved:70b3d57ed0051a17',"
                " 'type': ['" ENV "AirQualityObserved'], 'attrs': {"
                " '" ENV "temperature': [{'type': 'Property', 'value': 18.4, 'unitCode': 'CEL',"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}],"
                " '" ENV "relativeHumidity': [{'type': 'Property', 'value': 0.715,"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}],"
                " '" ENV "pm25': [{'type': 'Property', 'value': 12.34, 'unitCode': 'GQ',"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}]}}");
    assert_json(out.device,
                "{'id': 'urn:ngsi-ld:Device:70b3d57ed0051a17', 'type': ['" DEV "Device'],"
                " 'attrs': {"
                " '" DEV "rssi': [{'type': 'Property', 'value': -97, 'unitCode': 'DBM',"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}],"
                " '" DV "snr': [{'type': 'Property', 'value': 6.25, 'unitCode': '2N',"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}],"
                " '" DEV "dateLastValueReported': [{'type': 'Property',"
                "     'value': {'@type': 'DateTime', '@value': '2026-06-12T08:15:02.118Z'},"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}],"
                " '" DV "fCnt': [{'type': 'Property', 'value': 1842,"
                "     'observedAt': '2026-06-12T08:15:02.118Z'}]}}");
    prof_out_clear(&out);
    uplink_free(&u);
    cJSON_Delete(msg);
    prof_device_free(d);
    prof_free(p);
}

static void test_fixture_lpp_chirpstack_v3(void **state)
{
    (void)state;
    map_air_fixture("lorawan/chirpstack-v3-up.json", UPLINK_CHIRPSTACK_V3,
                    AIR_ENTITY("2026-06-12T08:15:02.101Z"),
                    AIR_DEVICE_UP("2026-06-12T08:15:02.101Z", "6.2"));
}

static void test_fixture_lpp_tts(void **state)
{
    (void)state;
    map_air_fixture("lorawan/tts-v3-up-cayenne.json", UPLINK_TTS_V3,
                    AIR_ENTITY("2026-06-12T08:15:02.112Z"),
                    AIR_DEVICE_UP("2026-06-12T08:15:02.112Z", "6.25"));
}

static const char CROWD_PROFILE[] =
    "{'id': 'light-post-counter', 'codec': 'network-decoded', 'entityType': 'CrowdFlowObserved',"
    " 'entityIdPattern': 'urn:ngsi-ld:CrowdFlowObserved:{name}',"
    " 'fields': ["
    "   {'from': 'peopleCountTowards', 'attribute': 'peopleCountTowards'},"
    "   {'from': 'peopleCountAway', 'attribute': 'peopleCountAway', 'type': 'Property'},"
    "   {'from': 'occupancy', 'attribute': 'occupancy', 'scale': 100, 'unitCode': 'P1'}],"
    " 'deviceEntity': false}";

static void map_crowd_fixture(const char *name, enum uplink_format f)
{
    struct prof *p = profile_ok(CROWD_PROFILE);
    struct prof_device *d =
        device_ok("{'devEui': 'a84041000181c905', 'profile': 'light-post-counter',"
                  " 'name': 'lightpost-05'}");
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    cJSON *msg;

    load_uplink(name, f, UPLINK_EV_UP, &msg, &u);
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_int_equal(out.n_mapped, 3);
    assert_int_equal(out.n_unmapped, 0);
    assert_null(out.device); /* deviceEntity false */
    if (f == UPLINK_CHIRPSTACK_V4)
        assert_json(out.entity,
                    "{'id': 'urn:ngsi-ld:CrowdFlowObserved:lightpost-05',"
                    " 'type': ['" TRANS "CrowdFlowObserved'], 'attrs': {"
                    " '" TRANS "peopleCountTowards': [{'type': 'Property', 'value': 57,"
                    "     'observedAt': '2026-06-12T08:15:04.502Z'}],"
                    " '" TRANS "peopleCountAway': [{'type': 'Property', 'value': 33,"
                    "     'observedAt': '2026-06-12T08:15:04.502Z'}],"
                    " '" TRANS "occupancy': [{'type': 'Property', 'value': 41, 'unitCode': 'P1',"
                    "     'observedAt': '2026-06-12T08:15:04.502Z'}]}}");
    else
        assert_json(out.entity,
                    "{'id': 'urn:ngsi-ld:CrowdFlowObserved:lightpost-05',"
                    " 'type': ['" TRANS "CrowdFlowObserved'], 'attrs': {"
                    " '" TRANS "peopleCountTowards': [{'type': 'Property', 'value': 57,"
                    "     'observedAt': '2026-06-12T08:15:02.112Z'}],"
                    " '" TRANS "peopleCountAway': [{'type': 'Property', 'value': 33,"
                    "     'observedAt': '2026-06-12T08:15:02.112Z'}],"
                    " '" TRANS "occupancy': [{'type': 'Property', 'value': 41, 'unitCode': 'P1',"
                    "     'observedAt': '2026-06-12T08:15:02.112Z'}]}}");
    prof_out_clear(&out);
    uplink_free(&u);
    cJSON_Delete(msg);
    prof_device_free(d);
    prof_free(p);
}

static void test_fixture_decoded(void **state)
{
    (void)state;
    map_crowd_fixture("lorawan/chirpstack-v4-up-decoded.json", UPLINK_CHIRPSTACK_V4);
    map_crowd_fixture("lorawan/tts-v3-up-decoded.json", UPLINK_TTS_V3);
}

static void map_event(const char *fixture, enum uplink_event ev, const char *device)
{
    struct prof *p = profile_ok(AIR_PROFILE);
    struct prof_device *d = device_ok(AIR_DEVICE);
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    cJSON *msg;

    load_uplink(fixture, UPLINK_CHIRPSTACK_V4, ev, &msg, &u);
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_null(out.entity);
    assert_int_equal(out.n_mapped + out.n_unmapped + out.n_rejected, 0);
    assert_json(out.device, device);
    prof_out_clear(&out);
    uplink_free(&u);
    cJSON_Delete(msg);
    prof_device_free(d);
    prof_free(p);
}

static void test_fixture_status_join_log(void **state)
{
    (void)state;
    map_event("lorawan/chirpstack-v4-status.json", UPLINK_EV_STATUS,
              "{'id': 'urn:ngsi-ld:Device:70b3d57ed0051a17', 'type': ['" DEV
              "Device'], 'attrs': {" AIR_DEVICE_IDENTITY ","
              " '" DEV "batteryLevel': [{'type': 'Property', 'value': 0.875,"
              "     'observedAt': '2026-06-12T09:00:00.000Z'}],"
              " '" DV "powerSource': [{'type': 'Property', 'value': 'battery',"
              "     'observedAt': '2026-06-12T09:00:00.000Z'}]}}");
    map_event(
        "lorawan/chirpstack-v4-join.json", UPLINK_EV_JOIN,
        "{'id': 'urn:ngsi-ld:Device:70b3d57ed0051a17', 'type': ['" DEV
        "Device'], 'attrs': {" AIR_DEVICE_IDENTITY ","
        " '" DV "lastJoinAt': [{'type': 'Property', 'value': {'@type': 'DateTime',"
        "     '@value': '2026-06-12T07:59:40.000Z'}, 'observedAt': '2026-06-12T07:59:40.000Z'}]}}");
    map_event("lorawan/chirpstack-v4-log.json", UPLINK_EV_LOG,
              "{'id': 'urn:ngsi-ld:Device:70b3d57ed0051a17', 'type': ['" DEV
              "Device'], 'attrs': {" AIR_DEVICE_IDENTITY ","
              " '" DV "lastLog': [{'type': 'Property', 'value': {'level': 'ERROR',"
              "     'code': 'UPLINK_CODEC', 'description': 'codec script failed'},"
              "     'observedAt': '2026-06-12T08:20:00.000Z'}]}}");
}

/* ---- mapping: synthetic uplinks ------------------------------------------- */

static void make_uplink(struct uplink *u, enum uplink_event ev, const uint8_t *payload, size_t len)
{
    memset(u, 0, sizeof(*u));
    u->event = ev;
    u->format = UPLINK_CHIRPSTACK_V4;
    strcpy(u->dev_eui, "0011223344556677");
    u->time_ms = 1781252100000LL; /* 2026-06-12T08:15:00.000Z */
    u->f_cnt = 7;
    u->f_port = 2;
    if (len > 0)
        memcpy(u->payload, payload, len);
    u->payload_len = len;
}

#define T "2026-06-12T08:15:00.000Z"

static void test_lpp_types_and_keep(void **state)
{
    /* ch1 accelerometer 1.234 -1.234 0; ch2 gps 52.3676 4.9041 2.5 m; ch3 colour;
     * ch4 temperature 27.2; ch5 temperature 25.5; ch6 humidity 71.5 */
    static const uint8_t frame[] = {0x01, 0x71, 0x04, 0xD2, 0xFB, 0x2E, 0x00, 0x00, 0x02,
                                    0x88, 0x07, 0xFD, 0x9C, 0x00, 0xBF, 0x91, 0x00, 0x00,
                                    0xFA, 0x03, 0x87, 0x10, 0x20, 0x30, 0x04, 0x67, 0x01,
                                    0x10, 0x05, 0x67, 0x00, 0xFF, 0x06, 0x68, 0x8F};
    struct prof *p = profile_ok(
        "{'id': 'tracker', 'codec': 'cayenne-lpp', 'entityType': 'Tracker',"
        " 'fields': [{'from': 'accelerometer_1', 'attribute': 'acc', 'scale': 2},"
        "            {'from': 'gps_2', 'attribute': 'location'},"
        "            {'from': 'colour', 'attribute': 'rgb'},"
        "            {'from': 'temperature', 'attribute': 'temperature', 'offset': -0.2}],"
        " 'unmapped': 'keep', 'deviceEntity': false}");
    struct prof_device *d = device_ok("{'devEui': '0011223344556677', 'profile': 'tracker',"
                                      " 'location': {'type': 'Point', 'coordinates': [1, 2]}}");
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    (void)state;

    make_uplink(&u, UPLINK_EV_UP, frame, sizeof(frame));
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_int_equal(out.n_mapped, 4);
    assert_int_equal(out.n_unmapped, 2);
    assert_int_equal(out.n_rejected, 0);
    /* the gps maps to location: the device's own location is not written */
    assert_json(out.entity,
                "{'id': 'urn:ngsi-ld:Tracker:0011223344556677', 'type': ['" DV
                "Tracker'], 'attrs': {"
                " '" DV "acc': [{'type': 'Property', 'value': {'x': 2.468, 'y': -2.468, 'z': 0},"
                "     'observedAt': '" T "'}],"
                " '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"
                "     'coordinates': [4.9041, 52.3676, 2.5]}, 'observedAt': '" T "'}],"
                " '" DV "rgb': [{'type': 'Property', 'value': {'r': 16, 'g': 32, 'b': 48},"
                "     'observedAt': '" T "'}],"
                " '" ENV "temperature': [{'type': 'Property', 'value': 27, 'observedAt': '" T "'}],"
                " '" DV "temperature_5': [{'type': 'Property', 'value': 25.5, 'unitCode': 'CEL',"
                "     'observedAt': '" T "'}],"
                " '" DV "humidity_6': [{'type': 'Property', 'value': 71.5, 'unitCode': 'P1',"
                "     'observedAt': '" T "'}]}}");
    assert_null(out.device);
    prof_out_clear(&out);
    prof_device_free(d);
    prof_free(p);
}

static void test_lpp_rejections(void **state)
{
    static const uint8_t truncated[] = {0x01, 0x67, 0x00};
    static const uint8_t unknown[] = {0x01, 0x67, 0x00, 0xB8, 0x02, 0xFE, 0x00};
    /* gps lat 838.8607 (raw 0x7FFFFF): not a latitude */
    static const uint8_t bad_gps[] = {0x01, 0x88, 0x7F, 0xFF, 0xFF, 0x00,
                                      0x00, 0x00, 0x00, 0x00, 0x00};
    struct prof *p = profile_ok(AIR_PROFILE);
    struct prof_device *d = device_ok(AIR_DEVICE);
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    (void)state;

    make_uplink(&u, UPLINK_EV_UP, truncated, sizeof(truncated));
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), ERR_BAD_DATA);
    assert_string_equal(out.reason, "lpp_truncated");
    assert_null(out.entity);
    assert_null(out.device);
    assert_string_equal(e.detail, "Cayenne LPP frame rejected: truncated (lpp_truncated)");

    err_clear(&e);
    make_uplink(&u, UPLINK_EV_UP, unknown, sizeof(unknown));
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), ERR_BAD_DATA);
    assert_string_equal(out.reason, "lpp_unknown_type");
    assert_null(out.device);

    /* the only mapped value is bad: the uplink is rejected as bad_field */
    {
        struct prof *tracker = profile_ok("{'id': 't', 'codec': 'cayenne-lpp', 'entityType': 'T',"
                                          " 'fields': [{'from': 'gps', 'attribute': 'location'}]}");

        err_clear(&e);
        make_uplink(&u, UPLINK_EV_UP, bad_gps, sizeof(bad_gps));
        assert_int_equal(prof_map(tracker, d, &u, NOW_MS, &out, &e), ERR_BAD_DATA);
        prof_free(tracker);
    }
    assert_string_equal(out.reason, "bad_field");
    assert_string_equal(out.field_reason, "out_of_range");
    assert_int_equal(out.n_rejected, 1);
    assert_string_equal(e.detail, "nothing mapped: field 'gps': latitude or longitude out of "
                                  "range (out_of_range)");
    assert_null(out.entity);
    assert_null(out.device);

    /* empty payload: no main entity, the Device still reports */
    err_clear(&e);
    make_uplink(&u, UPLINK_EV_UP, NULL, 0);
    u.has_rssi = 0;
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_null(out.entity);
    assert_json(out.device,
                "{'id': 'urn:ngsi-ld:Device:70b3d57ed0051a17', 'type': ['" DEV
                "Device'], 'attrs': {" AIR_DEVICE_IDENTITY ","
                " '" DEV "dateLastValueReported': [{'type': 'Property',"
                "     'value': {'@type': 'DateTime', '@value': '" T "'}, 'observedAt': '" T "'}],"
                " '" DV "fCnt': [{'type': 'Property', 'value': 7, 'observedAt': '" T "'}]}}");
    prof_out_clear(&out);

    /* only unmapped values and "ignore": nothing for the main entity */
    {
        static const uint8_t baro[] = {0x03, 0x73, 0x27, 0x8B};

        make_uplink(&u, UPLINK_EV_UP, baro, sizeof(baro));
        u.time_ms = 0; /* no network time: now */
        assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
        assert_null(out.entity);
        assert_int_equal(out.n_unmapped, 1);
        assert_json(cJSON_GetObjectItem(cJSON_GetObjectItem(out.device, "attrs"), DV "fCnt"),
                    "[{'type': 'Property', 'value': 7, 'observedAt': '2026-06-12T09:00:00.000Z'}]");
        prof_out_clear(&out);
    }
    prof_device_free(d);
    prof_free(p);
}

static void test_decoded_fields(void **state)
{
    struct prof *p =
        profile_ok("{'id': 'multi', 'codec': 'network-decoded', 'entityType': 'Thing',"
                   " 'entityIdPattern': 'urn:x:{DEVEUI}:{name}:{type}',"
                   " 'fields': [{'from': 'sensors.pm25', 'attribute': 'pm25', 'unitCode': 'GQ'},"
                   "            {'from': 'sensors.deep.a.b', 'attribute': 'deep'},"
                   "            {'from': 'count', 'attribute': 'count', 'scale': 0.5, 'offset': 1},"
                   "            {'from': 'label', 'attribute': 'label', 'scale': 2},"
                   "            {'from': 'owner', 'attribute': 'owner', 'type': 'Relationship'},"
                   "            {'from': 'other', 'attribute': 'other', 'type': 'Relationship'},"
                   "            {'from': 'area', 'attribute': 'area', 'type': 'GeoProperty'},"
                   "            {'from': 'badarea', 'attribute': 'badarea', 'type': 'GeoProperty'},"
                   "            {'from': 'missing', 'attribute': 'missing'},"
                   "            {'from': 'nothing', 'attribute': 'nothing'}],"
                   " 'unmapped': 'keep', 'staticAttributes': {'reliability': 0.9, 'tags': ['a']}}");
    struct prof_device *d =
        device_ok("{'devEui': '0011223344556677', 'profile': 'multi', 'name': 'post 5/b',"
                  " 'location': {'type': 'Point', 'coordinates': [4.5, 52.5, 1]}}");
    cJSON *obj = PJ("{'sensors': {'pm25': 12.5, 'deep': {'a': {'b': [1, 2]}}},"
                    " 'count': 10, 'label': 'x', 'owner': 'urn:ngsi-ld:Party:1',"
                    " 'other': 'not a uri', 'area': {'type': 'Point', 'coordinates': [1, 2]},"
                    " 'badarea': {'type': 'Point', 'coordinates': [500, 2]},"
                    " 'nothing': null, 'extra': {'k': true}, 'bad name': 1, 'skip': null}");
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    (void)state;

    make_uplink(&u, UPLINK_EV_UP, (const uint8_t *)"\x01", 1);
    u.decoded = obj;
    u.has_rssi = 1;
    u.rssi = -101.5;
    u.snr = -3;
    strcpy(u.device_name, "ignored-device-name"); /* the device's own name wins */
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_int_equal(out.n_mapped, 5);
    assert_int_equal(out.n_unmapped, 2); /* extra, bad name */
    assert_int_equal(out.n_rejected, 4); /* label, other, badarea, bad name */
    assert_string_equal(out.field_reason, "not_a_number");
    assert_json(
        out.entity,
        "{'id': 'urn:x:0011223344556677:post%205%2Fb:Thing', 'type': ['" DV "Thing'], 'attrs': {"
        " '" ENV "pm25': [{'type': 'Property', 'value': 12.5, 'unitCode': 'GQ',"
        "     'observedAt': '" T "'}],"
        " '" DV "deep': [{'type': 'Property', 'value': [1, 2], 'observedAt': '" T "'}],"
        " '" DV "count': [{'type': 'Property', 'value': 6, 'observedAt': '" T "'}],"
        " '" DV "owner': [{'type': 'Relationship', 'object': 'urn:ngsi-ld:Party:1',"
        "     'observedAt': '" T "'}],"
        " '" DV "area': [{'type': 'GeoProperty', 'value': {'type': 'Point',"
        "     'coordinates': [1, 2]}, 'observedAt': '" T "'}],"
        " '" DV "extra': [{'type': 'Property', 'value': {'k': true}, 'observedAt': '" T "'}],"
        " '" ENV "reliability': [{'type': 'Property', 'value': 0.9}],"
        " '" DV "tags': [{'type': 'Property', 'value': ['a']}],"
        " '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"
        "     'coordinates': [4.5, 52.5, 1]}}],"
        " '" SL "refDevice': [{'type': 'Relationship',"
        "     'object': 'urn:ngsi-ld:Device:0011223344556677'}]}}");
    assert_json(out.device,
                "{'id': 'urn:ngsi-ld:Device:0011223344556677', 'type': ['" DEV
                "Device'], 'attrs': {"
                " '" DEV "serialNumber': [{'type': 'Property', 'value': '0011223344556677'}],"
                " '" DEV "supportedProtocol': [{'type': 'Property', 'value': ['lora']}],"
                " '" DV "controlledAsset': [{'type': 'Relationship',"
                "     'object': 'urn:x:0011223344556677:post%205%2Fb:Thing'}],"
                " '" NAME_IRI "': [{'type': 'Property', 'value': 'post 5/b'}],"
                " '" NS "location': [{'type': 'GeoProperty', 'value': {'type': 'Point',"
                "     'coordinates': [4.5, 52.5, 1]}}],"
                " '" DEV "rssi': [{'type': 'Property', 'value': -101.5, 'unitCode': 'DBM',"
                "     'observedAt': '" T "'}],"
                " '" DV "snr': [{'type': 'Property', 'value': -3, 'unitCode': '2N',"
                "     'observedAt': '" T "'}],"
                " '" DEV "dateLastValueReported': [{'type': 'Property',"
                "     'value': {'@type': 'DateTime', '@value': '" T "'}, 'observedAt': '" T "'}],"
                " '" DV "fCnt': [{'type': 'Property', 'value': 7, 'observedAt': '" T "'}]}}");
    prof_out_clear(&out);

    /* no decoded object for a non-empty payload */
    u.decoded = NULL;
    err_clear(&e);
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), ERR_BAD_DATA);
    assert_string_equal(out.reason, "no_decoded_object");
    assert_null(out.device);

    /* every value bad: the uplink is rejected, the first rejection named */
    cJSON_Delete(obj);
    obj = PJ("{'label': 'x', 'count': 'y'}");
    u.decoded = obj;
    err_clear(&e);
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), ERR_BAD_DATA);
    assert_string_equal(out.reason, "bad_field");
    assert_int_equal(out.n_rejected, 2);
    assert_string_equal(e.detail, "nothing mapped: field 'count': scale/offset needs a number "
                                  "(not_a_number)");
    cJSON_Delete(obj);
    prof_device_free(d);
    prof_free(p);
}

static void test_raw_and_entity_ids(void **state)
{
    static const uint8_t bytes[] = {0x00, 0xAB, 0xFF};
    struct prof *p = profile_ok("{'id': 'raw', 'codec': 'raw', 'entityType': 'Blob',"
                                " 'staticAttributes': {'source': 'x'}}");
    struct prof_device *d = device_ok("{'devEui': 'AABBCCDDEEFF0011', 'profile': 'raw',"
                                      " 'entityId': 'urn:ngsi-ld:Blob:mine'}");
    struct prof_device *d2 = device_ok("{'devEui': 'aabbccddeeff0011', 'profile': 'raw'}");
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    char id[64];
    (void)state;

    make_uplink(&u, UPLINK_EV_UP, bytes, sizeof(bytes));
    u.f_port = 9;
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_int_equal(out.n_mapped, 1);
    assert_json(out.entity,
                "{'id': 'urn:ngsi-ld:Blob:mine', 'type': ['" DV "Blob'], 'attrs': {"
                " '" DV "payload': [{'type': 'Property', 'value': '00abff', 'observedAt': '" T
                "'}],"
                " '" DV "fPort': [{'type': 'Property', 'value': 9, 'observedAt': '" T "'}],"
                " '" DV "source': [{'type': 'Property', 'value': 'x'}],"
                " '" SL "refDevice': [{'type': 'Relationship',"
                "     'object': 'urn:ngsi-ld:Device:aabbccddeeff0011'}]}}");
    prof_out_clear(&out);

    assert_int_equal(prof_entity_id(p, d, id, sizeof(id), &e), 0);
    assert_string_equal(id, "urn:ngsi-ld:Blob:mine");
    assert_int_equal(prof_entity_id(p, d2, id, sizeof(id), &e), 0);
    assert_string_equal(id, "urn:ngsi-ld:Blob:aabbccddeeff0011");
    /* too small a buffer */
    assert_int_equal(prof_entity_id(p, d2, id, 20, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "entity id of device aabbccddeeff0011 is longer than 19 bytes");
    err_clear(&e);
    assert_int_equal(prof_entity_id(p, d, id, 10, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "entity id of device aabbccddeeff0011 is too long");
    prof_device_free(d);
    prof_device_free(d2);
    prof_free(p);

    /* {name} without a name: the DevEUI; a pattern whose result is no URI */
    p = profile_ok("{'id': 'n', 'codec': 'raw', 'entityType': 'T',"
                   " 'entityIdPattern': 'urn:t:{name}'}");
    d = device_ok("{'devEui': '0011223344556677', 'profile': 'n'}");
    err_clear(&e);
    assert_int_equal(prof_entity_id(p, d, id, sizeof(id), &e), 0);
    assert_string_equal(id, "urn:t:0011223344556677");
    prof_free(p);
    p = profile_ok("{'id': 'n', 'codec': 'raw', 'entityType': 'T',"
                   " 'entityIdPattern': '{name}'}");
    assert_int_equal(prof_entity_id(p, d, id, sizeof(id), &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "entity id '0011223344556677' of device 0011223344556677 is "
                                  "not an absolute URI");
    err_clear(&e);
    make_uplink(&u, UPLINK_EV_UP, bytes, sizeof(bytes));
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), ERR_BAD_DATA);
    assert_string_equal(out.reason, "bad_entity_id");
    assert_null(out.entity);
    assert_null(out.device);
    prof_device_free(d);
    prof_free(p);
}

static void test_status_external_power(void **state)
{
    struct prof *p = profile_ok("{'id': 'raw', 'codec': 'raw', 'entityType': 'Blob'}");
    struct prof_device *d = device_ok("{'devEui': '0011223344556677', 'profile': 'raw'}");
    struct prof_out out;
    struct uplink u;
    struct err e = {0};
    const cJSON *attrs;
    (void)state;

    make_uplink(&u, UPLINK_EV_STATUS, NULL, 0);
    u.external_power = 1;
    strcpy(u.device_name, "from-network");
    assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
    assert_null(out.entity);
    attrs = cJSON_GetObjectItem(out.device, "attrs");
    assert_json(cJSON_GetObjectItem(attrs, DV "powerSource"),
                "[{'type': 'Property', 'value': 'external', 'observedAt': '" T "'}]");
    assert_null(cJSON_GetObjectItem(attrs, DEV "batteryLevel"));
    /* no device name: the network server's */
    assert_json(cJSON_GetObjectItem(attrs, NAME_IRI),
                "[{'type': 'Property', 'value': 'from-network'}]");
    assert_null(cJSON_GetObjectItem(attrs, NS "location"));
    assert_int_equal(cJSON_GetArraySize(attrs), 5);
    prof_out_clear(&out);
    prof_device_free(d);
    prof_free(p);

    /* deviceEntity off: status, join and log produce nothing */
    p = profile_ok("{'id': 'raw', 'codec': 'raw', 'entityType': 'Blob', 'deviceEntity': false}");
    d = device_ok("{'devEui': '0011223344556677', 'profile': 'raw'}");
    for (int ev = UPLINK_EV_STATUS; ev <= UPLINK_EV_LOG; ev++) {
        make_uplink(&u, (enum uplink_event)ev, NULL, 0);
        assert_int_equal(prof_map(p, d, &u, NOW_MS, &out, &e), 0);
        assert_null(out.entity);
        assert_null(out.device);
    }
    prof_device_free(d);
    prof_free(p);
}

/* ---- out of memory: every cJSON allocation fails in turn ------------------- */

static int alloc_budget = -1; /* -1: unlimited */

static void *limited_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void limited_free(void *ptr)
{
    free(ptr);
}

static void set_budget(int n)
{
    cJSON_Hooks hooks = {limited_malloc, limited_free};

    alloc_budget = n;
    cJSON_InitHooks(n < 0 ? NULL : &hooks);
}

static void test_out_of_memory(void **state)
{
    struct prof *p =
        profile_ok("{'id': 'multi', 'codec': 'network-decoded', 'entityType': 'Thing',"
                   " 'fields': [{'from': 's.pm25', 'attribute': 'pm25', 'unitCode': 'GQ'},"
                   "            {'from': 'count', 'attribute': 'count', 'scale': 0.5},"
                   "            {'from': 'owner', 'attribute': 'owner', 'type': 'Relationship'},"
                   "            {'from': 'area', 'attribute': 'area', 'type': 'GeoProperty'}],"
                   " 'unmapped': 'keep', 'staticAttributes': {'reliability': 0.9}}");
    struct prof *lpp = profile_ok(AIR_PROFILE);
    struct prof_device *d = device_ok(AIR_DEVICE);
    cJSON *obj = PJ("{'s': {'pm25': 12.5}, 'count': 10, 'owner': 'urn:x:1',"
                    " 'area': {'type': 'Point', 'coordinates': [1, 2]}, 'extra': [1, {'a': 2}]}");
    static const uint8_t frame[] = {0x01, 0x67, 0x00, 0xB8, 0x02, 0x68, 0x8F, 0x03,
                                    0x73, 0x27, 0x8B, 0x04, 0x02, 0x04, 0xD2};
    enum uplink_event events[] = {UPLINK_EV_UP, UPLINK_EV_STATUS, UPLINK_EV_JOIN, UPLINK_EV_LOG};
    struct prof_out out;
    struct uplink u;
    struct err e;
    cJSON *j = NULL;
    int n, rc;
    (void)state;

    for (size_t k = 0; k < 2 * sizeof(events) / sizeof(events[0]); k++) {
        const struct prof *which = k % 2 ? lpp : p;

        make_uplink(&u, events[k / 2], frame, sizeof(frame));
        u.decoded = obj;
        u.has_rssi = u.has_battery = 1;
        for (n = 0;; n++) {
            err_clear(&e);
            set_budget(n);
            rc = prof_map(which, d, &u, NOW_MS, &out, &e);
            set_budget(-1);
            if (rc == 0)
                break;
            assert_int_equal(rc, ERR_NOMEM);
            assert_string_equal(out.reason, "nomem");
            assert_null(out.entity);
            assert_null(out.device);
        }
        assert_true(n > 10);
        assert_non_null(out.device);
        prof_out_clear(&out);
    }
    for (n = 0;; n++) {
        set_budget(n);
        rc = prof_to_json(p, &j);
        set_budget(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(j);
    }
    assert_true(n > 0); /* the failure paths ran */
    cJSON_Delete(j);
    for (n = 0;; n++) {
        set_budget(n);
        rc = prof_device_to_json(d, &j);
        set_budget(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(j);
    }
    assert_true(n > 0); /* the failure paths ran */
    cJSON_Delete(j);
    for (n = 0;; n++) {
        static const char csv[] = "devEui,profile,lat,lon\n0011223344556677,a,52,4\n"
                                  "0011223344556678,a,,\n";
        err_clear(&e);
        set_budget(n);
        rc = prof_devices_csv(csv, strlen(csv), &j, &e);
        set_budget(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(j);
    }
    assert_true(n > 0); /* the failure paths ran */
    assert_int_equal(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);
    /* parsing copies static values and tags */
    j = PJ("{'id': 'p', 'codec': 'raw', 'entityType': 'T',"
           " 'staticAttributes': {'a': {'b': [1, 2]}, 'c': 'd'}}");
    for (n = 0;; n++) {
        struct prof *q = (struct prof *)1;

        err_clear(&e);
        set_budget(n);
        rc = prof_parse(j, expand_city, city, &q, &e);
        set_budget(-1);
        if (rc == 0) {
            prof_free(q);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(q);
    }
    assert_true(n > 2);
    cJSON_Delete(j);
    j = PJ("{'devEui': '0011223344556677', 'profile': 'p', 'tags': {'a': 'b', 'c': 'd'}}");
    for (n = 0;; n++) {
        struct prof_device *dev = (struct prof_device *)1;

        err_clear(&e);
        set_budget(n);
        rc = prof_device_parse(j, &dev, &e);
        set_budget(-1);
        if (rc == 0) {
            prof_device_free(dev);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(dev);
    }
    assert_true(n > 2);
    cJSON_Delete(j);
    cJSON_Delete(obj);
    prof_device_free(d);
    prof_free(lpp);
    prof_free(p);
}

/* ---- profile validation ---------------------------------------------------- */

static void expect_bad_profile(const char *json_text, const char *detail)
{
    cJSON *j = PJ(json_text);
    struct prof *p = (struct prof *)1;
    struct err e = {0};

    assert_int_equal(prof_parse(j, expand_city, city, &p, &e), ERR_BAD_DATA);
    assert_null(p);
    if (strcmp(e.detail, detail) != 0)
        fail_msg("for %s\n got:      %s\n expected: %s", json_text, e.detail, detail);
    cJSON_Delete(j);
}

#define BASE "'id': 'p', 'codec': 'cayenne-lpp', 'entityType': 'T'"
#define DBASE "'id': 'p', 'codec': 'network-decoded', 'entityType': 'T'"

static void test_profile_validation(void **state)
{
    char long_name[200], text[512];
    (void)state;

    expect_bad_profile("[]", "a device profile must be a JSON object");
    expect_bad_profile("{" BASE ", 'feilds': []}", "unknown member 'feilds' in the device profile");
    expect_bad_profile("{'codec': 'raw', 'entityType': 'T'}", "id is required");
    expect_bad_profile("{'id': 7, 'codec': 'raw', 'entityType': 'T'}", "id must be a string");
    expect_bad_profile("{'id': 'a b', 'codec': 'raw', 'entityType': 'T'}",
                       "id must be 1 to 64 characters among A-Z a-z 0-9 . _ -");
    expect_bad_profile("{'id': '', 'codec': 'raw', 'entityType': 'T'}",
                       "id must be 1 to 64 characters among A-Z a-z 0-9 . _ -");
    expect_bad_profile("{'id': 'p', 'entityType': 'T'}", "codec is required");
    expect_bad_profile("{'id': 'p', 'codec': 'lpp', 'entityType': 'T'}",
                       "codec must be cayenne-lpp, network-decoded or raw");
    expect_bad_profile("{'id': 'p', 'codec': 'raw'}", "entityType is required");
    expect_bad_profile("{'id': 'p', 'codec': 'raw', 'entityType': 'A B'}",
                       "entityType 'A B' is not a valid type name");
    expect_bad_profile("{'id': 'p', 'codec': 'raw', 'entityType': 'id'}",
                       "entityType 'id' is not a valid type name");
    {
        /* 513 bytes: built with cJSON to avoid a huge literal */
        cJSON *j = PJ("{" BASE "}");
        struct prof *p = NULL;
        struct err e = {0};
        char *desc = malloc(514);

        memset(desc, 'd', 513);
        desc[513] = '\0';
        cJSON_AddStringToObject(j, "description", desc);
        assert_int_equal(prof_parse(j, expand_city, city, &p, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail, "description is longer than 512 bytes");
        free(desc);
        cJSON_Delete(j);
    }
    expect_bad_profile("{" BASE ", 'description': 5}", "description must be a string");
    expect_bad_profile("{" BASE ", 'entityIdPattern': 'urn:x:{deveui}'}",
                       "entityIdPattern: unknown placeholder at '{deveui}' (use {devEui}, "
                       "{DEVEUI}, {name}, {type})");
    expect_bad_profile("{" BASE ", 'entityIdPattern': 'urn:x:}'}",
                       "entityIdPattern: unbalanced '}'");
    expect_bad_profile("{" BASE ", 'entityIdPattern': ''}",
                       "entityIdPattern must be 1 to 256 characters");
    expect_bad_profile("{" BASE ", 'fields': {}}", "fields must be an array");
    expect_bad_profile("{" BASE ", 'fields': [1]}", "fields[0] must be an object");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 't',"
                       " 'unit': 'CEL'}]}",
                       "unknown member 'unit' in the fields[0]");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 't',"
                       " 'attribute': 'u'}]}",
                       "member 'attribute' appears twice in the fields[0]");
    expect_bad_profile("{" BASE ", 'codec': 'raw'}",
                       "member 'codec' appears twice in the device profile");
    expect_bad_profile("{" BASE ", 'staticAttributes': {'a': 1, 'a': 2}}",
                       "staticAttributes.a appears twice");
    expect_bad_profile("{" BASE ", 'staticAttributes': {'a': [{'x': 1, 'x': 2}]}}",
                       "staticAttributes.a has an object with a member twice");
    expect_bad_profile("{" BASE ", 'fields': [{'attribute': 't'}]}", "fields[0].from is required");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1'}]}",
                       "fields[0].attribute is required");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 1}]}",
                       "fields[0].attribute must be a string");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temprature_1', 'attribute': 't'}]}",
                       "fields[0].from 'temprature_1' is not a Cayenne LPP name (<type>_<channel>, "
                       "e.g. temperature_1)");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_256', 'attribute': 't'}]}",
                       "fields[0].from 'temperature_256' is not a Cayenne LPP name "
                       "(<type>_<channel>, e.g. temperature_1)");
    expect_bad_profile("{" BASE ", 'fields': [{'from': '', 'attribute': 't'}]}",
                       "fields[0].from must be a name of 1 to 128 characters");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'a..b', 'attribute': 't'}]}",
                       "fields[0].from 'a..b' has an empty path segment");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'a.b.c.d.e.f.g.h.i', 'attribute': 't'}]}",
                       "fields[0].from 'a.b.c.d.e.f.g.h.i' is deeper than 8 levels");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 'a b'}]}",
                       "fields[0].attribute 'a b' is not a valid attribute name");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 'value'}]}",
                       "fields[0].attribute 'value' is not a valid attribute name");
    /* a JSON-LD keyword (found by fuzz_profile: "@vocab" met the stored iris's own) */
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'gps_1', 'attribute': '@vocab'}]}",
                       "fields[0].attribute '@vocab' is not a valid attribute name");
    memset(long_name, 'a', 129);
    long_name[129] = '\0';
    snprintf(text, sizeof(text),
             "{" BASE ", 'fields': [{'from': 'temperature_1',"
             " 'attribute': '%s'}]}",
             long_name);
    snprintf(long_name + 60, 80, "' is not a valid attribute name");
    {
        char want[300];

        snprintf(want, sizeof(want), "fields[0].attribute '%s", long_name);
        expect_bad_profile(text, want);
    }
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 't',"
                       " 'type': 'Prop'}]}",
                       "fields[0].type must be Property, GeoProperty or Relationship");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'gps_1', 'attribute': 'pos',"
                       " 'type': 'Property'}]}",
                       "fields[0]: an LPP gps value is a GeoProperty");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 't',"
                       " 'type': 'Relationship'}]}",
                       "fields[0]: an LPP temperature value is a Property");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'location'}]}",
                       "fields[0]: location must be a GeoProperty");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'r',"
                       " 'type': 'Relationship', 'unitCode': 'C62'}]}",
                       "fields[0].unitCode applies to a Property only");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'r', 'unitCode': ''}]}",
                       "fields[0].unitCode must be 1 to 16 characters");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'r',"
                       " 'unitCode': 'g/m'}]}",
                       "fields[0].unitCode must be a UN/CEFACT code (letters and digits)");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'r', 'scale': '2'}]}",
                       "fields[0].scale must be a finite number");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'r', 'offset': true}]}",
                       "fields[0].offset must be a finite number");
    expect_bad_profile("{" DBASE ", 'fields': [{'from': 'x', 'attribute': 'r', 'scale': 2,"
                       " 'type': 'Relationship'}]}",
                       "fields[0]: scale and offset apply to a Property only");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'gps_1', 'attribute': 'location',"
                       " 'offset': 1}]}",
                       "fields[0]: scale and offset apply to a Property only");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 'a'},"
                       " {'from': 'temperature_2', 'attribute': 'a'}]}",
                       "fields[1].attribute 'a' is already used by fields[0]");
    /* two terms, one IRI */
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 'a'},"
                       " {'from': 'temperature_2', 'attribute': '" DV "a'}]}",
                       "fields[1].attribute '" DV "a' is already used by fields[0]");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1',"
                       " 'attribute': 'refDevice'}]}",
                       "fields[0].attribute: refDevice is set by the Device companion");
    expect_bad_profile("{'id': 'p', 'codec': 'raw', 'entityType': 'T',"
                       " 'fields': [{'from': 'x', 'attribute': 'y'}]}",
                       "fields: the raw codec maps no fields");
    expect_bad_profile("{" BASE ", 'unmapped': 'drop'}", "unmapped must be ignore or keep");
    expect_bad_profile("{" BASE ", 'staticAttributes': []}", "staticAttributes must be an object");
    expect_bad_profile("{" BASE ", 'staticAttributes': {'a': null}}",
                       "staticAttributes.a must not be null");
    expect_bad_profile("{" BASE ", 'staticAttributes': {'a b': 1}}",
                       "staticAttributes: 'a b' is not a valid attribute name");
    expect_bad_profile("{" BASE ", 'staticAttributes': {'location': 1}}",
                       "staticAttributes.location: location comes from the device or a field");
    expect_bad_profile("{" BASE ", 'staticAttributes': {'refDevice': 'x'}}",
                       "staticAttributes.refDevice: refDevice is set by the Device companion");
    expect_bad_profile("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 'a'}],"
                       " 'staticAttributes': {'a': 1}}",
                       "staticAttributes.a is already mapped by fields[0]");
    expect_bad_profile("{'id': 'p', 'codec': 'raw', 'entityType': 'T',"
                       " 'staticAttributes': {'payload': 1}}",
                       "staticAttributes.payload is written by the raw codec");
    expect_bad_profile("{" BASE ", 'deviceEntity': 'yes'}", "deviceEntity must be true or false");
    expect_bad_profile("{" BASE ", 'iris': []}", "iris must be an object");

    /* refDevice is free when there is no Device companion */
    {
        struct prof *p = profile_ok("{" BASE ", 'deviceEntity': false,"
                                    " 'staticAttributes': {'refDevice': 'urn:x:1'}}");
        prof_free(p);
    }
}

static void test_profile_caps(void **state)
{
    cJSON *j = PJ("{" BASE "}"), *fields = cJSON_AddArrayToObject(j, "fields");
    cJSON *statics = cJSON_CreateObject();
    struct prof *p = NULL;
    struct err e = {0};
    char name[32];
    (void)state;

    for (int i = 0; i < PROF_MAX_FIELDS; i++) {
        cJSON *f = cJSON_CreateObject();

        snprintf(name, sizeof(name), "temperature_%d", i);
        cJSON_AddStringToObject(f, "from", name);
        snprintf(name, sizeof(name), "t%d", i);
        cJSON_AddStringToObject(f, "attribute", name);
        cJSON_AddItemToArray(fields, f);
    }
    assert_int_equal(prof_parse(j, expand_city, city, &p, &e), 0);
    prof_free(p);
    cJSON_AddItemToArray(fields, cJSON_Duplicate(cJSON_GetArrayItem(fields, 0), 1));
    assert_int_equal(prof_parse(j, expand_city, city, &p, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "fields: more than 64 entries");
    cJSON_DeleteItemFromObject(j, "fields");

    for (int i = 0; i <= PROF_MAX_STATIC; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        cJSON_AddNumberToObject(statics, name, i);
    }
    cJSON_AddItemToObject(j, "staticAttributes", statics);
    err_clear(&e);
    assert_int_equal(prof_parse(j, expand_city, city, &p, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "staticAttributes: more than 64 members");
    cJSON_DeleteItemFromObject(j, "staticAttributes");
    {
        char *big = malloc(5000);
        cJSON *s = cJSON_AddObjectToObject(j, "staticAttributes");

        memset(big, 'x', 4999);
        big[4999] = '\0';
        cJSON_AddStringToObject(s, "big", big);
        free(big);
        err_clear(&e);
        assert_int_equal(prof_parse(j, expand_city, city, &p, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail, "staticAttributes.big is larger than 4096 bytes");
    }
    cJSON_Delete(j);
}

static void test_profile_expander(void **state)
{
    cJSON *j = PJ("{" BASE ", 'fields': [{'from': 'temperature_1', 'attribute': 't'}]}");
    struct prof *p = NULL;
    struct err e = {0};
    (void)state;

    /* an expander that runs out of memory at each possible call */
    int parsed_at = -1;
    for (int budget = 0; budget < 40 && parsed_at < 0; budget++) {
        int rc;

        expand_budget = budget;
        err_clear(&e);
        rc = prof_parse(j, expand_limited, city, &p, &e);
        if (rc == 0) {
            parsed_at = budget;
            prof_free(p);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(p);
    }
    assert_int_equal(parsed_at, 20); /* type, 17 companion terms, probe, field */
    /* no @vocab to be found: kept names use the default vocabulary */
    {
        cJSON *raw = PJ("{'id': 'r', 'codec': 'raw', 'entityType': 'T', 'unmapped': 'keep'}");
        cJSON *stored;

        err_clear(&e);
        assert_int_equal(prof_parse(raw, expand_fixed, NULL, &p, &e), 0);
        assert_int_equal(prof_to_json(p, &stored), 0);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(stored, "iris"), "@vocab")->valuestring, DV);
        assert_string_equal(prof_entity_type_iri(p), "urn:fixed:1");
        cJSON_Delete(stored);
        cJSON_Delete(raw);
        prof_free(p);
    }
    err_clear(&e);
    assert_int_equal(prof_parse(j, expand_relative, NULL, &p, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "entityType 'T' does not expand to an absolute IRI");
    err_clear(&e);
    assert_int_equal(prof_parse(j, NULL, NULL, &p, &e), ERR_BAD_DATA);
    assert_string_equal(e.detail, "iris is required to load a profile without a @context");
    cJSON_Delete(j);
}

/* ---- stored form ------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    static const char *const profiles[] = {
        AIR_PROFILE, CROWD_PROFILE,
        "{'id': 'r', 'codec': 'raw', 'entityType': 'https://ex.org/Blob', 'unmapped': 'keep'}"};
    struct prof *p, *q;
    cJSON *stored, *again;
    struct err e = {0};
    (void)state;

    p = profile_ok(AIR_PROFILE);
    assert_int_equal(prof_to_json(p, &stored), 0);
    assert_json(
        stored,
        "{'id': 'air-quality-lpp', 'description': 'Air quality node, Cayenne LPP',"
        " 'codec': 'cayenne-lpp', 'entityType': 'AirQualityObserved',"
        " 'entityIdPattern': 'urn:ngsi-ld:AirQualityObserved:{devEui}',"
        " 'fields': ["
        "   {'from': 'temperature_1', 'attribute': 'temperature', 'type': 'Property',"
        "    'unitCode': 'CEL'},"
        "   {'from': 'humidity_2', 'attribute': 'relativeHumidity', 'type': 'Property',"
        "    'scale': 0.01},"
        "   {'from': 'analog_input_4', 'attribute': 'pm25', 'type': 'Property', 'unitCode': 'GQ',"
        "    'scale': 1, 'offset': 0}],"
        " 'unmapped': 'ignore', 'staticAttributes': {'dataProvider': 'Gemeente Voorbeeld'},"
        " 'deviceEntity': true,"
        " 'iris': {'AirQualityObserved': '" ENV "AirQualityObserved',"
        "   'temperature': '" ENV "temperature', 'relativeHumidity': '" ENV "relativeHumidity',"
        "   'pm25': '" ENV "pm25', 'location': '" NS "location',"
        "   'dataProvider': '" DV "dataProvider',"
        "   'Device': '" DEV "Device', 'serialNumber': '" DEV "serialNumber',"
        "   'supportedProtocol': '" DEV "supportedProtocol',"
        "   'controlledAsset': '" DV "controlledAsset',"
        "   'rssi': '" DEV "rssi', 'snr': '" DV "snr',"
        "   'dateLastValueReported': '" DEV "dateLastValueReported', 'fCnt': '" DV "fCnt',"
        "   'batteryLevel': '" DEV "batteryLevel', 'powerSource': '" DV "powerSource',"
        "   'lastJoinAt': '" DV "lastJoinAt', 'lastLog': '" DV "lastLog',"
        "   'refDevice': '" SL "refDevice', 'name': '" NAME_IRI "',"
        "   'payload': '" DV "payload', 'fPort': '" DV "fPort', '@vocab': '" DV "'}}");
    cJSON_Delete(stored);
    prof_free(p);

    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        p = profile_ok(profiles[i]);
        assert_int_equal(prof_to_json(p, &stored), 0);
        /* reload with no context: the same profile */
        assert_int_equal(prof_parse(stored, NULL, NULL, &q, &e), 0);
        assert_int_equal(prof_to_json(q, &again), 0);
        assert_true(cJSON_Compare(stored, again, 1));
        assert_string_equal(prof_id(q), prof_id(p));
        assert_int_equal(prof_codec_of(q), prof_codec_of(p));
        assert_string_equal(prof_entity_type_iri(q), prof_entity_type_iri(p));
        assert_string_equal(prof_entity_type(q), prof_entity_type(p));
        assert_int_equal(prof_device_entity(q), prof_device_entity(p));
        cJSON_Delete(again);
        prof_free(q);
        /* with an expander the stored iris are ignored (a GET can be PUT back) */
        assert_int_equal(prof_parse(stored, expand_city, city, &q, &e), 0);
        assert_int_equal(prof_to_json(q, &again), 0);
        assert_true(cJSON_Compare(stored, again, 1));
        cJSON_Delete(again);
        prof_free(q);
        cJSON_Delete(stored);
        prof_free(p);
    }
    /* a mapping with the reloaded profile gives the same documents */
    {
        struct prof_device *d = device_ok(AIR_DEVICE);
        struct prof_out o1, o2;
        struct uplink u;
        cJSON *msg;

        p = profile_ok(AIR_PROFILE);
        assert_int_equal(prof_to_json(p, &stored), 0);
        assert_int_equal(prof_parse(stored, NULL, NULL, &q, &e), 0);
        load_uplink("lorawan/chirpstack-v4-up-cayenne.json", UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP,
                    &msg, &u);
        assert_int_equal(prof_map(p, d, &u, NOW_MS, &o1, &e), 0);
        assert_int_equal(prof_map(q, d, &u, NOW_MS, &o2, &e), 0);
        assert_true(cJSON_Compare(o1.entity, o2.entity, 1));
        assert_true(cJSON_Compare(o1.device, o2.device, 1));
        prof_out_clear(&o1);
        prof_out_clear(&o2);
        uplink_free(&u);
        cJSON_Delete(msg);
        prof_device_free(d);
        prof_free(q);

        /* a stored form missing an IRI, or with a relative one */
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(stored, "iris"), "pm25");
        err_clear(&e);
        assert_int_equal(prof_parse(stored, NULL, NULL, &q, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail, "fields[2].attribute: no IRI for term 'pm25' in iris");
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(stored, "iris"), "rssi",
                                  cJSON_CreateString("rssi"));
        err_clear(&e);
        assert_int_equal(prof_parse(stored, NULL, NULL, &q, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail,
                            "Device companion term 'rssi' does not expand to an absolute IRI");
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(stored, "iris"), "rssi",
                                  cJSON_CreateString(DEV "rssi"));
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(stored, "iris"), "@vocab",
                                  cJSON_CreateNumber(1));
        err_clear(&e);
        assert_int_equal(prof_parse(stored, NULL, NULL, &q, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail, "iris: no IRI for '@vocab'");
        cJSON_Delete(stored);
        prof_free(p);
    }
}

/* ---- devices ---------------------------------------------------------------- */

static void expect_bad_device(const char *json_text, const char *detail)
{
    cJSON *j = PJ(json_text);
    struct prof_device *d = (struct prof_device *)1;
    struct err e = {0};

    if (prof_device_parse(j, &d, &e) != ERR_BAD_DATA)
        fail_msg("device accepted: %s", json_text);
    assert_null(d);
    if (strcmp(e.detail, detail) != 0)
        fail_msg("for %s\n got:      %s\n expected: %s", json_text, e.detail, detail);
    cJSON_Delete(j);
}

#define DEVB "'devEui': '0011223344556677', 'profile': 'p'"

static void test_devices(void **state)
{
    struct prof_device *d;
    cJSON *j, *again;
    struct err e = {0};
    (void)state;

    d = device_ok("{'devEui': 'A84041000181C905', 'profile': 'light', 'entityId': 'urn:x:1',"
                  " 'name': 'lightpost-05', 'owner': 'partner-1', 'description': 'on the square',"
                  " 'location': {'type': 'Point', 'coordinates': [-180, 90, 12.5]},"
                  " 'tags': {'square': 'hoekplein', 'x': ''}}");
    assert_string_equal(d->dev_eui, "a84041000181c905");
    assert_string_equal(d->owner, "partner-1");
    assert_int_equal(d->n_coords, 3);
    assert_int_equal(prof_device_to_json(d, &j), 0);
    assert_json(j, "{'devEui': 'a84041000181c905', 'profile': 'light', 'entityId': 'urn:x:1',"
                   " 'name': 'lightpost-05', 'owner': 'partner-1', 'description': 'on the square',"
                   " 'location': {'type': 'Point', 'coordinates': [-180, 90, 12.5]},"
                   " 'tags': {'square': 'hoekplein', 'x': ''}}");
    prof_device_free(d);
    assert_int_equal(prof_device_parse(j, &d, &e), 0);
    assert_int_equal(prof_device_to_json(d, &again), 0);
    assert_true(cJSON_Compare(j, again, 1));
    cJSON_Delete(j);
    cJSON_Delete(again);
    prof_device_free(d);
    prof_device_free(NULL);

    d = device_ok("{" DEVB "}");
    assert_null(d->name);
    assert_null(d->entity_id);
    assert_int_equal(d->has_location, 0);
    assert_int_equal(prof_device_to_json(d, &j), 0);
    assert_json(j, "{" DEVB "}");
    cJSON_Delete(j);
    prof_device_free(d);

    expect_bad_device("'x'", "a device must be a JSON object");
    expect_bad_device("{" DEVB ", 'dev_eui': 'x'}", "unknown member 'dev_eui' in the device");
    expect_bad_device("{" DEVB ", 'name': 'a', 'name': 'b'}",
                      "member 'name' appears twice in the device");
    expect_bad_device("{'profile': 'p'}", "devEui is required");
    expect_bad_device("{'devEui': 1, 'profile': 'p'}", "devEui must be a string");
    expect_bad_device("{'devEui': '001122334455667', 'profile': 'p'}",
                      "devEui must be 16 hex digits");
    expect_bad_device("{'devEui': '001122334455667g', 'profile': 'p'}",
                      "devEui must be 16 hex digits");
    expect_bad_device("{'devEui': '0011223344556677'}", "profile is required");
    expect_bad_device("{'devEui': '0011223344556677', 'profile': 'a/b'}",
                      "profile must be a profile id (1 to 64 characters among A-Z a-z 0-9 . _ -)");
    expect_bad_device("{" DEVB ", 'owner': 'a b'}",
                      "owner must be 1 to 64 characters among A-Z a-z 0-9 . _ -");
    expect_bad_device("{" DEVB ", 'entityId': 'not a uri'}",
                      "entityId must be an absolute URI of at most 512 characters");
    expect_bad_device("{" DEVB ", 'name': ''}",
                      "name must be 1 to 128 characters, no control characters");
    expect_bad_device("{" DEVB ", 'name': 'a\\nb'}",
                      "name must be 1 to 128 characters, no control characters");
    expect_bad_device("{" DEVB ", 'description': []}", "description must be a string");
    expect_bad_device("{" DEVB ", 'location': {'type': 'LineString',"
                      " 'coordinates': [[1,2],[3,4]]}}",
                      "location must be a GeoJSON Point {\"type\": \"Point\", \"coordinates\": "
                      "[lon, lat]}");
    expect_bad_device("{" DEVB ", 'location': {'type': 'Point', 'coordinates': [1,2], 'x': 1}}",
                      "location must be a GeoJSON Point {\"type\": \"Point\", \"coordinates\": "
                      "[lon, lat]}");
    expect_bad_device("{" DEVB ", 'location': {'type': 'Point', 'coordinates': [1]}}",
                      "location.coordinates must be [lon, lat] or [lon, lat, alt]");
    expect_bad_device("{" DEVB ", 'location': {'type': 'Point', 'coordinates': [1, '2']}}",
                      "location.coordinates must be numbers");
    expect_bad_device("{" DEVB ", 'location': {'type': 'Point', 'coordinates': [180.5, 2]}}",
                      "location: longitude 180.5 is outside [-180, 180]");
    expect_bad_device("{" DEVB ", 'location': {'type': 'Point', 'coordinates': [4.89, 95.5]}}",
                      "location: latitude 95.5 is outside [-90, 90]");
    expect_bad_device("{" DEVB ", 'location': {'type': 'Point', 'coordinates': [4.89, -90.01]}}",
                      "location: latitude -90.01 is outside [-90, 90]");
    expect_bad_device("{" DEVB ", 'tags': ['a']}", "tags must be an object of strings");
    expect_bad_device("{" DEVB ", 'tags': {'a': 1}}",
                      "tags.a must be a string of at most 128 characters");
    expect_bad_device("{" DEVB ", 'tags': {'': 'x'}}", "tags: a name must be 1 to 64 characters");
    expect_bad_device("{" DEVB ", 'tags': {'a': 'x', 'a': 'y'}}", "tags.a appears twice");
    {
        cJSON *dev = PJ("{" DEVB "}"), *tags = cJSON_AddObjectToObject(dev, "tags");
        char name[8];

        for (int i = 0; i <= PROF_MAX_TAGS; i++) {
            snprintf(name, sizeof(name), "t%d", i);
            cJSON_AddStringToObject(tags, name, "v");
        }
        err_clear(&e);
        assert_int_equal(prof_device_parse(dev, &d, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail, "tags: more than 32 members");
        cJSON_Delete(dev);
    }
}

/* ---- CSV -------------------------------------------------------------------- */

static void expect_csv(const char *text, const char *expected)
{
    cJSON *arr = NULL;
    struct err e = {0};

    if (prof_devices_csv(text, strlen(text), &arr, &e) != 0)
        fail_msg("CSV rejected: %s", e.detail);
    assert_json(arr, expected);
    cJSON_Delete(arr);
}

static void expect_bad_csv(const char *text, size_t len, int code, const char *detail)
{
    cJSON *arr = (cJSON *)1;
    struct err e = {0};

    assert_int_equal(prof_devices_csv(text, len, &arr, &e), code);
    assert_null(arr);
    if (strcmp(e.detail, detail) != 0)
        fail_msg("got:      %s\nexpected: %s", e.detail, detail);
}

#define BAD_CSV(text, detail) expect_bad_csv(text, strlen(text), ERR_BAD_DATA, detail)

static void test_csv(void **state)
{
    (void)state;
    expect_csv("devEui,profile,entityId,name,owner,lat,lon,description\n"
               "A84041000181C905,light,urn:x:1,lightpost-05,city,52.37,4.89,on the square\n"
               "0011223344556677,air,,,,,,\n",
               "[{'devEui': 'a84041000181c905', 'profile': 'light', 'entityId': 'urn:x:1',"
               "  'name': 'lightpost-05', 'owner': 'city', 'description': 'on the square',"
               "  'location': {'type': 'Point', 'coordinates': [4.89, 52.37]}},"
               " {'devEui': '0011223344556677', 'profile': 'air'}]");
    /* BOM, CRLF, any column order and case, quoting with "" , commas and line
     * breaks, blank lines, no final newline, spaces trimmed outside quotes */
    expect_csv("\xEF\xBB\xBF"
               "Profile, DEVEUI ,Description\r\n"
               "\r\n"
               "air , 0011223344556677,\"say \"\"hi\"\", then, go\"\r\n"
               "air,0011223344556678,\"two\r\nlines\"\r\n"
               "\n"
               "air,0011223344556679,\" kept \"",
               "[{'devEui': '0011223344556677', 'profile': 'air',"
               "  'description': 'say \\'hi\\', then, go'},"
               " {'devEui': '0011223344556678', 'profile': 'air', 'description': 'two\\r\\nlines'},"
               " {'devEui': '0011223344556679', 'profile': 'air', 'description': ' kept '}]");
    expect_csv("devEui,profile\n", "[]");

    BAD_CSV("", "line 1: no header row");
    BAD_CSV("\n\n", "line 1: no header row");
    BAD_CSV("devEui,profile,colour\n", "line 1: unknown column 'colour' (columns: devEui, "
                                       "profile, entityId, name, owner, lat, lon, description)");
    BAD_CSV("devEui,profile,devEui\n", "line 1: column devEui appears twice");
    BAD_CSV("devEui,name\n", "line 1: the header must name the devEui and profile columns");
    BAD_CSV("a,b,c,d,e,f,g,h,i\n", "line 1: more than 8 columns");
    BAD_CSV("devEui,profile\n0011223344556677\n", "line 2: 1 cells where the header has 2");
    BAD_CSV("devEui,profile\n0011223344556677,a,b\n", "line 2: 3 cells where the header has 2");
    BAD_CSV("devEui,profile\n0011223344556677,a,b,c,d,e,f,g,h,i,j\n",
            "line 2: 11 cells where the header has 2");
    BAD_CSV("devEui,profile\n\"0011223344556677,a\n", "line 2: a quoted cell is not closed");
    BAD_CSV("devEui,profile\n\"00\"x,a\n", "line 2: text after a closing quote");
    BAD_CSV("devEui,profile\n00\"11,a\n", "line 2: a quote inside an unquoted cell");
    BAD_CSV("devEui,profile\r0011,a\n", "line 1: a carriage return not followed by a line feed");
    BAD_CSV("devEui,profile\n0011223344556677,a\n001122334455667,a\n",
            "line 3: devEui must be 16 hex digits");
    BAD_CSV("devEui,profile\n\"multi\nline\",a\n0011223344556677,\n",
            "line 2: devEui must be 16 hex digits");
    BAD_CSV("devEui,profile\n\"0011223344556677\",a\n\"x\ny\",a\n",
            "line 3: devEui must be 16 hex digits");
    BAD_CSV("devEui,profile\n0011223344556677,\n", "line 2: profile is required");
    BAD_CSV("devEui,profile,lat\n0011223344556677,a,52\n",
            "line 2: lat and lon must be given together");
    BAD_CSV("devEui,profile,lat,lon\n0011223344556677,a,52,4.8x\n",
            "line 2: lat and lon must be decimal numbers");
    BAD_CSV("devEui,profile,lat,lon\n0011223344556677,a,95,4.8\n",
            "line 2: location: latitude 95 is outside [-90, 90]");
    BAD_CSV("devEui,profile\n0011223344556677,a\n\n0011223344556677,b\n",
            "line 4: devEui 0011223344556677 is already on line 2");
    BAD_CSV("devEui,profile\n0011223344556677,a\nA011223344556677,b\na011223344556677,c\n",
            "line 4: devEui a011223344556677 is already on line 3");
    expect_bad_csv("devEui,profile\n00\0,a\n", 20, ERR_BAD_DATA, "line 2: NUL byte");
    {
        /* a cell over the cap */
        size_t len = 64 + PROF_MAX_CSV_CELL;
        char *text = malloc(len + 1);

        strcpy(text, "devEui,profile,name\n0011223344556677,a,");
        memset(text + strlen(text), 'n', len - strlen(text));
        text[len] = '\0';
        expect_bad_csv(text, len, ERR_BAD_DATA, "line 2: a cell is longer than 1024 bytes");
        free(text);
    }
    {
        /* the row cap: 10,000 devices pass, 10,001 do not */
        size_t cap = 32 + (PROF_MAX_CSV_ROWS + 1) * 20, len;
        char *text = malloc(cap);
        cJSON *arr = NULL;
        struct err e = {0};

        len = (size_t)sprintf(text, "devEui,profile\n");
        for (int i = 0; i < PROF_MAX_CSV_ROWS; i++)
            len += (size_t)sprintf(text + len, "%016x,p\n", i);
        assert_int_equal(prof_devices_csv(text, len, &arr, &e), 0);
        assert_int_equal(cJSON_GetArraySize(arr), PROF_MAX_CSV_ROWS);
        cJSON_Delete(arr);
        len += (size_t)sprintf(text + len, "%016x,p\n", PROF_MAX_CSV_ROWS);
        expect_bad_csv(text, len, ERR_TOO_LARGE, "line 10002: more than 10000 devices in one CSV");
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_lpp_chirpstack_v4),
        cmocka_unit_test(test_map_measured_only),
        cmocka_unit_test(test_fixture_lpp_chirpstack_v3),
        cmocka_unit_test(test_fixture_lpp_tts),
        cmocka_unit_test(test_fixture_decoded),
        cmocka_unit_test(test_fixture_status_join_log),
        cmocka_unit_test(test_lpp_types_and_keep),
        cmocka_unit_test(test_lpp_rejections),
        cmocka_unit_test(test_decoded_fields),
        cmocka_unit_test(test_raw_and_entity_ids),
        cmocka_unit_test(test_status_external_power),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_profile_validation),
        cmocka_unit_test(test_profile_caps),
        cmocka_unit_test(test_profile_expander),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_csv),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
