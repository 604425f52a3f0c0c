/*
 * OpenAI Chat Completions requests <-> the internal form.
 *
 * Reading (a chat client whose route reaches a target of another family):
 *   n > 1, logprobs, audio output/input, legacy functions    400 (the answer would differ)
 *   logit_bias, service_tier, store, prediction, modalities   dropped
 *   web_search_options                                         400 (a hosted tool)
 * Writing (a Responses or Anthropic client answered by a chat target):
 *   developer messages                 sent as "system" (OpenAI-compatible servers
 *                                      other than OpenAI know only system)
 *   top_k                              dropped (chat has none)
 *   opaque items (reasoning, thinking) dropped
 *   images inside tool results         dropped, the result's text kept
 *   more than 4 stop sequences         the first 4 (OpenAI's limit)
 *   max tokens                         "max_tokens" (what every compatible server knows)
 *   stream                             always with stream_options.include_usage, so the
 *                                      client's usage can be filled in
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

/* ---- reading ----------------------------------------------------------------- */

static int bad_type(bl_xerr_t *err, const char *param, const char *expected)
{
    bl_xerr_set(err, param, "Invalid type for '%s': expected %s.", param, expected);
    return BL_EINVAL;
}

static int read_text_parts(bl_xreq_t *q, bl_xmsg_t *m, json_t *content, const char *where,
                           bool images, bl_xerr_t *err)
{
    char param[96];
    if (json_is_string(content)) {
        bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TEXT);
        if (!p)
            return BL_ENOMEM;
        p->text = json_string_value(content);
        p->text_len = json_string_length(content);
        return BL_OK;
    }
    if (json_is_null(content) || !content)
        return BL_OK;
    snprintf(param, sizeof param, "%s.content", where);
    if (!json_is_array(content))
        return bad_type(err, param, "one of a string or an array of content parts");
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        snprintf(param, sizeof param, "%s.content[%zu]", where, i);
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type)
            return bad_type(err, param, "a content part object with a type");
        if (!strcmp(type, "text") || !strcmp(type, "refusal")) {
            json_t *t = json_object_get(part, !strcmp(type, "text") ? "text" : "refusal");
            if (!json_is_string(t))
                return bad_type(err, param, "a string 'text'");
            bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TEXT);
            if (!p)
                return BL_ENOMEM;
            p->text = json_string_value(t);
            p->text_len = json_string_length(t);
        } else if (!strcmp(type, "image_url") && images) {
            json_t *iu = json_object_get(part, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu)
                                                 : json_string_value(json_object_get(iu, "url"));
            if (!url)
                return bad_type(err, param, "an image_url with a url");
            bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_IMAGE);
            if (!p)
                return BL_ENOMEM;
            p->url = url;
            p->detail = json_string_value(json_object_get(iu, "detail"));
        } else {
            (void)q;
            bl_xerr_set(err, param,
                        "Content parts of type '%s' cannot be sent to this route's other "
                        "API family.",
                        type);
            return BL_EINVAL;
        }
    }
    return BL_OK;
}

static int read_tool_calls(bl_xmsg_t *m, json_t *calls, const char *where, bl_xerr_t *err)
{
    char param[96];
    snprintf(param, sizeof param, "%s.tool_calls", where);
    if (!json_is_array(calls))
        return bad_type(err, param, "an array");
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        snprintf(param, sizeof param, "%s.tool_calls[%zu]", where, i);
        json_t *fn = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *args = json_object_get(fn, "arguments");
        if (!id || !name || !json_is_string(args))
            return bad_type(err, param, "an object with id and function {name, arguments}");
        bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TOOL_CALL);
        if (!p)
            return BL_ENOMEM;
        p->id = id;
        p->name = name;
        p->text = json_string_value(args);
        p->text_len = json_string_length(args);
    }
    return BL_OK;
}

