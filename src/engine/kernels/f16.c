/* F16 weights: the scalar reference. Activations are rounded to F16 too, as
 * llama.cpp does (its vec_dot_type for F16 is F16), so our logits follow its
 * numerics; the products are summed in double here, in float in SIMD. */
#include "engine/kernels/kern_impl.h"

void bl_f16_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst)
{
    uint16_t *h = dst;
    for (size_t i = 0; i < n * ncols; i++)
        h[i] = bl_f32_to_fp16(x[i]);
}

void bl_f16_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                          size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const uint16_t *x = (const uint16_t *)X + c * n;
            double sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += (double)bl_fp16_to_f32(w[i]) * bl_fp16_to_f32(x[i]);
            y[c * ldy + r] = (float)sum;
        }
    }
}
