/*
 * json.c - see json.h.
 */
#include "json/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define JSON_MAX_DEPTH 512 /* cJSON's own nesting limit is 1000 on input */

const double json_pow10[10] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

int json_decimal(double d, long long *m)
{
    for (int k = 0; k < 10; k++) {
        double scaled = d * json_pow10[k];
        if (!(fabs(scaled) < 9007199254740992.0)) /* 2^53: m stays exact */
            return -1;
        long long v = llround(scaled);
        if ((double)v / json_pow10[k] == d) {
            *m = v;
            return k;
        }
    }
    return -1;
}

size_t json_number_text(double d, char out[JSON_NUM_MAX])
{
    char tmp[JSON_NUM_MAX], *p = tmp + sizeof(tmp);
    size_t len;
    int n;

    if (isnan(d) || isinf(d)) {
        memcpy(out, "null", 5);
        return 4;
    }
    if (d == floor(d) && fabs(d) < 1e15) {
        /* integral: exact in int64, and "%1.15g" would print the same digits */
        long long v = (long long)d;
        int neg = v < 0 || (v == 0 && signbit(d));
        unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (neg)
            *--p = '-';
        goto done;
    }
    /* Short decimals (sensor readings, coordinates): the fewest fraction
     * digits k with n / 10^k == d. Both n and 10^k are exact doubles, so the
     * division is correctly rounded, exactly as strtod rounds the printed
     * text: it reads back as d, and it is what "%1.15g" prints. */
    long long v;
    int k;
    if (fabs(d) >= 1e-3 && fabs(d) < 1e9 && (k = json_decimal(d, &v)) > 0) {
        unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
        for (int i = 0; i < k; i++) {
            *--p = (char)('0' + u % 10);
            u /= 10;
        }
        *--p = '.';
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        goto done;
    }
    n = snprintf(out, JSON_NUM_MAX, "%1.15g", d);
    if (strtod(out, NULL) != d)
        n = snprintf(out, JSON_NUM_MAX, "%1.17g", d);
    return (size_t)n;
done:
    len = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, len);
    out[len] = '\0';
    return len;
}

static int write_number(struct buf *b, double d)
{
    char tmp[JSON_NUM_MAX];
    size_t n = json_number_text(d, tmp);

    return buf_append(b, tmp, n);
}

/* The length of s's longest prefix that needs no escape: eight bytes at a
 * time (the strings printed are mostly long IRIs and timestamps). */
static size_t plain_prefix(const char *s)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t x, q, bs;
        memcpy(&x, p + i, 8);
        q = x ^ (ones * '"');
        bs = x ^ (ones * '\\');
        /* a byte below 0x20, a quote or a backslash somewhere in the word
         * (the exact "has a byte below n" tests: x < 0x20, q or bs zero) */
        if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & highs)
            break;
    }
    while (i < len && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

/* Append item's single-character delimiter (the common case: room). */
static int put_c(struct buf *b, char c)
{
    if (b->len + 2 <= b->cap_alloc && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append(b, &c, 1);
}

/* Copy a string that needs no escaping in one go; escape otherwise. */
static int write_string(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *run;
    size_t len = plain_prefix(s);
    int rc;

    if (p[len] == '\0') {
        if ((rc = buf_reserve(b, len + 2)) != 0)
            return rc;
        char *w = b->data + b->len;
        w[0] = '"';
        memcpy(w + 1, s, len);
        w[len + 1] = '"';
        w[len + 2] = '\0';
        b->len += len + 2;
        return 0;
    }
    if ((rc = buf_append(b, "\"", 1)) != 0)
        return rc;
    run = p;
    for (p += len; *p; p++) {
        char esc[7];
        size_t elen = 2;
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        if ((rc = buf_append(b, run, (size_t)(p - run))) != 0)
            return rc;
        esc[0] = '\\';
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            elen = 6;
        }
        if ((rc = buf_append(b, esc, elen)) != 0)
            return rc;
        run = p + 1;
    }
    if ((rc = buf_append(b, run, (size_t)(p - run))) != 0)
        return rc;
    return buf_append(b, "\"", 1);
}

static int write_item(struct buf *b, const cJSON *item, int depth)
{
    const cJSON *child;
    int rc = 0, first = 1;

    if (depth > JSON_MAX_DEPTH)
        return ERR_TOO_LARGE;
    switch (item->type & 0xFF) {
    case cJSON_NULL: return buf_append(b, "null", 4);
    case cJSON_False: return buf_append(b, "false", 5);
    case cJSON_True: return buf_append(b, "true", 4);
    case cJSON_Number: return write_number(b, item->valuedouble);
    case cJSON_String: return write_string(b, item->valuestring ? item->valuestring : "");
    case cJSON_Raw: return buf_appends(b, item->valuestring ? item->valuestring : "");
    case cJSON_Array:
    case cJSON_Object: {
        int obj = (item->type & 0xFF) == cJSON_Object;
        if ((rc = put_c(b, obj ? '{' : '[')) != 0)
            return rc;
        for (child = item->child; child; child = child->next) {
            if (!first && (rc = put_c(b, ',')) != 0)
                return rc;
            first = 0;
            if (obj) {
                if ((rc = write_string(b, child->string ? child->string : "")) != 0 ||
                    (rc = put_c(b, ':')) != 0)
                    return rc;
            }
            if ((rc = write_item(b, child, depth + 1)) != 0)
                return rc;
        }
        return put_c(b, obj ? '}' : ']');
    }
    default:
        return ERR_INTERNAL;
    }
}

int json_write(struct buf *b, const cJSON *item)
{
    if (item == NULL)
        return ERR_INTERNAL;
    return write_item(b, item, 0);
}

char *json_print(const cJSON *item, size_t *len)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 31);
    if (buf_reserve(&b, 2048) != 0 || json_write(&b, item) != 0) {
        buf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return buf_detach(&b);
}
