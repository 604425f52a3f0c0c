/*
 * Q4_K x Q8_K activations with AVX2. Per super-block: each 32 bytes of
 * quants hold sub-block 2i (low nibbles) and 2i+1 (high); vpmaddubsw
 * multiplies the unsigned nibbles with the signed activations into int16
 * pairs (at most 2 * 15 * 127), vpmaddwd with the sub-block's 6-bit scale
 * (broadcast by a byte shuffle) sums them into int32; the sums then meet
 * the float scales in llama.cpp's order (bl_q4_k_dot_ref). The mins take one vpmaddwd of the
 * activations' 16-element sums against the mins, each repeated twice.
 * Rows are walked one at a time with a software prefetch (BL_PF_BYTES).
 */
#include <immintrin.h>
#include <math.h>

#include "engine/kernels/kern_impl.h"
#include "engine/kernels/simd_x86.h"

#define QB 144

static inline int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

/* llama.cpp's order (q4_k.c, bl_q4_k_dot_ref): exact integer sums, one fma
 * per super-block (gemv) or per pair of sub-blocks (gemm) into the scales'
 * and the mins' accumulators */
static inline __attribute__((always_inline)) float
dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int16_t *sa, size_t nb,
        const int gemm)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
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
        /* mins: lane i of ms is m[i/2] * s[i] + m[i/2] * s[i+1], so sub-block
         * pair p is lanes 2p..2p+1 */
        __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
        __m256i mm = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sa + 16 * b)), mm);
        int32_t msp[8];
        _mm256_storeu_si256((__m256i *)msp, ms);
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
            if (gemm) {
                acc = fmaf((float)hsum_i32(_mm256_add_epi32(plo, phi)), d, acc);
                accm = fmaf((float)(msp[2 * i] + msp[2 * i + 1]), dmin, accm);
            } else {
                isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
            }
        }
        if (!gemm) {
            acc = fmaf((float)hsum_i32(isum), d, acc);
            accm = fmaf((float)hsum_i32(ms), dmin, accm);
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
    const __m256i m4 = _mm256_set1_epi8(0x0f);
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
        __m256i isum[2], ms[2], pr[2][4];
        float d[2], dmin[2];
        for (int r = 0; r < 2; r++) {
            const uint8_t *blk = w[r] + b * QB;
            uint8_t sc[8], m[8];
            bl_k4_scales(blk + 4, sc, m);
            d[r] = h2f(bl_ld16(blk)) * da[b];
            dmin[r] = h2f(bl_ld16(blk + 2)) * da[b];
            __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
            ms[r] = _mm256_madd_epi16(sab, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)));
            const __m256i s16 = _mm256_broadcastsi128_si256(
                _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
            __m256i is = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * i));
                __m256i lo = _mm256_and_si256(q, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                __m256i plo =
                    _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a + 64 * i)));
                __m256i phi = _mm256_maddubs_epi16(
                    hi, _mm256_loadu_si256((const __m256i *)(a + 64 * i + 32)));
                const __m256i ilo = _mm256_set1_epi16((short)(0x0100 * (4 * i + 1) + 4 * i));
                const __m256i ihi = _mm256_set1_epi16((short)(0x0100 * (4 * i + 3) + 4 * i + 2));
                plo = _mm256_madd_epi16(plo, _mm256_shuffle_epi8(s16, ilo));
                phi = _mm256_madd_epi16(phi, _mm256_shuffle_epi8(s16, ihi));
                if (gemm) /* each pair of sub-blocks apart */
                    pr[r][i] = _mm256_add_epi32(plo, phi);
                else
                    is = _mm256_add_epi32(is, _mm256_add_epi32(plo, phi));
            }
            isum[r] = is;
        }
        if (gemm) {
            acc = gemm_step(pr, ms, d, dmin, acc);
            continue;
        }
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(isum[0], isum[1]),
                                            _mm256_hadd_epi32(ms[0], ms[1]));
        const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(t), _mm_setr_ps(d[0], d[1], dmin[0], dmin[1]), acc);
    }
    float v[4];
    _mm_storeu_ps(v, acc);
    *out0 = v[0] - v[2];
    *out1 = v[1] - v[3];
}

void bl_q4_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_k_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1)
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
    /* rows outer: a row's weights stay in L1 while the columns pass */
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
