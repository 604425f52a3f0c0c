/*
 * bl_xreq_t written out as an Anthropic Messages body, for a target of
 * type: anthropic (reading a client's body is anth_parse.c).
 *
 * Writing an Anthropic body (target side):
 * | construct                              | written as / decision                      |
 * | -------------------------------------- | ------------------------------------------ |
 * | SYSTEM / DEVELOPER messages anywhere   | all joined, in order, into "system" blocks |
 * | TOOL messages                          | user messages with tool_result blocks      |
 * | consecutive same-role messages         | merged (Anthropic requires alternation);   |
 * |                                        | tool_result blocks kept first in a message |
 * | empty text parts / empty messages      | dropped (Anthropic rejects empty text)     |
 * | tool call arguments not a JSON object  | input {} (dropped arguments)               |
 * | tool call ids outside [A-Za-z0-9_-]    | those characters become '_' (both sides)   |
 * | images: data: URL / http(s) URL        | base64 source / url source                 |
 * | images with another scheme, or in an   | 400                                        |
 * | assistant or system message            |                                            |
 * | tool result raw content (other family) | text and image blocks kept, others dropped |
 * | OPAQUE of another family               | dropped                                    |
 * | name on messages, image detail         | dropped                                    |
 * | format json_schema / json_object       | a system instruction ("Respond only with   |
 * |                                        | JSON that matches this JSON Schema: ...")  |
 * | temperature > 1                        | clamped to 1 (Anthropic's range is 0..1)   |
 * | top_p together with temperature        | top_p dropped (newer models refuse both)   |
 * | presence/frequency penalty, seed,      | dropped                                    |
 * | store, reasoning_effort, strict, other |                                            |
 * | metadata than user                     |                                            |
 * | user                                   | metadata.user_id                           |
 * | parallel_tool_calls = 0                | tool_choice.disable_parallel_tool_use      |
 * | tool_choice without tools              | dropped                                    |
 * | tool calls in history, no tools given  | the called tools defined with an open      |
 * |                                        | schema, tool_choice none                   |
 * | hosted tools of another family         | left out (the model answers without them); |
 * |                                        | 400 when tool_choice forces one            |
 * | Anthropic-defined tools (own family)   | copied as the client sent them             |
 * | previous_response_id                   | 400 (needs the Responses API's storage)    |
 * | max_tokens unset                       | opts default (4096)                        |
 * | assistant_prefix                       | a final assistant message (prefill), with  |
 * |                                        | trailing whitespace trimmed (Anthropic     |
 * |                                        | refuses it); continue_instruction ignored  |
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Anthropic tool ids must match ^[a-zA-Z0-9_-]+$: the same replacement on calls
 * and results keeps them paired. */
static json_t *tool_id(const char *id)
{
    char buf[256];
    size_t n = 0;
    for (const char *s = id ? id : ""; *s && n + 1 < sizeof buf; s++)
        buf[n++] = (isalnum((unsigned char)*s) || *s == '_' || *s == '-') ? *s : '_';
    if (!n)
        memcpy(buf, "toolu_none", (n = 10));
    return json_stringn(buf, n);
}

/* An image block from a URL; NULL and err when Anthropic cannot take it. */
static json_t *image_block(const char *url, bl_xerr_t *err, const char *where)
{
    bl_str_t mt, b64;
    if (bl_xdata_url(url, &mt, &b64))
        return json_pack("{s:s, s:{s:s, s:s%, s:s%}}", "type", "image", "source", "type", "base64",
                         "media_type", mt.p, mt.n, "data", b64.p, b64.n);
    if (url && (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)))
        return json_pack("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url",
                         url);
    bl_xerr_set(err, where,
                "%s: Anthropic takes images only as base64 data: URLs or http(s) "
                "URLs",
                where);
    return NULL;
}

/* A tool result's content from another family's parts: text and images kept. */
static json_t *foreign_result_content(json_t *raw)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(raw, i, e)
    {
        const char *t = jstr(e, "type");
        if (!t)
            continue;
        if (!strcmp(t, "text") || !strcmp(t, "input_text") || !strcmp(t, "output_text")) {
            const char *s = jstr(e, "text");
            if (s && *s)
                json_array_append_new(out, json_pack("{s:s, s:s}", "type", "text", "text", s));
        } else if (!strcmp(t, "image_url") || !strcmp(t, "input_image")) {
            json_t *iu = json_object_get(e, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : jstr(iu, "url");
            json_t *b = url ? image_block(url, NULL, "") : NULL;
            if (b)
                json_array_append_new(out, b);
        }
    }
    return out;
}

