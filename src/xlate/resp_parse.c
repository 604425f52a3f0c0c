/*
 * OpenAI Responses API requests (POST /v1/responses): read a client's body
 * into bl_xreq_t (this file), and write bl_xreq_t as a body for a target
 * that speaks Responses (resp_build.c). Codex CLI speaks only this API, so the item shapes follow the
 * API reference (and what Codex sends) exactly.
 *
 * Translation decisions (copied into the README):
 *
 * | construct (direction)                         | decision                                   |
 * |-----------------------------------------------|--------------------------------------------|
 * | input item_reference (in)                     | 400: ballast cannot resolve item ids       |
 * | input_image with file_id (in)                 | 400: ballast cannot resolve file ids       |
 * | input_file / input_audio content (in)         | 400 naming the type                        |
 * | other item types (in): web_search_call,       | 400 naming the type                        |
 * |   local_shell_call, compaction, ...           |                                            |
 * | reasoning items (in)                          | kept whole (OPAQUE); written back only to  |
 * |                                               |   a Responses target, dropped for others,  |
 * |                                               |   and dropped without encrypted_content    |
 * |                                               |   (store:false cannot resolve their ids)   |
 * | hosted tools: web_search*, file_search,       | q->hosted_tool = the first one's type; the |
 * |   code_interpreter, computer_use*, mcp, ...   |   gateway decides 400 or Responses-only    |
 * | "custom" tools (freeform text / grammar) (in) | a function with one string param "input"   |
 * |                                               |   (grammar put in its description); calls  |
 * |                                               |   go back to a Responses client (and to a  |
 * |                                               |   Responses target) as custom_tool_call    |
 * | tool_choice allowed_tools (in)                | 400 (dropping would widen the tool set)    |
 * | tool_choice {type:<hosted>} (in)              | required + hosted_tool                     |
 * | tools, tool_choice (Responses to Responses)   | sent as the client sent them (hosted ones  |
 * |                                               |   too: only such a target can run them)    |
 * | include, truncation, prompt_cache_key,        | not read (no effect on the answer's        |
 * |   service_tier, text.verbosity, background,   |   content); a Responses target gets        |
 * |   reasoning.summary, stream_options,          |   include, truncation, prompt_cache_key,   |
 * |   top_logprobs (in)                           |   text and reasoning as the client sent    |
 * |                                               |   them; service_tier is dropped            |
 * | include (out, client of another family)       | ["reasoning.encrypted_content"] when a     |
 * |                                               |   reasoning effort is set (store is false) |
 * | user / safety_identifier (in)                 | q->user (safety_identifier wins)           |
 * | previous_response_id (out)                    | never sent: the gateway expands it         |
 * | store (out)                                   | always false: ballast keeps history itself |
 * | stop sequences (out)                          | dropped: Responses has no stop parameter   |
 * |                                               |   (output may run past a stop string)      |
 * | top_k, seed, presence/frequency_penalty (out) | dropped: Responses has none of them        |
 * | leading SYSTEM messages (out)                 | "instructions" (text parts joined "\n\n")  |
 * | other SYSTEM / DEVELOPER messages (out)       | input messages, role system / developer    |
 * | OPAQUE parts of other families (out)          | dropped (Anthropic thinking blocks)        |
 * | tool result is_error (out)                    | dropped: function_call_output has no flag  |
 * | images in assistant messages (out)            | dropped: assistant content is text only    |
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate/xlate_int.h"

/* ---- reading -------------------------------------------------------------- */

typedef struct {
    bl_xreq_t *q;
    bl_xerr_t *err;
    long asst; /* index of the assistant message later assistant-side items join, or -1 */
    long tool; /* index of the TOOL message later function_call_output items join, or -1 */
} pctx_t;

