/*
 * lpp.c - Cayenne LPP decoder (see lpp.h).
 *
 * The table below is the format: one row per type, giving the number of
 * values, the bytes per value, signedness, and the divisor that turns the
 * raw big-endian integer into the unit in the last column. Sources: the
 * Cayenne LPP reference (myDevices) for ids 0-3, 101-104, 113, 115, 134,
 * 136, and the extended types of the widely used ElectronicCats CayenneLPP
 * library for the rest; signed are analog in/out, temperature,
 * accelerometer, altitude, gyrometer and gps, everything else unsigned.
 *
 *  id  name            values x bytes  divisor        unit (UN/CEFACT)
 *   0  digital_input       1 x 1       1              -
 *   1  digital_output      1 x 1       1              -
 *   2  analog_input        1 x 2 s     100            -
 *   3  analog_output       1 x 2 s     100            -
 * 100  generic             1 x 4       1              -
 * 101  illuminance         1 x 2       1              LUX  lux
 * 102  presence            1 x 1       1              -
 * 103  temperature         1 x 2 s     10             CEL  degree Celsius
 * 104  humidity            1 x 1       2              P1   percent
 * 113  accelerometer       3 x 2 s     1000           K40  standard gravity (g)
 * 115  barometer           1 x 2       10             A97  hectopascal
 * 116  voltage             1 x 2       100            VLT  volt
 * 117  current             1 x 2       1000           AMP  ampere
 * 118  frequency           1 x 4       1              HTZ  hertz
 * 120  percentage          1 x 1       1              P1   percent
 * 121  altitude            1 x 2 s     1              MTR  metre
 * 125  concentration       1 x 2       1              59   part per million
 * 128  power               1 x 2       1              WTT  watt
 * 130  distance            1 x 4       1000           MTR  metre
 * 131  energy              1 x 4       1000           KWH  kilowatt hour
 * 132  direction           1 x 2       1              DD   degree (angle)
 * 133  unixtime            1 x 4       1              -    (seconds since epoch)
 * 134  gyrometer           3 x 2 s     100            E96  degree per second
 * 135  colour              3 x 1       1              -    (r, g, b 0-255)
 * 136  gps                 3 x 3 s     1e4, 1e4, 100  -    (lat deg, lon deg, alt m)
 * 142  switch              1 x 1       1              -
 *
 * Not decoded (frame rejected as unknown_type): polyline (240, variable
 * length) and vendor-specific ids.
 */
#include "ingest/lpp.h"

#include <string.h>

#include "util/err.h"

struct lpp_type_info {
    uint8_t type;
    uint8_t n_values;
    uint8_t value_size; /* bytes per value, 1..4 */
    uint8_t is_signed;
    double divisor[3];
    const char *name;
    const char *unit;
};

static const struct lpp_type_info TYPES[] = {
    {LPP_DIGITAL_INPUT, 1, 1, 0, {1}, "digital_input", NULL},
    {LPP_DIGITAL_OUTPUT, 1, 1, 0, {1}, "digital_output", NULL},
    {LPP_ANALOG_INPUT, 1, 2, 1, {100}, "analog_input", NULL},
    {LPP_ANALOG_OUTPUT, 1, 2, 1, {100}, "analog_output", NULL},
    {LPP_GENERIC, 1, 4, 0, {1}, "generic", NULL},
    {LPP_ILLUMINANCE, 1, 2, 0, {1}, "illuminance", "LUX"},
    {LPP_PRESENCE, 1, 1, 0, {1}, "presence", NULL},
    {LPP_TEMPERATURE, 1, 2, 1, {10}, "temperature", "CEL"},
    {LPP_HUMIDITY, 1, 1, 0, {2}, "humidity", "P1"},
    {LPP_ACCELEROMETER, 3, 2, 1, {1000, 1000, 1000}, "accelerometer", "K40"},
    {LPP_BAROMETER, 1, 2, 0, {10}, "barometer", "A97"},
    {LPP_VOLTAGE, 1, 2, 0, {100}, "voltage", "VLT"},
    {LPP_CURRENT, 1, 2, 0, {1000}, "current", "AMP"},
    {LPP_FREQUENCY, 1, 4, 0, {1}, "frequency", "HTZ"},
    {LPP_PERCENTAGE, 1, 1, 0, {1}, "percentage", "P1"},
    {LPP_ALTITUDE, 1, 2, 1, {1}, "altitude", "MTR"},
    {LPP_CONCENTRATION, 1, 2, 0, {1}, "concentration", "59"},
    {LPP_POWER, 1, 2, 0, {1}, "power", "WTT"},
    {LPP_DISTANCE, 1, 4, 0, {1000}, "distance", "MTR"},
    {LPP_ENERGY, 1, 4, 0, {1000}, "energy", "KWH"},
    {LPP_DIRECTION, 1, 2, 0, {1}, "direction", "DD"},
    {LPP_UNIXTIME, 1, 4, 0, {1}, "unixtime", NULL},
    {LPP_GYROMETER, 3, 2, 1, {100, 100, 100}, "gyrometer", "E96"},
    {LPP_COLOUR, 3, 1, 0, {1, 1, 1}, "colour", NULL},
    {LPP_GPS, 3, 3, 1, {10000, 10000, 100}, "gps", NULL},
    {LPP_SWITCH, 1, 1, 0, {1}, "switch", NULL},
};

