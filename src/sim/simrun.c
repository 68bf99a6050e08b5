/*
 * simrun.c - sim_run (publishing at a rate over MQTT or the webhooks) and
 * sim_main (`pilotlight simulate`); see sim.h.
 *
 * Pacing: message k is due at base + (k - k_base) / rate on the monotonic
 * clock; the loop sleeps until then in slices of at most 100 ms (so stop,
 * duration and progress are noticed). When it falls more than a second
 * behind, the schedule restarts from now rather than sending the backlog
 * in a burst. rate 0 sends as fast as the transport takes messages.
 *
 * MQTT: one libmosquitto handle driven by its own thread (loop_start),
 * which also reconnects (1 s doubling to 5 s). The run's mutex guards the
 * counters the callbacks update: published (handed to libmosquitto), done
 * (on_publish: written for QoS 0, PUBACK for QoS 1) and lost (QoS 0
 * messages still queued when the connection dropped: libmosquitto does not
 * send them again). The publisher waits while 1,000 are in flight, which
 * bounds libmosquitto's queue, and only publishes while connected.
 * Lock order: only run->mu; libmosquitto is never called with it held.
 *
 * Webhook: one curl easy handle (keep-alive), the answer body discarded.
 */
#include "sim/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <mosquitto.h>

#include "notify/mqtt.h"
#include "util/time.h"

#define WINDOW 1000       /* MQTT messages in flight at most */
#define SLICE_US 100000   /* longest sleep between checks */
#define BEHIND_US 1000000 /* restart the schedule when this late */
#define PROGRESS_US 5000000
#define DRAIN_US 10000000 /* wait for in-flight messages at the end */
#define CONNECT_US 5000000
#define HTTP_TIMEOUT_S 10
#define MAX_URL 2048

struct run {
    const struct sim_conf *c;
    volatile int *stop;
    /* MQTT */
    struct mosquitto *m;
    struct mqtt_uri uri;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int lib_init, loop_started;
    int connected, conn_seen, conn_rc;
    long published, done, lost;
    /* webhook */
    CURL *curl;
    struct curl_slist *headers;
    char url_up[MAX_URL], url_status[MAX_URL], url_tts[MAX_URL];
    char errbuf[CURL_ERROR_SIZE];
    /* both */
    long sent, failed;
};

static int stopped(const struct run *r)
{
    return r->stop != NULL && *r->stop;
}

static void sleep_us(int64_t us)
{
    struct timespec ts;
    if (us <= 0)
        return;
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* wait on r->cond (r->mu held) for at most us microseconds */
static void cond_wait_us(struct run *r, int64_t us)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(us / 1000000);
    ts.tv_nsec += (long)(us % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&r->cond, &r->mu, &ts);
}

static int check_conf(const struct sim_conf *c, struct err *e)
{
    if (c->n_devices < 1 || c->n_devices > 10000000)
        return err_set(e, ERR_INVALID_REQUEST, "devices must be 1..10000000");
    if (!(c->rate >= 0) || c->rate > 1e7)
        return err_set(e, ERR_INVALID_REQUEST, "rate must be 0 (as fast as possible) .. 1e7");
    if (c->count < 0)
        return err_set(e, ERR_INVALID_REQUEST, "count must be >= 0");
    if (!(c->duration_s >= 0))
        return err_set(e, ERR_INVALID_REQUEST, "duration must be >= 0");
    if (c->format != NULL && strcmp(c->format, "chirpstack-v4") != 0 &&
        strcmp(c->format, "tts-v3") != 0 && strcmp(c->format, "mix") != 0)
        return err_set(e, ERR_INVALID_REQUEST, "format must be chirpstack-v4, tts-v3 or mix");
    if (!(c->lat >= -89 && c->lat <= 89) || !(c->lon >= -180 && c->lon <= 180))
        return err_set(e, ERR_INVALID_REQUEST, "lat must be -89..89 and lon -180..180");
    if (!(c->radius_m >= 0 && c->radius_m <= 100000))
        return err_set(e, ERR_INVALID_REQUEST, "radius must be 0..100000 m");
    if (c->qos != 0 && c->qos != 1)
        return err_set(e, ERR_INVALID_REQUEST, "qos must be 0 or 1");
    if ((c->mqtt_url != NULL) == (c->webhook_url != NULL))
        return err_set(e, ERR_INVALID_REQUEST, "give exactly one of an MQTT or a webhook URL");
    return 0;
}

