/*
 * The Anthropic Messages family of xlate, requests: Anthropic bodies read
 * (good, bad, hostile) and written (from Anthropic and from other families),
 * round trips through the other families, and the shared error helpers.
 * Fixtures follow the shapes of Anthropic's API reference.
 * Answers (streams and whole messages) are in test_anthropic_stream.c.
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

static bl_xreq_t *parse_ok(const char *body)
{
    bl_xreq_t *q = NULL;
    bl_xerr_t err;
    int rc = bl_xreq_parse(BL_FAM_ANTHROPIC, body, strlen(body), &q, &err);
    if (rc)
        fprintf(stderr, "parse: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_non_null(q);
    return q;
}

static void parse_bad(const char *body, const char *want_msg)
{
    bl_xreq_t *q = (bl_xreq_t *)1;
    bl_xerr_t err;
    assert_int_equal(bl_xreq_parse(BL_FAM_ANTHROPIC, body, strlen(body), &q, &err), BL_EINVAL);
    assert_null(q);
    assert_int_equal(err.status, 400);
    if (want_msg && !strstr(err.message, want_msg)) {
        fprintf(stderr, "got '%s', want '%s'\n", err.message, want_msg);
        fail();
    }
}

/* Write q for Anthropic and load the body as JSON. */
static json_t *write_json(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o)
{
    bl_buf_t b = {0};
    bl_xerr_t err;
    int rc = bl_xreq_write(q, BL_FAM_ANTHROPIC, o, &b, &err);
    if (rc)
        fprintf(stderr, "write: %s\n", err.message);
    assert_int_equal(rc, 0);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    bl_buf_free(&b);
    return j;
}

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
/* ---- requests: reading ------------------------------------------------------------ */

static const char FULL_REQ[] =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are terse.\"},"
    "{\"type\":\"text\",\"text\":\"Cite sources.\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"messages\":["
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in this image?\"},"
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
    "\"data\":\"iVBORw0KGgo=\"}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a.jpg\"}}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
    "\"signature\":\"sig\"},{\"type\":\"text\",\"text\":\"Let me check.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\","
    "\"input\":{\"location\":\"Paris\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_time\",\"input\":{}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01\","
    "\"content\":\"15 degrees\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_02\","
    "\"content\":[{\"type\":\"text\",\"text\":\"noon\"},{\"type\":\"image\",\"source\":"
    "{\"type\":\"base64\",\"media_type\":\"image/gif\",\"data\":\"R0lG\"}}],\"is_error\":true},"
    "{\"type\":\"text\",\"text\":\"Thanks\"}]}],"
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather now\",\"input_schema\":"
    "{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"}},"
    "\"required\":[\"location\"]}},{\"name\":\"get_time\",\"input_schema\":{\"type\":"
    "\"object\"}},{\"type\":\"web_search_20250305\",\"name\":\"web_search\",\"max_uses\":3}],"
    "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\","
    "\"disable_parallel_tool_use\":true},"
    "\"stop_sequences\":[\"END\",\"###\"],\"temperature\":0.5,\"top_k\":40,"
    "\"metadata\":{\"user_id\":\"u-42\"},\"stream\":true,"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}";

