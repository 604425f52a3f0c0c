/*
 * Tools in chat templates: tool definitions, assistant tool calls and tool
 * results rendered per family (expected strings written from the shipped
 * templates in $BALLAST_SHARED/models/templates, and every family compared
 * byte for byte with a real Jinja engine, tests/node-llama/chat_oracle.mjs,
 * when node is installed); the JSON re-writer behind `tojson`; and the
 * streaming tool-call parser on whole, byte-by-byte and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_files.h"
#include <jansson.h>

#include "engine/chat/chat.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather now \\u2014 in \\u00b0C, \\\"quoted\\\"\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":"
    "[\"c\",\"f\"]}},\"required\":[\"city\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"now\", \"parameters\": "
    "{\"type\": \"object\", \"properties\": {}}}}]";

/* What Jinja's tojson writes for each of TOOLS' items. */
#define TOOL1_JINJA                                                                                \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "         \
    "\"Weather now \xe2\x80\x94 in \xc2\xb0"                                                       \
    "C, \\\"quoted\\\"\", \"parameters\": {\"type\": "                                             \
    "\"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"type\": "         \
    "\"string\", \"enum\": [\"c\", \"f\"]}}, \"required\": [\"city\"]}}}"
#define TOOL2_JINJA                                                                                \
    "{\"type\": \"function\", \"function\": {\"name\": \"now\", \"parameters\": {\"type\": "       \
    "\"object\", \"properties\": {}}}}"

#define HERMES_TOOLS                                                                               \
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"             \
    "You are provided with function signatures within <tools></tools> XML "                        \
    "tags:\n<tools>\n" TOOL1_JINJA "\n" TOOL2_JINJA                                                \
    "\n</tools>\n\nFor each function call, return a json object "                                  \
    "with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"     \
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"

static const bl_chat_tool_call_t CALL_PARIS[] = {
    {"call_1", "get_weather", "{\"city\":\"Paris\",\"unit\":\"c\"}"}};
static const bl_chat_tool_call_t CALLS_TWO[] = {
    {"call_a", "get_weather",
     "{\"city\": \"Caf\\u00e9 \\\"X\\\"\\n\", \"n\": 1.5, "
     "\"l\": [1, {\"a\": null}], \"t\": true}"},
    {"call_b", "now", NULL}};

typedef struct {
    const char *name;
    bl_chat_msg_t m[8];
    bl_chat_msg_tools_t x[8];
    size_t n;
    const char *tools;
    bool gen;
} conv_t;

static const conv_t CONVS[] = {
    {"tools+system",
     {{"system", "You are terse."}, {"user", "Weather in Paris?"}},
     {{0}},
     2,
     TOOLS,
     true},
    {"tools-nosys", {{"user", "Weather in Paris?"}}, {{0}}, 1, TOOLS, true},
    {"call+result",
     {{"system", "You are terse."},
      {"user", "Weather in Paris?"},
      {"assistant", NULL},
      {"tool", "{\"temp\": 21, \"sky\": \"clear\"}"}},
     {{0}, {0}, {CALL_PARIS, 1, "call_1", NULL}, {NULL, 0, "call_1", "get_weather"}},
     4,
     TOOLS,
     true},
    {"parallel",
     {{"user", "Weather and time?"},
      {"assistant", "Let me check."},
      {"tool", "sunny"},
      {"tool", "12:00"},
      {"assistant", "Sunny, noon."},
      {"user", "Thanks"}},
     {{0}, {CALLS_TWO, 2, NULL, NULL}, {0}, {0}, {0}, {0}},
     6,
     TOOLS,
     true},
    {"history-without-tools",
     {{"user", "Weather in Paris?"}, {"assistant", ""}, {"tool", "rain \"light\"\n"}},
     {{0}, {CALL_PARIS, 1, NULL, NULL}, {0}},
     3,
     NULL,
     true},
    {"empty-tools", {{"user", "Hi"}}, {{0}}, 1, "[]", true},
    {"call-last",
     {{"user", "Weather in Paris?"}, {"assistant", ""}},
     {{0}, {CALL_PARIS, 1, NULL, NULL}},
     2,
     TOOLS,
     false},
    {"think+call",
     {{"user", "Weather in Paris?"}, {"assistant", "<think>\nplan\n</think>\n\nChecking."}},
     {{0}, {CALL_PARIS, 1, NULL, NULL}},
     2,
     TOOLS,
     true},
};

/* ---- rendering, expected strings ------------------------------------------ */

