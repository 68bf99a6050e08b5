/*
 * uplink.c - network-server messages into struct uplink (see uplink.h for
 * the field table).
 *
 * Each format has one parser that reads the fields of its event; shared
 * helpers fetch a typed field or reject the message with a stable reason
 * code (struct uplink.reason) and a detail naming the JSON path. The device
 * EUI is always read first so that a rejection can still be counted per
 * device. Nothing here allocates except the v3 objectJSON parse, whose tree
 * is kept in uplink.owned. No global mutable state; any thread.
 */
#include "ingest/uplink.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/base64.h"
#include "util/time.h"
#include "util/uri.h"

/* Plausible radio ranges; anything outside is a broken sender. */
#define RSSI_MIN -250.0
#define RSSI_MAX 50.0
#define SNR_MIN -100.0
#define SNR_MAX 100.0

static int reject(struct uplink *u, struct err *e, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reject(struct uplink *u, struct err *e, const char *reason, const char *fmt, ...)
{
    char detail[ERR_DETAIL_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (u->reason == NULL)
        u->reason = reason;
    return err_set(e, ERR_BAD_DATA, "%s (%s)", detail, reason);
}

/* Member key of obj, NULL if absent or JSON null (proto3 JSON omits zero
 * values, some senders write null instead). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return it == NULL || cJSON_IsNull(it) ? NULL : it;
}

/* Typed lookups: *out NULL/unchanged when absent, wrong_type otherwise. */
static int get_string(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                      const char *path, const char **out)
{
    const cJSON *it = member(obj, key);

    *out = NULL;
    if (it == NULL)
        return 0;
    if (!cJSON_IsString(it) || it->valuestring == NULL)
        return reject(u, e, "wrong_type", "%s must be a string", path);
    *out = it->valuestring;
    return 0;
}

static int get_object(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                      const char *path, const cJSON **out)
{
    const cJSON *it = member(obj, key);

    *out = NULL;
    if (it == NULL)
        return 0;
    if (!cJSON_IsObject(it))
        return reject(u, e, "wrong_type", "%s must be an object", path);
    *out = it;
    return 0;
}

static int get_array(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                     const char *path, const cJSON **out)
{
    const cJSON *it = member(obj, key);

    *out = NULL;
    if (it == NULL)
        return 0;
    if (!cJSON_IsArray(it))
        return reject(u, e, "wrong_type", "%s must be an array", path);
    *out = it;
    return 0;
}

/* A number in [lo, hi]; *present says whether it was there. */
static int get_number(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                      const char *path, double lo, double hi, double *out, int *present)
{
    const cJSON *it = member(obj, key);

    *present = 0;
    if (it == NULL)
        return 0;
    if (!cJSON_IsNumber(it))
        return reject(u, e, "wrong_type", "%s must be a number", path);
    if (!(it->valuedouble >= lo && it->valuedouble <= hi))
        return reject(u, e, "out_of_range", "%s must be within [%g, %g]", path, lo, hi);
    *out = it->valuedouble;
    *present = 1;
    return 0;
}

/* An integer in [0, max], 0 when absent. */
static int get_uint(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                    const char *path, double max, double *out)
{
    int present;
    int rc = get_number(u, e, obj, key, path, 0, max, out, &present);

    if (rc != 0)
        return rc;
    if (!present)
        *out = 0;
    else if (floor(*out) != *out)
        return reject(u, e, "out_of_range", "%s must be an integer", path);
    return 0;
}

static int get_bool(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                    const char *path, int *out)
{
    const cJSON *it = member(obj, key);

    *out = 0;
    if (it == NULL)
        return 0;
    if (!cJSON_IsBool(it))
        return reject(u, e, "wrong_type", "%s must be a boolean", path);
    *out = cJSON_IsTrue(it);
    return 0;
}

/* Copy an identifier; too_large rather than a silent truncation. */
static int copy_id(struct uplink *u, struct err *e, char *dst, size_t cap, const char *s,
                   const char *path)
{
    size_t n;

    if (s == NULL)
        return 0;
    n = strlen(s);
    if (n >= cap)
        return reject(u, e, "too_large", "%s is longer than %zu bytes", path, cap - 1);
    memcpy(dst, s, n + 1);
    return 0;
}

/* Copy free text, cut to fit on a UTF-8 character boundary. */
static void copy_text(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* 16 hex digits of any case into lowercase; -1 if not exactly that. */
static int eui_from_hex(const char *s, char out[17])
{
    size_t i;

    for (i = 0; i < 16; i++) {
        int v = uri_hexval((unsigned char)s[i]); /* stops at the NUL: -1 */
        if (v < 0)
            return -1;
        out[i] = "0123456789abcdef"[v];
    }
    if (s[16] != '\0')
        return -1;
    out[16] = '\0';
    return 0;
}

static int set_eui_hex(struct uplink *u, struct err *e, const char *s, const char *path)
{
    if (s == NULL)
        return reject(u, e, "no_dev_eui", "%s is missing", path);
    if (eui_from_hex(s, u->dev_eui) != 0) {
        u->dev_eui[0] = '\0';
        return reject(u, e, "bad_dev_eui", "%s must be 16 hex digits", path);
    }
    return 0;
}

static int set_time(struct uplink *u, struct err *e, const char *s, const char *path)
{
    if (tm_parse(s, &u->time_ms) != 0) {
        u->time_ms = 0;
        return reject(u, e, "bad_time", "%s is not an ISO 8601 date-time", path);
    }
    return 0;
}

static int set_payload(struct uplink *u, struct err *e, const cJSON *obj, const char *key,
                       const char *path)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_string(u, e, obj, key, path, &s)) != 0 || s == NULL)
        return rc;
    len = strlen(s);
    rc = b64_decode(s, len, u->payload, sizeof(u->payload), &u->payload_len);
    if (rc == ERR_TOO_LARGE) {
        u->payload_len = 0;
        return reject(u, e, "too_large", "%s decodes to more than %d bytes", path,
                      UPLINK_MAX_PAYLOAD);
    }
    if (rc != 0) {
        u->payload_len = 0;
        return reject(u, e, "bad_base64", "%s is not valid base64", path);
    }
    return 0;
}

