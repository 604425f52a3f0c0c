/*
 * Tool definitions and tool calls as prompt text. Qwen 2.5/3 and Llama
 * 3.1/3.2 render them in their own renderers (render.c) from the pieces
 * here; every other family gets the Hermes fallback: the conversation is
 * rewritten into plain messages carrying the Hermes text (Qwen 3's wording,
 * which Hermes-trained and Qwen-distilled models follow), so the family's
 * usual renderer produces exactly what its Jinja template would produce for
 * those messages.
 */
#include "engine/chat/chat.h"

static const char HERMES_PRE[] =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
static const char HERMES_POST[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

bool bl_chat_family_has_tools(bl_chat_family_t f)
{
    return f == BL_CHAT_QWEN25 || f == BL_CHAT_QWEN3 || f == BL_CHAT_LLAMA31 ||
           f == BL_CHAT_LLAMA32;
}

bl_chat_tool_style_t bl_chat_family_tool_style(bl_chat_family_t f)
{
    return f == BL_CHAT_LLAMA31 || f == BL_CHAT_LLAMA32 ? BL_CHAT_TOOLS_LLAMA3
                                                        : BL_CHAT_TOOLS_HERMES;
}

void bl_chat_put_hermes_tools(sb_t *b, const span_t *items, size_t n)
{
    put(b, HERMES_PRE);
    for (size_t i = 0; i < n; i++) {
        put(b, "\n");
        bl_chat_json_write(b, items[i].p, items[i].n, &BL_CHAT_JSON_JINJA);
    }
    put(b, HERMES_POST);
}

void bl_chat_put_args_tojson(sb_t *b, const char *args)
{
    if (!args)
        args = "{}";
    size_t n = strlen(args);
    if (!bl_chat_json_write(b, args, n, &BL_CHAT_JSON_JINJA))
        bl_chat_json_put_string(b, args, n);
}

void bl_chat_put_hermes_call(sb_t *b, const bl_chat_tool_call_t *tc, bool raw_string_args)
{
    put(b, "<tool_call>\n{\"name\": \"");
    put(b, tc->name);
    put(b, "\", \"arguments\": ");
    const char *args = tc->arguments ? tc->arguments : "{}";
    if (raw_string_args && !bl_chat_json_write(NULL, args, strlen(args), NULL))
        put(b, args);
    else
        bl_chat_put_args_tojson(b, args);
    put(b, "}\n</tool_call>");
}

/* Keep s (owned) in the strings list; NULL when out of memory. */
static const char *keep(sb_t *s, char **strings, size_t *n_strings)
{
    if (s->oom || (!s->p && !(s->p = calloc(1, 1)))) {
        free(s->p);
        return NULL;
    }
    strings[(*n_strings)++] = s->p;
    return s->p;
}

int bl_chat_hermes_fallback(const bl_chat_msg_t *msgs, const bl_chat_msg_tools_t *extra, size_t n,
                            const span_t *items, size_t n_items, bl_chat_msg_t **out, size_t *n_out,
                            char ***strings, size_t *n_strings)
{
    /* At most one new string per message plus the system message. */
    bl_chat_msg_t *m = calloc(n + 1, sizeof *m);
    char **s = calloc(n + 1, sizeof *s);
    size_t k = 0, ns = 0, i = 0;
    if (!m || !s)
        goto oom;
    if (n_items) {
        sb_t sys = {0};
        bool has_sys = n && !strcmp(msgs[0].role, "system");
        if (has_sys) {
            put(&sys, msgs[0].content);
            put(&sys, "\n\n");
            i = 1;
        }
        bl_chat_put_hermes_tools(&sys, items, n_items);
        m[k].role = "system";
        if (!(m[k++].content = keep(&sys, s, &ns)))
            goto oom;
    }
    while (i < n) {
        const bl_chat_msg_t *src = &msgs[i];
        if (!strcmp(src->role, "tool")) {
            sb_t t = {0};
            for (; i < n && !strcmp(msgs[i].role, "tool"); i++) {
                if (t.n)
                    put(&t, "\n");
                put(&t, "<tool_response>\n");
                put(&t, msgs[i].content);
                put(&t, "\n</tool_response>");
            }
            m[k].role = "user";
            if (!(m[k++].content = keep(&t, s, &ns)))
                goto oom;
            continue;
        }
        m[k] = (bl_chat_msg_t){.role = src->role, .content = src->content};
        if (!strcmp(src->role, "assistant") && extra && extra[i].n_tool_calls) {
            sb_t a = {0};
            put(&a, src->content ? src->content : "");
            for (size_t c = 0; c < extra[i].n_tool_calls; c++) {
                if (a.n)
                    put(&a, "\n");
                bl_chat_put_hermes_call(&a, &extra[i].tool_calls[c], false);
            }
            if (!(m[k].content = keep(&a, s, &ns)))
                goto oom;
        }
        k++;
        i++;
    }
    *out = m;
    *n_out = k;
    *strings = s;
    *n_strings = ns;
    return 0;
oom:
    for (size_t x = 0; s && x < ns; x++)
        free(s[x]);
    free(s);
    free(m);
    return BL_ENOMEM;
}
