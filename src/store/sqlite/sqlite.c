/*
 * sqlite.c - the embedded store backend (store_int.h ops over SQLite).
 *
 * One database file, <data>/pilotlight.db, in WAL mode: the writer thread
 * has its own connection; every reader thread gets one lazily (thread-local,
 * closed when the thread ends or the store closes), so reads never wait for
 * the writer. synchronous=NORMAL makes a committed transaction survive a
 * crash of the process (the WAL is in the OS page cache); with
 * durability=full (synchronous=FULL) it also survives a power cut.
 *
 * Schema (versioned in meta.schema_version; migrations[] below run in order
 * in one transaction at open):
 *   tenants(tid, name, created_at)          "" is tenant 1, the default
 *   entities(rid, tid, eid, doc,            doc = entity document (JSON text)
 *            created_at, types, asig, box)  (v2) copies of doc's createdAt and type
 *     unique (tid, eid); index (tid) gives per-tenant creation order     array, (v10)
 *                                           its ent_attr_sig, so a replace needs no
 *                                           JSON parse; (v12) the box entity_geo
 *                                           holds for it (4 doubles; empty: no
 *                                           location; NULL: unknown)
 *
 * Checkpoints run on their own thread and connection (PASSIVE, each time
 * the WAL holds CHECKPOINT_FRAMES more frames than after the last pass),
 * not inside the writer's commit; a complete pass lets the writer's next
 * transaction start the WAL over, and journal_size_limit trims the file. New databases use
 * 8 KiB pages: an expanded entity document is ~2.5 KB, and 4 KiB pages
 * would hold one each.
 *   entity_types(tid, type, rid)            one row per type: the type index
 *   entity_geo rtree(rid, lon, lat bounds,  bbox of the `location` GeoProperty
 *            +tid)                          (v7) with its tenant
 *   contexts(url, kind, body, created_at)   persisted @context documents
 *   docs(tenant, coll, id, body, updated_at) (v3) per-tenant configuration documents
 *   hist_ents, hist_attrs, hist_ent_attrs,  (v6) the temporal history, by entity:
 *   hist_rows                               one row per entity write and time with
 *                                           its instances packed (hist.c has the
 *                                           layout and why). v4 had one wide row per
 *                                           instance, v5 one per instance keyed by
 *                                           entity attribute; (v8) common instances
 *                                           packed instead of JSON; (v9) values as
 *                                           short decimals; (v13) chunks of an
 *                                           entity's writes, and hist_log, the
 *                                           writes waiting to become chunks.
 *
 * History retention (sq__hist_expire) deletes on the side connection in
 * short transactions of at most a batch of rows, so the writer waits at
 * most one such transaction for its lock.
 */
#include "store/sqlite/sqlite_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ld/ld.h"
#include "json/json.h"
#include "model/entity.h"
#include "query/geo.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/time.h"

static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE tenants(tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  created_at TEXT NOT NULL);"
    "INSERT INTO tenants(tid, name, created_at)"
    "  VALUES (1, '', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));"
    "CREATE TABLE entities(rid INTEGER PRIMARY KEY, tid INTEGER NOT NULL,"
    "  eid TEXT NOT NULL, doc TEXT NOT NULL);"
    "CREATE UNIQUE INDEX entities_id ON entities(tid, eid);"
    "CREATE INDEX entities_tenant ON entities(tid);"
    "CREATE TABLE entity_types(tid INTEGER NOT NULL, type TEXT NOT NULL,"
    "  rid INTEGER NOT NULL, PRIMARY KEY(tid, type, rid)) WITHOUT ROWID;"
    "CREATE VIRTUAL TABLE entity_geo USING rtree(rid, min_lon, max_lon, min_lat, max_lat);"
    "CREATE TABLE contexts(url TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,"
    "  created_at TEXT NOT NULL) WITHOUT ROWID;",
    /* 2: createdAt and the type array beside the document */
    "ALTER TABLE entities ADD COLUMN created_at TEXT;"
    "ALTER TABLE entities ADD COLUMN types TEXT;"
    "UPDATE entities SET created_at = json_extract(doc, '$.createdAt'),"
    "  types = json_extract(doc, '$.type');",
    /* 3: configuration documents (subscriptions, device profiles, ...) */
    "CREATE TABLE docs(tenant TEXT NOT NULL, coll TEXT NOT NULL, id TEXT NOT NULL,"
    "  body TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(tenant, coll, id))"
    "  WITHOUT ROWID;",
    /* 4: the temporal history (append-only; iid is the instanceId) */
    "CREATE TABLE history(iid INTEGER PRIMARY KEY, tid INTEGER NOT NULL, eid TEXT NOT NULL,"
    "  attr TEXT NOT NULL, t INTEGER NOT NULL, num REAL, inst TEXT NOT NULL);"
    "CREATE INDEX history_key ON history(tid, eid, attr, t);",
    /* 5: compact history. One key row per (tenant, entity, attribute); the
     * instances refer to it by number, so the one index, (kid, t, num),
     * covers time ranges and numeric aggregation without reading rows.
     * AUTOINCREMENT: an instanceId is never reused after a delete. */
    "CREATE TABLE hist_keys(kid INTEGER PRIMARY KEY, tid INTEGER NOT NULL, eid TEXT NOT NULL,"
    "  attr TEXT NOT NULL);"
    "CREATE UNIQUE INDEX hist_keys_key ON hist_keys(tid, eid, attr);"
    "CREATE TABLE hist(iid INTEGER PRIMARY KEY AUTOINCREMENT, kid INTEGER NOT NULL,"
    "  t INTEGER NOT NULL, num REAL, ds TEXT, inst TEXT NOT NULL);"
    "CREATE INDEX hist_t ON hist(kid, t, num);"
    "INSERT INTO hist_keys(tid, eid, attr) SELECT DISTINCT tid, eid, attr FROM history;"
    "INSERT INTO hist(iid, kid, t, num, ds, inst) SELECT h.iid, k.kid, h.t, h.num,"
    "  json_extract(h.inst, '$.datasetId'), h.inst FROM history h JOIN hist_keys k"
    "  ON k.tid = h.tid AND k.eid = h.eid AND k.attr = h.attr ORDER BY h.iid;"
    "DROP TABLE history;",
    /* 6: history by entity (hist.c): one row per entity write and time,
     * with its instances packed; sq__hist_migrate_v6 moves the v5 rows */
    "CREATE TABLE hist_ents(hk INTEGER PRIMARY KEY AUTOINCREMENT, tid INTEGER NOT NULL,"
    "  eid TEXT NOT NULL);"
    "CREATE UNIQUE INDEX hist_ents_key ON hist_ents(tid, eid);"
    "CREATE TABLE hist_attrs(aid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE hist_ent_attrs(hk INTEGER NOT NULL, aid INTEGER NOT NULL,"
    "  PRIMARY KEY(hk, aid)) WITHOUT ROWID;"
    "CREATE TABLE hist_rows(rid INTEGER PRIMARY KEY, hk INTEGER NOT NULL, t INTEGER NOT NULL,"
    "  nums BLOB NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX hist_rows_t ON hist_rows(hk, t, nums);",
    /* 7: the tenant beside each box, so a geo-query filters candidates by
     * tenant in the R*Tree instead of reading every candidate's entity row
     * (7,850 random row reads for a 500 m circle among 1M entities) */
    "CREATE VIRTUAL TABLE entity_geo7 USING rtree(rid, min_lon, max_lon, min_lat, max_lat,"
    "  +tid);"
    "INSERT INTO entity_geo7(rid, min_lon, max_lon, min_lat, max_lat, tid)"
    "  SELECT g.rid, g.min_lon, g.max_lon, g.min_lat, g.max_lat, e.tid FROM entity_geo g"
    "  JOIN entities e ON e.rid = g.rid;"
    "DROP TABLE entity_geo;"
    "ALTER TABLE entity_geo7 RENAME TO entity_geo;",
    /* 8: hist_rows bodies may hold packed instances (hist.c), which builds
     * before it cannot read: the version bump makes them refuse the file */
    "",
    /* 9: hist_rows nums may hold decimal values (HF_DEC, hist.c): the same */
    "",
    /* 10: which instances each document has (ent_attr_sig), so a replace
     * knows without reading the old document that it drops none; NULL
     * (rows written before) reads the document */
    "ALTER TABLE entities ADD COLUMN asig INTEGER;",
    /* 11: the type array of an entity that was deleted, beside its history
     * (its temporal representation still needs a type) */
    "ALTER TABLE hist_ents ADD COLUMN types TEXT;",
    /* 12: the location's box beside the document (w_update), so a write
     * that keeps the location does not read the R*Tree; NULL = unknown */
    "ALTER TABLE entities ADD COLUMN box BLOB;",
    /* 13: hist_rows may hold chunks of an entity's writes, and the writes
     * waiting to become one are in hist_log (hist_log.c); hist_ents.merged is
     * the group that last made its pending writes chunks */
    ("ALTER TABLE hist_ents ADD COLUMN merged INTEGER;"
     "CREATE TABLE hist_log(gid INTEGER PRIMARY KEY, dir BLOB NOT NULL, rows BLOB NOT NULL);"),
};
/* C steps run after a migration's SQL, in its transaction */
static int (*const migration_fns[])(sqlite3 *db) = {
    [5] = sq__hist_migrate_v6,
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_TENANT_GET,
    W_TENANT_ADD,
    W_LOAD,
    W_PEEK,
    W_INSERT,
    W_KEYS,
    W_UPDATE,
    W_DELETE,
    W_TYPE_ADD,
    W_TYPE_DEL,
    W_GEO_GET,
    W_GEO_ADD,
    W_GEO_DEL,
    N_WSTMT
};

