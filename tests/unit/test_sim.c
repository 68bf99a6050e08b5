/* test_sim.c - the simulator: the Cayenne LPP encoder against the decoder
 * (public vectors, every type, range and size errors), every generated
 * message through uplink_topic + uplink_parse + lpp_decode with the values
 * sim_readings says were encoded, realistic ranges and daily cycles,
 * determinism, positions, the profile and device lists, and sim_run's
 * start errors. Publishing to a real broker and webhook is tested in
 * tests/api/test_16_simulate.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingest/lpp.h"
#include "ingest/profile.h"
#include "ingest/uplink.h"
#include "sim/lppenc.h"
#include "sim/sim.h"
#include "util/err.h"
#include "util/time.h"

#define PI 3.14159265358979323846
#define FRI_2026_06_12 INT64_C(1781222400000) /* 00:00 UTC, a Friday */
#define SAT_2026_06_13 INT64_C(1781308800000)
#define TUE_2026_12_15 INT64_C(1797292800000)
#define HOUR_MS INT64_C(3600000)

/* --- the LPP encoder ------------------------------------------------------ */

static void put_hex(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = strlen(hex) / 2;
    for (size_t k = 0; k < n; k++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * k, "%2x", &v), 1);
        out[k] = (uint8_t)v;
    }
    *len = n;
}

static void test_lppenc_public_vectors(void **state)
{
    uint8_t buf[64], want[64];
    size_t want_len;
    struct lppenc w;
    double gps[3] = {42.3519, -87.9094, 10};
    double acc[3] = {1.234, -1.234, 0};

    (void)state;
    lppenc_init(&w, buf, sizeof(buf));
    assert_int_equal(lppenc_put1(&w, 3, LPP_TEMPERATURE, 27.2), 0);
    assert_int_equal(lppenc_put1(&w, 5, LPP_TEMPERATURE, 25.5), 0);
    put_hex("03670110056700FF", want, &want_len);
    assert_int_equal(w.len, want_len);
    assert_memory_equal(buf, want, want_len);

    lppenc_init(&w, buf, sizeof(buf));
    assert_int_equal(lppenc_put1(&w, 1, LPP_TEMPERATURE, -4.1), 0);
    put_hex("0167FFD7", want, &want_len);
    assert_int_equal(w.len, want_len);
    assert_memory_equal(buf, want, want_len);

    lppenc_init(&w, buf, sizeof(buf));
    assert_int_equal(lppenc_put(&w, 6, LPP_ACCELEROMETER, acc, 3), 0);
    put_hex("067104D2FB2E0000", want, &want_len);
    assert_int_equal(w.len, want_len);
    assert_memory_equal(buf, want, want_len);

    lppenc_init(&w, buf, sizeof(buf));
    assert_int_equal(lppenc_put(&w, 1, LPP_GPS, gps, 3), 0);
    put_hex("018806765FF2960A0003E8", want, &want_len);
    assert_int_equal(w.len, want_len);
    assert_memory_equal(buf, want, want_len);

    /* the air-node vector of the shared fixtures */
    lppenc_init(&w, buf, sizeof(buf));
    assert_int_equal(lppenc_put1(&w, 1, LPP_TEMPERATURE, 18.4), 0);
    assert_int_equal(lppenc_put1(&w, 2, LPP_HUMIDITY, 71.5), 0);
    assert_int_equal(lppenc_put1(&w, 3, LPP_BAROMETER, 1012.3), 0);
    assert_int_equal(lppenc_put1(&w, 4, LPP_ANALOG_INPUT, 12.34), 0);
    put_hex("016700B802688F0373278B040204D2", want, &want_len);
    assert_int_equal(w.len, want_len);
    assert_memory_equal(buf, want, want_len);
}

struct range {
    int type, n;
    double lo, hi; /* every value of the reading */
};

/* each type with a range it can carry */
static const struct range RANGES[] = {
    {LPP_DIGITAL_INPUT, 1, 0, 255},
    {LPP_DIGITAL_OUTPUT, 1, 0, 255},
    {LPP_ANALOG_INPUT, 1, -327.68, 327.67},
    {LPP_ANALOG_OUTPUT, 1, -327.68, 327.67},
    {LPP_GENERIC, 1, 0, 4294967295.0},
    {LPP_ILLUMINANCE, 1, 0, 65535},
    {LPP_PRESENCE, 1, 0, 255},
    {LPP_TEMPERATURE, 1, -3276.8, 3276.7},
    {LPP_HUMIDITY, 1, 0, 127.5},
    {LPP_ACCELEROMETER, 3, -32.768, 32.767},
    {LPP_BAROMETER, 1, 0, 6553.5},
    {LPP_VOLTAGE, 1, 0, 655.35},
    {LPP_CURRENT, 1, 0, 65.535},
    {LPP_FREQUENCY, 1, 0, 4294967295.0},
    {LPP_PERCENTAGE, 1, 0, 255},
    {LPP_ALTITUDE, 1, -32768, 32767},
    {LPP_CONCENTRATION, 1, 0, 65535},
    {LPP_POWER, 1, 0, 65535},
    {LPP_DISTANCE, 1, 0, 4294967.295},
    {LPP_ENERGY, 1, 0, 4294967.295},
    {LPP_DIRECTION, 1, 0, 65535},
    {LPP_UNIXTIME, 1, 0, 4294967295.0},
    {LPP_GYROMETER, 3, -327.68, 327.67},
    {LPP_COLOUR, 3, 0, 255},
    {LPP_GPS, 3, -90, 90},
    {LPP_SWITCH, 1, 0, 1},
};

