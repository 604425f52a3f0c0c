/* Q5_1: blocks of 32 = fp16 scale and min + 32 fifth bits + 16 bytes of
 * nibbles (ggml's block_q5_1); value = d * q + m. Paired with ggml's
 * Q8_1 activations (q8_1_act.c), whose fp16 s = da*sum(qa) gives the min
 * term: sum(w*a) = d*da*sum(q*qa) + m*s. */
#include <float.h>

#include "engine/kernels/kern_impl.h"

/* ggml's quantize_row_q5_1_ref: d = (max - min)/31, q = (uint8)((x-min)/d + 0.5). */
void bl_q5_1_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q5_1 *y = dst;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float *x = src + b * BL_QK;
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < BL_QK; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        bl_block_q5_1 blk;
        blk.d = bl_f32_to_fp16(d);
        blk.m = bl_f32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < BL_QK / 2; j++) {
            uint8_t q0 = (uint8_t)((x[j] - min) * id + 0.5f);
            uint8_t q1 = (uint8_t)((x[j + BL_QK / 2] - min) * id + 0.5f);
            blk.qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)((q0 & 0x10u) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10u) >> 4) << (j + BL_QK / 2);
        }
        memcpy(blk.qh, &qh, 4);
        memcpy(&y[b], &blk, sizeof blk);
    }
}

static inline int q5(const uint8_t *qs, uint32_t qh, int j)
{
    int nib = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
    return nib | (int)((qh >> j) & 1) << 4;
}

void bl_q5_1_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q5_1 *x = src;
    for (size_t b = 0; b < n / BL_QK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        const float m = bl_fp16_to_f32(bl_ld16(&x[b].m));
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        for (int j = 0; j < BL_QK; j++)
            dst[b * BL_QK + j] = q5(x[b].qs, qh, j) * d + m;
    }
}

void bl_q5_1_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                           float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QK;
    const size_t cstride = nb * BL_Q8A_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const bl_block_q5_1 *w = (const bl_block_q5_1 *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const void *col = (const char *)X + c * cstride;
            const int8_t *qa = bl_q8a_qs(col);
            const float *da = bl_q8a_d(col, nb);
            const float *sf = bl_q8a_sf(col, nb);
            /* ggml's x86 ggml_vec_dot_q5_1_q8_1: lanes as bl_lanes_fma, the
             * mins m * s summed in a float beside them, added last */
            float acc[8] = {0}, summs = 0.0f;
            for (size_t b = 0; b < nb; b++) {
                uint32_t qh;
                memcpy(&qh, w[b].qh, 4);
                int32_t lane[8] = {0};
                for (int j = 0; j < BL_QK; j++)
                    lane[bl_lane(j)] += q5(w[b].qs, qh, j) * qa[b * BL_QK + j];
                bl_lanes_fma(acc, bl_fp16_to_f32(bl_ld16(&w[b].d)) * da[b], lane);
                summs = fmaf(bl_fp16_to_f32(bl_ld16(&w[b].m)), sf[b], summs);
            }
            const float sum = bl_hsum8(acc) + summs;
            y[c * ldy + r] = sum;
        }
    }
}
