/*
 * api.h - the NGSI-LD API (and pilotlight's own /version, /health): one
 * file per resource, sharing the helpers of common.c. Handlers run on the
 * HTTP worker threads; writes go to the store writer asynchronously
 * (api_submit) and finish in a continuation.
 */
#ifndef PL_API_H
#define PL_API_H

#include <stddef.h>

#include "http/http.h"
#include "model/entity.h"
#include "store/store.h"

struct ld_cache;
struct cfg;
struct notify;
struct ingest;
struct mqin;

/* Application state shared by every handler (read-only after start). */
struct app {
    struct store *store;
    struct ld_cache *contexts;
    const struct cfg *cfg;
    long long started_ms;
    struct notify *notify;      /* subscriptions runtime (notify/notify.h) */
    struct ingest *ingest;      /* LoRaWAN ingest runtime (ingest/ingest.h) */
    struct mqin *mqin;          /* its MQTT broker connections, NULL if none */
    char admin_secret[65];      /* the admin API's secret (auth.c) */
};

/* --- auth.c: who may call the pilotlight endpoints --------------------------- */
enum { API_ROLE_NONE = 0, API_ROLE_ADMIN, API_ROLE_INGEST };
/* 0 if the request carries the admin secret; else the 401 is in r->err. */
int api_auth_admin(struct req *r);
/* 0 if the request carries its tenant's ingest secret; else 401 in r->err. */
int api_auth_ingest(struct req *r);
/* Read <data_dir>/admin.secret, or create it (mode 0600) with a new random
 * secret and log it once. 0, or ERR_IO / ERR_BAD_DATA with e set. */
int api_admin_secret_load(const char *data_dir, char out[65], struct err *e);

#define API_BASE "/ngsi-ld/v1"

extern const struct http_route api_routes[];
extern const size_t api_n_routes;

/* --- common.c ----------------------------------------------------------- */

struct app *api_app(struct req *r);

/* Parse the body as JSON (ERR_INVALID_REQUEST if absent or malformed);
 * caller frees. */
int api_body_json(struct req *r, cJSON **out);

/* Resolve the request's @context into r->ctx / r->ctx_value: from the body
 * (application/ld+json: "@context" required in each object of body, which
 * may be an array) or the Link header (application/json, and GETs); the
 * core context when none. Mixing both is 400. body may be NULL. */
int api_resolve_ctx(struct req *r, const cJSON *body);

/* Expand a term with the request's context (caller frees; NULL = OOM). */
char *api_expand(struct req *r, const char *term);
/* q_expand/typeq_expand callback: ud is the struct req. */
char *api_expand_cb(void *ud, const char *term);

/* Percent-encode s as one URL path segment into out (cap bytes, truncated). */
void api_path_escape(const char *s, char *out, size_t cap);

/* Is s an absolute URI as NGSI-LD ids must be? */
int api_is_uri(const char *s);

/* Render options from the query string (options, format, attrs, pick,
 * omit, lang). */
struct api_view {
    struct ent_render_opts ro;
    char **pick, **omit;       /* expanded, owned */
    size_t n_pick, n_omit;
    char **attrs;              /* `attrs` expanded, owned (also in pick) */
    size_t n_attrs;
    int no_overwrite, upsert_update, want_count, temporal_values;
    int aggregated_values;     /* options=aggregatedValues (temporal API) */
};
int api_view_parse(struct req *r, struct api_view *v);
void api_view_free(struct api_view *v);

/* Render one document for output; NULL with r->err set on failure. */
cJSON *api_render(struct req *r, const struct api_view *v, const cJSON *doc);

/* Reply with a rendered entity (or array) and the @context as the Accept
 * header asks (body member for ld+json, Link header otherwise). */
int api_reply_entities(struct req *r, int status, cJSON *body);

/* Add the Link header naming the response context (JSON responses). */
void api_link_context(struct req *r);

/* A write job: ops plus what they borrow. */
struct job {
    struct store_op *ops;
    size_t n_ops;
    cJSON *keep;        /* owns documents the ops point into */
    char **strs;        /* owned strings */
    size_t n_strs;
    struct api_view view;
    int have_view;
    int tag;            /* the handler's own use */
    void *extra;
    void (*extra_free)(void *);
};
struct job *job_new(size_t n_ops);
void job_free(struct job *j);
/* Keep doc / s alive until the job ends (takes ownership; returns it). */
cJSON *job_keep(struct job *j, cJSON *doc);
const char *job_str(struct job *j, char *s);
/* Hand the job to the writer; cont runs when it is durable. */
int api_submit(struct req *r, struct job *j, http_handler_fn cont);
struct job *api_job(struct req *r);

