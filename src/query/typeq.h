/*
 * typeq.h - the entity type selector of NGSI-LD queries (`type=` parameter):
 * a comma list "A,B" (any of), and the type expression language with
 * "|" (or), ";" (and) and parentheses: "(Building;Home)|Vehicle".
 * Names are expanded once (typeq_expand) and matched against an entity
 * document's expanded "type" array. Immutable after expansion; any thread.
 */
#ifndef PL_TYPEQ_H
#define PL_TYPEQ_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util/err.h"

struct typeq;

/* Parse; ERR_INVALID_REQUEST with the position on a syntax error. Caller
 * frees with typeq_free. */
int typeq_parse(const char *text, struct typeq **out, struct err *e);
void typeq_free(struct typeq *t);

/* Replace each type name by fn(ud, name) (malloc'd, taken over; NULL is
 * ERR_NOMEM). */
int typeq_expand(struct typeq *t, char *(*fn)(void *ud, const char *name), void *ud);

/* 1 if the document's types satisfy the selector. */
int typeq_match(const struct typeq *t, const cJSON *doc);

/* A set of types such that every matching entity has at least one of them
 * (for an index lookup): fills names (borrowed) up to cap; returns how many,
 * or -1 if more than cap would be needed. */
int typeq_index_types(const struct typeq *t, const char **names, int cap);

#endif