static int read_message(bl_xreq_t *q, json_t *msg, size_t idx, bl_xerr_t *err)
{
    char where[48];
    snprintf(where, sizeof where, "messages[%zu]", idx);
    if (!json_is_object(msg))
        return bad_type(err, where, "an object");
    const char *role = json_string_value(json_object_get(msg, "role"));
    json_t *content = json_object_get(msg, "content");
    if (!role) {
        char param[64];
        snprintf(param, sizeof param, "%s.role", where);
        bl_xerr_set(err, param, "Missing required parameter: '%s'.", param);
        return BL_EINVAL;
    }
    bl_role_t r;
    if (!bl_xrole_parse(role, &r)) {
        char param[64];
        snprintf(param, sizeof param, "%s.role", where);
        bl_xerr_set(err, param,
                    "Invalid value: '%.40s'. Supported values are: 'system', 'developer', 'user', "
                    "'assistant', and 'tool'.",
                    role);
        return BL_EINVAL;
    }
    if (r == BL_ROLE_TOOL) {
        const char *id = json_string_value(json_object_get(msg, "tool_call_id"));
        if (!id) {
            char param[64];
            snprintf(param, sizeof param, "%s.tool_call_id", where);
            bl_xerr_set(err, param, "Missing required parameter: '%s'.", param);
            return BL_EINVAL;
        }
        /* consecutive tool messages share one TOOL message */
        bl_xmsg_t *m = q->n_msgs && q->msgs[q->n_msgs - 1].role == BL_ROLE_TOOL
                           ? &q->msgs[q->n_msgs - 1]
                           : bl_xreq_add_msg(q, BL_ROLE_TOOL);
        if (!m)
            return BL_ENOMEM;
        bl_xmsg_t tmp = {.role = BL_ROLE_USER};
        int rc = read_text_parts(q, &tmp, content, where, false, err);
        if (rc) {
            free(tmp.parts);
            return rc;
        }
        bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TOOL_RESULT);
        if (!p) {
            free(tmp.parts);
            return BL_ENOMEM;
        }
        p->id = id;
        if (tmp.n_parts == 1) {
            p->text = tmp.parts[0].text;
            p->text_len = tmp.parts[0].text_len;
        } else if (tmp.n_parts > 1) {
            bl_buf_t b = {0};
            for (size_t i = 0; i < tmp.n_parts; i++)
                bl_buf_append(&b, tmp.parts[i].text, tmp.parts[i].text_len);
            size_t n;
            char *s = bl_buf_steal(&b, &n);
            p->text = bl_xreq_keep(q, s);
            p->text_len = p->text ? n : 0;
        } else {
            p->text = "";
        }
        free(tmp.parts);
        return BL_OK;
    }
    bl_xmsg_t *m = bl_xreq_add_msg(q, r);
    if (!m)
        return BL_ENOMEM;
    m->name = json_string_value(json_object_get(msg, "name"));
    int rc = read_text_parts(q, m, content, where, r == BL_ROLE_USER, err);
    if (rc)
        return rc;
    if (r == BL_ROLE_ASSISTANT) {
        json_t *refusal = json_object_get(msg, "refusal");
        if (json_is_string(refusal) && json_string_length(refusal)) {
            bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TEXT);
            if (!p)
                return BL_ENOMEM;
            p->text = json_string_value(refusal);
            p->text_len = json_string_length(refusal);
        }
        json_t *calls = json_object_get(msg, "tool_calls");
        if (calls && !json_is_null(calls))
            return read_tool_calls(m, calls, where, err);
    }
    return BL_OK;
}

static int read_tools(bl_xreq_t *q, json_t *tools, bl_xerr_t *err)
{
    if (!json_is_array(tools))
        return bad_type(err, "tools", "an array");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char param[48];
        snprintf(param, sizeof param, "tools[%zu]", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn = json_object_get(t, "function");
        if (!type || strcmp(type, "function") || !json_is_object(fn)) {
            bl_xerr_set(err, param, "Only function tools can be sent to this route's other API "
                                    "family.");
            return BL_EINVAL;
        }
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name)
            return bad_type(err, param, "a function with a name");
        bl_xtool_t *x = bl_xreq_add_tool(q);
        if (!x)
            return BL_ENOMEM;
        x->name = name;
        x->description = json_string_value(json_object_get(fn, "description"));
        json_t *params = json_object_get(fn, "parameters");
        if (json_is_object(params))
            x->parameters = json_incref(params);
        json_t *strict = json_object_get(fn, "strict");
        if (json_is_boolean(strict))
            x->strict = json_is_true(strict);
    }
    return BL_OK;
}

static int read_tool_choice(bl_xreq_t *q, json_t *tc, bl_xerr_t *err)
{
    if (!tc || json_is_null(tc))
        return BL_OK;
    const char *s = json_string_value(tc);
    if (s) {
        if (!strcmp(s, "auto"))
            q->tool_choice = BL_TC_AUTO;
        else if (!strcmp(s, "none"))
            q->tool_choice = BL_TC_NONE;
        else if (!strcmp(s, "required"))
            q->tool_choice = BL_TC_REQUIRED;
        else
            goto bad;
        return BL_OK;
    }
    const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
    if (!name)
        goto bad;
    q->tool_choice = BL_TC_NAMED;
    q->tool_choice_name = name;
    return BL_OK;
bad:
    bl_xerr_set(err, "tool_choice",
                "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
                "{\"type\": \"function\", \"function\": {\"name\": ...}}.");
    return BL_EINVAL;
}

