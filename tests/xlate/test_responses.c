/*
 * The OpenAI Responses family of xlate: request parsing and writing, the
 * stream / body reader, the writer (streamed and whole), resume after a cut
 * stream, and hostile input. Fixtures follow the API reference and what
 * Codex CLI sends (instructions, developer message, reasoning items with
 * encrypted content, function_call / function_call_output history).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xlate/xlate_int.h" /* the writer's state (struct bl_xwrite) */

/* ---- helpers ----------------------------------------------------------------- */

static const char *codex_req =
    "{\"model\":\"gpt-5-codex\","
    "\"instructions\":\"You are Codex, a coding agent.\","
    "\"input\":["
    "{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\","
    "\"text\":\"<permissions>workspace-write</permissions>\"}]},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\","
    "\"text\":\"<environment_context>cwd=/repo</environment_context>\"},"
    "{\"type\":\"input_text\",\"text\":\"list the files and show README\"}]},"
    "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\","
    "\"text\":\"Plan\"}],\"content\":null,\"encrypted_content\":\"gAAAAB-opaque\"},"
    "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
    "\"text\":\"Looking at the repo.\"}]},"
    "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":"
    "\"{\\\"cmd\\\":\\\"ls\\\"}\",\"call_id\":\"call_A\"},"
    "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":"
    "\"{\\\"cmd\\\":\\\"cat README.md\\\"}\",\"call_id\":\"call_B\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_A\",\"output\":\"README.md\\nsrc\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_B\",\"output\":[{\"type\":"
    "\"input_text\",\"text\":\"# Demo\"}]},"
    "{\"role\":\"user\",\"content\":\"thanks, now summarize\"}"
    "],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"exec_command\",\"description\":\"Runs a "
    "command\",\"strict\":false,\"parameters\":{\"type\":\"object\",\"properties\":{\"cmd\":"
    "{\"type\":\"string\"},\"workdir\":{\"type\":\"string\"}},\"required\":[\"cmd\"],"
    "\"additionalProperties\":false}}],"
    "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,"
    "\"reasoning\":{\"effort\":\"medium\",\"summary\":\"auto\"},\"store\":false,\"stream\":true,"
    "\"include\":[\"reasoning.encrypted_content\"],\"prompt_cache_key\":\"abc\","
    "\"text\":{\"verbosity\":\"medium\"}}";

static bl_xreq_t *parse_ok(const char *body)
{
    bl_xreq_t *q = NULL;
    bl_xerr_t err;
    int rc = bl_xreq_parse(BL_FAM_RESPONSES, body, strlen(body), &q, &err);
    if (rc)
        fprintf(stderr, "parse failed: %s (%s)\n", err.message, err.param);
    assert_int_equal(rc, 0);
    assert_non_null(q);
    return q;
}

static void parse_bad(const char *body, const char *param, const char *needle)
{
    bl_xreq_t *q = (bl_xreq_t *)1;
    bl_xerr_t err;
    int rc = bl_xreq_parse(BL_FAM_RESPONSES, body, strlen(body), &q, &err);
    if (rc != BL_EINVAL)
        fprintf(stderr, "expected 400 for %s\n", body);
    assert_int_equal(rc, BL_EINVAL);
    assert_null(q);
    assert_int_equal(err.status, 400);
    if (param)
        assert_string_equal(err.param, param);
    if (needle && !strstr(err.message, needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", err.message, needle);
        fail();
    }
}

static bool part_text_is(const bl_xpart_t *p, const char *s)
{
    return p->text && p->text_len == strlen(s) && !memcmp(p->text, s, p->text_len);
}

/* Collected events (strings copied). */
typedef struct {
    bl_xev_kind_t kind;
    char *id, *name, *text;
    int index;
    int64_t in, out, cached;
    bl_xfinish_t finish;
    bl_xerr_kind_t err_kind;
    json_t *raw;
} cev_t;

typedef struct {
    cev_t ev[256];
    size_t n;
} evlog_t;

static char *dupn(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static int collect(void *ud, const bl_xev_t *e)
{
    evlog_t *l = ud;
    assert_true(l->n < 256);
    cev_t *c = &l->ev[l->n++];
    memset(c, 0, sizeof *c);
    c->kind = e->kind;
    c->id = e->id ? strdup(e->id) : NULL;
    c->name = e->name ? strdup(e->name) : NULL;
    c->text = e->text ? dupn(e->text, e->text_len) : NULL;
    c->index = e->index;
    c->in = e->input_tokens;
    c->out = e->output_tokens;
    c->cached = e->cached_tokens;
    c->finish = e->finish;
    c->err_kind = e->err_kind;
    c->raw = e->raw ? json_deep_copy(e->raw) : NULL;
    return 0;
}

static void evlog_free(evlog_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->ev[i].id);
        free(l->ev[i].name);
        free(l->ev[i].text);
        json_decref(l->ev[i].raw);
    }
    l->n = 0;
}

/* The text of all TEXT events. */
static void evlog_text(const evlog_t *l, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->ev[i].kind == BL_XEV_TEXT)
            strncat(out, l->ev[i].text, cap - strlen(out) - 1);
}

static int feed(bl_xread_t *r, const char *data, evlog_t *l)
{
    return bl_xread_event(r, (bl_str_t){"", 0}, (bl_str_t){data, strlen(data)}, collect, l);
}

/* Split SSE bytes into events: names and parsed data. */
typedef struct {
    char name[64];
    json_t *data;
} sse_t;

static size_t split_sse(const char *s, sse_t *out, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        const char *end = strstr(s, "\n\n");
        assert_non_null(end);
        out[n].name[0] = 0;
        out[n].data = NULL;
        const char *line = s;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            if (!nl)
                nl = end;
            if (!strncmp(line, "event: ", 7))
                snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)(nl - line - 7), line + 7);
            else if (!strncmp(line, "data: ", 6))
                out[n].data = json_loadb(line + 6, (size_t)(nl - line - 6), 0, NULL);
            line = nl + 1;
        }
        if (!out[n].data)
            fprintf(stderr, "bad sse: %.300s\n", s);
        assert_non_null(out[n].data);
        n++;
        s = end + 2;
    }
    return n;
}

static void sse_free(sse_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(e[i].data);
}

static const char *jstr(json_t *o, const char *path)
{
    /* "a.b.c" lookup with numeric indices for arrays */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = o;
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok)) : json_object_get(v, tok);
    return json_string_value(v);
}

static json_t *jget(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = o;
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok)) : json_object_get(v, tok);
    return v;
}

static json_t *write_resp(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o)
{
    bl_buf_t out = {0};
    bl_xerr_t err;
    assert_int_equal(bl_xreq_write(q, BL_FAM_RESPONSES, o, &out, &err), 0);
    json_t *j = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(j);
    bl_buf_free(&out);
    return j;
}

/* ---- request parsing --------------------------------------------------------- */

static void parses_codex_request(void **state)
{
    bl_xreq_t *q = parse_ok(codex_req);
    assert_string_equal(q->model, "gpt-5-codex");
    assert_int_equal(q->n_msgs, 6);
    assert_int_equal(q->msgs[0].role, BL_ROLE_SYSTEM);
    assert_true(part_text_is(&q->msgs[0].parts[0], "You are Codex, a coding agent."));
    assert_int_equal(q->msgs[1].role, BL_ROLE_DEVELOPER);
    assert_int_equal(q->msgs[2].role, BL_ROLE_USER);
    assert_int_equal(q->msgs[2].n_parts, 2);
    assert_true(part_text_is(&q->msgs[2].parts[1], "list the files and show README"));
    /* reasoning, text and both calls form ONE assistant turn (parallel calls) */
    const bl_xmsg_t *a = &q->msgs[3];
    assert_int_equal(a->role, BL_ROLE_ASSISTANT);
    assert_int_equal(a->n_parts, 4);
    assert_int_equal(a->parts[0].kind, BL_PART_OPAQUE);
    assert_int_equal(a->parts[0].family, BL_FAM_RESPONSES);
    assert_string_equal(jstr(a->parts[0].raw, "encrypted_content"), "gAAAAB-opaque");
    assert_int_equal(a->parts[1].kind, BL_PART_TEXT);
    assert_int_equal(a->parts[2].kind, BL_PART_TOOL_CALL);
    assert_string_equal(a->parts[2].id, "call_A");
    assert_string_equal(a->parts[2].name, "exec_command");
    assert_true(part_text_is(&a->parts[2], "{\"cmd\":\"ls\"}"));
    assert_string_equal(a->parts[3].id, "call_B");
    const bl_xmsg_t *t = &q->msgs[4];
    assert_int_equal(t->role, BL_ROLE_TOOL);
    assert_int_equal(t->n_parts, 2);
    assert_int_equal(t->parts[0].kind, BL_PART_TOOL_RESULT);
    assert_string_equal(t->parts[0].id, "call_A");
    assert_true(part_text_is(&t->parts[0], "README.md\nsrc"));
    assert_true(part_text_is(&t->parts[1], "# Demo"));
    assert_null(t->parts[1].raw); /* text only: no raw list kept */
    assert_int_equal(q->msgs[5].role, BL_ROLE_USER);
    assert_true(part_text_is(&q->msgs[5].parts[0], "thanks, now summarize"));

    assert_int_equal(q->n_tools, 1);
    assert_string_equal(q->tools[0].name, "exec_command");
    assert_string_equal(q->tools[0].description, "Runs a command");
    assert_int_equal(q->tools[0].strict, 0);
    assert_string_equal(jstr(q->tools[0].parameters, "required.0"), "cmd");
    assert_int_equal(q->tool_choice, BL_TC_AUTO);
    assert_int_equal(q->parallel_tool_calls, 0);
    assert_string_equal(q->reasoning_effort, "medium");
    assert_int_equal(q->store, 0);
    assert_true(q->stream);
    assert_null(q->hosted_tool);
    assert_int_equal(q->format, BL_FMT_TEXT);
    bl_xreq_free(q);
}

