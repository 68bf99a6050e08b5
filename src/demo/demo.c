/*
 * demo.c - generates the demo city (see demo.h): around Hoekplein, a square
 * at 52.3700 N, 4.8900 E, 16 streetlights on a ring, 8 crowd-flow
 * observers on the approach paths, 8 air-quality stations, and a Device
 * for each sensor. Values are deterministic, so tests and screenshots are
 * stable.
 */
#include "demo/demo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "model/entity.h"
#include "util/buf.h"
#include "util/time.h"

#define SQUARE_LON 4.8900
#define SQUARE_LAT 52.3700
#define PI 3.14159265358979323846

static int has_entities(void *ud, const cJSON *doc)
{
    (void)doc;
    *(int *)ud = 1;
    return 1;
}

static void point(struct buf *b, double ring_m, int i, int n)
{
    double a = 2 * PI * i / n;
    double dlat = ring_m * cos(a) / 111320.0;
    double dlon = ring_m * sin(a) / (111320.0 * cos(SQUARE_LAT * PI / 180));
    buf_printf(b, "\"location\":{\"type\":\"GeoProperty\",\"value\":{\"type\":\"Point\","
                  "\"coordinates\":[%.6f,%.6f]}}",
               SQUARE_LON + dlon, SQUARE_LAT + dlat);
}

static void device(struct buf *b, const char *name, const char *category, int i, int n,
                   double ring, const char *at)
{
    buf_printf(b, "{\"id\":\"urn:ngsi-ld:Device:%s\",\"type\":\"Device\","
                  "\"category\":{\"type\":\"Property\",\"value\":[\"sensor\"]},"
                  "\"controlledProperty\":{\"type\":\"Property\",\"value\":[\"%s\"]},"
                  "\"batteryLevel\":{\"type\":\"Property\",\"value\":%.2f,\"observedAt\":\"%s\"},"
                  "\"supportedProtocol\":{\"type\":\"Property\",\"value\":[\"lorawan\"]},",
               name, category, 0.55 + 0.05 * (i % 9), at);
    point(b, ring, i, n);
    buf_appends(b, "}");
}

