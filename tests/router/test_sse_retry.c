#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "router/router.h"
#include "router/sse.h"

static void finds_event_boundaries(void **state)
{
    const char *s = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
    assert_int_equal(bl_sse_event_len(s, strlen(s)), 15);
    assert_int_equal(bl_sse_event_len(s, 14), 0); /* incomplete */
    const char *crlf = "data: x\r\n\r\nrest";
    assert_int_equal(bl_sse_event_len(crlf, strlen(crlf)), 11);
    const char *cr = "data: x\r\rrest";
    assert_int_equal(bl_sse_event_len(cr, strlen(cr)), 9);
    /* a CR at the very end may be half of a CRLF: wait */
    assert_int_equal(bl_sse_event_len("data: x\r\n\r", 10), 0);
    /* a blank line right at the start ends an (empty) event */
    assert_int_equal(bl_sse_event_len("\n\n", 2), 1);
}

static void joins_data_lines(void **state)
{
    bl_buf_t out = {0};
    const char *ev = "event: x\ndata: one\ndata:two\n: comment\n\n";
    assert_true(bl_sse_event_data(ev, strlen(ev), &out));
    assert_string_equal(out.data, "one\ntwo");
    const char *ping = ": keep-alive\n\n";
    assert_false(bl_sse_event_data(ping, strlen(ping), &out));
    bl_buf_free(&out);
}

static void parses_retry_after(void **state)
{
    uint64_t s;
    assert_true(bl_parse_retry_after(BL_STR("120"), 0, &s));
    assert_int_equal(s, 120);
    assert_true(bl_parse_retry_after(BL_STR(" 7 "), 0, &s));
    assert_int_equal(s, 7);
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    assert_true(bl_parse_retry_after(BL_STR("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777 - 30, &s));
    assert_int_equal(s, 30);
    assert_true(bl_parse_retry_after(BL_STR("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777 + 30, &s));
    assert_int_equal(s, 0); /* in the past */
    assert_false(bl_parse_retry_after(BL_STR("soon"), 0, &s));
    assert_false(bl_parse_retry_after(BL_STR("-5"), 0, &s));
    assert_false(bl_parse_retry_after(BL_STR(""), 0, &s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_event_boundaries),
        cmocka_unit_test(joins_data_lines),
        cmocka_unit_test(parses_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
