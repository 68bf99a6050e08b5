/* test_lpp.c - Cayenne LPP decoder: the shared vectors, every type, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/lpp.h"
#include "util/err.h"

struct want {
    uint8_t channel;
    uint8_t type;
    const char *name;
    int n;
    double v[3];
    const char *unit;
    double resolution; /* tolerance is 1e-9 of this */
};

struct vector {
    const char *hex;
    size_t n_values;
    struct want values[4];
};

/* Expected decodings of lorawan/cayenne-lpp-vectors.tsv, keyed by payload. */
static const struct vector VECTORS[] = {
    {"03670110056700FF", 2,
     {{3, LPP_TEMPERATURE, "temperature", 1, {27.2}, "CEL", 0.1},
      {5, LPP_TEMPERATURE, "temperature", 1, {25.5}, "CEL", 0.1}}},
    {"0167FFD7", 1, {{1, LPP_TEMPERATURE, "temperature", 1, {-4.1}, "CEL", 0.1}}},
    {"067104D2FB2E0000", 1,
     {{6, LPP_ACCELEROMETER, "accelerometer", 3, {1.234, -1.234, 0.0}, "K40", 0.001}}},
    {"018806765FF2960A0003E8", 1, {{1, LPP_GPS, "gps", 3, {42.3519, -87.9094, 10.0}, NULL, 0.0001}}},
    {"016700B802688F0373278B040204D2", 4,
     {{1, LPP_TEMPERATURE, "temperature", 1, {18.4}, "CEL", 0.1},
      {2, LPP_HUMIDITY, "humidity", 1, {71.5}, "P1", 0.5},
      {3, LPP_BAROMETER, "barometer", 1, {1012.3}, "A97", 0.1},
      {4, LPP_ANALOG_INPUT, "analog_input", 1, {12.34}, NULL, 0.01}}},
    {"01650023026601030101046400000039", 4,
     {{1, LPP_ILLUMINANCE, "illuminance", 1, {35}, "LUX", 1},
      {2, LPP_PRESENCE, "presence", 1, {1}, NULL, 1},
      {3, LPP_DIGITAL_OUTPUT, "digital_output", 1, {1}, NULL, 1},
      {4, LPP_GENERIC, "generic", 1, {57}, NULL, 1}}},
    {"018807FD9C00BF910000FA", 1, {{1, LPP_GPS, "gps", 3, {52.3676, 4.9041, 2.5}, NULL, 0.0001}}},
};

static const char *fixtures_dir(void)
{
    const char *d = getenv("PL_FIXTURES");

    return d != NULL && d[0] != '\0' ? d : "/work/shared/fixtures";
}

static size_t hex_to_bytes(const char *hex, size_t hex_len, uint8_t *out, size_t cap)
{
    size_t n = 0;

    assert_int_equal(hex_len % 2, 0);
    for (size_t i = 0; i + 1 < hex_len; i += 2) {
        unsigned int byte;
        char two[3] = {hex[i], hex[i + 1], '\0'};

        assert_true(n < cap);
        assert_int_equal(sscanf(two, "%2x", &byte), 1);
        out[n++] = (uint8_t)byte;
    }
    return n;
}

static void assert_values(const struct lpp_value *got, size_t n_got, const struct want *want,
                          size_t n_want, const char *label)
{
    if (n_got != n_want)
        fail_msg("%s: %zu values, want %zu", label, n_got, n_want);
    for (size_t i = 0; i < n_want; i++) {
        assert_int_equal(got[i].channel, want[i].channel);
        assert_int_equal(got[i].type, want[i].type);
        assert_string_equal(got[i].name, want[i].name);
        assert_int_equal(got[i].n, want[i].n);
        if (want[i].unit == NULL)
            assert_null(got[i].unit);
        else
            assert_string_equal(got[i].unit, want[i].unit);
        for (int k = 0; k < 3; k++) {
            double tol = 1e-9 * want[i].resolution;
            double w = k < want[i].n ? want[i].v[k] : 0.0;

            if (fabs(got[i].v[k] - w) > tol)
                fail_msg("%s value %zu[%d]: got %.12g, want %.12g", label, i, k, got[i].v[k], w);
        }
    }
}

