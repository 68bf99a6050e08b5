/*
 * store.h - the store: current entity state, tenants and persisted
 * @contexts, behind one interface with pluggable backends (SQLite now,
 * PostgreSQL later; see store_int.h for the backend ops table).
 *
 * Writes: every write is a struct store_op handed to the single writer
 * thread. The writer takes all queued submissions (up to group_max ops),
 * applies them in one transaction (the merge logic runs there, against the
 * current document, so concurrent updates never lose each other), commits
 * (one fsync for the group with durability=full), publishes change events
 * to the listeners, and only then completes each submission. A completed
 * op with status 0 is durable.
 *
 * Reads: any thread, each with its own backend connection; they never wait
 * for the writer (SQLite WAL).
 *
 * Tenants are names ("" is the default tenant). A tenant exists once
 * something was written to it; reads of an unknown tenant fail with
 * ERR_NO_TENANT.
 */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/err.h"

struct store;
struct q_expr;
struct scopeq;
struct geo_rel;
struct geo_shape;
struct typeq;
struct store_test;

enum { STORE_HISTORY_OBSERVED = 0, STORE_HISTORY_ALL, STORE_HISTORY_OFF };

struct store_config {
    const char *backend;    /* "sqlite" */
    const char *data_dir;   /* created if missing */
    int durability_full;    /* fsync every group commit */
    int history;            /* STORE_HISTORY_* */
    int group_max;          /* most ops per transaction */
    const char *history_max_age; /* default history retention: ISO 8601 duration
                                    ("P30D") or days ("30"); NULL/""/"0" = forever */
    int checkpoint_frames;  /* WAL frames between background checkpoints; 0 =
                               the default (500); tests use small values */
    struct store_test *test; /* unit tests only (store_int.h); NULL everywhere else */
};

/* What the backend's write-ahead log is doing, for operators and tests.
 * Counters run from store_open. */
struct store_stats {
    int64_t wal_frames;      /* frames in the WAL after the last commit */
    int64_t wal_frames_max;  /* most frames it held after any commit */
    uint64_t wal_restarts;   /* times the WAL started over from its beginning */
    uint64_t ckpt_passes;    /* background checkpoint passes */
    uint64_t ckpt_forced;    /* checkpoints the writer had to try itself */
    int ckpt_pending;        /* a background pass is due or running */
};

/* Fill *st; zeros for a backend without a WAL. */
void store_stats(struct store *s, struct store_stats *st);

/* Open the store (runs schema migrations) and start its writer and
 * retention threads. Returns 0 and *out (caller closes with store_close).
 * ERR_BAD_DATA for a bad history_max_age. */
int store_open(const struct store_config *conf, struct store **out, struct err *e);

/* Refuse new writes (ERR_UNAVAILABLE), finish every queued one and stop
 * the writer thread; reads keep working. Idempotent. */
void store_drain(struct store *s);

/* store_drain, then close every connection. */
void store_close(struct store *s);

/* --- writes --------------------------------------------------------- */

enum store_op_kind {
    STORE_CREATE = 1,     /* new entity; ERR_EXISTS if present */
    STORE_UPSERT_REPLACE, /* create, or replace the whole entity */
    STORE_UPSERT_UPDATE,  /* create, or append attributes (overwrite) */
    STORE_REPLACE,        /* PUT /entities/{id}: must exist */
    STORE_APPEND,         /* POST /entities/{id}/attrs (no_overwrite) */
    STORE_UPDATE,         /* PATCH /entities/{id}/attrs */
    STORE_MERGE,          /* PATCH /entities/{id}: merge-patch */
    STORE_ATTR_PATCH,     /* PATCH /entities/{id}/attrs/{attr} */
    STORE_ATTR_REPLACE,   /* PUT /entities/{id}/attrs/{attr} */
    STORE_ATTR_DELETE,    /* DELETE /entities/{id}/attrs/{attr} */
    STORE_DELETE,         /* DELETE /entities/{id} */
    /* temporal writes (GS CIM 009 5.6.11-5.6.16) */
    STORE_TEMPORAL_UPSERT, /* POST /temporal/entities(/{id}/attrs): every instance of
                              `history` appended; `doc` (the newest instance of each
                              attribute and datasetId) merged into the current state where
                              it is not older (observedAt) than what is there; the entity
                              is created when missing unless must_exist */
    STORE_HISTORY_DELETE,  /* DELETE /temporal/entities/{id} (attr_iri NULL: the history
                              and the entity), .../attrs/{attr} (dataset_id, delete_all),
                              .../attrs/{attr}/{instance_id}; ERR_NOT_FOUND if nothing */
    STORE_HISTORY_PATCH,   /* PATCH .../attrs/{attr}/{instance_id}: members of inst
                              replace the stored instance's */
    STORE_SETTLE,          /* write what the backend holds back (history rows waiting
                              to be written together); no entity (store_settle) */
};

