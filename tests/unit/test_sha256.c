/* test_sha256.c - SHA-256 against the FIPS 180-4 / NIST example vectors, and
 * the secret helpers (fresh salts, matching, tampering, malformed forms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/sha256.h"

static void hex_of(const char *msg, size_t len, char out[65])
{
    uint8_t h[32];
    sha256(msg, len, h);
    sha256_hex(h, 32, out);
}

static void test_vectors(void **state)
{
    char out[65];
    (void)state;
    hex_of("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_incremental(void **state)
{
    struct sha256 c;
    uint8_t h[32];
    char out[65], block[1000];
    (void)state;
    memset(block, 'a', sizeof(block));
    sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        sha256_update(&c, block, sizeof(block)); /* 1,000,000 x a */
    sha256_final(&c, h);
    sha256_hex(h, 32, out);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_odd_chunks_match_one_call(void **state)
{
    char msg[300], a[65], b[65];
    struct sha256 c;
    uint8_t h[32];
    (void)state;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)(i * 7);
    hex_of(msg, sizeof(msg), a);
    sha256_init(&c);
    for (size_t off = 0, n = 1; off < sizeof(msg); off += n, n = n % 70 + 3)
        sha256_update(&c, msg + off, off + n > sizeof(msg) ? sizeof(msg) - off : n);
    sha256_final(&c, h);
    sha256_hex(h, 32, b);
    assert_string_equal(a, b);
}

static void test_secrets(void **state)
{
    char s1[65], s2[65], h1[SECRET_HASH_LEN], h2[SECRET_HASH_LEN];
    (void)state;
    assert_int_equal(secret_new(s1), 0);
    assert_int_equal(secret_new(s2), 0);
    assert_int_equal(strlen(s1), 64);
    assert_string_not_equal(s1, s2);
    assert_int_equal(secret_hash(s1, h1), 0);
    assert_int_equal(secret_hash(s1, h2), 0);
    assert_int_equal(strlen(h1), SECRET_HASH_LEN - 1);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_true(secret_check(s1, h1));
    assert_true(secret_check(s1, h2));
    assert_false(secret_check(s2, h1));
    assert_false(secret_check("", h1));
    h1[SECRET_HASH_LEN - 2] ^= 1; /* tamper with the hash */
    assert_false(secret_check(s1, h1));
    assert_false(secret_check(s1, "sha256:short"));
    assert_false(secret_check(s1, NULL));
    assert_false(secret_check(NULL, h2));
    assert_true(mem_equal_ct("abc", "abc", 3));
    assert_false(mem_equal_ct("abc", "abd", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_a_incremental),
        cmocka_unit_test(test_odd_chunks_match_one_call),
        cmocka_unit_test(test_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
