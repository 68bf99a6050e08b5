/*
 * cfg.h - process configuration, described by one table (cfg.c) that drives
 * the INI file parser, the command-line flags, --help and the reference
 * config file, so they cannot drift apart (after Redis's config.c).
 *
 * Precedence: defaults < config file < flags. Read-only after startup;
 * any thread may read a struct cfg once serve has started.
 */
#ifndef PL_CFG_H
#define PL_CFG_H

#include <stddef.h>
#include <stdio.h>

#include "util/err.h"

/* A repeatable string key: every occurrence (file line or flag) appends a
 * value; an empty value clears the list (so a flag can drop the file's). */
#define CFG_LIST_MAX 16
#define CFG_LIST_ITEM 2048
struct cfg_list {
    int n;
    char v[CFG_LIST_MAX][CFG_LIST_ITEM];
};

struct cfg {
    char bind[64];          /* listen address */
    int port;               /* NGSI-LD HTTP port */
    char data_dir[512];     /* data directory (SQLite database, admin secret) */
    char store[16];         /* store backend: sqlite */
    char durability[16];    /* normal | full */
    char history[16];       /* observed | all | off: what the temporal history keeps */
    char history_max_age[32]; /* default history retention (ISO 8601 duration or days; 0 = forever) */
    int temporal_max_instances; /* instances per attribute in one temporal answer */
    int threads;            /* HTTP worker threads (0 = number of cores) */
    long max_body;          /* request body limit, bytes */
    int max_connections;    /* concurrent HTTP connections */
    int group_max;          /* max write operations per store transaction */
    int page_limit_max;     /* maximum `limit` of a query */
    int page_limit_default; /* `limit` when none is given */
    char public_url[256];   /* base URL clients use to reach this hub */
    long context_timeout_ms;/* remote @context fetch timeout */
    long context_max_bytes; /* remote @context size limit */
    char log_level[16];     /* debug | info | warn | error */
    int demo;               /* load the demo city into an empty store */
    int demo_sensors;       /* with demo: simulated LoRaWAN devices (0 = none) */
    int demo_rate;          /* with demo: their uplinks per second */
    int ingest_device_rate; /* uplinks/s one device may send on average (0 = no limit) */
    int ingest_device_burst;/* uplinks above the rate at once */
    int ingest_quarantine_max; /* unknown devices listed per tenant */
    struct cfg_list ingest_mqtt; /* LoRaWAN MQTT broker URLs (ingest/mqttin.h) */
};

/* Fill c with the defaults. */
void cfg_defaults(struct cfg *c);

/* Read an INI file ("key = value", '#' or ';' comments, [sections] are
 * ignored). Unknown keys and out-of-range values are errors naming the
 * file and line. */
int cfg_load_file(struct cfg *c, const char *path, struct err *e);

/* Set one key from text (flags and file both come here). */
int cfg_set(struct cfg *c, const char *key, const char *value, struct err *e);

/* Is key a known configuration key? */
int cfg_known(const char *key);

/* Print the flags help (one line per key) / the commented reference config. */
void cfg_print_help(FILE *out);
void cfg_print_reference(FILE *out);

#endif
