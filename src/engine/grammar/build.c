/*
 * The grammar builder: rules, byte classes and alternatives appended in any
 * order, grouped by rule at the end. Allocation failures are sticky (b->oom)
 * so the compiler can build without checking every call.
 */
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/grammar/gram_impl.h"

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q)
        return false;
    *p = q;
    *cap = nc;
    return true;
}

uint32_t bl_gb_rule(gb_t *b)
{
    return b->n_rules++;
}

uint32_t bl_gb_set(gb_t *b, const uint64_t set[4])
{
    for (size_t i = 0; i < b->n_cls; i++)
        if (!memcmp(b->cls[i], set, sizeof b->cls[i]))
            return G_CLASS | (uint32_t)i;
    if (!grow((void **)&b->cls, &b->cap_cls, b->n_cls + 1, sizeof *b->cls)) {
        b->oom = true;
        return G_CLASS;
    }
    memcpy(b->cls[b->n_cls], set, sizeof b->cls[0]);
    return G_CLASS | (uint32_t)b->n_cls++;
}

uint32_t bl_gb_range(gb_t *b, unsigned lo, unsigned hi)
{
    uint64_t set[4] = {0};
    for (unsigned c = lo; c <= hi && c < 256; c++)
        set[c >> 6] |= 1ull << (c & 63);
    return bl_gb_set(b, set);
}

uint32_t bl_gb_byte(gb_t *b, unsigned c)
{
    return bl_gb_range(b, c, c);
}

void bl_seq_push(gb_t *b, gseq_t *s, uint32_t elem)
{
    if (!grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v)) {
        b->oom = true;
        return;
    }
    s->v[s->n++] = elem;
}

void bl_seq_lit(gb_t *b, gseq_t *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bl_seq_push(b, s, bl_gb_byte(b, (unsigned char)p[i]));
}

void bl_seq_free(gseq_t *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

void bl_gb_alt(gb_t *b, uint32_t rule, gseq_t *s)
{
    if (b->too_big || b->n_elems + s->n + 1 > GB_MAX_ELEMS) {
        b->too_big = true;
        s->n = 0;
        return;
    }
    if (!grow((void **)&b->elems, &b->cap_elems, b->n_elems + s->n + 1, sizeof *b->elems) ||
        !grow((void **)&b->alts, &b->cap_alts, b->n_alts + 1, sizeof *b->alts)) {
        b->oom = true;
        s->n = 0;
        return;
    }
    b->alts[b->n_alts++] = (galt_t){rule, (uint32_t)b->n_elems};
    if (s->n)
        memcpy(b->elems + b->n_elems, s->v, s->n * sizeof *s->v);
    b->n_elems += s->n;
    b->elems[b->n_elems++] = G_END;
    s->n = 0;
}

uint32_t bl_gb_repeat(gb_t *b, uint32_t elem, long max)
{
    gseq_t s = {0};
    uint32_t r = bl_gb_rule(b);
    if (max < 0) { /* R ::= "" | elem R */
        bl_gb_alt(b, r, &s);
        bl_seq_push(b, &s, elem);
        bl_seq_push(b, &s, G_REF | r);
        bl_gb_alt(b, r, &s);
    } else { /* R_k ::= "" | elem R_(k-1), R_0 ::= "" */
        bl_gb_alt(b, r, &s);
        uint32_t prev = r;
        for (long k = 1; k <= max; k++) {
            r = bl_gb_rule(b);
            bl_gb_alt(b, r, &s);
            bl_seq_push(b, &s, elem);
            bl_seq_push(b, &s, G_REF | prev);
            bl_gb_alt(b, r, &s);
            prev = r;
        }
    }
    bl_seq_free(&s);
    return r;
}

void bl_gb_free(gb_t *b)
{
    free(b->elems);
    free(b->cls);
    free(b->alts);
    memset(b, 0, sizeof *b);
}

int bl_gb_finish(gb_t *b, uint32_t root, bl_grammar_t **out)
{
    *out = NULL;
    bl_grammar_t *g = NULL;
    int rc = b->too_big ? BL_ERANGE : BL_ENOMEM;
    if (b->oom || b->too_big || b->n_rules == 0 || root >= b->n_rules)
        goto done;
    g = calloc(1, sizeof *g);
    if (!g)
        goto done;
    g->rule_alt = calloc((size_t)b->n_rules + 1, sizeof *g->rule_alt);
    g->alt_start = malloc((b->n_alts ? b->n_alts : 1) * sizeof *g->alt_start);
    if (!g->rule_alt || !g->alt_start)
        goto done;
    /* counting sort of the alternatives by rule, stable: an alternative
     * added first is tried first (only matters for reading dumps) */
    for (size_t i = 0; i < b->n_alts; i++)
        g->rule_alt[b->alts[i].rule + 1]++;
    for (uint32_t r = 0; r < b->n_rules; r++)
        g->rule_alt[r + 1] += g->rule_alt[r];
    uint32_t *fill = calloc(b->n_rules, sizeof *fill);
    if (!fill)
        goto done;
    for (size_t i = 0; i < b->n_alts; i++) {
        uint32_t r = b->alts[i].rule;
        g->alt_start[g->rule_alt[r] + fill[r]++] = b->alts[i].start;
    }
    free(fill);
    g->elems = b->elems;
    g->n_elems = b->n_elems;
    g->cls = b->cls;
    g->n_cls = b->n_cls;
    g->n_rules = b->n_rules;
    g->root = root;
    b->elems = NULL;
    b->cls = NULL;
    *out = g;
    g = NULL;
    rc = 0;
done:
    bl_grammar_free(g);
    bl_gb_free(b);
    return rc;
}

void bl_grammar_free(bl_grammar_t *g)
{
    if (!g)
        return;
    free(g->elems);
    free(g->cls);
    free(g->alt_start);
    free(g->rule_alt);
    free(g);
}