/* The whole city as one JSON array of entities in normalized form. */
static char *city_json(const char *at)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appends(&b, "[");
    for (int i = 0; i < 16; i++) {
        buf_printf(&b, "%s{\"id\":\"urn:ngsi-ld:Streetlight:hoekplein-%02d\","
                       "\"type\":\"Streetlight\",", i ? "," : "", i + 1);
        point(&b, 60, i, 16);
        buf_printf(&b, ",\"status\":{\"type\":\"Property\",\"value\":\"%s\",\"observedAt\":\"%s\"},"
                       "\"powerState\":{\"type\":\"Property\",\"value\":\"%s\",\"observedAt\":\"%s\"},"
                       "\"illuminanceLevel\":{\"type\":\"Property\",\"value\":%.2f,\"observedAt\":\"%s\"},"
                       "\"laternHeight\":{\"type\":\"Property\",\"value\":6.5,\"unitCode\":\"MTR\"},"
                       "\"refDevice\":{\"type\":\"Relationship\",\"object\":\"urn:ngsi-ld:Device:lightpost-%02d\"}}",
                   i == 11 ? "brokenLantern" : "ok", at, i == 11 ? "off" : "on", at,
                   i == 11 ? 0.0 : 0.5 + 0.03 * (i % 5), at, i + 1);
        char name[32];
        snprintf(name, sizeof(name), "lightpost-%02d", i + 1);
        buf_appends(&b, ",");
        device(&b, name, "illuminance", i, 16, 60, at);
    }
    for (int i = 0; i < 8; i++) {
        int towards = 40 + 13 * i, away = 35 + 11 * ((i + 3) % 8);
        buf_printf(&b, ",{\"id\":\"urn:ngsi-ld:CrowdFlowObserved:hoekplein-%02d\","
                       "\"type\":\"CrowdFlowObserved\",", i + 1);
        point(&b, 120, i, 8);
        buf_printf(&b, ",\"peopleCount\":{\"type\":\"Property\",\"value\":%d,\"observedAt\":\"%s\"},"
                       "\"peopleCountTowards\":{\"type\":\"Property\",\"value\":%d,\"observedAt\":\"%s\"},"
                       "\"peopleCountAway\":{\"type\":\"Property\",\"value\":%d,\"observedAt\":\"%s\"},"
                       "\"averageCrowdSpeed\":{\"type\":\"Property\",\"value\":%.1f,\"unitCode\":\"KMH\",\"observedAt\":\"%s\"},"
                       "\"congested\":{\"type\":\"Property\",\"value\":%s,\"observedAt\":\"%s\"},"
                       "\"refDevice\":{\"type\":\"Relationship\",\"object\":\"urn:ngsi-ld:Device:counter-%02d\"}}",
                   towards + away, at, towards, at, away, at, 3.2 + 0.2 * i, at,
                   towards + away > 150 ? "true" : "false", at, i + 1);
        char name[32];
        snprintf(name, sizeof(name), "counter-%02d", i + 1);
        buf_appends(&b, ",");
        device(&b, name, "peopleCount", i, 8, 120, at);
    }
    for (int i = 0; i < 8; i++) {
        buf_printf(&b, ",{\"id\":\"urn:ngsi-ld:AirQualityObserved:hoekplein-%02d\","
                       "\"type\":\"AirQualityObserved\",", i + 1);
        point(&b, 200, i, 8);
        buf_printf(&b, ",\"pm25\":{\"type\":\"Property\",\"value\":%.1f,\"unitCode\":\"GQ\",\"observedAt\":\"%s\"},"
                       "\"pm10\":{\"type\":\"Property\",\"value\":%.1f,\"unitCode\":\"GQ\",\"observedAt\":\"%s\"},"
                       "\"no2\":{\"type\":\"Property\",\"value\":%.1f,\"unitCode\":\"GQ\",\"observedAt\":\"%s\"},"
                       "\"temperature\":{\"type\":\"Property\",\"value\":%.1f,\"unitCode\":\"CEL\",\"observedAt\":\"%s\"},"
                       "\"relativeHumidity\":{\"type\":\"Property\",\"value\":%.2f,\"observedAt\":\"%s\"},"
                       "\"refDevice\":{\"type\":\"Relationship\",\"object\":\"urn:ngsi-ld:Device:air-%02d\"}}",
                   8.0 + 2.5 * i, at, 14.0 + 3.1 * i, at, 18.0 + 4.2 * (i % 5), at,
                   16.0 + 0.4 * i, at, 0.60 + 0.03 * i, at, i + 1);
        char name[32];
        snprintf(name, sizeof(name), "air-%02d", i + 1);
        buf_appends(&b, ",");
        device(&b, name, "airQuality", i, 8, 200, at);
    }
    buf_appends(&b, "]");
    return buf_detach(&b);
}

int demo_load(struct store *s, struct err *e)
{
    struct store_query q = {.tenant = "", .limit = 1};
    struct store_op *ops = NULL;
    cJSON *arr = NULL, *it, **docs = NULL;
    char at[TM_ISO_LEN], *text = NULL;
    int any = 0, n = 0, rc = 0;

    if ((rc = store_query(s, &q, has_entities, &any, NULL, e)) != 0 || any)
        return rc;
    tm_format(tm_now_ms(), at);
    if ((text = city_json(at)) == NULL || (arr = cJSON_Parse(text)) == NULL) {
        rc = err_set(e, ERR_INTERNAL, "demo city does not parse");
        goto out;
    }
    int size = cJSON_GetArraySize(arr);
    ops = calloc((size_t)size, sizeof(*ops));
    docs = calloc((size_t)size, sizeof(*docs));
    if (ops == NULL || docs == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if ((rc = ent_parse(it, ld_core(), ENT_FULL, &docs[n], e)) != 0)
            goto out;
        ops[n].kind = STORE_UPSERT_REPLACE;
        ops[n].tenant = "";
        ops[n].doc = docs[n];
        n++;
    }
    if ((rc = store_write(s, ops, (size_t)n)) != 0)
        goto out;
    for (int i = 0; i < n; i++)
        if (ops[i].err.code) {
            rc = err_set(e, ops[i].err.code, "demo entity: %s", ops[i].err.detail);
            goto out;
        }
    rc = n;
out:
    for (int i = 0; i < n; i++)
        cJSON_Delete(docs[i]);
    if (ops)
        store_ops_clear(ops, (size_t)n);
    free(ops);
    free(docs);
    cJSON_Delete(arr);
    free(text);
    return rc;
}
