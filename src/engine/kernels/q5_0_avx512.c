/*
 * Q5_0 and Q5_1 x Q8 activations with AVX-512 (BW, VL, VNNI), four blocks
 * per step. The 4 x 16 nibble bytes fill a zmm (masked broadcasts), low
 * nibbles (elements 0..15 of each block) and high (16..31) go through two
 * vpdpbusd against the activations permuted to match — built once per
 * column, as q4_0_avx512.c does — and int32 lanes 4i..4i+3 then belong to
 * block i. The fifth bits need no shuffles: the four blocks' qh halves are
 * packed into two 64-bit masks in general registers, and a masked byte add
 * puts 16 onto the quants they select. Q5_0's "-16" starts each block's
 * sum at -16 * (block sum); Q5_1's min adds m * da * (block sum) per block.
 * Built without VNNI this file is never called: bl_kern_fill_avx512 checks.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline

typedef struct {
    __m512i alo, ahi;
    __m512i neg; /* Q5_0: -16 * block sum in lane 4i */
    __m128 das;  /* Q5_1: da * block sum of the four blocks */
    __m128 da;
} act_step_t;

#define ROWS_PER_PASS 16 /* rows that share one column's activation steps */

static void build_steps(const uint8_t *col, size_t nb, act_step_t *st)
{
    const __m512i ilo = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0);
    const __m512i ihi = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2);
    const __m512i is = _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0);
    const int8_t *qa = bl_q8a_qs(col);
    const float *da = bl_q8a_d(col, nb);
    const int32_t *sa = bl_q8a_s(col, nb);
    for (size_t k = 0; k < nb / 4; k++) {
        __m512i z0 = _mm512_loadu_si512(qa + 128 * k), z1 = _mm512_loadu_si512(qa + 128 * k + 64);
        __m128i s4 = _mm_loadu_si128((const __m128i *)(sa + 4 * k));
        st[k].alo = _mm512_permutex2var_epi64(z0, ilo, z1);
        st[k].ahi = _mm512_permutex2var_epi64(z0, ihi, z1);
        __m512i sp = _mm512_maskz_permutexvar_epi32(0x1111, is, _mm512_castsi128_si512(s4));
        st[k].neg = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), sp), 4);
        st[k].da = _mm_loadu_ps(da + 4 * k);
        /* rounded through fp16, as ggml's Q8_1 keeps d * (block sum) */
        st[k].das = _mm_cvtph_ps(_mm_cvtps_ph(_mm_mul_ps(st[k].da, _mm_cvtepi32_ps(s4)),
                                              _MM_FROUND_TO_NEAREST_INT));
    }
}

static inline float h2f(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* One block the plain way (the last nb % 4 of a row). */
AI float one_block(const uint8_t *blk, const int8_t *a, float da, int32_t s, const int is_q5_1)
{
    const int off = is_q5_1 ? 4 : 2;
    uint32_t qh;
    memcpy(&qh, blk + off, 4);
    __m128i q = _mm_loadu_si128((const __m128i *)(blk + off + 4));
    __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
    nib = _mm256_mask_add_epi8(nib, _cvtu32_mask32(qh), nib, _mm256_set1_epi8(16));
    __m256i d =
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), nib, _mm256_loadu_si256((const __m256i *)a));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    int32_t isum = _mm_cvtsi128_si32(t) - (is_q5_1 ? 0 : 16 * s);
    float r = (float)isum * (h2f(bl_ld16(blk)) * da);
    if (is_q5_1)
        r += h2f(bl_ld16(blk + 2)) *
             _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(da * (float)s), 0)));
    return r;
}

