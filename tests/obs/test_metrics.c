#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "obs/obs.h"

static void renders_prometheus_text(void **state)
{
    bl_metrics_t *m;
    assert_int_equal(bl_metrics_new(&m), 0);
    bl_metric_t *c = bl_metric_family(m, "x_total", BL_METRIC_COUNTER, "Things", "route,status");
    bl_metric_t *h = bl_metric_family(m, "lat_seconds", BL_METRIC_HISTOGRAM, "Latency", "t");
    const char *a[] = {"r1", "200"}, *b[] = {"r\"2\n", "503"};
    bl_metric_add(c, 1, a);
    bl_metric_add(c, 2, a);
    bl_metric_add(c, 1, b);
    const char *t[] = {"p/m"};
    bl_metric_observe(h, 0.003, t);
    bl_metric_observe(h, 0.2, t);
    bl_metric_observe(h, 100, t);
    bl_buf_t out = {0};
    assert_int_equal(bl_metrics_render(m, &out), 0);
    assert_non_null(strstr(out.data, "# TYPE x_total counter\n"));
    assert_non_null(strstr(out.data, "x_total{route=\"r1\",status=\"200\"} 3\n"));
    assert_non_null(strstr(out.data, "x_total{route=\"r\\\"2\\n\",status=\"503\"} 1\n"));
    assert_non_null(strstr(out.data, "lat_seconds_bucket{t=\"p/m\",le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(out.data, "lat_seconds_bucket{t=\"p/m\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "lat_seconds_bucket{t=\"p/m\",le=\"0.25\"} 2\n"));
    assert_non_null(strstr(out.data, "lat_seconds_bucket{t=\"p/m\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "lat_seconds_count{t=\"p/m\"} 3\n"));
    bl_buf_free(&out);
    /* many series force the table to grow */
    for (int i = 0; i < 1000; i++) {
        char r[16];
        snprintf(r, sizeof r, "r%d", i);
        const char *lv[] = {r, "200"};
        bl_metric_add(c, 1, lv);
    }
    assert_int_equal(bl_metrics_render(m, &out), 0);
    assert_non_null(strstr(out.data, "x_total{route=\"r999\",status=\"200\"} 1\n"));
    assert_non_null(strstr(out.data, "x_total{route=\"r1\",status=\"200\"} 4\n"));
    bl_buf_free(&out);
    bl_metrics_free(m);
}

static void gauge_clear_drops_series(void **state)
{
    bl_metrics_t *m;
    assert_int_equal(bl_metrics_new(&m), 0);
    bl_metric_t *g = bl_metric_family(m, "g", BL_METRIC_GAUGE, "G", "k");
    bl_metric_clear(g); /* an empty family: nothing to clear, nothing to touch */
    const char *a[] = {"a"};
    bl_metric_set(g, 5, a);
    bl_metric_clear(g);
    const char *b[] = {"b"};
    bl_metric_set(g, 1.5, b);
    bl_buf_t out = {0};
    bl_metrics_render(m, &out);
    assert_null(strstr(out.data, "g{k=\"a\"}"));
    assert_non_null(strstr(out.data, "g{k=\"b\"} 1.5\n"));
    bl_buf_free(&out);
    bl_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_prometheus_text),
        cmocka_unit_test(gauge_clear_drops_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
