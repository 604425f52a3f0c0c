/*
 * `ballast bench-engine`: load, prefill and decode speed of a local model,
 * and how close decode comes to the machine's memory bandwidth (decode reads
 * every weight once per token, so bytes/token x tokens/s over the measured
 * streaming-read bandwidth says how much headroom the kernels leave).
 * Output is `key: value` lines so scripts can compare runs.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ballast/engine.h>

#include "cli/cli.h"

static const char USAGE[] =
    "usage: ballast bench-engine -m MODEL.gguf [options]\n"
    "\n"
    "  -t, --threads N        worker threads (default: online cores)\n"
    "      --prompt-tokens N  prompt length for the prefill measurement (default 128)\n"
    "      --gen-tokens N     tokens decoded for the decode measurement (default 128)\n"
    "      --isa KIND         scalar, avx2 or avx512 (default: best available)\n"
    "  -h, --help             this text\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void cpu_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon += colon[1] == ' ' ? 2 : 1;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(buf, cap, "%s", colon);
            }
            break;
        }
    }
    fclose(f);
}

/* ---- memory bandwidth probe ---------------------------------------------- */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
    pthread_barrier_t *start;
} bw_arg_t;

static void *bw_read(void *v)
{
    bw_arg_t *a = v;
    pthread_barrier_wait(a->start);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= a->n; i += 4) {
        s0 += a->p[i];
        s1 += a->p[i + 1];
        s2 += a->p[i + 2];
        s3 += a->p[i + 3];
    }
    a->sum = s0 + s1 + s2 + s3; /* keeps the loads alive */
    return NULL;
}

/* Best of several streaming reads of a buffer far larger than the L3, split
 * over the same number of threads as the model uses. GB/s, or 0 on failure. */
static double mem_bandwidth(int threads)
{
    const size_t bytes = (size_t)512 << 20;
    uint64_t *buf = malloc(bytes);
    if (!buf || threads < 1)
        return 0;
    size_t n = bytes / sizeof *buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = i; /* fault the pages in before timing */
    double best = 0;
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    bw_arg_t *args = calloc((size_t)threads, sizeof *args);
    for (int rep = 0; tid && args && rep < 5; rep++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
        for (int t = 0; t < threads; t++) {
            size_t a = n * (size_t)t / (size_t)threads, b = n * (size_t)(t + 1) / (size_t)threads;
            args[t] = (bw_arg_t){buf + a, b - a, 0, &start};
            pthread_create(&tid[t], NULL, bw_read, &args[t]);
        }
        double t0 = now_ms();
        pthread_barrier_wait(&start);
        uint64_t sum = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            sum += args[t].sum;
        }
        double ms = now_ms() - t0;
        pthread_barrier_destroy(&start);
        if (sum == 42)
            fputs("", stderr); /* use the sum */
        double gbs = (double)bytes / (ms * 1e6);
        if (gbs > best)
            best = gbs;
    }
    free(tid);
    free(args);
    free(buf);
    return best;
}

/* ---- the benchmark ------------------------------------------------------- */

static bl_token_t argmax(const float *l, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    return (bl_token_t)best;
}

