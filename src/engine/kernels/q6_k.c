/* Q6_K: super-blocks of 256 = sixteen sub-blocks of 16 with int8 scales
 * (ggml's block_q6_K); value = d*sc[e/16]*(q - 32), q 0..63 from 4 low bits
 * in ql and 2 high bits in qh. In each half of 128 elements, element l
 * (0..31) + 32*k takes ql[l + 32*(k&1)] nibble k/2 and qh[l] bits 2k..2k+1. */
#include "engine/kernels/kern_impl.h"

#define GROUP_MAX_EPS 1e-15f

/* ggml's quantize_row_q6_K_ref */
void bl_q6_k_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q6_k *y = dst;
    for (size_t b = 0; b < n / BL_QKK; b++) {
        const float *x = src + b * BL_QKK;
        int8_t L[BL_QKK];
        float scales[16], max_scale = 0, max_abs_scale = 0;
        bl_block_q6_k blk;
        for (int ib = 0; ib < 16; ib++) {
            const float scale = bl_make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = scale < 0 ? -scale : scale;
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[b], 0, sizeof blk);
            continue;
        }
        float iscale = -128.f / max_scale;
        blk.d = bl_f32_to_fp16(1 / iscale);
        for (int ib = 0; ib < 16; ib++) {
            int l = bl_nearest_int(iscale * scales[ib]);
            blk.scales[ib] = (int8_t)(l < 127 ? l : 127);
        }
        for (int j = 0; j < 16; j++) {
            float d = bl_fp16_to_f32(blk.d) * blk.scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = bl_nearest_int(x[16 * j + ii] / d);
                l = l < -32 ? -32 : l > 31 ? 31 : l;
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        for (int j = 0; j < BL_QKK; j += 128) {
            uint8_t *ql = blk.ql + j / 2, *qh = blk.qh + j / 4;
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
        memcpy(&y[b], &blk, sizeof blk);
    }
}

/* element e (0..255) as 0..63 */
static inline int q6(const bl_block_q6_k *x, int e)
{
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t ql = x->ql[64 * h + l + 32 * (k & 1)];
    return (k < 2 ? ql & 0xf : ql >> 4) | ((x->qh[32 * h + l] >> (2 * k)) & 3) << 4;
}

void bl_q6_k_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q6_k *x = src;
    for (size_t b = 0; b < n / BL_QKK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        for (int e = 0; e < BL_QKK; e++)
            dst[b * BL_QKK + e] = d * x[b].scales[e / 16] * (int8_t)(q6(&x[b], e) - 32);
    }
}

void bl_q6_k_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                           float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK;
    const size_t cstride = nb * BL_Q8K_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const bl_block_q6_k *w = (const bl_block_q6_k *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const void *col = (const char *)X + c * cstride;
            const int8_t *qa = bl_q8k_qs(col);
            const float *da = bl_q8k_d(col, nb);
            const int16_t *sa = bl_q8k_s(col, nb);
            /* ggml's x86 ggml_vec_dot_q6_K_q8_K: lanes as bl_lanes_fma of
             * q (0..63) times the activations, the "-32" taken off lane k
             * as 32 * scale * activation sum for groups 2k and 2k+1 */
            float acc[8] = {0};
            for (size_t b = 0; b < nb; b++) {
                int32_t lane[8] = {0};
                for (int e = 0; e < BL_QKK; e++)
                    lane[bl_lane(e)] +=
                        w[b].scales[e / 16] * (q6(&w[b], e) * qa[b * BL_QKK + e]);
                for (int k = 0; k < 8; k++)
                    lane[k] -= 32 * (w[b].scales[2 * k] * sa[b * 16 + 2 * k] +
                                     w[b].scales[2 * k + 1] * sa[b * 16 + 2 * k + 1]);
                bl_lanes_fma(acc, da[b] * bl_fp16_to_f32(bl_ld16(&w[b].d)), lane);
            }
            const float sum = bl_hsum8(acc);
            y[c * ldy + r] = sum;
        }
    }
}
