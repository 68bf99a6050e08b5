/*
 * http.h - the HTTP server (libmicrohttpd), router, request context and
 * responses.
 *
 * Threads: one MHD polling thread per worker (epoll, thread pool); every
 * handler runs on one of them. A handler never blocks on a write: it hands
 * its ops to the store writer, calls req_suspend() and returns
 * HTTP_ASYNC; the writer's completion calls req_resume() (any thread), and
 * the server then runs the continuation r->cont on the connection's own
 * thread to build the response. So a few threads serve thousands of
 * in-flight writes, and the writer commits them in groups.
 *
 * The request context (struct req) carries everything about the caller:
 * tenant, resolved @context, error slot, query parameters, and will carry
 * the caller's identity (partner, role, scopes) once tokens exist. Nothing
 * else re-derives who the caller is.
 */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util/err.h"

struct ld_ctx;
struct http_server;

enum http_method {
    HTTP_GET = 1,
    HTTP_POST = 2,
    HTTP_PUT = 4,
    HTTP_PATCH = 8,
    HTTP_DELETE = 16,
    HTTP_HEAD = 32,
    HTTP_OPTIONS = 64,
};

/* What a handler (or continuation) returns. */
enum { HTTP_DONE = 0, HTTP_ASYNC = 1 };

/* Response media types, from the Accept header. */
enum http_mime { MIME_JSON = 1, MIME_LD_JSON = 2, MIME_GEO_JSON = 4, MIME_EVENT_STREAM = 8 };

#define REQ_MAX_PARAMS 4
#define REQ_MAX_HEADERS 12

struct req;
typedef int (*http_handler_fn)(struct req *r);

/* Who is calling. Anonymous for now; the governance issue fills it from
 * the token (partner, role, scopes). */
struct caller {
    const char *partner; /* NULL = anonymous */
    int role;
};

struct req {
    /* the request */
    int method;
    const char *path;                  /* decoded, without query, trailing '/' removed */
    const char *route_params[REQ_MAX_PARAMS]; /* {captures} of the matched route, in order */
    int n_route_params;
    int route_flags;                   /* flags of the matched route */
    const char *body;                  /* NUL-terminated, NULL if none */
    size_t body_len;
    int accept;                        /* MIME_* chosen for the response */

    /* the request context */
    const char *tenant;                /* "" = default tenant */
    struct caller caller;
    struct ld_ctx *ctx;                /* active @context (set by api_ctx_*), released at the end */
    cJSON *ctx_value;                  /* the @context value to echo in responses */
    struct err err;                    /* the error slot: becomes ProblemDetails */

    /* async continuation */
    http_handler_fn cont;              /* run on the connection's thread after req_resume */
    void *cont_ud;
    void (*cont_free)(void *ud);       /* frees cont_ud when the request ends */

    void *app;                         /* the application (api/) state */

    /* private to the server */
    struct req_priv *priv;
};

/* A route: pattern segments like "/ngsi-ld/v1/entities/{id}/attrs/{attrId}". */
struct http_route {
    int method;
    const char *pattern;
    http_handler_fn fn;
    int flags;          /* HTTP_ROUTE_* */
};

/* The handler checks the request's Content-Type itself (text/csv bodies,
 * webhooks), instead of the server requiring JSON. */
#define HTTP_ROUTE_ANY_BODY 1
/* The handler answers with a stream (req_reply_stream): the route serves
 * text/event-stream (also for a missing Accept, text/ * and * / *) and
 * nothing else. */
#define HTTP_ROUTE_STREAM 2

struct http_config {
    const char *bind;
    int port;                 /* 0 = any free port */
    int threads;
    size_t max_body;
    int max_connections;
    const struct http_route *routes;
    size_t n_routes;
    void *app;
};

