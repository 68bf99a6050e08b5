/* test_cfg.c - the configuration table: defaults, file parsing, flags,
 * errors, and the committed reference config matching the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cfg.h"

static void test_defaults(void **state)
{
    struct cfg c;
    (void)state;
    cfg_defaults(&c);
    assert_int_equal(c.port, 1026);
    assert_string_equal(c.data_dir, "./data");
    assert_string_equal(c.durability, "normal");
    assert_int_equal(c.max_body, 1048576);
    assert_int_equal(c.demo, 0);
}

static void test_set_and_errors(void **state)
{
    struct cfg c;
    struct err e = {0};
    (void)state;
    cfg_defaults(&c);
    assert_int_equal(cfg_set(&c, "port", "8080", &e), 0);
    assert_int_equal(c.port, 8080);
    assert_int_equal(cfg_set(&c, "log-level", "debug", &e), 0); /* dashes as in flags */
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(cfg_set(&c, "port", "70000", &e), ERR_INVALID_REQUEST);
    assert_non_null(strstr(e.detail, "port"));
    err_clear(&e);
    assert_int_equal(cfg_set(&c, "durability", "sometimes", &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(cfg_set(&c, "nosuchkey", "1", &e), ERR_INVALID_REQUEST);
    err_clear(&e);
    assert_int_equal(cfg_set(&c, "demo", "maybe", &e), ERR_INVALID_REQUEST);
    assert_int_equal(c.port, 8080); /* failed sets change nothing */
}

static void test_file(void **state)
{
    char path[] = "/tmp/pl_cfg_XXXXXX";
    int fd = mkstemp(path);
    struct cfg c;
    struct err e = {0};
    FILE *f;
    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "# comment\n[server]\nport = 1234\ndata = \"/var/lib/pl\"\n; other\ndemo = yes\n");
    fclose(f);
    cfg_defaults(&c);
    assert_int_equal(cfg_load_file(&c, path, &e), 0);
    assert_int_equal(c.port, 1234);
    assert_string_equal(c.data_dir, "/var/lib/pl");
    assert_int_equal(c.demo, 1);
    f = fopen(path, "w");
    fprintf(f, "port = 1\nbogus line\n");
    fclose(f);
    assert_int_equal(cfg_load_file(&c, path, &e), ERR_INVALID_REQUEST);
    assert_non_null(strstr(e.detail, ":2:"));
    unlink(path);
}

/* The committed pilotlight.conf is what the table prints, and it loads. */
static void test_reference_matches(void **state)
{
    const char *src = getenv("PL_SOURCE_DIR");
    char path[1024], *want = NULL, *have = NULL;
    size_t want_len = 0, have_len = 0;
    FILE *mem, *f;
    struct cfg c, d;
    struct err e = {0};
    (void)state;
    snprintf(path, sizeof(path), "%s/pilotlight.conf", src ? src : ".");
    mem = open_memstream(&want, &want_len);
    cfg_print_reference(mem);
    fclose(mem);
    f = fopen(path, "r");
    assert_non_null(f);
    have = malloc(want_len + 2);
    have_len = fread(have, 1, want_len + 1, f);
    fclose(f);
    assert_int_equal(have_len, want_len);
    assert_memory_equal(have, want, want_len);
    cfg_defaults(&c);
    cfg_defaults(&d);
    assert_int_equal(cfg_load_file(&c, path, &e), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    free(want);
    free(have);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_and_errors),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_reference_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
