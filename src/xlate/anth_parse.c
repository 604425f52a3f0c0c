/*
 * Anthropic Messages requests (POST /v1/messages): reading a client's body
 * into bl_xreq_t.
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
 * Writing is anth_build.c.
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
