/*
 * store.c - the generic store: writer thread with group commit, operation
 * semantics, change events, query planning and filtering, tenant cache.
 * Backends (store_int.h) only keep documents and indexes.
 *
 * Writer: submissions queue under s->mu. The writer thread takes every
 * queued submission up to group_max ops, runs them in one transaction,
 * commits, publishes the group's change events to the listeners, then
 * calls each submission's done callback. An op that fails on its own terms
 * (not found, exists, bad fragment) changes nothing and does not disturb the
 * others; a backend failure rolls the whole group back and fails every op.
 *
 * Reads never touch the writer: the backend gives each thread its own
 * connection, and the tenant cache is behind a rwlock.
 */
#include "store/store_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "ld/ld.h"
#include "model/entity.h"
#include "query/geo.h"
#include "query/q.h"
#include "query/scopeq.h"
#include "query/typeq.h"
#include "util/log.h"
#include "util/time.h"

#define MAX_LISTENERS 16
#define STORE_SETTLE_MS 200 /* idle time before the backend's deferred writes are done */

struct submission {
    struct store_op *ops;
    size_t n;
    store_done_fn done;
    void *ud;
    struct submission *next;
};

struct tenant_entry {
    char *name;
    int64_t id;
};

struct store {
    int settle_fails; /* deferred writes failed this many times in a row (writer) */
    const struct store_backend_ops *be_ops;
    void *be;
    struct store_test *test; /* unit tests' hooks (store_int.h), else NULL */
    int group_max;
    int history; /* STORE_HISTORY_* */

    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct submission *head, *tail;
    int stopping;
    int writer_started;

    store_listener_fn listeners[MAX_LISTENERS];
    void *listener_ud[MAX_LISTENERS];
    int n_listeners;
    int (*listener_active[MAX_LISTENERS])(void *ud);
    store_wants_fn listener_wants[MAX_LISTENERS];
    unsigned char listener_on[MAX_LISTENERS]; /* writer: active in this group */
    int listening;       /* writer only: some listener wants this group's events */
    uint64_t committed;  /* groups committed (atomic; store_committed) */
    int group_listeners; /* writer only: n_listeners when the group began */

    pthread_rwlock_t tlock;
    struct tenant_entry *tenants;
    size_t n_tenants, cap_tenants;

    /* history retention (its own thread) */
    int64_t max_age_ms; /* default; 0 = forever */
    pthread_t retainer;
    int retainer_started;
    pthread_mutex_t ret_mu;
    pthread_cond_t ret_cv;
    int ret_stop;
    long ret_requested, ret_started, ret_done; /* pass generations */
    long ret_deleted;                          /* by the last pass */
};

/* ---- tenant cache ---------------------------------------------------- */

static int tenant_cached(struct store *s, const char *name, int64_t *id)
{
    int found = 0;
    pthread_rwlock_rdlock(&s->tlock);
    for (size_t i = 0; i < s->n_tenants; i++)
        if (strcmp(s->tenants[i].name, name) == 0) {
            *id = s->tenants[i].id;
            found = 1;
            break;
        }
    pthread_rwlock_unlock(&s->tlock);
    return found;
}

static void tenant_remember(struct store *s, const char *name, int64_t id)
{
    int64_t dummy;
    if (tenant_cached(s, name, &dummy))
        return;
    pthread_rwlock_wrlock(&s->tlock);
    if (s->n_tenants == s->cap_tenants) {
        size_t cap = s->cap_tenants ? s->cap_tenants * 2 : 8;
        struct tenant_entry *t = realloc(s->tenants, cap * sizeof(*t));
        if (t == NULL)
            goto out;
        s->tenants = t;
        s->cap_tenants = cap;
    }
    char *copy = strdup(name);
    if (copy) {
        s->tenants[s->n_tenants].name = copy;
        s->tenants[s->n_tenants].id = id;
        s->n_tenants++;
    }
out:
    pthread_rwlock_unlock(&s->tlock);
}

static int tenant_lookup(struct store *s, const char *name, int64_t *id)
{
    int rc;
    if (tenant_cached(s, name, id))
        return 0;
    if ((rc = s->be_ops->r_tenant(s->be, name, id)) == 0)
        tenant_remember(s, name, *id);
    return rc;
}

int store_tenant_exists(struct store *s, const char *tenant)
{
    int64_t id;
    return tenant_lookup(s, tenant ? tenant : "", &id) == 0;
}

/* ---- writer ------------------------------------------------------------ */

struct event_list {
    struct store_event *evs;
    size_t n, cap;
};

/* Record an event; the documents flagged owned are the store's: freed
 * after publishing unless a listener took them (set them to NULL). The
 * others belong to the submitter and live until its completion. */
static void events_add(struct event_list *l, enum store_event_kind kind, const char *tenant,
                       const char *id, cJSON *before, int before_owned, cJSON *after,
                       int after_owned, size_t text_len, const char *at)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct store_event *p = realloc(l->evs, cap * sizeof(*p));
        if (p == NULL) {
            /* listeners count what they miss; the write itself is unaffected */
            if (before_owned)
                cJSON_Delete(before);
            if (after_owned)
                cJSON_Delete(after);
            return;
        }
        l->evs = p;
        l->cap = cap;
    }
    l->evs[l->n++] = (struct store_event){kind,
                                          tenant,
                                          id,
                                          before,
                                          after,
                                          (unsigned char)(before_owned && before),
                                          (unsigned char)(after_owned && after),
                                          text_len,
                                          at,
                                          0 /* seq: set at the commit */};
}

static void events_reset(struct event_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->evs[i].before_owned)
            cJSON_Delete((cJSON *)l->evs[i].before);
        if (l->evs[i].after_owned)
            cJSON_Delete((cJSON *)l->evs[i].after);
    }
    l->n = 0;
}

/* Whether some listener wants the events of an entity of these types
 * (writer; the listeners' active() was asked at the group's start). */
static int wanted(const struct store *s, const char *tenant, const cJSON *a, const cJSON *b)
{
    if (!s->listening)
        return 0;
    for (int i = 0; i < s->group_listeners; i++) {
        store_wants_fn wants = __atomic_load_n(&s->listener_wants[i], __ATOMIC_ACQUIRE);
        if (s->listener_on[i] &&
            (wants == NULL || wants(s->listener_ud[i], tenant ? tenant : "", a, b)))
            return 1;
    }
    return 0;
}

static int creates(enum store_op_kind k)
{
    return k == STORE_CREATE || k == STORE_UPSERT_REPLACE || k == STORE_UPSERT_UPDATE;
}

static const char *op_entity_id(const struct store_op *op)
{
    if (op->entity_id)
        return op->entity_id;
    return op->doc ? ent_doc_id(op->doc) : NULL;
}

static int ensure_lists(struct store_op *op)
{
    if (op->updated == NULL && (op->updated = cJSON_CreateArray()) == NULL)
        return ERR_NOMEM;
    if (op->not_updated == NULL && (op->not_updated = cJSON_CreateArray()) == NULL)
        return ERR_NOMEM;
    return 0;
}

/* Tenants created in the current group: remembered in the cache only once
 * the group has committed. */
struct group_state {
    char *new_tenants[8];
    int64_t new_ids[8];
    int n_new;
    int overflow; /* more new tenants than tracked: cache nothing this group */
};

static int writer_tenant(struct store *s, struct group_state *g, const char *name, int create,
                         int64_t *tid)
{
    int created = 0, rc;
    if (tenant_cached(s, name, tid))
        return 0;
    for (int i = 0; i < g->n_new; i++)
        if (strcmp(g->new_tenants[i], name) == 0) {
            *tid = g->new_ids[i];
            return 0;
        }
    if ((rc = s->be_ops->w_tenant(s->be, name, create, tid, &created)) != 0)
        return rc;
    if (!created) {
        if (!g->overflow)
            tenant_remember(s, name, *tid); /* committed earlier: safe to cache */
    } else if (g->n_new < 8 && (g->new_tenants[g->n_new] = strdup(name)) != NULL) {
        g->new_ids[g->n_new++] = *tid;
    } else {
        g->overflow = 1;
    }
    return 0;
}

/* Append to the history the instances this op wrote (their modifiedAt is
 * this group's `now`) of the attributes it touched: all of them for a
 * create or replace, those of the fragment otherwise. Timed by observedAt,
 * or (history = all) by modifiedAt when there is none. */
