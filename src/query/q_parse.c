/*
 * q_parse.c - parser of the NGSI-LD query language (ETSI GS CIM 009 v1.8,
 * clause 4.9), plus q_free, q_expand and q_foreach_attr.
 *
 * A hand-written recursive-descent parser over the raw text (already
 * URL-decoded by the HTTP layer). Grammar, as implemented:
 *
 *   query   = or
 *   or      = and *("|" and)            ; AND binds tighter than OR (4.9)
 *   and     = primary *(";" and)
 *   primary = "(" or ")" / term         ; nesting <= Q_DEPTH_MAX
 *   term    = ["!"] path                ; existence / absence
 *           / path op value / path ("==" / "!=") (range / list)
 *           / path ("~=" / "!~=") regex
 *   path    = name *("." name) *("[" key *("." key) "]")
 *   range   = value ".." value          ; same kind, not boolean
 *   list    = value 1*("," value)
 *
 * Decisions (spec text first, then what it leaves open):
 * - Whitespace (space, tab, CR, LF) is allowed between tokens: around
 *   operators, logical operators, parentheses, commas and "..". The spec
 *   grammar has none; tolerating it costs nothing.
 * - Names: the spec's AttrName is unicodeLetter *(unicodeNumber /
 *   unicodeLetter / "_") with an optional "prefix:" (compact IRI). We accept a
 *   superset: the first byte is an ASCII letter or any non-ASCII byte (UTF-8
 *   letters are not classified), then ASCII letters, digits and
 *   _ : / # - @ % ? & + $ ' or non-ASCII bytes, so expanded IRIs such as
 *   https://x/y#z are names too. "." separates sub-attributes, except inside
 *   a name that contains "scheme://": there a "." is part of the IRI (domain
 *   names, "dataModel.Streetlighting") unless what follows is another
 *   "scheme://" IRI or a special member name (observedAt...), which makes it
 *   a separator. Linked-entity paths (attr{...}, 4.5.23) are not supported.
 * - [key] paths: the spec has one bracket with a dotted member path
 *   ("[airquality.particulate]"); we also accept several brackets
 *   ("[a][b]", "[a.b][c]"); they concatenate. A key is a run of printable
 *   non-blank bytes other than . [ ] = < > ! ~ ; | ( ) , and '"'. On arrays
 *   a key of digits indexes. On a LanguageProperty a single key selects the
 *   language and "[*]" means any language.
 * - Values (the spec's ComparableValue / OtherValue / URI): "..." is a JSON
 *   string (all JSON escapes, \u0000 and raw control bytes refused);
 *   unquoted tokens run to ; | ( ) , " whitespace or "..", and are, in this
 *   order: true/false, a JSON number, a date-time or date (tm_parse), a time
 *   of day (tm_parse_time), else a string (URIs like urn:ngsi-ld:X:1).
 *   Ranges and lists only go with == and != (the spec's CompEqualityValue);
 *   a range's bounds must be of one kind and not booleans; ranges cannot be
 *   list elements; true/false only go with == and != (they are not
 *   ComparableValues). These are parse errors.
 * - Regular expressions (the spec: IEEE 1003.2) are POSIX ERE compiled with
 *   REG_EXTENDED|REG_NOSUB. Either a JSON string "..." or unquoted: the
 *   unquoted form runs to the first ; or | or ) outside parentheses and
 *   bracket expressions (trailing whitespace dropped), so a top-level
 *   alternation has to be written (a|b) or quoted. A leading "(?i)" means
 *   case-insensitive (REG_ICASE), as in several brokers. Refused, to keep
 *   regcomp/regexec bounded: back-references (\1..\9), stacked repetition
 *   operators (a**, a+{2}: undefined in POSIX, exponential in glibc),
 *   interval counts above 255 or whose product exceeds 1000, parentheses
 *   nested deeper than Q_DEPTH_MAX, longer than Q_REGEX_LEN_MAX bytes, more
 *   than Q_REGEX_MAX per expression.
 * - "!attr" (entity has no such attribute) is an extension (Stellio has it);
 *   it takes no operator.
 * - Error positions are 0-based byte offsets into the text.
 * Evaluation decisions are listed at the top of q_eval.c.
 *
 * Thread-safety: q_parse / q_free / q_expand touch only their own
 * expression; q_foreach_attr only reads it.
 */
