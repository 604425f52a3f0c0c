/*
 * bl_op_attend for head sizes that are a multiple of 16, with AVX2 + F16C.
 *
 * Same algorithm as the scalar version in ops.c (F16 query, online softmax,
 * F16 accumulator), with the arithmetic of ggml's AVX-512 build of it, the
 * llama.cpp we compare against: the first (head_dim & ~63) elements of the
 * K.q dot product are summed in four 16-lane F32 accumulators with fused
 * multiply-adds and reduced as a tree, the rest in double; the accumulator
 * update is a fused multiply-add for those elements and a multiply then add
 * for the rest, rounded to F16 either way. On random-weight models, where
 * logits nearly tie, matching the rounding keeps greedy paths identical.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/ops.h"

/* Round 8 floats to F16 precision and back. */
static inline __m256 r16(__m256 v)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

static inline __m256 load16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Sum of 16 lanes (lo = lanes 0..7, hi = 8..15) in the order of
 * _mm512_reduce_add_ps: halves, then quarters, then pairs. */
static inline float reduce16(__m256 lo, __m256 hi)
{
    __m256 h = _mm256_add_ps(hi, lo);
    __m128 g = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    __m128 f = _mm_add_ps(g, _mm_movehl_ps(g, g)); /* f0 = g0 + g2, f1 = g1 + g3 */
    return _mm_cvtss_f32(_mm_add_ss(f, _mm_movehdup_ps(f)));
}

void bl_op_attend_avx2(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                       size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale)
{
    __m256 qh[64], acc[64]; /* head_dim <= 512 */
    const uint32_t nb = head_dim / 8;
    const uint32_t np = head_dim & ~63u; /* the SIMD part of ggml's loops */
    for (uint32_t b = 0; b < nb; b++) {
        qh[b] = r16(_mm256_loadu_ps(q + 8 * b));
        acc[b] = _mm256_setzero_ps();
    }
    float M = -INFINITY, S = 0.0f;
    for (uint32_t j = 0; j < n_kv; j++) {
        const uint16_t *kj = k + (size_t)j * kv_stride;
        const uint16_t *vj = v + (size_t)j * kv_stride;
        /* accumulator a (0..3) holds lanes 16a .. 16a+15 of each 64-element step */
        __m256 a0l = _mm256_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l;
        __m256 a2l = a0l, a2h = a0l, a3l = a0l, a3h = a0l;
        for (uint32_t i = 0; i < np; i += 64) {
            const uint32_t b = i / 8;
            a0l = _mm256_fmadd_ps(load16(kj + i), qh[b], a0l);
            a0h = _mm256_fmadd_ps(load16(kj + i + 8), qh[b + 1], a0h);
            a1l = _mm256_fmadd_ps(load16(kj + i + 16), qh[b + 2], a1l);
            a1h = _mm256_fmadd_ps(load16(kj + i + 24), qh[b + 3], a1h);
            a2l = _mm256_fmadd_ps(load16(kj + i + 32), qh[b + 4], a2l);
            a2h = _mm256_fmadd_ps(load16(kj + i + 40), qh[b + 5], a2h);
            a3l = _mm256_fmadd_ps(load16(kj + i + 48), qh[b + 6], a3l);
            a3h = _mm256_fmadd_ps(load16(kj + i + 56), qh[b + 7], a3h);
        }
        double dot = 0;
        if (np) {
            __m256 xl = _mm256_add_ps(_mm256_add_ps(a0l, a2l), _mm256_add_ps(a1l, a3l));
            __m256 xh = _mm256_add_ps(_mm256_add_ps(a0h, a2h), _mm256_add_ps(a1h, a3h));
            dot = (double)reduce16(xl, xh);
        }
        if (np < head_dim) {
            __m256 kq[8];
            for (uint32_t b = np / 8; b < nb; b++)
                kq[b - np / 8] = _mm256_mul_ps(load16(kj + 8 * b), qh[b]);
            /* (products rounded to F32, then summed in double) */
            const float *p = (const float *)kq;
            for (uint32_t d = 0; d < head_dim - np; d++)
                dot += (double)p[d];
        }
        const float s = (float)dot * scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            const float m_old = M;
            M = s;
            ms = expf(m_old - M);
            __m256 msv = _mm256_set1_ps(ms);
            for (uint32_t b = 0; b < nb; b++)
                acc[b] = r16(_mm256_mul_ps(acc[b], msv));
        } else {
            vs = expf(s - M);
        }
        __m256 vsv = _mm256_set1_ps(vs);
        for (uint32_t b = 0; b < np / 8; b++)
            acc[b] = r16(_mm256_fmadd_ps(load16(vj + 8 * b), vsv, acc[b]));
        for (uint32_t b = np / 8; b < nb; b++) {
            __m256 prod = _mm256_mul_ps(load16(vj + 8 * b), vsv);
            __asm__("" : "+x"(prod)); /* a multiply then an add: keep them unfused */
            acc[b] = r16(_mm256_add_ps(acc[b], prod));
        }
        S = S * ms + vs;
    }
    const __m256 inv = _mm256_set1_ps(S == 0.0f ? 0.0f : 1.0f / S);
    for (uint32_t b = 0; b < nb; b++)
        _mm256_storeu_ps(out + 8 * b, _mm256_mul_ps(acc[b], inv));
}

