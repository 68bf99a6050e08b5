/*
 * httpc.c - the HTTP/1.1 client of plain http:// notifications (see
 * httpc.h for why and the contract).
 *
 * A client is a small state machine: IDLE (a keep-alive connection open,
 * or none), RESOLVE (a getaddrinfo thread running), CONNECT (a
 * non-blocking connect in progress), SEND (head and body going out with
 * sendmsg), RECV (the answer coming in, fed to the parser). Every state
 * but IDLE has a deadline. The descriptor in the owner's epoll set is the
 * socket (EPOLLOUT while connecting or while a send would block, EPOLLIN
 * otherwise) or, while resolving, the resolution's eventfd.
 *
 * The parser keeps one line at a time in a fixed buffer (status line,
 * header, chunk size); it needs only the first 12 bytes of the status
 * line and three headers whole, so the rest of a longer line is skipped,
 * unless it is one of those headers (an error then). Body
 * bytes are counted, never stored.
 */
#include "notify/httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "util/base64.h"
#include "util/buf.h"
#include "util/uri.h"

/* --- the response parser ----------------------------------------------------- */

#define LINE_MAX_LEN 512 /* bytes of a line kept; longer lines are skipped */

enum rstate {
    R_STATUS,     /* the status line */
    R_HEADER,     /* header lines up to the empty one */
    R_BODY_LEN,   /* body bytes left: len */
    R_BODY_EOF,   /* body until the connection ends */
    R_CHUNK_SIZE, /* a chunk-size line */
    R_CHUNK_DATA, /* chunk bytes left: len */
    R_CHUNK_CRLF, /* the empty line after a chunk */
    R_TRAILER,    /* trailer lines up to the empty one */
    R_END
};

struct hc_resp {
    enum rstate state;
    int status;       /* of the head being read, then the final one */
    int final_status; /* 0 until a non-1xx head is read */
    int minor;        /* HTTP/1.minor */
    int chunked, te_other, has_len, conn_close, conn_keep, keep;
    uint64_t len;
    char line[LINE_MAX_LEN];
    size_t n;     /* bytes of line */
    int overflow; /* the line was longer than line */
    const char *err;
};

struct hc_resp *hc_resp_new(void)
{
    struct hc_resp *r = calloc(1, sizeof(*r));
    return r;
}

void hc_resp_free(struct hc_resp *r)
{
    free(r);
}

void hc_resp_reset(struct hc_resp *r)
{
    memset(r, 0, sizeof(*r));
}

int hc_resp_status(const struct hc_resp *r)
{
    return r->final_status;
}

int hc_resp_keep(const struct hc_resp *r)
{
    return r->state == R_END && r->keep;
}

const char *hc_resp_error(const struct hc_resp *r)
{
    return r->err ? r->err : "";
}

static int bad(struct hc_resp *r, const char *why)
{
    r->err = why;
    return HC_BAD;
}

/* Does the token list v (comma-separated) hold tok, case-insensitively? */
static int has_token(const char *v, const char *tok)
{
    size_t lt = strlen(tok);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *s = v;
        while (*v && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == lt && strncasecmp(s, tok, lt) == 0)
            return 1;
    }
    return 0;
}

/* The last token of the list v is tok? (Transfer-Encoding: chunked must
 * be the final coding.) */
static int last_token_is(const char *v, const char *tok)
{
    const char *s = strrchr(v, ',');
    size_t lt = strlen(tok);
    s = s ? s + 1 : v;
    while (*s == ' ' || *s == '\t')
        s++;
    const char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (size_t)(e - s) == lt && strncasecmp(s, tok, lt) == 0;
}

static int status_line(struct hc_resp *r)
{
    const char *l = r->line; /* of a longer line, the start: all that is read */
    if (r->n == 0 && r->final_status == 0 && r->status == 0)
        return HC_MORE; /* tolerated: an empty line before the status line */
    if (r->n < 12 || strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
        l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' ||
        (r->n > 12 && l[12] != ' '))
        return bad(r, "not an HTTP/1.x status line");
    r->minor = l[7] - '0'; /* the reason phrase, however long, is ignored */
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    r->chunked = r->te_other = r->has_len = r->conn_close = r->conn_keep = 0;
    r->len = 0;
    r->state = R_HEADER;
    return HC_MORE;
}