/* snprintf for parameter paths: they are cut at the buffer's size on purpose */
static void pfmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pfmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int bad_type(pctx_t *c, const char *path, const char *want, const json_t *got)
{
    bl_xerr_set(c->err, path, "Invalid type for '%s': expected %s, but got %s instead.", path, want,
                jtype(got));
    return BL_EINVAL;
}

static int missing(pctx_t *c, const char *path)
{
    bl_xerr_set(c->err, path, "Missing required parameter: '%s'.", path);
    return BL_EINVAL;
}

/* A required string member; *len gets its byte length (strings may hold NUL). */
static int req_str(pctx_t *c, json_t *obj, const char *key, const char *base, const char **out,
                   size_t *len)
{
    char path[96];
    pfmt(path, sizeof path, "%s.%s", base, key);
    json_t *v = json_object_get(obj, key);
    if (!v)
        return missing(c, path);
    if (!json_is_string(v))
        return bad_type(c, path, "a string", v);
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return BL_OK;
}

/* An optional string member (absent or null: *out stays NULL). */
static int opt_str(pctx_t *c, json_t *obj, const char *key, const char *base, const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return BL_OK;
    if (!json_is_string(v)) {
        char path[96];
        pfmt(path, sizeof path, "%s%s%s", base, *base ? "." : "", key);
        return bad_type(c, path, "a string", v);
    }
    *out = json_string_value(v);
    return BL_OK;
}

static bl_xpart_t *add_part(pctx_t *c, long mi, bl_part_kind_t kind)
{
    return bl_xmsg_add_part(&c->q->msgs[mi], kind);
}

static int add_text(pctx_t *c, long mi, const char *s, size_t n)
{
    bl_xpart_t *p = add_part(c, mi, BL_PART_TEXT);
    if (!p)
        return BL_ENOMEM;
    p->text = s;
    p->text_len = n;
    return BL_OK;
}

static int parse_image(pctx_t *c, long mi, json_t *part, const char *path)
{
    const char *url = NULL, *detail = NULL;
    int rc = opt_str(c, part, "image_url", path, &url);
    if (!rc)
        rc = opt_str(c, part, "detail", path, &detail);
    if (rc)
        return rc;
    if (!url) {
        char p[96];
        if (json_object_get(part, "file_id")) {
            pfmt(p, sizeof p, "%s.file_id", path);
            bl_xerr_set(c->err, p,
                        "Unsupported parameter: '%s'. ballast cannot resolve uploaded file ids; "
                        "send the image as image_url (an https or data: URL).",
                        p);
            return BL_EINVAL;
        }
        pfmt(p, sizeof p, "%s.image_url", path);
        return missing(c, p);
    }
    bl_xpart_t *ip = add_part(c, mi, BL_PART_IMAGE);
    if (!ip)
        return BL_ENOMEM;
    ip->url = url;
    ip->detail = detail;
    return BL_OK;
}

static int parse_content(pctx_t *c, long mi, json_t *content, const char *base)
{
    char path[96];
    pfmt(path, sizeof path, "%s.content", base);
    if (json_is_string(content))
        return add_text(c, mi, json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return bad_type(c, path, "one of an array of input item content or a string", content);
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        char pp[96];
        pfmt(pp, sizeof pp, "%s.content[%zu]", base, i);
        if (!json_is_object(part))
            return bad_type(c, pp, "an object", part);
        const char *type, *s;
        size_t n;
        int rc = req_str(c, part, "type", pp, &type, NULL);
        if (rc)
            return rc;
        if (!strcmp(type, "input_text") || !strcmp(type, "output_text")) {
            rc = req_str(c, part, "text", pp, &s, &n);
            if (!rc)
                rc = add_text(c, mi, s, n);
        } else if (!strcmp(type, "refusal")) {
            rc = req_str(c, part, "refusal", pp, &s, &n);
            if (!rc)
                rc = add_text(c, mi, s, n);
        } else if (!strcmp(type, "input_image")) {
            rc = parse_image(c, mi, part, pp);
        } else {
            pfmt(path, sizeof path, "%s.type", pp);
            bl_xerr_set(c->err, path,
                        "Invalid value: '%.40s'. ballast supports content of type 'input_text', "
                        "'input_image', 'output_text' and 'refusal'.",
                        type);
            return BL_EINVAL;
        }
        if (rc)
            return rc;
    }
    return BL_OK;
}

