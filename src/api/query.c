/*
 * query.c - Query Entities: GET /entities (GS CIM 009 5.7.2) and POST
 * /entityOperations/query (5.7.2 via the Query data type, 5.2.23). Both
 * build one struct store_query; the store picks the index (ids, geo box,
 * type) and filters the rest. Pagination is by limit/offset in creation
 * order, with NGSILD-Results-Count on count=true and Link rel=next/prev.
 */
#include "api/api.h"

#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "query/geo.h"
#include "query/q.h"
#include "query/scopeq.h"
#include "query/typeq.h"
#include "util/buf.h"
#include "util/re.h"
#include "util/cfg.h"

/* Larger offsets would overflow offset + limit; nobody pages that far. */
#define API_MAX_OFFSET 1000000000L

struct qspec {
    struct store_query sq;
    struct typeq *types;
    struct q_expr *q;
    struct scopeq *scopeq;
    struct geo_rel rel;
    struct geo_shape *geometry;
    char *geoproperty;
    regex_t id_re;
    int have_re;
    char **ids;
    size_t n_ids;
    struct api_view view;
    cJSON *results;
    /* POST /entityOperations/query selectors */
    struct store_selector *sel;
    struct typeq **sel_types;
    regex_t *sel_re;
    int *sel_have_re;
    size_t n_sel;
};

static void qspec_free(struct qspec *s)
{
    typeq_free(s->types);
    q_free(s->q);
    scopeq_free(s->scopeq);
    geo_free(s->geometry);
    free(s->geoproperty);
    if (s->have_re)
        regfree(&s->id_re);
    for (size_t i = 0; i < s->n_ids; i++)
        free(s->ids[i]);
    free(s->ids);
    api_view_free(&s->view);
    cJSON_Delete(s->results);
    for (size_t i = 0; i < s->n_sel; i++) {
        typeq_free(s->sel_types[i]);
        if (s->sel_have_re[i])
            regfree(&s->sel_re[i]);
        free((char *)s->sel[i].id);
    }
    free(s->sel);
    free(s->sel_types);
    free(s->sel_re);
    free(s->sel_have_re);
}

static int set_types(struct req *r, struct qspec *s, const char *text)
{
    int rc = typeq_parse(text, &s->types, &r->err);
    if (rc)
        return rc == ERR_INVALID_REQUEST ? (r->err.code = ERR_BAD_DATA, rc) : rc;
    if (typeq_expand(s->types, api_expand_cb, r) != 0)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    s->sq.types = s->types;
    return 0;
}