static const char *const wsql[N_WSTMT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_TENANT_GET] = "SELECT tid FROM tenants WHERE name = ?1",
    [W_TENANT_ADD] = "INSERT INTO tenants(name, created_at) VALUES (?1, ?2)",
    [W_LOAD] = "SELECT doc, rid, types, box FROM entities WHERE tid = ?1 AND eid = ?2",
    [W_PEEK] = "SELECT created_at, asig, rid, types, box FROM entities WHERE tid = ?1 AND eid = ?2",
    [W_INSERT] = ("INSERT INTO entities(tid, eid, doc, created_at, types, asig, box)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
    [W_KEYS] = "SELECT rid, types, box FROM entities WHERE tid = ?1 AND eid = ?2",
    [W_UPDATE] = ("UPDATE entities SET doc = ?2, types = ?3, asig = ?4,"
                  " box = CASE WHEN ?6 THEN ?5 ELSE box END WHERE rid = ?1"),
    [W_DELETE] = "DELETE FROM entities WHERE tid = ?1 AND eid = ?2 RETURNING rid",
    [W_TYPE_ADD] = "INSERT OR IGNORE INTO entity_types(tid, type, rid) VALUES (?1, ?2, ?3)",
    [W_TYPE_DEL] = "DELETE FROM entity_types WHERE tid = ?1 AND type = ?2 AND rid = ?3",
    [W_GEO_ADD] = ("INSERT OR REPLACE INTO entity_geo(rid, min_lon, max_lon, min_lat, max_lat, tid)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
    [W_GEO_DEL] = "DELETE FROM entity_geo WHERE rid = ?1",
    [W_GEO_GET] = "SELECT min_lon, max_lon, min_lat, max_lat FROM entity_geo WHERE rid = ?1",
};

enum rstmt { R_TENANT, R_GET, R_SCAN, R_TYPE1, R_BBOX, R_BOXES, R_RID, R_CONTEXTS, N_RSTMT };

static const char *const rsql[N_RSTMT] = {
    [R_TENANT] = "SELECT tid FROM tenants WHERE name = ?1",
    [R_GET] = "SELECT doc FROM entities WHERE tid = ?1 AND eid = ?2",
    [R_SCAN] = "SELECT doc FROM entities WHERE tid = ?1 ORDER BY rid",
    [R_TYPE1] = ("SELECT e.doc FROM entity_types t JOIN entities e ON e.rid = t.rid"
                 " WHERE t.tid = ?1 AND t.type = ?2 ORDER BY t.rid"),
    /* the IN form sorts only rowids (an ephemeral index), never documents */
    [R_BBOX] = ("SELECT doc FROM entities WHERE tid = ?1 AND rid IN (SELECT rid FROM entity_geo"
                " WHERE min_lon <= ?4 AND max_lon >= ?2 AND min_lat <= ?5 AND max_lat >= ?3)"
                " ORDER BY rid"),
    /* the boxes alone: the tenant is an auxiliary column of the R*Tree (v7),
     * so no entity row is read for a candidate */
    [R_BOXES] = ("SELECT rid, min_lon, min_lat, max_lon, max_lat FROM entity_geo WHERE"
                 " min_lon <= ?4 AND max_lon >= ?2 AND min_lat <= ?5 AND max_lat >= ?3"
                 " AND tid = ?1"),
    [R_RID] = "SELECT doc FROM entities WHERE rid = ?2 AND tid = ?1",
    [R_CONTEXTS] = "SELECT url, kind, body FROM contexts ORDER BY created_at",
};

/* The background checkpointer runs every CHECKPOINT_FRAMES new frames, so
 * that when the writer must restart the WAL (CHECKPOINT_FORCE times that)
 * little is left to copy on its thread; 500 instead of 2,000 took the ingest
 * bench from ~6,500 to ~7,900 uplinks/s (~175 -> ~145 us hub CPU each), the
 * writer's own checkpoints having been ~5 % of the hub's CPU. */
#define CHECKPOINT_FRAMES 500 /* ~4 MB of WAL with 8 KiB pages */
#define CHECKPOINT_FORCE 16   /* x CHECKPOINT_FRAMES, ~64 MB: start over */

#define READER_CACHED 16 /* statements sq__reader_stmt keeps per reader */

struct reader {
    struct sqlite_be *be;
    sqlite3 *db;
    sqlite3_stmt *st[N_RSTMT];
    /* sq__reader_stmt's: by the address of their SQL text */
    const char *cached_sql[READER_CACHED];
    sqlite3_stmt *cached[READER_CACHED];
    struct reader *next, *prev;
};

int sq__err(sqlite3 *db, const char *what)
{
    log_msg(LOG_ERROR, "sqlite: %s: %s", what, sqlite3_errmsg(db));
    return ERR_IO;
}

static int open_conn(struct sqlite_be *be, sqlite3 **out, int reader)
{
    sqlite3 *db = NULL;
    char pragmas[384];
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

    if (sqlite3_open_v2(be->path, &db, flags, NULL) != SQLITE_OK) {
        int rc = db ? sq__err(db, "open") : ERR_NOMEM;
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 10000);
    /* page_size only takes effect on a new database, before WAL is set */
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
             "PRAGMA temp_store=MEMORY; PRAGMA cache_size=%d; PRAGMA mmap_size=%d;"
             "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;",
             be->sync_full ? "FULL" : "NORMAL", reader ? -16384 : -65536, 268435456);
    if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        int rc = sq__err(db, "pragmas");
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int migrate(sqlite3 *db, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int version = 0;

    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)"
                     " WITHOUT ROWID",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > N_MIGRATIONS)
        return err_set(e, ERR_IO, "database schema %d is newer than this pilotlight (%d)", version,
                       N_MIGRATIONS);
    for (int v = version; v < N_MIGRATIONS; v++) {
        char sql[128];
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        snprintf(sql, sizeof(sql),
                 "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '%d')", v + 1);
        if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            (v < (int)(sizeof(migration_fns) / sizeof(migration_fns[0])) && migration_fns[v] &&
             migration_fns[v](db) != 0) ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            err_set(e, ERR_IO, "migration %d failed: %s", v + 1, sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return ERR_IO;
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        log_msg(LOG_INFO, "store: schema migrated to version %d", v + 1);
    }
    return 0;
fail:
    return err_set(e, ERR_IO, "schema check failed: %s", sqlite3_errmsg(db));
}

