/*
 * Q4_0 x Q8 activations with AVX-512 VNNI (vpdpbusd: unsigned x signed bytes).
 * The unsigned side is the raw nibble 0..15; the "-8" is folded in exactly
 * by starting each block's integer sum at -8 * (sum of its activation quants).
 *
 * One step covers 4 blocks of a row: their 4 x 16 nibble bytes fill a zmm,
 * low nibbles (elements 0..15 of each block) and high nibbles (16..31) go
 * through two dpbusd against the activations permuted to match, and int32
 * lane 4i..4i+3 then belongs to block i, so one vpermps spreads the 4 block
 * scales over their lanes. Scales of 8 blocks are fetched at once with a
 * vpermt2w over the 144 bytes they span. Tiles of up to 4 rows x 3 columns
 * reuse each loaded weight across columns and each activation across rows.
 * Built without VNNI this file is never called: bl_kern_fill_avx512 checks.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline
#define QB 18 /* bytes per Q4_0 block */

/* fp16 scales of the first nblk (<= 8) blocks of a run: words 0, 9, ..., 63
 * of the 128 bytes from p; masked loads never touch bytes past the blocks. */
AI __m512 scales8(const uint8_t *p, size_t nblk, const int full)
{
    const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 63, 54, 45, 36, 27, 18, 9, 0);
    __m512i lo, hi;
    if (full) {
        lo = _mm512_loadu_si512(p);
        hi = _mm512_loadu_si512(p + 64);
    } else {
        uint64_t words = (nblk - 1) * 9 + 1, m = words >= 64 ? ~0ull : (1ull << words) - 1;
        lo = _mm512_maskz_loadu_epi16((__mmask32)m, p);
        hi = _mm512_maskz_loadu_epi16((__mmask32)(m >> 32), p + 64);
    }
    __m512i h = _mm512_permutex2var_epi16(lo, idx, hi);
    return _mm512_castps256_ps512(_mm256_cvtph_ps(_mm512_castsi512_si128(h)));
}

/* the 64 nibble bytes of nblk (<= 4) consecutive blocks, zeros after */
AI __m512i nibbles4(const uint8_t *blk, size_t nblk, const int full)
{
    /* masked broadcast loads: a load and a blend each, no shuffle uop */
    __m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 2)));
    if (full) {
        for (int i = 1; i < 4; i++)
            q = _mm512_mask_broadcast_i32x4(
                q, (__mmask16)(0xf << (4 * i)),
                _mm_loadu_si128((const __m128i *)(blk + i * QB + 2)));
        return q;
    }
    q = _mm512_maskz_mov_epi32(0x000f, q);
    for (size_t i = 1; i < nblk; i++)
        q = _mm512_mask_broadcast_i32x4(q, (__mmask16)(0xf << (4 * i)),
                                        _mm_loadu_si128((const __m128i *)(blk + i * QB + 2)));
    return q;
}

/* One run of up to 8 blocks (all 8 when full, so loads need no masks). */
AI void run(__m512 acc[4][4], const uint8_t *const wr[4], const int8_t *const qa[4],
            const float *const da[4], const int32_t *const sa[4], size_t nb, size_t b,
            const int R, const int C, const int full_run)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i ilo = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0);
    const __m512i ihi = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2);
    const __m512i is = _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0);
    const __m512i ik0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i ik1 = _mm512_add_epi32(ik0, _mm512_set1_epi32(4));
    const size_t nrun = full_run ? 8 : nb - b;
    const int full = full_run;
    __m512 sw[4], sa8[4];
    for (int j = 0; j < C; j++)
        sa8[j] = full ? _mm512_castps256_ps512(_mm256_loadu_ps(da[j] + b))
                      : _mm512_maskz_loadu_ps((__mmask16)((1u << nrun) - 1), da[j] + b);
    for (int i = 0; i < R; i++)
        sw[i] = scales8(wr[i] + b * QB, nrun, full);
    for (int k = 0; k < 2; k++) {
        const size_t bb = b + 4 * k;
        if (!full && bb >= nb)
            break;
        const size_t nblk = full ? 4 : (nb - bb < 4 ? nb - bb : 4);
        const int full4 = full || nblk == 4;
        const __m512i ik = k ? ik1 : ik0;
        __m512i alo[4], ahi[4], neg[4];
        __m512 dap[4];
        for (int j = 0; j < C; j++) {
            const int8_t *a = qa[j] + bb * 32;
            __m512i z0, z1, s4;
            if (full4) {
                z0 = _mm512_loadu_si512(a);
                z1 = _mm512_loadu_si512(a + 64);
                s4 = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(sa[j] + bb)));
            } else {
                z0 = _mm512_maskz_loadu_epi8(nblk >= 2 ? ~0ull : 0xffffffffull, a);
                z1 = _mm512_maskz_loadu_epi8(nblk == 3 ? 0xffffffffull : 0, a + 64);
                s4 = _mm512_maskz_loadu_epi32((__mmask16)((1u << nblk) - 1), sa[j] + bb);
            }
            alo[j] = _mm512_permutex2var_epi64(z0, ilo, z1);
            ahi[j] = _mm512_permutex2var_epi64(z0, ihi, z1);
            s4 = _mm512_maskz_permutexvar_epi32(0x1111, is, s4);
            neg[j] = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), s4), 3);
            dap[j] = _mm512_permutexvar_ps(ik, sa8[j]);
        }
        for (int i = 0; i < R; i++) {
            __m512i q = nibbles4(wr[i] + bb * QB, nblk, full4);
            __m512i lo = _mm512_and_si512(q, m4);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            /* weight scale x column j's activation scale, the product decode
               forms (lane-permuted first: the same values), so each (row,
               column) is summed by decode's chain: the tiles are exact per
               column (bl_kern_cols_exact) */
            const __m512 swp = _mm512_permutexvar_ps(ik, sw[i]);
            for (int j = 0; j < C; j++) {
                __m512i d = _mm512_dpbusd_epi32(neg[j], lo, alo[j]);
                d = _mm512_dpbusd_epi32(d, hi, ahi[j]);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(swp, dap[j]),
                                            acc[i][j]);
            }
        }
    }
}

