/*
 * Kernel tests for Q5_0, Q5_1, Q4_K, Q5_K and Q6_K: the ggml-exact
 * quantizers on hand-computed blocks, quantize/dequantize error bounds, and
 * every matmul path the CPU has against a double-precision reference that
 * decodes the blocks itself (a second reading of the layouts) and uses the
 * prepared activations, so only float rounding in the kernel may differ.
 */
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

#include "engine/kernels/kern_impl.h" /* white box: block and prepared layouts */
#include "engine/kernels/kernels.h"
#include "engine/types.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* uniform in [-1, 1) */
static float frnd(void)
{
    return (float)((double)rnd() / 2147483648.0 - 1.0);
}

static const uint32_t TYPES[] = {BL_TYPE_Q5_0, BL_TYPE_Q5_1, BL_TYPE_Q4_K, BL_TYPE_Q5_K,
                                 BL_TYPE_Q6_K};
static const bl_isa_t ISAS[] = {BL_ISA_SCALAR, BL_ISA_AVX2, BL_ISA_AVX512};
static const char *const ISA_NAMES[] = {"auto", "scalar", "avx2", "avx512"};

static bool is_k(uint32_t t)
{
    return bl_type_info(t)->block_elems == 256;
}

/* ---- a second reading of the block layouts (from ggml-common.h) -------- */

/* Value of element e of the block at blk, exactly, in double; *mag gets the
 * sum of the magnitudes of the terms it is made of (for error bounds). */
static double ref_value(uint32_t t, const uint8_t *blk, int e, double *mag)
{
    double d, v;
    switch (t) {
    case BL_TYPE_Q5_0:
    case BL_TYPE_Q5_1: {
        int off = t == BL_TYPE_Q5_0 ? 2 : 4;
        uint32_t qh = (uint32_t)blk[off] | (uint32_t)blk[off + 1] << 8 |
                      (uint32_t)blk[off + 2] << 16 | (uint32_t)blk[off + 3] << 24;
        uint8_t b = blk[off + 4 + e % 16];
        int q = (e < 16 ? b & 15 : b >> 4) | (int)((qh >> e) & 1) << 4;
        d = bl_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        if (t == BL_TYPE_Q5_0) {
            v = d * (q - 16);
            *mag = fabs(v);
        } else {
            double m = bl_fp16_to_f32((uint16_t)(blk[2] | blk[3] << 8));
            v = d * q + m;
            *mag = fabs(d * q) + fabs(m);
        }
        return v;
    }
    case BL_TYPE_Q4_K:
    case BL_TYPE_Q5_K: {
        d = bl_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        double dmin = bl_fp16_to_f32((uint16_t)(blk[2] | blk[3] << 8));
        const uint8_t *s = blk + 4;
        int j = e / 32, l = e % 32, sc, m;
        if (j < 4) {
            sc = s[j] & 63;
            m = s[j + 4] & 63;
        } else {
            sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
            m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
        }
        const uint8_t *qs = blk + (t == BL_TYPE_Q4_K ? 16 : 48);
        uint8_t b = qs[32 * (j / 2) + l];
        int q = j % 2 ? b >> 4 : b & 15;
        if (t == BL_TYPE_Q5_K)
            q |= ((blk[16 + l] >> j) & 1) << 4;
        v = d * sc * q - dmin * m;
        *mag = fabs(d * sc * q) + fabs(dmin * m);
        return v;
    }
    case BL_TYPE_Q6_K: {
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        uint8_t ql = blk[64 * h + l + 32 * (k % 2)], qh = blk[128 + 32 * h + l];
        int q = (k < 2 ? ql & 15 : ql >> 4) | ((qh >> (2 * k)) & 3) << 4;
        d = bl_fp16_to_f32((uint16_t)(blk[208] | blk[209] << 8));
        v = d * (int8_t)blk[192 + e / 16] * (q - 32);
        *mag = fabs(v);
        return v;
    }
    }
    fail_msg("no reference for type %u", t);
    return 0;
}

/* ---- hand-computed blocks ----------------------------------------------- */

