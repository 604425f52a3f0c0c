/*
 * The forward pass against llama.cpp: for each model and prompt in
 * $BALLAST_SHARED/models/llamacpp-reference.json, on every kernel family the
 * CPU has, the prompt tokens, the top-5 logits after the prompt and the
 * 32-token greedy continuation must match llama.cpp's. Plus the API's edges:
 * context overflow, bad files, stop strings, cancel, seeded sampling.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <ballast/engine.h>

#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"
#include "engine/ops.h"
#include "engine/threadpool.h"

static json_t *g_ref;
static char g_models[512];

static void model_path(char *buf, size_t cap, const char *file)
{
    snprintf(buf, cap, "%s/%s", g_models, file);
}

static int setup(void **state)
{
    (void)state;
    const char *shared = getenv("BALLAST_SHARED");
    if (!shared)
        shared = "../shared";
    snprintf(g_models, sizeof g_models, "%s/models", shared);
    char path[600];
    snprintf(path, sizeof path, "%s/llamacpp-reference.json", g_models);
    json_error_t je;
    g_ref = json_load_file(path, 0, &je);
    if (!g_ref)
        fprintf(stderr, "cannot read %s: %s\n", path, je.text);
    return g_ref ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g_ref);
    return 0;
}

static size_t unhex(const char *hex, char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (char)v;
    }
    return n;
}

static bl_model_t *load(const char *file, bl_isa_t isa, int threads)
{
    char path[700], err[512] = "";
    model_path(path, sizeof path, file);
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    mp.isa = isa;
    mp.n_threads = threads;
    bl_model_t *m = NULL;
    int rc = bl_model_load(path, &mp, &m, err, sizeof err);
    if (rc)
        fprintf(stderr, "load %s: %s\n", path, err);
    assert_int_equal(rc, 0);
    return m;
}

static bl_ctx_t *new_ctx(bl_model_t *m, uint32_t n_ctx)
{
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = n_ctx;
    bl_ctx_t *c = NULL;
    char err[256];
    assert_int_equal(bl_ctx_new(m, &cp, &c, err, sizeof err), 0);
    return c;
}

/* argmax, ties to the lowest id */
static bl_token_t argmax(const float *l, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    return (bl_token_t)best;
}

static void top5(const float *l, uint32_t n, bl_token_t ids[5])
{
    for (int k = 0; k < 5; k++) {
        int32_t best = -1;
        for (uint32_t i = 0; i < n; i++) {
            bool used = false;
            for (int j = 0; j < k; j++)
                used |= ids[j] == (bl_token_t)i;
            if (!used && (best < 0 || l[i] > l[best]))
                best = (int32_t)i;
        }
        ids[k] = best;
    }
}

/* One model, one prompt: tokens, top-5 and the greedy continuation. */
static void check_prompt(bl_model_t *m, json_t *r, const char *what)
{
    const char *prompt = json_string_value(json_object_get(r, "prompt"));
    json_t *jt = json_object_get(r, "tokens");
    bl_token_t toks[256];
    size_t n = 0;
    assert_int_equal(bl_tokenize(m, prompt, strlen(prompt), true, false, toks, 256, &n), 0);
    assert_int_equal(n, json_array_size(jt));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(toks[i], json_integer_value(json_array_get(jt, i)));

    bl_ctx_t *c = new_ctx(m, 512);
    assert_int_equal(bl_ctx_feed(c, toks, n, NULL), 0);
    const float *logits = bl_ctx_logits(c);
    assert_non_null(logits);
    uint32_t nv = bl_model_info(m)->n_vocab;

    bl_token_t ids[5];
    top5(logits, nv, ids);
    json_t *jtop = json_object_get(r, "top5_first");
    for (int k = 0; k < 5; k++) {
        json_t *e = json_array_get(jtop, (size_t)k);
        double want = json_number_value(json_object_get(e, "logit"));
        bl_token_t want_id = (bl_token_t)json_integer_value(json_object_get(e, "id"));
        if (ids[k] != want_id || fabs(logits[ids[k]] - want) > 1e-3 * fabs(want))
            fail_msg("%s '%s': top-5 #%d is %d (%.6f), llama.cpp %d (%.6f)", what, prompt, k,
                     ids[k], (double)logits[ids[k]], want_id, want);
    }

    json_t *jgen = json_object_get(r, "generated");
    json_t *jhex = json_object_get(r, "generated_pieces_hex");
    char want_text[4096], got_text[4096];
    size_t n_want = 0, n_got = 0;
    for (size_t i = 0; i < json_array_size(jhex); i++)
        n_want += unhex(json_string_value(json_array_get(jhex, i)), want_text + n_want,
                        sizeof want_text - n_want);
    size_t ng = 0;
    for (; ng < 32; ng++) {
        bl_token_t t = argmax(bl_ctx_logits(c), nv);
        bl_token_t want = ng < json_array_size(jgen)
                              ? (bl_token_t)json_integer_value(json_array_get(jgen, ng))
                              : -1;
        if (t != want)
            fail_msg("%s '%s': generated token %zu is %d, llama.cpp %d", what, prompt, ng, t, want);
        int pl = bl_token_piece(m, t, false, got_text + n_got, sizeof got_text - n_got);
        assert_true(pl >= 0);
        n_got += (size_t)pl;
        if (bl_token_is_eog(m, t)) {
            ng++;
            break;
        }
        assert_int_equal(bl_ctx_feed(c, &t, 1, NULL), 0);
    }
    assert_int_equal(ng, json_array_size(jgen));
    assert_int_equal(n_got, n_want);
    assert_memory_equal(got_text, want_text, n_want);
    bl_ctx_free(c);
}

