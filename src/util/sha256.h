/*
 * sha256.h - SHA-256 (FIPS 180-4) and the small secret helpers built on it:
 * random secrets from getrandom(2), salted hashes for storing them, and a
 * constant-time comparison. Secrets here are 32 random bytes (or operator
 * supplied strings of at least 16 characters), so one salted SHA-256 is
 * enough: there is no low-entropy password to stretch.
 *
 * No global state; any thread.
 */
#ifndef PL_SHA256_H
#define PL_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint64_t len;       /* bytes hashed so far */
    uint8_t buf[64];
    size_t used;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[32]);
/* One call: out = SHA-256(data). */
void sha256(const void *data, size_t len, uint8_t out[32]);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void sha256_hex(const uint8_t *in, size_t n, char *out);

/* A new random secret: 32 bytes from getrandom, as 64 hex digits + NUL.
 * Returns 0, or -1 if the kernel gave no randomness. */
int secret_new(char out[65]);

/* Stored form of a secret: "sha256:<salt hex>:<hash hex>" with a fresh
 * 16-byte salt (out gets 7 + 32 + 1 + 64 + 1 = 105 bytes). 0 or -1. */
#define SECRET_HASH_LEN 105
int secret_hash(const char *secret, char out[SECRET_HASH_LEN]);

/* 1 if secret matches the stored form, else 0 (also for a malformed
 * stored form). Runs in time independent of where they differ. */
int secret_check(const char *secret, const char *stored);

/* Constant-time equality of two n-byte buffers: 1 if equal. */
int mem_equal_ct(const void *a, const void *b, size_t n);

#endif
