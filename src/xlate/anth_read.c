/*
 * Reads an Anthropic Messages answer (target side): the SSE events of a
 * stream (message_start, content_block_start/delta/stop, message_delta,
 * message_stop, ping, error) or a whole Message object, into events.
 *
 * Text and tool_use blocks become TEXT and TOOL_START/TOOL_ARGS; thinking,
 * redacted_thinking and server tool blocks are skipped but still counted as
 * content blocks, because a client of this family saw them (st.next_index).
 * USAGE comes twice in a stream: input tokens at message_start (output
 * unknown, -1) and the totals at message_delta. FINISH is sent at
 * message_stop, the family's end of stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

typedef enum { BLK_NONE = 0, BLK_TEXT, BLK_TOOL, BLK_OTHER } blk_kind_t;

typedef struct {
    bl_xread_t base;
    bool started;  /* message_start went by */
    bool finished; /* FINISH emitted */
    int blk_index; /* the open content block, -1 none */
    blk_kind_t blk;
    int tool_index; /* the open tool_use block's tool call index */
    int n_tools;
    bl_xfinish_t finish;
    char stop_seq[256];
    bool has_stop_seq;
    int64_t in_tokens, out_tokens, cached_tokens; /* -1 unknown */
    int64_t cache_created;
} anth_reader_t;

