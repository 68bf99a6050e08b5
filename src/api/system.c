/*
 * system.c - GET /version and GET /health (pilotlight's own, outside the
 * NGSI-LD base path).
 */
#include "api/api.h"
#include "build_info.h"

#include "util/time.h"

int api_version(struct req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "pilotlight");
    cJSON_AddStringToObject(o, "version", PL_VERSION);
    cJSON_AddStringToObject(o, "build", PL_BUILD);
    cJSON_AddStringToObject(o, "ngsiLd", "ETSI GS CIM 009 v1.8");
    return req_reply_json(r, 200, o);
}

int api_health(struct req *r)
{
    struct app *app = api_app(r);
    int ok = store_tenant_exists(app->store, "");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ok ? "ok" : "unavailable");
    cJSON_AddStringToObject(o, "store", ok ? "reachable" : "unreachable");
    cJSON_AddNumberToObject(o, "uptimeSeconds", (double)(tm_now_ms() - app->started_ms) / 1000.0);
    return req_reply_json(r, ok ? 200 : 503, o);
}
