/* test_store.c - the store on a fresh SQLite data dir: writes through the
 * writer, reads, configuration documents, change events, reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld/ld.h"
#include "model/entity.h"
#include "json/json.h"
#include "store/store.h"
#include "util/time.h"

static char dir[64];

static struct store *open_store(void)
{
    struct store_config c = {.backend = "sqlite", .data_dir = dir, .group_max = 100};
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(&c, &s, &e), 0);
    return s;
}

static cJSON *entity(const char *json)
{
    cJSON *body = cJSON_Parse(json), *doc = NULL;
    struct err e = {0};
    assert_non_null(body);
    assert_int_equal(ent_parse(body, ld_core(), ENT_FULL, &doc, &e), 0);
    cJSON_Delete(body);
    return doc;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pl_store_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

struct seen {
    int created, updated, deleted;
};

static void listener(void *ud, struct store_event *evs, size_t n)
{
    struct seen *seen = ud;
    for (size_t i = 0; i < n; i++) {
        if (evs[i].kind == STORE_EV_CREATED && evs[i].after && !evs[i].before)
            seen->created++;
        if (evs[i].kind == STORE_EV_UPDATED && evs[i].after && evs[i].before)
            seen->updated++;
        if (evs[i].kind == STORE_EV_DELETED && evs[i].before && !evs[i].after)
            seen->deleted++;
    }
}

static void test_writes_and_reads(void **state)
{
    struct store *s = open_store();
    struct store_op ops[3];
    struct seen seen = {0};
    cJSON *doc = NULL;
    struct err e = {0};
    (void)state;

    assert_int_equal(store_listen(s, listener, NULL, &seen), 0);
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct store_op){.kind = STORE_CREATE,
                               .tenant = "",
                               .doc = entity("{\"id\":\"urn:x:1\",\"type\":\"T\",\"n\":1}")};
    ops[1] = (struct store_op){.kind = STORE_CREATE,
                               .tenant = "",
                               .doc = entity("{\"id\":\"urn:x:1\",\"type\":\"T\",\"n\":2}")};
    ops[2] = (struct store_op){.kind = STORE_UPSERT_REPLACE,
                               .tenant = "city",
                               .doc = entity("{\"id\":\"urn:x:2\",\"type\":\"T\",\"n\":3}")};
    assert_int_equal(store_write(s, ops, 3), 0);
    assert_int_equal(ops[0].err.code, 0);
    assert_int_equal(ops[1].err.code, ERR_EXISTS); /* same id later in the same group */
    assert_int_equal(ops[2].err.code, 0);
    assert_int_equal(ops[2].created, 1);
    assert_int_equal(seen.created, 2);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(ops[i].doc);
    store_ops_clear(ops, 3);

    assert_int_equal(store_entity_get(s, "", "urn:x:1", &doc, &e), 0);
    assert_string_equal(ent_doc_id(doc), "urn:x:1");
    assert_non_null(cJSON_GetObjectItem(doc, "createdAt"));
    cJSON_Delete(doc);
    assert_int_equal(store_entity_get(s, "", "urn:x:2", &doc, &e), ERR_NOT_FOUND);
    err_clear(&e);
    assert_int_equal(store_entity_get(s, "nowhere", "urn:x:2", &doc, &e), ERR_NO_TENANT);
    assert_true(store_tenant_exists(s, "city"));
    assert_false(store_tenant_exists(s, "nowhere"));

    memset(ops, 0, sizeof(ops));
    ops[0] = (struct store_op){.kind = STORE_DELETE, .tenant = "city", .entity_id = "urn:x:2"};
    ops[1] = (struct store_op){.kind = STORE_DELETE, .tenant = "city", .entity_id = "urn:x:2"};
    assert_int_equal(store_write(s, ops, 2), 0);
    assert_int_equal(ops[0].err.code, 0);
    assert_int_equal(ops[1].err.code, ERR_NOT_FOUND);
    assert_int_equal(seen.deleted, 1);
    store_close(s);
}

static int count_doc(void *ud, const char *tenant, const char *id, const char *json)
{
    (void)tenant;
    (void)json;
    if (strcmp(id, "sub1") == 0 || strcmp(id, "sub2") == 0)
        (*(int *)ud)++;
    return 0;
}