static void run_reference(bl_isa_t isa, int threads)
{
    json_t *models = json_object_get(g_ref, "models");
    for (size_t i = 0; i < json_array_size(models); i++) {
        json_t *jm = json_array_get(models, i);
        const char *file = json_string_value(json_object_get(jm, "file"));
        bl_model_t *m = load(file, isa, threads);
        char what[200];
        snprintf(what, sizeof what, "%s [%s, %d threads]", file, bl_model_info(m)->isa, threads);
        json_t *results = json_object_get(jm, "results");
        for (size_t j = 0; j < json_array_size(results); j++)
            check_prompt(m, json_array_get(results, j), what);
        bl_model_free(m);
    }
}

static void test_reference_every_isa(void **state)
{
    (void)state;
    const bl_isa_t isas[] = {BL_ISA_SCALAR, BL_ISA_AVX2, BL_ISA_AVX512};
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (size_t i = 0; i < 3; i++) {
        if (!bl_kern_cpu_has(isas[i])) {
            printf("skipped: this CPU lacks %s\n", names[i]);
            continue;
        }
        run_reference(isas[i], 1);
    }
    bl_kern_init(BL_ISA_AUTO);
}

static void test_reference_threads(void **state)
{
    (void)state;
    run_reference(BL_ISA_AUTO, 3); /* more threads than rows in places */
}

/* ---- API edges ------------------------------------------------------------ */

typedef struct {
    char text[8192];
    size_t n;
    int calls;
    int cancel_after;
    atomic_bool *cancel;
} sink_t;

static int on_text(void *ud, const char *t, size_t len)
{
    sink_t *s = ud;
    assert_true(len > 0);
    assert_true(s->n + len < sizeof s->text);
    memcpy(s->text + s->n, t, len);
    s->n += len;
    s->text[s->n] = '\0';
    if (s->cancel && ++s->calls == s->cancel_after)
        atomic_store(s->cancel, true);
    return 0;
}

static bl_generate_result_t gen(bl_model_t *m, const char *prompt, int max, const char *const *stop,
                                size_t n_stop, sink_t *s, int *rc_out)
{
    bl_ctx_t *c = new_ctx(m, 256);
    bl_generate_params_t gp;
    bl_generate_params_default(&gp);
    gp.sampling.temperature = 0;
    gp.max_tokens = max;
    gp.stop = stop;
    gp.n_stop = n_stop;
    gp.on_text = on_text;
    gp.ud = s;
    gp.cancel = s->cancel;
    bl_generate_result_t res;
    *rc_out = bl_generate(c, prompt, strlen(prompt), &gp, &res);
    bl_ctx_free(c);
    return res;
}

