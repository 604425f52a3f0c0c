/* Q4_K: super-blocks of 256 = eight sub-blocks of 32 with 6-bit scales and
 * mins (ggml's block_q4_K); value = d*sc[j]*q - dmin*m[j], q 0..15. Paired
 * with the Q8_K-style activations; the min term uses their 16-element sums. */
#include "engine/kernels/kern_impl.h"

/* ggml's quantize_row_q4_K_ref */
void bl_q4_k_quantize_row(const float *src, void *dst, size_t n)
{
    bl_block_q4_k *y = dst;
    for (size_t b = 0; b < n / BL_QKK; b++) {
        uint8_t L[BL_QKK];
        bl_block_q4_k blk;
        bl_k4_quantize_block(src + b * BL_QKK, 15, -1.0f, 20, &blk.d, &blk.dmin, blk.scales, L);
        for (int j = 0; j < BL_QKK; j += 64)
            for (int l = 0; l < 32; l++)
                blk.qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        memcpy(&y[b], &blk, sizeof blk);
    }
}

void bl_q4_k_dequantize_row(const void *src, float *dst, size_t n)
{
    const bl_block_q4_k *x = src;
    for (size_t b = 0; b < n / BL_QKK; b++) {
        const float d = bl_fp16_to_f32(bl_ld16(&x[b].d));
        const float min = bl_fp16_to_f32(bl_ld16(&x[b].dmin));
        uint8_t sc[8], m[8];
        bl_k4_scales(x[b].scales, sc, m);
        float *o = dst + b * BL_QKK;
        for (int j = 0; j < 4; j++) {
            const uint8_t *q = x[b].qs + 32 * j;
            const float d1 = d * sc[2 * j], m1 = min * m[2 * j];
            const float d2 = d * sc[2 * j + 1], m2 = min * m[2 * j + 1];
            for (int l = 0; l < 32; l++)
                o[64 * j + l] = d1 * (q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++)
                o[64 * j + 32 + l] = d2 * (q[l] >> 4) - m2;
        }
    }
}

/*
 * What llama.cpp computes on x86: Q4_K weights are repacked (CPU_REPACK,
 * block_q4_Kx8) and a matmul over ncols token columns runs the first
 * ncols - ncols % 4 columns through ggml_gemm_q4_K_8x8_q8_K and the rest
 * through ggml_gemv_q4_K_8x8_q8_K. Both sum integers exactly and keep two
 * float accumulators, the scales' and the mins', subtracted last; they only
 * differ in how often they fma: the gemv once per super-block, the gemm once
 * per pair of sub-blocks. bl_q4_k_gemm_cols() says which columns are which.
 */
float bl_q4_k_dot_ref(const void *wrow, const void *col, size_t nb, bool gemm)
{
    const bl_block_q4_k *w = wrow;
    const int8_t *qa = bl_q8k_qs(col);
    const float *da = bl_q8k_d(col, nb);
    const int16_t *sa = bl_q8k_s(col, nb);
    float acc = 0.0f, accm = 0.0f;
    for (size_t b = 0; b < nb; b++) {
        uint8_t sc[8], m[8];
        bl_k4_scales(w[b].scales, sc, m);
        const float d = bl_fp16_to_f32(bl_ld16(&w[b].d)) * da[b];
        const float dmin = bl_fp16_to_f32(bl_ld16(&w[b].dmin)) * da[b];
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            const int8_t *a = qa + b * BL_QKK + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 32; l++)
                s += (j & 1 ? q[l] >> 4 : q[l] & 0xf) * a[l];
            isum += sc[j] * s;
            msum += m[j] * (sa[b * 16 + 2 * j] + sa[b * 16 + 2 * j + 1]);
            if (gemm && j % 2 == 1) { /* a pair of sub-blocks done */
                acc = fmaf((float)isum, d, acc);
                accm = fmaf((float)msum, dmin, accm);
                isum = msum = 0;
            }
        }
        if (!gemm) {
            acc = fmaf((float)isum, d, acc);
            accm = fmaf((float)msum, dmin, accm);
        }
    }
    return acc - accm;
}

void bl_q4_k_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,
                           float *y, size_t ldy, size_t r0, size_t r1)
{
    const size_t nb = n / BL_QKK;
    const size_t cstride = nb * BL_Q8K_BYTES_PER_BLOCK;
    const size_t ngemm = bl_q4_k_gemm_cols(ncols);
    for (size_t r = r0; r < r1; r++)
        for (size_t c = 0; c < ncols; c++)
            y[c * ldy + r] = bl_q4_k_dot_ref((const char *)W + r * row_bytes,
                                             (const char *)X + c * cstride, nb, c < ngemm);
}