#include "query/q.h"
#include "query/q_int.h"
#include "util/re.h"
#include "util/time.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    size_t n_regex;
    struct q_expr *q;
    struct err *e;
};

/* ---- names of special members ------------------------------------------ */

#define NGSI_NS "https://uri.etsi.org/ngsi-ld/"

static const char *const instance_members[] = {
    "observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId",
};
static const char *const entity_members[] = {"createdAt", "modifiedAt"};

static const char *member_lookup(const char *seg, const char *const *names, size_t n)
{
    size_t ns = sizeof(NGSI_NS) - 1;

    if (strncmp(seg, NGSI_NS, ns) == 0)
        seg += ns;
    for (size_t i = 0; i < n; i++)
        if (strcmp(seg, names[i]) == 0)
            return names[i];
    return NULL;
}

const char *q__instance_member(const char *seg)
{
    return member_lookup(seg, instance_members,
                         sizeof(instance_members) / sizeof(instance_members[0]));
}

const char *q__entity_member(const char *seg)
{
    return member_lookup(seg, entity_members, sizeof(entity_members) / sizeof(entity_members[0]));
}

/* ---- freeing -------------------------------------------------------------- */

static void node_free(struct q__node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n);
}

static void term_free(struct q__term *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_segs; i++)
        free(t->segs[i]);
    free(t->segs);
    for (size_t i = 0; i < t->n_keys; i++)
        free(t->keys[i]);
    free(t->keys);
    for (size_t i = 0; i < t->n_vals; i++)
        free(t->vals[i].str);
    free(t->vals);
    if (t->has_re)
        regfree(&t->re);
    free(t);
}

void q_free(struct q_expr *q)
{
    if (q == NULL)
        return;
    node_free(q->root);
    for (size_t i = 0; i < q->n_terms; i++)
        term_free(q->terms[i]);
    free(q->terms);
    free(q);
}

/* ---- growable arrays (sizes are bounded by Q_TEXT_MAX) --------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *p;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 4;
    while (ncap < need)
        ncap *= 2;
    p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Append s to a string array; takes ownership of s (freed on failure). */
static int push_str(char ***arr, size_t *n, size_t *cap, char *s)
{
    void *a = *arr;

    if (s == NULL)
        return ERR_NOMEM;
    if (grow(&a, cap, *n + 1, sizeof(char *))) {
        free(s);
        return ERR_NOMEM;
    }
    *arr = a;
    (*arr)[(*n)++] = s;
    return 0;
}

/* ---- error reporting ------------------------------------------------------- */

static int nomem(struct parser *p)
{
    return err_set(p->e, ERR_NOMEM, "q: out of memory");
}

/* "q: unexpected <what is at pos> at position <pos>, expected <expected>" */
static int fail_at(struct parser *p, size_t pos, const char *expected)
{
    char what[32];

    if (pos >= p->len) {
        snprintf(what, sizeof(what), "end of input");
    } else {
        unsigned char c = (unsigned char)p->s[pos];
        if (c >= 0x20 && c < 0x7f)
            snprintf(what, sizeof(what), "'%c'", c);
        else
            snprintf(what, sizeof(what), "byte 0x%02x", c);
    }
    return err_set(p->e, ERR_INVALID_REQUEST, "q: unexpected %s at position %zu, expected %s",
                   what, pos, expected);
}

/* ---- lexing helpers -------------------------------------------------------- */

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && is_ws((unsigned char)p->s[p->pos]))
        p->pos++;
}

