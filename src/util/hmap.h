/*
 * hmap.h - a small open-addressing hash map from NUL-terminated string keys
 * to void * values.
 *
 * Linear probing with backward-shift deletion (no tombstones), load factor
 * at most 3/4, capacity a power of two. Keys are hashed with SipHash-1-3
 * under a per-process random key, so untrusted keys (JSON member names,
 * URLs) cannot be chosen to collide. The map copies keys; values are the
 * caller's (hmap_free can free them through a callback).
 *
 * Thread safety: none inside. Concurrent readers are fine on a map nobody
 * writes (e.g. an immutable map published after construction); writers need
 * external locking.
 */
#ifndef PL_HMAP_H
#define PL_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap;

/* Hard cap on entries: a map never grows past this (put fails with
 * ERR_TOO_LARGE), whatever the input. */
#define HMAP_MAX_ENTRIES ((size_t)1 << 26)

/* New empty map sized for about cap_hint entries (0: a small default).
 * Returns NULL when out of memory. Free with hmap_free. */
struct hmap *hmap_new(size_t cap_hint);

/* Free the map and its key copies; free_val (may be NULL) is called on every
 * value. Accepts NULL. */
void hmap_free(struct hmap *m, void (*free_val)(void *val));

/* Insert or replace key -> val. The key is copied. If the key was present its
 * previous value is stored in *old (when old is not NULL) and 1 is returned;
 * a new key returns 0 (and *old = NULL). Errors: ERR_NOMEM, ERR_TOO_LARGE
 * (HMAP_MAX_ENTRIES reached); the map is unchanged on error. */
int hmap_put(struct hmap *m, const char *key, void *val, void **old);

/* Value for key, or NULL if absent (store non-NULL values to tell apart). */
void *hmap_get(const struct hmap *m, const char *key);

/* Like hmap_get, but also returns the map's own copy of the key (valid until
 * the key is deleted or the map freed) in *stored_key. */
void *hmap_get_entry(const struct hmap *m, const char *key, const char **stored_key);

/* Remove key. Returns 1 and its value in *old (if old is not NULL) when it
 * was present, 0 when absent. Never fails. */
int hmap_del(struct hmap *m, const char *key, void **old);

/* Number of entries. */
size_t hmap_count(const struct hmap *m);

/* Iterate: start with *pos = 0; each call that returns 1 yields one entry in
 * *key / *val (either may be NULL); returns 0 at the end. The map must not be
 * modified during an iteration. Order is unspecified. */
int hmap_next(const struct hmap *m, size_t *pos, const char **key, void **val);

/* The map's keyed hash of a string (SipHash-1-3, per-process random key). */
uint64_t hmap_hash(const char *s, size_t len);

#endif
