/*
 * ctx.c - JSON-LD 1.1 context processing (the subset NGSI-LD needs),
 * term expansion and IRI compaction.
 *
 * Processing follows the JSON-LD 1.1 "Context Processing" and "Create Term
 * Definition" algorithms for: arrays (in order), null (reset), remote URL
 * strings (through the loader, nested up to LD_MAX_DEPTH, a URL already on
 * the stack is a cycle), @version (must be 1.1), @vocab (absolute or
 * compact IRI, null resets), simple and expanded term definitions (@id,
 * @reverse, @type, @container, @prefix; a scoped @context is checked for
 * shape and ignored), compact IRIs and term aliases resolved through the
 * same local context in any order (cycles rejected). @base, @language,
 * @direction, @protected, @propagate and keyword-like keys are accepted and
 * ignored; @import is rejected. Deliberate leniency: a later context may
 * redefine a term an earlier one marked @protected (NGSI-LD brokers do not
 * enforce it, and rejecting would break real-world context chains).
 *
 * The core context is applied last (GS CIM 009, 5.5.7): a term the core
 * defines is never stored in a caller's context and every lookup consults
 * the core first, so core terms cannot be overridden. @vocab is different:
 * it is a default, not a term, so a caller's @vocab replaces the core's
 * default-context vocabulary.
 *
 * A finished context is immutable; retain/release use an atomic count, so
 * any number of threads may share one. The core context is immortal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "ld/ld_int.h"
#include "util/err.h"

#define STATE_DEFINING ((void *)1)
#define STATE_DONE ((void *)2)

struct builder {
    const struct ld_loader *loader;
    const struct ld_ctx *core; /* NULL while building the core itself */
    struct hmap *terms;        /* name -> struct ld_term *, owned */
    char *vocab;               /* owned; NULL = default */
    const char *url_stack[LD_MAX_DEPTH];
    int depth;
    int n_loads;
    struct err *e;
};

static int process_value(struct builder *b, const cJSON *v, const char *base, int in_array);

/* ---- small helpers ---------------------------------------------------- */

