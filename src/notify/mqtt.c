/*
 * mqtt.c - MQTT notification transport over libmosquitto (see mqtt.h).
 *
 * Pool: a list of brokers under pool->mu (looked up by "scheme host port
 * user"). Broker: a mosquitto handle in threaded mode, driven by its own
 * thread (connect / mosquitto_loop / reconnect); state, the last error and a
 * ring of recently completed message ids live under broker->mu, and
 * broker->cond wakes publishers on every change. A publisher registers its
 * batch with the broker (broker->waiters), calls mosquitto_publish for each
 * message without any of our locks held (the broker thread writes whatever
 * queued up in one go: a batch costs one wake-up of it and of the
 * publisher, not one per message) and notes each message id under
 * broker->mu; on_publish marks the message done in its batch (or, if its
 * id is not noted yet, in a small ring the publisher checks when noting).
 * The publisher waits until none is pending, the broker goes down, the
 * pool stops or the timeout passes.
 * Lock order: pool->mu before broker->mu; libmosquitto calls are made with
 * neither held, except the callbacks, which take broker->mu only.
 */
#include "notify/mqtt.h"
#include "util/uri.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#define DONE_RING 1024
#define DELAY_MIN_MS 500
#define DELAY_MAX_MS 5000
#define KEEPALIVE_S 30
#define CA_PATH "/etc/ssl/certs"

enum bstate { B_CONNECTING, B_UP, B_DOWN };

struct broker {
    struct broker *next;
    struct mqtt_pool *pool;
    char *key;
    struct mqtt_uri u;
    struct mosquitto *m;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    enum bstate state;
    unsigned downs; /* times the connection went down */
    char error[160];
    struct waiter *waiters; /* publishers waiting for their batches */
    int early[DONE_RING];   /* ids completed before their publisher noted them */
    uint64_t early_total;   /* such completions so far: the newest at (total-1) % ring */
};

/* A publisher's batch while it is on the wire (in broker->waiters). */
struct waiter {
    struct waiter *next;
    struct mqtt_msg *m;
    size_t n;
    size_t first; /* no message before this one is pending */
};

struct mqtt_pool {
    pthread_mutex_t mu;
    struct broker *brokers;
    size_t n_brokers, max_brokers;
    int timeout_ms;
    int stopping; /* atomic */
    int lib_ready;
};

#define POOL_STOPPING(p) __atomic_load_n(&(p)->stopping, __ATOMIC_SEQ_CST)

/* --- URI ---------------------------------------------------------------------- */

int mqtt_uri_parse(const char *uri, struct mqtt_uri *out, struct err *e)
{
    const char *p, *slash, *at, *hp, *hend, *colon;
    memset(out, 0, sizeof(*out));
    if (uri == NULL)
        return err_set(e, ERR_BAD_DATA, "MQTT endpoint URI missing");
    if (!strncmp(uri, "mqtt://", 7))
        p = uri + 7;
    else if (!strncmp(uri, "mqtts://", 8)) {
        p = uri + 8;
        out->tls = 1;
    } else
        return err_set(e, ERR_BAD_DATA, "MQTT endpoint URI must start with mqtt:// or mqtts://");
    out->port = out->tls ? 8883 : 1883;
    if ((slash = strchr(p, '/')) == NULL || slash[1] == '\0')
        return err_set(e, ERR_BAD_DATA, "MQTT endpoint URI must name a topic (mqtt://host/topic)");
    if (strlen(slash + 1) >= MQTT_MAX_TOPIC || strpbrk(slash + 1, "+#?") != NULL)
        return err_set(e, ERR_BAD_DATA,
                       "MQTT topic must be at most %d bytes without '+', '#' "
                       "or a query",
                       MQTT_MAX_TOPIC - 1);
    strcpy(out->topic, slash + 1);
    /* userinfo: the last '@' before the path */
    at = NULL;
    for (const char *q = p; q < slash; q++)
        if (*q == '@')
            at = q;
    hp = p;
    if (at) {
        const char *pc = memchr(p, ':', (size_t)(at - p));
        size_t ulen = pc ? (size_t)(pc - p) : (size_t)(at - p);
        if (uri_pct_decode(p, ulen, out->user, sizeof(out->user)) != 0)
            return err_set(e, ERR_BAD_DATA, "MQTT user name too long or badly encoded");
        if (pc) {
            if (uri_pct_decode(pc + 1, (size_t)(at - pc - 1), out->password,
                               sizeof(out->password)) != 0)
                return err_set(e, ERR_BAD_DATA, "MQTT password too long or badly encoded");
            out->has_password = 1;
        }
        hp = at + 1;
    }
    /* host[:port], host may be [IPv6] */
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(slash - hp));
        if (rb == NULL)
            return err_set(e, ERR_BAD_DATA, "MQTT host: unclosed '['");
        if (rb - hp - 1 <= 0 || (size_t)(rb - hp - 1) >= sizeof(out->host))
            return err_set(e, ERR_BAD_DATA, "MQTT host empty or too long");
        memcpy(out->host, hp + 1, (size_t)(rb - hp - 1));
        hend = rb + 1;
        colon = hend < slash && *hend == ':' ? hend : NULL;
        if (hend < slash && colon == NULL)
            return err_set(e, ERR_BAD_DATA, "MQTT host: text after ']'");
    } else {
        colon = memchr(hp, ':', (size_t)(slash - hp));
        hend = colon ? colon : slash;
        if (hend == hp || (size_t)(hend - hp) >= sizeof(out->host))
            return err_set(e, ERR_BAD_DATA, "MQTT host empty or too long");
        memcpy(out->host, hp, (size_t)(hend - hp));
    }
    if (colon) {
        long port = 0;
        const char *q = colon + 1;
        if (q == slash)
            return err_set(e, ERR_BAD_DATA, "MQTT port empty");
        for (; q < slash; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return err_set(e, ERR_BAD_DATA, "MQTT port must be 1..65535");
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return err_set(e, ERR_BAD_DATA, "MQTT port must be 1..65535");
        out->port = (int)port;
    }
    return 0;
}

