/*
 * Reading an OpenAI Responses answer (target side): the streaming events
 * (response.created ... response.completed) or a whole Response object,
 * into bl_xev_t events. It also keeps bl_xstate_t as a Responses client of
 * this stream sees it (response id, next sequence_number, next
 * output_index, the open message item), so a resumed writer can continue
 * a passed-through stream.
 *
 * Decisions: response.refusal.delta is read as TEXT (the client should see
 * the refusal; the finish stays STOP). Reasoning items reach the caller as
 * OPAQUE when their output_item.done goes by; reasoning summary deltas are
 * skipped. Hosted-tool items (web_search_call, ...) are skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

#define MAX_CALLS 4096 /* function_call items tracked in one answer */

typedef struct {
    int output_index;
    int tool_index;
    bool args_seen; /* a delta went by: the .done event adds nothing */
    bool done;
    bool custom; /* custom_tool_call: its input goes out as {"input": "<text>"} */
    bool closed; /* custom: the closing "} went out */
} rcall_t;

typedef struct {
    bl_xread_t base;
    bool started, finished;
    bool text_seen; /* a delta went by for the open message item */
    bool any_item;  /* some output item went by (a stream, not only a final object) */
    rcall_t *calls;
    size_t n_calls, cap_calls;
    bl_xev_fn fn;
    void *ud;
} rread_t;

static int emit(rread_t *r, bl_xev_t *ev)
{
    return r->fn(r->ud, ev) ? BL_ECANCELED : BL_OK;
}

static void copy(char *dst, size_t cap, const char *s)
{
    if (s) {
        size_t n = strlen(s);
        if (n >= cap)
            n = cap - 1;
        memcpy(dst, s, n);
        dst[n] = '\0';
    }
}

/* Take id / model / created_at from a response object and emit START once. */
static int start(rread_t *r, json_t *resp)
{
    bl_xstate_t *st = &r->base.st;
    if (json_is_object(resp)) {
        copy(st->id, sizeof st->id, json_string_value(json_object_get(resp, "id")));
        copy(st->model, sizeof st->model, json_string_value(json_object_get(resp, "model")));
        json_t *c = json_object_get(resp, "created_at");
        if (json_is_number(c))
            st->created = (int64_t)json_number_value(c);
    }
    if (r->started)
        return BL_OK;
    r->started = st->started = true;
    bl_xev_t ev = {.kind = BL_XEV_START, .id = st->id, .model = st->model};
    return emit(r, &ev);
}

static int text(rread_t *r, const char *s, size_t n)
{
    if (!n)
        return BL_OK;
    bl_xev_t ev = {.kind = BL_XEV_TEXT, .text = s, .text_len = n};
    return emit(r, &ev);
}

static rcall_t *find_call(rread_t *r, int output_index)
{
    for (size_t i = 0; i < r->n_calls; i++)
        if (r->calls[i].output_index == output_index)
            return &r->calls[i];
    return NULL;
}

/* A piece of a call's arguments: pre + s (JSON-escaped when esc) + post. A
 * custom tool's freeform input is streamed inside {"input":"..."}, the shape
 * of the function the request side turned the custom tool into. */
static int args_piece(rread_t *r, rcall_t *c, const char *pre, const char *s, size_t n, bool esc,
                      const char *post)
{
    bl_buf_t b = {0};
    int rc = BL_ENOMEM;
    bl_buf_append_str(&b, pre);
    if (esc && n) {
        json_t *j = json_stringn(s, n);
        char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (!d) {
            rc = j ? BL_ENOMEM : BL_EFORMAT;
            goto done;
        }
        bl_buf_append(&b, d + 1, strlen(d) - 2); /* without the quotes */
        free(d);
    } else if (n) {
        bl_buf_append(&b, s, n);
    }
    bl_buf_append_str(&b, post);
    rc = BL_OK;
    if (b.len) {
        bl_xev_t ev = {
            .kind = BL_XEV_TOOL_ARGS, .index = c->tool_index, .text = b.data, .text_len = b.len};
        rc = emit(r, &ev);
    }
done:
    bl_buf_free(&b);
    return rc;
}

static int close_custom(rread_t *r, rcall_t *c)
{
    if (!c->custom || c->closed)
        return BL_OK;
    c->closed = true;
    return args_piece(r, c, "", NULL, 0, false, "\"}");
}

/* A function_call (or custom_tool_call) item starts: TOOL_START, and its
 * arguments if it has any already (a server that sends the item whole). */
