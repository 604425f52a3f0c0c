/*
 * Chat templates, engine-internal side.
 *
 * We do not interpret Jinja. A model's tokenizer.chat_template is recognised
 * once at load by distinctive substrings (the way llama.cpp's
 * llm_chat_detect_template does) and mapped to a family; each family is
 * rendered by C code that reproduces what that family's real template
 * renders for plain system/user/assistant/tool messages. The renderer works
 * on the family and the messages alone, so it is testable without a model.
 *
 * Conventions shared by every family:
 * - The leading BOS a template writes ({{ bos_token }}) is left out when the
 *   tokenizer adds BOS itself (bl_generate tokenizes with add_special), and
 *   written as text otherwise, so a prompt never carries two BOS tokens.
 * - With add_generation_prompt false and an assistant message last, that
 *   message is an open turn: rendered like the template renders it but with
 *   no end-of-turn marker and its trailing text untouched, so generation
 *   continues it exactly.
 * - Families without a system role (Gemma, Llama 2) fold system text into the
 *   next user turn.
 */
#ifndef BL_ENGINE_CHAT_H
#define BL_ENGINE_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include <ballast/engine.h>

typedef enum {
    BL_CHAT_CHATML = 0, /* <|im_start|>role\n...<|im_end|>\n; also the fallback */
    BL_CHAT_QWEN25,     /* ChatML + Qwen's default system prompt */
    BL_CHAT_QWEN3,      /* ChatML + <think> handling of assistant turns */
    BL_CHAT_SMOLLM2,    /* ChatML + SmolLM's default system prompt */
    BL_CHAT_SMOLLM3,    /* ChatML with a metadata system block and /think modes */
    BL_CHAT_LLAMA2,     /* [INST] <<SYS>>...<</SYS>> ... [/INST] */
    BL_CHAT_LLAMA3,     /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    BL_CHAT_LLAMA31,    /* Llama 3 + "Cutting Knowledge Date" system block, fixed date */
    BL_CHAT_LLAMA32,    /* Llama 3 + "Cutting Knowledge Date" system block, today's date */
    BL_CHAT_PHI3,       /* <|user|>\n...<|end|>\n */
    BL_CHAT_GEMMA,      /* <start_of_turn>user\n...<end_of_turn>\n, assistant is "model" */
    BL_CHAT_N_FAMILIES,
} bl_chat_family_t;

/* What a rendering needs besides the family and the messages. */
typedef struct {
    const char *bos_text; /* the BOS token spelled out, "" when the model has none */
    const char *eos_text; /* the EOS token spelled out (Phi-3 ends a finished chat with it) */
    bool add_bos;         /* the tokenizer adds BOS itself: do not write it */
    const char *date;     /* "26 Jul 2024" style, for the Llama 3.1/3.2 system block;
                           * NULL = the family's default (3.1: 26 Jul 2024, 3.2: today) */
} bl_chat_opts_t;

/* Recognise a template; NULL or unrecognised text gives BL_CHAT_CHATML with
 * *known = false. */
bl_chat_family_t bl_chat_detect_family(const char *tmpl, bool *known);

const char *bl_chat_family_name(bl_chat_family_t f);

/* End-of-turn markers of the family, for stop strings. */
const char *const *bl_chat_family_stops(bl_chat_family_t f, size_t *n);

/* Render msgs (roles system, user, assistant, tool) into a malloc'd,
 * NUL-terminated prompt. BL_EINVAL for an unknown role or NULL content,
 * BL_ENOMEM when out of memory. */
int bl_chat_render_family(bl_chat_family_t f, const bl_chat_opts_t *o, const bl_chat_msg_t *msgs,
                          size_t n, bool add_generation_prompt, char **out, size_t *len);

/* Called once at model load: detect the family of m->info.chat_template. */
void bl_chat_detect(bl_model_t *m);

#endif
