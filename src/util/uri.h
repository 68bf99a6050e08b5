/*
 * uri.h - the absolute-URI check NGSI-LD ids, datasetIds and endpoints
 * need: scheme ":" something, no whitespace, control characters or
 * characters URIs never contain unescaped (RFC 3986). Pure; any thread.
 */
#ifndef PL_URI_H
#define PL_URI_H

#include <stddef.h>

/* Value of a hex digit, -1 if c is not one. */
int uri_hexval(int c);

/* Percent-decode [s, s+n) into out (cap bytes, NUL-terminated). '+' stays
 * '+' (not a form encoding). 0, or -1 when it does not fit, a %-escape is
 * malformed or decodes to NUL. */
int uri_pct_decode(const char *s, size_t n, char *out, size_t cap);

/* 1 if s is an absolute URI of at most max_len bytes, else 0. */
int uri_is_absolute(const char *s, size_t max_len);

#endif