/* The empty line ended a head: choose how the body is framed. */
static int head_end(struct hc_resp *r)
{
    if (r->status < 200) {
        if (r->status == 101)
            return bad(r, "the receiver switched protocols");
        r->state = R_STATUS; /* an interim answer: the real one follows */
        r->status = 0;
        return HC_MORE;
    }
    r->final_status = r->status;
    r->keep = r->minor >= 1 ? !r->conn_close : r->conn_keep && !r->conn_close;
    if (r->status == 204 || r->status == 304)
        r->state = R_END;
    else if (r->chunked)
        r->state = R_CHUNK_SIZE;
    else if (r->te_other) { /* framed by the end of the connection */
        r->state = R_BODY_EOF;
        r->keep = 0;
    } else if (r->has_len)
        r->state = r->len ? R_BODY_LEN : R_END;
    else {
        r->state = R_BODY_EOF;
        r->keep = 0;
    }
    return r->state == R_END ? HC_END : HC_MORE;
}

static int header_line(struct hc_resp *r)
{
    static const char *const known[] = {"content-length:", "transfer-encoding:", "connection:"};
    char *l = r->line, *colon, *v, *e;

    if (r->n == 0 && !r->overflow)
        return head_end(r);
    if (l[0] == ' ' || l[0] == '\t')
        return HC_MORE; /* an obsolete folded line: nothing we read continues */
    if (r->overflow) {
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strncasecmp(l, known[i], strlen(known[i])) == 0)
                return bad(r, "a framing header too long");
        return HC_MORE;
    }
    if ((colon = memchr(l, ':', r->n)) == NULL || colon == l)
        return bad(r, "malformed header line");
    *colon = '\0';
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    for (e = l + r->n; e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
        ;
    *e = '\0';
    if (strcasecmp(l, "Content-Length") == 0) {
        /* a list of one value repeated is that value (RFC 9110 8.6) */
        for (const char *p = v;;) {
            uint64_t x = 0;
            const char *d = p;
            for (; *p >= '0' && *p <= '9'; p++) {
                if (x > (UINT64_MAX - 9) / 10)
                    return bad(r, "bad Content-Length");
                x = x * 10 + (uint64_t)(*p - '0');
            }
            if (p == d)
                return bad(r, "bad Content-Length");
            if (r->has_len && x != r->len)
                return bad(r, "conflicting Content-Length values");
            r->has_len = 1;
            r->len = x;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '\0')
                break;
            if (*p++ != ',')
                return bad(r, "bad Content-Length");
            while (*p == ' ' || *p == '\t')
                p++;
        }
    } else if (strcasecmp(l, "Transfer-Encoding") == 0) {
        if (last_token_is(v, "chunked"))
            r->chunked = 1, r->te_other = 0;
        else
            r->te_other = 1, r->chunked = 0;
    } else if (strcasecmp(l, "Connection") == 0) {
        r->conn_close |= has_token(v, "close");
        r->conn_keep |= has_token(v, "keep-alive");
    }
    return HC_MORE;
}

static int chunk_size_line(struct hc_resp *r)
{
    uint64_t x = 0;
    size_t i = 0;
    int d;
    for (; i < r->n && (d = uri_hexval((unsigned char)r->line[i])) >= 0; i++) {
        if (x > (UINT64_MAX >> 4))
            return bad(r, "chunk size too large");
        x = (x << 4) | (uint64_t)d;
    }
    if (i == 0 || (i < r->n && r->line[i] != ';' && r->line[i] != ' ' && r->line[i] != '\t'))
        return bad(r, "bad chunk size");
    r->len = x;
    r->state = x ? R_CHUNK_DATA : R_TRAILER;
    return HC_MORE;
}

/* A whole line is in r->line (CR LF or LF stripped). */
static int line_done(struct hc_resp *r)
{
    int rc = HC_MORE;
    switch (r->state) {
    case R_STATUS: rc = status_line(r); break;
    case R_HEADER: rc = header_line(r); break;
    case R_CHUNK_SIZE: rc = chunk_size_line(r); break;
    case R_CHUNK_CRLF:
        if (r->n != 0 || r->overflow)
            return bad(r, "no line end after a chunk");
        r->state = R_CHUNK_SIZE;
        break;
    case R_TRAILER:
        if (r->n == 0 && !r->overflow) {
            r->state = R_END;
            rc = HC_END;
        }
        break;
    default: break;
    }
    r->n = 0;
    r->overflow = 0;
    return rc;
}

