/*
 * hist_read.c - reading the SQLite backend's temporal history: one
 * entity's instances in time order (sq__hist_read) and their aggregation
 * per period (sq__hist_aggr).
 *
 * Readers run on their own connections (sq__reader_db), each read in one
 * snapshot (read_begin). An entity's history is its stored rows (single
 * rows and chunks, hist.c) and the rows it still has pending in hist_log
 * (hist__hpend_load, hist_log.c): a struct hstream walks both, merged in
 * time order, forwards or backwards over a window of observedAt. The index
 * (hk, t, nums) gives the rows in time order either way (lastN reads
 * backwards) and alone serves the aggregation of numbers; bodies are read
 * only where the text is needed. Another timeproperty (createdAt,
 * modifiedAt, deletedAt) reads the entity's whole history and sorts by that
 * member (tp_collect).
 *
 * Nothing here writes, or touches the writer's state (struct sq_hist).
 */
#include "store/sqlite/hist_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/log.h"
#include "util/time.h"

/* ---- reads (reader connections) ------------------------------------------ */

struct akey {
    int64_t aid;
    char *name;
};

static void akeys_free(struct akey *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].name);
    free(k);
}

/* The entity's key and its attributes with history (name order), those of
 * q->attrs only when given. *hk = 0 when it has none. */
static const char akeys_sql[] = "SELECT e.hk, a.aid, a.name, e.merged FROM hist_ents e"
                                " JOIN hist_ent_attrs k ON k.hk = e.hk"
                                " JOIN hist_attrs a ON a.aid = k.aid"
                                " WHERE e.tid = ?1 AND e.eid = ?2 ORDER BY a.name";

static int akeys_load(struct sqlite_be *be, sqlite3 *db, int64_t tid,
                      const struct store_history_query *q, int64_t *hk, int64_t *merged,
                      struct akey **out, size_t *n_out)
{
    sqlite3_stmt *st = sq__reader_stmt(be, akeys_sql);
    struct akey *k = NULL;
    size_t n = 0, cap = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    *hk = 0;
    *merged = 0;
    if (st == NULL)
        return sq__err(db, "history keys");
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, q->entity_id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 2);
        int wanted = q->n_attrs == 0;
        for (size_t i = 0; i < q->n_attrs && !wanted; i++)
            wanted = strcmp(q->attrs[i], name) == 0;
        *hk = sqlite3_column_int64(st, 0);
        *merged = sqlite3_column_int64(st, 3); /* NULL: 0 */
        if (!wanted)
            continue;
        if (n == cap) {
            struct akey *p = realloc(k, (cap = cap ? cap * 2 : 8) * sizeof(*p));
            if (p == NULL)
                goto oom;
            k = p;
        }
        if ((k[n].name = strdup(name)) == NULL)
            goto oom;
        k[n++].aid = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        akeys_free(k, n);
        return sq__err(db, "history keys");
    }
    *out = k;
    *n_out = n;
    return 0;
oom:
    sqlite3_reset(st);
    akeys_free(k, n);
    return ERR_NOMEM;
}

/* ---- reading rows and pending rows in time order ------------------------------ */

/* A walk over an entity's sub-rows of [from, to), forwards or backwards
 * (back), its rows merged with its pending rows. A sub-row it gives is
 * valid until the next call. */
struct hstream {
    sqlite3_stmt *probe, *st;
    const struct hpend *pend;
    struct subv cur;     /* the current row's sub-rows */
    size_t ci;           /* the next of them (counted from the end when back) */
    size_t pi, plo, phi; /* the pending ones of the window: [plo, phi) */
    int back, done;
    int64_t from, to;
};

/* The walks' statements (the reader's, sq__reader_stmt: one of each kind
 * in use at a time; the probe is stepped and reset within hs_start). */
enum hs_kind {
    HS_NUMS, /* forwards, the index only */
    HS_BODY, /* forwards, with the text */
    HS_BACK, /* backwards, with the text */
    HS_FULL, /* as HS_BODY: aggregation's second walk, beside HS_NUMS or HS_BODY */
    N_HS_KINDS
};

#define HS_SQL(cols, order)                                                                        \
    "SELECT rid, t, nums" cols                                                                     \
    " FROM hist_rows WHERE hk = ?1 AND t >= ?2 AND t < ?3 ORDER BY t" order
static const char *const hs_sql[N_HS_KINDS] = {
    [HS_NUMS] = HS_SQL("", ""),
    [HS_BODY] = HS_SQL(", body", ""),
    [HS_BACK] = HS_SQL(", body", " DESC"),
    [HS_FULL] = HS_SQL(", body", "") " -- full", /* another statement than HS_BODY's */
};
#undef HS_SQL

static int hs_prepare(struct hstream *s, struct sqlite_be *be, sqlite3 *db, enum hs_kind kind)
{
    memset(s, 0, sizeof(*s));
    s->back = kind == HS_BACK;
    if ((s->st = sq__reader_stmt(be, hs_sql[kind])) == NULL ||
        (s->probe = sq__reader_stmt(be, hist__hsql[H_ROW_BEFORE])) == NULL)
        return sq__err(db, "history query");
    return 0;
}

