/*
 * cfg.c - the configuration table. Each row: key, type, where it lives in
 * struct cfg, default, bounds, help. Everything else in this file is driven
 * by the table.
 */
#include "util/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum cfg_type { CFG_INT, CFG_LONG, CFG_STR, CFG_BOOL, CFG_ENUM, CFG_LIST };

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset;
    size_t size; /* for strings */
    const char *def;
    long min, max;
    const char *choices; /* CFG_ENUM: "a|b|c" */
    const char *help;
};

#define F(field) offsetof(struct cfg, field), sizeof(((struct cfg *)0)->field)

static const struct cfg_key keys[] = {
    {"bind", CFG_STR, F(bind), "0.0.0.0", 0, 0, NULL, "address the HTTP server listens on"},
    {"port", CFG_INT, F(port), "1026", 0, 65535, NULL,
     "NGSI-LD HTTP port (0 picks a free port and logs it; then set public_url, or hosted "
     "@context URLs name port 0)"},
    {"data", CFG_STR, F(data_dir), "./data", 0, 0, NULL,
     "data directory: the embedded database and secrets live here"},
    {"store", CFG_ENUM, F(store), "sqlite", 0, 0, "sqlite", "store backend"},
    {"durability", CFG_ENUM, F(durability), "normal", 0, 0, "normal|full",
     "normal: an acknowledged write survives a crash of the process (kill -9); "
     "full: also a power cut (fsync on every group commit)"},
    {"history", CFG_ENUM, F(history), "observed", 0, 0, "observed|all|off",
     "temporal history: every written attribute instance with an observedAt (observed), every "
     "written instance, timed by observedAt or else modifiedAt (all), or none (off)"},
    {"history_max_age", CFG_STR, F(history_max_age), "0", 0, 0, NULL,
     "default maximum age of history instances (by observedAt), as an ISO 8601 duration "
     "(P30D, PT12H) or a number of days; 0 keeps them forever; tenants may override it"},
    {"temporal_max_instances", CFG_INT, F(temporal_max_instances), "10000", 1, 10000000, NULL,
     "most instances per attribute in one temporal answer (more: 206 with Content-Range)"},
    {"threads", CFG_INT, F(threads), "0", 0, 256, NULL,
     "HTTP worker threads (0 = one per core)"},
    {"max_body", CFG_LONG, F(max_body), "1048576", 1024, 1L << 30, NULL,
     "largest request body accepted, bytes (larger: 413)"},
    {"max_connections", CFG_INT, F(max_connections), "4096", 16, 1000000, NULL,
     "concurrent HTTP connections"},
    {"group_max", CFG_INT, F(group_max), "2048", 1, 1000000, NULL,
     "most write operations committed in one store transaction"},
    {"page_limit_default", CFG_INT, F(page_limit_default), "20", 1, 1000000, NULL,
     "entities per page when a query gives no limit"},
    {"page_limit_max", CFG_INT, F(page_limit_max), "1000", 1, 1000000, NULL,
     "largest limit a query may ask for (larger: 403 TooManyResults)"},
    {"public_url", CFG_STR, F(public_url), "", 0, 0, NULL,
     "base URL clients reach this hub at (default http://localhost:PORT); "
     "used for hosted @context URLs"},
    {"context_timeout_ms", CFG_LONG, F(context_timeout_ms), "5000", 100, 600000, NULL,
     "timeout for fetching a remote @context"},
    {"context_max_bytes", CFG_LONG, F(context_max_bytes), "1048576", 1024, 1L << 28, NULL,
     "largest remote @context document accepted"},
    {"log_level", CFG_ENUM, F(log_level), "info", 0, 0, "debug|info|warn|error",
     "least severe event logged"},
    {"demo", CFG_BOOL, F(demo), "false", 0, 0, NULL,
     "load the demo city into the default tenant when the store is empty"},
    {"demo_sensors", CFG_INT, F(demo_sensors), "60", 0, 100000, NULL,
     "with demo: simulated LoRaWAN devices reporting live to the webhooks (0 = none)"},
    {"demo_rate", CFG_INT, F(demo_rate), "2", 1, 1000000, NULL,
     "with demo: uplinks per second from the simulated devices, all together"},
    {"ingest_device_rate", CFG_INT, F(ingest_device_rate), "10", 0, 1000000, NULL,
     "uplinks per second one LoRaWAN device may send on average (0 = no limit)"},
    {"ingest_device_burst", CFG_INT, F(ingest_device_burst), "60", 1, 1000000, NULL,
     "uplinks one device may send at once above its rate"},
    {"ingest_quarantine_max", CFG_INT, F(ingest_quarantine_max), "1000", 0, 1000000, NULL,
     "unknown devices listed in quarantine per tenant"},
    {"ingest_mqtt", CFG_LIST, F(ingest_mqtt), "", 0, 0, NULL,
     "LoRaWAN uplinks from an MQTT broker: mqtt[s]://[user[:password]@]host[:port]"
     "?tenant=NAME&topics=T1,T2&client_id=ID&qos=0|1&ca_file=PATH&keepalive=S"
     "&password_file=PATH (default tenant: the default one; default topics: ChirpStack v4 "
     "and The Things Stack v3 events; a client_id makes the session persistent). Repeat the "
     "key or flag once per broker; an empty value clears the list"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct cfg_key *find(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    /* flags may use dashes: --log-level */
    char tmp[64];
    size_t n = strlen(name);
    if (n >= sizeof(tmp))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        tmp[i] = name[i] == '-' ? '_' : name[i];
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, tmp) == 0)
            return &keys[i];
    return NULL;
}