static void parses_other_fields(void **state)
{
    bl_xreq_t *q = parse_ok(
        "{\"model\":\"m\",\"input\":\"hi\",\"max_output_tokens\":77,\"temperature\":0.5,"
        "\"top_p\":0.9,\"metadata\":{\"k\":\"v\"},\"previous_response_id\":\"resp_prev\","
        "\"user\":\"u1\",\"safety_identifier\":\"sid\",\"truncation\":\"auto\","
        "\"service_tier\":\"flex\",\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},"
        "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"out\",\"strict\":true,"
        "\"schema\":{\"type\":\"object\"}}},"
        "\"tools\":[{\"type\":\"web_search_preview\"},{\"type\":\"function\",\"name\":\"f\","
        "\"parameters\":null},{\"type\":\"file_search\",\"vector_store_ids\":[]}]}");
    assert_int_equal(q->n_msgs, 1);
    assert_int_equal(q->msgs[0].role, BL_ROLE_USER);
    assert_true(part_text_is(&q->msgs[0].parts[0], "hi"));
    assert_int_equal(q->max_tokens, 77);
    assert_true(q->temperature == 0.5);
    assert_true(q->top_p == 0.9);
    assert_string_equal(jstr(q->metadata, "k"), "v");
    assert_string_equal(q->previous_response_id, "resp_prev");
    assert_string_equal(q->user, "sid");
    assert_int_equal(q->tool_choice, BL_TC_NAMED);
    assert_string_equal(q->tool_choice_name, "f");
    assert_int_equal(q->format, BL_FMT_JSON_SCHEMA);
    assert_string_equal(q->format_name, "out");
    assert_int_equal(q->format_strict, 1);
    assert_string_equal(jstr(q->format_schema, "type"), "object");
    assert_string_equal(q->hosted_tool, "web_search_preview");
    assert_int_equal(q->n_tools, 1);
    assert_null(q->tools[0].parameters);
    assert_false(q->stream);
    /* a Responses target gets the hosted tools it alone can run */
    bl_xwrite_req_opts_t o = {0};
    json_t *j = write_resp(q, &o);
    assert_int_equal(json_array_size(jget(j, "tools")), 3);
    assert_string_equal(jstr(j, "tools.0.type"), "web_search_preview");
    assert_string_equal(jstr(j, "tools.2.type"), "file_search");
    assert_string_equal(jstr(j, "tool_choice.name"), "f");
    json_decref(j);
    bl_xreq_free(q);

    q = parse_ok("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
                 "\"input_image\",\"image_url\":\"data:image/png;base64,AAAA\",\"detail\":"
                 "\"low\"},{\"type\":\"input_text\",\"text\":\"what is it\"}]},"
                 "{\"role\":\"assistant\",\"content\":[{\"type\":\"refusal\",\"refusal\":"
                 "\"no\"}]},{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":["
                 "{\"type\":\"input_text\",\"text\":\"shot\"},{\"type\":\"input_image\","
                 "\"image_url\":\"https://x/y.png\"}]}],"
                 "\"text\":{\"format\":{\"type\":\"json_object\"}},\"tool_choice\":"
                 "{\"type\":\"web_search_preview\"}}");
    assert_int_equal(q->msgs[0].parts[0].kind, BL_PART_IMAGE);
    assert_string_equal(q->msgs[0].parts[0].url, "data:image/png;base64,AAAA");
    assert_string_equal(q->msgs[0].parts[0].detail, "low");
    assert_true(part_text_is(&q->msgs[1].parts[0], "no"));
    assert_int_equal(q->msgs[2].role, BL_ROLE_TOOL);
    assert_true(part_text_is(&q->msgs[2].parts[0], "shot"));
    assert_true(json_is_array(q->msgs[2].parts[0].raw)); /* holds an image: kept */
    assert_int_equal(q->format, BL_FMT_JSON_OBJECT);
    assert_int_equal(q->tool_choice, BL_TC_REQUIRED);
    assert_string_equal(q->hosted_tool, "web_search_preview");
    bl_xreq_free(q);
}

static void refuses_what_it_cannot_do(void **state)
{
    parse_bad("{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}",
              "input[0]", "item reference");
    parse_bad("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
              "\"input_image\",\"file_id\":\"file-1\"}]}]}",
              "input[0].content[0].file_id", "file ids");
    parse_bad("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
              "\"input_file\",\"file_id\":\"file-1\"}]}]}",
              "input[0].content[0].type", "input_file");
    parse_bad("{\"model\":\"m\",\"input\":[{\"type\":\"local_shell_call\",\"call_id\":\"x\"}]}",
              "input[0].type", "local_shell_call");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"custom\"}]}",
              "tools[0].name", "Missing");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"allowed_tools\","
              "\"mode\":\"auto\",\"tools\":[]}}",
              "tool_choice.type", "allowed_tools");
}

static void rejects_bad_shapes(void **state)
{
    parse_bad("", NULL, "parse the JSON");
    parse_bad("[1,2]", NULL, "parse the JSON");
    parse_bad("{\"model\":\"m\",\"input\":\"\xff\xfe\"}", NULL, "parse the JSON");
    parse_bad("{\"input\":\"x\"}", "model", "Missing required parameter: 'model'");
    parse_bad("{\"model\":\"m\"}", "input", "Missing");
    parse_bad("{\"model\":7,\"input\":\"x\"}", "model",
              "Invalid type for 'model': expected a string, but got an integer instead.");
    parse_bad("{\"model\":\"m\",\"input\":{}}", "input", "Invalid type");
    parse_bad("{\"model\":\"m\",\"input\":[7]}", "input[0]", "expected an object");
    parse_bad("{\"model\":\"m\",\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
              "input[0].role", "'robot'");
    parse_bad("{\"model\":\"m\",\"input\":[{\"role\":\"user\"}]}", "input[0].content", "Missing");
    parse_bad("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":5}]}", "input[0].content",
              "Invalid type");
    parse_bad("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
              "\"input_text\"}]}]}",
              "input[0].content[0].text", "Missing");
    parse_bad("{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\","
              "\"name\":\"f\",\"arguments\":{}}]}",
              "input[0].arguments", "expected a string");
    parse_bad("{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":"
              "\"c\",\"output\":3}]}",
              "input[0].output", "Invalid type");
    parse_bad("{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":"
              "\"c\",\"output\":[{\"type\":\"video\"}]}]}",
              "input[0].output[0]", NULL);
    parse_bad("{\"model\":\"m\",\"input\":[{\"type\":9}]}", "input[0].type", "expected a string");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"temperature\":\"hot\"}", "temperature",
              "expected a decimal");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"temperature\":3}", "temperature", NULL);
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens",
              NULL);
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":1.5}", "max_output_tokens",
              "expected an integer");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"stream\":\"yes\"}", "stream", "a boolean");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"tools\":{}}", "tools", "an array");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}",
              "tools[0].name", "Missing");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":"
              "\"f\",\"parameters\":[]}]}",
              "tools[0].parameters", "an object");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"sometimes\"}", "tool_choice",
              NULL);
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}",
              "text.format.type", NULL);
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\","
              "\"name\":\"n\"}}}",
              "text.format.schema", "Missing");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"metadata\":[]}", "metadata", "an object");
    parse_bad("{\"model\":\"m\",\"input\":\"x\",\"reasoning\":{\"effort\":1}}", "reasoning.effort",
              NULL);
}

static void survives_hostile_input(void **state)
{
    /* deep nesting inside an opaque item and in a schema */
    bl_buf_t b = {0};
    bl_buf_append_str(&b, "{\"model\":\"m\",\"input\":[{\"type\":\"reasoning\",\"x\":");
    for (int i = 0; i < 3000; i++)
        bl_buf_append_str(&b, "[");
    for (int i = 0; i < 3000; i++)
        bl_buf_append_str(&b, "]");
    bl_buf_append_str(&b, "}]}");
    bl_xreq_t *q = NULL;
    bl_xerr_t err;
    int rc = bl_xreq_parse(BL_FAM_RESPONSES, b.data, b.len, &q, &err);
    assert_true(rc == BL_EINVAL || rc == 0); /* jansson's depth limit or accepted whole */
    bl_xreq_free(q);
    bl_buf_free(&b);

    /* many items, most of them junk at the end */
    bl_buf_append_str(&b, "{\"model\":\"m\",\"input\":[");
    for (int i = 0; i < 20000; i++)
        bl_buf_append_str(&b, "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
                              "\"arguments\":\"{}\"},");
    bl_buf_append_str(&b, "{\"type\":\"function_call\",\"call_id\":null}]}");
    rc = bl_xreq_parse(BL_FAM_RESPONSES, b.data, b.len, &q, &err);
    assert_int_equal(rc, BL_EINVAL);
    assert_string_equal(err.param, "input[20000].call_id");
    bl_buf_free(&b);

    /* an escaped NUL is refused cleanly, as the other families do */
    const char nul[] = "{\"model\":\"m\",\"input\":\"a\\u0000b\"}";
    parse_bad(nul, NULL, "parse the JSON");

    /* truncated bodies at every length never crash */
    size_t n = strlen(codex_req);
    for (size_t i = 0; i < n; i += 7) {
        q = NULL;
        rc = bl_xreq_parse(BL_FAM_RESPONSES, codex_req, i, &q, &err);
        assert_int_equal(rc, BL_EINVAL);
        assert_null(q);
    }
}

/* ---- request writing --------------------------------------------------------- */

