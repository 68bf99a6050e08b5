/*
 * sim.h - `pilotlight simulate`: realistic LoRaWAN uplinks for the demo,
 * the tests and the benchmark.
 *
 * N simulated devices of three kinds, each a pure function of (seed, index):
 *   air    air-quality node, Cayenne LPP on fPort 1 (profile sim-air-quality-lpp)
 *   light  light post with a pedestrian counter, network-decoded on fPort 2
 *          (ChirpStack v4 `object` / TTS `decoded_payload`; profile sim-light-counter)
 *   water  canal water sensor, Cayenne LPP on fPort 3 (profile sim-water-lpp)
 * placed uniformly in a disc of radius_m around (lat, lon). Device i's
 * message number seq (its fCnt) at time t_ms is a pure function of
 * (conf, i, seq, t_ms) apart from the ChirpStack deduplicationId, which is
 * a random UUID v4. The payload layouts, value models and ranges are the
 * tables at the top of sim.c.
 *
 * sim_run publishes over one MQTT connection (libmosquitto) or one
 * keep-alive HTTP connection (libcurl) to the hub's webhooks. It keeps no
 * global state; any thread, several runs at once. The process must have
 * called curl_global_init (main does) before a webhook run. sim_run calls
 * mosquitto_lib_init/cleanup itself; libmosquitto 2.0 reference-counts
 * them but not atomically, so a process that also uses libmosquitto from
 * other threads should call mosquitto_lib_init once at startup, before any
 * of them run. The process should ignore SIGPIPE (main does).
 */
#ifndef PL_SIM_H
#define PL_SIM_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/err.h"

struct sim_conf {
    int n_devices;           /* default 60 */
    double rate;             /* messages per second, all devices together (default 5);
                                0 = as fast as possible */
    long count;              /* stop after this many messages (0 = no limit) */
    double duration_s;       /* stop after (0 = no limit) */
    const char *mqtt_url;    /* mqtt://[user:pass@]host:port  (one of mqtt_url / webhook_url) */
    const char *webhook_url; /* http://127.0.0.1:1026  (base; paths appended) */
    const char *secret;      /* ingest secret for the webhook */
    const char *tenant;      /* NGSILD-Tenant for the webhook; NULL = default */
    const char *format;      /* "chirpstack-v4" | "tts-v3" | "mix" (default chirpstack-v4) */
    uint64_t seed;
    double lat, lon, radius_m;
    int qos;      /* MQTT QoS 0/1 */
    int progress; /* 1: a progress line on stderr every 5 s (the CLI); default 0 */
};

struct sim_device {
    char dev_eui[17];    /* 16 lowercase hex digits, unique per (seed, index) */
    char name[64];       /* "sim-air-0007" */
    const char *kind;    /* static: "air", "light", "water" */
    const char *profile; /* static: the profile id in sim_profiles_json */
    double lat, lon;
};

/* Fill *c with the defaults: 60 devices, 5 messages/s, no limits,
 * chirpstack-v4, seed 1, the demo city's centre (52.3700 N, 4.8900 E),
 * radius 1500 m, QoS 0, no URL. */
void sim_conf_defaults(struct sim_conf *c);

/* Device i (0-based; any i >= 0) of configuration c: deterministic in
 * (c->seed, i, c->lat, c->lon, c->radius_m). */
void sim_device_at(const struct sim_conf *c, int i, struct sim_device *out);

/* 1 if device i sends The Things Stack v3 messages under c->format, else 0
 * (ChirpStack v4). "mix" splits the devices about half and half. */
int sim_device_tts(const struct sim_conf *c, int i);

#define SIM_MAX_READINGS 8

/* One measured value of a message, as the device sends it. */
struct sim_reading {
    const char *name; /* static: "temperature", "pm25", "peopleCountTowards"... */
    int channel;      /* Cayenne LPP channel; 0 for a network-decoded field */
    int lpp_type;     /* enum lpp_type of the LPP reading, -1 for a decoded field */
    double value;     /* rounded to the wire's resolution: decoding gives it back */
};

