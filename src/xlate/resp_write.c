/*
 * Writing an answer as an OpenAI Responses client expects it (client side):
 * the streaming event sequence, every event with "type" and
 * "sequence_number" and an "event: <type>" SSE line, or the whole Response
 * object when not streaming.
 *
 *   response.created, response.in_progress           (status in_progress, output [])
 *   text:  output_item.added (message) -> content_part.added -> output_text.delta...
 *          -> output_text.done -> content_part.done -> output_item.done
 *   calls: output_item.added (function_call) -> function_call_arguments.delta...
 *          -> function_call_arguments.done -> output_item.done
 *          (a custom tool's call: custom_tool_call with custom_tool_call_input.delta
 *          and .done, its input sent whole when the call closes)
 *   response.completed | response.incomplete (LENGTH, CONTENT_FILTER) with the
 *   whole response object; response.failed on errors (bl_xwrite_fail before
 *   anything else writes it alone; not streaming, it writes an error body).
 *
 * Function-call items stay open until FINISH so that arguments of parallel
 * calls may arrive interleaved (items are told apart by output_index); a
 * message item closes when a call starts. The final event waits for USAGE
 * when that comes after FINISH (chat's usage chunk), or for bl_xwrite_end.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"
#include "xlate/xlate_int.h"

typedef struct {
    int index; /* the events' tool index */
    int output_index;
    char item_id[64]; /* fc_... */
    char *call_id, *name;
    bl_buf_t args;
    bool open;
    bool custom; /* a call of the client's custom tool: a custom_tool_call item */
} wcall_t;

typedef struct {
    bl_xwrite_t base;
    int64_t seq;
    int next_index;
    int base_index; /* output_index of output[0] (a resumed writer's first item) */
    json_t *output; /* items by output_index - base_index; null while open */
    bool created;   /* response.created went out (or the client saw it) */
    bool msg_open;
    int msg_index;
    char msg_id[128];
    bl_buf_t text;
    wcall_t *calls;
    size_t n_calls, cap_calls;
    bool have_finish, have_usage, final_done;
    bl_xfinish_t finish;
    int64_t in_tokens, out_tokens, cached_tokens;
} rwrite_t;

/* ---- the response object --------------------------------------------------- */

static json_t *doc_field(const bl_xreq_t *q, const char *key)
{
    if (!q || q->family != BL_FAM_RESPONSES || !q->doc)
        return NULL;
    json_t *v = json_object_get(q->doc, key);
    return v && !json_is_null(v) ? json_incref(v) : NULL;
}

static json_t *or_null(json_t *v)
{
    return v ? v : json_null();
}

static json_t *echo_instructions(const bl_xreq_t *q)
{
    json_t *v = doc_field(q, "instructions");
    if (v || !q)
        return or_null(v);
    bl_buf_t b = {0};
    for (size_t i = 0; i < q->n_msgs && q->msgs[i].role == BL_ROLE_SYSTEM; i++)
        for (size_t j = 0; j < q->msgs[i].n_parts; j++) {
            const bl_xpart_t *p = &q->msgs[i].parts[j];
            if (p->kind != BL_PART_TEXT)
                continue;
            if (b.len)
                bl_buf_append(&b, "\n\n", 2);
            bl_buf_append(&b, p->text ? p->text : "", p->text_len);
        }
    v = b.len ? json_stringn_nocheck(b.data, b.len) : json_null();
    bl_buf_free(&b);
    return v;
}