static int call_start(rread_t *r, json_t *item, int output_index, rcall_t **out)
{
    if (r->n_calls >= MAX_CALLS)
        return BL_EFORMAT;
    if (r->n_calls == r->cap_calls) {
        size_t nc = r->cap_calls ? r->cap_calls * 2 : 8;
        rcall_t *p = realloc(r->calls, nc * sizeof *p);
        if (!p)
            return BL_ENOMEM;
        r->calls = p;
        r->cap_calls = nc;
    }
    rcall_t *c = &r->calls[r->n_calls++];
    *c = (rcall_t){.output_index = output_index, .tool_index = r->base.st.n_tool_calls++};
    json_t *call_id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    if (!json_is_string(call_id) || !json_is_string(name))
        return BL_EFORMAT;
    c->custom = !strcmp(json_string_value(json_object_get(item, "type")), "custom_tool_call");
    bl_xev_t ev = {.kind = BL_XEV_TOOL_START,
                   .index = c->tool_index,
                   .id = json_string_value(call_id),
                   .name = json_string_value(name)};
    int rc = emit(r, &ev);
    *out = c;
    if (c->custom) {
        json_t *in = json_object_get(item, "input");
        size_t n = json_string_length(in);
        c->args_seen = n > 0;
        return rc ? rc : args_piece(r, c, "{\"input\":\"", json_string_value(in), n, true, "");
    }
    json_t *args = json_object_get(item, "arguments");
    if (!rc && json_is_string(args) && json_string_length(args)) {
        bl_xev_t a = {.kind = BL_XEV_TOOL_ARGS,
                      .index = c->tool_index,
                      .text = json_string_value(args),
                      .text_len = json_string_length(args)};
        c->args_seen = true;
        rc = emit(r, &a);
    }
    return rc;
}

/* The text of a whole message item (its output_text and refusal parts). */
static int message_text(rread_t *r, json_t *item)
{
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(item, "content"), i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            t = json_object_get(part, "refusal");
        if (json_is_string(t)) {
            int rc = text(r, json_string_value(t), json_string_length(t));
            if (rc)
                return rc;
        }
    }
    return BL_OK;
}

static int opaque(rread_t *r, json_t *item)
{
    bl_xev_t ev = {.kind = BL_XEV_OPAQUE, .raw = item};
    return emit(r, &ev);
}

/* Every item of a whole output list, for a body or a final object that
 * arrived without the item events. */
static int output_items(rread_t *r, json_t *output)
{
    size_t i;
    json_t *item;
    json_array_foreach(output, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        if (!type)
            return BL_EFORMAT;
        int rc = BL_OK;
        if (!strcmp(type, "message")) {
            rc = message_text(r, item);
        } else if (!strcmp(type, "function_call") || !strcmp(type, "custom_tool_call")) {
            rcall_t *c;
            rc = call_start(r, item, (int)i, &c);
            if (!rc)
                rc = close_custom(r, c);
        } else if (!strcmp(type, "reasoning")) {
            rc = opaque(r, item);
        }
        if (rc)
            return rc;
    }
    return BL_OK;
}

static bl_xerr_kind_t kind_of_code(const char *code)
{
    if (!code)
        return BL_XERR_API;
    if (!strcmp(code, "rate_limit_exceeded") || !strcmp(code, "insufficient_quota"))
        return BL_XERR_RATE_LIMIT;
    if (!strcmp(code, "context_length_exceeded") || !strcmp(code, "invalid_prompt") ||
        !strcmp(code, "invalid_request_error") || !strncmp(code, "invalid_", 8))
        return BL_XERR_INVALID_REQUEST;
    if (!strcmp(code, "server_is_overloaded") || !strcmp(code, "overloaded") ||
        !strcmp(code, "slow_down"))
        return BL_XERR_OVERLOADED;
    if (!strcmp(code, "timeout"))
        return BL_XERR_TIMEOUT;
    return BL_XERR_API;
}

static int error_ev(rread_t *r, json_t *e)
{
    const char *code = json_string_value(json_object_get(e, "code"));
    if (!code)
        code = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    bl_xev_t ev = {.kind = BL_XEV_ERROR,
                   .err_kind = kind_of_code(code),
                   .text = msg ? msg : "the upstream response failed"};
    ev.text_len = strlen(ev.text);
    r->finished = r->base.done = true;
    return emit(r, &ev);
}

