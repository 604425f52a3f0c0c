/*
 * The architectures beside llama (qwen2, qwen3, phi3) through the public
 * API, on small F32 models this test writes: RoPE's two pair layouts, fused
 * q/k/v weights giving exactly what the split ones give, optional pieces
 * (biases, LongRoPE factors) changing what they should and nothing else,
 * and the loader's errors naming the tensor or key at fault. Agreement with
 * llama.cpp itself is tests/integration/test_llamacpp_arch.py.
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

#include <ballast/engine.h>

#include "engine/gguf/gguf.h"
#include "engine/ops.h"
#include "engine/types.h"

/* ---- RoPE ----------------------------------------------------------------- */

/* Both layouts rotate pair i by pos * base^(-2i/n_rot): normal pairs are
 * (2i, 2i+1), NEOX pairs (i, i + n_rot/2); dims past n_rot are left alone;
 * mscale multiplies cos and sin. */
static void test_rope_layouts(void **state)
{
    (void)state;
    enum { HD = 8, NROT = 6 };
    const float base = 100.0f;
    const uint32_t pos = 3;
    for (int neox = 0; neox < 2; neox++) {
        for (int k = 0; k < 2; k++) {
            const float mscale = k ? 1.5f : 1.0f;
            float x[2 * HD], want[2 * HD];
            for (int i = 0; i < 2 * HD; i++)
                x[i] = want[i] = 0.25f * (float)(i + 1) - 1.0f;
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < NROT / 2; i++) {
                    int a = neox ? i : 2 * i, b = neox ? i + NROT / 2 : 2 * i + 1;
                    double th = pos * pow(base, -2.0 * i / NROT);
                    double x0 = want[h * HD + a], x1 = want[h * HD + b];
                    double c = cos(th) * mscale, s = sin(th) * mscale;
                    want[h * HD + a] = (float)(x0 * c - x1 * s);
                    want[h * HD + b] = (float)(x0 * s + x1 * c);
                }
            }
            bl_rope_t r = {
                .n_rot = NROT, .neox = neox, .base = base, .freq_scale = 1.0f, .mscale = mscale};
            bl_op_rope(x, 2, HD, pos, &r);
            for (int i = 0; i < 2 * HD; i++)
                if (fabsf(x[i] - want[i]) > 1e-5f)
                    fail_msg("%s mscale %g dim %d: %f, want %f", neox ? "neox" : "normal",
                             (double)mscale, i, (double)x[i], (double)want[i]);
        }
    }
    /* freq factors divide the angle: factor 2 at pos 6 is factor 1 at pos 3 */
    float a[HD], b[HD];
    const float ff[NROT / 2] = {2.0f, 2.0f, 2.0f};
    for (int i = 0; i < HD; i++)
        a[i] = b[i] = (float)i - 3.0f;
    bl_rope_t r = {.n_rot = NROT, .neox = true, .base = base, .freq_scale = 1.0f, .mscale = 1.0f};
    bl_op_rope(a, 1, HD, 3, &r);
    r.freq_factors = ff;
    bl_op_rope(b, 1, HD, 6, &r);
    for (int i = 0; i < HD; i++)
        assert_true(fabsf(a[i] - b[i]) < 1e-5f);
}

/* ---- small models ------------------------------------------------------------ */

enum { E = 64, NH = 4, NKV = 2, FF = 128, NV = 512 };

/* What a test model has; unset fields mean the family's usual layout. */
typedef struct {
    const char *arch;
    uint32_t head_dim;   /* 0: E / NH, written as key_length when set */
    bool fused_qkv;      /* attn_qkv instead of attn_q/k/v */
    bool biases;         /* attn_q/k/v.bias */
    bool zero_biases;    /* ... all zero */
    bool qk_norm;        /* attn_q_norm / attn_k_norm */
    bool fused_ffn_up;   /* phi3's ffn_up of 2 * FF rows, no ffn_gate */
    bool rope_factors;   /* phi3's rope_factors_long / _short, orig ctx 256 */
    bool unit_short;     /* ... with every short factor 1.0 */
    const char *drop;    /* a tensor to leave out */
    const char *bad_key; /* a u32 key to write as 3 */
} spec_t;

static char g_dir[256];

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

/* Add an F32 tensor [ne0, ne1] drawn from a seed that depends on its name
 * (so split and fused files share values), or the given constant. */
