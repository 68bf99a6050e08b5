/*
 * admin.c - pilotlight's own admin API for connecting sensors, under
 * /pilotlight/v1 (not NGSI-LD): device profiles, devices (one, a JSON list
 * or a CSV file), the quarantine of unknown devices, the tenant's webhook
 * secret, autoprovisioning per application and the ingest counters; plus
 * the ChirpStack and The Things Stack webhooks.
 *
 * Every admin handler first calls api_auth_admin; webhooks call
 * api_auth_ingest (auth.c). The tenant is NGSILD-Tenant, as in NGSI-LD.
 * Errors are ProblemDetails like everywhere else. Profiles and devices are
 * validated by ingest/profile.c and kept by ingest/ingest.c; the handlers
 * only translate HTTP.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/ingest.h"
#include "ingest/mqttin.h"
#include "ingest/profile.h"
#include "store/store.h"
#include "util/cfg.h"

#define ADMIN "/pilotlight/v1"
#define MAX_BULK 10000

static struct ingest *ing(struct req *r)
{
    return api_app(r)->ingest;
}

/* Auth + ingest present; 0 or a failure already in r->err. */
static int admin_begin(struct req *r)
{
    if (api_auth_admin(r) != 0)
        return -1;
    if (ing(r) == NULL)
        return err_set(&r->err, ERR_UNAVAILABLE, "ingest is not running");
    return 0;
}

static int reply(struct req *r, int status, cJSON *body)
{
    if (body == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    return req_reply_json(r, status, body);
}

static int media_is(struct req *r, const char *type)
{
    const char *ct = req_header(r, "Content-Type");
    size_t n = strlen(type);
    return ct && strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int parse_long(struct req *r, const char *name, long dflt, long max, long *out)
{
    const char *v = req_query(r, name);
    char *end;
    *out = dflt;
    if (v == NULL)
        return 0;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end || x < 0 || x > max)
        return err_set(&r->err, ERR_BAD_DATA, "%s must be an integer from 0 to %ld", name, max);
    *out = x;
    return 0;
}

static void location(struct req *r, const char *coll, const char *id)
{
    char loc[512];
    size_t n = (size_t)snprintf(loc, sizeof(loc), ADMIN "/%s/", coll);
    api_path_escape(id, loc + n, sizeof(loc) - n);
    req_add_header(r, "Location", loc);
}

/* --- device profiles ------------------------------------------------------- */

/* Parse a profile body with the request's @context (Link header or body). */
static int profile_from_body(struct req *r, const char *path_id, struct prof **out)
{
    cJSON *body = NULL;
    int rc = -1;
    *out = NULL;
    if (api_body_json(r, &body) != 0 || api_resolve_ctx(r, body) != 0)
        goto out;
    if (!cJSON_IsObject(body)) {
        err_set(&r->err, ERR_BAD_DATA, "a device profile is a JSON object");
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "@context");
    if (path_id != NULL) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
        if (id == NULL) {
            cJSON_AddStringToObject(body, "id", path_id);
        } else if (!cJSON_IsString(id) || strcmp(id->valuestring, path_id) != 0) {
            err_set(&r->err, ERR_BAD_DATA, "the body's id differs from the path's '%.64s'",
                    path_id);
            goto out;
        }
    }
    if (cJSON_HasObjectItem(body, "iris")) {
        err_set(&r->err, ERR_BAD_DATA, "'iris' is computed by the hub; leave it out");
        goto out;
    }
    rc = prof_parse(body, api_expand_cb, r, out, &r->err);
out:
    cJSON_Delete(body);
    return rc;
}

int api_admin_profile_create(struct req *r)
{
    struct prof *p = NULL;
    char id[128];
    if (admin_begin(r) != 0 || profile_from_body(r, NULL, &p) != 0)
        return req_reply_error(r);
    snprintf(id, sizeof(id), "%s", prof_id(p));
    if (ingest_profile_put(ing(r), r->tenant, p, 1, &r->err) != 0)
        return req_reply_error(r);
    location(r, "device-profiles", id);
    return req_reply_json(r, 201, NULL);
}

int api_admin_profile_put(struct req *r)
{
    struct prof *p = NULL;
    cJSON *old = NULL;
    struct err e = {0};
    int existed;
    if (admin_begin(r) != 0 || profile_from_body(r, r->route_params[0], &p) != 0)
        return req_reply_error(r);
    existed = ingest_profile_get(ing(r), r->tenant, r->route_params[0], &old, &e) == 0;
    cJSON_Delete(old);
    if (ingest_profile_put(ing(r), r->tenant, p, 0, &r->err) != 0)
        return req_reply_error(r);
    if (!existed)
        location(r, "device-profiles", r->route_params[0]);
    return req_reply_json(r, existed ? 204 : 201, NULL);
}

