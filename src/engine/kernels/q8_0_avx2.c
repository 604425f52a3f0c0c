/*
 * Q8_0 x Q8 activations with AVX2: the sign trick (vpmaddubsw of |w| as
 * unsigned and a * sign(w)) then vpmaddwd into int32 lanes. |-128| read as
 * unsigned is 128, so every int8 weight is exact; pairs stay within int16
 * (2 * 128 * 127). Decode walks rows one at a time; prefill uses 2x2 tiles.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline
#define QB 34

AI void tile(const uint8_t *W, size_t rb, size_t nb, const uint8_t *X, size_t cs, float *y,
             size_t ldy, size_t r, size_t c, const int R, const int C)
{
    const __m256i ones = _mm256_set1_epi16(1);
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
        __m256i a[2];
        for (int j = 0; j < C; j++)
            a[j] = _mm256_loadu_si256((const __m256i *)(qa[j] + b * 32));
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = wr[i] + b * QB;
            __m256i w = _mm256_loadu_si256((const __m256i *)(blk + 2));
            __m256i aw = _mm256_sign_epi8(w, w);
            float dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bl_ld16(blk))));
            for (int j = 0; j < C; j++) {
                __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(a[j], w));
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

/* Decode: one row against one column; scales of 8 blocks are gathered with
 * pinsrw and converted at once instead of one by one. */
static float decode_row(const uint8_t *w, const int8_t *qa, const float *da, size_t nb)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    size_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const uint8_t *run = w + b * QB;
        const char *pf = (const char *)run + BL_PF_BYTES; /* see BL_PF_BYTES */
        for (int o = 0; o < 8 * QB; o += 64)
            _mm_prefetch(pf + o, _MM_HINT_T0);
        __m128i h = _mm_cvtsi32_si128(bl_ld16(run));
        h = _mm_insert_epi16(h, bl_ld16(run + QB), 1);
        h = _mm_insert_epi16(h, bl_ld16(run + 2 * QB), 2);
        h = _mm_insert_epi16(h, bl_ld16(run + 3 * QB), 3);
        h = _mm_insert_epi16(h, bl_ld16(run + 4 * QB), 4);
        h = _mm_insert_epi16(h, bl_ld16(run + 5 * QB), 5);
        h = _mm_insert_epi16(h, bl_ld16(run + 6 * QB), 6);
        h = _mm_insert_epi16(h, bl_ld16(run + 7 * QB), 7);
        const __m256 s8 = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(da + b));
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(run + u * QB + 2));
            __m256i a = _mm256_loadu_si256((const __m256i *)(qa + (b + u) * 32));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
            __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            __m256 sc = _mm256_permutevar8x32_ps(s8, _mm256_set1_epi32(u));
            if (u & 1)
                acc1 = _mm256_fmadd_ps(f, sc, acc1);
            else
                acc0 = _mm256_fmadd_ps(f, sc, acc0);
        }
    }
    for (; b < nb; b++) {
        const uint8_t *blk = w + b * QB;
        __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
        __m256i a = _mm256_loadu_si256((const __m256i *)(qa + b * 32));
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
        float dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bl_ld16(blk))));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)),
                               _mm256_set1_ps(dw * da[b]), acc0);
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

void bl_q8_0_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1);
void bl_q8_0_matmul_avx2(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                         float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK, cs = nb * BL_Q8A_BYTES_PER_BLOCK;
    if (ncols == 1) {
        const int8_t *qa = bl_q8a_qs(X);
        const float *da = bl_q8a_d(X, nb);
        for (size_t r = r0; r < r1; r++)
            y[r] = decode_row((const uint8_t *)W + r * row_bytes, qa, da, nb);
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
