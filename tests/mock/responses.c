/*
 * POST /v1/responses in the shapes of OpenAI's Responses API, so the
 * gateway's translation to and from that family can be tested against the
 * mock. Same reply text, faults and tool script as the other endpoints.
 *
 * Not streamed: one Response object ("object": "response", status
 * "completed") whose output is one message item with one output_text part,
 * or the scripted function_call item; request fields such as instructions,
 * tools, tool_choice, temperature, top_p, text are echoed as the API does.
 *
 * Streamed: "event: TYPE" + "data: {"type": TYPE, "sequence_number": N...}"
 * with N counting from 0:
 *   text: response.created, response.in_progress, response.output_item.added,
 *         response.content_part.added, response.output_text.delta (one per
 *         piece), response.output_text.done, response.content_part.done,
 *         response.output_item.done, response.completed
 *   tool: response.created, response.in_progress, response.output_item.added,
 *         response.function_call_arguments.delta (one per piece),
 *         response.function_call_arguments.done, response.output_item.done,
 *         response.completed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static bl_buf_t g_item; /* the output item as it is when completed */
static bl_buf_t g_obj;  /* one whole Response object */
static unsigned g_seq;  /* sequence_number of the next event */
static const char *g_type;

/* ,"key":<the request's value, or dflt> */
static void echo(bl_buf_t *b, json_t *root, const char *key, const char *dflt)
{
    json_t *v = json_object_get(root, key);
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    bl_buf_printf(b, ",\"%s\":%s", key, s ? s : dflt);
    free(s);
}

static void usage(bl_buf_t *b, const resp_info_t *ri, size_t out)
{
    bl_buf_printf(b,
                  ",\"usage\":{\"input_tokens\":%u,\"input_tokens_details\":{\"cached_tokens\":0},"
                  "\"output_tokens\":%zu,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                  "\"total_tokens\":%zu}",
                  ri->input_tokens, out, ri->input_tokens + out);
}

/* The Response object into g_obj: in progress (no output, no usage) or
 * completed (output = g_item). */
static void response_obj(json_t *root, const resp_info_t *ri, bool done, bool tool)
{
    bl_buf_t *b = &g_obj;
    bl_buf_reset(b);
    bl_buf_printf(b,
                  "{\"id\":\"resp_mock%llu\",\"object\":\"response\",\"created_at\":%lld,"
                  "\"status\":\"%s\",\"background\":false,\"error\":null,"
                  "\"incomplete_details\":null",
                  (unsigned long long)ri->id, ri->created, done ? "completed" : "in_progress");
    echo(b, root, "instructions", "null");
    echo(b, root, "max_output_tokens", "null");
    bl_buf_printf(b, ",\"model\":\"%s\",\"output\":[", g_model.data);
    if (done)
        bl_buf_append(b, g_item.data, g_item.len);
    bl_buf_append_str(b, "]");
    echo(b, root, "parallel_tool_calls", "true");
    echo(b, root, "previous_response_id", "null");
    echo(b, root, "reasoning", "{\"effort\":null,\"summary\":null}");
    echo(b, root, "store", "true");
    echo(b, root, "temperature", "1.0");
    echo(b, root, "text", "{\"format\":{\"type\":\"text\"}}");
    echo(b, root, "tool_choice", "\"auto\"");
    echo(b, root, "tools", "[]");
    echo(b, root, "top_p", "1.0");
    echo(b, root, "truncation", "\"disabled\"");
    if (done)
        usage(b, ri, tool ? g_n_arg_pieces : g_n_pieces);
    else
        bl_buf_append_str(b, ",\"usage\":null");
    echo(b, root, "user", "null");
    echo(b, root, "metadata", "{}");
    bl_buf_append_str(b, "}");
}

/* An output item into g_item, completed or as first announced. */
static void message_item(const resp_info_t *ri, bool done)
{
    bl_buf_reset(&g_item);
    bl_buf_printf(&g_item,
                  "{\"type\":\"message\",\"id\":\"msg_mock%llu\",\"status\":\"%s\","
                  "\"role\":\"assistant\",\"content\":[",
                  (unsigned long long)ri->id, done ? "completed" : "in_progress");
    if (done) {
        bl_buf_append_str(&g_item, "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],"
                                   "\"text\":\"");
        json_escape(&g_item, g_text.data, g_text.len);
        bl_buf_append_str(&g_item, "\"}");
    }
    bl_buf_append_str(&g_item, "]}");
}

static void call_item(const resp_info_t *ri, bool done)
{
    bl_buf_reset(&g_item);
    bl_buf_printf(&g_item,
                  "{\"type\":\"function_call\",\"id\":\"fc_mock%llu\","
                  "\"call_id\":\"call_mock%llu\",\"name\":\"%s\",\"arguments\":\"",
                  (unsigned long long)ri->id, (unsigned long long)ri->id, g_tool_name.data);
    if (done)
        json_escape(&g_item, g_tool_args.data, g_tool_args.len);
    bl_buf_printf(&g_item, "\",\"status\":\"%s\"}", done ? "completed" : "in_progress");
}

/* Events: ev_begin(type), append fields ",...", ev_end(c). */
static void ev_begin(const char *type)
{
    g_type = type;
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev, "{\"type\":\"%s\",\"sequence_number\":%u", type, g_seq++);
}

