/*
 * fuzz_httpc.c - libFuzzer target for the notification client's response
 * parser (src/notify/httpc.c, hc_resp_*).
 *
 * The first input byte chooses a piece size (1..16), the rest is what a
 * receiver sent. The bytes are fed whole and again in pieces of that size,
 * then the connection's end; both ways must agree on the outcome, the
 * status, the keep-alive verdict and where the answer ended, and the
 * contract must hold: a fed piece is consumed whole unless the answer
 * ended in it, an ended answer has a final status in 200..599, an error
 * has a reason.
 *
 * Corpus: tests/fuzz/corpus/httpc/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    int rc, status, keep;
    size_t used;
};

static struct outcome run(const char *p, size_t n, size_t step)
{
    struct hc_resp *r = hc_resp_new();
    struct outcome o = {HC_MORE, 0, 0, 0};
    if (r == NULL)
        abort();
    while (o.used < n && o.rc == HC_MORE) {
        size_t k = n - o.used < step ? n - o.used : step, used = 0;
        o.rc = hc_resp_feed(r, p + o.used, k, &used);
        if (used > k || (o.rc == HC_MORE && used != k))
            abort();
        o.used += used;
    }
    if (o.rc == HC_MORE)
        o.rc = hc_resp_eof(r);
    if (o.rc == HC_BAD && hc_resp_error(r)[0] == '\0')
        abort();
    o.status = hc_resp_status(r);
    o.keep = hc_resp_keep(r);
    if (o.rc == HC_END && (o.status < 200 || o.status > 599))
        abort();
    if (o.keep && o.rc != HC_END)
        abort();
    hc_resp_free(r);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct outcome a = run(p, n, n ? n : 1), b = run(p, n, step);
    if (a.rc != b.rc || a.status != b.status || a.keep != b.keep ||
        (a.rc == HC_END && a.used != b.used))
        abort();
    return 0;
}
