/*
 * base64.h - strict standard base64 (RFC 4648 section 4, alphabet A-Z a-z
 * 0-9 + /, '=' padding) into caller-supplied, bounded buffers.
 *
 * The decoder is strict because its input comes from the network: the
 * length must be a multiple of 4, padding may only close the last quantum,
 * the unused low bits of the last symbol must be zero (so every byte string
 * has exactly one accepted encoding), and no whitespace or URL-safe symbols
 * are accepted. Nothing is allocated; output never exceeds the given
 * capacity. Pure functions, any thread.
 */
#ifndef PL_BASE64_H
#define PL_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decoded size of an encoding of in_len characters, an upper bound
 * (exact when there is no padding). */
#define B64_DECODED_MAX(in_len) (((in_len) / 4) * 3)
/* Characters b64_encode writes for len bytes, without the NUL. */
#define B64_ENCODED_LEN(len) ((((len) + 2) / 3) * 4)

/* Decode in[0..in_len) into out (cap bytes) and set *out_len. "" decodes to
 * zero bytes. Returns 0; ERR_BAD_DATA for anything that is not canonical
 * padded standard base64 (out is then unspecified); ERR_TOO_LARGE when the
 * decoded bytes would not fit in cap (checked before anything is written
 * past cap). */
int b64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len);

/* Encode in[0..len) as padded standard base64 plus a NUL into out (cap
 * bytes, at least B64_ENCODED_LEN(len) + 1). Returns 0, or ERR_TOO_LARGE
 * (out untouched) if it does not fit. */
int b64_encode(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