/* One write. Inputs are borrowed: the submitter keeps them alive until the
 * submission completes, and the writer may take `doc` apart or store it as
 * is (it is the submitter's to free, but not to read, afterwards). Outputs
 * are filled by the writer. */
struct store_op {
    enum store_op_kind kind;
    const char *tenant;
    const char *entity_id;
    cJSON *doc;             /* entity document or fragment (model/entity.h form) */
    const char *attr_iri;   /* ATTR_* ops */
    const cJSON *inst;      /* ATTR_PATCH / ATTR_REPLACE: one instance */
    const char *dataset_id; /* ATTR_DELETE */
    int delete_all;         /* ATTR_DELETE */
    int no_overwrite;       /* APPEND */
    cJSON *history;         /* TEMPORAL_UPSERT: {attr IRI: [instances]} (storage form, each
                               with observedAt); the writer stamps them in place */
    int64_t instance_id;    /* HISTORY_DELETE / HISTORY_PATCH */
    int must_exist;         /* TEMPORAL_UPSERT */

    /* results */
    struct err err;         /* err.code 0 = applied and durable */
    int created;            /* upserts: 1 if the entity was new */
    cJSON *updated;         /* APPEND/UPDATE/UPSERT_UPDATE: attribute IRIs (writer allocates) */
    cJSON *not_updated;     /* ... [{attributeName, reason}] (writer allocates) */
};

/* Completion callback: runs on the writer thread after the commit (or the
 * failure) of the group. Must not block. */
typedef void (*store_done_fn)(void *ud);

/* Queue n ops as one submission; done(ud) is called once all are settled.
 * The ops array must stay valid until then. Returns ERR_UNAVAILABLE when
 * the store is closing (done is then not called). */
int store_submit(struct store *s, struct store_op *ops, size_t n, store_done_fn done, void *ud);

/* Submit and wait (for callers that may block: startup, tools, tests). */
int store_write(struct store *s, struct store_op *ops, size_t n);
/* Have the writer write what it holds back (history rows waiting to be
 * written together, which readers already see; rows of the settle's own
 * group stay): retention does before a pass; tests that look at the
 * database's rows do too. */
int store_settle(struct store *s);

/* Free what the writer allocated in the results of ops. */
void store_ops_clear(struct store_op *ops, size_t n);

/* --- change events -------------------------------------------------- */

enum store_event_kind { STORE_EV_CREATED = 1, STORE_EV_UPDATED, STORE_EV_DELETED };

struct store_event {
    enum store_event_kind kind;
    const char *tenant;
    const char *entity_id;
    const cJSON *before; /* NULL when created */
    const cJSON *after;  /* NULL when deleted */
    /* The store owns the document (else the submitter does): the listener
     * registered last may take it instead of copying it, by setting the
     * member to NULL (and owns it from then on). Copying a document on the
     * writer thread was a large part of its cost per write. */
    unsigned char before_owned, after_owned;
    /* Length of the document as stored (after, else before), 0 when
     * unknown: listeners size their queues by it without walking the tree. */
    size_t text_len;
    /* When the write happened ("YYYY-MM-DDThh:mm:ss.fffZ", the modifiedAt it
     * gave, a deletion's deletedAt); valid during the listener call. */
    const char *at;
    /* Its group's commit number (store_committed): ordered like the commits. */
    uint64_t seq;
};

