/*
 * Reading a chat completions answer (a chat target serving a client of
 * another family) into events.
 *
 * A stream is "data: {chunk}" events ending in "data: [DONE]". The finish
 * reason arrives in one chunk and, with stream_options.include_usage, the
 * usage in a later chunk with no choices, so FINISH is held until the usage
 * chunk, [DONE] or the end of the stream: events end with FINISH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

#define MAX_TOOL_CALLS 128

typedef struct {
    bl_xread_t base;
    bool started;
    bool finish_pending;
    bool finished;
    bl_xfinish_t finish;
    int n_tools;                  /* tool calls announced (by their OpenAI index) */
    int tool_index[MAX_TOOL_CALLS]; /* OpenAI's index -> ours, -1 none */
    bl_buf_t text;                /* a content delta, unescaped */
} chat_reader_t;

static bl_xfinish_t finish_of(const char *s)
{
    if (!s)
        return BL_XFIN_STOP;
    if (!strcmp(s, "length"))
        return BL_XFIN_LENGTH;
    if (!strcmp(s, "tool_calls") || !strcmp(s, "function_call"))
        return BL_XFIN_TOOL_CALLS;
    if (!strcmp(s, "content_filter"))
        return BL_XFIN_CONTENT_FILTER;
    return BL_XFIN_STOP;
}

static int emit(bl_xev_fn fn, void *ud, const bl_xev_t *ev)
{
    return fn(ud, ev) ? BL_ECANCELED : BL_OK;
}

static int start(chat_reader_t *r, json_t *root, bl_xev_fn fn, void *ud)
{
    if (r->started)
        return BL_OK;
    r->started = true;
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *model = json_string_value(json_object_get(root, "model"));
    json_t *created = json_object_get(root, "created");
    snprintf(r->base.st.id, sizeof r->base.st.id, "%s", id ? id : "");
    snprintf(r->base.st.model, sizeof r->base.st.model, "%s", model ? model : "");
    r->base.st.created = json_is_integer(created) ? json_integer_value(created) : 0;
    r->base.st.started = true;
    bl_xev_t ev = {.kind = BL_XEV_START, .id = id ? id : "", .model = model ? model : ""};
    return emit(fn, ud, &ev);
}

static int usage(json_t *u, bl_xev_fn fn, void *ud)
{
    if (!json_is_object(u))
        return BL_OK;
    json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
    json_t *cached = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    bl_xev_t ev = {.kind = BL_XEV_USAGE,
                   .input_tokens = json_is_integer(p) ? json_integer_value(p) : -1,
                   .output_tokens = json_is_integer(c) ? json_integer_value(c) : -1,
                   .cached_tokens = json_is_integer(cached) ? json_integer_value(cached) : -1};
    return emit(fn, ud, &ev);
}

static int finish(chat_reader_t *r, bl_xev_fn fn, void *ud)
{
    if (!r->finish_pending || r->finished)
        return BL_OK;
    r->finish_pending = false;
    r->finished = true;
    bl_xev_t ev = {.kind = BL_XEV_FINISH, .finish = r->finish};
    return emit(fn, ud, &ev);
}

static int error_event(json_t *e, bl_xev_fn fn, void *ud)
{
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *type = json_string_value(json_object_get(e, "type"));
    bl_xerr_kind_t k = BL_XERR_API;
    if (type && !strcmp(type, "rate_limit_error"))
        k = BL_XERR_RATE_LIMIT;
    else if (type && !strcmp(type, "invalid_request_error"))
        k = BL_XERR_INVALID_REQUEST;
    bl_xev_t ev = {.kind = BL_XEV_ERROR, .err_kind = k, .text = msg ? msg : "upstream error"};
    ev.text_len = strlen(ev.text);
    return emit(fn, ud, &ev);
}

/* delta.tool_calls (stream) or message.tool_calls (whole): announce each new
 * call, then its arguments. */
static int tool_calls(chat_reader_t *r, json_t *calls, bl_xev_fn fn, void *ud)
{
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        if (!json_is_object(tc))
            return BL_EFORMAT;
        json_t *jidx = json_object_get(tc, "index");
        json_int_t oidx = json_is_integer(jidx) ? json_integer_value(jidx) : (json_int_t)i;
        if (oidx < 0 || oidx >= MAX_TOOL_CALLS)
            return BL_EFORMAT;
        json_t *fnj = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fnj, "name"));
        json_t *args = json_object_get(fnj, "arguments");
        int rc;
        if (r->tool_index[oidx] < 0) {
            r->tool_index[oidx] = r->n_tools++;
            r->base.st.n_tool_calls = r->n_tools;
            bl_xev_t ev = {.kind = BL_XEV_TOOL_START, .index = r->tool_index[oidx],
                           .id = id ? id : "", .name = name ? name : ""};
            if ((rc = emit(fn, ud, &ev)))
                return rc;
        }
        if (json_is_string(args) && json_string_length(args)) {
            bl_xev_t ev = {.kind = BL_XEV_TOOL_ARGS, .index = r->tool_index[oidx],
                           .text = json_string_value(args), .text_len = json_string_length(args)};
            if ((rc = emit(fn, ud, &ev)))
                return rc;
        }
    }
    return BL_OK;
}

