/*
 * Chat templates, engine-internal side.
 *
 * We do not interpret Jinja. A model's tokenizer.chat_template is recognised
 * once at load by distinctive substrings (the way llama.cpp's
 * llm_chat_detect_template does) and mapped to a family; each family is
 * rendered by C code that reproduces what that family's real template
 * renders for system/user/assistant/tool messages, tool definitions and
 * tool calls (tools.c; json.c re-writes JSON the way Jinja's tojson does).
 * The renderer works on the family and the messages alone, so it is
 * testable without a model. toolcall.c reads tool calls back out of what
 * the model generates.
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

#include "engine/chat/text.h"

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
/* The same with the messages' tool calls (extra: NULL or n entries) and
 * tool definitions (a JSON array, or NULL); see bl_chat_render_tools. */
int bl_chat_render_family_x(bl_chat_family_t f, const bl_chat_opts_t *o, const bl_chat_msg_t *msgs,
                            const bl_chat_msg_tools_t *extra, size_t n, const char *tools_json,
                            bool add_generation_prompt, char **out, size_t *len);

/* Families whose own template renders tools (Qwen 2.5/3 in Hermes form,
 * Llama 3.1/3.2 in their JSON form); the others get the Hermes fallback of
 * tools.c. */
bool bl_chat_family_has_tools(bl_chat_family_t f);

/* The tool-call syntax the family's models answer in. */
bl_chat_tool_style_t bl_chat_family_tool_style(bl_chat_family_t f);

/* ---- tools.c: tool definitions and calls as text -------------------------- */

/* Hermes' "# Tools ... </tool_call>" block (Qwen 3's system text), for the
 * tool definitions items (each one JSON value). */
void bl_chat_put_hermes_tools(sb_t *b, const span_t *items, size_t n);
/* One call as Hermes writes it: <tool_call>\n{"name": "...", "arguments": ...}\n</tool_call>.
 * raw_string_args: arguments that are not JSON are written as they are
 * (Qwen 3's template for string arguments) rather than as a JSON string. */
void bl_chat_put_hermes_call(sb_t *b, const bl_chat_tool_call_t *tc, bool raw_string_args);
/* Jinja's `arguments | tojson` for arguments given as JSON text: the parsed
 * value re-written, or (not JSON) the text as a JSON string. */
void bl_chat_put_args_tojson(sb_t *b, const char *args);
/* For families without tool support in their template: a copy of msgs with
 * the tool definitions added to the system message (one is inserted when
 * there is none), each assistant's calls appended to its content as Hermes
 * <tool_call> blocks, and each run of tool results made one user message of
 * <tool_response> blocks. The copy points into *strings: free each of
 * them, then *strings and *out. */
int bl_chat_hermes_fallback(const bl_chat_msg_t *msgs, const bl_chat_msg_tools_t *extra, size_t n,
                            const span_t *items, size_t n_items, bl_chat_msg_t **out,
                            size_t *n_out, char ***strings, size_t *n_strings);

/* ---- json.c ------------------------------------------------------------- */

typedef struct {
    const char *item_sep, *key_sep;
    int indent; /* > 0: one member per line, indented this much a level ("," and ": ") */
} bl_chat_json_style_t;

extern const bl_chat_json_style_t BL_CHAT_JSON_JINJA;   /* ", " and ": " (Jinja's tojson) */
extern const bl_chat_json_style_t BL_CHAT_JSON_COMPACT; /* "," and ":" (OpenAI's arguments) */

/* Check that s is one JSON value (whitespace around it allowed) and, when
 * out is not NULL, append it re-written in style st. Nesting deeper than 128
 * is refused. */
bool bl_chat_json_write(sb_t *out, const char *s, size_t n, const bl_chat_json_style_t *st);
/* Append s as a JSON string (Jinja's tojson of a string). */
void bl_chat_json_put_string(sb_t *out, const char *s, size_t n);
/* The members of a JSON array: *items (malloc'd) spans its values.
 * BL_EINVAL when s is not one JSON array. */
int bl_chat_json_items(const char *s, size_t n, span_t **items, size_t *n_items);
/* s is one JSON object {"name": "...", "arguments" or "parameters": ...}
 * (other keys ignored): the name decoded into *name, the arguments written
 * compactly into *args ("{}" when absent; a string holding JSON is taken as
 * that JSON). False when s is anything else. */
bool bl_chat_json_tool_call(const char *s, size_t n, sb_t *name, sb_t *args);

/* Called once at model load: detect the family of m->info.chat_template. */
void bl_chat_detect(bl_model_t *m);

#endif
