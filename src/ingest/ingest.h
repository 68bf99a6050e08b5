/*
 * ingest.h - the ingest runtime: from a network server's message to a
 * committed entity update.
 *
 * One pipeline for every source (MQTT connections, the ChirpStack and TTS
 * webhooks): size check -> JSON -> uplink_parse -> duplicate check ->
 * per-device flood control -> device registry -> prof_map -> the store
 * writer (UPSERT_UPDATE of the entity and its Device companion), so an
 * uplink goes through the same writer, history and subscriptions as an API
 * write. The tenant is the caller's (config for MQTT, the authenticated
 * webhook request), never the message's.
 *
 * Registry: per tenant, the device profiles and devices, loaded from the
 * store's config documents at open ("device-profiles", "devices", and
 * "ingest"/"settings" for the hashed ingest secret and autoprovisioning)
 * and kept in memory; admin changes write the document first, then swap the
 * in-memory entry. A read-write lock guards it: the pipeline holds it for
 * reading while it maps one message (microseconds).
 *
 * Unknown DevEUIs go to a bounded per-tenant quarantine (in memory: it is
 * rebuilt by the devices that keep sending after a restart), unless their
 * application is set to autoprovision with a profile.
 *
 * Every rejection is counted per reason and per device, kept in a short
 * list of last errors, and logged at most once a second per reason (with
 * the count of lines suppressed). Nothing in a message can crash or stall
 * the hub: messages are bounded before parsing, and a flood from one device
 * is cut by a token bucket.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef PL_INGEST_H
#define PL_INGEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "ingest/uplink.h"
#include "util/err.h"

struct store;
struct ingest;
struct prof;
struct prof_device;

struct ingest_config {
    int quarantine_max;   /* unknown devices listed per tenant (default 1000) */
    double device_rate;   /* sustained messages/s allowed per device; 0 = no limit */
    double device_burst;  /* bucket size (messages) */
    int max_inflight;     /* messages handed to the writer and not yet committed
                             before MQTT threads wait (backpressure) */
};

void ingest_config_defaults(struct ingest_config *c);

/* Load the registry from the store and start. Returns 0 and *out. */
int ingest_open(struct store *s, const struct ingest_config *c, struct ingest **out,
                struct err *e);

/* Wait for every message handed to the writer, then free. Call after the
 * sources stopped (MQTT connections, HTTP) and before store_close. NULL ok. */
void ingest_close(struct ingest *g);

/* --- the pipeline ------------------------------------------------------ */

/* One raw message. With topic, format and event come from it (MQTT);
 * without, from format/event (webhooks; ChirpStack v3 is told from v4 by
 * its flat devEUI member). */
struct ingest_msg {
    const char *tenant;
    const char *source;      /* "mqtt", "webhook": for stats and logs */
    const char *topic;       /* NULL for webhooks */
    enum uplink_format format;
    enum uplink_event event;
    const char *data;
    size_t len;
    int replay;              /* a quarantined message provisioned later: its
                                deduplicationId was already recorded */
};

enum ingest_result {
    INGEST_STORED = 1,       /* handed to the writer: done() follows */
    INGEST_DUPLICATE,        /* already seen (deduplicationId) */
    INGEST_QUARANTINED,      /* unknown device, listed in quarantine */
    INGEST_NOTHING,          /* understood, nothing to write (empty payload...) */
};

/* Completion of a stored message, on the writer thread; status 0 = durable. */
typedef void (*ingest_done_fn)(void *ud, int status);

/* Run the pipeline on m. Returns 0 and *res; with INGEST_STORED, done(ud,
 * status) is called exactly once later (done may be NULL). On rejection
 * returns a negative ERR_* (ERR_BAD_DATA, ERR_TOO_LARGE, ERR_RATE_LIMITED...)
 * with "reason: detail" in e, already counted and logged; done is not called.
 * *entity_id (cap 256, may be NULL) gets the main entity's id when known. */
int ingest_submit(struct ingest *g, const struct ingest_msg *m, ingest_done_fn done, void *ud,
                  enum ingest_result *res, char *entity_id, struct err *e);

/* ingest_submit for MQTT: blocks while too many messages are in flight
 * (backpressure), and only counts/logs. mqin_msg_fn-compatible with
 * ud = the struct ingest. */
void ingest_mqtt_message(void *ud, const char *tenant, const char *topic, const void *payload,
                         size_t len);

/* --- registry (admin API) ------------------------------------------------ */

/* Store p (takes ownership, also on failure). create_only: ERR_EXISTS if the
 * id is taken. */
int ingest_profile_put(struct ingest *g, const char *tenant, struct prof *p, int create_only,
                       struct err *e);
/* The stored JSON of a profile / all profiles of a tenant (array, by id).
 * Caller frees. ERR_NOT_FOUND. */
int ingest_profile_get(struct ingest *g, const char *tenant, const char *id, cJSON **out,
                       struct err *e);
int ingest_profile_list(struct ingest *g, const char *tenant, cJSON **out, struct err *e);
/* ERR_NOT_FOUND; ERR_EXISTS (409) while devices use it. */
int ingest_profile_delete(struct ingest *g, const char *tenant, const char *id, struct err *e);

/* Store d (takes ownership, also on failure); its profile must exist
 * (ERR_BAD_DATA). A device leaves the quarantine when provisioned. */
int ingest_device_put(struct ingest *g, const char *tenant, struct prof_device *d,
                      int create_only, struct err *e);
int ingest_device_get(struct ingest *g, const char *tenant, const char *dev_eui, cJSON **out,
                      struct err *e);
/* Devices of a tenant by DevEUI, filtered by profile / owner (NULL = any),
 * paged; *total gets the count of matches. */
int ingest_device_list(struct ingest *g, const char *tenant, const char *profile,
                       const char *owner, long offset, long limit, cJSON **out, long *total,
                       struct err *e);
int ingest_device_delete(struct ingest *g, const char *tenant, const char *dev_eui,
                         struct err *e);

/* Quarantine: array of {devEui, deviceName, application, format, firstSeen,
 * lastSeen, count, lastMessage}. */
cJSON *ingest_quarantine_list(struct ingest *g, const char *tenant);
int ingest_quarantine_delete(struct ingest *g, const char *tenant, const char *dev_eui,
                             struct err *e);
/* Take an entry out of quarantine and hand back its last message (caller
 * frees *msg) to replay after provisioning. ERR_NOT_FOUND. */
int ingest_quarantine_take(struct ingest *g, const char *tenant, const char *dev_eui,
                           char **msg, size_t *len, enum uplink_format *f,
                           enum uplink_event *ev, struct err *e);

/* The tenant's webhook secret: set (secret given, >= 16 chars) or generate
 * (secret NULL; the new one is written to out, shown once). Stored hashed. */
int ingest_secret_set(struct ingest *g, const char *tenant, const char *secret, char out[65],
                      struct err *e);
/* 0 if secret is the tenant's; ERR_UNAUTHORIZED otherwise (also when the
 * tenant has none). */
int ingest_secret_check(struct ingest *g, const char *tenant, const char *secret,
                        struct err *e);

/* Autoprovisioning of an application's unknown devices with a profile
 * (NULL = off). The profile must exist. */
int ingest_autoprovision_set(struct ingest *g, const char *tenant, const char *application,
                             const char *profile, struct err *e);
/* {application: profile} of a tenant. Caller frees. */
cJSON *ingest_autoprovision_get(struct ingest *g, const char *tenant);

/* Counters, per-device rejections and the last errors of a tenant
 * (caller frees). */
cJSON *ingest_stats(struct ingest *g, const char *tenant);

#endif
