/*
 * Q5_0 and Q5_1 x Q8 activations with AVX-512 (BW, VNNI), computing what
 * ggml's x86 dot products compute, bit for bit (kern_impl.h, bl_lanes_fma):
 * per block eight int32 lanes, lane k the dot product of elements 4k..4k+3,
 * one fma of the block scale into eight float lanes, hsum_float_8 at the end.
 *
 * Those fmas chain block after block within a row, so a zmm carries two rows
 * (row r in the low 256 bits, r+1 in the high) and four zmm accumulators
 * eight rows, which hides the chains' latency. Per block and row pair: the
 * 2 x 16 nibble bytes broadcast to [r lo | r hi | r+1 lo | r+1 hi] and
 * masked-shifted, the fifth bits straight from the two qh words as a 64-bit
 * byte mask (a masked add of 16), one vpdpbusd against the activations
 * broadcast to both halves. Q5_0's "-16" starts that vpdpbusd at -16 times
 * each lane's activation sum; Q5_1's min is m * s (ggml's Q8_1 s, see
 * q8_1_act.c) summed per row in a float beside the lanes, added last.
 * Built without VNNI this file is never called: bl_kern_fill_avx512 checks.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define AI __attribute__((always_inline)) static inline

/* the 32 quants (0..31) of block b0 in the low half, of block b1 in the high */
AI __m512i quants2(const uint8_t *b0, const uint8_t *b1, size_t off)
{
    const __m256i q0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + off + 4)));
    const __m256i q1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b1 + off + 4)));
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    /* 128-bit lanes 1 and 3 take the high nibbles (elements 16..31) */
    q = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xff00ff00u, q, 4), _mm512_set1_epi8(0x0f));
    uint32_t h0, h1;
    memcpy(&h0, b0 + off, 4);
    memcpy(&h1, b1 + off, 4);
    return _mm512_mask_add_epi8(q, (__mmask64)h1 << 32 | h0, q, _mm512_set1_epi8(16));
}

/* rows r .. r+2P-1 (row pointers in w) against one column */
AI void pairs(const uint8_t *const *w, const int P, const int8_t *qa, const float *da,
              const float *sf, size_t nb, float *out, const int is_q5_1)
{
    const size_t QB = is_q5_1 ? 24 : 22, off = is_q5_1 ? 4 : 2;
    const __m256i m16 = _mm256_set1_epi8(16), ones = _mm256_set1_epi16(1);
    __m512 acc[4];
    float summs[8];
    for (int p = 0; p < P; p++)
        acc[p] = _mm512_setzero_ps();
    for (int i = 0; i < 2 * P; i++)
        summs[i] = 0.0f;
    const size_t pf_base = 2 * (size_t)P * nb * QB + BL_PF_BYTES;
    for (size_t b = 0; b < nb; b++) {
        /* the 2P rows are adjacent in memory and read at the same pace:
         * prefetch the bytes this step consumes, BL_PF_BYTES past the group */
        for (size_t k = 0; k < 2 * (size_t)P * QB; k += 64)
            _mm_prefetch((const char *)w[0] + pf_base + b * 2 * (size_t)P * QB + k, _MM_HINT_T0);
        const __m256i a = _mm256_loadu_si256((const __m256i *)(qa + 32 * b));
        const __m512i a2 = _mm512_broadcast_i64x4(a);
        __m512i init = _mm512_setzero_si512();
        if (!is_q5_1) /* -16 * (activation sum of lane k) */
            init = _mm512_broadcast_i64x4(_mm256_sub_epi32(
                _mm256_setzero_si256(), _mm256_madd_epi16(_mm256_maddubs_epi16(m16, a), ones)));
        const __m512 dab = _mm512_set1_ps(da[b]);
        for (int p = 0; p < P; p++) {
            const uint8_t *b0 = w[2 * p] + b * QB, *b1 = w[2 * p + 1] + b * QB;
            const __m512i l = _mm512_dpbusd_epi32(init, quants2(b0, b1, off), a2);
            const __m512 dw = _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16((short)bl_ld16(b1)),
                                                               _mm_set1_epi16((short)bl_ld16(b0))));
            acc[p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dab), _mm512_cvtepi32_ps(l), acc[p]);
            if (is_q5_1) {
                summs[2 * p] = fmaf(h2f(bl_ld16(b0 + 2)), sf[b], summs[2 * p]);
                summs[2 * p + 1] = fmaf(h2f(bl_ld16(b1 + 2)), sf[b], summs[2 * p + 1]);
            }
        }
    }
    for (int p = 0; p < P; p++) {
        out[2 * p] = hsum8(_mm512_castps512_ps256(acc[p]));
        out[2 * p + 1] = hsum8(_mm512_extractf32x8_ps(acc[p], 1));
        if (is_q5_1) {
            out[2 * p] += summs[2 * p];
            out[2 * p + 1] += summs[2 * p + 1];
        }
    }
}

AI void matmul(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols, float *y,
               size_t ldy, size_t r0, size_t r1, const int is_q5_1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    /* rows outside, columns inside: a prefill's columns find the group's
     * weights in cache */
    for (size_t r = r0; r < r1;) {
        const size_t nr = r1 - r >= 8 ? 8 : r1 - r;
        const uint8_t *w[8];
        for (size_t i = 0; i < 8; i++) /* a missing last row repeats the one before */
            w[i] = (const uint8_t *)W + (r + (i < nr ? i : nr - 1)) * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            const int8_t *qa = bl_q8a_qs(col);
            const float *da = bl_q8a_d(col, nb), *sf = bl_q8a_sf(col, nb);
            float out[8];
            if (nr == 8)
                pairs(w, 4, qa, da, sf, nb, out, is_q5_1);
            else
                for (size_t i = 0; i < nr; i += 2)
                    pairs(w + i, 1, qa, da, sf, nb, out + i, is_q5_1);
            for (size_t i = 0; i < nr; i++)
                y[c * ldy + r + i] = out[i];
        }
        r += nr;
    }
}

BL_MM_DECL(bl_q5_0_matmul_avx512_vnni);
BL_MM_DECL(bl_q5_1_matmul_avx512_vnni);
BL_MM_DECL(bl_q5_0_matmul_avx512_vnni)
{
    matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1, 0);
}
BL_MM_DECL(bl_q5_1_matmul_avx512_vnni)
{
    matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1, 1);
}
