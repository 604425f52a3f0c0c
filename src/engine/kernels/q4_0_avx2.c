/*
 * Q4_0 x Q8 activations with AVX2. Prefill (tiles of 2 rows x 2 columns),
 * per block: the 16 nibble bytes become 32 unsigned values 0..15 in element
 * order, vpmaddubsw multiplies them with the signed activations into int16
 * pairs (at most 2*15*127, no saturation), the "-8" comes off exactly as
 * 8*(a0+a1) per pair, and vpmaddwd sums pairs into int32 lanes. Decode
 * (decode_row) walks rows one at a time, one sequential DRAM stream, with
 * the cheaper 8-block step described there.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline
#define QB 18

AI __m256i nibbles(const uint8_t *blk)
{
    __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
    __m256i x = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(x, _mm256_set1_epi8(0x0f));
}

AI void tile(const uint8_t *W, size_t rb, size_t nb, const uint8_t *X, size_t cs, float *y,
             size_t ldy, size_t r, size_t c, const int R, const int C)
{
    const __m256i eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    __m256 acc[2][2];
    const uint8_t *wr[2];
    const int8_t *qa[2];
    const float *da[2];
    for (int i = 0; i < R; i++)
        wr[i] = W + (r + i) * rb;
    for (int j = 0; j < C; j++) {
        qa[j] = bl_q8a_qs(X + (c + j) * cs);
        da[j] = bl_q8a_d(X + (c + j) * cs, nb);
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        __m256i a[2], corr[2];
        for (int j = 0; j < C; j++) {
            a[j] = _mm256_loadu_si256((const __m256i *)(qa[j] + b * 32));
            corr[j] = _mm256_maddubs_epi16(eight, a[j]);
        }
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = wr[i] + b * QB;
            __m256i x = nibbles(blk);
            float dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bl_ld16(blk))));
            for (int j = 0; j < C; j++) {
                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(x, a[j]), corr[j]);
                __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[i][j] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * da[j][b]), acc[i][j]);
            }
        }
    }
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < C; j++) {
            __m256 v = acc[i][j];
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            s = _mm_add_ss(s, _mm_movehdup_ps(s));
            y[(c + j) * ldy + r + i] = _mm_cvtss_f32(s);
        }
    }
}

/* Decode: one row against one column, 8 blocks per step.
 *
 * The activation side of a step is the same for every row, so it is built
 * once per call (dec_act): for each pair of blocks the quants regrouped to
 * match one register of low nibbles and one of high nibbles (block 2p in the
 * low 128-bit lane, 2p+1 in the high); per step the "-8" correction 8*sum
 * and the activation scales, both in the order [0,2,4,6 | 1,3,5,7].
 *
 * A pair costs one load, three bit ops, two vpmaddubsw, one vpaddw and one
 * vpmaddwd; three vphaddd then fold the four pairs' int32 partial sums into
 * one register of the 8 block sums in that same order, so one subtract, one
 * convert and one FMA finish the step. The 8 fp16 weight scales come from
 * four 32-byte loads (block 2k's scale in word 0, 2k+1's in word 9) and three
 * shuffles, in that order too — no per-block insert or permute. */
typedef struct {
    __m256i alo[4], ahi[4];
    __m256i corr; /* 8 * sum of the block's quants, step order */
    __m256 da;    /* activation scales, step order */
} act_step_t;

#define DEC_MAX_STEPS 128 /* n up to 32768 on the stack (40 KiB) */

