/*
 * Kernel tests: half/bfloat conversions (exhaustive), the ggml-exact
 * quantizers, and every matmul path the CPU has against a double-precision
 * reference built from the dequantized weights and the *prepared* (already
 * quantized) activations, so only the order of float additions may differ.
 */
#include <immintrin.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ballast/errors.h>

#include "engine/kernels/kern_impl.h" /* white box: the prepared layout */
#include "engine/kernels/kernels.h"
#include "engine/types.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* uniform in [-1, 1) */
static float frnd(void) { return (float)((double)rnd() / 2147483648.0 - 1.0); }

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- half and bfloat16 ------------------------------------------------ */

/* A second definition of a half's value, by arithmetic instead of bits. */
static double half_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

__attribute__((target("f16c"))) static float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) static uint16_t f16c_from_f32(float f)
{
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

static void fp16_to_f32_exhaustive(void **state)
{
    bool f16c = bl_kern_cpu_has(BL_ISA_AVX2) /* implies F16C */;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bl_fp16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31;
        if (e == 31) {
            if (h & 1023)
                assert_true(isnan(f));
            else
                assert_true(isinf(f) && (signbit(f) != 0) == (h >> 15));
        } else {
            assert_true((double)f == half_value((uint16_t)h));
            assert_true((signbit(f) != 0) == (h >> 15)); /* -0 stays -0 */
        }
        if (f16c)
            assert_int_equal(f2u(f), f2u(f16c_to_f32((uint16_t)h)));
    }
}

/* Round to nearest, ties to the even half, by search over the halves. */
static void f32_to_fp16_exhaustive(void **state)
{
    /* every finite half round-trips, and the points between neighbours
     * round to the nearest one, ties to even */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        for (int s = 0; s < 2; s++) {
            uint16_t hs = (uint16_t)(h | (s << 15));
            assert_int_equal(bl_f32_to_fp16(bl_fp16_to_f32(hs)), hs);
            double lo = half_value(hs), hi = h + 1 < 0x7c00 ? half_value((uint16_t)(hs + 1))
                                                            : (s ? -65536.0 : 65536.0);
            double mid = (lo + hi) / 2; /* exact in float: halves have 11 bits */
            uint16_t even = (h & 1) ? (uint16_t)(hs + 1) : hs;
            assert_int_equal(bl_f32_to_fp16((float)mid), even);
            float below = nextafterf((float)mid, (float)lo);
            float above = nextafterf((float)mid, (float)hi);
            assert_int_equal(bl_f32_to_fp16(below), hs);
            assert_int_equal(bl_f32_to_fp16(above), (uint16_t)(hs + 1));
        }
    }
    assert_int_equal(bl_f32_to_fp16(INFINITY), 0x7c00);
    assert_int_equal(bl_f32_to_fp16(-INFINITY), 0xfc00);
    assert_int_equal(bl_f32_to_fp16(1e10f), 0x7c00);
    assert_int_equal(bl_f32_to_fp16(NAN) & 0x7fff, 0x7e00); /* ggml's quiet nan */
    assert_int_equal(bl_f32_to_fp16(1e-10f), 0);
    assert_int_equal(bl_f32_to_fp16(-0.0f), 0x8000);
    /* random floats of every magnitude against the F16C instruction */
    if (bl_kern_cpu_has(BL_ISA_AVX2) /* implies F16C */) {
        for (int i = 0; i < 2000000; i++) {
            float f = u2f(rnd() ^ (rnd() << 16));
            if (isnan(f))
                continue;
            assert_int_equal(bl_f32_to_fp16(f), f16c_from_f32(f));
        }
    }
}

