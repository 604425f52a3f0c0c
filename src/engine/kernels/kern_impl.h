/*
 * Private to the kernels: the per-(type, ISA) function tables and the layout
 * of prepared activations. Nothing outside src/engine/kernels/ includes this.
 */
#ifndef BL_ENGINE_KERN_IMPL_H
#define BL_ENGINE_KERN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
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
 *     int32_t s[nb];       sum of the block's 32 quants (Q4_0's "-8" offset); for
 *                          Q5_1 a float instead (bl_q8a_sf, q8_1_act.c)
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

/* Q5_1's activations (ggml's Q8_1, q8_1_act.c) put in place of s the
 * float fp16(amax/127 * block sum). */
static inline const float *bl_q8a_sf(const void *col, size_t nb)
{
    return (const float *)((const char *)col + nb * BL_QK + nb * 4);
}

/* ggml's block_q5_0 / block_q5_1: bit j of qh is the fifth bit of element j
 * (elements 0..15 in the low nibbles of qs, 16..31 in the high ones). */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[BL_QK / 2];
} bl_block_q5_0;

typedef struct {
    uint16_t d, m; /* value = d * q + m */
    uint8_t qh[4];
    uint8_t qs[BL_QK / 2];
} bl_block_q5_1;

#define BL_QKK 256 /* elements per K-quant super-block */

/* ggml's block_q4_K: eight sub-blocks of 32, value = d*sc[j]*q - dmin*m[j],
 * the 6-bit sc/m packed in 12 bytes (bl_k4_scales); each 32 bytes of qs
 * hold sub-block 2i in the low nibbles and 2i+1 in the high ones. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[BL_QKK / 2];
} bl_block_q4_k;

/* ggml's block_q5_K: as Q4_K plus the fifth bits, qh[l] bit 2i / 2i+1 for
 * element l of sub-block 2i / 2i+1. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[BL_QKK / 8];
    uint8_t qs[BL_QKK / 2];
} bl_block_q5_k;

/* ggml's block_q6_K: value = d * scales[e/16] * (q - 32), q six bits from
 * ql (low 4) and qh (high 2); the fp16 scale comes last. */
typedef struct {
    uint8_t ql[BL_QKK / 2];
    uint8_t qh[BL_QKK / 4];
    int8_t scales[BL_QKK / 16];
    uint16_t d;
} bl_block_q6_k;

/* The 6-bit scales and mins of sub-blocks 0..7 from Q4_K/Q5_K's 12 bytes
 * (ggml's get_scale_min_k4, done for all eight at once). */
static inline void bl_k4_scales(const uint8_t *q, uint8_t sc[8], uint8_t m[8])
{
    uint32_t w0, w1, w2, s[2], mm[2];
    memcpy(&w0, q, 4);
    memcpy(&w1, q + 4, 4);
    memcpy(&w2, q + 8, 4);
    s[0] = w0 & 0x3f3f3f3fu;
    s[1] = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    mm[0] = w1 & 0x3f3f3f3fu;
    mm[1] = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    memcpy(sc, s, 8);
    memcpy(m, mm, 8);
}

/*
 * Prepared activations for K-quant weights (ggml's block_q8_K, stored split):
 * one column of n = nb*256 elements is
 *     int8_t  qs[nb*256];  the quants, in element order
 *     float   d[nb];       the block scale 1/(127/amax), ggml's 1/iscale (not fp16)
 *     int16_t s[nb*16];    sums of each 16 quants (Q6_K's -32, the mins)
 * so a column takes nb*292 bytes.
 */
#define BL_Q8K_BYTES_PER_BLOCK 292

static inline const int8_t *bl_q8k_qs(const void *col) { return (const int8_t *)col; }
static inline const float *bl_q8k_d(const void *col, size_t nb)
{
    return (const float *)((const char *)col + nb * BL_QKK);
}
static inline const int16_t *bl_q8k_s(const void *col, size_t nb)
{
    return (const int16_t *)((const char *)col + nb * BL_QKK + nb * 4);
}

typedef void (*bl_prepare_fn)(const float *x, size_t n, size_t ncols, void *dst);
typedef void (*bl_matmul_fn)(const void *W, size_t row_bytes, size_t n, const void *X,
                             size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);

typedef struct {
    bl_prepare_fn prepare;
    bl_matmul_fn matmul;
    bool cols_exact;  /* a column of a multi-column matmul is bit for bit its
                         single-column result (batched decode may use the tiles) */
} bl_kern_ops_t;

/* Element type ids as the tables index them. */
enum {
    BL_KT_F32,
    BL_KT_F16,
    BL_KT_BF16,
    BL_KT_Q8_0,
    BL_KT_Q4_0,
    BL_KT_Q5_0,
    BL_KT_Q5_1,
    BL_KT_Q4_K,
    BL_KT_Q5_K,
    BL_KT_Q6_K,
    BL_KT_COUNT
};

/* SIMD families overwrite the entries they speed up in a table that starts
 * as the scalar one. The AVX-512 family is told which sub-features the CPU
 * has, and must not run VNNI/BF16 instructions when it lacks them. */