static json_t *echo_tools(const bl_xreq_t *q)
{
    json_t *v = doc_field(q, "tools");
    if (v)
        return v;
    json_t *arr = json_array();
    for (size_t i = 0; q && i < q->n_tools; i++) {
        const bl_xtool_t *t = &q->tools[i];
        json_t *o = json_pack(
            "{s:s, s:s, s:o, s:o, s:b}", "type", "function", "name", t->name ? t->name : "",
            "description", t->description ? json_string(t->description) : json_null(), "parameters",
            t->parameters ? json_incref(t->parameters) : json_null(), "strict", t->strict == 1);
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *echo_tool_choice(const bl_xreq_t *q)
{
    json_t *v = doc_field(q, "tool_choice");
    if (v)
        return v;
    switch (q ? q->tool_choice : BL_TC_UNSET) {
    case BL_TC_NONE:
        return json_string("none");
    case BL_TC_REQUIRED:
        return json_string("required");
    case BL_TC_NAMED:
        return json_pack("{s:s, s:s}", "type", "function", "name",
                         q->tool_choice_name ? q->tool_choice_name : "");
    default:
        return json_string("auto");
    }
}

static json_t *echo_text(const bl_xreq_t *q)
{
    json_t *v = doc_field(q, "text");
    if (v)
        return v;
    json_t *f;
    if (q && q->format == BL_FMT_JSON_OBJECT) {
        f = json_pack("{s:s}", "type", "json_object");
    } else if (q && q->format == BL_FMT_JSON_SCHEMA) {
        f = json_pack("{s:s, s:o, s:s, s:o, s:o}", "type", "json_schema", "description",
                      json_null(), "name", q->format_name ? q->format_name : "response", "schema",
                      q->format_schema ? json_incref(q->format_schema) : json_object(), "strict",
                      q->format_strict >= 0 ? json_boolean(q->format_strict) : json_null());
    } else {
        f = json_pack("{s:s}", "type", "text");
    }
    return json_pack("{s:o}", "format", f);
}

static json_t *usage_json(const rwrite_t *w)
{
    int64_t in = w->in_tokens > 0 ? w->in_tokens : 0, out = w->out_tokens > 0 ? w->out_tokens : 0;
    int64_t cached = w->cached_tokens > 0 ? w->cached_tokens : 0;
    return json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}", "input_tokens", (json_int_t)in,
                     "input_tokens_details", "cached_tokens", (json_int_t)cached, "output_tokens",
                     (json_int_t)out, "output_tokens_details", "reasoning_tokens", (json_int_t)0,
                     "total_tokens", (json_int_t)(in + out));
}

/* The whole response object. status "in_progress" has no output and no
 * usage yet; error is the failure object or NULL. */
static json_t *resp_obj(rwrite_t *w, const char *status, json_t *error)
{
    const bl_xreq_t *q = w->base.o.req;
    bool final = strcmp(status, "in_progress");
    json_t *incomplete = json_null();
    if (!strcmp(status, "incomplete"))
        incomplete = json_pack("{s:s}", "reason",
                               w->finish == BL_XFIN_CONTENT_FILTER ? "content_filter"
                                                                     : "max_output_tokens");
    json_t *output = json_array();
    size_t i;
    json_t *it;
    if (final)
        json_array_foreach(w->output, i, it) if (!json_is_null(it)) json_array_append(output, it);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(w->base.id));
    json_object_set_new(o, "object", json_string("response"));
    json_object_set_new(o, "created_at", json_integer(w->base.o.created));
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "background", json_false());
    json_object_set_new(o, "error", or_null(error));
    json_object_set_new(o, "incomplete_details", incomplete);
    json_object_set_new(o, "instructions", echo_instructions(q));
    json_object_set_new(o, "max_output_tokens",
                        q && q->max_tokens > 0 ? json_integer(q->max_tokens) : json_null());
    json_object_set_new(o, "max_tool_calls", json_null());
    json_object_set_new(o, "model", json_string(w->base.model));
    json_object_set_new(o, "output", output);
    json_object_set_new(o, "parallel_tool_calls", json_boolean(!q || q->parallel_tool_calls != 0));
    json_object_set_new(o, "previous_response_id",
                        q && q->previous_response_id ? json_string(q->previous_response_id)
                                                     : json_null());
    json_t *reasoning = doc_field(q, "reasoning");
    json_object_set_new(
        o, "reasoning",
        reasoning
            ? reasoning
            : json_pack("{s:o, s:n}", "effort",
                        q && q->reasoning_effort ? json_string(q->reasoning_effort) : json_null(),
                        "summary"));
    json_object_set_new(o, "service_tier", json_string("default"));
    json_object_set_new(o, "store", json_boolean(!q || q->store != 0));
    json_object_set_new(o, "temperature",
                        json_real(q && !isnan(q->temperature) ? q->temperature : 1.0));
    json_object_set_new(o, "text", echo_text(q));
    json_object_set_new(o, "tool_choice", echo_tool_choice(q));
    json_object_set_new(o, "tools", echo_tools(q));
    json_object_set_new(o, "top_logprobs", json_integer(0));
    json_object_set_new(o, "top_p", json_real(q && !isnan(q->top_p) ? q->top_p : 1.0));
    json_object_set_new(o, "truncation", or_null(doc_field(q, "truncation")));
    if (json_is_null(json_object_get(o, "truncation")))
        json_object_set_new(o, "truncation", json_string("disabled"));
    json_object_set_new(o, "usage", final && !error ? usage_json(w) : json_null());
    json_object_set_new(o, "user", or_null(doc_field(q, "user")));
    json_t *md = q && q->metadata ? json_incref(q->metadata) : json_object();
    json_object_set_new(o, "metadata", md);
    if (final && w->base.failover_from[0] && w->base.failover_to[0])
        json_object_set_new(o, "x_ballast",
                            json_pack("{s:b, s:s, s:s}", "midstream_failover", 1, "from",
                                      w->base.failover_from, "to", w->base.failover_to));
    return o;
}

