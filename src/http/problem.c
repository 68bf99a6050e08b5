/*
 * problem.c - ERR_* codes to RFC 7807 ProblemDetails with the NGSI-LD error
 * types (ETSI GS CIM 009, 5.5.2, table of error types). HTTP-level errors
 * (405, 406, 413, 415) have no NGSI-LD type of their own; they use the
 * closest one (InvalidRequest, OperationNotSupported for 405) and the right
 * status.
 */
#include "http/http.h"

#define NS "https://uri.etsi.org/ngsi-ld/errors/"

static const struct {
    int code;
    int status;
    const char *type;
    const char *title;
} table[] = {
    {ERR_INVALID_REQUEST, 400, NS "InvalidRequest", "Invalid request"},
    {ERR_BAD_DATA, 400, NS "BadRequestData", "Bad request data"},
    {ERR_NOT_FOUND, 404, NS "ResourceNotFound", "Resource not found"},
    {ERR_NO_TENANT, 404, NS "NonexistentTenant", "Nonexistent tenant"},
    {ERR_EXISTS, 409, NS "AlreadyExists", "Already exists"},
    {ERR_NOT_SUPPORTED, 422, NS "OperationNotSupported", "Operation not supported"},
    {ERR_LD_CONTEXT, 503, NS "LdContextNotAvailable", "JSON-LD context not available"},
    {ERR_TOO_MANY, 403, NS "TooManyResults", "Too many results"},
    {ERR_METHOD, 405, NS "OperationNotSupported", "Method not allowed"},
    {ERR_NOT_ACCEPTABLE, 406, NS "InvalidRequest", "Not acceptable"},
    {ERR_TOO_LARGE, 413, NS "InvalidRequest", "Payload too large"},
    {ERR_MEDIA_TYPE, 415, NS "InvalidRequest", "Unsupported media type"},
    {ERR_UNAVAILABLE, 503, NS "InternalError", "Service unavailable"},
    /* GS CIM 009 v1.8 defines no type for these; pilotlight names its own */
    {ERR_UNAUTHORIZED, 401, "urn:pilotlight:errors:Unauthorized", "Unauthorized"},
    {ERR_FORBIDDEN, 403, "urn:pilotlight:errors:Forbidden", "Forbidden"},
    {ERR_RATE_LIMITED, 429, "urn:pilotlight:errors:TooManyRequests", "Too many requests"},
};

static int find(int code)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].code == code)
            return (int)i;
    return -1;
}

int problem_status(int code)
{
    int i = find(code);
    return i < 0 ? 500 : table[i].status;
}

const char *problem_type(int code)
{
    int i = find(code);
    return i < 0 ? NS "InternalError" : table[i].type;
}

cJSON *problem_json(int code, const char *detail)
{
    int i = find(code);
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "type", problem_type(code));
    cJSON_AddStringToObject(o, "title", i < 0 ? "Internal error" : table[i].title);
    cJSON_AddNumberToObject(o, "status", problem_status(code));
    cJSON_AddStringToObject(o, "detail", detail && *detail ? detail : "no detail");
    return o;
}
