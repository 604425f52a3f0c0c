/*
 * Anthropic Messages requests (POST /v1/messages): reading a client's body
 * into bl_xreq_t and writing bl_xreq_t out as a body for an Anthropic target.
 *
 * Reading an Anthropic body (client side):
 * | construct                              | becomes                                    |
 * | -------------------------------------- | ------------------------------------------ |
 * | system (string or text blocks)         | first SYSTEM message, one TEXT per block   |
 * | cache_control, citations on blocks     | ignored                                    |
 * | user blocks with tool_result           | a TOOL message (results in order), other   |
 * |                                        | blocks in USER messages, order kept        |
 * | tool_result content blocks             | text joined with "\n"; raw kept when the   |
 * |                                        | content is not one text block (images)     |
 * | thinking / redacted_thinking, server   | OPAQUE (anthropic): dropped for others     |
 * | tool blocks (server_tool_use,          |                                            |
 * | web_search_tool_result, mcp_tool_use)  |                                            |
 * | document with a text source            | TEXT                                       |
 * | document (pdf/url/file), image file_id | 400 unsupported                            |
 * | tools with a "type" (web_search_...)   | hosted_tool (first one); not in tools      |
 * | tool_choice.disable_parallel_tool_use  | parallel_tool_calls = 0                    |
 * | metadata.user_id                       | user                                       |
 * | thinking, service_tier, container, ... | ignored                                    |
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

/* ---- reading ------------------------------------------------------------------ */

#define BLOCK_TAGS                                                                                 \
    "'text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'"

static int fail(bl_xerr_t *err, const char *path, const char *what)
{
    bl_xerr_set(err, path, "%s: %s", path, what);
    return BL_EINVAL;
}