static void hs_free(struct hstream *s)
{
    sqlite3_reset(s->st); /* the reader's: kept */
    subv_free(&s->cur);
}

/* Start a walk over entity hk's sub-rows of [from, to). The row before from
 * may reach into the window: when it does, the walk starts at it. */
static int hs_start(struct hstream *s, int64_t hk, int64_t from, int64_t to,
                    const struct hpend *pend)
{
    sqlite3 *db = sqlite3_db_handle(s->st);
    int64_t start = from;
    size_t lo, hi;
    int rc = 0, step;

    sqlite3_reset(s->st);
    s->cur.n = s->ci = 0;
    s->done = 0;
    s->from = from;
    s->to = to;
    if (from > INT64_MIN) {
        sqlite3_bind_int64(s->probe, 1, hk);
        sqlite3_bind_int64(s->probe, 2, from);
        if ((step = sqlite3_step(s->probe)) == SQLITE_ROW) {
            const uint8_t *nums = sqlite3_column_blob(s->probe, 2);
            size_t n = (size_t)sqlite3_column_bytes(s->probe, 2);
            if (n > 0 && nums[0] == CHUNK_MARK) {
                rc = hist__row_subs(sqlite3_column_int64(s->probe, 0),
                                    sqlite3_column_int64(s->probe, 1), nums, n, NULL, 0, &s->cur);
                if (rc == 0 && s->cur.n > 0 && s->cur.v[s->cur.n - 1].t >= from)
                    start = sqlite3_column_int64(s->probe, 1);
                s->cur.n = 0;
            }
        } else if (step != SQLITE_DONE) {
            rc = sq__err(db, "history query");
        }
        sqlite3_reset(s->probe);
        if (rc)
            return rc;
    }
    sqlite3_bind_int64(s->st, 1, hk);
    sqlite3_bind_int64(s->st, 2, start);
    sqlite3_bind_int64(s->st, 3, to);
    s->pend = pend;
    lo = 0;
    hi = pend ? pend->v.n : 0;
    while (lo < hi && pend->v.v[lo].t < from)
        lo++;
    while (hi > lo && pend->v.v[hi - 1].t >= to)
        hi--;
    s->plo = lo;
    s->phi = hi;
    s->pi = s->back ? hi : lo;
    return 0;
}

/* The next sub-row of the rows in the window, or NULL. */
static const struct sub *hs_row_peek(struct hstream *s, int *rc)
{
    for (;;) {
        while (s->ci < s->cur.n) {
            const struct sub *x = &s->cur.v[s->back ? s->cur.n - 1 - s->ci : s->ci];
            if (x->t >= s->from && x->t < s->to)
                return x;
            s->ci++;
        }
        if (s->done)
            return NULL;
        int step = sqlite3_step(s->st);
        if (step != SQLITE_ROW) {
            s->done = 1;
            if (step != SQLITE_DONE)
                *rc = sq__err(sqlite3_db_handle(s->st), "history query");
            return NULL;
        }
        s->cur.n = s->ci = 0;
        int body = sqlite3_column_count(s->st) > 3;
        if ((*rc = hist__row_subs(
                 sqlite3_column_int64(s->st, 0), sqlite3_column_int64(s->st, 1),
                 sqlite3_column_blob(s->st, 2), (size_t)sqlite3_column_bytes(s->st, 2),
                 body ? sqlite3_column_blob(s->st, 3) : NULL,
                 body ? (size_t)sqlite3_column_bytes(s->st, 3) : 0, &s->cur)) != 0) {
            if (*rc == ERR_INTERNAL)
                log_msg(LOG_ERROR, "sqlite: history row %" PRId64 " is damaged",
                        (int64_t)sqlite3_column_int64(s->st, 0));
            s->done = 1;
            return NULL;
        }
    }
}

/* The next sub-row: 1 (in *out), 0 at the end, or an ERR_ code. Of one
 * time, rows come before pending rows (after them backwards). */
static int hs_next(struct hstream *s, struct sub *out)
{
    int rc = 0;
    const struct sub *r = hs_row_peek(s, &rc), *p = NULL;

    if (rc != 0)
        return rc;
    if (s->back ? s->pi > s->plo : s->pi < s->phi)
        p = &s->pend->v.v[s->back ? s->pi - 1 : s->pi];
    if (r != NULL && (p == NULL || (s->back ? r->t > p->t : r->t <= p->t))) {
        *out = *r;
        s->ci++;
        return 1;
    }
    if (p == NULL)
        return 0;
    *out = *p;
    if (s->back)
        s->pi--;
    else
        s->pi++;
    return 1;
}

/* ---- timeproperty createdAt / modifiedAt / deletedAt ------------------- */

/* An instance timed by another member than observedAt. */
struct tp_inst {
    int64_t t, iid;
    int flags;
    double num;
    char *inst;
};

static int tp_cmp(const void *x, const void *y)
{
    const struct tp_inst *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->iid < b->iid ? -1 : a->iid > b->iid;
}