void bl_kern_fill_avx2(bl_kern_ops_t ops[BL_KT_COUNT]);
void bl_kern_fill_avx512(bl_kern_ops_t ops[BL_KT_COUNT], bool vnni, bool bf16);

/* The scalar pieces each SIMD file reuses. */
void bl_q8a_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
void bl_q8a_prepare_avx2(const float *x, size_t n, size_t ncols, void *dst);
void bl_q8a1_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
void bl_q8a1_prepare_avx2(const float *x, size_t n, size_t ncols, void *dst);
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
void bl_q8k_prepare_scalar(const float *x, size_t n, size_t ncols, void *dst);
#define BL_MM_DECL(name)                                                                    \
    void name(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,       \
              float *y, size_t ldy, size_t r0, size_t r1)
BL_MM_DECL(bl_q5_0_matmul_scalar);
BL_MM_DECL(bl_q5_1_matmul_scalar);
BL_MM_DECL(bl_q4_k_matmul_scalar);
BL_MM_DECL(bl_q5_k_matmul_scalar);
BL_MM_DECL(bl_q6_k_matmul_scalar);

/* Q4_K as llama.cpp's x86 repacked kernels sum it (q4_k.c): of a matmul's
 * ncols columns the first bl_q4_k_gemm_cols(ncols) take the gemm's order */
static inline size_t bl_q4_k_gemm_cols(size_t ncols) { return ncols > 3 ? ncols - ncols % 4 : 0; }
float bl_q4_k_dot_ref(const void *wrow, const void *col, size_t nb, bool gemm);

/* Per-type reference conversions. */
void bl_q8_0_quantize_row(const float *src, void *dst, size_t n);
void bl_q8_0_dequantize_row(const void *src, float *dst, size_t n);
void bl_q4_0_quantize_row(const float *src, void *dst, size_t n);
void bl_q4_0_dequantize_row(const void *src, float *dst, size_t n);
void bl_q5_0_quantize_row(const float *src, void *dst, size_t n);
void bl_q5_0_dequantize_row(const void *src, float *dst, size_t n);
void bl_q5_1_quantize_row(const float *src, void *dst, size_t n);
void bl_q5_1_dequantize_row(const void *src, float *dst, size_t n);
void bl_q4_k_quantize_row(const float *src, void *dst, size_t n);
void bl_q4_k_dequantize_row(const void *src, float *dst, size_t n);
void bl_q5_k_quantize_row(const float *src, void *dst, size_t n);
void bl_q5_k_dequantize_row(const void *src, float *dst, size_t n);
void bl_q6_k_quantize_row(const float *src, void *dst, size_t n);
void bl_q6_k_dequantize_row(const void *src, float *dst, size_t n);

/* ggml's nearest_int (round half to even through the 1.5*2^23 trick) and the
 * K-quant scale searches, shared by the K-quantizers (k_search.c). */
int bl_nearest_int(float f);
float bl_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                          float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep);
float bl_make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L);
/* Q4_K/Q5_K's common first half: sub-block scales/mins packed into blk's
 * d, dmin and scales[12], and the quants L[256] (0..nmax) they imply. */
void bl_k4_quantize_block(const float *x, int nmax, float rmin, int nstep, uint16_t *d,
                          uint16_t *dmin, uint8_t scales[12], uint8_t L[BL_QKK]);

/* One block's worth of activation quantization, shared by every ISA's
 * prepare so the integer parts agree bit for bit: d = amax/127 rounded via
 * fp16, q = nearest-even(x * 127/amax), as ggml's x86 quantize_row_q8_0. */
void bl_q8a_quantize_block(const float *x, int8_t *qs, float *d, int32_t *s);

/* How far ahead of the weight stream decode kernels prefetch: DRAM latency
 * times bandwidth is several KiB, more than the out-of-order window covers
 * (measured best at 8 KiB on Zen 5; 1-4 KiB were no better than nothing). */
#define BL_PF_BYTES 8192

/*
 * ggml's x86 dot products (what llama.cpp runs on these CPUs) keep eight
 * float lanes: lane k takes the integer dot product of elements 4k..4k+3 of
 * every 32-element chunk of a block (vpmaddubsw + vpmaddwd), each block adds
 * fma(scale, lane, acc), and hsum_float_8 folds the lanes at the end as
 * ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). The last bits of a result depend on
 * that order, and one different bit can flip an F16 KV-cache rounding, so
 * every kernel family computes exactly this (the scalar references with
 * fmaf, which is exact whatever the CPU).
 */
static inline int bl_lane(int e) { return (e & 31) >> 2; }

static inline void bl_lanes_fma(float acc[8], float d, const int32_t lane[8])
{
    for (int k = 0; k < 8; k++)
        acc[k] = fmaf(d, (float)lane[k], acc[k]);
}

static inline float bl_hsum8(const float a[8])
{
    const float r0 = a[0] + a[4], r1 = a[1] + a[5], r2 = a[2] + a[6], r3 = a[3] + a[7];
    return (r0 + r2) + (r1 + r3);
}

static inline uint16_t bl_ld16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

#endif
