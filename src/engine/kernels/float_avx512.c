/*
 * F32, F16 and BF16 weights with AVX-512: widen to f32 and FMA. BF16 uses
 * vdpbf16ps when the CPU has AVX512_BF16 (its pair products are exact in
 * f32, so it only rounds where an FMA would). Decode walks rows one at a
 * time (one sequential DRAM stream, see q4_0_avx512.c) with four
 * accumulators to cover the FMA latency; prefill uses tiles of 4 rows x 4
 * columns so each loaded weight serves four columns.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline

enum { T_F32, T_F16, T_BF16 };

/* 16 elements from i (the first cnt when masked), widened to f32 */
AI __m512 ld16(const void *p, size_t i, const int type, const int masked, __mmask16 m)
{
    switch (type) {
    case T_F32:
        return masked ? _mm512_maskz_loadu_ps(m, (const float *)p + i)
                      : _mm512_loadu_ps((const float *)p + i);
    case T_F16: {
        __m256i h = masked ? _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i)
                           : _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
        return _mm512_cvtph_ps(h);
    }
    default: {
        __m256i h = masked ? _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i)
                           : _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    }
}

AI size_t esize(const int type) { return type == T_F32 ? 4 : 2; }

AI void tile(const uint8_t *W, size_t rb, size_t n, const uint8_t *X, float *y, size_t ldy,
             size_t r, size_t c, const int R, const int C, const int type)
{
    const size_t cs = n * esize(type);
    __m512 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m512 a[4];
        for (int j = 0; j < C; j++)
            a[j] = ld16(X + (c + j) * cs, k, type, 0, 0);
        for (int i = 0; i < R; i++) {
            __m512 w = ld16(W + (r + i) * rb, k, type, 0, 0);
            for (int j = 0; j < C; j++)
                acc[i][j] = _mm512_fmadd_ps(w, a[j], acc[i][j]);
        }
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 a[4];
        for (int j = 0; j < C; j++)
            a[j] = ld16(X + (c + j) * cs, k, type, 1, m);
        for (int i = 0; i < R; i++) {
            __m512 w = ld16(W + (r + i) * rb, k, type, 1, m);
            for (int j = 0; j < C; j++)
                acc[i][j] = _mm512_fmadd_ps(w, a[j], acc[i][j]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            y[(c + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* one row against one column, four independent accumulators */
AI float row_dot(const uint8_t *w, const uint8_t *x, size_t n, const int type)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t k = 0;
    for (; k + 64 <= n; k += 64) {
        /* decode: see BL_PF_BYTES; one prefetch per line of weights */
        for (size_t o = 0; o < 64 * esize(type); o += 64)
            _mm_prefetch((const char *)w + k * esize(type) + o + BL_PF_BYTES, _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(ld16(w, k, type, 0, 0), ld16(x, k, type, 0, 0), a0);
        a1 = _mm512_fmadd_ps(ld16(w, k + 16, type, 0, 0), ld16(x, k + 16, type, 0, 0), a1);
        a2 = _mm512_fmadd_ps(ld16(w, k + 32, type, 0, 0), ld16(x, k + 32, type, 0, 0), a2);
        a3 = _mm512_fmadd_ps(ld16(w, k + 48, type, 0, 0), ld16(x, k + 48, type, 0, 0), a3);
    }
    for (; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? 0xffff : (__mmask16)((1u << (n - k)) - 1);
        a0 = _mm512_fmadd_ps(ld16(w, k, type, 1, m), ld16(x, k, type, 1, m), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

#define TILE(T, R, C)                                                                       \
    static void tile_##T##_##R##_##C(const uint8_t *W, size_t rb, size_t n, const uint8_t *X, \
                                     float *y, size_t ldy, size_t r, size_t c)              \
    {                                                                                       \
        tile(W, rb, n, X, y, ldy, r, c, R, C, T);                                           \
    }
#define TILES_OF(T)                                                                         \
    TILE(T, 1, 1) TILE(T, 2, 1) TILE(T, 3, 1) TILE(T, 4, 1) TILE(T, 1, 2) TILE(T, 2, 2)    \
    TILE(T, 3, 2) TILE(T, 4, 2) TILE(T, 1, 3) TILE(T, 2, 3) TILE(T, 3, 3) TILE(T, 4, 3)    \
    TILE(T, 1, 4) TILE(T, 2, 4) TILE(T, 3, 4) TILE(T, 4, 4)
TILES_OF(T_F32)
TILES_OF(T_F16)
TILES_OF(T_BF16)

typedef void (*tile_fn)(const uint8_t *, size_t, size_t, const uint8_t *, float *, size_t,
                        size_t, size_t);
#define TABLE(T)                                                                            \
    {                                                                                       \
        {tile_##T##_1_1, tile_##T##_1_2, tile_##T##_1_3, tile_##T##_1_4},                   \
        {tile_##T##_2_1, tile_##T##_2_2, tile_##T##_2_3, tile_##T##_2_4},                   \
        {tile_##T##_3_1, tile_##T##_3_2, tile_##T##_3_3, tile_##T##_3_4},                   \
        {tile_##T##_4_1, tile_##T##_4_2, tile_##T##_4_3, tile_##T##_4_4},                   \
    }
static const tile_fn TILES[3][4][4] = {TABLE(T_F32), TABLE(T_F16), TABLE(T_BF16)};

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
        for (size_t c = 0; c < ncols; c += 4) {
            size_t C = ncols - c < 4 ? ncols - c : 4;
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
ENTRY(bl_f32_matmul_avx512, T_F32)
ENTRY(bl_f16_matmul_avx512, T_F16)
ENTRY(bl_bf16_matmul_avx512, T_BF16)
