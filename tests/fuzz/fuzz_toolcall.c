/* libFuzzer target: the streaming tool-call parser (both styles, split at a
 * point the input chooses; the split must not change the events) and the
 * JSON re-writer behind the chat templates' tojson, fed the same bytes as
 * tool definitions. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

typedef struct {
    sb_t b;
    int last; /* kind of the last event, -1 at first */
} log_t;

/* Events as text; consecutive text merged, so where it was cut does not
 * matter. */
static int log_event(void *ud, const bl_chat_event_t *e)
{
    log_t *l = ud;
    char tag[32];
    if (!(e->kind == BL_CHAT_EV_TEXT && l->last == BL_CHAT_EV_TEXT)) {
        snprintf(tag, sizeof tag, "|%d:%zu:", (int)e->kind, e->index);
        put(&l->b, tag);
    }
    putn(&l->b, e->text, e->len);
    l->last = (int)e->kind;
    return 0;
}

static void run(bl_chat_tool_style_t style, const char *s, size_t n, size_t split, log_t *out)
{
    bl_chat_tool_parser_t *p;
    out->last = -1;
    if (bl_chat_tool_parser_new(style, &p))
        return;
    bl_chat_tool_parser_feed(p, s, split, log_event, out);
    bl_chat_tool_parser_feed(p, s + split, n - split, log_event, out);
    bl_chat_tool_parser_finish(p, log_event, out);
    bl_chat_tool_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    size_t split = d[0] % n;
    const char *s = (const char *)d + 1;
    n--;
    if (split > n)
        split = n;
    for (int style = 0; style < 2; style++) {
        log_t whole = {0}, cut = {0};
        run((bl_chat_tool_style_t)style, s, n, 0, &whole);
        run((bl_chat_tool_style_t)style, s, n, split, &cut);
        if (whole.b.n != cut.b.n || (whole.b.n && memcmp(whole.b.p, cut.b.p, whole.b.n)))
            abort(); /* the events must not depend on how the text was cut */
        free(whole.b.p);
        free(cut.b.p);
    }
    sb_t b = {0};
    bl_chat_json_write(&b, s, n, &BL_CHAT_JSON_JINJA);
    static const bl_chat_json_style_t indent = {",", ": ", 4};
    bl_chat_json_write(&b, s, n, &indent);
    free(b.p);
    char *z = strndup(s, n);
    if (z) {
        const bl_chat_msg_t m[] = {{"system", "s"}, {"user", z}};
        for (int f = 0; f < BL_CHAT_N_FAMILIES; f++) {
            char *out = NULL;
            if (bl_chat_render_family_x(f, NULL, m, NULL, 2, z, true, &out, NULL) == 0)
                free(out);
        }
        free(z);
    }
    return 0;
}