int api_admin_profiles_list(struct req *r)
{
    cJSON *out = NULL;
    if (admin_begin(r) != 0 || ingest_profile_list(ing(r), r->tenant, &out, &r->err) != 0)
        return req_reply_error(r);
    return reply(r, 200, out);
}

int api_admin_profile_get(struct req *r)
{
    cJSON *out = NULL;
    if (admin_begin(r) != 0 ||
        ingest_profile_get(ing(r), r->tenant, r->route_params[0], &out, &r->err) != 0)
        return req_reply_error(r);
    return reply(r, 200, out);
}

int api_admin_profile_delete(struct req *r)
{
    if (admin_begin(r) != 0 ||
        ingest_profile_delete(ing(r), r->tenant, r->route_params[0], &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 204, NULL);
}

/* --- devices ----------------------------------------------------------------- */

/* One device from JSON into the registry; 0 or the error in e. */
static int device_store(struct req *r, const cJSON *in, int create_only, char eui[17],
                        struct err *e)
{
    struct prof_device *d = NULL;
    eui[0] = '\0';
    if (prof_device_parse(in, &d, e) != 0)
        return -1;
    snprintf(eui, 17, "%s", d->dev_eui);
    return ingest_device_put(ing(r), r->tenant, d, create_only, e);
}

/* A list of devices (JSON array or CSV): each stored (created or replaced),
 * answered like an NGSI-LD batch: 201 when all were stored, 207 with
 * {success: [devEui], errors: [{devEui, index, error: ProblemDetails}]}. */
static int devices_bulk(struct req *r, cJSON *arr)
{
    cJSON *res = cJSON_CreateObject(), *ok, *errs, *it;
    int i = 0, n_err = 0;
    if (res == NULL || (ok = cJSON_AddArrayToObject(res, "success")) == NULL ||
        (errs = cJSON_AddArrayToObject(res, "errors")) == NULL) {
        cJSON_Delete(res);
        return req_fail(r, ERR_NOMEM, "out of memory");
    }
    if (cJSON_GetArraySize(arr) > MAX_BULK) {
        cJSON_Delete(res);
        return req_fail(r, ERR_TOO_LARGE, "at most %d devices per request", MAX_BULK);
    }
    cJSON_ArrayForEach(it, arr)
    {
        struct err e = {0};
        char eui[17];
        if (device_store(r, it, 0, eui, &e) == 0) {
            cJSON_AddItemToArray(ok, cJSON_CreateString(eui));
        } else {
            cJSON *x = cJSON_CreateObject();
            const cJSON *given = cJSON_GetObjectItemCaseSensitive(it, "devEui");
            n_err++;
            if (x == NULL)
                continue;
            cJSON_AddStringToObject(x, "devEui",
                                    eui[0]                  ? eui
                                    : cJSON_IsString(given) ? given->valuestring
                                                            : "");
            cJSON_AddNumberToObject(x, "index", i);
            cJSON_AddItemToObject(x, "error",
                                  problem_json(e.code ? e.code : ERR_INTERNAL, e.detail));
            cJSON_AddItemToArray(errs, x);
        }
        i++;
    }
    return req_reply_json(r, n_err ? 207 : 201, res);
}

int api_admin_device_create(struct req *r)
{
    cJSON *body = NULL;
    struct err e = {0};
    char eui[17];
    int rc;
    if (admin_begin(r) != 0)
        return req_reply_error(r);
    if (media_is(r, "text/csv")) {
        if (r->body == NULL || r->body_len == 0)
            return req_fail(r, ERR_INVALID_REQUEST, "request body is empty");
        if (prof_devices_csv(r->body, r->body_len, &body, &r->err) != 0)
            return req_reply_error(r);
        rc = devices_bulk(r, body);
        cJSON_Delete(body);
        return rc;
    }
    if (!media_is(r, "application/json") && !media_is(r, "application/ld+json"))
        return req_fail(r, ERR_MEDIA_TYPE, "Content-Type must be application/json or text/csv");
    if (api_body_json(r, &body) != 0)
        return req_reply_error(r);
    if (cJSON_IsArray(body)) {
        rc = devices_bulk(r, body);
        cJSON_Delete(body);
        return rc;
    }
    rc = device_store(r, body, 1, eui, &e);
    cJSON_Delete(body);
    if (rc != 0) {
        r->err = e;
        return req_reply_error(r);
    }
    location(r, "devices", eui);
    return req_reply_json(r, 201, NULL);
}

int api_admin_device_put(struct req *r)
{
    cJSON *body = NULL, *old = NULL;
    struct err e = {0}, ignore = {0};
    char eui[17];
    int rc, existed;
    if (admin_begin(r) != 0 || api_body_json(r, &body) != 0)
        return req_reply_error(r);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "a device is a JSON object");
    }
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(body, "devEui");
    if (given == NULL) {
        cJSON_AddStringToObject(body, "devEui", r->route_params[0]);
    } else if (!cJSON_IsString(given) || strcasecmp(given->valuestring, r->route_params[0]) != 0) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the body's devEui differs from the path's");
    }
    existed = ingest_device_get(ing(r), r->tenant, r->route_params[0], &old, &ignore) == 0;
    cJSON_Delete(old);
    rc = device_store(r, body, 0, eui, &e);
    cJSON_Delete(body);
    if (rc != 0) {
        r->err = e;
        return req_reply_error(r);
    }
    if (!existed)
        location(r, "devices", eui);
    return req_reply_json(r, existed ? 204 : 201, NULL);
}

