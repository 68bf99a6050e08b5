/*
 * q_eval.c - evaluation of a parsed q expression against an entity document
 * (docs/DESIGN.md form), and index-planning hints.
 *
 * Walk: doc.attrs[segs[0]] is an array of instances (one per datasetId); each
 * further segment descends into instance.sub[seg] (one instance, or an array
 * of them), except the special member names observedAt, createdAt,
 * modifiedAt, unitCode, datasetId (short or https://uri.etsi.org/ngsi-ld/
 * form), which must be the last segment and address that member of the
 * instance. The target value is the instance's value member chosen by its
 * type: value (Property, GeoProperty), object (Relationship), objectList
 * (ListRelationship), languageMap (LanguageProperty), valueList
 * (ListProperty), json (JsonProperty), vocab (VocabProperty); for an unknown
 * or missing type the first present of these. [key] parts then descend into
 * the value (objects by member name, arrays by decimal index; on a
 * LanguageProperty one key selects the language, "*" any language).
 *
 * Semantics (clause 4.9 where it speaks, else our choice):
 * - A term matches if ANY instance (any datasetId, at every level) matches
 *   (4.9: "the target value shall be any Value of such instances").
 * - Existence: the target element exists; with a [key] path, the key path
 *   resolves to a value (4.9: otherwise "non-existent").
 * - Every operator requires the target to exist; so attr!=x and attr!~=re
 *   never match an entity without attr (4.9: "shall contain the target
 *   element").
 * - Arrays (value arrays, object arrays, objectList, valueList, vocab arrays,
 *   languageMap values): ==, <, <=, >, >=, ~= match if any element does;
 *   != matches if no element is == (4.9: "not included in the target
 *   value"); !~= matches if there is a string element and none matches.
 *   Without a language key, a languageMap behaves as the array of all its
 *   strings.
 * - Types: numbers compare with numbers, strings with strings (strcmp,
 *   byte order; no Unicode collation), booleans with booleans (== / !=
 *   only), date-times/dates and times of day with stored strings that
 *   tm_parse / tm_parse_time accept, as instants. A quoted query string is
 *   always a string. Different types are "not equal": == and ordering do not
 *   match, != does (4.9: "If the data type of the target value and the data
 *   type of the Query Term value are different, then they shall be
 *   considered unequal"). ~= / !~= only match string targets.
 * - Ranges a..b are inclusive; == inside, != outside (or other type).
 *   Lists: == any, != none.
 * - Relationship / ListRelationship targets only match == and != (and
 *   existence) (4.9); the query value compares with the object IRI(s) as a
 *   string. objectList elements may be strings or {"object": IRI}.
 * - An attribute path of one segment createdAt / modifiedAt that is not an
 *   attribute of the entity addresses the entity's own member (extension).
 * - !attr matches iff attr (the whole path) does not exist.
 *
 * Thread-safety: everything here only reads the expression and the document;
 * regexec on a shared compiled regex_t is thread-safe (glibc locks it).
 */
#include "query/q.h"
#include "query/q_int.h"
#include "util/time.h"

#include <math.h>
#include <string.h>

enum tkind {
    TK_PLAIN, /* value, json, vocab, valueList, special members */
    TK_REL,   /* object / objectList */
    TK_LANG,  /* languageMap, any language */
};

typedef int (*pred_fn)(const struct q__term *t, const cJSON *elem);

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* Compare a stored scalar with a query value. Returns 1 and *c (<0, 0, >0)
 * if they are of comparable types, else 0. */
static int cmp_scalar(const cJSON *e, const struct q__value *v, int *c)
{
    int64_t ms;

    switch (v->kind) {
    case Q_V_NUM:
        if (!cJSON_IsNumber(e) || isnan(e->valuedouble))
            return 0;
        *c = e->valuedouble < v->num ? -1 : e->valuedouble > v->num ? 1 : 0;
        return 1;
    case Q_V_STR:
        if (!cJSON_IsString(e) || e->valuestring == NULL)
            return 0;
        *c = strcmp(e->valuestring, v->str);
        return 1;
    case Q_V_BOOL:
        if (!cJSON_IsBool(e))
            return 0;
        *c = (cJSON_IsTrue(e) != 0) == (v->boolean != 0) ? 0 : 1;
        return 1;
    case Q_V_DATETIME:
        if (!cJSON_IsString(e) || e->valuestring == NULL || tm_parse(e->valuestring, &ms) != 0)
            return 0;
        *c = ms < v->ms ? -1 : ms > v->ms ? 1 : 0;
        return 1;
    case Q_V_TIME:
        if (!cJSON_IsString(e) || e->valuestring == NULL ||
            tm_parse_time(e->valuestring, &ms) != 0)
            return 0;
        *c = ms < v->ms ? -1 : ms > v->ms ? 1 : 0;
        return 1;
    }
    return 0;
}