static void bf16_exhaustive(void **state)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bl_bf16_to_f32((uint16_t)h);
        assert_int_equal(f2u(f), h << 16);
        if (isnan(f)) {
            uint16_t q = bl_f32_to_bf16(f);
            assert_true(isnan(bl_bf16_to_f32(q)) && (q & 0x40)); /* stays a quiet nan */
            continue;
        }
        assert_int_equal(bl_f32_to_bf16(f), h);
        if ((h & 0x7fff) >= 0x7f7f)
            continue; /* the next one up is inf/nan */
        /* midpoint and its neighbours: nearest, ties to even */
        uint32_t mid = (h << 16) | 0x8000;
        assert_int_equal(bl_f32_to_bf16(u2f(mid)), (h & 1) ? h + 1 : h);
        assert_int_equal(bl_f32_to_bf16(u2f(mid - 1)), h);
        assert_int_equal(bl_f32_to_bf16(u2f(mid + 1)), h + 1);
    }
    /* a signalling nan comes back quiet */
    assert_int_equal(bl_f32_to_bf16(u2f(0x7f800001)), 0x7fc0);
    assert_int_equal(bl_f32_to_bf16(u2f(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
}

/* ---- quantizers --------------------------------------------------------- */

static void q8_0_matches_ggml_on_known_block(void **state)
{
    float x[32];
    uint8_t blk[34];
    /* amax 127 -> d = 1, id = 1: roundf sends halves away from zero */
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16) + 0.5f;
    x[0] = -127.0f;
    bl_kern_quantize_row(BL_TYPE_Q8_0, x, blk, 32);
    assert_int_equal(blk[0] | blk[1] << 8, 0x3c00); /* fp16 1.0 */
    assert_int_equal((int8_t)blk[2], -127);
    assert_int_equal((int8_t)blk[2 + 18], 3);  /* 2.5 -> 3, not 2 */
    assert_int_equal((int8_t)blk[2 + 13], -3); /* -2.5 -> -3 */
    assert_int_equal((int8_t)blk[2 + 16], 1);  /* 0.5 -> 1 */
    /* all zero: d = 0 and q = 0, no division by zero */
    memset(x, 0, sizeof x);
    bl_kern_quantize_row(BL_TYPE_Q8_0, x, blk, 32);
    for (int j = 0; j < 34; j++)
        assert_int_equal(blk[j], 0);
}

static void q4_0_matches_ggml_on_known_block(void **state)
{
    float x[32];
    uint8_t blk[18];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16); /* max magnitude -16 -> d = 2, id = 0.5 */
    bl_kern_quantize_row(BL_TYPE_Q4_0, x, blk, 32);
    assert_int_equal(blk[0] | blk[1] << 8, 0x4000); /* fp16 2.0 */
    for (int j = 0; j < 16; j++) {
        /* (int8)(x/2 + 8.5): truncation, so x=-15 -> 1.0 -> 1, x=1 -> 9 */
        int lo = (int)((float)(j - 16) * 0.5f + 8.5f);
        int hi = (int)((float)j * 0.5f + 8.5f);
        if (hi > 15)
            hi = 15;
        assert_int_equal(blk[2 + j], lo | hi << 4);
    }
    assert_int_equal(blk[2 + 0], 0x80);  /* -16 -> 0, 0 -> 8 */
    assert_int_equal(blk[2 + 15], 0xf8); /* -1 -> 8, 15 -> 16 clamps to 15 */
}

static void quant_round_trip_bounds(void **state)
{
    enum { N = 4096 };
    float *x = malloc(N * 4), *y = malloc(N * 4);
    uint8_t *q = malloc(N * 4);
    for (int i = 0; i < N; i++)
        x[i] = frnd() * (float)(1 << (i / 512)); /* blocks of varied magnitude */
    for (uint32_t t = 0; t < BL_TYPE_COUNT; t++) {
        /* the newer types have their own bounds in test_kernels_k.c */
        if (!bl_kern_supports(t) || (t != BL_TYPE_F32 && t != BL_TYPE_F16 &&
                                     t != BL_TYPE_BF16 && t != BL_TYPE_Q8_0 &&
                                     t != BL_TYPE_Q4_0))
            continue;
        uint64_t rb;
        assert_true(bl_type_row_bytes(t, N, &rb));
        memset(q, 0xa5, N * 4);
        bl_kern_quantize_row(t, x, q, N);
        bl_kern_dequantize_row(t, q, y, N);
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            for (int j = 0; j < 32; j++) {
                int i = b * 32 + j;
                double err = fabs((double)x[i] - y[i]), bound;
                switch (t) {
                case BL_TYPE_F32: bound = 0; break;
                case BL_TYPE_F16: bound = fabs(x[i]) * 0x1p-11; break;
                case BL_TYPE_BF16: bound = fabs(x[i]) * 0x1p-8; break;
                /* half a step, plus the fp16 rounding of the scale times
                 * the largest quant */
                case BL_TYPE_Q8_0: bound = amax / 127 * (0.5 + 127 * 0x1p-11); break;
                /* the element opposite in sign to the max may clamp at
                 * +7: a whole step */
                default: bound = amax / 8 * (1.0 + 8 * 0x1p-11); break;
                }
                if (err > bound * 1.0001)
                    fail_msg("type %u elem %d: x=%g y=%g err=%g bound=%g", t, i, x[i], y[i],
                             err, bound);
            }
        }
    }
    free(x);
    free(y);
    free(q);
}

