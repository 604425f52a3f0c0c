#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "health/health.h"

static const bl_breaker_cfg_t CFG = {.failure_threshold = 3, .error_rate = 0.5, .min_requests = 10,
                                     .window_ms = 10000, .cooldown_ms = 1000};

static bl_health_t *fresh(bl_health_table_t **t)
{
    assert_int_equal(bl_health_table_new(t), 0);
    bl_health_t *h = bl_health_get(*t, "p", "m");
    assert_non_null(h);
    assert_string_equal(h->key, "p/m");
    return h;
}

static void opens_after_consecutive_failures_then_half_opens(void **state)
{
    bl_health_table_t *t;
    bl_health_t *h = fresh(&t);
    uint64_t now = 100000;
    assert_true(bl_health_available(h, &CFG, now));
    bl_health_failure(h, &CFG, now);
    bl_health_failure(h, &CFG, now);
    assert_int_equal(h->state, BL_BREAKER_CLOSED);
    assert_true(bl_health_failure(h, &CFG, now)); /* third: opens */
    assert_int_equal(h->state, BL_BREAKER_OPEN);
    assert_false(bl_health_available(h, &CFG, now + 999));
    assert_int_equal(bl_health_wait_ms(h, &CFG, now + 400), 600);
    /* after the cool-down exactly one probe is let through */
    assert_true(bl_health_available(h, &CFG, now + 1000));
    assert_int_equal(h->state, BL_BREAKER_HALF_OPEN);
    bl_health_begin(h);
    assert_false(bl_health_available(h, &CFG, now + 1001));
    /* the probe fails: open again, for another cool-down */
    assert_true(bl_health_failure(h, &CFG, now + 1100));
    assert_int_equal(h->state, BL_BREAKER_OPEN);
    assert_false(bl_health_available(h, &CFG, now + 2000));
    assert_true(bl_health_available(h, &CFG, now + 2100));
    bl_health_begin(h);
    /* the probe succeeds: closed */
    assert_true(bl_health_success(h, &CFG, now + 2200, 5.0));
    assert_int_equal(h->state, BL_BREAKER_CLOSED);
    assert_true(bl_health_available(h, &CFG, now + 2200));
    bl_health_table_free(t);
}

static void abandoned_probe_frees_the_slot(void **state)
{
    bl_health_table_t *t;
    bl_health_t *h = fresh(&t);
    for (int i = 0; i < 3; i++)
        bl_health_failure(h, &CFG, 0);
    assert_true(bl_health_available(h, &CFG, 5000));
    bl_health_begin(h);
    assert_false(bl_health_available(h, &CFG, 5000));
    bl_health_abandon(h);
    assert_true(bl_health_available(h, &CFG, 5000));
    bl_health_table_free(t);
}

static void opens_on_error_rate(void **state)
{
    bl_health_table_t *t;
    bl_health_t *h = fresh(&t);
    uint64_t now = 50000;
    /* alternate: never 3 in a row, but 60% failures over 10 results */
    int pattern[] = {0, 1, 1, 0, 1, 0, 1, 1, 0, 1};
    bool opened = false;
    for (int i = 0; i < 10; i++) {
        if (pattern[i])
            opened |= bl_health_failure(h, &CFG, now + i);
        else
            bl_health_success(h, &CFG, now + i, 1);
    }
    assert_true(opened);
    assert_int_equal(h->state, BL_BREAKER_OPEN);
    bl_health_table_free(t);
}

static void old_results_leave_the_window(void **state)
{
    bl_health_table_t *t;
    bl_health_t *h = fresh(&t);
    /* 5 failures (not consecutive) long ago, then all good: stays closed */
    for (int i = 0; i < 5; i++) {
        bl_health_failure(h, &CFG, 1000 + i);
        bl_health_success(h, &CFG, 1000 + i, 1);
    }
    for (int i = 0; i < 10; i++)
        bl_health_success(h, &CFG, 30000 + i, 1);
    bl_health_failure(h, &CFG, 30100);
    assert_int_equal(h->state, BL_BREAKER_CLOSED);
    bl_health_table_free(t);
}

static void retry_after_cools_down(void **state)
{
    bl_health_table_t *t;
    bl_health_t *h = fresh(&t);
    bl_health_cooldown(h, 1000, 2000);
    assert_false(bl_health_available(h, &CFG, 2999));
    assert_int_equal(bl_health_wait_ms(h, &CFG, 2000), 1000);
    assert_true(bl_health_available(h, &CFG, 3000));
    assert_int_equal(h->state, BL_BREAKER_CLOSED);
    bl_health_table_free(t);
}

static void p95_needs_samples(void **state)
{
    bl_health_table_t *t;
    bl_health_t *h = fresh(&t);
    assert_true(bl_health_ttfb_p95(h) < 0);
    for (int i = 1; i <= 100; i++)
        bl_health_success(h, &CFG, 10, (double)i);
    /* the last 64 samples are 37..100; p95 of those is ~97 */
    double p = bl_health_ttfb_p95(h);
    assert_true(p >= 95 && p <= 100);
    bl_health_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opens_after_consecutive_failures_then_half_opens),
        cmocka_unit_test(abandoned_probe_frees_the_slot),
        cmocka_unit_test(opens_on_error_rate),
        cmocka_unit_test(old_results_leave_the_window),
        cmocka_unit_test(retry_after_cools_down),
        cmocka_unit_test(p95_needs_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
