/*
 * F32, F16 and BF16 weights with AVX2 + FMA + F16C: widen to f32 and FMA.
 * Decode walks rows one at a time (one sequential DRAM stream) with four
 * accumulators for the FMA latency; prefill uses tiles of 4 rows x 2 columns.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline

enum { T_F32, T_F16, T_BF16 };

AI size_t esize(const int type) { return type == T_F32 ? 4 : 2; }

/* 8 elements from i, widened to f32 */
AI __m256 ld8(const void *p, size_t i, const int type)
{
    if (type == T_F32)
        return _mm256_loadu_ps((const float *)p + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    if (type == T_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* the last n % 8 elements, zero padded (a bounce buffer keeps reads in range) */
AI __m256 ld_tail(const void *p, size_t i, size_t cnt, const int type)
{
    uint8_t buf[32] = {0};
    memcpy(buf, (const uint8_t *)p + i * esize(type), cnt * esize(type));
    return ld8(buf, 0, type);
}

AI float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float row_dot(const uint8_t *w, const uint8_t *x, size_t n, const int type)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t k = 0;
    for (; k + 32 <= n; k += 32) {
        /* decode: see BL_PF_BYTES; one prefetch per line of weights */
        for (size_t o = 0; o < 32 * esize(type); o += 64)
            _mm_prefetch((const char *)w + k * esize(type) + o + BL_PF_BYTES, _MM_HINT_T0);
        a0 = _mm256_fmadd_ps(ld8(w, k, type), ld8(x, k, type), a0);
        a1 = _mm256_fmadd_ps(ld8(w, k + 8, type), ld8(x, k + 8, type), a1);
        a2 = _mm256_fmadd_ps(ld8(w, k + 16, type), ld8(x, k + 16, type), a2);
        a3 = _mm256_fmadd_ps(ld8(w, k + 24, type), ld8(x, k + 24, type), a3);
    }
    for (; k + 8 <= n; k += 8)
        a0 = _mm256_fmadd_ps(ld8(w, k, type), ld8(x, k, type), a0);
    if (k < n)
        a1 = _mm256_fmadd_ps(ld_tail(w, k, n - k, type), ld_tail(x, k, n - k, type), a1);
    return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

AI void tile(const uint8_t *W, size_t rb, size_t n, const uint8_t *X, float *y, size_t ldy,
             size_t r, size_t c, const int R, const int C, const int type)
{
    const size_t cs = n * esize(type);
    __m256 acc[4][2];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 a[2];
        for (int j = 0; j < C; j++)
            a[j] = ld8(X + (c + j) * cs, k, type);
        for (int i = 0; i < R; i++) {
            __m256 w = ld8(W + (r + i) * rb, k, type);
            for (int j = 0; j < C; j++)
                acc[i][j] = _mm256_fmadd_ps(w, a[j], acc[i][j]);
        }
    }
    if (k < n) {
        __m256 a[2];
        for (int j = 0; j < C; j++)
            a[j] = ld_tail(X + (c + j) * cs, k, n - k, type);
        for (int i = 0; i < R; i++) {
            __m256 w = ld_tail(W + (r + i) * rb, k, n - k, type);
            for (int j = 0; j < C; j++)
                acc[i][j] = _mm256_fmadd_ps(w, a[j], acc[i][j]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            y[(c + j) * ldy + r + i] = hsum(acc[i][j]);
}

#define TILE(T, R, C)                                                                       \
    static void tile_##T##_##R##_##C(const uint8_t *W, size_t rb, size_t n, const uint8_t *X, \
                                     float *y, size_t ldy, size_t r, size_t c)              \
    {                                                                                       \
        tile(W, rb, n, X, y, ldy, r, c, R, C, T);                                           \
    }
#define TILES_OF(T)                                                                         \
    TILE(T, 1, 1) TILE(T, 2, 1) TILE(T, 3, 1) TILE(T, 4, 1) TILE(T, 1, 2) TILE(T, 2, 2)    \
    TILE(T, 3, 2) TILE(T, 4, 2)
TILES_OF(T_F32)
TILES_OF(T_F16)
TILES_OF(T_BF16)

typedef void (*tile_fn)(const uint8_t *, size_t, size_t, const uint8_t *, float *, size_t,
                        size_t, size_t);
#define TABLE(T)                                                                            \
    {                                                                                       \
        {tile_##T##_1_1, tile_##T##_1_2}, {tile_##T##_2_1, tile_##T##_2_2},                 \
            {tile_##T##_3_1, tile_##T##_3_2}, {tile_##T##_4_1, tile_##T##_4_2},             \
    }
static const tile_fn TILES[3][4][2] = {TABLE(T_F32), TABLE(T_F16), TABLE(T_BF16)};

static void matmul(const int type, const void *W, size_t rb, size_t n, const void *X,
                   size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    if (ncols == 1) {
        for (size_t r = r0; r < r1; r++)
            y[r] = row_dot((const uint8_t *)W + r * rb, X, n, type);
        return;
    }
    for (size_t r = r0; r < r1; r += 4) {
        size_t R = r1 - r < 4 ? r1 - r : 4;
        for (size_t c = 0; c < ncols; c += 2) {
            size_t C = ncols - c < 2 ? ncols - c : 2;
            TILES[type][R - 1][C - 1](W, rb, n, X, y, ldy, r, c);
        }
    }
}

#define ENTRY(name, T)                                                                      \
    void name(const void *W, size_t rb, size_t n, const void *X, size_t ncols, float *y,    \
              size_t ldy, size_t r0, size_t r1);                                            \
    void name(const void *W, size_t rb, size_t n, const void *X, size_t ncols, float *y,    \
              size_t ldy, size_t r0, size_t r1)                                             \
    {                                                                                       \
        matmul(T, W, rb, n, X, ncols, y, ldy, r0, r1);                                      \
    }
ENTRY(bl_f32_matmul_avx2, T_F32)
ENTRY(bl_f16_matmul_avx2, T_F16)
ENTRY(bl_bf16_matmul_avx2, T_BF16)