int hc_resp_feed(struct hc_resp *r, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    int rc = HC_MORE;

    if (r->err)
        return HC_BAD;
    while (i < n && rc == HC_MORE) {
        switch (r->state) {
        case R_BODY_LEN:
        case R_CHUNK_DATA: {
            uint64_t k = (uint64_t)(n - i) < r->len ? (uint64_t)(n - i) : r->len;
            i += (size_t)k;
            if ((r->len -= k) == 0) {
                if (r->state == R_CHUNK_DATA)
                    r->state = R_CHUNK_CRLF;
                else {
                    r->state = R_END;
                    rc = HC_END;
                }
            }
            break;
        }
        case R_BODY_EOF: i = n; break;
        case R_END: rc = HC_END; break;
        default: { /* a line state: take bytes up to LF */
            const char *lf = memchr(p + i, '\n', n - i);
            size_t k = (lf ? (size_t)(lf - (p + i)) : n - i);
            size_t room = sizeof(r->line) - 1 - r->n;
            if (k > room) {
                memcpy(r->line + r->n, p + i, room);
                r->n += room;
                r->overflow = 1;
            } else {
                memcpy(r->line + r->n, p + i, k);
                r->n += k;
            }
            i += k;
            if (lf == NULL)
                break;
            i++; /* the LF */
            if (r->n > 0 && r->line[r->n - 1] == '\r' && !r->overflow)
                r->n--;
            r->line[r->n] = '\0';
            rc = line_done(r);
            break;
        }
        }
    }
    if (used)
        *used = i;
    if (rc == HC_BAD && r->err == NULL)
        r->err = "bad response";
    return rc;
}

int hc_resp_eof(struct hc_resp *r)
{
    if (r->err)
        return HC_BAD;
    if (r->state == R_BODY_EOF) {
        r->state = R_END;
        r->keep = 0;
        return HC_END;
    }
    if (r->state == R_END)
        return HC_END;
    return bad(r, r->state == R_STATUS && r->n == 0 && r->status == 0
                      ? "the connection closed without an answer"
                      : "the connection closed before the answer ended");
}

/* --- name resolution ----------------------------------------------------------- */

/* One getaddrinfo on a thread of its own; two references (the thread's
 * and the client's), whoever drops the last frees it. */
struct rq {
    int refs;
    int done; /* set (release) after res / gai */
    int efd;
    char *host;
    char port[8];
    struct addrinfo *res;
    int gai;
};

static void rq_release(struct rq *q)
{
    if (q == NULL || __atomic_sub_fetch(&q->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (q->res)
        freeaddrinfo(q->res);
    if (q->efd >= 0)
        close(q->efd);
    free(q->host);
    free(q);
}

static void *rq_main(void *arg)
{
    struct rq *q = arg;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    uint64_t one = 1;
    q->gai = getaddrinfo(q->host, q->port, &hints, &q->res);
    __atomic_store_n(&q->done, 1, __ATOMIC_RELEASE);
    if (write(q->efd, &one, sizeof(one)) < 0) {
        /* the eventfd cannot overflow on one write; nothing to do */
    }
    rq_release(q);
    return NULL;
}

/* --- the client -------------------------------------------------------------------- */

#define HC_ADDRS 8

enum cstate { S_IDLE, S_RESOLVE, S_CONNECT, S_SEND, S_RECV };

struct hc {
    int epfd;
    void *tag;
    char *host; /* for getaddrinfo (an IPv6 literal without brackets) */
    char port[8];
    char *hostport; /* the Host header's value */
    char *path;     /* the request target */
    char *auth;     /* "Authorization: Basic ...\r\n", or NULL */
    int literal;    /* host is an IP literal: addr is set for good */
    struct sockaddr_storage addr[HC_ADDRS];
    socklen_t alen[HC_ADDRS];
    int n_addr, next_addr;
    int64_t addr_expires_ms;
    int64_t idle_since_ms; /* when the open connection's last answer ended */
    struct rq *rq;
    int fd;          /* the connection, -1 when none */
    int watched;     /* the descriptor in the epoll set (fd or the rq's efd), -1 when none */
    uint32_t events; /* its registered events */
    enum cstate state;
    int reused;  /* the request went out on a connection used before */
    int retried; /* the stale-connection retry was spent */
    struct buf head;
    const char *body;
    size_t len, sent; /* sent: bytes of head and body */
    int64_t deadline;
    int timeout_ms;
    size_t got; /* bytes of the answer read */
    struct hc_resp resp;
    int status;
    unsigned long connects;
    char reason[200];
};

static void watch(struct hc *c, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c->tag};
    if (c->watched == fd && c->events == events)
        return;
    if (c->watched == fd) {
        if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
            c->events = events;
        return;
    }
    if (c->watched >= 0 && c->watched != c->fd)
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->watched, NULL); /* the rq's eventfd */
    c->watched = -1;
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
        c->watched = fd;
        c->events = events;
    }
}

