/*
 * temporal.c - the temporal API's reads (GS CIM 009 5.7.3, 5.7.4, 6.18-6.24):
 *   GET  /temporal/entities/{id}           one entity's history
 *   GET  /temporal/entities                the history of every entity a query
 *                                          selects (type, id, idPattern, q, geo,
 *                                          attrs: query.c's parsing, matched on
 *                                          the entities' current state)
 *   POST /temporal/entityOperations/query  the same with a Query object body and
 *                                          its temporalQ
 * from the store's append-only history, in the temporal representation
 * (every attribute an array of instances, each with its instanceId), the
 * simplified one (options=temporalValues: "values": [[value, time]...]) or
 * the aggregated one (options=aggregatedValues with aggrMethods and
 * aggrPeriodDuration: per method [[value, periodStart, periodEnd]...],
 * computed by the store in SQL, see store_history_aggregate).
 *
 * Temporal query: timerel before / after / between with timeAt / endTimeAt
 * (optional on every endpoint: without it, the whole history), timeproperty
 * (observedAt, the default and the history's key; createdAt, modifiedAt and
 * deletedAt read from the instances, see store.h), lastN. The simplified
 * representation pairs each value with that time property.
 *
 * Pagination of instances (GS CIM 009 6.3.10): at most temporal_max_instances
 * (cfg) instances per attribute. When an attribute has more, the answer is
 * 206 with "Content-Range: date-time <start>-<end>/<size>": forwards (no
 * lastN) from the window's start up to the newest instance returned (size
 * "*"); backwards (lastN) from the window's end down to the oldest returned
 * (size = lastN). Every attribute of every entity in the answer is cut at
 * the same <end>, so the next page is timerel=after (or before) that time.
 * Entities themselves page by limit/offset as in GET /entities.
 *
 * Runs on the HTTP workers; reads only (the writes are in temporal_write.c).
 */
#include "api/api.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld/ld.h"
#include "query/geo.h"
#include "query/q.h"
#include "util/cfg.h"
#include "util/time.h"

#define INSTANCE_PREFIX "urn:ngsi-ld:attribute:instance:"

enum {
    AGGR_TOTAL = 1,
    AGGR_DISTINCT = 2,
    AGGR_SUM = 4,
    AGGR_AVG = 8,
    AGGR_MIN = 16,
    AGGR_MAX = 32,
    AGGR_STDDEV = 64,
    AGGR_SUMSQ = 128,
};

static const struct {
    const char *name;
    unsigned bit;
} aggr_names[] = {
    {"totalCount", AGGR_TOTAL}, {"distinctCount", AGGR_DISTINCT},
    {"sum", AGGR_SUM},          {"avg", AGGR_AVG},
    {"min", AGGR_MIN},          {"max", AGGR_MAX},
    {"stddev", AGGR_STDDEV},    {"sumsq", AGGR_SUMSQ},
};
#define N_AGGR (sizeof(aggr_names) / sizeof(aggr_names[0]))

#define TQ_MAX_DATASETS 32

/* A parsed temporal query. */
struct tq {
    int64_t from_ms, to_ms; /* the window [from, to) */
    int time_prop;          /* STORE_TP_* */
    long last_n;            /* 0 = none */
    long cap;               /* instances per attribute per answer */
    int values, aggregated, sys_attrs;
    /* the request's pick, omit and lang (its view's, alive while the answer is made) */
    struct ent_render_opts proj;
    unsigned methods;           /* AGGR_* */
    struct store_period period; /* zero = the whole window */
    /* datasetId=: only these instances ("@none": the default ones); into ds_buf */
    const char *datasets[TQ_MAX_DATASETS];
    size_t n_datasets;
    char ds_buf[1024];
};

/* Instance pagination over the whole answer. */
struct cut {
    int truncated;
    int64_t end;         /* forwards: keep t <= end; backwards: t >= end */
    int64_t first, last; /* oldest / newest instance time returned */
    int any;
};

/* ---- the temporal query ---------------------------------------------------- */

static int parse_time(struct req *r, const char *name, const char *v, int64_t *ms)
{
    if (v == NULL)
        return err_set(&r->err, ERR_BAD_DATA, "%s is required with this timerel", name);
    if (tm_parse(v, ms) != 0)
        return err_set(&r->err, ERR_BAD_DATA, "%s '%.64s' is not a date-time", name, v);
    return 0;
}

static int tq_window(struct req *r, struct tq *t, const char *rel, const char *at,
                     const char *end_at, const char *tp)
{
    int64_t a, b;

    t->from_ms = INT64_MIN;
    t->to_ms = INT64_MAX;
    t->time_prop = STORE_TP_OBSERVED;
    if (tp == NULL || !strcmp(tp, "observedAt"))
        ;
    else if (!strcmp(tp, "createdAt"))
        t->time_prop = STORE_TP_CREATED;
    else if (!strcmp(tp, "modifiedAt"))
        t->time_prop = STORE_TP_MODIFIED;
    else if (!strcmp(tp, "deletedAt"))
        t->time_prop = STORE_TP_DELETED;
    else
        return err_set(&r->err, ERR_BAD_DATA,
                       "timeproperty '%.32s' is not observedAt, createdAt, modifiedAt or deletedAt",
                       tp);
    if (rel == NULL)
        return at ? err_set(&r->err, ERR_BAD_DATA, "timeAt needs timerel") : 0;
    if (!strcmp(rel, "before")) {
        if (parse_time(r, "timeAt", at, &a))
            return r->err.code;
        t->to_ms = a;
    } else if (!strcmp(rel, "after")) {
        if (parse_time(r, "timeAt", at, &a))
            return r->err.code;
        t->from_ms = a; /* 4.11: after is an inclusive bound, before an exclusive one */
    } else if (!strcmp(rel, "between")) {
        if (parse_time(r, "timeAt", at, &a) || parse_time(r, "endTimeAt", end_at, &b))
            return r->err.code;
        if (b <= a)
            return err_set(&r->err, ERR_BAD_DATA, "endTimeAt must be after timeAt");
        t->from_ms = a;
        t->to_ms = b;
    } else {
        return err_set(&r->err, ERR_BAD_DATA, "timerel must be before, after or between");
    }
    return 0;
}