/* The greedy continuation's text, from the reference file. */
static size_t ref_text(const char *file, size_t prompt_idx, char *out, size_t cap)
{
    json_t *models = json_object_get(g_ref, "models");
    for (size_t i = 0; i < json_array_size(models); i++) {
        json_t *jm = json_array_get(models, i);
        if (strcmp(json_string_value(json_object_get(jm, "file")), file))
            continue;
        json_t *r = json_array_get(json_object_get(jm, "results"), prompt_idx);
        json_t *jhex = json_object_get(r, "generated_pieces_hex");
        size_t n = 0;
        for (size_t k = 0; k < json_array_size(jhex); k++)
            n += unhex(json_string_value(json_array_get(jhex, k)), out + n, cap - n);
        out[n] = '\0';
        return n;
    }
    fail_msg("no reference for %s", file);
    return 0;
}

static void test_generate_and_stops(void **state)
{
    (void)state;
    bl_model_t *m = load("stories260K.gguf", BL_ISA_AUTO, 2);
    char want[4096];
    size_t n_want = ref_text("stories260K.gguf", 0, want, sizeof want - 1);
    int rc;

    /* no stop: the whole greedy continuation, via detok and on_text */
    sink_t s = {0};
    bl_generate_result_t res = gen(m, "Once upon a time", 32, NULL, 0, &s, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res.finish, BL_FINISH_LENGTH);
    assert_int_equal(res.n_generated, 32);
    assert_int_equal(res.n_prompt, 5);
    assert_int_equal(s.n, n_want);
    assert_memory_equal(s.text, want, n_want);

    /* a stop string ends generation; the output is what came before it */
    const char *stop1[] = {"zzz", "Lily"};
    sink_t s1 = {0};
    res = gen(m, "Once upon a time", 32, stop1, 2, &s1, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res.finish, BL_FINISH_STOP);
    const char *lily = strstr(want, "Lily");
    assert_non_null(lily);
    assert_int_equal(s1.n, (size_t)(lily - want));
    assert_memory_equal(s1.text, want, s1.n);
    assert_true(res.n_generated < 32);

    /* generation continues a context: 8 + 8 tokens give the 16-token text */
    {
        bl_ctx_t *c = new_ctx(m, 256);
        bl_generate_params_t gp;
        bl_generate_params_default(&gp);
        gp.sampling.temperature = 0;
        gp.max_tokens = 8;
        gp.on_text = on_text;
        sink_t sc = {0};
        gp.ud = &sc;
        const char *p = "Once upon a time";
        assert_int_equal(bl_generate(c, p, strlen(p), &gp, &res), 0);
        assert_int_equal(res.n_generated, 8);
        assert_int_equal(bl_generate(c, "", 0, &gp, &res), 0);
        assert_int_equal(res.n_prompt, 0);
        assert_int_equal(res.n_generated, 8);
        sink_t s16 = {0};
        bl_ctx_free(c);
        gen(m, p, 16, NULL, 0, &s16, &rc);
        assert_int_equal(sc.n, s16.n);
        assert_memory_equal(sc.text, s16.text, s16.n);
        assert_memory_equal(sc.text, want, sc.n);
    }

    /* a stop string that starts to match and then does not: all text comes
     * out (held back text is released), and nothing is lost */
    char partial[64];
    snprintf(partial, sizeof partial, "%.6sXYZ", want + 2);
    const char *stop2[] = {partial};
    sink_t s2 = {0};
    res = gen(m, "Once upon a time", 32, stop2, 1, &s2, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res.finish, BL_FINISH_LENGTH);
    assert_int_equal(s2.n, n_want);
    assert_memory_equal(s2.text, want, n_want);

    /* a stop string spanning several tokens, ending mid-token */
    char span[64];
    snprintf(span, sizeof span, "%.9s", want + 3);
    const char *stop3[] = {span};
    sink_t s3 = {0};
    res = gen(m, "Once upon a time", 32, stop3, 1, &s3, &rc);
    assert_int_equal(res.finish, BL_FINISH_STOP);
    assert_int_equal(s3.n, 3);
    assert_memory_equal(s3.text, want, 3);
    bl_model_free(m);
}

