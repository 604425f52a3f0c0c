/*
 * The mock's endpoints: OpenAI-shaped chat completions (text, or the scripted
 * tool call of tools.c), completions, embeddings and models, the dispatch to
 * /v1/messages (anthropic.c) and /v1/responses (responses.c), the /_mock/...
 * control endpoints, and the fault plans applied to all of them.
 *
 * The ok path renders straight into the connection's reused output buffer
 * with printf-style appends; jansson is used only to read request bodies and
 * for the control endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "mock.h"

/* Shared scratch for the request being rendered (the loop is single-threaded
 * and rendering never yields). */
bl_buf_t g_text; /* reply text, raw */
size_t g_piece_end[MAX_CHUNKS];
size_t g_n_pieces;
bl_buf_t g_model; /* requested model, JSON-escaped */
bl_buf_t g_ev;    /* one event's JSON */

typedef struct {
    bool stream;
    bool include_usage;
    unsigned prompt_tokens;
    uint64_t id;
    long long created;
} req_info_t;

void json_escape(bl_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (bl_buf_reserve(b, n))
        return;
    b->data[b->len] = 0; /* stays a C string even when n == 0 */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            bl_buf_append(b, e, 2);
        } else if (ch == '\n') {
            bl_buf_append(b, "\\n", 2);
        } else if (ch == '\r') {
            bl_buf_append(b, "\\r", 2);
        } else if (ch == '\t') {
            bl_buf_append(b, "\\t", 2);
        } else if (ch < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            bl_buf_append(b, e, 6);
        } else {
            bl_buf_append(b, s + i, 1);
        }
    }
}

static const char *reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

void plan_reset(conn_t *c)
{
    bl_buf_reset(&c->out);
    c->n_segs = 0;
    c->delay_ms = c->first_byte_ms = c->gap_ms = 0;
    c->stop_after = -1;
    c->end = END_NONE;
}

static void seg_mark(conn_t *c)
{
    if (c->n_segs < MOCK_MAX_SEGS)
        c->seg_end[c->n_segs++] = c->out.len;
    else
        c->seg_end[c->n_segs - 1] = c->out.len; /* merge into the last */
}

static void head(conn_t *c, int code, const char *ctype, const char *extra)
{
    bl_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nx-mock-name: %s\r\n%s%s", code,
                  reason(code), ctype, g_mock.name, extra ? extra : "",
                  c->keep_alive ? "" : "Connection: close\r\n");
}

/* A complete non-streamed response: headers segment + body segment. */
void send_body(conn_t *c, int code, const char *ctype, const char *extra, const char *body,
               size_t n)
{
    head(c, code, ctype, extra);
    bl_buf_printf(&c->out, "Content-Length: %zu\r\n\r\n", n);
    seg_mark(c);
    bl_buf_append(&c->out, body, n);
    seg_mark(c);
}

static void send_error(conn_t *c, int code, const char *message, const char *retry_after)
{
    const char *type = code == 429   ? "requests"
                       : code >= 500 ? "server_error"
                                     : "invalid_request_error";
    const char *ecode = code == 429   ? "\"rate_limit_exceeded\""
                        : code == 401 ? "\"invalid_api_key\""
                                      : "null";
    char extra[128] = "";
    if (retry_after && *retry_after)
        snprintf(extra, sizeof extra, "Retry-After: %s\r\n", retry_after);
    bl_buf_reset(&g_ev);
    bl_buf_append_str(&g_ev, "{\"error\":{\"message\":\"");
    json_escape(&g_ev, message, strlen(message));
    bl_buf_printf(&g_ev, "\",\"type\":\"%s\",\"param\":null,\"code\":%s}}", type, ecode);
    send_body(c, code, "application/json", extra, g_ev.data, g_ev.len);
}

