/*
 * Q5_0 and Q5_1 x Q8 activations with AVX2. Per block the 32 fifth bits
 * become bytes (a 4-byte broadcast, a byte shuffle so each byte sees its
 * bit's byte, a bit-select and compare) or-ed as 0x10 onto the nibbles, so
 * vpmaddubsw multiplies unsigned quants 0..31 with the signed activations.
 * Q5_0's "-16" comes off as 16 * (prepared block sum) in int32; Q5_1's min
 * is m * da * (block sum), summed apart in float.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline

/* fp16 to float with F16C (bl_fp16_to_f32 is the portable one) */
static inline float h2f(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* rounded through fp16, as ggml's Q8_1 keeps d * (block sum) */
static inline float r16(float f)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT)));
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the 32 quants 0..31 of a block, in element order */
AI __m256i quants(const uint8_t *qh4, const uint8_t *qs)
{
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    h = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
    return _mm256_or_si256(nib, _mm256_and_si256(h, _mm256_set1_epi8(0x10)));
}

AI float dot_row(const uint8_t *w, const int8_t *qa, const float *da, const int32_t *sa, size_t nb,
                 const int is_q5_1)
{
    const size_t QB = is_q5_1 ? 24 : 22;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    float msum = 0.0f;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * QB;
        if (b % 4 == 0) { /* see BL_PF_BYTES */
            _mm_prefetch((const char *)blk + BL_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)blk + BL_PF_BYTES + 64, _MM_HINT_T0);
        }
        const int off = is_q5_1 ? 4 : 2;
        __m256i q = quants(blk + off, blk + off + 4);
        __m256i a = _mm256_loadu_si256((const __m256i *)(qa + 32 * b));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), ones);
        if (!is_q5_1)
            s = _mm256_sub_epi32(s, _mm256_castsi128_si256(_mm_cvtsi32_si128(16 * sa[b])));
        const float d = h2f(bl_ld16(blk)) * da[b];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d), acc);
        if (is_q5_1)
            msum += h2f(bl_ld16(blk + 2)) * r16(da[b] * (float)sa[b]);
    }
    return hsum8(acc) + msum;
}

/* Decode (one column), 8 blocks per step as q4_0_avx2.c's decode: the
 * activations of a step are regrouped once per call so that each pair of
 * blocks is one register of low-nibble quants and one of high (first block
 * in the low 128-bit lane), and the block sums come out of vphaddw/vphaddd in
 * the order [0,2,4,6 | 1,3,5,7], in which the step's corrections, scales and
 * mins are kept too. The pair's fifth bits: both qh words in one broadcast
 * register, one byte shuffle per register to give each byte its bit's byte,
 * then select and compare. */
typedef struct {
    __m256i alo[4], ahi[4];
    __m256i corr; /* Q5_0: 16 * block sum */
    __m256 da;    /* activation scales */
    __m256 das;   /* Q5_1: da * block sum */
} act_step_t;

#define DEC_MAX_STEPS 128 /* n up to 32768 on the stack (48 KiB) */

static void dec_act(const uint8_t *col, size_t nb, act_step_t *st)
{
    const int8_t *qa = bl_q8a_qs(col);
    const float *da = bl_q8a_d(col, nb);
    const int32_t *sa = bl_q8a_s(col, nb);
    static const int ORD[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    for (size_t k = 0; k < nb / 8; k++) {
        for (int p = 0; p < 4; p++) {
            const int8_t *a = qa + (8 * k + 2 * p) * 32;
            __m256i a0 = _mm256_loadu_si256((const __m256i *)a);
            __m256i a1 = _mm256_loadu_si256((const __m256i *)(a + 32));
            st[k].alo[p] = _mm256_permute2x128_si256(a0, a1, 0x20);
            st[k].ahi[p] = _mm256_permute2x128_si256(a0, a1, 0x31);
        }
        int32_t c[8];
        float d[8], ds[8];
        for (int i = 0; i < 8; i++) {
            size_t j = 8 * k + (size_t)ORD[i];
            c[i] = 16 * sa[j], d[i] = da[j], ds[i] = r16(da[j] * (float)sa[j]);
        }
        st[k].corr = _mm256_loadu_si256((const __m256i *)c);
        st[k].da = _mm256_loadu_ps(d);
        st[k].das = _mm256_loadu_ps(ds);
    }
}

/* the fp16 at offset off (0 or 2) of blocks 0..7 of a run (QB = 22 or 24
 * apart) as floats in step order: each 32-byte load has block 2k's in dword
 * 0 of its low lane and 2k+1's in dword 1 (QB 22) or 2 (QB 24) of its high
 * lane; unpacks gather those dwords, a byte shuffle the halves in them */
AI __m256 halves_step(const uint8_t *run, size_t QB, size_t off)
{
    const uint8_t *p = run + off;
    __m256i y0 = _mm256_loadu_si256((const __m256i *)p);
    __m256i y1 = _mm256_loadu_si256((const __m256i *)(p + 2 * QB));
    __m256i y2 = _mm256_loadu_si256((const __m256i *)(p + 4 * QB));
    __m256i y3 = _mm256_loadu_si256((const __m256i *)(p + 6 * QB));
    __m256i l01 = _mm256_unpacklo_epi32(y0, y1), l23 = _mm256_unpacklo_epi32(y2, y3);
    __m256i lo = _mm256_unpacklo_epi64(l01, l23), hi;
    if (QB == 22) {
        hi = _mm256_unpackhi_epi64(l01, l23);
    } else {
        hi = _mm256_unpacklo_epi64(_mm256_unpackhi_epi32(y0, y1), _mm256_unpackhi_epi32(y2, y3));
    }
    __m256i u = _mm256_blend_epi32(lo, hi, 0xf0);
    const char h0 = 0, h1 = (char)((QB - 16) % 4); /* byte of the half in its dword */
    const __m256i sel =
        _mm256_setr_epi8(h0, h0 + 1, h0 + 4, h0 + 5, h0 + 8, h0 + 9, h0 + 12, h0 + 13, -1, -1, -1,
                         -1, -1, -1, -1, -1, h1, h1 + 1, h1 + 4, h1 + 5, h1 + 8, h1 + 9, h1 + 12,
                         h1 + 13, -1, -1, -1, -1, -1, -1, -1, -1);
    u = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(u, sel), 0x08);
    return _mm256_cvtph_ps(_mm256_castsi256_si128(u));
}

