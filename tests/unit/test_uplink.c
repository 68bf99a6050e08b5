/* test_uplink.c - network-server messages (ChirpStack v4/v3, TTS v3) into
 * struct uplink: every shared fixture with exact values, every malformed
 * fixture with its reason, topics, and the strict base64 underneath. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/lpp.h"
#include "ingest/uplink.h"
#include "util/base64.h"
#include "util/err.h"

static const uint8_t AIR_NODE[] = {0x01, 0x67, 0x00, 0xB8, 0x02, 0x68, 0x8F, 0x03,
                                   0x73, 0x27, 0x8B, 0x04, 0x02, 0x04, 0xD2};
static const uint8_t LIGHT_POST[] = {0x00, 0x39, 0x00, 0x21};

static const char *fixtures_dir(void)
{
    const char *d = getenv("PL_FIXTURES");

    return d != NULL && d[0] != '\0' ? d : "/work/shared/fixtures";
}

/* Read a fixture whole; *len gets its size. Caller frees. */
static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    char *data;
    long size;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
    f = fopen(path, "rb");
    if (f == NULL)
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
    *len = (size_t)size;
    return data;
}

/* Load a fixture the way the ingest path will: size check, then cJSON. */
static cJSON *load_json(const char *name)
{
    size_t len;
    char *text = read_fixture(name, &len);
    cJSON *msg;

    assert_int_equal(uplink_check_size(len), 0);
    msg = cJSON_ParseWithLength(text, len);
    free(text);
    if (msg == NULL)
        fail_msg("%s is not JSON", name);
    return msg;
}

static cJSON *json(const char *text)
{
    cJSON *msg = cJSON_Parse(text);

    if (msg == NULL)
        fail_msg("test JSON does not parse: %s", text);
    return msg;
}

static void assert_payload(const struct uplink *u, const uint8_t *want, size_t len)
{
    assert_int_equal(u->payload_len, len);
    assert_memory_equal(u->payload, want, len);
}

static double object_number(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    assert_true(cJSON_IsNumber(it));
    return it->valuedouble;
}

/* The Cayenne payload of the fixtures decodes to the air-node vector. */
static void assert_air_node_values(const struct uplink *u)
{
    struct lpp_value v[LPP_MAX_VALUES];
    size_t n;
    enum lpp_error why;

    assert_int_equal(lpp_decode(u->payload, u->payload_len, v, LPP_MAX_VALUES, &n, &why), 0);
    assert_int_equal(n, 4);
    assert_string_equal(v[0].name, "temperature");
    assert_true(v[0].v[0] == 18.4);
    assert_string_equal(v[1].name, "humidity");
    assert_true(v[1].v[0] == 71.5);
    assert_string_equal(v[2].name, "barometer");
    assert_true(v[2].v[0] == 1012.3);
    assert_string_equal(v[3].name, "analog_input");
    assert_true(v[3].v[0] == 12.34);
}

static void test_chirpstack_v4_up_cayenne(void **state)
{
    cJSON *msg = load_json("lorawan/chirpstack-v4-up-cayenne.json");
    struct uplink u;
    struct err e = {0};

    (void)state;
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_null(u.reason);
    assert_int_equal(e.code, 0);
    assert_int_equal(u.event, UPLINK_EV_UP);
    assert_int_equal(u.format, UPLINK_CHIRPSTACK_V4);
    assert_string_equal(u.dev_eui, "70b3d57ed0051a17");
    assert_string_equal(u.device_name, "air-node-017");
    assert_string_equal(u.application, "4d3c2b1a-0f9e-4d8c-b7a6-958473625140");
    assert_int_equal(u.time_ms, 1781252102118LL);
    assert_int_equal(u.f_cnt, 1842);
    assert_int_equal(u.f_port, 1);
    assert_payload(&u, AIR_NODE, sizeof(AIR_NODE));
    assert_null(u.decoded);
    assert_int_equal(u.has_rssi, 1);
    assert_true(u.rssi == -97.0);
    assert_true(u.snr == 6.25);
    assert_string_equal(u.dedup_id, "7f0c2a1e-5b7d-4c1e-9a55-0d3b9f1e2c44");
    assert_int_equal(u.has_battery, 0);
    assert_null(u.owned);
    assert_air_node_values(&u);
    uplink_free(&u);
    cJSON_Delete(msg);
}

