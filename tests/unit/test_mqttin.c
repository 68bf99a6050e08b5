/*
 * test_mqttin.c - the incoming MQTT connections (src/ingest/mqttin.c)
 * against a real mosquitto broker started by the test on a free loopback
 * port: exact delivery (tenant, topic, payload) of subscribed topics only,
 * the size limit, broker restart, persistent sessions, a broker down at
 * start, authentication (password and password_file), TLS with a CA file;
 * plus the URL parser (a table of bad URLs with their exact details) and
 * the repeatable config key.
 *
 * Every broker is a child process (killed in teardown, also when a test
 * fails, and by PR_SET_PDEATHSIG if this process dies); every mqin handle
 * is stopped in teardown. Waits are for conditions with a generous
 * deadline, never fixed sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "ingest/mqttin.h"
#include "util/cfg.h"
#include "util/log.h"
#include "util/time.h"

#define DEADLINE_MS 30000
#define MAX_RECS 256
#define MAX_KIDS 8
#define MAX_HANDLES 4

/* ---- what the callback received ------------------------------------------------ */

struct rec {
    char tenant[MQIN_MAX_TENANT];
    char topic[256];
    unsigned char *payload;
    size_t len;
};

static struct sink {
    pthread_mutex_t mu;
    struct rec recs[MAX_RECS];
    size_t n;
    size_t overflow;
} sink = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_msg(void *ud, const char *tenant, const char *topic, const void *payload, size_t len)
{
    struct sink *s = ud;
    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_RECS) {
        struct rec *r = &s->recs[s->n];
        snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
        snprintf(r->topic, sizeof(r->topic), "%s", topic);
        r->payload = malloc(len ? len : 1);
        if (r->payload)
            memcpy(r->payload, payload, len);
        r->len = len;
        s->n++;
    } else
        s->overflow++;
    pthread_mutex_unlock(&s->mu);
}

static void sink_reset(void)
{
    pthread_mutex_lock(&sink.mu);
    for (size_t i = 0; i < sink.n; i++)
        free(sink.recs[i].payload);
    sink.n = 0;
    sink.overflow = 0;
    pthread_mutex_unlock(&sink.mu);
}

static size_t sink_count(void)
{
    pthread_mutex_lock(&sink.mu);
    size_t n = sink.n;
    pthread_mutex_unlock(&sink.mu);
    return n;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait until the sink holds at least n records. */
static int wait_recs(size_t n)
{
    int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL;
    while (tm_mono_us() < end) {
        if (sink_count() >= n)
            return 1;
        nap_ms(10);
    }
    return 0;
}

/* Find the index-th record of a tenant (in arrival order). */
static const struct rec *rec_of(const char *tenant, size_t index)
{
    for (size_t i = 0; i < sink.n; i++)
        if (strcmp(sink.recs[i].tenant, tenant) == 0 && index-- == 0)
            return &sink.recs[i];
    return NULL;
}

static void assert_rec(const struct rec *r, const char *tenant, const char *topic,
                       const void *payload, size_t len)
{
    assert_non_null(r);
    assert_string_equal(r->tenant, tenant);
    assert_string_equal(r->topic, topic);
    assert_int_equal(r->len, len);
    if (len)
        assert_memory_equal(r->payload, payload, len);
}

/* ---- fixture: children, handles, a scratch dir ------------------------------------ */

/* Credentials of the test publisher (NULL: anonymous). */
static const char *pub_user, *pub_pass;

static struct fx {
    char dir[64];
    pid_t kids[MAX_KIDS];
    struct mqin *handles[MAX_HANDLES];
} fx;

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/pl_mqin_XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    sink_reset();
    return 0;
}

static void kill_kid(pid_t pid)
{
    int st;
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    for (int i = 0; i < MAX_KIDS; i++)
        if (fx.kids[i] == pid)
            fx.kids[i] = 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    pub_user = pub_pass = NULL;
    for (int i = 0; i < MAX_HANDLES; i++) {
        mqin_stop(fx.handles[i]);
        fx.handles[i] = NULL;
    }
    for (int i = 0; i < MAX_KIDS; i++)
        kill_kid(fx.kids[i]);
    sink_reset();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0)
        return 0;
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Start mosquitto on port with extra config lines; returns its pid once the
 * port accepts connections. */
static pid_t broker_start(int port, const char *extra)
{
    char conf[128], log[128], text[1024];
    pid_t pid;
    int slot;

    for (slot = 0; slot < MAX_KIDS && fx.kids[slot]; slot++)
        ;
    assert_true(slot < MAX_KIDS);
    snprintf(conf, sizeof(conf), "%s/mosquitto-%d.conf", fx.dir, port);
    snprintf(log, sizeof(log), "%s/mosquitto-%d.log", fx.dir, port);
    snprintf(text, sizeof(text), "listener %d 127.0.0.1\npersistence false\n%s%s", port,
             getuid() == 0 ? "user root\n" : "", extra ? extra : "allow_anonymous true\n");
    write_file(conf, text);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    fx.kids[slot] = pid;
    for (int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL; tm_mono_us() < end; nap_ms(20)) {
        int st;
        if (port_open(port))
            return pid;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fx.kids[slot] = 0;
            fail_msg("mosquitto exited at start, see %s", log);
        }
    }
    fail_msg("mosquitto did not open port %d", port);
    return -1;
}