AI void tile(const uint8_t *W, size_t rb, size_t nb, const uint8_t *X, size_t cs, float *y,
             size_t ldy, size_t r, size_t c, const int R, const int C)
{
    __m512 acc[4][4];
    const uint8_t *wr[4];
    const int8_t *qa[4];
    const float *da[4];
    const int32_t *sa[4];
    for (int i = 0; i < R; i++)
        wr[i] = W + (r + i) * rb;
    for (int j = 0; j < C; j++) {
        const uint8_t *col = X + (c + j) * cs;
        qa[j] = bl_q8a_qs(col);
        da[j] = bl_q8a_d(col, nb);
        sa[j] = bl_q8a_s(col, nb);
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 8 <= nb; b += 8)
        run(acc, wr, qa, da, sa, nb, b, R, C, 1);
    if (b < nb) /* the last, shorter run uses masked loads */
        run(acc, wr, qa, da, sa, nb, b, R, C, 0);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            y[(c + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* Decode (one column): the activation work of each 4-block step — the two
 * permutes and the -8 correction — is done once per call into a scratch
 * array, and rows are then walked one after another. One row at a time
 * keeps DRAM reads one sequential stream; interleaving several rows (as the
 * tiles do) cuts it into row-sized pieces and halved the bandwidth in our
 * tests. Even so the hardware prefetcher does not run far enough ahead of a
 * loop this busy, so we prefetch BL_PF_BYTES ahead ourselves (78% -> 98% of
 * the streaming bandwidth on Zen 5). */
typedef struct {
    __m512i alo, ahi, neg;
} act_step_t;

#define DEC_MAX_STEPS 256 /* n up to 32768 on the stack (48 KiB) */

AI void dec_run(__m512 *acc, const uint8_t *w, const act_step_t *st, const float *da, size_t nb,
                size_t b, const int full)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i ik0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i ik1 = _mm512_add_epi32(ik0, _mm512_set1_epi32(4));
    const size_t nrun = full ? 8 : nb - b;
    __m512 sa8 = full ? _mm512_castps256_ps512(_mm256_loadu_ps(da + b))
                      : _mm512_maskz_loadu_ps((__mmask16)((1u << nrun) - 1), da + b);
    if (full) {
        const char *p = (const char *)w + b * QB + BL_PF_BYTES;
        _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(p + 64, _MM_HINT_T0);
        _mm_prefetch(p + 128, _MM_HINT_T0);
    }
    __m512 sw = _mm512_mul_ps(scales8(w + b * QB, nrun, full), sa8);
    for (int k = 0; k < 2; k++) {
        const size_t bb = b + 4 * k;
        if (!full && bb >= nb)
            break;
        const size_t nblk = full ? 4 : (nb - bb < 4 ? nb - bb : 4);
        const act_step_t *a = &st[bb / 4];
        __m512i q = nibbles4(w + bb * QB, nblk, full || nblk == 4);
        __m512i lo = _mm512_and_si512(q, m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        __m512i d = _mm512_dpbusd_epi32(a->neg, lo, a->alo);
        d = _mm512_dpbusd_epi32(d, hi, a->ahi);
        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(k ? ik1 : ik0, sw),
                               *acc);
    }
}

static void decode(const uint8_t *W, size_t rb, size_t nb, const uint8_t *col, float *y,
                   size_t r0, size_t r1, act_step_t *st)
{
    const __m512i ilo = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0);
    const __m512i ihi = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2);
    const __m512i is = _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0);
    const int8_t *qa = bl_q8a_qs(col);
    const float *da = bl_q8a_d(col, nb);
    const int32_t *sa = bl_q8a_s(col, nb);
    for (size_t bb = 0; bb < nb; bb += 4) {
        size_t nblk = nb - bb < 4 ? nb - bb : 4;
        __m512i z0, z1, s4;
        if (nblk == 4) {
            z0 = _mm512_loadu_si512(qa + bb * 32);
            z1 = _mm512_loadu_si512(qa + bb * 32 + 64);
            s4 = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(sa + bb)));
        } else {
            z0 = _mm512_maskz_loadu_epi8(nblk >= 2 ? ~0ull : 0xffffffffull, qa + bb * 32);
            z1 = _mm512_maskz_loadu_epi8(nblk == 3 ? 0xffffffffull : 0, qa + bb * 32 + 64);
            s4 = _mm512_maskz_loadu_epi32((__mmask16)((1u << nblk) - 1), sa + bb);
        }
        act_step_t *a = &st[bb / 4];
        a->alo = _mm512_permutex2var_epi64(z0, ilo, z1);
        a->ahi = _mm512_permutex2var_epi64(z0, ihi, z1);
        s4 = _mm512_maskz_permutexvar_epi32(0x1111, is, s4);
        a->neg = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), s4), 3);
    }
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *w = W + r * rb;
        __m512 acc = _mm512_setzero_ps();
        size_t b = 0;
        for (; b + 8 <= nb; b += 8)
            dec_run(&acc, w, st, da, nb, b, 1);
        if (b < nb)
            dec_run(&acc, w, st, da, nb, b, 0);
        y[r] = _mm512_reduce_add_ps(acc);
    }
}