static const struct lpp_type_info *type_find(int type)
{
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (TYPES[i].type == type)
            return &TYPES[i];
    return NULL;
}

/* Big-endian integer of size bytes (1..4), sign-extended if is_signed. */
static int64_t read_int(const uint8_t *p, int size, int is_signed)
{
    uint32_t raw = 0;

    for (int i = 0; i < size; i++)
        raw = raw << 8 | p[i];
    if (is_signed && (raw & (UINT32_C(1) << (size * 8 - 1))) != 0)
        return (int64_t)raw - ((int64_t)1 << (size * 8));
    return (int64_t)raw;
}

int lpp_decode(const uint8_t *buf, size_t len, struct lpp_value *out, size_t cap,
               size_t *n_out, enum lpp_error *why)
{
    enum lpp_error reason = LPP_OK;
    size_t pos = 0, n = 0;
    int rc = 0;

    *n_out = 0;
    if (len == 0) {
        reason = LPP_EMPTY;
        goto out;
    }
    while (pos < len) {
        const struct lpp_type_info *t;
        size_t size;

        if (len - pos < 2) {
            reason = LPP_TRUNCATED;
            goto fail;
        }
        t = type_find(buf[pos + 1]);
        if (t == NULL) {
            reason = LPP_UNKNOWN_TYPE;
            goto fail;
        }
        size = (size_t)t->n_values * t->value_size;
        if (len - pos - 2 < size) {
            reason = LPP_TRUNCATED;
            goto fail;
        }
        if (n >= cap) {
            reason = LPP_TOO_MANY;
            goto fail;
        }
        memset(&out[n], 0, sizeof(out[n]));
        out[n].channel = buf[pos];
        out[n].type = t->type;
        out[n].name = t->name;
        out[n].unit = t->unit;
        out[n].n = t->n_values;
        for (int k = 0; k < t->n_values; k++) {
            int64_t raw = read_int(buf + pos + 2 + (size_t)k * t->value_size,
                                   t->value_size, t->is_signed);
            out[n].v[k] = (double)raw / t->divisor[k];
        }
        n++;
        pos += 2 + size;
    }
    *n_out = n;
    goto out;
fail:
    rc = reason == LPP_TOO_MANY ? ERR_TOO_LARGE : ERR_BAD_DATA;
out:
    if (why != NULL)
        *why = reason;
    return rc;
}

const char *lpp_error_name(enum lpp_error why)
{
    switch (why) {
    case LPP_OK:
        return "ok";
    case LPP_EMPTY:
        return "empty";
    case LPP_TRUNCATED:
        return "truncated";
    case LPP_UNKNOWN_TYPE:
        return "unknown_type";
    case LPP_TOO_MANY:
        return "too_many_values";
    }
    return "?";
}

const char *lpp_type_name(int type)
{
    const struct lpp_type_info *t = type_find(type);

    return t != NULL ? t->name : NULL;
}

const char *lpp_type_unit(int type)
{
    const struct lpp_type_info *t = type_find(type);

    return t != NULL ? t->unit : NULL;
}