/* One SSE event as one HTTP chunk: data: <g_ev>\n\n */
void sse_event_named(conn_t *c, const char *name, const char *data, size_t n)
{
    if (name)
        bl_buf_printf(&c->out, "%zx\r\nevent: %s\ndata: ", n + 16 + strlen(name), name);
    else
        bl_buf_printf(&c->out, "%zx\r\ndata: ", n + 8);
    bl_buf_append(&c->out, data, n);
    bl_buf_append(&c->out, "\n\n\r\n", 4);
    seg_mark(c);
}

static void sse_event(conn_t *c, const char *data, size_t n)
{
    sse_event_named(c, NULL, data, n);
}

void sse_head(conn_t *c)
{
    head(c, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
    bl_buf_append_str(&c->out, "Transfer-Encoding: chunked\r\n\r\n");
    seg_mark(c);
}

void sse_last_chunk(conn_t *c)
{
    bl_buf_append(&c->out, "0\r\n\r\n", 5);
    seg_mark(c);
}

static void sse_end(conn_t *c)
{
    sse_event(c, "[DONE]", 6);
    sse_last_chunk(c);
}

/* g_text in n pieces on word boundaries (fewer when it has fewer words). */
void split_text(int n)
{
    size_t words = 1;
    for (size_t i = 1; i < g_text.len; i++)
        if (g_text.data[i] != ' ' && g_text.data[i - 1] == ' ')
            words++;
    if (n < 1)
        n = 1;
    if ((size_t)n > words)
        n = (int)words;
    /* piece j holds words/n words, the first words%n pieces one more */
    size_t pos = 0;
    g_n_pieces = 0;
    for (int j = 0; j < n; j++) {
        size_t take = words / (size_t)n + ((size_t)j < words % (size_t)n ? 1 : 0);
        while (take && pos < g_text.len) {
            pos++; /* a word: up to and including its trailing spaces */
            while (pos < g_text.len && !(g_text.data[pos] != ' ' && g_text.data[pos - 1] == ' '))
                pos++;
            take--;
        }
        g_piece_end[g_n_pieces++] = pos;
    }
    g_piece_end[g_n_pieces - 1] = g_text.len;
}

/* "Hello from NAME (model M)." in n pieces; with fewer words than pieces,
 * numbered filler words are appended so there are n. */
void build_text(const char *model, size_t model_len, int n)
{
    bl_buf_reset(&g_text);
    bl_buf_printf(&g_text, "Hello from %s (model ", g_mock.name);
    bl_buf_append(&g_text, model, model_len);
    bl_buf_append_str(&g_text, ").");
    size_t words = 1;
    for (size_t i = 1; i < g_text.len; i++)
        if (g_text.data[i] != ' ' && g_text.data[i - 1] == ' ')
            words++;
    for (size_t w = words; w < (size_t)n; w++)
        bl_buf_printf(&g_text, " tok%zu", w + 1);
    split_text(n);
}

static void ev_prefix(const req_info_t *ri, const char *object, const char *idp)
{
    bl_buf_reset(&g_ev);
    bl_buf_printf(&g_ev, "{\"id\":\"%s%llu\",\"object\":\"%s\",\"created\":%lld,\"model\":\"%s\",",
                  idp, (unsigned long long)ri->id, object, ri->created, g_model.data);
}

static void usage_json(bl_buf_t *b, const req_info_t *ri)
{
    bl_buf_printf(b,
                  "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%zu,"
                  "\"total_tokens\":%zu}",
                  ri->prompt_tokens, g_n_pieces, ri->prompt_tokens + g_n_pieces);
}

/* usage for a tool call: one token per argument piece */
static void tool_usage_json(bl_buf_t *b, const req_info_t *ri)
{
    bl_buf_printf(b,
                  "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%zu,"
                  "\"total_tokens\":%zu}",
                  ri->prompt_tokens, g_n_arg_pieces, ri->prompt_tokens + g_n_arg_pieces);
}

/* The scripted tool call as a chat completion: message.tool_calls, or
 * streamed as delta.tool_calls (index, id, type, name first, then the
 * arguments in pieces) with finish_reason "tool_calls". */
static void render_chat_tool(conn_t *c, const req_info_t *ri)
{
    if (!ri->stream) {
        ev_prefix(ri, "chat.completion", "chatcmpl-mock");
        bl_buf_printf(&g_ev,
                      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                      "\"content\":null,\"tool_calls\":[{\"id\":\"call_mock%llu\","
                      "\"type\":\"function\",\"function\":{\"name\":\"%s\",\"arguments\":\"",
                      (unsigned long long)ri->id, g_tool_name.data);
        json_escape(&g_ev, g_tool_args.data, g_tool_args.len);
        bl_buf_append_str(&g_ev, "\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],");
        tool_usage_json(&g_ev, ri);
        bl_buf_append_str(&g_ev, "}");
        send_body(c, 200, "application/json", NULL, g_ev.data, g_ev.len);
        return;
    }
    sse_head(c);
    ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
    bl_buf_printf(&g_ev,
                  "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
                  "\"tool_calls\":[{\"index\":0,\"id\":\"call_mock%llu\",\"type\":\"function\","
                  "\"function\":{\"name\":\"%s\",\"arguments\":\"\"}}]},\"logprobs\":null,"
                  "\"finish_reason\":null}]}",
                  (unsigned long long)ri->id, g_tool_name.data);
    sse_event(c, g_ev.data, g_ev.len);
    size_t from = 0;
    for (size_t j = 0; j < g_n_arg_pieces; j++) {
        ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":["
                                 "{\"index\":0,\"function\":{\"arguments\":\"");
        json_escape(&g_ev, g_tool_args.data + from, g_arg_end[j] - from);
        bl_buf_append_str(&g_ev, "\"}}]},\"logprobs\":null,\"finish_reason\":null}]}");
        sse_event(c, g_ev.data, g_ev.len);
        from = g_arg_end[j];
    }
    ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
    bl_buf_append_str(&g_ev, "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                             "\"finish_reason\":\"tool_calls\"}]}");
    sse_event(c, g_ev.data, g_ev.len);
    if (ri->include_usage) {
        ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[],");
        tool_usage_json(&g_ev, ri);
        bl_buf_append_str(&g_ev, "}");
        sse_event(c, g_ev.data, g_ev.len);
    }
    sse_end(c);
}