static int record_history(struct store *s, int64_t tid, const struct store_op *op, const cJSON *doc,
                          const char *now)
{
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs"), *a, *inst;
    const cJSON *touched = NULL;
    const char *eid = ent_doc_id(doc), *obs_text = NULL;
    int one = op->kind == STORE_ATTR_PATCH || op->kind == STORE_ATTR_REPLACE;
    int64_t obs_t = 0; /* obs_text's time: a device's instances share one observedAt */
    int rc;

    if (s->history == STORE_HISTORY_OFF || eid == NULL || op->kind == STORE_TEMPORAL_UPSERT ||
        op->kind == STORE_ATTR_DELETE)
        return 0; /* a temporal upsert appends its own instances (history_append); a
                     deletion writes no instance (record_deleted notes it) */
    if (!one && !op->created && op->kind != STORE_CREATE && op->kind != STORE_REPLACE &&
        op->kind != STORE_UPSERT_REPLACE)
        touched = cJSON_GetObjectItemCaseSensitive(op->doc, "attrs");
    cJSON_ArrayForEach(a, attrs)
    {
        if (one ? strcmp(a->string, op->attr_iri) != 0
                : touched && !json_member(touched, a->string))
            continue;
        cJSON_ArrayForEach(inst, a)
        {
            const cJSON *mod = NULL, *obs = NULL, *val = NULL, *ds = NULL, *m;
            int64_t t;
            for (m = inst->child; m != NULL; m = m->next) { /* the first of each, in one pass */
                const cJSON **to = NULL;
                switch (m->string ? m->string[0] : 0) {
                case 'm': to = strcmp(m->string, "modifiedAt") == 0 ? &mod : NULL; break;
                case 'o': to = strcmp(m->string, "observedAt") == 0 ? &obs : NULL; break;
                case 'v': to = strcmp(m->string, "value") == 0 ? &val : NULL; break;
                case 'd': to = strcmp(m->string, "datasetId") == 0 ? &ds : NULL; break;
                }
                if (to != NULL && *to == NULL)
                    *to = m;
            }
            if (!cJSON_IsString(mod) || strcmp(mod->valuestring, now) != 0)
                continue;
            if (cJSON_IsString(obs)) {
                if (obs_text != NULL && strcmp(obs->valuestring, obs_text) == 0) {
                    t = obs_t;
                } else {
                    if (tm_parse(obs->valuestring, &t) != 0)
                        continue;
                    obs_text = obs->valuestring;
                    obs_t = t;
                }
            } else if (s->history != STORE_HISTORY_ALL || tm_parse(now, &t) != 0) {
                continue;
            }
            rc = s->be_ops->w_history(s->be, tid, eid, a->string, t,
                                      cJSON_IsNumber(val) ? val->valuedouble : NAN,
                                      cJSON_IsString(ds) ? ds->valuestring : NULL, 0, inst);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Deletions are changes too: each instance of attr that a DELETE of the
 * attribute or of the entity removed is appended to the history as {type,
 * value|object: "urn:ngsi-ld:null", deletedAt, datasetId} at the deletion
 * time, if it was being recorded (history = observed: it had an
 * observedAt; all: always). instances: the attribute's instances before;
 * left: those that remain (NULL: none). A replace records what it drops
 * (record_replaced). */
static int record_deleted(struct store *s, int64_t tid, const char *eid, const char *attr,
                          const cJSON *instances, const cJSON *left, const char *now)
{
    const cJSON *inst;
    int64_t t;

    if (s->history == STORE_HISTORY_OFF || eid == NULL || tm_parse(now, &t) != 0)
        return 0;
    cJSON_ArrayForEach(inst, instances)
    {
        const cJSON *ds = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(inst, "type"), *l;
        int kept = 0, rc;
        cJSON *rec;
        if (s->history == STORE_HISTORY_OBSERVED && !cJSON_HasObjectItem(inst, "observedAt"))
            continue;
        cJSON_ArrayForEach(l, left)
        {
            const cJSON *lds = cJSON_GetObjectItemCaseSensitive(l, "datasetId");
            kept |= cJSON_IsString(ds)
                        ? cJSON_IsString(lds) && !strcmp(ds->valuestring, lds->valuestring)
                        : lds == NULL;
        }
        if (kept)
            continue;
        if ((rec = ent_null_instance(cJSON_IsString(type) ? type->valuestring : NULL)) == NULL)
            return ERR_NOMEM;
        if (cJSON_IsString(ds))
            cJSON_AddStringToObject(rec, "datasetId", ds->valuestring);
        cJSON_AddStringToObject(rec, "deletedAt", now);
        rc = s->be_ops->w_history(s->be, tid, eid, attr, t, NAN,
                                  cJSON_IsString(ds) ? ds->valuestring : NULL, 1, rec);
        cJSON_Delete(rec);
        if (rc)
            return rc;
    }
    return 0;
}

/* A replace deletes the instances of the old document the new one lacks:
 * old_attrs / new_attrs are their "attrs" objects. */
static int record_replaced(struct store *s, int64_t tid, const char *eid, const cJSON *old_attrs,
                           const cJSON *new_attrs, const char *now)
{
    const cJSON *a;
    int rc;
    cJSON_ArrayForEach(a, old_attrs)
    {
        if ((rc = record_deleted(s, tid, eid, a->string, a,
                                 cJSON_GetObjectItemCaseSensitive(new_attrs, a->string), now)) != 0)
            return rc;
    }
    return 0;
}

/* ---- temporal writes ---------------------------------------------------- */

static void set_member(cJSON *o, const char *name, const char *value)
{
    cJSON *v = cJSON_CreateString(value);
    if (v == NULL)
        return;
    if (cJSON_GetObjectItemCaseSensitive(o, name))
        cJSON_ReplaceItemInObjectCaseSensitive(o, name, v);
    else
        cJSON_AddItemToObject(o, name, v);
}

static int instance_time(const cJSON *inst, int64_t *t)
{
    const cJSON *obs = cJSON_GetObjectItemCaseSensitive(inst, "observedAt");
    return cJSON_IsString(obs) && tm_parse(obs->valuestring, t) == 0 ? 0 : ERR_BAD_DATA;
}

/* Write one instance (its row iid when > 0 is rewritten, else appended). */
static int history_put(struct store *s, int64_t tid, const char *eid, const char *attr, int64_t iid,
                       int64_t t, const cJSON *inst)
{
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(inst, "value");
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
    double num = cJSON_IsNumber(val) ? val->valuedouble : NAN;
    const char *dsv = cJSON_IsString(ds) ? ds->valuestring : NULL;
    char *text;
    int rc;

    if (iid <= 0)
        return s->be_ops->w_history(s->be, tid, eid, attr, t, num, dsv, 0, inst);
    if ((text = json_print(inst, NULL)) == NULL)
        return ERR_NOMEM;
    rc = s->be_ops->w_history_set(s->be, tid, eid, attr, iid, t, num, dsv, text);
    free(text);
    return rc;
}

/* TEMPORAL_UPSERT: every instance of history appended (createdAt and
 * modifiedAt = now), whatever the history mode: the caller asked for it. */
static int history_append(struct store *s, int64_t tid, const char *eid, cJSON *history,
                          const char *now)
{
    cJSON *a, *inst;
    int rc;

    cJSON_ArrayForEach(a, history)
    {
        cJSON_ArrayForEach(inst, a)
        {
            int64_t t;
            if (instance_time(inst, &t) != 0)
                continue; /* the API only sends timed instances */
            set_member(inst, "createdAt", now);
            set_member(inst, "modifiedAt", now);
            if ((rc = history_put(s, tid, eid, a->string, 0, t, inst)) != 0)
                return rc;
        }
    }
    return 0;
}

static const char *dataset_of(const cJSON *inst)
{
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(inst, "datasetId");
    return cJSON_IsString(ds) ? ds->valuestring : NULL;
}

/* Drop from frag the instances the current state already has newer
 * (observedAt) for the same attribute and datasetId: a late temporal
 * write extends the history without turning back the current state. */
static void keep_newer(const cJSON *cur, cJSON *frag)
{
    const cJSON *cur_attrs = cJSON_GetObjectItemCaseSensitive(cur, "attrs");
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(frag, "attrs"), *a, *next;

    for (a = attrs ? attrs->child : NULL; a; a = next) {
        const cJSON *have = cJSON_GetObjectItemCaseSensitive(cur_attrs, a->string);
        cJSON *inst, *inext;
        next = a->next;
        for (inst = a->child; inst; inst = inext) {
            const cJSON *old;
            const char *ds = dataset_of(inst);
            int64_t t_new, t_old;
            inext = inst->next;
            cJSON_ArrayForEach(old, have)
            {
                const char *ods = dataset_of(old);
                if ((ds == NULL) != (ods == NULL) || (ds && strcmp(ds, ods) != 0))
                    continue;
                if (instance_time(inst, &t_new) == 0 && instance_time(old, &t_old) == 0 &&
                    t_old > t_new)
                    cJSON_Delete(cJSON_DetachItemViaPointer(a, inst));
                break;
            }
        }
        if (a->child == NULL)
            cJSON_Delete(cJSON_DetachItemViaPointer(attrs, a));
    }
}

static int history_delete(struct store *s, struct store_op *op, int64_t tid, const char *id,
                          const char *now, struct event_list *ev)
{
    cJSON *cur = NULL;
    long n = 0;
    int rc;

    if ((rc = s->be_ops->w_history_delete(s->be, tid, id, op->attr_iri, op->dataset_id,
                                          op->delete_all, op->instance_id, &n)) != 0)
        return rc;
    if (op->attr_iri == NULL) { /* the temporal entity: its history and the entity */
        rc = s->be_ops->w_load(s->be, tid, id, &cur);
        if (rc && rc != ERR_NOT_FOUND)
            return rc;
        if (cur) {
            if ((rc = s->be_ops->w_delete(s->be, tid, cur)) != 0) {
                cJSON_Delete(cur);
                return rc;
            }
            if (wanted(s, op->tenant, ent_doc_types(cur), NULL))
                events_add(ev, STORE_EV_DELETED, op->tenant, ent_doc_id(cur), cur, 1, NULL, 0, 0,
                           now);
            else
                cJSON_Delete(cur);
            return 0;
        }
    }
    if (n == 0)
        err_set(&op->err, ERR_NOT_FOUND,
                op->instance_id > 0 ? "no such instance of %s" : "no history of %s",
                op->attr_iri ? op->attr_iri : id);
    return 0;
}

/* HISTORY_PATCH: the members of op->inst replace the stored instance's
 * (a JSON null removes one); modifiedAt = now. */
static int history_patch(struct store *s, struct store_op *op, int64_t tid, const char *id,
                         const char *now)
{
    char *text = NULL;
    cJSON *inst = NULL;
    const cJSON *m;
    int64_t t;
    int rc;

    rc = s->be_ops->w_history_get(s->be, tid, id, op->attr_iri, op->instance_id, &text);
    if (rc == ERR_NOT_FOUND) {
        err_set(&op->err, ERR_NOT_FOUND, "no instance %lld of %s", (long long)op->instance_id,
                op->attr_iri);
        return 0;
    }
    if (rc == ERR_INTERNAL) { /* its stored row is damaged: this op fails, not the group */
        err_set(&op->err, ERR_INTERNAL, "instance %lld of %s cannot be read from the store",
                (long long)op->instance_id, op->attr_iri);
        return 0;
    }
    if (rc)
        return rc;
    inst = cJSON_Parse(text);
    free(text);
    if (inst == NULL)
        return ERR_INTERNAL;
    cJSON_ArrayForEach(m, op->inst)
    {
        if (!strcmp(m->string, "createdAt") || !strcmp(m->string, "modifiedAt"))
            continue;
        if (cJSON_IsNull(m)) {
            cJSON_DeleteItemFromObjectCaseSensitive(inst, m->string);
            continue;
        }
        cJSON *copy = cJSON_Duplicate(m, 1);
        if (copy == NULL) {
            cJSON_Delete(inst);
            return ERR_NOMEM;
        }
        if (cJSON_GetObjectItemCaseSensitive(inst, m->string))
            cJSON_ReplaceItemInObjectCaseSensitive(inst, m->string, copy);
        else
            cJSON_AddItemToObject(inst, m->string, copy);
    }
    set_member(inst, "modifiedAt", now);
    if (instance_time(inst, &t) != 0) {
        err_set(&op->err, ERR_BAD_DATA, "a temporal instance needs observedAt");
        cJSON_Delete(inst);
        return 0;
    }
    rc = history_put(s, tid, id, op->attr_iri, op->instance_id, t, inst);
    cJSON_Delete(inst);
    return rc;
}

/* Create the entity from op->doc, which the writer takes over in place. */
static int create_entity(struct store *s, struct store_op *op, int64_t tid, const char *now,
                         struct event_list *ev)
{
    cJSON *doc = op->doc;
    char *text;
    size_t text_len;
    int rc;

    ent_stamp_new(doc, now);
    if ((text = json_print(doc, NULL)) == NULL)
        return ERR_NOMEM;
    rc = s->be_ops->w_insert(s->be, tid, doc, text);
    text_len = strlen(text);
    free(text);
    if (rc)
        return rc;
    op->created = 1;
    if ((rc = record_history(s, tid, op, doc, now)) != 0)
        return rc;
    if (op->kind == STORE_UPSERT_UPDATE && ensure_lists(op) == 0) {
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attrs"), *a;
        cJSON_ArrayForEach(a, attrs)
            cJSON_AddItemToArray(op->updated, cJSON_CreateString(a->string));
    }
    if (wanted(s, op->tenant, ent_doc_types(doc), NULL))
        events_add(ev, STORE_EV_CREATED, op->tenant, ent_doc_id(doc), NULL, 0, doc, 0, text_len,
                   now);
    return 0;
}

/* Replace without reading the whole current document: only its createdAt
 * and index keys are needed, and op->doc becomes the new document. Used
 * when nobody listens for the previous document. *done = 0 when the entity
 * does not exist (the caller creates it or fails). */
static int replace_fast(struct store *s, struct store_op *op, int64_t tid, const char *id,
                        const char *now, int *done)
{
    cJSON *doc = op->doc, *old = NULL;
    char created[TM_ISO_LEN], *text = NULL;
    uint64_t sig, new_sig = 0;
    int rc, has_sig, sig_known = 0;

    *done = 0;
    if ((rc = s->be_ops->w_peek(s->be, tid, id, created, &sig, &has_sig)) != 0)
        return rc == ERR_NOT_FOUND ? 0 : rc;
    *done = 1;
    /* with history, what the replace drops is recorded: the old document is
     * read only when its instances are not the new one's */
    if (s->history != STORE_HISTORY_OFF) {
        new_sig = ent_attr_sig(doc); /* stamping below keeps the attributes */
        sig_known = 1;
    }
    if (sig_known && (!has_sig || sig != new_sig) &&
        (rc = s->be_ops->w_load(s->be, tid, id, &old)) != 0) {
        if (rc != ERR_INTERNAL) /* a damaged document: the replace mends it */
            return rc;
        log_msg(LOG_WARN, "store: entity %s: the document replaced did not parse; what the"
                          " replace dropped is not in its history", id);
    }
    if (ent_doc_id(doc) == NULL) { /* a PUT body need not repeat the id */
        cJSON *idv = cJSON_CreateString(id);
        if (idv == NULL || (idv->string = strdup("id")) == NULL) {
            cJSON_Delete(idv);
            return ERR_NOMEM;
        }
        cJSON_InsertItemInArray(doc, 0, idv);
    }
    ent_stamp_new(doc, now);
    if (created[0])
        cJSON_ReplaceItemInObject(doc, "createdAt", cJSON_CreateString(created));
    if ((text = json_print(doc, NULL)) == NULL) {
        cJSON_Delete(old);
        return ERR_NOMEM;
    }
    rc = s->be_ops->w_update(s->be, tid, doc, text, 1, sig_known ? &new_sig : NULL);
    free(text);
    if (rc == 0)
        rc = record_history(s, tid, op, doc, now);
    if (rc == 0 && old != NULL)
        rc = record_replaced(s, tid, id, cJSON_GetObjectItemCaseSensitive(old, "attrs"),
                             cJSON_GetObjectItemCaseSensitive(doc, "attrs"), now);
    cJSON_Delete(old);
    return rc;
}

static int same_member(const cJSON *a, const cJSON *b, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, name);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, name);
    return x == NULL ? y == NULL : y != NULL && cJSON_Compare(x, y, 1);
}

/* Whether op may change the entity's `location` (its spatial index entry):
 * partial writes only when their fragment brings a location whose values
 * differ from cur's (a device that reports its fixed position with every
 * uplink does not touch the index), attribute writes when they are to
 * location. */
static int touches_location(const struct store_op *op, const cJSON *cur)
{
    const cJSON *now, *was, *a, *b;

    switch (op->kind) {
    case STORE_UPSERT_UPDATE:
    case STORE_APPEND:
    case STORE_UPDATE:
    case STORE_MERGE:
    case STORE_TEMPORAL_UPSERT:
        now = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(op->doc, "attrs"),
                                               LD_LOCATION_IRI);
        was = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cur, "attrs"),
                                               LD_LOCATION_IRI);
        if (now == NULL)
            return 0;
        if (!cJSON_IsArray(now) || !cJSON_IsArray(was) ||
            cJSON_GetArraySize(now) != cJSON_GetArraySize(was))
            return 1;
        for (a = now->child, b = was->child; a && b; a = a->next, b = b->next)
            if (!same_member(a, b, "value") || !same_member(a, b, "datasetId"))
                return 1;
        return 0;
    case STORE_ATTR_PATCH:
    case STORE_ATTR_REPLACE:
    case STORE_ATTR_DELETE:
        return op->attr_iri == NULL || strcmp(op->attr_iri, LD_LOCATION_IRI) == 0;
    default: return 1;
    }
}