static void test_cancel(void **state)
{
    (void)state;
    bl_model_t *m = load("stories260K.gguf", BL_ISA_AUTO, 2);
    int rc;
    atomic_bool cancel = true;
    sink_t s = {.cancel = &cancel};
    bl_generate_result_t res = gen(m, "Once upon a time", 32, NULL, 0, &s, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res.finish, BL_FINISH_CANCELED);
    assert_int_equal(res.n_generated, 0);
    assert_int_equal(s.n, 0);

    /* canceled from the text callback after three pieces */
    atomic_store(&cancel, false);
    sink_t s2 = {.cancel = &cancel, .cancel_after = 3};
    res = gen(m, "Once upon a time", 32, NULL, 0, &s2, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res.finish, BL_FINISH_CANCELED);
    assert_true(res.n_generated >= 3 && res.n_generated <= 4);
    assert_int_equal(s2.calls, 3);

    /* bl_ctx_feed polls the flag */
    bl_ctx_t *c = new_ctx(m, 64);
    bl_token_t t[3] = {1, 403, 407};
    atomic_store(&cancel, true);
    assert_int_equal(bl_ctx_feed(c, t, 3, &cancel), BL_ECANCELED);
    size_t n;
    bl_ctx_tokens(c, &n);
    assert_int_equal(n, 0);
    bl_ctx_free(c);
    bl_model_free(m);
}

static void test_context_too_small(void **state)
{
    (void)state;
    bl_model_t *m = load("stories260K.gguf", BL_ISA_AUTO, 1);
    bl_ctx_t *c = new_ctx(m, 4);
    assert_int_equal(bl_ctx_size(c), 4);
    bl_token_t t[5] = {1, 403, 407, 261, 378};
    assert_int_equal(bl_ctx_feed(c, t, 5, NULL), BL_ECONTEXT);
    assert_int_equal(bl_ctx_feed(c, t, 4, NULL), 0);
    assert_int_equal(bl_ctx_feed(c, t, 1, NULL), BL_ECONTEXT);
    bl_ctx_free(c);

    /* an id outside the vocabulary is refused before anything is fed */
    c = new_ctx(m, 16);
    bl_token_t bad[3] = {1, 403, 512};
    assert_int_equal(bl_ctx_feed(c, bad, 3, NULL), BL_EINVAL);
    bad[2] = -1;
    assert_int_equal(bl_ctx_feed(c, bad, 3, NULL), BL_EINVAL);
    size_t n_in;
    bl_ctx_tokens(c, &n_in);
    assert_int_equal(n_in, 0);
    bl_ctx_free(c);

    c = new_ctx(m, 4);
    bl_generate_params_t gp;
    bl_generate_params_default(&gp);
    bl_generate_result_t res;
    const char *p = "Once upon a time";
    assert_int_equal(bl_generate(c, p, strlen(p), &gp, &res), BL_ECONTEXT);
    assert_int_equal(res.finish, BL_FINISH_ERROR);

    /* until the context is full: max_tokens < 0 stops at n_ctx */
    bl_ctx_free(c);
    c = new_ctx(m, 12);
    gp.sampling.temperature = 0;
    assert_int_equal(bl_generate(c, p, strlen(p), &gp, &res), 0);
    assert_int_equal(res.finish, BL_FINISH_LENGTH);
    assert_int_equal(res.n_prompt + res.n_generated, 13); /* the last is sampled, not fed */
    bl_ctx_free(c);
    bl_model_free(m);
}