static void test_chirpstack_v4_up_decoded(void **state)
{
    cJSON *msg = load_json("lorawan/chirpstack-v4-up-decoded.json");
    struct uplink u;
    struct err e = {0};

    (void)state;
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_string_equal(u.dev_eui, "a84041000181c905");
    assert_string_equal(u.device_name, "lightpost-05");
    assert_int_equal(u.time_ms, 1781252104502LL);
    assert_int_equal(u.f_cnt, 933);
    assert_int_equal(u.f_port, 2);
    assert_payload(&u, LIGHT_POST, sizeof(LIGHT_POST));
    assert_non_null(u.decoded);
    assert_ptr_equal(u.decoded, cJSON_GetObjectItemCaseSensitive(msg, "object"));
    assert_true(object_number(u.decoded, "peopleCountTowards") == 57);
    assert_true(object_number(u.decoded, "peopleCountAway") == 33);
    assert_true(object_number(u.decoded, "occupancy") == 0.41);
    assert_string_equal(u.dedup_id, "c3d9a0e2-61f4-4f6a-bf0e-2a9d7c5e8b13");
    assert_true(u.rssi == -97.0 && u.snr == 6.25);
    uplink_free(&u);
    cJSON_Delete(msg);
}

static void test_chirpstack_v4_status_join_log(void **state)
{
    cJSON *msg = load_json("lorawan/chirpstack-v4-status.json");
    struct uplink u;
    struct err e = {0};

    (void)state;
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_STATUS, msg, &u, &e), 0);
    assert_int_equal(u.event, UPLINK_EV_STATUS);
    assert_string_equal(u.dev_eui, "70b3d57ed0051a17");
    assert_int_equal(u.time_ms, 1781254800000LL);
    assert_int_equal(u.has_battery, 1);
    assert_true(u.battery == 87.5);
    assert_int_equal(u.external_power, 0);
    assert_string_equal(u.dedup_id, "0e8f7d6c-5b4a-4392-8170-6f5e4d3c2b1a");
    assert_int_equal(u.payload_len, 0);
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = load_json("lorawan/chirpstack-v4-join.json");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_JOIN, msg, &u, &e), 0);
    assert_int_equal(u.event, UPLINK_EV_JOIN);
    assert_string_equal(u.dev_eui, "70b3d57ed0051a17");
    assert_string_equal(u.device_name, "air-node-017");
    assert_int_equal(u.time_ms, 1781251180000LL);
    assert_string_equal(u.dedup_id, "11aa22bb-33cc-44dd-55ee-66ff77008899");
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = load_json("lorawan/chirpstack-v4-log.json");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_LOG, msg, &u, &e), 0);
    assert_int_equal(u.event, UPLINK_EV_LOG);
    assert_string_equal(u.dev_eui, "70b3d57ed0051a17");
    assert_int_equal(u.time_ms, 1781252400000LL);
    assert_string_equal(u.log_level, "ERROR");
    assert_string_equal(u.log_code, "UPLINK_CODEC");
    assert_string_equal(u.log_text, "codec script failed");
    assert_string_equal(u.dedup_id, "");
    uplink_free(&u);
    cJSON_Delete(msg);
}

static void test_chirpstack_v3_up(void **state)
{
    cJSON *msg = load_json("lorawan/chirpstack-v3-up.json");
    const cJSON *temp;
    struct uplink u;
    struct err e = {0};

    (void)state;
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V3, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_string_equal(u.dev_eui, "70b3d57ed0051a17");
    assert_string_equal(u.device_name, "air-node-017");
    assert_string_equal(u.application, "12");
    assert_int_equal(u.time_ms, 1781252102101LL); /* rxInfo[0].time: v3 has no server time */
    assert_int_equal(u.f_cnt, 1842);
    assert_int_equal(u.f_port, 1);
    assert_payload(&u, AIR_NODE, sizeof(AIR_NODE));
    assert_true(u.has_rssi && u.rssi == -97.0 && u.snr == 6.2);
    assert_string_equal(u.dedup_id, "");
    assert_non_null(u.owned);
    assert_ptr_equal(u.decoded, u.owned);
    temp = cJSON_GetObjectItemCaseSensitive(u.decoded, "temperatureSensor");
    assert_true(object_number(temp, "1") == 18.4);
    assert_true(object_number(cJSON_GetObjectItemCaseSensitive(u.decoded, "humiditySensor"),
                              "2") == 71.5);
    assert_air_node_values(&u);
    uplink_free(&u);
    assert_null(u.owned);
    assert_null(u.decoded);
    uplink_free(&u); /* twice is fine */
    uplink_free(NULL);
    cJSON_Delete(msg);
}