static void term_free(void *p)
{
    struct ld_term *t = p;

    if (t == NULL)
        return;
    free(t->name);
    free(t->iri);
    free(t->type);
    free(t->container);
    free(t);
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static int is_gen_delim(char c)
{
    return c != '\0' && strchr(":/?#[]@", c) != NULL;
}

/* Does s[0..len) form a URI scheme (ALPHA *( ALPHA / DIGIT / + - . ))? */
static int is_scheme(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int is_absolute_iri(const char *s)
{
    const char *colon = strchr(s, ':');

    return colon != NULL && is_scheme(s, (size_t)(colon - s));
}

static int is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static const char *active_vocab(const struct builder *b)
{
    if (b->vocab != NULL)
        return b->vocab;
    if (b->core != NULL && b->core->vocab != NULL)
        return b->core->vocab;
    return LD_DEFAULT_VOCAB;
}

/* A term as the context under construction sees it: core first. */
static const struct ld_term *lookup_term(const struct builder *b, const char *name)
{
    const struct ld_term *t = NULL;

    if (b->core != NULL)
        t = hmap_get(b->core->terms, name);
    if (t == NULL)
        t = hmap_get(b->terms, name);
    return t;
}

/* ---- term definitions ------------------------------------------------- */

static int define_term(struct builder *b, const cJSON *local, struct hmap *states,
                       const char *term);

/* JSON-LD IRI expansion of value while a local context is being processed.
 * vocab: relative values are resolved against @vocab. Sets *out (malloc'd)
 * or NULL when the value is relative and vocab is 0. */
static int expand_iri(struct builder *b, const cJSON *local, struct hmap *states,
                      const char *value, int vocab, char **out)
{
    const struct ld_term *t;
    const char *colon;
    int rc;

    *out = NULL;
    if (value[0] == '@') { /* keyword (or keyword-like): kept as is */
        *out = strdup(value);
        goto done;
    }
    if (local != NULL && cJSON_GetObjectItemCaseSensitive(local, value) != NULL &&
        (rc = define_term(b, local, states, value)) != 0)
        return rc;
    if (vocab && (t = lookup_term(b, value)) != NULL) {
        *out = strdup(t->iri);
        goto done;
    }
    colon = strchr(value, ':');
    if (colon != NULL) {
        size_t plen = (size_t)(colon - value);
        char prefix[256];

        if ((plen == 1 && value[0] == '_') || strncmp(colon + 1, "//", 2) == 0) {
            *out = strdup(value); /* blank node or absolute IRI */
            goto done;
        }
        if (plen < sizeof(prefix)) {
            memcpy(prefix, value, plen);
            prefix[plen] = '\0';
            if (local != NULL && cJSON_GetObjectItemCaseSensitive(local, prefix) != NULL &&
                (rc = define_term(b, local, states, prefix)) != 0)
                return rc;
            t = lookup_term(b, prefix);
            if (t != NULL && t->prefix) {
                *out = concat(t->iri, colon + 1);
                goto done;
            }
        }
        if (is_scheme(value, plen)) {
            *out = strdup(value);
            goto done;
        }
    }
    if (!vocab)
        return 0;
    *out = concat(active_vocab(b), value);
done:
    if (*out == NULL)
        return err_set(b->e, ERR_NOMEM, "out of memory");
    return 0;
}

static int check_container(struct builder *b, const char *term, const cJSON *v, char **out)
{
    static const char *const allowed[] = {"@list", "@set", "@index", "@language",
                                          "@id", "@type", "@graph", NULL};
    const cJSON *item;
    const cJSON *first = NULL;

    if (cJSON_IsString(v)) {
        first = v;
    } else if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsString(item))
                goto bad;
            if (first == NULL)
                first = item;
        }
    } else if (cJSON_IsNull(v)) {
        return 0;
    } else {
        goto bad;
    }
    for (item = cJSON_IsArray(v) ? v->child : v; item != NULL;
         item = cJSON_IsArray(v) ? item->next : NULL) {
        int ok = 0;

        for (int i = 0; allowed[i] != NULL; i++)
            ok |= strcmp(item->valuestring, allowed[i]) == 0;
        if (!ok)
            goto bad;
    }
    if (first != NULL && (*out = strdup(first->valuestring)) == NULL)
        return err_set(b->e, ERR_NOMEM, "out of memory");
    return 0;
bad:
    return err_set(b->e, ERR_BAD_DATA, "invalid @container in the definition of term '%s'", term);
}

static void remove_term(struct builder *b, const char *term)
{
    void *old = NULL;

    if (hmap_del(b->terms, term, &old))
        term_free(old);
}

/* Create the definition of term from local[term] (JSON-LD 1.1 "Create Term
 * Definition", the parts listed at the top of this file). */
