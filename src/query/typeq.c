/*
 * typeq.c - type selector parser and matcher (see typeq.h).
 *
 * Grammar (ETSI GS CIM 009 4.17, plus the comma list of 5.7.2):
 *   expr := and ( ('|' | ',') and )*
 *   and  := atom ( ';' atom )*
 *   atom := name | '(' expr ')'
 * A node is a leaf (name) or an AND/OR of children.
 */
#include "query/typeq.h"

#include <stdlib.h>
#include <string.h>

#define TYPEQ_MAX_NODES 256
#define TYPEQ_MAX_DEPTH 16

enum { T_NAME, T_AND, T_OR };

struct typeq {
    int kind;
    char *name;
    struct typeq **kids;
    int n_kids;
};

struct parser {
    const char *s;
    size_t pos;
    int nodes;
    struct err *e;
};

void typeq_free(struct typeq *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < t->n_kids; i++)
        typeq_free(t->kids[i]);
    free(t->kids);
    free(t->name);
    free(t);
}

static struct typeq *node(struct parser *p, int kind)
{
    if (++p->nodes > TYPEQ_MAX_NODES) {
        err_set(p->e, ERR_INVALID_REQUEST, "type: expression too long");
        return NULL;
    }
    struct typeq *t = calloc(1, sizeof(*t));
    if (t == NULL)
        err_set(p->e, ERR_NOMEM, "out of memory");
    else
        t->kind = kind;
    return t;
}

static int add_kid(struct typeq *t, struct typeq *kid)
{
    struct typeq **k = realloc(t->kids, sizeof(*k) * (size_t)(t->n_kids + 1));
    if (k == NULL)
        return ERR_NOMEM;
    t->kids = k;
    t->kids[t->n_kids++] = kid;
    return 0;
}

static struct typeq *parse_expr(struct parser *p, int depth);

static int name_char(char c)
{
    return c && !strchr("|,;() ", c);
}

static struct typeq *parse_atom(struct parser *p, int depth)
{
    if (p->s[p->pos] == '(') {
        p->pos++;
        struct typeq *t = parse_expr(p, depth + 1);
        if (t == NULL)
            return NULL;
        if (p->s[p->pos] != ')') {
            err_set(p->e, ERR_INVALID_REQUEST, "type: expected ')' at position %zu", p->pos);
            typeq_free(t);
            return NULL;
        }
        p->pos++;
        return t;
    }
    size_t start = p->pos;
    while (name_char(p->s[p->pos]))
        p->pos++;
    if (p->pos == start) {
        err_set(p->e, ERR_INVALID_REQUEST, "type: expected a type name at position %zu", start);
        return NULL;
    }
    struct typeq *t = node(p, T_NAME);
    if (t == NULL)
        return NULL;
    t->name = strndup(p->s + start, p->pos - start);
    if (t->name == NULL) {
        typeq_free(t);
        err_set(p->e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    return t;
}

/* Parse a run of `sub` separated by any char of seps into one node of kind. */
static struct typeq *parse_list(struct parser *p, int depth, int kind, const char *seps)
{
    struct typeq *first, *group = NULL;

    if (depth > TYPEQ_MAX_DEPTH) {
        err_set(p->e, ERR_INVALID_REQUEST, "type: nested too deeply");
        return NULL;
    }
    first = kind == T_OR ? parse_list(p, depth, T_AND, ";") : parse_atom(p, depth);
    if (first == NULL)
        return NULL;
    while (p->s[p->pos] && strchr(seps, p->s[p->pos])) {
        p->pos++;
        if (group == NULL) {
            if ((group = node(p, kind)) == NULL || add_kid(group, first) != 0)
                goto fail;
            first = NULL;
        }
        struct typeq *next =
            kind == T_OR ? parse_list(p, depth, T_AND, ";") : parse_atom(p, depth);
        if (next == NULL)
            goto fail;
        if (add_kid(group, next) != 0) {
            typeq_free(next);
            goto fail;
        }
    }
    return group ? group : first;
fail:
    typeq_free(first);
    typeq_free(group);
    return NULL;
}

static struct typeq *parse_expr(struct parser *p, int depth)
{
    return parse_list(p, depth, T_OR, "|,");
}

int typeq_parse(const char *text, struct typeq **out, struct err *e)
{
    struct parser p = {.s = text, .pos = 0, .nodes = 0, .e = e};
    struct typeq *t;

    *out = NULL;
    if (text == NULL || *text == '\0')
        return err_set(e, ERR_INVALID_REQUEST, "type: empty");
    t = parse_expr(&p, 0);
    if (t == NULL)
        return e && e->code ? e->code : ERR_INVALID_REQUEST;
    if (text[p.pos] != '\0') {
        typeq_free(t);
        return err_set(e, ERR_INVALID_REQUEST, "type: unexpected '%c' at position %zu",
                       text[p.pos], p.pos);
    }
    *out = t;
    return 0;
}

int typeq_expand(struct typeq *t, char *(*fn)(void *ud, const char *name), void *ud)
{
    if (t->kind == T_NAME) {
        char *iri = fn(ud, t->name);
        if (iri == NULL)
            return ERR_NOMEM;
        free(t->name);
        t->name = iri;
        return 0;
    }
    for (int i = 0; i < t->n_kids; i++) {
        int rc = typeq_expand(t->kids[i], fn, ud);
        if (rc)
            return rc;
    }
    return 0;
}

static int has_type(const cJSON *types, const char *name)
{
    const cJSON *it;
    if (cJSON_IsString(types))
        return strcmp(types->valuestring, name) == 0;
    cJSON_ArrayForEach(it, types)
        if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
            return 1;
    return 0;
}

static int match(const struct typeq *t, const cJSON *types)
{
    switch (t->kind) {
    case T_NAME:
        return has_type(types, t->name);
    case T_AND:
        for (int i = 0; i < t->n_kids; i++)
            if (!match(t->kids[i], types))
                return 0;
        return 1;
    default:
        for (int i = 0; i < t->n_kids; i++)
            if (match(t->kids[i], types))
                return 1;
        return 0;
    }
}

int typeq_match(const struct typeq *t, const cJSON *doc)
{
    return match(t, cJSON_GetObjectItemCaseSensitive(doc, "type"));
}

int typeq_index_types(const struct typeq *t, const char **names, int cap)
{
    if (t->kind == T_NAME) {
        if (cap < 1)
            return -1;
        names[0] = t->name;
        return 1;
    }
    if (t->kind == T_AND) /* any one conjunct's set covers every match */
        return typeq_index_types(t->kids[0], names, cap);
    int n = 0;
    for (int i = 0; i < t->n_kids; i++) {
        int k = typeq_index_types(t->kids[i], names + n, cap - n);
        if (k < 0)
            return -1;
        n += k;
    }
    return n;
}
