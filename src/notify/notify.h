/*
 * notify.h - the subscription runtime: the table of subscriptions of every
 * tenant (persisted in the store's "subscriptions" collection), matching of
 * the store's change events, and delivery of notifications.
 *
 * Threads and flow:
 *   store writer --notify_store_listener--> event queue (bounded in events
 *     and in bytes; copies of tenant, id, before/after; overflow counted
 *     and logged)
 *   matcher thread: takes events, finds candidate subscriptions through an
 *     index (tenant + entity type, and a per-tenant bucket for selectors
 *     without a type) under the table lock, then matches (sub_match) and
 *     renders without it, honours isActive, expiresAt and throttling, writes
 *     the notification to the subscription's open event streams and queues
 *     it on its endpoint; it also writes keep-alive comments on idle
 *     streams. It never does I/O.
 *   interval thread: the work that touches the store: due timeInterval
 *     subscriptions (a store scan each; overlapping ticks are skipped) and
 *     the persistence of changed status counters (every flush_ms).
 *   dispatcher threads (one per core, up to 4; each HTTP endpoint belongs
 *     to one): its endpoints' notifications, plain http:// through
 *     pilotlight's own HTTP/1.1 client (httpc.h), https:// (and all HTTP
 *     when a proxy is configured) through its own libcurl multi handle:
 *     keep-alive connection per receiver, timeout, bounded retries with
 *     backoff, one transfer at a time per endpoint so each receiver gets
 *     its notifications in order. Each endpoint URI has a bounded
 *     queue whose overflow is counted in timesDropped; a slow or dead
 *     endpoint only delays its own queue.
 *   one sender thread per MQTT endpoint URI (created on first use),
 *     publishing through mqtt.h's pool, with the same queue and retries.
 *   Deliveries whose subscription was deleted, paused, expired or
 *     re-pointed while they waited are not sent.
 *   HTTP workers call notify_sub_* (create, get, list, patch, delete) and
 *     notify_stream_attach.
 * One mutex guards the table, the index, streams and the endpoint queues
 * (bookkeeping only: no matching, rendering or I/O under it); the listener
 * only touches the event queue's own mutex.
 *
 * Streams (server-sent events): a client of GET /subscriptions/{id}/stream
 * is a struct notify_sink attached to the subscription; each notification
 * is written to it as "id: <notification id>\nevent: notification\ndata:
 * <Notification JSON>\n\n". At most NOTIFY_MAX_STREAMS streams are open at
 * once (all tenants). A sink whose buffer is full (a slow client) gets a
 * final "event: dropped" and is detached; so does every stream of a
 * deleted subscription ("event: end"). Idle streams get a ": keep-alive"
 * comment every sse_keepalive_ms. A subscription whose endpoint.uri is
 * SUB_SSE_URI (sub.h) is delivered to its streams only.
 *
 * mqtt:// and mqtts:// endpoints (GS CIM 009 clause 7) have the same
 * per-endpoint sender thread, queue, retries and counters; the sender
 * publishes {"metadata": {Content-Type, Link, NGSILD-Tenant, receiverInfo
 * ...}, "body": Notification} to the URI's topic through mqtt.h's pool (one
 * connection per broker, its own reconnecting thread; QoS from
 * "MQTT-QoS"). A notification counts as sent once written (QoS 0) or
 * acknowledged (QoS 1); a broker that is down fails at once.
 */
#ifndef PL_NOTIFY_H
#define PL_NOTIFY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "ld/ld.h"
#include "store/store.h"
#include "util/err.h"

struct notify;
struct ld_cache;

struct notify_config {
    struct store *store;
    struct ld_cache *contexts;  /* resolves stored @context values at load */
    size_t queue_cap;           /* change events waiting; 0: 65536 */
    size_t endpoint_queue_cap;  /* notifications waiting per endpoint; 0: 1000 */
    int timeout_ms;             /* per HTTP attempt; 0: 5000 */
    int max_attempts;           /* per notification; 0: 3 */
    int backoff_ms;             /* first retry delay, doubled each time; 0: 200 */
    int flush_ms;               /* status counters persisted this often; 0: 2000 */
    int max_endpoints;          /* distinct endpoint URIs (threads); 0: 256 */
    size_t queue_bytes;         /* approximate bytes of queued events; 0: 256 MiB */
    int sse_keepalive_ms;       /* comment on an idle stream; 0: NOTIFY_SSE_KEEPALIVE_MS */
};

/* Open event streams, all tenants together (a constant: each holds an
 * HTTP connection and up to 1 MiB of buffer). */
