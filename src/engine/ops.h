/*
 * The elementwise and per-head operations of the transformer, in F32, as
 * llama.cpp (ggml's CPU backend) computes them, so logits agree closely.
 */
#ifndef BL_ENGINE_OPS_H
#define BL_ENGINE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* out = x / sqrt(mean(x^2) + eps) * w */
void bl_op_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps);
/* RoPE as ggml computes it (ext_factor 0): pair i of the first n_rot dims
 * turns by angle freq_scale * pos * base^(-2i/n_rot) / freq_factors[i], and
 * cos and sin are multiplied by mscale. Pair i is dims (2i, 2i+1) in the
 * normal layout (llama), (i, i + n_rot/2) in the NEOX layout (qwen2, qwen3,
 * phi3). freq_factors (n_rot/2 divisors) may be NULL. */
typedef struct {
    uint32_t n_rot;
    bool neox;
    float base, freq_scale, mscale;
    const float *freq_factors;
} bl_rope_t;
void bl_op_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos, const bl_rope_t *r);
void bl_op_scale(float *x, float s, size_t n);
/* gate = silu(gate) * up */
void bl_op_swiglu(float *gate, const float *up, size_t n);
void bl_op_add(float *x, const float *y, size_t n);

/* Causal attention of one query head over positions [0, n_kv) of an F16
 * cache, as ggml's CPU flash attention computes it. k and v step kv_stride
 * elements per position. Two variants, like ggml's:
 *  - bl_op_attend: decode and small batches (ggml's "one chunk" kernel): F16
 *    query, online softmax, F16 accumulator rounded at every step;
 *  - bl_op_attend_tiled: batches of BL_ATTN_TILED_MIN tokens or more (ggml's
 *    tiled kernel): F32 query and accumulator, softmax per tile of 64
 *    positions with the normalizer summed in double. */
#define BL_ATTN_TILED_MIN 64
void bl_op_attend(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                  size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale);
void bl_op_attend_tiled(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                        size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale);

/* The same for head_dim a multiple of 16, with AVX2/F16C (attn_avx2.c);
 * only call them when the CPU has AVX2. */
void bl_op_attend_avx2(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                       size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale);
void bl_op_attend_tiled_avx2(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                             size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale);

/* Row conversions between F32 and F16 (round to nearest even). */
void bl_op_f32_to_f16(uint16_t *dst, const float *src, size_t n);

#endif