static uint64_t rnd_state = 12345;

static double rnd01(void)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rnd_state >> 11) * 0x1.0p-53;
}

/* lpp_decode(encode(x)) == x within half a step, for every type, for
 * random values and both ends of each range; many readings in one frame. */
static void test_lppenc_roundtrip_all_types(void **state)
{
    (void)state;
    for (int round_no = 0; round_no < 200; round_no++) {
        uint8_t buf[UPLINK_MAX_PAYLOAD];
        struct lppenc w;
        struct lpp_value out[LPP_MAX_VALUES];
        double want[32][3];
        int types[32], ns[32];
        size_t n_out, n_put = 0;
        enum lpp_error why;

        lppenc_init(&w, buf, sizeof(buf));
        for (size_t t = 0; t < sizeof(RANGES) / sizeof(RANGES[0]); t++) {
            const struct range *r = &RANGES[t];
            double v[3];
            for (int k = 0; k < r->n; k++) {
                double hi = r->type == LPP_GPS && k == 1 ? 180 : r->hi;
                double lo = r->type == LPP_GPS && k == 1 ? -180 : r->lo;
                if (r->type == LPP_GPS && k == 2) {
                    lo = -83886.08;
                    hi = 83886.07;
                }
                v[k] = round_no == 0 ? lo : round_no == 1 ? hi : lo + (hi - lo) * rnd01();
                /* the decoder's value is the encoder's rounding of v */
                want[n_put][k] = v[k];
            }
            if (w.len + 2 + 9 > sizeof(buf))
                break;
            assert_int_equal(lppenc_put(&w, (uint8_t)t, r->type, v, r->n), 0);
            ns[n_put] = r->n;
            types[n_put++] = r->type;
        }
        assert_true(n_put > 10);
        assert_int_equal(lpp_decode(buf, w.len, out, LPP_MAX_VALUES, &n_out, &why), 0);
        assert_int_equal(why, LPP_OK);
        assert_int_equal(n_out, n_put);
        for (size_t m = 0; m < n_put; m++) {
            assert_int_equal(out[m].type, types[m]);
            assert_int_equal(out[m].channel, m);
            assert_int_equal(out[m].n, ns[m]);
            for (int k = 0; k < out[m].n; k++) {
                double step = lppenc_step(types[m], k);
                assert_true(step > 0);
                if (fabs(out[m].v[k] - want[m][k]) > step / 2 + 1e-9)
                    fail_msg("type %d value %d: encoded %.9g decoded %.9g", types[m], k, want[m][k],
                             out[m].v[k]);
            }
        }
    }
}

static void test_lppenc_errors(void **state)
{
    uint8_t buf[8];
    struct lppenc w;
    double three[3] = {1, 2, 3};

    (void)state;
    lppenc_init(&w, buf, sizeof(buf));
    assert_int_equal(lppenc_put1(&w, 1, 99, 1), ERR_BAD_DATA);                    /* unknown type */
    assert_int_equal(lppenc_put(&w, 1, LPP_TEMPERATURE, three, 3), ERR_BAD_DATA); /* n */
    assert_int_equal(lppenc_put(&w, 1, LPP_GPS, three, 1), ERR_BAD_DATA);
    assert_int_equal(lppenc_put1(&w, 1, LPP_TEMPERATURE, 3276.8), ERR_BAD_DATA);
    assert_int_equal(lppenc_put1(&w, 1, LPP_TEMPERATURE, -3276.9), ERR_BAD_DATA);
    assert_int_equal(lppenc_put1(&w, 1, LPP_HUMIDITY, -0.5), ERR_BAD_DATA);
    assert_int_equal(lppenc_put1(&w, 1, LPP_HUMIDITY, 128), ERR_BAD_DATA);
    assert_int_equal(lppenc_put1(&w, 1, LPP_VOLTAGE, NAN), ERR_BAD_DATA);
    assert_int_equal(lppenc_put1(&w, 1, LPP_VOLTAGE, INFINITY), ERR_BAD_DATA);
    assert_int_equal(w.len, 0);
    /* 4 + 4 fits in 8 bytes, a third reading does not: frame unchanged */
    assert_int_equal(lppenc_put1(&w, 1, LPP_TEMPERATURE, 1), 0);
    assert_int_equal(lppenc_put1(&w, 2, LPP_TEMPERATURE, 2), 0);
    assert_int_equal(w.len, 8);
    assert_int_equal(lppenc_put1(&w, 3, LPP_DIGITAL_INPUT, 1), ERR_TOO_LARGE);
    assert_int_equal(w.len, 8);
    assert_true(lppenc_step(LPP_TEMPERATURE, 0) == 0.1);
    assert_true(lppenc_step(LPP_GPS, 2) == 0.01);
    assert_true(lppenc_step(LPP_GPS, 3) == 0);
    assert_true(lppenc_step(99, 0) == 0);
}

/* --- generated messages ------------------------------------------------------ */

static const uint64_t SEEDS[] = {0, 1, 42, 0xdeadbeefcafebabeULL, UINT64_MAX};

static const char *reading_lpp_name(int type)
{
    const char *n = lpp_type_name(type);
    assert_non_null(n);
    return n;
}

