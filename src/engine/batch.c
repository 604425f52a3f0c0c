/*
 * One decode step of several sequences as one batch (bl_ctx_feed_batch).
 *
 * Decode is bound by memory bandwidth: every weight is read once per step
 * whatever the step computes. Running n sequences' next tokens as the n
 * columns of each matmul reads the weights once for all of them; only
 * attention is per sequence (each against its own KV cache, split across
 * the pool by (sequence, head)).
 *
 * Each column goes through the same ops as bl_ctx_feed of that token alone.
 * By default each matmul either runs the multi-column tiles, for the types
 * whose tiles sum every (row, column) by the decode kernel's own chain
 * (bl_kern_cols_exact: Q8_0 and Q4_0 on AVX-512 VNNI), or runs the
 * single-column kernel once per column over row blocks small enough to stay
 * in cache (bl_fwd_matmuls' by_column). Either way it is bit for bit what
 * feeding alone gives, whatever else is in the batch, with the weights read
 * from memory once per step; the tiles also decode each weight block once.
 *
 * With m->batch_multicol the multi-column kernels run instead. They share
 * the decoding of each weight block between columns (less arithmetic when
 * their tiles are fast) but order their float sums differently: one step
 * differs from feeding alone by about 1e-7..4e-5 of the largest logit, and
 * the difference grows along the KV cache (test_batch.c states the bounds).
 *
 * The batch's activations live in the scratch of one of its contexts (the
 * one with the most room); the model's run_lock is held for the pass.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/kernels/kernels.h"
#include "engine/model.h"
#include "engine/ops.h"

typedef struct {
    bl_ctx_t **ctx; /* column j's sequence */
    bl_scratch_t *s;
    const bl_model_t *m;
    uint32_t layer;
    const float *norm; /* rmsnorm weights for norm_worker */
} step_t;

static void norm_worker(void *arg, size_t j0, size_t j1)
{
    const step_t *st = arg;
    const size_t E = st->m->hp.n_embd;
    for (size_t j = j0; j < j1; j++)
        bl_op_rmsnorm(st->s->xb + j * E, st->s->x + j * E, st->norm, E, st->m->hp.rms_eps);
}

static void prep_worker(void *arg, size_t j0, size_t j1)
{
    const step_t *st = arg;
    const bl_hparams_t *hp = &st->m->hp;
    const size_t QD = (size_t)hp->n_head * hp->head_dim, KD = (size_t)hp->n_head_kv * hp->head_dim;
    for (size_t j = j0; j < j1; j++) {
        bl_ctx_t *c = st->ctx[j];
        bl_fwd_attn_prep(c, st->layer, c->n_past, st->s->q + j * QD, st->s->k + j * KD,
                         st->s->v + j * KD);
    }
}

static void attn_worker(void *arg, size_t i0, size_t i1)
{
    const step_t *st = arg;
    const bl_hparams_t *hp = &st->m->hp;
    const size_t hd = hp->head_dim, QD = (size_t)hp->n_head * hd;
    for (size_t i = i0; i < i1; i++) {
        size_t j = i / hp->n_head;
        uint32_t h = (uint32_t)(i % hp->n_head);
        const bl_ctx_t *c = st->ctx[j];
        size_t off = j * QD + h * hd;
        /* one token per sequence: the decode kernel, as bl_forward picks it */
        bl_fwd_attend(c, st->layer, h, st->s->q + off, st->s->att + off, c->n_past + 1, false);
    }
}

static void swiglu_worker(void *arg, size_t j0, size_t j1)
{
    const step_t *st = arg;
    const size_t F = st->m->hp.n_ff;
    for (size_t j = j0; j < j1; j++)
        bl_op_swiglu(st->s->gate + j * F, st->s->up + j * F, F);
}

/* The forward pass of tokens[j] at ctx[j]'s next position for j < n, with
 * s (n <= s->cap) as scratch; fills each context's logits. The caller has
 * checked the tokens and that each cache has room, and holds run_lock. */