static int set_counters(struct uplink *u, struct err *e, const cJSON *obj, const char *cnt_key,
                        const char *cnt_path, const char *port_key, const char *port_path)
{
    double v;
    int rc;

    if ((rc = get_uint(u, e, obj, cnt_key, cnt_path, 4294967295.0, &v)) != 0)
        return rc;
    u->f_cnt = (uint32_t)v;
    if ((rc = get_uint(u, e, obj, port_key, port_path, 255, &v)) != 0)
        return rc;
    u->f_port = (int)v;
    return 0;
}

/* Pick the receiving gateway with the best rssi from an array of objects;
 * *best (may be NULL) gets that entry, for its time. alt_rssi_key is read
 * when rssi_key is absent (TTS channel_rssi). */
static int set_radio(struct uplink *u, struct err *e, const cJSON *arr, const char *path,
                     const char *rssi_key, const char *alt_rssi_key, const char *snr_key,
                     const cJSON **best)
{
    const cJSON *entry;
    char where[96];
    int i = 0, rc;

    *best = NULL;
    cJSON_ArrayForEach(entry, arr)
    {
        double rssi = 0, snr = 0;
        int has_rssi, has_snr;

        snprintf(where, sizeof(where), "%s[%d]", path, i);
        if (!cJSON_IsObject(entry))
            return reject(u, e, "wrong_type", "%s must be an object", where);
        snprintf(where, sizeof(where), "%s[%d].%s", path, i, rssi_key);
        rc = get_number(u, e, entry, rssi_key, where, RSSI_MIN, RSSI_MAX, &rssi, &has_rssi);
        if (rc == 0 && !has_rssi && alt_rssi_key != NULL) {
            snprintf(where, sizeof(where), "%s[%d].%s", path, i, alt_rssi_key);
            rc = get_number(u, e, entry, alt_rssi_key, where, RSSI_MIN, RSSI_MAX, &rssi,
                            &has_rssi);
        }
        if (rc == 0) {
            snprintf(where, sizeof(where), "%s[%d].%s", path, i, snr_key);
            rc = get_number(u, e, entry, snr_key, where, SNR_MIN, SNR_MAX, &snr, &has_snr);
        }
        if (rc != 0)
            return rc;
        i++;
        if (!has_rssi)
            continue;
        if (!u->has_rssi || rssi > u->rssi) {
            u->has_rssi = 1;
            u->rssi = rssi;
            u->snr = has_snr ? snr : 0;
            *best = entry;
        }
    }
    return 0;
}