/* ---- matmul ------------------------------------------------------------- */

static const uint32_t MM_TYPES[] = {BL_TYPE_F32, BL_TYPE_F16, BL_TYPE_BF16, BL_TYPE_Q8_0,
                                    BL_TYPE_Q4_0};
static const bl_isa_t ISAS[] = {BL_ISA_SCALAR, BL_ISA_AVX2, BL_ISA_AVX512};
static const char *const ISA_NAMES[] = {"auto", "scalar", "avx2", "avx512"};

static bool is_quant(uint32_t t) { return t == BL_TYPE_Q8_0 || t == BL_TYPE_Q4_0; }

/* The prepared column's values as doubles. */
static void act_values(uint32_t t, const void *col, size_t n, double *out)
{
    if (is_quant(t)) {
        size_t nb = n / 32;
        const int8_t *qs = bl_q8a_qs(col);
        const float *d = bl_q8a_d(col, nb);
        const int32_t *s = bl_q8a_s(col, nb);
        for (size_t b = 0; b < nb; b++) {
            int32_t sum = 0;
            for (int j = 0; j < 32; j++) {
                out[b * 32 + j] = (double)qs[b * 32 + j] * d[b];
                sum += qs[b * 32 + j];
            }
            assert_int_equal(sum, s[b]); /* the precomputed block sum */
        }
        return;
    }
    float *f = malloc(n * 4);
    bl_kern_dequantize_row(t, col, f, n);
    for (size_t i = 0; i < n; i++)
        out[i] = f[i];
    free(f);
}

typedef struct {
    size_t n, nrows, ncols, ldy, r0, r1;
    bool exact; /* data chosen so every sum is exact in float */
} mm_case_t;

/* Fill a weight matrix. In exact mode the values are small integers (or
 * quants with power-of-two scales) so any summation order gives the same
 * float: then SIMD must equal the reference bit for bit. */
static void make_weights(uint32_t t, uint8_t *W, size_t row_bytes, size_t n, size_t nrows,
                         bool exact)
{
    float *row = malloc(n * 4);
    for (size_t r = 0; r < nrows; r++) {
        uint8_t *w = W + r * row_bytes;
        if (exact && is_quant(t)) {
            size_t bb = t == BL_TYPE_Q8_0 ? 34 : 18;
            for (size_t b = 0; b < n / 32; b++) {
                uint8_t *blk = w + b * bb;
                blk[0] = 0x00, blk[1] = 0x38; /* fp16 0.5 */
                for (size_t j = 2; j < bb; j++)
                    blk[j] = t == BL_TYPE_Q8_0 ? (uint8_t)(int8_t)((int)(rnd() % 17) - 8)
                                               : (uint8_t)rnd();
                /* -128 is a legal int8 quant that sign tricks can get wrong */
                if (t == BL_TYPE_Q8_0 && b % 3 == 0)
                    blk[2 + rnd() % 32] = 0x80;
            }
            continue;
        }
        for (size_t i = 0; i < n; i++)
            row[i] = exact ? (float)((int)(rnd() % 17) - 8) : frnd();
        bl_kern_quantize_row(t, row, w, n);
    }
    free(row);
}

static void make_acts(float *x, size_t n, size_t ncols, bool exact)
{
    for (size_t i = 0; i < n * ncols; i++)
        x[i] = exact ? (float)((int)(rnd() % 255) - 127) / 8 : frnd() * 3;
    if (exact) /* each block's amax is 127/8, so prepare's d = 1/8 exactly */
        for (size_t i = 0; i < n * ncols; i += 32)
            x[i] = 127.0f / 8;
}