static int step(bl_ctx_t **ctx, const bl_token_t *tokens, uint32_t n, bl_scratch_t *s,
                const atomic_bool *cancel)
{
    bl_model_t *m = ctx[0]->m;
    const bl_hparams_t *hp = &m->hp;
    const size_t E = hp->n_embd;
    const bool exact = !m->batch_multicol;
    step_t st = {ctx, s, m, 0, NULL};

    for (uint32_t j = 0; j < n; j++) {
        const char *row = (const char *)m->tok_embd.data;
        row += (size_t)tokens[j] * m->tok_embd.row_bytes;
        bl_kern_dequantize_row(m->tok_embd.type, row, s->x + j * E, E);
    }

    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if (cancel && atomic_load(cancel))
            return BL_ECANCELED;
        const bl_layer_t *L = &m->layers[l];
        st.layer = l;

        /* attention */
        st.norm = L->attn_norm;
        bl_pool_for(m->pool, n, 0, norm_worker, &st);
        const bl_mat_t *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *const qkv[3] = {s->q, s->k, s->v};
        bl_fwd_matmuls(m->pool, s->act, s->act_cap, s->xb, n, wqkv, qkv, 3, exact, NULL);
        bl_pool_for(m->pool, n, 0, prep_worker, &st);
        bl_pool_for(m->pool, (size_t)n * hp->n_head, 0, attn_worker, &st);
        const bl_mat_t *wo = &L->wo;
        bl_fwd_matmuls(m->pool, s->act, s->act_cap, s->att, n, &wo, &s->o, 1, exact, NULL);
        bl_op_add(s->x, s->o, n * E);

        /* feed-forward */
        st.norm = L->ffn_norm;
        bl_pool_for(m->pool, n, 0, norm_worker, &st);
        const bl_mat_t *wgu[2] = {&L->w_gate, &L->w_up};
        float *const gu[2] = {s->gate, s->up};
        bl_fwd_matmuls(m->pool, s->act, s->act_cap, s->xb, n, wgu, gu, 2, exact, NULL);
        bl_pool_for(m->pool, n, 0, swiglu_worker, &st);
        const bl_mat_t *wd = &L->w_down;
        bl_fwd_matmuls(m->pool, s->act, s->act_cap, s->gate, n, &wd, &s->o, 1, exact, NULL);
        bl_op_add(s->x, s->o, n * E);
    }

    st.norm = m->output_norm;
    bl_pool_for(m->pool, n, 0, norm_worker, &st);
    float *logits[BL_MAX_BATCH];
    for (uint32_t j = 0; j < n; j++)
        logits[j] = ctx[j]->logits;
    const bl_mat_t *wout = &m->output;
    float *unused = NULL;
    bl_fwd_matmuls(m->pool, s->act, s->act_cap, s->xb, n, &wout, &unused, 1, exact, logits);
    return 0;
}

/* Why ctx c cannot take token t now (0 if it can). */
static int check_one(const bl_ctx_t *c, bl_token_t t)
{
    if (c->pending >= 0)
        return BL_ESTATE; /* bl_generate left a token to run first; see engine.h */
    if (t < 0 || (uint32_t)t >= c->m->hp.n_vocab)
        return BL_EINVAL;
    if (c->n_past >= c->kv.n_ctx)
        return BL_ECONTEXT;
    return 0;
}

int bl_ctx_feed_batch(bl_ctx_t *const *ctxs, const bl_token_t *tokens, size_t n, int *results,
                      const atomic_bool *cancel)
{
    if (n == 0)
        return 0;
    if (!ctxs || !tokens || !results || !ctxs[0])
        return BL_EINVAL;
    bl_model_t *m = ctxs[0]->m;
    for (size_t i = 0; i < n; i++) {
        if (!ctxs[i] || ctxs[i]->m != m)
            return BL_EINVAL;
        for (size_t k = 0; k < i; k++)
            if (ctxs[k] == ctxs[i])
                return BL_EINVAL; /* one token per sequence per step */
    }

    int rc = 0;
    bl_ctx_t **run = malloc(n * sizeof *run);
    bl_token_t *run_tok = malloc(n * sizeof *run_tok);
    size_t *run_idx = malloc(n * sizeof *run_idx);
    if (!run || !run_tok || !run_idx) {
        rc = BL_ENOMEM;
        for (size_t i = 0; i < n; i++)
            results[i] = rc;
        goto done;
    }
    size_t n_run = 0;
    bl_scratch_t *s = NULL; /* the runnable context's scratch with the most room */
    for (size_t i = 0; i < n; i++) {
        results[i] = check_one(ctxs[i], tokens[i]);
        if (results[i] < 0)
            continue;
        run[n_run] = ctxs[i];
        run_tok[n_run] = tokens[i];
        run_idx[n_run++] = i;
        if (!s || ctxs[i]->s.cap > s->cap)
            s = &ctxs[i]->s;
    }

    pthread_mutex_lock(&m->run_lock);
    size_t done_upto = 0;
    while (done_upto < n_run) {
        size_t left = n_run - done_upto;
        uint32_t k = (uint32_t)(left < s->cap ? left : s->cap);
        if (k > BL_MAX_BATCH)
            k = BL_MAX_BATCH;
        rc = step(run + done_upto, run_tok + done_upto, k, s, cancel);
        if (rc < 0)
            break;
        for (uint32_t j = 0; j < k; j++) {
            bl_ctx_t *c = run[done_upto + j];
            c->tokens[c->n_past++] = run_tok[done_upto + j];
            c->have_logits = true;
        }
        done_upto += k;
    }
    pthread_mutex_unlock(&m->run_lock);
    for (size_t j = done_upto; j < n_run; j++)
        results[run_idx[j]] = rc; /* not run (canceled): left as they were */
done:
    free(run);
    free(run_tok);
    free(run_idx);
    return rc;
}
