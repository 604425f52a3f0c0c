/*
 * Writing events as a chat completions answer (a chat client served by a
 * target of another family).
 *
 * Stream: a role chunk, content / tool_calls delta chunks, a chunk with the
 * finish_reason, a usage chunk (choices []) when the client asked for it
 * with stream_options.include_usage, then "data: [DONE]" — OpenAI's order.
 * Whole: one chat.completion object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"
#include "xlate/xlate_int.h"

typedef struct {
    char *id, *name;
    bl_buf_t args;
} tool_t;

typedef struct {
    bl_xwrite_t base;
    bool role_sent;
    bool finished;       /* FINISH went by */
    bool closed;         /* [DONE] written */
    bl_xfinish_t finish;
    int64_t in, out, cached;
    bool have_usage;
    bl_buf_t text;       /* whole answer: the content */
    bl_buf_t prefix;     /* stream: a content chunk up to its text */
    tool_t *tools;
    int n_tools, cap_tools;
} chat_writer_t;

static json_t *chunk_head(chat_writer_t *w)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", w->base.id, "object", "chat.completion.chunk",
                     "created", (json_int_t)w->base.o.created, "model", w->base.model);
}

static void put_chunk(bl_buf_t *out, json_t *head, json_t *delta, const char *finish)
{
    json_t *choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs",
                               "finish_reason", finish ? json_string(finish) : json_null());
    json_object_set_new(head, "choices", json_pack("[o]", choice));
    bl_xsse(out, NULL, head);
    json_decref(head);
}

/* The chunk of every token, written by hand from a prefix made once: a
 * tree per token cost more than the rest of the translation. */
