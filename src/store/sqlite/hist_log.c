/*
 * hist_log.c - the pending rows of the SQLite backend's temporal history
 * (schema v13): the writes an entity keeps until they become chunks, and
 * hist_log, which makes them durable meanwhile.
 *
 * An entity written again within HOT_GROUPS groups keeps its new rows in
 * memory (struct pent) until it has PEND_CAP(hk) of them (24..39, spread by
 * hk so that entities written together do not all reach it in one group),
 * PEND_NUMS_MAX bytes of nums or PEND_BYTES_MAX in all; they then become
 * chunks (pent_write; hist__rows_merge, hist.c). Until then, the commit of
 * each group also writes one row of hist_log(gid, dir, rows): gid is the
 * first instance id of the group (ids only grow, so gids do too), rows the
 * rows its entities appended and still have pending (lrow_put), dir an
 * entry per entity (LOG_DIR_ENTRY: hk, offset, length; sorted by hk). That
 * row is what makes them durable, and what readers merge with the chunks
 * (hist__hpend_load). hist_ents.merged (v13) is the gid of the group that
 * last wrote the entity's pending rows as chunks: its log entries of
 * earlier groups are in chunks, those of that group and later are not.
 * That holds because a group's log row is written last, after every chunk
 * the group writes, and holds only what is still pending then. A log row
 * goes when none of its entities has rows of it pending any more; past
 * LOG_GROUPS_MAX groups, those entities' rows are written first. When the
 * writer has nothing to do (store.c, w_settle), every pending row is
 * written and the log emptied. Open and rollback rebuild the pending rows
 * from the log (hist__pend_rebuild).
 *
 * An entity not written for HOT_GROUPS groups (a city's sensors, every few
 * minutes each, among thousands) has its row written at once: holding it
 * would save nothing.
 *
 * Threads: the writer calls everything here (from hist.c: sq__hist_append,
 * the edits, sq__hist_begin, _flush, _settle, _rollback, _open and _close)
 * but hist__hpend_load and hist__hpend_free, which readers call on their
 * own connections (hist_read.c).
 */
#include "store/sqlite/hist_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define HOT_GROUPS 16
#define PEND_CAP(hk) (24 + (uint32_t)((uint64_t)(hk) * 11 % 16))
#define PEND_NUMS_MAX 1200
#define PEND_BYTES_MAX 32768 /* of rows: instances kept as JSON text can be big */
#define LOG_GROUPS_MAX 64
#define LOG_DIR_ENTRY 16 /* int64 hk, uint32 offset, uint32 length (host order) */
#define LOG_ROW_MAX (256u << 20) /* bytes of rows in one log row */

/* An entity's pending rows (h->pents: open addressing by hk). */
struct pent {
    int64_t hk;
    int64_t listed;   /* the number of the group whose touched list has it */
    int64_t first;    /* gid of the group of its oldest pending row; 0: none */
    size_t group_off; /* where the rows this group appended start in rows */
    struct buf rows;  /* its pending rows (lrow_put) */
    uint32_t n, nums; /* how many, and their nums bytes */
};

struct lgroup { /* a row of hist_log */
    int64_t gid, no; /* its gid, and the number of the group that wrote it */
    int64_t *hks;    /* the entities in its directory */
    size_t n;
};

/* A pending row as hist_log and the writer keep it: zigzag t, varint base,
 * varint nums bytes, varint body bytes, the nums, the body. */
static int lrow_put(struct buf *b, int64_t t, int64_t base, const void *nums, size_t nums_len,
                    const void *body, size_t body_len)
{
    uint8_t head[40];
    size_t k = raw_varint(head, zigzag(t));
    int rc;

    k += raw_varint(head + k, (uint64_t)base);
    k += raw_varint(head + k, nums_len);
    k += raw_varint(head + k, body_len);
    if ((rc = buf_append(b, head, k)) == 0 && (rc = buf_append(b, nums, nums_len)) == 0)
        rc = buf_append(b, body, body_len);
    return rc;
}