static void reader_free(struct reader *r)
{
    for (int i = 0; i < N_RSTMT; i++)
        sqlite3_finalize(r->st[i]);
    for (int i = 0; i < READER_CACHED; i++)
        sqlite3_finalize(r->cached[i]);
    sqlite3_close(r->db);
    free(r);
}

/* Thread exit: close this thread's connection. */
static void reader_destroy(void *arg)
{
    struct reader *r = arg;
    struct sqlite_be *be = r->be;

    pthread_mutex_lock(&be->readers_mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        be->readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&be->readers_mu);
    reader_free(r);
}

static struct reader *reader_get(struct sqlite_be *be)
{
    struct reader *r = pthread_getspecific(be->reader_key);
    if (r)
        return r;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->be = be;
    if (open_conn(be, &r->db, 1) != 0)
        goto fail;
    for (int i = 0; i < N_RSTMT; i++)
        if (sqlite3_prepare_v3(r->db, rsql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL) !=
            SQLITE_OK) {
            sq__err(r->db, rsql[i]);
            goto fail;
        }
    pthread_mutex_lock(&be->readers_mu);
    r->next = be->readers;
    if (be->readers)
        be->readers->prev = r;
    be->readers = r;
    pthread_mutex_unlock(&be->readers_mu);
    pthread_setspecific(be->reader_key, r);
    return r;
fail:
    reader_free(r);
    return NULL;
}

sqlite3 *sq__reader_db(struct sqlite_be *be)
{
    struct reader *r = reader_get(be);
    return r ? r->db : NULL;
}

sqlite3_stmt *sq__reader_stmt(struct sqlite_be *be, const char *sql)
{
    struct reader *r = reader_get(be);
    int i;

    if (r == NULL)
        return NULL;
    for (i = 0; i < READER_CACHED && r->cached_sql[i] != NULL; i++)
        if (r->cached_sql[i] == sql) {
            sqlite3_reset(r->cached[i]);
            return r->cached[i];
        }
    if (i == READER_CACHED) { /* a caller building its SQL: a bug, refused (never evicted: a
                                 statement handed out may still be in use) */
        log_msg(LOG_ERROR, "sqlite: a reader has more than %d statements to keep", READER_CACHED);
        return NULL;
    }
    if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->cached[i], NULL) !=
        SQLITE_OK) {
        sq__err(r->db, "reader statement");
        sqlite3_finalize(r->cached[i]);
        r->cached[i] = NULL;
        return NULL;
    }
    r->cached_sql[i] = sql;
    return r->cached[i];
}

void sq__reader_reset(struct sqlite_be *be)
{
    struct reader *r = reader_get(be);

    for (int i = 0; r != NULL && i < READER_CACHED && r->cached[i] != NULL; i++)
        sqlite3_reset(r->cached[i]);
}

/* Is a background pass due? (ckpt_mu held) Once the WAL holds
 * ckpt_frames more frames than when the last pass ended, counting from
 * zero if the writer restarted the WAL since. (It once compared only with
 * the mark, which a restarted WAL reached late or never: every checkpoint
 * then fell to the writer, a 40-60 ms stall of commits every ~8,000
 * frames.) */
static int ckpt_due(struct sqlite_be *be)
{
    if (be->wal_restarts != be->ckpt_mark_restarts) {
        be->ckpt_mark = 0;
        be->ckpt_mark_restarts = be->wal_restarts;
    }
    return be->wal_frames - be->ckpt_mark >= be->ckpt_frames;
}