static void writes_codex_request_back(void **state)
{
    bl_xreq_t *q = parse_ok(codex_req);
    bl_xwrite_req_opts_t o = {.model = "gpt-5"};
    json_t *j = write_resp(q, &o);
    assert_string_equal(jstr(j, "model"), "gpt-5");
    assert_string_equal(jstr(j, "instructions"), "You are Codex, a coding agent.");
    json_t *in = json_object_get(j, "input");
    assert_int_equal(json_array_size(in), 9);
    assert_string_equal(jstr(in, "0.role"), "developer");
    assert_string_equal(jstr(in, "0.content.0.type"), "input_text");
    assert_string_equal(jstr(in, "1.role"), "user");
    assert_string_equal(jstr(in, "2.type"), "reasoning");
    assert_string_equal(jstr(in, "2.encrypted_content"), "gAAAAB-opaque");
    assert_string_equal(jstr(in, "3.role"), "assistant");
    assert_string_equal(jstr(in, "3.content.0.type"), "output_text");
    assert_string_equal(jstr(in, "4.type"), "function_call");
    assert_string_equal(jstr(in, "4.call_id"), "call_A");
    assert_string_equal(jstr(in, "4.arguments"), "{\"cmd\":\"ls\"}");
    assert_string_equal(jstr(in, "5.call_id"), "call_B");
    assert_string_equal(jstr(in, "6.type"), "function_call_output");
    assert_string_equal(jstr(in, "6.output"), "README.md\nsrc");
    assert_string_equal(jstr(in, "7.output"), "# Demo");
    assert_string_equal(jstr(in, "8.content.0.text"), "thanks, now summarize");
    assert_string_equal(jstr(j, "tools.0.type"), "function");
    assert_string_equal(jstr(j, "tools.0.name"), "exec_command");
    assert_true(json_is_false(jget(j, "tools.0.strict")));
    assert_string_equal(jstr(j, "tools.0.parameters.properties.cmd.type"), "string");
    assert_string_equal(jstr(j, "tool_choice"), "auto");
    assert_true(json_is_false(jget(j, "parallel_tool_calls")));
    assert_string_equal(jstr(j, "reasoning.effort"), "medium");
    assert_string_equal(jstr(j, "reasoning.summary"), "auto");
    assert_string_equal(jstr(j, "include.0"), "reasoning.encrypted_content");
    assert_string_equal(jstr(j, "text.verbosity"), "medium");
    assert_string_equal(jstr(j, "prompt_cache_key"), "abc");
    assert_true(json_is_false(jget(j, "store")));
    assert_true(json_is_true(jget(j, "stream")));
    assert_null(jget(j, "previous_response_id"));

    /* and it parses back to the same conversation */
    char *s = json_dumps(j, 0);
    bl_xreq_t *q2 = parse_ok(s);
    free(s);
    assert_int_equal(q2->n_msgs, q->n_msgs);
    for (size_t i = 0; i < q->n_msgs; i++) {
        assert_int_equal(q2->msgs[i].role, q->msgs[i].role);
        assert_int_equal(q2->msgs[i].n_parts, q->msgs[i].n_parts);
        for (size_t k = 0; k < q->msgs[i].n_parts; k++) {
            assert_int_equal(q2->msgs[i].parts[k].kind, q->msgs[i].parts[k].kind);
            assert_int_equal(q2->msgs[i].parts[k].text_len, q->msgs[i].parts[k].text_len);
        }
    }
    bl_xreq_free(q2);
    json_decref(j);
    bl_xreq_free(q);
}

/* store is false upstream: a reasoning item the target could only resolve
 * by its id (no encrypted content) is left out rather than failing the call */
static void drops_unresolvable_reasoning(void **state)
{
    bl_xreq_t *q = parse_ok("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"a\"},"
                            "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
                            "{\"role\":\"assistant\",\"content\":\"b\"},"
                            "{\"type\":\"reasoning\",\"id\":\"rs_2\",\"summary\":[],"
                            "\"encrypted_content\":\"E\"},{\"role\":\"user\",\"content\":\"c\"}]}");
    assert_int_equal(q->msgs[1].parts[0].kind, BL_PART_OPAQUE);
    bl_xwrite_req_opts_t o = {0};
    json_t *j = write_resp(q, &o);
    json_t *in = json_object_get(j, "input");
    assert_int_equal(json_array_size(in), 4);
    assert_string_equal(jstr(in, "1.role"), "assistant");
    assert_string_equal(jstr(in, "2.id"), "rs_2");
    json_decref(j);
    bl_xreq_free(q);
}

static void writes_prefix_and_drops_what_responses_lacks(void **state)
{
    bl_xreq_t *q = parse_ok("{\"model\":\"m\",\"input\":\"tell a story\",\"previous_response_id\":"
                            "\"resp_1\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":"
                            "\"s\",\"schema\":{\"type\":\"object\"},\"strict\":true}},"
                            "\"max_output_tokens\":50,\"temperature\":0.25,\"metadata\":{\"a\":"
                            "\"b\"}}");
    q->top_k = 5;
    q->seed = 1;
    q->has_seed = true;
    assert_int_equal(bl_xreq_add_stop(q, "END"), 0);
    bl_xwrite_req_opts_t o = {
        .assistant_prefix = "Once upon", .assistant_prefix_len = 9, .continue_instruction = true};
    json_t *j = write_resp(q, &o);
    json_t *in = json_object_get(j, "input");
    assert_int_equal(json_array_size(in), 3);
    assert_string_equal(jstr(in, "1.role"), "assistant");
    assert_string_equal(jstr(in, "1.content.0.text"), "Once upon");
    assert_string_equal(jstr(in, "2.role"), "user");
    assert_non_null(strstr(jstr(in, "2.content.0.text"), "cut off"));
    assert_null(jget(j, "previous_response_id"));
    assert_null(jget(j, "stop"));
    assert_null(jget(j, "top_k"));
    assert_null(jget(j, "seed"));
    assert_null(jget(j, "instructions"));
    assert_string_equal(jstr(j, "text.format.type"), "json_schema");
    assert_string_equal(jstr(j, "text.format.name"), "s");
    assert_true(json_is_true(jget(j, "text.format.strict")));
    assert_int_equal(json_integer_value(jget(j, "max_output_tokens")), 50);
    assert_true(json_real_value(jget(j, "temperature")) == 0.25);
    assert_string_equal(jstr(j, "metadata.a"), "b");
    json_decref(j);
    bl_xreq_free(q);
}

/* A request built by hand as another family's reader would: system in the
 * middle, tool result with an Anthropic image block, other-family opaque. */
static void writes_foreign_request(void **state)
{
    bl_xreq_t *q = bl_xreq_new(BL_FAM_ANTHROPIC);
    q->model = "claude";
    bl_xmsg_t *m = bl_xreq_add_msg(q, BL_ROLE_USER);
    bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_IMAGE);
    p->url = "https://img/x.png";
    m = bl_xreq_add_msg(q, BL_ROLE_ASSISTANT);
    p = bl_xmsg_add_part(m, BL_PART_OPAQUE);
    p->family = BL_FAM_ANTHROPIC;
    p->raw = json_pack("{s:s}", "type", "thinking");
    p = bl_xmsg_add_part(m, BL_PART_TOOL_CALL);
    p->id = "toolu_1";
    p->name = "shot";
    m = bl_xreq_add_msg(q, BL_ROLE_TOOL);
    p = bl_xmsg_add_part(m, BL_PART_TOOL_RESULT);
    p->id = "toolu_1";
    p->text = "ok";
    p->text_len = 2;
    p->raw =
        json_pack("[{s:s,s:s},{s:s,s:{s:s,s:s,s:s}}]", "type", "text", "text", "ok", "type",
                  "image", "source", "type", "base64", "media_type", "image/png", "data", "QUJD");
    m = bl_xreq_add_msg(q, BL_ROLE_SYSTEM);
    p = bl_xmsg_add_part(m, BL_PART_TEXT);
    p->text = "late system";
    p->text_len = 11;
    bl_xtool_t *t = bl_xreq_add_tool(q);
    t->name = "shot";
    q->tool_choice = BL_TC_REQUIRED;
    bl_xwrite_req_opts_t o = {0};
    json_t *j = write_resp(q, &o);
    json_t *in = json_object_get(j, "input");
    assert_int_equal(json_array_size(in), 4);
    assert_string_equal(jstr(in, "0.content.0.type"), "input_image");
    assert_string_equal(jstr(in, "0.content.0.image_url"), "https://img/x.png");
    assert_string_equal(jstr(in, "1.type"), "function_call"); /* thinking dropped */
    assert_string_equal(jstr(in, "1.arguments"), "{}");
    assert_string_equal(jstr(in, "2.output.0.type"), "input_text");
    assert_string_equal(jstr(in, "2.output.1.image_url"), "data:image/png;base64,QUJD");
    assert_string_equal(jstr(in, "3.role"), "system");
    assert_string_equal(jstr(j, "tool_choice"), "required");
    assert_string_equal(jstr(j, "tools.0.parameters.type"), "object");
    assert_null(jget(j, "include"));
    assert_null(jget(j, "reasoning"));
    json_decref(j);
    bl_xreq_free(q);
}

/* Responses -> chat / Anthropic -> parsed again: the conversation survives
 * (reasoning items are Responses-only and drop out). */
static void round_trips_through_other_families(void **state)
{
    bl_xreq_t *q = parse_ok(codex_req);
    static const bl_family_t fams[] = {BL_FAM_CHAT, BL_FAM_ANTHROPIC};
    for (size_t f = 0; f < 2; f++) {
        bl_buf_t out = {0};
        bl_xerr_t err;
        bl_xwrite_req_opts_t o = {.model = "other"};
        int rc = bl_xreq_write(q, fams[f], &o, &out, &err);
        if (rc)
            fprintf(stderr, "write %s: %s\n", bl_family_name(fams[f]), err.message);
        assert_int_equal(rc, 0);
        bl_xreq_t *q2 = NULL;
        rc = bl_xreq_parse(fams[f], out.data, out.len, &q2, &err);
        if (rc)
            fprintf(stderr, "parse %s: %s\n%s\n", bl_family_name(fams[f]), err.message, out.data);
        assert_int_equal(rc, 0);
        /* find the assistant turn with the two calls and the tool results */
        int calls = 0, results = 0, texts_found = 0;
        for (size_t i = 0; i < q2->n_msgs; i++)
            for (size_t k = 0; k < q2->msgs[i].n_parts; k++) {
                const bl_xpart_t *p = &q2->msgs[i].parts[k];
                if (p->kind == BL_PART_TOOL_CALL) {
                    assert_string_equal(p->id, calls ? "call_B" : "call_A");
                    calls++;
                } else if (p->kind == BL_PART_TOOL_RESULT) {
                    results++;
                } else if (p->kind == BL_PART_TEXT && (part_text_is(p, "thanks, now summarize") ||
                                                       part_text_is(p, "Looking at the repo."))) {
                    texts_found++;
                }
                assert_true(p->kind != BL_PART_OPAQUE);
            }
        assert_int_equal(calls, 2);
        assert_int_equal(results, 2);
        assert_int_equal(texts_found, 2);
        assert_int_equal(q2->n_tools, 1);
        assert_string_equal(q2->tools[0].name, "exec_command");
        bl_xreq_free(q2);
        bl_buf_free(&out);
    }
    bl_xreq_free(q);
}

