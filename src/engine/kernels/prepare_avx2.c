/*
 * Activation preparation with AVX2: the same operations as the scalar
 * bl_q8a_quantize_block (exact max, one division 127/amax, one multiply,
 * round half to even) so the prepared bytes are identical, only faster.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

void bl_q8a_prepare_avx2(const float *x, size_t n, size_t ncols, void *dst)
{
    const size_t nb = n / BL_QK;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t c = 0; c < ncols; c++) {
        char *col = (char *)dst + c * nb * BL_Q8A_BYTES_PER_BLOCK;
        int8_t *qs = (int8_t *)col;
        float *d = (float *)(col + nb * BL_QK);
        int32_t *s = (int32_t *)(col + nb * BL_QK + nb * 4);
        for (size_t b = 0; b < nb; b++) {
            const float *xb = x + c * n + b * BL_QK;
            __m256 v[4];
            for (int i = 0; i < 4; i++)
                v[i] = _mm256_loadu_ps(xb + 8 * i);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]),
                                                   _mm256_andnot_ps(sign, v[1])),
                                     _mm256_max_ps(_mm256_andnot_ps(sign, v[2]),
                                                   _mm256_andnot_ps(sign, v[3])));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            const float amax = _mm_cvtss_f32(h);
            const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
            __m256i q[4];
            for (int i = 0; i < 4; i++) /* cvtps rounds half to even (MXCSR default) */
                q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
            __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]),
                                           _mm256_add_epi32(q[2], q[3]));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum),
                                       _mm256_extracti128_si256(sum, 1));
            s4 = _mm_hadd_epi32(s4, s4);
            s4 = _mm_hadd_epi32(s4, s4);
            /* pack 32 int32 (all within -127..127) to bytes in order */
            __m256i w01 = _mm256_packs_epi32(q[0], q[1]), w23 = _mm256_packs_epi32(q[2], q[3]);
            __m256i bytes = _mm256_packs_epi16(w01, w23);
            bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(qs + b * BL_QK), bytes);
            d[b] = bl_fp16_to_f32(bl_f32_to_fp16(amax / 127.0f));
            s[b] = _mm_cvtsi128_si32(s4);
        }
    }
}

void bl_f16_prepare_avx2(const float *x, size_t n, size_t ncols, void *dst);
void bl_f16_prepare_avx2(const float *x, size_t n, size_t ncols, void *dst)
{
    /* vcvtps2ph rounds to nearest even like bl_f32_to_fp16; only a NaN's
     * payload may differ (ggml's reference writes 0x7e00) */
    uint16_t *h = dst;
    size_t i = 0, total = n * ncols;
    for (; i + 8 <= total; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < total; i++)
        h[i] = bl_f32_to_fp16(x[i]);
}
