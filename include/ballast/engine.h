/*
 * libballast-engine: run a GGUF language model on the CPU.
 *
 * A bl_model_t is a loaded GGUF file (mmap'd; weights are never copied) plus
 * its tokenizer and a worker thread pool. It is immutable after loading, so
 * many contexts may share it. A bl_ctx_t is one sequence: its KV cache, its
 * tokens so far and the logits of the last position. Contexts are independent
 * so a scheduler can later decode several of them as one batch.
 *
 * Every function that can fail returns 0 or a negative BL_E* code from
 * <ballast/errors.h>. Functions that take `char *err, size_t errlen` write a
 * human-readable reason there (file, field, offset) on failure.
 *
 * Thread safety: one thread at a time per bl_ctx_t; a bl_model_t may be used
 * from many threads, but forward passes on contexts of the same model are
 * serialised internally (they share the model's thread pool).
 */
#ifndef BALLAST_ENGINE_H
#define BALLAST_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ballast/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bl_model bl_model_t;
typedef struct bl_ctx bl_ctx_t;
typedef int32_t bl_token_t;

/* ---- models ------------------------------------------------------------ */

typedef enum {
    BL_ISA_AUTO = 0,   /* best the CPU supports */
    BL_ISA_SCALAR = 1, /* the reference kernels */
    BL_ISA_AVX2 = 2,
    BL_ISA_AVX512 = 3,
} bl_isa_t;

typedef struct {
    int n_threads; /* worker threads for matmuls and attention; 0 = online cores */
    bl_isa_t isa;  /* force a kernel family (tests, benchmarks); AUTO picks from cpuid */
} bl_model_params_t;

typedef struct {
    char arch[32];          /* general.architecture, e.g. "llama" */
    char name[128];         /* general.name, may be empty */
    uint32_t n_vocab;
    uint32_t n_ctx_train;
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_ff;
    uint64_t n_params;
    uint64_t weight_bytes;  /* bytes of tensor data read per token (all weights) */
    bl_token_t bos, eos;    /* -1 when absent */
    bool add_bos;
    const char *chat_template; /* tokenizer.chat_template, or NULL; owned by the model */
    const char *file_type;  /* dominant weight type name, e.g. "Q4_0" */
    const char *isa;        /* kernel family in use, e.g. "avx512-vnni" */
} bl_model_info_t;

void bl_model_params_default(bl_model_params_t *p);
int bl_model_load(const char *path, const bl_model_params_t *p, bl_model_t **out, char *err,
                  size_t errlen);
void bl_model_free(bl_model_t *m);
const bl_model_info_t *bl_model_info(const bl_model_t *m);

/* ---- tokens ------------------------------------------------------------ */

/* Tokenize text. add_special adds BOS (etc.) as the model's metadata says;
 * parse_special turns spelled-out control tokens ("<s>") into their ids.
 * Writes at most cap tokens; *n_out is the full count (so a caller may retry
 * with a larger buffer when *n_out > cap, and gets BL_ERANGE). */
int bl_tokenize(const bl_model_t *m, const char *text, size_t len, bool add_special,
                bool parse_special, bl_token_t *tokens, size_t cap, size_t *n_out);

/* The bytes a token stands for (byte-fallback tokens give their byte;
 * control tokens give "" unless special is true). Returns the length, or a
 * negative code; at most cap bytes are written. */
int bl_token_piece(const bl_model_t *m, bl_token_t t, bool special, char *buf, size_t cap);

bool bl_token_is_eog(const bl_model_t *m, bl_token_t t); /* end of generation */

/* Streaming detokenizer: pieces go in, whole UTF-8 characters come out, so a
 * streamed chunk never ends in the middle of a character. */
typedef struct {
    char pending[8];
    size_t n_pending;
} bl_detok_t;
void bl_detok_init(bl_detok_t *d);
/* Append the text of token t to out (cap bytes); returns bytes written or a
 * negative code. Incomplete trailing UTF-8 is held back for the next call. */
int bl_detok_push(bl_detok_t *d, const bl_model_t *m, bl_token_t t, char *out, size_t cap);
/* Flush whatever is held back (invalid sequences come out as U+FFFD). */
int bl_detok_flush(bl_detok_t *d, char *out, size_t cap);

/* ---- chat templates ---------------------------------------------------- */