/* ---- a blocking publisher --------------------------------------------------------- */

struct pubstate {
    int connected, done;
};

static void pub_on_connect(struct mosquitto *m, void *ud, int rc)
{
    struct pubstate *p = ud;
    (void)m;
    p->connected = rc == 0 ? 1 : -1;
}

static void pub_on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct pubstate *p = ud;
    (void)m;
    (void)mid;
    p->done++;
}

/* Publish n messages (topics[i], payloads[i], lens[i]) in order with qos and
 * wait until each is sent (QoS 0) or acknowledged (QoS 1). */
static void publish_n(int port, size_t n, const char *const *topics, const void *const *payloads,
                      const size_t *lens, int qos)
{
    struct pubstate ps = {0};
    struct mosquitto *m = mosquitto_new(NULL, true, &ps);
    int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL;
    assert_non_null(m);
    mosquitto_connect_callback_set(m, pub_on_connect);
    mosquitto_publish_callback_set(m, pub_on_publish);
    if (pub_user)
        assert_int_equal(mosquitto_username_pw_set(m, pub_user, pub_pass), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_connect(m, "127.0.0.1", port, 30), MOSQ_ERR_SUCCESS);
    while (ps.connected == 0 && tm_mono_us() < end)
        assert_int_equal(mosquitto_loop(m, 50, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(ps.connected, 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            mosquitto_publish(m, NULL, topics[i], (int)lens[i], payloads[i], qos, false),
            MOSQ_ERR_SUCCESS);
    while ((size_t)ps.done < n && tm_mono_us() < end)
        assert_int_equal(mosquitto_loop(m, 50, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(ps.done, n);
    mosquitto_disconnect(m);
    mosquitto_loop(m, 10, 1);
    mosquitto_destroy(m);
}

static void publish1(int port, const char *topic, const char *text, int qos)
{
    const void *p = text;
    size_t len = strlen(text);
    publish_n(port, 1, &topic, &p, &len, qos);
}

/* ---- status helpers --------------------------------------------------------------- */

static cJSON *status_of(struct mqin *m, int i)
{
    cJSON *arr = mqin_status(m), *o;
    assert_non_null(arr);
    o = cJSON_DetachItemFromArray(arr, i);
    cJSON_Delete(arr);
    assert_non_null(o);
    return o;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static int flag(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsBool(v));
    return cJSON_IsTrue(v);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Wait until connection i is connected and subscribed (want = 1), or not
 * connected (want = 0). */
static int wait_state(struct mqin *m, int i, int want)
{
    for (int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL; tm_mono_us() < end; nap_ms(10)) {
        cJSON *o = status_of(m, i);
        int ok = want ? flag(o, "connected") && flag(o, "subscribed") : !flag(o, "connected");
        cJSON_Delete(o);
        if (ok)
            return 1;
    }
    return 0;
}

static struct mqin *start_urls(int slot, size_t n, const char *const *urls)
{
    struct mqin_conf confs[4];
    struct err e = {0};
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++) {
        int rc = mqin_parse(urls[i], &confs[i], &e);
        if (rc != 0)
            fail_msg("mqin_parse(%s): %s", urls[i], e.detail);
    }
    assert_int_equal(mqin_start(confs, n, on_msg, &sink, &fx.handles[slot], &e), 0);
    assert_non_null(fx.handles[slot]);
    return fx.handles[slot];
}

static struct mqin *start_url(int slot, const char *url)
{
    return start_urls(slot, 1, &url);
}

/* ---- URL parsing ------------------------------------------------------------------ */

static void test_parse_full(void **state)
{
    struct mqin_conf c;
    struct err e = {0};
    char pwpath[128];
    (void)state;

    assert_int_equal(mqin_parse("mqtt://broker.example", &c, &e), 0);
    assert_int_equal(c.tls, 0);
    assert_string_equal(c.host, "broker.example");
    assert_int_equal(c.port, 1883);
    assert_string_equal(c.user, "");
    assert_int_equal(c.has_password, 0);
    assert_string_equal(c.tenant, "");
    assert_int_equal(c.n_topics, 3);
    assert_string_equal(c.topics[0], "application/+/device/+/event/+");
    assert_string_equal(c.topics[1], "v3/+/devices/+/up");
    assert_string_equal(c.topics[2], "v3/+/devices/+/join");
    assert_string_equal(c.client_id, "");
    assert_int_equal(c.clean_session, 1);
    assert_int_equal(c.qos, 0);
    assert_int_equal(c.keepalive, 30);
    assert_string_equal(c.ca_file, "");
    assert_string_equal(c.url, "mqtt://broker.example");

    assert_int_equal(mqin_parse("mqtts://ns%40city:p%3Ass@[::1]:8884/?tenant=city-1&"
                                "topics=a/%2B/b,c/%23,$share/hub/application/%2C/x&"
                                "client_id=hub%201&qos=1&keepalive=60&ca_file=/etc/hostname",
                                &c, &e),
                     0);
    assert_int_equal(c.tls, 1);
    assert_string_equal(c.host, "::1");
    assert_int_equal(c.port, 8884);
    assert_string_equal(c.user, "ns@city");
    assert_string_equal(c.password, "p:ss");
    assert_int_equal(c.has_password, 1);
    assert_string_equal(c.tenant, "city-1");
    assert_int_equal(c.n_topics, 3);
    assert_string_equal(c.topics[0], "a/+/b");
    assert_string_equal(c.topics[1], "c/#");
    assert_string_equal(c.topics[2], "$share/hub/application/,/x");
    assert_string_equal(c.client_id, "hub 1");
    assert_int_equal(c.clean_session, 0);
    assert_int_equal(c.qos, 1);
    assert_int_equal(c.keepalive, 60);
    assert_string_equal(c.ca_file, "/etc/hostname");
    assert_null(strstr(c.url, "p%3Ass"));
    assert_string_equal(c.url, "mqtts://ns%40city@[::1]:8884/?tenant=city-1&topics=a/%2B/b,"
                               "c/%23,$share/hub/application/%2C/x&client_id=hub%201&qos=1&"
                               "keepalive=60&ca_file=/etc/hostname");

    /* '+' is literal; mqtts defaults to 8883 */
    assert_int_equal(mqin_parse("mqtts://h?topics=v3/+/devices/+/up", &c, &e), 0);
    assert_int_equal(c.port, 8883);
    assert_int_equal(c.n_topics, 1);
    assert_string_equal(c.topics[0], "v3/+/devices/+/up");

    /* password_file: the first line, without its newline */
    snprintf(pwpath, sizeof(pwpath), "%s/pw", fx.dir);
    write_file(pwpath, "s3cret\r\nsecond line\n");
    {
        char url[256];
        snprintf(url, sizeof(url), "mqtt://ingest@h:1?password_file=%s", pwpath);
        assert_int_equal(mqin_parse(url, &c, &e), 0);
        assert_string_equal(c.user, "ingest");
        assert_string_equal(c.password, "s3cret");
        assert_int_equal(c.has_password, 1);
        assert_string_equal(c.url, url);
    }
    assert_int_equal(e.code, 0);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *url, *detail;
    } cases[] = {
        {"", "empty URL"},
        {"http://h", "URL must start with mqtt:// or mqtts://"},
        {"mqtt:/h", "URL must start with mqtt:// or mqtts://"},
        {"mqtt://", "host empty or too long"},
        {"mqtt://:1883", "host empty or too long"},
        {"mqtt://h:0", "port must be 1..65535"},
        {"mqtt://h:65536", "port must be 1..65535"},
        {"mqtt://h:", "port must be 1..65535"},
        {"mqtt://h:12a", "port must be 1..65535"},
        {"mqtt://[::1", "host: unclosed '['"},
        {"mqtt://[::1]x", "host: text after ']'"},
        {"mqtt://[]:1", "host empty or too long"},
        {"mqtt://h%41", "host contains '%', '@' or a space"},
        {"mqtt://h/topic", "URL path must be empty: give topic filters with ?topics="},
        {"mqtt://@h", "user name empty, too long or badly encoded"},
        {"mqtt://u%zz@h", "user name empty, too long or badly encoded"},
        {"mqtt://u:p%4@h", "password too long or badly encoded"},
        {"mqtt://u:p%00@h", "password too long or badly encoded"},
        {"mqtt://h?tenants=x",
         "unknown parameter 'tenants' (tenant, topics, client_id, qos, ca_file, keepalive, "
         "password_file)"},
        {"mqtt://h?tenant=a&tenant=b", "parameter 'tenant' given twice"},
        {"mqtt://h?tenant=", "parameter 'tenant' is empty"},
        {"mqtt://h?tenant", "parameter 'tenant' is empty"},
        {"mqtt://h?qos=1&", "empty parameter after '&'"},
        {"mqtt://h?tenant=a%20b", "invalid tenant (1..128 of A-Z a-z 0-9 - _ . : / ~)"},
        {"mqtt://h?tenant=a%2", "invalid tenant (1..128 of A-Z a-z 0-9 - _ . : / ~)"},
        {"mqtt://h?topics=a/#/b", "invalid topic filter 'a/#/b'"},
        {"mqtt://h?topics=a/b+", "invalid topic filter 'a/b+'"},
        {"mqtt://h?topics=a,,b", "invalid topic filter ''"},
        {"mqtt://h?topics=a,", "invalid topic filter ''"},
        {"mqtt://h?topics=$share/g", "invalid topic filter '$share/g'"},
        {"mqtt://h?topics=$share//x", "invalid topic filter '$share//x'"},
        {"mqtt://h?topics=$share/+/x", "invalid topic filter '$share/+/x'"},
        {"mqtt://h?topics=%FF", "invalid topic filter '\xff'"},
        {"mqtt://h?topics=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "more than 16 topics"},
        {"mqtt://h?qos=2", "qos must be 0 or 1"},
        {"mqtt://h?qos=x", "qos must be 0 or 1"},
        {"mqtt://h?keepalive=4", "keepalive must be 5..3600 seconds"},
        {"mqtt://h?keepalive=3601", "keepalive must be 5..3600 seconds"},
        {"mqtts://h?ca_file=/nonexistent/ca.pem",
         "cannot read ca_file /nonexistent/ca.pem: No such file or directory"},
        {"mqtt://h?ca_file=/etc/hostname", "ca_file needs mqtts://"},
        {"mqtt://u@h?password_file=/nonexistent/pw",
         "cannot read password_file /nonexistent/pw: No such file or directory"},
        {"mqtt://u:p@h?password_file=/etc/hostname",
         "password given twice (URL and password_file)"},
        {"mqtt://:p@h", "user name empty, too long or badly encoded"},
        {"mqtt://h?password_file=/etc/hostname", "a password needs a user name"},
        {"mqtt://h?client_id=%C3%28", "client_id too long (max 127 bytes) or badly encoded"},
    };
    struct mqin_conf c;
    char long_url[MQIN_MAX_URL + 8], long_topic[400];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = {0};
        int rc = mqin_parse(cases[i].url, &c, &e);
        if (rc != ERR_INVALID_REQUEST || strcmp(e.detail, cases[i].detail) != 0)
            fail_msg("case %zu '%s': rc %d detail '%s', want '%s'", i, cases[i].url, rc, e.detail,
                     cases[i].detail);
        assert_int_equal(c.has_password, 0);
        assert_string_equal(c.password, "");
    }
    {
        struct err e = {0};
        assert_int_equal(mqin_parse(NULL, &c, &e), ERR_INVALID_REQUEST);
        assert_string_equal(e.detail, "empty URL");
    }
    {
        struct err e = {0};
        memset(long_url, 'a', sizeof(long_url) - 1);
        long_url[sizeof(long_url) - 1] = '\0';
        memcpy(long_url, "mqtt://", 7);
        assert_int_equal(mqin_parse(long_url, &c, &e), ERR_INVALID_REQUEST);
        assert_string_equal(e.detail, "URL longer than 2047 bytes");
    }
    {
        struct err e = {0};
        char url[600];
        memset(long_topic, 'x', sizeof(long_topic) - 1);
        long_topic[sizeof(long_topic) - 1] = '\0';
        snprintf(url, sizeof(url), "mqtt://h?topics=a,%s", long_topic);
        assert_int_equal(mqin_parse(url, &c, &e), ERR_INVALID_REQUEST);
        assert_string_equal(e.detail, "topic 2 too long (max 255 bytes) or badly percent-encoded");
    }
    {
        /* a password file whose first line is empty, or too long */
        struct err e = {0};
        char path[128], url[256], big[400];
        snprintf(path, sizeof(path), "%s/pw", fx.dir);
        write_file(path, "\nsecond\n");
        snprintf(url, sizeof(url), "mqtt://u@h?password_file=%s", path);
        assert_int_equal(mqin_parse(url, &c, &e), ERR_INVALID_REQUEST);
        assert_non_null(strstr(e.detail, ": first line is empty"));
        err_clear(&e);
        memset(big, 'p', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        write_file(path, big);
        assert_int_equal(mqin_parse(url, &c, &e), ERR_INVALID_REQUEST);
        assert_string_equal(e.detail, "password in password_file longer than 254 bytes");
        assert_string_equal(c.password, "");
    }
}

/* The repeatable config key: appends, an empty value clears, a cap. */
static void test_cfg_list(void **state)
{
    struct cfg *c = malloc(sizeof(*c));
    struct err e = {0};
    char path[128], line[CFG_LIST_ITEM + 64];
    (void)state;
    assert_non_null(c);
    cfg_defaults(c);
    assert_int_equal(c->ingest_mqtt.n, 0);
    assert_int_equal(cfg_set(c, "ingest_mqtt", "mqtt://a", &e), 0);
    assert_int_equal(cfg_set(c, "ingest-mqtt", "mqtt://b?topics=x/#", &e), 0);
    assert_int_equal(c->ingest_mqtt.n, 2);
    assert_string_equal(c->ingest_mqtt.v[0], "mqtt://a");
    assert_string_equal(c->ingest_mqtt.v[1], "mqtt://b?topics=x/#");
    assert_int_equal(cfg_set(c, "ingest_mqtt", "", &e), 0);
    assert_int_equal(c->ingest_mqtt.n, 0);
    for (int i = 0; i < CFG_LIST_MAX; i++)
        assert_int_equal(cfg_set(c, "ingest_mqtt", "mqtt://h", &e), 0);
    assert_int_equal(cfg_set(c, "ingest_mqtt", "mqtt://h", &e), ERR_INVALID_REQUEST);
    assert_string_equal(e.detail, "ingest_mqtt: at most 16 values");
    assert_int_equal(c->ingest_mqtt.n, CFG_LIST_MAX);
    err_clear(&e);
    assert_int_equal(cfg_set(c, "ingest_mqtt", "", &e), 0);
    memset(line, 'a', CFG_LIST_ITEM);
    line[CFG_LIST_ITEM] = '\0';
    assert_int_equal(cfg_set(c, "ingest_mqtt", line, &e), ERR_INVALID_REQUEST);
    assert_string_equal(e.detail, "ingest_mqtt: value longer than 2047 bytes");
    assert_int_equal(c->ingest_mqtt.n, 0);
    err_clear(&e);

    /* from a file: every line appends, '#' inside a value is kept */
    snprintf(path, sizeof(path), "%s/pl.conf", fx.dir);
    write_file(path, "ingest_mqtt = mqtt://a?tenant=t1&topics=a/#\n"
                     "port = 1\n"
                     "ingest_mqtt = \"mqtts://u@b:8883\"\n");
    cfg_defaults(c);
    assert_int_equal(cfg_load_file(c, path, &e), 0);
    assert_int_equal(c->ingest_mqtt.n, 2);
    assert_string_equal(c->ingest_mqtt.v[0], "mqtt://a?tenant=t1&topics=a/#");
    assert_string_equal(c->ingest_mqtt.v[1], "mqtts://u@b:8883");
    /* a line longer than the buffer is an error, not two lines */
    {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "ingest_mqtt = mqtt://h?topics=");
        for (int i = 0; i < CFG_LIST_ITEM + 1100; i++)
            fputc('a', f);
        fprintf(f, "\n");
        fclose(f);
    }
    cfg_defaults(c);
    assert_int_equal(cfg_load_file(c, path, &e), ERR_INVALID_REQUEST);
    assert_non_null(strstr(e.detail, ":1: line too long"));
    free(c);
}

/* ---- against a broker --------------------------------------------------------------- */

/* Exact delivery for two connections with their own tenants and topics;
 * unsubscribed topics never arrive. */
static void test_receive(void **state)
{
    int port = free_port();
    char u1[256], u2[256];
    const char *urls[2] = {u1, u2};
    struct mqin *m;
    static const unsigned char binary[] = {0x01, 0x67, 0x00, 0xff, 0x00, 0x02};
    const char *topics[] = {"application/app-1/device/0004a30b001c0530/event/up",
                            "other/topic",
                            "v3/app@tts/devices/node-1/up",
                            "v3/app@tts/devices/node-1/join",
                            "application/app-1/device/0004a30b001c0530/event/status",
                            "application/app-1/device/x/event/up"};
    const void *payloads[] = {"{\"fCnt\":1}", "nope", binary, "", "{\"batteryLevel\":55}", "end"};
    const size_t lens[] = {10, 4, sizeof(binary), 0, 19, 3};
    (void)state;

    broker_start(port, NULL);
    snprintf(u1, sizeof(u1),
             "mqtt://127.0.0.1:%d?tenant=city1&topics=application/%%2B/device/%%2B/event/up", port);
    snprintf(u2, sizeof(u2), "mqtt://127.0.0.1:%d", port); /* default tenant and topics */
    m = start_urls(0, 2, urls);
    assert_true(wait_state(m, 0, 1));
    assert_true(wait_state(m, 1, 1));

    publish_n(port, 6, topics, payloads, lens, 0);
    /* city1: event/up twice; default: all but other/topic */
    /* each connection's last message arrives last: a wrong delivery would
     * be among the first 7 and fail the checks below */
    assert_true(wait_recs(2 + 5));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 7);
    assert_rec(rec_of("city1", 0), "city1", topics[0], payloads[0], lens[0]);
    assert_rec(rec_of("city1", 1), "city1", topics[5], payloads[5], lens[5]);
    assert_null(rec_of("city1", 2));
    assert_rec(rec_of("", 0), "", topics[0], payloads[0], lens[0]);
    assert_rec(rec_of("", 1), "", topics[2], payloads[2], lens[2]);
    assert_rec(rec_of("", 2), "", topics[3], payloads[3], lens[3]);
    assert_rec(rec_of("", 3), "", topics[4], payloads[4], lens[4]);
    assert_rec(rec_of("", 4), "", topics[5], payloads[5], lens[5]);
    pthread_mutex_unlock(&sink.mu);

    {
        cJSON *o = status_of(m, 0);
        char want[256];
        snprintf(want, sizeof(want),
                 "mqtt://127.0.0.1:%d?tenant=city1&topics=application/%%2B/device/%%2B/event/up",
                 port);
        assert_string_equal(str(o, "url"), want);
        assert_string_equal(str(o, "tenant"), "city1");
        assert_non_null(strstr(str(o, "clientId"), "pilotlight-"));
        assert_int_equal(flag(o, "connected"), 1);
        assert_int_equal(num(o, "messages"), 2);
        assert_int_equal(num(o, "tooLarge"), 0);
        assert_int_equal(num(o, "unsubscribed"), 0);
        assert_int_equal(num(o, "reconnects"), 0);
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "lastError")));
        assert_non_null(str(o, "lastConnectedAt"));
        assert_int_equal(strlen(str(o, "lastConnectedAt")), 24);
        cJSON_Delete(o);
        o = status_of(m, 1);
        assert_int_equal(num(o, "messages"), 5);
        assert_string_equal(str(o, "tenant"), "");
        cJSON_Delete(o);
        /* two default client ids never collide */
        cJSON *arr = mqin_status(m);
        assert_int_equal(cJSON_GetArraySize(arr), 2);
        assert_string_not_equal(str(cJSON_GetArrayItem(arr, 0), "clientId"),
                                str(cJSON_GetArrayItem(arr, 1), "clientId"));
        cJSON_Delete(arr);
    }
}

