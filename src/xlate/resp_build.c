/*
 * bl_xreq_t written as an OpenAI Responses API body, for a target with
 * `api: responses`. What is dropped or refused on the way is in the table
 * at the top of resp_parse.c (the "(out)" rows).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

static json_t *jstrn(const char *s, size_t n)
{
    return json_stringn_nocheck(s ? s : "", s ? n : 0);
}

static json_t *text_item(const char *role)
{
    return json_pack("{s:s, s:s, s:[]}", "type", "message", "role", role, "content");
}

/* A tool result's output: its text, or (when the result held images) a list
 * of input_text / input_image parts rebuilt from whichever family's blocks
 * raw holds (Responses, chat or Anthropic shapes). */
static json_t *result_output(const bl_xpart_t *p)
{
    if (!json_is_array(p->raw))
        return jstrn(p->text, p->text_len);
    json_t *arr = json_array();
    bool any_image = false;
    size_t i;
    json_t *b;
    json_array_foreach(p->raw, i, b)
    {
        const char *t = json_string_value(json_object_get(b, "type"));
        if (!t)
            continue;
        json_t *text = json_object_get(b, "text");
        const char *url = NULL;
        char *owned = NULL;
        if (json_is_string(text)) {
            json_array_append_new(arr, json_pack("{s:s, s:O}", "type", "input_text", "text", text));
            continue;
        }
        if (!strcmp(t, "input_image")) {
            url = json_string_value(json_object_get(b, "image_url"));
        } else if (!strcmp(t, "image_url")) {
            json_t *iu = json_object_get(b, "image_url");
            url = json_is_string(iu) ? json_string_value(iu)
                                     : json_string_value(json_object_get(iu, "url"));
        } else if (!strcmp(t, "image")) {
            json_t *src = json_object_get(b, "source");
            const char *st = json_string_value(json_object_get(src, "type"));
            const char *mt = json_string_value(json_object_get(src, "media_type"));
            const char *data = json_string_value(json_object_get(src, "data"));
            if (st && !strcmp(st, "url"))
                url = json_string_value(json_object_get(src, "url"));
            else if (mt && data && asprintf(&owned, "data:%s;base64,%s", mt, data) >= 0)
                url = owned;
        } else if (!strcmp(t, "input_file")) {
            json_array_append(arr, b); /* Responses to Responses: keep it */
            continue;
        }
        if (url) {
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "type", "input_image",
                                                 "image_url", url, "detail", "auto"));
            any_image = true;
        }
        free(owned);
    }
    if (!any_image) {
        json_decref(arr);
        return jstrn(p->text, p->text_len);
    }
    return arr;
}

static int add_input_msg(json_t *input, const bl_xmsg_t *m, const char *role)
{
    json_t *it = text_item(role);
    json_t *content = json_object_get(it, "content");
    for (size_t i = 0; i < m->n_parts; i++) {
        const bl_xpart_t *p = &m->parts[i];
        if (p->kind == BL_PART_TEXT)
            json_array_append_new(content, json_pack("{s:s, s:o}", "type", "input_text", "text",
                                                     jstrn(p->text, p->text_len)));
        else if (p->kind == BL_PART_IMAGE && p->url)
            json_array_append_new(content,
                                  json_pack("{s:s, s:s, s:s}", "type", "input_image", "image_url",
                                            p->url, "detail", p->detail ? p->detail : "auto"));
    }
    return json_array_append_new(input, it) ? BL_ENOMEM : BL_OK;
}

/* The client's own custom tool of that name (a Responses client only). */
static json_t *custom_tool(const bl_xreq_t *q, const char *name)
{
    if (!q || q->family != BL_FAM_RESPONSES || !name)
        return NULL;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(q->doc, "tools"), i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *n = json_string_value(json_object_get(t, "name"));
        if (type && n && !strcmp(type, "custom") && !strcmp(n, name))
            return t;
    }
    return NULL;
}

/* Is the call with this id one of a custom tool? */
static bool custom_call(const bl_xreq_t *q, const char *id)
{
    for (size_t i = 0; id && i < q->n_msgs; i++)
        for (size_t j = 0; j < q->msgs[i].n_parts; j++) {
            const bl_xpart_t *p = &q->msgs[i].parts[j];
            if (p->kind == BL_PART_TOOL_CALL && p->id && !strcmp(p->id, id))
                return custom_tool(q, p->name) != NULL;
        }
    return false;
}

/* {"input": "..."} arguments back to the freeform input. */
static json_t *unwrap_input(const char *args, size_t n)
{
    json_t *a = json_loadb(args ? args : "", n, 0, NULL);
    json_t *in = json_object_get(a, "input");
    json_t *r = json_is_string(in) ? json_incref(in) : jstrn(args, n);
    json_decref(a);
    return r;
}

/* Assistant parts in order: text runs become one message item each; calls
 * and Responses reasoning items stand alone between them. */