/* int16 products of a pair of blocks (lanes 0..7 the first, 8..15 the
 * second), each the sum of four products, at most 4 * 31 * 127 = 15748 */
AI __m256i pair_dot(const uint8_t *blk, size_t QB, size_t off, __m256i alo, __m256i ahi)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m16 = _mm256_set1_epi8(0x10);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    const __m256i slo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 4,
                                         4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
    const __m256i shi = _mm256_add_epi8(slo, _mm256_set1_epi8(2));
    const uint8_t *qs = blk + off + 4;
    __m256i q = _mm256_blend_epi32(_mm256_loadu_si256((const __m256i *)qs),
                                   _mm256_loadu_si256((const __m256i *)(qs + QB - 16)), 0xf0);
    uint32_t h0, h1;
    memcpy(&h0, blk + off, 4);
    memcpy(&h1, blk + QB + off, 4);
    __m256i hv = _mm256_set1_epi64x((long long)((uint64_t)h1 << 32 | h0));
    __m256i hlo = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(hv, slo), bit), bit);
    __m256i hhi = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(hv, shi), bit), bit);
    __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(hlo, m16));
    __m256i hi =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_and_si256(hhi, m16));
    return _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
}

AI float decode_row(const uint8_t *w, const uint8_t *col, size_t nb, const act_step_t *st,
                    const int is_q5_1)
{
    const size_t QB = is_q5_1 ? 24 : 22, off = is_q5_1 ? 4 : 2;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const uint8_t *run = w + b * QB;
        const char *pf = (const char *)run + BL_PF_BYTES; /* see BL_PF_BYTES */
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        const act_step_t *a = st + b / 8;
        __m256i d[4];
        for (int p = 0; p < 4; p++)
            d[p] = pair_dot(run + 2 * p * QB, QB, off, a->alo[p], a->ahi[p]);
        /* one vphaddw level stays within int16 (2 * 15748), then int32 */
        __m256i m01 = _mm256_madd_epi16(_mm256_hadd_epi16(d[0], d[1]), ones);
        __m256i m23 = _mm256_madd_epi16(_mm256_hadd_epi16(d[2], d[3]), ones);
        __m256i s = _mm256_hadd_epi32(m01, m23);
        if (!is_q5_1)
            s = _mm256_sub_epi32(s, a->corr);
        __m256 sc = _mm256_mul_ps(halves_step(run, QB, 0), a->da);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, acc);
        if (is_q5_1)
            accm = _mm256_fmadd_ps(halves_step(run, QB, 2), a->das, accm);
    }
    float r = hsum8(_mm256_add_ps(acc, accm));
    if (b < nb) /* the last nb % 8 blocks one by one */
        r += dot_row(w + b * QB, bl_q8a_qs(col) + 32 * b, bl_q8a_d(col, nb) + b,
                     bl_q8a_s(col, nb) + b, nb - b, is_q5_1);
    return r;
}

AI void matmul(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols, float *y,
               size_t ldy, size_t r0, size_t r1, const int is_q5_1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    if (ncols == 1 && nb / 8 <= DEC_MAX_STEPS) {
        act_step_t st[DEC_MAX_STEPS];
        dec_act(X, nb, st);
        for (size_t r = r0; r < r1; r++)
            y[r] = decode_row((const uint8_t *)W + r * row_bytes, X, nb, st, is_q5_1);
        return;
    }
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + r * row_bytes;
        for (size_t c = 0; c < ncols; c++) {
            const uint8_t *col = (const uint8_t *)X + c * cs;
            y[c * ldy + r] =
                dot_row(w, bl_q8a_qs(col), bl_q8a_d(col, nb), bl_q8a_s(col, nb), nb, is_q5_1);
        }
    }
}

BL_MM_DECL(bl_q5_0_matmul_avx2);
BL_MM_DECL(bl_q5_1_matmul_avx2);
BL_MM_DECL(bl_q5_0_matmul_avx2)
{
    matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1, 0);
}
BL_MM_DECL(bl_q5_1_matmul_avx2)
{
    matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1, 1);
}