#define TILE(R, C)                                                                          \
    static void tile_##R##_##C(const uint8_t *W, size_t rb, size_t nb, const uint8_t *X,    \
                               size_t cs, float *y, size_t ldy, size_t r, size_t c)         \
    {                                                                                       \
        tile(W, rb, nb, X, cs, y, ldy, r, c, R, C);                                         \
    }
TILE(1, 1) TILE(2, 1) TILE(3, 1) TILE(4, 1)
TILE(1, 2) TILE(2, 2) TILE(3, 2) TILE(4, 2)
TILE(1, 3) TILE(2, 3) TILE(3, 3) TILE(4, 3)
TILE(1, 4) TILE(2, 4) TILE(3, 4)

typedef void (*tile_fn)(const uint8_t *, size_t, size_t, const uint8_t *, size_t, float *, size_t,
                        size_t, size_t);
static const tile_fn TILES[4][3] = {
    {tile_1_1, tile_1_2, tile_1_3},
    {tile_2_1, tile_2_2, tile_2_3},
    {tile_3_1, tile_3_2, tile_3_3},
    {tile_4_1, tile_4_2, tile_4_3},
};

void bl_q4_0_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_0_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    if (ncols == 1 && (nb + 3) / 4 <= DEC_MAX_STEPS) {
        act_step_t st[DEC_MAX_STEPS];
        decode(W, row_bytes, nb, X, y, r0, r1, st);
        return;
    }
    /* a batch of 4 sequences: 3 rows x 4 columns, every weight block decoded
     * once for all four (4 x 4 would not fit the registers) */
    if (ncols == 4) {
        static const tile_fn T4[3] = {tile_1_4, tile_2_4, tile_3_4};
        for (size_t r = r0; r < r1; r += 3)
            T4[(r1 - r < 3 ? r1 - r : 3) - 1](W, row_bytes, nb, X, cs, y, ldy, r, 0);
        return;
    }
    /* rows outer so a few rows of weights stay in L1 while every column
     * (in L2) passes by them */
    for (size_t r = r0; r < r1; r += 4) {
        size_t R = r1 - r < 4 ? r1 - r : 4;
        for (size_t c = 0; c < ncols; c += 3) {
            size_t C = ncols - c < 3 ? ncols - c : 3;
            TILES[R - 1][C - 1](W, row_bytes, nb, X, cs, y, ldy, r, c);
        }
    }
}
