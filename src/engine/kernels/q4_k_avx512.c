/*
 * Q4_K x Q8_K activations with AVX-512 (BW, VNNI), summed in llama.cpp's
 * order (bl_q4_k_dot_ref). Each 32 bytes of quants
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

#define QB 144

/* llama.cpp's order (q4_k.c, bl_q4_k_dot_ref): exact integer sums, one fma
 * per super-block (gemv) or per pair of sub-blocks (gemm) into the scales'
 * and the mins' accumulators */
static inline __attribute__((always_inline)) float
dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa, size_t nb,
        const int gemm)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    float acc = 0.0f, accm = 0.0f;
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
        /* mins: lane i of ms is m[i/2] * (s[2i] + s[2i+1]); pair p is lanes 2p, 2p+1 */
        __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
        __m256i mm = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)), mm);
        int32_t msp[8];
        _mm256_storeu_si256((__m256i *)msp, ms);
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
            const __m512i sv = _mm512_permutexvar_epi16(idx, s16);
            if (gemm) {
                const int32_t t = _mm512_reduce_add_epi32(_mm512_madd_epi16(p, sv));
                acc = fmaf((float)t, d, acc);
                accm = fmaf((float)(msp[2 * i] + msp[2 * i + 1]), dmin, accm);
            } else {
                isum[i & 1] = _mm512_dpwssd_epi32(isum[i & 1], p, sv);
            }
        }
        if (!gemm) {
            acc = fmaf((float)_mm512_reduce_add_epi32(_mm512_add_epi32(isum[0], isum[1])), d, acc);
            const __m128i m4s =
                _mm_add_epi32(_mm256_castsi256_si128(ms), _mm256_extracti128_si256(ms, 1));
            const __m128i m2s = _mm_add_epi32(m4s, _mm_unpackhi_epi64(m4s, m4s));
            accm = fmaf((float)_mm_cvtsi128_si32(_mm_add_epi32(m2s, _mm_shuffle_epi32(m2s, 1))),
                        dmin, accm);
        }
    }
    return acc - accm;
}

/* The gemm order for a row pair (bl_q4_k_dot_ref): the totals of each pair
 * of sub-blocks, pr[row][pair], and of its mins (ms: lanes 2p, 2p+1) meet the
 * scales one pair after another. One vphaddd tree gives all eight totals and
 * the mins, unpacks make [row 0, row 1, mins 0, mins 1] per pair, so each
 * fma does both rows' acc and accm. */
static inline __attribute__((always_inline)) __m128
gemm_step(__m256i pr[2][4], const __m256i ms[2], const float d[2], const float dmin[2], __m128 acc)
{
    __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(pr[0][0], pr[0][1]),
                                   _mm256_hadd_epi32(pr[0][2], pr[0][3]));
    __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(pr[1][0], pr[1][1]),
                                   _mm256_hadd_epi32(pr[1][2], pr[1][3]));
    const __m128i t0 = _mm_add_epi32(_mm256_castsi256_si128(g0), _mm256_extracti128_si256(g0, 1));
    const __m128i t1 = _mm_add_epi32(_mm256_castsi256_si128(g1), _mm256_extracti128_si256(g1, 1));
    const __m256i m = _mm256_hadd_epi32(ms[0], ms[1]); /* [m0p0 m0p1 m1p0 m1p1 | p2 p3] */
    const __m128i ml = _mm_shuffle_epi32(_mm256_castsi256_si128(m), 0xd8);
    const __m128i mh = _mm_shuffle_epi32(_mm256_extracti128_si256(m, 1), 0xd8);
    const __m128i a = _mm_unpacklo_epi32(t0, t1), b = _mm_unpackhi_epi32(t0, t1);
    const __m128i v[4] = {_mm_unpacklo_epi64(a, ml), _mm_unpackhi_epi64(a, ml),
                          _mm_unpacklo_epi64(b, mh), _mm_unpackhi_epi64(b, mh)};
    const __m128 dv = _mm_setr_ps(d[0], d[1], dmin[0], dmin[1]);
    for (int i = 0; i < 4; i++)
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(v[i]), dv, acc);
    return acc;
}

/* Two rows at once, in the gemv order or (gemm) the gemm's: the activations are loaded once
 * for both, and the four integer totals of a super-block (each row's scaled
 * sum and mins) come out of one vphaddd tree into one xmm, so one fma does
 * both rows' acc and accm, lane by lane what dot_row's scalar fmas do. */
