/*
 * The per-architecture part of gguf-gen: the `<arch>.*` metadata keys and
 * the tensors, with names and shapes as llama.cpp's converter
 * (convert_hf_to_gguf.py) writes them for each family:
 *  - llama: rope.dimension_count; separate q/k/v; ffn_gate + ffn_up.
 *  - qwen2: no rope.dimension_count; q/k/v biases (blk.N.attn_q.bias ...).
 *  - qwen3: attention.key_length/value_length (head size need not be
 *    n_embd/n_head); per-head RMSNorm weights attn_q_norm / attn_k_norm.
 *  - phi3: fused attn_qkv (q rows, then k, then v) and ffn_up of 2*n_ff rows
 *    (gate half first, no ffn_gate); LongRoPE as the converter writes a
 *    long-context model: rope.scaling.original_context_length,
 *    rope.scaling.attn_factor, rope_factors_long / rope_factors_short.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/types.h"
#include "gen.h"

static const char *const ARCHS[] = {"llama", "qwen2", "qwen3", "phi3"};

bool gen_arch_known(const char *arch)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (arch && !strcmp(arch, ARCHS[i]))
            return true;
    return false;
}

static bool is(const gen_shape_t *s, const char *arch)
{
    return !strcmp(s->arch, arch);
}

uint32_t gen_head_dim(const gen_shape_t *s)
{
    return s->head_dim ? s->head_dim : s->n_embd / s->n_head;
}

size_t gen_arch_n_tensors(const gen_shape_t *s)
{
    return 5 + (size_t)s->n_layer * 13;
}

int gen_arch_write_kv(bl_gguf_writer_t *w, const gen_shape_t *s)
{
    char k[128];
    int rc = 0;
#define U32(key, v) (snprintf(k, sizeof k, "%s." key, s->arch), bl_gguf_w_u32(w, k, (v)))
#define F32(key, v) (snprintf(k, sizeof k, "%s." key, s->arch), bl_gguf_w_f32(w, k, (v)))
    const uint32_t hd = gen_head_dim(s);
    if ((rc = U32("context_length", s->ctx)) || (rc = U32("embedding_length", s->n_embd)) ||
        (rc = U32("block_count", s->n_layer)) || (rc = U32("feed_forward_length", s->n_ff)) ||
        (rc = U32("attention.head_count", s->n_head)) ||
        (rc = U32("attention.head_count_kv", s->n_head_kv)) ||
        (rc = F32("rope.freq_base", s->rope_base)) ||
        (rc = F32("attention.layer_norm_rms_epsilon", s->rms_eps)))
        return rc;
    if (is(s, "llama") &&
        ((rc = U32("rope.dimension_count", hd)) || (rc = U32("vocab_size", s->n_vocab))))
        return rc;
    if (s->head_dim &&
        ((rc = U32("attention.key_length", hd)) || (rc = U32("attention.value_length", hd))))
        return rc;
    if (is(s, "phi3")) {
        /* a 128k-context model trained at ctx_orig, as Phi-3-mini-128k */
        double scale = (double)s->ctx / (double)s->ctx_orig;
        float attn_factor =
            scale > 1.0 ? (float)sqrt(1.0 + log(scale) / log((double)s->ctx_orig)) : 1.0f;
        /* sliding_window as Phi-3-mini-128k's config; llama.cpp ignores it */
        if ((rc = U32("rope.scaling.original_context_length", s->ctx_orig)) ||
            (rc = U32("rope.dimension_count", hd)) ||
            (rc = U32("attention.sliding_window", 262144)) ||
            (rc = F32("rope.scaling.attn_factor", attn_factor)))
            return rc;
    }
#undef U32
#undef F32
    return 0;
}

int gen_arch_add_tensors(const gen_shape_t *s, uint32_t type, gen_add_fn add, void *ud)
{
    const float std = 0.02f, qk = s->qk_std > 0.0f ? s->qk_std : std;
    const uint32_t E = s->n_embd, hd = gen_head_dim(s);
    const uint64_t QD = (uint64_t)s->n_head * hd, KD = (uint64_t)s->n_head_kv * hd;
    int rc;
    if ((rc = add(ud, "token_embd.weight", type, E, s->n_vocab, 0.0f, std)) ||
        (rc = add(ud, "output_norm.weight", BL_TYPE_F32, E, 1, 1.0f, 0.01f)))
        return rc;
    if (!s->tied && (rc = add(ud, "output.weight", type, E, s->n_vocab, 0.0f, std)))
        return rc;
    if (is(s, "phi3") && s->ctx > s->ctx_orig &&
        ((rc = add(ud, "rope_factors_long.weight", BL_TYPE_F32, hd / 2, 1, 8.0f, 2.0f)) ||
         (rc = add(ud, "rope_factors_short.weight", BL_TYPE_F32, hd / 2, 1, 1.05f, 0.03f))))
        return rc;
    for (uint32_t l = 0; l < s->n_layer; l++) {
        char n[64];
#define T(suffix, ty, a, b, mean, sd)                                                              \
    if ((snprintf(n, sizeof n, "blk.%u." suffix, l), rc = add(ud, n, ty, a, b, mean, sd)))         \
        return rc;
        T("attn_norm.weight", BL_TYPE_F32, E, 1, 1.0f, 0.01f)
        if (is(s, "phi3")) {
            T("attn_qkv.weight", type, E, QD + 2 * KD, 0.0f, qk)
        } else {
            T("attn_q.weight", type, E, QD, 0.0f, qk)
            T("attn_k.weight", type, E, KD, 0.0f, qk)
            T("attn_v.weight", type, E, KD, 0.0f, std)
        }
        if (is(s, "qwen2")) {
            /* biases are large in real Qwen2 k projections; keep them visible */
            T("attn_q.bias", BL_TYPE_F32, QD, 1, 0.0f, 0.1f)
            T("attn_k.bias", BL_TYPE_F32, KD, 1, 0.0f, 0.5f)
            T("attn_v.bias", BL_TYPE_F32, KD, 1, 0.0f, 0.1f)
        }
        if (is(s, "qwen3")) {
            T("attn_q_norm.weight", BL_TYPE_F32, hd, 1, 1.0f, 0.1f)
            T("attn_k_norm.weight", BL_TYPE_F32, hd, 1, 1.0f, 0.1f)
        }
        T("attn_output.weight", type, QD, E, 0.0f, std)
        T("ffn_norm.weight", BL_TYPE_F32, E, 1, 1.0f, 0.01f)
        if (is(s, "phi3")) {
            T("ffn_up.weight", type, E, 2 * (uint64_t)s->n_ff, 0.0f, std)
        } else {
            T("ffn_gate.weight", type, E, s->n_ff, 0.0f, std)
            T("ffn_up.weight", type, E, s->n_ff, 0.0f, std)
        }
        T("ffn_down.weight", type, s->n_ff, E, 0.0f, std)
#undef T
    }
    return 0;
}