static const bl_chat_opts_t QWEN = {"", "<|im_end|>", false, NULL};
static const bl_chat_opts_t LLAMA = {"<|begin_of_text|>", "<|eot_id|>", true, "01 Jan 2025"};
static const bl_chat_opts_t GEMMA = {"<bos>", "<eos>", true, NULL};

static void check(bl_chat_family_t f, const bl_chat_opts_t *o, const conv_t *c, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bl_chat_render_family_x(f, o, c->m, c->x, c->n, c->tools, c->gen, &out, &len),
                     0);
    if (strcmp(out, want))
        fail_msg("%s / %s:\n got: [%s]\nwant: [%s]", bl_chat_family_name(f), c->name, out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_qwen25(void **state)
{
    (void)state;
    check(BL_CHAT_QWEN25, &QWEN, &CONVS[0],
          "<|im_start|>system\nYou are terse.\n\n" HERMES_TOOLS "<|im_end|>\n"
          "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n");
    check(BL_CHAT_QWEN25, &QWEN, &CONVS[1],
          "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
          "assistant.\n\n" HERMES_TOOLS "<|im_end|>\n"
          "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n");
    check(BL_CHAT_QWEN25, &QWEN, &CONVS[3],
          "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
          "assistant.\n\n" HERMES_TOOLS "<|im_end|>\n"
          "<|im_start|>user\nWeather and time?<|im_end|>\n"
          "<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", "
          "\"arguments\": {\"city\": \"Caf\xc3\xa9 \\\"X\\\"\\n\", \"n\": 1.5, \"l\": [1, {\"a\": "
          "null}], \"t\": true}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": "
          "{}}\n</tool_call><|im_end|>\n"
          "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\n12:00\n"
          "</tool_response><|im_end|>\n"
          "<|im_start|>assistant\nSunny, noon.<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n"
          "<|im_start|>assistant\n");
}

static void test_qwen3(void **state)
{
    (void)state;
    check(BL_CHAT_QWEN3, &QWEN, &CONVS[1],
          "<|im_start|>system\n" HERMES_TOOLS "<|im_end|>\n"
          "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n");
    check(BL_CHAT_QWEN3, &QWEN, &CONVS[2],
          "<|im_start|>system\nYou are terse.\n\n" HERMES_TOOLS "<|im_end|>\n"
          "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
          "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
          "\"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call><|im_end|>\n"
          "<|im_start|>user\n<tool_response>\n{\"temp\": 21, \"sky\": \"clear\"}\n"
          "</tool_response><|im_end|>\n<|im_start|>assistant\n");
}

#define L3(role, text) "<|start_header_id|>" role "<|end_header_id|>\n\n" text "<|eot_id|>"

static void test_llama32(void **state)
{
    (void)state;
    check(
        BL_CHAT_LLAMA32, &LLAMA, &CONVS[2],
        "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\nYou are terse."
        "<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please "
        "respond with a JSON for a function call with its proper arguments that best answers "
        "the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": "
        "dictionary of argument name and its value}.Do not use variables.\n\n"
        "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\","
        "\n        \"description\": \"Weather now \xe2\x80\x94 in \xc2\xb0"
        "C, \\\"quoted\\\"\","
        "\n        \"parameters\": {\n            \"type\": \"object\",\n            "
        "\"properties\": {\n                \"city\": {\n                    \"type\": "
        "\"string\"\n                },\n                \"unit\": {\n                    "
        "\"type\": \"string\",\n                    \"enum\": [\n                        "
        "\"c\",\n                        \"f\"\n                    ]\n                }\n"
        "            },\n            \"required\": [\n                \"city\"\n            ]\n"
        "        }\n    }\n}\n\n"
        "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"now\",\n"
        "        \"parameters\": {\n            \"type\": \"object\",\n            "
        "\"properties\": {}\n        }\n    }\n}\n\n"
        "Weather in Paris?<|eot_id|>" L3("assistant", "{\"name\": \"get_weather\", \"parameters\": "
                                                      "{\"city\": \"Paris\", \"unit\": \"c\"}}")
            L3("ipython",
               "\"{\\\"temp\\\": 21, \\\"sky\\\": \\\"clear\\\"}\"") "<|start_header_id|>assistant<"
                                                                     "|end_header_id|>\n\n");
    /* Several calls in one turn: one assistant turn each (the template
     * refuses them). */
    const conv_t *c = &CONVS[3];
    char *out = NULL;
    assert_int_equal(
        bl_chat_render_family_x(BL_CHAT_LLAMA32, &LLAMA, c->m, c->x, c->n, NULL, true, &out, NULL),
        0);
    assert_non_null(strstr(out, L3("user", "Weather and time?")
                                    L3("assistant", "{\"name\": \"get_weather\", \"parameters\": "
                                                    "{\"city\": \"Caf\xc3\xa9 \\\"X\\\"\\n\", "
                                                    "\"n\": 1.5, \"l\": [1, {\"a\": null}], "
                                                    "\"t\": true}}")
                                        L3("assistant", "{\"name\": \"now\", \"parameters\": {}}")
                                            L3("ipython", "\"sunny\"") L3("ipython", "\"12:00\"")));
    free(out);
}

/* Families without tools in their template: the Hermes fallback. */
static void test_fallback(void **state)
{
    (void)state;
    const conv_t *c = &CONVS[3];
    span_t *items;
    size_t n_items;
    assert_int_equal(bl_chat_json_items(TOOLS, strlen(TOOLS), &items, &n_items), 0);
    assert_int_equal(n_items, 2);
    bl_chat_msg_t *m;
    char **strings;
    size_t n, ns;
    assert_int_equal(
        bl_chat_hermes_fallback(c->m, c->x, c->n, items, n_items, &m, &n, &strings, &ns), 0);
    assert_int_equal(n, 6); /* system added, two results merged */
    assert_string_equal(m[0].role, "system");
    assert_string_equal(m[0].content, HERMES_TOOLS);
    assert_string_equal(m[1].content, "Weather and time?");
    assert_string_equal(m[2].role, "assistant");
    assert_string_equal(m[2].content,
                        "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                        "{\"city\": \"Caf\xc3\xa9 \\\"X\\\"\\n\", \"n\": 1.5, \"l\": [1, {\"a\": "
                        "null}], \"t\": true}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", "
                        "\"arguments\": {}}\n</tool_call>");
    assert_string_equal(m[3].role, "user");
    assert_string_equal(m[3].content, "<tool_response>\nsunny\n</tool_response>\n"
                                      "<tool_response>\n12:00\n</tool_response>");
    assert_string_equal(m[5].content, "Thanks");
    for (size_t i = 0; i < ns; i++)
        free(strings[i]);
    free(strings);
    free(m);
    free(items);

    /* Gemma has no system role: the tools fold into the first user turn. */
    check(BL_CHAT_GEMMA, &GEMMA, &CONVS[2],
          "<start_of_turn>user\nYou are terse.\n\n" HERMES_TOOLS "\n\nWeather in Paris?"
          "<end_of_turn>\n<start_of_turn>model\n<tool_call>\n{\"name\": \"get_weather\", "
          "\"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call><end_of_turn>\n"
          "<start_of_turn>user\n<tool_response>\n{\"temp\": 21, \"sky\": \"clear\"}\n"
          "</tool_response><end_of_turn>\n<start_of_turn>model\n");
    /* ChatML (and unknown templates) the same way, with a system turn. */
    check(BL_CHAT_CHATML, &QWEN, &CONVS[1],
          "<|im_start|>system\n" HERMES_TOOLS "<|im_end|>\n"
          "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n");
}

static void test_no_tools_unchanged(void **state)
{
    (void)state;
    /* Without tools or calls, every family renders exactly as before. */
    const bl_chat_msg_t m[] = {{"system", "S"}, {"user", "U"}, {"tool", "T"}, {"assistant", "A"}};
    const bl_chat_msg_tools_t x[4] = {{0}};
    for (int f = 0; f < BL_CHAT_N_FAMILIES; f++) {
        char *a = NULL, *b = NULL;
        assert_int_equal(bl_chat_render_family(f, &LLAMA, m, 4, true, &a, NULL), 0);
        assert_int_equal(bl_chat_render_family_x(f, &LLAMA, m, x, 4, NULL, true, &b, NULL), 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    char *out = NULL;
    const bl_chat_msg_t u[] = {{"user", "Hi"}};
    const char *bad_tools[] = {"{}", "[", "[1,]", "[] x", "\"s\"", ""};
    for (int f = 0; f < BL_CHAT_N_FAMILIES; f++) {
        for (size_t i = 0; i < N(bad_tools); i++)
            assert_int_equal(
                bl_chat_render_family_x(f, NULL, u, NULL, 1, bad_tools[i], true, &out, NULL),
                BL_EINVAL);
        /* NULL content is fine only on an assistant message with calls. */
        const bl_chat_msg_t a[] = {{"user", "Hi"}, {"assistant", NULL}};
        const bl_chat_msg_tools_t xa[] = {{0}, {CALL_PARIS, 1, NULL, NULL}};
        const bl_chat_msg_tools_t none[2] = {{0}};
        assert_int_equal(bl_chat_render_family_x(f, NULL, a, xa, 2, NULL, true, &out, NULL), 0);
        assert_non_null(strstr(out, "get_weather"));
        free(out);
        assert_int_equal(bl_chat_render_family_x(f, NULL, a, none, 2, NULL, true, &out, NULL),
                         BL_EINVAL);
        /* A call without a name; a count without an array. */
        const bl_chat_tool_call_t noname[] = {{"id", NULL, "{}"}};
        const bl_chat_msg_tools_t xn[] = {{0}, {noname, 1, NULL, NULL}};
        const bl_chat_msg_tools_t xz[] = {{0}, {NULL, 3, NULL, NULL}};
        assert_int_equal(bl_chat_render_family_x(f, NULL, a, xn, 2, NULL, true, &out, NULL),
                         BL_EINVAL);
        assert_int_equal(bl_chat_render_family_x(f, NULL, a, xz, 2, NULL, true, &out, NULL),
                         BL_EINVAL);
        /* Arguments that are not JSON are written as a string, never refused. */
        const bl_chat_tool_call_t junk[] = {{"id", "f", "{not json"}};
        const bl_chat_msg_tools_t xj[] = {{0}, {junk, 1, NULL, NULL}};
        assert_int_equal(bl_chat_render_family_x(f, NULL, a, xj, 2, TOOLS, true, &out, NULL), 0);
        assert_non_null(strstr(out, "{not json"));
        free(out);
    }
    /* Llama 3.x puts the tools in the first message after the system one. */
    const bl_chat_msg_t sys[] = {{"system", "S"}};
    assert_int_equal(
        bl_chat_render_family_x(BL_CHAT_LLAMA32, NULL, sys, NULL, 1, TOOLS, true, &out, NULL),
        BL_EINVAL);
}

/* ---- the JSON re-writer ------------------------------------------------------ */

static void json_is(const char *in, const bl_chat_json_style_t *st, const char *want)
{
    sb_t b = {0};
    bool ok = bl_chat_json_write(&b, in, strlen(in), st);
    if (!want) {
        if (ok)
            fail_msg("accepted [%s] as JSON: [%s]", in, b.p ? b.p : "");
        free(b.p);
        return;
    }
    if (!ok)
        fail_msg("refused [%s]", in);
    assert_string_equal(b.p ? b.p : "", want);
    free(b.p);
}

static void test_json(void **state)
{
    (void)state;
    const bl_chat_json_style_t *J = &BL_CHAT_JSON_JINJA, *C = &BL_CHAT_JSON_COMPACT;
    static const bl_chat_json_style_t I2 = {",", ": ", 2};
    json_is(" {\"a\" :1,\"b\":[true,false,null,-0.5e+3],\"c\":{}} ", J,
            "{\"a\": 1, \"b\": [true, false, null, -0.5e+3], \"c\": {}}");
    json_is("{\"a\": 1, \"b\": [ ]}", C, "{\"a\":1,\"b\":[]}");
    json_is("{\"a\":[1,{\"b\":2}],\"e\":[]}", &I2,
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ],\n  \"e\": []\n}");
    /* Escapes as JSON.stringify / json.dumps(ensure_ascii=False) write them. */
    json_is("\"\\u00e9\\/\\b\\f\\n\\r\\t\\u0001\\u001F\\\"\\\\\\ud83d\\ude00\\u2028\"", J,
            "\"\xc3\xa9/\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\\xf0\x9f\x98\x80\xe2\x80\xa8\"");
    json_is("\"\\ud800x\\udc00\"", J, "\"\\ud800x\\udc00\""); /* lone surrogates */
    json_is("\"a\\u0000b\"", J, "\"a\\u0000b\"");
    json_is("\"caf\xc3\xa9\"", J, "\"caf\xc3\xa9\"");
    const char *bad[] = {"",      " ",          "{",       "{\"a\"}",     "{\"a\":1,}", "[1 2]",
                         "01",    "1.",         "-",       ".5",          "1e",         "tru",
                         "\"abc", "\"a\nb\"",   "\"\\x\"", "\"\\u12g4\"", "{1:2}",      "[1] [2]",
                         "nul",   "{\"a\":1}}", "+1",      "NaN"};
    for (size_t i = 0; i < N(bad); i++)
        json_is(bad[i], J, NULL);
    /* Deep nesting is refused, not recursed into. */
    char deep[1201];
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    deep[1200] = 0;
    json_is(deep, J, NULL);
    json_is(deep + 500, J, NULL); /* and unbalanced */
    json_is(deep + 480, J, NULL);
    deep[1200 - 480] = 0; /* 120 deep: fine */
    sb_t b = {0};
    assert_true(bl_chat_json_write(&b, deep + 480, 240, J));
    free(b.p);

    sb_t name = {0}, args = {0};
    const char *call = "{\"name\": \"f\\u00e9\", \"other\": [1, {\"x\": \"}\"}], "
                       "\"arguments\": {\"a\": [1, 2], \"s\": \"x y\"}}";
    assert_true(bl_chat_json_tool_call(call, strlen(call), &name, &args));
    assert_string_equal(name.p, "f\xc3\xa9");
    assert_string_equal(args.p, "{\"a\":[1,2],\"s\":\"x y\"}");
    const char *params = "{\"parameters\": {}, \"name\": \"g\"}";
    assert_true(bl_chat_json_tool_call(params, strlen(params), &name, &args));
    assert_string_equal(name.p, "g");
    assert_string_equal(args.p, "{}");
    const char *strargs = "{\"name\": \"g\", \"arguments\": \"{\\\"a\\\": 1}\"}";
    assert_true(bl_chat_json_tool_call(strargs, strlen(strargs), &name, &args));
    assert_string_equal(args.p, "{\"a\":1}");
    const char *noargs = "{\"name\": \"g\"}";
    assert_true(bl_chat_json_tool_call(noargs, strlen(noargs), &name, &args));
    assert_string_equal(args.p, "{}");
    const char *not_calls[] = {"{\"arguments\": {}}",
                               "{\"name\": 1}",
                               "{\"name\": \"\"}",
                               "[{\"name\": \"g\"}]",
                               "{\"name\": \"g\"",
                               "{\"name\": \"a\\u0000\"}",
                               "{\"name\": \"g\", \"arguments\": \"not json\"}",
                               "nope"};
    for (size_t i = 0; i < N(not_calls); i++)
        if (bl_chat_json_tool_call(not_calls[i], strlen(not_calls[i]), &name, &args))
            fail_msg("took [%s] for a call", not_calls[i]);
    free(name.p);
    free(args.p);
}

/* ---- the parser ------------------------------------------------------------ */

/* Events as text: T(text) S#i(name) A#i(args) E#i; consecutive text merged. */
typedef struct {
    sb_t log;
    bool in_text;
    int stop_after; /* > 0: return 1 after that many events */
    int n_events;
} rec_t;

static int on_event(void *ud, const bl_chat_event_t *e)
{
    rec_t *r = ud;
    char tag[32];
    if (e->kind == BL_CHAT_EV_TEXT) {
        if (!r->in_text)
            put(&r->log, "T(");
        putn(&r->log, e->text, e->len);
        r->in_text = true;
    } else {
        if (r->in_text)
            put(&r->log, ")");
        r->in_text = false;
        static const char k[] = "TSAE";
        snprintf(tag, sizeof tag, "%c#%zu(", k[e->kind], e->index);
        put(&r->log, tag);
        putn(&r->log, e->text, e->len);
        put(&r->log, ")");
    }
    return r->stop_after && ++r->n_events >= r->stop_after;
}

/* Feed s in pieces of `step` bytes (0: whole) and return the event log. */
static char *parse(bl_chat_tool_style_t style, const char *s, size_t n, size_t step)
{
    bl_chat_tool_parser_t *p;
    assert_int_equal(bl_chat_tool_parser_new(style, &p), 0);
    rec_t r = {0};
    for (size_t i = 0; i < n;) {
        size_t k = step && n - i > step ? step : n - i;
        assert_int_equal(bl_chat_tool_parser_feed(p, s + i, k, on_event, &r), 0);
        i += k;
    }
    assert_int_equal(bl_chat_tool_parser_finish(p, on_event, &r), 0);
    bl_chat_tool_parser_free(p);
    if (r.in_text)
        put(&r.log, ")");
    assert_false(r.log.oom);
    return r.log.p ? r.log.p : calloc(1, 1);
}

static void expect(bl_chat_tool_style_t style, const char *in, const char *want)
{
    size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < N(steps); i++) {
        char *got = parse(style, in, strlen(in), steps[i]);
        if (strcmp(got, want))
            fail_msg("input [%s] in pieces of %zu:\n got: %s\nwant: %s", in, steps[i], got, want);
        free(got);
    }
}

static void test_parser_hermes(void **state)
{
    (void)state;
    const bl_chat_tool_style_t H = BL_CHAT_TOOLS_HERMES;
    expect(H, "Hello there", "T(Hello there)");
    expect(H,
           "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
           "</tool_call>",
           "S#0(get_weather)A#0({\"city\":\"Paris\"})E#0()");
    /* Text first, two parallel calls, whitespace between and after dropped. */
    expect(H,
           "Checking both.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
           "<tool_call>\n{\"arguments\": {\"x\": [1, \"</tool\"]}, \"name\": \"b\"}\n"
           "</tool_call>\n\n",
           "T(Checking both.\n)S#0(a)A#0({})E#0()S#1(b)A#1({\"x\":[1,\"</tool\"]})E#1()");
    /* Text after a call is kept, its leading whitespace not. */
    expect(H, "<tool_call>{\"name\":\"a\"}</tool_call>\n Done.", "S#0(a)A#0({})E#0()T(Done.)");
    /* Things that look like markers but are not. */
    expect(H, "a < b and <tool_ x", "T(a < b and <tool_ x)");
    expect(H, "ends with <tool_cal", "T(ends with <tool_cal)");
    /* Not JSON inside the markers: all of it is text, byte for byte. */
    expect(H, "<tool_call>\nnot json\n</tool_call> after",
           "T(<tool_call>\nnot json\n</tool_call> after)");
    expect(H, "<tool_call>{\"name\": 5}</tool_call>", "T(<tool_call>{\"name\": 5}</tool_call>)");
    /* Unclosed at the end: a call if the JSON is complete, else text. */
    expect(H, "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"k\": 1}}\n",
           "S#0(a)A#0({\"k\":1})E#0()");
    expect(H, "<tool_call>\n{\"name\": \"a\", \"argu", "T(<tool_call>\n{\"name\": \"a\", \"argu)");
    /* Qwen 3 thinks first. */
    expect(H,
           "<think>\nhmm\n</think>\n\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n"
           "</tool_call>",
           "T(<think>\nhmm\n</think>\n\n)S#0(a)A#0({})E#0()");
    expect(H, "", "");
}

static void test_parser_llama(void **state)
{
    (void)state;
    const bl_chat_tool_style_t L = BL_CHAT_TOOLS_LLAMA3;
    expect(L, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
           "S#0(get_weather)A#0({\"city\":\"Paris\"})E#0()");
    expect(L, "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"s\": \"{}}\"}}",
           "S#0(a)A#0({\"s\":\"{}}\"})E#0()");
    expect(L,
           "\n {\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": "
           "{\"n\": 2}}\n",
           "S#0(a)A#0({})E#0()S#1(b)A#1({\"n\":2})E#1()");
    /* A text answer, even one with JSON later on, is text. */
    expect(L, "Sure: {\"name\": \"a\"}", "T(Sure: {\"name\": \"a\"})");
    expect(L, "  Hi", "T(  Hi)");
    /* Leading JSON that is not a call, or never closes: text, whitespace kept. */
    expect(L, " {\"answer\": 42} and more", "T( {\"answer\": 42} and more)");
    expect(L, "{\"name\": \"a\", \"parameters\": {", "T({\"name\": \"a\", \"parameters\": {)");
    /* A call, then text. */
    expect(L, "{\"name\": \"a\", \"parameters\": {}}\nThat is all.",
           "S#0(a)A#0({})E#0()T(That is all.)");
    expect(L, "<|python_ta", "T(<|python_ta)");
}

static void test_parser_hostile(void **state)
{
    (void)state;
    /* Random bytes drawn from marker pieces: no crash, and whatever is not
     * reported as a call comes out as text in order, the same in any split. */
    static const char *const bits[] = {"<tool_call>",
                                       "</tool_call>",
                                       "{",
                                       "}",
                                       "\"",
                                       "\\",
                                       "name",
                                       ":",
                                       ",",
                                       "[",
                                       "]",
                                       "<",
                                       "x",
                                       "\n",
                                       "<|python_tag|>",
                                       "\"name\": \"f\"",
                                       "\"arguments\": {}",
                                       ";",
                                       "\xff",
                                       " "};
    uint32_t seed = 12345;
    for (int round = 0; round < 400; round++) {
        sb_t in = {0};
        int parts = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 40;
        for (int i = 0; i < parts; i++) {
            seed = seed * 1103515245u + 12345u;
            put(&in, bits[(seed >> 16) % N(bits)]);
        }
        for (int style = 0; style < 2; style++) {
            char *whole = parse(style, in.p, in.n, 0);
            for (size_t step = 1; step < 6; step += 2) {
                char *split = parse(style, in.p, in.n, step);
                if (strcmp(whole, split))
                    fail_msg("style %d input [%s]: whole %s, split by %zu %s", style, in.p, whole,
                             step, split);
                free(split);
            }
            /* Without any call marker and not starting with JSON, all is text. */
            if (!strstr(in.p, "<tool_call>") && style == BL_CHAT_TOOLS_HERMES) {
                char want[4096];
                snprintf(want, sizeof want, "T(%s)", in.p);
                assert_string_equal(whole, want);
            }
            free(whole);
        }
        free(in.p);
    }
    /* A callback that stops: feed returns its value. */
    bl_chat_tool_parser_t *p;
    assert_int_equal(bl_chat_tool_parser_new(BL_CHAT_TOOLS_HERMES, &p), 0);
    rec_t r = {.stop_after = 1};
    const char *two =
        "<tool_call>{\"name\":\"a\"}</tool_call><tool_call>{\"name\":\"b\"}</tool_call>";
    assert_int_equal(bl_chat_tool_parser_feed(p, two, strlen(two), on_event, &r), 1);
    bl_chat_tool_parser_free(p);
    free(r.log.p);
    assert_int_equal(bl_chat_tool_parser_new((bl_chat_tool_style_t)7, &p), BL_EINVAL);
    /* A huge unterminated call is given up as text, not held forever. */
    assert_int_equal(bl_chat_tool_parser_new(BL_CHAT_TOOLS_HERMES, &p), 0);
    rec_t big = {0};
    assert_int_equal(bl_chat_tool_parser_feed(p, "<tool_call>", 11, on_event, &big), 0);
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 300; i++)
        assert_int_equal(bl_chat_tool_parser_feed(p, chunk, sizeof chunk, on_event, &big), 0);
    assert_true(big.log.n > (1u << 20)); /* given back before the end */
    assert_int_equal(bl_chat_tool_parser_finish(p, on_event, &big), 0);
    assert_int_equal(bl_chat_tool_parser_calls(p), 0);
    bl_chat_tool_parser_free(p);
    free(big.log.p);
}

/* ---- against a real Jinja engine ------------------------------------------------ */

static bool have_node(void)
{
    return system("command -v node >/dev/null 2>&1") == 0;
}

/* The conversation as OpenAI-shaped JSON for the template (arguments as
 * objects, the way llama.cpp and vLLM hand them to templates). */
static json_t *jinja_messages(const bl_chat_msg_t *m, const bl_chat_msg_tools_t *x, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o =
            json_pack("{s:s, s:s}", "role", m[i].role, "content", m[i].content ? m[i].content : "");
        if (x && x[i].n_tool_calls) {
            json_t *calls = json_array();
            for (size_t c = 0; c < x[i].n_tool_calls; c++) {
                const bl_chat_tool_call_t *tc = &x[i].tool_calls[c];
                json_t *args = json_loads(tc->arguments ? tc->arguments : "{}", 0, NULL);
                assert_non_null(args);
                json_array_append_new(calls,
                                      json_pack("{s:s, s:s, s:{s:s, s:o}}", "id",
                                                tc->id ? tc->id : "x", "type", "function",
                                                "function", "name", tc->name, "arguments", args));
            }
            json_object_set_new(o, "tool_calls", calls);
        }
        if (x && x[i].tool_call_id)
            json_object_set_new(o, "tool_call_id", json_string(x[i].tool_call_id));
        json_array_append_new(a, o);
    }
    return a;
}

