/* test_json.c - json_print is byte-identical to cJSON_PrintUnformatted on
 * the fixture entities and on tricky numbers and strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "util/err.h"

static void same_as_cjson(const char *text)
{
    cJSON *t = cJSON_Parse(text);
    char *want, *have;
    size_t len = 0;
    assert_non_null(t);
    want = cJSON_PrintUnformatted(t);
    have = json_print(t, &len);
    assert_non_null(have);
    assert_string_equal(have, want);
    assert_int_equal(len, strlen(want));
    free(want);
    free(have);
    cJSON_Delete(t);
}

static void test_numbers(void **state)
{
    (void)state;
    same_as_cjson("[0,-0,1,-1,42,123456789012345,1e15,1e16,-1e300,0.1,0.7,1.5,-2.25,"
                  "3.141592653589793,52.370539,4.890338,1e-7,2.5e-310,100.0,-0.0001]");
    /* the short-decimal path against cJSON's printf path, on many values */
    char text[64];
    for (int i = -20000; i <= 20000; i += 7) {
        snprintf(text, sizeof(text), "[%d.%d,%g,%.3f,%.6f]", i / 100, abs(i % 100), i / 7.0,
                 i / 1000.0, i * 0.000123);
        same_as_cjson(text);
    }
}

/* Where cJSON rounds (its check has an epsilon), we print what reads back
 * exactly. */
static void test_exact_round_trip(void **state)
{
    static const double v[] = {0.30000000000000004, 9007199254740993.0, 1.0000000000000002,
                               123456.78901234567, -7.0e-300, 5e-324};
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        cJSON *n = cJSON_CreateNumber(v[i]);
        char *text = json_print(n, NULL);
        double back = strtod(text, NULL);
        assert_memory_equal(&back, &v[i], sizeof(double));
        free(text);
        cJSON_Delete(n);
    }
}

static void test_strings(void **state)
{
    (void)state;
    same_as_cjson("{\"a\\\"b\":\"quote\\\" back\\\\ nl\\n tab\\t ctl\\u0001 \\u001f uni \\u00e9 "
                  "\\ud83d\\ude00\",\"empty\":\"\",\"n\":null,\"t\":true,\"f\":false,"
                  "\"nested\":{\"x\":[[],{},[{}]]}}");
}

/* Every character that needs an escape, at every offset of a long string
 * (json_print scans eight bytes at a time), beside UTF-8 and DEL. */
static void test_escapes_everywhere(void **state)
{
    static const char special[] = {'"', '\\', '\n', '\t', 0x01, 0x1f, '/', 0x7f, ' '};
    (void)state;
    for (size_t k = 0; k < sizeof(special); k++)
        for (int at = 0; at < 40; at++) {
            char s[64], text[160];
            cJSON *str;
            char *want, *have;
            memset(s, 'a', sizeof(s));
            memcpy(s + 10, "\xc3\xa9\xe2\x82\xac", 5); /* é € */
            s[at] = special[k];
            s[41 + at % 7] = '\0';
            str = cJSON_CreateString(s);
            assert_non_null(str);
            want = cJSON_PrintUnformatted(str);
            have = json_print(str, NULL);
            assert_non_null(have);
            assert_string_equal(have, want);
            snprintf(text, sizeof(text), "{%s:%s}", want, want); /* as a member name too */
            same_as_cjson(text);
            free(want);
            free(have);
            cJSON_Delete(str);
        }
}

/* json_member finds what cJSON_GetObjectItemCaseSensitive finds: names
 * that share a first byte, the empty name, case, absent members, NULLs. */
static void test_member(void **state)
{
    static const char *const names[] = {"datasetId", "d",     "data",   "datasetI", "",
                                        "DatasetId", "value", "valueX", "nope",     "v"};
    cJSON *o = cJSON_Parse("{\"data\":1,\"d\":2,\"datasetId\":3,\"\":4,\"value\":5,"
                           "\"valueX\":6,\"DatasetId\":7}");
    (void)state;
    assert_non_null(o);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_ptr_equal(json_member(o, names[i]), cJSON_GetObjectItemCaseSensitive(o, names[i]));
    assert_int_equal(json_member(o, "datasetId")->valueint, 3);
    assert_null(json_member(NULL, "d"));
    assert_null(json_member(o, NULL));
    cJSON_Delete(o);
}

static void test_fixtures(void **state)
{
    const char *dir = getenv("PL_FIXTURES");
    const char *names[] = {"airquality.jsonld", "streetlight.jsonld", "crowdflow.jsonld",
                           "device.jsonld", "city-context.jsonld"};
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1024], text[65536];
        snprintf(path, sizeof(path), "%s/entities/%s", dir ? dir : "/work/shared/fixtures",
                 names[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        same_as_cjson(text);
    }
}

static void test_cap(void **state)
{
    cJSON *t = cJSON_Parse("{\"k\":\"a long enough string value\"}");
    struct buf b;
    (void)state;
    buf_init(&b, 10);
    assert_int_equal(json_write(&b, t), ERR_TOO_LARGE);
    buf_free(&b);
    cJSON_Delete(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_exact_round_trip),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_escapes_everywhere),
        cmocka_unit_test(test_member),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