static void parses_a_full_request(void **state)
{
    (void)state;
    bl_xreq_t *q = parse_ok(FULL_REQ);
    assert_int_equal(q->family, BL_FAM_ANTHROPIC);
    assert_string_equal(q->model, "claude-sonnet-4-5");
    assert_int_equal(q->max_tokens, 1024);
    assert_int_equal(q->n_msgs, 5);
    /* system first, one part per block */
    assert_int_equal(q->msgs[0].role, BL_ROLE_SYSTEM);
    assert_int_equal(q->msgs[0].n_parts, 2);
    assert_string_equal(q->msgs[0].parts[1].text, "Cite sources.");
    /* user: text + two images */
    bl_xmsg_t *u = &q->msgs[1];
    assert_int_equal(u->role, BL_ROLE_USER);
    assert_int_equal(u->n_parts, 3);
    assert_int_equal(u->parts[1].kind, BL_PART_IMAGE);
    assert_string_equal(u->parts[1].url, "data:image/png;base64,iVBORw0KGgo=");
    assert_string_equal(u->parts[2].url, "https://example.com/a.jpg");
    /* assistant: opaque thinking, text, two tool calls */
    bl_xmsg_t *a = &q->msgs[2];
    assert_int_equal(a->role, BL_ROLE_ASSISTANT);
    assert_int_equal(a->n_parts, 4);
    assert_int_equal(a->parts[0].kind, BL_PART_OPAQUE);
    assert_int_equal(a->parts[0].family, BL_FAM_ANTHROPIC);
    assert_string_equal(json_string_value(json_object_get(a->parts[0].raw, "signature")), "sig");
    assert_int_equal(a->parts[2].kind, BL_PART_TOOL_CALL);
    assert_string_equal(a->parts[2].id, "toolu_01");
    assert_string_equal(a->parts[2].name, "get_weather");
    assert_string_equal(a->parts[2].text, "{\"location\":\"Paris\"}");
    assert_string_equal(a->parts[3].text, "{}");
    /* the results become a TOOL message, the text after them a USER message */
    bl_xmsg_t *t = &q->msgs[3];
    assert_int_equal(t->role, BL_ROLE_TOOL);
    assert_int_equal(t->n_parts, 2);
    assert_string_equal(t->parts[0].id, "toolu_01");
    assert_string_equal(t->parts[0].text, "15 degrees");
    assert_null(t->parts[0].raw);
    assert_false(t->parts[0].is_error);
    assert_string_equal(t->parts[1].text, "noon");
    assert_true(t->parts[1].is_error);
    assert_true(json_is_array(t->parts[1].raw));
    assert_int_equal(q->msgs[4].role, BL_ROLE_USER);
    assert_string_equal(q->msgs[4].parts[0].text, "Thanks");
    /* tools: two functions; the server tool is a hosted tool */
    assert_int_equal(q->n_tools, 2);
    assert_string_equal(q->tools[0].name, "get_weather");
    assert_string_equal(q->tools[0].description, "Weather now");
    assert_string_equal(sget(q->tools[0].parameters, "required.0"), "location");
    assert_null(q->tools[1].description);
    assert_string_equal(q->hosted_tool, "web_search_20250305");
    assert_int_equal(q->tool_choice, BL_TC_NAMED);
    assert_string_equal(q->tool_choice_name, "get_weather");
    assert_int_equal(q->parallel_tool_calls, 0);
    assert_int_equal(q->n_stop, 2);
    assert_string_equal(q->stop[1], "###");
    assert_true(fabs(q->temperature - 0.5) < 1e-9);
    assert_true(isnan(q->top_p));
    assert_int_equal(q->top_k, 40);
    assert_string_equal(q->user, "u-42");
    assert_true(q->stream);
    bl_xreq_free(q);
}

static void parses_string_content_and_choices(void **state)
{
    (void)state;
    bl_xreq_t *q =
        parse_ok("{\"model\":\"m\",\"max_tokens\":5,\"system\":\"Be kind.\","
                 "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},"
                 "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"},"
                 "{\"type\":\"text\",\"text\":\"B\"}]},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":"
                 "{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"doc\"}}]}],"
                 "\"tool_choice\":{\"type\":\"any\"},\"top_p\":0.9}");
    assert_int_equal(q->n_msgs, 6);
    assert_int_equal(q->msgs[0].role, BL_ROLE_SYSTEM);
    assert_string_equal(q->msgs[0].parts[0].text, "Be kind.");
    assert_string_equal(q->msgs[1].parts[0].text, "Hi");
    /* order kept: A, the result, B */
    assert_int_equal(q->msgs[2].role, BL_ROLE_USER);
    assert_int_equal(q->msgs[3].role, BL_ROLE_TOOL);
    assert_string_equal(q->msgs[3].parts[0].text, "");
    assert_int_equal(q->msgs[4].role, BL_ROLE_USER);
    assert_string_equal(q->msgs[4].parts[0].text, "B");
    assert_string_equal(q->msgs[5].parts[0].text, "doc");
    assert_int_equal(q->tool_choice, BL_TC_REQUIRED);
    assert_int_equal(q->parallel_tool_calls, -1);
    assert_true(fabs(q->top_p - 0.9) < 1e-9);
    assert_false(q->stream);
    bl_xreq_free(q);
}

