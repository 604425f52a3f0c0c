/*
 * Private to the kernels: the per-(type, ISA) function tables and the layout
 * of prepared activations. Nothing outside src/engine/kernels/ includes this.
 */
#ifndef BL_ENGINE_KERN_IMPL_H
#define BL_ENGINE_KERN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/kernels/kernels.h"
#include "engine/types.h"

#define BL_QK 32 /* elements per Q8_0 / Q4_0 block */

/* GGUF block layouts (ggml-common.h): the fp16 scale comes first. */
typedef struct {
    uint16_t d;
    int8_t qs[BL_QK];
} bl_block_q8_0;

typedef struct {
    uint16_t d;
    uint8_t qs[BL_QK / 2]; /* low nibbles: elements 0..15, high: 16..31 */
} bl_block_q4_0;

/*
 * Prepared activations for Q8_0 and Q4_0 weights (ggml's vec_dot_type q8_0,
 * stored split so the int8 stream is contiguous): one column of n = nb*32
 * elements is
 *     int8_t  qs[nb*32];   the quants, in element order
 *     float   d[nb];       the block scale, already rounded through fp16
 *     int32_t s[nb];       sum of the block's 32 quants (Q4_0's "-8" offset)
 * so a column takes nb*40 bytes.
 */
#define BL_Q8A_BYTES_PER_BLOCK 40

static inline const int8_t *bl_q8a_qs(const void *col) { return (const int8_t *)col; }
static inline const float *bl_q8a_d(const void *col, size_t nb)
{
    return (const float *)((const char *)col + nb * BL_QK);
}
static inline const int32_t *bl_q8a_s(const void *col, size_t nb)
{
    return (const int32_t *)((const char *)col + nb * BL_QK + nb * 4);
}

typedef void (*bl_prepare_fn)(const float *x, size_t n, size_t ncols, void *dst);
typedef void (*bl_matmul_fn)(const void *W, size_t row_bytes, size_t n, const void *X,
                             size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);

typedef struct {
    bl_prepare_fn prepare;
    bl_matmul_fn matmul;
} bl_kern_ops_t;

/* Element type ids as the tables index them. */
enum { BL_KT_F32, BL_KT_F16, BL_KT_BF16, BL_KT_Q8_0, BL_KT_Q4_0, BL_KT_COUNT };

/* SIMD families overwrite the entries they speed up in a table that starts
 * as the scalar one. The AVX-512 family is told which sub-features the CPU
 * has, and must not run VNNI/BF16 instructions when it lacks them. */
void bl_kern_fill_avx2(bl_kern_ops_t ops[BL_KT_COUNT]);
void bl_kern_fill_avx512(bl_kern_ops_t ops[BL_KT_COUNT], bool vnni, bool bf16);

/* The scalar pieces each SIMD file reuses. */
void bl_q8a_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
void bl_f16_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
void bl_bf16_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
void bl_f32_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
void bl_f32_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                          size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_f16_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                          size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_bf16_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                           size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q8_0_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                           size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);
void bl_q4_0_matmul_scalar(const void *W, size_t row_bytes, size_t n, const void *X,
                           size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);

/* Per-type reference conversions. */
void bl_q8_0_quantize_row(const float *src, void *dst, size_t n);
void bl_q8_0_dequantize_row(const void *src, float *dst, size_t n);
void bl_q4_0_quantize_row(const float *src, void *dst, size_t n);
void bl_q4_0_dequantize_row(const void *src, float *dst, size_t n);

/* One block's worth of activation quantization, shared by every ISA's
 * prepare so the integer parts agree bit for bit: d = amax/127 rounded via
 * fp16, q = nearest-even(x * 127/amax), as ggml's x86 quantize_row_q8_0. */
void bl_q8a_quantize_block(const float *x, int8_t *qs, float *d, int32_t *s);

/* How far ahead of the weight stream decode kernels prefetch: DRAM latency
 * times bandwidth is several KiB, more than the out-of-order window covers
 * (measured best at 8 KiB on Zen 5; 1-4 KiB were no better than nothing). */
#define BL_PF_BYTES 8192

static inline uint16_t bl_ld16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

#endif
