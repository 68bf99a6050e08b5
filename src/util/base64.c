/*
 * base64.c - strict standard base64 (see base64.h). A 256-entry table maps
 * each byte to its 6-bit value or to "invalid", so decoding is one lookup
 * per character and any byte outside the alphabet is caught there.
 */
#include "util/base64.h"

#include "util/err.h"

#define BAD 0xFF

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 6-bit value of each byte, BAD outside the alphabet ('=' included). */
static const uint8_t VALUE[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,
    ['H'] = 7,  ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13,
    ['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20,
    ['V'] = 21, ['W'] = 22, ['X'] = 23, ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27,
    ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31, ['g'] = 32, ['h'] = 33, ['i'] = 34,
    ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39, ['o'] = 40, ['p'] = 41,
    ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47, ['w'] = 48,
    ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['+'] = 62,
    ['/'] = 63,
};

/* The table above leaves unlisted bytes at 0, which is 'A'; this marks
 * them invalid. Checked per character: a byte is valid iff it is 'A' or
 * its table value is non-zero. */
static int sextet(unsigned char c, uint8_t *v)
{
    uint8_t x = VALUE[c];

    if (x == 0 && c != 'A')
        return -1;
    *v = x;
    return 0;
}

int b64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t n_pad = 0, need, o = 0;

    *out_len = 0;
    if (in_len % 4 != 0)
        return ERR_BAD_DATA;
    if (in_len == 0)
        return 0;
    if (in[in_len - 1] == '=')
        n_pad = in[in_len - 2] == '=' ? 2 : 1;
    need = in_len / 4 * 3 - n_pad;
    if (need > cap)
        return ERR_TOO_LARGE;
    for (size_t i = 0; i < in_len; i += 4) {
        uint8_t v[4] = {0, 0, 0, 0};
        int last = i + 4 == in_len;
        int n_sym = last ? 4 - (int)n_pad : 4;

        for (int k = 0; k < n_sym; k++)
            if (sextet((unsigned char)in[i + (size_t)k], &v[k]) != 0)
                return ERR_BAD_DATA;
        out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (n_sym == 2) {
            if ((v[1] & 0x0F) != 0)
                return ERR_BAD_DATA; /* non-canonical trailing bits */
            break;
        }
        out[o++] = (uint8_t)((v[1] & 0x0F) << 4 | v[2] >> 2);
        if (n_sym == 3) {
            if ((v[2] & 0x03) != 0)
                return ERR_BAD_DATA;
            break;
        }
        out[o++] = (uint8_t)((v[2] & 0x03) << 6 | v[3]);
    }
    *out_len = o;
    return 0;
}

int b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t o = 0, i = 0;

    if (len > (SIZE_MAX - 3) / 4 * 3 - 3 || cap < B64_ENCODED_LEN(len) + 1)
        return ERR_TOO_LARGE;
    for (; i + 3 <= len; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = ALPHABET[w >> 18 & 63];
        out[o++] = ALPHABET[w >> 12 & 63];
        out[o++] = ALPHABET[w >> 6 & 63];
        out[o++] = ALPHABET[w & 63];
    }
    if (len - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[o++] = ALPHABET[w >> 18 & 63];
        out[o++] = ALPHABET[w >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = ALPHABET[w >> 18 & 63];
        out[o++] = ALPHABET[w >> 12 & 63];
        out[o++] = ALPHABET[w >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return 0;
}
