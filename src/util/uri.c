/*
 * uri.c - see uri.h.
 */
#include "util/uri.h"

#include <ctype.h>
#include <string.h>

int uri_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int uri_is_absolute(const char *s, size_t max_len)
{
    size_t i = 0;

    if (s == NULL || !isalpha((unsigned char)s[0]) || strlen(s) > max_len)
        return 0;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    if (s[i] != ':' || s[i + 1] == '\0')
        return 0;
    for (; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr("<>\"\\{}|^`", c))
            return 0;
    }
    return 1;
}

int uri_pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n || (h = uri_hexval(s[i + 1])) < 0 || (l = uri_hexval(s[i + 2])) < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
            if (c == 0)
                return -1;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}
