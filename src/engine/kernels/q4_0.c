/* Q4_0: blocks of 32 = fp16 scale + 16 bytes of nibbles (ggml's block_q4_0);
 * value = d * (nibble - 8), low nibbles are elements 0..15, high 16..31. */
#include <math.h>

#include "engine/kernels/kern_impl.h"

/* ggml's quantize_row_q4_0_ref: d = (signed value of largest magnitude)/-8,
 * q = min(15, (int8)(x/d + 8.5)) — truncation, not rounding, on purpose. */
void bl_q4_0_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q4_0 *y = dst;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float *x = src + b * BL_QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < BL_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        bl_block_q4_0 blk;
        blk.d = bl_f32_to_fp16(d);
        for (int j = 0; j < BL_QK / 2; j++) {
            int8_t v0 = (int8_t)(x[j] * id + 8.5f);
            int8_t v1 = (int8_t)(x[j + BL_QK / 2] * id + 8.5f);
            uint8_t q0 = (uint8_t)(v0 < 15 ? v0 : 15);
            uint8_t q1 = (uint8_t)(v1 < 15 ? v1 : 15);
            blk.qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
        memcpy(&y[b], &blk, sizeof blk);
    }
}

void bl_q4_0_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q4_0 *x = src;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        for (int j = 0; j < BL_QK / 2; j++) {
            dst[b * BL_QK + j] = ((x[b].qs[j] & 0x0f) - 8) * d;
            dst[b * BL_QK + j + BL_QK / 2] = ((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void bl_q4_0_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                           size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK;
    const size_t cstride = nb * BL_Q8A_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const bl_block_q4_0 *w = (const bl_block_q4_0 *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const void *col = (const char *)X + c * cstride;
            const int8_t *qa = bl_q8a_qs(col);
            const float *da = bl_q8a_d(col, nb);
            float sum = 0.0f;
            for (size_t b = 0; b < nb; b++) {
                const int8_t *a = qa + b * BL_QK;
                int32_t isum = 0;
                for (int j = 0; j < BL_QK / 2; j++) {
                    isum += ((w[b].qs[j] & 0x0f) - 8) * a[j];
                    isum += ((w[b].qs[j] >> 4) - 8) * a[j + BL_QK / 2];
                }
                sum += (float)isum * (bl_fp16_to_f32(bl_ld16(&w[b].d)) * da[b]);
            }
            y[c * ldy + r] = sum;
        }
    }
}
