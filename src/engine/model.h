/*
 * The engine's internal model and sequence state.
 *
 * bl_model holds what every sequence shares read-only: hyper-parameters, the
 * weights (pointers into the GGUF mapping), the tokenizer and the thread pool.
 * bl_ctx holds what belongs to one sequence: its KV cache, its tokens, the
 * logits of its last position and its scratch buffers. A later batch
 * scheduler can run several contexts' tokens through one matmul because
 * nothing per-sequence lives in the model.
 */
#ifndef BL_ENGINE_MODEL_H
#define BL_ENGINE_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ballast/engine.h>

#include "engine/chat/chat.h"
#include "engine/gguf/gguf.h"
#include "engine/threadpool.h"
#include "engine/tokenizer/tokenizer.h"

/* A weight matrix with n_out rows of n_in elements in its GGUF type. */
typedef struct {
    uint32_t type;
    const void *data;
    size_t row_bytes;
    uint32_t n_in, n_out;
} bl_mat_t;

/* One transformer block. The optional pieces are what tells the families
 * apart: qwen2 has q/k/v biases, qwen3 per-head q/k norms, phi3 one fused
 * attn_qkv (wq, wk, wv are then row ranges of it) and one fused ffn_up
 * (w_gate and w_up are its two halves). */
typedef struct {
    const float *attn_norm; /* n_embd */
    bl_mat_t wq, wk, wv, wo;
    const float *bq, *bk, *bv;    /* biases or NULL */
    const float *q_norm, *k_norm; /* head_dim, or NULL */
    const float *ffn_norm;        /* n_embd */
    bl_mat_t w_gate, w_up, w_down;
} bl_layer_t;

/* Which dims RoPE rotates together (llama.cpp's rope types): NORM pairs
 * (2i, 2i+1) (llama); NEOX pairs (i, i + n_rot/2) (qwen2, qwen3, phi3). */
typedef enum { BL_ROPE_NORM, BL_ROPE_NEOX } bl_rope_layout_t;

typedef struct {
    uint32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint32_t head_dim; /* key/value length per head */
    uint32_t n_rot;    /* rope.dimension_count: leading dims of a head that rotate */
    float rms_eps;
    float rope_base;
    float rope_freq_scale;  /* 1/factor for linear scaling, else 1 */
    float rope_attn_factor; /* rope.scaling.attn_factor (LongRoPE): scales cos and sin */
    uint32_t n_ctx_orig;    /* rope.scaling.original_context_length */
    bl_rope_layout_t rope_layout;
    bool scale_q; /* phi3: q is scaled by 1/sqrt(head_dim) before attention, not the scores */
} bl_hparams_t;

struct bl_model {
    bl_model_info_t info;
    bl_hparams_t hp;
    bl_gguf_t *gguf;
    bl_tok_t *tok;
    bl_pool_t *pool;
    pthread_mutex_t run_lock; /* one forward pass at a time (shared pool) */
    bl_mat_t tok_embd;        /* n_vocab rows of n_embd */
    bl_mat_t output;          /* may alias tok_embd (tied) */
    const float *output_norm;
    const float *rope_freqs; /* n_rot/2 divisors or NULL (llama3 scaling) */
    /* LongRoPE divisors (phi3), n_rot/2 each or NULL: long when a context is
     * larger than n_ctx_orig, as llama.cpp picks them. */
    const float *rope_long, *rope_short;
    bl_layer_t *layers;
    float *owned; /* norm vectors converted to F32 at load */
    char file_type[16];
    char isa_name[32];
    bl_chat_family_t chat_family; /* detected from info.chat_template at load */
    bool chat_known;              /* false: no/unrecognised template, ChatML used */
    /* bl_ctx_feed_batch runs the multi-column kernels (weight decoding
     * shared between sequences, but sums ordered differently from the
     * single-column ones: logits differ from bl_ctx_feed alone by float
     * rounding, carried along the KV cache). false at load: per-column
     * kernels, bit for bit what each sequence gets alone (see batch.c). */
    bool batch_multicol;
    /* The vocabulary trie for grammar-constrained sampling, built on first
     * use (engine/grammar/vocab.c). */
    _Atomic(struct bl_vtrie *) vtrie;
};