/* The model's tokenizer.chat_template is recognised at load by its
 * distinctive text (no Jinja is run) and rendered by built-in code for that
 * family: ChatML, Qwen 2.5, Qwen 3, SmolLM 2/3, Llama 2, Llama 3/3.1/3.2,
 * Phi-3, Gemma. A missing or unrecognised template falls back to ChatML. */

/* A function call an assistant message made (OpenAI's message.tool_calls[]). */
typedef struct {
    const char *id;        /* "call_..."; may be NULL (no family's template shows it) */
    const char *name;      /* the function's name */
    const char *arguments; /* its arguments as JSON text, an object; NULL = "{}" */
} bl_chat_tool_call_t;

typedef struct {
    const char *role;    /* "system", "user", "assistant" or "tool" */
    const char *content; /* UTF-8, NUL-terminated */
} bl_chat_msg_t;

/* What a message carries besides its text, for bl_chat_render_tools (kept
 * apart so bl_chat_msg_t stays as it was). Zero it when unused. */
typedef struct {
    const bl_chat_tool_call_t *tool_calls; /* assistant: the calls it made */
    size_t n_tool_calls;
    const char *tool_call_id; /* tool: the id of the call this answers (may be NULL) */
    const char *name;         /* tool: the function's name (may be NULL) */
} bl_chat_msg_tools_t;

/* Render msgs as the prompt text the model expects (feed it to bl_generate,
 * which adds BOS and parses the control tokens). add_generation_prompt
 * appends the opener of an assistant turn. If the last message is from the
 * assistant and add_generation_prompt is false, it is left open (no
 * end-of-turn marker, its text as given) so generation continues it exactly,
 * e.g. after a provider failed mid-answer. *out is malloc'd and
 * NUL-terminated (caller frees); *len is its length (len may be NULL).
 * BL_EINVAL for an unknown role or NULL content. */
int bl_chat_render(const bl_model_t *m, const bl_chat_msg_t *msgs, size_t n,
                   bool add_generation_prompt, char **out, size_t *len);
/* bl_chat_render with tools. extra (NULL, or n entries parallel to msgs)
 * gives the messages' tool calls; an assistant message with calls may have
 * NULL content. tools_json is a JSON array of OpenAI tool objects
 * ({"type": "function", "function": {"name", "description", "parameters"}}),
 * written into the prompt the way the family's template writes `tools`
 * (NULL: no tools; with no tools and no calls this is bl_chat_render).
 * The output matches the template byte for byte (checked against a Jinja
 * engine in tests/engine/test_chat_tools.c).
 * - Qwen 2.5 / Qwen 3: Hermes form, a "# Tools" system section listing each
 *   tool as JSON inside <tools></tools>, calls as <tool_call> JSON, results
 *   as user turns of <tool_response> blocks.
 * - Llama 3.1 / 3.2: "Environment: ipython" in the system block, the tools
 *   (JSON, indent 4) in the first user message, a call as
 *   {"name": ..., "parameters": ...}, results as "ipython" turns. The
 *   template allows one call per assistant turn; several are written as
 *   consecutive assistant turns.
 * - Families whose template has no tools (ChatML and unknown templates,
 *   SmolLM 2/3, Llama 2, Llama 3.0, Phi-3, Gemma): the Hermes text is
 *   appended to the system message (one is added when there is none),
 *   calls are appended to the assistant's text as <tool_call> blocks and
 *   each run of results becomes one user turn of <tool_response> blocks;
 *   then the family renders those plain messages as usual.
 * Arguments are written as the template writes a parsed object (Jinja's
 * tojson: ", " and ": " separators), arguments that are not JSON as it
 * writes a string. BL_EINVAL when tools_json is not a JSON array, a call
 * has no name, or (Llama 3.1/3.2 with tools) no message follows the system
 * one to carry the tool list. */
int bl_chat_render_tools(const bl_model_t *m, const bl_chat_msg_t *msgs,
                         const bl_chat_msg_tools_t *extra, size_t n, const char *tools_json,
                         bool add_generation_prompt, char **out, size_t *len);

/* How the model writes a tool call (the family's, or Hermes for the
 * fallback), which the parser below reads back. */
typedef enum {
    BL_CHAT_TOOLS_HERMES = 0, /* <tool_call>{"name": ..., "arguments": ...}</tool_call>, any
                               * number of them, anywhere in the answer */
    BL_CHAT_TOOLS_LLAMA3 = 1, /* an answer that is {"name": ..., "parameters": ...} (optionally
                               * after <|python_tag|>; several separated by ";" or newlines) */
} bl_chat_tool_style_t;
bl_chat_tool_style_t bl_chat_tool_style(const bl_model_t *m);

