/*
 * The local target's OpenAI answers when the model calls tools: generated
 * text goes through bl_local_deliver in small pieces (as the scheduler hands
 * it over) and must come out as OpenAI's chat.completion with
 * message.tool_calls and finish_reason "tool_calls", or as the chunk stream
 * OpenAI sends (a delta.tool_calls opening with id, type and name, then
 * argument pieces).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "local/local_int.h"

typedef struct {
    int status;
    bl_buf_t body;
    int done;
} sink_t;

static void on_headers(void *ud, int status, const bl_buf_t *h)
{
    (void)h;
    ((sink_t *)ud)->status = status;
}

static int on_body(void *ud, const char *data, size_t len)
{
    bl_buf_append(&((sink_t *)ud)->body, data, len);
    return 0;
}

static void on_done(void *ud, bl_up_result_t res, const char *msg)
{
    (void)res;
    (void)msg;
    ((sink_t *)ud)->done++;
}

/* Deliver text in pieces of `step` bytes as a finished generation. */
static void answer(sink_t *s, bool stream, bl_chat_tool_style_t style, bool one_call,
                   const char *text, size_t step)
{
    bl_local_req_t r;
    memset(&r, 0, sizeof r);
    r.chat = true;
    r.stream = stream;
    snprintf(r.model, sizeof r.model, "qwen-local");
    snprintf(r.id, sizeof r.id, "local-1");
    r.created = 1700000000;
    r.cb = (bl_upstream_cb_t){s, on_headers, on_body, on_done};
    r.one_call = one_call;
    assert_int_equal(bl_local_tools_begin(&r, style), 0);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        if (i + k == n) {
            r.finish = BL_FINISH_STOP;
            r.n_generated = 7;
        }
        bl_local_deliver(&r, text + i, k, i + k == n);
    }
    bl_local_free_req_fields(&r);
    assert_int_equal(s->status, 200);
    assert_int_equal(s->done, 1);
    bl_buf_append(&s->body, "", 1); /* NUL-terminate */
}

static const char TWO_CALLS[] =
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
    "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";

static char finish_buf[32];

/* The answer's message; *finish its finish_reason (until the next call). */
static json_t *message_of(sink_t *s, const char **finish)
{
    json_error_t e;
    json_t *root = json_loads(s->body.data, 0, &e);
    if (!root)
        fail_msg("not JSON (%s): %s", e.text, s->body.data);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    const char *f = json_string_value(json_object_get(choice, "finish_reason"));
    snprintf(finish_buf, sizeof finish_buf, "%s", f ? f : "");
    *finish = finish_buf;
    json_t *m = json_incref(json_object_get(choice, "message"));
    json_decref(root);
    return m;
}