/* Over 64 KiB: dropped before the callback and counted; exactly 64 KiB passes. */
static void test_oversize(void **state)
{
    int port = free_port();
    char url[128];
    struct mqin *m;
    unsigned char *big = malloc(MQIN_MAX_MESSAGE + 1);
    const char *topics[] = {"t/big", "t/max", "t/end"};
    const void *payloads[3];
    size_t lens[] = {MQIN_MAX_MESSAGE + 1, MQIN_MAX_MESSAGE, 3};
    (void)state;

    assert_non_null(big);
    for (size_t i = 0; i <= MQIN_MAX_MESSAGE; i++)
        big[i] = (unsigned char)(i * 7);
    payloads[0] = big;
    payloads[1] = big;
    payloads[2] = "end";
    broker_start(port, NULL);
    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d?tenant=t&topics=t/%%23", port);
    m = start_url(0, url);
    assert_true(wait_state(m, 0, 1));
    publish_n(port, 3, topics, payloads, lens, 1);
    assert_true(wait_recs(2));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 2);
    assert_rec(&sink.recs[0], "t", "t/max", big, MQIN_MAX_MESSAGE);
    assert_rec(&sink.recs[1], "t", "t/end", "end", 3);
    pthread_mutex_unlock(&sink.mu);
    cJSON *o = status_of(m, 0);
    assert_int_equal(num(o, "tooLarge"), 1);
    assert_int_equal(num(o, "messages"), 2);
    cJSON_Delete(o);
    free(big);
}