static void render_chat(conn_t *c, const req_info_t *ri, bool malformed)
{
    if (!ri->stream) {
        if (malformed) {
            const char *bad =
                "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"choices\":[";
            send_body(c, 200, "application/json", NULL, bad, strlen(bad));
            return;
        }
        ev_prefix(ri, "chat.completion", "chatcmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                 "\"content\":\"");
        json_escape(&g_ev, g_text.data, g_text.len);
        bl_buf_append_str(&g_ev, "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],");
        usage_json(&g_ev, ri);
        bl_buf_append_str(&g_ev, "}");
        send_body(c, 200, "application/json", NULL, g_ev.data, g_ev.len);
        return;
    }
    sse_head(c);
    ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
    bl_buf_append_str(&g_ev, "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                             "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}");
    sse_event(c, g_ev.data, g_ev.len);
    if (malformed) {
        const char *bad = "{\"choices\": [this is not json";
        sse_event(c, bad, strlen(bad));
        sse_end(c);
        return;
    }
    size_t from = 0;
    for (size_t j = 0; j < g_n_pieces; j++) {
        ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
        json_escape(&g_ev, g_text.data + from, g_piece_end[j] - from);
        bl_buf_append_str(&g_ev, "\"},\"logprobs\":null,\"finish_reason\":null}]}");
        sse_event(c, g_ev.data, g_ev.len);
        from = g_piece_end[j];
    }
    ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
    bl_buf_append_str(&g_ev, "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                             "\"finish_reason\":\"stop\"}]}");
    sse_event(c, g_ev.data, g_ev.len);
    if (ri->include_usage) {
        ev_prefix(ri, "chat.completion.chunk", "chatcmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[],");
        usage_json(&g_ev, ri);
        bl_buf_append_str(&g_ev, "}");
        sse_event(c, g_ev.data, g_ev.len);
    }
    sse_end(c);
}