static void tp_free(struct tp_inst *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].inst);
    free(v);
}

/* Is datasetId ds (NULL: the default instances, "@none" in the list)
 * among the query's (GS CIM 009 5.7.3.4)? */
static int ds_listed(const struct store_history_query *q, const char *ds)
{
    if (q->datasets == NULL)
        return 1;
    for (size_t i = 0; i < q->n_datasets; i++)
        if (strcmp(q->datasets[i], ds ? ds : "@none") == 0)
            return 1;
    return 0;
}

/* The same for a stored instance: only those with a datasetId (HF_DS)
 * have their text read for it. */
static int ds_selected(const struct store_history_query *q, int flags, const char *inst,
                       size_t len)
{
    cJSON *j;
    const cJSON *ds;
    int in;

    if (q->datasets == NULL || !(flags & HF_DS))
        return ds_listed(q, NULL);
    if (inst == NULL || (j = cJSON_ParseWithLength(inst, len)) == NULL)
        return 0;
    ds = cJSON_GetObjectItemCaseSensitive(j, "datasetId");
    in = cJSON_IsString(ds) && ds_listed(q, ds->valuestring);
    cJSON_Delete(j);
    return in;
}

/* Every instance of (hk, aid) whose time property lies in the window, in
 * that time's order. The index is by observedAt, so this reads the
 * entity's whole history and parses each instance of the attribute. */
static int tp_collect(struct hstream *hs, const struct hpend *pend, int64_t hk, int64_t aid,
                      const struct store_history_query *q, struct tp_inst **out, size_t *n_out)
{
    static const char *const member[] = {
        [STORE_TP_CREATED] = "createdAt",
        [STORE_TP_MODIFIED] = "modifiedAt",
        [STORE_TP_DELETED] = "deletedAt",
    };
    const char *name =
        q->time_prop > 0 && q->time_prop <= STORE_TP_DELETED ? member[q->time_prop] : "observedAt";
    struct tp_inst *v = NULL;
    size_t n = 0, cap = 0;
    struct sub sb;
    int rc, step = 0;

    *out = NULL;
    *n_out = 0;
    if ((rc = hs_start(hs, hk, INT64_MIN, INT64_MAX, pend)) != 0)
        return rc;
    while (rc == 0 && (step = hs_next(hs, &sb)) == 1) {
        struct hcur c;
        struct hent e;
        int more;
        hcur_sub(&c, &sb);
        while (rc == 0 && (more = hist__hcur_next(&c, &e)) == 1) {
            cJSON *j;
            const cJSON *m;
            int64_t t;
            if (e.aid != aid || !ds_selected(q, e.flags, e.inst, e.inst_len) ||
                (j = cJSON_ParseWithLength(e.inst, e.inst_len)) == NULL)
                continue;
            m = cJSON_GetObjectItemCaseSensitive(j, name);
            if (cJSON_IsString(m) && tm_parse(m->valuestring, &t) == 0 && t >= q->from_ms &&
                t < q->to_ms) {
                if (n == cap) {
                    struct tp_inst *p = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*p));
                    if (p == NULL)
                        rc = ERR_NOMEM;
                    else
                        v = p;
                }
                if (rc == 0) {
                    v[n] = (struct tp_inst){t, e.iid, e.flags, e.num, strdup(e.inst)};
                    rc = v[n++].inst ? 0 : ERR_NOMEM;
                }
            }
            cJSON_Delete(j);
        }
        if (rc == 0 && more < 0)
            rc = ERR_INTERNAL;
    }
    if (rc == 0 && step < 0)
        rc = step;
    if (rc) {
        tp_free(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), tp_cmp);
    *out = v;
    *n_out = n;
    return 0;
}

#define TIES_MAX(n) STORE_TIES_MAX(n) /* store.h */

static int tp_read(struct sqlite_be *be, sqlite3 *db, int64_t hk, const struct hpend *pend,
                   const struct akey *keys, size_t n_keys, const struct store_history_query *q,
                   int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms,
                               const char *inst),
                   void *ud)
{
    struct hstream hs;
    int rc = hs_prepare(&hs, be, db, HS_BODY);

    for (size_t k = 0; rc == 0 && k < n_keys; k++) {
        struct tp_inst *v;
        size_t n, from = 0, to;
        if ((rc = tp_collect(&hs, pend, hk, keys[k].aid, q, &v, &n)) != 0)
            break;
        to = n;
        /* as hist_read: the others of the N-th's time, then one_more */
        if (q->last_n > 0 && n > (size_t)q->last_n) {
            from = n - (size_t)q->last_n;
            while (from > 0 && v[from - 1].t == v[from].t && n - from < TIES_MAX(q->last_n))
                from--;
            if (from > 0 && v[from - 1].t == v[from].t)
                rc = ERR_TOO_MANY; /* the rest of that time would be lost */
            if (q->one_more && from > 0)
                from--;
        } else if (q->last_n <= 0 && q->limit > 0 && n > (size_t)q->limit) {
            to = (size_t)q->limit;
            while (to < n && v[to].t == v[to - 1].t && to < TIES_MAX(q->limit))
                to++;
            if (to < n && v[to].t == v[to - 1].t)
                rc = ERR_TOO_MANY;
            if (q->one_more && to < n)
                to++;
        }
        for (size_t i = from; rc == 0 && i < to; i++)
            if (each(ud, keys[k].name, v[i].iid, v[i].t, v[i].inst))
                rc = 1;
        tp_free(v, n);
    }
    hs_free(&hs);
    return rc == 1 ? 0 : rc;
}