/* fail() with the path made from a format (callers pass a short literal). */
static int failf(bl_xerr_t *err, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(bl_xerr_t *err, const char *what, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return fail(err, path, what);
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The text of a string member; *len its length. NULL when absent or not a string. */
static const char *jstrn(json_t *o, const char *key, size_t *len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static bl_xpart_t *add_text(bl_xmsg_t *m, const char *s, size_t n)
{
    bl_xpart_t *p = bl_xmsg_add_part(m, BL_PART_TEXT);
    if (p) {
        p->text = s;
        p->text_len = n;
    }
    return p;
}

/* An image block's source into p->url. */
static int read_image(bl_xreq_t *q, json_t *blk, bl_xpart_t *p, const char *path, bl_xerr_t *err)
{
    json_t *src = json_object_get(blk, "source");
    if (!json_is_object(src))
        return failf(err, "Field required", "%s.source", path);
    const char *type = jstr(src, "type");
    if (!type)
        return failf(err, "Field required", "%s.source.type", path);
    if (!strcmp(type, "base64")) {
        const char *mt = jstr(src, "media_type");
        size_t dn;
        const char *data = jstrn(src, "data", &dn);
        if (!mt || !data)
            return failf(err, "Field required", "%s.source.%s", path, mt ? "data" : "media_type");
        size_t mn = strlen(mt), total;
        if (!bl_add_ok(mn, dn, &total) || !bl_add_ok(total, 16, &total))
            return BL_ENOMEM;
        char *u = malloc(total);
        if (!u)
            return BL_ENOMEM;
        snprintf(u, total, "data:%s;base64,", mt);
        size_t h = strlen(u);
        memcpy(u + h, data, dn);
        u[h + dn] = '\0';
        if (!(p->url = bl_xreq_keep(q, u)))
            return BL_ENOMEM;
        return BL_OK;
    }
    if (!strcmp(type, "url")) {
        p->url = jstr(src, "url");
        if (!p->url)
            return failf(err, "Field required", "%s.source.url", path);
        return BL_OK;
    }
    char msg[200];
    snprintf(msg, sizeof msg,
             "image source type '%.40s' is not supported by this gateway "
             "(use 'base64' or 'url')",
             type);
    return failf(err, msg, "%s.source.type", path);
}

/* A tool_result block's content: text joined; raw kept when it is not one text block. */
static int read_tool_result(bl_xreq_t *q, json_t *blk, bl_xpart_t *p, const char *path,
                            bl_xerr_t *err)
{
    p->id = jstr(blk, "tool_use_id");
    if (!p->id)
        return failf(err, "Field required", "%s.tool_use_id", path);
    json_t *ie = json_object_get(blk, "is_error");
    p->is_error = json_is_true(ie);
    json_t *c = json_object_get(blk, "content");
    if (!c || json_is_null(c)) {
        p->text = "";
        return BL_OK;
    }
    if (json_is_string(c)) {
        p->text = json_string_value(c);
        p->text_len = json_string_length(c);
        return BL_OK;
    }
    if (!json_is_array(c))
        return failf(err, "Input should be a valid string or list", "%s.content", path);
    bl_buf_t b = {0};
    size_t i;
    json_t *e;
    bool plain = json_array_size(c) <= 1;
    json_array_foreach(c, i, e)
    {
        const char *t = jstr(e, "type");
        if (!t) {
            bl_buf_free(&b);
            return failf(err, "Field required", "%s.content.%zu.type", path, i);
        }
        if (!strcmp(t, "text")) {
            size_t n;
            const char *s = jstrn(e, "text", &n);
            if (!s) {
                bl_buf_free(&b);
                return failf(err, "Field required", "%s.content.%zu.text", path, i);
            }
            if (b.len)
                bl_buf_append(&b, "\n", 1);
            bl_buf_append(&b, s, n);
        } else if (!strcmp(t, "image")) {
            plain = false;
        } else {
            bl_buf_free(&b);
            return failf(err, "only 'text' and 'image' blocks are supported in a tool_result",
                         "%s.content.%zu.type", path, i);
        }
    }
    p->text_len = b.len;
    p->text = b.len ? bl_xreq_keep(q, bl_buf_steal(&b, NULL)) : "";
    bl_buf_free(&b);
    if (!p->text)
        return BL_ENOMEM;
    if (!plain)
        p->raw = json_incref(c);
    return BL_OK;
}

/* Blocks of Anthropic's own server tools (server_tool_use, web_search_tool_result,
 * mcp_tool_use, ...): only an Anthropic target can take them back. */
static bool server_block(const char *t)
{
    size_t n = strlen(t);
    if (!strcmp(t, "server_tool_use") || !strcmp(t, "mcp_tool_use"))
        return true;
    return n > 12 && !strcmp(t + n - 12, "_tool_result");
}

/* The message to add a block of this role to: the last one if it has that role. */
static bl_xmsg_t *msg_for(bl_xreq_t *q, bl_role_t role, size_t first)
{
    if (q->n_msgs > first && q->msgs[q->n_msgs - 1].role == role)
        return &q->msgs[q->n_msgs - 1];
    return bl_xreq_add_msg(q, role);
}

static int read_message(bl_xreq_t *q, json_t *m, size_t mi, bl_xerr_t *err)
{
    char path[96];
    snprintf(path, sizeof path, "messages.%zu", mi);
    if (!json_is_object(m))
        return fail(err, path, "Input should be a valid dictionary");
    const char *role = jstr(m, "role");
    snprintf(path, sizeof path, "messages.%zu.role", mi);
    if (!role)
        return fail(err, path, "Field required");
    bool user = !strcmp(role, "user");
    /* Claude Code puts system messages among the turns: a system message
       where it stands, as other families have them */
    bool sys = !strcmp(role, "system");
    if (!user && !sys && strcmp(role, "assistant"))
        return fail(err, path, "Input should be 'user', 'assistant' or 'system'");
    bl_role_t r = user ? BL_ROLE_USER : sys ? BL_ROLE_SYSTEM : BL_ROLE_ASSISTANT;
    json_t *c = json_object_get(m, "content");
    snprintf(path, sizeof path, "messages.%zu.content", mi);
    if (!c)
        return fail(err, path, "Field required");
    /* Blocks of one client message never merge into the previous client message. */
    size_t first = q->n_msgs;
    if (json_is_string(c)) {
        bl_xmsg_t *msg = bl_xreq_add_msg(q, r);
        if (!msg || !add_text(msg, json_string_value(c), json_string_length(c)))
            return BL_ENOMEM;
        return BL_OK;
    }
    if (!json_is_array(c))
        return fail(err, path, "Input should be a valid list");
    size_t bi;
    json_t *blk;
    json_array_foreach(c, bi, blk)
    {
        char bp[64];
        snprintf(bp, sizeof bp, "messages.%zu.content.%zu", mi, bi);
        if (!json_is_object(blk))
            return fail(err, bp, "Input should be a valid dictionary");
        const char *t = jstr(blk, "type");
        char tp[80];
        snprintf(tp, sizeof tp, "%s.type", bp);
        if (!t)
            return fail(err, tp, "Field required");
        if (sys && strcmp(t, "text"))
            return fail(err, tp, "system messages may only hold text blocks");
        bl_xmsg_t *msg;
        bl_xpart_t *p;
        int rc;
        if (!strcmp(t, "text")) {
            size_t n;
            const char *s = jstrn(blk, "text", &n);
            if (!s)
                return failf(err, "Field required", "%s.text", bp);
            if (!(msg = msg_for(q, r, first)) || !add_text(msg, s, n))
                return BL_ENOMEM;
        } else if (!strcmp(t, "image")) {
            if (!user)
                return fail(err, tp, "image blocks are only allowed in user messages");
            if (!(msg = msg_for(q, r, first)) || !(p = bl_xmsg_add_part(msg, BL_PART_IMAGE)))
                return BL_ENOMEM;
            if ((rc = read_image(q, blk, p, bp, err)))
                return rc;
        } else if (!strcmp(t, "document")) {
            /* Only plain text can be said in every family. */
            json_t *src = json_object_get(blk, "source");
            size_t n;
            const char *s = jstrn(src, "data", &n);
            const char *st = jstr(src, "type");
            if (!st || strcmp(st, "text") || !s)
                return fail(err, tp,
                            "document blocks other than plain text sources are not "
                            "supported by this gateway");
            if (!(msg = msg_for(q, r, first)) || !add_text(msg, s, n))
                return BL_ENOMEM;
        } else if (!strcmp(t, "tool_use")) {
            if (user)
                return fail(err, tp, "tool_use blocks are only allowed in assistant messages");
            const char *id = jstr(blk, "id"), *name = jstr(blk, "name");
            json_t *in = json_object_get(blk, "input");
            if (!id || !name || !json_is_object(in))
                return failf(err, "Field required", "%s.%s", bp,
                             !id     ? "id"
                             : !name ? "name"
                                     : "input");
            char *args = json_dumps(in, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (!(msg = msg_for(q, r, first)) || !(p = bl_xmsg_add_part(msg, BL_PART_TOOL_CALL)) ||
                !(p->text = bl_xreq_keep(q, args)))
                return BL_ENOMEM;
            p->text_len = strlen(p->text);
            p->id = id;
            p->name = name;
        } else if (!strcmp(t, "tool_result")) {
            if (!user)
                return fail(err, tp, "tool_result blocks are only allowed in user messages");
            if (!(msg = msg_for(q, BL_ROLE_TOOL, first)) ||
                !(p = bl_xmsg_add_part(msg, BL_PART_TOOL_RESULT)))
                return BL_ENOMEM;
            if ((rc = read_tool_result(q, blk, p, bp, err)))
                return rc;
        } else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking") || server_block(t)) {
            if (user)
                return failf(err,
                             "Input tag found using 'type' is only allowed in assistant "
                             "messages",
                             "%s.type", bp);
            if (!(msg = msg_for(q, r, first)) || !(p = bl_xmsg_add_part(msg, BL_PART_OPAQUE)))
                return BL_ENOMEM;
            p->raw = json_incref(blk);
            p->family = BL_FAM_ANTHROPIC;
        } else {
            char msg_[300];
            snprintf(msg_, sizeof msg_,
                     "Input tag '%.40s' found using 'type' does not match any "
                     "of the expected tags: " BLOCK_TAGS,
                     t);
            return fail(err, tp, msg_);
        }
    }
    return BL_OK;
}

static int read_system(bl_xreq_t *q, json_t *sys, bl_xerr_t *err)
{
    if (!sys || json_is_null(sys))
        return BL_OK;
    if (json_is_string(sys)) {
        if (!json_string_length(sys))
            return BL_OK;
        bl_xmsg_t *m = bl_xreq_add_msg(q, BL_ROLE_SYSTEM);
        return m && add_text(m, json_string_value(sys), json_string_length(sys)) ? BL_OK
                                                                                 : BL_ENOMEM;
    }
    if (!json_is_array(sys))
        return fail(err, "system", "Input should be a valid string or list");
    if (!json_array_size(sys))
        return BL_OK;
    bl_xmsg_t *m = bl_xreq_add_msg(q, BL_ROLE_SYSTEM);
    if (!m)
        return BL_ENOMEM;
    size_t i;
    json_t *b;
    json_array_foreach(sys, i, b)
    {
        char path[64];
        snprintf(path, sizeof path, "system.%zu.type", i);
        const char *t = jstr(b, "type");
        if (!t || strcmp(t, "text"))
            return fail(err, path,
                        "Input tag found using 'type' does not match the expected "
                        "tag: 'text'");
        size_t n;
        const char *s = jstrn(b, "text", &n);
        if (!s)
            return failf(err, "Field required", "system.%zu.text", i);
        if (!add_text(m, s, n))
            return BL_ENOMEM;
    }
    return BL_OK;
}

static int read_tools(bl_xreq_t *q, json_t *tools, bl_xerr_t *err)
{
    if (!tools || json_is_null(tools))
        return BL_OK;
    if (!json_is_array(tools))
        return fail(err, "tools", "Input should be a valid list");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char path[64];
        snprintf(path, sizeof path, "tools.%zu", i);
        if (!json_is_object(t))
            return fail(err, path, "Input should be a valid dictionary");
        const char *type = jstr(t, "type");
        if (type && strcmp(type, "custom")) {
            /* Anthropic-defined tools (web_search_20250305, bash_20250124, ...). */
            if (!q->hosted_tool)
                q->hosted_tool = type;
            continue;
        }
        const char *name = jstr(t, "name");
        json_t *schema = json_object_get(t, "input_schema");
        if (!name || !json_is_object(schema))
            return failf(err, "Field required", "tools.%zu.%s", i, name ? "input_schema" : "name");
        bl_xtool_t *x = bl_xreq_add_tool(q);
        if (!x)
            return BL_ENOMEM;
        x->name = name;
        x->description = jstr(t, "description");
        x->parameters = json_incref(schema);
        json_t *strict = json_object_get(t, "strict");
        if (json_is_boolean(strict))
            x->strict = json_is_true(strict);
    }
    return BL_OK;
}

static int read_tool_choice(bl_xreq_t *q, json_t *tc, bl_xerr_t *err)
{
    if (!tc || json_is_null(tc))
        return BL_OK;
    if (!json_is_object(tc))
        return fail(err, "tool_choice", "Input should be a valid dictionary");
    const char *t = jstr(tc, "type");
    if (!t)
        return fail(err, "tool_choice.type", "Field required");
    if (!strcmp(t, "auto")) {
        q->tool_choice = BL_TC_AUTO;
    } else if (!strcmp(t, "any")) {
        q->tool_choice = BL_TC_REQUIRED;
    } else if (!strcmp(t, "none")) {
        q->tool_choice = BL_TC_NONE;
    } else if (!strcmp(t, "tool")) {
        q->tool_choice = BL_TC_NAMED;
        q->tool_choice_name = jstr(tc, "name");
        if (!q->tool_choice_name)
            return fail(err, "tool_choice.name", "Field required");
    } else {
        return fail(err, "tool_choice.type",
                    "Input tag does not match any of the expected "
                    "tags: 'auto', 'any', 'tool', 'none'");
    }
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
        q->parallel_tool_calls = 0;
    return BL_OK;
}

/* An optional number field; NAN stays when absent. */
static int read_number(json_t *root, const char *key, double *out, bl_xerr_t *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return BL_OK;
    if (!json_is_number(v))
        return fail(err, key, "Input should be a valid number");
    *out = json_number_value(v);
    return BL_OK;
}

static int read_int(json_t *v, const char *key, int64_t *out, bl_xerr_t *err)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return BL_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9e15) {
            *out = (int64_t)d;
            return BL_OK;
        }
    }
    return fail(err, key, "Input should be a valid integer");
}

