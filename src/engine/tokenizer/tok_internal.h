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

struct bl_tok {
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