/* Instances kept newest first for last_n, handed over oldest first. */
struct lastn {
    int64_t *iids, *ts;
    char **insts;
    size_t n, cap;
};

static int lastn_add(struct lastn *l, int64_t iid, int64_t t, const char *inst)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 16;
        int64_t *a = realloc(l->iids, c * sizeof(*a));
        if (a == NULL)
            return ERR_NOMEM;
        l->iids = a;
        int64_t *b = realloc(l->ts, c * sizeof(*b));
        if (b == NULL)
            return ERR_NOMEM;
        l->ts = b;
        char **s = realloc(l->insts, c * sizeof(*s));
        if (s == NULL)
            return ERR_NOMEM;
        l->insts = s;
        l->cap = c;
    }
    if ((l->insts[l->n] = strdup(inst)) == NULL)
        return ERR_NOMEM;
    l->iids[l->n] = iid;
    l->ts[l->n++] = t;
    return 0;
}

static void lastn_clear(struct lastn *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->insts[i]);
    l->n = 0;
}

/* History of one entity: per attribute (name order) in time order; with
 * last_n, the newest N of each attribute (read newest first, handed over
 * reversed); else at most q->limit (> 0) oldest. Either way the instances
 * that share the time of the N-th come too (GS CIM 009: lastN counts
 * timestamps; a page never ends between instances of one time), and with
 * q->one_more the next one after them. */
static int
hist_read(struct sqlite_be *be, sqlite3 *db, int64_t tid, const struct store_history_query *q,
          int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms, const char *inst),
          void *ud)
{
    struct hstream hs = {0};
    struct hpend pend = {0};
    struct akey *keys = NULL;
    struct lastn ln = {0};
    size_t n_keys = 0;
    int64_t hk, merged;
    int rc;

    if ((rc = akeys_load(be, db, tid, q, &hk, &merged, &keys, &n_keys)) != 0 || n_keys == 0)
        return rc;
    if ((rc = hist__hpend_load(be, db, hk, merged, &pend)) != 0)
        goto out;
    if (q->time_prop != STORE_TP_OBSERVED) {
        rc = tp_read(be, db, hk, &pend, keys, n_keys, q, each, ud);
        goto out;
    }
    if ((rc = hs_prepare(&hs, be, db, q->last_n > 0 ? HS_BACK : HS_BODY)) != 0)
        goto out;
    for (size_t k = 0; rc == 0 && k < n_keys; k++) {
        long want = q->last_n > 0 ? q->last_n : q->limit > 0 ? q->limit : -1, got = 0;
        int64_t edge = INT64_MIN; /* the time of the want-th */
        int step = 0, past = 0;
        struct sub sb;
        if ((rc = hs_start(&hs, hk, q->from_ms, q->to_ms, &pend)) != 0)
            break;
        lastn_clear(&ln);
#define ROOM(t)                                                                                    \
    (want < 0 || got < want || ((t) == edge && got < (long)TIES_MAX(want)) ||                     \
     (q->one_more && !past))
        while (rc == 0 && (step = hs_next(&hs, &sb)) == 1) {
            int64_t t = sb.t;
            struct hcur c;
            struct hent e;
            int more = 0;
            if (!ROOM(t))
                break;
            hcur_sub(&c, &sb);
            while (rc == 0 && (more = hist__hcur_next(&c, &e)) == 1) {
                if (e.aid != keys[k].aid || !ds_selected(q, e.flags, e.inst, e.inst_len))
                    continue;
                if (want >= 0 && t == edge && got >= (long)TIES_MAX(want)) {
                    rc = ERR_TOO_MANY; /* more of the N-th's time than a page holds */
                    break;
                }
                if (want >= 0 && got >= want &&
                    (t != edge || got >= (long)TIES_MAX(want)) && (!q->one_more || past++))
                    break; /* past the N-th's time, and the one more taken (or not wanted) */
                if (++got == want)
                    edge = t;
                if (q->last_n > 0)
                    rc = lastn_add(&ln, e.iid, t, e.inst);
                else if (each(ud, keys[k].name, e.iid, t, e.inst))
                    rc = 1; /* each() asked to stop */
            }
            if (rc == 0 && more < 0) {
                log_msg(LOG_ERROR, "sqlite: history row of instance %" PRId64 " is damaged",
                        c.rid);
                rc = ERR_INTERNAL;
            }
        }
        if (rc == 0 && step < 0)
            rc = step;
#undef ROOM
        for (size_t i = ln.n; rc == 0 && i-- > 0;)
            if (each(ud, keys[k].name, ln.iids[i], ln.ts[i], ln.insts[i]))
                rc = 1;
    }
    if (rc == 1)
        rc = 0;
out:
    hs_free(&hs);
    hist__hpend_free(&pend);
    akeys_free(keys, n_keys);
    lastn_clear(&ln);
    free(ln.iids);
    free(ln.ts);
    free(ln.insts);
    return rc;
}

