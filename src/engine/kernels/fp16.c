/* Half and bfloat16 conversions, bit exact with ggml's reference ones. */
#include <string.h>

#include "engine/kernels/kern_impl.h"

static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float bl_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan: keep the payload, quieted as F16C does */
        return u2f(sign | 0x7f800000 | (man << 13) | (man ? 0x400000u : 0));
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 is exact in float */
        float v = (float)man * 0x1p-24f;
        return u2f(sign | f2u(v));
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t bl_f32_to_fp16(float f)
{
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffff;
    if (x > 0x7f800000) /* nan: ggml's reference gives a plain quiet nan */
        return sign | 0x7e00;
    if (x >= 0x47800000) /* >= 65536 (or inf): overflows to inf */
        return sign | 0x7c00;
    if (x < 0x38800000) {
        /* below 2^-14: a half subnormal. Adding 0.5f puts the half's unit
         * (2^-24) in the float's last mantissa bit, so the FPU's own
         * round-to-nearest-even does the rounding. */
        float v = u2f(x) + 0.5f;
        return sign | (uint16_t)(f2u(v) - 0x3f000000);
    }
    /* normal: rebias the exponent, round the 13 dropped bits to nearest even;
     * a carry may run into the exponent and up to inf, which is right. */
    uint32_t odd = (x >> 13) & 1;
    x += ((uint32_t)(15 - 127) << 23) + 0xfff + odd;
    return sign | (uint16_t)(x >> 13);
}

float bl_bf16_to_f32(uint16_t h)
{
    return u2f((uint32_t)h << 16);
}

uint16_t bl_f32_to_bf16(float f)
{
    uint32_t x = f2u(f);
    if ((x & 0x7fffffff) > 0x7f800000) /* nan: truncate and force quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}
