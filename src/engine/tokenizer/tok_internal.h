/*
 * Private to src/engine/tokenizer/: the vocabulary tables a bl_tok_t holds and
 * the helpers its files share. Nothing outside this folder includes it.
 */
#ifndef BL_ENGINE_TOK_INTERNAL_H
#define BL_ENGINE_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tokenizer/tokenizer.h"

/* Token attributes, a bit set like llama.cpp's: the GGUF token type becomes
 * one bit, and load-time fix-ups add more (e.g. an end-of-turn token stored as
 * NORMAL gets CONTROL too). LSTRIP/RSTRIP eat whitespace beside a special
 * token when the text is partitioned. */
enum {
    TOK_ATTR_UNDEFINED = 1 << 0,
    TOK_ATTR_UNKNOWN = 1 << 1,
    TOK_ATTR_UNUSED = 1 << 2,
    TOK_ATTR_NORMAL = 1 << 3,
    TOK_ATTR_CONTROL = 1 << 4,
    TOK_ATTR_USER_DEFINED = 1 << 5,
    TOK_ATTR_BYTE = 1 << 6,
    TOK_ATTR_LSTRIP = 1 << 7,
    TOK_ATTR_RSTRIP = 1 << 8,
};

/* tokenizer.ggml.model */
typedef enum {
    BL_TOK_KIND_SPM = 0, /* "llama": SentencePiece-style, scores + byte fallback */
    BL_TOK_KIND_BPE,     /* "gpt2": byte-level BPE, merges + a pre-tokenizer */
} bl_tok_kind_t;

/* tokenizer.ggml.pre for byte-level BPE: which word-splitting pattern(s) run
 * before the merges (llama.cpp's llama_vocab_pre_type for these names). */
typedef enum {
    BL_PRE_DEFAULT = 0, /* "default" or missing: llama.cpp's four-pattern default */
    BL_PRE_GPT2,        /* "gpt-2", "phi-2", ...: 's|'t|...| ?\p{L}+| ?\p{N}+|... */
    BL_PRE_LLAMA3,      /* "llama-bpe", "llama3", ...: \p{N}{1,3}, (?i:'s|...) */
    BL_PRE_QWEN2,       /* "qwen2", ...: as llama3 but one digit per word */
    BL_PRE_SMOLLM,      /* "smollm": every digit alone, then gpt-2 */
    BL_PRE_QWEN35,      /* "qwen35": as qwen2, marks count as letters */
    BL_PRE_FALCON,      /* "falcon": punctuation runs, gpt-2, digit triples */
} bl_tok_pre_t;

/* A BPE merge "a b" of rank r, keyed by the pair of token ids; result is the
 * id of "ab". Open addressing, key 0 = empty. */
typedef struct {
    uint64_t key; /* (a + 1) << 32 | b */
    uint32_t rank;
    int32_t result;
} bl_tok_merge_t;

struct bl_tok {
    bl_tok_kind_t kind;
    bl_tok_pre_t pre;
    bool ignore_merges; /* a whole pre-token word that is a token is kept as is */
    bl_tok_merge_t *merges;
    uint32_t merge_mask;
    int32_t byte_sym[256]; /* BPE: token of the one-character text a byte maps to */

    uint32_t n_vocab;
    /* token text, all in one blob: token i is text + text_off[i], text_len[i] bytes */
    char *text;
    uint32_t *text_off;
    uint32_t *text_len;
    /* the piece a token decodes to with special=true ("▁" -> " ", byte tokens
     * -> their byte); same blob layout */
    char *piece;
    uint32_t *piece_off;
    uint32_t *piece_len;
    float *score;
    uint8_t *type;  /* bl_toktype_t as stored */
    uint16_t *attr; /* TOK_ATTR_* */
    uint8_t *eog;   /* 1 when the token ends generation */

    /* text -> id: open addressing, slots hold id + 1 (0 = empty) */
    uint32_t *hash;
    uint32_t hash_mask;

    int32_t byte_tok[256]; /* <0xNN> token of each byte, or -1 */

    /* control / user-defined / unknown tokens, longest text first, for
     * splitting special tokens out of the text before the SPM merge */
    int32_t *special;
    uint32_t n_special;

    bl_token_t bos, eos, eot, eom, unk, pad, sep;
    bool add_bos, add_eos, add_space_prefix;
    uint32_t max_token_len;
};

/* A piece of the input after the special-token partition. */
typedef struct {
    int32_t token;   /* >= 0: a special token; -1: plain text */
    size_t off, len; /* plain text: a range of the input */
} bl_tok_frag_t;

typedef struct {
    bl_tok_frag_t *v;
    size_t n, cap;
} bl_tok_frags_t;

/* Split text around special tokens (partition.c); *out is the caller's to free(out->v). */
int bl_tok_partition(const bl_tok_t *t, const char *text, size_t len, bool parse_special,
                     bl_tok_frags_t *out);

/* bl_tok_encode for BPE vocabularies (bpe.c). */
int bl_tok_bpe_encode(const bl_tok_t *t, const char *text, size_t len, bool add_special,
                      bool parse_special, bl_token_t *out, size_t cap, size_t *n_out);

/* BPE loading (bpe_load.c): the pre-tokenizer from tokenizer.ggml.pre (and
 * the add_bos / ignore_merges defaults that go with it), the merges table
 * and the byte -> token map; err names the bad key or value. */
int bl_tok_bpe_load(bl_tok_t *t, const bl_gguf_t *g, char *err, size_t errlen);

/* The merge of tokens a and b, or NULL (bpe_load.c). */
const bl_tok_merge_t *bl_tok_merge_find(const bl_tok_t *t, int32_t a, int32_t b);

/* A byte-level token's stored text as the bytes it stands for; dst needs n
 * bytes (bpe_load.c). Returns the length. */
size_t bl_tok_bpe_decode(const char *src, size_t n, char *dst);

/* Word boundaries of text[0..len) for pre-tokenizer pre (pretok.c): writes
 * the byte offset where each word ends to ends[] (room for len entries) and
 * the count to *n_words. */
int bl_tok_pretokenize(bl_tok_pre_t pre, const char *text, size_t len, uint32_t *ends,
                       size_t *n_words);

/* Id of the token whose text is exactly p[0..n), or -1. */
int32_t bl_tok_lookup(const bl_tok_t *t, const char *p, size_t n);

/* Bytes in the UTF-8 sequence that starts with this lead byte (1 for bytes
 * that cannot start one), as llama.cpp's unicode_len_utf8. */
static inline size_t bl_tok_utf8_len(unsigned char c)
{
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

#endif