int api_admin_devices_list(struct req *r)
{
    struct app *app = api_app(r);
    long limit, offset, total = 0;
    cJSON *out = NULL;
    const char *count = req_query(r, "count");
    if (admin_begin(r) != 0 ||
        parse_long(r, "limit", app->cfg->page_limit_default, app->cfg->page_limit_max, &limit) !=
            0 ||
        parse_long(r, "offset", 0, 1L << 40, &offset) != 0 ||
        ingest_device_list(ing(r), r->tenant, req_query(r, "profile"), req_query(r, "owner"),
                           offset, limit, &out, &total, &r->err) != 0)
        return req_reply_error(r);
    if (count && strcmp(count, "true") == 0) {
        char n[32];
        snprintf(n, sizeof(n), "%ld", total);
        req_add_header(r, "NGSILD-Results-Count", n);
    }
    if (limit > 0 && offset + cJSON_GetArraySize(out) < total) {
        char link[256];
        snprintf(link, sizeof(link), "<%s?offset=%ld&limit=%ld>; rel=\"next\"", r->path,
                 offset + cJSON_GetArraySize(out), limit);
        req_add_header(r, "Link", link);
    }
    return reply(r, 200, out);
}

int api_admin_device_get(struct req *r)
{
    cJSON *out = NULL;
    if (admin_begin(r) != 0 ||
        ingest_device_get(ing(r), r->tenant, r->route_params[0], &out, &r->err) != 0)
        return req_reply_error(r);
    return reply(r, 200, out);
}