/* --- broker ---------------------------------------------------------------------- */

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Set state (and error when not NULL); wakes publishers. */
static void set_state(struct broker *b, enum bstate st, const char *error)
{
    pthread_mutex_lock(&b->mu);
    if (b->state == B_UP && st != B_UP)
        b->downs++;
    b->state = st;
    if (error)
        snprintf(b->error, sizeof(b->error), "%s", error);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    struct broker *b = ud;
    char why[160];
    (void)m;
    if (rc == 0) {
        set_state(b, B_UP, NULL);
        return;
    }
    snprintf(why, sizeof(why), "MQTT broker refused the connection: %s",
             mosquitto_connack_string(rc));
    set_state(b, B_DOWN, why);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    struct broker *b = ud;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&b->mu);
    if (b->state == B_UP) {
        b->downs++;
        b->state = B_DOWN;
        snprintf(b->error, sizeof(b->error), "MQTT connection lost");
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

/* A message was written (QoS 0) or acknowledged (QoS 1): mark it done in
 * the batch of the publisher waiting for it. Completions come in sending
 * order, so each batch is searched from its first pending message. A
 * publisher notes a message's id only after mosquitto_publish returned, so
 * an id nobody waits for yet goes to the `early` ring, which that publisher
 * reads when it notes its ids. */
static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct broker *b = ud;
    int found = 0;
    (void)m;
    pthread_mutex_lock(&b->mu);
    for (struct waiter *w = b->waiters; w && !found; w = w->next)
        for (size_t i = w->first; i < w->n; i++)
            if (w->m[i].state_ == 1 && w->m[i].mid_ == mid) {
                w->m[i].state_ = 2;
                found = 1;
                break;
            }
    if (!found)
        b->early[b->early_total++ % DONE_RING] = mid;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

/* Note a sent message's id (b->mu held): done already if it is among the
 * early completions since the batch began (*seen). Entries more than
 * DONE_RING behind are gone: only as many publishers as are between their
 * mosquitto_publish and this call can fill the ring, far fewer. */
static void note_sent(struct broker *b, uint64_t seen, struct mqtt_msg *msg, int mid)
{
    msg->mid_ = mid;
    msg->state_ = 1;
    if (b->early_total - seen > DONE_RING)
        seen = b->early_total - DONE_RING;
    for (; seen < b->early_total; seen++)
        if (b->early[seen % DONE_RING] == mid) {
            msg->state_ = 2;
            return;
        }
}

/* Messages of w still pending (b->mu held). */
static size_t pending(struct waiter *w)
{
    size_t n = 0;
    while (w->first < w->n && w->m[w->first].state_ != 1)
        w->first++;
    for (size_t i = w->first; i < w->n; i++)
        n += w->m[i].state_ == 1;
    return n;
}

/* Sleep ms unless the pool stops (interruptible through b->cond). */
static void nap(struct broker *b, long ms)
{
    struct timespec ts;
    deadline_after(&ts, ms);
    pthread_mutex_lock(&b->mu);
    while (!POOL_STOPPING(b->pool))
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&b->mu);
}

