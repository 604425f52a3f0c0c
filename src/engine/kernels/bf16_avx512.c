/*
 * BF16 weights with AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs and adds
 * each pair into an f32 lane. The products of two bf16 are exact in f32, so
 * like an FMA it rounds once per addition (it also flushes denormals, which
 * bf16 weights and activations of a sane model do not have). Only called
 * when cpuid reports AVX512_BF16.
 */
#include <immintrin.h>

#include "engine/kernels/kern_impl.h"

#define AI __attribute__((always_inline)) static inline

AI __m512bh ld32(const uint16_t *p, size_t i, size_t cnt)
{
    __m512i v = cnt >= 32 ? _mm512_loadu_si512(p + i)
                          : _mm512_maskz_loadu_epi16((__mmask32)((1ull << cnt) - 1), p + i);
    return (__m512bh)v;
}

AI float row_dot(const uint16_t *w, const uint16_t *x, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t k = 0;
    for (; k + 128 <= n; k += 128) {
        a0 = _mm512_dpbf16_ps(a0, ld32(w, k, 32), ld32(x, k, 32));
        a1 = _mm512_dpbf16_ps(a1, ld32(w, k + 32, 32), ld32(x, k + 32, 32));
        a2 = _mm512_dpbf16_ps(a2, ld32(w, k + 64, 32), ld32(x, k + 64, 32));
        a3 = _mm512_dpbf16_ps(a3, ld32(w, k + 96, 32), ld32(x, k + 96, 32));
    }
    for (; k < n; k += 32)
        a0 = _mm512_dpbf16_ps(a0, ld32(w, k, n - k), ld32(x, k, n - k));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

AI void tile(const uint8_t *W, size_t rb, size_t n, const uint16_t *X, float *y, size_t ldy,
             size_t r, size_t c, const int R, const int C)
{
    __m512 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (size_t k = 0; k < n; k += 32) {
        size_t cnt = n - k;
        __m512bh a[4];
        for (int j = 0; j < C; j++)
            a[j] = ld32(X + (c + j) * n, k, cnt);
        for (int i = 0; i < R; i++) {
            __m512bh w = ld32((const uint16_t *)(W + (r + i) * rb), k, cnt);
            for (int j = 0; j < C; j++)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], w, a[j]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            y[(c + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

static void tile_4_4(const uint8_t *W, size_t rb, size_t n, const uint16_t *X, float *y,
                     size_t ldy, size_t r, size_t c)
{
    tile(W, rb, n, X, y, ldy, r, c, 4, 4);
}

static void tile_1_1(const uint8_t *W, size_t rb, size_t n, const uint16_t *X, float *y,
                     size_t ldy, size_t r, size_t c)
{
    tile(W, rb, n, X, y, ldy, r, c, 1, 1);
}

void bl_bf16_matmul_avx512_bf16(const void *W, size_t rb, size_t n, const void *X, size_t ncols,
                                float *y, size_t ldy, size_t r0, size_t r1);
void bl_bf16_matmul_avx512_bf16(const void *W, size_t rb, size_t n, const void *X, size_t ncols,
                                float *y, size_t ldy, size_t r0, size_t r1)
{
    const uint8_t *w = W;
    const uint16_t *x = X;
    if (ncols == 1) {
        for (size_t r = r0; r < r1; r++)
            y[r] = row_dot((const uint16_t *)(w + r * rb), x, n);
        return;
    }
    for (size_t r = r0; r < r1; r += 4) {
        for (size_t c = 0; c < ncols; c += 4) {
            if (r + 4 <= r1 && c + 4 <= ncols) {
                tile_4_4(w, rb, n, x, y, ldy, r, c);
                continue;
            }
            /* ragged edge: single row x column dots */
            for (size_t i = r; i < r + 4 && i < r1; i++)
                for (size_t j = c; j < c + 4 && j < ncols; j++)
                    tile_1_1(w, rb, n, x, y, ldy, i, j);
        }
    }
}