/* Apply one op to its entity's current document, in place. Returns 0 (the
 * op's own outcome is in op->err) or a backend failure that must roll the
 * group back. The previous document is kept for the change event only when
 * someone listens. */
static int apply_op(struct store *s, struct group_state *g, struct store_op *op, const char *now,
                    struct event_list *ev)
{
    const char *id = op_entity_id(op);
    cJSON *cur = NULL, *before = NULL, *gone = NULL, *replaced = NULL;
    char *text = NULL;
    size_t text_len;
    int64_t tid;
    int rc, done, geo, want;

    if (op->kind == STORE_SETTLE)
        return s->be_ops->w_settle ? s->be_ops->w_settle(s->be) : 0;
    if (id == NULL) {
        err_set(&op->err, ERR_BAD_DATA, "entity id missing");
        return 0;
    }
    rc = writer_tenant(s, g, op->tenant ? op->tenant : "",
                       creates(op->kind) || (op->kind == STORE_TEMPORAL_UPSERT && !op->must_exist),
                       &tid);
    if (rc == ERR_NO_TENANT) {
        if (op->kind == STORE_HISTORY_DELETE || op->kind == STORE_HISTORY_PATCH ||
            op->kind == STORE_TEMPORAL_UPSERT)
            err_set(&op->err, ERR_NOT_FOUND, "entity %s not found", id);
        else
            err_set(&op->err, ERR_NO_TENANT, "tenant '%s' does not exist", op->tenant);
        return 0;
    }
    if (rc)
        return rc;
    if (op->kind == STORE_HISTORY_DELETE)
        return history_delete(s, op, tid, id, now, ev);
    if (op->kind == STORE_HISTORY_PATCH)
        return history_patch(s, op, tid, id, now);

