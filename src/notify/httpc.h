/*
 * httpc.h - the HTTP/1.1 client that POSTs notifications to plain http://
 * receivers (prefix hc_).
 *
 * Why not libcurl for these: a notification is one small POST on a
 * keep-alive connection, and libcurl spent about half of the sender's CPU
 * on it (easy-handle setup, adding and removing the handle from the multi
 * handle, a poll() liveness check and two epoll_ctl calls per transfer,
 * its connection-cache lookup). Here a transfer on an open connection is
 * one sendmsg() and one recv(): the connection stays in its owner's epoll
 * set (level-triggered EPOLLIN) for as long as it is open, so a receiver
 * that closes an idle connection is noticed and the socket closed at once.
 * libcurl still sends to https:// receivers, and every HTTP notification
 * when a proxy is configured in the environment (notify.c decides).
 *
 * One struct hc per receiver URI, driven by one thread (its owner, the
 * dispatcher): at most one request at a time, each to completion (status,
 * or a failure with a reason) or to its deadline. Its owner passes in the
 * epoll set; the client adds, modifies and removes its own descriptors
 * there with the owner's tag as epoll_event.data.ptr, and the owner hands
 * each event with that tag back to hc_io. Names are resolved with
 * getaddrinfo on a short-lived thread of their own (an eventfd in the
 * epoll set says when it is done), so a slow DNS server never stalls the
 * other receivers; the addresses are kept for HC_ADDR_TTL_MS.
 *
 * Times (now_ms, deadlines) are on a monotonic clock: the caller's choice,
 * but a wall clock that steps would stall or fail requests. A connection
 * idle for HC_IDLE_MAX_MS is closed rather than reused (a NAT or firewall
 * may have dropped it without a word). A request whose connect times out
 * leaves that address last for the next attempt; a name lookup that times
 * out goes on, and the next attempt waits for it rather than starting
 * another.
 *
 * A request on a reused connection that the receiver had closed meanwhile
 * (the send fails, or the connection ends before any byte of an answer)
 * is sent again once on a new connection, as every HTTP client does; a
 * receiver may therefore see such a notification twice, never zero times.
 *
 * The response parser (hc_resp_*) is pure and fuzzed: status line,
 * headers (Content-Length, Transfer-Encoding: chunked, Connection; other
 * headers, however long, are skipped), interim 1xx answers, a body framed
 * by its length, by chunks or by the end of the connection. At most
 * HC_RESPONSE_MAX bytes of an answer are read; past that the connection is
 * closed and the answer's status counts.
 */
#ifndef PL_NOTIFY_HTTPC_H
#define PL_NOTIFY_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#define HC_RESPONSE_MAX (64u << 10) /* bytes of an answer read, at most */
#define HC_ADDR_TTL_MS 60000        /* a resolved name is kept this long */
#define HC_IDLE_MAX_MS 60000        /* a connection idle longer is not reused */
#define HC_HEAD_MAX (1u << 20)      /* bytes of a request's head (receiverInfo can be long) */

/* --- the response parser -------------------------------------------------- */

enum { HC_MORE = 0, HC_END = 1, HC_BAD = -1 };

struct hc_resp;

struct hc_resp *hc_resp_new(void);
void hc_resp_free(struct hc_resp *r);
/* Ready for the next response. */
void hc_resp_reset(struct hc_resp *r);
/* Feed the next n bytes of the connection. HC_MORE (all consumed), HC_END
 * (the response ended after *used bytes; what follows is no answer to
 * anything asked) or HC_BAD (hc_resp_error says why). */
int hc_resp_feed(struct hc_resp *r, const char *p, size_t n, size_t *used);
/* The connection ended: HC_END when that ends the response (a body framed
 * by the close), else HC_BAD. */
int hc_resp_eof(struct hc_resp *r);
/* The final (non-1xx) status once its header is read, else 0. */
int hc_resp_status(const struct hc_resp *r);
/* May the connection carry another request after this response? */
int hc_resp_keep(const struct hc_resp *r);
const char *hc_resp_error(const struct hc_resp *r);

/* --- the client ----------------------------------------------------------- */

enum { HC_AGAIN = 0, HC_DONE = 1, HC_FAILED = -1 };

struct hc;

/* A client for uri if it is an http:// URI this client takes (host name,
 * IPv4 or [IPv6] literal, optional port and user:password, which become
 * Basic authorization); else -1 and the caller uses libcurl. Nothing is
 * connected yet. */
int hc_open(const char *uri, int epfd, void *tag, struct hc **out);
/* Closes the connection (and drops a resolution in flight). */
void hc_free(struct hc *c);

/* Start POSTing body (len bytes) with the header lines headers (each
 * ending in CRLF; Host and Content-Length are the client's, and so is
 * Authorization when the URI has credentials and headers has none), to end
 * within timeout_ms of now_ms. HC_AGAIN (go on with
 * hc_io) or HC_FAILED (hc_reason). No request may be in progress. */
int hc_request(struct hc *c, const char *headers, const char *body, size_t len, int timeout_ms,
               int64_t now_ms);
/* An epoll event (EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP bits) of c's
 * tag. HC_AGAIN (nothing to report), HC_DONE (hc_status is the answer's)
 * or HC_FAILED (hc_reason). Between requests an event only closes a
 * connection the receiver ended: HC_AGAIN. */
int hc_io(struct hc *c, uint32_t events, int64_t now_ms);
/* HC_FAILED (and the request abandoned) if the request in progress is past
 * its deadline, else HC_AGAIN. */
int hc_expire(struct hc *c, int64_t now_ms);
/* The deadline of the request in progress, -1 when there is none. */
int64_t hc_deadline(const struct hc *c);
int hc_status(const struct hc *c);
const char *hc_reason(const struct hc *c);
/* Connections opened so far (tests and debugging: keep-alive reuse). */
unsigned long hc_connects(const struct hc *c);

#endif
