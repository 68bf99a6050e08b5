/*
 * mqtt.h - MQTT notification transport (GS CIM 009 v1.8 clause 7, MQTT
 * notification binding): endpoint URI parsing and a pool of broker
 * connections, one per broker (scheme, host, port, user), created on first
 * use.
 *
 * Each broker has its own thread that connects, runs the libmosquitto
 * network loop and reconnects with a growing delay (0.5 s doubled up to
 * 5 s). Publishers (the notify sender threads) never touch the network:
 * they hand the message to libmosquitto and wait, at most timeout_ms, until
 * it is written (QoS 0) or acknowledged by the broker (QoS 1). A broker
 * known to be down fails at once, so it never holds up other endpoints.
 * mqtts uses TLS with the system CA store (/etc/ssl/certs).
 *
 * Thread-safety: every function may be called from any thread; the pool
 * must outlive its callers (mqtt_pool_stop first, then mqtt_pool_free).
 */
#ifndef PL_NOTIFY_MQTT_H
#define PL_NOTIFY_MQTT_H

#include <stddef.h>

#include "util/err.h"

#define MQTT_MAX_FIELD 256 /* host, user, password: longer is an error */
#define MQTT_MAX_TOPIC 1024

struct mqtt_uri {
    int tls;                       /* mqtts */
    char host[MQTT_MAX_FIELD];     /* without IPv6 brackets */
    int port;                      /* default 1883, 8883 for mqtts */
    char user[MQTT_MAX_FIELD];     /* "" = none (percent-decoded) */
    char password[MQTT_MAX_FIELD]; /* "" = none (percent-decoded) */
    int has_password;
    char topic[MQTT_MAX_TOPIC];    /* no leading '/', no wildcards */
};

/* Parse mqtt[s]://[user[:password]@]host[:port]/topic[/subtopic]*.
 * Returns 0 and *out, or ERR_BAD_DATA with the reason in e (bad scheme,
 * empty host or topic, port out of 1..65535, '+' or '#' in the topic,
 * a field over its cap). */
int mqtt_uri_parse(const char *uri, struct mqtt_uri *out, struct err *e);

struct mqtt_pool;

/* A pool of at most max_brokers connections; timeout_ms bounds each
 * publish's wait. NULL when out of memory. No thread runs yet. */
struct mqtt_pool *mqtt_pool_new(int max_brokers, int timeout_ms);

/* Publish payload (len bytes, borrowed) to the URI's topic with qos (0 or
 * 1), connecting to the broker on first use. Blocks at most the pool's
 * timeout. Returns 0 once written (QoS 0) or acknowledged (QoS 1); -1 with
 * a reason in reason[cap] otherwise (bad URI, broker down or refusing,
 * timeout, pool stopping, too many brokers). */
int mqtt_pool_publish(struct mqtt_pool *p, const char *uri, const void *payload, size_t len,
                      int qos, char *reason, size_t cap);

/* One message of a batch: payload (len bytes, borrowed) and qos in; ok out;
 * the members ending in _ belong to the pool. */
struct mqtt_msg {
    const void *payload;
    size_t len;
    int qos;
    int ok;
    int mid_, state_;
};

/* Publish msgs[0..n) in this order to the URI's topic without waiting
 * between them, then wait (the pool's timeout, once for the batch) until
 * each was written (QoS 0) or acknowledged (QoS 1). Sets every msgs[i].ok
 * and returns how many are ok; when some are not, reason[cap] holds the
 * first failure seen (a bad message, a refused publish, or why the wait
 * ended), which need not be that of every failed message. */
size_t mqtt_pool_publish_many(struct mqtt_pool *p, const char *uri, struct mqtt_msg *msgs,
                              size_t n, char *reason, size_t cap);

/* Wake every waiting publisher (they fail), stop and join the broker
 * threads and disconnect. Publishing afterwards fails. Accepts NULL. */
void mqtt_pool_stop(struct mqtt_pool *p);

/* Stop (when not yet) and free. Accepts NULL. */
void mqtt_pool_free(struct mqtt_pool *p);

#endif