/* ---- reading answers --------------------------------------------------------- */

static const char *stream_events[] = {
    "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_9\","
    "\"object\":\"response\",\"created_at\":1741476542,\"status\":\"in_progress\","
    "\"model\":\"gpt-5\",\"output\":[],\"usage\":null}}",
    "{\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_9\","
    "\"object\":\"response\",\"created_at\":1741476542,\"status\":\"in_progress\","
    "\"model\":\"gpt-5\",\"output\":[]}}",
    "{\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,"
    "\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[]}}",
    "{\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":3,\"item_id\":"
    "\"rs_1\",\"output_index\":0,\"summary_index\":0,\"delta\":\"thinking\"}",
    "{\"type\":\"response.output_item.done\",\"sequence_number\":4,\"output_index\":0,"
    "\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[],"
    "\"encrypted_content\":\"enc\"}}",
    "{\"type\":\"response.output_item.added\",\"sequence_number\":5,\"output_index\":1,"
    "\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],"
    "\"role\":\"assistant\"}}",
    "{\"type\":\"response.content_part.added\",\"sequence_number\":6,\"item_id\":\"msg_1\","
    "\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\","
    "\"annotations\":[],\"text\":\"\"}}",
    "{\"type\":\"response.output_text.delta\",\"sequence_number\":7,\"item_id\":\"msg_1\","
    "\"output_index\":1,\"content_index\":0,\"delta\":\"Hello\",\"logprobs\":[]}",
    "{\"type\":\"response.output_text.delta\",\"sequence_number\":8,\"item_id\":\"msg_1\","
    "\"output_index\":1,\"content_index\":0,\"delta\":\" w\\u00f6rld\",\"logprobs\":[]}",
    "{\"type\":\"response.output_text.done\",\"sequence_number\":9,\"item_id\":\"msg_1\","
    "\"output_index\":1,\"content_index\":0,\"text\":\"Hello w\\u00f6rld\",\"logprobs\":[]}",
    "{\"type\":\"response.content_part.done\",\"sequence_number\":10,\"item_id\":\"msg_1\","
    "\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\","
    "\"annotations\":[],\"text\":\"Hello w\\u00f6rld\"}}",
    "{\"type\":\"response.output_item.done\",\"sequence_number\":11,\"output_index\":1,"
    "\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{"
    "\"type\":\"output_text\",\"annotations\":[],\"text\":\"Hello w\\u00f6rld\"}],"
    "\"role\":\"assistant\"}}",
    "{\"type\":\"response.output_item.added\",\"sequence_number\":12,\"output_index\":2,"
    "\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\","
    "\"arguments\":\"\",\"call_id\":\"call_X\",\"name\":\"exec_command\"}}",
    "{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":13,\"item_id\":"
    "\"fc_1\",\"output_index\":2,\"delta\":\"{\\\"cmd\\\":\"}",
    "{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":14,\"item_id\":"
    "\"fc_1\",\"output_index\":2,\"delta\":\"\\\"ls\\\"}\"}",
    "{\"type\":\"response.function_call_arguments.done\",\"sequence_number\":15,\"item_id\":"
    "\"fc_1\",\"output_index\":2,\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\"}",
    "{\"type\":\"response.output_item.done\",\"sequence_number\":16,\"output_index\":2,"
    "\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"completed\","
    "\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\",\"call_id\":\"call_X\",\"name\":"
    "\"exec_command\"}}",
    "{\"type\":\"response.completed\",\"sequence_number\":17,\"response\":{\"id\":\"resp_9\","
    "\"object\":\"response\",\"created_at\":1741476542,\"status\":\"completed\",\"model\":"
    "\"gpt-5\",\"output\":[],\"usage\":{\"input_tokens\":120,\"input_tokens_details\":{"
    "\"cached_tokens\":100},\"output_tokens\":30,\"output_tokens_details\":{"
    "\"reasoning_tokens\":10},\"total_tokens\":150}}}",
};

static void reads_a_stream(void **state)
{
    bl_xread_t *r;
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    evlog_t l = {0};
    bl_xstate_t st;
    for (size_t i = 0; i < BL_ARRAY_LEN(stream_events); i++) {
        assert_int_equal(feed(r, stream_events[i], &l), 0);
        bl_xread_state(r, &st);
        if (i == 7) { /* inside the message item */
            assert_string_equal(st.id, "resp_9");
            assert_string_equal(st.model, "gpt-5");
            assert_string_equal(st.item_id, "msg_1");
            assert_int_equal(st.open_index, 1);
            assert_int_equal(st.next_index, 2);
            assert_int_equal(st.next_seq, 8);
            assert_int_equal(st.created, 1741476542);
            assert_false(bl_xread_done(r));
        }
    }
    assert_true(bl_xread_done(r));
    bl_xread_state(r, &st);
    assert_int_equal(st.open_index, -1);
    assert_int_equal(st.next_index, 3);
    assert_int_equal(st.n_tool_calls, 1);

    size_t k = 0;
    assert_int_equal(l.ev[k].kind, BL_XEV_START);
    assert_string_equal(l.ev[k].id, "resp_9");
    k++;
    assert_int_equal(l.ev[k].kind, BL_XEV_OPAQUE);
    assert_string_equal(jstr(l.ev[k].raw, "encrypted_content"), "enc");
    k++;
    assert_int_equal(l.ev[k].kind, BL_XEV_TEXT);
    assert_string_equal(l.ev[k++].text, "Hello");
    assert_string_equal(l.ev[k++].text, " w\xc3\xb6rld");
    assert_int_equal(l.ev[k].kind, BL_XEV_TOOL_START);
    assert_int_equal(l.ev[k].index, 0);
    assert_string_equal(l.ev[k].id, "call_X");
    assert_string_equal(l.ev[k++].name, "exec_command");
    assert_int_equal(l.ev[k].kind, BL_XEV_TOOL_ARGS);
    assert_string_equal(l.ev[k++].text, "{\"cmd\":");
    assert_string_equal(l.ev[k++].text, "\"ls\"}");
    assert_int_equal(l.ev[k].kind, BL_XEV_USAGE);
    assert_int_equal(l.ev[k].in, 120);
    assert_int_equal(l.ev[k].out, 30);
    assert_int_equal(l.ev[k++].cached, 100);
    assert_int_equal(l.ev[k].kind, BL_XEV_FINISH);
    assert_int_equal(l.ev[k++].finish, BL_XFIN_TOOL_CALLS);
    assert_int_equal(l.n, k);
    evlog_free(&l);
    bl_xread_free(r);
}

static void reads_endings_and_errors(void **state)
{
    bl_xread_t *r;
    evlog_t l = {0};
    /* incomplete: max_output_tokens -> LENGTH; content_filter -> CONTENT_FILTER */
    static const char *reasons[] = {"max_output_tokens", "content_filter"};
    static const bl_xfinish_t want[] = {BL_XFIN_LENGTH, BL_XFIN_CONTENT_FILTER};
    for (size_t i = 0; i < 2; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"type\":\"response.incomplete\",\"sequence_number\":3,\"response\":{\"id\":"
                 "\"resp_1\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":"
                 "\"%s\"},\"output\":[{\"type\":\"message\",\"id\":\"m\",\"role\":\"assistant\","
                 "\"content\":[{\"type\":\"output_text\",\"text\":\"par\"}]}]}}",
                 reasons[i]);
        assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
        assert_int_equal(feed(r, ev, &l), 0);
        assert_true(bl_xread_done(r));
        assert_int_equal(l.ev[0].kind, BL_XEV_START);
        assert_int_equal(l.ev[1].kind, BL_XEV_TEXT); /* only the final object held it */
        assert_string_equal(l.ev[1].text, "par");
        assert_int_equal(l.ev[l.n - 1].kind, BL_XEV_FINISH);
        assert_int_equal(l.ev[l.n - 1].finish, want[i]);
        evlog_free(&l);
        bl_xread_free(r);
    }
    /* response.failed */
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    assert_int_equal(feed(r, stream_events[0], &l), 0);
    assert_int_equal(feed(r,
                          "{\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{"
                          "\"id\":\"resp_9\",\"status\":\"failed\",\"error\":{\"code\":"
                          "\"server_error\",\"message\":\"boom\"}}}",
                          &l),
                     0);
    assert_int_equal(l.ev[1].kind, BL_XEV_ERROR);
    assert_int_equal(l.ev[1].err_kind, BL_XERR_API);
    assert_string_equal(l.ev[1].text, "boom");
    evlog_free(&l);
    bl_xread_free(r);
    /* error event */
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    assert_int_equal(feed(r,
                          "{\"type\":\"error\",\"sequence_number\":0,\"code\":"
                          "\"rate_limit_exceeded\",\"message\":\"slow down\",\"param\":null}",
                          &l),
                     0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ev[0].kind, BL_XEV_ERROR);
    assert_int_equal(l.ev[0].err_kind, BL_XERR_RATE_LIMIT);
    evlog_free(&l);
    bl_xread_free(r);
    /* a server without sequence numbers: the state counts the events */
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    assert_int_equal(feed(r, "{\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}", &l), 0);
    assert_int_equal(feed(r, "{\"type\":\"response.in_progress\",\"response\":{\"id\":\"r\"}}", &l),
                     0);
    bl_xstate_t st;
    bl_xread_state(r, &st);
    assert_int_equal(st.next_seq, 2);
    assert_true(st.started);
    evlog_free(&l);
    bl_xread_free(r);
}

