/*
 * Q5_K x Q8_K activations with AVX2: Q4_K's kernel (q4_k_avx2.c) with the
 * fifth bit of each quant moved from qh into bit 4 by a shift and a mask
 * (sub-block j's bit is bit j of qh[l]); quants 0..31, int16 pairs at most
 * 2 * 31 * 127.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define QB 176

/* bit j of every byte moved to bit 4 (16-bit shifts: what crosses into the
 * neighbouring byte lands outside bit 4 and is masked off) */
static inline __m256i bit_to_16(__m256i h, const int j)
{
    const __m256i m = _mm256_set1_epi8(0x10);
    if (j < 4)
        return _mm256_and_si256(_mm256_slli_epi16(h, 4 - j), m);
    return _mm256_and_si256(_mm256_srli_epi16(h, j - 4), m);
}

static float dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa,
                     size_t nb)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f; /* the mins, beside the lanes as ggml keeps them */
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QB;
        const char *pf = (const char *)blk + BL_PF_BYTES; /* see BL_PF_BYTES */
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        uint8_t sc[8], m[8];
        bl_k4_scales(blk + 4, sc, m);
        const float d = da[b] * h2f(bl_ld16(blk));
        const float dmin = da[b] * h2f(bl_ld16(blk + 2));
        __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
        __m256i mm = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)), mm);
        __m128i m4s = _mm_add_epi32(_mm256_castsi256_si128(ms), _mm256_extracti128_si256(ms, 1));
        m4s = _mm_add_epi32(m4s, _mm_unpackhi_epi64(m4s, m4s));
        m4s = _mm_add_epi32(m4s, _mm_shuffle_epi32(m4s, 1));
        summs = fmaf(dmin, (float)_mm_cvtsi128_si32(m4s), summs);
        const __m256i s16 =
            _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 16));
        __m256i isum = _mm256_setzero_si256();
        const int8_t *a = qa + b * BL_QKK;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 48 + 32 * i));
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), bit_to_16(hb, 2 * i));
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                         bit_to_16(hb, 2 * i + 1));
            __m256i plo =
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a + 64 * i)));
            __m256i phi =
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a + 64 * i + 32)));
            const __m256i ilo = _mm256_set1_epi16((short)(0x0100 * (4 * i + 1) + 4 * i));
            const __m256i ihi = _mm256_set1_epi16((short)(0x0100 * (4 * i + 3) + 4 * i + 2));
            plo = _mm256_madd_epi16(plo, _mm256_shuffle_epi8(s16, ilo));
            phi = _mm256_madd_epi16(phi, _mm256_shuffle_epi8(s16, ihi));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum8(acc) - summs;
}

void bl_q5_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1);
void bl_q5_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1)
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
