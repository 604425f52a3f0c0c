/*
 * Batched decode benchmark: aggregate decode tokens/s of 1, 2, 4 and 8
 * sequences stepped together with bl_ctx_feed_batch, and the ratio to one
 * sequence (the product's target: 4 streams >= 2.5x one). Each sequence has
 * a 64-token prefix in its cache; every run starts from there. Two tables:
 * the default bit-exact path (multi-column tiles for the types whose tiles
 * are exact per column, bl_kern_cols_exact; else one column at a time), and
 * the multi-column kernels
 * (m->batch_multicol, see engine/model.h and batch.c). Each figure is the
 * best of TRIALS runs: the machine is shared, and interference only slows.
 * Usage: bench_batch MODEL.gguf [threads, default 0 = all cores] [steps, default 24]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ballast/engine.h>

#include "engine/model.h"

#define MAX_B 8
#define PREFIX 64
#define TRIALS 3

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
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            colon += 2;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}

/* Steps of B sequences from their prefix; returns seconds for `steps`
 * timed steps after 2 untimed ones. solo: bl_ctx_feed, B must be 1. */
static double run_once(bl_ctx_t **c, int B, int steps, uint32_t n_vocab, int solo)
{
    bl_token_t toks[MAX_B];
    int results[MAX_B];
    for (int i = 0; i < B; i++)
        bl_ctx_truncate(c[i], PREFIX);
    double t0 = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2)
            t0 = now();
        for (int i = 0; i < B; i++)
            toks[i] = (bl_token_t)(((uint32_t)s * 7919u + (uint32_t)i * 104729u + 11u) % n_vocab);
        int rc = solo ? bl_ctx_feed(c[0], toks, 1, NULL)
                      : bl_ctx_feed_batch(c, toks, (size_t)B, results, NULL);
        for (int i = 0; rc == 0 && !solo && i < B; i++)
            rc = results[i];
        if (rc < 0) {
            fprintf(stderr, "feed failed: %d\n", rc);
            exit(1);
        }
    }
    return now() - t0;
}

static double run(bl_ctx_t **c, int B, int steps, uint32_t n_vocab, int solo)
{
    double best = 0;
    for (int i = 0; i < TRIALS; i++) {
        double t = run_once(c, B, steps, n_vocab, solo);
        best = i == 0 || t < best ? t : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [threads] [steps]\n", argv[0]);
        return 2;
    }
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    mp.n_threads = argc > 2 ? atoi(argv[2]) : 0;
    int steps = argc > 3 ? atoi(argv[3]) : 24;
    if (steps < 1)
        steps = 1;
    bl_model_t *m = NULL;
    char err[512];
    if (bl_model_load(argv[1], &mp, &m, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const bl_model_info_t *info = bl_model_info(m);
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("cpu: %s\nisa: %s, threads: %d\n", cpu, info->isa, mp.n_threads);
    printf("model: %s (%s, %u layers, n_embd %u, vocab %u, %.0f MiB of weights per step)\n",
           argv[1], info->file_type, info->n_layer, info->n_embd, info->n_vocab,
           (double)info->weight_bytes / (1 << 20));

    bl_ctx_t *c[MAX_B];
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = PREFIX + 64 + (uint32_t)steps;
    for (int i = 0; i < MAX_B; i++) {
        if (bl_ctx_new(m, &cp, &c[i], err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        bl_token_t p[PREFIX];
        for (int k = 0; k < PREFIX; k++)
            p[k] = (bl_token_t)(((uint32_t)k * 31u + (uint32_t)i * 977u + 1u) % info->n_vocab);
        if (bl_ctx_feed(c[i], p, PREFIX, NULL) < 0) {
            fprintf(stderr, "prefill failed\n");
            return 1;
        }
    }

    double solo = run(c, 1, steps, info->n_vocab, 1);
    printf("\nbl_ctx_feed, 1 sequence: %.1f tok/s\n\n", steps / solo);
    for (int multicol = 0; multicol < 2; multicol++) {
        m->batch_multicol = multicol;
        printf("%s\n%6s %12s %14s %10s\n",
               multicol ? "\nbatch_multicol (multi-column kernels):"
                        : "default (bit-identical to alone: exact tiles where the type has them, else per column):",
               "batch", "ms/step", "agg tok/s", "vs batch 1");
        double base = 0;
        static const int SIZES[] = {1, 2, 4, 8};
        for (size_t k = 0; k < sizeof SIZES / sizeof SIZES[0]; k++) {
            int B = SIZES[k];
            double t = run(c, B, steps, info->n_vocab, 0);
            double tps = (double)B * steps / t;
            if (B == 1)
                base = tps;
            printf("%6d %12.2f %14.1f %9.2fx\n", B, t * 1e3 / steps, tps, tps / base);
        }
    }
    for (int i = 0; i < MAX_B; i++)
        bl_ctx_free(c[i]);
    bl_model_free(m);
    return 0;
}
