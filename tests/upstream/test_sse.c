/* The SSE parser gives the same events however the stream is split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/upstream.h"

typedef struct {
    bl_buf_t out; /* "event=data|" per event */
    int n;
    int stop_after;
} sink_t;

static int collect(void *ud, bl_str_t event, bl_str_t data)
{
    sink_t *s = ud;
    bl_buf_append(&s->out, event.p, event.n);
    bl_buf_append(&s->out, "=", 1);
    bl_buf_append(&s->out, data.p, data.n);
    bl_buf_append(&s->out, "|", 1);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

/* Parse whole, then split at every point, then byte by byte: all must agree. */
static void check(const char *in, size_t n, const char *want)
{
    for (size_t split = 0; split <= n + 1; split++) {
        bl_sse_parser_t p = {0};
        sink_t s = {0};
        if (split == n + 1) {
            for (size_t i = 0; i < n; i++)
                assert_int_equal(bl_upstream_sse_feed(&p, in + i, 1, collect, &s), 0);
        } else {
            assert_int_equal(bl_upstream_sse_feed(&p, in, split, collect, &s), 0);
            assert_int_equal(bl_upstream_sse_feed(&p, in + split, n - split, collect, &s), 0);
        }
        assert_string_equal(s.out.data ? s.out.data : "", want);
        bl_buf_free(&s.out);
        bl_upstream_sse_free(&p);
    }
}

#define CHECK(in, want) check(in, sizeof(in) - 1, want)

static void openai_stream(void **state)
{
    CHECK("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
          "message={\"a\":1}|message={\"b\":2}|message=[DONE]|");
}

static void line_endings(void **state)
{
    CHECK("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "message=a|message=b|message=c|");
    CHECK("data: x\r\n\r\n", "message=x|");
}

static void fields_comments_and_multiline(void **state)
{
    CHECK(": keep-alive\n\nevent: message_start\ndata: {\"t\":1}\n\n", "message_start={\"t\":1}|");
    CHECK("data:a\ndata:  b\ndata\n\n", "message=a\n b\n|");
    CHECK("id: 7\nretry: 10\nevent: x\n\n", "");    /* no data: nothing */
    CHECK("event: x\n\ndata: y\n\n", "message=y|"); /* type resets */
    CHECK("data: tail without blank line\n", "");   /* dropped at the end */
    CHECK("\xEF\xBB\xBF"
          "data: bom\n\n",
          "message=bom|"); /* a leading BOM is skipped */
    CHECK("\xEF"
          "data: x\n\n",
          ""); /* not a BOM: a bad field */
}

static void limits_and_stop(void **state)
{
    bl_sse_parser_t p = {.max_bytes = 16};
    assert_int_equal(bl_upstream_sse_feed(&p, "data: 0123456789abcdef", 22, collect, NULL),
                     BL_ERANGE);
    bl_upstream_sse_free(&p);

    bl_sse_parser_t q = {0};
    sink_t s = {.stop_after = 1};
    const char *in = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(bl_upstream_sse_feed(&q, in, strlen(in), collect, &s), BL_ECANCELED);
    assert_int_equal(s.n, 1);
    bl_buf_free(&s.out);
    bl_upstream_sse_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openai_stream),
        cmocka_unit_test(line_endings),
        cmocka_unit_test(fields_comments_and_multiline),
        cmocka_unit_test(limits_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
