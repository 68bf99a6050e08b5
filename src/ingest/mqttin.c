/*
 * mqttin.c - incoming MQTT connections over libmosquitto (see mqttin.h).
 *
 * Design: one struct conn per configured URL, each with its own libmosquitto
 * handle driven by its own thread (conn_main): connect asynchronously, run
 * mosquitto_loop with a short timeout so the stop flag is seen within
 * LOOP_MS, and on any failure wait (interruptibly) and reconnect with a
 * delay doubling from DELAY_MIN_MS to DELAY_MAX_MS; the delay starts over
 * once a connection has stayed up STABLE_MS (a broker that accepts and then
 * drops us, e.g. another client taking over the same client id, keeps
 * backing off). Every libmosquitto call on a handle, and every callback
 * (on_connect subscribes, on_message calls the user callback), happens on
 * that connection's thread, so the handle runs in non-threaded mode and
 * needs no locking. After a successful loop pass, packets already waiting
 * in the socket are read in a bounded burst without another select, which
 * matters at tens of thousands of uplinks per second.
 *
 * Shared state: the counters are atomics; connected/subscribed, the last
 * error and the last connection time live under conn->mu, which is never
 * held across a libmosquitto call or the user callback; mqin_status reads
 * them from any thread. "connected" drops to false together with the
 * error that says why (when mosquitto_loop fails), so status never shows a
 * lost connection without its reason. m->mu + m->cond serve only the
 * interruptible naps. The stop flag is an atomic int set once by mqin_stop.
 * The first TLS connect of the process is serialized (see conn_connect).
 */
#include "ingest/mqttin.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "ingest/uplink.h"
#include "util/log.h"
#include "util/time.h"
#include "util/uri.h"

#define DELAY_MIN_MS 500
#define DELAY_MAX_MS 10000
#define STABLE_MS 10000               /* a connection this old resets the backoff */
#define LOOP_MS 100                   /* select timeout: bounds how late stop is seen */
#define BURST 256                     /* packets read without select after a loop pass */
#define LOG_EVERY_US (10 * 1000000LL) /* at most one line per window per kind */
#define CA_PATH "/etc/ssl/certs"
#define ERROR_MAX 192

_Static_assert(MQIN_MAX_MESSAGE == UPLINK_MAX_MESSAGE, "one message size limit for ingest");

/* A log rate limiter: one line per LOG_EVERY_US, the rest counted. */
struct limiter {
    int64_t last_us;
    unsigned suppressed;
};

struct conn {
    struct mqin *owner;
    struct mqin_conf conf; /* password wiped once handed to libmosquitto */
    struct mosquitto *mosq;
    pthread_t thread;
    int started;

    /* connection thread only */
    int64_t up_since_us; /* 0 while not connected */
    int sub_mid;
    struct limiter log_errors, log_drops;

    /* atomics */
    unsigned long long messages, too_large, unsubscribed;

    /* under mu */
    pthread_mutex_t mu;
    int connected, subscribed;
    unsigned long n_connects, reconnects;
    char last_error[ERROR_MAX];
    int64_t last_connected_ms; /* 0 = never */
};

struct mqin {
    mqin_msg_fn fn;
    void *ud;
    int stopping; /* atomic */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* naps wait here; stop broadcasts */
    struct conn *conns;
    size_t n_conns;
    int lib_ready;
};

#define STOPPING(m) __atomic_load_n(&(m)->stopping, __ATOMIC_SEQ_CST)
#define COUNT(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

/* ---- URL parsing ---------------------------------------------------------------- */

/* Same charset and length as the NGSILD-Tenant header check. */
static int tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n >= MQIN_MAX_TENANT)
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) &&
            !strchr("-_.:/~", *p))
            return 0;
    return 1;
}

