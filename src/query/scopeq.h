/*
 * scopeq.h - the NGSI-LD scope query language (`scopeQ`, ETSI GS CIM 009
 * v1.8 clause 4.19), for entity queries and subscriptions.
 *
 * A scope is a path "/a/b/c" (segments of letters, digits, '_' and '-').
 * A scope query is a boolean expression of scope patterns:
 *
 *   expr    = and *( "," and )       "," is OR
 *   and     = primary *( ";" primary ) ";" is AND
 *   primary = "(" expr ")" / pattern
 *   pattern = 1*( "/" segment ) where a segment is a name, "+" (exactly one
 *             level, any name) or, as the last segment only, "#" (zero or
 *             more further levels)
 *
 * "/Madrid" matches the scope /Madrid only; "/Madrid/#" matches /Madrid and
 * everything below it; "/Madrid/+" the levels directly below; "/#" every
 * scope. A pattern matches an entity when it matches one of the entity's
 * scopes, so an entity without a scope matches no pattern.
 *
 * A parsed query is immutable: scopeq_match may run on any number of
 * threads at once.
 */
#ifndef PL_SCOPEQ_H
#define PL_SCOPEQ_H

#include <cjson/cJSON.h>

#include "util/err.h"

/* Input limits (ERR_INVALID_REQUEST beyond). */
#define SCOPEQ_TEXT_MAX 4096
#define SCOPEQ_DEPTH_MAX 16
#define SCOPEQ_TERMS_MAX 128

struct scopeq;

/* Parse text. 0 and *out (caller frees with scopeq_free); on a syntax
 * error ERR_INVALID_REQUEST with "scopeQ: ... at position N" in e; ERR_NOMEM. */
int scopeq_parse(const char *text, struct scopeq **out, struct err *e);

/* 1 if the entity's "scope" member (an array of strings, a string, or NULL
 * for none) satisfies the query, else 0. */
int scopeq_match(const struct scopeq *q, const cJSON *scope);

/* Accepts NULL. */
void scopeq_free(struct scopeq *q);

#endif