AI float dot_row(const uint8_t *w, const uint8_t *col, size_t nb, const act_step_t *st,
                 const int is_q5_1)
{
    const size_t QB = is_q5_1 ? 24 : 22, off = is_q5_1 ? 4 : 2;
    const __m512i m4 = _mm512_set1_epi8(0x0f), sixteen = _mm512_set1_epi8(16);
    const __m512i ik = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512 acc = _mm512_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    size_t k = 0;
    for (; k < nb / 4; k++) {
        const uint8_t *run = w + 4 * k * QB;
        if (k % 2 == 0) { /* see BL_PF_BYTES */
            const char *pf = (const char *)run + BL_PF_BYTES;
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 64, _MM_HINT_T0);
            _mm_prefetch(pf + 128, _MM_HINT_T0);
        }
        __m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(run + off + 4)));
        for (int i = 1; i < 4; i++)
            q = _mm512_mask_broadcast_i32x4(
                q, (__mmask16)(0xf << (4 * i)),
                _mm_loadu_si128((const __m128i *)(run + i * QB + off + 4)));
        uint64_t hlo = 0, hhi = 0, dh = 0, mh = 0;
        for (int i = 0; i < 4; i++) {
            const uint8_t *blk = run + i * QB;
            hlo |= (uint64_t)bl_ld16(blk + off) << (16 * i);
            hhi |= (uint64_t)bl_ld16(blk + off + 2) << (16 * i);
            dh |= (uint64_t)bl_ld16(blk) << (16 * i);
            if (is_q5_1)
                mh |= (uint64_t)bl_ld16(blk + 2) << (16 * i);
        }
        __m512i lo = _mm512_and_si512(q, m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(hlo), lo, sixteen);
        hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(hhi), hi, sixteen);
        const act_step_t *a = &st[k];
        __m512i d = _mm512_dpbusd_epi32(is_q5_1 ? _mm512_setzero_si512() : a->neg, lo, a->alo);
        d = _mm512_dpbusd_epi32(d, hi, a->ahi);
        __m128 s4 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)dh)), a->da);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
                              _mm512_permutexvar_ps(ik, _mm512_castps128_ps512(s4)), acc);
        if (is_q5_1)
            accm = _mm_fmadd_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)mh)), a->das, accm);
    }
    float r = _mm512_reduce_add_ps(acc);
    if (is_q5_1) {
        accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
        r += _mm_cvtss_f32(_mm_add_ss(accm, _mm_movehdup_ps(accm)));
    }
    const float *da = bl_q8a_d(col, nb);
    const int32_t *sa = bl_q8a_s(col, nb);
    for (size_t b = 4 * k; b < nb; b++)
        r += one_block(w + b * QB, bl_q8a_qs(col) + 32 * b, da[b], sa[b], is_q5_1);
    return r;
}

#define MAX_STEPS 256 /* n up to 32768 on the stack (56 KiB) */

AI void matmul(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols, float *y,
               size_t ldy, size_t r0, size_t r1, const int is_q5_1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    act_step_t st[MAX_STEPS];
    if (nb / 4 > MAX_STEPS) { /* longer rows than any model has: plain blocks */
        for (size_t r = r0; r < r1; r++)
            for (size_t c = 0; c < ncols; c++) {
                const uint8_t *w = (const uint8_t *)W + r * row_bytes,
                              *col = (const uint8_t *)X + c * cs;
                float s = 0;
                for (size_t b = 0; b < nb; b++)
                    s += one_block(w + b * (is_q5_1 ? 24 : 22), bl_q8a_qs(col) + 32 * b,
                                   bl_q8a_d(col, nb)[b], bl_q8a_s(col, nb)[b], is_q5_1);
                y[c * ldy + r] = s;
            }
        return;
    }
    /* decode: one column, every row in one pass; prefill: passes of a few
     * rows (kept in L1/L2) per column, the steps rebuilt per pass */
    const size_t pass = ncols == 1 ? r1 - r0 : ROWS_PER_PASS;
    for (size_t rp = r0; rp < r1; rp += pass) {
        size_t re = r1 - rp < pass ? r1 : rp + pass;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            build_steps(col, nb, st);
            for (size_t r = rp; r < re; r++)
                y[c * ldy + r] = dot_row((const uint8_t *)W + r * row_bytes, col, nb, st, is_q5_1);
        }
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