/* Claude Code sends system messages among the turns: they stay where they are. */
static void accepts_system_messages_among_turns(void **state)
{
    (void)state;
    bl_xreq_t *q = parse_ok("{\"model\":\"m\",\"max_tokens\":5,\"messages\":["
                            "{\"role\":\"user\",\"content\":\"Hi\"},"
                            "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"S\"}]},"
                            "{\"role\":\"user\",\"content\":\"Go\"}]}");
    assert_int_equal(q->n_msgs, 3);
    assert_int_equal(q->msgs[1].role, BL_ROLE_SYSTEM);
    assert_string_equal(q->msgs[1].parts[0].text, "S");
    bl_xreq_free(q);
}

static void keeps_server_tool_blocks_for_anthropic(void **state)
{
    (void)state;
    bl_xreq_t *q = parse_ok(
        "{\"model\":\"m\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"news?\"}"
        ","
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\","
        "\"name\":\"web_search\",\"input\":{\"query\":\"news\"}},{\"type\":"
        "\"web_search_tool_result\",\"tool_use_id\":\"srvtoolu_1\",\"content\":[]},"
        "{\"type\":\"text\",\"text\":\"Here.\"}]},{\"role\":\"user\",\"content\":\"more\"}],"
        "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}");
    bl_xmsg_t *a = &q->msgs[1];
    assert_int_equal(a->n_parts, 3);
    assert_int_equal(a->parts[0].kind, BL_PART_OPAQUE);
    assert_int_equal(a->parts[1].kind, BL_PART_OPAQUE);
    assert_int_equal(a->parts[1].family, BL_FAM_ANTHROPIC);
    json_t *j = write_json(q, NULL);
    assert_string_equal(sget(j, "messages.1.content.0.type"), "server_tool_use");
    assert_string_equal(sget(j, "messages.1.content.1.type"), "web_search_tool_result");
    assert_string_equal(sget(j, "tools.0.type"), "web_search_20250305");
    json_decref(j);
    bl_xreq_free(q);
    /* in a user message it is refused */
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"server_tool_use\",\"id\":\"a\",\"name\":\"b\",\"input\":{}}]}]}",
              "messages.0.content.0.type");
}

static void refuses_bad_requests(void **state)
{
    (void)state;
    parse_bad("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "max_tokens: Field required");
    parse_bad("{\"max_tokens\":5,\"messages\":[]}", "model: Field required");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5}", "messages: Field required");
    parse_bad("{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[]}", "valid integer");
    parse_bad("{\"model\":\"m\",\"max_tokens\":0,\"messages\":[]}", "greater than or equal");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":{}}", "messages: Input should be");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"video\"}]}]}",
              "messages.0.content.1.type: Input tag 'video' found");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\","
              "\"content\":\"x\"}]}",
              "messages.0.role: Input should be 'user', 'assistant' or 'system'");
    /* Claude Code's system messages among the turns: text only */
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\","
              "\"content\":[{\"type\":\"image\",\"source\":{}}]}]}",
              "system messages may only hold text blocks");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":"
              "\"application/pdf\",\"data\":\"JVBE\"}}]}]}",
              "document");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\",\"input\":{}}]}]}",
              "only allowed in assistant");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
              "messages.0.content.0.source.type");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"x\"}}]}]}",
              "media_type: Field required");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"tools\":[{\"name\":\"x\"}]}",
              "tools.0.input_schema: Field required");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"tool_choice\":{\"type\":"
              "\"sometimes\"}}",
              "tool_choice.type");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"stop_sequences\":[1]}",
              "stop_sequences.0");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"stream\":\"yes\"}", "stream");
    parse_bad("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"system\":[{\"type\":"
              "\"image\"}]}",
              "system.0.type");
    parse_bad("not json", "not valid JSON");
    parse_bad("[1,2]", "JSON object");
    parse_bad("", NULL);
    parse_bad("{\"model\":\"m\xff\",\"max_tokens\":5,\"messages\":[]}", NULL); /* not UTF-8 */
}