/* distinctCount key of an instance: "=" and the JSON of its value member
 * (value, object, languageMap, valueList, json or vocab); NULL when it has
 * none (not counted, like SQL's COUNT(DISTINCT NULL)) or out of memory.
 * Caller frees. */
static char *distinct_of(const cJSON *inst)
{
    static const char *const members[] = {"value",     "object", "languageMap",
                                          "valueList", "json",   "vocab"};
    char *key = NULL;

    for (size_t i = 0; key == NULL && i < sizeof(members) / sizeof(members[0]); i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(inst, members[i]);
        char *text;
        if (m == NULL || (text = cJSON_PrintUnformatted(m)) == NULL)
            continue;
        if ((key = malloc(strlen(text) + 2)) != NULL) {
            key[0] = '=';
            strcpy(key + 1, text);
        }
        cJSON_free(text);
    }
    return key;
}

/* The same from the index: "#" and a number, else the instance's text. */
static char *distinct_key(const struct hent *e)
{
    char *key;
    cJSON *j;

    if (e->flags & HF_NUM) {
        char tmp[40];
        snprintf(tmp, sizeof(tmp), "#%.17g", e->num);
        return strdup(tmp);
    }
    if (e->inst == NULL || (j = cJSON_ParseWithLength(e->inst, e->inst_len)) == NULL)
        return NULL;
    key = distinct_of(j);
    cJSON_Delete(j);
    return key;
}

/* ---- aggregation ---------------------------------------------------------- */

/* Instances folded, in time order, into the periods of one series: an
 * attribute's default instances, or those of one datasetId. */
struct fold {
    const struct store_history_query *q;
    const char *attr;
    char *ds;                /* the series' datasetId (NULL: the default instances) */
    int64_t start;           /* the first period's start (INT64_MIN: the first instance's time) */
    struct store_period per; /* zero: the whole window */
    int64_t k;               /* the current period's number */
    int64_t next_k;          /* the first period not handed over yet */
    int have, want_distinct;
    struct store_aggr a;
    char *smin, *smax;  /* the least / greatest text value of the period (strings, dates) */
    char type[20];      /* the first instance's type (read from its text) */
    struct hmap *seen;  /* distinct values of the current period */
    struct pbuf *out;   /* where finished periods go */
};

/* Finished periods, handed to each() only once the attribute is known to
 * be all numbers without datasetIds (the index alone), or after the slower
 * fold that reads the instances. */
struct pbuf {
    struct store_aggr *a;
    size_t n, cap;
};

static void pbuf_clear(struct pbuf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((char *)b->a[i].dataset_id);
        free((char *)b->a[i].smin);
        free((char *)b->a[i].smax);
    }
    b->n = 0;
}

/* A slot for one more period in the series' output. */
static struct store_aggr *fold_slot(struct fold *f, int *rc)
{
    struct pbuf *b = f->out;
    struct store_aggr *a;

    *rc = 0;
    if (f->per.max > 0 && (long)b->n >= f->per.max) { /* every series of the attribute */
        *rc = ERR_TOO_MANY;
        return NULL;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct store_aggr *p = realloc(b->a, cap * sizeof(*p));
        if (p == NULL) {
            *rc = ERR_NOMEM;
            return NULL;
        }
        b->a = p;
        b->cap = cap;
    }
    a = &b->a[b->n++];
    memset(a, 0, sizeof(*a));
    memcpy(a->type, f->type, sizeof(a->type));
    if (f->ds != NULL && (a->dataset_id = strdup(f->ds)) == NULL) {
        *rc = ERR_NOMEM;
        return NULL;
    }
    return a;
}

/* Hand over the current period (its strings move to out). 0, ERR_NOMEM or
 * ERR_TOO_MANY. */
static int fold_flush(struct fold *f)
{
    struct store_aggr *a;
    const char *ds;
    int rc;

    if (!f->have)
        return 0;
    f->have = 0;
    if (f->seen) {
        f->a.distinct = (long)hmap_count(f->seen);
        hmap_free(f->seen, NULL);
        f->seen = NULL;
    }
    if ((a = fold_slot(f, &rc)) == NULL)
        return rc;
    ds = a->dataset_id;
    *a = f->a;
    memcpy(a->type, f->type, sizeof(a->type));
    a->dataset_id = ds;
    a->smin = f->smin;
    a->smax = f->smax;
    f->smin = f->smax = NULL;
    f->next_k = f->k + 1;
    return 0;
}

/* Start of period k (saturating, so that far-off periods compare right). */
static int64_t period_at(const struct fold *f, int64_t k)
{
    int64_t t = f->start, step;
    if (f->per.months)
        t = tm_add_months(t, k * f->per.months);
    if (__builtin_mul_overflow(k, f->per.ms, &step) || __builtin_add_overflow(t, step, &t))
        return INT64_MAX;
    return t;
}