static void test_tts_v3_up(void **state)
{
    cJSON *msg = load_json("lorawan/tts-v3-up-cayenne.json");
    struct uplink u;
    struct err e = {0};

    (void)state;
    assert_int_equal(uplink_parse(UPLINK_TTS_V3, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_string_equal(u.dev_eui, "70b3d57ed0051a17"); /* sent uppercase */
    assert_string_equal(u.device_name, "air-node-017");
    assert_string_equal(u.application, "air-quality");
    assert_int_equal(u.time_ms, 1781252102112LL); /* uplink_message.received_at */
    assert_int_equal(u.f_cnt, 1842);
    assert_int_equal(u.f_port, 1);
    assert_payload(&u, AIR_NODE, sizeof(AIR_NODE));
    assert_null(u.decoded);
    assert_true(u.has_rssi && u.rssi == -97.0 && u.snr == 6.25);
    assert_air_node_values(&u);
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = load_json("lorawan/tts-v3-up-decoded.json");
    assert_int_equal(uplink_parse(UPLINK_TTS_V3, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_string_equal(u.dev_eui, "a84041000181c905");
    assert_string_equal(u.device_name, "lightpost-05");
    assert_string_equal(u.application, "smart-light");
    assert_int_equal(u.f_cnt, 933);
    assert_int_equal(u.f_port, 2);
    assert_payload(&u, LIGHT_POST, sizeof(LIGHT_POST));
    assert_non_null(u.decoded);
    assert_true(object_number(u.decoded, "peopleCountTowards") == 57);
    assert_true(object_number(u.decoded, "occupancy") == 0.41);
    uplink_free(&u);
    cJSON_Delete(msg);
}

/* Parse text as (f, ev) and expect rejection with reason; returns after
 * checking that the detail names the reason. */
static void expect_reject(enum uplink_format f, enum uplink_event ev, const cJSON *msg,
                          const char *reason, const char *dev_eui)
{
    struct uplink u;
    struct err e = {0};

    assert_int_equal(uplink_parse(f, ev, msg, &u, &e), ERR_BAD_DATA);
    assert_int_equal(e.code, ERR_BAD_DATA);
    if (u.reason == NULL || strcmp(u.reason, reason) != 0)
        fail_msg("reason %s, want %s (%s)", u.reason ? u.reason : "NULL", reason, e.detail);
    assert_non_null(strstr(e.detail, reason));
    assert_string_equal(u.dev_eui, dev_eui);
    assert_null(u.owned);
    assert_null(u.decoded);
    uplink_free(&u);
}

static void expect_reject_text(enum uplink_format f, enum uplink_event ev, const char *text,
                               const char *reason, const char *dev_eui)
{
    cJSON *msg = json(text);

    expect_reject(f, ev, msg, reason, dev_eui);
    cJSON_Delete(msg);
}

static void test_malformed_fixtures(void **state)
{
    cJSON *msg;
    size_t len;
    char *text;
    struct uplink u;
    struct err e = {0};

    (void)state;
    msg = load_json("malformed/chirpstack-up-bad-base64.json");
    expect_reject(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, "bad_base64", "70b3d57ed0051a17");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), ERR_BAD_DATA);
    assert_non_null(strstr(e.detail, "data"));
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = load_json("malformed/chirpstack-up-no-deviceinfo.json");
    expect_reject(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, "no_dev_eui", "");
    cJSON_Delete(msg);

    msg = load_json("malformed/chirpstack-up-wrong-types.json");
    expect_reject(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, "wrong_type", "70b3d57ed0051a17");
    err_clear(&e);
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), ERR_BAD_DATA);
    assert_non_null(strstr(e.detail, "time"));
    uplink_free(&u);
    /* Each wrong field on its own is caught too. */
    cJSON_DeleteItemFromObject(msg, "time");
    err_clear(&e);
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), ERR_BAD_DATA);
    assert_string_equal(u.reason, "wrong_type");
    assert_non_null(strstr(e.detail, "fPort"));
    uplink_free(&u);
    cJSON_DeleteItemFromObject(msg, "fPort");
    err_clear(&e);
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), ERR_BAD_DATA);
    assert_string_equal(u.reason, "wrong_type");
    assert_non_null(strstr(e.detail, "rxInfo"));
    uplink_free(&u);
    cJSON_DeleteItemFromObject(msg, "rxInfo");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, NULL), 0);
    assert_int_equal(u.has_rssi, 0);
    assert_int_equal(u.time_ms, 0);
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = load_json("malformed/tts-up-no-uplink.json");
    expect_reject(UPLINK_TTS_V3, UPLINK_EV_UP, msg, "no_uplink", "70b3d57ed0051a17");
    cJSON_Delete(msg);

    /* Rejected before cJSON by the caller: the size cap and the parser. */
    text = read_fixture("malformed/chirpstack-up-huge.json", &len);
    assert_true(len > UPLINK_MAX_MESSAGE);
    assert_int_equal(uplink_check_size(len), ERR_TOO_LARGE);
    free(text);
    text = read_fixture("malformed/chirpstack-up-not-json.txt", &len);
    assert_int_equal(uplink_check_size(len), 0);
    assert_null(cJSON_ParseWithLength(text, len));
    free(text);
    assert_int_equal(uplink_check_size(UPLINK_MAX_MESSAGE), 0);
    assert_int_equal(uplink_check_size(UPLINK_MAX_MESSAGE + 1), ERR_TOO_LARGE);
}

/* Every fixture fed as every format and event: no crash, and a fixture
 * parsed as a foreign format is rejected (no EUI where it looks). */
