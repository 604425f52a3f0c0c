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

/* An assistant message's tool_calls: [{id, type "function", function
 * {name, arguments (a JSON string)}}]; the strings stay owned by msg. */
static int read_calls(bl_local_req_t *r, json_t *calls, bl_chat_msg_tools_t *x)
{
    if (!json_is_array(calls))
        return bad(r, 400, "invalid_type", "%s", "'tool_calls' must be an array.");
    size_t n = json_array_size(calls);
    if (n == 0)
        return BL_OK;
    bl_chat_tool_call_t *tc = calloc(n, sizeof *tc);
    if (!tc)
        return BL_ENOMEM;
    x->tool_calls = tc;
    x->n_tool_calls = n;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(calls, i), *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        if (!json_is_string(name) || (args && !json_is_null(args) && !json_is_string(args)))
            return bad(r, 400, "invalid_value", "%s",
                       "Each tool call needs function.name and function.arguments (a string).");
        tc[i].id = json_string_value(json_object_get(c, "id"));
        tc[i].name = json_string_value(name);
        tc[i].arguments = json_string_value(args); /* NULL = "{}" */
    }
    return BL_OK;
}

static int render_chat(bl_local_t *l, bl_local_req_t *r, json_t *msgs, const char *tools_json,
                       bool *opened)
{
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || n == 0)
        return bad(r, 400, "invalid_value", "%s", "'messages' must be a non-empty array.");
    bl_chat_msg_t *cm = calloc(n, sizeof *cm);
    bl_chat_msg_tools_t *x = calloc(n, sizeof *x);
    bl_buf_t *texts = calloc(n, sizeof *texts);
    int rc = BL_ENOMEM;
    if (!cm || !x || !texts)
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
        json_t *calls = json_object_get(m, "tool_calls");
        if (calls && !json_is_null(calls)) {
            if (strcmp(rs, "assistant")) {
                rc = bad(r, 400, "invalid_value", "%s", "Only assistant messages have tool_calls.");
                goto done;
            }
            if ((rc = read_calls(r, calls, &x[i])))
                goto done;
        }
        if (!strcmp(rs, "tool")) {
            x[i].tool_call_id = json_string_value(json_object_get(m, "tool_call_id"));
            x[i].name = json_string_value(json_object_get(m, "name"));
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
    /* A last assistant message is an answer to continue, not to close
     * (unless it made calls: then it is finished and the model answers). */
    bool cont = !strcmp(cm[n - 1].role, "assistant") && !x[n - 1].n_tool_calls;
    *opened = !cont;
    rc = bl_chat_render_tools(l->model, cm, x, n, tools_json, !cont, &r->prompt, &r->prompt_len);
    if (rc)
        rc = bad(r, 400, "invalid_value", "%s", "The messages could not be rendered for this model.");
done:
    for (size_t i = 0; texts && i < n; i++)
        bl_buf_free(&texts[i]);
    for (size_t i = 0; x && i < n; i++)
        free((void *)x[i].tool_calls);
    free(x);
    free(texts);
    free(cm);
    return rc;
}

/* tools and tool_choice: *tools_json (malloc'd, NULL for none) is what the
 * template gets. "none" renders no tools; a named function renders that one
 * tool only. For "required" and a named choice *force is set and *forced
 * names the function (or is NULL): the answer is begun for the model (see
 * prefill_call); its arguments are not constrained while sampling (that
 * takes a grammar). */
