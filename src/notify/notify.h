/*
 * notify.h - the subscription runtime: the table of subscriptions of every
 * tenant (persisted in the store's "subscriptions" collection), matching of
 * the store's change events, and delivery of notifications.
 *
 * Threads and flow:
 *   store writer --notify_store_listener--> event queue (bounded, copies of
 *     tenant, id, before/after; overflow counted and logged)
 *   matcher thread: takes events, finds candidate subscriptions through an
 *     index (tenant + entity type, and a per-tenant bucket for selectors
 *     without a type), matches (sub_match), honours isActive, expiresAt and
 *     throttling, renders the Notification and queues it on its endpoint;
 *     every second it also runs due timeInterval subscriptions and persists
 *     changed status counters (every flush_ms).
 *   one sender thread per endpoint URI (created on first use): own libcurl
 *     handle (keep-alive reuse), timeout, bounded retries with backoff, a
 *     bounded queue whose overflow counts as a failure of the subscription
 *     (timesFailed, timesDropped, lastFailure). A slow or dead endpoint
 *     only delays its own queue.
 *   HTTP workers call notify_sub_* (create, get, list, patch, delete).
 * One mutex guards the table, the index and the endpoint queues; the
 * listener only touches the event queue's own mutex.
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
};

/* Create the runtime and load every tenant's subscriptions from the store
 * (documents that no longer compile are logged and skipped). No thread runs
 * yet. Returns 0 and *out, or ERR_NOMEM / ERR_INTERNAL. */
int notify_open(const struct notify_config *c, struct notify **out, struct err *e);

/* Start the matcher thread (senders start on demand). */
int notify_start(struct notify *n, struct err *e);

/* The store listener (store_listen(store, notify_store_listener, n)):
 * copies the events into the bounded queue and returns. Writer thread. */
void notify_store_listener(void *ud, struct store_event *evs, size_t n_evs);

/* Stop the threads (queued notifications not yet sent are dropped) and
 * persist the counters. The listener drops every event afterwards, so the
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

#endif