static void test_cross_format(void **state)
{
    static const char *const FILES[] = {
        "lorawan/chirpstack-v3-up.json",           "lorawan/chirpstack-v4-join.json",
        "lorawan/chirpstack-v4-log.json",          "lorawan/chirpstack-v4-status.json",
        "lorawan/chirpstack-v4-up-cayenne.json",   "lorawan/chirpstack-v4-up-decoded.json",
        "lorawan/tts-v3-up-cayenne.json",          "lorawan/tts-v3-up-decoded.json",
        "malformed/chirpstack-up-bad-base64.json", "malformed/chirpstack-up-no-deviceinfo.json",
        "malformed/chirpstack-up-wrong-types.json", "malformed/tts-up-no-uplink.json",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(FILES) / sizeof(FILES[0]); i++) {
        cJSON *msg = load_json(FILES[i]);
        int is_tts = strstr(FILES[i], "tts") != NULL, is_v3 = strstr(FILES[i], "v3-up") != NULL;

        for (int f = UPLINK_CHIRPSTACK_V4; f <= UPLINK_TTS_V3; f++)
            for (int ev = UPLINK_EV_UP; ev <= UPLINK_EV_LOG; ev++) {
                struct uplink u;
                struct err e = {0};
                int rc = uplink_parse((enum uplink_format)f, (enum uplink_event)ev, msg, &u, &e);

                if (rc != 0) {
                    assert_non_null(u.reason);
                    assert_true(e.detail[0] != '\0');
                } else {
                    assert_null(u.reason);
                    assert_int_equal(strlen(u.dev_eui), 16);
                }
                if ((f == UPLINK_TTS_V3 && !is_tts) || (f != UPLINK_TTS_V3 && is_tts) ||
                    (f == UPLINK_CHIRPSTACK_V3 && !is_v3 && !is_tts))
                    assert_int_equal(rc, ERR_BAD_DATA);
                uplink_free(&u);
            }
        cJSON_Delete(msg);
    }
}

static void test_best_radio(void **state)
{
    cJSON *msg;
    struct uplink u;
    struct err e = {0};

    (void)state;
    msg = json("{\"deviceInfo\": {\"devEui\": \"0011223344556677\"},"
               " \"rxInfo\": [{\"rssi\": -110, \"snr\": 2.5},"
               "  {\"rssi\": -80, \"snr\": -3, \"nsTime\": \"2026-06-12T08:15:00.250Z\"},"
               "  {\"snr\": 9}, {\"rssi\": -80.5}, {\"rssi\": -79}]}");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_true(u.has_rssi && u.rssi == -79.0 && u.snr == 0.0); /* snr omitted: 0 */
    /* No `time`: the nsTime of an entry (the best has none). */
    assert_int_equal(u.time_ms, 1781252100250LL);
    /* Zero values omitted by proto3 JSON. */
    assert_int_equal(u.f_cnt, 0);
    assert_int_equal(u.f_port, 0);
    assert_int_equal(u.payload_len, 0);
    assert_string_equal(u.device_name, "");
    assert_string_equal(u.application, "");
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = json("{\"end_device_ids\": {\"dev_eui\": \"0011223344556677\"},"
               " \"received_at\": \"2026-06-12T08:15:01Z\","
               " \"uplink_message\": {\"frm_payload\": \"AQI=\", \"f_port\": 3,"
               "  \"rx_metadata\": [{\"channel_rssi\": -120, \"snr\": -7.25},"
               "   {\"rssi\": -90, \"channel_rssi\": -200, \"snr\": 1.5}, {\"snr\": 12}]}}");
    assert_int_equal(uplink_parse(UPLINK_TTS_V3, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_true(u.has_rssi && u.rssi == -90.0 && u.snr == 1.5);
    assert_int_equal(u.time_ms, 1781252101000LL); /* top-level received_at fallback */
    assert_int_equal(u.f_cnt, 0);
    assert_int_equal(u.f_port, 3);
    assert_int_equal(u.payload_len, 2);
    uplink_free(&u);
    cJSON_Delete(msg);

    msg = json("{\"end_device_ids\": {\"dev_eui\": \"0011223344556677\"},"
               " \"uplink_message\": {\"rx_metadata\": [{\"snr\": 3}]}}");
    assert_int_equal(uplink_parse(UPLINK_TTS_V3, UPLINK_EV_UP, msg, &u, &e), 0);
    assert_int_equal(u.has_rssi, 0);
    assert_int_equal(u.time_ms, 0);
    uplink_free(&u);
    cJSON_Delete(msg);
}

static void test_status_variants(void **state)
{
    cJSON *msg;
    struct uplink u;
    struct err e = {0};

    (void)state;
    msg = json("{\"deviceInfo\": {\"devEui\": \"0011223344556677\"}, \"batteryLevelUnavailable\": true}");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_STATUS, msg, &u, &e), 0);
    assert_int_equal(u.has_battery, 0);
    uplink_free(&u);
    cJSON_Delete(msg);
    msg = json("{\"deviceInfo\": {\"devEui\": \"0011223344556677\"}, \"externalPowerSource\": true}");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_STATUS, msg, &u, &e), 0);
    assert_int_equal(u.has_battery, 0);
    assert_int_equal(u.external_power, 1);
    uplink_free(&u);
    cJSON_Delete(msg);
    msg = json("{\"deviceInfo\": {\"devEui\": \"0011223344556677\"}, \"margin\": 3}");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_STATUS, msg, &u, &e), 0);
    assert_int_equal(u.has_battery, 1); /* batteryLevel 0 omitted by proto3 JSON */
    assert_true(u.battery == 0.0);
    uplink_free(&u);
    cJSON_Delete(msg);
    msg = json("{\"devEUI\": \"ABEiM0RVZnc=\", \"batteryLevel\": 41.5}");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V3, UPLINK_EV_STATUS, msg, &u, &e), 0);
    assert_string_equal(u.dev_eui, "0011223344556677");
    assert_true(u.has_battery && u.battery == 41.5);
    uplink_free(&u);
    cJSON_Delete(msg);
    /* v3 error event as log; v3 hex devEUI (json_v3 marshaler), numeric id. */
    msg = json("{\"devEUI\": \"0011223344556677\", \"applicationID\": 7, \"type\": \"UPLINK_CODEC\","
               " \"error\": \"bad\", \"publishedAt\": \"2026-06-12T08:15:00Z\"}");
    assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V3, UPLINK_EV_LOG, msg, &u, &e), 0);
    assert_string_equal(u.application, "7");
    assert_string_equal(u.log_level, "ERROR");
    assert_string_equal(u.log_code, "UPLINK_CODEC");
    assert_string_equal(u.log_text, "bad");
    assert_int_equal(u.time_ms, 1781252100000LL);
    uplink_free(&u);
    cJSON_Delete(msg);
    /* v4 log: level omitted means INFO (enum zero); long text is cut. */
    {
        char text[700];
        char big[400];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        snprintf(text, sizeof(text),
                 "{\"deviceInfo\": {\"devEui\": \"0011223344556677\"}, \"description\": \"%s\"}", big);
        msg = json(text);
        assert_int_equal(uplink_parse(UPLINK_CHIRPSTACK_V4, UPLINK_EV_LOG, msg, &u, &e), 0);
        assert_string_equal(u.log_level, "INFO");
        assert_int_equal(strlen(u.log_text), sizeof(u.log_text) - 1);
        uplink_free(&u);
        cJSON_Delete(msg);
    }
    /* TTS join. */
    msg = json("{\"end_device_ids\": {\"device_id\": \"d1\", \"dev_eui\": \"0011223344556677\"},"
               " \"received_at\": \"2026-06-12T08:15:09Z\","
               " \"join_accept\": {\"received_at\": \"2026-06-12T08:15:08Z\"}}");
    assert_int_equal(uplink_parse(UPLINK_TTS_V3, UPLINK_EV_JOIN, msg, &u, &e), 0);
    assert_int_equal(u.time_ms, 1781252108000LL);
    assert_string_equal(u.device_name, "d1");
    uplink_free(&u);
    cJSON_Delete(msg);
}

