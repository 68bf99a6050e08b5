/*
 * uplink.h - network-server messages (ChirpStack v4, ChirpStack v3, The
 * Things Stack v3) normalized into one struct uplink.
 *
 * This layer is pure: it reads an already parsed cJSON message and a topic
 * string and knows nothing of MQTT, HTTP, devices or the store. The caller
 * bounds the raw message with uplink_check_size before cJSON sees it, then
 * calls uplink_parse with the format and event it knows (from the topic via
 * uplink_topic, or from the webhook URL) and routes by tenant itself: no
 * field of the message ever chooses a tenant.
 *
 * Wire fields read (everything else is ignored):
 *
 *   field         ChirpStack v4               ChirpStack v3           TTS v3
 *   dev_eui       deviceInfo.devEui (hex)     devEUI (base64 of 8     end_device_ids.dev_eui
 *                                             bytes, or 16 hex)       (hex, any case)
 *   device_name   deviceInfo.deviceName       deviceName              end_device_ids.device_id
 *   application   deviceInfo.applicationId    applicationID           end_device_ids.
 *                                             (string or number)      application_ids.application_id
 *   time_ms       time, else best rxInfo      best rxInfo[].time      uplink_message.received_at,
 *                 nsTime                      (gateway time)          else received_at
 *   f_cnt/f_port  fCnt / fPort                fCnt / fPort            uplink_message.f_cnt / f_port
 *   payload       data                        data                    uplink_message.frm_payload
 *   decoded       object                      objectJSON (string)     uplink_message.decoded_payload
 *   rssi/snr      rxInfo[].rssi / snr         rxInfo[].rssi/loRaSNR   rx_metadata[].rssi (or
 *                                                                     channel_rssi) / snr
 *   dedup_id      deduplicationId             -                       -
 *   battery       status: batteryLevel,       status: same names      -
 *                 batteryLevelUnavailable,
 *                 externalPowerSource
 *   log           log: level, code,           error: type, error      -
 *                 description                 (level "ERROR")
 *
 * Senders encode protobuf as JSON, which omits zero and empty values: a
 * missing fCnt/fPort is 0, a missing data is an empty payload, a missing
 * snr is 0, a missing batteryLevel is 0 %. A missing rssi means the entry
 * gives none (a real rssi is never 0 dBm). JSON null counts as missing.
 * A field of the wrong JSON type, or out of range, rejects the message.
 *
 * No global state; any thread. Only v3 objectJSON allocates (struct
 * uplink.owned), freed by uplink_free.
 */
#ifndef PL_UPLINK_H
#define PL_UPLINK_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/err.h"

/* Largest raw message accepted (bytes, before JSON parsing). Real uplinks
 * are 1-4 KiB; 64 KiB leaves room for many gateways and codec output. */
#define UPLINK_MAX_MESSAGE (64 * 1024)
/* Largest application payload (LoRaWAN FRMPayload at the fastest rate). */
#define UPLINK_MAX_PAYLOAD 242

enum uplink_format { UPLINK_CHIRPSTACK_V4 = 1, UPLINK_CHIRPSTACK_V3, UPLINK_TTS_V3 };
enum uplink_event { UPLINK_EV_UP = 1, UPLINK_EV_STATUS, UPLINK_EV_JOIN, UPLINK_EV_LOG };