static void dec_act(const int8_t *qa, const float *da, const int32_t *sa, size_t nb,
                    act_step_t *st)
{
    /* whole steps, and a last one of the remaining pairs with zeros after */
    for (size_t k = 0; k < (nb + 6) / 8; k++) {
        float d[8] = {0};
        int32_t s[8] = {0};
        for (int i = 0; i < 8 && 8 * k + i < nb; i++)
            d[i] = da[8 * k + i], s[i] = sa[8 * k + i];
        for (int p = 0; p < 4; p++) {
            if (8 * k + 2 * p + 2 > nb) {
                st[k].alo[p] = st[k].ahi[p] = _mm256_setzero_si256();
                d[2 * p] = d[2 * p + 1] = 0.0f, s[2 * p] = s[2 * p + 1] = 0;
                continue;
            }
            const int8_t *a = qa + (8 * k + 2 * p) * 32;
            __m256i a0 = _mm256_loadu_si256((const __m256i *)a);
            __m256i a1 = _mm256_loadu_si256((const __m256i *)(a + 32));
            st[k].alo[p] = _mm256_permute2x128_si256(a0, a1, 0x20);
            st[k].ahi[p] = _mm256_permute2x128_si256(a0, a1, 0x31);
        }
        st[k].corr = _mm256_setr_epi32(8 * s[0], 8 * s[2], 8 * s[4], 8 * s[6], 8 * s[1],
                                       8 * s[3], 8 * s[5], 8 * s[7]);
        st[k].da = _mm256_setr_ps(d[0], d[2], d[4], d[6], d[1], d[3], d[5], d[7]);
    }
}

/* fp16 scales of blocks 0..7 of a run as floats in step order */
AI __m256 scales_step(const uint8_t *run)
{
    /* each load: one block's scale in bytes 0-1, the next one's in 18-19 */
    __m256i y0 = _mm256_loadu_si256((const __m256i *)run);
    __m256i y1 = _mm256_loadu_si256((const __m256i *)(run + 2 * QB));
    __m256i y2 = _mm256_loadu_si256((const __m256i *)(run + 4 * QB));
    __m256i y3 = _mm256_loadu_si256((const __m256i *)(run + 6 * QB));
    /* dword 0 of each lane: [y0 y1 y2 y3] from lane 0 (word 0 of each) and
     * lane 1 (word 1 of each) */
    __m256i u = _mm256_unpacklo_epi64(_mm256_unpacklo_epi32(y0, y1),
                                      _mm256_unpacklo_epi32(y2, y3));
    const __m256i sel = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1,
                                         -1, 2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1,
                                         -1, -1);
    u = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(u, sel), 0x08);
    return _mm256_cvtph_ps(_mm256_castsi256_si128(u));
}

/* int16 products of a pair of blocks: lanes 0..7 block 2p, 8..15 block 2p+1,
 * each the sum of four products, at most 4 * 15 * 127 = 7620 */
AI __m256i pair_dot(const uint8_t *blk, __m256i alo, __m256i ahi)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    /* block 2p's nibbles from one load, 2p+1's from another 2 bytes on:
     * a blend instead of a lane insert */
    __m256i q = _mm256_blend_epi32(_mm256_loadu_si256((const __m256i *)(blk + 2)),
                                   _mm256_loadu_si256((const __m256i *)(blk + 4)), 0xf0);
    __m256i lo = _mm256_and_si256(q, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    return _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
}

/* A step of NP < 4 pairs (the end of a row): missing pairs are zeros, and
 * so are their activations and corrections in the step. */
AI __m256 tail_step(const uint8_t *run, const act_step_t *a, const int NP)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i d[4];
    __m128i even = _mm_setzero_si128(), odd = _mm_setzero_si128();
    for (int p = 0; p < 4; p++)
        d[p] = p < NP ? pair_dot(run + 2 * p * QB, a->alo[p], a->ahi[p]) : _mm256_setzero_si256();
    even = _mm_insert_epi16(even, bl_ld16(run), 0);
    odd = _mm_insert_epi16(odd, bl_ld16(run + QB), 0);
    if (NP > 1) {
        even = _mm_insert_epi16(even, bl_ld16(run + 2 * QB), 1);
        odd = _mm_insert_epi16(odd, bl_ld16(run + 3 * QB), 1);
    }
    if (NP > 2) {
        even = _mm_insert_epi16(even, bl_ld16(run + 4 * QB), 2);
        odd = _mm_insert_epi16(odd, bl_ld16(run + 5 * QB), 2);
    }
    __m256 sw = _mm256_cvtph_ps(_mm_unpacklo_epi64(even, odd));
    __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(d[0], d[1]), _mm256_hadd_epi16(d[2], d[3]));
    __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(h, ones), a->corr);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(sw, a->da));
}