/* Byte at i, or 0 past the end (the text is NUL-terminated at len). */
static int at(const struct parser *p, size_t i)
{
    return i < p->len ? (unsigned char)p->s[i] : 0;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int name_start(int c)
{
    return is_alpha(c) || c >= 0x80;
}

static int name_char(int c)
{
    return is_alpha(c) || is_digit(c) || c >= 0x80 || (c != 0 && strchr("_:/#-@%?&+$'", c));
}

/* Does "scheme://" start at i? */
static int iri_start_at(const struct parser *p, size_t i)
{
    if (!is_alpha(at(p, i)))
        return 0;
    i++;
    while (is_alpha(at(p, i)) || is_digit(at(p, i)) || at(p, i) == '+' || at(p, i) == '-')
        i++;
    return at(p, i) == ':' && at(p, i + 1) == '/' && at(p, i + 2) == '/';
}

/* Inside an IRI name, is the "." just before i a path separator? Yes if an
 * IRI or a whole special member name follows. */
static int dot_separates(const struct parser *p, size_t i)
{
    if (iri_start_at(p, i))
        return 1;
    for (size_t k = 0; k < sizeof(instance_members) / sizeof(instance_members[0]); k++) {
        size_t n = strlen(instance_members[k]);
        if (i + n <= p->len && memcmp(p->s + i, instance_members[k], n) == 0 &&
            !name_char(at(p, i + n)) && at(p, i + n) != '.')
            return 1;
    }
    return 0;
}

/* One attribute-name segment; *out is malloc'd. */
static int scan_name(struct parser *p, char **out)
{
    size_t start = p->pos;
    int iri;

    if (!name_start(at(p, p->pos)))
        return fail_at(p, p->pos, "an attribute name");
    iri = iri_start_at(p, start);
    for (;;) {
        int c = at(p, p->pos);
        if (name_char(c))
            p->pos++;
        else if (c == '.' && iri && !dot_separates(p, p->pos + 1))
            p->pos++;
        else
            break;
    }
    *out = strndup(p->s + start, p->pos - start);
    return *out ? 0 : nomem(p);
}

static int hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(struct parser *p, size_t i, unsigned *out)
{
    unsigned v = 0;

    for (size_t k = 0; k < 4; k++) {
        int h = hexval(at(p, i + k));
        if (h < 0)
            return fail_at(p, i + k, "a hex digit");
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* A JSON string starting at the '"' at p->pos; *out is malloc'd. */
static int scan_quoted(struct parser *p, char **out)
{
    /* Output never exceeds input: an escape of n bytes decodes to <= n. */
    char *buf = malloc(p->len - p->pos + 1);
    size_t n = 0;
    int rc;

    *out = NULL;
    if (buf == NULL)
        return nomem(p);
    p->pos++;
    for (;;) {
        int c = at(p, p->pos);
        if (p->pos >= p->len) {
            rc = fail_at(p, p->pos, "'\"'");
            goto fail;
        }
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            rc = fail_at(p, p->pos, "a string character (control characters must be escaped)");
            goto fail;
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            p->pos++;
            continue;
        }
        c = at(p, p->pos + 1);
        switch (c) {
        case '"': case '\\': case '/': buf[n++] = (char)c; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp = 0, lo = 0;
            if ((rc = hex4(p, p->pos + 2, &cp)))
                goto fail;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                rc = fail_at(p, p->pos, "a valid \\u escape (lone low surrogate)");
                goto fail;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (at(p, p->pos + 6) != '\\' || at(p, p->pos + 7) != 'u') {
                    rc = fail_at(p, p->pos + 6, "a \\u low surrogate");
                    goto fail;
                }
                if ((rc = hex4(p, p->pos + 8, &lo)))
                    goto fail;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    rc = fail_at(p, p->pos + 6, "a \\u low surrogate");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->pos += 6;
            }
            if (cp == 0) {
                rc = fail_at(p, p->pos, "a non-NUL character");
                goto fail;
            }
            if (cp < 0x80) {
                buf[n++] = (char)cp;
            } else if (cp < 0x800) {
                buf[n++] = (char)(0xC0 | (cp >> 6));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                buf[n++] = (char)(0xE0 | (cp >> 12));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[n++] = (char)(0xF0 | (cp >> 18));
                buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            }
            p->pos += 4; /* + 2 below */
            break;
        }
        default:
            rc = fail_at(p, p->pos + 1, "a JSON escape character");
            goto fail;
        }
        p->pos += 2;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
fail:
    free(buf);
    return rc;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (is_digit(*s))
            s++;
    } else {
        return 0;
    }
    if (*s == '.') {
        s++;
        if (!is_digit(*s))
            return 0;
        while (is_digit(*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!is_digit(*s))
            return 0;
        while (is_digit(*s))
            s++;
    }
    return *s == '\0';
}

/* One value at p->pos (after whitespace). */
static int parse_value(struct parser *p, struct q__value *v)
{
    size_t start;
    char *tok;
    int rc;

    skip_ws(p);
    memset(v, 0, sizeof(*v));
    if (at(p, p->pos) == '"') {
        v->kind = Q_V_STR;
        return scan_quoted(p, &v->str);
    }
    start = p->pos;
    /* an unquoted value never starts with an operator character: "a>>1" is
     * a typo, not a comparison with the string ">1" */
    if (strchr("<>=!~", at(p, p->pos)) && at(p, p->pos) != '\0')
        return fail_at(p, p->pos, "a value");
    for (;;) {
        int c = at(p, p->pos);
        if (p->pos >= p->len || c < 0x20 || c == 0x7f || is_ws(c) || strchr(";|(),\"", c))
            break;
        if (c == '.' && at(p, p->pos + 1) == '.')
            break;
        p->pos++;
    }
    if (p->pos == start)
        return fail_at(p, p->pos, "a value");
    tok = strndup(p->s + start, p->pos - start);
    if (tok == NULL)
        return nomem(p);
    if (strcmp(tok, "true") == 0 || strcmp(tok, "false") == 0) {
        v->kind = Q_V_BOOL;
        v->boolean = tok[0] == 't';
        free(tok);
    } else if (is_json_number(tok)) {
        v->kind = Q_V_NUM;
        v->num = strtod(tok, NULL);
        free(tok);
    } else if ((rc = tm_parse(tok, &v->ms)) == 0) {
        v->kind = Q_V_DATETIME;
        free(tok);
    } else if ((rc = tm_parse_time(tok, &v->ms)) == 0) {
        v->kind = Q_V_TIME;
        free(tok);
    } else {
        v->kind = Q_V_STR;
        v->str = tok;
    }
    return 0;
}

static int push_value(struct parser *p, struct q__term *t, size_t *cap)
{
    void *a = t->vals;
    int rc;

    if (grow(&a, cap, t->n_vals + 1, sizeof(struct q__value)))
        return nomem(p);
    t->vals = a;
    rc = parse_value(p, &t->vals[t->n_vals]);
    if (rc == 0)
        t->n_vals++;
    return rc;
}

static int op_is_equality(enum q__op op)
{
    return op == Q_OP_EQ || op == Q_OP_NE;
}

/* Value, range or list after a comparison operator at op_pos. */
static int parse_values(struct parser *p, struct q__term *t, size_t op_pos)
{
    size_t cap = 0, vpos;
    int rc;

    skip_ws(p);
    vpos = p->pos;
    if ((rc = push_value(p, t, &cap)))
        return rc;
    skip_ws(p);
    if (at(p, p->pos) == '.' && at(p, p->pos + 1) == '.') {
        p->pos += 2;
        if ((rc = push_value(p, t, &cap)))
            return rc;
        if (!op_is_equality(t->op))
            return err_set(p->e, ERR_INVALID_REQUEST,
                           "q: the range at position %zu needs == or != (operator at %zu)", vpos,
                           op_pos);
        if (t->vals[0].kind != t->vals[1].kind || t->vals[0].kind == Q_V_BOOL)
            return err_set(p->e, ERR_INVALID_REQUEST,
                           "q: the range at position %zu needs two numbers, strings, date-times "
                           "or times",
                           vpos);
        t->form = Q_FORM_RANGE;
        return 0;
    }
    if (at(p, p->pos) == ',') {
        if (!op_is_equality(t->op))
            return err_set(p->e, ERR_INVALID_REQUEST,
                           "q: the value list at position %zu needs == or != (operator at %zu)",
                           vpos, op_pos);
        t->form = Q_FORM_LIST;
        while (at(p, p->pos) == ',') {
            p->pos++;
            if ((rc = push_value(p, t, &cap)))
                return rc;
            skip_ws(p);
            if (at(p, p->pos) == '.' && at(p, p->pos + 1) == '.')
                return fail_at(p, p->pos, "',' or the end of the list (no ranges in lists)");
        }
        return 0;
    }
    t->form = Q_FORM_ONE;
    if (t->vals[0].kind == Q_V_BOOL && !op_is_equality(t->op))
        return err_set(p->e, ERR_INVALID_REQUEST,
                       "q: true/false at position %zu only compare with == or !=", vpos);
    return 0;
}

/* Refuse regular expressions whose compilation or matching could blow up
 * (util/re.h). */
static int regex_check(struct parser *p, const char *src, size_t rpos)
{
    char why[96];
    if (re_check(src, why, sizeof(why)) != 0)
        return err_set(p->e, ERR_INVALID_REQUEST,
                       "q: the regular expression at position %zu %s", rpos, why);
    return 0;
}

/* Regular expression after ~= / !~=. */
static int parse_regex(struct parser *p, struct q__term *t)
{
    size_t rpos, end;
    char *src = NULL;
    const char *pat;
    int rc, flags = REG_EXTENDED | REG_NOSUB;

    skip_ws(p);
    rpos = p->pos;
    if (p->n_regex >= Q_REGEX_MAX)
        return err_set(p->e, ERR_INVALID_REQUEST,
                       "q: more than %d regular expressions (position %zu)", Q_REGEX_MAX, rpos);
    if (at(p, p->pos) == '"') {
        if ((rc = scan_quoted(p, &src)))
            return rc;
    } else {
        int depth = 0, in_bracket = 0;
        while (p->pos < p->len) {
            int c = at(p, p->pos);
            if (c < 0x20 && !is_ws(c))
                break;
            if (in_bracket) {
                if (c == '[' && strchr(":.=", at(p, p->pos + 1)) && at(p, p->pos + 1)) {
                    /* [:class:], [.coll.], [=equiv=] */
                    int d = at(p, p->pos + 1);
                    size_t k = p->pos + 2;
                    while (k < p->len && !(at(p, k) == d && at(p, k + 1) == ']'))
                        k++;
                    p->pos = k < p->len ? k + 2 : k;
                    continue;
                }
                if (c == ']')
                    in_bracket = 0;
                p->pos++;
                continue;
            }
            if (c == '\\') {
                p->pos += p->pos + 1 < p->len ? 2 : 1;
                continue;
            }
            if (c == '[') {
                in_bracket = 1;
                p->pos++;
                if (at(p, p->pos) == '^')
                    p->pos++;
                if (at(p, p->pos) == ']')
                    p->pos++;
                continue;
            }
            if (c == '(') {
                depth++;
            } else if (c == ')') {
                if (depth == 0)
                    break;
                depth--;
            } else if ((c == ';' || c == '|') && depth == 0) {
                break;
            }
            p->pos++;
        }
        end = p->pos;
        while (end > rpos && is_ws(at(p, end - 1)))
            end--;
        if (end == rpos)
            return fail_at(p, rpos, "a regular expression");
        src = strndup(p->s + rpos, end - rpos);
        if (src == NULL)
            return nomem(p);
    }
    pat = src;
    if (strncmp(pat, "(?i)", 4) == 0) {
        flags |= REG_ICASE;
        pat += 4;
    }
    if ((rc = regex_check(p, pat, rpos)))
        goto out;
    rc = regcomp(&t->re, pat, flags);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &t->re, msg, sizeof(msg));
        regfree(&t->re);
        rc = err_set(p->e, ERR_INVALID_REQUEST,
                     "q: bad regular expression at position %zu: %s", rpos, msg);
        goto out;
    }
    t->has_re = 1;
    p->n_regex++;
