/*
 * Kernels: the arithmetic of every tensor type.
 *
 * Weights stay in their GGUF type. A matmul first "prepares" the activations
 * (a column of n floats per token) into the weight type's dot-product partner
 * type — Q8_0 blocks for Q4_0/Q8_0 weights, F32 for F32, and so on — once, and
 * then each thread computes a range of output rows against all columns.
 *
 * Each type has a scalar reference (`q4_0.c`) that defines what is right, and
 * AVX2 / AVX-512 versions (`q4_0_avx2.c`, `q4_0_avx512.c`) that must agree
 * with it; the family is chosen once from cpuid by bl_kern_init().
 */
#ifndef BL_ENGINE_KERNELS_H
#define BL_ENGINE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ballast/engine.h>

/* Pick the kernel family: BL_ISA_AUTO chooses the best the CPU has; asking
 * for one the CPU lacks returns BL_EUNSUPPORTED. Call once before use (it is
 * idempotent and thread-safe). */
int bl_kern_init(bl_isa_t isa);
bl_isa_t bl_kern_isa(void);
const char *bl_kern_isa_name(void); /* "scalar", "avx2", "avx512", "avx512-vnni" ... */
/* Does this CPU support the family? (for tests that run every path) */
bool bl_kern_cpu_has(bl_isa_t isa);

/* Can matmul handle weights of this type? */
bool bl_kern_supports(uint32_t wtype);

/* Bytes per prepared activation column of n elements for weights of wtype. */
size_t bl_kern_act_bytes(uint32_t wtype, size_t n);
/* Convert ncols columns of n floats (column c at x + c*n) into the partner type
 * (column c at dst + c*bl_kern_act_bytes()). */
void bl_kern_prepare(uint32_t wtype, const float *x, size_t n, size_t ncols, void *dst);

/* y[c*ldy + r] = dot(row r of W, column c of X) for r in [r0, r1), c < ncols.
 * W rows are row_bytes apart; X is prepared activations. */
void bl_kern_matmul(uint32_t wtype, const void *W, size_t row_bytes, size_t n, const void *X,
                    size_t ncols, float *y, size_t ldy, size_t r0, size_t r1);

/* Is column c of a matmul with ncols > 1 bit for bit the result of the same
 * call with that column alone (for the current family)? Then a batch of
 * sequences can decode through the multi-column tiles and stay exact. */
bool bl_kern_cols_exact(uint32_t wtype);

/* Reference conversions, used by the writer, embeddings lookup and tests. */
void bl_kern_quantize_row(uint32_t type, const float *src, void *dst, size_t n);
void bl_kern_dequantize_row(uint32_t type, const void *src, float *dst, size_t n);

/* Scalar half/bfloat conversions (bit exact with ggml's). */
float bl_fp16_to_f32(uint16_t h);
uint16_t bl_f32_to_fp16(float f);
float bl_bf16_to_f32(uint16_t h);
uint16_t bl_f32_to_bf16(float f);

#endif
