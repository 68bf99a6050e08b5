/*
 * hmap.c - open-addressing string -> void * hash map (see hmap.h).
 *
 * Slots hold (hash, key, val); key == NULL marks an empty slot. Lookups
 * probe linearly from hash & mask and compare the stored 64-bit hash before
 * the string. Deletion shifts later members of the probe run back, so
 * there are no tombstones and lookups never degrade after churn. The table
 * doubles when it would pass 3/4 full.
 *
 * The SipHash key is drawn once per process (pthread_once) from getrandom;
 * if that fails, from the clock and an address, which is weaker but still
 * not chosen by the peer.
 */
#include "util/hmap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/err.h"

struct slot {
    uint64_t hash;
    char *key;
    void *val;
};

struct hmap {
    struct slot *slots;
    size_t cap; /* power of two, or 0 before the first put */
    size_t count;
};

/* ---- SipHash-1-3 ------------------------------------------------------ */

static uint64_t sip_k0, sip_k1;
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void sip_init(void)
{
    uint64_t k[2];

    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec;
        k[1] = (uint64_t)(uintptr_t)&k ^ 0xC2B2AE3D27D4EB4FULL;
    }
    sip_k0 = k[0];
    sip_k1 = k[1];
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ROTL(v1, 13);                                                     \
        v1 ^= v0;                                                              \
        v0 = ROTL(v0, 32);                                                     \
        v2 += v3;                                                              \
        v3 = ROTL(v3, 16);                                                     \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ROTL(v3, 21);                                                     \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ROTL(v1, 17);                                                     \
        v1 ^= v2;                                                              \
        v2 = ROTL(v2, 32);                                                     \
    } while (0)

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t hmap_hash(const char *s, size_t len)
{
    const unsigned char *in = (const unsigned char *)s;
    const unsigned char *end = in + (len - len % 8);
    uint64_t v0, v1, v2, v3, b, m;

    pthread_once(&sip_once, sip_init);
    v0 = 0x736f6d6570736575ULL ^ sip_k0;
    v1 = 0x646f72616e646f6dULL ^ sip_k1;
    v2 = 0x6c7967656e657261ULL ^ sip_k0;
    v3 = 0x7465646279746573ULL ^ sip_k1;
    b = (uint64_t)len << 56;
    for (; in != end; in += 8) {
        m = load_le64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- table ------------------------------------------------------------ */

struct hmap *hmap_new(size_t cap_hint)
{
    struct hmap *m = calloc(1, sizeof(*m));
    size_t cap = 8;

    if (m == NULL)
        return NULL;
    if (cap_hint > HMAP_MAX_ENTRIES)
        cap_hint = HMAP_MAX_ENTRIES;
    while (cap / 4 * 3 < cap_hint)
        cap *= 2;
    m->slots = calloc(cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    m->cap = cap;
    return m;
}

void hmap_free(struct hmap *m, void (*free_val)(void *val))
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == NULL)
            continue;
        free(m->slots[i].key);
        if (free_val != NULL)
            free_val(m->slots[i].val);
    }
    free(m->slots);
    free(m);
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t find(const struct hmap *m, const char *key, uint64_t hash)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)hash & mask;

    while (m->slots[i].key != NULL) {
        if (m->slots[i].hash == hash && strcmp(m->slots[i].key, key) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int grow(struct hmap *m)
{
    size_t ncap = m->cap * 2;
    struct slot *old = m->slots;
    struct slot *ns;

    ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        size_t j;

        if (old[i].key == NULL)
            continue;
        j = (size_t)old[i].hash & (ncap - 1);
        while (ns[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = old[i];
    }
    m->slots = ns;
    m->cap = ncap;
    free(old);
    return 0;
}

int hmap_put(struct hmap *m, const char *key, void *val, void **old)
{
    uint64_t hash = hmap_hash(key, strlen(key));
    size_t i = find(m, key, hash);
    char *copy;

    if (old != NULL)
        *old = NULL;
    if (m->slots[i].key != NULL) {
        if (old != NULL)
            *old = m->slots[i].val;
        m->slots[i].val = val;
        return 1;
    }
    if (m->count >= HMAP_MAX_ENTRIES)
        return ERR_TOO_LARGE;
    if ((m->count + 1) > m->cap / 4 * 3) {
        if (grow(m) != 0)
            return ERR_NOMEM;
        i = find(m, key, hash);
    }
    copy = strdup(key);
    if (copy == NULL)
        return ERR_NOMEM;
    m->slots[i].hash = hash;
    m->slots[i].key = copy;
    m->slots[i].val = val;
    m->count++;
    return 0;
}

void *hmap_get_entry(const struct hmap *m, const char *key, const char **stored_key)
{
    size_t i;

    if (stored_key != NULL)
        *stored_key = NULL;
    if (m == NULL || m->count == 0)
        return NULL;
    i = find(m, key, hmap_hash(key, strlen(key)));
    if (m->slots[i].key == NULL)
        return NULL;
    if (stored_key != NULL)
        *stored_key = m->slots[i].key;
    return m->slots[i].val;
}

void *hmap_get(const struct hmap *m, const char *key)
{
    return hmap_get_entry(m, key, NULL);
}

int hmap_del(struct hmap *m, const char *key, void **old)
{
    size_t mask, i, j;

    if (old != NULL)
        *old = NULL;
    if (m == NULL || m->count == 0)
        return 0;
    mask = m->cap - 1;
    i = find(m, key, hmap_hash(key, strlen(key)));
    if (m->slots[i].key == NULL)
        return 0;
    if (old != NULL)
        *old = m->slots[i].val;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    /* Backward-shift: pull later members of the run into the hole when their
     * home slot does not lie (cyclically) in (hole, j]. */
    j = i;
    for (;;) {
        size_t home;

        j = (j + 1) & mask;
        if (m->slots[j].key == NULL)
            break;
        home = (size_t)m->slots[j].hash & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return 1;
}

size_t hmap_count(const struct hmap *m)
{
    return m == NULL ? 0 : m->count;
}

int hmap_next(const struct hmap *m, size_t *pos, const char **key, void **val)
{
    if (m == NULL)
        return 0;
    while (*pos < m->cap) {
        size_t i = (*pos)++;

        if (m->slots[i].key == NULL)
            continue;
        if (key != NULL)
            *key = m->slots[i].key;
        if (val != NULL)
            *val = m->slots[i].val;
        return 1;
    }
    return 0;
}