out:
    free(src);
    return rc;
}

/* attr(.sub)*([k(.k)*])* */
static int parse_path(struct parser *p, struct q__term *t)
{
    size_t cap_segs = 0, cap_keys = 0;
    char *s = NULL;
    int rc;

    for (;;) {
        if ((rc = scan_name(p, &s)))
            return rc;
        if ((rc = push_str(&t->segs, &t->n_segs, &cap_segs, s)))
            return nomem(p);
        if (at(p, p->pos) != '.')
            break;
        p->pos++;
    }
    while (at(p, p->pos) == '[') {
        p->pos++;
        for (;;) {
            size_t start = p->pos;
            int c;
            while ((c = at(p, p->pos)) > 0x20 && c != 0x7f && !strchr(".[]=<>!~;|(),\"", c))
                p->pos++;
            if (p->pos == start)
                return fail_at(p, p->pos, "a member name");
            if (p->pos >= p->len || (c != '.' && c != ']'))
                return fail_at(p, p->pos, "'.' or ']'");
            s = strndup(p->s + start, p->pos - start);
            if ((rc = push_str(&t->keys, &t->n_keys, &cap_keys, s)))
                return nomem(p);
            p->pos++;
            if (c == ']')
                break;
        }
    }
    return 0;
}

static int parse_term(struct parser *p, struct q__node **out)
{
    struct q__term *t;
    struct q__node *n;
    size_t op_pos;
    void *a = p->q->terms;
    int rc;

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return nomem(p);
    if (grow(&a, &p->q->cap_terms, p->q->n_terms + 1, sizeof(*p->q->terms))) {
        free(t);
        return nomem(p);
    }
    p->q->terms = a;
    p->q->terms[p->q->n_terms++] = t; /* owned by q from here on */

    t->op = Q_OP_EXISTS;
    if (at(p, p->pos) == '!' && name_start(at(p, p->pos + 1))) {
        t->op = Q_OP_ABSENT;
        p->pos++;
    }
    if ((rc = parse_path(p, t)))
        return rc;
    skip_ws(p);
    op_pos = p->pos;
    {
        static const struct { const char *text; enum q__op op; } ops[] = {
            {"==", Q_OP_EQ}, {"!=", Q_OP_NE}, {"!~=", Q_OP_NOMATCH}, {"~=", Q_OP_MATCH},
            {">=", Q_OP_GE}, {">", Q_OP_GT}, {"<=", Q_OP_LE}, {"<", Q_OP_LT},
        };
        size_t i;
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            size_t n_op = strlen(ops[i].text);
            if (p->pos + n_op <= p->len && memcmp(p->s + p->pos, ops[i].text, n_op) == 0)
                break;
        }
        if (i == sizeof(ops) / sizeof(ops[0])) {
            int c = at(p, p->pos);
            if (p->pos < p->len && c != ';' && c != '|' && c != ')')
                return fail_at(p, p->pos, t->op == Q_OP_ABSENT ? "';', '|', ')' or end of input"
                                                               : "an operator");
        } else {
            if (t->op == Q_OP_ABSENT)
                return fail_at(p, p->pos, "';', '|', ')' or end of input after '!attribute'");
            t->op = ops[i].op;
            p->pos += strlen(ops[i].text);
            if (t->op == Q_OP_MATCH || t->op == Q_OP_NOMATCH)
                rc = parse_regex(p, t);
            else
                rc = parse_values(p, t, op_pos);
            if (rc)
                return rc;
        }
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return nomem(p);
    n->kind = Q_N_TERM;
    n->term = t;
    *out = n;
    return 0;
}