static void add_assistant(json_t *input, const bl_xreq_t *q, const bl_xmsg_t *m)
{
    json_t *msg = NULL;
    for (size_t i = 0; i < m->n_parts; i++) {
        const bl_xpart_t *p = &m->parts[i];
        if (p->kind == BL_PART_TEXT) {
            if (!msg) {
                msg = text_item("assistant");
                json_array_append_new(input, msg);
            }
            json_array_append_new(json_object_get(msg, "content"),
                                  json_pack("{s:s, s:o, s:[]}", "type", "output_text", "text",
                                            jstrn(p->text, p->text_len), "annotations"));
            continue;
        }
        if (p->kind == BL_PART_TOOL_CALL && custom_tool(q, p->name)) {
            json_array_append_new(input,
                                  json_pack("{s:s, s:s, s:s, s:o}", "type", "custom_tool_call",
                                            "call_id", p->id ? p->id : "", "name", p->name, "input",
                                            unwrap_input(p->text, p->text_len)));
        } else if (p->kind == BL_PART_TOOL_CALL) {
            json_array_append_new(
                input, json_pack("{s:s, s:s, s:s, s:o}", "type", "function_call", "call_id",
                                 p->id ? p->id : "", "name", p->name ? p->name : "", "arguments",
                                 p->text_len ? jstrn(p->text, p->text_len) : json_string("{}")));
        } else if (p->kind == BL_PART_OPAQUE && p->family == BL_FAM_RESPONSES &&
                   json_is_string(json_object_get(p->raw, "encrypted_content"))) {
            /* with store false a reasoning item is only resolvable through its
             * encrypted content; one without it would fail the whole request */
            json_array_append(input, p->raw);
        } else {
            continue; /* images, other families' opaque items: dropped */
        }
        msg = NULL;
    }
}

static json_t *tool_json(const bl_xtool_t *t)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "function", "name", t->name ? t->name : "");
    if (t->description)
        json_object_set_new(o, "description", json_string(t->description));
    json_object_set_new(o, "parameters",
                        t->parameters ? json_incref(t->parameters)
                                      : json_pack("{s:s, s:{}}", "type", "object", "properties"));
    if (t->strict >= 0)
        json_object_set_new(o, "strict", json_boolean(t->strict));
    return o;
}

static json_t *tool_choice_json(const bl_xreq_t *q)
{
    switch (q->tool_choice) {
    case BL_TC_AUTO:
        return json_string("auto");
    case BL_TC_NONE:
        return json_string("none");
    case BL_TC_REQUIRED:
        return json_string("required");
    case BL_TC_NAMED:
        return json_pack("{s:s, s:s}", "type",
                         custom_tool(q, q->tool_choice_name) ? "custom" : "function", "name",
                         q->tool_choice_name ? q->tool_choice_name : "");
    default:
        return NULL;
    }
}

static json_t *format_json(const bl_xreq_t *q)
{
    if (q->format == BL_FMT_JSON_OBJECT)
        return json_pack("{s:s}", "type", "json_object");
    if (q->format == BL_FMT_JSON_SCHEMA) {
        json_t *f = json_pack("{s:s, s:s, s:o}", "type", "json_schema", "name",
                              q->format_name ? q->format_name : "response", "schema",
                              q->format_schema ? json_incref(q->format_schema) : json_object());
        if (q->format_strict >= 0)
            json_object_set_new(f, "strict", json_boolean(q->format_strict));
        return f;
    }
    return NULL;
}

/* The leading SYSTEM messages' text, when they hold only text. */
static size_t leading_system(const bl_xreq_t *q, bl_buf_t *b)
{
    size_t n = 0;
    for (; n < q->n_msgs && q->msgs[n].role == BL_ROLE_SYSTEM; n++) {
        const bl_xmsg_t *m = &q->msgs[n];
        for (size_t j = 0; j < m->n_parts; j++)
            if (m->parts[j].kind != BL_PART_TEXT)
                return n;
        for (size_t j = 0; j < m->n_parts; j++) {
            if (b->len)
                bl_buf_append(b, "\n\n", 2);
            bl_buf_append(b, m->parts[j].text ? m->parts[j].text : "", m->parts[j].text_len);
        }
    }
    return n;
}

static const char *continue_text =
    "Your previous answer was cut off. Continue it exactly where it stopped: do not repeat "
    "anything already written and do not comment on the interruption.";