/* Time from the best gateway entry, else the first entry that has one. */
static int set_time_from_rx(struct uplink *u, struct err *e, const cJSON *arr,
                            const cJSON *best, const char *key, const char *path)
{
    const cJSON *entry;
    const char *s = NULL;
    int rc;

    if (best != NULL && (rc = get_string(u, e, best, key, path, &s)) != 0)
        return rc;
    cJSON_ArrayForEach(entry, arr)
    {
        if (s != NULL)
            break;
        if ((rc = get_string(u, e, entry, key, path, &s)) != 0)
            return rc;
    }
    return s != NULL ? set_time(u, e, s, path) : 0;
}

static int set_status(struct uplink *u, struct err *e, const cJSON *msg)
{
    int unavailable, present, rc;

    if ((rc = get_bool(u, e, msg, "batteryLevelUnavailable", "batteryLevelUnavailable",
                       &unavailable)) != 0 ||
        (rc = get_bool(u, e, msg, "externalPowerSource", "externalPowerSource",
                       &u->external_power)) != 0 ||
        (rc = get_number(u, e, msg, "batteryLevel", "batteryLevel", 0, 100, &u->battery,
                         &present)) != 0)
        return rc;
    if (!present)
        u->battery = 0; /* proto3 JSON: 0 % is omitted */
    u->has_battery = !unavailable && !u->external_power;
    if (!u->has_battery)
        u->battery = 0;
    return 0;
}

/* ChirpStack v4: https://www.chirpstack.io/docs/chirpstack/integrations/events.html */
static int parse_chirpstack_v4(struct uplink *u, struct err *e, const cJSON *msg)
{
    const cJSON *info, *rx = NULL, *best = NULL, *object;
    const char *s;
    int rc;

    if ((rc = get_object(u, e, msg, "deviceInfo", "deviceInfo", &info)) != 0)
        return rc;
    if (info == NULL)
        return reject(u, e, "no_dev_eui", "deviceInfo is missing");
    if ((rc = get_string(u, e, info, "devEui", "deviceInfo.devEui", &s)) != 0 ||
        (rc = set_eui_hex(u, e, s, "deviceInfo.devEui")) != 0)
        return rc;
    if ((rc = get_string(u, e, info, "deviceName", "deviceInfo.deviceName", &s)) != 0 ||
        (rc = copy_id(u, e, u->device_name, sizeof(u->device_name), s,
                      "deviceInfo.deviceName")) != 0 ||
        (rc = get_string(u, e, info, "applicationId", "deviceInfo.applicationId", &s)) != 0 ||
        (rc = copy_id(u, e, u->application, sizeof(u->application), s,
                      "deviceInfo.applicationId")) != 0 ||
        (rc = get_string(u, e, msg, "deduplicationId", "deduplicationId", &s)) != 0 ||
        (rc = copy_id(u, e, u->dedup_id, sizeof(u->dedup_id), s, "deduplicationId")) != 0 ||
        (rc = get_string(u, e, msg, "time", "time", &s)) != 0 ||
        (s != NULL && (rc = set_time(u, e, s, "time")) != 0))
        return rc;
    switch (u->event) {
    case UPLINK_EV_UP:
        if ((rc = set_counters(u, e, msg, "fCnt", "fCnt", "fPort", "fPort")) != 0 ||
            (rc = set_payload(u, e, msg, "data", "data")) != 0 ||
            (rc = get_object(u, e, msg, "object", "object", &object)) != 0 ||
            (rc = get_array(u, e, msg, "rxInfo", "rxInfo", &rx)) != 0 ||
            (rx != NULL && (rc = set_radio(u, e, rx, "rxInfo", "rssi", NULL, "snr", &best)) != 0))
            return rc;
        u->decoded = object;
        if (u->time_ms == 0 && rx != NULL &&
            (rc = set_time_from_rx(u, e, rx, best, "nsTime", "rxInfo[].nsTime")) != 0)
            return rc;
        return 0;
    case UPLINK_EV_STATUS:
        return set_status(u, e, msg);
    case UPLINK_EV_JOIN:
        return 0;
    case UPLINK_EV_LOG:
        if ((rc = get_string(u, e, msg, "level", "level", &s)) != 0 ||
            (rc = copy_id(u, e, u->log_level, sizeof(u->log_level), s != NULL ? s : "INFO",
                          "level")) != 0 ||
            (rc = get_string(u, e, msg, "code", "code", &s)) != 0 ||
            (rc = copy_id(u, e, u->log_code, sizeof(u->log_code), s, "code")) != 0 ||
            (rc = get_string(u, e, msg, "description", "description", &s)) != 0)
            return rc;
        if (s != NULL)
            copy_text(u->log_text, sizeof(u->log_text), s);
        return 0;
    }
    return reject(u, e, "unsupported_event", "unknown event %d", (int)u->event);
}