static void rejects_broken_streams(void **state)
{
    static const char *bad[] = {
        "not json",
        "[1]",
        "{\"sequence_number\":1}",
        "{\"type\":\"response.created\"}",
        "{\"type\":\"response.output_item.added\",\"output_index\":0}",
        "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{}}",
        "{\"type\":\"response.output_text.delta\",\"delta\":5}",
        "{\"type\":\"response.function_call_arguments.delta\",\"output_index\":4,"
        "\"delta\":\"x\"}",
        "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":"
        "\"function_call\",\"call_id\":3}}",
        "{\"type\":\"response.completed\",\"response\":7}",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        bl_xread_t *r;
        evlog_t l = {0};
        assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
        int rc = feed(r, bad[i], &l);
        if (rc != BL_EFORMAT)
            fprintf(stderr, "not rejected: %s\n", bad[i]);
        assert_int_equal(rc, BL_EFORMAT);
        evlog_free(&l);
        bl_xread_free(r);
    }
}

static void reads_a_body(void **state)
{
    const char *body =
        "{\"id\":\"resp_B\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\","
        "\"model\":\"gpt-4.1\",\"output\":[{\"type\":\"message\",\"id\":\"msg_1\",\"status\":"
        "\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":"
        "\"Two calls:\",\"annotations\":[]}]},{\"type\":\"function_call\",\"id\":\"fc_1\","
        "\"call_id\":\"call_1\",\"name\":\"a\",\"arguments\":\"{}\"},{\"type\":\"function_call\","
        "\"id\":\"fc_2\",\"call_id\":\"call_2\",\"name\":\"b\",\"arguments\":\"{\\\"x\\\":1}\"}],"
        "\"usage\":{\"input_tokens\":5,\"output_tokens\":6,\"total_tokens\":11}}";
    bl_xread_t *r;
    evlog_t l = {0};
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    assert_int_equal(bl_xread_body(r, body, strlen(body), collect, &l), 0);
    assert_int_equal(l.n, 8);
    assert_string_equal(l.ev[0].id, "resp_B");
    assert_string_equal(l.ev[1].text, "Two calls:");
    assert_int_equal(l.ev[2].kind, BL_XEV_TOOL_START);
    assert_int_equal(l.ev[2].index, 0);
    assert_string_equal(l.ev[3].text, "{}");
    assert_int_equal(l.ev[4].index, 1);
    assert_string_equal(l.ev[4].id, "call_2");
    assert_string_equal(l.ev[5].text, "{\"x\":1}");
    assert_int_equal(l.ev[6].kind, BL_XEV_USAGE);
    assert_int_equal(l.ev[6].cached, -1);
    assert_int_equal(l.ev[7].finish, BL_XFIN_TOOL_CALLS);
    evlog_free(&l);
    bl_xread_free(r);

    const char *err = "{\"error\":{\"message\":\"bad key\",\"type\":\"invalid_request_error\","
                      "\"code\":\"invalid_api_key\"}}";
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    assert_int_equal(bl_xread_body(r, err, strlen(err), collect, &l), 0);
    assert_int_equal(l.ev[0].kind, BL_XEV_ERROR);
    assert_string_equal(l.ev[0].text, "bad key");
    evlog_free(&l);
    assert_int_equal(bl_xread_body(r, "<html>", 6, collect, &l), BL_EFORMAT);
    bl_xread_free(r);
}

/* ---- writing answers --------------------------------------------------------- */

static int wr(bl_xwrite_t *w, bl_xev_t ev, bl_buf_t *out)
{
    return bl_xwrite_event(w, &ev, out);
}

/* A typical answer: text, then two parallel calls with interleaved args. */
static void write_answer(bl_xwrite_t *w, bl_buf_t *out, bool usage_after_finish)
{
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START, .id = "x", .model = "up"}, out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "Let me ", .text_len = 7}, out),
                     0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "look.", .text_len = 5}, out),
                     0);
    assert_int_equal(
        wr(w,
           (bl_xev_t){
               .kind = BL_XEV_TOOL_START, .index = 0, .id = "call_1", .name = "exec_command"},
           out),
        0);
    assert_int_equal(
        wr(w, (bl_xev_t){.kind = BL_XEV_TOOL_START, .index = 1, .id = "", .name = "read"}, out), 0);
    assert_int_equal(
        wr(w, (bl_xev_t){.kind = BL_XEV_TOOL_ARGS, .index = 0, .text = "{\"cmd\"", .text_len = 6},
           out),
        0);
    assert_int_equal(
        wr(w, (bl_xev_t){.kind = BL_XEV_TOOL_ARGS, .index = 1, .text = "{}", .text_len = 2}, out),
        0);
    assert_int_equal(
        wr(w, (bl_xev_t){.kind = BL_XEV_TOOL_ARGS, .index = 0, .text = ":\"ls\"}", .text_len = 6},
           out),
        0);
    bl_xev_t usage = {
        .kind = BL_XEV_USAGE, .input_tokens = 11, .output_tokens = 22, .cached_tokens = 3};
    if (!usage_after_finish)
        assert_int_equal(bl_xwrite_event(w, &usage, out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_FINISH, .finish = BL_XFIN_TOOL_CALLS}, out),
                     0);
    if (usage_after_finish) {
        if (out->data) /* streaming: the final event waits for the usage */
            assert_null(strstr(out->data, "response.completed"));
        assert_int_equal(bl_xwrite_event(w, &usage, out), 0);
    }
    assert_int_equal(bl_xwrite_end(w, out), 0);
}

static void check_final_response(json_t *resp, const char *status)
{
    assert_string_equal(jstr(resp, "object"), "response");
    assert_string_equal(jstr(resp, "status"), status);
    assert_string_equal(jstr(resp, "model"), "client-model");
    assert_string_equal(jstr(resp, "instructions"), "You are Codex, a coding agent.");
    assert_string_equal(jstr(resp, "tools.0.name"), "exec_command");
    assert_true(json_is_false(jget(resp, "parallel_tool_calls")));
    assert_true(json_is_null(jget(resp, "error")));
    json_t *out = json_object_get(resp, "output");
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(jstr(out, "0.type"), "message");
    assert_string_equal(jstr(out, "0.content.0.text"), "Let me look.");
    assert_string_equal(jstr(out, "1.type"), "function_call");
    assert_string_equal(jstr(out, "1.call_id"), "call_1");
    assert_string_equal(jstr(out, "1.arguments"), "{\"cmd\":\"ls\"}");
    assert_string_equal(jstr(out, "1.status"), "completed");
    assert_int_equal(strncmp(jstr(out, "1.id"), "fc_", 3), 0);
    assert_int_equal(strncmp(jstr(out, "2.call_id"), "call_", 5), 0); /* made one */
    assert_string_equal(jstr(out, "2.arguments"), "{}");
    assert_int_equal(json_integer_value(jget(resp, "usage.input_tokens")), 11);
    assert_int_equal(json_integer_value(jget(resp, "usage.output_tokens")), 22);
    assert_int_equal(json_integer_value(jget(resp, "usage.total_tokens")), 33);
    assert_int_equal(json_integer_value(jget(resp, "usage.input_tokens_details.cached_tokens")), 3);
    assert_int_equal(json_integer_value(jget(resp, "usage.output_tokens_details.reasoning_tokens")),
                     0);
}

static void writes_a_stream(void **state)
{
    bl_xreq_t *q = parse_ok(codex_req);
    for (int after = 0; after < 2; after++) {
        bl_xwrite_opts_t o = {.stream = true, .model = "client-model", .req = q};
        bl_xwrite_t *w;
        assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
        bl_buf_t out = {0};
        write_answer(w, &out, after);
        sse_t ev[64];
        size_t n = split_sse(out.data, ev, 64);
        static const char *want[] = {"response.created",
                                     "response.in_progress",
                                     "response.output_item.added",
                                     "response.content_part.added",
                                     "response.output_text.delta",
                                     "response.output_text.delta",
                                     "response.output_text.done",
                                     "response.content_part.done",
                                     "response.output_item.done",
                                     "response.output_item.added",
                                     "response.output_item.added",
                                     "response.function_call_arguments.delta",
                                     "response.function_call_arguments.delta",
                                     "response.function_call_arguments.delta",
                                     "response.function_call_arguments.done",
                                     "response.output_item.done",
                                     "response.function_call_arguments.done",
                                     "response.output_item.done",
                                     "response.completed"};
        assert_int_equal(n, BL_ARRAY_LEN(want));
        const char *resp_id = jstr(ev[0].data, "response.id");
        assert_int_equal(strncmp(resp_id, "resp_", 5), 0);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(ev[i].name, want[i]);
            assert_string_equal(jstr(ev[i].data, "type"), want[i]);
            assert_int_equal(json_integer_value(jget(ev[i].data, "sequence_number")), (int)i);
        }
        assert_string_equal(jstr(ev[0].data, "response.status"), "in_progress");
        assert_int_equal(json_array_size(jget(ev[0].data, "response.output")), 0);
        const char *msg_id = jstr(ev[2].data, "item.id");
        assert_int_equal(strncmp(msg_id, "msg_", 4), 0);
        assert_string_equal(jstr(ev[2].data, "item.status"), "in_progress");
        assert_string_equal(jstr(ev[3].data, "part.type"), "output_text");
        assert_string_equal(jstr(ev[3].data, "part.text"), "");
        assert_string_equal(jstr(ev[4].data, "item_id"), msg_id);
        assert_int_equal(json_integer_value(jget(ev[4].data, "output_index")), 0);
        assert_int_equal(json_integer_value(jget(ev[4].data, "content_index")), 0);
        assert_string_equal(jstr(ev[5].data, "delta"), "look.");
        assert_string_equal(jstr(ev[6].data, "text"), "Let me look.");
        assert_string_equal(jstr(ev[9].data, "item.type"), "function_call");
        assert_string_equal(jstr(ev[9].data, "item.call_id"), "call_1");
        assert_string_equal(jstr(ev[9].data, "item.arguments"), "");
        assert_int_equal(json_integer_value(jget(ev[9].data, "output_index")), 1);
        assert_int_equal(json_integer_value(jget(ev[12].data, "output_index")), 2);
        assert_string_equal(jstr(ev[14].data, "arguments"), "{\"cmd\":\"ls\"}");
        assert_string_equal(jstr(ev[14].data, "name"), "exec_command");
        json_t *resp = jget(ev[n - 1].data, "response");
        assert_string_equal(jstr(resp, "id"), resp_id);
        check_final_response(resp, "completed");

        /* our own reader reads it back to the same events */
        bl_xread_t *r;
        evlog_t l = {0};
        assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
        for (size_t i = 0; i < n; i++) {
            char *s = json_dumps(ev[i].data, 0);
            assert_int_equal(feed(r, s, &l), 0);
            free(s);
        }
        assert_true(bl_xread_done(r));
        char text[128];
        evlog_text(&l, text, sizeof text);
        assert_string_equal(text, "Let me look.");
        assert_int_equal(l.ev[l.n - 1].finish, BL_XFIN_TOOL_CALLS);
        assert_int_equal(l.ev[l.n - 2].in, 11);
        evlog_free(&l);
        bl_xread_free(r);
        sse_free(ev, n);
        bl_buf_free(&out);
        bl_xwrite_free(w);
    }
    bl_xreq_free(q);
}

