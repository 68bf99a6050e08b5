/*
 * sqlite_int.h - internals shared by the files of the SQLite backend:
 * sqlite.c (connections, schema, entities, documents) and the temporal
 * history (hist.c, hist_log.c, hist_read.c; their own internals are in
 * hist_int.h). Nothing outside src/store/sqlite/ includes this.
 */
#ifndef PL_SQLITE_INT_H
#define PL_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "store/store_int.h"

struct sq_hist; /* hist_int.h: the writer's history state */

struct sqlite_be {
    char *path;
    int sync_full;
    sqlite3 *w;        /* writer thread only */
    sqlite3_stmt **ws; /* the writer's prepared statements (sqlite.c) */
    sqlite3 *side;     /* context writes, retention, under side_mu */
    pthread_mutex_t side_mu;
    pthread_t ckpt_thread; /* checkpointer */
    int ckpt_started, ckpt_stop;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    /* under ckpt_mu: */
    int ckpt_frames;      /* frames between background passes */
    int ckpt_mark;        /* frames in the WAL when the last pass ended */
    uint64_t ckpt_mark_restarts; /* wal_restarts then */
    int ckpt_running;     /* a pass is running */
    int ckpt_dead;        /* the checkpointer could not open its connection */
    int wal_frames;       /* frames in the WAL after the last commit */
    int wal_frames_max;
    uint64_t wal_restarts, ckpt_passes, ckpt_forced;
    pthread_key_t reader_key;
    pthread_mutex_t readers_mu; /* guards the list of reader connections */
    struct reader *readers;
    struct sq_hist *hist; /* writer only */
    struct store_test *test; /* unit tests' hooks (store_int.h), else NULL */
    /* writer only: the keys w_load read with the document, for the w_update
     * that follows it (one lookup instead of two); loaded_rid 0 = none */
    int64_t loaded_tid, loaded_rid;
    char *loaded_eid, *loaded_types;
    /* and its `box` (v12): 0 unknown (NULL), 1 no location, 2 loaded_box */
    int loaded_box_state;
    double loaded_box[4];
};

/* Log SQLite's message for db and return ERR_IO. */
int sq__err(sqlite3 *db, const char *what);
/* Step once and reset: 0 on DONE or ROW, else the SQLite code. */
int sq__step_done(sqlite3_stmt *st);
/* This thread's reader connection (opened on first use), NULL on failure. */
sqlite3 *sq__reader_db(struct sqlite_be *be);
/* The statement of sql on the calling thread's reader connection, prepared
 * at its first use there and kept (sql is known by its address: a string
 * constant); reset, with its old bindings. The caller resets it when done,
 * never finalizes it; sq__reader_reset resets them all (at the end of a
 * read, so none keeps its snapshot). NULL when it does not prepare. */
sqlite3_stmt *sq__reader_stmt(struct sqlite_be *be, const char *sql);
void sq__reader_reset(struct sqlite_be *be);

/* --- hist.c ------------------------------------------------------------ */

/* Schema migration to v6 (inside migrate()'s transaction): moves v5 rows
 * into the v6 layout, keeping every instanceId. */
int sq__hist_migrate_v6(sqlite3 *db);
/* Writer state: after migration, before the first write; close frees it. */
int sq__hist_open(struct sqlite_be *be);
void sq__hist_close(struct sqlite_be *be);
/* Writer, after BEGIN: a group starts (an error: the pending rows could
 * not be read again after a rollback; no write until they are). */
int sq__hist_begin(struct sqlite_be *be);
/* Writer, before COMMIT: write the buffered rows, the group's log row and
 * the instanceId high-water mark. After a successful COMMIT,
 * sq__hist_committed. */
int sq__hist_flush(struct sqlite_be *be);
void sq__hist_committed(struct sqlite_be *be);
/* Writer, after ROLLBACK: forget buffered rows and cached keys, read the
 * pending rows again from the log. */
void sq__hist_rollback(struct sqlite_be *be);
/* Writer: are rows pending in the log? sq__hist_settle (in a transaction)
 * writes them all as chunks and empties the log. */
int sq__hist_deferred(struct sqlite_be *be);
int sq__hist_settle(struct sqlite_be *be);

int sq__hist_append(void *be, int64_t tid, const char *eid, const char *attr, int64_t t_ms,
                    double num, const char *ds, int deleted, const cJSON *inst);
int sq__hist_delete(void *be, int64_t tid, const char *eid, const char *attr, const char *ds,
                    int all_ds, int64_t iid, long *n);
int sq__hist_get(void *be, int64_t tid, const char *eid, const char *attr, int64_t iid,
                 char **inst);
int sq__hist_set(void *be, int64_t tid, const char *eid, const char *attr, int64_t iid,
                 int64_t t_ms, double num, const char *ds, const char *inst);
int sq__hist_types_set(void *be, int64_t tid, const char *eid, const char *types);
int sq__hist_types(void *be, int64_t tid, const char *eid, char **types);
int sq__hist_expire(void *be, int64_t tid, int64_t before_ms, int64_t *cursor, long max_rows,
                    long *n_deleted);

/* --- hist_read.c ------------------------------------------------------- */

int sq__hist_read(void *be, int64_t tid, const struct store_history_query *q,
                  int (*each)(void *ud, const char *attr, int64_t iid, int64_t t_ms,
                              const char *inst),
                  void *ud);
int sq__hist_aggr(void *be, int64_t tid, const struct store_history_query *q,
                  const struct store_period *period, int want_distinct,
                  int (*each)(void *ud, const char *attr, const struct store_aggr *a), void *ud);

#endif