static int read_format(bl_xreq_t *q, json_t *rf, bl_xerr_t *err)
{
    if (!rf || json_is_null(rf))
        return BL_OK;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type)
        return bad_type(err, "response_format", "an object with a type");
    if (!strcmp(type, "text"))
        return BL_OK;
    if (!strcmp(type, "json_object")) {
        q->format = BL_FMT_JSON_OBJECT;
        return BL_OK;
    }
    json_t *js = json_object_get(rf, "json_schema");
    if (strcmp(type, "json_schema") || !json_is_object(js)) {
        bl_xerr_set(err, "response_format.type",
                    "Invalid value: '%.40s'. Supported values are: 'text', 'json_object' and "
                    "'json_schema'.",
                    type);
        return BL_EINVAL;
    }
    q->format = BL_FMT_JSON_SCHEMA;
    json_t *schema = json_object_get(js, "schema");
    q->format_schema = json_is_object(schema) ? json_incref(schema) : NULL;
    q->format_name = json_string_value(json_object_get(js, "name"));
    json_t *strict = json_object_get(js, "strict");
    if (json_is_boolean(strict))
        q->format_strict = json_is_true(strict);
    return BL_OK;
}

static bool get_number(json_t *root, const char *key, double *out, bl_xerr_t *err, int *rc)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_number(v)) {
        *rc = bad_type(err, key, "a number");
        return false;
    }
    *out = json_number_value(v);
    return true;
}

int bl_xchat_parse(const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err)
{
    int rc = BL_EINVAL;
    bl_xreq_t *q = bl_xreq_new(BL_FAM_CHAT);
    if (!q)
        return BL_ENOMEM;
    json_error_t je;
    q->doc = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    json_t *root = q->doc;
    if (!json_is_object(root)) {
        bl_xerr_set(err, NULL, "We could not parse the JSON body of your request.");
        goto done;
    }
    q->model = json_string_value(json_object_get(root, "model"));
    if (!q->model) {
        bl_xerr_set(err, "model", "You must provide a model parameter.");
        goto done;
    }
    json_t *msgs = json_object_get(root, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        bl_xerr_set(err, "messages", "Invalid 'messages': expected a non-empty array.");
        goto done;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if ((rc = read_message(q, m, i, err)))
            goto done;
    }
    rc = BL_EINVAL;
    json_t *nv = json_object_get(root, "n");
    if (json_is_integer(nv) && json_integer_value(nv) > 1) {
        bl_xerr_set(err, "n", "n > 1 cannot be served by this route's other API family.");
        goto done;
    }
    if (json_is_true(json_object_get(root, "logprobs"))) {
        bl_xerr_set(err, "logprobs", "logprobs cannot be served by this route's other API family.");
        goto done;
    }
    if (json_object_get(root, "audio") || json_object_get(root, "functions") ||
        json_object_get(root, "web_search_options")) {
        const char *what = json_object_get(root, "audio")       ? "audio"
                           : json_object_get(root, "functions") ? "functions"
                                                                : "web_search_options";
        bl_xerr_set(err, what, "'%s' cannot be served by this route's other API family.", what);
        goto done;
    }
    json_t *tools = json_object_get(root, "tools");
    if (tools && !json_is_null(tools) && (rc = read_tools(q, tools, err)))
        goto done;
    if ((rc = read_tool_choice(q, json_object_get(root, "tool_choice"), err)))
        goto done;
    json_t *ptc = json_object_get(root, "parallel_tool_calls");
    if (json_is_boolean(ptc))
        q->parallel_tool_calls = json_is_true(ptc);
    json_t *mt = json_object_get(root, "max_completion_tokens");
    if (!mt || json_is_null(mt))
        mt = json_object_get(root, "max_tokens");
    if (json_is_integer(mt))
        q->max_tokens = json_integer_value(mt);
    else if (mt && !json_is_null(mt)) {
        rc = bad_type(err, "max_tokens", "an integer");
        goto done;
    }
    rc = BL_OK;
    get_number(root, "temperature", &q->temperature, err, &rc);
    get_number(root, "top_p", &q->top_p, err, &rc);
    get_number(root, "presence_penalty", &q->presence_penalty, err, &rc);
    get_number(root, "frequency_penalty", &q->frequency_penalty, err, &rc);
    if (rc)
        goto done;
    json_t *seed = json_object_get(root, "seed");
    if (json_is_integer(seed)) {
        q->seed = json_integer_value(seed);
        q->has_seed = true;
    }
    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop)) {
        if ((rc = bl_xreq_add_stop(q, json_string_value(stop))))
            goto done;
    } else if (json_is_array(stop)) {
        json_t *s;
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s)) {
                rc = bad_type(err, "stop", "a string or an array of strings");
                goto done;
            }
            if ((rc = bl_xreq_add_stop(q, json_string_value(s))))
                goto done;
        }
    }
    if ((rc = read_format(q, json_object_get(root, "response_format"), err)))
        goto done;
    q->stream = json_is_true(json_object_get(root, "stream"));
    q->include_usage =
        json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    json_t *md = json_object_get(root, "metadata");
    if (json_is_object(md))
        q->metadata = json_incref(md);
    q->user = json_string_value(json_object_get(root, "user"));
    q->reasoning_effort = json_string_value(json_object_get(root, "reasoning_effort"));
    rc = BL_OK;
