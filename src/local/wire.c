/*
 * The OpenAI side of a local request: what the client asked for, turned into
 * a prompt and sampling settings; and what the engine produced, turned into
 * exactly the bytes OpenAI would send (chat.completion / text_completion
 * objects, or their SSE chunk streams ending in `data: [DONE]`).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local/local_int.h"

static int bad(bl_local_req_t *r, int status, const char *code, const char *fmt, const char *arg)
{
    r->err_status = status;
    r->err_type = status == 503 ? "server_error" : "invalid_request_error";
    r->err_code = code;
    snprintf(r->err_msg, sizeof r->err_msg, fmt, arg);
    return BL_EINVAL;
}

/* Text of a message's content: a string, or an array of text parts. */
static int content_text(json_t *content, bl_buf_t *out)
{
    if (json_is_string(content))
        return bl_buf_append(out, json_string_value(content), json_string_length(content));
    if (json_is_null(content) || !content)
        return BL_OK;
    if (!json_is_array(content))
        return BL_EINVAL;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") || !json_is_string(text))
            return BL_EUNSUPPORTED;
        int rc = bl_buf_append(out, json_string_value(text), json_string_length(text));
        if (rc)
            return rc;
    }
    return BL_OK;
}

static int render_chat(bl_local_t *l, bl_local_req_t *r, json_t *msgs)
{
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || n == 0)
        return bad(r, 400, "invalid_value", "%s", "'messages' must be a non-empty array.");
    bl_chat_msg_t *cm = calloc(n, sizeof *cm);
    bl_buf_t *texts = calloc(n, sizeof *texts);
    int rc = BL_ENOMEM;
    if (!cm || !texts)
        goto done;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) {
            rc = bad(r, 400, "invalid_value", "%s", "Each message needs a string 'role'.");
            goto done;
        }
        const char *rs = json_string_value(role);
        if (!strcmp(rs, "developer"))
            rs = "system"; /* the newer name of the same thing */
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") &&
            strcmp(rs, "tool")) {
            rc = bad(r, 400, "invalid_value", "Unknown message role '%.40s'.", rs);
            goto done;
        }
        if (json_object_get(m, "tool_calls")) {
            rc = bad(r, 400, "unsupported_parameter", "%s",
                     "Tool calls are not supported by the local model yet.");
            goto done;
        }
        if ((rc = content_text(json_object_get(m, "content"), &texts[i]))) {
            rc = bad(r, 400, "unsupported_parameter", "%s",
                     "The local model accepts text content only.");
            goto done;
        }
        if (!texts[i].data && bl_buf_append(&texts[i], "", 0)) {
            rc = BL_ENOMEM;
            goto done;
        }
        cm[i].role = rs;
        cm[i].content = texts[i].data;
    }
    /* A last assistant message is an answer to continue, not to close. */
    bool cont = !strcmp(cm[n - 1].role, "assistant");
    rc = bl_chat_render(l->model, cm, n, !cont, &r->prompt, &r->prompt_len);
    if (rc)
        rc = bad(r, 400, "invalid_value", "%s", "The messages could not be rendered for this model.");
done:
    for (size_t i = 0; texts && i < n; i++)
        bl_buf_free(&texts[i]);
    free(texts);
    free(cm);
    return rc;
}

static int read_stops(bl_local_req_t *r, json_t *stop, const char *const *extra, size_t n_extra)
{
    size_t n = json_is_string(stop) ? 1 : json_is_array(stop) ? json_array_size(stop) : 0;
    if (stop && !json_is_null(stop) && !json_is_string(stop) && !json_is_array(stop))
        return bad(r, 400, "invalid_type", "%s", "'stop' must be a string or an array of strings.");
    if (n > 4)
        return bad(r, 400, "invalid_value", "%s", "'stop' takes at most 4 sequences.");
    r->stops = calloc(n + n_extra + 1, sizeof *r->stops);
    if (!r->stops)
        return BL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(stop) ? stop : json_array_get(stop, i);
        if (!json_is_string(s) || json_string_length(s) == 0)
            return bad(r, 400, "invalid_value", "%s", "Each stop sequence must be a non-empty string.");
        if (!(r->stops[r->n_stops++] = strdup(json_string_value(s))))
            return BL_ENOMEM;
    }
    for (size_t i = 0; i < n_extra; i++)
        if (!(r->stops[r->n_stops++] = strdup(extra[i])))
            return BL_ENOMEM;
    return BL_OK;
}