    if ((op->kind == STORE_UPSERT_REPLACE || op->kind == STORE_REPLACE) && !s->listening &&
        cJSON_IsArray(ent_doc_types(op->doc))) {
        if ((rc = replace_fast(s, op, tid, id, now, &done)) != 0 || done)
            return rc;
        if (op->kind == STORE_REPLACE) {
            err_set(&op->err, ERR_NOT_FOUND, "entity %s not found", id);
            return 0;
        }
        return create_entity(s, op, tid, now, ev);
    }

    rc = s->be_ops->w_load(s->be, tid, id, &cur);
    if (rc && rc != ERR_NOT_FOUND)
        return rc;

    if (op->kind == STORE_TEMPORAL_UPSERT) {
        if (cur == NULL && op->must_exist) {
            err_set(&op->err, ERR_NOT_FOUND, "entity %s not found", id);
            return 0;
        }
        if ((rc = history_append(s, tid, id, op->history, now)) != 0) {
            cJSON_Delete(cur);
            return rc;
        }
        if (cur == NULL)
            return create_entity(s, op, tid, now, ev);
        keep_newer(cur, op->doc);
    }
    if (cur == NULL) {
        if (!creates(op->kind)) {
            err_set(&op->err, ERR_NOT_FOUND, "entity %s not found", id);
            return 0;
        }
        return create_entity(s, op, tid, now, ev);
    }

    if (op->kind == STORE_CREATE) {
        err_set(&op->err, ERR_EXISTS, "entity %s already exists", id);
        cJSON_Delete(cur);
        return 0;
    }
    if (op->kind == STORE_DELETE) {
        const cJSON *a;
        if ((rc = s->be_ops->w_delete(s->be, tid, cur)) != 0)
            goto fail;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(cur, "attrs"))
        {
            if ((rc = record_deleted(s, tid, id, a->string, a, NULL, now)) != 0)
                goto fail;
        }
        if (s->history != STORE_HISTORY_OFF && ent_doc_types(cur) != NULL) {
            /* its history still needs a type */
            char *types = json_print(ent_doc_types(cur), NULL);
            rc = types ? s->be_ops->w_history_types(s->be, tid, id, types) : ERR_NOMEM;
            free(types);
            if (rc)
                goto fail;
        }
        if (wanted(s, op->tenant, ent_doc_types(cur), NULL))
            events_add(ev, STORE_EV_DELETED, op->tenant, ent_doc_id(cur), cur, 1, NULL, 0, 0, now);
        else
            cJSON_Delete(cur);
        return 0;
    }
    want = wanted(s, op->tenant, ent_doc_types(cur),
                  op->doc ? cJSON_GetObjectItemCaseSensitive(op->doc, "type") : NULL);
    if (want && (before = cJSON_Duplicate(cur, 1)) == NULL) {
        rc = ERR_NOMEM;
        goto fail;
    }
    geo = touches_location(op, cur); /* before the op changes cur */
    switch (op->kind) {
    case STORE_UPSERT_REPLACE:
    case STORE_REPLACE:
        if (s->history != STORE_HISTORY_OFF) { /* the old attributes, for record_replaced */
            cJSON *attrs = cJSON_GetObjectItemCaseSensitive(cur, "attrs");
            if (attrs != NULL && (replaced = cJSON_CreateObject()) == NULL) {
                rc = ERR_NOMEM;
                break;
            }
            if (attrs != NULL) { /* move the members; ent_replace sets new ones */
                replaced->child = attrs->child;
                attrs->child = NULL;
            }
        }
        rc = ent_replace(cur, op->doc, now);
        break;
    case STORE_UPSERT_UPDATE:
    case STORE_APPEND:
    case STORE_TEMPORAL_UPSERT:
        if ((rc = ensure_lists(op)) == 0)
            rc = ent_append(cur, op->doc, op->kind == STORE_APPEND && op->no_overwrite, now,
                            op->updated, op->not_updated);
        break;
    case STORE_UPDATE:
        if ((rc = ensure_lists(op)) == 0)
            rc = ent_update(cur, op->doc, now, op->updated, op->not_updated);
        break;
    case STORE_MERGE: rc = ent_merge(cur, op->doc, now); break;
    case STORE_ATTR_PATCH: rc = ent_attr_patch(cur, op->attr_iri, op->inst, now, &op->err); break;
    case STORE_ATTR_REPLACE:
        rc = ent_attr_replace(cur, op->attr_iri, op->inst, now, &op->err);
        break;
    case STORE_ATTR_DELETE:
        /* its instances before, for the history's record of the deletion */
        gone = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                   cJSON_GetObjectItemCaseSensitive(cur, "attrs"), op->attr_iri),
                               1);
        rc = ent_attr_delete(cur, op->attr_iri, op->dataset_id, op->delete_all, &op->err);
        if (rc == 0) /* the model leaves the entity's modifiedAt to us */
            cJSON_ReplaceItemInObject(cur, "modifiedAt", cJSON_CreateString(now));
        break;
    default: rc = ERR_INTERNAL;
    }
    if (rc) {
        /* the op's own failure: nothing is written (cur is discarded) */
        err_set(&op->err, rc, "operation failed");
        rc = rc == ERR_NOMEM ? rc : 0;
        goto fail;
    }
    /* an update that reached no attribute changes nothing */
    if ((op->kind == STORE_UPDATE || op->kind == STORE_APPEND) &&
        cJSON_GetArraySize(op->updated) == 0)
        goto fail; /* rc == 0 */
    if ((text = json_print(cur, NULL)) == NULL) {
        rc = ERR_NOMEM;
        goto fail;
    }
    if ((rc = s->be_ops->w_update(s->be, tid, cur, text, geo, NULL)) != 0 ||
        (rc = record_history(s, tid, op, cur, now)) != 0)
        goto fail;
    if (gone != NULL &&
        (rc = record_deleted(s, tid, id, op->attr_iri, gone,
                             cJSON_GetObjectItemCaseSensitive(
                                 cJSON_GetObjectItemCaseSensitive(cur, "attrs"), op->attr_iri),
                             now)) != 0)
        goto fail;
    if (replaced != NULL &&
        (rc = record_replaced(s, tid, id, replaced, cJSON_GetObjectItemCaseSensitive(cur, "attrs"),
                              now)) != 0)
        goto fail;
    cJSON_Delete(gone);
    cJSON_Delete(replaced);
    text_len = strlen(text);
    free(text);
    if (want)
        events_add(ev, STORE_EV_UPDATED, op->tenant, ent_doc_id(cur), before, 1, cur, 1, text_len,
                   now);
    else
        cJSON_Delete(cur);
    return 0;