static int pred_eq(const struct q__term *t, const cJSON *e)
{
    int c, d;

    if (t->form == Q_FORM_RANGE)
        return cmp_scalar(e, &t->vals[0], &c) && c >= 0 && cmp_scalar(e, &t->vals[1], &d) &&
               d <= 0;
    for (size_t i = 0; i < t->n_vals; i++)
        if (cmp_scalar(e, &t->vals[i], &c) && c == 0)
            return 1;
    return 0;
}

static int pred_order(const struct q__term *t, const cJSON *e)
{
    int c;

    if (t->n_vals != 1 || !cmp_scalar(e, &t->vals[0], &c))
        return 0;
    switch (t->op) {
    case Q_OP_LT: return c < 0;
    case Q_OP_LE: return c <= 0;
    case Q_OP_GT: return c > 0;
    case Q_OP_GE: return c >= 0;
    default: return 0;
    }
}

static int pred_regex(const struct q__term *t, const cJSON *e)
{
    return t->has_re && cJSON_IsString(e) && e->valuestring != NULL &&
           regexec(&t->re, e->valuestring, 0, NULL, 0) == 0;
}

static int pred_string(const struct q__term *t, const cJSON *e)
{
    (void)t;
    return cJSON_IsString(e) && e->valuestring != NULL;
}

/* Does pred hold for v, or for any element if v is an array (see header)? */
static int any_elem(const struct q__term *t, const cJSON *v, enum tkind kind, pred_fn pred)
{
    const cJSON *c;

    if (kind == TK_LANG) {
        if (!cJSON_IsObject(v))
            return 0;
        cJSON_ArrayForEach(c, v) {
            if (any_elem(t, c, TK_PLAIN, pred))
                return 1;
        }
        return 0;
    }
    if (!cJSON_IsArray(v))
        return pred(t, v);
    cJSON_ArrayForEach(c, v) {
        const cJSON *x = c;
        if (kind == TK_REL && cJSON_IsObject(c))
            x = get(c, "object");
        if (x != NULL && pred(t, x))
            return 1;
    }
    return 0;
}

/* The operator of t (never EXISTS/ABSENT) on an existing target value v. */
static int test_value(const struct q__term *t, enum q__op op, const cJSON *v, enum tkind kind)
{
    if (kind == TK_REL && op != Q_OP_EQ && op != Q_OP_NE)
        return 0;
    switch (op) {
    case Q_OP_EQ: return any_elem(t, v, kind, pred_eq);
    case Q_OP_NE: return !any_elem(t, v, kind, pred_eq);
    case Q_OP_LT: case Q_OP_LE: case Q_OP_GT: case Q_OP_GE:
        return any_elem(t, v, kind, pred_order);
    case Q_OP_MATCH: return any_elem(t, v, kind, pred_regex);
    case Q_OP_NOMATCH:
        return any_elem(t, v, kind, pred_string) && !any_elem(t, v, kind, pred_regex);
    default: return 0;
    }
}

/* For special members and entity members: existence or the operator. */
static int test_member(const struct q__term *t, enum q__op op, const cJSON *v)
{
    if (v == NULL)
        return 0;
    return op == Q_OP_EXISTS ? 1 : test_value(t, op, v, TK_PLAIN);
}

static int is_type(const char *type, const char *name)
{
    size_t ns = sizeof("https://uri.etsi.org/ngsi-ld/") - 1;

    if (strncmp(type, "https://uri.etsi.org/ngsi-ld/", ns) == 0)
        type += ns;
    return strcmp(type, name) == 0;
}