/* Append the pending rows in p .. end to out (pointers into p's memory). */
static int lrows_subs(const uint8_t *p, const uint8_t *end, struct subv *out)
{
    int rc;

    while (p < end) {
        uint64_t t, base, nl, bl;
        struct sub x;
        if (get_varint(&p, end, &t) || get_varint(&p, end, &base) || get_varint(&p, end, &nl) ||
            get_varint(&p, end, &bl) || nl > (uint64_t)(end - p) || bl > (uint64_t)(end - p) - nl)
            return ERR_INTERNAL;
        x.t = unzigzag(t);
        x.base = (int64_t)base;
        x.nums = p;
        x.nums_len = nl;
        x.body = p + nl;
        x.body_len = bl;
        p += nl + bl;
        if ((rc = subv_push(out, &x)) != 0)
            return rc;
    }
    return 0;
}

static size_t pent_slot(struct pent **t, size_t cap, int64_t hk)
{
    uint64_t x = (uint64_t)hk * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(x >> 32) & (cap - 1);

    while (t[i] != NULL && t[i]->hk != hk)
        i = (i + 1) & (cap - 1);
    return i;
}

static struct pent *pent_find(struct sq_hist *h, int64_t hk)
{
    return h->pents_cap ? h->pents[pent_slot(h->pents, h->pents_cap, hk)] : NULL;
}

/* Rebuild the table with the entities keep() wants (the others are freed). */
int hist__pents_rehash(struct sq_hist *h, size_t cap,
                       int (*keep)(const struct sq_hist *h, const struct pent *pe))
{
    struct pent **t = calloc(cap, sizeof(*t));
    size_t n = 0;

    if (t == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < h->pents_cap; i++) {
        struct pent *pe = h->pents[i];
        if (pe == NULL)
            continue;
        if (keep(h, pe)) {
            t[pent_slot(t, cap, pe->hk)] = pe;
            n++;
        } else {
            buf_free(&pe->rows);
            free(pe);
        }
    }
    free(h->pents);
    h->pents = t;
    h->pents_cap = cap;
    h->pents_n = n;
    return 0;
}

static int keep_all(const struct sq_hist *h, const struct pent *pe)
{
    (void)h;
    (void)pe;
    return 1;
}

int hist__keep_live(const struct sq_hist *h, const struct pent *pe)
{
    (void)h;
    return pe->first != 0; /* the others are made again when needed */
}

void hist__pents_free(struct sq_hist *h)
{
    for (size_t i = 0; i < h->pents_cap; i++)
        if (h->pents[i] != NULL) {
            buf_free(&h->pents[i]->rows);
            free(h->pents[i]);
        }
    free(h->pents);
    h->pents = NULL;
    h->pents_cap = h->pents_n = 0;
}

static struct pent *pent_get(struct sq_hist *h, int64_t hk)
{
    struct pent *pe = pent_find(h, hk);

    if (pe != NULL)
        return pe;
    if ((h->pents_n + 1) * 2 > h->pents_cap &&
        hist__pents_rehash(h, h->pents_cap ? h->pents_cap * 2 : 1024, keep_all) != 0)
        return NULL;
    if ((pe = calloc(1, sizeof(*pe))) == NULL)
        return NULL;
    pe->hk = hk;
    buf_init(&pe->rows, HIST_ROW_MAX);
    h->pents[pent_slot(h->pents, h->pents_cap, hk)] = pe;
    h->pents_n++;
    return pe;
}

