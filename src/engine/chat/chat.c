/*
 * The public chat-template calls: the family detected at load plus the
 * model's own BOS/EOS spellings, handed to the family renderer.
 */
#include <string.h>

#include "engine/chat/chat.h"
#include "engine/model.h"

/* The text of a special token, "" when absent or too long to be one. */
static void token_text(const bl_model_t *m, bl_token_t t, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (t < 0)
        return;
    int k = bl_token_piece(m, t, true, buf, cap - 1);
    buf[k > 0 && (size_t)k < cap ? k : 0] = '\0';
}

int bl_chat_render(const bl_model_t *m, const bl_chat_msg_t *msgs, size_t n,
                   bool add_generation_prompt, char **out, size_t *len)
{
    return bl_chat_render_tools(m, msgs, NULL, n, NULL, add_generation_prompt, out, len);
}

bl_chat_tool_style_t bl_chat_tool_style(const bl_model_t *m)
{
    return bl_chat_family_tool_style(m ? m->chat_family : BL_CHAT_CHATML);
}

int bl_chat_render_tools(const bl_model_t *m, const bl_chat_msg_t *msgs,
                         const bl_chat_msg_tools_t *extra, size_t n, const char *tools_json,
                         bool add_generation_prompt, char **out, size_t *len)
{
    if (!m || !out)
        return BL_EINVAL;
    char bos[64], eos[64];
    token_text(m, m->info.bos, bos, sizeof bos);
    token_text(m, m->info.eos, eos, sizeof eos);
    bl_chat_opts_t o = {
        .bos_text = bos,
        .eos_text = eos,
        .add_bos = m->info.add_bos,
        .date = NULL,
    };
    return bl_chat_render_family_x(m->chat_family, &o, msgs, extra, n, tools_json,
                                   add_generation_prompt, out, len);
}

const char *bl_chat_template_name(const bl_model_t *m)
{
    return bl_chat_family_name(m ? m->chat_family : BL_CHAT_CHATML);
}

bool bl_chat_template_known(const bl_model_t *m)
{
    return m && m->chat_known;
}

const char *const *bl_chat_stop_strings(const bl_model_t *m, size_t *n)
{
    return bl_chat_family_stops(m ? m->chat_family : BL_CHAT_CHATML, n);
}