static void render_completion(conn_t *c, const req_info_t *ri, bool malformed)
{
    if (!ri->stream) {
        if (malformed) {
            const char *bad = "{\"id\":\"cmpl-mock\",\"object\":\"text_completion\",\"choices\":[";
            send_body(c, 200, "application/json", NULL, bad, strlen(bad));
            return;
        }
        ev_prefix(ri, "text_completion", "cmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[{\"text\":\"");
        json_escape(&g_ev, g_text.data, g_text.len);
        bl_buf_append_str(&g_ev, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],");
        usage_json(&g_ev, ri);
        bl_buf_append_str(&g_ev, "}");
        send_body(c, 200, "application/json", NULL, g_ev.data, g_ev.len);
        return;
    }
    sse_head(c);
    if (malformed) {
        const char *bad = "{\"choices\": [this is not json";
        sse_event(c, bad, strlen(bad));
        sse_end(c);
        return;
    }
    size_t from = 0;
    for (size_t j = 0; j < g_n_pieces; j++) {
        ev_prefix(ri, "text_completion", "cmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[{\"text\":\"");
        json_escape(&g_ev, g_text.data + from, g_piece_end[j] - from);
        bl_buf_append_str(&g_ev, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}");
        sse_event(c, g_ev.data, g_ev.len);
        from = g_piece_end[j];
    }
    ev_prefix(ri, "text_completion", "cmpl-mock");
    bl_buf_append_str(&g_ev, "\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,"
                             "\"finish_reason\":\"stop\"}]}");
    sse_event(c, g_ev.data, g_ev.len);
    if (ri->include_usage) {
        ev_prefix(ri, "text_completion", "cmpl-mock");
        bl_buf_append_str(&g_ev, "\"choices\":[],");
        usage_json(&g_ev, ri);
        bl_buf_append_str(&g_ev, "}");
        sse_event(c, g_ev.data, g_ev.len);
    }
    sse_end(c);
}

/* FNV-1a of the input: deterministic small vectors in [-1, 1]. With
 * encoding_format "base64" (the openai SDK's default) the vector is the
 * base64 of its little-endian float32s, as OpenAI sends it. */
static void embed_one(bl_buf_t *b, size_t index, const char *s, size_t n, bool base64)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    bl_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":%s", index ? "," : "",
                  index, base64 ? "\"" : "[");
    float vec[8];
    for (int d = 0; d < 8; d++) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        vec[d] = (float)((double)(h % 2000001) / 1000000.0 - 1.0);
        if (!base64)
            bl_buf_printf(b, "%s%.6f", d ? "," : "", vec[d]);
    }
    if (base64) {
        unsigned char enc[64];
        int len = EVP_EncodeBlock(enc, (const unsigned char *)vec, (int)sizeof vec);
        bl_buf_append(b, enc, (size_t)len);
    }
    bl_buf_append_str(b, base64 ? "\"}" : "]}");
}

static int render_embeddings(conn_t *c, json_t *root, const req_info_t *ri, bool malformed)
{
    json_t *input = json_object_get(root, "input");
    bl_buf_t *b = &c->scratch;
    bl_buf_reset(b);
    json_t *fmt = json_object_get(root, "encoding_format");
    bool b64 = json_is_string(fmt) && !strcmp(json_string_value(fmt), "base64");
    bl_buf_append_str(b, "{\"object\":\"list\",\"data\":[");
    if (json_is_string(input)) {
        embed_one(b, 0, json_string_value(input), json_string_length(input), b64);
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(input, i, v)
        {
            if (json_is_string(v))
                embed_one(b, i, json_string_value(v), json_string_length(v), b64);
            else if (json_is_array(v)) /* token ids */
                embed_one(b, i, (const char *)&i, sizeof i, b64);
            else
                return BL_EINVAL;
        }
    } else {
        return BL_EINVAL;
    }
    bl_buf_printf(b, "],\"model\":\"%s\",\"usage\":{\"prompt_tokens\":%u,\"total_tokens\":%u}}",
                  g_model.data, ri->prompt_tokens, ri->prompt_tokens);
    size_t n = malformed ? b->len / 2 : b->len;
    send_body(c, 200, "application/json", NULL, b->data, n);
    return 0;
}