static int tq_last_n(struct req *r, struct tq *t, const char *last)
{
    char *end;
    if (last == NULL)
        return 0;
    t->last_n = strtol(last, &end, 10);
    if (*last == '\0' || *end || t->last_n <= 0 || t->last_n > 1000000000L)
        return err_set(&r->err, ERR_BAD_DATA, "lastN must be a positive integer");
    return 0;
}

/* The rest of a temporal query: from the view (options) and the query
 * string (aggrMethods, aggrPeriodDuration). */
static int tq_finish(struct req *r, struct tq *t, const struct api_view *v)
{
    const char *methods = req_query(r, "aggrMethods");
    const char *period = req_query(r, "aggrPeriodDuration");
    struct app *app = api_app(r);

    t->cap = app->cfg->temporal_max_instances;
    t->values = v->temporal_values;
    t->aggregated = v->aggregated_values;
    t->sys_attrs = v->ro.sys_attrs;
    t->proj = (struct ent_render_opts){.pick = v->ro.pick, .n_pick = v->ro.n_pick,
                                       .omit = v->ro.omit, .n_omit = v->ro.n_omit,
                                       .lang = v->ro.lang};
    if (t->values && t->aggregated)
        return err_set(&r->err, ERR_BAD_DATA,
                       "options temporalValues and aggregatedValues exclude each other");
    if (!t->aggregated)
        return (methods || period)
                   ? err_set(&r->err, ERR_BAD_DATA,
                             "aggrMethods and aggrPeriodDuration need options=aggregatedValues")
                   : 0;
    if (methods == NULL || *methods == '\0')
        return err_set(&r->err, ERR_BAD_DATA, "options=aggregatedValues needs aggrMethods");
    for (const char *p = methods; *p;) {
        size_t len = strcspn(p, ","), i;
        for (i = 0; i < N_AGGR; i++)
            if (strlen(aggr_names[i].name) == len && !strncmp(aggr_names[i].name, p, len))
                break;
        if (i == N_AGGR)
            return err_set(&r->err, ERR_BAD_DATA,
                           "aggrMethods: '%.*s' is not one of totalCount, distinctCount, sum, "
                           "avg, min, max, stddev, sumsq",
                           (int)(len > 32 ? 32 : len), p);
        t->methods |= aggr_names[i].bit;
        p += len;
        if (*p == ',' && *++p == '\0')
            return err_set(&r->err, ERR_BAD_DATA, "aggrMethods ends with a comma");
    }
    if (period && store_period_parse(period, &t->period) != 0)
        return err_set(&r->err, ERR_BAD_DATA,
                       "aggrPeriodDuration '%.64s' is not an ISO 8601 duration "
                       "(PnYnMnWnDTnHnMnS, years and months in whole numbers)",
                       period);
    t->period.max = t->cap;
    return 0;
}

/* datasetId=a,b,@none (GS CIM 009 5.7.3.4, 5.7.4.4). */
static int tq_datasets(struct req *r, struct tq *t, const char *list)
{
    char *p;

    if (list == NULL)
        return 0;
    if (strlen(list) >= sizeof(t->ds_buf))
        return err_set(&r->err, ERR_BAD_DATA, "datasetId: the list is too long");
    strcpy(t->ds_buf, list);
    for (p = t->ds_buf; p != NULL;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (strcmp(p, "@none") != 0 && !api_is_uri(p))
            return err_set(&r->err, ERR_BAD_DATA, "datasetId '%.100s' is not a URI or @none", p);
        if (t->n_datasets == TQ_MAX_DATASETS)
            return err_set(&r->err, ERR_BAD_DATA, "datasetId: more than %d", TQ_MAX_DATASETS);
        t->datasets[t->n_datasets++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* The store query's instance selection from the temporal query. */
static void tq_select(const struct tq *t, struct store_history_query *hq)
{
    hq->from_ms = t->from_ms;
    hq->to_ms = t->to_ms;
    hq->time_prop = t->time_prop;
    hq->datasets = t->n_datasets ? t->datasets : NULL;
    hq->n_datasets = t->n_datasets;
}

static int tq_from_params(struct req *r, struct tq *t, const struct api_view *v)
{
    memset(t, 0, sizeof(*t));
    if (tq_window(r, t, req_query(r, "timerel"), req_query(r, "timeAt"), req_query(r, "endTimeAt"),
                  req_query(r, "timeproperty")) != 0 ||
        tq_last_n(r, t, req_query(r, "lastN")) != 0 ||
        tq_datasets(r, t, req_query(r, "datasetId")) != 0)
        return r->err.code;
    return tq_finish(r, t, v);
}

/* ---- collecting one entity's history -------------------------------------- */

struct hist {
    cJSON *attrs; /* attr IRI -> [instances] (storage form) */
    cJSON *meta;  /* attr IRI -> [[iid, t], ...], same order */
    const char *cur_attr;
    long n_attr; /* instances of cur_attr so far */
    int oom;
};

static int collect(void *ud, const char *attr, int64_t iid, int64_t t_ms, const char *text)
{
    struct hist *h = ud;
    cJSON *inst = cJSON_Parse(text), *arr, *meta, *pair;

    if (inst == NULL)
        return 0; /* a corrupt row is skipped */
    if ((arr = cJSON_GetObjectItemCaseSensitive(h->attrs, attr)) == NULL)
        arr = cJSON_AddArrayToObject(h->attrs, attr);
    if ((meta = cJSON_GetObjectItemCaseSensitive(h->meta, attr)) == NULL)
        meta = cJSON_AddArrayToObject(h->meta, attr);
    pair = cJSON_CreateArray();
    if (arr == NULL || meta == NULL || pair == NULL) {
        cJSON_Delete(inst);
        cJSON_Delete(pair);
        h->oom = 1;
        return 1;
    }
    cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)iid));
    cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)t_ms));
    cJSON_AddItemToArray(arr, inst);
    cJSON_AddItemToArray(meta, pair);
    return 0;
}