/* The value member of an instance and how to read it. */
static const cJSON *target_value(const cJSON *inst, enum tkind *kind)
{
    static const struct { const char *type, *member; enum tkind kind; } map[] = {
        {"Property", "value", TK_PLAIN},
        {"GeoProperty", "value", TK_PLAIN},
        {"Relationship", "object", TK_REL},
        {"LanguageProperty", "languageMap", TK_LANG},
        {"ListProperty", "valueList", TK_PLAIN},
        {"JsonProperty", "json", TK_PLAIN},
        {"VocabProperty", "vocab", TK_PLAIN},
        {"ListRelationship", "objectList", TK_REL},
    };
    const cJSON *type = get(inst, "type");
    size_t n = sizeof(map) / sizeof(map[0]), i;

    if (cJSON_IsString(type) && type->valuestring != NULL) {
        for (i = 0; i < n; i++) {
            if (is_type(type->valuestring, map[i].type)) {
                *kind = map[i].kind;
                return get(inst, map[i].member);
            }
        }
    }
    for (i = 0; i < n; i++) {
        const cJSON *v = get(inst, map[i].member);
        if (v != NULL) {
            *kind = map[i].kind;
            return v;
        }
    }
    *kind = TK_PLAIN;
    return NULL;
}

/* Follow [key] parts into a compound value. */
static const cJSON *walk_keys(const cJSON *v, char *const *keys, size_t n_keys)
{
    for (size_t i = 0; i < n_keys && v != NULL; i++) {
        const char *k = keys[i];
        if (cJSON_IsObject(v)) {
            v = cJSON_GetObjectItemCaseSensitive(v, k);
        } else if (cJSON_IsArray(v) && strlen(k) <= 9 && strspn(k, "0123456789") == strlen(k)) {
            int idx = 0;
            for (const char *c = k; *c; c++)
                idx = idx * 10 + (*c - '0');
            v = cJSON_GetArrayItem(v, idx);
        } else {
            v = NULL;
        }
    }
    return v;
}

/* The instance at the end of the attribute path. */
static int on_target(const struct q__term *t, enum q__op op, const cJSON *inst)
{
    enum tkind kind;
    const cJSON *v = target_value(inst, &kind);

    if (op == Q_OP_EXISTS && t->n_keys == 0)
        return 1;
    if (v == NULL)
        return 0;
    if (t->n_keys > 0) {
        if (kind == TK_LANG) {
            if (t->n_keys != 1)
                return 0;
            if (strcmp(t->keys[0], "*") != 0) {
                v = get(v, t->keys[0]);
                kind = TK_PLAIN;
            }
        } else {
            v = walk_keys(v, t->keys, t->n_keys);
            kind = TK_PLAIN;
        }
        if (v == NULL)
            return 0;
    }
    return op == Q_OP_EXISTS ? 1 : test_value(t, op, v, kind);
}

static int on_instances(const struct q__term *t, enum q__op op, const cJSON *insts, size_t seg);

/* One instance, with segs[seg..] still to walk. */
static int on_instance(const struct q__term *t, enum q__op op, const cJSON *inst, size_t seg)
{
    const char *member;

    if (seg >= t->n_segs)
        return on_target(t, op, inst);
    member = q__instance_member(t->segs[seg]);
    if (member != NULL) {
        if (seg + 1 != t->n_segs || t->n_keys > 0)
            return 0;
        return test_member(t, op, get(inst, member));
    }
    return on_instances(t, op, get(get(inst, "sub"), t->segs[seg]), seg + 1);
}

/* An array of instances (or a single instance object): any of them. */
static int on_instances(const struct q__term *t, enum q__op op, const cJSON *insts, size_t seg)
{
    const cJSON *c;

    if (cJSON_IsObject(insts))
        return on_instance(t, op, insts, seg);
    if (!cJSON_IsArray(insts))
        return 0;
    cJSON_ArrayForEach(c, insts) {
        if (cJSON_IsObject(c) && on_instance(t, op, c, seg))
            return 1;
    }
    return 0;
}

static int eval_term(const struct q__term *t, const cJSON *doc)
{
    enum q__op op = t->op == Q_OP_ABSENT ? Q_OP_EXISTS : t->op;
    const cJSON *insts = get(get(doc, "attrs"), t->segs[0]);
    const char *member;
    int r;

    if (insts == NULL && t->n_segs == 1 && t->n_keys == 0 &&
        (member = q__entity_member(t->segs[0])) != NULL)
        r = test_member(t, op, get(doc, member));
    else
        r = on_instances(t, op, insts, 1);
    return t->op == Q_OP_ABSENT ? !r : r;
}