static int parse_count(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ballast bench-engine: %s expects an integer in [%ld, %ld], got '%s'\n",
                flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int bl_cli_bench_engine(int argc, char **argv)
{
    enum { OPT_PROMPT = 1000, OPT_GEN, OPT_ISA };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"threads", required_argument, 0, 't'},
        {"prompt-tokens", required_argument, 0, OPT_PROMPT},
        {"gen-tokens", required_argument, 0, OPT_GEN},
        {"isa", required_argument, 0, OPT_ISA},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL;
    long threads = 0, n_prompt = 128, n_gen = 128;
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:t:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'm':
            path = optarg;
            break;
        case 't':
            bad = parse_count("--threads", optarg, 0, 256, &threads);
            break;
        case OPT_PROMPT:
            bad = parse_count("--prompt-tokens", optarg, 1, 65536, &n_prompt);
            break;
        case OPT_GEN:
            bad = parse_count("--gen-tokens", optarg, 1, 65536, &n_gen);
            break;
        case OPT_ISA:
            if (!strcmp(optarg, "scalar"))
                mp.isa = BL_ISA_SCALAR;
            else if (!strcmp(optarg, "avx2"))
                mp.isa = BL_ISA_AVX2;
            else if (!strcmp(optarg, "avx512"))
                mp.isa = BL_ISA_AVX512;
            else {
                fprintf(stderr, "ballast bench-engine: --isa expects scalar, avx2 or avx512\n");
                return 1;
            }
            break;
        case 'h':
            fputs(USAGE, stdout);
            return 0;
        case ':':
            fprintf(stderr, "ballast bench-engine: option '%s' needs a value\n", argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "ballast bench-engine: unknown option '%s'\n\n%s", argv[optind - 1],
                    USAGE);
            return 1;
        }
        if (bad)
            return 1;
    }
    if (!path || optind < argc) {
        fprintf(stderr, "ballast bench-engine: -m MODEL.gguf is required\n\n%s", USAGE);
        return 1;
    }
    if (threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? c : 1;
    }
    mp.n_threads = (int)threads;

    int status = 1;
    bl_model_t *m = NULL;
    bl_ctx_t *c = NULL;
    bl_token_t *prompt = NULL;
    char err[512] = "";
    double t0 = now_ms();
    int rc = bl_model_load(path, &mp, &m, err, sizeof err);
    double load_ms = now_ms() - t0;
    if (rc < 0) {
        fprintf(stderr, "ballast bench-engine: %s\n", err[0] ? err : bl_strerror(rc));
        goto done;
    }
    const bl_model_info_t *info = bl_model_info(m);
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = (uint32_t)(n_prompt + n_gen + 16);
    if ((rc = bl_ctx_new(m, &cp, &c, err, sizeof err)) < 0) {
        fprintf(stderr, "ballast bench-engine: %s\n", err);
        goto done;
    }

    /* A fixed pseudo-random prompt: speed does not depend on the text. */
    prompt = malloc((size_t)n_prompt * sizeof *prompt);
    if (!prompt)
        goto done;
    uint32_t x = 12345;
    for (long i = 0; i < n_prompt; i++) {
        x = x * 1103515245u + 12345u;
        prompt[i] = (bl_token_t)((x >> 8) % info->n_vocab);
    }
    if (info->bos >= 0)
        prompt[0] = info->bos;

    t0 = now_ms();
    if ((rc = bl_ctx_feed(c, prompt, (size_t)n_prompt, NULL)) < 0) {
        fprintf(stderr, "ballast bench-engine: prefill failed: %s\n", bl_strerror(rc));
        goto done;
    }
    double prefill_ms = now_ms() - t0;

    t0 = now_ms();
    for (long i = 0; i < n_gen; i++) {
        bl_token_t t = argmax(bl_ctx_logits(c), info->n_vocab);
        if ((rc = bl_ctx_feed(c, &t, 1, NULL)) < 0) {
            fprintf(stderr, "ballast bench-engine: decode failed: %s\n", bl_strerror(rc));
            goto done;
        }
    }
    double decode_ms = now_ms() - t0;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
    double bw = mem_bandwidth((int)threads);
    double prefill_tps = (double)n_prompt * 1e3 / prefill_ms;
    double decode_tps = (double)n_gen * 1e3 / decode_ms;
    double decode_gbs = (double)info->weight_bytes * decode_tps / 1e9;

    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("cpu: %s\n", cpu);
    printf("isa: %s\n", info->isa);
    printf("model: %s\n", path);
    printf("model_info: %s, %.1fM params, %s, %u layers, n_embd %u\n", info->arch,
           (double)info->n_params / 1e6, info->file_type, info->n_layer, info->n_embd);
    printf("threads: %ld\n", threads);
    printf("load_ms: %.1f\n", load_ms);
    printf("prefill_tokens: %ld\n", n_prompt);
    printf("prefill_tok_s: %.2f\n", prefill_tps);
    printf("decode_tokens: %ld\n", n_gen);
    printf("decode_tok_s: %.2f\n", decode_tps);
    printf("peak_rss_mb: %.1f\n", peak_rss_mb);
    printf("weight_bytes_per_token: %llu\n", (unsigned long long)info->weight_bytes);
    printf("mem_read_bw_gb_s: %.2f\n", bw);
    printf("decode_read_gb_s: %.2f\n", decode_gbs);
    printf("decode_bw_fraction: %.3f\n", bw > 0 ? decode_gbs / bw : 0.0);
    status = 0;
done:
    free(prompt);
    bl_ctx_free(c);
    bl_model_free(m);
    return status;
}
