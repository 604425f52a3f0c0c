/*
 * gguf-gen: write a GGUF model of the llama, qwen2, qwen3 or phi3
 * architecture (arch.c) with random weights at any shape, for tests and
 * speed benchmarks without downloads.
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

typedef gen_shape_t shape_t;

/* The real models' hyper-parameters; smollm-135m, qwen-0.5b (Qwen2.5-0.5B's
 * shape as a llama), qwen2.5-0.5b and qwen3-0.6b tie output.weight to
 * token_embd.weight as the originals do. The tiny-* shapes have each
 * family's structure at test size: qwen3's head size is not n_embd/n_head,
 * phi3's fused tensors and LongRoPE factors are there. */
static const shape_t SHAPES[] = {
    {"tiny", "llama", 2, 64, 4, 2, 128, 512, 512, 10000.0f, 1e-5f, 0, 0, 0, 0.0f},
    {"smollm-135m", "llama", 30, 576, 9, 3, 1536, 49152, 2048, 10000.0f, 1e-5f, 1, 0, 0, 0.0f},
    {"qwen-0.5b", "llama", 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, 1, 0, 0, 0.0f},
    {"tinyllama-1.1b", "llama", 22, 2048, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f, 0, 0, 0, 0.0f},
    {"qwen2.5-0.5b", "qwen2", 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, 1, 0, 0,
     0.0f},
    {"qwen3-0.6b", "qwen3", 28, 1024, 16, 8, 3072, 151936, 40960, 1000000.0f, 1e-6f, 1, 128, 0,
     0.0f},
    {"phi3-mini", "phi3", 32, 3072, 32, 32, 8192, 32064, 131072, 10000.0f, 1e-5f, 0, 0, 4096, 0.0f},
    {"tiny-qwen2", "qwen2", 2, 64, 4, 2, 128, 512, 4096, 1000000.0f, 1e-6f, 0, 0, 0, 0.0f},
    {"tiny-qwen3", "qwen3", 2, 64, 4, 2, 128, 512, 4096, 1000000.0f, 1e-6f, 0, 32, 0, 0.0f},
    {"tiny-phi3", "phi3", 2, 128, 4, 2, 256, 512, 131072, 10000.0f, 1e-5f, 0, 0, 4096, 0.0f},
};

static const char USAGE[] =
    "usage: gguf-gen --out FILE --shape tiny|smollm-135m|qwen-0.5b|tinyllama-1.1b|\n"
    "                qwen2.5-0.5b|qwen3-0.6b|phi3-mini|tiny-qwen2|tiny-qwen3|tiny-phi3\n"
    "                [--arch llama|qwen2|qwen3|phi3] [--head-dim N] [--qk-std X]\n"
    "                [--type F32|F16|BF16|Q8_0|Q4_0|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K|Q4_K_M]\n"
    "                [--vocab-from FILE.gguf] [--seed N]\n"
    "                [--n-layer N --n-embd N --n-head N --n-head-kv N --n-ff N\n"
    "                 --n-vocab N --ctx N] [--tied | --untied] [--name NAME]\n"
    "                [--chat-template FILE]\n"
    "\n"
    "Writes a GGUF v3 model of the shape's architecture (or --arch's) with that\n"
    "family's keys and tensors as llama.cpp's converter writes them, and random\n"
    "weights (std 0.02, norms near 1.0), deterministic from the seed. --qk-std\n"
    "sets the q and k projections' std (larger peaks attention, so tests see\n"
    "RoPE errors). Norms stay F32; the matrices and token_embd use --type\n"
    "(default F32); Q4_K_M mixes Q4_K and Q6_K as llama.cpp's Q4_K_M does, and\n"
    "K-quant rows not a multiple of 256 fall back to Q5_0/Q5_1/Q8_0 as there.\n"
    "Without --vocab-from a synthetic\n"
    "SentencePiece vocabulary is written; with it, every tokenizer.* key is\n"
    "copied and the vocabulary size follows the file. --chat-template stores\n"
    "FILE's text as tokenizer.chat_template (replacing a copied one).\n";

/* --type Q4_K_M: not a tensor type but llama.cpp's mix of Q4_K and Q6_K
 * (pick_type); any id past the real ones. */
#define TYPE_Q4_K_M 0x10000u