int cfg_known(const char *key)
{
    return find(key) != NULL;
}

static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

int cfg_set(struct cfg *c, const char *key, const char *value, struct err *e)
{
    const struct cfg_key *k = find(key);
    char *base = (char *)c, *end;

    if (k == NULL)
        return err_set(e, ERR_INVALID_REQUEST, "unknown configuration key '%s'", key);
    switch (k->type) {
    case CFG_INT:
    case CFG_LONG: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < k->min || v > k->max)
            return err_set(e, ERR_INVALID_REQUEST, "%s: '%s' is not an integer in [%ld, %ld]",
                           key, value, k->min, k->max);
        if (k->type == CFG_INT)
            *(int *)(base + k->offset) = (int)v;
        else
            *(long *)(base + k->offset) = v;
        break;
    }
    case CFG_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
            *(int *)(base + k->offset) = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                 strcmp(value, "0") == 0)
            *(int *)(base + k->offset) = 0;
        else
            return err_set(e, ERR_INVALID_REQUEST, "%s: '%s' is not true or false", key, value);
        break;
    case CFG_ENUM:
        if (!choice_ok(k->choices, value))
            return err_set(e, ERR_INVALID_REQUEST, "%s: '%s' is not one of %s", key, value,
                           k->choices);
        /* fall through */
    case CFG_STR:
        if (strlen(value) >= k->size)
            return err_set(e, ERR_INVALID_REQUEST, "%s: value too long", key);
        strcpy(base + k->offset, value);
        break;
    case CFG_LIST: {
        struct cfg_list *l = (struct cfg_list *)(base + k->offset);
        if (*value == '\0') {
            memset(l, 0, sizeof(*l));
            break;
        }
        if (l->n >= CFG_LIST_MAX)
            return err_set(e, ERR_INVALID_REQUEST, "%s: at most %d values", key, CFG_LIST_MAX);
        if (strlen(value) >= CFG_LIST_ITEM)
            return err_set(e, ERR_INVALID_REQUEST, "%s: value longer than %d bytes", key,
                           CFG_LIST_ITEM - 1);
        strcpy(l->v[l->n++], value);
        break;
    }
    }
    return 0;
}

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_KEYS; i++) {
        int rc = cfg_set(c, keys[i].name, keys[i].def, NULL);
        (void)rc; /* defaults are valid by construction (unit-tested) */
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int cfg_load_file(struct cfg *c, const char *path, struct err *e)
{
    FILE *f = fopen(path, "r");
    char line[CFG_LIST_ITEM + 1024]; /* room for a list value and its key */
    int lineno = 0, rc = 0;

    if (f == NULL)
        return err_set(e, ERR_IO, "cannot open config file %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            rc = err_set(e, ERR_INVALID_REQUEST, "%s:%d: line too long", path, lineno);
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';' || *s == '[')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            rc = err_set(e, ERR_INVALID_REQUEST, "%s:%d: expected key = value", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        struct err inner = {0};
        if ((rc = cfg_set(c, key, val, &inner)) != 0) {
            err_set(e, rc, "%s:%d: %s", path, lineno, inner.detail);
            break;
        }
    }
    fclose(f);
    return rc;
}

void cfg_print_help(FILE *out)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", keys[i].name);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-24s %s (default: %s)\n", flag, keys[i].help, keys[i].def);
    }
}

void cfg_print_reference(FILE *out)
{
    fprintf(out, "# pilotlight.conf - the reference configuration.\n"
                 "# Every key with its default value. Generated by `pilotlight config`;\n"
                 "# a unit test checks this file matches. Command-line flags\n"
                 "# (--key value, dashes or underscores) override this file.\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        fprintf(out, "\n# %s", keys[i].help);
        if (keys[i].type == CFG_ENUM)
            fprintf(out, " [%s]", keys[i].choices);
        else if (keys[i].type == CFG_INT || keys[i].type == CFG_LONG)
            fprintf(out, " [%ld..%ld]", keys[i].min, keys[i].max);
        else if (keys[i].type == CFG_LIST)
            fprintf(out, " [at most %d]", CFG_LIST_MAX);
        fprintf(out, "\n%s = %s\n", keys[i].name, keys[i].def);
    }
}