/* ---- events ----------------------------------------------------------------- */

static json_t *ev_new(rwrite_t *w, const char *type)
{
    return json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)w->seq++);
}

static int send_ev(rwrite_t *w, json_t *ev, bl_buf_t *out)
{
    if (!ev)
        return BL_ENOMEM;
    if (w->base.o.stream) {
        size_t before = out->len;
        bl_xsse(out, json_string_value(json_object_get(ev, "type")), ev);
        if (out->len == before) {
            json_decref(ev);
            return BL_ENOMEM;
        }
    }
    json_decref(ev);
    return BL_OK;
}

static int ensure_started(rwrite_t *w, bl_buf_t *out)
{
    if (w->created)
        return BL_OK;
    w->created = true;
    if (!w->base.o.stream)
        return BL_OK;
    static const char *const names[] = {"response.created", "response.in_progress"};
    for (size_t i = 0; i < 2; i++) {
        json_t *ev = ev_new(w, names[i]);
        json_object_set_new(ev, "response", resp_obj(w, "in_progress", NULL));
        int rc = send_ev(w, ev, out);
        if (rc)
            return rc;
    }
    return BL_OK;
}

/* A new output item at the next output_index; its slot in output is null
 * until it is done. */
static int new_item(rwrite_t *w)
{
    json_array_append_new(w->output, json_null());
    return w->next_index++;
}

static void set_item(rwrite_t *w, int output_index, json_t *item)
{
    int slot = output_index - w->base_index;
    if (slot >= 0 && (size_t)slot < json_array_size(w->output))
        json_array_set(w->output, (size_t)slot, item);
    else
        json_array_append(w->output, item);
}

static json_t *text_part(const char *s, size_t n)
{
    return json_pack("{s:s, s:[], s:[], s:o}", "type", "output_text", "annotations", "logprobs",
                     "text", json_stringn_nocheck(s ? s : "", n));
}

static json_t *msg_item(rwrite_t *w, const char *status)
{
    json_t *content = json_array();
    if (strcmp(status, "in_progress"))
        json_array_append_new(content, text_part(w->text.data, w->text.len));
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", w->msg_id, "type", "message", "status",
                     status, "content", content, "role", "assistant");
}

static json_t *content_ev(rwrite_t *w, const char *type)
{
    json_t *ev = ev_new(w, type);
    json_object_set_new(ev, "item_id", json_string(w->msg_id));
    json_object_set_new(ev, "output_index", json_integer(w->msg_index));
    json_object_set_new(ev, "content_index", json_integer(0));
    return ev;
}