static inline __attribute__((always_inline)) void
dot_2rows(const uint8_t *w0, const uint8_t *w1, const int8_t *qa, const float *da,
          const int16_t *sa, size_t nb, float *out0, float *out1, const int gemm)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const uint8_t *w[2] = {w0, w1};
    __m128 acc = _mm_setzero_ps(); /* acc0, acc1, accm0, accm1 */
    const size_t pf_base = 2 * nb * QB + BL_PF_BYTES; /* see BL_PF_BYTES */
    for (size_t b = 0; b < nb; b++) {
        /* the pair's rows are adjacent and read at the same pace: prefetch
         * what this step consumes, BL_PF_BYTES past the pair */
        for (size_t k = 0; k < 2 * QB; k += 64)
            _mm_prefetch((const char *)w0 + pf_base + 2 * b * QB + k, _MM_HINT_T0);
        const int8_t *a = qa + b * BL_QKK;
        const __m256i sab = _mm256_loadu_si256((const __m256i *)(sa + 16 * b));
        __m512i isum[2];
        __m256i ms[2], pr[2][4];
        float d[2], dmin[2];
        for (int r = 0; r < 2; r++) {
            const uint8_t *blk = w[r] + b * QB;
            uint8_t sc[8], m[8];
            bl_k4_scales(blk + 4, sc, m);
            d[r] = h2f(bl_ld16(blk)) * da[b];
            dmin[r] = h2f(bl_ld16(blk + 2)) * da[b];
            __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
            ms[r] = _mm256_madd_epi16(sab, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)));
            const __m512i s16 =
                _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
            __m512i is[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512i z = _mm512_broadcast_i64x4(
                    _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * i)));
                z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xffff0000u, z, 4), m4);
                __m512i p = _mm512_maddubs_epi16(z, _mm512_loadu_si512(a + 64 * i));
                const __m512i idx =
                    _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16((short)(2 * i)),
                                            _mm512_set1_epi16((short)(2 * i + 1)));
                const __m512i sv = _mm512_permutexvar_epi16(idx, s16);
                if (gemm) { /* each pair of sub-blocks apart, folded to 8 lanes */
                    const __m512i t = _mm512_madd_epi16(p, sv);
                    pr[r][i] = _mm256_add_epi32(_mm512_castsi512_si256(t),
                                                _mm512_extracti64x4_epi64(t, 1));
                } else {
                    is[i & 1] = _mm512_dpwssd_epi32(is[i & 1], p, sv);
                }
            }
            isum[r] = _mm512_add_epi32(is[0], is[1]);
        }
        if (gemm) {
            acc = gemm_step(pr, ms, d, dmin, acc);
            continue;
        }
        const __m256i x0 = _mm256_add_epi32(_mm512_castsi512_si256(isum[0]),
                                            _mm512_extracti64x4_epi64(isum[0], 1));
        const __m256i x1 = _mm256_add_epi32(_mm512_castsi512_si256(isum[1]),
                                            _mm512_extracti64x4_epi64(isum[1], 1));
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(x0, x1), _mm256_hadd_epi32(ms[0], ms[1]));
        const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(t), _mm_setr_ps(d[0], d[1], dmin[0], dmin[1]), acc);
    }
    float v[4];
    _mm_storeu_ps(v, acc);
    *out0 = v[0] - v[2];
    *out1 = v[1] - v[3];
}

void bl_q4_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_k_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK, cs = nb * BL_Q8K_BYTES_PER_BLOCK;
    const size_t ngemm = bl_q4_k_gemm_cols(ncols);
    size_t r = r0;
    for (; r + 2 <= r1; r += 2) { /* rows in pairs, columns inside */
        const uint8_t *w0 = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            const int8_t *qa = bl_q8k_qs(col);
            const float *da = bl_q8k_d(col, nb);
            const int16_t *sa = bl_q8k_s(col, nb);
            float *yc = y + c * ldy + r;
            if (c < ngemm)
                dot_2rows(w0, w0 + row_bytes, qa, da, sa, nb, yc, yc + 1, 1);
            else
                dot_2rows(w0, w0 + row_bytes, qa, da, sa, nb, yc, yc + 1, 0);
        }
    }
    for (; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            const int8_t *qa = bl_q8k_qs(col);
            const float *da = bl_q8k_d(col, nb);
            const int16_t *sa = bl_q8k_s(col, nb);
            y[c * ldy + r] = c < ngemm ? dot_row(w, qa, da, sa, nb, 1) : dot_row(w, qa, da, sa, nb, 0);
        }
    }
}
