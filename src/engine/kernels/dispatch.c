/* Kernel family selection from cpuid, and the public entry points that
 * route each call through the chosen family's table. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <ballast/errors.h>

#include "engine/kernels/kern_impl.h"

typedef struct {
    bool avx2;   /* AVX2 + FMA + F16C + BMI2, YMM state enabled by the OS */
    bool avx512; /* F + BW + VL + DQ, ZMM/opmask state enabled by the OS */
    bool vnni;   /* AVX512_VNNI */
    bool bf16;   /* AVX512_BF16 */
} cpu_feat_t;

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static cpu_feat_t detect(void)
{
    cpu_feat_t f = {0};
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    if (max_leaf < 7)
        return f;
    cpuid(1, 0, r);
    bool fma = r[2] & (1u << 12), osxsave = r[2] & (1u << 27), avx = r[2] & (1u << 28);
    bool f16c = r[2] & (1u << 29);
    if (!osxsave || !avx)
        return f;
    uint64_t xcr0 = xgetbv0();
    bool ymm_os = (xcr0 & 0x6) == 0x6;           /* SSE + AVX state */
    bool zmm_os = (xcr0 & 0xe6) == 0xe6;         /* + opmask, ZMM_Hi256, Hi16_ZMM */
    cpuid(7, 0, r);
    uint32_t b7 = r[1], c7 = r[2], max_sub = r[0];
    bool avx2 = b7 & (1u << 5), bmi2 = b7 & (1u << 8);
    f.avx2 = ymm_os && avx2 && fma && f16c && bmi2;
    bool a512 = (b7 & (1u << 16)) && (b7 & (1u << 17)) && (b7 & (1u << 30)) &&
                (b7 & (1u << 31)); /* F, DQ, BW, VL */
    f.avx512 = f.avx2 && zmm_os && a512;
    f.vnni = f.avx512 && (c7 & (1u << 11));
    if (f.avx512 && max_sub >= 1) {
        cpuid(7, 1, r);
        f.bf16 = r[0] & (1u << 5);
    }
    return f;
}

typedef struct {
    bl_isa_t isa;
    char name[32];
    bl_kern_ops_t ops[BL_KT_COUNT];
} family_t;

static const bl_kern_ops_t SCALAR_OPS[BL_KT_COUNT] = {
    [BL_KT_F32] = {bl_f32_prepare_scalar, bl_f32_matmul_scalar, false},
    [BL_KT_F16] = {bl_f16_prepare_scalar, bl_f16_matmul_scalar, false},
    [BL_KT_BF16] = {bl_bf16_prepare_scalar, bl_bf16_matmul_scalar, false},
    [BL_KT_Q8_0] = {bl_q8a_prepare_scalar, bl_q8_0_matmul_scalar, false},
    [BL_KT_Q4_0] = {bl_q8a_prepare_scalar, bl_q4_0_matmul_scalar, false},
    [BL_KT_Q5_0] = {bl_q8a_prepare_scalar, bl_q5_0_matmul_scalar, false},
    [BL_KT_Q5_1] = {bl_q8a1_prepare_scalar, bl_q5_1_matmul_scalar, false},
    [BL_KT_Q4_K] = {bl_q8k_prepare_scalar, bl_q4_k_matmul_scalar, false},
    [BL_KT_Q5_K] = {bl_q8k_prepare_scalar, bl_q5_k_matmul_scalar, false},
    [BL_KT_Q6_K] = {bl_q8k_prepare_scalar, bl_q6_k_matmul_scalar, false},
};

/* The families are built once (pthread_once); the current one is an atomic
 * pointer so bl_kern_init() may be called from any thread at any time. */
static family_t FAMILIES[4];
static pthread_once_t families_once = PTHREAD_ONCE_INIT;
static cpu_feat_t CPU;
static _Atomic(const family_t *) current;

static void build_families_once(void)
{
    CPU = detect();
    for (int i = 1; i <= 3; i++) {
        FAMILIES[i].isa = (bl_isa_t)i;
        memcpy(FAMILIES[i].ops, SCALAR_OPS, sizeof SCALAR_OPS);
    }
    snprintf(FAMILIES[BL_ISA_SCALAR].name, sizeof FAMILIES[0].name, "scalar");
    snprintf(FAMILIES[BL_ISA_AVX2].name, sizeof FAMILIES[0].name, "avx2");
    if (CPU.avx2)
        bl_kern_fill_avx2(FAMILIES[BL_ISA_AVX2].ops);
    snprintf(FAMILIES[BL_ISA_AVX512].name, sizeof FAMILIES[0].name, "avx512%s%s",
             CPU.vnni ? "-vnni" : "", CPU.bf16 ? "-bf16" : "");
    if (CPU.avx512) {
        /* what AVX-512 does not cover (Q8_0/Q4_0 without VNNI) runs AVX2 */
        bl_kern_fill_avx2(FAMILIES[BL_ISA_AVX512].ops);
        bl_kern_fill_avx512(FAMILIES[BL_ISA_AVX512].ops, CPU.vnni, CPU.bf16);
    }
}

static void build_families(void)
{
    pthread_once(&families_once, build_families_once);
}

bool bl_kern_cpu_has(bl_isa_t isa)
{
    build_families();
    switch (isa) {
    case BL_ISA_AUTO:
    case BL_ISA_SCALAR:
        return true;
    case BL_ISA_AVX2:
        return CPU.avx2;
    case BL_ISA_AVX512:
        return CPU.avx512;
    }
    return false;
}

