/*
 * Q5_0 and Q5_1 x Q8 activations with AVX2, in ggml's x86 summation order
 * (see dot_rows). Per block the 32 fifth bits become bytes (a 4-byte
 * broadcast, a byte shuffle so each byte sees its bit's byte, a bit-select
 * and compare) or-ed as 0x10 onto the nibbles, so vpmaddubsw multiplies
 * unsigned quants 0..31 with the signed activations.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define AI __attribute__((always_inline)) static inline

/* the 32 quants 0..31 of a block, in element order */
AI __m256i quants(const uint8_t *qh4, const uint8_t *qs)
{
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    h = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
    return _mm256_or_si256(nib, _mm256_and_si256(h, _mm256_set1_epi8(0x10)));
}

/* Rows r .. r+R-1 against one column in ggml's order (kern_impl.h,
 * bl_lanes_fma): per block eight int32 lanes (Q5_0's "-16" per int16 pair,
 * as ggml's signed quants give), one fma of the block scale. R rows share
 * the activation loads, and their independent fma chains hide each other's
 * latency; the rows are adjacent in memory, so one linear prefetch covers
 * them. Q5_1's min m * s (ggml's Q8_1 s, q8_1_act.c) is summed per row in a
 * float beside the lanes, added last. */
AI void dot_rows(const uint8_t *const *w, const int R, const int8_t *qa, const float *da,
                 const float *sf, size_t nb, float *out, const int is_q5_1)
{
    const size_t QB = is_q5_1 ? 24 : 22, off = is_q5_1 ? 4 : 2;
    const __m256i ones = _mm256_set1_epi16(1), m16 = _mm256_set1_epi8(16);
    __m256 acc[4];
    float msum[4];
    for (int i = 0; i < R; i++)
        acc[i] = _mm256_setzero_ps(), msum[i] = 0.0f;
    const size_t pf_base = (size_t)R * nb * QB + BL_PF_BYTES; /* see BL_PF_BYTES */
    for (size_t b = 0; b < nb; b++) {
        for (size_t k = 0; k < (size_t)R * QB; k += 64)
            _mm_prefetch((const char *)w[0] + pf_base + b * (size_t)R * QB + k, _MM_HINT_T0);
        const __m256i a = _mm256_loadu_si256((const __m256i *)(qa + 32 * b));
        const __m256i corr = _mm256_maddubs_epi16(m16, a);
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = w[i] + b * QB;
            __m256i p = _mm256_maddubs_epi16(quants(blk + off, blk + off + 4), a);
            if (!is_q5_1)
                p = _mm256_sub_epi16(p, corr);
            const float d = h2f(bl_ld16(blk)) * da[b];
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)),
                                     _mm256_set1_ps(d), acc[i]);
            if (is_q5_1)
                msum[i] = fmaf(h2f(bl_ld16(blk + 2)), sf[b], msum[i]);
        }
    }
    for (int i = 0; i < R; i++)
        out[i] = is_q5_1 ? hsum8(acc[i]) + msum[i] : hsum8(acc[i]);
}

AI void matmul(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols, float *y,
               size_t ldy, size_t r0, size_t r1, const int is_q5_1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    /* rows outside, columns inside: a prefill's columns find the rows'
     * weights in cache */
    for (size_t r = r0; r < r1;) {
        const size_t nr = r1 - r >= 4 ? 4 : 1;
        const uint8_t *w[4];
        for (size_t i = 0; i < nr; i++)
            w[i] = (const uint8_t *)W + (r + i) * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            const int8_t *qa = bl_q8a_qs(col);
            const float *da = bl_q8a_d(col, nb), *sf = bl_q8a_sf(col, nb);
            float out[4];
            if (nr == 4)
                dot_rows(w, 4, qa, da, sf, nb, out, is_q5_1);
            else
                dot_rows(w, 1, qa, da, sf, nb, out, is_q5_1);
            for (size_t i = 0; i < nr; i++)
                y[c * ldy + r + i] = out[i];
        }
        r += nr;
    }
}

BL_MM_DECL(bl_q5_0_matmul_avx2);
BL_MM_DECL(bl_q5_1_matmul_avx2);
BL_MM_DECL(bl_q5_0_matmul_avx2)
{
    matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1, 0);
}
BL_MM_DECL(bl_q5_1_matmul_avx2)
{
    matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1, 1);
}
