/*
 * SentencePiece-style encoding (tokenizer.ggml.model = "llama"), the same
 * algorithm as llama.cpp's llm_tokenizer_spm so ids match it exactly:
 *
 *  1. Special-token partition (partition.c, shared with byte-level BPE):
 *     the text is split around the vocabulary's special token strings.
 *  2. Each plain fragment gets a leading space when it starts the text or
 *     follows a special token (add_space_prefix), and every ' ' becomes
 *     U+2581 "▁".
 *  3. The fragment is split into UTF-8 characters; adjacent pairs whose
 *     concatenation is a token are merged greedily, highest score first
 *     (ties: leftmost), re-pairing the merged symbol with its neighbours.
 *  4. A final symbol that is not a token is emitted as its bytes' <0xNN>
 *     tokens (byte fallback).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer/tok_internal.h"

/* ---- the merge ----------------------------------------------------------- */

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
} bigram_t;

typedef struct {
    const bl_tok_t *t;
    const char *buf;
    int32_t *prev, *next;
    uint32_t *off, *n;
    bigram_t *heap;
    size_t n_heap, cap_heap;
} session_t;

/* a pops before b: higher score, then the leftmost */
static bool before(const bigram_t *a, const bigram_t *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(session_t *s, bigram_t b)
{
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &s->heap[p]))
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = b;
}

static bigram_t heap_pop(session_t *s)
{
    bigram_t top = s->heap[0];
    bigram_t last = s->heap[--s->n_heap];
    size_t n = s->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static void try_add(session_t *s, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return;
    uint32_t size = s->n[left] + s->n[right];
    int32_t id = bl_tok_lookup(s->t, s->buf + s->off[left], size);
    if (id < 0)
        return;
    /* bounded: at most one initial pair per symbol plus two per merge */
    if (s->n_heap < s->cap_heap)
        heap_push(s, (bigram_t){s->t->score[id], left, right, size});
}

typedef struct {
    bl_token_t *out;
    size_t cap, n;
} emit_t;

static void emit(emit_t *e, bl_token_t id)
{
    if (e->n < e->cap)
        e->out[e->n] = id;
    e->n++;
}

static int spm_encode(session_t *s, size_t len, emit_t *e)
{
    const bl_tok_t *t = s->t;
    int32_t n_sym = 0;
    for (size_t offs = 0; offs < len;) {
        size_t n = bl_tok_utf8_len((unsigned char)s->buf[offs]);
        if (n > len - offs)
            n = len - offs;
        s->off[n_sym] = (uint32_t)offs;
        s->n[n_sym] = (uint32_t)n;
        s->prev[n_sym] = n_sym - 1;
        offs += n;
        s->next[n_sym] = offs == len ? -1 : n_sym + 1;
        n_sym++;
    }
    if (n_sym == 0)
        return 0;
    s->n_heap = 0;
    for (int32_t i = 1; i < n_sym; i++)
        try_add(s, i - 1, i);

    while (s->n_heap > 0) {
        bigram_t b = heap_pop(s);
        int32_t l = b.left, r = b.right;
        /* stale: one side was merged away or grew since this pair was queued */
        if (s->n[l] == 0 || s->n[r] == 0 || s->n[l] + s->n[r] != b.size)
            continue;
        s->n[l] += s->n[r];
        s->n[r] = 0;
        s->next[l] = s->next[r];
        if (s->next[r] >= 0)
            s->prev[s->next[r]] = l;
        try_add(s, s->prev[l], l);
        try_add(s, l, s->next[l]);
    }

    for (int32_t i = 0; i != -1; i = s->next[i]) {
        const char *p = s->buf + s->off[i];
        int32_t id = bl_tok_lookup(t, p, s->n[i]);
        if (id >= 0) {
            emit(e, id);
            continue;
        }
        for (uint32_t k = 0; k < s->n[i]; k++) {
            int32_t b = t->byte_tok[(unsigned char)p[k]];
            if (b < 0)
                b = t->unk;
            if (b < 0)
                return BL_EINVAL; /* no byte token and no unknown token */
            emit(e, b);
        }
    }
    return 0;
}

int bl_tok_encode(const bl_tok_t *t, const char *text, size_t len, bool add_special,
                  bool parse_special, bl_token_t *out, size_t cap, size_t *n_out)
{
    int rc = 0;
    bl_tok_frags_t a = {0};
    session_t s = {0};
    emit_t e = {out, out ? cap : 0, 0};

    if (n_out)
        *n_out = 0;
    if (!t || (!text && len > 0))
        return BL_EINVAL;
    if (len > (size_t)INT32_MAX / 4)
        return BL_ERANGE;
    if (t->kind == BL_TOK_KIND_BPE)
        return bl_tok_bpe_encode(t, text, len, add_special, parse_special, out, cap, n_out);

    if ((rc = bl_tok_partition(t, text, len, parse_special, &a)) != 0)
        goto done;

    /* room for the escaped text: "▁" prefix plus 3 bytes per input byte */
    size_t buf_cap = 3 * len + 3;
    size_t sym_cap = buf_cap; /* a symbol per byte at worst (invalid UTF-8) */
    char *buf = malloc(buf_cap);
    s.t = t;
    s.buf = buf;
    s.prev = malloc(sym_cap * sizeof(int32_t));
    s.next = malloc(sym_cap * sizeof(int32_t));
    s.off = malloc(sym_cap * sizeof(uint32_t));
    s.n = malloc(sym_cap * sizeof(uint32_t));
    s.cap_heap = 3 * sym_cap;
    s.heap = malloc(s.cap_heap * sizeof(bigram_t));
    if (!buf || !s.prev || !s.next || !s.off || !s.n || !s.heap) {
        rc = BL_ENOMEM;
        goto done;
    }

    bool prev_special = true; /* the text start counts as after a special token */
    if (add_special && t->add_bos)
        emit(&e, t->bos);
    for (size_t i = 0; i < a.n; i++) {
        bl_tok_frag_t f = a.v[i];
        if (f.token >= 0) {
            emit(&e, f.token);
            prev_special = true;
            continue;
        }
        size_t n = 0;
        if (t->add_space_prefix && prev_special) {
            memcpy(buf, "\xe2\x96\x81", 3);
            n = 3;
        }
        for (size_t k = 0; k < f.len; k++) {
            char c = text[f.off + k];
            if (c == ' ') {
                memcpy(buf + n, "\xe2\x96\x81", 3);
                n += 3;
            } else {
                buf[n++] = c;
            }
        }
        if ((rc = spm_encode(&s, n, &e)) != 0)
            goto done;
        prev_special = false;
    }
    if (add_special && t->add_eos)
        emit(&e, t->eos);

    if (n_out)
        *n_out = e.n;
    if (e.n > e.cap)
        rc = BL_ERANGE;
done:
    free((void *)s.buf);
    free(s.prev);
    free(s.next);
    free(s.off);
    free(s.n);
    free(s.heap);
    free(a.v);
    return rc;
}
