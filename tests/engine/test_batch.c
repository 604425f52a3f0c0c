/*
 * bl_ctx_feed_batch: several sequences decoded as one batch must give each
 * sequence exactly (bit for bit) the logits and greedy tokens it gets decoded
 * alone with bl_ctx_feed, while sequences join (after their own prefill) and
 * leave between steps, in any order within the batch, on every kernel family
 * the CPU has. The multi-column mode (m->batch_multicol) must give the same
 * tokens with logits within stated bounds. Models: stories260K and gguf-gen
 * models (Q8_0, Q4_0) made in a temp dir. Plus the per-context outcomes
 * (full cache, pending token, bad token), whole-call errors, cancel, and
 * batches larger than the scratch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ballast/engine.h>

#include "engine/kernels/kernels.h"
#include "engine/model.h"

static char g_dir[64];
static char g_stories[600], g_tiny_q8[128], g_tiny_q4[128], g_wide_q4[128];

static int gen(const char *out, const char *args)
{
    const char *build = getenv("BALLAST_BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/gguf-gen' --out '%s' %s >/dev/null", build ? build : ".", out,
             args);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "failed: %s\n", cmd);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    const char *shared = getenv("BALLAST_SHARED");
    snprintf(g_stories, sizeof g_stories, "%s/models/stories260K.gguf",
             shared ? shared : "../shared");
    snprintf(g_dir, sizeof g_dir, "/tmp/bl_batch_XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_tiny_q8, sizeof g_tiny_q8, "%s/tiny-q8.gguf", g_dir);
    snprintf(g_tiny_q4, sizeof g_tiny_q4, "%s/tiny-q4.gguf", g_dir);
    snprintf(g_wide_q4, sizeof g_wide_q4, "%s/wide-q4.gguf", g_dir);
    if (gen(g_tiny_q8, "--shape tiny --type Q8_0 --seed 3") ||
        gen(g_tiny_q4, "--shape tiny --type Q4_0 --seed 4") ||
        /* wider: several blocks per row, several row blocks per chunk */
        gen(g_wide_q4, "--shape tiny --type Q4_0 --n-embd 256 --n-head 4 --n-head-kv 2 "
                       "--n-ff 768 --n-vocab 4096 --seed 5"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_tiny_q8);
    unlink(g_tiny_q4);
    unlink(g_wide_q4);
    rmdir(g_dir);
    return 0;
}

static bl_model_t *load(const char *path, bl_isa_t isa)
{
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    mp.isa = isa;
    mp.n_threads = 2;
    bl_model_t *m = NULL;
    char err[512] = "";
    int rc = bl_model_load(path, &mp, &m, err, sizeof err);
    if (rc)
        fprintf(stderr, "load %s: %s\n", path, err);
    assert_int_equal(rc, 0);
    return m;
}

static bl_ctx_t *ctx_new(bl_model_t *m, uint32_t n_ctx)
{
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = n_ctx;
    bl_ctx_t *c = NULL;
    char err[256];
    assert_int_equal(bl_ctx_new(m, &cp, &c, err, sizeof err), 0);
    return c;
}

static bl_token_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (bl_token_t)best;
}

static void prompt(bl_token_t *out, uint32_t len, uint32_t seed, uint32_t n_vocab)
{
    for (uint32_t i = 0; i < len; i++)
        out[i] = (bl_token_t)((seed * 131u + i * 17u + 1u) % n_vocab);
}

/* Which sequences run when: 2 joins at step 5, 3 joins at step 10 with a
 * one-token prompt (four in the batch), 1 leaves after step 11. */
#define N_SEQ 4
#define N_CTX 64
static const struct {
    uint32_t join, steps, prompt_len;
} PLAN[N_SEQ] = {{0, 32, 7}, {0, 12, 3}, {5, 32, 11}, {10, 18, 1}};

/* The sequence alone: the tokens greedy decoding picks and the logits after
 * feeding each of them. */
