/* Q5_0: blocks of 32 = fp16 scale + 32 fifth bits + 16 bytes of nibbles
 * (ggml's block_q5_0); value = d * (q - 16). Paired with the Q8 activations
 * of Q4_0/Q8_0; the "-16" comes off as 16 * (the activation block's sum). */
#include <math.h>

#include "engine/kernels/kern_impl.h"

/* ggml's quantize_row_q5_0_ref: d = (signed value of largest magnitude)/-16,
 * q = min(31, (int8)(x/d + 16.5)) — truncation, as Q4_0. */
void bl_q5_0_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q5_0 *y = dst;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float *x = src + b * BL_QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < BL_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        bl_block_q5_0 blk;
        blk.d = bl_f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < BL_QK / 2; j++) {
            int8_t v0 = (int8_t)(x[j] * id + 16.5f);
            int8_t v1 = (int8_t)(x[j + BL_QK / 2] * id + 16.5f);
            uint8_t q0 = (uint8_t)(v0 < 31 ? v0 : 31), q1 = (uint8_t)(v1 < 31 ? v1 : 31);
            blk.qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + BL_QK / 2);
        }
        memcpy(blk.qh, &qh, 4);
        memcpy(&y[b], &blk, sizeof blk);
    }
}

/* element j (0..31) of a Q5_0/Q5_1 block as 0..31 */
static inline int q5(const uint8_t *qs, uint32_t qh, int j)
{
    int nib = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
    return nib | (int)((qh >> j) & 1) << 4;
}

void bl_q5_0_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q5_0 *x = src;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        for (int j = 0; j < BL_QK; j++)
            dst[b * BL_QK + j] = (q5(x[b].qs, qh, j) - 16) * d;
    }
}

void bl_q5_0_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                           float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK;
    const size_t cstride = nb * BL_Q8A_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const bl_block_q5_0 *w = (const bl_block_q5_0 *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const void *col = (const char *)X + c * cstride;
            const int8_t *qa = bl_q8a_qs(col);
            const float *da = bl_q8a_d(col, nb);
            /* ggml's x86 Q5_0 x Q8_0 dot (vec_dot and llamafile's tinyBLAS
             * alike): lanes as bl_lanes_fma */
            float acc[8] = {0};
            for (size_t b = 0; b < nb; b++) {
                uint32_t qh;
                memcpy(&qh, w[b].qh, 4);
                int32_t lane[8] = {0};
                for (int j = 0; j < BL_QK; j++)
                    lane[bl_lane(j)] += (q5(w[b].qs, qh, j) - 16) * qa[b * BL_QK + j];
                bl_lanes_fma(acc, bl_fp16_to_f32(bl_ld16(&w[b].d)) * da[b], lane);
            }
            const float sum = bl_hsum8(acc);
            y[c * ldy + r] = sum;
        }
    }
}