static void test_reject_reasons(void **state)
{
    const enum uplink_format V4 = UPLINK_CHIRPSTACK_V4, V3 = UPLINK_CHIRPSTACK_V3,
                             TTS = UPLINK_TTS_V3;
    const char *eui = "0011223344556677";
    char text[1024];
    uint8_t big[243];
    char b64[400];

    (void)state;
    expect_reject_text(V4, UPLINK_EV_UP, "[1, 2]", "wrong_type", "");
    expect_reject(V4, UPLINK_EV_UP, NULL, "wrong_type", "");
    expect_reject_text(V4, UPLINK_EV_UP, "{\"deviceInfo\": []}", "wrong_type", "");
    expect_reject_text(V4, UPLINK_EV_UP, "{\"deviceInfo\": {}}", "no_dev_eui", "");
    expect_reject_text(V4, UPLINK_EV_UP, "{\"deviceInfo\": {\"devEui\": 5}}", "wrong_type", "");
    expect_reject_text(V4, UPLINK_EV_UP, "{\"deviceInfo\": {\"devEui\": \"00112233445566\"}}",
                       "bad_dev_eui", "");
    expect_reject_text(V4, UPLINK_EV_UP, "{\"deviceInfo\": {\"devEui\": \"001122334455667g\"}}",
                       "bad_dev_eui", "");
    expect_reject_text(V4, UPLINK_EV_UP,
                       "{\"deviceInfo\": {\"devEui\": \"00112233445566778\"}}", "bad_dev_eui", "");
#define V4MSG(extra) "{\"deviceInfo\": {\"devEui\": \"0011223344556677\"}, " extra "}"
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"time\": \"yesterday\""), "bad_time", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"fCnt\": -1"), "out_of_range", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"fCnt\": 1.5"), "out_of_range", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"fCnt\": 4294967296"), "out_of_range", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"fCnt\": 1e999"), "out_of_range", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"fCnt\": \"12\""), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"fPort\": 256"), "out_of_range", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"data\": 12"), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"data\": \"AQI\""), "bad_base64", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"data\": \"AQ I=\""), "bad_base64", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"object\": \"x\""), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"rxInfo\": [3]"), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"rxInfo\": [{\"rssi\": \"-3\"}]"), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"rxInfo\": [{\"rssi\": -3000}]"), "out_of_range",
                       eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"rxInfo\": [{\"rssi\": -30, \"nsTime\": 4}]"),
                       "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_UP, V4MSG("\"deduplicationId\": {}"), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_STATUS, V4MSG("\"batteryLevel\": 150"), "out_of_range", eui);
    expect_reject_text(V4, UPLINK_EV_STATUS, V4MSG("\"externalPowerSource\": 1"), "wrong_type", eui);
    expect_reject_text(V4, UPLINK_EV_LOG, V4MSG("\"level\": \"VERY-VERY-VERY-LOUD\""), "too_large",
                       eui);
    /* Payload over 242 bytes. */
    memset(big, 0xA5, sizeof(big));
    assert_int_equal(b64_encode(big, sizeof(big), b64, sizeof(b64)), 0);
    snprintf(text, sizeof(text), V4MSG("\"data\": \"%s\""), b64);
    expect_reject_text(V4, UPLINK_EV_UP, text, "too_large", eui);
    assert_int_equal(b64_encode(big, 242, b64, sizeof(b64)), 0);
    snprintf(text, sizeof(text), V4MSG("\"data\": \"%s\""), b64);
    {
        cJSON *msg = json(text);
        struct uplink u;

        assert_int_equal(uplink_parse(V4, UPLINK_EV_UP, msg, &u, NULL), 0);
        assert_int_equal(u.payload_len, 242);
        uplink_free(&u);
        cJSON_Delete(msg);
    }
    /* An id longer than its field is rejected, not cut. */
    memset(b64, 'n', 200);
    b64[200] = '\0';
    snprintf(text, sizeof(text),
             "{\"deviceInfo\": {\"devEui\": \"0011223344556677\", \"deviceName\": \"%s\"}}", b64);
    expect_reject_text(V4, UPLINK_EV_UP, text, "too_large", eui);