static void ev_end(conn_t *c)
{
    bl_buf_append_str(&g_ev, "}");
    sse_event_named(c, g_type, g_ev.data, g_ev.len);
}

static void ev_response(conn_t *c, const char *type, json_t *root, const resp_info_t *ri, bool done,
                        bool tool)
{
    response_obj(root, ri, done, tool);
    ev_begin(type);
    bl_buf_append_str(&g_ev, ",\"response\":");
    bl_buf_append(&g_ev, g_obj.data, g_obj.len);
    ev_end(c);
}

static void ev_item(conn_t *c, const char *type)
{
    ev_begin(type);
    bl_buf_append_str(&g_ev, ",\"output_index\":0,\"item\":");
    bl_buf_append(&g_ev, g_item.data, g_item.len);
    ev_end(c);
}

/* ,"item_id":"msg_mockN","output_index":0,"content_index":0 */
static void text_place(const resp_info_t *ri)
{
    bl_buf_printf(&g_ev, ",\"item_id\":\"msg_mock%llu\",\"output_index\":0,\"content_index\":0",
                  (unsigned long long)ri->id);
}

static void stream_text(conn_t *c, const resp_info_t *ri, bool malformed)
{
    message_item(ri, false);
    ev_item(c, "response.output_item.added");
    ev_begin("response.content_part.added");
    text_place(ri);
    bl_buf_append_str(&g_ev, ",\"part\":{\"type\":\"output_text\",\"annotations\":[],"
                             "\"logprobs\":[],\"text\":\"\"}");
    ev_end(c);
    if (malformed) {
        bl_buf_reset(&g_ev);
        bl_buf_append_str(&g_ev, "{\"type\":\"response.output_text.delta\", this is not json");
        sse_event_named(c, "response.output_text.delta", g_ev.data, g_ev.len);
        return;
    }
    size_t from = 0;
    for (size_t j = 0; j < g_n_pieces; j++) {
        ev_begin("response.output_text.delta");
        text_place(ri);
        bl_buf_append_str(&g_ev, ",\"delta\":\"");
        json_escape(&g_ev, g_text.data + from, g_piece_end[j] - from);
        bl_buf_append_str(&g_ev, "\",\"logprobs\":[]");
        ev_end(c);
        from = g_piece_end[j];
    }
    ev_begin("response.output_text.done");
    text_place(ri);
    bl_buf_append_str(&g_ev, ",\"text\":\"");
    json_escape(&g_ev, g_text.data, g_text.len);
    bl_buf_append_str(&g_ev, "\",\"logprobs\":[]");
    ev_end(c);
    ev_begin("response.content_part.done");
    text_place(ri);
    bl_buf_append_str(&g_ev, ",\"part\":{\"type\":\"output_text\",\"annotations\":[],"
                             "\"logprobs\":[],\"text\":\"");
    json_escape(&g_ev, g_text.data, g_text.len);
    bl_buf_append_str(&g_ev, "\"}");
    ev_end(c);
    message_item(ri, true);
    ev_item(c, "response.output_item.done");
}

static void stream_call(conn_t *c, const resp_info_t *ri)
{
    call_item(ri, false);
    ev_item(c, "response.output_item.added");
    size_t from = 0;
    for (size_t j = 0; j < g_n_arg_pieces; j++) {
        ev_begin("response.function_call_arguments.delta");
        bl_buf_printf(&g_ev, ",\"item_id\":\"fc_mock%llu\",\"output_index\":0,\"delta\":\"",
                      (unsigned long long)ri->id);
        json_escape(&g_ev, g_tool_args.data + from, g_arg_end[j] - from);
        bl_buf_append_str(&g_ev, "\"");
        ev_end(c);
        from = g_arg_end[j];
    }
    ev_begin("response.function_call_arguments.done");
    bl_buf_printf(&g_ev,
                  ",\"item_id\":\"fc_mock%llu\",\"output_index\":0,\"name\":\"%s\","
                  "\"arguments\":\"",
                  (unsigned long long)ri->id, g_tool_name.data);
    json_escape(&g_ev, g_tool_args.data, g_tool_args.len);
    bl_buf_append_str(&g_ev, "\"");
    ev_end(c);
    call_item(ri, true);
    ev_item(c, "response.output_item.done");
}

void responses_render(conn_t *c, json_t *root, const resp_info_t *ri, bool malformed, bool tool)
{
    if (!ri->stream) {
        if (malformed) {
            const char *bad = "{\"id\":\"resp_mock\",\"object\":\"response\",\"output\":[";
            send_body(c, 200, "application/json", NULL, bad, strlen(bad));
            return;
        }
        if (tool)
            call_item(ri, true);
        else
            message_item(ri, true);
        response_obj(root, ri, true, tool);
        send_body(c, 200, "application/json", NULL, g_obj.data, g_obj.len);
        return;
    }
    g_seq = 0;
    sse_head(c);
    ev_response(c, "response.created", root, ri, false, tool);
    ev_response(c, "response.in_progress", root, ri, false, tool);
    if (tool) {
        stream_call(c, ri);
    } else {
        stream_text(c, ri, malformed);
        if (malformed) {
            sse_last_chunk(c);
            return;
        }
    }
    /* g_item holds the completed item now */
    ev_response(c, "response.completed", root, ri, true, tool);
    sse_last_chunk(c);
}

void responses_free(void)
{
    bl_buf_free(&g_item);
    bl_buf_free(&g_obj);
}