static double number_member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(it))
        fail_msg("member %s is not a number", key);
    return it->valuedouble;
}

/* One message through the hub's own parsers, checked against the device
 * and the readings. Returns the event. */
static enum uplink_event check_message(const struct sim_conf *c, int i, long seq, int64_t t_ms,
                                       int tts)
{
    char topic[160], dev_key[128], *text = NULL;
    struct sim_device d;
    struct sim_reading r[SIM_MAX_READINGS];
    enum uplink_format f;
    enum uplink_event ev;
    struct uplink u;
    struct err e = {0};
    cJSON *msg;
    int n;

    assert_int_equal(sim_message(c, i, seq, t_ms, tts, &text, topic, sizeof(topic), &e), 0);
    assert_non_null(text);
    sim_device_at(c, i, &d);
    assert_int_equal(uplink_check_size(strlen(text)), 0);
    assert_int_equal(uplink_topic(topic, &f, &ev, dev_key), 0);
    assert_int_equal(f, tts ? UPLINK_TTS_V3 : UPLINK_CHIRPSTACK_V4);
    assert_string_equal(dev_key, tts ? d.name : d.dev_eui);
    msg = cJSON_Parse(text);
    if (msg == NULL)
        fail_msg("not JSON: %s", text);
    if (uplink_parse(f, ev, msg, &u, &e) != 0)
        fail_msg("uplink_parse: %s (%s)\n%s", e.detail, u.reason, text);
    assert_string_equal(u.dev_eui, d.dev_eui);
    assert_string_equal(u.device_name, d.name);
    if (!tts) {
        assert_int_equal(strlen(u.dedup_id), 36);
        assert_int_equal(u.dedup_id[14], '4'); /* UUID version 4 */
        /* ChirpStack time carries microseconds; the ms part is t_ms */
        assert_true(u.time_ms == t_ms);
    } else
        assert_true(u.time_ms == t_ms);
    if (ev == UPLINK_EV_STATUS) {
        assert_false(tts);
        assert_int_equal(seq % 50, 49);
        if (strcmp(d.kind, "light") == 0) {
            assert_true(u.external_power);
            assert_false(u.has_battery);
        } else {
            assert_false(u.external_power);
            assert_true(u.has_battery);
            assert_true(u.battery >= 0 && u.battery <= 100);
        }
        goto out;
    }
    assert_int_equal(ev, UPLINK_EV_UP);
    assert_int_equal(u.f_cnt, (uint32_t)seq);
    assert_true(u.has_rssi);
    assert_true(u.rssi >= -120 && u.rssi <= -60);
    assert_true(u.snr >= -10 && u.snr <= 12);
    n = sim_readings(c, i, seq, t_ms, r);
    assert_true(n > 0);
    if (strcmp(d.kind, "light") == 0) {
        /* network-decoded: object/decoded_payload, plus the binary frame */
        assert_int_equal(u.f_port, 2);
        assert_non_null(u.decoded);
        assert_int_equal(n, 4);
        assert_true(number_member(u.decoded, "peopleCountTowards") == r[0].value);
        assert_true(number_member(u.decoded, "peopleCountAway") == r[1].value);
        assert_true(number_member(u.decoded, "peopleCount") == r[0].value + r[1].value);
        assert_true(fabs(number_member(u.decoded, "occupancy") - r[2].value) < 1e-9);
        const cJSON *lamp = cJSON_GetObjectItemCaseSensitive(u.decoded, "lampOn");
        assert_true(cJSON_IsBool(lamp));
        assert_int_equal(cJSON_IsTrue(lamp), (int)r[3].value);
        assert_int_equal(u.payload_len, 6);
        assert_int_equal(u.payload[0] << 8 | u.payload[1], (int)r[0].value);
        assert_int_equal(u.payload[2] << 8 | u.payload[3], (int)r[1].value);
        assert_int_equal(u.payload[4], (int)lround(r[2].value * 100));
        assert_int_equal(u.payload[5], (int)r[3].value);
    } else {
        struct lpp_value v[LPP_MAX_VALUES];
        size_t nv;
        enum lpp_error why;

        assert_int_equal(u.f_port, strcmp(d.kind, "air") == 0 ? 1 : 3);
        assert_null(u.decoded);
        assert_int_equal(lpp_decode(u.payload, u.payload_len, v, LPP_MAX_VALUES, &nv, &why), 0);
        assert_int_equal(nv, (size_t)n);
        for (int k = 0; k < n; k++) {
            assert_int_equal(v[k].channel, r[k].channel);
            assert_int_equal(v[k].type, r[k].lpp_type);
            assert_string_equal(v[k].name, reading_lpp_name(r[k].lpp_type));
            if (fabs(v[k].v[0] - r[k].value) > 1e-9)
                fail_msg("%s: encoded %.9g decoded %.9g", r[k].name, r[k].value, v[k].v[0]);
        }
    }
out:
    uplink_free(&u);
    cJSON_Delete(msg);
    free(text);
    return ev;
}