static void text_chunk(chat_writer_t *w, const char *text, size_t n, bl_buf_t *out)
{
    if (!w->prefix.len) {
        bl_buf_append_str(&w->prefix, "data: {\"id\":");
        bl_json_escape(&w->prefix, w->base.id, strlen(w->base.id));
        bl_buf_printf(&w->prefix, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                      (long long)w->base.o.created);
        bl_json_escape(&w->prefix, w->base.model, strlen(w->base.model));
        bl_buf_append_str(&w->prefix, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
    }
    bl_buf_append(out, w->prefix.data, w->prefix.len);
    bl_json_escape(out, text, n);
    bl_buf_append_str(out, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

static void role_chunk(chat_writer_t *w, bl_buf_t *out)
{
    if (w->role_sent || w->base.resumed)
        return;
    w->role_sent = true;
    put_chunk(out, chunk_head(w), json_pack("{s:s, s:s, s:n}", "role", "assistant", "content", "",
                                            "refusal"),
              NULL);
}

static json_t *usage_obj(chat_writer_t *w)
{
    int64_t in = w->in > 0 ? w->in : 0, o = w->out > 0 ? w->out : 0;
    json_t *u = json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)in, "completion_tokens",
                          (json_int_t)o, "total_tokens", (json_int_t)(in + o));
    if (w->cached >= 0)
        json_object_set_new(u, "prompt_tokens_details",
                            json_pack("{s:I}", "cached_tokens", (json_int_t)w->cached));
    return u;
}

static void annotate(chat_writer_t *w, json_t *obj)
{
    if (!w->base.failover_from[0])
        return;
    json_object_set_new(obj, "x_ballast",
                        json_pack("{s:b, s:s, s:s}", "midstream_failover", 1, "from",
                                  w->base.failover_from, "to", w->base.failover_to));
}

static tool_t *tool_at(chat_writer_t *w, int index)
{
    if (index < 0 || index > 1024)
        return NULL;
    while (w->n_tools <= index) {
        if (w->n_tools == w->cap_tools) {
            int nc = w->cap_tools ? w->cap_tools * 2 : 4;
            tool_t *t = realloc(w->tools, (size_t)nc * sizeof *t);
            if (!t)
                return NULL;
            w->tools = t;
            w->cap_tools = nc;
        }
        memset(&w->tools[w->n_tools++], 0, sizeof(tool_t));
    }
    return &w->tools[index];
}

/* Stream: the finish chunk, the usage chunk, [DONE]. */
static void close_stream(chat_writer_t *w, bl_buf_t *out)
{
    if (w->closed)
        return;
    w->closed = true;
    role_chunk(w, out);
    json_t *head = chunk_head(w);
    annotate(w, head);
    put_chunk(out, head, json_object(), bl_xfinish_chat(w->finish));
    if (w->base.o.include_usage) {
        json_t *u = chunk_head(w);
        json_object_set_new(u, "choices", json_array());
        json_object_set_new(u, "usage", usage_obj(w));
        bl_xsse(out, NULL, u);
        json_decref(u);
    }
    bl_buf_append_str(out, "data: [DONE]\n\n");
}

static int w_event(bl_xwrite_t *base, const bl_xev_t *ev, bl_buf_t *out)
{
    chat_writer_t *w = (chat_writer_t *)base;
    bool stream = base->o.stream;
    switch (ev->kind) {
    case BL_XEV_START:
        if (stream)
            role_chunk(w, out);
        break;
    case BL_XEV_TEXT:
        if (stream) {
            role_chunk(w, out);
            text_chunk(w, ev->text ? ev->text : "", ev->text_len, out);
        } else {
            bl_buf_append(&w->text, ev->text, ev->text_len);
        }
        break;
    case BL_XEV_TOOL_START: {
        tool_t *t = tool_at(w, ev->index);
        if (!t)
            return BL_ERANGE;
        free(t->id);
        free(t->name);
        char gen[40];
        if (!ev->id || !*ev->id)
            bl_xid(gen, sizeof gen, "call_");
        t->id = strdup(ev->id && *ev->id ? ev->id : gen);
        t->name = strdup(ev->name ? ev->name : "");
        if (!t->id || !t->name)
            return BL_ENOMEM;
        if (stream) {
            role_chunk(w, out);
            json_t *tc = json_pack("{s:i, s:s, s:s, s:{s:s, s:s}}", "index", ev->index, "id", t->id,
                                   "type", "function", "function", "name", t->name, "arguments", "");
            put_chunk(out, chunk_head(w), json_pack("{s:[o]}", "tool_calls", tc), NULL);
        }
        break;
    }
    case BL_XEV_TOOL_ARGS: {
        tool_t *t = tool_at(w, ev->index);
        if (!t)
            return BL_ERANGE;
        if (stream) {
            json_t *tc = json_pack("{s:i, s:{s:s%}}", "index", ev->index, "function", "arguments",
                                   ev->text ? ev->text : "", ev->text_len);
            put_chunk(out, chunk_head(w), json_pack("{s:[o]}", "tool_calls", tc), NULL);
        } else {
            bl_buf_append(&t->args, ev->text, ev->text_len);
        }
        break;
    }
    case BL_XEV_USAGE:
        if (ev->input_tokens >= 0)
            w->in = ev->input_tokens;
        if (ev->output_tokens >= 0)
            w->out = ev->output_tokens;
        if (ev->cached_tokens >= 0)
            w->cached = ev->cached_tokens;
        w->have_usage = true;
        break;
    case BL_XEV_FINISH:
        w->finished = true;
        w->finish = ev->finish;
        if (stream)
            close_stream(w, out);
        break;
    case BL_XEV_ERROR:
        return base->ops->fail(base, ev->err_kind, ev->text, out);
    default: break; /* opaque items mean nothing to a chat client */
    }
    return BL_OK;
}

static int w_end(bl_xwrite_t *base, bl_buf_t *out)
{
    chat_writer_t *w = (chat_writer_t *)base;
    if (base->o.stream) {
        close_stream(w, out);
        return BL_OK;
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    if (w->text.len || !w->n_tools)
        json_object_set_new(msg, "content", json_stringn(w->text.data ? w->text.data : "", w->text.len));
    else
        json_object_set_new(msg, "content", json_null());
    json_object_set_new(msg, "refusal", json_null());
    if (w->n_tools) {
        json_t *calls = json_array();
        for (int i = 0; i < w->n_tools; i++) {
            tool_t *t = &w->tools[i];
            json_array_append_new(
                calls, json_pack("{s:s, s:s, s:{s:s, s:s%}}", "id", t->id ? t->id : "", "type",
                                 "function", "function", "name", t->name ? t->name : "",
                                 "arguments", t->args.data ? t->args.data : "", t->args.len));
        }
        json_object_set_new(msg, "tool_calls", calls);
    }
    json_t *root = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}", "id", base->id,
                             "object", "chat.completion", "created", (json_int_t)base->o.created,
                             "model", base->model, "choices", "index", 0, "message", msg,
                             "logprobs", "finish_reason", bl_xfinish_chat(w->finish), "usage",
                             usage_obj(w));
    if (!root)
        return BL_ENOMEM;
    annotate(w, root);
    int rc = bl_xdump(root, out);
    json_decref(root);
    return rc;
}

static int w_fail(bl_xwrite_t *base, bl_xerr_kind_t k, const char *message, bl_buf_t *out)
{
    chat_writer_t *w = (chat_writer_t *)base;
    if (!base->o.stream) {
        w->closed = true;
        return bl_xerr_body(BL_FAM_CHAT, k, message, NULL, NULL, out);
    }
    if (w->closed)
        return BL_OK;
    w->closed = true;
    /* OpenAI reports a failure inside a stream as an error event. */
    bl_buf_append_str(out, "data: ");
    int rc = bl_xerr_body(BL_FAM_CHAT, k, message, NULL, NULL, out);
    bl_buf_append(out, "\n\n", 2);
    return rc;
}

static void w_free(bl_xwrite_t *base)
{
    chat_writer_t *w = (chat_writer_t *)base;
    for (int i = 0; i < w->n_tools; i++) {
        free(w->tools[i].id);
        free(w->tools[i].name);
        bl_buf_free(&w->tools[i].args);
    }
    free(w->tools);
    bl_buf_free(&w->text);
    bl_buf_free(&w->prefix);
    free(w);
}

static const bl_xwrite_ops_t OPS = {w_event, w_end, w_fail, w_free};

int bl_xchat_writer_new(const bl_xwrite_opts_t *o, const bl_xstate_t *st, bl_xwrite_t **out)
{
    chat_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return BL_ENOMEM;
    bl_xwrite_base_init(&w->base, &OPS, BL_FAM_CHAT, o, st, "chatcmpl-");
    w->in = w->out = w->cached = -1;
    *out = &w->base;
    return BL_OK;
}
