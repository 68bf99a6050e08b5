/*
 * hist_int.h - internals shared by the files of the SQLite backend's
 * temporal history: hist.c (the layout and its codec, the writer, edits,
 * retention), hist_log.c (pending rows and hist_log) and hist_read.c (the
 * readers). Nothing else includes it: the rest of the backend sees the
 * sq__hist_* entry points in sqlite_int.h.
 *
 * What they share: the flags of `nums`, the row codec's types and its
 * few-line helpers (varints, sub-row vectors, the walk over a sub-row's
 * instances), the writer's statements and state, and the functions one
 * file calls in another. The formats are described beside the code that
 * writes them (hist.c: rows, packed instances, chunks; hist_log.c: the
 * log).
 */
#ifndef PL_HIST_INT_H
#define PL_HIST_INT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"
#include "util/buf.h"
#include "util/time.h"

/* The flags of an instance in `nums` (hist.c's file-top comment). */
#define HF_NUM 1
#define HF_DS 2
#define HF_DEL 4
#define HF_DEC 8 /* with HF_NUM: the value as a decimal, m / 10^k (k in the high nibble) */
#define HF_KEEP 7 /* the flags hist__hcur_next reports */

#define HIST_PENDING 8           /* buffered rows (distinct times) of one entity */
#define HIST_ROW_MAX (64u << 20) /* cap on one row's nums or body */
#define HIST_BUF_MAX ((size_t)1 << 36) /* cap of the scratch buffers that hold many rows */

/* Count a path taken, for the unit tests (store_int.h): t is a struct
 * store_test pointer, NULL but in tests. */
#define HIST_TESTED(t, what) ((t) != NULL ? (void)(t)->what++ : (void)0)

/* ---- row encoding ------------------------------------------------------- */

/* Write v as a varint at o (up to 10 bytes); returns the bytes written. */
static inline size_t raw_varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;

    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        o[n++] = v ? c | 0x80 : c;
    } while (v);
    return n;
}

/* Append v to b as a varint. */
static inline int put_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[10];

    return buf_append(b, tmp, raw_varint(tmp, v));
}

/* Read a varint at *p (before end) into *v and move *p past it; -1 when
 * it is cut short or too long. */
static inline int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;

    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Signed to unsigned with small magnitudes small (0, -1, 1, -2 -> 0, 1,
 * 2, 3), for varints. */
static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* The inverse of zigzag. */
static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- the row codec's types (hist.c) ------------------------------------ */

#define INST_PACKED_MAX 384 /* the longest JSON text a packed entry unpacks to */

/* One decoded instance. inst is NULL when the body was not read. */
struct hent {
    int64_t aid, iid;
    int flags;
    double num;
    const char *inst; /* NUL-terminated: in the row's body, or the cursor's
                         unpacked text (valid until the next hist__hcur_next) */
    size_t inst_len;  /* without the NUL */
};

/* A walk over one row's instances (pointers into SQLite's column memory:
 * valid until the statement moves; a packed instance's text is in unpacked,
 * valid until the next hist__hcur_next). */
struct hcur {
    const uint8_t *p, *end, *bp, *bend;
    int64_t rid;
    char unpacked[INST_PACKED_MAX];
};

/* A row being built. */
struct hrow {
    int64_t t;
    struct buf nums, body;
    long n;
};

/* canon_time's cache (hist.c): the last timestamp it read, and its ms. */
struct tcache {
    char text[TM_ISO_LEN];
    int64_t ms;
};

#define CHUNK_MARK 0x00 /* the first byte of a chunk's nums (hist.c, "chunks") */

/* A sub-row: one write's instances of one entity at time t. body NULL: not
 * read. The pointers are into whatever holds the row (see each user). */
struct sub {
    int64_t t, base;
    const uint8_t *nums, *body;
    size_t nums_len, body_len;
};

/* A growing array of sub-rows. */
struct subv {
    struct sub *v;
    size_t n, cap;
};

/* Append x to s (ERR_NOMEM). */
static inline int subv_push(struct subv *s, const struct sub *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct sub *p = realloc(s->v, cap * sizeof(*p));
        if (p == NULL)
            return ERR_NOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = *x;
    return 0;
}

