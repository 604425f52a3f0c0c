/*
 * Tokenizers: text <-> token ids for the vocabularies GGUF files carry.
 *
 * `tokenizer.ggml.model = llama` is SentencePiece-style BPE over scores with
 * byte fallback (<0xNN> tokens); `gpt2` is byte-level BPE with merges and a
 * named pre-tokenizer (tokenizer.ggml.pre: llama-bpe, qwen2, gpt-2, smollm,
 * qwen35, default), behind the same interface. A tokenizer is
 * built once from a GGUF file's tokenizer.* keys and is immutable after that.
 */
#ifndef BL_ENGINE_TOKENIZER_H
#define BL_ENGINE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ballast/engine.h>

#include "engine/gguf/gguf.h"

typedef struct bl_tok bl_tok_t;

/* Token kinds, as GGUF's tokenizer.ggml.token_type stores them. */
typedef enum {
    BL_TOKTYPE_UNDEFINED = 0,
    BL_TOKTYPE_NORMAL = 1,
    BL_TOKTYPE_UNKNOWN = 2,
    BL_TOKTYPE_CONTROL = 3,
    BL_TOKTYPE_USER_DEFINED = 4,
    BL_TOKTYPE_UNUSED = 5,
    BL_TOKTYPE_BYTE = 6,
} bl_toktype_t;

/* Build from the file's tokenizer.* metadata. err names the missing or bad key. */
int bl_tok_from_gguf(const bl_gguf_t *g, bl_tok_t **out, char *err, size_t errlen);
void bl_tok_free(bl_tok_t *t);

uint32_t bl_tok_n_vocab(const bl_tok_t *t);
bl_token_t bl_tok_bos(const bl_tok_t *t); /* -1 when none */
bl_token_t bl_tok_eos(const bl_tok_t *t);
bool bl_tok_add_bos(const bl_tok_t *t);
bool bl_tok_is_eog(const bl_tok_t *t, bl_token_t id); /* eos, eot, ... */

/* Same contract as bl_tokenize() in engine.h. */
int bl_tok_encode(const bl_tok_t *t, const char *text, size_t len, bool add_special,
                  bool parse_special, bl_token_t *out, size_t cap, size_t *n_out);
/* Same contract as bl_token_piece() in engine.h. */
int bl_tok_piece(const bl_tok_t *t, bl_token_t id, bool special, char *buf, size_t cap);

/* The piece without copying: *p points into the tokenizer (valid while it
 * lives), *n is its length (0 for control tokens unless special). */
int bl_tok_piece_ref(const bl_tok_t *t, bl_token_t id, bool special, const char **p, size_t *n);

/* The token's text as stored in the vocabulary (not unescaped), or NULL. */
const char *bl_tok_text(const bl_tok_t *t, bl_token_t id, size_t *len);
/* Id of the token whose stored text is exactly p[0..n), or -1. */
bl_token_t bl_tok_find(const bl_tok_t *t, const char *p, size_t n);
bl_token_t bl_tok_eot(const bl_tok_t *t); /* -1 when none */
bl_token_t bl_tok_unk(const bl_tok_t *t);
/* Control (or unknown) tokens print nothing unless asked for. */
bool bl_tok_is_control(const bl_tok_t *t, bl_token_t id);

/* bl_detok_push() of engine.h for a tokenizer (the bl_model_t wrapper just
 * passes the model's tokenizer): appends token id's piece (special=false) to
 * out, holding back an incomplete trailing UTF-8 sequence in d. */
int bl_tok_detok_push(bl_detok_t *d, const bl_tok_t *t, bl_token_t id, char *out, size_t cap);

#endif