static void tensor(bl_gguf_writer_t *w, const spec_t *sp, const char *name, uint64_t ne0,
                   uint64_t ne1, float mean, float amp)
{
    if (sp->drop && !strcmp(sp->drop, name))
        return;
    float *d = malloc(ne0 * ne1 * sizeof *d);
    assert_non_null(d);
    uint64_t s = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        s = (s ^ (uint8_t)*p) * 1099511628211ull;
    for (uint64_t i = 0; i < ne0 * ne1; i++)
        d[i] = mean + amp * frand(&s);
    uint64_t ne[2] = {ne0, ne1};
    assert_int_equal(
        bl_gguf_w_tensor(w, name, BL_TYPE_F32, ne1 > 1 ? 2 : 1, ne, d, ne0 * ne1 * sizeof *d), 0);
    free(d);
}

/* rows [r0, r0 + n) of the tensor `name` of ne0 columns, as tensor() draws it */
static void rows_of(const char *name, uint64_t ne0, uint64_t r0, uint64_t n, float amp, float *out)
{
    uint64_t s = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        s = (s ^ (uint8_t)*p) * 1099511628211ull;
    for (uint64_t i = 0; i < (r0 + n) * ne0; i++) {
        float v = amp * frand(&s);
        if (i >= r0 * ne0)
            out[i - r0 * ne0] = v;
    }
}

static void write_model(const char *path, const spec_t *sp)
{
    char src[512], err[512], k[128], n[96];
    const char *shared = getenv("BALLAST_SHARED");
    snprintf(src, sizeof src, "%s/models/stories260K.gguf", shared ? shared : "../shared");
    bl_gguf_t *vocab = NULL;
    assert_int_equal(bl_gguf_open(src, &vocab, err, sizeof err), 0);
    bl_gguf_writer_t *w = NULL;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    for (size_t i = 0; i < bl_gguf_n_kv(vocab); i++) {
        const bl_gguf_kv_t *kv = bl_gguf_kv_at(vocab, i);
        if (kv->key.n > 10 && !memcmp(kv->key.p, "tokenizer.", 10))
            assert_int_equal(bl_gguf_w_copy_kv(w, vocab, kv), 0);
    }
    const char *a = sp->arch;
    const uint32_t hd = sp->head_dim ? sp->head_dim : E / NH;
    const uint64_t QD = (uint64_t)NH * hd, KD = (uint64_t)NKV * hd;
#define U32(key, v)                                                                                \
    do {                                                                                           \
        snprintf(k, sizeof k, "%s." key, a);                                                       \
        uint32_t v_ = sp->bad_key && !strcmp(sp->bad_key, key) ? 3 : (v);                          \
        assert_int_equal(bl_gguf_w_u32(w, k, v_), 0);                                              \
    } while (0)
    assert_int_equal(bl_gguf_w_str(w, "general.architecture", a), 0);
    U32("context_length", 4096);
    U32("embedding_length", E);
    U32("block_count", 1);
    U32("feed_forward_length", FF);
    U32("attention.head_count", NH);
    U32("attention.head_count_kv", NKV);
    if (sp->head_dim) {
        U32("attention.key_length", hd);
        U32("attention.value_length", hd);
    }
    if (sp->rope_factors) {
        U32("rope.scaling.original_context_length", 256);
        snprintf(k, sizeof k, "%s.rope.scaling.attn_factor", a);
        assert_int_equal(bl_gguf_w_f32(w, k, 1.2f), 0);
    }
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", a);
    assert_int_equal(bl_gguf_w_f32(w, k, 1e-6f), 0);
#undef U32

    const float amp = 0.8f; /* large q/k: peaked attention, so RoPE matters */
    tensor(w, sp, "token_embd.weight", E, NV, 0.0f, 0.1f);
    tensor(w, sp, "output_norm.weight", E, 1, 1.0f, 0.1f);
    tensor(w, sp, "output.weight", E, NV, 0.0f, 0.1f);
    if (sp->rope_factors) {
        tensor(w, sp, "rope_factors_long.weight", hd / 2, 1, 4.0f, 2.0f);
        tensor(w, sp, "rope_factors_short.weight", hd / 2, 1, 1.0f, sp->unit_short ? 0.0f : 0.4f);
    }
    tensor(w, sp, "blk.0.attn_norm.weight", E, 1, 1.0f, 0.1f);
    if (sp->fused_qkv) {
        /* the rows the split file draws for q, k and v, stacked */
        float *d = malloc((QD + 2 * KD) * E * sizeof *d);
        assert_non_null(d);
        rows_of("blk.0.attn_q.weight", E, 0, QD, amp, d);
        rows_of("blk.0.attn_k.weight", E, 0, KD, amp, d + QD * E);
        rows_of("blk.0.attn_v.weight", E, 0, KD, 0.3f, d + (QD + KD) * E);
        uint64_t ne[2] = {E, QD + 2 * KD};
        if (!sp->drop || strcmp(sp->drop, "blk.0.attn_qkv.weight"))
            assert_int_equal(bl_gguf_w_tensor(w, "blk.0.attn_qkv.weight", BL_TYPE_F32, 2, ne, d,
                                              (QD + 2 * KD) * E * sizeof *d),
                             0);
        free(d);
    } else {
        tensor(w, sp, "blk.0.attn_q.weight", E, QD, 0.0f, amp);
        tensor(w, sp, "blk.0.attn_k.weight", E, KD, 0.0f, amp);
        tensor(w, sp, "blk.0.attn_v.weight", E, KD, 0.0f, 0.3f);
    }
    if (sp->biases) {
        float z = sp->zero_biases ? 0.0f : 1.0f;
        tensor(w, sp, "blk.0.attn_q.bias", QD, 1, 0.0f, z);
        tensor(w, sp, "blk.0.attn_k.bias", KD, 1, 0.0f, z);
        tensor(w, sp, "blk.0.attn_v.bias", KD, 1, 0.0f, z);
    }
    if (sp->qk_norm) {
        tensor(w, sp, "blk.0.attn_q_norm.weight", hd, 1, 1.0f, 0.5f);
        tensor(w, sp, "blk.0.attn_k_norm.weight", hd, 1, 1.0f, 0.5f);
    }
    tensor(w, sp, "blk.0.attn_output.weight", QD, E, 0.0f, 0.3f);
    tensor(w, sp, "blk.0.ffn_norm.weight", E, 1, 1.0f, 0.1f);
    if (sp->fused_ffn_up) {
        tensor(w, sp, "blk.0.ffn_up.weight", E, 2 * FF, 0.0f, 0.3f);
    } else {
        tensor(w, sp, "blk.0.ffn_gate.weight", E, FF, 0.0f, 0.3f);
        tensor(w, sp, "blk.0.ffn_up.weight", E, FF, 0.0f, 0.3f);
    }
    snprintf(n, sizeof n, "blk.0.ffn_down.weight");
    tensor(w, sp, n, FF, E, 0.0f, 0.3f);
    assert_int_equal(bl_gguf_writer_save(w, path, err, sizeof err), 0);
    bl_gguf_writer_free(w);
    bl_gguf_close(vocab);
}