fail:
    free(text);
    cJSON_Delete(cur);
    cJSON_Delete(before);
    cJSON_Delete(gone);
    cJSON_Delete(replaced);
    return rc;
}

static void run_group(struct store *s, struct submission *group, struct event_list *ev)
{
    struct group_state g = {0};
    char now[TM_ISO_LEN];
    struct submission *sub;
    int rc;

    tm_format(tm_now_ms(), now);
    /* events cost a copy of every changed document: only when wanted */
    s->listening = 0;
    s->group_listeners = __atomic_load_n(&s->n_listeners, __ATOMIC_ACQUIRE);
    for (int i = 0; i < s->group_listeners; i++) {
        s->listener_on[i] =
            s->listener_active[i] == NULL || s->listener_active[i](s->listener_ud[i]);
        s->listening |= s->listener_on[i];
    }
    rc = s->be_ops->w_begin(s->be);
    for (sub = group; rc == 0 && sub; sub = sub->next)
        for (size_t i = 0; rc == 0 && i < sub->n; i++)
            rc = apply_op(s, &g, &sub->ops[i], now, ev);
    if (rc == 0)
        rc = s->be_ops->w_commit(s->be);
    if (rc) {
        s->be_ops->w_rollback(s->be);
        log_msg(LOG_ERROR, "store: group failed (%s), rolled back", err_name(rc));
        events_reset(ev);
        for (sub = group; sub; sub = sub->next)
            for (size_t i = 0; i < sub->n; i++) {
                sub->ops[i].err.code = 0;
                err_set(&sub->ops[i].err, rc == ERR_NOMEM ? ERR_NOMEM : ERR_INTERNAL,
                        "store write failed");
            }
    } else {
        uint64_t seq = __atomic_add_fetch(&s->committed, 1, __ATOMIC_RELEASE);
        for (size_t i = 0; i < ev->n; i++)
            ev->evs[i].seq = seq;
        for (int i = 0; i < g.n_new; i++)
            tenant_remember(s, g.new_tenants[i], g.new_ids[i]);
        if (ev->n && s->listening)
            for (int i = 0; i < s->group_listeners; i++)
                s->listeners[i](s->listener_ud[i], ev->evs, ev->n);
        events_reset(ev);
    }
    for (int i = 0; i < g.n_new; i++)
        free(g.new_tenants[i]);
}

/* The backend's deferred work, in a transaction of its own (writer). A
 * failure is logged once, then retried ever later (writer_main). */
static void run_settle(struct store *s)
{
    int rc = s->be_ops->w_begin(s->be);

    if (rc == 0 && (rc = s->be_ops->w_settle(s->be)) == 0)
        rc = s->be_ops->w_commit(s->be);
    if (rc == 0) {
        if (s->settle_fails)
            log_msg(LOG_INFO, "store: deferred writes done after %d failures", s->settle_fails);
        s->settle_fails = 0;
        return;
    }
    s->be_ops->w_rollback(s->be);
    if (s->settle_fails++ == 0)
        log_msg(LOG_ERROR, "store: deferred writes failed (%s), rolled back; kept for later",
                err_name(rc));
}

static int settle_due(struct store *s)
{
    return s->be_ops->w_deferred != NULL && s->be_ops->w_deferred(s->be);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    struct event_list ev = {0};

    pthread_setname_np(pthread_self(), "pl-writer");

    for (;;) {
        struct submission *group, *last;
        size_t n_ops;

        pthread_mutex_lock(&s->mu);
        while (s->head == NULL && !s->stopping) {
            struct timespec ts;
            if (!settle_due(s) || (s->test && s->test->no_idle_settle)) {
                pthread_cond_wait(&s->cv, &s->mu);
                continue;
            }
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (STORE_SETTLE_MS * 1000000L) << (s->settle_fails < 8 ? s->settle_fails : 8);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
            }
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT && s->head == NULL &&
                !s->stopping) {
                pthread_mutex_unlock(&s->mu);
                run_settle(s);
                pthread_mutex_lock(&s->mu);
            }
        }
        if (s->head == NULL) {
            pthread_mutex_unlock(&s->mu);
            if (settle_due(s) && !(s->test && s->test->no_stop_settle))
                run_settle(s); /* stopping: leave nothing pending */
            break;
        }
        group = last = s->head;
        n_ops = group->n;
        while (last->next && n_ops + last->next->n <= (size_t)s->group_max) {
            last = last->next;
            n_ops += last->n;
        }
        s->head = last->next;
        if (s->head == NULL)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);

        run_group(s, group, &ev);
        while (group) {
            struct submission *next = group->next;
            group->done(group->ud);
            free(group);
            group = next;
        }
    }
    free(ev.evs);
    return NULL;
}

uint64_t store_committed(const struct store *s)
{
    return s ? __atomic_load_n(&s->committed, __ATOMIC_ACQUIRE) : 0;
}

int store_submit(struct store *s, struct store_op *ops, size_t n, store_done_fn done, void *ud)
{
    struct submission *sub = calloc(1, sizeof(*sub));
    if (sub == NULL)
        return ERR_NOMEM;
    sub->ops = ops;
    sub->n = n;
    sub->done = done;
    sub->ud = ud;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        free(sub);
        return ERR_UNAVAILABLE;
    }
    if (s->tail)
        s->tail->next = sub;
    else
        s->head = sub;
    s->tail = sub;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void wake(void *ud)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_settle(struct store *s)
{
    struct store_op op = {.kind = STORE_SETTLE};

    if (s->be_ops->w_settle == NULL)
        return 0;
    int rc = store_write(s, &op, 1);
    return rc ? rc : op.err.code;
}

int store_write(struct store *s, struct store_op *ops, size_t n)
{
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    int rc = store_submit(s, ops, n, wake, &w);
    if (rc)
        return rc;
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return 0;
}

void store_ops_clear(struct store_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(ops[i].updated);
        cJSON_Delete(ops[i].not_updated);
        ops[i].updated = ops[i].not_updated = NULL;
    }
}

/* Registration may happen while the writer runs: a listener's slot is
 * filled before n_listeners counts it (release; the writer reads the count
 * once per group, acquire), and the wants hook is swapped atomically. */