/* The assistant message an assistant-side item joins: the open one unless it
 * already has tool calls and this item is not one (text after calls starts
 * a new turn), else a new one. */
static long assistant_msg(pctx_t *c, bool is_call)
{
    if (c->asst >= 0) {
        bl_xmsg_t *m = &c->q->msgs[c->asst];
        bool has_calls = m->n_parts && m->parts[m->n_parts - 1].kind == BL_PART_TOOL_CALL;
        if (is_call || !has_calls)
            return c->asst;
    }
    if (!bl_xreq_add_msg(c->q, BL_ROLE_ASSISTANT))
        return -1;
    c->asst = (long)c->q->n_msgs - 1;
    return c->asst;
}

static int parse_message(pctx_t *c, json_t *it, const char *base)
{
    const char *role;
    int rc = req_str(c, it, "role", base, &role, NULL);
    if (rc)
        return rc;
    bl_role_t r;
    if (!bl_xrole_parse(role, &r) || r == BL_ROLE_TOOL) {
        char path[96];
        pfmt(path, sizeof path, "%s.role", base);
        bl_xerr_set(c->err, path,
                    "Invalid value: '%.40s'. Supported values are: 'user', 'assistant', "
                    "'system', and 'developer'.",
                    role);
        return BL_EINVAL;
    }
    json_t *content = json_object_get(it, "content");
    if (!content) {
        char path[96];
        pfmt(path, sizeof path, "%s.content", base);
        return missing(c, path);
    }
    long mi;
    c->tool = -1;
    if (r == BL_ROLE_ASSISTANT) {
        mi = assistant_msg(c, false);
    } else {
        c->asst = -1;
        mi = bl_xreq_add_msg(c->q, r) ? (long)c->q->n_msgs - 1 : -1;
    }
    if (mi < 0)
        return BL_ENOMEM;
    return parse_content(c, mi, content, base);
}

/* function_call, or custom_tool_call (custom) whose freeform input becomes
 * the arguments {"input": "<text>"} of the function the tool was read as. */
static int parse_call(pctx_t *c, json_t *it, const char *base, bool custom)
{
    const char *call_id, *name, *args;
    size_t args_len;
    int rc = req_str(c, it, "call_id", base, &call_id, NULL);
    if (!rc)
        rc = req_str(c, it, "name", base, &name, NULL);
    if (!rc)
        rc = req_str(c, it, custom ? "input" : "arguments", base, &args, &args_len);
    if (rc)
        return rc;
    if (custom) {
        json_t *w = json_pack("{s:o}", "input", json_stringn_nocheck(args, args_len));
        char *s = w ? json_dumps(w, JSON_COMPACT) : NULL;
        json_decref(w);
        if (!(args = bl_xreq_keep(c->q, s)))
            return BL_ENOMEM;
        args_len = strlen(args);
    }
    c->tool = -1;
    long mi = assistant_msg(c, true);
    bl_xpart_t *p = mi < 0 ? NULL : add_part(c, mi, BL_PART_TOOL_CALL);
    if (!p)
        return BL_ENOMEM;
    p->id = call_id;
    p->name = name;
    p->text = args;
    p->text_len = args_len;
    return BL_OK;
}

/* function_call_output.output: a string, or a list of input_text /
 * input_image (/ input_file) parts; text is joined, the list kept as raw
 * when it holds more than text. */
