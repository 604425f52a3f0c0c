/*
 * Q4_K x Q8_K activations with AVX-512 (BW, VNNI). Each 32 bytes of quants
 * are broadcast to both halves of a zmm; the low half keeps the low nibbles
 * (sub-block 2i) and the high half the high ones (2i+1), which puts the 64
 * quants in element order against one plain load of activations.
 * vpmaddubsw makes int16 pairs (at most 2 * 15 * 127) and vpdpwssd
 * multiplies them by the sub-block scales and adds into int32 in one step.
 * Built without VNNI this file is never called: bl_kern_fill_avx512 checks.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define QB 144

static inline float h2f(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa,
                     size_t nb)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QB;
        const char *pf = (const char *)blk + BL_PF_BYTES; /* see BL_PF_BYTES */
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        uint8_t sc[8], m[8];
        bl_k4_scales(blk + 4, sc, m);
        const float d = h2f(bl_ld16(blk)) * da[b];
        const float dmin = h2f(bl_ld16(blk + 2)) * da[b];
        __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
        __m256i mm = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)), mm);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(dmin), accm);
        /* scale of sub-block j in int16 lanes: vpermw picks them per chunk */
        const __m512i s16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
        __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}; /* two chains */
        const int8_t *a = qa + b * BL_QKK;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512i z =
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * i)));
            z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xffff0000u, z, 4), m4);
            __m512i p = _mm512_maddubs_epi16(z, _mm512_loadu_si512(a + 64 * i));
            const __m512i idx =
                _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16((short)(2 * i)),
                                        _mm512_set1_epi16((short)(2 * i + 1)));
            isum[i & 1] = _mm512_dpwssd_epi32(isum[i & 1], p, _mm512_permutexvar_epi16(idx, s16));
        }
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(isum[0], isum[1])),
                              _mm512_set1_ps(d), acc);
    }
    return _mm512_reduce_add_ps(acc) - hsum8(accm);
}

void bl_q4_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
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