/* Broker killed mid-stream and restarted on the same port: the connection
 * comes back by itself, subscribes again and receives again. */
static void test_broker_restart(void **state)
{
    int port = free_port();
    char url[128], want[160];
    struct mqin *m;
    pid_t pid;
    cJSON *o;
    (void)state;

    pid = broker_start(port, NULL);
    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d?tenant=r&topics=r/%%2B", port);
    m = start_url(0, url);
    assert_true(wait_state(m, 0, 1));
    publish1(port, "r/1", "one", 0);
    assert_true(wait_recs(1));

    kill_kid(pid);
    assert_true(wait_state(m, 0, 0));
    o = status_of(m, 0);
    snprintf(want, sizeof(want), "connection to 127.0.0.1:%d lost: ", port);
    assert_non_null(str(o, "lastError"));
    assert_memory_equal(str(o, "lastError"), want, strlen(want));
    cJSON_Delete(o);

    broker_start(port, NULL);
    assert_true(wait_state(m, 0, 1));
    publish1(port, "r/2", "two", 0);
    assert_true(wait_recs(2));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 2);
    assert_rec(&sink.recs[0], "r", "r/1", "one", 3);
    assert_rec(&sink.recs[1], "r", "r/2", "two", 3);
    pthread_mutex_unlock(&sink.mu);
    o = status_of(m, 0);
    assert_int_equal(num(o, "reconnects"), 1);
    assert_int_equal(num(o, "messages"), 2);
    cJSON_Delete(o);
}