/* Add kid to an AND / OR node; takes ownership of kid in all cases. A kid of
 * the same kind is flattened into n. */
static int node_add(struct parser *p, struct q__node *n, struct q__node *kid)
{
    void *a = n->kids;
    size_t add = kid->kind == n->kind ? kid->n_kids : 1;

    if (grow(&a, &n->cap_kids, n->n_kids + add, sizeof(*n->kids))) {
        node_free(kid);
        return nomem(p);
    }
    n->kids = a;
    if (kid->kind == n->kind) {
        memcpy(n->kids + n->n_kids, kid->kids, kid->n_kids * sizeof(*kid->kids));
        n->n_kids += kid->n_kids;
        free(kid->kids);
        free(kid);
    } else {
        n->kids[n->n_kids++] = kid;
    }
    return 0;
}

static int parse_or(struct parser *p, struct q__node **out);

static int parse_primary(struct parser *p, struct q__node **out)
{
    int rc;

    skip_ws(p);
    if (at(p, p->pos) != '(')
        return parse_term(p, out);
    if (p->depth >= Q_DEPTH_MAX)
        return err_set(p->e, ERR_INVALID_REQUEST,
                       "q: parentheses nested deeper than %d at position %zu", Q_DEPTH_MAX,
                       p->pos);
    p->depth++;
    p->pos++;
    if ((rc = parse_or(p, out)))
        return rc;
    skip_ws(p);
    if (at(p, p->pos) != ')' || p->pos >= p->len) {
        node_free(*out);
        *out = NULL;
        return fail_at(p, p->pos, "';', '|' or ')'");
    }
    p->pos++;
    p->depth--;
    return 0;
}