static int read_tools(bl_local_req_t *r, json_t *root, char **tools_json, bool *force,
                      const char **forced)
{
    *tools_json = NULL;
    *force = false;
    *forced = NULL;
    json_t *tools = json_object_get(root, "tools"), *choice = json_object_get(root, "tool_choice");
    if (!tools || json_is_null(tools))
        return BL_OK;
    if (!json_is_array(tools))
        return bad(r, 400, "invalid_type", "%s", "'tools' must be an array.");
    const char *want = NULL;
    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);
        if (!strcmp(c, "none"))
            return BL_OK;
        if (strcmp(c, "auto") && strcmp(c, "required"))
            return bad(r, 400, "invalid_value", "Invalid 'tool_choice': '%.40s'.", c);
        *force = !strcmp(c, "required");
    } else if (json_is_object(choice)) {
        want = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
        if (!want)
            return bad(r, 400, "invalid_value", "%s",
                       "'tool_choice' must name a function: {\"type\": \"function\", "
                       "\"function\": {\"name\": ...}}.");
    } else if (choice && !json_is_null(choice)) {
        return bad(r, 400, "invalid_type", "%s", "'tool_choice' must be a string or an object.");
    }
    json_t *keep = json_array();
    if (!keep)
        return BL_ENOMEM;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *type = json_object_get(t, "type"), *fn = json_object_get(t, "function");
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") ||
            !json_is_string(json_object_get(fn, "name"))) {
            json_decref(keep);
            return bad(r, 400, "unsupported_value", "%s",
                       "The local model takes function tools: {\"type\": \"function\", "
                       "\"function\": {\"name\": ...}}.");
        }
        if (!want || !strcmp(json_string_value(json_object_get(fn, "name")), want))
            json_array_append(keep, t);
    }
    if (want && json_array_size(keep) == 0) {
        json_decref(keep);
        return bad(r, 400, "invalid_value", "'tool_choice' names '%.60s', which is not in 'tools'.",
                   want);
    }
    /* jansson keeps each object's key order, which the template shows. */
    *tools_json = json_array_size(keep) ? json_dumps(keep, JSON_COMPACT) : NULL;
    bool empty = json_array_size(keep) == 0;
    json_decref(keep);
    if (!empty && !*tools_json)
        return BL_ENOMEM;
    r->one_call = json_is_false(json_object_get(root, "parallel_tool_calls"));
    if (want) {
        *force = true;
        *forced = want;
    }
    return BL_OK;
}

static int no_event(void *ud, const bl_chat_event_t *e)
{
    (void)e;
    *(bool *)ud = true;
    return 0;
}

/* response_format: json_object, or json_schema (checked now, so a schema
 * outside what the engine can enforce is the client's 400 naming the
 * construct, not a failure later). */
static int read_format(bl_local_req_t *r, json_t *rf)
{
    if (!rf || json_is_null(rf))
        return BL_OK;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type)
        return bad(r, 400, "invalid_type", "%s", "'response_format' must have a 'type'.");
    if (!strcmp(type, "text"))
        return BL_OK;
    if (!strcmp(type, "json_object")) {
        r->gp.json_object = true;
        return BL_OK;
    }
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (strcmp(type, "json_schema") || !json_is_object(schema))
        return bad(r, 400, "invalid_value", "%s",
                   "'response_format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} "
                   "or {\"type\": \"json_schema\", \"json_schema\": {\"schema\": {...}}}.");
    r->schema = json_dumps(schema, JSON_COMPACT);
    if (!r->schema)
        return BL_ENOMEM;
    char why[300];
    if (bl_json_schema_check(r->schema, strlen(r->schema), why, sizeof why))
        return bad(r, 400, "unsupported_schema", "response_format.json_schema.schema: %s", why);
    r->gp.json_schema = r->schema;
    r->gp.json_schema_len = strlen(r->schema);
    return BL_OK;
}

/* The schema of one call as the family writes it: {"name": <one of the
 * tools>, "arguments" (Llama: "parameters"): <that tool's parameters>}. A
 * tool whose parameters use what the engine cannot enforce (coding agents'
 * tools use pattern and format freely) gets any JSON object as arguments:
 * a 400 there would break the agent, and its arguments are still JSON. */
static char *call_schema(json_t *tools, bl_chat_tool_style_t style, const char *only)
{
    const char *args_key = style == BL_CHAT_TOOLS_HERMES ? "arguments" : "parameters";
    json_t *any = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name || (only && strcmp(name, only)))
            continue;
        json_t *params = json_object_get(fn, "parameters");
        char *ptext = json_is_object(params) ? json_dumps(params, JSON_COMPACT) : NULL;
        char why[256];
        bool ok = ptext && !bl_json_schema_check(ptext, strlen(ptext), why, sizeof why);
        free(ptext);
        json_t *p = ok ? json_incref(params) : json_pack("{s:s}", "type", "object");
        json_array_append_new(any, json_pack("{s:s, s:{s:{s:s}, s:o}, s:[s, s], s:b}", "type",
                                             "object", "properties", "name", "const", name,
                                             args_key, p, "required", "name", args_key,
                                             "additionalProperties", 0));
    }
    json_t *root = json_pack("{s:o}", "anyOf", any);
    char *out = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return out;
}