static void q5_0_known_block(void **state)
{
    float x[32];
    uint8_t blk[22];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16); /* max magnitude -16 -> d = 1, q = (int8)(x + 16.5) = j */
    bl_kern_quantize_row(BL_TYPE_Q5_0, x, blk, 32);
    assert_int_equal(blk[0] | blk[1] << 8, 0x3c00);
    /* elements 16..31 have the fifth bit: qh = 0xffff0000, little endian */
    assert_int_equal(blk[2], 0x00);
    assert_int_equal(blk[3], 0x00);
    assert_int_equal(blk[4], 0xff);
    assert_int_equal(blk[5], 0xff);
    for (int j = 0; j < 16; j++)
        assert_int_equal(blk[6 + j], j | j << 4);
    float y[32];
    bl_kern_dequantize_row(BL_TYPE_Q5_0, blk, y, 32);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == x[j]);
}

static void q5_1_known_block(void **state)
{
    float x[32];
    uint8_t blk[24];
    for (int j = 0; j < 32; j++)
        x[j] = 3.0f + 0.5f * (float)j; /* min 3, d = 15.5/31 = 0.5, q = j */
    bl_kern_quantize_row(BL_TYPE_Q5_1, x, blk, 32);
    assert_int_equal(blk[0] | blk[1] << 8, 0x3800); /* 0.5 */
    assert_int_equal(blk[2] | blk[3] << 8, 0x4200); /* 3.0 */
    assert_int_equal(blk[4] | blk[5] << 8, 0x0000);
    assert_int_equal(blk[6] | blk[7] << 8, 0xffff);
    for (int j = 0; j < 16; j++)
        assert_int_equal(blk[8 + j], j | j << 4);
    float y[32];
    bl_kern_dequantize_row(BL_TYPE_Q5_1, blk, y, 32);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == x[j]);
}

/* Each sub-block holds 0..15 twice: the first scale tried fits exactly, so
 * every sub-scale is 1 (stored as 63 with d = 1/63) and every min 0. */
static void q4_k_known_block(void **state)
{
    float x[256], y[256];
    uint8_t blk[144];
    for (int e = 0; e < 256; e++)
        x[e] = (float)((e % 32 * 7 + e / 32) % 16);
    bl_kern_quantize_row(BL_TYPE_Q4_K, x, blk, 256);
    assert_int_equal(blk[0] | blk[1] << 8, bl_f32_to_fp16(1.0f / 63));
    assert_int_equal(blk[2] | blk[3] << 8, 0);
    /* sc = 63 for all eight: low 6 bits of bytes 0..3, and 0x0f in 8..11
     * with the top two bits (3) stored in bytes 0..3; the mins are 0 */
    static const uint8_t SC[12] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x0f, 0x0f, 0x0f, 0x0f};
    assert_memory_equal(blk + 4, SC, 12);
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 32; l++)
            assert_int_equal(blk[16 + 32 * i + l],
                             (int)x[64 * i + l] | (int)x[64 * i + 32 + l] << 4);
    bl_kern_dequantize_row(BL_TYPE_Q4_K, blk, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(fabsf(y[e] - x[e]) <= 15 * 0x1p-10f);
    /* shifted by -8: every min is 8, so both 6-bit fields are 63 everywhere */
    for (int e = 0; e < 256; e++)
        x[e] -= 8;
    bl_kern_quantize_row(BL_TYPE_Q4_K, x, blk, 256);
    for (int i = 0; i < 12; i++)
        assert_int_equal(blk[4 + i], 0xff);
    assert_int_equal(blk[2] | blk[3] << 8, bl_f32_to_fp16(8.0f / 63));
}

/* Q5_K: 0..31 once per sub-block, with the fifth bits in qh. */
static void q5_k_known_block(void **state)
{
    float x[256];
    uint8_t blk[176];
    for (int e = 0; e < 256; e++)
        x[e] = (float)((e % 32 * 5 + e / 32) % 32);
    bl_kern_quantize_row(BL_TYPE_Q5_K, x, blk, 256);
    assert_int_equal(blk[0] | blk[1] << 8, bl_f32_to_fp16(1.0f / 63));
    assert_int_equal(blk[2] | blk[3] << 8, 0);
    for (int e = 0; e < 256; e++) {
        int j = e / 32, l = e % 32, q = (int)x[e];
        uint8_t b = blk[48 + 32 * (j / 2) + l];
        assert_int_equal(j % 2 ? b >> 4 : b & 15, q & 15);
        assert_int_equal((blk[16 + l] >> j) & 1, q >> 4);
    }
}