/* and / or: one loop, kind says which separator and which sub-rule. */
static int parse_chain(struct parser *p, struct q__node **out, enum q__kind kind)
{
    struct q__node *first = NULL, *chain = NULL, *next = NULL;
    int sep = kind == Q_N_AND ? ';' : '|';
    int rc;

    *out = NULL;
    rc = kind == Q_N_AND ? parse_primary(p, &first) : parse_chain(p, &first, Q_N_AND);
    if (rc)
        goto fail;
    skip_ws(p);
    while (at(p, p->pos) == sep && p->pos < p->len) {
        p->pos++;
        rc = kind == Q_N_AND ? parse_primary(p, &next) : parse_chain(p, &next, Q_N_AND);
        if (rc)
            goto fail;
        if (chain == NULL) {
            chain = calloc(1, sizeof(*chain));
            if (chain == NULL) {
                rc = nomem(p);
                goto fail;
            }
            chain->kind = kind;
            rc = node_add(p, chain, first);
            first = NULL;
            if (rc)
                goto fail;
        }
        rc = node_add(p, chain, next);
        next = NULL;
        if (rc)
            goto fail;
        skip_ws(p);
    }
    *out = chain ? chain : first;
    return 0;
fail:
    node_free(first);
    node_free(chain);
    node_free(next);
    return rc;
}

