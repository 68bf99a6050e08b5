/*
 * hist.c - the temporal history of the SQLite backend (schema v6; v8 bodies,
 * v9 nums, v13 chunks and the log): the layout and its codec, the writer's
 * state and entry points, edits of stored instances, retention, and the
 * migration from v5. The pending rows and hist_log are in hist_log.c, the
 * readers (the merged walk over rows and pending rows, lastN, timeproperty
 * reads, aggregation) in hist_read.c; hist_int.h has what the three share.
 *
 * Every entity write appends the attribute instances it set. The layout
 * makes that append cheap, and keeps reads of one entity over a time window
 * on one index:
 *
 *   hist_ents(hk, tid, eid, types, merged) one key per (tenant, entity)
 *   hist_attrs(aid, name)             attribute dictionary (expanded IRIs); unique name
 *   hist_ent_attrs(hk, aid)           which attributes of an entity have history
 *   hist_rows(rid, hk, t, nums, body) one row per entity write and time (the
 *                                     instances one write appended for one entity
 *                                     at observedAt t, ms), or (v13) a chunk of
 *                                     an entity's writes; index (hk, t, nums)
 *   hist_log(gid, dir, rows)          (v13) the writes waiting to become chunks
 *
 * A single row's instances have the ids rid + delta. `nums` describes them,
 * so that aggregation and the instance lookups read only the index:
 *
 *   per instance  varint   aid
 *                 zigzag   iid - rid  (0, 1, 2... as appended; an instance whose
 *                                      time is changed moves to a new row and
 *                                      keeps its id: its delta is then negative)
 *                 u8       flags      HF_NUM: numeric value, HF_DS: has a datasetId,
 *                                      HF_DEL: records a deletion (no value),
 *                                      HF_DEC (schema v9): the value is a decimal,
 *                                      k (0-9) in the high nibble
 *                 the value (HF_NUM only): with HF_DEC a zigzag varint m, the
 *                 value being exactly m / 10^k; else 8 bytes, an IEEE double in
 *                 host order. Sensor readings are short decimals: 1-4 bytes
 *                 instead of 8 keep the index entries small (80 -> 36 bytes of
 *                 nums per bench write; ~10 % less writer CPU per entity).
 *
 * `body` holds their text in the same order: varint length, then the JSON
 * text and a NUL, or (schema v8) a packed instance, which unpacks to the
 * same text (see "packed instances" below). A chunk (see "chunks") holds
 * such writes one after the other.
 *
 * Why: v5 had one row per instance, indexed by (entity attribute, time), so
 * each instance was an insert at a random place of that index, and a group
 * commit of N writes of entities with 8 timed attributes rewrote ~8N index
 * pages into the WAL. v6 made it one row per entity write at the tail of
 * the entity's index range; but a commit of writes to N entities still
 * dirtied N index pages, one per entity. v13 writes an entity's writes ~30
 * at a time (bench/README.md has the figures).
 *
 * instanceIds are never reused: the writer keeps the next one in memory
 * and its high-water mark in meta('hist_next_iid') at every commit that
 * appended history.
 *
 * Threads: the writer calls append/delete/get/set/begin/flush/committed/
 * rollback/settle. It buffers the rows of the entity it is appending to (up
 * to HIST_PENDING distinct times) and hands them over (hist__pend_flush)
 * when the entity changes, before it reads or changes stored history, and
 * before COMMIT; they are then written, or kept pending (hist_log.c).
 * Readers (their own connections) call sq__hist_read and sq__hist_aggr
 * (hist_read.c), which merge the log's pending rows with the stored ones;
 * retention runs on the side connection under side_mu (the store has the
 * writer settle first).
 *
 * Tests: with store_config.test set (store_int.h, struct store_test), the
 * writer fails the commits it is told to and counts the paths it went
 * through, here and in hist_log.c (HIST_TESTED); without, each is one NULL
 * test.
 */
#include "store/sqlite/hist_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "util/buf.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/time.h"

#define HIST_CACHE_MAX 262144    /* entries of the attribute-name cache before it starts over */
#define ENT_CACHE_MAX (1u << 21) /* entries of the entity-key cache (~100 B each) */
#define ENT_SLOTS (1u << 20)     /* sq_hist.slots: what the writer knows per entity */
#define HIST_TEXT_KEEP 65536     /* bytes of the writer's instance text buffer kept */

/* ---- packed instances ------------------------------------------------------
 *
 * Most instances a city keeps are a number with a unit and its timestamps,
 *   {"type":"Property","value":21.5,"unitCode":"CEL","observedAt":"...Z",
 *    "createdAt":"...Z","modifiedAt":"...Z"}
 * about 165 bytes of JSON. Their body entry is packed instead (~12 bytes):
 *   u8 BODY_PACKED, u8 members (PK_STR, PK_UNIT, and PK_OBS << i for each
 *   of pk_times present: observedAt, createdAt, modifiedAt),
 *   [u8 length, the unitCode], then each timestamp present as a zigzag
 *   varint: its ms minus the previous one present (the first minus 0).
 * The value is the instance's HF_NUM double in `nums`; a string value
 * (PK_STR) is stored as u8 length and bytes before the unit. An instance is
 * packed only when unpacking gives its exact text back: numbers printed as
 * json_write prints them, times as tm_format prints them, members in this
 * order, strings of printable ASCII without escapes. Anything else (other
 * members, datasetId, other types) stays JSON, whose entries start with '{'
 * and end with a NUL.
 */
#define BODY_PACKED 0x01
#define PK_UNIT 1
#define PK_OBS 2 /* PK_OBS << i for the i-th of pk_times */
#define PK_STR 16
#define PK_ALL 31 /* every members bit */
#define PK_STR_MAX 64 /* longest string value or unit packed */
#define PK_MAX (2 + 2 * (1 + PK_STR_MAX) + 3 * 10)

static const char pk_head[] = "{\"type\":\"Property\",\"value\":";
static const char pk_unit[] = ",\"unitCode\":\"";
static const char *const pk_times[3] = {",\"observedAt\":\"", ",\"createdAt\":\"",
                                        ",\"modifiedAt\":\""};