static int open_msg(rwrite_t *w, bl_buf_t *out)
{
    w->msg_index = new_item(w);
    bl_xid(w->msg_id, sizeof w->msg_id, "msg_");
    bl_buf_reset(&w->text);
    w->msg_open = true;
    json_t *ev = ev_new(w, "response.output_item.added");
    json_object_set_new(ev, "output_index", json_integer(w->msg_index));
    json_object_set_new(ev, "item", msg_item(w, "in_progress"));
    int rc = send_ev(w, ev, out);
    if (rc)
        return rc;
    ev = content_ev(w, "response.content_part.added");
    json_object_set_new(ev, "part", text_part("", 0));
    return send_ev(w, ev, out);
}

static int close_msg(rwrite_t *w, bl_buf_t *out)
{
    if (!w->msg_open)
        return BL_OK;
    w->msg_open = false;
    json_t *ev = content_ev(w, "response.output_text.done");
    json_object_set_new(ev, "text",
                        json_stringn_nocheck(w->text.data ? w->text.data : "", w->text.len));
    json_object_set_new(ev, "logprobs", json_array());
    int rc = send_ev(w, ev, out);
    if (rc)
        return rc;
    ev = content_ev(w, "response.content_part.done");
    json_object_set_new(ev, "part", text_part(w->text.data, w->text.len));
    if ((rc = send_ev(w, ev, out)))
        return rc;
    json_t *item = msg_item(w, "completed");
    set_item(w, w->msg_index, item);
    ev = ev_new(w, "response.output_item.done");
    json_object_set_new(ev, "output_index", json_integer(w->msg_index));
    json_object_set_new(ev, "item", item);
    return send_ev(w, ev, out);
}

static int on_text(rwrite_t *w, const bl_xev_t *e, bl_buf_t *out)
{
    int rc;
    if (!e->text_len)
        return BL_OK;
    if (!w->msg_open && (rc = open_msg(w, out)))
        return rc;
    if (bl_buf_append(&w->text, e->text, e->text_len))
        return BL_ENOMEM;
    if (!w->base.o.stream)
        return BL_OK;
    /* the event of every token: written by hand, not through a tree */
    bl_buf_printf(out,
                  "event: response.output_text.delta\ndata: {\"type\":"
                  "\"response.output_text.delta\",\"sequence_number\":%lld,\"item_id\":",
                  (long long)w->seq++);
    bl_json_escape(out, w->msg_id, strlen(w->msg_id));
    bl_buf_printf(out, ",\"output_index\":%d,\"content_index\":0,\"delta\":", w->msg_index);
    bl_json_escape(out, e->text, e->text_len);
    bl_buf_append_str(out, ",\"logprobs\":[]}\n\n");
    return BL_OK;
}

/* Was this tool declared by the client as a custom (freeform) tool? Its
 * calls arrive as arguments {"input": "..."} (see resp_req.c). */
static bool is_custom_tool(const bl_xreq_t *q, const char *name)
{
    if (!q || q->family != BL_FAM_RESPONSES || !name)
        return false;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(q->doc, "tools"), i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *n = json_string_value(json_object_get(t, "name"));
        if (type && n && !strcmp(type, "custom") && !strcmp(n, name))
            return true;
    }
    return false;
}

static json_t *custom_input(const wcall_t *c)
{
    json_t *a = json_loadb(c->args.data ? c->args.data : "", c->args.len, 0, NULL);
    json_t *in = json_object_get(a, "input");
    json_t *r = json_is_string(in)
                    ? json_incref(in)
                    : json_stringn_nocheck(c->args.data ? c->args.data : "", c->args.len);
    json_decref(a);
    return r;
}

static json_t *call_item(const wcall_t *c, const char *status)
{
    bool done = !strcmp(status, "completed");
    if (c->custom)
        return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "id", c->item_id, "type",
                         "custom_tool_call", "status", status, "call_id", c->call_id, "input",
                         done ? custom_input(c) : json_string(""), "name", c->name);
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", c->item_id, "type", "function_call",
                     "status", status, "arguments",
                     done ? json_stringn_nocheck(c->args.data ? c->args.data : "", c->args.len)
                          : json_string(""),
                     "call_id", c->call_id, "name", c->name);
}

static wcall_t *find_call(rwrite_t *w, int index)
{
    for (size_t i = 0; i < w->n_calls; i++)
        if (w->calls[i].index == index)
            return &w->calls[i];
    return NULL;
}