static int64_t meta_time(const cJSON *pair)
{
    return (int64_t)cJSON_GetArrayItem(pair, 1)->valuedouble;
}

/* Over the cap: the page ends at the time of the cap-th instance of an
 * attribute (forwards: the cap-th oldest; backwards: the cap-th newest),
 * the earliest (latest) such time over every attribute. cut_at then keeps
 * every instance up to (from) that time, all of those at it included, so
 * the next page starts right after it: forwards `after` (inclusive) the
 * Content-Range end, which is 1 ms past that time; backwards `before`
 * (exclusive) it. */
static void trim(const struct tq *t, struct hist *h, struct cut *c)
{
    cJSON *a = h->attrs->child, *m = h->meta->child;

    for (; a && m; a = a->next, m = m->next) {
        int n = cJSON_GetArraySize(a);
        if (n <= t->cap)
            continue;
        int64_t edge = meta_time(cJSON_GetArrayItem(m, t->last_n ? n - t->cap : t->cap - 1));
        int64_t far = meta_time(cJSON_GetArrayItem(m, t->last_n ? 0 : n - 1));
        if (far == edge)
            continue; /* more than cap only by instances of the edge's time: all kept */
        /* far is the store's one more: there is more past edge */
        if (!c->truncated || (t->last_n ? edge > c->end : edge < c->end))
            c->end = edge;
        c->truncated = 1;
    }
}

/* Cut every attribute at c->end; note the oldest / newest time kept. */
static void cut_at(const struct tq *t, struct hist *h, struct cut *c)
{
    cJSON *a = h->attrs->child, *m = h->meta->child;

    for (; a && m; a = a->next, m = m->next) {
        int i = 0;
        for (cJSON *p = m->child; p;) {
            cJSON *next = p->next;
            int64_t tm = meta_time(p);
            if (c->truncated && (t->last_n ? tm < c->end : tm > c->end)) {
                cJSON_DeleteItemFromArray(a, i);
                cJSON_Delete(cJSON_DetachItemViaPointer(m, p));
            } else {
                if (!c->any || tm < c->first)
                    c->first = tm;
                if (!c->any || tm > c->last)
                    c->last = tm;
                c->any = 1;
                i++;
            }
            p = next;
        }
    }
}

/* The member of the simplified temporal representation that lists an
 * attribute type's values (GS CIM 009 4.5.9), and the instance member read
 * for them. */