static json_t *tool_result_block(const bl_xreq_t *q, const bl_xpart_t *p)
{
    json_t *b = json_pack("{s:s, s:o}", "type", "tool_result", "tool_use_id", tool_id(p->id));
    if (!b)
        return NULL;
    json_t *content;
    if (json_is_array(p->raw))
        content =
            q->family == BL_FAM_ANTHROPIC ? json_deep_copy(p->raw) : foreign_result_content(p->raw);
    else
        content = json_stringn(p->text ? p->text : "", p->text ? p->text_len : 0);
    if (json_is_array(content) && !json_array_size(content)) {
        json_decref(content);
        content = json_stringn(p->text ? p->text : "", p->text ? p->text_len : 0);
    }
    json_object_set_new(b, "content", content);
    if (p->is_error)
        json_object_set_new(b, "is_error", json_true());
    return b;
}

static json_t *tool_use_block(const bl_xpart_t *p)
{
    /* Arguments that are not a JSON object cannot be an Anthropic input: {}. */
    json_t *in = p->text ? json_loadb(p->text, p->text_len, 0, NULL) : NULL;
    if (!json_is_object(in)) {
        json_decref(in);
        in = json_object();
    }
    return json_pack("{s:s, s:o, s:s, s:o}", "type", "tool_use", "id", tool_id(p->id), "name",
                     p->name ? p->name : "", "input", in);
}

static bool is_tool_result(json_t *b)
{
    const char *t = jstr(b, "type");
    return t && !strcmp(t, "tool_result");
}

/* Append block b to the message list, merging with the last message of the same
 * role; tool_result blocks go before other blocks of a user message. */
static int put_block(json_t *msgs, const char *role, json_t *b)
{
    if (!b)
        return BL_ENOMEM;
    size_t n = json_array_size(msgs);
    json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
    json_t *content;
    if (last && !strcmp(jstr(last, "role"), role)) {
        content = json_object_get(last, "content");
    } else {
        content = json_array();
        json_t *m = json_pack("{s:s, s:o}", "role", role, "content", content);
        if (!m || json_array_append_new(msgs, m)) {
            json_decref(b);
            return BL_ENOMEM;
        }
    }
    if (is_tool_result(b)) {
        size_t at = 0;
        while (at < json_array_size(content) && is_tool_result(json_array_get(content, at)))
            at++;
        return json_array_insert_new(content, at, b) ? BL_ENOMEM : BL_OK;
    }
    return json_array_append_new(content, b) ? BL_ENOMEM : BL_OK;
}

static int write_messages(const bl_xreq_t *q, json_t *msgs, json_t *system, bl_xerr_t *err)
{
    for (size_t i = 0; i < q->n_msgs; i++) {
        const bl_xmsg_t *m = &q->msgs[i];
        bool sys = m->role == BL_ROLE_SYSTEM || m->role == BL_ROLE_DEVELOPER;
        const char *role = m->role == BL_ROLE_ASSISTANT ? "assistant" : "user";
        for (size_t j = 0; j < m->n_parts; j++) {
            const bl_xpart_t *p = &m->parts[j];
            char where[64];
            snprintf(where, sizeof where, "messages[%zu].content[%zu]", i, j);
            json_t *b = NULL;
            switch (p->kind) {
            case BL_PART_TEXT:
                if (!p->text || !p->text_len)
                    continue;
                b = json_pack("{s:s, s:s%}", "type", "text", "text", p->text, p->text_len);
                if (sys) {
                    if (!b || json_array_append_new(system, b))
                        return BL_ENOMEM;
                    continue;
                }
                break;
            case BL_PART_IMAGE:
                if (m->role != BL_ROLE_USER && m->role != BL_ROLE_TOOL) {
                    bl_xerr_set(err, where, "%s: Anthropic accepts images only in user messages",
                                where);
                    return BL_EINVAL;
                }
                if (!(b = image_block(p->url, err, where)))
                    return BL_EINVAL;
                break;
            case BL_PART_TOOL_CALL:
                if (m->role != BL_ROLE_ASSISTANT) {
                    bl_xerr_set(err, where, "%s: a tool call outside an assistant message", where);
                    return BL_EINVAL;
                }
                b = tool_use_block(p);
                break;
            case BL_PART_TOOL_RESULT:
                b = tool_result_block(q, p);
                break;
            case BL_PART_OPAQUE:
                if (p->family != BL_FAM_ANTHROPIC || !p->raw || sys)
                    continue;
                b = json_deep_copy(p->raw);
                break;
            }
            if (sys) {
                json_decref(b);
                bl_xerr_set(err, where, "%s: Anthropic system prompts hold only text", where);
                return BL_EINVAL;
            }
            int rc = put_block(msgs, p->kind == BL_PART_TOOL_RESULT ? "user" : role, b);
            if (rc)
                return rc;
        }
    }
    return BL_OK;
}

