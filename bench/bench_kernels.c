/*
 * Kernel benchmark: single-threaded decode (matvec) bandwidth per type and
 * kernel family, as a fraction of this machine's streaming read bandwidth
 * measured in the same run, and prefill (128 columns) GFLOP/s.
 * Usage: bench_kernels [GiB of weights per type, default 0.75] [type name, e.g. Q4_0, or all]
 *                      [anything: skip the slow scalar kernels]
 */
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ballast/errors.h>

#include "engine/kernels/kernels.h"
#include "engine/types.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + strspn(p + 1, " \t");
                p[strcspn(p, "\n")] = 0;
                snprintf(out, cap, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

/* Streaming read probe: what one core can pull from DRAM. */
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t v[4];
    memcpy(v, &a0, 32);
    return v[0] + v[1] + v[2] + v[3];
}

static uint64_t sum_plain(const uint8_t *p, size_t n)
{
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i < n / 8; i += 4)
        a += q[i], b += q[i + 1], c += q[i + 2], d += q[i + 3];
    return a + b + c + d;
}

/* The machine is shared, so every figure is a sum of per-chunk minimums over
 * repetitions: a chunk that lost the core to another process is timed again
 * in the next pass, while each chunk is still cold (the passes stream far more
 * than the L3 in between). */
#define PROBE_CHUNK (16u << 20)

static double probe_bandwidth(size_t bytes)
{
    uint8_t *buf = aligned_alloc(64, bytes);
    size_t nchunks = bytes / PROBE_CHUNK;
    double *best = malloc(nchunks * sizeof(double));
    if (!buf || !best) {
        free(buf);
        free(best);
        return 0;
    }
    memset(buf, 1, bytes);
    bool avx2 = __builtin_cpu_supports("avx2");
    volatile uint64_t sink = 0;
    for (size_t k = 0; k < nchunks; k++)
        best[k] = 1e30;
    for (int it = 0; it < 5; it++) {
        for (size_t k = 0; k < nchunks; k++) {
            const uint8_t *p = buf + k * PROBE_CHUNK;
            double t = now();
            sink += avx2 ? sum_avx2(p, PROBE_CHUNK) : sum_plain(p, PROBE_CHUNK);
            t = now() - t;
            if (t < best[k])
                best[k] = t;
        }
    }
    (void)sink;
    double sum = 0;
    for (size_t k = 0; k < nchunks; k++)
        sum += best[k];
    free(buf);
    free(best);
    return (double)nchunks * PROBE_CHUNK / sum / 1e9;
}

static uint64_t rs = 88172645463325252ull;
static float frand(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2 - 1);
}

typedef struct {
    const char *name;
    size_t rows, n;
} shape_t;

static const shape_t SHAPES[] = {
    {"0.5B ffn 4864x896", 4864, 896},
    {"1.1B ffn 5632x2048", 5632, 2048},
};
static const uint32_t TYPES[] = {BL_TYPE_Q4_0, BL_TYPE_Q8_0, BL_TYPE_Q5_0, BL_TYPE_Q5_1,
                                 BL_TYPE_Q4_K, BL_TYPE_Q5_K, BL_TYPE_Q6_K, BL_TYPE_F16,
                                 BL_TYPE_BF16, BL_TYPE_F32};
static const bl_isa_t ISAS[] = {BL_ISA_SCALAR, BL_ISA_AVX2, BL_ISA_AVX512};

/* One properly quantized matrix, copied until the set is far larger than L3
 * so every matvec streams its weights from DRAM, as decode does. */
static uint8_t *make_set(uint32_t t, const shape_t *s, size_t total, size_t *count,
                         size_t *mbytes)
{
    uint64_t rb;
    if (!bl_type_row_bytes(t, s->n, &rb))
        return NULL;
    *mbytes = (size_t)rb * s->rows;
    *count = total / *mbytes + 1;
    uint8_t *set = aligned_alloc(64, (*mbytes * *count + 63) / 64 * 64);
    float *row = malloc(s->n * sizeof(float));
    if (!set || !row) {
        free(set);
        free(row);
        return NULL;
    }
    for (size_t r = 0; r < s->rows; r++) {
        for (size_t i = 0; i < s->n; i++)
            row[i] = frand() * 0.05f;
        bl_kern_quantize_row(t, row, set + r * rb, s->n);
    }
    for (size_t k = 1; k < *count; k++)
        memcpy(set + k * *mbytes, set, *mbytes);
    free(row);
    return set;
}

