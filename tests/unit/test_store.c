/* test_store.c - the store on a fresh SQLite data dir: writes through the
 * writer, reads, configuration documents, change events, reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld/ld.h"
#include "model/entity.h"
#include "store/store.h"

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

static void listener(void *ud, const struct store_event *evs, size_t n)
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

    assert_int_equal(store_listen(s, listener, &seen), 0);
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct store_op){.kind = STORE_CREATE, .tenant = "",
                               .doc = entity("{\"id\":\"urn:x:1\",\"type\":\"T\",\"n\":1}")};
    ops[1] = (struct store_op){.kind = STORE_CREATE, .tenant = "",
                               .doc = entity("{\"id\":\"urn:x:1\",\"type\":\"T\",\"n\":2}")};
    ops[2] = (struct store_op){.kind = STORE_UPSERT_REPLACE, .tenant = "city",
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_and_reads),
        cmocka_unit_test(test_docs_survive_reopen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