static int load_spec(const spec_t *sp, bl_model_t **m, char *err, size_t errlen)
{
    char path[400];
    snprintf(path, sizeof path, "%s/arch-%d.gguf", g_dir, (int)getpid());
    write_model(path, sp);
    bl_model_params_t mp;
    bl_model_params_default(&mp);
    mp.n_threads = 2;
    *m = NULL;
    int rc = bl_model_load(path, &mp, m, err, errlen);
    unlink(path);
    return rc;
}

/* Logits after a fixed 12-token prompt in a context of n_ctx. */
static float *logits_of(const spec_t *sp, uint32_t n_ctx)
{
    bl_model_t *m;
    char err[512];
    int rc = load_spec(sp, &m, err, sizeof err);
    if (rc)
        fail_msg("%s: %s", sp->arch, err);
    bl_ctx_params_t cp;
    bl_ctx_params_default(&cp);
    cp.n_ctx = n_ctx;
    bl_ctx_t *c = NULL;
    assert_int_equal(bl_ctx_new(m, &cp, &c, err, sizeof err), 0);
    const bl_token_t prompt[12] = {1, 300, 17, 450, 299, 12, 88, 401, 7, 260, 333, 45};
    assert_int_equal(bl_ctx_feed(c, prompt, 12, NULL), 0);
    float *out = malloc(NV * sizeof *out);
    assert_non_null(out);
    memcpy(out, bl_ctx_logits(c), NV * sizeof *out);
    bl_ctx_free(c);
    bl_model_free(m);
    return out;
}