/* Write entity pe's pending rows as chunks. */
static int pent_write(struct sq_hist *h, struct pent *pe)
{
    sqlite3_stmt *st = h->st[H_MERGED];
    int rc;

    if (pe->rows.len == 0)
        return 0;
    HIST_TESTED(h->test, pent_writes);
    h->sv.n = 0;
    if ((rc = lrows_subs((const uint8_t *)pe->rows.data,
                         (const uint8_t *)pe->rows.data + pe->rows.len, &h->sv)) != 0 ||
        (rc = hist__rows_merge(h, pe->hk, &h->sv)) != 0)
        return rc;
    if (pe->first < h->gid) { /* some are in log rows of earlier groups */
        sqlite3_bind_int64(st, 1, pe->hk);
        sqlite3_bind_int64(st, 2, h->gid);
        if (sq__step_done(st))
            return sq__err(h->db, "history merge");
    }
    buf_reset(&pe->rows);
    pe->n = pe->nums = 0;
    pe->first = 0;
    pe->group_off = 0;
    return 0;
}

/* Write the pending rows of entity hk (before its history is read or
 * changed on the writer). */
int hist__ent_settle(struct sq_hist *h, int64_t hk)
{
    struct pent *pe = pent_find(h, hk);
    return pe ? pent_write(h, pe) : 0;
}

/* Hand the buffered rows of the current entity over: each gets the next
 * ids; they are written now, or kept pending (see above). */
int hist__pend_flush(struct sq_hist *h)
{
    struct pent *pe;
    int rc = 0;

    if (h->n_pend == 0)
        return 0;
    /* hot: pending rows, or written within HOT_GROUPS groups (its slot's
     * seen; a slot lost to a rollback or to another entity makes it cold) */
    struct ent_slot *es = hist__ent_slot(h, h->hk);
    uint32_t now = (uint32_t)h->group_no;
    int hot = es != NULL && es->seen != 0 && (uint32_t)(now - es->seen) <= HOT_GROUPS;
    if (es != NULL)
        es->seen = now != 0 ? now : 1;
    if (!hot && ((pe = pent_find(h, h->hk)) == NULL || pe->first == 0)) {
        pe = NULL;
        h->sv.n = 0; /* not hot: straight to hist_rows, no pent */
        for (int i = 0; rc == 0 && i < h->n_pend; i++) {
            struct hrow *r = &h->pend[i];
            struct sub x = {r->t, h->next_iid, (const uint8_t *)r->nums.data,
                            (const uint8_t *)r->body.data, r->nums.len, r->body.len};
            h->next_iid += r->n;
            rc = subv_push(&h->sv, &x);
        }
        if (rc == 0)
            rc = hist__rows_merge(h, h->hk, &h->sv);
    } else if ((pe = pent_get(h, h->hk)) == NULL) {
        rc = ERR_NOMEM;
    } else {
        if (pe->listed != h->group_no) { /* the first pending rows of this group */
            if (h->n_touched == h->cap_touched) {
                size_t cap = h->cap_touched ? h->cap_touched * 2 : 256;
                struct pent **p = realloc(h->touched, cap * sizeof(*p));
                if (p == NULL)
                    rc = ERR_NOMEM;
                else {
                    h->touched = p;
                    h->cap_touched = cap;
                }
            }
            if (rc == 0) {
                h->touched[h->n_touched++] = pe;
                pe->listed = h->group_no;
                pe->group_off = pe->rows.len;
            }
        }
        for (int i = 0; rc == 0 && i < h->n_pend; i++) {
            struct hrow *r = &h->pend[i];
            rc = lrow_put(&pe->rows, r->t, h->next_iid, r->nums.data, r->nums.len, r->body.data,
                          r->body.len);
            h->next_iid += r->n;
            pe->n++;
            pe->nums += (uint32_t)r->nums.len;
        }
        if (rc == 0 && pe->first == 0)
            pe->first = h->gid;
        if (rc == 0 && (pe->n >= PEND_CAP(pe->hk) || pe->nums >= PEND_NUMS_MAX ||
                        pe->rows.len >= PEND_BYTES_MAX))
            rc = pent_write(h, pe);
    }
    for (int i = 0; i < h->n_pend; i++)
        hist__hrow_clear(&h->pend[i]);
    h->n_pend = 0;
    return rc;
}