static void writes_a_body(void **state)
{
    bl_xreq_t *q = parse_ok(codex_req);
    bl_xwrite_opts_t o = {.stream = false,
                          .model = "client-model",
                          .req = q,
                          .id = "resp_fixed",
                          .created = 1700000000};
    bl_xwrite_t *w;
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    bl_xwrite_note_failover(w, "openai", "local");
    bl_buf_t out = {0};
    write_answer(w, &out, true);
    json_t *resp = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(resp);
    assert_string_equal(jstr(resp, "id"), "resp_fixed");
    assert_int_equal(json_integer_value(jget(resp, "created_at")), 1700000000);
    check_final_response(resp, "completed");
    assert_true(json_is_true(jget(resp, "x_ballast.midstream_failover")));
    assert_string_equal(jstr(resp, "x_ballast.to"), "local");
    json_decref(resp);
    bl_buf_free(&out);
    bl_xwrite_free(w);
    bl_xreq_free(q);
}

static void writes_incomplete_and_failed(void **state)
{
    bl_xwrite_opts_t o = {.stream = true, .model = "m"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    sse_t ev[16];
    /* LENGTH -> response.incomplete with reason max_output_tokens */
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "abc", .text_len = 3}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_FINISH, .finish = BL_XFIN_LENGTH}, &out), 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    size_t n = split_sse(out.data, ev, 16);
    assert_string_equal(ev[n - 1].name, "response.incomplete");
    assert_string_equal(jstr(ev[n - 1].data, "response.status"), "incomplete");
    assert_string_equal(jstr(ev[n - 1].data, "response.incomplete_details.reason"),
                        "max_output_tokens");
    assert_string_equal(jstr(ev[n - 1].data, "response.output.0.content.0.text"), "abc");
    assert_true(json_is_object(jget(ev[n - 1].data, "response.usage")));
    sse_free(ev, n);
    bl_buf_reset(&out);
    bl_xwrite_free(w);

    /* a failure before anything: response.failed alone */
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    assert_int_equal(bl_xwrite_fail(w, BL_XERR_RATE_LIMIT, "all targets busy", &out), 0);
    n = split_sse(out.data, ev, 16);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].name, "response.failed");
    assert_int_equal(json_integer_value(jget(ev[0].data, "sequence_number")), 0);
    assert_string_equal(jstr(ev[0].data, "response.status"), "failed");
    assert_string_equal(jstr(ev[0].data, "response.error.code"), "rate_limit_exceeded");
    assert_string_equal(jstr(ev[0].data, "response.error.message"), "all targets busy");
    sse_free(ev, n);
    /* nothing after the failure */
    size_t len = out.len;
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "x", .text_len = 1}, &out), 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    assert_int_equal(out.len, len);
    bl_buf_reset(&out);
    bl_xwrite_free(w);

    /* ERROR event mid-stream becomes response.failed with the next sequence number */
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START}, &out), 0);
    assert_int_equal(wr(w,
                        (bl_xev_t){.kind = BL_XEV_ERROR,
                                   .err_kind = BL_XERR_API,
                                   .text = "upstream died",
                                   .text_len = 13},
                        &out),
                     0);
    n = split_sse(out.data, ev, 16);
    assert_int_equal(n, 3);
    assert_string_equal(ev[2].name, "response.failed");
    assert_int_equal(json_integer_value(jget(ev[2].data, "sequence_number")), 2);
    assert_string_equal(jstr(ev[2].data, "response.error.code"), "server_error");
    sse_free(ev, n);
    bl_buf_free(&out);
    bl_xwrite_free(w);
}

/* A passed-through stream is cut inside the message item: a resumed writer
 * continues the same item with the next sequence numbers, no new created. */
static void resumes_a_cut_stream(void **state)
{
    bl_xread_t *r;
    evlog_t l = {0};
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    for (size_t i = 0; i <= 7; i++) /* up to the first text delta */
        assert_int_equal(feed(r, stream_events[i], &l), 0);
    bl_xstate_t st;
    bl_xread_state(r, &st);
    bl_xread_free(r);
    evlog_free(&l);

    bl_xwrite_opts_t o = {.stream = true};
    bl_xwrite_t *w;
    assert_int_equal(bl_xwrite_resume(BL_FAM_RESPONSES, &o, &st, &w), 0);
    bl_xwrite_note_failover(w, "openai", "anthropic");
    bl_buf_t out = {0};
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START, .id = "msg_other"}, &out), 0);
    assert_int_equal(out.len, 0); /* the client saw the start already */
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = " there", .text_len = 6}, &out),
                     0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_FINISH, .finish = BL_XFIN_STOP}, &out), 0);
    assert_int_equal(
        wr(w,
           (bl_xev_t){
               .kind = BL_XEV_USAGE, .input_tokens = 1, .output_tokens = 2, .cached_tokens = -1},
           &out),
        0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    sse_t ev[16];
    size_t n = split_sse(out.data, ev, 16);
    assert_int_equal(n, 5);
    assert_string_equal(ev[0].name, "response.output_text.delta");
    assert_int_equal(json_integer_value(jget(ev[0].data, "sequence_number")), 8);
    assert_string_equal(jstr(ev[0].data, "item_id"), "msg_1");
    assert_int_equal(json_integer_value(jget(ev[0].data, "output_index")), 1);
    assert_string_equal(jstr(ev[0].data, "delta"), " there");
    assert_string_equal(ev[1].name, "response.output_text.done");
    assert_string_equal(ev[3].name, "response.output_item.done");
    assert_string_equal(jstr(ev[3].data, "item.id"), "msg_1");
    assert_string_equal(ev[4].name, "response.completed");
    assert_int_equal(json_integer_value(jget(ev[4].data, "sequence_number")), 12);
    assert_string_equal(jstr(ev[4].data, "response.id"), "resp_9");
    assert_string_equal(jstr(ev[4].data, "response.model"), "gpt-5");
    assert_int_equal(json_integer_value(jget(ev[4].data, "response.created_at")), 1741476542);
    assert_true(json_is_true(jget(ev[4].data, "response.x_ballast.midstream_failover")));
    assert_string_equal(jstr(ev[4].data, "response.x_ballast.from"), "openai");
    sse_free(ev, n);
    bl_buf_free(&out);
    bl_xwrite_free(w);
}

/* Reasoning items from a Responses target reach a Responses client whole;
 * another family's opaque blocks do not. */
static void passes_reasoning_items(void **state)
{
    bl_xwrite_opts_t o = {.stream = true, .model = "m"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    json_t *rs = json_pack("{s:s, s:s, s:[], s:s}", "id", "rs_1", "type", "reasoning", "summary",
                           "encrypted_content", "enc");
    json_t *th = json_pack("{s:s, s:s}", "type", "thinking", "thinking", "hmm");
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_OPAQUE, .raw = th}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_OPAQUE, .raw = rs}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "hi", .text_len = 2}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_FINISH}, &out), 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    sse_t ev[32];
    size_t n = split_sse(out.data, ev, 32);
    assert_string_equal(ev[2].name, "response.output_item.added");
    assert_string_equal(jstr(ev[2].data, "item.type"), "reasoning");
    assert_string_equal(ev[3].name, "response.output_item.done");
    assert_string_equal(jstr(ev[3].data, "item.encrypted_content"), "enc");
    assert_int_equal(json_integer_value(jget(ev[4].data, "output_index")), 1);
    json_t *resp = jget(ev[n - 1].data, "response");
    assert_int_equal(json_array_size(jget(resp, "output")), 2);
    assert_string_equal(jstr(resp, "output.0.type"), "reasoning");
    assert_string_equal(jstr(resp, "output.1.type"), "message");
    assert_null(strstr(out.data, "thinking"));
    sse_free(ev, n);
    json_decref(rs);
    json_decref(th);
    bl_buf_free(&out);
    bl_xwrite_free(w);
}

/* ---- custom (freeform) tools, as Codex's apply_patch ------------------------- */

static const char *custom_req =
    "{\"model\":\"gpt-5-codex\",\"input\":["
    "{\"role\":\"user\",\"content\":\"fix it\"},"
    "{\"type\":\"custom_tool_call\",\"call_id\":\"call_P\",\"name\":\"apply_patch\","
    "\"input\":\"*** Begin Patch\\n*** Update File: a.c\\n\\\"q\\\"\\n*** End Patch\"},"
    "{\"type\":\"custom_tool_call_output\",\"call_id\":\"call_P\",\"output\":\"Done!\"}],"
    "\"tools\":[{\"type\":\"custom\",\"name\":\"apply_patch\",\"description\":\"Edit files."
    "\",\"format\":{\"type\":\"grammar\",\"syntax\":\"lark\",\"definition\":\"start: "
    "begin_patch hunk+ end_patch\"}},{\"type\":\"function\",\"name\":\"shell\"}],"
    "\"tool_choice\":{\"type\":\"custom\",\"name\":\"apply_patch\"},\"stream\":true}";