static int parse_call_output(pctx_t *c, json_t *it, const char *base)
{
    const char *call_id;
    int rc = req_str(c, it, "call_id", base, &call_id, NULL);
    if (rc)
        return rc;
    char path[96];
    pfmt(path, sizeof path, "%s.output", base);
    json_t *out = json_object_get(it, "output");
    if (!out)
        return missing(c, path);
    const char *text = NULL;
    size_t text_len = 0;
    json_t *raw = NULL;
    if (json_is_string(out)) {
        text = json_string_value(out);
        text_len = json_string_length(out);
    } else if (json_is_array(out)) {
        bl_buf_t b = {0};
        size_t i;
        json_t *part;
        json_array_foreach(out, i, part)
        {
            const char *t = json_string_value(json_object_get(part, "type"));
            json_t *s = json_object_get(part, "text");
            if (t && (!strcmp(t, "input_text") || !strcmp(t, "output_text")) && json_is_string(s)) {
                if (b.len)
                    bl_buf_append(&b, "\n", 1);
                bl_buf_append(&b, json_string_value(s), json_string_length(s));
            } else if (t && (!strcmp(t, "input_image") || !strcmp(t, "input_file"))) {
                raw = out;
            } else {
                bl_buf_free(&b);
                pfmt(path, sizeof path, "%s.output[%zu]", base, i);
                bl_xerr_set(c->err, path,
                            "Invalid value for '%s': expected an input_text, input_image or "
                            "input_file part.",
                            path);
                return BL_EINVAL;
            }
        }
        text_len = b.len;
        text = bl_xreq_strndup(c->q, b.data ? b.data : "", b.len);
        bl_buf_free(&b);
        if (!text)
            return BL_ENOMEM;
    } else {
        return bad_type(c, path, "one of a string or an array of content", out);
    }
    c->asst = -1;
    if (c->tool < 0) {
        if (!bl_xreq_add_msg(c->q, BL_ROLE_TOOL))
            return BL_ENOMEM;
        c->tool = (long)c->q->n_msgs - 1;
    }
    bl_xpart_t *p = add_part(c, c->tool, BL_PART_TOOL_RESULT);
    if (!p)
        return BL_ENOMEM;
    p->id = call_id;
    p->text = text;
    p->text_len = text_len;
    p->raw = json_incref(raw);
    return BL_OK;
}

static int parse_item(pctx_t *c, json_t *it, size_t i)
{
    char base[64];
    pfmt(base, sizeof base, "input[%zu]", i);
    if (!json_is_object(it))
        return bad_type(c, base, "an object", it);
    const char *type = NULL;
    int rc = opt_str(c, it, "type", base, &type);
    if (rc)
        return rc;
    if (!type || !strcmp(type, "message"))
        return parse_message(c, it, base);
    if (!strcmp(type, "function_call") || !strcmp(type, "custom_tool_call"))
        return parse_call(c, it, base, type[0] == 'c');
    if (!strcmp(type, "function_call_output") || !strcmp(type, "custom_tool_call_output"))
        return parse_call_output(c, it, base);
    char path[96];
    pfmt(path, sizeof path, "%s.type", base);
    if (!strcmp(type, "reasoning")) {
        c->tool = -1;
        long mi = assistant_msg(c, false);
        bl_xpart_t *p = mi < 0 ? NULL : add_part(c, mi, BL_PART_OPAQUE);
        if (!p)
            return BL_ENOMEM;
        p->raw = json_incref(it);
        p->family = BL_FAM_RESPONSES;
        return BL_OK;
    }
    if (!strcmp(type, "item_reference")) {
        bl_xerr_set(c->err, base,
                    "ballast cannot resolve item references ('%s' is an item_reference): it does "
                    "not store items; send the whole item instead.",
                    base);
        return BL_EINVAL;
    }
    bl_xerr_set(c->err, path,
                "Invalid value: '%.40s'. ballast supports input items of type 'message', "
                "'function_call', 'function_call_output', 'custom_tool_call', "
                "'custom_tool_call_output' and 'reasoning'.",
                type);
    return BL_EINVAL;
}

