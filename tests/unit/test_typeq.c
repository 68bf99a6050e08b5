/* test_typeq.c - the type selector: comma lists, | ; and parentheses,
 * errors with positions, matching, index sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/typeq.h"

static char *upper_iri(void *ud, const char *name)
{
    (void)ud;
    char *s = malloc(strlen(name) + 8);
    strcpy(s, "urn:t:");
    strcat(s, name);
    return s;
}

static int matches(const char *expr, const char *types_json)
{
    struct typeq *t = NULL;
    char doc[512];
    cJSON *d;
    int m;
    assert_int_equal(typeq_parse(expr, &t, NULL), 0);
    assert_int_equal(typeq_expand(t, upper_iri, NULL), 0);
    snprintf(doc, sizeof(doc), "{\"id\":\"urn:x\",\"type\":%s}", types_json);
    d = cJSON_Parse(doc);
    m = typeq_match(t, d);
    cJSON_Delete(d);
    typeq_free(t);
    return m;
}

static void test_match(void **state)
{
    (void)state;
    assert_true(matches("A", "[\"urn:t:A\"]"));
    assert_false(matches("A", "[\"urn:t:B\"]"));
    assert_true(matches("A,B", "[\"urn:t:B\"]"));
    assert_true(matches("A|B", "[\"urn:t:B\"]"));
    assert_false(matches("A;B", "[\"urn:t:B\"]"));
    assert_true(matches("A;B", "[\"urn:t:B\",\"urn:t:A\"]"));
    assert_true(matches("(A;B)|C", "[\"urn:t:C\"]"));
    assert_false(matches("(A;B)|C", "[\"urn:t:A\"]"));
    assert_true(matches("A;(B|C)", "[\"urn:t:A\",\"urn:t:C\"]"));
    assert_false(matches("A;(B|C)", "[\"urn:t:A\"]"));
}

static void test_errors(void **state)
{
    struct typeq *t = NULL;
    struct err e = {0};
    (void)state;
    assert_int_equal(typeq_parse("(A|B", &t, &e), ERR_INVALID_REQUEST);
    assert_non_null(strstr(e.detail, "position 4"));
    err_clear(&e);
    assert_int_equal(typeq_parse("A||B", &t, &e), ERR_INVALID_REQUEST);
    assert_non_null(strstr(e.detail, "position 2"));
    err_clear(&e);
    assert_int_equal(typeq_parse("", &t, &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(typeq_parse("A)", &t, &e), ERR_INVALID_REQUEST);
    assert_null(t);
}

static void test_index_types(void **state)
{
    struct typeq *t = NULL;
    const char *names[4];
    (void)state;
    assert_int_equal(typeq_parse("A,B,C", &t, NULL), 0);
    assert_int_equal(typeq_index_types(t, names, 4), 3);
    assert_string_equal(names[2], "C");
    assert_int_equal(typeq_index_types(t, names, 2), -1);
    typeq_free(t);
    assert_int_equal(typeq_parse("A;B", &t, NULL), 0);
    assert_int_equal(typeq_index_types(t, names, 4), 1);
    assert_string_equal(names[0], "A");
    typeq_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_index_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