int bl_kern_init(bl_isa_t isa)
{
    build_families();
    if (isa == BL_ISA_AUTO)
        isa = CPU.avx512 ? BL_ISA_AVX512 : CPU.avx2 ? BL_ISA_AVX2 : BL_ISA_SCALAR;
    if (isa < BL_ISA_SCALAR || isa > BL_ISA_AVX512)
        return BL_EINVAL;
    if (!bl_kern_cpu_has(isa))
        return BL_EUNSUPPORTED;
    atomic_store(&current, &FAMILIES[isa]);
    return 0;
}

static const family_t *fam(void)
{
    const family_t *f = atomic_load_explicit(&current, memory_order_acquire);
    if (!f) {
        bl_kern_init(BL_ISA_AUTO);
        f = atomic_load(&current);
    }
    return f;
}

bl_isa_t bl_kern_isa(void) { return fam()->isa; }
const char *bl_kern_isa_name(void) { return fam()->name; }

static int kt(uint32_t wtype)
{
    switch (wtype) {
    case BL_TYPE_F32: return BL_KT_F32;
    case BL_TYPE_F16: return BL_KT_F16;
    case BL_TYPE_BF16: return BL_KT_BF16;
    case BL_TYPE_Q8_0: return BL_KT_Q8_0;
    case BL_TYPE_Q4_0: return BL_KT_Q4_0;
    case BL_TYPE_Q5_0: return BL_KT_Q5_0;
    case BL_TYPE_Q5_1: return BL_KT_Q5_1;
    case BL_TYPE_Q4_K: return BL_KT_Q4_K;
    case BL_TYPE_Q5_K: return BL_KT_Q5_K;
    case BL_TYPE_Q6_K: return BL_KT_Q6_K;
    }
    return -1;
}

bool bl_kern_supports(uint32_t wtype) { return kt(wtype) >= 0; }

size_t bl_kern_act_bytes(uint32_t wtype, size_t n)
{
    switch (kt(wtype)) {
    case BL_KT_F32: return n * 4;
    case BL_KT_F16:
    case BL_KT_BF16: return n * 2;
    case BL_KT_Q8_0:
    case BL_KT_Q4_0:
    case BL_KT_Q5_0:
    case BL_KT_Q5_1: return n / BL_QK * BL_Q8A_BYTES_PER_BLOCK;
    case BL_KT_Q4_K:
    case BL_KT_Q5_K:
    case BL_KT_Q6_K: return n / BL_QKK * BL_Q8K_BYTES_PER_BLOCK;
    }
    return 0;
}

void bl_kern_prepare(uint32_t wtype, const float *x, size_t n, size_t ncols, void *dst)
{
    int t = kt(wtype);
    if (t < 0 || ncols == 0)
        return;
    fam()->ops[t].prepare(x, n, ncols, dst);
}

bool bl_kern_cols_exact(uint32_t wtype)
{
    int t = kt(wtype);
    return t >= 0 && fam()->ops[t].cols_exact;
}

void bl_kern_matmul(uint32_t wtype, const void *W, size_t row_bytes, size_t n, const void *X,
                    size_t ncols, float *y, size_t ldy, size_t r0, size_t r1)
{
    int t = kt(wtype);
    if (t < 0 || ncols == 0 || r0 >= r1)
        return;
    fam()->ops[t].matmul(W, row_bytes, n, X, ncols, y, ldy, r0, r1);
}

void bl_kern_quantize_row(uint32_t type, const float *src, void *dst, size_t n)
{
    switch (type) {
    case BL_TYPE_F32: memcpy(dst, src, n * 4); break;
    case BL_TYPE_F16: bl_f16_prepare_scalar(src, n, 1, dst); break;
    case BL_TYPE_BF16: bl_bf16_prepare_scalar(src, n, 1, dst); break;
    case BL_TYPE_Q8_0: bl_q8_0_quantize_row(src, dst, n); break;
    case BL_TYPE_Q4_0: bl_q4_0_quantize_row(src, dst, n); break;
    case BL_TYPE_Q5_0: bl_q5_0_quantize_row(src, dst, n); break;
    case BL_TYPE_Q5_1: bl_q5_1_quantize_row(src, dst, n); break;
    case BL_TYPE_Q4_K: bl_q4_k_quantize_row(src, dst, n); break;
    case BL_TYPE_Q5_K: bl_q5_k_quantize_row(src, dst, n); break;
    case BL_TYPE_Q6_K: bl_q6_k_quantize_row(src, dst, n); break;
    }
}

void bl_kern_dequantize_row(uint32_t type, const void *src, float *dst, size_t n)
{
    const uint16_t *h = src;
    switch (type) {
    case BL_TYPE_F32: memcpy(dst, src, n * 4); break;
    case BL_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bl_fp16_to_f32(bl_ld16(&h[i]));
        break;
    case BL_TYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bl_bf16_to_f32(bl_ld16(&h[i]));
        break;
    case BL_TYPE_Q8_0: bl_q8_0_dequantize_row(src, dst, n); break;
    case BL_TYPE_Q4_0: bl_q4_0_dequantize_row(src, dst, n); break;
    case BL_TYPE_Q5_0: bl_q5_0_dequantize_row(src, dst, n); break;
    case BL_TYPE_Q5_1: bl_q5_1_dequantize_row(src, dst, n); break;
    case BL_TYPE_Q4_K: bl_q4_k_dequantize_row(src, dst, n); break;
    case BL_TYPE_Q5_K: bl_q5_k_dequantize_row(src, dst, n); break;
    case BL_TYPE_Q6_K: bl_q6_k_dequantize_row(src, dst, n); break;
    }
}