static void test_truncate_reuses_prefix(void **state)
{
    (void)state;
    bl_model_t *m = load("stories260K.gguf", BL_ISA_AUTO, 2);
    uint32_t nv = bl_model_info(m)->n_vocab;
    bl_token_t t[5] = {1, 403, 407, 261, 378};
    bl_ctx_t *a = new_ctx(m, 64), *b = new_ctx(m, 64);
    assert_int_equal(bl_ctx_feed(a, t, 5, NULL), 0);
    float *want = malloc(nv * sizeof *want);
    memcpy(want, bl_ctx_logits(a), nv * sizeof *want);
    bl_token_t other[3] = {300, 301, 302};
    assert_int_equal(bl_ctx_feed(a, other, 3, NULL), 0);
    assert_int_equal(bl_ctx_truncate(a, 3), 0);
    assert_null(bl_ctx_logits(a));
    assert_int_equal(bl_ctx_truncate(a, 9), BL_ERANGE);
    assert_int_equal(bl_ctx_feed(a, t + 3, 2, NULL), 0);
    assert_memory_equal(bl_ctx_logits(a), want, nv * sizeof *want);
    /* one token at a time gives the same logits as a batch */
    for (int i = 0; i < 5; i++)
        assert_int_equal(bl_ctx_feed(b, t + i, 1, NULL), 0);
    for (uint32_t i = 0; i < nv; i++)
        assert_true(fabsf(bl_ctx_logits(b)[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])));
    free(want);
    bl_ctx_free(a);
    bl_ctx_free(b);

    /* a prompt longer than one batch (chunks of 256) gives the logits of
     * feeding it token by token, up to rounding: like llama.cpp, batches of
     * 64+ tokens use the tiled attention with an F32 accumulator, decode
     * rounds its accumulator to F16 */
    enum { LONG = 300 };
    bl_token_t lt[LONG];
    for (int i = 0; i < LONG; i++)
        lt[i] = i == 0 ? 1 : (bl_token_t)(3 + (i * 37) % 500);
    a = new_ctx(m, 512);
    b = new_ctx(m, 512);
    assert_int_equal(bl_ctx_feed(a, lt, LONG, NULL), 0);
    for (int i = 0; i < LONG; i++)
        assert_int_equal(bl_ctx_feed(b, lt + i, 1, NULL), 0);
    size_t na, nb;
    bl_ctx_tokens(a, &na);
    bl_ctx_tokens(b, &nb);
    assert_int_equal(na, LONG);
    assert_int_equal(nb, LONG);
    for (uint32_t i = 0; i < nv; i++) {
        float x = bl_ctx_logits(a)[i], y = bl_ctx_logits(b)[i];
        if (fabsf(x - y) > 2e-2f * (1 + fabsf(y)))
            fail_msg("logit %u: batch %f, one by one %f", i, (double)x, (double)y);
    }
    bl_ctx_free(a);
    bl_ctx_free(b);

    /* batches that all take the tiled kernel agree tightly however the
     * prompt is split */
    a = new_ctx(m, 512);
    b = new_ctx(m, 512);
    assert_int_equal(bl_ctx_feed(a, lt, 200, NULL), 0);
    assert_int_equal(bl_ctx_feed(b, lt, 100, NULL), 0);
    assert_int_equal(bl_ctx_feed(b, lt + 100, 100, NULL), 0);
    for (uint32_t i = 0; i < nv; i++) {
        float x = bl_ctx_logits(a)[i], y = bl_ctx_logits(b)[i];
        if (fabsf(x - y) > 1e-4f * (1 + fabsf(y)))
            fail_msg("logit %u: one batch %f, two batches %f", i, (double)x, (double)y);
    }
    bl_ctx_free(a);
    bl_ctx_free(b);
    bl_model_free(m);
}

static void test_seeded_sampling(void **state)
{
    (void)state;
    bl_model_t *m = load("stories260K.gguf", BL_ISA_AUTO, 2);
    char out[2][8192];
    for (int i = 0; i < 2; i++) {
        bl_ctx_t *c = new_ctx(m, 128);
        bl_generate_params_t gp;
        bl_generate_params_default(&gp);
        gp.sampling.temperature = 0.8f;
        gp.sampling.seed = 1234;
        gp.max_tokens = 40;
        sink_t s = {0};
        gp.on_text = on_text;
        gp.ud = &s;
        bl_generate_result_t res;
        const char *p = "Once upon a time";
        assert_int_equal(bl_generate(c, p, strlen(p), &gp, &res), 0);
        assert_true(s.n > 0);
        memcpy(out[i], s.text, s.n + 1);
        bl_ctx_free(c);
    }
    assert_string_equal(out[0], out[1]);
    bl_model_free(m);
}

/* The SIMD attention agrees with the reference one (they differ only in
 * fused multiply-adds and summation order). */
