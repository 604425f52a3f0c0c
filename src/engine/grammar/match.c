/*
 * The grammar matcher: a pushdown automaton over bytes whose transitions are
 * memoised into a DFA.
 *
 * A parse stack holds element positions; its top is always a CLASS element
 * (the next byte it wants), an empty stack means the value is complete.
 * Positions below the top are where to continue when the rule above ends
 * (a reference at the end of an alternative pushes nothing: tail calls keep
 * right-recursive rules such as "more characters" from growing the stack).
 * A state is the sorted, de-duplicated set of live stacks, interned: state
 * ids index a table of 256 transitions each, computed on first use. The
 * mask walks the vocabulary trie through this table, so in steady state a
 * trie node costs one table lookup.
 *
 * Serialised state: n_stacks, then per stack its length and positions
 * bottom to top.
 */
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/grammar/gram_impl.h"
#include "engine/grammar/match_impl.h"

#define MAX_STACK 256       /* positions per stack: bounds nesting */
#define MAX_STACKS 4096     /* stacks per state: bounds ambiguity */
#define EXPAND_BUDGET 65536 /* rule expansions per transition */

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 256;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q)
        return false;
    *p = q;
    *cap = nc;
    return true;
}

/* ---- building a state: stacks collected in m->out -------------------------- */

typedef struct {
    bl_gmatch_t *m;
    long budget;
    bool failed; /* out of memory or budget: the transition is treated as dead */
} xp_t;

static void emit(xp_t *x, const uint32_t *st, size_t n)
{
    bl_gmatch_t *m = x->m;
    if (m->n_stk >= MAX_STACKS) {
        x->failed = true;
        return;
    }
    if (!grow((void **)&m->out, &m->cap_out, m->n_out + n + 1, sizeof *m->out) ||
        !grow((void **)&m->stk, &m->cap_stk, m->n_stk + 1, sizeof *m->stk)) {
        x->failed = true;
        return;
    }
    m->stk[m->n_stk++] = (uint32_t)m->n_out;
    m->out[m->n_out++] = (uint32_t)n;
    memcpy(m->out + m->n_out, st, n * sizeof *st);
    m->n_out += n;
}

/* Expand st (n positions, room for MAX_STACK) until its top is a CLASS, for
 * every way the rules allow; each result is emitted. st is clobbered. */
static void normalize(xp_t *x, uint32_t *st, size_t n)
{
    const bl_grammar_t *g = x->m->g;
    for (;;) {
        if (x->failed)
            return;
        if (n == 0) {
            emit(x, st, 0);
            return;
        }
        uint32_t pos = st[n - 1];
        uint32_t e = g->elems[pos];
        if (e == G_END) {
            n--; /* alternative done: continue below */
            continue;
        }
        if (G_KIND(e) == G_CLASS) {
            emit(x, st, n);
            return;
        }
        if (--x->budget < 0) {
            x->failed = true;
            return;
        }
        uint32_t r = G_IDX(e);
        n--;
        if (g->elems[pos + 1] != G_END)
            st[n++] = pos + 1;
        if (n >= MAX_STACK)
            return; /* too deep: this path dies */
        uint32_t a0 = g->rule_alt[r], a1 = g->rule_alt[r + 1];
        if (a0 == a1)
            return;
        for (uint32_t a = a0; a + 1 < a1; a++) {
            uint32_t copy[MAX_STACK];
            memcpy(copy, st, n * sizeof *st);
            copy[n] = g->alt_start[a];
            normalize(x, copy, n + 1);
        }
        st[n++] = g->alt_start[a1 - 1];
    }
}

/* ---- interning ------------------------------------------------------------- */