/* A subscription filter libmosquitto accepts, also as $share/GROUP/FILTER. */
static int topic_ok(const char *t)
{
    if (*t == '\0' || mosquitto_sub_topic_check(t) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(t, (int)strlen(t)) != MOSQ_ERR_SUCCESS)
        return 0;
    if (strncmp(t, "$share/", 7) == 0) {
        const char *slash = strchr(t + 7, '/'), *wild = strpbrk(t + 7, "+#");
        if (slash == NULL || slash == t + 7 || slash[1] == '\0' || (wild && wild < slash))
            return 0;
    }
    return 1;
}

/* The filter a message topic is matched against: $share/GROUP/ stripped. */
static const char *match_filter(const char *t)
{
    if (strncmp(t, "$share/", 7) == 0) {
        const char *slash = strchr(t + 7, '/');
        if (slash)
            return slash + 1;
    }
    return t;
}

static int parse_topics(const char *v, size_t n, struct mqin_conf *out, struct err *e)
{
    const char *p = v, *end = v + n;
    out->n_topics = 0;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        char *t;
        if (out->n_topics >= MQIN_MAX_TOPICS)
            return err_set(e, ERR_INVALID_REQUEST, "more than %d topics", MQIN_MAX_TOPICS);
        t = out->topics[out->n_topics];
        if (uri_pct_decode(p, (size_t)(stop - p), t, MQIN_MAX_TOPIC) != 0)
            return err_set(e, ERR_INVALID_REQUEST,
                           "topic %zu too long (max %d bytes) or badly percent-encoded",
                           out->n_topics + 1, MQIN_MAX_TOPIC - 1);
        if (!topic_ok(t))
            return err_set(e, ERR_INVALID_REQUEST, "invalid topic filter '%.80s'", t);
        out->n_topics++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

/* Parse a decimal in [lo, hi] from [s, s+n). */
static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* First line of path (without CR/LF) into out[cap]. */
static int read_password_file(const char *path, char *out, size_t cap, struct err *e)
{
    FILE *f = fopen(path, "r");
    char line[MQIN_MAX_FIELD + 2];
    size_t n;
    if (f == NULL)
        return err_set(e, ERR_INVALID_REQUEST, "cannot read password_file %.128s: %s", path,
                       strerror(errno));
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\r\n");
    if (line[n] == '\0' && n >= cap - 1) {
        memset(line, 0, sizeof(line));
        return err_set(e, ERR_INVALID_REQUEST, "password in password_file longer than %zu bytes",
                       cap - 2);
    }
    line[n] = '\0';
    if (n == 0)
        return err_set(e, ERR_INVALID_REQUEST, "password_file %.128s: first line is empty", path);
    memcpy(out, line, n + 1);
    memset(line, 0, sizeof(line));
    return 0;
}

enum param { P_TENANT, P_TOPICS, P_CLIENT_ID, P_QOS, P_CA_FILE, P_KEEPALIVE, P_PASSWORD_FILE, P_N };
static const char *const param_names[P_N] = {"tenant",  "topics",    "client_id",    "qos",
                                             "ca_file", "keepalive", "password_file"};

static int parse_query(const char *q, struct mqin_conf *out, char *password_file, struct err *e)
{
    int seen[P_N] = {0};
    const char *p = q;
    while (*p) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t name_len = eq ? (size_t)(eq - p) : (size_t)(end - p);
        const char *v = eq ? eq + 1 : end;
        size_t vn = (size_t)(end - v);
        int k;
        for (k = 0; k < P_N; k++)
            if (strlen(param_names[k]) == name_len && !strncmp(p, param_names[k], name_len))
                break;
        if (k == P_N)
            return err_set(e, ERR_INVALID_REQUEST,
                           "unknown parameter '%.*s' (tenant, topics, client_id, qos, ca_file, "
                           "keepalive, password_file)",
                           (int)(name_len > 40 ? 40 : name_len), p);
        if (seen[k]++)
            return err_set(e, ERR_INVALID_REQUEST, "parameter '%s' given twice", param_names[k]);
        if (eq == NULL || vn == 0)
            return err_set(e, ERR_INVALID_REQUEST, "parameter '%s' is empty", param_names[k]);
        switch (k) {
        case P_TENANT:
            if (uri_pct_decode(v, vn, out->tenant, sizeof(out->tenant)) != 0 ||
                !tenant_ok(out->tenant))
                return err_set(e, ERR_INVALID_REQUEST,
                               "invalid tenant (1..%d of A-Z a-z 0-9 - _ . : / ~)",
                               MQIN_MAX_TENANT - 1);
            break;
        case P_TOPICS:
            if (parse_topics(v, vn, out, e) != 0)
                return e ? e->code : ERR_INVALID_REQUEST;
            break;
        case P_CLIENT_ID:
            if (uri_pct_decode(v, vn, out->client_id, sizeof(out->client_id)) != 0 ||
                mosquitto_validate_utf8(out->client_id, (int)strlen(out->client_id)) != 0)
                return err_set(e, ERR_INVALID_REQUEST,
                               "client_id too long (max %d bytes) or badly encoded",
                               MQIN_MAX_CLIENT_ID - 1);
            out->clean_session = 0;
            break;
        case P_QOS:
            if (parse_int(v, vn, 0, 1, &out->qos) != 0)
                return err_set(e, ERR_INVALID_REQUEST, "qos must be 0 or 1");
            break;
        case P_CA_FILE:
            if (uri_pct_decode(v, vn, out->ca_file, sizeof(out->ca_file)) != 0)
                return err_set(e, ERR_INVALID_REQUEST, "ca_file too long or badly encoded");
            if (access(out->ca_file, R_OK) != 0)
                return err_set(e, ERR_INVALID_REQUEST, "cannot read ca_file %.128s: %s",
                               out->ca_file, strerror(errno));
            break;
        case P_KEEPALIVE:
            if (parse_int(v, vn, 5, 3600, &out->keepalive) != 0)
                return err_set(e, ERR_INVALID_REQUEST, "keepalive must be 5..3600 seconds");
            break;
        case P_PASSWORD_FILE:
            if (uri_pct_decode(v, vn, password_file, MQIN_MAX_FIELD) != 0)
                return err_set(e, ERR_INVALID_REQUEST, "password_file too long or badly encoded");
            break;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
        if (*p == '\0')
            return err_set(e, ERR_INVALID_REQUEST, "empty parameter after '&'");
    }
    return 0;
}

/* host[:port] in [hp, end), host may be [IPv6]. */
static int parse_host_port(const char *hp, const char *end, struct mqin_conf *out, struct err *e)
{
    const char *hend, *colon;
    if (hp < end && *hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(end - hp));
        if (rb == NULL)
            return err_set(e, ERR_INVALID_REQUEST, "host: unclosed '['");
        if (rb - hp - 1 <= 0 || (size_t)(rb - hp - 1) >= sizeof(out->host))
            return err_set(e, ERR_INVALID_REQUEST, "host empty or too long");
        memcpy(out->host, hp + 1, (size_t)(rb - hp - 1));
        hend = rb + 1;
        colon = hend < end && *hend == ':' ? hend : NULL;
        if (hend < end && colon == NULL)
            return err_set(e, ERR_INVALID_REQUEST, "host: text after ']'");
    } else {
        colon = memchr(hp, ':', (size_t)(end - hp));
        hend = colon ? colon : end;
        if (hend == hp || (size_t)(hend - hp) >= sizeof(out->host))
            return err_set(e, ERR_INVALID_REQUEST, "host empty or too long");
        memcpy(out->host, hp, (size_t)(hend - hp));
        if (strpbrk(out->host, "%@ \t"))
            return err_set(e, ERR_INVALID_REQUEST, "host contains '%%', '@' or a space");
    }
    if (colon && parse_int(colon + 1, (size_t)(end - colon - 1), 1, 65535, &out->port) != 0)
        return err_set(e, ERR_INVALID_REQUEST, "port must be 1..65535");
    return 0;
}