static void *broker_main(void *arg)
{
    struct broker *b = arg;
    long delay = DELAY_MIN_MS;
    int linked = 0, first = 1;
    char why[160];

    while (!POOL_STOPPING(b->pool)) {
        int rc;
        if (!linked) {
            rc = first ? mosquitto_connect(b->m, b->u.host, b->u.port, KEEPALIVE_S)
                       : mosquitto_reconnect(b->m);
            if (rc != MOSQ_ERR_SUCCESS) {
                snprintf(why, sizeof(why), "MQTT broker %.64s:%d unreachable: %.60s", b->u.host,
                         b->u.port,
                         rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                set_state(b, B_DOWN, why);
                nap(b, delay);
                delay = delay * 2 > DELAY_MAX_MS ? DELAY_MAX_MS : delay * 2;
                continue;
            }
            first = 0;
            linked = 1;
        }
        rc = mosquitto_loop(b->m, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            linked = 0;
            snprintf(why, sizeof(why), "MQTT connection to %.64s:%d lost: %.60s", b->u.host,
                     b->u.port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            set_state(b, B_DOWN, why);
            nap(b, delay);
            delay = delay * 2 > DELAY_MAX_MS ? DELAY_MAX_MS : delay * 2;
            continue;
        }
        pthread_mutex_lock(&b->mu);
        if (b->state == B_UP)
            delay = DELAY_MIN_MS;
        pthread_mutex_unlock(&b->mu);
    }
    if (linked) {
        mosquitto_disconnect(b->m);
        mosquitto_loop(b->m, 50, 1);
    }
    set_state(b, B_DOWN, "MQTT transport stopped");
    return NULL;
}

static void broker_free(struct broker *b)
{
    if (b == NULL)
        return;
    if (b->m)
        mosquitto_destroy(b->m);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cond);
    memset(b->u.password, 0, sizeof(b->u.password));
    free(b->key);
    free(b);
}

/* Find or create (and start) the broker of u; pool->mu held. NULL with
 * reason when it cannot. */
static struct broker *broker_get(struct mqtt_pool *p, const struct mqtt_uri *u, char *reason,
                                 size_t cap)
{
    struct broker *b;
    char *key;
    /* the password is part of the identity: a subscription must not ride
     * on a connection another one opened with other credentials */
    if (asprintf(&key, "%d %s %d %s %s", u->tls, u->host, u->port, u->user, u->password) < 0) {
        snprintf(reason, cap, "out of memory");
        return NULL;
    }
    for (b = p->brokers; b; b = b->next)
        if (!strcmp(b->key, key)) {
            free(key);
            return b;
        }
    if (p->n_brokers >= p->max_brokers) {
        free(key);
        snprintf(reason, cap, "too many MQTT brokers (%zu)", p->max_brokers);
        return NULL;
    }
    if ((b = calloc(1, sizeof(*b))) == NULL) {
        free(key);
        snprintf(reason, cap, "out of memory");
        return NULL;
    }
    b->key = key;
    b->pool = p;
    b->u = *u;
    b->state = B_CONNECTING;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);
    if ((b->m = mosquitto_new(NULL, true, b)) == NULL) {
        snprintf(reason, cap, "cannot create an MQTT client");
        goto fail;
    }
    mosquitto_threaded_set(b->m, true);
    mosquitto_connect_callback_set(b->m, on_connect);
    mosquitto_disconnect_callback_set(b->m, on_disconnect);
    mosquitto_publish_callback_set(b->m, on_publish);
    if (u->user[0] &&
        mosquitto_username_pw_set(b->m, u->user, u->has_password ? u->password : NULL) != 0) {
        snprintf(reason, cap, "cannot set the MQTT credentials");
        goto fail;
    }
    if (u->tls && mosquitto_tls_set(b->m, NULL, CA_PATH, NULL, NULL, NULL) != 0) {
        snprintf(reason, cap, "cannot set up TLS for MQTT");
        goto fail;
    }
    if (pthread_create(&b->thread, NULL, broker_main, b) != 0) {
        snprintf(reason, cap, "cannot start the MQTT connection thread");
        goto fail;
    }
    b->started = 1;
    b->next = p->brokers;
    p->brokers = b;
    p->n_brokers++;
    return b;
fail:
    broker_free(b);
    return NULL;
}

/* --- pool -------------------------------------------------------------------------- */

struct mqtt_pool *mqtt_pool_new(int max_brokers, int timeout_ms)
{
    struct mqtt_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->max_brokers = max_brokers > 0 ? (size_t)max_brokers : 64;
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    return p;
}

int mqtt_pool_publish(struct mqtt_pool *p, const char *uri, const void *payload, size_t len,
                      int qos, char *reason, size_t cap)
{
    struct mqtt_msg m = {.payload = payload, .len = len, .qos = qos};
    return mqtt_pool_publish_many(p, uri, &m, 1, reason, cap) == 1 ? 0 : -1;
}