/* --- resources ------------------------------------------------------------ */
int api_entity_create(struct req *r);
int api_entity_get(struct req *r);
int api_entity_delete(struct req *r);
int api_entity_replace(struct req *r);
int api_entity_merge(struct req *r);
int api_attrs_append(struct req *r);
int api_attrs_update(struct req *r);
int api_attr_patch(struct req *r);
int api_attr_replace(struct req *r);
int api_attr_delete(struct req *r);
int api_entities_query(struct req *r);
int api_batch_create(struct req *r);
int api_batch_upsert(struct req *r);
int api_batch_update(struct req *r);
int api_batch_delete(struct req *r);
int api_batch_merge(struct req *r);
int api_batch_query(struct req *r);
int api_types_list(struct req *r);
int api_type_get(struct req *r);
int api_attributes_list(struct req *r);
int api_attribute_get(struct req *r);
int api_contexts_list(struct req *r);
int api_contexts_create(struct req *r);
int api_context_get(struct req *r);
int api_context_delete(struct req *r);
int api_subscription_create(struct req *r);
int api_subscriptions_list(struct req *r);
int api_subscription_get(struct req *r);
int api_subscription_patch(struct req *r);
int api_subscription_delete(struct req *r);
int api_subscription_stream(struct req *r);
int api_temporal_entity_get(struct req *r);
int api_temporal_query(struct req *r);
int api_temporal_batch_query(struct req *r);
int api_temporal_create(struct req *r);
int api_temporal_attrs_append(struct req *r);
int api_temporal_entity_delete(struct req *r);
int api_temporal_attr_delete(struct req *r);
int api_temporal_instance_patch(struct req *r);
int api_temporal_instance_delete(struct req *r);
/* query.c: the entity selection of a query (type, id, idPattern, q, geo,
 * attrs, view options, limit/offset/count) from the query string or a
 * Query object body, shared with the temporal API. Errors in r->err. */
struct q_expr;
struct geo_rel;
struct geo_shape;
struct api_query;
int api_query_from_params(struct req *r, struct api_query **out);
int api_query_from_body(struct req *r, const cJSON *body, struct api_query **out);
struct api_view *api_query_view(struct api_query *q);
int api_query_run(struct req *r, struct api_query *q, int (*each)(void *ud, const cJSON *doc),
                  void *ud, long *count);
/* NGSILD-Results-Count and Link rel=prev/next for a page of n_results. */
void api_query_page_headers(struct req *r, struct api_query *q, long n_results, long count);
/* The same selection, but the query's q and the final say are the
 * caller's (and its geo-query too with own_geo): accept(accept_ud, doc)
 * returns 1 (in), 0 (out) or -1 (failed: the error is in r->err) for every
 * candidate that meets the rest; paging and *count follow the accepted ones
 * (temporal queries select on the history). */
int api_query_run_filtered(struct req *r, struct api_query *q, int own_geo,
                           int (*accept)(void *ud, const cJSON *doc), void *accept_ud,
                           int (*each)(void *ud, const cJSON *doc), void *ud, long *count);
/* The query's q (expanded), or NULL. */
const struct q_expr *api_query_q(const struct api_query *q);
/* The query's geo-query: 1 and its parts (geoproperty expanded, location by
 * default), or 0. */
int api_query_geo(const struct api_query *q, const struct geo_rel **rel,
                  const struct geo_shape **shape, const char **geoproperty);
void api_query_free(struct api_query *q);
/* admin.c: /pilotlight/v1 */
int api_admin_profile_create(struct req *r);
int api_admin_profile_put(struct req *r);
int api_admin_profiles_list(struct req *r);
int api_admin_profile_get(struct req *r);
int api_admin_profile_delete(struct req *r);
int api_admin_device_create(struct req *r);
int api_admin_device_put(struct req *r);
int api_admin_devices_list(struct req *r);
int api_admin_device_get(struct req *r);
int api_admin_device_delete(struct req *r);
int api_admin_quarantine_list(struct req *r);
int api_admin_quarantine_delete(struct req *r);
int api_admin_quarantine_provision(struct req *r);
int api_admin_secret_set(struct req *r);
int api_admin_autoprov_list(struct req *r);
int api_admin_autoprov_put(struct req *r);
int api_admin_autoprov_delete(struct req *r);
int api_admin_ingest_stats(struct req *r);
int api_admin_store_stats(struct req *r);
int api_ingest_chirpstack(struct req *r);
int api_ingest_tts(struct req *r);
int api_version(struct req *r);
int api_health(struct req *r);

#endif