int mqin_parse(const char *url, struct mqin_conf *out, struct err *e)
{
    const char *p, *auth_end, *at = NULL, *query = NULL, *scheme_end;
    char password_file[MQIN_MAX_FIELD] = "";
    int rc;

    memset(out, 0, sizeof(*out));
    if (url == NULL || *url == '\0')
        return err_set(e, ERR_INVALID_REQUEST, "empty URL");
    if (strlen(url) >= MQIN_MAX_URL)
        return err_set(e, ERR_INVALID_REQUEST, "URL longer than %d bytes", MQIN_MAX_URL - 1);
    if (!strncmp(url, "mqtt://", 7))
        p = url + 7;
    else if (!strncmp(url, "mqtts://", 8)) {
        p = url + 8;
        out->tls = 1;
    } else
        return err_set(e, ERR_INVALID_REQUEST, "URL must start with mqtt:// or mqtts://");
    scheme_end = p;
    out->port = out->tls ? 8883 : 1883;
    out->qos = 0;
    out->keepalive = 30;
    out->clean_session = 1;

    auth_end = p + strcspn(p, "/?");
    if (*auth_end == '/') {
        if (auth_end[1] != '\0' && auth_end[1] != '?')
            return err_set(e, ERR_INVALID_REQUEST,
                           "URL path must be empty: give topic filters with ?topics=");
        query = auth_end[1] == '?' ? auth_end + 2 : NULL;
    } else if (*auth_end == '?')
        query = auth_end + 1;

    /* userinfo: up to the last '@' of the authority */
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (ulen == 0 || uri_pct_decode(p, ulen, out->user, sizeof(out->user)) != 0)
            return err_set(e, ERR_INVALID_REQUEST, "user name empty, too long or badly encoded");
        if (colon) {
            if (uri_pct_decode(colon + 1, (size_t)(at - colon - 1), out->password,
                               sizeof(out->password)) != 0) {
                rc = err_set(e, ERR_INVALID_REQUEST, "password too long or badly encoded");
                goto fail;
            }
            out->has_password = 1;
        }
        p = at + 1;
    }
    if ((rc = parse_host_port(p, auth_end, out, e)) != 0)
        goto fail;
    if (query && (rc = parse_query(query, out, password_file, e)) != 0)
        goto fail;
    if (out->n_topics == 0 &&
        (rc = parse_topics(MQIN_DEFAULT_TOPICS, strlen(MQIN_DEFAULT_TOPICS), out, e)) != 0)
        goto fail;
    if (password_file[0]) {
        if (out->has_password) {
            rc = err_set(e, ERR_INVALID_REQUEST, "password given twice (URL and password_file)");
            goto fail;
        }
        if ((rc = read_password_file(password_file, out->password, sizeof(out->password), e)) != 0)
            goto fail;
        out->has_password = 1;
    }
    if (out->has_password && out->user[0] == '\0') {
        rc = err_set(e, ERR_INVALID_REQUEST, "a password needs a user name");
        goto fail;
    }
    if (out->ca_file[0] && !out->tls) {
        rc = err_set(e, ERR_INVALID_REQUEST, "ca_file needs mqtts://");
        goto fail;
    }
    /* the display URL: the original text without ":password" */
    {
        size_t head = (size_t)(scheme_end - url);
        const char *user_end = at ? p - 1 : NULL; /* at '@' */
        const char *colon = at ? memchr(scheme_end, ':', (size_t)(at - scheme_end)) : NULL;
        if (at && colon)
            snprintf(out->url, sizeof(out->url), "%.*s%.*s%s", (int)head, url,
                     (int)(colon - scheme_end), scheme_end, user_end);
        else
            snprintf(out->url, sizeof(out->url), "%s", url);
    }
    return 0;
