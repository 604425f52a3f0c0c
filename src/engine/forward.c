/*
 * The forward pass over a batch of tokens of one sequence, for every
 * architecture the loader binds (model.c): one layer function whose optional
 * steps (biases, q/k norms, where the attention scale goes) follow what the
 * model has.
 *
 *   x = token_embd[token]
 *   for each layer:
 *       h = rmsnorm(x) * attn_norm
 *       q, k, v = Wq h (+ bq), Wk h (+ bk), Wv h (+ bv)
 *       q, k = rmsnorm per head * q_norm, k_norm        (qwen3)
 *       rope(q), rope(k)   (normal or NEOX pairs);  cache k, v (F16)
 *       x += Wo attention(q, K, V)          (causal, grouped-query heads)
 *       h = rmsnorm(x) * ffn_norm
 *       x += Wdown (silu(Wgate h) * Wup h)
 *   logits = Woutput (rmsnorm(x_last) * output_norm)
 *   (bl_embed instead sums rmsnorm(x) * output_norm over every position)
 *
 * Fused projections (phi3's attn_qkv and gate+up ffn_up) are bound as row
 * ranges of one tensor, so they are ordinary matrices here. A prompt is one
 * batch: each weight matrix is multiplied by all its columns at once.
 * Matmuls split output rows across the pool; attention splits (token, head)
 * pairs. batch.c runs one decode step of several sequences with these pieces.
 */
#include <math.h>
#include <string.h>

#include "engine/kernels/kernels.h"
#include "engine/model.h"
#include "engine/ops.h"

/* Matmul rows are handed out in chunks (a multiple of this many rows) from
 * a shared counter, several chunks per thread, so a thread that gets
 * descheduled on a busy machine does not hold up the others. */
#define ROW_ALIGN 16
#define CHUNKS_PER_THREAD 4

/* Per-column matmuls take rows in blocks of about this many weight bytes,
 * so the block is still in L1/L2 when the next column passes over it. */
#define COL_BLOCK_BYTES (32 * 1024)

typedef struct {
    const bl_mat_t *w;
    const void *act;
    size_t act_stride; /* bytes per prepared column */
    float *y;
} mm_t;

typedef struct {
    mm_t mm[3];
    int n_mm;
    uint32_t ncols;
    bool by_column;
    float *const *ycol; /* one matrix only: column c's output, or NULL */
    size_t chunk;       /* rows per chunk */
    size_t n_chunks[3]; /* per matrix */
    size_t total_chunks;
} mm_job_t;

/* Rows [r0, r1) one column at a time, each column exactly as a batch of one
 * computes it; the weights are read from memory once for all columns. */
static void mm_by_column(const mm_job_t *j, const mm_t *mm, size_t r0, size_t r1)
{
    const bl_mat_t *w = mm->w;
    size_t blk = w->row_bytes ? COL_BLOCK_BYTES / w->row_bytes : 1;
    if (blk < 1)
        blk = 1;
    for (size_t b0 = r0; b0 < r1; b0 += blk) {
        size_t b1 = b0 + blk < r1 ? b0 + blk : r1;
        for (uint32_t c = 0; c < j->ncols; c++) {
            float *y = j->ycol ? j->ycol[c] : mm->y + (size_t)c * w->n_out;
            bl_kern_matmul(w->type, w->data, w->row_bytes, w->n_in,
                           (const char *)mm->act + c * mm->act_stride, 1, y, w->n_out, b0, b1);
        }
    }
}

/* Rows [r0, r1) for all columns at once into per-column outputs: a few rows
 * at a time into a small buffer, then scattered to the columns. */
#define SCATTER_ROWS 32
static void mm_scatter(const mm_job_t *j, const mm_t *mm, size_t r0, size_t r1)
{
    const bl_mat_t *w = mm->w;
    float tmp[SCATTER_ROWS * BL_MAX_BATCH];
    for (size_t b0 = r0; b0 < r1; b0 += SCATTER_ROWS) {
        size_t nr = r1 - b0 < SCATTER_ROWS ? r1 - b0 : SCATTER_ROWS;
        bl_kern_matmul(w->type, (const char *)w->data + b0 * w->row_bytes, w->row_bytes, w->n_in,
                       mm->act, j->ncols, tmp, nr, 0, nr);
        for (uint32_t c = 0; c < j->ncols; c++)
            memcpy(j->ycol[c] + b0, tmp + (size_t)c * nr, nr * sizeof(float));
    }
}