/* The number of the last group committed in this process (0 before the
 * first): a write acknowledged before the call has an event seq <= it. Any
 * thread. */
uint64_t store_committed(const struct store *s);

/* Called on the writer thread after each commit with that group's events,
 * in commit order. A listener copies (or, registered last, takes) what it
 * needs into its own bounded queue and returns at once; it must never block
 * the writer. */
typedef void (*store_listener_fn)(void *ud, struct store_event *evs, size_t n);

/* Register a listener (before traffic starts). Up to 16. active (may be
 * NULL: always) is asked on the writer thread before each group whether the
 * listener wants events now (notify: only while subscriptions exist); when
 * no listener does, the writer skips building events, and the copy of every
 * changed document that needs. Must be cheap and never block. */
int store_listen(struct store *s, store_listener_fn fn, int (*active)(void *ud), void *ud);

/* Optionally, per changed entity: whether the listener registered with ud
 * wants the events of an entity with these types (expanded "type" arrays;
 * b may be NULL) in tenant. Asked on the writer thread while active()
 * holds; an entity nobody wants costs no event and no document copy. Must
 * be cheap and never block for long. */
typedef int (*store_wants_fn)(void *ud, const char *tenant, const cJSON *types_a,
                              const cJSON *types_b);
int store_listen_wants(struct store *s, void *ud, store_wants_fn wants);

/* --- reads (any thread) ------------------------------------------------ */

/* The current document of an entity. Caller frees *doc (cJSON_Delete).
 * ERR_NOT_FOUND / ERR_NO_TENANT. */
int store_entity_get(struct store *s, const char *tenant, const char *entity_id,
                     cJSON **doc, struct err *e);

/* An entity selector (POST /entityOperations/query, subscriptions): every
 * member given must hold. */
struct store_selector {
    const char *id;
    const void *id_pattern;    /* compiled regex_t */
    const struct typeq *types; /* expanded */
};

/* A query. Every member is optional (NULL/0 = no restriction); all given
 * restrictions must hold. Borrowed pointers. */
struct store_query {
    const char *tenant;
    const char *const *ids;         /* id in this list */
    size_t n_ids;
    const void *id_pattern;         /* compiled regex_t */
    const struct typeq *types;      /* type selector (expanded IRIs) */
    const char *const *attrs;       /* entity has at least one of these attributes */
    size_t n_attrs;
    const struct q_expr *q;         /* expanded q */
    const struct scopeq *scopeq;    /* scopeQ (query/scopeq.h) */
    const struct geo_rel *georel;   /* with geometry and geoproperty */
    const struct geo_shape *geometry;
    const char *geoproperty;        /* expanded IRI; NULL = location */
    const struct store_selector *sel; /* the entity matches at least one of them */
    size_t n_sel;
    long offset, limit;             /* limit 0 = count only */
    int want_count;
};

/* Run a query: each(ud, doc) for every matching entity in the page, in a
 * stable order (creation order; nearest first for `near`). *count is the
 * number of matches over all pages with want_count; without, it is only
 * known to exceed offset + limit when another page exists. each may return
 * non-zero to stop. */
int store_query(struct store *s, const struct store_query *q,
                int (*each)(void *ud, const cJSON *doc), void *ud, long *count, struct err *e);

/* Does the tenant exist? 1/0 ("" always exists). */
int store_tenant_exists(struct store *s, const char *tenant);

/* Visit every entity of a tenant (types and attributes endpoints).
 * each may return non-zero to stop. */
int store_scan(struct store *s, const char *tenant,
               int (*each)(void *ud, const cJSON *doc), void *ud, struct err *e);

