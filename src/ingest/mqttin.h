/*
 * mqttin.h - the hub's incoming MQTT connections: subscribe to a LoRaWAN
 * network server's broker (ChirpStack v4, The Things Stack v3) and hand
 * every message to the ingest pipeline (issue 4, "Connections / MQTT").
 *
 * Each configured connection is one URL (config key `ingest_mqtt`,
 * repeatable, parsed by mqin_parse at startup):
 *
 *   mqtt[s]://[user[:password]@]host[:port][/]?tenant=NAME&topics=T1,T2
 *            &client_id=ID&qos=0|1&ca_file=PATH&keepalive=S&password_file=PATH
 *
 * | part          | meaning                                        | default |
 * |---------------|------------------------------------------------|--------------------------------|
 * | mqtts         | TLS; server verified against ca_file or the    | plain TCP (port 1883) | | |
 * system CA directory /etc/ssl/certs (port 8883) |                                | | user:password
 * | MQTT credentials, percent-decoded              | none                           | | tenant |
 * NGSI-LD tenant the connection feeds (only ever | "" = the default tenant        | | | from
 * config, never from a message)             |                                | | topics        |
 * comma-separated topic filters, '+'/'#' allowed,| MQIN_DEFAULT_TOPICS            | | | at most
 * MQIN_MAX_TOPICS; `$share/G/F` works    |                                | | client_id     | MQTT
 * client id; giving one makes the session   | pilotlight-HOST-PID-N, clean   | |               |
 * persistent (clean session off) so QoS 1        | session                        | | | messages
 * queued while the hub was down arrive  |                                | | qos           |
 * subscription QoS, 0 or 1                       | 0                              | | ca_file | PEM
 * CA bundle for mqtts (must be readable)     | system CA directory            | | keepalive     |
 * seconds, 5..3600                               | 30                             | | password_file
 * | first line is the password (keeps it out of    | none                           | | | the
 * config); excludes a password in the URL    |                                |
 *
 * Query values are percent-decoded after splitting on '&' and ','; '+' is a
 * literal '+' (a topic wildcard), not a space. Unknown or repeated
 * parameters are errors, so a typo never silently falls back to a default.
 *
 * Threads: one thread per connection runs the libmosquitto network loop,
 * connects asynchronously (a broker that is down at start never delays
 * startup), reconnects with a delay of 0.5 s doubling to 10 s, subscribes
 * again on every (re)connect, and calls the message callback for each
 * message. Messages larger than MQIN_MAX_MESSAGE bytes are dropped before
 * the callback and counted (tooLarge). Messages on topics that match none of
 * the configured filters (a persistent session can still hold a previous
 * configuration's subscriptions at the broker) are dropped and counted
 * (unsubscribed).
 *
 * Known limits: libmosquitto reads a whole packet into memory before we see
 * its size (the MQTT protocol caps a packet at 256 MiB); limit message sizes
 * at the broker (mosquitto's message_size_limit) where that matters. Host
 * names are resolved with a blocking getaddrinfo on the connection's own
 * thread. For QoS 1, libmosquitto acknowledges a message to the broker just
 * before the callback runs: a crash during the callback loses that message.
 */
#ifndef PL_INGEST_MQTTIN_H
#define PL_INGEST_MQTTIN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util/err.h"

#define MQIN_MAX_CONNS 16   /* connections per hub (the config key's cap) */
#define MQIN_MAX_URL 2048   /* a configured URL, bytes */
#define MQIN_MAX_FIELD 256  /* host, user, password, paths: bytes incl. NUL */
#define MQIN_MAX_TOPICS 16  /* topic filters per connection */
#define MQIN_MAX_TOPIC 256  /* one topic filter, bytes incl. NUL */
#define MQIN_MAX_TENANT 129 /* tenant name, bytes incl. NUL (as NGSILD-Tenant) */
#define MQIN_MAX_CLIENT_ID 128
#define MQIN_MAX_MESSAGE (64 * 1024) /* == UPLINK_MAX_MESSAGE */
#define MQIN_DEFAULT_TOPICS "application/+/device/+/event/+,v3/+/devices/+/up,v3/+/devices/+/join"