static int open_call(rwrite_t *w, int index, const char *id, const char *name, bl_buf_t *out,
                     wcall_t **res)
{
    int rc;
    if ((rc = close_msg(w, out)))
        return rc;
    if (w->n_calls == w->cap_calls) {
        size_t nc = w->cap_calls ? w->cap_calls * 2 : 4;
        wcall_t *p = realloc(w->calls, nc * sizeof *p);
        if (!p)
            return BL_ENOMEM;
        w->calls = p;
        w->cap_calls = nc;
    }
    wcall_t *c = &w->calls[w->n_calls];
    memset(c, 0, sizeof *c);
    c->index = index;
    c->custom = is_custom_tool(w->base.o.req, name);
    bl_xid(c->item_id, sizeof c->item_id, c->custom ? "ctc_" : "fc_");
    if (id && *id) {
        c->call_id = strdup(id);
    } else {
        char tmp[64];
        bl_xid(tmp, sizeof tmp, "call_");
        c->call_id = strdup(tmp);
    }
    c->name = strdup(name ? name : "");
    if (!c->call_id || !c->name) {
        free(c->call_id);
        free(c->name);
        return BL_ENOMEM;
    }
    w->n_calls++;
    c->output_index = new_item(w);
    c->open = true;
    *res = c;
    json_t *ev = ev_new(w, "response.output_item.added");
    json_object_set_new(ev, "output_index", json_integer(c->output_index));
    json_object_set_new(ev, "item", call_item(c, "in_progress"));
    return send_ev(w, ev, out);
}

static int on_args(rwrite_t *w, const bl_xev_t *e, bl_buf_t *out)
{
    wcall_t *c = find_call(w, e->index);
    int rc;
    if (!c && (rc = open_call(w, e->index, NULL, NULL, out, &c)))
        return rc;
    if (!e->text_len)
        return BL_OK;
    if (!c->open) /* arguments after the call was closed: the stream is broken */
        return BL_EINVAL;
    if (bl_buf_append(&c->args, e->text, e->text_len))
        return BL_ENOMEM;
    if (c->custom) /* the input is inside the JSON: sent whole when the call closes */
        return BL_OK;
    json_t *ev = ev_new(w, "response.function_call_arguments.delta");
    json_object_set_new(ev, "item_id", json_string(c->item_id));
    json_object_set_new(ev, "output_index", json_integer(c->output_index));
    json_object_set_new(ev, "delta", json_stringn_nocheck(e->text, e->text_len));
    return send_ev(w, ev, out);
}

static int close_custom(rwrite_t *w, wcall_t *c, bl_buf_t *out)
{
    json_t *in = custom_input(c);
    int rc = BL_OK;
    static const char *const names[] = {"response.custom_tool_call_input.delta",
                                        "response.custom_tool_call_input.done"};
    for (size_t i = 0; !rc && i < 2; i++) {
        json_t *ev = ev_new(w, names[i]);
        json_object_set_new(ev, "item_id", json_string(c->item_id));
        json_object_set_new(ev, "output_index", json_integer(c->output_index));
        json_object_set(ev, i ? "input" : "delta", in);
        rc = send_ev(w, ev, out);
    }
    json_decref(in);
    return rc;
}

static int close_call(rwrite_t *w, wcall_t *c, bl_buf_t *out)
{
    c->open = false;
    int rc;
    if (c->custom) {
        rc = close_custom(w, c, out);
    } else {
        json_t *ev = ev_new(w, "response.function_call_arguments.done");
        json_object_set_new(ev, "item_id", json_string(c->item_id));
        json_object_set_new(ev, "output_index", json_integer(c->output_index));
        json_object_set_new(ev, "name", json_string(c->name));
        json_object_set_new(ev, "arguments",
                            json_stringn_nocheck(c->args.data ? c->args.data : "", c->args.len));
        rc = send_ev(w, ev, out);
    }
    if (rc)
        return rc;
    json_t *item = call_item(c, "completed");
    set_item(w, c->output_index, item);
    json_t *ev = ev_new(w, "response.output_item.done");
    json_object_set_new(ev, "output_index", json_integer(c->output_index));
    json_object_set_new(ev, "item", item);
    return send_ev(w, ev, out);
}