static const struct vector *vector_find(const char *hex, size_t len)
{
    for (size_t i = 0; i < sizeof(VECTORS) / sizeof(VECTORS[0]); i++)
        if (strlen(VECTORS[i].hex) == len && strncasecmp(VECTORS[i].hex, hex, len) == 0)
            return &VECTORS[i];
    return NULL;
}

/* Every line of the shared file decodes to its expected values, and the
 * file has no line this table does not know (a new vector fails here). */
static void test_vectors_file(void **state)
{
    char path[512], line[1024];
    size_t n_lines = 0;
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/lorawan/cayenne-lpp-vectors.tsv", fixtures_dir());
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        struct lpp_value out[LPP_MAX_VALUES];
        uint8_t buf[256];
        size_t hex_len = strcspn(line, "\t\r\n"), len, n_out = 99;
        const struct vector *v;
        enum lpp_error why = LPP_TOO_MANY;

        if (line[0] == '#' || hex_len == 0)
            continue;
        v = vector_find(line, hex_len);
        if (v == NULL)
            fail_msg("vector without an expected decoding in the test: %.*s", (int)hex_len, line);
        len = hex_to_bytes(line, hex_len, buf, sizeof(buf));
        assert_int_equal(lpp_decode(buf, len, out, LPP_MAX_VALUES, &n_out, &why), 0);
        assert_int_equal(why, LPP_OK);
        assert_values(out, n_out, v->values, v->n_values, v->hex);
        n_lines++;
    }
    fclose(f);
    assert_true(n_lines >= sizeof(VECTORS) / sizeof(VECTORS[0]));
}

/* Every line of malformed/cayenne-lpp-bad.tsv is rejected for its reason. */
static void test_bad_file(void **state)
{
    static const struct {
        const char *hex;
        enum lpp_error why;
        int rc;
    } BAD[] = {
        {"0367", LPP_TRUNCATED, ERR_BAD_DATA},
        {"036701", LPP_TRUNCATED, ERR_BAD_DATA},
        {"03FF0110", LPP_UNKNOWN_TYPE, ERR_BAD_DATA},
        {"", LPP_EMPTY, 0},
        {"018806765FF2", LPP_TRUNCATED, ERR_BAD_DATA},
    };
    char path[512], line[1024];
    size_t n_lines = 0, n_empty = 0;
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/malformed/cayenne-lpp-bad.tsv", fixtures_dir());
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        struct lpp_value out[LPP_MAX_VALUES];
        uint8_t buf[256];
        size_t hex_len = strcspn(line, "\t\r\n"), len, n_out = 99, k;
        enum lpp_error why = LPP_OK;

        if (line[0] == '#' || line[0] == '\n' || line[0] == '\0')
            continue;
        for (k = 0; k < sizeof(BAD) / sizeof(BAD[0]); k++)
            if (strlen(BAD[k].hex) == hex_len && strncasecmp(BAD[k].hex, line, hex_len) == 0)
                break;
        if (k == sizeof(BAD) / sizeof(BAD[0]))
            fail_msg("bad vector unknown to the test: %s", line);
        len = hex_to_bytes(line, hex_len, buf, sizeof(buf));
        assert_int_equal(lpp_decode(len ? buf : NULL, len, out, LPP_MAX_VALUES, &n_out, &why),
                         BAD[k].rc);
        assert_int_equal(why, BAD[k].why);
        assert_int_equal(n_out, 0);
        n_empty += BAD[k].why == LPP_EMPTY;
        n_lines++;
    }
    fclose(f);
    assert_int_equal(n_lines, sizeof(BAD) / sizeof(BAD[0]));
    assert_int_equal(n_empty, 1);
}

static void decode_one(const char *hex, const struct want *want)
{
    struct lpp_value out[4];
    uint8_t buf[64];
    size_t len = hex_to_bytes(hex, strlen(hex), buf, sizeof(buf)), n_out;
    enum lpp_error why;

    assert_int_equal(lpp_decode(buf, len, out, 4, &n_out, &why), 0);
    assert_int_equal(why, LPP_OK);
    assert_values(out, n_out, want, 1, hex);
}