fail:
    memset(out->password, 0, sizeof(out->password));
    out->has_password = 0;
    return rc;
}

/* ---- connection thread ------------------------------------------------------------ */

static int64_t mono_us(void)
{
    return tm_mono_us();
}

/* 1 if the limiter lets a line through now; note[cap] gets a remark on the
 * lines held back since the last one ("" when none). */
static int limiter_ok(struct limiter *l, char *note, size_t cap)
{
    int64_t now = mono_us();
    if (l->last_us && now - l->last_us < LOG_EVERY_US) {
        l->suppressed++;
        return 0;
    }
    l->last_us = now;
    if (l->suppressed)
        snprintf(note, cap, " (and %u more not logged)", l->suppressed);
    else
        note[0] = '\0';
    l->suppressed = 0;
    return 1;
}

static void conn_error(struct conn *c, int down, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the last error (and, when down, that the connection is down, in
 * the same critical section so status never shows one without the other)
 * and log it, rate-limited. Connection thread. */
static void conn_error(struct conn *c, int down, const char *fmt, ...)
{
    char text[ERROR_MAX], note[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->mu);
    memcpy(c->last_error, text, sizeof(text));
    if (down) {
        c->connected = 0;
        c->subscribed = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (limiter_ok(&c->log_errors, note, sizeof(note)))
        log_msg(LOG_WARN, "ingest: mqtt %s: %s%s", c->conf.url, text, note);
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct conn *c = ud;
    char *topics[MQIN_MAX_TOPICS];
    int src;

    if (rc != 0) {
        conn_error(c, 1, "broker refused the connection: %s", mosquitto_connack_string(rc));
        return;
    }
    c->up_since_us = mono_us();
    pthread_mutex_lock(&c->mu);
    c->connected = 1;
    c->subscribed = 0;
    if (c->n_connects++ > 0)
        c->reconnects++;
    c->last_connected_ms = tm_now_ms();
    pthread_mutex_unlock(&c->mu);
    c->log_errors.last_us = 0; /* the next error after an outage is always logged */
    log_msg(LOG_INFO, "ingest: mqtt %s connected (tenant '%s', %zu topics)", c->conf.url,
            c->conf.tenant, c->conf.n_topics);
    for (size_t i = 0; i < c->conf.n_topics; i++)
        topics[i] = c->conf.topics[i];
    src = mosquitto_subscribe_multiple(mosq, &c->sub_mid, (int)c->conf.n_topics, topics,
                                       c->conf.qos, 0, NULL);
    if (src != MOSQ_ERR_SUCCESS)
        conn_error(c, 0, "cannot subscribe: %s", mosquitto_strerror(src));
}

static void on_subscribe(struct mosquitto *mosq, void *ud, int mid, int n, const int *granted)
{
    struct conn *c = ud;
    int ok = 1;
    (void)mosq;
    if (mid != c->sub_mid)
        return;
    for (int i = 0; i < n && (size_t)i < c->conf.n_topics; i++)
        if (granted[i] < 0 || granted[i] > 2) {
            ok = 0;
            conn_error(c, 0, "broker refused the subscription to '%.80s'", c->conf.topics[i]);
        }
    pthread_mutex_lock(&c->mu);
    c->subscribed = ok && (size_t)n == c->conf.n_topics;
    pthread_mutex_unlock(&c->mu);
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
    struct conn *c = ud;
    struct mqin *m = c->owner;
    char note[48];
    bool match = false;
    (void)mosq;

    if (msg->payloadlen < 0 || (size_t)msg->payloadlen > MQIN_MAX_MESSAGE) {
        COUNT(c->too_large);
        if (limiter_ok(&c->log_drops, note, sizeof(note)))
            log_msg(LOG_WARN,
                    "ingest: mqtt %s: dropped a message of %d bytes on '%.80s' (limit %d)%s",
                    c->conf.url, msg->payloadlen, msg->topic, MQIN_MAX_MESSAGE, note);
        return;
    }
    for (size_t i = 0; i < c->conf.n_topics && !match; i++)
        if (mosquitto_topic_matches_sub(match_filter(c->conf.topics[i]), msg->topic, &match) !=
            MOSQ_ERR_SUCCESS)
            match = false;
    if (!match) {
        COUNT(c->unsubscribed);
        if (limiter_ok(&c->log_drops, note, sizeof(note)))
            log_msg(LOG_WARN,
                    "ingest: mqtt %s: dropped a message on '%.80s', which no configured topic "
                    "matches%s",
                    c->conf.url, msg->topic, note);
        return;
    }
    COUNT(c->messages);
    m->fn(m->ud, c->conf.tenant, msg->topic, msg->payload ? msg->payload : (const void *)"",
          (size_t)msg->payloadlen);
}

/* Wait ms, or less when stopping. */
static void nap(struct mqin *m, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    while (!STOPPING(m))
        if (pthread_cond_timedwait(&m->cond, &m->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&m->mu);
}

static const char *mosq_reason(int rc, int saved_errno)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(saved_errno) : mosquitto_strerror(rc);
}

/* Read the packets already in the socket without another select. */
static int read_burst(struct conn *c)
{
    for (int i = 0; i < BURST && !STOPPING(c->owner); i++) {
        int avail = 0, rc, sock = mosquitto_socket(c->mosq);
        if (sock < 0 || ioctl(sock, FIONREAD, &avail) != 0 || avail <= 0)
            break;
        if ((rc = mosquitto_loop_read(c->mosq, 1)) != MOSQ_ERR_SUCCESS)
            return rc;
    }
    return MOSQ_ERR_SUCCESS;
}

/* libmosquitto 2.0 initializes its TLS globals lazily, unguarded, during the
 * first TLS connect (two threads racing leak or corrupt them). So TLS
 * connects are serialized until one has created its TLS session. */
static pthread_mutex_t tls_first_mu = PTHREAD_MUTEX_INITIALIZER;
static int tls_ready; /* atomic */

static int conn_connect(struct conn *c, int first)
{
    int serial = c->conf.tls && !__atomic_load_n(&tls_ready, __ATOMIC_ACQUIRE), rc, saved;
    if (serial)
        pthread_mutex_lock(&tls_first_mu);
    rc = first ? mosquitto_connect_async(c->mosq, c->conf.host, c->conf.port, c->conf.keepalive)
               : mosquitto_reconnect_async(c->mosq);
    saved = errno;
    if (serial) {
        if (mosquitto_ssl_get(c->mosq) != NULL)
            __atomic_store_n(&tls_ready, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&tls_first_mu);
    }
    errno = saved;
    return rc;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct mqin *m = c->owner;

    pthread_setname_np(pthread_self(), "pl-mqtt-in");
    long delay = DELAY_MIN_MS;
    int linked = 0, first = 1;

    while (!STOPPING(m)) {
        int rc, saved;
        if (!linked) {
            rc = conn_connect(c, first);
            saved = errno;
            if (rc != MOSQ_ERR_SUCCESS) {
                conn_error(c, 1, "cannot connect to %.80s:%d: %s", c->conf.host, c->conf.port,
                           mosq_reason(rc, saved));
                nap(m, delay);
                delay = delay * 2 > DELAY_MAX_MS ? DELAY_MAX_MS : delay * 2;
                continue;
            }
            first = 0;
            linked = 1;
        }
        rc = mosquitto_loop(c->mosq, LOOP_MS, 1);
        saved = errno;
        if (rc == MOSQ_ERR_SUCCESS) {
            rc = read_burst(c);
            saved = errno;
        }
        if (rc == MOSQ_ERR_SUCCESS)
            continue;
        /* lost, refused (on_connect said why) or never established */
        linked = 0;
        if (rc != MOSQ_ERR_CONN_REFUSED)
            conn_error(c, 1, "connection to %.80s:%d lost: %s", c->conf.host, c->conf.port,
                       mosq_reason(rc, saved));
        if (c->up_since_us && mono_us() - c->up_since_us >= STABLE_MS * 1000LL)
            delay = DELAY_MIN_MS;
        c->up_since_us = 0;
        nap(m, delay);
        delay = delay * 2 > DELAY_MAX_MS ? DELAY_MAX_MS : delay * 2;
    }
    if (linked) {
        /* DISCONNECT keeps a persistent session at the broker */
        mosquitto_disconnect(c->mosq);
        mosquitto_loop(c->mosq, 10, 1);
    }
    pthread_mutex_lock(&c->mu);
    c->connected = 0;
    c->subscribed = 0;
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static unsigned long next_client_n = 0; /* atomic: unique default client ids */

static int conn_init(struct mqin *m, struct conn *c, const struct mqin_conf *conf, struct err *e)
{
    int rc;
    c->owner = m;
    c->conf = *conf;
    pthread_mutex_init(&c->mu, NULL);
    if (c->conf.client_id[0] == '\0') {
        char host[64] = "";
        unsigned long n = __atomic_add_fetch(&next_client_n, 1, __ATOMIC_RELAXED);
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "host");
        host[40] = '\0';
        snprintf(c->conf.client_id, sizeof(c->conf.client_id), "pilotlight-%s-%ld-%lu", host,
                 (long)getpid(), n);
        c->conf.clean_session = 1;
    }
    if ((c->mosq = mosquitto_new(c->conf.client_id, c->conf.clean_session != 0, c)) == NULL)
        return err_set(e, errno == ENOMEM ? ERR_NOMEM : ERR_INTERNAL,
                       "%s: cannot create an MQTT client", c->conf.url);
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_subscribe_callback_set(c->mosq, on_subscribe);
    mosquitto_message_callback_set(c->mosq, on_message);
    if (c->conf.user[0] &&
        (rc = mosquitto_username_pw_set(c->mosq, c->conf.user,
                                        c->conf.has_password ? c->conf.password : NULL)) != 0) {
        memset(c->conf.password, 0, sizeof(c->conf.password));
        return err_set(e, rc == MOSQ_ERR_NOMEM ? ERR_NOMEM : ERR_INVALID_REQUEST,
                       "%s: cannot set the MQTT credentials: %s", c->conf.url,
                       mosquitto_strerror(rc));
    }
    memset(c->conf.password, 0, sizeof(c->conf.password));
    if (c->conf.tls &&
        (rc = mosquitto_tls_set(c->mosq, c->conf.ca_file[0] ? c->conf.ca_file : NULL,
                                c->conf.ca_file[0] ? NULL : CA_PATH, NULL, NULL, NULL)) != 0)
        return err_set(e, rc == MOSQ_ERR_NOMEM ? ERR_NOMEM : ERR_INVALID_REQUEST,
                       "%s: cannot set up TLS: %s", c->conf.url, mosquitto_strerror(rc));
    return 0;
}

int mqin_start(const struct mqin_conf *confs, size_t n, mqin_msg_fn fn, void *ud, struct mqin **out,
               struct err *e)
{
    struct mqin *m = NULL;
    int rc;

    *out = NULL;
    if (n > MQIN_MAX_CONNS)
        return err_set(e, ERR_INVALID_REQUEST, "at most %d MQTT ingest connections",
                       MQIN_MAX_CONNS);
    if (fn == NULL || (n > 0 && confs == NULL))
        return err_set(e, ERR_INVALID_REQUEST, "mqin_start: no callback or no configurations");
    for (size_t i = 0; i < n; i++)
        if ((confs[i].qos != 0 && confs[i].qos != 1) || confs[i].n_topics == 0 ||
            confs[i].n_topics > MQIN_MAX_TOPICS || confs[i].host[0] == '\0')
            return err_set(e, ERR_INVALID_REQUEST, "connection %zu: not parsed by mqin_parse",
                           i + 1);
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    m->fn = fn;
    m->ud = ud;
    pthread_mutex_init(&m->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&m->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (n == 0) {
        *out = m;
        return 0;
    }
    if ((m->conns = calloc(n, sizeof(*m->conns))) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    mosquitto_lib_init();
    m->lib_ready = 1;
    for (size_t i = 0; i < n; i++) {
        m->n_conns++; /* counted before init: stop cleans a half-built one */
        if ((rc = conn_init(m, &m->conns[i], &confs[i], e)) != 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&m->conns[i].thread, NULL, conn_main, &m->conns[i]) != 0) {
            rc = err_set(e, ERR_INTERNAL, "cannot start an MQTT ingest thread");
            goto fail;
        }
        m->conns[i].started = 1;
    }
    *out = m;
    return 0;
fail:
    mqin_stop(m);
    return rc;
}

void mqin_stop(struct mqin *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    __atomic_store_n(&m->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < m->n_conns; i++)
        if (m->conns[i].started)
            pthread_join(m->conns[i].thread, NULL);
    for (size_t i = 0; i < m->n_conns; i++) {
        struct conn *c = &m->conns[i];
        if (c->mosq)
            mosquitto_destroy(c->mosq);
        memset(c->conf.password, 0, sizeof(c->conf.password));
        pthread_mutex_destroy(&c->mu);
    }
    if (m->lib_ready)
        mosquitto_lib_cleanup();
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    free(m->conns);
    free(m);
}

cJSON *mqin_status(struct mqin *m)
{
    cJSON *arr;
    if (m == NULL || (arr = cJSON_CreateArray()) == NULL)
        return NULL;
    for (size_t i = 0; i < m->n_conns; i++) {
        struct conn *c = &m->conns[i];
        char last_error[ERROR_MAX], at[TM_ISO_LEN];
        int connected, subscribed;
        unsigned long reconnects;
        int64_t last_ms;
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(arr, o))
            goto fail;
        pthread_mutex_lock(&c->mu);
        connected = c->connected;
        subscribed = c->subscribed;
        reconnects = c->reconnects;
        last_ms = c->last_connected_ms;
        memcpy(last_error, c->last_error, sizeof(last_error));
        pthread_mutex_unlock(&c->mu);
        if (last_ms)
            tm_format(last_ms, at);
        if (!cJSON_AddStringToObject(o, "url", c->conf.url) ||
            !cJSON_AddStringToObject(o, "tenant", c->conf.tenant) ||
            !cJSON_AddStringToObject(o, "clientId", c->conf.client_id) ||
            !cJSON_AddBoolToObject(o, "connected", connected) ||
            !cJSON_AddBoolToObject(o, "subscribed", subscribed) ||
            !cJSON_AddNumberToObject(o, "messages",
                                     (double)__atomic_load_n(&c->messages, __ATOMIC_RELAXED)) ||
            !cJSON_AddNumberToObject(o, "tooLarge",
                                     (double)__atomic_load_n(&c->too_large, __ATOMIC_RELAXED)) ||
            !cJSON_AddNumberToObject(o, "unsubscribed",
                                     (double)__atomic_load_n(&c->unsubscribed, __ATOMIC_RELAXED)) ||
            !cJSON_AddNumberToObject(o, "reconnects", (double)reconnects) ||
            !(last_error[0] ? cJSON_AddStringToObject(o, "lastError", last_error)
                            : cJSON_AddNullToObject(o, "lastError")) ||
            !(last_ms ? cJSON_AddStringToObject(o, "lastConnectedAt", at)
                      : cJSON_AddNullToObject(o, "lastConnectedAt")))
            goto fail;
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}
