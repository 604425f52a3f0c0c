/* Q8_0: blocks of 32 = fp16 scale + 32 int8 (ggml's block_q8_0). The scalar
 * reference of the quantizer, the activation preparation and the matmul. */
#include <math.h>

#include "engine/kernels/kern_impl.h"

/* ggml's quantize_row_q8_0_ref: d = amax/127, q = roundf(x * (1/d)) — the
 * exact operations matter so files we write load identically in llama.cpp. */
void bl_q8_0_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q8_0 *y = dst;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float *x = src + b * BL_QK;
        float amax = 0.0f;
        for (int j = 0; j < BL_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        bl_block_q8_0 blk;
        blk.d = bl_f32_to_fp16(d);
        for (int j = 0; j < BL_QK; j++)
            blk.qs[j] = (int8_t)roundf(x[j] * id);
        memcpy(&y[b], &blk, sizeof blk);
    }
}

void bl_q8_0_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q8_0 *x = src;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        for (int j = 0; j < BL_QK; j++)
            dst[b * BL_QK + j] = x[b].qs[j] * d;
    }
}

void bl_q8a_quantize_block(const float *x, int8_t *qs, float *d, int32_t *s)
{
    float amax = 0.0f;
    for (int j = 0; j < BL_QK; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < BL_QK; j++) {
        /* nearbyintf: round half to even, as _mm256_round_ps does */
        int q = (int)nearbyintf(x[j] * id);
        qs[j] = (int8_t)q;
        sum += q;
    }
    *d = bl_fp16_to_f32(bl_f32_to_fp16(amax / 127.0f));
    *s = sum;
}

void bl_q8a_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst)
{
    const size_t nb = n / BL_QK;
    for (size_t c = 0; c < ncols; c++) {
        char *col = (char *)dst + c * nb * BL_Q8A_BYTES_PER_BLOCK;
        int8_t *qs = (int8_t *)col;
        float *d = (float *)(col + nb * BL_QK);
        int32_t *s = (int32_t *)(col + nb * BL_QK + nb * 4);
        for (size_t b = 0; b < nb; b++)
            bl_q8a_quantize_block(x + c * n + b * BL_QK, qs + b * BL_QK, &d[b], &s[b]);
    }
}

void bl_q8_0_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                           size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK;
    const size_t cstride = nb * BL_Q8A_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const bl_block_q8_0 *w = (const bl_block_q8_0 *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const void *col = (const char *)X + c * cstride;
            const int8_t *qa = bl_q8a_qs(col);
            const float *da = bl_q8a_d(col, nb);
            float sum = 0.0f;
            for (size_t b = 0; b < nb; b++) {
                int32_t isum = 0;
                for (int j = 0; j < BL_QK; j++)
                    isum += w[b].qs[j] * qa[b * BL_QK + j];
                sum += (float)isum * (bl_fp16_to_f32(bl_ld16(&w[b].d)) * da[b]);
            }
            y[c * ldy + r] = sum;
        }
    }
}