static void survives_hostile_requests(void **state)
{
    (void)state;
    /* deep nesting */
    bl_buf_t b = {0};
    bl_buf_append_str(&b, "{\"model\":\"m\",\"max_tokens\":5,\"messages\":");
    for (int i = 0; i < 5000; i++)
        bl_buf_append_str(&b, "[");
    for (int i = 0; i < 5000; i++)
        bl_buf_append_str(&b, "]");
    bl_buf_append_str(&b, "}");
    bl_xreq_t *q = NULL;
    bl_xerr_t err;
    assert_int_equal(bl_xreq_parse(BL_FAM_ANTHROPIC, b.data, b.len, &q, &err), BL_EINVAL);
    /* many messages of every wrong shape */
    bl_buf_reset(&b);
    bl_buf_append_str(&b, "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[");
    for (int i = 0; i < 20000; i++)
        bl_buf_append_str(&b,
                          "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]},");
    bl_buf_append_str(&b,
                      "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":1}]}]}");
    assert_int_equal(bl_xreq_parse(BL_FAM_ANTHROPIC, b.data, b.len, &q, &err), BL_EINVAL);
    assert_non_null(strstr(err.message, "messages.20000.content.0"));
    const char *odd[] = {
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[null,1]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[1]}]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":7}]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":7}]}]}]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":{}}]}]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"image\",\"source\":[]}]}]}",
        "{\"model\":\"m\",\"max_tokens\":1e300,\"messages\":[]}",
        "{\"model\":7,\"max_tokens\":5,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"tools\":[7]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"temperature\":\"hot\"}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"model\":\"n\"}",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(odd); i++) {
        q = (bl_xreq_t *)1;
        assert_int_equal(bl_xreq_parse(BL_FAM_ANTHROPIC, odd[i], strlen(odd[i]), &q, &err),
                         BL_EINVAL);
        assert_null(q);
        assert_true(err.message[0] != '\0');
    }
    bl_buf_free(&b);
}

/* ---- requests: writing ------------------------------------------------------------ */