/* The number of the period holding t (t >= start, and not before the
 * current period: instances come in time order). */
static int64_t period_of(const struct fold *f, int64_t t)
{
    int64_t k;

    if (f->per.months == 0 && f->per.ms == 0)
        return 0;
    if (f->per.months == 0)
        return (t - f->start) / f->per.ms;
    /* months: from a lower bound (31-day months), then step */
    k = (t - f->start) / (f->per.months * 31 * 86400000LL + f->per.ms);
    if (f->have && f->k > k)
        k = f->k;
    while (period_at(f, k + 1) <= t)
        k++;
    return k;
}

/* The periods before `upto` that have no instance (4.5.19: as many
 * elements as there are periods in the time range): count 0, no values. */
static int fold_gap(struct fold *f, int64_t upto)
{
    int rc;
    if (f->per.months == 0 && f->per.ms == 0)
        return 0; /* the whole window is one period */
    for (; f->next_k < upto; f->next_k++) {
        struct store_aggr *a = fold_slot(f, &rc);
        int64_t end = period_at(f, f->next_k + 1);
        if (a == NULL)
            return rc;
        a->start_ms = period_at(f, f->next_k);
        a->end_ms = end > f->q->to_ms ? f->q->to_ms : end;
        a->last_ms = a->start_ms;
    }
    return 0;
}

/* The series is complete: its last period, then the empty ones up to the
 * window's end (when it has one). */
static int fold_end(struct fold *f)
{
    int rc = fold_flush(f);
    if (rc == 0 && f->next_k > 0 && f->q->to_ms != INT64_MAX && f->q->to_ms > f->start &&
        (f->per.months || f->per.ms))
        rc = fold_gap(f, period_of(f, f->q->to_ms - 1) + 1);
    return rc;
}

/* Count an instance at t into its period (flushing the previous one, and
 * handing over the empty ones between). */
static int fold_count(struct fold *f, int64_t t)
{
    int64_t k;
    int rc;

    if (f->start == INT64_MIN)
        f->start = t;
    k = period_of(f, t);
    if (f->have && k != f->k && (rc = fold_flush(f)) != 0)
        return rc;
    if (!f->have && (rc = fold_gap(f, k)) != 0)
        return rc;
    if (!f->have) {
        int whole = f->per.months == 0 && f->per.ms == 0;
        int64_t end = whole ? INT64_MAX : period_at(f, k + 1);
        memset(&f->a, 0, sizeof(f->a));
        f->a.start_ms = period_at(f, k);
        f->a.end_ms = end > f->q->to_ms ? f->q->to_ms : end;
        f->k = k;
        f->have = 1;
    }
    f->a.count++;
    f->a.last_ms = t;
    return 0;
}

static void fold_num(struct fold *f, double v)
{
    if (f->a.n_num == 0 || v < f->a.min)
        f->a.min = v;
    if (f->a.n_num == 0 || v > f->a.max)
        f->a.max = v;
    f->a.sum += v;
    f->a.sumsq += v * v;
    f->a.n_num++;
}

static int fold_text(struct fold *f, const char *v)
{
    char *d;
    if (f->smin == NULL || strcmp(v, f->smin) < 0) {
        if ((d = strdup(v)) == NULL)
            return ERR_NOMEM;
        free(f->smin);
        f->smin = d;
    }
    if (f->smax == NULL || strcmp(v, f->smax) > 0) {
        if ((d = strdup(v)) == NULL)
            return ERR_NOMEM;
        free(f->smax);
        f->smax = d;
    }
    f->a.n_text++;
    return 0;
}

/* Note a distinct value (key is taken). */
static int fold_distinct(struct fold *f, char *key)
{
    int rc;
    if (key == NULL)
        return 0;
    if (f->seen == NULL)
        f->seen = hmap_new(64);
    rc = f->seen == NULL || hmap_put(f->seen, key, (void *)1, NULL) < 0 ? ERR_NOMEM : 0;
    free(key);
    return rc;
}

/* The index's view of an instance: its number (HF_NUM) or nothing. */
static int fold_add(struct fold *f, int64_t t, const struct hent *e)
{
    int rc;

    if (e->flags & HF_DEL)
        return 0; /* a deletion has no value to aggregate */
    if ((rc = fold_count(f, t)) != 0)
        return rc;
    if (e->flags & HF_NUM)
        fold_num(f, e->num);
    return f->want_distinct ? fold_distinct(f, distinct_key(e)) : 0;
}

/* The instance's view (GS CIM 009 4.5.19): numbers as they are, booleans
 * as 1 and 0, arrays (a value or a valueList) by their length; strings, a
 * VocabProperty's vocab and typed literals (DateTime, Date, Time: their
 * @value) compare as text, for min and max; anything else (objects,
 * Relationships, LanguageProperties) only counts. */