done:
    if (rc) {
        bl_xreq_free(q);
        q = NULL;
    }
    *out = q;
    return rc;
}

/* ---- writing ----------------------------------------------------------------- */

static json_t *text_of(const bl_xpart_t *p)
{
    return json_stringn(p->text ? p->text : "", p->text ? p->text_len : 0);
}

static json_t *user_content(const bl_xmsg_t *m)
{
    bool plain = true;
    for (size_t i = 0; i < m->n_parts; i++)
        plain &= m->parts[i].kind == BL_PART_TEXT;
    if (plain && m->n_parts == 1)
        return text_of(&m->parts[0]);
    if (plain) {
        bl_buf_t b = {0};
        for (size_t i = 0; i < m->n_parts; i++) {
            if (i)
                bl_buf_append(&b, "\n\n", 2);
            bl_buf_append(&b, m->parts[i].text, m->parts[i].text_len);
        }
        json_t *s = json_stringn(b.data ? b.data : "", b.len);
        bl_buf_free(&b);
        return s;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < m->n_parts; i++) {
        const bl_xpart_t *p = &m->parts[i];
        if (p->kind == BL_PART_TEXT)
            json_array_append_new(arr, json_pack("{s:s, s:o}", "type", "text", "text", text_of(p)));
        else if (p->kind == BL_PART_IMAGE) {
            json_t *iu = json_pack("{s:s}", "url", p->url);
            if (p->detail)
                json_object_set_new(iu, "detail", json_string(p->detail));
            json_array_append_new(arr, json_pack("{s:s, s:o}", "type", "image_url", "image_url", iu));
        }
    }
    return arr;
}

static const char *role_name(bl_role_t r)
{
    switch (r) {
    case BL_ROLE_SYSTEM:
    case BL_ROLE_DEVELOPER: return "system";
    case BL_ROLE_ASSISTANT: return "assistant";
    case BL_ROLE_TOOL: return "tool";
    default: return "user";
    }
}

static void write_message(json_t *out, const bl_xmsg_t *m)
{
    if (m->role == BL_ROLE_TOOL) {
        for (size_t i = 0; i < m->n_parts; i++) {
            const bl_xpart_t *p = &m->parts[i];
            if (p->kind != BL_PART_TOOL_RESULT)
                continue;
            json_array_append_new(out, json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                                 p->id ? p->id : "", "content", text_of(p)));
        }
        return;
    }
    if (m->role == BL_ROLE_ASSISTANT) {
        bl_buf_t text = {0};
        json_t *calls = json_array();
        for (size_t i = 0; i < m->n_parts; i++) {
            const bl_xpart_t *p = &m->parts[i];
            if (p->kind == BL_PART_TEXT)
                bl_buf_append(&text, p->text, p->text_len);
            else if (p->kind == BL_PART_TOOL_CALL)
                json_array_append_new(
                    calls, json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", p->id ? p->id : "", "type",
                                     "function", "function", "name", p->name ? p->name : "",
                                     "arguments", text_of(p)));
        }
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        if (text.len || !json_array_size(calls))
            json_object_set_new(msg, "content", json_stringn(text.data ? text.data : "", text.len));
        else
            json_object_set_new(msg, "content", json_null());
        if (json_array_size(calls))
            json_object_set_new(msg, "tool_calls", calls);
        else
            json_decref(calls);
        bl_buf_free(&text);
        json_array_append_new(out, msg);
        return;
    }
    bool any = false;
    for (size_t i = 0; i < m->n_parts; i++)
        any |= m->parts[i].kind == BL_PART_TEXT || m->parts[i].kind == BL_PART_IMAGE;
    if (!any)
        return; /* only opaque items: nothing a chat target understands */
    json_t *msg = json_pack("{s:s, s:o}", "role", role_name(m->role), "content", user_content(m));
    if (m->name)
        json_object_set_new(msg, "name", json_string(m->name));
    json_array_append_new(out, msg);
}