static void round_trips_its_own_requests(void **state)
{
    (void)state;
    bl_xreq_t *q = parse_ok(FULL_REQ);
    json_t *j = write_json(q, NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    bl_xreq_t *q2 = parse_ok(text);
    assert_string_equal(q2->model, q->model);
    assert_int_equal(q2->max_tokens, 1024);
    assert_int_equal(q2->n_msgs, q->n_msgs);
    for (size_t i = 0; i < q->n_msgs; i++) {
        assert_int_equal(q2->msgs[i].role, q->msgs[i].role);
        assert_int_equal(q2->msgs[i].n_parts, q->msgs[i].n_parts);
        for (size_t k = 0; k < q->msgs[i].n_parts; k++) {
            bl_xpart_t *a = &q->msgs[i].parts[k], *c = &q2->msgs[i].parts[k];
            assert_int_equal(a->kind, c->kind);
            if (a->text)
                assert_memory_equal(a->text, c->text, a->text_len);
            if (a->url)
                assert_string_equal(a->url, c->url);
            if (a->id)
                assert_string_equal(a->id, c->id);
            assert_int_equal(a->is_error, c->is_error);
        }
    }
    assert_int_equal(q2->n_tools, 2);
    assert_string_equal(q2->tools[0].description, "Weather now");
    assert_true(json_equal(q2->tools[0].parameters, q->tools[0].parameters));
    assert_int_equal(q2->tool_choice, BL_TC_NAMED);
    assert_int_equal(q2->parallel_tool_calls, 0);
    assert_int_equal(q2->n_stop, 2);
    assert_true(fabs(q2->temperature - 0.5) < 1e-9);
    assert_int_equal(q2->top_k, 40);
    assert_string_equal(q2->user, "u-42");
    assert_true(q2->stream);
    /* the server tool goes back as the client sent it */
    assert_string_equal(sget(j, "tools.2.type"), "web_search_20250305");
    assert_int_equal(json_integer_value(jget(j, "tools.2.max_uses")), 3);
    /* the image inside the tool result is still there */
    assert_string_equal(sget(j, "messages.2.content.1.content.1.source.media_type"), "image/gif");
    free(text);
    json_decref(j);
    bl_xreq_free(q);
    bl_xreq_free(q2);
}

/* A request as another family would leave it. */
static bl_xreq_t *chat_like(void)
{
    bl_xreq_t *q = bl_xreq_new(BL_FAM_CHAT);
    q->model = "gpt-4o";
    bl_xmsg_t *m = bl_xreq_add_msg(q, BL_ROLE_SYSTEM);
    bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TEXT);
    p->text = "Sys.";
    p->text_len = 4;
    m = bl_xreq_add_msg(q, BL_ROLE_USER);
    p = bl_xmsg_add_part(m, BL_PART_TEXT);
    p->text = "Hello";
    p->text_len = 5;
    m = bl_xreq_add_msg(q, BL_ROLE_USER); /* consecutive users merge */
    p = bl_xmsg_add_part(m, BL_PART_IMAGE);
    p->url = "data:image/jpeg;base64,/9j/";
    m = bl_xreq_add_msg(q, BL_ROLE_DEVELOPER); /* system in the middle */
    p = bl_xmsg_add_part(m, BL_PART_TEXT);
    p->text = "Dev.";
    p->text_len = 4;
    m = bl_xreq_add_msg(q, BL_ROLE_ASSISTANT);
    p = bl_xmsg_add_part(m, BL_PART_TEXT);
    p->text = "";
    p = bl_xmsg_add_part(m, BL_PART_TOOL_CALL);
    p->id = "call_1";
    p->name = "f";
    p->text = "{\"a\":1}";
    p->text_len = 7;
    p = bl_xmsg_add_part(m, BL_PART_TOOL_CALL);
    p->id = "call:2";
    p->name = "g";
    p->text = "{not json";
    p->text_len = 9;
    m = bl_xreq_add_msg(q, BL_ROLE_TOOL);
    p = bl_xmsg_add_part(m, BL_PART_TOOL_RESULT);
    p->id = "call_1";
    p->text = "one";
    p->text_len = 3;
    m = bl_xreq_add_msg(q, BL_ROLE_TOOL);
    p = bl_xmsg_add_part(m, BL_PART_TOOL_RESULT);
    p->id = "call:2";
    p->text = "two";
    p->text_len = 3;
    p->raw = json_pack("[{s:s, s:s}, {s:s, s:{s:s}}]", "type", "text", "text", "two", "type",
                       "image_url", "image_url", "url", "https://x.test/i.png");
    m = bl_xreq_add_msg(q, BL_ROLE_USER);
    p = bl_xmsg_add_part(m, BL_PART_TEXT);
    p->text = "Go on";
    p->text_len = 5;
    p = bl_xmsg_add_part(m, BL_PART_OPAQUE); /* a Responses reasoning item: dropped */
    p->family = BL_FAM_RESPONSES;
    p->raw = json_pack("{s:s}", "type", "reasoning");
    bl_xtool_t *t = bl_xreq_add_tool(q);
    t->name = "f";
    t = bl_xreq_add_tool(q);
    t->name = "g";
    t->description = "G";
    t->parameters = json_pack("{s:s}", "type", "object");
    q->tool_choice = BL_TC_REQUIRED;
    q->parallel_tool_calls = 0;
    q->temperature = 1.5;
    q->top_p = 0.5;
    q->presence_penalty = 1;
    q->seed = 7;
    q->has_seed = true;
    q->user = "end-user";
    q->format = BL_FMT_JSON_SCHEMA;
    q->format_schema = json_pack("{s:s}", "type", "object");
    return q;
}