int store_listen_wants(struct store *s, void *ud, store_wants_fn wants)
{
    int rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_listeners; i++)
        if (s->listener_ud[i] == ud) {
            __atomic_store_n(&s->listener_wants[i], wants, __ATOMIC_RELEASE);
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_listen(struct store *s, store_listener_fn fn, int (*active)(void *ud), void *ud)
{
    int n;
    pthread_mutex_lock(&s->mu);
    if ((n = s->n_listeners) == MAX_LISTENERS) {
        pthread_mutex_unlock(&s->mu);
        return ERR_INTERNAL;
    }
    s->listeners[n] = fn;
    s->listener_active[n] = active;
    s->listener_ud[n] = ud;
    __atomic_store_n(&s->n_listeners, n + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void *retainer_main(void *arg);

/* ---- open / close ----------------------------------------------------- */

int store_open(const struct store_config *conf, struct store **out, struct err *e)
{
    struct store *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (s == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (conf->backend && strcmp(conf->backend, "sqlite") != 0) {
        free(s);
        return err_set(e, ERR_INVALID_REQUEST, "unknown store backend '%s'", conf->backend);
    }
    s->be_ops = &store_sqlite_ops;
    s->group_max = conf->group_max > 0 ? conf->group_max : 2048;
    s->history = conf->history;
    s->test = conf->test;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_rwlock_init(&s->tlock, NULL);
    pthread_mutex_init(&s->ret_mu, NULL);
    pthread_cond_init(&s->ret_cv, NULL);
    if (conf->history_max_age && conf->history_max_age[0] &&
        strcmp(conf->history_max_age, "0") != 0 &&
        store_duration_parse(conf->history_max_age, 1, &s->max_age_ms) != 0) {
        rc = err_set(e, ERR_BAD_DATA,
                     "history_max_age '%.64s' is not an ISO 8601 duration (PnDTnHnMnS) or days",
                     conf->history_max_age);
        goto fail;
    }
    if ((rc = s->be_ops->open(conf, &s->be, e)) != 0)
        goto fail;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot start the writer thread");
        goto fail;
    }
    s->writer_started = 1;
    if (pthread_create(&s->retainer, NULL, retainer_main, s) != 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot start the retention thread");
        goto fail;
    }
    s->retainer_started = 1;
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store_stats(struct store *s, struct store_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (s->be_ops->stats)
        s->be_ops->stats(s->be, st);
}

void store_drain(struct store *s)
{
    if (s == NULL || !s->writer_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    s->writer_started = 0;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    if (s->retainer_started) {
        pthread_mutex_lock(&s->ret_mu);
        s->ret_stop = 1;
        pthread_cond_broadcast(&s->ret_cv);
        pthread_mutex_unlock(&s->ret_mu);
        pthread_join(s->retainer, NULL);
        pthread_mutex_lock(&s->ret_mu);
        s->retainer_started = 0;
        pthread_mutex_unlock(&s->ret_mu);
    }
    store_drain(s);
    if (s->be)
        s->be_ops->close(s->be);
    for (size_t i = 0; i < s->n_tenants; i++)
        free(s->tenants[i].name);
    free(s->tenants);
    pthread_rwlock_destroy(&s->tlock);
    pthread_mutex_destroy(&s->ret_mu);
    pthread_cond_destroy(&s->ret_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- reads ------------------------------------------------------------ */

/* A reader op that gives the text kept for an entity id (r_get,
 * r_history_types), in the tenant's namespace. */
static int tenant_text(struct store *s, const char *tenant, const char *id,
                       int (*op)(void *be, int64_t tid, const char *id, char **text), char **text,
                       struct err *e)
{
    int64_t tid;
    int rc;

    *text = NULL;
    if ((rc = tenant_lookup(s, tenant ? tenant : "", &tid)) != 0)
        return err_set(e, rc, "tenant '%s' does not exist", tenant);
    if ((rc = op(s->be, tid, id, text)) != 0)
        return err_set(e, rc, rc == ERR_NOT_FOUND ? "entity %s not found" : "store read failed (%s)",
                       id);
    return 0;
}

int store_entity_get(struct store *s, const char *tenant, const char *entity_id, cJSON **doc,
                     struct err *e)
{
    char *text = NULL;
    int rc;

    *doc = NULL;
    if ((rc = tenant_text(s, tenant, entity_id, s->be_ops->r_get, &text, e)) != 0)
        return rc;
    *doc = cJSON_Parse(text);
    free(text);
    if (*doc == NULL)
        return err_set(e, ERR_INTERNAL, "stored document of %s is corrupt", entity_id);
    return 0;
}

struct query_run {
    const struct store_query *q;
    int (*each)(void *ud, const cJSON *doc);
    void *ud;
    long matched;
    int stopped;
    int done; /* the page is full and no count is wanted: stop reading */
    int bad_doc;
};

static int has_any_attr(const cJSON *doc, const char *const *attrs, size_t n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "attrs");
    for (size_t i = 0; i < n; i++)
        if (cJSON_GetObjectItemCaseSensitive(a, attrs[i]))
            return 1;
    return 0;
}

static int id_listed(const char *id, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

static int geo_ok(const struct store_query *q, const cJSON *doc)
{
    const cJSON *g = ent_doc_geo(doc, q->geoproperty ? q->geoproperty : LD_LOCATION_IRI);
    struct geo_shape *shape = NULL;
    int ok;

    if (g == NULL || geo_parse(g, &shape, NULL) != 0)
        return 0;
    ok = geo_match(q->georel, q->geometry, shape);
    geo_free(shape);
    return ok;
}

static int selector_matches(const struct store_selector *sel, const char *id, const cJSON *doc)
{
    if (sel->id && strcmp(sel->id, id) != 0)
        return 0;
    if (sel->id_pattern && regexec((const regex_t *)sel->id_pattern, id, 0, NULL, 0) != 0)
        return 0;
    return sel->types == NULL || typeq_match(sel->types, doc);
}

/* Every restriction of the query, whatever the plan already guaranteed. */
static int doc_matches(const struct store_query *q, const cJSON *doc)
{
    const char *id = ent_doc_id(doc);
    if (id == NULL)
        return 0;
    if (q->n_sel) {
        size_t i;
        for (i = 0; i < q->n_sel && !selector_matches(&q->sel[i], id, doc); i++)
            ;
        if (i == q->n_sel)
            return 0;
    }
    if (q->n_ids && !id_listed(id, q->ids, q->n_ids))
        return 0;
    if (q->id_pattern && regexec((const regex_t *)q->id_pattern, id, 0, NULL, 0) != 0)
        return 0;
    if (q->types && !typeq_match(q->types, doc))
        return 0;
    if (q->n_attrs && !has_any_attr(doc, q->attrs, q->n_attrs))
        return 0;
    if (q->q && !q_match(q->q, doc))
        return 0;
    if (q->scopeq && !scopeq_match(q->scopeq, cJSON_GetObjectItemCaseSensitive(doc, "scope")))
        return 0;
    if (q->georel && q->geometry && !geo_ok(q, doc))
        return 0;
    return 1;
}

static int on_candidate(void *ud, const char *text, size_t len)
{
    struct query_run *r = ud;
    cJSON *doc = cJSON_ParseWithLength(text, len);
    int stop = 0;

    if (doc == NULL) {
        r->bad_doc++;
        return 0;
    }
    if (doc_matches(r->q, doc)) {
        long idx = r->matched++;
        if (!r->stopped && idx >= r->q->offset && idx < r->q->offset + r->q->limit) {
            if (r->each(r->ud, doc) != 0)
                r->stopped = 1;
        }
        /* without a count, stop as soon as the page is full */
        /* one match past the page tells the caller whether another page exists */
        if (!r->q->want_count && (r->stopped || r->matched > r->q->offset + r->q->limit))
            stop = r->done = 1;
    }
    cJSON_Delete(doc);
    return stop;
}

static void plan_query(const struct store_query *q, struct store_plan *p, const char **names,
                       int cap)
{
    memset(p, 0, sizeof(*p));
    if (q->n_ids) {
        p->kind = PLAN_IDS;
        p->names = q->ids;
        p->n_names = (int)q->n_ids;
        return;
    }
    if (q->georel && q->geometry &&
        (q->geoproperty == NULL || strcmp(q->geoproperty, LD_LOCATION_IRI) == 0) &&
        geo_search_bbox(q->georel, q->geometry, p->bbox)) {
        p->kind = PLAN_BBOX;
        return;
    }
    if (q->types) {
        int n = typeq_index_types(q->types, names, cap);
        if (n > 0) {
            p->kind = PLAN_TYPES;
            p->names = names;
            p->n_names = n;
            return;
        }
    }
    /* selectors: every one names an id -> the ids; every one has a type ->
     * the union of their index types */
    if (q->n_sel && q->n_sel <= (size_t)cap) {
        int all_ids = 1, n = 0;
        for (size_t i = 0; i < q->n_sel; i++)
            all_ids &= q->sel[i].id != NULL;
        if (all_ids) {
            for (size_t i = 0; i < q->n_sel; i++)
                names[n++] = q->sel[i].id;
            p->kind = PLAN_IDS;
            p->names = names;
            p->n_names = n;
            return;
        }
        for (size_t i = 0; i < q->n_sel && n >= 0; i++) {
            int k = q->sel[i].types ? typeq_index_types(q->sel[i].types, names + n, cap - n) : -1;
            n = k < 0 ? -1 : n + k;
        }
        if (n > 0) {
            p->kind = PLAN_TYPES;
            p->names = names;
            p->n_names = n;
            return;
        }
    }
    p->kind = PLAN_SCAN;
}

/* ---- near queries: nearest first ---------------------------------------
 * For `near` around a Point on `location`, the R*Tree boxes give each
 * candidate's distance without reading its document (exact for Point
 * entities, a lower bound for others). The search grows in rings: radius
 * r0 = maxDistance/16, then x4 up to maxDistance; each ring's new
 * candidates (prev < distance <= r) are sorted (distance, then row id) and
 * their documents read in that order. Every candidate of an inner ring is
 * handled before the next ring, so results come out nearest first across
 * rings, and a page of 20 among a million entities reads a few dozen boxes
 * and documents instead of every box within maxDistance. */

struct near_cand {
    double dist;
    int64_t rid;
};

struct near_set {
    struct near_cand *c;
    size_t n, cap;
    double lon, lat, lo, hi; /* keep lo < dist <= hi */
    int oom;
};

static void near_add(void *ud, int64_t rid, const double box[4])
{
    struct near_set *ns = ud;
    double lon = ns->lon < box[0] ? box[0] : ns->lon > box[2] ? box[2] : ns->lon;
    double lat = ns->lat < box[1] ? box[1] : ns->lat > box[3] ? box[3] : ns->lat;
    double d = geo_distance_m(ns->lon, ns->lat, lon, lat);

    if (d <= ns->lo || d > ns->hi)
        return;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 256;
        struct near_cand *p = realloc(ns->c, cap * sizeof(*p));
        if (p == NULL) {
            ns->oom = 1;
            return;
        }
        ns->c = p;
        ns->cap = cap;
    }
    ns->c[ns->n++] = (struct near_cand){d, rid};
}

static int near_cmp(const void *a, const void *b)
{
    const struct near_cand *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return (x->rid > y->rid) - (x->rid < y->rid);
}

/* 1 if the query can be served nearest-first. */
static int near_plannable(const struct store_query *q)
{
    return q->n_ids == 0 && q->n_sel == 0 && q->georel && q->geometry &&
           q->georel->op == GEO_NEAR && q->georel->has_max &&
           geo_shape_kind(q->geometry) == GEO_POINT &&
           (q->geoproperty == NULL || strcmp(q->geoproperty, LD_LOCATION_IRI) == 0);
}

static int query_near(struct store *s, int64_t tid, const struct store_query *q,
                      struct query_run *r)
{
    struct near_set ns = {0};
    double pt[4], bbox[4], max = q->georel->max_distance;
    /* with a count every match within maxDistance is needed: one ring */
    double radius = q->want_count ? max : max / 16;
    int rc = 0;

    geo_bbox(q->geometry, pt);
    ns.lon = pt[0];
    ns.lat = pt[1];
    ns.lo = -1;
    for (;;) {
        struct geo_rel ring = {.op = GEO_NEAR, .has_max = 1, .max_distance = radius};
        ns.n = 0;
        /* rings meet exactly; the last one has a hair of slack (the exact
         * predicate on the document decides) */
        ns.hi = radius >= max ? max * (1 + 1e-9) + 1e-6 : radius;
        if (!geo_search_bbox(&ring, q->geometry, bbox)) {
            rc = ERR_INTERNAL;
            break;
        }
        if ((rc = s->be_ops->r_boxes(s->be, tid, bbox, near_add, &ns)) != 0)
            break;
        if (ns.oom) {
            rc = ERR_NOMEM;
            break;
        }
        if (ns.n > 1) /* qsort(NULL, 0) is undefined */
            qsort(ns.c, ns.n, sizeof(*ns.c), near_cmp);
        for (size_t at = 0; rc == 0 && at < ns.n && !r->done;) {
            int64_t rids[64];
            size_t k = 0;
            while (k < 64 && at < ns.n)
                rids[k++] = ns.c[at++].rid;
            struct store_plan plan = {.kind = PLAN_RIDS, .rids = rids, .n_rids = k};
            rc = s->be_ops->r_candidates(s->be, tid, &plan, on_candidate, r);
        }
        if (rc || r->done || radius >= max)
            break;
        ns.lo = radius;
        radius = radius * 4 < max ? radius * 4 : max;
    }
    free(ns.c);
    return rc;
}

int store_query(struct store *s, const struct store_query *q,
                int (*each)(void *ud, const cJSON *doc), void *ud, long *count, struct err *e)
{
    struct query_run r = {.q = q, .each = each, .ud = ud};
    struct store_plan plan;
    const char *names[64];
    int64_t tid;
    int rc;

    if (count)
        *count = 0;
    if ((rc = tenant_lookup(s, q->tenant ? q->tenant : "", &tid)) != 0)
        return err_set(e, rc, "tenant '%s' does not exist", q->tenant);
    if (near_plannable(q)) {
        rc = query_near(s, tid, q, &r);
    } else {
        plan_query(q, &plan, names, 64);
        rc = s->be_ops->r_candidates(s->be, tid, &plan, on_candidate, &r);
    }
    if (rc)
        return err_set(e, rc, "store query failed");
    if (r.bad_doc)
        log_msg(LOG_ERROR, "store: %d corrupt documents skipped", r.bad_doc);
    if (count)
        *count = r.matched;
    return 0;
}

struct scan_run {
    int (*each)(void *ud, const cJSON *doc);
    void *ud;
};

static int on_scan(void *ud, const char *text, size_t len)
{
    struct scan_run *r = ud;
    cJSON *doc = cJSON_ParseWithLength(text, len);
    int stop = 0;
    if (doc) {
        stop = r->each(r->ud, doc);
        cJSON_Delete(doc);
    }
    return stop;
}

int store_scan(struct store *s, const char *tenant, int (*each)(void *ud, const cJSON *doc),
               void *ud, struct err *e)
{
    struct scan_run r = {each, ud};
    struct store_plan plan = {.kind = PLAN_SCAN};
    int64_t tid;
    int rc;

    if ((rc = tenant_lookup(s, tenant ? tenant : "", &tid)) != 0)
        return err_set(e, rc, "tenant '%s' does not exist", tenant);
    if ((rc = s->be_ops->r_candidates(s->be, tid, &plan, on_scan, &r)) != 0)
        return err_set(e, rc, "store scan failed");
    return 0;
}

/* ---- contexts: rare, small writes; the backend serializes them with its
 * own connection (they do not need the entity writer's group commit). */

int store_context_put(struct store *s, const char *url, const char *kind, const char *text)
{
    return s->be_ops->w_context_put(s->be, url, kind, text);
}

int store_history(struct store *s, const struct store_history_query *q,
                  int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms,
                              const char *inst),
                  void *ud, struct err *e)
{
    int64_t tid;
    int rc;

    if ((rc = tenant_lookup(s, q->tenant ? q->tenant : "", &tid)) != 0)
        return err_set(e, rc, "tenant '%s' does not exist", q->tenant);
    if ((rc = s->be_ops->r_history(s->be, tid, q, each, ud)) == ERR_TOO_MANY)
        return err_set(e, rc,
                       "more instances of an attribute share one time than a page can hold"
                       " (%zu, with lastN or the page size %ld): narrow attrs or the time"
                       " range, or use aggrMethods",
                       STORE_TIES_MAX(q->last_n > 0 ? q->last_n : q->limit),
                       q->last_n > 0 ? q->last_n : q->limit);
    if (rc != 0)
        return err_set(e, rc, "history read failed");
    return 0;
}

int store_history_types(struct store *s, const char *tenant, const char *eid, cJSON **types,
                        struct err *e)
{
    char *text = NULL;
    int rc;

    *types = NULL;
    if ((rc = tenant_text(s, tenant, eid, s->be_ops->r_history_types, &text, e)) != 0)
        return rc;
    if (text != NULL) {
        *types = cJSON_Parse(text);
        free(text);
    }
    return 0;
}

int store_history_aggregate(struct store *s, const struct store_history_query *q,
                            const struct store_period *period, int want_distinct,
                            int (*each)(void *ud, const char *attr, const struct store_aggr *a),
                            void *ud, struct err *e)
{
    int64_t tid;
    int rc;

    if ((rc = tenant_lookup(s, q->tenant ? q->tenant : "", &tid)) != 0)
        return err_set(e, rc, "tenant '%s' does not exist", q->tenant);
    if ((rc = s->be_ops->r_history_aggr(s->be, tid, q, period, want_distinct, each, ud)) != 0)
        return rc == ERR_TOO_MANY
                   ? err_set(e, rc,
                             "an attribute's answer would hold more than %ld aggregation "
                             "periods (over its datasetIds) or too many datasetIds: choose a "
                             "longer aggrPeriodDuration, a shorter range or datasetId=",
                             period ? period->max : 0L)
                   : err_set(e, rc, "history aggregation failed");
    return 0;
}

/* ISO 8601 durations: P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]. Years and
 * months (months != NULL only, else refused: they have no fixed length) go
 * to *months, integers only; the rest to *ms. */
static int duration_parse(const char *text, int allow_days, int64_t *months, int64_t *ms)
{
    const char *p = text;
    double total = 0;
    int in_time = 0, any = 0;

    *ms = 0;
    if (months)
        *months = 0;
    if (text == NULL || *text == '\0')
        return ERR_BAD_DATA;
    if (allow_days && *p != 'P') {
        char *end;
        double days;
        if (*p < '0' || *p > '9')
            return ERR_BAD_DATA;
        days = strtod(p, &end);
        if (*end || days < 0 || days > 1e6)
            return ERR_BAD_DATA;
        *ms = (int64_t)(days * 86400000.0);
        return 0;
    }
    if (*p++ != 'P')
        return ERR_BAD_DATA;
    while (*p) {
        char *end;
        double n, unit;
        if (*p == 'T') {
            if (in_time || p[1] == '\0')
                return ERR_BAD_DATA;
            in_time = 1;
            p++;
            continue;
        }
        if (*p < '0' || *p > '9')
            return ERR_BAD_DATA;
        n = strtod(p, &end);
        if (end == p || n < 0 || n > 1e9)
            return ERR_BAD_DATA;
        if (months && !in_time && (*end == 'Y' || *end == 'M')) {
            for (const char *c = p; c < end; c++)
                if (*c < '0' || *c > '9')
                    return ERR_BAD_DATA;
            *months += (int64_t)n * (*end == 'Y' ? 12 : 1);
            if (*months > 120000)
                return ERR_BAD_DATA;
            any = 1;
            p = end + 1;
            continue;
        }
        switch (*end) {
        case 'W': unit = in_time ? -1 : 7 * 86400e3; break;
        case 'D': unit = in_time ? -1 : 86400e3; break;
        case 'H': unit = in_time ? 3600e3 : -1; break;
        case 'M': unit = in_time ? 60e3 : -1; break; /* months (date part) refused */
        case 'S': unit = in_time ? 1e3 : -1; break;
        default: unit = -1;
        }
        if (unit < 0)
            return ERR_BAD_DATA;
        /* only seconds may have a fraction */
        for (const char *c = p; c < end; c++)
            if ((*c < '0' || *c > '9') && !(*end == 'S' && *c == '.'))
                return ERR_BAD_DATA;
        total += n * unit;
        any = 1;
        p = end + 1;
    }
    if (!any || total > 1e15)
        return ERR_BAD_DATA;
    *ms = (int64_t)(total + 0.5);
    return 0;
}

int store_duration_parse(const char *text, int allow_days, int64_t *ms)
{
    return duration_parse(text, allow_days, NULL, ms);
}

int store_period_parse(const char *text, struct store_period *p)
{
    return duration_parse(text, 0, &p->months, &p->ms);
}

/* ---- retention ----------------------------------------------------------- */

#define SETTINGS_COLL "settings"
#define SETTINGS_HISTORY "history"

int store_history_retention_set(struct store *s, const char *tenant, int64_t max_age_ms)
{
    char json[64];
    int rc;

    if (max_age_ms < 0) {
        rc = store_doc_delete(s, tenant, SETTINGS_COLL, SETTINGS_HISTORY);
        if (rc == ERR_NOT_FOUND)
            rc = 0;
    } else {
        snprintf(json, sizeof(json), "{\"maxAgeMs\":%lld}", (long long)max_age_ms);
        rc = store_doc_put(s, tenant, SETTINGS_COLL, SETTINGS_HISTORY, json, 0);
    }
    if (rc == 0) { /* apply at once */
        pthread_mutex_lock(&s->ret_mu);
        s->ret_requested++;
        pthread_cond_signal(&s->ret_cv);
        pthread_mutex_unlock(&s->ret_mu);
    }
    return rc;
}

int store_history_retention_get(struct store *s, const char *tenant, int64_t *max_age_ms, int *own)
{
    char *json = NULL;
    int rc = store_doc_get(s, tenant, SETTINGS_COLL, SETTINGS_HISTORY, &json);

    *max_age_ms = s->max_age_ms;
    *own = 0;
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    cJSON *doc = cJSON_Parse(json);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "maxAgeMs");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0) {
        *max_age_ms = (int64_t)v->valuedouble;
        *own = 1;
    }
    cJSON_Delete(doc);
    free(json);
    return 0;
}

struct tenant_list {
    int64_t *tids;
    char **names;
    size_t n, cap;
};

static int list_tenant(void *ud, int64_t tid, const char *name)
{
    struct tenant_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int64_t *t = realloc(l->tids, cap * sizeof(*t));
        if (t == NULL)
            return 1;
        l->tids = t;
        char **n = realloc(l->names, cap * sizeof(*n));
        if (n == NULL)
            return 1;
        l->names = n;
        l->cap = cap;
    }
    if ((l->names[l->n] = strdup(name)) == NULL)
        return 1;
    l->tids[l->n++] = tid;
    return 0;
}

static int retainer_stopping(struct store *s)
{
    pthread_mutex_lock(&s->ret_mu);
    int stop = s->ret_stop;
    pthread_mutex_unlock(&s->ret_mu);
    return stop;
}

/* One pass over every tenant; returns the rows deleted and the shortest
 * maximum age seen in *min_age (0 = none). */
static long retention_pass(struct store *s, int64_t *min_age)
{
    struct tenant_list l = {0};
    long total = 0;

    *min_age = 0;
    if (s->be_ops->x_tenants(s->be, list_tenant, &l) != 0)
        log_msg(LOG_WARN, "store: retention: cannot list tenants");
    for (size_t i = 0; i < l.n && !retainer_stopping(s); i++) {
        int64_t age, cursor = 0;
        int own;
        if (store_history_retention_get(s, l.names[i], &age, &own) != 0 || age <= 0)
            continue;
        /* what the writer holds back in place first, so the pass sees it */
        if (*min_age == 0 && store_settle(s) != 0)
            log_msg(LOG_WARN, "store: retention: the writer's pending history rows stay pending");
        if (*min_age == 0 || age < *min_age)
            *min_age = age;
        int64_t before = tm_now_ms() - age;
        do {
            long n = 0;
            if (s->be_ops->x_history_expire(s->be, l.tids[i], before, &cursor, STORE_EXPIRE_BATCH,
                                            &n) != 0) {
                log_msg(LOG_WARN, "store: retention of tenant '%s' failed", l.names[i]);
                break;
            }
            total += n;
            if (cursor)
                sched_yield(); /* let the writer take the lock between batches */
        } while (cursor && !retainer_stopping(s));
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(l.tids);
    if (total)
        log_msg(LOG_INFO, "store: retention deleted %ld history instances", total);
    return total;
}

/* The retention thread: a pass at start, then every tenth of the shortest
 * maximum age (between 250 ms and 10 minutes), and at once on request. */
static void *retainer_main(void *arg)
{
    struct store *s = arg;
    int64_t wait_ms = 0;

    pthread_setname_np(pthread_self(), "pl-retention");
    pthread_mutex_lock(&s->ret_mu);
    while (!s->ret_stop) {
        if (s->ret_started == s->ret_requested && wait_ms > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&s->ret_cv, &s->ret_mu, &ts) != ETIMEDOUT &&
                s->ret_started == s->ret_requested)
                continue; /* spurious, or stopping */
            if (s->ret_stop)
                break;
        }
        long gen = s->ret_requested;
        int64_t min_age;
        s->ret_started = gen;
        pthread_mutex_unlock(&s->ret_mu);
        long n = retention_pass(s, &min_age);
        pthread_mutex_lock(&s->ret_mu);
        s->ret_deleted = n;
        s->ret_done = gen;
        pthread_cond_broadcast(&s->ret_cv);
        wait_ms = min_age ? min_age / 10 : 600000;
        wait_ms = wait_ms < 250 ? 250 : wait_ms > 600000 ? 600000 : wait_ms;
    }
    pthread_mutex_unlock(&s->ret_mu);
    return NULL;
}

long store_history_expire_now(struct store *s)
{
    long n;
    pthread_mutex_lock(&s->ret_mu);
    if (!s->retainer_started) {
        pthread_mutex_unlock(&s->ret_mu);
        return ERR_UNAVAILABLE;
    }
    long gen = ++s->ret_requested;
    pthread_cond_broadcast(&s->ret_cv);
    while (s->ret_done < gen && !s->ret_stop)
        pthread_cond_wait(&s->ret_cv, &s->ret_mu);
    n = s->ret_done >= gen ? s->ret_deleted : ERR_UNAVAILABLE;
    pthread_mutex_unlock(&s->ret_mu);
    return n;
}

int store_doc_put(struct store *s, const char *tenant, const char *coll, const char *id,
                  const char *json, int create_only)
{
    return s->be_ops->x_doc_put(s->be, tenant ? tenant : "", coll, id, json, create_only);
}

int store_doc_get(struct store *s, const char *tenant, const char *coll, const char *id,
                  char **json)
{
    return s->be_ops->x_doc_get(s->be, tenant ? tenant : "", coll, id, json);
}

int store_doc_delete(struct store *s, const char *tenant, const char *coll, const char *id)
{
    return s->be_ops->x_doc_delete(s->be, tenant ? tenant : "", coll, id);
}

int store_doc_each(struct store *s, const char *tenant, const char *coll,
                   int (*each)(void *ud, const char *tenant, const char *id, const char *json),
                   void *ud)
{
    return s->be_ops->x_doc_each(s->be, tenant, coll, each, ud);
}

int store_context_delete(struct store *s, const char *url)
{
    return s->be_ops->w_context_delete(s->be, url);
}

int store_context_each(struct store *s,
                       void (*each)(void *ud, const char *url, const char *kind, const char *text),
                       void *ud)
{
    return s->be_ops->r_contexts(s->be, each, ud);
}