/* Q6_K from raw bytes: d = 1, scales[g] = g - 8, and quants set one by one
 * through the documented bit positions; the all-zero block quantizes to 0. */
static void q6_k_known_block(void **state)
{
    uint8_t blk[210] = {0};
    int q[256];
    for (int e = 0; e < 256; e++) {
        q[e] = (e * 37 + 11) % 64;
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        blk[64 * h + l + 32 * (k % 2)] |= (uint8_t)((q[e] & 15) << (k < 2 ? 0 : 4));
        blk[128 + 32 * h + l] |= (uint8_t)((q[e] >> 4) << (2 * k));
    }
    for (int g = 0; g < 16; g++)
        blk[192 + g] = (uint8_t)(int8_t)(g - 8);
    blk[208] = 0x00, blk[209] = 0x3c;
    float y[256];
    bl_kern_dequantize_row(BL_TYPE_Q6_K, blk, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(y[e] == (float)((e / 16 - 8) * (q[e] - 32)));
    float x[256] = {0};
    uint8_t z[210];
    memset(z, 0xa5, sizeof z);
    bl_kern_quantize_row(BL_TYPE_Q6_K, x, z, 256);
    for (int i = 0; i < 210; i++)
        assert_int_equal(z[i], 0);
}

/* ---- quantize / dequantize -------------------------------------------------- */

static void round_trip_bounds(void **state)
{
    enum { N = 8192 };
    float *x = malloc(N * 4), *y = malloc(N * 4);
    uint8_t *q = malloc(N * 2);
    for (int i = 0; i < N; i++) {
        float v = frnd() * (float)(1 << (i / 1024)); /* super-blocks of varied magnitude */
        if ((i / 256) % 4 == 1)
            v = fabsf(v) + 0.5f; /* all positive: a non-zero min */
        if ((i / 256) % 4 == 2 && i % 64 < 32)
            v *= 0.01f; /* sub-blocks of very different size */
        x[i] = v;
    }
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        uint32_t t = TYPES[ti];
        int be = (int)bl_type_info(t)->block_elems;
        uint64_t rb;
        assert_true(bl_type_row_bytes(t, N, &rb));
        memset(q, 0xa5, N * 2);
        bl_kern_quantize_row(t, x, q, N);
        bl_kern_dequantize_row(t, q, y, N);
        double sq = 0, sqx = 0;
        for (int b = 0; b < N / be; b++) {
            float mn = x[b * be], mx = mn, amax = 0;
            for (int j = 0; j < be; j++) {
                float v = x[b * be + j];
                mn = fminf(mn, v), mx = fmaxf(mx, v), amax = fmaxf(amax, fabsf(v));
            }
            double bound;
            switch (t) {
            /* a whole step (the element opposite the max may clamp at +15),
             * plus the fp16 rounding of d times the largest quant */
            case BL_TYPE_Q5_0:
                bound = amax / 16 * (1.0 + 16 * 0x1p-11);
                break;
            /* half a step, plus fp16 rounding of d (times 31) and of min */
            case BL_TYPE_Q5_1:
                bound = (mx - mn) / 31 * (0.5 + 31 * 0x1p-11) + fabs(mn) * 0x1p-11;
                break;
            /* the sub-block scales are themselves quantized to 6 bits (and
             * the min to 6 bits): a step of the super-block's range */
            case BL_TYPE_Q4_K:
                bound = (mx - fminf(mn, 0)) / 15;
                break;
            case BL_TYPE_Q5_K:
                bound = (mx - fminf(mn, 0)) / 31;
                break;
            default:
                bound = amax / 32 * 1.5;
                break; /* Q6_K: int8 sub-scales */
            }
            for (int j = 0; j < be; j++) {
                int i = b * be + j;
                double err = fabs((double)x[i] - y[i]);
                sq += err * err, sqx += (double)x[i] * x[i];
                if (err > bound * 1.0001 + 1e-30)
                    fail_msg("%s elem %d: x=%g y=%g err=%g bound=%g", bl_type_info(t)->name, i,
                             x[i], y[i], err, bound);
            }
        }
        /* and on the whole far better than the worst case */
        double rel = sqrt(sq / sqx);
        double limit = t == BL_TYPE_Q6_K ? 0.02 : t == BL_TYPE_Q4_K ? 0.08 : 0.04;
        if (rel > limit)
            fail_msg("%s: relative rms error %g > %g", bl_type_info(t)->name, rel, limit);
        /* dequantize agrees with the reference decoding of the bytes */
        for (int i = 0; i < N; i++) {
            double mag,
                v = ref_value(t, q + (size_t)(i / be) * bl_type_info(t)->block_bytes, i % be, &mag);
            assert_true(fabs(v - y[i]) <= mag * 0x1p-22);
        }
    }
    free(x);
    free(y);
    free(q);
}

