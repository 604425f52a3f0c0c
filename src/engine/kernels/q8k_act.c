/* K-quant activations (ggml's block_q8_K, split as kern_impl.h describes):
 * one float scale per 256 and the sums of each 16 quants, as ggml's
 * quantize_row_q8_K_ref (which x86 builds use too): q = nearest-even(x *
 * iscale) with iscale = 127/amax, and d = 1/iscale, not amax/127 — the two
 * differ in the last bit often enough to flip F16 KV-cache roundings.
 * (ggml uses -127/max with max the signed extreme: the quants and d both
 * change sign, every product is the same.) */
#include <math.h>

#include "engine/kernels/kern_impl.h"

void bl_q8k_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst)
{
    const size_t nb = n / BL_QKK;
    for (size_t c = 0; c < ncols; c++) {
        char *col = (char *)dst + c * nb * BL_Q8K_BYTES_PER_BLOCK;
        int8_t *qs = (int8_t *)col;
        float *d = (float *)(col + nb * BL_QKK);
        int16_t *s = (int16_t *)(col + nb * BL_QKK + nb * 4);
        for (size_t b = 0; b < nb; b++) {
            const float *xb = x + c * n + b * BL_QKK;
            float amax = 0.0f;
            for (int j = 0; j < BL_QKK; j++)
                amax = fmaxf(amax, fabsf(xb[j]));
            const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int j = 16 * g; j < 16 * g + 16; j++) {
                    int q = (int)nearbyintf(xb[j] * id);
                    qs[b * BL_QKK + j] = (int8_t)q;
                    sum += q;
                }
                s[b * 16 + g] = (int16_t)sum;
            }
            d[b] = amax != 0.0f ? 1.0f / id : 0.0f;
        }
    }
}