/* Skip the literal lit at *p if it is there. */
static int skip_lit(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* Copy a JSON string body at *p (after its opening quote) that needs no
 * escapes to o as u8 length + bytes, and skip its closing quote; returns
 * the bytes written, 0 when it does not pack. */
static size_t pack_str(const char **p, const char *end, uint8_t *o)
{
    const char *u = *p, *q = *p;

    while (q < end && *q != '"') {
        if (*q < 0x20 || *q > 0x7e || *q == '\\')
            return 0;
        q++;
    }
    if (q == end || q - u > PK_STR_MAX)
        return 0;
    o[0] = (uint8_t)(q - u);
    memcpy(o + 1, u, (size_t)(q - u));
    *p = q + 1;
    return (size_t)(q - u) + 1;
}

/* Unpack a pack_str at *p into o as a quoted JSON string; returns the
 * characters written, 0 when damaged (bytes pack_str never writes). */
static size_t unpack_str(const uint8_t **p, const uint8_t *end, char *o)
{
    size_t n;

    if (*p >= end || (n = **p) > PK_STR_MAX || (size_t)(end - *p - 1) < n)
        return 0;
    for (size_t i = 1; i <= n; i++)
        if ((*p)[i] < 0x20 || (*p)[i] > 0x7e || (*p)[i] == '"' || (*p)[i] == '\\')
            return 0;
    o[0] = '"';
    memcpy(o + 1, *p + 1, n);
    o[n + 1] = '"';
    *p += n + 1;
    return n + 2;
}

/* Pack the instance text s (len bytes) into out (PK_MAX bytes); its value
 * is num when it has HF_NUM (flags). Returns the packed length, 0 when it
 * does not pack. */
static size_t pack_inst(const char *s, size_t len, int flags, double num, uint8_t *out)
{
    const char *p = s, *end = s + len;
    char text[JSON_NUM_MAX > TM_ISO_LEN ? JSON_NUM_MAX : TM_ISO_LEN];
    uint8_t *o = out + 2;
    int64_t prev = 0;
    size_t n;

    out[1] = 0;
    if ((flags & ~HF_NUM) != 0 || !skip_lit(&p, end, pk_head))
        return 0;
    if (flags & HF_NUM) {
        n = json_number_text(num, text);
        if ((size_t)(end - p) < n || memcmp(p, text, n) != 0)
            return 0;
        p += n;
    } else if (skip_lit(&p, end, "\"") && (n = pack_str(&p, end, o)) > 0) {
        o += n;
        out[1] |= PK_STR;
    } else {
        return 0;
    }
    if (skip_lit(&p, end, pk_unit)) {
        if ((n = pack_str(&p, end, o)) == 0)
            return 0;
        o += n;
        out[1] |= PK_UNIT;
    }
    for (int i = 0; i < 3; i++) {
        int64_t ms;
        if (!skip_lit(&p, end, pk_times[i]))
            continue;
        if (end - p < 25 || p[24] != '"')
            return 0;
        memcpy(text, p, 24);
        text[24] = '\0';
        if (tm_parse(text, &ms) != 0)
            return 0;
        tm_format(ms, text);
        if (memcmp(text, p, 24) != 0)
            return 0;
        o += raw_varint(o, zigzag(ms - prev));
        prev = ms;
        p += 25;
        out[1] |= (uint8_t)(PK_OBS << i);
    }
    if (end - p != 1 || *p != '}')
        return 0;
    out[0] = BODY_PACKED;
    return (size_t)(o - out);
}

/* Unpack a packed entry (p .. end, after BODY_PACKED) into out
 * (INST_PACKED_MAX bytes, NUL-terminated); its value is num when it has
 * HF_NUM (flags). Returns the text's length, 0 when the entry is damaged. */
static size_t unpack_inst(const uint8_t *p, const uint8_t *end, int flags, double num, char *out)
{
    char *o = out;
    int64_t prev = 0;
    uint8_t members;
    size_t n;

    if (p >= end)
        return 0;
    members = *p++;
    if ((flags & ~HF_NUM) != 0 || (members & ~PK_ALL) != 0 ||
        !(flags & HF_NUM) == !(members & PK_STR))
        return 0; /* packing never writes these; a value is a number or a string */
    memcpy(o, pk_head, sizeof(pk_head) - 1);
    o += sizeof(pk_head) - 1;
    if (flags & HF_NUM)
        o += json_number_text(num, o);
    else if ((n = unpack_str(&p, end, o)) == 0)
        return 0;
    else
        o += n;
    if (members & PK_UNIT) {
        memcpy(o, pk_unit, sizeof(pk_unit) - 2);
        o += sizeof(pk_unit) - 2; /* unpack_str writes the quotes */
        if ((n = unpack_str(&p, end, o)) == 0)
            return 0;
        o += n;
    }
    for (int i = 0; i < 3; i++) {
        uint64_t z;
        if (!(members & (PK_OBS << i)))
            continue;
        if (get_varint(&p, end, &z))
            return 0;
        prev = (int64_t)((uint64_t)prev + (uint64_t)unzigzag(z)); /* wraps on damage */
        memcpy(o, pk_times[i], strlen(pk_times[i]));
        o += strlen(pk_times[i]);
        tm_format(prev, o);
        o += 24;
        *o++ = '"';
    }
    if (p != end)
        return 0;
    *o++ = '}';
    *o = '\0';
    return (size_t)(o - out);
}

/* A timestamp as tm_format prints it ("YYYY-MM-DDTHH:MM:SS.mmmZ"): its ms
 * in *ms, else -1. last caches the previous answer: the createdAt and
 * modifiedAt of one write are the same string. */
static int canon_time(const char *s, struct tcache *last, int64_t *ms)
{
    char again[TM_ISO_LEN];

    if (strlen(s) != 24)
        return -1;
    if (memcmp(s, last->text, 25) == 0) {
        *ms = last->ms;
        return 0;
    }
    if (tm_parse(s, ms) != 0)
        return -1;
    tm_format(*ms, again);
    if (memcmp(again, s, 25) != 0)
        return -1;
    memcpy(last->text, s, 25);
    last->ms = *ms;
    return 0;
}

/* A string json_write prints as is (no escapes) that fits a pack_str:
 * written to o as pack_str writes it; its size, 0 when it does not fit. */
static size_t plain_str(const cJSON *v, uint8_t *o)
{
    const char *c;

    if (!cJSON_IsString(v))
        return 0;
    for (c = v->valuestring; *c; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\' || c - v->valuestring >= PK_STR_MAX)
            return 0;
    o[0] = (uint8_t)(c - v->valuestring);
    memcpy(o + 1, v->valuestring, (size_t)o[0]);
    return (size_t)o[0] + 1;
}

/* Pack the instance inst into out (PK_MAX bytes) exactly as pack_inst
 * packs the text json_write prints of it, without printing it; 0 when it
 * does not pack. tc: canon_time's caches (observedAt; the other two). */
static size_t pack_json(const cJSON *inst, int flags, double num, struct tcache tc[2],
                        uint8_t *out)
{
    static const char *const names[3] = {"observedAt", "createdAt", "modifiedAt"};
    const cJSON *m = cJSON_IsObject(inst) ? inst->child : NULL;
    uint8_t *o = out + 2;
    int64_t prev = 0;
    size_t n;

    out[1] = 0;
    if ((flags & ~HF_NUM) != 0 || m == NULL || m->string == NULL ||
        strcmp(m->string, "type") != 0 || !cJSON_IsString(m) ||
        strcmp(m->valuestring, "Property") != 0)
        return 0;
    if ((m = m->next) == NULL || m->string == NULL || strcmp(m->string, "value") != 0)
        return 0;
    if (flags & HF_NUM) {
        if (!cJSON_IsNumber(m) || memcmp(&m->valuedouble, &num, sizeof(num)) != 0)
            return 0;
    } else if ((n = plain_str(m, o)) > 0) {
        o += n;
        out[1] |= PK_STR;
    } else {
        return 0;
    }
    m = m->next;
    if (m != NULL && m->string != NULL && strcmp(m->string, "unitCode") == 0) {
        if ((n = plain_str(m, o)) == 0)
            return 0;
        o += n;
        out[1] |= PK_UNIT;
        m = m->next;
    }
    for (int i = 0; i < 3 && m != NULL; i++) {
        int64_t ms;
        if (m->string == NULL || strcmp(m->string, names[i]) != 0)
            continue;
        if (!cJSON_IsString(m) || canon_time(m->valuestring, &tc[i > 0], &ms) != 0)
            return 0;
        o += raw_varint(o, zigzag(ms - prev));
        prev = ms;
        out[1] |= (uint8_t)(PK_OBS << i);
        m = m->next;
    }
    if (m != NULL)
        return 0;
    out[0] = BODY_PACKED;
    return (size_t)(o - out);
}

/* Values as decimals: most readings are short decimals (21.5, 0.29, 174),
 * 1-4 bytes as m / 10^k instead of 8 as a double, kept so only when the
 * division gives back the very same double. Returns k (json_decimal's), -1
 * when the value stays a double (NaN, -0, over 10^9, no short decimal). */
static int dec_of(double num, long long *m)
{
    if (!(fabs(num) < 1e9) || (num == 0 && signbit(num)))
        return -1; /* also NaN; -0 keeps its sign as a double */
    return json_decimal(num, m);
}

/* Next instance: 1, 0 at the end, -1 on a damaged row. */
int hist__hcur_next(struct hcur *c, struct hent *e)
{
    uint64_t aid, delta, len;

    if (c->p == NULL || c->p >= c->end)
        return 0;
    if (get_varint(&c->p, c->end, &aid) || get_varint(&c->p, c->end, &delta) || c->p >= c->end)
        return -1;
    e->aid = (int64_t)aid;
    e->iid = (int64_t)((uint64_t)c->rid + (uint64_t)unzigzag(delta)); /* damaged rows wrap */
    e->flags = *c->p++;
    e->num = NAN;
    if ((e->flags & (HF_NUM | HF_DEC)) == (HF_NUM | HF_DEC)) {
        uint64_t m;
        int k = e->flags >> 4;
        if (k > 9 || get_varint(&c->p, c->end, &m))
            return -1;
        e->num = (double)unzigzag(m) / json_pow10[k];
    } else if (e->flags & HF_NUM) {
        if (c->end - c->p < 8)
            return -1;
        memcpy(&e->num, c->p, 8);
        c->p += 8;
    }
    e->flags &= HF_KEEP;
    e->inst = NULL;
    e->inst_len = 0;
    if (c->bp != NULL) {
        if (get_varint(&c->bp, c->bend, &len) || len == 0 || len > (uint64_t)(c->bend - c->bp))
            return -1;
        if (c->bp[0] == BODY_PACKED) {
            e->inst_len = unpack_inst(c->bp + 1, c->bp + len, e->flags, e->num, c->unpacked);
            if (e->inst_len == 0)
                return -1;
            e->inst = c->unpacked;
        } else {
            if (c->bp[len - 1] != '\0')
                return -1;
            e->inst = (const char *)c->bp;
            e->inst_len = len - 1;
        }
        c->bp += len;
    }
    return 1;
}

static void hrow_init(struct hrow *r)
{
    r->t = 0;
    r->n = 0;
    buf_init(&r->nums, HIST_ROW_MAX);
    buf_init(&r->body, HIST_ROW_MAX);
}

void hist__hrow_clear(struct hrow *r)
{
    buf_reset(&r->nums);
    buf_reset(&r->body);
    r->n = 0;
}

static void hrow_free(struct hrow *r)
{
    buf_free(&r->nums);
    buf_free(&r->body);
}

/* Add an instance to a row: its nums entry, then its body entry, which is
 * packed (n > 0 bytes at packed) or else the JSON text. */
static int hrow_put(struct hrow *r, int64_t aid, int64_t delta, int flags, double num,
                    const uint8_t *packed, size_t n, const char *inst, size_t inst_len)
{
    long long m = 0;
    int k = (flags & HF_NUM) ? dec_of(num, &m) : -1;
    uint8_t f = (uint8_t)(k >= 0 ? flags | HF_DEC | k << 4 : flags);
    int rc;

    if ((rc = put_varint(&r->nums, (uint64_t)aid)) || (rc = put_varint(&r->nums, zigzag(delta))) ||
        (rc = buf_append(&r->nums, &f, 1)))
        return rc;
    if (k >= 0)
        rc = put_varint(&r->nums, zigzag(m));
    else if (flags & HF_NUM)
        rc = buf_append(&r->nums, &num, 8);
    if (rc)
        return rc;
    if (n > 0) {
        if ((rc = put_varint(&r->body, n)) == 0)
            rc = buf_append(&r->body, packed, n);
    } else if ((rc = put_varint(&r->body, inst_len + 1)) == 0 &&
               (rc = buf_append(&r->body, inst, inst_len)) == 0) {
        rc = buf_append(&r->body, "", 1);
    }
    if (rc)
        return rc;
    r->n++;
    return 0;
}

/* Add an instance given as JSON text (packed when it packs). */
static int hrow_add(struct hrow *r, int64_t aid, int64_t delta, int flags, double num,
                    const char *inst, size_t inst_len)
{
    uint8_t packed[PK_MAX];
    size_t n = pack_inst(inst, inst_len, flags, num, packed);

    return hrow_put(r, aid, delta, flags, num, packed, n, inst, inst_len);
}

static int flags_of(double num, const char *ds)
{
    return (isnan(num) ? 0 : HF_NUM) | (ds ? HF_DS : 0);
}

/* ---- chunks (schema v13) ----------------------------------------------------
 *
 * A row of hist_rows is one write (the layout above; rid is its base), or a
 * chunk of several writes of one entity. A chunk's nums start with
 * CHUNK_MARK (an aid is never 0), then per write (a sub-row), in time order:
 *   zigzag  its t minus the previous sub-row's (the first: minus the row's t)
 *   zigzag  its base minus the previous base (the first: minus rid)
 *   varint  the bytes of its nums, varint the bytes of its body
 *   its nums, as a single row's (instances at base + delta)
 * and the chunk's body is the sub-rows' bodies one after the other. A chunk's
 * rid is an id of its own, taken from the instance ids so that it never
 * equals a base; its t is its first sub-row's. An entity's rows never
 * overlap in time: each ends before the next starts (single rows of
 * databases written before v13 may share a time), so rows read in t order
 * give their sub-rows in time order. hist__rows_merge keeps it so.
 *
 * Why: a commit that appends a row to each of 1,000 entities dirties 1,000
 * pages of the (hk, t, nums) index, one per entity, and writes them to the
 * WAL and the database again (8 KiB each). A chunk of ~30 writes costs one
 * index entry; the writes wait for it in hist_log (hist_log.c).
 */
#define CHUNK_SUB_MAX 64    /* sub-rows per chunk (a merge may leave fewer) */
#define CHUNK_NUMS_MAX 1536 /* nums bytes per chunk: its index entry stays on its page */
#define CHUNK_BODY_MAX (256u << 10) /* body bytes per chunk (a bigger write is a row alone) */

/* Append the sub-rows of row (rid, t, nums, body) to out; body NULL: not
 * read. ERR_INTERNAL: the row is damaged. */
int hist__row_subs(int64_t rid, int64_t t, const uint8_t *nums, size_t nums_len,
                   const uint8_t *body, size_t body_len, struct subv *out)
{
    const uint8_t *p = nums, *end = nums + nums_len, *bp = body, *bend = body + body_len;
    int64_t pt = t, pb = rid;
    int rc;

    if (nums_len == 0 || nums[0] != CHUNK_MARK) {
        struct sub x = {t, rid, nums, body, nums_len, body ? body_len : 0};
        return subv_push(out, &x);
    }
    for (p++; p < end;) {
        uint64_t dt, db, nl, bl;
        struct sub x;
        if (get_varint(&p, end, &dt) || get_varint(&p, end, &db) || get_varint(&p, end, &nl) ||
            get_varint(&p, end, &bl) || nl > (uint64_t)(end - p))
            return ERR_INTERNAL;
        /* wrapping adds: a damaged row must not be undefined behaviour */
        x.t = pt = (int64_t)((uint64_t)pt + (uint64_t)unzigzag(dt));
        x.base = pb = (int64_t)((uint64_t)pb + (uint64_t)unzigzag(db));
        x.nums = p;
        x.nums_len = nl;
        p += nl;
        x.body = NULL;
        x.body_len = 0;
        if (body != NULL) {
            if (bl > (uint64_t)(bend - bp))
                return ERR_INTERNAL;
            x.body = bp;
            x.body_len = bl;
            bp += bl;
        }
        if ((rc = subv_push(out, &x)) != 0)
            return rc;
    }
    return 0;
}

/* The sub-rows s[0 .. n) as one row with id rid: a single row when it is one
 * whose base is rid, else a chunk. */
static int row_encode(const struct sub *s, size_t n, int64_t rid, struct buf *nums,
                      struct buf *body)
{
    int64_t pt = s[0].t, pb = rid;
    uint8_t mark = CHUNK_MARK;
    int rc = 0;

    buf_reset(nums);
    buf_reset(body);
    if (n == 1 && s[0].base == rid) {
        if ((rc = buf_append(nums, s[0].nums, s[0].nums_len)) == 0)
            rc = buf_append(body, s[0].body, s[0].body_len);
        return rc;
    }
    rc = buf_append(nums, &mark, 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t head[40];
        size_t k = raw_varint(head, zigzag(s[i].t - pt));
        k += raw_varint(head + k, zigzag(s[i].base - pb));
        k += raw_varint(head + k, s[i].nums_len);
        k += raw_varint(head + k, s[i].body_len);
        if ((rc = buf_append(nums, head, k)) == 0 &&
            (rc = buf_append(nums, s[i].nums, s[i].nums_len)) == 0)
            rc = buf_append(body, s[i].body, s[i].body_len);
        pt = s[i].t;
        pb = s[i].base;
    }
    return rc;
}

/* Sort sub-rows by time, keeping the order of those of one time. */
struct skey {
    int64_t t;
    size_t i;
};

static int skey_cmp(const void *x, const void *y)
{
    const struct skey *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int hist__sub_sort(struct subv *s)
{
    struct skey *k;
    struct sub *v;
    size_t i;

    for (i = 1; i < s->n && s->v[i - 1].t <= s->v[i].t; i++)
        ;
    if (i >= s->n)
        return 0; /* already in order: the common case */
    k = malloc(s->n * sizeof(*k));
    v = malloc(s->n * sizeof(*v));
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return ERR_NOMEM;
    }
    for (i = 0; i < s->n; i++)
        k[i] = (struct skey){s->v[i].t, i};
    qsort(k, s->n, sizeof(*k), skey_cmp);
    for (i = 0; i < s->n; i++)
        v[i] = s->v[k[i].i];
    memcpy(s->v, v, s->n * sizeof(*v));
    free(k);
    free(v);
    return 0;
}

/* ---- writer state --------------------------------------------------------- */

const char *const hist__hsql[N_HSTMT] = {
    [H_INS] = "INSERT INTO hist_rows(rid, hk, t, nums, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    [H_ENT_GET] = "SELECT hk FROM hist_ents WHERE tid = ?1 AND eid = ?2",
    [H_ENT_ADD] = "INSERT INTO hist_ents(tid, eid) VALUES (?1, ?2)",
    [H_ATTR_GET] = "SELECT aid FROM hist_attrs WHERE name = ?1",
    [H_ATTR_ADD] = "INSERT INTO hist_attrs(name) VALUES (?1)",
    [H_EA_ADD] = "INSERT OR IGNORE INTO hist_ent_attrs(hk, aid) VALUES (?1, ?2)",
    [H_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES ('hist_next_iid', ?1)",
    [H_ROW_GET] = "SELECT rid, hk, t, nums, body FROM hist_rows WHERE rid = ?1",
    [H_ROW_AT] = "SELECT rid FROM hist_rows WHERE rid <= ?1 ORDER BY rid DESC LIMIT 1",
    [H_ROW_UPD] = "UPDATE hist_rows SET nums = ?2, body = ?3, t = ?4 WHERE rid = ?1",
    [H_ROW_DEL] = "DELETE FROM hist_rows WHERE rid = ?1",
    [H_ENT_ROWS] = "SELECT rid, t, nums FROM hist_rows WHERE hk = ?1",
    [H_ROW_BEFORE] = ("SELECT rid, t, nums FROM hist_rows WHERE hk = ?1 AND t < ?2"
                      " ORDER BY t DESC LIMIT 1"),
    [H_ROW_LAST] = "SELECT rid, t, nums FROM hist_rows WHERE hk = ?1 ORDER BY t DESC LIMIT 1",
    [H_ROW_LE] = ("SELECT rid, t, nums FROM hist_rows WHERE hk = ?1 AND t <= ?2"
                  " ORDER BY t DESC LIMIT 1"),
    [H_MERGED] = "UPDATE hist_ents SET merged = ?2 WHERE hk = ?1",
    [H_LOG_ADD] = "INSERT INTO hist_log(gid, dir, rows) VALUES (?1, ?2, ?3)",
    [H_LOG_DEL] = "DELETE FROM hist_log WHERE gid = ?1",
};

static uint64_t aid_hash(int64_t aid)
{
    uint64_t x = (uint64_t)aid + 0x9E3779B97F4A7C15ull; /* splitmix64's finalizer */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* ---- keys, and rows written as chunks (writer) ------------------------------ */

static void caches_clear(struct sq_hist *h)
{
    h->tid = 0; /* forget the current entity's keys too */
    h->n_noted = h->n_checked = 0;
    hmap_free(h->ents, NULL);
    hmap_free(h->attrs, NULL);
    h->ents = h->attrs = NULL;
    memset(h->amemo, 0, sizeof(h->amemo));
    free(h->slots);
    h->slots = NULL;
}

static void *cache_get(struct hmap *m, const char *key)
{
    return m ? hmap_get(m, key) : NULL;
}

static void cache_put(struct sq_hist *h, struct hmap **m, const char *key, int64_t v, size_t max)
{
    if (*m != NULL && hmap_count(*m) >= max) {
        hmap_free(*m, NULL);
        *m = NULL;
        if (m == &h->attrs) /* the memo points into it */
            memset(h->amemo, 0, sizeof(h->amemo));
    }
    if (*m == NULL)
        *m = hmap_new(1024);
    if (*m != NULL)
        (void)hmap_put(*m, key, (void *)(intptr_t)v, NULL); /* a cache: failure is a miss */
}

/* Look up (or insert when create != 0) a key row: SELECT get with the text
 * arguments, else INSERT add. *id = 0 when absent and not created. */
static int key_row(struct sq_hist *h, enum hstmt get, enum hstmt add, int64_t tid, const char *text,
                   int create, int64_t *id)
{
    sqlite3_stmt *st = h->st[get];
    int i = 1, rc;

    *id = 0;
    if (get == H_ENT_GET)
        sqlite3_bind_int64(st, i++, tid);
    sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq__err(h->db, "history key");
    if (*id || !create)
        return 0;
    st = h->st[add];
    i = 1;
    if (add == H_ENT_ADD)
        sqlite3_bind_int64(st, i++, tid);
    sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
    if (sq__step_done(st))
        return sq__err(h->db, "history key insert");
    *id = sqlite3_last_insert_rowid(h->db);
    return 0;
}

static int ent_key(struct sq_hist *h, int64_t tid, const char *eid, int create, int64_t *hk)
{
    char key[1024];
    size_t n = 0, len = strlen(eid);
    int cacheable, rc;
    void *v;

    /* "tid\x1feid" (a tenant id is at most 20 digits) */
    for (uint64_t x = (uint64_t)tid;; x /= 10) {
        key[n++] = (char)('0' + x % 10);
        if (x < 10)
            break;
    }
    for (size_t i = 0; i < n / 2; i++) {
        char c = key[i];
        key[i] = key[n - 1 - i];
        key[n - 1 - i] = c;
    }
    key[n++] = '\x1f';
    cacheable = n + len < sizeof(key);
    if (cacheable)
        memcpy(key + n, eid, len + 1);
    if (cacheable && (v = cache_get(h->ents, key)) != NULL) {
        *hk = (int64_t)(intptr_t)v;
        return 0;
    }
    if ((rc = key_row(h, H_ENT_GET, H_ENT_ADD, tid, eid, create, hk)) == 0 && *hk && cacheable)
        cache_put(h, &h->ents, key, *hk, ENT_CACHE_MAX);
    return rc;
}

static int attr_key(struct sq_hist *h, const char *attr, int create, int64_t *aid)
{
    size_t len = strlen(attr);
    uint64_t tail = len;
    const char *stored;
    void *v;
    int rc;

    memcpy(&tail, attr + (len > 8 ? len - 8 : 0), len < 8 ? len : 8);
    tail = (tail ^ len) * 0x9E3779B97F4A7C15ull;
    struct attr_memo *m = &h->amemo[tail >> 58 & (ATTR_MEMO - 1)];
    if (m->name != NULL && m->len == len && memcmp(m->name, attr, len) == 0) {
        *aid = m->aid;
        return 0;
    }
    if (h->attrs != NULL && (v = hmap_get_entry(h->attrs, attr, &stored)) != NULL) {
        *aid = (int64_t)(intptr_t)v;
        *m = (struct attr_memo){stored, len, *aid};
        return 0;
    }
    if ((rc = key_row(h, H_ATTR_GET, H_ATTR_ADD, 0, attr, create, aid)) == 0 && *aid)
        cache_put(h, &h->attrs, attr, *aid, HIST_CACHE_MAX);
    return rc;
}

static int ea_add(struct sq_hist *h, int64_t hk, int64_t aid)
{
    sqlite3_stmt *st = h->st[H_EA_ADD];
    HIST_TESTED(h->test, attr_notes);
    sqlite3_bind_int64(st, 1, hk);
    sqlite3_bind_int64(st, 2, aid);
    return sq__step_done(st) ? sq__err(h->db, "history attribute") : 0;
}

/* Record that entity hk (the current one) has history of attribute aid:
 * listed in noted, for notes_check (before the entity changes and before
 * the group commits); past NOTED_MAX attributes, written at once. */
static int ent_attr_note(struct sq_hist *h, int64_t hk, int64_t aid)
{
    for (int i = 0; i < h->n_noted; i++)
        if (h->noted[i] == aid)
            return 0;
    if (h->n_noted == NOTED_MAX)
        return ea_add(h, hk, aid);
    h->noted[h->n_noted++] = aid;
    return 0;
}

struct ent_slot *hist__ent_slot(struct sq_hist *h, int64_t hk)
{
    struct ent_slot *s;

    if (h->slots == NULL && (h->slots = calloc(ENT_SLOTS, sizeof(*h->slots))) == NULL)
        return NULL;
    s = &h->slots[(uint64_t)hk & (ENT_SLOTS - 1)];
    if (s->hk != hk)
        *s = (struct ent_slot){hk, 0, INT64_MAX, 0, 0};
    return s;
}

/* Make sure the current entity's noted attributes are in hist_ent_attrs:
 * none is looked up when they are the ones its last write had. */
static int notes_check(struct sq_hist *h)
{
    struct ent_slot *slot;
    uint64_t sig = 0;
    int rc;

    if (h->n_checked == h->n_noted)
        return 0;
    for (int i = 0; i < h->n_noted; i++)
        sig += aid_hash(h->noted[i]);
    sig |= 1; /* never 0, which means unknown */
    if ((slot = hist__ent_slot(h, h->hk)) == NULL || slot->sig != sig) {
        for (int i = h->n_checked; i < h->n_noted; i++)
            if ((rc = ea_add(h, h->hk, h->noted[i])) != 0)
                return rc;
        if (slot != NULL)
            slot->sig = sig;
    }
    h->n_checked = h->n_noted;
    return 0;
}

static int row_insert(struct sq_hist *h, int64_t rid, int64_t hk, int64_t t, const struct buf *nums,
                      const struct buf *body)
{
    sqlite3_stmt *st = h->st[H_INS];

    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, hk);
    sqlite3_bind_int64(st, 3, t);
    sqlite3_bind_blob(st, 4, nums->data, (int)nums->len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, body->data, (int)body->len, SQLITE_STATIC);
    return sq__step_done(st) ? sq__err(h->db, "history append") : 0;
}

/* Write the sub-rows s[a .. b) (of one time, or whole times) as one row. */
static int row_put(struct sq_hist *h, int64_t hk, const struct subv *s, size_t a, size_t b)
{
    int64_t rid = b - a == 1 ? s->v[a].base : h->next_iid++;
    int rc = row_encode(s->v + a, b - a, rid, &h->mnums, &h->mbody);
    struct ent_slot *es;

    if (b - a > 1)
        HIST_TESTED(h->test, chunks);
    if (rc == 0 && (rc = row_insert(h, rid, hk, s->v[a].t, &h->mnums, &h->mbody)) == 0 &&
        (es = hist__ent_slot(h, hk)) != NULL) {
        int64_t t0 = s->v[a].t, t1 = s->v[b - 1].t;
        if (es->end < t1) { /* a known bound is raised (INT64_MAX: unknown stays) */
            es->end = t1;
            es->alone = t0 == t1;
        } else if (es->end == t1 && t0 < t1) {
            es->alone = 0;
        }
    }
    return rc;
}

/* Write the sub-rows s (in time order) as rows of entity hk: chunks of up
 * to CHUNK_SUB_MAX sub-rows, CHUNK_NUMS_MAX bytes of nums and
 * CHUNK_BODY_MAX of body. A chunk of several times holds every sub-row of
 * each of them; a time with more than fit is written as rows of that time
 * alone (rows of one time may share it: read in t order, they still give
 * sub-rows in time order), a sub-row bigger than a chunk as a row of its
 * own. */
static int rows_write(struct sq_hist *h, int64_t hk, const struct subv *s)
{
    size_t a = 0, nums = 0, body = 0, i = 0;
    int rc = 0;

#define FITS(n_sub, n_nums, n_body)                                                                \
    ((n_sub) <= CHUNK_SUB_MAX && (n_nums) <= CHUNK_NUMS_MAX && (n_body) <= CHUNK_BODY_MAX)
    while (rc == 0 && i < s->n) {
        size_t j = i, rn = 0, rb = 0; /* the sub-rows of the time at i: [i, j) */
        while (j < s->n && s->v[j].t == s->v[i].t) {
            rn += s->v[j].nums_len + 8;
            rb += s->v[j++].body_len;
        }
        if (i > a && !FITS(j - a, nums + rn, body + rb)) {
            rc = row_put(h, hk, s, a, i); /* the chunk so far, without this time */
            a = i;
            nums = body = 0;
        }
        if (rc == 0 && !FITS(j - i, rn, rb)) {
            for (size_t k = i; rc == 0 && k < j;) { /* a time too big for a chunk */
                size_t e = k + 1, nn = s->v[k].nums_len + 8, nb = s->v[k].body_len;
                while (e < j && FITS(e + 1 - k, nn + s->v[e].nums_len + 8, nb + s->v[e].body_len)) {
                    nn += s->v[e].nums_len + 8;
                    nb += s->v[e++].body_len;
                }
                rc = row_put(h, hk, s, k, e);
                k = e;
            }
            a = j;
            nums = body = 0;
        } else {
            nums += rn;
            body += rb;
        }
        i = j;
    }
#undef FITS
    if (rc == 0 && a < s->n)
        rc = row_put(h, hk, s, a, s->n);
    return rc;
}

/* Is row (rid, t, nums) of one time? Sets *last to its last time. */
static int row_last(struct sq_hist *h, sqlite3_stmt *st, int64_t *last)
{
    int rc;

    h->tmp.n = 0;
    rc = hist__row_subs(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                        sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), NULL, 0,
                        &h->tmp);
    *last = rc == 0 && h->tmp.n > 0 ? h->tmp.v[h->tmp.n - 1].t : sqlite3_column_int64(st, 1);
    return rc;
}

/* Write the sub-rows p (in time order) when the only rows at p's first
 * time are of that time alone and none overlaps the rest: p's sub-rows of
 * that time as rows of their own beside them, then the rest. */
static int rows_beside(struct sq_hist *h, int64_t hk, const struct subv *p)
{
    size_t j = 0;
    int rc;

    while (j < p->n && p->v[j].t == p->v[0].t)
        j++;
    if ((rc = rows_write(h, hk, &(struct subv){p->v, j, j})) != 0 || j == p->n)
        return rc;
    return rows_write(h, hk, &(struct subv){p->v + j, p->n - j, p->n - j});
}

/* Rewrite row rid of entity hk with the sub-rows add (all within its
 * span): read it (a copy: its statement moves on), delete it, write its
 * sub-rows and add's in time order (of one time: the stored ones first). */
static int row_rewrite(struct sq_hist *h, int64_t hk, int64_t rid, const struct sub *add,
                       size_t n_add)
{
    sqlite3_stmt *st = h->st[H_ROW_GET];
    size_t nums_len = 0, body_len = 0;
    int64_t t = 0;
    int rc = 0, step;

    HIST_TESTED(h->test, row_rewrites);
    buf_reset(&h->mold);
    sqlite3_bind_int64(st, 1, rid);
    if ((step = sqlite3_step(st)) != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? ERR_INTERNAL : sq__err(h->db, "history merge");
    } else {
        t = sqlite3_column_int64(st, 2);
        nums_len = (size_t)sqlite3_column_bytes(st, 3);
        body_len = (size_t)sqlite3_column_bytes(st, 4);
        if ((rc = buf_append(&h->mold, sqlite3_column_blob(st, 3), nums_len)) == 0)
            rc = buf_append(&h->mold, sqlite3_column_blob(st, 4), body_len);
    }
    sqlite3_reset(st);
    if (rc == 0) {
        st = h->st[H_ROW_DEL];
        sqlite3_bind_int64(st, 1, rid);
        if (sq__step_done(st))
            rc = sq__err(h->db, "history merge");
    }
    h->mv.n = 0;
    if (rc == 0) {
        const uint8_t *m = (const uint8_t *)h->mold.data;
        rc = hist__row_subs(rid, t, m, nums_len, m + nums_len, body_len, &h->mv);
        if (rc == ERR_INTERNAL)
            log_msg(LOG_ERROR, "sqlite: history row %" PRId64 " is damaged", rid);
    }
    for (size_t i = 0; rc == 0 && i < n_add; i++)
        rc = subv_push(&h->mv, &add[i]);
    if (rc == 0 && (rc = hist__sub_sort(&h->mv)) == 0)
        rc = rows_write(h, hk, &h->mv);
    return rc;
}

/* Where a late sub-row goes (hist__rows_merge). */
enum { LATE_INTO, LATE_BESIDE, LATE_GAP };

struct late {
    int64_t key; /* INTO: the row that holds its time; GAP: the row before the gap (0: none) */
    size_t i;    /* its index in p */
    int kind;
};

static int late_cmp(const void *x, const void *y)
{
    const struct late *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind - b->kind;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Add the sub-rows p to entity hk's rows; sorts p. Usually they all come
 * after its last row (one probe) and are just written. When the last row
 * is of p's first time alone (writes that keep one observedAt), p's
 * sub-rows of that time are written as rows of their own beside it. Late
 * sub-rows (at or before the last row's end) each go where their time is:
 * into the row that holds it (rewritten once with all of its own), beside
 * rows of that time alone, or into the gap between two rows (written with
 * the others of that gap); the rest are written after. So late data
 * rewrites only the rows it falls in, never the span since. */
int hist__rows_merge(struct sq_hist *h, int64_t hk, struct subv *p)
{
    sqlite3_stmt *st;
    struct late *lt = NULL;
    int64_t lo, last = 0, last_t = 0;
    size_t k, n_late = 0;
    int rc, step;

    if (p->n == 0)
        return 0;
    if ((rc = hist__sub_sort(p)) != 0)
        return rc;
    lo = p->v[0].t;
    struct ent_slot *es = hist__ent_slot(h, hk);
    if (es != NULL && es->end < lo) {
        HIST_TESTED(h->test, probes_saved);
        return rows_write(h, hk, p); /* after every row, as known without a probe */
    }
    if (es != NULL && es->end == lo && es->alone) {
        HIST_TESTED(h->test, besides_saved);
        return rows_beside(h, hk, p); /* as the probe would have found */
    }
    st = h->st[H_ROW_LAST];
    sqlite3_bind_int64(st, 1, hk);
    if ((step = sqlite3_step(st)) == SQLITE_ROW) {
        last_t = sqlite3_column_int64(st, 1);
        rc = row_last(h, st, &last);
    } else if (step != SQLITE_DONE) {
        rc = sq__err(h->db, "history merge");
    }
    sqlite3_reset(st);
    if (rc != 0)
        return rc;
    if (es != NULL) {
        es->end = step == SQLITE_DONE ? INT64_MIN : last;
        es->alone = step == SQLITE_ROW && last_t == last;
    }
    if (step == SQLITE_DONE || last < lo)
        return rows_write(h, hk, p); /* after every row */
    if (last_t == lo && last == lo) {
        HIST_TESTED(h->test, beside);
        return rows_beside(h, hk, p);
    }

    /* late: p[0 .. k) */
    HIST_TESTED(h->test, late);
    for (k = 0; k < p->n && p->v[k].t <= last; k++)
        ;
    if ((lt = malloc(k * sizeof(*lt))) == NULL)
        return ERR_NOMEM;
    st = h->st[H_ROW_LE];
    for (size_t i = 0; rc == 0 && i < k; i++) {
        struct late x = {0, i, LATE_GAP};
        sqlite3_bind_int64(st, 1, hk);
        sqlite3_bind_int64(st, 2, p->v[i].t);
        if ((step = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t rt = sqlite3_column_int64(st, 1), rend;
            x.key = sqlite3_column_int64(st, 0);
            if ((rc = row_last(h, st, &rend)) == 0) {
                if (rt == p->v[i].t && rend == rt)
                    x.kind = LATE_BESIDE;
                else if (rend >= p->v[i].t)
                    x.kind = LATE_INTO;
            }
        } else if (step != SQLITE_DONE) {
            rc = sq__err(h->db, "history merge");
        }
        sqlite3_reset(st);
        if (rc == ERR_INTERNAL) { /* a damaged row: this one is written as a row of its own */
            log_msg(LOG_ERROR, "sqlite: history row %" PRId64 " is damaged", x.key);
            rc = 0;
            x.kind = LATE_BESIDE;
        }
        lt[n_late++] = x;
    }
    if (rc == 0)
        qsort(lt, n_late, sizeof(*lt), late_cmp);
    /* runs of one kind and key; for BESIDE also of one time */
    for (size_t a = 0; rc == 0 && a < n_late;) {
        size_t b = a + 1;
        while (b < n_late && lt[b].kind == lt[a].kind && lt[b].key == lt[a].key &&
               (lt[a].kind != LATE_BESIDE || p->v[lt[b].i].t == p->v[lt[a].i].t))
            b++;
        h->sv2.n = 0;
        for (size_t j = a; rc == 0 && j < b; j++)
            rc = subv_push(&h->sv2, &p->v[lt[j].i]);
        if (lt[a].kind == LATE_BESIDE)
            HIST_TESTED(h->test, late_beside);
        else if (lt[a].kind == LATE_GAP)
            HIST_TESTED(h->test, late_gaps);
        if (rc == 0)
            rc = lt[a].kind == LATE_INTO ? row_rewrite(h, hk, lt[a].key, h->sv2.v, h->sv2.n)
                                         : rows_write(h, hk, &h->sv2);
        a = b;
    }
    free(lt);
    if (rc == 0 && k < p->n)
        rc = rows_write(h, hk, &(struct subv){p->v + k, p->n - k, p->n - k});
    return rc;
}

/* ---- appends, and the writer's groups and state --------------------------- */

int sq__hist_append(void *arg, int64_t tid, const char *eid, const char *attr, int64_t t_ms,
                    double num, const char *ds, int deleted, const cJSON *inst)
{
    struct sqlite_be *be = arg;
    struct sq_hist *h = be->hist;
    struct hrow *r = NULL;
    uint8_t packed[PK_MAX];
    int64_t hk, aid;
    size_t n;
    int rc, flags;

    if (tid == h->tid && h->eid.data != NULL && strcmp(eid, h->eid.data) == 0) {
        hk = h->hk;
    } else {
        if ((rc = ent_key(h, tid, eid, 1, &hk)) != 0)
            return rc;
        if (hk != h->hk) {
            if ((rc = notes_check(h)) != 0 || (rc = hist__pend_flush(h)) != 0)
                return rc;
            h->n_noted = h->n_checked = 0;
        }
        h->hk = hk;
        buf_reset(&h->eid);
        h->tid = buf_appends(&h->eid, eid) == 0 ? tid : 0;
    }
    if ((rc = attr_key(h, attr, 1, &aid)) != 0)
        return rc;
    if ((rc = ent_attr_note(h, hk, aid)) != 0)
        return rc;
    for (int i = 0; i < h->n_pend && r == NULL; i++)
        if (h->pend[i].t == t_ms)
            r = &h->pend[i];
    if (r == NULL) {
        if (h->n_pend == HIST_PENDING && (rc = hist__pend_flush(h)) != 0)
            return rc;
        r = &h->pend[h->n_pend++];
        r->t = t_ms;
    }
    flags = flags_of(num, ds) | (deleted ? HF_DEL : 0);
    if ((n = pack_json(inst, flags, num, h->tcache, packed)) == 0) {
        buf_reset(&h->text);
        if ((rc = json_write(&h->text, inst)) != 0)
            return rc;
    }
    rc = hrow_put(r, aid, r->n, flags, num, packed, n, h->text.data, h->text.len);
    if (h->text.cap_alloc > HIST_TEXT_KEEP)
        buf_free(&h->text); /* a big instance: do not keep its buffer */
    return rc;
}

int sq__hist_begin(struct sqlite_be *be)
{
    struct sq_hist *h = be->hist;
    int rc;

    /* a group that ran on without them could mark log entries merged
     * that are not in chunks */
    if (h->stale && (rc = hist__pend_rebuild(h)) != 0)
        return rc;
    h->stale = 0;
    h->group_no++;
    h->gid = h->next_iid;
    h->n_touched = 0;
    return 0;
}

int sq__hist_flush(struct sqlite_be *be)
{
    struct sq_hist *h = be->hist;
    sqlite3_stmt *st = h->st[H_META];
    int rc;

    /* trim first: a row it writes pending must not be in this group's log
     * row too (merged = this gid would not tell them apart) */
    if ((rc = notes_check(h)) != 0 || (rc = hist__pend_flush(h)) != 0 ||
        (rc = hist__hlog_trim(h, 0)) != 0 || (rc = hist__hlog_write(h)) != 0)
        return rc;
    if (h->group_no % PENT_SWEEP == 0 &&
        (rc = hist__pents_rehash(h, h->pents_cap ? h->pents_cap : 1024, hist__keep_live)) != 0)
        return rc;
    if (h->test != NULL && h->test->fail_flushes > 0) { /* a test's disk failing */
        h->test->fail_flushes--;
        h->test->flushes_failed++;
        return ERR_IO;
    }
    if (h->next_iid == h->saved_iid)
        return 0;
    sqlite3_bind_int64(st, 1, h->next_iid);
    return sq__step_done(st) ? sq__err(h->db, "history id") : 0;
}

int sq__hist_deferred(struct sqlite_be *be)
{
    return be->hist != NULL && be->hist->log_n > 0;
}

int sq__hist_settle(struct sqlite_be *be)
{
    if (be->hist == NULL)
        return 0;
    if (be->hist->log_n > 0)
        HIST_TESTED(be->hist->test, settles);
    return hist__hlog_trim(be->hist, 1);
}

void sq__hist_committed(struct sqlite_be *be)
{
    be->hist->saved_iid = be->hist->next_iid;
}

/* After the group's ROLLBACK: its rows and keys are gone, and so are the
 * pending rows it added and the chunks it wrote; the log has the rest. */
void sq__hist_rollback(struct sqlite_be *be)
{
    struct sq_hist *h = be->hist;

    if (h == NULL)
        return;
    for (int i = 0; i < h->n_pend; i++)
        hist__hrow_clear(&h->pend[i]);
    h->n_pend = 0;
    h->hk = 0;
    h->next_iid = h->saved_iid;
    caches_clear(h);
    if ((h->stale = hist__pend_rebuild(h) != 0))
        log_msg(LOG_ERROR, "sqlite: the history's pending rows could not be read again;"
                           " no write until they are");
    else if (h->pents_n > 0)
        HIST_TESTED(h->test, rebuilds_rollback);
}

/* The largest instance id a row holds (rid itself when none). */
static int64_t row_max_iid(int64_t rid, const void *nums, int len)
{
    struct subv v = {0};
    int64_t max = rid;

    if (hist__row_subs(rid, 0, nums, (size_t)len, NULL, 0, &v) == 0)
        for (size_t i = 0; i < v.n; i++) {
            struct hcur c;
            struct hent e;
            hcur_sub(&c, &v.v[i]);
            while (hist__hcur_next(&c, &e) == 1)
                if (e.iid > max)
                    max = e.iid;
        }
    subv_free(&v);
    return max;
}

int sq__hist_open(struct sqlite_be *be)
{
    struct sq_hist *h = calloc(1, sizeof(*h));
    sqlite3_stmt *st = NULL;
    int64_t next = 1;
    int rc;

    if (h == NULL)
        return ERR_NOMEM;
    be->hist = h;
    h->db = be->w;
    h->test = be->test;
    buf_init(&h->eid, 4096);
    buf_init(&h->text, HIST_ROW_MAX);
    buf_init(&h->mnums, HIST_ROW_MAX);
    buf_init(&h->mbody, HIST_ROW_MAX);
    buf_init(&h->mold, HIST_BUF_MAX);
    buf_init(&h->ldir, HIST_BUF_MAX);
    buf_init(&h->lrows, HIST_BUF_MAX);
    for (int i = 0; i < HIST_PENDING; i++)
        hrow_init(&h->pend[i]);
    for (int i = 0; i < N_HSTMT; i++)
        if (sqlite3_prepare_v3(h->db, hist__hsql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->st[i],
                               NULL) != SQLITE_OK)
            return sq__err(h->db, hist__hsql[i]);
    if (sqlite3_prepare_v2(h->db, "SELECT value FROM meta WHERE key = 'hist_next_iid'", -1, &st,
                           NULL) != SQLITE_OK)
        return sq__err(h->db, "history id");
    if (sqlite3_step(st) == SQLITE_ROW)
        next = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(h->db, "SELECT rid, nums FROM hist_rows ORDER BY rid DESC LIMIT 1", -1,
                           &st, NULL) != SQLITE_OK)
        return sq__err(h->db, "history id");
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t max = row_max_iid(sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                                  sqlite3_column_bytes(st, 1));
        if (max >= next)
            next = max + 1;
    }
    sqlite3_finalize(st);
    h->next_iid = h->saved_iid = next > 0 ? next : 1;
    if ((rc = hist__pend_rebuild(h)) == 0 && h->pents_n > 0)
        HIST_TESTED(h->test, rebuilds_open);
    return rc;
}

void sq__hist_close(struct sqlite_be *be)
{
    struct sq_hist *h = be->hist;

    if (h == NULL)
        return;
    for (int i = 0; i < N_HSTMT; i++)
        sqlite3_finalize(h->st[i]);
    for (int i = 0; i < HIST_PENDING; i++)
        hrow_free(&h->pend[i]);
    hist__pents_free(h);
    free(h->touched);
    hist__hlog_forget(h);
    free(h->log);
    subv_free(&h->sv);
    subv_free(&h->mv);
    subv_free(&h->sv2);
    subv_free(&h->tmp);
    buf_free(&h->mnums);
    buf_free(&h->mbody);
    buf_free(&h->mold);
    buf_free(&h->ldir);
    buf_free(&h->lrows);
    buf_free(&h->eid);
    buf_free(&h->text);
    caches_clear(h);
    free(h);
    be->hist = NULL;
}

/* ---- changing stored instances (writer) ---------------------------------- */

/* What to do with each instance of a row being rewritten. */
struct edit {
    int64_t aid;    /* instances of this attribute ... */
    int64_t iid;    /* ... only this one (> 0) */
    int all_ds;     /* ... of every dataset */
    const char *ds; /* ... else of this dataset (NULL: the default instance) */
    /* replacement for the matched instance (iid > 0), else it is dropped */
    const char *inst;
    double num;
    int flags;          /* its flags but HF_DEL, which the matched instance keeps */
    long matched, kept; /* out: matched; kept instances of aid not matched */
    int was_del;        /* out: the matched instance is a record of a deletion */
};

static int ds_matches(const struct hent *e, const char *ds)
{
    cJSON *j, *d;
    int same;

    if (!(e->flags & HF_DS))
        return ds == NULL;
    if (ds == NULL || e->inst == NULL)
        return 0;
    if ((j = cJSON_ParseWithLength(e->inst, e->inst_len)) == NULL)
        return 0;
    d = cJSON_GetObjectItemCaseSensitive(j, "datasetId");
    same = cJSON_IsString(d) && strcmp(d->valuestring, ds) == 0;
    cJSON_Delete(j);
    return same;
}

static int edit_matches(const struct edit *ed, const struct hent *e)
{
    if (e->aid != ed->aid)
        return 0;
    if (ed->iid > 0)
        return e->iid == ed->iid;
    return ed->all_ds || ds_matches(e, ed->ds);
}

/* Rewrite row rid applying ed to each of its sub-rows: a sub-row left
 * without instances goes, and the row when none is left (a chunk's t is
 * its first remaining sub-row's). ERR_NOT_FOUND when the row is gone. */
static int row_edit(struct sq_hist *h, int64_t rid, struct edit *ed)
{
    sqlite3_stmt *st = h->st[H_ROW_GET];
    struct subv in = {0}, out = {0};
    struct hrow *nr = NULL;
    long matched = 0;
    int rc = 0, step;

    sqlite3_bind_int64(st, 1, rid);
    if ((step = sqlite3_step(st)) != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? ERR_NOT_FOUND : sq__err(h->db, "history row");
        goto out;
    }
    rc = hist__row_subs(rid, sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                        (size_t)sqlite3_column_bytes(st, 3), sqlite3_column_blob(st, 4),
                        (size_t)sqlite3_column_bytes(st, 4), &in);
    if (rc == 0 && (nr = calloc(in.n ? in.n : 1, sizeof(*nr))) == NULL)
        rc = ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < in.n; i++) {
        int64_t base = in.v[i].base;
        struct hcur c;
        struct hent e;
        hrow_init(&nr[i]);
        hcur_sub(&c, &in.v[i]);
        while (rc == 0 && (step = hist__hcur_next(&c, &e)) == 1) {
            if (!edit_matches(ed, &e)) {
                if (e.aid == ed->aid)
                    ed->kept++;
                rc = hrow_add(&nr[i], e.aid, e.iid - base, e.flags, e.num, e.inst, e.inst_len);
                continue;
            }
            matched++;
            ed->was_del = (e.flags & HF_DEL) != 0;
            if (ed->iid > 0 && ed->inst != NULL)
                rc = hrow_add(&nr[i], e.aid, e.iid - base, ed->flags | (e.flags & HF_DEL), ed->num,
                              ed->inst, strlen(ed->inst));
        }
        if (rc == 0 && step < 0)
            rc = ERR_INTERNAL;
    }
    if (rc == ERR_INTERNAL)
        log_msg(LOG_ERROR, "sqlite: history row %" PRId64 " is damaged", rid);
    sqlite3_reset(st);
    if (rc || matched == 0)
        goto out;
    ed->matched += matched;
    for (size_t i = 0; rc == 0 && i < in.n; i++)
        if (nr[i].n > 0) {
            struct sub x = {in.v[i].t, in.v[i].base, (const uint8_t *)nr[i].nums.data,
                            (const uint8_t *)nr[i].body.data, nr[i].nums.len, nr[i].body.len};
            rc = subv_push(&out, &x);
        }
    if (rc)
        goto out;
    if (out.n == 0) {
        st = h->st[H_ROW_DEL];
        sqlite3_bind_int64(st, 1, rid);
    } else {
        if ((rc = row_encode(out.v, out.n, rid, &h->mnums, &h->mbody)) != 0)
            goto out;
        st = h->st[H_ROW_UPD];
        sqlite3_bind_int64(st, 1, rid);
        sqlite3_bind_blob(st, 2, h->mnums.data, (int)h->mnums.len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, h->mbody.data, (int)h->mbody.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, out.v[0].t);
    }
    if (sq__step_done(st))
        rc = sq__err(h->db, "history rewrite");
out:
    sqlite3_reset(h->st[H_ROW_GET]);
    for (size_t i = 0; nr != NULL && i < in.n; i++)
        hrow_free(&nr[i]);
    free(nr);
    subv_free(&in);
    subv_free(&out);
    return rc;
}

/* The rows of entity hk holding an instance of aid (iid > 0: that
 * instance, and *t its time). Its pending rows must have been written. */
static int ent_rows_with(struct sq_hist *h, int64_t hk, int64_t aid, int64_t iid, int64_t **rids,
                         size_t *n, int64_t *t)
{
    sqlite3_stmt *st = h->st[H_ENT_ROWS];
    size_t cap = 0;
    int rc = 0, step;

    *rids = NULL;
    *n = 0;
    sqlite3_bind_int64(st, 1, hk);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rid = sqlite3_column_int64(st, 0);
        int found = 0;
        h->tmp.n = 0;
        if (hist__row_subs(rid, sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                           (size_t)sqlite3_column_bytes(st, 2), NULL, 0, &h->tmp) != 0)
            continue; /* damaged: reported where it is read */
        for (size_t i = 0; !found && i < h->tmp.n; i++) {
            struct hcur c;
            struct hent e;
            hcur_sub(&c, &h->tmp.v[i]);
            while (!found && hist__hcur_next(&c, &e) == 1)
                if (e.aid == aid && (iid <= 0 || e.iid == iid)) {
                    found = 1;
                    if (t != NULL)
                        *t = h->tmp.v[i].t;
                }
        }
        if (!found)
            continue;
        if (*n == cap) {
            int64_t *p = realloc(*rids, (cap = cap ? cap * 2 : 64) * sizeof(*p));
            if (p == NULL) {
                rc = ERR_NOMEM;
                break;
            }
            *rids = p;
        }
        (*rids)[(*n)++] = rid;
        if (iid > 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = sq__err(h->db, "history rows");
    sqlite3_reset(st);
    if (rc) {
        free(*rids);
        *rids = NULL;
        *n = 0;
    }
    return rc;
}

/* Find instance iid of (hk, aid): its row (*rid, 0 when there is none) and
 * its time. A single row's id is its first instance's, so the row at or
 * below iid usually holds it; else (a chunk, or an instance moved by a time
 * change) the entity's rows are searched. */
static int locate(struct sq_hist *h, int64_t hk, int64_t aid, int64_t iid, int64_t *rid, int64_t *t)
{
    sqlite3_stmt *st = h->st[H_ROW_AT];
    int64_t *rids = NULL, cand;
    size_t n = 0;
    int rc, step;

    *rid = 0;
    sqlite3_bind_int64(st, 1, iid);
    step = sqlite3_step(st);
    cand = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return sq__err(h->db, "history lookup");
    if (cand != 0) {
        st = h->st[H_ROW_GET];
        sqlite3_bind_int64(st, 1, cand);
        if ((step = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 1) == hk) {
            h->tmp.n = 0;
            if (hist__row_subs(cand, sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                               (size_t)sqlite3_column_bytes(st, 3), NULL, 0, &h->tmp) == 0)
                for (size_t i = 0; *rid == 0 && i < h->tmp.n; i++) {
                    struct hcur c;
                    struct hent e;
                    hcur_sub(&c, &h->tmp.v[i]);
                    while (*rid == 0 && hist__hcur_next(&c, &e) == 1)
                        if (e.iid == iid && e.aid == aid) {
                            *rid = cand;
                            *t = h->tmp.v[i].t;
                        }
                }
        }
        sqlite3_reset(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return sq__err(h->db, "history lookup");
        if (*rid != 0)
            return 0;
    }
    if ((rc = ent_rows_with(h, hk, aid, iid, &rids, &n, t)) != 0)
        return rc;
    *rid = n ? rids[0] : 0;
    free(rids);
    return 0;
}

/* Look up the keys of (tid, eid, attr) without creating them (0: none),
 * and write the entity's pending rows: what follows reads or changes its
 * stored rows. */
static int keys_of(struct sq_hist *h, int64_t tid, const char *eid, const char *attr, int64_t *hk,
                   int64_t *aid)
{
    int rc;

    *aid = 0;
    if ((rc = ent_key(h, tid, eid, 0, hk)) != 0 || *hk == 0 ||
        (rc = hist__ent_settle(h, *hk)) != 0 || attr == NULL)
        return rc;
    return attr_key(h, attr, 0, aid);
}

static int ent_attr_forget(struct sq_hist *h, int64_t hk, int64_t aid)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(h->db, "DELETE FROM hist_ent_attrs WHERE hk = ?1 AND aid = ?2", -1, &st,
                           NULL) != SQLITE_OK)
        return sq__err(h->db, "history attribute");
    sqlite3_bind_int64(st, 1, hk);
    sqlite3_bind_int64(st, 2, aid);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq__err(h->db, "history attribute");
    sqlite3_finalize(st);
    caches_clear(h);
    return rc;
}

/* The whole history of entity hk: its rows and keys. *n = instances. */
static int ent_delete(struct sq_hist *h, int64_t hk, long *n)
{
    static const char *const sql[] = {
        "DELETE FROM hist_rows WHERE hk = ?1",
        "DELETE FROM hist_ent_attrs WHERE hk = ?1",
        "DELETE FROM hist_ents WHERE hk = ?1",
    };
    sqlite3_stmt *st = h->st[H_ENT_ROWS];
    int rc = 0, step;

    sqlite3_bind_int64(st, 1, hk);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        h->tmp.n = 0;
        if (hist__row_subs(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                           sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), NULL, 0,
                           &h->tmp) != 0)
            continue;
        for (size_t i = 0; i < h->tmp.n; i++) {
            struct hcur c;
            struct hent e;
            hcur_sub(&c, &h->tmp.v[i]);
            while (hist__hcur_next(&c, &e) == 1)
                (*n)++;
        }
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        return sq__err(h->db, "history rows");
    for (size_t i = 0; rc == 0 && i < sizeof(sql) / sizeof(sql[0]); i++) {
        st = NULL;
        if (sqlite3_prepare_v2(h->db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return sq__err(h->db, sql[i]);
        sqlite3_bind_int64(st, 1, hk);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq__err(h->db, sql[i]);
        sqlite3_finalize(st);
    }
    caches_clear(h);
    return rc;
}

int sq__hist_delete(void *arg, int64_t tid, const char *eid, const char *attr, const char *ds,
                    int all_ds, int64_t iid, long *n)
{
    struct sqlite_be *be = arg;
    struct sq_hist *h = be->hist;
    struct edit ed = {.iid = iid, .all_ds = all_ds, .ds = ds};
    int64_t hk, *rids = NULL, t;
    size_t n_rids = 0;
    int rc;

    *n = 0;
    if ((rc = hist__pend_flush(h)) != 0 || (rc = keys_of(h, tid, eid, attr, &hk, &ed.aid)) != 0 ||
        hk == 0)
        return rc;
    if (attr == NULL)
        return ent_delete(h, hk, n);
    if (ed.aid == 0)
        return 0;
    if (iid > 0) {
        int64_t rid;
        if ((rc = locate(h, hk, ed.aid, iid, &rid, &t)) != 0 || rid == 0)
            return rc;
        rc = row_edit(h, rid, &ed);
        *n = ed.matched;
        return rc;
    }
    if ((rc = ent_rows_with(h, hk, ed.aid, 0, &rids, &n_rids, NULL)) != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n_rids; i++)
        rc = row_edit(h, rids[i], &ed);
    free(rids);
    *n = ed.matched;
    if (rc == 0 && ed.matched > 0 && ed.kept == 0)
        rc = ent_attr_forget(h, hk, ed.aid);
    return rc;
}

int sq__hist_get(void *arg, int64_t tid, const char *eid, const char *attr, int64_t iid,
                 char **inst)
{
    struct sqlite_be *be = arg;
    struct sq_hist *h = be->hist;
    sqlite3_stmt *st = h->st[H_ROW_GET];
    int64_t hk, aid, rid, t;
    int rc, step, found = 0;

    *inst = NULL;
    if ((rc = hist__pend_flush(h)) != 0 || (rc = keys_of(h, tid, eid, attr, &hk, &aid)) != 0)
        return rc;
    if (hk == 0 || aid == 0)
        return ERR_NOT_FOUND;
    if ((rc = locate(h, hk, aid, iid, &rid, &t)) != 0)
        return rc;
    if (rid == 0)
        return ERR_NOT_FOUND;
    sqlite3_bind_int64(st, 1, rid);
    if ((step = sqlite3_step(st)) == SQLITE_ROW) {
        h->tmp.n = 0;
        if (hist__row_subs(rid, sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                           (size_t)sqlite3_column_bytes(st, 3), sqlite3_column_blob(st, 4),
                           (size_t)sqlite3_column_bytes(st, 4), &h->tmp) == 0)
            for (size_t i = 0; *inst == NULL && i < h->tmp.n; i++) {
                struct hcur c;
                struct hent e;
                hcur_sub(&c, &h->tmp.v[i]);
                while (hist__hcur_next(&c, &e) == 1)
                    if (e.iid == iid && e.aid == aid && e.inst != NULL) {
                        found = 1;
                        *inst = strdup(e.inst);
                        break;
                    }
            }
    }
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return sq__err(h->db, "history lookup");
    if (*inst != NULL)
        return 0;
    if (found)
        return ERR_NOMEM;
    /* located in that row, but not read from it */
    log_msg(LOG_ERROR, "sqlite: history row %" PRId64 " is damaged", rid);
    return ERR_INTERNAL;
}

int sq__hist_set(void *arg, int64_t tid, const char *eid, const char *attr, int64_t iid,
                 int64_t t_ms, double num, const char *ds, const char *inst)
{
    struct sqlite_be *be = arg;
    struct sq_hist *h = be->hist;
    /* a record of a deletion stays one (row_edit keeps the flag) */
    struct edit ed = {.iid = iid, .inst = inst, .num = num, .flags = flags_of(num, ds)};
    int64_t hk, rid, t = 0;
    int rc;

    if ((rc = hist__pend_flush(h)) != 0 || (rc = keys_of(h, tid, eid, attr, &hk, &ed.aid)) != 0)
        return rc;
    if (hk == 0 || ed.aid == 0)
        return ERR_NOT_FOUND;
    if ((rc = locate(h, hk, ed.aid, iid, &rid, &t)) != 0)
        return rc;
    if (rid == 0)
        return ERR_NOT_FOUND;
    if (t == t_ms)
        return row_edit(h, rid, &ed);
    /* a new time: the instance moves to a sub-row of its own (merged in at
     * its time) and keeps its id */
    struct hrow moved;
    int64_t base = h->next_iid;
    HIST_TESTED(h->test, moves);
    ed.inst = NULL;
    if ((rc = row_edit(h, rid, &ed)) != 0)
        return rc;
    hrow_init(&moved);
    moved.t = t_ms;
    if ((rc = hrow_add(&moved, ed.aid, iid - base, ed.flags | (ed.was_del ? HF_DEL : 0), num, inst,
                       strlen(inst))) == 0) {
        struct sub x = {t_ms, base, (const uint8_t *)moved.nums.data,
                        (const uint8_t *)moved.body.data, moved.nums.len, moved.body.len};
        h->next_iid++;
        h->sv.n = 0;
        if ((rc = subv_push(&h->sv, &x)) == 0)
            rc = hist__rows_merge(h, hk, &h->sv);
    }
    hrow_free(&moved);
    return rc;
}

/* ---- the types of a deleted entity ------------------------------------------ */

int sq__hist_types_set(void *arg, int64_t tid, const char *eid, const char *types)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(be->hist->db,
                           "UPDATE hist_ents SET types = ?3 WHERE tid = ?1 AND eid = ?2", -1, &st,
                           NULL) != SQLITE_OK)
        return sq__err(be->hist->db, "history types");
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, eid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, types, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq__err(be->hist->db, "history types");
    sqlite3_finalize(st);
    return rc;
}

static const char types_sql[] = "SELECT types FROM hist_ents WHERE tid = ?1 AND eid = ?2";

int sq__hist_types(void *arg, int64_t tid, const char *eid, char **types)
{
    sqlite3 *db = sq__reader_db(arg);
    sqlite3_stmt *st;
    int rc = 0;

    *types = NULL;
    if (db == NULL)
        return ERR_IO;
    if ((st = sq__reader_stmt(arg, types_sql)) == NULL)
        return sq__err(db, "history types");
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_text(st, 2, eid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT &&
        (*types = strdup((const char *)sqlite3_column_text(st, 0))) == NULL)
        rc = ERR_NOMEM;
    sqlite3_reset(st); /* the reader's: kept */
    return rc;
}

/* ---- retention (side connection) ----------------------------------------- */

/* One retention step: in one short transaction on the side connection,
 * delete up to max_rows rows of tenant tid older than before_ms, walking
 * its entities from *cursor (an hk) on. *cursor is where to go on next
 * time; 0 when the walk is complete. *n_deleted counts instances. */
int sq__hist_expire(void *arg, int64_t tid, int64_t before_ms, int64_t *cursor, long max_rows,
                    long *n_deleted)
{
    struct sqlite_be *be = arg;
    sqlite3_stmt *ents = NULL, *rows = NULL, *del = NULL, *get = NULL, *upd = NULL;
    struct subv sv = {0}, kept = {0};
    struct buf nums, body;
    int64_t *rids = NULL, cut = 0; /* cut: a chunk reaching past before_ms */
    size_t cap = 0;
    long left = max_rows;
    int rc = 0, step = SQLITE_DONE;

    *n_deleted = 0;
    buf_init(&nums, HIST_ROW_MAX);
    buf_init(&body, HIST_ROW_MAX);
    pthread_mutex_lock(&be->side_mu);
    if (sqlite3_exec(be->side, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq__err(be->side, "expire begin");
        goto out;
    }
    if (sqlite3_prepare_v2(be->side,
                           "SELECT hk FROM hist_ents WHERE tid = ?1 AND hk > ?2 ORDER BY hk", -1,
                           &ents, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(be->side,
                           "SELECT rid, t, nums FROM hist_rows WHERE hk = ?1 AND t < ?2 LIMIT ?3",
                           -1, &rows, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(be->side, "DELETE FROM hist_rows WHERE rid = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(be->side, "SELECT t, nums, body FROM hist_rows WHERE rid = ?1", -1, &get,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(be->side, hist__hsql[H_ROW_UPD], -1, &upd, NULL) != SQLITE_OK) {
        rc = sq__err(be->side, "expire");
        goto rollback;
    }
    sqlite3_bind_int64(ents, 1, tid);
    sqlite3_bind_int64(ents, 2, *cursor);
    while (left > 0 && (step = sqlite3_step(ents)) == SQLITE_ROW) {
        int64_t hk = sqlite3_column_int64(ents, 0);
        size_t n = 0;
        int rstep;
        cut = 0;
        sqlite3_bind_int64(rows, 1, hk);
        sqlite3_bind_int64(rows, 2, before_ms);
        sqlite3_bind_int64(rows, 3, left);
        while ((rstep = sqlite3_step(rows)) == SQLITE_ROW) {
            int64_t rid = sqlite3_column_int64(rows, 0);
            long old = 0;
            int whole = 1;
            sv.n = 0;
            if (hist__row_subs(rid, sqlite3_column_int64(rows, 1), sqlite3_column_blob(rows, 2),
                               (size_t)sqlite3_column_bytes(rows, 2), NULL, 0, &sv) != 0)
                continue; /* damaged: reported where it is read */
            for (size_t i = 0; i < sv.n; i++) {
                struct hcur c;
                struct hent e;
                if (sv.v[i].t >= before_ms) {
                    whole = 0;
                    continue;
                }
                hcur_sub(&c, &sv.v[i]);
                while (hist__hcur_next(&c, &e) == 1)
                    old++;
            }
            if (!whole) { /* at most one: rows do not overlap */
                cut = rid;
                continue;
            }
            if (n == cap) {
                int64_t *p = realloc(rids, (cap = cap ? cap * 2 : 256) * sizeof(*p));
                if (p == NULL) {
                    rc = ERR_NOMEM;
                    goto rollback;
                }
                rids = p;
            }
            rids[n++] = rid;
            *n_deleted += old;
        }
        sqlite3_reset(rows);
        if (rstep != SQLITE_DONE) {
            rc = sq__err(be->side, "expire rows");
            goto rollback;
        }
        for (size_t i = 0; i < n; i++) {
            sqlite3_bind_int64(del, 1, rids[i]);
            if (sq__step_done(del)) {
                rc = sq__err(be->side, "expire delete");
                goto rollback;
            }
        }
        if (cut != 0) { /* keep the chunk's sub-rows from before_ms on */
            HIST_TESTED(be->test, expire_cuts);
            sqlite3_bind_int64(get, 1, cut);
            int gstep = sqlite3_step(get);
            if (gstep != SQLITE_ROW && gstep != SQLITE_DONE)
                rc = sq__err(be->side, "expire cut"); /* the batch is tried again later */
            if (gstep == SQLITE_ROW) { /* (a damaged row is kept: reported where it is read) */
                sv.n = kept.n = 0;
                if (hist__row_subs(cut, sqlite3_column_int64(get, 0), sqlite3_column_blob(get, 1),
                                   (size_t)sqlite3_column_bytes(get, 1),
                                   sqlite3_column_blob(get, 2),
                                   (size_t)sqlite3_column_bytes(get, 2), &sv) == 0) {
                    for (size_t i = 0; rc == 0 && i < sv.n; i++) {
                        struct hcur c;
                        struct hent e;
                        if (sv.v[i].t >= before_ms) {
                            rc = subv_push(&kept, &sv.v[i]);
                            continue;
                        }
                        hcur_sub(&c, &sv.v[i]);
                        while (hist__hcur_next(&c, &e) == 1)
                            (*n_deleted)++;
                    }
                    if (rc == 0 && kept.n > 0 &&
                        (rc = row_encode(kept.v, kept.n, cut, &nums, &body)) == 0) {
                        sqlite3_bind_int64(upd, 1, cut);
                        sqlite3_bind_blob(upd, 2, nums.data, (int)nums.len, SQLITE_STATIC);
                        sqlite3_bind_blob(upd, 3, body.data, (int)body.len, SQLITE_STATIC);
                        sqlite3_bind_int64(upd, 4, kept.v[0].t);
                        if (sq__step_done(upd))
                            rc = sq__err(be->side, "expire rewrite");
                    }
                }
            }
            sqlite3_reset(get);
            if (rc)
                goto rollback;
            n++;
        }
        left -= (long)n;
        *cursor = left > 0 ? hk : hk - 1; /* full batch: this entity may hold more */
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = sq__err(be->side, "expire keys");
        goto rollback;
    }
    if (step == SQLITE_DONE)
        *cursor = 0;
    sqlite3_finalize(ents);
    sqlite3_finalize(rows);
    sqlite3_finalize(del);
    sqlite3_finalize(get);
    sqlite3_finalize(upd);
    ents = rows = del = get = upd = NULL;
    if (sqlite3_exec(be->side, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq__err(be->side, "expire commit");
        goto rollback;
    }
    goto out;
rollback:
    *n_deleted = 0;
    sqlite3_finalize(ents);
    sqlite3_finalize(rows);
    sqlite3_finalize(del);
    sqlite3_finalize(get);
    sqlite3_finalize(upd);
    sqlite3_exec(be->side, "ROLLBACK", NULL, NULL, NULL);
out:
    free(rids);
    subv_free(&sv);
    subv_free(&kept);
    buf_free(&nums);
    buf_free(&body);
    pthread_mutex_unlock(&be->side_mu);
    return rc;
}

/* ---- migration from v5 --------------------------------------------------- */

/* v5 kept one row per instance: hist(iid, kid, t, num, ds, inst) with
 * hist_keys(kid, tid, eid, attr). Each becomes a v6 row of one instance
 * with rid = its iid (delta 0), so every instanceId stays the same. */
int sq__hist_migrate_v6(sqlite3 *db)
{
    sqlite3_stmt *src = NULL, *ent = NULL, *attr = NULL, *ea = NULL, *ins = NULL, *seq = NULL;
    struct hmap *ents = hmap_new(1024), *attrs = hmap_new(64);
    struct hrow row;
    struct buf kb;
    int64_t next = 1;
    int rc = ERR_IO, step;

    hrow_init(&row);
    buf_init(&kb, HIST_ROW_MAX);
    if (ents == NULL || attrs == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT h.iid, k.tid, k.eid, k.attr, h.t, h.num, h.ds, h.inst"
                           " FROM hist h JOIN hist_keys k ON k.kid = h.kid ORDER BY h.iid",
                           -1, &src, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO hist_ents(tid, eid) VALUES (?1, ?2)", -1, &ent, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO hist_attrs(name) VALUES (?1)", -1, &attr, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO hist_ent_attrs(hk, aid) VALUES (?1, ?2)", -1,
                           &ea, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, hist__hsql[H_INS], -1, &ins, NULL) != SQLITE_OK)
        goto fail;
    while ((step = sqlite3_step(src)) == SQLITE_ROW) {
        int64_t iid = sqlite3_column_int64(src, 0), tid = sqlite3_column_int64(src, 1);
        const char *eid = (const char *)sqlite3_column_text(src, 2);
        const char *name = (const char *)sqlite3_column_text(src, 3);
        const char *inst = (const char *)sqlite3_column_text(src, 7);
        double num =
            sqlite3_column_type(src, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(src, 5);
        int has_ds = sqlite3_column_type(src, 6) != SQLITE_NULL;
        const char *key;
        int64_t hk, aid;
        void *v;

        if (eid == NULL || name == NULL || inst == NULL)
            continue;
        buf_reset(&kb); /* the whole id: a cut key would merge two entities */
        if (buf_printf(&kb, "%" PRId64 "\x1f%s", tid, eid) != 0) {
            rc = ERR_NOMEM;
            goto out;
        }
        key = kb.data;
        if ((v = hmap_get(ents, key)) != NULL) {
            hk = (int64_t)(intptr_t)v;
        } else {
            sqlite3_bind_int64(ent, 1, tid);
            sqlite3_bind_text(ent, 2, eid, -1, SQLITE_STATIC);
            if (sq__step_done(ent))
                goto fail;
            hk = sqlite3_last_insert_rowid(db);
            if (hmap_put(ents, key, (void *)(intptr_t)hk, NULL) < 0) {
                rc = ERR_NOMEM;
                goto out;
            }
        }
        if ((v = hmap_get(attrs, name)) != NULL) {
            aid = (int64_t)(intptr_t)v;
        } else {
            sqlite3_bind_text(attr, 1, name, -1, SQLITE_STATIC);
            if (sq__step_done(attr))
                goto fail;
            aid = sqlite3_last_insert_rowid(db);
            if (hmap_put(attrs, name, (void *)(intptr_t)aid, NULL) < 0) {
                rc = ERR_NOMEM;
                goto out;
            }
        }
        sqlite3_bind_int64(ea, 1, hk);
        sqlite3_bind_int64(ea, 2, aid);
        if (sq__step_done(ea))
            goto fail;
        hist__hrow_clear(&row);
        if ((rc = hrow_add(&row, aid, 0, (isnan(num) ? 0 : HF_NUM) | (has_ds ? HF_DS : 0), num,
                           inst, strlen(inst))) != 0)
            goto out;
        sqlite3_bind_int64(ins, 1, iid);
        sqlite3_bind_int64(ins, 2, hk);
        sqlite3_bind_int64(ins, 3, sqlite3_column_int64(src, 4));
        sqlite3_bind_blob(ins, 4, row.nums.data, (int)row.nums.len, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 5, row.body.data, (int)row.body.len, SQLITE_STATIC);
        if (sq__step_done(ins))
            goto fail;
        if (iid >= next)
            next = iid + 1;
    }
    if (step != SQLITE_DONE)
        goto fail;
    /* AUTOINCREMENT's high-water mark covers instances deleted since */
    if (sqlite3_prepare_v2(db, "SELECT seq FROM sqlite_sequence WHERE name = 'hist'", -1, &seq,
                           NULL) == SQLITE_OK &&
        sqlite3_step(seq) == SQLITE_ROW && sqlite3_column_int64(seq, 0) >= next)
        next = sqlite3_column_int64(seq, 0) + 1;
    sqlite3_finalize(seq);
    seq = NULL;
    {
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "INSERT OR REPLACE INTO meta(key, value) VALUES ('hist_next_iid', %" PRId64 ");"
                 "DROP TABLE hist; DROP TABLE hist_keys;",
                 next);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
    }
    rc = 0;
    goto out;
fail:
    rc = sq__err(db, "history migration");
out:
    sqlite3_finalize(src);
    sqlite3_finalize(ent);
    sqlite3_finalize(attr);
    sqlite3_finalize(ea);
    sqlite3_finalize(ins);
    sqlite3_finalize(seq);
    hmap_free(ents, NULL);
    hmap_free(attrs, NULL);
    hrow_free(&row);
    buf_free(&kb);
    return rc;
}
