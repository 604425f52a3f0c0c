/* The server's request assembly (src/server/http_parse.c) without sockets:
 * the same bytes fed whole or one byte at a time give the same request, and
 * each malformed or oversized input maps to its status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "server/http_parse.h"

static const bl_hp_limits_t lim = {
    .max_body_bytes = 64,
    .max_header_bytes = 512,
    .max_url_bytes = 64,
    .max_headers = 8,
};

typedef struct {
    bl_hp_t hp;
    bl_buf_t b;
    size_t rpos;
} feed_t;

/* Feed s in pieces of `step` bytes the way the server does; stop at the
 * first complete request or error. Returns the final phase. */
static bl_hp_phase_t feed(feed_t *f, const char *s, size_t step)
{
    size_t n = strlen(s), in = 0;
    bl_hp_init(&f->hp, &lim);
    memset(&f->b, 0, sizeof f->b);
    f->rpos = 0;
    while (in < n) {
        size_t k = step < n - in ? step : n - in;
        assert_int_equal(bl_buf_append(&f->b, s + in, k), 0);
        in += k;
        size_t used = bl_hp_execute(&f->hp, f->b.data, f->rpos, f->b.len - f->rpos);
        f->rpos += used;
        if (f->hp.phase == BL_HP_DONE || f->hp.phase == BL_HP_ERROR)
            break;
        if (f->hp.phase == BL_HP_BODY) { /* compact as the server does */
            size_t keep = bl_hp_keep_end(&f->hp);
            memmove(f->b.data + keep, f->b.data + f->rpos, f->b.len - f->rpos);
            f->b.len -= f->rpos - keep;
            f->rpos = keep;
        }
    }
    return f->hp.phase;
}

static void feed_free(feed_t *f)
{
    bl_hp_free(&f->hp);
    bl_buf_free(&f->b);
}

static bl_str_t field_name(const feed_t *f, unsigned i)
{
    return (bl_str_t){f->b.data + f->hp.fields[i].name_off, f->hp.fields[i].name_len};
}

static bl_str_t field_value(const feed_t *f, unsigned i)
{
    return (bl_str_t){f->b.data + f->hp.fields[i].value_off, f->hp.fields[i].value_len};
}

static void same_request_whole_or_bytewise(void **state)
{
    const char *req = "POST /v1/chat?stream=1 HTTP/1.1\r\nHost: a\r\nX-Key: v v\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    size_t steps[] = {1000, 1, 2, 7};
    for (size_t s = 0; s < 4; s++) {
        feed_t f;
        assert_int_equal(feed(&f, req, steps[s]), BL_HP_DONE);
        assert_string_equal(bl_hp_method(&f.hp), "POST");
        assert_int_equal(f.hp.n_fields, 3);
        assert_true(bl_str_eq(field_name(&f, 1), "X-Key"));
        assert_true(bl_str_eq(field_value(&f, 1), "v v"));
        assert_true(
            bl_str_eq((bl_str_t){f.b.data + f.hp.url_off, f.hp.url_len}, "/v1/chat?stream=1"));
        assert_int_equal(f.hp.body.len, 5);
        assert_memory_equal(f.hp.body.data, "abcde", 5);
        assert_true(f.hp.keep_alive);
        feed_free(&f);
    }
}

static void statuses_for_bad_input(void **state)
{
    char big_url[200], many[400], long_head[700];
    snprintf(big_url, sizeof big_url, "GET /%0100d HTTP/1.1\r\n\r\n", 0);
    int n = snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 9; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "H%d: x\r\n", i);
    snprintf(many + n, sizeof many - (size_t)n, "\r\n");
    snprintf(long_head, sizeof long_head, "GET / HTTP/1.1\r\nX: %0600d\r\n\r\n", 0);
    struct {
        const char *in;
        int status;
    } cases[] = {
        {"garbage\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", 413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417},
        {"GET / HTTP/3.0\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
        {big_url, 414},
        {many, 431},
        {long_head, 431},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t step = 1; step <= 1000; step += 999) {
            feed_t f;
            bl_hp_phase_t ph = feed(&f, cases[i].in, step);
            if (ph != BL_HP_ERROR || f.hp.err_status != cases[i].status)
                fail_msg("case %zu step %zu: phase %d status %d", i, step, ph, f.hp.err_status);
            assert_non_null(f.hp.err_code);
            feed_free(&f);
        }
    }
}

static void expect_and_keep_alive_flags(void **state)
{
    feed_t f;
    assert_int_equal(
        feed(&f, "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n", 1000),
        BL_HP_BODY);
    assert_true(f.hp.expect_continue);
    feed_free(&f);
    /* HTTP/1.0: Expect is ignored, no keep-alive unless asked */
    assert_int_equal(feed(&f, "GET / HTTP/1.0\r\nExpect: whatever\r\n\r\n", 1000), BL_HP_DONE);
    assert_false(f.hp.expect_continue);
    assert_false(f.hp.keep_alive);
    feed_free(&f);
    assert_int_equal(feed(&f, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1000), BL_HP_DONE);
    assert_false(f.hp.keep_alive);
    feed_free(&f);
}

static void next_request_after_done(void **state)
{
    feed_t f;
    const char *two = "GET /a HTTP/1.1\r\n\r\nGET /b?x HTTP/1.1\r\nA: 1\r\n\r\n";
    assert_int_equal(feed(&f, two, 1000), BL_HP_DONE);
    assert_true(bl_str_eq((bl_str_t){f.b.data + f.hp.url_off, f.hp.url_len}, "/a"));
    bl_buf_consume(&f.b, f.rpos);
    f.rpos = 0;
    bl_hp_next(&f.hp);
    f.rpos += bl_hp_execute(&f.hp, f.b.data, 0, f.b.len);
    assert_int_equal(f.hp.phase, BL_HP_DONE);
    assert_int_equal(f.rpos, f.b.len);
    assert_true(bl_str_eq((bl_str_t){f.b.data + f.hp.url_off, f.hp.url_len}, "/b?x"));
    assert_int_equal(f.hp.n_fields, 1);
    feed_free(&f);
}

static void split_target_forms(void **state)
{
    bl_str_t p, q;
    bl_hp_split_target("/v1/models?a=1#frag", 19, false, &p, &q);
    assert_true(bl_str_eq(p, "/v1/models"));
    assert_true(bl_str_eq(q, "a=1"));
    bl_hp_split_target("/x#f?no", 7, false, &p, &q);
    assert_true(bl_str_eq(p, "/x"));
    assert_int_equal(q.n, 0);
    bl_hp_split_target("http://h:80/p/q?z", 17, false, &p, &q);
    assert_true(bl_str_eq(p, "/p/q"));
    assert_true(bl_str_eq(q, "z"));
    bl_hp_split_target("http://h", 8, false, &p, &q);
    assert_true(bl_str_eq(p, "/"));
    bl_hp_split_target("*", 1, false, &p, &q);
    assert_true(bl_str_eq(p, "*"));
    bl_hp_split_target("h:443", 5, true, &p, &q);
    assert_true(bl_str_eq(p, "h:443"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_request_whole_or_bytewise),
        cmocka_unit_test(statuses_for_bad_input),
        cmocka_unit_test(expect_and_keep_alive_flags),
        cmocka_unit_test(next_request_after_done),
        cmocka_unit_test(split_target_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