static int write_prefix(const bl_xwrite_req_opts_t *o, json_t *msgs)
{
    if (!o || !o->assistant_prefix)
        return BL_OK;
    /* A final assistant message is a prefill Anthropic continues; it refuses
     * one that ends in whitespace. */
    size_t n = o->assistant_prefix_len;
    while (n && isspace((unsigned char)o->assistant_prefix[n - 1]))
        n--;
    if (!n)
        return BL_OK;
    return put_block(msgs, "assistant",
                     json_pack("{s:s, s:s%}", "type", "text", "text", o->assistant_prefix, n));
}

static int write_format(const bl_xreq_t *q, json_t *system)
{
    bl_buf_t b = {0};
    if (q->format == BL_FMT_JSON_SCHEMA && q->format_schema) {
        bl_buf_append_str(&b, "Respond only with JSON that matches this JSON Schema: ");
        bl_xdump(q->format_schema, &b);
    } else if (q->format == BL_FMT_JSON_OBJECT || q->format == BL_FMT_JSON_SCHEMA) {
        bl_buf_append_str(&b, "Respond only with a JSON object.");
    } else {
        return BL_OK;
    }
    int rc = b.data ? BL_OK : BL_ENOMEM;
    if (!rc &&
        json_array_append_new(system, json_pack("{s:s, s:s}", "type", "text", "text", b.data)))
        rc = BL_ENOMEM;
    bl_buf_free(&b);
    return rc;
}

/* Anthropic refuses tool_use blocks in a request that defines no tools. When
 * the history holds calls but the client offers no tools now, define the
 * tools it called with an open schema (and the caller chooses none, so none
 * is called). True when it added any. */
static bool stub_tools(json_t *msgs, json_t *tools)
{
    size_t i, j;
    json_t *m, *b;
    json_array_foreach(msgs, i, m)
    {
        json_array_foreach(json_object_get(m, "content"), j, b)
        {
            const char *t = jstr(b, "type"), *name = jstr(b, "name");
            if (!t || strcmp(t, "tool_use") || !name)
                continue;
            bool seen = false;
            for (size_t k = 0; k < json_array_size(tools) && !seen; k++)
                seen = !strcmp(jstr(json_array_get(tools, k), "name"), name);
            if (!seen)
                json_array_append_new(tools,
                                      json_pack("{s:s, s:{s:s, s:{}}}", "name", name,
                                                "input_schema", "type", "object", "properties"));
        }
    }
    return json_array_size(tools) > 0;
}