static void run_case(uint32_t t, const mm_case_t *mc, const char *isa)
{
    uint64_t rb;
    assert_true(bl_type_row_bytes(t, mc->n, &rb));
    size_t row_bytes = (size_t)rb; /* rows are packed, as in GGUF */
    uint8_t *W = malloc(row_bytes * mc->nrows);
    float *x = malloc(mc->n * mc->ncols * 4);
    size_t ab = bl_kern_act_bytes(t, mc->n);
    uint8_t *X = malloc(ab * mc->ncols + 64);
    uint8_t *Xs = malloc(ab * mc->ncols + 64);
    float *y = malloc(mc->ldy * mc->ncols * 4);
    float *wrow = malloc(mc->n * 4);
    double *a = malloc(mc->n * mc->ncols * sizeof(double));
    make_weights(t, W, row_bytes, mc->n, mc->nrows, mc->exact);
    make_acts(x, mc->n, mc->ncols, mc->exact);

    /* prepare must agree with the scalar one bit for bit on every ISA */
    bl_kern_prepare(t, x, mc->n, mc->ncols, X);
    bl_isa_t cur = bl_kern_isa();
    assert_int_equal(bl_kern_init(BL_ISA_SCALAR), 0);
    bl_kern_prepare(t, x, mc->n, mc->ncols, Xs);
    assert_int_equal(bl_kern_init(cur), 0);
    assert_memory_equal(X, Xs, ab * mc->ncols);
    for (size_t c = 0; c < mc->ncols; c++)
        act_values(t, X + c * ab, mc->n, a + c * mc->n);

    const uint32_t SENTINEL = 0x7fc0dead;
    for (size_t i = 0; i < mc->ldy * mc->ncols; i++)
        memcpy(&y[i], &SENTINEL, 4);
    bl_kern_matmul(t, W, row_bytes, mc->n, X, mc->ncols, y, mc->ldy, mc->r0, mc->r1);

    /* float adds the kernel may do in any order: all elements for float
     * types, one per block for quantized ones (the block sum is integer) */
    size_t k = is_quant(t) ? mc->n / 32 : mc->n;
    for (size_t r = 0; r < mc->nrows; r++) {
        bool inside = r >= mc->r0 && r < mc->r1;
        if (inside)
            bl_kern_dequantize_row(t, W + r * row_bytes, wrow, mc->n);
        for (size_t c = 0; c < mc->ldy * mc->ncols; c++) {
            /* only y[c*ldy + r] for r in [r0, r1) may be written */
            if (c % mc->ldy != r && !(r == 0 && c % mc->ldy >= mc->nrows))
                continue;
            float got = y[c];
            if (!inside || c % mc->ldy >= mc->nrows) {
                assert_int_equal(f2u(got), SENTINEL);
                continue;
            }
            size_t col = c / mc->ldy;
            double ref = 0, mag = 0;
            for (size_t i = 0; i < mc->n; i++) {
                double p = (double)wrow[i] * a[col * mc->n + i];
                ref += p;
                mag += fabs(p);
            }
            /* Higham's bound for recursive summation in any order: each of
             * the k float additions and the couple of scale products may
             * err by 2^-24 of a partial sum, itself at most sum|p|. It is
             * rigorous, so it cannot fail a correct kernel; the exact-data
             * cases catch the small mistakes it would let through. */
            double tol = mc->exact ? 0 : (double)(k + 4) * 0x1p-23 * mag;
            if (fabs(got - ref) > tol)
                fail_msg("%s %s n=%zu rows=[%zu,%zu) ncols=%zu: y[%zu][%zu]=%.9g ref=%.9g "
                         "tol=%g",
                         isa, bl_type_info(t)->name, mc->n, mc->r0, mc->r1, mc->ncols, col, r,
                         got, ref, tol);
        }
    }
    free(W);
    free(x);
    free(X);
    free(Xs);
    free(y);
    free(wrow);
    free(a);
}