static void render_models(conn_t *c, bool malformed)
{
    bl_buf_t *b = &c->scratch;
    bl_buf_reset(b);
    bl_buf_printf(b,
                  "{\"object\":\"list\",\"data\":["
                  "{\"id\":\"mock-model\",\"object\":\"model\",\"created\":1700000000,"
                  "\"owned_by\":\"%s\"},"
                  "{\"id\":\"mock-embed\",\"object\":\"model\",\"created\":1700000000,"
                  "\"owned_by\":\"%s\"}]}",
                  g_mock.name_json, g_mock.name_json);
    send_body(c, 200, "application/json", NULL, b->data, malformed ? b->len / 2 : b->len);
}

/* Move the end of the body segment of a 2-segment response to its middle. */
static void split_body(conn_t *c)
{
    if (c->n_segs != 2)
        return;
    c->seg_end[2] = c->seg_end[1];
    c->seg_end[1] = c->seg_end[0] + (c->seg_end[1] - c->seg_end[0]) / 2;
    c->n_segs = 3;
}

static void apply_fault(conn_t *c, const fault_t *f, bool stream)
{
    switch (f->kind) {
    case MF_RESET:
    case MF_CUT:
        c->end = f->kind == MF_RESET ? END_RESET : END_CLOSE;
        if (stream) {
            c->stop_after = f->kind == MF_RESET ? 2 : f->events;
        } else {
            split_body(c);
            c->stop_after = 1;
        }
        break;
    case MF_SLOW_FIRST_BYTE:
        c->first_byte_ms = f->ms;
        break;
    case MF_DRIP:
        c->gap_ms = stream ? f->ms : 0;
        break;
    case MF_DELAY:
        c->delay_ms = f->ms;
        break;
    default:
        break;
    }
}

/* ---- stats and control -------------------------------------------------------- */

static void record(conn_t *c, const char *path, size_t path_len, const char *method)
{
    g_mock.requests++;
    size_t i;
    for (i = 0; i < g_mock.n_paths; i++) {
        const char *p = g_mock.by_path[i].path;
        if (strlen(p) == path_len && memcmp(p, path, path_len) == 0)
            break;
    }
    if (i == g_mock.n_paths && i < BL_ARRAY_LEN(g_mock.by_path) &&
        path_len < sizeof g_mock.by_path[0].path) {
        memcpy(g_mock.by_path[i].path, path, path_len);
        g_mock.by_path[i].path[path_len] = 0;
        g_mock.by_path[i].n = 0;
        g_mock.n_paths++;
    }
    if (i < g_mock.n_paths)
        g_mock.by_path[i].n++;
    bl_buf_reset(&g_mock.last_path);
    bl_buf_append(&g_mock.last_path, path, path_len);
    bl_buf_reset(&g_mock.last_method);
    bl_buf_append_str(&g_mock.last_method, method);
    bl_buf_reset(&g_mock.last_hdrs);
    bl_buf_append(&g_mock.last_hdrs, c->hdrs.data, c->hdrs.len);
    bl_buf_reset(&g_mock.last_body);
    bl_buf_append(&g_mock.last_body, c->body.data, c->body.len);
    g_mock.have_last = true;
}

static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s ? s : "", s ? n : 0);
    return j ? j : json_string("<invalid utf-8>");
}

static void send_json(conn_t *c, int code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    send_body(c, code, "application/json", NULL, s, strlen(s));
    free(s);
}

/* {"method","path","headers":{lowercased name: value},"body": raw text} of
 * the last counted request, or NULL when there is none. */
