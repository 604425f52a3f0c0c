/*
 * The Anthropic Messages family of xlate, answers: streams and whole
 * messages read into events, events written as a stream, a whole message,
 * a resumed stream and an in-stream error. Fixtures follow the event
 * sequences of Anthropic's streaming reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "xlate/xlate.h"

/* ---- helpers -------------------------------------------------------------------- */

static const char *sget(json_t *o, const char *path)
{
    /* "a.b.0.c": objects by key, arrays by index */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = o;
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = json_is_array(v) ? json_array_get(v, strtoul(tok, NULL, 10)) : json_object_get(v, tok);
    return json_string_value(v);
}

static json_t *jget(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = o;
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = json_is_array(v) ? json_array_get(v, strtoul(tok, NULL, 10)) : json_object_get(v, tok);
    return v;
}

/* Events recorded from a reader, as owned copies. */
typedef struct {
    bl_xev_kind_t kind;
    char *id, *name, *model, *text, *stop;
    int index;
    int64_t in, out, cached;
    bl_xfinish_t finish;
    bl_xerr_kind_t err_kind;
} rec_t;

typedef struct {
    rec_t ev[256];
    size_t n;
} recs_t;

static char *dupn(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int record(void *ud, const bl_xev_t *ev)
{
    recs_t *r = ud;
    assert_true(r->n < BL_ARRAY_LEN(r->ev));
    rec_t *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->kind = ev->kind;
    e->id = ev->id ? strdup(ev->id) : NULL;
    e->name = ev->name ? strdup(ev->name) : NULL;
    e->model = ev->model ? strdup(ev->model) : NULL;
    e->text = dupn(ev->text, ev->text_len);
    e->stop = ev->stop_sequence ? strdup(ev->stop_sequence) : NULL;
    e->index = ev->index;
    e->in = ev->input_tokens;
    e->out = ev->output_tokens;
    e->cached = ev->cached_tokens;
    e->finish = ev->finish;
    e->err_kind = ev->err_kind;
    return 0;
}

static void recs_free(recs_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ev[i].id);
        free(r->ev[i].name);
        free(r->ev[i].model);
        free(r->ev[i].text);
        free(r->ev[i].stop);
    }
    r->n = 0;
}

/* Feed SSE text ("event: x\ndata: y\n\n"...) to a reader; returns the first error. */
static int feed_sse(bl_xread_t *r, const char *sse, recs_t *out)
{
    const char *p = sse;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            end = p + strlen(p);
        bl_str_t name = {"", 0}, data = {"", 0};
        for (const char *l = p; l < end;) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            if (!nl)
                nl = end;
            if (!strncmp(l, "event: ", 7))
                name = (bl_str_t){l + 7, (size_t)(nl - l - 7)};
            else if (!strncmp(l, "data: ", 6))
                data = (bl_str_t){l + 6, (size_t)(nl - l - 6)};
            l = nl + 1;
        }
        int rc = bl_xread_event(r, name, data, record, out);
        if (rc)
            return rc;
        p = *end ? end + 2 : end;
    }
    return 0;
}

/* The event names of an SSE text, space separated. */
static void sse_names(const char *sse, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *p = strstr(sse, "event: "); p; p = strstr(p + 1, "\nevent: ")) {
        const char *s = *p == '\n' ? p + 8 : p + 7;
        size_t n = strcspn(s, "\n");
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%.*s", len ? " " : "", (int)n, s);
    }
}

static bl_xev_t ev(bl_xev_kind_t k)
{
    bl_xev_t e;
    memset(&e, 0, sizeof e);
    e.kind = k;
    e.input_tokens = e.output_tokens = e.cached_tokens = -1;
    return e;
}

static void put(bl_xwrite_t *w, bl_xev_t e, bl_buf_t *out)
{
    assert_int_equal(bl_xwrite_event(w, &e, out), 0);
}