static int parse_input(pctx_t *c, json_t *input)
{
    if (json_is_string(input)) {
        if (!bl_xreq_add_msg(c->q, BL_ROLE_USER))
            return BL_ENOMEM;
        return add_text(c, (long)c->q->n_msgs - 1, json_string_value(input),
                        json_string_length(input));
    }
    if (!json_is_array(input))
        return bad_type(c, "input", "one of a string or an array of input items", input);
    size_t i;
    json_t *it;
    json_array_foreach(input, i, it)
    {
        int rc = parse_item(c, it, i);
        if (rc)
            return rc;
    }
    return BL_OK;
}

/* A custom tool (freeform text input, optionally constrained by a grammar,
 * as Codex's apply_patch) is read as a function taking one string "input";
 * the Responses writers turn calls of it back into custom_tool_call items. */
static int parse_custom_tool(pctx_t *c, json_t *t, const char *base)
{
    bl_xtool_t *tool = bl_xreq_add_tool(c->q);
    if (!tool)
        return BL_ENOMEM;
    int rc;
    if ((rc = req_str(c, t, "name", base, &tool->name, NULL)) ||
        (rc = opt_str(c, t, "description", base, &tool->description)))
        return rc;
    json_t *fmt = json_object_get(t, "format");
    const char *syntax = json_string_value(json_object_get(fmt, "syntax"));
    const char *def = json_string_value(json_object_get(fmt, "definition"));
    char *desc = NULL;
    if (def && asprintf(&desc,
                        "The tool's raw freeform input (plain text, not JSON). It must match "
                        "this %s grammar:\n%s",
                        syntax ? syntax : "", def) < 0)
        return BL_ENOMEM;
    const char *d = desc ? bl_xreq_keep(c->q, desc) : "The tool's raw freeform input.";
    if (!d)
        return BL_ENOMEM;
    tool->parameters = json_pack("{s:s, s:{s:{s:s, s:s}}, s:[s], s:b}", "type", "object",
                                 "properties", "input", "type", "string", "description", d,
                                 "required", "input", "additionalProperties", 0);
    return tool->parameters ? BL_OK : BL_ENOMEM;
}

static int parse_tools(pctx_t *c, json_t *tools)
{
    if (!json_is_array(tools))
        return bad_type(c, "tools", "an array", tools);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char base[64], path[96];
        pfmt(base, sizeof base, "tools[%zu]", i);
        if (!json_is_object(t))
            return bad_type(c, base, "an object", t);
        const char *type;
        int rc = req_str(c, t, "type", base, &type, NULL);
        if (rc)
            return rc;
        if (!strcmp(type, "custom")) {
            if ((rc = parse_custom_tool(c, t, base)))
                return rc;
            continue;
        }
        if (strcmp(type, "function")) {
            if (!c->q->hosted_tool)
                c->q->hosted_tool = type;
            continue;
        }
        bl_xtool_t *tool = bl_xreq_add_tool(c->q);
        if (!tool)
            return BL_ENOMEM;
        if ((rc = req_str(c, t, "name", base, &tool->name, NULL)) ||
            (rc = opt_str(c, t, "description", base, &tool->description)))
            return rc;
        json_t *params = json_object_get(t, "parameters");
        if (params && !json_is_null(params)) {
            if (!json_is_object(params)) {
                pfmt(path, sizeof path, "%s.parameters", base);
                return bad_type(c, path, "an object", params);
            }
            tool->parameters = json_incref(params);
        }
        json_t *strict = json_object_get(t, "strict");
        if (json_is_boolean(strict))
            tool->strict = json_is_true(strict);
        else if (strict && !json_is_null(strict)) {
            pfmt(path, sizeof path, "%s.strict", base);
            return bad_type(c, path, "a boolean", strict);
        }
    }
    return BL_OK;
}

