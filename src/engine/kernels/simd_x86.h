/*
 * Small x86 helpers the AVX2 and AVX-512 kernels share. Include only from
 * *_avx2.c / *_avx512.c files: they are built with AVX2, FMA and F16C. The
 * horizontal sum's order is part of what makes a kernel's result equal the
 * scalar reference bit for bit, so every kernel uses this one.
 */
#ifndef BL_ENGINE_KERNELS_SIMD_X86_H
#define BL_ENGINE_KERNELS_SIMD_X86_H

#include <immintrin.h>
#include <stdint.h>

/* fp16 to float with F16C (bl_fp16_to_f32 is the portable one) */
static inline float h2f(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7)): the lanes folded as llama.cpp's
 * hsum_float_8 folds them */
static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
