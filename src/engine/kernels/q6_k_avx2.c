/*
 * Q6_K x Q8_K activations with AVX2. Each half of a super-block (128
 * elements) is 64 bytes of low nibbles and 32 of high bit pairs; four
 * registers of 32 six-bit quants (0..63) come out of them with shifts and
 * masks, vpmaddubsw multiplies them with the signed activations (at most
 * 2 * 63 * 127 per int16 pair) and vpmaddwd with the 16-element groups'
 * int8 scales (low 128-bit lane one group, high lane the next). The "-32"
 * comes off as 32 * sum(scale * activation sum of the group), one vpmaddwd
 * against the prepared 16-element sums per super-block.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define QB 210

static float dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa,
                     size_t nb)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QB;
        const char *pf = (const char *)blk + BL_PF_BYTES; /* see BL_PF_BYTES */
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        _mm_prefetch(pf + 192, _MM_HINT_T0);
        const int8_t *a = qa + b * BL_QKK;
        const __m128i sc = _mm_loadu_si128((const __m128i *)(blk + 192));
        /* the -32: sum over groups of scale * (sum of the group's activations) */
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)),
                                         _mm256_cvtepi8_epi16(sc));
        __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i s16 =
                _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc, 8) : sc));
            const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_and_si256(hb, m2));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(
                    q[k], _mm256_loadu_si256((const __m256i *)(a + 128 * h + 32 * k)));
                /* low lane: group 2k's scale, high lane: group 2k+1's */
                const __m256i idx = _mm256_setr_epi8(
                    4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k,
                    4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k + 2,
                    4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
                    4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
                    4 * k + 3);
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(s16, idx)));
            }
        }
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 5));
        const float d = h2f(bl_ld16(blk + 208)) * da[b];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), acc);
    }
    return hsum8(acc);
}

void bl_q6_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1);
void bl_q6_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
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