static void writes_other_families_requests(void **state)
{
    (void)state;
    bl_xreq_t *q = chat_like();
    bl_xwrite_req_opts_t o = {.model = "claude-haiku-4-5", .max_tokens_default = 2000};
    json_t *j = write_json(q, &o);
    assert_string_equal(sget(j, "model"), "claude-haiku-4-5");
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 2000);
    /* every system/developer message, then the format instruction */
    json_t *sys = json_object_get(j, "system");
    assert_int_equal(json_array_size(sys), 3);
    assert_string_equal(sget(sys, "0.text"), "Sys.");
    assert_string_equal(sget(sys, "1.text"), "Dev.");
    assert_non_null(strstr(sget(sys, "2.text"), "Respond only with JSON that matches this JSON "
                                                "Schema: {\"type\":\"object\"}"));
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 3); /* user, assistant, user */
    assert_string_equal(sget(msgs, "0.role"), "user");
    assert_int_equal(json_array_size(jget(msgs, "0.content")), 2);
    assert_string_equal(sget(msgs, "0.content.1.source.type"), "base64");
    assert_string_equal(sget(msgs, "0.content.1.source.media_type"), "image/jpeg");
    assert_string_equal(sget(msgs, "0.content.1.source.data"), "/9j/");
    /* empty text dropped; tool calls with parsed input, {} for bad JSON, ids cleaned */
    assert_string_equal(sget(msgs, "1.role"), "assistant");
    assert_int_equal(json_array_size(jget(msgs, "1.content")), 2);
    assert_string_equal(sget(msgs, "1.content.0.type"), "tool_use");
    assert_int_equal(json_integer_value(jget(msgs, "1.content.0.input.a")), 1);
    assert_string_equal(sget(msgs, "1.content.1.id"), "call_2");
    assert_int_equal(json_object_size(jget(msgs, "1.content.1.input")), 0);
    /* both results and the next user text in one user message, results first */
    assert_string_equal(sget(msgs, "2.role"), "user");
    json_t *c = jget(msgs, "2.content");
    assert_int_equal(json_array_size(c), 3);
    assert_string_equal(sget(c, "0.tool_use_id"), "call_1");
    assert_string_equal(sget(c, "0.content"), "one");
    assert_string_equal(sget(c, "1.tool_use_id"), "call_2");
    assert_string_equal(sget(c, "1.content.0.text"), "two");
    assert_string_equal(sget(c, "1.content.1.source.url"), "https://x.test/i.png");
    assert_string_equal(sget(c, "2.text"), "Go on");
    /* tools, choice, sampling */
    assert_string_equal(sget(j, "tools.0.input_schema.type"), "object");
    assert_string_equal(sget(j, "tools.1.description"), "G");
    assert_string_equal(sget(j, "tool_choice.type"), "any");
    assert_true(json_is_true(jget(j, "tool_choice.disable_parallel_tool_use")));
    assert_true(fabs(json_number_value(json_object_get(j, "temperature")) - 1.0) < 1e-9);
    assert_null(json_object_get(j, "top_p"));
    assert_null(json_object_get(j, "seed"));
    assert_null(json_object_get(j, "presence_penalty"));
    assert_string_equal(sget(j, "metadata.user_id"), "end-user");
    assert_null(json_object_get(j, "stream"));
    json_decref(j);
    bl_xreq_free(q);
}

static void writes_the_prefix_as_a_prefill(void **state)
{
    (void)state;
    bl_xreq_t *q = parse_ok("{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"Count\"}]}");
    bl_xwrite_req_opts_t o = {.assistant_prefix = "1, 2, 3, \n",
                              .assistant_prefix_len = 10,
                              .continue_instruction = true};
    json_t *j = write_json(q, &o);
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 2); /* no instruction for Anthropic */
    assert_string_equal(sget(msgs, "1.role"), "assistant");
    assert_string_equal(sget(msgs, "1.content.0.text"), "1, 2, 3,");
    assert_string_equal(sget(j, "model"), "m");
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 9);
    json_decref(j);
    /* with no max_tokens at all the default is 4096 */
    q->max_tokens = -1;
    j = write_json(q, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 4096);
    json_decref(j);
    bl_xreq_free(q);
}