/* QoS 1 with an explicit client id: messages published while the hub is
 * away are queued by the broker and delivered when it comes back; with a
 * generated id (clean session) they are not. */
static void test_persistent_session(void **state)
{
    int port = free_port();
    char durable[160], clean[160];
    const char *topics[] = {"p/1", "p/2", "p/3"};
    const void *payloads[] = {"a", "bb", "ccc"};
    const size_t lens[] = {1, 2, 3};
    struct mqin *m;
    (void)state;

    broker_start(port, NULL);
    snprintf(durable, sizeof(durable),
             "mqtt://127.0.0.1:%d?tenant=d&topics=p/%%2B&qos=1&client_id=pl-test-durable", port);
    snprintf(clean, sizeof(clean), "mqtt://127.0.0.1:%d?tenant=c&topics=p/%%2B&qos=1", port);
    {
        const char *both[] = {durable, clean};
        m = start_urls(0, 2, both);
    }
    assert_true(wait_state(m, 0, 1));
    assert_true(wait_state(m, 1, 1));
    mqin_stop(m);
    fx.handles[0] = NULL;

    publish_n(port, 3, topics, payloads, lens, 1);
    assert_int_equal(sink_count(), 0);

    {
        const char *both[] = {durable, clean};
        m = start_urls(0, 2, both);
    }
    assert_true(wait_recs(3));
    assert_true(wait_state(m, 1, 1));
    publish1(port, "p/4", "dddd", 1);
    assert_true(wait_recs(5));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 5);
    assert_rec(rec_of("d", 0), "d", "p/1", "a", 1);
    assert_rec(rec_of("d", 1), "d", "p/2", "bb", 2);
    assert_rec(rec_of("d", 2), "d", "p/3", "ccc", 3);
    assert_rec(rec_of("d", 3), "d", "p/4", "dddd", 4);
    assert_rec(rec_of("c", 0), "c", "p/4", "dddd", 4);
    assert_null(rec_of("c", 1));
    pthread_mutex_unlock(&sink.mu);
    cJSON *o = status_of(m, 0);
    assert_string_equal(str(o, "clientId"), "pl-test-durable");
    cJSON_Delete(o);
}