/* One parsed connection URL. Plain data: copy freely; wipe password when done. */
struct mqin_conf {
    int tls;                       /* mqtts */
    char host[MQIN_MAX_FIELD];     /* without IPv6 brackets */
    int port;                      /* 1883, 8883 for mqtts */
    char user[MQIN_MAX_FIELD];     /* "" = anonymous */
    char password[MQIN_MAX_FIELD]; /* valid if has_password */
    int has_password;
    char tenant[MQIN_MAX_TENANT]; /* "" = default tenant */
    char topics[MQIN_MAX_TOPICS][MQIN_MAX_TOPIC];
    size_t n_topics;                    /* >= 1 */
    char client_id[MQIN_MAX_CLIENT_ID]; /* "" = generated at start */
    int clean_session;                  /* 0 when client_id was given */
    int qos;                            /* 0 or 1 */
    char ca_file[MQIN_MAX_FIELD];       /* "" = system CA directory */
    int keepalive;                      /* seconds */
    char url[MQIN_MAX_URL];             /* the URL without the password,
                                           for status and logs */
};

/* Parse and validate one connection URL into *out (overwritten). Reads
 * password_file when given (so a missing file fails at startup). Returns 0,
 * or ERR_INVALID_REQUEST with the reason in e: bad scheme, empty or
 * oversized host/user/password, port not 1..65535, a path other than "/",
 * unknown/repeated/empty parameter, bad percent-encoding, bad tenant name,
 * empty or invalid topic filter, too many topics, qos not 0 or 1,
 * keepalive out of 5..3600, ca_file or password_file unreadable,
 * ca_file on mqtt://, password without a user, password twice. The detail
 * never contains the password. */
int mqin_parse(const char *url, struct mqin_conf *out, struct err *e);

/* The message callback. Called on the connection's own thread for every
 * accepted message, one at a time per connection, concurrently across
 * connections. It may block: that is the backpressure (the socket is not
 * read meanwhile and the broker queues), but blocking longer than 1.5x the
 * keepalive makes the broker drop the connection. tenant, topic and payload
 * are only valid during the call; payload is never NULL (len may be 0). */
typedef void (*mqin_msg_fn)(void *ud, const char *tenant, const char *topic, const void *payload,
                            size_t len);

struct mqin;

/* Start n (<= MQIN_MAX_CONNS) connections from confs (copied; the caller may
 * wipe them afterwards). Returns at once: connecting happens on the
 * connections' threads. *out is the handle (free with mqin_stop). n == 0 is
 * valid (no threads). Returns 0, ERR_INVALID_REQUEST (too many, bad QoS),
 * ERR_NOMEM or ERR_INTERNAL (thread or client creation) with e set; nothing
 * is left running on failure. */
int mqin_start(const struct mqin_conf *confs, size_t n, mqin_msg_fn fn, void *ud, struct mqin **out,
               struct err *e);

/* Stop: set the stop flag, wake every connection thread, let each send
 * DISCONNECT (a persistent session stays at the broker and queues QoS 1
 * messages for the next start), join the threads and free everything.
 * Returns within ~0.2 s whether or not brokers are reachable (a host name
 * lookup in progress is waited for), unless a
 * callback is blocked: stop waits for callbacks in progress, so unblock
 * your side (close your queue) first. No callback runs after it returns.
 * Accepts NULL. */
void mqin_stop(struct mqin *m);

/* Status of every connection, for GET /pilotlight/v1/ingest/stats: a cJSON
 * array (caller frees with cJSON_Delete) of objects
 *   {url (no password), tenant, clientId, connected (bool), subscribed
 *    (bool: every filter granted), messages (delivered to the callback),
 *    tooLarge, unsubscribed, reconnects (successful connections after the
 *    first), lastError (string or null), lastConnectedAt (ISO 8601 or null)}.
 * NULL when m is NULL or out of memory. Any thread. */
cJSON *mqin_status(struct mqin *m);

#endif
