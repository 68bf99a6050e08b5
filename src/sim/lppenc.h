/*
 * lppenc.h - Cayenne Low Power Payload (LPP) encoder, the inverse of
 * ingest/lpp.h's decoder, used by the simulator to build device payloads.
 *
 * A frame is built in a caller-owned buffer: each lppenc_put appends one
 * reading [channel][type][value...] (big-endian, the type fixes the size)
 * after scaling by the type's resolution and rounding to the nearest step.
 * A value the type cannot carry (out of its range, NaN) is an error, never
 * silently clamped, so a bad reading cannot turn into a plausible one.
 * The type table in lppenc.c is the wire format reference for the encoder.
 *
 * No allocation, no global mutable state: any thread.
 */
#ifndef PL_SIM_LPPENC_H
#define PL_SIM_LPPENC_H

#include <stddef.h>
#include <stdint.h>

struct lppenc {
    uint8_t *buf; /* borrowed */
    size_t cap;
    size_t len; /* bytes written so far */
};

/* Start an empty frame in buf[0..cap). */
void lppenc_init(struct lppenc *w, uint8_t *buf, size_t cap);

/* Append a reading of type (enum lpp_type id) on channel with n values
 * (1, or 3 for accelerometer, gyrometer, colour and gps: lat, lon, alt).
 * Returns 0; ERR_BAD_DATA for an unknown type, a wrong n, or a value out of
 * the type's range (the frame is then unchanged); ERR_TOO_LARGE when the
 * reading does not fit in the buffer (frame unchanged). */
int lppenc_put(struct lppenc *w, uint8_t channel, int type, const double *v, int n);

/* Convenience for single-value types. Same contract as lppenc_put. */
int lppenc_put1(struct lppenc *w, uint8_t channel, int type, double v);

/* Resolution of a type's value k (the smallest step: 0.1 for temperature),
 * or 0 for an unknown type or k out of range. */
double lppenc_step(int type, int k);

#endif