static int define_term(struct builder *b, const cJSON *local, struct hmap *states,
                       const char *term)
{
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(local, term);
    void *state = hmap_get(states, term);
    struct ld_term *t = NULL;
    const char *id = NULL;
    int prefix_set = -1, rc;
    void *old;

    if (state == STATE_DONE)
        return 0;
    if (state == STATE_DEFINING)
        return err_set(b->e, ERR_BAD_DATA, "cyclic IRI mapping for term '%s'", term);
    if (term[0] == '\0')
        return err_set(b->e, ERR_BAD_DATA, "invalid term definition: empty term");
    if ((rc = hmap_put(states, term, STATE_DEFINING, NULL)) < 0)
        return err_set(b->e, rc, "out of memory");
    if (cJSON_IsNull(val) || (cJSON_IsObject(val) && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(val, "@id")))) {
        /* null decouples the term: it falls back to @vocab again */
        remove_term(b, term);
        goto done;
    }
    if (!cJSON_IsString(val) && !cJSON_IsObject(val))
        return err_set(b->e, ERR_BAD_DATA,
                       "invalid term definition for '%s': expected a string, an object or null",
                       term);
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->name = strdup(term)) == NULL)
        goto nomem;
    if (cJSON_IsString(val)) {
        id = val->valuestring;
    } else {
        const cJSON *m;

        cJSON_ArrayForEach(m, val) {
            const char *k = m->string;

            if (strcmp(k, "@id") == 0 || strcmp(k, "@reverse") == 0) {
                if (!cJSON_IsString(m)) {
                    rc = err_set(b->e, ERR_BAD_DATA, "invalid %s in the definition of term '%s'",
                                 k, term);
                    goto fail;
                }
                id = m->valuestring;
                t->reverse = k[1] == 'r';
            } else if (strcmp(k, "@type") == 0) {
                if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
                    rc = err_set(b->e, ERR_BAD_DATA, "invalid @type in the definition of term '%s'",
                                 term);
                    goto fail;
                }
                if ((rc = expand_iri(b, local, states, m->valuestring, 1, &t->type)) != 0)
                    goto fail;
            } else if (strcmp(k, "@container") == 0) {
                if ((rc = check_container(b, term, m, &t->container)) != 0)
                    goto fail;
            } else if (strcmp(k, "@context") == 0) {
                /* scoped contexts are not applied; only their shape is checked */
                if (!cJSON_IsNull(m) && !cJSON_IsString(m) && !cJSON_IsObject(m) && !cJSON_IsArray(m)) {
                    rc = err_set(b->e, ERR_BAD_DATA, "invalid scoped @context in term '%s'", term);
                    goto fail;
                }
            } else if (strcmp(k, "@prefix") == 0 || strcmp(k, "@protected") == 0) {
                if (!cJSON_IsBool(m)) {
                    rc = err_set(b->e, ERR_BAD_DATA, "%s of term '%s' must be a boolean", k, term);
                    goto fail;
                }
                if (strcmp(k, "@prefix") == 0)
                    prefix_set = cJSON_IsTrue(m);
            }
            /* @language, @direction, @index, @nest and unknown members: ignored */
        }
    }
    if (id != NULL && strcmp(id, term) != 0) {
        if (strcmp(id, "@context") == 0) {
            rc = err_set(b->e, ERR_BAD_DATA, "invalid keyword alias: '%s' -> @context", term);
            goto fail;
        }
        rc = expand_iri(b, local, states, id, 1, &t->iri);
    } else if (strchr(term, ':') != NULL) {
        rc = expand_iri(b, local, states, term, 0, &t->iri);
        if (rc == 0 && t->iri == NULL)
            rc = err_set(b->e, ERR_BAD_DATA, "invalid IRI mapping for term '%s'", term);
    } else {
        t->iri = concat(active_vocab(b), term);
        rc = t->iri == NULL ? err_set(b->e, ERR_NOMEM, "out of memory") : 0;
    }
    if (rc != 0)
        goto fail;
    if (prefix_set >= 0)
        t->prefix = prefix_set && t->iri[0] != '@';
    else
        t->prefix = t->iri[0] != '@' && strchr(term, ':') == NULL && strchr(term, '/') == NULL &&
                    is_gen_delim(t->iri[strlen(t->iri) - 1]);
    if (b->core != NULL && hmap_get(b->core->terms, term) != NULL) {
        term_free(t); /* the core context wins (5.5.7) */
        goto done;
    }
    if (hmap_get(b->terms, term) == NULL && hmap_count(b->terms) >= LD_MAX_TERMS) {
        rc = err_set(b->e, ERR_BAD_DATA, "@context defines more than %d terms", LD_MAX_TERMS);
        goto fail;
    }
    if ((rc = hmap_put(b->terms, term, t, &old)) < 0)
        goto nomem;
    term_free(old);
done:
    if (hmap_put(states, term, STATE_DONE, NULL) < 0)
        return err_set(b->e, ERR_NOMEM, "out of memory");
    return 0;
nomem:
    rc = err_set(b->e, ERR_NOMEM, "out of memory");
fail:
    term_free(t);
    return rc;
}

/* ---- context processing ----------------------------------------------- */