/* After each commit that wrote frames (writer thread): note the WAL size,
 * wake the checkpointer when a pass is due. A commit adds at least one
 * frame, so no more frames than before means the WAL started over (a
 * restart that wrote more frames than the WAL held is missed: the pass
 * then comes one mark late). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int n_frames)
{
    struct sqlite_be *be = arg;
    (void)db;
    (void)name;
    pthread_mutex_lock(&be->ckpt_mu);
    if (n_frames <= be->wal_frames)
        be->wal_restarts++;
    be->wal_frames = n_frames;
    if (n_frames > be->wal_frames_max)
        be->wal_frames_max = n_frames;
    if (ckpt_due(be))
        pthread_cond_signal(&be->ckpt_cv);
    pthread_mutex_unlock(&be->ckpt_mu);
    return SQLITE_OK;
}

/* The checkpointer: copies WAL pages into the database with PASSIVE
 * checkpoints on its own connection, so the writer never stalls on them.
 * A pass that cannot finish (a reader still needs old pages, or the writer
 * added frames meanwhile) is followed by the next one when it is due; a
 * complete one lets the writer's next transaction start the WAL over. */
static void *ckpt_main(void *arg)
{
    struct sqlite_be *be = arg;
    sqlite3 *db = NULL;

    pthread_setname_np(pthread_self(), "pl-checkpoint");
    if (open_conn(be, &db, 1) != 0) {
        log_msg(LOG_ERROR, "store: the checkpointer cannot open the database: the writer"
                           " will checkpoint past %d frames",
                CHECKPOINT_FORCE * be->ckpt_frames);
        pthread_mutex_lock(&be->ckpt_mu);
        be->ckpt_dead = 1;
        pthread_mutex_unlock(&be->ckpt_mu);
        return NULL;
    }
    pthread_mutex_lock(&be->ckpt_mu);
    while (!be->ckpt_stop) {
        if (!ckpt_due(be)) {
            pthread_cond_wait(&be->ckpt_cv, &be->ckpt_mu);
            continue;
        }
        be->ckpt_running = 1;
        pthread_mutex_unlock(&be->ckpt_mu);
        int log = 0, done = 0;
        if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
                SQLITE_OK &&
            sqlite3_errcode(db) != SQLITE_BUSY)
            log_msg(LOG_WARN, "store: checkpoint: %s", sqlite3_errmsg(db));
        pthread_mutex_lock(&be->ckpt_mu);
        be->ckpt_mark = be->wal_frames;
        be->ckpt_mark_restarts = be->wal_restarts;
        be->ckpt_running = 0;
        be->ckpt_passes++;
        log_msg(LOG_DEBUG, "store: checkpoint %d of %d frames", done, log);
    }
    pthread_mutex_unlock(&be->ckpt_mu);
    sqlite3_close(db);
    return NULL;
}

static void be_stats(void *arg, struct store_stats *st)
{
    struct sqlite_be *be = arg;
    pthread_mutex_lock(&be->ckpt_mu);
    st->wal_frames = be->wal_frames;
    st->wal_frames_max = be->wal_frames_max;
    st->wal_restarts = be->wal_restarts;
    st->ckpt_passes = be->ckpt_passes;
    st->ckpt_forced = be->ckpt_forced;
    st->ckpt_pending = !be->ckpt_dead && (be->ckpt_running || ckpt_due(be));
    pthread_mutex_unlock(&be->ckpt_mu);
}

static void loaded_forget(struct sqlite_be *be);