static json_t *last_request(void)
{
    if (!g_mock.have_last)
        return NULL;
    json_t *h = json_object();
    const char *p = g_mock.last_hdrs.data, *end = p + g_mock.last_hdrs.len;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        if (v >= end)
            break;
        size_t vl = strlen(v);
        json_object_set_new(h, p, jstr(v, vl));
        p = v + vl + 1;
    }
    json_t *last = json_object();
    json_object_set_new(last, "method", jstr(g_mock.last_method.data, g_mock.last_method.len));
    json_object_set_new(last, "path", jstr(g_mock.last_path.data, g_mock.last_path.len));
    json_object_set_new(last, "headers", h);
    json_object_set_new(last, "body", jstr(g_mock.last_body.data, g_mock.last_body.len));
    return last;
}

static void stats(conn_t *c)
{
    json_t *by = json_object();
    for (size_t i = 0; i < g_mock.n_paths; i++)
        json_object_set_new(by, g_mock.by_path[i].path,
                            json_integer((json_int_t)g_mock.by_path[i].n));
    json_t *root = json_pack("{s:s, s:s, s:I, s:o, s:I, s:I}", "name", g_mock.name, "mode",
                             fault_name(g_mock.mode.kind), "requests", (json_int_t)g_mock.requests,
                             "by_path", by, "connections", (json_int_t)g_mock.connections,
                             "disconnects_before_response", (json_int_t)g_mock.disconnects);
    json_t *last = last_request();
    json_object_set_new(root, "last_request", last ? last : json_null());
    send_json(c, 200, root);
}

static void control(conn_t *c, const char *path, size_t n, enum http_method m)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(path, lit, n) == 0)
    if (IS("/_mock/stats") && m == HTTP_GET) {
        stats(c);
    } else if (IS("/_mock/reset") && m == HTTP_POST) {
        g_mock.requests = g_mock.connections = g_mock.disconnects = 0;
        g_mock.n_paths = 0;
        g_mock.have_last = false;
        send_json(c, 200, json_pack("{s:b}", "ok", 1));
    } else if (IS("/_mock/mode") && m == HTTP_POST) {
        fault_t f;
        if (fault_parse_json(c->body.data, c->body.len, &f) != 0) {
            send_error(c, 400, "bad mode: want {\"mode\": NAME, params...}", NULL);
            return;
        }
        g_mock.mode = f;
        send_json(c, 200, json_pack("{s:b, s:s}", "ok", 1, "mode", fault_name(f.kind)));
        if (f.kind == MF_REFUSE) {
            c->keep_alive = false;
            mock_refuse(c);
        }
    } else if (IS("/_mock/mode") && m == HTTP_GET) {
        send_json(c, 200, json_pack("{s:s}", "mode", fault_name(g_mock.mode.kind)));
    } else if (IS("/_mock/last") && m == HTTP_GET) {
        json_t *last = last_request();
        if (last)
            send_json(c, 200, last);
        else
            send_error(c, 404, "no request recorded since start or the last reset", NULL);
    } else if (IS("/_mock/tool") && m == HTTP_POST) {
        if (tools_set_json(c->body.data, c->body.len) != 0) {
            send_error(c, 400, "bad tool script: want {\"name\": NAME|null, \"arguments\": OBJECT}",
                       NULL);
            return;
        }
        send_json(c, 200, tools_describe());
    } else if (IS("/_mock/tool") && m == HTTP_GET) {
        send_json(c, 200, tools_describe());
    } else {
        send_error(c, 404, "unknown mock control endpoint", NULL);
    }
#undef IS
}

/* ---- dispatch ------------------------------------------------------------------ */