static void test_messages_parse(void **state)
{
    int n_status[2] = {0}, n_up[2] = {0}, kinds_seen[3] = {0};

    (void)state;
    for (size_t s = 0; s < sizeof(SEEDS) / sizeof(SEEDS[0]); s++) {
        struct sim_conf c;
        sim_conf_defaults(&c);
        c.seed = SEEDS[s];
        for (int tts = 0; tts <= 1; tts++)
            for (int i = 0; i < 30; i++) {
                static const long SEQS[] = {0, 1, 2, 48, 49, 50, 99, 1000, 4294967295L};
                struct sim_device d;
                sim_device_at(&c, i, &d);
                kinds_seen[d.kind[0] == 'a' ? 0 : d.kind[0] == 'l' ? 1 : 2]++;
                for (size_t q = 0; q < sizeof(SEQS) / sizeof(SEQS[0]); q++) {
                    int64_t t = FRI_2026_06_12 + (int64_t)(q * 7 + (size_t)i) * 37 * 60000 +
                                (int64_t)s * 86400000 * 40 + 123;
                    if (check_message(&c, i, SEQS[q], t, tts) == UPLINK_EV_STATUS)
                        n_status[tts]++;
                    else
                        n_up[tts]++;
                }
            }
    }
    /* seq 49 and 99 are status events for ChirpStack (2 of 9, 30 devices, 5
     * seeds); The Things Stack has none */
    assert_int_equal(n_status[0], 2 * 30 * 5);
    assert_int_equal(n_up[0], 7 * 30 * 5);
    assert_int_equal(n_status[1], 0);
    assert_int_equal(n_up[1], 9 * 30 * 5);
    assert_true(kinds_seen[0] > 0 && kinds_seen[1] > 0 && kinds_seen[2] > 0);
}

static void test_message_shape(void **state)
{
    struct sim_conf c;
    char topic[160], *text;
    struct err e = {0};
    cJSON *msg, *rx;

    (void)state;
    sim_conf_defaults(&c);
    c.tenant = "city \"north\"";
    /* fCnt 0 is omitted, as protobuf JSON does; rxInfo has 1-3 gateways */
    assert_int_equal(sim_message(&c, 0, 0, FRI_2026_06_12, 0, &text, topic, sizeof(topic), &e), 0);
    msg = cJSON_Parse(text);
    assert_non_null(msg);
    assert_null(cJSON_GetObjectItemCaseSensitive(msg, "fCnt"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(msg, "deviceInfo"), "tenantName")
                            ->valuestring,
                        "city \"north\"");
    rx = cJSON_GetObjectItemCaseSensitive(msg, "rxInfo");
    assert_true(cJSON_GetArraySize(rx) >= 1 && cJSON_GetArraySize(rx) <= 3);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(msg, "txInfo"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(msg, "time")->valuestring + 19 + 7,
                        "+00:00");
    assert_int_equal(strncmp(topic, "application/", 12), 0);
    cJSON_Delete(msg);
    free(text);

    assert_int_equal(sim_message(&c, 1, 3, FRI_2026_06_12, 1, &text, topic, sizeof(topic), &e), 0);
    assert_string_equal(topic, "v3/sim-light@ttn/devices/sim-light-0001/up");
    msg = cJSON_Parse(text);
    assert_non_null(msg);
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(msg, "uplink_message");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(up, "decoded_payload")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(up, "f_cnt")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(up, "received_at")->valuestring,
                        "2026-06-12T00:00:00.000Z");
    rx = cJSON_GetObjectItemCaseSensitive(up, "rx_metadata");
    assert_true(cJSON_GetArraySize(rx) >= 1 && cJSON_GetArraySize(rx) <= 3);
    cJSON_Delete(msg);
    free(text);
}