int main(int argc, char **argv)
{
    double gib = argc > 1 ? atof(argv[1]) : 0.75;
    if (gib <= 0 || gib > 8)
        gib = 0.75;
    size_t total = (size_t)(gib * (1u << 30));
    char model[256];
    cpu_model(model, sizeof model);
    if (bl_kern_init(BL_ISA_AUTO) != 0)
        return 1;
    printf("cpu: %s\nbest kernels: %s\n", model, bl_kern_isa_name());
    double bw = probe_bandwidth(1u << 30);
    printf("memory read probe (1 GiB, 1 thread): %.2f GB/s\n\n", bw);
    printf("%-20s %-6s %-18s %11s %8s %9s %12s\n", "shape", "type", "kernels", "decode GB/s",
           "of probe", "hot GB/s", "prefill GF/s");

    for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
        const shape_t *s = &SHAPES[si];
        for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
            uint32_t t = TYPES[ti];
            if (argc > 2 && strcmp(argv[2], "all") && strcmp(argv[2], bl_type_info(t)->name))
                continue;
            uint64_t rb0;
            if (!bl_type_row_bytes(t, s->n, &rb0))
                continue; /* 896 is not whole K-quant super-blocks */
            size_t count, mbytes;
            uint8_t *set = make_set(t, s, total, &count, &mbytes);
            float *x = malloc(s->n * 128 * sizeof(float));
            size_t ab = bl_kern_act_bytes(t, s->n);
            void *X = aligned_alloc(64, (ab * 128 + 63) / 64 * 64);
            float *y = malloc(s->rows * 128 * sizeof(float));
            if (!set || !x || !X || !y) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < s->n * 128; i++)
                x[i] = frand();
            uint64_t rb;
            bl_type_row_bytes(t, s->n, &rb);
            for (size_t ii = 0; ii < sizeof ISAS / sizeof ISAS[0]; ii++) {
                if (bl_kern_init(ISAS[ii]) != 0 || (argc > 3 && ISAS[ii] == BL_ISA_SCALAR))
                    continue;
                bl_kern_prepare(t, x, s->n, 128, X);
                /* decode: one pass over the whole set per repetition */
                bool slow = ISAS[ii] == BL_ISA_SCALAR;
                size_t reps = slow ? 1 : 4, mats = slow ? (count < 8 ? count : 8) : count;
                double *best = malloc(mats * sizeof(double)), sum = 0;
                for (size_t k = 0; k < mats; k++)
                    best[k] = 1e30;
                for (size_t rep = 0; rep < reps; rep++) {
                    for (size_t k = 0; k < mats; k++) {
                        double t0 = now();
                        bl_kern_matmul(t, set + k * mbytes, rb, s->n, X, 1, y, s->rows, 0,
                                       s->rows);
                        double dt = now() - t0;
                        if (dt < best[k])
                            best[k] = dt;
                    }
                }
                for (size_t k = 0; k < mats; k++)
                    sum += best[k];
                free(best);
                double gbs = (double)mats * mbytes / sum / 1e9;
                /* the same matrix again and again (L3-resident): the
                 * kernel's compute ceiling, to tell it from memory limits */
                double hot = 1e30;
                for (int rep = 0; rep < (slow ? 1 : 20); rep++) {
                    double t0 = now();
                    bl_kern_matmul(t, set, rb, s->n, X, 1, y, s->rows, 0, s->rows);
                    double dt = now() - t0;
                    if (dt < hot)
                        hot = dt;
                }
                double hgbs = (double)mbytes / hot / 1e9;
                /* prefill: 128 columns against one (cached) matrix */
                double pf = 0;
                if (!slow) {
                    double pbest = 1e30;
                    for (int rep = 0; rep < 3; rep++) {
                        double t0 = now();
                        bl_kern_matmul(t, set, rb, s->n, X, 128, y, s->rows, 0, s->rows);
                        double dt = now() - t0;
                        if (dt < pbest)
                            pbest = dt;
                    }
                    pf = 2.0 * s->rows * s->n * 128 / pbest / 1e9;
                }
                printf("%-20s %-6s %-18s %11.2f %7.1f%% %9.2f %12.1f\n", s->name,
                       bl_type_info(t)->name, bl_kern_isa_name(), gbs, 100 * gbs / bw, hgbs, pf);
                fflush(stdout);
            }
            free(set);
            free(x);
            free(X);
            free(y);
        }
    }
    bl_kern_init(BL_ISA_AUTO);
    return 0;
}
