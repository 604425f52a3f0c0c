/*
 * Scripted tool calls, so a test can make the mock answer the way a model
 * driving a coding agent does: first a tool call, then, once the client
 * sends the tool's result back, a final text.
 *
 * The script (one tool name + its arguments) is process-wide: --tool-name /
 * --tool-args on the command line, or POST /_mock/tool. For chat, responses
 * and messages requests:
 *   - the request's LAST message/input item is a tool result (chat: role
 *     "tool"; responses: a function_call_output item; messages: a user
 *     message with a tool_result block) -> the text "Done: RESULT" (RESULT =
 *     that result's text, first 200 bytes on a UTF-8 boundary), script or not;
 *   - else a script is set and the request offers a tool of that name -> the
 *     tool call, in the family's own shape (rendered by the family's file);
 *   - else the usual greeting.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "mock.h"

#define RESULT_MAX 200

bl_buf_t g_tool_name; /* JSON-escaped */
bl_buf_t g_tool_args; /* compact JSON object text, raw */
size_t g_arg_end[3];
size_t g_n_arg_pieces;

static bl_buf_t g_script_name; /* raw; empty = no script */
static bl_buf_t g_script_args;

void tools_free(void)
{
    bl_buf_free(&g_tool_name);
    bl_buf_free(&g_tool_args);
    bl_buf_free(&g_script_name);
    bl_buf_free(&g_script_args);
}

/* Arguments: a JSON object, or a string holding one (as OpenAI sends them). */
static int args_text(json_t *args, bl_buf_t *out)
{
    int rc = BL_EINVAL;
    json_t *parsed = NULL;
    if (!args || json_is_null(args)) {
        bl_buf_reset(out);
        return bl_buf_append_str(out, "{}") ? BL_ENOMEM : 0;
    }
    if (json_is_string(args)) {
        parsed = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
        args = parsed;
    }
    if (!json_is_object(args))
        goto done;
    char *s = json_dumps(args, JSON_COMPACT);
    if (!s) {
        rc = BL_ENOMEM;
        goto done;
    }
    bl_buf_reset(out);
    rc = bl_buf_append_str(out, s) ? BL_ENOMEM : 0;
    free(s);
done:
    json_decref(parsed);
    return rc;
}

static int set_script(const char *name, size_t name_len, json_t *args)
{
    bl_buf_t a = {0};
    int rc = args_text(args, &a);
    if (rc == 0 && (name_len == 0 || name_len > 256))
        rc = BL_EINVAL;
    if (rc == 0) {
        bl_buf_reset(&g_script_name);
        bl_buf_append(&g_script_name, name, name_len);
        bl_buf_free(&g_script_args);
        g_script_args = a;
        a = (bl_buf_t){0};
    }
    bl_buf_free(&a);
    return rc;
}

int tools_set_cli(const char *name, const char *args_json)
{
    int rc = BL_EINVAL;
    json_t *args = NULL;
    if (args_json) {
        args = json_loads(args_json, 0, NULL);
        if (!args)
            goto done;
    }
    rc = set_script(name, strlen(name), args);
done:
    json_decref(args);
    return rc;
}

int tools_set_json(const char *body, size_t n)
{
    int rc = BL_EINVAL;
    json_t *root = json_loadb(body ? body : "", n, 0, NULL);
    json_t *name = json_object_get(root, "name");
    if (!json_is_object(root))
        goto done;
    if (json_is_null(name)) { /* {"name": null} clears the script */
        bl_buf_reset(&g_script_name);
        bl_buf_reset(&g_script_args);
        rc = 0;
        goto done;
    }
    if (!json_is_string(name))
        goto done;
    rc = set_script(json_string_value(name), json_string_length(name),
                    json_object_get(root, "arguments"));
done:
    json_decref(root);
    return rc;
}

json_t *tools_describe(void)
{
    if (!g_script_name.len)
        return json_pack("{s:n, s:n}", "name", "arguments");
    json_t *args = json_loadb(g_script_args.data, g_script_args.len, 0, NULL);
    json_t *name = json_stringn(g_script_name.data, g_script_name.len);
    return json_pack("{s:o?, s:o?}", "name", name, "arguments", args);
}