static void be_close(void *arg)
{
    struct sqlite_be *be = arg;
    if (be == NULL)
        return;
    if (be->ckpt_started) {
        pthread_mutex_lock(&be->ckpt_mu);
        be->ckpt_stop = 1;
        pthread_cond_signal(&be->ckpt_cv);
        pthread_mutex_unlock(&be->ckpt_mu);
        pthread_join(be->ckpt_thread, NULL);
    }
    pthread_mutex_lock(&be->readers_mu);
    struct reader *r = be->readers;
    be->readers = NULL;
    pthread_mutex_unlock(&be->readers_mu);
    while (r) {
        struct reader *next = r->next;
        reader_free(r);
        r = next;
    }
    pthread_setspecific(be->reader_key, NULL);
    pthread_key_delete(be->reader_key);
    sq__hist_close(be);
    loaded_forget(be);
    for (int i = 0; be->ws && i < N_WSTMT; i++)
        sqlite3_finalize(be->ws[i]);
    free(be->ws);
    if (be->w) /* leave a small WAL behind for the next start */
        sqlite3_exec(be->w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(be->w);
    sqlite3_close(be->side);
    pthread_mutex_destroy(&be->side_mu);
    pthread_mutex_destroy(&be->ckpt_mu);
    pthread_cond_destroy(&be->ckpt_cv);
    pthread_mutex_destroy(&be->readers_mu);
    free(be->path);
    free(be);
}

static int be_open(const struct store_config *c, void **out, struct err *e)
{
    struct sqlite_be *be = calloc(1, sizeof(*be));
    size_t len;
    int rc;

    *out = NULL;
    if (be == NULL)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_init(&be->side_mu, NULL);
    pthread_mutex_init(&be->ckpt_mu, NULL);
    pthread_cond_init(&be->ckpt_cv, NULL);
    pthread_mutex_init(&be->readers_mu, NULL);
    pthread_key_create(&be->reader_key, reader_destroy);
    be->sync_full = c->durability_full;
    be->test = c->test;
    be->ckpt_frames = c->checkpoint_frames > 0 && c->checkpoint_frames <= 100000
                          ? c->checkpoint_frames
                          : CHECKPOINT_FRAMES;
    if (mkdir(c->data_dir, 0750) != 0 && errno != EEXIST) {
        rc =
            err_set(e, ERR_IO, "cannot create data directory %s: %s", c->data_dir, strerror(errno));
        goto fail;
    }
    len = strlen(c->data_dir) + sizeof("/pilotlight.db");
    if ((be->path = malloc(len)) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(be->path, len, "%s/pilotlight.db", c->data_dir);
    if ((rc = open_conn(be, &be->w, 0)) != 0) {
        err_set(e, rc, "cannot open %s", be->path);
        goto fail;
    }
    if ((rc = migrate(be->w, e)) != 0)
        goto fail;
    if ((be->ws = calloc(N_WSTMT, sizeof(*be->ws))) == NULL) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < N_WSTMT; i++)
        if (sqlite3_prepare_v3(be->w, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &be->ws[i], NULL) !=
            SQLITE_OK) {
            rc = err_set(e, ERR_IO, "prepare: %s", sqlite3_errmsg(be->w));
            goto fail;
        }
    if ((rc = sq__hist_open(be)) != 0) {
        err_set(e, rc, "cannot prepare the history: %s", sqlite3_errmsg(be->w));
        goto fail;
    }
    if ((rc = open_conn(be, &be->side, 0)) != 0) {
        err_set(e, rc, "cannot open %s", be->path);
        goto fail;
    }
    sqlite3_wal_hook(be->w, wal_hook, be);
    if (pthread_create(&be->ckpt_thread, NULL, ckpt_main, be) != 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot start the checkpointer");
        goto fail;
    }
    be->ckpt_started = 1;
    log_msg(LOG_INFO, "store: sqlite %s at %s (durability %s)", sqlite3_libversion(), be->path,
            be->sync_full ? "full" : "normal");
    *out = be;
    return 0;
fail:
    be_close(be);
    return rc;
}

/* ---- writer side ------------------------------------------------------ */

int sq__step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static int w_exec(struct sqlite_be *be, enum wstmt which)
{
    int rc = sq__step_done(be->ws[which]);
    return rc ? sq__err(be->w, wsql[which]) : 0;
}

static int w_begin(void *arg)
{
    struct sqlite_be *be = arg;
    int rc = w_exec(be, W_BEGIN);

    return rc ? rc : sq__hist_begin(be); /* on failure the store rolls back */
}

/* Deferred work: pending history rows (hist_log.c). */
static int w_deferred(void *arg)
{
    return sq__hist_deferred(arg);
}

static int w_settle(void *arg)
{
    return sq__hist_settle(arg);
}

/* Commit. A background pass only lets the WAL start over if it ends while
 * no commit adds frames; under writes that never pause, none does, so past
 * CHECKPOINT_FORCE x ckpt_frames frames the writer itself runs a PASSIVE
 * checkpoint between its transactions (the fallback: it costs the writer
 * the pass's fsyncs): most frames are already copied, it never waits on
 * locks (busy: try after the next commit, counted again), and when it
 * completes the next transaction starts the WAL over. RESTART was worse:
 * SQLite's busy handler sleeps. Waiting for a moment right after a
 * background pass instead let the WAL grow to 700+ MB under two writers.
 * Commits of the side connection (contexts, retention) have no WAL hook:
 * their frames count from the writer's next commit. */
static int w_commit(void *arg)
{
    struct sqlite_be *be = arg;
    int rc, force;

    if ((rc = sq__hist_flush(be)) != 0 || (rc = w_exec(be, W_COMMIT)) != 0)
        return rc;
    sq__hist_committed(be);
    pthread_mutex_lock(&be->ckpt_mu);
    force = be->wal_frames >= CHECKPOINT_FORCE * be->ckpt_frames;
    if (force)
        be->ckpt_forced++;
    pthread_mutex_unlock(&be->ckpt_mu);
    if (force) {
        int log = 0, done = 0;
        sqlite3_busy_timeout(be->w, 0);
        if (sqlite3_wal_checkpoint_v2(be->w, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
            SQLITE_OK)
            log_msg(LOG_DEBUG, "store: writer checkpoint: %s", sqlite3_errmsg(be->w));
        sqlite3_busy_timeout(be->w, 10000);
    }
    return 0;
}

static void w_rollback(void *arg)
{
    struct sqlite_be *be = arg;
    loaded_forget(be);
    if (!sqlite3_get_autocommit(be->w))
        w_exec(be, W_ROLLBACK);
    sq__hist_rollback(be); /* rows and keys of the group are gone: read the log again */
}

static int w_tenant(void *arg, const char *tenant, int create, int64_t *tid, int *created)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = be->ws[W_TENANT_GET];
    char now[TM_ISO_LEN];
    int rc;

    *created = 0;
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *tid = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__err(be->w, "tenant lookup");
    if (!create)
        return ERR_NO_TENANT;
    st = be->ws[W_TENANT_ADD];
    tm_format(tm_now_ms(), now);
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    if (sq__step_done(st))
        return sq__err(be->w, "tenant insert");
    *tid = sqlite3_last_insert_rowid(be->w);
    *created = 1;
    log_msg(LOG_INFO, "store: tenant '%s' created", tenant);
    return 0;
}

static void loaded_forget(struct sqlite_be *be)
{
    free(be->loaded_eid);
    free(be->loaded_types);
    be->loaded_eid = be->loaded_types = NULL;
    be->loaded_rid = 0;
    be->loaded_box_state = 0;
}

/* A `box` column: 0 NULL (unknown), 1 empty (no location), 2 a box, in bb. */
static int box_column(sqlite3_stmt *st, int col, double bb[4])
{
    if (sqlite3_column_type(st, col) != SQLITE_BLOB)
        return 0;
    if (sqlite3_column_bytes(st, col) == 0)
        return 1;
    if (sqlite3_column_bytes(st, col) != 4 * (int)sizeof(double))
        return 0;
    memcpy(bb, sqlite3_column_blob(st, col), 4 * sizeof(double));
    return 2;
}

/* Remember the keys of the row st just read (rid, types and box from column
 * rid_col on) for the w_update of the same entity that follows. */
static void loaded_keep(struct sqlite_be *be, sqlite3_stmt *st, int64_t tid, const char *id,
                        int rid_col)
{
    const char *types = (const char *)sqlite3_column_text(st, rid_col + 1);

    loaded_forget(be);
    be->loaded_eid = strdup(id);
    be->loaded_types = types ? strdup(types) : NULL;
    if (be->loaded_eid != NULL && (types == NULL || be->loaded_types != NULL)) {
        be->loaded_tid = tid;
        be->loaded_rid = sqlite3_column_int64(st, rid_col);
        be->loaded_box_state = box_column(st, rid_col + 2, be->loaded_box);
    } else {
        loaded_forget(be); /* only a shortcut: w_update looks the keys up itself */
    }
}

static int w_load(void *arg, int64_t tid, const char *id, cJSON **doc)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = be->ws[W_LOAD];
    int rc;

    *doc = NULL;
    loaded_forget(be);
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *doc = cJSON_ParseWithLength((const char *)sqlite3_column_text(st, 0),
                                     (size_t)sqlite3_column_bytes(st, 0));
        loaded_keep(be, st, tid, id, 1);
        sqlite3_reset(st);
        return *doc ? 0 : ERR_INTERNAL;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? ERR_NOT_FOUND : sq__err(be->w, "load");
}

/* What a replace needs of the row (createdAt, ent_attr_sig), and its keys
 * for the w_update that follows. */
static int w_peek(void *arg, int64_t tid, const char *id, char created_at[TM_ISO_LEN],
                  uint64_t *sig, int *has_sig)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = be->ws[W_PEEK];
    int rc;

    created_at[0] = '\0';
    *sig = 0;
    *has_sig = 0;
    loaded_forget(be);
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        if (c)
            snprintf(created_at, TM_ISO_LEN, "%s", c);
        if (sqlite3_column_type(st, 1) == SQLITE_INTEGER) {
            *sig = (uint64_t)sqlite3_column_int64(st, 1);
            *has_sig = 1;
        }
        loaded_keep(be, st, tid, id, 2);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? ERR_NOT_FOUND : sq__err(be->w, "peek");
}