/* llama.cpp's LLAMA_FTYPE_* for general.file_type */
static int file_type_of(uint32_t t)
{
    switch (t) {
    case TYPE_Q4_K_M:
        return 15;
    case BL_TYPE_Q5_0:
        return 8;
    case BL_TYPE_Q5_1:
        return 9;
    case BL_TYPE_Q4_K: /* Q4_K_S */
        return 14;
    case BL_TYPE_Q5_K: /* Q5_K_S */
        return 16;
    case BL_TYPE_Q6_K:
        return 18;
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
    uint32_t n_layer; /* for Q4_K_M's choice of Q6_K layers */
    bool tied;        /* token_embd.weight is also the output */
} gen_t;

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third one between get more bits in Q4_K_M */
static bool use_more_bits(uint32_t i, uint32_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static bool name_ends(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && !strcmp(name + n - k, suffix);
}

/* The type a tensor is stored in, as llama.cpp's llama_tensor_get_type
 * picks it: for Q4_K_M, Q6_K for output.weight (token_embd.weight when it
 * is tied), attn_v and ffn_down of the use_more_bits layers, Q5_K for a
 * fused attn_qkv, Q4_K for the rest; then, as llama.cpp does, rows that are
 * not whole 256-element super-blocks fall back to Q5_0 (for Q4_K), Q5_1
 * (Q5_K) or Q8_0 (Q6_K), so 576- and 896-wide models can be written. */
static uint32_t pick_type(const gen_t *g, const char *name, uint32_t type, uint64_t ne0,
                          uint64_t ne1)
{
    if (type == TYPE_Q4_K_M) {
        unsigned layer = 0;
        bool in_layer = sscanf(name, "blk.%u.", &layer) == 1;
        type = BL_TYPE_Q4_K;
        if (!strcmp(name, "output.weight") || !strcmp(name, "token_embd.weight")) {
            if (!strcmp(name, "output.weight") || g->tied)
                type = BL_TYPE_Q6_K;
        } else if (in_layer && (name_ends(name, ".attn_v.weight") ||
                                name_ends(name, ".ffn_down.weight"))) {
            if (use_more_bits(layer, g->n_layer))
                type = BL_TYPE_Q6_K;
        } else if (in_layer && name_ends(name, ".attn_qkv.weight")) {
            type = BL_TYPE_Q5_K;
        }
    }
    if (ne1 > 1 && ne0 % 256) {
        if (type == BL_TYPE_Q4_K)
            type = BL_TYPE_Q5_0;
        else if (type == BL_TYPE_Q5_K)
            type = BL_TYPE_Q5_1;
        else if (type == BL_TYPE_Q6_K)
            type = BL_TYPE_Q8_0;
    }
    return type;
}

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = seed ^ 0x5bd1e9955bd1e995ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return splitmix(&h);
}

static int add(void *ud, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1, float mean,
               float std)
{
    gen_t *g = ud;
    type = pick_type(g, name, type, ne0, ne1);
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
    static const uint32_t ok[] = {BL_TYPE_F32,  BL_TYPE_F16,  BL_TYPE_BF16, BL_TYPE_Q8_0,
                                  BL_TYPE_Q4_0, BL_TYPE_Q5_0, BL_TYPE_Q5_1, BL_TYPE_Q4_K,
                                  BL_TYPE_Q5_K, BL_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (s && !strcasecmp(s, bl_type_info(ok[i])->name)) {
            *out = ok[i];
            return 0;
        }
    if (s && !strcasecmp(s, "Q4_K_M")) {
        *out = TYPE_Q4_K_M;
        return 0;
    }
    fprintf(stderr, "gguf-gen: --type must be F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, "
                    "Q5_K, Q6_K or Q4_K_M, not '%s'\n",
            s ? s : "");
    return -1;
}

static int copy_vocab(bl_gguf_writer_t *w, const char *path, uint32_t *n_vocab, bool skip_tmpl)
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
        static const char tmpl_key[] = "tokenizer.chat_template";
        if (skip_tmpl && kv->key.n == sizeof tmpl_key - 1 &&
            !memcmp(kv->key.p, tmpl_key, kv->key.n))
            continue;
        if (kv->key.n > 10 && !memcmp(kv->key.p, "tokenizer.", 10))
            rc = bl_gguf_w_copy_kv(w, v, kv);
    }
    if (rc)
        fprintf(stderr, "gguf-gen: copying the vocabulary of %s: %s\n", path, bl_strerror(rc));
    bl_gguf_close(v);
    return rc;
}