/* The text of a tool result's content: a string, or the "text" of each part. */
static void content_text(json_t *content, bl_buf_t *out)
{
    if (json_is_string(content)) {
        bl_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            bl_buf_append(out, json_string_value(t), json_string_length(t));
    }
}

static json_t *last_of(json_t *arr)
{
    size_t n = json_array_size(arr);
    return n ? json_array_get(arr, n - 1) : NULL;
}

static bool str_is(json_t *j, const char *lit)
{
    return json_is_string(j) && strcmp(json_string_value(j), lit) == 0;
}

/* If the request ends with a tool result, put its text in out. */
static bool tool_result(json_t *root, family_t fam, bl_buf_t *out)
{
    json_t *last;
    switch (fam) {
    case FAM_CHAT:
        last = last_of(json_object_get(root, "messages"));
        if (!str_is(json_object_get(last, "role"), "tool"))
            return false;
        content_text(json_object_get(last, "content"), out);
        return true;
    case FAM_RESPONSES:
        last = last_of(json_object_get(root, "input"));
        if (!str_is(json_object_get(last, "type"), "function_call_output"))
            return false;
        content_text(json_object_get(last, "output"), out);
        return true;
    case FAM_ANTHROPIC: {
        last = last_of(json_object_get(root, "messages"));
        if (!str_is(json_object_get(last, "role"), "user"))
            return false;
        size_t i;
        json_t *block;
        json_array_foreach(json_object_get(last, "content"), i, block)
        {
            if (str_is(json_object_get(block, "type"), "tool_result")) {
                content_text(json_object_get(block, "content"), out);
                return true;
            }
        }
        return false;
    }
    }
    return false;
}

/* Does the request offer a function tool named like the script? */
static bool offers_tool(json_t *root, family_t fam)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "tools"), i, t)
    {
        json_t *name = fam == FAM_CHAT ? json_object_get(json_object_get(t, "function"), "name")
                                       : json_object_get(t, "name");
        if (json_is_string(name) && json_string_length(name) == g_script_name.len &&
            memcmp(json_string_value(name), g_script_name.data, g_script_name.len) == 0)
            return true;
    }
    return false;
}

/* Cut the arguments in up to 3 pieces, never inside a UTF-8 sequence. */
static void split_args(void)
{
    size_t n = g_tool_args.len;
    g_n_arg_pieces = 0;
    for (size_t k = 1; k < 3 && n >= 3; k++) {
        size_t at = n * k / 3;
        while (at < n && ((unsigned char)g_tool_args.data[at] & 0xC0) == 0x80)
            at++;
        if (at > (g_n_arg_pieces ? g_arg_end[g_n_arg_pieces - 1] : 0) && at < n)
            g_arg_end[g_n_arg_pieces++] = at;
    }
    g_arg_end[g_n_arg_pieces++] = n;
}

bool tools_plan(json_t *root, family_t fam, const char *model, size_t model_len, int chunks)
{
    bl_buf_t result = {0};
    bool call = false;
    if (tool_result(root, fam, &result)) {
        size_t n = result.len < RESULT_MAX ? result.len : RESULT_MAX;
        while (n < result.len && n > 0 && ((unsigned char)result.data[n] & 0xC0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
        bl_buf_reset(&g_text);
        bl_buf_append_str(&g_text, "Done: ");
        bl_buf_append(&g_text, result.data, n);
        split_text(chunks);
    } else if (g_script_name.len && offers_tool(root, fam)) {
        bl_buf_reset(&g_tool_name);
        json_escape(&g_tool_name, g_script_name.data, g_script_name.len);
        bl_buf_reset(&g_tool_args);
        bl_buf_append(&g_tool_args, g_script_args.data, g_script_args.len);
        split_args();
        g_n_pieces = 0;
        call = true;
    } else {
        build_text(model, model_len, chunks);
    }
    bl_buf_free(&result);
    return call;
}