static const char *const FIXTURES[] = {
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "Qwen-Qwen3-0.6B.jinja",
    "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "microsoft-Phi-3.5-mini-instruct.jinja",
    "google-gemma-2-2b-it.jinja",
    "HuggingFaceTB-SmolLM3-3B.jinja",
};

static void test_against_jinja(void **state)
{
    (void)state;
    if (!have_node()) {
        print_message("node is not installed: skipping the comparison with a Jinja engine\n");
        skip();
    }
    const char *src = getenv("BALLAST_SRC"), *shared = getenv("BALLAST_SHARED");
    if (!src || !shared)
        fail_msg("BALLAST_SRC and BALLAST_SHARED must be set (ctest sets them)");
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/tests/node-llama", src);
    snprintf(path, sizeof path, "%s/node_modules/@huggingface/jinja/package.json", dir);
    if (access(path, R_OK) != 0)
        fail_msg("%s/node_modules is missing: run `npm ci` in %s", dir, dir);

    /* Families with tools in their template get the conversation itself;
     * the others get what the Hermes fallback made of it, so the check is
     * that the family renders those messages as its template does. */
    char *tmpl[N(FIXTURES)];
    bl_chat_family_t fam[N(FIXTURES)];
    json_t *cases = json_array();
    for (size_t t = 0; t < N(FIXTURES); t++) {
        snprintf(path, sizeof path, "%s/models/templates/%s", shared, FIXTURES[t]);
        tmpl[t] = slurp(path, NULL);
        bool known;
        fam[t] = bl_chat_detect_family(tmpl[t], &known);
        assert_true(known);
        for (size_t c = 0; c < N(CONVS); c++) {
            const conv_t *cv = &CONVS[c];
            json_t *msgs, *tools = NULL;
            if (bl_chat_family_has_tools(fam[t])) {
                msgs = jinja_messages(cv->m, cv->x, cv->n);
                if (cv->tools)
                    tools = json_loads(cv->tools, 0, NULL);
            } else {
                span_t *items = NULL;
                size_t n_items = 0, n, ns;
                bl_chat_msg_t *m;
                char **strings;
                if (cv->tools)
                    assert_int_equal(
                        bl_chat_json_items(cv->tools, strlen(cv->tools), &items, &n_items), 0);
                bool any = n_items > 0;
                for (size_t i = 0; i < cv->n; i++)
                    any |= cv->x[i].n_tool_calls > 0;
                if (any) {
                    assert_int_equal(bl_chat_hermes_fallback(cv->m, cv->x, cv->n, items, n_items,
                                                             &m, &n, &strings, &ns),
                                     0);
                    msgs = jinja_messages(m, NULL, n);
                    for (size_t i = 0; i < ns; i++)
                        free(strings[i]);
                    free(strings);
                    free(m);
                } else {
                    msgs = jinja_messages(cv->m, cv->x, cv->n);
                }
                free(items);
            }
            char id[64];
            snprintf(id, sizeof id, "%zu/%zu", t, c);
            json_t *cs = json_pack("{s:s, s:s, s:o, s:b, s:s, s:s, s:b}", "id", id, "template",
                                   tmpl[t], "messages", msgs, "add_generation_prompt", cv->gen,
                                   "bos", "<s>", "eos", "</s>", "strip_bos", 1);
            if (tools)
                json_object_set_new(cs, "tools", tools);
            json_array_append_new(cases, cs);
        }
    }
    char in_path[] = "/tmp/bl-chat-tools-XXXXXX";
    int fd = mkstemp(in_path);
    assert_true(fd >= 0);
    assert_int_equal(json_dumpfd(cases, fd, 0), 0);
    close(fd);
    json_decref(cases);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cd '%s' && node chat_oracle.mjs < '%s'", dir, in_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t jerr;
    json_t *res = json_loadf(p, 0, &jerr);
    int st = pclose(p);
    unlink(in_path);
    if (!res || st != 0)
        fail_msg("chat_oracle.mjs failed (status %d): %s", st, res ? "" : jerr.text);
    assert_int_equal(json_array_size(res), N(FIXTURES) * N(CONVS));

    int failures = 0, compared = 0;
    for (size_t t = 0; t < N(FIXTURES); t++) {
        for (size_t c = 0; c < N(CONVS); c++) {
            const conv_t *cv = &CONVS[c];
            json_t *r = json_array_get(res, t * N(CONVS) + c);
            const char *want = json_string_value(json_object_get(r, "text"));
            if (!want) {
                /* Where the template refuses (Gemma: a system message;
                 * Llama 3.2: several calls in one turn) there is nothing to
                 * compare; we render anyway (see the unit tests above). */
                const char *e = json_string_value(json_object_get(r, "error"));
                if ((fam[t] == BL_CHAT_GEMMA && e && strstr(e, "System role")) ||
                    (fam[t] == BL_CHAT_LLAMA32 && e && strstr(e, "single tool-calls")))
                    continue;
                fail_msg("%s / %s: the Jinja engine failed: %s", FIXTURES[t], cv->name,
                         e ? e : "?");
            }
            bl_chat_opts_t o = {"<s>", "</s>", true, NULL};
            char *got = NULL;
            assert_int_equal(bl_chat_render_family_x(fam[t], &o, cv->m, cv->x, cv->n, cv->tools,
                                                     cv->gen, &got, NULL),
                             0);
            compared++;
            if (strcmp(got, want)) {
                size_t at = 0;
                while (want[at] && want[at] == got[at])
                    at++;
                size_t from = at > 80 ? at - 80 : 0;
                print_error("%s (%s) / %s differs at byte %zu\n jinja: [%s]\n ours:  [%s]\n",
                            FIXTURES[t], bl_chat_family_name(fam[t]), cv->name, at, want + from,
                            got + from);
                failures++;
            }
            free(got);
        }
    }
    json_decref(res);
    for (size_t t = 0; t < N(FIXTURES); t++)
        free(tmpl[t]);
    print_message("compared %d tool renderings with the Jinja engine\n", compared);
    assert_true(compared >= 40);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen25),
        cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_llama32),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_no_tools_unchanged),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_parser_hermes),
        cmocka_unit_test(test_parser_llama),
        cmocka_unit_test(test_parser_hostile),
        cmocka_unit_test(test_against_jinja),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