static void matmul_all_types_all_isas(void **state)
{
    /* block counts 1, 2, 5, 7 and 129 reach every tail of the 4- and 8-block
     * runs; odd element counts reach the float types' masked tails */
    static const size_t NS[] = {32, 64, 160, 224, 4096 + 32};
    static const size_t NS_FLOAT[] = {1, 7, 45};
    enum { NNS = sizeof NS / sizeof NS[0] };
    static const size_t NCOLS[] = {1, 2, 3, 4, 5, 16, 33};
    int ran = 0;
    for (size_t ii = 0; ii < sizeof ISAS / sizeof ISAS[0]; ii++) {
        bl_isa_t isa = ISAS[ii];
        if (!bl_kern_cpu_has(isa)) {
            print_message("skipping %s kernels: this CPU lacks them\n", ISA_NAMES[isa]);
            assert_int_equal(bl_kern_init(isa), BL_EUNSUPPORTED);
            continue;
        }
        assert_int_equal(bl_kern_init(isa), 0);
        assert_int_equal(bl_kern_isa(), isa);
        print_message("testing %s kernels\n", bl_kern_isa_name());
        for (size_t ti = 0; ti < sizeof MM_TYPES / sizeof MM_TYPES[0]; ti++) {
            uint32_t t = MM_TYPES[ti];
            for (int exact = 0; exact < 2; exact++) {
                for (size_t ni = 0; ni < NNS + 3; ni++) {
                    size_t n = ni < NNS ? NS[ni] : NS_FLOAT[ni - NNS];
                    if (ni >= NNS && is_quant(t))
                        continue;
                    for (size_t ci = 0; ci < sizeof NCOLS / sizeof NCOLS[0]; ci++) {
                        size_t nc = NCOLS[ci];
                        if (n > 256 && nc > 5 && nc != 16)
                            continue; /* keep the large cases few */
                        mm_case_t mc = {.n = n, .nrows = 37, .ncols = nc, .exact = exact};
                        mc.ldy = mc.nrows + (ci & 1 ? 0 : 3);
                        /* whole, and an odd sub-range */
                        mc.r0 = 0, mc.r1 = mc.nrows;
                        run_case(t, &mc, ISA_NAMES[isa]);
                        mc.r0 = 3 + ci, mc.r1 = 3 + ci + 2 * ci + 1;
                        run_case(t, &mc, ISA_NAMES[isa]);
                        ran++;
                    }
                }
            }
        }
    }
    assert_true(ran > 0);
    assert_int_equal(bl_kern_init(BL_ISA_AUTO), 0);
}

/* One type on the current family: ncols columns at once against each alone. */
static void check_cols_exact(uint32_t t, size_t ncols)
{
    const size_t n = 4096 + 96, nrows = 13;
    uint64_t rb;
    assert_true(bl_type_row_bytes(t, n, &rb));
    uint8_t *W = malloc(rb * nrows);
    float *x = malloc(n * ncols * 4);
    size_t ab = bl_kern_act_bytes(t, n);
    uint8_t *X = malloc(ab * ncols + 64);
    float *multi = malloc(nrows * ncols * 4), *one = malloc(nrows * 4);
    make_weights(t, W, (size_t)rb, n, nrows, false);
    make_acts(x, n, ncols, false);
    bl_kern_prepare(t, x, n, ncols, X);
    bl_kern_matmul(t, W, (size_t)rb, n, X, ncols, multi, nrows, 0, nrows);
    for (size_t c = 0; c < ncols; c++) {
        bl_kern_matmul(t, W, (size_t)rb, n, X + c * ab, 1, one, nrows, 0, nrows);
        for (size_t r = 0; r < nrows; r++)
            if (f2u(one[r]) != f2u(multi[c * nrows + r]))
                fail_msg("%s %s, %zu columns: column %zu row %zu: %.9g alone, %.9g in a batch",
                         bl_kern_isa_name(), bl_type_info(t)->name, ncols, c, r, one[r],
                         multi[c * nrows + r]);
    }
    free(W);
    free(x);
    free(X);
    free(multi);
    free(one);
}

/* Where a family says its tiles are exact per column (bl_kern_cols_exact),
 * a multi-column matmul must give each column bit for bit what that column
 * alone gives, on random data: batched decode relies on it to stay exact.
 * 2..5 columns reach every tile shape (a batch of 4 has its own). */