/* Load hyper-parameters and bind tensors; m->gguf must be open. */
int bl_model_bind(bl_model_t *m, const char *path, char *err, size_t errlen);

/* Largest prompt chunk one forward pass takes (bounds scratch memory). */
#define BL_MAX_BATCH 256

typedef struct {
    uint32_t n_ctx;
    size_t row;      /* elements per position per layer: n_head_kv * head_dim */
    uint16_t *k, *v; /* [n_layer][n_ctx][row] as F16, like llama.cpp's default cache */
} bl_kv_t;

int bl_kv_init(bl_kv_t *kv, const bl_hparams_t *hp, uint32_t n_ctx);
void bl_kv_free(bl_kv_t *kv);
uint16_t *bl_kv_k(const bl_kv_t *kv, uint32_t layer, uint32_t pos);
uint16_t *bl_kv_v(const bl_kv_t *kv, uint32_t layer, uint32_t pos);

/* Per-sequence scratch for a batch of up to BL_MAX_BATCH tokens. */
typedef struct {
    uint32_t cap; /* tokens the buffers hold */
    float *x, *xb, *q, *k, *v, *att, *o, *gate, *up;
    void *act; /* prepared activations for a matmul */
    size_t act_cap;
    float *xlast; /* final normed hidden state of the last token */
} bl_scratch_t;

struct bl_ctx {
    bl_model_t *m;
    bl_kv_t kv;
    uint32_t n_past;
    bl_token_t *tokens; /* n_ctx */
    /* The last token bl_generate sampled (and showed) without running the
     * forward pass on it, or -1; the next feed runs it first. */
    bl_token_t pending;
    float *logits; /* n_vocab */
    bool have_logits;
    bl_scratch_t s;
    /* Non-NULL while bl_embed runs (embed.c): the forward pass adds every
     * position's final normed hidden state here (n_embd sums) instead of
     * computing logits. */
    double *embd_sum;
};

/* Run the forward pass for n tokens at positions n_past.. (n <= BL_MAX_BATCH,
 * fits the cache); fills c->logits for the last one. */
int bl_forward(bl_ctx_t *c, const bl_token_t *tokens, uint32_t n, const atomic_bool *cancel);

/* Pieces of the forward pass (forward.c) that the batched decode (batch.c)
 * shares, so a sequence in a batch computes exactly what it would alone. */

/* y[i] = W[i] x for k <= 3 matrices sharing x (ncols columns of n_in floats;
 * column c of y[i] at y[i] + c * n_out), split by rows across the pool. act
 * holds 3 buffers of act_cap bytes for the prepared input. by_column runs
 * the kernel one column at a time over small row blocks: bit for bit what
 * ncols = 1 gives (the multi-column kernels order their sums differently),
 * with the weights still read from memory once, but no weight decoding
 * shared between columns. ycol (k == 1 and ncols <= BL_MAX_BATCH only;
 * else NULL) puts column c's output at ycol[c] instead. */
void bl_fwd_matmuls(bl_pool_t *pool, void *act, size_t act_cap, const float *x, uint32_t ncols,
                    const bl_mat_t *const *w, float *const *y, int k, bool by_column,
                    float *const *ycol);
/* One position's q, k, v after the projections: biases, q/k norms, RoPE at
 * pos; k and v go into c's cache at pos. */
void bl_fwd_attn_prep(bl_ctx_t *c, uint32_t layer, uint32_t pos, float *q, float *k, float *v);
/* Query head h (q, head_dim floats) against c's cache positions [0, n_kv);
 * tiled picks the long-prompt kernel. */
void bl_fwd_attend(const bl_ctx_t *c, uint32_t layer, uint32_t h, const float *q, float *out,
                   uint32_t n_kv, bool tiled);

#endif