/* --- temporal history ----------------------------------------------------
 * Every attribute instance a write sets (with an observedAt, or all of them
 * with history = all) is appended, in the same transaction, to an
 * append-only history keyed by (tenant, entity, attribute, time). */

struct store_history_query {
    const char *tenant;
    const char *entity_id;
    const char *const *attrs;  /* expanded; NULL = every attribute */
    size_t n_attrs;
    int64_t from_ms, to_ms;    /* time >= from and < to (INT64_MIN / INT64_MAX: open) */
    long last_n;               /* > 0: only the last N instances of each attribute */
    long limit;                /* > 0 (without last_n): only the first N of each attribute */
                               /* (either way with the others of the N-th's time, up to
                                  STORE_TIES_MAX(N) in all: past that, ERR_TOO_MANY) */
    int one_more;              /* with last_n or limit: also the next instance past those,
                                  if any (tells a pager whether there is more) */
    const char *const *datasets; /* only the instances of these datasetIds ("@none": the
                                    default instances); NULL = all */
    size_t n_datasets;
    int time_prop;             /* STORE_TP_*: the instance time the window, order, lastN
                                  and periods use */
};

/* timeproperty (GS CIM 009 4.11): observedAt is the history's own key;
 * createdAt and modifiedAt are read from each instance (a scan of the
 * entity's whole history, so slower); deletedAt: the records of deletions. */
enum { STORE_TP_OBSERVED = 0, STORE_TP_CREATED, STORE_TP_MODIFIED, STORE_TP_DELETED };

/* The most instances a last_n or limit of n reads, with the others of the
 * n-th's time: a page cannot end between instances of one time (the next
 * page starts after it), so a time with more instances than this cannot be
 * paged through and is refused rather than cut. */
#define STORE_TIES_MAX(n) ((size_t)(n) * 2 + 16)

/* each(ud, attr_iri, instance_id, time_ms, instance JSON text) in time order
 * per attribute (attributes in name order; instances with the same time in
 * no particular order). each returns non-zero to stop. ERR_NO_TENANT;
 * ERR_TOO_MANY when an attribute has more instances at the N-th's time
 * than STORE_TIES_MAX(N) lets a page hold. */
int store_history(struct store *s, const struct store_history_query *q,
                  int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms,
                              const char *inst),
                  void *ud, struct err *e);

/* The type array of an entity that is gone, as it was when it was deleted
 * (*types NULL when unknown; caller frees). ERR_NO_TENANT. */
int store_history_types(struct store *s, const char *tenant, const char *eid, cJSON **types,
                        struct err *e);

/* One period of one series of an attribute: its default instances, or
 * those of one datasetId. The numeric members cover the instances with a
 * value that counts as a number (GS CIM 4.5.19: numbers, booleans as 1 and
 * 0, arrays by their length; n_num of them); smin / smax the least and
 * greatest of those with a text value (strings, vocab, DateTime / Date /
 * Time literals; n_text of them); count covers every instance. */
struct store_aggr {
    int64_t start_ms, end_ms;  /* the period [start, end); end INT64_MAX when open */
    int64_t last_ms;           /* time of its newest instance */
    long count, n_num, n_text, distinct;
    double sum, min, max, sumsq;
    const char *smin, *smax;   /* NULL when n_text is 0 */
    const char *dataset_id;    /* NULL: the default instances */
    char type[20];             /* the instances' type when they were read ("" when not:
                                  numbers from the index are a Property's) */
};

/* An aggregation period: calendar months (a duration's years and months)
 * plus a fixed length in ms. Both 0: the whole window. */
struct store_period {
    int64_t months, ms;
    long max; /* > 0: at most this many periods per attribute, over its series
                 (else ERR_TOO_MANY) */
};

