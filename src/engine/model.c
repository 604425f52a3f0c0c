/*
 * Model loading for the llama, qwen2, qwen3 and phi3 architectures: read the
 * `<arch>.*` hyper-parameters, bind every tensor by name and check its shape
 * and type against them, so a malformed file fails here with the tensor's
 * name instead of in the forward pass. The families share one layer layout
 * (model.h); what differs is in the table below and in which optional
 * tensors a file has, as llama.cpp loads them.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels/kernels.h"
#include "engine/model.h"
#include "engine/types.h"

/* What llama.cpp does differently per architecture (src/models/<arch>.cpp). */
typedef struct {
    const char *name;
    bl_rope_layout_t rope;
    bool qk_norm;      /* attn_q_norm / attn_k_norm (qwen3; others' are not read) */
    bool fused_ffn_up; /* ffn_up is gate then up, 2 * n_ff rows, no ffn_gate (phi3) */
    bool scale_q;      /* q scaled after RoPE instead of the scores (phi3) */
} arch_t;

static const arch_t ARCHS[] = {
    {"llama", BL_ROPE_NORM, false, false, false},
    {"qwen2", BL_ROPE_NEOX, false, false, false},
    {"qwen3", BL_ROPE_NEOX, true, false, false},
    {"phi3", BL_ROPE_NEOX, false, true, true},
};

typedef struct {
    bl_model_t *m;
    const arch_t *arch;
    const char *path;
    char *err;
    size_t errlen;
    float *owned_next; /* cursor into m->owned */
    float *owned_end;
} binder_t;