static int process_vocab(struct builder *b, const cJSON *v)
{
    char *iri = NULL;
    int rc;

    if (cJSON_IsNull(v)) {
        free(b->vocab);
        b->vocab = NULL;
        return 0;
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return err_set(b->e, ERR_BAD_DATA, "invalid @vocab: expected an absolute IRI or null");
    if ((rc = expand_iri(b, NULL, NULL, v->valuestring, 0, &iri)) != 0)
        return rc;
    if (iri == NULL || !is_absolute_iri(iri)) {
        free(iri);
        return err_set(b->e, ERR_BAD_DATA, "invalid @vocab '%s': not an absolute IRI",
                       v->valuestring);
    }
    free(b->vocab);
    b->vocab = iri;
    return 0;
}

/* Keywords that may not appear as keys of a local context (JSON-LD 1.1
 * "keyword redefinition"; @type may, to set @container @set). A whole
 * document {"@context": ...} passed as a context lands here. */
static int is_redefined_keyword(const char *k)
{
    static const char *const kw[] = {"@context", "@id", "@graph", "@list", "@set", "@reverse",
                                     "@index", "@value", "@nest", "@none", "@included",
                                     "@json", NULL};

    for (int i = 0; kw[i] != NULL; i++)
        if (strcmp(k, kw[i]) == 0)
            return 1;
    return 0;
}

static int process_object(struct builder *b, const cJSON *obj)
{
    const cJSON *m;
    struct hmap *states = NULL;
    int rc = 0;

    m = cJSON_GetObjectItemCaseSensitive(obj, "@version");
    if (m != NULL && !(cJSON_IsNumber(m) && m->valuedouble == 1.1))
        return err_set(b->e, ERR_BAD_DATA, "invalid @version value: only 1.1 is supported");
    if (cJSON_GetObjectItemCaseSensitive(obj, "@import") != NULL)
        return err_set(b->e, ERR_BAD_DATA, "@import in @context is not supported");
    m = cJSON_GetObjectItemCaseSensitive(obj, "@protected");
    if (m != NULL && !cJSON_IsBool(m))
        return err_set(b->e, ERR_BAD_DATA, "invalid @protected value: expected a boolean");
    m = cJSON_GetObjectItemCaseSensitive(obj, "@propagate");
    if (m != NULL && !cJSON_IsBool(m))
        return err_set(b->e, ERR_BAD_DATA, "invalid @propagate value: expected a boolean");
    m = cJSON_GetObjectItemCaseSensitive(obj, "@vocab");
    if (m != NULL && (rc = process_vocab(b, m)) != 0)
        return rc;
    if ((states = hmap_new(16)) == NULL)
        return err_set(b->e, ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(m, obj) {
        if (m->string == NULL)
            continue;
        if (is_redefined_keyword(m->string)) {
            rc = err_set(b->e, ERR_BAD_DATA, "invalid @context: keyword redefinition of %s",
                         m->string);
            break;
        }
        if (m->string[0] == '@')
            continue; /* handled above, or keyword-like and ignored */
        if ((rc = define_term(b, obj, states, m->string)) != 0)
            break;
    }
    hmap_free(states, NULL);
    return rc;
}

/* Resolve a context reference against the URL of the document holding it. */
static char *resolve_url(const char *base, const char *ref)
{
    const char *p;
    size_t keep;
    char *s;

    if (is_http_url(ref))
        return strdup(ref);
    if (base == NULL || ref[0] == '\0')
        return NULL;
    p = strstr(base, "://");
    if (p == NULL)
        return NULL;
    if (strncmp(ref, "//", 2) == 0) {
        keep = (size_t)(p - base) + 1; /* "http:" */
    } else if (ref[0] == '/') {
        const char *slash = strchr(p + 3, '/');

        keep = slash != NULL ? (size_t)(slash - base) : strlen(base);
    } else {
        const char *slash = strrchr(p + 3, '/');

        keep = slash != NULL ? (size_t)(slash - base) + 1 : strlen(base);
        if (slash == NULL) {
            s = malloc(keep + strlen(ref) + 2);
            if (s != NULL)
                sprintf(s, "%.*s/%s", (int)keep, base, ref);
            return s;
        }
    }
    s = malloc(keep + strlen(ref) + 1);
    if (s != NULL) {
        memcpy(s, base, keep);
        strcpy(s + keep, ref);
    }
    return s;
}

static int process_remote(struct builder *b, const char *ref, const char *base)
{
    char *url = NULL, *text = NULL;
    cJSON *doc = NULL;
    const cJSON *context;
    int rc = 0;

    if (strlen(ref) > LD_MAX_URL_LEN)
        return err_set(b->e, ERR_BAD_DATA, "@context URL longer than %d bytes", LD_MAX_URL_LEN);
    url = resolve_url(base, ref);
    if (url == NULL) {
        rc = is_http_url(ref) || (base != NULL && ref[0] != '\0')
                 ? err_set(b->e, ERR_NOMEM, "out of memory")
                 : err_set(b->e, ERR_BAD_DATA, "invalid @context URL '%s': not an http(s) URL", ref);
        goto out;
    }
    if (ld_is_core_url(url))
        goto out; /* the core context is always in effect, applied last */
    if (!is_http_url(url)) {
        rc = err_set(b->e, ERR_BAD_DATA, "invalid @context URL '%s': not an http(s) URL", url);
        goto out;
    }
    for (int i = 0; i < b->depth; i++) {
        if (strcmp(b->url_stack[i], url) == 0) {
            rc = err_set(b->e, ERR_BAD_DATA, "recursive @context inclusion of %s", url);
            goto out;
        }
    }
    if (b->depth >= LD_MAX_DEPTH) {
        rc = err_set(b->e, ERR_BAD_DATA, "remote @context nesting deeper than %d", LD_MAX_DEPTH);
        goto out;
    }
    if (++b->n_loads > LD_MAX_LOADS) {
        rc = err_set(b->e, ERR_BAD_DATA, "@context refers to more than %d remote documents",
                     LD_MAX_LOADS);
        goto out;
    }
    if (b->loader == NULL || b->loader->load == NULL) {
        rc = err_set(b->e, ERR_LD_CONTEXT, "cannot load remote @context %s", url);
        goto out;
    }
    rc = b->loader->load(b->loader->ud, url, &text, b->e);
    if (rc != 0 || text == NULL) {
        rc = err_set(b->e, rc != 0 ? rc : ERR_LD_CONTEXT, "cannot load remote @context %s", url);
        goto out;
    }
    doc = cJSON_Parse(text);
    if (doc == NULL) {
        rc = err_set(b->e, ERR_LD_CONTEXT, "remote @context %s is not valid JSON", url);
        goto out;
    }
    context = cJSON_GetObjectItemCaseSensitive(doc, "@context");
    if (!cJSON_IsObject(doc) || context == NULL) {
        rc = err_set(b->e, ERR_LD_CONTEXT, "remote document %s has no @context member", url);
        goto out;
    }
    b->url_stack[b->depth++] = url;
    rc = process_value(b, context, url, 0);
    b->depth--;
out:
    cJSON_Delete(doc);
    free(text);
    free(url);
    return rc;
}

static int process_value(struct builder *b, const cJSON *v, const char *base, int in_array)
{
    const cJSON *item;
    int n = 0, rc;

    if (cJSON_IsArray(v)) {
        if (in_array)
            return err_set(b->e, ERR_BAD_DATA, "invalid @context: nested array");
        cJSON_ArrayForEach(item, v) {
            if (++n > LD_MAX_ARRAY)
                return err_set(b->e, ERR_BAD_DATA, "@context array longer than %d", LD_MAX_ARRAY);
            if ((rc = process_value(b, item, base, 1)) != 0)
                return rc;
        }
        return 0;
    }
    if (cJSON_IsNull(v)) {
        struct hmap *fresh = hmap_new(0);

        if (fresh == NULL)
            return err_set(b->e, ERR_NOMEM, "out of memory");
        hmap_free(b->terms, term_free);
        b->terms = fresh;
        free(b->vocab);
        b->vocab = NULL;
        return 0;
    }
    if (cJSON_IsString(v))
        return process_remote(b, v->valuestring, base);
    if (cJSON_IsObject(v))
        return process_object(b, v);
    return err_set(b->e, ERR_BAD_DATA,
                   "invalid @context: expected a URL, an object, null or an array of them");
}

/* ---- finishing -------------------------------------------------------- */

/* Is a better than b as the compaction term of one IRI? */
static int better_term(const struct ld_term *a, const struct ld_term *b)
{
    size_t la = strlen(a->name), lb = strlen(b->name);

    return la != lb ? la < lb : strcmp(a->name, b->name) < 0;
}

static int finish(struct builder *b, struct ld_ctx **out)
{
    struct ld_ctx *ctx = calloc(1, sizeof(*ctx));
    size_t pos = 0, n = hmap_count(b->terms);
    void *val;

    if (ctx == NULL)
        goto nomem;
    atomic_init(&ctx->refs, 1);
    ctx->terms = b->terms;
    ctx->vocab = b->vocab;
    b->terms = NULL;
    b->vocab = NULL;
    ctx->reverse = hmap_new(n);
    ctx->prefixes = calloc(n + 1, sizeof(*ctx->prefixes));
    if (ctx->reverse == NULL || ctx->prefixes == NULL)
        goto nomem;
    while (hmap_next(ctx->terms, &pos, NULL, &val)) {
        struct ld_term *t = val, *cur;

        if (t->reverse)
            continue;
        cur = hmap_get(ctx->reverse, t->iri);
        if ((cur == NULL || better_term(t, cur)) && hmap_put(ctx->reverse, t->iri, t, NULL) < 0)
            goto nomem;
        if (t->prefix)
            ctx->prefixes[ctx->n_prefixes++] = t;
    }
    *out = ctx;
    return 0;
nomem:
    ld__free(ctx);
    return err_set(b->e, ERR_NOMEM, "out of memory");
}

void ld__free(struct ld_ctx *ctx)
{
    if (ctx == NULL)
        return;
    hmap_free(ctx->reverse, NULL);
    hmap_free(ctx->terms, term_free);
    free(ctx->prefixes);
    free(ctx->vocab);
    free(ctx);
}

int ld__build(const cJSON *context, const struct ld_loader *loader, int is_core,
              struct ld_ctx **out, struct err *e)
{
    struct builder b = {.loader = loader, .e = e};
    int rc;

    *out = NULL;
    if (!is_core) {
        b.core = ld_core();
        if (context == NULL || cJSON_IsNull(context)) {
            *out = (struct ld_ctx *)b.core;
            return 0;
        }
    }
    b.terms = hmap_new(is_core ? 256 : 16);
    if (b.terms == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = process_value(&b, context, NULL, 0);
    if (rc == 0 && !is_core && hmap_count(b.terms) == 0 && b.vocab == NULL)
        *out = (struct ld_ctx *)b.core; /* nothing of its own: share the core */
    else if (rc == 0)
        rc = finish(&b, out);
    hmap_free(b.terms, term_free);
    free(b.vocab);
    return rc;
}

/* ---- public API ------------------------------------------------------- */

int ld_ctx_build(const cJSON *context, const struct ld_loader *loader, struct ld_ctx **out,
                 struct err *e)
{
    return ld__build(context, loader, 0, out, e);
}

void ld_ctx_retain(const struct ld_ctx *ctx)
{
    struct ld_ctx *c = (struct ld_ctx *)(uintptr_t)ctx;

    if (c != NULL && !c->immortal)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void ld_ctx_release(const struct ld_ctx *ctx)
{
    struct ld_ctx *c = (struct ld_ctx *)(uintptr_t)ctx;

    if (c == NULL || c->immortal)
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        ld__free(c);
}

/* Term lookup in a finished context: core first, then the caller's terms. */
static const struct ld_term *ctx_term(const struct ld_ctx *ctx, const struct ld_ctx *core,
                                      const char *name)
{
    const struct ld_term *t = hmap_get(core->terms, name);

    if (t == NULL && ctx != core)
        t = hmap_get(ctx->terms, name);
    return t;
}

char *ld_expand(const struct ld_ctx *ctx, const char *term)
{
    const struct ld_ctx *core = ld_core();
    const struct ld_term *t;
    const char *colon;

    if (term == NULL)
        return NULL;
    if (ctx == NULL)
        ctx = core;
    if (term[0] == '@')
        return strdup(term);
    t = ctx_term(ctx, core, term);
    if (t != NULL)
        return strdup(t->iri);
    colon = strchr(term, ':');
    if (colon != NULL) {
        size_t plen = (size_t)(colon - term);
        char buf[128];
        char *prefix = plen < sizeof(buf) ? buf : malloc(plen + 1);

        if (prefix == NULL)
            return NULL;
        memcpy(prefix, term, plen);
        prefix[plen] = '\0';
        t = ctx_term(ctx, core, prefix);
        if (prefix != buf)
            free(prefix);
        if (t != NULL && t->prefix && strncmp(colon + 1, "//", 2) != 0)
            return concat(t->iri, colon + 1);
        if (is_scheme(term, plen) || (plen == 1 && term[0] == '_'))
            return strdup(term);
    }
    return concat(ctx->vocab != NULL ? ctx->vocab : core->vocab, term);
}

/* Candidate compact IRI "name:suffix" for iri through prefix term p, or NULL. */
static char *try_prefix(const struct ld_ctx *ctx, const struct ld_ctx *core,
                        const struct ld_term *p, const char *iri, const char *best, int *oom)
{
    size_t plen = strlen(p->iri), nlen = strlen(p->name), slen;
    const char *suffix = iri + plen;
    char *cand;

    if (strncmp(iri, p->iri, plen) != 0 || *suffix == '\0' || strncmp(suffix, "//", 2) == 0)
        return NULL;
    slen = strlen(suffix);
    if (best != NULL) {
        size_t blen = strlen(best);

        if (nlen + 1 + slen > blen)
            return NULL;
    }
    cand = malloc(nlen + slen + 2);
    if (cand == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(cand, p->name, nlen);
    cand[nlen] = ':';
    memcpy(cand + nlen + 1, suffix, slen + 1);
    /* a compact IRI must not read as a term, nor lose to an equal-length one */
    if (ctx_term(ctx, core, cand) != NULL ||
        (best != NULL && strlen(best) == strlen(cand) && strcmp(cand, best) >= 0)) {
        free(cand);
        return NULL;
    }
    return cand;
}

char *ld_compact(const struct ld_ctx *ctx, const char *iri)
{
    const struct ld_ctx *core = ld_core();
    const struct ld_term *t = NULL;
    const char *vocab;
    size_t vlen;
    char *best = NULL;
    int oom = 0;

    if (iri == NULL)
        return NULL;
    if (ctx == NULL)
        ctx = core;
    if (ctx != core)
        t = hmap_get(ctx->reverse, iri);
    if (t == NULL)
        t = hmap_get(core->reverse, iri);
    if (t != NULL)
        return strdup(t->name);
    /* JSON-LD IRI compaction tries @vocab before compact IRIs */
    vocab = ctx->vocab != NULL ? ctx->vocab : core->vocab;
    vlen = strlen(vocab);
    if (strncmp(iri, vocab, vlen) == 0 && iri[vlen] != '\0' && strchr(iri + vlen, ':') == NULL &&
        ctx_term(ctx, core, iri + vlen) == NULL)
        return strdup(iri + vlen);
    for (int pass = 0; pass < 2; pass++) {
        const struct ld_ctx *c = pass == 0 ? ctx : core;

        if (pass == 1 && ctx == core)
            break;
        for (size_t i = 0; i < c->n_prefixes; i++) {
            char *cand = try_prefix(ctx, core, c->prefixes[i], iri, best, &oom);

            if (oom) {
                free(best);
                return NULL;
            }
            if (cand != NULL) {
                free(best);
                best = cand;
            }
        }
    }
    return best != NULL ? best : strdup(iri);
}

const char *ld_term_type(const struct ld_ctx *ctx, const char *term)
{
    const struct ld_ctx *core = ld_core();
    const struct ld_term *t;

    if (term == NULL)
        return NULL;
    t = ctx_term(ctx != NULL ? ctx : core, core, term);
    return t != NULL ? t->type : NULL;
}
