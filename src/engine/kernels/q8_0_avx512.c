/*
 * Q8_0 x Q8 activations with AVX-512 VNNI. vpdpbusd wants one unsigned
 * operand, so the activations are flipped to a + 128 (a xor 0x80) and the
 * extra 128 * sum(w) is taken back out with a second vpdpbusd against a
 * constant 0x80: exact for every int8 weight, -128 included (AVX-512 has no
 * vpsignb for the AVX2 sign trick).
 * A step is 2 blocks (one zmm of weights); int32 lanes 0..7 belong to the
 * first block and 8..15 to the second. Scales of 4 blocks come from one
 * vpermt2w over the 128 bytes they start in.
 *
 * Every (row, column) pair is summed by the same chain whatever the tile:
 * the weight scale times that column's activation scale (one product per
 * block), then one fma per 2 blocks into its accumulator, reduced at the
 * end. So a column of a multi-column call is bit for bit the single-column
 * result, and a batch of sequences decodes through the tiles (the weights
 * decoded once for all columns) exactly as each sequence alone.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline
#define QB 34 /* bytes per Q8_0 block */

/* fp16 scales of the first nblk (<= 4) blocks from p: words 0, 17, 34, 51 */
AI __m512 scales4(const uint8_t *p, size_t nblk, const int full)
{
    const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 34, 17, 0);
    __m512i lo, hi;
    if (full) {
        lo = _mm512_loadu_si512(p);
        hi = _mm512_loadu_si512(p + 64);
    } else {
        uint64_t words = (nblk - 1) * 17 + 1, m = (1ull << words) - 1;
        lo = _mm512_maskz_loadu_epi16((__mmask32)m, p);
        hi = _mm512_maskz_loadu_epi16((__mmask32)(m >> 32), p + 64);
    }
    __m512i h = _mm512_permutex2var_epi16(lo, idx, hi);
    return _mm512_castps128_ps512(_mm_cvtph_ps(_mm512_castsi512_si128(h)));
}

/* the quants of nblk (1 or 2) blocks */
AI __m512i quants2(const uint8_t *blk, size_t nblk)
{
    __m512i q = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2)));
    if (nblk == 2)
        return _mm512_inserti64x4(q, _mm256_loadu_si256((const __m256i *)(blk + QB + 2)), 1);
    return _mm512_maskz_mov_epi64(0x0f, q);
}

/* activations of nblk (1 or 2) blocks, flipped to unsigned */
AI __m512i acts2(const int8_t *a, size_t nblk)
{
    __m512i v = nblk == 2 ? _mm512_loadu_si512(a)
                          : _mm512_maskz_loadu_epi8(0xffffffffull, a);
    return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
}

/* One run of up to 4 blocks (exactly 4 when full) for R rows x C columns. */
AI void run(__m512 acc[4][3], const uint8_t *const wr[4], const int8_t *const qa[3],
            const float *const da[3], size_t nb, size_t b, const int R, const int C,
            const int full)
{
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    const __m512i ik0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i ik1 = _mm512_add_epi32(ik0, _mm512_set1_epi32(2));
    const size_t nrun = full ? 4 : nb - b;
    if (R == 1 && C == 1 && full) { /* decode: see BL_PF_BYTES */
        const char *p = (const char *)wr[0] + b * QB + BL_PF_BYTES;
        _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(p + 64, _MM_HINT_T0);
        _mm_prefetch(p + 128, _MM_HINT_T0);
    }
    __m512 sw[4], sa4[3];
    for (int j = 0; j < C; j++)
        sa4[j] = full ? _mm512_castps128_ps512(_mm_loadu_ps(da[j] + b))
                      : _mm512_maskz_loadu_ps((__mmask16)((1u << nrun) - 1), da[j] + b);
    __m512 swa[4][3]; /* weight scale x column j's activation scale */
    for (int i = 0; i < R; i++) {
        sw[i] = scales4(wr[i] + b * QB, nrun, full);
        for (int j = 0; j < C; j++)
            swa[i][j] = _mm512_mul_ps(sw[i], sa4[j]);
    }
    for (int k = 0; k < 2; k++) {
        const size_t bb = b + 2 * k;
        if (!full && bb >= nb)
            break;
        const size_t nblk = full ? 2 : (nb - bb < 2 ? nb - bb : 2);
        const __m512i ik = k ? ik1 : ik0;
        __m512i ua[3];
        for (int j = 0; j < C; j++)
            ua[j] = acts2(qa[j] + bb * 32, nblk);
        for (int i = 0; i < R; i++) {
            __m512i w = quants2(wr[i] + bb * QB, nblk);
            /* -128 * sum(w) per lane, shared by the columns */
            __m512i neg = _mm512_sub_epi32(_mm512_setzero_si512(),
                                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), c80, w));
            for (int j = 0; j < C; j++) {
                __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg, ua[j], w));
                acc[i][j] = _mm512_fmadd_ps(f, _mm512_permutexvar_ps(ik, swa[i][j]), acc[i][j]);
            }
        }
    }
}

AI void tile(const uint8_t *W, size_t rb, size_t nb, const uint8_t *X, size_t cs, float *y,
             size_t ldy, size_t r, size_t c, const int R, const int C)
{
    __m512 acc[4][3];
    const uint8_t *wr[4];
    const int8_t *qa[3];
    const float *da[3];
    for (int i = 0; i < R; i++)
        wr[i] = W + (r + i) * rb;
    for (int j = 0; j < C; j++) {
        const uint8_t *col = X + (c + j) * cs;
        qa[j] = bl_q8a_qs(col);
        da[j] = bl_q8a_d(col, nb);
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 4 <= nb; b += 4)
        run(acc, wr, qa, da, nb, b, R, C, 1);
    if (b < nb)
        run(acc, wr, qa, da, nb, b, R, C, 0);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            y[(c + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
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

typedef void (*tile_fn)(const uint8_t *, size_t, size_t, const uint8_t *, size_t, float *, size_t,
                        size_t, size_t);
static const tile_fn TILES[4][3] = {
    {tile_1_1, tile_1_2, tile_1_3},
    {tile_2_1, tile_2_2, tile_2_3},
    {tile_3_1, tile_3_2, tile_3_3},
    {tile_4_1, tile_4_2, tile_4_3},
};

void bl_q8_0_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q8_0_matmul_avx512_vnni(const void *W, size_t row_bytes, size_t n, const void *X,
                                size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    if (ncols == 1) {
        /* decode: one row at a time keeps DRAM reads one sequential stream */
        for (size_t r = r0; r < r1; r++)
            tile_1_1(W, row_bytes, nb, X, cs, y, ldy, r, 0);
        return;
    }
    for (size_t r = r0; r < r1; r += 4) {
        size_t R = r1 - r < 4 ? r1 - r : 4;
        for (size_t c = 0; c < ncols; c += 3) {
            size_t C = ncols - c < 3 ? ncols - c : 3;
            TILES[R - 1][C - 1](W, row_bytes, nb, X, cs, y, ldy, r, c);
        }
    }
}
