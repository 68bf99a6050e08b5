/*
 * fuzz_profile.c - libFuzzer target for device profiles, devices, the
 * device CSV and uplink mapping (src/ingest/profile.c, map.c).
 *
 * The first byte chooses what the rest is (the seeds use '0', '1', '2'):
 *   % 3 == 0  a profile JSON, parsed with an expander;
 *       on success the stored form must reload without a context into the
 *       same stored form, and the profile maps a few uplinks (an up with
 *       the bytes after the JSON as payload, the input JSON as decoded object, a
 *       status, a join and a log, for a device with a name and location and
 *       one with its own entity id) whose results must keep the contract:
 *       0 means no reason and well-formed fragments, an error means a
 *       reason and no fragments.
 *   % 3 == 1  device CSV: every device returned must parse again and
 *       print back to itself.
 *   % 3 == 2  a device JSON: a parsed device must print back to a JSON
 *       that parses into the same device.
 * Everything is freed: ASan reports leaks.
 *
 * Build: cmake -DPL_FUZZ=ON (clang); links plcore.
 * Corpus: tests/fuzz/corpus/profile/ (profiles, devices, CSVs)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/profile.h"
#include "ingest/uplink.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *expand(void *ud, const char *term)
{
    size_t len = strlen(term);
    char *s = malloc(len + 16);

    (void)ud;
    if (s == NULL)
        return NULL;
    if (strncmp(term, "http", 4) == 0 || strncmp(term, "urn:", 4) == 0)
        memcpy(s, term, len + 1);
    else
        snprintf(s, len + 16, "https://ex.org/%s", term);
    return s;
}

static void check_fragment(const cJSON *doc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs"), *a;

    if (doc == NULL)
        return;
    if (!cJSON_IsString(id) || !cJSON_IsArray(type) || cJSON_GetArraySize(type) != 1 ||
        !cJSON_IsObject(attrs))
        abort();
    cJSON_ArrayForEach(a, attrs)
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 1)
            abort();
}

static void check_map(const struct prof *p, const struct prof_device *d, const struct uplink *u)
{
    struct prof_out out;
    struct err e = {0};
    int rc = prof_map(p, d, u, 1781254800000LL, &out, &e);

    if (rc == 0) {
        if (out.reason != NULL || out.n_mapped < 0 || out.n_unmapped < 0 || out.n_rejected < 0)
            abort();
        if ((out.n_rejected > 0) != (out.field_reason != NULL))
            abort();
        check_fragment(out.entity);
        check_fragment(out.device);
    } else if (out.reason == NULL || out.entity != NULL || out.device != NULL || e.code != rc) {
        abort();
    }
    prof_out_clear(&out);
}

/* text is a profile JSON; the bytes after it are the uplink payload. */
static void fuzz_profile(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(text, len, &end, 0), *stored = NULL, *again = NULL;
    const uint8_t *raw = (const uint8_t *)end;
    size_t raw_len = end != NULL ? len - (size_t)(end - text) : 0;
    struct prof *p = NULL, *q = NULL;
    struct prof_device *d = NULL;
    struct uplink u;
    struct err e = {0};

    if (json == NULL)
        return;
    if (prof_parse(json, expand, NULL, &p, &e) != 0) {
        if (p != NULL || e.code == 0)
            abort();
        cJSON_Delete(json);
        return;
    }
    if (prof_to_json(p, &stored) != 0)
        abort();
    if (prof_parse(stored, NULL, NULL, &q, &e) != 0 || prof_to_json(q, &again) != 0 ||
        !cJSON_Compare(stored, again, 1))
        abort();

    {
        cJSON *def = cJSON_Parse(raw_len % 3 == 0
                                     ? "{\"devEui\": \"0011223344556677\", \"profile\": \"p\","
                                       " \"entityId\": \"urn:x:1\"}"
                                     : "{\"devEui\": \"0011223344556677\", \"profile\": \"p\","
                                       " \"name\": \"n 1\", \"location\": {\"type\": \"Point\","
                                       " \"coordinates\": [4.9, 52.4]}}");

        if (def == NULL || prof_device_parse(def, &d, &e) != 0)
            abort();
        cJSON_Delete(def);
    }
    memset(&u, 0, sizeof(u));
    strcpy(u.dev_eui, d->dev_eui);
    u.event = UPLINK_EV_UP;
    u.format = UPLINK_CHIRPSTACK_V4;
    u.time_ms = raw_len % 2 ? 1781252100000LL : 0;
    u.f_port = 1;
    u.payload_len = raw_len < UPLINK_MAX_PAYLOAD ? raw_len : UPLINK_MAX_PAYLOAD;
    if (u.payload_len > 0)
        memcpy(u.payload, raw, u.payload_len);
    u.decoded = cJSON_IsObject(json) ? json : NULL;
    u.has_rssi = 1;
    u.rssi = -100;
    check_map(p, d, &u);
    check_map(q, d, &u);
    u.payload_len = 0;
    check_map(p, d, &u);
    u.event = UPLINK_EV_STATUS;
    u.has_battery = 1;
    u.battery = 50;
    check_map(p, d, &u);
    u.event = UPLINK_EV_JOIN;
    check_map(p, d, &u);
    u.event = UPLINK_EV_LOG;
    check_map(p, d, &u);

    prof_device_free(d);
    cJSON_Delete(again);
    cJSON_Delete(stored);
    prof_free(q);
    prof_free(p);
    cJSON_Delete(json);
}

static void check_device_round_trip(const cJSON *obj)
{
    struct prof_device *d = NULL, *d2 = NULL;
    cJSON *printed = NULL, *again = NULL;
    struct err e = {0};

    if (prof_device_parse(obj, &d, &e) != 0) {
        if (d != NULL || e.code == 0)
            abort();
        return;
    }
    if (prof_device_to_json(d, &printed) != 0 || prof_device_parse(printed, &d2, &e) != 0 ||
        prof_device_to_json(d2, &again) != 0 || !cJSON_Compare(printed, again, 1))
        abort();
    cJSON_Delete(again);
    cJSON_Delete(printed);
    prof_device_free(d2);
    prof_device_free(d);
}

static void fuzz_csv(const char *text, size_t len)
{
    cJSON *arr = NULL;
    const cJSON *it;
    struct err e = {0};

    if (prof_devices_csv(text, len, &arr, &e) != 0) {
        if (arr != NULL || e.code == 0 || strncmp(e.detail, "line ", 5) != 0)
            abort();
        return;
    }
    cJSON_ArrayForEach(it, arr) {
        struct prof_device *d = NULL;
        cJSON *printed = NULL;

        if (prof_device_parse(it, &d, &e) != 0 || prof_device_to_json(d, &printed) != 0 ||
            !cJSON_Compare(it, printed, 1))
            abort();
        cJSON_Delete(printed);
        prof_device_free(d);
    }
    cJSON_Delete(arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text;

    if (size == 0 || size > 64 * 1024)
        return 0;
    text = (const char *)data + 1;
    switch (data[0] % 3) {
    case 0:
        fuzz_profile(text, size - 1);
        break;
    case 1:
        fuzz_csv(text, size - 1);
        break;
    default: {
        cJSON *obj = cJSON_ParseWithLength(text, size - 1);

        if (obj != NULL)
            check_device_round_trip(obj);
        cJSON_Delete(obj);
        break;
    }
    }
    return 0;
}