static int pent_hk_cmp(const void *x, const void *y)
{
    const struct pent *a = *(struct pent *const *)x, *b = *(struct pent *const *)y;
    return a->hk < b->hk ? -1 : a->hk > b->hk;
}

static int lgroup_push(struct sq_hist *h, int64_t gid, int64_t no, int64_t *hks, size_t n)
{
    if (h->log_n == h->log_cap) {
        size_t cap = h->log_cap ? h->log_cap * 2 : 64;
        struct lgroup *p = realloc(h->log, cap * sizeof(*p));
        if (p == NULL)
            return ERR_NOMEM;
        h->log = p;
        h->log_cap = cap;
    }
    h->log[h->log_n++] = (struct lgroup){gid, no, hks, n};
    return 0;
}

void hist__hlog_forget(struct sq_hist *h)
{
    for (size_t i = 0; i < h->log_n; i++)
        free(h->log[i].hks);
    h->log_n = 0;
}

/* The group's row of hist_log: what its entities appended and still have
 * pending. */
int hist__hlog_write(struct sq_hist *h)
{
    sqlite3_stmt *st = h->st[H_LOG_ADD];
    int64_t *hks = NULL;
    size_t n = 0;
    int rc = 0;

    if (h->n_touched == 0)
        return 0;
    qsort(h->touched, h->n_touched, sizeof(*h->touched), pent_hk_cmp);
    buf_reset(&h->ldir);
    buf_reset(&h->lrows);
    if ((hks = malloc(h->n_touched * sizeof(*hks))) == NULL)
        rc = ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < h->n_touched; i++) {
        const struct pent *pe = h->touched[i];
        uint8_t e[LOG_DIR_ENTRY];
        uint32_t off = (uint32_t)h->lrows.len, len = (uint32_t)(pe->rows.len - pe->group_off);
        if (pe->rows.len <= pe->group_off)
            continue;
        if (h->lrows.len + len > LOG_ROW_MAX) { /* a huge group: these go to chunks now */
            rc = pent_write(h, h->touched[i]);
            continue;
        }
        memcpy(e, &pe->hk, 8);
        memcpy(e + 8, &off, 4);
        memcpy(e + 12, &len, 4);
        if ((rc = buf_append(&h->ldir, e, sizeof(e))) == 0)
            rc = buf_append(&h->lrows, pe->rows.data + pe->group_off, len);
        hks[n++] = pe->hk;
    }
    h->n_touched = 0;
    if (rc == 0 && n > 0) {
        sqlite3_bind_int64(st, 1, h->gid);
        sqlite3_bind_blob(st, 2, h->ldir.data, (int)h->ldir.len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, h->lrows.data, (int)h->lrows.len, SQLITE_STATIC);
        if (sq__step_done(st))
            rc = sq__err(h->db, "history log");
        else if ((rc = lgroup_push(h, h->gid, h->group_no, hks, n)) == 0)
            hks = NULL;
    }
    free(hks);
    return rc;
}

/* Delete the log rows none of whose entities has rows of them pending,
 * oldest first; one past LOG_GROUPS_MAX groups (all: any) has its entities'
 * pending rows written first. */
int hist__hlog_trim(struct sq_hist *h, int all)
{
    sqlite3_stmt *st = h->st[H_LOG_DEL];
    size_t done = 0;
    int rc = 0;

    while (rc == 0 && done < h->log_n) {
        struct lgroup *g = &h->log[done];
        int force = all || g->no < h->group_no - LOG_GROUPS_MAX, live = 0;
        for (size_t i = 0; rc == 0 && !live && i < g->n; i++) {
            struct pent *pe = pent_find(h, g->hks[i]);
            if (pe == NULL || pe->first == 0 || pe->first > g->gid)
                continue;
            if (force && !all)
                HIST_TESTED(h->test, forced);
            if (force)
                rc = pent_write(h, pe);
            else
                live = 1;
        }
        if (rc != 0 || live)
            break;
        sqlite3_bind_int64(st, 1, g->gid);
        if (sq__step_done(st))
            rc = sq__err(h->db, "history log");
        else
            free(g->hks);
        if (rc == 0)
            done++;
    }
    if (done > 0) {
        memmove(h->log, h->log + done, (h->log_n - done) * sizeof(*h->log));
        h->log_n -= done;
    }
    return rc;
}

