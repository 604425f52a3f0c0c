/*
 * Private to src/engine/grammar/: the matcher's memo tables, shared by
 * match.c (which fills them) and vtrie.c (whose trie walk reads them).
 */
#ifndef BL_ENGINE_GRAMMAR_MATCH_IMPL_H
#define BL_ENGINE_GRAMMAR_MATCH_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/grammar/grammar.h"

typedef struct {
    uint32_t off, len; /* serialised stacks in arena */
    uint32_t hash;
    bool complete; /* holds an empty stack: a whole value was read */
    bool live;     /* holds a non-empty stack: more bytes may come */
} mstate_t;

struct bl_gmatch {
    const bl_grammar_t *g;
    mstate_t *st; /* id 0: the dead state */
    uint32_t n_st;
    size_t cap_st;
    int32_t *trans; /* [id][byte]: next id, -1 not computed yet */
    size_t cap_tr;
    uint32_t *arena;
    size_t n_arena, cap_arena;
    uint32_t *ht; /* state id + 1, open addressing */
    uint32_t ht_mask;
    uint32_t start, cur;
    /* scratch for computing a transition */
    uint32_t *out; /* stacks: len, positions */
    size_t n_out, cap_out;
    uint32_t *stk; /* offsets of the stacks in out */
    size_t n_stk, cap_stk;
    uint32_t *ser;
    size_t n_ser, cap_ser;
    /* scratch for the mask */
    uint32_t *walk; /* state per trie depth */
    size_t cap_walk;
    uint64_t *allowed; /* bitmap over the vocabulary */
    size_t cap_allowed;
};

/* Compute and memoise the transition (id, byte). */
int32_t bl_gmatch_step_slow(bl_gmatch_t *m, uint32_t id, unsigned char byte);
/* Drop the memo when it holds more than max_states (keeps the current state). */
int bl_gmatch_trim(bl_gmatch_t *m, uint32_t max_states);

static inline int32_t bl_gmatch_next(bl_gmatch_t *m, uint32_t id, unsigned char byte)
{
    int32_t t = m->trans[(size_t)id * 256 + byte];
    return t >= 0 ? t : bl_gmatch_step_slow(m, id, byte);
}

#endif
