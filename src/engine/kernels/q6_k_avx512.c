/*
 * Q6_K x Q8_K activations with AVX-512 (BW, VNNI). Per half super-block:
 * the 64 bytes of low nibbles in one zmm and the 32 bytes of high bit pairs
 * broadcast to both halves, so variable 16-bit shifts (vpsllvw/vpsrlvw)
 * bring bit pairs 0/1 (elements 0..63) or 2/3 (64..127) to bits 4-5 in one
 * step; two registers then hold the half's 128 quants (0..63) in element
 * order. vpmaddubsw makes int16 pairs (at most 2 * 63 * 127), vpdpwssd
 * multiplies by the groups' int8 scales and adds into int32. The "-32" is
 * 32 * sum(scale * group activation sum), once per super-block.
 * Built without VNNI this file is never called: bl_kern_fill_avx512 checks.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define QB 210

static float dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa,
                     size_t nb)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
    /* shift counts: bit pair 0 up by 4 (low half), pair 1 up by 2 (high) */
    const __m512i up =
        _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
    const __m512i down =
        _mm512_mask_blend_epi16(0xffff0000u, _mm512_setzero_si512(), _mm512_set1_epi16(2));
    /* group scale per int16 lane: 8 lanes per group of 16 elements */
    const __m512i g0 = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1,
                                        1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i four = _mm512_set1_epi16(4);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QB;
        const char *pf = (const char *)blk + BL_PF_BYTES; /* see BL_PF_BYTES */
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        _mm_prefetch(pf + 192, _MM_HINT_T0);
        const int8_t *a = qa + b * BL_QKK;
        const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
        const __m512i sz = _mm512_castsi256_si512(s16);
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)), s16);
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512i l = _mm512_loadu_si512(blk + 64 * h);
            __m512i hb =
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h)));
            __m512i q01 = _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4),
                                                    _mm512_sllv_epi16(hb, up), m2, 0xf8);
            __m512i q23 = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                                    _mm512_srlv_epi16(hb, down), m2, 0xf8);
            __m512i p01 = _mm512_maddubs_epi16(q01, _mm512_loadu_si512(a + 128 * h));
            __m512i p23 = _mm512_maddubs_epi16(q23, _mm512_loadu_si512(a + 128 * h + 64));
            const __m512i i01 = _mm512_add_epi16(g0, _mm512_set1_epi16((short)(8 * h)));
            isum = _mm512_dpwssd_epi32(isum, p01, _mm512_permutexvar_epi16(i01, sz));
            isum = _mm512_dpwssd_epi32(isum, p23,
                                       _mm512_permutexvar_epi16(_mm512_add_epi16(i01, four), sz));
        }
        /* both halves hold ggml's lanes (bytes 4k..4k+3 of a 32-element
         * chunk): fold them in integers, take 32 * corr off, then ggml's
         * eight float lanes (kern_impl.h) */
        __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(isum),
                                      _mm512_extracti64x4_epi64(isum, 1));
        i8 = _mm256_sub_epi32(i8, _mm256_slli_epi32(corr, 5));
        const float d = da[b] * h2f(bl_ld16(blk + 208));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8), _mm256_set1_ps(d), acc);
    }
    return hsum8(acc);
}

void bl_q6_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q6_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK, cs = nb * BL_Q8K_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            y[c * ldy + r] = dot_row(w, bl_q8k_qs(col), bl_q8k_d(col, nb), bl_q8k_s(col, nb), nb);
        }
    }
}