static void conn_close(struct hc *c)
{
    if (c->fd >= 0) {
        if (c->watched == c->fd)
            c->watched = -1; /* close() takes it out of the epoll set */
        close(c->fd);
        c->fd = -1;
    }
}

static void rq_drop(struct hc *c)
{
    if (c->rq == NULL)
        return;
    if (c->watched == c->rq->efd) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->rq->efd, NULL);
        c->watched = -1;
    }
    rq_release(c->rq);
    c->rq = NULL;
}

static int fail(struct hc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* End the request in progress with a reason (the connection closed). */
static int fail(struct hc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    conn_close(c);
    rq_drop(c);
    c->state = S_IDLE;
    c->deadline = -1;
    return HC_FAILED;
}

/* Parse "http://[user[:password]@]host[:port][/path][?query][#fragment]";
 * host is a name, an IPv4 literal or a bracketed IPv6 literal. */
static int parse_uri(struct hc *c, const char *uri)
{
    const char *p = uri + 7, *rest, *hp, *host, *host_end, *port = NULL;
    char hbuf[256];
    long pv = 80;

    if (strncasecmp(uri, "http://", 7) != 0)
        return -1;
    rest = p + strcspn(p, "/?#");
    hp = p;
    for (const char *q = p; q < rest; q++)
        if (*q == '@')
            hp = q + 1; /* the last '@' ends the user information */
    host = hp;
    if (*host == '[') {
        if ((host_end = memchr(host, ']', (size_t)(rest - host))) == NULL)
            return -1;
        if (host_end + 1 < rest && host_end[1] != ':')
            return -1;
        port = host_end + 1 < rest ? host_end + 2 : NULL;
        host++;
    } else {
        if ((host_end = memchr(host, ':', (size_t)(rest - host))) != NULL)
            port = host_end + 1;
        else
            host_end = rest;
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof(hbuf))
        return -1;
    if (port && port < rest) {
        pv = 0;
        for (const char *q = port; q < rest; q++)
            if (*q < '0' || *q > '9' || (pv = pv * 10 + (*q - '0')) > 65535)
                return -1;
        if (pv == 0)
            return -1;
    }
    snprintf(c->port, sizeof(c->port), "%u", (unsigned)pv & 0xffffu);
    memcpy(hbuf, host, (size_t)(host_end - host));
    hbuf[host_end - host] = '\0';
    if ((c->host = strdup(hbuf)) == NULL)
        return -1;
    /* Host: the authority as written, without the user information and
     * without an empty port ("host:") */
    size_t hl = (size_t)(rest - hp);
    if (hl > 0 && hp[hl - 1] == ':')
        hl--;
    if ((c->hostport = strndup(hp, hl)) == NULL)
        return -1;
    /* the target: path and query, without the fragment */
    int tlen = (int)strcspn(rest, "#");
    if (asprintf(&c->path, "%s%.*s", rest[0] == '/' ? "" : "/", tlen, rest) < 0) {
        c->path = NULL;
        return -1;
    }
    if (hp - 1 > p) { /* "http://@host": no credentials */
        char cred[512];
        char enc[B64_ENCODED_LEN(sizeof(cred)) + 1];
        /* user-id ":" password (RFC 7617), the password maybe empty */
        int ok = uri_pct_decode(p, (size_t)(hp - 1 - p), cred, sizeof(cred) - 1) == 0;
        if (ok && memchr(p, ':', (size_t)(hp - 1 - p)) == NULL)
            strcat(cred, ":");
        ok = ok && b64_encode((const uint8_t *)cred, strlen(cred), enc, sizeof(enc)) >= 0 &&
             asprintf(&c->auth, "Authorization: Basic %s\r\n", enc) >= 0;
        memset(cred, 0, sizeof(cred));
        memset(enc, 0, sizeof(enc));
        if (!ok) {
            c->auth = NULL;
            return -1;
        }
    }
    /* an IP literal needs no resolution */
    struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addr[0];
    if (inet_pton(AF_INET, c->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)pv);
        c->alen[0] = sizeof(*a4);
        c->n_addr = c->literal = 1;
    } else if (inet_pton(AF_INET6, c->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)pv);
        c->alen[0] = sizeof(*a6);
        c->n_addr = c->literal = 1;
    }
    return 0;
}