static int cmp_stack(const bl_gmatch_t *m, uint32_t a, uint32_t b)
{
    const uint32_t *x = m->out + a, *y = m->out + b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    for (uint32_t i = 1; i <= x[0]; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static int cmp_stack_r(const void *a, const void *b, void *ctx)
{
    return cmp_stack(ctx, *(const uint32_t *)a, *(const uint32_t *)b);
}

static uint32_t hash_words(const uint32_t *w, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 16777619u;
        h ^= h >> 15;
    }
    return h;
}

static int ht_rebuild(bl_gmatch_t *m, size_t slots)
{
    uint32_t *ht = calloc(slots, sizeof *ht);
    if (!ht)
        return BL_ENOMEM;
    free(m->ht);
    m->ht = ht;
    m->ht_mask = (uint32_t)(slots - 1);
    for (uint32_t id = 0; id < m->n_st; id++) {
        uint32_t h = m->st[id].hash & m->ht_mask;
        while (m->ht[h])
            h = (h + 1) & m->ht_mask;
        m->ht[h] = id + 1;
    }
    return 0;
}

/* Intern the stacks in m->out as a state; returns its id or -1. */
static int32_t intern(bl_gmatch_t *m)
{
    /* canonical order, duplicates dropped, serialised into m->ser */
    qsort_r(m->stk, m->n_stk, sizeof *m->stk, cmp_stack_r, m);
    size_t ns = 0;
    bool complete = false, live = false;
    m->n_ser = 1;
    for (size_t i = 0; i < m->n_stk; i++) {
        if (i > 0 && cmp_stack(m, m->stk[i - 1], m->stk[i]) == 0)
            continue;
        const uint32_t *s = m->out + m->stk[i];
        if (!grow((void **)&m->ser, &m->cap_ser, m->n_ser + s[0] + 1, sizeof *m->ser))
            return -1;
        memcpy(m->ser + m->n_ser, s, (s[0] + 1) * sizeof *s);
        m->n_ser += s[0] + 1;
        ns++;
        if (s[0] == 0)
            complete = true;
        else
            live = true;
    }
    m->ser[0] = (uint32_t)ns;
    if (ns == 0)
        return 0; /* the dead state */
    uint32_t h = hash_words(m->ser, m->n_ser);
    for (uint32_t k = h & m->ht_mask;; k = (k + 1) & m->ht_mask) {
        uint32_t id1 = m->ht[k];
        if (!id1)
            break;
        const mstate_t *st = &m->st[id1 - 1];
        if (st->hash == h && st->len == m->n_ser &&
            !memcmp(m->arena + st->off, m->ser, m->n_ser * sizeof *m->ser))
            return (int32_t)(id1 - 1);
    }
    /* new state */
    if (!grow((void **)&m->st, &m->cap_st, m->n_st + 1, sizeof *m->st) ||
        !grow((void **)&m->arena, &m->cap_arena, m->n_arena + m->n_ser, sizeof *m->arena))
        return -1;
    if (!grow((void **)&m->trans, &m->cap_tr, ((size_t)m->n_st + 1) * 256, sizeof *m->trans))
        return -1;
    uint32_t id = m->n_st++;
    memset(m->trans + (size_t)id * 256, 0xff, 256 * sizeof *m->trans); /* -1: unknown */
    memcpy(m->arena + m->n_arena, m->ser, m->n_ser * sizeof *m->ser);
    m->st[id] = (mstate_t){(uint32_t)m->n_arena, (uint32_t)m->n_ser, h, complete, live};
    m->n_arena += m->n_ser;
    if ((size_t)m->n_st * 2 > (size_t)m->ht_mask + 1) {
        if (ht_rebuild(m, ((size_t)m->ht_mask + 1) * 2) < 0) {
            m->n_st--;
            return -1;
        }
    } else {
        uint32_t k = h & m->ht_mask;
        while (m->ht[k])
            k = (k + 1) & m->ht_mask;
        m->ht[k] = id + 1;
    }
    return (int32_t)id;
}

int32_t bl_gmatch_step_slow(bl_gmatch_t *m, uint32_t id, unsigned char byte)
{
    const bl_grammar_t *g = m->g;
    xp_t x = {m, EXPAND_BUDGET, false};
    m->n_out = 0;
    m->n_stk = 0;
    const mstate_t *st = &m->st[id];
    const uint32_t *w = m->arena + st->off;
    uint32_t ns = w[0];
    size_t off = 1;
    for (uint32_t i = 0; i < ns && !x.failed; i++) {
        uint32_t len = w[off];
        const uint32_t *s = w + off + 1;
        off += len + 1;
        if (len == 0 || !g_cls_has(g, G_IDX(g->elems[s[len - 1]]), byte))
            continue;
        uint32_t buf[MAX_STACK];
        memcpy(buf, s, len * sizeof *s);
        buf[len - 1]++;
        normalize(&x, buf, len);
    }
    int32_t next = x.failed ? 0 : intern(m);
    if (next < 0)
        next = 0; /* out of memory: treat the byte as rejected */
    m->trans[(size_t)id * 256 + byte] = next;
    return next;
}

static void reset_tables(bl_gmatch_t *m)
{
    m->n_st = 0;
    m->n_arena = 0;
    memset(m->ht, 0, ((size_t)m->ht_mask + 1) * sizeof *m->ht);
}

/* State 0 is the dead state (no stacks); the start state is the root
 * rule expanded. */
static int init_states(bl_gmatch_t *m)
{
    reset_tables(m);
    if (!grow((void **)&m->st, &m->cap_st, 1, sizeof *m->st) ||
        !grow((void **)&m->trans, &m->cap_tr, 256, sizeof *m->trans) ||
        !grow((void **)&m->arena, &m->cap_arena, 1, sizeof *m->arena))
        return BL_ENOMEM;
    m->arena[0] = 0;
    m->st[0] = (mstate_t){0, 1, 0, false, false};
    memset(m->trans, 0, 256 * sizeof *m->trans); /* dead stays dead */
    m->n_st = 1;
    m->n_arena = 1;
    /* the root rule's alternatives, each on an empty stack */
    const bl_grammar_t *g = m->g;
    xp_t x = {m, EXPAND_BUDGET, false};
    uint32_t st[MAX_STACK];
    m->n_out = m->n_stk = 0;
    for (uint32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++) {
        st[0] = g->alt_start[a];
        normalize(&x, st, 1);
    }
    if (x.failed)
        return BL_ENOMEM;
    int32_t id = intern(m);
    if (id < 0)
        return BL_ENOMEM;
    m->start = (uint32_t)id;
    return 0;
}

int bl_gmatch_new(const bl_grammar_t *g, bl_gmatch_t **out)
{
    if (!out)
        return BL_EINVAL;
    *out = NULL;
    if (!g)
        return BL_EINVAL;
    bl_gmatch_t *m = calloc(1, sizeof *m);
    if (!m)
        return BL_ENOMEM;
    m->g = g;
    int rc = ht_rebuild(m, 1024);
    if (rc == 0)
        rc = init_states(m);
    if (rc < 0) {
        bl_gmatch_free(m);
        return rc;
    }
    m->cur = m->start;
    *out = m;
    return 0;
}

void bl_gmatch_free(bl_gmatch_t *m)
{
    if (!m)
        return;
    free(m->st);
    free(m->trans);
    free(m->arena);
    free(m->ht);
    free(m->out);
    free(m->stk);
    free(m->ser);
    free(m->walk);
    free(m->allowed);
    free(m);
}

/* Keep the memo bounded across a long generation: when it has grown past
 * max_states, start over from the current state alone. */
int bl_gmatch_trim(bl_gmatch_t *m, uint32_t max_states)
{
    if (m->n_st <= max_states)
        return 0;
    /* copy the current state's stacks out, rebuild, re-intern */
    const mstate_t *st = &m->st[m->cur];
    size_t len = st->len;
    uint32_t *copy = malloc(len * sizeof *copy);
    if (!copy)
        return BL_ENOMEM;
    memcpy(copy, m->arena + st->off, len * sizeof *copy);
    int rc = init_states(m);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    m->n_out = m->n_stk = 0;
    size_t off = 1;
    for (uint32_t i = 0; i < copy[0]; i++) {
        xp_t x = {m, EXPAND_BUDGET, false};
        emit(&x, copy + off + 1, copy[off]);
        off += copy[off] + 1;
        if (x.failed) {
            free(copy);
            return BL_ENOMEM;
        }
    }
    free(copy);
    int32_t id = intern(m);
    if (id < 0)
        return BL_ENOMEM;
    m->cur = (uint32_t)id;
    return 0;
}

static uint32_t run(bl_gmatch_t *m, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uint32_t s = m->cur;
    for (size_t i = 0; i < n && s != 0; i++)
        s = (uint32_t)bl_gmatch_next(m, s, p[i]);
    return s;
}

bool bl_gmatch_accepts(bl_gmatch_t *m, const void *bytes, size_t n)
{
    if (!m || (n && !bytes))
        return false;
    return run(m, bytes, n) != 0;
}

int bl_gmatch_advance(bl_gmatch_t *m, const void *bytes, size_t n)
{
    if (!m || (n && !bytes))
        return BL_EINVAL;
    uint32_t s = run(m, bytes, n);
    if (s == 0)
        return BL_EINVAL;
    m->cur = s;
    return 0;
}

bool bl_gmatch_complete(const bl_gmatch_t *m)
{
    return m && m->st[m->cur].complete;
}

bool bl_gmatch_done(const bl_gmatch_t *m)
{
    return m && m->st[m->cur].complete && !m->st[m->cur].live;
}