static const char CONTINUE_INSTRUCTION[] =
    "Your previous answer was cut off. Continue it exactly where it stopped: do not repeat "
    "anything already written and do not comment on the interruption.";

int bl_xchat_write_req(const bl_xreq_t *q, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                       bl_xerr_t *err)
{
    (void)err;
    json_t *root = json_pack("{s:s}", "model", o->model ? o->model : q->model ? q->model : "");
    if (!root)
        return BL_ENOMEM;
    json_t *msgs = json_array();
    for (size_t i = 0; i < q->n_msgs; i++)
        write_message(msgs, &q->msgs[i]);
    if (o->assistant_prefix) {
        json_array_append_new(msgs, json_pack("{s:s, s:s%}", "role", "assistant", "content",
                                              o->assistant_prefix, o->assistant_prefix_len));
        if (o->continue_instruction)
            json_array_append_new(
                msgs, json_pack("{s:s, s:s}", "role", "user", "content", CONTINUE_INSTRUCTION));
    }
    json_object_set_new(root, "messages", msgs);
    if (q->n_tools) {
        json_t *tools = json_array();
        for (size_t i = 0; i < q->n_tools; i++) {
            const bl_xtool_t *t = &q->tools[i];
            json_t *fn = json_pack("{s:s}", "name", t->name ? t->name : "");
            if (t->description)
                json_object_set_new(fn, "description", json_string(t->description));
            json_object_set_new(fn, "parameters",
                                t->parameters ? json_incref(t->parameters)
                                              : json_pack("{s:s, s:{}}", "type", "object",
                                                          "properties"));
            if (t->strict >= 0)
                json_object_set_new(fn, "strict", json_boolean(t->strict));
            json_array_append_new(tools, json_pack("{s:s, s:o}", "type", "function", "function", fn));
        }
        json_object_set_new(root, "tools", tools);
        switch (q->tool_choice) {
        case BL_TC_AUTO: json_object_set_new(root, "tool_choice", json_string("auto")); break;
        case BL_TC_NONE: json_object_set_new(root, "tool_choice", json_string("none")); break;
        case BL_TC_REQUIRED: json_object_set_new(root, "tool_choice", json_string("required")); break;
        case BL_TC_NAMED:
            json_object_set_new(root, "tool_choice",
                                json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name",
                                          q->tool_choice_name ? q->tool_choice_name : ""));
            break;
        default: break;
        }
        if (q->parallel_tool_calls >= 0)
            json_object_set_new(root, "parallel_tool_calls", json_boolean(q->parallel_tool_calls));
    }
    if (q->max_tokens >= 0)
        json_object_set_new(root, "max_tokens", json_integer(q->max_tokens));
    if (!isnan(q->temperature))
        json_object_set_new(root, "temperature", json_real(q->temperature));
    if (!isnan(q->top_p))
        json_object_set_new(root, "top_p", json_real(q->top_p));
    if (!isnan(q->presence_penalty))
        json_object_set_new(root, "presence_penalty", json_real(q->presence_penalty));
    if (!isnan(q->frequency_penalty))
        json_object_set_new(root, "frequency_penalty", json_real(q->frequency_penalty));
    if (q->has_seed)
        json_object_set_new(root, "seed", json_integer(q->seed));
    if (q->n_stop) {
        json_t *stop = json_array();
        for (size_t i = 0; i < q->n_stop && i < 4; i++)
            json_array_append_new(stop, json_string(q->stop[i]));
        json_object_set_new(root, "stop", stop);
    }
    if (q->format == BL_FMT_JSON_OBJECT) {
        json_object_set_new(root, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (q->format == BL_FMT_JSON_SCHEMA) {
        json_t *js = json_pack("{s:s}", "name", q->format_name ? q->format_name : "response");
        if (q->format_schema)
            json_object_set_new(js, "schema", json_incref(q->format_schema));
        if (q->format_strict >= 0)
            json_object_set_new(js, "strict", json_boolean(q->format_strict));
        json_object_set_new(root, "response_format",
                            json_pack("{s:s, s:o}", "type", "json_schema", "json_schema", js));
    }
    if (q->user)
        json_object_set_new(root, "user", json_string(q->user));
    if (q->reasoning_effort)
        json_object_set_new(root, "reasoning_effort", json_string(q->reasoning_effort));
    if (q->stream) {
        json_object_set_new(root, "stream", json_true());
        json_object_set_new(root, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    int rc = bl_xdump(root, out);
    json_decref(root);
    return rc;
}