int hc_open(const char *uri, int epfd, void *tag, struct hc **out)
{
    struct hc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->epfd = epfd;
    c->tag = tag;
    c->fd = c->watched = -1;
    c->deadline = -1;
    buf_init(&c->head, HC_HEAD_MAX);
    if (parse_uri(c, uri) != 0) {
        hc_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void hc_free(struct hc *c)
{
    if (c == NULL)
        return;
    conn_close(c);
    rq_drop(c);
    buf_free(&c->head);
    free(c->host);
    free(c->hostport);
    free(c->path);
    if (c->auth) {
        memset(c->auth, 0, strlen(c->auth));
        free(c->auth);
    }
    free(c);
}

int64_t hc_deadline(const struct hc *c)
{
    return c->state == S_IDLE ? -1 : c->deadline;
}

int hc_status(const struct hc *c)
{
    return c->status;
}

const char *hc_reason(const struct hc *c)
{
    return c->reason;
}

unsigned long hc_connects(const struct hc *c)
{
    return c->connects;
}

static int sending(struct hc *c, int64_t now);

/* Connect to the next address that takes it (c->next_addr on). */
static int try_connect(struct hc *c, int64_t now)
{
    char why[120] = "no address";
    for (; c->next_addr < c->n_addr; c->next_addr++) {
        int i = c->next_addr, one = 1;
        int fd = socket(c->addr[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(why, sizeof(why), "%s", strerror(errno));
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        c->connects++;
        if (connect(fd, (struct sockaddr *)&c->addr[i], c->alen[i]) == 0) {
            c->fd = fd;
            c->state = S_SEND;
            return sending(c, now);
        }
        if (errno == EINPROGRESS) {
            c->fd = fd;
            c->state = S_CONNECT;
            watch(c, fd, EPOLLOUT);
            return c->watched == fd ? HC_AGAIN : fail(c, "cannot watch the socket");
        }
        snprintf(why, sizeof(why), "%s", strerror(errno));
        close(fd);
    }
    if (!c->literal)
        c->addr_expires_ms = 0; /* resolve again next time */
    return fail(c, "cannot connect to %s: %s", c->hostport, why);
}

/* Resolve c->host (its addresses are stale or unknown), or go on waiting
 * for the lookup an earlier attempt started. */
static int start_resolve(struct hc *c)
{
    struct rq *q;
    pthread_attr_t at;
    pthread_t th;
    int started = 0;

    if (c->rq != NULL) {
        c->state = S_RESOLVE;
        watch(c, c->rq->efd, EPOLLIN); /* level-triggered: fires at once if it is done */
        return HC_AGAIN;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return fail(c, "out of memory");
    q->refs = 2;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    snprintf(q->port, sizeof(q->port), "%s", c->port);
    if (q->efd < 0 || (q->host = strdup(c->host)) == NULL) {
        q->refs = 1;
        rq_release(q);
        return fail(c, "cannot resolve: out of resources");
    }
    if (pthread_attr_init(&at) == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&th, &at, rq_main, q) == 0;
        pthread_attr_destroy(&at);
    }
    if (!started) {
        q->refs = 1;
        rq_release(q);
        return fail(c, "cannot start a name resolution");
    }
    c->rq = q;
    c->state = S_RESOLVE;
    watch(c, q->efd, EPOLLIN);
    return HC_AGAIN; /* if watching failed, the deadline ends it */
}

static int resolved(struct hc *c, int64_t now)
{
    struct rq *q = c->rq;
    const struct addrinfo *ai;
    uint64_t v;

    if (!__atomic_load_n(&q->done, __ATOMIC_ACQUIRE))
        return HC_AGAIN;
    if (read(q->efd, &v, sizeof(v)) < 0) {
        /* nothing more to read: done says it all */
    }
    if (q->gai != 0) {
        char host[64];
        snprintf(host, sizeof(host), "%s", c->host);
        return fail(c, "cannot resolve %s: %s", host, gai_strerror(q->gai));
    }
    c->n_addr = 0;
    for (ai = q->res; ai && c->n_addr < HC_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(c->addr[0]))
            continue;
        memcpy(&c->addr[c->n_addr], ai->ai_addr, ai->ai_addrlen);
        c->alen[c->n_addr++] = (socklen_t)ai->ai_addrlen;
    }
    rq_drop(c);
    c->addr_expires_ms = now + HC_ADDR_TTL_MS;
    c->next_addr = 0;
    return try_connect(c, now);
}

/* Open a connection for the request (resolving first if need be). */
static int start_connect(struct hc *c, int64_t now)
{
    c->reused = 0;
    if (c->literal || (c->n_addr > 0 && now < c->addr_expires_ms)) {
        c->next_addr = 0;
        return try_connect(c, now);
    }
    return start_resolve(c);
}

/* The receiver closed a reused connection before answering: send again on
 * a new one, once. */
static int stale(struct hc *c, int64_t now, const char *why)
{
    if (!c->reused || c->retried || c->got > 0)
        return fail(c, "%s", why);
    conn_close(c);
    c->retried = 1;
    c->sent = 0;
    hc_resp_reset(&c->resp);
    return start_connect(c, now);
}

static int send_some(struct hc *c)
{
    size_t hl = c->head.len;
    while (c->sent < hl + c->len) {
        struct iovec iov[2];
        int k = 0;
        if (c->sent < hl)
            iov[k++] = (struct iovec){c->head.data + c->sent, hl - c->sent};
        if (c->len > 0) {
            size_t off = c->sent > hl ? c->sent - hl : 0;
            iov[k++] = (struct iovec){(void *)(c->body + off), c->len - off};
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(c, c->fd, EPOLLIN | EPOLLOUT);
                return HC_AGAIN;
            }
            return errno; /* the caller decides: stale or failed */
        }
        c->sent += (size_t)w;
    }
    c->state = S_RECV;
    watch(c, c->fd, EPOLLIN);
    return c->watched == c->fd ? HC_AGAIN : fail(c, "cannot watch the socket");
}

/* send_some, its errno outcomes turned into a stale retry or a failure:
 * HC_AGAIN or HC_FAILED. */
static int sending(struct hc *c, int64_t now)
{
    int rc = send_some(c);
    if (rc == HC_AGAIN || rc == HC_FAILED)
        return rc;
    return stale(c, now, strerror(rc));
}

/* Is the header name among the CRLF-ended lines h? */
static int has_header(const char *h, const char *name)
{
    size_t ln = strlen(name);
    while (h && *h) {
        const char *eol = strstr(h, "\r\n");
        if (strncasecmp(h, name, ln) == 0 && h[ln] == ':')
            return 1;
        h = eol ? eol + 2 : NULL;
    }
    return 0;
}

int hc_request(struct hc *c, const char *headers, const char *body, size_t len, int timeout_ms,
               int64_t now_ms)
{
    const char *auth = c->auth && !has_header(headers, "Authorization") ? c->auth : "";
    buf_reset(&c->head);
    if (buf_printf(&c->head, "POST %s HTTP/1.1\r\nHost: %s\r\n%s%sContent-Length: %zu\r\n\r\n",
                   c->path, c->hostport, auth, headers ? headers : "", len) != 0) {
        snprintf(c->reason, sizeof(c->reason), "the request head is over %u bytes (or no memory)",
                 HC_HEAD_MAX);
        return HC_FAILED; /* the connection stays as it is */
    }
    if (c->fd >= 0 && now_ms - c->idle_since_ms > HC_IDLE_MAX_MS)
        conn_close(c); /* a middlebox may have forgotten it without a word */
    c->body = body;
    c->len = len;
    c->sent = 0;
    c->got = 0;
    c->status = 0;
    c->retried = 0;
    c->reason[0] = '\0';
    c->timeout_ms = timeout_ms;
    c->deadline = now_ms + timeout_ms;
    hc_resp_reset(&c->resp);
    if (c->fd >= 0) {
        c->reused = 1;
        c->state = S_SEND;
        return sending(c, now_ms);
    }
    return start_connect(c, now_ms);
}

/* Read what the receiver sent. */
static int receiving(struct hc *c, int64_t now)
{
    char b[16384];
    for (;;) {
        ssize_t k = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return HC_AGAIN;
            return stale(c, now, strerror(errno));
        }
        if (k == 0) {
            if (hc_resp_eof(&c->resp) == HC_END) {
                c->status = hc_resp_status(&c->resp);
                conn_close(c);
                c->state = S_IDLE;
                c->deadline = -1;
                return HC_DONE;
            }
            return stale(c, now, hc_resp_error(&c->resp));
        }
        size_t used = 0;
        int rc = hc_resp_feed(&c->resp, b, (size_t)k, &used);
        c->got += (size_t)k;
        if (rc == HC_BAD)
            return fail(c, "bad answer: %s", hc_resp_error(&c->resp));
        if (rc == HC_END || c->got > HC_RESPONSE_MAX) {
            if ((c->status = hc_resp_status(&c->resp)) == 0)
                return fail(c, "the answer's head is too large");
            /* bytes after the answer: no request of ours asked for them */
            if (rc != HC_END || !hc_resp_keep(&c->resp) || used < (size_t)k)
                conn_close(c);
            c->idle_since_ms = now;
            c->state = S_IDLE;
            c->deadline = -1;
            return HC_DONE;
        }
        if ((size_t)k < sizeof(b))
            return HC_AGAIN;
    }
}

int hc_io(struct hc *c, uint32_t events, int64_t now_ms)
{
    switch (c->state) {
    case S_IDLE: /* the receiver closed the connection (or spoke unasked) */
        if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            conn_close(c);
        return HC_AGAIN;
    case S_RESOLVE: return resolved(c, now_ms);
    case S_CONNECT: {
        int err = 0;
        socklen_t el = sizeof(err);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return HC_AGAIN;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err == EINPROGRESS)
            return HC_AGAIN;
        if (err != 0) {
            conn_close(c);
            c->next_addr++;
            if (c->next_addr < c->n_addr)
                return try_connect(c, now_ms);
            if (!c->literal)
                c->addr_expires_ms = 0;
            return fail(c, "cannot connect to %s: %s", c->hostport, strerror(err));
        }
        c->state = S_SEND;
        return sending(c, now_ms);
    }
    case S_SEND:
        if (events & EPOLLIN) { /* an answer before the whole request went out */
            int rc = receiving(c, now_ms);
            if (rc == HC_DONE)
                conn_close(c); /* the rest of the request is still owed */
            if (rc != HC_AGAIN || c->state != S_SEND)
                return rc;
        }
        return events & (EPOLLOUT | EPOLLERR | EPOLLHUP) ? sending(c, now_ms) : HC_AGAIN;
    case S_RECV: return receiving(c, now_ms);
    }
    return HC_AGAIN;
}