static const char *patch_text = "*** Begin Patch\n*** Update File: a.c\n\"q\"\n*** End Patch";

static void custom_tools_read_as_functions(void **state)
{
    bl_xreq_t *q = parse_ok(custom_req);
    assert_int_equal(q->n_tools, 2);
    assert_string_equal(q->tools[0].name, "apply_patch");
    assert_string_equal(jstr(q->tools[0].parameters, "properties.input.type"), "string");
    assert_non_null(
        strstr(jstr(q->tools[0].parameters, "properties.input.description"), "begin_patch hunk+"));
    assert_string_equal(jstr(q->tools[0].parameters, "required.0"), "input");
    assert_int_equal(q->tool_choice, BL_TC_NAMED);
    assert_null(q->hosted_tool);
    const bl_xpart_t *call = &q->msgs[1].parts[0];
    assert_int_equal(call->kind, BL_PART_TOOL_CALL);
    json_t *args = json_loadb(call->text, call->text_len, 0, NULL);
    assert_string_equal(jstr(args, "input"), patch_text);
    json_decref(args);
    assert_int_equal(q->msgs[2].role, BL_ROLE_TOOL);
    assert_true(part_text_is(&q->msgs[2].parts[0], "Done!"));

    /* back to a Responses target: the custom shapes come back */
    bl_xwrite_req_opts_t ro = {0};
    json_t *j = write_resp(q, &ro);
    assert_string_equal(jstr(j, "tools.0.type"), "custom");
    assert_string_equal(jstr(j, "tools.0.format.syntax"), "lark");
    assert_string_equal(jstr(j, "tools.1.type"), "function");
    assert_string_equal(jstr(j, "tool_choice.type"), "custom");
    assert_string_equal(jstr(j, "input.1.type"), "custom_tool_call");
    assert_string_equal(jstr(j, "input.1.input"), patch_text);
    assert_string_equal(jstr(j, "input.2.type"), "custom_tool_call_output");
    json_decref(j);

    /* to chat: a plain function with a string "input" */
    bl_buf_t out = {0};
    bl_xerr_t err;
    bl_xwrite_req_opts_t o = {.model = "gpt-4.1"};
    assert_int_equal(bl_xreq_write(q, BL_FAM_CHAT, &o, &out, &err), 0);
    j = json_loadb(out.data, out.len, 0, NULL);
    assert_string_equal(jstr(j, "tools.0.function.name"), "apply_patch");
    assert_string_equal(jstr(j, "tools.0.function.parameters.properties.input.type"), "string");
    json_decref(j);
    bl_buf_free(&out);
    bl_xreq_free(q);
}

static void custom_tool_calls_written_as_custom_items(void **state)
{
    bl_xreq_t *q = parse_ok(custom_req);
    bl_xwrite_opts_t o = {.stream = true, .model = "m", .req = q};
    bl_xwrite_t *w;
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    bl_buf_t out = {0};
    const char *args = "{\"input\":\"*** Begin Patch\\n*** Update File: a.c\\n\\\"q\\\"\\n"
                       "*** End Patch\"}";
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START}, &out), 0);
    assert_int_equal(
        wr(w,
           (bl_xev_t){
               .kind = BL_XEV_TOOL_START, .index = 0, .id = "toolu_9", .name = "apply_patch"},
           &out),
        0);
    for (size_t i = 0; i < strlen(args); i += 5) /* split anywhere, even inside escapes */
        assert_int_equal(wr(w,
                            (bl_xev_t){.kind = BL_XEV_TOOL_ARGS,
                                       .index = 0,
                                       .text = args + i,
                                       .text_len = BL_MIN(5, strlen(args) - i)},
                            &out),
                         0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_FINISH, .finish = BL_XFIN_TOOL_CALLS}, &out),
                     0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    sse_t ev[16];
    size_t n = split_sse(out.data, ev, 16);
    assert_int_equal(n, 7);
    assert_string_equal(ev[2].name, "response.output_item.added");
    assert_string_equal(jstr(ev[2].data, "item.type"), "custom_tool_call");
    assert_int_equal(strncmp(jstr(ev[2].data, "item.id"), "ctc_", 4), 0);
    assert_string_equal(ev[3].name, "response.custom_tool_call_input.delta");
    assert_string_equal(jstr(ev[3].data, "delta"), patch_text);
    assert_string_equal(ev[4].name, "response.custom_tool_call_input.done");
    assert_string_equal(jstr(ev[4].data, "input"), patch_text);
    assert_string_equal(ev[5].name, "response.output_item.done");
    assert_string_equal(jstr(ev[5].data, "item.call_id"), "toolu_9");
    assert_string_equal(jstr(ev[5].data, "item.input"), patch_text);
    assert_string_equal(jstr(ev[5].data, "item.name"), "apply_patch");
    assert_string_equal(jstr(ev[6].data, "response.output.0.type"), "custom_tool_call");

    /* and the reader turns those events back into {"input": ...} arguments */
    bl_xread_t *r;
    evlog_t l = {0};
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    for (size_t i = 0; i < n; i++) {
        char *s = json_dumps(ev[i].data, 0);
        assert_int_equal(feed(r, s, &l), 0);
        free(s);
    }
    char joined[256] = "";
    for (size_t i = 0; i < l.n; i++)
        if (l.ev[i].kind == BL_XEV_TOOL_ARGS)
            strncat(joined, l.ev[i].text, sizeof joined - strlen(joined) - 1);
    json_t *a = json_loads(joined, 0, NULL);
    assert_non_null(a);
    assert_string_equal(jstr(a, "input"), patch_text);
    assert_string_equal(l.ev[1].name, "apply_patch");
    json_decref(a);
    evlog_free(&l);
    bl_xread_free(r);
    sse_free(ev, n);
    bl_buf_free(&out);
    bl_xwrite_free(w);
    bl_xreq_free(q);
}

/* A custom call read from a stream whose input arrives in deltas (and one
 * whose input only shows in output_item.done). */
static void reads_custom_tool_call_stream(void **state)
{
    static const char *evs[] = {
        "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_c\","
        "\"model\":\"gpt-5\",\"output\":[]}}",
        "{\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,"
        "\"item\":{\"id\":\"ctc_1\",\"type\":\"custom_tool_call\",\"status\":\"in_progress\","
        "\"call_id\":\"call_1\",\"input\":\"\",\"name\":\"apply_patch\"}}",
        "{\"type\":\"response.custom_tool_call_input.delta\",\"sequence_number\":2,\"item_id\":"
        "\"ctc_1\",\"output_index\":0,\"delta\":\"line \\\"1\\\"\\n\"}",
        "{\"type\":\"response.custom_tool_call_input.delta\",\"sequence_number\":3,\"item_id\":"
        "\"ctc_1\",\"output_index\":0,\"delta\":\"line 2\"}",
        "{\"type\":\"response.custom_tool_call_input.done\",\"sequence_number\":4,\"item_id\":"
        "\"ctc_1\",\"output_index\":0,\"input\":\"line \\\"1\\\"\\nline 2\"}",
        "{\"type\":\"response.output_item.done\",\"sequence_number\":5,\"output_index\":0,"
        "\"item\":{\"id\":\"ctc_1\",\"type\":\"custom_tool_call\",\"status\":\"completed\","
        "\"call_id\":\"call_1\",\"input\":\"line \\\"1\\\"\\nline 2\",\"name\":\"apply_patch\"}}",
        "{\"type\":\"response.output_item.done\",\"sequence_number\":6,\"output_index\":1,"
        "\"item\":{\"id\":\"ctc_2\",\"type\":\"custom_tool_call\",\"status\":\"completed\","
        "\"call_id\":\"call_2\",\"input\":\"x\",\"name\":\"apply_patch\"}}",
        "{\"type\":\"response.completed\",\"sequence_number\":7,\"response\":{\"id\":\"resp_c\","
        "\"status\":\"completed\",\"output\":[]}}",
    };
    bl_xread_t *r;
    evlog_t l = {0};
    assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
    for (size_t i = 0; i < BL_ARRAY_LEN(evs); i++)
        assert_int_equal(feed(r, evs[i], &l), 0);
    char args[2][128] = {"", ""};
    for (size_t i = 0; i < l.n; i++)
        if (l.ev[i].kind == BL_XEV_TOOL_ARGS)
            strncat(args[l.ev[i].index], l.ev[i].text, 127 - strlen(args[l.ev[i].index]));
    assert_string_equal(args[0], "{\"input\":\"line \\\"1\\\"\\nline 2\"}");
    assert_string_equal(args[1], "{\"input\":\"x\"}");
    assert_int_equal(l.ev[l.n - 1].finish, BL_XFIN_TOOL_CALLS);
    evlog_free(&l);
    bl_xread_free(r);
}

/* ---- other families' readers into the Responses writer ----------------------- */

typedef struct {
    bl_xwrite_t *w;
    bl_buf_t *out;
} pipe_t;

static int to_writer(void *ud, const bl_xev_t *ev)
{
    pipe_t *p = ud;
    assert_int_equal(bl_xwrite_event(p->w, ev, p->out), 0);
    return 0;
}

/* Feed one family's SSE (name, data pairs) through its reader into a
 * Responses writer; returns the final response object (a new reference). */