static float decode_row(const uint8_t *w, const int8_t *qa, const float *da,
                        const act_step_t *st, size_t nb)
{
    const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    size_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const uint8_t *run = w + b * QB;
        const char *pf = (const char *)run + BL_PF_BYTES; /* see BL_PF_BYTES */
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        const act_step_t *a = st + b / 8;
        __m256i d0 = pair_dot(run, a->alo[0], a->ahi[0]);
        __m256i d1 = pair_dot(run + 2 * QB, a->alo[1], a->ahi[1]);
        __m256i d2 = pair_dot(run + 4 * QB, a->alo[2], a->ahi[2]);
        __m256i d3 = pair_dot(run + 6 * QB, a->alo[3], a->ahi[3]);
        /* two vphaddw levels keep int16 (at most 4 * 7620 = 30480), then
         * one vpmaddwd: the 8 block sums in step order */
        __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(d0, d1), _mm256_hadd_epi16(d2, d3));
        __m256i s = _mm256_madd_epi16(h, ones);
        s = _mm256_sub_epi32(s, a->corr);
        __m256 sc = _mm256_mul_ps(scales_step(run), a->da);
        if (b & 8)
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, acc1);
        else
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, acc0);
    }
    if (nb - b >= 2) { /* the last pairs: a step with zeros for the missing ones */
        const uint8_t *run = w + b * QB;
        const act_step_t *a = st + b / 8;
        const size_t np = (nb - b) / 2;
        __m256 t = np == 1 ? tail_step(run, a, 1) : np == 2 ? tail_step(run, a, 2)
                                                            : tail_step(run, a, 3);
        acc1 = _mm256_add_ps(acc1, t);
        b += 2 * np;
    }
    for (; b < nb; b++) { /* an odd last block */
        const uint8_t *blk = w + b * QB;
        __m256i a = _mm256_loadu_si256((const __m256i *)(qa + b * 32));
        __m256i p = _mm256_maddubs_epi16(nibbles(blk), a);
        __m256i d = _mm256_sub_epi32(_mm256_madd_epi16(p, ones),
                                     _mm256_madd_epi16(_mm256_maddubs_epi16(eight, a), ones));
        float dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bl_ld16(blk))));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(dw * da[b]), acc0);
    }
    __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

#define TILE(R, C)                                                                          \
    static void tile_##R##_##C(const uint8_t *W, size_t rb, size_t nb, const uint8_t *X,    \
                               size_t cs, float *y, size_t ldy, size_t r, size_t c)         \
    {                                                                                       \
        tile(W, rb, nb, X, cs, y, ldy, r, c, R, C);                                         \
    }
TILE(1, 1) TILE(2, 1) TILE(1, 2) TILE(2, 2)

typedef void (*tile_fn)(const uint8_t *, size_t, size_t, const uint8_t *, size_t, float *, size_t,
                        size_t, size_t);
static const tile_fn TILES[2][2] = {{tile_1_1, tile_1_2}, {tile_2_1, tile_2_2}};

void bl_q4_0_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_0_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    if (ncols == 1 && (nb + 6) / 8 <= DEC_MAX_STEPS) {
        const int8_t *qa = bl_q8a_qs(X);
        const float *da = bl_q8a_d(X, nb);
        act_step_t st[DEC_MAX_STEPS];
        dec_act(qa, da, bl_q8a_s(X, nb), nb, st);
        for (size_t r = r0; r < r1; r++)
            y[r] = decode_row((const uint8_t *)W + r * row_bytes, qa, da, st, nb);
        return;
    }
    for (size_t r = r0; r < r1; r += 2) {
        size_t R = r1 - r < 2 ? r1 - r : 2;
        for (size_t c = 0; c < ncols; c += 2) {
            size_t C = ncols - c < 2 ? ncols - c : 2;
            TILES[R - 1][C - 1](W, row_bytes, nb, X, cs, y, ldy, r, c);
        }
    }
}