size_t mqtt_pool_publish_many(struct mqtt_pool *p, const char *uri, struct mqtt_msg *msgs,
                              size_t n, char *reason, size_t cap)
{
    struct mqtt_uri u;
    struct err e = {0};
    struct broker *b;
    struct waiter w = {.m = msgs, .n = n};
    struct timespec ts;
    size_t n_ok = 0, n_valid = 0, left;
    uint64_t seen;
    unsigned downs;

    reason[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        msgs[i].ok = 0;
        msgs[i].state_ = 0; /* 0 not sent, 1 on the wire, 2 done, -1 failed */
        if (msgs[i].len > 256u * 1024 * 1024 || (msgs[i].qos != 0 && msgs[i].qos != 1)) {
            msgs[i].state_ = -1;
            if (!reason[0])
                snprintf(reason, cap, "MQTT message too large or bad QoS");
        } else
            n_valid++;
    }
    if (n_valid == 0)
        return 0;
    if (mqtt_uri_parse(uri, &u, &e) != 0) {
        snprintf(reason, cap, "%s", e.detail);
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    if (POOL_STOPPING(p)) {
        pthread_mutex_unlock(&p->mu);
        snprintf(reason, cap, "MQTT transport stopped");
        return 0;
    }
    if (!p->lib_ready) {
        mosquitto_lib_init();
        p->lib_ready = 1;
    }
    b = broker_get(p, &u, reason, cap);
    pthread_mutex_unlock(&p->mu);
    memset(u.password, 0, sizeof(u.password));
    if (b == NULL)
        return 0;

    deadline_after(&ts, p->timeout_ms);
    pthread_mutex_lock(&b->mu);
    /* a broker still connecting gets the timeout; one known down fails now */
    while (b->state == B_CONNECTING && !POOL_STOPPING(p))
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) != 0)
            break;
    if (b->state != B_UP || POOL_STOPPING(p)) {
        snprintf(reason, cap, "%s",
                 b->state == B_CONNECTING ? "MQTT connect timed out"
                 : b->error[0]            ? b->error
                                          : "MQTT broker not connected");
        pthread_mutex_unlock(&b->mu);
        return 0;
    }
    downs = b->downs;
    seen = b->early_total;
    w.next = b->waiters;
    b->waiters = &w;
    pthread_mutex_unlock(&b->mu);

    /* all of them first: the broker thread writes what queued up at once */
    for (size_t i = 0; i < n; i++) {
        int mid = 0, rc;
        if (msgs[i].state_ != 0)
            continue;
        rc = mosquitto_publish(b->m, &mid, u.topic, (int)msgs[i].len, msgs[i].payload,
                               msgs[i].qos, false);
        pthread_mutex_lock(&b->mu);
        if (rc == MOSQ_ERR_SUCCESS)
            note_sent(b, seen, &msgs[i], mid);
        else {
            msgs[i].state_ = -1;
            if (!reason[0])
                snprintf(reason, cap, "MQTT publish failed: %s", mosquitto_strerror(rc));
        }
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_lock(&b->mu);
    while ((left = pending(&w)) > 0 && b->state == B_UP && b->downs == downs &&
           !POOL_STOPPING(p))
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) != 0) {
            left = pending(&w);
            break;
        }
    if (left && !reason[0]) {
        int qos1 = 0;
        for (size_t i = 0; i < n; i++)
            qos1 |= msgs[i].state_ == 1 && msgs[i].qos == 1;
        snprintf(reason, cap, "%s",
                 b->state != B_UP || b->downs != downs
                     ? "MQTT connection lost before the message was sent"
                 : POOL_STOPPING(p) ? "MQTT transport stopped"
                 : qos1             ? "MQTT PUBACK timed out"
                                    : "MQTT send timed out");
    }
    for (struct waiter **pp = &b->waiters; *pp; pp = &(*pp)->next)
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    pthread_mutex_unlock(&b->mu);
    for (size_t i = 0; i < n; i++)
        if ((msgs[i].ok = msgs[i].state_ == 2))
            n_ok++;
    return n_ok;
}

void mqtt_pool_stop(struct mqtt_pool *p)
{
    if (p == NULL || POOL_STOPPING(p))
        return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&p->mu);
    for (struct broker *b = p->brokers; b; b = b->next) {
        pthread_mutex_lock(&b->mu);
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->mu);
    }
    for (struct broker *b = p->brokers; b; b = b->next)
        if (b->started) {
            pthread_join(b->thread, NULL);
            b->started = 0;
        }
}

void mqtt_pool_free(struct mqtt_pool *p)
{
    if (p == NULL)
        return;
    mqtt_pool_stop(p);
    while (p->brokers) {
        struct broker *b = p->brokers;
        p->brokers = b->next;
        broker_free(b);
    }
    if (p->lib_ready)
        mosquitto_lib_cleanup();
    pthread_mutex_destroy(&p->mu);
    free(p);
}