/* Streaming tool-call parser: generated text goes in piece by piece, events
 * come out. Text that might be the start of a call marker is held back until
 * it is known not to be, so no marker bytes leak as text; a call is reported
 * once complete (CALL_START with its name, CALL_ARGS with its arguments as
 * compact JSON, CALL_END). What looks like a call but is not valid JSON with
 * a string "name" is passed on as text. Whitespace between and after calls
 * is dropped. */
typedef enum {
    BL_CHAT_EV_TEXT = 0,   /* text: plain text for the answer's content */
    BL_CHAT_EV_CALL_START, /* text: the function's name */
    BL_CHAT_EV_CALL_ARGS,  /* text: a piece of the arguments (JSON) */
    BL_CHAT_EV_CALL_END,
} bl_chat_event_kind_t;

typedef struct {
    bl_chat_event_kind_t kind;
    size_t index;     /* calls: the call's number within the answer, from 0 */
    const char *text; /* not NUL-terminated; valid during the callback */
    size_t len;
} bl_chat_event_t;

/* Return nonzero to stop: feed/finish return that value. */
typedef int (*bl_chat_event_fn)(void *ud, const bl_chat_event_t *ev);

typedef struct bl_chat_tool_parser bl_chat_tool_parser_t;
int bl_chat_tool_parser_new(bl_chat_tool_style_t style, bl_chat_tool_parser_t **out);
int bl_chat_tool_parser_feed(bl_chat_tool_parser_t *p, const char *text, size_t len,
                             bl_chat_event_fn fn, void *ud);
/* The end of generation: whatever is held back comes out (a call left
 * unclosed at the end still counts when its JSON is complete). */
int bl_chat_tool_parser_finish(bl_chat_tool_parser_t *p, bl_chat_event_fn fn, void *ud);
/* Calls reported so far. */
size_t bl_chat_tool_parser_calls(const bl_chat_tool_parser_t *p);
void bl_chat_tool_parser_free(bl_chat_tool_parser_t *p);

/* The family in use: "chatml", "qwen2.5", "qwen3", "smollm2", "smollm3",
 * "llama2", "llama3", "llama3.1", "llama3.2", "phi3" or "gemma". */
const char *bl_chat_template_name(const bl_model_t *m);
/* False when the model has no template or it was not recognised (ChatML is
 * used then; callers should say so in their log). */
bool bl_chat_template_known(const bl_model_t *m);
/* The family's end-of-turn markers ("<|im_end|>", "<|eot_id|>", ...), for
 * use as stop strings; static storage. */
const char *const *bl_chat_stop_strings(const bl_model_t *m, size_t *n);

/* ---- contexts (sequences) ---------------------------------------------- */

typedef struct {
    uint32_t n_ctx; /* KV cache length in tokens; 0 = min(model's n_ctx_train, 4096) */
} bl_ctx_params_t;

void bl_ctx_params_default(bl_ctx_params_t *p);
int bl_ctx_new(bl_model_t *m, const bl_ctx_params_t *p, bl_ctx_t **out, char *err, size_t errlen);
void bl_ctx_free(bl_ctx_t *c);
uint32_t bl_ctx_size(const bl_ctx_t *c);

/* Append tokens to the sequence and run the forward pass over them (after
 * the last token bl_generate sampled, if it left one); on return
 * bl_ctx_logits() holds the logits of the last one. BL_ECONTEXT when they do
 * not fit, BL_EINVAL for an id outside the vocabulary (nothing is fed);
 * cancel (may be NULL) is polled between layers (BL_ECANCELED). */
int bl_ctx_feed(bl_ctx_t *c, const bl_token_t *tokens, size_t n, const atomic_bool *cancel);
/* Feed one token to each of n contexts (all of the same model) and run them
 * as one batch: every weight is read once for all of them, so decoding
 * several sequences costs little more than decoding one. On return each
 * context that ran has its token appended and bl_ctx_logits() holds the
 * logits of that token, bit for bit what bl_ctx_feed of the token alone
 * would give (whatever else is in the batch). For scheduler-driven decoding,
 * where the caller samples and feeds every token itself.
 *
 * results[i] says what happened to ctxs[i]: 0 (ran), BL_ECONTEXT (its cache
 * is full), BL_EINVAL (token outside the vocabulary), BL_ESTATE (bl_generate
 * left it a sampled token still to run: bl_ctx_feed it first) or
 * BL_ECANCELED; a context that did not run is left unchanged, and the
 * others proceed. Returns 0, or for the whole call BL_EINVAL (NULL
 * arguments, contexts of different models, or one context twice),
 * BL_ENOMEM, or BL_ECANCELED when cancel (may be NULL, polled between
 * layers) was set: contexts whose results[i] is BL_ECANCELED did not run. */