static int eval_node(const struct q__node *n, const cJSON *doc)
{
    switch (n->kind) {
    case Q_N_TERM:
        return eval_term(n->term, doc);
    case Q_N_AND:
        for (size_t i = 0; i < n->n_kids; i++)
            if (!eval_node(n->kids[i], doc))
                return 0;
        return 1;
    case Q_N_OR:
        for (size_t i = 0; i < n->n_kids; i++)
            if (eval_node(n->kids[i], doc))
                return 1;
        return 0;
    }
    return 0;
}

int q_match(const struct q_expr *q, const cJSON *doc)
{
    if (q == NULL || q->root == NULL || !cJSON_IsObject(doc))
        return 0;
    return eval_node(q->root, doc);
}

/* ---- index hints ------------------------------------------------------------ */

/* Rank of a term as an index hint (0: unusable, 1: one-sided range,
 * 2: two-sided range, 3: equality) and the hint itself. */
static int term_hint(const struct q__term *t, struct q_hint *h)
{
    const struct q__value *v = t->n_vals > 0 ? &t->vals[0] : NULL;

    if (t->n_segs != 1 || t->n_keys > 0 || v == NULL || q__entity_member(t->segs[0]) != NULL)
        return 0;
    memset(h, 0, sizeof(*h));
    h->attr = t->segs[0];
    h->kind = Q_HINT_RANGE;
    h->lo = -INFINITY;
    h->hi = INFINITY;
    if (t->op == Q_OP_EQ && t->form == Q_FORM_ONE && v->kind == Q_V_NUM) {
        h->kind = Q_HINT_EQ_NUM;
        h->num = h->lo = h->hi = v->num;
        h->lo_incl = h->hi_incl = 1;
        return 3;
    }
    if (t->op == Q_OP_EQ && t->form == Q_FORM_ONE && v->kind == Q_V_STR) {
        h->kind = Q_HINT_EQ_STR;
        h->str = v->str;
        return 3;
    }
    if (v->kind != Q_V_NUM)
        return 0;
    if (t->op == Q_OP_EQ && t->form == Q_FORM_RANGE) {
        h->lo = v->num;
        h->hi = t->vals[1].num;
        h->lo_incl = h->hi_incl = 1;
        return 2;
    }
    if (t->form != Q_FORM_ONE)
        return 0;
    switch (t->op) {
    case Q_OP_GT: case Q_OP_GE:
        h->lo = v->num;
        h->lo_incl = t->op == Q_OP_GE;
        return 1;
    case Q_OP_LT: case Q_OP_LE:
        h->hi = v->num;
        h->hi_incl = t->op == Q_OP_LE;
        return 1;
    default:
        return 0;
    }
}

/* best := best ∩ h (both ranges on the same attribute). */
static void intersect(struct q_hint *best, const struct q_hint *h)
{
    if (h->lo > best->lo || (h->lo == best->lo && !h->lo_incl)) {
        best->lo = h->lo;
        best->lo_incl = h->lo_incl;
    }
    if (h->hi < best->hi || (h->hi == best->hi && !h->hi_incl)) {
        best->hi = h->hi;
        best->hi_incl = h->hi_incl;
    }
}

static void consider(const struct q__term *t, struct q_hint *best, int *best_rank)
{
    struct q_hint h;
    int rank = term_hint(t, &h);

    if (rank == 0)
        return;
    if (rank < 3 && *best_rank > 0 && *best_rank < 3 && strcmp(best->attr, h.attr) == 0) {
        intersect(best, &h);
        *best_rank = isinf(best->lo) || isinf(best->hi) ? 1 : 2;
        return;
    }
    if (rank > *best_rank) {
        *best = h;
        *best_rank = rank;
    }
}

int q_index_hint(const struct q_expr *q, struct q_hint *hint)
{
    struct q_hint best;
    int rank = 0;

    if (q == NULL || q->root == NULL || hint == NULL)
        return 0;
    memset(&best, 0, sizeof(best));
    if (q->root->kind == Q_N_TERM) {
        consider(q->root->term, &best, &rank);
    } else if (q->root->kind == Q_N_AND) {
        for (size_t i = 0; i < q->root->n_kids; i++)
            if (q->root->kids[i]->kind == Q_N_TERM)
                consider(q->root->kids[i]->term, &best, &rank);
    }
    if (rank == 0)
        return 0;
    *hint = best;
    return 1;
}
