/* Q5_K: Q4_K with a fifth bit per element (ggml's block_q5_K); value =
 * d*sc[j]*q - dmin*m[j], q 0..31, the fifth bit of element l of sub-block j
 * is bit j of qh[l]. */
#include "engine/kernels/kern_impl.h"

/* ggml's quantize_row_q5_K_ref */
void bl_q5_k_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q5_k *y = dst;
    for (size_t b = 0; b < n / BL_QKK; b++) {
        uint8_t L[BL_QKK];
        bl_block_q5_k blk;
        bl_k4_quantize_block(src + b * BL_QKK, 31, -0.5f, 15, &blk.d, &blk.dmin, blk.scales, L);
        memset(blk.qh, 0, sizeof blk.qh);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < BL_QKK; j += 64) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    blk.qh[l] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    blk.qh[l] |= m2;
                }
                blk.qs[j / 2 + l] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
        memcpy(&y[b], &blk, sizeof blk);
    }
}

/* element l (0..31) of sub-block j as 0..31 */
static inline int q5k(const bl_block_q5_k *x, int j, int l)
{
    const uint8_t q = x->qs[32 * (j / 2) + l];
    return (j & 1 ? q >> 4 : q & 0xf) | ((x->qh[l] >> j) & 1) << 4;
}

void bl_q5_k_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q5_k *x = src;
    for (size_t b = 0; b < n / BL_QKK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        const float min = bl_fp16_to_f32(bl_ld16(&x[b].dmin));
        uint8_t sc[8], m[8];
        bl_k4_scales(x[b].scales, sc, m);
        for (int j = 0; j < 8; j++) {
            const float d1 = d * sc[j], m1 = min * m[j];
            for (int l = 0; l < 32; l++)
                dst[b * BL_QKK + 32 * j + l] = d1 * q5k(&x[b], j, l) - m1;
        }
    }
}

void bl_q5_k_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                           float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK;
    const size_t cstride = nb * BL_Q8K_BYTES_PER_BLOCK;
    for (size_t r = r0; r < r1; r++) {
        const bl_block_q5_k *w = (const bl_block_q5_k *)((const char *)W + r * row_bytes);
        for (size_t c = 0; c < ncols; c++) {
            const void *col = (const char *)X + c * cstride;
            const int8_t *qa = bl_q8k_qs(col);
            const float *da = bl_q8k_d(col, nb);
            const int16_t *sa = bl_q8k_s(col, nb);
            /* ggml's x86 ggml_vec_dot_q5_K_q8_K: lanes as bl_lanes_fma,
             * the mins summed in a float beside them, added last */
            float acc[8] = {0}, summs = 0.0f;
            for (size_t b = 0; b < nb; b++) {
                uint8_t sc[8], m[8];
                bl_k4_scales(w[b].scales, sc, m);
                int32_t lane[8] = {0}, msum = 0;
                for (int j = 0; j < 8; j++) {
                    const int8_t *a = qa + b * BL_QKK + 32 * j;
                    for (int l = 0; l < 32; l++)
                        lane[bl_lane(l)] += sc[j] * (q5k(&w[b], j, l) * a[l]);
                    msum += m[j] * (sa[b * 16 + 2 * j] + sa[b * 16 + 2 * j + 1]);
                }
                bl_lanes_fma(acc, da[b] * bl_fp16_to_f32(bl_ld16(&w[b].d)), lane);
                summs = fmaf(da[b] * bl_fp16_to_f32(bl_ld16(&w[b].dmin)), (float)msum, summs);
            }
            const float sum = bl_hsum8(acc) - summs;
            y[c * ldy + r] = sum;
        }
    }
}
