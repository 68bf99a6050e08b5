/*
 * buf.c - see buf.h. Growth doubles, bounded by max + 1 for the NUL.
 */
#include "util/buf.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

static int grow(struct buf *b, size_t need)
{
    size_t want;
    char *p;

    if (need > b->max)
        return ERR_TOO_LARGE;
    if (need + 1 <= b->cap_alloc)
        return 0;
    want = b->cap_alloc ? b->cap_alloc : 256;
    while (want < need + 1)
        want *= 2;
    if (want > b->max + 1)
        want = b->max + 1;
    p = realloc(b->data, want);
    if (p == NULL)
        return ERR_NOMEM;
    b->data = p;
    b->cap_alloc = want;
    return 0;
}

int buf_reserve(struct buf *b, size_t n)
{
    if (n > b->max - b->len)
        return ERR_TOO_LARGE;
    return grow(b, b->len + n);
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    int rc;

    if (len > b->max - b->len)
        return ERR_TOO_LARGE;
    if ((rc = grow(b, b->len + len)) != 0)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appends(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return ERR_INTERNAL;
    if ((size_t)n < sizeof(small))
        return buf_append(b, small, (size_t)n);
    if ((rc = grow(b, b->len + (size_t)n)) != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *buf_detach(struct buf *b)
{
    char *p = b->data ? b->data : strdup("");
    size_t max = b->max;
    buf_init(b, max);
    return p;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    buf_init(b, b->max);
}