static json_t *pipe_stream(bl_family_t f, const char *const *evs, size_t n, sse_t *ev, size_t *n_ev,
                           bl_buf_t *out)
{
    bl_xread_t *r;
    bl_xwrite_t *w;
    bl_xwrite_opts_t o = {.stream = true, .model = "client-model"};
    assert_int_equal(bl_xread_new(f, &r), 0);
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    pipe_t p = {w, out};
    for (size_t i = 0; i < n; i += 2) {
        bl_str_t name = {evs[i], strlen(evs[i])}, data = {evs[i + 1], strlen(evs[i + 1])};
        assert_int_equal(bl_xread_event(r, name, data, to_writer, &p), 0);
    }
    assert_int_equal(bl_xread_eof(r, to_writer, &p), 0);
    assert_int_equal(bl_xwrite_end(w, out), 0);
    *n_ev = split_sse(out->data, ev, 64);
    for (size_t i = 0; i < *n_ev; i++)
        assert_int_equal(json_integer_value(jget(ev[i].data, "sequence_number")), (int)i);
    json_t *resp = json_incref(jget(ev[*n_ev - 1].data, "response"));
    bl_xread_free(r);
    bl_xwrite_free(w);
    return resp;
}

static void answers_from_chat_and_anthropic_targets(void **state)
{
    static const char *const chat[] = {
        "",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
        "\"\"},\"finish_reason\":null}]}",
        "",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Checking.\"},"
        "\"finish_reason\":null}]}",
        "",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
        "\"call_c1\",\"type\":\"function\",\"function\":{\"name\":\"exec_command\","
        "\"arguments\":\"\"}}]},\"finish_reason\":null}]}",
        "",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\"}}]},\"finish_reason\":null}]}",
        "",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "",
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,"
        "\"total_tokens\":12}}",
        "",
        "[DONE]",
    };
    static const char *const anth[] = {
        "message_start",
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,"
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}",
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"Checking.\"}}",
        "content_block_stop",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_1\",\"name\":\"exec_command\",\"input\":{}}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"cmd\\\":\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"\\\"ls\\\"}\"}}",
        "content_block_stop",
        "{\"type\":\"content_block_stop\",\"index\":1}",
        "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":"
        "null},\"usage\":{\"output_tokens\":7}}",
        "message_stop",
        "{\"type\":\"message_stop\"}",
    };
    struct {
        bl_family_t f;
        const char *const *evs;
        size_t n;
        const char *call_id;
        int64_t in;
    } cases[] = {{BL_FAM_CHAT, chat, BL_ARRAY_LEN(chat), "call_c1", 5},
                 {BL_FAM_ANTHROPIC, anth, BL_ARRAY_LEN(anth), "toolu_1", 10}};
    for (size_t c = 0; c < BL_ARRAY_LEN(cases); c++) {
        bl_buf_t out = {0};
        sse_t ev[64];
        size_t n;
        json_t *resp = pipe_stream(cases[c].f, cases[c].evs, cases[c].n, ev, &n, &out);
        assert_string_equal(ev[0].name, "response.created");
        assert_string_equal(ev[n - 1].name, "response.completed");
        assert_string_equal(jstr(resp, "model"), "client-model");
        assert_string_equal(jstr(resp, "output.0.content.0.text"), "Checking.");
        assert_string_equal(jstr(resp, "output.1.type"), "function_call");
        assert_string_equal(jstr(resp, "output.1.call_id"), cases[c].call_id);
        assert_string_equal(jstr(resp, "output.1.name"), "exec_command");
        assert_string_equal(jstr(resp, "output.1.arguments"), "{\"cmd\":\"ls\"}");
        assert_int_equal(json_integer_value(jget(resp, "usage.input_tokens")), cases[c].in);
        assert_int_equal(json_integer_value(jget(resp, "usage.output_tokens")), 7);
        json_decref(resp);
        sse_free(ev, n);
        bl_buf_free(&out);
    }
}

/* Arguments without a TOOL_START (a sloppy reader) still make a call item;
 * an empty answer still makes a whole, valid response. */
static void writer_tolerates_odd_event_orders(void **state)
{
    bl_xwrite_opts_t o = {.stream = false, .model = "m"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    assert_int_equal(
        wr(w, (bl_xev_t){.kind = BL_XEV_TOOL_ARGS, .index = 3, .text = "{}", .text_len = 2}, &out),
        0);
    assert_int_equal(out.len, 0); /* not streaming: nothing before the end */
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    json_t *resp = json_loadb(out.data, out.len, 0, NULL);
    assert_string_equal(jstr(resp, "output.0.type"), "function_call");
    assert_string_equal(jstr(resp, "output.0.arguments"), "{}");
    assert_int_equal(strncmp(jstr(resp, "output.0.call_id"), "call_", 5), 0);
    assert_string_equal(jstr(resp, "status"), "completed");
    json_decref(resp);
    bl_buf_free(&out);
    bl_xwrite_free(w);

    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    assert_int_equal(bl_xwrite_end(w, &out), 0);
    resp = json_loadb(out.data, out.len, 0, NULL);
    assert_int_equal(json_array_size(jget(resp, "output")), 0);
    assert_int_equal(json_integer_value(jget(resp, "usage.total_tokens")), 0);
    json_decref(resp);
    bl_buf_free(&out);
    bl_xwrite_free(w);
}

/* Random byte mutations of a request and of stream events (a fixed seed, so
 * a failure repeats): every result is a clean 0 / 400 / BL_EFORMAT. */
static int count_ev(void *ud, const bl_xev_t *ev)
{
    (*(int *)ud)++;
    return 0;
}

static void mutated_inputs_fail_cleanly(void **state)
{
    static const char junk[] = "{}[]\",:0123456789tfn\\ \xff\x80"
                               "aZ";
    uint64_t rs = 88172645463325252ULL;
    char buf[4096];
    int seen = 0;
    for (int it = 0; it < 4000; it++) {
        bool req = it % 2 == 0;
        const char *seed =
            req ? codex_req : stream_events[(size_t)it / 2 % BL_ARRAY_LEN(stream_events)];
        size_t n = strlen(seed);
        assert_true(n < sizeof buf - 8);
        memcpy(buf, seed, n);
        for (int m = 0; m < 3; m++) {
            rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
            size_t pos = (size_t)(rs % n);
            buf[pos] = junk[(rs >> 32) % (sizeof junk - 1)];
        }
        if (req) {
            bl_xreq_t *q = NULL;
            bl_xerr_t err;
            int rc = bl_xreq_parse(BL_FAM_RESPONSES, buf, n, &q, &err);
            assert_true(rc == 0 || rc == BL_EINVAL);
            if (!rc) {
                bl_buf_t out = {0};
                bl_xwrite_req_opts_t o = {.model = "x"};
                assert_int_equal(bl_xreq_write(q, BL_FAM_RESPONSES, &o, &out, &err), 0);
                bl_buf_free(&out);
            }
            bl_xreq_free(q);
        } else {
            bl_xread_t *r;
            assert_int_equal(bl_xread_new(BL_FAM_RESPONSES, &r), 0);
            int rc = bl_xread_event(r, (bl_str_t){"", 0}, (bl_str_t){buf, n}, count_ev, &seen);
            assert_true(rc == 0 || rc == BL_EFORMAT);
            rc = bl_xread_body(r, buf, n, count_ev, &seen);
            assert_true(rc == 0 || rc == BL_EFORMAT);
            bl_xread_free(r);
        }
    }
    assert_true(seen > 0);
}

/* A continuation that breaks again: a second writer resumes from the state
 * the first one left (what the client has seen through it). */
static void resumes_from_a_writer(void **state)
{
    bl_xwrite_opts_t o = {.stream = true, .model = "m"};
    bl_xwrite_t *w;
    bl_buf_t out = {0};
    assert_int_equal(bl_xwrite_new(BL_FAM_RESPONSES, &o, &w), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_START}, &out), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "ab", .text_len = 2}, &out), 0);
    bl_xstate_t st = w->st;
    assert_true(st.started);
    assert_int_equal(st.next_seq, 5); /* created, in_progress, added, part added, delta */
    assert_int_equal(st.open_index, 0);
    assert_int_equal(st.next_index, 1);
    assert_int_equal(strncmp(st.item_id, "msg_", 4), 0);
    assert_string_equal(st.id, w->id);
    bl_xwrite_free(w);
    bl_buf_reset(&out);

    assert_int_equal(bl_xwrite_resume(BL_FAM_RESPONSES, &o, &st, &w), 0);
    assert_int_equal(wr(w, (bl_xev_t){.kind = BL_XEV_TEXT, .text = "c", .text_len = 1}, &out), 0);
    sse_t ev[4];
    size_t n = split_sse(out.data, ev, 4);
    assert_int_equal(n, 1);
    assert_int_equal(json_integer_value(jget(ev[0].data, "sequence_number")), 5);
    assert_string_equal(jstr(ev[0].data, "item_id"), st.item_id);
    sse_free(ev, n);
    bl_buf_free(&out);
    bl_xwrite_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_codex_request),
        cmocka_unit_test(parses_other_fields),
        cmocka_unit_test(refuses_what_it_cannot_do),
        cmocka_unit_test(rejects_bad_shapes),
        cmocka_unit_test(survives_hostile_input),
        cmocka_unit_test(writes_codex_request_back),
        cmocka_unit_test(writes_prefix_and_drops_what_responses_lacks),
        cmocka_unit_test(drops_unresolvable_reasoning),
        cmocka_unit_test(writes_foreign_request),
        cmocka_unit_test(round_trips_through_other_families),
        cmocka_unit_test(reads_a_stream),
        cmocka_unit_test(reads_endings_and_errors),
        cmocka_unit_test(rejects_broken_streams),
        cmocka_unit_test(reads_a_body),
        cmocka_unit_test(writes_a_stream),
        cmocka_unit_test(writes_a_body),
        cmocka_unit_test(writes_incomplete_and_failed),
        cmocka_unit_test(resumes_a_cut_stream),
        cmocka_unit_test(resumes_from_a_writer),
        cmocka_unit_test(passes_reasoning_items),
        cmocka_unit_test(custom_tools_read_as_functions),
        cmocka_unit_test(custom_tool_calls_written_as_custom_items),
        cmocka_unit_test(reads_custom_tool_call_stream),
        cmocka_unit_test(answers_from_chat_and_anthropic_targets),
        cmocka_unit_test(writer_tolerates_odd_event_orders),
        cmocka_unit_test(mutated_inputs_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