/* One frame per type, at the edges of its range (sign, full width). */
static void test_every_type(void **state)
{
    static const struct {
        const char *hex;
        struct want want;
    } CASES[] = {
        {"0000FF", {0, LPP_DIGITAL_INPUT, "digital_input", 1, {255}, NULL, 1}},
        {"010100", {1, LPP_DIGITAL_OUTPUT, "digital_output", 1, {0}, NULL, 1}},
        {"02028000", {2, LPP_ANALOG_INPUT, "analog_input", 1, {-327.68}, NULL, 0.01}},
        {"03037FFF", {3, LPP_ANALOG_OUTPUT, "analog_output", 1, {327.67}, NULL, 0.01}},
        {"0464FFFFFFFF", {4, LPP_GENERIC, "generic", 1, {4294967295.0}, NULL, 1}},
        {"0565FFFF", {5, LPP_ILLUMINANCE, "illuminance", 1, {65535}, "LUX", 1}},
        {"066600", {6, LPP_PRESENCE, "presence", 1, {0}, NULL, 1}},
        {"07678000", {7, LPP_TEMPERATURE, "temperature", 1, {-3276.8}, "CEL", 0.1}},
        {"0868C8", {8, LPP_HUMIDITY, "humidity", 1, {100}, "P1", 0.5}},
        {"0868FF", {8, LPP_HUMIDITY, "humidity", 1, {127.5}, "P1", 0.5}},
        {"097180007FFFFFFF", {9, LPP_ACCELEROMETER, "accelerometer", 3, {-32.768, 32.767, -0.001}, "K40", 0.001}},
        {"0A73FFFF", {10, LPP_BAROMETER, "barometer", 1, {6553.5}, "A97", 0.1}},
        {"0B740E42", {11, LPP_VOLTAGE, "voltage", 1, {36.5}, "VLT", 0.01}},
        {"0C75FFFF", {12, LPP_CURRENT, "current", 1, {65.535}, "AMP", 0.001}},
        {"0D7633B4FFE0", {13, LPP_FREQUENCY, "frequency", 1, {867500000}, "HTZ", 1}},
        {"0E7864", {14, LPP_PERCENTAGE, "percentage", 1, {100}, "P1", 1}},
        {"0F79FF9C", {15, LPP_ALTITUDE, "altitude", 1, {-100}, "MTR", 1}},
        {"107D01A4", {16, LPP_CONCENTRATION, "concentration", 1, {420}, "59", 1}},
        {"1180FFFF", {17, LPP_POWER, "power", 1, {65535}, "WTT", 1}},
        {"1282FFFFFFFF", {18, LPP_DISTANCE, "distance", 1, {4294967.295}, "MTR", 0.001}},
        {"13830001E240", {19, LPP_ENERGY, "energy", 1, {123.456}, "KWH", 0.001}},
        {"14840167", {20, LPP_DIRECTION, "direction", 1, {359}, "DD", 1}},
        {"1585FFFFFFFF", {21, LPP_UNIXTIME, "unixtime", 1, {4294967295.0}, NULL, 1}},
        {"158569F2E400", {21, LPP_UNIXTIME, "unixtime", 1, {1777525760.0}, NULL, 1}},
        {"1686FF9C00640000", {22, LPP_GYROMETER, "gyrometer", 3, {-1.0, 1.0, 0.0}, "E96", 0.01}},
        {"1787FF8000", {23, LPP_COLOUR, "colour", 3, {255, 128, 0}, NULL, 1}},
        {"1888800000" "7FFFFF" "FFFFFF", {24, LPP_GPS, "gps", 3, {-838.8608, 838.8607, -0.01}, NULL, 0.0001}},
        {"198E01", {25, LPP_SWITCH, "switch", 1, {1}, NULL, 1}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        decode_one(CASES[i].hex, &CASES[i].want);
        assert_string_equal(lpp_type_name(CASES[i].want.type), CASES[i].want.name);
        if (CASES[i].want.unit != NULL)
            assert_string_equal(lpp_type_unit(CASES[i].want.type), CASES[i].want.unit);
        else
            assert_null(lpp_type_unit(CASES[i].want.type));
    }
}

static int decode_hex(const char *hex, struct lpp_value *out, size_t cap, size_t *n_out,
                      enum lpp_error *why)
{
    uint8_t buf[300];
    size_t len = hex_to_bytes(hex, strlen(hex), buf, sizeof(buf));

    return lpp_decode(buf, len, out, cap, n_out, why);
}

static void test_errors(void **state)
{
    struct lpp_value out[LPP_MAX_VALUES];
    size_t n_out = 7;
    enum lpp_error why = LPP_OK;

    (void)state;
    /* A good reading then an unknown type: the whole frame goes. */
    assert_int_equal(decode_hex("0167011003F00000", out, LPP_MAX_VALUES, &n_out, &why),
                     ERR_BAD_DATA);
    assert_int_equal(why, LPP_UNKNOWN_TYPE);
    assert_int_equal(n_out, 0);
    /* Polyline (240) and the gaps in the table are unknown. */
    assert_int_equal(decode_hex("01F0", out, LPP_MAX_VALUES, &n_out, &why), ERR_BAD_DATA);
    assert_int_equal(why, LPP_UNKNOWN_TYPE);
    assert_int_equal(decode_hex("01720000", out, LPP_MAX_VALUES, &n_out, &why), ERR_BAD_DATA);
    assert_int_equal(why, LPP_UNKNOWN_TYPE);
    assert_null(lpp_type_name(0x72));
    assert_null(lpp_type_name(-1));
    /* A lone channel byte after a reading. */
    assert_int_equal(decode_hex("01670110" "05", out, LPP_MAX_VALUES, &n_out, &why),
                     ERR_BAD_DATA);
    assert_int_equal(why, LPP_TRUNCATED);
    assert_int_equal(decode_hex("05", out, LPP_MAX_VALUES, &n_out, &why), ERR_BAD_DATA);
    assert_int_equal(why, LPP_TRUNCATED);
    /* Truncated accelerometer (5 of 6 bytes). */
    assert_int_equal(decode_hex("067100010002000306710001000200", out, LPP_MAX_VALUES, &n_out,
                                &why), ERR_BAD_DATA);
    assert_int_equal(why, LPP_TRUNCATED);
    /* More values than room. */
    assert_int_equal(decode_hex("01670110056700FF", out, 1, &n_out, &why), ERR_TOO_LARGE);
    assert_int_equal(why, LPP_TOO_MANY);
    assert_int_equal(n_out, 0);
    assert_int_equal(decode_hex("01670110", out, 0, &n_out, &why), ERR_TOO_LARGE);
    /* Empty: success without values; why may be NULL. */
    n_out = 5;
    assert_int_equal(lpp_decode(NULL, 0, out, LPP_MAX_VALUES, &n_out, &why), 0);
    assert_int_equal(why, LPP_EMPTY);
    assert_int_equal(n_out, 0);
    assert_int_equal(lpp_decode(NULL, 0, out, LPP_MAX_VALUES, &n_out, NULL), 0);
    /* Names. */
    assert_string_equal(lpp_error_name(LPP_OK), "ok");
    assert_string_equal(lpp_error_name(LPP_EMPTY), "empty");
    assert_string_equal(lpp_error_name(LPP_TRUNCATED), "truncated");
    assert_string_equal(lpp_error_name(LPP_UNKNOWN_TYPE), "unknown_type");
    assert_string_equal(lpp_error_name(LPP_TOO_MANY), "too_many_values");
    assert_string_equal(lpp_error_name((enum lpp_error)42), "?");
}

/* The densest 255-byte frame (85 digital inputs) fits LPP_MAX_VALUES. */
static void test_max_values(void **state)
{
    struct lpp_value out[LPP_MAX_VALUES];
    uint8_t buf[255];
    size_t n_out;
    enum lpp_error why;

    (void)state;
    for (size_t i = 0; i < sizeof(buf); i += 3) {
        buf[i] = (uint8_t)i;
        buf[i + 1] = LPP_DIGITAL_INPUT;
        buf[i + 2] = (uint8_t)(i / 3);
    }
    assert_int_equal(lpp_decode(buf, sizeof(buf), out, LPP_MAX_VALUES, &n_out, &why), 0);
    assert_int_equal(n_out, 85);
    assert_int_equal(out[84].channel, 252);
    assert_true(out[84].v[0] == 84.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_file), cmocka_unit_test(test_bad_file),
        cmocka_unit_test(test_every_type),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_max_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