static int fold_add_inst(struct fold *f, int64_t t, const cJSON *inst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(inst, "value");
    int rc;

    if (v == NULL)
        v = cJSON_GetObjectItemCaseSensitive(inst, "vocab");
    if (v == NULL)
        v = cJSON_GetObjectItemCaseSensitive(inst, "valueList");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(inst, "type");
    if (f->type[0] == '\0' && cJSON_IsString(type)) /* before the leading empty periods */
        snprintf(f->type, sizeof(f->type), "%s", type->valuestring);
    if ((rc = fold_count(f, t)) != 0)
        return rc;
    if (cJSON_IsNumber(v))
        fold_num(f, v->valuedouble);
    else if (cJSON_IsBool(v))
        fold_num(f, cJSON_IsTrue(v) ? 1 : 0);
    else if (cJSON_IsArray(v))
        fold_num(f, cJSON_GetArraySize(v));
    else if (cJSON_IsString(v))
        rc = fold_text(f, v->valuestring);
    else if (cJSON_IsObject(v) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "@value")))
        rc = fold_text(f, cJSON_GetObjectItemCaseSensitive(v, "@value")->valuestring);
    if (rc == 0 && f->want_distinct)
        rc = fold_distinct(f, distinct_of(inst));
    return rc;
}

/* The series of one attribute: its default instances and each datasetId's,
 * in the order their first instances come. */
struct series {
    struct fold *f;
    size_t n;
};

static void series_clear(struct series *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->f[i].ds);
        free(s->f[i].smin);
        free(s->f[i].smax);
        hmap_free(s->f[i].seen, NULL);
    }
    free(s->f);
    s->f = NULL;
    s->n = 0;
}

/* An attribute aggregated in more series than this is refused (ERR_TOO_MANY):
 * a series is looked up by a walk, and each one is a column of the answer. */
#define SERIES_MAX 256

static struct fold *series_get(struct series *s, const struct fold *proto, const char *ds,
                               int *rc)
{
    struct fold *f;
    *rc = ERR_NOMEM;
    for (size_t i = 0; i < s->n; i++)
        if (ds == NULL ? s->f[i].ds == NULL : s->f[i].ds != NULL && !strcmp(s->f[i].ds, ds))
            return &s->f[i];
    if (s->n >= SERIES_MAX) {
        *rc = ERR_TOO_MANY;
        return NULL;
    }
    if ((f = realloc(s->f, (s->n + 1) * sizeof(*f))) == NULL)
        return NULL;
    s->f = f;
    f = &s->f[s->n];
    *f = *proto;
    if (ds != NULL && (f->ds = strdup(ds)) == NULL)
        return NULL;
    s->n++;
    return f;
}

/* One instance's text into its series. */
static int series_add(struct series *s, const struct fold *proto, int64_t t, int flags,
                      const char *text, size_t len)
{
    cJSON *inst;
    struct fold *f;
    int rc;

    if (flags & HF_DEL)
        return 0;
    if (text == NULL || (inst = cJSON_ParseWithLength(text, len)) == NULL)
        return ERR_INTERNAL;
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
    const char *dsv = cJSON_IsString(ds) ? ds->valuestring : NULL;
    if (!ds_listed(proto->q, dsv))
        rc = 0;
    else if ((f = series_get(s, proto, dsv, &rc)) != NULL)
        rc = fold_add_inst(f, t, inst);
    cJSON_Delete(inst);
    return rc;
}

static int series_flush(struct series *s)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = fold_end(&s->f[i]);
    return rc;
}

/* Aggregation of one entity's history per attribute, series and period.
 * The common case, an attribute of numbers without datasetIds, is a scan of
 * the index (hk, t, nums) in time order folded into periods in C (no sort,
 * no table reads; distinctCount of non-numbers reads the rows). When that
 * scan meets an instance the index cannot value (not a number, or one of
 * a datasetId), the attribute is folded again from the instances' text
 * (fold_add_inst), one series per datasetId. Periods start at q->from_ms,
 * or at the series' first instance when the window is open; every period
 * from there to the window's end is reported (fold_gap: those without
 * instances with count 0), each ending at start + period, clipped to
 * q->to_ms. Another timeproperty than observedAt folds tp_collect's
 * list, from the text. */