/* How the tool calls are held to their schemas while sampling. A call the
 * client requires (tool_choice required or named) begins at once: the
 * prompt ends with the family's call marker ("<tool_call>\n"; Llama 3 has
 * none) and the first token on is constrained to a call. Otherwise, for
 * Hermes-style models whose "<tool_call>" is one token, the constraint
 * starts when the model writes that token. The parser is fed the marker, so
 * the call reads as if the model wrote it all. */
static int plan_calls(bl_local_t *l, bl_local_req_t *r, json_t *root, bool force, const char *forced)
{
    bl_chat_tool_style_t style = bl_chat_tool_style(l->model);
    json_t *tools = json_object_get(root, "tools");
    r->call_marker = -1;
    r->call_schema = call_schema(tools, style, forced);
    if (!r->call_schema)
        return BL_ENOMEM;
    char why[256];
    if (bl_json_schema_check(r->call_schema, strlen(r->call_schema), why, sizeof why)) {
        free(r->call_schema); /* cannot happen with the fallback above; stay unconstrained */
        r->call_schema = NULL;
        return BL_OK;
    }
    static const char marker[] = "<tool_call>";
    if (!force) {
        bl_token_t t[2];
        size_t n = 0;
        if (style == BL_CHAT_TOOLS_HERMES &&
            !bl_tokenize(l->model, marker, sizeof marker - 1, false, true, t, 2, &n) && n == 1)
            r->call_marker = t[0];
        return BL_OK;
    }
    r->call_now = true;
    r->call_then_stop = true; /* the required call is the answer */
    if (style != BL_CHAT_TOOLS_HERMES)
        return BL_OK;
    static const char open[] = "<tool_call>\n";
    char *p = realloc(r->prompt, r->prompt_len + sizeof open);
    if (!p)
        return BL_ENOMEM;
    memcpy(p + r->prompt_len, open, sizeof open);
    r->prompt = p;
    r->prompt_len += sizeof open - 1;
    bool leaked = false; /* an unfinished call is held back: nothing comes out yet */
    int rc = bl_chat_tool_parser_feed(r->tp, open, sizeof open - 1, no_event, &leaked);
    return rc ? rc : leaked ? BL_ESTATE : BL_OK;
}