static double max_diff(const float *a, const float *b)
{
    double d = 0;
    for (int i = 0; i < NV; i++)
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* A fused attn_qkv is bound as three row ranges: the same numbers as three
 * tensors, to the bit (each output row is the same dot product). */
static void test_fused_qkv_equals_split(void **state)
{
    (void)state;
    const char *archs[] = {"llama", "qwen2", "qwen3"};
    for (size_t i = 0; i < 3; i++) {
        spec_t split = {.arch = archs[i], .qk_norm = i == 2}, fused = split;
        fused.fused_qkv = true;
        float *a = logits_of(&split, 64), *b = logits_of(&fused, 64);
        assert_memory_equal(a, b, NV * sizeof *a);
        free(a);
        free(b);
    }
}

/* Each optional piece changes the logits, and only through what it holds:
 * zero biases are no biases; the two RoPE layouts differ. */
static void test_optional_pieces(void **state)
{
    (void)state;
    spec_t plain = {.arch = "qwen2"}, zero = {.arch = "qwen2", .biases = true, .zero_biases = true};
    spec_t bias = {.arch = "qwen2", .biases = true}, llama = {.arch = "llama"};
    float *p = logits_of(&plain, 64), *z = logits_of(&zero, 64), *b = logits_of(&bias, 64);
    float *l = logits_of(&llama, 64);
    assert_memory_equal(p, z, NV * sizeof *p);
    assert_true(max_diff(p, b) > 1e-2);
    /* llama and qwen2 differ only in RoPE pairs on this file */
    assert_true(max_diff(p, l) > 1e-2);
    free(p);
    free(z);
    free(b);
    free(l);

    /* qwen3's q/k norms take part (a head size other than E / NH too) */
    spec_t q3 = {.arch = "qwen3", .qk_norm = true, .head_dim = 32};
    float *n = logits_of(&q3, 64);
    for (int i = 0; i < NV; i++)
        assert_true(isfinite(n[i]));
    free(n);
}

/* phi3's LongRoPE: short factors for contexts up to the original length,
 * long ones beyond it, as llama.cpp picks; unit short factors are no
 * factors at all. */
static void test_phi3_rope_factors(void **state)
{
    (void)state;
    spec_t plain = {.arch = "phi3", .fused_qkv = true, .fused_ffn_up = true};
    spec_t unit = plain, lr = plain;
    unit.rope_factors = unit.unit_short = true;
    lr.rope_factors = true;
    float *p = logits_of(&plain, 256), *u = logits_of(&unit, 256);
    float *s = logits_of(&lr, 256), *l = logits_of(&lr, 257);
    /* unit factors leave the angles; the file's attn_factor 1.2 still
     * scales cos and sin, as llama.cpp applies it for any context */
    assert_true(max_diff(p, u) > 1e-3);
    assert_true(max_diff(u, s) > 1e-3);
    assert_true(max_diff(s, l) > 1e-3);
    float *s2 = logits_of(&lr, 100);
    assert_memory_equal(s, s2, NV * sizeof *s); /* any context <= 256: short */
    free(p);
    free(u);
    free(s);
    free(l);
    free(s2);
}

static void expect_error(const spec_t *sp, const char *want)
{
    bl_model_t *m;
    char err[512] = "";
    int rc = load_spec(sp, &m, err, sizeof err);
    if (rc == 0 || !strstr(err, want))
        fail_msg("%s: rc %d, error '%s', want '%s'", sp->arch, rc, err, want);
    assert_null(m);
}

static void test_loader_errors(void **state)
{
    (void)state;
    spec_t q3 = {.arch = "qwen3", .qk_norm = true, .drop = "blk.0.attn_k_norm.weight"};
    expect_error(&q3, "missing tensor 'blk.0.attn_k_norm.weight'");
    /* the q/k norms are sized by key_length, not n_embd / n_head */
    spec_t hd = {
        .arch = "qwen3", .qk_norm = true, .head_dim = 32, .bad_key = "attention.key_length"};
    expect_error(&hd, "head size 3 (key) / 32 (value) is not supported");
    /* phi3's ffn_up holds gate and up: n_ff rows is not enough */
    spec_t up = {.arch = "phi3", .fused_qkv = true};
    expect_error(&up, "'blk.0.ffn_up.weight' has shape [64, 128], expected [64, 256]");
    /* neither fused nor split q/k/v */
    spec_t none = {
        .arch = "phi3", .fused_qkv = true, .fused_ffn_up = true, .drop = "blk.0.attn_qkv.weight"};
    expect_error(&none, "missing tensor 'blk.0.attn_q.weight'");
    spec_t llama = {.arch = "llama", .drop = "blk.0.ffn_gate.weight"};
    expect_error(&llama, "missing tensor 'blk.0.ffn_gate.weight'");
    /* each family loads with what it should have */
    const spec_t ok[] = {
        {.arch = "llama"},
        {.arch = "qwen2", .biases = true},
        {.arch = "qwen3", .qk_norm = true, .head_dim = 32},
        {.arch = "phi3", .fused_qkv = true, .fused_ffn_up = true, .rope_factors = true},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bl_model_t *m;
        char err[512];
        if (load_spec(&ok[i], &m, err, sizeof err))
            fail_msg("%s: %s", ok[i].arch, err);
        assert_string_equal(bl_model_info(m)->arch, ok[i].arch);
        bl_model_free(m);
    }
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s", tmp && *tmp ? tmp : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rope_layouts),    cmocka_unit_test(test_fused_qkv_equals_split),
        cmocka_unit_test(test_optional_pieces), cmocka_unit_test(test_phi3_rope_factors),
        cmocka_unit_test(test_loader_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
