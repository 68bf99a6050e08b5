/*
 * store_int.h - what a store backend implements (after sqlite3_vfs): a
 * table of storage primitives. The generic part (store.c) owns the writer
 * thread, group commit, operation semantics (via model/entity.h), query
 * planning and filtering, tenant cache and change events, so a backend only
 * stores and indexes documents.
 *
 * Threads: w_* functions are called only on the writer thread, between
 * w_begin and w_commit/w_rollback. r_* functions are called from any
 * thread; the backend gives each calling thread its own connection.
 */
#ifndef PL_STORE_INT_H
#define PL_STORE_INT_H

#include "store/store.h"

/* How a query's candidates are found (store.c decides, the backend obeys).
 * Candidates are delivered in rowid (creation) order; the generic filter
 * then applies every restriction. */
enum store_plan_kind { PLAN_SCAN = 0, PLAN_IDS, PLAN_TYPES, PLAN_BBOX, PLAN_RIDS };

struct store_plan {
    enum store_plan_kind kind;
    const char *const *names; /* PLAN_IDS: entity ids; PLAN_TYPES: type IRIs */
    int n_names;
    double bbox[4];           /* PLAN_BBOX: min lon, min lat, max lon, max lat */
    const int64_t *rids;      /* PLAN_RIDS: row ids, delivered in this order */
    size_t n_rids;
};

/* each() returns non-zero to stop the scan. */
typedef int (*store_text_fn)(void *ud, const char *text, size_t len);

struct store_backend_ops {
    const char *name;
    int (*open)(const struct store_config *c, void **be, struct err *e);
    void (*close)(void *be);
    void (*stats)(void *be, struct store_stats *st); /* may be NULL */

    int (*w_begin)(void *be);
    int (*w_commit)(void *be);
    void (*w_rollback)(void *be);
    /* Optional. Work the backend deferred (history rows it holds back to
     * write them together): w_deferred says there is some; w_settle does
     * it, between w_begin and w_commit, when the writer has been idle for
     * STORE_SETTLE_MS or is stopping. */
    int (*w_deferred)(void *be);
    int (*w_settle)(void *be);
    /* Tenant id by name; creates it when create != 0 (*created = 1), else
     * ERR_NO_TENANT. */
    int (*w_tenant)(void *be, const char *tenant, int create, int64_t *tid, int *created);
    /* Current document (caller frees), ERR_NOT_FOUND. */
    int (*w_load)(void *be, int64_t tid, const char *id, cJSON **doc);
    /* What a replace needs of the current document without reading it:
     * its createdAt and its ent_attr_sig (*has_sig = 0 when the backend
     * does not have it). ERR_NOT_FOUND. */
    int (*w_peek)(void *be, int64_t tid, const char *id, char created_at[32], uint64_t *sig,
                  int *has_sig);
    /* Store a new entity; ERR_EXISTS if the id is taken. text = doc serialized. */
    int (*w_insert)(void *be, int64_t tid, const cJSON *doc, const char *text);
    /* Replace an existing entity's document, keeping its indexes in step
     * (the backend knows what it indexed). geo = 0: the write did not touch
     * `location`, so its spatial index entry stays as it is. sig: after's
     * ent_attr_sig when the caller has it (NULL: the backend computes it). */
    int (*w_update)(void *be, int64_t tid, const cJSON *after, const char *text, int geo,
                    const uint64_t *sig);
    int (*w_delete)(void *be, int64_t tid, const cJSON *before);
    /* Append one instance to the history. num: the numeric value or NAN;
     * ds: its datasetId or NULL; deleted: it records a deletion (no value,
     * left out of aggregations). inst: the instance (the backend keeps
     * what json_write prints of it, in whatever form it likes). */
    int (*w_history)(void *be, int64_t tid, const char *eid, const char *attr, int64_t t_ms,
                     double num, const char *ds, int deleted, const cJSON *inst);
    /* Delete history rows: the whole entity (attr NULL), one attribute's
     * dataset ds (NULL = default; all_ds: every dataset), or instance iid
     * (> 0). *n = rows deleted (0 is not an error). */
    int (*w_history_delete)(void *be, int64_t tid, const char *eid, const char *attr,
                            const char *ds, int all_ds, int64_t iid, long *n);
    /* The JSON of instance iid of (eid, attr) (caller frees), ERR_NOT_FOUND. */
    int (*w_history_get)(void *be, int64_t tid, const char *eid, const char *attr, int64_t iid,
                         char **inst);
    /* Rewrite instance iid of (eid, attr); ERR_NOT_FOUND. */
    int (*w_history_set)(void *be, int64_t tid, const char *eid, const char *attr, int64_t iid,
                         int64_t t_ms, double num, const char *ds, const char *inst);
    /* Keep the type array (JSON text) of a deleted entity beside its
     * history; nothing when it has none. */
    int (*w_history_types)(void *be, int64_t tid, const char *eid, const char *types);
    int (*w_context_put)(void *be, const char *url, const char *kind, const char *text);
    int (*w_context_delete)(void *be, const char *url);