int bl_ctx_feed_batch(bl_ctx_t *const *ctxs, const bl_token_t *tokens, size_t n, int *results,
                      const atomic_bool *cancel);
/* n_vocab floats, or NULL before the first feed (or after a truncate that
 * dropped the position they belonged to). */
const float *bl_ctx_logits(const bl_ctx_t *c);
/* Tokens currently in the KV cache, for prefix reuse. */
const bl_token_t *bl_ctx_tokens(const bl_ctx_t *c, size_t *n);
/* Forget everything after the first n_keep tokens (prefix reuse). */
int bl_ctx_truncate(bl_ctx_t *c, size_t n_keep);

/* ---- embeddings -------------------------------------------------------- */

/* The embedding of text, as llama.cpp gives it with pooling MEAN and L2
 * normalisation (llama-server's /v1/embeddings): text is tokenized with BOS
 * etc. per the model's metadata (control-token spellings stay plain text),
 * run causally, and the final hidden states (after the output norm, before
 * the output projection) of all its tokens are averaged and scaled to unit
 * length. Writes n_embd floats to out (cap floats; BL_ERANGE when smaller);
 * *n_tokens (may be NULL) is the token count. The context's KV cache is the
 * scratch: the context is reset (truncated to 0) before and after, whatever
 * the outcome. BL_ECONTEXT when the text does not fit the context,
 * BL_EINVAL for NULL arguments or a text of no tokens. */
int bl_embed(bl_ctx_t *c, const char *text, size_t len, float *out, size_t cap, size_t *n_tokens);

/* ---- sampling ---------------------------------------------------------- */

typedef struct {
    float temperature;        /* 0 = greedy (argmax, ties to the lowest id) */
    int32_t top_k;            /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off */
    float repeat_penalty;     /* 1 = off */
    int32_t repeat_last_n;    /* window for the penalties; 64 like llama.cpp */
    float presence_penalty;   /* 0 = off */
    float frequency_penalty;  /* 0 = off */
    uint64_t seed;
} bl_sampling_t;

void bl_sampling_default(bl_sampling_t *s);

typedef struct bl_sampler bl_sampler_t;
int bl_sampler_new(const bl_model_t *m, const bl_sampling_t *s, bl_sampler_t **out);
void bl_sampler_free(bl_sampler_t *s);
/* Pick the next token from logits given the tokens so far (for penalties).
 * Does not modify logits. */
bl_token_t bl_sampler_sample(bl_sampler_t *s, const float *logits, const bl_token_t *history,
                             size_t n_history);

/* ---- generation -------------------------------------------------------- */

typedef enum {
    BL_FINISH_LENGTH = 0, /* max_tokens reached */
    BL_FINISH_STOP,       /* end-of-generation token or a stop string */
    BL_FINISH_CANCELED,
    BL_FINISH_ERROR,
} bl_finish_t;

/* Called with each piece of text as it becomes safe to show (whole UTF-8
 * characters, never part of a stop string). Return nonzero to stop. */
typedef int (*bl_on_text_fn)(void *ud, const char *text, size_t len);

typedef struct {
    bl_sampling_t sampling;
    int32_t max_tokens;             /* < 0: until the context is full */
    const char *const *stop;        /* stop strings (not included in the output) */
    size_t n_stop;
    bl_on_text_fn on_text;
    void *ud;
    const atomic_bool *cancel;      /* may be NULL */
    /* Structured output: when json_schema is set (json_schema_len bytes of
     * JSON Schema text), or else json_object is true (any JSON object), every
     * token is sampled among those the schema still accepts, and generation
     * ends (BL_FINISH_STOP) as soon as the value is complete. Zero = off.
     * See bl_json_schema_check for the subset. */
    const char *json_schema;
    size_t json_schema_len;
    bool json_object;
} bl_generate_params_t;