/* The readings of device i's message seq at t_ms (what sim_message encodes
 * for an uplink), in frame order, into out; returns how many (> 0), or 0
 * for i < 0. Pure. Value models and ranges: the table at the top of sim.c. */
int sim_readings(const struct sim_conf *c, int i, long seq, int64_t t_ms,
                 struct sim_reading out[SIM_MAX_READINGS]);

/* The three device profiles (profile.md format) the simulated devices use,
 * as a JSON array; NULL when out of memory. Caller frees (cJSON_Delete). */
cJSON *sim_profiles_json(void);

/* The c->n_devices devices (profile.md device format: devEui, profile, name,
 * location Point, description, tags) as a JSON array to provision them;
 * NULL when out of memory. Caller frees (cJSON_Delete). */
cJSON *sim_devices_json(const struct sim_conf *c);

/* One message of device i, its number seq (>= 0; it is the fCnt), at time
 * t_ms (ms since the epoch): *json gets the JSON text (caller frees) and
 * topic the MQTT topic (ChirpStack v4 `application/{appId}/device/{devEui}/
 * event/{up|status}`, TTS `v3/{app}@{tenant}/devices/{id}/up`). tts: 1 for
 * a TTS v3 message, 0 for ChirpStack v4. For ChirpStack, every 50th message
 * of a device (seq % 50 == 49) is a `status` event with the battery level.
 * Pure and deterministic given (c, i, seq, t_ms, tts) except the
 * deduplicationId. Returns 0; ERR_INVALID_REQUEST for i or seq out of range;
 * ERR_TOO_LARGE if topic_cap is too small (< 128 always suffices);
 * ERR_NOMEM. *json is NULL on failure. */
int sim_message(const struct sim_conf *c, int i, long seq, int64_t t_ms, int tts, char **json,
                char *topic, size_t topic_cap, struct err *e);

struct sim_stats {
    long sent;   /* written (MQTT QoS 0), acknowledged (QoS 1) or answered 2xx */
    long failed; /* refused, non-2xx, transport error, or lost on a reconnect */
    double elapsed_s;
};

/* Publish at c->rate (message k due at start + k / rate; when more than a
 * second behind, the schedule restarts instead of bursting) until c->count
 * messages, c->duration_s, or *stop becomes non-zero (stop may be NULL).
 * Message k goes to device k % n_devices with seq k / n_devices.
 * MQTT: one libmosquitto connection (reconnects on its own with backoff),
 * at most 1,000 messages in flight; messages are only handed over while
 * connected (else they count failed). Webhook: one libcurl keep-alive
 * connection, POST {url}/pilotlight/v1/ingest/chirpstack?event=up|status or
 * {url}/pilotlight/v1/ingest/tts with `Authorization: Bearer <secret>` and
 * `NGSILD-Tenant`; a non-2xx answer counts failed.
 * Returns 0 (*st filled) once finished; an error if it could not start: bad
 * configuration (ERR_INVALID_REQUEST), broker or hub unreachable (ERR_IO),
 * ERR_NOMEM. Thread-safe to run in its own thread. */
int sim_run(const struct sim_conf *c, volatile int *stop, struct sim_stats *st, struct err *e);

/* `pilotlight simulate --mqtt URL | --webhook URL [--secret S] [--tenant T]
 * [--devices N] [--rate R] [--count N] [--duration S] [--format F]
 * [--seed N] [--qos 0|1] [--lat X --lon Y --radius M] [--print-profiles]
 * [--print-devices] [--bench-generate N]`; argv[1] is "simulate".
 * Prints a progress line every 5 s and a summary on stderr. Exit status: 0
 * when every message was sent, 1 when it could not start or a message
 * failed, 2 on a usage error. --help prints the usage. */
int sim_main(int argc, char **argv);

#endif