/* ---- matmul ------------------------------------------------------------- */

/* The prepared column's values as doubles, checking the stored sums (x is
 * the column's floats: Q5_1's s is ggml's Q8_1 s = fp16(amax/127 * sum),
 * with the scale before its own fp16 rounding). */
static void act_values(uint32_t t, const void *col, size_t n, const float *x, double *out)
{
    if (is_k(t)) {
        size_t nb = n / 256;
        const int8_t *qs = bl_q8k_qs(col);
        const float *d = bl_q8k_d(col, nb);
        const int16_t *s = bl_q8k_s(col, nb);
        for (size_t g = 0; g < n / 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) {
                out[g * 16 + j] = (double)qs[g * 16 + j] * d[g / 16];
                sum += qs[g * 16 + j];
            }
            assert_int_equal(sum, s[g]);
        }
        return;
    }
    size_t nb = n / 32;
    const int8_t *qs = bl_q8a_qs(col);
    const float *d = bl_q8a_d(col, nb);
    const int32_t *s = bl_q8a_s(col, nb);
    for (size_t b = 0; b < nb; b++) {
        int32_t sum = 0;
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            out[b * 32 + j] = (double)qs[b * 32 + j] * d[b];
            sum += qs[b * 32 + j];
            amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        }
        if (t == BL_TYPE_Q5_1) {
            float want = bl_fp16_to_f32(bl_f32_to_fp16(amax / 127 * (float)sum));
            assert_float_equal(bl_q8a_sf(col, nb)[b], want, 0);
        } else {
            assert_int_equal(sum, s[b]);
        }
    }
}

typedef struct {
    size_t n, nrows, ncols, ldy, r0, r1;
    bool exact; /* data chosen so every sum is exact in float */
} mm_case_t;

/* Random blocks. In exact mode the scales are powers of two (and the
 * sub-scales small) so every partial sum is exact in float, whatever the
 * order: SIMD must then equal the reference bit for bit. Otherwise the
 * reference quantizer makes them from random floats. */
