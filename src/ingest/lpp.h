/*
 * lpp.h - Cayenne Low Power Payload (LPP) decoder.
 *
 * A frame is a sequence of readings [channel][type][data...], big-endian,
 * where the type fixes the data size, so an unknown type makes the rest of
 * the frame unreadable: the frame is then rejected whole, as it is when it
 * ends inside a reading. The type table in lpp.c (ids, sizes, resolutions,
 * signedness and the unit chosen for each) is the wire format reference.
 * Values are scaled to the type's unit by dividing the raw integer by the
 * resolution's inverse (27.2 comes out as the double nearest to 27.2).
 *
 * No allocation, no global mutable state: any thread.
 */
#ifndef PL_LPP_H
#define PL_LPP_H

#include <stddef.h>
#include <stdint.h>

/* Values in the largest frame a 255-byte payload can hold (3 bytes each);
 * a cap of at least this never yields LPP_TOO_MANY for len <= 255. */
#define LPP_MAX_VALUES 85

/* Cayenne LPP type ids (IPSO object id - 3200). */
enum lpp_type {
    LPP_DIGITAL_INPUT = 0,    /* 1 byte, unsigned */
    LPP_DIGITAL_OUTPUT = 1,   /* 1 byte, unsigned */
    LPP_ANALOG_INPUT = 2,     /* 2 bytes, 0.01, signed */
    LPP_ANALOG_OUTPUT = 3,    /* 2 bytes, 0.01, signed */
    LPP_GENERIC = 100,        /* 4 bytes, unsigned */
    LPP_ILLUMINANCE = 101,    /* 2 bytes, 1 lux, unsigned */
    LPP_PRESENCE = 102,       /* 1 byte */
    LPP_TEMPERATURE = 103,    /* 2 bytes, 0.1 degC, signed */
    LPP_HUMIDITY = 104,       /* 1 byte, 0.5 %, unsigned */
    LPP_ACCELEROMETER = 113,  /* 3 x 2 bytes, 0.001 G, signed */
    LPP_BAROMETER = 115,      /* 2 bytes, 0.1 hPa, unsigned */
    LPP_VOLTAGE = 116,        /* 2 bytes, 0.01 V, unsigned */
    LPP_CURRENT = 117,        /* 2 bytes, 0.001 A, unsigned */
    LPP_FREQUENCY = 118,      /* 4 bytes, 1 Hz, unsigned */
    LPP_PERCENTAGE = 120,     /* 1 byte, 1 %, unsigned */
    LPP_ALTITUDE = 121,       /* 2 bytes, 1 m, signed */
    LPP_CONCENTRATION = 125,  /* 2 bytes, 1 ppm, unsigned */
    LPP_POWER = 128,          /* 2 bytes, 1 W, unsigned */
    LPP_DISTANCE = 130,       /* 4 bytes, 0.001 m, unsigned */
    LPP_ENERGY = 131,         /* 4 bytes, 0.001 kWh, unsigned */
    LPP_DIRECTION = 132,      /* 2 bytes, 1 deg, unsigned */
    LPP_UNIXTIME = 133,       /* 4 bytes, seconds since 1970, unsigned */
    LPP_GYROMETER = 134,      /* 3 x 2 bytes, 0.01 deg/s, signed */
    LPP_COLOUR = 135,         /* 3 x 1 byte, r g b */
    LPP_GPS = 136,            /* 3 x 3 bytes: lat, lon 0.0001 deg, alt 0.01 m, signed */
    LPP_SWITCH = 142,         /* 1 byte, 0/1 */
};

/* Outcome of a decode; lpp_error_name gives the stable reason code. */
enum lpp_error {
    LPP_OK = 0,           /* "ok": at least one value */
    LPP_EMPTY,            /* "empty": zero-length payload, no values */
    LPP_TRUNCATED,        /* "truncated": frame ends inside a reading */
    LPP_UNKNOWN_TYPE,     /* "unknown_type": type id not in the table */
    LPP_TOO_MANY,         /* "too_many_values": more values than cap */
};

struct lpp_value {
    uint8_t channel;
    uint8_t type;      /* enum lpp_type */
    const char *name;  /* static: "temperature", "humidity", "gps"... */
    int n;             /* 1, or 3 for accelerometer, gyrometer, colour, gps */
    double v[3];       /* gps: lat (deg), lon (deg), alt (m); unused slots 0 */
    const char *unit;  /* static UN/CEFACT common code ("CEL", "P1"...) or NULL */
};

/* Decode the frame buf[0..len) into out[0..cap) and set *n_out (always set,
 * 0 unless the frame decodes). *why, if not NULL, receives the outcome.
 * Returns 0 on success, which includes the empty payload (*n_out == 0 and
 * *why == LPP_EMPTY: no values, not an error, but nothing to update);
 * ERR_BAD_DATA for LPP_TRUNCATED and LPP_UNKNOWN_TYPE and ERR_TOO_LARGE for
 * LPP_TOO_MANY, with the frame rejected whole (out may hold partial values
 * that must be ignored). buf may be NULL when len is 0. The strings in out
 * are static. */
int lpp_decode(const uint8_t *buf, size_t len, struct lpp_value *out, size_t cap,
               size_t *n_out, enum lpp_error *why);

/* Stable short reason code of an outcome ("ok", "empty", "truncated",
 * "unknown_type", "too_many_values"), for counters and logs; "?" if out of
 * range. */
const char *lpp_error_name(enum lpp_error why);

/* Name of a type id as lpp_decode reports it ("temperature"), or NULL for
 * an id the decoder does not know. */
const char *lpp_type_name(int type);

/* Unit code of a type id as lpp_decode reports it, NULL if none/unknown. */
const char *lpp_type_unit(int type);

#endif