typedef struct {
    size_t n_prompt;      /* prompt tokens fed */
    size_t n_generated;   /* tokens sampled */
    bl_finish_t finish;
    double prefill_ms, decode_ms;
} bl_generate_result_t;

void bl_generate_params_default(bl_generate_params_t *p);
/* Tokenize prompt (BOS per the model's metadata when the context is empty;
 * spelled-out control tokens such as "<|im_start|>" are parsed, so rendered
 * chat templates work), feed it after what the context already holds, and
 * sample until a stop condition. The context keeps the sequence, so a
 * caller can continue it (an empty prompt generates more) or reuse its
 * prefix (bl_ctx_tokens / bl_ctx_truncate). The last token sampled is not
 * run through the model until the next feed (so it is not yet in
 * bl_ctx_tokens); an end-of-generation token is not kept. Returns
 * BL_ECONTEXT when the prompt does not fit; a cancel is not an error
 * (res->finish says BL_FINISH_CANCELED). */
int bl_generate(bl_ctx_t *c, const char *prompt, size_t prompt_len, const bl_generate_params_t *p,
                bl_generate_result_t *res);

/* Generation one token at a time, for schedulers that decode several
 * sequences as one batch (bl_ctx_feed_batch). Begin after the prompt has been
 * fed (the context has logits); each step samples a token and shows its text
 * through p->on_text (p must outlive the generator). A step returns 0 with
 * the token the caller must feed next, 1 when generation has ended (the
 * result says why), or a negative code. bl_generate is these steps with
 * bl_ctx_feed in between. */
typedef struct bl_gen bl_gen_t;
int bl_gen_begin(bl_ctx_t *c, const bl_generate_params_t *p, bl_gen_t **out);
int bl_gen_step(bl_gen_t *g, bl_token_t *next);
void bl_gen_end(bl_gen_t *g, bl_generate_result_t *res);

/* ---- structured output (JSON Schema) ------------------------------------ */

/* Whether bl_gen_begin / bl_gen_constrain would take this schema: 0, or
 * BL_EINVAL with the reason in err, e.g. "unsupported JSON Schema construct
 * 'pattern' at #/properties/zip" or "JSON Schema is not valid JSON: offset
 * 12: expected ':'" (for an HTTP 400).
 *
 * Supported: type (a name or an array of names, "nullable": true), object
 * (properties, required, additionalProperties), array (items, minItems,
 * maxItems), string (minLength, maxLength), number, integer, boolean, null,
 * enum and const of any JSON values, anyOf, oneOf, allOf of one schema,
 * $ref to "#/$defs/...", "#/definitions/..." or any "#/..." pointer
 * (recursion through an object or array is fine), true, and annotations
 * (title, description, default, examples, ...), which are ignored.
 * Rejected: pattern, format, patternProperties, if/then/else, not,
 * dependentRequired/Schemas, dependencies, prefixItems, items as an array,
 * additionalItems, contains, propertyNames, unevaluated*, multipleOf,
 * minProperties/maxProperties, uniqueItems: true, $dynamicRef,
 * $recursiveRef, content*, external $ref, a false schema, allOf of several.
 *
 * What is generated: compact JSON with at most one run of whitespace (" ",
 * or "\n" and up to 16 spaces) after '{' '[' ',' ':' and after members and
 * elements, none around the whole value; object properties in schema
 * order, required ones always and optional ones maybe, no others (a
 * schema-valued additionalProperties on an object without properties makes
 * a map); numbers of at most 16 integer, 16 fraction and 2 exponent digits,
 * with '-' only when no minimum >= 0 is given (other bounds are not
 * enforced); strings of valid UTF-8 (min/maxLength in code points, up to
 * 1024); enum/const values in compact form; oneOf as anyOf. */
int bl_json_schema_check(const char *schema, size_t len, char *err, size_t errlen);

/* Constrain the rest of a generation from its next token: the text must be
 * a JSON value the schema accepts (schema NULL: any JSON object). For tool
 * calls: the model writes freely, then a marker, then constrained
 * arguments. With end_when_complete generation ends once the value is
 * complete; otherwise the constraint is lifted then and free text goes on.
 * Replaces an earlier constraint. BL_EINVAL with err as above. */
int bl_gen_constrain(bl_gen_t *g, const char *schema, size_t len, bool end_when_complete,
                     char *err, size_t errlen);
/* Whether a constraint is in force (false once its value is complete). */
bool bl_gen_constrained(const bl_gen_t *g);

#ifdef __cplusplus
}
#endif
#endif