static void solo(bl_model_t *m, int seq, bl_token_t *toks, float *logits)
{
    const uint32_t V = bl_model_info(m)->n_vocab;
    bl_token_t p[16];
    prompt(p, PLAN[seq].prompt_len, (uint32_t)seq, V);
    bl_ctx_t *c = ctx_new(m, N_CTX);
    assert_int_equal(bl_ctx_feed(c, p, PLAN[seq].prompt_len, NULL), 0);
    for (uint32_t s = 0; s < PLAN[seq].steps; s++) {
        toks[s] = argmax(bl_ctx_logits(c), V);
        assert_int_equal(bl_ctx_feed(c, &toks[s], 1, NULL), 0);
        memcpy(logits + (size_t)s * V, bl_ctx_logits(c), V * sizeof(float));
    }
    bl_ctx_free(c);
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++) {
        float e = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        d = e > d ? e : d;
    }
    return d;
}

static float max_abs(const float *a, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++)
        d = a[i] > d ? a[i] : -a[i] > d ? -a[i] : d;
    return d;
}

/* Multi-column kernels: allowed difference from feeding alone, relative to
 * the largest logit. One step from the same state differs by the rounding of
 * differently ordered sums (a flipped int8 rounding of a quantized
 * activation at most): STEP_TOL. Carried through the KV cache over 32 steps
 * it grows (worst seen: 7e-3, wide Q4_0 on AVX2): RUN_TOL. */
#define STEP_TOL 1e-4f
#define RUN_TOL 2e-2f

static void run_schedule(const char *path, bl_isa_t isa, bool exact)
{
    bl_model_t *m = load(path, isa);
    m->batch_multicol = !exact;
    float worst = 0, worst_step = 0;
    const uint32_t V = bl_model_info(m)->n_vocab;
    bl_token_t ref_tok[N_SEQ][32];
    float *ref[N_SEQ];
    for (int q = 0; q < N_SEQ; q++) {
        ref[q] = malloc((size_t)PLAN[q].steps * V * sizeof(float));
        assert_non_null(ref[q]);
        solo(m, q, ref_tok[q], ref[q]);
    }

    bl_ctx_t *ctx[N_SEQ] = {0};
    uint32_t done[N_SEQ] = {0};
    size_t n_batches = 0, widest = 0;
    for (uint32_t g = 0;; g++) {
        bl_ctx_t *batch[N_SEQ];
        bl_token_t toks[N_SEQ];
        int who[N_SEQ], results[N_SEQ];
        size_t n = 0;
        for (int i = 0; i < N_SEQ; i++) {
            /* odd steps list the sequences in reverse: order must not matter */
            int q = g % 2 ? N_SEQ - 1 - i : i;
            if (PLAN[q].join == g) {
                bl_token_t p[16];
                prompt(p, PLAN[q].prompt_len, (uint32_t)q, V);
                ctx[q] = ctx_new(m, N_CTX);
                assert_int_equal(bl_ctx_feed(ctx[q], p, PLAN[q].prompt_len, NULL), 0);
            }
            if (!ctx[q])
                continue;
            toks[n] = argmax(bl_ctx_logits(ctx[q]), V);
            assert_int_equal(toks[n], ref_tok[q][done[q]]);
            batch[n] = ctx[q];
            who[n++] = q;
        }
        if (n == 0 && g > 20)
            break;
        if (n == 0)
            continue;
        assert_int_equal(bl_ctx_feed_batch(batch, toks, n, results, NULL), 0);
        n_batches++;
        widest = n > widest ? n : widest;
        for (size_t j = 0; j < n; j++) {
            int q = who[j];
            assert_int_equal(results[j], 0);
            const float *want = ref[q] + (size_t)done[q] * V;
            const float *got = bl_ctx_logits(ctx[q]);
            if (exact && memcmp(got, want, V * sizeof(float)) != 0) {
                fprintf(stderr, "seq %d step %u: max |diff| %g\n", q, done[q],
                        (double)max_diff(got, want, V));
                fail();
            }
            float rel = max_diff(got, want, V) / max_abs(want, V);
            worst = rel > worst ? rel : worst;
            if (done[q] == 0) /* the first batched step: same state as alone */
                worst_step = rel > worst_step ? rel : worst_step;
            if (rel > RUN_TOL || (done[q] == 0 && rel > STEP_TOL)) {
                fprintf(stderr, "seq %d step %u: max |diff| / max |logit| = %g\n", q, done[q],
                        (double)rel);
                fail();
            }
            size_t nt;
            bl_ctx_tokens(ctx[q], &nt);
            assert_int_equal(nt, PLAN[q].prompt_len + done[q] + 1);
            if (++done[q] == PLAN[q].steps) { /* leaves the batch */
                bl_ctx_free(ctx[q]);
                ctx[q] = NULL;
            }
        }
    }
    for (int q = 0; q < N_SEQ; q++) {
        assert_int_equal(done[q], PLAN[q].steps);
        free(ref[q]);
    }
    assert_int_equal(widest, 4);
    if (exact)
        printf("  %s [%s] exact: %zu batched steps, logits bit-identical to decoding alone\n",
               strrchr(path, '/') + 1, bl_model_info(m)->isa, n_batches);
    else
        printf("  %s [%s]: %zu batched steps, same tokens; logits within %.2g (first step "
               "%.2g) of max |logit|\n",
               strrchr(path, '/') + 1, bl_model_info(m)->isa, n_batches, (double)worst,
               (double)worst_step);
    bl_model_free(m);
}