/* ChirpStack v3 devEUI: protobuf bytes as base64 (12 characters), or the
 * hex form of the older json_v3 marshaler. */
static int set_eui_v3(struct uplink *u, struct err *e, const char *s)
{
    uint8_t raw[8];
    size_t n;

    if (s == NULL)
        return reject(u, e, "no_dev_eui", "devEUI is missing");
    if (strlen(s) == 16)
        return set_eui_hex(u, e, s, "devEUI");
    if (b64_decode(s, strlen(s), raw, sizeof(raw), &n) != 0 || n != sizeof(raw))
        return reject(u, e, "bad_dev_eui", "devEUI must be base64 of 8 bytes or 16 hex digits");
    for (size_t i = 0; i < n; i++) {
        u->dev_eui[2 * i] = "0123456789abcdef"[raw[i] >> 4];
        u->dev_eui[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
    }
    u->dev_eui[16] = '\0';
    return 0;
}

/* v3 applicationID: uint64, a JSON string by the protobuf rules, a number
 * from some senders. */
static int set_application_v3(struct uplink *u, struct err *e, const cJSON *msg)
{
    const cJSON *it = member(msg, "applicationID");

    if (it == NULL)
        return 0;
    if (cJSON_IsString(it))
        return copy_id(u, e, u->application, sizeof(u->application), it->valuestring,
                       "applicationID");
    if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= 9007199254740992.0 &&
        floor(it->valuedouble) == it->valuedouble) {
        snprintf(u->application, sizeof(u->application), "%.0f", it->valuedouble);
        return 0;
    }
    return reject(u, e, "wrong_type", "applicationID must be a string or an integer");
}

static int set_object_json(struct uplink *u, struct err *e, const cJSON *msg)
{
    const char *s;
    int rc;

    if ((rc = get_string(u, e, msg, "objectJSON", "objectJSON", &s)) != 0 || s == NULL ||
        s[0] == '\0')
        return rc;
    u->owned = cJSON_ParseWithLength(s, strlen(s));
    if (u->owned == NULL || !cJSON_IsObject(u->owned)) {
        cJSON_Delete(u->owned);
        u->owned = NULL;
        return reject(u, e, "bad_object_json", "objectJSON must hold a JSON object");
    }
    u->decoded = u->owned;
    return 0;
}

