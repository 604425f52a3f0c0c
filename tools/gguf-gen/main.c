/*
 * gguf-gen: write a `llama`-architecture GGUF model with random weights at
 * any shape, for tests and speed benchmarks without downloads.
 *
 * Weights are deterministic from --seed: each tensor's generator is seeded
 * from the seed and the tensor's name, so one tensor's values do not depend
 * on which others exist. Tensor data is produced at save time, one tensor at
 * a time, so a 1B-parameter file never sits in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"
#include "engine/types.h"
#include "gen.h"

typedef struct {
    const char *name;
    uint32_t n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, ctx;
    float rope_base, rms_eps;
    int tied;
} shape_t;

/* The real models' hyper-parameters; smollm-135m and qwen-0.5b (Qwen2.5-0.5B)
 * tie output.weight to token_embd.weight as the originals do. */
static const shape_t SHAPES[] = {
    {"tiny", 2, 64, 4, 2, 128, 512, 512, 10000.0f, 1e-5f, 0},
    {"smollm-135m", 30, 576, 9, 3, 1536, 49152, 2048, 10000.0f, 1e-5f, 1},
    {"qwen-0.5b", 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, 1},
    {"tinyllama-1.1b", 22, 2048, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f, 0},
};

static const char USAGE[] =
    "usage: gguf-gen --out FILE --shape tiny|smollm-135m|qwen-0.5b|tinyllama-1.1b\n"
    "                [--type F32|F16|BF16|Q8_0|Q4_0] [--vocab-from FILE.gguf] [--seed N]\n"
    "                [--n-layer N --n-embd N --n-head N --n-head-kv N --n-ff N\n"
    "                 --n-vocab N --ctx N] [--tied | --untied] [--name NAME]\n"
    "\n"
    "Writes a llama-architecture GGUF v3 model with random weights (std 0.02,\n"
    "norms near 1.0), deterministic from the seed. Norms stay F32; the matrices\n"
    "and token_embd use --type (default F32). Without --vocab-from a synthetic\n"
    "SentencePiece vocabulary is written; with it, every tokenizer.* key is\n"
    "copied and the vocabulary size follows the file.\n";

/* llama.cpp's LLAMA_FTYPE_* for general.file_type */
static int file_type_of(uint32_t t)
{
    switch (t) {
    case BL_TYPE_F32:
        return 0;
    case BL_TYPE_F16:
        return 1;
    case BL_TYPE_Q4_0:
        return 2;
    case BL_TYPE_Q8_0:
        return 7;
    case BL_TYPE_BF16:
        return 32;
    }
    return -1;
}

/* How a tensor's values are drawn: mean + std * (approximately normal). */
typedef struct {
    uint64_t seed;
    uint32_t type;
    uint64_t ne0, rows;
    float mean, std;
} fill_t;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Irwin-Hall with four 16-bit uniforms from one draw: mean 0, variance 1
 * after scaling, bounded tails; cheap enough for a billion weights. */
static float normalish(uint64_t *s)
{
    uint64_t r = splitmix(s);
    float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) +
                (float)(r >> 48);
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f; /* sqrt(12/4) */
}

static int fill_tensor(void *ctx, void *dst, size_t size)
{
    const fill_t *f = ctx;
    uint64_t row_bytes;
    if (!bl_type_row_bytes(f->type, f->ne0, &row_bytes) || row_bytes * f->rows != size)
        return BL_EINVAL;
    float *row = malloc(f->ne0 * sizeof *row);
    if (!row)
        return BL_ENOMEM;
    uint64_t s = f->seed;
    for (uint64_t r = 0; r < f->rows; r++) {
        for (uint64_t i = 0; i < f->ne0; i++)
            row[i] = f->mean + f->std * normalish(&s);
        bl_kern_quantize_row(f->type, row, (char *)dst + r * row_bytes, f->ne0);
    }
    free(row);
    return 0;
}