static int types_apply(struct sqlite_be *be, enum wstmt which, int64_t tid, int64_t rid,
                       const cJSON *types, const cJSON *except)
{
    const cJSON *t, *x;
    cJSON_ArrayForEach(t, types)
    {
        int skip = 0;
        if (!cJSON_IsString(t))
            continue;
        cJSON_ArrayForEach(x, except) if (cJSON_IsString(x) &&
                                          strcmp(x->valuestring, t->valuestring) == 0) skip = 1;
        if (skip)
            continue;
        sqlite3_stmt *st = be->ws[which];
        sqlite3_bind_int64(st, 1, tid);
        sqlite3_bind_text(st, 2, t->valuestring, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, rid);
        if (sq__step_done(st))
            return sq__err(be->w, wsql[which]);
    }
    return 0;
}

static int geo_del(struct sqlite_be *be, int64_t rid)
{
    sqlite3_stmt *st = be->ws[W_GEO_DEL];
    sqlite3_bind_int64(st, 1, rid);
    return sq__step_done(st) ? sq__err(be->w, "geo unindex") : 0;
}

/* The index box of a document's location; 0 when it has none. */
static int doc_bbox(const cJSON *doc, double bb[4])
{
    const cJSON *g = ent_doc_geo(doc, LD_LOCATION_IRI);
    struct geo_shape *shape = NULL;

    if (g == NULL || geo_parse(g, &shape, NULL) != 0)
        return 0;
    geo_bbox(shape, bb);
    geo_free(shape);
    return 1;
}

/* Bind the `box` column of a document whose doc_bbox gave have and bb. */
static void bind_box(sqlite3_stmt *st, int i, int have, const double bb[4])
{
    if (have)
        sqlite3_bind_blob(st, i, bb, 4 * sizeof(double), SQLITE_TRANSIENT);
    else
        sqlite3_bind_zeroblob(st, i, 0);
}

/* Bring the R*Tree row of rid in line with a document whose location has
 * the box bb (have = 1) or that has none (insert, move or remove); may_exist:
 * rid may be indexed already. The R*Tree keeps 32-bit floats rounded
 * outwards, so "unchanged" means the stored box still contains the new one
 * and is at most 1e-4 degrees wider. */
static int geo_sync(struct sqlite_be *be, int64_t tid, int64_t rid, int have, const double bb[4],
                    int may_exist)
{
    double old[4];
    int had = 0, rc;
    sqlite3_stmt *st;

    if (may_exist) {
        st = be->ws[W_GEO_GET];
        sqlite3_bind_int64(st, 1, rid);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            had = 1;
            for (int i = 0; i < 4; i++)
                old[i] = sqlite3_column_double(st, i);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return sq__err(be->w, "geo lookup");
    }
    if (!have)
        return had ? geo_del(be, rid) : 0;
    if (had && old[0] <= bb[0] && old[1] >= bb[2] && old[2] <= bb[1] && old[3] >= bb[3] &&
        bb[0] - old[0] < 1e-4 && old[1] - bb[2] < 1e-4 && bb[1] - old[2] < 1e-4 &&
        old[3] - bb[3] < 1e-4)
        return 0;
    st = be->ws[W_GEO_ADD];
    sqlite3_bind_int64(st, 6, tid);
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_double(st, 2, bb[0]);
    sqlite3_bind_double(st, 3, bb[2]);
    sqlite3_bind_double(st, 4, bb[1]);
    sqlite3_bind_double(st, 5, bb[3]);
    return sq__step_done(st) ? sq__err(be->w, "geo index") : 0;
}

static int w_insert(void *arg, int64_t tid, const cJSON *doc, const char *text)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = be->ws[W_INSERT];
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(doc, "createdAt");
    char *types = json_print(ent_doc_types(doc), NULL);
    double bb[4] = {0};
    int have = doc_bbox(doc, bb), rc;
    int64_t rid;

    if (types == NULL)
        return ERR_NOMEM;
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, ent_doc_id(doc), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, cJSON_IsString(created) ? created->valuestring : NULL, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 5, types, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)ent_attr_sig(doc));
    bind_box(st, 7, have, bb);
    rc = sq__step_done(st);
    free(types);
    if (rc == SQLITE_CONSTRAINT)
        return ERR_EXISTS;
    if (rc)
        return sq__err(be->w, "insert");
    rid = sqlite3_last_insert_rowid(be->w);
    if ((rc = types_apply(be, W_TYPE_ADD, tid, rid, ent_doc_types(doc), NULL)) != 0)
        return rc;
    return geo_sync(be, tid, rid, have, bb, 0);
}

/* Run an UPDATE/DELETE ... RETURNING rid. */
static int returning_rid(struct sqlite_be *be, enum wstmt which, int64_t tid, const char *id,
                         const char *text, int64_t *rid)
{
    sqlite3_stmt *st = be->ws[which];
    int rc;

    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *rid = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq__err(be->w, wsql[which]);
}

/* geo: the write may have changed the location. The row's `box` column
 * (v12) is the box the R*Tree holds for it: when the new document's is the
 * same, the R*Tree is not read (a lookup in that virtual table cost more
 * than the rest of the update's index work). */