static int write_tools(const bl_xreq_t *q, json_t *root, bl_xerr_t *err)
{
    json_t *tools = json_array();
    if (!tools)
        return BL_ENOMEM;
    for (size_t i = 0; i < q->n_tools; i++) {
        const bl_xtool_t *t = &q->tools[i];
        json_t *schema = t->parameters ? json_deep_copy(t->parameters)
                                       : json_pack("{s:s, s:{}}", "type", "object", "properties");
        json_t *x = json_pack("{s:s}", "name", t->name ? t->name : "");
        if (x && t->description)
            json_object_set_new(x, "description", json_string(t->description));
        if (!x || json_object_set_new(x, "input_schema", schema) ||
            json_array_append_new(tools, x)) {
            json_decref(tools);
            return BL_ENOMEM;
        }
    }
    if (q->hosted_tool && q->family == BL_FAM_ANTHROPIC && json_is_object(q->doc)) {
        /* Our own client's Anthropic-defined tools go back as they came. */
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(q->doc, "tools"), i, t)
        {
            const char *type = jstr(t, "type");
            if (type && strcmp(type, "custom"))
                json_array_append(tools, t);
        }
    } else if (q->hosted_tool_required) {
        /* another family's hosted tool, forced: no Anthropic target can honour it
           (an offered one is left out: the model answers without it, and no paid
           server tool of Anthropic's is switched on behind the client's back) */
        json_decref(tools);
        bl_xerr_set(err, "tool_choice", "tool_choice: the hosted tool '%s' cannot run on an "
                    "Anthropic target", q->hosted_tool);
        return BL_EINVAL;
    }
    bl_tool_choice_t choice = q->tool_choice;
    if (!json_array_size(tools) && stub_tools(json_object_get(root, "messages"), tools))
        choice = BL_TC_NONE;
    if (!json_array_size(tools)) {
        json_decref(tools);
        return BL_OK;
    }
    json_object_set_new(root, "tools", tools);
    json_t *tc = NULL;
    switch (choice) {
    case BL_TC_AUTO:
        tc = json_pack("{s:s}", "type", "auto");
        break;
    case BL_TC_NONE:
        tc = json_pack("{s:s}", "type", "none");
        break;
    case BL_TC_REQUIRED:
        tc = json_pack("{s:s}", "type", "any");
        break;
    case BL_TC_NAMED:
        tc = json_pack("{s:s, s:s}", "type", "tool", "name",
                       q->tool_choice_name ? q->tool_choice_name : "");
        break;
    default:
        if (q->parallel_tool_calls == 0)
            tc = json_pack("{s:s}", "type", "auto");
        break;
    }
    if (tc && q->parallel_tool_calls == 0 && choice != BL_TC_NONE)
        json_object_set_new(tc, "disable_parallel_tool_use", json_true());
    if (tc)
        json_object_set_new(root, "tool_choice", tc);
    return BL_OK;
}

int bl_xanth_write_req(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                       bl_xerr_t *err)
{
    if (q->previous_response_id) {
        bl_xerr_set(err, "previous_response_id",
                    "previous_response_id needs the Responses "
                    "API's stored conversation; an Anthropic target cannot continue it");
        return BL_EINVAL;
    }
    int rc = BL_ENOMEM;
    json_t *system = json_array(), *msgs = json_array();
    const char *model = o && o->model ? o->model : q->model;
    int64_t max = q->max_tokens >= 0               ? q->max_tokens
                  : o && o->max_tokens_default > 0 ? o->max_tokens_default
                                                   : 4096;
    json_t *root =
        json_pack("{s:s, s:I}", "model", model ? model : "", "max_tokens", (json_int_t)max);
    if (!root || !system || !msgs)
        goto done;
    if ((rc = write_messages(q, msgs, system, err)) || (rc = write_prefix(o, msgs)) ||
        (rc = write_format(q, system)))
        goto done;
    if (json_array_size(system))
        json_object_set(root, "system", system);
    json_object_set(root, "messages", msgs);
    if ((rc = write_tools(q, root, err)))
        goto done;
    if (q->n_stop) {
        json_t *s = json_array();
        for (size_t i = 0; s && i < q->n_stop; i++)
            json_array_append_new(s, json_string(q->stop[i] ? q->stop[i] : ""));
        json_object_set_new(root, "stop_sequences", s);
    }
    if (!isnan(q->temperature))
        json_object_set_new(root, "temperature",
                            json_real(q->temperature > 1.0   ? 1.0
                                      : q->temperature < 0.0 ? 0.0
                                                             : q->temperature));
    else if (!isnan(q->top_p))
        json_object_set_new(root, "top_p", json_real(q->top_p));
    if (q->top_k >= 0)
        json_object_set_new(root, "top_k", json_integer(q->top_k));
    if (q->user)
        json_object_set_new(root, "metadata", json_pack("{s:s}", "user_id", q->user));
    if (q->stream)
        json_object_set_new(root, "stream", json_true());
    rc = bl_xdump(root, out);
done:
    json_decref(root);
    json_decref(system);
    json_decref(msgs);
    return rc;
}
