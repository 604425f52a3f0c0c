/*
 * The vocabulary as a byte trie, and the logit mask that walks it.
 *
 * Nodes are stored in depth-first preorder with, for each, the index just
 * past its subtree: the walk is one pass over an array, and a prefix the
 * grammar rejects skips its whole subtree with one assignment. Tokens with
 * the same piece share a node; a node's tokens are a run of ids in `toks`.
 * Built from the pieces sorted bytewise, so preorder falls out of the order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/grammar/gram_impl.h"
#include "engine/grammar/match_impl.h"

typedef struct {
    uint32_t skip;      /* first node after this subtree */
    uint32_t tok_begin; /* toks[tok_begin .. + tok_count) end exactly here */
    uint16_t tok_count;
    uint16_t depth; /* 1 = first byte of a piece */
    uint8_t byte;
} vnode_t;

struct bl_vtrie {
    uint32_t n_vocab;
    char *blob; /* every piece */
    uint32_t *off, *len;
    uint8_t *eog;
    bl_token_t *eog_ids;
    size_t n_eog;
    vnode_t *nodes;
    size_t n_nodes;
    bl_token_t *toks;
    uint32_t max_depth;
};

#define MAX_PIECE 65535u
#define MEMO_STATES 8192u /* ~8 MiB of transitions before the memo restarts */

static int cmp_piece(const void *a, const void *b, void *ctx)
{
    const bl_vtrie_t *t = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t lx = t->len[x], ly = t->len[y];
    int c = memcmp(t->blob + t->off[x], t->blob + t->off[y], lx < ly ? lx : ly);
    if (c)
        return c;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

void bl_vtrie_free(bl_vtrie_t *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->eog);
    free(t->eog_ids);
    free(t->nodes);
    free(t->toks);
    free(t);
}

static int build_nodes(bl_vtrie_t *t, const uint32_t *sorted, size_t n)
{
    size_t cap = 1024;
    uint32_t *open = malloc(((size_t)t->max_depth + 1) * sizeof *open);
    t->nodes = malloc(cap * sizeof *t->nodes);
    if (!open || !t->nodes) {
        free(open);
        return BL_ENOMEM;
    }
    size_t n_open = 0;
    const char *prev = NULL;
    uint32_t prev_len = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t id = sorted[k];
        const char *cur = t->blob + t->off[id];
        uint32_t cl = t->len[id];
        uint32_t l = 0;
        while (l < cl && l < prev_len && cur[l] == prev[l])
            l++;
        while (n_open > l)
            t->nodes[open[--n_open]].skip = (uint32_t)t->n_nodes;
        for (uint32_t d = l; d < cl; d++) {
            if (t->n_nodes == cap) {
                vnode_t *nn = realloc(t->nodes, cap * 2 * sizeof *nn);
                if (!nn) {
                    free(open);
                    return BL_ENOMEM;
                }
                t->nodes = nn;
                cap *= 2;
            }
            t->nodes[t->n_nodes] = (vnode_t){0, 0, 0, (uint16_t)(d + 1), (uint8_t)cur[d]};
            open[n_open++] = (uint32_t)t->n_nodes++;
        }
        vnode_t *nd = &t->nodes[open[cl - 1]];
        if (nd->tok_count == 0)
            nd->tok_begin = (uint32_t)k;
        if (nd->tok_count < UINT16_MAX)
            nd->tok_count++;
        t->toks[k] = (bl_token_t)id;
        prev = cur;
        prev_len = cl;
    }
    while (n_open > 0)
        t->nodes[open[--n_open]].skip = (uint32_t)t->n_nodes;
    free(open);
    return 0;
}