static void test_docs_survive_reopen(void **state)
{
    struct store *s = open_store();
    char *json = NULL;
    int n = 0;
    (void)state;
    assert_int_equal(store_doc_put(s, "city", "subscriptions", "sub1", "{\"a\":1}", 1), 0);
    assert_int_equal(store_doc_put(s, "city", "subscriptions", "sub1", "{\"a\":2}", 1), ERR_EXISTS);
    assert_int_equal(store_doc_put(s, "city", "subscriptions", "sub1", "{\"a\":3}", 0), 0);
    assert_int_equal(store_doc_put(s, "", "subscriptions", "sub2", "{}", 1), 0);
    store_close(s);

    s = open_store();
    assert_int_equal(store_doc_get(s, "city", "subscriptions", "sub1", &json), 0);
    assert_string_equal(json, "{\"a\":3}");
    free(json);
    assert_int_equal(store_doc_get(s, "", "subscriptions", "sub1", &json), ERR_NOT_FOUND);
    assert_int_equal(store_doc_each(s, NULL, "subscriptions", count_doc, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(store_doc_each(s, "city", "subscriptions", count_doc, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_doc_delete(s, "city", "subscriptions", "sub1"), 0);
    assert_int_equal(store_doc_delete(s, "city", "subscriptions", "sub1"), ERR_NOT_FOUND);
    /* the entity written by the first test is still there after reopening */
    cJSON *doc = NULL;
    assert_int_equal(store_entity_get(s, "", "urn:x:1", &doc, NULL), 0);
    cJSON_Delete(doc);
    store_close(s);
}

static void test_duration_parse(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(store_duration_parse("PT1H", 0, &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(store_duration_parse("P1DT2H3M4.5S", 0, &ms), 0);
    assert_int_equal(ms, 86400000 + 7200000 + 180000 + 4500);
    assert_int_equal(store_duration_parse("P2W", 0, &ms), 0);
    assert_int_equal(ms, 14LL * 86400000);
    assert_int_equal(store_duration_parse("PT0S", 0, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(store_duration_parse("30", 1, &ms), 0);
    assert_int_equal(ms, 30LL * 86400000);
    const char *bad[] = {"",     "P",   "PT",     "P1M",  "P1Y",   "1H",
                         "PT1D", "P1H", "PT1.5M", "P-1D", "PT1HX", "P1DT"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_duration_parse(bad[i], 0, &ms), ERR_BAD_DATA);
    assert_int_equal(store_duration_parse("30", 0, &ms), ERR_BAD_DATA);
    assert_int_equal(store_duration_parse("x", 1, &ms), ERR_BAD_DATA);
    /* aggregation periods also take calendar years and months */
    struct store_period p;
    assert_int_equal(store_period_parse("P1Y2M3DT4H", &p), 0);
    assert_true(p.months == 14 && p.ms == 3 * 86400000LL + 4 * 3600000LL);
    assert_int_equal(store_period_parse("PT1M", &p), 0); /* minutes, not months */
    assert_true(p.months == 0 && p.ms == 60000);
    assert_int_equal(store_period_parse("P0M", &p), 0); /* zero: the whole window */
    assert_true(p.months == 0 && p.ms == 0);
    const char *bad_p[] = {"", "P", "P1.5M", "P1.5Y", "P-1M", "1M", "P1MT", "PT1Y"};
    for (size_t i = 0; i < sizeof(bad_p) / sizeof(bad_p[0]); i++)
        assert_int_equal(store_period_parse(bad_p[i], &p), ERR_BAD_DATA);
}

/* Temporal ops through the writer; aggregation and retention. */
static cJSON *timed(double v, const char *at)
{
    cJSON *i = cJSON_CreateObject();
    cJSON_AddStringToObject(i, "type", "Property");
    cJSON_AddNumberToObject(i, "value", v);
    cJSON_AddStringToObject(i, "observedAt", at);
    return i;
}

static int count_rows(void *ud, const char *attr, int64_t iid, int64_t t, const char *inst)
{
    (void)attr, (void)iid, (void)t, (void)inst;
    (*(int *)ud)++;
    return 0;
}

static int sum_aggr(void *ud, const char *attr, const struct store_aggr *a)
{
    double *out = ud;
    (void)attr;
    out[0] += (double)a->count;
    out[1] += a->sum;
    out[2] = a->max > out[2] ? a->max : out[2];
    out[3] += 1; /* periods */
    return 0;
}

static void test_temporal_ops_and_retention(void **state)
{
    struct store *s = open_store();
    struct store_op op;
    struct err e = {0};
    char at[32];
    (void)state;

    /* 2 hours of 10-minute values 0..11, plus one from 2001 */
    cJSON *doc = entity("{\"id\":\"urn:ngsi-ld:M:1\",\"type\":\"M\"}");
    cJSON *hist = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(hist, "urn:p");
    for (int i = 0; i < 12; i++) {
        snprintf(at, sizeof(at), "2026-01-01T%02d:%02d:00.000Z", i / 6, (i % 6) * 10);
        cJSON_AddItemToArray(arr, timed(i, at));
    }
    cJSON_AddItemToArray(arr, timed(1000, "2001-01-01T00:00:00.000Z"));
    cJSON *attrs = cJSON_GetObjectItem(doc, "attrs");
    if (attrs == NULL)
        attrs = cJSON_AddObjectToObject(doc, "attrs");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(attrs, "urn:p"),
                         timed(11, "2026-01-01T01:50:00.000Z"));
    memset(&op, 0, sizeof(op));
    op.kind = STORE_TEMPORAL_UPSERT;
    op.doc = doc;
    op.history = hist;
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, 0);
    assert_int_equal(op.created, 1);
    store_ops_clear(&op, 1);

    struct store_history_query q = {
        .entity_id = "urn:ngsi-ld:M:1", .from_ms = INT64_MIN, .to_ms = INT64_MAX};
    int n = 0;
    assert_int_equal(store_history(s, &q, count_rows, &n, &e), 0);
    assert_int_equal(n, 13);
    double agg[4] = {0};
    assert_int_equal(tm_parse("2026-01-01T00:00:00Z", &q.from_ms), 0);
    struct store_period hour = {0, 3600000, 0};
    assert_int_equal(store_history_aggregate(s, &q, &hour, 0, sum_aggr, agg, &e), 0);
    assert_true(agg[0] == 12 && agg[1] == 66 && agg[2] == 11 && agg[3] == 2);

    /* retention: default forever; a tenant's own age deletes what is older */
    int64_t age;
    int own;
    assert_int_equal(store_history_retention_get(s, "", &age, &own), 0);
    assert_true(age == 0 && own == 0);
    assert_int_equal(store_history_retention_set(s, "", 86400000LL * 365 * 5), 0);
    assert_int_equal(store_history_retention_get(s, "", &age, &own), 0);
    assert_true(age == 86400000LL * 365 * 5 && own == 1);
    /* the setter starts a pass at once; expire_now waits for a pass that
     * starts after it was called, so the old row is gone when it returns */
    assert_true(store_history_expire_now(s) >= 0);
    q.from_ms = INT64_MIN;
    n = 0;
    assert_int_equal(store_history(s, &q, count_rows, &n, &e), 0);
    assert_int_equal(n, 12);
    assert_int_equal(store_history_expire_now(s), 0);
    assert_int_equal(store_history_retention_set(s, "", -1), 0);
    assert_int_equal(store_history_retention_get(s, "", &age, &own), 0);
    assert_true(age == 0 && own == 0);

    /* delete the temporal entity: history and entity gone */
    memset(&op, 0, sizeof(op));
    op.kind = STORE_HISTORY_DELETE;
    op.entity_id = "urn:ngsi-ld:M:1";
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, 0);
    n = 0;
    assert_int_equal(store_history(s, &q, count_rows, &n, &e), 0);
    assert_int_equal(n, 0);
    cJSON *cur = NULL;
    assert_int_equal(store_entity_get(s, "", "urn:ngsi-ld:M:1", &cur, &e), ERR_NOT_FOUND);
    memset(&op, 0, sizeof(op));
    op.kind = STORE_HISTORY_DELETE;
    op.entity_id = "urn:ngsi-ld:M:1";
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, ERR_NOT_FOUND);
    cJSON_Delete(doc);
    cJSON_Delete(hist);
    store_close(s);

    /* a bad default age is refused at open */
    struct store_config c = {.backend = "sqlite", .data_dir = dir, .history_max_age = "P1M"};
    struct store *bad = NULL;
    assert_int_equal(store_open(&c, &bad, &e), ERR_BAD_DATA);
    assert_null(bad);
}

/* What a history read returned, as "attr iid t value;" text. */
struct collected {
    char text[1024];
};

static int collect(void *ud, const char *attr, int64_t iid, int64_t t, const char *inst)
{
    struct collected *c = ud;
    cJSON *j = cJSON_Parse(inst);
    const cJSON *v = cJSON_GetObjectItem(j, "value");
    size_t len = strlen(c->text);
    assert_non_null(j);
    if (cJSON_IsNumber(v))
        snprintf(c->text + len, sizeof(c->text) - len, "%s %lld %lld %g;", attr, (long long)iid,
                 (long long)t, v->valuedouble);
    else
        snprintf(c->text + len, sizeof(c->text) - len, "%s %lld %lld %s;", attr, (long long)iid,
                 (long long)t, cJSON_IsString(v) ? v->valuestring : "?");
    cJSON_Delete(j);
    return 0;
}

static void history_is(struct store *s, const char *want)
{
    struct store_history_query q = {
        .entity_id = "urn:ngsi-ld:M:9", .from_ms = INT64_MIN, .to_ms = INT64_MAX};
    struct collected c = {{0}};
    struct err e = {0};
    assert_int_equal(store_history(s, &q, collect, &c, &e), 0);
    assert_string_equal(c.text, want);
}

static void history_write(struct store *s, enum store_op_kind kind, const char *attr, int64_t iid,
                          const cJSON *inst, const char *ds, int all, int want_err)
{
    struct store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.entity_id = "urn:ngsi-ld:M:9";
    op.attr_iri = attr;
    op.instance_id = iid;
    op.inst = inst;
    op.dataset_id = ds;
    op.delete_all = all;
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, want_err);
    store_ops_clear(&op, 1);
}

/* The history's sub-rows as hist.c lays them out, read beside the open
 * store (WAL mode lets a second connection read): a row of hist_rows is
 * one write, or a chunk of several whose nums start with 0x00, then per
 * write the zigzag deltas of its time and base, the varint lengths of its
 * nums and body, and its nums; the chunk's body is theirs one after the
 * other. Rows in t order (they never overlap), so the sub-rows are too. */
struct hsub {
    int64_t rid, t;
    int nums_len, body_off, body_len;
    int packed; /* its first body entry is packed */
};

static uint64_t t_varint(const unsigned char **p, const unsigned char *end)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    return v;
}

static int64_t t_zigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int first_packed(const unsigned char *body, int len)
{
    const unsigned char *p = body, *end = body + len;
    uint64_t n = t_varint(&p, end);
    return n > 0 && p < end && *p == 0x01;
}

static int hist_subs(struct hsub *out, int max)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = 0;

    snprintf(path, sizeof(path), "%s/pilotlight.db", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT rid, t, nums, body FROM hist_rows ORDER BY t",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && n < max) {
        int64_t rid = sqlite3_column_int64(st, 0), t = sqlite3_column_int64(st, 1);
        const unsigned char *p = sqlite3_column_blob(st, 2);
        const unsigned char *end = p + sqlite3_column_bytes(st, 2);
        const unsigned char *body = sqlite3_column_blob(st, 3);
        int blen = sqlite3_column_bytes(st, 3), off = 0;
        if (p == end || p[0] != 0x00) {
            out[n++] = (struct hsub){rid, t, (int)(end - p), 0, blen, first_packed(body, blen)};
            continue;
        }
        for (p++; p < end && n < max;) {
            int64_t dt = t_zigzag(t_varint(&p, end));
            (void)t_varint(&p, end); /* base */
            int nl = (int)t_varint(&p, end), bl = (int)t_varint(&p, end);
            t += dt;
            out[n++] = (struct hsub){rid, t, nl, off, bl, first_packed(body + off, bl)};
            off += bl;
            p += nl;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The length of the nums (col "nums") or body of the history's sub-row at
 * time t (-1: none). */
static int row_len_at(const char *col, int64_t t)
{
    struct hsub v[256];
    int n = hist_subs(v, 256);

    for (int i = 0; i < n; i++)
        if (v[i].t == t)
            return strcmp(col, "nums") == 0 ? v[i].nums_len : v[i].body_len;
    return -1;
}

static int nums_len_at(const char *at)
{
    int64_t t;

    assert_int_equal(tm_parse(at, &t), 0);
    return row_len_at("nums", t);
}

/* POST /temporal/entities of entity M:9 with history hist (the caller's) */
static void temporal_upsert(struct store *s, cJSON *hist)
{
    struct store_op op;

    memset(&op, 0, sizeof(op));
    op.kind = STORE_TEMPORAL_UPSERT;
    op.doc = entity("{\"id\":\"urn:ngsi-ld:M:9\",\"type\":\"M\"}");
    op.history = hist;
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, 0);
    store_ops_clear(&op, 1);
    cJSON_Delete(op.doc);
}

static void history_append(struct store *s, const char *attr, double v, const char *at)
{
    cJSON *hist = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(hist, attr), timed(v, at));
    temporal_upsert(s, hist);
    cJSON_Delete(hist);
}

/* A v5 database (one history row per instance, AUTOINCREMENT ids) opens
 * as v6 with every instanceId kept; ids are never reused afterwards; an
 * instance whose time changes keeps its id; deletes by instance and by
 * dataset. */
static void test_history_v5_upgrade_and_instances(void **state)
{
    static const char *const v5 =
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('schema_version', '5');"
        "CREATE TABLE tenants(tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        "  created_at TEXT NOT NULL);"
        "INSERT INTO tenants VALUES (1, '', '2026-01-01T00:00:00Z');"
        "CREATE TABLE entities(rid INTEGER PRIMARY KEY, tid INTEGER NOT NULL,"
        "  eid TEXT NOT NULL, doc TEXT NOT NULL, created_at TEXT, types TEXT);"
        "CREATE UNIQUE INDEX entities_id ON entities(tid, eid);"
        "CREATE INDEX entities_tenant ON entities(tid);"
        "CREATE TABLE entity_types(tid INTEGER NOT NULL, type TEXT NOT NULL,"
        "  rid INTEGER NOT NULL, PRIMARY KEY(tid, type, rid)) WITHOUT ROWID;"
        "CREATE VIRTUAL TABLE entity_geo USING rtree(rid, min_lon, max_lon, min_lat, max_lat);"
        "CREATE TABLE contexts(url TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,"
        "  created_at TEXT NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE docs(tenant TEXT NOT NULL, coll TEXT NOT NULL, id TEXT NOT NULL,"
        "  body TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(tenant, coll, id))"
        "  WITHOUT ROWID;"
        "CREATE TABLE hist_keys(kid INTEGER PRIMARY KEY, tid INTEGER NOT NULL,"
        "  eid TEXT NOT NULL, attr TEXT NOT NULL);"
        "CREATE UNIQUE INDEX hist_keys_key ON hist_keys(tid, eid, attr);"
        "CREATE TABLE hist(iid INTEGER PRIMARY KEY AUTOINCREMENT, kid INTEGER NOT NULL,"
        "  t INTEGER NOT NULL, num REAL, ds TEXT, inst TEXT NOT NULL);"
        "CREATE INDEX hist_t ON hist(kid, t, num);"
        "INSERT INTO hist_keys VALUES (1, 1, 'urn:ngsi-ld:M:9', 'urn:p'),"
        "  (2, 1, 'urn:ngsi-ld:M:9', 'urn:q');"
        "INSERT INTO hist VALUES (3, 1, 1000, 1.5, NULL,"
        "  '{\"type\":\"Property\",\"value\":1.5,\"observedAt\":\"1970-01-01T00:00:01.000Z\"}'),"
        "  (4, 2, 1000, NULL, 'urn:ds:a', '{\"type\":\"Property\",\"value\":\"x\","
        "  \"datasetId\":\"urn:ds:a\",\"observedAt\":\"1970-01-01T00:00:01.000Z\"}'),"
        "  (8, 1, 3000, 2.5, NULL,"
        "  '{\"type\":\"Property\",\"value\":2.5,\"observedAt\":\"1970-01-01T00:00:03.000Z\"}');"
        "UPDATE sqlite_sequence SET seq = 12 WHERE name = 'hist';";
    char path[128];
    sqlite3 *db = NULL;
    (void)state;

    snprintf(path, sizeof(path), "%s/pilotlight.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v5, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct store *s = open_store();
    history_is(s, "urn:p 3 1000 1.5;urn:p 8 3000 2.5;urn:q 4 1000 x;");
    /* ids continue above v5's high-water mark (12), not above the last row */
    history_append(s, "urn:p", 7, "1970-01-01T00:00:05.000Z");
    history_is(s, "urn:p 3 1000 1.5;urn:p 8 3000 2.5;urn:p 13 5000 7;urn:q 4 1000 x;");

    /* a new time moves instance 3 after 8, under its own id */
    cJSON *patch = cJSON_Parse("{\"value\":4.5,\"observedAt\":\"1970-01-01T00:00:04.000Z\"}");
    history_write(s, STORE_HISTORY_PATCH, "urn:p", 3, patch, NULL, 0, 0);
    history_is(s, "urn:p 8 3000 2.5;urn:p 3 4000 4.5;urn:p 13 5000 7;urn:q 4 1000 x;");
    cJSON_Delete(patch);
    patch = cJSON_Parse("{\"value\":5.5}"); /* same time: rewritten in place */
    history_write(s, STORE_HISTORY_PATCH, "urn:p", 3, patch, NULL, 0, 0);
    history_is(s, "urn:p 8 3000 2.5;urn:p 3 4000 5.5;urn:p 13 5000 7;urn:q 4 1000 x;");
    history_write(s, STORE_HISTORY_PATCH, "urn:q", 3, patch, NULL, 0, ERR_NOT_FOUND);
    cJSON_Delete(patch);

    /* delete one instance, then the rest of a dataset */
    history_write(s, STORE_HISTORY_DELETE, "urn:p", 13, NULL, NULL, 0, 0);
    history_write(s, STORE_HISTORY_DELETE, "urn:p", 13, NULL, NULL, 0, ERR_NOT_FOUND);
    history_write(s, STORE_HISTORY_DELETE, "urn:q", 0, NULL, NULL, 0, ERR_NOT_FOUND);
    history_write(s, STORE_HISTORY_DELETE, "urn:q", 0, NULL, "urn:ds:b", 0, ERR_NOT_FOUND);
    history_write(s, STORE_HISTORY_DELETE, "urn:q", 0, NULL, "urn:ds:a", 0, 0);
    history_is(s, "urn:p 8 3000 2.5;urn:p 3 4000 5.5;");
    store_close(s);

    /* the deleted newest id (13) is not handed out again after a restart
     * (nor 14: the row instance 3 moved to took it) */
    s = open_store();
    history_append(s, "urn:p", 9, "1970-01-01T00:00:06.000Z");
    history_is(s, "urn:p 8 3000 2.5;urn:p 3 4000 5.5;urn:p 15 6000 9;");
    store_close(s);
}

static int periods_of(void *ud, const char *attr, const struct store_aggr *a)
{
    struct collected *c = ud;
    size_t len = strlen(c->text);
    (void)attr;
    snprintf(c->text + len, sizeof(c->text) - len, "%lld-%lld:%ld;", (long long)a->start_ms,
             (long long)a->end_ms, a->count);
    return 0;
}

/* Periods before 1970 (negative times) step like any others. */
static void test_aggregation_before_1970(void **state)
{
    struct store *s = open_store();
    struct store_history_query q = {.entity_id = "urn:ngsi-ld:M:9", .to_ms = INT64_MAX};
    struct store_period hour = {0, 3600000, 0};
    struct collected c = {{0}};
    struct err e = {0};
    (void)state;

    history_append(s, "urn:p", 1, "1969-12-31T22:10:00.000Z");
    history_append(s, "urn:p", 2, "1969-12-31T23:20:00.000Z");
    history_append(s, "urn:p", 3, "1969-12-31T23:40:00.000Z");
    assert_int_equal(tm_parse("1969-12-31T22:00:00Z", &q.from_ms), 0);
    assert_int_equal(store_history_aggregate(s, &q, &hour, 0, periods_of, &c, &e), 0);
    assert_string_equal(c.text, "-7200000--3600000:1;-3600000-0:2;");
    store_close(s);
}

/* What a history read returned: each instance's exact text and id. */
struct texts {
    char *text[32];
    int64_t iid[32];
    int n;
};

static int collect_text(void *ud, const char *attr, int64_t iid, int64_t t, const char *inst)
{
    struct texts *c = ud;
    (void)attr, (void)t;
    assert_true(c->n < 32);
    c->iid[c->n] = iid;
    c->text[c->n++] = strdup(inst);
    return 0;
}

static void texts_free(struct texts *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->text[i]);
    c->n = 0;
}

