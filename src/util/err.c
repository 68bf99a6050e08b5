/*
 * err.c - the error slot (see err.h). No allocation, no global state.
 */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL || e->code != 0)
        return code;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
    return code;
}

void err_clear(struct err *e)
{
    if (e == NULL)
        return;
    e->code = 0;
    e->detail[0] = '\0';
}

const char *err_name(int code)
{
    switch (code) {
    case ERR_OK: return "OK";
    case ERR_NOMEM: return "OutOfMemory";
    case ERR_INTERNAL: return "InternalError";
    case ERR_INVALID_REQUEST: return "InvalidRequest";
    case ERR_BAD_DATA: return "BadRequestData";
    case ERR_NOT_FOUND: return "ResourceNotFound";
    case ERR_EXISTS: return "AlreadyExists";
    case ERR_NOT_SUPPORTED: return "OperationNotSupported";
    case ERR_LD_CONTEXT: return "LdContextNotAvailable";
    case ERR_NO_TENANT: return "NonexistentTenant";
    case ERR_TOO_LARGE: return "PayloadTooLarge";
    case ERR_MEDIA_TYPE: return "UnsupportedMediaType";
    case ERR_NOT_ACCEPTABLE: return "NotAcceptable";
    case ERR_METHOD: return "MethodNotAllowed";
    case ERR_TOO_MANY: return "TooManyResults";
    case ERR_IO: return "IOError";
    case ERR_UNAVAILABLE: return "ServiceUnavailable";
    case ERR_UNAUTHORIZED: return "Unauthorized";
    case ERR_FORBIDDEN: return "Forbidden";
    case ERR_RATE_LIMITED: return "TooManyRequests";
    }
    return "UnknownError";
}