/* A broker that is down at start: start returns, the connection retries,
 * and messages flow once the broker is up. Stop works while retrying. */
static void test_down_at_start(void **state)
{
    int port = free_port();
    char url[128], want[160];
    struct mqin *m;
    cJSON *o;
    (void)state;

    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d?topics=late/%%23&tenant=late", port);
    m = start_url(0, url);
    /* the first attempt fails: connection refused */
    for (int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL; tm_mono_us() < end; nap_ms(10)) {
        o = status_of(m, 0);
        int failed = str(o, "lastError") != NULL;
        cJSON_Delete(o);
        if (failed)
            break;
    }
    o = status_of(m, 0);
    assert_int_equal(flag(o, "connected"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "lastConnectedAt")));
    snprintf(want, sizeof(want), "connection to 127.0.0.1:%d lost: Connection refused", port);
    if (strcmp(str(o, "lastError"), want) != 0) {
        snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%d: Connection refused", port);
        assert_string_equal(str(o, "lastError"), want);
    }
    cJSON_Delete(o);

    /* a second handle that never reaches a broker stops promptly */
    {
        char url2[128];
        snprintf(url2, sizeof(url2), "mqtt://127.0.0.1:%d", free_port());
        start_url(1, url2);
        mqin_stop(fx.handles[1]);
        fx.handles[1] = NULL;
    }

    broker_start(port, NULL);
    assert_true(wait_state(m, 0, 1));
    publish1(port, "late/x", "hello", 0);
    assert_true(wait_recs(1));
    pthread_mutex_lock(&sink.mu);
    assert_rec(&sink.recs[0], "late", "late/x", "hello", 5);
    pthread_mutex_unlock(&sink.mu);
    o = status_of(m, 0);
    assert_int_equal(num(o, "reconnects"), 0); /* the first successful connection */
    cJSON_Delete(o);
}