static bool get_number(json_t *root, const char *key, double lo, double hi, double *out,
                       bl_local_req_t *r, int *rc)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "'%s' must be a number between %g and %g.", key, lo, hi);
        *rc = bad(r, 400, "invalid_value", "%s", msg);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

/* /embeddings: input is a string or an array of strings (token-id arrays
 * would need this model's tokenizer on the client side: refused). */
static int parse_embed(bl_local_req_t *r, json_t *root)
{
    json_t *in = json_object_get(root, "input");
    json_t *fmt = json_object_get(root, "encoding_format");
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_is_string(fmt) ? json_string_value(fmt) : "";
        if (strcmp(f, "float") && strcmp(f, "base64"))
            return bad(r, 400, "invalid_value", "%s", "'encoding_format' must be float or base64.");
        r->embed_base64 = !strcmp(f, "base64");
    }
    if (json_object_get(root, "dimensions") && !json_is_null(json_object_get(root, "dimensions")))
        return bad(r, 400, "unsupported_parameter", "%s",
                   "'dimensions' is not supported by the local model.");
    size_t n = json_is_string(in) ? 1 : json_is_array(in) ? json_array_size(in) : 0;
    if (n == 0 || n > 2048)
        return bad(r, 400, "invalid_value", "%s",
                   "'input' must be a string or an array of 1 to 2048 strings.");
    r->inputs = calloc(n, sizeof *r->inputs);
    if (!r->inputs)
        return BL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_is_string(in) ? in : json_array_get(in, i);
        if (!json_is_string(v))
            return bad(r, 400, "invalid_value", "%s",
                       "The local model embeds text: 'input' must hold strings.");
        if (!(r->inputs[r->n_inputs++] = strdup(json_string_value(v))))
            return BL_ENOMEM;
    }
    return BL_OK;
}

/* Fields that would change what the answer means are refused, as OpenAI
 * refuses what a model cannot do; the rest of OpenAI's fields (user,
 * metadata, store, logit_bias...) are ignored as a model without them would. */