/* ChirpStack v3 (Application Server), "json" marshaler. */
static int parse_chirpstack_v3(struct uplink *u, struct err *e, const cJSON *msg)
{
    const cJSON *rx = NULL, *best = NULL;
    const char *s;
    int rc;

    if ((rc = get_string(u, e, msg, "devEUI", "devEUI", &s)) != 0 ||
        (rc = set_eui_v3(u, e, s)) != 0)
        return rc;
    if ((rc = get_string(u, e, msg, "deviceName", "deviceName", &s)) != 0 ||
        (rc = copy_id(u, e, u->device_name, sizeof(u->device_name), s, "deviceName")) != 0 ||
        (rc = set_application_v3(u, e, msg)) != 0 ||
        (rc = get_string(u, e, msg, "publishedAt", "publishedAt", &s)) != 0 ||
        (s != NULL && (rc = set_time(u, e, s, "publishedAt")) != 0) ||
        (rc = get_array(u, e, msg, "rxInfo", "rxInfo", &rx)) != 0 ||
        (rx != NULL && (rc = set_radio(u, e, rx, "rxInfo", "rssi", NULL, "loRaSNR", &best)) != 0))
        return rc;
    if (u->time_ms == 0 && rx != NULL &&
        (rc = set_time_from_rx(u, e, rx, best, "time", "rxInfo[].time")) != 0)
        return rc;
    switch (u->event) {
    case UPLINK_EV_UP:
        if ((rc = set_counters(u, e, msg, "fCnt", "fCnt", "fPort", "fPort")) != 0 ||
            (rc = set_payload(u, e, msg, "data", "data")) != 0)
            return rc;
        return set_object_json(u, e, msg);
    case UPLINK_EV_STATUS:
        return set_status(u, e, msg);
    case UPLINK_EV_JOIN:
        return 0;
    case UPLINK_EV_LOG: /* the v3 "error" event */
        memcpy(u->log_level, "ERROR", sizeof("ERROR"));
        if ((rc = get_string(u, e, msg, "type", "type", &s)) != 0 ||
            (rc = copy_id(u, e, u->log_code, sizeof(u->log_code), s, "type")) != 0 ||
            (rc = get_string(u, e, msg, "error", "error", &s)) != 0)
            return rc;
        if (s != NULL)
            copy_text(u->log_text, sizeof(u->log_text), s);
        return 0;
    }
    return reject(u, e, "unsupported_event", "unknown event %d", (int)u->event);
}