/* A broker that wants a password: a wrong one is refused (and says so), the
 * right one from password_file works. */
static void test_auth(void **state)
{
    int port = free_port();
    char pwfile[128], cmd[256], extra[256], good[256], bad[256], secret[128];
    const char *urls[2] = {good, bad};
    struct mqin *m;
    cJSON *o;
    (void)state;

    snprintf(pwfile, sizeof(pwfile), "%s/passwd", fx.dir);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/mosquitto_passwd -b -c '%s' ingest 's3cret word' 2>/dev/null", pwfile);
    assert_int_equal(system(cmd), 0);
    snprintf(extra, sizeof(extra), "allow_anonymous false\npassword_file %s\n", pwfile);
    broker_start(port, extra);

    snprintf(secret, sizeof(secret), "%s/secret", fx.dir);
    write_file(secret, "s3cret word\n");
    snprintf(good, sizeof(good),
             "mqtt://ingest@127.0.0.1:%d?tenant=a&topics=a/%%23&password_file=%s", port, secret);
    snprintf(bad, sizeof(bad), "mqtt://ingest:wrong@127.0.0.1:%d?tenant=b&topics=a/%%23", port);
    m = start_urls(0, 2, urls);
    assert_true(wait_state(m, 0, 1));
    for (int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL; tm_mono_us() < end; nap_ms(10)) {
        o = status_of(m, 1);
        int failed = str(o, "lastError") != NULL;
        cJSON_Delete(o);
        if (failed)
            break;
    }
    o = status_of(m, 1);
    assert_string_equal(str(o, "lastError"),
                        "broker refused the connection: Connection Refused: not authorised.");
    assert_int_equal(flag(o, "connected"), 0);
    {
        char want[128];
        snprintf(want, sizeof(want), "mqtt://ingest@127.0.0.1:%d?tenant=b&topics=a/%%23", port);
        assert_string_equal(str(o, "url"), want); /* no password */
    }
    cJSON_Delete(o);

    pub_user = "ingest";
    pub_pass = "s3cret word";
    publish1(port, "a/1", "auth", 0);
    pub_user = pub_pass = NULL;
    assert_true(wait_recs(1));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 1);
    assert_rec(&sink.recs[0], "a", "a/1", "auth", 4);
    pthread_mutex_unlock(&sink.mu);
    o = status_of(m, 1);
    assert_int_equal(num(o, "messages"), 0);
    assert_int_equal(flag(o, "connected"), 0);
    cJSON_Delete(o);
}

/* A persistent session still holds the previous configuration's
 * subscription at the broker: its messages are dropped and counted. */
static void test_stale_subscription(void **state)
{
    int port = free_port();
    char old_url[160], new_url[160];
    struct mqin *m;
    cJSON *o;
    (void)state;

    broker_start(port, NULL);
    snprintf(old_url, sizeof(old_url),
             "mqtt://127.0.0.1:%d?tenant=s&topics=old/%%23&qos=1&client_id=pl-test-stale", port);
    snprintf(new_url, sizeof(new_url),
             "mqtt://127.0.0.1:%d?tenant=s&topics=new/%%23&qos=1&client_id=pl-test-stale", port);
    m = start_url(0, old_url);
    assert_true(wait_state(m, 0, 1));
    mqin_stop(m);
    fx.handles[0] = NULL;
    m = start_url(0, new_url);
    assert_true(wait_state(m, 0, 1));
    {
        const char *topics[] = {"old/1", "new/1"};
        const void *payloads[] = {"stale", "fresh"};
        const size_t lens[] = {5, 5};
        publish_n(port, 2, topics, payloads, lens, 1);
    }
    assert_true(wait_recs(1));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 1);
    assert_rec(&sink.recs[0], "s", "new/1", "fresh", 5);
    pthread_mutex_unlock(&sink.mu);
    o = status_of(m, 0);
    assert_int_equal(num(o, "unsubscribed"), 1);
    assert_int_equal(num(o, "messages"), 1);
    cJSON_Delete(o);
}