/* usage, then FINISH, for a final response object. */
static int finish(rread_t *r, json_t *resp, const char *status)
{
    int rc;
    if (!r->any_item && (rc = output_items(r, json_object_get(resp, "output"))))
        return rc;
    for (size_t i = 0; i < r->n_calls; i++)
        if ((rc = close_custom(r, &r->calls[i])))
            return rc;
    json_t *u = json_object_get(resp, "usage");
    if (json_is_object(u)) {
        json_t *in = json_object_get(u, "input_tokens"), *out = json_object_get(u, "output_tokens");
        json_t *cached =
            json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens");
        bl_xev_t ev = {.kind = BL_XEV_USAGE,
                       .input_tokens = json_is_integer(in) ? json_integer_value(in) : -1,
                       .output_tokens = json_is_integer(out) ? json_integer_value(out) : -1,
                       .cached_tokens = json_is_integer(cached) ? json_integer_value(cached) : -1};
        if ((rc = emit(r, &ev)))
            return rc;
    }
    bl_xev_t ev = {.kind = BL_XEV_FINISH,
                   .finish = r->base.st.n_tool_calls ? BL_XFIN_TOOL_CALLS : BL_XFIN_STOP};
    if (status && !strcmp(status, "incomplete")) {
        const char *why = json_string_value(
            json_object_get(json_object_get(resp, "incomplete_details"), "reason"));
        ev.finish =
            why && !strcmp(why, "content_filter") ? BL_XFIN_CONTENT_FILTER : BL_XFIN_LENGTH;
    }
    r->finished = r->base.done = true;
    r->base.st.open_index = -1;
    return emit(r, &ev);
}

static int item_added(rread_t *r, json_t *item, int oi)
{
    bl_xstate_t *st = &r->base.st;
    const char *type = json_string_value(json_object_get(item, "type"));
    if (!type)
        return BL_EFORMAT;
    r->any_item = true;
    if (oi + 1 > st->next_index)
        st->next_index = oi + 1;
    if (!strcmp(type, "message")) {
        st->open_index = oi;
        st->item_id[0] = '\0';
        copy(st->item_id, sizeof st->item_id, json_string_value(json_object_get(item, "id")));
        r->text_seen = false;
        return BL_OK;
    }
    if (!strcmp(type, "function_call") || !strcmp(type, "custom_tool_call")) {
        rcall_t *c;
        return call_start(r, item, oi, &c);
    }
    return BL_OK; /* reasoning and hosted-tool items: nothing until done */
}

static int item_done(rread_t *r, json_t *item, int oi)
{
    bl_xstate_t *st = &r->base.st;
    const char *type = json_string_value(json_object_get(item, "type"));
    if (!type)
        return BL_EFORMAT;
    r->any_item = true;
    if (oi + 1 > st->next_index)
        st->next_index = oi + 1;
    int rc = BL_OK;
    if (!strcmp(type, "message")) {
        if (!r->text_seen || st->open_index != oi)
            rc = message_text(r, item); /* a server that sent no deltas */
        r->text_seen = false;
        if (st->open_index == oi)
            st->open_index = -1;
    } else if (!strcmp(type, "function_call") || !strcmp(type, "custom_tool_call")) {
        rcall_t *c = find_call(r, oi);
        if (!c) {
            rc = call_start(r, item, oi, &c);
        } else if (c->custom && !c->args_seen) {
            json_t *in = json_object_get(item, "input");
            c->args_seen = true;
            rc = args_piece(r, c, "", json_string_value(in), json_string_length(in), true, "");
        }
        if (!rc && c) {
            c->done = true;
            rc = close_custom(r, c);
        }
    } else if (!strcmp(type, "reasoning")) {
        rc = opaque(r, item);
    }
    return rc;
}

