/*
 * The public engine API (include/ballast/engine.h): models, tokens and
 * contexts. Generation lives in generate.c, sampling in sampler.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grammar/grammar.h"
#include "engine/kernels/kernels.h"
#include "engine/model.h"
#include "engine/sampler.h"

void bl_model_params_default(bl_model_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->n_threads = 0;
    p->isa = BL_ISA_AUTO;
}

static const char *isa_label(bl_isa_t isa)
{
    switch (isa) {
    case BL_ISA_AUTO:
        return "auto";
    case BL_ISA_SCALAR:
        return "scalar";
    case BL_ISA_AVX2:
        return "avx2";
    case BL_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

int bl_model_load(const char *path, const bl_model_params_t *p, bl_model_t **out, char *err,
                  size_t errlen)
{
    bl_model_params_t def;
    if (!p) {
        bl_model_params_default(&def);
        p = &def;
    }
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    int rc = bl_kern_init(p->isa);
    if (rc < 0) {
        snprintf(err, errlen, "kernel family '%s' is not supported on this CPU", isa_label(p->isa));
        return rc;
    }
    bl_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return BL_ENOMEM;
    pthread_mutex_init(&m->run_lock, NULL);
    if ((rc = bl_gguf_open(path, &m->gguf, err, errlen)) < 0)
        goto done;
    if ((rc = bl_model_bind(m, path, err, errlen)) < 0)
        goto done;
    char terr[256] = "";
    if ((rc = bl_tok_from_gguf(m->gguf, &m->tok, terr, sizeof terr)) < 0) {
        snprintf(err, errlen, "%s: tokenizer: %s", path, terr);
        goto done;
    }
    if (bl_tok_n_vocab(m->tok) > m->hp.n_vocab) {
        snprintf(err, errlen, "%s: tokenizer has %u tokens but token_embd.weight has %u rows", path,
                 bl_tok_n_vocab(m->tok), m->hp.n_vocab);
        rc = BL_EFORMAT;
        goto done;
    }
    m->info.bos = bl_tok_bos(m->tok);
    m->info.eos = bl_tok_eos(m->tok);
    m->info.add_bos = bl_tok_add_bos(m->tok);
    bl_gguf_str_t tmpl;
    if (bl_gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl) == 0) {
        char *t = malloc(tmpl.n + 1);
        if (!t) {
            rc = BL_ENOMEM;
            goto done;
        }
        memcpy(t, tmpl.p, tmpl.n);
        t[tmpl.n] = '\0';
        m->info.chat_template = t;
    }
    bl_chat_detect(m); /* chat template family, see engine/chat/chat.h */
    if ((rc = bl_pool_new(p->n_threads, &m->pool)) < 0) {
        snprintf(err, errlen, "cannot start %d worker threads", p->n_threads);
        goto done;
    }
    snprintf(m->isa_name, sizeof m->isa_name, "%s", bl_kern_isa_name());
    m->info.isa = m->isa_name;
    *out = m;
    m = NULL;
done:
    bl_model_free(m);
    return rc;
}

void bl_model_free(bl_model_t *m)
{
    if (!m)
        return;
    bl_pool_free(m->pool);
    bl_tok_free(m->tok);
    bl_gguf_close(m->gguf);
    free((char *)m->info.chat_template);
    free(m->layers);
    free(m->owned);
    bl_vtrie_free(atomic_load(&m->vtrie));
    pthread_mutex_destroy(&m->run_lock);
    free(m);
}

const bl_model_info_t *bl_model_info(const bl_model_t *m)
{
    return &m->info;
}

/* ---- tokens ---------------------------------------------------------------- */

int bl_tokenize(const bl_model_t *m, const char *text, size_t len, bool add_special,
                bool parse_special, bl_token_t *tokens, size_t cap, size_t *n_out)
{
    return bl_tok_encode(m->tok, text, len, add_special, parse_special, tokens, cap, n_out);
}

int bl_token_piece(const bl_model_t *m, bl_token_t t, bool special, char *buf, size_t cap)
{
    return bl_tok_piece(m->tok, t, special, buf, cap);
}

bool bl_token_is_eog(const bl_model_t *m, bl_token_t t)
{
    return bl_tok_is_eog(m->tok, t);
}

int bl_detok_push(bl_detok_t *d, const bl_model_t *m, bl_token_t t, char *out, size_t cap)
{
    return bl_tok_detok_push(d, m->tok, t, out, cap);
}

int bl_sampler_new(const bl_model_t *m, const bl_sampling_t *s, bl_sampler_t **out)
{
    return bl_sampler_new_n(m->hp.n_vocab, s, out);
}

/* ---- contexts -------------------------------------------------------------- */

void bl_ctx_params_default(bl_ctx_params_t *p)
{
    memset(p, 0, sizeof *p);
}

/* 64-byte aligned, zeroed; n elements of size sz. */
static void *alloc64(size_t n, size_t sz)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, sz, &bytes))
        return NULL;
    bytes = (bytes + 63) / 64 * 64;
    if (bytes == 0)
        bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

static size_t act_bytes_max(const bl_mat_t *w, size_t cur)
{
    size_t b = bl_kern_act_bytes(w->type, w->n_in);
    return b > cur ? b : cur;
}