typedef struct {
    bl_gguf_writer_t *w;
    fill_t *fills;
    size_t n_fills, cap_fills;
    uint64_t seed;
    uint64_t n_params;
} gen_t;

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = seed ^ 0x5bd1e9955bd1e995ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return splitmix(&h);
}

static int add(gen_t *g, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1, float mean,
               float std)
{
    if (g->n_fills == g->cap_fills)
        return BL_ENOMEM; /* sized up front: fills must not move once registered */
    fill_t *f = &g->fills[g->n_fills++];
    *f = (fill_t){name_seed(g->seed, name), type, ne0, ne1, mean, std};
    uint64_t ne[2] = {ne0, ne1};
    int rc = bl_gguf_w_tensor_fn(g->w, name, type, ne1 > 1 ? 2 : 1, ne, fill_tensor, f);
    if (rc)
        fprintf(stderr, "gguf-gen: cannot add tensor %s [%llu, %llu] of type %s: %s\n", name,
                (unsigned long long)ne0, (unsigned long long)ne1, bl_type_info(type)->name,
                bl_strerror(rc));
    g->n_params += ne0 * ne1;
    return rc;
}

static int parse_u32(const char *flag, const char *v, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v ? v : "", &end, 10);
    if (!v || !*v || *end || errno || x == 0 || x > UINT32_MAX) {
        fprintf(stderr, "gguf-gen: %s needs a positive integer, got '%s'\n", flag, v ? v : "");
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

static int type_by_name(const char *s, uint32_t *out)
{
    static const uint32_t ok[] = {BL_TYPE_F32, BL_TYPE_F16, BL_TYPE_BF16, BL_TYPE_Q8_0,
                                  BL_TYPE_Q4_0};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (s && !strcasecmp(s, bl_type_info(ok[i])->name)) {
            *out = ok[i];
            return 0;
        }
    fprintf(stderr, "gguf-gen: --type must be F32, F16, BF16, Q8_0 or Q4_0, not '%s'\n",
            s ? s : "");
    return -1;
}

static int copy_vocab(bl_gguf_writer_t *w, const char *path, uint32_t *n_vocab)
{
    char err[512];
    bl_gguf_t *v;
    int rc = bl_gguf_open(path, &v, err, sizeof err);
    if (rc) {
        fprintf(stderr, "gguf-gen: %s\n", err);
        return rc;
    }
    const bl_gguf_kv_t *tok;
    if (bl_gguf_get_arr(v, "tokenizer.ggml.tokens", BL_GGUF_STRING, &tok) || !tok->arr_n ||
        tok->arr_n > UINT32_MAX) {
        fprintf(stderr, "gguf-gen: %s has no tokenizer.ggml.tokens string array\n", path);
        bl_gguf_close(v);
        return BL_EFORMAT;
    }
    *n_vocab = (uint32_t)tok->arr_n;
    for (size_t i = 0; i < bl_gguf_n_kv(v) && !rc; i++) {
        const bl_gguf_kv_t *kv = bl_gguf_kv_at(v, i);
        if (kv->key.n > 10 && !memcmp(kv->key.p, "tokenizer.", 10))
            rc = bl_gguf_w_copy_kv(w, v, kv);
    }
    if (rc)
        fprintf(stderr, "gguf-gen: copying the vocabulary of %s: %s\n", path, bl_strerror(rc));
    bl_gguf_close(v);
    return rc;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *vocab_from = NULL, *name = NULL;
    const shape_t *base = NULL;
    shape_t s;
    uint32_t type = BL_TYPE_F32, over[7] = {0}, n_vocab_flag = 0;
    int tied = -1;
    uint64_t seed = 1;
    static const char *const over_flags[7] = {"--n-layer", "--n-embd",  "--n-head", "--n-head-kv",
                                              "--n-ff",    "--n-vocab", "--ctx"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k, used = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            out = v;
        } else if (!strcmp(a, "--shape")) {
            for (size_t j = 0; v && j < sizeof SHAPES / sizeof SHAPES[0]; j++)
                if (!strcmp(v, SHAPES[j].name))
                    base = &SHAPES[j];
            if (!base) {
                fprintf(stderr, "gguf-gen: unknown shape '%s'\n\n%s", v ? v : "", USAGE);
                return 2;
            }
        } else if (!strcmp(a, "--type")) {
            if (type_by_name(v, &type))
                return 2;
        } else if (!strcmp(a, "--vocab-from")) {
            vocab_from = v;
        } else if (!strcmp(a, "--name")) {
            name = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            seed = strtoull(v ? v : "", &end, 0);
            if (!v || !*v || *end) {
                fprintf(stderr, "gguf-gen: --seed needs an integer\n");
                return 2;
            }
        } else if (!strcmp(a, "--tied") || !strcmp(a, "--untied")) {
            tied = !strcmp(a, "--tied");
            used = 0;
        } else {
            for (k = 0; k < 7 && strcmp(a, over_flags[k]); k++)
                ;
            if (k == 7) {
                fprintf(stderr, "gguf-gen: unknown option '%s'\n\n%s", a, USAGE);
                return 2;
            }
            if (parse_u32(a, v, &over[k]))
                return 2;
        }
        if (used && !v) {
            fprintf(stderr, "gguf-gen: %s needs a value\n", a);
            return 2;
        }
        i += used;
    }
    if (!out || !base) {
        fprintf(stderr, "gguf-gen: --out and --shape are required\n\n%s", USAGE);
        return 2;
    }
    s = *base;
    uint32_t *fields[7] = {&s.n_layer, &s.n_embd,  &s.n_head, &s.n_head_kv,
                           &s.n_ff,    &s.n_vocab, &s.ctx};
    for (int k = 0; k < 7; k++)
        if (over[k])
            *fields[k] = over[k];
    n_vocab_flag = over[5];
    if (tied >= 0)
        s.tied = tied;

    bl_gguf_writer_t *w = NULL;
    gen_t g = {0};
    int rc = bl_gguf_writer_new(&w);
    if (rc)
        return 1;
    g.w = w;
    g.seed = seed;
    if (vocab_from) {
        uint32_t nv;
        if ((rc = copy_vocab(w, vocab_from, &nv)))
            goto done;
        if (n_vocab_flag && n_vocab_flag != nv) {
            fprintf(stderr, "gguf-gen: --n-vocab %u disagrees with the %u tokens of %s\n",
                    n_vocab_flag, nv, vocab_from);
            rc = BL_EINVAL;
            goto done;
        }
        s.n_vocab = nv;
    } else if ((rc = gen_write_synthetic_vocab(w, s.n_vocab))) {
        goto done;
    }

    uint32_t head_dim = s.n_embd / s.n_head;
    const bl_type_info_t *ti = bl_type_info(type);
    if (s.n_embd % s.n_head || s.n_head % s.n_head_kv || head_dim % 2) {
        fprintf(stderr,
                "gguf-gen: n_embd %u, n_head %u, n_head_kv %u: n_embd must split into "
                "n_head heads of even size and n_head must be a multiple of n_head_kv\n",
                s.n_embd, s.n_head, s.n_head_kv);
        rc = BL_EINVAL;
        goto done;
    }
    if (s.n_embd % ti->block_elems || s.n_ff % ti->block_elems) {
        fprintf(stderr,
                "gguf-gen: n_embd %u and n_ff %u must be multiples of the %s block "
                "size %u\n",
                s.n_embd, s.n_ff, ti->name, ti->block_elems);
        rc = BL_EINVAL;
        goto done;
    }
    char gname[128];
    snprintf(gname, sizeof gname, "%s", name ? name : s.name);
    bool custom = tied >= 0 && tied != base->tied;
    for (int k = 0; k < 7; k++)
        custom |= over[k] != 0;
    if (!name && custom)
        snprintf(gname, sizeof gname, "%s (custom)", s.name);
    if ((rc = bl_gguf_w_str(w, "general.architecture", "llama")) ||
        (rc = bl_gguf_w_str(w, "general.name", gname)) ||
        (rc = bl_gguf_w_u32(w, "general.alignment", 32)) ||
        (rc = bl_gguf_w_u32(w, "general.file_type", (uint32_t)file_type_of(type))) ||
        (rc = bl_gguf_w_u32(w, "general.quantization_version", 2)) ||
        (rc = bl_gguf_w_u32(w, "llama.context_length", s.ctx)) ||
        (rc = bl_gguf_w_u32(w, "llama.embedding_length", s.n_embd)) ||
        (rc = bl_gguf_w_u32(w, "llama.block_count", s.n_layer)) ||
        (rc = bl_gguf_w_u32(w, "llama.feed_forward_length", s.n_ff)) ||
        (rc = bl_gguf_w_u32(w, "llama.attention.head_count", s.n_head)) ||
        (rc = bl_gguf_w_u32(w, "llama.attention.head_count_kv", s.n_head_kv)) ||
        (rc = bl_gguf_w_u32(w, "llama.rope.dimension_count", head_dim)) ||
        (rc = bl_gguf_w_f32(w, "llama.rope.freq_base", s.rope_base)) ||
        (rc = bl_gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", s.rms_eps)) ||
        (rc = bl_gguf_w_u32(w, "llama.vocab_size", s.n_vocab)))
        goto done;

    g.cap_fills = 3 + (size_t)s.n_layer * 9;
    if (!(g.fills = calloc(g.cap_fills, sizeof *g.fills))) {
        rc = BL_ENOMEM;
        goto done;
    }
    const float std = 0.02f;
    uint32_t kv_dim = s.n_head_kv * head_dim;
    if ((rc = add(&g, "token_embd.weight", type, s.n_embd, s.n_vocab, 0.0f, std)) ||
        (rc = add(&g, "output_norm.weight", BL_TYPE_F32, s.n_embd, 1, 1.0f, 0.01f)))
        goto done;
    if (!s.tied && (rc = add(&g, "output.weight", type, s.n_embd, s.n_vocab, 0.0f, std)))
        goto done;
    for (uint32_t l = 0; l < s.n_layer; l++) {
        char n[64];
#define T(suffix, ty, a, b, mean, sd)                                                              \
    snprintf(n, sizeof n, "blk.%u." suffix, l);                                                    \
    if ((rc = add(&g, n, ty, a, b, mean, sd)))                                                     \
        goto done;
        T("attn_norm.weight", BL_TYPE_F32, s.n_embd, 1, 1.0f, 0.01f)
        T("attn_q.weight", type, s.n_embd, s.n_embd, 0.0f, std)
        T("attn_k.weight", type, s.n_embd, kv_dim, 0.0f, std)
        T("attn_v.weight", type, s.n_embd, kv_dim, 0.0f, std)
        T("attn_output.weight", type, s.n_embd, s.n_embd, 0.0f, std)
        T("ffn_norm.weight", BL_TYPE_F32, s.n_embd, 1, 1.0f, 0.01f)
        T("ffn_gate.weight", type, s.n_embd, s.n_ff, 0.0f, std)
        T("ffn_up.weight", type, s.n_embd, s.n_ff, 0.0f, std)
        T("ffn_down.weight", type, s.n_ff, s.n_embd, 0.0f, std)
#undef T
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[512];
    if ((rc = bl_gguf_writer_save(w, out, err, sizeof err))) {
        fprintf(stderr, "gguf-gen: %s\n", err);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("gguf-gen: wrote %s: %s, %s, %u layers, n_embd %u, vocab %u, %.1fM params "
           "(%.2f s)\n",
           out, gname, ti->name, s.n_layer, s.n_embd, s.n_vocab, (double)g.n_params / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
done:
    bl_gguf_writer_free(w);
    free(g.fills);
    return rc ? 1 : 0;
}
