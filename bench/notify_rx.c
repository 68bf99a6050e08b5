/*
 * notify_rx.c - the notification receiver of bench/notify.sh, and its
 * ceiling.
 *
 *   notify_rx serve PORT OUT   accept HTTP/1.1 POSTs on 127.0.0.1:PORT
 *                              (keep-alive, any number of connections, one
 *                              epoll thread), answer 200 at once, and for
 *                              each body note the first "sent":<integer>
 *                              (the writer's send time in us, from
 *                              bench/notify.py) with the receive time
 *                              (CLOCK_REALTIME, us). The count so far is
 *                              in OUT.count (rewritten every 100 ms); on
 *                              SIGTERM the pairs go to OUT ("sent recv"
 *                              per line) and it exits.
 *   notify_rx ping PORT N BYTES  the ceiling: N POSTs of a BYTES-byte JSON
 *                              body, one at a time on one keep-alive
 *                              connection, to a running receiver; prints
 *                              "p50_us P p99_us Q" of the round trips.
 *
 * Built by bench/notify.sh with cc -O2; no dependencies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (1 << 20)
#define MAX_RECORDS (20 * 1000 * 1000)

struct conn {
    int fd;
    char *buf;
    size_t len;
};

static volatile sig_atomic_t stop;
static int64_t *rec_sent, *rec_recv;
static long n_rec;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/* Handle every complete request in c->buf; -1 to close. */
static int drain(struct conn *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        size_t head, body = 0;
        if (end == NULL)
            return c->len >= BUF_MAX ? -1 : 0;
        head = (size_t)(end - c->buf) + 4;
        for (char *p = c->buf; p < end; p++)
            if ((p == c->buf || p[-1] == '\n') && !strncasecmp(p, "content-length:", 15))
                body = strtoul(p + 15, NULL, 10);
        if (head + body > BUF_MAX)
            return -1;
        if (c->len < head + body)
            return 0;
        int64_t t = now_us();
        char *v = memmem(c->buf + head, body, "\"sent\":", 7);
        if (v && n_rec < MAX_RECORDS) {
            int64_t sent = strtoll(v + 7, NULL, 10);
            if (sent > 0) {
                rec_sent[n_rec] = sent;
                rec_recv[n_rec] = t;
                n_rec++;
            }
        }
        if (write(c->fd, OK, sizeof(OK) - 1) != (ssize_t)(sizeof(OK) - 1))
            return -1;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

static void write_count(const char *out)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s.count", out);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%ld\n", n_rec);
    fclose(f);
    rename(tmp, path);
}

static int serve(int port, const char *out)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct epoll_event ev, evs[256];
    int ep = epoll_create1(0);
    int64_t next_count = 0;

    rec_sent = malloc(sizeof(*rec_sent) * MAX_RECORDS);
    rec_recv = malloc(sizeof(*rec_recv) * MAX_RECORDS);
    if (!rec_sent || !rec_recv || lfd < 0 || ep < 0)
        return 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1024) != 0) {
        perror("notify_rx: bind/listen");
        return 1;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    write_count(out);
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *nc = calloc(1, sizeof(*nc));
                    nc->fd = fd;
                    nc->buf = malloc(BUF_MAX);
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ev.events = EPOLLIN;
                    ev.data.ptr = nc;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            for (;;) {
                ssize_t k = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
                if (k > 0) {
                    c->len += (size_t)k;
                    if (drain(c) == 0 && c->len < BUF_MAX)
                        continue;
                }
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c->buf);
                free(c);
                break;
            }
        }
        int64_t t = now_us();
        if (t >= next_count) {
            write_count(out);
            next_count = t + 100000;
        }
    }
    FILE *f = fopen(out, "w");
    if (f == NULL)
        return 1;
    for (long i = 0; i < n_rec; i++)
        fprintf(f, "%lld %lld\n", (long long)rec_sent[i], (long long)rec_recv[i]);
    fclose(f);
    write_count(out);
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int ping(int port, int n, int bytes)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char *req = malloc((size_t)bytes + 512), resp[4096];
    int64_t *rtt = calloc((size_t)n, sizeof(*rtt));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("notify_rx: connect");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int h = snprintf(req, 512,
                     "POST /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n",
                     bytes);
    memset(req + h, ' ', (size_t)bytes);
    memcpy(req + h, "{\"pad\":0}", 9);
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_us();
        size_t got = 0;
        if (write(fd, req, (size_t)(h + bytes)) != h + bytes)
            return 1;
        while (got < sizeof(OK) - 1) {
            ssize_t k = read(fd, resp + got, sizeof(resp) - got);
            if (k <= 0)
                return 1;
            got += (size_t)k;
        }
        rtt[i] = now_us() - t0;
    }
    qsort(rtt, (size_t)n, sizeof(*rtt), cmp64);
    printf("p50_us %lld p99_us %lld\n", (long long)rtt[n / 2], (long long)rtt[(n * 99) / 100]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "serve"))
        return serve(atoi(argv[2]), argv[3]);
    if (argc == 5 && !strcmp(argv[1], "ping"))
        return ping(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: notify_rx serve PORT OUT | notify_rx ping PORT N BYTES\n");
    return 2;
}