static void cols_exact_means_bit_for_bit(void **state)
{
    (void)state;
    int checked = 0;
    for (size_t ii = 0; ii < sizeof ISAS / sizeof ISAS[0]; ii++) {
        bl_isa_t isa = ISAS[ii];
        if (!bl_kern_cpu_has(isa) || bl_kern_init(isa))
            continue;
        for (size_t ti = 0; ti < sizeof MM_TYPES / sizeof MM_TYPES[0]; ti++) {
            uint32_t t = MM_TYPES[ti];
            if (!bl_kern_cols_exact(t))
                continue;
            for (size_t ncols = 2; ncols <= 5; ncols++)
                check_cols_exact(t, ncols);
            checked++;
        }
    }
    print_message("%d type/ISA pairs with per-column-exact tiles checked\n", checked);
    assert_int_equal(bl_kern_init(BL_ISA_AUTO), 0);
}

/* Activations are rounded half to even (as ggml's x86 quantize_row_q8_0),
 * unlike the weight quantizer's roundf, on every ISA. */
static void prepare_rounds_half_to_even(void **state)
{
    float x[64];
    for (int j = 0; j < 64; j++)
        x[j] = (float)(j % 32) - 15.5f; /* -15.5 .. 15.5 */
    x[0] = 127.0f, x[32] = -127.0f;      /* amax 127: id = 1 */
    for (size_t ii = 0; ii < sizeof ISAS / sizeof ISAS[0]; ii++) {
        if (!bl_kern_cpu_has(ISAS[ii]))
            continue;
        assert_int_equal(bl_kern_init(ISAS[ii]), 0);
        uint8_t X[80];
        bl_kern_prepare(BL_TYPE_Q4_0, x, 64, 1, X);
        const int8_t *qs = bl_q8a_qs(X);
        for (int j = 1; j < 64; j++)
            if (j != 32)
                assert_int_equal(qs[j], (int)nearbyintf(x[j]));
        assert_int_equal(qs[2], -14); /* -13.5 -> -14 */
        assert_int_equal(qs[3], -12); /* -12.5 -> -12 */
        assert_true(bl_q8a_d(X, 2)[0] == 1.0f);
    }
    assert_int_equal(bl_kern_init(BL_ISA_AUTO), 0);
}

static void init_picks_best_and_names_it(void **state)
{
    assert_int_equal(bl_kern_init(BL_ISA_AUTO), 0);
    bl_isa_t best = bl_kern_cpu_has(BL_ISA_AVX512) ? BL_ISA_AVX512
                    : bl_kern_cpu_has(BL_ISA_AVX2) ? BL_ISA_AVX2
                                                   : BL_ISA_SCALAR;
    assert_int_equal(bl_kern_isa(), best);
    assert_non_null(strstr(bl_kern_isa_name(), ISA_NAMES[best]));
    assert_int_equal(bl_kern_init((bl_isa_t)42), BL_EINVAL);
    assert_true(bl_kern_supports(BL_TYPE_Q4_0));
    assert_true(bl_kern_supports(BL_TYPE_Q4_K));
    assert_false(bl_kern_supports(BL_TYPE_Q2_K));
    assert_false(bl_kern_supports(BL_TYPE_IQ4_NL));
    assert_int_equal(bl_kern_act_bytes(BL_TYPE_Q8_0, 64), 80);
    assert_int_equal(bl_kern_act_bytes(BL_TYPE_F16, 64), 128);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp16_to_f32_exhaustive),
        cmocka_unit_test(f32_to_fp16_exhaustive),
        cmocka_unit_test(bf16_exhaustive),
        cmocka_unit_test(q8_0_matches_ggml_on_known_block),
        cmocka_unit_test(q4_0_matches_ggml_on_known_block),
        cmocka_unit_test(quant_round_trip_bounds),
        cmocka_unit_test(init_picks_best_and_names_it),
        cmocka_unit_test(prepare_rounds_half_to_even),
        cmocka_unit_test(matmul_all_types_all_isas),
        cmocka_unit_test(cols_exact_means_bit_for_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