static void mm_worker(void *arg, size_t c0, size_t c1)
{
    const mm_job_t *j = arg;
    for (size_t c = c0; c < c1; c++) {
        int i = 0;
        size_t k = c;
        while (k >= j->n_chunks[i])
            k -= j->n_chunks[i++];
        const bl_mat_t *w = j->mm[i].w;
        size_t r0 = k * j->chunk, r1 = r0 + j->chunk < w->n_out ? r0 + j->chunk : w->n_out;
        /* exact batches go column by column, unless this type's tiles are
           exact per column anyway (then the weights are decoded once) */
        if (j->by_column && !bl_kern_cols_exact(w->type))
            mm_by_column(j, &j->mm[i], r0, r1);
        else if (j->ycol)
            mm_scatter(j, &j->mm[i], r0, r1);
        else
            bl_kern_matmul(w->type, w->data, w->row_bytes, w->n_in, j->mm[i].act, j->ncols,
                           j->mm[i].y, w->n_out, r0, r1);
    }
}

typedef struct {
    uint32_t type;
    const float *x;
    size_t n;
    uint32_t ncols;
    void *dst;
} prep_job_t;

static void prep_worker(void *arg, size_t c0, size_t c1)
{
    const prep_job_t *j = arg;
    if (c0 < c1)
        bl_kern_prepare(j->type, j->x + c0 * j->n, j->n, c1 - c0,
                        (char *)j->dst + c0 * bl_kern_act_bytes(j->type, j->n));
}