static int close_all(rwrite_t *w, bl_buf_t *out)
{
    int rc = close_msg(w, out);
    for (size_t i = 0; !rc && i < w->n_calls; i++)
        if (w->calls[i].open)
            rc = close_call(w, &w->calls[i], out);
    return rc;
}

/* A Responses reasoning item (from a Responses reader) goes to the client as
 * it came; anything else opaque is another family's and is dropped. */
static int on_opaque(rwrite_t *w, json_t *raw, bl_buf_t *out)
{
    const char *type = json_string_value(json_object_get(raw, "type"));
    if (!type || strcmp(type, "reasoning"))
        return BL_OK;
    int rc = close_msg(w, out);
    if (rc)
        return rc;
    int oi = new_item(w);
    set_item(w, oi, raw);
    static const char *const names[] = {"response.output_item.added", "response.output_item.done"};
    for (size_t i = 0; !rc && i < 2; i++) {
        json_t *ev = ev_new(w, names[i]);
        json_object_set_new(ev, "output_index", json_integer(oi));
        json_object_set(ev, "item", raw);
        rc = send_ev(w, ev, out);
    }
    return rc;
}

static int write_final(rwrite_t *w, bl_buf_t *out)
{
    if (w->final_done)
        return BL_OK;
    int rc = close_all(w, out);
    if (rc)
        return rc;
    w->final_done = true;
    bool incomplete = w->finish == BL_XFIN_LENGTH || w->finish == BL_XFIN_CONTENT_FILTER;
    const char *status = incomplete ? "incomplete" : "completed";
    if (!w->base.o.stream) {
        json_t *resp = resp_obj(w, status, NULL);
        rc = resp ? bl_xdump(resp, out) : BL_ENOMEM;
        json_decref(resp);
        return rc;
    }
    json_t *ev = ev_new(w, incomplete ? "response.incomplete" : "response.completed");
    json_object_set_new(ev, "response", resp_obj(w, status, NULL));
    return send_ev(w, ev, out);
}

static const char *fail_code(bl_xerr_kind_t k)
{
    switch (k) {
    case BL_XERR_RATE_LIMIT:
        return "rate_limit_exceeded";
    case BL_XERR_INVALID_REQUEST:
        return "invalid_prompt";
    default:
        return "server_error";
    }
}

static int w_fail(bl_xwrite_t *base, bl_xerr_kind_t k, const char *message, bl_buf_t *out)
{
    rwrite_t *w = (rwrite_t *)base;
    if (w->final_done)
        return BL_OK;
    w->final_done = true;
    if (!w->base.o.stream)
        return bl_xerr_body(BL_FAM_RESPONSES, k, message, NULL, NULL, out);
    json_t *err = json_pack("{s:s, s:s}", "code", fail_code(k), "message",
                            message ? message : "the response failed");
    json_t *ev = ev_new(w, "response.failed");
    json_object_set_new(ev, "response", resp_obj(w, "failed", err));
    return send_ev(w, ev, out);
}

/* Keep the base's state as the client has now seen the stream, so a
 * continuation that breaks again can be resumed from this writer too. */
static void sync_state(rwrite_t *w)
{
    bl_xstate_t *st = &w->base.st;
    st->next_seq = w->seq;
    st->next_index = w->next_index;
    st->open_index = w->msg_open ? w->msg_index : -1;
    snprintf(st->item_id, sizeof st->item_id, "%s", w->msg_open ? w->msg_id : "");
    st->n_tool_calls = (int)w->n_calls;
    st->started = w->created;
}

static int w_event(bl_xwrite_t *base, const bl_xev_t *e, bl_buf_t *out);

static int w_event_synced(bl_xwrite_t *base, const bl_xev_t *e, bl_buf_t *out)
{
    int rc = w_event(base, e, out);
    sync_state((rwrite_t *)base);
    return rc;
}