static void refuses_what_anthropic_cannot_say(void **state)
{
    (void)state;
    bl_buf_t b = {0};
    bl_xerr_t err;
    bl_xreq_t *q = chat_like();
    q->msgs[2].parts[0].url = "ftp://x/y.png";
    assert_int_equal(bl_xreq_write(q, BL_FAM_ANTHROPIC, NULL, &b, &err), BL_EINVAL);
    assert_non_null(strstr(err.message, "messages[2].content[0]"));
    bl_xreq_free(q);
    q = chat_like();
    q->previous_response_id = "resp_1";
    assert_int_equal(bl_xreq_write(q, BL_FAM_ANTHROPIC, NULL, &b, &err), BL_EINVAL);
    assert_string_equal(err.param, "previous_response_id");
    q->previous_response_id = NULL;
    /* another family's hosted tool: forced, refused; offered, left out */
    q->hosted_tool = "code_interpreter";
    q->hosted_tool_required = true;
    assert_int_equal(bl_xreq_write(q, BL_FAM_ANTHROPIC, NULL, &b, &err), BL_EINVAL);
    assert_non_null(strstr(err.message, "code_interpreter"));
    q->hosted_tool = "web_search_preview";
    q->hosted_tool_required = false;
    json_t *j = write_json(q, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "tools")), 2);
    for (size_t i = 0; i < 2; i++)
        assert_null(json_object_get(json_array_get(json_object_get(j, "tools"), i), "type"));
    json_decref(j);
    /* calls in the history but no tools offered: defined, and none chosen */
    q->hosted_tool = NULL;
    q->n_tools = 0;
    j = write_json(q, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "tools")), 2);
    assert_string_equal(sget(j, "tools.1.name"), "g");
    assert_string_equal(sget(j, "tools.1.input_schema.type"), "object");
    assert_string_equal(sget(j, "tool_choice.type"), "none");
    json_decref(j);
    q->n_tools = 2;
    bl_xreq_free(q);
    assert_int_equal(b.len, 0);
    bl_buf_free(&b);
}

static void error_helpers_speak_anthropic(void **state)
{
    (void)state;
    bl_buf_t b = {0};
    assert_int_equal(bl_xerr_body(BL_FAM_ANTHROPIC, BL_XERR_NOT_FOUND, "no model", NULL, NULL, &b),
                     0);
    assert_string_equal(b.data, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                                "\"message\":\"no model\"}}");
    bl_buf_reset(&b);
    int status = 503;
    const char *oai = "{\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}";
    assert_int_equal(
        bl_xerr_translate(BL_FAM_CHAT, BL_FAM_ANTHROPIC, &status, oai, strlen(oai), &b), 0);
    assert_int_equal(status, 529);
    assert_non_null(strstr(b.data, "\"overloaded_error\""));
    assert_non_null(strstr(b.data, "\"busy\""));
    bl_buf_reset(&b);
    status = 529;
    const char *an = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                     "\"Overloaded\"}}";
    assert_int_equal(bl_xerr_translate(BL_FAM_ANTHROPIC, BL_FAM_CHAT, &status, an, strlen(an), &b),
                     0);
    assert_int_equal(status, 503);
    assert_int_equal(bl_xerr_status(BL_FAM_ANTHROPIC, BL_XERR_OVERLOADED), 529);
    bl_buf_free(&b);
}

/* ---- round trips through the other families ------------------------------------ */

static const char CROSS_REQ[] =
    "{\"model\":\"claude\",\"max_tokens\":300,\"system\":\"Be brief.\",\"messages\":["
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look:\"},{\"type\":\"image\","
    "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBO\"}}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Calling.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"k\":\"v\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"g\",\"input\":{}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
    "\"content\":\"r1\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":"
    "\"r2\"}]},{\"role\":\"user\",\"content\":\"And now?\"}],"
    "\"tools\":[{\"name\":\"f\",\"description\":\"F\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"k\":{\"type\":\"string\"}}}},{\"name\":\"g\",\"input_schema\":"
    "{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"auto\"},"
    "\"stop_sequences\":[\"STOP\"],\"temperature\":0.3,\"metadata\":{\"user_id\":\"u1\"},"
    "\"stream\":true}";