/* Run a shell command in the scratch dir; 0 on success. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024], full[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd '%s' && (%s) >/dev/null 2>&1", fx.dir, cmd);
    return system(full);
}

/* mqtts with a CA file: verified server, messages flow; a CA that did not
 * sign the server's certificate is refused. */
static void test_tls(void **state)
{
    int port = free_port(), plain = free_port();
    char extra[1024], good[512], bad[512];
    const char *urls[2] = {good, bad};
    struct mqin *m;
    cJSON *o;
    (void)state;

    assert_int_equal(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                        "-keyout ca.key -out ca.pem -days 2 -subj /CN=pl-test-ca"),
                     0);
    assert_int_equal(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                        "-keyout other.key -out other.pem -days 2 -subj /CN=pl-other-ca"),
                     0);
    assert_int_equal(sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
                        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                        "-keyout srv.key -out srv.csr -subj /CN=localhost && "
                        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                        "-out srv.pem -days 2 -extfile san.ext && chmod 644 srv.key"),
                     0);
    snprintf(extra, sizeof(extra),
             "cafile %s/ca.pem\ncertfile %s/srv.pem\nkeyfile %s/srv.key\n"
             "listener %d 127.0.0.1\nallow_anonymous true\n",
             fx.dir, fx.dir, fx.dir, plain);
    broker_start(port, extra);
    for (int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL; !port_open(plain); nap_ms(20))
        assert_true(tm_mono_us() < end);

    snprintf(good, sizeof(good), "mqtts://localhost:%d?tenant=tls&topics=s/%%23&ca_file=%s/ca.pem",
             port, fx.dir);
    snprintf(bad, sizeof(bad), "mqtts://localhost:%d?tenant=x&topics=s/%%23&ca_file=%s/other.pem",
             port, fx.dir);
    m = start_urls(0, 2, urls);
    assert_true(wait_state(m, 0, 1));
    publish1(plain, "s/1", "secure", 0);
    assert_true(wait_recs(1));
    pthread_mutex_lock(&sink.mu);
    assert_int_equal(sink.n, 1);
    assert_rec(&sink.recs[0], "tls", "s/1", "secure", 6);
    pthread_mutex_unlock(&sink.mu);

    for (int64_t end = tm_mono_us() + DEADLINE_MS * 1000LL; tm_mono_us() < end; nap_ms(10)) {
        o = status_of(m, 1);
        int failed = str(o, "lastError") != NULL;
        cJSON_Delete(o);
        if (failed)
            break;
    }
    o = status_of(m, 1);
    assert_int_equal(flag(o, "connected"), 0);
    assert_int_equal(num(o, "messages"), 0);
    {
        char want[128];
        snprintf(want, sizeof(want), "connection to localhost:%d lost: A TLS error occurred.",
                 port);
        if (strcmp(str(o, "lastError"), want) != 0) {
            snprintf(want, sizeof(want), "cannot connect to localhost:%d: A TLS error occurred.",
                     port);
            assert_string_equal(str(o, "lastError"), want);
        }
    }
    cJSON_Delete(o);
}

/* mqin_start argument checks; n == 0 is a valid empty set. */
static void test_start_errors(void **state)
{
    struct mqin_conf confs[MQIN_MAX_CONNS + 1];
    struct mqin *m = (struct mqin *)1;
    struct err e = {0};
    cJSON *arr;
    (void)state;

    assert_int_equal(mqin_parse("mqtt://h", &confs[0], &e), 0);
    assert_int_equal(mqin_start(confs, MQIN_MAX_CONNS + 1, on_msg, &sink, &m, &e),
                     ERR_INVALID_REQUEST);
    assert_string_equal(e.detail, "at most 16 MQTT ingest connections");
    assert_null(m);
    err_clear(&e);
    confs[0].qos = 2;
    assert_int_equal(mqin_start(confs, 1, on_msg, &sink, &m, &e), ERR_INVALID_REQUEST);
    assert_string_equal(e.detail, "connection 1: not parsed by mqin_parse");
    err_clear(&e);
    assert_int_equal(mqin_start(confs, 1, NULL, &sink, &m, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(mqin_start(NULL, 0, on_msg, &sink, &m, &e), 0);
    arr = mqin_status(m);
    assert_non_null(arr);
    assert_int_equal(cJSON_GetArraySize(arr), 0);
    cJSON_Delete(arr);
    mqin_stop(m);
    mqin_stop(NULL);
    assert_null(mqin_status(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cfg_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistent_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_subscription, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
    };
    int rc;
    log_set_level(LOG_WARN);
    mosquitto_lib_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    mosquitto_lib_cleanup();
    return rc;
}