int bl_vtrie_new(uint32_t n_vocab, const char *const *piece, const uint32_t *len,
                 const uint8_t *eog, bl_vtrie_t **out)
{
    if (!out)
        return BL_EINVAL;
    *out = NULL;
    if (n_vocab == 0 || n_vocab > INT32_MAX || !piece || !len)
        return BL_EINVAL;
    int rc = BL_ENOMEM;
    uint32_t *sorted = NULL;
    bl_vtrie_t *t = calloc(1, sizeof *t);
    if (!t)
        return BL_ENOMEM;
    t->n_vocab = n_vocab;
    t->off = malloc(n_vocab * sizeof *t->off);
    t->len = calloc(n_vocab, sizeof *t->len);
    t->eog = calloc(n_vocab, 1);
    if (!t->off || !t->len || !t->eog)
        goto done;
    size_t total = 0, n_eog = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (eog && eog[i]) {
            t->eog[i] = 1;
            n_eog++;
            continue; /* ends generation, never text */
        }
        if (len[i] > MAX_PIECE || (len[i] && !piece[i]))
            continue;
        total += len[i];
    }
    t->blob = malloc(total ? total : 1);
    t->eog_ids = malloc((n_eog ? n_eog : 1) * sizeof *t->eog_ids);
    sorted = malloc(n_vocab * sizeof *sorted);
    t->toks = malloc(n_vocab * sizeof *t->toks);
    if (!t->blob || !t->eog_ids || !sorted || !t->toks)
        goto done;
    size_t at = 0, n_sorted = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        t->off[i] = (uint32_t)at;
        if (t->eog[i]) {
            t->eog_ids[t->n_eog++] = (bl_token_t)i;
            continue;
        }
        if (len[i] == 0 || len[i] > MAX_PIECE || !piece[i])
            continue;
        memcpy(t->blob + at, piece[i], len[i]);
        t->len[i] = len[i];
        at += len[i];
        if (len[i] > t->max_depth)
            t->max_depth = len[i];
        sorted[n_sorted++] = i;
    }
    if (total > UINT32_MAX) {
        rc = BL_ERANGE;
        goto done;
    }
    qsort_r(sorted, n_sorted, sizeof *sorted, cmp_piece, t);
    if ((rc = build_nodes(t, sorted, n_sorted)) < 0)
        goto done;
    *out = t;
    t = NULL;
    rc = 0;
done:
    free(sorted);
    bl_vtrie_free(t);
    return rc;
}

uint32_t bl_vtrie_n_vocab(const bl_vtrie_t *t)
{
    return t ? t->n_vocab : 0;
}

size_t bl_vtrie_n_nodes(const bl_vtrie_t *t)
{
    return t ? t->n_nodes : 0;
}

int bl_vtrie_piece(const bl_vtrie_t *t, bl_token_t id, const char **p, size_t *n)
{
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
        return BL_EINVAL;
    *p = t->blob + t->off[id];
    *n = t->len[id];
    return 0;
}

bool bl_vtrie_is_eog(const bl_vtrie_t *t, bl_token_t id)
{
    return t && id >= 0 && (uint32_t)id < t->n_vocab && t->eog[id];
}

int bl_gmatch_mask(bl_gmatch_t *m, const bl_vtrie_t *t, float *logits, size_t n_logits)
{
    if (!m || !t || (n_logits && !logits))
        return BL_EINVAL;
    int rc = bl_gmatch_trim(m, MEMO_STATES);
    if (rc < 0)
        return rc;
    size_t words = (t->n_vocab + 63) / 64;
    if (m->cap_walk < (size_t)t->max_depth + 1) {
        uint32_t *w = realloc(m->walk, ((size_t)t->max_depth + 1) * sizeof *w);
        if (!w)
            return BL_ENOMEM;
        m->walk = w;
        m->cap_walk = (size_t)t->max_depth + 1;
    }
    if (m->cap_allowed < words) {
        uint64_t *a = realloc(m->allowed, words * sizeof *a);
        if (!a)
            return BL_ENOMEM;
        m->allowed = a;
        m->cap_allowed = words;
    }
    uint64_t *allowed = m->allowed;
    memset(allowed, 0, words * sizeof *allowed);
    uint32_t *walk = m->walk;
    walk[0] = m->cur;
    const vnode_t *nodes = t->nodes;
    for (size_t i = 0; i < t->n_nodes;) {
        const vnode_t *nd = &nodes[i];
        int32_t s = bl_gmatch_next(m, walk[nd->depth - 1], nd->byte);
        if (s == 0) {
            i = nd->skip;
            continue;
        }
        walk[nd->depth] = (uint32_t)s;
        for (uint32_t k = nd->tok_begin; k < nd->tok_begin + nd->tok_count; k++)
            allowed[t->toks[k] >> 6] |= 1ull << (t->toks[k] & 63);
        i++;
    }
    if (bl_gmatch_complete(m))
        for (size_t k = 0; k < t->n_eog; k++)
            allowed[t->eog_ids[k] >> 6] |= 1ull << (t->eog_ids[k] & 63);
    int n_ok = 0;
    for (size_t i = 0; i < n_logits; i++) {
        if (i < t->n_vocab && ((allowed[i >> 6] >> (i & 63)) & 1))
            n_ok++;
        else
            logits[i] = -INFINITY;
    }
    return n_ok;
}