static int hist_aggr(struct sqlite_be *be, sqlite3 *db, int64_t tid,
                     const struct store_history_query *q, const struct store_period *period,
                     int want_distinct,
                     int (*each)(void *ud, const char *attr, const struct store_aggr *a), void *ud)
{
    struct hstream idx = {0}, full = {0};
    struct hpend pend = {0};
    struct akey *keys = NULL;
    struct pbuf out = {0};
    size_t n_keys = 0;
    int64_t hk, merged;
    int tp = q->time_prop != STORE_TP_OBSERVED, rc, full_ready = 0;

    if ((rc = akeys_load(be, db, tid, q, &hk, &merged, &keys, &n_keys)) != 0 || n_keys == 0)
        return rc;
    if ((rc = hist__hpend_load(be, db, hk, merged, &pend)) != 0)
        goto out;
    /* the index (nums only) unless distinctCount needs the text */
    if (!tp && (rc = hs_prepare(&idx, be, db, want_distinct ? HS_BODY : HS_NUMS)) != 0)
        goto out;
    for (size_t k = 0; rc == 0 && k < n_keys; k++) {
        struct fold proto = {.q = q,
                             .attr = keys[k].name,
                             .start = q->from_ms,
                             .per = period ? *period : (struct store_period){0, 0, 0},
                             .want_distinct = want_distinct,
                             .out = &out};
        struct series ser = {0};
        int slow = tp || q->datasets != NULL, step = 0, more = 0;
        struct sub sb;

        pbuf_clear(&out);
        if (!tp) { /* the index: numbers of the default instances */
            struct fold f = proto;
            rc = hs_start(&idx, hk, q->from_ms, q->to_ms, &pend);
            while (rc == 0 && !slow && (step = hs_next(&idx, &sb)) == 1) {
                int64_t t = sb.t;
                struct hcur c;
                struct hent e;
                hcur_sub(&c, &sb);
                while (rc == 0 && !slow && (more = hist__hcur_next(&c, &e)) == 1) {
                    if (e.aid != keys[k].aid)
                        continue;
                    if (!(e.flags & HF_DEL) && (e.flags & (HF_DS | HF_NUM)) != HF_NUM)
                        slow = 1;
                    else
                        rc = fold_add(&f, t, &e);
                }
                if (rc == 0 && more < 0)
                    rc = ERR_INTERNAL;
            }
            if (rc == 0 && !slow && step < 0)
                rc = step;
            if (rc == 0 && !slow)
                rc = fold_end(&f);
            hmap_free(f.seen, NULL);
            free(f.smin);
            free(f.smax);
            if (slow)
                pbuf_clear(&out);
        }
        /* the instances' text: prepared the first time an attribute needs it */
        if (rc == 0 && slow && !full_ready && (rc = hs_prepare(&full, be, db, HS_FULL)) == 0)
            full_ready = 1;
        if (rc == 0 && slow && tp) {
            struct tp_inst *v;
            size_t n;
            if ((rc = tp_collect(&full, &pend, hk, keys[k].aid, q, &v, &n)) == 0) {
                for (size_t i = 0; rc == 0 && i < n; i++)
                    rc = series_add(&ser, &proto, v[i].t, v[i].flags, v[i].inst,
                                    strlen(v[i].inst));
                tp_free(v, n);
            }
        } else if (rc == 0 && slow) { /* the instances' text */
            rc = hs_start(&full, hk, q->from_ms, q->to_ms, &pend);
            while (rc == 0 && (step = hs_next(&full, &sb)) == 1) {
                struct hcur c;
                struct hent e;
                hcur_sub(&c, &sb);
                while (rc == 0 && (more = hist__hcur_next(&c, &e)) == 1)
                    if (e.aid == keys[k].aid)
                        rc = series_add(&ser, &proto, sb.t, e.flags, e.inst, e.inst_len);
                if (rc == 0 && more < 0)
                    rc = ERR_INTERNAL;
            }
            if (rc == 0 && step < 0)
                rc = step;
        }
        if (rc == 0 && slow)
            rc = series_flush(&ser);
        series_clear(&ser);
        if (rc == ERR_INTERNAL)
            log_msg(LOG_ERROR, "sqlite: a history row of entity %s is damaged", q->entity_id);
        for (size_t i = 0; rc == 0 && i < out.n; i++)
            if (each(ud, keys[k].name, &out.a[i]))
                rc = 1; /* each() asked to stop */
    }
    if (rc == 1)
        rc = 0;
out:
    pbuf_clear(&out);
    free(out.a);
    hs_free(&idx);
    hs_free(&full);
    hist__hpend_free(&pend);
    akeys_free(keys, n_keys);
    return rc;
}

/* ---- entry points (reader connections) ------------------------------------ */

/* A read of one entity's history is one snapshot: its keys and its rows
 * come from the same state of the database (between them, a writer could
 * delete the entity's history and give its rows to another). */
static int read_begin(sqlite3 *db)
{
    if (db == NULL)
        return ERR_IO;
    return sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                    : sq__err(db, "history read");
}

static void read_end(struct sqlite_be *be, sqlite3 *db)
{
    sq__reader_reset(be); /* none keeps the snapshot */
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

int sq__hist_read(void *arg, int64_t tid, const struct store_history_query *q,
                  int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms,
                              const char *inst),
                  void *ud)
{
    sqlite3 *db = sq__reader_db(arg);
    int rc = read_begin(db);

    if (rc == 0) {
        rc = hist_read(arg, db, tid, q, each, ud);
        read_end(arg, db);
    }
    return rc;
}

int sq__hist_aggr(void *arg, int64_t tid, const struct store_history_query *q,
                  const struct store_period *period, int want_distinct,
                  int (*each)(void *ud, const char *attr, const struct store_aggr *a), void *ud)
{
    sqlite3 *db = sq__reader_db(arg);
    int rc = read_begin(db);

    if (rc == 0) {
        rc = hist_aggr(arg, db, tid, q, period, want_distinct, each, ud);
        read_end(arg, db);
    }
    return rc;
}
