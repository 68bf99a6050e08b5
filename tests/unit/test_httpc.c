/* test_httpc.c - the notification client's response parser (hc_resp_*):
 * every answer is fed whole, then byte by byte, then in odd pieces, and
 * each way must give the same outcome, status, keep-alive verdict and end
 * offset. The client's wire behaviour is tested against real receivers in
 * tests/api/test_21_notify_http.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify/httpc.h"

struct outcome {
    int rc; /* after the bytes (and the end of the connection, if eof) */
    int status;
    int keep;
    size_t used; /* bytes consumed up to HC_END */
};

/* Feed s in pieces of `step` bytes (0: whole), then the connection's end if
 * eof. */
static struct outcome feed(const char *s, size_t len, size_t step, int eof)
{
    struct hc_resp *r = hc_resp_new();
    struct outcome o = {HC_MORE, 0, 0, 0};
    size_t off = 0;
    assert_non_null(r);
    while (off < len && o.rc == HC_MORE) {
        size_t n = step == 0 || len - off < step ? len - off : step, used = 0;
        o.rc = hc_resp_feed(r, s + off, n, &used);
        assert_true(used <= n);
        if (o.rc == HC_MORE)
            assert_int_equal(used, n);
        off += used;
    }
    if (o.rc == HC_MORE && eof)
        o.rc = hc_resp_eof(r);
    if (o.rc == HC_BAD)
        assert_true(strlen(hc_resp_error(r)) > 0);
    o.status = hc_resp_status(r);
    o.keep = hc_resp_keep(r);
    o.used = off;
    hc_resp_free(r);
    return o;
}

/* The same outcome whole, byte by byte and in 7-byte pieces. */
static struct outcome check(const char *s, int eof)
{
    size_t len = strlen(s);
    struct outcome a = feed(s, len, 0, eof), b = feed(s, len, 1, eof), c = feed(s, len, 7, eof);
    assert_int_equal(a.rc, b.rc);
    assert_int_equal(a.rc, c.rc);
    assert_int_equal(a.status, b.status);
    assert_int_equal(a.status, c.status);
    assert_int_equal(a.keep, b.keep);
    assert_int_equal(a.keep, c.keep);
    if (a.rc == HC_END) {
        assert_int_equal(a.used, b.used);
        assert_int_equal(a.used, c.used);
    }
    return a;
}

static void test_content_length(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
    struct outcome o = check(s, 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 200);
    assert_true(o.keep);
    assert_int_equal(o.used, strlen(s));

    /* what follows the answer is not consumed */
    const char *two = "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    o = check(two, 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 201);
    assert_int_equal(o.used, strlen(two) - strlen("HTTP/1.1 200 OK\r\n"));

    /* zero length, LF-only line ends, no reason phrase */
    o = check("HTTP/1.1 202\nContent-Length: 0\n\n", 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 202);
    assert_true(o.keep);

    /* the body is not complete yet */
    o = check("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 0);
    assert_int_equal(o.rc, HC_MORE);
    assert_int_equal(o.status, 200);
    assert_false(o.keep);
    /* ... and the connection ended there */
    o = check("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 1);
    assert_int_equal(o.rc, HC_BAD);
}

static void test_chunked(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
                    "X-Trailer: t\r\n\r\n";
    struct outcome o = check(s, 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 200);
    assert_true(o.keep);
    assert_int_equal(o.used, strlen(s));

    /* chunked wins over a Content-Length; gzip, chunked is chunked */
    o = check("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
              "0\r\n\r\n",
              0);
    assert_int_equal(o.rc, HC_END);

    /* a chunk not followed by its line end, a bad size */
    o = check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 0);
    assert_int_equal(o.rc, HC_BAD);
    o = check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0);
    assert_int_equal(o.rc, HC_BAD);
    o = check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "ffffffffffffffffff\r\n",
              0);
    assert_int_equal(o.rc, HC_BAD);
    /* the connection ended inside the chunks */
    o = check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 1);
    assert_int_equal(o.rc, HC_BAD);
    /* a coding other than chunked last: the body ends with the connection */
    o = check("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", 1);
    assert_int_equal(o.rc, HC_END);
    assert_false(o.keep);
}

