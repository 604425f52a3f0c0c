#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/util.h"

static void buf_appends_and_terminates(void **state)
{
    bl_buf_t b = {0};
    assert_int_equal(bl_buf_append_str(&b, "hello"), 0);
    assert_int_equal(bl_buf_printf(&b, " %d %s", 42, "x"), 0);
    assert_string_equal(b.data, "hello 42 x");
    assert_int_equal(b.len, 10);
    /* a long printf takes the slow path */
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(bl_buf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 10 + 599);
    assert_int_equal(b.data[b.len], '\0');
    bl_buf_consume(&b, 6);
    assert_memory_equal(b.data, "42 xaa", 6);
    bl_buf_free(&b);
}

static void parse_u64_rejects_junk_and_overflow(void **state)
{
    uint64_t v;
    assert_int_equal(bl_parse_u64("123", 3, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(bl_parse_u64("12a", 3, &v), BL_EINVAL);
    assert_int_equal(bl_parse_u64("", 0, &v), BL_EINVAL);
    assert_int_equal(bl_parse_u64("18446744073709551616", 20, &v), BL_ERANGE);
    assert_int_equal(bl_parse_u64("18446744073709551615", 20, &v), 0);
}

static void edit_distance_for_did_you_mean(void **state)
{
    assert_int_equal(bl_edit_distance("retries", "retires"), 2);
    assert_int_equal(bl_edit_distance("listen", "listen"), 0);
    assert_int_equal(bl_edit_distance("base_url", "baseurl"), 1);
}

static void rng_is_deterministic_per_seed(void **state)
{
    bl_rng_t a, b;
    bl_rng_seed(&a, 7);
    bl_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(bl_rng_next(&a), bl_rng_next(&b));
    double u = bl_rng_unit(&a);
    assert_true(u >= 0.0 && u < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_appends_and_terminates),
        cmocka_unit_test(parse_u64_rejects_junk_and_overflow),
        cmocka_unit_test(edit_distance_for_did_you_mean),
        cmocka_unit_test(rng_is_deterministic_per_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