static int w_update(void *arg, int64_t tid, const cJSON *after, const char *text, int geo,
                    const uint64_t *sig)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = be->ws[W_KEYS];
    char *types = json_print(ent_doc_types(after), NULL), *old_types = NULL;
    double bb[4] = {0}, old_bb[4] = {0};
    int64_t rid = -1;
    int rc, have = 0, old_box = 0;

    if (types == NULL) {
        loaded_forget(be);
        return ERR_NOMEM;
    }
    if (be->loaded_rid != 0 && be->loaded_tid == tid &&
        strcmp(be->loaded_eid, ent_doc_id(after)) == 0) {
        /* the row was just read (w_load, w_peek): its keys came with it */
        rid = be->loaded_rid;
        old_types = be->loaded_types;
        be->loaded_types = NULL;
        old_box = be->loaded_box_state;
        memcpy(old_bb, be->loaded_box, sizeof(old_bb));
        loaded_forget(be);
    } else {
        loaded_forget(be);
        sqlite3_bind_int64(st, 1, tid);
        sqlite3_bind_text(st, 2, ent_doc_id(after), -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            rid = sqlite3_column_int64(st, 0);
            const char *t = (const char *)sqlite3_column_text(st, 1);
            old_types = t ? strdup(t) : NULL;
            old_box = box_column(st, 2, old_bb);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW) {
            free(types);
            return rc == SQLITE_DONE ? ERR_NOT_FOUND : sq__err(be->w, "keys");
        }
    }
    if (geo)
        have = doc_bbox(after, bb);
    st = be->ws[W_UPDATE];
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, types, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)(sig ? *sig : ent_attr_sig(after)));
    bind_box(st, 5, have, bb);
    sqlite3_bind_int(st, 6, geo != 0);
    rc = sq__step_done(st) ? sq__err(be->w, "update") : 0;
    if (rc == 0 && (old_types == NULL || strcmp(old_types, types) != 0)) {
        cJSON *old = old_types ? cJSON_Parse(old_types) : NULL;
        const cJSON *now_types = ent_doc_types(after);
        if ((rc = types_apply(be, W_TYPE_DEL, tid, rid, old, now_types)) == 0)
            rc = types_apply(be, W_TYPE_ADD, tid, rid, now_types, NULL);
        cJSON_Delete(old);
    }
    free(types);
    free(old_types);
    if (rc || !geo)
        return rc;
    if (have ? old_box == 2 && memcmp(bb, old_bb, sizeof(bb)) == 0 : old_box == 1)
        return 0; /* the R*Tree holds what it held */
    return geo_sync(be, tid, rid, have, bb, 1);
}

static int w_delete(void *arg, int64_t tid, const cJSON *before)
{
    struct sqlite_be *be = arg;
    int64_t rid = -1;
    int rc;

    loaded_forget(be);
    if ((rc = returning_rid(be, W_DELETE, tid, ent_doc_id(before), NULL, &rid)) != 0)
        return rc;
    if (rid < 0)
        return ERR_NOT_FOUND;
    if ((rc = types_apply(be, W_TYPE_DEL, tid, rid, ent_doc_types(before), NULL)) != 0)
        return rc;
    return geo_del(be, rid);
}

/* One statement on the side connection (contexts, configuration
 * documents), committed on its own. A constraint violation is ERR_EXISTS;
 * *changes (may be NULL) receives the rows changed. */
static int side_exec(struct sqlite_be *be, const char *sql, const char *const *args, int n,
                     int *changes)
{
    sqlite3_stmt *st = NULL;
    int rc;

    pthread_mutex_lock(&be->side_mu);
    if (sqlite3_prepare_v2(be->side, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = sq__err(be->side, sql);
        goto out;
    }
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = 0;
        if (changes)
            *changes = sqlite3_changes(be->side);
    } else {
        rc = rc == SQLITE_CONSTRAINT ? ERR_EXISTS : sq__err(be->side, sql);
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&be->side_mu);
    return rc;
}

/* Every tenant (retention). */
static int x_tenants(void *arg, int (*each)(void *ud, int64_t tid, const char *name), void *ud)
{
    struct sqlite_be *be = arg;
    struct reader *r = reader_get(be);
    sqlite3_stmt *st = NULL;
    int rc;

    if (r == NULL)
        return ERR_IO;
    if (sqlite3_prepare_v2(r->db, "SELECT tid, name FROM tenants ORDER BY tid", -1, &st, NULL) !=
        SQLITE_OK)
        return sq__err(r->db, "tenants");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (each(ud, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1))) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq__err(r->db, "tenants");
}

static int x_doc_put(void *arg, const char *tenant, const char *coll, const char *id,
                     const char *json, int create_only)
{
    char now[TM_ISO_LEN];
    const char *args[] = {tenant, coll, id, json, now};

    tm_format(tm_now_ms(), now);
    return side_exec(arg,
                     create_only ? "INSERT INTO docs(tenant, coll, id, body, updated_at)"
                                   " VALUES (?1, ?2, ?3, ?4, ?5)"
                                 : "INSERT OR REPLACE INTO docs(tenant, coll, id, body, updated_at)"
                                   " VALUES (?1, ?2, ?3, ?4, ?5)",
                     args, 5, NULL);
}

static int x_doc_get(void *arg, const char *tenant, const char *coll, const char *id, char **json)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = NULL;
    int rc;

    *json = NULL;
    pthread_mutex_lock(&be->side_mu);
    if (sqlite3_prepare_v2(be->side,
                           "SELECT body FROM docs WHERE tenant = ?1 AND coll = ?2 AND id = ?3", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = sq__err(be->side, "doc get");
        goto out;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, coll, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *json = strdup((const char *)sqlite3_column_text(st, 0));
        rc = *json ? 0 : ERR_NOMEM;
    } else {
        rc = rc == SQLITE_DONE ? ERR_NOT_FOUND : sq__err(be->side, "doc get");
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&be->side_mu);
    return rc;
}

static int x_doc_delete(void *arg, const char *tenant, const char *coll, const char *id)
{
    const char *args[] = {tenant, coll, id};
    int changes = 0;
    int rc = side_exec(arg, "DELETE FROM docs WHERE tenant = ?1 AND coll = ?2 AND id = ?3", args, 3,
                       &changes);
    return rc ? rc : changes ? 0 : ERR_NOT_FOUND;
}

static int x_doc_each(void *arg, const char *tenant, const char *coll,
                      int (*each)(void *ud, const char *tenant, const char *id, const char *json),
                      void *ud)
{
    struct sqlite_be *be = arg;
    struct reader *r = reader_get(be);
    sqlite3_stmt *st = NULL;
    int rc;

    if (r == NULL)
        return ERR_IO;
    if (sqlite3_prepare_v2(r->db,
                           tenant
                               ? "SELECT tenant, id, body FROM docs WHERE coll = ?1 AND tenant = ?2"
                                 " ORDER BY tenant, id"
                               : "SELECT tenant, id, body FROM docs WHERE coll = ?1"
                                 " ORDER BY tenant, id",
                           -1, &st, NULL) != SQLITE_OK)
        return sq__err(r->db, "doc each");
    sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
    if (tenant)
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (each(ud, (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 1),
                 (const char *)sqlite3_column_text(st, 2))) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq__err(r->db, "doc each");
}

static int w_context_put(void *arg, const char *url, const char *kind, const char *text)
{
    char now[TM_ISO_LEN];
    const char *args[] = {url, kind, text, now};

    tm_format(tm_now_ms(), now);
    return side_exec(arg,
                     "INSERT INTO contexts(url, kind, body, created_at) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT(url) DO UPDATE SET kind = ?2, body = ?3",
                     args, 4, NULL);
}

static int w_context_delete(void *arg, const char *url)
{
    const char *args[] = {url};
    return side_exec(arg, "DELETE FROM contexts WHERE url = ?1", args, 1, NULL);
}