static void test_non_stream(void **state)
{
    (void)state;
    size_t steps[] = {1, 3, 1000};
    for (size_t i = 0; i < 3; i++) {
        sink_t s = {0};
        answer(&s, false, BL_CHAT_TOOLS_HERMES, false, TWO_CALLS, steps[i]);
        const char *finish;
        json_t *m = message_of(&s, &finish);
        assert_string_equal(finish, "tool_calls");
        assert_true(json_is_null(json_object_get(m, "content")));
        json_t *calls = json_object_get(m, "tool_calls");
        assert_int_equal(json_array_size(calls), 2);
        json_t *c0 = json_array_get(calls, 0), *c1 = json_array_get(calls, 1);
        assert_string_equal(json_string_value(json_object_get(c0, "id")), "call_local-1_0");
        assert_string_equal(json_string_value(json_object_get(c0, "type")), "function");
        json_t *f0 = json_object_get(c0, "function");
        assert_string_equal(json_string_value(json_object_get(f0, "name")), "get_weather");
        assert_string_equal(json_string_value(json_object_get(f0, "arguments")),
                            "{\"city\":\"Paris\"}");
        json_t *f1 = json_object_get(c1, "function");
        assert_string_equal(json_string_value(json_object_get(f1, "name")), "now");
        assert_string_equal(json_string_value(json_object_get(f1, "arguments")), "{}");
        assert_string_equal(json_string_value(json_object_get(c1, "id")), "call_local-1_1");
        json_decref(m);
        bl_buf_free(&s.body);
    }
    /* parallel_tool_calls: false keeps the first call only. */
    sink_t s = {0};
    answer(&s, false, BL_CHAT_TOOLS_HERMES, true, TWO_CALLS, 5);
    const char *finish;
    json_t *m = message_of(&s, &finish);
    assert_int_equal(json_array_size(json_object_get(m, "tool_calls")), 1);
    json_decref(m);
    bl_buf_free(&s.body);
    /* Text and a Llama-style call; then plain text and text that only looks
     * like a call. */
    sink_t t = {0};
    answer(&t, false, BL_CHAT_TOOLS_LLAMA3, false,
           "{\"name\": \"now\", \"parameters\": {\"tz\": \"UTC\"}}", 2);
    m = message_of(&t, &finish);
    assert_string_equal(finish, "tool_calls");
    json_t *f = json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function");
    assert_string_equal(json_string_value(json_object_get(f, "arguments")), "{\"tz\":\"UTC\"}");
    json_decref(m);
    bl_buf_free(&t.body);
    sink_t u = {0};
    answer(&u, false, BL_CHAT_TOOLS_HERMES, false, "It is <tool_call>sunny</tool_call>.", 4);
    m = message_of(&u, &finish);
    assert_string_equal(finish, "stop");
    assert_string_equal(json_string_value(json_object_get(m, "content")),
                        "It is <tool_call>sunny</tool_call>.");
    assert_null(json_object_get(m, "tool_calls"));
    json_decref(m);
    bl_buf_free(&u.body);
}

static void test_stream(void **state)
{
    (void)state;
    sink_t s = {0};
    answer(&s, true, BL_CHAT_TOOLS_HERMES, false,
           "Checking.\n"
           "<tool_call>\n{\"name\": "
           "\"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
           3);
    /* Walk the SSE events. */
    int n_events = 0, n_text = 0, n_open = 0, n_args = 0;
    bool saw_done = false;
    char text[256] = "", args[256] = "";
    const char *finish = NULL;
    json_t *last = NULL;
    for (char *line = strtok(s.body.data, "\n"); line; line = strtok(NULL, "\n")) {
        assert_true(!strncmp(line, "data: ", 6));
        if (!strcmp(line + 6, "[DONE]")) {
            saw_done = true;
            continue;
        }
        json_t *ev = json_loads(line + 6, 0, NULL);
        assert_non_null(ev);
        assert_string_equal(json_string_value(json_object_get(ev, "object")),
                            "chat.completion.chunk");
        json_t *ch = json_array_get(json_object_get(ev, "choices"), 0);
        json_t *d = json_object_get(ch, "delta");
        json_t *c = json_object_get(d, "content");
        if (json_is_string(c) && json_string_length(c)) {
            strncat(text, json_string_value(c), sizeof text - strlen(text) - 1);
            n_text++;
        }
        json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        if (tc) {
            assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
            json_t *fn = json_object_get(tc, "function");
            if (json_object_get(tc, "id")) {
                n_open++;
                assert_string_equal(json_string_value(json_object_get(tc, "type")), "function");
                assert_string_equal(json_string_value(json_object_get(fn, "name")), "get_weather");
                assert_string_equal(json_string_value(json_object_get(fn, "arguments")), "");
            } else {
                n_args++;
                assert_null(json_object_get(fn, "name"));
                strncat(args, json_string_value(json_object_get(fn, "arguments")),
                        sizeof args - strlen(args) - 1);
            }
        }
        if (json_is_string(json_object_get(ch, "finish_reason")))
            finish = "set";
        json_decref(last);
        last = ev;
        n_events++;
    }
    assert_true(saw_done);
    assert_non_null(finish);
    json_t *ch = json_array_get(json_object_get(last, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "tool_calls");
    json_decref(last);
    assert_string_equal(text, "Checking.\n");
    assert_true(n_text >= 1);
    assert_int_equal(n_open, 1);
    assert_true(n_args >= 1);
    assert_string_equal(args, "{\"city\":\"Paris\"}");
    assert_true(n_events >= 4);
    bl_buf_free(&s.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_stream),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