/* Rebuild the pending rows from hist_log (at open, after a rollback). The
 * log rows count as written by the current group: their forced trim comes
 * LOG_GROUPS_MAX groups later than it would have. */
int hist__pend_rebuild(struct sq_hist *h)
{
    sqlite3_stmt *logs = NULL, *merged = NULL;
    int rc = 0, step;

    hist__hlog_forget(h);
    h->n_touched = 0;
    hist__pents_free(h);
    if (sqlite3_prepare_v2(h->db, "SELECT gid, dir, rows FROM hist_log ORDER BY gid", -1, &logs,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h->db, "SELECT merged FROM hist_ents WHERE hk = ?1", -1, &merged,
                           NULL) != SQLITE_OK) {
        rc = sq__err(h->db, "history log");
        goto out;
    }
    while (rc == 0 && (step = sqlite3_step(logs)) == SQLITE_ROW) {
        int64_t gid = sqlite3_column_int64(logs, 0), *hks;
        const uint8_t *dir = sqlite3_column_blob(logs, 1);
        size_t n = (size_t)sqlite3_column_bytes(logs, 1) / LOG_DIR_ENTRY, k = 0;
        const uint8_t *rows = sqlite3_column_blob(logs, 2);
        size_t rows_len = (size_t)sqlite3_column_bytes(logs, 2);

        if ((hks = malloc((n ? n : 1) * sizeof(*hks))) == NULL) {
            rc = ERR_NOMEM;
            break;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            int64_t hk, m = 0;
            uint32_t off, len;
            struct pent *pe;
            memcpy(&hk, dir + i * LOG_DIR_ENTRY, 8);
            memcpy(&off, dir + i * LOG_DIR_ENTRY + 8, 4);
            memcpy(&len, dir + i * LOG_DIR_ENTRY + 12, 4);
            if ((size_t)off + len > rows_len) {
                rc = ERR_INTERNAL;
                break;
            }
            sqlite3_bind_int64(merged, 1, hk);
            step = sqlite3_step(merged);
            m = step == SQLITE_ROW ? sqlite3_column_int64(merged, 0) : 0;
            sqlite3_reset(merged);
            if (step != SQLITE_ROW && step != SQLITE_DONE) {
                rc = sq__err(h->db, "history log");
                break;
            }
            if (step == SQLITE_DONE || gid < m)
                continue; /* the entity's history is gone, or this is in chunks */
            hks[k++] = hk;
            if ((pe = pent_get(h, hk)) == NULL) {
                rc = ERR_NOMEM;
                break;
            }
            h->sv.n = 0;
            if ((rc = lrows_subs(rows + off, rows + off + len, &h->sv)) != 0 ||
                (rc = buf_append(&pe->rows, rows + off, len)) != 0)
                break;
            for (size_t j = 0; j < h->sv.n; j++) {
                struct hcur c;
                struct hent e;
                pe->nums += (uint32_t)h->sv.v[j].nums_len;
                hcur_sub(&c, &h->sv.v[j]);
                while (hist__hcur_next(&c, &e) == 1)
                    if (e.iid >= h->next_iid)
                        h->next_iid = e.iid + 1;
            }
            pe->n += (uint32_t)h->sv.n;
            if (pe->first == 0)
                pe->first = gid;
        }
        if (rc == 0)
            rc = lgroup_push(h, gid, h->group_no, hks, k);
        if (rc != 0)
            free(hks);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = sq__err(h->db, "history log");
    if (rc == ERR_INTERNAL)
        log_msg(LOG_ERROR, "sqlite: the history log is damaged");
out:
    sqlite3_finalize(logs);
    sqlite3_finalize(merged);
    h->saved_iid = h->next_iid;
    return rc;
}

/* ---- an entity's pending rows, for readers (reader connections) ---------- */

void hist__hpend_free(struct hpend *p)
{
    buf_free(&p->bytes);
    subv_free(&p->v);
}

static const char log_gids_sql[] = "SELECT gid FROM hist_log WHERE gid >= ?1 ORDER BY gid";

/* Read entity hk's entry of each log row from gid `merged` on: the
 * directory is searched, then only the entry read (incremental blob I/O: a
 * log row holds every entity of its group). */
int hist__hpend_load(struct sqlite_be *be, sqlite3 *db, int64_t hk, int64_t merged,
                     struct hpend *out)
{
    sqlite3_stmt *st = sq__reader_stmt(be, log_gids_sql);
    sqlite3_blob *dir = NULL, *rows = NULL;
    int rc = 0, step;

    buf_init(&out->bytes, HIST_BUF_MAX);
    memset(&out->v, 0, sizeof(out->v));
    if (st == NULL)
        return sq__err(db, "history log");
    sqlite3_bind_int64(st, 1, merged);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t gid = sqlite3_column_int64(st, 0);
        size_t lo = 0, hi;
        uint8_t e[LOG_DIR_ENTRY];
        int64_t ehk = 0;
        uint32_t off = 0, len = 0;
        int found = 0;

        if ((dir == NULL ? sqlite3_blob_open(db, "main", "hist_log", "dir", gid, 0, &dir)
                         : sqlite3_blob_reopen(dir, gid)) != SQLITE_OK) {
            rc = sq__err(db, "history log");
            break;
        }
        hi = (size_t)sqlite3_blob_bytes(dir) / LOG_DIR_ENTRY;
        while (lo < hi) { /* the first entry whose hk >= ours */
            size_t mid = lo + (hi - lo) / 2;
            if (sqlite3_blob_read(dir, e, LOG_DIR_ENTRY, (int)(mid * LOG_DIR_ENTRY)) != SQLITE_OK) {
                rc = sq__err(db, "history log");
                break;
            }
            memcpy(&ehk, e, 8);
            if (ehk < hk) {
                lo = mid + 1;
            } else {
                hi = mid;
                if (ehk == hk) {
                    found = 1;
                    memcpy(&off, e + 8, 4);
                    memcpy(&len, e + 12, 4);
                }
            }
        }
        if (rc != 0 || !found || len == 0)
            continue;
        if ((rows == NULL ? sqlite3_blob_open(db, "main", "hist_log", "rows", gid, 0, &rows)
                          : sqlite3_blob_reopen(rows, gid)) != SQLITE_OK) {
            rc = sq__err(db, "history log");
            break;
        }
        if ((size_t)off + len > (size_t)sqlite3_blob_bytes(rows)) {
            rc = ERR_INTERNAL;
            break;
        }
        if ((rc = buf_reserve(&out->bytes, len)) != 0)
            break;
        if (sqlite3_blob_read(rows, out->bytes.data + out->bytes.len, (int)len, (int)off) !=
            SQLITE_OK) {
            rc = sq__err(db, "history log");
            break;
        }
        out->bytes.len += len;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = sq__err(db, "history log");
    sqlite3_reset(st); /* the reader's: kept */
    if (dir != NULL)
        sqlite3_blob_close(dir);
    if (rows != NULL)
        sqlite3_blob_close(rows);
    if (rc == 0 && out->bytes.len > 0 &&
        (rc = lrows_subs((const uint8_t *)out->bytes.data,
                         (const uint8_t *)out->bytes.data + out->bytes.len, &out->v)) == 0)
        rc = hist__sub_sort(&out->v);
    if (rc == ERR_INTERNAL)
        log_msg(LOG_ERROR, "sqlite: the history log is damaged");
    if (rc != 0)
        hist__hpend_free(out);
    return rc;
}