    /* Configuration documents (store.h), committed on their own. */
    int (*x_doc_put)(void *be, const char *tenant, const char *coll, const char *id,
                     const char *json, int create_only);
    int (*x_doc_get)(void *be, const char *tenant, const char *coll, const char *id, char **json);
    int (*x_doc_delete)(void *be, const char *tenant, const char *coll, const char *id);
    int (*x_doc_each)(void *be, const char *tenant, const char *coll,
                      int (*each)(void *ud, const char *tenant, const char *id, const char *json),
                      void *ud);

    /* ERR_NO_TENANT if unknown. */
    int (*r_tenant)(void *be, const char *tenant, int64_t *tid);
    /* Document text (caller frees), ERR_NOT_FOUND. */
    int (*r_get)(void *be, int64_t tid, const char *id, char **text);
    int (*r_candidates)(void *be, int64_t tid, const struct store_plan *plan, store_text_fn each,
                        void *ud);
    /* The R*Tree boxes (min lon, min lat, max lon, max lat) of the tenant's
     * entities whose `location` box meets bbox. */
    int (*r_boxes)(void *be, int64_t tid, const double bbox[4],
                   void (*each)(void *ud, int64_t rid, const double box[4]), void *ud);
    int (*r_history)(void *be, int64_t tid, const struct store_history_query *q,
                     int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms,
                                 const char *inst),
                     void *ud);
    /* The type array kept by w_history_types (caller frees; NULL when
     * none). */
    int (*r_history_types)(void *be, int64_t tid, const char *eid, char **types);
    /* store_history_aggregate for one entity (see store.h). */
    int (*r_history_aggr)(void *be, int64_t tid, const struct store_history_query *q,
                          const struct store_period *period, int want_distinct,
                          int (*each)(void *ud, const char *attr, const struct store_aggr *a),
                          void *ud);
    /* Every tenant; each returns non-zero to stop. */
    int (*x_tenants)(void *be, int (*each)(void *ud, int64_t tid, const char *name), void *ud);
    /* Retention: in one short transaction of its own, delete up to max_rows
     * history instances of tenant tid timed before before_ms, resuming the
     * walk over its attributes at *cursor (0 = from the start; set to 0
     * when the walk is complete). */
    int (*x_history_expire)(void *be, int64_t tid, int64_t before_ms, int64_t *cursor,
                            long max_rows, long *n_deleted);
    int (*r_contexts)(void *be,
                      void (*each)(void *ud, const char *url, const char *kind, const char *text),
                      void *ud);
};

extern const struct store_backend_ops store_sqlite_ops;

/* ---- test hooks --------------------------------------------------------
 *
 * What a unit test (tests/unit/test_hist_model.c) hands the store in
 * store_config.test to make rare paths of the history happen on demand and
 * to see that they did, as SQLite's test controls and fault injection do.
 * The hub never sets it: every hook is then one NULL test, in store.c and
 * in the SQLite backend (hist.c, hist_log.c), where each is used.
 *
 * Threads: the writer (and the retention thread for expire_cuts) reads and
 * writes the members while the store is open; the test touches them only
 * between its calls that wait for those threads (store_write, store_settle,
 * store_history_expire_now, store_open/close), which order the accesses.
 * No idle settle may be due meanwhile: set no_idle_settle.
 */
struct store_test {
    /* set by the test */
    int no_idle_settle; /* the writer does not settle when idle (store.c) */
    int no_stop_settle; /* nor when it stops (store_drain): pending history rows stay in
                           hist_log, for the next open to read again, as after a kill */
    int fail_flushes;   /* the next N commits fail (counting down; sqlite: in
                           sq__hist_flush, after the group's history work, with ERR_IO
                           as a failing disk would), so their groups roll back */
    /* counted by the SQLite backend: the paths of hist.c and hist_log.c the test took */
    long flushes_failed;    /* commits fail_flushes failed */
    long rebuilds_open;     /* opens that read pending rows back from hist_log */
    long rebuilds_rollback; /* rollbacks that did */
    long settles;           /* settles that had pending rows to write */
    long forced;            /* entities written as their oldest log row passed LOG_GROUPS_MAX */
    long pent_writes;       /* an entity's pending rows written as chunks */
    long chunks;            /* rows of several writes inserted */
    long beside;            /* writes at the time of the entity's last row (of that time
                               alone), written beside it */
    long late;              /* merges with writes at or before the entity's last row */
    long row_rewrites;      /* rows rewritten with the late writes that fall in them */
    long late_beside;       /* runs of late writes put beside rows of their time alone */
    long late_gaps;         /* runs of late writes put in a gap between rows */
    long moves;             /* instances moved to another time (an edit of observedAt) */
    long expire_cuts;       /* chunks retention cut (rows reaching past its limit) */
    long attr_notes;        /* (entity, attribute) pairs looked up in hist_ent_attrs */
    long probes_saved;      /* merges that knew without a probe they come after every row */
    long besides_saved;     /* merges that knew without a probe they go beside the last row */
};

#endif