int bl_local_tools_begin(bl_local_req_t *r, bl_chat_tool_style_t style)
{
    bl_chat_tool_parser_free(r->tp);
    r->tp = NULL;
    return bl_chat_tool_parser_new(style, &r->tp);
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
        rc = bad(r, 400, "invalid_value", "%s", "'n' must be an integer from 1 to 16.");
        goto done;
    }
    static const char *const refused[] = {"functions", "logprobs", "audio", "prediction"};
    if (!r->chat && (v = json_object_get(root, "tools")) && !json_is_null(v)) {
        rc = bad(r, 400, "unsupported_parameter", "%s", "'tools' needs /chat/completions.");
        goto done;
    }
    for (size_t i = 0; i < BL_ARRAY_LEN(refused); i++) {
        v = json_object_get(root, refused[i]);
        if (v && !json_is_null(v) && !json_is_false(v)) {
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

    /* after the defaults above, which would clear it */
    if ((rc = read_format(r, json_object_get(root, "response_format"))))
        goto done;
    size_t n_extra = 0;
    const char *const *extra = NULL;
    if (r->chat) {
        char *tools_json = NULL;
        const char *forced;
        bool force, opened = false;
        if ((rc = read_tools(r, root, &tools_json, &force, &forced)))
            goto done;
        rc = render_chat(l, r, json_object_get(root, "messages"), tools_json, &opened);
        if (!rc && tools_json)
            rc = bl_local_tools_begin(r, bl_chat_tool_style(l->model));
        if (!rc && tools_json && opened)
            rc = plan_calls(l, r, root, force, forced);
        free(tools_json);
        if (rc)
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
    bl_buf_free(&r->calls);
    bl_buf_free(&r->call_name);
    bl_buf_free(&r->call_args);
    bl_chat_tool_parser_free(r->tp);
    r->tp = NULL;
    free(r->schema);
    free(r->call_schema);
    r->schema = r->call_schema = NULL;
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
    if (r->finish == BL_FINISH_LENGTH)
        return "length";
    return r->n_calls ? "tool_calls" : "stop";
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

static void call_id(bl_buf_t *b, const bl_local_req_t *r, size_t index)
{
    bl_buf_printf(b, "\"call_%s_%zu\"", r->id, index);
}

/* One SSE event with a tool-call delta: the call's opening (name given, its
 * id and type, arguments "") or a piece of its arguments. */
static void tool_chunk(bl_buf_t *b, const bl_local_req_t *r, size_t index, const bl_chat_event_t *e)
{
    bool start = e->kind == BL_CHAT_EV_CALL_START;
    bl_buf_append_str(b, "data: ");
    head(b, r, true);
    bl_buf_printf(b, "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%zu,", index);
    if (start) {
        bl_buf_append_str(b, "\"id\":");
        call_id(b, r, index);
        bl_buf_append_str(b, ",\"type\":\"function\",\"function\":{\"name\":");
        json_str(b, e->text, e->len);
        bl_buf_append_str(b, ",\"arguments\":\"\"}");
    } else {
        bl_buf_append_str(b, "\"function\":{\"arguments\":");
        json_str(b, e->text, e->len);
        bl_buf_append_str(b, "}");
    }
    bl_buf_append_str(b, "}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

/* What the tool-call parser found in the generated text. */
static int on_tool_event(void *ud, const bl_chat_event_t *e)
{
    bl_local_req_t *r = ud;
    if (e->kind != BL_CHAT_EV_TEXT && r->one_call && e->index > 0)
        return 0; /* parallel_tool_calls: false */
    if (r->stream) {
        if (e->kind == BL_CHAT_EV_TEXT)
            chunk(&r->wire, r, e->text, e->len, NULL, false);
        else if (e->kind == BL_CHAT_EV_CALL_END)
            r->n_calls++;
        else
            tool_chunk(&r->wire, r, e->index, e);
        return 0;
    }
    switch (e->kind) {
    case BL_CHAT_EV_TEXT:
        return bl_buf_append(&r->text, e->text, e->len);
    case BL_CHAT_EV_CALL_START:
        bl_buf_reset(&r->call_name);
        bl_buf_reset(&r->call_args);
        return bl_buf_append(&r->call_name, e->text, e->len);
    case BL_CHAT_EV_CALL_ARGS:
        return bl_buf_append(&r->call_args, e->text, e->len);
    case BL_CHAT_EV_CALL_END:
        if (r->n_calls)
            bl_buf_append_str(&r->calls, ",");
        bl_buf_append_str(&r->calls, "{\"id\":");
        call_id(&r->calls, r, e->index);
        bl_buf_append_str(&r->calls, ",\"type\":\"function\",\"function\":{\"name\":");
        json_str(&r->calls, r->call_name.data ? r->call_name.data : "", r->call_name.len);
        bl_buf_append_str(&r->calls, ",\"arguments\":");
        json_str(&r->calls, r->call_args.data ? r->call_args.data : "", r->call_args.len);
        bl_buf_append_str(&r->calls, "}}");
        r->n_calls++;
        return 0;
    }
    return 0;
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
        if (r->tp) {
            bl_chat_tool_parser_feed(r->tp, text, len, on_tool_event, r);
            if (done)
                bl_chat_tool_parser_finish(r->tp, on_tool_event, r);
        } else {
            bl_buf_append(&r->text, text, len);
        }
        if (!done)
            return;
        send_headers(r, 200, "application/json", NULL);
        if (r->abandoned)
            return;
        head(w, r, false);
        if (r->chat) {
            bl_buf_append_str(w, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
            if (r->n_calls && !r->text.len)
                bl_buf_append_str(w, "null"); /* OpenAI's content beside tool calls */
            else
                json_str(w, r->text.data ? r->text.data : "", r->text.len);
            if (r->n_calls) {
                bl_buf_append_str(w, ",\"tool_calls\":[");
                bl_buf_append(w, r->calls.data, r->calls.len);
                bl_buf_append_str(w, "]");
            }
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
    if (r->tp) {
        bl_chat_tool_parser_feed(r->tp, text, len, on_tool_event, r);
        if (done)
            bl_chat_tool_parser_finish(r->tp, on_tool_event, r);
    } else if (len) {
        chunk(w, r, text, len, NULL, false);
    }
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