#undef V4MSG
    /* v3 */
    expect_reject_text(V3, UPLINK_EV_UP, "{}", "no_dev_eui", "");
    expect_reject_text(V3, UPLINK_EV_UP, "{\"devEUI\": \"cLPVftAF\"}", "bad_dev_eui", "");
    expect_reject_text(V3, UPLINK_EV_UP, "{\"devEUI\": \"cLPVftAFGh==\"}", "bad_dev_eui", "");
    expect_reject_text(V3, UPLINK_EV_UP, "{\"devEUI\": \"ABEiM0RVZnc=\", \"objectJSON\": \"{x\"}",
                       "bad_object_json", eui);
    expect_reject_text(V3, UPLINK_EV_UP, "{\"devEUI\": \"ABEiM0RVZnc=\", \"objectJSON\": \"[1]\"}",
                       "bad_object_json", eui);
    expect_reject_text(V3, UPLINK_EV_UP, "{\"devEUI\": \"ABEiM0RVZnc=\", \"applicationID\": -1}",
                       "wrong_type", eui);
    expect_reject_text(V3, UPLINK_EV_UP,
                       "{\"devEUI\": \"ABEiM0RVZnc=\", \"rxInfo\": [{\"loRaSNR\": \"x\"}]}",
                       "wrong_type", eui);
    {
        cJSON *msg = json("{\"devEUI\": \"ABEiM0RVZnc=\", \"objectJSON\": \"\", \"fPort\": 9}");
        struct uplink u;

        assert_int_equal(uplink_parse(V3, UPLINK_EV_UP, msg, &u, NULL), 0);
        assert_null(u.decoded);
        assert_null(u.owned);
        assert_int_equal(u.f_port, 9);
        uplink_free(&u);
        cJSON_Delete(msg);
    }
    /* TTS */
    expect_reject_text(TTS, UPLINK_EV_UP, "{}", "no_dev_eui", "");
    expect_reject_text(TTS, UPLINK_EV_UP, "{\"end_device_ids\": {\"device_id\": \"x\"}}",
                       "no_dev_eui", "");
    expect_reject_text(TTS, UPLINK_EV_STATUS, "{\"end_device_ids\": {}}", "unsupported_event", "");
    expect_reject_text(TTS, UPLINK_EV_LOG, "{}", "unsupported_event", "");
    expect_reject_text(TTS, UPLINK_EV_UP,
                       "{\"end_device_ids\": {\"dev_eui\": \"0011223344556677\"},"
                       " \"uplink_message\": []}", "wrong_type", eui);
    expect_reject_text(TTS, UPLINK_EV_UP,
                       "{\"end_device_ids\": {\"dev_eui\": \"0011223344556677\"},"
                       " \"uplink_message\": {\"received_at\": \"2026-13-01T00:00:00Z\"}}",
                       "bad_time", eui);
    expect_reject_text(TTS, UPLINK_EV_UP,
                       "{\"end_device_ids\": {\"dev_eui\": \"0011223344556677\"},"
                       " \"uplink_message\": {\"decoded_payload\": 3}}", "wrong_type", eui);
    expect_reject_text(TTS, UPLINK_EV_UP,
                       "{\"end_device_ids\": {\"dev_eui\": \"0011223344556677\","
                       " \"application_ids\": \"a\"}, \"uplink_message\": {}}", "wrong_type", eui);
    /* Out-of-range enums. */
    expect_reject_text((enum uplink_format)9, UPLINK_EV_UP, "{}", "unsupported_event", "");
    expect_reject_text(V4, (enum uplink_event)0, "{}", "unsupported_event", "");
}