struct uplink {
    enum uplink_event event;
    enum uplink_format format;
    char dev_eui[17];          /* 16 lowercase hex digits */
    char device_name[128];     /* may be "" */
    char application[128];     /* application id, may be "" */
    int64_t time_ms;           /* network-server reception time, ms since epoch;
                                  0 when the message carries none (use local time) */
    uint32_t f_cnt;
    int f_port;                /* 0..255 */
    uint8_t payload[UPLINK_MAX_PAYLOAD];
    size_t payload_len;
    const cJSON *decoded;      /* borrowed from msg (v4 object, TTS decoded_payload)
                                  or == owned (v3 objectJSON); a JSON object or NULL */
    int has_rssi;
    double rssi, snr;          /* dBm, dB: from the receiving gateway with the best rssi */
    char dedup_id[64];         /* ChirpStack v4 deduplicationId, "" if none */
    double battery;            /* status: percent 0..100, valid if has_battery */
    int has_battery;           /* 0 if unavailable or on external power */
    int external_power;        /* status: externalPowerSource */
    char log_level[16];        /* log: "INFO", "WARNING", "ERROR" (as sent) */
    char log_code[64];         /* log: e.g. "UPLINK_CODEC", may be "" */
    char log_text[256];        /* log: description, truncated to fit */
    cJSON *owned;              /* allocated by uplink_parse, freed by uplink_free */
    const char *reason;        /* static reason code on failure ("bad_base64"...),
                                  NULL on success */
};

/* 0 if a raw message of len bytes may be parsed, ERR_TOO_LARGE (reason
 * "too_large") if it exceeds UPLINK_MAX_MESSAGE. Call before cJSON. */
int uplink_check_size(size_t len);

/* Normalize msg, a message of format f carrying event ev, into *out
 * (overwritten entirely). out->decoded may point into msg: msg must outlive
 * *out. Always call uplink_free(out) afterwards, success or not.
 * Returns 0, or ERR_BAD_DATA with the reason in e->detail and the stable
 * code in out->reason:
 *   wrong_type       a field (or msg itself) has the wrong JSON type
 *   no_dev_eui       no device EUI in the message
 *   bad_dev_eui      device EUI not 8 bytes of hex (v3: of base64)
 *   bad_base64       payload is not strict padded base64
 *   too_large        payload over 242 bytes, or an id over its buffer
 *   bad_time         a time string that is not ISO 8601
 *   out_of_range     fCnt, fPort, batteryLevel or rssi/snr out of range
 *   no_uplink        TTS up event without uplink_message
 *   bad_object_json  v3 objectJSON is not a JSON object text
 *   unsupported_event  no such event in this format (TTS status/log)
 * The EUI is read first: on failure out->dev_eui still holds it if it was
 * valid, so rejections can be counted per device. */
int uplink_parse(enum uplink_format f, enum uplink_event ev, const cJSON *msg,
                 struct uplink *out, struct err *e);

/* Release what uplink_parse allocated and reset owned/decoded. u may be
 * NULL; safe to call twice. */
void uplink_free(struct uplink *u);

/* Map an MQTT topic to format, event and device key:
 *   application/{appId}/device/{devEui}/event/{up|status|join|log}
 *       ChirpStack v4, or v3 when appId is all digits (v3 ids are numeric;
 *       v3 "error" events map to UPLINK_EV_LOG)
 *   application/{appId}/device/{devEui}/{rx|status|join|error}
 *       ChirpStack v3 before the event/ topics (LoRa App Server)
 *   v3/{app}[@{tenant}]/devices/{deviceId}/{up|join}     The Things Stack v3
 * dev_eui_or_id gets the lowercased DevEUI (ChirpStack, validated as 16 hex
 * digits) or the TTS device id. Returns 0 or ERR_BAD_DATA (other events,
 * empty or wildcard segments, bad EUI; outputs then unspecified). */
int uplink_topic(const char *topic, enum uplink_format *f, enum uplink_event *ev,
                 char dev_eui_or_id[128]);

/* Format names for config and webhooks: "chirpstack-v4", "chirpstack-v3",
 * "tts-v3". uplink_format_parse returns 0 or ERR_BAD_DATA. */
const char *uplink_format_name(enum uplink_format f);
int uplink_format_parse(const char *name, enum uplink_format *f);

/* Event names: "up", "status", "join", "log". uplink_event_parse returns 0
 * or ERR_BAD_DATA (for the webhook's ?event= parameter). */
const char *uplink_event_name(enum uplink_event ev);
int uplink_event_parse(const char *name, enum uplink_event *ev);

#endif