/* Free s's array and empty it. */
static inline void subv_free(struct subv *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Start a walk (hist__hcur_next) over the instances of sub-row s. */
static inline void hcur_sub(struct hcur *c, const struct sub *s)
{
    c->p = s->nums;
    c->end = s->nums + s->nums_len;
    c->bp = s->body;
    c->bend = s->body ? s->body + s->body_len : NULL;
    c->rid = s->base;
}

/* ---- the writer's statements and state (hist.c, hist_log.c) ---------------- */

/* The writer's statements (hist.c: their SQL, hist__hsql). */
enum hstmt {
    H_INS,
    H_ENT_GET,
    H_ENT_ADD,
    H_ATTR_GET,
    H_ATTR_ADD,
    H_EA_ADD,
    H_META,
    H_ROW_GET,
    H_ROW_AT,
    H_ROW_UPD,
    H_ROW_DEL,
    H_ENT_ROWS,
    H_ROW_BEFORE,
    H_ROW_LAST,
    H_ROW_LE,
    H_MERGED,
    H_LOG_ADD,
    H_LOG_DEL,
    N_HSTMT
};

/* What the writer knows of one entity (sq_hist.slots); a slot taken over
 * for another entity starts with nothing known. */
struct ent_slot {
    int64_t hk;
    uint64_t sig; /* the attributes noted in hist_ent_attrs as of its last write, as a
                     sum of their hashes (0: unknown) */
    int64_t end;  /* a time none of its rows reaches past (INT64_MAX: unknown) */
    int alone;    /* 1: rows at time end are of that time alone (a write at end goes
                     beside them) */
    uint32_t seen; /* the last group that appended to it (hist__pend_flush: low 32 bits of
                      its number; 0: none) */
};

#define ATTR_MEMO 64 /* entries of sq_hist.amemo (a power of two) */
#define NOTED_MAX 64 /* attributes of one entity noted before each is checked alone */

struct pent;   /* hist_log.c: an entity's pending rows */
struct lgroup; /* hist_log.c: a row of hist_log */

#define PENT_SWEEP 64 /* groups between sweeps of the entities with nothing pending */

/* The writer's history state (be->hist): the writer thread only. */
struct sq_hist {
    sqlite3 *db;
    struct store_test *test; /* unit tests' hooks (store_int.h), else NULL */
    sqlite3_stmt *st[N_HSTMT];
    int64_t next_iid;  /* id of the next instance appended */
    int64_t saved_iid; /* next_iid as of the last commit (= meta) */
    int64_t gid;       /* the group being written: its gid (next_iid at its start) */
    int stale;         /* the pending rows could not be read again after a rollback */
    int64_t group_no;  /* and its number, counted since open */
    /* key caches: "tid\x1feid" -> hk, name -> aid; cleared on rollback
     * (their rows went with it) and when they grow too big */
    struct hmap *ents, *attrs;
    /* in front of attrs: the names last looked up, direct-mapped by their
     * length and last bytes (hashing a ~50-byte IRI in attrs for each of a
     * write's instances was ~3 % of the writer); name points at attrs' own
     * copy, so they are dropped with it */
    struct attr_memo {
        const char *name;
        size_t len;
        int64_t aid;
    } amemo[ATTR_MEMO];
    /* per entity, direct-mapped by hk (which counts up from 1: distinct
     * slots for the first ENT_SLOTS entities; NULL until used, dropped on
     * rollback and on deletes):
     * - sig: a write with the same attributes as the entity's last checks
     *   none of them in hist_ent_attrs (a sensor's writes all have the same
     *   ones; at 100,000 entities an exact set of pairs no longer fit a
     *   cache, and each write cost a lookup per attribute);
     * - end: set by the probe of its last row, raised by every row written
     *   since (rows only ever shrink otherwise, so it stays a bound): a
     *   write after it needs no probe;
     * - alone: the probe found the last row of time end alone, or the row
     *   that raised end was; cleared by a row written that reaches end from
     *   before it. A write at time end (a device that repeats its
     *   observedAt) then needs no probe either;
     * - seen: whether the entity is hot (hist__pend_flush). A table of
     *   2^16 slots by hk's low bits did that before; at 100,000 entities
     *   and more its shared slots made cold writes look hot (16 groups of
     *   1,000 consecutive hks cover about a quarter of them): kept
     *   pending, logged and written later (the log trim was 4 % of the
     *   writer at 1,000,000 entities, pent lookups 1 %). */
    struct ent_slot *slots;
    /* the buffered rows of entity hk (of tenant tid, id eid: the next
     * append to the same entity skips the key lookups), the distinct
     * attributes appended to it since it became current, and how many of
     * them are known to be in hist_ent_attrs (notes_check) */
    int64_t hk, tid;
    struct buf eid;
    int64_t noted[NOTED_MAX];
    int n_noted, n_checked;
    struct hrow pend[HIST_PENDING];
    int n_pend;
    struct buf text;         /* an appended instance's JSON, when it does not pack */
    struct tcache tcache[2]; /* observedAt; createdAt and modifiedAt */
    /* pending rows: the entities (open addressing by hk), those this group
     * appended to, and the rows of hist_log, oldest first */
    struct pent **pents;
    size_t pents_cap, pents_n;
    struct pent **touched;
    size_t n_touched, cap_touched;
    struct lgroup *log;
    size_t log_n, log_cap;
    /* scratch of hist__rows_merge and the log */
    struct subv sv, sv2, mv, tmp;
    struct buf mnums, mbody, mold, ldir, lrows;
};

/* An entity's pending rows, as its log entries hold them (gid >= its
 * hist_ents.merged), in time order. */
struct hpend {
    struct buf bytes;
    struct subv v;
};

/* ---- hist.c --------------------------------------------------------------- */

/* The SQL of the writer's statements, by enum hstmt (readers and
 * retention prepare some of them on their own connections). */
extern const char *const hist__hsql[N_HSTMT];
/* Next instance of a walk (hcur_sub): 1, 0 at the end, -1 on a damaged row. */
int hist__hcur_next(struct hcur *c, struct hent *e);
/* Empty a row being built, keeping its buffers. */
void hist__hrow_clear(struct hrow *r);
/* Append the sub-rows of row (rid, t, nums, body) to out (body NULL: not
 * read); ERR_INTERNAL: the row is damaged. */
int hist__row_subs(int64_t rid, int64_t t, const uint8_t *nums, size_t nums_len,
                   const uint8_t *body, size_t body_len, struct subv *out);
/* Sort sub-rows by time, keeping the order of those of one time. */
int hist__sub_sort(struct subv *s);
/* Writer: add the sub-rows p (sorted here) to entity hk's rows, each late
 * one where its time is. */
int hist__rows_merge(struct sq_hist *h, int64_t hk, struct subv *p);
/* Writer: entity hk's slot (sq_hist.slots), taken over for it (nothing
 * known) if another entity had it; NULL when out of memory (then nothing
 * is cached). */
struct ent_slot *hist__ent_slot(struct sq_hist *h, int64_t hk);

/* ---- hist_log.c ----------------------------------------------------------- */

/* Writer: hand the current entity's buffered rows over (written, or kept
 * pending). */
int hist__pend_flush(struct sq_hist *h);
/* Writer: write entity hk's pending rows (before its stored rows are read
 * or changed). */
int hist__ent_settle(struct sq_hist *h, int64_t hk);
/* Writer: rebuild the pending rows from hist_log (at open, after a
 * rollback). */
int hist__pend_rebuild(struct sq_hist *h);
/* Writer, before COMMIT: the group's row of hist_log. */
int hist__hlog_write(struct sq_hist *h);
/* Writer: delete the log rows none of whose entities has rows of them
 * pending, oldest first; past LOG_GROUPS_MAX groups (all: any), their
 * entities' pending rows are written first. */
int hist__hlog_trim(struct sq_hist *h, int all);
/* Writer: rebuild the table of entities with cap slots, keeping those
 * keep() wants (the others are freed). */
int hist__pents_rehash(struct sq_hist *h, size_t cap,
                       int (*keep)(const struct sq_hist *h, const struct pent *pe));
/* hist__pents_rehash's keep() for the entities that have rows pending. */
int hist__keep_live(const struct sq_hist *h, const struct pent *pe);
/* Writer: free the table of entities and their rows. */
void hist__pents_free(struct sq_hist *h);
/* Writer: forget the list of log rows (not the rows). */
void hist__hlog_forget(struct sq_hist *h);
/* Reader: entity hk's pending rows, from its entries in the log rows of
 * gid `merged` on, in time order; free with hist__hpend_free. */
int hist__hpend_load(struct sqlite_be *be, sqlite3 *db, int64_t hk, int64_t merged,
                     struct hpend *out);
/* Reader: free what hist__hpend_load read (a zeroed struct hpend too). */
void hist__hpend_free(struct hpend *p);

#endif