static void expect_topic(const char *topic, enum uplink_format want_f, enum uplink_event want_ev,
                         const char *want_id)
{
    enum uplink_format f;
    enum uplink_event ev;
    char id[128];

    if (uplink_topic(topic, &f, &ev, id) != 0)
        fail_msg("topic rejected: %s", topic);
    assert_int_equal(f, want_f);
    assert_int_equal(ev, want_ev);
    assert_string_equal(id, want_id);
}

static void test_topics(void **state)
{
    static const char *const BAD[] = {
        "",
        "application",
        "application/4d3c/device/70b3d57ed0051a17/event/ack",
        "application/4d3c/device/70b3d57ed0051a17/event/txack",
        "application/4d3c/device/70b3d57ed0051a17/event/error", /* v4 has log, not error */
        "application/12/device/70b3d57ed0051a17/event/log",      /* v3 has error, not log */
        "application/4d3c/device/70b3d57ed0051a1/event/up",     /* 15 digits */
        "application/4d3c/device/70b3d57ed0051a17x/event/up",
        "application/4d3c/device/zzb3d57ed0051a17/event/up",
        "application/4d3c/device/+/event/up",
        "application//device/70b3d57ed0051a17/event/up",
        "application/4d3c/device/70b3d57ed0051a17/event/up/",
        "application/4d3c/device/70b3d57ed0051a17/event",
        "application/4d3c/devices/70b3d57ed0051a17/event/up",
        "application/4d3c/device/70b3d57ed0051a17/up",
        "application/12/device/70b3d57ed0051a17/tx",
        "v3/air-quality@ttn/devices/air-node-017/down/sent",
        "v3/air-quality@ttn/devices/air-node-017/status",
        "v3/air-quality@ttn/devices/#",
        "v3/air-quality@ttn/device/air-node-017/up",
        "v3//devices/air-node-017/up",
        "v2/air-quality/devices/air-node-017/up",
        "/application/4d3c/device/70b3d57ed0051a17/event/up",
    };
    enum uplink_format f;
    enum uplink_event ev;
    char id[128], longer[600];

    (void)state;
    expect_topic("application/4d3c2b1a-0f9e-4d8c-b7a6-958473625140/device/70b3d57ed0051a17/event/up",
                 UPLINK_CHIRPSTACK_V4, UPLINK_EV_UP, "70b3d57ed0051a17");
    expect_topic("application/4d3c/device/70B3D57ED0051A17/event/status", UPLINK_CHIRPSTACK_V4,
                 UPLINK_EV_STATUS, "70b3d57ed0051a17");
    expect_topic("application/4d3c/device/70b3d57ed0051a17/event/join", UPLINK_CHIRPSTACK_V4,
                 UPLINK_EV_JOIN, "70b3d57ed0051a17");
    expect_topic("application/4d3c/device/70b3d57ed0051a17/event/log", UPLINK_CHIRPSTACK_V4,
                 UPLINK_EV_LOG, "70b3d57ed0051a17");
    expect_topic("application/12/device/70b3d57ed0051a17/event/up", UPLINK_CHIRPSTACK_V3,
                 UPLINK_EV_UP, "70b3d57ed0051a17");
    expect_topic("application/12/device/70b3d57ed0051a17/event/error", UPLINK_CHIRPSTACK_V3,
                 UPLINK_EV_LOG, "70b3d57ed0051a17");
    expect_topic("application/12/device/70b3d57ed0051a17/rx", UPLINK_CHIRPSTACK_V3, UPLINK_EV_UP,
                 "70b3d57ed0051a17");
    expect_topic("application/12/device/70b3d57ed0051a17/status", UPLINK_CHIRPSTACK_V3,
                 UPLINK_EV_STATUS, "70b3d57ed0051a17");
    expect_topic("application/12/device/70b3d57ed0051a17/join", UPLINK_CHIRPSTACK_V3,
                 UPLINK_EV_JOIN, "70b3d57ed0051a17");
    expect_topic("v3/air-quality@ttn/devices/air-node-017/up", UPLINK_TTS_V3, UPLINK_EV_UP,
                 "air-node-017");
    expect_topic("v3/air-quality/devices/air-node-017/join", UPLINK_TTS_V3, UPLINK_EV_JOIN,
                 "air-node-017");
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        if (uplink_topic(BAD[i], &f, &ev, id) != ERR_BAD_DATA)
            fail_msg("topic accepted: %s", BAD[i]);
    assert_int_equal(uplink_topic(NULL, &f, &ev, id), ERR_BAD_DATA);
    /* A device id too long for the buffer, and a topic over the limit. */
    snprintf(longer, sizeof(longer), "v3/a/devices/%0150d/up", 0);
    assert_int_equal(uplink_topic(longer, &f, &ev, id), ERR_BAD_DATA);
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(uplink_topic(longer, &f, &ev, id), ERR_BAD_DATA);
}