static void same_parts(const bl_xreq_t *a, const bl_xreq_t *b)
{
    /* compare the messages, skipping empty ones */
    size_t i = 0, k = 0;
    for (;;) {
        while (i < a->n_msgs && !a->msgs[i].n_parts)
            i++;
        while (k < b->n_msgs && !b->msgs[k].n_parts)
            k++;
        if (i == a->n_msgs || k == b->n_msgs)
            break;
        const bl_xmsg_t *x = &a->msgs[i++], *y = &b->msgs[k++];
        assert_int_equal(x->role, y->role);
        size_t n = 0;
        for (size_t j = 0, l = 0; j < x->n_parts; j++) {
            if (x->parts[j].kind == BL_PART_OPAQUE)
                continue; /* only Anthropic keeps these */
            assert_true(l < y->n_parts);
            const bl_xpart_t *p = &x->parts[j], *q = &y->parts[l++];
            assert_int_equal(p->kind, q->kind);
            if (p->kind == BL_PART_TOOL_CALL) {
                json_t *ja = json_loadb(p->text, p->text_len, 0, NULL);
                json_t *jb = json_loadb(q->text, q->text_len, 0, NULL);
                assert_true(json_equal(ja, jb));
                json_decref(ja);
                json_decref(jb);
            } else if (p->text) {
                assert_int_equal(p->text_len, q->text_len);
                assert_memory_equal(p->text, q->text, p->text_len);
            }
            if (p->id)
                assert_string_equal(p->id, q->id);
            if (p->url)
                assert_string_equal(p->url, q->url);
            n = l;
        }
        assert_int_equal(n, y->n_parts);
    }
    assert_int_equal(i, a->n_msgs);
    assert_int_equal(k, b->n_msgs);
}

static void round_trip_through(bl_family_t f)
{
    bl_xreq_t *q = parse_ok(CROSS_REQ);
    bl_buf_t b = {0};
    bl_xerr_t err;
    bl_xwrite_req_opts_t none = {0};
    int rc = bl_xreq_write(q, f, &none, &b, &err);
    if (rc)
        fprintf(stderr, "%s write: %s\n", bl_family_name(f), err.message);
    assert_int_equal(rc, 0);
    bl_xreq_t *mid = NULL;
    rc = bl_xreq_parse(f, b.data, b.len, &mid, &err);
    if (rc)
        fprintf(stderr, "%s parse: %s\n%s\n", bl_family_name(f), err.message, b.data);
    assert_int_equal(rc, 0);
    same_parts(q, mid);
    assert_int_equal(mid->n_tools, 2);
    assert_true(json_equal(mid->tools[0].parameters, q->tools[0].parameters));
    assert_int_equal(mid->n_stop, f == BL_FAM_RESPONSES ? 0 : 1); /* Responses has no stop */
    assert_true(mid->stream);
    /* and back to Anthropic */
    bl_buf_reset(&b);
    bl_xwrite_req_opts_t o = {.max_tokens_default = 300};
    assert_int_equal(bl_xreq_write(mid, BL_FAM_ANTHROPIC, &o, &b, &err), 0);
    bl_xreq_t *back = parse_ok(b.data);
    same_parts(q, back);
    assert_int_equal(back->max_tokens, 300);
    assert_true(fabs(back->temperature - 0.3) < 1e-9);
    assert_string_equal(back->user, "u1");
    assert_int_equal(back->tool_choice, BL_TC_AUTO);
    bl_xreq_free(back);
    bl_xreq_free(mid);
    bl_xreq_free(q);
    bl_buf_free(&b);
}

static void round_trips_through_chat(void **state)
{
    (void)state;
    round_trip_through(BL_FAM_CHAT);
}

static void round_trips_through_responses(void **state)
{
    (void)state;
    round_trip_through(BL_FAM_RESPONSES);
}

/* A stream of another family written for an Anthropic client. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_a_full_request),
        cmocka_unit_test(parses_string_content_and_choices),
        cmocka_unit_test(accepts_system_messages_among_turns),
        cmocka_unit_test(keeps_server_tool_blocks_for_anthropic),
        cmocka_unit_test(refuses_bad_requests),
        cmocka_unit_test(survives_hostile_requests),
        cmocka_unit_test(round_trips_its_own_requests),
        cmocka_unit_test(writes_other_families_requests),
        cmocka_unit_test(writes_the_prefix_as_a_prefill),
        cmocka_unit_test(refuses_what_anthropic_cannot_say),
        cmocka_unit_test(error_helpers_speak_anthropic),
        cmocka_unit_test(round_trips_through_chat),
        cmocka_unit_test(round_trips_through_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