static void test_attention_simd_matches_scalar(void **state)
{
    (void)state;
    if (!bl_kern_cpu_has(BL_ISA_AVX2)) {
        printf("skipped: this CPU lacks avx2\n");
        return;
    }
    enum { HD = 64, STRIDE = 3 * HD, NKV = 300 };
    static uint16_t k[NKV * STRIDE], v[NKV * STRIDE];
    float q[HD], a[HD], b[HD];
    uint32_t x = 1;
    for (size_t i = 0; i < NKV * STRIDE; i++) {
        x = x * 1664525u + 1013904223u;
        k[i] = bl_f32_to_fp16(((float)(x >> 8) / 16777216.0f - 0.5f) * 4.0f);
        x = x * 1664525u + 1013904223u;
        v[i] = bl_f32_to_fp16(((float)(x >> 8) / 16777216.0f - 0.5f) * 2.0f);
    }
    for (int i = 0; i < HD; i++)
        q[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    for (uint32_t n_kv = 1; n_kv <= NKV; n_kv += 37) {
        bl_op_attend(a, q, k + HD, v + HD, STRIDE, HD, n_kv, 0.125f);
        bl_op_attend_avx2(b, q, k + HD, v + HD, STRIDE, HD, n_kv, 0.125f);
        for (int i = 0; i < HD; i++)
            if (fabsf(a[i] - b[i]) > 2e-3f * (1.0f + fabsf(a[i])))
                fail_msg("n_kv %u dim %d: scalar %f, avx2 %f", n_kv, i, (double)a[i], (double)b[i]);
    }
    /* the tiled variants: SIMD and scalar agree, and both are close to the
     * F16-accumulator kernel */
    for (uint32_t n_kv = 1; n_kv <= NKV; n_kv += 37) {
        float c[HD];
        bl_op_attend_tiled(a, q, k + HD, v + HD, STRIDE, HD, n_kv, 0.125f);
        bl_op_attend_tiled_avx2(b, q, k + HD, v + HD, STRIDE, HD, n_kv, 0.125f);
        bl_op_attend(c, q, k + HD, v + HD, STRIDE, HD, n_kv, 0.125f);
        for (int i = 0; i < HD; i++) {
            if (fabsf(a[i] - b[i]) > 1e-5f * (1.0f + fabsf(a[i])))
                fail_msg("tiled n_kv %u dim %d: scalar %f, avx2 %f", n_kv, i, (double)a[i],
                         (double)b[i]);
            if (fabsf(a[i] - c[i]) > 5e-3f * (1.0f + fabsf(a[i])))
                fail_msg("n_kv %u dim %d: tiled %f, f16 accumulator %f", n_kv, i, (double)a[i],
                         (double)c[i]);
        }
    }
    /* one position: the output is that position's value, at F16 precision */
    bl_op_attend_avx2(b, q, k, v, STRIDE, HD, 1, 0.125f);
    for (int i = 0; i < HD; i++)
        assert_true(b[i] == bl_fp16_to_f32(v[i]));
}

/* Every item of every loop runs exactly once, whatever the thread count and
 * grain, including more threads than cores and loops smaller than the pool. */
typedef struct {
    atomic_int *hits;
} pool_arg_t;

static void pool_mark(void *arg, size_t i0, size_t i1)
{
    pool_arg_t *a = arg;
    if (i0 >= i1) /* empty ranges are a bug; count them where the check sees */
        atomic_fetch_add(&a->hits[0], 1000);
    for (size_t i = i0; i < i1; i++)
        atomic_fetch_add(&a->hits[i], 1);
}

static void test_threadpool(void **state)
{
    (void)state;
    static atomic_int hits[1000];
    const int sizes[] = {1, 3, 8};
    for (size_t k = 0; k < 3; k++) {
        bl_pool_t *p = NULL;
        assert_int_equal(bl_pool_new(sizes[k], &p), 0);
        assert_int_equal(bl_pool_size(p), sizes[k]);
        for (int loop = 0; loop < 300; loop++) {
            size_t n = (size_t)(loop * 7919) % 1000 + 1, grain = (size_t)loop % 5;
            for (size_t i = 0; i < n; i++)
                atomic_store(&hits[i], 0);
            pool_arg_t a = {hits};
            bl_pool_for(p, n, grain, pool_mark, &a);
            for (size_t i = 0; i < n; i++)
                if (atomic_load(&hits[i]) != 1)
                    fail_msg("pool %d, loop %d: item %zu ran %d times", sizes[k], loop, i,
                             atomic_load(&hits[i]));
        }
        bl_pool_free(p);
    }
}

/* ---- bad files ------------------------------------------------------------- */

/* Copy stories260K.gguf with the architecture renamed, one u32 key changed
 * (set_key = value) or one tensor dropped. */
static void write_variant_kv(const char *dst, const char *arch, const char *drop_tensor,
                             const char *set_key, uint32_t value)
{
    char src[700], err[512];
    model_path(src, sizeof src, "stories260K.gguf");
    bl_gguf_t *g = NULL;
    assert_int_equal(bl_gguf_open(src, &g, err, sizeof err), 0);
    bl_gguf_writer_t *w = NULL;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    for (size_t i = 0; i < bl_gguf_n_kv(g); i++) {
        const bl_gguf_kv_t *kv = bl_gguf_kv_at(g, i);
        if (kv->key.n == 20 && !memcmp(kv->key.p, "general.architecture", 20))
            assert_int_equal(bl_gguf_w_str(w, "general.architecture", arch), 0);
        else if (set_key && kv->key.n == strlen(set_key) && !memcmp(kv->key.p, set_key, kv->key.n))
            assert_int_equal(bl_gguf_w_u32(w, set_key, value), 0);
        else
            assert_int_equal(bl_gguf_w_copy_kv(w, g, kv), 0);
    }
    for (size_t i = 0; i < bl_gguf_n_tensors(g); i++) {
        const bl_gguf_tensor_t *t = bl_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.p);
        if (drop_tensor && !strcmp(name, drop_tensor))
            continue;
        assert_int_equal(
            bl_gguf_w_tensor(w, name, t->type, t->n_dims, t->ne, t->data, (size_t)t->size), 0);
    }
    assert_int_equal(bl_gguf_writer_save(w, dst, err, sizeof err), 0);
    bl_gguf_writer_free(w);
    bl_gguf_close(g);
}