int bl_xanth_parse(const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err)
{
    *out = NULL;
    bl_xreq_t *q = bl_xreq_new(BL_FAM_ANTHROPIC);
    if (!q)
        return BL_ENOMEM;
    int rc = BL_EINVAL;
    json_error_t je;
    q->doc = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &je);
    json_t *root = q->doc;
    if (!root) {
        bl_xerr_set(err, NULL, "The request body is not valid JSON: %s", je.text);
        goto done;
    }
    if (!json_is_object(root)) {
        bl_xerr_set(err, NULL, "The request body must be a JSON object");
        goto done;
    }
    json_t *v = json_object_get(root, "model");
    if (!v) {
        rc = fail(err, "model", "Field required");
        goto done;
    }
    if (!(q->model = json_string_value(v))) {
        rc = fail(err, "model", "Input should be a valid string");
        goto done;
    }
    v = json_object_get(root, "max_tokens");
    if (!v) {
        rc = fail(err, "max_tokens", "Field required");
        goto done;
    }
    if ((rc = read_int(v, "max_tokens", &q->max_tokens, err)))
        goto done;
    if (q->max_tokens < 1) {
        rc = fail(err, "max_tokens", "Input should be greater than or equal to 1");
        goto done;
    }
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs) {
        rc = fail(err, "messages", "Field required");
        goto done;
    }
    if (!json_is_array(msgs)) {
        rc = fail(err, "messages", "Input should be a valid list");
        goto done;
    }
    if ((rc = read_system(q, json_object_get(root, "system"), err)))
        goto done;
    size_t i;
    json_array_foreach(msgs, i, v)
    {
        if ((rc = read_message(q, v, i, err)))
            goto done;
    }
    if ((rc = read_tools(q, json_object_get(root, "tools"), err)) ||
        (rc = read_tool_choice(q, json_object_get(root, "tool_choice"), err)))
        goto done;
    v = json_object_get(root, "stop_sequences");
    if (v && !json_is_null(v)) {
        if (!json_is_array(v)) {
            rc = fail(err, "stop_sequences", "Input should be a valid list");
            goto done;
        }
        json_t *s;
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s)) {
                char path[48];
                snprintf(path, sizeof path, "stop_sequences.%zu", i);
                rc = fail(err, path, "Input should be a valid string");
                goto done;
            }
            if ((rc = bl_xreq_add_stop(q, json_string_value(s))))
                goto done;
        }
    }
    if ((rc = read_number(root, "temperature", &q->temperature, err)) ||
        (rc = read_number(root, "top_p", &q->top_p, err)))
        goto done;
    v = json_object_get(root, "top_k");
    if (v && !json_is_null(v) && (rc = read_int(v, "top_k", &q->top_k, err)))
        goto done;
    v = json_object_get(root, "metadata");
    if (json_is_object(v))
        q->user = jstr(v, "user_id");
    v = json_object_get(root, "stream");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            rc = fail(err, "stream", "Input should be a valid boolean");
            goto done;
        }
        q->stream = json_is_true(v);
    }
    q->include_usage = true;
    rc = BL_OK;
done:
    if (rc) {
        bl_xreq_free(q);
        return rc;
    }
    *out = q;
    return BL_OK;
}

/* ---- writing ------------------------------------------------------------------ */

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