#define ATTN_TILE 64

static inline float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}

/* The tiled variant (see ops.h): F32 query and accumulator. */
void bl_op_attend_tiled_avx2(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                             size_t kv_stride, uint32_t head_dim, uint32_t n_kv, float scale)
{
    __m256 qv[64], acc[64];
    float s[ATTN_TILE];
    const uint32_t nb = head_dim / 8;
    for (uint32_t b = 0; b < nb; b++) {
        qv[b] = _mm256_loadu_ps(q + 8 * b);
        acc[b] = _mm256_setzero_ps();
    }
    float M = -INFINITY;
    double S = 0;
    for (uint32_t j0 = 0; j0 < n_kv; j0 += ATTN_TILE) {
        uint32_t nt = n_kv - j0 < ATTN_TILE ? n_kv - j0 : ATTN_TILE;
        float m = -INFINITY;
        for (uint32_t i = 0; i < nt; i++) {
            const uint16_t *kj = k + (size_t)(j0 + i) * kv_stride;
            __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
            for (uint32_t b = 0; b < nb; b += 2) {
                d0 = _mm256_fmadd_ps(load16(kj + 8 * b), qv[b], d0);
                d1 = _mm256_fmadd_ps(load16(kj + 8 * b + 8), qv[b + 1], d1);
            }
            s[i] = hsum8(_mm256_add_ps(d0, d1)) * scale;
            if (s[i] > m)
                m = s[i];
        }
        const float m_new = m > M ? m : M;
        const float ms = expf(M - m_new);
        const __m256 msv = _mm256_set1_ps(ms);
        for (uint32_t b = 0; b < nb; b++)
            acc[b] = _mm256_mul_ps(acc[b], msv);
        S *= ms;
        M = m_new;
        for (uint32_t i = 0; i < nt; i++) {
            const uint16_t *vj = v + (size_t)(j0 + i) * kv_stride;
            const float p = expf(s[i] - M);
            S += p;
            const __m256 pv = _mm256_set1_ps(p);
            for (uint32_t b = 0; b < nb; b++)
                acc[b] = _mm256_fmadd_ps(load16(vj + 8 * b), pv, acc[b]);
        }
    }
    const __m256 inv = _mm256_set1_ps(S == 0 ? 0.0f : (float)(1.0 / S));
    for (uint32_t b = 0; b < nb; b++)
        _mm256_storeu_ps(out + 8 * b, _mm256_mul_ps(acc[b], inv));
}