static void every_isa(const char *path)
{
    static const bl_isa_t ISAS[] = {BL_ISA_SCALAR, BL_ISA_AVX2, BL_ISA_AVX512};
    static const char *const NAMES[] = {"scalar", "avx2", "avx512"};
    for (size_t i = 0; i < 3; i++) {
        if (!bl_kern_cpu_has(ISAS[i])) {
            printf("  %s [%s]: skipped, not on this CPU\n", strrchr(path, '/') + 1, NAMES[i]);
            continue;
        }
        run_schedule(path, ISAS[i], false);
        run_schedule(path, ISAS[i], true);
    }
}

static void test_schedule_stories(void **state)
{
    (void)state;
    every_isa(g_stories);
}

static void test_schedule_tiny_q8(void **state)
{
    (void)state;
    every_isa(g_tiny_q8);
}

static void test_schedule_tiny_q4(void **state)
{
    (void)state;
    every_isa(g_tiny_q4);
}

static void test_schedule_wide_q4(void **state)
{
    (void)state;
    every_isa(g_wide_q4);
}

/* Per-context outcomes: the ones that cannot run are left as they were, the
 * others run as they would alone. */
static void test_per_context_results(void **state)
{
    (void)state;
    bl_model_t *m = load(g_stories, BL_ISA_AUTO);
    const uint32_t V = bl_model_info(m)->n_vocab;
    bl_token_t p[4] = {1, 40, 50, 60};

    bl_ctx_t *full = ctx_new(m, 4), *ok = ctx_new(m, 16), *pend = ctx_new(m, 16);
    bl_ctx_t *bad = ctx_new(m, 16), *alone = ctx_new(m, 16);
    assert_int_equal(bl_ctx_feed(full, p, 4, NULL), 0);
    assert_int_equal(bl_ctx_feed(ok, p, 3, NULL), 0);
    assert_int_equal(bl_ctx_feed(alone, p, 3, NULL), 0);
    assert_int_equal(bl_ctx_feed(pend, p, 2, NULL), 0);
    assert_int_equal(bl_ctx_feed(bad, p, 2, NULL), 0);
    pend->pending = 7; /* as bl_generate leaves it */
    float *before = malloc(V * sizeof(float));
    assert_non_null(before);
    memcpy(before, bl_ctx_logits(full), V * sizeof(float));

    bl_ctx_t *batch[4] = {full, ok, pend, bad};
    bl_token_t toks[4] = {9, 9, 9, (bl_token_t)V};
    int results[4] = {1, 1, 1, 1};
    assert_int_equal(bl_ctx_feed_batch(batch, toks, 4, results, NULL), 0);
    assert_int_equal(results[0], BL_ECONTEXT);
    assert_int_equal(results[1], 0);
    assert_int_equal(results[2], BL_ESTATE);
    assert_int_equal(results[3], BL_EINVAL);
    size_t n;
    bl_ctx_tokens(full, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(bl_ctx_logits(full), before, V * sizeof(float));
    bl_ctx_tokens(pend, &n);
    assert_int_equal(n, 2);
    assert_int_equal(pend->pending, 7);
    bl_ctx_tokens(bad, &n);
    assert_int_equal(n, 2);
    const bl_token_t *t = bl_ctx_tokens(ok, &n);
    assert_int_equal(n, 4);
    assert_int_equal(t[3], 9);
    assert_int_equal(bl_ctx_feed(alone, &toks[1], 1, NULL), 0);
    assert_memory_equal(bl_ctx_logits(ok), bl_ctx_logits(alone), V * sizeof(float));

    /* whole-call errors */
    bl_ctx_t *dup[2] = {ok, ok};
    assert_int_equal(bl_ctx_feed_batch(dup, toks, 2, results, NULL), BL_EINVAL);
    assert_int_equal(bl_ctx_feed_batch(batch, toks, 2, NULL, NULL), BL_EINVAL);
    assert_int_equal(bl_ctx_feed_batch(NULL, toks, 2, results, NULL), BL_EINVAL);
    assert_int_equal(bl_ctx_feed_batch(batch, toks, 0, results, NULL), 0);
    bl_model_t *m2 = load(g_stories, BL_ISA_AUTO);
    bl_ctx_t *other = ctx_new(m2, 16);
    bl_ctx_t *mixed[2] = {ok, other};
    assert_int_equal(bl_ctx_feed_batch(mixed, toks, 2, results, NULL), BL_EINVAL);
    bl_ctx_tokens(ok, &n);
    assert_int_equal(n, 4);

    /* cancel: nothing runs, nothing changes */
    atomic_bool cancel = true;
    bl_ctx_t *two[2] = {ok, bad};
    memcpy(before, bl_ctx_logits(ok), V * sizeof(float));
    assert_int_equal(bl_ctx_feed_batch(two, toks, 2, results, &cancel), BL_ECANCELED);
    assert_int_equal(results[0], BL_ECANCELED);
    assert_int_equal(results[1], BL_ECANCELED);
    bl_ctx_tokens(ok, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(bl_ctx_logits(ok), before, V * sizeof(float));

    free(before);
    bl_ctx_free(other);
    bl_model_free(m2);
    bl_ctx_free(full);
    bl_ctx_free(ok);
    bl_ctx_free(pend);
    bl_ctx_free(bad);
    bl_ctx_free(alone);
    bl_model_free(m);
}

/* More sequences than any one context's scratch holds: the batch runs in
 * several passes, each sequence still exactly as alone. */
static void test_batch_larger_than_scratch(void **state)
{
    (void)state;
    bl_model_t *m = load(g_tiny_q8, BL_ISA_AUTO);
    const uint32_t V = bl_model_info(m)->n_vocab;
    enum { N = 7 };
    bl_ctx_t *c[N], *ref = ctx_new(m, 3);
    bl_token_t toks[N];
    int results[N];
    for (int i = 0; i < N; i++) {
        c[i] = ctx_new(m, 3); /* scratch for 3 tokens */
        bl_token_t p[2] = {(bl_token_t)(i + 1), (bl_token_t)(i * 7 + 2)};
        assert_int_equal(bl_ctx_feed(c[i], p, 2, NULL), 0);
        toks[i] = (bl_token_t)(100 + i);
    }
    assert_int_equal(bl_ctx_feed_batch(c, toks, N, results, NULL), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i], 0);
        bl_token_t p[3] = {(bl_token_t)(i + 1), (bl_token_t)(i * 7 + 2), toks[i]};
        assert_int_equal(bl_ctx_truncate(ref, 0), 0);
        assert_int_equal(bl_ctx_feed(ref, p, 2, NULL), 0); /* as c[i] was prefilled */
        assert_int_equal(bl_ctx_feed(ref, p + 2, 1, NULL), 0);
        assert_memory_equal(bl_ctx_logits(c[i]), bl_ctx_logits(ref), V * sizeof(float));
    }
    /* now every cache is full */
    assert_int_equal(bl_ctx_feed_batch(c, toks, N, results, NULL), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(results[i], BL_ECONTEXT);
        bl_ctx_free(c[i]);
    }
    bl_ctx_free(ref);
    bl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_stories),
        cmocka_unit_test(test_schedule_tiny_q8),
        cmocka_unit_test(test_schedule_tiny_q4),
        cmocka_unit_test(test_schedule_wide_q4),
        cmocka_unit_test(test_per_context_results),
        cmocka_unit_test(test_batch_larger_than_scratch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