/* tokenizer.chat_template from a file (a Jinja template as models ship it). */
static int write_chat_template(bl_gguf_writer_t *w, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "gguf-gen: cannot open chat template '%s': %s\n", path, strerror(errno));
        return BL_EIO;
    }
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    int rc = !buf ? BL_ENOMEM : ferror(f) ? BL_EIO : n == cap ? BL_ERANGE : 0;
    fclose(f);
    if (rc)
        fprintf(stderr, "gguf-gen: cannot read chat template '%s' (at most 1 MiB)\n", path);
    else
        rc = bl_gguf_w_strn(w, "tokenizer.chat_template", buf, n);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    const char *tmpl_path = NULL;
    const char *out = NULL, *vocab_from = NULL, *name = NULL, *arch = NULL;
    uint32_t head_dim_flag = 0;
    float qk_std = 0.0f;
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
        } else if (!strcmp(a, "--arch")) {
            if (!gen_arch_known(v)) {
                fprintf(stderr, "gguf-gen: --arch must be llama, qwen2, qwen3 or phi3\n");
                return 2;
            }
            arch = v;
        } else if (!strcmp(a, "--qk-std")) {
            char *end;
            qk_std = strtof(v ? v : "", &end);
            if (!v || !*v || *end || !(qk_std > 0.0f && qk_std < 10.0f)) {
                fprintf(stderr, "gguf-gen: --qk-std needs a number in (0, 10)\n");
                return 2;
            }
        } else if (!strcmp(a, "--head-dim")) {
            if (parse_u32(a, v, &head_dim_flag))
                return 2;
        } else if (!strcmp(a, "--vocab-from")) {
            vocab_from = v;
        } else if (!strcmp(a, "--name")) {
            name = v;
        } else if (!strcmp(a, "--chat-template")) {
            tmpl_path = v;
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
    if (arch)
        s.arch = arch;
    if (head_dim_flag)
        s.head_dim = head_dim_flag;
    s.qk_std = qk_std;
    if (!strcmp(s.arch, "phi3") && !s.ctx_orig)
        s.ctx_orig = s.ctx < 4096 ? s.ctx : 4096;

    bl_gguf_writer_t *w = NULL;
    gen_t g = {0};
    int rc = bl_gguf_writer_new(&w);
    if (rc)
        return 1;
    g.w = w;
    g.seed = seed;
    g.n_layer = s.n_layer;
    g.tied = s.tied;
    if (vocab_from) {
        uint32_t nv;
        if ((rc = copy_vocab(w, vocab_from, &nv, tmpl_path != NULL)))
            goto done;
        if (n_vocab_flag && n_vocab_flag != nv) {
            fprintf(stderr, "gguf-gen: --n-vocab %u disagrees with the %u tokens of %s\n",
                    n_vocab_flag, nv, vocab_from);
            rc = BL_EINVAL;
            goto done;
        }
        s.n_vocab = nv;
    } else if ((rc = gen_write_synthetic_vocab(w, s.n_vocab,
                                               strcmp(s.arch, "phi3") ? NULL : "<|endoftext|>"))) {
        goto done;
    }
    if (tmpl_path && (rc = write_chat_template(w, tmpl_path)))
        goto done;

    uint32_t head_dim = gen_head_dim(&s);
    /* K-quant rows that are not whole super-blocks fall back to 32-element
     * types (pick_type), so 32 is what the shape must divide by */
    const bl_type_info_t *ti = bl_type_info(type == TYPE_Q4_K_M ? BL_TYPE_Q4_K : type);
    const char *type_name = type == TYPE_Q4_K_M ? "Q4_K_M" : ti->name;
    const uint32_t need = ti->block_elems == 256 ? 32 : ti->block_elems;
    if ((!s.head_dim && s.n_embd % s.n_head) || s.n_head % s.n_head_kv || head_dim % 2) {
        fprintf(stderr,
                "gguf-gen: n_embd %u, n_head %u, n_head_kv %u: n_embd must split into "
                "n_head heads of even size and n_head must be a multiple of n_head_kv\n",
                s.n_embd, s.n_head, s.n_head_kv);
        rc = BL_EINVAL;
        goto done;
    }
    if (s.n_embd % need || s.n_ff % need || (s.n_head * head_dim) % need) {
        fprintf(stderr,
                "gguf-gen: n_embd %u and n_ff %u must be multiples of the %s block "
                "size %u\n",
                s.n_embd, s.n_ff, type_name, need);
        rc = BL_EINVAL;
        goto done;
    }
    char gname[128];
    snprintf(gname, sizeof gname, "%s", name ? name : s.name);
    bool custom = (tied >= 0 && tied != base->tied) || (arch && strcmp(arch, base->arch)) ||
                  (head_dim_flag && head_dim_flag != base->head_dim);
    for (int k = 0; k < 7; k++)
        custom |= over[k] != 0;
    if (!name && custom)
        snprintf(gname, sizeof gname, "%s (custom)", s.name);
    if ((rc = bl_gguf_w_str(w, "general.architecture", s.arch)) ||
        (rc = bl_gguf_w_str(w, "general.name", gname)) ||
        (rc = bl_gguf_w_u32(w, "general.alignment", 32)) ||
        (rc = bl_gguf_w_u32(w, "general.file_type", (uint32_t)file_type_of(type))) ||
        (rc = bl_gguf_w_u32(w, "general.quantization_version", 2)) ||
        (rc = gen_arch_write_kv(w, &s)))
        goto done;

    g.cap_fills = gen_arch_n_tensors(&s);
    if (!(g.fills = calloc(g.cap_fills, sizeof *g.fills))) {
        rc = BL_ENOMEM;
        goto done;
    }
    if ((rc = gen_arch_add_tensors(&s, type, add, &g)))
        goto done;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[512];
    if ((rc = bl_gguf_writer_save(w, out, err, sizeof err))) {
        fprintf(stderr, "gguf-gen: %s\n", err);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("gguf-gen: wrote %s: %s (%s), %s, %u layers, n_embd %u, vocab %u, %.1fM params "
           "(%.2f s)\n",
           out, gname, s.arch, type_name, s.n_layer, s.n_embd, s.n_vocab, (double)g.n_params / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
done:
    bl_gguf_writer_free(w);
    free(g.fills);
    return rc ? 1 : 0;
}