int bl_xresp_write_req(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                       bl_xerr_t *err)
{
    int rc = BL_ENOMEM;
    bl_buf_t sys = {0};
    json_t *root = json_object(), *input = json_array();
    if (!root || !input)
        goto done;
    const char *model = o && o->model ? o->model : q->model;
    json_object_set_new(root, "model", json_string(model ? model : ""));
    size_t first = leading_system(q, &sys);
    if (first)
        json_object_set_new(root, "instructions", jstrn(sys.data, sys.len));
    json_object_set(root, "input", input);
    for (size_t i = first; i < q->n_msgs; i++) {
        const bl_xmsg_t *m = &q->msgs[i];
        switch (m->role) {
        case BL_ROLE_SYSTEM:
            add_input_msg(input, m, "system");
            break;
        case BL_ROLE_DEVELOPER:
            add_input_msg(input, m, "developer");
            break;
        case BL_ROLE_USER:
            add_input_msg(input, m, "user");
            break;
        case BL_ROLE_ASSISTANT:
            add_assistant(input, q, m);
            break;
        case BL_ROLE_TOOL:
            for (size_t j = 0; j < m->n_parts; j++) {
                const bl_xpart_t *p = &m->parts[j];
                if (p->kind != BL_PART_TOOL_RESULT)
                    continue;
                json_array_append_new(
                    input, json_pack("{s:s, s:s, s:o}", "type",
                                     custom_call(q, p->id) ? "custom_tool_call_output"
                                                           : "function_call_output",
                                     "call_id", p->id ? p->id : "", "output", result_output(p)));
            }
            break;
        }
    }
    if (o && o->assistant_prefix) {
        json_t *it = text_item("assistant");
        json_array_append_new(json_object_get(it, "content"),
                              json_pack("{s:s, s:o, s:[]}", "type", "output_text", "text",
                                        jstrn(o->assistant_prefix, o->assistant_prefix_len),
                                        "annotations"));
        json_array_append_new(input, it);
        if (o->continue_instruction)
            json_array_append_new(input, json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "type", "message",
                                                   "role", "user", "content", "type", "input_text",
                                                   "text", continue_text));
    }
    /* a Responses client's tools and tool_choice go as they came: hosted
     * tools (which only a Responses target can run) included */
    json_t *doc = q->family == BL_FAM_RESPONSES ? q->doc : NULL;
    json_t *v;
    if (json_is_array(v = json_object_get(doc, "tools")) && json_array_size(v)) {
        json_object_set(root, "tools", v);
    } else if (q->n_tools) {
        json_t *tools = json_array();
        for (size_t i = 0; i < q->n_tools; i++)
            json_array_append_new(tools, tool_json(&q->tools[i]));
        json_object_set_new(root, "tools", tools);
    }
    json_t *tc = tool_choice_json(q);
    if ((v = json_object_get(doc, "tool_choice")) && !json_is_null(v)) {
        json_decref(tc);
        json_object_set(root, "tool_choice", v);
    } else if (tc) {
        json_object_set_new(root, "tool_choice", tc);
    }
    if (q->parallel_tool_calls >= 0)
        json_object_set_new(root, "parallel_tool_calls", json_boolean(q->parallel_tool_calls));
    if (q->max_tokens > 0)
        json_object_set_new(root, "max_output_tokens", json_integer(q->max_tokens));
    if (!isnan(q->temperature))
        json_object_set_new(root, "temperature", json_real(q->temperature));
    if (!isnan(q->top_p))
        json_object_set_new(root, "top_p", json_real(q->top_p));
    json_t *fmt = format_json(q);
    if (json_is_object(v = json_object_get(doc, "text"))) {
        json_decref(fmt);
        json_object_set(root, "text", v); /* with verbosity */
    } else if (fmt) {
        json_object_set_new(root, "text", json_pack("{s:o}", "format", fmt));
    }
    if (json_is_object(v = json_object_get(doc, "reasoning")))
        json_object_set(root, "reasoning", v); /* with summary */
    else if (q->reasoning_effort)
        json_object_set_new(root, "reasoning", json_pack("{s:s}", "effort", q->reasoning_effort));
    /* store is false, so reasoning items only survive to the next turn with
     * their encrypted content (what Codex asks for too) */
    if (json_is_array(v = json_object_get(doc, "include")))
        json_object_set(root, "include", v);
    else if (q->reasoning_effort)
        json_object_set_new(root, "include", json_pack("[s]", "reasoning.encrypted_content"));
    static const char *const same_family[] = {"truncation", "prompt_cache_key"};
    for (size_t i = 0; i < BL_ARRAY_LEN(same_family); i++)
        if (json_is_string(v = json_object_get(doc, same_family[i])))
            json_object_set(root, same_family[i], v);
    if (q->metadata)
        json_object_set(root, "metadata", q->metadata);
    if (q->user)
        json_object_set_new(root, "user", json_string(q->user));
    json_object_set_new(root, "store", json_false());
    json_object_set_new(root, "stream", json_boolean(q->stream));
    rc = bl_xdump(root, out);
done:
    if (rc)
        bl_xerr_set(err, NULL, "out of memory writing the request");
    json_decref(input);
    json_decref(root);
    bl_buf_free(&sys);
    return rc;
}