int bl_local_parse(bl_local_t *l, bl_local_req_t *r, const char *path, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    int rc = BL_OK;
    if (!json_is_object(root)) {
        rc = bad(r, 400, "invalid_json", "%s", "The request body is not a JSON object.");
        goto done;
    }
    r->chat = !strcmp(path, "/chat/completions");
    r->embed = !strcmp(path, "/embeddings");
    json_t *model = json_object_get(root, "model");
    snprintf(r->model, sizeof r->model, "%s", json_is_string(model) ? json_string_value(model) : "");
    if (r->embed) {
        rc = parse_embed(r, root);
        goto done;
    }
    if (!r->chat && strcmp(path, "/completions")) {
        rc = bad(r, 400, "unsupported_endpoint", "The local model does not serve %.60s.", path);
        goto done;
    }
    json_t *v;
    if ((v = json_object_get(root, "n")) && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) != 1)) {
        rc = bad(r, 400, "unsupported_value", "%s", "The local model returns one choice (n = 1) for now.");
        goto done;
    }
    static const char *const refused[] = {"tools", "functions", "logprobs", "response_format",
                                          "audio", "prediction"};
    for (size_t i = 0; i < BL_ARRAY_LEN(refused); i++) {
        v = json_object_get(root, refused[i]);
        if (v && !json_is_null(v) && !json_is_false(v) &&
            !(json_is_object(v) && !strcmp(refused[i], "response_format") &&
              json_is_string(json_object_get(v, "type")) &&
              !strcmp(json_string_value(json_object_get(v, "type")), "text"))) {
            rc = bad(r, 400, "unsupported_parameter", "'%s' is not supported by the local model yet.",
                     refused[i]);
            goto done;
        }
    }
    r->stream = json_is_true(json_object_get(root, "stream"));
    json_t *so = json_object_get(root, "stream_options");
    r->include_usage = json_is_true(json_object_get(so, "include_usage"));

    /* OpenAI's defaults: temperature 1, top_p 1, no top-k, no min-p. */
    bl_generate_params_default(&r->gp);
    bl_sampling_t *s = &r->gp.sampling;
    s->temperature = 1.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->min_p = 0.0f;
    s->repeat_penalty = 1.0f;
    double d;
    if (get_number(root, "temperature", 0, 2, &d, r, &rc))
        s->temperature = (float)d;
    if (get_number(root, "top_p", 0, 1, &d, r, &rc))
        s->top_p = (float)d;
    if (get_number(root, "presence_penalty", -2, 2, &d, r, &rc))
        s->presence_penalty = (float)d;
    if (get_number(root, "frequency_penalty", -2, 2, &d, r, &rc))
        s->frequency_penalty = (float)d;
    if (get_number(root, "seed", -9.2e18, 9.2e18, &d, r, &rc))
        s->seed = (uint64_t)(int64_t)d;
    else
        s->seed = bl_now_ns() ^ (uint64_t)(uintptr_t)r;
    if (rc)
        goto done;
    r->max_tokens = -1;
    const char *mt_keys[] = {"max_completion_tokens", "max_tokens"};
    for (size_t i = 0; i < 2 && r->max_tokens < 0; i++)
        if (get_number(root, mt_keys[i], 1, 1 << 30, &d, r, &rc))
            r->max_tokens = (int32_t)d;
    if (rc)
        goto done;

    size_t n_extra = 0;
    const char *const *extra = NULL;
    if (r->chat) {
        if ((rc = render_chat(l, r, json_object_get(root, "messages"))))
            goto done;
        extra = bl_chat_stop_strings(l->model, &n_extra);
    } else {
        json_t *p = json_object_get(root, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1)
            p = json_array_get(p, 0);
        if (!json_is_string(p)) {
            rc = bad(r, 400, "invalid_value", "%s",
                     "'prompt' must be a string (or an array holding one string) for the local model.");
            goto done;
        }
        r->prompt = strdup(json_string_value(p));
        r->prompt_len = json_string_length(p);
        if (!r->prompt) {
            rc = BL_ENOMEM;
            goto done;
        }
    }
    if ((rc = read_stops(r, json_object_get(root, "stop"), extra, n_extra)))
        goto done;
    r->gp.stop = (const char *const *)r->stops;
    r->gp.n_stop = r->n_stops;
done:
    json_decref(root);
    if (rc && !r->err_status)
        bad(r, 500, "internal_error", "%s", "out of memory");
    return rc;
}

void bl_local_free_req_fields(bl_local_req_t *r)
{
    for (size_t i = 0; i < r->n_inputs; i++)
        free(r->inputs[i]);
    free(r->inputs);
    free(r->prompt);
    for (size_t i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->stops);
    bl_buf_free(&r->out);
    bl_buf_free(&r->text);
    bl_buf_free(&r->wire);
}

/* ---- answers ---------------------------------------------------------------- */

static void json_str(bl_buf_t *b, const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *e = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    bl_buf_append_str(b, e ? e : "\"\"");
    free(e);
    json_decref(j);
}

static const char *finish_reason(const bl_local_req_t *r)
{
    return r->finish == BL_FINISH_LENGTH ? "length" : "stop";
}

static void usage(bl_buf_t *b, const bl_local_req_t *r)
{
    /* prompt_tokens_details.cached_tokens is OpenAI's field for prompt caching */
    bl_buf_printf(b,
                  "\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":%zu}}",
                  r->n_prompt, r->n_generated, r->n_prompt + r->n_generated, r->n_cached);
}

static void head(bl_buf_t *b, const bl_local_req_t *r, bool chunk)
{
    bl_buf_printf(b, "{\"id\":\"%s%s\",\"object\":\"%s\",\"created\":%lld,\"model\":",
                  r->chat ? "chatcmpl-" : "cmpl-", r->id,
                  r->chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion",
                  r->created);
    json_str(b, r->model, strlen(r->model));
    bl_buf_append_str(b, ",\"system_fingerprint\":\"ballast-local\",");
}