/* The observedAt (ms) of the history rows whose body starts with a packed
 * instance (after the entry's varint length of one or two bytes, the
 * packed marker 0x01; JSON has '{' there), in order, as "t;" text. */
static void packed_rows(char *out, size_t size)
{
    struct hsub v[256];
    int n = hist_subs(v, 256);

    out[0] = '\0';
    for (int i = 0; i < n; i++)
        if (v[i].packed) {
            size_t len = strlen(out);
            snprintf(out + len, size - len, "%lld;", (long long)v[i].t);
        }
}

/* hist.c keeps common instances (a number or a short string, a unit, the
 * three timestamps) packed and everything else as JSON: each reads back
 * as exactly the text the store recorded (the instance with its createdAt
 * and modifiedAt), whichever way it was kept; the right ones are packed;
 * a row rewritten from its read-back text (an instance deleted from it)
 * packs the same way again. */
static void test_history_keeps_instance_text(void **state)
{
    static const struct {
        const char *json;
        int packed;
    } insts[] = {
        /* in time order */
        {"{\"type\":\"Property\",\"value\":1,\"observedAt\":\"0001-01-01T00:00:00.000Z\"}", 1},
        {"{\"type\":\"Property\",\"value\":0.1,\"observedAt\":\"1969-12-31T23:59:59.999Z\"}", 1},
        {"{\"type\":\"Property\",\"value\":58.3,\"unitCode\":\"GQ\","
         "\"observedAt\":\"2026-01-15T00:00:01.000Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":-0,\"observedAt\":\"2026-01-15T00:00:02.000Z\"}", 1},
        {"{\"type\":\"Property\",\"value\":1e+300,\"observedAt\":\"2026-01-15T00:00:03.000Z\"}", 1},
        /* values kept as decimals m / 10^k, and those that stay doubles */
        {"{\"type\":\"Property\",\"value\":-12.75,\"observedAt\":\"2026-01-15T00:00:03.100Z\"}", 1},
        {"{\"type\":\"Property\",\"value\":0.001,\"observedAt\":\"2026-01-15T00:00:03.200Z\"}", 1},
        {"{\"type\":\"Property\",\"value\":123456789.5,\"observedAt\":\"2026-01-15T00:00:03.300Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":0.1234567891,\"observedAt\":\"2026-01-15T00:00:03.400Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":4503599627370497,\"observedAt\":\"2026-01-15T00:00:03.500Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":1e-07,\"observedAt\":\"2026-01-15T00:00:03.600Z\"}", 1},
        {"{\"type\":\"Property\",\"value\":999999999.999999,\"observedAt\":\"2026-01-15T00:00:03.700Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":\"veryUnhealthy\",\"unitCode\":\"C62\","
         "\"observedAt\":\"2026-01-15T00:00:04.000Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":\"\",\"unitCode\":\"\","
         "\"observedAt\":\"2026-01-15T00:00:05.000Z\"}",
         1},
        {"{\"type\":\"Property\",\"value\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
         "\"unitCode\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\","
         "\"observedAt\":\"2026-01-15T00:00:05.500Z\"}",
         1}, /* 64 characters each: the longest that pack */
        /* other members, types, escapes, longer strings, other time forms */
        {"{\"type\":\"Property\",\"value\":1,\"observedAt\":\"2026-01-15T00:00:06Z\"}", 0},
        {"{\"type\":\"Property\",\"value\":\"caf\\u00e9\",\"observedAt\":\"2026-01-15T00:00:07.000Z\"}",
         0},
        {"{\"type\":\"Property\",\"value\":\"a\\\"b\",\"observedAt\":\"2026-01-15T00:00:08.000Z\"}", 0},
        {"{\"type\":\"Property\",\"value\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
         "\"observedAt\":\"2026-01-15T00:00:09.000Z\"}",
         0},
        {"{\"type\":\"Property\",\"value\":2,\"observedAt\":\"2026-01-15T00:00:10.000Z\",\"x\":1}", 0},
        {"{\"type\":\"Property\",\"value\":true,\"observedAt\":\"2026-01-15T00:00:11.000Z\"}", 0},
        {"{\"type\":\"Property\",\"value\":[1,2],\"observedAt\":\"2026-01-15T00:00:12.000Z\"}", 0},
        {"{\"type\":\"GeoProperty\",\"value\":{\"type\":\"Point\",\"coordinates\":[4.3,52]},"
         "\"observedAt\":\"2026-01-15T00:00:13.000Z\"}",
         0},
        {"{\"type\":\"Property\",\"value\":3,\"unitCode\":\"C\\\\\","
         "\"observedAt\":\"2026-01-15T00:00:14.000Z\"}",
         0},
        {"{\"type\":\"Property\",\"value\":4,\"observedAt\":\"2026-01-15T00:00:15.000Z\","
         "\"datasetId\":\"urn:ds:a\"}",
         0},
        {"{\"type\":\"Property\",\"observedAt\":\"2026-01-15T00:00:16.000Z\",\"value\":5}", 0},
        {"{\"type\":\"Property\",\"value\":6,\"observedAt\":\"2026-01-15T00:00:17.000Z\","
         "\"unitCode\":\"CEL\"}",
         0},
        {"{\"type\":\"Property\",\"value\":7,\"unitCode\":8,\"observedAt\":\"2026-01-15T00:00:18.000Z\"}",
         0},
        {"{\"type\":\"Property\",\"value\":9,\"unitCode\":\"caf\\u00e9\","
         "\"observedAt\":\"2026-01-15T00:00:19.000Z\"}",
         0},
        {"{\"type\":\"Property\",\"value\":10,\"observedAt\":\"9999-12-31T23:59:59.999Z\"}", 1},
    };
    enum { N = sizeof(insts) / sizeof(insts[0]) };
    struct store *s = open_store();
    struct store_history_query q = {
        .entity_id = "urn:ngsi-ld:M:9", .from_ms = INT64_MIN, .to_ms = INT64_MAX};
    struct texts got = {{0}, {0}, 0}, again = {{0}, {0}, 0};
    struct store_op op;
    struct err e = {0};
    cJSON *hist = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(hist, "urn:p");
    char want_packed[1024] = "", have_packed[1024];
    int64_t before, after, t_row;
    (void)state;

    for (int i = 0; i < N; i++) {
        cJSON *j = cJSON_Parse(insts[i].json);
        const cJSON *obs = cJSON_GetObjectItem(j, "observedAt");
        int64_t ms;
        assert_non_null(j);
        assert_int_equal(tm_parse(obs->valuestring, &ms), 0);
        if (insts[i].packed) {
            size_t len = strlen(want_packed);
            snprintf(want_packed + len, sizeof(want_packed) - len, "%lld;", (long long)ms);
        }
        cJSON_AddItemToArray(arr, j);
    }
    before = tm_now_ms();
    temporal_upsert(s, hist);
    after = tm_now_ms();
    cJSON_Delete(hist);

    assert_int_equal(store_history(s, &q, collect_text, &got, &e), 0);
    assert_int_equal(got.n, N);
    for (int i = 0; i < N; i++) {
        /* what went in, with the timestamps the store gave it */
        cJSON *want = cJSON_Parse(insts[i].json), *read = cJSON_Parse(got.text[i]);
        const char *sys[] = {"createdAt", "modifiedAt"};
        assert_non_null(read);
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItem(read, sys[k]);
            int64_t ms;
            assert_true(cJSON_IsString(v));
            assert_int_equal(tm_parse(v->valuestring, &ms), 0);
            assert_true(ms >= before && ms <= after);
            cJSON_AddStringToObject(want, sys[k], v->valuestring);
        }
        char *txt = json_print(want, NULL);
        assert_string_equal(got.text[i], txt);
        free(txt);
        cJSON_Delete(want);
        cJSON_Delete(read);
    }
    texts_free(&got);
    assert_int_equal(store_settle(s), 0); /* the rows in hist_rows, to look at */
    packed_rows(have_packed, sizeof(have_packed));
    assert_string_equal(have_packed, want_packed);
    /* nums: aid, delta, flags, then -12.75 as the varint of -1275 (2 bytes)
     * but 0.1234567891 (10 decimals) as an 8-byte double */
    assert_int_equal(nums_len_at("2026-01-15T00:00:03.100Z"), 5);
    assert_int_equal(nums_len_at("2026-01-15T00:00:03.400Z"), 11);

    /* one row of three attributes at one time (packed, JSON, packed); the
     * JSON one deleted: the row is rewritten from the other two's text */
    hist = cJSON_Parse("{\"urn:q\":[{\"type\":\"Property\",\"value\":1.5,\"unitCode\":\"CEL\","
                       "\"observedAt\":\"2026-02-01T00:00:00.000Z\"}],"
                       "\"urn:r\":[{\"type\":\"Property\",\"value\":{\"a\":1},"
                       "\"observedAt\":\"2026-02-01T00:00:00.000Z\"}],"
                       "\"urn:s\":[{\"type\":\"Property\",\"value\":\"on\","
                       "\"observedAt\":\"2026-02-01T00:00:00.000Z\"}]}");
    assert_non_null(hist);
    temporal_upsert(s, hist);
    cJSON_Delete(hist);
    assert_int_equal(tm_parse("2026-02-01T00:00:00Z", &t_row), 0);
    q.from_ms = t_row;
    q.to_ms = t_row + 1;
    assert_int_equal(store_history(s, &q, collect_text, &got, &e), 0);
    assert_int_equal(got.n, 3); /* urn:q, urn:r, urn:s */
    int64_t q_iid = got.iid[0];
    memset(&op, 0, sizeof(op));
    op.kind = STORE_HISTORY_DELETE;
    op.entity_id = "urn:ngsi-ld:M:9";
    op.attr_iri = "urn:r";
    op.instance_id = got.iid[1];
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, 0);
    store_ops_clear(&op, 1);
    assert_int_equal(store_history(s, &q, collect_text, &again, &e), 0);
    assert_int_equal(again.n, 2);
    assert_string_equal(again.text[0], got.text[0]);
    assert_string_equal(again.text[1], got.text[2]);
    assert_int_equal(again.iid[0], got.iid[0]);
    assert_int_equal(again.iid[1], got.iid[2]);
    texts_free(&got);
    texts_free(&again);
    store_close(s);

    /* the rewritten row's body holds the two packed entries, no JSON */
    int body_len = row_len_at("body", t_row);
    assert_true(body_len > 0 && body_len < 60);

    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    snprintf(path, sizeof(path), "%s/pilotlight.db", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);

    /* damaged packed entries are errors, not text: a string byte that
     * packing never writes (in the entry of the sub-row at t_row), then a
     * cut row (its last entry, or a chunk shorter than its sub-rows say) */
    struct hsub subs[256];
    int n_subs = hist_subs(subs, 256), at = -1;
    for (int i = 0; i < n_subs; i++)
        if (subs[i].t == t_row)
            at = i;
    assert_true(at >= 0);
    static const char *const damage[] = {
        "UPDATE hist_rows SET body = substr(body, 1, ?2 + 4) || x'22' || substr(body, ?2 + 6)"
        " WHERE rid = ?1",
        "UPDATE hist_rows SET body = substr(body, 1, length(body) - 1) WHERE rid = ?1 AND ?2 >= 0",
    };
    for (int k = 0; k < 2; k++) {
        struct store *s2;
        assert_int_equal(sqlite3_prepare_v2(db, damage[k], -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_int64(st, 1, subs[at].rid);
        sqlite3_bind_int(st, 2, subs[at].body_off);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        s2 = open_store();
        assert_int_equal(store_history(s2, &q, collect_text, &got, &e), ERR_INTERNAL);
        texts_free(&got);
        /* a PATCH of an instance of that row fails alone, as damaged: the
         * write beside it in the group commits */
        cJSON *patch = cJSON_Parse("{\"value\":2}");
        char other[32];
        snprintf(other, sizeof(other), "urn:x:damaged-%d", k);
        struct store_op two[2] = {{.kind = STORE_HISTORY_PATCH,
                                   .tenant = "",
                                   .entity_id = "urn:ngsi-ld:M:9",
                                   .attr_iri = "urn:q",
                                   .instance_id = q_iid,
                                   .inst = patch},
                                  {.kind = STORE_CREATE,
                                   .tenant = "",
                                   .doc = entity("{\"id\":\"urn:x:0\",\"type\":\"T\"}")}};
        cJSON_ReplaceItemInObject(two[1].doc, "id", cJSON_CreateString(other));
        assert_int_equal(store_write(s2, two, 2), 0);
        assert_int_equal(two[0].err.code, ERR_INTERNAL);
        assert_int_equal(two[1].err.code, 0);
        cJSON *doc2 = NULL;
        assert_int_equal(store_entity_get(s2, "", other, &doc2, &e), 0);
        cJSON_Delete(doc2);
        store_ops_clear(two, 2);
        cJSON_Delete(two[1].doc);
        cJSON_Delete(patch);
        store_close(s2);
    }
    sqlite3_close(db);
}

/* Run one SQL statement on the database beside the store. */
static void sql(const char *stmt)
{
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/pilotlight.db", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void replace_m9(struct store *s, const char *json)
{
    struct store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = STORE_UPSERT_REPLACE;
    op.entity_id = "urn:ngsi-ld:M:9";
    op.doc = entity(json);
    assert_int_equal(store_write(s, &op, 1), 0);
    assert_int_equal(op.err.code, 0);
    store_ops_clear(&op, 1);
    cJSON_Delete(op.doc);
}

/* How many deletion records the history of M:9 holds. */
static int deletions(struct store *s)
{
    struct collected c = {{0}};
    struct err e = {0};
    struct store_history_query q = {
        .entity_id = "urn:ngsi-ld:M:9", .from_ms = INT64_MIN, .to_ms = INT64_MAX};
    int n = 0;
    assert_int_equal(store_history(s, &q, collect, &c, &e), 0);
    for (const char *p = c.text; (p = strstr(p, "urn:ngsi-ld:null")) != NULL; p++)
        n++;
    return n;
}

/* A replace records what it drops: the entity row's signature says when
 * nothing is; rows without one (written before schema v10) have their old
 * document read. A damaged stored document is replaced all the same. */
static void test_replace_records_what_it_drops(void **state)
{
    static const char two[] = "{\"id\":\"urn:ngsi-ld:M:9\",\"type\":\"M\","
                              "\"a\":{\"type\":\"Property\",\"value\":1,"
                              "\"observedAt\":\"2026-01-01T00:00:00Z\"},"
                              "\"b\":{\"type\":\"Property\",\"value\":2,"
                              "\"observedAt\":\"2026-01-01T00:00:00Z\"}}";
    static const char one[] = "{\"id\":\"urn:ngsi-ld:M:9\",\"type\":\"M\","
                              "\"a\":{\"type\":\"Property\",\"value\":3,"
                              "\"observedAt\":\"2026-01-01T01:00:00Z\"}}";
    struct store *s = open_store();
    (void)state;

    replace_m9(s, two); /* creates */
    assert_int_equal(deletions(s), 0);
    replace_m9(s, one); /* drops b */
    assert_int_equal(deletions(s), 1);
    replace_m9(s, one); /* drops nothing */
    assert_int_equal(deletions(s), 1);
    replace_m9(s, two);
    store_close(s);

    /* a row from before v10 (no signature): the old document is read */
    sql("UPDATE entities SET asig = NULL");
    s = open_store();
    replace_m9(s, one);
    assert_int_equal(deletions(s), 2);
    store_close(s);

    /* the same signature and a damaged document: replaced */
    sql("UPDATE entities SET doc = '{damaged'");
    s = open_store();
    replace_m9(s, one);
    assert_int_equal(deletions(s), 2);
    store_close(s);
    /* no signature and damaged: replaced all the same (what it dropped is lost) */
    sql("UPDATE entities SET doc = '{damaged', asig = NULL");
    s = open_store();
    replace_m9(s, two);
    cJSON *got = NULL;
    struct err e = {0};
    assert_int_equal(store_entity_get(s, "", "urn:ngsi-ld:M:9", &got, &e), 0);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "attrs"),
                                        "https://uri.etsi.org/ngsi-ld/default-context/b"));
    cJSON_Delete(got);
    assert_int_equal(deletions(s), 2);
    store_close(s);
}