static void write_variant(const char *dst, const char *arch, const char *drop_tensor)
{
    write_variant_kv(dst, arch, drop_tensor, NULL, 0);
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[64], err[512];
    snprintf(path, sizeof path, "/tmp/bl-test-forward-%d.gguf", (int)getpid());
    bl_model_t *m = NULL;

    write_variant(path, "xyz", NULL);
    assert_int_equal(bl_model_load(path, NULL, &m, err, sizeof err), BL_EUNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(err, "unsupported architecture 'xyz'"));

    write_variant(path, "llama", "blk.2.ffn_up.weight");
    assert_true(bl_model_load(path, NULL, &m, err, sizeof err) < 0);
    assert_null(m);
    assert_non_null(strstr(err, "'blk.2.ffn_up.weight'"));

    /* hyper-parameters that disagree with the tensors: the error names the
     * first tensor whose shape is wrong, and what was expected */
    write_variant_kv(path, "llama", NULL, "llama.attention.head_count_kv", 8);
    assert_true(bl_model_load(path, NULL, &m, err, sizeof err) < 0);
    assert_null(m);
    assert_non_null(strstr(err, "'blk.0.attn_k.weight' has shape [64, 32], expected [64, 64]"));
    write_variant_kv(path, "llama", NULL, "llama.feed_forward_length", 100);
    assert_true(bl_model_load(path, NULL, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "'blk.0.ffn_gate.weight'"));
    write_variant_kv(path, "llama", NULL, "llama.attention.head_count_kv", 3);
    assert_true(bl_model_load(path, NULL, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "not a multiple"));

    /* the unchanged copy loads, so the checks above are about the change */
    write_variant(path, "llama", NULL);
    assert_int_equal(bl_model_load(path, NULL, &m, err, sizeof err), 0);
    assert_int_equal(bl_model_info(m)->n_layer, 5);
    assert_int_equal(bl_model_info(m)->n_head_kv, 4);
    bl_model_free(m);
    unlink(path);

    m = NULL;
    assert_true(bl_model_load("/nonexistent/model.gguf", NULL, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "/nonexistent/model.gguf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_every_isa),
        cmocka_unit_test(test_reference_threads),
        cmocka_unit_test(test_generate_and_stops),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_context_too_small),
        cmocka_unit_test(test_truncate_reuses_prefix),
        cmocka_unit_test(test_seeded_sampling),
        cmocka_unit_test(test_attention_simd_matches_scalar),
        cmocka_unit_test(test_threadpool),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
