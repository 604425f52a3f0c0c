/*
 * Private to src/engine/tokenizer/: the little Unicode the byte-level BPE
 * tokenizer needs. Codepoint classes for the pre-tokenizer patterns (\p{L},
 * \p{N}, \p{M}, \p{P}, \s) from a generated range table, lenient UTF-8
 * decoding, and GPT-2's bytes_to_unicode mapping between raw bytes and the
 * printable characters byte-level vocabularies store.
 */
#ifndef BL_ENGINE_TOK_UNICODE_H
#define BL_ENGINE_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BL_UCLASS_OTHER = 0, /* symbols, controls, unassigned, invalid UTF-8 */
    BL_UCLASS_LETTER,    /* L*: Lu Ll Lt Lm Lo */
    BL_UCLASS_NUMBER,    /* N*: Nd Nl No */
    BL_UCLASS_MARK,      /* M*: Mn Mc Me */
    BL_UCLASS_PUNCT,     /* P*: Pc Pd Ps Pe Pi Pf Po */
    BL_UCLASS_SPACE,     /* White_Space */
} bl_uclass_t;

typedef struct {
    uint32_t lo, hi; /* inclusive */
    uint8_t cls;
} bl_urange_t;

extern const bl_urange_t bl_unicode_ranges[];
extern const unsigned bl_unicode_n_ranges;

bl_uclass_t bl_unicode_class(uint32_t cp);

/* Decode one codepoint at p[0..n) (n > 0) into *cp; returns its length. A
 * byte that does not start a well-formed sequence (bad lead, missing
 * continuation, cut off) is one unit on its own with *cp = BL_UNICODE_BAD. */
#define BL_UNICODE_BAD 0xFFFFFFFFu
size_t bl_unicode_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* GPT-2 bytes_to_unicode: the codepoint byte b is written as in the vocabulary. */
uint32_t bl_unicode_byte_cpt(uint8_t b);
/* The inverse: the byte for codepoint cp, or -1 when cp is not one of the 256. */
int bl_unicode_cpt_byte(uint32_t cp);
/* UTF-8 encode cp (<= 0x10FFFF) into out (4 bytes); returns the length. */
size_t bl_unicode_encode(uint32_t cp, char *out);

#endif
