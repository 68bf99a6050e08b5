/*
 * scan.c - questions about a stored entity document answered from its text,
 * without building a cJSON tree.
 *
 * A replace overwrites the stored document without reading it (the writer's
 * fast path: parsing ~2 KB of JSON per write was a large part of its cost).
 * For the history it only needs to know whether the new document drops an
 * instance the old one had; when it does, the writer parses the old text
 * and records the deletions. The scanner walks the text once: the members
 * of the top-level object, the attribute names under "attrs", and the
 * "datasetId" of each instance; every other value is skipped (strings with
 * their escapes, nested containers by depth).
 *
 * The text comes from the store, but a damaged row must not make it read
 * out of bounds: every step checks the end, and anything unexpected (a
 * name with an escape, bad syntax, nesting beyond a limit) answers "cannot
 * tell" (-1), after which the caller parses the text properly.
 */
#include "model/entity.h"

#include <string.h>

#define SCAN_MAX_DEPTH 64

struct cur {
    const char *p, *end;
};

static void ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(struct cur *c, char ch)
{
    ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string at c->p ('"' included); *s / *n its raw bytes, *esc whether it
 * has escapes. 0 or -1. */
static int str(struct cur *c, const char **s, size_t *n, int *esc)
{
    ws(c);
    if (c->p >= c->end || *c->p != '"')
        return -1;
    const char *b = ++c->p;
    *esc = 0;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\') {
            *esc = 1;
            if (++c->p >= c->end)
                return -1;
        }
        c->p++;
    }
    if (c->p >= c->end)
        return -1;
    *s = b;
    *n = (size_t)(c->p - b);
    c->p++;
    return 0;
}

/* Skip one value of any kind. 0 or -1. */
static int skip(struct cur *c)
{
    int depth = 0;
    ws(c);
    do {
        if (c->p >= c->end)
            return -1;
        char ch = *c->p;
        if (ch == '"') {
            const char *s;
            size_t n;
            int esc;
            if (str(c, &s, &n, &esc) != 0)
                return -1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > SCAN_MAX_DEPTH)
                return -1;
            c->p++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return -1;
            depth--;
            c->p++;
        } else if (ch == ',' || ch == ':' || ch == ' ' || ch == '\n' || ch == '\t' ||
                   ch == '\r') {
            if (depth == 0)
                return -1;
            c->p++;
        } else { /* number, true, false, null */
            const char *b = c->p;
            while (c->p < c->end && strchr(",:]} \t\r\n\"{[", *c->p) == NULL)
                c->p++;
            if (c->p == b)
                return -1;
        }
    } while (depth > 0);
    return 0;
}

static int same(const char *s, size_t n, const char *z)
{
    return strncmp(s, z, n) == 0 && z[n] == '\0';
}

/* Has the new attribute (an array of instances) one with this datasetId
 * (ds NULL: the default instance)? */
static int has_dataset(const cJSON *insts, const char *ds, size_t n)
{
    const cJSON *i;
    cJSON_ArrayForEach(i, insts)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(i, "datasetId");
        if (ds == NULL ? d == NULL : cJSON_IsString(d) && same(ds, n, d->valuestring))
            return 1;
    }
    return 0;
}

/* One stored attribute (an array of instances) against the new one (NULL:
 * gone). 1 when an instance is dropped, 0 when not, -1 cannot tell. */
static int attr_drops(struct cur *c, const cJSON *now)
{
    if (!eat(c, '['))
        return -1;
    if (eat(c, ']'))
        return 0;
    do {
        const char *ds = NULL;
        size_t ds_n = 0;
        if (!eat(c, '{'))
            return -1;
        if (!eat(c, '}')) {
            do {
                const char *k, *v;
                size_t kn, vn;
                int esc, vesc;
                if (str(c, &k, &kn, &esc) != 0 || esc || !eat(c, ':'))
                    return -1;
                if (same(k, kn, "datasetId")) {
                    if (str(c, &v, &vn, &vesc) != 0 || vesc)
                        return -1;
                    ds = v;
                    ds_n = vn;
                } else if (skip(c) != 0) {
                    return -1;
                }
            } while (eat(c, ','));
            if (!eat(c, '}'))
                return -1;
        }
        if (now == NULL || !has_dataset(now, ds, ds_n))
            return 1;
    } while (eat(c, ','));
    return eat(c, ']') ? 0 : -1;
}

int ent_text_drops(const char *text, size_t len, const cJSON *attrs)
{
    struct cur c = {text, text + len};
    char name[ENT_MAX_IRI + 1];

    if (text == NULL || !eat(&c, '{'))
        return -1;
    if (eat(&c, '}'))
        return 0;
    do {
        const char *k;
        size_t kn;
        int esc, rc;
        if (str(&c, &k, &kn, &esc) != 0 || esc || !eat(&c, ':'))
            return -1;
        if (!same(k, kn, "attrs")) {
            if (skip(&c) != 0)
                return -1;
            continue;
        }
        if (!eat(&c, '{'))
            return -1;
        if (eat(&c, '}'))
            continue;
        do {
            if (str(&c, &k, &kn, &esc) != 0 || esc || kn > ENT_MAX_IRI || !eat(&c, ':'))
                return -1;
            memcpy(name, k, kn);
            name[kn] = '\0';
            if ((rc = attr_drops(&c, cJSON_GetObjectItemCaseSensitive(attrs, name))) != 0)
                return rc;
        } while (eat(&c, ','));
        if (!eat(&c, '}'))
            return -1;
    } while (eat(&c, ','));
    if (!eat(&c, '}'))
        return -1;
    ws(&c);
    return c.p == c.end ? 0 : -1;
}
