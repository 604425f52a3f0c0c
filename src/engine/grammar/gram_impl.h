/*
 * Private to src/engine/grammar/: the compiled grammar's layout and the
 * builder the schema compiler uses to make one.
 *
 * Elements are uint32: END (0) closes an alternative, CLASS | i matches one
 * byte of class i (a 256-bit set), REF | r expands rule r. Each alternative
 * is a run of elements ending in END; rule r's alternatives start at
 * elems[alt_start[rule_alt[r] .. rule_alt[r + 1])].
 */
#ifndef BL_ENGINE_GRAMMAR_IMPL_H
#define BL_ENGINE_GRAMMAR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/grammar/grammar.h"

#define G_END 0u
#define G_CLASS 0x40000000u
#define G_REF 0x80000000u
#define G_KIND(e) ((e)&0xc0000000u)
#define G_IDX(e) ((e)&0x3fffffffu)

struct bl_grammar {
    uint32_t *elems;
    size_t n_elems;
    uint64_t (*cls)[4];
    size_t n_cls;
    uint32_t *alt_start; /* grouped by rule */
    uint32_t *rule_alt;  /* n_rules + 1 offsets into alt_start */
    uint32_t n_rules;
    uint32_t root;
};

static inline bool g_cls_has(const bl_grammar_t *g, uint32_t cls, unsigned char b)
{
    return (g->cls[cls][b >> 6] >> (b & 63)) & 1u;
}

/* ---- builder ------------------------------------------------------------- */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} gseq_t;

typedef struct {
    uint32_t rule, start;
} galt_t;

typedef struct {
    uint32_t *elems;
    size_t n_elems, cap_elems;
    uint64_t (*cls)[4];
    size_t n_cls, cap_cls;
    galt_t *alts;
    size_t n_alts, cap_alts;
    uint32_t n_rules;
    bool oom;     /* sticky: checked once by bl_gb_finish */
    bool too_big; /* past GB_MAX_ELEMS: bl_gb_finish gives BL_ERANGE */
} gb_t;

/* Bounds what one schema may cost (16 MiB of elements). */
#define GB_MAX_ELEMS (1u << 22)

uint32_t bl_gb_rule(gb_t *b);
/* Class of bytes lo..hi, or of one byte. */
uint32_t bl_gb_range(gb_t *b, unsigned lo, unsigned hi);
uint32_t bl_gb_byte(gb_t *b, unsigned c);
/* Class from a 256-bit set. */
uint32_t bl_gb_set(gb_t *b, const uint64_t set[4]);
void bl_seq_push(gb_t *b, gseq_t *s, uint32_t elem);
void bl_seq_lit(gb_t *b, gseq_t *s, const char *p, size_t n);
/* Add s as an alternative of rule; s is emptied for reuse. */
void bl_gb_alt(gb_t *b, uint32_t rule, gseq_t *s);
/* A rule matching elem repeated 0..max times (max < 0: any number). */
uint32_t bl_gb_repeat(gb_t *b, uint32_t elem, long max);
/* Move what was built into a grammar rooted at root; frees b. */
int bl_gb_finish(gb_t *b, uint32_t root, bl_grammar_t **out);
void bl_gb_free(gb_t *b);
void bl_seq_free(gseq_t *s);

#endif