/* ---- reader side ------------------------------------------------------- */

static int r_tenant(void *arg, const char *tenant, int64_t *tid)
{
    struct reader *r = reader_get(arg);
    sqlite3_stmt *st;
    int rc;

    if (r == NULL)
        return ERR_IO;
    st = r->st[R_TENANT];
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *tid = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? ERR_NO_TENANT : sq__err(r->db, "tenant");
}

static int r_get(void *arg, int64_t tid, const char *id, char **text)
{
    struct reader *r = reader_get(arg);
    sqlite3_stmt *st;
    int rc;

    *text = NULL;
    if (r == NULL)
        return ERR_IO;
    st = r->st[R_GET];
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *text =
            strndup((const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        sqlite3_reset(st);
        return *text ? 0 : ERR_NOMEM;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? ERR_NOT_FOUND : sq__err(r->db, "get");
}

/* Step st, handing column 0 to each until done or stopped. */
static int emit_rows(sqlite3 *db, sqlite3_stmt *st, store_text_fn each, void *ud)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (each(ud, (const char *)sqlite3_column_text(st, 0),
                 (size_t)sqlite3_column_bytes(st, 0))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq__err(db, "query");
}

static int types_multi(struct reader *r, int64_t tid, const struct store_plan *p,
                       store_text_fn each, void *ud)
{
    char sql[4096];
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    int rc;

    n += (size_t)snprintf(sql, sizeof(sql),
                          "SELECT doc FROM entities WHERE rid IN (SELECT rid FROM entity_types"
                          " WHERE tid = ?1 AND type IN (");
    for (int i = 0; i < p->n_names && n < sizeof(sql) - 64; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s?%d", i ? "," : "", i + 2);
    snprintf(sql + n, sizeof(sql) - n, ")) ORDER BY rid");
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq__err(r->db, "types query");
    sqlite3_bind_int64(st, 1, tid);
    for (int i = 0; i < p->n_names; i++)
        sqlite3_bind_text(st, i + 2, p->names[i], -1, SQLITE_STATIC);
    rc = emit_rows(r->db, st, each, ud);
    sqlite3_finalize(st);
    return rc;
}

static int r_candidates(void *arg, int64_t tid, const struct store_plan *p, store_text_fn each,
                        void *ud)
{
    struct reader *r = reader_get(arg);
    sqlite3_stmt *st;

    if (r == NULL)
        return ERR_IO;
    switch (p->kind) {
    case PLAN_IDS:
        st = r->st[R_GET];
        for (int i = 0; i < p->n_names; i++) {
            int rc;
            sqlite3_bind_int64(st, 1, tid);
            sqlite3_bind_text(st, 2, p->names[i], -1, SQLITE_STATIC);
            if ((rc = emit_rows(r->db, st, each, ud)) != 0)
                return rc;
        }
        return 0;
    case PLAN_TYPES:
        if (p->n_names > 1)
            return types_multi(r, tid, p, each, ud);
        st = r->st[R_TYPE1];
        sqlite3_bind_int64(st, 1, tid);
        sqlite3_bind_text(st, 2, p->names[0], -1, SQLITE_STATIC);
        return emit_rows(r->db, st, each, ud);
    case PLAN_BBOX:
        st = r->st[R_BBOX];
        sqlite3_bind_int64(st, 1, tid);
        for (int i = 0; i < 4; i++)
            sqlite3_bind_double(st, i + 2, p->bbox[i]);
        return emit_rows(r->db, st, each, ud);
    case PLAN_RIDS:
        st = r->st[R_RID];
        for (size_t i = 0; i < p->n_rids; i++) {
            int rc;
            sqlite3_bind_int64(st, 1, tid);
            sqlite3_bind_int64(st, 2, p->rids[i]);
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && each(ud, (const char *)sqlite3_column_text(st, 0),
                                         (size_t)sqlite3_column_bytes(st, 0))) {
                sqlite3_reset(st);
                return 0;
            }
            sqlite3_reset(st);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return sq__err(r->db, "rid");
        }
        return 0;
    case PLAN_SCAN:
    default:
        st = r->st[R_SCAN];
        sqlite3_bind_int64(st, 1, tid);
        return emit_rows(r->db, st, each, ud);
    }
}

static int r_boxes(void *arg, int64_t tid, const double bbox[4],
                   void (*each)(void *ud, int64_t rid, const double box[4]), void *ud)
{
    struct reader *r = reader_get(arg);
    sqlite3_stmt *st;
    int rc;

    if (r == NULL)
        return ERR_IO;
    st = r->st[R_BOXES];
    sqlite3_bind_int64(st, 1, tid);
    for (int i = 0; i < 4; i++)
        sqlite3_bind_double(st, i + 2, bbox[i]);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        double box[4];
        for (int i = 0; i < 4; i++)
            box[i] = sqlite3_column_double(st, i + 1);
        each(ud, sqlite3_column_int64(st, 0), box);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq__err(r->db, "boxes");
}

static int r_contexts(void *arg, void (*each)(void *, const char *, const char *, const char *),
                      void *ud)
{
    struct reader *r = reader_get(arg);
    sqlite3_stmt *st;
    int rc;

    if (r == NULL)
        return ERR_IO;
    st = r->st[R_CONTEXTS];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        each(ud, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
             (const char *)sqlite3_column_text(st, 2));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq__err(r->db, "contexts");
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = be_open,
    .close = be_close,
    .stats = be_stats,
    .w_begin = w_begin,
    .w_deferred = w_deferred,
    .w_settle = w_settle,
    .w_commit = w_commit,
    .w_rollback = w_rollback,
    .w_tenant = w_tenant,
    .w_load = w_load,
    .w_peek = w_peek,
    .w_insert = w_insert,
    .w_update = w_update,
    .w_delete = w_delete,
    .w_context_put = w_context_put,
    .w_history = sq__hist_append,
    .w_history_delete = sq__hist_delete,
    .w_history_get = sq__hist_get,
    .w_history_set = sq__hist_set,
    .w_history_types = sq__hist_types_set,
    .r_history_types = sq__hist_types,
    .r_history = sq__hist_read,
    .r_history_aggr = sq__hist_aggr,
    .x_tenants = x_tenants,
    .x_history_expire = sq__hist_expire,
    .x_doc_put = x_doc_put,
    .x_doc_get = x_doc_get,
    .x_doc_delete = x_doc_delete,
    .x_doc_each = x_doc_each,
    .w_context_delete = w_context_delete,
    .r_tenant = r_tenant,
    .r_get = r_get,
    .r_candidates = r_candidates,
    .r_boxes = r_boxes,
    .r_contexts = r_contexts,
};