static int add_id(struct req *r, struct qspec *s, const char *id, size_t len)
{
    char **p;
    char *copy = strndup(id, len);
    if (copy == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    if (!api_is_uri(copy)) {
        err_set(&r->err, ERR_BAD_DATA, "id '%.200s' is not a URI", copy);
        free(copy);
        return ERR_BAD_DATA;
    }
    if ((p = realloc(s->ids, (s->n_ids + 1) * sizeof(*p))) == NULL) {
        free(copy);
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    }
    s->ids = p;
    s->ids[s->n_ids++] = copy;
    s->sq.ids = (const char *const *)s->ids;
    s->sq.n_ids = s->n_ids;
    return 0;
}

static int set_id_pattern(struct req *r, struct qspec *s, const char *pattern)
{
    char why[96];
    if (re_compile(&s->id_re, pattern, 0, why, sizeof(why)) != 0)
        return err_set(&r->err, ERR_BAD_DATA, "idPattern '%.100s' %s", pattern, why);
    s->have_re = 1;
    s->sq.id_pattern = &s->id_re;
    return 0;
}

static int set_scopeq(struct req *r, struct qspec *s, const char *text)
{
    if (scopeq_parse(text, &s->scopeq, &r->err) != 0) {
        r->err.code = ERR_BAD_DATA;
        return ERR_BAD_DATA;
    }
    s->sq.scopeq = s->scopeq;
    return 0;
}

static int set_q(struct req *r, struct qspec *s, const char *text)
{
    int rc = q_parse(text, &s->q, &r->err);
    if (rc) {
        r->err.code = ERR_BAD_DATA;
        return ERR_BAD_DATA;
    }
    if ((rc = q_expand(s->q, api_expand_cb, r, &r->err)) != 0)
        return rc;
    s->sq.q = s->q;
    return 0;
}

static int set_geo(struct req *r, struct qspec *s, const char *georel, const char *geometry,
                   const char *coords, const char *geoproperty)
{
    if (!georel && !geometry && !coords)
        return 0;
    if (!georel || !geometry || !coords)
        return err_set(&r->err, ERR_BAD_DATA,
                       "a geo-query needs georel, geometry and coordinates together");
    if (geo_rel_parse(georel, &s->rel, &r->err) != 0 ||
        geo_parse_query(geometry, coords, &s->geometry, &r->err) != 0) {
        r->err.code = ERR_BAD_DATA;
        return ERR_BAD_DATA;
    }
    if ((s->geoproperty = api_expand(r, geoproperty ? geoproperty : "location")) == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    s->sq.georel = &s->rel;
    s->sq.geometry = s->geometry;
    s->sq.geoproperty = s->geoproperty;
    return 0;
}

static int set_page(struct req *r, struct qspec *s)
{
    struct app *app = api_app(r);
    const char *limit = req_query(r, "limit"), *offset = req_query(r, "offset");
    char *end;

    s->sq.limit = app->cfg->page_limit_default;
    s->sq.offset = 0;
    if (limit) {
        long v = strtol(limit, &end, 10);
        if (*limit == '\0' || *end || v < 0)
            return err_set(&r->err, ERR_BAD_DATA, "limit must be a non-negative integer");
        if (v > app->cfg->page_limit_max)
            return err_set(&r->err, ERR_TOO_MANY, "limit %ld is above the maximum %d", v,
                           app->cfg->page_limit_max);
        if (v == 0 && !s->view.want_count)
            return err_set(&r->err, ERR_BAD_DATA, "limit=0 is only allowed with count=true");
        s->sq.limit = v;
    }
    if (offset) {
        long v = strtol(offset, &end, 10);
        if (*offset == '\0' || *end || v < 0 || v > API_MAX_OFFSET)
            return err_set(&r->err, ERR_BAD_DATA, "offset must be an integer in [0, %ld]",
                           (long)API_MAX_OFFSET);
        s->sq.offset = v;
    }
    s->sq.want_count = s->view.want_count;
    return 0;
}

static int collect(void *ud, const cJSON *doc)
{
    void **args = ud;
    struct req *r = args[0];
    struct qspec *s = args[1];
    cJSON *out = api_render(r, &s->view, doc);
    if (out == NULL)
        return 1;
    cJSON_AddItemToArray(s->results, out);
    return 0;
}

/* The request's query string without offset and limit (raw, as received). */
static void keep_arg(void *ud, const char *key, const char *raw)
{
    struct buf *b = ud;
    if (!strcmp(key, "offset") || !strcmp(key, "limit"))
        return;
    buf_printf(b, "%s%s", b->len ? "&" : "", key);
    if (raw)
        buf_printf(b, "=%s", raw);
}

/* Link rel=prev / rel=next (GS CIM 009 5.5.9): the same query, another page. */
static void page_links(struct req *r, const struct qspec *s, long n, long count)
{
    struct buf args, link;

    if (r->method != HTTP_GET) /* POST /entityOperations/query: the body is the query */
        return;
    buf_init(&args, 8192);
    buf_init(&link, 9000);
    req_query_each(r, keep_arg, &args);
    if (s->sq.offset > 0) {
        long prev = s->sq.offset - s->sq.limit;
        buf_reset(&link);
        if (buf_printf(&link, "<%s?%s%soffset=%ld&limit=%ld>; rel=\"prev\"", r->path,
                       args.len ? args.data : "", args.len ? "&" : "", prev < 0 ? 0 : prev,
                       s->sq.limit) == 0)
            req_add_header(r, "Link", link.data);
    }
    if (s->sq.limit > 0 && n == s->sq.limit && count > s->sq.offset + n) {
        buf_reset(&link);
        if (buf_printf(&link, "<%s?%s%soffset=%ld&limit=%ld>; rel=\"next\"", r->path,
                       args.len ? args.data : "", args.len ? "&" : "", s->sq.offset + n,
                       s->sq.limit) == 0)
            req_add_header(r, "Link", link.data);
    }
    buf_free(&args);
    buf_free(&link);
}

static int run(struct req *r, struct qspec *s)
{
    struct app *app = api_app(r);
    void *args[2] = {r, s};
    long count = 0;

    s->sq.tenant = r->tenant;
    s->sq.attrs = (const char *const *)s->view.attrs;
    s->sq.n_attrs = s->view.n_attrs;
    if ((s->results = cJSON_CreateArray()) == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    if (store_query(app->store, &s->sq, collect, args, &count, &r->err) != 0)
        return r->err.code;
    if (r->err.code)
        return r->err.code;
    if (s->sq.want_count) {
        char n[32];
        snprintf(n, sizeof(n), "%ld", count);
        req_add_header(r, "NGSILD-Results-Count", n);
    }
    page_links(r, s, cJSON_GetArraySize(s->results), count);
    cJSON *results = s->results;
    s->results = NULL;
    return api_reply_entities(r, 200, results);
}

/* The GET form: type, id, idPattern, q, geo-query, attrs, view, page. */
static int parse_params(struct req *r, struct qspec *sp)
{
    const char *type = req_query(r, "type"), *ids = req_query(r, "id");
    const char *pattern = req_query(r, "idPattern"), *q = req_query(r, "q");
    const char *georel = req_query(r, "georel"), *geometry = req_query(r, "geometry");
    const char *coords = req_query(r, "coordinates");
    const char *attrs = req_query(r, "attrs"), *scope = req_query(r, "scopeQ");

    memset(sp, 0, sizeof(*sp));
    if (api_resolve_ctx(r, NULL) != 0 || api_view_parse(r, &sp->view) != 0)
        goto fail;
    if (!type && !ids && !attrs && !q && !georel && !scope)
        {
            err_set(&r->err, ERR_BAD_DATA,
                    "a query needs at least one of type, id, attrs, q, scopeQ or a geo-query");
            goto fail;
        }
    if (scope && set_scopeq(r, sp, scope) != 0)
        goto fail;
    if (type && set_types(r, sp, type) != 0)
        goto fail;
    for (const char *p = ids; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || add_id(r, sp, p, len) != 0) {
            err_set(&r->err, ERR_BAD_DATA, "invalid id list");
            goto fail;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (pattern && set_id_pattern(r, sp, pattern) != 0)
        goto fail;
    if (q && set_q(r, sp, q) != 0)
        goto fail;
    if (set_geo(r, sp, georel, geometry, coords, req_query(r, "geoproperty")) != 0)
        goto fail;
    if (set_page(r, sp) != 0)
        goto fail;
    return 0;
fail:
    qspec_free(sp);
    return r->err.code ? r->err.code : ERR_BAD_DATA;
}

int api_entities_query(struct req *r)
{
    struct qspec s;

    if (parse_params(r, &s) != 0)
        return req_reply_error(r);
    if (run(r, &s) != 0) {
        qspec_free(&s);
        return req_reply_error(r);
    }
    qspec_free(&s);
    return HTTP_DONE;
}

/* The Query object (GS CIM 009 5.2.23): {"type":"Query", "entities":
 * [{id|idPattern|type}], "attrs":[...], "q":"...", "geoQ":{...}}; other
 * members (temporalQ) are the caller's. An entity matches if any selector
 * does (all of a selector's members must hold), and the other
 * restrictions. Resolves the context from body. */
static int parse_body(struct req *r, const cJSON *body, struct qspec *sp)
{
    const cJSON *it;

    memset(sp, 0, sizeof(*sp));
    if (api_resolve_ctx(r, body) != 0 || api_view_parse(r, &sp->view) != 0)
        goto fail;
    if (!cJSON_IsObject(body)) {
        err_set(&r->err, ERR_BAD_DATA, "the body must be a Query object");
        goto fail;
    }
    const cJSON *qtype = cJSON_GetObjectItemCaseSensitive(body, "type");
    if (!cJSON_IsString(qtype) || strcmp(qtype->valuestring, "Query") != 0) {
        err_set(&r->err, ERR_BAD_DATA, "the body's type must be \"Query\"");
        goto fail;
    }
    const cJSON *entities = cJSON_GetObjectItemCaseSensitive(body, "entities");
    if (entities && !cJSON_IsArray(entities)) {
        err_set(&r->err, ERR_BAD_DATA, "entities must be an array");
        goto fail;
    }
    /* each selector on its own; an entity matches if any selector does */
    size_t n_sel = (size_t)cJSON_GetArraySize(entities);
    if (n_sel > 64) {
        err_set(&r->err, ERR_BAD_DATA, "at most 64 entity selectors");
        goto fail;
    }
    if (n_sel && ((sp->sel = calloc(n_sel, sizeof(*sp->sel))) == NULL ||
                  (sp->sel_types = calloc(n_sel, sizeof(*sp->sel_types))) == NULL ||
                  (sp->sel_re = calloc(n_sel, sizeof(*sp->sel_re))) == NULL ||
                  (sp->sel_have_re = calloc(n_sel, sizeof(*sp->sel_have_re))) == NULL)) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    cJSON_ArrayForEach(it, entities)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(it, "idPattern");
        size_t k = sp->n_sel++;
        if (!cJSON_IsObject(it) || (t && !cJSON_IsString(t)) || (id && !cJSON_IsString(id)) ||
            (pat && !cJSON_IsString(pat)) || (!t && !id && !pat)) {
            err_set(&r->err, ERR_BAD_DATA,
                    "an entity selector is an object with id, idPattern and/or type");
            goto fail;
        }
        if (t) {
            if (typeq_parse(t->valuestring, &sp->sel_types[k], &r->err) != 0) {
                r->err.code = ERR_BAD_DATA;
                goto fail;
            }
            if (typeq_expand(sp->sel_types[k], api_expand_cb, r) != 0) {
                err_set(&r->err, ERR_NOMEM, "out of memory");
                goto fail;
            }
            sp->sel[k].types = sp->sel_types[k];
        }
        if (id) {
            if (!api_is_uri(id->valuestring)) {
                err_set(&r->err, ERR_BAD_DATA, "id '%.200s' is not a URI", id->valuestring);
                goto fail;
            }
            if ((sp->sel[k].id = strdup(id->valuestring)) == NULL) {
                err_set(&r->err, ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        if (pat) {
            char why[96];
            if (re_compile(&sp->sel_re[k], pat->valuestring, 0, why, sizeof(why)) != 0) {
                err_set(&r->err, ERR_BAD_DATA, "idPattern '%.100s' %s", pat->valuestring, why);
                goto fail;
            }
            sp->sel_have_re[k] = 1;
            sp->sel[k].id_pattern = &sp->sel_re[k];
        }
    }
    sp->sq.sel = sp->sel;
    sp->sq.n_sel = sp->n_sel;
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(body, "attrs");
    if (attrs) {
        if (!cJSON_IsArray(attrs)) {
            err_set(&r->err, ERR_BAD_DATA, "attrs must be an array of names");
            goto fail;
        }
        cJSON_ArrayForEach(it, attrs)
        {
            char **p, *iri;
            if (!cJSON_IsString(it)) {
                err_set(&r->err, ERR_BAD_DATA, "attrs must be an array of names");
                goto fail;
            }
            if ((iri = api_expand(r, it->valuestring)) == NULL ||
                (p = realloc(sp->view.attrs, (sp->view.n_attrs + 1) * sizeof(*p))) == NULL) {
                free(iri);
                err_set(&r->err, ERR_NOMEM, "out of memory");
                goto fail;
            }
            sp->view.attrs = p;
            sp->view.attrs[sp->view.n_attrs++] = iri;
        }
        /* project on them too, as the GET's attrs does */
        char **pick = calloc(sp->view.n_attrs + 2, sizeof(*pick));
        if (pick == NULL) {
            err_set(&r->err, ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < sp->view.n_attrs; i++)
            pick[i] = strdup(sp->view.attrs[i]);
        pick[sp->view.n_attrs] = strdup("id");
        pick[sp->view.n_attrs + 1] = strdup("type");
        for (size_t i = 0; i < sp->view.n_pick; i++)
            free(sp->view.pick[i]);
        free(sp->view.pick);
        sp->view.pick = pick;
        sp->view.n_pick = sp->view.n_attrs + 2;
        sp->view.ro.pick = (const char *const *)pick;
        sp->view.ro.n_pick = sp->view.n_pick;
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(body, "q");
    if (q && (!cJSON_IsString(q) || set_q(r, sp, q->valuestring) != 0)) {
        err_set(&r->err, ERR_BAD_DATA, "q must be a valid query string");
        goto fail;
    }
    const cJSON *sq = cJSON_GetObjectItemCaseSensitive(body, "scopeQ");
    if (sq && (!cJSON_IsString(sq) || set_scopeq(r, sp, sq->valuestring) != 0)) {
        if (!cJSON_IsString(sq))
            err_set(&r->err, ERR_BAD_DATA, "scopeQ must be a string");
        goto fail;
    }
    const cJSON *geoq = cJSON_GetObjectItemCaseSensitive(body, "geoQ");
    if (geoq) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(geoq, "geometry");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(geoq, "coordinates");
        const cJSON *rel = cJSON_GetObjectItemCaseSensitive(geoq, "georel");
        const cJSON *gp = cJSON_GetObjectItemCaseSensitive(geoq, "geoproperty");
        char *ctext = c ? (cJSON_IsString(c) ? strdup(c->valuestring) : cJSON_PrintUnformatted(c))
                        : NULL;
        int rc = set_geo(r, sp, cJSON_IsString(rel) ? rel->valuestring : NULL,
                         cJSON_IsString(g) ? g->valuestring : NULL, ctext,
                         cJSON_IsString(gp) ? gp->valuestring : NULL);
        free(ctext);
        if (rc || !sp->sq.georel) {
            err_set(&r->err, ERR_BAD_DATA, "geoQ needs geometry, coordinates and georel");
            goto fail;
        }
    }
    if (!sp->n_sel && !sp->view.n_attrs && !sp->q && !sp->sq.georel && !sp->scopeq) {
        err_set(&r->err, ERR_BAD_DATA,
                "a query needs at least one of entities, attrs, q, scopeQ or geoQ");
        goto fail;
    }
    if (set_page(r, sp) != 0)
        goto fail;
    return 0;
fail:
    qspec_free(sp);
    return r->err.code ? r->err.code : ERR_BAD_DATA;
}

/* POST /entityOperations/query */
int api_batch_query(struct req *r)
{
    struct qspec s;
    cJSON *body = NULL;

    if (api_body_json(r, &body) != 0 || parse_body(r, body, &s) != 0) {
        cJSON_Delete(body);
        return req_reply_error(r);
    }
    cJSON_Delete(body);
    if (run(r, &s) != 0) {
        qspec_free(&s);
        return req_reply_error(r);
    }
    qspec_free(&s);
    return HTTP_DONE;
}

/* --- shared with the temporal API (api.h) ---------------------------------- */

struct api_query {
    struct qspec s;
};

static int query_new(struct req *r, const cJSON *body, struct api_query **out)
{
    struct api_query *q = calloc(1, sizeof(*q));
    int rc;

    *out = NULL;
    if (q == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    if ((rc = body ? parse_body(r, body, &q->s) : parse_params(r, &q->s)) != 0) {
        free(q);
        return rc;
    }
    q->s.sq.tenant = r->tenant;
    q->s.sq.attrs = (const char *const *)q->s.view.attrs;
    q->s.sq.n_attrs = q->s.view.n_attrs;
    *out = q;
    return 0;
}

int api_query_from_params(struct req *r, struct api_query **out)
{
    return query_new(r, NULL, out);
}

int api_query_from_body(struct req *r, const cJSON *body, struct api_query **out)
{
    return query_new(r, body, out);
}

struct api_view *api_query_view(struct api_query *q)
{
    return &q->s.view;
}

int api_query_run(struct req *r, struct api_query *q, int (*each)(void *ud, const cJSON *doc),
                  void *ud, long *count)
{
    struct app *app = api_app(r);
    return store_query(app->store, &q->s.sq, each, ud, count, &r->err);
}

struct filtered {
    const struct store_query *sq;
    int (*accept)(void *ud, const cJSON *doc);
    void *accept_ud;
    int (*each)(void *ud, const cJSON *doc);
    void *ud;
    long accepted;
    int stopped, failed;
};

static int on_filtered(void *ud, const cJSON *doc)
{
    struct filtered *f = ud;
    int a = f->accept(f->accept_ud, doc);
    long idx;

    if (a < 0) {
        f->failed = 1;
        return 1;
    }
    if (a == 0)
        return 0;
    idx = f->accepted++;
    if (!f->stopped && idx >= f->sq->offset && idx < f->sq->offset + f->sq->limit &&
        f->each(f->ud, doc) != 0)
        f->stopped = 1;
    /* without a count, one accepted past the page tells whether there is another */
    return !f->sq->want_count && (f->stopped || f->accepted > f->sq->offset + f->sq->limit);
}

int api_query_run_filtered(struct req *r, struct api_query *q, int own_geo,
                           int (*accept)(void *ud, const cJSON *doc), void *accept_ud,
                           int (*each)(void *ud, const cJSON *doc), void *ud, long *count)
{
    struct store_query all = q->s.sq;
    struct filtered f = {&q->s.sq, accept, accept_ud, each, ud, 0, 0, 0};
    long ignore;

    all.q = NULL; /* the caller's to evaluate, and attrs (on the history) */
    all.attrs = NULL;
    all.n_attrs = 0;
    if (own_geo) {
        all.georel = NULL;
        all.geometry = NULL;
    }
    all.offset = 0;
    all.limit = LONG_MAX;
    all.want_count = 0;
    if (store_query(api_app(r)->store, &all, on_filtered, &f, &ignore, &r->err) != 0)
        return r->err.code;
    if (f.failed)
        return r->err.code ? r->err.code : err_set(&r->err, ERR_INTERNAL, "query failed");
    *count = f.accepted;
    return 0;
}

const struct q_expr *api_query_q(const struct api_query *q)
{
    return q->s.sq.q;
}

int api_query_geo(const struct api_query *q, const struct geo_rel **rel,
                  const struct geo_shape **shape, const char **geoproperty)
{
    *rel = q->s.sq.geometry ? q->s.sq.georel : NULL;
    *shape = q->s.sq.geometry;
    *geoproperty = q->s.sq.geoproperty ? q->s.sq.geoproperty : LD_LOCATION_IRI;
    return *rel != NULL;
}

void api_query_page_headers(struct req *r, struct api_query *q, long n_results, long count)
{
    if (q->s.sq.want_count) {
        char n[32];
        snprintf(n, sizeof(n), "%ld", count);
        req_add_header(r, "NGSILD-Results-Count", n);
    }
    page_links(r, &q->s, n_results, count);
}

void api_query_free(struct api_query *q)
{
    if (q == NULL)
        return;
    qspec_free(&q->s);
    free(q);
}