int api_admin_device_delete(struct req *r)
{
    if (admin_begin(r) != 0 ||
        ingest_device_delete(ing(r), r->tenant, r->route_params[0], &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 204, NULL);
}

/* --- quarantine ----------------------------------------------------------------- */

int api_admin_quarantine_list(struct req *r)
{
    if (admin_begin(r) != 0)
        return req_reply_error(r);
    return reply(r, 200, ingest_quarantine_list(ing(r), r->tenant));
}

int api_admin_quarantine_delete(struct req *r)
{
    if (admin_begin(r) != 0 ||
        ingest_quarantine_delete(ing(r), r->tenant, r->route_params[0], &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 204, NULL);
}

/* POST /quarantine/{devEui}/provision {profile, ...device}: create the
 * device and replay its last quarantined uplink, so it is not lost. */
int api_admin_quarantine_provision(struct req *r)
{
    cJSON *body = NULL, *res, *prof = NULL;
    struct prof_device *d = NULL;
    struct err e = {0};
    char eui[17], *msg = NULL;
    size_t len = 0;
    enum uplink_format f;
    enum uplink_event ev;
    int replayed = 0, rc;

    if (admin_begin(r) != 0 || api_body_json(r, &body) != 0)
        return req_reply_error(r);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the body is a device (JSON object) without devEui");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "devEui");
    cJSON_AddStringToObject(body, "devEui", r->route_params[0]);
    /* everything that can be wrong with the request is checked before the
     * quarantine entry (and its last uplink) is taken */
    rc = prof_device_parse(body, &d, &r->err);
    cJSON_Delete(body);
    if (rc != 0)
        return req_reply_error(r);
    snprintf(eui, sizeof(eui), "%s", d->dev_eui);
    if (ingest_profile_get(ing(r), r->tenant, d->profile, &prof, &e) != 0) {
        prof_device_free(d);
        return req_fail(r, e.code == ERR_NOT_FOUND ? ERR_BAD_DATA : e.code, "%s", e.detail);
    }
    cJSON_Delete(prof);
    if (ingest_quarantine_take(ing(r), r->tenant, eui, &msg, &len, &f, &ev, &r->err) != 0) {
        prof_device_free(d);
        return req_reply_error(r);
    }
    if (ingest_device_put(ing(r), r->tenant, d, 1, &r->err) != 0) {
        free(msg); /* the device exists already, or the store failed */
        return req_reply_error(r);
    }
    if (msg != NULL) {
        struct ingest_msg m = {.tenant = r->tenant,
                               .source = "replay",
                               .format = f,
                               .event = ev,
                               .data = msg,
                               .len = len,
                               .replay = 1};
        enum ingest_result ir;
        struct err ie = {0};
        replayed =
            ingest_submit(ing(r), &m, NULL, NULL, &ir, NULL, &ie) == 0 && ir == INGEST_STORED;
        free(msg);
    }
    location(r, "devices", eui);
    if ((res = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(res, "devEui", eui);
        cJSON_AddBoolToObject(res, "replayed", replayed);
    }
    return reply(r, 201, res);
}

/* --- settings ----------------------------------------------------------------------- */

/* POST: generate a new secret (returned once); PUT {"secret": "..."}: set. */
int api_admin_secret_set(struct req *r)
{
    cJSON *body = NULL, *res;
    const cJSON *s = NULL;
    char out[65];
    int rc;
    if (admin_begin(r) != 0)
        return req_reply_error(r);
    if (r->method == HTTP_PUT) {
        if (api_body_json(r, &body) != 0)
            return req_reply_error(r);
        s = cJSON_GetObjectItemCaseSensitive(body, "secret");
        if (!cJSON_IsString(s)) {
            cJSON_Delete(body);
            return req_fail(r, ERR_BAD_DATA,
                            "the body is {\"secret\": \"<16 to 256 characters>\"}");
        }
    }
    rc = ingest_secret_set(ing(r), r->tenant, s ? s->valuestring : NULL, out, &r->err);
    cJSON_Delete(body);
    if (rc != 0)
        return req_reply_error(r);
    if (r->method == HTTP_PUT)
        return req_reply_json(r, 204, NULL);
    if ((res = cJSON_CreateObject()) != NULL)
        cJSON_AddStringToObject(res, "secret", out);
    return reply(r, 201, res);
}

int api_admin_autoprov_list(struct req *r)
{
    if (admin_begin(r) != 0)
        return req_reply_error(r);
    return reply(r, 200, ingest_autoprovision_get(ing(r), r->tenant));
}

int api_admin_autoprov_put(struct req *r)
{
    cJSON *body = NULL;
    const cJSON *p;
    int rc;
    if (admin_begin(r) != 0 || api_body_json(r, &body) != 0)
        return req_reply_error(r);
    p = cJSON_GetObjectItemCaseSensitive(body, "profile");
    if (!cJSON_IsString(p)) {
        cJSON_Delete(body);
        return req_fail(r, ERR_BAD_DATA, "the body is {\"profile\": \"<device profile id>\"}");
    }
    rc = ingest_autoprovision_set(ing(r), r->tenant, r->route_params[0], p->valuestring, &r->err);
    cJSON_Delete(body);
    return rc != 0 ? req_reply_error(r) : req_reply_json(r, 204, NULL);
}

int api_admin_autoprov_delete(struct req *r)
{
    if (admin_begin(r) != 0 ||
        ingest_autoprovision_set(ing(r), r->tenant, r->route_params[0], NULL, &r->err) != 0)
        return req_reply_error(r);
    return req_reply_json(r, 204, NULL);
}

int api_admin_ingest_stats(struct req *r)
{
    struct app *app = api_app(r);
    cJSON *out;
    if (admin_begin(r) != 0)
        return req_reply_error(r);
    out = ingest_stats(ing(r), r->tenant);
    if (out != NULL && app->mqin != NULL) {
        /* this tenant's broker connections */
        cJSON *all = mqin_status(app->mqin), *mine = cJSON_AddArrayToObject(out, "connections");
        cJSON *c = all ? all->child : NULL, *next;
        for (; c && mine; c = next) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "tenant");
            next = c->next;
            if (cJSON_IsString(t) && strcmp(t->valuestring, r->tenant) == 0)
                cJSON_AddItemToArray(mine, cJSON_DetachItemViaPointer(all, c));
        }
        cJSON_Delete(all);
    }
    return reply(r, 200, out);
}

/* GET /pilotlight/v1/store/stats: what the store's write-ahead log is
 * doing (not per tenant: one store serves them all). */
int api_admin_store_stats(struct req *r)
{
    struct store_stats st;
    cJSON *out;
    if (api_auth_admin(r) != 0)
        return req_reply_error(r);
    store_stats(api_app(r)->store, &st);
    if ((out = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(out, "backend", api_app(r)->cfg->store);
        cJSON_AddNumberToObject(out, "walFrames", (double)st.wal_frames);
        cJSON_AddNumberToObject(out, "walFramesMax", (double)st.wal_frames_max);
        cJSON_AddNumberToObject(out, "walRestarts", (double)st.wal_restarts);
        cJSON_AddNumberToObject(out, "checkpoints", (double)st.ckpt_passes);
        cJSON_AddNumberToObject(out, "writerCheckpoints", (double)st.ckpt_forced);
    }
    return reply(r, 200, out);
}

/* --- webhooks ----------------------------------------------------------------------- */

struct hook {
    int rc; /* ingest_submit's result */
    enum ingest_result res;
    int status; /* store status when stored */
    char entity[256];
};

static void hook_done(void *ud, int status)
{
    struct req *r = ud;
    struct hook *h = r->cont_ud;
    h->status = status;
    req_resume(r);
}

static int hook_cont(struct req *r)
{
    struct hook *h = r->cont_ud;
    static const char *const names[] = {"", "stored", "duplicate", "quarantined", "nothing"};
    cJSON *res;
    if (h->rc != 0)
        return req_reply_error(r);
    if (h->res == INGEST_STORED && h->status != 0)
        return req_fail(r, h->status, "the update could not be stored");
    if ((res = cJSON_CreateObject()) == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(res, "result", names[h->res]);
    if (h->entity[0])
        cJSON_AddStringToObject(res, "entityId", h->entity);
    return req_reply_json(r, 200, res);
}

/* The request is authenticated (api_auth_ingest) by the caller. */
static int webhook(struct req *r, enum uplink_format f, enum uplink_event ev)
{
    struct hook *h;
    struct ingest_msg m = {.tenant = r->tenant,
                           .source = "webhook",
                           .format = f,
                           .event = ev,
                           .data = r->body,
                           .len = r->body_len};
    if (!media_is(r, "application/json"))
        return req_fail(r, ERR_MEDIA_TYPE,
                        "webhooks take application/json (for ChirpStack, "
                        "set the HTTP integration's encoding to JSON)");
    if (r->body == NULL || r->body_len == 0)
        return req_fail(r, ERR_INVALID_REQUEST, "request body is empty");
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return req_fail(r, ERR_NOMEM, "out of memory");
    r->cont = hook_cont;
    r->cont_ud = h;
    r->cont_free = free;
    if (req_suspend(r) != 0) {
        r->cont = NULL;
        return req_fail(r, ERR_UNAVAILABLE, "the hub is shutting down");
    }
    h->rc = ingest_submit(ing(r), &m, hook_done, r, &h->res, h->entity, &r->err);
    if (h->rc != 0 || h->res != INGEST_STORED)
        req_resume(r); /* nothing in the writer: answer now */
    return HTTP_ASYNC;
}

int api_ingest_chirpstack(struct req *r)
{
    const char *e = req_query(r, "event");
    enum uplink_event ev = UPLINK_EV_UP;
    if (api_auth_ingest(r) != 0)
        return req_reply_error(r);
    if (e != NULL && uplink_event_parse(e, &ev) != 0) {
        /* ChirpStack also posts ack, txack, location, integration: accepted, not used */
        if (!strcmp(e, "ack") || !strcmp(e, "txack") || !strcmp(e, "location") ||
            !strcmp(e, "integration"))
            return req_reply_json(r, 204, NULL);
        return req_fail(r, ERR_BAD_DATA, "unknown event '%.32s' (up, status, join, log)", e);
    }
    return webhook(r, UPLINK_CHIRPSTACK_V4, ev);
}

int api_ingest_tts(struct req *r)
{
    /* The Things Stack posts each message type to a path of its own under
     * the webhook's base URL: .../tts/up, .../tts/join (or ?event=) */
    const char *e = r->n_route_params > 0 ? r->route_params[0] : req_query(r, "event");
    enum uplink_event ev = UPLINK_EV_UP;
    if (api_auth_ingest(r) != 0)
        return req_reply_error(r);
    if (e != NULL &&
        (uplink_event_parse(e, &ev) != 0 || (ev != UPLINK_EV_UP && ev != UPLINK_EV_JOIN)))
        return req_fail(r, ERR_BAD_DATA, "unknown event '%.32s' (up, join)", e);
    return webhook(r, UPLINK_TTS_V3, ev);
}