static int scratch_init(bl_scratch_t *s, const bl_model_t *m, uint32_t cap)
{
    const bl_hparams_t *hp = &m->hp;
    size_t E = hp->n_embd, F = hp->n_ff, QD = (size_t)hp->n_head * hp->head_dim;
    size_t KD = (size_t)hp->n_head_kv * hp->head_dim;
    s->cap = cap;
    s->x = alloc64(cap * E, sizeof(float));
    s->xb = alloc64(cap * E, sizeof(float));
    s->o = alloc64(cap * E, sizeof(float));
    s->q = alloc64(cap * QD, sizeof(float));
    s->att = alloc64(cap * QD, sizeof(float));
    s->k = alloc64(cap * KD, sizeof(float));
    s->v = alloc64(cap * KD, sizeof(float));
    s->gate = alloc64(cap * F, sizeof(float));
    s->up = alloc64(cap * F, sizeof(float));
    s->xlast = alloc64(E, sizeof(float));
    size_t per_col = act_bytes_max(&m->output, 0);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const bl_layer_t *L = &m->layers[l];
        const bl_mat_t *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            per_col = act_bytes_max(all[i], per_col);
    }
    /* three buffers: the q/k/v group may hold three weight types */
    s->act_cap = (per_col * cap + 63) / 64 * 64;
    s->act = alloc64(3, s->act_cap);
    if (!s->x || !s->xb || !s->o || !s->q || !s->att || !s->k || !s->v || !s->gate || !s->up ||
        !s->xlast || !s->act)
        return BL_ENOMEM;
    return 0;
}

static void scratch_free(bl_scratch_t *s)
{
    free(s->x);
    free(s->xb);
    free(s->o);
    free(s->q);
    free(s->att);
    free(s->k);
    free(s->v);
    free(s->gate);
    free(s->up);
    free(s->xlast);
    free(s->act);
    memset(s, 0, sizeof *s);
}

/* Upper bound on a context, whatever the caller asks (KV memory). */
#define MAX_CTX (1u << 20)

int bl_ctx_new(bl_model_t *m, const bl_ctx_params_t *p, bl_ctx_t **out, char *err, size_t errlen)
{
    *out = NULL;
    uint32_t n_ctx = p && p->n_ctx ? p->n_ctx : m->hp.n_ctx_train;
    if (!(p && p->n_ctx) && n_ctx > 4096)
        n_ctx = 4096;
    if (n_ctx > MAX_CTX) {
        snprintf(err, errlen, "context of %u tokens exceeds the limit of %u", n_ctx, MAX_CTX);
        return BL_ERANGE;
    }
    bl_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return BL_ENOMEM;
    c->m = m;
    c->pending = -1;
    int rc = bl_kv_init(&c->kv, &m->hp, n_ctx);
    if (rc == 0)
        rc = scratch_init(&c->s, m, n_ctx < BL_MAX_BATCH ? n_ctx : BL_MAX_BATCH);
    c->tokens = calloc(n_ctx, sizeof *c->tokens);
    c->logits = alloc64(m->hp.n_vocab, sizeof(float));
    if (rc == 0 && (!c->tokens || !c->logits))
        rc = BL_ENOMEM;
    if (rc < 0) {
        snprintf(err, errlen, "out of memory for a context of %u tokens", n_ctx);
        bl_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void bl_ctx_free(bl_ctx_t *c)
{
    if (!c)
        return;
    bl_kv_free(&c->kv);
    scratch_free(&c->s);
    free(c->tokens);
    free(c->logits);
    free(c);
}

uint32_t bl_ctx_size(const bl_ctx_t *c)
{
    return c->kv.n_ctx;
}

static int feed(bl_ctx_t *c, const bl_token_t *tokens, size_t n, const atomic_bool *cancel)
{
    int rc = 0;
    pthread_mutex_lock(&c->m->run_lock);
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t k = (uint32_t)(n - i < c->s.cap ? n - i : c->s.cap);
        rc = bl_forward(c, tokens + i, k, cancel);
        if (rc == 0) {
            /* a chunk counts only once its forward pass is complete */
            memcpy(c->tokens + c->n_past, tokens + i, k * sizeof *tokens);
            c->n_past += k;
            i += k;
        }
    }
    pthread_mutex_unlock(&c->m->run_lock);
    return rc;
}

int bl_ctx_feed(bl_ctx_t *c, const bl_token_t *tokens, size_t n, const atomic_bool *cancel)
{
    if (n && !tokens)
        return BL_EINVAL;
    size_t extra = c->pending >= 0;
    if (n + extra == 0)
        return 0;
    if (n + extra > c->kv.n_ctx - c->n_past)
        return BL_ECONTEXT;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->m->hp.n_vocab)
            return BL_EINVAL; /* before any of them is fed */
    if (extra) {
        int rc = feed(c, &c->pending, 1, cancel);
        if (rc < 0)
            return rc;
        c->pending = -1;
    }
    return feed(c, tokens, n, cancel);
}

const float *bl_ctx_logits(const bl_ctx_t *c)
{
    return c->have_logits ? c->logits : NULL;
}

const bl_token_t *bl_ctx_tokens(const bl_ctx_t *c, size_t *n)
{
    *n = c->n_past;
    return c->tokens;
}

int bl_ctx_truncate(bl_ctx_t *c, size_t n_keep)
{
    if (n_keep > c->n_past)
        return BL_ERANGE;
    if (n_keep < c->n_past)
        c->have_logits = false; /* they belonged to a dropped position */
    c->n_past = (uint32_t)n_keep;
    c->pending = -1;
    return 0;
}
