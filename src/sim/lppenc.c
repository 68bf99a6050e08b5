/*
 * lppenc.c - Cayenne LPP encoder (see lppenc.h).
 *
 * The table is the format as the encoder writes it: values per reading,
 * bytes per value, signedness and the multiplier that turns the unit value
 * into the raw integer (value * mult, rounded half away from zero). It
 * follows the Cayenne LPP reference (myDevices) and the extended ids of the
 * ElectronicCats CayenneLPP library, the same set ingest/lpp.c decodes.
 *
 *  id  name            values x bytes  mult           unit
 *   0  digital_input       1 x 1       1              -
 *   1  digital_output      1 x 1       1              -
 *   2  analog_input        1 x 2 s     100            -
 *   3  analog_output       1 x 2 s     100            -
 * 100  generic             1 x 4       1              -
 * 101  illuminance         1 x 2       1              lux
 * 102  presence            1 x 1       1              -
 * 103  temperature         1 x 2 s     10             degree Celsius
 * 104  humidity            1 x 1       2              percent
 * 113  accelerometer       3 x 2 s     1000           g
 * 115  barometer           1 x 2       10             hPa
 * 116  voltage             1 x 2       100            V
 * 117  current             1 x 2       1000           A
 * 118  frequency           1 x 4       1              Hz
 * 120  percentage          1 x 1       1              percent
 * 121  altitude            1 x 2 s     1              m
 * 125  concentration       1 x 2       1              ppm
 * 128  power               1 x 2       1              W
 * 130  distance            1 x 4       1000           m
 * 131  energy              1 x 4       1000           kWh
 * 132  direction           1 x 2       1              degree
 * 133  unixtime            1 x 4       1              s since 1970
 * 134  gyrometer           3 x 2 s     100            degree/s
 * 135  colour              3 x 1       1              r, g, b
 * 136  gps                 3 x 3 s     1e4, 1e4, 100  lat deg, lon deg, alt m
 * 142  switch              1 x 1       1              0/1
 */
#include "sim/lppenc.h"

#include <math.h>
#include <string.h>

#include "ingest/lpp.h"
#include "util/err.h"

struct enc_type {
    uint8_t type;
    uint8_t n_values;
    uint8_t size; /* bytes per value, 1..4 */
    uint8_t is_signed;
    double mult[3];
};

static const struct enc_type TYPES[] = {
    {LPP_DIGITAL_INPUT, 1, 1, 0, {1}},
    {LPP_DIGITAL_OUTPUT, 1, 1, 0, {1}},
    {LPP_ANALOG_INPUT, 1, 2, 1, {100}},
    {LPP_ANALOG_OUTPUT, 1, 2, 1, {100}},
    {LPP_GENERIC, 1, 4, 0, {1}},
    {LPP_ILLUMINANCE, 1, 2, 0, {1}},
    {LPP_PRESENCE, 1, 1, 0, {1}},
    {LPP_TEMPERATURE, 1, 2, 1, {10}},
    {LPP_HUMIDITY, 1, 1, 0, {2}},
    {LPP_ACCELEROMETER, 3, 2, 1, {1000, 1000, 1000}},
    {LPP_BAROMETER, 1, 2, 0, {10}},
    {LPP_VOLTAGE, 1, 2, 0, {100}},
    {LPP_CURRENT, 1, 2, 0, {1000}},
    {LPP_FREQUENCY, 1, 4, 0, {1}},
    {LPP_PERCENTAGE, 1, 1, 0, {1}},
    {LPP_ALTITUDE, 1, 2, 1, {1}},
    {LPP_CONCENTRATION, 1, 2, 0, {1}},
    {LPP_POWER, 1, 2, 0, {1}},
    {LPP_DISTANCE, 1, 4, 0, {1000}},
    {LPP_ENERGY, 1, 4, 0, {1000}},
    {LPP_DIRECTION, 1, 2, 0, {1}},
    {LPP_UNIXTIME, 1, 4, 0, {1}},
    {LPP_GYROMETER, 3, 2, 1, {100, 100, 100}},
    {LPP_COLOUR, 3, 1, 0, {1, 1, 1}},
    {LPP_GPS, 3, 3, 1, {10000, 10000, 100}},
    {LPP_SWITCH, 1, 1, 0, {1}},
};

static const struct enc_type *type_find(int type)
{
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (TYPES[i].type == type)
            return &TYPES[i];
    return NULL;
}

void lppenc_init(struct lppenc *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
}

double lppenc_step(int type, int k)
{
    const struct enc_type *t = type_find(type);

    if (t == NULL || k < 0 || k >= t->n_values)
        return 0;
    return 1.0 / t->mult[k];
}

int lppenc_put(struct lppenc *w, uint8_t channel, int type, const double *v, int n)
{
    const struct enc_type *t = type_find(type);
    int64_t raw[3];
    size_t need;

    if (t == NULL)
        return ERR_BAD_DATA;
    if (n != t->n_values)
        return ERR_BAD_DATA;
    /* range check every value before writing anything */
    for (int k = 0; k < n; k++) {
        int bits = t->size * 8;
        double lo = t->is_signed ? -ldexp(1, bits - 1) : 0;
        double hi = t->is_signed ? ldexp(1, bits - 1) - 1 : ldexp(1, bits) - 1;
        double x;

        if (!isfinite(v[k]))
            return ERR_BAD_DATA;
        x = round(v[k] * t->mult[k]);
        if (x < lo || x > hi)
            return ERR_BAD_DATA;
        raw[k] = (int64_t)x;
    }
    need = 2 + (size_t)n * t->size;
    if (w->cap - w->len < need)
        return ERR_TOO_LARGE;
    w->buf[w->len++] = channel;
    w->buf[w->len++] = t->type;
    for (int k = 0; k < n; k++) {
        /* two's complement in size bytes, big-endian */
        uint32_t u =
            (uint32_t)(raw[k] & ((t->size == 4) ? 0xFFFFFFFFll : ((1ll << (t->size * 8)) - 1)));
        for (int b = t->size - 1; b >= 0; b--)
            w->buf[w->len++] = (uint8_t)(u >> (b * 8));
    }
    return 0;
}

int lppenc_put1(struct lppenc *w, uint8_t channel, int type, double v)
{
    return lppenc_put(w, channel, type, &v, 1);
}