#define NOTIFY_MAX_STREAMS 64
#define NOTIFY_SSE_KEEPALIVE_MS 15000

/* Where a stream's events go (the API layer wraps an http_stream). Called
 * under the runtime's table lock, so they must not block: write returns 0,
 * ERR_TOO_LARGE when the client's buffer is full, another code when the
 * client is gone; close appends final and ends; release drops the sink. */
struct notify_sink {
    void *ud;
    int (*write)(void *ud, const char *data, size_t len);
    void (*close)(void *ud, const char *final, size_t len);
    void (*release)(void *ud);
};

/* Create the runtime and load every tenant's subscriptions from the store
 * (documents that no longer compile are logged and skipped). No thread runs
 * yet. Returns 0 and *out, or ERR_NOMEM / ERR_INTERNAL. */
int notify_open(const struct notify_config *c, struct notify **out, struct err *e);

/* The context URL the Link header of subscription id's notifications (and
 * of its streams) names: its @context when that is one URL (or a one-URL
 * array); for any other array or object, an ImplicitlyCreated copy hosted
 * by the context cache (GS CIM 009 5.13.1), so the receiver can expand what
 * it gets; the core context when there is none or it cannot be hosted.
 * malloc'd; NULL when there is no such subscription, it asked for
 * application/ld+json (the context is in the body), or out of memory. */
char *notify_sub_link(struct notify *n, const char *tenant, const char *id);

/* Start the matcher thread (senders start on demand). */
int notify_start(struct notify *n, struct err *e);

/* The store listener (store_listen(store, notify_store_listener, n)):
 * copies the events into the bounded queue and returns. Writer thread. */
void notify_store_listener(void *ud, struct store_event *evs, size_t n_evs);
/* store_listen_wants' callback: 1 when some subscription could match an
 * entity of these types in tenant (by type, or by watching any type). */
int notify_store_wants(void *ud, const char *tenant, const cJSON *types_a, const cJSON *types_b);
/* store_listen's active callback: 1 while any subscription exists. */
int notify_store_active(void *ud);

/* Stop the threads (queued notifications not yet sent are dropped), end
 * the streams and persist the counters. The listener drops every event afterwards, so the
 * store may still be closed after this. Accepts NULL. */
void notify_stop(struct notify *n);

/* Free everything (after notify_stop and store_close). Accepts NULL. */
void notify_free(struct notify *n);

/* --- subscriptions (HTTP workers) ------------------------------------------
 * Documents are in sub.h's stored form. */

/* Create: doc (borrowed) gets an id when it has none, is validated
 * (sub_compile with ctx), stamped with ctx_value as its "@context" and
 * persisted. *id_out (caller frees) is the id. Errors: ERR_BAD_DATA,
 * ERR_EXISTS, ERR_IO, ERR_NOMEM. */
int notify_sub_create(struct notify *n, const char *tenant, const cJSON *doc,
                      const struct ld_ctx *ctx, const cJSON *ctx_value, char **id_out,
                      struct err *e);

/* The stored document with its "_status" counters (caller frees).
 * ERR_NOT_FOUND. */
int notify_sub_get(struct notify *n, const char *tenant, const char *id, cJSON **out,
                   struct err *e);

/* A page of a tenant's subscriptions in creation order, as notify_sub_get
 * gives them; *count is the total. limit 0 gives an empty page. */
int notify_sub_list(struct notify *n, const char *tenant, long offset, long limit, cJSON **out,
                    long *count, struct err *e);

/* Merge a stored-form fragment (sub_merge), validate, replace, persist.
 * ERR_NOT_FOUND, ERR_BAD_DATA, ERR_IO. */
int notify_sub_patch(struct notify *n, const char *tenant, const char *id, const cJSON *frag,
                     struct err *e);

/* ERR_NOT_FOUND. */
int notify_sub_delete(struct notify *n, const char *tenant, const char *id, struct err *e);

/* Events dropped because the event queue was full (since start). */
long notify_events_dropped(struct notify *n);

/* Attach an event stream to subscription id of tenant: every later
 * notification of it is written to sink. On success the runtime owns the
 * sink (it calls release when the stream ends); on error the caller keeps
 * it. Errors: ERR_NOT_FOUND, ERR_UNAVAILABLE (NOTIFY_MAX_STREAMS open, or
 * stopping), ERR_NOMEM. Any thread. */
int notify_stream_attach(struct notify *n, const char *tenant, const char *id,
                         const struct notify_sink *sink, struct err *e);

/* Streams attached now (tests, stats). */
int notify_streams_open(struct notify *n);

#endif
