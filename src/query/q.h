/*
 * q.h - the NGSI-LD query language `q` (ETSI GS CIM 009 v1.8, clause 4.9):
 * parser, attribute-name expansion, evaluator against an entity document
 * (docs/DESIGN.md), and index planning hints.
 *
 * Life cycle: q_parse -> q_expand (short names -> IRIs, once, by the API
 * layer) -> any number of q_match / q_foreach_attr / q_index_hint calls,
 * from any number of threads at once (they only read the expression) ->
 * q_free. The full list of semantic decisions is at the top of q_parse.c.
 */
#ifndef PL_Q_H
#define PL_Q_H

#include <cjson/cJSON.h>

#include "util/err.h"

/* Input limits: an expression longer than Q_TEXT_MAX bytes, parentheses
 * nested deeper than Q_DEPTH_MAX, more than Q_REGEX_MAX regular
 * expressions, or a regular expression longer than Q_REGEX_LEN_MAX bytes is
 * rejected with ERR_INVALID_REQUEST. */
#define Q_TEXT_MAX 8192
#define Q_DEPTH_MAX 32
#define Q_REGEX_MAX 64
#define Q_REGEX_LEN_MAX 1024

struct q_expr;

/* Parse the q expression text (NUL-terminated). On success returns 0 and
 * *out, which the caller frees with q_free. On a syntax error returns
 * ERR_INVALID_REQUEST with a detail such as
 * "q: unexpected ')' at position 7, expected a value" (0-based byte
 * position); ERR_NOMEM on allocation failure. Regular expressions
 * (POSIX ERE) are compiled here, so a bad one is a parse error. *out is
 * NULL on failure. */
int q_parse(const char *text, struct q_expr **out, struct err *e);

/* Free an expression; NULL is fine. */
void q_free(struct q_expr *q);

/* Rewrite every attribute-name path segment (the attribute and its dotted
 * sub-attribute names; never the [key] parts that index into compound
 * values) to fn(ud, segment). fn returns a malloc'd string that the
 * expression takes ownership of, or NULL, which makes q_expand return
 * ERR_NOMEM; the expression is then partly rewritten but still valid to
 * free. Not thread-safe against concurrent readers of the same expression:
 * call it once, before sharing. */
typedef char *(*q_expand_fn)(void *ud, const char *term);
int q_expand(struct q_expr *q, q_expand_fn fn, void *ud, struct err *e);

/* Evaluate against an entity document (DESIGN.md form: doc["attrs"][IRI]
 * is an array of instances). Returns 1 on match, else 0; never fails: type
 * mismatches, missing members and malformed documents are "no match".
 * Read-only and thread-safe on a shared expression. */
int q_match(const struct q_expr *q, const cJSON *doc);

/* Call fn once for each distinct top-level attribute name (first path
 * segment) the expression references, in order of first appearance. The
 * string belongs to the expression. */
void q_foreach_attr(const struct q_expr *q, void (*fn)(void *ud, const char *attr), void *ud);

/* Index planning. If the top-level expression is a term, or an AND (';')
 * whose direct operands include terms, of the form attr==number,
 * attr==string, attr==a..b (numbers), or attr >|>=|<|<= number, on a plain
 * top-level attribute (no sub-attribute, no [key]), fill *hint with the
 * most selective one and return 1, else return 0. Preference: the first
 * equality; else a two-sided range; else a one-sided one. Several range
 * terms on the same attribute are intersected (a>1;a<=5 gives (1,5]).
 *
 * The hint is a necessary condition only: a matching entity has at least one
 * instance of attr whose value (or one element of an array value, or, for
 * Q_HINT_EQ_STR, a Relationship object / vocab IRI) satisfies it. The caller
 * must still run q_match on the candidates. hint->attr and hint->str point
 * into the expression (valid until q_free / q_expand). For Q_HINT_EQ_NUM,
 * num is the value and lo = hi = num, both inclusive. For Q_HINT_RANGE an
 * open side is -INFINITY / +INFINITY with its _incl flag 0. */
enum q_hint_kind { Q_HINT_EQ_NUM = 1, Q_HINT_EQ_STR, Q_HINT_RANGE };
struct q_hint {
    const char *attr;
    enum q_hint_kind kind;
    double num, lo, hi;
    int lo_incl, hi_incl;
    const char *str;
};
int q_index_hint(const struct q_expr *q, struct q_hint *hint);

#endif
