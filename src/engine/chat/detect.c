/*
 * Recognising a chat template by the text that only its family contains.
 * Order matters: ChatML variants are told apart before plain ChatML, and
 * the Llama 3 system preamble before plain Llama 3.
 */
#include <string.h>

#include "engine/chat/chat.h"
#include "engine/model.h"

static bool has(const char *t, const char *s)
{
    return strstr(t, s) != NULL;
}

bl_chat_family_t bl_chat_detect_family(const char *t, bool *known)
{
    *known = true;
    if (!t || !*t) {
        *known = false;
        return BL_CHAT_CHATML;
    }
    if (has(t, "<|im_start|>")) {
        /* Phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) reuse the
         * marker but are not ChatML. */
        if (has(t, "<|im_sep|>") || has(t, "<end_of_utterance>")) {
            *known = false;
            return BL_CHAT_CHATML;
        }
        if (has(t, "Reasoning Mode") && has(t, "/no_think"))
            return BL_CHAT_SMOLLM3;
        if (has(t, "named SmolLM"))
            return BL_CHAT_SMOLLM2;
        if (has(t, "<think>") && has(t, "</think>"))
            return BL_CHAT_QWEN3;
        if (has(t, "You are Qwen, created by Alibaba Cloud"))
            return BL_CHAT_QWEN25;
        return BL_CHAT_CHATML;
    }
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) {
        if (has(t, "Cutting Knowledge Date"))
            return has(t, "strftime_now") ? BL_CHAT_LLAMA32 : BL_CHAT_LLAMA31;
        return BL_CHAT_LLAMA3;
    }
    if (has(t, "<|assistant|>") && has(t, "<|end|>"))
        return BL_CHAT_PHI3;
    if (has(t, "<start_of_turn>"))
        return BL_CHAT_GEMMA;
    /* Mistral's [INST] templates have no <<SYS>> block; not a family of ours. */
    if (has(t, "[INST]") && has(t, "<<SYS>>"))
        return BL_CHAT_LLAMA2;
    *known = false;
    return BL_CHAT_CHATML;
}

const char *bl_chat_family_name(bl_chat_family_t f)
{
    static const char *const names[BL_CHAT_N_FAMILIES] = {
        [BL_CHAT_CHATML] = "chatml",    [BL_CHAT_QWEN25] = "qwen2.5",
        [BL_CHAT_QWEN3] = "qwen3",      [BL_CHAT_SMOLLM2] = "smollm2",
        [BL_CHAT_SMOLLM3] = "smollm3",  [BL_CHAT_LLAMA2] = "llama2",
        [BL_CHAT_LLAMA3] = "llama3",    [BL_CHAT_LLAMA31] = "llama3.1",
        [BL_CHAT_LLAMA32] = "llama3.2", [BL_CHAT_PHI3] = "phi3",
        [BL_CHAT_GEMMA] = "gemma",
    };
    return (unsigned)f < BL_CHAT_N_FAMILIES ? names[f] : "chatml";
}

const char *const *bl_chat_family_stops(bl_chat_family_t f, size_t *n)
{
    static const char *const chatml[] = {"<|im_end|>"};
    static const char *const llama2[] = {"</s>"};
    static const char *const llama3[] = {"<|eot_id|>", "<|eom_id|>"};
    static const char *const phi3[] = {"<|end|>", "<|endoftext|>"};
    static const char *const gemma[] = {"<end_of_turn>"};
    switch (f) {
    case BL_CHAT_LLAMA2:
        *n = 1;
        return llama2;
    case BL_CHAT_LLAMA3:
    case BL_CHAT_LLAMA31:
    case BL_CHAT_LLAMA32:
        *n = 2;
        return llama3;
    case BL_CHAT_PHI3:
        *n = 2;
        return phi3;
    case BL_CHAT_GEMMA:
        *n = 1;
        return gemma;
    default:
        *n = 1;
        return chatml;
    }
}

void bl_chat_detect(bl_model_t *m)
{
    bool known;
    m->chat_family = bl_chat_detect_family(m->info.chat_template, &known);
    m->chat_known = known;
}