static int text(json_t *s, bl_xev_fn fn, void *ud)
{
    if (!json_is_string(s) || !json_string_length(s))
        return BL_OK;
    bl_xev_t ev = {.kind = BL_XEV_TEXT, .text = json_string_value(s),
                   .text_len = json_string_length(s)};
    return emit(fn, ud, &ev);
}

static int chunk(chat_reader_t *r, json_t *root, bl_xev_fn fn, void *ud)
{
    int rc;
    json_t *e = json_object_get(root, "error");
    if (e)
        return error_event(e, fn, ud);
    json_t *choices = json_object_get(root, "choices");
    if (choices && !json_is_array(choices))
        return BL_EFORMAT;
    if ((rc = start(r, root, fn, ud)))
        return rc;
    json_t *ch = json_array_get(choices, 0); /* n > 1 is refused before translation */
    if (ch) {
        json_t *d = json_object_get(ch, "delta");
        if (!json_is_object(d))
            return BL_EFORMAT;
        if ((rc = text(json_object_get(d, "content"), fn, ud)) ||
            (rc = text(json_object_get(d, "refusal"), fn, ud)))
            return rc;
        json_t *calls = json_object_get(d, "tool_calls");
        if (json_is_array(calls) && (rc = tool_calls(r, calls, fn, ud)))
            return rc;
        json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr)) {
            r->finish_pending = true;
            r->finish = finish_of(json_string_value(fr));
        }
    }
    json_t *u = json_object_get(root, "usage");
    if (json_is_object(u)) {
        if ((rc = usage(u, fn, ud)))
            return rc;
        return finish(r, fn, ud); /* the usage chunk is the last one */
    }
    return BL_OK;
}

static int read_event(bl_xread_t *base, bl_str_t event, bl_str_t data, bl_xev_fn fn, void *ud)
{
    chat_reader_t *r = (chat_reader_t *)base;
    (void)event;
    if (data.n == 6 && !memcmp(data.p, "[DONE]", 6)) {
        base->done = true;
        if (r->started && !r->finish_pending && !r->finished)
            return BL_EFORMAT; /* ended without a finish reason */
        return finish(r, fn, ud);
    }
    /* Most chunks carry a piece of content and nothing else: read those
       with the scanner, without a tree (the same reading jansson gives) */
    bl_xchat_chunk_t ck;
    if (r->started && !bl_xchat_chunk_read(data.p, data.n, &ck) && !ck.error &&
        ck.choices_array && ck.n_choices == 1 && !ck.tool0 && !ck.finished0 &&
        ck.usage.kind == BL_JSON_NONE && (ck.text0.p || !ck.any_shows)) {
        if (!ck.text0.p || ck.text0.n <= 2)
            return BL_OK;
        bl_buf_reset(&r->text);
        if (bl_buf_reserve(&r->text, ck.text0.n + 1))
            return BL_ENOMEM;
        long k = bl_json_unescape(ck.text0.p, ck.text0.n, r->text.data, ck.text0.n + 1);
        if (k > 0) {
            bl_xev_t ev = {.kind = BL_XEV_TEXT, .text = r->text.data, .text_len = (size_t)k};
            return emit(fn, ud, &ev);
        }
    }
    json_t *root = json_loadb(data.p, data.n, 0, NULL);
    int rc = json_is_object(root) ? chunk(r, root, fn, ud) : BL_EFORMAT;
    json_decref(root);
    return rc;
}

static int read_eof(bl_xread_t *base, bl_xev_fn fn, void *ud)
{
    return finish((chat_reader_t *)base, fn, ud);
}

static int read_body(bl_xread_t *base, const char *body, size_t n, bl_xev_fn fn, void *ud)
{
    chat_reader_t *r = (chat_reader_t *)base;
    json_t *root = json_loadb(body, n, 0, NULL);
    int rc = BL_EFORMAT;
    if (!json_is_object(root))
        goto done;
    json_t *e = json_object_get(root, "error");
    if (e) {
        rc = error_event(e, fn, ud);
        goto done;
    }
    json_t *ch = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(ch, "message");
    if (!json_is_object(msg))
        goto done;
    if ((rc = start(r, root, fn, ud)) || (rc = text(json_object_get(msg, "content"), fn, ud)) ||
        (rc = text(json_object_get(msg, "refusal"), fn, ud)))
        goto done;
    json_t *calls = json_object_get(msg, "tool_calls");
    if (json_is_array(calls) && (rc = tool_calls(r, calls, fn, ud)))
        goto done;
    if ((rc = usage(json_object_get(root, "usage"), fn, ud)))
        goto done;
    r->finish_pending = true;
    r->finish = finish_of(json_string_value(json_object_get(ch, "finish_reason")));
    base->done = true;
    rc = finish(r, fn, ud);
done:
    json_decref(root);
    return rc;
}

static void read_free(bl_xread_t *base)
{
    bl_buf_free(&((chat_reader_t *)base)->text);
    free(base);
}

static const bl_xread_ops_t OPS = {read_event, read_body, read_free, read_eof};

int bl_xchat_reader_new(bl_xread_t **out)
{
    chat_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return BL_ENOMEM;
    bl_xread_base_init(&r->base, &OPS, BL_FAM_CHAT);
    for (int i = 0; i < MAX_TOOL_CALLS; i++)
        r->tool_index[i] = -1;
    *out = &r->base;
    return BL_OK;
}