void api_handle(conn_t *c)
{
    plan_reset(c);
    const char *url = c->url.data ? c->url.data : "/";
    const char *q = memchr(url, '?', c->url.len);
    size_t plen = q ? (size_t)(q - url) : c->url.len;
    enum http_method m = (enum http_method)c->parser.method;

    if (plen >= 7 && memcmp(url, "/_mock/", 7) == 0) {
        control(c, url, plen, m); /* never faulted, not counted */
        conn_send_start(c);
        return;
    }
    record(c, url, plen, http_method_str(m));

    fault_t f = g_mock.mode;
    size_t hl;
    const char *hv = conn_header(c, "x-mock-fault", &hl);
    if (hv && fault_parse_header(hv, hl, &f) != 0) {
        send_error(c, 400, "bad x-mock-fault header", NULL);
        conn_send_start(c);
        return;
    }
    if (f.kind == MF_REFUSE) {
        c->resp_active = false; /* closed by us, not a client disconnect */
        conn_close(c);
        return;
    }
    if (f.kind == MF_HANG)
        return; /* resp_active stays set until the client leaves */
#define IS(lit) (plen == sizeof(lit) - 1 && memcmp(url, lit, plen) == 0)
    bool chat = IS("/v1/chat/completions"), compl = IS("/v1/completions");
    bool emb = IS("/v1/embeddings"), models = IS("/v1/models"), msgs = IS("/v1/messages");
    bool resp = IS("/v1/responses");
#undef IS
    if (f.kind == MF_STATUS) {
        char msg[160];
        snprintf(msg, sizeof msg, "mock %s: injected status %d", g_mock.name, f.code);
        if (msgs)
            anthropic_error(c, f.code, msg, f.retry_after);
        else
            send_error(c, f.code, msg, f.retry_after);
        conn_send_start(c);
        return;
    }

    bool malformed = f.kind == MF_MALFORMED;
    req_info_t ri = {0};
    json_t *root = NULL;
    if (models) {
        if (m != HTTP_GET)
            send_error(c, 405, "use GET", NULL);
        else
            render_models(c, malformed);
        goto send;
    }
    if (!chat && !compl &&!emb && !msgs && !resp) {
        send_error(c, 404, "unknown endpoint", NULL);
        goto send;
    }
    if (m != HTTP_POST) {
        send_error(c, 405, "use POST", NULL);
        goto send;
    }
    root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, NULL);
    const char *model = json_string_value(json_object_get(root, "model"));
    if (!json_is_object(root) || !model) {
        const char *why = "request body must be a JSON object with a \"model\"";
        if (msgs)
            anthropic_error(c, 400, why, NULL);
        else
            send_error(c, 400, why, NULL);
        goto send;
    }
    size_t model_len = json_string_length(json_object_get(root, "model"));
    bl_buf_reset(&g_model);
    json_escape(&g_model, model, model_len);
    ri.stream = json_is_true(json_object_get(root, "stream")) && !emb;
    ri.include_usage =
        json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    ri.prompt_tokens = (unsigned)(c->body.len / 4 + 1);
    ri.id = ++g_mock.seq;
    ri.created = (long long)time(NULL);
    if (emb) {
        if (render_embeddings(c, root, &ri, malformed) != 0) {
            plan_reset(c);
            send_error(c, 400, "\"input\" must be a string or an array", NULL);
        }
        goto send;
    }
    int chunks = f.chunks ? f.chunks : g_mock.chunks;
    family_t fam = chat ? FAM_CHAT : msgs ? FAM_ANTHROPIC : FAM_RESPONSES;
    bool tool = !compl &&tools_plan(root, fam, model, model_len, chunks);
    if (compl || (tool && malformed)) { /* malformed garbles a text answer */
        build_text(model, model_len, chunks);
        tool = false;
    }
    if (chat && tool)
        render_chat_tool(c, &ri);
    else if (chat)
        render_chat(c, &ri, malformed);
    else if (msgs)
        anthropic_messages(c, ri.stream, ri.prompt_tokens, ri.id, malformed, tool);
    else if (resp)
        responses_render(c, root, &(resp_info_t){ri.stream, ri.prompt_tokens, ri.id, ri.created},
                         malformed, tool);
    else
        render_completion(c, &ri, malformed);
send:
    json_decref(root);
    apply_fault(c, &f, ri.stream);
    conn_send_start(c);
}
