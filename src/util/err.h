/*
 * err.h - project-wide error codes and the error slot.
 *
 * Every fallible function returns 0 or a negative ERR_* code; results go
 * through out-parameters. The human-readable reason goes into a
 * struct err (the request's error slot), which the HTTP layer turns into
 * the ProblemDetails "detail". Each code maps to one NGSI-LD error type
 * (see http/problem.c). Thread-safe: an err belongs to one caller.
 */
#ifndef PL_ERR_H
#define PL_ERR_H

enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,           /* 500 InternalError */
    ERR_INTERNAL = -2,        /* 500 InternalError */
    ERR_INVALID_REQUEST = -3, /* 400 InvalidRequest: malformed request (syntax, params) */
    ERR_BAD_DATA = -4,        /* 400 BadRequestData: well-formed but invalid content */
    ERR_NOT_FOUND = -5,       /* 404 ResourceNotFound */
    ERR_EXISTS = -6,          /* 409 AlreadyExists */
    ERR_NOT_SUPPORTED = -7,   /* 422 OperationNotSupported */
    ERR_LD_CONTEXT = -8,      /* 503 LdContextNotAvailable */
    ERR_NO_TENANT = -9,       /* 404 NonexistentTenant */
    ERR_TOO_LARGE = -10,      /* 413 */
    ERR_MEDIA_TYPE = -11,     /* 415 */
    ERR_NOT_ACCEPTABLE = -12, /* 406 */
    ERR_METHOD = -13,         /* 405 */
    ERR_TOO_MANY = -14,       /* 403 TooManyResults */
    ERR_IO = -15,             /* 500 InternalError (storage, network) */
    ERR_UNAVAILABLE = -16,    /* 503 (shutting down, overloaded) */
    ERR_UNAUTHORIZED = -17,   /* 401: no or wrong credentials (admin, ingest secrets) */
    ERR_FORBIDDEN = -18,      /* 403: credentials valid, not allowed */
    ERR_RATE_LIMITED = -19,   /* 429: a source over its rate (ingest flood control) */
};

#define ERR_DETAIL_MAX 256

/* The error slot. code is 0 until err_set is called; the first error set wins,
 * so a low layer's precise reason is not overwritten by a generic caller. */
struct err {
    int code;
    char detail[ERR_DETAIL_MAX];
};

/* Record an error (printf-style detail) unless one is already set; returns
 * code so callers can write `return err_set(e, ERR_BAD_DATA, "...")`.
 * e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset the slot to "no error". */
void err_clear(struct err *e);

/* Short constant name of a code ("BadRequestData"...), for logs. */
const char *err_name(int code);

#endif