static int parse_or(struct parser *p, struct q__node **out)
{
    return parse_chain(p, out, Q_N_OR);
}

int q_parse(const char *text, struct q_expr **out, struct err *e)
{
    struct parser p = {0};
    struct q_expr *q = NULL;
    int rc;

    if (out == NULL)
        return err_set(e, ERR_INTERNAL, "q: no output");
    *out = NULL;
    if (text == NULL)
        return err_set(e, ERR_INVALID_REQUEST, "q: empty expression");
    p.len = strnlen(text, Q_TEXT_MAX + 1);
    if (p.len > Q_TEXT_MAX)
        return err_set(e, ERR_INVALID_REQUEST, "q: expression longer than %d bytes", Q_TEXT_MAX);
    p.s = text;
    p.e = e;
    skip_ws(&p);
    if (p.pos >= p.len)
        return err_set(e, ERR_INVALID_REQUEST, "q: empty expression");
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return nomem(&p);
    p.q = q;
    if ((rc = parse_or(&p, &q->root)))
        goto fail;
    skip_ws(&p);
    if (p.pos < p.len) {
        rc = fail_at(&p, p.pos, "';', '|' or end of input");
        goto fail;
    }
    *out = q;
    return 0;
fail:
    q_free(q);
    return rc;
}

int q_expand(struct q_expr *q, q_expand_fn fn, void *ud, struct err *e)
{
    if (q == NULL || fn == NULL)
        return 0;
    for (size_t i = 0; i < q->n_terms; i++) {
        struct q__term *t = q->terms[i];
        for (size_t k = 0; k < t->n_segs; k++) {
            char *r = fn(ud, t->segs[k]);
            if (r == NULL)
                return err_set(e, ERR_NOMEM, "q: cannot expand attribute name '%.64s'",
                               t->segs[k]);
            free(t->segs[k]);
            t->segs[k] = r;
        }
    }
    return 0;
}

void q_foreach_attr(const struct q_expr *q, void (*fn)(void *ud, const char *attr), void *ud)
{
    if (q == NULL || fn == NULL)
        return;
    for (size_t i = 0; i < q->n_terms; i++) {
        const char *name = q->terms[i]->segs[0];
        size_t j;
        for (j = 0; j < i; j++)
            if (strcmp(q->terms[j]->segs[0], name) == 0)
                break;
        if (j == i)
            fn(ud, name);
    }
}