/* The Things Stack v3: https://www.thethingsindustries.com/docs/integrations/data-formats/ */
static int parse_tts_v3(struct uplink *u, struct err *e, const cJSON *msg)
{
    const cJSON *ids, *app_ids, *up, *join, *rx = NULL, *best = NULL, *decoded;
    const char *s;
    int rc;

    if (u->event != UPLINK_EV_UP && u->event != UPLINK_EV_JOIN)
        return reject(u, e, "unsupported_event", "The Things Stack has no %s event",
                      uplink_event_name(u->event));
    if ((rc = get_object(u, e, msg, "end_device_ids", "end_device_ids", &ids)) != 0)
        return rc;
    if (ids == NULL)
        return reject(u, e, "no_dev_eui", "end_device_ids is missing");
    if ((rc = get_string(u, e, ids, "dev_eui", "end_device_ids.dev_eui", &s)) != 0 ||
        (rc = set_eui_hex(u, e, s, "end_device_ids.dev_eui")) != 0)
        return rc;
    if ((rc = get_string(u, e, ids, "device_id", "end_device_ids.device_id", &s)) != 0 ||
        (rc = copy_id(u, e, u->device_name, sizeof(u->device_name), s,
                      "end_device_ids.device_id")) != 0 ||
        (rc = get_object(u, e, ids, "application_ids", "end_device_ids.application_ids",
                         &app_ids)) != 0)
        return rc;
    if (app_ids != NULL &&
        ((rc = get_string(u, e, app_ids, "application_id",
                          "end_device_ids.application_ids.application_id", &s)) != 0 ||
         (rc = copy_id(u, e, u->application, sizeof(u->application), s,
                       "end_device_ids.application_ids.application_id")) != 0))
        return rc;
    if (u->event == UPLINK_EV_JOIN) {
        if ((rc = get_object(u, e, msg, "join_accept", "join_accept", &join)) != 0 ||
            (join != NULL &&
             ((rc = get_string(u, e, join, "received_at", "join_accept.received_at", &s)) != 0 ||
              (s != NULL && (rc = set_time(u, e, s, "join_accept.received_at")) != 0))))
            return rc;
    } else {
        if ((rc = get_object(u, e, msg, "uplink_message", "uplink_message", &up)) != 0)
            return rc;
        if (up == NULL)
            return reject(u, e, "no_uplink", "uplink_message is missing");
        if ((rc = set_counters(u, e, up, "f_cnt", "uplink_message.f_cnt", "f_port",
                               "uplink_message.f_port")) != 0 ||
            (rc = set_payload(u, e, up, "frm_payload", "uplink_message.frm_payload")) != 0 ||
            (rc = get_object(u, e, up, "decoded_payload", "uplink_message.decoded_payload",
                             &decoded)) != 0 ||
            (rc = get_array(u, e, up, "rx_metadata", "uplink_message.rx_metadata", &rx)) != 0 ||
            (rx != NULL && (rc = set_radio(u, e, rx, "uplink_message.rx_metadata", "rssi",
                                           "channel_rssi", "snr", &best)) != 0) ||
            (rc = get_string(u, e, up, "received_at", "uplink_message.received_at", &s)) != 0 ||
            (s != NULL && (rc = set_time(u, e, s, "uplink_message.received_at")) != 0))
            return rc;
        u->decoded = decoded;
    }
    if (u->time_ms == 0 &&
        ((rc = get_string(u, e, msg, "received_at", "received_at", &s)) != 0 ||
         (s != NULL && (rc = set_time(u, e, s, "received_at")) != 0)))
        return rc;
    return 0;
}

int uplink_check_size(size_t len)
{
    return len > UPLINK_MAX_MESSAGE ? ERR_TOO_LARGE : 0;
}

int uplink_parse(enum uplink_format f, enum uplink_event ev, const cJSON *msg,
                 struct uplink *out, struct err *e)
{
    int rc;

    memset(out, 0, sizeof(*out));
    out->format = f;
    out->event = ev;
    if (ev < UPLINK_EV_UP || ev > UPLINK_EV_LOG)
        return reject(out, e, "unsupported_event", "unknown event %d", (int)ev);
    if (msg == NULL || !cJSON_IsObject(msg))
        return reject(out, e, "wrong_type", "the message must be a JSON object");
    switch (f) {
    case UPLINK_CHIRPSTACK_V4:
        rc = parse_chirpstack_v4(out, e, msg);
        break;
    case UPLINK_CHIRPSTACK_V3:
        rc = parse_chirpstack_v3(out, e, msg);
        break;
    case UPLINK_TTS_V3:
        rc = parse_tts_v3(out, e, msg);
        break;
    default:
        rc = reject(out, e, "unsupported_event", "unknown format %d", (int)f);
        break;
    }
    if (rc != 0) {
        cJSON_Delete(out->owned);
        out->owned = NULL;
        out->decoded = NULL;
        if (out->reason == NULL)
            out->reason = "wrong_type";
    }
    return rc;
}

void uplink_free(struct uplink *u)
{
    if (u == NULL)
        return;
    cJSON_Delete(u->owned);
    u->owned = NULL;
    u->decoded = NULL;
}