static const char *simplified_member(const char *type, const char **value_member)
{
    static const struct {
        const char *type, *list, *value;
    } map[] = {
        {"Relationship", "objects", "object"},       {"ListRelationship", "objectLists", "objectList"},
        {"LanguageProperty", "languageMaps", "languageMap"}, {"VocabProperty", "vocabs", "vocab"},
        {"JsonProperty", "jsons", "json"},           {"ListProperty", "valueLists", "valueList"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(type, map[i].type)) {
            *value_member = map[i].value;
            return map[i].list;
        }
    *value_member = "value"; /* Property, GeoProperty */
    return "values";
}

static cJSON *last_member(cJSON *o)
{
    cJSON *c = o->child;
    while (c && c->next)
        c = c->next;
    return c;
}

/* The simplified temporal representation of one rendered attribute: per
 * datasetId (in order of appearance) an object {type, datasetId, <values
 * member>: [[value, time]...]}, the time being the timeproperty's (from
 * meta's [iid, t] pairs when given, else observedAt); one object, or an
 * array of them when the attribute has several datasetIds. */
static cJSON *temporal_values(const cJSON *instances, const cJSON *meta)
{
    cJSON *groups = cJSON_CreateArray(), *out;
    const cJSON *inst, *m = meta ? meta->child : NULL;

    if (groups == NULL)
        return NULL;
    cJSON_ArrayForEach(inst, instances)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(inst, "type");
        const cJSON *ds = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(inst, "observedAt");
        const char *type = cJSON_IsString(t) ? t->valuestring : "Property", *vm;
        const char *list = simplified_member(type, &vm);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(inst, vm);
        cJSON *g = NULL, *pair;
        cJSON_ArrayForEach(g, groups)
        {
            const cJSON *gds = cJSON_GetObjectItemCaseSensitive(g, "datasetId");
            if (cJSON_IsString(ds) ? cJSON_IsString(gds) && !strcmp(gds->valuestring, ds->valuestring)
                                   : gds == NULL)
                break;
        }
        if (g == NULL) {
            g = cJSON_CreateObject();
            if (g == NULL || !cJSON_AddItemToArray(groups, g))
                goto oom;
            cJSON_AddStringToObject(g, "type", type);
            if (cJSON_IsString(ds))
                cJSON_AddStringToObject(g, "datasetId", ds->valuestring);
            if (cJSON_AddArrayToObject(g, list) == NULL)
                goto oom;
        }
        if ((pair = cJSON_CreateArray()) == NULL)
            goto oom;
        cJSON_AddItemToArray(last_member(g), pair); /* the group's list */
        cJSON_AddItemToArray(pair, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        if (m != NULL && cJSON_GetArraySize(m) == 2) {
            char ts[TM_ISO_LEN];
            tm_format((int64_t)cJSON_GetArrayItem(m, 1)->valuedouble, ts);
            cJSON_AddItemToArray(pair, cJSON_CreateString(ts));
        } else {
            cJSON_AddItemToArray(pair, at ? cJSON_Duplicate(at, 1) : cJSON_CreateNull());
        }
        m = m ? m->next : NULL;
    }
    if (cJSON_GetArraySize(groups) != 1)
        return groups;
    out = cJSON_DetachItemFromArray(groups, 0);
    cJSON_Delete(groups);
    return out;
oom:
    cJSON_Delete(groups);
    return NULL;
}

static void replace_member(cJSON *obj, cJSON *old, cJSON *with)
{
    with->string = strdup(old->string); /* replacing keeps no key */
    cJSON_ReplaceItemViaPointer(obj, old, with);
}

/* One entity's temporal representation from its history h and its types
 * (an array of IRIs). NULL with r->err on failure. */
static cJSON *render_history(struct req *r, const struct tq *t, const char *id, const cJSON *types,
                             struct hist *h)
{
    struct api_view v;
    cJSON *doc = cJSON_CreateObject(), *out = NULL;

    memset(&v, 0, sizeof(v));
    v.ro = t->proj;
    v.ro.ctx = r->ctx;
    v.ro.format = ENT_NORMALIZED;
    v.ro.sys_attrs = t->sys_attrs;
    if (doc == NULL || cJSON_AddStringToObject(doc, "id", id) == NULL) {
        cJSON_Delete(doc);
        err_set(&r->err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    cJSON_AddItemToObject(doc, "type", types ? cJSON_Duplicate(types, 1) : cJSON_CreateArray());
    /* pick / omit drop attributes here, from the instances and their [iid,
     * t] pairs alike: the loop below pairs them by position */
    for (cJSON *a = h->attrs ? h->attrs->child : NULL, *next; a; a = next) {
        next = a->next;
        if (!ent_render_keeps(&t->proj, a->string)) {
            cJSON_DeleteItemFromObjectCaseSensitive(h->meta, a->string);
            cJSON_DeleteItemFromObjectCaseSensitive(h->attrs, a->string);
        }
    }
    cJSON_AddItemToObject(doc, "attrs", h->attrs);
    h->attrs = NULL;
    out = api_render(r, &v, doc);
    cJSON_Delete(doc);
    if (out == NULL)
        return NULL;
    /* every attribute is an array of instances with its instanceId (the
     * renderer keeps the document's attribute and instance order); or the
     * simplified [[value, time]...] */
    const cJSON *meta = h->meta->child, *this_meta;
    for (cJSON *a = out->child; a; a = a->next) {
        if (!strcmp(a->string, "id") || !strcmp(a->string, "type") || a->string[0] == '@' ||
            !strcmp(a->string, "createdAt") || !strcmp(a->string, "modifiedAt"))
            continue;
        if (cJSON_IsObject(a)) {
            cJSON *arr = cJSON_CreateArray();
            cJSON_AddItemToArray(arr, cJSON_Duplicate(a, 1));
            replace_member(out, a, arr);
            a = arr;
        }
        this_meta = meta;
        if (meta) {
            cJSON *inst = a->child;
            for (const cJSON *p = meta->child; p && inst; p = p->next, inst = inst->next) {
                char iid[64];
                snprintf(iid, sizeof(iid), INSTANCE_PREFIX "%lld",
                         (long long)cJSON_GetArrayItem(p, 0)->valuedouble);
                cJSON_AddStringToObject(inst, "instanceId", iid);
            }
            meta = meta->next;
        }
        if (t->values) {
            cJSON *tv = temporal_values(a, this_meta);
            if (tv == NULL) {
                cJSON_Delete(out);
                err_set(&r->err, ERR_NOMEM, "out of memory");
                return NULL;
            }
            replace_member(out, a, tv);
            a = tv;
        }
    }
    return out;
}

/* ---- aggregation ------------------------------------------------------------ */

struct aggr_run {
    const struct tq *t;
    cJSON *attrs; /* attr IRI -> {series: {method: [[v, start, end]...]}}, series
                   * "" for the default instances, else the datasetId */
    int oom;
};

static cJSON *aggr_value(unsigned m, const struct store_aggr *a)
{
    double avg = a->n_num ? a->sum / (double)a->n_num : 0, var;
    if (m == AGGR_TOTAL)
        return cJSON_CreateNumber((double)a->count);
    if (m == AGGR_DISTINCT)
        return cJSON_CreateNumber((double)a->distinct);
    if (a->n_num == 0 && a->n_text > 0 && (m == AGGR_MIN || m == AGGR_MAX))
        return cJSON_CreateString(m == AGGR_MIN ? a->smin : a->smax); /* text order */
    if (a->n_num == 0)
        return cJSON_CreateNull(); /* no value the method applies to */
    switch (m) {
    case AGGR_SUM: return cJSON_CreateNumber(a->sum);
    case AGGR_AVG: return cJSON_CreateNumber(avg);
    case AGGR_MIN: return cJSON_CreateNumber(a->min);
    case AGGR_MAX: return cJSON_CreateNumber(a->max);
    case AGGR_SUMSQ: return cJSON_CreateNumber(a->sumsq);
    case AGGR_STDDEV: /* population standard deviation */
        var = a->sumsq / (double)a->n_num - avg * avg;
        return cJSON_CreateNumber(var > 0 ? sqrt(var) : 0);
    default: return cJSON_CreateNull();
    }
}

static int on_aggr(void *ud, const char *attr, const struct store_aggr *a)
{
    struct aggr_run *run = ud;
    cJSON *at = cJSON_GetObjectItemCaseSensitive(run->attrs, attr), *o;
    const char *series = a->dataset_id ? a->dataset_id : "";
    char start[TM_ISO_LEN], end[TM_ISO_LEN];

    if (at == NULL && (at = cJSON_AddObjectToObject(run->attrs, attr)) == NULL)
        goto oom;
    if ((o = cJSON_GetObjectItemCaseSensitive(at, series)) == NULL &&
        ((o = cJSON_AddObjectToObject(at, series)) == NULL ||
         (a->type[0] && cJSON_AddStringToObject(o, "type", a->type) == NULL)))
        goto oom;
    tm_format(a->start_ms, start);
    tm_format(a->end_ms == INT64_MAX ? a->last_ms : a->end_ms, end);
    for (size_t i = 0; i < N_AGGR; i++) {
        unsigned m = aggr_names[i].bit;
        cJSON *arr, *row;
        if (!(run->t->methods & m))
            continue;
        if ((arr = cJSON_GetObjectItemCaseSensitive(o, aggr_names[i].name)) == NULL &&
            (arr = cJSON_AddArrayToObject(o, aggr_names[i].name)) == NULL)
            goto oom;
        if ((row = cJSON_CreateArray()) == NULL)
            goto oom;
        cJSON_AddItemToArray(arr, row);
        cJSON_AddItemToArray(row, aggr_value(m, a));
        cJSON_AddItemToArray(row, cJSON_CreateString(start));
        cJSON_AddItemToArray(row, cJSON_CreateString(end));
    }
    return 0;
oom:
    run->oom = 1;
    return 1;
}

/* The type an attribute has in the current document, else the one its
 * instances had (recorded, the store read them), else "Property" (numbers
 * from the index). */
static const char *attr_type(const cJSON *cur, const char *iri, const char *recorded)
{
    const cJSON *a =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cur, "attrs"), iri);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, 0), "type");
    return cJSON_IsString(t) ? t->valuestring : recorded ? recorded : "Property";
}