static void test_framing_by_close_and_keep_alive(void **state)
{
    (void)state;
    /* no length: the body ends with the connection, never reused */
    struct outcome o = check("HTTP/1.1 200 OK\r\n\r\nsome body", 0);
    assert_int_equal(o.rc, HC_MORE);
    o = check("HTTP/1.1 200 OK\r\n\r\nsome body", 1);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 200);
    assert_false(o.keep);

    /* HTTP/1.0: closed unless it says keep-alive */
    o = check("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.rc, HC_END);
    assert_false(o.keep);
    o = check("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 0);
    assert_true(o.keep);
    /* HTTP/1.1 with close among the tokens */
    o = check("HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.rc, HC_END);
    assert_false(o.keep);
    /* "closed" is not "close" */
    o = check("HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", 0);
    assert_true(o.keep);

    /* 204 and 304 have no body whatever they say */
    o = check("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 204);
    assert_true(o.keep);
}

static void test_interim_answers(void **state)
{
    (void)state;
    struct outcome o =
        check("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
              0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 200);
    /* a 1xx alone is no answer yet */
    o = check("HTTP/1.1 100 Continue\r\n\r\n", 1);
    assert_int_equal(o.rc, HC_BAD);
    assert_int_equal(o.status, 0);
    /* switching protocols is not an answer to a notification */
    o = check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", 0);
    assert_int_equal(o.rc, HC_BAD);
}

static void test_long_lines(void **state)
{
    (void)state;
    size_t big = 20000;
    char *s = malloc(big + 200);
    assert_non_null(s);
    /* a long header nobody reads is skipped */
    strcpy(s, "HTTP/1.1 200 OK\r\nX-Junk: ");
    size_t n = strlen(s);
    memset(s + n, 'j', big);
    strcpy(s + n + big, "\r\nContent-Length: 1\r\n\r\nz");
    struct outcome o = check(s, 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 200);
    assert_true(o.keep);
    /* a framing header too long to read is an error, not a guess */
    strcpy(s, "HTTP/1.1 200 OK\r\nContent-Length: ");
    n = strlen(s);
    memset(s + n, '1', big);
    strcpy(s + n + big, "\r\n\r\n");
    o = check(s, 0);
    assert_int_equal(o.rc, HC_BAD);
    /* a reason phrase of any length is ignored */
    strcpy(s, "HTTP/1.1 201 ");
    n = strlen(s);
    memset(s + n, 'r', big);
    strcpy(s + n + big, "\r\nContent-Length: 0\r\n\r\n");
    o = check(s, 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 201);
    assert_true(o.keep);
    free(s);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad_answers[] = {
        "hello\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 600 Odd\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1 1\r\n\r\n",
    };
    /* each is followed by a body that would complete it were it taken */
    for (size_t i = 0; i < sizeof(bad_answers) / sizeof(bad_answers[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "%szz", bad_answers[i]);
        struct outcome o = check(s, 0);
        if (o.rc != HC_BAD)
            fail_msg("answer %zu was taken: %s", i, bad_answers[i]);
    }
    /* a list of one length repeated is that length */
    struct outcome l = check("HTTP/1.1 200 OK\r\nContent-Length: 2 ,2\r\n\r\nzz", 0);
    assert_int_equal(l.rc, HC_END);
    assert_int_equal(l.used, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2 ,2\r\n\r\nzz"));
    /* the same length twice is fine; folded lines are skipped */
    struct outcome o = check("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n"
                             "X-Fold: a\r\n  b\r\n\r\nz",
                             0);
    assert_int_equal(o.rc, HC_END);
    /* the connection ended before any byte / inside the head */
    assert_int_equal(check("", 1).rc, HC_BAD);
    assert_int_equal(check("HTTP/1.1 200 OK\r\nContent-Le", 1).rc, HC_BAD);
    /* an error sticks */
    struct hc_resp *r = hc_resp_new();
    size_t used;
    assert_int_equal(hc_resp_feed(r, "junk\n", 5, &used), HC_BAD);
    assert_int_equal(hc_resp_feed(r, "HTTP/1.1 200 OK\r\n\r\n", 19, &used), HC_BAD);
    hc_resp_reset(r);
    assert_int_equal(hc_resp_feed(r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38, &used),
                     HC_END);
    hc_resp_free(r);
}

static void test_many_headers(void **state)
{
    (void)state;
    /* no count limit (the client caps an answer's bytes instead) */
    char *s = malloc(300 * 8 + 100);
    assert_non_null(s);
    strcpy(s, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 300; i++)
        strcat(s, "X-A: b\r\n");
    strcat(s, "Content-Length: 0\r\n\r\n");
    struct outcome o = check(s, 0);
    assert_int_equal(o.rc, HC_END);
    assert_int_equal(o.status, 200);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_framing_by_close_and_keep_alive),
        cmocka_unit_test(test_interim_answers),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_many_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