/* Under steady writes the background checkpointer keeps the WAL short:
 * each time it holds checkpoint_frames new frames a pass runs (here the
 * test lets it finish before the next write), the writer's next
 * transaction starts the WAL over, and the writer never has to checkpoint
 * itself. A checkpointer that loses count after a restart lets the WAL
 * creep up to the writer's limit (16 x checkpoint_frames). */
static int count_text_len(void *ud, const char *attr, int64_t iid, int64_t t, const char *inst)
{
    size_t *c = ud;
    (void)attr, (void)iid, (void)t;
    c[0]++;
    c[1] += strlen(inst);
    return 0;
}

/* Big instances (JSON text of 100 KB each, 30 times in one temporal
 * write): the chunks keep to CHUNK_BODY_MAX (256 KiB; an uncapped chunk of
 * 64 such writes could pass the row limit and fail every settle), and every
 * instance reads back. */
static void test_big_instances_cap_chunks(void **state)
{
    enum { N = 30, BIG = 100000 };
    struct store *s = open_store();
    struct store_history_query q = {
        .entity_id = "urn:ngsi-ld:M:9", .from_ms = INT64_MIN, .to_ms = INT64_MAX};
    struct err e = {0};
    char *big = malloc(BIG + 1), at[32];
    size_t got[2] = {0, 0};
    (void)state;

    assert_non_null(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    cJSON *hist = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(hist, "urn:p");
    for (int i = 0; i < N; i++) { /* one op: written in runs of several */
        cJSON *inst = cJSON_CreateObject();
        snprintf(at, sizeof(at), "2026-03-01T00:00:%02d.000Z", i);
        cJSON_AddStringToObject(inst, "type", "Property");
        cJSON_AddStringToObject(inst, "value", big);
        cJSON_AddStringToObject(inst, "observedAt", at);
        cJSON_AddItemToArray(arr, inst);
    }
    temporal_upsert(s, hist);
    cJSON_Delete(hist);
    free(big);
    assert_int_equal(store_settle(s), 0);
    assert_int_equal(store_history(s, &q, count_text_len, got, &e), 0);
    assert_int_equal(got[0], N);
    assert_true(got[1] > (size_t)N * BIG);

    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    snprintf(path, sizeof(path), "%s/pilotlight.db", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), max(length(body)) FROM hist_rows"
                                        " WHERE substr(nums, 1, 1) = x'00'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int(st, 0) >= 1);           /* chunks were written */
    assert_true(sqlite3_column_int(st, 1) <= 256 * 1024);  /* none past the cap */
    sqlite3_finalize(st);
    sqlite3_close(db);
    store_close(s);
}

static void test_wal_restarts_under_steady_writes(void **state)
{
    struct store_config c = {
        .backend = "sqlite", .data_dir = dir, .group_max = 100, .checkpoint_frames = 8};
    struct store *s = NULL;
    struct store_stats st, st0 = {0};
    struct err e = {0};
    char *json = malloc(9000);
    int64_t max = 0;
    (void)state;

    assert_non_null(json);
    assert_int_equal(store_open(&c, &s, &e), 0);
    for (int i = 0; i < 1000; i++) {
        struct store_op op = {.kind = STORE_UPSERT_REPLACE, .tenant = ""};
        int n = snprintf(json, 9000, "{\"id\":\"urn:w:%d\",\"type\":\"W\",\"blob\":\"", i % 40);
        memset(json + n, 'a' + i % 26, 8000);
        snprintf(json + n + 8000, 9000 - n - 8000, "\"}");
        op.doc = entity(json);
        assert_int_equal(store_write(s, &op, 1), 0);
        assert_int_equal(op.err.code, 0);
        cJSON_Delete(op.doc);
        store_ops_clear(&op, 1);
        /* let a due pass run and end (the deadline only stops a hang) */
        for (int w = 0;; w++) {
            store_stats(s, &st);
            if (!st.ckpt_pending)
                break;
            assert_true(w < 600000);
            usleep(100);
        }
        if (i == 0)
            st0 = st; /* the schema's own frames are behind us */
        else if (st.wal_frames > max)
            max = st.wal_frames;
    }
    store_stats(s, &st);
    print_message("wal: %lld frames max, %llu restarts, %llu passes, %llu forced\n", (long long)max,
                  (unsigned long long)(st.wal_restarts - st0.wal_restarts),
                  (unsigned long long)(st.ckpt_passes - st0.ckpt_passes),
                  (unsigned long long)(st.ckpt_forced - st0.ckpt_forced));
    assert_true(st.ckpt_passes - st0.ckpt_passes >= 150);
    assert_true(st.wal_restarts - st0.wal_restarts >= 150);
    assert_true(st.ckpt_forced == st0.ckpt_forced);
    assert_true(max < 16 * 8);
    store_close(s);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_and_reads),
        cmocka_unit_test(test_docs_survive_reopen),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_temporal_ops_and_retention),
        cmocka_unit_test_setup_teardown(test_history_v5_upgrade_and_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregation_before_1970, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_keeps_instance_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_restarts_under_steady_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_records_what_it_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_instances_cap_chunks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