/* The aggregates of one entity's history into run->attrs (any thread: it
 * only reads the store); the error in e. */
static int aggr_compute(struct store *st, const struct tq *t, const struct store_history_query *hq,
                        struct aggr_run *run, struct err *e)
{
    run->t = t;
    if ((run->attrs = cJSON_CreateObject()) == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (store_history_aggregate(st, hq, &t->period, (t->methods & AGGR_DISTINCT) != 0, on_aggr, run,
                                e) != 0)
        return e->code;
    if (run->oom) /* (the store bounds the periods: t->period.max per attribute) */
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

/* The aggregated representation of entity id from a computed run (the
 * request's thread: it compacts with the request's context). */
static cJSON *aggr_render(struct req *r, const char *id, const cJSON *cur, struct aggr_run *run)
{
    const struct tq *t = run->t;
    struct api_view v;
    cJSON *head = NULL, *out = NULL;

    /* id and type rendered like an entity's, then one member per attribute */
    memset(&v, 0, sizeof(v));
    v.ro = t->proj;
    v.ro.lang = NULL;
    v.ro.ctx = r->ctx;
    if ((head = cJSON_CreateObject()) == NULL)
        goto oom;
    cJSON_AddStringToObject(head, "id", id);
    cJSON_AddItemToObject(head, "type",
                          cur ? cJSON_Duplicate(ent_doc_types(cur), 1) : cJSON_CreateArray());
    cJSON_AddItemToObject(head, "attrs", cJSON_CreateObject());
    if ((out = api_render(r, &v, head)) == NULL)
        goto out;
    for (cJSON *a = run->attrs->child; a; a = a->next) {
        if (!ent_render_keeps(&t->proj, a->string))
            continue; /* pick / omit */
        /* one object per series, the default instances' first; an array
         * when there are several */
        char *name = ld_compact(r->ctx ? r->ctx : ld_core(), a->string);
        cJSON *list = cJSON_CreateArray(), *def = cJSON_GetObjectItemCaseSensitive(a, "");
        if (name == NULL || list == NULL) {
            free(name);
            cJSON_Delete(list);
            goto oom;
        }
        if (def != NULL) /* first */
            cJSON_AddItemToArray(list, cJSON_DetachItemViaPointer(a, def));
        while (a->child)
            cJSON_AddItemToArray(list, cJSON_DetachItemViaPointer(a, a->child));
        for (cJSON *s = list->child; s; s = s->next) {
            cJSON *o = cJSON_CreateObject();
            cJSON *rec = cJSON_DetachItemFromObjectCaseSensitive(s, "type");
            const char *type = attr_type(cur, a->string, cJSON_IsString(rec) ? rec->valuestring
                                                                              : NULL);
            int failed = o == NULL || cJSON_AddStringToObject(o, "type", type) == NULL ||
                         (s->string[0] && cJSON_AddStringToObject(o, "datasetId", s->string) == NULL);
            cJSON_Delete(rec);
            if (failed) {
                cJSON_Delete(o);
                free(name);
                cJSON_Delete(list);
                goto oom;
            }
            while (s->child) { /* the methods, after "type" */
                cJSON *method = cJSON_DetachItemViaPointer(s, s->child);
                cJSON_AddItemToObject(o, method->string, method);
            }
            cJSON_ReplaceItemViaPointer(list, s, o);
            s = o;
        }
        if (cJSON_GetArraySize(list) == 1) {
            cJSON_AddItemToObject(out, name, cJSON_DetachItemViaPointer(list, list->child));
            cJSON_Delete(list);
        } else {
            cJSON_AddItemToObject(out, name, list);
        }
        free(name);
    }
    goto out;
oom:
    err_set(&r->err, ERR_NOMEM, "out of memory");
out:
    if (r->err.code) {
        cJSON_Delete(out);
        out = NULL;
    }
    cJSON_Delete(head);
    return out;
}

static cJSON *render_aggregated(struct req *r, const struct tq *t, const char *id, const cJSON *cur,
                                struct store_history_query *hq)
{
    struct aggr_run run = {0};
    cJSON *out = NULL;
    if (aggr_compute(api_app(r)->store, t, hq, &run, &r->err) == 0)
        out = aggr_render(r, id, cur, &run);
    cJSON_Delete(run.attrs);
    return out;
}

/* ---- many entities, aggregated: the histories are read in parallel --------
 * Aggregating is reading the history index (4.3 million instances for 100
 * entities over 30 days of minutes): a second thread, with its own store
 * connection, takes every other entity; the rendering stays on the
 * request's thread. */

struct aggr_job {
    struct store *store;
    const struct tq *t;
    struct store_history_query *hqs;
    struct aggr_run *runs;
    struct err *errs;
    int n, first, step;
};

static void *aggr_worker(void *arg)
{
    struct aggr_job *j = arg;
    for (int i = j->first; i < j->n; i += j->step)
        if (aggr_compute(j->store, j->t, &j->hqs[i], &j->runs[i], &j->errs[i]) != 0)
            break;
    return NULL;
}

/* Aggregate the entities of docs (n) and append their representations to
 * results. */
static int aggregate_many(struct req *r, const struct tq *t, const struct api_view *v, cJSON *docs,
                          int n, cJSON *results)
{
    struct store_history_query *hqs = calloc((size_t)n, sizeof(*hqs));
    struct aggr_run *runs = calloc((size_t)n, sizeof(*runs));
    struct err *errs = calloc((size_t)n, sizeof(*errs));
    struct aggr_job main_job, side_job;
    pthread_t th;
    int threaded = 0, i = 0, rc = 0;
    cJSON *doc;

    if (hqs == NULL || runs == NULL || errs == NULL) {
        rc = err_set(&r->err, ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(doc, docs)
    {
        hqs[i].tenant = r->tenant;
        hqs[i].entity_id = ent_doc_id(doc);
        hqs[i].attrs = (const char *const *)v->attrs;
        hqs[i].n_attrs = v->n_attrs;
        tq_select(t, &hqs[i]);
        i++;
    }
    main_job = (struct aggr_job){api_app(r)->store, t, hqs, runs, errs, n, 0, 1};
    if (n >= 4) {
        side_job = main_job;
        side_job.first = 1;
        side_job.step = 2;
        main_job.step = 2;
        threaded = pthread_create(&th, NULL, aggr_worker, &side_job) == 0;
        if (!threaded)
            main_job.step = 1;
    }
    aggr_worker(&main_job);
    if (threaded)
        pthread_join(th, NULL);
    i = 0;
    cJSON_ArrayForEach(doc, docs)
    {
        cJSON *out;
        if (errs[i].code) {
            r->err = errs[i];
            rc = errs[i].code;
            goto out;
        }
        if ((out = aggr_render(r, ent_doc_id(doc), doc, &runs[i])) == NULL) {
            rc = r->err.code ? r->err.code : ERR_INTERNAL;
            goto out;
        }
        cJSON_AddItemToArray(results, out);
        i++;
    }
out:
    for (i = 0; runs && i < n; i++)
        cJSON_Delete(runs[i].attrs);
    free(hqs);
    free(runs);
    free(errs);
    return rc;
}

/* ---- one entity ------------------------------------------------------------ */

/* The temporal representation of entity id (its current document cur, or
 * NULL when it is gone), appended to results; *has_history = 1 when it had
 * any history in the window. */
static int entity_temporal(struct req *r, const struct tq *t, const char *id, const cJSON *cur,
                           const struct api_view *v, struct cut *c, struct hist *h, cJSON **out,
                           int *has_history)
{
    struct app *app = api_app(r);
    struct store_history_query hq = {0};

    *out = NULL;
    *has_history = 0;
    hq.tenant = r->tenant;
    hq.entity_id = id;
    hq.attrs = (const char *const *)v->attrs;
    hq.n_attrs = v->n_attrs;
    tq_select(t, &hq);
    if (t->aggregated) {
        if ((*out = render_aggregated(r, t, id, cur, &hq)) == NULL)
            return r->err.code ? r->err.code : ERR_INTERNAL;
        *has_history = cJSON_GetArraySize(*out) > 2;
        return 0;
    }
    /* the cap's worth (with the others of the cap-th's time), and one more
     * past them tells whether there is more */
    if (t->last_n) {
        hq.last_n = t->last_n < t->cap ? t->last_n : t->cap;
        hq.one_more = t->last_n > t->cap;
    } else {
        hq.limit = t->cap;
        hq.one_more = 1;
    }
    memset(h, 0, sizeof(*h));
    if ((h->attrs = cJSON_CreateObject()) == NULL || (h->meta = cJSON_CreateObject()) == NULL)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    if (store_history(app->store, &hq, collect, h, &r->err) != 0)
        return r->err.code;
    if (h->oom)
        return err_set(&r->err, ERR_NOMEM, "out of memory");
    *has_history = h->attrs->child != NULL;
    trim(t, h, c);
    return 0;
}

static void hist_free(struct hist *h)
{
    cJSON_Delete(h->attrs);
    cJSON_Delete(h->meta);
    memset(h, 0, sizeof(*h));
}

/* 206 and Content-Range when the instances were cut. */
static int reply_temporal(struct req *r, const struct tq *t, const struct cut *c, cJSON *body)
{
    if (c->truncated) {
        char a[TM_ISO_LEN], b[TM_ISO_LEN], range[128], size[32];
        if (t->last_n) {
            tm_format(t->to_ms != INT64_MAX ? t->to_ms : c->last, a);
            snprintf(size, sizeof(size), "%ld", t->last_n);
        } else {
            tm_format(t->from_ms != INT64_MIN ? t->from_ms : c->first, a);
            snprintf(size, sizeof(size), "*");
        }
        tm_format(t->last_n ? c->end : c->end + 1, b); /* forwards: where the next page starts */
        snprintf(range, sizeof(range), "date-time %s-%s/%s", a, b, size);
        req_add_header(r, "Content-Range", range);
        return api_reply_entities(r, 206, body);
    }
    return api_reply_entities(r, 200, body);
}

int api_temporal_entity_get(struct req *r)
{
    struct app *app = api_app(r);
    struct api_view v;
    struct tq t;
    struct cut c = {0};
    struct hist h = {0};
    const char *id = r->route_params[0];
    cJSON *cur = NULL, *out = NULL;
    struct err ignore = {0};
    int has, standin = 0;

    memset(&v, 0, sizeof(v));
    if (!api_is_uri(id))
        return req_fail(r, ERR_BAD_DATA, "entity id '%.200s' is not a URI", id);
    if (api_resolve_ctx(r, NULL) != 0 || api_view_parse(r, &v) != 0 ||
        tq_from_params(r, &t, &v) != 0)
        goto fail;
    if (store_entity_get(app->store, r->tenant, id, &cur, &ignore) != 0 &&
        ignore.code == ERR_NO_TENANT) {
        err_set(&r->err, ERR_NOT_FOUND, "no entity %s and no history of it", id);
        goto fail;
    }
    if (cur == NULL) { /* deleted: its history keeps the type it had */
        cJSON *types = NULL;
        if (store_history_types(app->store, r->tenant, id, &types, &ignore) == 0 &&
            cJSON_IsArray(types) && (cur = cJSON_CreateObject()) != NULL) {
            standin = 1;
            cJSON_AddStringToObject(cur, "id", id);
            cJSON_AddItemToObject(cur, "type", types);
            cJSON_AddObjectToObject(cur, "attrs");
            types = NULL;
        }
        cJSON_Delete(types);
    }
    if (entity_temporal(r, &t, id, cur, &v, &c, &h, &out, &has) != 0)
        goto fail;
    if ((cur == NULL || standin) && !has) {
        /* no entity, and nothing in this window: does it have a history at all? */
        struct store_history_query any = {.tenant = r->tenant,
                                          .entity_id = id,
                                          .from_ms = INT64_MIN,
                                          .to_ms = INT64_MAX,
                                          .limit = 1};
        struct hist probe = {0};
        probe.attrs = cJSON_CreateObject();
        probe.meta = cJSON_CreateObject();
        int rc = store_history(app->store, &any, collect, &probe, &ignore);
        has = rc == 0 && probe.attrs && probe.attrs->child;
        hist_free(&probe);
        if (!has) {
            err_set(&r->err, ERR_NOT_FOUND, "no entity %s and no history of it", id);
            goto fail;
        }
    }
    if (!t.aggregated) {
        cut_at(&t, &h, &c);
        if ((out = render_history(r, &t, id, cur ? ent_doc_types(cur) : NULL, &h)) == NULL)
            goto fail;
    }
    hist_free(&h);
    cJSON_Delete(cur);
    api_view_free(&v);
    return reply_temporal(r, &t, &c, out);
fail:
    hist_free(&h);
    cJSON_Delete(cur);
    cJSON_Delete(out);
    api_view_free(&v);
    return req_reply_error(r);
}

/* ---- many entities ---------------------------------------------------------- */

struct picked {
    cJSON *docs; /* the page's current documents, in query order */
};

static int pick(void *ud, const cJSON *doc)
{
    struct picked *p = ud;
    cJSON *copy = cJSON_Duplicate(doc, 1);
    if (copy == NULL)
        return 1;
    cJSON_AddItemToArray(p->docs, copy);
    return 0;
}

/* ---- selection on the history ----------------------------------------------
 * GS CIM 009 5.7.4.4: a temporal query answers with the entities that have
 * instances within the window (of the selected attributes), and its q is
 * checked against the attribute instances of that window, not against the
 * current state. Here each term of q holds when any instance of its
 * attribute within the window satisfies it (q_match's "any instance" rule,
 * on a document whose attributes hold every instance of the window), and
 * the terms combine as usual. A geo-query likewise holds when a GeoProperty
 * instance of the window satisfies it, except `near`, which orders the
 * answer by distance and so stays on the current location. The other
 * restrictions (id, type, scopeQ) select on the current state; entities
 * that no longer exist are not found by a query (only GET
 * /temporal/entities/{id} reads them). */

struct tfilter {
    struct req *r;
    const struct tq *t;
    const struct api_view *v;
    const struct q_expr *q;
    const char **q_attrs;
    size_t n_q_attrs;
    cJSON *attrs; /* the window's instances of q's attributes */
    const struct geo_rel *rel; /* a geo-query on the window's instances, or NULL */
    const struct geo_shape *shape;
    const char *geoprop;
    int found, oom;
};

/* Does a GeoProperty instance of the window satisfy the geo-query? */
static int geo_instance(void *ud, const char *attr, int64_t iid, int64_t t_ms, const char *text)
{
    struct tfilter *f = ud;
    cJSON *inst = cJSON_Parse(text);
    struct geo_shape *shape = NULL;
    (void)attr, (void)iid, (void)t_ms;
    if (inst != NULL &&
        geo_parse(cJSON_GetObjectItemCaseSensitive(inst, "value"), &shape, NULL) == 0 &&
        geo_match(f->rel, f->shape, shape))
        f->found = 1;
    geo_free(shape);
    cJSON_Delete(inst);
    return f->found; /* one is enough */
}

static void add_q_attr(void *ud, const char *attr)
{
    struct tfilter *f = ud;
    const char **p = realloc(f->q_attrs, (f->n_q_attrs + 1) * sizeof(*p));
    if (p == NULL) {
        f->oom = 1;
        return;
    }
    f->q_attrs = p;
    f->q_attrs[f->n_q_attrs++] = attr;
}

static int found_one(void *ud, const char *attr, int64_t iid, int64_t t_ms, const char *text)
{
    (void)attr, (void)iid, (void)t_ms, (void)text;
    ((struct tfilter *)ud)->found = 1;
    return 1;
}

static int add_instance(void *ud, const char *attr, int64_t iid, int64_t t_ms, const char *text)
{
    struct tfilter *f = ud;
    cJSON *inst = cJSON_Parse(text), *arr = cJSON_GetObjectItemCaseSensitive(f->attrs, attr);
    (void)iid, (void)t_ms;
    if (inst == NULL || (arr == NULL && (arr = cJSON_AddArrayToObject(f->attrs, attr)) == NULL)) {
        cJSON_Delete(inst);
        f->oom = 1;
        return 1;
    }
    cJSON_AddItemToArray(arr, inst);
    return 0;
}

/* 1: doc is in the answer, 0: not, -1: failed (r->err). */
static int temporal_accept(void *ud, const cJSON *doc)
{
    struct tfilter *f = ud;
    struct store *st = api_app(f->r)->store;
    struct store_history_query hq = {.tenant = f->r->tenant,
                                      .entity_id = ent_doc_id(doc),
                                      .attrs = (const char *const *)f->v->attrs,
                                      .n_attrs = f->v->n_attrs,
                                      .limit = 1};
    static const char *const entity_members[] = {"id", "type", "scope", "createdAt",
                                                 "modifiedAt"};
    cJSON *hdoc;
    int in;

    tq_select(f->t, &hq);
    f->found = 0;
    if (store_history(st, &hq, found_one, f, &f->r->err) != 0)
        return -1;
    if (!f->found)
        return 0;
    if (f->rel != NULL) {
        hq.attrs = &f->geoprop;
        hq.n_attrs = 1;
        hq.limit = 0;
        f->found = 0;
        if (store_history(st, &hq, geo_instance, f, &f->r->err) != 0)
            return -1;
        if (!f->found)
            return 0;
    }
    if (f->q == NULL)
        return 1;
    /* q on the window's instances, the entity's own members from its state */
    if ((hdoc = cJSON_CreateObject()) == NULL)
        goto oom;
    for (size_t i = 0; i < sizeof(entity_members) / sizeof(entity_members[0]); i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, entity_members[i]);
        if (m != NULL)
            cJSON_AddItemToObject(hdoc, entity_members[i], cJSON_Duplicate(m, 1));
    }
    if ((f->attrs = cJSON_AddObjectToObject(hdoc, "attrs")) == NULL)
        goto oom;
    hq.attrs = f->q_attrs;
    hq.n_attrs = f->n_q_attrs;
    hq.limit = 0;
    if (f->n_q_attrs > 0 && store_history(st, &hq, add_instance, f, &f->r->err) != 0) {
        cJSON_Delete(hdoc);
        return -1;
    }
    if (f->oom)
        goto oom;
    in = q_match(f->q, hdoc);
    cJSON_Delete(hdoc);
    return in;
oom:
    cJSON_Delete(hdoc);
    err_set(&f->r->err, ERR_NOMEM, "out of memory");
    return -1;
}

/* Run the selection q and answer with the temporal representation of each
 * entity of the page. */
static int temporal_many(struct req *r, struct api_query *q, const struct tq *t)
{
    struct api_view *v = api_query_view(q);
    struct tfilter tf = {.r = r, .t = t, .v = v, .q = api_query_q(q)};
    struct picked p = {0};
    struct cut c = {0};
    struct hist *hs = NULL;
    cJSON *results = NULL, *doc;
    long count = 0;
    int n = 0, i = 0, has;

    if ((p.docs = cJSON_CreateArray()) == NULL || (results = cJSON_CreateArray()) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (tf.q != NULL)
        q_foreach_attr(tf.q, add_q_attr, &tf);
    if (api_query_geo(q, &tf.rel, &tf.shape, &tf.geoprop) && tf.rel->op == GEO_NEAR)
        tf.rel = NULL; /* near orders by the current location: the store's */
    if (tf.oom) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (api_query_run_filtered(r, q, tf.rel != NULL, temporal_accept, &tf, pick, &p, &count) != 0)
        goto fail;
    n = cJSON_GetArraySize(p.docs);
    if (n && (hs = calloc((size_t)n, sizeof(*hs))) == NULL) {
        err_set(&r->err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (t->aggregated) {
        if (n > 0 && aggregate_many(r, t, v, p.docs, n, results) != 0)
            goto fail;
        goto done;
    }
    /* first every entity's history (the instance cut is over all of them) */
    cJSON_ArrayForEach(doc, p.docs)
    {
        cJSON *out = NULL;
        if (entity_temporal(r, t, ent_doc_id(doc), doc, v, &c, &hs[i], &out, &has) != 0)
            goto fail;
        if (out)
            cJSON_AddItemToArray(results, out);
        i++;
    }
    if (!t->aggregated) {
        for (i = 0; i < n; i++)
            cut_at(t, &hs[i], &c);
        i = 0;
        cJSON_ArrayForEach(doc, p.docs)
        {
            cJSON *out = render_history(r, t, ent_doc_id(doc), ent_doc_types(doc), &hs[i]);
            if (out == NULL)
                goto fail;
            cJSON_AddItemToArray(results, out);
            i++;
        }
    }
done:
    api_query_page_headers(r, q, n, count);
    for (i = 0; hs && i < n; i++)
        hist_free(&hs[i]);
    free(hs);
    free(tf.q_attrs);
    cJSON_Delete(p.docs);
    return reply_temporal(r, t, &c, results);
fail:
    for (i = 0; hs && i < n; i++)
        hist_free(&hs[i]);
    free(hs);
    free(tf.q_attrs);
    cJSON_Delete(p.docs);
    cJSON_Delete(results);
    return req_reply_error(r);
}

int api_temporal_query(struct req *r)
{
    struct api_query *q = NULL;
    struct tq t;
    int rc;

    if (api_query_from_params(r, &q) != 0)
        return req_reply_error(r);
    if (tq_from_params(r, &t, api_query_view(q)) != 0) {
        api_query_free(q);
        return req_reply_error(r);
    }
    rc = temporal_many(r, q, &t);
    api_query_free(q);
    return rc;
}

/* POST /temporal/entityOperations/query: a Query object whose temporalQ
 * holds timerel, timeAt, endTimeAt, timeproperty and lastN (lastN also from
 * the query string); options, aggrMethods and aggrPeriodDuration come from
 * the query string. */
int api_temporal_batch_query(struct req *r)
{
    struct api_query *q = NULL;
    cJSON *body = NULL;
    struct tq t;
    int rc;

    if (api_body_json(r, &body) != 0 || api_query_from_body(r, body, &q) != 0)
        goto fail;
    const cJSON *tq = cJSON_GetObjectItemCaseSensitive(body, "temporalQ");
    if (tq && !cJSON_IsObject(tq)) {
        err_set(&r->err, ERR_BAD_DATA, "temporalQ must be an object");
        goto fail;
    }
    const char *member[] = {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"};
    const char *val[5] = {0};
    char last[32] = "";
    for (int i = 0; i < 5; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(tq, member[i]);
        if (m == NULL)
            continue;
        if (i == 4 && cJSON_IsNumber(m)) {
            snprintf(last, sizeof(last), "%.0f", m->valuedouble);
            val[i] = last;
        } else if (cJSON_IsString(m)) {
            val[i] = m->valuestring;
        } else {
            err_set(&r->err, ERR_BAD_DATA, "temporalQ.%s has the wrong type", member[i]);
            goto fail;
        }
    }
    memset(&t, 0, sizeof(t));
    if (tq_window(r, &t, val[0], val[1], val[2], val[3]) != 0 ||
        tq_last_n(r, &t, val[4] ? val[4] : req_query(r, "lastN")) != 0 ||
        tq_datasets(r, &t, req_query(r, "datasetId")) != 0 ||
        tq_finish(r, &t, api_query_view(q)) != 0)
        goto fail;
    rc = temporal_many(r, q, &t);
    api_query_free(q);
    cJSON_Delete(body);
    return rc;
fail:
    api_query_free(q);
    cJSON_Delete(body);
    return req_reply_error(r);
}