static int call_args(rread_t *r, json_t *d, int oi, bool is_done)
{
    rcall_t *c = find_call(r, oi);
    if (!c || c->closed)
        return BL_EFORMAT;
    json_t *s = json_object_get(d, is_done ? (c->custom ? "input" : "arguments") : "delta");
    if (!json_is_string(s))
        return BL_EFORMAT;
    if (is_done && c->args_seen)
        return BL_OK;
    c->args_seen = true;
    if (c->custom)
        return args_piece(r, c, "", json_string_value(s), json_string_length(s), true, "");
    if (!json_string_length(s))
        return BL_OK;
    bl_xev_t ev = {.kind = BL_XEV_TOOL_ARGS,
                   .index = c->tool_index,
                   .text = json_string_value(s),
                   .text_len = json_string_length(s)};
    return emit(r, &ev);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int on_event(rread_t *r, json_t *d)
{
    const char *type = json_string_value(json_object_get(d, "type"));
    json_t *err = json_object_get(d, "error");
    if (!type && json_is_object(err)) /* some compatible servers: data {"error":{...}} */
        return error_ev(r, err);
    if (!type)
        return BL_EFORMAT;
    bl_xstate_t *st = &r->base.st;
    json_t *seq = json_object_get(d, "sequence_number");
    if (json_is_integer(seq))
        st->next_seq = json_integer_value(seq) + 1;
    else
        st->next_seq++; /* servers without sequence numbers: count the events */
    json_t *resp = json_object_get(d, "response");
    json_t *oij = json_object_get(d, "output_index");
    int oi =
        json_is_integer(oij) && json_integer_value(oij) >= 0 && json_integer_value(oij) < 1000000
            ? (int)json_integer_value(oij)
            : -1;
    int rc;

    /* errors need no START first: nothing may have reached the client yet */
    if (!strcmp(type, "error"))
        return error_ev(r, d);
    if (!strcmp(type, "response.failed")) {
        json_t *e = json_object_get(resp, "error");
        return error_ev(r, json_is_object(e) ? e : d);
    }
    if (!strcmp(type, "response.created") || !strcmp(type, "response.in_progress") ||
        !strcmp(type, "response.queued"))
        return json_is_object(resp) ? start(r, resp) : BL_EFORMAT;
    if ((rc = start(r, NULL)))
        return rc;
    if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")) {
        if (!json_is_object(resp))
            return BL_EFORMAT;
        if ((rc = start(r, resp)))
            return rc;
        return finish(r, resp, json_string_value(json_object_get(resp, "status")));
    }
    if (!strcmp(type, "response.output_item.added") || !strcmp(type, "response.output_item.done")) {
        json_t *item = json_object_get(d, "item");
        if (!json_is_object(item) || oi < 0)
            return BL_EFORMAT;
        return ends_with(type, ".added") ? item_added(r, item, oi) : item_done(r, item, oi);
    }
    if (!strcmp(type, "response.output_text.delta") || !strcmp(type, "response.refusal.delta")) {
        json_t *delta = json_object_get(d, "delta");
        if (!json_is_string(delta))
            return BL_EFORMAT;
        r->text_seen = true;
        return text(r, json_string_value(delta), json_string_length(delta));
    }
    if (!strcmp(type, "response.function_call_arguments.delta") ||
        !strcmp(type, "response.function_call_arguments.done")) {
        if (oi < 0)
            return BL_EFORMAT;
        return call_args(r, d, oi, ends_with(type, ".done"));
    }
    if (!strcmp(type, "response.custom_tool_call_input.delta") ||
        !strcmp(type, "response.custom_tool_call_input.done")) {
        if (oi < 0)
            return BL_EFORMAT;
        return call_args(r, d, oi, ends_with(type, ".done"));
    }
    return BL_OK; /* content_part.*, *.done, reasoning summaries, hosted tools: nothing */
}

static int read_event(bl_xread_t *base, bl_str_t event, bl_str_t data, bl_xev_fn fn, void *ud)
{
    rread_t *r = (rread_t *)base;
    (void)event; /* the data's "type" says the same and is always there */
    if (r->finished)
        return BL_OK;
    if (bl_str_eq(data, "[DONE]")) /* some compatible servers add it */
        return BL_OK;
    json_t *d = json_loadb(data.p ? data.p : "", data.n, 0, NULL);
    if (!json_is_object(d)) {
        json_decref(d);
        return BL_EFORMAT;
    }
    r->fn = fn;
    r->ud = ud;
    int rc = on_event(r, d);
    json_decref(d);
    return rc;
}

static int read_body(bl_xread_t *base, const char *body, size_t n, bl_xev_fn fn, void *ud)
{
    rread_t *r = (rread_t *)base;
    json_t *d = json_loadb(body ? body : "", n, 0, NULL);
    int rc = BL_EFORMAT;
    if (!json_is_object(d))
        goto done;
    r->fn = fn;
    r->ud = ud;
    json_t *e = json_object_get(d, "error");
    json_t *output = json_object_get(d, "output");
    const char *status = json_string_value(json_object_get(d, "status"));
    if (json_is_object(e) && (!json_is_array(output) || (status && !strcmp(status, "failed")))) {
        rc = error_ev(r, e);
        goto done;
    }
    if (!json_is_array(output))
        goto done;
    if ((rc = start(r, d)))
        goto done;
    rc = finish(r, d, status);
done:
    json_decref(d);
    return rc;
}

static void read_free(bl_xread_t *base)
{
    rread_t *r = (rread_t *)base;
    free(r->calls);
    free(r);
}

static const bl_xread_ops_t ops = {read_event, read_body, read_free, NULL};

int bl_xresp_reader_new(bl_xread_t **out)
{
    rread_t *r = calloc(1, sizeof *r);
    if (!r)
        return BL_ENOMEM;
    bl_xread_base_init(&r->base, &ops, BL_FAM_RESPONSES);
    *out = &r->base;
    return BL_OK;
}
