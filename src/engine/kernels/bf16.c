/* BF16 weights: the scalar reference. Activations are rounded to BF16 (ggml's
 * vec_dot_type for BF16), which lets AVX512_BF16's vdpbf16ps do the products. */
#include "engine/kernels/kern_impl.h"

void bl_bf16_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst)
{
    uint16_t *h = dst;
    for (size_t i = 0; i < n * ncols; i++)
        h[i] = bl_f32_to_bf16(x[i]);
}

void bl_bf16_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                           size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const uint16_t *x = (const uint16_t *)X + c * n;
            double sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += (double)bl_bf16_to_f32(w[i]) * bl_bf16_to_f32(x[i]);
            y[c * ldy + r] = (float)sum;
        }
    }
}