int hc_expire(struct hc *c, int64_t now_ms)
{
    struct rq *lookup = NULL;
    if (c->state == S_IDLE || now_ms < c->deadline)
        return HC_AGAIN;
    if (c->state == S_CONNECT && !c->literal && c->next_addr + 1 < c->n_addr) {
        /* an address that neither answers nor refuses: the next attempt
         * starts with the one after it */
        struct sockaddr_storage a = c->addr[c->next_addr];
        socklen_t al = c->alen[c->next_addr];
        memmove(&c->addr[c->next_addr], &c->addr[c->next_addr + 1],
                (size_t)(c->n_addr - c->next_addr - 1) * sizeof(c->addr[0]));
        memmove(&c->alen[c->next_addr], &c->alen[c->next_addr + 1],
                (size_t)(c->n_addr - c->next_addr - 1) * sizeof(c->alen[0]));
        c->addr[c->n_addr - 1] = a;
        c->alen[c->n_addr - 1] = al;
    }
    if (c->state == S_RESOLVE && c->rq != NULL) { /* a slow lookup: the next attempt waits on it */
        if (c->watched == c->rq->efd) {
            epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->rq->efd, NULL);
            c->watched = -1;
        }
        lookup = c->rq;
        c->rq = NULL;
    }
    int rc = fail(c, "no answer within %d ms", c->timeout_ms);
    c->rq = lookup;
    return rc;
}
