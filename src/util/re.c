/*
 * re.c - see re.h. The checks walk the pattern once: bracket expressions
 * are skipped whole (POSIX: a leading ']' is literal, backslash is literal
 * inside, [:class:] [.coll.] [=equiv=] nest).
 */
#include "util/re.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_bracket(const char *c)
{
    c++;
    if (*c == '^')
        c++;
    if (*c == ']')
        c++;
    while (*c && *c != ']') {
        if (*c == '[' && c[1] && strchr(":.=", c[1])) {
            char d = c[1];
            c += 2;
            while (*c && !(*c == d && c[1] == ']'))
                c++;
            if (*c)
                c += 2;
            continue;
        }
        c++;
    }
    return *c ? c + 1 : c;
}

int re_check(const char *src, char *why, size_t cap)
{
    double product = 1;
    int depth = 0, after_dup = 0;

    if (strlen(src) > RE_LEN_MAX) {
        snprintf(why, cap, "is longer than %d bytes", RE_LEN_MAX);
        return -1;
    }
    for (const char *c = src; *c;) {
        int dup = 0;
        if (*c == '\\' && c[1]) {
            if (c[1] >= '1' && c[1] <= '9') {
                snprintf(why, cap, "uses a back-reference (not supported)");
                return -1;
            }
            c += 2;
        } else if (*c == '[') {
            c = skip_bracket(c);
        } else if (*c == '(') {
            if (++depth > RE_DEPTH_MAX) {
                snprintf(why, cap, "nests parentheses deeper than %d", RE_DEPTH_MAX);
                return -1;
            }
            c++;
        } else if (*c == ')') {
            depth--;
            c++;
        } else if (*c == '*' || *c == '+' || *c == '?') {
            dup = 1;
            c++;
        } else if (*c == '{' && isdigit((unsigned char)c[1])) {
            char *end;
            long lo = strtol(c + 1, &end, 10), hi = lo;
            if (*end == ',') {
                end++;
                if (isdigit((unsigned char)*end))
                    hi = strtol(end, &end, 10);
            }
            if (lo > 255 || hi > 255) {
                snprintf(why, cap, "has a repetition count above 255");
                return -1;
            }
            product *= (double)(hi > 0 ? hi : 1);
            if (product > 1000) {
                snprintf(why, cap, "is too complex (repetition counts)");
                return -1;
            }
            dup = 1;
            c = *end == '}' ? end + 1 : end;
        } else {
            c++;
        }
        if (dup && after_dup) {
            snprintf(why, cap, "stacks repetition operators");
            return -1;
        }
        after_dup = dup;
    }
    return 0;
}

int re_compile(regex_t *re, const char *pattern, int icase, char *why, size_t cap)
{
    int rc;
    if (re_check(pattern, why, cap) != 0)
        return -1;
    rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof(msg));
        regfree(re);
        snprintf(why, cap, "is not valid: %s", msg);
        return -1;
    }
    return 0;
}