/* Aggregate an entity's history (q: entity, attrs, window; last_n and
 * limit ignored) per period (NULL or zero = the whole window): each(ud,
 * attr, aggr) per attribute (name order), series (the default instances or
 * a datasetId's, a->dataset_id, in the order their first instances come) and
 * period (time order within a series; a's strings are valid during the
 * call): every period from the series' first one to the window's end (to
 * its last instance when the window is open above), those without
 * instances too (count 0). More than period->max (> 0) for an attribute
 * (over its series), or too many series: ERR_TOO_MANY.
 * distinct is only computed with want_distinct (it reads every instance).
 * Periods start at q->from_ms, or at the first instance when the window is
 * open below; period k starts k periods after that (calendar months added
 * in UTC, the day clamped to the month's end). ERR_NO_TENANT. */
int store_history_aggregate(struct store *s, const struct store_history_query *q,
                            const struct store_period *period, int want_distinct,
                            int (*each)(void *ud, const char *attr, const struct store_aggr *a),
                            void *ud, struct err *e);

/* Parse a retention or period length: an ISO 8601 duration with fixed
 * units (PnW, PnDTnHnMnS, fractions of seconds; no years or months) or,
 * with allow_days, a bare number of days. ERR_BAD_DATA otherwise. */
int store_duration_parse(const char *text, int allow_days, int64_t *ms);

/* Parse an aggregation period: any ISO 8601 duration PnYnMnWnDTnHnMnS
 * (years and months as calendar units, integers only); zero means the
 * whole window. ERR_BAD_DATA otherwise. */
int store_period_parse(const char *text, struct store_period *p);

/* History retention (GS CIM 009 leaves it to the implementation): a
 * background thread deletes, per tenant, instances older than the
 * tenant's maximum age (its own setting, else the store's default
 * history_max_age), in batches of STORE_EXPIRE_BATCH rows per short
 * transaction, so writes never wait for more than one batch.
 * Set a tenant's maximum age in ms (0 = keep forever, < 0 = back to the
 * default). Stored in the tenant's configuration documents (collection
 * "settings", id "history"); durable when it returns; the thread applies it
 * at once. Any thread. */
#define STORE_EXPIRE_BATCH 1000
int store_history_retention_set(struct store *s, const char *tenant, int64_t max_age_ms);
/* The tenant's effective maximum age in ms (0 = forever) and whether it is
 * the tenant's own setting (*own = 1) or the default. */
int store_history_retention_get(struct store *s, const char *tenant, int64_t *max_age_ms,
                                int *own);
/* Run one retention pass now and wait for it (tests, tools). Returns the
 * number of instances deleted, or a negative ERR_*. */
long store_history_expire_now(struct store *s);

/* --- tenant-scoped configuration documents ------------------------------
 * Small JSON documents the hub keeps per tenant beside the entities:
 * subscriptions, device profiles, devices, partners, templates... One
 * collection name per kind ("subscriptions"). Rare writes: they commit on
 * their own (durable when the call returns), not through the entity writer.
 * Any thread. Keyed by tenant name, so they need no entity in the tenant. */

/* Store (insert or replace) doc id of collection coll. With create_only, an
 * existing id fails with ERR_EXISTS. */
int store_doc_put(struct store *s, const char *tenant, const char *coll, const char *id,
                  const char *json, int create_only);
/* The document's JSON text (caller frees). ERR_NOT_FOUND. */
int store_doc_get(struct store *s, const char *tenant, const char *coll, const char *id,
                  char **json);
/* ERR_NOT_FOUND if absent. */
int store_doc_delete(struct store *s, const char *tenant, const char *coll, const char *id);
/* each(ud, tenant, id, json) for every document of coll, in every tenant
 * (tenant NULL) or one tenant; each returns non-zero to stop. */
int store_doc_each(struct store *s, const char *tenant, const char *coll,
                   int (*each)(void *ud, const char *tenant, const char *id, const char *json),
                   void *ud);

/* --- persisted @context documents (for ld/cache) ----------------------- */
int store_context_put(struct store *s, const char *url, const char *kind, const char *text);
int store_context_delete(struct store *s, const char *url);
/* each(ud, url, kind, text) for every persisted context. */
int store_context_each(struct store *s,
                       void (*each)(void *ud, const char *url, const char *kind, const char *text),
                       void *ud);

#endif
