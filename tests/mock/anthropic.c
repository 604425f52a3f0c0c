/*
 * POST /v1/messages in the shapes of Anthropic's Messages API, so the
 * gateway's Anthropic provider type can be tested against the mock. Same
 * reply text and faults as the OpenAI endpoints.
 *
 * Stream: message_start, content_block_start, ping, one content_block_delta
 * per text piece, content_block_stop, message_delta (stop_reason, usage),
 * message_stop; each as "event: NAME" + "data: JSON".
 *
 * A scripted tool call (tools.c) is one tool_use block with stop_reason
 * "tool_use"; streamed as content_block_start (tool_use, input {}), one
 * input_json_delta per argument piece, content_block_stop.
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

static void event(conn_t *c, const char *name)
{
    sse_event_named(c, name, g_ev.data, g_ev.len);
}

void anthropic_error(conn_t *c, int code, const char *message, const char *retry_after)
{
    const char *type = code == 400   ? "invalid_request_error"
                       : code == 401 ? "authentication_error"
                       : code == 403 ? "permission_error"
                       : code == 404 ? "not_found_error"
                       : code == 413 ? "request_too_large"
                       : code == 429 ? "rate_limit_error"
                       : code == 529 ? "overloaded_error"
                                     : "api_error";
    char extra[128] = "";
    if (retry_after && *retry_after)
        snprintf(extra, sizeof extra, "Retry-After: %s\r\n", retry_after);
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"", type);
    json_escape(&g_ev, message, strlen(message));
    bl_buf_append_str(&g_ev, "\"}}");
    send_body(c, code, "application/json", extra, g_ev.data, g_ev.len);
}

static void tool_use(conn_t *c, bool stream, unsigned input_tokens, uint64_t id)
{
    if (!stream) {
        bl_buf_reset(&g_ev);
        bl_buf_printf(&g_ev,
                      "{\"id\":\"msg_mock%llu\",\"type\":\"message\",\"role\":\"assistant\","
                      "\"model\":\"%s\",\"content\":[{\"type\":\"tool_use\","
                      "\"id\":\"toolu_mock%llu\",\"name\":\"%s\",\"input\":",
                      (unsigned long long)id, g_model.data, (unsigned long long)id,
                      g_tool_name.data);
        bl_buf_append(&g_ev, g_tool_args.data, g_tool_args.len); /* a JSON object */
        bl_buf_printf(&g_ev,
                      "}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
                      "\"usage\":{\"input_tokens\":%u,\"output_tokens\":%zu}}",
                      input_tokens, g_n_arg_pieces);
        send_body(c, 200, "application/json", NULL, g_ev.data, g_ev.len);
        return;
    }
    sse_head(c);
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev,
                  "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock%llu\","
                  "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"%s\",\"content\":[],"
                  "\"stop_reason\":null,\"stop_sequence\":null,"
                  "\"usage\":{\"input_tokens\":%u,\"output_tokens\":1}}}",
                  (unsigned long long)id, g_model.data, input_tokens);
    event(c, "message_start");
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev,
                  "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                  "{\"type\":\"tool_use\",\"id\":\"toolu_mock%llu\",\"name\":\"%s\",\"input\":{}}}",
                  (unsigned long long)id, g_tool_name.data);
    event(c, "content_block_start");
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"ping\"}");
    event(c, "ping");
    size_t from = 0;
    for (size_t j = 0; j < g_n_arg_pieces; j++) {
        bl_buf_reset(&g_ev);
        bl_buf_append_str(&g_ev, "{\"type\":\"content_block_delta\",\"index\":0,"
                                 "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"");
        json_escape(&g_ev, g_tool_args.data + from, g_arg_end[j] - from);
        bl_buf_append_str(&g_ev, "\"}}");
        event(c, "content_block_delta");
        from = g_arg_end[j];
    }
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"content_block_stop\",\"index\":0}");
    event(c, "content_block_stop");
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev,
                  "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                  "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%zu}}",
                  g_n_arg_pieces);
    event(c, "message_delta");
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"message_stop\"}");
    event(c, "message_stop");
    sse_last_chunk(c);
}

void anthropic_messages(conn_t *c, bool stream, unsigned input_tokens, uint64_t id, bool malformed,
                        bool tool)
{
    if (tool) {
        tool_use(c, stream, input_tokens, id);
        return;
    }
    if (!stream) {
        if (malformed) {
            const char *bad = "{\"id\":\"msg_mock\",\"type\":\"message\",\"content\":[";
            send_body(c, 200, "application/json", NULL, bad, strlen(bad));
            return;
        }
        bl_buf_reset(&g_ev);
        bl_buf_printf(&g_ev,
                      "{\"id\":\"msg_mock%llu\",\"type\":\"message\",\"role\":\"assistant\","
                      "\"model\":\"%s\",\"content\":[{\"type\":\"text\",\"text\":\"",
                      (unsigned long long)id, g_model.data);
        json_escape(&g_ev, g_text.data, g_text.len);
        bl_buf_printf(&g_ev,
                      "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
                      "\"usage\":{\"input_tokens\":%u,\"output_tokens\":%zu}}",
                      input_tokens, g_n_pieces);
        send_body(c, 200, "application/json", NULL, g_ev.data, g_ev.len);
        return;
    }
    sse_head(c);
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev,
                  "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock%llu\","
                  "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"%s\",\"content\":[],"
                  "\"stop_reason\":null,\"stop_sequence\":null,"
                  "\"usage\":{\"input_tokens\":%u,\"output_tokens\":1}}}",
                  (unsigned long long)id, g_model.data, input_tokens);
    event(c, "message_start");
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"content_block_start\",\"index\":0,"
                             "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    event(c, "content_block_start");
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"ping\"}");
    event(c, "ping");
    if (malformed) {
        bl_buf_reset(&g_ev);
        bl_buf_append_str(&g_ev, "{\"type\":\"content_block_delta\", this is not json");
        event(c, "content_block_delta");
    } else {
        size_t from = 0;
        for (size_t j = 0; j < g_n_pieces; j++) {
            bl_buf_reset(&g_ev);
            bl_buf_append_str(&g_ev, "{\"type\":\"content_block_delta\",\"index\":0,"
                                     "\"delta\":{\"type\":\"text_delta\",\"text\":\"");
            json_escape(&g_ev, g_text.data + from, g_piece_end[j] - from);
            bl_buf_append_str(&g_ev, "\"}}");
            event(c, "content_block_delta");
            from = g_piece_end[j];
        }
    }
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"content_block_stop\",\"index\":0}");
    event(c, "content_block_stop");
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev,
                  "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                  "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%zu}}",
                  g_n_pieces);
    event(c, "message_delta");
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"type\":\"message_stop\"}");
    event(c, "message_stop");
    sse_last_chunk(c);
}