/* Split topic at '/' into at most max segments (pointers into a copy). */
static int split_topic(const char *topic, char *copy, size_t cap, char **seg, int max)
{
    size_t len = strlen(topic);
    int n = 0;
    char *p;

    if (len == 0 || len >= cap)
        return -1;
    memcpy(copy, topic, len + 1);
    p = copy;
    for (;;) {
        char *slash = strchr(p, '/');

        if (n == max)
            return -1;
        seg[n++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    for (int i = 0; i < n; i++)
        if (seg[i][0] == '\0' || strpbrk(seg[i], "+#") != NULL)
            return -1; /* empty level or a wildcard: not a published topic */
    return n;
}

static int all_digits(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int event_lookup(const char *name, const char *const names[4], enum uplink_event *ev)
{
    for (int i = 0; i < 4; i++)
        if (names[i] != NULL && strcmp(name, names[i]) == 0) {
            *ev = (enum uplink_event)(i + 1);
            return 0;
        }
    return -1;
}

int uplink_topic(const char *topic, enum uplink_format *f, enum uplink_event *ev,
                 char dev_eui_or_id[128])
{
    static const char *const CS_V4[4] = {"up", "status", "join", "log"};
    static const char *const CS_V3[4] = {"up", "status", "join", "error"};
    static const char *const CS_V3_OLD[4] = {"rx", "status", "join", "error"};
    static const char *const TTS[4] = {"up", NULL, "join", NULL};
    char copy[512];
    char *seg[8];
    int n;

    if (topic == NULL || (n = split_topic(topic, copy, sizeof(copy), seg, 8)) < 0)
        return ERR_BAD_DATA;
    if (strcmp(seg[0], "application") == 0 && (n == 6 || n == 5) &&
        strcmp(seg[2], "device") == 0) {
        int v3 = all_digits(seg[1]);

        if (n == 6) {
            if (strcmp(seg[4], "event") != 0 ||
                event_lookup(seg[5], v3 ? CS_V3 : CS_V4, ev) != 0)
                return ERR_BAD_DATA;
            *f = v3 ? UPLINK_CHIRPSTACK_V3 : UPLINK_CHIRPSTACK_V4;
        } else {
            if (event_lookup(seg[4], CS_V3_OLD, ev) != 0)
                return ERR_BAD_DATA;
            *f = UPLINK_CHIRPSTACK_V3;
        }
        return eui_from_hex(seg[3], dev_eui_or_id) == 0 ? 0 : ERR_BAD_DATA;
    }
    if (strcmp(seg[0], "v3") == 0 && n == 5 && strcmp(seg[2], "devices") == 0) {
        size_t len = strlen(seg[3]);

        if (event_lookup(seg[4], TTS, ev) != 0 || len >= 128)
            return ERR_BAD_DATA;
        *f = UPLINK_TTS_V3;
        memcpy(dev_eui_or_id, seg[3], len + 1);
        return 0;
    }
    return ERR_BAD_DATA;
}

static const char *const FORMAT_NAMES[] = {NULL, "chirpstack-v4", "chirpstack-v3", "tts-v3"};
static const char *const EVENT_NAMES[] = {NULL, "up", "status", "join", "log"};

const char *uplink_format_name(enum uplink_format f)
{
    return f >= UPLINK_CHIRPSTACK_V4 && f <= UPLINK_TTS_V3 ? FORMAT_NAMES[f] : "?";
}

int uplink_format_parse(const char *name, enum uplink_format *f)
{
    for (int i = UPLINK_CHIRPSTACK_V4; i <= UPLINK_TTS_V3; i++)
        if (name != NULL && strcmp(name, FORMAT_NAMES[i]) == 0) {
            *f = (enum uplink_format)i;
            return 0;
        }
    return ERR_BAD_DATA;
}

const char *uplink_event_name(enum uplink_event ev)
{
    return ev >= UPLINK_EV_UP && ev <= UPLINK_EV_LOG ? EVENT_NAMES[ev] : "?";
}

int uplink_event_parse(const char *name, enum uplink_event *ev)
{
    for (int i = UPLINK_EV_UP; i <= UPLINK_EV_LOG; i++)
        if (name != NULL && strcmp(name, EVENT_NAMES[i]) == 0) {
            *ev = (enum uplink_event)i;
            return 0;
        }
    return ERR_BAD_DATA;
}