static void test_message_errors(void **state)
{
    struct sim_conf c;
    char topic[160], small[20], *text = (char *)"x";
    struct err e = {0};

    (void)state;
    sim_conf_defaults(&c);
    assert_int_equal(sim_message(&c, -1, 0, FRI_2026_06_12, 0, &text, topic, sizeof(topic), &e),
                     ERR_INVALID_REQUEST);
    assert_null(text);
    assert_true(e.detail[0] != '\0');
    err_clear(&e);
    text = (char *)"x";
    assert_int_equal(sim_message(&c, 0, -1, FRI_2026_06_12, 0, &text, topic, sizeof(topic), &e),
                     ERR_INVALID_REQUEST);
    assert_null(text);
    err_clear(&e);
    assert_int_equal(
        sim_message(&c, 0, 4294967296L, FRI_2026_06_12, 0, &text, topic, sizeof(topic), &e),
        ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(sim_message(&c, 0, 1, FRI_2026_06_12, 0, &text, small, sizeof(small), &e),
                     ERR_TOO_LARGE);
    assert_null(text);
    struct sim_reading r[SIM_MAX_READINGS];
    assert_int_equal(sim_readings(&c, -1, 0, FRI_2026_06_12, r), 0);
}

/* --- realism ------------------------------------------------------------------------- */

static double reading(const struct sim_reading *r, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (strcmp(r[k].name, name) == 0)
            return r[k].value;
    fail_msg("no reading %s", name);
    return 0;
}

static void test_ranges(void **state)
{
    struct sim_conf c;

    (void)state;
    sim_conf_defaults(&c);
    for (size_t s = 0; s < sizeof(SEEDS) / sizeof(SEEDS[0]); s++) {
        c.seed = SEEDS[s];
        for (int i = 0; i < 40; i++)
            for (long seq = 0; seq < 400; seq += 7) {
                struct sim_reading r[SIM_MAX_READINGS];
                /* a year in 57 steps, every hour of the day */
                int64_t t = FRI_2026_06_12 + seq * 6 * 86400000 / 7 + (int64_t)i * 47 * 60000;
                int n = sim_readings(&c, i, seq, t, r);
                struct sim_device d;
                sim_device_at(&c, i, &d);
                if (!strcmp(d.kind, "air")) {
                    assert_int_equal(n, 6);
                    double pm25 = reading(r, n, "pm25"), pm10 = reading(r, n, "pm10");
                    assert_true(reading(r, n, "temperature") >= -25 &&
                                reading(r, n, "temperature") <= 45);
                    assert_true(reading(r, n, "humidity") >= 15 &&
                                reading(r, n, "humidity") <= 100);
                    assert_true(pm25 >= 0 && pm25 <= 300);
                    assert_true(pm10 >= pm25 - 0.005 && pm10 <= 320);
                    assert_true(reading(r, n, "no2") >= 0 && reading(r, n, "no2") <= 300);
                    assert_true(reading(r, n, "batteryVoltage") >= 3.0 &&
                                reading(r, n, "batteryVoltage") <= 4.2);
                } else if (!strcmp(d.kind, "light")) {
                    assert_int_equal(n, 4);
                    assert_true(reading(r, n, "peopleCountTowards") >= 0 &&
                                reading(r, n, "peopleCountTowards") < 1000);
                    assert_true(reading(r, n, "peopleCountAway") >= 0 &&
                                reading(r, n, "peopleCountAway") < 1000);
                    assert_true(reading(r, n, "occupancy") >= 0 && reading(r, n, "occupancy") <= 1);
                    double lamp = reading(r, n, "lampOn");
                    assert_true(lamp == 0 || lamp == 1);
                } else {
                    assert_string_equal(d.kind, "water");
                    assert_int_equal(n, 4);
                    assert_true(reading(r, n, "temperature") >= 0 &&
                                reading(r, n, "temperature") <= 30);
                    assert_true(reading(r, n, "pH") >= 6 && reading(r, n, "pH") <= 9);
                    assert_true(reading(r, n, "distance") >= 0.05 &&
                                reading(r, n, "distance") <= 5);
                    assert_true(reading(r, n, "batteryVoltage") >= 3.0 &&
                                reading(r, n, "batteryVoltage") <= 4.2);
                }
            }
    }
}

/* mean of a reading over devices of one kind at a local hour */
static double mean_at(const struct sim_conf *c, const char *kind, const char *name, int64_t t)
{
    double sum = 0;
    int n = 0;
    for (int i = 0; i < 200; i++) {
        struct sim_device d;
        struct sim_reading r[SIM_MAX_READINGS];
        sim_device_at(c, i, &d);
        if (strcmp(d.kind, kind) != 0)
            continue;
        int nr = sim_readings(c, i, 10 + i, t, r);
        sum += reading(r, nr, name);
        n++;
    }
    assert_true(n > 0);
    return sum / n;
}

/* local solar time at lon 4.89 is UTC + 19.6 min: hours below are UTC */
static void test_daily_cycles(void **state)
{
    struct sim_conf c;
    double night, afternoon, rush, weekend_rush;

    (void)state;
    sim_conf_defaults(&c);
    night = mean_at(&c, "air", "temperature", FRI_2026_06_12 + 3 * HOUR_MS);
    afternoon = mean_at(&c, "air", "temperature", FRI_2026_06_12 + 14 * HOUR_MS + 40 * 60000);
    assert_true(afternoon - night > 5); /* +-4 degC daily around the mean */
    assert_true(mean_at(&c, "air", "humidity", FRI_2026_06_12 + 3 * HOUR_MS) >
                mean_at(&c, "air", "humidity", FRI_2026_06_12 + 14 * HOUR_MS + 40 * 60000) + 15);
    /* summer is warmer than winter */
    assert_true(afternoon > mean_at(&c, "air", "temperature", TUE_2026_12_15 + 14 * HOUR_MS) + 8);

    night = mean_at(&c, "air", "no2", FRI_2026_06_12 + 3 * HOUR_MS);
    rush = mean_at(&c, "air", "no2", FRI_2026_06_12 + 7 * HOUR_MS + 40 * 60000);
    weekend_rush = mean_at(&c, "air", "no2", SAT_2026_06_13 + 7 * HOUR_MS + 40 * 60000);
    assert_true(rush > night + 30);
    assert_true(rush > weekend_rush + 20);
    assert_true(mean_at(&c, "air", "pm25", FRI_2026_06_12 + 7 * HOUR_MS + 40 * 60000) >
                mean_at(&c, "air", "pm25", FRI_2026_06_12 + 3 * HOUR_MS) + 8);

    /* pedestrians: near zero at night, busy in the evening rush */
    night = mean_at(&c, "light", "peopleCountTowards", FRI_2026_06_12 + 3 * HOUR_MS) +
            mean_at(&c, "light", "peopleCountAway", FRI_2026_06_12 + 3 * HOUR_MS);
    rush = mean_at(&c, "light", "peopleCountTowards", FRI_2026_06_12 + 17 * HOUR_MS) +
           mean_at(&c, "light", "peopleCountAway", FRI_2026_06_12 + 17 * HOUR_MS);
    assert_true(night < 5);
    assert_true(rush > 50);
    /* evening rush: more people going away than towards */
    assert_true(mean_at(&c, "light", "peopleCountAway", FRI_2026_06_12 + 17 * HOUR_MS) >
                mean_at(&c, "light", "peopleCountTowards", FRI_2026_06_12 + 17 * HOUR_MS) * 1.5);
    /* lamps: on at midnight and on a December evening, off at noon */
    assert_true(mean_at(&c, "light", "lampOn", FRI_2026_06_12 + 0 * HOUR_MS) == 1);
    assert_true(mean_at(&c, "light", "lampOn", FRI_2026_06_12 + 12 * HOUR_MS) == 0);
    assert_true(mean_at(&c, "light", "lampOn", TUE_2026_12_15 + 17 * HOUR_MS) == 1);
    assert_true(mean_at(&c, "light", "lampOn", FRI_2026_06_12 + 19 * HOUR_MS) ==
                0); /* sunset ~20:18 */
}

static void test_slow_water_drift(void **state)
{
    struct sim_conf c;
    struct sim_reading a[SIM_MAX_READINGS], b[SIM_MAX_READINGS];
    double max_step = 0, span_lo = 1e9, span_hi = -1e9;

    (void)state;
    sim_conf_defaults(&c);
    /* device 2 is a water sensor; every 10 minutes for 8 days */
    for (long seq = 0; seq < 8 * 144; seq++) {
        int64_t t = FRI_2026_06_12 + seq * 600000;
        sim_readings(&c, 2, seq, t, a);
        sim_readings(&c, 2, seq + 1, t + 600000, b);
        double d = fabs(reading(a, 4, "distance") - reading(b, 4, "distance"));
        if (d > max_step)
            max_step = d;
        if (reading(a, 4, "distance") < span_lo)
            span_lo = reading(a, 4, "distance");
        if (reading(a, 4, "distance") > span_hi)
            span_hi = reading(a, 4, "distance");
    }
    assert_true(max_step < 0.03);         /* no jumps between messages */
    assert_true(span_hi - span_lo > 0.1); /* but it moves over days */
}

static void test_determinism(void **state)
{
    struct sim_conf c, c2;
    char t1[160], t2[160], *a, *b;
    struct err e = {0};

    (void)state;
    sim_conf_defaults(&c);
    c.seed = 7;
    for (int tts = 0; tts <= 1; tts++)
        for (int i = 0; i < 10; i++) {
            assert_int_equal(sim_message(&c, i, 5, FRI_2026_06_12, tts, &a, t1, sizeof(t1), &e), 0);
            assert_int_equal(sim_message(&c, i, 5, FRI_2026_06_12, tts, &b, t2, sizeof(t2), &e), 0);
            assert_string_equal(t1, t2);
            assert_int_equal(strlen(a), strlen(b));
            /* only the random ids differ: the dedup UUID or the correlation id */
            const char *key = tts ? "\"as:up:" : "\"deduplicationId\":\"";
            char *pa = strstr(a, key), *pb = strstr(b, key);
            assert_non_null(pa);
            assert_non_null(pb);
            size_t off = (size_t)(pa - a) + strlen(key), len = tts ? 26 : 36;
            assert_int_equal(pa - a, pb - b);
            assert_memory_not_equal(a + off, b + off, len);
            memset(a + off, '-', len);
            memset(b + off, '-', len);
            assert_string_equal(a, b);
            free(a);
            free(b);
        }
    /* another seed: other EUIs, positions and values */
    c2 = c;
    c2.seed = 8;
    struct sim_device d1, d2;
    struct sim_reading r1[SIM_MAX_READINGS], r2[SIM_MAX_READINGS];
    sim_device_at(&c, 0, &d1);
    sim_device_at(&c2, 0, &d2);
    assert_string_not_equal(d1.dev_eui, d2.dev_eui);
    assert_true(d1.lat != d2.lat || d1.lon != d2.lon);
    sim_readings(&c, 0, 3, FRI_2026_06_12, r1);
    sim_readings(&c2, 0, 3, FRI_2026_06_12, r2);
    assert_true(r1[0].value != r2[0].value || r1[2].value != r2[2].value);
    /* same seed: same device */
    sim_device_at(&c, 0, &d2);
    assert_string_equal(d1.dev_eui, d2.dev_eui);
    assert_true(d1.lat == d2.lat && d1.lon == d2.lon);

    /* format selection */
    c.format = "tts-v3";
    assert_int_equal(sim_device_tts(&c, 3), 1);
    c.format = "chirpstack-v4";
    assert_int_equal(sim_device_tts(&c, 3), 0);
    c.format = "mix";
    int n_tts = 0;
    for (int i = 0; i < 1000; i++)
        n_tts += sim_device_tts(&c, i);
    assert_true(n_tts > 400 && n_tts < 600);
}

static double dist_m(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = lat1 * PI / 180, p2 = lat2 * PI / 180;
    double dp = p2 - p1, dl = (lon2 - lon1) * PI / 180;
    double h = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    return 2 * 6371008.8 * asin(sqrt(h));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_devices_positions(void **state)
{
    struct sim_conf c;
    static char euis[2000][17];
    double far = 0;
    int kinds[3] = {0};

    (void)state;
    sim_conf_defaults(&c);
    assert_true(c.lat == 52.37 && c.lon == 4.89 && c.n_devices == 60 && c.rate == 5);
    c.radius_m = 800;
    for (int i = 0; i < 2000; i++) {
        struct sim_device d;
        char want[64];
        sim_device_at(&c, i, &d);
        double m = dist_m(c.lat, c.lon, d.lat, d.lon);
        assert_true(m <= c.radius_m);
        if (m > far)
            far = m;
        assert_int_equal(strlen(d.dev_eui), 16);
        assert_int_equal(strspn(d.dev_eui, "0123456789abcdef"), 16);
        memcpy(euis[i], d.dev_eui, 17);
        snprintf(want, sizeof(want), "sim-%s-%04d", d.kind, i);
        assert_string_equal(d.name, want);
        kinds[d.kind[0] == 'a' ? 0 : d.kind[0] == 'l' ? 1 : 2]++;
        assert_string_equal(d.profile, d.kind[0] == 'a'   ? "sim-air-quality-lpp"
                                       : d.kind[0] == 'l' ? "sim-light-counter"
                                                          : "sim-water-lpp");
    }
    assert_true(far > c.radius_m * 0.9); /* the whole disc is used */
    assert_int_equal(kinds[0], 800);
    assert_int_equal(kinds[1], 800);
    assert_int_equal(kinds[2], 400);
    qsort(euis, 2000, sizeof(euis[0]), cmp_str);
    for (int i = 1; i < 2000; i++)
        assert_string_not_equal(euis[i - 1], euis[i]);
}

static const cJSON *member(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (it == NULL)
        fail_msg("member %s missing", k);
    return it;
}

static void test_profiles_and_devices_json(void **state)
{
    struct sim_conf c;
    cJSON *profiles = sim_profiles_json(), *devices;
    const cJSON *p, *d;
    int n = 0;

    (void)state;
    assert_non_null(profiles);
    assert_int_equal(cJSON_GetArraySize(profiles), 3);
    /* every LPP reading the devices send is mapped by their profile's fields */
    sim_conf_defaults(&c);
    cJSON_ArrayForEach(p, profiles)
    {
        const char *id = member(p, "id")->valuestring;
        const cJSON *fields = member(p, "fields"), *f;
        int dev = !strcmp(id, "sim-air-quality-lpp") ? 0 : !strcmp(id, "sim-light-counter") ? 1 : 2;
        struct sim_reading r[SIM_MAX_READINGS];
        int nr = sim_readings(&c, dev, 0, FRI_2026_06_12, r);

        assert_string_equal(member(p, "codec")->valuestring,
                            dev == 1 ? "network-decoded" : "cayenne-lpp");
        assert_true(cJSON_IsString(member(p, "entityType")));
        assert_true(cJSON_IsTrue(member(p, "deviceEntity")));
        for (int k = 0; k < nr; k++) {
            char from[64];
            int found = 0;
            if (r[k].lpp_type >= 0)
                snprintf(from, sizeof(from), "%s_%d", lpp_type_name(r[k].lpp_type), r[k].channel);
            else
                snprintf(from, sizeof(from), "%s", r[k].name);
            cJSON_ArrayForEach(f, fields) found |= !strcmp(member(f, "from")->valuestring, from);
            if (!found)
                fail_msg("profile %s does not map %s", id, from);
        }
        n++;
    }
    assert_int_equal(n, 3);
    cJSON_Delete(profiles);

    c.n_devices = 25;
    devices = sim_devices_json(&c);
    assert_non_null(devices);
    assert_int_equal(cJSON_GetArraySize(devices), 25);
    n = 0;
    cJSON_ArrayForEach(d, devices)
    {
        struct sim_device sd;
        sim_device_at(&c, n, &sd);
        assert_string_equal(member(d, "devEui")->valuestring, sd.dev_eui);
        assert_string_equal(member(d, "profile")->valuestring, sd.profile);
        assert_string_equal(member(d, "name")->valuestring, sd.name);
        const cJSON *loc = member(d, "location");
        assert_string_equal(member(loc, "type")->valuestring, "Point");
        const cJSON *co = member(loc, "coordinates");
        assert_true(cJSON_GetArrayItem(co, 0)->valuedouble == sd.lon);
        assert_true(cJSON_GetArrayItem(co, 1)->valuedouble == sd.lat);
        assert_string_equal(member(member(d, "tags"), "kind")->valuestring, sd.kind);
        assert_true(cJSON_IsString(member(d, "description")));
        n++;
    }
    cJSON_Delete(devices);
}

/* --- provisioning: the profiles and devices work with ingest/profile ---------------- */

#define VOCAB "https://uri.etsi.org/ngsi-ld/default-context/"

static char *expand_vocab(void *ud, const char *term)
{
    size_t n = strlen(term);
    char *iri = malloc(sizeof(VOCAB) + n);
    (void)ud;
    if (iri != NULL) {
        memcpy(iri, VOCAB, sizeof(VOCAB) - 1);
        memcpy(iri + sizeof(VOCAB) - 1, term, n + 1);
    }
    return iri;
}

static double attr_value(const cJSON *entity, const char *term)
{
    char iri[128];
    const cJSON *inst, *v;
    snprintf(iri, sizeof(iri), VOCAB "%s", term);
    inst = cJSON_GetArrayItem(member(member(entity, "attrs"), iri), 0);
    assert_non_null(inst);
    v = member(inst, "value");
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* sim_profiles_json + sim_devices_json parse with prof_parse and
 * prof_device_parse, and every kind's uplinks (both formats) map to the
 * entity with the values the device sent. */
static void test_profiles_map_messages(void **state)
{
    struct sim_conf c;
    struct prof *profs[3] = {0};
    cJSON *pj, *dj, *it;
    struct err e = {0};
    int k = 0;

    (void)state;
    sim_conf_defaults(&c);
    c.n_devices = 6;
    pj = sim_profiles_json();
    dj = sim_devices_json(&c);
    assert_non_null(pj);
    assert_non_null(dj);
    cJSON_ArrayForEach(it, pj)
    {
        if (prof_parse(it, expand_vocab, NULL, &profs[k], &e) != 0)
            fail_msg("profile %d: %s", k, e.detail);
        k++;
    }
    k = 0;
    cJSON_ArrayForEach(it, dj)
    {
        struct prof_device *d = NULL;
        struct sim_device sd;
        struct prof *p = NULL;

        sim_device_at(&c, k, &sd);
        if (prof_device_parse(it, &d, &e) != 0)
            fail_msg("device %d: %s", k, e.detail);
        for (int j = 0; j < 3; j++)
            if (strcmp(prof_id(profs[j]), sd.profile) == 0)
                p = profs[j];
        assert_non_null(p);
        for (int tts = 0; tts <= 1; tts++) {
            char topic[160], key[128], *text, want_id[128];
            struct sim_reading r[SIM_MAX_READINGS];
            enum uplink_format f;
            enum uplink_event ev;
            struct uplink u;
            struct prof_out o;
            int64_t t = FRI_2026_06_12 + 8 * HOUR_MS + k * 60000;
            int nr = sim_readings(&c, k, 7, t, r);
            cJSON *msg;

            assert_int_equal(sim_message(&c, k, 7, t, tts, &text, topic, sizeof(topic), &e), 0);
            assert_non_null(msg = cJSON_Parse(text));
            assert_int_equal(uplink_topic(topic, &f, &ev, key), 0);
            assert_int_equal(uplink_parse(f, ev, msg, &u, &e), 0);
            if (prof_map(p, d, &u, 0, &o, &e) != 0)
                fail_msg("map %s: %s", sd.name, e.detail);
            assert_int_equal(o.n_rejected, 0);
            assert_int_equal(o.n_unmapped, 0);
            assert_non_null(o.entity);
            assert_non_null(o.device);
            snprintf(want_id, sizeof(want_id), "urn:ngsi-ld:%s:%s",
                     !strcmp(sd.kind, "air")     ? "AirQualityObserved"
                     : !strcmp(sd.kind, "light") ? "CrowdFlowObserved"
                                                 : "WaterQualityObserved",
                     sd.name);
            assert_string_equal(member(o.entity, "id")->valuestring, want_id);
            for (int m = 0; m < nr; m++) {
                const char *attr = r[m].name;
                double want = r[m].value;
                if (!strcmp(sd.kind, "air") && !strcmp(attr, "humidity")) {
                    attr = "relativeHumidity";
                    want /= 100;
                } else if (!strcmp(attr, "distance")) {
                    attr = "waterLevel";
                    want = 3.0 - want;
                }
                if (fabs(attr_value(o.entity, attr) - want) > 1e-9)
                    fail_msg("%s %s: want %.9g got %.9g", sd.name, attr, want,
                             attr_value(o.entity, attr));
            }
            if (!strcmp(sd.kind, "light"))
                assert_true(attr_value(o.entity, "peopleCount") == r[0].value + r[1].value);
            prof_out_clear(&o);
            uplink_free(&u);
            cJSON_Delete(msg);
            free(text);
        }
        prof_device_free(d);
        k++;
    }
    assert_int_equal(k, 6);
    for (int j = 0; j < 3; j++)
        prof_free(profs[j]);
    cJSON_Delete(pj);
    cJSON_Delete(dj);
}

/* --- sim_run: start errors (publishing: tests/api/test_16_simulate.py) ------------------- */

/* a loopback port nothing listens on */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_run_start_errors(void **state)
{
    struct sim_conf c;
    struct sim_stats st;
    struct err e = {0};
    char url[64];

    (void)state;
    sim_conf_defaults(&c);
    c.count = 1;
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST); /* no URL */
    err_clear(&e);
    c.mqtt_url = "mqtt://127.0.0.1:1";
    c.webhook_url = "http://127.0.0.1:1";
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST); /* both */
    err_clear(&e);
    c.webhook_url = NULL;
    c.format = "lorawan";
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    c.format = "mix";
    c.qos = 2;
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    c.qos = 0;
    c.n_devices = 0;
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    c.n_devices = 5;
    c.rate = -1;
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    c.rate = 0;
    c.mqtt_url = "tcp://127.0.0.1:1883";
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST);
    err_clear(&e);

    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", closed_port());
    c.mqtt_url = url;
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_IO);
    assert_non_null(strstr(e.detail, "cannot connect"));
    err_clear(&e);

    c.mqtt_url = NULL;
    c.webhook_url = "ftp://127.0.0.1/";
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    c.webhook_url = url;
    assert_int_equal(sim_run(&c, NULL, &st, &e), ERR_IO);
    assert_non_null(strstr(e.detail, "cannot reach"));
    assert_int_equal(st.sent, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lppenc_public_vectors),
        cmocka_unit_test(test_lppenc_roundtrip_all_types),
        cmocka_unit_test(test_lppenc_errors),
        cmocka_unit_test(test_messages_parse),
        cmocka_unit_test(test_message_shape),
        cmocka_unit_test(test_message_errors),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_daily_cycles),
        cmocka_unit_test(test_slow_water_drift),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_devices_positions),
        cmocka_unit_test(test_profiles_and_devices_json),
        cmocka_unit_test(test_profiles_map_messages),
        cmocka_unit_test(test_run_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