static int fail(binder_t *b, int code, const char *fmt, ...)
{
    if (b->err && b->errlen) {
        int n = snprintf(b->err, b->errlen, "%s: ", b->path);
        if (n < 0 || (size_t)n >= b->errlen)
            n = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Read <arch>.<key> as u32; absent -> def (or an error when required). */
static int get_u32(binder_t *b, const char *arch, const char *key, bool required, uint32_t def,
                   uint32_t *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = bl_gguf_get_u32(b->m->gguf, full, out);
    if (rc == BL_ENOENT && !required) {
        *out = def;
        return 0;
    }
    if (rc == BL_ENOENT)
        return fail(b, BL_EFORMAT, "missing metadata key '%s'", full);
    if (rc < 0)
        return fail(b, BL_EFORMAT, "metadata key '%s' is not an unsigned integer", full);
    return 0;
}

static int get_f32(binder_t *b, const char *arch, const char *key, float def, float *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = bl_gguf_get_f32(b->m->gguf, full, out);
    if (rc == BL_ENOENT) {
        *out = def;
        return 0;
    }
    if (rc < 0)
        return fail(b, BL_EFORMAT, "metadata key '%s' is not a number", full);
    return 0;
}

static const char *type_name(uint32_t type)
{
    const bl_type_info_t *ti = bl_type_info(type);
    return ti ? ti->name : "unknown";
}

/* Bind a 2-D weight of n_out rows of n_in. Returns 1 when absent and optional. */
static int bind_mat(binder_t *b, const char *name, uint32_t n_in, uint32_t n_out, bool required,
                    bl_mat_t *out)
{
    const bl_gguf_tensor_t *t = bl_gguf_find_tensor(b->m->gguf, name);
    if (!t) {
        if (!required)
            return 1;
        return fail(b, BL_EFORMAT, "missing tensor '%s'", name);
    }
    bool shape_ok = t->n_dims == 2 && t->ne[0] == n_in && t->ne[1] == n_out;
    if (!shape_ok) {
        char got[96];
        int k = snprintf(got, sizeof got, "[");
        for (uint32_t i = 0; i < t->n_dims && i < BL_GGUF_MAX_DIMS && k < 80; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%llu", i ? ", " : "",
                          (unsigned long long)t->ne[i]);
        snprintf(got + k, sizeof got - (size_t)k, "]");
        return fail(b, BL_EFORMAT, "tensor '%s' has shape %s, expected [%u, %u]", name, got, n_in,
                    n_out);
    }
    if (!bl_kern_supports(t->type))
        return fail(b, BL_EUNSUPPORTED, "tensor '%s' has type %s, which is not supported", name,
                    type_name(t->type));
    uint64_t row_bytes;
    if (!bl_type_row_bytes(t->type, n_in, &row_bytes) || row_bytes * n_out > t->size)
        return fail(b, BL_EFORMAT, "tensor '%s': %u x %u of %s does not fit its %llu bytes", name,
                    n_in, n_out, type_name(t->type), (unsigned long long)t->size);
    out->type = t->type;
    out->data = t->data;
    out->row_bytes = (size_t)row_bytes;
    out->n_in = n_in;
    out->n_out = n_out;
    return 0;
}

/* Bind a 1-D vector of n elements, converted to F32 into the model's buffer
 * (norms are tiny; this also guarantees alignment). 1 when absent+optional. */
static int bind_vec(binder_t *b, const char *name, uint32_t n, bool required, const float **out)
{
    const bl_gguf_tensor_t *t = bl_gguf_find_tensor(b->m->gguf, name);
    if (!t) {
        if (!required)
            return 1;
        return fail(b, BL_EFORMAT, "missing tensor '%s'", name);
    }
    if (t->n_elems != n || t->ne[0] != n)
        return fail(b, BL_EFORMAT, "tensor '%s' has %llu elements, expected %u", name,
                    (unsigned long long)t->n_elems, n);
    uint64_t bytes;
    if (!bl_kern_supports(t->type) || !bl_type_row_bytes(t->type, n, &bytes) || bytes > t->size)
        return fail(b, BL_EUNSUPPORTED, "tensor '%s' has type %s, which is not supported", name,
                    type_name(t->type));
    if (b->owned_next + n > b->owned_end)
        return fail(b, BL_ENOMEM, "internal: norm buffer too small at '%s'", name);
    bl_kern_dequantize_row(t->type, t->data, b->owned_next, n);
    *out = b->owned_next;
    b->owned_next += n;
    return 0;
}

static void count_weight(bl_model_t *m, const bl_mat_t *w, uint64_t *bytes_by_type)
{
    uint64_t bytes = (uint64_t)w->row_bytes * w->n_out;
    m->info.weight_bytes += bytes;
    bytes_by_type[w->type < BL_TYPE_COUNT ? w->type : 0] += bytes;
}

static int read_hparams(binder_t *b, const char *arch)
{
    bl_hparams_t *hp = &b->m->hp;
    int rc;
    if ((rc = get_u32(b, arch, "embedding_length", true, 0, &hp->n_embd)) ||
        (rc = get_u32(b, arch, "block_count", true, 0, &hp->n_layer)) ||
        (rc = get_u32(b, arch, "feed_forward_length", true, 0, &hp->n_ff)) ||
        (rc = get_u32(b, arch, "attention.head_count", true, 0, &hp->n_head)) ||
        (rc = get_u32(b, arch, "context_length", false, 2048, &hp->n_ctx_train)))
        return rc;
    if ((rc = get_u32(b, arch, "attention.head_count_kv", false, hp->n_head, &hp->n_head_kv)))
        return rc;
    if (hp->n_embd == 0 || hp->n_layer == 0 || hp->n_ff == 0 || hp->n_head == 0 ||
        hp->n_head_kv == 0 || hp->n_ctx_train == 0)
        return fail(b, BL_EFORMAT,
                    "%s: a hyper-parameter is zero (embedding_length=%u "
                    "block_count=%u feed_forward_length=%u head_count=%u head_count_kv=%u "
                    "context_length=%u)",
                    arch, hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv,
                    hp->n_ctx_train);
    if (hp->n_layer > 4096 || hp->n_embd > (1u << 20) || hp->n_ff > (1u << 22) || hp->n_head > 4096)
        return fail(b, BL_ERANGE,
                    "%s: hyper-parameters out of range (embedding_length=%u "
                    "block_count=%u feed_forward_length=%u head_count=%u)",
                    arch, hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head);
    if (hp->n_head % hp->n_head_kv)
        return fail(b, BL_EFORMAT,
                    "%s.attention.head_count %u is not a multiple of "
                    "head_count_kv %u",
                    arch, hp->n_head, hp->n_head_kv);
    uint32_t def_hd = hp->n_embd / hp->n_head;
    uint32_t k_len, v_len;
    if ((rc = get_u32(b, arch, "attention.key_length", false, def_hd, &k_len)) ||
        (rc = get_u32(b, arch, "attention.value_length", false, def_hd, &v_len)))
        return rc;
    if (k_len != v_len || k_len == 0 || k_len > 512 || k_len % 2)
        return fail(b, BL_EUNSUPPORTED, "%s: head size %u (key) / %u (value) is not supported",
                    arch, k_len, v_len);
    hp->head_dim = k_len;
    if ((rc = get_u32(b, arch, "rope.dimension_count", false, hp->head_dim, &hp->n_rot)))
        return rc;
    if (hp->n_rot == 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return fail(b, BL_EFORMAT, "%s.rope.dimension_count %u does not fit head size %u", arch,
                    hp->n_rot, hp->head_dim);
    if ((rc = get_f32(b, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->rms_eps)) ||
        (rc = get_f32(b, arch, "rope.freq_base", 10000.0f, &hp->rope_base)))
        return rc;
    if (!(hp->rms_eps >= 0.0f) || !(hp->rope_base > 0.0f))
        return fail(b, BL_EFORMAT, "%s: bad rms epsilon %g or rope.freq_base %g", arch,
                    (double)hp->rms_eps, (double)hp->rope_base);

    /* RoPE scaling as llama.cpp reads it: the type defaults to linear and
     * the factor divides positions unless the type is none; llama3-style
     * and LongRoPE scaling come as divisor tensors (bound below), LongRoPE
     * with a cos/sin scale in rope.scaling.attn_factor. */
    hp->rope_freq_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    bl_gguf_str_t st = {.p = "linear", .n = 6};
    if (bl_gguf_get_str(b->m->gguf, key, &st) == BL_EFORMAT)
        return fail(b, BL_EFORMAT, "metadata key '%s' is not a string", key);
    bool linear = st.n == 6 && !memcmp(st.p, "linear", 6);
    bool longrope = st.n == 8 && !memcmp(st.p, "longrope", 8);
    bool none = st.n == 4 && !memcmp(st.p, "none", 4);
    if (!linear && !longrope && !none)
        return fail(b, BL_EUNSUPPORTED, "%s '%.*s' is not supported", key,
                    (int)(st.n > 32 ? 32 : st.n), st.p);
    if (!none) {
        float factor;
        if ((rc = get_f32(b, arch, "rope.scaling.factor", 0.0f, &factor)))
            return rc;
        if (!(factor >= 0.0f))
            return fail(b, BL_EFORMAT, "%s.rope.scaling.factor %g is negative", arch,
                        (double)factor);
        hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    }
    if ((rc = get_f32(b, arch, "rope.scaling.attn_factor", 1.0f, &hp->rope_attn_factor)) ||
        (rc = get_u32(b, arch, "rope.scaling.original_context_length", false, hp->n_ctx_train,
                      &hp->n_ctx_orig)))
        return rc;
    if (!(hp->rope_attn_factor > 0.0f && hp->rope_attn_factor < 100.0f))
        return fail(b, BL_EFORMAT, "%s.rope.scaling.attn_factor %g is out of range", arch,
                    (double)hp->rope_attn_factor);
    hp->rope_layout = b->arch->rope;
    hp->scale_q = b->arch->scale_q;
    return 0;
}

/* The q, k, v projections: one fused attn_qkv (q rows, then k, then v) whose
 * row ranges become wq, wk, wv, or three tensors; biases either way. */
static int bind_qkv(binder_t *b, uint32_t l, bl_layer_t *L)
{
    const bl_hparams_t *hp = &b->m->hp;
    uint32_t E = hp->n_embd, QD = hp->n_head * hp->head_dim, KD = hp->n_head_kv * hp->head_dim;
    char name[96];
    int rc;
#define T(suffix) (snprintf(name, sizeof name, "blk.%u." suffix, l), name)
    bl_mat_t qkv;
    rc = bind_mat(b, T("attn_qkv.weight"), E, QD + 2 * KD, false, &qkv);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        const char *d = qkv.data;
        L->wq = L->wk = L->wv = qkv;
        L->wq.n_out = QD;
        L->wk.data = d + (size_t)QD * qkv.row_bytes;
        L->wk.n_out = KD;
        L->wv.data = d + (size_t)(QD + KD) * qkv.row_bytes;
        L->wv.n_out = KD;
        const float *bqkv = NULL;
        if ((rc = bind_vec(b, T("attn_qkv.bias"), QD + 2 * KD, false, &bqkv)) < 0)
            return rc;
        if (bqkv) {
            L->bq = bqkv;
            L->bk = bqkv + QD;
            L->bv = bqkv + QD + KD;
        }
        return 0;
    }
    if ((rc = bind_mat(b, T("attn_q.weight"), E, QD, true, &L->wq)) ||
        (rc = bind_mat(b, T("attn_k.weight"), E, KD, true, &L->wk)) ||
        (rc = bind_mat(b, T("attn_v.weight"), E, KD, true, &L->wv)))
        return rc;
    if ((rc = bind_vec(b, T("attn_q.bias"), QD, false, &L->bq)) < 0 ||
        (rc = bind_vec(b, T("attn_k.bias"), KD, false, &L->bk)) < 0 ||
        (rc = bind_vec(b, T("attn_v.bias"), KD, false, &L->bv)) < 0)
        return rc;
#undef T
    return 0;
}

static int bind_layers(binder_t *b, uint64_t *bytes_by_type)
{
    bl_model_t *m = b->m;
    const bl_hparams_t *hp = &m->hp;
    const bool qk_norm = b->arch->qk_norm;
    uint32_t E = hp->n_embd, F = hp->n_ff, QD = hp->n_head * hp->head_dim;
    int rc;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        bl_layer_t *L = &m->layers[l];
        char name[96];
#define T(suffix) (snprintf(name, sizeof name, "blk.%u." suffix ".weight", l), name)
        if ((rc = bind_vec(b, T("attn_norm"), E, true, &L->attn_norm)) ||
            (rc = bind_qkv(b, l, L)) ||
            (qk_norm && ((rc = bind_vec(b, T("attn_q_norm"), hp->head_dim, true, &L->q_norm)) ||
                         (rc = bind_vec(b, T("attn_k_norm"), hp->head_dim, true, &L->k_norm)))) ||
            (rc = bind_mat(b, T("attn_output"), QD, E, true, &L->wo)) ||
            (rc = bind_vec(b, T("ffn_norm"), E, true, &L->ffn_norm)))
            return rc < 0 ? rc : BL_EFORMAT;
        if (b->arch->fused_ffn_up) {
            /* phi3: silu(first half) * second half, as llama.cpp's LLM_FFN_SWIGLU
             * without a gate tensor splits it */
            if ((rc = bind_mat(b, T("ffn_up"), E, 2 * F, true, &L->w_gate)))
                return rc < 0 ? rc : BL_EFORMAT;
            L->w_gate.n_out = F;
            L->w_up = L->w_gate;
            L->w_up.data = (const char *)L->w_gate.data + (size_t)F * L->w_gate.row_bytes;
        } else if ((rc = bind_mat(b, T("ffn_gate"), E, F, true, &L->w_gate)) ||
                   (rc = bind_mat(b, T("ffn_up"), E, F, true, &L->w_up))) {
            return rc < 0 ? rc : BL_EFORMAT;
        }
        if ((rc = bind_mat(b, T("ffn_down"), F, E, true, &L->w_down)))
            return rc < 0 ? rc : BL_EFORMAT;
#undef T
        const bl_mat_t *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            count_weight(m, all[i], bytes_by_type);
    }
    return 0;
}

/* Optional 1-D divisors for RoPE: NULL when the file has none. */
static int bind_rope_factors(binder_t *b, const char *name, const float **out)
{
    int rc = bind_vec(b, name, b->m->hp.n_rot / 2, false, out);
    if (rc == 1)
        *out = NULL;
    return rc < 0 ? rc : 0;
}

int bl_model_bind(bl_model_t *m, const char *path, char *err, size_t errlen)
{
    binder_t b = {.m = m, .path = path, .err = err, .errlen = errlen};
    bl_hparams_t *hp = &m->hp;
    uint64_t bytes_by_type[BL_TYPE_COUNT] = {0};
    int rc;

    bl_gguf_str_t arch;
    if (bl_gguf_get_str(m->gguf, "general.architecture", &arch) < 0)
        return fail(&b, BL_EFORMAT, "missing metadata key 'general.architecture'");
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (arch.n == strlen(ARCHS[i].name) && !memcmp(arch.p, ARCHS[i].name, arch.n))
            b.arch = &ARCHS[i];
    if (!b.arch)
        return fail(&b, BL_EUNSUPPORTED, "unsupported architecture '%.*s'",
                    (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    snprintf(m->info.arch, sizeof m->info.arch, "%.*s", (int)arch.n, arch.p);
    bl_gguf_str_t name;
    if (bl_gguf_get_str(m->gguf, "general.name", &name) == 0)
        snprintf(m->info.name, sizeof m->info.name, "%.*s", (int)(name.n > 127 ? 127 : name.n),
                 name.p);

    if ((rc = read_hparams(&b, m->info.arch)))
        return rc;

    /* The vocabulary size is the embedding's row count. */
    const bl_gguf_tensor_t *te = bl_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te)
        return fail(&b, BL_EFORMAT, "missing tensor 'token_embd.weight'");
    if (te->n_dims != 2 || te->ne[1] == 0 || te->ne[1] > (1u << 24))
        return fail(&b, BL_EFORMAT, "tensor 'token_embd.weight' has a bad shape");
    hp->n_vocab = (uint32_t)te->ne[1];

    /* per layer: two norms, q/k/v biases, q/k norms; three RoPE divisor sets */
    size_t per_layer =
        (size_t)2 * hp->n_embd + (size_t)(hp->n_head + 2 * hp->n_head_kv + 2) * hp->head_dim;
    size_t n_owned = per_layer * hp->n_layer + hp->n_embd + (size_t)3 * (hp->n_rot / 2);
    m->owned = malloc(n_owned * sizeof(float));
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->owned || !m->layers)
        return fail(&b, BL_ENOMEM, "out of memory for %u layers", hp->n_layer);
    b.owned_next = m->owned;
    b.owned_end = m->owned + n_owned;

    if ((rc = bind_mat(&b, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->tok_embd)))
        return rc;
    if ((rc = bind_vec(&b, "output_norm.weight", hp->n_embd, true, &m->output_norm)))
        return rc;
    rc = bind_mat(&b, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output);
    if (rc < 0)
        return rc;
    if (rc == 1)
        m->output = m->tok_embd; /* tied embeddings */
    count_weight(m, &m->output, bytes_by_type);
    if ((rc = bind_rope_factors(&b, "rope_freqs.weight", &m->rope_freqs)) ||
        (rc = bind_rope_factors(&b, "rope_factors_long.weight", &m->rope_long)) ||
        (rc = bind_rope_factors(&b, "rope_factors_short.weight", &m->rope_short)) ||
        (rc = bind_layers(&b, bytes_by_type)))
        return rc;

    /* n_params counts every tensor in the file. */
    for (size_t i = 0; i < bl_gguf_n_tensors(m->gguf); i++)
        m->info.n_params += bl_gguf_tensor_at(m->gguf, i)->n_elems;
    uint32_t best = 0;
    for (uint32_t t = 0; t < BL_TYPE_COUNT; t++)
        if (bytes_by_type[t] > bytes_by_type[best])
            best = t;
    snprintf(m->file_type, sizeof m->file_type, "%s", type_name(best));

    bl_model_info_t *in = &m->info;
    in->n_vocab = hp->n_vocab;
    in->n_ctx_train = hp->n_ctx_train;
    in->n_embd = hp->n_embd;
    in->n_layer = hp->n_layer;
    in->n_head = hp->n_head;
    in->n_head_kv = hp->n_head_kv;
    in->n_ff = hp->n_ff;
    in->file_type = m->file_type;
    return 0;
}