static bl_xev_t text_ev(const char *s)
{
    bl_xev_t e = ev(BL_XEV_TEXT);
    e.text = s;
    e.text_len = strlen(s);
    return e;
}

static bl_xev_t tool_ev(int index, const char *id, const char *name)
{
    bl_xev_t e = ev(BL_XEV_TOOL_START);
    e.index = index;
    e.id = id;
    e.name = name;
    return e;
}

static bl_xev_t args_ev(int index, const char *s)
{
    bl_xev_t e = ev(BL_XEV_TOOL_ARGS);
    e.index = index;
    e.text = s;
    e.text_len = strlen(s);
    return e;
}

static bl_xev_t usage_ev(int64_t in, int64_t out, int64_t cached)
{
    bl_xev_t e = ev(BL_XEV_USAGE);
    e.input_tokens = in;
    e.output_tokens = out;
    e.cached_tokens = cached;
    return e;
}

static bl_xev_t finish_ev(bl_xfinish_t f)
{
    bl_xev_t e = ev(BL_XEV_FINISH);
    e.finish = f;
    return e;
}

/* ---- answers: reading ------------------------------------------------------------- */

static const char STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":5,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
    "\"thinking\",\"thinking\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"Let me think\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"signature_delta\",\"signature\":\"EqQB\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\" world\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"Par\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static void reads_a_stream(void **state)
{
    (void)state;
    bl_xread_t *r;
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    recs_t *rec = calloc(1, sizeof *rec);
    assert_int_equal(feed_sse(r, STREAM, rec), 0);
    assert_true(bl_xread_done(r));
    /* START, USAGE(in), TEXT, TEXT, TOOL_START, ARGS, ARGS, USAGE, FINISH */
    assert_int_equal(rec->n, 9);
    assert_int_equal(rec->ev[0].kind, BL_XEV_START);
    assert_string_equal(rec->ev[0].id, "msg_01");
    assert_string_equal(rec->ev[0].model, "claude-sonnet-4-5");
    assert_int_equal(rec->ev[1].kind, BL_XEV_USAGE);
    assert_int_equal(rec->ev[1].in, 30); /* cache reads counted in, as OpenAI does */
    assert_int_equal(rec->ev[1].cached, 5);
    assert_int_equal(rec->ev[1].out, -1);
    assert_string_equal(rec->ev[2].text, "Hello"); /* thinking skipped */
    assert_string_equal(rec->ev[3].text, " world");
    assert_int_equal(rec->ev[4].kind, BL_XEV_TOOL_START);
    assert_int_equal(rec->ev[4].index, 0);
    assert_string_equal(rec->ev[4].id, "toolu_01");
    assert_string_equal(rec->ev[4].name, "get_weather");
    assert_int_equal(rec->ev[5].kind, BL_XEV_TOOL_ARGS);
    assert_string_equal(rec->ev[5].text, "{\"location\": \"Par");
    assert_string_equal(rec->ev[6].text, "is\"}");
    assert_int_equal(rec->ev[7].kind, BL_XEV_USAGE);
    assert_int_equal(rec->ev[7].in, 30);
    assert_int_equal(rec->ev[7].out, 89);
    assert_int_equal(rec->ev[8].kind, BL_XEV_FINISH);
    assert_int_equal(rec->ev[8].finish, BL_XFIN_TOOL_CALLS);
    assert_null(rec->ev[8].stop);
    bl_xstate_t st;
    bl_xread_state(r, &st);
    assert_string_equal(st.id, "msg_01");
    assert_int_equal(st.next_index, 3);
    assert_int_equal(st.open_index, -1);
    assert_int_equal(st.n_tool_calls, 1);
    recs_free(rec);
    free(rec);
    bl_xread_free(r);
}