static void set_cstr(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static bl_xfinish_t finish_of(const char *s)
{
    if (!s)
        return BL_XFIN_STOP;
    if (!strcmp(s, "max_tokens") || !strcmp(s, "model_context_window_exceeded"))
        return BL_XFIN_LENGTH;
    if (!strcmp(s, "stop_sequence"))
        return BL_XFIN_STOP_SEQUENCE;
    if (!strcmp(s, "tool_use"))
        return BL_XFIN_TOOL_CALLS;
    if (!strcmp(s, "refusal"))
        return BL_XFIN_CONTENT_FILTER;
    return BL_XFIN_STOP; /* end_turn, pause_turn */
}

static bl_xerr_kind_t kind_of_type(const char *t)
{
    static const struct {
        const char *name;
        bl_xerr_kind_t kind;
    } map[] = {
        {"invalid_request_error", BL_XERR_INVALID_REQUEST},
        {"authentication_error", BL_XERR_AUTHENTICATION},
        {"permission_error", BL_XERR_PERMISSION},
        {"not_found_error", BL_XERR_NOT_FOUND},
        {"request_too_large", BL_XERR_TOO_LARGE},
        {"rate_limit_error", BL_XERR_RATE_LIMIT},
        {"overloaded_error", BL_XERR_OVERLOADED},
        {"timeout_error", BL_XERR_TIMEOUT},
    };
    for (size_t i = 0; t && i < BL_ARRAY_LEN(map); i++)
        if (!strcmp(t, map[i].name))
            return map[i].kind;
    return BL_XERR_API;
}

static int emit(bl_xev_fn fn, void *ud, const bl_xev_t *ev)
{
    return fn(ud, ev) ? BL_ECANCELED : BL_OK;
}

static bl_xev_t ev_of(bl_xev_kind_t k)
{
    bl_xev_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = k;
    ev.input_tokens = ev.output_tokens = ev.cached_tokens = -1;
    return ev;
}

static int64_t int_or(json_t *o, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Usage fields present in u update the totals. */
static void take_usage(anth_reader_t *a, json_t *u)
{
    if (!json_is_object(u))
        return;
    a->in_tokens = int_or(u, "input_tokens", a->in_tokens);
    a->out_tokens = int_or(u, "output_tokens", a->out_tokens);
    a->cached_tokens = int_or(u, "cache_read_input_tokens", a->cached_tokens);
    a->cache_created = int_or(u, "cache_creation_input_tokens", a->cache_created);
}

/* Anthropic counts cache reads and writes apart from input_tokens; inside
 * ballast (as in OpenAI's usage) the input count includes them. */
static int emit_usage(anth_reader_t *a, bool with_output, bl_xev_fn fn, void *ud)
{
    bl_xev_t ev = ev_of(BL_XEV_USAGE);
    ev.input_tokens = a->in_tokens;
    if (ev.input_tokens >= 0 && a->cached_tokens > 0)
        ev.input_tokens += a->cached_tokens;
    if (ev.input_tokens >= 0 && a->cache_created > 0)
        ev.input_tokens += a->cache_created;
    ev.output_tokens = with_output ? a->out_tokens : -1;
    ev.cached_tokens = a->cached_tokens;
    return emit(fn, ud, &ev);
}

static int on_start(anth_reader_t *a, json_t *msg, bl_xev_fn fn, void *ud)
{
    if (!json_is_object(msg))
        return BL_EFORMAT;
    const char *id = json_string_value(json_object_get(msg, "id"));
    const char *model = json_string_value(json_object_get(msg, "model"));
    if (!id)
        return BL_EFORMAT;
    set_cstr(a->base.st.id, sizeof a->base.st.id, id);
    set_cstr(a->base.st.model, sizeof a->base.st.model, model);
    a->base.st.started = true;
    a->started = true;
    bl_xev_t ev = ev_of(BL_XEV_START);
    ev.id = id;
    ev.model = model;
    return emit(fn, ud, &ev);
}

static int text_event(const char *s, size_t n, bl_xev_fn fn, void *ud)
{
    if (!n)
        return BL_OK;
    bl_xev_t ev = ev_of(BL_XEV_TEXT);
    ev.text = s;
    ev.text_len = n;
    return emit(fn, ud, &ev);
}

static int tool_start(anth_reader_t *a, json_t *blk, bl_xev_fn fn, void *ud)
{
    const char *id = json_string_value(json_object_get(blk, "id"));
    const char *name = json_string_value(json_object_get(blk, "name"));
    if (!id || !name)
        return BL_EFORMAT;
    a->tool_index = a->n_tools++;
    a->base.st.n_tool_calls = a->n_tools;
    bl_xev_t ev = ev_of(BL_XEV_TOOL_START);
    ev.index = a->tool_index;
    ev.id = id;
    ev.name = name;
    return emit(fn, ud, &ev);
}

static int tool_args(anth_reader_t *a, const char *s, size_t n, bl_xev_fn fn, void *ud)
{
    if (!n)
        return BL_OK;
    bl_xev_t ev = ev_of(BL_XEV_TOOL_ARGS);
    ev.index = a->tool_index;
    ev.text = s;
    ev.text_len = n;
    return emit(fn, ud, &ev);
}

static int finish(anth_reader_t *a, bl_xev_fn fn, void *ud)
{
    if (a->finished)
        return BL_OK;
    a->finished = true;
    bl_xev_t ev = ev_of(BL_XEV_FINISH);
    ev.finish = a->finish;
    ev.stop_sequence = a->has_stop_seq ? a->stop_seq : NULL;
    return emit(fn, ud, &ev);
}

static int error_event(json_t *root, bl_xev_fn fn, void *ud)
{
    json_t *e = json_object_get(root, "error");
    bl_xev_t ev = ev_of(BL_XEV_ERROR);
    ev.err_kind = kind_of_type(json_string_value(json_object_get(e, "type")));
    ev.text = json_string_value(json_object_get(e, "message"));
    if (!ev.text)
        ev.text = "the upstream stream failed";
    ev.text_len = strlen(ev.text);
    return emit(fn, ud, &ev);
}

static void take_stop(anth_reader_t *a, json_t *d)
{
    json_t *sr = json_object_get(d, "stop_reason");
    if (json_is_string(sr))
        a->finish = finish_of(json_string_value(sr));
    const char *ss = json_string_value(json_object_get(d, "stop_sequence"));
    if (ss) {
        set_cstr(a->stop_seq, sizeof a->stop_seq, ss);
        a->has_stop_seq = true;
    }
}

static int block_start(anth_reader_t *a, json_t *root, bl_xev_fn fn, void *ud)
{
    json_t *idx = json_object_get(root, "index");
    json_t *blk = json_object_get(root, "content_block");
    const char *t = json_string_value(json_object_get(blk, "type"));
    if (!json_is_integer(idx) || !t)
        return BL_EFORMAT;
    json_int_t i = json_integer_value(idx);
    if (i < 0 || i > 100000)
        return BL_EFORMAT;
    a->blk_index = (int)i;
    if (a->base.st.next_index < (int)i + 1)
        a->base.st.next_index = (int)i + 1;
    if (!strcmp(t, "text")) {
        a->blk = BLK_TEXT;
        a->base.st.open_index = (int)i;
        json_t *s = json_object_get(blk, "text");
        return json_is_string(s) ? text_event(json_string_value(s), json_string_length(s), fn, ud)
                                 : BL_OK;
    }
    if (!strcmp(t, "tool_use")) {
        a->blk = BLK_TOOL;
        int rc = tool_start(a, blk, fn, ud);
        json_t *in = json_object_get(blk, "input");
        if (!rc && json_is_object(in) && json_object_size(in)) {
            char *s = json_dumps(in, JSON_COMPACT | JSON_PRESERVE_ORDER);
            rc = s ? tool_args(a, s, strlen(s), fn, ud) : BL_ENOMEM;
            free(s);
        }
        return rc;
    }
    a->blk = BLK_OTHER; /* thinking, redacted_thinking, server tool blocks */
    return BL_OK;
}

static int block_delta(anth_reader_t *a, json_t *root, bl_xev_fn fn, void *ud)
{
    json_t *idx = json_object_get(root, "index");
    json_t *d = json_object_get(root, "delta");
    const char *t = json_string_value(json_object_get(d, "type"));
    if (!json_is_integer(idx) || !t)
        return BL_EFORMAT;
    if (json_integer_value(idx) != a->blk_index)
        return BL_EFORMAT; /* a delta for a block that is not open */
    if (!strcmp(t, "text_delta")) {
        json_t *s = json_object_get(d, "text");
        if (!json_is_string(s) || a->blk != BLK_TEXT)
            return BL_EFORMAT;
        return text_event(json_string_value(s), json_string_length(s), fn, ud);
    }
    if (!strcmp(t, "input_json_delta")) {
        json_t *s = json_object_get(d, "partial_json");
        if (!json_is_string(s))
            return BL_EFORMAT;
        if (a->blk != BLK_TOOL)
            return BL_OK; /* server tool input */
        return tool_args(a, json_string_value(s), json_string_length(s), fn, ud);
    }
    return BL_OK; /* thinking_delta, signature_delta, citations_delta */
}

static int on_json(anth_reader_t *a, json_t *root, bl_xev_fn fn, void *ud)
{
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type)
        return BL_EFORMAT;
    if (!strcmp(type, "ping"))
        return BL_OK;
    if (!strcmp(type, "error"))
        return error_event(root, fn, ud);
    if (!strcmp(type, "message_start")) {
        if (a->started)
            return BL_EFORMAT;
        json_t *msg = json_object_get(root, "message");
        int rc = on_start(a, msg, fn, ud);
        if (rc)
            return rc;
        json_t *u = json_object_get(msg, "usage");
        if (!json_is_object(u))
            return BL_OK;
        take_usage(a, u);
        a->out_tokens = -1; /* message_start's output count is a placeholder */
        return emit_usage(a, false, fn, ud);
    }
    if (!a->started)
        return BL_EFORMAT;
    if (a->finished)
        return BL_OK;
    if (!strcmp(type, "content_block_start"))
        return block_start(a, root, fn, ud);
    if (!strcmp(type, "content_block_delta"))
        return block_delta(a, root, fn, ud);
    if (!strcmp(type, "content_block_stop")) {
        json_t *idx = json_object_get(root, "index");
        if (!json_is_integer(idx))
            return BL_EFORMAT;
        if (json_integer_value(idx) == a->base.st.open_index)
            a->base.st.open_index = -1;
        a->blk = BLK_NONE;
        a->blk_index = -1;
        return BL_OK;
    }
    if (!strcmp(type, "message_delta")) {
        json_t *d = json_object_get(root, "delta");
        if (!json_is_object(d))
            return BL_EFORMAT;
        take_stop(a, d);
        json_t *u = json_object_get(root, "usage");
        if (!json_is_object(u))
            return BL_OK;
        take_usage(a, u);
        return emit_usage(a, true, fn, ud);
    }
    if (!strcmp(type, "message_stop")) {
        a->base.done = true;
        a->base.st.open_index = -1;
        return finish(a, fn, ud);
    }
    return BL_OK; /* event types added later are to be ignored */
}

static int anth_event(bl_xread_t *r, bl_str_t event, bl_str_t data, bl_xev_fn fn, void *ud)
{
    (void)event; /* the data's "type" says the same */
    anth_reader_t *a = (anth_reader_t *)r;
    json_t *root = json_loadb(data.p ? data.p : "", data.n, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return BL_EFORMAT;
    }
    int rc = on_json(a, root, fn, ud);
    json_decref(root);
    return rc;
}

static int anth_body(bl_xread_t *r, const char *body, size_t n, bl_xev_fn fn, void *ud)
{
    anth_reader_t *a = (anth_reader_t *)r;
    json_t *root = json_loadb(body ? body : "", n, 0, NULL);
    int rc = BL_EFORMAT;
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type || a->started)
        goto done;
    if (!strcmp(type, "error")) {
        rc = error_event(root, fn, ud);
        goto done;
    }
    json_t *content = json_object_get(root, "content");
    if (strcmp(type, "message") || !json_is_array(content))
        goto done;
    if ((rc = on_start(a, root, fn, ud)))
        goto done;
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk)
    {
        const char *t = json_string_value(json_object_get(blk, "type"));
        if (!t) {
            rc = BL_EFORMAT;
            goto done;
        }
        a->base.st.next_index = (int)i + 1;
        if (!strcmp(t, "text")) {
            json_t *s = json_object_get(blk, "text");
            if (!json_is_string(s)) {
                rc = BL_EFORMAT;
                goto done;
            }
            rc = text_event(json_string_value(s), json_string_length(s), fn, ud);
        } else if (!strcmp(t, "tool_use")) {
            json_t *in = json_object_get(blk, "input");
            if ((rc = tool_start(a, blk, fn, ud)))
                goto done;
            char *s = json_is_object(in) ? json_dumps(in, JSON_COMPACT | JSON_PRESERVE_ORDER)
                                         : strdup("{}");
            rc = s ? tool_args(a, s, strlen(s), fn, ud) : BL_ENOMEM;
            free(s);
        }
        if (rc)
            goto done;
    }
    json_t *u = json_object_get(root, "usage");
    take_stop(a, root);
    if (json_is_object(u)) {
        take_usage(a, u);
        if ((rc = emit_usage(a, true, fn, ud)))
            goto done;
    }
    a->base.done = true;
    rc = finish(a, fn, ud);
done:
    json_decref(root);
    return rc;
}

static void anth_free(bl_xread_t *r)
{
    free(r);
}

static const bl_xread_ops_t OPS = {anth_event, anth_body, anth_free, NULL};

int bl_xanth_reader_new(bl_xread_t **out)
{
    *out = NULL;
    anth_reader_t *a = calloc(1, sizeof *a);
    if (!a)
        return BL_ENOMEM;
    bl_xread_base_init(&a->base, &OPS, BL_FAM_ANTHROPIC);
    a->blk_index = -1;
    a->in_tokens = a->out_tokens = a->cached_tokens = a->cache_created = -1;
    *out = &a->base;
    return BL_OK;
}
