/*
 * q_int.h - internals of the q module shared by q_parse.c and q_eval.c.
 *
 * An expression is a tree of AND / OR nodes (n-ary, nested nodes of the same
 * kind flattened) with terms at the leaves. The terms themselves are owned
 * by the flat array q_expr.terms (in order of appearance), which is what
 * q_expand / q_foreach_attr walk; tree nodes only point at them.
 */
#ifndef PL_Q_INT_H
#define PL_Q_INT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "query/q.h"

enum q__op {
    Q_OP_EXISTS,     /* attr */
    Q_OP_ABSENT,     /* !attr (extension, see q_parse.c) */
    Q_OP_EQ,         /* == */
    Q_OP_NE,         /* != */
    Q_OP_LT,         /* < */
    Q_OP_LE,         /* <= */
    Q_OP_GT,         /* > */
    Q_OP_GE,         /* >= */
    Q_OP_MATCH,      /* ~= */
    Q_OP_NOMATCH,    /* !~= */
};

enum q__vkind {
    Q_V_NUM,      /* JSON number */
    Q_V_STR,      /* quoted string, or unquoted token that is nothing else (URI) */
    Q_V_BOOL,     /* true / false */
    Q_V_DATETIME, /* date-time or date: ms since the epoch */
    Q_V_TIME,     /* time of day: ms since midnight (UTC) */
};

struct q__value {
    enum q__vkind kind;
    double num;
    int64_t ms;
    int boolean;
    char *str;
};

enum q__form {
    Q_FORM_ONE,   /* one value (vals[0]) */
    Q_FORM_RANGE, /* vals[0]..vals[1] */
    Q_FORM_LIST,  /* vals[0],vals[1],... */
};

struct q__term {
    char **segs; /* attribute path: attr, sub-attr, ... (n_segs >= 1) */
    size_t n_segs;
    char **keys; /* [k1.k2] / [k1][k2] path into the value */
    size_t n_keys;
    enum q__op op;
    enum q__form form;
    struct q__value *vals;
    size_t n_vals;
    regex_t re; /* valid iff has_re */
    int has_re;
};

enum q__kind { Q_N_TERM, Q_N_AND, Q_N_OR };

struct q__node {
    enum q__kind kind;
    struct q__node **kids; /* AND / OR */
    size_t n_kids, cap_kids;
    struct q__term *term; /* TERM; owned by q_expr.terms */
};

struct q_expr {
    struct q__node *root;
    struct q__term **terms;
    size_t n_terms, cap_terms;
};

/* If seg names an instance member addressable as a sub-path segment
 * ("observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId", or the
 * same under https://uri.etsi.org/ngsi-ld/), the member's key in the entity
 * document, else NULL. */
const char *q__instance_member(const char *seg);

/* If seg names an entity-level member usable as a whole attribute path
 * ("createdAt", "modifiedAt", short or expanded), its key, else NULL. */
const char *q__entity_member(const char *seg);

#endif