static void reads_a_whole_message(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Sure.\"},{\"type\":\"tool_use\",\"id\":"
        "\"toolu_9\",\"name\":\"f\",\"input\":{\"x\":[1,2]}}],\"stop_reason\":\"stop_sequence\","
        "\"stop_sequence\":\"END\",\"usage\":{\"input_tokens\":10,\"output_tokens\":3}}";
    bl_xread_t *r;
    recs_t *rec = calloc(1, sizeof *rec);
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(bl_xread_body(r, body, strlen(body), record, rec), 0);
    assert_int_equal(rec->n, 6);
    assert_string_equal(rec->ev[1].text, "Sure.");
    assert_string_equal(rec->ev[2].id, "toolu_9");
    assert_string_equal(rec->ev[3].text, "{\"x\":[1,2]}");
    assert_int_equal(rec->ev[4].in, 10);
    assert_int_equal(rec->ev[4].out, 3);
    assert_int_equal(rec->ev[5].finish, BL_XFIN_STOP_SEQUENCE);
    assert_string_equal(rec->ev[5].stop, "END");
    assert_true(bl_xread_done(r));
    recs_free(rec);
    bl_xread_free(r);
    /* an error body */
    const char *eb = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                     "\"Overloaded\"}}";
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(bl_xread_body(r, eb, strlen(eb), record, rec), 0);
    assert_int_equal(rec->n, 1);
    assert_int_equal(rec->ev[0].kind, BL_XEV_ERROR);
    assert_int_equal(rec->ev[0].err_kind, BL_XERR_OVERLOADED);
    assert_string_equal(rec->ev[0].text, "Overloaded");
    recs_free(rec);
    bl_xread_free(r);
    /* not a message */
    const char *bad[] = {"", "{\"type\":\"message\",\"content\":[]}", "[]",
                         "{\"id\":\"a\",\"type\":\"message\",\"content\":[{\"type\":\"text\"}]}",
                         "{\"id\":\"a\",\"type\":\"message\",\"content\":[7]}"};
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
        assert_int_equal(bl_xread_body(r, bad[i], strlen(bad[i]), record, rec), BL_EFORMAT);
        recs_free(rec);
        bl_xread_free(r);
    }
    free(rec);
}

static void refuses_broken_streams(void **state)
{
    (void)state;
    const char *bad[] = {
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n", /* before message_start */
        "event: message_start\ndata: this is not json\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":4,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n", /* no block 4 open */
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":-3,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":7}\n\n",
        "event: message_start\ndata: [1]\n\n",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        bl_xread_t *r;
        recs_t rec = {.n = 0};
        assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
        assert_int_equal(feed_sse(r, bad[i], &rec), BL_EFORMAT);
        assert_false(bl_xread_done(r));
        recs_free(&rec);
        bl_xread_free(r);
    }
    /* an error event mid-stream */
    bl_xread_t *r;
    recs_t rec = {.n = 0};
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(feed_sse(r,
                              "event: message_start\ndata: {\"type\":\"message_start\","
                              "\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n"
                              "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                              "\"rate_limit_error\",\"message\":\"slow down\"}}\n\n",
                              &rec),
                     0);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.ev[1].kind, BL_XEV_ERROR);
    assert_int_equal(rec.ev[1].err_kind, BL_XERR_RATE_LIMIT);
    assert_false(bl_xread_done(r));
    recs_free(&rec);
    bl_xread_free(r);
}

/* Every event of a good stream cut short, and bytes flipped: never a crash, and
 * only 0 or BL_EFORMAT. */
