/* test_time.c - ISO 8601 parsing and formatting, durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/err.h"
#include "util/time.h"

static void fmt_is(int64_t ms, const char *want)
{
    char out[TM_ISO_LEN];
    tm_format(ms, out);
    assert_string_equal(out, want);
}

static void test_format(void **state)
{
    (void)state;
    fmt_is(0, "1970-01-01T00:00:00.000Z");
    fmt_is(1781252100000LL, "2026-06-12T08:15:00.000Z");
    fmt_is(951782400123LL, "2000-02-29T00:00:00.123Z"); /* leap day */
    fmt_is(-1, "1969-12-31T23:59:59.999Z");
    fmt_is(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

static void test_parse(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(tm_parse("2026-06-12T08:15:00Z", &ms), 0);
    assert_int_equal(ms, 1781252100000LL);
    assert_int_equal(tm_parse("2026-06-12T10:15:00+02:00", &ms), 0);
    assert_int_equal(ms, 1781252100000LL);
    assert_int_equal(tm_parse("2026-06-12T08:15:00.5Z", &ms), 0);
    assert_int_equal(ms, 1781252100500LL);
    assert_int_equal(tm_parse("2026-06-12", &ms), 0);
    assert_int_equal(ms, 1781222400000LL);
    assert_int_equal(tm_parse("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(tm_parse("2001-02-29T00:00:00Z", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse("2026-13-01T00:00:00Z", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse("2026-06-12T24:00:00Z", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse("2026-06-12T08:15:00Zjunk", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse("yesterday", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse_time("08:15:00Z", &ms), 0);
    assert_int_equal(ms, 29700000);
    assert_true(tm_is_datetime("2026-06-12T08:15:00Z"));
    assert_false(tm_is_datetime("12"));
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int64_t ms = -86400000LL * 800; ms < 86400000LL * 40000; ms += 86400000LL * 7 + 3723001) {
        char out[TM_ISO_LEN];
        int64_t back;
        tm_format(ms, out);
        assert_int_equal(tm_parse(out, &back), 0);
        assert_int_equal(back, ms);
    }
}

static void test_duration(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(tm_parse_duration("PT1H", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(tm_parse_duration("P1DT2H3M4.5S", &ms), 0);
    assert_int_equal(ms, 93784500);
    assert_int_equal(tm_parse_duration("P1W", &ms), 0);
    assert_int_equal(ms, 604800000);
    assert_int_equal(tm_parse_duration("P", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse_duration("PT1D", &ms), ERR_BAD_DATA);
    assert_int_equal(tm_parse_duration("1H", &ms), ERR_BAD_DATA);
}

static int64_t at(const char *s)
{
    int64_t ms;
    assert_int_equal(tm_parse(s, &ms), 0);
    return ms;
}

static void test_add_months(void **state)
{
    (void)state;
    assert_true(tm_add_months(at("2026-01-15T10:20:30.500Z"), 1) == at("2026-02-15T10:20:30.500Z"));
    assert_true(tm_add_months(at("2026-01-31T00:00:00Z"), 1) == at("2026-02-28T00:00:00Z"));
    assert_true(tm_add_months(at("2024-01-31T23:59:59Z"), 1) == at("2024-02-29T23:59:59Z"));
    assert_true(tm_add_months(at("2026-11-30T00:00:00Z"), 14) == at("2028-01-30T00:00:00Z"));
    assert_true(tm_add_months(at("2026-03-31T12:00:00Z"), -1) == at("2026-02-28T12:00:00Z"));
    assert_true(tm_add_months(at("2026-01-01T00:00:00Z"), -13) == at("2024-12-01T00:00:00Z"));
    assert_true(tm_add_months(at("1969-12-31T23:00:00Z"), 2) == at("1970-02-28T23:00:00Z"));
    assert_true(tm_add_months(at("2026-05-05T05:05:05Z"), 0) == at("2026-05-05T05:05:05Z"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),     cmocka_unit_test(test_parse),
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_duration),
        cmocka_unit_test(test_add_months),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