/* --- MQTT ------------------------------------------------------------------------ */

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    struct run *r = ud;
    (void)m;
    pthread_mutex_lock(&r->mu);
    r->connected = rc == 0;
    r->conn_seen = 1;
    r->conn_rc = rc;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    struct run *r = ud;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&r->mu);
    r->connected = 0;
    if (r->c->qos == 0)
        r->lost = r->published - r->done; /* queued QoS 0 messages are dropped */
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct run *r = ud;
    (void)m;
    (void)mid;
    pthread_mutex_lock(&r->mu);
    r->done++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static int mqtt_start(struct run *r, struct err *e)
{
    char url[MAX_URL];
    const char *u = r->c->mqtt_url, *scheme_end = strstr(u, "://");
    const char *path = scheme_end != NULL ? strchr(scheme_end + 3, '/') : NULL;
    size_t base_len = path != NULL ? (size_t)(path - u) : strlen(u);
    int64_t deadline;
    int rc;

    /* reuse the notification URI parser: it wants a topic, give it one */
    if (base_len + 3 > sizeof(url))
        return err_set(e, ERR_INVALID_REQUEST, "MQTT URL too long");
    memcpy(url, u, base_len);
    memcpy(url + base_len, "/x", 3);
    if (mqtt_uri_parse(url, &r->uri, e) != 0)
        return ERR_INVALID_REQUEST;
    mosquitto_lib_init();
    r->lib_init = 1;
    if ((r->m = mosquitto_new(NULL, true, r)) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    mosquitto_connect_callback_set(r->m, on_connect);
    mosquitto_disconnect_callback_set(r->m, on_disconnect);
    mosquitto_publish_callback_set(r->m, on_publish);
    mosquitto_reconnect_delay_set(r->m, 1, 5, true);
    mosquitto_int_option(r->m, MOSQ_OPT_SEND_MAXIMUM, WINDOW);
    if (r->uri.user[0] && mosquitto_username_pw_set(
                              r->m, r->uri.user, r->uri.has_password ? r->uri.password : NULL) != 0)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (r->uri.tls && mosquitto_tls_set(r->m, NULL, "/etc/ssl/certs", NULL, NULL, NULL) != 0)
        return err_set(e, ERR_IO, "MQTT: TLS setup failed");
    rc = mosquitto_connect(r->m, r->uri.host, r->uri.port, 30);
    if (rc != MOSQ_ERR_SUCCESS)
        return err_set(e, ERR_IO, "MQTT: cannot connect to %s:%d: %s", r->uri.host, r->uri.port,
                       rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    if ((rc = mosquitto_loop_start(r->m)) != MOSQ_ERR_SUCCESS)
        return err_set(e, ERR_IO, "MQTT: cannot start the network thread: %s",
                       mosquitto_strerror(rc));
    r->loop_started = 1;
    deadline = tm_mono_us() + CONNECT_US;
    pthread_mutex_lock(&r->mu);
    while (!r->conn_seen && !stopped(r) && tm_mono_us() < deadline)
        cond_wait_us(r, SLICE_US);
    rc = r->connected ? 0 : r->conn_seen ? r->conn_rc : -1;
    pthread_mutex_unlock(&r->mu);
    if (rc != 0)
        return err_set(e, ERR_IO, "MQTT: broker %s:%d %s", r->uri.host, r->uri.port,
                       rc > 0 ? mosquitto_connack_string(rc) : "did not answer CONNECT");
    return 0;
}

static void mqtt_send(struct run *r, const char *topic, const char *json)
{
    int64_t deadline = 0;
    int rc;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (stopped(r))
            break;
        if (!r->connected) {
            /* give a reconnect a moment, then count the message failed */
            if (deadline == 0)
                deadline = tm_mono_us() + SLICE_US * 10;
            else if (tm_mono_us() >= deadline)
                break;
        } else if (r->published - r->done - r->lost < WINDOW)
            break;
        cond_wait_us(r, SLICE_US);
    }
    if (stopped(r)) { /* never attempted: neither sent nor failed */
        pthread_mutex_unlock(&r->mu);
        return;
    }
    if (!r->connected) {
        pthread_mutex_unlock(&r->mu);
        r->failed++;
        return;
    }
    r->published++; /* before the call: on_publish may run before it returns */
    pthread_mutex_unlock(&r->mu);
    rc = mosquitto_publish(r->m, NULL, topic, (int)strlen(json), json, r->c->qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        pthread_mutex_lock(&r->mu);
        r->published--;
        pthread_mutex_unlock(&r->mu);
        r->failed++;
    }
}

static void mqtt_finish(struct run *r)
{
    int64_t deadline = tm_mono_us() + DRAIN_US;

    if (r->m == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    while (r->published - r->done - r->lost > 0 && tm_mono_us() < deadline)
        cond_wait_us(r, SLICE_US);
    r->sent = r->done < r->published ? r->done : r->published;
    r->failed += r->published - r->sent;
    pthread_mutex_unlock(&r->mu);
    mosquitto_disconnect(r->m);
    mosquitto_loop_stop(r->m, false);
    r->loop_started = 0;
}

/* --- webhook ------------------------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static int http_start(struct run *r, struct err *e)
{
    const char *base = r->c->webhook_url;
    size_t len = strlen(base);
    char hdr[1100];

    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
        return err_set(e, ERR_INVALID_REQUEST, "webhook URL must start with http:// or https://");
    while (len > 0 && base[len - 1] == '/')
        len--;
    if (len + 64 > MAX_URL)
        return err_set(e, ERR_INVALID_REQUEST, "webhook URL too long");
    snprintf(r->url_up, sizeof(r->url_up), "%.*s/pilotlight/v1/ingest/chirpstack?event=up",
             (int)len, base);
    snprintf(r->url_status, sizeof(r->url_status),
             "%.*s/pilotlight/v1/ingest/chirpstack?event=status", (int)len, base);
    snprintf(r->url_tts, sizeof(r->url_tts), "%.*s/pilotlight/v1/ingest/tts", (int)len, base);
    if ((r->curl = curl_easy_init()) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((r->headers = curl_slist_append(NULL, "Content-Type: application/json")) == NULL ||
        curl_slist_append(r->headers, "Expect:") == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (r->c->secret != NULL) {
        if (strlen(r->c->secret) > 1000 || strpbrk(r->c->secret, "\r\n") != NULL)
            return err_set(e, ERR_INVALID_REQUEST, "secret too long or not one line");
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", r->c->secret);
        if (curl_slist_append(r->headers, hdr) == NULL)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (r->c->tenant != NULL && r->c->tenant[0]) {
        if (strlen(r->c->tenant) > 1000 || strpbrk(r->c->tenant, "\r\n") != NULL)
            return err_set(e, ERR_INVALID_REQUEST, "tenant too long or not one line");
        snprintf(hdr, sizeof(hdr), "NGSILD-Tenant: %s", r->c->tenant);
        if (curl_slist_append(r->headers, hdr) == NULL)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, (long)HTTP_TIMEOUT_S);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->curl, CURLOPT_TCP_NODELAY, 1L);
    return 0;
}

/* POST one message; returns 0 sent, 1 answered non-2xx, -1 transport error. */
static int http_send(struct run *r, const char *url, const char *json)
{
    long status = 0;
    CURLcode cc;

    r->errbuf[0] = '\0';
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
    cc = curl_easy_perform(r->curl);
    if (cc != CURLE_OK)
        return -1;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300 ? 0 : 1;
}

/* --- the run -------------------------------------------------------------------------- */

static void progress(struct run *r, int64_t t0, long k)
{
    double s = (double)(tm_mono_us() - t0) / 1e6;
    long sent = r->sent, failed = r->failed;

    if (r->m != NULL) {
        pthread_mutex_lock(&r->mu);
        sent = r->done;
        pthread_mutex_unlock(&r->mu);
    }
    fprintf(stderr, "simulate: %.0f s, %ld generated, %ld sent, %ld failed, %.0f msg/s\n", s, k,
            sent, failed, s > 0 ? (double)sent / s : 0.0);
}

int sim_run(const struct sim_conf *c, volatile int *stop, struct sim_stats *st, struct err *e)
{
    struct run *r;
    int64_t t0, base, next_progress;
    long k = 0, k_base = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    if ((rc = check_conf(c, e)) != 0)
        return rc;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    r->c = c;
    r->stop = stop;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    rc = c->mqtt_url != NULL ? mqtt_start(r, e) : http_start(r, e);
    if (rc != 0)
        goto out;

    t0 = base = tm_mono_us();
    next_progress = t0 + PROGRESS_US;
    while (!stopped(r) && (c->count == 0 || k < c->count)) {
        int64_t now = tm_mono_us();
        char topic[160], *json = NULL;
        struct err me = {0};
        int i = (int)(k % c->n_devices), tts;
        long seq = k / c->n_devices;

        if (c->duration_s > 0 && (double)(now - t0) >= c->duration_s * 1e6)
            break;
        if (c->progress && now >= next_progress) {
            progress(r, t0, k);
            next_progress += PROGRESS_US;
        }
        if (c->rate > 0) {
            int64_t due = base + (int64_t)((double)(k - k_base) * 1e6 / c->rate);
            if (due > now) {
                sleep_us(due - now < SLICE_US ? due - now : SLICE_US);
                continue;
            }
            if (now - due > BEHIND_US) {
                base = now;
                k_base = k;
            }
        }
        if (seq > 4294967295L)
            break; /* every device's fCnt would wrap */
        tts = sim_device_tts(c, i);
        if (sim_message(c, i, seq, tm_now_ms(), tts, &json, topic, sizeof(topic), &me) != 0) {
            r->failed++;
            k++;
            continue;
        }
        if (r->m != NULL)
            mqtt_send(r, topic, json);
        else {
            const char *url = tts                              ? r->url_tts
                              : strstr(topic, "/event/status") ? r->url_status
                                                               : r->url_up;
            int hs = http_send(r, url, json);
            if (hs == 0)
                r->sent++;
            else if (hs < 0 && k == 0) {
                rc = err_set(e, ERR_IO, "webhook: cannot reach %s: %s", c->webhook_url,
                             r->errbuf[0] ? r->errbuf : "transport error");
                free(json);
                goto out;
            } else {
                r->failed++;
                if (hs < 0)
                    sleep_us(SLICE_US); /* hub away: do not spin */
            }
        }
        free(json);
        k++;
    }
    mqtt_finish(r);
    st->sent = r->sent;
    st->failed = r->failed;
    st->elapsed_s = (double)(tm_mono_us() - t0) / 1e6;
    if (c->progress)
        progress(r, t0, k);
out:
    if (r->loop_started) {
        mosquitto_disconnect(r->m);
        mosquitto_loop_stop(r->m, false);
    }
    if (r->m != NULL)
        mosquitto_destroy(r->m);
    if (r->lib_init)
        mosquitto_lib_cleanup();
    curl_slist_free_all(r->headers);
    curl_easy_cleanup(r->curl);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return rc;
}

/* --- the command line ------------------------------------------------------------------- */

static volatile int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pilotlight simulate (--mqtt URL | --webhook URL) [options]\n"
            "       pilotlight simulate --print-profiles | --print-devices [options]\n"
            "       pilotlight simulate --bench-generate N [options]\n\n"
            "Publishes realistic LoRaWAN uplinks (ChirpStack v4 / The Things Stack v3 JSON)\n"
            "of simulated air-quality nodes, light posts with pedestrian counters and water\n"
            "sensors.\n\n"
            "  --mqtt URL          mqtt[s]://[user[:password]@]host[:port] (topics as the\n"
            "                      network servers use them)\n"
            "  --webhook URL       hub base URL, e.g. http://127.0.0.1:1026 (POSTs to\n"
            "                      /pilotlight/v1/ingest/chirpstack?event=up|status and /tts)\n"
            "  --secret S          ingest secret (Authorization: Bearer S) for the webhook\n"
            "  --tenant T          NGSILD-Tenant for the webhook (default: default tenant)\n"
            "  --devices N         number of devices (default 60)\n"
            "  --rate R            messages per second, all devices (default 5; 0 = as fast\n"
            "                      as possible)\n"
            "  --count N           stop after N messages (default: no limit)\n"
            "  --duration S        stop after S seconds (default: no limit)\n"
            "  --format F          chirpstack-v4 | tts-v3 | mix (default chirpstack-v4)\n"
            "  --seed N            device and value seed (default 1)\n"
            "  --qos 0|1           MQTT QoS (default 0)\n"
            "  --lat X --lon Y     centre (default the demo city, 52.37 N 4.89 E)\n"
            "  --radius M          devices within M metres of the centre (default 1500)\n"
            "  --print-profiles    print the device profiles (JSON) and exit\n"
            "  --print-devices     print the device list (JSON) and exit\n"
            "  --bench-generate N  generate N messages without sending, print messages/s\n"
            "  --quiet             no progress lines\n\n"
            "Progress every 5 s on stderr; at the end one line on stdout:\n"
            "  sent=N failed=N elapsed=S rate=R\n"
            "Exit status: 0 all sent, 1 could not start or some failed, 2 usage error.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* `pilotlight simulate --bench-generate N`: messages/s of sim_message alone */
static int bench_generate(const struct sim_conf *c, long n)
{
    int64_t t0 = tm_mono_us(), t_ms = tm_now_ms();
    size_t bytes = 0;
    char topic[160], *json;
    struct err e = {0};

    for (long k = 0; k < n; k++) {
        int i = (int)(k % c->n_devices);
        if (sim_message(c, i, k / c->n_devices, t_ms + k, sim_device_tts(c, i), &json, topic,
                        sizeof(topic), &e) != 0) {
            fprintf(stderr, "pilotlight simulate: %s\n", e.detail);
            return 1;
        }
        bytes += strlen(json);
        free(json);
    }
    double s = (double)(tm_mono_us() - t0) / 1e6;
    printf("generated=%ld elapsed=%.3f rate=%.0f avg_bytes=%.0f\n", n, s,
           s > 0 ? (double)n / s : 0.0, n > 0 ? (double)bytes / (double)n : 0.0);
    return 0;
}

int sim_main(int argc, char **argv)
{
    struct sim_conf c;
    struct sim_stats st;
    struct err e = {0};
    struct sigaction sa;
    long bench = -1, lv;
    int print_profiles = 0, print_devices = 0, quiet = 0, rc;

    sim_conf_defaults(&c);
    for (int k = 2; k < argc; k++) {
        const char *arg = argv[k], *val = NULL;
        char name[32];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 0;
        }
        if (nlen >= sizeof(name) || strncmp(arg, "--", 2) != 0)
            goto bad_arg;
        memcpy(name, arg + 2, nlen - 2);
        name[nlen - 2] = '\0';
        if (!strcmp(name, "print-profiles") || !strcmp(name, "print-devices") ||
            !strcmp(name, "quiet")) {
            if (eq != NULL)
                goto bad_arg;
            *(!strcmp(name, "quiet")            ? &quiet
              : !strcmp(name, "print-profiles") ? &print_profiles
                                                : &print_devices) = 1;
            continue;
        }
        if (eq != NULL)
            val = eq + 1;
        else if (k + 1 < argc)
            val = argv[++k];
        else {
            fprintf(stderr, "pilotlight simulate: %s needs a value (try --help)\n", arg);
            return 2;
        }
        if (!strcmp(name, "mqtt"))
            c.mqtt_url = val;
        else if (!strcmp(name, "webhook"))
            c.webhook_url = val;
        else if (!strcmp(name, "secret"))
            c.secret = val;
        else if (!strcmp(name, "tenant"))
            c.tenant = val;
        else if (!strcmp(name, "format"))
            c.format = val;
        else if (!strcmp(name, "devices")) {
            if (parse_long(val, 1, 10000000, &lv) != 0)
                goto bad_value;
            c.n_devices = (int)lv;
        } else if (!strcmp(name, "rate")) {
            if (parse_double(val, 0, 1e7, &c.rate) != 0)
                goto bad_value;
        } else if (!strcmp(name, "count")) {
            if (parse_long(val, 0, LONG_MAX, &c.count) != 0)
                goto bad_value;
        } else if (!strcmp(name, "duration")) {
            if (parse_double(val, 0, 1e9, &c.duration_s) != 0)
                goto bad_value;
        } else if (!strcmp(name, "seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (errno || end == val || *end || val[0] == '-')
                goto bad_value;
            c.seed = (uint64_t)s;
        } else if (!strcmp(name, "qos")) {
            if (parse_long(val, 0, 1, &lv) != 0)
                goto bad_value;
            c.qos = (int)lv;
        } else if (!strcmp(name, "lat")) {
            if (parse_double(val, -89, 89, &c.lat) != 0)
                goto bad_value;
        } else if (!strcmp(name, "lon")) {
            if (parse_double(val, -180, 180, &c.lon) != 0)
                goto bad_value;
        } else if (!strcmp(name, "radius")) {
            if (parse_double(val, 0, 100000, &c.radius_m) != 0)
                goto bad_value;
        } else if (!strcmp(name, "bench-generate")) {
            if (parse_long(val, 1, LONG_MAX, &bench) != 0)
                goto bad_value;
        } else
            goto bad_arg;
        continue;
    bad_value:
        fprintf(stderr, "pilotlight simulate: bad value '%s' for --%s (try --help)\n", val, name);
        return 2;
    bad_arg:
        fprintf(stderr, "pilotlight simulate: unknown argument '%s' (try --help)\n", arg);
        return 2;
    }

    if (print_profiles || print_devices) {
        cJSON *j = print_profiles ? sim_profiles_json() : sim_devices_json(&c);
        char *text = j != NULL ? cJSON_Print(j) : NULL;
        cJSON_Delete(j);
        if (text == NULL) {
            fprintf(stderr, "pilotlight simulate: out of memory\n");
            return 1;
        }
        puts(text);
        free(text);
        return 0;
    }
    if (bench > 0)
        return bench_generate(&c, bench);

    c.progress = !quiet;
    if ((rc = check_conf(&c, &e)) != 0) {
        fprintf(stderr, "pilotlight simulate: %s (try --help)\n", e.detail);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = sim_run(&c, &g_stop, &st, &e);
    curl_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "pilotlight simulate: %s\n", e.detail);
        return rc == ERR_INVALID_REQUEST ? 2 : 1;
    }
    printf("sent=%ld failed=%ld elapsed=%.3f rate=%.1f\n", st.sent, st.failed, st.elapsed_s,
           st.elapsed_s > 0 ? (double)st.sent / st.elapsed_s : 0.0);
    fflush(stdout);
    return st.failed == 0 ? 0 : 1;
}
