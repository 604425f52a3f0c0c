/*
 * Byte-level BPE encoding (tokenizer.ggml.model = "gpt2"), the algorithm of
 * llama.cpp's llm_tokenizer_bpe so ids match it:
 *
 *  1. Special-token partition (partition.c), as for SentencePiece.
 *  2. Each plain fragment is cut into words by the vocabulary's
 *     pre-tokenizer (pretok.c).
 *  3. A word starts as one symbol per byte: the token of the character
 *     GPT-2's bytes_to_unicode maps that byte to. Adjacent pairs are merged
 *     lowest merge rank first (ties: leftmost), re-pairing the merged
 *     symbol with its neighbours, until no pair has a merge. Pairs are keyed
 *     by token ids, so no text is built while merging; the heap keeps a long
 *     word (100 KB without a space) at O(n log n).
 *  4. With ignore_merges (Llama 3), a word that is itself a token is emitted
 *     whole without merging.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer/tok_internal.h"
#include "engine/tokenizer/unicode.h"

typedef struct {
    uint32_t rank;
    int32_t left;              /* symbol index; the right one is next[left] */
    int32_t left_id, right_id; /* ids when queued: a pair is stale once either changed */
} pair_t;

typedef struct {
    const bl_tok_t *t;
    int32_t *id, *next, *prev; /* per symbol; id -1 once merged away */
    pair_t *heap;
    size_t n_heap, cap_heap;
    char *word; /* a word's text in vocabulary form, for ignore_merges */
} session_t;

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

/* a pops before b: lower rank, then the leftmost */
static bool before(const pair_t *a, const pair_t *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(session_t *s, pair_t p)
{
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!before(&p, &s->heap[up]))
            break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = p;
}

static pair_t heap_pop(session_t *s)
{
    pair_t top = s->heap[0];
    pair_t last = s->heap[--s->n_heap];
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

static void try_pair(session_t *s, int32_t left, int32_t right)
{
    if (left < 0 || right < 0 || s->id[left] < 0 || s->id[right] < 0)
        return;
    const bl_tok_merge_t *m = bl_tok_merge_find(s->t, s->id[left], s->id[right]);
    /* bounded: one initial pair per symbol plus two per merge */
    if (m && s->n_heap < s->cap_heap)
        heap_push(s, (pair_t){m->rank, left, s->id[left], s->id[right]});
}

/* The word's text as the vocabulary spells it, if it could be one token. */
static int32_t whole_word(session_t *s, const unsigned char *p, size_t n)
{
    const bl_tok_t *t = s->t;
    if (n > t->max_token_len)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        m += bl_unicode_encode(bl_unicode_byte_cpt(p[i]), s->word + m);
        if (m > t->max_token_len)
            return -1;
    }
    return bl_tok_lookup(t, s->word, m);
}

static void bpe_word(session_t *s, const unsigned char *p, size_t n, emit_t *e)
{
    const bl_tok_t *t = s->t;
    if (t->ignore_merges && n > 1) {
        int32_t id = whole_word(s, p, n);
        if (id >= 0) {
            emit(e, id);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        s->id[i] = t->byte_sym[p[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->n_heap = 0;
    for (size_t i = 1; i < n; i++)
        try_pair(s, (int32_t)i - 1, (int32_t)i);
    while (s->n_heap > 0) {
        pair_t q = heap_pop(s);
        int32_t l = q.left, r = s->next[l];
        if (r < 0 || s->id[l] != q.left_id || s->id[r] != q.right_id)
            continue;
        const bl_tok_merge_t *m = bl_tok_merge_find(t, q.left_id, q.right_id);
        s->id[l] = m->result;
        s->id[r] = -1;
        s->next[l] = s->next[r];
        if (s->next[r] >= 0)
            s->prev[s->next[r]] = l;
        try_pair(s, s->prev[l], l);
        try_pair(s, l, s->next[l]);
    }
    /* a byte with no token of its own is dropped, as llama.cpp does */
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if (s->id[i] >= 0)
            emit(e, s->id[i]);
}

int bl_tok_bpe_encode(const bl_tok_t *t, const char *text, size_t len, bool add_special,
                      bool parse_special, bl_token_t *out, size_t cap, size_t *n_out)
{
    int rc = 0;
    bl_tok_frags_t frags = {0};
    session_t s = {0};
    emit_t e = {out, out ? cap : 0, 0};
    uint32_t *ends = NULL;

    if (n_out)
        *n_out = 0;
    if (!t || (!text && len > 0))
        return BL_EINVAL;
    if (len > (size_t)INT32_MAX / 4)
        return BL_ERANGE;
    if ((rc = bl_tok_partition(t, text, len, parse_special, &frags)) != 0)
        goto done;

    size_t n = len ? len : 1;
    s.t = t;
    s.id = malloc(n * sizeof(int32_t));
    s.next = malloc(n * sizeof(int32_t));
    s.prev = malloc(n * sizeof(int32_t));
    s.cap_heap = 3 * n;
    s.heap = malloc(s.cap_heap * sizeof(pair_t));
    s.word = malloc((size_t)t->max_token_len + 4);
    ends = malloc(n * sizeof(uint32_t));
    if (!s.id || !s.next || !s.prev || !s.heap || !s.word || !ends) {
        rc = BL_ENOMEM;
        goto done;
    }

    if (add_special && t->add_bos)
        emit(&e, t->bos);
    for (size_t i = 0; i < frags.n; i++) {
        bl_tok_frag_t f = frags.v[i];
        if (f.token >= 0) {
            emit(&e, f.token);
            continue;
        }
        size_t n_words;
        const unsigned char *p = (const unsigned char *)text + f.off;
        if ((rc = bl_tok_pretokenize(t->pre, (const char *)p, f.len, ends, &n_words)) != 0)
            goto done;
        size_t start = 0;
        for (size_t w = 0; w < n_words; w++) {
            bpe_word(&s, p + start, ends[w] - start, &e);
            start = ends[w];
        }
    }
    if (add_special && t->add_eos)
        emit(&e, t->eos);

    if (n_out)
        *n_out = e.n;
    if (e.n > e.cap)
        rc = BL_ERANGE;
done:
    free(s.id);
    free(s.next);
    free(s.prev);
    free(s.heap);
    free(s.word);
    free(ends);
    free(frags.v);
    return rc;
}
