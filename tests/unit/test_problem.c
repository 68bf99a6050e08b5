/* test_problem.c - every error code maps to the right HTTP status and
 * NGSI-LD error type, and the ProblemDetails body has its members. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http/http.h"

#define NS "https://uri.etsi.org/ngsi-ld/errors/"

static void test_mapping(void **state)
{
    static const struct {
        int code, status;
        const char *type;
    } want[] = {
        {ERR_INVALID_REQUEST, 400, NS "InvalidRequest"},
        {ERR_BAD_DATA, 400, NS "BadRequestData"},
        {ERR_NOT_FOUND, 404, NS "ResourceNotFound"},
        {ERR_NO_TENANT, 404, NS "NonexistentTenant"},
        {ERR_EXISTS, 409, NS "AlreadyExists"},
        {ERR_NOT_SUPPORTED, 422, NS "OperationNotSupported"},
        {ERR_LD_CONTEXT, 503, NS "LdContextNotAvailable"},
        {ERR_TOO_MANY, 403, NS "TooManyResults"},
        {ERR_METHOD, 405, NS "OperationNotSupported"},
        {ERR_NOT_ACCEPTABLE, 406, NS "InvalidRequest"},
        {ERR_TOO_LARGE, 413, NS "InvalidRequest"},
        {ERR_MEDIA_TYPE, 415, NS "InvalidRequest"},
        {ERR_INTERNAL, 500, NS "InternalError"},
        {ERR_NOMEM, 500, NS "InternalError"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(problem_status(want[i].code), want[i].status);
        assert_string_equal(problem_type(want[i].code), want[i].type);
    }
}

static void test_body(void **state)
{
    cJSON *pd = problem_json(ERR_EXISTS, "entity urn:x already exists");
    (void)state;
    assert_string_equal(cJSON_GetObjectItem(pd, "type")->valuestring, NS "AlreadyExists");
    assert_string_equal(cJSON_GetObjectItem(pd, "detail")->valuestring,
                        "entity urn:x already exists");
    assert_int_equal(cJSON_GetObjectItem(pd, "status")->valueint, 409);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(pd, "title")));
    cJSON_Delete(pd);
    pd = problem_json(ERR_BAD_DATA, NULL); /* never an empty detail */
    assert_true(strlen(cJSON_GetObjectItem(pd, "detail")->valuestring) > 0);
    cJSON_Delete(pd);
}

static void test_err_slot(void **state)
{
    struct err e = {0};
    (void)state;
    assert_int_equal(err_set(&e, ERR_BAD_DATA, "first %d", 1), ERR_BAD_DATA);
    assert_int_equal(err_set(&e, ERR_INTERNAL, "second"), ERR_INTERNAL);
    assert_int_equal(e.code, ERR_BAD_DATA); /* the first, precise error wins */
    assert_string_equal(e.detail, "first 1");
    err_clear(&e);
    assert_int_equal(e.code, 0);
    assert_int_equal(err_set(NULL, ERR_IO, "x"), ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_err_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