static void test_names(void **state)
{
    enum uplink_format f;
    enum uplink_event ev;

    (void)state;
    assert_string_equal(uplink_format_name(UPLINK_CHIRPSTACK_V4), "chirpstack-v4");
    assert_string_equal(uplink_format_name(UPLINK_CHIRPSTACK_V3), "chirpstack-v3");
    assert_string_equal(uplink_format_name(UPLINK_TTS_V3), "tts-v3");
    assert_string_equal(uplink_format_name((enum uplink_format)0), "?");
    assert_int_equal(uplink_format_parse("tts-v3", &f), 0);
    assert_int_equal(f, UPLINK_TTS_V3);
    assert_int_equal(uplink_format_parse("chirpstack-v3", &f), 0);
    assert_int_equal(f, UPLINK_CHIRPSTACK_V3);
    assert_int_equal(uplink_format_parse("ttn-v2", &f), ERR_BAD_DATA);
    assert_int_equal(uplink_format_parse(NULL, &f), ERR_BAD_DATA);
    assert_string_equal(uplink_event_name(UPLINK_EV_LOG), "log");
    assert_string_equal(uplink_event_name((enum uplink_event)9), "?");
    assert_int_equal(uplink_event_parse("status", &ev), 0);
    assert_int_equal(ev, UPLINK_EV_STATUS);
    assert_int_equal(uplink_event_parse("ack", &ev), ERR_BAD_DATA);
}

static void test_base64(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } GOOD[] = {
        {"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}, {"+/+/", "\xfb\xff\xbf"},
    };
    static const char *const BAD[] = {
        "Z", "Zg", "Zg=", "Zh==", "Zm9=", "Z===", "====", "Zg==Zg==", "Zm9v\n", "Zm 9",
        "Zm-_", "Zm9v=Zm9", "Zg=A", "\xc3\xa9==",
    };
    uint8_t out[64], all[256];
    char text[400];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(GOOD) / sizeof(GOOD[0]); i++) {
        assert_int_equal(b64_decode(GOOD[i].in, strlen(GOOD[i].in), out, sizeof(out), &n), 0);
        assert_int_equal(n, strlen(GOOD[i].out));
        assert_memory_equal(out, GOOD[i].out, n);
        assert_int_equal(b64_encode((const uint8_t *)GOOD[i].out, n, text, sizeof(text)), 0);
        assert_string_equal(text, GOOD[i].in);
    }
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        if (b64_decode(BAD[i], strlen(BAD[i]), out, sizeof(out), &n) != ERR_BAD_DATA)
            fail_msg("accepted bad base64 \"%s\"", BAD[i]);
    /* Round trip of every byte value and every tail length. */
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (uint8_t)(255 - i);
    for (size_t len = 0; len <= sizeof(all); len += 1 + len / 8) {
        uint8_t back[256];

        assert_int_equal(b64_encode(all, len, text, sizeof(text)), 0);
        assert_int_equal(strlen(text), B64_ENCODED_LEN(len));
        assert_int_equal(b64_decode(text, strlen(text), back, sizeof(back), &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(back, all, len);
    }
    /* Caps: exact fit works, one byte short is ERR_TOO_LARGE. */
    assert_int_equal(b64_decode("Zm9vYg==", 8, out, 4, &n), 0);
    assert_int_equal(b64_decode("Zm9vYg==", 8, out, 3, &n), ERR_TOO_LARGE);
    assert_int_equal(b64_encode(all, 3, text, 5), 0);
    assert_int_equal(b64_encode(all, 3, text, 4), ERR_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chirpstack_v4_up_cayenne),
        cmocka_unit_test(test_chirpstack_v4_up_decoded),
        cmocka_unit_test(test_chirpstack_v4_status_join_log),
        cmocka_unit_test(test_chirpstack_v3_up),
        cmocka_unit_test(test_tts_v3_up),
        cmocka_unit_test(test_malformed_fixtures),
        cmocka_unit_test(test_cross_format),
        cmocka_unit_test(test_best_radio),
        cmocka_unit_test(test_status_variants),
        cmocka_unit_test(test_reject_reasons),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_base64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
