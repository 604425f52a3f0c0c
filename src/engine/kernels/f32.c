/* F32 weights: the scalar reference. Activations stay F32. */
#include "engine/kernels/kern_impl.h"

void bl_f32_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst)
{
    memcpy(dst, x, n * ncols * sizeof(float));
}

void bl_f32_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                          size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        const float *w = (const float *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const float *x = (const float *)X + c * n;
            double sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += (double)w[i] * x[i];
            y[c * ldy + r] = (float)sum;
        }
    }
}