static int parse_tool_choice(pctx_t *c, json_t *tc)
{
    bl_xreq_t *q = c->q;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!strcmp(s, "auto"))
            q->tool_choice = BL_TC_AUTO;
        else if (!strcmp(s, "none"))
            q->tool_choice = BL_TC_NONE;
        else if (!strcmp(s, "required"))
            q->tool_choice = BL_TC_REQUIRED;
        else {
            bl_xerr_set(c->err, "tool_choice",
                        "Invalid value: '%.40s'. Supported values are: 'none', 'auto', and "
                        "'required'.",
                        s);
            return BL_EINVAL;
        }
        return BL_OK;
    }
    if (!json_is_object(tc))
        return bad_type(c, "tool_choice", "one of a string or an object", tc);
    const char *type;
    int rc = req_str(c, tc, "type", "tool_choice", &type, NULL);
    if (rc)
        return rc;
    if (!strcmp(type, "function") || !strcmp(type, "custom")) {
        q->tool_choice = BL_TC_NAMED;
        return req_str(c, tc, "name", "tool_choice", &q->tool_choice_name, NULL);
    }
    if (!strcmp(type, "allowed_tools")) {
        bl_xerr_set(c->err, "tool_choice.type",
                    "ballast does not support tool_choice of type '%s'.", type);
        return BL_EINVAL;
    }
    /* a hosted tool forced: only OpenAI can run it; the gateway decides */
    q->tool_choice = BL_TC_REQUIRED;
    q->hosted_tool = type;
    q->hosted_tool_required = true;
    return BL_OK;
}

static int parse_text(pctx_t *c, json_t *text)
{
    bl_xreq_t *q = c->q;
    if (!json_is_object(text))
        return bad_type(c, "text", "an object", text);
    json_t *f = json_object_get(text, "format");
    if (!f || json_is_null(f))
        return BL_OK;
    if (!json_is_object(f))
        return bad_type(c, "text.format", "an object", f);
    const char *type;
    int rc = req_str(c, f, "type", "text.format", &type, NULL);
    if (rc)
        return rc;
    if (!strcmp(type, "text")) {
        q->format = BL_FMT_TEXT;
    } else if (!strcmp(type, "json_object")) {
        q->format = BL_FMT_JSON_OBJECT;
    } else if (!strcmp(type, "json_schema")) {
        q->format = BL_FMT_JSON_SCHEMA;
        if ((rc = req_str(c, f, "name", "text.format", &q->format_name, NULL)))
            return rc;
        json_t *schema = json_object_get(f, "schema");
        if (!schema)
            return missing(c, "text.format.schema");
        if (!json_is_object(schema))
            return bad_type(c, "text.format.schema", "an object", schema);
        q->format_schema = json_incref(schema);
        json_t *strict = json_object_get(f, "strict");
        if (json_is_boolean(strict))
            q->format_strict = json_is_true(strict);
        else if (strict && !json_is_null(strict))
            return bad_type(c, "text.format.strict", "a boolean", strict);
    } else {
        bl_xerr_set(c->err, "text.format.type",
                    "Invalid value: '%.40s'. Supported values are: 'text', 'json_object', and "
                    "'json_schema'.",
                    type);
        return BL_EINVAL;
    }
    return BL_OK;
}

static int get_bool(pctx_t *c, json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return BL_OK;
    if (!json_is_boolean(v))
        return bad_type(c, key, "a boolean", v);
    *out = json_is_true(v);
    return BL_OK;
}

static int get_number(pctx_t *c, json_t *root, const char *key, double lo, double hi, double *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return BL_OK;
    if (!json_is_number(v))
        return bad_type(c, key, "a decimal", v);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        bl_xerr_set(c->err, key, "Invalid '%s': %g is not between %g and %g.", key, d, lo, hi);
        return BL_EINVAL;
    }
    *out = d;
    return BL_OK;
}

