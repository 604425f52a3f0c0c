/*
 * Q5_K x Q8_K activations with AVX-512 (BW, VNNI): Q4_K's kernel
 * (q4_k_avx512.c) plus the fifth bits, qh broadcast like the quants and
 * tested per byte (vptestmb) against bit 2i in the low half and 2i+1 in the
 * high one; the resulting mask ors 0x10 into the quants (0..31, int16 pairs
 * at most 2 * 31 * 127).
 *
 * As in Q4_K, each 32 bytes of quants
 * are broadcast to both halves of a zmm; the low half keeps the low nibbles
 * (sub-block 2i) and the high half the high ones (2i+1), which puts the 64
 * quants in element order against one plain load of activations.
 * vpmaddubsw makes int16 pairs (at most 2 * 15 * 127) and vpdpwssd
 * multiplies them by the sub-block scales and adds into int32 in one step.
 * Built without VNNI this file is never called: bl_kern_fill_avx512 checks.
 */
#include <immintrin.h>
#include <math.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define QB 176

static float dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa,
                     size_t nb)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
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
        /* scale of sub-block j in int16 lanes: vpermw picks them per chunk */
        const __m512i s16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
        const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)));
        __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}; /* two chains */
        const int8_t *a = qa + b * BL_QKK;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512i z =
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 48 + 32 * i)));
            z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xffff0000u, z, 4), m4);
            const __m512i bit = _mm512_mask_blend_epi8(0xffffffff00000000ull,
                                                       _mm512_set1_epi8((char)(1 << (2 * i))),
                                                       _mm512_set1_epi8((char)(2 << (2 * i))));
            z = _mm512_mask_add_epi8(z, _mm512_test_epi8_mask(hb, bit), z, _mm512_set1_epi8(16));
            __m512i p = _mm512_maddubs_epi16(z, _mm512_loadu_si512(a + 64 * i));
            const __m512i idx =
                _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16((short)(2 * i)),
                                        _mm512_set1_epi16((short)(2 * i + 1)));
            isum[i & 1] = _mm512_dpwssd_epi32(isum[i & 1], p, _mm512_permutexvar_epi16(idx, s16));
        }
        /* both halves hold ggml's lanes (bytes 4k..4k+3 of a sub-block):
         * fold them in integers, then ggml's eight float lanes */
        const __m512i is = _mm512_add_epi32(isum[0], isum[1]);
        const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(is),
                                            _mm512_extracti64x4_epi64(is, 1));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8), _mm256_set1_ps(d), acc);
    }
    return hsum8(acc) - summs;
}

/* dot_row for two adjacent rows at once: the activations are loaded once,
 * both rows' eight lanes share one zmm accumulator (row 0 low, row 1 high)
 * and both mins' totals come out of one vphaddd tree for one xmm fma, lane
 * by lane the operations dot_row does. */
static void dot_2rows(const uint8_t *w0, const int8_t *qa, const float *da, const int16_t *sa,
                      size_t nb, size_t row_bytes, float *out0, float *out1)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const uint8_t *w[2] = {w0, w0 + row_bytes};
    __m512 acc = _mm512_setzero_ps();
    __m128 summs = _mm_setzero_ps(); /* rows 0 and 1 in lanes 0 and 1 */
    const size_t pf_base = 2 * row_bytes + BL_PF_BYTES; /* see BL_PF_BYTES */
    for (size_t b = 0; b < nb; b++) {
        /* the rows are read at the same pace: prefetch what this step
         * consumes, BL_PF_BYTES past the pair */
        for (size_t k = 0; k < 2 * QB; k += 64)
            _mm_prefetch((const char *)w0 + pf_base + 2 * b * QB + k, _MM_HINT_T0);
        const int8_t *a = qa + b * BL_QKK;
        const __m256i sab = _mm256_loadu_si256((const __m256i *)(sa + 16 * b));
        __m256i i8[2], ms[2];
        float d[2], dmin[2];
        for (int r = 0; r < 2; r++) {
            const uint8_t *blk = w[r] + b * QB;
            uint8_t sc[8], m[8];
            bl_k4_scales(blk + 4, sc, m);
            d[r] = da[b] * h2f(bl_ld16(blk));
            dmin[r] = da[b] * h2f(bl_ld16(blk + 2));
            __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
            ms[r] = _mm256_madd_epi16(sab, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)));
            const __m512i s16 =
                _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
            const __m512i hb =
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)));
            __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512i z = _mm512_broadcast_i64x4(
                    _mm256_loadu_si256((const __m256i *)(blk + 48 + 32 * i)));
                z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xffff0000u, z, 4), m4);
                const __m512i bit = _mm512_mask_blend_epi8(
                    0xffffffff00000000ull, _mm512_set1_epi8((char)(1 << (2 * i))),
                    _mm512_set1_epi8((char)(2 << (2 * i))));
                z = _mm512_mask_add_epi8(z, _mm512_test_epi8_mask(hb, bit), z,
                                         _mm512_set1_epi8(16));
                __m512i p = _mm512_maddubs_epi16(z, _mm512_loadu_si512(a + 64 * i));
                const __m512i idx =
                    _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16((short)(2 * i)),
                                            _mm512_set1_epi16((short)(2 * i + 1)));
                isum[i & 1] =
                    _mm512_dpwssd_epi32(isum[i & 1], p, _mm512_permutexvar_epi16(idx, s16));
            }
            const __m512i is = _mm512_add_epi32(isum[0], isum[1]);
            i8[r] = _mm256_add_epi32(_mm512_castsi512_si256(is), _mm512_extracti64x4_epi64(is, 1));
        }
        const __m512 dd = _mm512_insertf32x8(_mm512_set1_ps(d[0]), _mm256_set1_ps(d[1]), 1);
        const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(i8[0]), i8[1], 1);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(both), dd, acc);
        const __m256i h = _mm256_hadd_epi32(ms[0], ms[1]);
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        t = _mm_hadd_epi32(t, t); /* lanes 0, 1: the two rows' mins totals */
        summs = _mm_fmadd_ps(_mm_setr_ps(dmin[0], dmin[1], 0.0f, 0.0f), _mm_cvtepi32_ps(t), summs);
    }
    float sm[4];
    _mm_storeu_ps(sm, summs);
    *out0 = hsum8(_mm512_castps512_ps256(acc)) - sm[0];
    *out1 = hsum8(_mm512_extractf32x8_ps(acc, 1)) - sm[1];
}

void bl_q5_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q5_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK, cs = nb * BL_Q8K_BYTES_PER_BLOCK;
    size_t r = r0;
    for (; r + 2 <= r1; r += 2) { /* rows in pairs, columns inside */
        const uint8_t *w = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            dot_2rows(w, bl_q8k_qs(col), bl_q8k_d(col, nb), bl_q8k_s(col, nb), nb, row_bytes,
                      &y[c * ldy + r], &y[c * ldy + r + 1]);
        }
    }
    for (; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            y[c * ldy + r] = dot_row(w, bl_q8k_qs(col), bl_q8k_d(col, nb), bl_q8k_s(col, nb), nb);
        }
    }
}
