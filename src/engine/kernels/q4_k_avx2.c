/*
 * Q4_K x Q8_K activations with AVX2. Per super-block: each 32 bytes of
 * quants hold sub-block 2i (low nibbles) and 2i+1 (high); vpmaddubsw
 * multiplies the unsigned nibbles with the signed activations into int16
 * pairs (at most 2 * 15 * 127), vpmaddwd with the sub-block's 6-bit scale
 * (broadcast by a byte shuffle) sums them into int32, and the block's int32
 * sum meets the float scale d once. The mins take one vpmaddwd of the
 * activations' 16-element sums against the mins, each repeated twice.
 * Rows are walked one at a time with a software prefetch (BL_PF_BYTES).
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define QB 144

/* fp16 to float with F16C (bl_fp16_to_f32 is the portable one) */
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
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
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
        /* mins: sum over j of m[j] * (s[2j] + s[2j+1]) */
        __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
        __m256i mm = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)), mm);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(dmin), accm);
        /* the 8 scales as int16, in both lanes */
        const __m256i s16 =
            _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
        __m256i isum = _mm256_setzero_si256();
        const int8_t *a = qa + b * BL_QKK;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * i));
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
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
    return hsum8(_mm256_sub_ps(acc, accm));
}

void bl_q4_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK, cs = nb * BL_Q8K_BYTES_PER_BLOCK;
    /* rows outer: a row's weights stay in L1 while the columns pass */
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            y[c * ldy + r] = dot_row(w, bl_q8k_qs(col), bl_q8k_d(col, nb), bl_q8k_s(col, nb), nb);
        }
    }
}