static void make_weights(uint32_t t, uint8_t *W, size_t row_bytes, size_t n, size_t nrows,
                         bool exact)
{
    const bl_type_info_t *ti = bl_type_info(t);
    float *row = malloc(n * 4);
    for (size_t r = 0; r < nrows; r++) {
        uint8_t *w = W + r * row_bytes;
        if (!exact) {
            for (size_t i = 0; i < n; i++)
                row[i] = frnd() + (r % 3 == 1 ? 0.7f : 0.0f); /* some rows with a min */
            bl_kern_quantize_row(t, row, w, n);
            continue;
        }
        for (size_t b = 0; b < n / ti->block_elems; b++) {
            uint8_t *blk = w + b * ti->block_bytes;
            for (size_t j = 0; j < ti->block_bytes; j++)
                blk[j] = (uint8_t)rnd();
            switch (t) {
            case BL_TYPE_Q5_1:
                blk[2] = 0x00, blk[3] = 0xb4; /* m = -0.25 */ /* fallthrough */
            case BL_TYPE_Q5_0:
                blk[0] = 0x00, blk[1] = 0x38; /* d = 0.5 */
                break;
            case BL_TYPE_Q4_K:
            case BL_TYPE_Q5_K:
                blk[0] = 0x00, blk[1] = 0x2c; /* d = 1/16 */
                blk[2] = 0x00, blk[3] = 0x30; /* dmin = 1/8 */
                for (int j = 4; j < 12; j++)
                    blk[j] &= 0x0f; /* sub-scales and mins 0..15 */
                break;
            case BL_TYPE_Q6_K:
                for (int g = 0; g < 16; g++)
                    blk[192 + g] = (uint8_t)(int8_t)((int)(rnd() % 17) - 8);
                blk[208] = 0x00, blk[209] = 0x2c;
                break;
            }
        }
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
    const bl_type_info_t *ti = bl_type_info(t);
    uint64_t rb;
    assert_true(bl_type_row_bytes(t, mc->n, &rb));
    size_t row_bytes = (size_t)rb;
    uint8_t *W = malloc(row_bytes * mc->nrows);
    float *x = malloc(mc->n * mc->ncols * 4);
    size_t ab = bl_kern_act_bytes(t, mc->n);
    uint8_t *X = malloc(ab * mc->ncols + 64), *Xs = malloc(ab * mc->ncols + 64);
    float *y = malloc(mc->ldy * mc->ncols * 4);
    double *a = malloc(mc->n * mc->ncols * sizeof(double));
    double *wv = malloc(mc->n * sizeof(double)), *wm = malloc(mc->n * sizeof(double));
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
        act_values(t, X + c * ab, mc->n, x + c * mc->n, a + c * mc->n);

    const uint32_t SENTINEL = 0x7fc0dead;
    for (size_t i = 0; i < mc->ldy * mc->ncols; i++)
        memcpy(&y[i], &SENTINEL, 4);
    bl_kern_matmul(t, W, row_bytes, mc->n, X, mc->ncols, y, mc->ldy, mc->r0, mc->r1);

    /* float operations the kernel may do in any order: a few per block */
    size_t k = mc->n / ti->block_elems * (is_k(t) ? 4 : 3);
    for (size_t r = 0; r < mc->nrows; r++) {
        bool inside = r >= mc->r0 && r < mc->r1;
        for (size_t i = 0; inside && i < mc->n; i++)
            wv[i] = ref_value(t, W + r * row_bytes + i / ti->block_elems * ti->block_bytes,
                              (int)(i % ti->block_elems), &wm[i]);
        for (size_t c = 0; c < mc->ncols; c++) {
            float got;
            memcpy(&got, &y[c * mc->ldy + r], 4);
            uint32_t bits;
            memcpy(&bits, &got, 4);
            if (!inside) {
                assert_int_equal(bits, SENTINEL);
                continue;
            }
            double ref = 0, mag = 0;
            for (size_t i = 0; i < mc->n; i++) {
                ref += wv[i] * a[c * mc->n + i];
                mag += wm[i] * fabs(a[c * mc->n + i]);
            }
            if (t == BL_TYPE_Q5_1) {
                /* as ggml's Q8_1, the min meets its s (checked above):
                 * replace the exact min term by that */
                const uint8_t *col = X + c * ab;
                size_t nb = mc->n / 32;
                for (size_t b = 0; b < nb; b++) {
                    const uint8_t *blk = W + r * row_bytes + b * 24;
                    double m = bl_fp16_to_f32((uint16_t)(blk[2] | blk[3] << 8));
                    double dsum = 0;
                    for (int j = 0; j < 32; j++)
                        dsum += a[c * mc->n + b * 32 + j];
                    ref += m * (bl_q8a_sf(col, nb)[b] - dsum);
                }
            }
            double tol = mc->exact ? 0 : (double)(k + 8) * 0x1p-23 * mag;
            if (fabs(got - ref) > tol)
                fail_msg("%s %s n=%zu rows=[%zu,%zu) ncols=%zu: y[%zu][%zu]=%.9g ref=%.9g "
                         "tol=%g",
                         isa, ti->name, mc->n, mc->r0, mc->r1, mc->ncols, c, r, got, ref, tol);
        }
    }
    /* every kernel family follows llama.cpp's x86 summation order (kern_impl.h,
     * bl_lanes_fma; Q4_K's gemv/gemm split, bl_q4_k_dot_ref): the scalar
     * reference's results, bit for bit */
    if (bl_kern_isa() != BL_ISA_SCALAR) {
        float *ys = malloc(mc->ldy * mc->ncols * 4);
        memcpy(ys, y, mc->ldy * mc->ncols * 4);
        bl_isa_t isa_now = bl_kern_isa();
        assert_int_equal(bl_kern_init(BL_ISA_SCALAR), 0);
        bl_kern_matmul(t, W, row_bytes, mc->n, X, mc->ncols, ys, mc->ldy, mc->r0, mc->r1);
        assert_int_equal(bl_kern_init(isa_now), 0);
        for (size_t c = 0; c < mc->ncols; c++)
            for (size_t r = mc->r0; r < mc->r1; r++)
                if (memcmp(&ys[c * mc->ldy + r], &y[c * mc->ldy + r], 4))
                    fail_msg("%s %s n=%zu ncols=%zu: y[%zu][%zu]=%.9g, scalar %.9g", isa,
                             ti->name, mc->n, mc->ncols, c, r, y[c * mc->ldy + r],
                             ys[c * mc->ldy + r]);
        free(ys);
    }
    /* nothing past the rows of ldy is touched */
    for (size_t c = 0; c < mc->ncols; c++)
        for (size_t r = mc->nrows; r < mc->ldy; r++) {
            uint32_t bits;
            memcpy(&bits, &y[c * mc->ldy + r], 4);
            assert_int_equal(bits, SENTINEL);
        }
    free(W);
    free(x);
    free(X);
    free(Xs);
    free(y);
    free(a);
    free(wv);
    free(wm);
}

static void matmul_all_types_all_isas(void **state)
{
    /* block counts 1, 2, 3, 5, 7, 9, 17 and 33 reach the tails of runs of
     * 2, 4 and 8 blocks */
    static const size_t NS32[] = {32, 64, 96, 160, 224, 288, 544, 1056};
    static const size_t NSK[] = {256, 512, 768, 1280, 2304, 4352};
    static const size_t NCOLS[] = {1, 2, 3, 4, 5, 7, 16, 33};
    int ran = 0;
    for (size_t ii = 0; ii < sizeof ISAS / sizeof ISAS[0]; ii++) {
        bl_isa_t isa = ISAS[ii];
        if (!bl_kern_cpu_has(isa)) {
            print_message("skipping %s kernels: this CPU lacks them\n", ISA_NAMES[isa]);
            continue;
        }
        assert_int_equal(bl_kern_init(isa), 0);
        print_message("testing %s kernels\n", bl_kern_isa_name());
        for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
            uint32_t t = TYPES[ti];
            const size_t *ns = is_k(t) ? NSK : NS32;
            size_t nns = is_k(t) ? sizeof NSK / sizeof NSK[0] : sizeof NS32 / sizeof NS32[0];
            for (int exact = 0; exact < 2; exact++) {
                for (size_t ni = 0; ni < nns; ni++) {
                    for (size_t ci = 0; ci < sizeof NCOLS / sizeof NCOLS[0]; ci++) {
                        size_t nc = NCOLS[ci];
                        if (ns[ni] > 1100 && nc > 4 && nc != 33)
                            continue; /* keep the large cases few */
                        mm_case_t mc = {.n = ns[ni], .nrows = 21, .ncols = nc, .exact = exact};
                        mc.ldy = mc.nrows + (ci & 1 ? 0 : 3);
                        mc.r0 = 0, mc.r1 = mc.nrows;
                        run_case(t, &mc, ISA_NAMES[isa]);
                        mc.r0 = 1 + ci, mc.r1 = 2 + 2 * ci; /* odd sub-ranges */
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

static void sizes_and_support(void **state)
{
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++)
        assert_true(bl_kern_supports(TYPES[ti]));
    assert_int_equal(bl_kern_act_bytes(BL_TYPE_Q5_0, 64), 80);
    assert_int_equal(bl_kern_act_bytes(BL_TYPE_Q5_1, 64), 80);
    assert_int_equal(bl_kern_act_bytes(BL_TYPE_Q4_K, 512), 2 * 292);
    assert_int_equal(bl_kern_act_bytes(BL_TYPE_Q6_K, 256), 292);
    assert_int_equal(sizeof(bl_block_q5_0), 22);
    assert_int_equal(sizeof(bl_block_q5_1), 24);
    assert_int_equal(sizeof(bl_block_q4_k), 144);
    assert_int_equal(sizeof(bl_block_q5_k), 176);
    assert_int_equal(sizeof(bl_block_q6_k), 210);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_and_support), cmocka_unit_test(q5_0_known_block),
        cmocka_unit_test(q5_1_known_block),  cmocka_unit_test(q4_k_known_block),
        cmocka_unit_test(q5_k_known_block),  cmocka_unit_test(q6_k_known_block),
        cmocka_unit_test(round_trip_bounds), cmocka_unit_test(matmul_all_types_all_isas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
