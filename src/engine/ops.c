/* Transformer elementwise ops; see ops.h. Orders of operations follow
 * ggml's CPU backend (double sums in rmsnorm, iterative rope angles). */
#include "engine/ops.h"

#include <math.h>
#include <pthread.h>

#include "engine/kernels/kernels.h"

/* F16 -> F32 by table: attention reads every cached key and value. */
static float g_f16[1 << 16];
static pthread_once_t g_f16_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++)
        g_f16[i] = bl_fp16_to_f32((uint16_t)i);
}

static inline float round16(float f)
{
    return g_f16[bl_f32_to_fp16(f)];
}

void bl_op_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

void bl_op_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos, const bl_rope_t *r)
{
    float cs[512]; /* cos, sin per pair; n_rot <= head_dim <= 512 checked at load */
    const uint32_t n_rot = r->n_rot;
    const float theta_scale = powf(r->base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (uint32_t i = 0; i < n_rot; i += 2) {
        const float ff = r->freq_factors ? r->freq_factors[i / 2] : 1.0f;
        const float t = r->freq_scale * (theta / ff);
        cs[i] = cosf(t) * r->mscale;
        cs[i + 1] = sinf(t) * r->mscale;
        theta *= theta_scale;
    }
    /* pair i/2 is (v[a], v[a + off]) */
    const uint32_t off = r->neox ? n_rot / 2 : 1;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (uint32_t i = 0; i < n_rot; i += 2) {
            const uint32_t a = r->neox ? i / 2 : i;
            const float x0 = v[a], x1 = v[a + off];
            v[a] = x0 * cs[i] - x1 * cs[i + 1];
            v[a + off] = x0 * cs[i + 1] + x1 * cs[i];
        }
    }
}

void bl_op_scale(float *x, float s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

void bl_op_swiglu(float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void bl_op_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

void bl_op_f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = bl_f32_to_fp16(src[i]);
}

void bl_op_attend(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                  size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale)
{
    pthread_once(&g_f16_once, f16_table_init);
    float qh[512], acc[512]; /* head_dim <= 512 checked at load */
    for (uint32_t d = 0; d < head_dim; d++) {
        qh[d] = round16(q[d]); /* the query meets F16 keys as F16 */
        acc[d] = 0.0f;
    }
    float M = -INFINITY, S = 0.0f;
    for (uint32_t j = 0; j < n_kv; j++) {
        const uint16_t *kj = k + (size_t)j * kv_stride;
        const uint16_t *vj = v + (size_t)j * kv_stride;
        double dot = 0;
        for (uint32_t d = 0; d < head_dim; d++)
            dot += (double)(g_f16[kj[d]] * qh[d]);
        const float s = (float)dot * scale;
        /* Online softmax: the accumulator is rescaled when the max grows. It
         * is kept at F16 precision after every update, as ggml does. */
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            const float m_old = M;
            M = s;
            ms = expf(m_old - M);
            for (uint32_t d = 0; d < head_dim; d++)
                acc[d] = round16(acc[d] * ms);
        } else {
            vs = expf(s - M);
        }
        for (uint32_t d = 0; d < head_dim; d++)
            acc[d] = round16(acc[d] + g_f16[vj[d]] * vs);
        S = S * ms + vs;
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (uint32_t d = 0; d < head_dim; d++)
        out[d] = acc[d] * inv;
}

/* Positions per softmax tile of the tiled variant (ggml's KV tile). */
#define ATTN_TILE 64

void bl_op_attend_tiled(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                        size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale)
{
    pthread_once(&g_f16_once, f16_table_init);
    float acc[512], s[ATTN_TILE]; /* head_dim <= 512 checked at load */
    for (uint32_t d = 0; d < head_dim; d++)
        acc[d] = 0.0f;
    float M = -INFINITY;
    double S = 0;
    for (uint32_t j0 = 0; j0 < n_kv; j0 += ATTN_TILE) {
        uint32_t nt = n_kv - j0 < ATTN_TILE ? n_kv - j0 : ATTN_TILE;
        float m = -INFINITY;
        for (uint32_t i = 0; i < nt; i++) {
            const uint16_t *kj = k + (size_t)(j0 + i) * kv_stride;
            float dot = 0.0f;
            for (uint32_t d = 0; d < head_dim; d++)
                dot += g_f16[kj[d]] * q[d];
            s[i] = dot * scale;
            if (s[i] > m)
                m = s[i];
        }
        /* rescale what came before to the new maximum */
        const float m_new = m > M ? m : M;
        const float ms = expf(M - m_new);
        for (uint32_t d = 0; d < head_dim; d++)
            acc[d] *= ms;
        S *= ms;
        M = m_new;
        for (uint32_t i = 0; i < nt; i++) {
            const uint16_t *vj = v + (size_t)(j0 + i) * kv_stride;
            const float p = expf(s[i] - M);
            S += p;
            for (uint32_t d = 0; d < head_dim; d++)
                acc[d] += p * g_f16[vj[d]];
        }
    }
    const float inv = S == 0 ? 0.0f : (float)(1.0 / S);
    for (uint32_t d = 0; d < head_dim; d++)
        out[d] = acc[d] * inv;
}