static int parse_root(pctx_t *c, json_t *root)
{
    bl_xreq_t *q = c->q;
    int rc;
    json_t *v = json_object_get(root, "model");
    if (!v)
        return missing(c, "model");
    if (!json_is_string(v))
        return bad_type(c, "model", "a string", v);
    q->model = json_string_value(v);

    if ((rc = opt_str(c, root, "previous_response_id", "", &q->previous_response_id)))
        return rc;
    const char *instructions = NULL;
    if ((rc = opt_str(c, root, "instructions", "", &instructions)))
        return rc;
    if (instructions) {
        if (!bl_xreq_add_msg(q, BL_ROLE_SYSTEM))
            return BL_ENOMEM;
        v = json_object_get(root, "instructions");
        if ((rc = add_text(c, 0, instructions, json_string_length(v))))
            return rc;
    }
    v = json_object_get(root, "input");
    if (v && !json_is_null(v)) {
        if ((rc = parse_input(c, v)))
            return rc;
    } else if (!q->previous_response_id) {
        return missing(c, "input");
    }

    if ((v = json_object_get(root, "tools")) && !json_is_null(v) && (rc = parse_tools(c, v)))
        return rc;
    if ((v = json_object_get(root, "tool_choice")) && !json_is_null(v) &&
        (rc = parse_tool_choice(c, v)))
        return rc;
    if ((rc = get_bool(c, root, "parallel_tool_calls", &q->parallel_tool_calls)))
        return rc;
    v = json_object_get(root, "max_output_tokens");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v))
            return bad_type(c, "max_output_tokens", "an integer", v);
        if (json_integer_value(v) < 1) {
            bl_xerr_set(c->err, "max_output_tokens",
                        "Invalid 'max_output_tokens': integer below minimum value. Expected a "
                        "value >= 1, but got %lld instead.",
                        (long long)json_integer_value(v));
            return BL_EINVAL;
        }
        q->max_tokens = json_integer_value(v);
    }
    if ((rc = get_number(c, root, "temperature", 0, 2, &q->temperature)) ||
        (rc = get_number(c, root, "top_p", 0, 1, &q->top_p)))
        return rc;
    if ((v = json_object_get(root, "text")) && !json_is_null(v) && (rc = parse_text(c, v)))
        return rc;
    v = json_object_get(root, "reasoning");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            return bad_type(c, "reasoning", "an object", v);
        if ((rc = opt_str(c, v, "effort", "reasoning", &q->reasoning_effort)))
            return rc;
    }
    if ((rc = get_bool(c, root, "store", &q->store)))
        return rc;
    int stream = 0;
    if ((rc = get_bool(c, root, "stream", &stream)))
        return rc;
    q->stream = stream;
    q->include_usage = true;
    v = json_object_get(root, "metadata");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            return bad_type(c, "metadata", "an object", v);
        q->metadata = json_incref(v);
    }
    const char *sid = NULL;
    if ((rc = opt_str(c, root, "user", "", &q->user)) ||
        (rc = opt_str(c, root, "safety_identifier", "", &sid)))
        return rc;
    if (sid)
        q->user = sid;
    return BL_OK;
}

int bl_xresp_parse(const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err)
{
    *out = NULL;
    bl_xreq_t *q = bl_xreq_new(BL_FAM_RESPONSES);
    if (!q)
        return BL_ENOMEM;
    int rc;
    json_error_t je;
    q->doc = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(q->doc)) {
        bl_xerr_set(err, NULL,
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid JSON.)");
        rc = BL_EINVAL;
        goto done;
    }
    pctx_t c = {.q = q, .err = err, .asst = -1, .tool = -1};
    rc = parse_root(&c, q->doc);
done:
    if (rc) {
        if (rc == BL_ENOMEM)
            bl_xerr_set(err, NULL, "out of memory reading the request");
        bl_xreq_free(q);
        return rc;
    }
    *out = q;
    return BL_OK;
}