void bl_fwd_matmuls(bl_pool_t *pool, void *act, size_t act_cap, const float *x, uint32_t ncols,
                    const bl_mat_t *const *w, float *const *y, int k, bool by_column,
                    float *const *ycol)
{
    mm_job_t job = {.n_mm = k, .ncols = ncols, .by_column = by_column};
    job.ycol = k == 1 && ncols <= BL_MAX_BATCH ? ycol : NULL;
    const int nth = bl_pool_size(pool);
    size_t rows = 0;
    for (int i = 0; i < k; i++)
        rows += w[i]->n_out;
    size_t per = (rows + (size_t)nth * CHUNKS_PER_THREAD - 1) / ((size_t)nth * CHUNKS_PER_THREAD);
    job.chunk = nth == 1 ? rows : (per + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    for (int i = 0; i < k; i++) {
        job.n_chunks[i] = (w[i]->n_out + job.chunk - 1) / job.chunk;
        job.total_chunks += job.n_chunks[i];
    }
    uint32_t types[3];
    int n_types = 0;
    for (int i = 0; i < k; i++) {
        int t = 0;
        while (t < n_types && types[t] != w[i]->type)
            t++;
        void *a = (char *)act + (size_t)t * act_cap;
        if (t == n_types) {
            types[n_types++] = w[i]->type;
            prep_job_t pj = {w[i]->type, x, w[i]->n_in, ncols, a};
            bl_pool_for(pool, ncols, 0, prep_worker, &pj);
        }
        job.mm[i] = (mm_t){w[i], a, bl_kern_act_bytes(w[i]->type, w[i]->n_in), y[i]};
    }
    bl_pool_for(pool, job.total_chunks, 1, mm_worker, &job);
}

/* y_i = W_i x for up to three matrices sharing the input x (ncols columns of
 * n_in). The input is prepared once per distinct weight type. */
static void matmuls(bl_ctx_t *c, const float *x, uint32_t ncols, const bl_mat_t *const *w,
                    float *const *y, int k)
{
    bl_fwd_matmuls(c->m->pool, c->s.act, c->s.act_cap, x, ncols, w, y, k, false, NULL);
}

static void matmul1(bl_ctx_t *c, const float *x, uint32_t ncols, const bl_mat_t *w, float *y)
{
    matmuls(c, x, ncols, &w, &y, 1);
}

void bl_fwd_attend(const bl_ctx_t *c, uint32_t layer, uint32_t h, const float *q, float *out,
                   uint32_t n_kv, bool tiled)
{
    const bl_hparams_t *hp = &c->m->hp;
    const bl_kv_t *kv = &c->kv;
    const uint32_t hd = hp->head_dim;
    const uint32_t kvh = h / (hp->n_head / hp->n_head_kv);
    /* phi3 scaled q already (see bl_fwd_attn_prep) */
    const float scale = hp->scale_q ? 1.0f : 1.0f / sqrtf((float)hd);
    /* The SIMD attention unless the reference kernels were asked for. */
    const bool simd = hd % 16 == 0 && bl_kern_isa() != BL_ISA_SCALAR;
    const uint16_t *k = bl_kv_k(kv, layer, 0) + (size_t)kvh * hd;
    const uint16_t *v = bl_kv_v(kv, layer, 0) + (size_t)kvh * hd;
    if (tiled && simd)
        bl_op_attend_tiled_avx2(out, q, k, v, kv->row, hd, n_kv, scale);
    else if (tiled)
        bl_op_attend_tiled(out, q, k, v, kv->row, hd, n_kv, scale);
    else if (simd)
        bl_op_attend_avx2(out, q, k, v, kv->row, hd, n_kv, scale);
    else
        bl_op_attend(out, q, k, v, kv->row, hd, n_kv, scale);
}

typedef struct {
    bl_ctx_t *c;
    uint32_t layer, n_tokens, pos0;
} attn_job_t;

static void attn_worker(void *arg, size_t i0, size_t i1)
{
    const attn_job_t *j = arg;
    const bl_hparams_t *hp = &j->c->m->hp;
    const bl_scratch_t *s = &j->c->s;
    const size_t hd = hp->head_dim, QD = (size_t)hp->n_head * hd;
    /* like llama.cpp, large batches (long prompts) take the tiled kernel */
    const bool tiled = j->n_tokens >= BL_ATTN_TILED_MIN;
    for (size_t i = i0; i < i1; i++) {
        uint32_t t = (uint32_t)(i / hp->n_head), h = (uint32_t)(i % hp->n_head);
        size_t off = t * QD + h * hd;
        bl_fwd_attend(j->c, j->layer, h, s->q + off, s->att + off, j->pos0 + t + 1, tiled);
    }
}

/* Per-token work of a batch (norms, rope, swiglu), split by token across
 * the pool when there is more than one token. */
typedef struct {
    bl_ctx_t *c;
    uint32_t layer, n_tokens;
    void (*fn)(bl_ctx_t *c, uint32_t layer, uint32_t t);
} tok_job_t;

static void tok_worker(void *arg, size_t t0, size_t t1)
{
    const tok_job_t *j = arg;
    for (size_t t = t0; t < t1; t++)
        j->fn(j->c, j->layer, (uint32_t)t);
}

static void per_token(bl_ctx_t *c, uint32_t layer, uint32_t n,
                      void (*fn)(bl_ctx_t *c, uint32_t layer, uint32_t t))
{
    tok_job_t j = {c, layer, n, fn};
    bl_pool_for(c->m->pool, n, 0, tok_worker, &j);
}

static void attn_norm(bl_ctx_t *c, uint32_t l, uint32_t t)
{
    const bl_hparams_t *hp = &c->m->hp;
    size_t E = hp->n_embd;
    bl_op_rmsnorm(c->s.xb + t * E, c->s.x + t * E, c->m->layers[l].attn_norm, E, hp->rms_eps);
}

static void ffn_norm(bl_ctx_t *c, uint32_t l, uint32_t t)
{
    const bl_hparams_t *hp = &c->m->hp;
    size_t E = hp->n_embd;
    bl_op_rmsnorm(c->s.xb + t * E, c->s.x + t * E, c->m->layers[l].ffn_norm, E, hp->rms_eps);
}

/* The RoPE divisors of a context, picked as llama.cpp picks them: a
 * rope_freqs tensor, else LongRoPE's long factors for contexts larger than
 * the original one and its short factors otherwise. */
static const float *rope_factors(const bl_ctx_t *c)
{
    const bl_model_t *m = c->m;
    if (m->rope_freqs)
        return m->rope_freqs;
    return c->kv.n_ctx > m->hp.n_ctx_orig ? m->rope_long : m->rope_short;
}

static void add_bias(float *x, const float *b, size_t n)
{
    if (b)
        bl_op_add(x, b, n);
}

/* Per-head RMSNorm of n_heads heads of head_dim (qwen3's q/k norms). */
static void head_norm(float *x, const float *w, uint32_t n_heads, uint32_t head_dim, float eps)
{
    if (!w)
        return;
    for (uint32_t h = 0; h < n_heads; h++)
        bl_op_rmsnorm(x + (size_t)h * head_dim, x + (size_t)h * head_dim, w, head_dim, eps);
}

void bl_fwd_attn_prep(bl_ctx_t *c, uint32_t l, uint32_t pos, float *q, float *k, float *v)
{
    const bl_model_t *m = c->m;
    const bl_hparams_t *hp = &m->hp;
    const bl_layer_t *L = &m->layers[l];
    const uint32_t hd = hp->head_dim;
    const size_t QD = (size_t)hp->n_head * hd, KD = (size_t)hp->n_head_kv * hd;
    add_bias(q, L->bq, QD);
    add_bias(k, L->bk, KD);
    add_bias(v, L->bv, KD);
    head_norm(q, L->q_norm, hp->n_head, hd, hp->rms_eps);
    head_norm(k, L->k_norm, hp->n_head_kv, hd, hp->rms_eps);
    const bl_rope_t rope = {
        .n_rot = hp->n_rot,
        .neox = hp->rope_layout == BL_ROPE_NEOX,
        .base = hp->rope_base,
        .freq_scale = hp->rope_freq_scale,
        .mscale = hp->rope_attn_factor,
        .freq_factors = rope_factors(c),
    };
    bl_op_rope(q, hp->n_head, hd, pos, &rope);
    bl_op_rope(k, hp->n_head_kv, hd, pos, &rope);
    if (hp->scale_q)
        bl_op_scale(q, 1.0f / sqrtf((float)hd), QD);
    bl_op_f32_to_f16(bl_kv_k(&c->kv, l, pos), k, KD);
    bl_op_f32_to_f16(bl_kv_v(&c->kv, l, pos), v, KD);
}

static void attn_prep(bl_ctx_t *c, uint32_t l, uint32_t t)
{
    const bl_hparams_t *hp = &c->m->hp;
    const size_t QD = (size_t)hp->n_head * hp->head_dim, KD = (size_t)hp->n_head_kv * hp->head_dim;
    bl_fwd_attn_prep(c, l, c->n_past + t, c->s.q + t * QD, c->s.k + t * KD, c->s.v + t * KD);
}

/* The final norm of every position, into xb (embeddings want them all). */
static void out_norm(bl_ctx_t *c, uint32_t l, uint32_t t)
{
    (void)l;
    const bl_hparams_t *hp = &c->m->hp;
    size_t E = hp->n_embd;
    bl_op_rmsnorm(c->s.xb + t * E, c->s.x + t * E, c->m->output_norm, E, hp->rms_eps);
}

static void swiglu(bl_ctx_t *c, uint32_t l, uint32_t t)
{
    size_t F = c->m->hp.n_ff;
    bl_op_swiglu(c->s.gate + t * F, c->s.up + t * F, F);
}

int bl_forward(bl_ctx_t *c, const bl_token_t *tokens, uint32_t n, const atomic_bool *cancel)
{
    const bl_model_t *m = c->m;
    const bl_hparams_t *hp = &m->hp;
    bl_scratch_t *s = &c->s;
    const uint32_t E = hp->n_embd;
    const uint32_t pos0 = c->n_past;

    if (n == 0 || n > s->cap || pos0 + n > c->kv.n_ctx)
        return BL_ECONTEXT;
    for (uint32_t t = 0; t < n; t++) {
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= hp->n_vocab)
            return BL_EINVAL;
        const char *row = (const char *)m->tok_embd.data;
        row += (size_t)tokens[t] * m->tok_embd.row_bytes;
        bl_kern_dequantize_row(m->tok_embd.type, row, s->x + (size_t)t * E, E);
    }

    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if (cancel && atomic_load(cancel))
            return BL_ECANCELED;
        const bl_layer_t *L = &m->layers[l];

        /* attention */
        per_token(c, l, n, attn_norm);
        const bl_mat_t *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *const qkv[3] = {s->q, s->k, s->v};
        matmuls(c, s->xb, n, wqkv, qkv, 3);
        per_token(c, l, n, attn_prep);
        attn_job_t aj = {c, l, n, pos0};
        bl_pool_for(m->pool, (size_t)n * hp->n_head, 0, attn_worker, &aj);
        matmul1(c, s->att, n, &L->wo, s->o);
        bl_op_add(s->x, s->o, (size_t)n * E);

        /* feed-forward */
        per_token(c, l, n, ffn_norm);
        const bl_mat_t *wgu[2] = {&L->w_gate, &L->w_up};
        float *const gu[2] = {s->gate, s->up};
        matmuls(c, s->xb, n, wgu, gu, 2);
        per_token(c, l, n, swiglu);
        matmul1(c, s->gate, n, &L->w_down, s->o);
        bl_op_add(s->x, s->o, (size_t)n * E);
    }

    if (c->embd_sum) {
        /* bl_embed pools every position's hidden state; no logits wanted */
        per_token(c, 0, n, out_norm);
        for (uint32_t t = 0; t < n; t++)
            for (uint32_t i = 0; i < E; i++)
                c->embd_sum[i] += s->xb[(size_t)t * E + i];
        return 0;
    }

    /* Only the last position's logits are needed for generation. */
    bl_op_rmsnorm(s->xlast, s->x + (size_t)(n - 1) * E, m->output_norm, E, hp->rms_eps);
    matmul1(c, s->xlast, 1, &m->output, c->logits);
    c->have_logits = true;
    return 0;
}