static void survives_hostile_streams(void **state)
{
    (void)state;
    size_t n = strlen(STREAM);
    recs_t *rec = calloc(1, sizeof *rec);
    for (size_t cut = 0; cut < n; cut += 7) {
        char *s = strndup(STREAM, cut);
        bl_xread_t *r;
        assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
        int rc = feed_sse(r, s, rec);
        assert_true(rc == 0 || rc == BL_EFORMAT);
        recs_free(rec);
        bl_xread_free(r);
        /* the same bytes with one flipped */
        if (cut) {
            s[cut / 2] ^= 0x5a;
            assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
            rc = feed_sse(r, s, rec);
            assert_true(rc == 0 || rc == BL_EFORMAT);
            recs_free(rec);
            bl_xread_free(r);
        }
        free(s);
        /* and as a whole body */
        assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
        rc = bl_xread_body(r, STREAM + cut, n - cut, record, rec);
        assert_true(rc == 0 || rc == BL_EFORMAT);
        recs_free(rec);
        bl_xread_free(r);
    }
    free(rec);
}

/* ---- answers: writing ------------------------------------------------------------- */

static void writes_a_stream(void **state)
{
    (void)state;
    bl_xwrite_opts_t o = {.stream = true, .model = "claude-x", .id = "msg_test"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    bl_xev_t s = ev(BL_XEV_START);
    s.id = "chatcmpl-1";
    s.model = "gpt";
    put(w, s, &out);
    assert_int_equal(out.len, 0); /* held until the input tokens or content */
    put(w, text_ev("Hi "), &out);
    put(w, text_ev("there"), &out);
    put(w, tool_ev(0, "call_a", "f"), &out);
    put(w, args_ev(0, "{\"q\":"), &out);
    put(w, args_ev(0, "\"x\"}"), &out);
    put(w, tool_ev(1, "call_b", "g"), &out);
    put(w, args_ev(1, "{}"), &out);
    put(w, finish_ev(BL_XFIN_TOOL_CALLS), &out);
    char names[512];
    sse_names(out.data, names, sizeof names);
    /* the usage has not come yet: message_delta waits */
    assert_string_equal(names, "message_start ping content_block_start content_block_delta "
                               "content_block_delta content_block_stop content_block_start "
                               "content_block_delta content_block_delta content_block_stop "
                               "content_block_start content_block_delta content_block_stop");
    put(w, usage_ev(100, 12, 40), &out);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    sse_names(out.data, names, sizeof names);
    assert_non_null(strstr(names, "content_block_stop message_delta message_stop"));
    assert_non_null(strstr(out.data, "\"id\":\"msg_test\""));
    assert_non_null(strstr(out.data, "\"model\":\"claude-x\""));
    assert_non_null(strstr(out.data, "\"partial_json\":\"{\\\"q\\\":\""));
    /* read it back with the family's own reader */
    bl_xread_t *r;
    recs_t *rec = calloc(1, sizeof *rec);
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(feed_sse(r, out.data, rec), 0);
    assert_true(bl_xread_done(r));
    size_t k = 0;
    assert_int_equal(rec->ev[k].kind, BL_XEV_START);
    assert_string_equal(rec->ev[k++].id, "msg_test");
    assert_int_equal(rec->ev[k++].kind, BL_XEV_USAGE);
    assert_string_equal(rec->ev[k++].text, "Hi ");
    assert_string_equal(rec->ev[k++].text, "there");
    assert_string_equal(rec->ev[k++].id, "call_a");
    assert_string_equal(rec->ev[k++].text, "{\"q\":");
    assert_string_equal(rec->ev[k++].text, "\"x\"}");
    assert_int_equal(rec->ev[k].index, 1);
    assert_string_equal(rec->ev[k++].name, "g");
    assert_string_equal(rec->ev[k++].text, "{}");
    assert_int_equal(rec->ev[k].kind, BL_XEV_USAGE);
    assert_int_equal(rec->ev[k].in, 100); /* 60 + 40 cached, as it was given */
    assert_int_equal(rec->ev[k].cached, 40);
    assert_int_equal(rec->ev[k++].out, 12);
    assert_int_equal(rec->ev[k].kind, BL_XEV_FINISH);
    assert_int_equal(rec->ev[k++].finish, BL_XFIN_TOOL_CALLS);
    assert_int_equal(rec->n, k);
    recs_free(rec);
    free(rec);
    bl_xread_free(r);
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

static void holds_message_start_for_input_tokens(void **state)
{
    (void)state;
    bl_xwrite_opts_t o = {.stream = true, .model = "c"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    put(w, ev(BL_XEV_START), &out);
    put(w, usage_ev(33, -1, -1), &out);
    char names[256];
    sse_names(out.data, names, sizeof names);
    assert_string_equal(names, "message_start ping");
    json_t *j = json_loads(strstr(out.data, "data: ") + 6, JSON_DISABLE_EOF_CHECK, NULL);
    assert_int_equal(json_integer_value(jget(j, "message.usage.input_tokens")), 33);
    assert_string_equal(sget(j, "message.type"), "message");
    assert_true(json_is_null(jget(j, "message.stop_reason")));
    assert_int_equal(strncmp(sget(j, "message.id"), "msg_", 4), 0);
    json_decref(j);
    /* a stop sequence; usage before FINISH writes the end at once */
    put(w, text_ev("a"), &out);
    put(w, usage_ev(-1, 2, -1), &out);
    bl_xev_t f = finish_ev(BL_XFIN_STOP_SEQUENCE);
    f.stop_sequence = "END";
    bl_xwrite_note_failover(w, "openai/gpt", "local/qwen");
    put(w, f, &out);
    assert_non_null(strstr(out.data, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":"
                                     "\"END\"},\"usage\":{\"output_tokens\":2}"));
    assert_non_null(strstr(out.data, "event: message_stop\ndata: {\"type\":\"message_stop\","
                                     "\"x_ballast\":{\"midstream_failover\":true,\"from\":"
                                     "\"openai/gpt\",\"to\":\"local/qwen\"}}"));
    size_t len = out.len;
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    assert_int_equal(out.len, len); /* nothing more */
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

static void writes_a_whole_message(void **state)
{
    (void)state;
    bl_xwrite_opts_t o = {.stream = false, .model = "claude-x"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    put(w, ev(BL_XEV_START), &out);
    put(w, text_ev("Hel"), &out);
    put(w, text_ev("lo"), &out);
    put(w, tool_ev(0, "call_1", "f"), &out);
    put(w, args_ev(0, "{\"a\""), &out);
    put(w, args_ev(0, ":[1]}"), &out);
    put(w, tool_ev(1, "call_2", "g"), &out);
    put(w, args_ev(1, "{broken"), &out);
    put(w, finish_ev(BL_XFIN_TOOL_CALLS), &out);
    put(w, usage_ev(7, 5, -1), &out);
    assert_int_equal(out.len, 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    json_t *j = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(sget(j, "type"), "message");
    assert_string_equal(sget(j, "role"), "assistant");
    assert_string_equal(sget(j, "model"), "claude-x");
    assert_string_equal(sget(j, "content.0.text"), "Hello");
    assert_string_equal(sget(j, "content.1.id"), "call_1");
    assert_int_equal(json_integer_value(jget(j, "content.1.input.a.0")), 1);
    assert_int_equal(json_object_size(jget(j, "content.2.input")), 0);
    assert_string_equal(sget(j, "stop_reason"), "tool_use");
    assert_true(json_is_null(json_object_get(j, "stop_sequence")));
    assert_int_equal(json_integer_value(jget(j, "usage.input_tokens")), 7);
    assert_int_equal(json_integer_value(jget(j, "usage.output_tokens")), 5);
    json_decref(j);
    bl_xwrite_free(w);
    /* no FINISH: no body */
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    put(w, text_ev("x"), &out);
    assert_int_equal(bl_xwrite_end(w, &out), BL_ESTATE);
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

static void resumes_a_cut_stream(void **state)
{
    (void)state;
    /* the client saw message_start and half a text block */
    const char *seen =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_A\","
        "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\","
        "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"The answer\"}}\n\n";
    bl_xread_t *r;
    recs_t rec = {.n = 0};
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(feed_sse(r, seen, &rec), 0);
    assert_false(bl_xread_done(r));
    bl_xstate_t st;
    bl_xread_state(r, &st);
    assert_true(st.started);
    assert_int_equal(st.open_index, 0);
    assert_int_equal(st.next_index, 1);
    recs_free(&rec);
    bl_xread_free(r);

    bl_xwrite_opts_t o = {.stream = true};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_resume(BL_FAM_ANTHROPIC, &o, &st, &w), 0);
    bl_xev_t s = ev(BL_XEV_START);
    s.id = "other";
    put(w, s, &out);
    put(w, usage_ev(9, -1, -1), &out);
    put(w, text_ev(" is 42."), &out);
    put(w, tool_ev(0, "t1", "f"), &out);
    put(w, finish_ev(BL_XFIN_TOOL_CALLS), &out);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    char names[512];
    sse_names(out.data, names, sizeof names);
    assert_string_equal(names, "content_block_delta content_block_stop content_block_start "
                               "content_block_stop message_delta message_stop");
    assert_non_null(strstr(out.data, "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
                                     "\" is 42.\"}"));
    assert_non_null(strstr(out.data, "{\"type\":\"content_block_start\",\"index\":1,"));
    /* the whole stream, as the client saw it, reads as one answer */
    bl_buf_t all = {0};
    bl_buf_append_str(&all, seen);
    bl_buf_append(&all, out.data, out.len);
    recs_t *rec2 = calloc(1, sizeof *rec2);
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(feed_sse(r, all.data, rec2), 0);
    assert_true(bl_xread_done(r));
    assert_string_equal(rec2->ev[0].id, "msg_A");
    assert_string_equal(rec2->ev[3].text, " is 42.");
    recs_free(rec2);
    free(rec2);
    bl_xread_free(r);
    bl_buf_free(&all);
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

static void fails_in_stream(void **state)
{
    (void)state;
    bl_xwrite_opts_t o = {.stream = true, .model = "c"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    put(w, text_ev("partial"), &out);
    bl_buf_reset(&out);
    assert_int_equal(bl_xwrite_fail(w, BL_XERR_OVERLOADED, "Overloaded", &out), 0);
    assert_string_equal(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                                  "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    size_t len = out.len;
    put(w, text_ev("more"), &out);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    assert_int_equal(out.len, len); /* the stream is over */
    bl_xwrite_free(w);
    /* an ERROR event from a reader does the same */
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    bl_buf_reset(&out);
    bl_xev_t e = ev(BL_XEV_ERROR);
    e.err_kind = BL_XERR_RATE_LIMIT;
    e.text = "slow";
    e.text_len = 4;
    put(w, e, &out);
    assert_non_null(strstr(out.data, "\"rate_limit_error\""));
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

static const char CHAT_STREAM[] =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
    "\"{\\\"a\\\"\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
    "\"tool_calls\"}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,"
    "\"completion_tokens\":7,\"total_tokens\":27}}\n\n"
    "data: [DONE]\n\n";

typedef struct {
    bl_xwrite_t *w;
    bl_buf_t *out;
} pipe_t;

static int to_writer(void *ud, const bl_xev_t *e)
{
    pipe_t *p = ud;
    return bl_xwrite_event(p->w, e, p->out);
}

static void answers_a_chat_stream_as_anthropic(void **state)
{
    (void)state;
    bl_xread_t *r;
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    bl_xwrite_opts_t o = {.stream = true, .model = "claude-sonnet"};
    assert_int_equal(bl_xread_new(BL_FAM_CHAT, &r), 0);
    assert_int_equal(bl_xwrite_new(BL_FAM_ANTHROPIC, &o, &w), 0);
    pipe_t p = {w, &out};
    const char *s = CHAT_STREAM;
    while (*s) {
        const char *end = strstr(s, "\n\n");
        assert_non_null(end);
        bl_str_t data = {s + 6, (size_t)(end - s - 6)};
        assert_int_equal(bl_xread_event(r, (bl_str_t){"", 0}, data, to_writer, &p), 0);
        s = end + 2;
    }
    assert_int_equal(bl_xread_eof(r, to_writer, &p), 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    bl_xread_free(r);
    /* the Anthropic stream reads back as the same answer */
    recs_t *rec = calloc(1, sizeof *rec);
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(feed_sse(r, out.data, rec), 0);
    assert_true(bl_xread_done(r));
    char text[64] = "", args[64] = "";
    int64_t in = -1, outn = -1;
    bl_xfinish_t fin = BL_XFIN_STOP;
    for (size_t i = 0; i < rec->n; i++) {
        rec_t *e = &rec->ev[i];
        if (e->kind == BL_XEV_TEXT)
            strncat(text, e->text, sizeof text - strlen(text) - 1);
        if (e->kind == BL_XEV_TOOL_ARGS)
            strncat(args, e->text, sizeof args - strlen(args) - 1);
        if (e->kind == BL_XEV_USAGE && e->in >= 0)
            in = e->in;
        if (e->kind == BL_XEV_USAGE && e->out >= 0)
            outn = e->out;
        if (e->kind == BL_XEV_FINISH)
            fin = e->finish;
    }
    assert_string_equal(text, "Hi");
    assert_string_equal(args, "{\"a\":1}");
    assert_int_equal(in, 20);
    assert_int_equal(outn, 7);
    assert_int_equal(fin, BL_XFIN_TOOL_CALLS);
    assert_string_equal(rec->ev[0].model, "claude-sonnet");
    recs_free(rec);
    free(rec);
    bl_xread_free(r);
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

/* An Anthropic stream answered to a chat client, whole. */
static void answers_a_chat_client_from_an_anthropic_stream(void **state)
{
    (void)state;
    bl_xread_t *r;
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    bl_xwrite_opts_t o = {.stream = false, .model = "gpt-4o"};
    assert_int_equal(bl_xread_new(BL_FAM_ANTHROPIC, &r), 0);
    assert_int_equal(bl_xwrite_new(BL_FAM_CHAT, &o, &w), 0);
    pipe_t p = {w, &out};
    const char *s = STREAM;
    while (*s) {
        const char *end = strstr(s, "\n\n");
        const char *d = strstr(s, "data: ") + 6;
        bl_str_t data = {d, (size_t)(end - d)};
        assert_int_equal(bl_xread_event(r, (bl_str_t){"", 0}, data, to_writer, &p), 0);
        s = end + 2;
    }
    assert_int_equal(bl_xread_eof(r, to_writer, &p), 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    json_t *j = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(sget(j, "choices.0.message.content"), "Hello world");
    assert_string_equal(sget(j, "choices.0.message.tool_calls.0.function.arguments"),
                        "{\"location\": \"Paris\"}");
    assert_string_equal(sget(j, "choices.0.finish_reason"), "tool_calls");
    assert_int_equal(json_integer_value(jget(j, "usage.prompt_tokens")), 30);
    assert_int_equal(json_integer_value(jget(j, "usage.completion_tokens")), 89);
    json_decref(j);
    bl_xread_free(r);
    bl_xwrite_free(w);
    bl_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_a_stream),
        cmocka_unit_test(reads_a_whole_message),
        cmocka_unit_test(refuses_broken_streams),
        cmocka_unit_test(survives_hostile_streams),
        cmocka_unit_test(writes_a_stream),
        cmocka_unit_test(holds_message_start_for_input_tokens),
        cmocka_unit_test(writes_a_whole_message),
        cmocka_unit_test(resumes_a_cut_stream),
        cmocka_unit_test(fails_in_stream),
        cmocka_unit_test(answers_a_chat_stream_as_anthropic),
        cmocka_unit_test(answers_a_chat_client_from_an_anthropic_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