/* Start serving. Returns 0 and *out. */
int http_start(const struct http_config *c, struct http_server **out, struct err *e);
/* The port actually bound. */
int http_port(const struct http_server *s);
/* Refuse new suspensions (req_suspend fails) and wait up to ms for the
 * suspended requests to be resumed and answered. After the store has been
 * drained, every suspended request is resumed, so this ends quickly. */
void http_close_suspensions(struct http_server *s, int ms);
/* Close every connection and stop the threads. No connection may be
 * suspended (drain the store first). */
void http_stop(struct http_server *s);

/* --- for handlers ------------------------------------------------------ */

/* A query-string parameter (decoded), NULL if absent. */
const char *req_query(struct req *r, const char *name);
/* Call fn(ud, key, raw_value) for each query-string argument, value still
 * percent-encoded as received (NULL for a bare key). */
void req_query_each(struct req *r, void (*fn)(void *ud, const char *key, const char *raw),
                    void *ud);
/* A request header, NULL if absent. */
const char *req_header(struct req *r, const char *name);
/* Add a response header (copied). */
int req_add_header(struct req *r, const char *name, const char *value);
/* Reply with a JSON body (takes ownership of body; NULL = no body). */
int req_reply_json(struct req *r, int status, cJSON *body);
/* Reply with a prepared text body (copied) and content type. */
int req_reply_text(struct req *r, int status, const char *content_type, const char *text, size_t len);
/* Reply with ProblemDetails for the error in r->err (code defaults to
 * ERR_INTERNAL). Always returns HTTP_DONE. */
int req_reply_error(struct req *r);
/* Set the error and reply with ProblemDetails. */
int req_fail(struct req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Suspend the connection: the handler returns HTTP_ASYNC after setting
 * r->cont. Call before handing work to another thread. Fails with
 * ERR_UNAVAILABLE once the server is closing (answer 503 then). */
int req_suspend(struct req *r);
/* Resume (any thread): r->cont runs on the connection's thread next. */
void req_resume(struct req *r);

/* --- streamed responses (server-sent events) --------------------------------
 * A stream is a response body of unknown length (chunked) fed from any
 * thread. Its bytes wait in a buffer capped at cap bytes; MHD's content
 * reader takes them on the connection's own thread and, when the buffer is
 * empty, suspends the connection from inside the reader (so no worker ever
 * blocks on a stream); a write resumes it. A suspended stream is counted
 * like a suspended request, and http_close_suspensions ends every stream
 * (what is buffered is still sent), so MHD is never stopped with a
 * suspended connection. Reference counted: the creator holds one reference,
 * the response (once req_reply_stream queued it) another. Thread-safe. */
struct http_stream;

/* A new stream whose buffer holds at most cap bytes (0: 1 MiB). NULL when
 * out of memory. The caller owns one reference. */
struct http_stream *http_stream_new(size_t cap);
/* Answer r with status 200, content_type and the stream as the body (takes
 * its own reference). Bytes written before this are sent first. Returns
 * HTTP_DONE. */
int req_reply_stream(struct req *r, const char *content_type, struct http_stream *s);
/* Append len bytes (copied). 0; ERR_TOO_LARGE when they do not fit in the
 * buffer (nothing appended: a slow reader); ERR_UNAVAILABLE when the
 * stream is over (client gone, closed, server stopping). */
int http_stream_write(struct http_stream *s, const char *data, size_t len);
/* End the stream after what is buffered and final (len bytes, may be NULL;
 * appended even past the cap). Idempotent. */
void http_stream_close(struct http_stream *s, const char *final, size_t len);
/* 1 while writes may succeed (not closed, client not known to be gone). */
int http_stream_alive(struct http_stream *s);
/* Drop the caller's reference. Accepts NULL. */
void http_stream_release(struct http_stream *s);

/* --- ProblemDetails (problem.c) ------------------------------------------ */

/* HTTP status and NGSI-LD error type URI of an ERR_* code. */
int problem_status(int code);
const char *problem_type(int code);
/* {"type", "title", "status", "detail"}: caller frees. */
cJSON *problem_json(int code, const char *detail);

#endif
