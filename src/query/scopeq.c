/*
 * scopeq.c - scope query parser and matcher (see scopeq.h for the
 * grammar). Recursive descent into a flat node array (children by index);
 * a pattern node keeps its text ("/a/+/#"), matched segment by segment
 * against each scope of the entity. Depth, length and term count are
 * capped, so input cannot exhaust the stack or memory.
 */
#include "query/scopeq.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum { N_PAT = 1, N_AND, N_OR };

struct node {
    int kind;
    int left, right; /* N_AND / N_OR */
    char *pat;       /* N_PAT */
};

struct scopeq {
    struct node *nodes;
    int n_nodes, root;
};

struct parser {
    const char *text, *p;
    struct scopeq *q;
    int depth, terms;
    struct err *e;
};

static int fail(struct parser *ps, const char *what)
{
    return err_set(ps->e, ERR_INVALID_REQUEST, "scopeQ: %s at position %d", what,
                   (int)(ps->p - ps->text));
}

static int add_node(struct parser *ps, int kind, int left, int right, char *pat)
{
    struct scopeq *q = ps->q;
    if (q->n_nodes == 2 * SCOPEQ_TERMS_MAX) {
        free(pat);
        return fail(ps, "too many terms");
    }
    q->nodes[q->n_nodes] = (struct node){kind, left, right, pat};
    return q->n_nodes++;
}

static int seg_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static int parse_expr(struct parser *ps);

static int parse_pattern(struct parser *ps)
{
    const char *start = ps->p;
    char *pat;
    if (++ps->terms > SCOPEQ_TERMS_MAX)
        return fail(ps, "too many terms");
    if (*ps->p != '/')
        return fail(ps, "expected '/' (a scope)");
    while (*ps->p == '/') {
        ps->p++;
        if (*ps->p == '#') {
            ps->p++;
            if (*ps->p == '/')
                return fail(ps, "'#' must be the last level");
            break;
        }
        if (*ps->p == '+') {
            ps->p++;
        } else {
            if (!seg_char(*ps->p))
                return fail(ps, "expected a scope level");
            while (seg_char(*ps->p))
                ps->p++;
        }
        if (*ps->p && *ps->p != '/' && *ps->p != ';' && *ps->p != ',' && *ps->p != ')')
            return fail(ps, "unexpected character");
    }
    if ((pat = strndup(start, (size_t)(ps->p - start))) == NULL)
        return err_set(ps->e, ERR_NOMEM, "out of memory");
    return add_node(ps, N_PAT, -1, -1, pat);
}

static int parse_primary(struct parser *ps)
{
    int n;
    if (*ps->p != '(')
        return parse_pattern(ps);
    if (++ps->depth > SCOPEQ_DEPTH_MAX)
        return fail(ps, "parentheses nested too deeply");
    ps->p++;
    if ((n = parse_expr(ps)) < 0)
        return n;
    if (*ps->p != ')')
        return fail(ps, "expected ')'");
    ps->p++;
    ps->depth--;
    return n;
}

static int parse_and(struct parser *ps)
{
    int left = parse_primary(ps), right;
    while (left >= 0 && *ps->p == ';') {
        ps->p++;
        if ((right = parse_primary(ps)) < 0)
            return right;
        left = add_node(ps, N_AND, left, right, NULL);
    }
    return left;
}

static int parse_expr(struct parser *ps)
{
    int left = parse_and(ps), right;
    while (left >= 0 && *ps->p == ',') {
        ps->p++;
        if ((right = parse_and(ps)) < 0)
            return right;
        left = add_node(ps, N_OR, left, right, NULL);
    }
    return left;
}

int scopeq_parse(const char *text, struct scopeq **out, struct err *e)
{
    struct scopeq *q = NULL;
    struct parser ps = {.text = text, .p = text, .e = e};
    int root;

    *out = NULL;
    if (text == NULL || *text == '\0')
        return err_set(e, ERR_INVALID_REQUEST, "scopeQ: empty");
    if (strlen(text) > SCOPEQ_TEXT_MAX)
        return err_set(e, ERR_INVALID_REQUEST, "scopeQ: longer than %d bytes", SCOPEQ_TEXT_MAX);
    if ((q = calloc(1, sizeof(*q))) == NULL ||
        (q->nodes = calloc(2 * SCOPEQ_TERMS_MAX, sizeof(*q->nodes))) == NULL) {
        free(q);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    ps.q = q;
    if ((root = parse_expr(&ps)) >= 0 && *ps.p != '\0')
        root = fail(&ps, *ps.p == ')' ? "unbalanced ')'" : "unexpected character");
    if (root < 0) {
        scopeq_free(q);
        return root;
    }
    q->root = root;
    *out = q;
    return 0;
}

void scopeq_free(struct scopeq *q)
{
    if (q == NULL)
        return;
    for (int i = 0; i < q->n_nodes; i++)
        free(q->nodes[i].pat);
    free(q->nodes);
    free(q);
}

/* One pattern against one scope, level by level. */
static int pat_match(const char *pat, const char *scope)
{
    for (;;) {
        if (*pat == '\0')
            return *scope == '\0';
        /* both at a '/' here */
        if (pat[0] == '/' && pat[1] == '#')
            return 1; /* zero or more further levels */
        if (*scope != '/')
            return 0;
        pat++;
        scope++;
        const char *pe = pat + strcspn(pat, "/"), *se = scope + strcspn(scope, "/");
        if (se == scope)
            return 0; /* "/" or "//" in a scope: no level */
        if (!(pe - pat == 1 && *pat == '+') &&
            (pe - pat != se - scope || strncmp(pat, scope, (size_t)(pe - pat)) != 0))
            return 0;
        pat = pe;
        scope = se;
    }
}

static int pat_any(const char *pat, const cJSON *scope)
{
    const cJSON *s;
    if (cJSON_IsString(scope))
        return pat_match(pat, scope->valuestring);
    cJSON_ArrayForEach(s, scope) if (cJSON_IsString(s) && pat_match(pat, s->valuestring)) return 1;
    return 0;
}

static int eval(const struct scopeq *q, int i, const cJSON *scope)
{
    const struct node *n = &q->nodes[i];
    switch (n->kind) {
    case N_PAT:
        return pat_any(n->pat, scope);
    case N_AND:
        return eval(q, n->left, scope) && eval(q, n->right, scope);
    default:
        return eval(q, n->left, scope) || eval(q, n->right, scope);
    }
}

int scopeq_match(const struct scopeq *q, const cJSON *scope)
{
    if (scope == NULL || (!cJSON_IsString(scope) && !cJSON_IsArray(scope)))
        return 0;
    return eval(q, q->root, scope);
}
