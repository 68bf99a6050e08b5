/*
 * hist_int.h - internals shared by the files of the SQLite backend's
 * temporal history (hist.c, and the files split from it). Nothing else
 * includes it: the rest of the backend sees the sq__hist_* entry points in
 * sqlite_int.h.
 *
 * What they share: the flags of `nums`, the row codec's types and its
 * few-line helpers (varints, sub-row vectors, the walk over a sub-row's
 * instances). The formats are described beside the code that writes them
 * (hist.c: rows, packed instances, chunks).
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
#define HF_KEEP 7 /* the flags hcur_next reports */

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
                         unpacked text (valid until the next hcur_next) */
    size_t inst_len;  /* without the NUL */
};

/* A walk over one row's instances (pointers into SQLite's column memory:
 * valid until the statement moves; a packed instance's text is in unpacked,
 * valid until the next hcur_next). */
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

/* Start a walk (hcur_next) over the instances of sub-row s. */
static inline void hcur_sub(struct hcur *c, const struct sub *s)
{
    c->p = s->nums;
    c->end = s->nums + s->nums_len;
    c->bp = s->body;
    c->bend = s->body ? s->body + s->body_len : NULL;
    c->rid = s->base;
}

#endif
