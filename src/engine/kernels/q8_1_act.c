/* Q5_1's activations, ggml's block_q8_1 (vec_dot_type of Q5_1): Q8_0's quants
 * and fp16 scale, and s = d * (sum of the quants) kept as fp16, with d the
 * scale before its fp16 rounding (amax/127), as ggml's x86 quantize_row_q8_1
 * computes it. Stored in the Q8 activation layout (kern_impl.h) with s as a
 * float in place of the integer block sum. */
#include <math.h>

#include "engine/kernels/kern_impl.h"

static void q8_1_sums(const float *x, size_t n, size_t ncols, void *dst)
{
    const size_t nb = n / BL_QK;
    for (size_t c = 0; c < ncols; c++) {
        char *col = (char *)dst + c * nb * BL_Q8A_BYTES_PER_BLOCK;
        int32_t *s = (int32_t *)(col + nb * BL_QK + nb * 4);
        for (size_t b = 0; b < nb; b++) {
            const float *xb = x + c * n + b * BL_QK;
            float amax = 0.0f;
            for (int j = 0; j < BL_QK; j++)
                amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127.0f;
            const float sf = bl_fp16_to_f32(bl_f32_to_fp16(d * (float)s[b]));
            memcpy(&s[b], &sf, 4);
        }
    }
}

void bl_q8a1_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst)
{
    bl_q8a_prepare_scalar(x, n, ncols, dst);
    q8_1_sums(x, n, ncols, dst);
}

/* only called where the CPU has AVX2 (bl_kern_fill_avx2) */
void bl_q8a1_prepare_avx2(const float *x, size_t n, size_t ncols, void *dst)
{
    bl_q8a_prepare_avx2(x, n, ncols, dst);
    q8_1_sums(x, n, ncols, dst);
}