static int w_event(bl_xwrite_t *base, const bl_xev_t *e, bl_buf_t *out)
{
    rwrite_t *w = (rwrite_t *)base;
    if (w->final_done)
        return BL_OK;
    int rc;
    if (e->kind == BL_XEV_ERROR)
        return w_fail(base, e->err_kind, e->text, out);
    if (e->kind == BL_XEV_USAGE) {
        /* several may come (Anthropic: input first): known values replace */
        if (e->input_tokens >= 0)
            w->in_tokens = e->input_tokens;
        if (e->output_tokens >= 0)
            w->out_tokens = e->output_tokens;
        if (e->cached_tokens >= 0)
            w->cached_tokens = e->cached_tokens;
        w->have_usage = true;
        return w->have_finish && w->base.o.stream ? write_final(w, out) : BL_OK;
    }
    if (e->kind == BL_XEV_START && !w->base.model[0] && e->model)
        snprintf(w->base.model, sizeof w->base.model, "%s", e->model);
    if ((rc = ensure_started(w, out)))
        return rc;
    switch (e->kind) {
    case BL_XEV_TEXT:
        return on_text(w, e, out);
    case BL_XEV_TOOL_START: {
        wcall_t *c = find_call(w, e->index);
        return c ? BL_OK : open_call(w, e->index, e->id, e->name, out, &c);
    }
    case BL_XEV_TOOL_ARGS:
        return on_args(w, e, out);
    case BL_XEV_OPAQUE:
        return on_opaque(w, e->raw, out);
    case BL_XEV_FINISH:
        w->have_finish = true;
        w->finish = e->finish;
        if ((rc = close_all(w, out)))
            return rc;
        return w->have_usage && w->base.o.stream ? write_final(w, out) : BL_OK;
    default:
        return BL_OK;
    }
}

static int w_end(bl_xwrite_t *base, bl_buf_t *out)
{
    rwrite_t *w = (rwrite_t *)base;
    if (w->final_done)
        return BL_OK;
    int rc = ensure_started(w, out);
    if (!rc)
        rc = write_final(w, out);
    sync_state(w);
    return rc;
}

static void w_free(bl_xwrite_t *base)
{
    rwrite_t *w = (rwrite_t *)base;
    for (size_t i = 0; i < w->n_calls; i++) {
        free(w->calls[i].call_id);
        free(w->calls[i].name);
        bl_buf_free(&w->calls[i].args);
    }
    free(w->calls);
    bl_buf_free(&w->text);
    json_decref(w->output);
    free(w);
}

static const bl_xwrite_ops_t ops = {w_event_synced, w_end, w_fail, w_free};

int bl_xresp_writer_new(const bl_xwrite_opts_t *o, const bl_xstate_t *st, bl_xwrite_t **out)
{
    rwrite_t *w = calloc(1, sizeof *w);
    if (!w)
        return BL_ENOMEM;
    w->output = json_array();
    if (!w->output) {
        free(w);
        return BL_ENOMEM;
    }
    bl_xwrite_base_init(&w->base, &ops, BL_FAM_RESPONSES, o, st, "resp_");
    w->in_tokens = w->out_tokens = w->cached_tokens = -1;
    if (st) {
        /* continue what the client saw: same response, next sequence number
         * and output index, and the open message item if there was one */
        w->seq = st->next_seq;
        w->next_index = w->base_index = st->next_index > 0 ? st->next_index : 0;
        w->created = st->started;
        if (st->open_index >= 0) {
            w->msg_open = true;
            w->msg_index = w->base_index = st->open_index;
            snprintf(w->msg_id, sizeof w->msg_id, "%s", st->item_id);
            /* the text the client already has, so the closing events and the
               completed response hold the whole answer */
            if (o->prior_text && bl_buf_append(&w->text, o->prior_text, o->prior_text_len)) {
                json_decref(w->output);
                free(w);
                return BL_ENOMEM;
            }
            /* items after the open one (odd, but possible) keep their slots */
            if (w->next_index <= st->open_index || w->next_index - st->open_index > 1024)
                w->next_index = st->open_index + 1;
            for (int i = w->base_index; i < w->next_index; i++)
                json_array_append_new(w->output, json_null());
        }
    }
    sync_state(w);
    *out = &w->base;
    return BL_OK;
}