/* One SSE event with a content delta, or the closing one (finish != NULL). */
static void chunk(bl_buf_t *b, const bl_local_req_t *r, const char *text, size_t n, const char *finish,
                  bool role)
{
    bl_buf_append_str(b, "data: ");
    head(b, r, true);
    if (r->chat) {
        bl_buf_append_str(b, "\"choices\":[{\"index\":0,\"delta\":{");
        if (role)
            bl_buf_append_str(b, "\"role\":\"assistant\",");
        if (!finish) {
            bl_buf_append_str(b, "\"content\":");
            json_str(b, text, n);
        } else if (b->data[b->len - 1] == ',') {
            b->len--;
        }
        bl_buf_append_str(b, "},\"logprobs\":null,\"finish_reason\":");
    } else {
        bl_buf_append_str(b, "\"choices\":[{\"text\":");
        json_str(b, text, n);
        bl_buf_append_str(b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    }
    if (finish)
        bl_buf_printf(b, "\"%s\"", finish);
    else
        bl_buf_append_str(b, "null");
    bl_buf_append_str(b, "}]}\n\n");
}

static void send_headers(bl_local_req_t *r, int status, const char *content_type, const char *extra)
{
    bl_buf_t h = {0};
    bl_buf_printf(&h, "HTTP/1.1 %d\r\nContent-Type: %s\r\n%s\r\n", status, content_type,
                  extra ? extra : "");
    r->cb.on_headers(r->cb.ud, status, &h);
    bl_buf_free(&h);
}

static bool send_body(bl_local_req_t *r, bl_buf_t *b)
{
    if (b->len && !r->abandoned)
        r->cb.on_body(r->cb.ud, b->data, b->len);
    bl_buf_reset(b);
    return !r->abandoned;
}

void bl_local_deliver(bl_local_req_t *r, const char *text, size_t len, bool done)
{
    bl_buf_t *w = &r->wire;
    if (r->err_status) {
        if (!done)
            return;
        send_headers(r, r->err_status, "application/json",
                     r->err_status == 503 ? "Retry-After: 1\r\n" : NULL);
        if (r->abandoned)
            return;
        bl_buf_append_str(w, "{\"error\":{\"message\":");
        json_str(w, r->err_msg, strlen(r->err_msg));
        bl_buf_printf(w, ",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}", r->err_type,
                      r->err_code);
        if (send_body(r, w))
            r->cb.on_done(r->cb.ud, BL_UP_OK, NULL);
        return;
    }
    if (r->embed) {
        bl_buf_append(&r->text, text, len); /* the scheduler wrote the whole JSON body */
        if (!done)
            return;
        send_headers(r, 200, "application/json", NULL);
        if (r->abandoned)
            return;
        bl_buf_append(w, r->text.data ? r->text.data : "", r->text.len);
        if (send_body(r, w))
            r->cb.on_done(r->cb.ud, BL_UP_OK, NULL);
        return;
    }
    if (!r->stream) {
        bl_buf_append(&r->text, text, len);
        if (!done)
            return;
        send_headers(r, 200, "application/json", NULL);
        if (r->abandoned)
            return;
        head(w, r, false);
        if (r->chat) {
            bl_buf_append_str(w, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
            json_str(w, r->text.data ? r->text.data : "", r->text.len);
            bl_buf_append_str(w, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
        } else {
            bl_buf_append_str(w, "\"choices\":[{\"text\":");
            json_str(w, r->text.data ? r->text.data : "", r->text.len);
            bl_buf_append_str(w, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
        }
        bl_buf_printf(w, "\"%s\"}],", finish_reason(r));
        usage(w, r);
        bl_buf_append_str(w, "}");
        if (send_body(r, w))
            r->cb.on_done(r->cb.ud, BL_UP_OK, NULL);
        return;
    }
    if (!r->started) {
        r->started = true;
        send_headers(r, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
        if (r->abandoned)
            return;
        if (r->chat)
            chunk(w, r, "", 0, NULL, true); /* OpenAI's first chunk: the role */
    }
    if (len)
        chunk(w, r, text, len, NULL, false);
    if (done) {
        chunk(w, r, "", 0, finish_reason(r), false);
        if (r->include_usage) {
            bl_buf_append_str(w, "data: ");
            head(w, r, true);
            bl_buf_append_str(w, "\"choices\":[],");
            usage(w, r);
            bl_buf_append_str(w, "}\n\n");
        }
        bl_buf_append_str(w, "data: [DONE]\n\n");
    }
    if (send_body(r, w) && done)
        r->cb.on_done(r->cb.ud, BL_UP_OK, NULL);
}
